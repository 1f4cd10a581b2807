//! What every reconcile shares: the kube client, the device endpoints (one Guard per device),
//! metrics, the event recorder, and device facts learned once per endpoint.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use kube::{Client, Resource};
use prometheus_client::registry::Registry;

use super::connection::{ResolvedConnection, resolve};
use super::error::ReconcileError;
use super::metrics::ReconcileMetrics;
use crate::api::addressgroup::{TargetKind, TargetRef};
use crate::device::{
    DeviceKind, DeviceMetrics, Endpoint, EndpointConfig, Endpoints, LockoutPolicy, TransportConfig,
};

/// Shared by every reconcile.
pub struct Context {
    /// Kubernetes client.
    pub client: Client,
    /// Device endpoints.
    pub endpoints: Endpoints,
    /// Reconcile metrics.
    pub metrics: ReconcileMetrics,
    recorder: Recorder,
    versions: Mutex<HashMap<String, String>>,
}

impl Context {
    /// A context registering its metrics in `registry`.
    pub fn new(client: Client, registry: &mut Registry) -> Self {
        let reporter = Reporter {
            controller: "fortisync".into(),
            instance: std::env::var("POD_NAME").ok(),
        };
        Self {
            recorder: Recorder::new(client.clone(), reporter),
            endpoints: Endpoints::new(DeviceMetrics::register(registry)),
            metrics: ReconcileMetrics::register(registry),
            client,
            versions: Mutex::new(HashMap::new()),
        }
    }

    /// Publishes an event; a failure to publish is logged, never fatal.
    pub async fn event<K: Resource<DynamicType = ()>>(
        &self,
        object: &K,
        type_: EventType,
        reason: &str,
        note: String,
    ) {
        let event = Event {
            type_,
            reason: reason.to_string(),
            note: Some(note.chars().take(1000).collect()),
            action: "Reconcile".into(),
            secondary: None,
        };
        if let Err(e) = self.recorder.publish(&event, &object.object_ref(&())).await {
            tracing::debug!(error = %e, "could not publish an event");
        }
    }

    /// Resolves a target to its endpoint (shared per device and credential).
    pub async fn endpoint(
        &self,
        namespace: &str,
        target: &TargetRef,
    ) -> Result<(Endpoint, ResolvedConnection), ReconcileError> {
        let resolved = resolve(&self.client, namespace, target).await?;
        let spec = &resolved.connection;
        let source_address = match &spec.source_address {
            Some(text) => Some(text.parse().map_err(|_| {
                ReconcileError::Spec(format!("spec.sourceAddress {text:?} is not an IP address"))
            })?),
            None => None,
        };
        let config = EndpointConfig {
            kind: match resolved.kind {
                TargetKind::FortiGate => DeviceKind::FortiGate,
                TargetKind::FortiManager => DeviceKind::FortiManager,
            },
            name: format!("{}/{}", resolved.namespace, resolved.name),
            url: spec.url.trim_end_matches('/').to_string(),
            scope: resolved.scope.clone(),
            credentials: resolved.credentials.clone(),
            transport: TransportConfig {
                ca_bundle_pem: resolved.ca_bundle_pem.clone(),
                insecure_skip_verify: spec.tls.insecure_skip_verify,
                source_address,
                timeout: Duration::from_secs(15),
            },
            max_concurrent: spec.max_concurrent_requests.clamp(1, 32) as usize,
            lockout: LockoutPolicy {
                threshold: spec.lockout.threshold,
                duration: Duration::from_secs(spec.lockout.duration_seconds.into()),
            },
            lock_retries: resolved
                .fortimanager
                .as_ref()
                .map_or(5, |f| f.workspace.lock_retries),
        };
        Ok((self.endpoints.get(&config)?, resolved))
    }

    /// The device version learned for `url`, if any.
    pub fn version(&self, url: &str) -> Option<String> {
        self.versions
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(url)
            .cloned()
    }

    /// Remembers the device version for `url`.
    pub fn remember_version(&self, url: &str, version: &str) {
        self.versions
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(url.to_string(), version.to_string());
    }
}
