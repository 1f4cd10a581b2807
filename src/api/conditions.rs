//! kstatus-compatible conditions (`Ready`, `Synced`) so Argo CD and Flux show health without
//! custom scripts.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};

/// Condition type: the resource is converged and healthy.
pub const READY: &str = "Ready";
/// Condition type: the last reconcile reached the device and applied the plan.
pub const SYNCED: &str = "Synced";

/// Builds a condition; `lastTransitionTime` is kept from `previous` when the status is unchanged,
/// so conditions only move when something really changed.
pub fn condition(
    type_: &str,
    ok: bool,
    reason: &str,
    message: impl Into<String>,
    generation: Option<i64>,
    previous: &[Condition],
) -> Condition {
    let status = if ok { "True" } else { "False" };
    let last_transition_time = previous
        .iter()
        .find(|c| c.type_ == type_ && c.status == status)
        .map(|c| c.last_transition_time.clone())
        .unwrap_or_else(|| Time(k8s_openapi::jiff::Timestamp::now()));
    Condition {
        type_: type_.to_string(),
        status: status.to_string(),
        reason: reason.to_string(),
        message: message.into(),
        observed_generation: generation,
        last_transition_time,
    }
}

/// `Ready` and `Synced` of a pass: both true with `reason` for Ready and `Applied` for Synced,
/// or both false with `reason`.
pub fn ready_and_synced(
    ok: bool,
    reason: &str,
    message: String,
    generation: Option<i64>,
    previous: &[Condition],
) -> Vec<Condition> {
    let synced_reason = if ok { "Applied" } else { reason };
    vec![
        condition(READY, ok, reason, message.clone(), generation, previous),
        condition(SYNCED, ok, synced_reason, message, generation, previous),
    ]
}

/// Whether `conditions` hold `type_` with status `True`.
pub fn is_true(conditions: &[Condition], type_: &str) -> bool {
    conditions
        .iter()
        .any(|c| c.type_ == type_ && c.status == "True")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transition_time_is_kept_while_status_is_unchanged() {
        let first = condition(READY, true, "Converged", "ok", Some(1), &[]);
        let again = condition(
            READY,
            true,
            "Converged",
            "still ok",
            Some(2),
            std::slice::from_ref(&first),
        );
        assert_eq!(again.last_transition_time, first.last_transition_time);
        assert_eq!(again.observed_generation, Some(2));
    }

    #[test]
    fn transition_time_moves_when_status_flips() {
        let old = Condition {
            last_transition_time: Time(k8s_openapi::jiff::Timestamp::UNIX_EPOCH),
            ..condition(READY, true, "Converged", "ok", Some(1), &[])
        };
        let flipped = condition(
            READY,
            false,
            "Unauthorized",
            "key refused",
            Some(1),
            std::slice::from_ref(&old),
        );
        assert_ne!(flipped.last_transition_time, old.last_transition_time);
        assert_eq!(flipped.status, "False");
        assert!(!is_true(&[flipped], READY));
    }
}
