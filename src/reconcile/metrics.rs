//! Reconcile metrics under the controller-runtime names operators already chart and alert on.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
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
        metrics
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
}
