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
    let _turn = if locking {
        let turn = client.workspace_turn().await;
        client.lock().await?;
        Some(turn)
    } else {
        None
    };
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

/// Releases, once per client, an ADOM lock that an earlier fortisync run left when it was
/// killed between lock and unlock: left alone it would stop every other admin's changes and,
/// on a converged ADOM, no later pass would ever unlock it. FortiManager ties the lock to the
/// session and API-key calls of one admin share one, so the restarted controller holds it and
/// its unlock releases it (discarding the dead pass's uncommitted writes, which the next pass
/// plans again). A lock of any other session (another admin, or an earlier run's password
/// session) is refused with -20055 and left alone; whether session expiry frees that one is
/// UNCONFIRMED. Best effort: a failure here is logged and the pass goes on.
pub async fn release_stale_lock(client: &FortiManagerClient, spec: &FortiManagerSpec) {
    client
        .stale_lock_checked()
        .get_or_init(|| async {
            if !matches!(needs_lock(client, spec).await, Ok(true)) {
                return;
            }
            let _turn = client.workspace_turn().await;
            let Some(holder) = client.lock_holder().await else {
                return;
            };
            match client.unlock().await {
                Ok(()) => tracing::warn!(
                    device = %client.device(),
                    %holder,
                    "released an ADOM lock an earlier fortisync run left (killed between lock and unlock); its uncommitted changes are discarded"
                ),
                Err(e) => tracing::info!(
                    device = %client.device(),
                    %holder,
                    error = %e,
                    "the ADOM is locked by another session; left alone"
                ),
            }
        })
        .await;
}
