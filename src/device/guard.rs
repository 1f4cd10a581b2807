//! The Guard: one per device, shared by every resource that targets it. It stands between
//! fortisync and the device's lockout (troubleshooting F3, F6):
//!
//! - a credential the device refused is frozen for good under its fingerprint: at most one
//!   failed attempt per credential content; a changed Secret is a new fingerprint, and no other
//!   connection's rebuild or rotation unfreezes it;
//! - failed logins are budgeted so fortisync alone never reaches `admin-lockout-threshold`;
//! - a 429 opens the breaker for the whole device for the lockout window (doubling on repeats,
//!   with jitter); after it exactly one probe is admitted; success closes the breaker;
//! - requests in flight are limited per device, and never to more than `threshold - 1`, so
//!   a key revoked while requests are in flight cannot fail often enough to lock the IP out;
//! - a credential the device has not accepted yet is tried by one request at a time: the
//!   others wait for its verdict (a wrong new key fails once, not once per caller).
//!
//! The state machine is pure over `tokio::time::Instant`, so every rule is tested with paused
//! time; [`Guard`] wraps it with a semaphore and metrics.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;

use super::error::DeviceError;
use super::metrics::DeviceMetrics;
use crate::api::common::BreakerState;

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
    frozen: HashMap<String, Instant>,
    /// Failed logins we caused, for the budget.
    failures: Vec<Instant>,
    /// Credentials the device has accepted at least once.
    confirmed: std::collections::HashSet<String>,
}

/// Whether a request may go out, and as what.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// A normal request.
    Normal,
    /// The single probe after a lockout window.
    Probe,
}

impl GuardState {
    /// A closed guard for `policy`.
    pub fn new(policy: LockoutPolicy) -> Self {
        Self {
            policy,
            breaker: Breaker::Closed,
            lockouts: 0,
            frozen: HashMap::new(),
            failures: Vec::new(),
            confirmed: std::collections::HashSet::new(),
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

    /// Decides whether a request with credential `fingerprint` may be sent now; refusals cost
    /// no I/O. `jitter` (0..1) spreads the first probe of many controllers.
    pub fn admit(
        &mut self,
        device: &str,
        fingerprint: &str,
        now: Instant,
    ) -> Result<Admission, DeviceError> {
        if let Some(at) = self.frozen.get(fingerprint) {
            return Err(DeviceError::CredentialFrozen {
                device: device.to_string(),
                fingerprint: fingerprint.to_string(),
                refused_at: format!("{:?} ago", now.saturating_duration_since(*at)),
            });
        }
        match self.breaker {
            Breaker::Closed => {}
            Breaker::Open { until } if until > now => {
                return Err(DeviceError::LockedOut {
                    ctx: super::error::Context {
                        device: device.to_string(),
                        ..Default::default()
                    },
                    retry_after: until - now,
                });
            }
            Breaker::Open { .. } | Breaker::HalfOpen { probing: false } => {
                self.breaker = Breaker::HalfOpen { probing: true };
                return Ok(Admission::Probe);
            }
            Breaker::HalfOpen { probing: true } => {
                // One probe at a time: everyone else waits for its verdict.
                return Err(DeviceError::LockedOut {
                    ctx: super::error::Context {
                        device: device.to_string(),
                        ..Default::default()
                    },
                    retry_after: Duration::from_secs(1),
                });
            }
        }
        // A credential never seen refused may still be wrong: only try it while one more
        // failure stays below the device's threshold.
        self.failures
            .retain(|t| now.duration_since(*t) < self.policy.duration);
        let failures = self.failures.len() as u32;
        if failures + 1 >= self.policy.threshold && !self.frozen.is_empty() {
            let oldest = self.failures.first().copied().unwrap_or(now);
            return Err(DeviceError::AuthBudgetExhausted {
                device: device.to_string(),
                failures,
                threshold: self.policy.threshold,
                window: self.policy.duration,
                retry_after: (oldest + self.policy.duration).saturating_duration_since(now),
            });
        }
        Ok(Admission::Normal)
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
        match outcome {
            Outcome::Authorized => {
                self.confirmed.insert(fingerprint.to_string());
                if admission == Admission::Probe || self.breaker != Breaker::Closed {
                    self.breaker = Breaker::Closed;
                }
                self.lockouts = 0;
                None
            }
            Outcome::Refused => {
                self.confirmed.remove(fingerprint);
                self.frozen.insert(fingerprint.to_string(), now);
                self.failures.push(now);
                if admission == Admission::Probe {
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
                if admission == Admission::Probe {
                    // The probe learned nothing: allow another probe.
                    self.breaker = Breaker::HalfOpen { probing: false };
                }
                None
            }
        }
    }

    /// Whether `fingerprint` is frozen.
    pub fn is_frozen(&self, fingerprint: &str) -> bool {
        self.frozen.contains_key(fingerprint)
    }
}

/// The guard of one device endpoint: state machine + concurrency limit + metrics.
pub struct Guard {
    device: String,
    state: Mutex<GuardState>,
    permits: Arc<Semaphore>,
    /// Permits the semaphore holds now (follows the lockout policy).
    limit: Mutex<usize>,
    max_concurrent: usize,
    /// Held by the one request that tries a credential not yet accepted.
    trial: Arc<tokio::sync::Mutex<()>>,
    metrics: DeviceMetrics,
}

/// An admitted request: holds a concurrency permit (and the trial of an unconfirmed
/// credential) until dropped, so an early return never strands a waiter.
pub struct Pass {
    admission: Admission,
    _permit: OwnedSemaphorePermit,
    _trial: Option<tokio::sync::OwnedMutexGuard<()>>,
}

/// Requests in flight at most: the configured limit, below the lockout threshold.
fn in_flight_limit(max_concurrent: usize, policy: LockoutPolicy) -> usize {
    let below_threshold = (policy.threshold as usize).saturating_sub(1);
    max_concurrent.min(below_threshold).max(1)
}

impl Guard {
    /// A guard for `device` with `max_concurrent` requests in flight.
    pub fn new(
        device: impl Into<String>,
        policy: LockoutPolicy,
        max_concurrent: usize,
        metrics: DeviceMetrics,
    ) -> Self {
        let device = device.into();
        metrics.breaker_state(&device, BreakerState::Closed);
        let limit = in_flight_limit(max_concurrent, policy);
        Self {
            device,
            state: Mutex::new(GuardState::new(policy)),
            permits: Arc::new(Semaphore::new(limit)),
            limit: Mutex::new(limit),
            max_concurrent: max_concurrent.max(1),
            trial: Arc::new(tokio::sync::Mutex::new(())),
            metrics,
        }
    }

    /// Requests in flight at most (the configured limit, kept below the lockout threshold).
    pub fn max_concurrent(&self) -> usize {
        *self.limit.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn state(&self) -> std::sync::MutexGuard<'_, GuardState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Device name.
    pub fn device(&self) -> &str {
        &self.device
    }

    /// Waits for a concurrency slot, then asks the state machine; refusals cost no I/O.
    pub async fn admit(&self, fingerprint: &str) -> Result<Pass, DeviceError> {
        // Check before queueing, so a frozen credential or an open breaker never waits.
        let precheck = self
            .state()
            .admit(&self.device, fingerprint, Instant::now());
        self.undo_probe(precheck?);
        // A credential the device has not accepted yet goes out one request at a time; the
        // others wait here and then see its verdict (frozen, or confirmed and free to go).
        let trial = if self.state().is_confirmed(fingerprint) {
            None
        } else {
            let held = self.trial.clone().lock_owned().await;
            (!self.state().is_confirmed(fingerprint)).then_some(held)
        };
        let permit =
            self.permits
                .clone()
                .acquire_owned()
                .await
                .map_err(|_| DeviceError::ConnectFailed {
                    ctx: super::error::Context {
                        device: self.device.clone(),
                        ..Default::default()
                    },
                    detail: "the endpoint is shutting down".into(),
                })?;
        let admission = self
            .state()
            .admit(&self.device, fingerprint, Instant::now())?;
        if admission == Admission::Probe {
            tracing::info!(device = %self.device, "lockout window over: sending one probe");
        }
        Ok(Pass {
            admission,
            _permit: permit,
            _trial: trial,
        })
    }

    /// The pre-check must not consume the single probe.
    fn undo_probe(&self, admission: Admission) -> Admission {
        if admission == Admission::Probe {
            let mut state = self.state();
            state.breaker = Breaker::HalfOpen { probing: false };
        }
        admission
    }

    /// Records an admitted request's outcome; returns the lockout window when it opened one.
    pub fn record(&self, pass: Pass, fingerprint: &str, outcome: Outcome) -> Option<Duration> {
        let now = Instant::now();
        let jitter = rand::random::<f64>();
        let (window, breaker) = {
            let mut state = self.state();
            let window = state.record(fingerprint, pass.admission, outcome, now, jitter);
            (window, state.breaker(now))
        };
        match outcome {
            Outcome::Refused => {
                self.metrics.auth_failure(&self.device);
                tracing::warn!(device = %self.device, credential = %fingerprint, "credential refused; frozen until the Secret changes");
            }
            Outcome::LockedOut => {
                self.metrics.lockout(&self.device);
                tracing::warn!(device = %self.device, window = ?window, "device locked this source IP out; breaker open");
            }
            _ => {}
        }
        self.metrics.breaker_state(&self.device, breaker);
        window
    }

    /// Breaker state now.
    pub fn breaker(&self) -> BreakerState {
        self.state().breaker(Instant::now())
    }

    /// Updates the expected lockout settings.
    pub fn set_policy(&self, policy: LockoutPolicy) {
        self.state().set_policy(policy);
        let wanted = in_flight_limit(self.max_concurrent, policy);
        let mut limit = self.limit.lock().unwrap_or_else(|p| p.into_inner());
        if wanted > *limit {
            self.permits.add_permits(wanted - *limit);
        } else if wanted < *limit {
            // Only idle permits can be taken back now; the next policy update takes the rest.
            let taken = self.permits.forget_permits(*limit - wanted);
            *limit -= taken;
            return;
        }
        *limit = wanted;
    }

    /// Whether `fingerprint` is frozen.
    pub fn is_frozen(&self, fingerprint: &str) -> bool {
        self.state().is_frozen(fingerprint)
    }

    /// The metrics this guard reports to.
    pub fn metrics(&self) -> &DeviceMetrics {
        &self.metrics
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_in_flight_stay_below_the_lockout_threshold() {
        let policy = |threshold| LockoutPolicy {
            threshold,
            duration: Duration::from_secs(60),
        };
        assert_eq!(in_flight_limit(4, policy(3)), 2);
        assert_eq!(in_flight_limit(4, policy(10)), 4);
        assert_eq!(in_flight_limit(8, policy(1)), 1, "at least one request");
        let guard = Guard::new("fw", policy(3), 8, DeviceMetrics::default());
        assert_eq!(guard.max_concurrent(), 2);
        guard.set_policy(policy(6));
        assert_eq!(guard.max_concurrent(), 5);
        guard.set_policy(policy(2));
        assert_eq!(guard.max_concurrent(), 1);
    }

    #[tokio::test]
    async fn an_unconfirmed_credential_is_tried_by_one_request_at_a_time() {
        let guard = Arc::new(Guard::new("fw", POLICY, 4, DeviceMetrics::default()));
        let first = guard.admit("new-key").await.expect("the trial goes out");
        let waiter = {
            let guard = guard.clone();
            tokio::spawn(async move { guard.admit("new-key").await.map(|_| ()) })
        };
        tokio::task::yield_now().await;
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(
            !waiter.is_finished(),
            "the second request waits for the verdict"
        );
        guard.record(first, "new-key", Outcome::Refused);
        let second = waiter.await.expect("join");
        assert!(
            matches!(second, Err(DeviceError::CredentialFrozen { .. })),
            "the waiter learns the key is frozen without sending it: {second:?}"
        );
    }

    #[tokio::test]
    async fn a_confirmed_credential_goes_out_concurrently() {
        let guard = Arc::new(Guard::new(
            "fw",
            LockoutPolicy {
                threshold: 5,
                ..POLICY
            },
            4,
            DeviceMetrics::default(),
        ));
        let trial = guard.admit("key").await.expect("trial");
        guard.record(trial, "key", Outcome::Authorized);
        let a = guard.admit("key").await.expect("a");
        let b = tokio::time::timeout(Duration::from_secs(1), guard.admit("key"))
            .await
            .expect("not serialised once confirmed")
            .expect("b");
        guard.record(a, "key", Outcome::Authorized);
        guard.record(b, "key", Outcome::Authorized);
    }

    const POLICY: LockoutPolicy = LockoutPolicy {
        threshold: 3,
        duration: Duration::from_secs(60),
    };

    #[tokio::test(start_paused = true)]
    async fn a_refused_credential_is_frozen_until_it_changes() {
        let mut g = GuardState::new(POLICY);
        let now = Instant::now();
        let a = g.admit("fw", "old", now).expect("first attempt");
        g.record("old", a, Outcome::Refused, now, 0.0);
        for _ in 0..100 {
            assert_eq!(
                g.admit("fw", "old", now).unwrap_err().reason(),
                "CredentialFrozen"
            );
        }
        assert_eq!(g.admit("fw", "new", now), Ok(Admission::Normal));
    }

    #[tokio::test(start_paused = true)]
    async fn a_freeze_outlives_the_window_and_every_other_credential() {
        let mut g = GuardState::new(LockoutPolicy {
            threshold: 10,
            ..POLICY
        });
        let now = Instant::now();
        let a = g.admit("fw", "a", now).expect("a");
        g.record("a", a, Outcome::Refused, now, 0.0);
        let later = now + Duration::from_secs(3600);
        for other in ["b", "c", "d"] {
            let p = g.admit("fw", other, later).expect(other);
            g.record(other, p, Outcome::Authorized, later, 0.0);
        }
        assert_eq!(
            g.admit("fw", "a", later).unwrap_err().reason(),
            "CredentialFrozen"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn fortisync_alone_never_reaches_the_threshold() {
        let mut g = GuardState::new(POLICY);
        let now = Instant::now();
        let a = g.admit("fw", "k1", now).expect("k1");
        g.record("k1", a, Outcome::Refused, now, 0.0);
        let b = g
            .admit("fw", "k2", now)
            .expect("k2: 2 failures stay below 3");
        g.record("k2", b, Outcome::Refused, now, 0.0);
        let held = g.admit("fw", "k3", now).unwrap_err();
        assert_eq!(held.reason(), "AuthBudgetExhausted");
        assert_eq!(held.retry_after(), Some(Duration::from_secs(60)));
        assert_eq!(
            g.admit("fw", "k3", now + Duration::from_secs(60)),
            Ok(Admission::Normal)
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_lockout_blocks_everything_for_the_window_then_admits_one_probe() {
        let mut g = GuardState::new(POLICY);
        let now = Instant::now();
        let a = g.admit("fw", "k", now).expect("k");
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
        assert_eq!(g.admit("fw", "k", after), Ok(Admission::Probe));
        assert_eq!(
            g.admit("fw", "other", after).unwrap_err().reason(),
            "LockedOut",
            "one probe at a time"
        );
        g.record("k", Admission::Probe, Outcome::Authorized, after, 0.0);
        assert_eq!(g.breaker(after), BreakerState::Closed);
        assert_eq!(g.admit("fw", "k", after), Ok(Admission::Normal));
    }

    #[tokio::test(start_paused = true)]
    async fn repeat_lockouts_double_the_window_and_jitter_only_lengthens_it() {
        let mut g = GuardState::new(POLICY);
        let mut now = Instant::now();
        let mut windows = Vec::new();
        for _ in 0..3 {
            let a = g.admit("fw", "k", now).expect("admitted");
            let w = g
                .record("k", a, Outcome::LockedOut, now, 0.0)
                .expect("window");
            windows.push(w.as_secs());
            now += w;
        }
        assert_eq!(windows, [60, 120, 240]);
        let mut j = GuardState::new(POLICY);
        let a = j.admit("fw", "k", now).expect("admitted");
        let w = j
            .record("k", a, Outcome::LockedOut, now, 1.0)
            .expect("window");
        assert!(w >= Duration::from_secs(60) && w <= Duration::from_secs(66));
    }

    #[tokio::test(start_paused = true)]
    async fn a_probe_without_verdict_allows_another_probe() {
        let mut g = GuardState::new(POLICY);
        let now = Instant::now();
        let a = g.admit("fw", "k", now).expect("k");
        g.record("k", a, Outcome::LockedOut, now, 0.0);
        let later = now + Duration::from_secs(61);
        let p = g.admit("fw", "k", later).expect("probe");
        g.record("k", p, Outcome::NoVerdict, later, 0.0);
        assert_eq!(g.admit("fw", "k", later), Ok(Admission::Probe));
    }

    #[tokio::test(start_paused = true)]
    async fn property_any_outcome_sequence_never_sends_a_frozen_credential_or_inside_a_window() {
        // Deterministic pseudo-random sequences of outcomes and time steps.
        let mut seed = 0x2545_f491_u64;
        let mut next = || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        for _ in 0..200 {
            let mut g = GuardState::new(POLICY);
            let mut now = Instant::now();
            let mut failures_in_window: Vec<Instant> = Vec::new();
            let mut locked_until: Option<Instant> = None;
            for _ in 0..50 {
                now += Duration::from_secs(next() % 40);
                let fp = format!("k{}", next() % 3);
                let frozen = g.is_frozen(&fp);
                if let Ok(admission) = g.admit("fw", &fp, now) {
                    {
                        assert!(!frozen, "a frozen credential was admitted");
                        assert!(
                            locked_until.is_none_or(|u| now >= u),
                            "admitted inside a lockout window"
                        );
                        let outcome = match next() % 4 {
                            0 => Outcome::Authorized,
                            1 => Outcome::Refused,
                            2 => Outcome::LockedOut,
                            _ => Outcome::NoVerdict,
                        };
                        if outcome == Outcome::Refused {
                            failures_in_window.retain(|t| now.duration_since(*t) < POLICY.duration);
                            failures_in_window.push(now);
                            assert!(
                                failures_in_window.len() < POLICY.threshold as usize,
                                "fortisync reached the threshold"
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
}
