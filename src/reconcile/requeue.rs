//! When to look at a resource again: the resync interval with jitter (so resources created
//! together do not resync together), or just after the nearest expiry.

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
    let jittered = jittered(resync);
    match next_expiry {
        Some(at) => {
            let until = Duration::try_from(at.duration_since(now)).unwrap_or(Duration::ZERO);
            jittered.min(until + Duration::from_millis(50))
        }
        None => jittered,
    }
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
}
