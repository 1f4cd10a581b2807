//! Types shared by the kinds: connection settings, secret references, error reports.

use kube::KubeSchema;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// CEL rule: a Secret name is a DNS-1123 subdomain (what the API server demands of Secret
/// names). Besides refusing names no Secret can have, it keeps `..` and `/` out of the paths
/// `fortisync plan --secrets-dir` reads (`<dir>/<name>/<key>`).
pub const SECRET_NAME_RULE: &str =
    "self.matches('^[a-z0-9]([-a-z0-9]*[a-z0-9])?([.][a-z0-9]([-a-z0-9]*[a-z0-9])?)*$')";
/// Refusal: not a Secret name.
pub const SECRET_NAME_MESSAGE: &str = "must be a Secret name (a DNS-1123 subdomain): lower-case letters, digits, '-' and '.', starting and ending with a letter or digit";
/// CEL rule: a Secret key is what the API server allows as a Secret data key (`.`-only and
/// `..`-prefixed keys are refused there too, and they are path steps for `--secrets-dir`).
pub const SECRET_KEY_RULE: &str =
    "self.matches('^[-._a-zA-Z0-9]+$') && self != '.' && !self.startsWith('..')";
/// Refusal: not a Secret key.
pub const SECRET_KEY_MESSAGE: &str =
    "must be a Secret key: letters, digits, '-', '_' and '.', not '.' and not starting with '..'";

/// A key in a Secret of the resource's own namespace.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct SecretKeyRef {
    /// Name of the Secret.
    #[x_kube(validation = Rule::new(SECRET_NAME_RULE).message(SECRET_NAME_MESSAGE))]
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
    /// Key inside the Secret.
    #[x_kube(validation = Rule::new(SECRET_KEY_RULE).message(SECRET_KEY_MESSAGE))]
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
    #[x_kube(validation = Rule::new(SECRET_NAME_RULE).message(SECRET_NAME_MESSAGE))]
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
    /// Key holding the REST API token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = Rule::new(SECRET_KEY_RULE).message(SECRET_KEY_MESSAGE))]
    #[schemars(length(min = 1, max = 253))]
    pub token_key: Option<String>,
    /// Key holding the admin user name (session login).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = Rule::new(SECRET_KEY_RULE).message(SECRET_KEY_MESSAGE))]
    #[schemars(length(min = 1, max = 253))]
    pub username_key: Option<String>,
    /// Key holding the admin password (session login).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = Rule::new(SECRET_KEY_RULE).message(SECRET_KEY_MESSAGE))]
    #[schemars(length(min = 1, max = 253))]
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

/// CEL rule (on the connection spec): an explicit `maxConcurrentRequests` stays below
/// `lockout.threshold`, or is 1 (the least that can work) when the threshold is 1.
pub const MAX_CONCURRENT_RULE: &str = "!has(self.maxConcurrentRequests) || self.maxConcurrentRequests < self.lockout.threshold || self.maxConcurrentRequests == 1";
/// Refusal: more requests in flight than failures the device tolerates.
pub const MAX_CONCURRENT_MESSAGE: &str = "spec.maxConcurrentRequests must be below spec.lockout.threshold (or 1), so requests in flight with a revoked key cannot lock the source address out";

/// How to reach one device: shared by `FortiGate` and `FortiManager`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new(MAX_CONCURRENT_RULE).message(MAX_CONCURRENT_MESSAGE).field_path(".maxConcurrentRequests"))]
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
    /// Requests in flight to this device at most (1-32), below `lockout.threshold` (1 when the
    /// threshold is 1), so a key revoked while requests are in flight cannot fail often enough
    /// to lock the IP out. Unset: 4, lowered to `lockout.threshold - 1`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 32))]
    pub max_concurrent_requests: Option<u32>,
    /// The device's lockout settings, so fortisync never reaches them.
    #[serde(default)]
    pub lockout: LockoutSpec,
    /// How often converged resources are re-read to catch out-of-band changes (jittered).
    #[serde(default = "default_resync")]
    #[x_kube(validation = Rule::new(RESYNC_INTERVAL_RULE).message("spec.resyncInterval must be a duration between 10s and 24h, such as 5m"))]
    #[schemars(length(max = 32))]
    pub resync_interval: String,
}

/// Requests in flight when `maxConcurrentRequests` is unset (and the threshold allows it).
pub const DEFAULT_MAX_CONCURRENT: u32 = 4;

fn default_resync() -> String {
    "5m".to_string()
}

impl ConnectionSpec {
    /// Requests in flight at most: the explicit setting, else the default lowered below the
    /// lockout threshold (never below 1).
    pub fn max_concurrent(&self) -> u32 {
        self.max_concurrent_requests.unwrap_or_else(|| {
            DEFAULT_MAX_CONCURRENT
                .min(self.lockout.threshold.saturating_sub(1))
                .max(1)
        })
    }

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

    #[test]
    fn unset_concurrency_stays_below_the_lockout_threshold() {
        let at = |lockout: u32| {
            connection(serde_json::json!({"lockout": {"threshold": lockout}})).max_concurrent()
        };
        assert_eq!(at(10), 4);
        assert_eq!(at(3), 2);
        assert_eq!(at(2), 1);
        assert_eq!(at(1), 1);
        let explicit = connection(
            serde_json::json!({"maxConcurrentRequests": 7, "lockout": {"threshold": 10}}),
        );
        assert_eq!(explicit.max_concurrent(), 7);
    }
}
