//! The global objects of `config system` under `/api/v2/cmdb/system/`: `global` (a singleton),
//! `admin` and `vdom` (tables). `api-user` has its own module. They belong to no VDOM, so
//! answers name the management VDOM (facts §1.6, §3.5, §3.6).

use serde_json::{Map, Value, json};

use super::auth::Principal;
use super::cmdb::CmdbError;
use super::cmdb_api::{At, at, error_reply, ok_reply};
use super::envelope::{Reply, Request};
use super::rest::forbidden;
use super::state::FortiGateState;

/// 405: the method is not one this resource takes.
pub fn not_allowed() -> CmdbError {
    CmdbError {
        http_status: 405,
        code: None,
        cli_error: None,
    }
}

/// `system/global`: GET, and PUT by a super_admin.
pub fn global(
    state: &mut FortiGateState,
    req: &Request,
    who: &Principal,
    body: Option<Value>,
) -> Reply {
    let vdom = state.management_vdom().to_string();
    match req.method.as_str() {
        "GET" => {
            let g = &state.global;
            let mut results = json!({
                "hostname": state.hostname,
                "admin-lockout-threshold": g.admin_lockout_threshold,
                "admin-lockout-duration": g.admin_lockout_duration,
                "admintimeout": g.admintimeout,
                "admin-sport": state.port,
                "admin-login-max": 100,
                "batch-cmdb": "enable",
            });
            if state.version >= "7.4.5".parse().unwrap_or_default() {
                results["rest-api-key-url-query"] = json!(if g.rest_api_key_url_query {
                    "enable"
                } else {
                    "disable"
                });
            }
            ok_reply(
                state,
                req,
                at(&vdom, "system", "global"),
                None,
                Some(results),
                false,
            )
        }
        "PUT" if who.super_admin => {
            let body = body.unwrap_or(Value::Null);
            match updated_global(&state.global, &body) {
                Ok(global) => {
                    state.global = global;
                    let settings = state.lockout_settings();
                    state
                        .lockout
                        .cap_pending(settings, tokio::time::Instant::now());
                    state.revision += 1;
                    ok_reply(state, req, at(&vdom, "system", "global"), None, None, true)
                }
                Err((field, v)) => error_reply(
                    state,
                    req,
                    at(&vdom, "system", "global"),
                    None,
                    &CmdbError {
                        http_status: 500,
                        code: Some(-651),
                        cli_error: Some(format!("value parse error before '{v}' for {field}")),
                    },
                ),
            }
        }
        "PUT" => forbidden(state, req, &["api", "v2", "cmdb", "system", "global"]),
        _ => error_reply(
            state,
            req,
            at(&vdom, "system", "global"),
            None,
            &not_allowed(),
        ),
    }
}

/// A GET of a global table: every object, or the one named by `rest`.
pub fn list_or_one(
    state: &FortiGateState,
    req: &Request,
    at: At<'_>,
    rest: &[&str],
    objects: Vec<(String, Value)>,
) -> Reply {
    match rest {
        [] => ok_reply(
            state,
            req,
            at,
            None,
            Some(Value::Array(objects.into_iter().map(|(_, o)| o).collect())),
            false,
        ),
        [name] => match objects.into_iter().find(|(n, _)| n == name) {
            Some((_, one)) => ok_reply(state, req, at, Some(name), Some(json!([one])), false),
            None => error_reply(state, req, at, Some(name), &CmdbError::not_found()),
        },
        _ => error_reply(state, req, at, None, &CmdbError::bad_request()),
    }
}

/// The settings after a PUT, or the first field whose value is out of range.
fn updated_global(
    old: &super::scenario::GlobalSettings,
    body: &Value,
) -> Result<super::scenario::GlobalSettings, (&'static str, Value)> {
    let mut g = old.clone();
    let ranged = |field: &'static str,
                  range: std::ops::RangeInclusive<u64>|
     -> Result<Option<u64>, (&'static str, Value)> {
        match body.get(field) {
            None => Ok(None),
            Some(v) => v
                .as_u64()
                .filter(|n| range.contains(n))
                .map(Some)
                .ok_or((field, v.clone())),
        }
    };
    if let Some(t) = ranged("admin-lockout-threshold", 1..=10)? {
        g.admin_lockout_threshold = t as u32;
    }
    if let Some(d) = ranged("admin-lockout-duration", 1..=2_147_483_647)? {
        g.admin_lockout_duration = d;
    }
    if let Some(m) = ranged("admintimeout", 1..=480)? {
        g.admintimeout = m;
    }
    if let Some(v) = body.get("rest-api-key-url-query") {
        g.rest_api_key_url_query = v.as_str() == Some("enable");
    }
    Ok(g)
}

/// `system/admin`: GET, and PUT of the trusted hosts by a super_admin.
pub fn admin(
    state: &mut FortiGateState,
    req: &Request,
    who: &Principal,
    rest: &[&str],
    body: Option<Value>,
) -> Reply {
    let vdom = state.management_vdom().to_string();
    let render = |a: &super::scenario::Admin| -> Value {
        let mut obj = Map::new();
        obj.insert("name".into(), json!(a.name));
        obj.insert("q_origin_key".into(), json!(a.name));
        obj.insert("accprofile".into(), json!(a.accprofile));
        super::trusthost::render_admin(a, &mut obj);
        Value::Object(obj)
    };
    match (req.method.as_str(), rest) {
        ("GET", _) => {
            let rendered: Vec<(String, Value)> = state
                .admins
                .iter()
                .map(|(n, o)| (n.clone(), render(o)))
                .collect();
            list_or_one(state, req, at(&vdom, "system", "admin"), rest, rendered)
        }
        ("PUT", [name]) if who.super_admin => {
            let Some(admin) = state.admins.get(*name).cloned() else {
                return error_reply(
                    state,
                    req,
                    at(&vdom, "system", "admin"),
                    Some(name),
                    &CmdbError::not_found(),
                );
            };
            let body = body.unwrap_or(Value::Null);
            let mut admin = admin;
            if let Err(text) = super::trusthost::apply_admin(&mut admin, &body) {
                return error_reply(
                    state,
                    req,
                    at(&vdom, "system", "admin"),
                    Some(name),
                    &CmdbError {
                        http_status: 500,
                        code: Some(-8),
                        cli_error: Some(text),
                    },
                );
            }
            state.admins.insert(name.to_string(), admin);
            state.revision += 1;
            ok_reply(
                state,
                req,
                at(&vdom, "system", "admin"),
                Some(name),
                None,
                true,
            )
        }
        ("PUT", _) => forbidden(state, req, &["api", "v2", "cmdb", "system", "admin"]),
        _ => error_reply(
            state,
            req,
            at(&vdom, "system", "admin"),
            rest.first().copied(),
            &not_allowed(),
        ),
    }
}

/// `system/vdom`: the VDOM list, a table like any other (clients read it to check a login).
/// A caller limited to some VDOMs sees only those. Creating and deleting VDOMs is not
/// simulated: every write is a 405.
pub fn vdom(state: &FortiGateState, req: &Request, who: &Principal, rest: &[&str]) -> Reply {
    let management = state.management_vdom().to_string();
    let here = at(&management, "system", "vdom");
    if req.method != "GET" {
        return error_reply(state, req, here, rest.first().copied(), &not_allowed());
    }
    // Only `name` (and `q_origin_key`, as in every result) is given: it is what clients read,
    // and the other fields of a real entry are not on the facts page.
    let rendered: Vec<(String, Value)> = state
        .vdom_order
        .iter()
        .filter(|v| who.may_use(v))
        .map(|v| (v.clone(), json!({"name": v, "q_origin_key": v})))
        .collect();
    list_or_one(state, req, here, rest, rendered)
}
