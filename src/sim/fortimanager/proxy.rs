//! `exec /sys/proxy/json`: resolving targets to devices (pure) and fanning out to them (§6).

use serde_json::{Map, Value, json};

use super::ManagedDevices;
use super::dispatch::Caller;
use super::state::FmgState;
use super::status::Status;
use super::url::segments;

/// A resolved proxy call: de-duplicated device names in target order, and the FortiOS request.
#[derive(Debug, Clone, PartialEq)]
pub struct ProxyCall {
    /// FMG device names.
    pub devices: Vec<String>,
    /// HTTP method for the FortiGate (`GET`, `POST`, `PUT`, `DELETE`).
    pub method: String,
    /// Path and query on the FortiGate (`/api/v2/...`).
    pub resource: String,
    /// Body for the FortiGate.
    pub payload: Option<Value>,
}

/// Checks the caller and resolves `data.target`; -2 for a target not in the ADOM (F16).
pub fn plan(state: &FmgState, caller: &Caller, data: &Value) -> Result<ProxyCall, Status> {
    caller.may_read()?;
    let data = match data {
        Value::Array(list) if list.len() == 1 => &list[0],
        other => other,
    };
    let data: &Map<String, Value> = data.as_object().ok_or_else(Status::invalid_parameter)?;
    let action = data
        .get("action")
        .and_then(Value::as_str)
        .ok_or_else(Status::invalid_parameter)?;
    let method = match action {
        "get" => "GET",
        "post" => "POST",
        "put" => "PUT",
        "delete" => "DELETE",
        _ => return Err(Status::invalid_parameter()),
    };
    if method != "GET" {
        caller.may_write()?;
    }
    let resource = data
        .get("resource")
        .and_then(Value::as_str)
        .ok_or_else(Status::invalid_parameter)?;
    let targets: Vec<&str> = match data.get("target") {
        Some(Value::String(t)) => vec![t.as_str()],
        Some(Value::Array(list)) if !list.is_empty() => list
            .iter()
            .map(|t| t.as_str().ok_or_else(Status::invalid_parameter))
            .collect::<Result<_, _>>()?,
        _ => return Err(Status::invalid_parameter()),
    };
    let mut devices: Vec<String> = Vec::new();
    for target in targets {
        for d in resolve(state, caller, target)? {
            if !devices.contains(&d) {
                devices.push(d);
            }
        }
    }
    Ok(ProxyCall {
        devices,
        method: method.into(),
        resource: resource.to_string(),
        payload: data.get("payload").cloned(),
    })
}

/// Devices named by one target.
fn resolve(state: &FmgState, caller: &Caller, target: &str) -> Result<Vec<String>, Status> {
    let segs = segments(target);
    let s: Vec<&str> = segs.iter().map(String::as_str).collect();
    let (adoms, kind, name): (Vec<&str>, &str, &str) = match s.as_slice() {
        ["adom", adom, kind @ ("device" | "group"), name] => (vec![*adom], kind, name),
        [kind @ ("device" | "group"), name] => {
            (state.adoms.keys().map(String::as_str).collect(), kind, name)
        }
        _ => return Err(Status::already_exists()),
    };
    let mut found = Vec::new();
    let mut any = false;
    for adom in adoms {
        let Some(a) = state.adoms.get(adom) else {
            continue;
        };
        caller.may_use_adom(adom)?;
        if kind == "device" {
            if a.devices.iter().any(|d| d.name == name) {
                any = true;
                found.push(name.to_string());
            }
        } else if let Some(members) = a.group_members(name) {
            any = true;
            found.extend(members);
        }
    }
    // FortiManager answers -2 for a device or group that is not in the ADOM (troubleshooting F16).
    if any {
        Ok(found)
    } else {
        Err(Status::already_exists())
    }
}

/// Calls every device and builds `data`: one `{target, status, response}` per device.
pub async fn fan_out(devices: &dyn ManagedDevices, call: ProxyCall) -> Value {
    let calls = call
        .devices
        .iter()
        .map(|d| devices.call(d, &call.method, &call.resource, call.payload.clone()));
    let answers = futures::future::join_all(calls).await;
    call.devices
        .iter()
        .zip(answers)
        .map(|(device, answer)| match answer {
            Some((_http, body)) => json!({"target": device, "status": Status::ok().to_json(), "response": body}),
            // What FortiManager sends for an unreachable device is unconfirmed; -20042 is its
            // "device unreachable" code (§3).
            None => json!({"target": device, "status": {"code": -20042, "message": "device unreachable"}}),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::fortimanager::scenario::{
        AdminUser, AdomSpec, DeviceGroupSpec, DeviceSpec, FortiManagerScenario, RpcPermit,
    };

    fn state() -> FmgState {
        let dev = |n: &str| DeviceSpec {
            name: n.into(),
            ..Default::default()
        };
        let scenario = FortiManagerScenario {
            adoms: vec![AdomSpec {
                devices: vec![dev("fw1"), dev("fw2")],
                groups: vec![DeviceGroupSpec {
                    name: "edge".into(),
                    members: vec!["fw2".into()],
                }],
                ..Default::default()
            }],
            ..Default::default()
        };
        FmgState::from_scenario(&scenario).unwrap()
    }

    fn caller(permit: RpcPermit) -> Caller {
        Caller {
            sid: 1,
            user: AdminUser {
                rpc_permit: permit,
                ..Default::default()
            },
        }
    }

    #[test]
    fn targets_are_resolved_and_deduplicated() {
        let data = json!({"target": ["adom/root/device/fw2", "/adom/root/group/All_FortiGate", "adom/root/group/edge"], "action": "get", "resource": "/api/v2/monitor/system/status"});
        let call = plan(&state(), &caller(RpcPermit::Read), &data).unwrap();
        assert_eq!(call.devices, vec!["fw2".to_string(), "fw1".to_string()]);
        assert_eq!(call.method, "GET");
    }

    #[test]
    fn unknown_target_is_minus_two() {
        let data =
            json!({"target": ["adom/root/device/ghost"], "action": "get", "resource": "/api/v2/x"});
        assert_eq!(
            plan(&state(), &caller(RpcPermit::ReadWrite), &data),
            Err(Status::already_exists())
        );
    }

    #[test]
    fn read_only_admin_cannot_post_through_proxy() {
        let data = json!({"target": ["adom/root/device/fw1"], "action": "post", "resource": "/api/v2/cmdb/firewall/address", "payload": {}});
        assert_eq!(
            plan(&state(), &caller(RpcPermit::Read), &data),
            Err(Status::no_permission())
        );
    }
}
