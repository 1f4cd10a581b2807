//! The FortiOS REST client: typed calls for the endpoints fortisync uses, every request through
//! the device's Guard. The token travels only in the `Authorization` header; session logins
//! send the CSRF token on writes and log in again once when the session expires.

use std::sync::Arc;
use std::time::Duration;

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use super::response::{Reply, parse};
use crate::device::credentials::Credentials;
use crate::device::error::{Context, DeviceError};
use crate::device::guard::{Guard, Outcome};
use crate::device::transport::{MAX_BODY_BYTES, TransportConfig, exchange, http_client};
use crate::device::untrusted::body_kind;

/// Names are percent-encoded with nothing but unreserved characters left as they are
/// (`/` → `%2F`), as Fortinet's own clients do.
const NAME: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// Percent-encodes one path segment.
pub fn encode_name(name: &str) -> String {
    utf8_percent_encode(name, NAME).to_string()
}

/// Facts from `monitor/system/status`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SystemStatus {
    /// e.g. `v7.4.3`.
    pub version: String,
    /// Serial number.
    pub serial: String,
    /// Host name.
    pub hostname: String,
    /// Model, e.g. `FGT60F`.
    pub model: String,
}

/// Retries for idempotent reads on transient faults: capped exponential backoff with jitter.
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    /// Retries after the first attempt.
    pub retries: u32,
    /// First backoff.
    pub base: Duration,
    /// Longest backoff.
    pub cap: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            retries: 3,
            base: Duration::from_millis(100),
            cap: Duration::from_secs(2),
        }
    }
}

impl RetryPolicy {
    /// Backoff before retry `n` (0-based), with up to 50% jitter.
    pub fn backoff(&self, n: u32) -> Duration {
        let exp = self
            .base
            .saturating_mul(2u32.saturating_pow(n))
            .min(self.cap);
        exp.mul_f64(0.5 + rand::random::<f64>() * 0.5)
    }
}

/// A FortiOS REST client for one device and VDOM.
pub struct FortiOsClient {
    device: String,
    base: String,
    vdom: String,
    http: reqwest::Client,
    credentials: Credentials,
    fingerprint: String,
    guard: Arc<Guard>,
    timeout: Duration,
    retry: RetryPolicy,
    /// CSRF token of the current cookie session (password auth only).
    csrf: tokio::sync::Mutex<Option<String>>,
}

impl FortiOsClient {
    /// A client for `base` (`https://host:port`) in `vdom`, behind `guard`.
    pub fn new(
        device: impl Into<String>,
        base: &str,
        vdom: &str,
        credentials: Credentials,
        transport: &TransportConfig,
        guard: Arc<Guard>,
    ) -> Result<Self, DeviceError> {
        let device = device.into();
        let http = http_client(transport, &device)?;
        Ok(Self {
            fingerprint: credentials.fingerprint(),
            device,
            base: base.trim_end_matches('/').to_string(),
            vdom: vdom.to_string(),
            http,
            credentials,
            guard,
            timeout: transport.timeout,
            retry: RetryPolicy::default(),
            csrf: tokio::sync::Mutex::new(None),
        })
    }

    /// Overrides the retry policy (tests use short backoffs).
    pub fn with_retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    /// The device name.
    pub fn device(&self) -> &str {
        &self.device
    }

    /// The VDOM.
    pub fn vdom(&self) -> &str {
        &self.vdom
    }

    /// The guard every request passes.
    pub fn guard(&self) -> &Arc<Guard> {
        &self.guard
    }

    /// The credential fingerprint in use.
    pub fn fingerprint(&self) -> &str {
        &self.fingerprint
    }

    fn ctx(&self, method: &Method, path: &str) -> Context {
        Context {
            device: self.device.clone(),
            method: method.to_string(),
            path: path.to_string(),
        }
    }

    /// Like [`FortiOsClient::fetch`], the checked answer as JSON.
    pub async fn request(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, &str)],
        body: Option<&Value>,
    ) -> Result<Value, DeviceError> {
        self.fetch(method, path, query, body)
            .await
            .map(Reply::into_value)
    }

    /// Sends one request through the Guard and checks the answer (see `response`); reads (and
    /// PUTs, which are idempotent) are retried on transient faults.
    pub async fn fetch(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, &str)],
        body: Option<&Value>,
    ) -> Result<Reply, DeviceError> {
        let retryable = method == Method::GET || method == Method::PUT;
        let mut attempt = 0;
        loop {
            match self.once(&method, path, query, body, false).await {
                Err(e) if retryable && e.is_transient() && attempt < self.retry.retries => {
                    let wait = self.retry.backoff(attempt);
                    tracing::debug!(device = %self.device, %path, error = %e, ?wait, "transient fault; retrying a read");
                    tokio::time::sleep(wait).await;
                    attempt += 1;
                }
                other => return other,
            }
        }
    }

    async fn once(
        &self,
        method: &Method,
        path: &str,
        query: &[(&str, &str)],
        body: Option<&Value>,
        relogged: bool,
    ) -> Result<Reply, DeviceError> {
        let ctx = self.ctx(method, path);
        let write = method != Method::GET;
        let pass = self.guard.admit(&self.device, &self.fingerprint).await?;
        let session = matches!(self.credentials, Credentials::Password { .. });
        let csrf = if session {
            let mut guard = self.csrf.lock().await;
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
        let mut vdom_query: Vec<(&str, &str)> = vec![("vdom", self.vdom.as_str())];
        vdom_query.extend_from_slice(query);
        let mut req = self
            .http
            .request(method.clone(), format!("{}{path}", self.base))
            .query(&vdom_query);
        match &self.credentials {
            Credentials::Token(token) => req = req.bearer_auth(token),
            Credentials::Password { .. } => {
                if let (true, Some(token)) = (write, &csrf) {
                    req = req.header("X-CSRFTOKEN", token);
                }
            }
        }
        if let Some(body) = body {
            req = req.json(body);
        }
        let started = std::time::Instant::now();
        let answer = exchange(req, &ctx, self.timeout, write, MAX_BODY_BYTES).await;
        self.guard
            .metrics()
            .duration(&self.device, started.elapsed());
        let answer = match answer {
            Ok(a) => a,
            Err(err) => {
                // A transport failure, a redirect, a body too large or too slow: no verdict
                // about the credential.
                self.guard
                    .record(pass, &self.fingerprint, Outcome::NoVerdict);
                self.count(method, err.reason());
                return Err(err);
            }
        };
        let status = answer.status;
        if status == StatusCode::UNAUTHORIZED.as_u16() && session && !relogged {
            // The session expired: log in again once; a refused re-login freezes the password.
            *self.csrf.lock().await = None;
            self.guard
                .record(pass, &self.fingerprint, Outcome::NoVerdict);
            return Box::pin(self.once(method, path, query, body, true)).await;
        }
        let outcome = match status {
            401 => Outcome::Refused,
            429 => Outcome::LockedOut,
            500..=599 => Outcome::NoVerdict,
            _ => Outcome::Authorized,
        };
        let window = self.guard.record(pass, &self.fingerprint, outcome);
        let parsed = parse(ctx, status, &answer.body, session, write)
            .map_err(|e| e.with_lockout_window(window));
        self.count(
            method,
            parsed.as_ref().map_or_else(|e| e.reason(), |_| "ok"),
        );
        parsed
    }

    fn count(&self, method: &Method, outcome: &str) {
        self.guard
            .metrics()
            .request(&self.device, method.as_str(), outcome);
    }

    /// Session login: `/api/v2/authentication`, then `/logincheck` on older builds. Returns the
    /// CSRF token, or the outcome to record and the error.
    async fn login(&self, ctx: &Context) -> Result<String, (Outcome, DeviceError)> {
        let Credentials::Password { user, password } = &self.credentials else {
            return Err((
                Outcome::NoVerdict,
                DeviceError::Unauthorized { ctx: ctx.clone() },
            ));
        };
        let transport = |e: DeviceError| (Outcome::NoVerdict, e);
        let json_login = self
            .http
            .post(format!("{}/api/v2/authentication", self.base))
            .json(
                &json!({"username": user, "secretkey": password, "password": password, "ajax": 1}),
            );
        let json_login = exchange(json_login, ctx, self.timeout, false, MAX_BODY_BYTES)
            .await
            .map_err(transport)?;
        let status = json_login.status;
        if status == 429 {
            return Err((
                Outcome::LockedOut,
                DeviceError::LockedOut {
                    ctx: ctx.clone(),
                    retry_after: Duration::ZERO,
                },
            ));
        }
        if status == 200 {
            let csrf = csrf_cookie(&json_login.headers);
            let Some(code) = serde_json::from_slice::<Value>(&json_login.body)
                .ok()
                .and_then(|body| {
                    body.get("status_code")
                        .or(body.get("status"))
                        .and_then(Value::as_i64)
                })
            else {
                // Not the login API's answer. The password went out and was not accepted:
                // counted as a refusal, so the guard's failure count never falls behind the
                // device's and the password is not sent again to whatever answered.
                return Err((
                    Outcome::Refused,
                    DeviceError::UnexpectedResponse {
                        ctx: ctx.clone(),
                        status,
                        detail: format!(
                            "the login answered {}, without an integer `status_code`",
                            body_kind(&json_login.body)
                        ),
                    },
                ));
            };
            return match (code, csrf) {
                (5 | 6, Some(csrf)) => Ok(csrf),
                (5 | 6, None) => Err((
                    Outcome::NoVerdict,
                    DeviceError::UnexpectedResponse {
                        ctx: ctx.clone(),
                        status,
                        detail: "login succeeded but no CSRF cookie was set".into(),
                    },
                )),
                _ => Err((
                    Outcome::Refused,
                    DeviceError::Unauthorized { ctx: ctx.clone() },
                )),
            };
        }
        if status == 401 {
            return Err((
                Outcome::Refused,
                DeviceError::Unauthorized { ctx: ctx.clone() },
            ));
        }
        // Older builds: the legacy form login. (The form is built first: its serializer must
        // not live across an await, or the future would not be Send.)
        let form = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("username", user)
            .append_pair("secretkey", password)
            .append_pair("ajax", "1")
            .finish();
        let legacy = self
            .http
            .post(format!("{}/logincheck", self.base))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(form);
        let legacy = exchange(legacy, ctx, self.timeout, false, MAX_BODY_BYTES)
            .await
            .map_err(transport)?;
        if legacy.status == 429 {
            return Err((
                Outcome::LockedOut,
                DeviceError::LockedOut {
                    ctx: ctx.clone(),
                    retry_after: Duration::ZERO,
                },
            ));
        }
        let csrf = csrf_cookie(&legacy.headers).filter(|c| c != "0%260" && c != "0&0");
        let text = String::from_utf8_lossy(&legacy.body);
        let ok = text.starts_with('1')
            || serde_json::from_str::<Value>(&text)
                .ok()
                .and_then(|v| v["status"].as_i64())
                == Some(1);
        match (ok, csrf) {
            (true, Some(csrf)) => Ok(csrf),
            _ => Err((
                Outcome::Refused,
                DeviceError::Unauthorized { ctx: ctx.clone() },
            )),
        }
    }

    /// Logs out of a cookie session (no-op with a token).
    pub async fn logout(&self) {
        let mut csrf = self.csrf.lock().await;
        if let (Credentials::Password { .. }, Some(_)) = (&self.credentials, csrf.as_ref()) {
            let req = self
                .http
                .delete(format!("{}/api/v2/authentication", self.base));
            let ctx = self.ctx(&Method::DELETE, "/api/v2/authentication");
            let _ = exchange(req, &ctx, self.timeout, true, MAX_BODY_BYTES).await;
        }
        *csrf = None;
    }

    // ---- typed calls -------------------------------------------------------------------

    /// `monitor/system/status`: `results` must be an object.
    pub async fn system_status(&self) -> Result<SystemStatus, DeviceError> {
        let path = "/api/v2/monitor/system/status";
        let reply = self.fetch(Method::GET, path, &[], None).await?;
        let ctx = self.ctx(&Method::GET, path);
        let results = reply.object(&ctx)?.unwrap_or_default();
        let envelope = reply.envelope();
        let field = |k: &str| {
            results
                .get(k)
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string()
        };
        Ok(SystemStatus {
            version: envelope.text("version").unwrap_or_default(),
            serial: envelope.text("serial").unwrap_or_default(),
            hostname: field("hostname"),
            model: field("model"),
        })
    }

    /// `cmdb/system/global` (lockout settings and more): `results` must be an object.
    pub async fn global(&self) -> Result<Value, DeviceError> {
        let path = "/api/v2/cmdb/system/global";
        let reply = self.fetch(Method::GET, path, &[], None).await?;
        match reply.object(&self.ctx(&Method::GET, path))? {
            Some(map) => Ok(Value::Object(map)),
            None => Err(DeviceError::UnexpectedResponse {
                ctx: self.ctx(&Method::GET, path),
                status: 200,
                detail: "system/global answered an empty list, expected an object".into(),
            }),
        }
    }

    /// Every object of `table` (`firewall/address`) whose name contains `name_contains`.
    pub async fn list(
        &self,
        table: &str,
        name_contains: Option<&str>,
    ) -> Result<Vec<Value>, DeviceError> {
        self.list_fields(table, name_contains, &[]).await
    }

    /// Like [`FortiOsClient::list`], returning only `fields` (`format=a|b`; all when empty).
    pub async fn list_fields(
        &self,
        table: &str,
        name_contains: Option<&str>,
        fields: &[&str],
    ) -> Result<Vec<Value>, DeviceError> {
        let filter = name_contains.map(|p| format!("name=@{p}"));
        self.list_where(table, filter.as_deref(), fields).await
    }

    /// Objects of `table` matching a FortiOS `filter` (`comment=@text`, `name==a,name==b`:
    /// comma is OR), with only `fields` (all when empty). An answer whose `results` is not a
    /// list of objects is an error, never an empty table.
    pub async fn list_where(
        &self,
        table: &str,
        filter: Option<&str>,
        fields: &[&str],
    ) -> Result<Vec<Value>, DeviceError> {
        let format = fields.join("|");
        let mut query: Vec<(&str, &str)> = filter.iter().map(|f| ("filter", *f)).collect();
        if !fields.is_empty() {
            query.push(("format", format.as_str()));
        }
        let path = format!("/api/v2/cmdb/{table}");
        let reply = self.fetch(Method::GET, &path, &query, None).await?;
        reply.rows(&self.ctx(&Method::GET, &path))
    }

    /// One object, or None when absent (a 404, or an empty list).
    pub async fn get(&self, table: &str, name: &str) -> Result<Option<Value>, DeviceError> {
        let path = format!("/api/v2/cmdb/{table}/{}", encode_name(name));
        match self.fetch(Method::GET, &path, &[], None).await {
            Ok(reply) => Ok(reply
                .object(&self.ctx(&Method::GET, &path))?
                .map(Value::Object)),
            Err(DeviceError::NotFound { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Creates an object. When the answer is lost, the object is re-read before any re-send.
    pub async fn create(&self, table: &str, body: &Value) -> Result<(), DeviceError> {
        let name = body["name"].as_str().unwrap_or_default().to_string();
        let path = format!("/api/v2/cmdb/{table}");
        match self.request(Method::POST, &path, &[], Some(body)).await {
            Err(DeviceError::OutcomeUnknown { .. }) | Err(DeviceError::Unavailable { .. }) => {
                if self.get(table, &name).await?.is_some() {
                    tracing::info!(device = %self.device, %table, %name, "ambiguous create re-observed: the object exists");
                    return Ok(());
                }
                self.request(Method::POST, &path, &[], Some(body))
                    .await
                    .map(|_| ())
            }
            other => other.map(|_| ()),
        }
    }

    /// Updates an object (PUT: idempotent).
    pub async fn update(&self, table: &str, name: &str, body: &Value) -> Result<(), DeviceError> {
        self.request(
            Method::PUT,
            &format!("/api/v2/cmdb/{table}/{}", encode_name(name)),
            &[],
            Some(body),
        )
        .await
        .map(|_| ())
    }

    /// Deletes an object; re-reads before re-sending when the answer was lost.
    pub async fn delete(&self, table: &str, name: &str) -> Result<(), DeviceError> {
        let path = format!("/api/v2/cmdb/{table}/{}", encode_name(name));
        match self.request(Method::DELETE, &path, &[], None).await {
            Err(DeviceError::OutcomeUnknown { .. }) | Err(DeviceError::Unavailable { .. }) => {
                if self.get(table, name).await?.is_none() {
                    return Ok(());
                }
                self.request(Method::DELETE, &path, &[], None)
                    .await
                    .map(|_| ())
            }
            other => other.map(|_| ()),
        }
    }

    /// Member names of a group (None when the group does not exist).
    pub async fn group_members(
        &self,
        table: &str,
        group: &str,
    ) -> Result<Option<Vec<String>>, DeviceError> {
        Ok(self.get(table, group).await?.map(|g| member_names(&g)))
    }

    /// Adds one member through the member child URL; re-reads when the answer was lost.
    pub async fn add_member(
        &self,
        table: &str,
        group: &str,
        member: &str,
    ) -> Result<(), DeviceError> {
        let path = format!("/api/v2/cmdb/{table}/{}/member", encode_name(group));
        let body = json!({"name": member});
        match self.request(Method::POST, &path, &[], Some(&body)).await {
            Err(DeviceError::OutcomeUnknown { .. }) | Err(DeviceError::Unavailable { .. }) => {
                if self
                    .group_members(table, group)
                    .await?
                    .is_some_and(|m| m.iter().any(|n| n == member))
                {
                    return Ok(());
                }
                self.request(Method::POST, &path, &[], Some(&body))
                    .await
                    .map(|_| ())
            }
            other => other.map(|_| ()),
        }
    }

    /// Removes one member through the member child URL; re-reads when the answer was lost.
    pub async fn remove_member(
        &self,
        table: &str,
        group: &str,
        member: &str,
    ) -> Result<(), DeviceError> {
        let path = format!(
            "/api/v2/cmdb/{table}/{}/member/{}",
            encode_name(group),
            encode_name(member)
        );
        match self.request(Method::DELETE, &path, &[], None).await {
            Err(DeviceError::OutcomeUnknown { .. }) | Err(DeviceError::Unavailable { .. }) => {
                if self
                    .group_members(table, group)
                    .await?
                    .is_none_or(|m| !m.iter().any(|n| n == member))
                {
                    return Ok(());
                }
                self.request(Method::DELETE, &path, &[], None)
                    .await
                    .map(|_| ())
            }
            other => other.map(|_| ()),
        }
    }

    /// Pushes entries to a push feed (`add`, `remove` or `snapshot`, 7.2.1+).
    pub async fn push_entries(
        &self,
        feed: &str,
        command: &str,
        entries: &[String],
    ) -> Result<(), DeviceError> {
        let body = json!({"commands": [{"name": feed, "command": command, "entries": entries}]});
        match self
            .request(
                Method::POST,
                "/api/v2/monitor/system/external-resource/dynamic",
                &[],
                Some(&body),
            )
            .await
        {
            Err(DeviceError::NotFound {
                code: Some(_), ctx, ..
            }) => Err(DeviceError::FeedNameMismatch {
                ctx,
                feed: feed.to_string(),
            }),
            Err(DeviceError::NotFound { ctx, .. }) => Err(DeviceError::PushUnavailable {
                ctx,
                detail: "the dynamic push API needs FortiOS 7.2.1 or later".into(),
            }),
            Err(DeviceError::Invalid { ctx, .. }) => Err(DeviceError::PushUnavailable {
                ctx,
                detail: format!("feed {feed:?} is not an update-method push feed"),
            }),
            other => other.map(|_| ()),
        }
    }
}

/// Member names of a group object.
pub fn member_names(group: &Value) -> Vec<String> {
    group["member"]
        .as_array()
        .map(|ms| {
            ms.iter()
                .filter_map(|m| m["name"].as_str().or(m.as_str()).map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

fn csrf_cookie(headers: &reqwest::header::HeaderMap) -> Option<String> {
    headers
        .get_all(reqwest::header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .filter_map(|c| c.split(';').next())
        .filter_map(|kv| kv.split_once('='))
        .find(|(k, _)| k.starts_with("ccsrftoken") || k.starts_with("ccsrf_token"))
        .map(|(_, v)| v.trim_matches('"').to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_encoded_with_nothing_safe_but_unreserved() {
        assert_eq!(encode_name("fs_10.0.0.0_24"), "fs_10.0.0.0_24");
        assert_eq!(encode_name("a/b c%?"), "a%2Fb%20c%25%3F");
        assert_eq!(encode_name("fs_2001:db8::1"), "fs_2001%3Adb8%3A%3A1");
    }

    #[test]
    fn backoff_is_capped_and_jittered_down_only() {
        let r = RetryPolicy::default();
        for n in 0..10 {
            let b = r.backoff(n);
            assert!(b <= r.cap, "{b:?}");
            assert!(b >= r.base.saturating_mul(2u32.pow(n.min(4))).min(r.cap) / 2);
        }
    }
}

#[cfg(test)]
mod send_tests {
    use super::*;

    fn assert_send<T: Send>(_: T) {}

    /// The controller spawns reconciles on a multi-threaded runtime: client futures must be Send.
    #[allow(dead_code, clippy::diverging_sub_expression)]
    fn client_futures_are_send(c: &FortiOsClient) {
        assert_send(c.get("firewall/address", "a"));
        assert_send(c.create("firewall/address", &Value::Null));
        assert_send(c.system_status());
    }
}
