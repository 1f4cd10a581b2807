//! The FortiManager steps: login or key (F13), the ADOM (F7), workspace mode, the API admin
//! user (F15), its trusted hosts (F20), rpc-permit and profile (F14), and one read of the
//! ADOM's objects. JSON-RPC `get` only; every call goes through the run's one Guard.

use std::net::IpAddr;
use std::sync::Arc;

use serde_json::{Map, json};

use super::checks::{self, STOPPED, Step, auth_step, skip_from, skipped_after_auth, stops};
use super::rules::fortimanager_user_steps;
use super::slots::{UserCheck, slots_step};
use crate::device::fortimanager::FortiManagerClient;
use crate::device::{Credentials, DeviceError, DeviceKind, EndpointConfig, Guard};

const KIND: DeviceKind = DeviceKind::FortiManager;

/// -11 on a read after the credential worked: a missing right, not a bad key (F14).
fn lacks_rights(id: &str, e: &DeviceError, what: &str) -> Step {
    let forbidden = DeviceError::Forbidden {
        ctx: Default::default(),
        status: 200,
        code: Some(-11),
    };
    Step::failed(id, checks::title(KIND, id), &forbidden)
        .row("F14")
        .detail(format!(
            "{e}: FortiManager answered -11 reading {what} although the credential worked for the system status, so the admin lacks a right (rpc-permit, ADOM access or profile)"
        ))
}

/// Runs the FortiManager steps after the network ones. `admin_user` names the API admin to
/// inspect (the password login's user when not given).
pub async fn check(
    endpoint: &EndpointConfig,
    guard: Arc<Guard>,
    source: Option<IpAddr>,
    admin_user: Option<&str>,
    users: &[UserCheck],
) -> Vec<Step> {
    let mut steps = Vec::new();
    let client = match FortiManagerClient::new(
        endpoint.name.clone(),
        &endpoint.url,
        &endpoint.scope,
        endpoint.credentials.clone(),
        &endpoint.transport,
        guard,
    ) {
        Ok(c) => c,
        Err(e) => {
            steps.push(Step::failed("auth", "authenticated read", &e));
            steps.extend(skip_from(KIND, "adom", "not tried: no HTTP client"));
            return steps;
        }
    };
    let status = client.system_status().await;
    let what = match &endpoint.credentials {
        Credentials::Token(_) => "the API key".to_string(),
        Credentials::Password { user, .. } => format!("the login of {user:?}"),
    };
    let auth = match &status {
        Err(e @ DeviceError::Forbidden { .. }) => Step::failed("auth", "authenticated read", e)
            .row("F14")
            .detail(format!("{e}: the login worked but a fresh session got -11, so the admin's rpc-permit or profile lacks rights")),
        other => auth_step(
            KIND,
            other.as_ref().map(|s| {
                format!(
                    "the FortiManager accepted {what}: {} answered /cli/global/system/status",
                    s["Version"].as_str().unwrap_or("(no version)")
                )
            }),
            source,
            endpoint.lockout,
            &endpoint.credentials,
        ),
    };
    steps.push(auth);
    let status = match status {
        Ok(s) => s,
        Err(e) => {
            steps.extend(skip_from(KIND, "adom", skipped_after_auth(&e)));
            client.logout().await;
            return steps;
        }
    };
    let adom = &endpoint.scope;

    let facts = match client.adom_facts().await {
        Ok(f) => {
            steps.push(Step::ok(
                "adom",
                "ADOM exists",
                format!(
                    "ADOM {adom:?} exists (FortiOS {}.{} ADOM)",
                    f.major, f.minor
                ),
            ));
            Some(f)
        }
        Err(e) if stops(&e) => {
            steps.push(lacks_rights("adom", &e, &format!("ADOM {adom:?}")));
            steps.extend(skip_from(KIND, "workspace", STOPPED));
            return steps;
        }
        Err(e @ DeviceError::NotFound { .. }) => {
            steps.push(
                Step::failed("adom", "ADOM exists", &e)
                    .detail(format!("{e}: the FortiManager has no ADOM {adom:?}"))
                    .remedy_first("set spec.adom (doctor: --adom) to an ADOM of the FortiManager; `root` always exists"),
            );
            None
        }
        Err(e) => {
            steps.push(Step::failed("adom", "ADOM exists", &e));
            None
        }
    };

    match client.workspace_mode().await {
        Ok(mode) => {
            let locked = facts
                .and_then(|f| f.workspace)
                .unwrap_or(mode != "disabled");
            steps.push(Step::ok(
                "workspace",
                "workspace mode",
                if locked {
                    format!("workspace-mode {mode}: fortisync locks the ADOM, commits and unlocks around each change, and waits for a lock another admin holds (informational)")
                } else {
                    format!("workspace-mode {mode}: changes apply at once, no ADOM lock is needed (informational)")
                },
            ));
        }
        Err(e) if stops(&e) => {
            steps.push(lacks_rights("workspace", &e, "the global settings"));
            steps.extend(skip_from(KIND, "admin-user", STOPPED));
            return steps;
        }
        Err(e) => steps.push(Step::failed("workspace", "workspace mode", &e)),
    }

    let user = admin_user
        .map(str::to_string)
        .or(match &endpoint.credentials {
            Credentials::Password { user, .. } => Some(user.clone()),
            Credentials::Token(_) => None,
        });
    match &user {
        None => {
            for id in ["admin-user", "trusted-hosts", "rpc-permit"] {
                steps.push(Step::skip(id, checks::title(KIND, id), "an API key does not tell its administrator: pass --admin-user <name> to check the user, its trusted hosts and rpc-permit"));
            }
        }
        Some(user) => match client.admin_user(user).await {
            Ok(data) => {
                steps.push(Step::ok(
                    "admin-user",
                    "API admin user",
                    format!("administrator {user:?} exists"),
                ));
                steps.extend(fortimanager_user_steps(user, &data, adom));
            }
            Err(e) if stops(&e) => {
                steps.push(lacks_rights("admin-user", &e, "the administrators"));
                steps.extend(skip_from(KIND, "trusted-hosts", STOPPED));
                return steps;
            }
            Err(e) => {
                steps.push(Step::failed("admin-user", "API admin user", &e));
                for id in ["trusted-hosts", "rpc-permit"] {
                    steps.push(Step::skip(
                        id,
                        checks::title(KIND, id),
                        format!("not checked: administrator {user:?} could not be read"),
                    ));
                }
            }
        },
    }

    if facts.is_none() {
        steps.push(Step::skip(
            "adom-access",
            "read ADOM objects",
            format!("not tried: ADOM {adom:?} could not be read"),
        ));
    } else {
        let mut extra = Map::new();
        extra.insert("fields".into(), json!(["name"]));
        extra.insert("range".into(), json!([0, 1]));
        let url = format!("/pm/config/adom/{adom}/obj/firewall/address");
        match client.call("get", &url, extra).await {
            Ok(_) => steps.push(Step::ok("adom-access", "read ADOM objects", format!("firewall addresses of ADOM {adom:?} are readable; writes cannot be checked without writing, and doctor never writes"))),
            Err(e) if stops(&e) => steps.push(lacks_rights("adom-access", &e, &format!("the objects of ADOM {adom:?}"))),
            Err(e) => steps.push(Step::failed("adom-access", "read ADOM objects", &e)),
        }
    }

    let text = |k: &str| {
        status[k]
            .as_str()
            .map(str::to_string)
            .unwrap_or_else(|| status[k].to_string())
    };
    let mut detail = format!(
        "FortiManager {}, serial {}, hostname {}",
        text("Version"),
        text("Serial Number"),
        text("Hostname")
    );
    if let Some(f) = facts {
        detail.push_str(&format!("; ADOM {adom} is FortiOS {}.{}", f.major, f.minor));
    }
    steps.push(Step::ok("facts", "device facts", detail));
    for u in users {
        steps.push(
            match crate::reconcile::trustedhost::fortimanager::observe(&client, &u.user).await {
                Ok(found) => slots_step(u, &found.slots),
                Err(e) => Step::failed(&u.id(), &u.title(), &e),
            },
        );
    }
    client.logout().await;
    steps
}
