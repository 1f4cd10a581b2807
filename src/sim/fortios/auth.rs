//! Who is calling: API key (header, or URL query where the version allows it), session cookie
//! or session key; trusted hosts; the lockout counter (facts §1, §7).

use std::net::IpAddr;
use std::time::Duration;

use ipnet::IpNet;
use tokio::time::Instant;

use super::envelope::{Reply, Request};
use super::lockout::FailureOutcome;
use super::scenario::{Permission, Profile};
use super::state::FortiGateState;

/// An authenticated caller.
#[derive(Debug, Clone, PartialEq)]
pub struct Principal {
    /// User name.
    pub user: String,
    /// Its profile's permissions.
    pub profile: Profile,
    /// Whether it is `super_admin`.
    pub super_admin: bool,
    /// VDOMs it may use (empty = all).
    pub vdoms: Vec<String>,
    /// The cookie session it came with, which must echo its CSRF token on writes.
    pub session_csrf: Option<String>,
}

impl Principal {
    /// The trusted in-process caller (FortiManager's proxy).
    pub fn internal() -> Self {
        Self {
            user: "fortimanager".into(),
            profile: Profile {
                fwgrp: Permission::ReadWrite,
                sysgrp: Permission::ReadWrite,
            },
            super_admin: true,
            vdoms: Vec::new(),
            session_csrf: None,
        }
    }

    /// Whether it may use `vdom`.
    pub fn may_use(&self, vdom: &str) -> bool {
        self.vdoms.is_empty() || self.vdoms.iter().any(|v| v == vdom)
    }
}

/// The outcome of authentication: a principal, or the reply to send (and whether the device
/// counted it as a failed login).
pub enum AuthOutcome {
    /// Authenticated.
    Ok(Principal),
    /// Refused.
    Refused {
        /// The reply.
        reply: Reply,
        /// Whether the attempt counted toward the lockout.
        counted: bool,
    },
}

/// Whether `peer` is inside `trusthosts` (empty = loopback only for API users).
pub fn trusted(trusthosts: &[IpNet], peer: IpAddr, empty_means_any: bool) -> bool {
    if trusthosts.is_empty() {
        return empty_means_any || peer.is_loopback();
    }
    let peer = match peer {
        IpAddr::V6(v6) => v6
            .to_ipv4_mapped()
            .map(IpAddr::V4)
            .unwrap_or(IpAddr::V6(v6)),
        v4 => v4,
    };
    trusthosts.iter().any(|net| net.contains(&peer))
}

/// Cookie value by name prefix (`APSCOOKIE_`).
pub fn cookie<'a>(header: Option<&'a str>, prefix: &str) -> Option<&'a str> {
    header?
        .split(';')
        .map(str::trim)
        .filter_map(|kv| kv.split_once('='))
        .find(|(k, _)| k.starts_with(prefix))
        .map(|(_, v)| v.trim_matches('"'))
}

/// Every cookie value whose name starts with `prefix`.
pub fn cookies<'a>(header: Option<&'a str>, prefix: &str) -> Vec<&'a str> {
    header
        .unwrap_or_default()
        .split(';')
        .map(str::trim)
        .filter_map(|kv| kv.split_once('='))
        .filter(|(k, _)| k.starts_with(prefix))
        .map(|(_, v)| v.trim_matches('"'))
        .collect()
}

/// Authenticates an API request. Lockout is checked by the caller before this.
pub fn authenticate(state: &mut FortiGateState, req: &Request, now: Instant) -> AuthOutcome {
    let bearer = req
        .authorization
        .as_deref()
        .and_then(|h| h.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, key)| key.trim().to_string());
    if let Some(key) = bearer {
        return by_key(state, &key, req.peer, now);
    }
    if let Some(token) = req.param("access_token") {
        let allowed =
            state.version.access_token_query_default() || state.global.rest_api_key_url_query;
        if !allowed {
            // "REST API key in URL parameters is disabled": refused before the key is checked.
            return AuthOutcome::Refused {
                reply: Reply::html(401).with_header("www-authenticate", "error=\"invalid_token\""),
                counted: false,
            };
        }
        let token = token.to_string();
        return by_key(state, &token, req.peer, now);
    }
    if cookie(req.cookie.as_deref(), "APSCOOKIE_").is_some() {
        let timeout = Duration::from_secs(state.global.admintimeout.max(1) * 60);
        // A client may still hold cookies of older sessions (their names carry the session id):
        // the live one wins.
        let candidates = cookies(req.cookie.as_deref(), "APSCOOKIE_");
        let value = candidates
            .iter()
            .find(|v| {
                state
                    .sessions
                    .get(**v)
                    .is_some_and(|s| now.duration_since(s.last_used) < timeout)
            })
            .or(candidates.first())
            .map(|v| v.to_string())
            .unwrap_or_default();
        let live = state
            .sessions
            .get(&value)
            .filter(|s| now.duration_since(s.last_used) < timeout)
            .cloned();
        return match live {
            Some(session) => {
                if let Some(s) = state.sessions.get_mut(&value) {
                    s.last_used = now;
                }
                match admin_principal(state, &session.user, Some(session.csrf)) {
                    Some(p) => AuthOutcome::Ok(p),
                    None => refused_quietly(),
                }
            }
            None => {
                state.sessions.remove(&value);
                refused_quietly()
            }
        };
    }
    refused_quietly()
}

/// 401 without counting: nothing was offered to check (no credentials, an expired session).
fn refused_quietly() -> AuthOutcome {
    AuthOutcome::Refused {
        reply: Reply::html(401),
        counted: false,
    }
}

fn by_key(state: &mut FortiGateState, key: &str, peer: IpAddr, now: Instant) -> AuthOutcome {
    // Session keys from /api/v2/authentication (request_key) are Bearer tokens too.
    if let Some(session) = state.sessions.get(key).cloned() {
        if let Some(s) = state.sessions.get_mut(key) {
            s.last_used = now;
        }
        if let Some(p) = admin_principal(state, &session.user, None) {
            return AuthOutcome::Ok(p);
        }
    }
    let user = state
        .api_users
        .values()
        .find(|u| u.key.as_deref() == Some(key))
        .cloned();
    let Some(user) = user else {
        return failed(state, peer, true, now);
    };
    if !trusted(&user.trusthosts, peer, false) {
        // An untrusted source fails like a wrong key and counts toward the lockout.
        return failed(state, peer, true, now);
    }
    let Some(profile) = state.profile(&user.accprofile) else {
        return failed(state, peer, true, now);
    };
    state.lockout.succeed(peer);
    AuthOutcome::Ok(Principal {
        user: user.name.clone(),
        super_admin: user.accprofile == "super_admin",
        profile,
        vdoms: user.vdoms.clone(),
        session_csrf: None,
    })
}

/// A failed authentication: counted, and a lockout when it reaches the threshold.
pub fn failed(
    state: &mut FortiGateState,
    peer: IpAddr,
    api_key: bool,
    now: Instant,
) -> AuthOutcome {
    let settings = state.lockout_settings();
    match state.lockout.fail(peer, api_key, settings, now) {
        FailureOutcome::Counted(n) => {
            tracing::debug!(%peer, "failed login attempt ({n}/{} attempts within {:?})", settings.threshold, settings.duration);
        }
        FailureOutcome::LockedOut(d) => tracing::debug!(%peer, "source locked out for {d:?}"),
    }
    AuthOutcome::Refused {
        reply: Reply::html(401),
        counted: true,
    }
}

/// The principal of a password admin.
pub fn admin_principal(
    state: &FortiGateState,
    user: &str,
    session_csrf: Option<String>,
) -> Option<Principal> {
    let admin = state.admins.get(user)?;
    let profile = state.profile(&admin.accprofile)?;
    Some(Principal {
        user: admin.name.clone(),
        super_admin: admin.accprofile == "super_admin",
        profile,
        vdoms: admin.vdoms.clone(),
        session_csrf,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trusted_hosts_match_the_peer_and_empty_means_loopback_for_api_users() {
        let nets = vec!["10.0.0.0/8".parse().expect("net")];
        assert!(trusted(&nets, "10.1.2.3".parse().expect("ip"), false));
        assert!(!trusted(&nets, "127.0.0.1".parse().expect("ip"), false));
        assert!(trusted(&[], "127.0.0.9".parse().expect("ip"), false));
        assert!(!trusted(&[], "192.0.2.1".parse().expect("ip"), false));
        assert!(trusted(&[], "192.0.2.1".parse().expect("ip"), true));
    }

    #[test]
    fn cookies_are_found_by_prefix_and_unquoted() {
        let header = Some("ccsrftoken_443_3=\"ABC\"; APSCOOKIE_443_3=\"Era%3D0\"");
        assert_eq!(cookie(header, "APSCOOKIE_"), Some("Era%3D0"));
        assert_eq!(cookie(header, "ccsrftoken"), Some("ABC"));
        assert_eq!(cookie(None, "APSCOOKIE_"), None);
    }
}
