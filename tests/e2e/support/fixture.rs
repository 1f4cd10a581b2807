//! What the controller tests share: the simulated devices' credentials, manifests of the
//! connection and AddressGroup resources, the in-process controller, and waiting for an
//! outcome with a deadline.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use fortisync::api::addressgroup::AddressGroupStatus;
use fortisync::api::common::ConnectionStatus;
use fortisync::api::{AddressGroup, FortiGate};
use fortisync::reconcile::context::Context;
use fortisync::reconcile::controller::{self, Scope};
use fortisync::sim::fortios::{FortiGateHandle, Table};
use fortisync::sim::{Scenario, Simulator};
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::api::events::v1::Event;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::Api;
use kube::api::{ListParams, PostParams};
use prometheus_client::registry::Registry;

use super::control_plane;
use super::control_plane::ControlPlane;

/// The simulated FortiGate's API key.
pub const KEY: &str = "e2e-fortigate-token-000000000000";

/// The serial number of the simulated FortiGate `fw`.
pub const SERIAL: &str = "FGT60FTK2E2E0001";

/// A simulator playing one FortiGate `fw` (FortiOS 7.4.3) whose API user `fortisync` has
/// [`KEY`]; `global` is its `config system global` as a YAML flow mapping (or empty).
pub async fn fortigate_sim(global: &str) -> Simulator {
    let global = if global.is_empty() {
        String::new()
    } else {
        format!("    global: {global}\n")
    };
    let yaml = format!(
        "fortigates:\n  - name: fw\n    version: \"7.4.3\"\n    serial: {SERIAL}\n{global}    api_users: [{{name: fortisync, key: {KEY}, trusthosts: [\"127.0.0.0/8\"]}}]\n"
    );
    Simulator::start(Scenario::from_yaml(&yaml).expect("scenario"))
        .await
        .expect("simulator")
}

/// A Secret `name` with the API token and the device's CA certificate.
pub async fn secret(ns: &str, name: &str, token: &str, ca: &str) {
    secret_in(control_plane(), ns, name, token, ca).await;
}

/// Like [`secret`], on a private control plane (`ControlPlane::private`). The token is
/// registered as a canary (support/canary.rs): no output may hold it.
pub async fn secret_in(cp: &ControlPlane, ns: &str, name: &str, token: &str, ca: &str) {
    super::canary::register(token);
    let api: Api<Secret> = Api::namespaced(cp.client(), ns);
    let secret = Secret {
        metadata: kube::api::ObjectMeta {
            name: Some(name.into()),
            ..Default::default()
        },
        string_data: Some(BTreeMap::from([
            ("token".to_string(), token.to_string()),
            ("ca.crt".to_string(), ca.to_string()),
        ])),
        ..Secret::default()
    };
    api.create(&PostParams::default(), &secret)
        .await
        .expect("secret");
}

/// A `FortiGate` named `fw` reading the Secret `fw-token`; `extra` adds spec lines (indented
/// by two spaces), e.g. `"  sourceAddress: 127.0.0.9\n"`.
pub fn fortigate(url: &str, resync: &str, extra: &str) -> String {
    format!(
        "apiVersion: fortisync.dev/v1alpha1\nkind: FortiGate\nmetadata: {{name: fw}}\nspec:\n  url: {url}\n  credentialsSecretRef: {{name: fw-token, tokenKey: token}}\n  tls: {{caBundleSecretRef: {{name: fw-token, key: ca.crt}}}}\n  resyncInterval: {resync}\n{extra}"
    )
}

/// One member entry of an AddressGroup.
pub fn member(address: &str) -> String {
    format!("{{address: \"{address}\"}}")
}

/// A member that stops being desired at `at`.
pub fn expiring(address: &str, at: jiff::Timestamp) -> String {
    let whole = jiff::Timestamp::from_second(at.as_second()).expect("timestamp");
    format!("{{address: \"{address}\", expiresAt: \"{whole}\"}}")
}

/// The AddressGroup `admins` (group `allowed-admins`) on `target` (`FortiGate/fw`), with
/// `extra` spec lines and these member entries.
pub fn group(target: (&str, &str), extra: &str, members: &[String]) -> String {
    group_named("admins", "allowed-admins", target, extra, members)
}

/// Like [`group`], the AddressGroup `name` writing the device group `group_name`.
pub fn group_named(
    name: &str,
    group_name: &str,
    target: (&str, &str),
    extra: &str,
    members: &[String],
) -> String {
    let list: String = members.iter().map(|m| format!("  - {m}\n")).collect();
    let (kind, target) = target;
    format!(
        "apiVersion: fortisync.dev/v1alpha1\nkind: AddressGroup\nmetadata: {{name: {name}}}\nspec:\n  targetRef: {{kind: {kind}, name: {target}}}\n  groupName: {group_name}\n{extra}  members:\n{list}"
    )
}

/// The sorted members of `allowed-admins` on the device (empty while it does not exist).
pub fn members_of(fg: &FortiGateHandle) -> Vec<String> {
    let mut m = fg
        .group_members("root", Table::Addrgrp, "allowed-admins")
        .unwrap_or_default();
    m.sort();
    m
}

/// The in-process controller serving one namespace; stops when dropped.
pub struct RunningController(tokio::task::JoinHandle<()>);

impl RunningController {
    /// Runs `controllers` until dropped.
    pub fn spawn(controllers: impl Future<Output = ()> + Send + 'static) -> Self {
        Self(tokio::spawn(controllers))
    }

    /// Whether the controller task has ended (it should only end when stopped).
    pub fn is_finished(&self) -> bool {
        self.0.is_finished()
    }
}

impl Drop for RunningController {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Starts every controller for `ns` with a fresh context (its own endpoints and guards).
pub fn start_controller(ns: &str) -> RunningController {
    start_controller_with_context(ns).0
}

/// Like [`start_controller`], on a private control plane (`ControlPlane::private`).
pub fn start_controller_in(cp: &ControlPlane, ns: &str) -> RunningController {
    start_controller_with_context_in(cp, ns).0
}

/// Like [`start_controller`], also handing back the context (its metrics count reconciles).
pub fn start_controller_with_context(ns: &str) -> (RunningController, Arc<Context>) {
    start_controller_with_context_in(control_plane(), ns)
}

fn start_controller_with_context_in(
    cp: &ControlPlane,
    ns: &str,
) -> (RunningController, Arc<Context>) {
    let mut registry = Registry::default();
    let ctx = Arc::new(Context::new(cp.client(), &mut registry));
    let running = RunningController(tokio::spawn(controller::run(
        ctx.clone(),
        Scope::namespace(ns.to_string()),
    )));
    (running, ctx)
}

/// Reconciles `controller` (e.g. `addressgroup`) has run, by result.
pub fn reconciles(ctx: &Context, controller: &str) -> u64 {
    ["success", "error", "requeue"]
        .iter()
        .map(|result| {
            ctx.metrics
                .reconciles
                .get_or_create(&fortisync::reconcile::metrics::ResultLabels {
                    controller: controller.into(),
                    result: result.to_string(),
                })
                .get()
        })
        .sum()
}

/// Writes the API server took for events in `ns`: each Event object once, plus every repeat
/// its series counts.
pub async fn event_writes(ns: &str) -> u64 {
    let api: Api<Event> = Api::namespaced(control_plane().client(), ns);
    api.list(&ListParams::default())
        .await
        .expect("list events")
        .items
        .iter()
        .map(|e| e.series.as_ref().map_or(1, |s| s.count.max(1) as u64))
        .sum()
}

/// Polls `check` every 100 ms until it yields a value; panics with `what` after `limit`.
pub async fn wait_for<T, F, Fut>(what: &str, limit: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let started = Instant::now();
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(
            started.elapsed() < limit,
            "timed out after {limit:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The status of the AddressGroup `admins`.
pub async fn group_status(ns: &str) -> Option<AddressGroupStatus> {
    group_status_named(ns, "admins").await
}

/// The status of the AddressGroup `name`.
pub async fn group_status_named(ns: &str, name: &str) -> Option<AddressGroupStatus> {
    let api: Api<AddressGroup> = Api::namespaced(control_plane().client(), ns);
    api.get(name).await.ok()?.status
}

/// The status of the FortiGate `fw`.
pub async fn fortigate_status(ns: &str) -> Option<ConnectionStatus> {
    let api: Api<FortiGate> = Api::namespaced(control_plane().client(), ns);
    api.get("fw").await.ok()?.status
}

/// The status of the AddressGroup `name` once it describes the object's current
/// `metadata.generation`: the pass that saw the latest spec has run and written its verdict.
/// Wait on this before asserting that an edit caused nothing (no write, no retry), so the
/// assertion is about a pass that happened, not one that has not started yet.
pub async fn group_observed(ns: &str, name: &str, limit: Duration) -> AddressGroupStatus {
    let api: Api<AddressGroup> = Api::namespaced(control_plane().client(), ns);
    wait_for(
        &format!("AddressGroup {name}'s status to observe its generation"),
        limit,
        || async {
            let g = api.get(name).await.ok()?;
            let status = g.status?;
            (status.observed_generation.is_some()
                && status.observed_generation == g.metadata.generation)
                .then_some(status)
        },
    )
    .await
}

/// Like [`group_observed`], for the FortiGate `name`.
pub async fn fortigate_observed(ns: &str, name: &str, limit: Duration) -> ConnectionStatus {
    let api: Api<FortiGate> = Api::namespaced(control_plane().client(), ns);
    wait_for(
        &format!("FortiGate {name}'s status to observe its generation"),
        limit,
        || async {
            let f = api.get(name).await.ok()?;
            let status = f.status?;
            (status.observed_generation.is_some()
                && status.observed_generation == f.metadata.generation)
                .then_some(status)
        },
    )
    .await
}

/// Waits until the AddressGroup's `Ready` condition has `status` and `reason`.
pub async fn group_ready(
    ns: &str,
    status: &str,
    reason: &str,
    limit: Duration,
) -> AddressGroupStatus {
    wait_for(
        &format!("AddressGroup Ready={status} {reason}"),
        limit,
        || async {
            let s = group_status(ns).await?;
            (condition(&s.conditions, "Ready") == Some((status.into(), reason.into()))).then_some(s)
        },
    )
    .await
}

/// `(status, reason)` of the condition `type_`.
pub fn condition(conditions: &[Condition], type_: &str) -> Option<(String, String)> {
    conditions
        .iter()
        .find(|c| c.type_ == type_)
        .map(|c| (c.status.clone(), c.reason.clone()))
}

/// The message of the condition `type_`.
pub fn condition_message(conditions: &[Condition], type_: &str) -> String {
    conditions
        .iter()
        .find(|c| c.type_ == type_)
        .map(|c| c.message.clone())
        .unwrap_or_default()
}

/// Events about the object `name` in `ns`: `(type, reason, note)`.
pub async fn events_of(ns: &str, name: &str) -> Vec<(String, String, String)> {
    let api: Api<Event> = Api::namespaced(control_plane().client(), ns);
    api.list(&ListParams::default())
        .await
        .expect("list events")
        .items
        .into_iter()
        .filter(|e| e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some(name))
        .map(|e| {
            (
                e.type_.unwrap_or_default(),
                e.reason.unwrap_or_default(),
                e.note.unwrap_or_default(),
            )
        })
        .collect()
}
