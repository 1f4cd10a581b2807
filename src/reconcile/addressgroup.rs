//! The `AddressGroup` reconciler: resolve the target → observe the group and our objects →
//! pure plan → apply through the device's Guard → status, events and requeue.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::runtime::controller::Action;
use kube::runtime::events::EventType;
use kube::runtime::finalizer::{Event, finalizer};
use kube::{Api, ResourceExt};
use tracing::Instrument;

use super::context::Context;
use super::converge::{Convergence, converge, remove};
use super::error::ReconcileError;
use super::naming::MemberAddress;
use super::plan::{Op, PLACEHOLDER};
use super::target::GroupTarget;
use crate::api::PAUSED_ANNOTATION;
use crate::api::addressgroup::{
    AddressGroup, AddressGroupSpec, AddressGroupStatus, DeviceSyncStatus, ManagementPolicy,
    MemberCounts,
};
use crate::api::common::ErrorReport;
use crate::api::conditions::{READY, SYNCED, condition, is_true};

/// Finalizer that guarantees our device objects are cleaned up per `deletionPolicy`.
pub const FINALIZER: &str = "fortisync.dev/cleanup";
/// Controller name in metrics, events and logs.
pub const CONTROLLER: &str = "addressgroup";

/// One reconcile of one `AddressGroup`.
pub async fn reconcile(
    group: Arc<AddressGroup>,
    ctx: Arc<Context>,
) -> Result<Action, ReconcileError> {
    let namespace = group.namespace().unwrap_or_default();
    let span = tracing::info_span!("reconcile", kind = "AddressGroup", namespace = %namespace, name = %group.name_any(), device = tracing::field::Empty);
    reconcile_in_span(group, ctx).instrument(span).await
}

async fn reconcile_in_span(
    group: Arc<AddressGroup>,
    ctx: Arc<Context>,
) -> Result<Action, ReconcileError> {
    let started = Instant::now();
    let namespace = group.namespace().unwrap_or_default();
    let api = Api::<AddressGroup>::namespaced(ctx.client.clone(), &namespace);

    if group
        .annotations()
        .get(PAUSED_ANNOTATION)
        .map(String::as_str)
        == Some("true")
    {
        report_paused(&api, &group).await?;
        return Ok(Action::await_change());
    }
    let outcome = finalizer(&api, FINALIZER, group.clone(), |event| async {
        match event {
            Event::Apply(g) => apply(&api, g, &ctx).await,
            Event::Cleanup(g) => cleanup(g, &ctx).await,
        }
    })
    .await
    .map_err(ReconcileError::from);

    let seconds = started.elapsed().as_secs_f64();
    match &outcome {
        Ok(_) => ctx.metrics.observe(CONTROLLER, "success", seconds),
        Err(e) => {
            ctx.metrics.observe(CONTROLLER, "error", seconds);
            ctx.metrics.error(CONTROLLER, e.reason());
            report_failure(&api, &group, &ctx, e).await;
        }
    }
    outcome
}

/// The requeue after a failure (already reported in status and events).
pub fn error_policy(
    _group: Arc<AddressGroup>,
    error: &ReconcileError,
    _ctx: Arc<Context>,
) -> Action {
    Action::requeue(error.retry_after())
}

/// Resolves the target and reads its resync interval.
async fn target(
    ctx: &Context,
    group: &AddressGroup,
) -> Result<(GroupTarget, Duration), ReconcileError> {
    let namespace = group.namespace().unwrap_or_default();
    let (target, resolved) = ctx.group_target(&namespace, &group.spec.target_ref).await?;
    tracing::Span::current().record("device", target.device());
    tracing::Span::current().record("device", target.device());
    let resync = resolved
        .connection
        .resync_period()
        .unwrap_or(Duration::from_secs(300));
    Ok((target, resync))
}

fn log_write(device: &str, op: &Op) {
    tracing::info!(%device, op = %op, "device write");
}

async fn apply(
    api: &Api<AddressGroup>,
    group: Arc<AddressGroup>,
    ctx: &Context,
) -> Result<Action, ReconcileError> {
    let (target, resync) = target(ctx, &group).await?;
    let now = jiff::Timestamp::now();
    let observe_only = group.spec.management_policy == ManagementPolicy::ObserveOnly;
    let outcome = converge(&target, &group, now, !observe_only, &mut log_write).await?;
    let previous = group.status.clone().unwrap_or_default();
    let was_converged = previous.observed_generation == group.metadata.generation
        && is_true(&previous.conditions, SYNCED);
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
            .get_or_create(&super::metrics::ControllerLabels {
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
    let status = converged_status(
        &group,
        &previous,
        &outcome,
        observe_only,
        drift_repairs,
        now,
    );
    patch_status(api, &group.name_any(), &status).await?;
    let next_expiry = outcome
        .plans
        .iter()
        .filter_map(|p| p.plan.next_expiry())
        .min();
    Ok(Action::requeue(next_requeue(resync, next_expiry, now)))
}

/// Object names of the members whose `expiresAt` has passed.
fn expired_objects(spec: &AddressGroupSpec, now: jiff::Timestamp) -> BTreeSet<String> {
    spec.members
        .iter()
        .filter(|m| m.expires_at.as_ref().is_some_and(|t| t.0 <= now))
        .filter_map(|m| MemberAddress::parse(&m.address).ok())
        .map(|a| a.object_name(&spec.address_prefix))
        .collect()
}

/// The writes that reverted out-of-band changes: every write except taking expired members
/// out (and the placeholder a pre-7.2 group keeps when its last member expires) (pure).
fn out_of_band_writes(outcome: &Convergence, expired: &BTreeSet<String>) -> usize {
    let by_expiry = |op: &Op| match op {
        Op::RemoveMember { member, .. } => expired.contains(member),
        Op::DeleteAddress { name } => expired.contains(name),
        Op::AddMember { member, .. } => member == PLACEHOLDER && !expired.is_empty(),
        _ => false,
    };
    let plans = outcome.plans.iter().map(|p| &p.plan);
    plans
        .chain(outcome.devices.iter().map(|d| &d.plan))
        .flat_map(|p| p.ops())
        .filter(|op| !by_expiry(op))
        .count()
}

/// The plan as events show it: ADOM or VDOM writes first, then each device's.
fn summarize(outcome: &Convergence) -> String {
    let mut out: String = outcome.plans.iter().map(|p| p.plan.to_string()).collect();
    for d in &outcome.devices {
        if !d.plan.is_empty() {
            out.push_str(&format!("device {}:\n{}", d.device, d.plan));
        }
    }
    out
}

async fn cleanup(group: Arc<AddressGroup>, ctx: &Context) -> Result<Action, ReconcileError> {
    let (target, _) = match target(ctx, &group).await {
        Ok(c) => c,
        // Without the connection there is nothing fortisync can reach or clean.
        Err(ReconcileError::Resolve(e)) if e.reason() == "TargetNotFound" => {
            return Ok(Action::await_change());
        }
        Err(e) => return Err(e),
    };
    remove(&target, &group, true, &mut log_write).await?;
    Ok(Action::await_change())
}

fn converged_status(
    group: &AddressGroup,
    previous: &AddressGroupStatus,
    outcome: &Convergence,
    observe_only: bool,
    drift_repairs: u64,
    now: jiff::Timestamp,
) -> AddressGroupStatus {
    let generation = group.metadata.generation;
    let mut counts = MemberCounts::default();
    let mut foreign = Vec::new();
    let mut conflicts = Vec::new();
    for p in outcome.plans.iter().map(|p| &p.plan) {
        counts.desired += p.counts().desired;
        counts.present += p.counts().present;
        counts.foreign += p.counts().foreign;
        foreign.extend(p.foreign_members().iter().cloned());
        conflicts.extend(p.conflicts().iter().map(ToString::to_string));
    }
    let pending = outcome.writes();
    let unsynced: Vec<String> = outcome
        .devices
        .iter()
        .filter_map(|d| d.error.as_ref().map(|e| format!("{}: {e}", d.device)))
        .collect();
    let (ok, reason, message) = if observe_only && pending > 0 {
        (
            false,
            "DriftDetected",
            format!("ObserveOnly: {pending} change(s) would be needed"),
        )
    } else if !conflicts.is_empty() {
        (false, "Conflict", conflicts.join("; "))
    } else if !unsynced.is_empty() {
        (
            false,
            "DevicesNotSynced",
            format!(
                "the ADOM is converged but {} device(s) are not: {}",
                unsynced.len(),
                unsynced.join("; ")
            ),
        )
    } else if counts.foreign > 0 {
        (
            true,
            "Converged",
            format!(
                "{} member(s) converged; {} foreign member(s) kept",
                counts.desired, counts.foreign
            ),
        )
    } else {
        (
            true,
            "Converged",
            format!("{} member(s) converged", counts.desired),
        )
    };
    AddressGroupStatus {
        observed_generation: generation,
        conditions: vec![
            condition(
                READY,
                ok,
                reason,
                message.clone(),
                generation,
                &previous.conditions,
            ),
            condition(
                SYNCED,
                ok,
                if ok { "Applied" } else { reason },
                message,
                generation,
                &previous.conditions,
            ),
        ],
        counts,
        foreign_members: foreign,
        drift_repairs,
        last_sync_time: Some(Time(now)),
        next_expiry: outcome
            .plans
            .iter()
            .filter_map(|p| p.plan.next_expiry())
            .min()
            .map(Time),
        devices: outcome
            .devices
            .iter()
            .map(|d| DeviceSyncStatus {
                name: d.device.clone(),
                synced: d.error.is_none() && (!observe_only || d.plan.is_empty()),
                message: d.error.clone(),
            })
            .collect(),
        last_error: None,
    }
}

async fn report_failure(
    api: &Api<AddressGroup>,
    group: &AddressGroup,
    ctx: &Context,
    error: &ReconcileError,
) {
    let report = match error {
        ReconcileError::Device(e) => e.report(),
        other => ErrorReport {
            reason: other.reason().to_string(),
            message: other.to_string(),
            remedy: other.remedy(),
        },
    };
    tracing::warn!(reason = %report.reason, error = %report.message, remedy = %report.remedy, "reconcile failed");
    if let ReconcileError::Device(e) = error
        && matches!(
            e.reason(),
            "LockedOut" | "Unauthorized" | "CredentialFrozen"
        )
    {
        let namespace = group.namespace().unwrap_or_default();
        ctx.recheck_connection(&namespace, &group.spec.target_ref);
    }
    let previous = group.status.clone().unwrap_or_default();
    let generation = group.metadata.generation;
    let message = format!("{} Remedy: {}", report.message, report.remedy);
    let status = AddressGroupStatus {
        observed_generation: generation,
        conditions: vec![
            condition(
                READY,
                false,
                &report.reason,
                message.clone(),
                generation,
                &previous.conditions,
            ),
            condition(
                SYNCED,
                false,
                &report.reason,
                message.clone(),
                generation,
                &previous.conditions,
            ),
        ],
        last_error: Some(report.clone()),
        ..previous
    };
    if let Err(e) = patch_status(api, &group.name_any(), &status).await {
        tracing::warn!(error = %e, "could not record the failure in status");
    }
    ctx.event(group, EventType::Warning, &report.reason, message)
        .await;
}

async fn report_paused(
    api: &Api<AddressGroup>,
    group: &AddressGroup,
) -> Result<(), ReconcileError> {
    let previous = group.status.clone().unwrap_or_default();
    let generation = group.metadata.generation;
    let message = format!("reconciliation paused by the {PAUSED_ANNOTATION} annotation");
    let ready = previous
        .conditions
        .iter()
        .find(|c| c.type_ == READY)
        .cloned()
        .unwrap_or_else(|| condition(READY, false, "Paused", message.clone(), generation, &[]));
    let status = AddressGroupStatus {
        conditions: vec![
            ready,
            condition(
                SYNCED,
                false,
                "Paused",
                message,
                generation,
                &previous.conditions,
            ),
        ],
        ..previous
    };
    patch_status(api, &group.name_any(), &status).await
}

async fn patch_status(
    api: &Api<AddressGroup>,
    name: &str,
    status: &AddressGroupStatus,
) -> Result<(), ReconcileError> {
    super::status::replace(api, name, status)
        .await
        .map_err(ReconcileError::Kube)
}

/// The next reconcile: the resync interval (±10% jitter), or just after the nearest expiry.
pub fn next_requeue(
    resync: Duration,
    next_expiry: Option<jiff::Timestamp>,
    now: jiff::Timestamp,
) -> Duration {
    let jittered = resync.mul_f64(0.9 + rand::random::<f64>() * 0.2);
    match next_expiry {
        Some(at) => {
            let until = Duration::try_from(at.duration_since(now)).unwrap_or(Duration::ZERO);
            jittered.min(until + Duration::from_millis(50))
        }
        None => jittered,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reconcile::converge::FamilyPlan;
    use crate::reconcile::fortigate::Family;

    #[test]
    fn taking_expired_members_out_is_not_counted_as_drift() {
        let spec: AddressGroupSpec = serde_json::from_value(serde_json::json!({
            "targetRef": {"kind": "FortiGate", "name": "fw"},
            "groupName": "g",
            "members": [
                {"address": "192.0.2.1"},
                {"address": "10.0.0.0/24", "expiresAt": "2030-01-01T00:00:00Z"},
                {"address": "192.0.2.9", "expiresAt": "2030-01-02T00:00:00Z"},
            ],
        }))
        .expect("spec");
        let now: jiff::Timestamp = "2030-01-01T00:00:01Z".parse().expect("t");
        let expired = expired_objects(&spec, now);
        assert_eq!(expired, BTreeSet::from(["fs_10.0.0.0_24".to_string()]));
        let ops = vec![
            Op::AddMember {
                group: "g".into(),
                member: "fs_192.0.2.1".into(),
            },
            Op::RemoveMember {
                group: "g".into(),
                member: "fs_10.0.0.0_24".into(),
            },
            Op::DeleteAddress {
                name: "fs_10.0.0.0_24".into(),
            },
        ];
        let outcome = Convergence {
            plans: vec![FamilyPlan {
                family: Family::V4,
                plan: crate::reconcile::plan::Plan::from_ops(ops),
            }],
            devices: Vec::new(),
        };
        assert_eq!(outcome.writes(), 3);
        assert_eq!(
            out_of_band_writes(&outcome, &expired),
            1,
            "only the member an admin removed"
        );
    }

    #[test]
    fn the_next_reconcile_is_the_jittered_resync_or_just_after_the_nearest_expiry() {
        let now: jiff::Timestamp = "2030-01-01T00:00:00Z".parse().expect("t");
        let resync = Duration::from_secs(300);
        for _ in 0..100 {
            let d = next_requeue(resync, None, now);
            assert!(d >= Duration::from_secs(270) && d <= Duration::from_secs(330));
        }
        let soon: jiff::Timestamp = "2030-01-01T00:00:10Z".parse().expect("t");
        assert_eq!(
            next_requeue(resync, Some(soon), now),
            Duration::from_millis(10_050)
        );
        let past: jiff::Timestamp = "2029-12-31T23:59:00Z".parse().expect("t");
        assert_eq!(
            next_requeue(resync, Some(past), now),
            Duration::from_millis(50)
        );
    }
}
