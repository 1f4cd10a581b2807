//! Resolving a resource's `targetRef`: the connection resource and the Secret material it
//! points at, read on every reconcile (the controller from its watch caches, `cache`) so a
//! rotated key is used at once. `dependents`
//! indexes who depends on which connection and Secret; `status` is the connections' own
//! controller (reachability, firmware, breaker).

pub mod cache;
pub mod dependents;
pub mod status;

use k8s_openapi::api::core::v1::Secret;
use kube::{Api, Client};

use crate::api::addressgroup::{TargetKind, TargetRef};
use std::collections::BTreeMap;

use crate::api::common::ConnectionSpec;
use crate::api::{FortiGate, FortiManager, FortiManagerSpec};
use std::time::Duration;

use crate::device::{Credentials, DeviceKind, EndpointConfig, LockoutPolicy, TransportConfig};
use crate::reconcile::error::ReconcileError;

/// What a connection resource resolves to.
#[derive(Debug, Clone)]
pub struct ResolvedConnection {
    /// `FortiGate` or `FortiManager`.
    pub kind: TargetKind,
    /// Namespace of the connection resource.
    pub namespace: String,
    /// Name of the connection resource.
    pub name: String,
    /// Its connection settings.
    pub connection: ConnectionSpec,
    /// VDOM (FortiGate) or ADOM (FortiManager).
    pub scope: String,
    /// FortiManager-only settings.
    pub fortimanager: Option<FortiManagerSpec>,
    /// Credentials from the Secret.
    pub credentials: Credentials,
    /// PEM CA bundle from the Secret, when configured.
    pub ca_bundle_pem: Option<String>,
}

/// Why a target could not be resolved; each says what to fix.
#[derive(Debug, thiserror::Error)]
pub enum ResolveError {
    /// The referenced connection resource does not exist.
    #[error("{kind:?} {namespace}/{name} referenced by spec.targetRef does not exist")]
    TargetNotFound {
        /// Kind referenced.
        kind: TargetKind,
        /// Namespace searched.
        namespace: String,
        /// Name referenced.
        name: String,
    },
    /// The Secret does not exist.
    #[error("Secret {namespace}/{name} referenced by the connection does not exist")]
    SecretNotFound {
        /// Namespace searched.
        namespace: String,
        /// Secret name.
        name: String,
    },
    /// The Secret exists but lacks a key.
    #[error("Secret {namespace}/{name} has no key {key:?} (or it is empty)")]
    SecretKeyMissing {
        /// Namespace.
        namespace: String,
        /// Secret name.
        name: String,
        /// Missing key.
        key: String,
    },
    /// Reading from the Kubernetes API failed.
    #[error("reading from the Kubernetes API failed: {0}")]
    Kube(#[from] kube::Error),
}

impl ResolveError {
    /// The connection, its Secret or a key in it does not exist (as opposed to the API failing).
    pub fn is_missing(&self) -> bool {
        !matches!(self, Self::Kube(_))
    }

    /// Stable reason for conditions, events and metrics.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::TargetNotFound { .. } => "TargetNotFound",
            Self::SecretNotFound { .. } => "SecretNotFound",
            Self::SecretKeyMissing { .. } => "SecretKeyMissing",
            Self::Kube(_) => "KubernetesApiError",
        }
    }

    /// What an admin can do about it.
    pub fn remedy(&self) -> String {
        match self {
            Self::TargetNotFound { kind, name, .. } => {
                format!(
                    "create the {kind:?} named {name:?} in this namespace, or fix spec.targetRef"
                )
            }
            Self::SecretNotFound { name, .. } => {
                format!(
                    "create the Secret {name:?} with the device's API token (key `token` by default)"
                )
            }
            Self::SecretKeyMissing { name, key, .. } => {
                format!("add the key {key:?} to the Secret {name:?}, or fix credentialsSecretRef")
            }
            Self::Kube(_) => "check the controller's RBAC and the API server's health".to_string(),
        }
    }
}

/// Reads the connection resource named by `target` and its Secrets (one read each).
pub async fn resolve(
    client: &Client,
    namespace: &str,
    target: &TargetRef,
) -> Result<ResolvedConnection, ResolveError> {
    let not_found = || ResolveError::TargetNotFound {
        kind: target.kind,
        namespace: namespace.to_string(),
        name: target.name.clone(),
    };
    let connection = match target.kind {
        TargetKind::FortiGate => {
            let fg = Api::<FortiGate>::namespaced(client.clone(), namespace)
                .get_opt(&target.name)
                .await?
                .ok_or_else(not_found)?;
            Connection::of_fortigate(&fg.spec)
        }
        TargetKind::FortiManager => {
            let fmg = Api::<FortiManager>::namespaced(client.clone(), namespace)
                .get_opt(&target.name)
                .await?
                .ok_or_else(not_found)?;
            Connection::of_fortimanager(&fmg.spec)
        }
    };
    let api = Api::<Secret>::namespaced(client.clone(), namespace);
    let mut secrets = BTreeMap::new();
    for name in connection.secret_names() {
        if let Some(secret) = api.get_opt(name).await? {
            secrets.insert(name.to_string(), secret);
        }
    }
    assemble(namespace, target, connection, |name| {
        secrets.get(name).cloned()
    })
}

/// A connection resource's settings, before its Secrets are read.
#[derive(Debug, Clone)]
pub struct Connection {
    /// The connection settings.
    pub spec: ConnectionSpec,
    /// VDOM or ADOM.
    pub scope: String,
    /// FortiManager-only settings.
    pub fortimanager: Option<FortiManagerSpec>,
}

impl Connection {
    /// From a FortiGate spec.
    pub fn of_fortigate(spec: &crate::api::FortiGateSpec) -> Self {
        Self {
            spec: spec.connection.clone(),
            scope: spec.vdom.clone(),
            fortimanager: None,
        }
    }

    /// From a FortiManager spec.
    pub fn of_fortimanager(spec: &FortiManagerSpec) -> Self {
        Self {
            spec: spec.connection.clone(),
            scope: spec.adom.clone(),
            fortimanager: Some(spec.clone()),
        }
    }

    /// The Secrets it references.
    pub fn secret_names(&self) -> Vec<&str> {
        let mut names = vec![self.spec.credentials_secret_ref.name.as_str()];
        if let Some(ca) = &self.spec.tls.ca_bundle_secret_ref
            && ca.name != names[0]
        {
            names.push(ca.name.as_str());
        }
        names
    }
}

/// Puts a connection and its Secrets together (pure: the controller reads Secrets from the
/// API server, the CLI from manifests, files or the environment).
pub fn assemble(
    namespace: &str,
    target: &TargetRef,
    connection: Connection,
    secret: impl Fn(&str) -> Option<Secret>,
) -> Result<ResolvedConnection, ResolveError> {
    let key = |name: &str, key: &str| -> Result<String, ResolveError> {
        let s = secret(name).ok_or_else(|| ResolveError::SecretNotFound {
            namespace: namespace.to_string(),
            name: name.to_string(),
        })?;
        secret_value(&s, key).ok_or_else(|| ResolveError::SecretKeyMissing {
            namespace: namespace.to_string(),
            name: name.to_string(),
            key: key.to_string(),
        })
    };
    let reference = &connection.spec.credentials_secret_ref;
    let credentials = match (
        &reference.token_key,
        &reference.username_key,
        &reference.password_key,
    ) {
        (Some(token), _, _) => Credentials::Token(key(&reference.name, token)?),
        (None, Some(user), Some(password)) => Credentials::Password {
            user: key(&reference.name, user)?,
            password: key(&reference.name, password)?,
        },
        // Admission allows neither only when tokenKey is absent; the documented default is `token`.
        _ => Credentials::Token(key(&reference.name, "token")?),
    };
    let ca_bundle_pem = match &connection.spec.tls.ca_bundle_secret_ref {
        Some(r) => Some(key(&r.name, &r.key)?),
        None => None,
    };
    Ok(ResolvedConnection {
        kind: target.kind,
        namespace: namespace.to_string(),
        name: target.name.clone(),
        connection: connection.spec,
        scope: connection.scope,
        fortimanager: connection.fortimanager,
        credentials,
        ca_bundle_pem,
    })
}

/// A Secret value from `data` (or `stringData` as kubectl may leave it), trimmed of the trailing
/// newline that `kubectl create secret --from-file` keeps.
pub fn secret_value(secret: &Secret, key: &str) -> Option<String> {
    let raw = secret
        .data
        .as_ref()
        .and_then(|d| d.get(key))
        .map(|b| String::from_utf8_lossy(&b.0).into_owned())
        .or_else(|| {
            secret
                .string_data
                .as_ref()
                .and_then(|d| d.get(key))
                .cloned()
        })?;
    let value = raw.trim_end_matches(['\r', '\n']).to_string();
    (!value.is_empty()).then_some(value)
}

/// The endpoint settings a resolved connection asks for (pure: the controller and the CLI
/// both build endpoints through it).
pub fn endpoint_config(resolved: &ResolvedConnection) -> Result<EndpointConfig, ReconcileError> {
    let spec = &resolved.connection;
    let source_address = match &spec.source_address {
        Some(text) => Some(text.parse().map_err(|_| {
            ReconcileError::Spec(format!("spec.sourceAddress {text:?} is not an IP address"))
        })?),
        None => None,
    };
    Ok(EndpointConfig {
        kind: match resolved.kind {
            TargetKind::FortiGate => DeviceKind::FortiGate,
            TargetKind::FortiManager => DeviceKind::FortiManager,
        },
        name: format!("{}/{}", resolved.namespace, resolved.name),
        url: spec.url.trim_end_matches('/').to_string(),
        scope: resolved.scope.clone(),
        credentials: resolved.credentials.clone(),
        transport: TransportConfig {
            ca_bundle_pem: resolved.ca_bundle_pem.clone(),
            insecure_skip_verify: spec.tls.insecure_skip_verify,
            source_address,
            timeout: Duration::from_secs(15),
        },
        max_concurrent: spec.max_concurrent().clamp(1, 32) as usize,
        lockout: LockoutPolicy {
            threshold: spec.lockout.threshold,
            duration: Duration::from_secs(spec.lockout.duration_seconds.into()),
        },
        lock_retries: resolved
            .fortimanager
            .as_ref()
            .map_or(5, |f| f.workspace.lock_retries),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::ByteString;
    use std::collections::BTreeMap;

    #[test]
    fn secret_values_lose_the_trailing_newline_and_empty_is_missing() {
        let secret = Secret {
            data: Some(BTreeMap::from([
                ("token".to_string(), ByteString(b"abc\n".to_vec())),
                ("empty".to_string(), ByteString(b"\n".to_vec())),
            ])),
            ..Secret::default()
        };
        assert_eq!(secret_value(&secret, "token").as_deref(), Some("abc"));
        assert_eq!(secret_value(&secret, "empty"), None);
        assert_eq!(secret_value(&secret, "absent"), None);
    }
}
