//! A TrustedHost on a FortiGate: a `system/admin` administrator (`trusthostN` as `ip mask`,
//! `ip6-trusthostN` as a prefix; fortios-rest.md §3.5) or a `system/api-user` REST API user,
//! whose `trusthost` table fortisync addresses by entry id: slot N is entry id N (§1.6). Both
//! tables are global objects; other entries of an api-user table are written back as read.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::slots::{Flavor, Half, Slot, UserSlots, parse_v4, parse_v6, v4_text, v6_text};
use crate::device::DeviceError;
use crate::device::fortios::FortiOsClient;

/// The administrators' table.
pub const ADMIN_TABLE: &str = "system/admin";
/// The REST API users' table.
pub const API_USER_TABLE: &str = "system/api-user";

/// A FortiGate user as read: its slots, and for an API user the table's other entries.
#[derive(Debug, Clone, PartialEq)]
pub struct FgUser {
    /// The slots (api-user: every entry id).
    pub slots: UserSlots,
}

/// The table a user of `flavor` lives in.
pub fn table(flavor: Flavor) -> &'static str {
    match flavor {
        Flavor::FortiGateApiUser => API_USER_TABLE,
        _ => ADMIN_TABLE,
    }
}

/// Reads `user`; None when it does not exist.
pub async fn observe(
    client: &FortiOsClient,
    flavor: Flavor,
    user: &str,
) -> Result<Option<FgUser>, DeviceError> {
    let Some(object) = client.get(table(flavor), user).await? else {
        return Ok(None);
    };
    read_user(&object, flavor)
        .map(|slots| Some(FgUser { slots }))
        .ok_or_else(|| DeviceError::UnexpectedResponse {
            ctx: crate::device::Context {
                device: client.device().to_string(),
                method: "GET".into(),
                path: format!("/api/v2/cmdb/{}/{user}", table(flavor)),
            },
            status: 200,
            detail: "a user whose trusted hosts do not parse".into(),
        })
}

/// The slots of a `system/admin` or `system/api-user` object (pure); None on a misread.
pub fn read_user(object: &Value, flavor: Flavor) -> Option<UserSlots> {
    let mut slots = BTreeMap::new();
    if flavor == Flavor::FortiGateApiUser {
        for entry in object["trusthost"].as_array().into_iter().flatten() {
            let id = u32::try_from(entry["id"].as_u64()?).ok()?;
            let slot = if entry["type"].as_str() == Some("ipv6-trusthost") {
                Slot {
                    v4: Half::Unused,
                    v6: parse_v6(&entry["ipv6-trusthost"], flavor)?,
                }
            } else {
                // An ipv4 entry of `0.0.0.0 0.0.0.0` is allow-all here, not "unset".
                let v4 = match parse_v4(&entry["ipv4-trusthost"], Flavor::FortiManager)? {
                    Half::Unused => Half::Net("255.255.255.255/32".parse().ok()?),
                    h => h,
                };
                Slot {
                    v4,
                    v6: Half::Unused,
                }
            };
            slots.insert(id, slot);
        }
    } else {
        for n in 1..=10u32 {
            let v4 = match object.get(format!("trusthost{n}")) {
                Some(v) => parse_v4(v, flavor)?,
                None => Half::Unused,
            };
            let v6 = match object.get(format!("ip6-trusthost{n}")) {
                Some(v) => parse_v6(v, flavor)?,
                None => Half::Unused,
            };
            slots.insert(n, Slot { v4, v6 });
        }
    }
    Some(UserSlots { flavor, slots })
}

/// The PUT body that makes `slots` hold `value` in slot `n`.
pub fn write_body(slots: &UserSlots, n: u32, value: Slot) -> Value {
    let flavor = slots.flavor;
    if flavor != Flavor::FortiGateApiUser {
        let (ip, mask) = v4_text(value.v4, flavor);
        return json!({
            format!("trusthost{n}"): format!("{ip} {mask}"),
            format!("ip6-trusthost{n}"): v6_text(value.v6, flavor),
        });
    }
    let entries: Vec<Value> = slots
        .with(n, value)
        .slots
        .iter()
        .map(|(id, s)| match (s.v4, s.v6) {
            (_, Half::Net(v6)) => json!({"id": id, "type": "ipv6-trusthost", "ipv6-trusthost": v6.to_string()}),
            (Half::Net(ipnet::IpNet::V4(v4)), _) => json!({"id": id, "type": "ipv4-trusthost", "ipv4-trusthost": format!("{} {}", v4.addr(), v4.netmask())}),
            _ => json!({"id": id}),
        })
        .collect();
    json!({ "trusthost": entries })
}

/// Sets slot `n` of `user` (read as `slots`).
pub async fn write(
    client: &FortiOsClient,
    user: &str,
    slots: &UserSlots,
    n: u32,
    value: Slot,
) -> Result<(), DeviceError> {
    tracing::info!(device = %client.device(), %user, slot = n, v4 = %value.v4.text(), v6 = %value.v6.text(), "device write: trusted-host slot");
    client
        .update(table(slots.flavor), user, &write_body(slots, n, value))
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net(text: &str) -> Half {
        Half::Net(text.parse().expect("net"))
    }

    #[test]
    fn an_admin_object_reads_unset_slots_as_unused() {
        let object = json!({"name": "ops", "trusthost1": "10.0.0.0 255.0.0.0", "trusthost2": "0.0.0.0 0.0.0.0", "ip6-trusthost1": "::/0", "ip6-trusthost2": "2001:db8::/64"});
        let s = read_user(&object, Flavor::FortiGateAdmin).expect("slots");
        assert_eq!(
            s.get(1),
            Slot {
                v4: net("10.0.0.0/8"),
                v6: Half::Unused
            }
        );
        assert_eq!(
            s.get(2),
            Slot {
                v4: Half::Unused,
                v6: net("2001:db8::/64")
            }
        );
        assert_eq!(
            write_body(
                &s,
                10,
                Slot {
                    v4: net("192.0.2.10/32"),
                    v6: Half::Unused
                }
            ),
            json!({"trusthost10": "192.0.2.10 255.255.255.255", "ip6-trusthost10": "::/0"})
        );
    }

    #[test]
    fn an_api_user_keeps_other_entries_and_slot_n_is_entry_id_n() {
        let object = json!({"name": "ci", "trusthost": [
            {"id": 1, "type": "ipv4-trusthost", "ipv4-trusthost": "127.0.0.1 255.255.255.255", "ipv6-trusthost": "::/0"},
            {"id": 7, "type": "ipv6-trusthost", "ipv4-trusthost": "0.0.0.0 0.0.0.0", "ipv6-trusthost": "2001:db8::/64"},
        ]});
        let s = read_user(&object, Flavor::FortiGateApiUser).expect("slots");
        assert_eq!(s.get(7).v6, net("2001:db8::/64"));
        assert!(
            s.allow_all_except(10).is_empty(),
            "the ipv6 field of an ipv4 entry is not read"
        );
        let body = write_body(
            &s,
            10,
            Slot {
                v4: net("192.0.2.10/32"),
                v6: Half::Unused,
            },
        );
        let ids: Vec<u64> = body["trusthost"]
            .as_array()
            .expect("list")
            .iter()
            .map(|e| e["id"].as_u64().expect("id"))
            .collect();
        assert_eq!(ids, [1, 7, 10]);
        let closed = write_body(
            &s.with(
                10,
                Slot {
                    v4: net("192.0.2.10/32"),
                    v6: Half::Unused,
                },
            ),
            10,
            Slot::UNUSED,
        );
        assert_eq!(
            closed["trusthost"].as_array().expect("list").len(),
            2,
            "a closed slot is an absent entry"
        );
    }
}
