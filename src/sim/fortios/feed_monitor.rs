//! `/api/v2/monitor/system/external-resource/{entry-list,refresh,dynamic}` (facts §4):
//! what a feed holds and how its last pull went, a pull on demand, and the push API (7.2.1+).

use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};

use super::cmdb::Table;
use super::envelope::{Reply, Request, envelope};
use super::feed::FeedKey;
use super::state::FortiGateState;

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

fn ok(
    state: &FortiGateState,
    req: &Request,
    vdom: &str,
    action: &str,
    results: Option<Value>,
) -> Reply {
    let mut env = envelope(state, &req.method, vdom, "system", "external-resource", 200);
    env.insert("action".into(), json!(action));
    if let Some(results) = results {
        env.insert("results".into(), results);
    }
    Reply::json(200, Value::Object(env))
}

fn flag(req: &Request, name: &str) -> bool {
    matches!(req.param(name), Some("1" | "true"))
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// Handles one external-resource monitor call in `vdom`.
pub fn handle(
    state: &mut FortiGateState,
    req: &Request,
    action: &str,
    vdom: &str,
    body: Option<Value>,
) -> Reply {
    let exists = |state: &FortiGateState, name: &str| {
        state
            .vdoms
            .get(vdom)
            .and_then(|t| t.get(Table::ExternalResource, name))
            .cloned()
    };
    match (req.method.as_str(), action) {
        ("GET", "entry-list") => {
            let Some(mkey) = req.param("mkey").map(str::to_string) else {
                return feed_error(state, req, vdom, action, 400, None);
            };
            let key: FeedKey = (vdom.to_string(), mkey);
            match state.entry_list(&key, flag(req, "status_only"), flag(req, "counts_only")) {
                Some(results) => ok(state, req, vdom, action, Some(results)),
                None => feed_error(state, req, vdom, action, 404, None),
            }
        }
        ("POST", "refresh") => {
            let mkey = body
                .as_ref()
                .and_then(|b| b["mkey"].as_str())
                .unwrap_or_default()
                .to_string();
            let Some(object) = exists(state, &mkey) else {
                return feed_error(state, req, vdom, action, 404, None);
            };
            let key: FeedKey = (vdom.to_string(), mkey);
            let check_only = body
                .as_ref()
                .is_some_and(|b| b["check_status_only"] == true);
            let last = state.feeds.get(&key).map_or(0, |f| f.conn_attempt_time);
            let status = if object["update-method"] == "push" {
                // Nothing to pull: the list is what was pushed.
                "finished"
            } else if check_only {
                if state.refresh_pending(&key) {
                    "pending"
                } else if state.feeds.get(&key).is_some_and(|f| f.error.is_some()) {
                    "error"
                } else {
                    "finished"
                }
            } else {
                state.request_refresh(&key);
                "start"
            };
            let results = json!({"status": status, "last_connection_time": last});
            ok(state, req, vdom, action, Some(results))
        }
        ("POST", "dynamic") if state.version.dynamic_push() => dynamic(state, req, vdom, body),
        // Before 7.2.1 the endpoint does not exist: 404 (troubleshooting F7).
        _ => feed_error(state, req, vdom, action, 404, None),
    }
}

/// `dynamic`: a batch of add / remove / snapshot commands, applied whole or not at all.
fn dynamic(state: &mut FortiGateState, req: &Request, vdom: &str, body: Option<Value>) -> Reply {
    let action = "dynamic";
    let Some(commands) = body
        .as_ref()
        .and_then(|b| b["commands"].as_array())
        .cloned()
    else {
        return feed_error(state, req, vdom, action, 400, None);
    };
    for command in &commands {
        let name = command["name"].as_str().unwrap_or_default();
        let Some(feed) = state
            .vdoms
            .get(vdom)
            .and_then(|t| t.get(Table::ExternalResource, name))
        else {
            return feed_error(state, req, vdom, action, 404, Some(-3));
        };
        // The push API works on `update-method push` feeds only (DOCPUSH); what a device
        // answers for a feed-mode one is UNCONFIRMED, so it is refused as an invalid value
        // and nothing in the batch is applied.
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
    let now = unix_now();
    for command in commands {
        let key: FeedKey = (
            vdom.to_string(),
            command["name"].as_str().unwrap_or_default().to_string(),
        );
        let entries: Vec<String> = command["entries"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|e| e.as_str().map(|s| s.trim().to_string()))
                    .collect()
            })
            .unwrap_or_default();
        let mut list = state
            .feeds
            .get(&key)
            .map(|f| f.entries.clone())
            .unwrap_or_default();
        match command["command"].as_str() {
            Some("add") => {
                for e in entries {
                    if !list.contains(&e) {
                        list.push(e);
                    }
                }
            }
            Some("remove") => list.retain(|e| !entries.contains(e)),
            _ => list = entries,
        }
        state.set_feed_entries(&key, list, now);
    }
    ok(state, req, vdom, action, None)
}
