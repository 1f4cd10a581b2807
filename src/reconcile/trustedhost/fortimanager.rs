//! A TrustedHost on a FortiManager admin user: `/cli/global/system/admin/user/{user}` read
//! whole, one slot written with `update` (`trusthostN` as `[ip, mask]`, `ipv6_trusthostN` as a
//! prefix; fortimanager-jsonrpc.md §4.5). Admin users are global: no ADOM workspace lock is
//! taken (the simulator agrees: its admin-user writes never look at the workspace).

use serde_json::{Map, Value, json};

use super::slots::{Flavor, Slot, UserSlots, parse_v4, parse_v6, v4_text, v6_text};
use crate::device::DeviceError;
use crate::device::fortimanager::{FortiManagerClient, escape_name};

/// What a FortiManager says of one admin user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FmgUser {
    /// Its ten slots.
    pub slots: UserSlots,
    /// `user_type api` (a REST API admin, reached with a key).
    pub api: bool,
    /// `profileid`.
    pub profile: String,
}

fn url(user: &str) -> String {
    format!("/cli/global/system/admin/user/{}", escape_name(user))
}

/// Reads `user`; a user that does not exist is `AdminUserNotFound` (F15).
pub async fn observe(client: &FortiManagerClient, user: &str) -> Result<FmgUser, DeviceError> {
    let answer = client.admin_user(user).await?;
    read_user(&answer).ok_or_else(|| DeviceError::UnexpectedResponse {
        ctx: crate::device::Context {
            device: client.device().to_string(),
            method: "get".into(),
            path: url(user),
        },
        status: 200,
        detail: "an admin user whose trusted hosts are not [ip, mask] lists and prefixes".into(),
    })
}

/// The slots of an admin user answer (pure); None when a slot does not parse, so nothing is
/// planned on a misread.
pub fn read_user(answer: &Value) -> Option<FmgUser> {
    let flavor = Flavor::FortiManager;
    let mut slots = std::collections::BTreeMap::new();
    for n in 1..=10u32 {
        // A field the device leaves out holds its default (§4.5).
        let v4 = match answer.get(format!("trusthost{n}")) {
            Some(v) => parse_v4(v, flavor)?,
            None if n == 1 => parse_v4(&json!(["0.0.0.0", "0.0.0.0"]), flavor)?,
            None => super::slots::Half::Unused,
        };
        let v6 = match answer.get(format!("ipv6_trusthost{n}")) {
            Some(v) => parse_v6(v, flavor)?,
            None if n == 1 => parse_v6(&json!("::/0"), flavor)?,
            None => super::slots::Half::Unused,
        };
        slots.insert(n, Slot { v4, v6 });
    }
    Some(FmgUser {
        slots: UserSlots { flavor, slots },
        api: answer["user_type"].as_str() == Some("api"),
        profile: answer["profileid"].as_str().unwrap_or_default().to_string(),
    })
}

/// The `update` data that sets slot `n` to `value` (both halves, so a half fortisync does not
/// grant is left unused).
pub fn write_data(n: u32, value: Slot) -> Value {
    let (ip, mask) = v4_text(value.v4, Flavor::FortiManager);
    json!({
        format!("trusthost{n}"): [ip, mask],
        format!("ipv6_trusthost{n}"): v6_text(value.v6, Flavor::FortiManager),
    })
}

/// Sets slot `n` of `user`.
pub async fn write(
    client: &FortiManagerClient,
    user: &str,
    n: u32,
    value: Slot,
) -> Result<(), DeviceError> {
    tracing::info!(device = %client.device(), %user, slot = n, v4 = %value.v4.text(), v6 = %value.v6.text(), "device write: trusted-host slot");
    let mut extra = Map::new();
    extra.insert("data".into(), write_data(n, value));
    client.call("update", &url(user), extra).await.map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reconcile::trustedhost::slots::Half;

    #[test]
    fn an_admin_answer_reads_as_ten_slots_with_the_devices_defaults() {
        let answer = json!({
            "userid": "alice", "user_type": "api", "profileid": "Super_User",
            "trusthost1": ["127.0.0.1", "255.255.255.255"],
            "trusthost10": ["192.0.2.10", "255.255.255.255"],
            "ipv6_trusthost1": "::1/128",
        });
        let u = read_user(&answer).expect("user");
        assert!(u.api);
        assert_eq!(u.profile, "Super_User");
        assert_eq!(
            u.slots.get(10).v4,
            Half::Net("192.0.2.10/32".parse().expect("net"))
        );
        assert_eq!(u.slots.get(5), Slot::UNUSED);
        assert!(u.slots.allow_all_except(10).is_empty());
        let bad = json!({"trusthost3": "nonsense"});
        assert_eq!(read_user(&bad), None);
    }

    #[test]
    fn a_close_writes_both_unused_values() {
        assert_eq!(
            write_data(10, Slot::UNUSED),
            json!({"trusthost10": ["255.255.255.255", "255.255.255.255"], "ipv6_trusthost10": super::super::slots::FMG_V6_UNUSED})
        );
    }
}
