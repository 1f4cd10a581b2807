//! `/api/v2/cmdb/...`: tables per VDOM (with member child URLs and transactions) and the
//! global objects `system/global`, `system/admin`, `system/api-user` (facts §2, §3, §6).

use serde_json::{Map, Value, json};

use super::auth::Principal;
use super::cmdb::{CmdbError, Table, VdomTables};
use super::envelope::{Reply, Request, envelope};
use super::query::Query;
use super::rest::{Area, forbidden, permitted};
use super::scenario::parse_trusthost;
use super::state::{FortiGateState, Transaction};

/// Handles a CMDB request; `seg` starts after `cmdb`.
pub fn handle(
    state: &mut FortiGateState,
    req: &Request,
    who: &Principal,
    seg: &[&str],
    vdom: &str,
    body: Option<Value>,
) -> Reply {
    let full: Vec<&str> = ["api", "v2", "cmdb"]
        .iter()
        .copied()
        .chain(seg.iter().copied())
        .collect();
    if seg.is_empty() {
        return transaction(state, req, who, vdom, body);
    }
    if seg.len() < 2 {
        return Reply::json(
            404,
            json!({"http_method": req.method, "status": "error", "http_status": 404}),
        );
    }
    let (path, name) = (seg[0], seg[1]);
    let area = if path == "firewall" {
        Area::Firewall
    } else {
        Area::System
    };
    let write = req.method != "GET";
    if !permitted(who, area, write) {
        return forbidden(state, req, &full);
    }
    match (path, name) {
        ("system", "global") => global(state, req, who, body),
        ("system", "status") => super::monitor::status(state, req, vdom),
        ("system", "admin") => admin(state, req, who, &seg[2..], body),
        ("system", "api-user") => api_user(state, req, who, &seg[2..], body),
        _ => match Table::from_path(path, name) {
            Some(table) => table_request(state, req, who, table, &seg[2..], vdom, body),
            None => error_reply(
                state,
                req,
                at(vdom, path, name),
                None,
                &CmdbError::not_found(),
            ),
        },
    }
}

/// Where an answer is about: VDOM and table.
#[derive(Clone, Copy)]
struct At<'a> {
    vdom: &'a str,
    path: &'a str,
    name: &'a str,
}

fn at<'a>(vdom: &'a str, path: &'a str, name: &'a str) -> At<'a> {
    At { vdom, path, name }
}

fn error_reply(
    state: &FortiGateState,
    req: &Request,
    At { vdom, path, name }: At<'_>,
    mkey: Option<&str>,
    e: &CmdbError,
) -> Reply {
    let mut env = envelope(state, &req.method, vdom, path, name, e.http_status);
    if let Some(mkey) = mkey {
        env.insert("mkey".into(), json!(mkey));
    }
    if let Some(code) = e.code {
        env.insert("error".into(), json!(code));
    }
    if let Some(cli) = &e.cli_error {
        env.insert("cli_error".into(), json!(cli));
    }
    if req.method != "GET" {
        env.insert("revision_changed".into(), json!(false));
    }
    Reply::json(e.http_status, Value::Object(env))
}

fn ok_reply(
    state: &FortiGateState,
    req: &Request,
    At { vdom, path, name }: At<'_>,
    mkey: Option<&str>,
    results: Option<Value>,
    changed: bool,
) -> Reply {
    let mut env = envelope(state, &req.method, vdom, path, name, 200);
    if let Some(results) = results {
        env.insert("results".into(), results);
    }
    if let Some(mkey) = mkey {
        env.insert("mkey".into(), json!(mkey));
    }
    if req.method != "GET" {
        env.insert("revision_changed".into(), json!(changed));
        if changed {
            env.insert(
                "old_revision".into(),
                json!(format!("{:032x}", state.revision - 1)),
            );
        }
    }
    Reply::json(200, Value::Object(env))
}

fn schema(path: &str, name: &str, table: Table) -> Value {
    json!({"name": name, "path": path, "category": "table", "mkey": "name", "mkey_type": "string", "help": format!("Configure {path} {name}."), "children": {"name": {"name": "name", "category": "unitary", "type": "string", "size": if table == Table::ExternalResource { 35 } else { 79 }}}})
}

#[allow(clippy::too_many_arguments)]
fn table_request(
    state: &mut FortiGateState,
    req: &Request,
    who: &Principal,
    table: Table,
    rest: &[&str],
    vdom: &str,
    body: Option<Value>,
) -> Reply {
    let (path, name) = table.path_name();
    if vdom == "*" && req.method == "GET" {
        let vdoms: Vec<String> = state
            .vdom_order
            .iter()
            .filter(|v| who.may_use(v))
            .cloned()
            .collect();
        let answers: Vec<Value> = vdoms
            .iter()
            .map(|v| match table_get(state, req, table, rest, v) {
                Ok(results) => {
                    let mut env = envelope(state, "GET", v, path, name, 200);
                    env.insert("results".into(), results);
                    Value::Object(env)
                }
                Err(e) => Value::Object(envelope(state, "GET", v, path, name, e.http_status)),
            })
            .collect();
        return Reply::json(200, Value::Array(answers));
    }
    if !state.vdoms.contains_key(vdom) {
        return error_reply(
            state,
            req,
            at(vdom, path, name),
            None,
            &CmdbError::not_found(),
        );
    }
    if !who.may_use(vdom) {
        return forbidden(state, req, &["api", "v2", "cmdb", path, name]);
    }
    let mkey = rest.first().copied();
    if req.method == "GET" {
        if let Some(action) = req.param("action") {
            return match action {
                "schema" => ok_reply(
                    state,
                    req,
                    at(vdom, path, name),
                    None,
                    Some(schema(path, name, table)),
                    false,
                ),
                "default" => ok_reply(
                    state,
                    req,
                    at(vdom, path, name),
                    None,
                    Some(json!({})),
                    false,
                ),
                _ => error_reply(
                    state,
                    req,
                    at(vdom, path, name),
                    mkey,
                    &CmdbError::bad_request(),
                ),
            };
        }
        return match table_get(state, req, table, rest, vdom) {
            Ok(results) => ok_reply(state, req, at(vdom, path, name), mkey, Some(results), false),
            Err(e) => error_reply(state, req, at(vdom, path, name), mkey, &e),
        };
    }
    let limits = state.limits();
    let staged = req
        .transaction
        .as_deref()
        .and_then(|t| t.trim().parse::<u64>().ok());
    let result = {
        let tables = match staged {
            Some(id) => match state.transactions.get_mut(&id) {
                Some(tx) if tx.vdom == vdom => &mut tx.tables,
                _ => {
                    return error_reply(
                        state,
                        req,
                        at(vdom, path, name),
                        mkey,
                        &CmdbError {
                            http_status: 500,
                            code: Some(-3),
                            cli_error: Some("transaction not found".into()),
                        },
                    );
                }
            },
            None => state.vdoms.get_mut(vdom).expect("checked above"),
        };
        write(tables, req, table, rest, body, limits)
    };
    match result {
        Ok(created) => {
            let changed = staged.is_none();
            if changed {
                state.revision += 1;
            }
            let mkey = created.as_deref().or(mkey);
            ok_reply(state, req, at(vdom, path, name), mkey, None, changed)
        }
        Err(e) => error_reply(state, req, at(vdom, path, name), mkey, &e),
    }
}

fn table_get(
    state: &FortiGateState,
    req: &Request,
    table: Table,
    rest: &[&str],
    vdom: &str,
) -> Result<Value, CmdbError> {
    let tables = state.vdoms.get(vdom).ok_or_else(CmdbError::not_found)?;
    let query = Query::parse(&req.query).map_err(|_| CmdbError::bad_request())?;
    match rest {
        [] => Ok(Value::Array(query.apply(tables.list(table).cloned()))),
        [mkey] => {
            let object = tables.get(table, mkey).ok_or_else(CmdbError::not_found)?;
            Ok(Value::Array(vec![query.project(object.clone())]))
        }
        [mkey, "member"] => {
            let object = tables.get(table, mkey).ok_or_else(CmdbError::not_found)?;
            let members = object["member"]
                .as_array()
                .cloned()
                .ok_or_else(CmdbError::not_found)?;
            Ok(Value::Array(query.apply(members.into_iter())))
        }
        [mkey, "member", member] => {
            let object = tables.get(table, mkey).ok_or_else(CmdbError::not_found)?;
            let found = object["member"]
                .as_array()
                .and_then(|ms| ms.iter().find(|m| m["name"] == *member).cloned());
            Ok(Value::Array(vec![found.ok_or_else(CmdbError::not_found)?]))
        }
        _ => Err(CmdbError::bad_request()),
    }
}

/// Runs a write; returns the created mkey on POST.
fn write(
    tables: &mut VdomTables,
    req: &Request,
    table: Table,
    rest: &[&str],
    body: Option<Value>,
    limits: super::cmdb::Limits,
) -> Result<Option<String>, CmdbError> {
    let member_name = |body: &Option<Value>| -> Result<String, CmdbError> {
        body.as_ref()
            .and_then(|b| b.get("name"))
            .and_then(Value::as_str)
            .map(str::to_string)
            .ok_or_else(CmdbError::bad_request)
    };
    match (req.method.as_str(), rest) {
        ("POST", []) => {
            let body = body.ok_or_else(CmdbError::bad_request)?;
            tables.create(table, &body, limits).map(Some)
        }
        ("PUT", [mkey]) => {
            let body = body.ok_or_else(CmdbError::bad_request)?;
            tables.update(table, mkey, &body, limits).map(|()| None)
        }
        ("DELETE", [mkey]) => tables.delete(table, mkey).map(|()| None),
        ("POST", [group, "member"]) => {
            let member = member_name(&body)?;
            tables
                .add_member(table, group, &member, limits)
                .map(|()| Some(member))
        }
        ("DELETE", [group, "member", member]) => tables
            .remove_member(table, group, member, limits)
            .map(|()| None),
        // Never purge a whole table on DELETE of the collection (PR7); PUT on a missing child is
        // 405, which Ansible answers with a POST.
        _ => Err(CmdbError {
            http_status: 405,
            code: None,
            cli_error: None,
        }),
    }
}

fn transaction(
    state: &mut FortiGateState,
    req: &Request,
    who: &Principal,
    vdom: &str,
    body: Option<Value>,
) -> Reply {
    let action = req.param("action").unwrap_or_default();
    let id_of = |body: &Option<Value>| -> Option<u64> {
        req.transaction
            .as_deref()
            .and_then(|t| t.trim().parse().ok())
            .or_else(|| {
                body.as_ref()
                    .and_then(|b| b.get("transaction_id").or(b.get("transaction-id")))
                    .and_then(Value::as_u64)
            })
            .or_else(|| req.param("transaction_id").and_then(|t| t.parse().ok()))
    };
    let mut env = envelope(state, &req.method, vdom, "", "", 200);
    env.insert("action".into(), json!(action));
    match (req.method.as_str(), action) {
        ("POST", "transaction-start") => {
            if !permitted(who, Area::Firewall, true) && !permitted(who, Area::System, true) {
                return forbidden(state, req, &["api", "v2", "cmdb"]);
            }
            let Some(tables) = state.vdoms.get(vdom).cloned() else {
                return Reply::json(
                    404,
                    Value::Object(envelope(state, &req.method, vdom, "", "", 404)),
                );
            };
            let id = u64::from(state.fresh_id());
            state.transactions.insert(
                id,
                Transaction {
                    vdom: vdom.to_string(),
                    tables,
                },
            );
            env.insert("results".into(), json!({"transaction-id": id}));
            Reply::json(200, Value::Object(env))
        }
        ("POST", "transaction-commit") => {
            match id_of(&body).and_then(|id| state.transactions.remove(&id)) {
                Some(tx) => {
                    state.vdoms.insert(tx.vdom, tx.tables);
                    state.revision += 1;
                    env.insert("revision_changed".into(), json!(true));
                    Reply::json(200, Value::Object(env))
                }
                None => Reply::json(
                    404,
                    Value::Object(envelope(state, &req.method, vdom, "", "", 404)),
                ),
            }
        }
        ("POST", "transaction-abort") => {
            match id_of(&body).and_then(|id| state.transactions.remove(&id)) {
                Some(_) => Reply::json(200, Value::Object(env)),
                None => Reply::json(
                    404,
                    Value::Object(envelope(state, &req.method, vdom, "", "", 404)),
                ),
            }
        }
        ("GET", "transaction-show") if state.version >= "7.4.1".parse().unwrap_or_default() => {
            match id_of(&body).and_then(|id| state.transactions.get(&id)) {
                Some(tx) => {
                    env.insert("results".into(), json!({"vdom": tx.vdom}));
                    Reply::json(200, Value::Object(env))
                }
                None => Reply::json(
                    404,
                    Value::Object(envelope(state, &req.method, vdom, "", "", 404)),
                ),
            }
        }
        _ => Reply::json(
            400,
            Value::Object(envelope(state, &req.method, vdom, "", "", 400)),
        ),
    }
}

fn global(
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
            &CmdbError {
                http_status: 405,
                code: None,
                cli_error: None,
            },
        ),
    }
}

/// A GET of a global table: every object, or the one named by `rest`.
fn list_or_one(
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

fn admin(
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
        for i in 0..10 {
            let value = a
                .trusthosts
                .get(i)
                .map_or("0.0.0.0 0.0.0.0".to_string(), |n| match n {
                    ipnet::IpNet::V4(v4) => format!("{} {}", v4.addr(), v4.netmask()),
                    ipnet::IpNet::V6(_) => "0.0.0.0 0.0.0.0".to_string(),
                });
            obj.insert(format!("trusthost{}", i + 1), json!(value));
        }
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
            let mut slots: Vec<Option<ipnet::IpNet>> =
                (0..10).map(|i| admin.trusthosts.get(i).copied()).collect();
            for (i, slot) in slots.iter_mut().enumerate() {
                if let Some(v) = body.get(format!("trusthost{}", i + 1)) {
                    let text = v.as_str().unwrap_or_default();
                    match parse_trusthost(text) {
                        Ok(net) if net.prefix_len() == 0 => *slot = None,
                        Ok(net) => *slot = Some(net),
                        Err(_) => {
                            return error_reply(
                                state,
                                req,
                                at(&vdom, "system", "admin"),
                                Some(name),
                                &CmdbError {
                                    http_status: 500,
                                    code: Some(-8),
                                    cli_error: Some(format!("invalid IP address {text}")),
                                },
                            );
                        }
                    }
                }
            }
            if let Some(a) = state.admins.get_mut(*name) {
                a.trusthosts = slots.into_iter().flatten().collect();
            }
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
            &CmdbError {
                http_status: 405,
                code: None,
                cli_error: None,
            },
        ),
    }
}

fn api_user(
    state: &mut FortiGateState,
    req: &Request,
    who: &Principal,
    rest: &[&str],
    body: Option<Value>,
) -> Reply {
    let vdom = state.management_vdom().to_string();
    let render = |u: &super::scenario::ApiUser| -> Value {
        let trusthost: Vec<Value> = u
            .trusthosts
            .iter()
            .enumerate()
            .map(|(i, n)| match n {
                ipnet::IpNet::V4(v4) => json!({"id": i + 1, "q_origin_key": i + 1, "type": "ipv4-trusthost", "ipv4-trusthost": format!("{} {}", v4.addr(), v4.netmask()), "ipv6-trusthost": "::/0"}),
                ipnet::IpNet::V6(v6) => json!({"id": i + 1, "q_origin_key": i + 1, "type": "ipv6-trusthost", "ipv4-trusthost": "0.0.0.0 0.0.0.0", "ipv6-trusthost": v6.to_string()}),
            })
            .collect();
        json!({"name": u.name, "q_origin_key": u.name, "accprofile": u.accprofile, "api-key": "ENC XXXX", "vdom": u.vdoms.iter().map(|v| json!({"name": v})).collect::<Vec<_>>(), "trusthost": trusthost})
    };
    match (req.method.as_str(), rest) {
        ("GET", _) => {
            let rendered: Vec<(String, Value)> = state
                .api_users
                .iter()
                .map(|(n, o)| (n.clone(), render(o)))
                .collect();
            list_or_one(state, req, at(&vdom, "system", "api-user"), rest, rendered)
        }
        ("PUT", [name]) if who.super_admin => {
            if !state.api_users.contains_key(*name) {
                return error_reply(
                    state,
                    req,
                    at(&vdom, "system", "api-user"),
                    Some(name),
                    &CmdbError::not_found(),
                );
            }
            let mut nets = Vec::new();
            if let Some(items) = body
                .as_ref()
                .and_then(|b| b.get("trusthost"))
                .and_then(Value::as_array)
            {
                for item in items {
                    let text = item["ipv4-trusthost"]
                        .as_str()
                        .or(item["ipv6-trusthost"].as_str())
                        .unwrap_or_default();
                    match parse_trusthost(text) {
                        // "Allow all (0.0.0.0/0) is not allowed" for REST API admins.
                        Ok(net) if net.prefix_len() == 0 => {
                            return error_reply(
                                state,
                                req,
                                at(&vdom, "system", "api-user"),
                                Some(name),
                                &CmdbError {
                                    http_status: 500,
                                    code: Some(-651),
                                    cli_error: Some(
                                        "trusthost: allow-all is not allowed for REST API admins"
                                            .into(),
                                    ),
                                },
                            );
                        }
                        Ok(net) => nets.push(net),
                        Err(_) => {
                            return error_reply(
                                state,
                                req,
                                at(&vdom, "system", "api-user"),
                                Some(name),
                                &CmdbError {
                                    http_status: 500,
                                    code: Some(-8),
                                    cli_error: Some(format!("invalid IP address {text}")),
                                },
                            );
                        }
                    }
                }
                if let Some(u) = state.api_users.get_mut(*name) {
                    u.trusthosts = nets;
                }
            }
            state.revision += 1;
            ok_reply(
                state,
                req,
                at(&vdom, "system", "api-user"),
                Some(name),
                None,
                true,
            )
        }
        ("PUT", _) => forbidden(state, req, &["api", "v2", "cmdb", "system", "api-user"]),
        _ => error_reply(
            state,
            req,
            at(&vdom, "system", "api-user"),
            rest.first().copied(),
            &CmdbError {
                http_status: 405,
                code: None,
                cli_error: None,
            },
        ),
    }
}
