//! An ExternalConnector on the FortiGates behind a FortiManager, reached through
//! `/sys/proxy/json`: every targeted device is observed with two proxy calls (the resource
//! object, then its `entry-list`), planned with the same pure planner as a direct FortiGate,
//! and written with one proxy call per distinct request naming every device that needs it
//! (the object, then the `dynamic` push, then the feed `refresh`). A device that cannot be
//! reached or refuses a write is recorded and the others go on: one device never holds the
//! fleet back, and the next pass tries it again.

use std::collections::BTreeSet;

use serde_json::Value;

use super::fortigate::{EntryList, TABLE, read_entry_list};
use super::plan::{self, ConnectorPlan, DesiredResource, Refusal};
use crate::api::externalconnector::{ConnectorDeviceTarget, ConnectorMode};
use crate::api::fortimanager::FortiManagerSpec;
use crate::device::DeviceError;
use crate::device::fortimanager::{FortiManagerClient, ProxyResult};
use crate::device::fortios::encode_name;
use crate::device::fortios::response::strict_results;
use crate::reconcile::target::proxy::{self, answer, envelope, http_status};

mod write;

pub use write::remove_group;

const MONITOR: &str = "/api/v2/monitor/system/external-resource";

/// What a pass asks of the devices.
#[derive(Debug, Clone, Copy)]
pub struct DevicePass<'a> {
    /// The resource object as fortisync wants it.
    pub desired: &'a DesiredResource,
    /// Manage a device's resource nobody owns.
    pub take_over: bool,
    /// The declared entries (canonical).
    pub entries: &'a BTreeSet<String>,
    /// `spec.deviceTargets` (empty: the connection's targets).
    pub targets: &'a [ConnectorDeviceTarget],
    /// The devices that were converged at this very spec and list: a difference there is an
    /// out-of-band change, repaired with one snapshot.
    pub converged: &'a BTreeSet<(String, Option<String>)>,
}

/// Why a device does not hold the list, or that it does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeviceState {
    /// It holds the declared list.
    Converged,
    /// A feed pull is under way.
    Pending,
    /// `spec.deviceTargets` names a device the ADOM does not have.
    UnknownDevice,
    /// The FortiManager could not reach it.
    Unreachable,
    /// Its resource could not be read or written.
    DeviceError,
    /// The `dynamic` push failed (a warning: the next pass pushes again).
    PushFailed,
    /// Its last feed pull failed.
    FeedPullFailed,
    /// More entries than its limit.
    ListOverflow,
    /// Its resource is not ours (see the refusal).
    Refused(&'static str),
}

impl DeviceState {
    /// The reason as status shows it.
    pub fn reason(self) -> &'static str {
        match self {
            Self::Converged => "Converged",
            Self::Pending => "Pending",
            Self::UnknownDevice => "UnknownDevice",
            Self::Unreachable => "Unreachable",
            Self::DeviceError => "DeviceError",
            Self::PushFailed => "PushFailed",
            Self::FeedPullFailed => "FeedPullFailed",
            Self::ListOverflow => "ListOverflow",
            Self::Refused(reason) => reason,
        }
    }
}

/// One FortiGate after a pass.
#[derive(Debug, Clone, PartialEq)]
pub struct DeviceResult {
    /// FortiManager device name.
    pub name: String,
    /// The VDOM the target names.
    pub vdom: Option<String>,
    /// Where it stands.
    pub state: DeviceState,
    /// What went wrong, with the remedy.
    pub error: Option<String>,
    /// What it reports of its list, when it was read.
    pub list: Option<EntryList>,
    /// Writes sent to it this pass.
    pub writes: usize,
    /// Of those, repairs of an out-of-band change.
    pub drift_writes: usize,
}

impl DeviceResult {
    fn new(name: &str, vdom: &Option<String>, state: DeviceState, error: String) -> Self {
        Self {
            name: name.to_string(),
            vdom: vdom.clone(),
            state,
            error: Some(error),
            list: None,
            writes: 0,
            drift_writes: 0,
        }
    }
}

/// The proxy targets per VDOM (None: no `vdom` parameter), and the devices named that the
/// ADOM does not have. An empty `spec.deviceTargets` is the connection's targets, as
/// AddressGroup's install reaches them.
pub async fn resolve(
    client: &FortiManagerClient,
    spec: &FortiManagerSpec,
    targets: &[ConnectorDeviceTarget],
) -> Result<(Vec<(Option<String>, Vec<String>)>, Vec<DeviceResult>), DeviceError> {
    if targets.is_empty() {
        return Ok((vec![(None, proxy::targets(spec))], Vec::new()));
    }
    // FortiManager fails the whole proxy call with -2 when one target is not in the ADOM
    // (F16): the names are checked first, so one typo cannot stop the other devices.
    let known: BTreeSet<String> = client.device_names().await?.into_iter().collect();
    let mut groups: Vec<(Option<String>, Vec<String>)> = Vec::new();
    let mut unknown = Vec::new();
    for t in targets {
        if !known.contains(&t.name) {
            unknown.push(DeviceResult::new(
                &t.name,
                &t.vdom,
                DeviceState::UnknownDevice,
                format!(
                    "the FortiManager ADOM {:?} has no device {:?}; nothing was sent to it. Remedy: fix spec.deviceTargets (the device name as FortiManager shows it), or add the device to the ADOM",
                    client.adom(),
                    t.name
                ),
            ));
            continue;
        }
        let target = format!("adom/{}/device/{}", client.adom(), t.name);
        match groups.iter_mut().find(|(v, _)| *v == t.vdom) {
            Some((_, list)) => list.push(target),
            None => groups.push((t.vdom.clone(), vec![target])),
        }
    }
    Ok((groups, unknown))
}

/// `path` with the VDOM parameter (and `extra` query) when there is one.
fn with_query(path: &str, vdom: &Option<String>, extra: &[(&str, &str)]) -> String {
    let mut query: Vec<String> = extra
        .iter()
        .map(|(k, v)| format!("{k}={}", encode_name(v)))
        .collect();
    if let Some(v) = vdom {
        query.push(format!("vdom={}", encode_name(v)));
    }
    if query.is_empty() {
        path.to_string()
    } else {
        format!("{path}?{}", query.join("&"))
    }
}

fn object_path(name: &str) -> String {
    format!("/api/v2/cmdb/{TABLE}/{}", encode_name(name))
}

fn device_target(client: &FortiManagerClient, device: &str) -> String {
    format!("adom/{}/device/{device}", client.adom())
}

/// The device's answer, or why it has none (unreachable, or a FortiOS error status).
fn body_of<'a>(r: &'a ProxyResult, what: &str) -> Result<&'a Value, (DeviceState, String)> {
    let body = answer(r).map_err(|e| {
        (
            DeviceState::Unreachable,
            format!("the FortiManager could not reach it ({e}); the next pass tries again"),
        )
    })?;
    match http_status(body) {
        s if s >= 400 && s != 404 => Err((
            DeviceState::DeviceError,
            format!(
                "HTTP {s} {what} (FortiOS error {})",
                envelope(body)["error"]
            ),
        )),
        _ => Ok(body),
    }
}

/// One device while a pass runs.
struct Device {
    result: DeviceResult,
    plan: Option<ConnectorPlan>,
    behind: bool,
}

/// Observes, plans and (with `write`) applies `pass` on every device of one VDOM group.
pub async fn converge_group(
    client: &FortiManagerClient,
    vdom: &Option<String>,
    targets: &[String],
    pass: DevicePass<'_>,
    write: bool,
) -> Result<Vec<DeviceResult>, DeviceError> {
    let d = pass.desired;
    let objects = client
        .proxy(
            targets,
            "get",
            &with_query(&object_path(&d.name), vdom, &[]),
            None,
        )
        .await?;
    let mut devices: Vec<Device> = Vec::new();
    let mut observed: Vec<(String, Option<Value>, crate::model::Firmware)> = Vec::new();
    for r in &objects {
        match body_of(r, "reading the external resource") {
            Err((state, e)) => devices.push(Device {
                result: DeviceResult::new(&r.target, vdom, state, e),
                plan: None,
                behind: false,
            }),
            Ok(body) => {
                let object = match http_status(body) {
                    404 => None,
                    _ => match strict_results(body) {
                        Ok(rows) => rows.into_iter().next(),
                        Err(e) => {
                            devices.push(Device {
                                result: DeviceResult::new(
                                    &r.target,
                                    vdom,
                                    DeviceState::DeviceError,
                                    format!("an unexpected answer reading the resource: {e}"),
                                ),
                                plan: None,
                                behind: false,
                            });
                            continue;
                        }
                    },
                };
                observed.push((r.target.clone(), object, proxy::firmware(body)));
            }
        }
    }
    let lists = entry_lists(
        client,
        vdom,
        &d.name,
        observed
            .iter()
            .filter(|(_, o, _)| o.is_some())
            .map(|(n, _, _)| n.as_str()),
    )
    .await?;
    for (name, object, firmware) in observed {
        let held = lists.iter().find(|(n, _)| *n == name).map(|(_, l)| l);
        let on_device = held.map(|l| l.entries.clone()).unwrap_or_default();
        let drift = pass.converged.contains(&(name.clone(), vdom.clone()));
        let mut result = DeviceResult {
            name: name.clone(),
            vdom: vdom.clone(),
            state: DeviceState::Pending,
            error: None,
            list: held.cloned(),
            writes: 0,
            drift_writes: 0,
        };
        match plan::plan(
            d,
            firmware,
            object.as_ref(),
            pass.take_over,
            pass.entries,
            &on_device,
            drift,
        ) {
            Ok(p) => {
                if drift {
                    result.drift_writes = p.writes();
                }
                devices.push(Device {
                    result,
                    behind: held.is_none_or(|l| l.entries != *pass.entries),
                    plan: Some(p),
                });
            }
            Err(refusal) => {
                let (reason, message) = refusal.explain(&d.name);
                result.state = DeviceState::Refused(reason);
                result.error = Some(match refusal {
                    Refusal::PushUnsupported(_) => message,
                    _ => format!("on this device: {message}"),
                });
                devices.push(Device {
                    result,
                    plan: None,
                    behind: false,
                });
            }
        }
    }
    if !write {
        // A plan (`fortisync plan`): what each device would be sent.
        for x in &mut devices {
            x.result.writes = x.plan.as_ref().map_or(0, ConnectorPlan::writes);
        }
    }
    if write {
        write::apply(client, vdom, d, &mut devices).await?;
        let written: Vec<&str> = devices
            .iter()
            .filter(|x| x.result.error.is_none() && x.result.writes > 0)
            .map(|x| x.result.name.as_str())
            .collect();
        for (name, list) in entry_lists(client, vdom, &d.name, written.into_iter()).await? {
            if let Some(x) = devices.iter_mut().find(|x| x.result.name == name) {
                x.result.list = Some(list);
            }
        }
    }
    Ok(devices
        .into_iter()
        .map(|x| settle(x.result, d.mode, pass.entries))
        .collect())
}

/// `entry-list` of `name` on `devices` (one proxy call); an unreadable one is left out.
async fn entry_lists(
    client: &FortiManagerClient,
    vdom: &Option<String>,
    name: &str,
    devices: impl Iterator<Item = &str>,
) -> Result<Vec<(String, EntryList)>, DeviceError> {
    let targets: Vec<String> = devices.map(|n| device_target(client, n)).collect();
    if targets.is_empty() {
        return Ok(Vec::new());
    }
    let path = with_query(&format!("{MONITOR}/entry-list"), vdom, &[("mkey", name)]);
    Ok(client
        .proxy(&targets, "get", &path, None)
        .await?
        .iter()
        .filter_map(|r| {
            let body = answer(r).ok().filter(|b| http_status(b) < 400)?;
            Some((
                r.target.clone(),
                read_entry_list(&envelope(body)["results"]),
            ))
        })
        .collect())
}

/// Where a device that was observed (and maybe written) stands, from what it reports.
fn settle(mut r: DeviceResult, mode: ConnectorMode, entries: &BTreeSet<String>) -> DeviceResult {
    if r.error.is_some() {
        return r;
    }
    let Some(list) = &r.list else {
        r.state = DeviceState::Pending;
        return r;
    };
    let (state, error) = if list.status.overflow {
        (
            DeviceState::ListOverflow,
            Some(format!(
                "it holds {} of {} entries: its list limit is reached; split the list or check the model's external-resource limits",
                list.entries.len(),
                entries.len()
            )),
        )
    } else if mode == ConnectorMode::Feed && list.status.status == "error" {
        (
            DeviceState::FeedPullFailed,
            Some(format!(
                "its last pull failed ({}{}); it keeps its last good list. Remedy: check that it reaches the feed URL and that its credentials match the EDL's",
                list.status.error.clone().unwrap_or_default(),
                list.status
                    .http_status_code
                    .map(|c| format!(", HTTP {c}"))
                    .unwrap_or_default()
            )),
        )
    } else if list.entries != *entries {
        (DeviceState::Pending, None)
    } else {
        (DeviceState::Converged, None)
    };
    r.state = state;
    r.error = error;
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_vdom_and_query_parameters_are_encoded_into_the_proxied_path() {
        assert_eq!(
            with_query(
                "/api/v2/monitor/x",
                &Some("dmz 1".into()),
                &[("mkey", "a/b")]
            ),
            "/api/v2/monitor/x?mkey=a%2Fb&vdom=dmz%201"
        );
        assert_eq!(with_query("/api/v2/cmdb/x", &None, &[]), "/api/v2/cmdb/x");
    }

    #[test]
    fn a_device_is_settled_from_what_it_reports() {
        let entries: BTreeSet<String> = ["192.0.2.1".to_string()].into();
        let base = DeviceResult {
            name: "fw".into(),
            vdom: None,
            state: DeviceState::Pending,
            error: None,
            list: Some(EntryList {
                entries: entries.clone(),
                ..Default::default()
            }),
            writes: 0,
            drift_writes: 0,
        };
        let done = settle(base.clone(), ConnectorMode::Push, &entries);
        assert_eq!((done.state, done.error), (DeviceState::Converged, None));
        let mut behind = base.clone();
        behind.list = Some(EntryList::default());
        assert_eq!(
            settle(behind, ConnectorMode::Push, &entries).state,
            DeviceState::Pending
        );
        let mut failed = base;
        failed.list.as_mut().expect("list").status.status = "error".into();
        let failed = settle(failed, ConnectorMode::Feed, &entries);
        assert_eq!(failed.state, DeviceState::FeedPullFailed);
        assert!(
            failed
                .error
                .is_some_and(|e| e.contains("keeps its last good list"))
        );
    }
}
