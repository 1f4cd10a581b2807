//! Fleet-scale figures (issue 17), each at 0 ms and at a realistic device latency, next to the
//! limit (the fewest device calls and their cost at the Guard's concurrency):
//! - `burst`: 1,000 AddressGroups × 3 members from empty on one FortiGate (time to all Ready,
//!   calls, reads per group), with one edit made during it (`edit_in_burst_ms`);
//! - `edit:AG`, `edit:EC`, `edit:TH`: CR change → device p50/p95/p99, device calls and apiserver
//!   writes per change, for an AddressGroup, a Push ExternalConnector and a TrustedHost;
//! - `restart`: a new controller with all 1,000 converged (time and calls until all Ready);
//! - `steady`: 1, 100 and 1,000 converged groups, device calls and writes per device per hour;
//! - `ec-big`: one ExternalConnector of 10,000 entries from empty;
//! - `fair-hang`: a burst on one FortiGate while another one served by the same controller
//!   hangs, beside the same burst alone;
//! - `process`: RSS and CPU seconds of a `fortisync run` child serving 1,000 resources of mixed
//!   kinds (first latency only);
//! - `peer:ours` / `peer:ansible`: 1,000 addresses and one group by fortisync and by Ansible's
//!   `fortinet.fortios` (`benches/ansible/`), wall time and requests side by side.
//!
//! Run: `scripts/bench` (it also installs the Ansible peer). Sizes: `FORTISYNC_BENCH_GROUPS`
//! (1000), `FORTISYNC_BENCH_MEMBERS` (3), `FORTISYNC_BENCH_EDITS` (40),
//! `FORTISYNC_BENCH_LATENCIES` (`0,50` ms), `FORTISYNC_BENCH_STEADY` (`1,100,1000`),
//! `FORTISYNC_BENCH_RESYNC_SECONDS` (10), `FORTISYNC_BENCH_BIG_ENTRIES` (10000),
//! `FORTISYNC_BENCH_FAIR_GROUPS` (200), `FORTISYNC_BENCH_FAIR_HUNG` (20 groups on the hanging
//! device), `FORTISYNC_BENCH_FAIR_TIMEOUT_SECONDS` (120), `FORTISYNC_BENCH_MIXED` (1000), `FORTISYNC_BENCH_PEER`
//! (1000), `FORTISYNC_BENCH_PEER_LATENCIES` (`50`), `FORTISYNC_BENCH_PEER_TIMEOUT_SECONDS` (1800: Ansible
//! runs its module once per address, about a second each here), `FORTISYNC_BENCH_TIMEOUT_SECONDS` (300: a
//! scenario still short of its goal then reports what it reached); `FORTISYNC_BENCH_ANSIBLE`
//! names `ansible-playbook` (unset or empty: no Ansible row). The JSON goes to
//! `FORTISYNC_BENCH_JSON` (`target/bench/fleet.json`). `FORTISYNC_BENCH_ONLY` runs some parts
//! only, a comma list of `burst` (the burst alone), `fleet` (burst, restart, steady), `kinds`
//! (the per-kind edits and `ec-big`), `fair`, `process` and `peer` (unset: all).
//! `FORTISYNC_BENCH_CREATES_AT_ONCE` (16) is how many creates the bench sends at once.
//! `FORTISYNC_BENCH_BIN` names the `fortisync` binary the `process` part starts (default:
//! this build's own, with `sim`), e.g. `target/release/fortisync` to measure what ships.
//!
//! A benchmark, not a test: it fails only when it cannot measure (no control plane, a timeout).

#[path = "../tests/e2e/support/mod.rs"]
#[allow(dead_code)]
mod support;

use std::process::ExitCode;
use std::time::Duration;

use support::fleet::{self, FleetRun};
use support::{figures, fleet_fair, fleet_kinds, fleet_peer, fleet_process};

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

/// Whether the part `name` runs: `FORTISYNC_BENCH_ONLY` unset, empty, or naming it.
fn part(name: &str) -> bool {
    std::env::var("FORTISYNC_BENCH_ONLY").map_or(true, |only| {
        only.trim().is_empty() || only.split(',').any(|p| p.trim() == name)
    })
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
    let ansible = std::env::var_os("FORTISYNC_BENCH_ANSIBLE")
        .filter(|v| !v.is_empty())
        .map(std::path::PathBuf::from);
    let peer_latencies = env_list("FORTISYNC_BENCH_PEER_LATENCIES", "50");
    // `burst` named without `fleet`: the burst's figure alone (tuning it costs no other part).
    let burst_only = std::env::var("FORTISYNC_BENCH_ONLY").is_ok_and(|only| {
        let named = |n: &str| only.split(',').any(|p| p.trim() == n);
        named("burst") && !named("fleet")
    });
    let started = std::time::Instant::now();
    let figures = runtime.block_on(async {
        let mut figures = Vec::new();
        for (i, latency_ms) in env_list("FORTISYNC_BENCH_LATENCIES", "0,50")
            .into_iter()
            .enumerate()
        {
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
                timeout: Duration::from_secs(env_one("FORTISYNC_BENCH_TIMEOUT_SECONDS", 300)),
                big_entries: env_one("FORTISYNC_BENCH_BIG_ENTRIES", 10_000) as usize,
                fair_groups: env_one("FORTISYNC_BENCH_FAIR_GROUPS", 200) as usize,
                fair_hung: env_one("FORTISYNC_BENCH_FAIR_HUNG", 20) as usize,
                fair_timeout: Duration::from_secs(env_one(
                    "FORTISYNC_BENCH_FAIR_TIMEOUT_SECONDS",
                    120,
                )),
                // The footprint does not depend on the latency: measured once.
                mixed: if i == 0 {
                    env_one("FORTISYNC_BENCH_MIXED", 1000) as usize
                } else {
                    0
                },
                peer_timeout: Duration::from_secs(env_one(
                    "FORTISYNC_BENCH_PEER_TIMEOUT_SECONDS",
                    1800,
                )),
                peer: if peer_latencies.contains(&latency_ms) {
                    env_one("FORTISYNC_BENCH_PEER", 1000) as usize
                } else {
                    0
                },
            };
            let sim = fleet::simulator(&fleet::devices(&run), run.admins()).await;
            if burst_only {
                let got = fleet::burst_only(cp, &sim, &run).await;
                print!("{}", figures::table(&got));
                figures.extend(got);
                continue;
            }
            // Each part's figures as soon as they are in: a later part may take long.
            let mut got = Vec::new();
            if part("fleet") {
                got = fleet::run(cp, &sim, &run).await;
                print!("{}", figures::table(&got));
            }
            let mut more = Vec::new();
            if part("kinds") {
                more = fleet_kinds::run(cp, &sim, &run).await;
            }
            if run.fair_groups > 0 && part("fair") {
                more.push(fleet_fair::run(cp, &sim, &run).await);
            }
            if run.mixed > 0 && part("process") {
                more.push(fleet_process::run(cp, &sim, &run).await);
            }
            print!("{}", figures::table(&more));
            got.extend(more);
            if run.peer > 0 && part("peer") {
                let peer = fleet_peer::run(cp, &sim, &run, run.peer, ansible.as_deref()).await;
                print!("{}", figures::table(&peer));
                got.extend(peer);
            }
            figures.extend(got);
        }
        figures
    });
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!(
        "\nfleet bench, all scenarios ({:.0} s; {} CPU(s), load average {}; a shared machine makes every figure pessimistic):\n{}",
        started.elapsed().as_secs_f64(),
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        load.split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" "),
        figures::table(&figures)
    );
    let path = std::env::var("FORTISYNC_BENCH_JSON")
        .unwrap_or_else(|_| "target/bench/fleet.json".to_string());
    let json = serde_json::json!({
        "build": if cfg!(debug_assertions) { "debug" } else { "release" },
        "device_concurrency": figures::DEVICE_CONCURRENCY,
        "limit_concurrency": figures::SAFE_CONCURRENCY,
        "figures": figures.iter().map(fleet::Figure::json).collect::<Vec<_>>(),
    });
    if let Some(dir) = std::path::Path::new(&path).parent() {
        std::fs::create_dir_all(dir).expect("JSON directory");
    }
    std::fs::write(&path, serde_json::to_string_pretty(&json).expect("JSON")).expect("write JSON");
    println!("wrote {path}");
    ExitCode::SUCCESS
}
