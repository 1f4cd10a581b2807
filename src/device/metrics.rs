//! Per-device metrics: requests by method and outcome, lockouts seen, auth failures, breaker
//! state. Labels never carry a secret or a full URL.

use std::sync::Arc;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

use crate::api::common::BreakerState;

/// Labels of one device request.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    /// Device name.
    pub device: String,
    /// HTTP or JSON-RPC method.
    pub method: String,
    /// `ok` or an error reason.
    pub outcome: String,
}

/// Labels naming a device.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DeviceLabels {
    /// Device name.
    pub device: String,
}

/// Buckets of one device request's time: a LAN answer takes milliseconds, a FortiManager
/// commit or a slow WAN link seconds, the client's timeout is 15 s.
fn duration_histogram() -> Histogram {
    Histogram::new([0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 15.0])
}

/// Device metrics, cheap to clone (shared families).
#[derive(Clone)]
pub struct DeviceMetrics {
    requests: Family<RequestLabels, Counter>,
    durations: Family<DeviceLabels, Histogram, fn() -> Histogram>,
    lockouts: Family<DeviceLabels, Counter>,
    auth_failures: Family<DeviceLabels, Counter>,
    breaker: Family<DeviceLabels, Gauge>,
    _registered: Option<Arc<()>>,
}

impl Default for DeviceMetrics {
    fn default() -> Self {
        Self {
            requests: Family::default(),
            durations: Family::new_with_constructor(duration_histogram),
            lockouts: Family::default(),
            auth_failures: Family::default(),
            breaker: Family::default(),
            _registered: None,
        }
    }
}

impl DeviceMetrics {
    /// Creates the families and registers them.
    pub fn register(registry: &mut Registry) -> Self {
        let m = Self {
            _registered: Some(Arc::new(())),
            ..Self::default()
        };
        registry.register(
            "fortisync_device_requests",
            "Requests sent to devices, by method and outcome",
            m.requests.clone(),
        );
        registry.register(
            "fortisync_device_request_duration_seconds",
            "Time from sending a device request to its whole answer (or the transport's failure)",
            m.durations.clone(),
        );
        registry.register(
            "fortisync_device_lockouts",
            "HTTP 429 lockouts seen per device",
            m.lockouts.clone(),
        );
        registry.register(
            "fortisync_device_auth_failures",
            "Credentials refused per device",
            m.auth_failures.clone(),
        );
        registry.register(
            "fortisync_device_breaker_state",
            "Lockout breaker: 0 closed, 1 half-open, 2 open",
            m.breaker.clone(),
        );
        m
    }

    /// Counts one request.
    pub fn request(&self, device: &str, method: &str, outcome: &str) {
        self.requests
            .get_or_create(&RequestLabels {
                device: device.into(),
                method: method.into(),
                outcome: outcome.into(),
            })
            .inc();
    }

    /// Records how long one request to `device` took.
    pub fn duration(&self, device: &str, elapsed: std::time::Duration) {
        self.durations
            .get_or_create(&DeviceLabels {
                device: device.into(),
            })
            .observe(elapsed.as_secs_f64());
    }

    /// Counts a lockout.
    pub fn lockout(&self, device: &str) {
        self.lockouts
            .get_or_create(&DeviceLabels {
                device: device.into(),
            })
            .inc();
    }

    /// Counts a refused credential.
    pub fn auth_failure(&self, device: &str) {
        self.auth_failures
            .get_or_create(&DeviceLabels {
                device: device.into(),
            })
            .inc();
    }

    /// Sets the breaker gauge.
    pub fn breaker_state(&self, device: &str, state: BreakerState) {
        let value = match state {
            BreakerState::Closed => 0,
            BreakerState::HalfOpen => 1,
            BreakerState::Open => 2,
        };
        self.breaker
            .get_or_create(&DeviceLabels {
                device: device.into(),
            })
            .set(value);
    }

    /// Requests counted for `device` with `outcome` (for tests and `doctor`).
    pub fn requests_with(&self, device: &str, method: &str, outcome: &str) -> u64 {
        self.requests
            .get_or_create(&RequestLabels {
                device: device.into(),
                method: method.into(),
                outcome: outcome.into(),
            })
            .get()
    }
}
