//! The rules doctor applies to what a device reported: FortiOS version rules (token in the
//! URL, dynamic push, member cap), the lockout settings against the connection's, and the
//! FortiManager admin user's trusted hosts, rpc-permit and profile. Pure, no I/O.

use std::net::Ipv4Addr;
use std::time::Duration;

use serde_json::Value;

use super::checks::{Status, Step, authenticated_steps, secs};
use crate::device::{Context, DeviceError, DeviceKind, LockoutPolicy};

/// A FortiOS (or FortiManager) version `v7.4.3`, `7.4.3`, `v7.4.3-build2487 ...`.
pub fn parse_version(text: &str) -> Option<(u32, u32, u32)> {
    let text = text.trim().trim_start_matches(['v', 'V']);
    let core = text
        .split(|c: char| !(c.is_ascii_digit() || c == '.'))
        .next()?;
    let mut parts = core.split('.').map(|p| p.parse::<u32>().ok());
    let major = parts.next()??;
    let minor = parts.next().flatten().unwrap_or(0);
    let patch = parts.next().flatten().unwrap_or(0);
    Some((major, minor, patch))
}

/// The FortiOS version rules (token in the URL, dynamic push, member cap).
pub fn version_steps(version: &str) -> Vec<Step> {
    let Some(v) = parse_version(version) else {
        return authenticated_steps(DeviceKind::FortiGate)
            .iter()
            .filter(|(id, _)| id.starts_with("version."))
            .map(|(id, title)| {
                Step::skip(
                    id,
                    title,
                    format!("the device reported no version doctor can read ({version:?})"),
                )
            })
            .collect();
    };
    let ctx = Context::default();
    let refuses_url_token = v >= (7, 4, 5) && v != (7, 6, 0);
    let token = Step::ok(
        "version.token-in-url",
        "API key in the URL",
        if refuses_url_token {
            format!(
                "FortiOS {version} refuses an API key in the URL (?access_token=) unless rest-api-key-url-query is enabled; fortisync sends the key only in the Authorization header, so nothing to do"
            )
        } else {
            format!(
                "FortiOS {version} still accepts an API key in the URL; fortisync sends it only in the Authorization header anyway (7.4.5 / 7.6.1 and later refuse the URL form)"
            )
        },
    );
    let push = if v >= (7, 2, 1) {
        Step::ok(
            "version.dynamic-push",
            "dynamic push",
            format!("FortiOS {version} has the dynamic push API (7.2.1+) for ExternalConnectors"),
        )
    } else {
        Step::warned(
            "version.dynamic-push",
            "dynamic push",
            format!(
                "FortiOS {version} is below 7.2.1: ExternalConnector entries cannot be pushed; the FortiGate reads them at its next poll of the feed"
            ),
            &DeviceError::PushUnavailable {
                ctx: ctx.clone(),
                detail: String::new(),
            },
        )
    };
    let cap = if v.0 == 6 && v.1 == 4 {
        Step::warned(
            "version.member-cap",
            "address group size",
            format!("FortiOS {version} holds at most 600 members per address group"),
            &DeviceError::LimitReached {
                ctx,
                code: -4,
                detail: String::new(),
            },
        )
    } else {
        Step::ok(
            "version.member-cap",
            "address group size",
            format!("FortiOS {version} has no 600-member cap per address group (6.4 has)"),
        )
    };
    vec![token, push, cap]
}

/// A number that FortiOS may send as a string.
fn number(v: &Value) -> Option<u64> {
    v.as_u64()
        .or_else(|| v.as_str().and_then(|s| s.trim().parse().ok()))
}

/// The device's lockout settings from `system/global`, when present.
pub fn device_lockout(global: &Value) -> Option<LockoutPolicy> {
    Some(LockoutPolicy {
        threshold: number(&global["admin-lockout-threshold"])? as u32,
        duration: Duration::from_secs(number(&global["admin-lockout-duration"])?),
    })
}

/// The `lockout` step: what the device has against what the connection declares.
pub fn lockout_step(device: Option<LockoutPolicy>, declared: LockoutPolicy) -> Step {
    const TITLE: &str = "lockout settings";
    let Some(device) = device else {
        return Step::skip(
            "lockout",
            TITLE,
            format!(
                "system/global is not readable; fortisync trusts spec.lockout (threshold {}, duration {})",
                declared.threshold,
                secs(declared.duration)
            ),
        );
    };
    let detail = format!(
        "the device locks a source out after {} failed logins for {}; the connection declares threshold {} and duration {}",
        device.threshold,
        secs(device.duration),
        declared.threshold,
        secs(declared.duration)
    );
    if device.threshold < declared.threshold || device.duration > declared.duration {
        Step {
            status: Status::Warn,
            cause: Some("spec.lockout is looser than the device: fortisync's failed-login budget could reach the device's threshold, or it would probe again before the lockout ends".into()),
            remedy: Some(format!(
                "set spec.lockout.threshold: {} and spec.lockout.durationSeconds: {} to match config system global",
                device.threshold,
                device.duration.as_secs()
            )),
            troubleshooting_row: Some("F6".into()),
            ..Step::ok("lockout", TITLE, detail)
        }
    } else {
        Step::ok("lockout", TITLE, detail)
    }
}

/// One IPv4 trusted-host slot: `["10.0.0.1", "255.255.255.255"]` or `"10.0.0.1 255.255.255.255"`.
fn trusthost(v: &Value) -> Option<(Ipv4Addr, Ipv4Addr)> {
    let (ip, mask) = match v {
        Value::Array(items) if items.len() == 2 => (items[0].as_str()?, items[1].as_str()?),
        Value::String(s) => s.split_once(' ')?,
        _ => return None,
    };
    Some((ip.trim().parse().ok()?, mask.trim().parse().ok()?))
}

/// The FortiManager admin-user steps (trusted hosts F20, rpc-permit and profile F14) from
/// `/cli/global/system/admin/user/<user>`.
pub fn fortimanager_user_steps(user: &str, data: &Value, adom: &str) -> Vec<Step> {
    let ctx = Context::default();
    let slots: Vec<(u8, (Ipv4Addr, Ipv4Addr))> = (1..=10u8)
        .filter_map(|n| trusthost(&data[format!("trusthost{n}")]).map(|t| (n, t)))
        .collect();
    let allow_all: Vec<u8> = slots
        .iter()
        .filter(|(n, (ip, mask))| *n <= 9 && ip.is_unspecified() && mask.is_unspecified())
        .map(|(n, _)| *n)
        .collect();
    let used: Vec<String> = slots
        .iter()
        .filter(|(_, (ip, _))| !ip.is_broadcast())
        .map(|(n, (ip, mask))| format!("{n}: {ip} {mask}"))
        .collect();
    let hosts = if allow_all.is_empty() {
        Step::ok(
            "trusted-hosts",
            "trusted hosts",
            format!(
                "{user:?} accepts only its trusted hosts ({})",
                used.join(", ")
            ),
        )
    } else {
        Step::warned(
            "trusted-hosts",
            "trusted hosts",
            format!(
                "trusted-host slot(s) {allow_all:?} of {user:?} are 0.0.0.0 0.0.0.0 and allow every source, which masks any restriction in the other slots (used: {})",
                used.join(", ")
            ),
            &DeviceError::AllowAllTrustedHosts {
                ctx: ctx.clone(),
                slots: allow_all.clone(),
            },
        )
    };
    let permit = data["rpc-permit"].as_str().unwrap_or("none");
    let profile = data["profileid"].as_str().unwrap_or_default();
    let adoms: Vec<&str> = data["adom"]
        .as_array()
        .map(|a| a.iter().filter_map(|x| x["adom-name"].as_str()).collect())
        .unwrap_or_default();
    let adom_allowed = adoms.is_empty() || adoms.iter().any(|a| *a == adom || *a == "all_adoms");
    let forbidden = DeviceError::Forbidden {
        ctx,
        status: 200,
        code: Some(-11),
    };
    const TITLE: &str = "rpc-permit and profile";
    let rights = if permit != "read-write" {
        Step::failed("rpc-permit", TITLE, &forbidden)
            .row("F14")
            .detail(format!("{user:?} has rpc-permit {permit}: FortiManager refuses its writes with -11"))
            .remedy_first(&format!("set rpc-permit read-write on the admin: config system admin user, edit {user}, set rpc-permit read-write"))
    } else if profile == "Restricted_User" {
        Step::failed("rpc-permit", TITLE, &forbidden)
            .row("F14")
            .detail(format!("{user:?} has the profile Restricted_User, which cannot write ADOM objects"))
            .remedy_first("give the admin a profile with device-config read-write (Super_User for trusted-host management)")
    } else if !adom_allowed {
        Step::failed("rpc-permit", TITLE, &forbidden)
            .row("F14")
            .detail(format!(
                "{user:?} may use the ADOMs {adoms:?}, not {adom:?}"
            ))
            .remedy_first(&format!("add ADOM {adom} to the admin's ADOMs"))
    } else if profile != "Super_User" {
        Step::warned(
            "rpc-permit",
            TITLE,
            format!("{user:?} has rpc-permit read-write and the profile {profile}: objects can be managed, trusted hosts only with Super_User"),
            &forbidden,
        )
        .row("F14")
    } else {
        Step::ok(
            "rpc-permit",
            TITLE,
            format!("{user:?} has rpc-permit read-write and the profile Super_User"),
        )
    };
    vec![hosts, rights]
}

#[cfg(test)]
mod tests;
