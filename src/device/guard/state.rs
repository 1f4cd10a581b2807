//! The pure state of one device's guard (per device URL and source address): freezes, the
//! breaker, and the failed-login budget (see [`super::budget`]). Over `tokio::time::Instant`,
//! so every rule is tested with paused time.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use tokio::time::Instant;

use super::budget::{FailedLogins, Room};
use crate::api::common::BreakerState;
use crate::device::error::{Context, DeviceError};

/// Now on the wall clock, to the second (`2026-12-02T18:15:46Z`).
fn refused_at_now() -> String {
    jiff::Timestamp::now()
        .round(jiff::Unit::Second)
        .map_or_else(|_| "an unknown time".into(), |t| t.to_string())
}

/// The device's lockout settings, as the connection resource declares them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LockoutPolicy {
    /// `admin-lockout-threshold`.
    pub threshold: u32,
    /// `admin-lockout-duration`.
    pub duration: Duration,
}

impl Default for LockoutPolicy {
    fn default() -> Self {
        Self {
            threshold: 3,
            duration: Duration::from_secs(60),
        }
    }
}

/// What a request turned out to be, as far as the guard cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The device answered and accepted the credential (any status but 401/429).
    Authorized,
    /// The device refused the credential (401, FortiManager -11/-22 after a re-login).
    Refused,
    /// 429: the source IP is locked out.
    LockedOut,
    /// No answer about the credential (connect failure, timeout, 5xx, reset).
    NoVerdict,
}

/// Whether a request may go out, and as what.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// A normal request.
    Normal,
    /// The single probe after a lockout window.
    Probe,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Breaker {
    Closed,
    Open {
        until: Instant,
    },
    /// The window has passed; one probe is out (or may go out).
    HalfOpen {
        probing: bool,
    },
}

/// What the rules say about a request now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Decision {
    Send(Admission),
    /// The budget has room only once a request in flight has its verdict.
    Wait,
}

/// The pure state of one device's guard.
#[derive(Debug, Clone)]
pub struct GuardState {
    policy: LockoutPolicy,
    breaker: Breaker,
    /// Lockouts seen in a row (for the doubling).
    lockouts: u32,
    /// Refused credential fingerprints, with when they were refused. Kept for the guard's life:
    /// a fingerprint is the credential's content, so a changed Secret is a new fingerprint, and
    /// nothing another connection does (a rebuild, a rotation) can unfreeze this one.
    /// Refused credentials, with when (wall clock, whole seconds: a status quoting it stays
    /// the same on every pass, so a persisting refusal writes nothing more).
    frozen: HashMap<String, String>,
    /// Failed logins we caused from this source address, and requests that may add one.
    logins: FailedLogins,
    /// Credentials the device has accepted at least once (and not refused since).
    confirmed: HashSet<String>,
}

impl GuardState {
    /// A closed guard for `policy`.
    pub fn new(policy: LockoutPolicy) -> Self {
        Self {
            policy,
            breaker: Breaker::Closed,
            lockouts: 0,
            frozen: HashMap::new(),
            logins: FailedLogins::default(),
            confirmed: HashSet::new(),
        }
    }

    /// Whether the device has accepted `fingerprint` before.
    pub fn is_confirmed(&self, fingerprint: &str) -> bool {
        self.confirmed.contains(fingerprint)
    }

    /// Updates the expected lockout settings (the connection resource changed).
    pub fn set_policy(&mut self, policy: LockoutPolicy) {
        self.policy = policy;
    }

    /// Breaker state for status and metrics.
    pub fn breaker(&self, now: Instant) -> BreakerState {
        match self.breaker {
            Breaker::Closed => BreakerState::Closed,
            Breaker::Open { until } if until > now => BreakerState::Open,
            Breaker::Open { .. } | Breaker::HalfOpen { .. } => BreakerState::HalfOpen,
        }
    }

    /// Whether a request from `caller` with credential `fingerprint` would be refused now,
    /// without taking anything (no probe, no slot): lets a refusal return before any waiting.
    pub fn check(&self, caller: &str, fingerprint: &str, now: Instant) -> Result<(), DeviceError> {
        self.decide(caller, fingerprint, now).map(|_| ())
    }

    /// Decides whether a request from `caller` with credential `fingerprint` may be sent now;
    /// refusals cost no I/O. `Ok(None)`: the budget has room once a request in flight has its
    /// verdict (ask again then). `Ok(Some(_))` counts the request in flight until [`record`] or
    /// [`release`].
    ///
    /// [`record`]: Self::record
    /// [`release`]: Self::release
    pub fn admit(
        &mut self,
        caller: &str,
        fingerprint: &str,
        now: Instant,
    ) -> Result<Option<Admission>, DeviceError> {
        self.logins.forget_expired(self.policy.duration, now);
        match self.decide(caller, fingerprint, now)? {
            Decision::Wait => Ok(None),
            Decision::Send(admission) => {
                if admission == Admission::Probe {
                    self.breaker = Breaker::HalfOpen { probing: true };
                }
                self.logins.sent();
                Ok(Some(admission))
            }
        }
    }

    fn decide(
        &self,
        caller: &str,
        fingerprint: &str,
        now: Instant,
    ) -> Result<Decision, DeviceError> {
        if let Some(at) = self.frozen.get(fingerprint) {
            return Err(DeviceError::CredentialFrozen {
                device: caller.to_string(),
                fingerprint: fingerprint.to_string(),
                refused_at: at.clone(),
            });
        }
        let locked_out = |retry_after| DeviceError::LockedOut {
            ctx: Context {
                device: caller.to_string(),
                ..Default::default()
            },
            retry_after,
        };
        match self.breaker {
            Breaker::Closed => {}
            Breaker::Open { until } if until > now => return Err(locked_out(until - now)),
            Breaker::Open { .. } | Breaker::HalfOpen { probing: false } => {
                return Ok(Decision::Send(Admission::Probe));
            }
            // One probe at a time: everyone else waits for its verdict.
            Breaker::HalfOpen { probing: true } => {
                return Err(locked_out(Duration::from_secs(1)));
            }
        }
        // A credential never accepted may still be wrong: it must leave the slot kept for the
        // credentials that work, if there are any.
        let spendable = if self.confirmed.is_empty() || self.is_confirmed(fingerprint) {
            self.policy.failure_budget()
        } else {
            self.policy.trial_budget()
        };
        match self.logins.room(self.policy, spendable, now) {
            Room::Send => Ok(Decision::Send(Admission::Normal)),
            Room::Wait => Ok(Decision::Wait),
            Room::Spent {
                failures,
                retry_after,
            } => Err(DeviceError::AuthBudgetExhausted {
                device: caller.to_string(),
                failures,
                threshold: self.policy.threshold,
                window: self.policy.duration,
                retry_after,
            }),
        }
    }

    /// Records what happened to an admitted request. Returns the lockout window when this
    /// outcome opened the breaker.
    pub fn record(
        &mut self,
        fingerprint: &str,
        admission: Admission,
        outcome: Outcome,
        now: Instant,
        jitter: f64,
    ) -> Option<Duration> {
        self.logins
            .settled((outcome == Outcome::Refused).then_some(now));
        match outcome {
            Outcome::Authorized => {
                self.confirmed.insert(fingerprint.to_string());
                // A request admitted before the breaker opened may come back a success after
                // the 429 that opened it (the device answered it just before the lockout
                // began): that says nothing about the window, which stays until its probe.
                // Only the probe's success, or one while no window is open, ends it.
                if admission == Admission::Probe || self.breaker == Breaker::Closed {
                    self.breaker = Breaker::Closed;
                    self.lockouts = 0;
                }
                None
            }
            Outcome::Refused => {
                self.confirmed.remove(fingerprint);
                self.frozen
                    .insert(fingerprint.to_string(), refused_at_now());
                if admission == Admission::Probe && self.probing() {
                    // The lockout is over but the credential is wrong: the breaker is done.
                    self.breaker = Breaker::Closed;
                }
                None
            }
            Outcome::LockedOut => {
                self.lockouts += 1;
                let factor = 2u32.saturating_pow(self.lockouts.saturating_sub(1).min(16));
                let base = self
                    .policy
                    .duration
                    .saturating_mul(factor)
                    .min(Duration::from_secs(86_400));
                let window = base.mul_f64(1.0 + 0.1 * jitter.clamp(0.0, 1.0));
                self.breaker = Breaker::Open {
                    until: now + window,
                };
                Some(window)
            }
            Outcome::NoVerdict => {
                if admission == Admission::Probe && self.probing() {
                    // The probe learned nothing: allow another probe.
                    self.breaker = Breaker::HalfOpen { probing: false };
                }
                None
            }
        }
    }

    /// An admitted request ended without a verdict to record (its future was dropped): it is
    /// no longer in flight, and a probe it carried may go out again.
    pub fn release(&mut self, admission: Admission) {
        self.logins.settled(None);
        if admission == Admission::Probe && self.probing() {
            self.breaker = Breaker::HalfOpen { probing: false };
        }
    }

    /// Whether the breaker is still waiting for the probe's verdict. A 429 of a request sent
    /// before the probe may have opened a new window meanwhile; the probe's verdict must not
    /// end that one.
    fn probing(&self) -> bool {
        self.breaker == (Breaker::HalfOpen { probing: true })
    }

    /// No connection uses `fingerprint` any more: it no longer holds a slot of the budget for
    /// itself. Its freeze, if any, stays.
    pub fn retire(&mut self, fingerprint: &str) {
        self.confirmed.remove(fingerprint);
    }

    /// Whether `fingerprint` is frozen.
    pub fn is_frozen(&self, fingerprint: &str) -> bool {
        self.frozen.contains_key(fingerprint)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const POLICY: LockoutPolicy = LockoutPolicy {
        threshold: 3,
        duration: Duration::from_secs(60),
    };

    fn normal() -> Result<Option<Admission>, DeviceError> {
        Ok(Some(Admission::Normal))
    }

    #[tokio::test(start_paused = true)]
    async fn a_refused_credential_is_frozen_until_it_changes() {
        let mut g = GuardState::new(POLICY);
        let now = Instant::now();
        let a = g
            .admit("fw", "old", now)
            .expect("first attempt")
            .expect("sent");
        g.record("old", a, Outcome::Refused, now, 0.0);
        for _ in 0..100 {
            assert_eq!(
                g.admit("fw", "old", now).unwrap_err().reason(),
                "CredentialFrozen"
            );
        }
        assert_eq!(g.admit("fw", "new", now), normal());
    }

    #[tokio::test(start_paused = true)]
    async fn a_freeze_outlives_the_window_and_every_other_credential() {
        let mut g = GuardState::new(LockoutPolicy {
            threshold: 10,
            ..POLICY
        });
        let now = Instant::now();
        let a = g.admit("a/fw", "a", now).expect("a").expect("sent");
        g.record("a", a, Outcome::Refused, now, 0.0);
        let later = now + Duration::from_secs(3600);
        for other in ["b", "c", "d"] {
            let p = g.admit("b/fw", other, later).expect(other).expect("sent");
            g.record(other, p, Outcome::Authorized, later, 0.0);
        }
        assert_eq!(
            g.admit("a/fw", "a", later).unwrap_err().reason(),
            "CredentialFrozen"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn fortisync_alone_never_reaches_the_threshold() {
        let mut g = GuardState::new(POLICY);
        let now = Instant::now();
        let good = g.admit("a/fw", "good", now).expect("good").expect("sent");
        g.record("good", good, Outcome::Authorized, now, 0.0);
        let a = g.admit("b/fw", "k1", now).expect("k1").expect("sent");
        g.record("k1", a, Outcome::Refused, now, 0.0);
        // Threshold 3 leaves two failures; an untried key may spend only the first.
        let held = g.admit("b/fw", "k2", now).unwrap_err();
        assert_eq!(held.reason(), "AuthBudgetExhausted");
        assert_eq!(held.retry_after(), Some(Duration::from_secs(60)));
        // The second is kept for keys that work: still usable, one request at a time.
        let b = g.admit("a/fw", "good", now).expect("good").expect("sent");
        assert_eq!(g.admit("a/fw", "good", now), Ok(None), "waits for b");
        // Revoked while in flight: the second failure, and then nothing at all.
        g.record("good", b, Outcome::Refused, now, 0.0);
        assert_eq!(
            g.admit("c/fw", "k3", now).unwrap_err().reason(),
            "AuthBudgetExhausted"
        );
        let later = now + Duration::from_secs(60);
        assert_eq!(g.admit("b/fw", "k2", later), normal());
    }

    #[tokio::test(start_paused = true)]
    async fn a_lockout_blocks_everything_for_the_window_then_admits_one_probe() {
        let mut g = GuardState::new(POLICY);
        let now = Instant::now();
        let a = g.admit("fw", "k", now).expect("k").expect("sent");
        assert_eq!(
            g.record("k", a, Outcome::LockedOut, now, 0.0),
            Some(Duration::from_secs(60))
        );
        assert_eq!(g.breaker(now), BreakerState::Open);
        let inside = g
            .admit("fw", "k", now + Duration::from_secs(59))
            .unwrap_err();
        assert_eq!(inside.retry_after(), Some(Duration::from_secs(1)));
        let after = now + Duration::from_secs(60);
        assert_eq!(g.admit("fw", "k", after), Ok(Some(Admission::Probe)));
        assert_eq!(
            g.admit("fw", "other", after).unwrap_err().reason(),
            "LockedOut",
            "one probe at a time"
        );
        g.record("k", Admission::Probe, Outcome::Authorized, after, 0.0);
        assert_eq!(g.breaker(after), BreakerState::Closed);
        assert_eq!(g.admit("fw", "k", after), normal());
    }

    #[tokio::test(start_paused = true)]
    async fn a_probe_verdict_does_not_end_a_window_a_concurrent_429_opened() {
        let mut g = GuardState::new(LockoutPolicy {
            threshold: 5,
            ..POLICY
        });
        let now = Instant::now();
        let a = g.admit("fw", "k", now).expect("a").expect("sent");
        let b = g.admit("fw", "k", now).expect("b").expect("sent");
        g.record("k", a, Outcome::LockedOut, now, 0.0);
        let later = now + Duration::from_secs(60);
        let probe = g.admit("fw", "k", later).expect("probe").expect("sent");
        // b, sent before the lockout, answers 429 only now: a new, doubled window.
        g.record("k", b, Outcome::LockedOut, later, 0.0);
        g.record("k", probe, Outcome::NoVerdict, later, 0.0);
        assert_eq!(g.breaker(later), BreakerState::Open);
        assert_eq!(g.admit("fw", "k", later).unwrap_err().reason(), "LockedOut");
    }

    #[tokio::test(start_paused = true)]
    async fn a_success_sent_before_the_lockout_does_not_close_the_window() {
        let mut g = GuardState::new(POLICY);
        let now = Instant::now();
        let a = g.admit("fw", "k", now).expect("a").expect("sent");
        let b = g.admit("fw", "k", now).expect("b").expect("sent");
        // Another client locks the IP out between the two: the device answered b before
        // and a after, and a's 429 is recorded first.
        g.record("k", a, Outcome::LockedOut, now, 0.0);
        g.record("k", b, Outcome::Authorized, now, 0.0);
        assert_eq!(g.breaker(now), BreakerState::Open);
        let inside = now + Duration::from_secs(30);
        assert_eq!(
            g.admit("fw", "k", inside).unwrap_err().reason(),
            "LockedOut"
        );
        // The window still ends with one probe, whose success closes it.
        let after = now + Duration::from_secs(60);
        assert_eq!(g.admit("fw", "k", after), Ok(Some(Admission::Probe)));
        g.record("k", Admission::Probe, Outcome::Authorized, after, 0.0);
        assert_eq!(g.admit("fw", "k", after), normal());
    }

    #[tokio::test(start_paused = true)]
    async fn a_retired_working_key_no_longer_holds_a_slot() {
        let mut g = GuardState::new(POLICY);
        let now = Instant::now();
        let good = g.admit("a/fw", "old", now).expect("old").expect("sent");
        g.record("old", good, Outcome::Authorized, now, 0.0);
        let typo = g.admit("a/fw", "typo", now).expect("typo").expect("sent");
        g.record("typo", typo, Outcome::Refused, now, 0.0);
        assert_eq!(
            g.admit("a/fw", "fixed", now).unwrap_err().reason(),
            "AuthBudgetExhausted",
            "the slot is kept for the working key"
        );
        g.retire("old");
        assert_eq!(g.admit("a/fw", "fixed", now), normal());
        g.retire("typo");
        assert!(g.is_frozen("typo"), "retiring never lifts a freeze");
    }

    #[tokio::test(start_paused = true)]
    async fn a_released_probe_allows_another_probe() {
        let mut g = GuardState::new(POLICY);
        let now = Instant::now();
        let a = g.admit("fw", "k", now).expect("k").expect("sent");
        g.record("k", a, Outcome::LockedOut, now, 0.0);
        let later = now + Duration::from_secs(61);
        assert_eq!(g.admit("fw", "k", later), Ok(Some(Admission::Probe)));
        g.release(Admission::Probe);
        assert_eq!(g.admit("fw", "k", later), Ok(Some(Admission::Probe)));
    }

    #[tokio::test(start_paused = true)]
    async fn repeat_lockouts_double_the_window_and_jitter_only_lengthens_it() {
        let mut g = GuardState::new(POLICY);
        let mut now = Instant::now();
        let mut windows = Vec::new();
        for _ in 0..3 {
            let a = g.admit("fw", "k", now).expect("admitted").expect("sent");
            let w = g
                .record("k", a, Outcome::LockedOut, now, 0.0)
                .expect("window");
            windows.push(w.as_secs());
            now += w;
        }
        assert_eq!(windows, [60, 120, 240]);
        let mut j = GuardState::new(POLICY);
        let a = j.admit("fw", "k", now).expect("admitted").expect("sent");
        let w = j
            .record("k", a, Outcome::LockedOut, now, 1.0)
            .expect("window");
        assert!(w >= Duration::from_secs(60) && w <= Duration::from_secs(66));
    }

    #[tokio::test(start_paused = true)]
    async fn a_probe_without_verdict_allows_another_probe() {
        let mut g = GuardState::new(POLICY);
        let now = Instant::now();
        let a = g.admit("fw", "k", now).expect("k").expect("sent");
        g.record("k", a, Outcome::LockedOut, now, 0.0);
        let later = now + Duration::from_secs(61);
        let p = g.admit("fw", "k", later).expect("probe").expect("sent");
        g.record("k", p, Outcome::NoVerdict, later, 0.0);
        assert_eq!(g.admit("fw", "k", later), Ok(Some(Admission::Probe)));
    }

    #[tokio::test(start_paused = true)]
    async fn property_any_outcome_sequence_never_sends_a_frozen_credential_or_inside_a_window() {
        // Deterministic pseudo-random sequences of outcomes, time steps and requests in flight.
        let mut seed = 0x2545_f491_u64;
        let mut next = || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        for threshold in [2, 3, 5] {
            let policy = LockoutPolicy {
                threshold,
                ..POLICY
            };
            for _ in 0..200 {
                let mut g = GuardState::new(policy);
                let mut now = Instant::now();
                let mut failures_in_window: Vec<Instant> = Vec::new();
                let mut locked_until: Option<Instant> = None;
                let mut in_flight: Vec<(String, Admission)> = Vec::new();
                for _ in 0..50 {
                    now += Duration::from_secs(next() % 40);
                    // Sometimes send another request before the earlier ones have answered.
                    if next() % 3 != 0 || in_flight.is_empty() {
                        let fp = format!("k{}", next() % 4);
                        let frozen = g.is_frozen(&fp);
                        if let Ok(Some(admission)) = g.admit("fw", &fp, now) {
                            assert!(!frozen, "a frozen credential was admitted");
                            assert!(
                                locked_until.is_none_or(|u| now >= u),
                                "admitted inside a lockout window"
                            );
                            in_flight.push((fp, admission));
                        }
                        continue;
                    }
                    let (fp, admission) = in_flight.remove(0);
                    let outcome = match next() % 4 {
                        0 => Outcome::Authorized,
                        1 => Outcome::Refused,
                        2 => Outcome::LockedOut,
                        _ => Outcome::NoVerdict,
                    };
                    if outcome == Outcome::Refused {
                        failures_in_window.retain(|t| now.duration_since(*t) < policy.duration);
                        failures_in_window.push(now);
                        assert!(
                            failures_in_window.len() < threshold as usize,
                            "fortisync reached the threshold ({threshold})"
                        );
                    }
                    if let Some(w) = g.record(&fp, admission, outcome, now, 0.5) {
                        locked_until = Some(now + w);
                    }
                    if outcome == Outcome::Authorized {
                        locked_until = None;
                    }
                }
            }
        }
    }
}
