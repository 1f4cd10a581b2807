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

/// Firmware versions learned once per device and scope. Learned once, not once per pass
/// that needs it: a restart's 1,000 passes reach `connect` together, and each used to send
/// its own probe (1,000 probes at 50 ms device latency held the restart 13 s).
#[derive(Debug, Default)]
pub struct DeviceFacts {
    firmware: Mutex<HashMap<String, Arc<tokio::sync::OnceCell<Firmware>>>>,
}

impl DeviceFacts {
    /// The firmware of `key`: as learned, or learned now by `learn` while every other pass
    /// asking for it waits (a failure is not remembered: the next pass tries again).
    async fn firmware<F, Fut>(&self, key: &str, learn: F) -> Result<Firmware, ReconcileError>
    where
        F: FnOnce() -> Fut,
        Fut: std::future::Future<Output = Result<Firmware, ReconcileError>>,
    {
        let cell = self
            .firmware
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(key.to_string())
            .or_default()
            .clone();
        cell.get_or_try_init(learn).await.copied()
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
                let firmware = facts
                    .firmware(&key, || async {
                        Ok(Firmware::parse(&client.system_status().await?.version))
                    })
                    .await?;
                Ok(Self::FortiGate { client, firmware })
            }
            Endpoint::FortiManager(client) => {
                let spec = resolved.fortimanager.clone().ok_or_else(|| {
                    ReconcileError::Spec("a FortiManager target without its spec".into())
                })?;
                let firmware = facts
                    .firmware(&key, || async {
                        let adom = client.adom_facts().await?;
                        Ok(Firmware::new(adom.major, adom.minor, 0))
                    })
                    .await?;
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[tokio::test]
    async fn passes_asking_together_learn_the_firmware_once_and_a_failure_is_not_kept() {
        let facts = DeviceFacts::default();
        let probes = AtomicUsize::new(0);
        let learn = || async {
            probes.fetch_add(1, Ordering::SeqCst);
            tokio::task::yield_now().await;
            Ok(Firmware::new(7, 4, 0))
        };
        let failing = || async { Err(ReconcileError::Spec("unreachable".into())) };
        assert!(facts.firmware("fw|root", failing).await.is_err());
        let asked = (0..50).map(|_| facts.firmware("fw|root", learn));
        for got in futures::future::join_all(asked).await {
            assert_eq!(got.expect("learned"), Firmware::new(7, 4, 0));
        }
        assert_eq!(probes.load(Ordering::SeqCst), 1);
    }
}
