//! The controller's own figures against a real kube-apiserver (etcd + kube-apiserver on
//! loopback, as the e2e tests start them) and the simulated FortiGate: CR-change → device
//! latency, device calls per change, a 1,000-member group from empty, device calls per resync
//! at steady state, the RSS of the real `fortisync run` binary with 1,000 AddressGroups, and
//! the leader takeover of two `fortisync run` replicas (kill → the new leader's first write).
//!
//! Run: `FORTISYNC_CONTROL_PLANE_BIN=<dir with etcd, kube-apiserver, kubectl> cargo bench
//! --bench controller` (`scripts/control-plane` builds the binaries and prints that directory).
//! Sizes: `FORTISYNC_BENCH_EDITS` (100), `FORTISYNC_BENCH_BIG_MEMBERS` (1000),
//! `FORTISYNC_BENCH_RESYNC_GROUPS` (50), `FORTISYNC_BENCH_GROUPS` (1000), and the replicas'
//! Lease duration `FORTISYNC_BENCH_LEASE_SECONDS` (15, `fortisync run`'s default).
//!
//! This is a benchmark, not a test: it prints figures next to their aims and fails (non-zero
//! exit) only when it cannot measure (no control plane, a timeout, a dead child process).

#[path = "../tests/e2e/support/mod.rs"]
#[allow(dead_code)]
mod support;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use fortisync::api::AddressGroup;
use fortisync::api::conditions::{READY, is_true};
use fortisync::reconcile::context::Context;
use fortisync::reconcile::controller::{self, Scope};
use fortisync::sim::fortios::{FortiGateHandle, RequestRecord, Table};
use fortisync::sim::{Scenario, Simulator};
use futures::StreamExt;
use k8s_openapi::api::coordination::v1::Lease;
use kube::api::{ListParams, Patch, PatchParams, PostParams};
use kube::{Api, Client};
use prometheus_client::registry::Registry;
use serde_json::json;

use support::bench::{KEY, connection, ms, namespace, percentile, secret, verdict};
use support::control_plane::ControlPlane;

const VDOM: &str = "root";
/// Base members of the group the single-member edits go to.
const BASE_MEMBERS: usize = 10;
/// Members of each AddressGroup in the resync and RSS runs.
const SMALL_GROUP: usize = 3;
const POLL: Duration = Duration::from_millis(1);

fn main() -> ExitCode {
    let cp = match support::bench::start("controller") {
        Ok(cp) => cp,
        Err(code) => return code,
    };
    support::bench::runtime().block_on(bench(cp));
    // The harness's watchdog stops etcd and kube-apiserver once this process is gone.
    ExitCode::SUCCESS
}

async fn bench(cp: &'static ControlPlane) {
    let edits = support::bench::env_usize("FORTISYNC_BENCH_EDITS", 100);
    let big = support::bench::env_usize("FORTISYNC_BENCH_BIG_MEMBERS", 1000);
    let resync_groups = support::bench::env_usize("FORTISYNC_BENCH_RESYNC_GROUPS", 50);
    let groups = support::bench::env_usize("FORTISYNC_BENCH_GROUPS", 1000);
    let lease_seconds = support::bench::env_usize("FORTISYNC_BENCH_LEASE_SECONDS", 15);
    println!("controller bench: {}", support::bench::machine_context());
    let started = Instant::now();

    let sim = Simulator::start(scenario()).await.expect("simulator");
    let client = cp.client();

    // Figures 1–4: the controller in-process, one namespace, two simulated FortiGates.
    let ns = namespace(&client, "bench-ctl").await;
    let (fg_edit, fg_resync) = (sim.fortigate("fw-edit"), sim.fortigate("fw-resync"));
    secret(&client, &ns, fg_edit, "fw-edit-token").await;
    secret(&client, &ns, fg_resync, "fw-resync-token").await;
    connection(&client, &ns, "fw-edit", fg_edit, "10m").await;
    connection(&client, &ns, "fw-resync", fg_resync, "10s").await;
    let mut registry = Registry::default();
    let ctx = Arc::new(Context::new(client.clone(), &mut registry));
    let controller = tokio::spawn(controller::run(ctx, Scope::namespace(ns.clone())));
    // The first probe writes the connections' status, which re-triggers their AddressGroups:
    // let that happen before there are any.
    for name in ["fw-edit", "fw-resync"] {
        support::fleet::wait_named_reachable(&client, &ns, name).await;
    }

    edits_bench(&client, &ns, fg_edit, edits).await;
    big_group_bench(&client, &ns, fg_edit, big).await;
    resync_bench(&client, &ns, fg_resync, resync_groups).await;
    controller.abort();
    let _ = controller.await;

    // Figure 5: the real binary as a child process.
    rss_bench(cp, &client, sim.fortigate("fw-rss"), groups).await;

    // Figure 6: two replicas of the real binary, the leader killed.
    takeover_bench(cp, &client, sim.fortigate("fw-takeover"), lease_seconds).await;

    println!(
        "(whole bench {:.0} s; figures are pessimistic when the machine is shared)",
        started.elapsed().as_secs_f64()
    );
}

fn scenario() -> Scenario {
    let mut yaml = String::from("fortigates:\n");
    for name in ["fw-edit", "fw-resync", "fw-rss", "fw-takeover"] {
        yaml.push_str(&format!(
            "  - name: {name}\n    version: \"7.4.3\"\n    api_users: [{{name: fortisync, key: {KEY}, trusthosts: [\"127.0.0.0/8\"]}}]\n"
        ));
    }
    Scenario::from_yaml(&yaml).expect("scenario")
}

fn address_group(name: &str, target: &str, members: &[String]) -> AddressGroup {
    serde_json::from_value(json!({
        "apiVersion": "fortisync.dev/v1alpha1",
        "kind": "AddressGroup",
        "metadata": {"name": name},
        "spec": {
            "targetRef": {"kind": "FortiGate", "name": target},
            "groupName": name,
            "members": members_json(members),
        },
    }))
    .expect("AddressGroup")
}

fn members_json(members: &[String]) -> serde_json::Value {
    members.iter().map(|m| json!({"address": m})).collect()
}

/// Polls `check` every 20 ms until it holds; panics after `limit_s` seconds.
async fn wait_for<F, Fut>(what: &str, limit_s: u64, mut check: F) -> Duration
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let started = Instant::now();
    loop {
        if check().await {
            return started.elapsed();
        }
        assert!(
            started.elapsed() < Duration::from_secs(limit_s),
            "controller bench: timed out after {limit_s} s waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Polls the simulator's in-process state every ~1 ms until `check` holds.
async fn wait_device(what: &str, limit: Duration, check: impl Fn() -> bool) -> Duration {
    let started = Instant::now();
    loop {
        if check() {
            return started.elapsed();
        }
        assert!(
            started.elapsed() < limit,
            "controller bench: timed out after {limit:?} waiting for {what}"
        );
        tokio::time::sleep(POLL).await;
    }
}

/// Whether the AddressGroup's status describes `generation` and says Ready.
async fn ready_at(api: &Api<AddressGroup>, name: &str, generation: Option<i64>) -> bool {
    api.get(name)
        .await
        .ok()
        .and_then(|g| g.status)
        .is_some_and(|s| {
            s.observed_generation.is_some()
                && s.observed_generation >= generation
                && is_true(&s.conditions, READY)
        })
}

fn member_count(fg: &FortiGateHandle, group: &str) -> Option<usize> {
    fg.group_members(VDOM, Table::Addrgrp, group)
        .map(|m| m.len())
}

/// Device requests split into reads (GET) and writes, connection probes aside.
#[derive(Debug, Default, Clone, Copy)]
struct Calls {
    reads: usize,
    writes: usize,
    probes: usize,
}

impl Calls {
    fn of(log: &[RequestRecord]) -> Self {
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

/// Figures 1 and 2: single-member edits through the Kubernetes API.
async fn edits_bench(client: &Client, ns: &str, fg: &FortiGateHandle, edits: usize) {
    let api = Api::<AddressGroup>::namespaced(client.clone(), ns);
    let name = "edits";
    let base: Vec<String> = (1..=BASE_MEMBERS).map(|i| format!("192.0.2.{i}")).collect();
    let created = api
        .create(
            &PostParams::default(),
            &address_group(name, "fw-edit", &base),
        )
        .await
        .expect("create the edits group");
    wait_for("the edits group Ready", 60, || {
        ready_at(&api, name, created.metadata.generation)
    })
    .await;

    let mut to_device = Vec::with_capacity(edits);
    let mut to_status = Vec::with_capacity(edits);
    let (mut add, mut remove) = (Vec::new(), Vec::new());
    for i in 0..edits {
        let adding = i % 2 == 0;
        let mut members = base.clone();
        if adding {
            members.push(format!("198.51.100.{}", (i / 2) % 250 + 1));
        }
        let want = members.len();
        fg.clear_requests();
        let patch = json!({"spec": {"members": members_json(&members)}});
        let patched = api
            .patch(name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
            .expect("edit the group");
        let written = Instant::now();
        wait_device(
            "the edited member on the device",
            Duration::from_secs(30),
            || member_count(fg, name) == Some(want),
        )
        .await;
        to_device.push(written.elapsed());
        // The reconcile ends with the status write: then every device call of the change is in.
        wait_for("the edit in status", 30, || {
            ready_at(&api, name, patched.metadata.generation)
        })
        .await;
        to_status.push(written.elapsed());
        let calls = Calls::of(&fg.requests());
        if adding {
            add.push(calls)
        } else {
            remove.push(calls)
        }
    }
    to_device.sort();
    to_status.sort();
    let p99 = percentile(&to_device, 99.0);
    println!(
        "1. CR change -> device, single-member edits ({edits}, group of {BASE_MEMBERS}±1):  p50 {:.1} ms  p99 {:.1} ms  max {:.1} ms   [aim p99 <= 100 ms: {}]",
        ms(percentile(&to_device, 50.0)),
        ms(p99),
        ms(*to_device.last().expect("edits")),
        verdict(p99 <= Duration::from_millis(100)),
    );
    println!(
        "   CR change -> status Ready (reconcile done):                  p50 {:.1} ms  p99 {:.1} ms",
        ms(percentile(&to_status, 50.0)),
        ms(percentile(&to_status, 99.0)),
    );
    for (label, calls) in [("add one member", &add), ("remove one member", &remove)] {
        let n = calls.len().max(1) as f64;
        let reads = calls.iter().map(|c| c.reads).sum::<usize>() as f64 / n;
        let writes = calls.iter().map(|c| c.writes).sum::<usize>() as f64 / n;
        let worst = calls.iter().map(|c| c.reads + c.writes).max().unwrap_or(0);
        println!(
            "2. device calls per change, {label:<18} {reads:.2} reads, {writes:.2} writes per change (worst {worst} calls)   [aim: 1 write per added member + 1 shared group update = 2 writes: {}]",
            verdict(writes <= 2.0),
        );
    }
}

/// Figure 3: one AddressGroup with `size` members created at once.
async fn big_group_bench(client: &Client, ns: &str, fg: &FortiGateHandle, size: usize) {
    let api = Api::<AddressGroup>::namespaced(client.clone(), ns);
    let name = "big";
    let members: Vec<String> = (0..size)
        .map(|i| format!("10.{}.{}.1", 100 + i / 200, i % 200 + 1))
        .collect();
    fg.clear_requests();
    let created = api
        .create(
            &PostParams::default(),
            &address_group(name, "fw-edit", &members),
        )
        .await
        .expect("create the big group");
    let written = Instant::now();
    let took = wait_device(
        "the big group on the device",
        Duration::from_secs(120),
        || member_count(fg, name) == Some(size),
    )
    .await;
    wait_for("the big group Ready", 120, || {
        ready_at(&api, name, created.metadata.generation)
    })
    .await;
    let ready = written.elapsed();
    let calls = Calls::of(&fg.requests());
    println!(
        "3. {size}-member group from empty: {:.0} ms to all members on the device ({:.0} ms to Ready), {} reads + {} writes = {:.2} calls per member   [aim < 1 s: {}; Ansible fortinet.fortios ~4 requests and ~1 s per address object]",
        ms(took),
        ms(ready),
        calls.reads,
        calls.writes,
        (calls.reads + calls.writes) as f64 / size as f64,
        verdict(took < Duration::from_secs(1)),
    );
    // Leave the device and the cluster as small as they were for what follows.
    api.delete(name, &Default::default())
        .await
        .expect("delete the big group");
    wait_device("the big group removed", Duration::from_secs(120), || {
        member_count(fg, name).is_none()
    })
    .await;
}

/// Figure 4: converged groups on a connection with `resyncInterval: 10s`.
async fn resync_bench(client: &Client, ns: &str, fg: &FortiGateHandle, count: usize) {
    let api = Api::<AddressGroup>::namespaced(client.clone(), ns);
    let names: Vec<String> = (0..count).map(|i| format!("resync-{i:04}")).collect();
    create_groups(&api, "fw-resync", &names, 20).await;
    wait_groups_on_device(fg, &names, Duration::from_secs(120)).await;
    wait_all_ready(&api, &names, 120).await;
    // Let the creating reconciles' status writes and events settle.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let window = Duration::from_secs(10);
    fg.clear_requests();
    tokio::time::sleep(window).await;
    let log = fg.requests();
    let calls = Calls::of(&log);
    // Every reconcile of a FortiGate-targeted group reads its group exactly once.
    let resyncs = log
        .iter()
        .filter(|r| r.method == "GET" && r.path.starts_with("/api/v2/cmdb/firewall/addrgrp/"))
        .count();
    let per_resync = |n: usize| n as f64 / resyncs.max(1) as f64;
    println!(
        "4. steady-state resync ({count} converged groups, resyncInterval 10s, one {} s window): {resyncs} resyncs, {:.2} reads + {:.2} writes per resync ({:.2} reads per group per window; plus {} connection probe(s))   [aim <= 2 reads, 0 writes: {}]",
        window.as_secs(),
        per_resync(calls.reads),
        per_resync(calls.writes),
        calls.reads as f64 / count as f64,
        calls.probes,
        verdict(per_resync(calls.reads) <= 2.0 && calls.writes == 0),
    );
    // Stop reconciling them: the figure-5 run wants a quiet machine.
    let lp = ListParams::default();
    api.delete_collection(&Default::default(), &lp)
        .await
        .expect("delete the resync groups");
    wait_for("the resync groups gone", 120, || {
        let api = api.clone();
        async move {
            api.list(&ListParams::default())
                .await
                .is_ok_and(|l| l.items.is_empty())
        }
    })
    .await;
}

async fn create_groups(api: &Api<AddressGroup>, target: &str, names: &[String], parallel: usize) {
    let groups: Vec<AddressGroup> = names
        .iter()
        .enumerate()
        .map(|(i, name)| {
            let members: Vec<String> = (0..SMALL_GROUP)
                .map(|j| format!("10.{}.{}.{}", 20 + i / 250, i % 250, j + 1))
                .collect();
            address_group(name, target, &members)
        })
        .collect();
    let mut creates = futures::stream::iter(groups.iter().map(|g| {
        let api = api.clone();
        async move { api.create(&PostParams::default(), g).await }
    }))
    .buffer_unordered(parallel);
    while let Some(result) = creates.next().await {
        result.expect("create an AddressGroup");
    }
}

async fn wait_groups_on_device(
    fg: &FortiGateHandle,
    names: &[String],
    limit: Duration,
) -> Duration {
    let prefix = prefix_of(names);
    let started = Instant::now();
    loop {
        let complete = fg
            .objects(VDOM, Table::Addrgrp)
            .iter()
            .filter(|g| {
                g["name"].as_str().is_some_and(|n| n.starts_with(prefix))
                    && g["member"]
                        .as_array()
                        .is_some_and(|m| m.len() == SMALL_GROUP)
            })
            .count();
        if complete >= names.len() {
            return started.elapsed();
        }
        assert!(
            started.elapsed() < limit,
            "controller bench: only {complete} of {} groups on the device after {limit:?}",
            names.len()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The common name prefix of the groups of one run (`resync-`, `rss-`).
fn prefix_of(names: &[String]) -> &str {
    names
        .first()
        .and_then(|n| n.split_once('-'))
        .map_or("", |(p, _)| &names[0][..=p.len()])
}

async fn wait_all_ready(api: &Api<AddressGroup>, names: &[String], limit_s: u64) -> Duration {
    let (count, prefix) = (names.len(), prefix_of(names));
    wait_for(&format!("{count} AddressGroups Ready"), limit_s, || {
        let api = api.clone();
        async move {
            api.list(&ListParams::default()).await.is_ok_and(|l| {
                l.items
                    .iter()
                    .filter(|g| {
                        g.metadata
                            .name
                            .as_deref()
                            .is_some_and(|n| n.starts_with(prefix))
                            && g.status.as_ref().is_some_and(|s| {
                                s.observed_generation == g.metadata.generation
                                    && is_true(&s.conditions, READY)
                            })
                    })
                    .count()
                    >= count
            })
        }
    })
    .await
}

/// `fortisync run`, stopped (and reaped) on drop, and by a watchdog if this process dies.
struct ControllerProcess {
    child: Child,
    /// Ends within 0.5 s of the child; reaped on drop.
    watchdog: Child,
    log: PathBuf,
}

impl ControllerProcess {
    fn start(cp: &ControlPlane, ns: &str) -> Self {
        Self::start_as(cp, ns, "run", &[])
    }

    /// `fortisync run` for `ns` with `extra` arguments; `name` tells its log apart.
    fn start_as(cp: &ControlPlane, ns: &str, name: &str, extra: &[&str]) -> Self {
        let binary = fortisync_binary();
        // Outside the run directory (removed at exit), so it can be read afterwards.
        let log =
            std::env::temp_dir().join(format!("fortisync-bench-{name}-{}.log", std::process::id()));
        let out = std::fs::File::create(&log).expect("controller log");
        let admin = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("free port");
        let child = Command::new(&binary)
            .args(["run", "--namespace", ns, "--lease-namespace", ns])
            .arg(format!("--admin-address={admin}"))
            .args(["--log-format", "text"])
            .args(extra)
            .env("KUBECONFIG", cp.kubeconfig())
            .env_remove("POD_NAMESPACE")
            .env_remove("POD_NAME")
            .stdin(Stdio::null())
            .stdout(out.try_clone().expect("log"))
            .stderr(out)
            .spawn()
            .unwrap_or_else(|e| panic!("start {}: {e}", binary.display()));
        let watchdog = format!(
            "while kill -0 {parent} 2>/dev/null && kill -0 {child} 2>/dev/null; do sleep 0.5; done; kill {child} 2>/dev/null",
            parent = std::process::id(),
            child = child.id()
        );
        let watchdog = Command::new("bash")
            .args(["-c", &watchdog])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("watchdog");
        Self {
            child,
            watchdog,
            log,
        }
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    fn assert_alive(&mut self) {
        if let Ok(Some(status)) = self.child.try_wait() {
            let text = std::fs::read_to_string(&self.log).unwrap_or_default();
            let tail: Vec<&str> = text.lines().rev().take(30).collect();
            panic!(
                "fortisync run exited with {status}; log tail:\n{}",
                tail.into_iter().rev().collect::<Vec<_>>().join("\n")
            );
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// SIGKILL, as when its node dies: it cannot release the Lease. The log goes with it.
    fn kill(mut self) {
        let _ = self.child.kill();
        let log = self.log.clone();
        drop(self);
        let _ = std::fs::remove_file(log);
    }

    /// (VmRSS, VmHWM) in KiB.
    fn memory(&self) -> (u64, u64) {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid()))
            .expect("/proc/<pid>/status");
        let field = |name: &str| {
            status
                .lines()
                .find(|l| l.starts_with(name))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
                .unwrap_or(0)
        };
        (field("VmRSS:"), field("VmHWM:"))
    }

    /// SIGTERM, then SIGKILL after 10 s (on drop); the log goes once it has stopped.
    fn stop(mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.pid().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let log = self.log.clone();
        drop(self);
        let _ = std::fs::remove_file(log);
    }
}

impl Drop for ControllerProcess {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
        let _ = self.watchdog.wait();
    }
}

/// The `fortisync` binary Cargo builds (with this bench's profile) for benches.
fn fortisync_binary() -> PathBuf {
    let path = Path::new(env!("CARGO_BIN_EXE_fortisync")).to_path_buf();
    assert!(path.is_file(), "{} is missing", path.display());
    path
}

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

/// Figure 5: RSS of `fortisync run` with `count` AddressGroups on one FortiGate.
async fn rss_bench(cp: &ControlPlane, client: &Client, fg: &FortiGateHandle, count: usize) {
    let ns = namespace(client, "bench-rss").await;
    secret(client, &ns, fg, "fw-rss-token").await;
    connection(client, &ns, "fw-rss", fg, "10m").await;
    let mut child = ControllerProcess::start(cp, &ns);
    support::fleet::wait_named_reachable(client, &ns, "fw-rss").await;
    child.assert_alive();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let (idle, _) = child.memory();

    let api = Api::<AddressGroup>::namespaced(client.clone(), &ns);
    let names: Vec<String> = (0..count).map(|i| format!("rss-{i:04}")).collect();
    fg.clear_requests();
    let started = Instant::now();
    create_groups(&api, "fw-rss", &names, 16).await;
    let created = started.elapsed();
    child.assert_alive();
    wait_groups_on_device(fg, &names, Duration::from_secs(180)).await;
    let on_device = started.elapsed();
    wait_all_ready(&api, &names, 180).await;
    let ready = started.elapsed();
    child.assert_alive();
    let (rss_ready, _) = child.memory();
    // Settled: the creating reconciles are done; what stays is held per object.
    tokio::time::sleep(Duration::from_secs(5)).await;
    child.assert_alive();
    let (rss, hwm) = child.memory();
    let calls = Calls::of(&fg.requests());
    println!(
        "5. fortisync run RSS with {count} AddressGroups ({SMALL_GROUP} members each, one FortiGate): {:.1} MiB settled ({:.1} MiB when all Ready, peak {:.1} MiB, {:.1} MiB idle before any)   [aim <= 50 MiB: {}]",
        mib(rss),
        mib(rss_ready),
        mib(hwm),
        mib(idle),
        verdict(mib(rss) <= 50.0),
    );
    println!(
        "   {count} groups: created through the API in {:.1} s, all on the device after {:.1} s, all Ready after {:.1} s; {} device reads + {} writes ({:.2} per group)",
        created.as_secs_f64(),
        on_device.as_secs_f64(),
        ready.as_secs_f64(),
        calls.reads,
        calls.writes,
        (calls.reads + calls.writes) as f64 / count as f64,
    );
    child.stop();
}

/// The holder of the replicas' Lease in `ns`.
async fn lease_holder(client: &Client, ns: &str) -> Option<String> {
    Api::<Lease>::namespaced(client.clone(), ns)
        .get_opt("fortisync-controller")
        .await
        .ok()??
        .spec?
        .holder_identity
}

/// Figure 6: two `fortisync run` replicas share the Lease; the leader is killed (SIGKILL, so
/// it cannot hand the Lease over) and an edit is applied at once. Measured from the kill to
/// the first device write the simulator logs, which only the new leader can make.
async fn takeover_bench(cp: &ControlPlane, client: &Client, fg: &FortiGateHandle, lease: usize) {
    let ns = namespace(client, "bench-takeover").await;
    secret(client, &ns, fg, "fw-takeover-token").await;
    connection(client, &ns, "fw-takeover", fg, "10m").await;
    let lease_arg = lease.to_string();
    let replica = |identity: &str| {
        let args = [
            "--identity",
            identity,
            "--lease-duration-seconds",
            &lease_arg,
        ];
        ControllerProcess::start_as(cp, &ns, identity, &args)
    };
    let (mut a, mut b) = (replica("takeover-a"), replica("takeover-b"));
    support::fleet::wait_named_reachable(client, &ns, "fw-takeover").await;
    let api = Api::<AddressGroup>::namespaced(client.clone(), &ns);
    let one = vec!["192.0.2.10".to_string()];
    api.create(
        &PostParams::default(),
        &address_group("takeover", "fw-takeover", &one),
    )
    .await
    .expect("create AddressGroup");
    wait_device("the group on the device", Duration::from_secs(60), || {
        member_count(fg, "takeover") == Some(1)
    })
    .await;
    a.assert_alive();
    b.assert_alive();
    let started = Instant::now();
    let leader = loop {
        if let Some(holder) = lease_holder(client, &ns).await {
            break holder;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "controller bench: no Lease holder after 30 s"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let (lead, mut standby) = if leader == "takeover-a" {
        (a, b)
    } else {
        (b, a)
    };
    wait_for("the standby's caches warm", 30, || {
        let warm = standby.log().contains("standby: caches warm");
        async move { warm }
    })
    .await;

    fg.clear_requests();
    let killed = Instant::now();
    lead.kill();
    let two = members_json(&["192.0.2.10".to_string(), "192.0.2.11".to_string()]);
    api.patch(
        "takeover",
        &PatchParams::default(),
        &Patch::Merge(json!({"spec": {"members": two}})),
    )
    .await
    .expect("edit");
    // Polls the device log every ~1 ms and, every 50 ms, the Lease, to split the figure into
    // the Lease taking over and the new leader's reconcile.
    let limit = Duration::from_secs(lease as u64 * 4 + 60);
    let mut lease_taken = None;
    let mut lease_polled = Instant::now();
    let written = loop {
        if fg.requests().iter().any(|r| r.method != "GET") {
            break killed.elapsed();
        }
        assert!(
            killed.elapsed() < limit,
            "controller bench: no device write {limit:?} after the leader was killed"
        );
        if lease_taken.is_none() && lease_polled.elapsed() >= Duration::from_millis(50) {
            lease_polled = Instant::now();
            if lease_holder(client, &ns).await.is_some_and(|h| h != leader) {
                lease_taken = Some(killed.elapsed());
            }
        }
        tokio::time::sleep(POLL).await;
    };
    standby.assert_alive();
    let holder = lease_holder(client, &ns).await;
    assert!(
        holder.as_ref().is_some_and(|h| *h != leader),
        "controller bench: a device write while the Lease is still {holder:?}"
    );
    assert!(
        standby.log().contains("took the Lease"),
        "controller bench: the standby wrote without taking the Lease:\n{}",
        standby.log()
    );
    println!(
        "6. leader takeover, two fortisync run replicas with a {lease} s Lease: the new leader's first device write {:.1} s after the leader was killed (Lease taken {}; an edit made right after the kill)",
        written.as_secs_f64(),
        lease_taken.map_or_else(
            || "within the last 50 ms poll before it".to_string(),
            |d| format!("after {:.1} s", d.as_secs_f64())
        ),
    );
    standby.stop();
}
