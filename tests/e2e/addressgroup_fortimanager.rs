//! An AddressGroup on a FortiManager ADOM in workspace mode with `install: Proxy`, end to end:
//! the ADOM group converges through lock → commit → unlock, both FortiGates behind it hold
//! the members, an edit follows, and a lock held by another admin is reported with its holder
//! until it is released.

use std::time::Duration;

use fortisync::sim::Simulator;
use fortisync::sim::fortimanager::Table as AdomTable;

#[path = "../support/estate.rs"]
pub(crate) mod estate;

use estate::{Estate, FMG_KEY, device_members};

use crate::support::control_plane;
use crate::support::fixture::{
    condition_message, group, group_ready, member, secret, start_controller, wait_for,
};

fn fortimanager(url: &str) -> String {
    format!(
        "apiVersion: fortisync.dev/v1alpha1\nkind: FortiManager\nmetadata: {{name: fmg}}\nspec:\n  url: {url}\n  credentialsSecretRef: {{name: fmg-token, tokenKey: token}}\n  tls: {{caBundleSecretRef: {{name: fmg-token, key: ca.crt}}}}\n  resyncInterval: 10s\n  adom: root\n  install: Proxy\n  workspace: {{lockRetries: 1}}\n"
    )
}

/// The sorted members of the ADOM group (empty while it does not exist).
fn adom_members(sim: &Simulator) -> Vec<String> {
    estate::adom_members(sim).unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_adom_group_reaches_both_fortigates_and_a_held_lock_is_reported_until_released() {
    let cp = control_plane();
    cp.install_crds();
    let ns = cp.namespace("ag-fmg");
    let sim = Estate::default().start().await;
    let fmg = sim.fortimanager("fmg");
    let control = fmg.control().clone();
    secret(&ns, "fmg-token", FMG_KEY, fmg.ca_pem().expect("ca")).await;
    let _controller = start_controller(&ns);
    assert!(cp.apply(&ns, &fortimanager(fmg.url())).0);
    let target = ("FortiManager", "fmg");
    let two = [member("192.0.2.10"), member("10.0.0.0/24")];
    let (ok, err) = cp.apply(&ns, &group(target, "", &two));
    assert!(ok, "{err}");

    let converged = group_ready(&ns, "True", "Converged", Duration::from_secs(30)).await;
    let want = ["fs_10.0.0.0_24", "fs_192.0.2.10"];
    assert_eq!(adom_members(&sim), want);
    assert_eq!(device_members(&sim, "fw-a"), want);
    assert_eq!(device_members(&sim, "fw-b"), want);
    assert_eq!(
        control.lock_holder("root"),
        None,
        "the ADOM lock is released"
    );
    let mut devices: Vec<(String, bool)> = converged
        .devices
        .iter()
        .map(|d| (d.name.clone(), d.synced))
        .collect();
    devices.sort();
    assert_eq!(
        devices,
        [("fw-a".to_string(), true), ("fw-b".to_string(), true)]
    );
    assert_eq!(converged.counts.desired, 2);
    let execs: Vec<String> = control
        .requests()
        .iter()
        .filter(|r| r.method == "exec")
        .map(|r| r.url.clone())
        .collect();
    for step in ["/workspace/lock", "/workspace/commit", "/workspace/unlock"] {
        assert_eq!(
            execs.iter().filter(|u| u.ends_with(step)).count(),
            1,
            "{step} once: {execs:?}"
        );
    }

    // An edit converges the ADOM and both devices.
    let three = [
        member("192.0.2.10"),
        member("10.0.0.0/24"),
        member("198.51.100.7"),
    ];
    assert!(cp.apply(&ns, &group(target, "", &three)).0);
    let want = ["fs_10.0.0.0_24", "fs_192.0.2.10", "fs_198.51.100.7"];
    wait_for(
        "the edit on every device",
        Duration::from_secs(30),
        || async {
            (adom_members(&sim) == want
                && device_members(&sim, "fw-a") == want
                && device_members(&sim, "fw-b") == want)
                .then_some(())
        },
    )
    .await;
    assert_eq!(control.lock_holder("root"), None);

    // Another admin holds the ADOM lock: reported with the holder, nothing changes.
    control.hold_lock("root", "alice").expect("alice locks");
    let one = [member("192.0.2.10")];
    assert!(cp.apply(&ns, &group(target, "", &one)).0);
    let locked = group_ready(&ns, "False", "WorkspaceLocked", Duration::from_secs(20)).await;
    let message = condition_message(&locked.conditions, "Ready");
    assert!(message.contains("alice"), "names the holder: {message}");
    assert!(message.contains("Remedy:"), "{message}");
    assert_eq!(
        adom_members(&sim),
        want,
        "nothing changed under alice's lock"
    );
    assert_eq!(device_members(&sim, "fw-a"), want);
    assert_eq!(
        control.lock_holder("root").map(|(user, _)| user),
        Some("alice".to_string())
    );

    // Alice releases it: the controller converges without anyone touching the resource.
    control.release_lock("root").expect("alice unlocks");
    let after = group_ready(&ns, "True", "Converged", Duration::from_secs(30)).await;
    assert_eq!(after.last_error, None);
    assert_eq!(after.counts.desired, 1);
    let want = ["fs_192.0.2.10"];
    assert_eq!(adom_members(&sim), want);
    assert_eq!(device_members(&sim, "fw-a"), want);
    assert_eq!(device_members(&sim, "fw-b"), want);
    assert_eq!(control.lock_holder("root"), None);
    assert!(
        control
            .objects("root", AdomTable::Address)
            .iter()
            .all(|o| o["name"] == "fs_192.0.2.10"),
        "the removed members' ADOM objects are deleted"
    );
}
