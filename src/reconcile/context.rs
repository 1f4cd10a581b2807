//! What every reconcile shares: the kube client, the device endpoints (one Guard per device),
//! metrics, the event recorder, and device facts learned once per endpoint.

use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use kube::{Client, Resource};
use prometheus_client::registry::Registry;

use super::connection::{ResolvedConnection, endpoint_config, resolve};
use super::error::ReconcileError;
use super::metrics::ReconcileMetrics;
use super::target::{DeviceFacts, Target};
use crate::api::addressgroup::{TargetKind, TargetRef};
use crate::device::{DeviceMetrics, Endpoint, Endpoints};

/// Shared by every reconcile.
pub struct Context {
    /// Kubernetes client.
    pub client: Client,
    /// Device endpoints.
    pub endpoints: Endpoints,
    /// Reconcile metrics.
    pub metrics: ReconcileMetrics,
    recorder: Recorder,
    /// Device facts learned once per endpoint.
    pub facts: DeviceFacts,
    rechecks: tokio::sync::broadcast::Sender<ConnectionRef>,
    leading: tokio::sync::watch::Receiver<bool>,
    last_resolved: std::sync::Mutex<std::collections::HashMap<ConnectionRef, ResolvedConnection>>,
    /// The lists the EDL endpoint serves (ExternalConnector feeds).
    pub edl: crate::edl::Lists,
    edl_base_url: Option<String>,
    /// The DevicePolicies in force, by name, and a counter that moves when they change.
    /// None while the controller has not listed them yet (everything waits: fail closed).
    policies: std::sync::RwLock<Option<Vec<(String, crate::api::DevicePolicySpec)>>>,
    policy_changes: tokio::sync::watch::Sender<u64>,
    /// What each feed was last published with (a digest), so an unchanged list is not rebuilt.
    published: std::sync::Mutex<std::collections::HashMap<(String, String), [u8; 32]>>,
    /// AddressGroup passes queued per FortiGate, run as batches (`addressgroup::batch`).
    pub batches: crate::reconcile::addressgroup::batch::Batches,
    /// TrustedHost passes queued per FortiGate, run as batches (`trustedhost::batch`).
    pub trusted_hosts: crate::reconcile::trustedhost::batch::Batches,
    /// The watch caches connections and Secrets are read from, once the controller runs
    /// (until then, and for the CLI, the API server).
    caches: std::sync::OnceLock<crate::reconcile::connection::cache::Caches>,
    /// ExternalConnector passes queued per FortiGate (`externalconnector::batch`).
    pub connector_batches: crate::reconcile::externalconnector::batch::Batches,
    /// Passes run to the end at one resourceVersion, whose echo is not run again.
    pub handled: std::sync::Arc<super::handled::Handled>,
}

/// The API server refuses an event note over 1 KiB — bytes, not characters (422).
const NOTE_LIMIT: usize = 1024;

/// `note` cut on a character boundary to fit the event API's limit.
fn event_note(note: &str) -> String {
    if note.len() <= NOTE_LIMIT {
        return note.to_string();
    }
    let mut end = NOTE_LIMIT - '…'.len_utf8();
    while !note.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &note[..end])
}

/// A connection resource: kind, namespace, name.
pub type ConnectionRef = (TargetKind, String, String);

fn connection_ref(namespace: &str, target: &TargetRef) -> ConnectionRef {
    (target.kind, namespace.to_string(), target.name.clone())
}

impl Context {
    /// A context registering its metrics in `registry`.
    pub fn new(client: Client, registry: &mut Registry) -> Self {
        let reporter = Reporter {
            controller: "fortisync".into(),
            instance: std::env::var("POD_NAME").ok(),
        };
        Self {
            recorder: Recorder::new(client.clone(), reporter),
            endpoints: Endpoints::new(DeviceMetrics::register(registry)),
            metrics: ReconcileMetrics::register(registry),
            client,
            facts: DeviceFacts::default(),
            rechecks: tokio::sync::broadcast::channel(256).0,
            // Without an election (plan/apply, tests) this process is the only writer.
            leading: tokio::sync::watch::channel(true).1,
            last_resolved: Default::default(),
            edl: crate::edl::Lists::new(crate::edl::EdlMetrics::register(registry)),
            edl_base_url: None,
            published: Default::default(),
            // Without a cluster (plan/apply) there are no policies to wait for.
            policies: std::sync::RwLock::new(Some(Vec::new())),
            policy_changes: tokio::sync::watch::channel(0).0,
            batches: Default::default(),
            trusted_hosts: Default::default(),
            caches: std::sync::OnceLock::new(),
            connector_batches: Default::default(),
            handled: Default::default(),
        }
    }

    /// This context, writing only while `leading` says this replica holds the Lease.
    pub fn with_leader_election(mut self, leading: tokio::sync::watch::Receiver<bool>) -> Self {
        self.leading = leading;
        self
    }

    /// This context, telling FortiGates to poll feeds under `base` (the EDL endpoint as the
    /// firewalls reach it, e.g. `https://fortisync-edl.fortisync.svc:8443`).
    pub fn with_edl_base_url(mut self, base: Option<String>) -> Self {
        self.edl_base_url = base;
        self
    }

    /// The EDL endpoint's URL as FortiGates reach it, when configured.
    pub fn edl_base_url(&self) -> Option<&str> {
        self.edl_base_url.as_deref()
    }

    /// Serves `list` at `/edl/<namespace>/<name>`, readable with `credentials` only.
    pub fn publish_feed(
        &self,
        namespace: &str,
        name: &str,
        list: &crate::reconcile::externalconnector::desired::DesiredList,
        credentials: Option<(String, String)>,
    ) {
        use sha2::{Digest, Sha256};
        let mut digest = Sha256::new();
        for e in &list.entries {
            digest.update(e.as_bytes());
            digest.update(
                list.expiries
                    .get(e)
                    .map(|t| t.as_nanosecond().to_le_bytes())
                    .unwrap_or_default(),
            );
            digest.update(b"\n");
        }
        if let Some((u, p)) = &credentials {
            digest.update([u.len() as u8]);
            digest.update(u.as_bytes());
            digest.update(p.as_bytes());
        }
        let digest: [u8; 32] = digest.finalize().into();
        let key = (namespace.to_string(), name.to_string());
        let mut published = self.published.lock().unwrap_or_else(|p| p.into_inner());
        if published.get(&key) == Some(&digest) {
            return;
        }
        published.insert(key, digest);
        drop(published);
        let entries = list
            .entries
            .iter()
            .map(|e| crate::edl::Entry {
                text: e.clone(),
                expires_at: list.expiries.get(e).copied(),
            })
            .collect();
        let credentials = credentials
            .map(|(username, password)| crate::edl::BasicCredentials { username, password });
        self.edl.set(
            namespace,
            name,
            crate::edl::ListSpec {
                entries,
                credentials,
            },
        );
    }

    /// Replaces the DevicePolicies in force (from the controller's watch).
    pub fn set_policies(&self, policies: Vec<(String, crate::api::DevicePolicySpec)>) {
        *self.policies.write().unwrap_or_else(|p| p.into_inner()) = Some(policies);
        self.policy_changes.send_modify(|n| *n += 1);
    }

    /// Until the controller has listed the DevicePolicies, nothing reaches a device.
    pub fn await_policies(&self) {
        *self.policies.write().unwrap_or_else(|p| p.into_inner()) = None;
    }

    /// Moves whenever the DevicePolicies change (every resource is looked at again).
    pub fn policy_changes(&self) -> tokio::sync::watch::Receiver<u64> {
        self.policy_changes.subscribe()
    }

    fn verdict(
        &self,
        namespace: &str,
        url: &str,
    ) -> Result<crate::api::devicepolicy::Verdict, ReconcileError> {
        let policies = self.policies.read().unwrap_or_else(|p| p.into_inner());
        let Some(policies) = policies.as_ref() else {
            return Err(ReconcileError::Setup {
                reason: "PoliciesUnknown",
                message: "the DevicePolicies have not been listed yet; nothing is sent to a device until they are".into(),
                remedy: "wait; if it lasts, check that the controller may list devicepolicies.fortisync.dev (the chart's ClusterRole)".into(),
            });
        };
        Ok(crate::api::devicepolicy::verdict(
            policies.iter().map(|(n, s)| (n.as_str(), s)),
            namespace,
            url,
        ))
    }

    /// Refuses a namespace a DevicePolicy does not grant the device at `url`: before any
    /// request, so such a namespace cannot even spend the device's failed-login budget.
    pub fn admits_namespace(&self, namespace: &str, url: &str) -> Result<(), ReconcileError> {
        match self.verdict(namespace, url)? {
            crate::api::devicepolicy::Verdict::Allowed(_) => Ok(()),
            crate::api::devicepolicy::Verdict::Denied { policies } => Err(ReconcileError::Setup {
                reason: "NotAllowedByPolicy",
                message: format!(
                    "the DevicePolicy {} governs this device and grants it to other namespaces, not {namespace:?}; nothing was sent to the device",
                    policies.join(", ")
                ),
                remedy: "ask the cluster administrator to add this namespace to the DevicePolicy, or target a device this namespace is granted".into(),
            }),
        }
    }

    /// Refuses a device object `name` (a group, a feed) the namespace's grant does not cover.
    pub fn admits_name(
        &self,
        namespace: &str,
        url: &str,
        field: &str,
        name: &str,
    ) -> Result<(), ReconcileError> {
        match self.verdict(namespace, url)? {
            crate::api::devicepolicy::Verdict::Allowed(patterns)
                if crate::api::devicepolicy::name_allowed(&patterns, name) =>
            {
                Ok(())
            }
            crate::api::devicepolicy::Verdict::Allowed(patterns) => Err(ReconcileError::Setup {
                reason: "NotAllowedByPolicy",
                message: format!(
                    "{field} {name:?} is outside what the DevicePolicy grants this namespace on this device ({}); nothing was written",
                    patterns.join(", ")
                ),
                remedy: format!(
                    "choose a {field} matching {}, or ask the cluster administrator to widen the grant",
                    patterns.join(" or ")
                ),
            }),
            crate::api::devicepolicy::Verdict::Denied { .. } => {
                self.admits_namespace(namespace, url)
            }
        }
    }

    /// The credentials last resolved for `target` (to word a refusal for their kind).
    pub fn credentials_of(
        &self,
        namespace: &str,
        target: &TargetRef,
    ) -> Option<crate::device::Credentials> {
        self.last_resolved
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&connection_ref(namespace, target))
            .map(|r| r.credentials.clone())
    }

    /// Stops serving `/edl/<namespace>/<name>`.
    pub fn withdraw_feed(&self, namespace: &str, name: &str) {
        self.published
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&(namespace.to_string(), name.to_string()));
        self.edl.remove(namespace, name);
    }

    /// Whether this replica may write (to devices and to status) now.
    pub fn is_leading(&self) -> bool {
        *self.leading.borrow()
    }

    /// Whether this replica leads, as a stream of changes (for re-triggering on takeover).
    pub fn leadership(&self) -> tokio::sync::watch::Receiver<bool> {
        self.leading.clone()
    }

    /// Asks the status controller of `target` to look again at once: a reconcile found its
    /// device's breaker open or its credential refused, which the connection's status must
    /// show now rather than at its next resync. Looking costs no request while either holds.
    pub fn recheck_connection(&self, namespace: &str, target: &TargetRef) {
        // No receiver (the status controllers are not running, as in `fortisync apply`) is fine.
        let _ = self
            .rechecks
            .send((target.kind, namespace.to_string(), target.name.clone()));
    }

    /// The connections to look at again, for the status controllers.
    pub fn connection_rechecks(&self) -> tokio::sync::broadcast::Receiver<ConnectionRef> {
        self.rechecks.subscribe()
    }

    /// Publishes an event; a failure to publish is logged, never fatal.
    pub async fn event<K: Resource<DynamicType = ()>>(
        &self,
        object: &K,
        type_: EventType,
        reason: &str,
        note: String,
    ) {
        let event = Event {
            type_,
            reason: reason.to_string(),
            note: Some(event_note(&note)),
            action: "Reconcile".into(),
            secondary: None,
        };
        let _turn = super::status::apiserver_turn().await;
        if let Err(e) = self.recorder.publish(&event, &object.object_ref(&())).await {
            tracing::debug!(error = %e, "could not publish an event");
        }
    }

    /// Reads connections and Secrets from `caches` from now on.
    pub fn use_caches(&self, caches: crate::reconcile::connection::cache::Caches) {
        let _ = self.caches.set(caches);
    }

    /// The connection and Secrets of `target`: from the watch caches when the controller
    /// runs them, from the API server otherwise.
    async fn resolve(
        &self,
        namespace: &str,
        target: &TargetRef,
    ) -> Result<ResolvedConnection, crate::reconcile::connection::ResolveError> {
        if let Some(caches) = self.caches.get()
            && let Some(resolved) = caches.resolve(namespace, target).await
        {
            return resolved;
        }
        resolve(&self.client, namespace, target).await
    }

    /// Resolves a target to its endpoint (shared per device and credential).
    pub async fn endpoint(
        &self,
        namespace: &str,
        target: &TargetRef,
    ) -> Result<(Endpoint, ResolvedConnection), ReconcileError> {
        let resolved = self.resolve(namespace, target).await?;
        self.admits_namespace(namespace, &resolved.connection.url)?;
        self.last_resolved
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(connection_ref(namespace, target), resolved.clone());
        let config = endpoint_config(&resolved)?;
        Ok((self.endpoints.get(&config)?, resolved))
    }

    /// Resolves a target for a deletion's cleanup. `kubectl delete -f` on one file deletes the
    /// Secret and the connection before the resources that use them; their cleanup must still
    /// reach the device, so a connection or Secret that is gone is replaced by what this
    /// process last resolved for it (the credentials its endpoint holds anyway).
    pub async fn target_for_cleanup(
        &self,
        namespace: &str,
        target: &TargetRef,
    ) -> Result<(Target, ResolvedConnection), ReconcileError> {
        let resolved = match self.resolve(namespace, target).await {
            Ok(r) => r,
            Err(e) if e.is_missing() => {
                let remembered = self
                    .last_resolved
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .get(&connection_ref(namespace, target))
                    .cloned();
                match remembered {
                    Some(r) => {
                        tracing::info!(
                            reason = e.reason(),
                            "cleaning up with the connection as last read: {e}"
                        );
                        r
                    }
                    None => return Err(e.into()),
                }
            }
            Err(e) => return Err(e.into()),
        };
        let endpoint = self.endpoints.get(&endpoint_config(&resolved)?)?;
        let connected = Target::connect(endpoint, &resolved, &self.facts).await?;
        Ok((connected, resolved))
    }

    /// Resolves and connects a target (its firmware learned once per device).
    pub async fn target(
        &self,
        namespace: &str,
        target: &TargetRef,
    ) -> Result<(Target, ResolvedConnection), ReconcileError> {
        let (endpoint, resolved) = self.endpoint(namespace, target).await?;
        let target = Target::connect(endpoint, &resolved, &self.facts).await?;
        Ok((target, resolved))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_notes_fit_the_api_servers_byte_limit_whatever_the_characters() {
        let long = "≤ drift → repaired ".repeat(200);
        let note = event_note(&long);
        assert!(note.len() <= NOTE_LIMIT, "{} bytes", note.len());
        assert!(note.ends_with('…'));
        assert_eq!(event_note("short"), "short");
    }
}
