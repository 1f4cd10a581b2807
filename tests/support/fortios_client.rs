//! The one way the device tests build a FortiOS client and its Guard: against a simulated
//! FortiGate (its URL and CA from the simulator) or any URL (a hostile server), with the
//! source address, timeout, VDOM, Guard and retry policy a test cares about and the same
//! defaults everywhere else.

#![allow(dead_code)]

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use fortisync::device::fortios::{FortiOsClient, RetryPolicy};
use fortisync::device::{Credentials, DeviceMetrics, Guard, LockoutPolicy, TransportConfig};
use fortisync::sim::Simulator;

/// A Guard for `device` with `policy` and four requests in flight at most.
pub fn guard(device: &str, policy: LockoutPolicy) -> Arc<Guard> {
    Arc::new(Guard::new(device, policy, 4, DeviceMetrics::default()))
}

/// A FortiOS client under construction; [`FortiOsFixture::client`] builds it.
pub struct FortiOsFixture {
    device: String,
    url: String,
    vdom: String,
    transport: TransportConfig,
    guard: Option<Arc<Guard>>,
    retry: Option<RetryPolicy>,
}

impl FortiOsFixture {
    /// The simulated FortiGate `device`: its URL, trusting its CA, VDOM `root`, 5 s timeout.
    pub fn simulated(sim: &Simulator, device: &str) -> Self {
        let fg = sim.fortigate(device);
        let mut fixture = Self::at(device, fg.url());
        fixture.transport.ca_bundle_pem = fg.ca_pem().map(str::to_string);
        fixture
    }

    /// `device` at `url` with no CA of its own, VDOM `root`, 5 s timeout.
    pub fn at(device: &str, url: &str) -> Self {
        Self {
            device: device.into(),
            url: url.into(),
            vdom: "root".into(),
            transport: TransportConfig {
                timeout: Duration::from_secs(5),
                ..TransportConfig::default()
            },
            guard: None,
            retry: None,
        }
    }

    /// Sends from `source` (several 127.0.0.x play different hosts).
    pub fn source(mut self, source: IpAddr) -> Self {
        self.transport.source_address = Some(source);
        self
    }

    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.transport.timeout = timeout;
        self
    }

    pub fn vdom(mut self, vdom: &str) -> Self {
        self.vdom = vdom.into();
        self
    }

    /// Shares `guard` (default: a fresh one for the device with the default lockout policy).
    pub fn guard(mut self, guard: Arc<Guard>) -> Self {
        self.guard = Some(guard);
        self
    }

    /// Retries with `retry` (default: the client's own policy).
    pub fn retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = Some(retry);
        self
    }

    pub fn client(self, credentials: Credentials) -> FortiOsClient {
        let guard = self
            .guard
            .unwrap_or_else(|| guard(&self.device, LockoutPolicy::default()));
        let client = FortiOsClient::new(
            &self.device,
            &self.url,
            &self.vdom,
            credentials,
            &self.transport,
            guard,
        )
        .expect("client");
        match self.retry {
            Some(retry) => client.with_retry(retry),
            None => client,
        }
    }
}
