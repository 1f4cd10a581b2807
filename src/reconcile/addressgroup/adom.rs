//! AddressGroup on a FortiManager ADOM: observing the ADOM's group and our objects, and
//! applying a plan inside the workspace lock (lock → writes → commit → unlock). Consecutive
//! address creates go out as one bulk `add` (FortiManager takes a list as `data`), and
//! consecutive member edits of one group as one call, since the member sub-URL takes a list.

use super::fortigate::Family;
use super::observed;
use super::plan::{DesiredGroup, ObservedGroup, Op};
use crate::device::DeviceError;
use crate::device::fortimanager::FortiManagerClient;

/// Reads the ADOM group and the address objects whose names start with the prefix: two
/// reads; with Exclusive membership, one more per member outside the prefix (whose marker
/// decides whether it may be removed; converged, there is none).
pub async fn observe(
    client: &FortiManagerClient,
    family: Family,
    desired: &DesiredGroup,
) -> Result<ObservedGroup, DeviceError> {
    let (group, prefix) = (desired.group_name.as_str(), desired.prefix.as_str());
    let objects = client
        .objects_fields(
            family.address_table(),
            Some(prefix),
            &observed::ADDRESS_FIELDS,
        )
        .await?;
    let mut addresses = observed::addresses(&objects, prefix, family);
    let group = client
        .object(family.group_table(), group)
        .await?
        .map(|g| observed::group(&g));
    for name in super::fortigate::strangers(desired, group.as_ref(), &addresses) {
        if let Some(object) = client.object(family.address_table(), &name).await? {
            addresses.extend(observed::addresses(&[object], "", family));
        }
    }
    Ok(ObservedGroup { group, addresses })
}

/// One FortiManager write: a single op, or a run of member edits of one group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Write<'a> {
    /// Any op but a create or a member edit.
    One(&'a Op),
    /// Address objects created in one bulk `add`.
    AddAddresses(Vec<&'a Op>),
    /// Members added to `group` in one call.
    AddMembers {
        group: &'a str,
        members: Vec<String>,
    },
    /// Members removed from `group` in one call.
    RemoveMembers {
        group: &'a str,
        members: Vec<String>,
    },
}

/// Groups consecutive member edits of the same group and kind into one write (pure).
pub fn batch(ops: &[Op]) -> Vec<Write<'_>> {
    let mut out: Vec<Write<'_>> = Vec::new();
    for op in ops {
        match (op, out.last_mut()) {
            (Op::AddMember { group, member }, Some(Write::AddMembers { group: g, members }))
                if g == group =>
            {
                members.push(member.clone())
            }
            (
                Op::RemoveMember { group, member },
                Some(Write::RemoveMembers { group: g, members }),
            ) if g == group => members.push(member.clone()),
            (Op::CreateAddress { .. }, Some(Write::AddAddresses(creates))) => creates.push(op),
            (Op::CreateAddress { .. }, _) => out.push(Write::AddAddresses(vec![op])),
            (Op::AddMember { group, member }, _) => out.push(Write::AddMembers {
                group,
                members: vec![member.clone()],
            }),
            (Op::RemoveMember { group, member }, _) => out.push(Write::RemoveMembers {
                group,
                members: vec![member.clone()],
            }),
            (op, _) => out.push(Write::One(op)),
        }
    }
    out
}

/// Sends one batched write to the ADOM.
pub async fn apply(
    client: &FortiManagerClient,
    family: Family,
    write: &Write<'_>,
) -> Result<(), DeviceError> {
    let groups = family.group_table();
    let addresses = family.address_table();
    match write {
        Write::AddAddresses(creates) => {
            let objects: Vec<serde_json::Value> = creates
                .iter()
                .filter_map(|op| match op {
                    Op::CreateAddress {
                        name,
                        address,
                        comment,
                    } => Some(address.fortimanager_object(name, comment)),
                    _ => None,
                })
                .collect();
            client
                .add(addresses, serde_json::Value::Array(objects))
                .await
        }
        Write::AddMembers { group, members } => client.add_members(groups, group, members).await,
        Write::RemoveMembers { group, members } => {
            client.remove_members(groups, group, members).await
        }
        Write::One(op) => {
            match op {
                Op::CreateAddress {
                    name,
                    address,
                    comment,
                } => {
                    client
                        .add(addresses, address.fortimanager_object(name, comment))
                        .await
                }
                Op::UpdateAddress {
                    name,
                    address,
                    comment,
                } => {
                    client
                        .update(addresses, name, address.fortimanager_object(name, comment))
                        .await
                }
                Op::CreateGroup {
                    name,
                    members,
                    comment,
                } => client
                    .add(
                        groups,
                        serde_json::json!({"name": name, "member": members, "comment": comment}),
                    )
                    .await,
                Op::DeleteAddress { name } => client.delete(addresses, name).await,
                Op::DeleteGroup { name } => client.delete(groups, name).await,
                Op::ClaimGroup { name, comment } => {
                    client
                        .update(groups, name, serde_json::json!({"comment": comment}))
                        .await
                }
                Op::AddMember { group, member } => {
                    client
                        .add_members(groups, group, std::slice::from_ref(member))
                        .await
                }
                Op::RemoveMember { group, member } => {
                    client
                        .remove_members(groups, group, std::slice::from_ref(member))
                        .await
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::MemberAddress;

    fn add(g: &str, m: &str) -> Op {
        Op::AddMember {
            group: g.into(),
            member: m.into(),
        }
    }
    fn remove(g: &str, m: &str) -> Op {
        Op::RemoveMember {
            group: g.into(),
            member: m.into(),
        }
    }

    #[test]
    fn consecutive_member_edits_of_one_group_become_one_write() {
        let delete = Op::DeleteAddress {
            name: "fs_x".into(),
        };
        let ops = vec![
            add("g", "a"),
            add("g", "b"),
            add("h", "c"),
            remove("g", "d"),
            remove("g", "e"),
            delete.clone(),
        ];
        assert_eq!(
            batch(&ops),
            vec![
                Write::AddMembers {
                    group: "g",
                    members: vec!["a".into(), "b".into()]
                },
                Write::AddMembers {
                    group: "h",
                    members: vec!["c".into()]
                },
                Write::RemoveMembers {
                    group: "g",
                    members: vec!["d".into(), "e".into()]
                },
                Write::One(&delete),
            ]
        );
    }

    #[test]
    fn consecutive_creates_become_one_bulk_add() {
        let create = |ip: &str| Op::CreateAddress {
            name: format!("fs_{ip}"),
            address: MemberAddress::parse(ip).expect("ip"),
            comment: "c".into(),
        };
        let (a, b) = (create("192.0.2.1"), create("192.0.2.2"));
        let ops = vec![a.clone(), b.clone(), add("g", "fs_192.0.2.1")];
        let writes = batch(&ops);
        assert_eq!(writes.len(), 2);
        assert_eq!(writes[0], Write::AddAddresses(vec![&a, &b]));
    }

    #[test]
    fn order_between_kinds_is_kept() {
        let ops = vec![add("g", "a"), remove("g", "b"), add("g", "c")];
        assert_eq!(
            batch(&ops).len(),
            3,
            "an add after a remove is not merged back"
        );
    }
}
