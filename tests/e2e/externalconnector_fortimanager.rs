//! ExternalConnector through a FortiManager, end to end: the ADOM's external resource is
//! committed in the workspace and the list pushed to the FortiGates of `spec.deviceTargets`;
//! an unreachable device and a name the ADOM does not have are each reported in
//! `status.devices` while the others converge; a lock held by another admin is reported and
//! nothing is written until it is released; deletion cleans the ADOM and the devices.

use std::time::Duration;

use fortisync::api::ExternalConnector;
use fortisync::api::externalconnector::{ConnectorDeviceStatus, ExternalConnectorStatus};
use fortisync::sim::Simulator;
use fortisync::sim::fortimanager::Table as AdomTable;
use fortisync::sim::fortios::Table;
use kube::Api;
use kube::api::{Patch, PatchParams};

// One estate module per test binary (clippy::duplicate_mod): the AddressGroup e2e loads it.
use crate::addressgroup_fortimanager::estate::{Estate, FMG_KEY};

use crate::support::control_plane;
use crate::support::fixture::{condition, secret, start_controller, wait_for};

const WAIT: Duration = Duration::from_secs(30);
const RESOURCE: &str = "fs-blocklist";

fn fortimanager(url: &str) -> String {
    format!(
        "apiVersion: fortisync.dev/v1alpha1\nkind: FortiManager\nmetadata: {{name: fmg}}\nspec:\n  url: {url}\n  credentialsSecretRef: {{name: fmg-token, tokenKey: token}}\n  tls: {{caBundleSecretRef: {{name: fmg-token, key: ca.crt}}}}\n  resyncInterval: 10s\n  adom: root\n  workspace: {{lockRetries: 1}}\n"
    )
}

fn connector(refresh_rate: u32, entries: &[&str]) -> String {
    let list: String = entries
        .iter()
        .map(|e| format!("  - {{address: {e}}}\n"))
        .collect();
    format!(
        "apiVersion: fortisync.dev/v1alpha1\nkind: ExternalConnector\nmetadata: {{name: blocklist}}\nspec:\n  targetRef: {{kind: FortiManager, name: fmg}}\n  resourceName: {RESOURCE}\n  mode: Push\n  feed: {{refreshRate: {refresh_rate}}}\n  deviceTargets: [{{name: fw-a}}, {{name: fw-b}}, {{name: fw-gone}}, {{name: fw-typo}}]\n  entries:\n{list}"
    )
}

/// Waits for the status of the current generation whose Ready is `reason` and that `check`
/// accepts.
async fn status_where(
    ns: &str,
    reason: &str,
    check: impl Fn(&ExternalConnectorStatus) -> bool,
) -> ExternalConnectorStatus {
    let api: Api<ExternalConnector> = Api::namespaced(control_plane().client(), ns);
    wait_for(&format!("Ready reason {reason}"), WAIT, || async {
        let ec = api.get("blocklist").await.ok()?;
        let s = ec.status?;
        (s.observed_generation == ec.metadata.generation
            && condition(&s.conditions, "Ready").is_some_and(|(_, r)| r == reason)
            && check(&s))
        .then_some(s)
    })
    .await
}

fn device<'a>(s: &'a ExternalConnectorStatus, name: &str) -> &'a ConnectorDeviceStatus {
    s.devices
        .iter()
        .find(|d| d.name == name)
        .unwrap_or_else(|| panic!("{name} in status.devices: {:?}", s.devices))
}

fn held(sim: &Simulator, fw: &str) -> Vec<String> {
    let mut e = sim.fortigate(fw).feed_entries("root", RESOURCE);
    e.sort();
    e
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_adom_object_and_two_fortigates_converge_an_unreachable_and_an_unknown_device_are_reported_a_held_lock_stops_every_write_and_delete_cleans_up()
 {
    let cp = control_plane();
    cp.install_crds();
    let ns = cp.namespace("ec-fmg");
    let sim = Estate::default()
        .fw_b_version("7.4.3")
        .with_unreachable_device()
        .start()
        .await;
    let fmg = sim.fortimanager("fmg");
    let control = fmg.control().clone();
    secret(&ns, "fmg-token", FMG_KEY, fmg.ca_pem().expect("ca")).await;
    let _controller = start_controller(&ns);
    assert!(cp.apply(&ns, &fortimanager(fmg.url())).0);
    let (ok, err) = cp.apply(&ns, &connector(5, &["192.0.2.1", "198.51.100.0/24"]));
    assert!(ok, "{err}");

    let s = status_where(&ns, "DevicesNotSynced", |s| {
        s.devices.len() == 4 && s.devices.iter().filter(|d| d.synced).count() == 2
    })
    .await;
    let adom = control
        .object("root", AdomTable::ExternalResource, RESOURCE)
        .expect("the ADOM object");
    assert_eq!(
        adom["comments"],
        format!("managed-by fortisync {ns}/blocklist")
    );
    assert_eq!(adom["update-method"], "push");
    assert_eq!(control.lock_holder("root"), None, "the lock is released");
    for fw in ["fw-a", "fw-b"] {
        let d = device(&s, fw);
        assert_eq!(
            (d.synced, d.reason.as_str(), d.entries_on_device),
            (true, "Converged", 2)
        );
        assert_eq!(held(&sim, fw), ["192.0.2.1", "198.51.100.0/24"], "{fw}");
    }
    let gone = device(&s, "fw-gone");
    assert_eq!((gone.synced, gone.reason.as_str()), (false, "Unreachable"));
    assert!(
        gone.last_error
            .as_deref()
            .is_some_and(|e| e.contains("device unreachable")),
        "{gone:?}"
    );
    let typo = device(&s, "fw-typo");
    assert_eq!(
        (typo.synced, typo.reason.as_str()),
        (false, "UnknownDevice")
    );
    assert!(
        typo.last_error
            .as_deref()
            .is_some_and(|e| e.contains("\"fw-typo\"")),
        "{typo:?}"
    );
    let (ready, _) = condition(&s.conditions, "Ready").expect("Ready");
    assert_eq!(ready, "False");
    assert_eq!(
        condition(&s.conditions, "PushDegraded"),
        Some(("True".into(), "PushFailed".into())),
        "a push that did not land is a warning: {:?}",
        s.conditions
    );
    assert_eq!(s.last_error, None, "a device's failure is not the pass's");

    // Alice holds the ADOM lock: a change of the object (refreshRate) is reported with her
    // name, and nothing is written, in the ADOM or on the devices.
    control.hold_lock("root", "alice").expect("alice locks");
    let (ok, err) = cp.apply(&ns, &connector(10, &["192.0.2.1", "192.0.2.9"]));
    assert!(ok, "{err}");
    let locked = status_where(&ns, "WorkspaceLocked", |_| true).await;
    assert!(
        locked
            .last_error
            .as_ref()
            .is_some_and(|e| e.message.contains("alice")),
        "{:?}",
        locked.last_error
    );
    let adom = control
        .object("root", AdomTable::ExternalResource, RESOURCE)
        .expect("the ADOM object");
    assert_eq!(adom["refresh-rate"], 5, "the ADOM is not written");
    assert_eq!(held(&sim, "fw-a"), ["192.0.2.1", "198.51.100.0/24"]);

    control.release_lock("root").expect("alice unlocks");
    // Looked at again now rather than after the lock's 15 s backoff.
    let api: Api<ExternalConnector> = Api::namespaced(cp.client(), &ns);
    api.patch(
        "blocklist",
        &PatchParams::default(),
        &Patch::Merge(serde_json::json!({"metadata": {"annotations": {"resync": "now"}}})),
    )
    .await
    .expect("annotate");
    status_where(&ns, "DevicesNotSynced", |s| {
        s.devices.iter().filter(|d| d.synced).count() == 2
    })
    .await;
    let adom = control
        .object("root", AdomTable::ExternalResource, RESOURCE)
        .expect("the ADOM object");
    assert_eq!(adom["refresh-rate"], 10);
    for fw in ["fw-a", "fw-b"] {
        assert_eq!(held(&sim, fw), ["192.0.2.1", "192.0.2.9"], "{fw}");
    }

    cp.kubectl_ok(&[
        "delete",
        "-n",
        &ns,
        "externalconnector/blocklist",
        "--timeout=30s",
    ]);
    assert!(
        control
            .object("root", AdomTable::ExternalResource, RESOURCE)
            .is_none()
    );
    for fw in ["fw-a", "fw-b"] {
        assert!(
            sim.fortigate(fw)
                .object("root", Table::ExternalResource, RESOURCE)
                .is_none(),
            "{fw}"
        );
    }
    assert_eq!(control.lock_holder("root"), None);
}

/// `spec.deviceTargets` rows both the API server and the offline check refuse, naming the
/// same field with the same reason: (what, targetRef kind, deviceTargets, field, reason).
#[rustfmt::skip] // a table: one row a line
fn bad_device_targets() -> Vec<(&'static str, &'static str, serde_json::Value, &'static str, &'static str)> {
    use fortisync::api::externalconnector::{
        DEVICE_TARGET_NAME_MESSAGE, DEVICE_TARGET_VDOM_MESSAGE, DEVICE_TARGETS_KIND_MESSAGE,
        DEVICE_TARGETS_UNIQUE_MESSAGE,
    };
    use serde_json::json;
    vec![
        ("device targets on a FortiGate target", "FortiGate", json!([{"name": "fw-a"}]), "spec", DEVICE_TARGETS_KIND_MESSAGE),
        ("one device twice", "FortiManager", json!([{"name": "fw-a"}, {"name": "fw-b"}, {"name": "fw-a"}]), "spec.deviceTargets", DEVICE_TARGETS_UNIQUE_MESSAGE),
        ("one device and VDOM twice", "FortiManager", json!([{"name": "fw-a", "vdom": "dmz"}, {"name": "fw-a", "vdom": "dmz"}]), "spec.deviceTargets", DEVICE_TARGETS_UNIQUE_MESSAGE),
        ("a slash in a device name", "FortiManager", json!([{"name": "adom/root"}]), "spec.deviceTargets[0].name", DEVICE_TARGET_NAME_MESSAGE),
        ("an empty device name", "FortiManager", json!([{"name": ""}]), "spec.deviceTargets[0].name", DEVICE_TARGET_NAME_MESSAGE),
        ("a space in a VDOM", "FortiManager", json!([{"name": "fw-a", "vdom": "my vdom"}]), "spec.deviceTargets[0].vdom", DEVICE_TARGET_VDOM_MESSAGE),
    ]
}

fn with_targets(kind: &str, targets: &serde_json::Value) -> serde_json::Value {
    serde_json::json!({
        "apiVersion": "fortisync.dev/v1alpha1",
        "kind": "ExternalConnector",
        "metadata": {"name": "targets"},
        "spec": {
            "targetRef": {"kind": kind, "name": "fmg"},
            "resourceName": RESOURCE,
            "mode": "Push",
            "deviceTargets": targets,
        },
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_device_targets_are_refused_by_the_api_server_and_offline_with_the_same_field_and_reason()
 {
    use fortisync::api::validate::validate_device_targets;
    let cp = control_plane();
    cp.install_crds();
    let ns = cp.namespace("ec-targets");
    let names = |text: &str, field: &str, reason: &str| {
        text.lines()
            .any(|l| l.contains(&format!("{field}: ")) && l.contains(reason))
    };
    for (what, kind, targets, field, reason) in bad_device_targets() {
        let manifest = with_targets(kind, &targets);
        let (ok, err) = cp.apply(&ns, &manifest.to_string());
        assert!(!ok, "{what}: admitted by the API server");
        assert!(
            names(&err, field, reason),
            "{what}: {field}: …{reason}… not in {err}"
        );
        let spec = serde_json::from_value(manifest["spec"].clone()).expect("spec");
        let offline = validate_device_targets(&spec);
        assert!(
            offline.iter().any(|p| names(p, field, reason)),
            "{what}: offline: {offline:?}"
        );
    }
    // The same device in two VDOMs, and one without a VDOM, is three targets.
    let good = with_targets(
        "FortiManager",
        &serde_json::json!([{"name": "fw-a", "vdom": "root"}, {"name": "fw-a", "vdom": "dmz"}, {"name": "fw-a"}]),
    );
    let (ok, err) = cp.apply(&ns, &good.to_string());
    assert!(ok, "{err}");
    let spec = serde_json::from_value(good["spec"].clone()).expect("spec");
    assert_eq!(validate_device_targets(&spec), Vec::<String>::new());
}
