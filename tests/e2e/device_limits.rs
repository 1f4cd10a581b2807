//! Specs admission accepts but the device cannot hold — more entries than its external-resource
//! limit — end in a condition naming the cause, with the status reporting exactly what the
//! device holds (no write beyond what status says).

use std::time::Duration;

use fortisync::api::ExternalConnector;
use fortisync::sim::{Scenario, Simulator};
use kube::Api;

use crate::support::control_plane;
use crate::support::fixture::{KEY, condition, fortigate, secret, start_controller, wait_for};

const WAIT: Duration = Duration::from_secs(30);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn more_entries_than_the_device_limit_is_list_overflow_and_status_counts_what_it_holds() {
    let cp = control_plane();
    cp.install_crds();
    // FortiOS 7.2 keeps at most `entry_limit` entries per list and flags the overflow
    // (`entry-list` `overflow`); 10 stands for the model's limit.
    let yaml = format!(
        "fortigates:\n  - name: fw\n    version: \"7.2.8\"\n    feeds: {{entry_limit: 10}}\n    api_users: [{{name: fortisync, key: {KEY}, trusthosts: [\"127.0.0.0/8\"]}}]\n"
    );
    let sim = Simulator::start(Scenario::from_yaml(&yaml).expect("scenario"))
        .await
        .expect("simulator");
    let fg = sim.fortigate("fw");
    let ns = cp.namespace("ec-limit");
    secret(&ns, "fw-token", KEY, fg.ca_pem().expect("ca")).await;
    let _controller = start_controller(&ns);
    assert!(cp.apply(&ns, &fortigate(fg.url(), "1h", "")).0);
    let entries: String = (1..=12)
        .map(|i| format!("    - {{address: 192.0.2.{i}}}\n"))
        .collect();
    let connector = format!(
        "apiVersion: fortisync.dev/v1alpha1\nkind: ExternalConnector\nmetadata: {{name: big}}\nspec:\n  targetRef: {{kind: FortiGate, name: fw}}\n  resourceName: fs-big\n  mode: Push\n  entries:\n{entries}"
    );
    let (ok, err) = cp.apply(&ns, &connector);
    assert!(ok, "admitted: 12 is within the CRD's 1000: {err}");
    let api: Api<ExternalConnector> = Api::namespaced(cp.client(), &ns);
    let status = wait_for("Ready=False ListOverflow", WAIT, || async {
        let s = api.get("big").await.ok()?.status?;
        (condition(&s.conditions, "Ready") == Some(("False".into(), "ListOverflow".into())))
            .then_some(s)
    })
    .await;
    let message = status
        .conditions
        .iter()
        .find(|c| c.type_ == "Ready")
        .map(|c| c.message.clone())
        .unwrap_or_default();
    assert!(
        message.contains("holds 10 of 12 entries") && message.contains("limit"),
        "{message}"
    );
    let held = fg.feed_entries("root", "fs-big");
    assert_eq!(held.len(), 10, "{held:?}");
    assert_eq!(
        (
            status.entries.desired,
            status.entries.on_device,
            status.device.as_ref().map(|d| d.overflow)
        ),
        (12, 10, Some(true)),
        "the status reports what the device holds"
    );
}
