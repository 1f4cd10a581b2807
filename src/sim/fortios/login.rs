//! Session logins: legacy `POST /logincheck`, JSON `POST /api/v2/authentication`, and logout
//! (facts §1.2 – §1.5). Cookie names and answer formats follow the version.

use serde_json::{Value, json};
use tokio::time::Instant;

use super::auth::{self, AuthOutcome, cookie};
use super::envelope::{Body, Reply, Request};
use super::state::{FortiGateState, Session};

/// Checks a user name and password; counts a failure toward the lockout.
fn check_password(
    state: &mut FortiGateState,
    req: &Request,
    user: &str,
    password: &str,
    now: Instant,
) -> bool {
    let ok = state
        .admins
        .get(user)
        .is_some_and(|a| a.password == password && super::trusthost::admin_trusts(a, req.peer));
    if ok {
        state.lockout.succeed(req.peer);
    } else {
        let _ = auth::failed(state, req.peer, false, now);
    }
    ok
}

fn new_session(state: &mut FortiGateState, user: &str, now: Instant) -> (String, String, u32) {
    let id = state.fresh_id();
    let cookie_value = format!("Era%3D0%26Payload%3D{}", state.token(48));
    let csrf = state.token(32);
    state.sessions.insert(
        cookie_value.clone(),
        Session {
            user: user.to_string(),
            csrf: csrf.clone(),
            id,
            last_used: now,
        },
    );
    (cookie_value, csrf, id)
}

fn session_cookies(
    state: &FortiGateState,
    reply: Reply,
    cookie_value: &str,
    csrf: &str,
    id: u32,
) -> Reply {
    let csrf_name = state.version.csrf_cookie_name(state.port, id);
    reply
        .with_header(
            "set-cookie",
            format!(
                "APSCOOKIE_{}_{id}=\"{cookie_value}\"; Path=/; HttpOnly; Secure",
                state.port
            ),
        )
        .with_header(
            "set-cookie",
            format!("{csrf_name}=\"{csrf}\"; Path=/; Secure"),
        )
}

/// `POST /logincheck` with a form body `username=…&secretkey=…`; also says whether the attempt
/// failed (and counted toward the lockout).
pub fn logincheck(state: &mut FortiGateState, req: &Request, now: Instant) -> (Reply, bool) {
    let form: Vec<(String, String)> = url::form_urlencoded::parse(&req.body)
        .into_owned()
        .collect();
    let field = |k: &str| {
        form.iter()
            .find(|(key, _)| key == k)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    };
    let (user, password) = (field("username"), field("secretkey"));
    let json = state.version.logincheck_json();
    let answer = |code: u8, tail: &str| -> Body {
        if json {
            Body::Json(json!({"status": code}))
        } else {
            Body::Text(format!("{code}{tail}"))
        }
    };
    if !check_password(state, req, &user, &password, now) {
        let csrf_name = state.version.csrf_cookie_name(state.port, 0);
        // A CSRF cookie of `0&0` tells clients the credentials were wrong.
        let reply = Reply {
            status: 200,
            headers: Vec::new(),
            body: answer(0, ""),
        }
        .with_header("set-cookie", format!("{csrf_name}=\"0%260\"; Path=/"));
        return (reply, true);
    }
    let (cookie_value, csrf, id) = new_session(state, &user, now);
    let reply = Reply {
        status: 200,
        headers: Vec::new(),
        body: answer(1, "document.location=\"/ng/\";"),
    };
    (
        session_cookies(state, reply, &cookie_value, &csrf, id),
        false,
    )
}

/// `POST /api/v2/authentication` with `{"username", "secretkey"|"password", "request_key"}`;
/// also says whether the attempt failed.
pub fn authentication(state: &mut FortiGateState, req: &Request, now: Instant) -> (Reply, bool) {
    let body: Value = serde_json::from_slice(&req.body).unwrap_or(Value::Null);
    let user = body["username"].as_str().unwrap_or_default().to_string();
    // 7.6.4+ wants `password`; older builds read `secretkey`.
    let password = body["password"]
        .as_str()
        .or_else(|| body["secretkey"].as_str())
        .unwrap_or_default()
        .to_string();
    let success_code = if state.version >= "7.6.3".parse().unwrap_or_default() {
        6
    } else {
        5
    };
    if !check_password(state, req, &user, &password, now) {
        return (
            Reply::json(
                401,
                json!({"status_code": -1, "status_message": "LOGIN_FAILED"}),
            ),
            true,
        );
    }
    let (cookie_value, csrf, id) = new_session(state, &user, now);
    if body["request_key"].as_bool() == Some(true) {
        let key = state.token(30);
        state.sessions.insert(
            key.clone(),
            Session {
                user: user.clone(),
                csrf,
                id,
                last_used: now,
            },
        );
        return (
            Reply::json(
                200,
                json!({"status_code": success_code, "status_message": "LOGIN_SUCCESS", "session_key": key}),
            ),
            false,
        );
    }
    let reply = Reply::json(
        200,
        json!({"status_code": success_code, "status_message": "LOGIN_SUCCESS"}),
    );
    (
        session_cookies(state, reply, &cookie_value, &csrf, id),
        false,
    )
}

/// `POST /logout` and `DELETE /api/v2/authentication`.
pub fn logout(state: &mut FortiGateState, req: &Request) -> Reply {
    if let Some(value) = cookie(req.cookie.as_deref(), "APSCOOKIE_") {
        state.sessions.remove(value);
    }
    if let Some((_, key)) = req.authorization.as_deref().and_then(|h| h.split_once(' ')) {
        state.sessions.remove(key.trim());
    }
    Reply::json(200, json!({"status_message": "HTTP_AUTHD_LOGOUT_SUCCESS"}))
}

/// Whether a cookie-session write carries the session's CSRF token (seed 001).
pub fn csrf_ok(principal: &auth::Principal, req: &Request) -> bool {
    match &principal.session_csrf {
        None => true,
        Some(expected) => {
            req.csrf.as_deref().map(|t| t.trim_matches('"')) == Some(expected.as_str())
        }
    }
}

/// Authenticates, for callers that only need the outcome.
pub fn principal(state: &mut FortiGateState, req: &Request, now: Instant) -> AuthOutcome {
    auth::authenticate(state, req, now)
}
