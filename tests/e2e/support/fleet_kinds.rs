//! The fleet bench's per-kind figures (issue 17): CR change → device for an ExternalConnector
//! (Push) and a TrustedHost (a FortiGate admin's slot), with device calls and apiserver writes
//! per change, an ExternalConnector of many entries pushed from empty, and the steady state of
//! many TrustedHosts on one FortiGate (`steady:TH`). The AddressGroup's
//! are `support::fleet`'s `edit:AG`. The loops are `support::kinds`', which the kinds' own
//! benches print in more detail.

use std::sync::Arc;
use std::time::{Duration, Instant};

use fortisync::api::{FortiGate, TrustedHost};
use fortisync::reconcile::context::Context;
use fortisync::reconcile::controller::{self, Scope};
use fortisync::sim::Simulator;
use fortisync::sim::fortios::FortiGateHandle;
use kube::Api;
use kube::api::{Patch, PatchParams, PostParams};
use prometheus_client::registry::Registry;
use serde_json::json;

use super::control_plane::ControlPlane;
use super::fixture::RunningController;
use super::fleet::{self, Calls, Figure, FleetRun};
use super::fleet_process;
use super::kinds::{self, Grantee, Mode};

/// Entries the edited connector starts with.
const BASE_ENTRIES: usize = 10;

/// The in-process controller for `ns` with its EDL endpoint on loopback, as `fortisync run
/// --edl-address` has it (a connector's resource names the EDL URL even in Push mode).
pub async fn start_with_edl(cp: &ControlPlane, ns: &str) -> (RunningController, RunningController) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind the EDL endpoint");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    let mut registry = Registry::default();
    let ctx = Arc::new(Context::new(cp.client(), &mut registry).with_edl_base_url(Some(base)));
    let edl = RunningController::spawn({
        let lists = ctx.edl.clone();
        async move {
            let _ = fortisync::edl::serve_on(listener, lists, None, std::future::pending()).await;
        }
    });
    let running = RunningController::spawn(controller::run(ctx, Scope::namespace(ns.to_string())));
    (running, edl)
}

fn summed(calls: &[Calls]) -> Calls {
    calls.iter().fold(Calls::default(), |a, c| Calls {
        reads: a.reads + c.reads,
        writes: a.writes + c.writes,
        probes: a.probes + c.probes,
    })
}

fn latencies(mut took: Vec<Duration>) -> Vec<(String, f64)> {
    took.sort();
    vec![
        ("p50_ms".into(), fleet::percentile(&took, 50.0)),
        ("p95_ms".into(), fleet::percentile(&took, 95.0)),
        ("p99_ms".into(), fleet::percentile(&took, 99.0)),
    ]
}

/// The per-kind figures of `run` on its device `kinds-<latency>`.
pub async fn run(cp: &ControlPlane, sim: &Simulator, run: &FleetRun) -> Vec<Figure> {
    let lat = run.latency_ms;
    let fg = sim.fortigate(&format!("kinds-{lat}"));
    let client = cp.client();
    let ns = fleet::connected(cp, fg, "10m", &format!("kinds-{lat}")).await;
    let _controller = start_with_edl(cp, &ns).await;
    fleet::wait_reachable(&client, &ns).await;
    fleet::latency(fg, lat);
    let mut out = Vec::new();
    let edits = run.edits.max(1);

    // ExternalConnector (Push): one-entry additions.
    let before = fleet::apiserver_writes(&client).await;
    let got = kinds::connector_edits(
        &client,
        &ns,
        fg,
        (Mode::Push, "push", "fw"),
        BASE_ENTRIES,
        edits,
    )
    .await;
    // Less the bench's create and its patch per edit.
    let api_writes = fleet::apiserver_writes(&client).await - before - 1 - edits as u64;
    let calls = summed(&got.calls);
    let changes = edits as u64;
    // One `add` command carries the entry; the device needs nothing else.
    let limit_calls = changes;
    let mut extra = latencies(got.to_device.clone());
    extra.push((
        "calls_per_change".into(),
        (calls.reads + calls.writes) as f64 / changes as f64,
    ));
    extra.push((
        "api_wr_per_change".into(),
        api_writes as f64 / changes as f64,
    ));
    out.push(Figure {
        scenario: "edit:EC".into(),
        resources: 1,
        latency_ms: lat,
        seconds: got.to_device.iter().map(Duration::as_secs_f64).sum(),
        calls,
        api_writes: Some(api_writes),
        limit_calls,
        limit_seconds: fleet::limit_seconds(limit_calls, limit_calls, lat),
        extra,
    });

    // TrustedHost: grant (create) and revoke (delete) of slot 10 of the admin `ops`.
    let api: Api<TrustedHost> = Api::namespaced(client.clone(), &ns);
    let rounds = edits.div_ceil(2);
    fg.clear_requests();
    let before = fleet::apiserver_writes(&client).await;
    let who = Grantee {
        kind: "FortiGate",
        target: "fw",
        user: "ops",
    };
    let (open, closed) = kinds::grant_rounds(&api, rounds, &who, |addr| {
        kinds::fortigate_slot_state(fg, "ops", addr)
    })
    .await;
    fleet::quiet(fg).await;
    // Less the bench's create and delete per round.
    let api_writes = fleet::apiserver_writes(&client).await - before - 2 * rounds as u64;
    let calls = Calls::of(&fg.requests());
    let changes = 2 * rounds as u64;
    // Read the admin (a slot someone else set must not be overwritten), write the slot.
    let limit_calls = 2 * changes;
    let took: Vec<Duration> = open.iter().chain(&closed).copied().collect();
    let mut extra = latencies(took.clone());
    extra.push((
        "calls_per_change".into(),
        (calls.reads + calls.writes) as f64 / changes as f64,
    ));
    extra.push((
        "api_wr_per_change".into(),
        api_writes as f64 / changes as f64,
    ));
    out.push(Figure {
        scenario: "edit:TH".into(),
        resources: 1,
        latency_ms: lat,
        seconds: took.iter().map(Duration::as_secs_f64).sum(),
        calls,
        api_writes: Some(api_writes),
        limit_calls,
        limit_seconds: fleet::limit_seconds(limit_calls, limit_calls, lat),
        extra,
    });

    // One connector of `big_entries` entries, from empty.
    if run.big_entries > 0 {
        let before = fleet::apiserver_writes(&client).await;
        let got = kinds::connector_from_empty(
            &client,
            &ns,
            fg,
            ("big", "fw"),
            run.big_entries,
            run.timeout,
        )
        .await;
        // Less the bench's ConfigMap and connector.
        let api_writes = fleet::apiserver_writes(&client).await - before - 2;
        // Create the resource object, then one `snapshot` command with every entry.
        let limit_calls = 2;
        out.push(Figure {
            scenario: "ec-big".into(),
            resources: run.big_entries,
            latency_ms: lat,
            seconds: got.ready.as_secs_f64(),
            calls: got.calls,
            api_writes: Some(api_writes),
            limit_calls,
            limit_seconds: fleet::limit_seconds(limit_calls, limit_calls, lat),
            extra: vec![
                ("on_device_s".into(), got.on_device.as_secs_f64()),
                ("pushes".into(), got.pushes as f64),
            ],
        });
    }
    if let Some(figure) = steady_connectors(cp, fg, run).await {
        out.push(figure);
    }
    // Last: its short resync interval must not add calls to the figures above.
    out.push(steady_trusted_hosts(cp, &ns, fg, run).await);
    fg.clear_faults();
    out
}

/// Connectors the steady-state figure holds on one device at most (each is created through the
/// apiserver; the row is about reads per resync, which a hundred already show).
const STEADY_CONNECTORS: usize = 100;

/// Steady state of `n` converged Push connectors on one FortiGate (the largest of
/// `run.steady`, at most `STEADY_CONNECTORS`): device calls in one resync interval. Created
/// under a 10-minute resync, then set to `run.resync` and watched for `run.window`, as the
/// AddressGroup `steady` rows are. Each list is read once per resync: `entry-list` takes one
/// `mkey` (facts §4), so the limit is the table read plus one read per connector.
async fn steady_connectors(
    cp: &ControlPlane,
    fg: &fortisync::sim::fortios::FortiGateHandle,
    run: &FleetRun,
) -> Option<Figure> {
    let n = run.steady.iter().copied().max()?.min(STEADY_CONNECTORS);
    let lat = run.latency_ms;
    let client = cp.client();
    let ns = fleet::connected(cp, fg, "10m", &format!("steady-ec-{lat}")).await;
    let _controller = start_with_edl(cp, &ns).await;
    fleet::wait_reachable(&client, &ns).await;
    let api: Api<fortisync::api::ExternalConnector> = Api::namespaced(client.clone(), &ns);
    for i in 0..n {
        let entries: Vec<String> = (1..=3).map(|k| format!("10.200.{i}.{k}")).collect();
        let c = kinds::connector(
            &format!("steady-{i:03}"),
            "fw",
            Mode::Push,
            serde_json::json!({"entries": kinds::entries_json(&entries)}),
        );
        api.create(&kube::api::PostParams::default(), &c)
            .await
            .expect("create a steady-state connector");
    }
    kinds::wait_until(&format!("{n} connectors Ready"), run.timeout, || async {
        let list = api
            .list(&Default::default())
            .await
            .expect("list connectors");
        list.items.len() == n
            && list.items.iter().all(|c| {
                c.status.as_ref().is_some_and(|s| {
                    fortisync::api::conditions::is_true(
                        &s.conditions,
                        fortisync::api::conditions::READY,
                    )
                })
            })
    })
    .await;
    let resync = format!("{}s", run.resync.as_secs());
    Api::<fortisync::api::FortiGate>::namespaced(client.clone(), &ns)
        .patch(
            "fw",
            &kube::api::PatchParams::default(),
            &kube::api::Patch::Merge(serde_json::json!({"spec": {"resyncInterval": resync}})),
        )
        .await
        .expect("set the steady-state resync interval");
    fleet::quiet(fg).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    fg.clear_requests();
    let before = fleet::apiserver_writes(&client).await;
    tokio::time::sleep(run.window).await;
    let calls = Calls::of(&fg.requests());
    let api_writes = fleet::apiserver_writes(&client).await - before;
    let hour = 3600.0 / run.window.as_secs_f64();
    let limit_calls = 1 + n as u64;
    Some(Figure {
        scenario: "steady:EC".into(),
        resources: n,
        latency_ms: lat,
        seconds: run.window.as_secs_f64(),
        calls,
        api_writes: Some(api_writes),
        limit_calls,
        // The table read, then every list read at once.
        limit_seconds: fleet::limit_seconds(limit_calls, 2, lat),
        extra: vec![
            (
                "dev_reads_per_resync".into(),
                calls.reads as f64 * run.resync.as_secs_f64() / run.window.as_secs_f64(),
            ),
            (
                "dev_calls_per_h".into(),
                (calls.reads + calls.writes + calls.probes) as f64 * hour,
            ),
            ("dev_writes_per_h".into(), calls.writes as f64 * hour),
        ],
    })
}

/// The requests `fg` received for its users' tables.
fn users_of(fg: &FortiGateHandle) -> Vec<fortisync::sim::fortios::RequestRecord> {
    fg.requests()
        .into_iter()
        .filter(|r| {
            r.path.starts_with("/api/v2/cmdb/system/admin")
                || r.path.starts_with("/api/v2/cmdb/system/api-user")
        })
        .collect()
}

/// `steady:TH`: TrustedHosts on slots 2-10 of every `adm-*` administrator of `fg`, converged,
/// then the connection set to resync every `run.resync`; the users' tables' requests during
/// one interval (the other kinds in `ns` resync too: only `system/admin` and
/// `system/api-user` requests are counted).
async fn steady_trusted_hosts(
    cp: &ControlPlane,
    ns: &str,
    fg: &FortiGateHandle,
    run: &FleetRun,
) -> Figure {
    let client = cp.client();
    let n = 9 * run.admins();
    let api: Api<TrustedHost> = Api::namespaced(client.clone(), ns);
    for i in 0..n {
        let t: TrustedHost = serde_json::from_value(json!({
            "apiVersion": "fortisync.dev/v1alpha1", "kind": "TrustedHost",
            "metadata": {"name": format!("steady-{i:04}")},
            "spec": {
                "targetRef": {"kind": "FortiGate", "name": "fw"},
                "user": format!("adm-{:02}", i / 9),
                "slot": 2 + i % 9,
                "address": format!("10.251.{}.{}", i / 250, i % 250 + 1),
            },
        }))
        .expect("TrustedHost");
        api.create(&PostParams::default(), &t)
            .await
            .expect("create a TrustedHost");
    }
    let started = Instant::now();
    while fleet_process::ready_of(&client, ns, "TrustedHost").await < n
        && started.elapsed() < run.timeout
    {
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let patch = json!({"spec": {"resyncInterval": format!("{}s", run.resync.as_secs())}});
    Api::<FortiGate>::namespaced(client.clone(), ns)
        .patch("fw", &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .expect("set the steady-state resync interval");
    // The passes the patch triggered wake on the first tick at least half an interval away,
    // up to one and a half intervals later: the window opens just after that tick, so it
    // holds exactly the next one (a window opened at a fixed delay may hold none).
    fleet::quiet(fg).await;
    fg.clear_requests();
    let waited = Instant::now();
    while users_of(fg).is_empty() && waited.elapsed() < 2 * run.resync {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    fleet::quiet(fg).await;
    fg.clear_requests();
    tokio::time::sleep(run.window).await;
    let calls = Calls::of(&users_of(fg));
    let hour = 3600.0 / run.window.as_secs_f64();
    Figure {
        scenario: "steady:TH".into(),
        resources: n,
        latency_ms: run.latency_ms,
        seconds: run.window.as_secs_f64(),
        calls,
        api_writes: None,
        // One listing of `system/admin` per interval (no API user is granted here): the tick's
        // resyncs share one batch, their claims read by it (`trustedhost::deferred`).
        limit_calls: 1,
        limit_seconds: fleet::limit_seconds(1, 1, run.latency_ms),
        extra: vec![
            (
                "dev_reads_per_resync".into(),
                calls.reads as f64 * run.resync.as_secs_f64() / run.window.as_secs_f64(),
            ),
            (
                "dev_calls_per_h".into(),
                (calls.reads + calls.writes) as f64 * hour,
            ),
            ("dev_writes_per_h".into(), calls.writes as f64 * hour),
        ],
    }
}
