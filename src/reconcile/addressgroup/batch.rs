//! AddressGroups on a FortiGate, batched per device (`reconcile::batch`): the groups whose
//! reconciles are already queued for one FortiGate are observed together (`batch_observe`:
//! one read of the address table for their objects and the holders of the names they want,
//! one of their groups, sent at once), planned each exactly as alone (`plan::plan`, same
//! ownership and Exclusive rules), and applied concurrently under the device's Guard.
//!
//! A lone group goes the same way: its plan is the one `converge::converge` makes, from two
//! reads at once instead of up to three in turn, and a lone change is never made to wait
//! for others. Two queued groups that would touch one device object (the same group name,
//! or the same address object name) never share a batch: the later one is observed again
//! after the earlier one's writes.

use std::collections::BTreeSet;
use std::sync::Arc;

use futures::StreamExt;

use super::batch_observe::plan_many;
use super::converge::{Convergence, apply_fortigate, duplicate_refusal};
use super::fortigate::Family;
use super::plan::{DesiredGroup, Op};
use crate::api::addressgroup::AddressGroup;
use crate::device::fortimanager::FortiManagerClient;
use crate::device::fortios::FortiOsClient;
pub(super) use crate::reconcile::batch::outcomes;
use crate::reconcile::batch::{Busy, Claim, Combiner, PerClient, Replies, Reply, Turn};
use crate::reconcile::error::ReconcileError;
use crate::reconcile::target::Target;

/// One group's pass: its families, whether to write, and (through a FortiManager) the
/// connection settings it read.
#[derive(Clone)]
pub struct Request {
    pub(super) families: Vec<(Family, DesiredGroup)>,
    pub(super) now: jiff::Timestamp,
    pub(super) write: bool,
    /// A new or edited spec (not a resync of a group converged at it): its wanted names are
    /// likely not ours yet, so the batch asks for their holders with its first read.
    pub(super) changed: bool,
    /// A FortiManager client outlives an edit of its connection's install settings and
    /// device targets, so passes read before and after one may queue together: each runs
    /// under the settings it read (`adom_batch`).
    pub(super) settings: Option<crate::api::FortiManagerSpec>,
}

impl Request {
    /// `namespace/name` of the resource, for the write log.
    pub(super) fn owner(&self) -> String {
        self.families
            .first()
            .map(|(_, d)| format!("{}/{}", d.owner.namespace, d.owner.name))
            .unwrap_or_default()
    }
}

pub(super) type Answer = Result<Convergence, ReconcileError>;

/// A device object a request touches: (family is v6, is a group, name).
type Touch = (bool, bool, String);

/// Groups of batches (not lone requests) written at once per device: a default Guard's
/// slots (threshold 3 → 2 in flight), each group with as many address writes in flight.
const GROUPS_WRITING: usize = 2;

/// One device's queue, the objects its batches still write after passing the turn on, and
/// the turns of their groups to write.
pub(super) struct DeviceQueue {
    combiner: Combiner<Request, Answer>,
    busy: Arc<Busy<Touch>>,
    writing: Arc<tokio::sync::Semaphore>,
}

impl Default for DeviceQueue {
    fn default() -> Self {
        Self {
            combiner: Combiner::default(),
            busy: Arc::default(),
            writing: Arc::new(tokio::sync::Semaphore::new(GROUPS_WRITING)),
        }
    }
}

/// The queues of every FortiGate and FortiManager client in use (each is shared per device).
#[derive(Debug, Default)]
pub struct Batches {
    by_client: PerClient<FortiOsClient, DeviceQueue>,
    by_manager: PerClient<FortiManagerClient, DeviceQueue>,
}

impl Batches {
    fn queue(&self, client: &Arc<FortiOsClient>) -> Arc<DeviceQueue> {
        self.by_client.of(client)
    }

    fn manager_queue(&self, client: &Arc<FortiManagerClient>) -> Arc<DeviceQueue> {
        self.by_manager.of(client)
    }
}

pub(super) fn log_write(device: &str, owner: &str, op: &Op) {
    tracing::info!(%device, resource = %owner, op = %op, "device write");
}

/// `converge::converge` for the controller, through the device's batch: a FortiGate's, or a
/// FortiManager ADOM's (`adom_batch`). `patient`: a resync of a converged group, which may
/// wait a moment for the others of its device's resync tick (`reconcile::batch`).
pub async fn converge_batched(
    batches: &Batches,
    target: &Target,
    group: &AddressGroup,
    now: jiff::Timestamp,
    write: bool,
    patient: bool,
) -> Answer {
    if let Some(refusal) = duplicate_refusal(&group.spec) {
        return Ok(Convergence {
            spec_refusal: Some(refusal),
            ..Convergence::default()
        });
    }
    let request = Request {
        families: super::converge::desired_for(group, target)?,
        now,
        write,
        changed: !patient,
        settings: settings_of(target),
    };
    match target {
        Target::FortiGate { client, .. } => {
            let queue = batches.queue(client);
            let device = &*queue;
            // The turn passes on once the batch planned: its writes go on beside the next
            // batch (an edit during a burst), which leaves alone what they touch.
            let run = |requests: Vec<Request>, turn: Turn, replies| async move {
                run_batch(client, device, requests, Some(turn), replies).await
            };
            answered(&queue.combiner, request, patient, run).await
        }
        Target::FortiManager { client, .. } => {
            // One workspace session per ADOM at a time: the turn is kept to the batch's end.
            let run = |requests: Vec<Request>, turn: Turn, mut replies: Replies<_, _>| async move {
                replies.record(super::adom_batch::run_batch(target, requests).await);
                drop(turn);
                replies
            };
            answered(
                &batches.manager_queue(client).combiner,
                request,
                patient,
                run,
            )
            .await
        }
    }
}

/// The connection settings a FortiManager pass runs under (none for a FortiGate).
pub(super) fn settings_of(target: &Target) -> Option<crate::api::FortiManagerSpec> {
    match target {
        Target::FortiGate { .. } => None,
        Target::FortiManager { spec, .. } => Some((**spec).clone()),
    }
}

/// Submits `request` until a batch answers it.
async fn answered<F, Fut>(
    combiner: &Combiner<Request, Answer>,
    request: Request,
    patient: bool,
    run: F,
) -> Answer
where
    F: Fn(Vec<Request>, Turn, Replies<Request, Answer>) -> Fut,
    Fut: std::future::Future<Output = Replies<Request, Answer>>,
{
    loop {
        // None: the pass running our batch was cancelled (shutdown) before answering; ours
        // was not written, or its writes ended: queue it again.
        if let Some(answer) = combiner
            .submit_passing(request.clone(), patient, &run)
            .await
        {
            return answer;
        }
    }
}

/// The device objects a request would touch: (family, is a group, name) of its group and of
/// its address objects.
fn touches(request: &Request) -> BTreeSet<Touch> {
    let mut out = BTreeSet::new();
    for (family, d) in &request.families {
        out.insert((family.v6, true, d.group_name.clone()));
        for m in &d.members {
            out.insert((family.v6, false, m.address.object_name(&d.prefix)));
        }
    }
    out
}

/// Which requests run in this batch and which wait for the next: two touching one object
/// never run together (the later waits), nor does a request `held` (e.g. touching objects an
/// earlier batch still writes), even the first. The slots say, in order, which: None runs
/// now.
pub(super) fn split_beside(
    requests: Vec<Request>,
    held: impl Fn(&Request, &BTreeSet<Touch>) -> bool,
) -> (Vec<Request>, Vec<Option<Request>>) {
    let mut claimed = BTreeSet::new();
    let mut now_ = Vec::new();
    let mut slots = Vec::new();
    for request in requests {
        let names = touches(&request);
        if held(&request, &names) || (!now_.is_empty() && names.iter().any(|n| claimed.contains(n)))
        {
            slots.push(Some(request));
        } else {
            claimed.extend(names);
            slots.push(None);
            now_.push(request);
        }
    }
    (now_, slots)
}

/// One FortiGate batch: observed and planned holding the turn. With a `turn` (the
/// controller), what it will write is claimed in the device's `busy`, the turn passed on and
/// the writes detached, each group answered when its own writes end (see the module);
/// without, written before returning.
async fn run_batch(
    client: &Arc<FortiOsClient>,
    device: &DeviceQueue,
    requests: Vec<Request>,
    turn: Option<Turn>,
    mut replies: Replies<Request, Answer>,
) -> Replies<Request, Answer> {
    let busy = &device.busy;
    // Registered before looking, so a claim ending in between is not missed.
    let freed = busy.freed();
    let (now_, slots) = split_beside(requests, |_, names| busy.any(names));
    if now_.is_empty() {
        // Everything here touches what an earlier batch still writes: once a claim ends (or
        // another request joins, which may run at once), all of it runs again.
        match &turn {
            Some(turn) => tokio::select! { _ = freed => {}, _ = turn.joined() => {} },
            None => freed.await,
        }
        for (i, s) in slots.into_iter().enumerate() {
            replies.later(i, s.expect("nothing runs now"));
        }
        return replies;
    }
    drop(freed);
    // A lone group too: its plan is the one `converge` makes (the batch plans each group
    // exactly as alone), from two reads sent at once instead of up to three in turn.
    let planned: Vec<Answer> = plan_many(client, &now_).await;
    // Places in the batch of the requests run now, and the others handed back.
    let mut running = Vec::new();
    for (i, slot) in slots.into_iter().enumerate() {
        match slot {
            Some(later) => replies.later(i, later),
            None => running.push(i),
        }
    }
    let mut jobs: Vec<Job> = now_
        .into_iter()
        .zip(planned)
        .zip(running)
        .map(|((request, planned), i)| Job {
            claim: writes(&request, &planned).then(|| busy.claim(touches(&request))),
            request,
            planned,
            reply: replies.take(i),
        })
        .collect();
    // Groups the device already holds first (an edit, a repair), then the new ones: an edit
    // queued with a burst of creates is written before them, not after however many of them
    // were planned ahead of it. Otherwise in the order they came.
    jobs.sort_by_key(|job| creates_a_group(&job.planned));
    // A lone request (an edit) writes at once; the groups of batches take turns, so however
    // many batches write, the Guard's queue holds a handful of theirs ahead of it.
    let writing = (jobs.len() > 1).then(|| device.writing.clone());
    let writes = apply_all(client.clone(), jobs, writing);
    match turn {
        Some(turn) => {
            turn.pass();
            tokio::spawn(writes);
        }
        None => writes.await,
    }
    replies
}

/// One planned group of a batch: what it will write, its claim on those objects, and where
/// its answer goes.
struct Job {
    request: Request,
    planned: Answer,
    claim: Option<Claim<Touch>>,
    reply: Option<Reply<Answer>>,
}

/// Whether `planned` creates its group (a new one) rather than edits one the device holds.
fn creates_a_group(planned: &Answer) -> bool {
    planned.as_ref().is_ok_and(|out| {
        out.plans.iter().any(|p| {
            p.plan
                .ops()
                .iter()
                .any(|op| matches!(op, Op::CreateGroup { .. }))
        })
    })
}

/// Whether the pass of `r` will write anything.
pub(super) fn writes(r: &Request, out: &Answer) -> bool {
    r.write
        && out.as_ref().is_ok_and(|out| {
            out.refusal().is_none() && out.plans.iter().any(|p| !p.plan.is_empty())
        })
}

/// Each planned group's writes, as many groups at a time as the Guard has slots (each group
/// may have as many address writes in flight), each group of a batch with a turn of the
/// device's `writing`: enough to keep the device busy, few enough that another batch's
/// requests (an edit) queue behind a handful of these, not all of them. Each group is
/// answered, and its claim ends, when its own writes end.
async fn apply_all(
    client: Arc<FortiOsClient>,
    jobs: Vec<Job>,
    writing: Option<Arc<tokio::sync::Semaphore>>,
) {
    let at_once = client.guard().max_concurrent().max(1);
    let (client, writing) = (&client, writing.as_deref());
    // Collected first: a mapping closure held across the await is higher-ranked and makes
    // the future not Send "generally enough" for kube-runtime.
    let jobs: Vec<_> = jobs
        .into_iter()
        .map(|job| async move {
            let answer = match job.planned {
                Ok(out) => {
                    let _turn = match (writing, job.claim.is_some()) {
                        (Some(writing), true) => writing.acquire().await.ok(),
                        _ => None,
                    };
                    apply(client, &job.request, &out).await.map(|()| out)
                }
                Err(e) => Err(e),
            };
            drop(job.claim);
            if let Some(reply) = job.reply {
                reply.send(answer);
            }
        })
        .collect();
    futures::stream::iter(jobs)
        .buffer_unordered(at_once)
        .collect::<()>()
        .await;
}

async fn apply(
    client: &FortiOsClient,
    r: &Request,
    out: &Convergence,
) -> Result<(), ReconcileError> {
    if r.write && out.refusal().is_none() {
        let owner = r.owner();
        for p in &out.plans {
            let mut on_write = |device: &str, op: &Op| log_write(device, &owner, op);
            apply_fortigate(client, p.family, p.plan.ops(), &mut on_write).await?;
        }
    }
    Ok(())
}

/// `groups` (all on one FortiGate `target`) through the batch path as if their reconciles
/// were queued together: each round observes once, a group handed back runs in the next
/// round. For tests and figures; the controller goes through `converge_batched`.
pub async fn converge_together(
    target: &Target,
    groups: &[AddressGroup],
    now: jiff::Timestamp,
    write: bool,
) -> Vec<Answer> {
    let Target::FortiGate { client, .. } = target else {
        panic!("converge_together takes a FortiGate target");
    };
    let device = DeviceQueue::default();
    in_rounds(target, groups, now, write, |requests, replies| {
        run_batch(client, &device, requests, None, replies)
    })
    .await
}

/// Whether `group`'s pass is a change, as the controller tells it (its `patient` is the
/// opposite): not converged at its spec's generation.
fn changed(group: &AddressGroup) -> bool {
    !group.status.as_ref().is_some_and(|s| {
        s.observed_generation == group.metadata.generation
            && crate::api::conditions::is_true(&s.conditions, crate::api::conditions::SYNCED)
    })
}

/// `groups` run by `run` in rounds as one device's queue would: all at first, then what each
/// round handed back.
pub(super) async fn in_rounds<F, Fut>(
    target: &Target,
    groups: &[AddressGroup],
    now: jiff::Timestamp,
    write: bool,
    run: F,
) -> Vec<Answer>
where
    F: Fn(Vec<Request>, Replies<Request, Answer>) -> Fut,
    Fut: std::future::Future<Output = Replies<Request, Answer>>,
{
    let mut answers: Vec<Option<Answer>> = groups.iter().map(|_| None).collect();
    let mut queued = Vec::new();
    for (i, g) in groups.iter().enumerate() {
        match super::converge::desired_for(g, target) {
            Ok(families) => queued.push((
                i,
                Request {
                    families,
                    now,
                    write,
                    changed: changed(g),
                    settings: settings_of(target),
                },
            )),
            Err(e) => answers[i] = Some(Err(e)),
        }
    }
    while !queued.is_empty() {
        let (index, requests): (Vec<usize>, Vec<Request>) = queued.into_iter().unzip();
        let (replies, received) = Replies::detached(requests.len());
        let handed_back = run(requests, replies).await.handed_back();
        let later: BTreeSet<usize> = handed_back.iter().map(|(at, _)| *at).collect();
        for (at, rx) in received.into_iter().enumerate() {
            if !later.contains(&at) {
                answers[index[at]] = Some(rx.await.expect("answered by the round"));
            }
        }
        queued = handed_back
            .into_iter()
            .map(|(at, request)| (index[at], request))
            .collect();
    }
    answers
        .into_iter()
        .map(|a| a.expect("every group answered"))
        .collect()
}
