//! `/api/v2/monitor/...`: system status, current admins, reboot; the external-resource
//! monitors are in `feed_monitor` (facts §4).

use serde_json::{Value, json};

use super::auth::Principal;
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
            super::feed_monitor::handle(state, req, action, vdom, body)
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
