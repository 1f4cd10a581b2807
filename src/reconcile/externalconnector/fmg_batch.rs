//! ExternalConnectors through a FortiManager, batched per ADOM (`reconcile::batch`): the
//! connectors already queued for one FortiManager client have their ADOM objects observed and
//! planned each exactly as alone, then written in **one** workspace session (lock → every
//! object → commit → unlock) instead of one per connector; their FortiGates follow, each
//! connector's as alone (`fortimanager::converge_devices`).
//!
//! A lone connector takes the path it always took (`fortimanager::converge`). If the shared
//! session fails, nothing of it was committed (unlock without commit discards it) and each of
//! its connectors runs again alone, observed afresh: one object the ADOM refuses never fails
//! another. Two connectors naming one resource never share a batch, nor two that read their
//! connection differently (a client is kept across an edit of the connection's device targets
//! or install settings, so passes queued before and after the edit may meet): the later one
//! runs in the next batch, under the settings it read.

use std::collections::BTreeSet;
use std::sync::Arc;

use super::fortimanager::{self, Outcome, converge_devices, plan_adom, write_adom};
use super::plan::{DesiredResource, ObjectWrite};
use super::proxied::DevicePass;
use crate::api::externalconnector::ConnectorDeviceTarget;
use crate::api::fortimanager::FortiManagerSpec;
use crate::device::fortimanager::FortiManagerClient;
use crate::model::Firmware;
use crate::reconcile::batch::{Combiner, Outcome as Turn, PerClient};
use crate::reconcile::error::ReconcileError;
use crate::reconcile::target::workspace::in_workspace;

/// One connector's pass through a FortiManager.
#[derive(Debug, Clone)]
pub struct AdomRequest {
    /// The connection's settings (workspace, device targets).
    pub spec: FortiManagerSpec,
    /// The resource object as fortisync wants it.
    pub desired: DesiredResource,
    /// Manage a resource nobody owns.
    pub take_over: bool,
    /// The declared entries (canonical).
    pub entries: BTreeSet<String>,
    /// `spec.deviceTargets`.
    pub targets: Vec<ConnectorDeviceTarget>,
    /// The devices converged at this very spec and list (a difference there is drift).
    pub converged: BTreeSet<(String, Option<String>)>,
}

impl AdomRequest {
    fn pass(&self) -> DevicePass<'_> {
        DevicePass {
            desired: &self.desired,
            take_over: self.take_over,
            entries: &self.entries,
            targets: &self.targets,
            converged: &self.converged,
        }
    }
}

/// A pass's answer.
pub type AdomAnswer = Result<Outcome, ReconcileError>;

/// The combiners of every FortiManager client in use (one per ADOM and credentials).
#[derive(Debug, Default)]
pub struct AdomBatches {
    by_client: PerClient<FortiManagerClient, Combiner<AdomRequest, AdomAnswer>>,
}

impl AdomBatches {
    fn combiner(&self, client: &Arc<FortiManagerClient>) -> Arc<Combiner<AdomRequest, AdomAnswer>> {
        self.by_client.of(client)
    }
}

/// `request` through its ADOM's batch. `patient`: a resync of a converged connector.
pub async fn converge_batched(
    batches: &AdomBatches,
    client: &Arc<FortiManagerClient>,
    adom_firmware: Firmware,
    request: AdomRequest,
    patient: bool,
) -> AdomAnswer {
    let combiner = batches.combiner(client);
    let run = |requests: Vec<AdomRequest>| async move {
        run_batch(client, adom_firmware, requests).await
    };
    loop {
        // None: the pass running our batch was cancelled before answering: queue it again.
        if let Some(answer) = combiner.submit(request.clone(), patient, &run).await {
            return answer;
        }
    }
}

async fn run_batch(
    client: &FortiManagerClient,
    adom_firmware: Firmware,
    requests: Vec<AdomRequest>,
) -> Vec<Turn<AdomRequest, AdomAnswer>> {
    // The first of each resource name, under the first request's connection, runs now; the
    // others in the next batch.
    let mut claimed = BTreeSet::new();
    let mut now_: Vec<AdomRequest> = Vec::new();
    let mut later = Vec::new();
    for request in requests {
        let same_connection = now_.first().is_none_or(|first| first.spec == request.spec);
        if same_connection && claimed.insert(request.desired.name.clone()) {
            later.push(None);
            now_.push(request);
        } else {
            later.push(Some(request));
        }
    }
    let mut answers = converge_many(client, adom_firmware, &now_)
        .await
        .into_iter();
    later
        .into_iter()
        .map(|slot| match slot {
            Some(r) => Turn::Later(r),
            None => Turn::Done(answers.next().expect("one answer per request run")),
        })
        .collect()
}

async fn alone(
    client: &FortiManagerClient,
    adom_firmware: Firmware,
    r: &AdomRequest,
) -> AdomAnswer {
    fortimanager::converge(client, &r.spec, adom_firmware, r.pass(), true).await
}

/// Several connectors: each ADOM object observed and planned as alone, every ADOM write in
/// one workspace session, then each connector's FortiGates.
async fn converge_many(
    client: &FortiManagerClient,
    adom_firmware: Firmware,
    requests: &[AdomRequest],
) -> Vec<AdomAnswer> {
    let [first, ..] = requests else {
        return Vec::new();
    };
    if requests.len() == 1 {
        return vec![alone(client, adom_firmware, first).await];
    }
    // Every request here has the first one's connection (`run_batch`).
    let spec = &first.spec;
    let mut answers: Vec<AdomAnswer> = Vec::with_capacity(requests.len());
    for r in requests {
        answers.push(match plan_adom(client, adom_firmware, r.pass()).await {
            Err(e) => Err(e.into()),
            Ok(Err(refusal)) => Ok(Outcome {
                adom: ObjectWrite::None,
                refusal: Some(refusal),
                devices: Vec::new(),
            }),
            Ok(Ok(adom)) => Ok(Outcome {
                adom,
                refusal: None,
                devices: Vec::new(),
            }),
        });
    }
    let writers: Vec<usize> = (0..requests.len())
        .filter(|&i| {
            answers[i]
                .as_ref()
                .is_ok_and(|o| o.refusal.is_none() && o.adom != ObjectWrite::None)
        })
        .collect();
    let mut redone = vec![false; requests.len()];
    if !writers.is_empty() {
        let written = in_workspace(client, spec, || async {
            for &i in &writers {
                if let Ok(out) = &answers[i] {
                    write_adom(client, &requests[i].desired.name, &out.adom).await?;
                }
            }
            Ok::<(), crate::device::DeviceError>(())
        })
        .await;
        if let Err(e) = written {
            tracing::debug!(device = %client.device(), error = %e, connectors = writers.len(),
                "a shared workspace session failed; each connector runs alone");
            for &i in &writers {
                answers[i] = alone(client, adom_firmware, &requests[i]).await;
                redone[i] = true;
            }
        }
    }
    for (i, r) in requests.iter().enumerate() {
        if redone[i] {
            continue;
        }
        let Ok(out) = &mut answers[i] else { continue };
        if out.refusal.is_some() {
            continue;
        }
        match converge_devices(client, spec, r.pass(), true).await {
            Ok(devices) => out.devices = devices,
            Err(e) => answers[i] = Err(e),
        }
    }
    answers
}

/// `requests` (all on one FortiManager ADOM) through the batch path as if queued together.
/// For tests; the controller goes through `converge_batched`.
pub async fn converge_together(
    client: &FortiManagerClient,
    adom_firmware: Firmware,
    requests: Vec<AdomRequest>,
) -> Vec<AdomAnswer> {
    let mut answers: Vec<Option<AdomAnswer>> = requests.iter().map(|_| None).collect();
    let mut queued: Vec<(usize, AdomRequest)> = requests.into_iter().enumerate().collect();
    while !queued.is_empty() {
        let (index, batch): (Vec<usize>, Vec<AdomRequest>) = queued.into_iter().unzip();
        let outcomes = run_batch(client, adom_firmware, batch).await;
        queued = Vec::new();
        for (i, outcome) in index.into_iter().zip(outcomes) {
            match outcome {
                Turn::Done(answer) => answers[i] = Some(answer),
                Turn::Later(request) => queued.push((i, request)),
            }
        }
    }
    answers
        .into_iter()
        .map(|a| a.expect("every request answered"))
        .collect()
}
