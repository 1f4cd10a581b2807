//! The fleet bench's fairness figure (issue 17): a burst of groups on one FortiGate while
//! another FortiGate served by the same controller hangs (accepts connections and never
//! answers), against the same burst with no faulty device. The faulty device's groups are
//! created first, so they are in flight when the burst starts; with more of them than the
//! controller runs reconciles at once, they can hold every worker (what the figure shows).

use std::time::{Duration, Instant};

use fortisync::api::AddressGroup;
use fortisync::sim::Simulator;
use fortisync::sim::fortios::FaultRule;
use kube::Api;

use super::control_plane::ControlPlane;
use super::fixture::{self, KEY};
use super::fleet::{self, Calls, Figure, FleetRun};

/// Seconds until `run.fair_groups` groups on the connection `fw` of `ns` are Ready, and how
/// many were when `limit` passed first.
async fn burst(
    cp: &ControlPlane,
    ns: &str,
    run: &FleetRun,
    limit: Duration,
) -> (f64, Option<usize>) {
    let api = Api::<AddressGroup>::namespaced(cp.client(), ns);
    let started = Instant::now();
    fleet::create_groups_on(&api, "fw", 0, run.fair_groups, run.members).await;
    // Counted among all groups of `ns`: the hung ones are never Ready.
    let ready = fleet::ready_within(&api, run.fair_groups, limit).await;
    (started.elapsed().as_secs_f64(), ready.err())
}

/// The fairness figure of `run` on the devices `fair-base-`, `fair-ok-` and `fair-bad-<lat>`.
pub async fn run(cp: &ControlPlane, sim: &Simulator, run: &FleetRun) -> Figure {
    let lat = run.latency_ms;
    let client = cp.client();

    // Alone: the burst on a device of its own.
    let base = sim.fortigate(&format!("fair-base-{lat}"));
    let ns = fleet::connected(cp, base, "10m", &format!("fair-base-{lat}")).await;
    let (alone_s, alone_short) = {
        let _controller = fleet::start(&ns);
        fleet::wait_reachable(&client, &ns).await;
        fleet::latency(base, lat);
        burst(cp, &ns, run, run.timeout).await
    };

    // Beside a hanging device: both connections in one namespace, one controller.
    let ok = sim.fortigate(&format!("fair-ok-{lat}"));
    let bad = sim.fortigate(&format!("fair-bad-{lat}"));
    let ns = fleet::connected(cp, ok, "10m", &format!("fair-{lat}")).await;
    fixture::secret_in(cp, &ns, "bad-token", KEY, bad.ca_pem().expect("ca")).await;
    let manifest = fixture::fortigate(bad.url(), "10m", "")
        .replace("{name: fw}", "{name: bad}")
        .replace("fw-token", "bad-token");
    let (applied, why) = cp.apply(&ns, &manifest);
    assert!(applied, "apply the FortiGate bad: {why}");
    let _controller = fleet::start(&ns);
    fleet::wait_reachable(&client, &ns).await;
    fleet::wait_named_reachable(&client, &ns, "bad").await;
    fleet::latency(ok, lat);
    bad.add_fault(FaultRule {
        path: "/api".into(),
        hang: true,
        ..FaultRule::default()
    });
    let api = Api::<AddressGroup>::namespaced(client.clone(), &ns);
    // Numbered after the burst's, so the names never meet.
    fleet::create_groups_on(&api, "bad", 50_000, run.fair_hung, run.members).await;
    ok.clear_requests();
    let (beside_s, beside_short) = burst(cp, &ns, run, run.fair_timeout).await;
    let calls = Calls::of(&ok.requests());
    ok.clear_faults();
    bad.clear_faults();
    let limit_calls = (run.fair_groups * (run.members + 1)) as u64 + 2;
    let mut extra = vec![
        ("alone_s".into(), alone_s),
        ("beside_hung_s".into(), beside_s),
        ("ratio".into(), beside_s / alone_s.max(1e-9)),
        ("hung_groups".into(), run.fair_hung as f64),
    ];
    if let Some(n) = alone_short {
        extra.push(("alone_ready".into(), n as f64));
    }
    if let Some(n) = beside_short {
        extra.push(("beside_ready".into(), n as f64));
    }
    Figure {
        scenario: "fair-hang".into(),
        resources: run.fair_groups,
        latency_ms: lat,
        seconds: beside_s,
        calls,
        api_writes: None,
        limit_calls,
        limit_seconds: fleet::limit_seconds(limit_calls, 3, lat),
        extra,
    }
}
