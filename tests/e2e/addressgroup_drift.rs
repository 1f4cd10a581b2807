//! Out-of-band changes on the device, caught by the resync: a member an admin added is kept
//! and reported (Additive), one of ours that an admin removed is put back and counted.

use std::time::Duration;

use fortisync::sim::fortios::{FortiGateHandle, Table};
use serde_json::json;

use crate::support::control_plane;
use crate::support::fixture::{
    KEY, condition_message, events_of, fortigate, fortigate_sim, group, group_ready, member,
    members_of, secret, start_controller, wait_for,
};

/// The resync interval is 10 s with ±10% jitter: one resync fits in 20 s from any moment.
const RESYNC_WAIT: Duration = Duration::from_secs(20);
const CONVERGE_WAIT: Duration = Duration::from_secs(30);

/// An admin in the GUI: an address object and its membership in the group.
fn admin_adds_laptop(fg: &FortiGateHandle) {
    fg.put_object(
        "root",
        Table::Address,
        json!({"name": "admin-laptop", "type": "ipmask", "subnet": "203.0.113.5 255.255.255.255"}),
    )
    .expect("admin creates an address");
    fg.add_member("root", Table::Addrgrp, "allowed-admins", "admin-laptop")
        .expect("admin adds it to the group");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_an_admin_added_is_kept_and_reported_after_the_resync() {
    let cp = control_plane();
    cp.install_crds();
    let ns = cp.namespace("ag-foreign");
    let sim = fortigate_sim("").await;
    let fg = sim.fortigate("fw");
    secret(&ns, "fw-token", KEY, fg.ca_pem().expect("ca")).await;
    let _controller = start_controller(&ns);
    assert!(cp.apply(&ns, &fortigate(fg.url(), "10s", "")).0);
    let members = [member("192.0.2.10"), member("10.0.0.0/24")];
    let (ok, err) = cp.apply(&ns, &group(("FortiGate", "fw"), "", &members));
    assert!(ok, "{err}");
    let converged = group_ready(&ns, "True", "Converged", CONVERGE_WAIT).await;
    assert_eq!(converged.counts.foreign, 0);

    admin_adds_laptop(fg);
    let seen = wait_for("the foreign member in status", RESYNC_WAIT, || async {
        let s = crate::support::fixture::group_status(&ns).await?;
        (s.counts.foreign == 1).then_some(s)
    })
    .await;

    assert_eq!(seen.foreign_members, vec!["admin-laptop".to_string()]);
    assert_eq!(seen.counts.desired, 2);
    assert_eq!(seen.counts.present, 3);
    assert_eq!(seen.drift_repairs, 0, "a foreign member is not drift");
    assert_eq!(
        crate::support::fixture::condition(&seen.conditions, "Ready"),
        Some(("True".into(), "Converged".into()))
    );
    assert_eq!(
        condition_message(&seen.conditions, "Ready"),
        "2 member(s) converged; 1 foreign member(s) kept"
    );
    assert_eq!(
        members_of(fg),
        ["admin-laptop", "fs_10.0.0.0_24", "fs_192.0.2.10"],
        "Additive: the admin's member stays in the group"
    );
    assert!(fg.object("root", Table::Address, "admin-laptop").is_some());
    let events = events_of(&ns, "admins").await;
    assert!(
        events
            .iter()
            .all(|(_, reason, _)| reason != "DriftRepaired"),
        "{events:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn members_and_objects_an_admin_deleted_are_repaired_counted_and_reported() {
    let cp = control_plane();
    cp.install_crds();
    let ns = cp.namespace("ag-drift");
    let sim = fortigate_sim("").await;
    let fg = sim.fortigate("fw");
    secret(&ns, "fw-token", KEY, fg.ca_pem().expect("ca")).await;
    let _controller = start_controller(&ns);
    assert!(cp.apply(&ns, &fortigate(fg.url(), "10s", "")).0);
    let members = [member("192.0.2.10"), member("10.0.0.0/24")];
    assert!(cp.apply(&ns, &group(("FortiGate", "fw"), "", &members)).0);
    let converged = group_ready(&ns, "True", "Converged", CONVERGE_WAIT).await;
    assert_eq!(converged.drift_repairs, 0);

    // One member taken out of the group; the other taken out and its object deleted.
    fg.remove_member("root", Table::Addrgrp, "allowed-admins", "fs_192.0.2.10")
        .expect("admin removes a member");
    fg.remove_member("root", Table::Addrgrp, "allowed-admins", "fs_10.0.0.0_24")
        .expect("admin removes a member");
    fg.delete_object("root", Table::Address, "fs_10.0.0.0_24")
        .expect("admin deletes our object");
    assert!(
        fg.object("root", Table::Address, "fs_10.0.0.0_24")
            .is_none()
    );

    let repaired = wait_for("the drift repaired", RESYNC_WAIT, || async {
        let s = crate::support::fixture::group_status(&ns).await?;
        (s.drift_repairs > 0).then_some(s)
    })
    .await;
    assert_eq!(members_of(fg), ["fs_10.0.0.0_24", "fs_192.0.2.10"]);
    assert!(
        fg.object("root", Table::Address, "fs_10.0.0.0_24")
            .is_some()
    );
    // Recreate the object, add both members back: three writes.
    assert_eq!(repaired.drift_repairs, 3);
    assert_eq!(
        crate::support::fixture::condition(&repaired.conditions, "Ready"),
        Some(("True".into(), "Converged".into()))
    );
    let events = events_of(&ns, "admins").await;
    let drift: Vec<_> = events
        .iter()
        .filter(|(_, reason, _)| reason == "DriftRepaired")
        .collect();
    assert_eq!(drift.len(), 1, "{events:?}");
    let (type_, _, note) = drift[0];
    assert_eq!(type_, "Warning");
    assert!(
        note.starts_with("reverted 3 out-of-band change(s):"),
        "{note}"
    );
    assert!(note.contains("+ address fs_10.0.0.0_24"), "{note}");
}
