//! The controller's reconcile without Kubernetes: every AddressGroup of the manifests against
//! its target, through the same endpoints, Guard, planner and appliers as `fortisync run`.

use std::path::PathBuf;

use kube::ResourceExt;
use serde::Serialize;

use super::doctor::render::safe_url;
use super::load::Manifests;
use super::refused::RefusedKeys;
use super::secure::{HTTPS_REMEDY, require_https, verification_off};
use crate::api::AddressGroup;
use crate::api::addressgroup::{ManagementPolicy, TargetKind};
use crate::api::common::ErrorReport;
use crate::device::EndpointConfig;
use crate::device::wording::{self, noun};
use crate::device::{DeviceError, DeviceMetrics, Endpoints};
use crate::reconcile::addressgroup::converge::{self, Convergence};
use crate::reconcile::addressgroup::plan::Op;
use crate::reconcile::connection::{ResolvedConnection, endpoint_config};
use crate::reconcile::error::ReconcileError;
use crate::reconcile::target::{DeviceFacts, Target};

/// Where the credentials of the manifests come from, besides Secret manifests.
#[derive(Debug, Clone, Default)]
pub struct CredentialSources {
    /// A directory laid out like mounted Secrets: `<dir>/<secret>/<key>`.
    pub secrets_dir: Option<PathBuf>,
}

/// The outcome for one AddressGroup.
#[derive(Debug, Clone)]
pub struct GroupRun {
    /// `namespace/name`.
    pub resource: String,
    /// The group name on the device.
    pub group_name: String,
    /// `FortiGate ns/name` or `FortiManager ns/name`.
    pub target: String,
    /// The device URL and VDOM/ADOM.
    pub location: String,
    /// What was planned (and applied, with `apply`).
    pub result: Result<Convergence, ErrorReport>,
    /// Whether the plan was only printed (ObserveOnly resources are never written).
    pub observe_only: bool,
    /// Whether the connection turns certificate verification off (`spec.tls.insecureSkipVerify`).
    pub insecure_tls: bool,
}

impl GroupRun {
    /// Writes needed (plan) or made (apply).
    pub fn writes(&self) -> usize {
        self.result.as_ref().map_or(0, Convergence::writes)
    }
}

/// Runs every AddressGroup once, in namespace/name order; `write` applies the plans.
/// `progress` hears each device write as it is made.
pub struct Runner {
    endpoints: Endpoints,
    facts: DeviceFacts,
    sources: CredentialSources,
    refused: RefusedKeys,
}

impl Runner {
    /// A runner with its own endpoints (one Guard per device for the whole run), remembering
    /// nothing across runs.
    pub fn new(sources: CredentialSources) -> Self {
        Self {
            endpoints: Endpoints::new(DeviceMetrics::default()),
            facts: DeviceFacts::default(),
            sources,
            refused: RefusedKeys::none(),
        }
    }

    /// Consults and keeps `refused` across runs: a key a device refused before is not sent.
    pub fn remembering(mut self, refused: RefusedKeys) -> Self {
        self.refused = refused;
        self
    }

    /// Everything before a request: the spec, its connection and Secrets, an https:// URL,
    /// and a credential no earlier run saw refused. Fills in `run`'s location and TLS mode.
    fn prepare(
        &self,
        manifests: &Manifests,
        group: &AddressGroup,
        run: &mut GroupRun,
    ) -> Result<(ResolvedConnection, EndpointConfig), ErrorReport> {
        if let Some(problem) = crate::api::validate::validate(&group.spec).first() {
            return Err(reconcile_report(ReconcileError::Spec(problem.clone())));
        }
        let namespace = group.namespace().unwrap_or_default();
        let target = &group.spec.target_ref;
        let resolved = manifests
            .resolve(&namespace, target, self.sources.secrets_dir.as_deref())
            .map_err(|e| reconcile_report(e.into()))?;
        run.location = format!(
            "{} ({})",
            safe_url(&resolved.connection.url),
            match target.kind {
                TargetKind::FortiGate => format!("vdom {}", resolved.scope),
                TargetKind::FortiManager => format!("adom {}", resolved.scope),
            }
        );
        // The CRD admits only https://; the CLI reads manifests without admission, so it
        // refuses the same, before any request (the key would cross in cleartext).
        require_https("spec.url", &resolved.connection.url).map_err(|message| ErrorReport {
            reason: "InvalidSpec".into(),
            message,
            remedy: HTTPS_REMEDY.into(),
        })?;
        run.insecure_tls = resolved.connection.tls.insecure_skip_verify;
        let config = endpoint_config(&resolved).map_err(reconcile_report)?;
        if let Some(refusal) = self.refused.refused(&config) {
            let refused = DeviceError::Unauthorized {
                ctx: Default::default(),
            };
            return Err(ErrorReport {
                reason: "Unauthorized".into(),
                message: refusal.message(noun(&config.credentials)),
                remedy: wording::remedy(&refused, &config.credentials).to_string(),
            });
        }
        Ok((resolved, config))
    }

    /// Plans (and with `write` applies) one AddressGroup.
    pub async fn run_group(
        &self,
        manifests: &Manifests,
        group: &AddressGroup,
        write: bool,
        progress: crate::reconcile::addressgroup::converge::WriteObserver<'_>,
    ) -> GroupRun {
        let namespace = group.namespace().unwrap_or_default();
        let target = &group.spec.target_ref;
        let kind = match target.kind {
            TargetKind::FortiGate => "FortiGate",
            TargetKind::FortiManager => "FortiManager",
        };
        let observe_only = group.spec.management_policy == ManagementPolicy::ObserveOnly;
        let mut run = GroupRun {
            resource: format!("{namespace}/{}", group.name_any()),
            group_name: group.spec.group_name.clone(),
            target: format!("{kind} {namespace}/{}", target.name),
            location: String::new(),
            result: Ok(Convergence::default()),
            observe_only,
            insecure_tls: false,
        };
        let (resolved, config) = match self.prepare(manifests, group, &mut run) {
            Ok(ready) => ready,
            Err(report) => {
                run.result = Err(report);
                return run;
            }
        };
        let outcome: Result<Convergence, ReconcileError> = async {
            let endpoint = self.endpoints.get(&config)?;
            let target = Target::connect(endpoint, &resolved, &self.facts).await?;
            converge::converge(
                &target,
                group,
                jiff::Timestamp::now(),
                write && !observe_only,
                progress,
            )
            .await
        }
        .await;
        match &outcome {
            Err(ReconcileError::Device(DeviceError::Unauthorized { .. })) => {
                self.refused.remember(&config);
            }
            Ok(_) => self.refused.forget(&config),
            Err(_) => {}
        }
        run.result = outcome.map_err(|e| match e {
            ReconcileError::Device(d) => wording::report(&d, &config.credentials),
            other => reconcile_report(other),
        });
        run
    }

    /// Plans (and with `write` applies) every AddressGroup of `manifests`.
    pub async fn run_all(
        &self,
        manifests: &Manifests,
        write: bool,
        progress: crate::reconcile::addressgroup::converge::WriteObserver<'_>,
    ) -> Vec<GroupRun> {
        let mut groups: Vec<&AddressGroup> = manifests.address_groups.iter().collect();
        groups.sort_by_key(|g| (g.namespace(), g.name_any()));
        let mut out = Vec::new();
        for g in groups {
            out.push(self.run_group(manifests, g, write, progress).await);
        }
        out
    }
}

fn reconcile_report(e: ReconcileError) -> ErrorReport {
    match e {
        ReconcileError::Device(d) => d.report(),
        other => ErrorReport {
            reason: other.reason().to_string(),
            message: other.to_string(),
            remedy: other.remedy(),
        },
    }
}

/// The machine-readable form of a run (`--output json`).
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RunReport<'a> {
    /// Writes needed (plan) or made (apply), over every resource.
    pub changes: usize,
    /// Resources that failed.
    pub failures: usize,
    /// What deserves attention besides the plan (TLS verification turned off).
    pub warnings: Vec<String>,
    /// One entry per AddressGroup.
    pub resources: Vec<ResourceReport<'a>>,
}

/// One AddressGroup in a [`RunReport`].
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ResourceReport<'a> {
    /// `AddressGroup`.
    pub kind: &'static str,
    /// `namespace/name`.
    pub resource: &'a str,
    /// Target connection.
    pub target: &'a str,
    /// Group name on the device.
    pub group_name: &'a str,
    /// Writes, in order, per family.
    pub ops: Vec<&'a Op>,
    /// Members kept that fortisync does not own.
    pub foreign_members: Vec<&'a str>,
    /// Members that could not be applied.
    pub conflicts: Vec<String>,
    /// Per FortiGate behind a FortiManager (`install: Proxy`).
    pub devices: Vec<DeviceReport<'a>>,
    /// The failure, with its remedy.
    pub error: Option<&'a ErrorReport>,
}

/// One device in a [`ResourceReport`].
#[derive(Debug, Serialize)]
pub struct DeviceReport<'a> {
    /// FortiManager device name.
    pub device: &'a str,
    /// Its writes.
    pub ops: Vec<&'a Op>,
    /// Why it could not be reached or written.
    pub error: Option<&'a str>,
}

/// The connections of `runs` that turn certificate verification off, each once, in order.
pub fn insecure_connections(runs: &[GroupRun]) -> Vec<&str> {
    let mut out: Vec<&str> = Vec::new();
    for r in runs.iter().filter(|r| r.insecure_tls) {
        if !out.contains(&r.target.as_str()) {
            out.push(&r.target);
        }
    }
    out
}

/// Builds the JSON report of `runs`.
pub fn report(runs: &[GroupRun]) -> RunReport<'_> {
    let resources = runs
        .iter()
        .map(|r| {
            let (ops, foreign, conflicts, devices) = match &r.result {
                Ok(c) => (
                    c.plans.iter().flat_map(|p| p.plan.ops()).collect(),
                    c.plans
                        .iter()
                        .flat_map(|p| p.plan.foreign_members())
                        .map(String::as_str)
                        .collect(),
                    c.plans
                        .iter()
                        .flat_map(|p| p.plan.conflicts())
                        .map(ToString::to_string)
                        .collect(),
                    c.devices
                        .iter()
                        .map(|d| DeviceReport {
                            device: &d.device,
                            ops: d.plan.ops().iter().collect(),
                            error: d.error.as_deref(),
                        })
                        .collect(),
                ),
                Err(_) => (Vec::new(), Vec::new(), Vec::new(), Vec::new()),
            };
            ResourceReport {
                kind: "AddressGroup",
                resource: &r.resource,
                target: &r.target,
                group_name: &r.group_name,
                ops,
                foreign_members: foreign,
                conflicts,
                devices,
                error: r.result.as_ref().err(),
            }
        })
        .collect();
    RunReport {
        warnings: insecure_connections(runs)
            .into_iter()
            .map(|t| verification_off(t, "spec.tls.insecureSkipVerify"))
            .collect(),
        changes: runs.iter().map(GroupRun::writes).sum(),
        failures: runs.iter().filter(|r| r.result.is_err()).count(),
        resources,
    }
}
