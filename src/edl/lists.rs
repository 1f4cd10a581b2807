//! `Lists`: the registry of served lists, shared by the controller (writer) and the listener.
//!
//! Expiry is applied lazily: a read that finds the nearest expiry passed cuts the expired lines
//! under the list's write lock and re-checks first, so one expiry point costs exactly one
//! rebuild however many requests race for it. Chosen over a background timer because it needs
//! no task per list (or a timer wheel) with its own lifecycle, cannot fall behind a scheduler,
//! wakes nothing for lists no one polls, and is exact: the first answer after the expiry time
//! omits the entry. The cost (a cut, not a re-sort) lands on that one request.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use bytes::Bytes;
use jiff::{SignedDuration, Timestamp};

use super::auth::{BasicCredentials, CredentialDigest};
use super::body::{Body, RejectedEntry};
use super::metrics::EdlMetrics;

/// One entry of a list: an address, range or subnet as the FortiGate reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// One line of the feed, e.g. `192.0.2.7` or `198.51.100.0/24`.
    pub text: String,
    /// When it leaves the feed; none = stays until removed.
    pub expires_at: Option<Timestamp>,
}

/// What one list serves and who may read it.
#[derive(Debug, Clone, Default)]
pub struct ListSpec {
    /// The entries, in any order, duplicates allowed.
    pub entries: Vec<Entry>,
    /// Required credentials; none = anyone who reaches the port may read the list.
    pub credentials: Option<BasicCredentials>,
}

/// A list as served right now (for tests and status).
#[derive(Debug, Clone)]
pub struct ListSnapshot {
    /// The exact body.
    pub body: Bytes,
    /// Its ETag, quoted.
    pub etag: String,
    /// Entries in the body.
    pub entries: usize,
    /// When the next entry leaves.
    pub next_expiry: Option<Timestamp>,
    /// Bodies built for this list since it was first set.
    pub builds: u64,
    /// Bytes kept for the body and its expiry index.
    pub retained_bytes: usize,
}

/// The time source: the wall clock, or one that follows tokio's (pausable) clock in tests.
#[derive(Clone)]
pub struct Clock(Arc<dyn Fn() -> Timestamp + Send + Sync>);

impl Clock {
    /// The system clock.
    pub fn system() -> Self {
        Self(Arc::new(Timestamp::now))
    }

    /// `base` plus the tokio time elapsed since this call; `tokio::time::pause` freezes it and
    /// `advance` moves it. Must be called inside a runtime.
    pub fn tokio_from(base: Timestamp) -> Self {
        let start = tokio::time::Instant::now();
        Self(Arc::new(move || {
            let elapsed = SignedDuration::try_from(start.elapsed()).unwrap_or(SignedDuration::MAX);
            base.saturating_add(elapsed).unwrap_or(base)
        }))
    }

    /// Now.
    pub fn now(&self) -> Timestamp {
        (self.0)()
    }
}

pub(crate) struct Served {
    pub(crate) body: Body,
    builds: u64,
}

pub(crate) struct ListState {
    pub(crate) credentials: Option<CredentialDigest>,
    served: RwLock<Arc<Served>>,
}

struct Inner {
    lists: RwLock<HashMap<(String, String), Arc<ListState>>>,
    metrics: EdlMetrics,
    clock: Clock,
}

/// The registry of lists; clones share it.
#[derive(Clone)]
pub struct Lists(Arc<Inner>);

impl Lists {
    /// An empty registry on the system clock.
    pub fn new(metrics: EdlMetrics) -> Self {
        Self::with_clock(metrics, Clock::system())
    }

    /// An empty registry on `clock`.
    pub fn with_clock(metrics: EdlMetrics, clock: Clock) -> Self {
        Self(Arc::new(Inner {
            lists: RwLock::default(),
            metrics,
            clock,
        }))
    }

    pub(crate) fn metrics(&self) -> &EdlMetrics {
        &self.0.metrics
    }

    /// Serves `spec` as `namespace/name`, replacing what was there. Builds the body once, now.
    /// Returns the entries left out (never served) and why.
    pub fn set(&self, namespace: &str, name: &str, spec: ListSpec) -> Vec<RejectedEntry> {
        let (body, rejected) = Body::build(&spec.entries, self.0.clock.now());
        drop(spec.entries);
        let credentials = spec.credentials.as_ref().map(CredentialDigest::of);
        let metrics = &self.0.metrics;
        metrics.builds.inc();
        let key = (namespace.to_string(), name.to_string());
        let mut lists = self.0.lists.write().unwrap_or_else(|e| e.into_inner());
        let previous = lists.get(&key).map(|old| old.current());
        let builds = previous.as_ref().map_or(0, |p| p.builds) + 1;
        metrics
            .entries
            .inc_by(gauge(body.entries) - previous.as_ref().map_or(0, |p| gauge(p.body.entries)));
        if previous.is_none() {
            metrics.lists.inc();
        }
        let state = ListState {
            credentials,
            served: RwLock::new(Arc::new(Served { body, builds })),
        };
        lists.insert(key, Arc::new(state));
        rejected
    }

    /// Stops serving `namespace/name`; its URL then answers like any unknown list.
    pub fn remove(&self, namespace: &str, name: &str) {
        let mut lists = self.0.lists.write().unwrap_or_else(|e| e.into_inner());
        if let Some(old) = lists.remove(&(namespace.to_string(), name.to_string())) {
            self.0.metrics.lists.dec();
            self.0
                .metrics
                .entries
                .dec_by(gauge(old.current().body.entries));
        }
    }

    /// The list as it would be served now (expired entries already gone).
    pub fn snapshot(&self, namespace: &str, name: &str) -> Option<ListSnapshot> {
        let (_, served) = self.lookup(namespace, name)?;
        Some(ListSnapshot {
            body: served.body.bytes.clone(),
            etag: served.body.etag.clone(),
            entries: served.body.entries,
            next_expiry: served
                .body
                .next_expiry()
                .and_then(|n| Timestamp::from_nanosecond(n.into()).ok()),
            builds: served.builds,
            retained_bytes: served.body.retained_bytes(),
        })
    }

    /// The list's state and its current body, cutting expired entries first if due.
    pub(crate) fn lookup(
        &self,
        namespace: &str,
        name: &str,
    ) -> Option<(Arc<ListState>, Arc<Served>)> {
        let state = {
            let lists = self.0.lists.read().unwrap_or_else(|e| e.into_inner());
            // Borrowed lookup without allocating a key per request would need a custom Borrow;
            // two small Strings per poll are negligible next to the response.
            lists
                .get(&(namespace.to_string(), name.to_string()))?
                .clone()
        };
        let served = state.current();
        let now = self.0.clock.now();
        if !served.body.is_stale(now) {
            return Some((state, served));
        }
        let mut slot = state.served.write().unwrap_or_else(|e| e.into_inner());
        // Another request may have cut it while this one waited for the lock.
        if slot.body.is_stale(now) {
            let body = slot.body.without_expired(now);
            self.0.metrics.builds.inc();
            self.0
                .metrics
                .entries
                .dec_by(gauge(slot.body.entries - body.entries));
            *slot = Arc::new(Served {
                body,
                builds: slot.builds + 1,
            });
        }
        let served = slot.clone();
        drop(slot);
        Some((state, served))
    }
}

impl ListState {
    fn current(&self) -> Arc<Served> {
        self.served
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

fn gauge(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}
