//! Manifests for the commands that run without Kubernetes (`plan`, `apply`, `demo`, `doctor`):
//! multi-document YAML (or JSON) files and directories holding the same resources a cluster
//! would, and the credentials behind them from Secret manifests, a directory laid out like a
//! mounted Secret, or the environment.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use kube::ResourceExt;
use serde::Deserialize;

use crate::api::addressgroup::{TargetKind, TargetRef};
use crate::api::validate::{
    validate_external_connector, validate_fortigate, validate_fortimanager, validate_trustedhost,
};
use crate::api::{AddressGroup, ExternalConnector, FortiGate, FortiManager, TrustedHost};
use crate::reconcile::connection::{Connection, ResolveError, ResolvedConnection, assemble};

/// Why manifests could not be loaded; each names the file (and document) at fault.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// A path could not be read.
    #[error("{path}: {source}")]
    Io {
        /// The path.
        path: String,
        /// The cause.
        source: std::io::Error,
    },
    /// A document is not valid YAML, or not a valid resource of its kind.
    #[error("{origin}: document {index}: {detail}")]
    Invalid {
        /// The file.
        origin: String,
        /// 1-based document number in the file.
        index: usize,
        /// What is wrong, with the field when known.
        detail: String,
    },
    /// Two documents declare the same resource.
    #[error("{kind} {namespace}/{name} is declared twice ({first} and {second})")]
    Duplicate {
        /// Kind.
        kind: String,
        /// Namespace.
        namespace: String,
        /// Name.
        name: String,
        /// Where it was first.
        first: String,
        /// Where it was again.
        second: String,
    },
}

/// Everything the files declare, with the namespace defaulted.
#[derive(Debug, Default, Clone)]
pub struct Manifests {
    /// FortiGate connections.
    pub fortigates: Vec<FortiGate>,
    /// FortiManager connections.
    pub fortimanagers: Vec<FortiManager>,
    /// Address groups.
    pub address_groups: Vec<AddressGroup>,
    /// External connectors (IP lists).
    pub external_connectors: Vec<ExternalConnector>,
    /// Trusted-host slots.
    pub trusted_hosts: Vec<TrustedHost>,
    /// ConfigMaps (entries of external connectors).
    pub config_maps: Vec<ConfigMap>,
    /// Secrets (credentials and CA bundles).
    pub secrets: Vec<Secret>,
    /// Documents of other kinds, or no Kubernetes manifests at all, skipped (kind, name, origin).
    pub skipped: Vec<(String, String, String)>,
    seen: BTreeMap<(String, String, String), String>,
}

#[derive(Deserialize)]
struct Head {
    #[serde(default, rename = "apiVersion")]
    api_version: String,
    #[serde(default)]
    kind: String,
}

impl Manifests {
    /// Loads files and directories (every `*.yaml`, `*.yml`, `*.json` in a directory, sorted,
    /// not recursive); `namespace` is used where a document names none.
    pub fn load(paths: &[PathBuf], namespace: &str) -> Result<Self, LoadError> {
        let mut out = Self::default();
        for path in paths {
            for file in files(path)? {
                let text = std::fs::read_to_string(&file).map_err(|source| LoadError::Io {
                    path: file.display().to_string(),
                    source,
                })?;
                out.add(&text, &file.display().to_string(), namespace)?;
            }
        }
        Ok(out)
    }

    /// Adds the documents of one multi-document text.
    pub fn add(&mut self, text: &str, origin: &str, namespace: &str) -> Result<(), LoadError> {
        // Documents are numbered as read, empty ones left out (as kubectl skips them).
        for (i, doc) in crate::yaml::documents(text).into_iter().enumerate() {
            let index = i + 1;
            let invalid = |detail: String| LoadError::Invalid {
                origin: origin.to_string(),
                index,
                detail,
            };
            let value = doc.map_err(|e| invalid(e.to_string()))?;
            if value.is_null() {
                continue;
            }
            let head = Head::deserialize(&value).map_err(|e| invalid(e.to_string()))?;
            let at = format!("{origin} (document {index})");
            match (head.api_version.as_str(), head.kind.as_str()) {
                ("fortisync.dev/v1alpha1", "FortiGate") => {
                    let mut o: FortiGate = typed(value, &invalid)?;
                    admitted(validate_fortigate(&o.spec), &invalid)?;
                    self.place(&mut o.metadata, "FortiGate", namespace, &at)?;
                    self.fortigates.push(o);
                }
                ("fortisync.dev/v1alpha1", "FortiManager") => {
                    let mut o: FortiManager = typed(value, &invalid)?;
                    admitted(validate_fortimanager(&o.spec), &invalid)?;
                    self.place(&mut o.metadata, "FortiManager", namespace, &at)?;
                    self.fortimanagers.push(o);
                }
                ("fortisync.dev/v1alpha1", "AddressGroup") => {
                    let mut o: AddressGroup = typed(value, &invalid)?;
                    self.place(&mut o.metadata, "AddressGroup", namespace, &at)?;
                    self.address_groups.push(o);
                }
                ("fortisync.dev/v1alpha1", "ExternalConnector") => {
                    let mut o: ExternalConnector = typed(value, &invalid)?;
                    admitted(validate_external_connector(&o.spec), &invalid)?;
                    self.place(&mut o.metadata, "ExternalConnector", namespace, &at)?;
                    self.external_connectors.push(o);
                }
                ("fortisync.dev/v1alpha1", "TrustedHost") => {
                    let mut o: TrustedHost = typed(value, &invalid)?;
                    admitted(validate_trustedhost(&o.spec), &invalid)?;
                    self.place(&mut o.metadata, "TrustedHost", namespace, &at)?;
                    self.trusted_hosts.push(o);
                }
                ("v1", "ConfigMap") => {
                    let mut o: ConfigMap = typed(value, &invalid)?;
                    self.place(&mut o.metadata, "ConfigMap", namespace, &at)?;
                    self.config_maps.push(o);
                }
                ("v1", "Secret") => {
                    let mut o: Secret = typed(value, &invalid)?;
                    self.place(&mut o.metadata, "Secret", namespace, &at)?;
                    self.secrets.push(o);
                }
                // Not a Kubernetes manifest (a simulator scenario beside the examples, say).
                ("", _) | (_, "") => {
                    self.skipped.push((
                        "a document without apiVersion/kind".into(),
                        String::new(),
                        at,
                    ));
                }
                (_, kind) => {
                    let name = value["metadata"]["name"].as_str().unwrap_or("").to_string();
                    self.skipped.push((kind.to_string(), name, at));
                }
            }
        }
        Ok(())
    }

    fn place(
        &mut self,
        meta: &mut kube::api::ObjectMeta,
        kind: &str,
        namespace: &str,
        at: &str,
    ) -> Result<(), LoadError> {
        let ns = meta
            .namespace
            .get_or_insert_with(|| namespace.to_string())
            .clone();
        let name = meta.name.clone().unwrap_or_default();
        let key = (kind.to_string(), ns.clone(), name.clone());
        if let Some(first) = self.seen.get(&key) {
            return Err(LoadError::Duplicate {
                kind: kind.to_string(),
                namespace: ns,
                name,
                first: first.clone(),
                second: at.to_string(),
            });
        }
        self.seen.insert(key, at.to_string());
        Ok(())
    }

    /// The connection `target` names in `namespace`, with its credentials resolved from the
    /// Secret manifests, then `secrets_dir/<secret>/<key>`, then the environment variable
    /// `FORTISYNC_SECRET_<SECRET>_<KEY>` (upper case, `-` and `.` as `_`).
    pub fn resolve(
        &self,
        namespace: &str,
        target: &TargetRef,
        secrets_dir: Option<&Path>,
    ) -> Result<ResolvedConnection, ResolveError> {
        let connection = match target.kind {
            TargetKind::FortiGate => self
                .fortigates
                .iter()
                .find(|f| {
                    f.namespace().as_deref() == Some(namespace) && f.name_any() == target.name
                })
                .map(|f| Connection::of_fortigate(&f.spec)),
            TargetKind::FortiManager => self
                .fortimanagers
                .iter()
                .find(|f| {
                    f.namespace().as_deref() == Some(namespace) && f.name_any() == target.name
                })
                .map(|f| Connection::of_fortimanager(&f.spec)),
        }
        .ok_or_else(|| ResolveError::TargetNotFound {
            kind: target.kind,
            namespace: namespace.to_string(),
            name: target.name.clone(),
        })?;
        let keys: Vec<String> = secret_keys(&connection);
        assemble(namespace, target, connection, |name| {
            self.secret(namespace, name, &keys, secrets_dir)
        })
    }

    /// Secret `name` of `namespace`: its manifest, else the `keys` read from `secrets_dir` or
    /// the environment (see [`Manifests::resolve`]).
    pub fn secret(
        &self,
        namespace: &str,
        name: &str,
        keys: &[String],
        secrets_dir: Option<&Path>,
    ) -> Option<Secret> {
        if let Some(s) = self
            .secrets
            .iter()
            .find(|s| s.namespace().as_deref() == Some(namespace) && s.name_any() == name)
        {
            return Some(s.clone());
        }
        let mut data = BTreeMap::new();
        for key in keys {
            let from_dir = secrets_dir
                .map(|d| d.join(name).join(key))
                .and_then(|p| std::fs::read(p).ok());
            let from_env = || {
                std::env::var(env_name(name, key))
                    .ok()
                    .map(String::into_bytes)
            };
            if let Some(bytes) = from_dir.or_else(from_env) {
                data.insert(key.clone(), ByteString(bytes));
            }
        }
        (!data.is_empty()).then(|| Secret {
            data: Some(data),
            ..Secret::default()
        })
    }
}

/// Every Secret key a connection may read.
fn secret_keys(c: &Connection) -> Vec<String> {
    let r = &c.spec.credentials_secret_ref;
    let mut keys: Vec<String> = [&r.token_key, &r.username_key, &r.password_key]
        .into_iter()
        .flatten()
        .cloned()
        .collect();
    if keys.is_empty() {
        keys.push("token".into());
    }
    if let Some(ca) = &c.spec.tls.ca_bundle_secret_ref {
        keys.push(ca.key.clone());
    }
    keys
}

/// The environment variable that stands in for a Secret key.
pub fn env_name(secret: &str, key: &str) -> String {
    format!("FORTISYNC_SECRET_{secret}_{key}")
        .to_uppercase()
        .replace(['-', '.'], "_")
}

fn typed<T: serde::de::DeserializeOwned>(
    value: serde_json::Value,
    invalid: &dyn Fn(String) -> LoadError,
) -> Result<T, LoadError> {
    // serde_path_to_error is not a dependency; serde's message names the field.
    serde_json::from_value(value).map_err(|e| invalid(e.to_string()))
}

/// Refuses a connection the API server would refuse at admission; before anything reads the
/// Secrets it names (its names become paths under `--secrets-dir`).
fn admitted(problems: Vec<String>, invalid: &dyn Fn(String) -> LoadError) -> Result<(), LoadError> {
    match problems.is_empty() {
        true => Ok(()),
        false => Err(invalid(problems.join("; "))),
    }
}

fn files(path: &Path) -> Result<Vec<PathBuf>, LoadError> {
    let io = |source| LoadError::Io {
        path: path.display().to_string(),
        source,
    };
    if path.is_dir() {
        let mut out: Vec<PathBuf> = std::fs::read_dir(path)
            .map_err(io)?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| {
                p.is_file()
                    && matches!(
                        p.extension().and_then(|e| e.to_str()),
                        Some("yaml" | "yml" | "json")
                    )
            })
            .collect();
        out.sort();
        Ok(out)
    } else {
        std::fs::metadata(path).map_err(io)?;
        Ok(vec![path.to_path_buf()])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ESTATE: &str = r#"
apiVersion: v1
kind: Secret
metadata: {name: fw-token}
stringData: {token: abc}
---
apiVersion: fortisync.dev/v1alpha1
kind: FortiGate
metadata: {name: fw}
spec:
  url: https://127.0.0.1:8443
  credentialsSecretRef: {name: fw-token, tokenKey: token}
---
apiVersion: fortisync.dev/v1alpha1
kind: AddressGroup
metadata: {name: admins, namespace: team-a}
spec:
  targetRef: {kind: FortiGate, name: fw}
  groupName: allowed-admins
  members: [{address: 192.0.2.10}]
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: other}
"#;

    #[test]
    fn documents_are_sorted_by_kind_and_namespaced() {
        let mut m = Manifests::default();
        m.add(ESTATE, "estate.yaml", "default").expect("load");
        assert_eq!(m.fortigates.len(), 1);
        assert_eq!(m.fortigates[0].namespace().as_deref(), Some("default"));
        assert_eq!(m.address_groups[0].namespace().as_deref(), Some("team-a"));
        assert_eq!(m.secrets.len(), 1);
        assert_eq!(m.skipped[0].0, "Deployment");
    }

    #[test]
    fn credentials_come_from_the_secret_manifest() {
        let mut m = Manifests::default();
        m.add(ESTATE, "estate.yaml", "default").expect("load");
        let target = TargetRef {
            kind: TargetKind::FortiGate,
            name: "fw".into(),
        };
        let r = m.resolve("default", &target, None).expect("resolve");
        assert_eq!(
            r.credentials,
            crate::device::Credentials::Token("abc".into())
        );
        let missing = m
            .resolve("team-a", &target, None)
            .expect_err("other namespace");
        assert_eq!(missing.reason(), "TargetNotFound");
    }

    #[test]
    fn a_bad_document_names_the_file_the_document_and_the_field() {
        let mut m = Manifests::default();
        let bad = "apiVersion: fortisync.dev/v1alpha1\nkind: AddressGroup\nmetadata: {name: x}\nspec:\n  groupName: g\n";
        let err = m
            .add(bad, "bad.yaml", "default")
            .expect_err("missing targetRef");
        let text = err.to_string();
        assert!(text.starts_with("bad.yaml: document 1:"), "{text}");
        assert!(text.contains("targetRef"), "{text}");
    }

    #[test]
    fn a_resource_declared_twice_is_refused() {
        let mut m = Manifests::default();
        m.add(ESTATE, "a.yaml", "default").expect("first");
        let err = m.add(ESTATE, "b.yaml", "default").expect_err("twice");
        assert!(err.to_string().contains("declared twice"), "{err}");
    }

    #[test]
    fn env_names_are_upper_case_with_underscores() {
        assert_eq!(
            env_name("fw-token", "ca.crt"),
            "FORTISYNC_SECRET_FW_TOKEN_CA_CRT"
        );
    }
}
