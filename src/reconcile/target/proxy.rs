//! The FortiGates behind a FortiManager, reached through `/sys/proxy/json`: which devices a
//! connection targets, and reading each device's answer out of a proxy result.

use serde_json::Value;

use crate::api::fortimanager::{DeviceTargetKind, FortiManagerSpec};
use crate::device::fortimanager::ProxyResult;
use crate::model::Firmware;

/// The proxy targets of a FortiManager connection (empty = the ADOM's All_FortiGate).
pub fn targets(spec: &FortiManagerSpec) -> Vec<String> {
    if spec.device_targets.is_empty() {
        return vec![format!("adom/{}/group/All_FortiGate", spec.adom)];
    }
    spec.device_targets
        .iter()
        .map(|t| match t.kind {
            DeviceTargetKind::Device => format!("adom/{}/device/{}", spec.adom, t.name),
            DeviceTargetKind::Group => format!("adom/{}/group/{}", spec.adom, t.name),
        })
        .collect()
}

/// A device's answer as (FortiOS body) or the reason it has none.
pub fn answer(r: &ProxyResult) -> Result<&Value, String> {
    if r.code != 0 {
        return Err(format!("{} (FortiManager code {})", r.message, r.code));
    }
    r.response
        .as_ref()
        .ok_or_else(|| "no response from the device".to_string())
}

/// The FortiOS envelope of a proxied answer (the first of a list).
pub fn envelope(body: &Value) -> &Value {
    match body {
        Value::Array(items) => items.first().unwrap_or(&Value::Null),
        other => other,
    }
}

/// The HTTP status a proxied FortiOS answer carries.
pub fn http_status(body: &Value) -> u64 {
    let body = envelope(body);
    body["http_status"]
        .as_u64()
        .unwrap_or(if body["status"] == "error" { 500 } else { 200 })
}

/// The firmware a proxied FortiOS answer names (`version`).
pub fn firmware(body: &Value) -> Firmware {
    Firmware::parse(envelope(body)["version"].as_str().unwrap_or_default())
}
