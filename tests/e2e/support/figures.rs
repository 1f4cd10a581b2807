//! The fleet bench's figures (issue 17): device calls as the simulator logged them, one
//! measured scenario beside its limit, the apiserver's write counter, and the table and JSON
//! `scripts/bench` prints.

use std::time::Duration;

use fortisync::sim::fortios::RequestRecord;
use kube::Client;
use serde_json::{Value, json};

/// Requests a device is configured to take at once (`Endpoint`'s default `max_concurrent`).
pub const DEVICE_CONCURRENCY: u64 = 4;

/// Requests the Guard sends at once to a device with FortiOS's default lockout threshold of 3
/// (the simulator's): threshold − 1, since every request in flight may come back refused (a
/// key revoked meanwhile) and a third refusal locks the source IP out. The limit is counted
/// at this concurrency: no lockout-safe client goes faster.
pub const SAFE_CONCURRENCY: u64 = 2;

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

/// `calls` at `latency_ms` each, `SAFE_CONCURRENCY` at once, but never shorter than a chain
/// of `chain` dependent calls.
pub fn limit_seconds(calls: u64, chain: u64, latency_ms: u64) -> f64 {
    limit_seconds_at(calls, chain, latency_ms, SAFE_CONCURRENCY)
}

/// `limit_seconds` with `concurrency` requests at once.
pub fn limit_seconds_at(calls: u64, chain: u64, latency_ms: u64, concurrency: u64) -> f64 {
    let spread = calls as f64 * latency_ms as f64 / concurrency as f64;
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

/// The figures as a table, one line each.
pub fn table(figures: &[Figure]) -> String {
    let mut s = format!(
        "{:<12} {:>6} {:>5} {:>9} {:>7} {:>7} {:>8} {:>8} {:>9} {:>8} {:>8}  extra\n",
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
            "{:<12} {:>6} {:>5} {:>9.3} {:>7} {:>7} {:>8} {:>8} {:>9.3} {:>8.2} {:>8}  {}\n",
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
