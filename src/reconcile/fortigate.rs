//! AddressGroup on a FortiGate: observing the group and our objects through the FortiOS
//! client, and applying planned writes. IPv4 members live in `firewall/addrgrp`, IPv6 members
//! in `firewall/addrgrp6` of the same name.

use serde_json::json;

use super::observed;
use super::plan::{ObservedGroup, Op};
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

/// Reads the group and the address objects whose names start with `prefix`: two reads.
pub async fn observe(
    client: &FortiOsClient,
    family: Family,
    group: &str,
    prefix: &str,
) -> Result<ObservedGroup, DeviceError> {
    let objects = client
        .list_fields(
            family.address_table(),
            Some(prefix),
            &observed::ADDRESS_FIELDS,
        )
        .await?;
    let addresses = observed::addresses(&objects, prefix, family);
    let group = client
        .get(family.group_table(), group)
        .await?
        .map(|g| observed::group(&g));
    Ok(ObservedGroup { group, addresses })
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
    }
}
