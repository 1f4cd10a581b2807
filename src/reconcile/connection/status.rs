//! `FortiGate` and `FortiManager` resources converge nothing themselves; their controller
//! probes the device with one read per resync (through the same Guard, so a refused key is
//! not retried and a lockout is waited out) and reports reachability, firmware, serial,
//! breaker state and the last failure with its remedy.

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::NamespaceResourceScope;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::runtime::controller::Action;
use kube::runtime::events::EventType;
use kube::{Api, Resource, ResourceExt};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::api::addressgroup::{TargetKind, TargetRef};
use crate::api::common::{ConnectionSpec, ConnectionStatus, ErrorReport};
use crate::api::conditions::{READY, condition, with_kstatus};
use crate::api::{FortiGate, FortiManager};
use crate::device::{DeviceError, Endpoint};
use crate::reconcile::context::Context;
use crate::reconcile::error::ReconcileError;
use crate::reconcile::lifecycle::{KindStatus, Reconciler, write_status};
use crate::reconcile::requeue::jittered;

/// Condition type: the connection does not verify the device's TLS certificate.
pub const INSECURE_TLS: &str = "InsecureTLS";
/// Reason of `InsecureTLS=True`.
pub const INSECURE_SKIP_VERIFY: &str = "InsecureSkipVerify";
/// Message of `InsecureTLS=True`: what is off, and why that matters.
pub const INSECURE_TLS_MESSAGE: &str = "TLS certificate verification is off for this device (spec.tls.insecureSkipVerify): anyone on the network path can pose as the device, read the credentials fortisync sends and answer with anything. Remedy: put the CA that signs the device's certificate in spec.tls.caBundleSecretRef and remove insecureSkipVerify";

/// `InsecureTLS=True` when the connection skips verification; none when it verifies (the
/// normal case stays quiet, like `Ready`'s absence of a failure). Connections and the resources
/// behind them carry it alike.
pub fn insecure_condition(
    insecure: bool,
    generation: Option<i64>,
    previous: &[Condition],
) -> Option<Condition> {
    insecure.then(|| {
        condition(
            INSECURE_TLS,
            true,
            INSECURE_SKIP_VERIFY,
            INSECURE_TLS_MESSAGE.to_string(),
            generation,
            previous,
        )
    })
}

/// A connection resource kind.
pub trait ConnectionResource:
    Resource<DynamicType = (), Scope = NamespaceResourceScope>
    + Clone
    + DeserializeOwned
    + Serialize
    + std::fmt::Debug
    + Send
    + Sync
    + 'static
{
    /// `FortiGate` or `FortiManager`.
    const KIND: TargetKind;
    /// The kind's name in spans.
    const KIND_NAME: &'static str;
    /// Controller name in metrics and logs.
    const CONTROLLER: &'static str;
    /// The connection settings.
    fn connection(&self) -> &ConnectionSpec;
    /// The current status.
    fn connection_status(&self) -> Option<&ConnectionStatus>;
}

impl ConnectionResource for FortiGate {
    const KIND: TargetKind = TargetKind::FortiGate;
    const KIND_NAME: &'static str = "FortiGate";
    const CONTROLLER: &'static str = "fortigate";
    fn connection(&self) -> &ConnectionSpec {
        &self.spec.connection
    }
    fn connection_status(&self) -> Option<&ConnectionStatus> {
        self.status.as_ref()
    }
}

impl ConnectionResource for FortiManager {
    const KIND: TargetKind = TargetKind::FortiManager;
    const KIND_NAME: &'static str = "FortiManager";
    const CONTROLLER: &'static str = "fortimanager";
    fn connection(&self) -> &ConnectionSpec {
        &self.spec.connection
    }
    fn connection_status(&self) -> Option<&ConnectionStatus> {
        self.status.as_ref()
    }
}

/// Firmware and serial as the device reports them.
struct Facts {
    version: String,
    serial: String,
}

async fn probe(endpoint: &Endpoint) -> Result<Facts, DeviceError> {
    match endpoint {
        Endpoint::FortiGate(c) => {
            let s = c.system_status().await?;
            Ok(Facts {
                version: s.version,
                serial: s.serial,
            })
        }
        Endpoint::FortiManager(c) => {
            let s = c.system_status().await?;
            let version = s["Version"]
                .as_str()
                .and_then(|v| v.split('-').next())
                .unwrap_or_default()
                .to_string();
            Ok(Facts {
                version,
                serial: s["Serial Number"].as_str().unwrap_or_default().to_string(),
            })
        }
    }
}

/// Probes the device and reports what it found.
async fn probe_and_report<K: ConnectionResource>(
    object: Arc<K>,
    ctx: &Context,
) -> Result<Action, ReconcileError> {
    let started = std::time::Instant::now();
    tracing::Span::current().record(
        "device",
        format!(
            "{}/{}",
            object.namespace().unwrap_or_default(),
            object.name_any()
        ),
    );
    let namespace = object.namespace().unwrap_or_default();
    let name = object.name_any();
    let resync = object
        .connection()
        .resync_period()
        .unwrap_or(Duration::from_secs(300));
    let target = TargetRef {
        kind: K::KIND,
        name: name.clone(),
    };
    let previous = object.connection_status().cloned().unwrap_or_default();
    let generation = object.meta().generation;
    let (status, retry) = match ctx.endpoint(&namespace, &target).await {
        Ok((endpoint, resolved)) => {
            let outcome = probe(&endpoint).await;
            let breaker = Some(endpoint.guard().breaker());
            match outcome {
                Ok(facts) => (
                    ConnectionStatus {
                        observed_generation: generation,
                        reachable: true,
                        version: Some(facts.version.clone()),
                        serial: Some(facts.serial),
                        breaker,
                        last_error: None,
                        conditions: vec![condition(
                            READY,
                            true,
                            "Connected",
                            format!("reachable and authorised, firmware {}", facts.version),
                            generation,
                            &previous.conditions,
                        )],
                    },
                    None,
                ),
                Err(e) => {
                    let retry = e.retry_after();
                    (
                        failed(
                            &previous,
                            generation,
                            crate::device::wording::report(&e, &resolved.credentials),
                            breaker,
                        ),
                        Some(retry.unwrap_or(resync)),
                    )
                }
            }
        }
        Err(e) => {
            let report = ErrorReport {
                reason: e.reason().to_string(),
                message: e.to_string(),
                remedy: e.remedy(),
            };
            (failed(&previous, generation, report, None), None)
        }
    };
    let mut status = status;
    // Reported whatever the probe's outcome: the setting is the risk, not the answer.
    let insecure = object.connection().tls.insecure_skip_verify;
    status.conditions.extend(insecure_condition(
        insecure,
        generation,
        &previous.conditions,
    ));
    let connection = format!("{namespace}/{name}");
    if ctx
        .metrics
        .insecure_tls(K::KIND_NAME, &connection, insecure)
    {
        tracing::warn!(
            connection = %connection,
            kind = K::KIND_NAME,
            "TLS verification is OFF for {} {connection} (spec.tls.insecureSkipVerify): anyone on the network path can pose as the device and read the credentials sent to it",
            K::KIND_NAME
        );
    }
    ctx.metrics.observe(
        K::CONTROLLER,
        if status.reachable { "success" } else { "error" },
        started.elapsed().as_secs_f64(),
    );
    if let Some(e) = &status.last_error {
        ctx.metrics.error(K::CONTROLLER, &e.reason);
    }
    let api = Api::<K>::namespaced(ctx.client.clone(), &namespace);
    // An event on every transition of Ready, so `kubectl describe` tells the story.
    let was_ready = previous
        .conditions
        .iter()
        .find(|c| c.type_ == READY)
        .map(|c| c.status == "True");
    if was_ready != Some(status.reachable) {
        match &status.last_error {
            Some(e) => {
                let note = format!("{} Remedy: {}", e.message, e.remedy);
                ctx.event(&*object, EventType::Warning, &e.reason, note)
                    .await
            }
            None => {
                let note = format!(
                    "reachable and authorised, firmware {}",
                    status.version.as_deref().unwrap_or("?")
                );
                ctx.event(&*object, EventType::Normal, "Connected", note)
                    .await
            }
        }
    }
    // Conditions keep their transition time while unchanged, so an unchanged probe writes nothing.
    if object.connection_status() != Some(&status) {
        write_status(&api, &name, &status).await?;
    }
    Ok(Action::requeue(jittered(retry.unwrap_or(resync))))
}

fn failed(
    previous: &ConnectionStatus,
    generation: Option<i64>,
    report: ErrorReport,
    breaker: Option<crate::api::common::BreakerState>,
) -> ConnectionStatus {
    ConnectionStatus {
        observed_generation: generation,
        reachable: false,
        version: previous.version.clone(),
        serial: previous.serial.clone(),
        breaker,
        conditions: with_kstatus(
            vec![condition(
                READY,
                false,
                &report.reason,
                format!("{} Remedy: {}", report.message, report.remedy),
                generation,
                &previous.conditions,
            )],
            &previous.conditions,
        ),
        last_error: Some(report),
    }
}

impl KindStatus for ConnectionStatus {
    fn conditions(&self) -> &[Condition] {
        &self.conditions
    }
    fn with_conditions(self, conditions: Vec<Condition>) -> Self {
        Self { conditions, ..self }
    }
    fn with_failure(self, generation: Option<i64>, error: ErrorReport) -> Self {
        Self {
            observed_generation: generation,
            reachable: false,
            last_error: Some(error),
            ..self
        }
    }
}

/// The finalizer that keeps a connection (and so the credentials its dependents' cleanup
/// needs) until no resource targets it any more.
pub const CONNECTION_FINALIZER: &str = "fortisync.dev/dependents";

impl<K: ConnectionResource> Reconciler for K {
    const KIND: &'static str = K::KIND_NAME;
    const CONTROLLER: &'static str = K::CONTROLLER;
    const FINALIZER: &'static str = CONNECTION_FINALIZER;
    type Status = ConnectionStatus;

    fn current_status(&self) -> Option<&ConnectionStatus> {
        self.connection_status()
    }

    fn target(&self) -> TargetRef {
        TargetRef {
            kind: K::KIND,
            name: self.name_any(),
        }
    }

    async fn apply(self: Arc<Self>, ctx: &Context) -> Result<Action, ReconcileError> {
        probe_and_report(self, ctx).await
    }

    async fn cleanup(self: Arc<Self>, ctx: &Context) -> Result<Action, ReconcileError> {
        let namespace = self.namespace().unwrap_or_default();
        ctx.metrics
            .forget_connection(K::KIND_NAME, &format!("{namespace}/{}", self.name_any()));
        let waiting = super::dependents::remaining(&ctx.client, &namespace, &self.target())
            .await
            .map_err(ReconcileError::Kube)?;
        if waiting.is_empty() {
            return Ok(Action::await_change());
        }
        Err(ReconcileError::DependentsRemain {
            connection: format!("{namespace}/{}", self.name_any()),
            dependents: waiting,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn insecure_tls_is_a_condition_only_when_verification_is_off() {
        assert_eq!(insecure_condition(false, Some(1), &[]), None);
        let c = insecure_condition(true, Some(2), &[]).expect("condition");
        assert_eq!(
            (c.type_.as_str(), c.status.as_str(), c.reason.as_str()),
            ("InsecureTLS", "True", "InsecureSkipVerify")
        );
        assert_eq!(c.observed_generation, Some(2));
        assert!(
            c.message.contains("spec.tls.insecureSkipVerify"),
            "{}",
            c.message
        );
        assert!(c.message.contains("caBundleSecretRef"), "{}", c.message);
        // Unchanged, it keeps its transition time, so an unchanged probe writes nothing.
        let again = insecure_condition(true, Some(2), std::slice::from_ref(&c)).expect("c");
        assert_eq!(again, c);
    }
}
