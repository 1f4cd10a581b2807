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
//! Empty groups: FortiOS before 7.2 and FortiManager ADOMs before 7.2 refuse a group without
//! members. There the group keeps the built-in address `none` (it matches no traffic) as a
//! placeholder instead of becoming empty, and never references a deleted object.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use jiff::Timestamp;
use serde::Serialize;

use crate::api::addressgroup::{DeletionPolicy, Membership};
use crate::model::{MemberAddress, Owner, has_marker};

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
        if self.ops.is_empty() && self.conflicts.is_empty() {
            writeln!(f, "= no changes")?;
        }
        Ok(())
    }
}

/// Plans the writes that make the device hold `desired` at time `now`.
pub fn plan(desired: &DesiredGroup, observed: &ObservedGroup, now: Timestamp) -> Plan {
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
                let holder = if has_marker(&existing.comment) {
                    existing.comment.clone()
                } else {
                    "an administrator".to_string()
                };
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
            let created_by_us = desired.owner.owns(&current.comment);
            let is_placeholder = |m: &str| m == PLACEHOLDER;
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
                removes.extend(foreign.iter().filter(|m| !is_placeholder(m)).cloned());
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
            let kept_foreign = if desired.membership == Membership::Exclusive {
                0
            } else {
                out.foreign_members.len()
            };
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
    let mut out = plan(&nothing, observed, Timestamp::UNIX_EPOCH);
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
