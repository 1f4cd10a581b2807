//! Reconcile metrics under the controller-runtime names operators already chart and alert on.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

/// Labels of a reconcile outcome.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ResultLabels {
    /// Controller name, e.g. `addressgroup`.
    pub controller: String,
    /// `success`, `error` or `requeue`.
    pub result: String,
}

/// Labels of an error.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ErrorLabels {
    /// Controller name.
    pub controller: String,
    /// Stable error reason (e.g. `Unauthorized`).
    pub reason: String,
}

/// Labels naming a controller.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ControllerLabels {
    /// Controller name.
    pub controller: String,
}

/// Labels naming a connection resource (`FortiGate` or `FortiManager`).
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ConnectionLabels {
    /// `<namespace>/<name>` of the connection resource.
    pub connection: String,
    /// `FortiGate` or `FortiManager`: the two kinds may share a name in one namespace.
    pub kind: String,
}

/// Reconcile counters and timings.
#[derive(Clone)]
pub struct ReconcileMetrics {
    /// `controller_runtime_reconcile_total`
    pub reconciles: Family<ResultLabels, Counter>,
    /// `controller_runtime_reconcile_errors_total`
    pub errors: Family<ErrorLabels, Counter>,
    /// `controller_runtime_reconcile_time_seconds`
    pub duration: Family<ControllerLabels, Histogram>,
    /// `fortisync_drift_repairs_total`: out-of-band changes reverted.
    pub drift_repairs: Family<ControllerLabels, Counter>,
    /// `fortisync_connection_insecure_tls`: 1 while a connection skips certificate checks.
    pub insecure_tls: Family<ConnectionLabels, Gauge>,
}

impl ReconcileMetrics {
    /// Creates the metrics and registers them.
    pub fn register(registry: &mut Registry) -> Self {
        let metrics = Self {
            reconciles: Family::default(),
            errors: Family::default(),
            duration: Family::new_with_constructor(|| {
                Histogram::new([
                    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
                ])
            }),
            drift_repairs: Family::default(),
            insecure_tls: Family::default(),
        };
        registry.register(
            "controller_runtime_reconcile",
            "Reconciliations per controller and result",
            metrics.reconciles.clone(),
        );
        registry.register(
            "controller_runtime_reconcile_errors",
            "Reconcile errors per controller and reason",
            metrics.errors.clone(),
        );
        registry.register(
            "controller_runtime_reconcile_time_seconds",
            "Time spent in one reconcile",
            metrics.duration.clone(),
        );
        registry.register(
            "fortisync_drift_repairs",
            "Out-of-band device changes reverted",
            metrics.drift_repairs.clone(),
        );
        registry.register(
            "fortisync_connection_insecure_tls",
            "1 while a connection does not verify the device's TLS certificate (spec.tls.insecureSkipVerify)",
            metrics.insecure_tls.clone(),
        );
        metrics
    }

    /// Sets the insecure-TLS gauge of one connection; true when it was not already 1 (the
    /// first probe of an insecure connection since start, or since it turned insecure).
    pub fn insecure_tls(&self, kind: &str, connection: &str, insecure: bool) -> bool {
        let before = self
            .insecure_tls
            .get_or_create(&ConnectionLabels {
                connection: connection.to_string(),
                kind: kind.to_string(),
            })
            .set(i64::from(insecure));
        insecure && before != 1
    }

    /// Drops the insecure-TLS gauge of a deleted connection.
    pub fn forget_connection(&self, kind: &str, connection: &str) {
        self.insecure_tls.remove(&ConnectionLabels {
            connection: connection.to_string(),
            kind: kind.to_string(),
        });
    }

    /// Records one reconcile's outcome and duration.
    pub fn observe(&self, controller: &str, result: &str, seconds: f64) {
        self.reconciles
            .get_or_create(&ResultLabels {
                controller: controller.to_string(),
                result: result.to_string(),
            })
            .inc();
        self.duration
            .get_or_create(&ControllerLabels {
                controller: controller.to_string(),
            })
            .observe(seconds);
    }

    /// Records an error by reason.
    pub fn error(&self, controller: &str, reason: &str) {
        self.errors
            .get_or_create(&ErrorLabels {
                controller: controller.to_string(),
                reason: reason.to_string(),
            })
            .inc();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metrics_use_controller_runtime_names() {
        let mut registry = Registry::default();
        let metrics = ReconcileMetrics::register(&mut registry);
        metrics.observe("addressgroup", "success", 0.01);
        metrics.error("addressgroup", "Unauthorized");
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &registry).expect("encode");
        assert!(text.contains("controller_runtime_reconcile_total{controller=\"addressgroup\",result=\"success\"} 1"), "{text}");
        assert!(text.contains("controller_runtime_reconcile_errors_total{controller=\"addressgroup\",reason=\"Unauthorized\"} 1"), "{text}");
        assert!(
            text.contains(
                "controller_runtime_reconcile_time_seconds_count{controller=\"addressgroup\"} 1"
            ),
            "{text}"
        );
    }

    #[test]
    fn the_insecure_tls_gauge_is_one_per_connection_and_new_only_once() {
        let mut registry = Registry::default();
        let metrics = ReconcileMetrics::register(&mut registry);
        assert!(
            metrics.insecure_tls("FortiGate", "ns/fw", true),
            "first probe"
        );
        assert!(
            !metrics.insecure_tls("FortiGate", "ns/fw", true),
            "second probe"
        );
        assert!(!metrics.insecure_tls("FortiManager", "ns/fw", false));
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &registry).expect("encode");
        assert!(
            text.contains(
                "fortisync_connection_insecure_tls{connection=\"ns/fw\",kind=\"FortiGate\"} 1"
            ),
            "{text}"
        );
        assert!(
            text.contains(
                "fortisync_connection_insecure_tls{connection=\"ns/fw\",kind=\"FortiManager\"} 0"
            ),
            "{text}"
        );
        // Verification back on, then off again: the warning is due again.
        assert!(!metrics.insecure_tls("FortiGate", "ns/fw", false));
        assert!(metrics.insecure_tls("FortiGate", "ns/fw", true));
        metrics.forget_connection("FortiGate", "ns/fw");
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &registry).expect("encode");
        assert!(!text.contains("kind=\"FortiGate\""), "{text}");
    }
}
