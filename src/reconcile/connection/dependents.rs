//! Which resources depend on which connection, and which connections read which Secret: the
//! indexes that turn a connection or Secret change into reconciles of exactly the resources
//! behind it, for any kind with a `targetRef`.

use std::collections::{BTreeSet, HashMap};
use std::sync::Mutex;

use kube::core::DeserializeGuard;
use kube::runtime::reflector::{ObjectRef, Store};
use kube::{Api, Client, ResourceExt};

use crate::api::addressgroup::{TargetKind, TargetRef};
use crate::api::common::ConnectionSpec;
use crate::api::{AddressGroup, ExternalConnector, TrustedHost};
use crate::reconcile::lifecycle::{Reconciler, Reference};

/// A connection: its kind and name.
pub type ConnectionKey = (TargetKind, String);

/// Connections by the Secrets they read: (namespace, secret) → connections.
#[derive(Default)]
pub struct SecretUsers(Mutex<HashMap<(String, String), BTreeSet<ConnectionKey>>>);

impl SecretUsers {
    /// Records the Secrets `connection` reads, forgetting what it read before.
    pub fn learn(
        &self,
        namespace: &str,
        kind: TargetKind,
        name: &str,
        connection: &ConnectionSpec,
    ) {
        let mut map = self.0.lock().unwrap_or_else(|p| p.into_inner());
        for users in map.values_mut() {
            users.remove(&(kind, name.to_string()));
        }
        for secret in secret_names(connection) {
            map.entry((namespace.to_string(), secret.to_string()))
                .or_default()
                .insert((kind, name.to_string()));
        }
    }

    /// The connections in `namespace` that read `secret`.
    pub fn connections(&self, namespace: &str, secret: &str) -> Vec<ConnectionKey> {
        let map = self.0.lock().unwrap_or_else(|p| p.into_inner());
        map.get(&(namespace.to_string(), secret.to_string()))
            .map(|users| users.iter().cloned().collect())
            .unwrap_or_default()
    }
}

/// The Secrets a connection reads: credentials and, when set, the CA bundle.
pub fn secret_names(connection: &ConnectionSpec) -> impl Iterator<Item = &str> {
    std::iter::once(connection.credentials_secret_ref.name.as_str()).chain(
        connection
            .tls
            .ca_bundle_secret_ref
            .iter()
            .map(|r| r.name.as_str()),
    )
}

/// Resources of kind `K` in `namespace` whose targetRef names this connection (from the cache).
pub fn in_store<K: Reconciler>(
    store: &Store<DeserializeGuard<K>>,
    kind: TargetKind,
    namespace: &str,
    name: &str,
) -> Vec<ObjectRef<DeserializeGuard<K>>> {
    store
        .state()
        .iter()
        .filter(|g| {
            g.namespace().as_deref() == Some(namespace)
                && g.0.as_ref().is_ok_and(|k| {
                    let t = k.target();
                    t.kind == kind && t.name == name
                })
        })
        .map(|g| ObjectRef::from_obj(g.as_ref()))
        .collect()
}

/// Resources of kind `K` in `namespace` that read `reference` (from the cache).
pub fn referencing<K: Reconciler>(
    store: &Store<DeserializeGuard<K>>,
    namespace: &str,
    reference: &Reference,
) -> Vec<ObjectRef<DeserializeGuard<K>>> {
    store
        .state()
        .iter()
        .filter(|g| {
            g.namespace().as_deref() == Some(namespace)
                && g.0
                    .as_ref()
                    .is_ok_and(|k| k.references().contains(reference))
        })
        .map(|g| ObjectRef::from_obj(g.as_ref()))
        .collect()
}

/// Resources that still target `target` (read from the API server, so a deletion waits on
/// what really exists): `<Kind>/<name>` each.
pub async fn remaining(
    client: &Client,
    namespace: &str,
    target: &TargetRef,
) -> Result<Vec<String>, kube::Error> {
    let groups = Api::<AddressGroup>::namespaced(client.clone(), namespace)
        .list(&Default::default())
        .await?;
    let connectors = Api::<ExternalConnector>::namespaced(client.clone(), namespace)
        .list(&Default::default())
        .await?;
    let trusted_hosts = Api::<TrustedHost>::namespaced(client.clone(), namespace)
        .list(&Default::default())
        .await?;
    let trusted_hosts = trusted_hosts
        .items
        .into_iter()
        .filter(|t| t.spec.target_ref == *target)
        .map(|t| format!("TrustedHost/{}", t.name_any()));
    let groups = groups
        .items
        .into_iter()
        .filter(|g| g.spec.target_ref == *target)
        .map(|g| format!("AddressGroup/{}", g.name_any()));
    let connectors = connectors
        .items
        .into_iter()
        .filter(|c| c.spec.target_ref == *target)
        .map(|c| format!("ExternalConnector/{}", c.name_any()));
    Ok(groups.chain(connectors).chain(trusted_hosts).collect())
}
