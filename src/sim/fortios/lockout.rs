//! The administrative lockout, per source IP, as KB 362817 describes it (facts page §7):
//! failures within `admin-lockout-duration` are counted; at `admin-lockout-threshold` the IP is
//! locked for the duration; while locked every request is refused with 429 without checking
//! the key and counts neither way; a success resets the count; each repeat lockout of an
//! API-key source doubles the duration. The simulator also resets the doubling on a success
//! (when it resets on a device is UNCONFIRMED) and on reboot.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::Duration;

use tokio::time::Instant;

/// The device's lockout settings (`config system global`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LockoutSettings {
    /// `admin-lockout-threshold`, 1–10.
    pub threshold: u32,
    /// `admin-lockout-duration` in seconds.
    pub duration: Duration,
}

#[derive(Debug, Default, Clone)]
struct IpState {
    failures: Vec<Instant>,
    locked_until: Option<Instant>,
    /// Lockouts of an API-key source so far, for the doubling.
    api_lockouts: u32,
}

/// What a failed attempt did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureOutcome {
    /// Counted: `n` of `threshold` within the window.
    Counted(u32),
    /// This failure locked the IP out for the duration.
    LockedOut(Duration),
}

/// Lockout state of every source IP of one device.
#[derive(Debug, Default, Clone)]
pub struct LockoutBook {
    ips: HashMap<IpAddr, IpState>,
}

impl LockoutBook {
    /// Time left in `ip`'s lockout, if it is locked now.
    pub fn locked(&self, ip: IpAddr, now: Instant) -> Option<Duration> {
        let until = self.ips.get(&ip)?.locked_until?;
        (until > now).then(|| until - now)
    }

    /// Records a failed authentication from `ip` (call only when not locked).
    pub fn fail(
        &mut self,
        ip: IpAddr,
        api_key: bool,
        settings: LockoutSettings,
        now: Instant,
    ) -> FailureOutcome {
        let state = self.ips.entry(ip).or_default();
        state
            .failures
            .retain(|t| now.duration_since(*t) < settings.duration);
        state.failures.push(now);
        let count = state.failures.len() as u32;
        if count < settings.threshold {
            return FailureOutcome::Counted(count);
        }
        state.failures.clear();
        let duration = if api_key {
            let factor = 2u32.saturating_pow(state.api_lockouts.min(20));
            state.api_lockouts += 1;
            settings.duration.saturating_mul(factor)
        } else {
            settings.duration
        };
        state.locked_until = Some(now + duration);
        FailureOutcome::LockedOut(duration)
    }

    /// A successful authentication from `ip` resets its count completely.
    pub fn succeed(&mut self, ip: IpAddr) {
        self.ips.remove(&ip);
    }

    /// Failures currently counted for `ip` within the window.
    pub fn failures(&self, ip: IpAddr, settings: LockoutSettings, now: Instant) -> u32 {
        self.ips.get(&ip).map_or(0, |s| {
            s.failures
                .iter()
                .filter(|t| now.duration_since(**t) < settings.duration)
                .count() as u32
        })
    }

    /// Lowering `admin-lockout-duration` also ends pending lockouts sooner (KB 219176).
    pub fn cap_pending(&mut self, settings: LockoutSettings, now: Instant) {
        for state in self.ips.values_mut() {
            if let Some(until) = state.locked_until {
                state.locked_until = Some(until.min(now + settings.duration));
            }
        }
    }

    /// A reboot clears every lockout.
    pub fn clear(&mut self) {
        self.ips.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const IP: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(127, 0, 0, 2));
    const OTHER: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(127, 0, 0, 3));
    const SETTINGS: LockoutSettings = LockoutSettings {
        threshold: 3,
        duration: Duration::from_secs(60),
    };

    #[tokio::test(start_paused = true)]
    async fn third_failure_within_the_window_locks_the_ip_only() {
        let mut book = LockoutBook::default();
        let now = Instant::now();
        assert_eq!(
            book.fail(IP, true, SETTINGS, now),
            FailureOutcome::Counted(1)
        );
        assert_eq!(
            book.fail(IP, true, SETTINGS, now),
            FailureOutcome::Counted(2)
        );
        assert_eq!(
            book.fail(IP, true, SETTINGS, now),
            FailureOutcome::LockedOut(Duration::from_secs(60))
        );
        assert_eq!(book.locked(IP, now), Some(Duration::from_secs(60)));
        assert_eq!(book.locked(OTHER, now), None);
        assert_eq!(book.locked(IP, now + Duration::from_secs(60)), None);
    }

    #[tokio::test(start_paused = true)]
    async fn failures_older_than_the_window_do_not_count() {
        let mut book = LockoutBook::default();
        let now = Instant::now();
        book.fail(IP, true, SETTINGS, now);
        book.fail(IP, true, SETTINGS, now);
        let later = now + Duration::from_secs(61);
        assert_eq!(
            book.fail(IP, true, SETTINGS, later),
            FailureOutcome::Counted(1)
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_success_resets_the_count() {
        let mut book = LockoutBook::default();
        let now = Instant::now();
        book.fail(IP, true, SETTINGS, now);
        book.fail(IP, true, SETTINGS, now);
        book.succeed(IP);
        assert_eq!(book.failures(IP, SETTINGS, now), 0);
        assert_eq!(
            book.fail(IP, true, SETTINGS, now),
            FailureOutcome::Counted(1)
        );
    }

    #[tokio::test(start_paused = true)]
    async fn repeat_api_key_lockouts_double_and_password_lockouts_do_not() {
        let mut book = LockoutBook::default();
        let mut now = Instant::now();
        for expected in [60, 120, 240] {
            for _ in 0..2 {
                book.fail(IP, true, SETTINGS, now);
            }
            assert_eq!(
                book.fail(IP, true, SETTINGS, now),
                FailureOutcome::LockedOut(Duration::from_secs(expected))
            );
            now += Duration::from_secs(expected);
        }
        for _ in 0..2 {
            book.fail(OTHER, false, SETTINGS, now);
        }
        book.fail(OTHER, false, SETTINGS, now);
        for _ in 0..3 {
            book.fail(OTHER, false, SETTINGS, now + Duration::from_secs(60));
        }
        assert_eq!(
            book.locked(OTHER, now + Duration::from_secs(60)),
            Some(Duration::from_secs(60))
        );
    }

    #[tokio::test(start_paused = true)]
    async fn lowering_the_duration_shortens_a_pending_lockout() {
        let mut book = LockoutBook::default();
        let now = Instant::now();
        for _ in 0..3 {
            book.fail(IP, true, SETTINGS, now);
        }
        book.cap_pending(
            LockoutSettings {
                threshold: 3,
                duration: Duration::from_secs(5),
            },
            now,
        );
        assert_eq!(book.locked(IP, now), Some(Duration::from_secs(5)));
    }
}
