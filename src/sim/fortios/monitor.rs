//! `/api/v2/monitor/...`: system status, current admins, reboot, and the external-resource
//! entry list, refresh and dynamic push (facts §4).

use std::net::IpAddr;

use ipnet::IpNet;
use serde_json::{Value, json};

use super::auth::Principal;
use super::cmdb::Table;
use super::envelope::{Reply, Request, envelope};
use super::rest::{Area, forbidden, permitted};
use super::state::FortiGateState;

/// Handles a monitor request; `seg` starts after `monitor`.
pub fn handle(
    state: &mut FortiGateState,
    req: &Request,
    who: &Principal,
    seg: &[&str],
    vdom: &str,
    body: Option<Value>,
) -> Reply {
    let full: Vec<&str> = ["api", "v2", "monitor"]
        .iter()
        .copied()
        .chain(seg.iter().copied())
        .collect();
    match (req.method.as_str(), seg) {
        ("GET", ["system", "status"]) => status(state, req, vdom),
        ("GET", ["system", "current-admins"]) => {
            let admins: Vec<Value> = state
                .sessions
                .values()
                .map(|s| json!({"username": s.user, "profile": "", "method": "https", "id": s.id}))
                .collect();
            let mut env = envelope(state, "GET", vdom, "system", "current-admins", 200);
            env.insert("results".into(), Value::Array(admins));
            Reply::json(200, Value::Object(env))
        }
        ("POST", ["system", "os", "reboot"]) => {
            if !permitted(who, Area::System, true) {
                let mut env = envelope(state, "POST", vdom, "system", "os", 403);
                env.insert("action".into(), json!("reboot"));
                return Reply::json(403, Value::Object(env));
            }
            // A reboot clears lockouts and sessions; the device is back at once here.
            state.lockout.clear();
            state.sessions.clear();
            let mut env = envelope(state, "POST", vdom, "system", "os", 200);
            env.insert("action".into(), json!("reboot"));
            Reply::json(200, Value::Object(env))
        }
        (_, ["system", "external-resource", action]) => {
            let write = req.method != "GET";
            if !permitted(who, Area::System, write) {
                return forbidden(state, req, &full);
            }
            feed(state, req, action, vdom, body)
        }
        _ => {
            // "no matching method found" (seed 001: dashboard/reboot never existed).
            let path = seg.first().copied().unwrap_or_default();
            let name = seg.get(1).copied().unwrap_or_default();
            let mut env = envelope(state, &req.method, vdom, path, name, 404);
            env.remove("http_method");
            Reply::json(404, Value::Object(env))
        }
    }
}

/// `monitor/system/status` (also answered for `cmdb/system/status`). Like a 6.4.12 device, the
/// success body carries no `http_status`.
pub fn status(state: &FortiGateState, req: &Request, vdom: &str) -> Reply {
    let mut env = envelope(state, &req.method, vdom, "system", "status", 200);
    env.remove("http_status");
    env.remove("revision");
    env.insert("api_version".into(), json!(state.version.api_version()));
    env.insert(
        "results".into(),
        json!({"model_name": "FortiGate", "model_number": state.model.trim_start_matches("FGT"), "model": state.model, "hostname": state.hostname, "log_disk_status": "available"}),
    );
    Reply::json(200, Value::Object(env))
}

fn feed_error(
    state: &FortiGateState,
    req: &Request,
    vdom: &str,
    action: &str,
    http: u16,
    code: Option<i64>,
) -> Reply {
    let mut env = envelope(
        state,
        &req.method,
        vdom,
        "system",
        "external-resource",
        http,
    );
    env.insert("action".into(), json!(action));
    if let Some(code) = code {
        env.insert("error".into(), json!(code));
    }
    Reply::json(http, Value::Object(env))
}

/// Whether a pushed entry is valid for an address feed: an IP, a CIDR or a range.
fn valid_address_entry(entry: &str) -> bool {
    let entry = entry.trim();
    entry.parse::<IpAddr>().is_ok()
        || entry.parse::<IpNet>().is_ok()
        || entry
            .split_once('-')
            .is_some_and(|(a, b)| matches!((a.trim().parse::<IpAddr>(), b.trim().parse::<IpAddr>()), (Ok(x), Ok(y)) if x.is_ipv4() == y.is_ipv4()))
}

fn feed(
    state: &mut FortiGateState,
    req: &Request,
    action: &str,
    vdom: &str,
    body: Option<Value>,
) -> Reply {
    match (req.method.as_str(), action) {
        ("GET", "entry-list") => {
            let Some(mkey) = req.param("mkey").map(str::to_string) else {
                return feed_error(state, req, vdom, action, 400, None);
            };
            let Some(feed) = state
                .vdoms
                .get(vdom)
                .and_then(|t| t.get(Table::ExternalResource, &mkey))
                .cloned()
            else {
                return feed_error(state, req, vdom, action, 404, None);
            };
            let entries = state
                .feed_entries
                .get(&(vdom.to_string(), mkey.clone()))
                .cloned()
                .unwrap_or_default();
            let address = feed["type"] == "address";
            let listed: Vec<Value> = entries
                .iter()
                .map(|e| json!({"entry": e, "valid": !address || valid_address_entry(e)}))
                .collect();
            let valid = listed.iter().filter(|e| e["valid"] == true).count();
            let mut env = envelope(state, "GET", vdom, "system", "external-resource", 200);
            env.insert("action".into(), json!("entry-list"));
            env.insert(
                "results".into(),
                json!({"status": if feed["status"] == "enable" { "success" } else { "disable" }, "resource_file_status": "downloaded", "entries": listed, "valid_count": valid, "invalid_count": entries.len() - valid, "overflow": false}),
            );
            Reply::json(200, Value::Object(env))
        }
        ("POST", "refresh") => {
            let mkey = body
                .as_ref()
                .and_then(|b| b["mkey"].as_str())
                .unwrap_or_default()
                .to_string();
            if state
                .vdoms
                .get(vdom)
                .and_then(|t| t.get(Table::ExternalResource, &mkey))
                .is_none()
            {
                return feed_error(state, req, vdom, action, 404, None);
            }
            let mut env = envelope(state, "POST", vdom, "system", "external-resource", 200);
            env.insert("action".into(), json!("refresh"));
            env.insert(
                "results".into(),
                json!({"status": "finished", "last_connection_time": 0}),
            );
            Reply::json(200, Value::Object(env))
        }
        ("POST", "dynamic") if state.version.dynamic_push() => {
            let commands = body
                .as_ref()
                .and_then(|b| b["commands"].as_array())
                .cloned();
            let Some(commands) = commands else {
                return feed_error(state, req, vdom, action, 400, None);
            };
            // Validate every command first: the batch applies whole or not at all.
            for command in &commands {
                let name = command["name"].as_str().unwrap_or_default();
                let Some(feed) = state
                    .vdoms
                    .get(vdom)
                    .and_then(|t| t.get(Table::ExternalResource, name))
                else {
                    return feed_error(state, req, vdom, action, 404, Some(-3));
                };
                if feed["update-method"] != "push" {
                    return feed_error(state, req, vdom, action, 500, Some(-651));
                }
                if !matches!(
                    command["command"].as_str(),
                    Some("add" | "remove" | "snapshot")
                ) {
                    return feed_error(state, req, vdom, action, 400, None);
                }
            }
            for command in commands {
                let name = command["name"].as_str().unwrap_or_default().to_string();
                let entries: Vec<String> = command["entries"]
                    .as_array()
                    .map(|a| {
                        a.iter()
                            .filter_map(|e| e.as_str().map(str::to_string))
                            .collect()
                    })
                    .unwrap_or_default();
                let list = state
                    .feed_entries
                    .entry((vdom.to_string(), name))
                    .or_default();
                match command["command"].as_str() {
                    Some("add") => {
                        for e in entries {
                            if !list.contains(&e) {
                                list.push(e);
                            }
                        }
                    }
                    Some("remove") => list.retain(|e| !entries.contains(e)),
                    _ => *list = entries,
                }
            }
            let mut env = envelope(state, "POST", vdom, "system", "external-resource", 200);
            env.insert("action".into(), json!("dynamic"));
            Reply::json(200, Value::Object(env))
        }
        _ => feed_error(state, req, vdom, action, 404, None),
    }
}
