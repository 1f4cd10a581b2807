//! Two `fortisync run` replicas: exactly one holds the Lease and writes to the device, the other
//! keeps its caches warm; when the holder dies the other takes the Lease over and converges the
//! next edit.

use std::time::Duration;

use fortisync::sim::fortios::Table;
use k8s_openapi::api::coordination::v1::Lease;
use kube::Api;

use crate::support::control_plane;
use crate::support::fixture::{
    KEY, fortigate, fortigate_sim, group, group_ready, member, secret, wait_for,
};
use crate::support::run::RunProcess;

/// A replica with a 4 s Lease, so the takeover below waits seconds, not the default 15.
fn replica(ns: &str, identity: &str) -> RunProcess {
    RunProcess::start(
        control_plane(),
        ns,
        identity,
        &["--lease-duration-seconds", "4"],
    )
}

async fn holder(ns: &str) -> Option<String> {
    let api: Api<Lease> = Api::namespaced(control_plane().client(), ns);
    api.get_opt("fortisync-controller")
        .await
        .ok()??
        .spec?
        .holder_identity
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_the_lease_holder_writes_and_the_standby_takes_over_when_it_dies() {
    let cp = control_plane();
    cp.install_crds();
    let ns = cp.namespace("replicas");
    let sim = fortigate_sim("").await;
    let fg = sim.fortigate("fw");
    secret(&ns, "fw-token", KEY, fg.ca_pem().expect("ca")).await;
    assert!(cp.apply(&ns, &fortigate(fg.url(), "10s", "")).0);
    let mut replicas = vec![replica(&ns, "replica-a"), replica(&ns, "replica-b")];
    assert!(
        cp.apply(
            &ns,
            &group(("FortiGate", "fw"), "", &[member("192.0.2.10")])
        )
        .0
    );
    group_ready(&ns, "True", "Converged", Duration::from_secs(40)).await;
    let leader = holder(&ns).await.expect("a Lease holder");
    let (lead, standby): (Vec<_>, Vec<_>) = replicas.drain(..).partition(|r| r.identity == leader);
    let (lead, standby) = (
        lead.into_iter().next().expect("the holder is one of ours"),
        standby.into_iter().next().expect("the other replica"),
    );
    assert_eq!(
        fg.group_members("root", Table::Addrgrp, "allowed-admins"),
        Some(vec!["fs_192.0.2.10".to_string()])
    );
    assert_eq!(lead.writes(), 2, "the holder wrote: {}", lead.log());
    assert_eq!(
        standby.writes(),
        0,
        "the standby never writes: {}",
        standby.log()
    );
    // Warm standby: its watches run and it is ready (caches listed), but it writes nothing.
    assert!(
        standby.log().contains("standby: caches warm"),
        "{}",
        standby.log()
    );
    assert!(
        standby
            .log()
            .contains("every watch has listed its resources")
    );
    assert!(!standby.log().contains("took the Lease"));

    // The leader dies without releasing the Lease; the standby takes it after it expires.
    drop(lead);
    let next = wait_for(
        "the standby holding the Lease",
        Duration::from_secs(30),
        || async { holder(&ns).await.filter(|h| h == &standby.identity) },
    )
    .await;
    assert_eq!(next, standby.identity);
    let two = [member("192.0.2.10"), member("192.0.2.11")];
    assert!(cp.apply(&ns, &group(("FortiGate", "fw"), "", &two)).0);
    wait_for(
        "the edit on the device",
        Duration::from_secs(30),
        || async {
            let mut m = fg.group_members("root", Table::Addrgrp, "allowed-admins")?;
            m.sort();
            (m == ["fs_192.0.2.10", "fs_192.0.2.11"]).then_some(())
        },
    )
    .await;
    assert!(
        standby.log().contains("took the Lease"),
        "{}",
        standby.log()
    );
    assert_eq!(standby.writes(), 2, "{}", standby.log());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_drains_exits_at_once_releases_the_lease_and_the_standby_leads() {
    let cp = control_plane();
    cp.install_crds();
    let ns = cp.namespace("sigterm");
    let sim = fortigate_sim("").await;
    let fg = sim.fortigate("fw");
    secret(&ns, "fw-token", KEY, fg.ca_pem().expect("ca")).await;
    assert!(cp.apply(&ns, &fortigate(fg.url(), "10s", "")).0);
    let mut replicas = vec![
        RunProcess::start(cp, &ns, "term-a", &[]),
        RunProcess::start(cp, &ns, "term-b", &[]),
    ];
    assert!(
        cp.apply(
            &ns,
            &group(("FortiGate", "fw"), "", &[member("192.0.2.10")])
        )
        .0
    );
    group_ready(&ns, "True", "Converged", Duration::from_secs(40)).await;
    let leader = holder(&ns).await.expect("a Lease holder");
    let at = replicas
        .iter()
        .position(|r| r.identity == leader)
        .expect("ours");
    let mut lead = replicas.remove(at);
    let standby = replicas.pop().expect("the other replica");

    let (status, took) = lead
        .terminate(Duration::from_secs(10))
        .unwrap_or_else(|| panic!("still running 10 s after SIGTERM:\n{}", lead.log()));
    assert!(status.success(), "exit {status:?}:\n{}", lead.log());
    assert!(
        lead.log().contains("the Lease is released"),
        "{}",
        lead.log()
    );
    let handed = std::time::Instant::now();
    let next = wait_for(
        "the standby holding the Lease",
        Duration::from_secs(20),
        || async { holder(&ns).await.filter(|h| h == &standby.identity) },
    )
    .await;
    assert_eq!(next, standby.identity);
    eprintln!(
        "SIGTERM: the leader exited in {:.2} s; the standby held the Lease {:.2} s later (Lease duration 15 s)",
        took.as_secs_f64(),
        handed.elapsed().as_secs_f64()
    );
}
