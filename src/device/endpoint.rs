//! Endpoints: one client per connection, one Guard per device and source address.
//!
//! Clients are keyed by the connection (kind and `<namespace>/<name>`), not by the device URL
//! and scope: two connections to the same device and VDOM (two tenants, two Secrets) must not
//! replace each other's client on every reconcile. The fingerprint is not part of the key: a
//! connection has one credential at a time, and a changed Secret replaces that connection's
//! client only (keeping it in the key would keep a dead client per rotation).
//!
//! The Guard is keyed by device URL and source address, because a device counts failed logins
//! and locks out per source IP, whoever's key they carried: every connection to the device
//! shares its freezes, budget and breaker, and a new key never resets what the device
//! remembers. Connections may declare the device's lockout settings differently; the guard
//! follows the strictest declaration.

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

/// A connection: its kind and `<namespace>/<name>`.
type ConnectionKey = (DeviceKind, String);

/// One device and source address: its guard, and the lockout settings each connection declared.
struct Device {
    guard: Arc<Guard>,
    declared: HashMap<ConnectionKey, LockoutPolicy>,
}

/// Shares guards between every connection that targets the same device.
pub struct Endpoints {
    metrics: DeviceMetrics,
    devices: Mutex<HashMap<GuardKey, Device>>,
    clients: Mutex<HashMap<ConnectionKey, (EndpointConfig, Endpoint)>>,
}

impl Endpoints {
    /// An empty registry reporting to `metrics`.
    pub fn new(metrics: DeviceMetrics) -> Self {
        Self {
            metrics,
            devices: Mutex::new(HashMap::new()),
            clients: Mutex::new(HashMap::new()),
        }
    }

    /// The endpoint of the connection `config` describes: the existing one when nothing
    /// changed, a new client (same device guard) when its credential or settings changed.
    pub fn get(&self, config: &EndpointConfig) -> Result<Endpoint, DeviceError> {
        let key = (config.kind, config.name.clone());
        let mut clients = self.clients.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((existing, endpoint)) = clients.get(&key)
            && existing == config
        {
            return Ok(endpoint.clone());
        }
        // Nothing is unfrozen here: a refused key stays refused under its own fingerprint,
        // whichever connection is rebuilt. The credential it replaces stops counting as a
        // working one, unless another connection still uses it on the same device.
        if let Some((old, endpoint)) = clients.remove(&key) {
            let uses_old = |other: &EndpointConfig| {
                (&other.url, other.transport.source_address)
                    == (&old.url, old.transport.source_address)
                    && other.credentials == old.credentials
            };
            if !uses_old(config) && !clients.values().any(|(other, _)| uses_old(other)) {
                endpoint.guard().retire(&old.credentials.fingerprint());
            }
        }
        let guard = self.guard(&key, config);
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

    fn guard(&self, connection: &ConnectionKey, config: &EndpointConfig) -> Arc<Guard> {
        let key = (config.url.clone(), config.transport.source_address);
        let mut devices = self.devices.lock().unwrap_or_else(|p| p.into_inner());
        let device = devices.entry(key).or_insert_with(|| Device {
            guard: Arc::new(Guard::new(
                config.name.clone(),
                config.lockout,
                config.max_concurrent,
                self.metrics.clone(),
            )),
            declared: HashMap::new(),
        });
        // A connection that moved to another device keeps its old declaration there: stricter
        // than needed at worst, never laxer.
        device.declared.insert(connection.clone(), config.lockout);
        let strictest = device
            .declared
            .values()
            .copied()
            .reduce(LockoutPolicy::strictest)
            .unwrap_or(config.lockout);
        device.guard.set_policy(strictest);
        device.guard.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(token: &str) -> EndpointConfig {
        connection("ns/fw", token, 3)
    }

    fn connection(name: &str, token: &str, threshold: u32) -> EndpointConfig {
        EndpointConfig {
            kind: DeviceKind::FortiGate,
            name: name.into(),
            url: "https://127.0.0.1:1".into(),
            scope: "root".into(),
            credentials: Credentials::Token(token.into()),
            transport: TransportConfig::default(),
            max_concurrent: 4,
            lockout: LockoutPolicy {
                threshold,
                ..LockoutPolicy::default()
            },
            lock_retries: 5,
        }
    }

    fn fortigate(endpoint: &Endpoint) -> &Arc<FortiOsClient> {
        let Endpoint::FortiGate(client) = endpoint else {
            panic!("FortiGate endpoint")
        };
        client
    }

    #[test]
    fn endpoints_are_shared_and_a_new_key_keeps_the_device_guard() {
        let endpoints = Endpoints::new(DeviceMetrics::default());
        let a = endpoints.get(&config("one")).expect("a");
        let b = endpoints.get(&config("one")).expect("b");
        assert!(Arc::ptr_eq(a.guard(), b.guard()));
        let (ca, cb) = (fortigate(&a), fortigate(&b));
        assert!(Arc::ptr_eq(ca, cb), "unchanged config reuses the client");
        let rotated = endpoints.get(&config("two")).expect("rotated");
        let cr = fortigate(&rotated);
        assert!(!Arc::ptr_eq(ca, cr), "a new credential gets a new client");
        assert!(
            Arc::ptr_eq(a.guard(), rotated.guard()),
            "but the same device guard"
        );
    }

    #[test]
    fn connections_to_the_same_device_and_vdom_keep_their_own_clients_and_share_the_guard() {
        let endpoints = Endpoints::new(DeviceMetrics::default());
        let tenant_a = connection("a/fw", "key-a", 3);
        let tenant_b = connection("b/fw", "key-b", 3);
        let first_a = endpoints.get(&tenant_a).expect("a");
        let first_b = endpoints.get(&tenant_b).expect("b");
        for _ in 0..3 {
            let a = endpoints.get(&tenant_a).expect("a");
            let b = endpoints.get(&tenant_b).expect("b");
            assert!(
                Arc::ptr_eq(fortigate(&a), fortigate(&first_a)),
                "b's reconcile did not rebuild a's client"
            );
            assert!(Arc::ptr_eq(fortigate(&b), fortigate(&first_b)));
            assert!(Arc::ptr_eq(a.guard(), b.guard()), "one guard per device");
        }
    }

    #[tokio::test]
    async fn a_rotated_away_key_stops_counting_as_working_unless_a_connection_still_uses_it() {
        let endpoints = Endpoints::new(DeviceMetrics::default());
        let fp = Credentials::Token("shared".into()).fingerprint();
        let a = endpoints.get(&connection("a/fw", "shared", 3)).expect("a");
        endpoints.get(&connection("b/fw", "shared", 3)).expect("b");
        let pass = a.guard().admit("a/fw", &fp).await.expect("trial");
        a.guard()
            .record(pass, &fp, crate::device::Outcome::Authorized);
        endpoints
            .get(&connection("a/fw", "rotated", 3))
            .expect("a rotated");
        assert!(a.guard().is_confirmed(&fp), "b still uses it");
        let mut b_settings = connection("b/fw", "shared", 3);
        b_settings.max_concurrent = 2;
        endpoints.get(&b_settings).expect("b, other settings");
        assert!(a.guard().is_confirmed(&fp), "b's new client still uses it");
        endpoints
            .get(&connection("b/fw", "rotated", 3))
            .expect("b rotated");
        assert!(!a.guard().is_confirmed(&fp), "nobody uses it any more");
    }

    #[test]
    fn the_guard_follows_the_strictest_declared_lockout_threshold() {
        let endpoints = Endpoints::new(DeviceMetrics::default());
        let lax = endpoints.get(&connection("a/fw", "key-a", 10)).expect("a");
        assert_eq!(lax.guard().max_concurrent(), 4);
        endpoints.get(&connection("b/fw", "key-b", 3)).expect("b");
        assert_eq!(lax.guard().max_concurrent(), 2, "b's threshold of 3 wins");
        endpoints
            .get(&connection("a/fw", "key-a", 9))
            .expect("a again");
        assert_eq!(
            lax.guard().max_concurrent(),
            2,
            "a later, laxer declaration does not undo it"
        );
    }
}
