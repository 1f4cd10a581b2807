//! What an AddressGroup's status says after a pass: counts, foreign members, conflicts, the
//! devices behind a FortiManager, and which writes were drift (pure).

use std::collections::BTreeSet;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use super::converge::Convergence;
use super::plan::{Op, PLACEHOLDER};
use crate::api::addressgroup::{
    AddressGroup, AddressGroupSpec, AddressGroupStatus, DeviceSyncStatus, MemberCounts,
};
use crate::api::common::ErrorReport;
use crate::api::conditions::ready_and_synced;
use crate::model::MemberAddress;

/// Object names of the members whose `expiresAt` has passed.
pub fn expired_objects(spec: &AddressGroupSpec, now: jiff::Timestamp) -> BTreeSet<String> {
    spec.members
        .iter()
        .filter(|m| m.expires_at.as_ref().is_some_and(|t| t.0 <= now))
        .filter_map(|m| MemberAddress::parse(&m.address).ok())
        .map(|a| a.object_name(&spec.address_prefix))
        .collect()
}

/// The writes that reverted out-of-band changes: every write except taking expired members
/// out (and the placeholder a pre-7.2 group keeps when its last member expires) (pure).
pub fn out_of_band_writes(outcome: &Convergence, expired: &BTreeSet<String>) -> usize {
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
pub fn summarize(outcome: &Convergence) -> String {
    let mut out: String = outcome.plans.iter().map(|p| p.plan.to_string()).collect();
    for d in &outcome.devices {
        if !d.plan.is_empty() {
            out.push_str(&format!("device {}:\n{}", d.device, d.plan));
        }
    }
    out
}

/// The status of a pass that reached the device.
pub fn converged_status(
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
    let refusal = outcome.refusal();
    let notes: Vec<&str> = outcome.plans.iter().filter_map(|p| p.plan.note()).collect();
    let (ok, reason, message) = if let Some(r) = refusal {
        // Refused before any write: not a failure of the pass, but nothing is as declared.
        (false, r.reason, r.message.clone())
    } else if observe_only && pending > 0 {
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
    } else if let Some(note) = notes.first().filter(|_| counts.desired == 0) {
        // The IPv4 plan's note counts the whole spec; the IPv6 one would repeat part of it.
        (true, "Converged", note.to_string())
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
        conditions: ready_and_synced(ok, reason, message, generation, &previous.conditions),
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
        last_error: refusal.map(|r| ErrorReport {
            reason: r.reason.to_string(),
            message: r.message.clone(),
            remedy: r.remedy.clone(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reconcile::addressgroup::converge::FamilyPlan;
    use crate::reconcile::addressgroup::fortigate::Family;

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
                plan: crate::reconcile::addressgroup::plan::Plan::from_ops(ops),
            }],
            devices: Vec::new(),
            spec_refusal: None,
        };
        assert_eq!(outcome.writes(), 3);
        assert_eq!(
            out_of_band_writes(&outcome, &expired),
            1,
            "only the member an admin removed"
        );
    }
}
