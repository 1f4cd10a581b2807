//! Where an AddressGroup's objects live: a FortiGate VDOM, or a FortiManager ADOM (and,
//! with `install: Proxy`, the FortiGates behind it). Facts about a device that only change
//! with a firmware upgrade (its version) are learned once per endpoint.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use super::connection::ResolvedConnection;
use super::error::ReconcileError;
use super::install;
use crate::api::fortimanager::{FortiManagerSpec, WorkspaceMode};
use crate::device::fortimanager::FortiManagerClient;
use crate::device::fortios::FortiOsClient;
use crate::device::{DeviceError, Endpoint};

/// Facts learned once per device and scope (the firmware version rules what a group may be).
#[derive(Debug, Default)]
pub struct DeviceFacts {
    empty_group_allowed: Mutex<HashMap<String, bool>>,
}

impl DeviceFacts {
    fn get(&self, key: &str) -> Option<bool> {
        self.empty_group_allowed
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(key)
            .copied()
    }

    fn remember(&self, key: &str, allowed: bool) {
        self.empty_group_allowed
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(key.to_string(), allowed);
    }
}

/// A resolved, connected target of an AddressGroup.
pub enum GroupTarget {
    /// A FortiGate VDOM over FortiOS REST.
    FortiGate {
        /// The client (shared per device).
        client: Arc<FortiOsClient>,
        /// FortiOS 7.2+ accepts an empty group.
        empty_group_allowed: bool,
    },
    /// A FortiManager ADOM over JSON-RPC.
    FortiManager {
        /// The client (shared per device).
        client: Arc<FortiManagerClient>,
        /// The connection's settings (workspace, device targets, install).
        spec: Box<FortiManagerSpec>,
        /// The ADOM's FortiOS version is 7.2+.
        empty_group_allowed: bool,
    },
}

impl GroupTarget {
    /// Connects `endpoint`, learning the version facts on first use (one read per device).
    pub async fn connect(
        endpoint: Endpoint,
        resolved: &ResolvedConnection,
        facts: &DeviceFacts,
    ) -> Result<Self, ReconcileError> {
        let key = format!("{}|{}", resolved.connection.url, resolved.scope);
        match endpoint {
            Endpoint::FortiGate(client) => {
                let empty_group_allowed = match facts.get(&key) {
                    Some(v) => v,
                    None => {
                        let status = client.system_status().await?;
                        let v = install::empty_group_allowed(&status.version);
                        facts.remember(&key, v);
                        v
                    }
                };
                Ok(Self::FortiGate {
                    client,
                    empty_group_allowed,
                })
            }
            Endpoint::FortiManager(client) => {
                let spec = resolved.fortimanager.clone().ok_or_else(|| {
                    ReconcileError::Spec("a FortiManager target without its spec".into())
                })?;
                let empty_group_allowed = match facts.get(&key) {
                    Some(v) => v,
                    None => {
                        let adom = client.adom_facts().await?;
                        let v = (adom.major, adom.minor) >= (7, 2);
                        facts.remember(&key, v);
                        v
                    }
                };
                Ok(Self::FortiManager {
                    client,
                    spec: Box::new(spec),
                    empty_group_allowed,
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

    /// Whether the device accepts an address group without members.
    pub fn empty_group_allowed(&self) -> bool {
        match self {
            Self::FortiGate {
                empty_group_allowed,
                ..
            }
            | Self::FortiManager {
                empty_group_allowed,
                ..
            } => *empty_group_allowed,
        }
    }
}

/// Whether writes to this ADOM need lock → commit → unlock, per `spec.workspace.mode`.
pub async fn needs_workspace_lock(
    client: &FortiManagerClient,
    spec: &FortiManagerSpec,
) -> Result<bool, DeviceError> {
    match spec.workspace.mode {
        WorkspaceMode::Normal => Ok(true),
        WorkspaceMode::Disabled => Ok(false),
        // Any mode but `disabled` locks, unless the ADOM itself says it is not in workspace
        // mode (per-ADOM mode); a workflow ADOM refuses the commit with its own code.
        WorkspaceMode::Auto => match client.workspace_mode().await?.as_str() {
            "disabled" => Ok(false),
            _ => Ok(client.adom_facts().await?.workspace.unwrap_or(true)),
        },
    }
}
