//! When to look at a resource again: the resync interval with jitter (so resources created
//! together do not resync together), or just after the nearest expiry.
//!
//! Kinds that batch per device resync on the device's clock instead (`next_requeue_aligned`):
//! every resource of one device wakes on the same tick, so one observation serves them all
//! (`reconcile::batch`), and devices' ticks are spread by their name so they do not all wake
//! at once.

use std::time::Duration;

/// `interval` scaled by a random factor in [0.9, 1.1).
pub fn jittered(interval: Duration) -> Duration {
    interval.mul_f64(0.9 + rand::random::<f64>() * 0.2)
}

/// The next reconcile: the resync interval (±10% jitter), or just after the nearest expiry.
pub fn next_requeue(
    resync: Duration,
    next_expiry: Option<jiff::Timestamp>,
    now: jiff::Timestamp,
) -> Duration {
    sooner_expiry(jittered(resync), next_expiry, now)
}

/// `wake`, or just after the nearest expiry when that comes first.
fn sooner_expiry(
    wake: Duration,
    next_expiry: Option<jiff::Timestamp>,
    now: jiff::Timestamp,
) -> Duration {
    match next_expiry {
        Some(at) => {
            let until = Duration::try_from(at.duration_since(now)).unwrap_or(Duration::ZERO);
            wake.min(until + Duration::from_millis(50))
        }
        None => wake,
    }
}

/// The next reconcile on `device`'s resync clock: its next tick at least half an interval
/// away (a pass just done is not redone at once), or just after the nearest expiry. Ticks are
/// `resync` apart, at an offset within the interval derived from the device's name.
pub fn next_requeue_aligned(
    resync: Duration,
    device: &str,
    next_expiry: Option<jiff::Timestamp>,
    now: jiff::Timestamp,
) -> Duration {
    sooner_expiry(until_tick(resync, device, now), next_expiry, now)
}

fn until_tick(resync: Duration, device: &str, now: jiff::Timestamp) -> Duration {
    let period = resync.as_millis().max(1) as i128;
    // FNV-1a: stable across processes and releases, so replicas and restarts share ticks.
    let offset = device.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    }) as i128
        % period;
    let earliest = now.as_millisecond() as i128 + period / 2;
    // The first tick (offset + k·period) at or after `earliest`.
    let k = (earliest - offset).div_euclid(period)
        + i128::from((earliest - offset).rem_euclid(period) != 0);
    let at = offset + k * period;
    Duration::from_millis((at - now.as_millisecond() as i128).max(0) as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_next_reconcile_is_the_jittered_resync_or_just_after_the_nearest_expiry() {
        let now: jiff::Timestamp = "2030-01-01T00:00:00Z".parse().expect("t");
        let resync = Duration::from_secs(300);
        for _ in 0..100 {
            let d = next_requeue(resync, None, now);
            assert!(d >= Duration::from_secs(270) && d <= Duration::from_secs(330));
        }
        let soon: jiff::Timestamp = "2030-01-01T00:00:10Z".parse().expect("t");
        assert_eq!(
            next_requeue(resync, Some(soon), now),
            Duration::from_millis(10_050)
        );
        let past: jiff::Timestamp = "2029-12-31T23:59:00Z".parse().expect("t");
        assert_eq!(
            next_requeue(resync, Some(past), now),
            Duration::from_millis(50)
        );
    }

    #[test]
    fn aligned_resyncs_of_one_device_wake_on_one_tick_at_least_half_an_interval_away() {
        let resync = Duration::from_secs(300);
        let start: jiff::Timestamp = "2030-01-01T00:00:00Z".parse().expect("t");
        let wake = |device: &str, after_ms: i64| {
            let now = start + jiff::SignedDuration::from_millis(after_ms);
            now + jiff::SignedDuration::try_from(next_requeue_aligned(resync, device, None, now))
                .expect("fits")
        };
        // Passes of one device ending at different moments all wake on the same tick.
        let tick = wake("fw-1", 0);
        for after in [1, 900, 7_000, 149_000] {
            let at = wake("fw-1", after);
            assert!(
                at == tick || at == tick + jiff::SignedDuration::from_secs(300),
                "{after}"
            );
        }
        for after in [0, 1, 149_999, 150_000, 299_999] {
            let now = start + jiff::SignedDuration::from_millis(after);
            let d = next_requeue_aligned(resync, "fw-1", None, now);
            assert!(
                d >= Duration::from_secs(150) && d <= Duration::from_secs(450),
                "{d:?}"
            );
        }
        // A pass run on the tick wakes exactly one interval later.
        let on_tick = next_requeue_aligned(resync, "fw-1", None, tick);
        assert_eq!(on_tick, resync);
        // Devices spread over the interval.
        let offsets: std::collections::BTreeSet<_> = (0..20)
            .map(|i| wake(&format!("fw-{i}"), 0).as_second() % 300)
            .collect();
        assert!(offsets.len() > 10, "{offsets:?}");
        // An expiry sooner than the tick wins.
        let soon = start + jiff::SignedDuration::from_secs(10);
        assert_eq!(
            next_requeue_aligned(resync, "fw-1", Some(soon), start),
            Duration::from_millis(10_050)
        );
    }
}
