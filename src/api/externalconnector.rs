//! `ExternalConnector`: a FortiOS external resource (threat feed) of IP addresses, either polled
//! by the FortiGate from fortisync's EDL endpoint (`Feed`, Knocknoc's "Passive") or pushed by
//! fortisync through the dynamic API (`Push`, 7.2.1+, Knocknoc's "Passive+").

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::addressgroup::{DeletionPolicy, Member, TargetRef};
use super::common::{
    ErrorReport, SECRET_KEY_MESSAGE, SECRET_KEY_RULE, SECRET_NAME_MESSAGE, SECRET_NAME_RULE,
};

/// FortiOS limits an external resource's name to 35 characters.
pub const RESOURCE_NAME_MAX_LEN: usize = 35;
/// CEL rule: a VDOM's feed must not start with `g-` (the prefix global feeds must carry).
pub const RESOURCE_NAME_NOT_GLOBAL_RULE: &str = "!self.startsWith('g-')";
/// Refusal: a `g-` name in a VDOM.
pub const RESOURCE_NAME_NOT_GLOBAL_MESSAGE: &str = "spec.resourceName must not start with 'g-': FortiOS reserves that prefix for global feeds in multi-VDOM mode";
/// Inline entries at most; larger lists come from ConfigMaps (`entriesFrom`).
pub const MAX_INLINE_ENTRIES: usize = 1000;
/// CEL rule: `feed.url` parses as a URL with an http(s) scheme and a host (a prefix check alone
/// admitted `https://` and `https:///list`, which FortiOS would poll in vain).
pub const FEED_URL_RULE: &str =
    "isURL(self) && url(self).getScheme() in ['http', 'https'] && url(self).getHostname() != ''";
/// Refusal: `feed.url` is not an http(s) URL with a host.
pub const FEED_URL_MESSAGE: &str = "spec.feed.url must be an http:// or https:// URL with a host, such as https://edl.example.com/allow.txt";
/// Refusal: a ConfigMap key that the API server would not allow in a ConfigMap.
pub const CONFIG_MAP_KEY_MESSAGE: &str = "must be a ConfigMap key: letters, digits, '-', '_' and '.', not '.' and not starting with '..'";
/// Refusal: an object name that is no DNS-1123 subdomain.
pub const LOCAL_NAME_MESSAGE: &str =
    "must be a DNS-1123 subdomain name: lower-case letters, digits, '-' and '.'";
/// Refusal: an `entriesFrom` item naming both sources or none.
pub const ENTRY_SOURCE_MESSAGE: &str =
    "each spec.entriesFrom item names exactly one of configMapRef or addressGroupRef";

/// An IP list on a FortiGate (or the FortiGates behind a FortiManager ADOM).
#[derive(CustomResource, Debug, Clone, PartialEq, Serialize, Deserialize, KubeSchema)]
#[kube(
    group = "fortisync.dev",
    version = "v1alpha1",
    kind = "ExternalConnector",
    namespaced,
    status = "ExternalConnectorStatus",
    shortname = "fsec",
    category = "fortisync",
    printcolumn = r#"{"name":"RESOURCE","type":"string","jsonPath":".spec.resourceName"}"#,
    printcolumn = r#"{"name":"MODE","type":"string","jsonPath":".spec.mode"}"#,
    printcolumn = r#"{"name":"READY","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].status"}"#,
    printcolumn = r#"{"name":"ENTRIES","type":"integer","jsonPath":".status.entries.onDevice"}"#,
    printcolumn = r#"{"name":"TARGET","type":"string","jsonPath":".spec.targetRef.name"}"#,
    printcolumn = r#"{"name":"AGE","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new(DEVICE_TARGETS_KIND_RULE).message(DEVICE_TARGETS_KIND_MESSAGE))]
pub struct ExternalConnectorSpec {
    /// The FortiGate or FortiManager (same namespace) that holds the external resource.
    pub target_ref: TargetRef,
    /// Name of the external resource on the device.
    #[x_kube(validation = Rule::new("self.size() >= 1 && self.size() <= 35").message("spec.resourceName must be 1-35 characters (the FortiOS name limit)"))]
    #[x_kube(validation = Rule::new("!self.matches('[<>()#\"\\'/ ]')").message("spec.resourceName must not contain spaces or < > ( ) # \" ' / (refused by FortiOS)"))]
    #[x_kube(validation = Rule::new(RESOURCE_NAME_NOT_GLOBAL_RULE).message(RESOURCE_NAME_NOT_GLOBAL_MESSAGE))]
    #[schemars(length(max = 35))]
    pub resource_name: String,
    /// What the list holds: IP addresses, networks and ranges.
    #[serde(rename = "type", default)]
    pub type_: ConnectorType,
    /// Feed (the FortiGate polls fortisync) or Push (fortisync pushes, FortiOS 7.2.1+).
    pub mode: ConnectorMode,
    /// Entries declared here (the AddressGroup member model: address, expiresAt, comment).
    #[serde(default)]
    #[schemars(length(max = 1000))]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["address"]))]
    pub entries: Vec<Member>,
    /// Further entries from other objects of this namespace, each watched.
    #[serde(default)]
    #[schemars(length(max = 64))]
    pub entries_from: Vec<EntrySource>,
    /// Feed mode: how the FortiGate polls.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub feed: Option<FeedSpec>,
    /// What deleting the resource does on the device.
    #[serde(default)]
    pub deletion_policy: DeletionPolicy,
    /// Manage an external resource of this name that fortisync did not create.
    #[serde(default)]
    pub take_over: bool,
    /// FortiManager targets only: the managed FortiGates (FortiManager device names, each
    /// with an optional VDOM) that receive the list through `/sys/proxy/json`, besides the
    /// ADOM object. Empty: the FortiManager connection's own `deviceTargets`, which default to
    /// every FortiGate of the ADOM (its `All_FortiGate` group).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = MAX_DEVICE_TARGETS))]
    #[x_kube(validation = Rule::new(DEVICE_TARGETS_UNIQUE_RULE).message(DEVICE_TARGETS_UNIQUE_MESSAGE))]
    pub device_targets: Vec<ConnectorDeviceTarget>,
}

/// At most this many `spec.deviceTargets`.
pub const MAX_DEVICE_TARGETS: usize = 64;
/// CEL rule: `deviceTargets` only with a FortiManager target.
pub const DEVICE_TARGETS_KIND_RULE: &str = "!has(self.deviceTargets) || size(self.deviceTargets) == 0 || self.targetRef.kind == 'FortiManager'";
/// Refusal: `deviceTargets` on a FortiGate target.
pub const DEVICE_TARGETS_KIND_MESSAGE: &str = "spec.deviceTargets is only for a FortiManager targetRef: a FortiGate target is the device itself";
/// CEL rule: each device (and VDOM) is named once.
pub const DEVICE_TARGETS_UNIQUE_RULE: &str = "self.all(t, self.filter(u, u.name == t.name && (has(u.vdom) ? u.vdom : '') == (has(t.vdom) ? t.vdom : '')).size() == 1)";
/// Refusal: a device target named twice.
pub const DEVICE_TARGETS_UNIQUE_MESSAGE: &str =
    "spec.deviceTargets must name each device (and VDOM) once";

/// Refusal: a device target name FortiManager cannot have.
pub const DEVICE_TARGET_NAME_MESSAGE: &str =
    "spec.deviceTargets[].name must be a FortiManager device name: not empty, no '/'";
/// Refusal: a VDOM name FortiOS cannot have.
pub const DEVICE_TARGET_VDOM_MESSAGE: &str =
    "spec.deviceTargets[].vdom must be 1-31 characters of letters, digits, '_', '.', '-'";

/// One FortiGate behind the FortiManager.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct ConnectorDeviceTarget {
    /// The device name exactly as FortiManager shows it (what proxy targets use).
    #[x_kube(validation = Rule::new("self.size() >= 1 && !self.contains('/')").message(DEVICE_TARGET_NAME_MESSAGE))]
    #[schemars(length(max = 64))]
    pub name: String,
    /// The VDOM on that device (default: the device's management VDOM, as a request without
    /// `vdom` reaches).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = Rule::new("self.matches('^[A-Za-z0-9_.-]{1,31}$')").message(DEVICE_TARGET_VDOM_MESSAGE))]
    #[schemars(length(max = 31))]
    pub vdom: Option<String>,
}

/// The kind of list.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum ConnectorType {
    /// IPv4/IPv6 addresses, networks and ranges (FortiOS `type address`).
    #[default]
    Address,
}

/// How entries reach the device.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum ConnectorMode {
    /// The FortiGate polls fortisync's EDL endpoint; fortisync asks it to refresh on change.
    Feed,
    /// fortisync pushes entries with the dynamic API (FortiOS 7.2.1+).
    Push,
}

/// One source of entries.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("has(self.configMapRef) != has(self.addressGroupRef)").message(ENTRY_SOURCE_MESSAGE))]
pub struct EntrySource {
    /// A ConfigMap key holding one entry per line (`#` comments and blank lines skipped).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config_map_ref: Option<ConfigMapKeyRef>,
    /// The members of an AddressGroup of this namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address_group_ref: Option<LocalRef>,
}

/// A key of a ConfigMap in this namespace.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct ConfigMapKeyRef {
    /// ConfigMap name.
    #[x_kube(validation = Rule::new(SECRET_NAME_RULE).message(LOCAL_NAME_MESSAGE))]
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
    /// Key inside it (ConfigMap keys follow the Secret key rule).
    #[x_kube(validation = Rule::new(SECRET_KEY_RULE).message(CONFIG_MAP_KEY_MESSAGE))]
    #[schemars(length(min = 1, max = 253))]
    pub key: String,
}

/// An object of this namespace by name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct LocalRef {
    /// Its name.
    #[x_kube(validation = Rule::new(SECRET_NAME_RULE).message(LOCAL_NAME_MESSAGE))]
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
}

/// How the FortiGate polls the list in Feed mode.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct FeedSpec {
    /// Minutes between polls (FortiOS `refresh-rate`, 1-43200); fortisync also asks for a
    /// refresh on every change, so this only bounds how stale a missed refresh can leave it.
    #[serde(default = "default_refresh_rate")]
    #[schemars(range(min = 1, max = 43200))]
    pub refresh_rate: u32,
    /// The URL the FortiGate polls, as reachable from the firewall (default: the controller's
    /// `--edl-base-url` + `/edl/<namespace>/<name>`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = Rule::new(FEED_URL_RULE).message(FEED_URL_MESSAGE))]
    #[schemars(length(max = 511))]
    pub url: Option<String>,
    /// HTTP basic credentials the FortiGate sends and the EDL endpoint checks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credentials_secret_ref: Option<BasicAuthSecretRef>,
    /// How the FortiGate checks the EDL's certificate (FortiOS `server-identity-check`, where
    /// the firmware has it).
    #[serde(default)]
    pub server_identity_check: ServerIdentityCheck,
}

fn default_refresh_rate() -> u32 {
    5
}

impl Default for FeedSpec {
    fn default() -> Self {
        Self {
            refresh_rate: default_refresh_rate(),
            url: None,
            credentials_secret_ref: None,
            server_identity_check: ServerIdentityCheck::default(),
        }
    }
}

/// Keys of a Secret holding HTTP basic credentials.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct BasicAuthSecretRef {
    /// Secret name.
    #[x_kube(validation = Rule::new(SECRET_NAME_RULE).message(SECRET_NAME_MESSAGE))]
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
    /// Key of the user name.
    #[serde(default = "default_username_key")]
    #[x_kube(validation = Rule::new(SECRET_KEY_RULE).message(SECRET_KEY_MESSAGE))]
    #[schemars(length(min = 1, max = 253))]
    pub username_key: String,
    /// Key of the password.
    #[serde(default = "default_password_key")]
    #[x_kube(validation = Rule::new(SECRET_KEY_RULE).message(SECRET_KEY_MESSAGE))]
    #[schemars(length(min = 1, max = 253))]
    pub password_key: String,
}

fn default_username_key() -> String {
    "username".into()
}

fn default_password_key() -> String {
    "password".into()
}

/// FortiOS `server-identity-check`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum ServerIdentityCheck {
    /// Check the certificate chain and the host name.
    #[default]
    Full,
    /// Check the chain only.
    Basic,
    /// No check (plain HTTP behind a Service, or a lab).
    None,
}

/// Observed state of an `ExternalConnector`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ExternalConnectorStatus {
    /// The generation this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// `Ready`, `Synced`, and `PushDegraded` when a push failed but the feed will reconcile.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    /// Entry counts.
    #[serde(default)]
    pub entries: EntryCounts,
    /// What the device reports of its list (`entry-list`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device: Option<DeviceListStatus>,
    /// The URL the FortiGate polls (Feed mode).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub feed_url: Option<String>,
    /// The resourceVersion of the feed credentials Secret last written to the device (the
    /// device never reads a password back; a new version means it must be written again).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub feed_credentials_version: Option<String>,
    /// Out-of-band changes reverted so far.
    #[serde(default)]
    pub drift_repairs: u64,
    /// A digest of the declared list this status describes: tells an edit of the list (a
    /// ConfigMap that swaps entries, an expiry) from a change made on the device.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub list_digest: Option<String>,
    /// The nearest future entry expiry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_expiry: Option<Time>,
    /// FortiManager targets: each FortiGate the list is pushed to (or refreshed on).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub devices: Vec<ConnectorDeviceStatus>,
    /// The last failure, with its remedy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<ErrorReport>,
}

/// One FortiGate behind a FortiManager, after a pass.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ConnectorDeviceStatus {
    /// FortiManager device name.
    pub name: String,
    /// The VDOM, when the target names one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vdom: Option<String>,
    /// Whether the device holds the declared list.
    pub synced: bool,
    /// `Converged`, `Pending`, or why not: `UnknownDevice`, `Unreachable`, `PushFailed`,
    /// `DeviceError`, `FeedPullFailed`, `ResourceNotOwned`, `ResourceOwnedByAnother`,
    /// `PushUnsupported`, `ListOverflow`.
    pub reason: String,
    /// Entries the device holds (valid ones).
    #[serde(default)]
    pub entries_on_device: u32,
    /// What went wrong on this device, with the remedy, when something did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
}

/// Entry counts.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct EntryCounts {
    /// Entries declared, after expiry and de-duplication.
    pub desired: u32,
    /// Entries the device holds.
    pub on_device: u32,
    /// Entries the device counts as invalid.
    pub invalid: u32,
}

/// A FortiGate's view of its list.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DeviceListStatus {
    /// `success`, `error`, `disable` or `unavailable`.
    pub status: String,
    /// The device's error text for the last pull, when it failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// HTTP status the last pull got.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http_status_code: Option<u16>,
    /// When the last pull succeeded (as the device reports it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_success: Option<String>,
    /// More entries than the device's limit.
    #[serde(default)]
    pub overflow: bool,
}
