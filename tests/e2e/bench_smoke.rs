//! The fleet benchmark (`scripts/bench`, `benches/fleet.rs`) in miniature, so it cannot rot:
//! every scenario runs, and its device counts are exactly those of a converging controller
//! (never its times, which the machine decides). The Ansible peer is left out: installing it
//! takes pip minutes; fortisync's half of the peer comparison runs.

use std::time::Duration;

use crate::support::control_plane;
use crate::support::fleet::{self, Figure, FleetRun};
use crate::support::{figures, fleet_fair, fleet_kinds, fleet_peer, fleet_process};

fn tiny() -> FleetRun {
    FleetRun {
        groups: 4,
        members: 3,
        latency_ms: 0,
        edits: 2,
        steady: vec![2],
        resync: Duration::from_secs(10),
        window: Duration::from_secs(1),
        timeout: Duration::from_secs(120),
        big_entries: 50,
        fair_groups: 3,
        // Fewer than the controller's concurrent reconciles: the burst must still converge.
        fair_hung: 1,
        fair_timeout: Duration::from_secs(120),
        mixed: 20,
        peer: 5,
        peer_timeout: Duration::from_secs(120),
    }
}

fn extra(f: &Figure, key: &str) -> f64 {
    f.extra
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| *v)
        .unwrap_or_else(|| panic!("{} has no {key}: {f:?}", f.scenario))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_fleet_bench_runs_every_scenario_with_the_minimal_device_writes() {
    let run = tiny();
    let sim = fleet::simulator(&fleet::devices(&run), run.admins()).await;
    let cp = control_plane();
    let mut figures = fleet::run(cp, &sim, &run).await;
    figures.extend(fleet_kinds::run(cp, &sim, &run).await);
    figures.push(fleet_fair::run(cp, &sim, &run).await);
    figures.push(fleet_process::run(cp, &sim, &run).await);
    figures.extend(fleet_peer::run(cp, &sim, &run, run.peer, None).await);
    // Shown when the test fails (and with --nocapture).
    println!("{}", figures::table(&figures));
    let scenarios: Vec<&str> = figures.iter().map(|f| f.scenario.as_str()).collect();
    assert_eq!(
        scenarios,
        [
            "burst",
            "edit:AG",
            "restart",
            "steady",
            "edit:EC",
            "edit:TH",
            "ec-big",
            "steady:EC",
            "steady:TH",
            "fair-hang",
            "process",
            "peer:ours"
        ]
    );
    let by = |s: &str| figures.iter().find(|f| f.scenario == s).expect(s);
    let burst = by("burst");
    // From empty: one create per address object and one per group, nothing rewritten; the
    // edit made during the burst adds one object, and one member write unless its group was
    // still to be created.
    assert!(
        (4 * (3 + 1) + 1..=4 * (3 + 1) + 2).contains(&burst.calls.writes),
        "{burst:?}"
    );
    assert_eq!(burst.limit_calls, 4 * 4 + 2 + 2);
    // At 0 ms the burst's limit is the apiserver taking the same creates with no controller.
    assert!(extra(burst, "api_limit_s") > 0.0, "{burst:?}");
    assert_eq!(
        burst.limit_seconds,
        extra(burst, "api_limit_s"),
        "{burst:?}"
    );
    assert!(extra(burst, "edit_in_burst_ms").is_finite(), "{burst:?}");
    // Add a member (create its object, add it), then remove it (remove, delete the object).
    let edit = by("edit:AG");
    assert_eq!(edit.calls.writes, 4, "{edit:?}");
    // A restart finds everything converged: reads only.
    let restart = by("restart");
    assert_eq!(restart.calls.writes, 0, "{restart:?}");
    assert!(restart.calls.reads <= 4 * 2 * 2, "{restart:?}");
    let steady = by("steady");
    assert_eq!(steady.calls.writes, 0, "{steady:?}");
    assert_eq!(extra(steady, "dev_writes_per_h"), 0.0);
    // Each entry added to a Push connector is one dynamic `add`.
    let ec = by("edit:EC");
    assert_eq!(ec.calls.writes, 2, "{ec:?}");
    // A grant writes the slot, a revoke writes it back.
    let th = by("edit:TH");
    assert_eq!(th.calls.writes, 2, "{th:?}");
    // The resource object, then the entries in one push.
    let big = by("ec-big");
    assert_eq!(big.calls.writes, 2, "{big:?}");
    assert_eq!(extra(big, "pushes"), 1.0);
    // Converged connectors resync with reads only: the table once, each list once.
    let steady_ec = by("steady:EC");
    assert_eq!(steady_ec.calls.writes, 0, "{steady_ec:?}");
    assert!(steady_ec.calls.reads <= 1 + 2, "{steady_ec:?}");
    // Nine TrustedHosts on one FortiGate: at most the one listing per interval, no write.
    let steady_th = by("steady:TH");
    assert_eq!(steady_th.resources, 9, "{steady_th:?}");
    assert_eq!(steady_th.calls.writes, 0, "{steady_th:?}");
    assert!(steady_th.calls.reads <= 1, "{steady_th:?}");
    // The burst beside a hanging device converges, with its minimal writes.
    let fair = by("fair-hang");
    assert_eq!(fair.calls.writes, 3 * (3 + 1), "{fair:?}");
    assert!(
        !fair.extra.iter().any(|(k, _)| k.ends_with("_ready")),
        "{fair:?}"
    );
    // The child process converged all 20 (16 groups, 2 connectors, 2 TrustedHosts).
    let process = by("process");
    assert_eq!(extra(process, "ready"), 20.0, "{process:?}");
    // Four writes per group, two per connector (its resource, its push), one per TrustedHost.
    assert_eq!(process.calls.writes, 16 * 4 + 2 * 2 + 2, "{process:?}");
    assert!(extra(process, "rss_mib") > 0.0, "{process:?}");
    // One group of 5 members: 5 objects and the group.
    let peer = by("peer:ours");
    assert_eq!(peer.calls.writes, 5 + 1, "{peer:?}");
    assert_eq!(extra(peer, "ready"), 1.0);
    assert_eq!(figures::table(&figures).lines().count(), figures.len() + 1);
    assert_eq!(figures[0].json()["device_writes"], burst.calls.writes);
}
