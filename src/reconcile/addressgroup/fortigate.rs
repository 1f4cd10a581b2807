//! AddressGroup on a FortiGate: observing the group and our objects through the FortiOS
//! client, and applying planned writes. IPv4 members live in `firewall/addrgrp`, IPv6 members
//! in `firewall/addrgrp6` of the same name.

use serde_json::json;

use std::collections::BTreeSet;

use super::observed;
use super::plan::{
    DesiredGroup, ObservedAddress, ObservedGroup, ObservedGroupObject, Op, PLACEHOLDER,
};
use crate::api::addressgroup::Membership;
use crate::device::DeviceError;
use crate::device::fortios::FortiOsClient;

/// The address and group tables of one family.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Family {
    /// IPv6?
    pub v6: bool,
}

impl Family {
    /// IPv4.
    pub const V4: Family = Family { v6: false };
    /// IPv6.
    pub const V6: Family = Family { v6: true };

    /// `firewall/address` or `firewall/address6`.
    pub fn address_table(self) -> &'static str {
        if self.v6 {
            "firewall/address6"
        } else {
            "firewall/address"
        }
    }

    /// `firewall/addrgrp` or `firewall/addrgrp6`.
    pub fn group_table(self) -> &'static str {
        if self.v6 {
            "firewall/addrgrp6"
        } else {
            "firewall/addrgrp"
        }
    }
}

/// Wanted names looked up one by one (OR-ed in one filter) at most; past this, one listing
/// of the prefix is cheaper (a group being created has nothing there yet).
const NAME_LOOKUPS: usize = 40;

/// Reads what `desired` owns or references: our objects (by the ownership marker in their
/// comment), the group, and, only for wanted names that are not ours yet, whoever holds them
/// (a foreign holder is a conflict). Converged, that is two reads, however many other groups
/// and objects the device holds.
pub async fn observe(
    client: &FortiOsClient,
    family: Family,
    desired: &DesiredGroup,
) -> Result<ObservedGroup, DeviceError> {
    let table = family.address_table();
    let fields = &observed::ADDRESS_FIELDS;
    let by_marker = format!("comment=@{}", desired.owner.marker());
    let ours = client.list_where(table, Some(&by_marker), fields).await?;
    // `=@` is "contains": `ns/web` also matches `ns/web-2`, so ownership is checked exactly.
    let mut addresses: Vec<_> = observed::addresses(&ours, &desired.prefix, family)
        .into_iter()
        .filter(|a| desired.owner.owns(&a.comment))
        .collect();
    let known: BTreeSet<String> = addresses.iter().map(|a| a.name.clone()).collect();
    let missing: BTreeSet<String> = desired
        .members
        .iter()
        .map(|m| m.address.object_name(&desired.prefix))
        .filter(|n| !known.contains(n))
        .collect();
    let holders = if missing.is_empty() {
        Vec::new()
    } else if missing.len() > NAME_LOOKUPS {
        client
            .list_fields(table, Some(&desired.prefix), fields)
            .await?
    } else {
        let by_name: Vec<String> = missing.iter().map(|n| format!("name=={n}")).collect();
        client
            .list_where(table, Some(&by_name.join(",")), fields)
            .await?
    };
    addresses.extend(
        observed::addresses(&holders, &desired.prefix, family)
            .into_iter()
            .filter(|a| missing.contains(&a.name)),
    );
    let group = client
        .get(family.group_table(), &desired.group_name)
        .await?
        .map(|g| observed::group(&g));
    // Exclusive removes members that are not ours; one whose object carries another
    // resource's marker must stay, so their comments are read. Converged, the group holds
    // none of them and this costs nothing.
    read_strangers(client, family, desired, group.as_ref(), &mut addresses).await?;
    Ok(ObservedGroup { group, addresses })
}

/// Adds to `addresses` the objects of the members an Exclusive plan would remove that were
/// not read yet (see `strangers`).
pub(super) async fn read_strangers(
    client: &FortiOsClient,
    family: Family,
    desired: &DesiredGroup,
    group: Option<&ObservedGroupObject>,
    addresses: &mut Vec<ObservedAddress>,
) -> Result<(), DeviceError> {
    let table = family.address_table();
    let strangers = strangers(desired, group, addresses);
    for chunk in strangers.chunks(NAME_LOOKUPS) {
        let by_name: Vec<String> = chunk.iter().map(|n| format!("name=={n}")).collect();
        let found = client
            .list_where(table, Some(&by_name.join(",")), &observed::ADDRESS_FIELDS)
            .await?;
        addresses.extend(
            observed::addresses(&found, "", family)
                .into_iter()
                .filter(|a| chunk.contains(&a.name)),
        );
    }
    Ok(())
}

/// Members of `group` an Exclusive plan would remove whose objects were not read yet.
pub(super) fn strangers(
    desired: &DesiredGroup,
    group: Option<&ObservedGroupObject>,
    read: &[ObservedAddress],
) -> Vec<String> {
    let Some(group) = group else {
        return Vec::new();
    };
    if desired.membership != Membership::Exclusive {
        return Vec::new();
    }
    group
        .members
        .iter()
        .filter(|m| m.as_str() != PLACEHOLDER && read.iter().all(|a| &a.name != *m))
        .cloned()
        .collect()
}

/// Applies one planned write: one device request (plus a re-read if its answer is lost).
pub async fn apply(client: &FortiOsClient, family: Family, op: &Op) -> Result<(), DeviceError> {
    match op {
        Op::CreateAddress {
            name,
            address,
            comment,
        } => {
            client
                .create(
                    family.address_table(),
                    &address.fortios_object(name, comment),
                )
                .await
        }
        Op::UpdateAddress {
            name,
            address,
            comment,
        } => {
            client
                .update(
                    family.address_table(),
                    name,
                    &address.fortios_object(name, comment),
                )
                .await
        }
        Op::CreateGroup {
            name,
            members,
            comment,
        } => {
            let members: Vec<_> = members.iter().map(|m| json!({"name": m})).collect();
            client
                .create(
                    family.group_table(),
                    &json!({"name": name, "member": members, "comment": comment}),
                )
                .await
        }
        Op::AddMember { group, member } => {
            client.add_member(family.group_table(), group, member).await
        }
        Op::RemoveMember { group, member } => {
            client
                .remove_member(family.group_table(), group, member)
                .await
        }
        Op::DeleteAddress { name } => client.delete(family.address_table(), name).await,
        Op::DeleteGroup { name } => client.delete(family.group_table(), name).await,
        Op::ClaimGroup { name, comment } => {
            client
                .update(family.group_table(), name, &json!({"comment": comment}))
                .await
        }
    }
}
