//! One JSON-RPC param against the state: permission checks, then the resource's semantics.
//! Login, logout and the proxy fan-out live in `rpc` and `proxy`; this module is synchronous.

use serde_json::{Map, Value, json};

use super::inventory;
use super::query::Query;
use super::scenario::{AdminUser, RpcPermit, WorkspaceMode};
use super::state::FmgState;
use super::status::Status;
use super::symbolic;
use super::url::{Route, Table, WorkspaceAction};

/// The authenticated caller of a param.
#[derive(Debug, Clone)]
pub struct Caller {
    /// Numeric session id (lock owner).
    pub sid: u64,
    /// The admin as configured when the call arrived.
    pub user: AdminUser,
}

impl Caller {
    /// -11 unless the caller may read at all.
    pub fn may_read(&self) -> Result<(), Status> {
        match self.user.rpc_permit {
            RpcPermit::None => Err(Status::no_permission()),
            _ => Ok(()),
        }
    }

    /// -11 unless `rpc-permit read-write` and a profile that writes (Restricted_User does not).
    pub fn may_write(&self) -> Result<(), Status> {
        if self.user.rpc_permit != RpcPermit::ReadWrite || self.user.profile == "Restricted_User" {
            return Err(Status::no_permission());
        }
        Ok(())
    }

    /// -11 unless the profile is Super_User (FortiManager's own settings and admins).
    pub fn may_administer(&self) -> Result<(), Status> {
        self.may_write()?;
        if self.user.profile != "Super_User" {
            return Err(Status::no_permission());
        }
        Ok(())
    }

    /// -11 when the admin's `adom` list (empty = all ADOMs) does not include `adom`.
    pub fn may_use_adom(&self, adom: &str) -> Result<(), Status> {
        if self.user.adoms.is_empty() || self.user.adoms.iter().any(|a| a == adom) {
            Ok(())
        } else {
            Err(Status::no_permission())
        }
    }
}

/// The answer to one param: a status and maybe `data`.
pub type Answer = Result<Option<Value>, Status>;

/// Dispatches one param (not login, logout or proxy) for `caller`.
pub fn dispatch(
    state: &mut FmgState,
    caller: &Caller,
    method: &str,
    route: &Route,
    param: &Map<String, Value>,
) -> Answer {
    caller.may_read()?;
    if method != "get" {
        caller.may_write()?;
    }
    // `verbose` belongs to the envelope (§1.2); the rpc layer copies it into each param.
    let verbose = matches!(param.get("verbose"), Some(v) if v == 1 || v == true);
    let data = param.get("data").cloned().unwrap_or(Value::Null);
    match route {
        Route::Object {
            adom,
            table,
            name,
            member,
        } => {
            let query = Query::from_param(param)?;
            object(
                state,
                caller,
                method,
                adom,
                *table,
                name.as_deref(),
                *member,
                &data,
                &query,
                verbose,
            )
        }
        Route::Workspace { adom, action } => {
            caller.may_use_adom(adom)?;
            let now = jiff::Timestamp::now().as_second();
            let a = state.adom_mut(adom)?;
            match (method, action) {
                ("get", WorkspaceAction::LockInfo) => a.ws.lockinfo(adom),
                ("get", WorkspaceAction::Dirty) => a.ws.dirty(caller.sid),
                ("exec", WorkspaceAction::Lock) => {
                    a.ws.lock(caller.sid, &caller.user.userid, now)
                        .map(|_| None)
                }
                ("exec", WorkspaceAction::Commit) => a.ws.commit(caller.sid).map(|_| None),
                ("exec", WorkspaceAction::Unlock) => a.ws.unlock(caller.sid).map(|_| None),
                _ => Err(Status::no_such_command()),
            }
        }
        Route::AdminUser { userid } => {
            let query = Query::from_param(param)?;
            admin_user(state, caller, method, userid.as_deref(), &data, &query)
        }
        Route::SystemStatus if method == "get" => Ok(Some(inventory::system_status(state))),
        Route::SystemGlobal => system_global(state, caller, method, &data, verbose),
        Route::AdminSetting => admin_setting(state, caller, method, &data),
        Route::Adom { name } if method == "get" => {
            let query = Query::from_param(param)?;
            let rows: Vec<_> = state
                .adoms
                .values()
                .filter(|a| name.as_ref().is_none_or(|n| *n == a.name))
                .map(inventory::adom)
                .collect();
            single_or_list(rows, name.is_some(), &query, "name")
        }
        Route::Device { adom, name } if method == "get" => {
            caller.may_use_adom(adom)?;
            let query = Query::from_param(param)?;
            // A dvmdb ADOM is a table row: missing is -3 (see `FmgState::adom_mut` for -6).
            let a = state.adoms.get(adom).ok_or_else(Status::not_found)?;
            let rows = a
                .devices
                .iter()
                .filter(|d| name.as_ref().is_none_or(|n| *n == d.name))
                .map(|d| reply_row("device", inventory::device(d), verbose))
                .collect();
            single_or_list(rows, name.is_some(), &query, "name")
        }
        Route::Group { adom, name } if method == "get" => {
            caller.may_use_adom(adom)?;
            let query = Query::from_param(param)?;
            let a = state.adoms.get(adom).ok_or_else(Status::not_found)?;
            let names = match name {
                Some(n) => vec![n.clone()],
                None => inventory::group_names(a),
            };
            let rows = names
                .iter()
                .filter_map(|n| inventory::group(a, n))
                .collect();
            single_or_list(rows, name.is_some(), &query, "name")
        }
        Route::SystemStatus | Route::Adom { .. } | Route::Device { .. } | Route::Group { .. } => {
            Err(Status::no_such_command())
        }
        Route::Login | Route::Logout | Route::Proxy | Route::Unknown => Err(Status::invalid_url()),
    }
}

#[allow(clippy::too_many_arguments)] // one param's parts, already parsed
fn object(
    state: &mut FmgState,
    caller: &Caller,
    method: &str,
    adom: &str,
    table: Table,
    name: Option<&str>,
    member: bool,
    data: &Value,
    query: &Query,
    verbose: bool,
) -> Answer {
    caller.may_use_adom(adom)?;
    let a = state.adom_mut(adom)?;
    let rules = a.rules();
    let sid = Some(caller.sid);
    if method == "get" {
        let db = a.ws.read(sid);
        if member {
            let grp = db
                .table(table)
                .get(name.unwrap_or_default())
                .ok_or_else(Status::not_found)?;
            return Ok(Some(
                grp.get("member").cloned().unwrap_or_else(|| json!([])),
            ));
        }
        let rows: Vec<_> = match name {
            Some(n) => db.table(table).get(n).into_iter().collect(),
            None => db.table(table).values().collect(),
        };
        let rows = rows
            .into_iter()
            .map(|o| reply_row(table.id(), o.clone(), verbose))
            .collect();
        return single_or_list(rows, name.is_some(), query, "name");
    }
    let name_reply = |n: String, bulk: bool| {
        if bulk {
            None
        } else {
            Some(json!({ "name": n }))
        }
    };
    let bulk = data.is_array();
    a.ws.write(sid, |db| match (method, name, member) {
        (_, Some(grp), true) => db
            .edit_members(table, grp, method, data, rules)
            .map(|_| None),
        ("add", _, false) => db
            .add(table, name, data, rules)
            .map(|n| name_reply(n, bulk)),
        ("set" | "replace", _, false) => db
            .set(table, name, data, rules)
            .map(|n| name_reply(n, bulk)),
        ("update", _, false) => db
            .update(table, name, data, rules)
            .map(|n| name_reply(n, bulk)),
        ("delete", Some(n), false) => db.delete(table, n).map(|_| None),
        ("clone", Some(n), false) => db
            .clone_object(table, n, data)
            .map(|n| name_reply(n, false)),
        ("delete", None, false) => Err(Status::invalid_parameter()),
        _ => Err(Status::no_such_command()),
    })
}

fn admin_user(
    state: &mut FmgState,
    caller: &Caller,
    method: &str,
    userid: Option<&str>,
    data: &Value,
    query: &Query,
) -> Answer {
    if method == "get" {
        let rows: Vec<_> = state
            .admins
            .values()
            .filter(|u| userid.is_none_or(|id| id == u.userid))
            .map(inventory::admin)
            .collect();
        // The table form answers every user, through `filter`, `fields` and `range` as any
        // table does (§1.2).
        return single_or_list(rows, userid.is_some(), query, "userid");
    }
    caller.may_administer()?;
    let obj = match data {
        Value::Object(o) => o.clone(),
        Value::Array(list) if list.len() == 1 => list[0]
            .as_object()
            .cloned()
            .ok_or_else(Status::invalid_data)?,
        Value::Null if method == "delete" => Map::new(),
        _ => return Err(Status::invalid_data()),
    };
    let id = userid
        .map(str::to_string)
        .or_else(|| {
            obj.get("userid")
                .and_then(Value::as_str)
                .map(str::to_string)
        })
        .ok_or_else(Status::invalid_data)?;
    let existing = state.admins.get(&id).cloned();
    let mut user = match (method, existing) {
        ("delete", Some(_)) => {
            state.admins.remove(&id);
            state.sessions.end_user(&id);
            return Ok(None);
        }
        ("add", Some(_)) => return Err(Status::already_exists()),
        ("update" | "delete", None) => return Err(Status::not_found()),
        ("add" | "set", None) => AdminUser {
            userid: id.clone(),
            rpc_permit: RpcPermit::None,
            ..AdminUser::default()
        },
        ("set" | "update", Some(u)) => u,
        _ => return Err(Status::no_such_command()),
    };
    inventory::apply_admin(&mut user, &obj)?;
    state.admins.insert(id.clone(), user);
    Ok(Some(json!({ "userid": id })))
}

fn system_global(
    state: &mut FmgState,
    caller: &Caller,
    method: &str,
    data: &Value,
    verbose: bool,
) -> Answer {
    match method {
        "get" => Ok(Some(Value::Object(reply_row(
            "global",
            inventory::system_global(state),
            verbose,
        )))),
        "set" | "update" => {
            caller.may_administer()?;
            let mut obj = data.as_object().cloned().ok_or_else(Status::invalid_data)?;
            symbolic::to_symbolic("global", &mut obj);
            if let Some(mode) = obj.get("workspace-mode") {
                let mode = match mode.as_str() {
                    Some("disabled") => WorkspaceMode::Disabled,
                    Some("normal") => WorkspaceMode::Normal,
                    _ => return Err(Status::invalid_data()),
                };
                for a in state.adoms.values_mut() {
                    a.ws.mode = mode;
                }
            }
            Ok(None)
        }
        _ => Err(Status::no_such_command()),
    }
}

fn admin_setting(state: &mut FmgState, caller: &Caller, method: &str, data: &Value) -> Answer {
    match method {
        "get" => Ok(Some(
            json!({ "idle_timeout_api": state.sessions.idle().as_secs() }),
        )),
        "set" | "update" => {
            caller.may_administer()?;
            if let Some(v) = data.get("idle_timeout_api") {
                // 1–28800 s (§2.1).
                let secs = v
                    .as_u64()
                    .filter(|s| (1..=28800).contains(s))
                    .ok_or_else(Status::invalid_data)?;
                state
                    .sessions
                    .set_idle(std::time::Duration::from_secs(secs));
            }
            Ok(None)
        }
        _ => Err(Status::no_such_command()),
    }
}

/// A named URL answers the object itself (-3 when missing); a table URL answers the query.
fn single_or_list(rows: Vec<Map<String, Value>>, named: bool, query: &Query, mkey: &str) -> Answer {
    if named {
        let row = rows.into_iter().next().ok_or_else(Status::not_found)?;
        return Ok(Some(Value::Object(query.project(row, mkey))));
    }
    Ok(Some(query.apply(rows, mkey)))
}

fn reply_row(scope: &str, mut row: Map<String, Value>, verbose: bool) -> Map<String, Value> {
    // FortiManager never answers a stored secret in clear: admin passwords read back as
    // `ENC ...` (§4.5). For an external resource's feed password the form is UNCONFIRMED; the
    // simulator hides it the same way, so no client can come to rely on reading it back.
    if scope == "external-resource" && row.contains_key("password") {
        row.insert("password".into(), json!(["ENC", "<hidden>"]));
    }
    if !verbose {
        symbolic::to_numeric(scope, &mut row);
    }
    row
}
