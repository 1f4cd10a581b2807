//! The first pass of a new resource, so the echo of its own finalizer patch does not run it
//! twice, and a pass re-triggered meanwhile does not act on a cache older than its status.
//!
//! A new resource's first pass adds the finalizer and goes on in the same pass: the device is
//! written one apiserver round trip and one watch hop sooner. The watch then delivers that
//! patch, and finalizer changes re-trigger the resource (so a finalizer someone removed is put
//! back): exactly one echo. Run, it would meet the object as the first pass left it, its
//! status perhaps not cached yet, and report the transition again (a second event, a second
//! ExternalConnector push). So the first pass is remembered, and the next pass over the same
//! spec, finalizers and annotations returns its Action instead (whether or not the cache holds
//! the status it wrote: only this controller writes status). Anything else that re-triggers
//! the resource meanwhile (its connection, a Secret or another object it reads, a policy, the
//! leadership) marks it: that pass runs, reading the object afresh if the cache still holds
//! the version the first pass started from.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::runtime::controller::Action;

/// More entries than this means passes stopped coming (each entry lives until the next pass
/// of its resource): start over rather than grow. Forgetting only costs a redundant pass.
const MOST: usize = 16_384;

type Key = (&'static str, String, String);

/// What the next pass of a resource does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Next {
    /// Reconcile the object as the cache has it.
    Run,
    /// The echo of a pass already run: return its Action.
    Echo(Action),
    /// Re-triggered by something else while the cache may be older than the status the first
    /// pass wrote: read the object from the API server, then reconcile.
    Reread,
}

#[derive(Debug)]
struct Pass {
    uid: Option<String>,
    /// The object as the pass ran over it and its Action; None while it runs.
    ran: Option<(Shape, Action)>,
    retriggered: bool,
}

/// What of an object re-triggers a pass: its own changes other than status.
#[derive(Debug, PartialEq)]
struct Shape {
    version: Option<String>,
    generation: Option<i64>,
    deleting: bool,
    finalizers: Vec<String>,
    annotations: BTreeMap<String, String>,
}

impl Shape {
    fn of(meta: &ObjectMeta) -> Self {
        Self {
            version: meta.resource_version.clone(),
            generation: meta.generation,
            deleting: meta.deletion_timestamp.is_some(),
            finalizers: meta.finalizers.clone().unwrap_or_default(),
            annotations: meta.annotations.clone().unwrap_or_default(),
        }
    }

    /// The same but for status (which only this controller writes).
    fn same_but_status(&self, other: &Self) -> bool {
        self.generation == other.generation
            && !self.deleting
            && !other.deleting
            && self.finalizers == other.finalizers
            && self.annotations == other.annotations
    }
}

/// First passes of new resources, by kind, namespace and name.
#[derive(Debug, Default)]
pub struct Handled {
    passes: Mutex<HashMap<Key, Pass>>,
}

fn key(kind: &'static str, namespace: &str, name: &str) -> Key {
    (kind, namespace.to_string(), name.to_string())
}

fn key_of(kind: &'static str, meta: &ObjectMeta) -> Key {
    key(
        kind,
        meta.namespace.as_deref().unwrap_or_default(),
        meta.name.as_deref().unwrap_or_default(),
    )
}

impl Handled {
    /// The first pass over the object `meta` describes starts (before its finalizer patch, so
    /// a trigger arriving while it runs is not lost).
    pub fn begin(&self, kind: &'static str, meta: &ObjectMeta) {
        let mut passes = self.passes.lock().expect("handled passes");
        if passes.len() >= MOST {
            passes.clear();
        }
        passes.insert(
            key_of(kind, meta),
            Pass {
                uid: meta.uid.clone(),
                ran: None,
                retriggered: false,
            },
        );
    }

    /// That pass ran over the object `meta` describes (with its finalizer) and ended with
    /// `action`. Without its entry (forgotten to stay bounded) nothing is remembered.
    pub fn ran(&self, kind: &'static str, meta: &ObjectMeta, action: Action) {
        let mut passes = self.passes.lock().expect("handled passes");
        if let Some(pass) = passes.get_mut(&key_of(kind, meta))
            && pass.uid == meta.uid
        {
            pass.ran = Some((Shape::of(meta), action));
        }
    }

    /// What the pass over the object `meta` describes does. The entry is gone after it: one
    /// echo per first pass.
    pub fn next(&self, kind: &'static str, meta: &ObjectMeta) -> Next {
        let Some(pass) = self
            .passes
            .lock()
            .expect("handled passes")
            .remove(&key_of(kind, meta))
        else {
            return Next::Run;
        };
        let Some((shape, action)) = pass.ran.filter(|_| pass.uid == meta.uid) else {
            return Next::Run;
        };
        let now = Shape::of(meta);
        match pass.retriggered {
            true if now.version.is_some() && now.version == shape.version => Next::Reread,
            true => Next::Run,
            false if now.same_but_status(&shape) => Next::Echo(action),
            false => Next::Run,
        }
    }

    /// Something other than the object itself re-triggers it: its next pass must run.
    pub fn retrigger(&self, kind: &'static str, namespace: &str, name: &str) {
        if let Some(pass) = self
            .passes
            .lock()
            .expect("handled passes")
            .get_mut(&key(kind, namespace, name))
        {
            pass.retriggered = true;
        }
    }

    /// Something re-triggers every object (leadership, policies).
    pub fn retrigger_all(&self) {
        for pass in self.passes.lock().expect("handled passes").values_mut() {
            pass.retriggered = true;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    const AG: &str = "AddressGroup";

    fn meta(uid: &str, rv: &str) -> ObjectMeta {
        ObjectMeta {
            name: Some("web".into()),
            namespace: Some("team-a".into()),
            uid: Some(uid.into()),
            resource_version: Some(rv.into()),
            generation: Some(1),
            finalizers: Some(vec!["fortisync.dev/cleanup".into()]),
            ..ObjectMeta::default()
        }
    }

    fn resync() -> Action {
        Action::requeue(Duration::from_secs(600))
    }

    fn first_pass(handled: &Handled, ran_over: &ObjectMeta) {
        let before = ObjectMeta {
            finalizers: None,
            ..ran_over.clone()
        };
        handled.begin(AG, &before);
        handled.ran(AG, ran_over, resync());
    }

    #[test]
    fn the_echo_of_a_first_pass_returns_its_action_once() {
        let handled = Handled::default();
        first_pass(&handled, &meta("u1", "7"));
        assert_eq!(handled.next(AG, &meta("u1", "7")), Next::Echo(resync()));
        // A resync of the same version later is a real pass.
        assert_eq!(handled.next(AG, &meta("u1", "7")), Next::Run);
    }

    #[test]
    fn the_echo_meeting_the_status_the_pass_wrote_is_still_an_echo() {
        let handled = Handled::default();
        first_pass(&handled, &meta("u1", "7"));
        assert_eq!(handled.next(AG, &meta("u1", "8")), Next::Echo(resync()));
    }

    #[test]
    fn a_changed_spec_annotation_or_deletion_or_a_recreated_object_is_no_echo() {
        let handled = Handled::default();
        let changes = [
            ObjectMeta {
                generation: Some(2),
                ..meta("u1", "8")
            },
            ObjectMeta {
                annotations: Some([("fortisync.dev/paused".into(), "true".into())].into()),
                ..meta("u1", "8")
            },
            ObjectMeta {
                deletion_timestamp: Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
                    Default::default(),
                )),
                ..meta("u1", "8")
            },
            ObjectMeta {
                finalizers: None,
                ..meta("u1", "8")
            },
            meta("u2", "7"),
        ];
        for changed in changes {
            first_pass(&handled, &meta("u1", "7"));
            assert_eq!(handled.next(AG, &changed), Next::Run, "{changed:?}");
        }
        // Another kind with the same name is another object.
        first_pass(&handled, &meta("u1", "7"));
        assert_eq!(handled.next("TrustedHost", &meta("u1", "7")), Next::Run);
    }

    #[test]
    fn another_trigger_runs_the_next_pass_over_a_fresh_read_if_the_cache_is_behind() {
        let handled = Handled::default();
        first_pass(&handled, &meta("u1", "7"));
        handled.retrigger(AG, "team-a", "web");
        assert_eq!(handled.next(AG, &meta("u1", "7")), Next::Reread);
        first_pass(&handled, &meta("u1", "7"));
        handled.retrigger(AG, "team-a", "web");
        assert_eq!(handled.next(AG, &meta("u1", "8")), Next::Run);
        first_pass(&handled, &meta("u1", "7"));
        handled.retrigger_all();
        assert_eq!(handled.next(AG, &meta("u1", "7")), Next::Reread);
    }

    #[test]
    fn a_trigger_arriving_while_the_first_pass_runs_is_kept() {
        let handled = Handled::default();
        handled.begin(AG, &meta("u1", "6"));
        handled.retrigger(AG, "team-a", "web");
        handled.ran(AG, &meta("u1", "7"), resync());
        assert_eq!(handled.next(AG, &meta("u1", "7")), Next::Reread);
    }

    #[test]
    fn a_pass_never_begun_or_still_running_is_run() {
        let handled = Handled::default();
        handled.ran(AG, &meta("u1", "7"), resync());
        assert_eq!(handled.next(AG, &meta("u1", "7")), Next::Run);
        handled.begin(AG, &meta("u1", "7"));
        assert_eq!(handled.next(AG, &meta("u1", "7")), Next::Run);
    }
}
