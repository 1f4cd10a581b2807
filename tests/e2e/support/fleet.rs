//! Fleet-scale figures (issue 17), shared by `benches/fleet.rs` (`scripts/bench`) and the e2e
//! smoke test that keeps it from rotting: many AddressGroups on one simulated FortiGate, the
//! in-process controller, a real kube-apiserver. Each scenario reports its wall time, the
//! device calls the simulator logged, the controller's writes to the apiserver, and the
//! *limit*: the fewest device calls that change needs and what they cost at the device's
//! latency with the Guard's concurrency.

use std::time::{Duration, Instant};

use fortisync::api::AddressGroup;
use fortisync::api::FortiGate;
use fortisync::api::conditions::{READY, is_true};
use fortisync::reconcile::context::Context;
use fortisync::sim::fortios::{FaultRule, FortiGateHandle, RequestRecord, Table};
use fortisync::sim::{Scenario, Simulator};
use futures::StreamExt;
use kube::api::{ListParams, Patch, PatchParams, PostParams};
use kube::{Api, Client};
use serde_json::{Value, json};

use super::control_plane::ControlPlane;
use super::fixture::{self, KEY, RunningController};

/// Requests the Guard lets run at once per device (`Endpoint`'s default).
pub const DEVICE_CONCURRENCY: u64 = 4;

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

/// Device requests split into reads (GET) and writes, connection probes aside.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Calls {
    /// GETs.
    pub reads: u64,
    /// Everything else.
    pub writes: u64,
    /// `monitor/system/status` probes of the connection.
    pub probes: u64,
}

impl Calls {
    /// Counts `log`.
    pub fn of(log: &[RequestRecord]) -> Self {
        let mut c = Calls::default();
        for r in log {
            if r.path.starts_with("/api/v2/monitor/system/status") {
                c.probes += 1;
            } else if r.method == "GET" {
                c.reads += 1;
            } else {
                c.writes += 1;
            }
        }
        c
    }
}

/// One measured scenario.
#[derive(Debug, Clone)]
pub struct Figure {
    /// e.g. `burst`, `restart`, `steady`, `edit`.
    pub scenario: String,
    /// Resources involved.
    pub resources: usize,
    /// Device latency per call.
    pub latency_ms: u64,
    /// Wall time of the scenario (for `steady`, the window).
    pub seconds: f64,
    /// Device calls.
    pub calls: Calls,
    /// The controller's writes to the apiserver (status, finalizers, events).
    pub api_writes: Option<u64>,
    /// Fewest device calls the change needs.
    pub limit_calls: u64,
    /// `limit_calls × latency / concurrency` (or the dependent chain, when longer).
    pub limit_seconds: f64,
    /// Extra figures (percentiles, RSS).
    pub extra: Vec<(String, f64)>,
}

impl Figure {
    /// Ours / limit, in device calls.
    pub fn calls_ratio(&self) -> f64 {
        (self.calls.reads + self.calls.writes) as f64 / self.limit_calls.max(1) as f64
    }

    /// Ours / limit, in time (none at 0 ms, where the limit is 0).
    pub fn time_ratio(&self) -> Option<f64> {
        (self.limit_seconds > 0.0).then(|| self.seconds / self.limit_seconds)
    }

    /// The figure as JSON.
    pub fn json(&self) -> Value {
        let mut extra = serde_json::Map::new();
        for (k, v) in &self.extra {
            extra.insert(k.clone(), json!(v));
        }
        json!({
            "scenario": self.scenario,
            "resources": self.resources,
            "latency_ms": self.latency_ms,
            "seconds": self.seconds,
            "device_reads": self.calls.reads,
            "device_writes": self.calls.writes,
            "device_probes": self.calls.probes,
            "apiserver_writes": self.api_writes,
            "limit_calls": self.limit_calls,
            "limit_seconds": self.limit_seconds,
            "calls_ratio": self.calls_ratio(),
            "time_ratio": self.time_ratio(),
            "extra": extra,
        })
    }
}

/// `calls` at `latency_ms` each, `DEVICE_CONCURRENCY` at once, but never shorter than a
/// chain of `chain` dependent calls.
pub fn limit_seconds(calls: u64, chain: u64, latency_ms: u64) -> f64 {
    let spread = calls as f64 * latency_ms as f64 / DEVICE_CONCURRENCY as f64;
    spread.max(chain as f64 * latency_ms as f64) / 1e3
}

/// Writes (anything but GET, LIST, WATCH) the apiserver has taken, from its own
/// `apiserver_request_total`. The control plane is shared by whatever else runs on it: only
/// the bench, which runs alone, reads a difference of two of these as the controller's.
pub async fn apiserver_writes(client: &Client) -> u64 {
    let req = hyper::Request::get("/metrics")
        .body(Vec::new())
        .expect("metrics request");
    let text = client.request_text(req).await.expect("apiserver /metrics");
    text.lines()
        .filter(|l| l.starts_with("apiserver_request_total{"))
        .filter(|l| {
            ["\"POST\"", "\"PATCH\"", "\"PUT\"", "\"DELETE\""]
                .iter()
                .any(|v| l.contains(&format!("verb={v}")))
        })
        .filter_map(|l| l.rsplit_once(' ')?.1.parse::<f64>().ok())
        .sum::<f64>() as u64
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

/// Creates groups `g-<from>`… `g-<from + count - 1>` on `target`, 16 at a time.
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
    .buffer_unordered(16);
    while let Some(result) = creates.next().await {
        result.expect("create an AddressGroup");
    }
}

async fn create_groups(api: &Api<AddressGroup>, count: usize, members: usize) {
    create_groups_on(api, "fw", 0, count, members).await
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
/// has finished.
pub async fn quiet(fg: &FortiGateHandle) {
    let count = || {
        let c = Calls::of(&fg.requests());
        c.reads + c.writes
    };
    let (mut last, mut since) = (count(), Instant::now());
    while since.elapsed() < Duration::from_secs(1) {
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

/// The nearest-rank `p`th percentile of `sorted`, in ms.
pub fn percentile(sorted: &[Duration], p: f64) -> f64 {
    let rank = ((p / 100.0) * sorted.len() as f64).ceil().max(1.0) as usize;
    sorted[rank.min(sorted.len()) - 1].as_secs_f64() * 1e3
}

/// The resident set of this process, in MiB (controller, simulator and client together).
pub fn rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse::<f64>().ok())
        })
        .map_or(0.0, |kib| kib / 1024.0)
}

/// Runs every scenario of `run` on `sim` and returns its figures.
pub async fn run(cp: &ControlPlane, sim: &Simulator, run: &FleetRun) -> Vec<Figure> {
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
        ("edit_in_burst_ms".into(), edit),
        ("rss_mib_in_process".into(), rss_mib()),
    ];
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
        limit_seconds: limit_seconds(limit_calls, 3, lat),
        extra,
    });
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

    // Steady state: converged groups on a connection resyncing every `run.resync`; one
    // interval measured after everything settled.
    let resync = format!("{}s", run.resync.as_secs());
    for (size, device) in run.steady.iter().zip(&names[1..]) {
        let fg = sim.fortigate(device);
        let ns = connected(cp, fg, &resync, &format!("steady-{size}-{lat}")).await;
        let api = Api::<AddressGroup>::namespaced(client.clone(), &ns);
        let (controller, _ctx) = start(&ns);
        wait_reachable(&client, &ns).await;
        latency(fg, lat);
        create_groups(&api, *size, m).await;
        all_ready(&api, *size, limit).await;
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

/// The figures as a table, one line each.
pub fn table(figures: &[Figure]) -> String {
    let mut s = format!(
        "{:<10} {:>6} {:>5} {:>9} {:>7} {:>7} {:>8} {:>8} {:>9} {:>8} {:>8}  extra\n",
        "scenario",
        "res",
        "lat",
        "seconds",
        "reads",
        "writes",
        "api-wr",
        "lim-call",
        "lim-sec",
        "calls/l",
        "time/l"
    );
    for f in figures {
        let extra: Vec<String> = f.extra.iter().map(|(k, v)| format!("{k}={v:.1}")).collect();
        s.push_str(&format!(
            "{:<10} {:>6} {:>5} {:>9.3} {:>7} {:>7} {:>8} {:>8} {:>9.3} {:>8.2} {:>8}  {}\n",
            f.scenario,
            f.resources,
            f.latency_ms,
            f.seconds,
            f.calls.reads,
            f.calls.writes,
            f.api_writes.map_or("-".into(), |w| w.to_string()),
            f.limit_calls,
            f.limit_seconds,
            f.calls_ratio(),
            f.time_ratio().map_or("-".into(), |r| format!("{r:.2}")),
            extra.join(" "),
        ));
    }
    s
}
