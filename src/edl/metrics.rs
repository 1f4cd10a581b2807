//! EDL server metrics, registered once in the controller's registry.

use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

/// How a list request ended.
#[derive(Debug, Clone, Copy, Hash, PartialEq, Eq, EncodeLabelValue)]
#[allow(non_camel_case_types)]
pub enum Outcome {
    /// 200 with the body (GET or HEAD).
    served,
    /// 304: the FortiGate already holds this body.
    not_modified,
    /// 401: missing or wrong credentials, or an unknown list.
    unauthorized,
    /// 404: not a list URL.
    not_found,
}

/// The `outcome` label.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OutcomeLabels {
    /// See [`Outcome`].
    pub outcome: Outcome,
}

/// Counters and gauges of the EDL server.
#[derive(Clone, Default)]
pub struct EdlMetrics {
    /// `fortisync_edl_requests_total{outcome}`
    pub requests: Family<OutcomeLabels, Counter>,
    /// `fortisync_edl_auth_failures_total`
    pub auth_failures: Counter,
    /// `fortisync_edl_served_bytes_total`: body bytes sent on 200 GETs.
    pub bytes_served: Counter,
    /// `fortisync_edl_lists`
    pub lists: Gauge,
    /// `fortisync_edl_entries`: entries currently served, all lists.
    pub entries: Gauge,
    /// `fortisync_edl_body_builds_total`: bodies built (a change or an expiry each).
    pub builds: Counter,
}

impl EdlMetrics {
    /// Creates the metrics and registers them in `registry`.
    pub fn register(registry: &mut Registry) -> Self {
        let m = Self::default();
        registry.register(
            "fortisync_edl_requests",
            "EDL list requests by outcome",
            m.requests.clone(),
        );
        registry.register(
            "fortisync_edl_auth_failures",
            "EDL requests with missing or wrong credentials",
            m.auth_failures.clone(),
        );
        registry.register(
            "fortisync_edl_served_bytes",
            "EDL body bytes served",
            m.bytes_served.clone(),
        );
        registry.register(
            "fortisync_edl_lists",
            "EDL lists being served",
            m.lists.clone(),
        );
        registry.register(
            "fortisync_edl_entries",
            "EDL entries being served, all lists",
            m.entries.clone(),
        );
        registry.register(
            "fortisync_edl_body_builds",
            "EDL bodies built (one per change or expiry)",
            m.builds.clone(),
        );
        m
    }

    pub(crate) fn count(&self, outcome: Outcome) {
        self.requests
            .get_or_create(&OutcomeLabels { outcome })
            .inc();
    }
}
