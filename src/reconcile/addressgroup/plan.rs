//! The pure heart of the AddressGroup reconciler: desired members + what the device holds →
//! the smallest ordered list of writes. No I/O: the same plan is what `fortisync plan` prints,
//! what events summarise and what the controller applies.
//!
//! Order respects referential integrity: create/update our address objects → create the group
//! or add members → remove members → delete our objects nothing references any more. A crash
//! between any two writes leaves a state whose next plan finishes the job.
//!
//! Ownership: only objects carrying this resource's marker are updated or deleted. Members an
//! admin added by hand are kept (Additive) or removed from the group (Exclusive) but their
//! objects are never deleted. A foreign object already holding the name we need is a conflict.
//!
//! One owner per group: the group's comment carries the marker of the resource that created
//! (or took over) it. Another fortisync resource's group is refused (`GroupOwnedByAnother`), a
//! hand-made group is joined by Additive resources and refused to Exclusive ones unless they
//! take it over (`GroupNotOwned`); a member whose object carries another resource's marker is
//! never removed. Refusals (`refusal`) are decided before the first write and write nothing.
//!
//! Empty groups: FortiOS before 7.2 and FortiManager ADOMs before 7.2 refuse a group without
//! members. There the group keeps the built-in address `none` (it matches no traffic) as a
//! placeholder instead of becoming empty, and never references a deleted object.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use jiff::Timestamp;
use serde::Serialize;

use crate::api::addressgroup::{DeletionPolicy, Membership};
use crate::model::{MemberAddress, Owner, has_marker};

mod refusal;

pub use refusal::{GroupLimit, Refusal, Standing, holder_description};

/// The built-in address that matches nothing, used where a group may not be empty.
pub const PLACEHOLDER: &str = "none";

/// One desired member.
#[derive(Debug, Clone, PartialEq)]
pub struct DesiredMember {
    /// The address.
    pub address: MemberAddress,
    /// The user's comment.
    pub comment: Option<String>,
    /// When it stops being desired.
    pub expires_at: Option<Timestamp>,
}

/// What the resource declares, for one address family (`addrgrp` or `addrgrp6`).
#[derive(Debug, Clone, PartialEq)]
pub struct DesiredGroup {
    /// The owning resource.
    pub owner: Owner,
    /// Group name on the device.
    pub group_name: String,
    /// Prefix of our object names.
    pub prefix: String,
    /// Members of this family.
    pub members: Vec<DesiredMember>,
    /// Additive or Exclusive.
    pub membership: Membership,
    /// Whether the device accepts an empty group (FortiOS / ADOM 7.2+).
    pub empty_group_allowed: bool,
    /// `spec.takeOver`: take over a group that exists without any fortisync marker.
    pub take_over: bool,
    /// The firmware's member cap per group, where one is known.
    pub limit: Option<GroupLimit>,
    /// For the IPv4 group, which exists even for a spec of IPv6 members only: the expiry of
    /// each IPv6 member, so it is not created once every member of the spec has expired.
    pub other_family: Vec<Option<Timestamp>>,
}

/// The group as the device holds it.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ObservedGroupObject {
    /// Member names.
    pub members: Vec<String>,
    /// Comment (our marker when we created it).
    pub comment: String,
}

/// An address object with our prefix, as read by a filtered GET.
#[derive(Debug, Clone, PartialEq)]
pub struct ObservedAddress {
    /// Object name.
    pub name: String,
    /// Its address, when it is a type fortisync manages.
    pub address: Option<MemberAddress>,
    /// Its comment.
    pub comment: String,
}

/// What the device holds for one group and family.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ObservedGroup {
    /// The group, when it exists.
    pub group: Option<ObservedGroupObject>,
    /// Address objects whose names start with the prefix.
    pub addresses: Vec<ObservedAddress>,
}

/// One device write.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "op", rename_all = "camelCase")]
pub enum Op {
    /// Create an address object.
    CreateAddress {
        name: String,
        address: MemberAddress,
        comment: String,
    },
    /// Rewrite one of our address objects that drifted.
    UpdateAddress {
        name: String,
        address: MemberAddress,
        comment: String,
    },
    /// Create the group with these members.
    CreateGroup {
        name: String,
        members: Vec<String>,
        comment: String,
    },
    /// Add one member to the group.
    AddMember { group: String, member: String },
    /// Remove one member from the group.
    RemoveMember { group: String, member: String },
    /// Delete one of our address objects.
    DeleteAddress { name: String },
    /// Delete the group (only one we created).
    DeleteGroup { name: String },
    /// Write our marker into a hand-made group's comment (`spec.takeOver`), keeping the
    /// administrator's text after it; the first write of the plan that takes it over.
    ClaimGroup { name: String, comment: String },
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Op::CreateAddress { name, address, .. } => write!(f, "+ address {name} ({address})"),
            Op::UpdateAddress { name, address, .. } => write!(f, "~ address {name} ({address})"),
            Op::CreateGroup { name, members, .. } => {
                write!(f, "+ group {name} [{}]", members.join(", "))
            }
            Op::AddMember { group, member } => write!(f, "+ member {member} -> group {group}"),
            Op::RemoveMember { group, member } => write!(f, "- member {member} <- group {group}"),
            Op::DeleteAddress { name } => write!(f, "- address {name}"),
            Op::DeleteGroup { name } => write!(f, "- group {name}"),
            Op::ClaimGroup { name, comment } => {
                write!(f, "~ group {name} taken over (comment {comment:?})")
            }
        }
    }
}

/// A member that could not be applied because a foreign object holds its name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Conflict {
    /// The object name.
    pub name: String,
    /// The member it was for.
    pub address: MemberAddress,
    /// Who holds it (`an administrator` or another fortisync resource's marker).
    pub holder: String,
}

impl fmt::Display for Conflict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "object {} (for {}) already exists and belongs to {}",
            self.name, self.address, self.holder
        )
    }
}

/// Member counts after the plan.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct Counts {
    /// Members declared and not expired.
    pub desired: u32,
    /// Members in the group after the plan (placeholder excluded).
    pub present: u32,
    /// Members fortisync does not own, kept.
    pub foreign: u32,
}

/// The ordered writes and what the plan found.
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
pub struct Plan {
    ops: Vec<Op>,
    conflicts: Vec<Conflict>,
    foreign_members: Vec<String>,
    next_expiry: Option<Timestamp>,
    counts: Counts,
    refusal: Option<Refusal>,
    note: Option<String>,
}

impl Plan {
    /// A plan of exactly these writes (merged device plans, tests).
    pub fn from_ops(ops: Vec<Op>) -> Self {
        Self {
            ops,
            ..Self::default()
        }
    }
    /// The writes, in order.
    pub fn ops(&self) -> &[Op] {
        &self.ops
    }
    /// Whether nothing would change.
    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }
    /// Number of device writes.
    pub fn writes(&self) -> usize {
        self.ops.len()
    }
    /// Members that could not be applied.
    pub fn conflicts(&self) -> &[Conflict] {
        &self.conflicts
    }
    /// Members an administrator added (kept in Additive mode).
    pub fn foreign_members(&self) -> &[String] {
        &self.foreign_members
    }
    /// The nearest future member expiry.
    pub fn next_expiry(&self) -> Option<Timestamp> {
        self.next_expiry
    }
    /// Counts after the plan.
    pub fn counts(&self) -> Counts {
        self.counts
    }
    /// Why this plan writes nothing at all, when it is refused.
    pub fn refusal(&self) -> Option<&Refusal> {
        self.refusal.as_ref()
    }
    /// What status should say instead of the usual count (a plan with nothing to do).
    pub fn note(&self) -> Option<&str> {
        self.note.as_deref()
    }
}

impl fmt::Display for Plan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for op in &self.ops {
            writeln!(f, "{op}")?;
        }
        for member in &self.foreign_members {
            writeln!(f, "= foreign member kept: {member}")?;
        }
        for conflict in &self.conflicts {
            writeln!(f, "! conflict: {conflict}")?;
        }
        if let Some(refusal) = &self.refusal {
            writeln!(f, "! refused: {refusal}")?;
        } else if let Some(note) = &self.note {
            writeln!(f, "= {note}")?;
        } else if self.ops.is_empty() && self.conflicts.is_empty() {
            writeln!(f, "= no changes")?;
        }
        Ok(())
    }
}

/// Plans the writes that make the device hold `desired` at time `now`, or refuses to write.
pub fn plan(desired: &DesiredGroup, observed: &ObservedGroup, now: Timestamp) -> Plan {
    let live = desired
        .members
        .iter()
        .filter(|m| m.expires_at.is_none_or(|t| t > now))
        .count() as u32;
    let standing = match observed
        .group
        .as_ref()
        .map(|g| refusal::standing(desired, g))
    {
        None => Standing::Owner,
        Some(Ok(standing)) => standing,
        // Nothing about a group we do not own is reported: not its members, not their count.
        Some(Err(refusal)) => {
            let counts = Counts {
                desired: live,
                ..Counts::default()
            };
            return refused(refusal, counts);
        }
    };
    let mut out = plan_writes(desired, observed, now, standing);
    if let Some(refusal) = refusal::over_limit(desired, out.counts.present as usize) {
        let on_device = observed.group.as_ref().map_or(0, |g| {
            g.members.iter().filter(|m| *m != PLACEHOLDER).count() as u32
        });
        let counts = Counts {
            desired: out.counts.desired,
            present: on_device,
            foreign: out.counts.foreign,
        };
        return refused(refusal, counts);
    }
    let other_live = desired
        .other_family
        .iter()
        .filter(|t| t.is_none_or(|t| t > now))
        .count();
    let declared = desired.members.len() + desired.other_family.len();
    if observed.group.is_none() && live == 0 && other_live == 0 && declared > 0 {
        // Every declared member expired before the group existed: creating it would publish
        // an empty (or placeholder-only) group nobody asked for.
        out.ops.retain(|op| !matches!(op, Op::CreateGroup { .. }));
        out.counts.present = 0;
        out.note = Some(format!(
            "all {declared} member(s) have expired; nothing to write"
        ));
    }
    out
}

/// A plan that writes nothing, with `refusal` and what the device holds for us.
fn refused(refusal: Refusal, counts: Counts) -> Plan {
    Plan {
        refusal: Some(refusal),
        counts,
        ..Plan::default()
    }
}

/// The writes for a group this resource may write to as `standing`.
fn plan_writes(
    desired: &DesiredGroup,
    observed: &ObservedGroup,
    now: Timestamp,
    standing: Standing,
) -> Plan {
    let mut out = Plan::default();
    let by_name: BTreeMap<&str, &ObservedAddress> = observed
        .addresses
        .iter()
        .map(|a| (a.name.as_str(), a))
        .collect();
    let ours: BTreeSet<&str> = observed
        .addresses
        .iter()
        .filter(|a| desired.owner.owns(&a.comment))
        .map(|a| a.name.as_str())
        .collect();

    let live: Vec<&DesiredMember> = desired
        .members
        .iter()
        .filter(|m| m.expires_at.is_none_or(|t| t > now))
        .collect();
    out.next_expiry = live.iter().filter_map(|m| m.expires_at).min();
    out.counts.desired = live.len() as u32;

    // 1. Address objects.
    let mut wanted: BTreeSet<String> = BTreeSet::new();
    for member in &live {
        let name = member.address.object_name(&desired.prefix);
        let comment = desired.owner.comment(member.comment.as_deref());
        match by_name.get(name.as_str()) {
            None => out.ops.push(Op::CreateAddress {
                name: name.clone(),
                address: member.address,
                comment,
            }),
            Some(existing) if ours.contains(name.as_str()) => {
                if existing.address != Some(member.address) || existing.comment != comment {
                    out.ops.push(Op::UpdateAddress {
                        name: name.clone(),
                        address: member.address,
                        comment,
                    });
                }
            }
            Some(existing) => {
                let holder = holder_description(&desired.owner, &existing.comment);
                out.conflicts.push(Conflict {
                    name,
                    address: member.address,
                    holder,
                });
                continue;
            }
        }
        wanted.insert(name);
    }

    // 2. The group.
    let group = &desired.group_name;
    match &observed.group {
        None => {
            let mut members: Vec<String> = wanted.iter().cloned().collect();
            if members.is_empty() && !desired.empty_group_allowed {
                members.push(PLACEHOLDER.to_string());
            }
            out.counts.present = wanted.len() as u32;
            out.ops.push(Op::CreateGroup {
                name: group.clone(),
                members,
                comment: desired.owner.comment(None),
            });
        }
        Some(current) => {
            let present: BTreeSet<&str> = current.members.iter().map(String::as_str).collect();
            let created_by_us = standing != Standing::Guest;
            if standing == Standing::TakingOver {
                // Recorded first: from here on a second resource sees the group as ours.
                let admin_text = Some(current.comment.as_str()).filter(|c| !c.is_empty());
                out.ops.insert(
                    0,
                    Op::ClaimGroup {
                        name: group.clone(),
                        comment: desired.owner.comment(admin_text),
                    },
                );
            }
            let is_placeholder = |m: &str| m == PLACEHOLDER;
            // Another resource's member, whatever our membership mode: never removed.
            let theirs = |m: &str| {
                by_name
                    .get(m)
                    .is_some_and(|a| has_marker(&a.comment) && !desired.owner.owns(&a.comment))
            };
            let foreign: Vec<String> = current
                .members
                .iter()
                .filter(|m| {
                    !(ours.contains(m.as_str())
                        || wanted.contains(*m)
                        || (is_placeholder(m) && created_by_us))
                })
                .cloned()
                .collect();
            let mut removes: Vec<String> = current
                .members
                .iter()
                .filter(|m| ours.contains(m.as_str()) && !wanted.contains(*m))
                .cloned()
                .collect();
            if desired.membership == Membership::Exclusive {
                removes.extend(
                    foreign
                        .iter()
                        .filter(|m| !is_placeholder(m) && !theirs(m))
                        .cloned(),
                );
                out.foreign_members = foreign.iter().filter(|m| theirs(m)).cloned().collect();
            } else {
                out.foreign_members = foreign
                    .iter()
                    .filter(|m| !is_placeholder(m))
                    .cloned()
                    .collect();
            }
            let adds: Vec<String> = wanted
                .iter()
                .filter(|w| !present.contains(w.as_str()))
                .cloned()
                .collect();
            let kept_foreign = out.foreign_members.len();
            let real_after = wanted.len() + kept_foreign;
            // The placeholder stays only while nothing else would keep the group non-empty.
            let placeholder_present = present.contains(PLACEHOLDER);
            let needs_placeholder = real_after == 0 && !desired.empty_group_allowed;
            if needs_placeholder && !placeholder_present {
                out.ops.push(Op::AddMember {
                    group: group.clone(),
                    member: PLACEHOLDER.to_string(),
                });
            }
            out.ops.extend(adds.into_iter().map(|member| Op::AddMember {
                group: group.clone(),
                member,
            }));
            if placeholder_present
                && !needs_placeholder
                && (created_by_us || desired.membership == Membership::Exclusive)
            {
                removes.push(PLACEHOLDER.to_string());
            }
            out.ops
                .extend(removes.into_iter().map(|member| Op::RemoveMember {
                    group: group.clone(),
                    member,
                }));
            out.counts.present = real_after as u32;
            out.counts.foreign = out.foreign_members.len() as u32;
        }
    }

    // 3. Our objects nothing wants any more (already out of the group above).
    for name in &ours {
        if !wanted.contains(*name) {
            out.ops.push(Op::DeleteAddress {
                name: name.to_string(),
            });
        }
    }
    out
}

/// Plans what deleting the resource does: `Delete` removes our members and objects (and the
/// group, if we created it and nothing foreign is left in it); `Orphan` changes nothing.
pub fn plan_deletion(
    desired: &DesiredGroup,
    observed: &ObservedGroup,
    policy: DeletionPolicy,
) -> Plan {
    if policy == DeletionPolicy::Orphan {
        return Plan::default();
    }
    let nothing = DesiredGroup {
        members: Vec::new(),
        membership: Membership::Additive,
        ..desired.clone()
    };
    // Deleting takes out only what is ours, so it needs no standing in the group: an Owner
    // plan where our marker is on it, a Guest one elsewhere.
    let standing = match &observed.group {
        Some(g) if !desired.owner.owns(&g.comment) => Standing::Guest,
        _ => Standing::Owner,
    };
    let mut out = plan_writes(&nothing, observed, Timestamp::UNIX_EPOCH, standing);
    out.ops.retain(|op| !matches!(op, Op::CreateGroup { .. }));
    if let Some(group) = &observed.group
        && desired.owner.owns(&group.comment)
        && out.foreign_members.is_empty()
    {
        // Drop the member edits of a group we delete anyway; delete it before our objects.
        out.ops
            .retain(|op| !matches!(op, Op::AddMember { .. } | Op::RemoveMember { .. }));
        let first_delete = out
            .ops
            .iter()
            .position(|op| matches!(op, Op::DeleteAddress { .. }))
            .unwrap_or(out.ops.len());
        out.ops.insert(
            first_delete,
            Op::DeleteGroup {
                name: desired.group_name.clone(),
            },
        );
    }
    out
}

#[cfg(test)]
mod tests;
