//! The API server restarts under a running controller: reconciles resume within seconds of
//! it answering again, without the controller restarting.

use std::time::{Duration, Instant};

use fortisync::api::AddressGroup;
use fortisync::sim::fortios::Table;
use kube::Api;

use crate::support::control_plane::ControlPlane;
use crate::support::fixture::{
    KEY, condition, fortigate, fortigate_sim, group, group_named, member, secret_in,
    start_controller_in, wait_for,
};

async fn ready(api: &Api<AddressGroup>, name: &str) -> Option<()> {
    let s = api.get(name).await.ok()?.status?;
    (condition(&s.conditions, "Ready") == Some(("True".into(), "Converged".into()))).then_some(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconciles_resume_within_seconds_of_an_api_server_restart() {
    let cp = ControlPlane::private("restart");
    cp.install_crds();
    let ns = cp.namespace("restart");
    let sim = fortigate_sim("").await;
    let fg = sim.fortigate("fw");
    secret_in(&cp, &ns, "fw-token", KEY, fg.ca_pem().expect("ca")).await;
    let controller = start_controller_in(&cp, &ns);
    assert!(cp.apply(&ns, &fortigate(fg.url(), "1h", "")).0);
    assert!(
        cp.apply(
            &ns,
            &group(("FortiGate", "fw"), "", &[member("192.0.2.10")])
        )
        .0
    );
    let groups: Api<AddressGroup> = Api::namespaced(cp.client(), &ns);
    wait_for("the first group converged", Duration::from_secs(30), || {
        ready(&groups, "admins")
    })
    .await;

    // Down long enough for the watches to fail and back off several times.
    tokio::task::block_in_place(|| cp.restart_apiserver(Duration::from_secs(8)));
    let back = Instant::now();

    // A resource created after the restart converges without a controller restart.
    let second = group_named(
        "second",
        "second-group",
        ("FortiGate", "fw"),
        "",
        &[member("192.0.2.20")],
    );
    assert!(cp.apply(&ns, &second).0);
    wait_for(
        "the group created after the restart on the device",
        Duration::from_secs(15),
        || async {
            (fg.group_members("root", Table::Addrgrp, "second-group")?
                == ["fs_192.0.2.20".to_string()])
            .then_some(())
        },
    )
    .await;
    eprintln!(
        "e2e: a group created after the API server came back was on the device {:.1?} later",
        back.elapsed()
    );
    assert!(!controller.is_finished(), "the controller kept running");
}
