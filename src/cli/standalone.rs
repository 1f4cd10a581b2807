//! The controller's reconcile without Kubernetes: every AddressGroup of the manifests against
//! its target, through the same endpoints, Guard, planner and appliers as `fortisync run`.

use std::path::PathBuf;

use kube::ResourceExt;
use serde::Serialize;

use super::connector::{self, ConnectorReport};
use super::doctor::render::safe_url;
use super::load::Manifests;
use super::refused::RefusedKeys;
use super::runs::Runs;
use super::secure::{HTTPS_REMEDY, require_https, verification_off};
use super::trustedhost::{self, TrustedHostReport};
use crate::api::AddressGroup;
use crate::api::addressgroup::{ManagementPolicy, TargetKind, TargetRef};
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

/// A resource's connection, resolved and checked before any request.
pub(crate) struct Prepared {
    pub resolved: ResolvedConnection,
    pub config: EndpointConfig,
    /// The device URL and VDOM/ADOM, for the report.
    pub location: String,
    /// The connection turns certificate verification off.
    pub insecure_tls: bool,
}

/// Runs every AddressGroup once, in namespace/name order; `write` applies the plans.
/// `progress` hears each device write as it is made.
pub struct Runner {
    endpoints: Endpoints,
    facts: DeviceFacts,
    pub(crate) sources: CredentialSources,
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

    /// Everything before a request: the spec (`problems`: what offline admission found), its
    /// connection and Secrets, an https:// URL, and a credential no earlier run saw refused.
    pub(crate) fn prepare(
        &self,
        manifests: &Manifests,
        namespace: &str,
        target: &TargetRef,
        problems: &[String],
    ) -> Result<Prepared, ErrorReport> {
        if let Some(problem) = problems.first() {
            // Found by the CLI's own admission rules: the cluster would refuse it the same.
            return Err(ErrorReport {
                reason: "InvalidSpec".into(),
                message: format!("invalid spec: {problem}"),
                remedy: "fix the field the message names; a cluster's admission refuses the same"
                    .into(),
            });
        }
        let resolved = manifests
            .resolve(namespace, target, self.sources.secrets_dir.as_deref())
            .map_err(|e| reconcile_report(e.into()))?;
        let location = format!(
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
        let insecure_tls = resolved.connection.tls.insecure_skip_verify;
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
        Ok(Prepared {
            resolved,
            config,
            location,
            insecure_tls,
        })
    }

    /// Connects to the prepared target (one endpoint and Guard per device for the run).
    pub(crate) async fn connect(&self, prepared: &Prepared) -> Result<Target, ReconcileError> {
        let endpoint = self.endpoints.get(&prepared.config)?;
        Target::connect(endpoint, &prepared.resolved, &self.facts).await
    }

    /// Remembers what the device said of the credential: a refused key is not sent by a later
    /// run until its Secret changes; an accepted one is forgotten from the refused list.
    pub(crate) fn remember<T>(&self, config: &EndpointConfig, outcome: &Result<T, ReconcileError>) {
        match outcome {
            Err(ReconcileError::Device(DeviceError::Unauthorized { .. })) => {
                self.refused.remember(config);
            }
            Ok(_) => self.refused.forget(config),
            Err(_) => {}
        }
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
        let problems = crate::api::validate::validate(&group.spec);
        let prepared = match self.prepare(manifests, &namespace, target, &problems) {
            Ok(ready) => ready,
            Err(report) => {
                run.result = Err(report);
                return run;
            }
        };
        run.location = prepared.location.clone();
        run.insecure_tls = prepared.insecure_tls;
        let outcome: Result<Convergence, ReconcileError> = async {
            let target = self.connect(&prepared).await?;
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
        self.remember(&prepared.config, &outcome);
        let config = &prepared.config;
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

pub(crate) fn reconcile_report(e: ReconcileError) -> ErrorReport {
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
    /// One entry per resource: AddressGroups, ExternalConnectors, TrustedHosts (each with
    /// `kind`).
    pub resources: Vec<AnyReport<'a>>,
}

/// A resource of any kind in a [`RunReport`].
#[derive(Debug, Serialize)]
#[serde(untagged)]
pub enum AnyReport<'a> {
    /// An AddressGroup.
    Group(ResourceReport<'a>),
    /// An ExternalConnector.
    Connector(ConnectorReport<'a>),
    /// A TrustedHost.
    TrustedHost(TrustedHostReport<'a>),
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

/// Builds the JSON report of `runs`.
pub fn report(all: &Runs) -> RunReport<'_> {
    let resources = all
        .groups
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
            AnyReport::Group(ResourceReport {
                kind: "AddressGroup",
                resource: &r.resource,
                target: &r.target,
                group_name: &r.group_name,
                ops,
                foreign_members: foreign,
                conflicts,
                devices,
                error: r.result.as_ref().err(),
            })
        })
        .chain(
            all.connectors
                .iter()
                .map(|c| AnyReport::Connector(connector::report(c))),
        )
        .chain(
            all.trusted_hosts
                .iter()
                .map(|t| AnyReport::TrustedHost(trustedhost::report(t))),
        )
        .collect();
    RunReport {
        warnings: all
            .insecure_targets()
            .into_iter()
            .map(|t| verification_off(t, "spec.tls.insecureSkipVerify"))
            .collect(),
        changes: all.writes(),
        failures: all.failures(),
        resources,
    }
}
