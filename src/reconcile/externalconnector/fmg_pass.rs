//! One controller pass of an ExternalConnector through a FortiManager: `fortimanager::converge`
//! with this resource's spec and last status, then the status (per device in
//! `status.devices`), events and requeue. A device that fails is reported, never the pass:
//! the ADOM object and every other device converge, and `PushDegraded` says which pushes did
//! not land.

use std::collections::BTreeSet;
use std::time::Duration;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::runtime::controller::Action;
use kube::runtime::events::EventType;
use kube::{Api, ResourceExt};

use super::desired::DesiredList;
use super::fortimanager::{self, Outcome, converged_devices};
use super::plan::{DesiredResource, ObjectWrite};
use super::proxied::DeviceState;
use crate::api::conditions::{READY, SYNCED, condition, is_true, ready_and_synced};
use crate::api::externalconnector::{
    ConnectorDeviceStatus, ConnectorMode, EntryCounts, ExternalConnector, ExternalConnectorStatus,
};
use crate::api::fortimanager::FortiManagerSpec;
use crate::device::fortimanager::FortiManagerClient;
use crate::model::{Firmware, Owner};
use crate::reconcile::connection::status::insecure_condition;
use crate::reconcile::context::Context;
use crate::reconcile::error::ReconcileError;
use crate::reconcile::lifecycle::write_status;
use crate::reconcile::requeue::next_requeue_aligned;

/// Condition: a push did not reach every device (a warning; the next pass pushes again).
pub const PUSH_DEGRADED: &str = "PushDegraded";

/// What the pass works with, read by the caller.
pub struct Pass<'a> {
    pub client: &'a std::sync::Arc<FortiManagerClient>,
    pub spec: &'a FortiManagerSpec,
    pub adom_firmware: Firmware,
    pub desired: &'a DesiredResource,
    pub list: &'a DesiredList,
    pub previous: &'a ExternalConnectorStatus,
    pub credentials_version: Option<String>,
    pub insecure: bool,
    pub resync: Duration,
}

pub async fn apply(
    ec: &ExternalConnector,
    ctx: &Context,
    p: Pass<'_>,
) -> Result<Action, ReconcileError> {
    let previous = p.previous;
    // Converged over this very spec and list: a device that now differs was changed by hand.
    let unchanged = previous.observed_generation == ec.metadata.generation
        && previous.list_digest.as_deref() == Some(p.list.digest().as_str());
    let converged = if unchanged {
        converged_devices(&previous.devices)
    } else {
        BTreeSet::new()
    };
    let request = super::fmg_batch::AdomRequest {
        spec: p.spec.clone(),
        desired: p.desired.clone(),
        take_over: ec.spec.take_over,
        entries: p.list.entries.clone(),
        targets: ec.spec.device_targets.clone(),
        converged,
    };
    // Through the ADOM's batch: connectors already queued for this FortiManager write their
    // ADOM objects in one workspace session. A converged connector's resync is patient.
    let patient = unchanged && is_true(&previous.conditions, SYNCED);
    let outcome = super::fmg_batch::converge_batched(
        &ctx.connector_batches.adom,
        p.client,
        p.adom_firmware,
        request,
        patient,
    )
    .await?;
    if let Some(refusal) = outcome.refusal {
        return super::refused(ec, ctx, previous, p.list, refusal).await;
    }
    let drift = outcome.drift_writes() as u64;
    if drift > 0 {
        ctx.metrics
            .drift_repairs
            .get_or_create(&crate::reconcile::metrics::ControllerLabels {
                controller: super::CONTROLLER.into(),
            })
            .inc_by(drift);
    }
    if outcome.writes() > 0 {
        ctx.event(ec, EventType::Normal, "Applied", applied_summary(&outcome))
            .await;
    }
    let mut status = status(
        ec,
        previous,
        p.list,
        &outcome,
        p.credentials_version,
        &p.desired.url,
    );
    status.drift_repairs += drift;
    status.conditions.extend(insecure_condition(
        p.insecure,
        ec.metadata.generation,
        &previous.conditions,
    ));
    let ready = status.conditions.iter().find(|c| c.type_ == READY).cloned();
    let was = previous.conditions.iter().find(|c| c.type_ == READY);
    if let Some(r) = &ready
        && r.status == "False"
        && r.reason != "Pending"
        && was.is_none_or(|w| w.reason != r.reason)
    {
        ctx.event(ec, EventType::Warning, &r.reason, r.message.clone())
            .await;
    }
    if status != *previous {
        write_status(
            &Api::<ExternalConnector>::namespaced(
                ctx.client.clone(),
                &ec.namespace().unwrap_or_default(),
            ),
            &ec.name_any(),
            &status,
        )
        .await?;
    }
    // On the FortiManager's tick, as a FortiGate's connectors are (`requeue`).
    let next = next_requeue_aligned(
        p.resync,
        p.client.device(),
        p.list.next_expiry,
        jiff::Timestamp::now(),
    );
    let pending = |conditions: &[k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition]| {
        conditions
            .iter()
            .any(|c| c.type_ == READY && c.reason == "Pending")
    };
    Ok(Action::requeue(if is_true(&status.conditions, READY) {
        next
    } else if pending(&status.conditions) {
        next.min(if pending(&previous.conditions) {
            Duration::from_secs(2)
        } else {
            Duration::from_millis(250)
        })
    } else {
        // An unreachable device or a failed push is tried again soon, not at the resync.
        next.min(Duration::from_secs(30))
    }))
}

fn applied_summary(outcome: &Outcome) -> String {
    let adom = match outcome.adom {
        ObjectWrite::None => "unchanged",
        ObjectWrite::Create(_) => "created",
        ObjectWrite::Update(_) => "updated",
    };
    let devices: Vec<String> = outcome
        .devices
        .iter()
        .filter(|d| d.writes > 0)
        .map(|d| format!("{} ({} write(s))", d.name, d.writes))
        .collect();
    format!(
        "ADOM object {adom}; devices written: {}",
        if devices.is_empty() {
            "none".to_string()
        } else {
            devices.join(", ")
        }
    )
}

/// The status after a pass through a FortiManager (pure).
pub fn status(
    ec: &ExternalConnector,
    previous: &ExternalConnectorStatus,
    list: &DesiredList,
    outcome: &Outcome,
    credentials_version: Option<String>,
    url: &str,
) -> ExternalConnectorStatus {
    let generation = ec.metadata.generation;
    let devices: Vec<ConnectorDeviceStatus> = outcome
        .devices
        .iter()
        .map(|d| ConnectorDeviceStatus {
            name: d.name.clone(),
            vdom: d.vdom.clone(),
            synced: d.state == DeviceState::Converged,
            reason: d.state.reason().to_string(),
            entries_on_device: d.list.as_ref().map_or(0, |l| l.entries.len() as u32),
            last_error: d.error.clone(),
        })
        .collect();
    let behind: Vec<String> = devices
        .iter()
        .filter(|d| !d.synced)
        .map(|d| match &d.last_error {
            Some(e) => format!("{}: {} ({e})", d.name, d.reason),
            None => format!("{}: {}", d.name, d.reason),
        })
        .collect();
    let only_pending = devices.iter().all(|d| d.synced || d.reason == "Pending");
    let (ok, reason, message) = if !list.invalid.is_empty() {
        (
            false,
            "InvalidEntries",
            format!(
                "{} entr(ies) are not addresses and are left out: {}",
                list.invalid.len(),
                list.invalid.join("; ")
            ),
        )
    } else if behind.is_empty() {
        (
            true,
            "Converged",
            format!(
                "the ADOM object is converged; {} entries on {} device(s)",
                list.entries.len(),
                devices.len()
            ),
        )
    } else if only_pending {
        (
            false,
            "Pending",
            format!(
                "waiting for {} device(s) to pull: {}",
                behind.len(),
                behind.join("; ")
            ),
        )
    } else {
        (
            false,
            "DevicesNotSynced",
            format!(
                "the ADOM object is converged but {} of {} device(s) do not hold the list: {}",
                behind.len(),
                devices.len(),
                behind.join("; ")
            ),
        )
    };
    let mut conditions = ready_and_synced(ok, reason, message, generation, &previous.conditions);
    let missed: Vec<&str> = outcome
        .devices
        .iter()
        .filter(|d| {
            matches!(
                d.state,
                DeviceState::PushFailed | DeviceState::Unreachable | DeviceState::DeviceError
            )
        })
        .map(|d| d.name.as_str())
        .collect();
    if ec.spec.mode == ConnectorMode::Push && !missed.is_empty() {
        conditions.push(condition(
            PUSH_DEGRADED,
            true,
            "PushFailed",
            format!(
                "the push did not reach {}; they keep their last list and the next pass (within 30 s) pushes again",
                missed.join(", ")
            ),
            generation,
            &previous.conditions,
        ));
    }
    let answered: Vec<&ConnectorDeviceStatus> = outcome
        .devices
        .iter()
        .zip(&devices)
        .filter(|(d, _)| d.list.is_some())
        .map(|(_, s)| s)
        .collect();
    ExternalConnectorStatus {
        observed_generation: generation,
        conditions,
        entries: EntryCounts {
            desired: list.entries.len() as u32,
            // The printer column shows the device furthest behind.
            on_device: answered
                .iter()
                .map(|d| d.entries_on_device)
                .min()
                .unwrap_or(0),
            invalid: outcome
                .devices
                .iter()
                .filter_map(|d| d.list.as_ref().map(|l| l.invalid))
                .max()
                .unwrap_or(0),
        },
        device: None,
        feed_url: (ec.spec.mode == ConnectorMode::Feed).then(|| url.to_string()),
        // The devices never read a password back: the Secret's version is recorded only once
        // every device took the write, so one that missed it gets the password next pass.
        feed_credentials_version: if missed.is_empty() {
            credentials_version
        } else {
            previous.feed_credentials_version.clone()
        },
        drift_repairs: previous.drift_repairs,
        list_digest: Some(list.digest()),
        next_expiry: list.next_expiry.map(Time),
        devices,
        last_error: None,
    }
}

/// Deletion through a FortiManager: the ADOM object and the devices' resource (only ours);
/// a device that could not be reached is named in an event, and the resource goes.
pub async fn cleanup(
    ec: &ExternalConnector,
    ctx: &Context,
    client: &FortiManagerClient,
    spec: &FortiManagerSpec,
    owner: Owner,
) -> Result<Action, ReconcileError> {
    let left = fortimanager::remove(
        client,
        spec,
        &ec.spec.resource_name,
        &owner,
        &ec.spec.device_targets,
    )
    .await?;
    if !left.is_empty() {
        ctx.event(
            ec,
            EventType::Warning,
            "LeftOnDevice",
            format!(
                "deletionPolicy is Delete but the FortiManager could not reach {}; the external resource {:?} may remain there: remove it by hand",
                left.join(", "),
                ec.spec.resource_name
            ),
        )
        .await;
    }
    Ok(Action::await_change())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reconcile::externalconnector::fortigate::EntryList;
    use crate::reconcile::externalconnector::proxied::DeviceResult;

    fn connector() -> ExternalConnector {
        let mut ec: ExternalConnector = serde_json::from_value(serde_json::json!({
            "apiVersion": "fortisync.dev/v1alpha1",
            "kind": "ExternalConnector",
            "metadata": {"name": "blocklist", "namespace": "team-a"},
            "spec": {
                "targetRef": {"kind": "FortiManager", "name": "fmg"},
                "resourceName": "fs-blocklist",
                "mode": "Push",
            },
        }))
        .expect("connector");
        ec.metadata.generation = Some(2);
        ec
    }

    fn result(name: &str, state: DeviceState, held: &[&str]) -> DeviceResult {
        DeviceResult {
            name: name.into(),
            vdom: None,
            state,
            error: (state != DeviceState::Converged).then(|| format!("{name} went wrong")),
            list: (!held.is_empty()).then(|| EntryList {
                entries: held.iter().map(|e| e.to_string()).collect(),
                ..Default::default()
            }),
            writes: 0,
            drift_writes: 0,
        }
    }

    #[test]
    fn devices_that_do_not_hold_the_list_are_named_and_a_missed_push_is_a_warning() {
        let list = DesiredList {
            entries: ["192.0.2.1".to_string(), "192.0.2.2".to_string()].into(),
            ..Default::default()
        };
        let outcome = Outcome {
            adom: ObjectWrite::None,
            refusal: None,
            devices: vec![
                result("fw-typo", DeviceState::UnknownDevice, &[]),
                result("fw-a", DeviceState::Converged, &["192.0.2.1", "192.0.2.2"]),
                result("fw-gone", DeviceState::Unreachable, &[]),
            ],
        };
        let previous = ExternalConnectorStatus {
            feed_credentials_version: Some("7".into()),
            ..Default::default()
        };
        let s = status(
            &connector(),
            &previous,
            &list,
            &outcome,
            Some("8".into()),
            "https://x",
        );
        let ready = s
            .conditions
            .iter()
            .find(|c| c.type_ == READY)
            .expect("Ready");
        assert_eq!(
            (ready.status.as_str(), ready.reason.as_str()),
            ("False", "DevicesNotSynced")
        );
        assert_eq!(
            ready.message,
            "the ADOM object is converged but 2 of 3 device(s) do not hold the list: fw-typo: UnknownDevice (fw-typo went wrong); fw-gone: Unreachable (fw-gone went wrong)"
        );
        let degraded = s
            .conditions
            .iter()
            .find(|c| c.type_ == PUSH_DEGRADED)
            .expect("PushDegraded");
        assert_eq!(
            (degraded.status.as_str(), degraded.reason.as_str()),
            ("True", "PushFailed")
        );
        assert!(degraded.message.contains("fw-gone"), "{}", degraded.message);
        assert!(
            !degraded.message.contains("fw-typo"),
            "an unknown name is not a failed push"
        );
        let names: Vec<(&str, bool, &str, u32)> = s
            .devices
            .iter()
            .map(|d| {
                (
                    d.name.as_str(),
                    d.synced,
                    d.reason.as_str(),
                    d.entries_on_device,
                )
            })
            .collect();
        assert_eq!(
            names,
            [
                ("fw-typo", false, "UnknownDevice", 0),
                ("fw-a", true, "Converged", 2),
                ("fw-gone", false, "Unreachable", 0)
            ]
        );
        assert_eq!(s.entries.on_device, 2, "only devices that answered count");
        assert_eq!(
            s.feed_credentials_version.as_deref(),
            Some("7"),
            "a device missed the write: the password goes out again next pass"
        );
        assert_eq!(s.last_error, None);
        assert_eq!(s.device, None);
    }
}
