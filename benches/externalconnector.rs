//! ExternalConnector figures against a real kube-apiserver (etcd + kube-apiserver on loopback,
//! as the e2e tests start them) and the simulated FortiGate, with the controller and its EDL
//! endpoint in-process: Push CR change → entry on the device (and device calls per change),
//! Feed CR change → the device holds the new list (it pulls after fortisync's refresh), and
//! 10,000 entries from a ConfigMap pushed from empty.
//!
//! Run: `FORTISYNC_CONTROL_PLANE_BIN=<dir with etcd, kube-apiserver, kubectl> cargo bench
//! --bench externalconnector`. Sizes: `FORTISYNC_BENCH_EDITS` (30 edits per mode),
//! `FORTISYNC_BENCH_BIG_ENTRIES` (10000).
//!
//! This is a benchmark, not a test: it prints figures next to their aims and fails (non-zero
//! exit) only when it cannot measure (no control plane, a timeout).

#[path = "../tests/e2e/support/mod.rs"]
#[allow(dead_code)]
mod support;

use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use fortisync::reconcile::context::Context;
use fortisync::reconcile::controller::{self, Scope};
use fortisync::sim::fortios::FortiGateHandle;
use fortisync::sim::{Scenario, Simulator};
use kube::Client;
use prometheus_client::registry::Registry;

use support::bench::{KEY, connection, ms, namespace, percentile, secret, verdict};
use support::control_plane::ControlPlane;
use support::fleet::Calls;
use support::kinds::{self, Mode};

/// Entries each edited connector starts with.
const BASE_ENTRIES: usize = 10;

fn main() -> ExitCode {
    let cp = match support::bench::start("externalconnector") {
        Ok(cp) => cp,
        Err(code) => return code,
    };
    support::bench::runtime().block_on(bench(cp));
    // The harness's watchdog stops etcd and kube-apiserver once this process is gone.
    ExitCode::SUCCESS
}

async fn bench(cp: &'static ControlPlane) {
    let edits = support::bench::env_usize("FORTISYNC_BENCH_EDITS", 30);
    let big = support::bench::env_usize("FORTISYNC_BENCH_BIG_ENTRIES", 10_000);
    println!(
        "externalconnector bench: {}",
        support::bench::machine_context()
    );
    let started = Instant::now();

    let sim = Simulator::start(scenario()).await.expect("simulator");
    let client = cp.client();
    let ns = namespace(&client, "bench-ec").await;
    let names = ["fw-push", "fw-feed", "fw-big"];
    for name in names {
        let fg = sim.fortigate(name);
        secret(&client, &ns, fg, &format!("{name}-token")).await;
        // Long: the figures measure the change path, not periodic resyncs.
        connection(&client, &ns, name, fg, "10m").await;
    }

    // The controller with its EDL endpoint on loopback, as `fortisync run --edl-address` has it.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind the EDL endpoint");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    let mut registry = Registry::default();
    let ctx = Arc::new(Context::new(client.clone(), &mut registry).with_edl_base_url(Some(base)));
    let edl = tokio::spawn(fortisync::edl::serve_on(
        listener,
        ctx.edl.clone(),
        None,
        std::future::pending(),
    ));
    let controller = tokio::spawn(controller::run(ctx, Scope::namespace(ns.clone())));
    // The first probe writes the connections' status, which re-triggers their connectors:
    // let that happen before there are any.
    for name in names {
        support::fleet::wait_named_reachable(&client, &ns, name).await;
    }

    edits_bench(&client, &ns, sim.fortigate("fw-push"), Mode::Push, edits).await;
    edits_bench(&client, &ns, sim.fortigate("fw-feed"), Mode::Feed, edits).await;
    big_bench(&client, &ns, sim.fortigate("fw-big"), big).await;
    controller.abort();
    edl.abort();
    let _ = controller.await;
    let _ = edl.await;
    println!(
        "(whole bench {:.0} s; figures are pessimistic when the machine is shared)",
        started.elapsed().as_secs_f64()
    );
}

/// Three FortiGates on 7.4.3 (Push needs 7.2.1+). Feed pulls run on the real clock (one
/// `refresh-rate` minute = 60 s) and the connectors ask for an hourly poll, so every pull the
/// Feed figure sees comes from fortisync's refresh call, never from the periodic schedule.
fn scenario() -> Scenario {
    let mut yaml = String::from("fortigates:\n");
    for name in ["fw-push", "fw-feed", "fw-big"] {
        yaml.push_str(&format!(
            "  - name: {name}\n    version: \"7.4.3\"\n    feeds: {{minute_ms: 60000}}\n    api_users: [{{name: fortisync, key: {KEY}, trusthosts: [\"127.0.0.0/8\"]}}]\n"
        ));
    }
    Scenario::from_yaml(&yaml).expect("scenario")
}

/// Figures 1 and 2: one-entry additions through the Kubernetes API, timed to the device.
async fn edits_bench(client: &Client, ns: &str, fg: &FortiGateHandle, mode: Mode, edits: usize) {
    let name = match mode {
        Mode::Push => "push",
        Mode::Feed => "feed",
    };
    let target = format!("fw-{name}");
    let got =
        kinds::connector_edits(client, ns, fg, (mode, name, &target), BASE_ENTRIES, edits).await;
    let (mut to_device, mut to_status, calls) = (got.to_device, got.to_status, got.calls);
    to_device.sort();
    to_status.sort();
    let p99 = percentile(&to_device, 99.0);
    let (aim, ok) = match mode {
        Mode::Push => ("p99 <= 50 ms", ms(p99) <= 50.0),
        Mode::Feed => ("change -> device <= 1 s", p99 <= Duration::from_secs(1)),
    };
    let label = match mode {
        Mode::Push => "1. Push: CR change -> entry on the device",
        Mode::Feed => "2. Feed: CR change -> the device holds the new list (pulled after refresh)",
    };
    println!(
        "{label} ({edits} one-entry additions, list of {BASE_ENTRIES}+): p50 {:.1} ms  p99 {:.1} ms  max {:.1} ms   [aim {aim}: {}]",
        ms(percentile(&to_device, 50.0)),
        ms(p99),
        ms(*to_device.last().expect("edits")),
        verdict(ok),
    );
    // A Feed pass whose entry-list read still sees the pull in flight writes Ready=False
    // Pending and looks again after its 2 s requeue: count those edits apart.
    let late = to_status
        .iter()
        .filter(|d| **d >= Duration::from_secs(1))
        .count();
    println!(
        "   CR change -> Ready in status: p50 {:.1} ms  p99 {:.1} ms ({late} of {edits} took >= 1 s)",
        ms(percentile(&to_status, 50.0)),
        ms(percentile(&to_status, 99.0)),
    );
    let n = calls.len().max(1) as f64;
    let sum = |f: fn(&Calls) -> u64| calls.iter().map(f).sum::<u64>() as f64 / n;
    let max = |f: fn(&Calls) -> u64| calls.iter().map(f).max().unwrap_or(0);
    print!(
        "   device calls per change: {:.2} reads + {:.2} writes (max {} + {}; plus {:.2} connection probes)",
        sum(|c| c.reads),
        sum(|c| c.writes),
        max(|c| c.reads),
        max(|c| c.writes),
        sum(|c| c.probes),
    );
    if mode == Mode::Feed {
        print!("; {:.2} EDL pulls per change", got.pulls as f64 / n);
    }
    println!();
    println!("   the last change's calls: {}", got.last.join(", "));
}

/// Figure 3: `count` entries from a ConfigMap, pushed from empty.
async fn big_bench(client: &Client, ns: &str, fg: &FortiGateHandle, count: usize) {
    let got = kinds::connector_from_empty(
        client,
        ns,
        fg,
        ("big", "fw-big"),
        count,
        Duration::from_secs(300),
    )
    .await;
    println!(
        "3. {count} entries (ConfigMap) pushed from empty: all on the device after {:.2} s, Ready after {:.2} s; {} device reads + {} writes ({} dynamic pushes; plus {} connection probes)",
        got.on_device.as_secs_f64(),
        got.ready.as_secs_f64(),
        got.calls.reads,
        got.calls.writes,
        got.pushes,
        got.calls.probes,
    );
}
