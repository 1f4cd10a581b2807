//! The FortiManager JSON-RPC client: session or API-key auth through the device's Guard, ADOM
//! objects, workspace lock → commit → unlock with bounded retries, `/sys/proxy/json`, and admin
//! users' trusted hosts.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use serde_json::{Map, Value, json};

use super::answer::{RpcAnswer, RpcResult};
use super::codes;
use crate::device::credentials::Credentials;
use crate::device::error::{Context, DeviceError};
use crate::device::guard::{Guard, Outcome};
use crate::device::transport::{MAX_BODY_BYTES, TransportConfig, exchange, http_client};
use crate::device::untrusted::{body_kind, device_text};

/// One device's answer through `/sys/proxy/json`.
#[derive(Debug, Clone, PartialEq)]
pub struct ProxyResult {
    /// FortiManager device name.
    pub target: String,
    /// Per-target status code (0 = reached).
    pub code: i64,
    /// Per-target message.
    pub message: String,
    /// The FortiOS body, when the device answered.
    pub response: Option<Value>,
}

/// What `/dvmdb/adom/<adom>` says about an ADOM.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AdomFacts {
    /// FortiOS major version of the ADOM (`os_ver`).
    pub major: u32,
    /// FortiOS minor version of the ADOM (`mr`).
    pub minor: u32,
    /// The per-ADOM workspace flag, when the FortiManager reports one.
    pub workspace: Option<bool>,
}

/// A FortiManager client for one ADOM.
pub struct FortiManagerClient {
    device: String,
    url: String,
    adom: String,
    http: reqwest::Client,
    credentials: Credentials,
    fingerprint: String,
    guard: Arc<Guard>,
    timeout: Duration,
    session: tokio::sync::Mutex<Option<String>>,
    next_id: AtomicU64,
    lock_retries: u32,
    lock_backoff: Duration,
    /// One workspace pass at a time through this client (see [`FortiManagerClient::workspace_turn`]).
    workspace: tokio::sync::Mutex<()>,
    /// Set once the ADOM was checked for a lock an earlier run left.
    stale_lock_checked: tokio::sync::OnceCell<()>,
}

/// Escapes a name for a FortiManager URL (`/` → `\/`).
pub fn escape_name(name: &str) -> String {
    name.replace('/', "\\/")
}

impl FortiManagerClient {
    /// A client for `base` (`https://host:port`) and `adom`, behind `guard`.
    pub fn new(
        device: impl Into<String>,
        base: &str,
        adom: &str,
        credentials: Credentials,
        transport: &TransportConfig,
        guard: Arc<Guard>,
    ) -> Result<Self, DeviceError> {
        let device = device.into();
        let http = http_client(transport, &device)?;
        Ok(Self {
            fingerprint: credentials.fingerprint(),
            device,
            url: format!("{}/jsonrpc", base.trim_end_matches('/')),
            adom: adom.to_string(),
            http,
            credentials,
            guard,
            timeout: transport.timeout,
            session: tokio::sync::Mutex::new(None),
            next_id: AtomicU64::new(1),
            lock_retries: 5,
            lock_backoff: Duration::from_millis(500),
            workspace: tokio::sync::Mutex::new(()),
            stale_lock_checked: tokio::sync::OnceCell::new(),
        })
    }

    /// Waits for this client's turn in the ADOM workspace. FortiManager ties the lock to the
    /// session, and every pass through this connection shares one (API-key calls share one
    /// per admin), so two passes inside lock → commit → unlock at once would commit or discard
    /// each other's half-made writes.
    pub async fn workspace_turn(&self) -> tokio::sync::MutexGuard<'_, ()> {
        self.workspace.lock().await
    }

    /// Marks the once-per-client check for a lock an earlier run left.
    pub fn stale_lock_checked(&self) -> &tokio::sync::OnceCell<()> {
        &self.stale_lock_checked
    }

    /// Attempts and first backoff when the ADOM lock is held by someone else.
    pub fn with_lock_retries(mut self, retries: u32, backoff: Duration) -> Self {
        self.lock_retries = retries;
        self.lock_backoff = backoff;
        self
    }

    /// The ADOM.
    pub fn adom(&self) -> &str {
        &self.adom
    }

    /// The guard every request passes.
    pub fn guard(&self) -> &Arc<Guard> {
        &self.guard
    }

    fn ctx(&self, method: &str, url: &str) -> Context {
        Context {
            device: self.device.clone(),
            method: method.to_string(),
            path: url.to_string(),
        }
    }

    /// Sends one JSON-RPC POST; returns the checked answer (see `answer`).
    async fn post(&self, body: &Value, ctx: &Context) -> Result<RpcAnswer, (Outcome, DeviceError)> {
        let mut req = self.http.post(&self.url).json(body);
        if let Credentials::Token(key) = &self.credentials {
            req = req.bearer_auth(key);
        }
        let write = ctx.method != "get";
        let started = std::time::Instant::now();
        let answer = exchange(req, ctx, self.timeout, write, MAX_BODY_BYTES).await;
        self.guard
            .metrics()
            .duration(&ctx.device, started.elapsed());
        let answer = answer.map_err(|e| (Outcome::NoVerdict, e))?;
        let status = answer.status;
        let unexpected = |detail: String| {
            (
                Outcome::NoVerdict,
                DeviceError::UnexpectedResponse {
                    ctx: ctx.clone(),
                    status,
                    detail,
                },
            )
        };
        match status {
            200 => RpcAnswer::from_slice(&answer.body).map_err(unexpected),
            401 => Err((
                Outcome::Refused,
                DeviceError::Unauthorized { ctx: ctx.clone() },
            )),
            429 => Err((
                Outcome::LockedOut,
                DeviceError::LockedOut {
                    ctx: ctx.clone(),
                    retry_after: Duration::ZERO,
                },
            )),
            502..=504 => Err((
                Outcome::NoVerdict,
                DeviceError::Unavailable {
                    ctx: ctx.clone(),
                    status,
                },
            )),
            // Another status: its code and message when it is a JSON-RPC answer, else what
            // kind of body it was.
            _ => Err(unexpected(match RpcAnswer::from_slice(&answer.body) {
                Ok(a) => format!(
                    "a JSON-RPC answer with code {}: {}",
                    a.first().code,
                    a.first().message
                ),
                Err(_) => body_kind(&answer.body),
            })),
        }
    }

    async fn login(&self, ctx: &Context) -> Result<String, (Outcome, DeviceError)> {
        let Credentials::Password { user, password } = &self.credentials else {
            return Err((
                Outcome::NoVerdict,
                DeviceError::Unauthorized { ctx: ctx.clone() },
            ));
        };
        let body = json!({"id": self.next_id.fetch_add(1, Ordering::Relaxed), "method": "exec", "params": [{"url": "/sys/login/user", "data": {"user": user, "passwd": password}}]});
        let answer = self.post(&body, ctx).await?;
        let first = answer.first();
        match (first.code, answer.session.as_deref()) {
            (0, Some(token)) => Ok(token.to_string()),
            (-22 | -11, _) => Err((
                Outcome::Refused,
                DeviceError::Unauthorized { ctx: ctx.clone() },
            )),
            (0, None) => Err((
                Outcome::NoVerdict,
                DeviceError::UnexpectedResponse {
                    ctx: ctx.clone(),
                    status: 200,
                    detail: "the login succeeded without a `session`".into(),
                },
            )),
            (code, _) => Err((
                Outcome::NoVerdict,
                codes::error(ctx.clone(), code, &first.message),
            )),
        }
    }

    /// One JSON-RPC call through the Guard; returns `result[0]`. With a session, a `-11` on a
    /// session that worked logs in again once; a refused login or key freezes the credential.
    pub async fn call(
        &self,
        method: &str,
        url: &str,
        extra: Map<String, Value>,
    ) -> Result<Value, DeviceError> {
        self.call_result(method, url, extra)
            .await
            .map(|r| Value::Object(r.raw))
    }

    /// Like [`FortiManagerClient::call`], the checked `result[0]`.
    pub async fn call_result(
        &self,
        method: &str,
        url: &str,
        extra: Map<String, Value>,
    ) -> Result<RpcResult, DeviceError> {
        self.call_inner(method, url, extra, false).await
    }

    async fn call_inner(
        &self,
        method: &str,
        url: &str,
        extra: Map<String, Value>,
        relogged: bool,
    ) -> Result<RpcResult, DeviceError> {
        let ctx = self.ctx(method, url);
        let pass = self.guard.admit(&self.device, &self.fingerprint).await?;
        let session_auth = matches!(self.credentials, Credentials::Password { .. });
        let session = if session_auth {
            let mut guard = self.session.lock().await;
            if guard.is_none() {
                match self.login(&ctx).await {
                    Ok(token) => *guard = Some(token),
                    Err((outcome, e)) => {
                        self.count(method, e.reason());
                        let window = self.guard.record(pass, &self.fingerprint, outcome);
                        return Err(e.with_lockout_window(window));
                    }
                }
            }
            guard.clone()
        } else {
            None
        };
        let mut param = extra;
        param.insert("url".into(), json!(url));
        let mut body = json!({"id": self.next_id.fetch_add(1, Ordering::Relaxed), "method": method, "params": [param.clone()], "verbose": 1});
        if let Some(token) = &session {
            body["session"] = json!(token);
        }
        let answer = match self.post(&body, &ctx).await {
            Ok(a) => a,
            Err((outcome, e)) => {
                self.count(method, e.reason());
                let window = self.guard.record(pass, &self.fingerprint, outcome);
                return Err(e.with_lockout_window(window));
            }
        };
        let mut results = answer.results;
        let result = results.swap_remove(0);
        let (code, message) = (result.code, result.message.clone());
        if code == -11 && session_auth && !relogged {
            // The session expired (F13): log in again once.
            *self.session.lock().await = None;
            self.guard
                .record(pass, &self.fingerprint, Outcome::NoVerdict);
            return Box::pin(self.call_inner(method, url, param, true)).await;
        }
        if code == -11 && !session_auth {
            // An API key refused (or without rights): never sent again until the Secret changes.
            self.guard.record(pass, &self.fingerprint, Outcome::Refused);
            self.count(method, "Unauthorized");
            return Err(DeviceError::Unauthorized { ctx });
        }
        self.guard
            .record(pass, &self.fingerprint, Outcome::Authorized);
        if code == 0 {
            self.count(method, "ok");
            return Ok(result);
        }
        let err = codes::error(ctx, code, &message);
        self.count(method, err.reason());
        Err(err)
    }

    fn count(&self, method: &str, outcome: &str) {
        self.guard.metrics().request(&self.device, method, outcome);
    }

    /// Ends the session (no-op with an API key).
    pub async fn logout(&self) {
        let token = self.session.lock().await.take();
        if let Some(token) = token {
            let body = json!({"id": 0, "method": "exec", "params": [{"url": "/sys/logout"}], "session": token});
            let req = self.http.post(&self.url).json(&body);
            let ctx = self.ctx("exec", "/sys/logout");
            let _ = exchange(req, &ctx, self.timeout, true, MAX_BODY_BYTES).await;
        }
    }

    // ---- typed calls -------------------------------------------------------------------

    fn obj_url(&self, table: &str) -> String {
        format!("/pm/config/adom/{}/obj/{table}", self.adom)
    }

    /// `/cli/global/system/status` (firmware version and serial).
    pub async fn system_status(&self) -> Result<Value, DeviceError> {
        self.get_object("/cli/global/system/status", Map::new())
            .await
            .map(Value::Object)
    }

    /// A `get` whose `data` must be one object.
    async fn get_object(
        &self,
        url: &str,
        extra: Map<String, Value>,
    ) -> Result<Map<String, Value>, DeviceError> {
        self.call_result("get", url, extra)
            .await?
            .data_object(&self.ctx("get", url))
    }

    /// Whether the ADOM needs lock → commit → unlock (global workspace mode not disabled).
    pub async fn workspace_enabled(&self) -> Result<bool, DeviceError> {
        let global = self
            .get_object("/cli/global/system/global", Map::new())
            .await?;
        let mode = global.get("workspace-mode").unwrap_or(&Value::Null);
        Ok(!matches!(mode.as_str(), Some("disabled"))
            && mode.as_i64() != Some(0)
            && !mode.is_null())
    }

    /// Objects of an ADOM table whose names start with `prefix`.
    pub async fn objects(
        &self,
        table: &str,
        prefix: Option<&str>,
    ) -> Result<Vec<Value>, DeviceError> {
        self.objects_fields(table, prefix, &[]).await
    }

    /// Like [`FortiManagerClient::objects`], returning only `fields` (all when empty).
    pub async fn objects_fields(
        &self,
        table: &str,
        prefix: Option<&str>,
        fields: &[&str],
    ) -> Result<Vec<Value>, DeviceError> {
        let mut extra = Map::new();
        if !fields.is_empty() {
            extra.insert("fields".into(), json!(fields));
        }
        if let Some(p) = prefix {
            extra.insert("filter".into(), json!(["name", "like", format!("{p}%")]));
        }
        let url = self.obj_url(table);
        self.call_result("get", &url, extra)
            .await?
            .data_rows(&self.ctx("get", &url))
    }

    /// One ADOM object, or None.
    pub async fn object(&self, table: &str, name: &str) -> Result<Option<Value>, DeviceError> {
        let url = format!("{}/{}", self.obj_url(table), escape_name(name));
        match self.get_object(&url, Map::new()).await {
            Ok(r) => Ok(Some(Value::Object(r))),
            Err(DeviceError::NotFound { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// `add` an object (a duplicate is an error).
    pub async fn add(&self, table: &str, data: Value) -> Result<(), DeviceError> {
        self.call("add", &self.obj_url(table), data_param(data))
            .await
            .map(|_| ())
    }

    /// `update` an existing object (keeps child tables).
    pub async fn update(&self, table: &str, name: &str, data: Value) -> Result<(), DeviceError> {
        self.call(
            "update",
            &format!("{}/{}", self.obj_url(table), escape_name(name)),
            data_param(data),
        )
        .await
        .map(|_| ())
    }

    /// `delete` an object.
    pub async fn delete(&self, table: &str, name: &str) -> Result<(), DeviceError> {
        self.call(
            "delete",
            &format!("{}/{}", self.obj_url(table), escape_name(name)),
            Map::new(),
        )
        .await
        .map(|_| ())
    }

    /// Adds members to a group of `table` (`firewall/addrgrp`) through its member sub-URL.
    pub async fn add_members(
        &self,
        table: &str,
        group: &str,
        members: &[String],
    ) -> Result<(), DeviceError> {
        self.member_edit("add", table, group, members).await
    }

    /// Removes members from a group of `table` through its member sub-URL.
    pub async fn remove_members(
        &self,
        table: &str,
        group: &str,
        members: &[String],
    ) -> Result<(), DeviceError> {
        self.member_edit("delete", table, group, members).await
    }

    async fn member_edit(
        &self,
        method: &str,
        table: &str,
        group: &str,
        members: &[String],
    ) -> Result<(), DeviceError> {
        let url = format!("{}/{}/member", self.obj_url(table), escape_name(group));
        self.call(method, &url, data_param(json!(members)))
            .await
            .map(|_| ())
    }

    /// The ADOM's FortiOS version and per-ADOM workspace flag (`/dvmdb/adom/<adom>`).
    pub async fn adom_facts(&self) -> Result<AdomFacts, DeviceError> {
        let mut extra = Map::new();
        extra.insert(
            "fields".into(),
            json!(["name", "os_ver", "mr", "workspace_mode"]),
        );
        let data = Value::Object(
            self.get_object(&format!("/dvmdb/adom/{}", self.adom), extra)
                .await?,
        );
        let number = |v: &Value| {
            v.as_u64().or_else(|| {
                v.as_str()
                    .and_then(|s| s.split('.').next())
                    .and_then(|s| s.parse().ok())
            })
        };
        Ok(AdomFacts {
            major: number(&data["os_ver"]).unwrap_or(0) as u32,
            minor: number(&data["mr"]).unwrap_or(0) as u32,
            workspace: match &data["workspace_mode"] {
                Value::Number(n) => Some(n.as_u64() != Some(0)),
                Value::String(s) => Some(s != "disabled" && s != "0"),
                _ => None,
            },
        })
    }

    /// The names of the ADOM's managed devices (`/dvmdb/adom/<adom>/device`, names only,
    /// without the VDOM sub-table): what proxy targets may name.
    pub async fn device_names(&self) -> Result<Vec<String>, DeviceError> {
        let mut extra = Map::new();
        extra.insert("fields".into(), json!(["name"]));
        extra.insert("option".into(), json!(["no loadsub"]));
        let url = format!("/dvmdb/adom/{}/device", self.adom);
        let rows = self
            .call_result("get", &url, extra)
            .await?
            .data_rows(&self.ctx("get", &url))?;
        Ok(rows
            .iter()
            .filter_map(|r| r["name"].as_str().map(str::to_string))
            .collect())
    }

    /// The global `workspace-mode` (`disabled`, `normal`, `workflow`, `per-adom`).
    pub async fn workspace_mode(&self) -> Result<String, DeviceError> {
        let global = self
            .get_object("/cli/global/system/global", Map::new())
            .await?;
        Ok(match global.get("workspace-mode").unwrap_or(&Value::Null) {
            Value::String(s) => s.clone(),
            Value::Number(n) => match n.as_u64() {
                Some(0) => "disabled",
                Some(1) => "normal",
                Some(2) => "workflow",
                _ => "per-adom",
            }
            .to_string(),
            _ => "disabled".to_string(),
        })
    }

    fn workspace_url(&self, action: &str) -> String {
        format!("/dvmdb/adom/{}/workspace/{action}", self.adom)
    }

    /// Takes the ADOM lock, retrying a bounded number of times with jittered backoff while
    /// another session holds it; the final error names the holder (F17).
    pub async fn lock(&self) -> Result<(), DeviceError> {
        let mut attempt = 0;
        loop {
            match self
                .call("exec", &self.workspace_url("lock"), Map::new())
                .await
            {
                Err(DeviceError::WorkspaceLocked { ctx, .. }) => {
                    if attempt >= self.lock_retries {
                        let holder = self
                            .lock_holder()
                            .await
                            .unwrap_or_else(|| "another session".into());
                        return Err(DeviceError::WorkspaceLocked { ctx, holder });
                    }
                    let wait = self
                        .lock_backoff
                        .saturating_mul(attempt + 1)
                        .mul_f64(0.5 + rand::random::<f64>());
                    tokio::time::sleep(wait).await;
                    attempt += 1;
                }
                other => return other.map(|_| ()),
            }
        }
    }

    /// Who holds the ADOM lock (`<user> (session <sid>)`), None when unlocked or unknown.
    pub async fn lock_holder(&self) -> Option<String> {
        let url = self.workspace_url("lockinfo");
        let info = self.call_result("get", &url, Map::new()).await.ok()?;
        let first = info
            .data_rows(&self.ctx("get", &url))
            .ok()?
            .into_iter()
            .next()?;
        Some(format!(
            "{} (session {})",
            device_text(first["lock_user"].as_str().unwrap_or("?")),
            first["lock_sid"]
                .as_i64()
                .map_or("?".into(), |n| n.to_string())
        ))
    }

    /// Commits the locked ADOM.
    pub async fn commit(&self) -> Result<(), DeviceError> {
        self.call("exec", &self.workspace_url("commit"), Map::new())
            .await
            .map(|_| ())
    }

    /// Releases the ADOM lock (uncommitted changes are discarded).
    pub async fn unlock(&self) -> Result<(), DeviceError> {
        self.call("exec", &self.workspace_url("unlock"), Map::new())
            .await
            .map(|_| ())
    }

    /// The device name (`<namespace>/<connection>`).
    pub fn device(&self) -> &str {
        &self.device
    }

    /// `/sys/proxy/json` to `targets` (`adom/<adom>/device/<name>`, `adom/<adom>/group/<name>`).
    pub async fn proxy(
        &self,
        targets: &[String],
        action: &str,
        resource: &str,
        payload: Option<Value>,
    ) -> Result<Vec<ProxyResult>, DeviceError> {
        let mut data = json!({"target": targets, "action": action, "resource": resource});
        if let Some(p) = payload {
            data["payload"] = p;
        }
        let url = "/sys/proxy/json";
        let ctx = self.ctx("exec", url);
        let rows = self
            .call_result("exec", url, data_param(data))
            .await?
            .data_rows(&ctx)?;
        rows.into_iter()
            .map(|row| proxy_result(&ctx, row))
            .collect()
    }

    /// An admin user (`/cli/global/system/admin/user/<user>`), F15 when absent.
    pub async fn admin_user(&self, user: &str) -> Result<Value, DeviceError> {
        self.get_object(
            &format!("/cli/global/system/admin/user/{}", escape_name(user)),
            Map::new(),
        )
        .await
        .map(Value::Object)
    }

    /// Every admin user (`/cli/global/system/admin/user`, the table form of §4.5), each row as
    /// a GET of that user answers it. Whole, without a `filter`: the facts show filters on
    /// ADOM tables, not on this one, and a filter that matched differently (case) could leave
    /// a user out; admin-user tables are small.
    pub async fn admin_users(&self) -> Result<Vec<Value>, DeviceError> {
        let url = "/cli/global/system/admin/user";
        self.call_result("get", url, Map::new())
            .await?
            .data_rows(&self.ctx("get", url))
    }

    /// Sets trusted-host slot `slot` (1–10) of an admin user.
    pub async fn set_trusthost(
        &self,
        user: &str,
        slot: u8,
        ip: &str,
        mask: &str,
    ) -> Result<(), DeviceError> {
        let url = format!("/cli/global/system/admin/user/{}", escape_name(user));
        self.call(
            "update",
            &url,
            data_param(json!({ format!("trusthost{slot}"): [ip, mask] })),
        )
        .await
        .map(|_| ())
    }
}

/// One target's entry of a proxy answer: `target` a string and `status.code` an integer, or
/// the whole answer is unexpected (a reconcile writes on the strength of these entries).
fn proxy_result(ctx: &Context, row: Value) -> Result<ProxyResult, DeviceError> {
    let unexpected = |detail: &str| DeviceError::UnexpectedResponse {
        ctx: ctx.clone(),
        status: 200,
        detail: format!("a proxy entry {detail}"),
    };
    let target = row["target"]
        .as_str()
        .ok_or_else(|| unexpected("without a string `target`"))?;
    let code = row["status"]["code"]
        .as_i64()
        .ok_or_else(|| unexpected("without an integer `status.code`"))?;
    Ok(ProxyResult {
        target: target.to_string(),
        code,
        message: device_text(row["status"]["message"].as_str().unwrap_or_default()),
        response: row.get("response").cloned(),
    })
}

fn data_param(data: Value) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("data".into(), data);
    m
}

#[cfg(test)]
mod send_tests {
    use super::*;

    fn assert_send<T: Send>(_: T) {}

    /// Reconciles run on a multi-threaded runtime: client futures must be Send.
    #[allow(dead_code)]
    fn client_futures_are_send(c: &FortiManagerClient) {
        assert_send(c.objects("firewall/address", None));
        assert_send(c.lock());
        assert_send(c.proxy(&[], "get", "/", None));
    }
}
