//! One pass over one TrustedHost against a connected target, without the Kubernetes API (the
//! shell in `mod.rs` gathers the claims, writes status and events): observe the user's slots,
//! plan, write at most one slot, and build the status from what the device now holds.

use std::net::IpAddr;
use std::time::Duration;

use super::plan::{PlanInput, Refusal, plan};
use super::slots::{Half, Slot};
use super::user::{Observed, observe, write};
use crate::api::conditions::ready_and_synced;
use crate::api::trustedhost::{SlotValue, TrustedHost, TrustedHostStatus, UserKind, WrittenSlot};
use crate::device::Credentials;
use crate::reconcile::error::ReconcileError;
use crate::reconcile::target::Target;

/// What the pass knows besides the resource and the device.
#[derive(Debug, Clone)]
pub struct Facts {
    /// The credentials fortisync signs in with on this device (who it is there).
    pub credentials: Credentials,
    /// The controller's source address as the device sees it, when known.
    pub source: Option<IpAddr>,
    /// Another resource holding this user and slot, when one does.
    pub claimed_by: Option<String>,
}

/// The outcome of a pass.
#[derive(Debug, Clone, PartialEq)]
pub struct Pass {
    /// The new status.
    pub status: TrustedHostStatus,
    /// What the slot held when read, before any write.
    pub before: Slot,
    /// The slot value written, if any.
    pub wrote: Option<Slot>,
    /// The safety rule that refused the pass: reason, message, remedy.
    pub refused: Option<(&'static str, String, String)>,
    /// The grant's end, when it is still ahead (requeue at that instant).
    pub expires_in: Option<Duration>,
}

/// The source address the device sees: `sourceAddress`, else the loopback address the kernel
/// picks for a loopback URL (127.0.0.1, ::1); None for any other URL, where the route decides.
pub fn source_address(source_address: Option<&str>, url: &str) -> Option<IpAddr> {
    if let Some(text) = source_address {
        return text.parse().ok();
    }
    let host = url::Url::parse(url).ok()?.host()?.to_owned();
    match host {
        url::Host::Ipv4(ip) if ip.is_loopback() => Some(IpAddr::V4(std::net::Ipv4Addr::LOCALHOST)),
        url::Host::Ipv6(ip) if ip.is_loopback() => Some(IpAddr::V6(ip)),
        url::Host::Domain(d) if d == "localhost" => Some(IpAddr::V4(std::net::Ipv4Addr::LOCALHOST)),
        _ => None,
    }
}

/// A slot in status form.
pub fn slot_value(slot: Slot) -> SlotValue {
    SlotValue {
        address: Some(slot.v4.text()),
        ipv6_address: Some(slot.v6.text()),
    }
}

/// The slot a status value names (None when it does not parse: nothing is then ours).
pub fn from_slot_value(value: &SlotValue) -> Option<Slot> {
    let half = |t: &Option<String>| match t.as_deref() {
        None | Some("unused") => Some(Half::Unused),
        Some(t) => t.parse().ok().map(Half::Net),
    };
    Some(Slot {
        v4: half(&value.address)?,
        v6: half(&value.ipv6_address)?,
    })
}

/// The value the spec grants (halves it leaves out are unused).
pub fn granted(th: &TrustedHost) -> Result<Slot, ReconcileError> {
    let half = |field: &str, t: &Option<String>| match t {
        None => Ok(Half::Unused),
        Some(t) => t
            .parse::<ipnet::IpNet>()
            .or_else(|_| t.parse::<IpAddr>().map(ipnet::IpNet::from))
            .map(|n| Half::Net(n.trunc()))
            .map_err(|_| ReconcileError::Spec(format!("{field} {t:?} is not an address"))),
    };
    Ok(Slot {
        v4: half("spec.address", &th.spec.address)?,
        v6: half("spec.ipv6Address", &th.spec.ipv6_address)?,
    })
}

/// `FortiGate/<name>` or `FortiManager/<name>`.
pub fn target_label(th: &TrustedHost) -> String {
    format!("{:?}/{}", th.spec.target_ref.kind, th.spec.target_ref.name)
}

fn written_here(th: &TrustedHost) -> Option<Slot> {
    let w = th.status.as_ref()?.written.as_ref()?;
    let same = w.target == target_label(th)
        && w.user == th.spec.user
        && w.user_kind == th.spec.user_kind
        && w.slot == th.spec.slot;
    same.then(|| from_slot_value(&w.value)).flatten()
}

/// Runs one pass at `now`.
pub async fn converge(
    target: &Target,
    th: &TrustedHost,
    facts: &Facts,
    now: jiff::Timestamp,
) -> Result<Pass, ReconcileError> {
    converge_with(target, th, facts, now, true).await
}

/// Runs one pass at `now`; without `write` (`fortisync plan`) nothing is written and
/// [`Pass::wrote`] is what would be.
pub async fn converge_with(
    target: &Target,
    th: &TrustedHost,
    facts: &Facts,
    now: jiff::Timestamp,
    write_slot: bool,
) -> Result<Pass, ReconcileError> {
    if write_slot {
        release_previous(target, th, facts).await?;
    }
    // A spec that does not parse is refused before the device is asked anything.
    grant_at(th, now)?;
    let observed = observe(
        target,
        th,
        &th.spec.user,
        th.spec.user_kind,
        &facts.credentials,
    )
    .await?;
    decide(target, th, facts, now, observed, write_slot).await
}

/// The value the grant wants at `now`: None once it expired.
pub fn grant_at(th: &TrustedHost, now: jiff::Timestamp) -> Result<Option<Slot>, ReconcileError> {
    let open = th.spec.expires_at.as_ref().is_none_or(|t| t.0 > now);
    if open {
        granted(th).map(Some)
    } else {
        Ok(None)
    }
}

/// Whether a pass first closes what an earlier spec of `th` wrote through this connection
/// (another user, kind or slot): such a pass touches two users.
pub fn releases_previous(th: &TrustedHost) -> bool {
    th.status
        .as_ref()
        .and_then(|s| s.written.as_ref())
        .is_some_and(|w| {
            w.target == target_label(th)
                && (w.user != th.spec.user
                    || w.user_kind != th.spec.user_kind
                    || w.slot != th.spec.slot)
        })
}

/// The rest of a pass once the user is read (`observed`, read after this resource's previous
/// pass ended): plan, write at most one slot, and the status.
pub async fn decide(
    target: &Target,
    th: &TrustedHost,
    facts: &Facts,
    now: jiff::Timestamp,
    observed: Observed,
    write_slot: bool,
) -> Result<Pass, ReconcileError> {
    let previous = th.status.clone().unwrap_or_default();
    let generation = th.metadata.generation;
    let expiry = th.spec.expires_at.as_ref().map(|t| t.0);
    let open = expiry.is_none_or(|at| at > now);
    let desired = grant_at(th, now)?;
    let n = u32::from(th.spec.slot);
    let written = written_here(th);
    let input = PlanInput {
        slot: n,
        desired,
        current: &observed.slots,
        written,
        take_over: th.spec.take_over,
        own: observed.own,
        source: facts.source,
        claimed_by: facts.claimed_by.clone(),
    };
    let mut status = TrustedHostStatus {
        observed_generation: generation,
        slot: Some(slot_value(observed.slots.get(n))),
        drift_repairs: previous.drift_repairs,
        written: previous.written.clone(),
        ..Default::default()
    };
    let expires_in = expiry
        .filter(|_| open)
        .and_then(|at| Duration::try_from(at.duration_since(now)).ok());
    let planned = match plan(&input) {
        Ok(p) => p,
        Err(refusal) => {
            let (reason, message, remedy) = (
                refusal.reason(),
                refusal.message(&th.spec.user, n),
                refusal.remedy(),
            );
            if let Refusal::Masked { slots } = &refusal {
                status.masked_by = slots.iter().map(|s| *s as u8).collect();
            }
            status.conditions = ready_and_synced(
                false,
                reason,
                format!("{message}. Remedy: {remedy}"),
                generation,
                &previous.conditions,
            );
            status.last_error = Some(crate::api::common::ErrorReport {
                reason: reason.into(),
                message: message.clone(),
                remedy: remedy.clone(),
            });
            return Ok(Pass {
                status,
                before: observed.slots.get(n),
                wrote: None,
                refused: Some((reason, message, remedy)),
                expires_in,
            });
        }
    };
    let record = |value: Slot| WrittenSlot {
        target: target_label(th),
        user: th.spec.user.clone(),
        user_kind: th.spec.user_kind,
        slot: th.spec.slot,
        value: slot_value(value),
    };
    let held = match planned.write {
        Some(value) if write_slot => {
            write(target, th, &th.spec.user, &observed.slots, n, value).await?;
            value
        }
        _ => observed.slots.get(n),
    };
    // The slot holds what this spec writes (just written, or found so after a status write
    // that was lost): recorded as ours, so a later close or change knows it.
    if planned.write.is_some() || desired == Some(held) {
        status.written = Some(record(held));
    }
    if planned.drift {
        status.drift_repairs += 1;
    }
    status.slot = Some(slot_value(held));
    let (reason, message) = match desired {
        Some(_) => {
            status.open_until = th.spec.expires_at.clone();
            (
                "Open",
                format!(
                    "slot {n} of user {:?} holds {} / {}{}",
                    th.spec.user,
                    held.v4.text(),
                    held.v6.text(),
                    expiry.map(|at| format!(" until {at}")).unwrap_or_default()
                ),
            )
        }
        None => (
            "Closed",
            format!(
                "slot {n} of user {:?} is closed ({} / {}): the grant expired",
                th.spec.user,
                held.v4.text(),
                held.v6.text()
            ),
        ),
    };
    status.conditions = ready_and_synced(true, reason, message, generation, &previous.conditions);
    Ok(Pass {
        status,
        before: observed.slots.get(n),
        wrote: planned.write,
        refused: None,
        expires_in,
    })
}

/// Closes what fortisync wrote under an earlier spec (another user, kind or slot on the same
/// connection), when the device still holds exactly that value. A slot on another connection
/// is left as it is, and said so in the log: fortisync no longer reaches it through this one.
async fn release_previous(
    target: &Target,
    th: &TrustedHost,
    facts: &Facts,
) -> Result<(), ReconcileError> {
    let Some(w) = th.status.as_ref().and_then(|s| s.written.as_ref()) else {
        return Ok(());
    };
    let same = w.user == th.spec.user && w.user_kind == th.spec.user_kind && w.slot == th.spec.slot;
    if same && w.target == target_label(th) {
        return Ok(());
    }
    if w.target != target_label(th) {
        tracing::warn!(previous = %w.target, user = %w.user, slot = w.slot, "the spec moved to another connection; the slot written through the previous one is left as it is");
        return Ok(());
    }
    let Some(value) = from_slot_value(&w.value) else {
        return Ok(());
    };
    close_if_ours(target, th, &w.user, w.user_kind, w.slot, &[value], facts)
        .await
        .map(|_| ())
}

/// Closes slot `slot` of `user` when it holds one of `ours`; the value written, if any. A
/// foreign value or a close that would lock the controller out is refused (the refusal
/// returned).
pub async fn close_if_ours(
    target: &Target,
    th: &TrustedHost,
    user: &str,
    kind: UserKind,
    slot: u8,
    ours: &[Slot],
    facts: &Facts,
) -> Result<Result<Option<Slot>, Refusal>, ReconcileError> {
    let observed = match observe(target, th, user, kind, &facts.credentials).await {
        // Nothing left to close on a user that is gone.
        Err(ReconcileError::Setup {
            reason: "AdminUserNotFound",
            ..
        }) => return Ok(Ok(None)),
        other => other?,
    };
    let n = u32::from(slot);
    let held = observed.slots.get(n);
    let input = PlanInput {
        slot: n,
        desired: None,
        current: &observed.slots,
        written: ours.iter().find(|v| **v == held).or(ours.first()).copied(),
        take_over: false,
        own: observed.own,
        source: facts.source,
        claimed_by: None,
    };
    match plan(&input) {
        Ok(p) => {
            if let Some(value) = p.write {
                write(target, th, user, &observed.slots, n, value).await?;
            }
            Ok(Ok(p.write))
        }
        Err(r) => Ok(Err(r)),
    }
}
