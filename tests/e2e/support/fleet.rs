//! Fleet-scale AddressGroup scenarios (issue 17), shared by `benches/fleet.rs`
//! (`scripts/bench`) and the e2e smoke test that keeps it from rotting: many AddressGroups on
//! one simulated FortiGate, the in-process controller, a real kube-apiserver (burst, edits,
//! restart, steady state), and the simulator and helpers the other `fleet_*` scenarios share.
//! Each scenario reports its wall time, device calls, the controller's apiserver writes and the
//! *limit* (`support::figures`).

use std::time::{Duration, Instant};

use fortisync::api::AddressGroup;
use fortisync::api::FortiGate;
use fortisync::api::conditions::{READY, is_true};
use fortisync::reconcile::context::Context;
use fortisync::sim::fortios::{FaultRule, FortiGateHandle, Table};
use fortisync::sim::{Scenario, Simulator};
use futures::StreamExt;
use kube::api::{DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::{Api, Client};
use serde_json::{Value, json};

use super::control_plane::ControlPlane;
pub use super::figures::{
    Calls, DEVICE_CONCURRENCY, Figure, apiserver_writes, limit_seconds, limit_seconds_at,
    percentile, rss_mib,
};
use super::fixture::{self, KEY, RunningController};

/// What to run.
#[derive(Debug, Clone)]
pub struct FleetRun {
    /// AddressGroups in the burst and restart scenarios.
    pub groups: usize,
    /// Members per group.
    pub members: usize,
    /// Device latency per call (a simulator fault on `/api`).
    pub latency_ms: u64,
    /// Single-member edits timed one after the other, the burst's groups converged.
    pub edits: usize,
    /// Group counts of the steady-state runs (each on its own device).
    pub steady: Vec<usize>,
    /// The steady-state connections' `resyncInterval` (10 s at least).
    pub resync: Duration,
    /// How long the steady state is watched (one `resync` for a figure per interval).
    pub window: Duration,
    /// How long a scenario may take before what it reached so far is reported instead.
    pub timeout: Duration,
    /// Entries of the ExternalConnector pushed from empty (`ec-big`; 0: not run).
    pub big_entries: usize,
    /// Groups of the fairness burst (`fair-hang`; 0: not run).
    pub fair_groups: usize,
    /// Groups on the hanging device of the fairness figure, created before the burst.
    pub fair_hung: usize,
    /// How long the burst beside the hanging device may take before what it reached is
    /// reported (the hung groups' reconciles may hold every worker).
    pub fair_timeout: Duration,
    /// Resources of mixed kinds served by a `fortisync run` child (`process`; 0: not run).
    pub mixed: usize,
    /// Address objects (and one group of them all) of the peer comparison (`peer:*`; 0: not
    /// run).
    pub peer: usize,
    /// How long the Ansible peer may run before what it did so far is reported.
    pub peer_timeout: Duration,
}

impl FleetRun {
    /// FortiGate administrators each simulated device has (`adm-00`…): TrustedHosts of the
    /// mixed run take slots 2-10 of each.
    pub fn admins(&self) -> usize {
        super::fleet_process::trusted_hosts(self.mixed).div_ceil(9)
    }
}

/// The simulator: one FortiGate per name, each with the administrator `ops` (for the
/// TrustedHost edits) and `admins` more (`adm-00`…), slot 1 of each held for loopback.
pub async fn simulator(names: &[String], admins: usize) -> Simulator {
    let mut yaml = String::from("fortigates:\n");
    let admins: Vec<String> = std::iter::once("ops".to_string())
        .chain((0..admins).map(|i| format!("adm-{i:02}")))
        .map(|a| format!("{{name: {a}, password: {a}-pw, trusthosts: [\"127.0.0.1/32\"]}}"))
        .collect();
    let admins = admins.join(", ");
    for name in names {
        yaml.push_str(&format!(
            "  - name: {name}\n    version: \"7.4.3\"\n    feeds: {{minute_ms: 60000}}\n    api_users: [{{name: fortisync, key: {KEY}, trusthosts: [\"127.0.0.0/8\"]}}]\n    admins: [{admins}]\n"
        ));
    }
    Simulator::start(Scenario::from_yaml(&yaml).expect("scenario"))
        .await
        .expect("simulator")
}

/// The FortiGates a run needs, by name.
pub fn devices(run: &FleetRun) -> Vec<String> {
    let mut names = vec![format!("burst-{}", run.latency_ms)];
    names.extend(
        run.steady
            .iter()
            .map(|n| format!("steady-{n}-{}", run.latency_ms)),
    );
    for extra in [
        "kinds",
        "fair-base",
        "fair-ok",
        "fair-bad",
        "mixed",
        "peer-ours",
        "peer-ansible",
    ] {
        names.push(format!("{extra}-{}", run.latency_ms));
    }
    names
}

/// A namespace with the connection `fw` to `fg` (its Secret `fw-token`).
pub async fn connected(
    cp: &ControlPlane,
    fg: &FortiGateHandle,
    resync: &str,
    test: &str,
) -> String {
    let ns = cp.namespace(test);
    fixture::secret_in(cp, &ns, "fw-token", KEY, fg.ca_pem().expect("ca")).await;
    let (ok, out) = cp.apply(&ns, &fixture::fortigate(fg.url(), resync, ""));
    assert!(ok, "apply the FortiGate: {out}");
    ns
}

/// The in-process controller for `ns`.
pub fn start(ns: &str) -> (RunningController, std::sync::Arc<Context>) {
    fixture::start_controller_with_context(ns)
}

/// Waits until the connection `fw` in `ns` says its device is reachable.
pub async fn wait_reachable(client: &Client, ns: &str) {
    wait_named_reachable(client, ns, "fw").await
}

/// Waits until the connection `name` in `ns` says its device is reachable.
pub async fn wait_named_reachable(client: &Client, ns: &str, name: &str) {
    let api = Api::<FortiGate>::namespaced(client.clone(), ns);
    fixture::wait_for("the FortiGate reachable", Duration::from_secs(60), || {
        let api = api.clone();
        async move {
            api.get(name)
                .await
                .ok()
                .and_then(|f| f.status)
                .is_some_and(|s| s.reachable)
                .then_some(())
        }
    })
    .await
}

fn group(i: usize, members: usize) -> AddressGroup {
    group_on("fw", i, members)
}

/// The AddressGroup `g-<i>` on the connection `target`: `members` addresses of its own.
pub fn group_on(target: &str, i: usize, members: usize) -> AddressGroup {
    let members: Vec<Value> = (0..members)
        .map(|j| json!({"address": format!("10.{}.{}.{}", 20 + i / 250, i % 250, j + 1)}))
        .collect();
    serde_json::from_value(json!({
        "apiVersion": "fortisync.dev/v1alpha1",
        "kind": "AddressGroup",
        "metadata": {"name": format!("g-{i:05}")},
        "spec": {
            "targetRef": {"kind": "FortiGate", "name": target},
            "groupName": format!("g-{i:05}"),
            "members": members,
        },
    }))
    .expect("AddressGroup")
}

/// Creates the bench sends at once (`FORTISYNC_BENCH_CREATES_AT_ONCE`, 16). The apiserver
/// alone took 1,000 of them no faster at 32 or 64 on the shared 2-core machine (docs/
/// performance.md); with the controller beside it, more at once only moves the wait from the
/// creates to the controller.
fn creates_at_once() -> usize {
    std::env::var("FORTISYNC_BENCH_CREATES_AT_ONCE")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(16)
}

/// Creates groups `g-<from>`… `g-<from + count - 1>` on `target`, `creates_at_once()` at a
/// time.
pub async fn create_groups_on(
    api: &Api<AddressGroup>,
    target: &str,
    from: usize,
    count: usize,
    members: usize,
) {
    let mut creates = futures::stream::iter((from..from + count).map(|i| {
        let api = api.clone();
        let g = group_on(target, i, members);
        async move { api.create(&PostParams::default(), &g).await }
    }))
    .buffer_unordered(creates_at_once());
    while let Some(result) = creates.next().await {
        result.expect("create an AddressGroup");
    }
}

async fn create_groups(api: &Api<AddressGroup>, count: usize, members: usize) {
    create_groups_on(api, "fw", 0, count, members).await
}

/// Seconds the apiserver takes to accept the burst's `count` creates into `api` with no
/// controller running: the burst's own limit, whatever the device's latency (at 0 ms the
/// device's is nil). Deleted again (no finalizer yet: at once) and waited gone.
async fn apiserver_limit(
    api: &Api<AddressGroup>,
    count: usize,
    members: usize,
    limit: Duration,
) -> f64 {
    let started = Instant::now();
    create_groups(api, count, members).await;
    let took = started.elapsed().as_secs_f64();
    api.delete_collection(&DeleteParams::default(), &ListParams::default())
        .await
        .expect("delete the limit's groups");
    fixture::wait_for("the limit's groups gone", limit, || async {
        let left = api.list(&ListParams::default().limit(1)).await.ok()?;
        left.items.is_empty().then_some(())
    })
    .await;
    took
}

/// Waits until `count` groups say Ready for their generation. Polled every 250 ms: listing
/// 1,000 groups costs the machine the controller runs on.
async fn all_ready(api: &Api<AddressGroup>, count: usize, limit: Duration) {
    if let Err(ready) = ready_within(api, count, limit).await {
        panic!("only {ready} of {count} AddressGroups Ready after {limit:?}");
    }
}

/// Like [`all_ready`]; after `limit`, how many were Ready.
pub async fn ready_within(
    api: &Api<AddressGroup>,
    count: usize,
    limit: Duration,
) -> Result<(), usize> {
    let started = Instant::now();
    loop {
        let ready = api.list(&ListParams::default()).await.map_or(0, |l| {
            l.items
                .iter()
                .filter(|g| {
                    g.status.as_ref().is_some_and(|s| {
                        s.observed_generation == g.metadata.generation
                            && is_true(&s.conditions, READY)
                    })
                })
                .count()
        });
        if ready >= count {
            return Ok(());
        }
        if started.elapsed() >= limit {
            return Err(ready);
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Waits until the context has run `count` AddressGroup reconciles.
async fn reconciled(ctx: &Context, count: u64, limit: Duration) {
    fixture::wait_for(
        &format!("{count} AddressGroup reconciles"),
        limit,
        || async { (fixture::reconciles(ctx, "addressgroup") >= count).then_some(()) },
    )
    .await
}

/// Waits until the device saw no request but probes for a second: what a scenario started
/// has finished. At most 20 s: a device kept busy by resyncs is never quiet.
pub async fn quiet(fg: &FortiGateHandle) {
    let count = || {
        let c = Calls::of(&fg.requests());
        c.reads + c.writes
    };
    let started = Instant::now();
    let (mut last, mut since) = (count(), Instant::now());
    while since.elapsed() < Duration::from_secs(1) && started.elapsed() < Duration::from_secs(20) {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let now = count();
        if now != last {
            (last, since) = (now, Instant::now());
        }
    }
}

/// Every call to `fg` answers `ms` later.
pub fn latency(fg: &FortiGateHandle, ms: u64) {
    if ms > 0 {
        fg.add_fault(FaultRule {
            path: "/api".into(),
            latency_ms: ms,
            ..FaultRule::default()
        });
    }
}

/// Runs every scenario of `run` on `sim` and returns its figures.
pub async fn run(cp: &ControlPlane, sim: &Simulator, run: &FleetRun) -> Vec<Figure> {
    scenarios(cp, sim, run, false).await
}

/// The burst's figure alone (`FORTISYNC_BENCH_ONLY=burst`: tuning it costs no other scenario).
#[allow(dead_code)] // only the bench's knob calls it
pub async fn burst_only(cp: &ControlPlane, sim: &Simulator, run: &FleetRun) -> Vec<Figure> {
    scenarios(cp, sim, run, true).await
}

async fn scenarios(
    cp: &ControlPlane,
    sim: &Simulator,
    run: &FleetRun,
    burst_only: bool,
) -> Vec<Figure> {
    cp.install_crds();
    let client = cp.client();
    let names = devices(run);
    let fg = sim.fortigate(&names[0]);
    let (n, m, lat) = (run.groups, run.members, run.latency_ms);
    let limit = run.timeout;
    let mut out = Vec::new();

    // Burst: `n` groups × `m` members from empty; once every create is in, `g-00000` gains a
    // member, timed to the device (an edit made during the burst: fairness).
    let ns = connected(cp, fg, "10m", &format!("fleet-{lat}")).await;
    let api = Api::<AddressGroup>::namespaced(client.clone(), &ns);
    let api_limit = apiserver_limit(&api, n, m, limit).await;
    let (controller, ctx) = start(&ns);
    wait_reachable(&client, &ns).await;
    latency(fg, lat);
    fg.clear_requests();
    let before = apiserver_writes(&client).await;
    let started = Instant::now();
    create_groups(&api, n, m).await;
    let created = started.elapsed().as_secs_f64();
    let edit = edit_during_burst(&api, fg, m, run.timeout).await;
    let ready = ready_within(&api, n, run.timeout).await;
    let seconds = started.elapsed().as_secs_f64();
    quiet(fg).await;
    // The bench's own writes: the creates and the one edit.
    let api_writes = apiserver_writes(&client).await - before - n as u64 - 1;
    // One write per new object and per group, one listing of each table, and the edit's new
    // object and member.
    let limit_calls = (n * (m + 1)) as u64 + 2 + 2;
    let calls = Calls::of(&fg.requests());
    let mut extra = vec![
        (
            "reads_per_group".into(),
            calls.reads as f64 / n.max(1) as f64,
        ),
        ("created_s".into(), created),
        // The same creates with no controller running: the apiserver's own limit.
        ("api_limit_s".into(), api_limit),
        // The controller's own share: the apiserver takes `created_s` to accept the creates.
        ("after_last_create_s".into(), seconds - created),
        ("edit_in_burst_ms".into(), edit),
        ("rss_mib_in_process".into(), rss_mib()),
    ];
    if lat > 0 {
        // Beside the lockout-safe limit: the one a device taking 4 at once would allow.
        let at_slots = limit_seconds_at(limit_calls, 3, lat, DEVICE_CONCURRENCY);
        extra.push(("time_per_limit_at_4".into(), seconds / at_slots));
    }
    if let Err(got) = ready {
        extra.push(("ready".into(), got as f64));
    }
    out.push(Figure {
        scenario: "burst".into(),
        resources: n,
        latency_ms: lat,
        seconds,
        calls,
        api_writes: Some(api_writes),
        limit_calls,
        // The device's calls, or the apiserver taking the creates, whichever is longer.
        limit_seconds: limit_seconds(limit_calls, 3, lat).max(api_limit),
        extra,
    });
    if burst_only {
        return out;
    }
    if let Err(got) = ready {
        println!(
            "fleet bench: only {got} of {n} groups Ready after {:?} at {lat} ms: edits, restart and steady state skipped",
            run.timeout
        );
        return out;
    }

    // Single-member edits of one group while the others sit converged.
    if run.edits > 0 {
        let mut took = Vec::new();
        let mut calls = Calls::default();
        let name = "g-00000";
        undo_burst_edit(&api, fg, m, limit).await;
        let before = apiserver_writes(&client).await;
        for e in 0..run.edits {
            let mut members = group(0, m).spec.members;
            if e % 2 == 0 {
                members.push(
                    serde_json::from_value(json!({"address": "198.51.100.7"})).expect("member"),
                );
            }
            let want = members.len();
            fg.clear_requests();
            let patch = json!({"spec": {"members": members}});
            let patched = api
                .patch(name, &PatchParams::default(), &Patch::Merge(&patch))
                .await
                .expect("edit a group");
            let t = Instant::now();
            // Polled every millisecond: the figure is the edit's latency.
            while fg
                .group_members("root", Table::Addrgrp, name)
                .map(|v| v.len())
                != Some(want)
            {
                assert!(t.elapsed() < limit, "the edit never reached the device");
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
            took.push(t.elapsed());
            fixture::wait_for("the edit in status", limit, || async {
                let s = api.get(name).await.ok()?.status?;
                (s.observed_generation == patched.metadata.generation).then_some(())
            })
            .await;
            let c = Calls::of(&fg.requests());
            calls.reads += c.reads;
            calls.writes += c.writes;
        }
        took.sort();
        let edits = run.edits as u64;
        // Less the bench's own patch per edit.
        let api_writes = apiserver_writes(&client).await - before - edits;
        // An added member: read the group, create the object, add it (dependent, in order).
        let limit_calls = 3 * edits;
        out.push(Figure {
            scenario: "edit:AG".into(),
            resources: n,
            latency_ms: lat,
            seconds: took.iter().map(Duration::as_secs_f64).sum(),
            calls,
            api_writes: Some(api_writes),
            limit_calls,
            limit_seconds: limit_seconds(limit_calls, 3 * edits, lat),
            extra: vec![
                ("p50_ms".into(), percentile(&took, 50.0)),
                ("p95_ms".into(), percentile(&took, 95.0)),
                ("p99_ms".into(), percentile(&took, 99.0)),
                (
                    "calls_per_change".into(),
                    (calls.reads + calls.writes) as f64 / edits as f64,
                ),
                ("api_wr_per_change".into(), api_writes as f64 / edits as f64),
            ],
        });
    }

    // Restart with `n` converged: a new controller (empty caches) until each group was
    // reconciled once.
    drop(controller);
    drop(ctx);
    tokio::time::sleep(Duration::from_millis(500)).await;
    fg.clear_requests();
    let before = apiserver_writes(&client).await;
    let started = Instant::now();
    let (controller, ctx) = start(&ns);
    reconciled(&ctx, n as u64, limit).await;
    let seconds = started.elapsed().as_secs_f64();
    all_ready(&api, n, limit).await;
    quiet(fg).await;
    out.push(Figure {
        scenario: "restart".into(),
        resources: n,
        latency_ms: lat,
        seconds,
        calls: Calls::of(&fg.requests()),
        api_writes: Some(apiserver_writes(&client).await - before),
        limit_calls: 2,
        limit_seconds: limit_seconds(2, 1, lat),
        extra: vec![("rss_mib_in_process".into(), rss_mib())],
    });
    drop(controller);
    drop(ctx);
    fg.clear_faults();

    // Steady state: groups converged on a connection resyncing every 10 minutes, then set to
    // resync every `run.resync`; one interval measured after everything settled. (Converging
    // under the short interval would measure the burst competing with resyncs instead.)
    let resync = format!("{}s", run.resync.as_secs());
    for (size, device) in run.steady.iter().zip(&names[1..]) {
        let fg = sim.fortigate(device);
        let ns = connected(cp, fg, "10m", &format!("steady-{size}-{lat}")).await;
        let api = Api::<AddressGroup>::namespaced(client.clone(), &ns);
        let (controller, _ctx) = start(&ns);
        wait_reachable(&client, &ns).await;
        latency(fg, lat);
        create_groups(&api, *size, m).await;
        if let Err(got) = ready_within(&api, *size, limit).await {
            println!("fleet bench: steady {size} at {lat} ms: only {got} Ready after {limit:?}");
        }
        let patch = json!({"spec": {"resyncInterval": resync}});
        Api::<FortiGate>::namespaced(client.clone(), &ns)
            .patch("fw", &PatchParams::default(), &Patch::Merge(&patch))
            .await
            .expect("set the steady-state resync interval");
        quiet(fg).await;
        tokio::time::sleep(Duration::from_secs(2)).await;
        fg.clear_requests();
        let before = apiserver_writes(&client).await;
        tokio::time::sleep(run.window).await;
        let calls = Calls::of(&fg.requests());
        let api_writes = apiserver_writes(&client).await - before;
        // Per device and hour: this device holds all `size` groups.
        let hour = 3600.0 / run.window.as_secs_f64();
        out.push(Figure {
            scenario: "steady".into(),
            resources: *size,
            latency_ms: lat,
            seconds: run.window.as_secs_f64(),
            calls,
            api_writes: Some(api_writes),
            limit_calls: 2,
            limit_seconds: limit_seconds(2, 1, lat),
            extra: vec![
                (
                    "dev_calls_per_h".into(),
                    (calls.reads + calls.writes + calls.probes) as f64 * hour,
                ),
                ("dev_writes_per_h".into(), calls.writes as f64 * hour),
                ("api_writes_per_h".into(), api_writes as f64 * hour),
            ],
        });
        drop(controller);
    }
    out
}

/// Adds the member `198.51.100.9` to `g-00000` (its other `members` as created) and times the
/// change until the device's group holds it, in ms.
async fn edit_during_burst(
    api: &Api<AddressGroup>,
    fg: &FortiGateHandle,
    members: usize,
    limit: Duration,
) -> f64 {
    let name = "g-00000";
    let mut list = group(0, members).spec.members;
    list.push(serde_json::from_value(json!({"address": "198.51.100.9"})).expect("member"));
    let patch = json!({"spec": {"members": list}});
    api.patch(name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .expect("edit a group during the burst");
    let t = Instant::now();
    let want = members + 1;
    while fg
        .group_members("root", Table::Addrgrp, name)
        .map(|v| v.len())
        != Some(want)
    {
        if t.elapsed() > limit {
            return f64::NAN;
        }
        // Every 5 ms: the figure is seconds during a burst, and each look takes the device's lock.
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    t.elapsed().as_secs_f64() * 1e3
}

/// Puts `g-00000` back to its `members` as created (not measured), so that the edits start
/// from the group the burst made.
async fn undo_burst_edit(
    api: &Api<AddressGroup>,
    fg: &FortiGateHandle,
    members: usize,
    limit: Duration,
) {
    let patch = json!({"spec": {"members": group(0, members).spec.members}});
    let patched = api
        .patch("g-00000", &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .expect("undo the burst's edit");
    fixture::wait_for("the burst's edit undone", limit, || async {
        let s = api.get("g-00000").await.ok()?.status?;
        (s.observed_generation == patched.metadata.generation
            && fg
                .group_members("root", Table::Addrgrp, "g-00000")
                .map(|v| v.len())
                == Some(members))
        .then_some(())
    })
    .await;
    quiet(fg).await;
}
