//! Trusted hosts of the simulated FortiGate's users, as the device keeps and enforces them
//! (facts §1.1, §1.6, §3.5):
//! - a `system/admin` has ten positional slots, `trusthostN` (`ip mask`) and `ip6-trusthostN`
//!   (prefix); `0.0.0.0 0.0.0.0` / `::/0` mean "not set", and an admin with nothing set is open
//!   to every source; otherwise a source must fall in a set slot of its family (the reading
//!   that never lets more in: IPv6 sources are not waved through because only IPv4 is set);
//! - a `system/api-user` has a `trusthost` table whose entries keep the ids they were written
//!   with; an empty table lets loopback only (the simulator's reading: a REST API admin must
//!   have trusted hosts; enforced in `auth`), and allow-all entries are refused on write.

use std::net::IpAddr;

use ipnet::IpNet;
use serde_json::{Map, Value, json};

use super::scenario::{Admin, ApiUser, parse_trusthost};

fn unmapped(peer: IpAddr) -> IpAddr {
    match peer {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(peer, IpAddr::V4),
        v4 => v4,
    }
}

fn is_set(net: &IpNet) -> bool {
    net.prefix_len() != 0
}

/// Whether `peer` may sign in as admin `a`.
pub fn admin_trusts(a: &Admin, peer: IpAddr) -> bool {
    let mut set = a
        .trusthosts
        .iter()
        .chain(&a.ip6_trusthosts)
        .filter(|n| is_set(n))
        .peekable();
    if set.peek().is_none() {
        return true;
    }
    let peer = unmapped(peer);
    set.any(|n| n.contains(&peer))
}

/// Adds `trusthost1..10` and `ip6-trusthost1..10` to a rendered admin.
pub fn render_admin(a: &Admin, obj: &mut Map<String, Value>) {
    for i in 0..10 {
        let v4 = match a.trusthosts.get(i) {
            Some(IpNet::V4(n)) if is_set(&IpNet::V4(*n)) => format!("{} {}", n.addr(), n.netmask()),
            _ => "0.0.0.0 0.0.0.0".to_string(),
        };
        let v6 = match a.ip6_trusthosts.get(i) {
            Some(n @ IpNet::V6(_)) if is_set(n) => n.to_string(),
            _ => "::/0".to_string(),
        };
        obj.insert(format!("trusthost{}", i + 1), json!(v4));
        obj.insert(format!("ip6-trusthost{}", i + 1), json!(v6));
    }
}

/// Applies the `trusthostN` / `ip6-trusthostN` fields of a PUT body; the text the device
/// refuses (`-8`) when one does not parse or is of the wrong family.
pub fn apply_admin(a: &mut Admin, body: &Value) -> Result<(), String> {
    let unset4: IpNet = "0.0.0.0/0".parse().map_err(|_| "net".to_string())?;
    let unset6: IpNet = "::/0".parse().map_err(|_| "net".to_string())?;
    let mut v4: Vec<IpNet> = (0..10)
        .map(|i| a.trusthosts.get(i).copied().unwrap_or(unset4))
        .collect();
    let mut v6: Vec<IpNet> = (0..10)
        .map(|i| a.ip6_trusthosts.get(i).copied().unwrap_or(unset6))
        .collect();
    for i in 0..10 {
        if let Some(v) = body.get(format!("trusthost{}", i + 1)) {
            let text = v.as_str().unwrap_or_default();
            match parse_trusthost(text) {
                Ok(n @ IpNet::V4(_)) => v4[i] = n.trunc(),
                _ => return Err(format!("invalid IP address {text}")),
            }
        }
        if let Some(v) = body.get(format!("ip6-trusthost{}", i + 1)) {
            let text = v.as_str().unwrap_or_default();
            match text.parse::<IpNet>() {
                Ok(n @ IpNet::V6(_)) => v6[i] = n.trunc(),
                _ => return Err(format!("invalid IPv6 address {text}")),
            }
        }
    }
    a.trusthosts = v4;
    a.ip6_trusthosts = v6;
    Ok(())
}

/// The id of entry `i` of `u`'s table (written ids are kept; scenario ones count from 1).
fn entry_id(u: &ApiUser, i: usize) -> u64 {
    u.trusthost_ids
        .get(i)
        .map_or(i as u64 + 1, |id| u64::from(*id))
}

/// `u`'s `trusthost` table as a GET shows it.
pub fn render_api_user(u: &ApiUser) -> Vec<Value> {
    u.trusthosts
        .iter()
        .enumerate()
        .map(|(i, n)| {
            let id = entry_id(u, i);
            match n {
                IpNet::V4(v4) => json!({"id": id, "q_origin_key": id, "type": "ipv4-trusthost", "ipv4-trusthost": format!("{} {}", v4.addr(), v4.netmask()), "ipv6-trusthost": "::/0"}),
                IpNet::V6(v6) => json!({"id": id, "q_origin_key": id, "type": "ipv6-trusthost", "ipv4-trusthost": "0.0.0.0 0.0.0.0", "ipv6-trusthost": v6.to_string()}),
            }
        })
        .collect()
}

/// Why a `trusthost` table write is refused: the FortiOS code and CLI text.
pub type Refused = (i64, String);

/// Replaces `u`'s table with `items`: each entry's `type` says which field holds it (ipv4 when
/// absent), its `id` is kept (position + 1 when absent), allow-all is refused (DOCAPIADM).
pub fn apply_api_user(u: &mut ApiUser, items: &[Value]) -> Result<(), Refused> {
    let mut nets = Vec::new();
    let mut ids = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let v6 = item["type"].as_str() == Some("ipv6-trusthost");
        let field = if v6 {
            "ipv6-trusthost"
        } else {
            "ipv4-trusthost"
        };
        let text = item[field].as_str().unwrap_or_default();
        let net = match parse_trusthost(text) {
            Ok(n) if matches!(n, IpNet::V6(_)) == v6 => n,
            _ => return Err((-8, format!("invalid IP address {text}"))),
        };
        if net.prefix_len() == 0 {
            return Err((
                -651,
                "trusthost: allow-all is not allowed for REST API admins".into(),
            ));
        }
        let id = item["id"]
            .as_u64()
            .and_then(|id| u32::try_from(id).ok())
            .unwrap_or(i as u32 + 1);
        if ids.contains(&id) {
            return Err((-5, format!("trusthost: duplicate entry id {id}")));
        }
        nets.push(net.trunc());
        ids.push(id);
    }
    u.trusthosts = nets;
    u.trusthost_ids = ids;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn admin(v4: &[&str], v6: &[&str]) -> Admin {
        Admin {
            name: "ops".into(),
            password: "pw".into(),
            accprofile: "super_admin".into(),
            vdoms: Vec::new(),
            trusthosts: v4.iter().map(|t| t.parse().expect("net")).collect(),
            ip6_trusthosts: v6.iter().map(|t| t.parse().expect("net")).collect(),
        }
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().expect("ip")
    }

    #[test]
    fn an_admin_with_nothing_set_is_open_and_one_set_slot_restricts_every_family() {
        assert!(admin_trusts(&admin(&[], &[]), ip("198.51.100.1")));
        let one = admin(&["0.0.0.0/0", "127.0.0.5/32"], &[]);
        assert!(admin_trusts(&one, ip("127.0.0.5")));
        assert!(!admin_trusts(&one, ip("127.0.0.6")));
        assert!(!admin_trusts(&one, ip("::1")));
    }

    #[test]
    fn admin_slots_keep_their_positions_through_a_put() {
        let mut a = admin(&[], &[]);
        apply_admin(
            &mut a,
            &json!({"trusthost10": "127.0.0.5 255.255.255.255", "ip6-trusthost3": "2001:db8::/64"}),
        )
        .expect("put");
        let mut obj = Map::new();
        render_admin(&a, &mut obj);
        assert_eq!(obj["trusthost10"], json!("127.0.0.5 255.255.255.255"));
        assert_eq!(obj["trusthost1"], json!("0.0.0.0 0.0.0.0"));
        assert_eq!(obj["ip6-trusthost3"], json!("2001:db8::/64"));
        apply_admin(&mut a, &json!({"trusthost10": "0.0.0.0 0.0.0.0"})).expect("put");
        assert!(
            !admin_trusts(&a, ip("198.51.100.1")),
            "slot 3's IPv6 restriction still holds"
        );
        assert_eq!(
            apply_admin(&mut a, &json!({"trusthost2": "2001:db8::1"})),
            Err("invalid IP address 2001:db8::1".into())
        );
    }

    #[test]
    fn api_user_entries_keep_their_ids_and_allow_all_is_refused() {
        let mut u = ApiUser {
            name: "ci".into(),
            key: None,
            accprofile: "super_admin".into(),
            vdoms: Vec::new(),
            trusthosts: Vec::new(),
            trusthost_ids: Vec::new(),
        };
        assert!(super::super::auth::trusted(
            &u.trusthosts,
            ip("127.0.0.9"),
            false
        ));
        assert!(!super::super::auth::trusted(
            &u.trusthosts,
            ip("192.0.2.1"),
            false
        ));
        let items = [
            json!({"id": 10, "type": "ipv4-trusthost", "ipv4-trusthost": "127.0.0.5 255.255.255.255"}),
            json!({"id": 4, "type": "ipv6-trusthost", "ipv6-trusthost": "2001:db8::/64", "ipv4-trusthost": "0.0.0.0 0.0.0.0"}),
        ];
        apply_api_user(&mut u, &items).expect("put");
        let shown = render_api_user(&u);
        assert_eq!(shown[0]["id"], json!(10));
        assert_eq!(shown[1]["id"], json!(4));
        assert!(super::super::auth::trusted(
            &u.trusthosts,
            ip("127.0.0.5"),
            false
        ));
        assert!(!super::super::auth::trusted(
            &u.trusthosts,
            ip("127.0.0.1"),
            false
        ));
        let any = [json!({"id": 1, "ipv4-trusthost": "0.0.0.0 0.0.0.0"})];
        assert_eq!(apply_api_user(&mut u, &any).map_err(|e| e.0), Err(-651));
    }
}
