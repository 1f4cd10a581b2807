//! Leader failover under load: two `fortisync run` replicas, many AddressGroups being
//! converged, the leader killed (SIGKILL, so it never releases the Lease) mid-burst. The
//! device's request log, where each request names its replica (`User-Agent`), shows that the
//! old leader wrote nothing once the new one had started, that every group got there, and that
//! no write was doubled.

use std::time::{Duration, Instant};

use fortisync::sim::fortios::{FaultRule, Table};
use k8s_openapi::api::coordination::v1::Lease;
use kube::Api;

use crate::support::control_plane;
use crate::support::device_log::{agent_of, is_write};
use crate::support::fixture::{
    KEY, fortigate, fortigate_sim, group_named, member, secret, wait_for,
};
use crate::support::run::RunProcess;

const GROUPS: usize = 40;

async fn holder(ns: &str) -> Option<String> {
    let api: Api<Lease> = Api::namespaced(control_plane().client(), ns);
    api.get_opt("fortisync-controller")
        .await
        .ok()??
        .spec?
        .holder_identity
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leader_killed_mid_burst_writes_nothing_after_the_new_leader_starts_and_no_write_is_doubled()
 {
    let cp = control_plane();
    cp.install_crds();
    let ns = cp.namespace("failover");
    let sim = fortigate_sim("").await;
    let fg = sim.fortigate("fw");
    secret(&ns, "fw-token", KEY, fg.ca_pem().expect("ca")).await;
    assert!(cp.apply(&ns, &fortigate(fg.url(), "1h", "")).0);
    // Every write takes 100 ms on the device, so the burst below lasts long enough to be cut.
    fg.add_fault(FaultRule {
        path: "/api/v2/cmdb/".into(),
        method: Some("POST".into()),
        latency_ms: 100,
        ..FaultRule::default()
    });
    let lease = ["--lease-duration-seconds", "4"];
    let mut replicas = vec![
        RunProcess::start(cp, &ns, "failover-a", &lease),
        RunProcess::start(cp, &ns, "failover-b", &lease),
    ];
    let leader = wait_for("a Lease holder", Duration::from_secs(30), || holder(&ns)).await;
    let at = replicas
        .iter()
        .position(|r| r.identity == leader)
        .expect("the holder is one of ours");
    let old = replicas.remove(at);
    let new = replicas.pop().expect("the other replica");
    let (old_agent, new_agent) = (agent_of(&old.identity), agent_of(&new.identity));

    let burst: Vec<String> = (0..GROUPS)
        .map(|i| {
            group_named(
                &format!("g{i}"),
                &format!("group-{i}"),
                ("FortiGate", "fw"),
                "",
                &[member(&format!("198.51.100.{}", i + 1))],
            )
        })
        .collect();
    let (ok, err) = cp.apply(&ns, &burst.join("---\n"));
    assert!(ok, "{err}");
    // Mid-burst: a quarter of the 2 x GROUPS writes done.
    wait_for(
        "a quarter of the burst written",
        Duration::from_secs(60),
        || async {
            let done = fg.requests().iter().filter(|r| is_write(r)).count();
            (done >= GROUPS / 2).then_some(())
        },
    )
    .await;
    let written_before = fg.requests().iter().filter(|r| is_write(r)).count();
    drop(old);
    let killed = Instant::now();
    let first_new = wait_for(
        "the new leader's first device request",
        Duration::from_secs(30),
        || async {
            fg.requests()
                .iter()
                .position(|r| r.user_agent.as_deref() == Some(new_agent.as_str()))
        },
    )
    .await;
    let takeover = killed.elapsed();
    wait_for(
        "every group on the device",
        Duration::from_secs(90),
        || async {
            (0..GROUPS)
                .all(|i| {
                    fg.group_members("root", Table::Addrgrp, &format!("group-{i}"))
                        == Some(vec![format!("fs_198.51.100.{}", i + 1)])
                })
                .then_some(())
        },
    )
    .await;
    let done = killed.elapsed();
    // A real process: time for a doubled write, if any, to reach the device and be counted.
    tokio::time::sleep(Duration::from_secs(3)).await;

    let log = fg.requests();
    assert!(
        log.iter().all(|r| [old_agent.as_str(), new_agent.as_str()]
            .contains(&r.user_agent.as_deref().unwrap_or_default())),
        "every request names one of the two replicas: {log:#?}"
    );
    let late: Vec<_> = log[first_new..]
        .iter()
        .filter(|r| r.user_agent.as_deref() == Some(old_agent.as_str()))
        .collect();
    assert!(
        late.is_empty(),
        "the old leader sent {} request(s) after the new leader's first: {late:#?}",
        late.len()
    );
    let before: Vec<_> = log[..first_new].iter().collect();
    assert!(
        before
            .iter()
            .all(|r| r.user_agent.as_deref() == Some(old_agent.as_str())),
        "the standby sent nothing before it led"
    );
    let writes: Vec<String> = log
        .iter()
        .filter(|r| is_write(r))
        .map(|r| format!("{} {} {}", r.method, r.path, r.status))
        .collect();
    // One address and one group per AddressGroup, each exactly once.
    assert_eq!(writes.len(), 2 * GROUPS, "{writes:#?}");
    assert!(writes.iter().all(|w| w.ends_with(" 200")), "{writes:#?}");
    let by_old = log[..first_new].iter().filter(|r| is_write(r)).count();
    eprintln!(
        "failover: {GROUPS} groups; the leader was killed after {written_before} writes (it made {by_old}); the new leader's first device request came {:.2} s later (Lease 4 s), every group was on the device {:.2} s after the kill; {} writes in all",
        takeover.as_secs_f64(),
        done.as_secs_f64(),
        writes.len()
    );
}
