//! kstatus-compatible conditions (`Ready`, `Synced`, and `Reconciling`/`Stalled` when not
//! Ready) so Argo CD and Flux show health without custom scripts.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};

/// Condition type: the resource is converged and healthy.
pub const READY: &str = "Ready";
/// Condition type: the last reconcile reached the device and applied the plan.
pub const SYNCED: &str = "Synced";

/// Condition type (kstatus): not Ready yet, and the controller gets there without anyone's help.
pub const RECONCILING: &str = "Reconciling";
/// Condition type (kstatus): not Ready until someone changes something (a key, the spec, the
/// device, the network). kstatus reads it as Failed, Flux's health checks fail on it at once.
pub const STALLED: &str = "Stalled";

/// Reasons a not-Ready resource recovers from by itself, so kstatus shows it InProgress rather
/// than Failed: a deletion waiting on its dependents, a passing API server or device hiccup, a
/// write whose outcome the next pass verifies, another admin's workspace lock (released by its
/// holder; the controller retries within a minute), the DevicePolicies still being listed at
/// start. Every other reason (a refused key, a lockout, an unreachable device, a refused push,
/// an invalid spec, a missing Secret) needs someone to act and is Stalled.
const RECOVERS_BY_ITSELF: &[&str] = &[
    "DependentsRemain",
    "KubernetesApiError",
    "OutcomeUnknown",
    "Unavailable",
    "WorkspaceLocked",
    "PoliciesUnknown",
];

/// Reason of a Ready=False the user asked for: neither converging nor failed.
const PAUSED: &str = "Paused";

/// Adds to `conditions` the kstatus condition their `Ready` implies: none while Ready is True
/// (or paused), else `Reconciling` or `Stalled` (True, with Ready's reason and message). kstatus
/// and Flux only read those two, so without them a refused key would read Current.
pub fn with_kstatus(mut conditions: Vec<Condition>, previous: &[Condition]) -> Vec<Condition> {
    let Some(ready) = conditions.iter().find(|c| c.type_ == READY) else {
        return conditions;
    };
    if ready.status == "True" || ready.reason == PAUSED {
        return conditions;
    }
    let type_ = if RECOVERS_BY_ITSELF.contains(&ready.reason.as_str()) {
        RECONCILING
    } else {
        STALLED
    };
    let derived = condition(
        type_,
        true,
        &ready.reason,
        ready.message.clone(),
        ready.observed_generation,
        previous,
    );
    conditions.push(derived);
    conditions
}

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
/// or both false with `reason` (and `Reconciling` or `Stalled`, see [`with_kstatus`]).
pub fn ready_and_synced(
    ok: bool,
    reason: &str,
    message: String,
    generation: Option<i64>,
    previous: &[Condition],
) -> Vec<Condition> {
    let synced_reason = if ok { "Applied" } else { reason };
    with_kstatus(
        vec![
            condition(READY, ok, reason, message.clone(), generation, previous),
            condition(SYNCED, ok, synced_reason, message, generation, previous),
        ],
        previous,
    )
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
    fn a_refused_key_is_stalled_a_dependent_wait_reconciling_ready_and_paused_neither() {
        let types = |ok, reason| -> Vec<(String, String)> {
            ready_and_synced(ok, reason, "m".into(), Some(3), &[])
                .into_iter()
                .map(|c| (c.type_, c.status))
                .collect()
        };
        let pair = |t: &str, s: &str| (t.to_string(), s.to_string());
        assert_eq!(
            types(true, "Converged"),
            [pair(READY, "True"), pair(SYNCED, "True")]
        );
        assert_eq!(
            types(false, "Unauthorized"),
            [
                pair(READY, "False"),
                pair(SYNCED, "False"),
                pair(STALLED, "True")
            ]
        );
        assert_eq!(
            types(false, "DependentsRemain"),
            [
                pair(READY, "False"),
                pair(SYNCED, "False"),
                pair(RECONCILING, "True")
            ]
        );
        assert_eq!(
            types(false, "Paused"),
            [pair(READY, "False"), pair(SYNCED, "False")]
        );
        let stalled = ready_and_synced(false, "Unauthorized", "m".into(), Some(3), &[]);
        assert_eq!(stalled[2].reason, "Unauthorized");
        assert_eq!(stalled[2].observed_generation, Some(3));
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
