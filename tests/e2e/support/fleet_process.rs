//! The fleet bench's footprint figure (issue 17): the real `fortisync run` binary as a child
//! process serving resources of mixed kinds (AddressGroups, Push ExternalConnectors,
//! TrustedHosts) on one simulated FortiGate, and its resident set and CPU seconds from
//! `/proc/<pid>` — the controller alone, not the bench process that hosts the simulator.

use std::time::{Duration, Instant};

use fortisync::api::{AddressGroup, ExternalConnector, TrustedHost};
use fortisync::sim::Simulator;
use futures::StreamExt;
use kube::api::{ApiResource, DynamicObject, GroupVersionKind, ListParams, PostParams};
use kube::{Api, Client};
use serde_json::json;

use super::control_plane::ControlPlane;
use super::fleet::{self, Calls, Figure, FleetRun};
use super::kinds::{self, Mode};
use super::run::{RunOptions, RunProcess};

/// TrustedHosts among `mixed` resources: a tenth.
pub fn trusted_hosts(mixed: usize) -> usize {
    mixed / 10
}

/// ExternalConnectors among `mixed` resources: a tenth, 10 entries each.
pub fn connectors(mixed: usize) -> usize {
    mixed / 10
}

/// `VmRSS` of `pid` in MiB and its user + system CPU seconds.
pub fn footprint(pid: u32) -> (f64, f64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let rss = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse::<f64>().ok())
        .map_or(0.0, |kib| kib / 1024.0);
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // The command name in parentheses may hold spaces: fields count from its closing one
    // (utime and stime are fields 14 and 15, the 12th and 13th after it).
    let ticks: f64 = stat
        .rsplit_once(')')
        .map(|(_, rest)| {
            rest.split_whitespace()
                .skip(11)
                .take(2)
                .filter_map(|v| v.parse::<f64>().ok())
                .sum()
        })
        .unwrap_or(0.0);
    (rss, ticks / clock_ticks())
}

/// `RssAnon` of `pid` in MiB: the heap, stacks and other private memory — the resident set
/// without the binary's own pages (`RssFile`), which depend on the page cache more than on
/// the controller.
pub fn anon_mib(pid: u32) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with("RssAnon:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse::<f64>().ok())
        .map_or(0.0, |kib| kib / 1024.0)
}

/// `sysconf(_SC_CLK_TCK)`, from `getconf` (100 on every Linux this runs on, the fallback).
fn clock_ticks() -> f64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(100.0)
}

fn api_of(client: &Client, ns: &str, kind: &str) -> Api<DynamicObject> {
    Api::namespaced_with(
        client.clone(),
        ns,
        &ApiResource::from_gvk(&GroupVersionKind::gvk("fortisync.dev", "v1alpha1", kind)),
    )
}

/// How many resources of `kind` in `ns` say Ready for their generation.
pub async fn ready_of(client: &Client, ns: &str, kind: &str) -> usize {
    let Ok(list) = api_of(client, ns, kind).list(&ListParams::default()).await else {
        return 0;
    };
    list.items
        .iter()
        .filter(|o| {
            let status = &o.data["status"];
            status["observedGeneration"].as_i64() == o.metadata.generation
                && status["conditions"].as_array().is_some_and(|c| {
                    c.iter()
                        .any(|c| c["type"] == "Ready" && c["status"] == "True")
                })
        })
        .count()
}

/// The footprint figure of `run` (its `mixed` resources) on the device `mixed-<latency>`.
pub async fn run(cp: &ControlPlane, sim: &Simulator, run: &FleetRun) -> Figure {
    let lat = run.latency_ms;
    let fg = sim.fortigate(&format!("mixed-{lat}"));
    let client = cp.client();
    let ns = fleet::connected(cp, fg, "10m", &format!("mixed-{lat}")).await;
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port();
    let edl = format!("127.0.0.1:{port}");
    let base = format!("http://{edl}");
    let child = RunProcess::start_with(
        cp,
        &RunOptions {
            namespaces: &[&ns],
            lease_namespace: &ns,
            identity: "bench",
            extra: &["--edl-address", &edl, "--edl-base-url", &base],
            kubeconfig: None,
            // Warnings only: an info line per reconcile would be part of the footprint.
            log_filter: "warn",
        },
    );
    fleet::wait_reachable(&client, &ns).await;
    fleet::latency(fg, lat);
    let (rss_idle, cpu_idle) = footprint(child.pid());
    let anon_idle = anon_mib(child.pid());
    let (ths, ecs) = (trusted_hosts(run.mixed), connectors(run.mixed));
    let groups = run.mixed - ths - ecs;
    fg.clear_requests();
    let started = Instant::now();
    let ag: Api<AddressGroup> = Api::namespaced(client.clone(), &ns);
    fleet::create_groups_on(&ag, "fw", 0, groups, run.members).await;
    let ec: Api<ExternalConnector> = Api::namespaced(client.clone(), &ns);
    let mut creates = futures::stream::iter((0..ecs).map(|i| {
        let ec = ec.clone();
        let entries: Vec<String> = (0..10)
            .map(|j| format!("10.200.{}.{}", i % 250, j + 1))
            .collect();
        let c = kinds::connector(
            &format!("ec-{i:04}"),
            "fw",
            Mode::Push,
            json!({"entries": kinds::entries_json(&entries)}),
        );
        async move { ec.create(&PostParams::default(), &c).await }
    }))
    .buffer_unordered(16);
    while let Some(r) = creates.next().await {
        r.expect("create an ExternalConnector");
    }
    let th: Api<TrustedHost> = Api::namespaced(client.clone(), &ns);
    let mut creates = futures::stream::iter((0..ths).map(|i| {
        let th = th.clone();
        // Slots 2-10 of adm-00, adm-01, … (slot 1 keeps each admin's loopback entry).
        let t: TrustedHost = serde_json::from_value(json!({
            "apiVersion": "fortisync.dev/v1alpha1", "kind": "TrustedHost",
            "metadata": {"name": format!("th-{i:04}")},
            "spec": {
                "targetRef": {"kind": "FortiGate", "name": "fw"},
                "user": format!("adm-{:02}", i / 9),
                "slot": 2 + i % 9,
                "address": format!("10.250.{}.{}", i / 250, i % 250 + 1),
            },
        }))
        .expect("TrustedHost");
        async move { th.create(&PostParams::default(), &t).await }
    }))
    .buffer_unordered(16);
    while let Some(r) = creates.next().await {
        r.expect("create a TrustedHost");
    }
    let mut ready = 0;
    while started.elapsed() < run.timeout {
        ready = ready_of(&client, &ns, "AddressGroup").await
            + ready_of(&client, &ns, "ExternalConnector").await
            + ready_of(&client, &ns, "TrustedHost").await;
        if ready >= run.mixed {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let seconds = started.elapsed().as_secs_f64();
    let (rss, cpu) = footprint(child.pid());
    fleet::quiet(fg).await;
    // Settled: what it keeps once nothing is in flight.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (rss_settled, _) = footprint(child.pid());
    let anon_settled = anon_mib(child.pid());
    let per_1000 = 1000.0 / run.mixed.max(1) as f64;
    // Groups as in the burst; per connector one resource and one push; per TrustedHost a read
    // and a write of its admin.
    let limit_calls = (groups * (run.members + 1) + 2 * ecs + 2 * ths) as u64 + 2;
    fg.clear_faults();
    drop(child);
    Figure {
        scenario: "process".into(),
        resources: run.mixed,
        latency_ms: lat,
        seconds,
        calls: Calls::of(&fg.requests()),
        api_writes: None,
        limit_calls,
        limit_seconds: fleet::limit_seconds(limit_calls, 3, lat),
        extra: vec![
            ("ready".into(), ready as f64),
            ("rss_idle_mib".into(), rss_idle),
            ("rss_mib".into(), rss),
            ("rss_settled_mib".into(), rss_settled),
            ("anon_idle_mib".into(), anon_idle),
            ("anon_settled_mib".into(), anon_settled),
            ("cpu_s".into(), cpu - cpu_idle),
            ("cpu_s_per_1000".into(), (cpu - cpu_idle) * per_1000),
        ],
    }
}
