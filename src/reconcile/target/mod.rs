//! Where a change lands, for every kind: a FortiGate VDOM, or a FortiManager ADOM (its
//! workspace lock in `workspace`, the FortiGates behind it through `proxy`). Facts about a
//! device that only change with a firmware upgrade (its version) are learned once per endpoint.
//!
//! Kinds build their plans against a `Target` and run them through `workspace::in_workspace`
//! and `proxy`; a per-device executor that observes and applies every kind's plans for one
//! device together slots in here, in front of the same two functions.

pub mod proxy;
pub mod workspace;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use crate::api::fortimanager::FortiManagerSpec;
use crate::device::Endpoint;
use crate::device::fortimanager::FortiManagerClient;
use crate::device::fortios::FortiOsClient;
use crate::model::Firmware;
use crate::reconcile::connection::ResolvedConnection;
use crate::reconcile::error::ReconcileError;

/// Firmware versions learned once per device and scope.
#[derive(Debug, Default)]
pub struct DeviceFacts {
    firmware: Mutex<HashMap<String, Firmware>>,
}

impl DeviceFacts {
    fn get(&self, key: &str) -> Option<Firmware> {
        self.firmware
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(key)
            .copied()
    }

    fn remember(&self, key: &str, firmware: Firmware) {
        self.firmware
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(key.to_string(), firmware);
    }
}

/// A resolved, connected target.
pub enum Target {
    /// A FortiGate VDOM over FortiOS REST.
    FortiGate {
        /// The client (shared per device).
        client: Arc<FortiOsClient>,
        /// The device's FortiOS version.
        firmware: Firmware,
    },
    /// A FortiManager ADOM over JSON-RPC.
    FortiManager {
        /// The client (shared per device).
        client: Arc<FortiManagerClient>,
        /// The connection's settings (workspace, device targets, install).
        spec: Box<FortiManagerSpec>,
        /// The ADOM's FortiOS version (`os_ver`.`mr`).
        firmware: Firmware,
    },
}

impl Target {
    /// Connects `endpoint`, learning the firmware on first use (one read per device).
    pub async fn connect(
        endpoint: Endpoint,
        resolved: &ResolvedConnection,
        facts: &DeviceFacts,
    ) -> Result<Self, ReconcileError> {
        let key = format!("{}|{}", resolved.connection.url, resolved.scope);
        match endpoint {
            Endpoint::FortiGate(client) => {
                let firmware = match facts.get(&key) {
                    Some(v) => v,
                    None => {
                        let v = Firmware::parse(&client.system_status().await?.version);
                        facts.remember(&key, v);
                        v
                    }
                };
                Ok(Self::FortiGate { client, firmware })
            }
            Endpoint::FortiManager(client) => {
                let spec = resolved.fortimanager.clone().ok_or_else(|| {
                    ReconcileError::Spec("a FortiManager target without its spec".into())
                })?;
                let firmware = match facts.get(&key) {
                    Some(v) => v,
                    None => {
                        let adom = client.adom_facts().await?;
                        let v = Firmware::new(adom.major, adom.minor, 0);
                        facts.remember(&key, v);
                        v
                    }
                };
                workspace::release_stale_lock(&client, &spec).await;
                Ok(Self::FortiManager {
                    client,
                    spec: Box::new(spec),
                    firmware,
                })
            }
        }
    }

    /// The device name for logs and events (`<namespace>/<connection>`).
    pub fn device(&self) -> &str {
        match self {
            Self::FortiGate { client, .. } => client.device(),
            Self::FortiManager { client, .. } => client.device(),
        }
    }

    /// The FortiOS version of the VDOM or the ADOM.
    pub fn firmware(&self) -> Firmware {
        match self {
            Self::FortiGate { firmware, .. } | Self::FortiManager { firmware, .. } => *firmware,
        }
    }
}
