//! `DevicePolicy` (cluster-scoped): which namespaces may manage what on a device. Platform
//! teams own it (like cert-manager's ClusterIssuer); a device no policy names stays open to
//! every namespace, as before.

use kube::{CustomResource, KubeSchema};
use serde::{Deserialize, Serialize};

/// Who may manage a device, and which device names each namespace may use.
#[derive(CustomResource, Debug, Clone, PartialEq, Eq, Serialize, Deserialize, KubeSchema)]
#[kube(
    group = "fortisync.dev",
    version = "v1alpha1",
    kind = "DevicePolicy",
    shortname = "fsdp",
    category = "fortisync",
    printcolumn = r#"{"name":"DEVICES","type":"string","jsonPath":".spec.devices"}"#,
    printcolumn = r#"{"name":"AGE","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct DevicePolicySpec {
    /// The devices it governs, as connections name them: `https://host:port` (path ignored).
    #[schemars(length(min = 1, max = 64))]
    pub devices: Vec<String>,
    /// The namespaces allowed; any other namespace may not even connect to these devices.
    #[serde(default)]
    #[schemars(length(max = 256))]
    pub namespaces: Vec<NamespaceGrant>,
}

/// What one namespace may manage.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct NamespaceGrant {
    /// The namespace.
    #[schemars(length(min = 1, max = 63))]
    pub namespace: String,
    /// Device object names it may manage (AddressGroup `groupName`, ExternalConnector
    /// `resourceName`, TrustedHost `user`): exact names, or a prefix ending in `*`. Empty =
    /// any name.
    #[serde(default)]
    #[schemars(length(max = 64))]
    pub names: Vec<String>,
}

/// The verdict of the policies on one namespace and device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// No policy names the device, or one grants the namespace (with these name patterns;
    /// empty = any).
    Allowed(Vec<String>),
    /// A policy names the device and none grants this namespace.
    Denied {
        /// The policies that name the device.
        policies: Vec<String>,
    },
}

/// `scheme://host:port` of a URL, lower-cased, the way policies and connections are compared.
pub fn device_key(url: &str) -> String {
    let trimmed = url.trim().to_ascii_lowercase();
    let (scheme, rest) = trimmed.split_once("://").unwrap_or(("https", &trimmed));
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let authority = if authority.contains(':') && !authority.ends_with(']') {
        authority.to_string()
    } else {
        format!("{authority}:443")
    };
    format!("{scheme}://{authority}")
}

/// What `policies` say about `namespace` on the device at `url` (pure).
pub fn verdict<'a>(
    policies: impl IntoIterator<Item = (&'a str, &'a DevicePolicySpec)>,
    namespace: &str,
    url: &str,
) -> Verdict {
    let device = device_key(url);
    let mut naming = Vec::new();
    let mut names: Option<Vec<String>> = None;
    for (name, spec) in policies {
        if !spec.devices.iter().any(|d| device_key(d) == device) {
            continue;
        }
        naming.push(name.to_string());
        for grant in spec.namespaces.iter().filter(|g| g.namespace == namespace) {
            let granted = names.get_or_insert_with(Vec::new);
            if grant.names.is_empty() {
                granted.push("*".into());
            }
            granted.extend(grant.names.iter().cloned());
        }
    }
    match (naming.is_empty(), names) {
        (true, _) => Verdict::Allowed(Vec::new()),
        (false, Some(names)) => Verdict::Allowed(names),
        (false, None) => Verdict::Denied { policies: naming },
    }
}

/// Whether `name` matches one of `patterns` (exact, or a prefix ending in `*`; none = any).
pub fn name_allowed(patterns: &[String], name: &str) -> bool {
    patterns.is_empty()
        || patterns.iter().any(|p| match p.strip_suffix('*') {
            Some(prefix) => name.starts_with(prefix),
            None => p == name,
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(devices: &[&str], grants: &[(&str, &[&str])]) -> DevicePolicySpec {
        DevicePolicySpec {
            devices: devices.iter().map(|d| d.to_string()).collect(),
            namespaces: grants
                .iter()
                .map(|(ns, names)| NamespaceGrant {
                    namespace: ns.to_string(),
                    names: names.iter().map(|n| n.to_string()).collect(),
                })
                .collect(),
        }
    }

    #[test]
    fn a_device_no_policy_names_is_open_and_a_named_one_admits_only_its_namespaces() {
        let p = policy(
            &["https://FW.example.com:8443/"],
            &[("team-a", &["team-a-*"])],
        );
        let policies = [("edge", &p)];
        assert_eq!(
            verdict(policies, "team-b", "https://other.example.com"),
            Verdict::Allowed(vec![])
        );
        assert_eq!(
            verdict(policies, "team-a", "https://fw.example.com:8443"),
            Verdict::Allowed(vec!["team-a-*".into()])
        );
        assert_eq!(
            verdict(policies, "team-b", "https://fw.example.com:8443/api"),
            Verdict::Denied {
                policies: vec!["edge".into()]
            }
        );
        assert_eq!(
            device_key("https://fw.example.com"),
            "https://fw.example.com:443"
        );
    }

    #[test]
    fn names_match_exactly_or_by_prefix() {
        let patterns = vec!["team-a-*".to_string(), "shared-admins".to_string()];
        assert!(name_allowed(&patterns, "team-a-web"));
        assert!(name_allowed(&patterns, "shared-admins"));
        assert!(!name_allowed(&patterns, "shared-admins-2"));
        assert!(!name_allowed(&patterns, "team-b-web"));
        assert!(name_allowed(&[], "anything"));
        assert!(name_allowed(&["*".to_string()], "anything"));
    }
}
