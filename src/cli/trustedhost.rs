//! `plan`/`apply` for TrustedHosts: the same safety rules and the one slot write the controller
//! makes. Without a status there is no record of what an earlier run wrote: a slot holding
//! exactly the declared value, or the device's unused value, is taken as ours; any other value
//! is foreign (reported, not overwritten without `takeOver`), the reading that never widens
//! access.

use kube::ResourceExt;
use serde::Serialize;

use super::load::Manifests;
use super::render::block;
use super::standalone::{Runner, reconcile_report};
use crate::api::addressgroup::TargetKind;
use crate::api::common::ErrorReport;
use crate::api::trustedhost::{SlotValue, TrustedHost};
use crate::device::wording;
use crate::reconcile::error::ReconcileError;
use crate::reconcile::trustedhost::claims::first_claim;
use crate::reconcile::trustedhost::converge::{self, Facts, source_address};

/// The outcome for one TrustedHost.
#[derive(Debug, Clone)]
pub struct TrustedHostRun {
    /// `namespace/name`.
    pub resource: String,
    /// The administrator.
    pub user: String,
    /// The slot (1-10).
    pub slot: u8,
    /// `FortiGate ns/name` or `FortiManager ns/name`.
    pub target: String,
    /// The device URL and VDOM/ADOM.
    pub location: String,
    /// What was planned (and applied).
    pub result: Result<SlotOutcome, ErrorReport>,
    /// Whether the connection turns certificate verification off.
    pub insecure_tls: bool,
}

/// One pass over a slot.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SlotOutcome {
    /// What the slot held when read.
    pub before: Option<SlotValue>,
    /// The value written (apply) or to write (plan).
    pub write: Option<SlotValue>,
    /// The safety rule that refused the change; nothing is written then.
    pub refusal: Option<ErrorReport>,
}

impl TrustedHostRun {
    /// Writes needed (plan) or made (apply).
    pub fn writes(&self) -> usize {
        self.result
            .as_ref()
            .map_or(0, |o| usize::from(o.write.is_some()))
    }

    /// Failed, or refused before any write.
    pub fn failed(&self) -> bool {
        self.result.as_ref().map_or(true, |o| o.refusal.is_some())
    }
}

fn slot_text(v: Option<&SlotValue>) -> String {
    let Some(v) = v else {
        return "?".into();
    };
    format!(
        "{} / {}",
        v.address.as_deref().unwrap_or("unused"),
        v.ipv6_address.as_deref().unwrap_or("unused")
    )
}

impl Runner {
    /// Plans (and with `write` applies) one TrustedHost.
    pub async fn run_trusted_host(
        &self,
        manifests: &Manifests,
        th: &TrustedHost,
        write: bool,
    ) -> TrustedHostRun {
        let namespace = th.namespace().unwrap_or_default();
        let target = &th.spec.target_ref;
        let kind = match target.kind {
            TargetKind::FortiGate => "FortiGate",
            TargetKind::FortiManager => "FortiManager",
        };
        let mut run = TrustedHostRun {
            resource: format!("{namespace}/{}", th.name_any()),
            user: th.spec.user.clone(),
            slot: th.spec.slot,
            target: format!("{kind} {namespace}/{}", target.name),
            location: String::new(),
            result: Ok(SlotOutcome::default()),
            insecure_tls: false,
        };
        let problems = crate::api::validate::validate_trustedhost(&th.spec);
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
            let target = self.connect(&prepared).await?;
            let facts = Facts {
                credentials: prepared.resolved.credentials.clone(),
                source: source_address(
                    prepared.resolved.connection.source_address.as_deref(),
                    &prepared.resolved.connection.url,
                ),
                claimed_by: first_claim(th, &manifests.trusted_hosts),
            };
            let pass =
                converge::converge_with(&target, th, &facts, jiff::Timestamp::now(), write).await?;
            Ok::<_, ReconcileError>(SlotOutcome {
                before: Some(converge::slot_value(pass.before)),
                write: pass.wrote.map(converge::slot_value),
                refusal: pass.refused.map(|(reason, message, remedy)| ErrorReport {
                    reason: reason.into(),
                    message,
                    remedy,
                }),
            })
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

/// The text block of one TrustedHost (`applied` says whether the write was made).
pub fn render(run: &TrustedHostRun, applied: bool, color: bool) -> String {
    let head = format!(
        "TrustedHost {} -> {} user {:?} slot {}",
        run.resource, run.target, run.user, run.slot
    );
    let mut lines = Vec::new();
    match &run.result {
        Err(e) => {
            lines.push(format!("! {}: {}", e.reason, e.message));
            lines.push(format!("  remedy: {}", e.remedy));
        }
        Ok(o) => {
            if let Some(r) = &o.refusal {
                lines.push(format!(
                    "= slot {} holds {}",
                    run.slot,
                    slot_text(o.before.as_ref())
                ));
                lines.push(format!("! {}: {}", r.reason, r.message));
                lines.push(format!("  remedy: {}", r.remedy));
            } else if let Some(w) = &o.write {
                lines.push(format!(
                    "~ slot {}: {} -> {}",
                    run.slot,
                    slot_text(o.before.as_ref()),
                    slot_text(Some(w))
                ));
                if applied {
                    lines.push("= applied 1 write(s)".into());
                }
            } else {
                lines.push(format!(
                    "= slot {} holds {}",
                    run.slot,
                    slot_text(o.before.as_ref())
                ));
                lines.push("= no changes".into());
            }
        }
    }
    block(&head, &run.location, &lines, color)
}

/// One TrustedHost in the JSON report.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TrustedHostReport<'a> {
    /// `TrustedHost`.
    pub kind: &'static str,
    /// `namespace/name`.
    pub resource: &'a str,
    /// Target connection.
    pub target: &'a str,
    /// The administrator.
    pub user: &'a str,
    /// The slot.
    pub slot: u8,
    /// What the slot held and what is (to be) written.
    pub outcome: Option<&'a SlotOutcome>,
    /// Failed.
    pub error: Option<&'a ErrorReport>,
}

/// The JSON form of `run`.
pub fn report(run: &TrustedHostRun) -> TrustedHostReport<'_> {
    TrustedHostReport {
        kind: "TrustedHost",
        resource: &run.resource,
        target: &run.target,
        user: &run.user,
        slot: run.slot,
        outcome: run.result.as_ref().ok(),
        error: match &run.result {
            Err(e) => Some(e),
            Ok(o) => o.refusal.as_ref(),
        },
    }
}
