//! Wiring: one kube-runtime Controller per kind, re-triggered by the connection resources and
//! Secrets they depend on, run only by the Lease holder.

use std::sync::Arc;

use futures::StreamExt;
use k8s_openapi::api::core::v1::Secret;
use kube::runtime::controller::Controller;
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::utils::Predicate;
use kube::runtime::{WatchStreamExt, predicates, watcher};
use kube::{Api, Client, ResourceExt};

use crate::api::addressgroup::{AddressGroup, TargetKind};
use crate::api::{FortiGate, FortiManager};

use super::addressgroup;
use super::context::Context;

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

/// Runs the AddressGroup controller until the stream ends (shutdown signal).
pub async fn run_addressgroups(ctx: Arc<Context>, scope: Scope) {
    let client = ctx.client.clone();
    let groups = api::<AddressGroup>(&client, &scope);
    // Status patches must not trigger reconciles (each reconcile writes status): only spec
    // (generation), finalizer and annotation (pause) changes do; resyncs come from requeues.
    let (store, writer) = reflector::store();
    let changes = watcher(groups, watcher::Config::default().any_semantic())
        .default_backoff()
        .reflect(writer)
        .applied_objects()
        .predicate_filter(
            predicates::generation
                .combine(predicates::finalizers)
                .combine(predicates::annotations),
            Default::default(),
        );
    let controller = Controller::for_stream(changes, store.clone());
    let by_gate = store.clone();
    let by_manager = store.clone();
    let by_secret = store.clone();
    let connections_fg = api::<FortiGate>(&client, &scope);
    let connections_fmg = api::<FortiManager>(&client, &scope);

    controller
        .watches(
            connections_fg,
            watcher::Config::default(),
            move |fg: FortiGate| {
                dependents(
                    &by_gate,
                    TargetKind::FortiGate,
                    &fg.namespace().unwrap_or_default(),
                    &fg.name_any(),
                )
            },
        )
        .watches(
            connections_fmg,
            watcher::Config::default(),
            move |fmg: FortiManager| {
                dependents(
                    &by_manager,
                    TargetKind::FortiManager,
                    &fmg.namespace().unwrap_or_default(),
                    &fmg.name_any(),
                )
            },
        )
        // A rotated key or CA bundle re-triggers every AddressGroup of the namespace at once
        // (cheap: they share the device's endpoint), so a frozen credential is retried promptly.
        .watches(
            api::<Secret>(&client, &scope),
            watcher::Config::default(),
            move |secret: Secret| {
                let ns = secret.namespace().unwrap_or_default();
                by_secret
                    .state()
                    .iter()
                    .filter(|g| g.namespace().as_deref() == Some(ns.as_str()))
                    .map(|g| ObjectRef::from_obj(g.as_ref()))
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

/// Runs every controller until shutdown.
pub async fn run(ctx: Arc<Context>, scope: Scope) {
    run_addressgroups(ctx, scope).await;
}
