//! The `AddressGroup` kind: resolve the target → observe the group and our objects → pure
//! plan → apply through the device's Guard → status, events and requeue. The shell around it
//! (span, pause, finalizer, failures) is `reconcile::lifecycle`.
//!
//! - `plan`: the pure planner (desired vs observed → ordered ops), exhaustively tested;
//! - `converge`: one group against its target, shared by the controller and `fortisync plan`;
//! - `fortigate` / `adom` / `install`: observe and apply on a VDOM, an ADOM, and the
//!   FortiGates behind an ADOM; `observed`: device JSON → what the planner sees;
//! - `status`: what a pass reports. The admission rules, offline, are `api::validate`.

pub mod adom;
pub mod adom_batch;
pub mod batch;
mod batch_observe;
pub mod converge;
pub mod fortigate;
pub mod install;
pub mod observed;
pub mod plan;
pub mod status;

use std::sync::Arc;
use std::time::Duration;

use kube::ResourceExt;
use kube::runtime::controller::Action;
use kube::runtime::events::EventType;

use self::converge::remove;
use self::plan::Op;
use self::status::{converged_status, expired_objects, out_of_band_writes, summarize};
use crate::api::addressgroup::{
    AddressGroup, AddressGroupStatus, DeletionPolicy, ManagementPolicy, TargetRef,
};
use crate::api::conditions::{SYNCED, is_true};
use crate::reconcile::connection::ResolvedConnection;
use crate::reconcile::connection::status::insecure_condition;
use crate::reconcile::context::Context;
use crate::reconcile::error::ReconcileError;
use crate::reconcile::lifecycle::{Reconciler, write_status};
use crate::reconcile::metrics::ControllerLabels;
use crate::reconcile::requeue::next_requeue_aligned;
use crate::reconcile::target::Target;

/// Finalizer that guarantees our device objects are cleaned up per `deletionPolicy`.
pub const FINALIZER: &str = "fortisync.dev/cleanup";
/// Controller name in metrics, events and logs.
pub const CONTROLLER: &str = "addressgroup";

crate::reconcile::lifecycle::kind_status!(AddressGroupStatus);

impl Reconciler for AddressGroup {
    const KIND: &'static str = "AddressGroup";
    const CONTROLLER: &'static str = CONTROLLER;
    const FINALIZER: &'static str = FINALIZER;
    type Status = AddressGroupStatus;

    fn current_status(&self) -> Option<&AddressGroupStatus> {
        self.status.as_ref()
    }

    fn target(&self) -> TargetRef {
        self.spec.target_ref.clone()
    }

    async fn apply(self: Arc<Self>, ctx: &Context) -> Result<Action, ReconcileError> {
        apply(self, ctx).await
    }

    async fn cleanup(self: Arc<Self>, ctx: &Context) -> Result<Action, ReconcileError> {
        cleanup(self, ctx).await
    }
}

/// Resolves the target and reads its resync interval.
async fn target(
    ctx: &Context,
    group: &AddressGroup,
) -> Result<(Target, Duration, ResolvedConnection), ReconcileError> {
    let namespace = group.namespace().unwrap_or_default();
    let (target, resolved) = ctx.target(&namespace, &group.spec.target_ref).await?;
    tracing::Span::current().record("device", target.device());
    let resync = resolved
        .connection
        .resync_period()
        .unwrap_or(Duration::from_secs(300));
    Ok((target, resync, resolved))
}

fn log_write(device: &str, op: &Op) {
    tracing::info!(%device, op = %op, "device write");
}

async fn apply(group: Arc<AddressGroup>, ctx: &Context) -> Result<Action, ReconcileError> {
    let (target, resync, resolved) = target(ctx, &group).await?;
    ctx.admits_name(
        &group.namespace().unwrap_or_default(),
        &resolved.connection.url,
        "spec.groupName",
        &group.spec.group_name,
    )?;
    let now = jiff::Timestamp::now();
    let observe_only = group.spec.management_policy == ManagementPolicy::ObserveOnly;
    let previous = group.status.clone().unwrap_or_default();
    let was_converged = previous.observed_generation == group.metadata.generation
        && is_true(&previous.conditions, SYNCED);
    // Through the device's batch: groups already queued for this FortiGate share one
    // observation (a lone one is observed alone, as `converge` does). A converged group's
    // pass is a resync (or a restart): it waits a moment for the rest of its device's tick.
    let outcome = batch::converge_batched(
        &ctx.batches,
        &target,
        &group,
        now,
        !observe_only,
        was_converged,
    )
    .await?;
    let writes = if observe_only { 0 } else { outcome.writes() };
    let summary = summarize(&outcome);
    // Removing a member whose time came is the spec at work, not an out-of-band change.
    let expired = expired_objects(&group.spec, now);
    let drift = if observe_only {
        0
    } else {
        out_of_band_writes(&outcome, &expired)
    };
    let drift_repairs = if was_converged && drift > 0 {
        ctx.metrics
            .drift_repairs
            .get_or_create(&ControllerLabels {
                controller: CONTROLLER.into(),
            })
            .inc_by(drift as u64);
        ctx.event(
            &*group,
            EventType::Warning,
            "DriftRepaired",
            format!("reverted {drift} out-of-band change(s):\n{summary}"),
        )
        .await;
        previous.drift_repairs + drift as u64
    } else {
        if writes > 0 {
            ctx.event(&*group, EventType::Normal, "Applied", summary.clone())
                .await;
        }
        previous.drift_repairs
    };
    let mut status = converged_status(
        &group,
        &previous,
        &outcome,
        observe_only,
        drift_repairs,
        now,
    );
    status.conditions.extend(insecure_condition(
        resolved.connection.tls.insecure_skip_verify,
        group.metadata.generation,
        &previous.conditions,
    ));
    // A refusal is announced once, when it starts; every later pass finds the same and
    // stays quiet (the status below is unchanged too).
    if let Some(refusal) = outcome.refusal()
        && !previous
            .conditions
            .iter()
            .any(|c| c.type_ == crate::api::conditions::READY && c.reason == refusal.reason)
    {
        ctx.event(
            &*group,
            EventType::Warning,
            refusal.reason,
            format!("{}; {}", refusal.message, refusal.remedy),
        )
        .await;
    }
    // A pass that changed nothing, on the device or in what status says, writes nothing:
    // a converged group costs the apiserver no request per resync.
    let unchanged = AddressGroupStatus {
        last_sync_time: previous.last_sync_time.clone(),
        ..status.clone()
    } == previous;
    if !unchanged {
        write_status(
            &kube::Api::<AddressGroup>::namespaced(
                ctx.client.clone(),
                &group.namespace().unwrap_or_default(),
            ),
            &group.name_any(),
            &status,
        )
        .await?;
    }
    let next_expiry = outcome
        .plans
        .iter()
        .filter_map(|p| p.plan.next_expiry())
        .min();
    // From the moment of returning, not the pass's start: the wake lands on the device's
    // tick however long this pass took, so the tick's passes wake (and batch) together.
    Ok(Action::requeue(next_requeue_aligned(
        resync,
        target.device(),
        next_expiry,
        jiff::Timestamp::now(),
    )))
}

async fn cleanup(group: Arc<AddressGroup>, ctx: &Context) -> Result<Action, ReconcileError> {
    let namespace = group.namespace().unwrap_or_default();
    let target = match ctx
        .target_for_cleanup(&namespace, &group.spec.target_ref)
        .await
    {
        Ok((target, _)) => target,
        // The connection or its Secret is gone and this process never read them: nothing
        // can reach the device. Say loudly what stays there and how to remove it, then let the
        // resource go (holding it would block its namespace's deletion forever).
        Err(ReconcileError::Resolve(e))
            if e.is_missing() && group.spec.deletion_policy == DeletionPolicy::Delete =>
        {
            let note = left_behind(&group, &e.to_string());
            tracing::warn!(reason = e.reason(), "{note}");
            ctx.event(&*group, EventType::Warning, "LeftOnDevice", note)
                .await;
            return Ok(Action::await_change());
        }
        Err(ReconcileError::Resolve(e)) if e.is_missing() => return Ok(Action::await_change()),
        Err(e) => return Err(e),
    };
    tracing::Span::current().record("device", target.device());
    remove(&target, &group, true, &mut log_write).await?;
    Ok(Action::await_change())
}

/// What a deletion that could not reach the device leaves there, and how to remove it.
fn left_behind(group: &AddressGroup, why: &str) -> String {
    let owner = crate::model::Owner {
        namespace: group.namespace().unwrap_or_default(),
        name: group.name_any(),
    };
    format!(
        "deletionPolicy is Delete but the device could not be reached ({why}); left on the device: \
         address group {:?} and the address objects named {:?}* whose comment starts with {:?}. \
         Recreate the connection, its Secret and this resource, then delete the resource first, or \
         remove them on the device by hand.",
        group.spec.group_name,
        group.spec.address_prefix,
        owner.marker()
    )
}
