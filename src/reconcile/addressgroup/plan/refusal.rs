//! Plans that must not write at all: a group another resource (or an administrator) owns, a
//! group past the firmware's member cap. Each refusal is decided before the first write, so a
//! refused resource leaves the device exactly as it found it.

use std::fmt;

use serde::Serialize;

use super::{DesiredGroup, ObservedGroupObject};
use crate::api::addressgroup::Membership;
use crate::model::{Firmware, Holder, Owner};

/// Why a plan writes nothing, with what an admin can do about it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Refusal {
    /// Stable reason (condition reason, event reason).
    pub reason: &'static str,
    /// What was found.
    pub message: String,
    /// What an admin can do.
    pub remedy: String,
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: {} (remedy: {})",
            self.reason, self.message, self.remedy
        )
    }
}

/// The member cap of one address group on a firmware, known before any write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GroupLimit {
    /// Members one group may hold.
    pub members: usize,
    /// The firmware the cap belongs to (named in the message).
    pub firmware: Firmware,
}

/// How this resource stands to an existing group.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Standing {
    /// The group carries our marker (we created it, or took it over earlier).
    Owner,
    /// The group has no fortisync marker and this resource takes it over now
    /// (`spec.takeOver`): the marker is written into its comment before anything else.
    TakingOver,
    /// The group has no fortisync marker; an Additive resource adds its members beside the
    /// administrator's and claims nothing.
    Guest,
}

/// Who a fortisync marker names, as this resource may say it: a resource of the same
/// namespace by name, anything else without its namespace or name (tenants do not learn
/// about each other through status).
pub fn holder_description(me: &Owner, comment: &str) -> String {
    match Holder::of(comment) {
        Some(Holder::Resource { namespace, name }) if namespace == me.namespace => {
            format!("fortisync resource {name} (in this namespace)")
        }
        Some(Holder::Resource { .. }) => "another fortisync resource (in another namespace)".into(),
        // A hashed marker hides the namespace; say nothing about it either way.
        Some(Holder::Hashed) => "another fortisync resource".into(),
        None => "an administrator".into(),
    }
}

/// Whether this resource may write to `group`, and as what.
pub fn standing(desired: &DesiredGroup, group: &ObservedGroupObject) -> Result<Standing, Refusal> {
    let name = &desired.group_name;
    if desired.owner.owns(&group.comment) {
        return Ok(Standing::Owner);
    }
    if Holder::of(&group.comment).is_some() {
        // Never taken from another fortisync resource, takeOver or not: its members would be
        // removed by a resource that does not own them.
        let who = holder_description(&desired.owner, &group.comment);
        return Err(Refusal {
            reason: "GroupOwnedByAnother",
            message: format!(
                "{who} owns this group: address group {name} carries its marker, so this resource writes nothing to it"
            ),
            remedy: "give this resource another spec.groupName, or delete one of the two resources"
                .into(),
        });
    }
    if desired.take_over {
        return Ok(Standing::TakingOver);
    }
    match desired.membership {
        Membership::Additive => Ok(Standing::Guest),
        Membership::Exclusive => Err(Refusal {
            reason: "GroupNotOwned",
            message: format!(
                "address group {name} exists and was not created by fortisync; Exclusive membership would remove its members"
            ),
            remedy: "set spec.takeOver: true to let this resource own the group (members without a fortisync marker are then removed), or use membership: Additive to keep them".into(),
        }),
    }
}

/// The refusal when the group would hold more members than the firmware allows.
pub fn over_limit(desired: &DesiredGroup, members_after: usize) -> Option<Refusal> {
    let limit = desired.limit?;
    (members_after > limit.members).then(|| Refusal {
        reason: "LimitReached",
        message: format!(
            "address group {} would hold {members_after} members; FortiOS {} allows at most {} per group, so nothing was written",
            desired.group_name, limit.firmware, limit.members
        ),
        remedy: format!(
            "split the members across several AddressGroups (each with its own spec.groupName, at most {} members each), or upgrade the device to FortiOS 7.x",
            limit.members
        ),
    })
}
