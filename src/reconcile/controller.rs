//! Wiring: one kube-runtime Controller per kind over shared watches of the connections and of
//! Secret metadata. Every replica runs the watches (warm caches, ready to take over, and the
//! EDL served from them); only the Lease holder reconciles (`lifecycle` gates on it), and
//! winning the Lease re-triggers every resource.

use std::sync::Arc;

use futures::future::BoxFuture;
use futures::{FutureExt, Stream, StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use kube::api::PartialObjectMeta;
use kube::core::DeserializeGuard;
use kube::runtime::controller::{self, Action, Controller};
use kube::runtime::events::EventType;
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::utils::Predicate;
use kube::runtime::watcher;
use kube::runtime::{WatchStreamExt, predicates};
use kube::{Api, Client, Resource, ResourceExt};

use super::connection::dependents::{self, SecretUsers};
use super::connection::status::ConnectionResource;
use super::context::Context;
use super::error::ReconcileError;
use super::handled::Handled;
use super::lifecycle::{self, Reconciler, Reference};
use crate::api::{
    AddressGroup, DevicePolicy, ExternalConnector, FortiGate, FortiManager, TrustedHost,
};

/// Which namespaces the controller serves.
#[derive(Debug, Clone)]
pub enum Scope {
    /// Every namespace.
    Cluster,
    /// These namespaces only (each gets its own watches; RBAC can then be namespaced Roles).
    Namespaces(Vec<String>),
}

impl Scope {
    /// One namespace.
    pub fn namespace(namespace: impl Into<String>) -> Self {
        Self::Namespaces(vec![namespace.into()])
    }
}

/// Reconciles in flight at most, per kind and namespace scope. High on purpose: a reconcile
/// mostly waits for its device's batch (`reconcile::batch`), which can only observe together
/// what is in flight together, so a low cap would split one device's resync tick into many
/// observations, and a slow or locked-out device would hold slots others need. Device
/// requests are bounded per device by the Guard, apiserver writes by `status::WRITES`.
const MAX_CONCURRENT_RECONCILES: u16 = 1024;

/// Watch retries while the API server is away: quick, and capped low, so reconciles resume
/// within seconds of it answering again (kube's default grows to 30 s). Any success resets it.
fn watch_backoff() -> watcher::ExponentialBackoff {
    backon::ExponentialBuilder::default()
        .with_min_delay(std::time::Duration::from_millis(250))
        .with_max_delay(std::time::Duration::from_secs(2))
        .with_factor(2.0)
        .with_jitter()
        .without_max_times()
        .into()
}

fn apis<K>(client: &Client, scope: &Scope) -> Vec<Api<K>>
where
    K: Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>
        + Clone
        + serde::de::DeserializeOwned
        + std::fmt::Debug,
{
    match scope {
        Scope::Cluster => vec![Api::all(client.clone())],
        Scope::Namespaces(list) => list
            .iter()
            .map(|ns| Api::namespaced(client.clone(), ns))
            .collect(),
    }
}

/// A watch error is logged at warn with what to do about it; the watch retries by itself.
fn log_watch_error(kind: &'static str, error: &watcher::Error) {
    let hint = match error {
        watcher::Error::InitialListFailed(kube::Error::Api(s))
        | watcher::Error::WatchStartFailed(kube::Error::Api(s))
        | watcher::Error::WatchFailed(kube::Error::Api(s))
            if s.code == 404 =>
        {
            "the CRD is not installed: run `fortisync crds | kubectl apply -f -` (or install the chart)"
        }
        watcher::Error::InitialListFailed(kube::Error::Api(s))
        | watcher::Error::WatchStartFailed(kube::Error::Api(s))
        | watcher::Error::WatchFailed(kube::Error::Api(s))
            if s.code == 403 =>
        {
            "the controller's RBAC does not allow list/watch here: check the chart's Role/ClusterRole"
        }
        _ => "retrying",
    };
    tracing::warn!(kind, error = %error, hint, "watch failed");
}

/// One watched kind's events, reflected into a shared store, from every API of the scope.
/// Each API has its own reflector (an initial list of one namespace must not clear another's
/// objects), so a scope of several namespaces yields one store per namespace.
struct Shared<K: Resource<DynamicType = ()> + Clone + 'static> {
    stores: Vec<Store<K>>,
    writers: Vec<reflector::store::Writer<K>>,
}

impl<K> Shared<K>
where
    K: Resource<DynamicType = ()> + Clone + std::fmt::Debug + Send + Sync + 'static,
{
    fn new(apis: usize) -> Self {
        let (stores, writers) = (0..apis).map(|_| reflector::store_shared(1024)).unzip();
        Self { stores, writers }
    }

    /// Every namespace's events, as one stream.
    fn subscribe(&self) -> impl Stream<Item = Arc<K>> + Send + 'static {
        futures::stream::select_all(self.subscribe_each())
    }

    /// Each namespace's events, one stream per store.
    fn subscribe_each(&self) -> Vec<futures::stream::BoxStream<'static, Arc<K>>> {
        self.writers
            .iter()
            .map(|w| w.subscribe().expect("a shared store").boxed())
            .collect()
    }
}

/// Reads one API into its writer, until shutdown. `keep_annotations: false` drops them from
/// the cache too (a Secret applied client-side carries its whole content in the
/// last-applied-configuration annotation, even in a metadata-only watch).
fn reflect<K>(
    kind: &'static str,
    api: Api<K>,
    writer: reflector::store::Writer<K>,
    keep_annotations: bool,
) -> BoxFuture<'static, ()>
where
    K: Resource<DynamicType = ()>
        + Clone
        + serde::de::DeserializeOwned
        + std::fmt::Debug
        + Send
        + Sync
        + 'static,
{
    watcher(api, watcher::Config::default().any_semantic())
        .backoff(watch_backoff())
        // managedFields are never read here and are most of a cached object's size.
        .modify(move |o| {
            o.managed_fields_mut().clear();
            if !keep_annotations {
                o.annotations_mut().clear();
            }
        })
        .reflect_shared(writer)
        .for_each(move |event| async move {
            if let Err(e) = event {
                log_watch_error(kind, &e);
            }
        })
        .boxed()
}

/// Only objects whose spec (generation), deletion or finalizers changed, so a status update
/// of a connection (breaker, timestamps, counters) re-triggers none of its dependents.
fn generation_changes<K: Resource + Send + Sync + 'static>(
    stream: impl Stream<Item = Arc<K>> + Send + 'static,
) -> impl Stream<Item = Arc<K>> + Send + 'static {
    changes_of(stream, true)
}

/// Only connections whose spec (generation) or deletion changed: what their dependents act
/// on. Not their finalizers: the status controller adding its own to a new connection would
/// re-run every resource behind it, on a fresh install one extra pass each.
fn spec_changes<K: Resource + Send + Sync + 'static>(
    stream: impl Stream<Item = Arc<K>> + Send + 'static,
) -> impl Stream<Item = Arc<K>> + Send + 'static {
    changes_of(stream, false)
}

fn changes_of<K: Resource + Send + Sync + 'static>(
    stream: impl Stream<Item = Arc<K>> + Send + 'static,
    finalizers: bool,
) -> impl Stream<Item = Arc<K>> + Send + 'static {
    type Seen = (Option<i64>, bool, usize);
    let mut seen = std::collections::HashMap::<String, Seen>::new();
    stream.filter(move |o| {
        let meta = o.meta();
        let uid = meta.uid.clone().unwrap_or_default();
        let now: Seen = (
            meta.generation,
            meta.deletion_timestamp.is_some(),
            if finalizers {
                meta.finalizers.as_ref().map_or(0, Vec::len)
            } else {
                0
            },
        );
        let changed = seen.insert(uid, now) != Some(now);
        futures::future::ready(changed)
    })
}

/// Everything every kind's controller shares: the connection and Secret watches.
struct Inputs {
    fortigates: Shared<DeserializeGuard<FortiGate>>,
    fortimanagers: Shared<DeserializeGuard<FortiManager>>,
    secrets: Shared<PartialObjectMeta<Secret>>,
    config_maps: Shared<PartialObjectMeta<ConfigMap>>,
    address_groups: Shared<PartialObjectMeta<AddressGroup>>,
    secret_users: Arc<SecretUsers>,
}

/// Runs every controller until shutdown.
pub async fn run(ctx: Arc<Context>, scope: Scope) {
    run_reporting_readiness(ctx, scope, tokio::sync::watch::channel(false).0).await
}

/// Runs every controller until shutdown; `ready` turns true once every watch has listed its
/// resources once (readiness: a replica with cold caches must not take traffic or the Lease).
pub async fn run_reporting_readiness(
    ctx: Arc<Context>,
    scope: Scope,
    ready: tokio::sync::watch::Sender<bool>,
) {
    let client = ctx.client.clone();
    let n = apis::<FortiGate>(&client, &scope).len();
    let inputs = Inputs {
        fortigates: Shared::new(n),
        fortimanagers: Shared::new(n),
        secrets: Shared::new(n),
        config_maps: Shared::new(n),
        address_groups: Shared::new(n),
        secret_users: Arc::new(SecretUsers::default()),
    };
    ctx.use_caches(crate::reconcile::connection::cache::Caches::new(
        client.clone(),
        inputs.fortigates.stores.clone(),
        inputs.fortimanagers.stores.clone(),
        inputs.secrets.stores.clone(),
    ));
    let mut tasks: Vec<BoxFuture<'static, ()>> = Vec::new();
    let mut stores_ready: Vec<BoxFuture<'static, ()>> = Vec::new();
    // DevicePolicies are cluster-scoped: one watch whatever the scope; nothing reaches a
    // device before they are listed.
    ctx.await_policies();
    let (policies, policies_writer) = reflector::store::<DevicePolicy>();
    stores_ready.push(listed(policies.clone()));
    tasks.push({
        let ctx = ctx.clone();
        let store = policies.clone();
        watcher(
            Api::<DevicePolicy>::all(client.clone()),
            watcher::Config::default(),
        )
        .backoff(watch_backoff())
        .reflect(policies_writer)
        .for_each(move |event| {
            match event {
                Err(e) => log_watch_error("DevicePolicy", &e),
                Ok(watcher::Event::InitApply(_) | watcher::Event::Init) => {}
                Ok(_) => ctx.set_policies(
                    store
                        .state()
                        .iter()
                        .map(|p| (p.name_any(), p.spec.clone()))
                        .collect(),
                ),
            }
            futures::future::ready(())
        })
        .boxed()
    });
    stores_ready.extend(inputs.fortigates.stores.iter().cloned().map(listed));
    stores_ready.extend(inputs.fortimanagers.stores.iter().cloned().map(listed));
    stores_ready.extend(inputs.secrets.stores.iter().cloned().map(listed));
    stores_ready.extend(inputs.config_maps.stores.iter().cloned().map(listed));
    stores_ready.extend(inputs.address_groups.stores.iter().cloned().map(listed));

    // The controllers end on SIGTERM/SIGINT once their in-flight reconciles are done; the
    // watches feeding them never end by themselves and are dropped then.
    let mut controllers: Vec<BoxFuture<'static, ()>> = Vec::new();
    let (groups, groups_ready) = kind_controller::<AddressGroup>(&ctx, &scope, &inputs);
    controllers.push(groups);
    stores_ready.extend(groups_ready);
    let (connectors, connectors_ready) =
        kind_controller::<ExternalConnector>(&ctx, &scope, &inputs);
    controllers.push(connectors);
    stores_ready.extend(connectors_ready);
    let (trusted_hosts, trusted_hosts_ready) =
        kind_controller::<TrustedHost>(&ctx, &scope, &inputs);
    controllers.push(trusted_hosts);
    stores_ready.extend(trusted_hosts_ready);
    controllers.push(connection_controller::<FortiGate>(
        &ctx,
        &inputs,
        inputs.fortigates.subscribe_each(),
        inputs.fortigates.stores.clone(),
    ));
    controllers.push(connection_controller::<FortiManager>(
        &ctx,
        &inputs,
        inputs.fortimanagers.subscribe_each(),
        inputs.fortimanagers.stores.clone(),
    ));
    // Learn which Secrets each connection reads, from the connection watches.
    let users = inputs.secret_users.clone();
    tasks.push(
        futures::stream::select(
            inputs
                .fortigates
                .subscribe()
                .filter_map(|g| async move { learned::<FortiGate>(&g) })
                .boxed(),
            inputs
                .fortimanagers
                .subscribe()
                .filter_map(|g| async move { learned::<FortiManager>(&g) })
                .boxed(),
        )
        .for_each(move |(ns, kind, name, spec)| {
            users.learn(&ns, kind, &name, &spec);
            futures::future::ready(())
        })
        .boxed(),
    );
    // Every subscription is taken: now the shared watches may start.
    let Inputs {
        fortigates,
        fortimanagers,
        secrets,
        config_maps,
        address_groups,
        ..
    } = inputs;
    for (api, w) in apis(&client, &scope).into_iter().zip(fortigates.writers) {
        tasks.push(reflect("FortiGate", api, w, true));
    }
    for (api, w) in apis(&client, &scope).into_iter().zip(fortimanagers.writers) {
        tasks.push(reflect("FortiManager", api, w, true));
    }
    for (api, w) in apis(&client, &scope).into_iter().zip(secrets.writers) {
        tasks.push(reflect("Secret", api, w, false));
    }
    for (api, w) in apis(&client, &scope).into_iter().zip(config_maps.writers) {
        tasks.push(reflect("ConfigMap", api, w, false));
    }
    for (api, w) in apis(&client, &scope)
        .into_iter()
        .zip(address_groups.writers)
    {
        tasks.push(reflect("AddressGroup", api, w, true));
    }
    tasks.push(
        async move {
            futures::future::join_all(stores_ready).await;
            tracing::info!("every watch has listed its resources: ready");
            let _ = ready.send(true);
        }
        .boxed(),
    );
    let watches = futures::future::join_all(tasks);
    tokio::select! {
        _ = futures::future::join_all(controllers) => {
            tracing::info!("controllers drained after the shutdown signal; stopping the watches");
        }
        _ = watches => tracing::warn!("every watch ended; stopping"),
    }
}

type Learned = (
    String,
    crate::api::addressgroup::TargetKind,
    String,
    crate::api::common::ConnectionSpec,
);

fn learned<K: ConnectionResource>(guard: &DeserializeGuard<K>) -> Option<Learned> {
    let k = guard.0.as_ref().ok()?;
    Some((
        k.namespace().unwrap_or_default(),
        K::KIND,
        k.name_any(),
        k.connection().clone(),
    ))
}

/// Every change of the DevicePolicies re-triggers every resource.
fn on_policy_change(ctx: &Context) -> impl Stream<Item = ()> + Send + 'static {
    let handled = ctx.handled.clone();
    futures::stream::unfold(ctx.policy_changes(), |mut rx| async move {
        rx.changed().await.ok()?;
        Some(((), rx))
    })
    .inspect(move |_| handled.retrigger_all())
}

/// Resolves once `store` has its first complete list.
fn listed<K>(store: Store<K>) -> BoxFuture<'static, ()>
where
    K: Resource<DynamicType = ()> + Clone + Send + Sync + 'static,
{
    async move {
        // Err means the writer is gone (shutdown): nothing to wait for then.
        let _ = store.wait_until_ready().await;
    }
    .boxed()
}

/// Winning the Lease re-triggers every resource (a standby's reconciles did nothing).
fn on_becoming_leader(ctx: &Context) -> impl Stream<Item = ()> + Send + 'static {
    let rx = ctx.leadership();
    let handled = ctx.handled.clone();
    // Leading from the start needs no trigger: the initial list reconciles everything, and a
    // second pass racing the first (its status not cached yet) would report twice.
    let was = *rx.borrow();
    futures::stream::unfold((rx, was), |(mut rx, mut was)| async move {
        loop {
            rx.changed().await.ok()?;
            let now = *rx.borrow_and_update();
            let became = now && !was;
            was = now;
            if became {
                return Some(((), (rx, was)));
            }
        }
    })
    .inspect(move |_| handled.retrigger_all())
}

/// The controller of one kind that targets connections; returns its task and the futures
/// that resolve once its watches have listed.
fn kind_controller<K: Reconciler>(
    ctx: &Arc<Context>,
    scope: &Scope,
    inputs: &Inputs,
) -> (BoxFuture<'static, ()>, Vec<BoxFuture<'static, ()>>) {
    let client = ctx.client.clone();
    let mut tasks = Vec::new();
    let mut ready = Vec::new();
    for api in apis::<DeserializeGuard<K>>(&client, scope) {
        let (store, writer) = reflector::store();
        ready.push(listed(store.clone()));
        // Status patches must not trigger reconciles (each reconcile writes status): only spec
        // (generation), finalizer and annotation (pause) changes do; resyncs come from requeues.
        let changes = watcher(api, watcher::Config::default().any_semantic())
            .backoff(watch_backoff())
            .modify(|g| g.managed_fields_mut().clear())
            .reflect(writer)
            .applied_objects()
            .predicate_filter(
                predicates::generation
                    .combine(predicates::finalizers)
                    .combine(predicates::annotations),
                Default::default(),
            )
            .inspect_err(|e| log_watch_error(K::KIND, e));
        let (by_gate, by_manager) = (store.clone(), store.clone());
        let by_secret = store.clone();
        let (by_map, by_group) = (store.clone(), store.clone());
        let users = inputs.secret_users.clone();
        // Each trigger but the resource's own marks the passes it re-runs (`handled`).
        let (by_gate_h, by_manager_h) = (ctx.handled.clone(), ctx.handled.clone());
        let (by_secret_h, by_map_h, by_group_h) = (
            ctx.handled.clone(),
            ctx.handled.clone(),
            ctx.handled.clone(),
        );
        let controller = Controller::for_stream(changes, store)
            .with_config(controller::Config::default().concurrency(MAX_CONCURRENT_RECONCILES))
            .reconcile_all_on(on_becoming_leader(ctx))
            .reconcile_all_on(on_policy_change(ctx))
            .watches_shared_stream(spec_changes(inputs.fortigates.subscribe()), move |fg| {
                retriggering(&by_gate_h, connection_dependents(&by_gate, &*fg))
            })
            .watches_shared_stream(spec_changes(inputs.fortimanagers.subscribe()), move |fmg| {
                retriggering(&by_manager_h, connection_dependents(&by_manager, &*fmg))
            })
            .watches_shared_stream(inputs.secrets.subscribe(), move |secret| {
                let ns = secret.namespace().unwrap_or_default();
                let name = secret.name_any();
                let mut out: Vec<_> = users
                    .connections(&ns, &name)
                    .into_iter()
                    .flat_map(|(kind, name)| dependents::in_store(&by_secret, kind, &ns, &name))
                    .collect();
                out.extend(dependents::referencing(
                    &by_secret,
                    &ns,
                    &Reference::Secret(name),
                ));
                retriggering(&by_secret_h, out)
            })
            .watches_shared_stream(inputs.config_maps.subscribe(), move |map| {
                let ns = map.namespace().unwrap_or_default();
                let refs =
                    dependents::referencing(&by_map, &ns, &Reference::ConfigMap(map.name_any()));
                retriggering(&by_map_h, refs)
            })
            .watches_shared_stream(
                generation_changes(inputs.address_groups.subscribe()),
                move |group| {
                    let ns = group.namespace().unwrap_or_default();
                    let refs = dependents::referencing(
                        &by_group,
                        &ns,
                        &Reference::AddressGroup(group.name_any()),
                    );
                    retriggering(&by_group_h, refs)
                },
            )
            .shutdown_on_signal()
            .run(
                reconcile_guarded::<K>,
                error_policy_guarded::<K>,
                ctx.clone(),
            )
            .for_each(|outcome| async move {
                if let Err(e) = outcome {
                    tracing::debug!(error = %e, "reconcile outcome");
                }
            });
        tasks.push(controller.boxed());
    }
    (futures::future::join_all(tasks).map(|_| ()).boxed(), ready)
}

/// `refs`, about to be re-triggered by something other than themselves: their next pass runs
/// even if it would be the echo of a first pass (see `handled`).
fn retriggering<K: Reconciler>(
    handled: &Handled,
    refs: Vec<ObjectRef<DeserializeGuard<K>>>,
) -> Vec<ObjectRef<DeserializeGuard<K>>> {
    for r in &refs {
        handled.retrigger(K::KIND, r.namespace.as_deref().unwrap_or_default(), &r.name);
    }
    refs
}

fn connection_dependents<K: Reconciler, C: ConnectionResource>(
    store: &Store<DeserializeGuard<K>>,
    connection: &DeserializeGuard<C>,
) -> Vec<ObjectRef<DeserializeGuard<K>>> {
    let ns = connection.namespace().unwrap_or_default();
    dependents::in_store(store, C::KIND, &ns, &connection.name_any())
}

/// The status controller of one connection kind, on the shared connection watch.
fn connection_controller<C: ConnectionResource>(
    ctx: &Arc<Context>,
    inputs: &Inputs,
    streams: Vec<futures::stream::BoxStream<'static, Arc<DeserializeGuard<C>>>>,
    stores: Vec<Store<DeserializeGuard<C>>>,
) -> BoxFuture<'static, ()> {
    // One controller reads one store: with several namespaces, one controller per namespace.
    let mut tasks = Vec::new();
    for (store, changes) in stores.into_iter().zip(streams) {
        let by_secret = store.clone();
        let users = inputs.secret_users.clone();
        let (rechecked, by_secret_h) = (ctx.handled.clone(), ctx.handled.clone());
        let rechecks = rechecks::<C>(ctx).inspect(move |r| {
            rechecked.retrigger(
                <C as Reconciler>::KIND,
                r.namespace.as_deref().unwrap_or_default(),
                &r.name,
            )
        });
        let controller = Controller::for_shared_stream(generation_changes(changes), store)
            .reconcile_on(rechecks)
            .reconcile_all_on(on_becoming_leader(ctx))
            .reconcile_all_on(on_policy_change(ctx))
            .watches_shared_stream(inputs.secrets.subscribe(), move |secret| {
                let ns = secret.namespace().unwrap_or_default();
                let name = secret.name_any();
                let refs = users
                    .connections(&ns, &name)
                    .into_iter()
                    .filter(|(kind, _)| *kind == C::KIND)
                    .filter(|(_, n)| by_secret.get(&ObjectRef::new(n).within(&ns)).is_some())
                    .map(|(_, n)| ObjectRef::new(&n).within(&ns))
                    .collect::<Vec<_>>();
                retriggering(&by_secret_h, refs)
            })
            .shutdown_on_signal()
            .run(
                reconcile_guarded::<C>,
                error_policy_guarded::<C>,
                ctx.clone(),
            )
            .for_each(|outcome| async move {
                if let Err(e) = outcome {
                    tracing::debug!(error = %e, "reconcile outcome");
                }
            });
        tasks.push(controller.boxed());
    }
    futures::future::join_all(tasks).map(|_| ()).boxed()
}

/// An object that does not deserialize is reported (log + Warning event) and skipped; every
/// other object goes on.
async fn reconcile_guarded<K: Reconciler>(
    object: Arc<DeserializeGuard<K>>,
    ctx: Arc<Context>,
) -> Result<Action, ReconcileError> {
    match &object.0 {
        Ok(k) => lifecycle::reconcile(Arc::new(k.clone()), ctx).await,
        Err(invalid) => {
            let name = invalid.metadata.name.clone().unwrap_or_default();
            let namespace = invalid.metadata.namespace.clone().unwrap_or_default();
            tracing::warn!(kind = K::KIND, %namespace, %name, error = %invalid.error, "skipping an object that does not match its schema");
            if ctx.is_leading() {
                ctx.event(
                    &*object,
                    EventType::Warning,
                    "InvalidObject",
                    format!(
                        "fortisync cannot read this object ({}); fix it or apply the CRDs of this fortisync version",
                        invalid.error
                    ),
                )
                .await;
            }
            Ok(Action::await_change())
        }
    }
}

fn error_policy_guarded<K: Reconciler>(
    object: Arc<DeserializeGuard<K>>,
    error: &ReconcileError,
    ctx: Arc<Context>,
) -> Action {
    match &object.0 {
        Ok(k) => lifecycle::error_policy(Arc::new(k.clone()), error, ctx),
        Err(_) => Action::await_change(),
    }
}

/// Connections of kind `C` another controller asked to look at again.
fn rechecks<C: ConnectionResource>(
    ctx: &Context,
) -> impl Stream<Item = ObjectRef<DeserializeGuard<C>>> + Send + 'static {
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
        (kind == C::KIND).then(|| ObjectRef::new(&name).within(&namespace))
    })
}
