//! Writes to a FortiManager ADOM in workspace mode: lock → writes → commit → unlock, one
//! function for every kind. Unlocking without a commit discards a half-applied change, so a
//! failed pass leaves the ADOM as it was and the next pass plans again from what it holds.

use std::future::Future;

use crate::api::fortimanager::{FortiManagerSpec, WorkspaceMode};
use crate::device::DeviceError;
use crate::device::fortimanager::FortiManagerClient;

/// Whether writes to this ADOM need lock → commit → unlock, per `spec.workspace.mode`.
pub async fn needs_lock(
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

/// Runs `writes` inside the ADOM's workspace lock when it needs one: commits only when every
/// write succeeded, and always unlocks.
pub async fn in_workspace<F, Fut, E>(
    client: &FortiManagerClient,
    spec: &FortiManagerSpec,
    writes: F,
) -> Result<(), E>
where
    F: FnOnce() -> Fut,
    Fut: Future<Output = Result<(), E>>,
    E: From<DeviceError>,
{
    let locking = needs_lock(client, spec).await?;
    if locking {
        client.lock().await?;
    }
    let mut written = writes().await;
    if locking {
        if written.is_ok() {
            written = client.commit().await.map_err(E::from);
        }
        if let Err(e) = client.unlock().await {
            tracing::warn!(device = %client.device(), error = %e, "could not release the ADOM lock");
        }
    }
    written
}
