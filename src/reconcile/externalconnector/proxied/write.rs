//! The writes of a pass on the devices behind a FortiManager: each distinct proxied request
//! once, naming every device that needs it, in the order a direct FortiGate gets them (the
//! object, the `dynamic` push, the `refresh`); and the deletion of our resource.

use serde_json::{Value, json};

use super::{Device, DeviceState, MONITOR, body_of, device_target, object_path, with_query};
use crate::api::externalconnector::ConnectorMode;
use crate::device::DeviceError;
use crate::device::fortimanager::FortiManagerClient;
use crate::device::fortios::response::strict_results;
use crate::reconcile::externalconnector::fortigate::TABLE;
use crate::reconcile::externalconnector::plan::{ConnectorPlan, DesiredResource, ObjectWrite};
use crate::reconcile::target::proxy::{envelope, http_status};

/// One proxied request.
type Request = (&'static str, String, Option<Value>);

/// Sends the object writes, then the pushes, then the refreshes: each distinct request once,
/// to every device that needs it. A device that refuses one is left out of the later ones.
pub(super) async fn apply(
    client: &FortiManagerClient,
    vdom: &Option<String>,
    d: &DesiredResource,
    devices: &mut [Device],
) -> Result<(), DeviceError> {
    let name = d.name.as_str();
    let object = |p: &ConnectorPlan| -> Option<Request> {
        match &p.object {
            ObjectWrite::None => None,
            ObjectWrite::Create(body) => Some((
                "post",
                with_query(&format!("/api/v2/cmdb/{TABLE}"), vdom, &[]),
                Some(body.clone()),
            )),
            ObjectWrite::Update(body) => Some((
                "put",
                with_query(&object_path(name), vdom, &[]),
                Some(body.clone()),
            )),
        }
    };
    let push = |p: &ConnectorPlan| -> Option<Request> {
        (!p.push.is_empty()).then(|| {
            (
                "post",
                with_query(&format!("{MONITOR}/dynamic"), vdom, &[]),
                Some(p.push.body(name)),
            )
        })
    };
    let refresh = |p: &ConnectorPlan, behind: bool| -> Option<Request> {
        (d.mode == ConnectorMode::Feed && (behind || p.writes() > 0)).then(|| {
            (
                "post",
                with_query(&format!("{MONITOR}/refresh"), vdom, &[]),
                Some(json!({"mkey": name})),
            )
        })
    };
    for phase in 0..3 {
        let mut requests: Vec<(Request, Vec<String>)> = Vec::new();
        for x in devices.iter().filter(|x| x.result.error.is_none()) {
            let Some(p) = &x.plan else { continue };
            let request = match phase {
                0 => object(p),
                1 => push(p),
                _ => refresh(p, x.behind),
            };
            let Some(request) = request else { continue };
            match requests.iter_mut().find(|(r, _)| *r == request) {
                Some((_, names)) => names.push(x.result.name.clone()),
                None => requests.push((request, vec![x.result.name.clone()])),
            }
        }
        for ((action, resource, payload), names) in requests {
            let targets: Vec<String> = names.iter().map(|n| device_target(client, n)).collect();
            if phase < 2 {
                tracing::info!(device = %client.device(), resource = %name, targets = ?names, %action, path = %resource, "device write through the FortiManager proxy");
            }
            let answers = client.proxy(&targets, action, &resource, payload).await?;
            for n in &names {
                let Some(x) = devices.iter_mut().find(|x| &x.result.name == n) else {
                    continue;
                };
                let failure = match answers.iter().find(|r| &r.target == n) {
                    None => Some((
                        DeviceState::Unreachable,
                        "the FortiManager gave no answer for it".to_string(),
                    )),
                    Some(r) => match body_of(r, "") {
                        Err(e) => Some(e),
                        Ok(body) if http_status(body) >= 400 => Some((
                            DeviceState::DeviceError,
                            format!(
                                "HTTP {} (FortiOS error {})",
                                http_status(body),
                                envelope(body)["error"]
                            ),
                        )),
                        Ok(_) => None,
                    },
                };
                if phase < 2 {
                    x.result.writes += 1;
                }
                if let Some((state, why)) = failure {
                    let (state, what) = match phase {
                        0 => (state, "writing the external resource"),
                        1 if state == DeviceState::DeviceError => {
                            (DeviceState::PushFailed, "pushing the entries")
                        }
                        1 => (state, "pushing the entries"),
                        _ => (state, "asking for a refresh"),
                    };
                    x.result.state = state;
                    x.result.error = Some(if state == DeviceState::Unreachable {
                        format!("{what}: {why}")
                    } else {
                        format!(
                            "{what}: the device refused it, {why}; the next pass tries again. Remedy: check the FortiOS error and the admin profile the FortiManager uses on the device (System Configuration read-write, F4)"
                        )
                    });
                }
            }
        }
    }
    Ok(())
}

/// Removes the resource from every device of one VDOM group where fortisync owns it; the
/// devices it could not reach are returned, to be named in an event.
pub async fn remove_group(
    client: &FortiManagerClient,
    vdom: &Option<String>,
    targets: &[String],
    name: &str,
    owner: &crate::model::Owner,
) -> Result<Vec<String>, DeviceError> {
    let path = with_query(&object_path(name), vdom, &[]);
    let objects = client.proxy(targets, "get", &path, None).await?;
    let mut left = Vec::new();
    let mut owned = Vec::new();
    for r in &objects {
        match body_of(r, "reading the external resource") {
            Err(_) => left.push(r.target.clone()),
            Ok(body) if http_status(body) == 404 => {}
            Ok(body) => {
                let ours = strict_results(body)
                    .ok()
                    .and_then(|rows| rows.into_iter().next())
                    .is_some_and(|o| owner.owns(o["comments"].as_str().unwrap_or_default()));
                if ours {
                    owned.push(device_target(client, &r.target));
                }
            }
        }
    }
    if !owned.is_empty() {
        tracing::info!(device = %client.device(), resource = %name, targets = ?owned, "device write through the FortiManager proxy: delete external resource");
        for r in client.proxy(&owned, "delete", &path, None).await? {
            if body_of(&r, "deleting").is_err_and(|(s, _)| s == DeviceState::Unreachable) {
                left.push(r.target.clone());
            }
        }
    }
    Ok(left)
}
