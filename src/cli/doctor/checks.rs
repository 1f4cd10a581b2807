//! The doctor's findings, decided without I/O: the report and its steps, and a step from a
//! probe's outcome, reusing the `DeviceError` texts so doctor and the controller give the same
//! reason, cause and remedy. The rules over device facts live in `rules`.

use std::net::IpAddr;
use std::time::Duration;

use serde::Serialize;

use crate::device::wording;
use crate::device::{Credentials, DeviceError, DeviceKind, LockoutPolicy};

/// How one checklist step turned out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Passed (or purely informational).
    Ok,
    /// Failed: fortisync will not work until it is fixed.
    Fail,
    /// Works, but something deserves attention.
    Warn,
    /// Not run, because an earlier step failed or the input to run it is missing.
    Skip,
}

/// One step of the checklist, as printed and as `--output json` shows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Step {
    /// Stable identifier (`tcp`, `auth`, `read.firewall.address`, ...).
    pub id: String,
    /// What the step checks, for people.
    pub title: String,
    /// Outcome.
    pub status: Status,
    /// What was seen.
    pub detail: String,
    /// The stable reason the controller would report (`Unauthorized`, ...), on failures.
    pub reason: Option<String>,
    /// The likely cause.
    pub cause: Option<String>,
    /// What to do.
    pub remedy: Option<String>,
    /// The row of the troubleshooting table (`F1`–`F20`).
    pub troubleshooting_row: Option<String>,
}

impl Step {
    fn plain(id: &str, title: &str, status: Status, detail: impl Into<String>) -> Self {
        Self {
            id: id.to_string(),
            title: title.to_string(),
            status,
            detail: detail.into(),
            reason: None,
            cause: None,
            remedy: None,
            troubleshooting_row: None,
        }
    }

    /// A passed step.
    pub fn ok(id: &str, title: &str, detail: impl Into<String>) -> Self {
        Self::plain(id, title, Status::Ok, detail)
    }

    /// A step not run, and why.
    pub fn skip(id: &str, title: &str, why: impl Into<String>) -> Self {
        Self::plain(id, title, Status::Skip, why)
    }

    /// A failed step explained by a device error: its reason, cause, remedy and row.
    pub fn failed(id: &str, title: &str, error: &DeviceError) -> Self {
        Self {
            reason: Some(error.condition_reason().to_string()),
            cause: Some(error.cause().to_string()),
            remedy: Some(error.remedy().to_string()),
            troubleshooting_row: Some(error.troubleshooting_row().to_string()),
            ..Self::plain(id, title, Status::Fail, error.to_string())
        }
    }

    /// A warning explained by a device error's texts, with our own detail.
    pub fn warned(id: &str, title: &str, detail: impl Into<String>, error: &DeviceError) -> Self {
        Self {
            status: Status::Warn,
            detail: detail.into(),
            ..Self::failed(id, title, error)
        }
    }

    /// Replaces the detail.
    pub fn detail(mut self, detail: impl Into<String>) -> Self {
        self.detail = detail.into();
        self
    }

    /// Puts `text` before the remedy (what to grant or set, specific to this step).
    pub fn remedy_first(mut self, text: &str) -> Self {
        self.remedy = Some(match self.remedy {
            Some(r) => format!("{text}; {r}"),
            None => text.to_string(),
        });
        self
    }

    /// Overrides the troubleshooting row (FortiManager names some failures differently).
    pub fn row(mut self, row: &str) -> Self {
        self.troubleshooting_row = Some(row.to_string());
        self
    }
}

/// Everything one doctor run found.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    /// `FortiGate` or `FortiManager`.
    pub kind: String,
    /// The connection (`namespace/name`, or the URL's host for flags).
    pub device: String,
    /// The URL checked (never with a query).
    pub url: String,
    /// The VDOM or ADOM.
    pub scope: String,
    /// The steps in the order they ran.
    pub steps: Vec<Step>,
}

impl Report {
    /// True when no step failed (warnings allowed).
    pub fn passed(&self) -> bool {
        !self.steps.iter().any(|s| s.status == Status::Fail)
    }

    /// How many steps ended with `status`.
    pub fn count(&self, status: Status) -> usize {
        self.steps.iter().filter(|s| s.status == status).count()
    }

    /// The step with `id`.
    pub fn step(&self, id: &str) -> Option<&Step> {
        self.steps.iter().find(|s| s.id == id)
    }
}

/// The steps of each device kind after the network ones, in order, with their titles (what
/// is skipped when the credential is refused).
pub fn authenticated_steps(kind: DeviceKind) -> &'static [(&'static str, &'static str)] {
    match kind {
        DeviceKind::FortiGate => &[
            ("vdom", "VDOM exists"),
            ("read.firewall.address", "read firewall/address"),
            ("read.firewall.addrgrp", "read firewall/addrgrp"),
            (
                "read.system.external-resource",
                "read system/external-resource",
            ),
            ("read.system.global", "read system/global"),
            ("facts", "device facts"),
            ("lockout", "lockout settings"),
            ("version.token-in-url", "API key in the URL"),
            ("version.dynamic-push", "dynamic push"),
            ("version.member-cap", "address group size"),
        ],
        DeviceKind::FortiManager => &[
            ("adom", "ADOM exists"),
            ("workspace", "workspace mode"),
            ("admin-user", "API admin user"),
            ("trusted-hosts", "trusted hosts"),
            ("rpc-permit", "rpc-permit and profile"),
            ("adom-access", "read ADOM objects"),
            ("facts", "device facts"),
        ],
    }
}

/// Skips every step from `from` on (inclusive), saying why.
pub fn skip_from(kind: DeviceKind, from: &str, why: &str) -> Vec<Step> {
    authenticated_steps(kind)
        .iter()
        .skip_while(|(id, _)| *id != from)
        .map(|(id, title)| Step::skip(id, title, why))
        .collect()
}

/// The title of a step id.
pub fn title(kind: DeviceKind, id: &str) -> &'static str {
    authenticated_steps(kind)
        .iter()
        .find(|(i, _)| *i == id)
        .map_or("check", |(_, t)| t)
}

/// Why the rest is skipped after the credential was refused or the device locked us out.
pub const STOPPED: &str = "not tried: the device refused the credential or locked this source out, and every further attempt would count toward (or extend) the lockout";

/// Whether an error means: send nothing more (the credential is refused or we are locked out).
pub fn stops(e: &DeviceError) -> bool {
    matches!(
        e,
        DeviceError::Unauthorized { .. }
            | DeviceError::CredentialFrozen { .. }
            | DeviceError::LockedOut { .. }
            | DeviceError::AuthBudgetExhausted { .. }
    )
}

/// Why the steps after a failed first authenticated read are skipped.
pub fn skipped_after_auth(e: &DeviceError) -> &'static str {
    if stops(e) {
        STOPPED
    } else {
        "not tried: the first authenticated read failed (see above)"
    }
}

/// The `auth` step from the first authenticated read. `source` is the address the device
/// saw (as far as we know), `lockout` what the connection declares; a refusal is worded for
/// `credentials` ("API key" or "password").
pub fn auth_step(
    kind: DeviceKind,
    outcome: Result<String, &DeviceError>,
    source: Option<IpAddr>,
    lockout: LockoutPolicy,
    credentials: &Credentials,
) -> Step {
    const TITLE: &str = "authenticated read";
    let error = match outcome {
        Ok(detail) => return Step::ok("auth", TITLE, detail),
        Err(e) => e,
    };
    let from = source.map_or_else(|| "this machine's address".to_string(), |ip| ip.to_string());
    let noun = wording::noun(credentials);
    let mut step = Step::failed("auth", TITLE, error);
    step.cause = Some(wording::cause(error, credentials).to_string());
    step.remedy = Some(wording::remedy(error, credentials).to_string());
    match (error, kind) {
        (DeviceError::Unauthorized { .. }, DeviceKind::FortiGate) => step.detail(format!(
            "{error}. Sent once from {from}, the address the {who} trusted hosts must allow; doctor stops here and does not try the {noun} again, because each failure counts toward the device's lockout",
            who = match credentials {
                Credentials::Token(_) => "API user's",
                Credentials::Password { .. } => "administrator's",
            }
        )),
        (DeviceError::Unauthorized { .. }, DeviceKind::FortiManager) => step
            .row("F13")
            .detail(format!(
                "{error}. FortiManager answered -11 or -22: the {noun} is wrong, {from} is outside the admin's trusted hosts, or the admin's rpc-permit is none. Sent once; doctor does not try again"
            ))
            .remedy_first(match credentials {
                Credentials::Token(_) => "on FortiManager, regenerate the key with `execute api-user generate-key <user>` and check rpc-permit read-write (F14)",
                Credentials::Password { .. } => "on FortiManager, check the administrator's password and its rpc-permit read-write (F14)",
            }),
        (DeviceError::LockedOut { .. }, _) => step.detail(format!(
            "{error}. The device locked {from} out and refuses every request from it without checking the {noun}. It does not say for how long: admin-lockout-duration is {} as the connection declares it (spec.lockout.durationSeconds), and each repeat lockout of an API key doubles it ({}, {}, ...). Doctor sends nothing more",
            secs(lockout.duration),
            secs(lockout.duration.saturating_mul(2)),
            secs(lockout.duration.saturating_mul(4)),
        )),
        (DeviceError::UnexpectedResponse { .. }, _) => step.detail(format!(
            "{error}. The answer is not the device's JSON API: is this the HTTPS admin port of the device itself?"
        )),
        _ => step,
    }
}

/// `60 s`.
pub fn secs(d: Duration) -> String {
    format!("{} s", d.as_secs())
}

/// One read-only permission probe of a FortiGate table.
#[derive(Debug, Clone, Copy)]
pub struct Probe {
    /// Step id.
    pub id: &'static str,
    /// `firewall/address`.
    pub table: &'static str,
    /// The profile area to grant, as the GUI names it.
    pub grant: &'static str,
    /// Whether fortisync cannot work at all without it (else a warning).
    pub required: bool,
}

/// The FortiGate permission probes, in order.
pub const PROBES: [Probe; 4] = [
    Probe {
        id: "read.firewall.address",
        table: "firewall/address",
        grant: "grant Firewall > Address Read/Write (fwgrp) in the API user's admin profile: AddressGroups create and change addresses",
        required: true,
    },
    Probe {
        id: "read.firewall.addrgrp",
        table: "firewall/addrgrp",
        grant: "grant Firewall > Address Read/Write (fwgrp) in the API user's admin profile: AddressGroups create and change address groups",
        required: true,
    },
    Probe {
        id: "read.system.external-resource",
        table: "system/external-resource",
        grant: "grant System > Configuration Read/Write (sysgrp) in the API user's admin profile, needed only for ExternalConnectors (Passive and above)",
        required: false,
    },
    Probe {
        id: "read.system.global",
        table: "system/global",
        grant: "grant System > Configuration Read (sysgrp) so the device's lockout settings can be checked; without it fortisync trusts spec.lockout",
        required: false,
    },
];

/// The step of one permission probe.
pub fn probe_step(probe: &Probe, outcome: Result<(), &DeviceError>) -> Step {
    let title = format!("read {}", probe.table);
    match outcome {
        Ok(()) => Step::ok(
            probe.id,
            &title,
            "readable. Write permission cannot be checked without writing, and doctor never writes",
        ),
        Err(e @ DeviceError::Forbidden { .. }) => {
            let step = Step::failed(probe.id, &title, e).remedy_first(probe.grant);
            if probe.required {
                step
            } else {
                Step {
                    status: Status::Warn,
                    ..step
                }
            }
        }
        Err(e) => Step::failed(probe.id, &title, e),
    }
}

/// The `vdom` step: the configured VDOM answered, or a 404 (F7) said it does not exist.
pub fn vdom_step(vdom: &str, outcome: Result<(), &DeviceError>, known: &[String]) -> Step {
    const TITLE: &str = "VDOM exists";
    let listed = if known.is_empty() {
        String::new()
    } else {
        format!(" (VDOMs this API user sees: {})", known.join(", "))
    };
    match outcome {
        Ok(()) => Step::ok("vdom", TITLE, format!("VDOM {vdom:?} answers{listed}")),
        Err(e @ DeviceError::NotFound { .. }) => Step::failed("vdom", TITLE, e)
            .detail(format!(
                "{e}: the device has no VDOM {vdom:?}{listed}, or the API user is not allowed in it"
            ))
            .remedy_first("set spec.vdom (doctor: --vdom) to a VDOM of the device; `root` on a device without VDOMs"),
        Err(e) => Step::failed("vdom", TITLE, e),
    }
}

#[cfg(test)]
mod tests;
