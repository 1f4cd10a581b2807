//! `FortiGate`: a connection to one FortiGate (one VDOM) over the FortiOS REST API.

use kube::{CustomResource, KubeSchema};
use serde::{Deserialize, Serialize};

use super::common::{ConnectionSpec, ConnectionStatus};

/// A FortiGate that resources in this namespace converge on.
#[derive(CustomResource, Debug, Clone, PartialEq, Serialize, Deserialize, KubeSchema)]
#[kube(
    group = "fortisync.dev",
    version = "v1alpha1",
    kind = "FortiGate",
    namespaced,
    status = "FortiGateStatus",
    shortname = "fgt",
    category = "fortisync",
    printcolumn = r#"{"name":"URL","type":"string","jsonPath":".spec.url"}"#,
    printcolumn = r#"{"name":"VDOM","type":"string","jsonPath":".spec.vdom"}"#,
    printcolumn = r#"{"name":"READY","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].status"}"#,
    printcolumn = r#"{"name":"VERSION","type":"string","jsonPath":".status.version"}"#,
    printcolumn = r#"{"name":"BREAKER","type":"string","jsonPath":".status.breaker"}"#,
    printcolumn = r#"{"name":"AGE","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct FortiGateSpec {
    /// How to reach the device.
    #[serde(flatten)]
    pub connection: ConnectionSpec,
    /// VDOM the resources live in.
    #[serde(default = "default_vdom")]
    #[x_kube(validation = Rule::new("self.matches('^[A-Za-z0-9_.-]{1,31}$')").message("spec.vdom must be 1-31 characters of letters, digits, '_', '.', '-'"))]
    #[schemars(length(max = 31))]
    pub vdom: String,
}

fn default_vdom() -> String {
    "root".to_string()
}

/// Observed state of a FortiGate connection.
pub type FortiGateStatus = ConnectionStatus;
