//! Connections and Secrets read through the controller's own watch caches instead of one API
//! server GET each on every pass: 1,000 resources resyncing cost the apiserver 2,000 reads
//! per interval, a restart 2,000 at once (which also spread the passes out, so one device's
//! resyncs no longer shared an observation).
//!
//! Connections come from their stores. Secrets are watched as metadata only (their content
//! is not kept for every Secret of the namespace): one is read from the API server when its
//! `resourceVersion` differs from the one read last, so only a change costs a GET.
//!
//! Still fresh enough for a rotated key: the reflector writes a change into its store before
//! it announces it, and the announcement is what re-runs the resources using that connection
//! or Secret (`dependents`), so their pass sees the new version. Whatever the caches cannot
//! answer (not listed yet, an object that does not deserialize, a Secret not seen) is read
//! from the API server, as before.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use k8s_openapi::api::core::v1::Secret;
use kube::core::{DeserializeGuard, PartialObjectMeta};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::{Api, Client, Resource};

use super::{Connection, ResolveError, ResolvedConnection, assemble};
use crate::api::addressgroup::{TargetKind, TargetRef};
use crate::api::{FortiGate, FortiManager};

/// The stores of the watched connection kinds and Secrets (one per namespace of the scope),
/// and the Secrets read so far with the version read.
pub struct Caches {
    client: Client,
    fortigates: Vec<Store<DeserializeGuard<FortiGate>>>,
    fortimanagers: Vec<Store<DeserializeGuard<FortiManager>>>,
    secrets: Vec<Store<PartialObjectMeta<Secret>>>,
    read: Mutex<HashMap<(String, String), Arc<Secret>>>,
}

impl std::fmt::Debug for Caches {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Caches").finish_non_exhaustive()
    }
}

fn find<K>(stores: &[Store<K>], namespace: &str, name: &str) -> Option<Arc<K>>
where
    K: Resource + Clone + 'static,
    K::DynamicType: Default + Eq + std::hash::Hash + Clone,
{
    let key = ObjectRef::new(name).within(namespace);
    stores.iter().find_map(|s| s.get(&key))
}

/// Whether every store of `stores` has listed once, without waiting: a reconcile must not
/// wait on a watch (a watch waits for its subscribers, among them the controllers whose
/// reconciles these are, so waiting here could hold the very listing it waits for).
fn all_listed<K>(stores: &[Store<K>]) -> bool
where
    K: Resource + Clone + 'static,
    K::DynamicType: Eq + std::hash::Hash + Clone,
{
    use futures::FutureExt;
    stores
        .iter()
        .all(|s| matches!(s.wait_until_ready().now_or_never(), Some(Ok(()))))
}

impl Caches {
    /// Caches over these stores (each fed by the controller's watches).
    pub fn new(
        client: Client,
        fortigates: Vec<Store<DeserializeGuard<FortiGate>>>,
        fortimanagers: Vec<Store<DeserializeGuard<FortiManager>>>,
        secrets: Vec<Store<PartialObjectMeta<Secret>>>,
    ) -> Self {
        Self {
            client,
            fortigates,
            fortimanagers,
            secrets,
            read: Mutex::default(),
        }
    }

    /// Whether every store has listed once (not yet, or its watch is gone: the API server
    /// answers instead). An empty store before its first listing would say "not found" of
    /// what exists.
    fn listed(&self) -> bool {
        all_listed(&self.fortigates) && all_listed(&self.fortimanagers) && all_listed(&self.secrets)
    }

    /// `super::resolve`, through the caches; None when they cannot answer for the connection.
    pub async fn resolve(
        &self,
        namespace: &str,
        target: &TargetRef,
    ) -> Option<Result<ResolvedConnection, ResolveError>> {
        if !self.listed() {
            return None;
        }
        let connection = match target.kind {
            TargetKind::FortiGate => find(&self.fortigates, namespace, &target.name).map(|g| {
                g.0.as_ref()
                    .ok()
                    .map(|fg| Connection::of_fortigate(&fg.spec))
            }),
            TargetKind::FortiManager => {
                find(&self.fortimanagers, namespace, &target.name).map(|g| {
                    g.0.as_ref()
                        .ok()
                        .map(|m| Connection::of_fortimanager(&m.spec))
                })
            }
        };
        let connection = match connection {
            None => {
                return Some(Err(ResolveError::TargetNotFound {
                    kind: target.kind,
                    namespace: namespace.to_string(),
                    name: target.name.clone(),
                }));
            }
            // Does not deserialize: the API server read says why.
            Some(None) => return None,
            Some(Some(connection)) => connection,
        };
        let mut secrets = BTreeMap::new();
        for name in connection.secret_names() {
            match self.secret(namespace, name).await {
                Ok(Some(secret)) => {
                    secrets.insert(name.to_string(), secret);
                }
                Ok(None) => {}
                Err(e) => return Some(Err(e.into())),
            }
        }
        Some(assemble(namespace, target, connection, |name| {
            secrets.get(name).map(|s| (**s).clone())
        }))
    }

    /// Secret `namespace/name`: as read last if its version is still the one the watch
    /// holds, read again otherwise (or when the watch has not seen it).
    async fn secret(
        &self,
        namespace: &str,
        name: &str,
    ) -> Result<Option<Arc<Secret>>, kube::Error> {
        let key = (namespace.to_string(), name.to_string());
        let version =
            find(&self.secrets, namespace, name).and_then(|m| m.metadata.resource_version.clone());
        let lock = || self.read.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(version) = &version
            && let Some(secret) = lock().get(&key)
            && secret.metadata.resource_version.as_ref() == Some(version)
        {
            return Ok(Some(secret.clone()));
        }
        let read = Api::<Secret>::namespaced(self.client.clone(), namespace)
            .get_opt(name)
            .await?
            .map(Arc::new);
        match &read {
            Some(secret) => lock().insert(key, secret.clone()),
            None => lock().remove(&key),
        };
        Ok(read)
    }
}
