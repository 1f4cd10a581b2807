//! What the controller costs the API server while nothing changes: a resync reads the
//! connection and its Secret from the controller's own watch caches, not with a GET each.

use std::time::Duration;

use fortisync::api::AddressGroup;
use kube::Api;

use crate::support::control_plane::ControlPlane;
use crate::support::fixture::{
    KEY, condition, fortigate, fortigate_sim, group_named, member, secret_in, start_controller_in,
    wait_for,
};

/// GETs of one object of `resource` the API server has answered, from its own counter.
async fn gets_of(cp: &ControlPlane, resource: &str) -> u64 {
    let req = hyper::Request::get("/metrics")
        .body(Vec::new())
        .expect("metrics request");
    let text = cp
        .client()
        .request_text(req)
        .await
        .expect("apiserver /metrics");
    text.lines()
        .filter(|l| l.starts_with("apiserver_request_total{"))
        .filter(|l| l.contains(&format!("resource=\"{resource}\"")) && l.contains("verb=\"GET\""))
        .filter_map(|l| l.rsplit_once(' ')?.1.parse::<f64>().ok())
        .sum::<f64>() as u64
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resyncs_read_connections_and_secrets_from_the_watch_caches() {
    let cp = ControlPlane::private("apiserver-load");
    cp.install_crds();
    let ns = cp.namespace("apiserver-load");
    let sim = fortigate_sim("").await;
    let fg = sim.fortigate("fw");
    secret_in(&cp, &ns, "fw-token", KEY, fg.ca_pem().expect("ca")).await;
    let _controller = start_controller_in(&cp, &ns);
    assert!(cp.apply(&ns, &fortigate(fg.url(), "10s", "")).0);
    let names: Vec<String> = (0..10).map(|i| format!("g{i}")).collect();
    for (i, name) in names.iter().enumerate() {
        let g = group_named(
            name,
            &format!("group-{i}"),
            ("FortiGate", "fw"),
            "",
            &[member(&format!("192.0.2.{i}"))],
        );
        assert!(cp.apply(&ns, &g).0);
    }
    let groups: Api<AddressGroup> = Api::namespaced(cp.client(), &ns);
    for name in &names {
        wait_for("every group converged", Duration::from_secs(30), || async {
            let s = groups.get(name).await.ok()?.status?;
            (condition(&s.conditions, "Ready") == Some(("True".into(), "Converged".into())))
                .then_some(())
        })
        .await;
    }
    let (fortigates, secrets) = (
        gets_of(&cp, "fortigates").await,
        gets_of(&cp, "secrets").await,
    );
    let device_reads = || {
        fg.requests()
            .iter()
            .filter(|r| r.method == "GET" && r.path.starts_with("/api/v2/cmdb/"))
            .count()
    };
    let before = device_reads();
    // Two resync intervals: every group resyncs (the device's tables are read again), the
    // API server is asked for neither the FortiGate nor its Secret.
    tokio::time::sleep(Duration::from_secs(21)).await;
    assert!(device_reads() > before, "the groups resynced");
    assert_eq!(gets_of(&cp, "fortigates").await - fortigates, 0);
    assert_eq!(gets_of(&cp, "secrets").await - secrets, 0);
}
