//! A member's expiry and a resource's deletion with `deletionPolicy: Orphan`, on a FortiGate.

use std::time::{Duration, Instant};

use fortisync::api::AddressGroup;
use fortisync::sim::fortios::Table;
use kube::Api;
use serde_json::json;

use crate::support::control_plane;
use crate::support::fixture::{
    KEY, expiring, fortigate, fortigate_sim, group, group_ready, group_status, member, members_of,
    secret, start_controller, wait_for,
};

const CONVERGE_WAIT: Duration = Duration::from_secs(30);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_member_is_removed_on_time_without_waiting_for_the_resync() {
    let cp = control_plane();
    cp.install_crds();
    let ns = cp.namespace("ag-expiry");
    let sim = fortigate_sim("").await;
    let fg = sim.fortigate("fw");
    secret(&ns, "fw-token", KEY, fg.ca_pem().expect("ca")).await;
    let _controller = start_controller(&ns);
    // A resync far away: only the expiry can bring the removal.
    assert!(cp.apply(&ns, &fortigate(fg.url(), "1h", "")).0);
    let expires =
        jiff::Timestamp::from_second(jiff::Timestamp::now().as_second() + 8).expect("timestamp");
    let members = [member("192.0.2.10"), expiring("192.0.2.99", expires)];
    let (ok, err) = cp.apply(&ns, &group(("FortiGate", "fw"), "", &members));
    assert!(ok, "{err}");
    let converged = group_ready(&ns, "True", "Converged", CONVERGE_WAIT).await;
    assert_eq!(converged.counts.desired, 2);
    assert_eq!(converged.next_expiry.as_ref().map(|t| t.0), Some(expires));
    assert_eq!(members_of(fg), ["fs_192.0.2.10", "fs_192.0.2.99"]);

    let until_expiry = Duration::try_from(expires.duration_since(jiff::Timestamp::now()))
        .expect("the expiry is still ahead after converging");
    let started = Instant::now();
    wait_for(
        "the expired member removed",
        until_expiry + Duration::from_secs(10),
        || async { (members_of(fg) == ["fs_192.0.2.10"]).then_some(()) },
    )
    .await;
    let removed_after = started.elapsed();
    assert!(
        removed_after + Duration::from_millis(100) >= until_expiry,
        "not before the expiry: removed after {removed_after:?}, expiry in {until_expiry:?}"
    );
    assert!(
        removed_after <= until_expiry + Duration::from_secs(2),
        "on time: removed {:?} after the expiry",
        removed_after - until_expiry
    );
    wait_for("its object deleted", Duration::from_secs(2), || async {
        fg.object("root", Table::Address, "fs_192.0.2.99")
            .is_none()
            .then_some(())
    })
    .await;
    let after = wait_for(
        "status after the expiry",
        Duration::from_secs(5),
        || async {
            let s = group_status(&ns).await?;
            (s.counts.desired == 1).then_some(s)
        },
    )
    .await;
    assert_eq!(after.counts.present, 1);
    assert_eq!(after.next_expiry, None);
    assert_eq!(
        crate::support::fixture::condition(&after.conditions, "Ready"),
        Some(("True".into(), "Converged".into()))
    );
    assert_eq!(after.drift_repairs, 0, "an expiry is not drift");
    assert!(fg.object("root", Table::Address, "fs_192.0.2.10").is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn orphan_deletion_leaves_every_device_object_and_exclusive_never_deletes_foreign_objects() {
    let cp = control_plane();
    cp.install_crds();
    let ns = cp.namespace("ag-orphan");
    let sim = fortigate_sim("").await;
    let fg = sim.fortigate("fw");
    // The group exists already, with a member an admin put there.
    fg.put_object(
        "root",
        Table::Address,
        json!({"name": "admin-laptop", "type": "ipmask", "subnet": "203.0.113.5 255.255.255.255"}),
    )
    .expect("admin address");
    fg.put_object(
        "root",
        Table::Addrgrp,
        json!({"name": "allowed-admins", "member": [{"name": "admin-laptop"}], "comment": "by hand"}),
    )
    .expect("admin group");
    secret(&ns, "fw-token", KEY, fg.ca_pem().expect("ca")).await;
    let _controller = start_controller(&ns);
    assert!(cp.apply(&ns, &fortigate(fg.url(), "10s", "")).0);
    let members = [member("192.0.2.10"), member("10.0.0.0/24")];
    // A hand-made group is Exclusive's only when taken over (else GroupNotOwned).
    let spec = "  membership: Exclusive\n  takeOver: true\n  deletionPolicy: Orphan\n";
    let (ok, err) = cp.apply(&ns, &group(("FortiGate", "fw"), spec, &members));
    assert!(ok, "{err}");
    let converged = group_ready(&ns, "True", "Converged", CONVERGE_WAIT).await;
    assert_eq!(converged.counts.foreign, 0);
    assert!(converged.foreign_members.is_empty());
    assert_eq!(
        members_of(fg),
        ["fs_10.0.0.0_24", "fs_192.0.2.10"],
        "Exclusive: the admin's member left the group"
    );
    assert!(
        fg.object("root", Table::Address, "admin-laptop").is_some(),
        "but its object is never deleted"
    );

    fg.clear_requests();
    let out = cp.kubectl(&[
        "-n",
        &ns,
        "delete",
        "addressgroups.fortisync.dev",
        "admins",
        "--wait=true",
        "--timeout=20s",
    ]);
    assert!(
        out.status.success(),
        "delete: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let api: Api<AddressGroup> = Api::namespaced(cp.client(), &ns);
    assert!(api.get_opt("admins").await.expect("get").is_none());
    assert_eq!(members_of(fg), ["fs_10.0.0.0_24", "fs_192.0.2.10"]);
    let mut addresses: Vec<String> = fg
        .objects("root", Table::Address)
        .iter()
        .filter_map(|o| o["name"].as_str().map(str::to_string))
        .collect();
    addresses.sort();
    assert_eq!(
        addresses,
        ["admin-laptop", "fs_10.0.0.0_24", "fs_192.0.2.10"]
    );
    let writes: Vec<_> = fg
        .requests()
        .into_iter()
        .filter(|r| r.method != "GET")
        .collect();
    assert!(writes.is_empty(), "Orphan writes nothing: {writes:?}");
}
