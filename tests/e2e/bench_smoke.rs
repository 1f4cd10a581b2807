//! The fleet benchmark (`scripts/bench`, `benches/fleet.rs`) in miniature, so it cannot rot:
//! every scenario runs, and its device counts are exactly those of a converging controller
//! (never its times, which the machine decides).

use std::time::Duration;

use crate::support::control_plane;
use crate::support::fleet::{self, FleetRun};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_fleet_bench_runs_every_scenario_with_the_minimal_device_writes() {
    let run = FleetRun {
        groups: 4,
        members: 3,
        latency_ms: 0,
        edits: 2,
        steady: vec![2],
        resync: Duration::from_secs(10),
        window: Duration::from_secs(1),
    };
    let sim = fleet::simulator(&fleet::devices(&run)).await;
    let figures = fleet::run(control_plane(), &sim, &run).await;
    let scenarios: Vec<&str> = figures.iter().map(|f| f.scenario.as_str()).collect();
    assert_eq!(scenarios, ["burst", "edit", "restart", "steady"]);
    let (burst, edit, restart, steady) = (&figures[0], &figures[1], &figures[2], &figures[3]);
    // From empty: one create per address object and one per group, nothing rewritten.
    assert_eq!(burst.calls.writes, 4 * (3 + 1), "{burst:?}");
    assert_eq!(burst.limit_calls, 4 * 4 + 2);
    // Never more than one observation per group (the group and one listing of each table).
    assert!(burst.calls.reads <= 4 * 3, "{burst:?}");
    // Add a member (create its object, add it), then remove it (remove, delete the object).
    assert_eq!(edit.calls.writes, 4, "{edit:?}");
    // A restart finds everything converged: reads only, two per observation, and at most
    // two observations per group (the restart's, and the one the connection's first status
    // write triggers).
    assert_eq!(restart.calls.writes, 0, "{restart:?}");
    assert!(restart.calls.reads <= 4 * 2 * 2, "{restart:?}");
    assert_eq!(steady.calls.writes, 0, "{steady:?}");
    assert!(fleet::table(&figures).lines().count() == 5);
    assert_eq!(figures[0].json()["device_writes"], 16);
}
