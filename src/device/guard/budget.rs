//! The failed-login budget of one device and source address. A device counts failed logins per
//! source IP, whoever's key they carried, so the budget is per guard, not per credential.
//! Every admitted request may come back refused (a key revoked while it is in flight), so a
//! request goes out only while `failures + in flight` stays below the threshold. While some
//! credential works on the device, a credential it has not accepted yet may spend the budget
//! only down to one slot, which stays for the working ones: one tenant's wrong keys then hold
//! back further wrong keys, never another tenant's good key. With no working credential there
//! is nobody to keep a slot for, and a key rotated after a refusal is tried at once.

use std::time::Duration;

use tokio::time::Instant;

use super::state::LockoutPolicy;

impl LockoutPolicy {
    /// Failed logins fortisync may cause inside one window: one short of the threshold. With a
    /// threshold of 1 the first failure already locks the IP out; one attempt is still allowed,
    /// or a new connection could never be tried at all.
    pub fn failure_budget(&self) -> u32 {
        self.threshold.saturating_sub(1).max(1)
    }

    /// The part of the budget a credential not accepted yet may spend while others work: all
    /// but one slot, kept for them. A threshold of 2 or less leaves no slot to keep.
    pub fn trial_budget(&self) -> u32 {
        self.failure_budget().saturating_sub(1).max(1)
    }

    /// The stricter of two declarations of the same device: the lower threshold and the longer
    /// window. Tenants may declare a device differently; the device has one setting, and
    /// trusting the laxer one would let one tenant spend everyone's budget.
    pub fn strictest(self, other: Self) -> Self {
        Self {
            threshold: self.threshold.min(other.threshold),
            duration: self.duration.max(other.duration),
        }
    }
}

/// What the budget says about one more request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Room {
    /// It may go out.
    Send,
    /// There is room once a request in flight has its verdict.
    Wait,
    /// Spent: `failures` recent failures; room comes back after `retry_after`.
    Spent {
        failures: u32,
        retry_after: Duration,
    },
}

/// Failed logins fortisync caused from one source address, and the requests that may still
/// add one.
#[derive(Debug, Clone, Default)]
pub struct FailedLogins {
    /// When each failure was recorded, oldest first.
    at: Vec<Instant>,
    /// Admitted requests without a verdict yet.
    in_flight: u32,
}

impl FailedLogins {
    /// Whether one more request may go out, when its credential may spend `spendable` failures
    /// of the window (see [`LockoutPolicy::failure_budget`] and
    /// [`LockoutPolicy::trial_budget`]).
    pub fn room(&self, policy: LockoutPolicy, spendable: u32, now: Instant) -> Room {
        let recent: Vec<Instant> = self
            .at
            .iter()
            .copied()
            .filter(|t| now.duration_since(*t) < policy.duration)
            .collect();
        let failures = recent.len() as u32;
        if failures >= spendable {
            // Room comes back when enough of the oldest failures have left the window.
            let freeing = recent[(failures - spendable) as usize];
            return Room::Spent {
                failures,
                retry_after: (freeing + policy.duration).saturating_duration_since(now),
            };
        }
        if failures + self.in_flight >= policy.failure_budget() {
            return Room::Wait;
        }
        Room::Send
    }

    /// A request went out.
    pub fn sent(&mut self) {
        self.in_flight += 1;
    }

    /// A request came back (refused at `refused`, if it was) or was abandoned.
    pub fn settled(&mut self, refused: Option<Instant>) {
        self.in_flight = self.in_flight.saturating_sub(1);
        self.at.extend(refused);
    }

    /// Forgets failures older than the window.
    pub fn forget_expired(&mut self, window: Duration, now: Instant) {
        self.at.retain(|t| now.duration_since(*t) < window);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const POLICY: LockoutPolicy = LockoutPolicy {
        threshold: 4,
        duration: Duration::from_secs(60),
    };

    #[test]
    fn the_budget_keeps_one_slot_for_working_keys_when_the_threshold_allows_it() {
        let policy = |threshold| LockoutPolicy {
            threshold,
            ..POLICY
        };
        let budgets = |t| (policy(t).failure_budget(), policy(t).trial_budget());
        assert_eq!(budgets(1), (1, 1));
        assert_eq!(budgets(2), (1, 1));
        assert_eq!(budgets(3), (2, 1));
        assert_eq!(budgets(10), (9, 8));
        assert_eq!(
            policy(5).strictest(LockoutPolicy {
                threshold: 3,
                duration: Duration::from_secs(30)
            }),
            LockoutPolicy {
                threshold: 3,
                duration: Duration::from_secs(60)
            }
        );
    }

    #[tokio::test(start_paused = true)]
    async fn the_budget_frees_up_when_enough_old_failures_leave_the_window() {
        let start = Instant::now();
        let mut logins = FailedLogins::default();
        for at in [0, 10] {
            logins.sent();
            logins.settled(Some(start + Duration::from_secs(at)));
        }
        let now = start + Duration::from_secs(20);
        // The first failure leaves the window at 60 s, 40 s from now.
        assert_eq!(
            logins.room(POLICY, 2, now),
            Room::Spent {
                failures: 2,
                retry_after: Duration::from_secs(40)
            }
        );
        // With room for one more failure, the third may go out only while nothing is in flight.
        assert_eq!(logins.room(POLICY, 3, now), Room::Send);
        logins.sent();
        assert_eq!(logins.room(POLICY, 3, now), Room::Wait);
        logins.settled(None);
        assert_eq!(
            logins.room(POLICY, 2, start + Duration::from_secs(60)),
            Room::Send
        );
    }
}
