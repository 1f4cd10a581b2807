//! Per-device batching: work for one device that is already queued runs together, so one
//! observation serves every pending resource of that device. Nothing waits for more work: a
//! lone request runs at once, as the only member of its batch.
//!
//! A `Combiner` is a queue and a turn. A request joins the queue, then waits for the turn;
//! whoever holds the turn takes everything queued and runs it as one batch (its own request
//! and those that queued behind the batch before). So every batch is observed after each of
//! its requests was queued, hence after that resource's previous pass and all its writes
//! ended: a plan never acts on an observation older than its own resource's last write.
//!
//! By default a batch keeps the turn until its writes end, so the next batch observes after
//! them. A batch may instead pass the turn on once it has planned (`submit_passing`,
//! `Turn::pass`): its writes then go on while the next batch observes and plans, so an edit
//! made during a long burst is not held until the whole burst is written. The next batch
//! must then not plan what those writes still touch: the batch claims its objects in the
//! device's `Busy` set before passing the turn, and a request touching a claimed object is
//! handed back until the claim ends.
//!
//! A batch may hand a request back (`Outcome::Later`: two resources that would touch one
//! device object); it runs in a later batch, observed after the writes of this one.
//!
//! A *patient* request (a resync of a resource already converged at its spec) lets the turn
//! wait a moment while others keep joining, so one device's resources that resync together
//! (their resync ticks are aligned per device, `requeue::aligned`) share one observation. A
//! change is never patient, and a patient wait ends as soon as a change joins.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{Notify, OwnedMutexGuard, oneshot};

/// How long a patient batch waits for one more request to join before it runs.
/// Long enough to bridge the gaps between resyncs of one tick on a busy 2-core machine.
const SETTLE_STEP: Duration = Duration::from_millis(50);
/// The longest a patient batch waits in all.
/// Nobody waits for a patient batch (a change ends the wait at once), so this can cover a
/// restart, whose 1,000 converged resources reach the queue over about a second.
const SETTLE_LIMIT: Duration = Duration::from_secs(2);

/// How a batch answers its requests, each by its place in the batch and as soon as it is
/// done (a group written early in a long burst is answered then, so its next pass, e.g. an
/// edit, need not wait for the burst's last write), or hands one back for a later batch.
/// A request neither answered nor handed back is answered None (its reconcile retries).
pub struct Replies<Req, Resp> {
    slots: Vec<Option<Reply<Resp>>>,
    later: Vec<(usize, Queued<Req, Resp>)>,
}

/// The answer to one request of a batch, to send once it is done.
pub struct Reply<Resp> {
    patient: bool,
    answer: oneshot::Sender<Resp>,
}

impl<Resp> Reply<Resp> {
    /// Answers the request.
    pub fn send(self, answer: Resp) {
        // The caller may have given up (cancelled): nobody to tell.
        let _ = self.answer.send(answer);
    }
}

impl<Req, Resp> Replies<Req, Resp> {
    fn new(slots: Vec<Reply<Resp>>) -> Self {
        Self {
            slots: slots.into_iter().map(Some).collect(),
            later: Vec::new(),
        }
    }

    /// Replies to `n` requests run outside a combiner (tests, figures), and their answers.
    pub fn detached(n: usize) -> (Self, Vec<oneshot::Receiver<Resp>>) {
        let (slots, answers) = (0..n)
            .map(|_| {
                let (answer, rx) = oneshot::channel();
                (
                    Reply {
                        patient: false,
                        answer,
                    },
                    rx,
                )
            })
            .unzip();
        (Self::new(slots), answers)
    }

    /// The reply to request `i`, to send when it is done (None: already taken).
    pub fn take(&mut self, i: usize) -> Option<Reply<Resp>> {
        self.slots.get_mut(i).and_then(Option::take)
    }

    /// Hands request `i` back, to run in a later batch.
    pub fn later(&mut self, i: usize, request: Req) {
        if let Some(Reply { patient, answer }) = self.take(i) {
            self.later.push((
                i,
                Queued {
                    request,
                    patient,
                    answer,
                },
            ));
        }
    }

    /// Outcomes in the order of the batch's requests.
    pub fn record(&mut self, outcomes: Vec<Outcome<Req, Resp>>) {
        for (i, outcome) in outcomes.into_iter().enumerate() {
            match outcome {
                Outcome::Done(answer) => {
                    if let Some(reply) = self.take(i) {
                        reply.send(answer);
                    }
                }
                Outcome::Later(request) => self.later(i, request),
            }
        }
    }

    /// The requests handed back, with their places in the batch.
    pub fn handed_back(&mut self) -> Vec<(usize, Req)> {
        std::mem::take(&mut self.later)
            .into_iter()
            .map(|(i, q)| (i, q.request))
            .collect()
    }
}

/// What a batch does with one of its requests.
#[derive(Debug)]
pub enum Outcome<Req, Resp> {
    /// Done: this is its answer.
    Done(Resp),
    /// Run it in the next batch, after this batch's writes.
    Later(Req),
}

struct Queued<Req, Resp> {
    request: Req,
    patient: bool,
    answer: oneshot::Sender<Resp>,
}

/// The queue and the turn of one device.
pub struct Combiner<Req, Resp> {
    queue: Mutex<Vec<Queued<Req, Resp>>>,
    turn: Arc<tokio::sync::Mutex<()>>,
    joined: Arc<Notify>,
}

impl<Req, Resp> Default for Combiner<Req, Resp> {
    fn default() -> Self {
        Self {
            queue: Mutex::new(Vec::new()),
            turn: Arc::default(),
            joined: Arc::default(),
        }
    }
}

/// The turn of a running batch (`Combiner::submit_passing`): held, no other batch of the
/// device runs; passed, the next may observe and plan while this one still writes.
pub struct Turn {
    _held: OwnedMutexGuard<()>,
    joined: Arc<Notify>,
}

impl Turn {
    /// Lets the next batch run (after this batch claimed what it still writes, `Busy`).
    pub fn pass(self) {}

    /// Resolves when another request joins the queue (a batch that can run nothing yet
    /// waits for that or for a claim to end, then hands its requests back to run again).
    pub async fn joined(&self) {
        self.joined.notified().await
    }
}

impl<Req, Resp> std::fmt::Debug for Combiner<Req, Resp> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Combiner")
            .field("queued", &self.lock().len())
            .finish()
    }
}

impl<Req, Resp> Combiner<Req, Resp> {
    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Queued<Req, Resp>>> {
        self.queue.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// While only patient requests are queued, wait until none joined for `SETTLE_STEP` (at
    /// most `SETTLE_LIMIT`): the rest of a resync tick joins this batch. A change joining
    /// ends the wait at once.
    async fn settle(&self) {
        let deadline = tokio::time::Instant::now() + SETTLE_LIMIT;
        loop {
            let joined = self.joined.notified();
            {
                // Nothing queued (ours is in a batch that passed the turn on): nothing to
                // wait for.
                let queue = self.lock();
                if queue.is_empty() || !queue.iter().all(|q| q.patient) {
                    return;
                }
            }
            let step =
                tokio::time::sleep_until(deadline.min(tokio::time::Instant::now() + SETTLE_STEP));
            tokio::select! {
                _ = joined => {}
                _ = step => return,
            }
        }
    }
}

impl<Req: Send, Resp: Send> Combiner<Req, Resp> {
    /// Queues `request` and returns its answer: from a batch this call runs with `run`, or
    /// from one another caller ran. `run` answers each request of the batch (in the order
    /// given) or hands it back for a later batch. None when the caller running the batch was
    /// cancelled before answering (the reconcile retries). `patient`: this request may wait a
    /// moment for others to join (see the module). The batch keeps the turn to its end.
    pub async fn submit<F, Fut>(&self, request: Req, patient: bool, run: F) -> Option<Resp>
    where
        F: Fn(Vec<Req>) -> Fut,
        Fut: std::future::Future<Output = Vec<Outcome<Req, Resp>>>,
    {
        let run = |requests, turn: Turn, mut replies: Replies<Req, Resp>| {
            let batch = run(requests);
            async move {
                replies.record(batch.await);
                drop(turn);
                replies
            }
        };
        self.submit_passing(request, patient, run).await
    }

    /// `submit`, but `run` holds the turn (`Turn`) and may pass it on before its writes end
    /// (see the module: it must claim what it still writes first), and answers through
    /// `Replies`, each request as soon as it is done (even after `run` returned).
    pub async fn submit_passing<F, Fut>(&self, request: Req, patient: bool, run: F) -> Option<Resp>
    where
        F: Fn(Vec<Req>, Turn, Replies<Req, Resp>) -> Fut,
        Fut: std::future::Future<Output = Replies<Req, Resp>>,
    {
        let (tx, mut rx) = oneshot::channel();
        self.lock().push(Queued {
            request,
            patient,
            answer: tx,
        });
        self.joined.notify_one();
        let mut turn = self.turn.clone().lock_owned().await;
        loop {
            // Ours was answered by a batch another caller ran: leave the rest to their own
            // callers, each of which waits for the turn behind us.
            if let Some(answer) = settled(&mut rx) {
                return answer;
            }
            self.settle().await;
            // A request whose caller gave up is not run for nobody.
            let queued: Vec<_> = std::mem::take(&mut *self.lock())
                .into_iter()
                .filter(|q| !q.answer.is_closed())
                .collect();
            if queued.is_empty() {
                // Not answered yet, not queued: in a batch that passed the turn on and is
                // still writing. Its answer comes from there.
                break;
            }
            let (requests, slots): (Vec<_>, Vec<_>) = queued
                .into_iter()
                .map(|q| {
                    let reply = Reply {
                        patient: q.patient,
                        answer: q.answer,
                    };
                    (q.request, reply)
                })
                .unzip();
            let held = Turn {
                _held: turn,
                joined: self.joined.clone(),
            };
            let mut later: Vec<_> = run(requests, held, Replies::new(slots))
                .await
                .later
                .into_iter()
                .map(|(_, q)| q)
                .collect();
            // Handed back ahead of what queued meanwhile: they are older.
            {
                let mut queue = self.lock();
                later.append(&mut queue);
                *queue = later;
            }
            if let Some(answer) = settled(&mut rx) {
                return answer;
            }
            turn = self.turn.clone().lock_owned().await;
        }
        drop(turn);
        rx.await.ok()
    }
}

/// A batch's outcomes in the order of its requests, from `slots` (None: it ran, and its
/// answer is the next of `answers`; Some: handed back).
pub fn outcomes<Req, Resp>(slots: Vec<Option<Req>>, answers: Vec<Resp>) -> Vec<Outcome<Req, Resp>> {
    let mut answers = answers.into_iter();
    slots
        .into_iter()
        .map(|slot| match slot {
            Some(later) => Outcome::Later(later),
            None => Outcome::Done(answers.next().expect("one answer per request run")),
        })
        .collect()
}

/// `requests` run by `run` in rounds as one device's queue would run them were they queued
/// together: all at first, then what each round handed back. For tests and figures.
pub async fn in_rounds<Req, Resp, F, Fut>(requests: Vec<Req>, run: F) -> Vec<Resp>
where
    F: Fn(Vec<Req>) -> Fut,
    Fut: std::future::Future<Output = Vec<Outcome<Req, Resp>>>,
{
    let mut answers: Vec<Option<Resp>> = requests.iter().map(|_| None).collect();
    let mut queued: Vec<(usize, Req)> = requests.into_iter().enumerate().collect();
    while !queued.is_empty() {
        let (index, batch): (Vec<usize>, Vec<Req>) = queued.into_iter().unzip();
        queued = Vec::new();
        for (i, outcome) in index.into_iter().zip(run(batch).await) {
            match outcome {
                Outcome::Done(answer) => answers[i] = Some(answer),
                Outcome::Later(request) => queued.push((i, request)),
            }
        }
    }
    answers
        .into_iter()
        .map(|a| a.expect("every request answered"))
        .collect()
}

/// One value (a device's combiner and what goes with it) per client in use, by client: a
/// client is shared per device (and credential), so this is per device. A client replaced
/// (new credentials) leaves its entry behind; those are dropped as others are added.
pub struct PerClient<C, V> {
    by_client: Mutex<std::collections::HashMap<usize, ClientEntry<C, V>>>,
}

/// A client's value, and the client (gone: the entry is stale).
type ClientEntry<C, V> = (std::sync::Weak<C>, Arc<V>);

impl<C, V> Default for PerClient<C, V> {
    fn default() -> Self {
        Self {
            by_client: Mutex::default(),
        }
    }
}

impl<C, V> std::fmt::Debug for PerClient<C, V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PerClient").finish_non_exhaustive()
    }
}

impl<C, V: Default> PerClient<C, V> {
    /// The value of `client`, made on first use.
    pub fn of(&self, client: &Arc<C>) -> Arc<V> {
        let mut map = self.by_client.lock().unwrap_or_else(|p| p.into_inner());
        map.retain(|_, (weak, _)| weak.strong_count() > 0);
        let key = Arc::as_ptr(client) as usize;
        map.entry(key)
            .or_insert_with(|| (Arc::downgrade(client), Arc::default()))
            .1
            .clone()
    }
}

/// Some when `rx` has its answer, or never will (Some(None): whoever ran its batch dropped
/// it unanswered); None while it may still come.
fn settled<Resp>(rx: &mut oneshot::Receiver<Resp>) -> Option<Option<Resp>> {
    match rx.try_recv() {
        Ok(answer) => Some(Some(answer)),
        Err(oneshot::error::TryRecvError::Closed) => Some(None),
        Err(oneshot::error::TryRecvError::Empty) => None,
    }
}

/// The device objects of batches that passed the turn on and still write them (see the
/// module), each claimed as often as batches claim it.
pub struct Busy<K> {
    claimed: Mutex<BTreeMap<K, usize>>,
    freed: Notify,
}

impl<K> Default for Busy<K> {
    fn default() -> Self {
        Self {
            claimed: Mutex::new(BTreeMap::new()),
            freed: Notify::new(),
        }
    }
}

/// Objects claimed in a `Busy` set until this is dropped (its writes ended or were dropped).
pub struct Claim<K: Ord> {
    busy: Arc<Busy<K>>,
    keys: BTreeSet<K>,
}

impl<K: Ord + Clone> Busy<K> {
    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<K, usize>> {
        self.claimed.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Claims `keys` until the claim is dropped.
    pub fn claim(self: &Arc<Self>, keys: BTreeSet<K>) -> Claim<K> {
        let mut claimed = self.lock();
        for k in &keys {
            *claimed.entry(k.clone()).or_default() += 1;
        }
        Claim {
            busy: self.clone(),
            keys,
        }
    }

    /// Whether any of `keys` is claimed.
    pub fn any(&self, keys: &BTreeSet<K>) -> bool {
        let claimed = self.lock();
        keys.iter().any(|k| claimed.contains_key(k))
    }

    /// Resolves when a claim ends (registered when called: a claim ending after the call and
    /// before the await is seen).
    pub fn freed(&self) -> impl std::future::Future<Output = ()> + '_ {
        let mut notified = Box::pin(self.freed.notified());
        notified.as_mut().enable();
        notified
    }
}

impl<K: Ord> Drop for Claim<K> {
    fn drop(&mut self) {
        {
            let mut claimed = self.busy.claimed.lock().unwrap_or_else(|p| p.into_inner());
            for k in &self.keys {
                if let Some(n) = claimed.get_mut(k) {
                    *n -= 1;
                    if *n == 0 {
                        claimed.remove(k);
                    }
                }
            }
        }
        self.busy.freed.notify_waiters();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[tokio::test]
    async fn a_lone_request_runs_at_once_as_a_batch_of_one() {
        let c = Combiner::<u32, u32>::default();
        let batches = AtomicUsize::new(0);
        let answer = c
            .submit(7, false, |reqs| {
                batches.fetch_add(1, Ordering::SeqCst);
                async move { reqs.into_iter().map(|r| Outcome::Done(r * 2)).collect() }
            })
            .await;
        assert_eq!(answer, Some(14));
        assert_eq!(batches.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn requests_queued_while_a_batch_runs_share_the_next_batch() {
        let c = Arc::new(Combiner::<u32, (u32, usize)>::default());
        let sizes = Arc::new(Mutex::new(Vec::new()));
        let (release, hold) = tokio::sync::watch::channel(false);
        let run = |sizes: Arc<Mutex<Vec<usize>>>, hold: tokio::sync::watch::Receiver<bool>| {
            move |reqs: Vec<u32>| {
                let (sizes, mut hold) = (sizes.clone(), hold.clone());
                async move {
                    let n = reqs.len();
                    sizes.lock().unwrap().push(n);
                    let _ = hold.wait_for(|go| *go).await;
                    reqs.into_iter().map(|r| Outcome::Done((r, n))).collect()
                }
            }
        };
        let first = {
            let (c, f) = (c.clone(), run(sizes.clone(), hold.clone()));
            tokio::spawn(async move { c.submit(0, false, f).await })
        };
        // The first batch is running (and held): three more queue behind it.
        while sizes.lock().unwrap().is_empty() {
            tokio::task::yield_now().await;
        }
        let mut rest = Vec::new();
        for i in 1..=3 {
            let (c, f) = (c.clone(), run(sizes.clone(), hold.clone()));
            rest.push(tokio::spawn(async move { c.submit(i, false, f).await }));
        }
        for _ in 0..10 {
            tokio::task::yield_now().await;
        }
        release.send(true).unwrap();
        assert_eq!(first.await.unwrap(), Some((0, 1)));
        for (i, r) in rest.into_iter().enumerate() {
            assert_eq!(r.await.unwrap(), Some((i as u32 + 1, 3)));
        }
        assert_eq!(*sizes.lock().unwrap(), vec![1, 3]);
    }

    #[tokio::test]
    async fn a_request_handed_back_runs_alone_in_the_next_batch() {
        // Batches record their requests; request 2 is handed back the first time it is seen.
        type Log = Arc<Mutex<Vec<Vec<u32>>>>;
        let c = Arc::new(Combiner::<u32, usize>::default());
        let log: Log = Arc::default();
        let (release, hold) = tokio::sync::watch::channel(false);
        let run = |log: Log, hold: tokio::sync::watch::Receiver<bool>| {
            move |reqs: Vec<u32>| {
                let (log, mut hold) = (log.clone(), hold.clone());
                async move {
                    let batch = {
                        let mut log = log.lock().unwrap();
                        log.push(reqs.clone());
                        log.len() - 1
                    };
                    let _ = hold.wait_for(|go| *go).await;
                    let seen = log
                        .lock()
                        .unwrap()
                        .iter()
                        .flatten()
                        .filter(|r| **r == 2)
                        .count();
                    reqs.into_iter()
                        .map(|r| {
                            if r == 2 && seen == 1 {
                                Outcome::Later(r)
                            } else {
                                Outcome::Done(batch)
                            }
                        })
                        .collect()
                }
            }
        };
        let first = {
            let (c, f) = (c.clone(), run(log.clone(), hold.clone()));
            tokio::spawn(async move { c.submit(0, false, f).await })
        };
        while log.lock().unwrap().is_empty() {
            tokio::task::yield_now().await;
        }
        let mut rest = Vec::new();
        for i in 1..=2 {
            let (c, f) = (c.clone(), run(log.clone(), hold.clone()));
            rest.push(tokio::spawn(async move { c.submit(i, false, f).await }));
            for _ in 0..10 {
                tokio::task::yield_now().await;
            }
        }
        release.send(true).unwrap();
        assert_eq!(first.await.unwrap(), Some(0));
        let answers: Vec<_> = futures::future::join_all(rest)
            .await
            .into_iter()
            .map(|r| r.unwrap())
            .collect();
        assert_eq!(answers, vec![Some(1), Some(2)]);
        assert_eq!(*log.lock().unwrap(), vec![vec![0], vec![1, 2], vec![2]]);
    }

    #[tokio::test(start_paused = true)]
    async fn patient_requests_joining_a_moment_apart_share_one_batch_and_a_change_ends_the_wait() {
        type Log = Arc<Mutex<Vec<Vec<u32>>>>;
        let c = Arc::new(Combiner::<u32, ()>::default());
        let log: Log = Arc::default();
        let run = |log: Log| {
            move |reqs: Vec<u32>| {
                log.lock().unwrap().push(reqs.clone());
                async move { reqs.into_iter().map(|_| Outcome::Done(())).collect() }
            }
        };
        // Resyncs of one tick arrive 2 ms apart: all in one batch, not the first alone.
        let mut joins = Vec::new();
        for i in 0..4 {
            let (c, f) = (c.clone(), run(log.clone()));
            joins.push(tokio::spawn(async move { c.submit(i, true, f).await }));
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        for j in joins {
            assert_eq!(j.await.unwrap(), Some(()));
        }
        assert_eq!(*log.lock().unwrap(), vec![vec![0, 1, 2, 3]]);

        // A change joining a patient wait is not kept waiting: the batch runs at once, with it.
        log.lock().unwrap().clear();
        let started = tokio::time::Instant::now();
        let resync = {
            let (c, f) = (c.clone(), run(log.clone()));
            tokio::spawn(async move { c.submit(10, true, f).await })
        };
        tokio::time::sleep(Duration::from_millis(1)).await;
        let change = {
            let (c, f) = (c.clone(), run(log.clone()));
            tokio::spawn(async move { c.submit(11, false, f).await })
        };
        assert_eq!(change.await.unwrap(), Some(()));
        assert_eq!(resync.await.unwrap(), Some(()));
        assert_eq!(started.elapsed(), Duration::from_millis(1));
        assert_eq!(*log.lock().unwrap(), vec![vec![10, 11]]);
    }

    #[tokio::test]
    async fn a_batch_that_passes_the_turn_lets_the_next_run_while_it_still_writes() {
        let c = Arc::new(Combiner::<u32, u32>::default());
        let (release, hold) = tokio::sync::watch::channel(false);
        let planned = Arc::new(tokio::sync::Notify::new());
        // Request 0's batch passes the turn, then "writes" until released.
        let first = {
            let (c, planned, hold) = (c.clone(), planned.clone(), hold.clone());
            tokio::spawn(async move {
                c.submit_passing(0, false, move |reqs, turn: Turn, mut replies| {
                    let (planned, mut hold) = (planned.clone(), hold.clone());
                    async move {
                        turn.pass();
                        planned.notify_one();
                        let _ = hold.wait_for(|go| *go).await;
                        replies.record(reqs.into_iter().map(Outcome::Done).collect());
                        replies
                    }
                })
                .await
            })
        };
        planned.notified().await;
        // The second runs and is answered while the first is still held.
        let second = c
            .submit(1, false, |reqs| async move {
                reqs.into_iter().map(|r| Outcome::Done(r + 10)).collect()
            })
            .await;
        assert_eq!(second, Some(11));
        assert!(!first.is_finished());
        release.send(true).unwrap();
        assert_eq!(first.await.unwrap(), Some(0));
    }

    #[tokio::test]
    async fn a_claim_holds_its_objects_until_dropped_and_wakes_who_waits() {
        let busy = Arc::new(Busy::<&str>::default());
        let a = busy.claim(BTreeSet::from(["x", "y"]));
        let b = busy.claim(BTreeSet::from(["y"]));
        assert!(busy.any(&BTreeSet::from(["y", "z"])));
        assert!(!busy.any(&BTreeSet::from(["z"])));
        let freed = busy.freed();
        drop(a);
        freed.await;
        assert!(!busy.any(&BTreeSet::from(["x"])));
        assert!(busy.any(&BTreeSet::from(["y"])), "still claimed by b");
        drop(b);
        assert!(!busy.any(&BTreeSet::from(["x", "y"])));
    }
}
