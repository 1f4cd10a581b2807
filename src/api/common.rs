//! Types shared by the kinds: connection settings, secret references, error reports.

use kube::KubeSchema;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// A key in a Secret of the resource's own namespace.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SecretKeyRef {
    /// Name of the Secret.
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
    /// Key inside the Secret.
    #[schemars(length(min = 1, max = 253))]
    pub key: String,
}

/// Where the device credentials live: an API token (preferred: no session, no CSRF) or a
/// username and password for devices that need a session login.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("has(self.tokenKey) != (has(self.usernameKey) || has(self.passwordKey))").message("credentialsSecretRef: set either tokenKey, or usernameKey and passwordKey"))]
#[x_kube(validation = Rule::new("has(self.usernameKey) == has(self.passwordKey)").message("credentialsSecretRef: usernameKey and passwordKey go together"))]
pub struct CredentialsSecretRef {
    /// Name of the Secret in the resource's namespace.
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
    /// Key holding the REST API token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_key: Option<String>,
    /// Key holding the admin user name (session login).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username_key: Option<String>,
    /// Key holding the admin password (session login).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password_key: Option<String>,
}

/// TLS settings of a device connection. Verification is on unless explicitly disabled.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TlsSpec {
    /// PEM CA bundle that signs the device certificate (self-signed or private CA).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_bundle_secret_ref: Option<SecretKeyRef>,
    /// Skip certificate verification. Last resort: anyone on the path can read the API token.
    #[serde(default)]
    pub insecure_skip_verify: bool,
}

/// The device's admin lockout settings as configured on it, so fortisync stays below them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct LockoutSpec {
    /// `admin-lockout-threshold` (1–10, FortiOS default 3).
    #[serde(default = "default_threshold")]
    #[schemars(range(min = 1, max = 10))]
    pub threshold: u32,
    /// `admin-lockout-duration` in seconds (FortiOS default 60; doubles on repeat API lockouts).
    #[serde(default = "default_duration")]
    #[schemars(range(min = 1, max = 86400))]
    pub duration_seconds: u32,
}

impl Default for LockoutSpec {
    fn default() -> Self {
        Self {
            threshold: default_threshold(),
            duration_seconds: default_duration(),
        }
    }
}

fn default_threshold() -> u32 {
    3
}
fn default_duration() -> u32 {
    60
}

/// The state of a device's lockout breaker.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum BreakerState {
    /// Requests flow.
    Closed,
    /// The device locked us out: no requests until the window passes.
    Open,
    /// One probe is allowed to test whether the lockout is over.
    HalfOpen,
}

/// A failure as an admin should read it: stable reason, what happened, what to do.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ErrorReport {
    /// Stable reason (e.g. `Unauthorized`, `LockedOut`), also used as metrics label and event reason.
    pub reason: String,
    /// What happened, with the device and path.
    pub message: String,
    /// What an admin can do about it.
    pub remedy: String,
}

/// CEL rule: a Go duration between 10 s and 24 h, such as `30s`, `5m` or `1h30m`.
pub const RESYNC_INTERVAL_RULE: &str = "self.matches('^([0-9]+(ms|s|m|h))+$') && duration(self) >= duration('10s') && duration(self) <= duration('24h')";

/// How to reach one device: shared by `FortiGate` and `FortiManager`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct ConnectionSpec {
    /// HTTPS URL of the device's admin interface, port included when not 443
    /// (`System > Settings > Administration Settings > HTTPS port`).
    #[x_kube(validation = Rule::new("isURL(self) && url(self).getScheme() == 'https' && url(self).getHostname() != ''").message("spec.url must be an https:// URL such as https://fw.example.com:8443"))]
    #[schemars(length(max = 2048))]
    pub url: String,
    /// Secret with the API token (or username and password).
    pub credentials_secret_ref: CredentialsSecretRef,
    /// TLS verification settings.
    #[serde(default)]
    pub tls: TlsSpec,
    /// Local address to send from (the address the device's trusted hosts must allow).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = Rule::new("isIP(self)").message("spec.sourceAddress must be an IPv4 or IPv6 address"))]
    #[schemars(length(max = 64))]
    pub source_address: Option<String>,
    /// Requests in flight to this device at most; never more than `lockout.threshold - 1`, so a
    /// key revoked while requests are in flight cannot fail often enough to lock the IP out.
    #[serde(default = "default_max_concurrent")]
    #[schemars(range(min = 1, max = 32))]
    pub max_concurrent_requests: u32,
    /// The device's lockout settings, so fortisync never reaches them.
    #[serde(default)]
    pub lockout: LockoutSpec,
    /// How often converged resources are re-read to catch out-of-band changes (jittered).
    #[serde(default = "default_resync")]
    #[x_kube(validation = Rule::new(RESYNC_INTERVAL_RULE).message("spec.resyncInterval must be a duration between 10s and 24h, such as 5m"))]
    #[schemars(length(max = 32))]
    pub resync_interval: String,
}

fn default_max_concurrent() -> u32 {
    4
}
fn default_resync() -> String {
    "5m".to_string()
}

impl ConnectionSpec {
    /// The resync interval as a duration, parsed as Go (and the API server's `duration()`)
    /// parse it; None when it does not parse or is negative (admission refuses both).
    pub fn resync_period(&self) -> Option<std::time::Duration> {
        parse_go_duration(&self.resync_interval)
    }
}

/// A Go duration (`90s`, `5m`, `1h30m`) via `kube::core::Duration`; None when it does not
/// parse or is negative.
pub fn parse_go_duration(text: &str) -> Option<std::time::Duration> {
    // kube's parser reads "" as zero; Go (and so the API server) refuses it.
    if text.is_empty() {
        return None;
    }
    let parsed: kube::core::Duration = text.parse().ok()?;
    (!parsed.is_negative()).then(|| parsed.into())
}

/// Observed state of a device connection.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ConnectionStatus {
    /// The generation the status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// Whether the last request reached the device and was authorised.
    #[serde(default)]
    pub reachable: bool,
    /// Firmware version reported by the device, e.g. `v7.4.3`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// Serial number reported by the device.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub serial: Option<String>,
    /// Lockout breaker state for this device.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub breaker: Option<BreakerState>,
    /// The last failure, with its remedy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<ErrorReport>,
    /// `Ready` condition.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn connection(extra: serde_json::Value) -> ConnectionSpec {
        let mut spec = serde_json::json!({
            "url": "https://fw.example.com",
            "credentialsSecretRef": {"name": "fw", "tokenKey": "token"},
        });
        spec.as_object_mut()
            .expect("object")
            .extend(extra.as_object().expect("object").clone());
        serde_json::from_value(spec).expect("connection spec")
    }

    #[test]
    fn durations_parse_like_go() {
        assert_eq!(parse_go_duration("30s"), Some(Duration::from_secs(30)));
        assert_eq!(parse_go_duration("5m"), Some(Duration::from_secs(300)));
        assert_eq!(parse_go_duration("300s"), Some(Duration::from_secs(300)));
        assert_eq!(parse_go_duration("1h30m"), Some(Duration::from_secs(5400)));
        assert_eq!(parse_go_duration("250ms"), Some(Duration::from_millis(250)));
        for bad in ["", "5", "m", "5d", "-5m", "5 m"] {
            assert_eq!(parse_go_duration(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn the_resync_period_is_the_parsed_interval() {
        let spec = connection(serde_json::json!({"resyncInterval": "1h30m"}));
        assert_eq!(spec.resync_period(), Some(Duration::from_secs(5400)));
        assert_eq!(
            connection(serde_json::json!({})).resync_period(),
            Some(Duration::from_secs(300))
        );
    }
}
