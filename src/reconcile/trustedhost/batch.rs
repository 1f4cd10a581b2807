//! TrustedHosts batched per device (`reconcile::batch`): the passes already queued for one
//! device read its users' tables once instead of one GET per resource (a FortiGate's
//! `system/admin` and `system/api-user`, each listed whole when one of the batch's users is
//! in it; a FortiManager's `/cli/global/system/admin/user`, listed whole), then each is
//! planned and written exactly as alone (`converge::decide` on the user read as
//! `user::observe` reads it: same claims, takeOver, masking, F14 and lockout rules). So a
//! converged device's resync costs at most two reads, whatever the number of TrustedHosts on
//! it.
//!
//! A lone pass takes the path it always took (`converge::converge`, one GET of its user): a
//! single change is never delayed or widened by the batch. Passes on one user share the
//! reading, but only the first of them that writes does so in this batch: a write is planned
//! against the user's other slots as read (masking, lockout) and an API user's write carries
//! its whole `trusthost` table, so a later writer of that user is observed again after the
//! earlier write (those writing nothing are answered from the shared reading, as if they ran
//! just before it). A deletion's close goes through the same queue with its user to itself: a
//! close and a write of one user never overlap (an API user's write read before the close
//! would put the closed entry back). Anything the listing does not answer plainly (a user not
//! in it, a row that does not parse or lacks a slot field, a pass that first closes an
//! earlier spec's slot) takes the lone path, so the batch never decides differently from it.

use std::collections::BTreeSet;
use std::sync::Arc;

use kube::Api;

use super::converge::{self, Facts, Pass, close_if_ours, decide, grant_at, releases_previous};
use super::deferred;
use super::listing::Listings;
use super::plan::Refusal;
use super::slots::Slot;
use super::user::Observed;
use crate::api::trustedhost::{TrustedHost, UserKind};
use crate::device::fortimanager::FortiManagerClient;
use crate::device::fortios::FortiOsClient;
use crate::reconcile::batch::{Combiner, Outcome, PerClient, in_rounds};
use crate::reconcile::error::ReconcileError;
use crate::reconcile::target::Target;

/// One TrustedHost's pass, or its deletion's close.
#[derive(Clone)]
pub struct Request {
    th: Arc<TrustedHost>,
    facts: Facts,
    now: jiff::Timestamp,
    work: Work,
    /// Its namespace's TrustedHosts, for the batch to read its claims with the others'
    /// (`deferred`); None: `facts.claimed_by` is read already.
    claims: Option<Api<TrustedHost>>,
}

#[derive(Clone)]
enum Work {
    /// A pass over the spec.
    Pass,
    /// Close `slot` of `user` when it holds one of `ours` (`converge::close_if_ours`).
    Close {
        user: String,
        kind: UserKind,
        slot: u8,
        ours: Vec<Slot>,
    },
}

/// What a request did.
#[derive(Debug)]
pub enum Done {
    /// A pass's outcome (boxed: a status is large, a close's answer small).
    Pass(Box<Pass>),
    /// A close's: the value written, or the refusal.
    Closed(Result<Option<Slot>, Refusal>),
}

/// A request's outcome.
pub type Answer = Result<Done, ReconcileError>;

/// The combiners of every FortiGate and FortiManager client in use (each is shared per
/// device).
#[derive(Debug, Default)]
pub struct Batches {
    fortigates: PerClient<FortiOsClient, Combiner<Request, Answer>>,
    managers: PerClient<FortiManagerClient, Combiner<Request, Answer>>,
}

impl Batches {
    fn combiner(&self, target: &Target) -> Arc<Combiner<Request, Answer>> {
        match target {
            Target::FortiGate { client, .. } => self.fortigates.of(client),
            Target::FortiManager { client, .. } => self.managers.of(client),
        }
    }
}

/// `converge::converge` for the controller, through the device's batch. `patient`: a resync
/// of a resource converged at its spec, which may wait a moment for the rest of its device's
/// resync tick (`reconcile::batch`). `claims`: the namespace's TrustedHosts, when the batch
/// is to read who holds the claim (`deferred`) instead of `facts.claimed_by`.
pub async fn converge_batched(
    batches: &Batches,
    target: &Target,
    th: Arc<TrustedHost>,
    facts: Facts,
    now: jiff::Timestamp,
    patient: bool,
    claims: Option<Api<TrustedHost>>,
) -> Result<Pass, ReconcileError> {
    let request = Request {
        th,
        facts,
        now,
        work: Work::Pass,
        claims,
    };
    match submitted(batches, target, request, patient).await? {
        Done::Pass(pass) => Ok(*pass),
        Done::Closed(_) => unreachable!("a pass is answered with a pass"),
    }
}

/// `converge::close_if_ours` for a deletion, through the device's queue (never patient).
#[allow(clippy::too_many_arguments)]
pub async fn close_batched(
    batches: &Batches,
    target: &Target,
    th: Arc<TrustedHost>,
    user: &str,
    kind: UserKind,
    slot: u8,
    ours: Vec<Slot>,
    facts: Facts,
) -> Result<Result<Option<Slot>, Refusal>, ReconcileError> {
    let work = Work::Close {
        user: user.to_string(),
        kind,
        slot,
        ours,
    };
    let now = jiff::Timestamp::now();
    let request = Request {
        th,
        facts,
        now,
        work,
        claims: None,
    };
    match submitted(batches, target, request, false).await? {
        Done::Closed(closed) => Ok(closed),
        Done::Pass(_) => unreachable!("a close is answered with a close"),
    }
}

/// `request` run through its device's batch.
async fn submitted(batches: &Batches, target: &Target, request: Request, patient: bool) -> Answer {
    let combiner = batches.combiner(target);
    let run = |requests: Vec<Request>| run_batch(target, requests);
    loop {
        // None: the pass running our batch was cancelled (shutdown) before answering; ours
        // was not written, or its write ended: queue it again.
        if let Some(answer) = combiner.submit(request.clone(), patient, &run).await {
            return answer;
        }
    }
}

/// One request alone: exactly the single-resource path.
async fn run_one(target: &Target, r: &Request) -> Answer {
    match &r.work {
        Work::Pass => converge::converge(target, &r.th, &r.facts, r.now)
            .await
            .map(|p| Done::Pass(Box::new(p))),
        Work::Close {
            user,
            kind,
            slot,
            ours,
        } => close_if_ours(target, &r.th, user, *kind, *slot, ours, &r.facts)
            .await
            .map(Done::Closed),
    }
}

/// The users a request may write: a pass, its spec's and the one an earlier spec wrote when
/// it closes that first; a close, its user.
fn touches(r: &Request) -> BTreeSet<(bool, String)> {
    let api = |kind: UserKind| kind == UserKind::ApiUser;
    if let Work::Close { user, kind, .. } = &r.work {
        return BTreeSet::from([(api(*kind), user.clone())]);
    }
    let th = &r.th;
    let mut out = BTreeSet::from([(api(th.spec.user_kind), th.spec.user.clone())]);
    if releases_previous(th)
        && let Some(w) = th.status.as_ref().and_then(|s| s.written.as_ref())
    {
        out.insert((api(w.user_kind), w.user.clone()));
    }
    out
}

/// How a request of a batch runs.
enum Role {
    /// Read from the batch's listing of its table, sharing its user with other such passes.
    Listed,
    /// By itself, its users to itself (a close; a pass that closes an earlier spec's slot).
    Alone,
    /// In the next batch.
    Later,
}

/// A batch: the claims its resyncs left to it read (once per namespace), then run.
async fn run_batch(target: &Target, requests: Vec<Request>) -> Vec<Outcome<Request, Answer>> {
    let wanted: Vec<_> = requests
        .iter()
        .map(|r| (&*r.th, r.claims.as_ref()))
        .collect();
    let claimed = deferred::claimed_by_each(&wanted).await;
    let mut outcomes: Vec<Option<Outcome<Request, Answer>>> = Vec::new();
    let (mut places, mut ready) = (Vec::new(), Vec::new());
    for (i, (mut r, claimed)) in requests.into_iter().zip(claimed).enumerate() {
        match claimed {
            Some(Err(e)) => {
                outcomes.push(Some(Outcome::Done(Err(e))));
                continue;
            }
            Some(Ok(by)) => {
                r.facts.claimed_by = by;
                r.claims = None;
            }
            None => {}
        }
        outcomes.push(None);
        places.push(i);
        ready.push(r);
    }
    for (i, outcome) in places.into_iter().zip(run_ready(target, ready).await) {
        outcomes[i] = Some(outcome);
    }
    outcomes
        .into_iter()
        .map(|o| o.expect("every request has an outcome"))
        .collect()
}

/// A batch whose claims are read: a lone request alone, the others on the listings.
async fn run_ready(target: &Target, requests: Vec<Request>) -> Vec<Outcome<Request, Answer>> {
    if requests.is_empty() {
        return Vec::new();
    }
    if let [r] = requests.as_slice() {
        return vec![Outcome::Done(run_one(target, r).await)];
    }
    let (mut shared, mut own) = (BTreeSet::new(), BTreeSet::new());
    let roles: Vec<Role> = requests
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let users = touches(r);
            if listed(r) {
                if i > 0 && users.iter().any(|u| own.contains(u)) {
                    return Role::Later;
                }
                shared.extend(users);
                Role::Listed
            } else {
                if i > 0 && users.iter().any(|u| own.contains(u) || shared.contains(u)) {
                    return Role::Later;
                }
                own.extend(users);
                Role::Alone
            }
        })
        .collect();
    converge_many(target, requests, roles).await
}

/// Whether a request is read from the batch's listing: a pass over its spec that reads one
/// user (a close, or a pass that first closes an earlier spec's slot, reads its own).
fn listed(r: &Request) -> bool {
    matches!(r.work, Work::Pass) && !releases_previous(&r.th) && grant_at(&r.th, r.now).is_ok()
}

/// What a listed pass found when planned on the listing, before anything is written.
enum Found {
    /// Its answer: it writes nothing (converged, or refused).
    Done(Answer),
    /// It writes its user, read as this (None: not plainly in the listing, read alone).
    Writes(Option<Observed>),
}

/// A batch: each table its listed passes need listed once, every listed pass planned on it;
/// those that write nothing are answered from that, the first that writes each user writes
/// (exactly as alone), a later one on that user waits for the next batch (observed after this
/// write). The writes and the passes run alone run concurrently (the Guard bounds the
/// device's concurrency; no two of them write one user).
async fn converge_many(
    target: &Target,
    requests: Vec<Request>,
    roles: Vec<Role>,
) -> Vec<Outcome<Request, Answer>> {
    let kinds: Vec<UserKind> = requests
        .iter()
        .zip(&roles)
        .filter(|(_, role)| matches!(role, Role::Listed))
        .map(|(r, _)| r.th.spec.user_kind)
        .collect();
    let listings = Listings::read(target, &kinds).await;
    let mut found = Vec::new();
    for (r, role) in requests.iter().zip(&roles) {
        if !matches!(role, Role::Listed) {
            found.push(None);
            continue;
        }
        let observed = match listings.observed(&r.th, &r.facts.credentials) {
            None => {
                found.push(Some(Found::Writes(None)));
                continue;
            }
            Some(Err(e)) => {
                found.push(Some(Found::Done(Err(e))));
                continue;
            }
            Some(Ok(observed)) => observed,
        };
        // Planned without writing: nothing is sent to the device.
        let th = &r.th;
        found.push(Some(
            match decide(target, th, &r.facts, r.now, observed.clone(), false).await {
                Ok(pass) if pass.wrote.is_some() => Found::Writes(Some(observed)),
                other => Found::Done(other.map(|p| Done::Pass(Box::new(p)))),
            },
        ));
    }
    // The first writer of each user writes; a later one waits.
    let mut writing = BTreeSet::new();
    let mut outcomes: Vec<Option<Outcome<Request, Answer>>> = Vec::new();
    let mut runs = Vec::new();
    for (i, ((r, role), found)) in requests.into_iter().zip(roles).zip(found).enumerate() {
        let run = match (role, found) {
            (Role::Later, _) => {
                outcomes.push(Some(Outcome::Later(r)));
                continue;
            }
            (_, Some(Found::Done(answer))) => {
                outcomes.push(Some(Outcome::Done(answer)));
                continue;
            }
            (Role::Listed, Some(Found::Writes(observed))) => {
                if !writing.insert(touches(&r)) {
                    outcomes.push(Some(Outcome::Later(r)));
                    continue;
                }
                (r, observed)
            }
            (_, _) => (r, None),
        };
        outcomes.push(None);
        runs.push((i, run));
    }
    let ran = futures::future::join_all(runs.iter().map(|(_, (r, observed))| async move {
        match observed {
            // Planned again on the same reading, now writing: the same plan.
            Some(observed) => decide(target, &r.th, &r.facts, r.now, observed.clone(), true)
                .await
                .map(|p| Done::Pass(Box::new(p))),
            None => run_one(target, r).await,
        }
    }))
    .await;
    for ((i, _), answer) in runs.iter().zip(ran) {
        outcomes[*i] = Some(Outcome::Done(answer));
    }
    outcomes
        .into_iter()
        .map(|o| o.expect("every request has an outcome"))
        .collect()
}

/// `ths` (all on one `target`) through the batch path as if their passes were
/// queued together: each round reads once, a pass handed back runs in the next round. For
/// tests and figures; the controller goes through `converge_batched`.
pub async fn converge_together(
    target: &Target,
    ths: &[TrustedHost],
    facts: &[Facts],
    now: jiff::Timestamp,
) -> Vec<Result<Pass, ReconcileError>> {
    let requests: Vec<Request> = ths
        .iter()
        .zip(facts)
        .map(|(th, facts)| Request {
            th: Arc::new(th.clone()),
            facts: facts.clone(),
            now,
            work: Work::Pass,
            claims: None,
        })
        .collect();
    in_rounds(requests, |batch| run_batch(target, batch))
        .await
        .into_iter()
        .map(|a| match a? {
            Done::Pass(pass) => Ok(*pass),
            Done::Closed(_) => unreachable!("only passes were queued"),
        })
        .collect()
}
