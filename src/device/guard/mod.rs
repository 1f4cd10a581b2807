//! The Guard: one per device and source address, shared by every connection (every tenant, every
//! credential) that targets it. It stands between fortisync and the device's lockout
//! (troubleshooting F3, F6):
//!
//! - a credential the device refused is frozen for good under its fingerprint: at most one
//!   failed attempt per credential content; a changed Secret is a new fingerprint, and no other
//!   connection's rebuild or rotation unfreezes it;
//! - failed logins are budgeted per device and source address, whoever's keys they are, so
//!   fortisync never reaches `admin-lockout-threshold`; keys not accepted yet leave one slot for
//!   keys that work (see [`budget`]);
//! - a 429 opens the breaker for the whole device for the lockout window (doubling on repeats,
//!   with jitter); after it exactly one probe is admitted; success closes the breaker;
//! - requests in flight are limited per device, and never to more than `threshold - 1` minus
//!   the recent failures, so keys revoked while requests are in flight cannot fail often enough
//!   to lock the IP out;
//! - a credential the device has not accepted yet is tried by one request at a time: the
//!   others wait for its verdict (a wrong new key fails once, not once per caller).
//!
//! [`GuardState`] is the pure machine; [`Guard`] wraps it with a semaphore, waiting and metrics.

pub mod budget;
pub mod state;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;

use super::error::DeviceError;
use super::metrics::DeviceMetrics;
use crate::api::common::BreakerState;

pub use state::{Admission, GuardState, LockoutPolicy, Outcome};

/// The guard of one device endpoint: state machine + concurrency limit + metrics.
pub struct Guard {
    device: String,
    state: Arc<Mutex<GuardState>>,
    permits: Arc<Semaphore>,
    /// Permits the semaphore holds now (follows the lockout policy).
    limit: Mutex<usize>,
    max_concurrent: usize,
    /// Held by the one request that tries a credential not yet accepted.
    trial: Arc<tokio::sync::Mutex<()>>,
    /// Woken whenever a request leaves flight, for requests waiting on the failed-login budget.
    settled: Arc<Notify>,
    metrics: DeviceMetrics,
}

/// An admitted request: holds a concurrency permit (and the trial of an unconfirmed
/// credential) until dropped, so an early return never strands a waiter; dropped without a
/// recorded outcome it still leaves flight.
pub struct Pass {
    admission: Admission,
    recorded: bool,
    state: Arc<Mutex<GuardState>>,
    settled: Arc<Notify>,
    _permit: OwnedSemaphorePermit,
    _trial: Option<tokio::sync::OwnedMutexGuard<()>>,
}

impl Drop for Pass {
    fn drop(&mut self) {
        if !self.recorded {
            lock(&self.state).release(self.admission);
        }
        self.settled.notify_waiters();
    }
}

fn lock(state: &Mutex<GuardState>) -> std::sync::MutexGuard<'_, GuardState> {
    state.lock().unwrap_or_else(|p| p.into_inner())
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
            state: Arc::new(Mutex::new(GuardState::new(policy))),
            permits: Arc::new(Semaphore::new(limit)),
            limit: Mutex::new(limit),
            max_concurrent: max_concurrent.max(1),
            trial: Arc::new(tokio::sync::Mutex::new(())),
            settled: Arc::new(Notify::new()),
            metrics,
        }
    }

    /// Requests in flight at most (the configured limit, kept below the lockout threshold).
    pub fn max_concurrent(&self) -> usize {
        *self.limit.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn state(&self) -> std::sync::MutexGuard<'_, GuardState> {
        lock(&self.state)
    }

    /// Device name (the connection that first reached the device), for metrics and logs.
    pub fn device(&self) -> &str {
        &self.device
    }

    /// Waits for a concurrency slot (and, for a credential not accepted yet, for the trial and
    /// room in the failed-login budget), then asks the state machine. Refusals cost no I/O and
    /// name `caller`, the connection asking: the guard is shared with other tenants, whose
    /// names must not appear in this one's errors.
    pub async fn admit(&self, caller: &str, fingerprint: &str) -> Result<Pass, DeviceError> {
        // Check before queueing, so a frozen credential, an open breaker or a spent budget
        // never waits.
        self.state().check(caller, fingerprint, Instant::now())?;
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
                        device: caller.to_string(),
                        ..Default::default()
                    },
                    detail: "the endpoint is shutting down".into(),
                })?;
        let admission = loop {
            // Registered before asking, so a request settling in between is not missed.
            let settled = self.settled.notified();
            tokio::pin!(settled);
            settled.as_mut().enable();
            if let Some(admission) = self.state().admit(caller, fingerprint, Instant::now())? {
                break admission;
            }
            settled.await;
        };
        if admission == Admission::Probe {
            tracing::info!(device = %self.device, "lockout window over: sending one probe");
        }
        Ok(Pass {
            admission,
            recorded: false,
            state: self.state.clone(),
            settled: self.settled.clone(),
            _permit: permit,
            _trial: trial,
        })
    }

    /// Records an admitted request's outcome; returns the lockout window when it opened one.
    pub fn record(&self, mut pass: Pass, fingerprint: &str, outcome: Outcome) -> Option<Duration> {
        let now = Instant::now();
        let jitter = rand::random::<f64>();
        let (window, breaker) = {
            let mut state = self.state();
            let window = state.record(fingerprint, pass.admission, outcome, now, jitter);
            (window, state.breaker(now))
        };
        pass.recorded = true;
        drop(pass);
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

    /// Whether the device has accepted `fingerprint` (and not refused it since).
    pub fn is_confirmed(&self, fingerprint: &str) -> bool {
        self.state().is_confirmed(fingerprint)
    }

    /// No connection uses `fingerprint` any more (its Secret changed): it stops counting as a
    /// working credential to keep budget for. A freeze is never lifted.
    pub fn retire(&self, fingerprint: &str) {
        self.state().retire(fingerprint);
    }

    /// The metrics this guard reports to.
    pub fn metrics(&self) -> &DeviceMetrics {
        &self.metrics
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const POLICY: LockoutPolicy = LockoutPolicy {
        threshold: 3,
        duration: Duration::from_secs(60),
    };

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

    #[tokio::test(start_paused = true)]
    async fn an_unconfirmed_credential_is_tried_by_one_request_at_a_time() {
        let guard = Arc::new(Guard::new("fw", POLICY, 4, DeviceMetrics::default()));
        let first = guard
            .admit("ns/fw", "new-key")
            .await
            .expect("the trial goes out");
        let waiter = {
            let guard = guard.clone();
            tokio::spawn(async move { guard.admit("ns/fw", "new-key").await.map(|_| ()) })
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

    #[tokio::test(start_paused = true)]
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
        let trial = guard.admit("ns/fw", "key").await.expect("trial");
        guard.record(trial, "key", Outcome::Authorized);
        let a = guard.admit("ns/fw", "key").await.expect("a");
        let b = tokio::time::timeout(Duration::from_secs(1), guard.admit("ns/fw", "key"))
            .await
            .expect("not serialised once confirmed")
            .expect("b");
        guard.record(a, "key", Outcome::Authorized);
        guard.record(b, "key", Outcome::Authorized);
    }

    #[tokio::test(start_paused = true)]
    async fn after_a_failure_a_working_key_waits_for_its_requests_in_flight_instead_of_failing() {
        // Threshold 3: one failure leaves room for one more, so a second request of the good
        // key waits for the first one's verdict (a revoked key then fails at most twice).
        let guard = Arc::new(Guard::new("fw", POLICY, 4, DeviceMetrics::default()));
        let good = guard.admit("a/fw", "good").await.expect("good trial");
        guard.record(good, "good", Outcome::Authorized);
        let wrong = guard.admit("b/fw", "wrong").await.expect("wrong trial");
        guard.record(wrong, "wrong", Outcome::Refused);
        let first = guard.admit("a/fw", "good").await.expect("first");
        let second = {
            let guard = guard.clone();
            tokio::spawn(async move {
                let pass = guard.admit("a/fw", "good").await?;
                guard.record(pass, "good", Outcome::Authorized);
                Ok::<_, DeviceError>(())
            })
        };
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(!second.is_finished(), "the second request waits");
        guard.record(first, "good", Outcome::Authorized);
        second
            .await
            .expect("join")
            .expect("then goes out without an error");
    }

    #[tokio::test(start_paused = true)]
    async fn a_pass_dropped_without_a_verdict_leaves_flight() {
        let guard = Guard::new(
            "fw",
            LockoutPolicy {
                threshold: 2,
                ..POLICY
            },
            4,
            DeviceMetrics::default(),
        );
        let trial = guard.admit("ns/fw", "key").await.expect("trial");
        guard.record(trial, "key", Outcome::Authorized);
        drop(
            guard
                .admit("ns/fw", "key")
                .await
                .expect("cancelled request"),
        );
        let again = tokio::time::timeout(Duration::from_secs(1), guard.admit("ns/fw", "key"))
            .await
            .expect("the dropped request no longer counts in flight");
        assert!(again.is_ok());
    }

    #[tokio::test(start_paused = true)]
    async fn refusals_name_the_connection_asking_not_the_one_that_created_the_guard() {
        let guard = Guard::new("tenant-a/fw", POLICY, 4, DeviceMetrics::default());
        let good = guard.admit("tenant-a/fw", "good").await.expect("good");
        guard.record(good, "good", Outcome::Authorized);
        let pass = guard.admit("tenant-b/fw", "wrong").await.expect("trial");
        guard.record(pass, "wrong", Outcome::Refused);
        let frozen = guard
            .admit("tenant-b/fw", "wrong")
            .await
            .err()
            .expect("frozen");
        let held = guard
            .admit("tenant-b/fw2", "other")
            .await
            .err()
            .expect("held");
        for e in [frozen, held] {
            assert!(e.to_string().starts_with("tenant-b/"), "{e}");
            assert!(!e.to_string().contains("tenant-a"), "{e}");
        }
    }
}
