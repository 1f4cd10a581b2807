//! Endpoints: one client per device and credential, one Guard per device and source address
//! (a lockout is per source IP, so a new key must not reset what the device remembers).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use super::credentials::Credentials;
use super::error::DeviceError;
use super::fortimanager::FortiManagerClient;
use super::fortios::FortiOsClient;
use super::guard::{Guard, LockoutPolicy};
use super::metrics::DeviceMetrics;
use super::transport::TransportConfig;

/// Which API a device speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DeviceKind {
    /// FortiOS REST.
    FortiGate,
    /// FortiManager JSON-RPC.
    FortiManager,
}

/// Everything needed to talk to one device.
#[derive(Debug, Clone, PartialEq)]
pub struct EndpointConfig {
    /// API kind.
    pub kind: DeviceKind,
    /// Name for logs, metrics and errors (`<namespace>/<connection>`).
    pub name: String,
    /// `https://host:port`.
    pub url: String,
    /// VDOM or ADOM.
    pub scope: String,
    /// Credentials.
    pub credentials: Credentials,
    /// TLS, source address, timeout.
    pub transport: TransportConfig,
    /// Requests in flight at most.
    pub max_concurrent: usize,
    /// The device's lockout settings.
    pub lockout: LockoutPolicy,
    /// Attempts to take a FortiManager ADOM lock held by someone else.
    pub lock_retries: u32,
}

/// A ready client for one device.
#[derive(Clone)]
pub enum Endpoint {
    /// A FortiGate.
    FortiGate(Arc<FortiOsClient>),
    /// A FortiManager ADOM.
    FortiManager(Arc<FortiManagerClient>),
}

impl Endpoint {
    /// The device's guard.
    pub fn guard(&self) -> &Arc<Guard> {
        match self {
            Endpoint::FortiGate(c) => c.guard(),
            Endpoint::FortiManager(c) => c.guard(),
        }
    }
}

type GuardKey = (String, Option<IpAddr>);

/// Shares endpoints between every resource that targets the same device.
pub struct Endpoints {
    metrics: DeviceMetrics,
    guards: Mutex<HashMap<GuardKey, Arc<Guard>>>,
    clients: Mutex<HashMap<(String, String), (EndpointConfig, Endpoint)>>,
}

impl Endpoints {
    /// An empty registry reporting to `metrics`.
    pub fn new(metrics: DeviceMetrics) -> Self {
        Self {
            metrics,
            guards: Mutex::new(HashMap::new()),
            clients: Mutex::new(HashMap::new()),
        }
    }

    /// The endpoint for `config`: the existing one when nothing changed, a new client (same
    /// device guard) when the credential or settings changed.
    pub fn get(&self, config: &EndpointConfig) -> Result<Endpoint, DeviceError> {
        let key = (config.url.clone(), config.scope.clone());
        let mut clients = self.clients.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((existing, endpoint)) = clients.get(&key)
            && existing == config
        {
            return Ok(endpoint.clone());
        }
        let guard = self.guard(config);
        guard.credential_changed(&config.credentials.fingerprint());
        let endpoint = match config.kind {
            DeviceKind::FortiGate => Endpoint::FortiGate(Arc::new(FortiOsClient::new(
                config.name.clone(),
                &config.url,
                &config.scope,
                config.credentials.clone(),
                &config.transport,
                guard,
            )?)),
            DeviceKind::FortiManager => Endpoint::FortiManager(Arc::new(
                FortiManagerClient::new(
                    config.name.clone(),
                    &config.url,
                    &config.scope,
                    config.credentials.clone(),
                    &config.transport,
                    guard,
                )?
                .with_lock_retries(config.lock_retries, std::time::Duration::from_millis(500)),
            )),
        };
        clients.insert(key, (config.clone(), endpoint.clone()));
        Ok(endpoint)
    }

    fn guard(&self, config: &EndpointConfig) -> Arc<Guard> {
        let key = (config.url.clone(), config.transport.source_address);
        let mut guards = self.guards.lock().unwrap_or_else(|p| p.into_inner());
        let guard = guards
            .entry(key)
            .or_insert_with(|| {
                Arc::new(Guard::new(
                    config.name.clone(),
                    config.lockout,
                    config.max_concurrent,
                    self.metrics.clone(),
                ))
            })
            .clone();
        guard.set_policy(config.lockout);
        guard
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(token: &str) -> EndpointConfig {
        EndpointConfig {
            kind: DeviceKind::FortiGate,
            name: "ns/fw".into(),
            url: "https://127.0.0.1:1".into(),
            scope: "root".into(),
            credentials: Credentials::Token(token.into()),
            transport: TransportConfig::default(),
            max_concurrent: 4,
            lockout: LockoutPolicy::default(),
            lock_retries: 5,
        }
    }

    #[test]
    fn endpoints_are_shared_and_a_new_key_keeps_the_device_guard() {
        let endpoints = Endpoints::new(DeviceMetrics::default());
        let a = endpoints.get(&config("one")).expect("a");
        let b = endpoints.get(&config("one")).expect("b");
        assert!(Arc::ptr_eq(a.guard(), b.guard()));
        let (Endpoint::FortiGate(ca), Endpoint::FortiGate(cb)) = (&a, &b) else {
            panic!("FortiGate endpoints")
        };
        assert!(Arc::ptr_eq(ca, cb), "unchanged config reuses the client");
        let rotated = endpoints.get(&config("two")).expect("rotated");
        let Endpoint::FortiGate(cr) = &rotated else {
            panic!("FortiGate endpoint")
        };
        assert!(!Arc::ptr_eq(ca, cr), "a new credential gets a new client");
        assert!(
            Arc::ptr_eq(a.guard(), rotated.guard()),
            "but the same device guard"
        );
    }
}
