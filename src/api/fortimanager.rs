//! `FortiManager`: a connection to one FortiManager ADOM over JSON-RPC.

use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::common::{ConnectionSpec, ConnectionStatus};

/// A FortiManager ADOM that resources in this namespace converge on.
#[derive(CustomResource, Debug, Clone, PartialEq, Serialize, Deserialize, KubeSchema)]
#[kube(
    group = "fortisync.dev",
    version = "v1alpha1",
    kind = "FortiManager",
    namespaced,
    status = "FortiManagerStatus",
    shortname = "fmg",
    category = "fortisync",
    printcolumn = r#"{"name":"URL","type":"string","jsonPath":".spec.url"}"#,
    printcolumn = r#"{"name":"ADOM","type":"string","jsonPath":".spec.adom"}"#,
    printcolumn = r#"{"name":"READY","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].status"}"#,
    printcolumn = r#"{"name":"VERSION","type":"string","jsonPath":".status.version"}"#,
    printcolumn = r#"{"name":"AGE","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct FortiManagerSpec {
    /// How to reach the FortiManager.
    #[serde(flatten)]
    pub connection: ConnectionSpec,
    /// ADOM the objects live in.
    #[serde(default = "default_adom")]
    #[x_kube(validation = Rule::new("self.matches('^[A-Za-z0-9_.-]{1,64}$')").message("spec.adom must be 1-64 characters of letters, digits, '_', '.', '-'"))]
    #[schemars(length(max = 64))]
    pub adom: String,
    /// Workspace (ADOM lock) handling.
    #[serde(default)]
    pub workspace: WorkspaceSpec,
    /// Proxy targets (`device/<name>` or `group/<name>`); empty means the ADOM's All_FortiGate.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 256))]
    pub device_targets: Vec<DeviceTarget>,
    /// How ADOM changes reach the FortiGates.
    #[serde(default)]
    pub install: InstallPolicy,
}

fn default_adom() -> String {
    "root".to_string()
}

/// One proxy target in the ADOM.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct DeviceTarget {
    /// `Device` (a FortiManager device name) or `Group` (a device group).
    pub kind: DeviceTargetKind,
    /// Device or group name exactly as FortiManager shows it.
    #[schemars(length(min = 1, max = 64))]
    pub name: String,
}

/// What a device target names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum DeviceTargetKind {
    /// One managed FortiGate.
    Device,
    /// A device group.
    Group,
}

/// Workspace mode handling.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct WorkspaceSpec {
    /// `Auto` reads the ADOM's mode; `Normal` always locks; `Disabled` never locks.
    #[serde(default)]
    pub mode: WorkspaceMode,
    /// Attempts to take the ADOM lock while another session holds it.
    #[serde(default = "default_lock_retries")]
    #[schemars(range(min = 0, max = 50))]
    pub lock_retries: u32,
}

impl Default for WorkspaceSpec {
    fn default() -> Self {
        Self {
            mode: WorkspaceMode::default(),
            lock_retries: default_lock_retries(),
        }
    }
}

fn default_lock_retries() -> u32 {
    5
}

/// FortiManager workspace mode as fortisync treats it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum WorkspaceMode {
    /// Follow the ADOM's own setting.
    #[default]
    Auto,
    /// Lock → change → commit → unlock.
    Normal,
    /// Write directly.
    Disabled,
}

/// How ADOM object changes reach the managed FortiGates.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum InstallPolicy {
    /// Change the ADOM only; installs stay with the FortiManager admin's own workflow.
    #[default]
    None,
    /// Also apply the change on each target FortiGate through `/sys/proxy/json`, so devices
    /// converge within seconds without a policy-package install.
    Proxy,
}

/// Observed state of a FortiManager connection.
pub type FortiManagerStatus = ConnectionStatus;
