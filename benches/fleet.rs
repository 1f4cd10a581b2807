//! Fleet-scale figures (issue 17): 1,000 AddressGroups from empty on one FortiGate, single
//! edits among them, a controller restart with all of them converged, and the steady state
//! with 1, 100 and 1,000 groups; each at 0 ms and at a realistic device latency, next to the
//! limit (the fewest device calls and their cost at the Guard's concurrency).
//!
//! Run: `scripts/bench` (or `FORTISYNC_CONTROL_PLANE_BIN=… cargo bench --features sim --bench
//! fleet`). Sizes: `FORTISYNC_BENCH_GROUPS` (1000), `FORTISYNC_BENCH_MEMBERS` (3),
//! `FORTISYNC_BENCH_EDITS` (40), `FORTISYNC_BENCH_LATENCIES` (`0,50` ms),
//! `FORTISYNC_BENCH_STEADY` (`1,100,1000`), `FORTISYNC_BENCH_RESYNC_SECONDS` (10); the JSON
//! goes to `FORTISYNC_BENCH_JSON` (`target/bench/fleet.json`).
//!
//! A benchmark, not a test: it fails only when it cannot measure (no control plane, a timeout).

#[path = "../tests/e2e/support/mod.rs"]
#[allow(dead_code)]
mod support;

use std::process::ExitCode;
use std::time::Duration;

use support::fleet::{self, FleetRun};

fn env_list(name: &str, default: &str) -> Vec<u64> {
    std::env::var(name)
        .unwrap_or_else(|_| default.to_string())
        .split(',')
        .filter(|s| !s.trim().is_empty())
        .map(|s| {
            s.trim()
                .parse()
                .unwrap_or_else(|_| panic!("{name}: {s:?} is not a number"))
        })
        .collect()
}

fn env_one(name: &str, default: u64) -> u64 {
    env_list(name, &default.to_string())
        .first()
        .copied()
        .unwrap_or(default)
}

fn main() -> ExitCode {
    if !std::env::args().any(|a| a == "--bench") {
        println!("fleet bench: run it with `scripts/bench` or `cargo bench --bench fleet`");
        return ExitCode::SUCCESS;
    }
    if std::env::var_os("FORTISYNC_CONTROL_PLANE_BIN").is_none() {
        eprintln!("fleet bench: FORTISYNC_CONTROL_PLANE_BIN is not set (scripts/bench sets it)");
        return ExitCode::from(2);
    }
    let cp = support::control_plane();
    cp.install_crds();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");
    let figures = runtime.block_on(async {
        let mut figures = Vec::new();
        for latency_ms in env_list("FORTISYNC_BENCH_LATENCIES", "0,50") {
            let run = FleetRun {
                groups: env_one("FORTISYNC_BENCH_GROUPS", 1000) as usize,
                members: env_one("FORTISYNC_BENCH_MEMBERS", 3) as usize,
                latency_ms,
                edits: env_one("FORTISYNC_BENCH_EDITS", 40) as usize,
                steady: env_list("FORTISYNC_BENCH_STEADY", "1,100,1000")
                    .into_iter()
                    .map(|n| n as usize)
                    .collect(),
                resync: Duration::from_secs(env_one("FORTISYNC_BENCH_RESYNC_SECONDS", 10)),
                window: Duration::from_secs(env_one("FORTISYNC_BENCH_RESYNC_SECONDS", 10)),
            };
            let sim = fleet::simulator(&fleet::devices(&run)).await;
            let got = fleet::run(cp, &sim, &run).await;
            print!("{}", fleet::table(&got));
            figures.extend(got);
        }
        figures
    });
    println!("\nfleet bench, all scenarios:\n{}", fleet::table(&figures));
    let path = std::env::var("FORTISYNC_BENCH_JSON")
        .unwrap_or_else(|_| "target/bench/fleet.json".to_string());
    let json = serde_json::json!({
        "build": if cfg!(debug_assertions) { "debug" } else { "release" },
        "device_concurrency": fleet::DEVICE_CONCURRENCY,
        "figures": figures.iter().map(fleet::Figure::json).collect::<Vec<_>>(),
    });
    if let Some(dir) = std::path::Path::new(&path).parent() {
        std::fs::create_dir_all(dir).expect("JSON directory");
    }
    std::fs::write(&path, serde_json::to_string_pretty(&json).expect("JSON")).expect("write JSON");
    println!("wrote {path}");
    ExitCode::SUCCESS
}
