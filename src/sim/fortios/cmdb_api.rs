//! `/api/v2/cmdb/...`: tables per VDOM (with member child URLs and transactions), `?global=1`,
//! and the routing to the global objects of `config system` (facts §2, §3, §5, §6).

use serde_json::{Value, json};

use super::auth::Principal;
use super::cmdb::{CmdbError, Table, VdomTables};
use super::cmdb_system::not_allowed;
use super::envelope::{Body, Reply, Request, envelope};
use super::query::Query;
use super::rest::{Area, forbidden, permitted};
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
    if !global_scope(req) {
        return route(state, req, who, seg, vdom, body);
    }
    // `?global=1` (Ansible, fortiosapi) answers a JSON array of envelopes, like `vdom=*`: a
    // table read fans out over every VDOM; anything else is one envelope in an array. Both
    // clients take element 0 of every answer to a global request, writes included, which is
    // where writes answering an array comes from (inferred from the clients, facts §2.1, §5).
    if !write && Table::from_path(path, name).is_some() {
        return route(state, req, who, seg, "*", body);
    }
    let reply = route(state, req, who, seg, vdom, body);
    match reply.body {
        Body::Json(Value::Object(env)) => Reply {
            body: Body::Json(Value::Array(vec![Value::Object(env)])),
            ..reply
        },
        _ => reply,
    }
}

/// Whether the request asks for the global scope (`global=1`).
fn global_scope(req: &Request) -> bool {
    matches!(req.param("global"), Some("1" | "true"))
}

/// Runs a CMDB request on its table or global object; `seg` is at least `[path, name]`.
fn route(
    state: &mut FortiGateState,
    req: &Request,
    who: &Principal,
    seg: &[&str],
    vdom: &str,
    body: Option<Value>,
) -> Reply {
    let (path, name) = (seg[0], seg[1]);
    match (path, name) {
        ("system", "global") => super::cmdb_system::global(state, req, who, body),
        ("system", "status") => super::monitor::status(state, req, vdom),
        ("system", "admin") => super::cmdb_system::admin(state, req, who, &seg[2..], body),
        ("system", "vdom") => super::cmdb_system::vdom(state, req, who, &seg[2..]),
        ("system", "api-user") => super::cmdb_api_user::handle(state, req, who, &seg[2..], body),
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
pub struct At<'a> {
    vdom: &'a str,
    path: &'a str,
    name: &'a str,
}

/// The VDOM and table an answer is about.
pub fn at<'a>(vdom: &'a str, path: &'a str, name: &'a str) -> At<'a> {
    At { vdom, path, name }
}

/// An error envelope: the status, `error` and `cli_error` of `e`, `mkey` when the URL held one.
pub fn error_reply(
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

/// A success envelope; `changed` writes carry `revision_changed` and `old_revision`.
pub fn ok_reply(
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
        // An existing child is updated; a missing one is 405, which Ansible answers with a
        // POST (facts §2.2).
        ("PUT", [group, "member", member]) => {
            let body = body.ok_or_else(CmdbError::bad_request)?;
            tables
                .update_member(table, group, member, &body, limits)
                .map(|()| None)
        }
        // Never purge a whole table on DELETE of the collection (PR7).
        _ => Err(not_allowed()),
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
