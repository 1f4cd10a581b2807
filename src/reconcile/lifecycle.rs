//! The shell every kind's reconcile runs in, written once: a span naming the resource and its
//! device, the pause annotation, the finalizer, the leader gate, the metrics timer, and a
//! failure turned into status + one event. A kind supplies only `apply` and `cleanup`.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use k8s_openapi::NamespaceResourceScope;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::runtime::controller::Action;
use kube::runtime::events::EventType;
use kube::runtime::finalizer::{Event, finalizer};
use kube::{Api, Resource, ResourceExt};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tracing::Instrument;

use super::context::Context;
use super::error::ReconcileError;
use super::handled::Next;
use crate::api::PAUSED_ANNOTATION;
use crate::api::addressgroup::TargetRef;
use crate::api::common::ErrorReport;
use crate::api::conditions::{READY, SYNCED, condition, ready_and_synced};

/// A status the shell can report a failure or a pause in.
pub trait KindStatus: Serialize + Clone + Default + PartialEq + Send + Sync + 'static {
    /// Its conditions.
    fn conditions(&self) -> &[Condition];
    /// This status with `conditions` replaced.
    fn with_conditions(self, conditions: Vec<Condition>) -> Self;
    /// This status recording a failure of the pass over `generation`.
    fn with_failure(self, generation: Option<i64>, error: ErrorReport) -> Self;
}

/// `KindStatus` for a status with `conditions`, `observed_generation` and `last_error`, the
/// shape every resource kind's status has (a connection's also clears `reachable`).
macro_rules! kind_status {
    ($status:ty) => {
        impl $crate::reconcile::lifecycle::KindStatus for $status {
            fn conditions(&self) -> &[k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition] {
                &self.conditions
            }
            fn with_conditions(
                self,
                conditions: Vec<k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition>,
            ) -> Self {
                Self { conditions, ..self }
            }
            fn with_failure(
                self,
                generation: Option<i64>,
                error: $crate::api::common::ErrorReport,
            ) -> Self {
                Self {
                    observed_generation: generation,
                    last_error: Some(error),
                    ..self
                }
            }
        }
    };
}
pub(crate) use kind_status;

/// An object of a resource's namespace it reads besides its connection: a change to it
/// re-triggers the resource.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reference {
    /// A ConfigMap, by name.
    ConfigMap(String),
    /// An AddressGroup, by name.
    AddressGroup(String),
    /// A Secret, by name.
    Secret(String),
}

/// A kind the shell drives.
pub trait Reconciler:
    Resource<DynamicType = (), Scope = NamespaceResourceScope>
    + Clone
    + DeserializeOwned
    + Serialize
    + std::fmt::Debug
    + Send
    + Sync
    + 'static
{
    /// Kind name in spans (`AddressGroup`).
    const KIND: &'static str;
    /// Controller name in metrics, events and logs (`addressgroup`).
    const CONTROLLER: &'static str;
    /// The finalizer guarding what the resource leaves on a device.
    const FINALIZER: &'static str;
    /// Its status.
    type Status: KindStatus;
    /// The current status.
    fn current_status(&self) -> Option<&Self::Status>;
    /// The connection it targets (for the connection kinds: itself).
    fn target(&self) -> TargetRef;
    /// The other objects it reads.
    fn references(&self) -> Vec<Reference> {
        Vec::new()
    }
    /// Observe → plan → apply → status, for a resource that is not being deleted.
    fn apply(
        self: Arc<Self>,
        ctx: &Context,
    ) -> impl Future<Output = Result<Action, ReconcileError>> + Send;
    /// What a standby (or a paused resource) does instead of reconciling: keep what it serves
    /// from its own cache current (ExternalConnector feeds on the EDL endpoint; the leader does
    /// it in `apply`).
    /// Never writes to a device or to the API server.
    fn on_every_replica(
        self: Arc<Self>,
        _ctx: &Context,
    ) -> impl Future<Output = Result<(), ReconcileError>> + Send {
        async { Ok(()) }
    }
    /// What deletion needs before the finalizer may go.
    fn cleanup(
        self: Arc<Self>,
        ctx: &Context,
    ) -> impl Future<Output = Result<Action, ReconcileError>> + Send;
}

/// One reconcile of `object`, in its span.
pub async fn reconcile<K: Reconciler>(
    object: Arc<K>,
    ctx: Arc<Context>,
) -> Result<Action, ReconcileError> {
    let span = tracing::info_span!(
        "reconcile",
        kind = K::KIND,
        namespace = %object.namespace().unwrap_or_default(),
        name = %object.name_any(),
        device = tracing::field::Empty,
    );
    reconcile_in_span(object, ctx).instrument(span).await
}

async fn reconcile_in_span<K: Reconciler>(
    object: Arc<K>,
    ctx: Arc<Context>,
) -> Result<Action, ReconcileError> {
    // A standby keeps its caches warm and what it serves current, and writes nothing;
    // becoming leader re-triggers every resource (see the controller wiring).
    if !ctx.is_leading() {
        if let Err(e) = object.on_every_replica(&ctx).await {
            tracing::debug!(error = %e, "could not refresh what this replica serves");
        }
        return Ok(Action::await_change());
    }
    let namespace = object.namespace().unwrap_or_default();
    let api = Api::<K>::namespaced(ctx.client.clone(), &namespace);
    // After a new resource's first pass (see `handled`).
    let object = match ctx.handled.next(K::KIND, object.meta()) {
        Next::Run => object,
        Next::Echo(action) => {
            tracing::trace!("the echo of this resource's first pass");
            return Ok(action);
        }
        Next::Reread => match api.get_opt(&object.name_any()).await {
            Ok(Some(fresh)) => Arc::new(fresh),
            Ok(None) => return Ok(Action::await_change()),
            Err(e) => return Err(ReconcileError::Kube(e)),
        },
    };
    let started = Instant::now();
    if object
        .annotations()
        .get(PAUSED_ANNOTATION)
        .map(String::as_str)
        == Some("true")
    {
        // Paused is about device writes: what the replica serves still follows the spec.
        if let Err(e) = object.clone().on_every_replica(&ctx).await {
            tracing::debug!(error = %e, "could not refresh what this replica serves");
        }
        report_paused(&api, &object).await?;
        return Ok(Action::await_change());
    }
    // A resource without our finalizer yet: this pass adds it, then goes on over the patched
    // object (see `handled`: the patch's own echo is then not run again).
    let adds_finalizer = object.meta().deletion_timestamp.is_none()
        && !object.finalizers().iter().any(|f| f == K::FINALIZER);
    if adds_finalizer {
        ctx.handled.begin(K::KIND, object.meta());
    }
    let (object, added, outcome) = match adds_finalizer {
        true => match add_finalizer(&api, &object).await {
            Ok(patched) => (Arc::new(patched), true, Ok(())),
            Err(e) => (object, false, Err(e)),
        },
        false => (object, false, Ok(())),
    };
    let outcome = match outcome {
        Ok(()) => finalizer(&api, K::FINALIZER, object.clone(), |event| async {
            match event {
                Event::Apply(o) => o.apply(&ctx).await,
                Event::Cleanup(o) => o.cleanup(&ctx).await,
            }
        })
        .await
        .map_err(ReconcileError::from),
        Err(e) => Err(e),
    };
    if added {
        // A failure is remembered too: its echo would report it a second time (a status
        // without the failure cached yet, a second Warning event); its retry still comes.
        let action = match &outcome {
            Ok(action) => action.clone(),
            Err(e) => error_policy(object.clone(), e, ctx.clone()),
        };
        ctx.handled.ran(K::KIND, object.meta(), action);
    }

    let seconds = started.elapsed().as_secs_f64();
    match &outcome {
        Ok(_) => ctx.metrics.observe(K::CONTROLLER, "success", seconds),
        Err(e) if e.recovers_by_itself() => {
            // A stale cache met a newer object (a conflict), or a deletion waits its turn:
            // the next pass sees the new state.
            tracing::debug!(error = %e, "looking again shortly");
            ctx.metrics.observe(K::CONTROLLER, "requeue", seconds);
        }
        Err(e) => {
            ctx.metrics.observe(K::CONTROLLER, "error", seconds);
            ctx.metrics.error(K::CONTROLLER, e.reason());
            report_failure(&api, &object, &ctx, e).await;
        }
    }
    outcome
}

/// `object` with our finalizer added, as the API server returns it. The patch names the
/// version it was made from, so a finalizer another writer added meanwhile is not lost (409:
/// the next pass sees their list). It takes an apiserver write turn like status writes, so a
/// burst of new resources reaches the apiserver as a stream.
async fn add_finalizer<K: Reconciler>(api: &Api<K>, object: &K) -> Result<K, ReconcileError> {
    let mut finalizers = object.finalizers().to_vec();
    finalizers.push(K::FINALIZER.to_string());
    let patch = serde_json::json!({
        "metadata": {
            "finalizers": finalizers,
            "resourceVersion": object.resource_version(),
        }
    });
    let _turn = super::status::apiserver_turn().await;
    api.patch(
        &object.name_any(),
        &kube::api::PatchParams::default(),
        &kube::api::Patch::Merge(&patch),
    )
    .await
    .map_err(ReconcileError::Finalizer)
}

/// The requeue after a failure (already reported in status and events).
pub fn error_policy<K: Reconciler>(
    _object: Arc<K>,
    error: &ReconcileError,
    _ctx: Arc<Context>,
) -> Action {
    match error {
        ReconcileError::DependentsRemain { .. } => Action::requeue(error.retry_after()),
        e if e.recovers_by_itself() => Action::requeue(Duration::from_secs(1)),
        e => Action::requeue(e.retry_after()),
    }
}

/// The report of a failure, as status and events show it.
pub fn error_report(error: &ReconcileError) -> ErrorReport {
    match error {
        ReconcileError::Device(e) => e.report(),
        other => ErrorReport {
            reason: other.reason().to_string(),
            message: other.to_string(),
            remedy: other.remedy(),
        },
    }
}

/// Records a failure: the status says what and how to fix it; one Warning event marks the
/// transition into this failure. A failure that persists writes nothing more, so a refused
/// key costs each resource one status write and one event, not one per retry.
async fn report_failure<K: Reconciler>(
    api: &Api<K>,
    object: &K,
    ctx: &Context,
    error: &ReconcileError,
) {
    let namespace = object.namespace().unwrap_or_default();
    let report = match (error, ctx.credentials_of(&namespace, &object.target())) {
        // A refused password is worded as a password, a refused key as a key.
        (ReconcileError::Device(e), Some(credentials)) => {
            crate::device::wording::report(e, &credentials)
        }
        _ => error_report(error),
    };
    tracing::warn!(reason = %report.reason, error = %report.message, remedy = %report.remedy, "reconcile failed");
    if error.is_credential_or_lockout() {
        ctx.recheck_connection(&namespace, &object.target());
    }
    let previous = object.current_status().cloned().unwrap_or_default();
    let already_failing = previous
        .conditions()
        .iter()
        .any(|c| c.type_ == READY && c.status == "False" && c.reason == report.reason);
    let generation = object.meta().generation;
    let message = format!("{} Remedy: {}", report.message, report.remedy);
    let conditions = ready_and_synced(
        false,
        &report.reason,
        message.clone(),
        generation,
        previous.conditions(),
    );
    let status = previous
        .clone()
        .with_conditions(conditions)
        .with_failure(generation, report.clone());
    if status != previous
        && let Err(e) = write_status(api, &object.name_any(), &status).await
    {
        tracing::warn!(error = %e, "could not record the failure in status");
    }
    if !already_failing {
        ctx.event(object, EventType::Warning, &report.reason, message)
            .await;
    }
}

async fn report_paused<K: Reconciler>(api: &Api<K>, object: &K) -> Result<(), ReconcileError> {
    let previous = object.current_status().cloned().unwrap_or_default();
    let generation = object.meta().generation;
    let message = format!("reconciliation paused by the {PAUSED_ANNOTATION} annotation");
    let ready = previous
        .conditions()
        .iter()
        .find(|c| c.type_ == READY)
        .cloned()
        .unwrap_or_else(|| condition(READY, false, "Paused", message.clone(), generation, &[]));
    let synced = condition(
        SYNCED,
        false,
        "Paused",
        message,
        generation,
        previous.conditions(),
    );
    let status = previous.clone().with_conditions(vec![ready, synced]);
    if status == previous {
        return Ok(());
    }
    write_status(api, &object.name_any(), &status).await
}

/// Writes `status` (server-side apply, fortisync its only owner).
pub async fn write_status<K: Reconciler>(
    api: &Api<K>,
    name: &str,
    status: &K::Status,
) -> Result<(), ReconcileError> {
    super::status::replace(api, name, status)
        .await
        .map_err(ReconcileError::Kube)
}
