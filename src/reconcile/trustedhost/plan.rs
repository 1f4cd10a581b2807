//! The pure planner: from the user's slots as read, what fortisync last wrote, and the
//! grant (open with a value, or closed), the one slot write to make — or the safety rule that
//! refuses it. Every refusal is decided here, before anything is written.
//!
//! Ownership (the device holds no marker): a slot is fortisync's to write when it holds the
//! device's unused value, the value fortisync last wrote there (`status.written`), or exactly
//! the value it is about to write. Any other value was put there by someone else: it is
//! reported as foreign and left alone unless `takeOver`. A slot fortisync wrote that is found
//! unused again is drift, repaired and counted; one found holding another value is foreign
//! (someone changed it by hand), never overwritten by default — the reading that cannot take
//! access away from, or give it to, anyone fortisync was not asked about.

use std::net::IpAddr;

use super::slots::{Slot, UserSlots};

/// Whether the user may be the one fortisync itself authenticates as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Own {
    /// It is not (a password login as another user; a FortiGate admin reached with a token,
    /// which belongs to an API user).
    No,
    /// It is (the session login's user).
    Yes,
    /// Unknown (a token, and the user is an API user): it may be, exactly when the device
    /// may let the controller's source in for it now (`UserSlots::may_trust`).
    IfTrustedNow,
}

/// What the planner is given.
#[derive(Debug, Clone)]
pub struct PlanInput<'a> {
    /// The slot.
    pub slot: u32,
    /// The value the grant wants there, None when it is closed (expired, address removed,
    /// resource deleted).
    pub desired: Option<Slot>,
    /// Every slot of the user as read.
    pub current: &'a UserSlots,
    /// What fortisync last wrote into this slot of this user on this device.
    pub written: Option<Slot>,
    /// Overwrite a foreign value.
    pub take_over: bool,
    /// Whether the user may be the controller's own.
    pub own: Own,
    /// The controller's source address as the device sees it, when known.
    pub source: Option<IpAddr>,
    /// The resource that claimed this user and slot first, when it is another one.
    pub claimed_by: Option<String>,
}

/// The write to make.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// The new value of the slot; None when the slot already holds what it should.
    pub write: Option<Slot>,
    /// The write puts back a value fortisync wrote and someone removed.
    pub drift: bool,
}

/// Why nothing is written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// Another TrustedHost claimed this user and slot first.
    Claimed {
        /// `<namespace>/<name>` of the first claim.
        first: String,
    },
    /// Other slots of the user let every source in, so this one restricts nothing.
    Masked {
        /// The masking slots.
        slots: Vec<u32>,
    },
    /// The slot holds a value fortisync did not write.
    Foreign {
        /// What it holds.
        value: Slot,
    },
    /// The write would leave the controller's own source outside the user's trusted hosts.
    WouldLockOut {
        /// The source address.
        source: IpAddr,
    },
    /// The user may be the controller's own and its source address is not known.
    SourceUnknown,
}

impl Refusal {
    /// Stable reason (condition, event, metrics).
    pub fn reason(&self) -> &'static str {
        match self {
            Self::Claimed { .. } => "SlotClaimed",
            Self::Masked { .. } => "SlotMasked",
            Self::Foreign { .. } => "SlotForeign",
            Self::WouldLockOut { .. } => "WouldLockOutController",
            Self::SourceUnknown => "SourceAddressUnknown",
        }
    }

    /// What happened, naming the user and slot; always says nothing was written.
    pub fn message(&self, user: &str, slot: u32) -> String {
        let what = match self {
            Self::Claimed { first } => format!(
                "TrustedHost {first} claimed user {user:?} slot {slot} on this device first"
            ),
            Self::Masked { slots } => format!(
                "trusted-host slot(s) {} of user {user:?} allow every source (0.0.0.0/0 or ::/0), which masks slot {slot} (F20)",
                list(slots)
            ),
            Self::Foreign { value } => format!(
                "slot {slot} of user {user:?} holds {} / {}, which fortisync did not write",
                value.v4.text(),
                value.v6.text()
            ),
            Self::WouldLockOut { source } => format!(
                "user {user:?} may be the one fortisync signs in as, and after this change slot {slot} would leave the controller's source {source} outside its trusted hosts"
            ),
            Self::SourceUnknown => format!(
                "user {user:?} may be the one fortisync signs in as, and the controller's source address is not known, so fortisync cannot tell whether changing slot {slot} locks it out"
            ),
        };
        format!("{what}; nothing was written")
    }

    /// What to do.
    pub fn remedy(&self) -> String {
        match self {
            Self::Claimed { .. } => {
                "delete one of the two resources, or give this one another spec.slot".into()
            }
            Self::Masked { .. } => "set the masking slots to 127.0.0.1 or a controlled address (seed 003), then this slot takes effect".into(),
            Self::Foreign { .. } => "choose a free slot, clear this one on the device, or set spec.takeOver: true to overwrite it".into(),
            Self::WouldLockOut { .. } => "keep a slot that holds the controller's source address (connection spec.sourceAddress), or grant another user".into(),
            Self::SourceUnknown => "set spec.sourceAddress on the connection to the address the device sees fortisync come from".into(),
        }
    }
}

fn list(slots: &[u32]) -> String {
    slots
        .iter()
        .map(u32::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

/// Plans one pass. The refusals come in this order: a claim by another resource, masking
/// slots (when opening), a foreign value, the controller's own access.
pub fn plan(input: &PlanInput<'_>) -> Result<Plan, Refusal> {
    if let Some(first) = &input.claimed_by {
        return Err(Refusal::Claimed {
            first: first.clone(),
        });
    }
    let held = input.current.get(input.slot);
    let target = match input.desired {
        Some(value) => {
            let masking = input.current.allow_all_except(input.slot);
            if !masking.is_empty() {
                return Err(Refusal::Masked { slots: masking });
            }
            value
        }
        None if held.is_unused() => {
            return Ok(Plan {
                write: None,
                drift: false,
            });
        }
        None => input.current.closing_value(input.slot),
    };
    if held == target {
        return Ok(Plan {
            write: None,
            drift: false,
        });
    }
    let ours = held.is_unused() || Some(held) == input.written;
    if !ours && !input.take_over {
        return Err(Refusal::Foreign { value: held });
    }
    let after = input.current.with(input.slot, target);
    let locked_out = |source: IpAddr| !after.trusts(source);
    match (input.own, input.source) {
        (Own::No, _) => {}
        (Own::Yes, None) => return Err(Refusal::SourceUnknown),
        (Own::Yes, Some(source)) if locked_out(source) => {
            return Err(Refusal::WouldLockOut { source });
        }
        (Own::IfTrustedNow, None) => return Err(Refusal::SourceUnknown),
        (Own::IfTrustedNow, Some(source))
            if input.current.may_trust(source) && locked_out(source) =>
        {
            return Err(Refusal::WouldLockOut { source });
        }
        _ => {}
    }
    Ok(Plan {
        write: Some(target),
        drift: input.desired.is_some() && held.is_unused() && input.written == Some(target),
    })
}

#[cfg(test)]
#[path = "plan_tests.rs"]
mod tests;
