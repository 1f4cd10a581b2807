//! TrustedHosts on a FortiGate, batched per device (`reconcile::batch`): the passes already
//! queued for one FortiGate read the users' tables once (`system/admin`, `system/api-user`,
//! each listed whole when one of the batch's users is in it) instead of one GET per resource,
//! then each is planned and written exactly as alone (`converge::decide`: same claims,
//! takeOver, masking and lockout rules). So a converged device's resync costs at most two
//! reads, whatever the number of TrustedHosts on it.
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
//! in it, a user that does not parse, a pass that first closes an earlier spec's slot) takes
//! the lone path, so the batch never decides differently from it.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use serde_json::Value;

use super::converge::{self, Facts, Pass, close_if_ours, decide, grant_at, releases_previous};
use super::fortigate::{self, read_user};
use super::plan::Refusal;
use super::slots::{Flavor, Slot, UserSlots};
use super::user::fortigate_user;
use crate::api::trustedhost::{TrustedHost, UserKind};
use crate::device::DeviceError;
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

/// The combiners of every FortiGate client in use (each is shared per device).
#[derive(Debug, Default)]
pub struct Batches {
    by_client: PerClient<FortiOsClient, Combiner<Request, Answer>>,
}

impl Batches {
    fn combiner(&self, client: &Arc<FortiOsClient>) -> Arc<Combiner<Request, Answer>> {
        self.by_client.of(client)
    }
}

/// `converge::converge` for the controller: on a FortiGate through its batch, on a
/// FortiManager alone. `patient`: a resync of a resource converged at its spec, which may
/// wait a moment for the rest of its device's resync tick (`reconcile::batch`).
pub async fn converge_batched(
    batches: &Batches,
    target: &Target,
    th: Arc<TrustedHost>,
    facts: Facts,
    now: jiff::Timestamp,
    patient: bool,
) -> Result<Pass, ReconcileError> {
    let request = Request {
        th,
        facts,
        now,
        work: Work::Pass,
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
    };
    match submitted(batches, target, request, false).await? {
        Done::Closed(closed) => Ok(closed),
        Done::Pass(_) => unreachable!("a close is answered with a close"),
    }
}

/// `request` run on a FortiGate through its batch, on a FortiManager alone.
async fn submitted(batches: &Batches, target: &Target, request: Request, patient: bool) -> Answer {
    let Target::FortiGate { client, .. } = target else {
        return run_one(target, &request).await;
    };
    let combiner = batches.combiner(client);
    let run = |requests: Vec<Request>| run_batch(target, client, requests);
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

async fn run_batch(
    target: &Target,
    client: &FortiOsClient,
    requests: Vec<Request>,
) -> Vec<Outcome<Request, Answer>> {
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
    converge_many(target, client, requests, roles).await
}

/// Whether a request is read from the batch's listing: a pass over its spec that reads one
/// user (a close, or a pass that first closes an earlier spec's slot, reads its own).
fn listed(r: &Request) -> bool {
    matches!(r.work, Work::Pass) && !releases_previous(&r.th) && grant_at(&r.th, r.now).is_ok()
}

/// A table's users by name, listed once (None: no request of the batch reads it).
type Listing = Option<Result<HashMap<String, Value>, DeviceError>>;

async fn listing(client: &FortiOsClient, flavor: Flavor, wanted: bool) -> Listing {
    if !wanted {
        return None;
    }
    // Whole, without `format`: each entry as a GET of that user returns it, so it reads the
    // same (administrator tables are small; a `name==` filter's case rules are not on the
    // facts pages).
    let rows = client.list_where(fortigate::table(flavor), None, &[]).await;
    Some(rows.map(|rows| {
        rows.into_iter()
            .filter_map(|row| Some((row["name"].as_str()?.to_string(), row)))
            .collect()
    }))
}

fn flavor(kind: UserKind) -> Flavor {
    match kind {
        UserKind::Admin => Flavor::FortiGateAdmin,
        UserKind::ApiUser => Flavor::FortiGateApiUser,
    }
}

/// What a listed pass found when planned on the listing, before anything is written.
enum Found {
    /// Its answer: it writes nothing (converged, or refused).
    Done(Answer),
    /// It writes its user, read as this (None: not plainly in the listing, read alone).
    Writes(Option<UserSlots>),
}

/// A batch: each table its listed passes need listed once, every listed pass planned on it;
/// those that write nothing are answered from that, the first that writes each user writes
/// (exactly as alone), a later one on that user waits for the next batch (observed after this
/// write). The writes and the passes run alone run concurrently (the Guard bounds the
/// device's concurrency; no two of them write one user).
async fn converge_many(
    target: &Target,
    client: &FortiOsClient,
    requests: Vec<Request>,
    roles: Vec<Role>,
) -> Vec<Outcome<Request, Answer>> {
    let wants = |kind: UserKind| {
        requests
            .iter()
            .zip(&roles)
            .any(|(r, role)| matches!(role, Role::Listed) && r.th.spec.user_kind == kind)
    };
    let (admins, api_users) = futures::join!(
        listing(client, Flavor::FortiGateAdmin, wants(UserKind::Admin)),
        listing(client, Flavor::FortiGateApiUser, wants(UserKind::ApiUser)),
    );
    let mut found = Vec::new();
    for (r, role) in requests.iter().zip(&roles) {
        if !matches!(role, Role::Listed) {
            found.push(None);
            continue;
        }
        let th = &r.th;
        let kind = th.spec.user_kind;
        let table = match kind {
            UserKind::Admin => &admins,
            UserKind::ApiUser => &api_users,
        };
        let slots = match table {
            Some(Ok(rows)) => rows
                .get(&th.spec.user)
                .and_then(|row| read_user(row, flavor(kind))),
            Some(Err(e)) => {
                found.push(Some(Found::Done(Err(e.clone().into()))));
                continue;
            }
            None => None,
        };
        let Some(slots) = slots else {
            found.push(Some(Found::Writes(None)));
            continue;
        };
        // Planned without writing: nothing is sent to the device.
        let observed = fortigate_user(slots.clone(), &th.spec.user, kind, &r.facts.credentials);
        found.push(Some(
            match decide(target, th, &r.facts, r.now, observed, false).await {
                Ok(pass) if pass.wrote.is_some() => Found::Writes(Some(slots)),
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
            (Role::Listed, Some(Found::Writes(slots))) => {
                if !writing.insert(touches(&r)) {
                    outcomes.push(Some(Outcome::Later(r)));
                    continue;
                }
                (r, slots)
            }
            (_, _) => (r, None),
        };
        outcomes.push(None);
        runs.push((i, run));
    }
    let ran = futures::future::join_all(runs.iter().map(|(_, (r, slots))| async move {
        match slots {
            // Planned again on the same reading, now writing: the same plan.
            Some(slots) => {
                let th = &r.th;
                let kind = th.spec.user_kind;
                let observed =
                    fortigate_user(slots.clone(), &th.spec.user, kind, &r.facts.credentials);
                decide(target, th, &r.facts, r.now, observed, true)
                    .await
                    .map(|p| Done::Pass(Box::new(p)))
            }
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

/// `ths` (all on one FortiGate `target`) through the batch path as if their passes were
/// queued together: each round reads once, a pass handed back runs in the next round. For
/// tests and figures; the controller goes through `converge_batched`.
pub async fn converge_together(
    target: &Target,
    ths: &[TrustedHost],
    facts: &[Facts],
    now: jiff::Timestamp,
) -> Vec<Result<Pass, ReconcileError>> {
    let Target::FortiGate { client, .. } = target else {
        panic!("converge_together takes a FortiGate target");
    };
    let requests: Vec<Request> = ths
        .iter()
        .zip(facts)
        .map(|(th, facts)| Request {
            th: Arc::new(th.clone()),
            facts: facts.clone(),
            now,
            work: Work::Pass,
        })
        .collect();
    in_rounds(requests, |batch| run_batch(target, client, batch))
        .await
        .into_iter()
        .map(|a| match a? {
            Done::Pass(pass) => Ok(*pass),
            Done::Closed(_) => unreachable!("only passes were queued"),
        })
        .collect()
}
