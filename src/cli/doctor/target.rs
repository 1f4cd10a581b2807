//! What to check, from manifests (`-f`, resolved exactly as `plan`/`apply` resolve them) or
//! from flags (`--url`, `--token-file`, ...); flags given with manifests override them.

use std::time::Duration;

use kube::ResourceExt;

use super::feeds::FeedCheck;
use super::slots::UserCheck;
use super::{DoctorArgs, Target};
use crate::api::addressgroup::{TargetKind, TargetRef};
use crate::cli::load::Manifests;
use crate::cli::secure::require_https;
use crate::device::{Credentials, DeviceKind, EndpointConfig, LockoutPolicy, TransportConfig};
use crate::reconcile::connection::endpoint_config;

/// Why doctor cannot tell what to check.
#[derive(Debug, thiserror::Error)]
pub enum TargetError {
    /// Neither manifests nor a URL.
    #[error("give the connection with -f <manifests> or with --url and --token-file")]
    Nothing,
    /// A file could not be read.
    #[error("{path}: {detail}")]
    File {
        /// Path.
        path: String,
        /// What went wrong.
        detail: String,
    },
    /// The manifests could not be loaded or resolved.
    #[error("{0}")]
    Manifests(String),
    /// No connection, or several, match.
    #[error("{0}")]
    Choice(String),
    /// The URL is not https:// (the credential would cross in cleartext).
    #[error("{0}; {remedy}", remedy = crate::cli::secure::HTTPS_REMEDY)]
    Url(String),
}

fn read(path: &std::path::Path) -> Result<String, TargetError> {
    std::fs::read_to_string(path).map_err(|e| TargetError::File {
        path: path.display().to_string(),
        detail: e.to_string(),
    })
}

/// Builds the target from the command line.
pub fn from_args(args: &DoctorArgs) -> Result<Target, TargetError> {
    let (mut endpoint, feeds, users) = if !args.files.is_empty() {
        from_manifests(args)?
    } else if let Some(url) = &args.url {
        (from_flags(args, url)?, Vec::new(), Vec::new())
    } else {
        return Err(TargetError::Nothing);
    };
    if let Some(scope) = match endpoint.kind {
        DeviceKind::FortiGate => &args.vdom,
        DeviceKind::FortiManager => &args.adom,
    } {
        endpoint.scope = scope.clone();
    }
    if let Some(ca) = &args.ca_file {
        endpoint.transport.ca_bundle_pem = Some(read(ca)?);
    }
    if args.insecure_skip_verify {
        endpoint.transport.insecure_skip_verify = true;
    }
    if let Some(ip) = args.source_address {
        endpoint.transport.source_address = Some(ip);
    }
    endpoint.transport.timeout = Duration::from_secs(args.timeout_seconds.max(1));
    endpoint.max_concurrent = 1;
    Ok(Target {
        endpoint,
        admin_user: args.admin_user.clone(),
        feeds,
        users,
    })
}

fn from_flags(args: &DoctorArgs, url: &str) -> Result<EndpointConfig, TargetError> {
    require_https("--url", url).map_err(TargetError::Url)?;
    let token_file = args.token_file.as_ref().ok_or(TargetError::Nothing)?;
    let token = read(token_file)?.trim().to_string();
    if token.is_empty() {
        return Err(TargetError::File {
            path: token_file.display().to_string(),
            detail: "the token file is empty".into(),
        });
    }
    let kind = args.kind.map_or(DeviceKind::FortiGate, Into::into);
    let host = url::Url::parse(url)
        .ok()
        .and_then(|u| u.host_str().map(str::to_string))
        .unwrap_or_else(|| url.to_string());
    Ok(EndpointConfig {
        kind,
        name: host,
        url: url.trim_end_matches('/').to_string(),
        scope: "root".into(),
        credentials: Credentials::Token(token),
        transport: TransportConfig::default(),
        max_concurrent: 1,
        lockout: LockoutPolicy::default(),
        lock_retries: 0,
    })
}

type FromManifests = (EndpointConfig, Vec<FeedCheck>, Vec<UserCheck>);

fn from_manifests(args: &DoctorArgs) -> Result<FromManifests, TargetError> {
    let manifests = Manifests::load(&args.files, &args.namespace)
        .map_err(|e| TargetError::Manifests(e.to_string()))?;
    let mut candidates: Vec<(TargetKind, String, String)> = manifests
        .fortigates
        .iter()
        .map(|f| {
            (
                TargetKind::FortiGate,
                f.namespace().unwrap_or_default(),
                f.name_any(),
            )
        })
        .chain(manifests.fortimanagers.iter().map(|f| {
            (
                TargetKind::FortiManager,
                f.namespace().unwrap_or_default(),
                f.name_any(),
            )
        }))
        .collect();
    if let Some(kind) = args.kind {
        let want = match kind {
            super::KindArg::Fortigate => TargetKind::FortiGate,
            super::KindArg::Fortimanager => TargetKind::FortiManager,
        };
        candidates.retain(|(k, _, _)| *k == want);
    }
    if let Some(name) = &args.name {
        candidates.retain(|(_, _, n)| n == name);
    }
    let listed = |c: &[(TargetKind, String, String)]| {
        c.iter()
            .map(|(k, ns, n)| format!("{k:?} {ns}/{n}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let (kind, namespace, name) = match candidates.as_slice() {
        [one] => one.clone(),
        [] => {
            return Err(TargetError::Choice(
                "the manifests hold no FortiGate or FortiManager matching --name / --kind".into(),
            ));
        }
        many => {
            return Err(TargetError::Choice(format!(
                "the manifests hold several connections ({}); pick one with --name (and --kind)",
                listed(many)
            )));
        }
    };
    let target = TargetRef { kind, name };
    let resolved = manifests
        .resolve(&namespace, &target, args.secrets_dir.as_deref())
        .map_err(|e| TargetError::Manifests(format!("{e}; {}", e.remedy())))?;
    // As the CRD does, and before any request: the credential would cross in cleartext.
    require_https("spec.url", &resolved.connection.url).map_err(TargetError::Url)?;
    let endpoint = endpoint_config(&resolved).map_err(|e| TargetError::Manifests(e.to_string()))?;
    let mut feeds: Vec<FeedCheck> = manifests
        .external_connectors
        .iter()
        .filter(|ec| {
            ec.namespace().as_deref() == Some(namespace.as_str()) && ec.spec.target_ref == target
        })
        .map(|ec| FeedCheck {
            resource: format!("{namespace}/{}", ec.name_any()),
            resource_name: ec.spec.resource_name.clone(),
            mode: ec.spec.mode,
            owner: crate::model::Owner {
                namespace: namespace.clone(),
                name: ec.name_any(),
            },
        })
        .collect();
    feeds.sort_by(|a, b| a.resource_name.cmp(&b.resource_name));
    let hosts: Vec<_> = manifests
        .trusted_hosts
        .iter()
        .filter(|th| {
            th.namespace().as_deref() == Some(namespace.as_str()) && th.spec.target_ref == target
        })
        .collect();
    Ok((endpoint, feeds, super::slots::users(&hosts)))
}
