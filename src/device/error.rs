//! One error type for everything a device can do to us, mapped to the troubleshooting table
//! (F1–F20): a stable reason for conditions, events and metrics, a one-line cause, and the
//! remedy an admin can act on. Errors carry context (device, path, status, the device's error
//! code and cleaned message fields, what kind of body came) but never a device body, a token, a
//! password or a URL query (see `untrusted`).

use std::time::Duration;

/// Where a failure happened: device and request path (never the query, which may hold a token).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Context {
    /// Device name (the connection resource, or its URL host).
    pub device: String,
    /// HTTP method or JSON-RPC method.
    pub method: String,
    /// Path or JSON-RPC url, without query.
    pub path: String,
}

impl std::fmt::Display for Context {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.path.is_empty() {
            write!(f, "{}", self.device)
        } else {
            write!(f, "{} {} {}", self.device, self.method, self.path)
        }
    }
}

/// Everything that can go wrong talking to a FortiGate or FortiManager.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum DeviceError {
    /// F1: TCP connect refused or timed out.
    #[error("{ctx}: cannot connect: {detail}")]
    ConnectFailed { ctx: Context, detail: String },
    /// F1: the request timed out after connecting.
    #[error("{ctx}: no answer within {timeout:?}")]
    Timeout { ctx: Context, timeout: Duration },
    /// F2: TLS handshake failed.
    #[error("{ctx}: TLS handshake failed: {detail}")]
    Tls { ctx: Context, detail: String },
    /// F3: 401 — key wrong/regenerated/expired, or source IP not trusted.
    #[error("{ctx}: the device refused the credentials (HTTP 401)")]
    Unauthorized { ctx: Context },
    /// F3/F13: a credential that failed before is not tried again until the Secret changes.
    #[error(
        "{device}: not sending requests with credential {fingerprint}: it was refused at {refused_at} and the Secret has not changed since"
    )]
    CredentialFrozen {
        device: String,
        fingerprint: String,
        refused_at: String,
    },
    /// F4/F14: 403 or FortiManager -11 on a working session: the profile lacks a permission.
    #[error("{ctx}: permission denied (HTTP {status}, code {code:?})")]
    Forbidden {
        ctx: Context,
        status: u16,
        code: Option<i64>,
    },
    /// F5: 403 on a write with a cookie session: the CSRF token was not sent.
    #[error("{ctx}: write refused without a CSRF token (HTTP 403)")]
    CsrfMissing { ctx: Context },
    /// F6: 429 — the source IP is locked out.
    #[error(
        "{ctx}: the device locked this source IP out (HTTP 429); next attempt in {retry_after:?}"
    )]
    LockedOut { ctx: Context, retry_after: Duration },
    /// Our own guard: the failed-login budget of this device and source address is spent (it is
    /// shared by every connection to the device, whoever's keys failed).
    #[error(
        "{device}: not sending this credential: the failed-login budget of this device and source address is spent ({failures} failed login(s) in the last {window:?}, lockout threshold {threshold}); it frees up in {retry_after:?}"
    )]
    AuthBudgetExhausted {
        device: String,
        failures: u32,
        threshold: u32,
        window: Duration,
        retry_after: Duration,
    },
    /// F7: 404 / FortiManager -3, -6.
    #[error("{ctx}: not found (HTTP {status}, code {code:?})")]
    NotFound {
        ctx: Context,
        status: u16,
        code: Option<i64>,
    },
    /// F8: duplicate entry.
    #[error("{ctx}: an object with this name already exists (code {code})")]
    Duplicate { ctx: Context, code: i64 },
    /// F9: entry in use.
    #[error("{ctx}: the object is still referenced (code {code})")]
    InUse { ctx: Context, code: i64 },
    /// F10: table or group full.
    #[error("{ctx}: limit reached (code {code}): {detail}")]
    LimitReached {
        ctx: Context,
        code: i64,
        detail: String,
    },
    /// F11: invalid value.
    #[error("{ctx}: the device refused a value (code {code}): {detail}")]
    Invalid {
        ctx: Context,
        code: i64,
        detail: String,
    },
    /// F12: 200 with `status: error`, a body that is not the API's JSON, a redirect, or an
    /// unexpected status. `detail` is ours (what kind of body, which field is wrong) plus
    /// allow-listed device fields, never the body.
    #[error("{ctx}: unexpected answer (HTTP {status}): {detail}")]
    UnexpectedResponse {
        ctx: Context,
        status: u16,
        detail: String,
    },
    /// F12: the answer's body is larger than fortisync reads (`transport::MAX_BODY_BYTES`).
    #[error(
        "{ctx}: the answer (HTTP {status}) is larger than {limit} bytes; fortisync stopped reading it"
    )]
    ResponseTooLarge {
        ctx: Context,
        status: u16,
        limit: usize,
    },
    /// 502/503/504 — the device or a proxy is temporarily unavailable.
    #[error("{ctx}: temporarily unavailable (HTTP {status})")]
    Unavailable { ctx: Context, status: u16 },
    /// A write whose answer never came (connection reset): it may or may not have happened.
    #[error(
        "{ctx}: the connection dropped before the answer; the write may or may not have happened"
    )]
    OutcomeUnknown { ctx: Context },
    /// F14: FortiManager -10147, a write without the workspace lock.
    #[error("{ctx}: no write permission (code -10147)")]
    NoWritePermission { ctx: Context },
    /// F17: FortiManager -20055, the ADOM is locked by someone else.
    #[error("{ctx}: the workspace is locked by {holder}")]
    WorkspaceLocked { ctx: Context, holder: String },
    /// F15: FortiManager -2 on an admin user.
    #[error("{ctx}: FortiManager has no administrator named {user:?}")]
    AdminUserNotFound { ctx: Context, user: String },
    /// F16: FortiManager -2 on a proxy target.
    #[error("{ctx}: device or group {target:?} is not in the ADOM")]
    TargetNotFound { ctx: Context, target: String },
    /// F18: the feed name is not configured on the FortiGate.
    #[error("{ctx}: external connector {feed:?} does not exist on the device")]
    FeedNameMismatch { ctx: Context, feed: String },
    /// F19: dynamic push is not available (below 7.2.1, or the feed is not a push feed).
    #[error("{ctx}: dynamic push unavailable: {detail}")]
    PushUnavailable { ctx: Context, detail: String },
    /// F20: other trusted-host slots allow everything, masking our restriction.
    #[error("{ctx}: trusted-host slots {slots:?} allow 0.0.0.0/0, which masks the restriction")]
    AllowAllTrustedHosts { ctx: Context, slots: Vec<u8> },
    /// The device answered a FortiManager code not covered above.
    #[error("{ctx}: FortiManager code {code}: {message}")]
    Rejected {
        ctx: Context,
        code: i64,
        message: String,
    },
}

impl DeviceError {
    /// Stable reason, also the metrics label and the Warning event's reason.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::ConnectFailed { .. } => "ConnectFailed",
            Self::Timeout { .. } => "Timeout",
            Self::Tls { .. } => "Tls",
            Self::Unauthorized { .. } => "Unauthorized",
            Self::CredentialFrozen { .. } => "CredentialFrozen",
            Self::Forbidden { .. } => "Forbidden",
            Self::CsrfMissing { .. } => "CsrfMissing",
            Self::LockedOut { .. } => "LockedOut",
            Self::AuthBudgetExhausted { .. } => "AuthBudgetExhausted",
            Self::NotFound { .. } => "NotFound",
            Self::Duplicate { .. } => "Duplicate",
            Self::InUse { .. } => "InUse",
            Self::LimitReached { .. } => "LimitReached",
            Self::Invalid { .. } => "Invalid",
            Self::UnexpectedResponse { .. } => "UnexpectedResponse",
            Self::ResponseTooLarge { .. } => "ResponseTooLarge",
            Self::Unavailable { .. } => "Unavailable",
            Self::OutcomeUnknown { .. } => "OutcomeUnknown",
            Self::NoWritePermission { .. } => "NoWritePermission",
            Self::WorkspaceLocked { .. } => "WorkspaceLocked",
            Self::AdminUserNotFound { .. } => "AdminUserNotFound",
            Self::TargetNotFound { .. } => "TargetNotFound",
            Self::FeedNameMismatch { .. } => "FeedNameMismatch",
            Self::PushUnavailable { .. } => "PushUnavailable",
            Self::AllowAllTrustedHosts { .. } => "AllowAllTrustedHosts",
            Self::Rejected { .. } => "Rejected",
        }
    }

    /// The row of `troubleshooting.md` this error belongs to.
    pub fn troubleshooting_row(&self) -> &'static str {
        match self {
            Self::ConnectFailed { .. } | Self::Timeout { .. } => "F1",
            Self::Tls { .. } => "F2",
            Self::Unauthorized { .. } | Self::CredentialFrozen { .. } => "F3",
            Self::Forbidden { .. } => "F4",
            Self::CsrfMissing { .. } => "F5",
            Self::LockedOut { .. } | Self::AuthBudgetExhausted { .. } => "F6",
            Self::NotFound { .. } => "F7",
            Self::Duplicate { .. } => "F8",
            Self::InUse { .. } => "F9",
            Self::LimitReached { .. } => "F10",
            Self::Invalid { .. } => "F11",
            Self::UnexpectedResponse { .. }
            | Self::ResponseTooLarge { .. }
            | Self::Unavailable { .. }
            | Self::OutcomeUnknown { .. }
            | Self::Rejected { .. } => "F12",
            Self::NoWritePermission { .. } => "F14",
            Self::AdminUserNotFound { .. } => "F15",
            Self::TargetNotFound { .. } => "F16",
            Self::WorkspaceLocked { .. } => "F17",
            Self::FeedNameMismatch { .. } => "F18",
            Self::PushUnavailable { .. } => "F19",
            Self::AllowAllTrustedHosts { .. } => "F20",
        }
    }

    /// The likely cause, in one line.
    pub fn cause(&self) -> &'static str {
        match self {
            Self::ConnectFailed { .. } => {
                "wrong HTTPS admin port, HTTPS admin access not enabled on the interface, or a firewall/NAT in between drops the traffic"
            }
            Self::Timeout { .. } => {
                "the device or the path to it is slow or drops packets; an admin trusted-host restriction can also drop silently"
            }
            Self::Tls { .. } => {
                "the device certificate is self-signed or from a private CA, expired, or does not match the host name"
            }
            Self::Unauthorized { .. } => {
                "the API key is wrong, regenerated or expired, or the controller's source IP is not in the API user's trusted hosts"
            }
            Self::CredentialFrozen { .. } => {
                "this credential was refused before; every retry would count toward the device's lockout"
            }
            Self::Forbidden { .. } => "the admin profile lacks a permission for this area",
            Self::CsrfMissing { .. } => {
                "a cookie session write was sent without the X-CSRFTOKEN header"
            }
            Self::LockedOut { .. } => {
                "the source IP reached admin-lockout-threshold failed logins; the device refuses everything from it for admin-lockout-duration (doubling on repeats)"
            }
            Self::AuthBudgetExhausted { .. } => {
                "recent failed logins from this controller, with any connection's keys, leave no room below the device's lockout threshold (one slot stays for keys the device has accepted)"
            }
            Self::NotFound { .. } => {
                "wrong VDOM or ADOM, the object is absent, or this firmware lacks the endpoint"
            }
            Self::Duplicate { .. } => {
                "an object with this name already exists and fortisync does not own it"
            }
            Self::InUse { .. } => "the object is still referenced by a group or a policy",
            Self::LimitReached { .. } => "the table or the group is full on this model/firmware",
            Self::Invalid { .. } => {
                "the device refused a value (bad IP/mask, name too long) that admission should have caught"
            }
            Self::UnexpectedResponse { .. } => {
                "a proxy in between, a wrong port answering with a login page or a redirect, or a device quirk"
            }
            Self::ResponseTooLarge { .. } => {
                "something other than the device's API answered (an endless or huge body)"
            }
            Self::Unavailable { .. } => {
                "the device or a proxy in front of it is overloaded or restarting"
            }
            Self::OutcomeUnknown { .. } => "the connection dropped after the request was sent",
            Self::NoWritePermission { .. } => {
                "FortiManager workspace mode requires the ADOM lock, or the admin is read-only"
            }
            Self::WorkspaceLocked { .. } => "another administrator or session holds the ADOM lock",
            Self::AdminUserNotFound { .. } => {
                "the user name does not match a FortiManager administrator exactly"
            }
            Self::TargetNotFound { .. } => "a device target is not a device or group of the ADOM",
            Self::FeedNameMismatch { .. } => {
                "the external resource name on the FortiGate differs from the resource"
            }
            Self::PushUnavailable { .. } => {
                "the FortiGate is below 7.2.1 or the feed is not an update-method push feed"
            }
            Self::AllowAllTrustedHosts { .. } => {
                "another trusted-host slot is 0.0.0.0 0.0.0.0, which allows every source"
            }
            Self::Rejected { .. } => {
                "FortiManager refused the call with a code fortisync does not know"
            }
        }
    }

    /// What an admin should do.
    pub fn remedy(&self) -> &'static str {
        match self {
            Self::ConnectFailed { .. } | Self::Timeout { .. } => {
                "check System > Settings > Administration Settings > HTTPS port (admin-sport) and use it in spec.url; enable HTTPS under Network > Interfaces > Administrative access; allow/NAT the controller's egress IP to the management IP"
            }
            Self::Tls { .. } => {
                "put the CA bundle that signs the device certificate in a Secret and set spec.tls.caBundleSecretRef; only as a last resort set spec.tls.insecureSkipVerify: true"
            }
            Self::Unauthorized { .. } | Self::CredentialFrozen { .. } => {
                "regenerate the key (System > Administrators > <REST API admin> > Regenerate) and update the Secret, and add the controller's egress IP to the API user's trusted hosts; fortisync stops using the key until the Secret changes, because each failure counts toward the device lockout"
            }
            Self::Forbidden { .. } => {
                "grant the permission in System > Admin Profiles > <profile> > Access Permissions (Firewall > Address Read/Write for address groups, System > Configuration Read/Write for external connectors; FortiManager: Super_User for trusted hosts, rpc-permit read-write); sometimes the key must be regenerated after a profile change"
            }
            Self::CsrfMissing { .. } => {
                "use a REST API token (no CSRF needed), or send the ccsrftoken cookie value as X-CSRFTOKEN on every write"
            }
            Self::LockedOut { .. } => {
                "fortisync sends nothing to this device until the window has passed, then one probe; fix the credential first; a reboot or another source IP also clears the lockout"
            }
            Self::AuthBudgetExhausted { .. } => {
                "the failed-login budget is spent: fix the Secrets of the connections to this device that report Unauthorized; the budget frees up when the oldest failure is older than admin-lockout-duration (the message says when), and fortisync then tries this credential once"
            }
            Self::NotFound { .. } => {
                "check spec.vdom / spec.adom of the connection and the device's firmware version"
            }
            Self::Duplicate { .. } => {
                "rename or remove the existing object, or change spec.addressPrefix; fortisync adopts only objects that carry its managed-by marker"
            }
            Self::InUse { .. } => {
                "remove the reference first (fortisync removes addresses from its groups before deleting them)"
            }
            Self::LimitReached { .. } => {
                "reduce the members, or use an ExternalConnector (threat feeds scale to 128K+ entries)"
            }
            Self::Invalid { .. } => {
                "fix the value in the resource; please report it so admission validation catches it"
            }
            Self::UnexpectedResponse { .. } => {
                "check spec.url points at the HTTPS admin port of the device itself, not a proxy or a login page; fortisync never follows a redirect, so use the URL it points to if that is the device"
            }
            Self::ResponseTooLarge { .. } => {
                "check spec.url points at the HTTPS admin port of the device itself; nothing the device's API sends comes near the limit"
            }
            Self::Unavailable { .. } | Self::OutcomeUnknown { .. } => {
                "fortisync retries reads and re-reads before repeating a write; if it persists, check the device's load"
            }
            Self::NoWritePermission { .. } => {
                "lock the ADOM first in workspace mode (fortisync does with spec.workspace.mode Auto/Normal), or give the admin read-write"
            }
            Self::WorkspaceLocked { .. } => {
                "ask the lock holder to commit or unlock the ADOM; fortisync retries the lock a bounded number of times"
            }
            Self::AdminUserNotFound { .. } => {
                "use the FortiManager administrator name exactly as shown in System Settings > Administrators"
            }
            Self::TargetNotFound { .. } => {
                "fix spec.deviceTargets (device or group names of the ADOM); empty means All_FortiGate"
            }
            Self::FeedNameMismatch { .. } => {
                "the external connector name must match the FortiGate's external resource name exactly"
            }
            Self::PushUnavailable { .. } => {
                "non-fatal: the FortiGate picks the entries up on its next poll; upgrade to 7.2.1+ and set update-method push for real-time updates"
            }
            Self::AllowAllTrustedHosts { .. } => {
                "set the other trusted-host slots to 127.0.0.1 or a controlled IP so the restriction is not masked"
            }
            Self::Rejected { .. } => {
                "check the FortiManager's event log for the call; report the code so fortisync can explain it"
            }
        }
    }

    /// Transient faults worth retrying (reads) or re-observing (writes).
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            Self::ConnectFailed { .. }
                | Self::Timeout { .. }
                | Self::Unavailable { .. }
                | Self::OutcomeUnknown { .. }
        )
    }

    /// When a retry is allowed at the earliest, where the error itself knows.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Self::LockedOut { retry_after, .. } | Self::AuthBudgetExhausted { retry_after, .. } => {
                Some(*retry_after)
            }
            // Nothing to gain before the Secret changes; its watch re-triggers at once.
            Self::CredentialFrozen { .. } => Some(Duration::from_secs(600)),
            _ => None,
        }
    }

    /// A `LockedOut` learns the breaker's window; other errors are unchanged.
    pub fn with_lockout_window(self, window: Option<Duration>) -> Self {
        match (self, window) {
            (Self::LockedOut { ctx, .. }, Some(w)) => Self::LockedOut {
                ctx,
                retry_after: w,
            },
            (e, _) => e,
        }
    }

    /// The reason conditions show: a frozen credential is still an `Unauthorized` to the admin
    /// (its message says it is not retried), so the root cause stays visible.
    pub fn condition_reason(&self) -> &'static str {
        match self {
            Self::CredentialFrozen { .. } => "Unauthorized",
            other => other.reason(),
        }
    }

    /// The report shown in status and events.
    pub fn report(&self) -> crate::api::common::ErrorReport {
        crate::api::common::ErrorReport {
            reason: self.condition_reason().to_string(),
            message: format!("{self} ({}: {})", self.troubleshooting_row(), self.cause()),
            remedy: self.remedy().to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx() -> Context {
        Context {
            device: "fw".into(),
            method: "GET".into(),
            path: "/api/v2/cmdb/firewall/address".into(),
        }
    }

    #[test]
    fn every_error_has_a_reason_row_cause_and_remedy() {
        let all = vec![
            DeviceError::ConnectFailed {
                ctx: ctx(),
                detail: "refused".into(),
            },
            DeviceError::Timeout {
                ctx: ctx(),
                timeout: Duration::from_secs(10),
            },
            DeviceError::Tls {
                ctx: ctx(),
                detail: "unknown issuer".into(),
            },
            DeviceError::Unauthorized { ctx: ctx() },
            DeviceError::CredentialFrozen {
                device: "fw".into(),
                fingerprint: "abcd".into(),
                refused_at: "now".into(),
            },
            DeviceError::Forbidden {
                ctx: ctx(),
                status: 403,
                code: None,
            },
            DeviceError::CsrfMissing { ctx: ctx() },
            DeviceError::LockedOut {
                ctx: ctx(),
                retry_after: Duration::from_secs(60),
            },
            DeviceError::AuthBudgetExhausted {
                device: "fw".into(),
                failures: 2,
                threshold: 3,
                window: Duration::from_secs(60),
                retry_after: Duration::from_secs(30),
            },
            DeviceError::NotFound {
                ctx: ctx(),
                status: 404,
                code: None,
            },
            DeviceError::Duplicate {
                ctx: ctx(),
                code: -5,
            },
            DeviceError::InUse {
                ctx: ctx(),
                code: -23,
            },
            DeviceError::LimitReached {
                ctx: ctx(),
                code: -4,
                detail: "600".into(),
            },
            DeviceError::Invalid {
                ctx: ctx(),
                code: -651,
                detail: "x".into(),
            },
            DeviceError::UnexpectedResponse {
                ctx: ctx(),
                status: 200,
                detail: "an HTML page".into(),
            },
            DeviceError::ResponseTooLarge {
                ctx: ctx(),
                status: 200,
                limit: 64,
            },
            DeviceError::Unavailable {
                ctx: ctx(),
                status: 503,
            },
            DeviceError::OutcomeUnknown { ctx: ctx() },
            DeviceError::NoWritePermission { ctx: ctx() },
            DeviceError::WorkspaceLocked {
                ctx: ctx(),
                holder: "bob".into(),
            },
            DeviceError::AdminUserNotFound {
                ctx: ctx(),
                user: "alice".into(),
            },
            DeviceError::TargetNotFound {
                ctx: ctx(),
                target: "group/x".into(),
            },
            DeviceError::FeedNameMismatch {
                ctx: ctx(),
                feed: "edl".into(),
            },
            DeviceError::PushUnavailable {
                ctx: ctx(),
                detail: "7.0".into(),
            },
            DeviceError::AllowAllTrustedHosts {
                ctx: ctx(),
                slots: vec![1],
            },
            DeviceError::Rejected {
                ctx: ctx(),
                code: -99,
                message: "?".into(),
            },
        ];
        let mut reasons = std::collections::BTreeSet::new();
        for e in &all {
            assert!(
                reasons.insert(e.reason()),
                "duplicate reason {}",
                e.reason()
            );
            assert!(e.troubleshooting_row().starts_with('F'));
            assert!(!e.cause().is_empty() && !e.remedy().is_empty());
            let report = e.report();
            assert_eq!(report.reason, e.condition_reason());
            assert!(report.message.contains(e.troubleshooting_row()));
        }
        let rows: std::collections::BTreeSet<_> =
            all.iter().map(DeviceError::troubleshooting_row).collect();
        for row in [
            "F1", "F2", "F3", "F4", "F5", "F6", "F7", "F8", "F9", "F10", "F11", "F12", "F14",
            "F15", "F16", "F17", "F18", "F19", "F20",
        ] {
            assert!(rows.contains(row), "{row} has no error");
        }
    }

    #[test]
    fn transient_errors_are_the_retryable_ones() {
        assert!(
            DeviceError::Unavailable {
                ctx: ctx(),
                status: 502
            }
            .is_transient()
        );
        assert!(!DeviceError::Unauthorized { ctx: ctx() }.is_transient());
        assert_eq!(
            DeviceError::LockedOut {
                ctx: ctx(),
                retry_after: Duration::from_secs(9)
            }
            .retry_after(),
            Some(Duration::from_secs(9))
        );
    }
}
