//! Making an ADOM change reach the FortiGates (`install: Proxy`): every target device is
//! observed through `/sys/proxy/json` (two calls reach all devices at once), planned with the
//! same pure planner as a direct FortiGate, and only the devices that differ are written, one
//! proxy call per distinct write naming every device that needs it.
//!
//! Why not a policy-package install: an install pushes every pending change of the ADOM, not
//! just ours, and takes tens of seconds per device; the proxy path converges our objects only,
//! in well under a second, and a device that was offline catches up on the next resync.

use serde_json::{Value, json};

use super::fortigate::Family;
use super::observed;
use super::plan::{DesiredGroup, ObservedGroup, Op, Plan};
use crate::device::DeviceError;
use crate::device::fortimanager::FortiManagerClient;
use crate::device::fortios::encode_name;
use crate::device::fortios::response::strict_results;
use crate::reconcile::target::proxy::{self, answer, http_status};

/// One FortiGate reached through the FortiManager, and what it needs.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct DevicePlan {
    /// FortiManager device name.
    pub device: String,
    /// Its writes (empty when converged or unreachable).
    pub plan: Plan,
    /// Why the device could not be observed or written, when it could not.
    pub error: Option<String>,
}

/// The FortiOS REST request (proxy `action`, `resource`, `payload`) that performs `op`.
pub fn fortios_request(family: Family, op: &Op) -> (&'static str, String, Option<Value>) {
    let cmdb = |table: &str| format!("/api/v2/cmdb/{table}");
    let one = |table: &str, name: &str| format!("/api/v2/cmdb/{table}/{}", encode_name(name));
    let (addresses, groups) = (family.address_table(), family.group_table());
    match op {
        Op::CreateAddress {
            name,
            address,
            comment,
        } => (
            "post",
            cmdb(addresses),
            Some(address.fortios_object(name, comment)),
        ),
        Op::UpdateAddress {
            name,
            address,
            comment,
        } => (
            "put",
            one(addresses, name),
            Some(address.fortios_object(name, comment)),
        ),
        Op::CreateGroup {
            name,
            members,
            comment,
        } => {
            let members: Vec<Value> = members.iter().map(|m| json!({"name": m})).collect();
            (
                "post",
                cmdb(groups),
                Some(json!({"name": name, "member": members, "comment": comment})),
            )
        }
        Op::AddMember { group, member } => (
            "post",
            format!("{}/member", one(groups, group)),
            Some(json!({"name": member})),
        ),
        Op::RemoveMember { group, member } => (
            "delete",
            format!("{}/member/{}", one(groups, group), encode_name(member)),
            None,
        ),
        Op::DeleteAddress { name } => ("delete", one(addresses, name), None),
        Op::DeleteGroup { name } => ("delete", one(groups, name), None),
        Op::ClaimGroup { name, comment } => {
            ("put", one(groups, name), Some(json!({"comment": comment})))
        }
    }
}

/// Where an op sits in the referential order every plan follows.
fn phase(op: &Op) -> u8 {
    match op {
        Op::CreateAddress { .. } | Op::UpdateAddress { .. } => 0,
        Op::ClaimGroup { .. } => 0,
        Op::CreateGroup { .. } => 1,
        Op::AddMember { .. } => 2,
        Op::RemoveMember { .. } => 3,
        Op::DeleteGroup { .. } => 4,
        Op::DeleteAddress { .. } => 5,
    }
}

/// Merges per-device plans into distinct writes, each with the devices that need it, in an
/// order that keeps every device's own order (pure).
pub fn merge(plans: &[DevicePlan]) -> Vec<(Op, Vec<String>)> {
    let mut out: Vec<(Op, Vec<String>)> = Vec::new();
    for p in plans {
        for op in p.plan.ops() {
            match out.iter_mut().find(|(o, _)| o == op) {
                Some((_, devices)) => devices.push(p.device.clone()),
                None => out.push((op.clone(), vec![p.device.clone()])),
            }
        }
    }
    out.sort_by_key(|(op, _)| phase(op));
    out
}

/// Group members outside our prefix looked up by name in the address listing at most;
/// past this (an Exclusive first pass over a large hand-made group) the listing is unfiltered.
const STRANGER_LOOKUPS: usize = 40;

/// Observes every target device (two proxy calls) and plans each against `desired`.
/// `deleting` plans the removal instead (deletion policy Delete). The groups are read first:
/// with Exclusive membership the address listing also covers the members outside our prefix,
/// whose marker says whether another resource owns them (those are never removed).
pub async fn plan_devices(
    client: &FortiManagerClient,
    targets: &[String],
    family: Family,
    desired: &DesiredGroup,
    deleting: bool,
    now: jiff::Timestamp,
) -> Result<Vec<DevicePlan>, DeviceError> {
    let get = format!(
        "/api/v2/cmdb/{}/{}",
        family.group_table(),
        encode_name(&desired.group_name)
    );
    let groups = client.proxy(targets, "get", &get, None).await?;
    let mut strangers = std::collections::BTreeSet::new();
    if desired.membership == crate::api::addressgroup::Membership::Exclusive && !deleting {
        for g in groups.iter().filter_map(|g| answer(g).ok()) {
            // A body that does not parse names no stranger: the plan below reads it strictly.
            for object in strict_results(g)
                .unwrap_or_default()
                .iter()
                .map(observed::group)
            {
                strangers.extend(
                    object.members.into_iter().filter(|m| {
                        m != super::plan::PLACEHOLDER && !m.starts_with(&desired.prefix)
                    }),
                );
            }
        }
    }
    let mut clauses = vec![format!("name=@{}", desired.prefix)];
    clauses.extend(strangers.iter().map(|m| format!("name=={m}")));
    let fields = encode_name(&observed::ADDRESS_FIELDS.join("|"));
    let list = if strangers.len() > STRANGER_LOOKUPS {
        format!("/api/v2/cmdb/{}?format={fields}", family.address_table())
    } else {
        format!(
            "/api/v2/cmdb/{}?filter={}&format={fields}",
            family.address_table(),
            encode_name(&clauses.join(","))
        )
    };
    let addresses = client.proxy(targets, "get", &list, None).await?;
    let mut out = Vec::new();
    for a in &addresses {
        let device = a.target.clone();
        let observed = answer(a).and_then(|body| {
            if http_status(body) >= 400 {
                return Err(format!("HTTP {} reading addresses", http_status(body)));
            }
            let g = groups
                .iter()
                .find(|g| g.target == a.target)
                .ok_or("no answer for the group")?;
            let gbody = answer(g)?;
            let group = match http_status(gbody) {
                404 => None,
                s if s >= 400 => return Err(format!("HTTP {s} reading the group")),
                _ => strict_results(gbody)?.first().map(observed::group),
            };
            let addresses: Vec<_> = observed::addresses(&strict_results(body)?, "", family)
                .into_iter()
                .filter(|a| a.name.starts_with(&desired.prefix) || strangers.contains(&a.name))
                .collect();
            Ok((ObservedGroup { group, addresses }, proxy::firmware(body)))
        });
        out.push(match observed {
            Ok((observed, version)) => {
                let d = DesiredGroup {
                    empty_group_allowed: version.empty_group_allowed(),
                    ..desired.clone()
                };
                let plan = if deleting {
                    super::plan::plan_deletion(
                        &d,
                        &observed,
                        crate::api::addressgroup::DeletionPolicy::Delete,
                    )
                } else {
                    super::plan::plan(&d, &observed, now)
                };
                // A device whose group is not ours (or past its cap) is written nothing and
                // reported, like one that could not be reached.
                match plan.refusal() {
                    Some(refusal) => DevicePlan {
                        device,
                        error: Some(refusal.to_string()),
                        plan: Plan::default(),
                    },
                    None => DevicePlan {
                        device,
                        plan,
                        error: None,
                    },
                }
            }
            Err(error) => DevicePlan {
                device,
                plan: Plan::default(),
                error: Some(error),
            },
        });
    }
    Ok(out)
}

/// Sends the merged writes; a device that refuses one gets its error recorded and is left
/// out of the writes that follow (they would depend on it).
pub async fn apply_devices(
    client: &FortiManagerClient,
    family: Family,
    plans: &mut [DevicePlan],
    on_write: super::converge::WriteObserver<'_>,
) -> Result<(), DeviceError> {
    let adom = client.adom().to_string();
    for (op, devices) in merge(plans) {
        let devices: Vec<String> = devices
            .into_iter()
            .filter(|d| plans.iter().any(|p| &p.device == d && p.error.is_none()))
            .collect();
        if devices.is_empty() {
            continue;
        }
        for d in &devices {
            on_write(d, &op);
        }
        let targets: Vec<String> = devices
            .iter()
            .map(|d| format!("adom/{adom}/device/{d}"))
            .collect();
        let (action, resource, payload) = fortios_request(family, &op);
        for r in client.proxy(&targets, action, &resource, payload).await? {
            let failure = match answer(&r) {
                Err(e) => Some(e),
                Ok(body) if http_status(body) >= 400 => Some(format!(
                    "{op}: HTTP {} (FortiOS error {})",
                    http_status(body),
                    body["error"]
                )),
                Ok(_) => None,
            };
            if let Some(e) = failure
                && let Some(p) = plans.iter_mut().find(|p| p.device == r.target)
            {
                p.error = Some(e);
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::MemberAddress;

    fn plan_of(device: &str, ops: Vec<Op>) -> DevicePlan {
        DevicePlan {
            device: device.into(),
            plan: Plan::from_ops(ops),
            error: None,
        }
    }

    #[test]
    fn identical_writes_are_sent_once_for_every_device_that_needs_them() {
        let create = Op::CreateAddress {
            name: "fs_192.0.2.1".into(),
            address: MemberAddress::parse("192.0.2.1").expect("ip"),
            comment: "c".into(),
        };
        let add = Op::AddMember {
            group: "g".into(),
            member: "fs_192.0.2.1".into(),
        };
        let delete = Op::DeleteAddress {
            name: "fs_old".into(),
        };
        let merged = merge(&[
            plan_of("a", vec![create.clone(), add.clone()]),
            plan_of("b", vec![add.clone(), delete.clone()]),
            plan_of("c", vec![]),
        ]);
        assert_eq!(
            merged,
            vec![
                (create, vec!["a".to_string()]),
                (add, vec!["a".to_string(), "b".to_string()]),
                (delete, vec!["b".to_string()]),
            ]
        );
    }

    #[test]
    fn ops_become_the_fortios_requests_a_direct_client_would_send() {
        let (action, resource, body) = fortios_request(
            Family::V4,
            &Op::RemoveMember {
                group: "a/b".into(),
                member: "fs_10.0.0.0_24".into(),
            },
        );
        assert_eq!(action, "delete");
        assert_eq!(
            resource,
            "/api/v2/cmdb/firewall/addrgrp/a%2Fb/member/fs_10.0.0.0_24"
        );
        assert_eq!(body, None);
        let (action, resource, body) = fortios_request(
            Family::V4,
            &Op::CreateGroup {
                name: "g".into(),
                members: vec!["none".into()],
                comment: "m".into(),
            },
        );
        assert_eq!(
            (action, resource.as_str()),
            ("post", "/api/v2/cmdb/firewall/addrgrp")
        );
        assert_eq!(body.expect("body")["member"], json!([{"name": "none"}]));
    }
}
