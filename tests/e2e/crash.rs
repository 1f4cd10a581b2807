//! Crash consistency (issue 16, suite 2): the real `fortisync run` killed with SIGKILL at seeded
//! random points of a large convergence, and inside a FortiManager lock → commit, restarted each
//! time; afterwards the device holds exactly the declared state, nothing was created twice or
//! re-sent, and no workspace stays locked. Prints its figures.
//!
//! The test command runs the short form; `FORTISYNC_SUITE=long` runs the long one (1,000
//! members, 20 kills); `FORTISYNC_SUITE_SEED` picks other kill points.

use std::time::{Duration, Instant};

use fortisync::sim::Simulator;
use fortisync::sim::fortios::{FaultRule, Table};

use crate::addressgroup_fortimanager::estate;

use crate::support::control_plane;
use crate::support::fixture::{
    KEY, fortigate, fortigate_sim, group, group_status, member, secret, wait_for,
};
use crate::support::run::RunProcess;

/// How hard a suite pushes: the test command's short run, or `FORTISYNC_SUITE=long`.
struct Scale {
    members: usize,
    kills: usize,
    seed: u64,
}

impl Scale {
    fn from_env() -> Self {
        let long = std::env::var("FORTISYNC_SUITE").is_ok_and(|v| v == "long");
        let seed = std::env::var("FORTISYNC_SUITE_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(7);
        if long {
            Self {
                members: 1000,
                kills: 20,
                seed,
            }
        } else {
            Self {
                members: 200,
                kills: 4,
                seed,
            }
        }
    }
}

/// A small seeded generator (xorshift64*): the kill points repeat for a seed.
struct Draw(u64);

impl Draw {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) % n.max(1)
    }
}

fn replica(ns: &str) -> RunProcess {
    // One identity: a restarted replica renews its own Lease at once.
    RunProcess::start(
        control_plane(),
        ns,
        "crash",
        &["--lease-duration-seconds", "4"],
    )
}

fn address(i: usize) -> String {
    format!("10.{}.{}.{}", 20 + i / 65536, (i / 256) % 256, i % 256)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_at_random_points_of_a_large_convergence_leaves_the_exact_state_created_once() {
    let scale = Scale::from_env();
    let cp = control_plane();
    cp.install_crds();
    let ns = cp.namespace("crash-fg");
    let sim = fortigate_sim("").await;
    let fg = sim.fortigate("fw");
    // A few milliseconds per create, so the kills land while objects are being written.
    fg.add_fault(FaultRule {
        path: "/api/v2/cmdb/firewall/address".into(),
        method: Some("POST".into()),
        latency_ms: 3,
        ..FaultRule::default()
    });
    secret(&ns, "fw-token", KEY, fg.ca_pem().expect("ca")).await;
    assert!(cp.apply(&ns, &fortigate(fg.url(), "1h", "")).0);
    let members: Vec<String> = (0..scale.members).map(|i| member(&address(i))).collect();
    let (ok, err) = cp.apply(&ns, &group(("FortiGate", "fw"), "", &members));
    assert!(ok, "{err}");

    let creates = || {
        fg.requests()
            .iter()
            .filter(|r| r.method == "POST" && r.path == "/api/v2/cmdb/firewall/address")
            .count()
    };
    let mut draw = Draw(scale.seed.max(1));
    let mut points: Vec<usize> = (0..scale.kills)
        .map(|_| 1 + draw.below(scale.members as u64 - 1) as usize)
        .collect();
    points.sort_unstable();
    let mut killed_at = Vec::new();
    for point in &points {
        let run = replica(&ns);
        // Kill at the point, or as soon as the run gets there (an earlier run may have passed it).
        wait_for("the kill point", Duration::from_secs(90), || async {
            (creates() >= *point).then_some(())
        })
        .await;
        drop(run);
        killed_at.push(creates());
    }
    let restarted = Instant::now();
    let last = replica(&ns);
    let status = wait_for(
        "the group converged after the last restart",
        Duration::from_secs(120),
        || async {
            let s = group_status(&ns).await?;
            (s.counts.desired as usize == scale.members
                && s.conditions
                    .iter()
                    .any(|c| c.type_ == "Ready" && c.status == "True"))
            .then_some(s)
        },
    )
    .await;
    let converge = restarted.elapsed();

    let mut want: Vec<String> = (0..scale.members)
        .map(|i| format!("fs_{}", address(i)))
        .collect();
    want.sort();
    let mut held = fg
        .group_members("root", Table::Addrgrp, "allowed-admins")
        .expect("the group");
    held.sort();
    assert_eq!(held.len(), scale.members, "every member, once");
    assert_eq!(held, want, "exactly the declared members");
    let marker = format!("managed-by fortisync {ns}/admins");
    let mut ours: Vec<String> = fg
        .objects("root", Table::Address)
        .iter()
        .filter(|o| {
            o["comment"]
                .as_str()
                .is_some_and(|c| c.starts_with(&marker))
        })
        .filter_map(|o| o["name"].as_str().map(str::to_string))
        .collect();
    ours.sort();
    assert_eq!(ours, want, "no orphaned or duplicate object of ours");
    let log = fg.requests();
    let posts = |ok: bool| {
        log.iter()
            .filter(|r| r.method == "POST" && r.path == "/api/v2/cmdb/firewall/address")
            .filter(|r| (r.status == 200) == ok)
            .count()
    };
    assert_eq!(posts(true), scale.members, "each object created once");
    assert_eq!(
        posts(false),
        0,
        "no create re-sent after a restart (a duplicate would be refused)"
    );
    assert_eq!(status.drift_repairs, 0, "a restart is not drift");
    eprintln!(
        "crash suite (FortiGate): {} members, {} SIGKILLs at creates {:?} (seed {}); converged {:.1} s after the last restart; device requests {} ({} writes); controller writes in the last run {}",
        scale.members,
        scale.kills,
        killed_at,
        scale.seed,
        converge.as_secs_f64(),
        log.len(),
        log.iter().filter(|r| r.method != "GET").count(),
        last.writes(),
    );
}

fn fortimanager(url: &str) -> String {
    format!(
        "apiVersion: fortisync.dev/v1alpha1\nkind: FortiManager\nmetadata: {{name: fmg}}\nspec:\n  url: {url}\n  credentialsSecretRef: {{name: fmg-token, tokenKey: token}}\n  tls: {{caBundleSecretRef: {{name: fmg-token, key: ca.crt}}}}\n  resyncInterval: 1h\n  adom: root\n  install: Proxy\n  workspace: {{lockRetries: 1}}\n"
    )
}

fn adom_requests(sim: &Simulator, suffix: &str) -> usize {
    sim.fortimanager("fmg")
        .control()
        .requests()
        .iter()
        .filter(|r| r.method == "exec" && r.url.ends_with(suffix))
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_inside_a_fortimanager_lock_and_commit_leaves_no_lock_and_the_exact_state() {
    use fortisync::sim::fortimanager::FaultRule as RpcFault;

    let scale = Scale::from_env();
    let kills = scale.kills.min(6);
    let cp = control_plane();
    cp.install_crds();
    let ns = cp.namespace("crash-fmg");
    let sim = estate::Estate::default().start().await;
    let fmg = sim.fortimanager("fmg");
    let control = fmg.control().clone();
    secret(&ns, "fmg-token", estate::FMG_KEY, fmg.ca_pem().expect("ca")).await;
    assert!(cp.apply(&ns, &fortimanager(fmg.url())).0);
    // Each round declares ten more members, so every run has ADOM work to lock for; each
    // commit takes a while, so the kill lands inside lock → commit → unlock.
    let mut count = 40;
    let mut draw = Draw(scale.seed.max(1));
    let mut killed = 0;
    for _ in 0..kills {
        count += 10;
        let members: Vec<String> = (0..count).map(|i| member(&address(i))).collect();
        let (ok, err) = cp.apply(&ns, &group(("FortiManager", "fmg"), "", &members));
        assert!(ok, "{err}");
        control.add_fault(RpcFault {
            url: "/dvmdb/adom/root/workspace/commit".into(),
            latency_ms: 400,
            times: Some(1),
            ..RpcFault::default()
        });
        let locks = adom_requests(&sim, "/workspace/lock");
        let run = replica(&ns);
        let taken = tokio::time::timeout(Duration::from_secs(60), async {
            while adom_requests(&sim, "/workspace/lock") <= locks {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        })
        .await;
        assert!(
            taken.is_ok(),
            "no lock taken within 60 s; log:\n{}",
            run.log()
        );
        tokio::time::sleep(Duration::from_millis(draw.below(350))).await;
        drop(run);
        killed += 1;
    }
    control.clear_faults();
    let restarted = Instant::now();
    let _last = replica(&ns);
    wait_for(
        "the ADOM and both FortiGates converged",
        Duration::from_secs(120),
        || async {
            let s = group_status(&ns).await?;
            (s.counts.desired as usize == count
                && s.conditions
                    .iter()
                    .any(|c| c.type_ == "Ready" && c.status == "True"))
            .then_some(())
        },
    )
    .await;
    let converge = restarted.elapsed();
    let mut want: Vec<String> = (0..count).map(|i| format!("fs_{}", address(i))).collect();
    want.sort();
    assert_eq!(estate::adom_members(&sim).unwrap_or_default(), want);
    assert_eq!(estate::device_members(&sim, "fw-a"), want);
    assert_eq!(estate::device_members(&sim, "fw-b"), want);
    // Settled: the last pass released the lock.
    wait_for("the ADOM unlocked", Duration::from_secs(10), || async {
        control.lock_holder("root").is_none().then_some(())
    })
    .await;
    eprintln!(
        "crash suite (FortiManager): {count} members, {killed} SIGKILLs inside lock/commit (seed {}); converged {:.1} s after the last restart; locks {}, commits {}, unlocks {}",
        scale.seed,
        converge.as_secs_f64(),
        adom_requests(&sim, "/workspace/lock"),
        adom_requests(&sim, "/workspace/commit"),
        adom_requests(&sim, "/workspace/unlock"),
    );
}
