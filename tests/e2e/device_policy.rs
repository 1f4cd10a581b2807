//! A cluster administrator's DevicePolicy: only the namespaces it grants may use a device, and
//! only for the device names it grants them; a refused namespace sends nothing to the device.

use std::time::Duration;

use fortisync::sim::fortios::Table;

use crate::support::control_plane;
use crate::support::fixture::{
    KEY, condition_message, fortigate, fortigate_sim, group, group_named, group_ready, member,
    secret, start_controller, wait_for,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_granted_namespaces_and_names_reach_a_device_a_policy_governs() {
    let cp = control_plane();
    cp.install_crds();
    let granted = cp.namespace("policy-a");
    let other = cp.namespace("policy-b");
    let sim = fortigate_sim("").await;
    let fg = sim.fortigate("fw");
    let policy = format!(
        "apiVersion: fortisync.dev/v1alpha1\nkind: DevicePolicy\nmetadata: {{name: {granted}}}\nspec:\n  devices: [\"{}\"]\n  namespaces:\n  - {{namespace: {granted}, names: [\"team-a-*\"]}}\n",
        fg.url()
    );
    let (ok, err) = cp.apply("default", &policy);
    assert!(ok, "{err}");
    for ns in [&granted, &other] {
        secret(ns, "fw-token", KEY, fg.ca_pem().expect("ca")).await;
        assert!(cp.apply(ns, &fortigate(fg.url(), "1h", "")).0);
    }
    let _a = start_controller(&granted);
    let _b = start_controller(&other);
    let peer = "127.0.0.1".parse().expect("ip");

    // The other namespace may not even connect.
    assert!(
        cp.apply(
            &other,
            &group(("FortiGate", "fw"), "", &[member("192.0.2.66")])
        )
        .0
    );
    let refused = group_ready(
        &other,
        "False",
        "NotAllowedByPolicy",
        Duration::from_secs(30),
    )
    .await;
    let message = condition_message(&refused.conditions, "Ready");
    assert!(message.contains("nothing was sent"), "{message}");

    // The granted namespace: a name outside its grant is refused, one inside converges.
    assert!(
        cp.apply(
            &granted,
            &group(("FortiGate", "fw"), "", &[member("192.0.2.10")])
        )
        .0
    );
    let outside = group_ready(
        &granted,
        "False",
        "NotAllowedByPolicy",
        Duration::from_secs(30),
    )
    .await;
    let message = condition_message(&outside.conditions, "Ready");
    assert!(
        message.contains("spec.groupName \"allowed-admins\"") && message.contains("team-a-*"),
        "{message}"
    );
    assert!(
        fg.object("root", Table::Addrgrp, "allowed-admins")
            .is_none()
    );
    let inside = group_named(
        "web",
        "team-a-web",
        ("FortiGate", "fw"),
        "",
        &[member("192.0.2.20")],
    );
    assert!(cp.apply(&granted, &inside).0);
    wait_for(
        "the granted group on the device",
        Duration::from_secs(30),
        || async {
            (fg.group_members("root", Table::Addrgrp, "team-a-web")?
                == ["fs_192.0.2.20".to_string()])
            .then_some(())
        },
    )
    .await;
    assert!(
        fg.object("root", Table::Addrgrp, "allowed-admins")
            .is_none()
    );
    assert_eq!(fg.auth_failures_from(peer), 0);
    cp.kubectl_ok(&["delete", "devicepolicy", &granted]);
}
