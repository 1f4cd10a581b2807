//! The `ExternalConnector` kind: gather the entries (spec, ConfigMaps, AddressGroups) → observe
//! the device's external resource and its list → pure plan → apply (the object; Push: one
//! dynamic call; Feed: publish the list on the EDL endpoint and ask the FortiGate to refresh)
//! → status from what the device reports.
//!
//! - `desired`: entries from every source, canonical, without expired ones (pure);
//! - `plan`: the object and push commands (pure); `fortigate`: observe and apply on a VDOM;
//!   `batch` / `fortigate_pass`: the connectors queued for one FortiGate as one batch (one
//!   observation, one push call);
//! - `fortimanager`: the ADOM object in the workspace, then `proxied`: the FortiGates behind
//!   the FortiManager through `/sys/proxy/json`; `fmg_pass`: that pass's status and events;
//!   `fmg_batch`: the connectors queued for one ADOM written in one workspace session.

pub mod batch;
pub mod desired;
pub mod fmg_batch;
mod fmg_pass;
pub mod fortigate;
pub mod fortigate_pass;
pub mod fortimanager;
pub mod plan;
pub mod proxied;
pub mod resource;

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::runtime::controller::Action;
use kube::runtime::events::EventType;
use kube::{Api, ResourceExt};

use self::desired::{DesiredList, SourceEntries};
use self::plan::Refusal;
use self::resource::{desired_resource, resource_url};
use crate::api::addressgroup::TargetRef;
use crate::api::conditions::{READY, SYNCED, is_true, ready_and_synced};
use crate::api::externalconnector::{
    ConnectorMode, EntryCounts, ExternalConnector, ExternalConnectorStatus,
};
use crate::api::{AddressGroup, addressgroup::DeletionPolicy};
use crate::model::Owner;
use crate::reconcile::connection::status::insecure_condition;
use crate::reconcile::context::Context;
use crate::reconcile::error::ReconcileError;
use crate::reconcile::lifecycle::{Reconciler, Reference, write_status};
use crate::reconcile::requeue::next_requeue_aligned;
use crate::reconcile::target::Target;

/// Controller name in metrics, events and logs.
pub const CONTROLLER: &str = "externalconnector";

pub use self::resource::PUSH_ONLY_URL;

crate::reconcile::lifecycle::kind_status!(ExternalConnectorStatus);

impl Reconciler for ExternalConnector {
    const KIND: &'static str = "ExternalConnector";
    const CONTROLLER: &'static str = CONTROLLER;
    const FINALIZER: &'static str = crate::reconcile::addressgroup::FINALIZER;
    type Status = ExternalConnectorStatus;

    fn current_status(&self) -> Option<&ExternalConnectorStatus> {
        self.status.as_ref()
    }

    fn target(&self) -> TargetRef {
        self.spec.target_ref.clone()
    }

    fn references(&self) -> Vec<Reference> {
        let mut out: Vec<Reference> = self
            .spec
            .entries_from
            .iter()
            .flat_map(|s| {
                let map = s
                    .config_map_ref
                    .as_ref()
                    .map(|r| Reference::ConfigMap(r.name.clone()));
                let group = s
                    .address_group_ref
                    .as_ref()
                    .map(|r| Reference::AddressGroup(r.name.clone()));
                map.into_iter().chain(group)
            })
            .collect();
        if let Some(r) = self
            .spec
            .feed
            .as_ref()
            .and_then(|f| f.credentials_secret_ref.as_ref())
        {
            out.push(Reference::Secret(r.name.clone()));
        }
        out
    }

    async fn apply(self: Arc<Self>, ctx: &Context) -> Result<Action, ReconcileError> {
        apply(self, ctx).await
    }

    async fn cleanup(self: Arc<Self>, ctx: &Context) -> Result<Action, ReconcileError> {
        cleanup(self, ctx).await
    }

    /// A standby serves the feed from its own cache too, so it answers FortiGates as the
    /// leader does (the leader publishes in `apply`, from the same reads).
    async fn on_every_replica(self: Arc<Self>, ctx: &Context) -> Result<(), ReconcileError> {
        if self.metadata.deletion_timestamp.is_some() {
            ctx.withdraw_feed(&self.namespace().unwrap_or_default(), &self.name_any());
            return Ok(());
        }
        gather_and_publish(ctx, &self, jiff::Timestamp::now())
            .await
            .map(|_| ())
    }
}

/// The URL the FortiGate polls for `ec`.
pub fn feed_url(ec: &ExternalConnector, base: Option<&str>) -> Option<String> {
    if let Some(url) = ec.spec.feed.as_ref().and_then(|f| f.url.clone()) {
        return Some(url);
    }
    let base = base?.trim_end_matches('/');
    Some(format!(
        "{base}/edl/{}/{}",
        ec.namespace().unwrap_or_default(),
        ec.name_any()
    ))
}

/// Every source's entries, read by name from this namespace.
async fn sources(
    ctx: &Context,
    ec: &ExternalConnector,
) -> Result<Vec<SourceEntries>, ReconcileError> {
    let namespace = ec.namespace().unwrap_or_default();
    let mut out = vec![SourceEntries::of_members("spec.entries", &ec.spec.entries)];
    let maps: Api<ConfigMap> = Api::namespaced(ctx.client.clone(), &namespace);
    let groups: Api<AddressGroup> = Api::namespaced(ctx.client.clone(), &namespace);
    for (i, source) in ec.spec.entries_from.iter().enumerate() {
        if let Some(r) = &source.config_map_ref {
            let map = maps.get_opt(&r.name).await.map_err(ReconcileError::Kube)?;
            let text = map
                .as_ref()
                .and_then(|m| m.data.as_ref())
                .and_then(|d| d.get(&r.key))
                .ok_or_else(|| {
                    ReconcileError::Source(format!(
                        "spec.entriesFrom[{i}].configMapRef: ConfigMap {namespace}/{} has no key {:?}",
                        r.name, r.key
                    ))
                })?;
            out.push(SourceEntries::of_lines(
                &format!("ConfigMap/{}[{}]", r.name, r.key),
                text,
            ));
        }
        if let Some(r) = &source.address_group_ref {
            let group = groups
                .get_opt(&r.name)
                .await
                .map_err(ReconcileError::Kube)?;
            let group = group.ok_or_else(|| {
                ReconcileError::Source(format!(
                    "spec.entriesFrom[{i}].addressGroupRef: AddressGroup {namespace}/{} does not exist",
                    r.name
                ))
            })?;
            out.push(SourceEntries::of_members(
                &format!("AddressGroup/{}", r.name),
                &group.spec.members,
            ));
        }
    }
    Ok(out)
}

/// The feed's basic credentials and the Secret's resourceVersion (to tell a change).
async fn feed_credentials(
    ctx: &Context,
    ec: &ExternalConnector,
) -> Result<(Option<(String, String)>, Option<String>), ReconcileError> {
    let Some(r) = ec
        .spec
        .feed
        .as_ref()
        .and_then(|f| f.credentials_secret_ref.as_ref())
    else {
        return Ok((None, None));
    };
    let namespace = ec.namespace().unwrap_or_default();
    let secret = Api::<Secret>::namespaced(ctx.client.clone(), &namespace)
        .get_opt(&r.name)
        .await
        .map_err(ReconcileError::Kube)?
        .ok_or_else(|| {
            ReconcileError::Source(format!(
                "spec.feed.credentialsSecretRef: Secret {namespace}/{} does not exist",
                r.name
            ))
        })?;
    let value = |key: &str| {
        crate::reconcile::connection::secret_value(&secret, key).ok_or_else(|| {
            ReconcileError::Source(format!(
                "spec.feed.credentialsSecretRef: Secret {namespace}/{} has no key {key:?}",
                r.name
            ))
        })
    };
    Ok((
        Some((value(&r.username_key)?, value(&r.password_key)?)),
        secret.metadata.resource_version.clone(),
    ))
}

/// What a connector declares and its feed credentials (with the Secret's resourceVersion),
/// read once; a Feed-mode list is published on the EDL endpoint (a Push one withdrawn) before
/// anything else, so the endpoint serves the new list even while the device is unreachable.
async fn gather_and_publish(
    ctx: &Context,
    ec: &ExternalConnector,
    now: jiff::Timestamp,
) -> Result<(DesiredList, Option<(String, String)>, Option<String>), ReconcileError> {
    let (namespace, name) = (ec.namespace().unwrap_or_default(), ec.name_any());
    let list = desired::desired(&sources(ctx, ec).await?, now);
    let (credentials, version) = feed_credentials(ctx, ec).await?;
    match ec.spec.mode {
        ConnectorMode::Feed => ctx.publish_feed(&namespace, &name, &list, credentials.clone()),
        ConnectorMode::Push => ctx.withdraw_feed(&namespace, &name),
    }
    Ok((list, credentials, version))
}

async fn apply(ec: Arc<ExternalConnector>, ctx: &Context) -> Result<Action, ReconcileError> {
    let namespace = ec.namespace().unwrap_or_default();
    let now = jiff::Timestamp::now();
    let (list, credentials, credentials_version) = gather_and_publish(ctx, &ec, now).await?;
    let (target, resolved) = ctx.target(&namespace, &ec.spec.target_ref).await?;
    tracing::Span::current().record("device", target.device());
    let resync = resolved
        .connection
        .resync_period()
        .unwrap_or(Duration::from_secs(300));
    ctx.admits_name(
        &namespace,
        &resolved.connection.url,
        "spec.resourceName",
        &ec.spec.resource_name,
    )?;
    let previous = ec.status.clone().unwrap_or_default();
    let Some(url) = resource_url(&ec, ctx.edl_base_url()) else {
        return Err(ReconcileError::Setup {
            reason: "FeedUrlUnknown",
            message: "no URL for the FortiGate to poll: spec.feed.url is unset and this controller runs without --edl-base-url".into(),
            remedy: "set spec.feed.url, or run the controller with --edl-base-url (the chart's edl.baseUrl): the EDL endpoint as the FortiGate reaches it".into(),
        });
    };
    let d = desired_resource(
        &ec,
        &url,
        credentials,
        credentials_version != previous.feed_credentials_version,
    );
    let (client, firmware) = match &target {
        Target::FortiGate { client, firmware } => (client, firmware),
        Target::FortiManager {
            client,
            spec,
            firmware,
        } => {
            let pass = fmg_pass::Pass {
                client,
                spec,
                adom_firmware: *firmware,
                desired: &d,
                list: &list,
                previous: &previous,
                credentials_version,
                insecure: resolved.connection.tls.insecure_skip_verify,
                resync,
            };
            return fmg_pass::apply(&ec, ctx, pass).await;
        }
    };
    let was_converged = previous.observed_generation == ec.metadata.generation
        && is_true(&previous.conditions, SYNCED);
    // Converged over this very spec and list (an expiry changes the list): any write now
    // repairs an out-of-band change.
    let unchanged_spec =
        was_converged && previous.list_digest.as_deref() == Some(list.digest().as_str());
    let request = batch::Request {
        desired: d,
        take_over: ec.spec.take_over,
        entries: list.entries.clone(),
        unchanged_spec,
    };
    // Through the device's batch: connectors already queued for this FortiGate share one
    // observation and one push call (a lone one runs at once, alone). A converged
    // connector's pass is a resync: it waits a moment for the rest of its device's tick.
    let applied = match batch::converge_batched(
        &ctx.connector_batches,
        client,
        *firmware,
        request,
        unchanged_spec,
    )
    .await?
    {
        batch::Pass::Refused(refusal) => {
            return refused(&ec, ctx, &previous, &list, refusal).await;
        }
        batch::Pass::Applied(applied) => *applied,
    };
    let batch::Applied {
        planned,
        push_failed,
        device,
        ..
    } = applied;
    // A pass over an unchanged spec that had to write repaired an out-of-band change.
    let drift = if unchanged_spec {
        planned.writes() as u64
    } else {
        0
    };
    if drift > 0 {
        ctx.metrics
            .drift_repairs
            .get_or_create(&crate::reconcile::metrics::ControllerLabels {
                controller: CONTROLLER.into(),
            })
            .inc_by(drift);
    }
    if planned.writes() > 0 {
        ctx.event(
            &*ec,
            EventType::Normal,
            "Applied",
            format!(
                "{} entries; object {}; push {}",
                list.entries.len(),
                match planned.object {
                    plan::ObjectWrite::None => "unchanged",
                    plan::ObjectWrite::Create(_) => "created",
                    plan::ObjectWrite::Update(_) => "updated",
                },
                match &planned.push.snapshot {
                    Some(all) => format!(
                        "snapshot of {}{}",
                        all.len(),
                        if drift > 0 { " after drift" } else { "" }
                    ),
                    None => format!("+{} -{}", planned.push.add.len(), planned.push.remove.len()),
                }
            ),
        )
        .await;
    }
    let mut status = feed_status(&ec, &previous, &list, &device, credentials_version, &url);
    if let Some(e) = &push_failed {
        push_degraded(&mut status, &previous, e, ec.metadata.generation);
        if !previous
            .conditions
            .iter()
            .any(|c| c.type_ == fmg_pass::PUSH_DEGRADED)
        {
            ctx.event(
                &*ec,
                EventType::Warning,
                "PushFailed",
                format!("the dynamic push failed: {e}; retrying within 30 s"),
            )
            .await;
        }
    }
    status.conditions.extend(insecure_condition(
        resolved.connection.tls.insecure_skip_verify,
        ec.metadata.generation,
        &previous.conditions,
    ));
    status.drift_repairs += drift;
    let settled = is_true(&status.conditions, READY);
    if status != previous {
        write_status(
            &Api::<ExternalConnector>::namespaced(ctx.client.clone(), &namespace),
            &ec.name_any(),
            &status,
        )
        .await?;
    }
    // A pull under way is looked at again soon; a failing one (a wrong password, an
    // unreachable URL) every 30 s, each look asking for one more pull. A settled one on its
    // device's tick, from the moment of returning, so the tick's passes wake (and batch)
    // together however long this one took.
    let next = next_requeue_aligned(
        resync,
        client.device(),
        list.next_expiry,
        jiff::Timestamp::now(),
    );
    let pending = status
        .conditions
        .iter()
        .any(|c| c.type_ == READY && c.reason == "Pending");
    Ok(Action::requeue(if settled {
        next
    } else if pending {
        // A loopback pull takes milliseconds, a real one up to seconds: look again soon once,
        // then every 2 s.
        let was_pending = previous
            .conditions
            .iter()
            .any(|c| c.type_ == READY && c.reason == "Pending");
        next.min(if was_pending {
            Duration::from_secs(2)
        } else {
            Duration::from_millis(250)
        })
    } else {
        next.min(Duration::from_secs(30))
    }))
}

/// A failed push on a FortiGate: Ready/Synced False `PushFailed` (the device keeps its last
/// list) and the `PushDegraded` warning condition, as through a FortiManager.
fn push_degraded(
    status: &mut ExternalConnectorStatus,
    previous: &ExternalConnectorStatus,
    e: &crate::device::DeviceError,
    generation: Option<i64>,
) {
    let message = format!(
        "the dynamic push failed ({e}); the device keeps its last list ({} of {} entries) and the next pass, within 30 s, pushes again. Remedy: {}",
        status.entries.on_device,
        status.entries.desired,
        e.remedy()
    );
    status.conditions = ready_and_synced(
        false,
        "PushFailed",
        message.clone(),
        generation,
        &previous.conditions,
    );
    status.conditions.push(crate::api::conditions::condition(
        fmg_pass::PUSH_DEGRADED,
        true,
        "PushFailed",
        message,
        generation,
        &previous.conditions,
    ));
}

/// The status after a pass, from what the device reports.
fn feed_status(
    ec: &ExternalConnector,
    previous: &ExternalConnectorStatus,
    list: &DesiredList,
    device: &fortigate::EntryList,
    credentials_version: Option<String>,
    url: &str,
) -> ExternalConnectorStatus {
    let generation = ec.metadata.generation;
    let holds = device.entries == list.entries;
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
    } else if device.status.overflow {
        (
            false,
            "ListOverflow",
            format!(
                "the device holds {} of {} entries: its list limit is reached; split the list or check the model's external-resource limits",
                device.entries.len(),
                list.entries.len()
            ),
        )
    } else if ec.spec.mode == ConnectorMode::Feed && device.status.status == "error" {
        let why = device.status.error.clone().unwrap_or_default();
        let remedy = match device.status.http_status_code {
            Some(401) | Some(403) => {
                "the FortiGate's feed credentials do not match the EDL endpoint's: check spec.feed.credentialsSecretRef"
            }
            Some(404) => "the URL does not name this list: check spec.feed.url / --edl-base-url",
            _ => {
                "check that the FortiGate reaches the feed URL (routing, DNS, TLS: its CA and spec.feed.serverIdentityCheck)"
            }
        };
        (
            false,
            "FeedPullFailed",
            format!(
                "the FortiGate's last pull of {url} failed ({why}{}); it keeps its last good list. Remedy: {remedy}",
                device
                    .status
                    .http_status_code
                    .map(|c| format!(", HTTP {c}"))
                    .unwrap_or_default()
            ),
        )
    } else if !holds {
        (
            false,
            "Pending",
            format!(
                "the device holds {} of {} entries; waiting for it to pull",
                device.entries.intersection(&list.entries).count(),
                list.entries.len()
            ),
        )
    } else {
        (
            true,
            "Converged",
            format!("{} entries on the device", list.entries.len()),
        )
    };
    ExternalConnectorStatus {
        observed_generation: generation,
        conditions: ready_and_synced(ok, reason, message, generation, &previous.conditions),
        entries: EntryCounts {
            desired: list.entries.len() as u32,
            on_device: device.entries.len() as u32,
            invalid: device.invalid,
        },
        device: Some(device.status.clone()),
        feed_url: (ec.spec.mode == ConnectorMode::Feed).then(|| url.to_string()),
        feed_credentials_version: credentials_version,
        drift_repairs: previous.drift_repairs,
        list_digest: Some(list.digest()),
        next_expiry: list.next_expiry.map(Time),
        devices: Vec::new(),
        last_error: None,
    }
}

/// Reports a plan refused before any write.
async fn refused(
    ec: &ExternalConnector,
    ctx: &Context,
    previous: &ExternalConnectorStatus,
    list: &DesiredList,
    refusal: Refusal,
) -> Result<Action, ReconcileError> {
    let (reason, message) = refusal.explain(&ec.spec.resource_name);
    let generation = ec.metadata.generation;
    let status = ExternalConnectorStatus {
        observed_generation: generation,
        conditions: ready_and_synced(
            false,
            reason,
            message.clone(),
            generation,
            &previous.conditions,
        ),
        entries: EntryCounts {
            desired: list.entries.len() as u32,
            ..Default::default()
        },
        ..previous.clone()
    };
    if status != *previous {
        ctx.event(ec, EventType::Warning, reason, message).await;
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
    Ok(Action::requeue(Duration::from_secs(300)))
}

async fn cleanup(ec: Arc<ExternalConnector>, ctx: &Context) -> Result<Action, ReconcileError> {
    let namespace = ec.namespace().unwrap_or_default();
    ctx.withdraw_feed(&namespace, &ec.name_any());
    if ec.spec.deletion_policy == DeletionPolicy::Orphan {
        return Ok(Action::await_change());
    }
    let target = match ctx
        .target_for_cleanup(&namespace, &ec.spec.target_ref)
        .await
    {
        Ok((t, _)) => t,
        Err(ReconcileError::Resolve(e)) if e.is_missing() => {
            let note = format!(
                "deletionPolicy is Delete but the device could not be reached ({e}); left on the device: external resource {:?}. Remove it there by hand, or recreate the connection and its Secret and this resource, then delete the resource first.",
                ec.spec.resource_name
            );
            ctx.event(&*ec, EventType::Warning, "LeftOnDevice", note)
                .await;
            return Ok(Action::await_change());
        }
        Err(e) => return Err(e),
    };
    let owner = Owner {
        namespace,
        name: ec.name_any(),
    };
    let client = match &target {
        Target::FortiGate { client, .. } => client,
        Target::FortiManager { client, spec, .. } => {
            return fmg_pass::cleanup(&ec, ctx, client, spec, owner).await;
        }
    };
    // Only what this resource owns is deleted.
    if let Some(object) = client.get(fortigate::TABLE, &ec.spec.resource_name).await?
        && owner.owns(object["comments"].as_str().unwrap_or_default())
    {
        fortigate::delete(client, &ec.spec.resource_name).await?;
    }
    Ok(Action::await_change())
}
