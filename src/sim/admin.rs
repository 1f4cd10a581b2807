//! The simulator's admin (test-control) port: the same control the Rust handles offer, as
//! JSON over HTTP, for users' own CI. Never served on a device port.
//!
//! It is a stable, versioned interface (docs/simulator.md): every route is served under
//! `/v1/…` and, as before versions existed, at the root. Within v1, fields are only added and
//! their defaults keep the old behaviour; anything else would be a `/v2/…` next to `/v1/…`.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post, put};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};

use super::fortimanager::{self, FortiManagerControl};
use super::fortios::{FaultRule, FortiGateHandle, FortiGateScenario, GlobalSettings, Table};

type Fleet = Arc<BTreeMap<String, Arc<FortiGateHandle>>>;

/// Routes for every FortiGate (`/fortigates/{name}/…`) and FortiManager (`/fortimanagers/{name}/…`).
pub fn router(
    fortigates: BTreeMap<String, Arc<FortiGateHandle>>,
    fortimanagers: BTreeMap<String, FortiManagerControl>,
) -> Router {
    let fleet: Fleet = Arc::new(fortigates);
    let mut v1 = Router::new()
        .route("/version", get(version))
        .route("/fortigates", get(list))
        .route(
            "/fortigates/{name}/requests",
            get(requests).delete(clear_requests),
        )
        .route("/fortigates/{name}/counters", get(counters))
        .route(
            "/fortigates/{name}/faults",
            get(list_faults).post(add_fault).delete(clear_faults),
        )
        .route("/fortigates/{name}/global", put(set_global))
        .route("/fortigates/{name}/api-users/{user}/key", put(set_key))
        .route("/fortigates/{name}/reboot", post(reboot))
        .route("/fortigates/{name}/feeds/{vdom}/{feed}", get(feed_state))
        .route(
            "/fortigates/{name}/feeds/{vdom}/{feed}/polls",
            get(feed_polls),
        )
        .route(
            "/fortigates/{name}/scenario",
            get(save_scenario).put(load_scenario),
        )
        .route(
            "/fortigates/{name}/objects/{vdom}/{path}/{table}",
            get(objects).put(put_object),
        )
        .route(
            "/fortigates/{name}/objects/{vdom}/{path}/{table}/{object}",
            delete(delete_object),
        )
        .with_state(fleet);
    for (name, control) in fortimanagers {
        v1 = v1.nest(
            &format!("/fortimanagers/{name}"),
            fortimanager::admin_router(&control),
        );
    }
    Router::new().nest("/v1", v1.clone()).merge(v1)
}

/// The admin API version this simulator speaks.
pub const ADMIN_API_VERSION: &str = "v1";

async fn version() -> Json<Value> {
    Json(json!({"admin_api": ADMIN_API_VERSION, "fortisync": env!("CARGO_PKG_VERSION")}))
}

/// Something the request names that the simulator does not have.
struct Missing(&'static str);

impl IntoResponse for Missing {
    fn into_response(self) -> Response {
        let body = Json(json!({"error": format!("no such {}", self.0)}));
        (StatusCode::NOT_FOUND, body).into_response()
    }
}

fn not_found(what: &'static str) -> Response {
    Missing(what).into_response()
}

fn device<'a>(fleet: &'a Fleet, name: &str) -> Result<&'a FortiGateHandle, Missing> {
    fleet
        .get(name)
        .map(AsRef::as_ref)
        .ok_or(Missing("FortiGate"))
}

fn table(path: &str, name: &str) -> Result<Table, Missing> {
    Table::from_path(path, name).ok_or(Missing("table"))
}

async fn list(State(fleet): State<Fleet>) -> Json<Value> {
    Json(Value::Array(
        fleet.values().map(|fg| json!({"name": fg.name(), "url": fg.url(), "version": fg.version().to_string()})).collect(),
    ))
}

async fn requests(State(fleet): State<Fleet>, Path(name): Path<String>) -> Response {
    match device(&fleet, &name) {
        Ok(fg) => Json(fg.requests()).into_response(),
        Err(r) => r.into_response(),
    }
}

async fn clear_requests(State(fleet): State<Fleet>, Path(name): Path<String>) -> Response {
    match device(&fleet, &name) {
        Ok(fg) => {
            fg.clear_requests();
            StatusCode::NO_CONTENT.into_response()
        }
        Err(r) => r.into_response(),
    }
}

async fn counters(State(fleet): State<Fleet>, Path(name): Path<String>) -> Response {
    let fg = match device(&fleet, &name) {
        Ok(fg) => fg,
        Err(r) => return r.into_response(),
    };
    let mut by_peer: BTreeMap<String, HashMap<u16, u64>> = BTreeMap::new();
    let mut auth_failures: BTreeMap<String, u64> = BTreeMap::new();
    for r in fg.requests() {
        *by_peer
            .entry(r.peer.to_string())
            .or_default()
            .entry(r.status)
            .or_default() += 1;
        if r.auth_failed {
            *auth_failures.entry(r.peer.to_string()).or_default() += 1;
        }
    }
    Json(json!({"by_peer_and_status": by_peer, "auth_failures_by_peer": auth_failures}))
        .into_response()
}

async fn list_faults(State(fleet): State<Fleet>, Path(name): Path<String>) -> Response {
    match device(&fleet, &name) {
        Ok(fg) => Json(fg.faults()).into_response(),
        Err(r) => r.into_response(),
    }
}

async fn add_fault(
    State(fleet): State<Fleet>,
    Path(name): Path<String>,
    Json(rule): Json<Value>,
) -> Response {
    let fg = match device(&fleet, &name) {
        Ok(fg) => fg,
        Err(r) => return r.into_response(),
    };
    let rule = match fault_rule::<FaultRule>(rule, FaultRule::check) {
        Ok(rule) => rule,
        Err(why) => return unprocessable(why),
    };
    fg.add_fault(rule);
    StatusCode::CREATED.into_response()
}

async fn clear_faults(State(fleet): State<Fleet>, Path(name): Path<String>) -> Response {
    match device(&fleet, &name) {
        Ok(fg) => {
            fg.clear_faults();
            StatusCode::NO_CONTENT.into_response()
        }
        Err(r) => r.into_response(),
    }
}

/// A fault rule from JSON, or why not (an unknown field included), naming the field.
pub fn fault_rule<R: serde::de::DeserializeOwned>(
    body: Value,
    check: impl FnOnce(&R) -> Result<(), String>,
) -> Result<R, String> {
    let rule: R = serde_json::from_value(body).map_err(|e| e.to_string())?;
    check(&rule)?;
    Ok(rule)
}

/// 422 with the reason a body was refused.
pub fn unprocessable(why: String) -> Response {
    (
        StatusCode::UNPROCESSABLE_ENTITY,
        Json(json!({"error": why})),
    )
        .into_response()
}

async fn set_global(
    State(fleet): State<Fleet>,
    Path(name): Path<String>,
    Json(global): Json<GlobalSettings>,
) -> Response {
    match device(&fleet, &name) {
        Ok(fg) => {
            fg.set_global(global);
            StatusCode::NO_CONTENT.into_response()
        }
        Err(r) => r.into_response(),
    }
}

#[derive(Deserialize)]
struct KeyBody {
    key: Option<String>,
}

async fn set_key(
    State(fleet): State<Fleet>,
    Path((name, user)): Path<(String, String)>,
    Json(body): Json<KeyBody>,
) -> Response {
    match device(&fleet, &name) {
        Ok(fg) if fg.set_api_key(&user, body.key.as_deref()) => {
            StatusCode::NO_CONTENT.into_response()
        }
        Ok(_) => not_found("API user"),
        Err(r) => r.into_response(),
    }
}

async fn save_scenario(State(fleet): State<Fleet>, Path(name): Path<String>) -> Response {
    match device(&fleet, &name) {
        Ok(fg) => Json(fg.snapshot()).into_response(),
        Err(r) => r.into_response(),
    }
}

async fn load_scenario(
    State(fleet): State<Fleet>,
    Path(name): Path<String>,
    Json(scenario): Json<FortiGateScenario>,
) -> Response {
    match device(&fleet, &name) {
        Ok(fg) => match fg.load(&scenario) {
            Ok(()) => StatusCode::NO_CONTENT.into_response(),
            Err(e) => (
                StatusCode::UNPROCESSABLE_ENTITY,
                Json(json!({"error": e.to_string()})),
            )
                .into_response(),
        },
        Err(r) => r.into_response(),
    }
}

async fn reboot(State(fleet): State<Fleet>, Path(name): Path<String>) -> Response {
    match device(&fleet, &name) {
        Ok(fg) => {
            fg.reboot();
            StatusCode::NO_CONTENT.into_response()
        }
        Err(r) => r.into_response(),
    }
}

async fn feed_state(
    State(fleet): State<Fleet>,
    Path((name, vdom, feed)): Path<(String, String, String)>,
) -> Response {
    match device(&fleet, &name) {
        Ok(fg) => match fg.feed_state(&vdom, &feed) {
            Some(state) => Json(state).into_response(),
            None => not_found("external resource"),
        },
        Err(r) => r.into_response(),
    }
}

async fn feed_polls(
    State(fleet): State<Fleet>,
    Path((name, vdom, feed)): Path<(String, String, String)>,
) -> Response {
    match device(&fleet, &name) {
        Ok(fg) => Json(fg.feed_polls(&vdom, &feed)).into_response(),
        Err(r) => r.into_response(),
    }
}

async fn objects(
    State(fleet): State<Fleet>,
    Path((name, vdom, path, tbl)): Path<(String, String, String, String)>,
) -> Response {
    match (device(&fleet, &name), table(&path, &tbl)) {
        (Ok(fg), Ok(t)) => Json(fg.objects(&vdom, t)).into_response(),
        (Err(r), _) | (_, Err(r)) => r.into_response(),
    }
}

async fn put_object(
    State(fleet): State<Fleet>,
    Path((name, vdom, path, tbl)): Path<(String, String, String, String)>,
    Json(object): Json<Value>,
) -> Response {
    match (device(&fleet, &name), table(&path, &tbl)) {
        (Ok(fg), Ok(t)) => match fg.put_object(&vdom, t, object) {
            Ok(()) => StatusCode::NO_CONTENT.into_response(),
            Err(e) => (
                StatusCode::UNPROCESSABLE_ENTITY,
                Json(json!({"error": e.code, "cli_error": e.cli_error})),
            )
                .into_response(),
        },
        (Err(r), _) | (_, Err(r)) => r.into_response(),
    }
}

async fn delete_object(
    State(fleet): State<Fleet>,
    Path((name, vdom, path, tbl, object)): Path<(String, String, String, String, String)>,
) -> Response {
    match (device(&fleet, &name), table(&path, &tbl)) {
        (Ok(fg), Ok(t)) => match fg.delete_object(&vdom, t, &object) {
            Ok(()) => StatusCode::NO_CONTENT.into_response(),
            Err(e) => (
                StatusCode::UNPROCESSABLE_ENTITY,
                Json(json!({"error": e.code, "cli_error": e.cli_error})),
            )
                .into_response(),
        },
        (Err(r), _) | (_, Err(r)) => r.into_response(),
    }
}
