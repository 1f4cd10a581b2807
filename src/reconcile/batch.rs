//! Per-device batching: work for one device that is already queued runs together, so one
//! observation serves every pending resource of that device. Nothing waits for more work: a
//! lone request runs at once, as the only member of its batch.
//!
//! A `Combiner` is a queue and a turn. A request joins the queue, then waits for the turn;
//! whoever holds the turn takes everything queued and runs it as one batch (its own request
//! and those that queued behind the batch before). So every batch is observed after each of
//! its requests was queued, hence after that resource's previous pass and all its writes
//! ended: a plan never acts on an observation older than its own resource's last write. The
//! batch's writes end before the turn passes on, so the next batch observes after them too.
//!
//! A batch may hand a request back (`Outcome::Later`: two resources that would touch one
//! device object); it runs in the next batch, observed after the writes of this one.
//!
//! A *patient* request (a resync of a resource already converged at its spec) lets the turn
//! wait a moment while others keep joining, so one device's resources that resync together
//! (their resync ticks are aligned per device, `requeue::aligned`) share one observation. A
//! change is never patient, and a patient wait ends as soon as a change joins.

use std::sync::Mutex;
use std::time::Duration;

use tokio::sync::oneshot;

/// How long a patient batch waits for one more request to join before it runs.
const SETTLE_STEP: Duration = Duration::from_millis(25);
/// The longest a patient batch waits in all.
const SETTLE_LIMIT: Duration = Duration::from_millis(500);

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
    turn: tokio::sync::Mutex<()>,
    joined: tokio::sync::Notify,
}

impl<Req, Resp> Default for Combiner<Req, Resp> {
    fn default() -> Self {
        Self {
            queue: Mutex::new(Vec::new()),
            turn: tokio::sync::Mutex::new(()),
            joined: tokio::sync::Notify::new(),
        }
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
            if !self.lock().iter().all(|q| q.patient) {
                return;
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
    /// given) or hands it back for the next batch; it never hands back the first. None when
    /// the caller running the batch was cancelled before answering (the reconcile retries).
    /// `patient`: this request may wait a moment for others to join (see the module).
    pub async fn submit<F, Fut>(&self, request: Req, patient: bool, run: F) -> Option<Resp>
    where
        F: Fn(Vec<Req>) -> Fut,
        Fut: std::future::Future<Output = Vec<Outcome<Req, Resp>>>,
    {
        let (tx, mut rx) = oneshot::channel();
        self.lock().push(Queued {
            request,
            patient,
            answer: tx,
        });
        self.joined.notify_one();
        let turn = self.turn.lock().await;
        loop {
            // Ours was answered by a batch another caller ran: leave the rest to their own
            // callers, each of which waits for the turn behind us.
            match rx.try_recv() {
                Ok(answer) => return Some(answer),
                Err(oneshot::error::TryRecvError::Closed) => return None,
                Err(oneshot::error::TryRecvError::Empty) => {}
            }
            self.settle().await;
            // A request whose caller gave up is not run for nobody.
            let queued: Vec<_> = std::mem::take(&mut *self.lock())
                .into_iter()
                .filter(|q| !q.answer.is_closed())
                .collect();
            if queued.is_empty() {
                // Not answered yet, not queued: cannot happen while we hold the turn (ours
                // is answered or queued); give the turn on rather than spin.
                break;
            }
            let (requests, rest): (Vec<_>, Vec<_>) = queued
                .into_iter()
                .map(|q| (q.request, (q.patient, q.answer)))
                .unzip();
            let outcomes = run(requests).await;
            let mut later = Vec::new();
            for (outcome, (patient, tx)) in outcomes.into_iter().zip(rest) {
                match outcome {
                    Outcome::Done(answer) => {
                        let _ = tx.send(answer);
                    }
                    Outcome::Later(request) => later.push(Queued {
                        request,
                        patient,
                        answer: tx,
                    }),
                }
            }
            // Handed back ahead of what queued meanwhile: they are older.
            {
                let mut queue = self.lock();
                later.append(&mut queue);
                *queue = later;
            }
        }
        drop(turn);
        rx.await.ok()
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
}
