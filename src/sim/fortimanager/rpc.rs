//! One HTTP request to `/jsonrpc`: the envelope, authentication, login/logout, the params in
//! order (with injected faults), the proxy fan-out, and the request log.

use std::net::IpAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use serde_json::{Map, Value, json};

use super::ManagedDevices;
use super::dispatch::{Answer, Caller, dispatch};
use super::fault::{FaultRule, HttpFaultBody, error_page};
use super::proxy::{self, ProxyCall};
use super::scenario::{RpcPermit, UserType};
use super::state::{FmgState, RequestRecord};
use super::status::Status;
use super::url::{Route, route, segments};

/// What the simulator shares between connections.
pub struct Shared {
    /// All mutable state; never held across an await.
    pub state: Mutex<FmgState>,
    /// The FortiGates behind `/sys/proxy/json`.
    pub devices: Arc<dyn ManagedDevices>,
}

impl Shared {
    /// Locks the state (a panic elsewhere does not wedge the simulator).
    pub fn state(&self) -> MutexGuard<'_, FmgState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// The parts of an HTTP request the JSON-RPC layer needs.
#[derive(Debug, Clone)]
pub struct Incoming {
    /// Raw body (JSON under any Content-Type).
    pub body: bytes::Bytes,
    /// `Authorization: Bearer` value.
    pub bearer: Option<String>,
    /// `?access_token=` value.
    pub access_token: Option<String>,
    /// Client source address.
    pub peer: IpAddr,
    /// `User-Agent` header.
    pub user_agent: Option<String>,
}

/// The HTTP answer: status, body and extra headers.
#[derive(Debug, Clone)]
pub struct Outgoing {
    /// HTTP status.
    pub status: u16,
    /// Body.
    pub body: OutBody,
    /// Headers an injected fault adds.
    pub headers: Vec<(String, String)>,
    /// Drop the connection instead of answering.
    pub reset: bool,
}

/// The body of an HTTP answer.
#[derive(Debug, Clone, PartialEq)]
pub enum OutBody {
    /// A JSON-RPC answer.
    Json(Value),
    /// An HTML page (an injected fault).
    Html(String),
    /// Nothing (an injected bare status).
    Empty,
}

enum Auth {
    Anonymous,
    Invalid,
    Session { caller: Caller, token: String },
    Key(Caller),
}

impl Auth {
    fn caller(&self) -> Option<&Caller> {
        match self {
            Auth::Session { caller, .. } | Auth::Key(caller) => Some(caller),
            Auth::Anonymous | Auth::Invalid => None,
        }
    }
}

enum Pending {
    Done(Answer),
    Proxy(ProxyCall),
}

struct Slot {
    url: Value,
    norm_url: String,
    method: String,
    user: Option<String>,
    forced: Option<Status>,
    pending: Pending,
}

/// Answers one `/jsonrpc` request.
pub async fn handle(shared: &Shared, req: Incoming) -> Outgoing {
    let Ok(body) = serde_json::from_slice::<Value>(&req.body) else {
        // The transport-level failure shape is unconfirmed (§1.1); answer a JSON-RPC -8.
        let body =
            json!({"id": null, "result": [{"status": Status::invalid_parameter().to_json()}]});
        return Outgoing {
            status: 200,
            body: OutBody::Json(body),
            headers: Vec::new(),
            reset: false,
        };
    };
    let id = body.get("id").cloned().unwrap_or(Value::Null);
    let method = body
        .get("method")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let mut params: Vec<Map<String, Value>> = match body.get("params") {
        Some(Value::Array(list)) => list
            .iter()
            .map(|p| p.as_object().cloned().unwrap_or_default())
            .collect(),
        Some(Value::Object(p)) => vec![p.clone()],
        _ => vec![Map::new()],
    };
    // `verbose` is an envelope field (§1.2); a param-level one is tolerated too.
    if let Some(verbose) = body.get("verbose") {
        for p in &mut params {
            p.entry("verbose").or_insert_with(|| verbose.clone());
        }
    }
    let mut latency = 0;
    // The rule that answers the whole HTTP request, and the headers of every rule that fired.
    let mut request_fault: Option<FaultRule> = None;
    let mut headers = Vec::new();
    let mut login_token = None;
    let (auth_sid, slots) = {
        let mut state = shared.state();
        let auth = authenticate(&mut state, &body, &req);
        let mut slots = Vec::with_capacity(params.len());
        for param in &params {
            let url = param.get("url").cloned().unwrap_or(Value::Null);
            let url_text = url.as_str().unwrap_or_default();
            let norm_url = format!("/{}", segments(url_text).join("/"));
            let mut forced = None;
            // One rule per param, none once a rule answers the request: rules queue, they
            // never stack on one request.
            let fault = match request_fault {
                None => state.take_fault(&norm_url),
                Some(_) => None,
            };
            if let Some(fault) = fault {
                latency = latency.max(fault.latency_ms);
                headers.extend(fault.headers.clone());
                if let Some(code) = fault.code {
                    forced = Some(Status::new(
                        code,
                        fault
                            .message
                            .clone()
                            .unwrap_or_else(|| "injected fault".into()),
                    ));
                }
                if fault.answers_request() {
                    request_fault = Some(fault);
                }
            }
            let http_status = request_fault.as_ref().and_then(|f| f.http_status);
            let mut user = auth.caller().map(|c| c.user.userid.clone());
            // A forced code or HTTP status refuses the param before it runs; a reset runs
            // it and then loses the answer (the nastier case for a retrying client).
            let pending = if let Some(st) = forced.clone() {
                Pending::Done(Err(st))
            } else if http_status.is_some() {
                Pending::Done(Err(Status::new(-1, "injected HTTP status")))
            } else if url_text.is_empty() {
                Pending::Done(Err(Status::invalid_parameter()))
            } else {
                match (route(url_text), auth.caller()) {
                    (Route::Login, _) if method == "exec" => {
                        let (answer, who, token) = login(&mut state, param.get("data"), req.peer);
                        user = who;
                        login_token = token.or(login_token);
                        Pending::Done(answer)
                    }
                    (Route::Logout, _) if method == "exec" => Pending::Done(match &auth {
                        Auth::Session { token, .. } if state.sessions.logout(token) => Ok(None),
                        _ => Err(Status::no_permission()),
                    }),
                    (_, None) => Pending::Done(Err(Status::no_permission())),
                    (Route::Proxy, Some(caller)) if method == "exec" => {
                        let data = param.get("data").cloned().unwrap_or(Value::Null);
                        match proxy::plan(&state, caller, &data) {
                            Ok(call) => Pending::Proxy(call),
                            Err(st) => Pending::Done(Err(st)),
                        }
                    }
                    (r, Some(caller)) => {
                        Pending::Done(dispatch(&mut state, caller, &method, &r, param))
                    }
                }
            };
            slots.push(Slot {
                url,
                norm_url,
                method: method.clone(),
                user,
                forced,
                pending,
            });
        }
        (auth.caller().map(|c| c.sid), slots)
    };
    if latency > 0 {
        tokio::time::sleep(Duration::from_millis(latency)).await;
    }
    let mut results = Vec::with_capacity(slots.len());
    let mut records = Vec::with_capacity(slots.len());
    for slot in slots {
        let answer = match slot.pending {
            Pending::Done(answer) => answer,
            Pending::Proxy(call) => Ok(Some(proxy::fan_out(shared.devices.as_ref(), call).await)),
        };
        let answer = match slot.forced {
            Some(st) => Err(st),
            None => answer,
        };
        let (status, data) = match answer {
            Ok(data) => (Status::ok(), data),
            Err(st) => (st, None),
        };
        let mut item = json!({"status": status.to_json(), "url": slot.url});
        if let Some(data) = data {
            item["data"] = data;
        }
        results.push(item);
        records.push(RequestRecord {
            peer: req.peer,
            user: slot.user,
            method: slot.method,
            url: slot.norm_url,
            code: status.code,
            user_agent: req.user_agent.clone(),
        });
    }
    {
        let mut state = shared.state();
        for rec in records {
            state.record(rec);
        }
    }
    let mut reply = json!({"id": id, "result": results});
    // Login answers the token; later calls answer the numeric session id (§1.3).
    if let Some(token) = login_token {
        reply["session"] = json!(token);
    } else if let Some(sid) = auth_sid {
        reply["session"] = json!(sid);
    }
    let Some(fault) = request_fault else {
        return Outgoing {
            status: 200,
            body: OutBody::Json(reply),
            headers,
            reset: false,
        };
    };
    let status = fault.http_status.unwrap_or(200);
    let body = match (fault.http_status, fault.body) {
        (None, _) | (_, HttpFaultBody::Empty) => OutBody::Empty,
        (Some(_), HttpFaultBody::Jsonrpc) => OutBody::Json(reply),
        (Some(status), HttpFaultBody::Html) => OutBody::Html(error_page(status)),
    };
    Outgoing {
        status,
        body,
        headers,
        reset: fault.reset,
    }
}

fn authenticate(state: &mut FmgState, body: &Value, req: &Incoming) -> Auth {
    let key = match (&req.bearer, &req.access_token) {
        (Some(k), _) => Some(k.clone()),
        (None, Some(k)) if state.access_token_query_allowed() => Some(k.clone()),
        (None, Some(_)) => return Auth::Invalid,
        (None, None) => None,
    };
    if let Some(key) = key {
        if !state.api_keys_supported() {
            return Auth::Invalid;
        }
        let user = state
            .admins
            .values()
            .find(|u| u.user_type == UserType::Api && u.api_key.as_deref() == Some(key.as_str()))
            .cloned();
        return match user {
            // Trusted hosts are mandatory for API-key admins; how a miss is refused is
            // unconfirmed, so it looks like any other bad key: -11.
            Some(user) if user.trusts(req.peer) => {
                let sid = state.sessions.api_session(&user.userid);
                Auth::Key(Caller { sid, user })
            }
            _ => Auth::Invalid,
        };
    }
    let Some(token) = body.get("session").and_then(Value::as_str) else {
        return Auth::Anonymous;
    };
    let Some(session) = state.sessions.touch(token) else {
        return Auth::Invalid;
    };
    match state.admins.get(&session.user) {
        Some(user) => Auth::Session {
            caller: Caller {
                sid: session.id,
                user: user.clone(),
            },
            token: token.to_string(),
        },
        None => Auth::Invalid,
    }
}

/// `exec sys/login/user`: answer, the user it names, and the new token.
fn login(
    state: &mut FmgState,
    data: Option<&Value>,
    peer: IpAddr,
) -> (Answer, Option<String>, Option<String>) {
    let creds = match data {
        Some(Value::Array(list)) if list.len() == 1 => list[0].as_object(),
        Some(Value::Object(o)) => Some(o),
        _ => None,
    };
    let Some(creds) = creds else {
        return (Err(Status::invalid_parameter()), None, None);
    };
    let user_name = creds
        .get("user")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let passwd = creds
        .get("passwd")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let Some(user) = state.admins.get(&user_name).cloned() else {
        return (Err(Status::login_fail()), Some(user_name), None);
    };
    // A source outside the trusted hosts cannot log in; the exact code is unconfirmed, and
    // "Login fail" avoids telling a stranger which part was wrong.
    if user.password.as_deref() != Some(passwd) || !user.trusts(peer) {
        return (Err(Status::login_fail()), Some(user_name), None);
    }
    if user.rpc_permit == RpcPermit::None {
        return (Err(Status::no_permission()), Some(user_name), None);
    }
    let (token, _id) = state.sessions.login(&user_name);
    (Ok(None), Some(user_name), Some(token))
}
