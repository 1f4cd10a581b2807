//! The FortiGate steps: one authenticated read, then read-only probes of the tables fortisync
//! uses, the device facts and the version rules. Every request goes through the run's one
//! Guard, so a refused key is never sent twice.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use reqwest::Method;
use serde_json::Value;

use super::checks::{
    self, PROBES, STOPPED, Step, auth_step, probe_step, skip_from, skipped_after_auth, stops,
    vdom_step,
};
use super::feeds::FeedCheck;
use super::rules::{device_lockout, lockout_step, version_steps};
use super::slots::{UserCheck, slots_step};
use crate::api::trustedhost::UserKind;
use crate::device::fortios::{FortiOsClient, RetryPolicy};
use crate::device::{DeviceError, DeviceKind, EndpointConfig, Guard};
use crate::reconcile::trustedhost;
use crate::reconcile::trustedhost::slots::Flavor;

const KIND: DeviceKind = DeviceKind::FortiGate;

fn client(
    endpoint: &EndpointConfig,
    vdom: &str,
    guard: &Arc<Guard>,
) -> Result<FortiOsClient, DeviceError> {
    Ok(FortiOsClient::new(
        endpoint.name.clone(),
        &endpoint.url,
        vdom,
        endpoint.credentials.clone(),
        &endpoint.transport,
        guard.clone(),
    )?
    .with_retry(RetryPolicy {
        retries: 1,
        base: Duration::from_millis(200),
        cap: Duration::from_secs(1),
    }))
}

/// A read of one row's name: enough to see the permission without listing a large table.
async fn probe(client: &FortiOsClient, table: &str) -> Result<Value, DeviceError> {
    client
        .request(
            Method::GET,
            &format!("/api/v2/cmdb/{table}"),
            &[("format", "name"), ("count", "1")],
            None,
        )
        .await
}

/// The VDOMs the API user sees (`vdom=*`), best effort.
async fn visible_vdoms(endpoint: &EndpointConfig, guard: &Arc<Guard>) -> Vec<String> {
    let Ok(all) = client(endpoint, "*", guard) else {
        return Vec::new();
    };
    match probe(&all, "firewall/address").await {
        Ok(Value::Array(envelopes)) => envelopes
            .iter()
            .filter_map(|e| e["vdom"].as_str().map(str::to_string))
            .collect(),
        Ok(single) => single["vdom"]
            .as_str()
            .map(str::to_string)
            .into_iter()
            .collect(),
        Err(_) => Vec::new(),
    }
}

/// Runs the FortiGate steps after the network ones.
pub async fn check(
    endpoint: &EndpointConfig,
    guard: Arc<Guard>,
    source: Option<IpAddr>,
    feeds: &[FeedCheck],
    users: &[UserCheck],
) -> Vec<Step> {
    let mut steps = Vec::new();
    let scoped = match client(endpoint, &endpoint.scope, &guard) {
        Ok(c) => c,
        Err(e) => {
            steps.push(Step::failed("auth", "authenticated read", &e));
            steps.extend(skip_from(KIND, "vdom", "not tried: no HTTP client"));
            return steps;
        }
    };
    let status = scoped.system_status().await;
    let what = match endpoint.credentials {
        crate::device::Credentials::Token(_) => "the API key",
        crate::device::Credentials::Password { .. } => "the admin login",
    };
    steps.push(auth_step(
        KIND,
        status.as_ref().map(|s| {
            format!(
                "the device accepted {what}: FortiOS {} answered monitor/system/status",
                s.version
            )
        }),
        source,
        endpoint.lockout,
        &endpoint.credentials,
    ));
    let status = match status {
        Ok(s) => s,
        Err(e) => {
            steps.extend(skip_from(KIND, "vdom", skipped_after_auth(&e)));
            return steps;
        }
    };

    // firewall/address first: its 404 is how a wrong VDOM shows (F7).
    let address = probe(&scoped, PROBES[0].table).await.map(|_| ());
    if let Err(e) = &address
        && stops(e)
    {
        steps.push(Step::failed("vdom", checks::title(KIND, "vdom"), e));
        steps.extend(skip_from(KIND, "read.firewall.address", STOPPED));
        return steps;
    }
    let vdoms = if matches!(address, Err(DeviceError::Forbidden { .. })) {
        Vec::new()
    } else {
        visible_vdoms(endpoint, &guard).await
    };
    let vdom_missing = matches!(address, Err(DeviceError::NotFound { .. }));
    match &address {
        // A 403 says nothing about the VDOM; the probe step explains the permission.
        Err(DeviceError::Forbidden { .. }) => steps.push(Step::skip(
            "vdom",
            checks::title(KIND, "vdom"),
            "cannot tell: the profile may not read firewall/address (see below)",
        )),
        other => steps.push(vdom_step(
            &endpoint.scope,
            other.as_ref().map(|_| ()),
            &vdoms,
        )),
    }
    let mut global = Value::Null;
    for p in &PROBES {
        let outcome = if p.table == "system/global" {
            scoped.global().await.map(|g| global = g)
        } else if vdom_missing {
            steps.push(Step::skip(
                p.id,
                &format!("read {}", p.table),
                format!("not tried: VDOM {:?} does not exist", endpoint.scope),
            ));
            continue;
        } else if p.id == PROBES[0].id {
            address.clone()
        } else {
            probe(&scoped, p.table).await.map(|_| ())
        };
        if let Err(e) = &outcome
            && stops(e)
        {
            steps.push(Step::failed(p.id, &format!("read {}", p.table), e));
            let next = checks::authenticated_steps(KIND)
                .iter()
                .skip_while(|(id, _)| *id != p.id)
                .nth(1)
                .map_or("facts", |(id, _)| *id);
            steps.extend(skip_from(KIND, next, STOPPED));
            return steps;
        }
        steps.push(probe_step(p, outcome.as_ref().map(|_| ())));
    }

    let lockout = device_lockout(&global);
    let mut facts = format!(
        "FortiOS {}, serial {}, model {}, hostname {}",
        status.version, status.serial, status.model, status.hostname
    );
    if !vdoms.is_empty() {
        facts.push_str(&format!("; VDOMs: {}", vdoms.join(", ")));
    }
    if let Some(l) = lockout {
        facts.push_str(&format!(
            "; lockout after {} failed logins for {}",
            l.threshold,
            checks::secs(l.duration)
        ));
    }
    steps.push(Step::ok("facts", "device facts", facts));
    steps.push(lockout_step(lockout, endpoint.lockout));
    steps.extend(version_steps(&status.version));
    if vdom_missing {
        let why = format!("not tried: VDOM {:?} does not exist", endpoint.scope);
        steps.extend(
            feeds
                .iter()
                .map(|f| Step::skip(&f.id(), &f.title(), why.clone())),
        );
    } else {
        steps.extend(super::feeds::check(&scoped, feeds).await);
    }
    for u in users {
        let flavor = match u.kind {
            UserKind::Admin => Flavor::FortiGateAdmin,
            UserKind::ApiUser => Flavor::FortiGateApiUser,
        };
        steps.push(
            match trustedhost::fortigate::observe(&scoped, flavor, &u.user).await {
                Ok(Some(found)) => slots_step(u, &found.slots),
                Ok(None) => Step {
                    reason: Some("AdminUserNotFound".into()),
                    cause: Some(format!(
                        "the device has no user {:?} in {}",
                        u.user,
                        match flavor {
                            Flavor::FortiGateApiUser => "system/api-user",
                            _ => "system/admin",
                        }
                    )),
                    remedy: Some(
                        "set spec.user to the administrator's name exactly as the device shows it"
                            .into(),
                    ),
                    troubleshooting_row: Some("F15".into()),
                    status: super::checks::Status::Fail,
                    ..Step::ok(&u.id(), &u.title(), "no such user")
                },
                Err(e) => Step::failed(&u.id(), &u.title(), &e),
            },
        );
    }
    steps
}
