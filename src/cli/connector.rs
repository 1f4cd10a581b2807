//! `plan`/`apply` for ExternalConnectors: the entries from the manifests (inline, ConfigMaps,
//! AddressGroups), the device's external resource and list, the same pure planner and the same
//! writes as the controller. Without Kubernetes there is no EDL endpoint, so a Feed-mode list
//! needs `spec.feed.url` (where the user serves it); plan/apply write the object and ask the
//! FortiGate to pull.

use std::collections::BTreeSet;
use std::fmt::Write as _;

use kube::ResourceExt;
use serde::Serialize;

use super::load::Manifests;
use super::render::block;
use super::standalone::{Runner, reconcile_report};
use crate::api::addressgroup::TargetKind;
use crate::api::common::ErrorReport;
use crate::api::externalconnector::{ConnectorMode, DeviceListStatus, ExternalConnector};
use crate::device::wording;
use crate::reconcile::connection::secret_value;
use crate::reconcile::error::ReconcileError;
use crate::reconcile::externalconnector::desired::{self, SourceEntries};
use crate::reconcile::externalconnector::fortigate;
use crate::reconcile::externalconnector::fortimanager;
use crate::reconcile::externalconnector::plan::{self, ConnectorPlan, ObjectWrite};
use crate::reconcile::externalconnector::proxied::{DevicePass, DeviceState};
use crate::reconcile::externalconnector::resource::{desired_resource, resource_url};
use crate::reconcile::target::Target;

/// Entries listed one per line in the text report before "and N more".
const SHOWN_ENTRIES: usize = 20;

/// The outcome for one ExternalConnector.
#[derive(Debug, Clone)]
pub struct ConnectorRun {
    /// `namespace/name`.
    pub resource: String,
    /// The external resource's name on the device.
    pub resource_name: String,
    /// `FortiGate ns/name` or `FortiManager ns/name`.
    pub target: String,
    /// The device URL and VDOM/ADOM.
    pub location: String,
    /// Feed or Push.
    pub mode: ConnectorMode,
    /// What was planned (and applied, with `apply`).
    pub result: Result<ConnectorOutcome, ErrorReport>,
    /// Whether the connection turns certificate verification off.
    pub insecure_tls: bool,
}

/// A planned (or applied) pass over one connector.
#[derive(Debug, Clone, Default)]
pub struct ConnectorOutcome {
    /// Entries declared (canonical, without expired ones).
    pub desired: usize,
    /// Declared entries that are not addresses (never sent).
    pub invalid: Vec<String>,
    /// The writes; None when the plan was refused.
    pub plan: Option<ConnectorPlan>,
    /// Why nothing may be written, as the controller reports it.
    pub refusal: Option<ErrorReport>,
    /// Entries the device holds now (after `apply`: after the writes).
    pub on_device: usize,
    /// What the device reports of its last pull.
    pub device: Option<DeviceListStatus>,
    /// The FortiGate was asked to pull the feed now.
    pub refreshed: bool,
    /// Through a FortiManager: the ADOM object and every targeted FortiGate.
    pub fortimanager: Option<fortimanager::Outcome>,
}

impl ConnectorOutcome {
    /// Writes needed (plan) or made (apply).
    pub fn writes(&self) -> usize {
        self.plan.as_ref().map_or(0, ConnectorPlan::writes)
            + self
                .fortimanager
                .as_ref()
                .map_or(0, fortimanager::Outcome::writes)
    }
}

impl ConnectorRun {
    /// Writes needed (plan) or made (apply).
    pub fn writes(&self) -> usize {
        self.result.as_ref().map_or(0, ConnectorOutcome::writes)
    }

    /// Failed, or refused before any write.
    pub fn failed(&self) -> bool {
        self.result.as_ref().map_or(true, |o| {
            o.refusal.is_some()
                || !o.invalid.is_empty()
                || o.fortimanager.as_ref().is_some_and(|f| {
                    f.devices
                        .iter()
                        .any(|d| !matches!(d.state, DeviceState::Converged | DeviceState::Pending))
                })
        })
    }
}

/// Every source's entries, from the manifests (a missing source is an error naming the field).
fn sources(
    manifests: &Manifests,
    ec: &ExternalConnector,
) -> Result<Vec<SourceEntries>, ReconcileError> {
    let namespace = ec.namespace().unwrap_or_default();
    let mut out = vec![SourceEntries::of_members("spec.entries", &ec.spec.entries)];
    for (i, source) in ec.spec.entries_from.iter().enumerate() {
        if let Some(r) = &source.config_map_ref {
            let text = manifests
                .config_maps
                .iter()
                .find(|m| m.namespace().as_deref() == Some(&namespace) && m.name_any() == r.name)
                .and_then(|m| m.data.as_ref()?.get(&r.key).cloned())
                .ok_or_else(|| {
                    ReconcileError::Source(format!(
                        "spec.entriesFrom[{i}].configMapRef: the manifests hold no ConfigMap {namespace}/{} with key {:?}",
                        r.name, r.key
                    ))
                })?;
            out.push(SourceEntries::of_lines(
                &format!("ConfigMap/{}[{}]", r.name, r.key),
                &text,
            ));
        }
        if let Some(r) = &source.address_group_ref {
            let group = manifests
                .address_groups
                .iter()
                .find(|g| g.namespace().as_deref() == Some(&namespace) && g.name_any() == r.name)
                .ok_or_else(|| {
                    ReconcileError::Source(format!(
                        "spec.entriesFrom[{i}].addressGroupRef: the manifests hold no AddressGroup {namespace}/{}",
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

/// The feed's basic credentials, from a Secret manifest, the secrets directory or the
/// environment, as the connection's credentials are.
fn feed_credentials(
    runner: &Runner,
    manifests: &Manifests,
    ec: &ExternalConnector,
) -> Result<Option<(String, String)>, ReconcileError> {
    let Some(r) = ec
        .spec
        .feed
        .as_ref()
        .and_then(|f| f.credentials_secret_ref.as_ref())
    else {
        return Ok(None);
    };
    let namespace = ec.namespace().unwrap_or_default();
    let keys = [r.username_key.clone(), r.password_key.clone()];
    let secret = manifests
        .secret(
            &namespace,
            &r.name,
            &keys,
            runner.sources.secrets_dir.as_deref(),
        )
        .ok_or_else(|| {
            ReconcileError::Source(format!(
                "spec.feed.credentialsSecretRef: no Secret {namespace}/{} in the manifests, the secrets directory or the environment",
                r.name
            ))
        })?;
    let value = |key: &str| {
        secret_value(&secret, key).ok_or_else(|| {
            ReconcileError::Source(format!(
                "spec.feed.credentialsSecretRef: Secret {namespace}/{} has no key {key:?}",
                r.name
            ))
        })
    };
    Ok(Some((value(&r.username_key)?, value(&r.password_key)?)))
}

impl Runner {
    /// Plans (and with `write` applies) one ExternalConnector.
    pub async fn run_connector(
        &self,
        manifests: &Manifests,
        ec: &ExternalConnector,
        write: bool,
    ) -> ConnectorRun {
        let namespace = ec.namespace().unwrap_or_default();
        let target = &ec.spec.target_ref;
        let kind = match target.kind {
            TargetKind::FortiGate => "FortiGate",
            TargetKind::FortiManager => "FortiManager",
        };
        let mut run = ConnectorRun {
            resource: format!("{namespace}/{}", ec.name_any()),
            resource_name: ec.spec.resource_name.clone(),
            target: format!("{kind} {namespace}/{}", target.name),
            location: String::new(),
            mode: ec.spec.mode,
            result: Ok(ConnectorOutcome::default()),
            insecure_tls: false,
        };
        let problems = crate::api::validate::validate_external_connector(&ec.spec);
        let prepared = match self.prepare(manifests, &namespace, target, &problems) {
            Ok(ready) => ready,
            Err(report) => {
                run.result = Err(report);
                return run;
            }
        };
        run.location = prepared.location.clone();
        run.insecure_tls = prepared.insecure_tls;
        let outcome = async {
            let list = desired::desired(&sources(manifests, ec)?, jiff::Timestamp::now());
            let credentials = feed_credentials(self, manifests, ec)?;
            let url = resource_url(ec, None).ok_or_else(|| ReconcileError::Setup {
                reason: "FeedUrlUnknown",
                message: "no URL for the FortiGate to poll: spec.feed.url is unset, and plan/apply serve no EDL endpoint (only `fortisync run` does)".into(),
                remedy: "set spec.feed.url to where the list is served, or let the controller (`fortisync run --edl-base-url`) converge this resource".into(),
            })?;
            let target = self.connect(&prepared).await?;
            // The device never reads a feed password back: plan/apply cannot tell a changed
            // one and write it with the object only (the controller tracks the Secret).
            let d = desired_resource(ec, &url, credentials.clone(), false);
            let (client, firmware) = match &target {
                Target::FortiGate { client, firmware } => (client, firmware),
                Target::FortiManager {
                    client,
                    spec,
                    firmware,
                } => {
                    let converged = BTreeSet::new();
                    let pass = DevicePass {
                        desired: &d,
                        take_over: ec.spec.take_over,
                        entries: &list.entries,
                        targets: &ec.spec.device_targets,
                        converged: &converged,
                    };
                    let outcome = fortimanager::converge(client, spec, *firmware, pass, write && list.invalid.is_empty()).await?;
                    let mut out = ConnectorOutcome {
                        desired: list.entries.len(),
                        invalid: list.invalid.clone(),
                        on_device: outcome
                            .devices
                            .iter()
                            .filter_map(|x| x.list.as_ref().map(|l| l.entries.len()))
                            .min()
                            .unwrap_or(0),
                        ..Default::default()
                    };
                    if let Some(refusal) = &outcome.refusal {
                        out.refusal = Some(refusal.report(&ec.spec.resource_name));
                    }
                    out.fortimanager = Some(outcome);
                    return Ok(out);
                }
            };
            let (object, on_device) = fortigate::observe(client, &d.name).await?;
            let held = on_device.as_ref().map(|l| l.entries.clone()).unwrap_or_default();
            let mut outcome = ConnectorOutcome {
                desired: list.entries.len(),
                invalid: list.invalid.clone(),
                on_device: held.len(),
                device: on_device.as_ref().map(|l| l.status.clone()),
                ..Default::default()
            };
            let planned = plan::plan(
                &d,
                *firmware,
                object.as_ref(),
                ec.spec.take_over,
                &list.entries,
                &held,
                false,
            );
            let planned = match planned {
                Ok(p) => p,
                Err(refusal) => {
                    outcome.refusal = Some(refusal.report(&ec.spec.resource_name));
                    return Ok(outcome);
                }
            };
            if write && list.invalid.is_empty() {
                fortigate::apply(client, &d.name, &planned).await?;
                if ec.spec.mode == ConnectorMode::Feed && planned.writes() > 0 {
                    fortigate::refresh(client, &d.name).await?;
                    outcome.refreshed = true;
                }
                if planned.writes() > 0 {
                    let now = fortigate::entry_list(client, &d.name).await?;
                    outcome.on_device = now.entries.len();
                    outcome.device = Some(now.status);
                }
            }
            outcome.plan = Some(planned);
            Ok(outcome)
        }
        .await;
        self.remember(&prepared.config, &outcome);
        let config = &prepared.config;
        run.result = outcome.map_err(|e| match e {
            ReconcileError::Device(d) => wording::report(&d, &config.credentials),
            other => reconcile_report(other),
        });
        run
    }
}

/// Up to [`SHOWN_ENTRIES`] lines of `entries` with `marker`, then a count of the rest.
fn entry_lines(marker: char, entries: &[String], lines: &mut Vec<String>) {
    for e in entries.iter().take(SHOWN_ENTRIES) {
        lines.push(format!("{marker} entry {e}"));
    }
    if entries.len() > SHOWN_ENTRIES {
        lines.push(format!(
            "{marker} ... and {} more entries",
            entries.len() - SHOWN_ENTRIES
        ));
    }
}

/// The text block of one connector (`applied` says whether the writes were made).
pub fn render(run: &ConnectorRun, applied: bool, color: bool) -> String {
    let head = format!(
        "ExternalConnector {} -> {} external resource {:?} ({})",
        run.resource,
        run.target,
        run.resource_name,
        match run.mode {
            ConnectorMode::Feed => "Feed",
            ConnectorMode::Push => "Push",
        }
    );
    let mut lines = Vec::new();
    match &run.result {
        Err(e) => {
            lines.push(format!("! {}: {}", e.reason, e.message));
            lines.push(format!("  remedy: {}", e.remedy));
        }
        Ok(o) => {
            for i in &o.invalid {
                lines.push(format!("! not an address, left out: {i}"));
            }
            if let Some(p) = &o.plan {
                match &p.object {
                    ObjectWrite::None => {}
                    ObjectWrite::Create(_) => {
                        lines.push(format!("+ external resource {}", run.resource_name))
                    }
                    ObjectWrite::Update(_) => {
                        lines.push(format!("~ external resource {}", run.resource_name))
                    }
                }
                if let Some(all) = &p.push.snapshot {
                    lines.push(format!(
                        "~ snapshot: the list becomes {} entries",
                        all.len()
                    ));
                } else {
                    entry_lines('-', &p.push.remove, &mut lines);
                    entry_lines('+', &p.push.add, &mut lines);
                }
            }
            if let Some(f) = &o.fortimanager {
                match &f.adom {
                    ObjectWrite::None => {}
                    ObjectWrite::Create(_) => lines.push(format!(
                        "+ ADOM external resource {} (in the workspace)",
                        run.resource_name
                    )),
                    ObjectWrite::Update(_) => lines.push(format!(
                        "~ ADOM external resource {} (in the workspace)",
                        run.resource_name
                    )),
                }
                for dev in &f.devices {
                    let name = match &dev.vdom {
                        Some(v) => format!("{} (vdom {v})", dev.name),
                        None => dev.name.clone(),
                    };
                    let held = dev
                        .list
                        .as_ref()
                        .map(|l| format!(", holds {} entries", l.entries.len()))
                        .unwrap_or_default();
                    match (&dev.error, dev.state) {
                        (Some(e), _) => {
                            lines.push(format!("! device {name}: {}: {e}", dev.state.reason()))
                        }
                        (None, _) if dev.writes > 0 => {
                            lines.push(format!("~ device {name}: {} write(s){held}", dev.writes))
                        }
                        (None, state) => {
                            lines.push(format!("= device {name}: {}{held}", state.reason()))
                        }
                    }
                }
            }
            if o.refreshed {
                lines.push("~ refresh: the FortiGate pulls the feed now".to_string());
            }
            if let Some(r) = &o.refusal {
                lines.push(format!("! {}: {}", r.reason, r.message));
                lines.push(format!("  remedy: {}", r.remedy));
            } else if o.writes() == 0 && o.invalid.is_empty() {
                lines.push("= no changes".to_string());
            } else if applied && o.invalid.is_empty() {
                lines.push(format!("= applied {} write(s)", o.writes()));
            }
            // A refused object is someone else's: its list says nothing of this resource.
            if let Some(d) = o.device.as_ref().filter(|_| o.refusal.is_none()) {
                let mut line = format!(
                    "= device holds {} of {} entries; list status {}",
                    o.on_device, o.desired, d.status
                );
                if let Some(e) = &d.error {
                    let _ = write!(line, ", last pull error: {e}");
                }
                if d.overflow {
                    line.push_str(", OVERFLOW: the device's list limit is reached");
                }
                lines.push(line);
            }
        }
    }
    block(&head, &run.location, &lines, color)
}

/// One connector in the JSON report.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ConnectorReport<'a> {
    /// `ExternalConnector`.
    pub kind: &'static str,
    /// `namespace/name`.
    pub resource: &'a str,
    /// Target connection.
    pub target: &'a str,
    /// Name on the device.
    pub resource_name: &'a str,
    /// `create`, `update` or none.
    pub object: Option<&'static str>,
    /// Entries to add (Push).
    pub add: Vec<&'a str>,
    /// Entries to remove (Push).
    pub remove: Vec<&'a str>,
    /// The whole list, when drift calls for a snapshot.
    pub snapshot: Option<usize>,
    /// Declared entries.
    pub desired: usize,
    /// Entries the device holds.
    pub on_device: usize,
    /// Declared entries that are not addresses.
    pub invalid: Vec<&'a str>,
    /// What the device reports of its list.
    pub device: Option<&'a DeviceListStatus>,
    /// Refused before any write, or failed.
    pub error: Option<&'a ErrorReport>,
}

fn strs(v: Option<&Vec<String>>) -> Vec<&str> {
    v.into_iter().flatten().map(String::as_str).collect()
}

/// The JSON form of `run`.
pub fn report(run: &ConnectorRun) -> ConnectorReport<'_> {
    let ok = run.result.as_ref().ok();
    let plan = ok.and_then(|o| o.plan.as_ref());
    ConnectorReport {
        kind: "ExternalConnector",
        resource: &run.resource,
        target: &run.target,
        resource_name: &run.resource_name,
        object: plan.and_then(|p| match p.object {
            ObjectWrite::None => None,
            ObjectWrite::Create(_) => Some("create"),
            ObjectWrite::Update(_) => Some("update"),
        }),
        add: strs(plan.map(|p| &p.push.add)),
        remove: strs(plan.map(|p| &p.push.remove)),
        snapshot: plan.and_then(|p| p.push.snapshot.as_ref().map(Vec::len)),
        desired: ok.map_or(0, |o| o.desired),
        on_device: ok.map_or(0, |o| o.on_device),
        invalid: strs(ok.map(|o| &o.invalid)),
        device: ok.and_then(|o| o.device.as_ref()),
        error: match &run.result {
            Err(e) => Some(e),
            Ok(o) => o.refusal.as_ref(),
        },
    }
}
