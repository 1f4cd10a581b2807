//! Resolving a resource's `targetRef`: the connection resource and the Secret material it
//! points at, read fresh on every reconcile so a rotated key is used at once.

use k8s_openapi::api::core::v1::Secret;
use kube::{Api, Client};

use crate::api::addressgroup::{TargetKind, TargetRef};
use crate::api::common::{ConnectionSpec, CredentialsSecretRef};
use crate::api::{FortiGate, FortiManager, FortiManagerSpec};
use crate::device::Credentials;

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

/// Reads the connection resource named by `target` and its Secrets.
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
    let (connection, scope, fortimanager) = match target.kind {
        TargetKind::FortiGate => {
            let fg = Api::<FortiGate>::namespaced(client.clone(), namespace)
                .get_opt(&target.name)
                .await?
                .ok_or_else(not_found)?;
            (fg.spec.connection, fg.spec.vdom, None)
        }
        TargetKind::FortiManager => {
            let fmg = Api::<FortiManager>::namespaced(client.clone(), namespace)
                .get_opt(&target.name)
                .await?
                .ok_or_else(not_found)?;
            (
                fmg.spec.connection.clone(),
                fmg.spec.adom.clone(),
                Some(fmg.spec),
            )
        }
    };
    let secrets = Api::<Secret>::namespaced(client.clone(), namespace);
    let credentials =
        read_credentials(&secrets, namespace, &connection.credentials_secret_ref).await?;
    let ca_bundle_pem = match &connection.tls.ca_bundle_secret_ref {
        Some(r) => Some(read_key(&secrets, namespace, &r.name, &r.key).await?),
        None => None,
    };
    Ok(ResolvedConnection {
        kind: target.kind,
        namespace: namespace.to_string(),
        name: target.name.clone(),
        connection,
        scope,
        fortimanager,
        credentials,
        ca_bundle_pem,
    })
}

async fn read_credentials(
    secrets: &Api<Secret>,
    namespace: &str,
    reference: &CredentialsSecretRef,
) -> Result<Credentials, ResolveError> {
    match (
        &reference.token_key,
        &reference.username_key,
        &reference.password_key,
    ) {
        (Some(token), _, _) => Ok(Credentials::Token(
            read_key(secrets, namespace, &reference.name, token).await?,
        )),
        (None, Some(user), Some(password)) => Ok(Credentials::Password {
            user: read_key(secrets, namespace, &reference.name, user).await?,
            password: read_key(secrets, namespace, &reference.name, password).await?,
        }),
        // Admission allows neither only when tokenKey is absent; the documented default is `token`.
        _ => Ok(Credentials::Token(
            read_key(secrets, namespace, &reference.name, "token").await?,
        )),
    }
}

async fn read_key(
    secrets: &Api<Secret>,
    namespace: &str,
    name: &str,
    key: &str,
) -> Result<String, ResolveError> {
    let secret = secrets
        .get_opt(name)
        .await?
        .ok_or_else(|| ResolveError::SecretNotFound {
            namespace: namespace.to_string(),
            name: name.to_string(),
        })?;
    secret_value(&secret, key).ok_or_else(|| ResolveError::SecretKeyMissing {
        namespace: namespace.to_string(),
        name: name.to_string(),
        key: key.to_string(),
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
