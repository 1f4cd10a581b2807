//! The per-kind change loops the benchmarks share (`benches/externalconnector.rs`,
//! `benches/trustedhost.rs` and the fleet bench through `support::fleet_kinds`): an
//! ExternalConnector edited entry by entry and timed to the device, one pushed from empty, and a
//! TrustedHost granted and revoked. Each returns its raw samples; the callers print them.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use fortisync::api::conditions::{READY, is_true};
use fortisync::api::{ExternalConnector, TrustedHost};
use fortisync::sim::fortios::FortiGateHandle;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{DeleteParams, ObjectMeta, Patch, PatchParams, PostParams};
use kube::{Api, Client};
use serde_json::{Value, json};

use super::fleet::Calls;

/// The VDOM every bench device uses.
pub const VDOM: &str = "root";
/// How often the device's in-process state is looked at while a change is timed.
pub const POLL: Duration = Duration::from_millis(1);

/// An ExternalConnector's mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// fortisync pushes entries through the dynamic API.
    Push,
    /// The FortiGate pulls the list from fortisync's EDL endpoint.
    Feed,
}

impl Mode {
    /// As the CRD spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Push => "Push",
            Mode::Feed => "Feed",
        }
    }
}

/// A connector `name` on `target` writing the external resource `name`; `spec` adds fields.
pub fn connector(name: &str, target: &str, mode: Mode, spec: Value) -> ExternalConnector {
    let mut value = json!({
        "apiVersion": "fortisync.dev/v1alpha1",
        "kind": "ExternalConnector",
        "metadata": {"name": name},
        "spec": {
            "targetRef": {"kind": "FortiGate", "name": target},
            "resourceName": name,
            "mode": mode.as_str(),
        },
    });
    if mode == Mode::Feed {
        // Hourly polls: every pull a Feed figure sees comes from fortisync's refresh call.
        value["spec"]["feed"] = json!({"refreshRate": 60});
    }
    for (k, v) in spec.as_object().expect("spec fields") {
        value["spec"][k] = v.clone();
    }
    serde_json::from_value(value).expect("ExternalConnector")
}

/// `entries` as the CRD's entry list.
pub fn entries_json(entries: &[String]) -> Value {
    entries.iter().map(|e| json!({"address": e})).collect()
}

/// Polls `check` every 20 ms until it holds; panics after `limit`.
pub async fn wait_until<F, Fut>(what: &str, limit: Duration, mut check: F) -> Duration
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
            started.elapsed() < limit,
            "bench: timed out after {limit:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Polls the simulator's in-process state every [`POLL`] until `check` holds.
pub async fn wait_device(what: &str, limit: Duration, check: impl Fn() -> bool) -> Duration {
    let started = Instant::now();
    loop {
        if check() {
            return started.elapsed();
        }
        assert!(
            started.elapsed() < limit,
            "bench: timed out after {limit:?} waiting for {what}"
        );
        tokio::time::sleep(POLL).await;
    }
}

/// Whether the connector's status describes `generation` and says Ready.
pub async fn ready_at(api: &Api<ExternalConnector>, name: &str, generation: Option<i64>) -> bool {
    api.get(name)
        .await
        .ok()
        .and_then(|c| c.status)
        .is_some_and(|s| {
            s.observed_generation.is_some()
                && s.observed_generation >= generation
                && is_true(&s.conditions, READY)
        })
}

/// What [`connector_edits`] measured, one sample per change.
#[derive(Debug, Default)]
pub struct ConnectorEdits {
    /// CR change → the entry on the device.
    pub to_device: Vec<Duration>,
    /// CR change → Ready for the new generation.
    pub to_status: Vec<Duration>,
    /// Device calls of each change (up to its status write).
    pub calls: Vec<Calls>,
    /// EDL pulls the device made (Feed).
    pub pulls: usize,
    /// The last change's calls, `METHOD path` each.
    pub last: Vec<String>,
}

/// The connector `name` on `target` created with `base` entries, then `edits` one-entry
/// additions through the Kubernetes API, each timed until the device holds the entry.
pub async fn connector_edits(
    client: &Client,
    ns: &str,
    fg: &FortiGateHandle,
    (mode, name, target): (Mode, &str, &str),
    base: usize,
    edits: usize,
) -> ConnectorEdits {
    let api = Api::<ExternalConnector>::namespaced(client.clone(), ns);
    let mut entries: Vec<String> = (1..=base).map(|i| format!("192.0.2.{i}")).collect();
    let created = api
        .create(
            &PostParams::default(),
            &connector(
                name,
                target,
                mode,
                json!({"entries": entries_json(&entries)}),
            ),
        )
        .await
        .expect("create the connector");
    wait_until(
        &format!("the {name} connector Ready"),
        Duration::from_secs(60),
        || ready_at(&api, name, created.metadata.generation),
    )
    .await;
    let on_device = |entry: &str| fg.feed_entries(VDOM, name).iter().any(|e| e == entry);
    if let Some(last) = entries.last() {
        wait_device(
            "the base list on the device",
            Duration::from_secs(30),
            || on_device(last),
        )
        .await;
    }
    let mut out = ConnectorEdits::default();
    for i in 0..edits {
        let entry = format!("198.51.{}.{}", 100 + i / 250, i % 250 + 1);
        entries.push(entry.clone());
        fg.clear_requests();
        let polls_before = fg.feed_polls(VDOM, name).len();
        let patch = json!({"spec": {"entries": entries_json(&entries)}});
        let patched = api
            .patch(name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
            .expect("edit the connector");
        let written = Instant::now();
        wait_device(
            "the new entry on the device",
            Duration::from_secs(30),
            || on_device(&entry),
        )
        .await;
        out.to_device.push(written.elapsed());
        // The reconcile ends with the status write: then every device call of the change is in.
        wait_until("the edit in status", Duration::from_secs(30), || {
            ready_at(&api, name, patched.metadata.generation)
        })
        .await;
        out.to_status.push(written.elapsed());
        let log = fg.requests();
        out.calls.push(Calls::of(&log));
        out.last = log
            .iter()
            .map(|r| format!("{} {}", r.method, r.path))
            .collect();
        out.pulls += fg.feed_polls(VDOM, name).len() - polls_before;
    }
    out
}

/// What [`connector_from_empty`] measured.
#[derive(Debug)]
pub struct FromEmpty {
    /// Create → every entry on the device.
    pub on_device: Duration,
    /// Create → Ready.
    pub ready: Duration,
    /// Device calls until Ready.
    pub calls: Calls,
    /// Dynamic pushes among them.
    pub pushes: usize,
}

/// A Push connector `name` on `target` with `count` entries from a ConfigMap, from empty.
pub async fn connector_from_empty(
    client: &Client,
    ns: &str,
    fg: &FortiGateHandle,
    (name, target): (&str, &str),
    count: usize,
    limit: Duration,
) -> FromEmpty {
    let lines: String = (0..count)
        .map(|i| format!("10.{}.{}.{}\n", i / 62_500, (i / 250) % 250, i % 250 + 1))
        .collect();
    let list = format!("{name}-list");
    let config_map = ConfigMap {
        metadata: ObjectMeta {
            name: Some(list.clone()),
            ..Default::default()
        },
        data: Some(BTreeMap::from([("entries".to_string(), lines)])),
        ..ConfigMap::default()
    };
    Api::<ConfigMap>::namespaced(client.clone(), ns)
        .create(&PostParams::default(), &config_map)
        .await
        .expect("create the ConfigMap");
    let api = Api::<ExternalConnector>::namespaced(client.clone(), ns);
    fg.clear_requests();
    let started = Instant::now();
    let created = api
        .create(
            &PostParams::default(),
            &connector(
                name,
                target,
                Mode::Push,
                json!({"entriesFrom": [{"configMapRef": {"name": list, "key": "entries"}}]}),
            ),
        )
        .await
        .expect("create the big connector");
    // Every 10 ms, not every 1 ms: each look copies the device's list under its state lock.
    loop {
        if fg.feed_entries(VDOM, name).len() >= count {
            break;
        }
        assert!(
            started.elapsed() < limit,
            "bench: {count} entries not on the device after {limit:?}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let on_device = started.elapsed();
    wait_until(&format!("the {count}-entry connector Ready"), limit, || {
        ready_at(&api, name, created.metadata.generation)
    })
    .await;
    let ready = started.elapsed();
    let log = fg.requests();
    FromEmpty {
        on_device,
        ready,
        calls: Calls::of(&log),
        pushes: log
            .iter()
            .filter(|r| r.method == "POST" && r.path.ends_with("/external-resource/dynamic"))
            .count(),
    }
}

/// One TrustedHost grant round's target: `kind`/`target`, the administrator `user`.
pub struct Grantee<'a> {
    /// `FortiGate` or `FortiManager`.
    pub kind: &'a str,
    /// The connection's name.
    pub target: &'a str,
    /// The administrator.
    pub user: &'a str,
}

/// `grants` rounds of create → slot open, delete → slot closed; `state(addr)` says (open,
/// closed) from the device's state. Returns the open and the close times.
pub async fn grant_rounds(
    api: &Api<TrustedHost>,
    grants: usize,
    who: &Grantee<'_>,
    state: impl Fn(Ipv4Addr) -> (bool, bool),
) -> (Vec<Duration>, Vec<Duration>) {
    let (mut open, mut closed) = (Vec::new(), Vec::new());
    for i in 0..grants {
        let addr = Ipv4Addr::new(127, 0, 1, (i % 250) as u8 + 1);
        let th: TrustedHost = serde_json::from_value(json!({
            "apiVersion": "fortisync.dev/v1alpha1", "kind": "TrustedHost",
            "metadata": {"name": format!("grant-{}", who.kind.to_lowercase())},
            "spec": {"targetRef": {"kind": who.kind, "name": who.target}, "user": who.user, "address": addr.to_string()},
        }))
        .expect("TrustedHost");
        let name = th.metadata.name.clone().expect("name");
        let started = Instant::now();
        api.create(&PostParams::default(), &th)
            .await
            .expect("create");
        open.push(until(api, &name, started, || state(addr).0).await);
        let started = Instant::now();
        api.delete(&name, &DeleteParams::default())
            .await
            .expect("delete");
        closed.push(until(api, &name, started, || state(addr).1).await);
        // The next round's create must not meet this one's finalizer.
        while api.get_opt(&name).await.expect("get").is_some() {
            tokio::time::sleep(POLL).await;
        }
    }
    (open, closed)
}

async fn until(
    api: &Api<TrustedHost>,
    name: &str,
    started: Instant,
    done: impl Fn() -> bool,
) -> Duration {
    const LIMIT: Duration = Duration::from_secs(30);
    while !done() {
        if started.elapsed() > LIMIT {
            let status = api
                .get_opt(name)
                .await
                .ok()
                .flatten()
                .and_then(|t| t.status);
            panic!("timed out after {LIMIT:?}; {name}'s status: {status:?}");
        }
        tokio::time::sleep(POLL).await;
    }
    started.elapsed()
}

/// Slot 10 (the TrustedHost default) of the FortiGate admin `user`, as the device holds it.
pub fn fortigate_slot(fg: &FortiGateHandle, user: &str) -> Option<String> {
    fg.snapshot()
        .admins
        .into_iter()
        .find(|a| a.name == user)
        .and_then(|a| a.trusthosts.get(9).copied())
        .map(|n| n.to_string())
}

/// (open for `addr`, closed) of slot 10 of the FortiGate admin `user`.
pub fn fortigate_slot_state(fg: &FortiGateHandle, user: &str, addr: Ipv4Addr) -> (bool, bool) {
    let held = fortigate_slot(fg, user);
    (
        held.as_deref() == Some(format!("{addr}/32").as_str()),
        held.is_none_or(|h| h == "0.0.0.0/0"),
    )
}
