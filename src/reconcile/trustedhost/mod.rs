//! The `TrustedHost` kind: one administrator's trusted-host slot, opened for the declared
//! address and closed on time.
//!
//! - `slots`: a user's slots as each device means them (unused, allow-all, who gets in);
//! - `plan`: the one write a pass makes, or the safety rule refusing it (pure);
//! - `claims`: which resource holds a user's slot when several claim it (pure);
//! - `fortimanager`, `fortigate`: reading a user and writing one slot on each device;
//! - `user`: a user on either device, who fortisync may be there (F14, F15);
//! - `converge`: one pass against a connected target, without Kubernetes;
//! - `batch`: the passes queued for one device, its users' tables read once for them all;
//! - `listing`, `deferred`: what a batch reads once for all its passes (the device's users,
//!   its resyncs' claims).
//!
//! This module is the shell: resolve the target, gather the claims, converge, write status and
//! events, requeue on the device's resync tick or at the grant's end.

pub mod batch;
pub mod claims;
pub mod converge;
pub mod deferred;
pub mod fortigate;
pub mod fortimanager;
mod listing;
pub mod plan;
pub mod slots;
pub mod user;

use std::sync::Arc;
use std::time::Duration;

use kube::runtime::controller::Action;
use kube::runtime::events::EventType;
use kube::{Api, ResourceExt};

use self::converge::{Facts, from_slot_value, source_address, target_label};
use crate::api::addressgroup::{DeletionPolicy, TargetRef};
use crate::api::conditions::{SYNCED, is_true};
use crate::api::trustedhost::{TrustedHost, TrustedHostStatus};
use crate::reconcile::context::Context;
use crate::reconcile::error::ReconcileError;
use crate::reconcile::lifecycle::{Reconciler, write_status};
use crate::reconcile::requeue::next_requeue_aligned;

/// Controller name in metrics, events and logs.
pub const CONTROLLER: &str = "trustedhost";

crate::reconcile::lifecycle::kind_status!(TrustedHostStatus);

impl Reconciler for TrustedHost {
    const KIND: &'static str = "TrustedHost";
    const CONTROLLER: &'static str = CONTROLLER;
    const FINALIZER: &'static str = crate::reconcile::addressgroup::FINALIZER;
    type Status = TrustedHostStatus;

    fn current_status(&self) -> Option<&TrustedHostStatus> {
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

fn api(ctx: &Context, th: &TrustedHost) -> Api<TrustedHost> {
    Api::namespaced(ctx.client.clone(), &th.namespace().unwrap_or_default())
}

/// The resource holding `th`'s user and slot first, when it is another one.
async fn claimed_by(ctx: &Context, th: &TrustedHost) -> Result<Option<String>, ReconcileError> {
    let all = deferred::list(&api(ctx, th)).await?;
    Ok(claims::first_claim(th, &all))
}

async fn apply(th: Arc<TrustedHost>, ctx: &Context) -> Result<Action, ReconcileError> {
    let namespace = th.namespace().unwrap_or_default();
    let now = jiff::Timestamp::now();
    // A resync's claims are read by its batch, once for the device's tick (`deferred`). A
    // change's are read while the target resolves (both from the apiserver, independent): the
    // pass waits for the slower of the two, not for both in turn.
    let patient = is_resync(&th, now);
    let claims = async {
        match patient {
            true => Ok(None),
            false => claimed_by(ctx, &th).await,
        }
    };
    let (resolved, claimed) = tokio::join!(ctx.target(&namespace, &th.spec.target_ref), claims);
    let (target, resolved) = resolved?;
    tracing::Span::current().record("device", target.device());
    // A DevicePolicy's name patterns bound which administrators a namespace may open slots
    // for, as they bound the object names it may manage.
    ctx.admits_name(
        &namespace,
        &resolved.connection.url,
        "spec.user",
        &th.spec.user,
    )?;
    let resync = resolved
        .connection
        .resync_period()
        .unwrap_or(Duration::from_secs(300));
    let facts = Facts {
        credentials: resolved.credentials.clone(),
        source: source_address(
            resolved.connection.source_address.as_deref(),
            &resolved.connection.url,
        ),
        claimed_by: claimed?,
    };
    let pass = batch::converge_batched(
        &ctx.trusted_hosts,
        &target,
        th.clone(),
        facts,
        now,
        patient,
        patient.then(|| api(ctx, &th)),
    )
    .await?;
    let previous = th.status.clone().unwrap_or_default();
    if pass.status.drift_repairs > previous.drift_repairs {
        ctx.metrics
            .drift_repairs
            .get_or_create(&crate::reconcile::metrics::ControllerLabels {
                controller: CONTROLLER.into(),
            })
            .inc_by(pass.status.drift_repairs - previous.drift_repairs);
    }
    // The event and the status go to the apiserver together: the next change of this
    // resource (a revoke right after a grant) waits for this pass to end, so its apiserver
    // writes cost one round trip, not one each.
    let applied = async {
        if let Some(value) = pass.wrote {
            let note = format!(
                "slot {} of user {:?} set to {} / {}",
                th.spec.slot,
                th.spec.user,
                value.v4.text(),
                value.v6.text()
            );
            ctx.event(&*th, EventType::Normal, "Applied", note).await;
        }
    };
    let newly_refused = pass.refused.as_ref().is_some_and(|(reason, ..)| {
        previous
            .last_error
            .as_ref()
            .is_none_or(|e| e.reason != *reason)
    });
    let refused = async {
        if let (true, Some((reason, message, remedy))) = (newly_refused, &pass.refused) {
            let note = format!("{message}. Remedy: {remedy}");
            ctx.event(&*th, EventType::Warning, reason, note).await;
        }
    };
    let status = async {
        if pass.status == previous {
            return Ok(());
        }
        write_status(&api(ctx, &th), &th.name_any(), &pass.status).await
    };
    let ((), (), written) = tokio::join!(applied, refused, status);
    written?;
    // From the moment of returning: the wake lands on the device's tick however long this
    // pass took, so the tick's passes wake (and batch) together.
    Ok(Action::requeue(next_look(
        resync,
        target.device(),
        th.spec
            .expires_at
            .as_ref()
            .map(|t| t.0)
            .filter(|_| pass.expires_in.is_some()),
        pass.refused.is_some(),
        jiff::Timestamp::now(),
    )))
}

/// Whether this pass is a resync of a resource converged at its spec: its generation is
/// synced and its grant did not end since (the pass that closes an expired slot is a change,
/// never kept waiting for others).
fn is_resync(th: &TrustedHost, now: jiff::Timestamp) -> bool {
    let Some(previous) = th.status.as_ref() else {
        return false;
    };
    let ended = th.spec.expires_at.as_ref().is_some_and(|t| t.0 <= now);
    previous.observed_generation == th.metadata.generation
        && is_true(&previous.conditions, SYNCED)
        && !(ended && previous.open_until.is_some())
}

/// When to look again: the device's next resync tick (shared by its resources, so their
/// resyncs batch), bounded by the grant's end (just after it, so that pass sees it passed and
/// closes the slot) and by 30 s while refused (a fixed masking slot or a freed claim is picked
/// up soon).
pub fn next_look(
    resync: Duration,
    device: &str,
    expires_at: Option<jiff::Timestamp>,
    refused: bool,
    now: jiff::Timestamp,
) -> Duration {
    let next = next_requeue_aligned(resync, device, expires_at, now);
    if refused {
        return next.min(Duration::from_secs(30));
    }
    next
}

async fn cleanup(th: Arc<TrustedHost>, ctx: &Context) -> Result<Action, ReconcileError> {
    let namespace = th.namespace().unwrap_or_default();
    if th.spec.deletion_policy == DeletionPolicy::Orphan {
        return Ok(Action::await_change());
    }
    // What this resource may have left open: the slot it recorded writing, and the slot its
    // spec names holding exactly the spec's value (a write whose status update was lost, e.g.
    // a delete racing the pass that opened the slot, is closed too).
    let written = th.status.as_ref().and_then(|s| s.written.clone());
    let (user, user_kind, slot, mut ours) = match &written {
        Some(w) if w.target == target_label(&th) => (
            w.user.clone(),
            w.user_kind,
            w.slot,
            from_slot_value(&w.value).into_iter().collect::<Vec<_>>(),
        ),
        _ => (
            th.spec.user.clone(),
            th.spec.user_kind,
            th.spec.slot,
            Vec::new(),
        ),
    };
    // Not when another resource holds the claim: then the value is that one's. When the
    // recorded write is that value already, the claim changes nothing: no list is read.
    let same_key = user == th.spec.user && user_kind == th.spec.user_kind && slot == th.spec.slot;
    let unrecorded = converge::granted(&th)
        .ok()
        .filter(|value| same_key && !ours.contains(value));
    // The claims are read while the target resolves (both from the apiserver): the close
    // waits for the slower of the two, not for both in turn.
    let may_be_ours = !ours.is_empty() || unrecorded.is_some();
    let claims = async {
        match unrecorded {
            Some(value) => Ok(claimed_by(ctx, &th).await?.is_none().then_some(value)),
            None => Ok::<_, ReconcileError>(None),
        }
    };
    let resolving = async {
        if !may_be_ours {
            return None;
        }
        Some(
            ctx.target_for_cleanup(&namespace, &th.spec.target_ref)
                .await,
        )
    };
    let (unclaimed, resolved) = tokio::join!(claims, resolving);
    ours.extend(unclaimed?);
    let Some(resolved) = resolved.filter(|_| !ours.is_empty()) else {
        return Ok(Action::await_change()); // nothing of ours can be on the device
    };
    let (target, resolved) = match resolved {
        Ok(t) => t,
        Err(ReconcileError::Resolve(e)) if e.is_missing() => {
            let note = format!(
                "deletionPolicy is Delete but the device could not be reached ({e}); left open on the device: slot {slot} of user {user:?}. Close it there by hand."
            );
            ctx.event(&*th, EventType::Warning, "LeftOnDevice", note)
                .await;
            return Ok(Action::await_change());
        }
        Err(e) => return Err(e),
    };
    let facts = Facts {
        credentials: resolved.credentials.clone(),
        source: source_address(
            resolved.connection.source_address.as_deref(),
            &resolved.connection.url,
        ),
        claimed_by: None,
    };
    let closed = batch::close_batched(
        &ctx.trusted_hosts,
        &target,
        th.clone(),
        &user,
        user_kind,
        slot,
        ours,
        facts,
    );
    match closed.await? {
        Ok(_) => Ok(Action::await_change()),
        // A foreign value is someone else's now: left as it is, and said so.
        Err(r @ plan::Refusal::Foreign { .. }) => {
            ctx.event(
                &*th,
                EventType::Warning,
                "LeftOnDevice",
                r.message(&user, u32::from(slot)),
            )
            .await;
            Ok(Action::await_change())
        }
        // Closing would lock the controller out: the finalizer stays until that changes.
        Err(r) => Err(ReconcileError::Setup {
            reason: r.reason(),
            message: r.message(&user, u32::from(slot)),
            remedy: r.remedy(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_grants_end_is_the_next_look_and_a_refusal_is_looked_at_within_30_s() {
        let hour = Duration::from_secs(3600);
        let now: jiff::Timestamp = "2030-01-01T00:00:00Z".parse().expect("t");
        let end = now + jiff::SignedDuration::from_secs(5);
        assert_eq!(
            next_look(hour, "fw", Some(end), false, now),
            Duration::from_millis(5_050)
        );
        assert_eq!(
            next_look(hour, "fw", None, true, now),
            Duration::from_secs(30)
        );
        // Otherwise the device's tick: the same wake for every resource of that device.
        let plain = next_look(hour, "fw", None, false, now);
        assert_eq!(plain, next_requeue_aligned(hour, "fw", None, now));
        assert!(plain >= hour / 2 && plain <= hour * 3 / 2, "{plain:?}");
    }
}
