//! ExternalConnectors on a FortiGate, batched per device (`reconcile::batch`): the connectors
//! whose reconciles are already queued for one FortiGate are observed together (one read of the
//! fortisync-marked external resources, `fortigate::objects`), planned each exactly as alone,
//! and their pushes carried in as few `dynamic` calls as the device takes (`fortigate_pass`).
//! A lone connector runs at once, as a batch of one: nothing waits for more work.
//!
//! Two queued connectors naming one device resource never share a batch: the later one is
//! observed again after the earlier one's writes (both would otherwise plan a create).

use std::collections::BTreeSet;
use std::sync::Arc;

use super::fortigate::EntryList;
use super::plan::{ConnectorPlan, DesiredResource, Refusal};
use crate::device::DeviceError;
use crate::device::fortios::FortiOsClient;
use crate::model::Firmware;
use crate::reconcile::batch::{Combiner, Outcome, PerClient, in_rounds, outcomes};

/// One connector's pass on a FortiGate.
#[derive(Debug, Clone)]
pub struct Request {
    /// The resource object as fortisync wants it.
    pub desired: DesiredResource,
    /// Manage a resource nobody owns (`spec.takeOver`).
    pub take_over: bool,
    /// The declared entries (canonical).
    pub entries: BTreeSet<String>,
    /// Converged over this very spec and list: a difference on the device is an out-of-band
    /// change (repaired with one snapshot, counted as drift), so the list is read first.
    pub unchanged_spec: bool,
}

/// What a pass did on the device.
#[derive(Debug, Clone, PartialEq)]
pub struct Applied {
    /// The plan, as sent.
    pub planned: ConnectorPlan,
    /// The push failed, only for this list (F19: a warning; the next pass pushes again).
    pub push_failed: Option<DeviceError>,
    /// A feed pull was asked for.
    pub refreshed: bool,
    /// What the device reports of the list after the pass.
    pub device: EntryList,
}

/// A pass's outcome: refused before any write, or applied.
#[derive(Debug, Clone, PartialEq)]
pub enum Pass {
    /// The object cannot be managed; nothing was written.
    Refused(Refusal),
    /// Planned and applied.
    Applied(Box<Applied>),
}

/// A pass's answer; a device error fails this connector's pass only.
pub type Answer = Result<Pass, DeviceError>;

/// The combiners of every FortiGate client in use (each is shared per device and VDOM, so
/// one batch reads one VDOM's table), and of every FortiManager ADOM (`fmg_batch`).
#[derive(Debug, Default)]
pub struct Batches {
    by_client: PerClient<FortiOsClient, Combiner<Request, Answer>>,
    /// Per FortiManager client.
    pub adom: super::fmg_batch::AdomBatches,
}

impl Batches {
    fn combiner(&self, client: &Arc<FortiOsClient>) -> Arc<Combiner<Request, Answer>> {
        self.by_client.of(client)
    }
}

/// `request` through its FortiGate's batch. `patient`: a resync of a converged connector,
/// which may wait a moment for the rest of its device's resync tick (`reconcile::batch`).
pub async fn converge_batched(
    batches: &Batches,
    client: &Arc<FortiOsClient>,
    firmware: Firmware,
    request: Request,
    patient: bool,
) -> Answer {
    let combiner = batches.combiner(client);
    let run = |requests: Vec<Request>| async move { run_batch(client, firmware, requests).await };
    loop {
        // None: the pass running our batch was cancelled (shutdown) before answering; ours
        // was not written, or its writes ended: queue it again.
        if let Some(answer) = combiner.submit(request.clone(), patient, &run).await {
            return answer;
        }
    }
}

/// Which requests run in this batch: the first of each resource name; a later one waits for
/// the next batch. The slots say, in order, which: None runs now.
fn split(requests: Vec<Request>) -> (Vec<Request>, Vec<Option<Request>>) {
    let mut claimed = BTreeSet::new();
    let mut now_ = Vec::new();
    let mut slots = Vec::new();
    for request in requests {
        if claimed.insert(request.desired.name.clone()) {
            slots.push(None);
            now_.push(request);
        } else {
            slots.push(Some(request));
        }
    }
    (now_, slots)
}

async fn run_batch(
    client: &FortiOsClient,
    firmware: Firmware,
    requests: Vec<Request>,
) -> Vec<Outcome<Request, Answer>> {
    let (now_, slots) = split(requests);
    let answers = super::fortigate_pass::converge(client, firmware, &now_).await;
    outcomes(slots, answers)
}

/// `requests` (all on one FortiGate) through the batch path as if their reconciles were queued
/// together: each round observes once, a request handed back runs in the next round. For tests
/// and figures; the controller goes through `converge_batched`.
pub async fn converge_together(
    client: &FortiOsClient,
    firmware: Firmware,
    requests: Vec<Request>,
) -> Vec<Answer> {
    in_rounds(requests, |batch| run_batch(client, firmware, batch)).await
}
