//! The request pipeline of a simulated FortiGate: lockout → authentication → permissions →
//! CSRF → endpoint. Pure over the state and the time, so every rule is unit-testable.

use percent_encoding::percent_decode_str;
use serde_json::Value;
use tokio::time::Instant;

use super::auth::{AuthOutcome, Principal};
use super::envelope::{Reply, Request};
use super::scenario::Permission;
use super::state::{FortiGateState, RequestRecord};
use super::{cmdb_api, login, monitor};

/// The path split into decoded segments, tolerant of `//` and a trailing `/` as devices are.
pub fn segments(raw: &str) -> Vec<String> {
    raw.split('/')
        .filter(|s| !s.is_empty())
        .map(|s| percent_decode_str(s).decode_utf8_lossy().into_owned())
        .collect()
}

/// The access group an endpoint belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Area {
    /// Firewall objects.
    Firewall,
    /// System configuration.
    System,
}

/// Whether `principal` may do this (`write` = anything but GET).
pub fn permitted(principal: &Principal, area: Area, write: bool) -> bool {
    let permission = match area {
        Area::Firewall => principal.profile.fwgrp,
        Area::System => principal.profile.sysgrp,
    };
    if write {
        permission == Permission::ReadWrite
    } else {
        permission >= Permission::Read
    }
}

/// Handles one request and logs it.
pub fn handle(state: &mut FortiGateState, req: &Request, now: Instant) -> Reply {
    let mut user = None;
    let mut auth_failed = false;
    let revision = state.revision;
    let reply = pipeline(state, req, now, &mut user, &mut auth_failed);
    if state.revision != revision {
        // A configuration change may create, edit or delete a feed: the poller re-plans.
        state.feed_signals.wake.notify_one();
    }
    if !req.internal {
        state.record(RequestRecord {
            peer: req.peer,
            method: req.method.clone(),
            path: req.path.clone(),
            query_names: req.query_names(),
            status: reply.status,
            user,
            auth_failed,
            user_agent: req.user_agent.clone(),
            at_ms: 0,
        });
    }
    reply
}

fn pipeline(
    state: &mut FortiGateState,
    req: &Request,
    now: Instant,
    user: &mut Option<String>,
    auth_failed: &mut bool,
) -> Reply {
    // During a lockout every request from the IP is refused without looking at credentials,
    // and counts neither way (KB 362817).
    if !req.internal && state.lockout.locked(req.peer, now).is_some() {
        return Reply::html(429);
    }
    let segs = segments(&req.path);
    let seg: Vec<&str> = segs.iter().map(String::as_str).collect();
    match (req.method.as_str(), seg.as_slice()) {
        ("POST", ["logincheck"]) => {
            let (reply, failed) = login::logincheck(state, req, now);
            *auth_failed = failed;
            return reply;
        }
        ("POST" | "GET", ["logout"]) => return login::logout(state, req),
        ("POST", ["api", "v2", "authentication"]) => {
            let (reply, failed) = login::authentication(state, req, now);
            *auth_failed = failed;
            return reply;
        }
        ("DELETE", ["api", "v2", "authentication"]) => return login::logout(state, req),
        _ => {}
    }
    if seg.len() < 3 || seg[0] != "api" || seg[1] != "v2" {
        return Reply::html(404);
    }
    let principal = if req.internal {
        Principal::internal()
    } else {
        match login::principal(state, req, now) {
            AuthOutcome::Ok(p) => p,
            AuthOutcome::Refused { reply, counted } => {
                *auth_failed = counted;
                return reply;
            }
        }
    };
    *user = Some(principal.user.clone());
    let write = req.method != "GET";
    if write && !login::csrf_ok(&principal, req) {
        // "no valid CSRF token found" (seed 001): the same 403 as a missing permission.
        return forbidden(state, req, &seg);
    }
    let vdom = req
        .param("vdom")
        .map(str::to_string)
        .unwrap_or_else(|| state.management_vdom().to_string());
    let body = match parse_body(req) {
        Ok(body) => body,
        Err(reply) => return reply,
    };
    match seg[2] {
        "cmdb" => cmdb_api::handle(state, req, &principal, &seg[3..], &vdom, body),
        "monitor" => monitor::handle(state, req, &principal, &seg[3..], &vdom, body),
        _ => Reply::html(404),
    }
}

/// 403 with the envelope the device answers (seed 001).
pub fn forbidden(state: &FortiGateState, req: &Request, seg: &[&str]) -> Reply {
    let path = seg.get(3).copied().unwrap_or_default();
    let name = seg.get(4).copied().unwrap_or_default();
    let vdom = req.param("vdom").unwrap_or(state.management_vdom());
    let env = super::envelope::envelope(state, &req.method, vdom, path, name, 403);
    Reply::json(403, Value::Object(env))
}

/// JSON under any or no Content-Type (Ansible sends form-urlencoded); an empty or `null` body
/// is no body; anything else that is not JSON is a 400.
fn parse_body(req: &Request) -> Result<Option<Value>, Reply> {
    let text = std::str::from_utf8(&req.body)
        .map_err(|_| Reply::html(400))?
        .trim();
    if text.is_empty() || text == "null" {
        return Ok(None);
    }
    serde_json::from_str(text).map(Some).map_err(|_| {
        Reply::json(
            400,
            serde_json::json!({"http_method": req.method, "status": "error", "http_status": 400}),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segments_decode_each_part_and_ignore_empty_ones() {
        assert_eq!(
            segments("/api/v2//cmdb/firewall/address/a%2Fb/"),
            ["api", "v2", "cmdb", "firewall", "address", "a/b"]
        );
        assert_eq!(
            segments("/api/v2/cmdb/firewall/address/h%20x"),
            ["api", "v2", "cmdb", "firewall", "address", "h x"]
        );
    }
}
