//! The HTTP(S) side of a simulated FortiGate and its in-process control surface. The wire
//! layer only reads the request, applies injected faults and calls the pure pipeline.

use std::net::{IpAddr, Ipv4Addr};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Extension, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use ipnet::IpNet;
use serde_json::Value;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use super::cmdb::{CmdbError, Table};
use super::envelope::{Body, Reply, Request};
use super::fault::FaultRule;
use super::feed::PollRecord;
use super::rest;
use super::scenario::{FortiGateScenario, GlobalSettings, Profile};
use super::state::{FortiGateState, RequestRecord};
use super::version::FosVersion;
use crate::sim::listener::{Peer, ResetConnection, listen};

type Shared = Arc<Mutex<FortiGateState>>;

/// A running simulated FortiGate; stops on drop.
pub struct FortiGateHandle {
    state: Shared,
    /// How the device listens (kept when a scenario is loaded into the running device).
    listen: (std::net::IpAddr, bool),
    seed: u64,
    name: String,
    url: String,
    ca_pem: Option<String>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
    /// Pulls feed-mode external resources; aborted with the device.
    poller: Option<JoinHandle<()>>,
}

/// Starts one simulated FortiGate.
pub async fn start(scenario: &FortiGateScenario, seed: u64) -> anyhow::Result<FortiGateHandle> {
    let mut state = FortiGateState::from_scenario(scenario, seed)?;
    // Bind first so cookie names can carry the real port.
    let listener_port = scenario.port;
    let shared: Shared = Arc::new(Mutex::new(FortiGateState::from_scenario(scenario, seed)?));
    let app = Router::new()
        .fallback(device_request)
        .with_state(shared.clone());
    let listening = listen(scenario.bind, listener_port, scenario.tls, app).await?;
    let port = listening
        .url
        .rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .unwrap_or(443);
    state.port = port;
    *lock(&shared) = state;
    let signals = lock(&shared).feed_signals.clone();
    let poller = tokio::spawn(super::feed_poll::run(shared.clone(), signals));
    tracing::info!(device = %scenario.name, url = %listening.url, version = %scenario.version, "simulated FortiGate listening");
    Ok(FortiGateHandle {
        state: shared,
        listen: (scenario.bind, scenario.tls),
        seed,
        name: scenario.name.clone(),
        url: listening.url,
        ca_pem: listening.ca_pem,
        stop: Some(listening.stop),
        task: Some(listening.task),
        poller: Some(poller),
    })
}

fn lock(state: &Shared) -> MutexGuard<'_, FortiGateState> {
    state.lock().unwrap_or_else(|p| p.into_inner())
}

fn to_response(reply: Reply) -> Response {
    let status = StatusCode::from_u16(reply.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let (content_type, body) = match reply.body {
        Body::Json(v) => (Some("application/json"), v.to_string()),
        Body::Html(h) => (Some("text/html; charset=iso-8859-1"), h),
        Body::Text(t) => (Some("text/html"), t),
        // An empty body says nothing about its type.
        Body::Empty => (None, String::new()),
    };
    let mut response = (status, body).into_response();
    match content_type {
        Some(ct) => response
            .headers_mut()
            .insert(header::CONTENT_TYPE, header::HeaderValue::from_static(ct)),
        None => response.headers_mut().remove(header::CONTENT_TYPE),
    };
    for (name, value) in reply.headers {
        if let (Ok(name), Ok(value)) = (
            header::HeaderName::try_from(name),
            header::HeaderValue::try_from(value),
        ) {
            response.headers_mut().append(name, value);
        }
    }
    response
}

async fn device_request(
    State(state): State<Shared>,
    Extension(Peer(peer)): Extension<Peer>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let text = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    let request = Request {
        method: method.as_str().to_ascii_uppercase(),
        path: uri.path().to_string(),
        query: uri
            .query()
            .map(|q| {
                url::form_urlencoded::parse(q.as_bytes())
                    .into_owned()
                    .collect()
            })
            .unwrap_or_default(),
        authorization: text("authorization"),
        cookie: text("cookie"),
        csrf: text("x-csrftoken"),
        transaction: text("x-transaction-id"),
        body: body.to_vec(),
        peer: peer.ip(),
        internal: false,
        user_agent: text("user-agent"),
    };
    let fault = lock(&state).take_fault(&request.method, &request.path);
    if let Some(fault) = &fault {
        if fault.latency_ms > 0 {
            tokio::time::sleep(Duration::from_millis(fault.latency_ms)).await;
        }
        if fault.hang {
            record_fault(&state, &request, 0);
            std::future::pending::<()>().await;
        }
        let forced = fault.forced_reply(&lock(&state), &request);
        if let Some(reply) = forced {
            record_fault(&state, &request, reply.status);
            return to_response(reply);
        }
    }
    let mut reply = {
        let mut guard = lock(&state);
        rest::handle(&mut guard, &request, tokio::time::Instant::now())
    };
    if let Some(fault) = &fault {
        reply = fault.with_headers(reply);
    }
    let mut response = to_response(reply);
    if fault.is_some_and(|f| f.reset) {
        response.extensions_mut().insert(ResetConnection);
    }
    response
}

fn record_fault(state: &Shared, request: &Request, status: u16) {
    lock(state).record(RequestRecord {
        peer: request.peer,
        method: request.method.clone(),
        path: request.path.clone(),
        query_names: request.query_names(),
        status,
        user: None,
        auth_failed: false,
        user_agent: request.user_agent.clone(),
        at_ms: 0,
    });
}

impl Drop for FortiGateHandle {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
        if let Some(poller) = self.poller.take() {
            poller.abort();
        }
    }
}

impl FortiGateHandle {
    /// Device name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Base URL, e.g. `https://127.0.0.1:40123`.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// PEM of the self-signed certificate to trust (None for plain HTTP).
    pub fn ca_pem(&self) -> Option<&str> {
        self.ca_pem.as_deref()
    }

    /// Stops listening and closes every connection.
    pub async fn shutdown(mut self) {
        if let Some(poller) = self.poller.take() {
            poller.abort();
        }
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }

    fn state(&self) -> MutexGuard<'_, FortiGateState> {
        lock(&self.state)
    }

    /// Runs a REST request in-process as a trusted super-admin (no auth, no lockout), as
    /// FortiManager's `/sys/proxy/json` reaches its devices.
    pub fn dispatch_internal(
        &self,
        method: &str,
        path_and_query: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        dispatch(&self.state, method, path_and_query, body)
    }

    /// Firmware version.
    pub fn version(&self) -> FosVersion {
        self.state().version
    }

    /// Switches the firmware version (and every version-dependent behaviour).
    pub fn set_version(&self, version: FosVersion) {
        self.state().version = version;
    }

    /// Replaces `config system global` settings.
    pub fn set_global(&self, global: GlobalSettings) {
        let mut state = self.state();
        state.global = global;
        let settings = state.lockout_settings();
        state
            .lockout
            .cap_pending(settings, tokio::time::Instant::now());
    }

    /// Sets (or revokes with None) an API user's key, as Regenerate in the GUI does.
    pub fn set_api_key(&self, user: &str, key: Option<&str>) -> bool {
        match self.state().api_users.get_mut(user) {
            Some(u) => {
                u.key = key.map(str::to_string);
                true
            }
            None => false,
        }
    }

    /// Sets an API user's trusted hosts.
    pub fn set_trusthosts(&self, user: &str, nets: Vec<IpNet>) -> bool {
        match self.state().api_users.get_mut(user) {
            Some(u) => {
                u.trusthosts = nets;
                u.trusthost_ids.clear();
                true
            }
            None => false,
        }
    }

    /// Sets an API user's profile.
    pub fn set_accprofile(&self, user: &str, profile: &str) -> bool {
        match self.state().api_users.get_mut(user) {
            Some(u) => {
                u.accprofile = profile.to_string();
                true
            }
            None => false,
        }
    }

    /// Adds or replaces a custom admin profile.
    pub fn set_profile(&self, name: &str, profile: Profile) {
        self.state().profiles.insert(name.to_string(), profile);
    }

    /// Creates or updates an object out of band (an admin in the GUI), with device validation.
    pub fn put_object(&self, vdom: &str, table: Table, object: Value) -> Result<(), CmdbError> {
        let mut state = self.state();
        let limits = state.limits();
        let name = object["name"].as_str().unwrap_or_default().to_string();
        let tables = state.vdoms.get_mut(vdom).ok_or_else(CmdbError::not_found)?;
        let result = if tables.get(table, &name).is_some() {
            tables.update(table, &name, &object, limits)
        } else {
            tables.create(table, &object, limits).map(|_| ())
        };
        if result.is_ok() {
            state.revision += 1;
            // A changed feed is pulled at once, as after a GUI edit.
            state.feed_signals.wake.notify_one();
        }
        result
    }

    /// Deletes an object out of band (refused with -23 while referenced, as in the GUI).
    pub fn delete_object(&self, vdom: &str, table: Table, name: &str) -> Result<(), CmdbError> {
        let mut state = self.state();
        state
            .vdoms
            .get_mut(vdom)
            .ok_or_else(CmdbError::not_found)?
            .delete(table, name)?;
        state.feed_signals.wake.notify_one();
        Ok(())
    }

    /// Removes a group member out of band.
    pub fn remove_member(
        &self,
        vdom: &str,
        table: Table,
        group: &str,
        member: &str,
    ) -> Result<(), CmdbError> {
        let mut state = self.state();
        let limits = state.limits();
        state
            .vdoms
            .get_mut(vdom)
            .ok_or_else(CmdbError::not_found)?
            .remove_member(table, group, member, limits)
    }

    /// Adds a group member out of band.
    pub fn add_member(
        &self,
        vdom: &str,
        table: Table,
        group: &str,
        member: &str,
    ) -> Result<(), CmdbError> {
        let mut state = self.state();
        let limits = state.limits();
        state
            .vdoms
            .get_mut(vdom)
            .ok_or_else(CmdbError::not_found)?
            .add_member(table, group, member, limits)
    }

    /// One object.
    pub fn object(&self, vdom: &str, table: Table, name: &str) -> Option<Value> {
        self.state().vdoms.get(vdom)?.get(table, name).cloned()
    }

    /// Every object of a table.
    pub fn objects(&self, vdom: &str, table: Table) -> Vec<Value> {
        self.state()
            .vdoms
            .get(vdom)
            .map(|t| t.list(table).cloned().collect())
            .unwrap_or_default()
    }

    /// Member names of a group (None when the group does not exist).
    pub fn group_members(&self, vdom: &str, table: Table, group: &str) -> Option<Vec<String>> {
        let object = self.object(vdom, table, group)?;
        Some(
            object["member"]
                .as_array()?
                .iter()
                .filter_map(|m| m["name"].as_str().map(str::to_string))
                .collect(),
        )
    }

    /// The entries a feed holds now (pulled or pushed; valid and invalid, after truncation).
    pub fn feed_entries(&self, vdom: &str, feed: &str) -> Vec<String> {
        self.state()
            .feeds
            .get(&(vdom.to_string(), feed.to_string()))
            .map(|f| f.entries.clone())
            .unwrap_or_default()
    }

    /// The feed as `monitor/system/external-resource/entry-list` shows it (None: no such
    /// external resource).
    pub fn feed_state(&self, vdom: &str, feed: &str) -> Option<Value> {
        self.state()
            .entry_list(&(vdom.to_string(), feed.to_string()), false, false)
    }

    /// Every pull of a feed so far (oldest first): URL, source, basic-auth user, outcome.
    pub fn feed_polls(&self, vdom: &str, feed: &str) -> Vec<PollRecord> {
        self.state().polls_of(&(vdom.to_string(), feed.to_string()))
    }

    /// Waits until a feed has been pulled `count` times (or `timeout` passes) and answers
    /// its pulls; event-driven, for tests.
    pub async fn wait_for_polls(
        &self,
        vdom: &str,
        feed: &str,
        count: usize,
        timeout: Duration,
    ) -> Vec<PollRecord> {
        let mut polled = self.state().feed_signals.polled.subscribe();
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let polls = self.feed_polls(vdom, feed);
            if polls.len() >= count {
                return polls;
            }
            match tokio::time::timeout_at(deadline, polled.changed()).await {
                Ok(Ok(())) => {}
                _ => return self.feed_polls(vdom, feed),
            }
        }
    }

    /// The request log (oldest first).
    pub fn requests(&self) -> Vec<RequestRecord> {
        self.state().log.iter().cloned().collect()
    }

    /// Forgets the request log.
    pub fn clear_requests(&self) {
        self.state().log.clear();
    }

    /// Requests from `peer` answered with `status`.
    pub fn count_status_from(&self, peer: IpAddr, status: u16) -> usize {
        self.state()
            .log
            .iter()
            .filter(|r| r.peer == peer && r.status == status)
            .count()
    }

    /// Requests from `peer`.
    pub fn count_from(&self, peer: IpAddr) -> usize {
        self.state().log.iter().filter(|r| r.peer == peer).count()
    }

    /// Authentication failures the device counted from `peer`.
    pub fn auth_failures_from(&self, peer: IpAddr) -> usize {
        self.state()
            .log
            .iter()
            .filter(|r| r.peer == peer && r.auth_failed)
            .count()
    }

    /// Time left in `peer`'s lockout.
    pub fn lockout_remaining(&self, peer: IpAddr) -> Option<Duration> {
        self.state()
            .lockout
            .locked(peer, tokio::time::Instant::now())
    }

    /// Queues a fault rule behind the others (see [`FaultRule`] for the order they fire in).
    pub fn add_fault(&self, rule: FaultRule) {
        self.state().faults.push(rule);
    }

    /// The fault rules still queued, first to fire first.
    pub fn faults(&self) -> Vec<FaultRule> {
        self.state().faults.rules().to_vec()
    }

    /// Removes every fault rule.
    pub fn clear_faults(&self) {
        self.state().faults.clear();
    }

    /// The device as a scenario (users, settings, objects as they are now): save it, edit it,
    /// load it again.
    pub fn snapshot(&self) -> FortiGateScenario {
        let state = self.state();
        let objects = state
            .vdoms
            .iter()
            .map(|(vdom, tables)| {
                let list = |t: Table| tables.list(t).cloned().collect::<Vec<_>>();
                let objects = super::scenario::VdomObjects {
                    addresses: list(Table::Address),
                    addresses6: list(Table::Address6),
                    addrgrps: list(Table::Addrgrp),
                    addrgrps6: list(Table::Addrgrp6),
                    external_resources: list(Table::ExternalResource),
                };
                (vdom.clone(), objects)
            })
            .collect();
        FortiGateScenario {
            name: state.name.clone(),
            version: state.version,
            serial: state.serial.clone(),
            model: state.model.clone(),
            hostname: state.hostname.clone(),
            bind: self.listen.0,
            port: state.port,
            tls: self.listen.1,
            vdoms: state.vdom_order.clone(),
            global: state.global.clone(),
            api_users: state.api_users.values().cloned().collect(),
            admins: state.admins.values().cloned().collect(),
            profiles: state.profiles.clone(),
            addrgrp_member_cap: state.member_cap,
            objects,
            feeds: state.feed_settings.clone(),
        }
    }

    /// Replaces the device's state with `scenario` (the listener, name and port stay): the
    /// request log, sessions, lockouts and faults start empty.
    pub fn load(&self, scenario: &FortiGateScenario) -> anyhow::Result<()> {
        let mut fresh = FortiGateState::from_scenario(scenario, self.seed)?;
        let mut state = self.state();
        fresh.port = state.port;
        fresh.name = state.name.clone();
        // The poller keeps listening on the same signals; the loaded feeds are pulled anew.
        fresh.feed_signals = state.feed_signals.clone();
        *state = fresh;
        state.feed_signals.wake.notify_one();
        Ok(())
    }

    /// Reboots: clears lockouts and sessions.
    pub fn reboot(&self) {
        let mut state = self.state();
        state.lockout.clear();
        state.sessions.clear();
    }
}

fn dispatch(
    state: &Shared,
    method: &str,
    path_and_query: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let (path, query) = path_and_query
        .split_once('?')
        .unwrap_or((path_and_query, ""));
    let request = Request {
        method: method.to_ascii_uppercase(),
        path: path.to_string(),
        query: url::form_urlencoded::parse(query.as_bytes())
            .into_owned()
            .collect(),
        authorization: None,
        cookie: None,
        csrf: None,
        transaction: None,
        body: body.map(|b| b.to_string().into_bytes()).unwrap_or_default(),
        peer: IpAddr::V4(Ipv4Addr::LOCALHOST),
        internal: true,
        user_agent: None,
    };
    // A fault injected on the device answers proxied requests too: FortiManager reaches the
    // same REST API. Only a forced status applies; latency, reset and hang are connection
    // behaviour this in-process path has no connection for.
    let forced = {
        let mut guard = lock(state);
        let fault = guard.take_fault(&request.method, &request.path);
        fault.and_then(|f| f.forced_reply(&guard, &request))
    };
    let reply = match forced {
        Some(reply) => reply,
        None => rest::handle(&mut lock(state), &request, tokio::time::Instant::now()),
    };
    let value = match reply.body {
        Body::Json(v) => v,
        Body::Html(h) | Body::Text(h) => Value::String(h),
        Body::Empty => Value::Null,
    };
    (reply.status, value)
}
