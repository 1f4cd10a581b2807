//! Wiring: one kube-runtime Controller per kind, re-triggered by the connection resources and
//! Secrets they depend on, run only by the Lease holder.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use futures::StreamExt;
use k8s_openapi::api::core::v1::Secret;
use kube::runtime::controller::{self, Controller};
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::utils::Predicate;
use kube::runtime::{WatchStreamExt, predicates, watcher};
use kube::{Api, Client, ResourceExt};

use crate::api::addressgroup::{AddressGroup, TargetKind};
use crate::api::{FortiGate, FortiManager};

use super::addressgroup;
use super::connection_status::{self, ConnectionResource};
use super::context::Context;
use crate::api::common::ConnectionSpec;

/// Which namespaces the controller serves.
#[derive(Debug, Clone)]
pub enum Scope {
    /// Every namespace.
    Cluster,
    /// One namespace.
    Namespace(String),
}

fn api<K>(client: &Client, scope: &Scope) -> Api<K>
where
    K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>
        + Clone
        + serde::de::DeserializeOwned
        + std::fmt::Debug,
{
    match scope {
        Scope::Cluster => Api::all(client.clone()),
        Scope::Namespace(ns) => Api::namespaced(client.clone(), ns),
    }
}

/// AddressGroup reconciles in flight at most. Each one holds the device's listing of the
/// address objects under its prefix (every group's, with the default prefix), so unbounded
/// concurrency made a burst of N new groups hold N such listings at once: RSS grew with the
/// square of the group count (853 MiB with 1,000 groups). Device requests are bounded per
/// device by the Guard anyway, so more reconciles in flight only queue there.
const MAX_CONCURRENT_RECONCILES: u16 = 8;

/// Runs the AddressGroup controller until the stream ends (shutdown signal).
pub async fn run_addressgroups(ctx: Arc<Context>, scope: Scope) {
    let client = ctx.client.clone();
    let groups = api::<AddressGroup>(&client, &scope);
    // Status patches must not trigger reconciles (each reconcile writes status): only spec
    // (generation), finalizer and annotation (pause) changes do; resyncs come from requeues.
    let (store, writer) = reflector::store();
    let changes = watcher(groups, watcher::Config::default().any_semantic())
        .default_backoff()
        // managedFields are never read here and are most of a cached object's size (status is
        // written by server-side apply); dropping them keeps 1,000 cached groups small.
        .modify(|g| g.managed_fields_mut().clear())
        .reflect(writer)
        .applied_objects()
        .predicate_filter(
            predicates::generation
                .combine(predicates::finalizers)
                .combine(predicates::annotations),
            Default::default(),
        );
    let controller = Controller::for_stream(changes, store.clone())
        .with_config(controller::Config::default().concurrency(MAX_CONCURRENT_RECONCILES));
    let by_gate = store.clone();
    let by_manager = store.clone();
    let by_secret = store.clone();
    let connections_fg = api::<FortiGate>(&client, &scope);
    let connections_fmg = api::<FortiManager>(&client, &scope);
    // Which Secrets each connection reads, learned from the connection watches, so a rotated
    // key re-triggers only the AddressGroups behind the connections that use it.
    let secret_users = Arc::new(SecretUsers::default());
    let (users_fg, users_fmg) = (secret_users.clone(), secret_users.clone());

    controller
        .watches(
            connections_fg,
            watcher::Config::default(),
            move |fg: FortiGate| {
                let ns = fg.namespace().unwrap_or_default();
                users_fg.learn(
                    &ns,
                    TargetKind::FortiGate,
                    &fg.name_any(),
                    &fg.spec.connection,
                );
                dependents(&by_gate, TargetKind::FortiGate, &ns, &fg.name_any())
            },
        )
        .watches(
            connections_fmg,
            watcher::Config::default(),
            move |fmg: FortiManager| {
                let ns = fmg.namespace().unwrap_or_default();
                users_fmg.learn(
                    &ns,
                    TargetKind::FortiManager,
                    &fmg.name_any(),
                    &fmg.spec.connection,
                );
                dependents(&by_manager, TargetKind::FortiManager, &ns, &fmg.name_any())
            },
        )
        .watches(
            api::<Secret>(&client, &scope),
            watcher::Config::default(),
            move |secret: Secret| {
                let ns = secret.namespace().unwrap_or_default();
                secret_users
                    .connections(&ns, &secret.name_any())
                    .into_iter()
                    .flat_map(|(kind, name)| dependents(&by_secret, kind, &ns, &name))
                    .collect::<Vec<_>>()
            },
        )
        .shutdown_on_signal()
        .run(addressgroup::reconcile, addressgroup::error_policy, ctx)
        .for_each(|outcome| async move {
            if let Err(e) = outcome {
                tracing::debug!(error = %e, "reconcile outcome");
            }
        })
        .await;
}

/// A connection: its kind and name.
type ConnectionKey = (TargetKind, String);

/// Connections by the Secrets they read: (namespace, secret) → connections.
#[derive(Default)]
struct SecretUsers(std::sync::Mutex<HashMap<(String, String), BTreeSet<ConnectionKey>>>);

impl SecretUsers {
    fn learn(&self, namespace: &str, kind: TargetKind, name: &str, connection: &ConnectionSpec) {
        let mut map = self.0.lock().unwrap_or_else(|p| p.into_inner());
        // Forget what this connection read before: its Secret references may have changed.
        for users in map.values_mut() {
            users.remove(&(kind, name.to_string()));
        }
        let mut secrets = vec![connection.credentials_secret_ref.name.clone()];
        secrets.extend(
            connection
                .tls
                .ca_bundle_secret_ref
                .iter()
                .map(|r| r.name.clone()),
        );
        for secret in secrets {
            map.entry((namespace.to_string(), secret))
                .or_default()
                .insert((kind, name.to_string()));
        }
    }

    fn connections(&self, namespace: &str, secret: &str) -> Vec<ConnectionKey> {
        let map = self.0.lock().unwrap_or_else(|p| p.into_inner());
        map.get(&(namespace.to_string(), secret.to_string()))
            .map(|users| users.iter().cloned().collect())
            .unwrap_or_default()
    }
}

/// AddressGroups in `namespace` whose targetRef names this connection.
fn dependents(
    store: &Store<AddressGroup>,
    kind: TargetKind,
    namespace: &str,
    name: &str,
) -> Vec<ObjectRef<AddressGroup>> {
    store
        .state()
        .iter()
        .filter(|g| {
            g.namespace().as_deref() == Some(namespace)
                && g.spec.target_ref.kind == kind
                && g.spec.target_ref.name == name
        })
        .map(|g| ObjectRef::from_obj(g.as_ref()))
        .collect()
}

/// Runs the status controller of one connection kind until shutdown.
pub async fn run_connections<K: ConnectionResource>(ctx: Arc<Context>, scope: Scope) {
    let client = ctx.client.clone();
    let (store, writer) = reflector::store();
    let changes = watcher(
        api::<K>(&client, &scope),
        watcher::Config::default().any_semantic(),
    )
    .default_backoff()
    .modify(|c| c.managed_fields_mut().clear())
    .reflect(writer)
    .applied_objects()
    .predicate_filter(predicates::generation, Default::default());
    let by_secret = store.clone();
    Controller::for_stream(changes, store)
        .reconcile_on(rechecks::<K>(&ctx))
        .watches(
            api::<Secret>(&client, &scope),
            watcher::Config::default(),
            move |secret: Secret| {
                let ns = secret.namespace().unwrap_or_default();
                let name = secret.name_any();
                by_secret
                    .state()
                    .iter()
                    .filter(|c| {
                        c.namespace().as_deref() == Some(ns.as_str())
                            && uses_secret(c.connection(), &name)
                    })
                    .map(|c| ObjectRef::from_obj(c.as_ref()))
                    .collect::<Vec<_>>()
            },
        )
        .shutdown_on_signal()
        .run(
            connection_status::reconcile::<K>,
            connection_status::error_policy::<K>,
            ctx,
        )
        .for_each(|outcome| async move {
            if let Err(e) = outcome {
                tracing::debug!(error = %e, "reconcile outcome");
            }
        })
        .await;
}

/// Connections of kind `K` another controller asked to look at again.
fn rechecks<K: ConnectionResource>(
    ctx: &Context,
) -> impl futures::Stream<Item = ObjectRef<K>> + Send + 'static {
    use tokio::sync::broadcast::error::RecvError;
    futures::stream::unfold(ctx.connection_rechecks(), |mut rx| async move {
        loop {
            match rx.recv().await {
                Ok(c) => return Some((c, rx)),
                // Missed some: the ones still coming are enough, resyncs catch the rest.
                Err(RecvError::Lagged(_)) => continue,
                Err(RecvError::Closed) => return None,
            }
        }
    })
    .filter_map(|(kind, namespace, name)| async move {
        (kind == K::KIND).then(|| ObjectRef::new(&name).within(&namespace))
    })
}

fn uses_secret(connection: &ConnectionSpec, secret: &str) -> bool {
    connection.credentials_secret_ref.name == secret
        || connection
            .tls
            .ca_bundle_secret_ref
            .as_ref()
            .is_some_and(|r| r.name == secret)
}

/// Runs every controller until shutdown.
pub async fn run(ctx: Arc<Context>, scope: Scope) {
    futures::join!(
        run_addressgroups(ctx.clone(), scope.clone()),
        run_connections::<FortiGate>(ctx.clone(), scope.clone()),
        run_connections::<FortiManager>(ctx, scope),
    );
}
