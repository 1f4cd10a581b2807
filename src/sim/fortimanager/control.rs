//! In-process control of a running simulator (tests play the GUI admin, other sessions and
//! faults) and the same control as JSON endpoints for the simulator's admin port.

use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use serde::Deserialize;
use serde_json::{Value, json};

use super::fault::FaultRule;
use super::rpc::Shared;
use super::scenario::{AdminUser, RpcPermit, WorkspaceMode};
use super::state::{CounterKey, RequestRecord};
use super::status::Status;
use super::url::Table;

/// Control surface of one simulated FortiManager; cheap to clone.
#[derive(Clone)]
pub struct FortiManagerControl {
    shared: Arc<Shared>,
}

impl FortiManagerControl {
    pub(crate) fn new(shared: Arc<Shared>) -> Self {
        Self { shared }
    }

    /// Creates or replaces a committed object out of band (an admin in the GUI); returns its name.
    pub fn put_object(&self, adom: &str, table: Table, obj: Value) -> Result<String, Status> {
        let obj = obj.as_object().cloned().ok_or_else(Status::invalid_data)?;
        let mut st = self.shared.state();
        st.adom_mut(adom)?.ws.committed_mut().force_put(table, obj)
    }

    /// Deletes a committed object out of band; false when it did not exist.
    pub fn delete_object(&self, adom: &str, table: Table, name: &str) -> bool {
        let mut st = self.shared.state();
        st.adom_mut(adom)
            .is_ok_and(|a| a.ws.committed_mut().force_delete(table, name))
    }

    /// A committed object as stored (symbolic values, subnet as `[ip, mask]`).
    pub fn object(&self, adom: &str, table: Table, name: &str) -> Option<Value> {
        let st = self.shared.state();
        let obj = st
            .adoms
            .get(adom)?
            .ws
            .read(None)
            .table(table)
            .get(name)?
            .clone();
        Some(Value::Object(obj))
    }

    /// All committed objects of a table, by name.
    pub fn objects(&self, adom: &str, table: Table) -> Vec<Value> {
        let st = self.shared.state();
        st.adoms
            .get(adom)
            .map(|a| {
                a.ws.read(None)
                    .table(table)
                    .values()
                    .cloned()
                    .map(Value::Object)
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Creates or replaces an admin user; its sessions end.
    pub fn put_admin(&self, user: AdminUser) {
        let mut st = self.shared.state();
        st.sessions.end_user(&user.userid);
        st.admins.insert(user.userid.clone(), user);
    }

    /// Removes an admin user; false when unknown.
    pub fn remove_admin(&self, userid: &str) -> bool {
        let mut st = self.shared.state();
        st.sessions.end_user(userid);
        st.admins.remove(userid).is_some()
    }

    /// An admin user as configured now.
    pub fn admin(&self, userid: &str) -> Option<AdminUser> {
        self.shared.state().admins.get(userid).cloned()
    }

    /// Sets (or clears) an API user's key, as `execute api-user generate-key` does.
    pub fn set_api_key(&self, userid: &str, key: Option<String>) -> bool {
        self.edit_admin(userid, |u| u.api_key = key)
    }

    /// Sets an admin's `rpc-permit` (existing sessions keep going with the new permission).
    pub fn set_rpc_permit(&self, userid: &str, permit: RpcPermit) -> bool {
        self.edit_admin(userid, |u| u.rpc_permit = permit)
    }

    /// Sets an admin's profile (Super_User, Standard_User, Restricted_User, ...).
    pub fn set_profile(&self, userid: &str, profile: &str) -> bool {
        self.edit_admin(userid, |u| u.profile = profile.to_string())
    }

    fn edit_admin(&self, userid: &str, f: impl FnOnce(&mut AdminUser)) -> bool {
        let mut st = self.shared.state();
        st.admins.get_mut(userid).map(f).is_some()
    }

    /// Switches an ADOM's workspace mode.
    pub fn set_workspace_mode(&self, adom: &str, mode: WorkspaceMode) -> Result<(), Status> {
        self.shared.state().adom_mut(adom)?.ws.mode = mode;
        Ok(())
    }

    /// Takes an ADOM's workspace lock as another session of `user`; returns its `lock_sid`.
    pub fn hold_lock(&self, adom: &str, user: &str) -> Result<u64, Status> {
        let mut st = self.shared.state();
        let sid = st.sessions.phantom();
        st.adom_mut(adom)?
            .ws
            .force_lock(sid, user, jiff::Timestamp::now().as_second());
        Ok(sid)
    }

    /// Releases an ADOM's lock, discarding uncommitted changes.
    pub fn release_lock(&self, adom: &str) -> Result<(), Status> {
        self.shared.state().adom_mut(adom)?.ws.force_unlock();
        Ok(())
    }

    /// Who holds an ADOM's lock: `(lock_user, lock_sid)`.
    pub fn lock_holder(&self, adom: &str) -> Option<(String, u64)> {
        let st = self.shared.state();
        st.adoms
            .get(adom)?
            .ws
            .holder()
            .map(|l| (l.user.clone(), l.sid))
    }

    /// The answered params so far (the most recent 100,000), oldest first.
    pub fn requests(&self) -> Vec<RequestRecord> {
        self.shared.state().log.iter().cloned().collect()
    }

    /// Clears the request log and counters.
    pub fn clear_requests(&self) {
        let mut st = self.shared.state();
        st.log.clear();
        st.counters.clear();
        st.peer_counters.clear();
    }

    /// Counts per method, url and status code.
    pub fn counters(&self) -> Vec<(CounterKey, u64)> {
        self.shared
            .state()
            .counters
            .iter()
            .map(|(k, v)| (k.clone(), *v))
            .collect()
    }

    /// How many params with `method` on normalised `url` were answered with `code`.
    pub fn count(&self, method: &str, url: &str, code: i64) -> u64 {
        let key = CounterKey {
            method: method.into(),
            url: url.into(),
            code,
        };
        self.shared.state().counters.get(&key).copied().unwrap_or(0)
    }

    /// Answered params per client source address.
    pub fn counts_by_peer(&self) -> Vec<(std::net::IpAddr, u64)> {
        self.shared
            .state()
            .peer_counters
            .iter()
            .map(|(ip, n)| (*ip, *n))
            .collect()
    }

    /// Queues a fault rule behind the others (see [`FaultRule`] for the order they fire in).
    pub fn add_fault(&self, rule: FaultRule) {
        self.shared.state().faults.push(rule);
    }

    /// The fault rules still queued, first to fire first.
    pub fn faults(&self) -> Vec<FaultRule> {
        self.shared.state().faults.rules().to_vec()
    }

    /// Removes every fault rule.
    pub fn clear_faults(&self) {
        self.shared.state().faults.clear();
    }

    /// Number of live login sessions.
    pub fn live_sessions(&self) -> usize {
        self.shared.state().sessions.live()
    }
}

/// The control surface as JSON endpoints, to nest under the simulator's admin port.
pub fn admin_router(control: &FortiManagerControl) -> Router {
    Router::new()
        .route("/requests", get(requests).delete(clear_requests))
        .route("/counters", get(counters))
        .route("/sessions", get(sessions))
        .route(
            "/faults",
            get(list_faults).post(add_fault).delete(clear_faults),
        )
        .route("/admins/{userid}", put(put_admin).delete(remove_admin))
        .route("/adoms/{adom}/lock", post(hold_lock).delete(release_lock))
        .route("/adoms/{adom}/workspace-mode", put(set_mode))
        .route("/adoms/{adom}/{table}", get(list_objects).put(put_object))
        .route(
            "/adoms/{adom}/{table}/{name}",
            get(get_object).delete(delete_object),
        )
        .with_state(control.clone())
}

type Ctl = State<FortiManagerControl>;

fn status_error(st: Status) -> Response {
    (
        StatusCode::UNPROCESSABLE_ENTITY,
        Json(json!({"code": st.code, "message": st.message})),
    )
        .into_response()
}

fn table(id: &str) -> Result<Table, (StatusCode, String)> {
    Table::from_id(id).ok_or_else(|| (StatusCode::NOT_FOUND, format!("unknown table {id}")))
}

async fn requests(State(c): Ctl) -> Json<Vec<RequestRecord>> {
    Json(c.requests())
}

async fn clear_requests(State(c): Ctl) -> StatusCode {
    c.clear_requests();
    StatusCode::NO_CONTENT
}

async fn counters(State(c): Ctl) -> Json<Value> {
    let rows: Vec<Value> = c
        .counters()
        .into_iter()
        .map(|(k, n)| json!({"method": k.method, "url": k.url, "code": k.code, "count": n}))
        .collect();
    let peers: serde_json::Map<String, Value> = c
        .counts_by_peer()
        .into_iter()
        .map(|(ip, n)| (ip.to_string(), json!(n)))
        .collect();
    Json(json!({"params": rows, "peers": peers}))
}

async fn sessions(State(c): Ctl) -> Json<Value> {
    Json(json!({"live": c.live_sessions()}))
}

async fn list_faults(State(c): Ctl) -> Json<Vec<FaultRule>> {
    Json(c.faults())
}

async fn add_fault(State(c): Ctl, Json(rule): Json<Value>) -> Response {
    let rule = match crate::sim::admin::fault_rule::<FaultRule>(rule, FaultRule::check) {
        Ok(rule) => rule,
        Err(why) => return crate::sim::admin::unprocessable(why),
    };
    c.add_fault(rule);
    StatusCode::NO_CONTENT.into_response()
}

async fn clear_faults(State(c): Ctl) -> StatusCode {
    c.clear_faults();
    StatusCode::NO_CONTENT
}

async fn put_admin(
    State(c): Ctl,
    Path(userid): Path<String>,
    Json(mut user): Json<AdminUser>,
) -> StatusCode {
    user.userid = userid;
    c.put_admin(user);
    StatusCode::NO_CONTENT
}

async fn remove_admin(State(c): Ctl, Path(userid): Path<String>) -> StatusCode {
    if c.remove_admin(&userid) {
        StatusCode::NO_CONTENT
    } else {
        StatusCode::NOT_FOUND
    }
}

#[derive(Deserialize)]
struct LockBody {
    user: String,
}

async fn hold_lock(
    State(c): Ctl,
    Path(adom): Path<String>,
    Json(body): Json<LockBody>,
) -> Response {
    match c.hold_lock(&adom, &body.user) {
        Ok(sid) => Json(json!({"lock_sid": sid, "lock_user": body.user})).into_response(),
        Err(st) => status_error(st),
    }
}

async fn release_lock(State(c): Ctl, Path(adom): Path<String>) -> Response {
    match c.release_lock(&adom) {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(st) => status_error(st),
    }
}

#[derive(Deserialize)]
struct ModeBody {
    mode: WorkspaceMode,
}

async fn set_mode(State(c): Ctl, Path(adom): Path<String>, Json(body): Json<ModeBody>) -> Response {
    match c.set_workspace_mode(&adom, body.mode) {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(st) => status_error(st),
    }
}

async fn list_objects(State(c): Ctl, Path((adom, t)): Path<(String, String)>) -> Response {
    match table(&t) {
        Ok(t) => Json(c.objects(&adom, t)).into_response(),
        Err(resp) => resp.into_response(),
    }
}

async fn put_object(
    State(c): Ctl,
    Path((adom, t)): Path<(String, String)>,
    Json(obj): Json<Value>,
) -> Response {
    let t = match table(&t) {
        Ok(t) => t,
        Err(resp) => return resp.into_response(),
    };
    match c.put_object(&adom, t, obj) {
        Ok(name) => Json(json!({"name": name})).into_response(),
        Err(st) => status_error(st),
    }
}

async fn get_object(
    State(c): Ctl,
    Path((adom, t, name)): Path<(String, String, String)>,
) -> Response {
    match table(&t).map(|t| c.object(&adom, t, &name)) {
        Ok(Some(obj)) => Json(obj).into_response(),
        Ok(None) => StatusCode::NOT_FOUND.into_response(),
        Err(resp) => resp.into_response(),
    }
}

async fn delete_object(
    State(c): Ctl,
    Path((adom, t, name)): Path<(String, String, String)>,
) -> Response {
    match table(&t).map(|t| c.delete_object(&adom, t, &name)) {
        Ok(true) => StatusCode::NO_CONTENT.into_response(),
        Ok(false) => StatusCode::NOT_FOUND.into_response(),
        Err(resp) => resp.into_response(),
    }
}
