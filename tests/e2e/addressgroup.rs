//! The AddressGroup controller end to end: a real apiserver, the controller in-process, and a
//! simulated FortiGate.

use std::net::IpAddr;
use std::time::Duration;

use fortisync::sim::fortios::Table;

use crate::support::control_plane;
use crate::support::fixture::{
    KEY, condition, fortigate, fortigate_sim, group, group_observed, group_ready, group_status,
    member, secret, start_controller, wait_for,
};

const WAIT: Duration = Duration::from_secs(30);

/// The AddressGroup `admins` on `FortiGate/fw` with these member addresses.
fn admins(addresses: &[&str]) -> String {
    let members: Vec<String> = addresses.iter().map(|a| member(a)).collect();
    group(("FortiGate", "fw"), "", &members)
}

// Multi-threaded: kubectl runs as a blocking child process while the controller keeps working.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apply_edit_and_delete_converge_the_device() {
    let cp = control_plane();
    cp.install_crds();
    let ns = cp.namespace("ag-converge");
    let sim = fortigate_sim("").await;
    let fg = sim.fortigate("fw");
    secret(&ns, "fw-token", KEY, fg.ca_pem().expect("ca")).await;
    let controller = start_controller(&ns);
    assert!(cp.apply(&ns, &fortigate(fg.url(), "10s", "")).0);
    let (ok, err) = cp.apply(&ns, &admins(&["192.0.2.10", "10.0.0.0/24"]));
    assert!(ok, "{err}");

    let members = |what: &'static str, n: usize| {
        wait_for(what, WAIT, move || async move {
            fg.group_members("root", Table::Addrgrp, "allowed-admins")
                .filter(|m| m.len() == n)
        })
    };
    members("two members on the device", 2).await;
    let ready = group_ready(&ns, "True", "Converged", Duration::from_secs(10)).await;
    assert_eq!(ready.counts.desired, 2);
    assert_eq!(
        condition(&ready.conditions, "Synced"),
        Some(("True".into(), "Applied".into()))
    );
    let printed = cp.kubectl_ok(&["-n", &ns, "get", "addressgroups.fortisync.dev", "admins"]);
    assert!(
        printed.contains("True") && printed.contains("fw"),
        "printer columns: {printed}"
    );

    // Converged and idle: status writes do not re-trigger reconciles, so the device hears
    // nothing until the next resync (10 s here).
    fg.clear_requests();
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(fg.requests().len(), 0, "no device traffic between resyncs");

    // Edit the members: the device follows.
    assert!(
        cp.apply(&ns, &admins(&["192.0.2.10", "10.0.0.0/24", "198.51.100.7"]))
            .0
    );
    members("three members", 3).await;
    assert!(cp.apply(&ns, &admins(&["198.51.100.7"])).0);
    members("one member", 1).await;
    wait_for("the removed objects are deleted", WAIT, || async {
        (fg.objects("root", Table::Address).len() == 1).then_some(())
    })
    .await;

    // Delete with deletionPolicy Delete (the default): our objects and group go.
    let out = cp.kubectl(&[
        "-n",
        &ns,
        "delete",
        "addressgroups.fortisync.dev",
        "admins",
        "--wait=true",
        "--timeout=20s",
    ]);
    if !out.status.success() {
        let status = cp.kubectl_ok(&[
            "-n",
            &ns,
            "get",
            "addressgroups.fortisync.dev",
            "admins",
            "-o",
            "yaml",
        ]);
        let events = cp.kubectl_ok(&[
            "-n",
            &ns,
            "get",
            "events.events.k8s.io",
            "-o",
            "custom-columns=REASON:.reason,NOTE:.note",
        ]);
        panic!("delete did not finish:\n{status}\nevents:\n{events}");
    }
    assert!(
        fg.object("root", Table::Addrgrp, "allowed-admins")
            .is_none()
    );
    assert!(fg.objects("root", Table::Address).is_empty());
    assert!(!controller.is_finished(), "the controller kept running");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_key_is_reported_and_tried_once() {
    let cp = control_plane();
    cp.install_crds();
    let ns = cp.namespace("ag-wrong-key");
    let sim = fortigate_sim("").await;
    let fg = sim.fortigate("fw");
    secret(&ns, "fw-token", "not-the-key", fg.ca_pem().expect("ca")).await;
    let _controller = start_controller(&ns);
    assert!(cp.apply(&ns, &fortigate(fg.url(), "10s", "")).0);
    assert!(cp.apply(&ns, &admins(&["192.0.2.10"])).0);
    let (status, error) = wait_for("a failure in status", Duration::from_secs(10), || async {
        let s = group_status(&ns).await?;
        let e = s.last_error.clone()?;
        Some((s, e))
    })
    .await;
    assert_eq!(error.reason, "Unauthorized");
    assert!(error.remedy.contains("Regenerate"), "{}", error.remedy);
    assert_eq!(
        condition(&status.conditions, "Ready").map(|c| c.0),
        Some("False".into())
    );
    // More reconciles happen (edits re-trigger), but the frozen key is never sent again:
    // first the pass that saw the edit (generation 2) has run and reported, then a while for
    // any retry it might have scheduled.
    assert!(cp.apply(&ns, &admins(&["192.0.2.10", "192.0.2.11"])).0);
    let edited = group_observed(&ns, "admins", WAIT).await;
    assert_eq!(
        edited.last_error.map(|e| e.reason),
        Some("Unauthorized".into()),
        "the edit's pass reports the frozen key"
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    let loopback = IpAddr::from([127, 0, 0, 1]);
    assert_eq!(
        fg.auth_failures_from(loopback),
        1,
        "exactly one failed attempt reached the device"
    );
    assert_eq!(fg.lockout_remaining(loopback), None);
}
