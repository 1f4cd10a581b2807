//! The whole simulated estate: FortiGates, FortiManagers managing them, and the admin
//! (test-control) port, started from one scenario.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;

use futures::future::BoxFuture;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::fortimanager::{self, FortiManagerHandle, FortiManagerScenario, ManagedDevices};
use super::fortios::{self, FortiGateHandle, FortiGateScenario};
use super::listener::{Listening, listen};

/// Everything a simulator run starts with. YAML or JSON, snake_case keys.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Scenario {
    /// Seed for every random choice (fault probabilities, tokens), for deterministic runs.
    pub seed: u64,
    /// Simulated FortiGates.
    pub fortigates: Vec<FortiGateScenario>,
    /// Simulated FortiManagers; their ADOM devices proxy to the FortiGates of the same name.
    pub fortimanagers: Vec<FortiManagerScenario>,
    /// Where the admin (test-control) port listens.
    pub admin: AdminListen,
}

/// Address of the admin port (never a device port).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AdminListen {
    /// Bind address.
    pub bind: IpAddr,
    /// Port, 0 = any.
    pub port: u16,
}

impl Default for AdminListen {
    fn default() -> Self {
        Self {
            bind: IpAddr::V4(Ipv4Addr::LOCALHOST),
            port: 0,
        }
    }
}

impl Scenario {
    /// Parses YAML (JSON is YAML too).
    pub fn from_yaml(text: &str) -> anyhow::Result<Self> {
        Ok(crate::yaml::from_str(text)?)
    }
}

/// A running simulator; everything stops when it is dropped.
pub struct Simulator {
    fortigates: BTreeMap<String, Arc<FortiGateHandle>>,
    fortimanagers: BTreeMap<String, FortiManagerHandle>,
    admin: Option<Listening>,
}

/// FortiManager's view of the FortiGates: in-process calls by device name.
struct SimulatedFleet(BTreeMap<String, Arc<FortiGateHandle>>);

impl ManagedDevices for SimulatedFleet {
    fn call(
        &self,
        device: &str,
        method: &str,
        path_and_query: &str,
        body: Option<Value>,
    ) -> BoxFuture<'static, Option<(u16, Value)>> {
        let answer = self
            .0
            .get(device)
            .map(|fg| fg.dispatch_internal(method, path_and_query, body));
        Box::pin(async move { answer })
    }
}

impl Simulator {
    /// Starts every device and the admin port.
    pub async fn start(scenario: Scenario) -> anyhow::Result<Self> {
        let mut fortigates = BTreeMap::new();
        for (i, fg) in scenario.fortigates.iter().enumerate() {
            if fortigates.contains_key(&fg.name) {
                anyhow::bail!("two FortiGates are named {:?}", fg.name);
            }
            let handle = fortios::start(fg, scenario.seed.wrapping_add(i as u64)).await?;
            fortigates.insert(fg.name.clone(), Arc::new(handle));
        }
        let fleet: Arc<dyn ManagedDevices> = Arc::new(SimulatedFleet(fortigates.clone()));
        let mut fortimanagers = BTreeMap::new();
        for fmg in &scenario.fortimanagers {
            let handle = fortimanager::start(fmg.clone(), fleet.clone()).await?;
            fortimanagers.insert(fmg.name.clone(), handle);
        }
        let controls = fortimanagers
            .iter()
            .map(|(n, h)| (n.clone(), h.control().clone()))
            .collect();
        let router = super::admin::router(fortigates.clone(), controls);
        let admin = listen(scenario.admin.bind, scenario.admin.port, false, router).await?;
        tracing::info!(url = %admin.url, "simulator admin port listening");
        Ok(Self {
            fortigates,
            fortimanagers,
            admin: Some(admin),
        })
    }

    /// A FortiGate by name. Panics when absent: a test naming a device it did not configure is
    /// a bug in the test.
    pub fn fortigate(&self, name: &str) -> &FortiGateHandle {
        self.fortigates
            .get(name)
            .unwrap_or_else(|| panic!("no simulated FortiGate named {name:?}"))
    }

    /// A FortiManager by name (panics when absent, see [`Simulator::fortigate`]).
    pub fn fortimanager(&self, name: &str) -> &FortiManagerHandle {
        self.fortimanagers
            .get(name)
            .unwrap_or_else(|| panic!("no simulated FortiManager named {name:?}"))
    }

    /// Every FortiGate, by name.
    pub fn fortigates(&self) -> impl Iterator<Item = &FortiGateHandle> {
        self.fortigates.values().map(AsRef::as_ref)
    }

    /// Every FortiManager with its name.
    pub fn fortimanagers(&self) -> impl Iterator<Item = (&str, &FortiManagerHandle)> {
        self.fortimanagers.iter().map(|(n, h)| (n.as_str(), h))
    }

    /// The admin (test-control) port's base URL.
    pub fn admin_url(&self) -> &str {
        self.admin
            .as_ref()
            .map(|a| a.url.as_str())
            .unwrap_or_default()
    }

    /// Stops every listener.
    pub async fn shutdown(mut self) {
        if let Some(admin) = self.admin.take() {
            let _ = admin.stop.send(());
            let _ = admin.task.await;
        }
        for (_, fmg) in std::mem::take(&mut self.fortimanagers) {
            fmg.shutdown().await;
        }
        for (_, fg) in std::mem::take(&mut self.fortigates) {
            if let Ok(fg) = Arc::try_unwrap(fg) {
                fg.shutdown().await;
            }
        }
    }
}

impl Drop for Simulator {
    fn drop(&mut self) {
        if let Some(admin) = &self.admin {
            admin.task.abort();
        }
    }
}
