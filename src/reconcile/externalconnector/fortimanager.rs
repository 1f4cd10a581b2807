//! An ExternalConnector through a FortiManager: the ADOM's `system/external-resource` object,
//! written inside the workspace lock (lock → write → commit → unlock, the shared machinery),
//! then the FortiGates of `spec.deviceTargets` through the proxy (`proxied`). Without
//! Kubernetes, so tests drive it against the simulator directly.
//!
//! The ADOM object is the definition an admin's own installs carry to the devices; the
//! devices are converged directly (object, `dynamic` push, `refresh`) because a dynamic list
//! cannot be installed, and an install would push every pending change of the ADOM, not ours.

use std::collections::BTreeSet;

use futures::future::BoxFuture;

use super::plan::{ObjectWrite, Refusal, plan_object};
use super::proxied::{self, DevicePass, DeviceResult};
use crate::api::fortimanager::FortiManagerSpec;
use crate::device::DeviceError;
use crate::device::fortimanager::FortiManagerClient;
use crate::model::{Firmware, Owner};
use crate::reconcile::error::ReconcileError;
use crate::reconcile::target::workspace::in_workspace;

/// The ADOM table (the same CLI path as on FortiOS).
pub const ADOM_TABLE: &str = "system/external-resource";

/// What one pass found and did.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    /// The ADOM object's write (`None` when it was converged).
    pub adom: ObjectWrite,
    /// Why the ADOM object may not be managed; then nothing was written anywhere.
    pub refusal: Option<Refusal>,
    /// Every targeted device, in target order (unknown names first).
    pub devices: Vec<DeviceResult>,
}

impl Outcome {
    /// Writes made in the ADOM and on the devices.
    pub fn writes(&self) -> usize {
        usize::from(self.adom != ObjectWrite::None)
            + self.devices.iter().map(|d| d.writes).sum::<usize>()
    }

    /// Of those, repairs of out-of-band changes on the devices.
    pub fn drift_writes(&self) -> usize {
        self.devices.iter().map(|d| d.drift_writes).sum()
    }
}

/// The schema an ADOM of FortiOS `major.minor` holds. An ADOM has no patch level: it is taken
/// as the newest of its minor, so a 7.2 ADOM carries `update-method` (added in 7.2.1). Which
/// fields each ADOM version accepts is UNCONFIRMED (§4.4 lists them without versions); a field
/// the FortiManager does not know is refused there loudly, while leaving `update-method` out
/// would turn a push list into a feed on the next install and lose the pushed entries.
pub fn adom_schema(adom: Firmware) -> Firmware {
    Firmware::new(adom.major, adom.minor, u32::MAX)
}

/// Observes and plans the ADOM object, then (with `write`) writes it in the workspace and
/// converges every targeted device. A refused ADOM object writes nothing anywhere.
pub fn converge<'a>(
    client: &'a FortiManagerClient,
    spec: &'a FortiManagerSpec,
    adom_firmware: Firmware,
    pass: DevicePass<'a>,
    write: bool,
) -> BoxFuture<'a, Result<Outcome, ReconcileError>> {
    // Boxed as Send where every lifetime is concrete (kube-runtime's bounds are higher-ranked).
    Box::pin(async move {
        let d = pass.desired;
        let adom = match plan_adom(client, adom_firmware, pass).await? {
            Ok(w) => w,
            Err(refusal) => {
                return Ok(Outcome {
                    adom: ObjectWrite::None,
                    refusal: Some(refusal),
                    devices: Vec::new(),
                });
            }
        };
        if write && adom != ObjectWrite::None {
            in_workspace(client, spec, || write_adom(client, &d.name, &adom))
                .await
                .map_err(ReconcileError::Device)?;
        }
        Ok(Outcome {
            adom,
            refusal: None,
            devices: converge_devices(client, spec, pass, write).await?,
        })
    })
}

/// The ADOM object `pass` needs written (or why it may not be): read, then planned.
pub async fn plan_adom(
    client: &FortiManagerClient,
    adom_firmware: Firmware,
    pass: DevicePass<'_>,
) -> Result<Result<ObjectWrite, Refusal>, DeviceError> {
    let d = pass.desired;
    let observed = client.object(ADOM_TABLE, &d.name).await?;
    Ok(plan_object(
        d,
        adom_schema(adom_firmware),
        observed.as_ref(),
        pass.take_over,
    ))
}

/// Writes the ADOM object `name` (inside a workspace session the caller holds).
pub async fn write_adom(
    client: &FortiManagerClient,
    name: &str,
    adom: &ObjectWrite,
) -> Result<(), DeviceError> {
    match adom {
        ObjectWrite::Create(body) => {
            tracing::info!(device = %client.device(), resource = %name, "ADOM write: external resource");
            client.add(ADOM_TABLE, body.clone()).await
        }
        ObjectWrite::Update(body) => {
            tracing::info!(device = %client.device(), resource = %name, "ADOM write: external resource");
            client.update(ADOM_TABLE, name, body.clone()).await
        }
        ObjectWrite::None => Ok(()),
    }
}

/// The FortiGates `pass` targets (the connection's when `spec.deviceTargets` is empty),
/// through the proxy, after the ADOM object.
pub async fn converge_devices(
    client: &FortiManagerClient,
    spec: &FortiManagerSpec,
    pass: DevicePass<'_>,
    write: bool,
) -> Result<Vec<DeviceResult>, ReconcileError> {
    let (groups, mut devices) = proxied::resolve(client, spec, pass.targets).await?;
    for (vdom, targets) in &groups {
        devices.extend(proxied::converge_group(client, vdom, targets, pass, write).await?);
    }
    Ok(devices)
}

/// Deletion: the ADOM object (in the workspace) and the devices' resource, each only where
/// fortisync owns it. Returns the devices that could not be reached (the resource may remain
/// there).
pub fn remove<'a>(
    client: &'a FortiManagerClient,
    spec: &'a FortiManagerSpec,
    name: &'a str,
    owner: &'a Owner,
    targets: &'a [crate::api::externalconnector::ConnectorDeviceTarget],
) -> BoxFuture<'a, Result<Vec<String>, ReconcileError>> {
    Box::pin(async move {
        let owned = client
            .object(ADOM_TABLE, name)
            .await?
            .is_some_and(|o| owner.owns(o["comments"].as_str().unwrap_or_default()));
        if owned {
            tracing::info!(device = %client.device(), resource = %name, "ADOM write: delete external resource");
            in_workspace(client, spec, || async {
                match client.delete(ADOM_TABLE, name).await {
                    Err(DeviceError::NotFound { .. }) => Ok(()),
                    other => other,
                }
            })
            .await
            .map_err(ReconcileError::Device)?;
        }
        let (groups, _unknown) = proxied::resolve(client, spec, targets).await?;
        let mut left = Vec::new();
        for (vdom, targets) in &groups {
            left.extend(proxied::remove_group(client, vdom, targets, name, owner).await?);
        }
        Ok(left)
    })
}

/// The devices that were converged over this spec and list, from the previous status.
pub fn converged_devices(
    previous: &[crate::api::externalconnector::ConnectorDeviceStatus],
) -> BTreeSet<(String, Option<String>)> {
    previous
        .iter()
        .filter(|d| d.synced)
        .map(|d| (d.name.clone(), d.vdom.clone()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_7_2_adom_carries_update_method_and_a_7_0_adom_does_not() {
        assert!(adom_schema(Firmware::new(7, 2, 0)) >= super::super::plan::PUSH_FIRMWARE);
        assert!(adom_schema(Firmware::new(7, 0, 0)) < super::super::plan::PUSH_FIRMWARE);
    }
}
