//! One user's trusted-host slots as the device means them (pure): what "unused" and
//! "allow-all" are on each device, which sources a set of slots lets in, and the value that
//! closes a slot without ever letting more sources in.
//!
//! The three tables (facts: fortimanager-jsonrpc.md §4.5, fortios-rest.md §1.6, §3.5):
//! - FortiManager admin: ten slots, each an IPv4 `[ip, mask]` and an IPv6 prefix; unused is
//!   `255.255.255.255/255.255.255.255` and `ffff:…:ffff/128`, `0.0.0.0/0` and `::/0` allow
//!   everyone (slot 1's defaults). A source is let in when a slot holds it.
//! - FortiGate `system/admin`: `trusthost1..10`, `ip6-trusthost1..10`; the default
//!   `0.0.0.0 0.0.0.0` / `::/0` means "not set", and an admin with nothing set at all is open to
//!   every source. So on a FortiGate, closing the last restricting slot would open the admin
//!   to everyone: that close writes `127.0.0.1/32` instead (loopback only, which lets no remote
//!   source in).
//! - FortiGate `system/api-user`: a `trusthost` table; fortisync's slot N is entry id N, and an
//!   absent entry is unused. What an empty table means is UNCONFIRMED (the admin guide only says
//!   allow-all is refused), so it is read as "may let everyone in": the last entry is never
//!   removed, a close leaves `127.0.0.1/32` in it, and an empty table does not count as letting
//!   the controller in (it might not).

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::{IpNet, Ipv4Net, Ipv6Net};

/// Which device table the slots come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flavor {
    /// FortiManager `/cli/global/system/admin/user/{user}`.
    FortiManager,
    /// FortiGate `system/admin`.
    FortiGateAdmin,
    /// FortiGate `system/api-user` (`trusthost` table, entry id = slot).
    FortiGateApiUser,
}

/// What one half (IPv4 or IPv6) of a slot holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Half {
    /// The device's unused (not set) value.
    Unused,
    /// A network; prefix length 0 lets every source in.
    Net(IpNet),
}

impl Half {
    /// Whether this half lets every source of its family in.
    pub fn is_allow_all(&self) -> bool {
        matches!(self, Self::Net(n) if n.prefix_len() == 0)
    }

    fn contains(&self, ip: IpAddr) -> bool {
        matches!(self, Self::Net(n) if n.contains(&ip))
    }

    /// Canonical text (`unused`, `a.b.c.d/len`).
    pub fn text(&self) -> String {
        match self {
            Self::Unused => "unused".into(),
            Self::Net(n) => n.to_string(),
        }
    }
}

/// One slot: an IPv4 half and an IPv6 half. An api-user entry holds one family only; the
/// other half is `Unused`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Slot {
    /// IPv4 half.
    pub v4: Half,
    /// IPv6 half.
    pub v6: Half,
}

impl Slot {
    /// Both halves unused.
    pub const UNUSED: Self = Self {
        v4: Half::Unused,
        v6: Half::Unused,
    };

    /// Whether both halves are unused.
    pub fn is_unused(&self) -> bool {
        *self == Self::UNUSED
    }

    fn halves(&self) -> [Half; 2] {
        [self.v4, self.v6]
    }
}

/// The loopback-only value a close leaves where "unused" would open the user to everyone.
pub fn loopback_only() -> Slot {
    Slot {
        v4: Half::Net(IpNet::V4(Ipv4Net::from(Ipv4Addr::LOCALHOST))),
        v6: Half::Unused,
    }
}

/// Every slot of one user, as read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserSlots {
    /// The table.
    pub flavor: Flavor,
    /// Slot number → value; slots 1–10 (FortiManager, FortiGate admin) or every api-user
    /// entry id (other ids than 1–10 are someone else's entries, kept as they are).
    pub slots: BTreeMap<u32, Slot>,
}

impl UserSlots {
    /// The value of `slot` (absent = unused).
    pub fn get(&self, slot: u32) -> Slot {
        self.slots.get(&slot).copied().unwrap_or(Slot::UNUSED)
    }

    /// These slots with `slot` set to `value`.
    pub fn with(&self, slot: u32, value: Slot) -> Self {
        let mut out = self.clone();
        if value.is_unused() && self.flavor == Flavor::FortiGateApiUser {
            out.slots.remove(&slot);
        } else {
            out.slots.insert(slot, value);
        }
        out
    }

    /// Other slots than `slot` that let every source in, in order.
    pub fn allow_all_except(&self, slot: u32) -> Vec<u32> {
        self.slots
            .iter()
            .filter(|(n, s)| **n != slot && s.halves().iter().any(Half::is_allow_all))
            .map(|(n, _)| *n)
            .collect()
    }

    /// Whether nothing restricts the user (FortiGate: every slot unset; api-user: no entry).
    pub fn nothing_set(&self) -> bool {
        self.slots.values().all(Slot::is_unused)
    }

    /// Whether the device lets `source` in for this user. Where the device's reading is not
    /// known (an empty api-user table) the answer is false: a caller checking "would the
    /// controller still get in" must not be told yes on a guess.
    pub fn trusts(&self, source: IpAddr) -> bool {
        let source = match source {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(source, IpAddr::V4),
            v4 => v4,
        };
        if self.nothing_set() {
            return self.flavor == Flavor::FortiGateAdmin;
        }
        self.slots
            .values()
            .any(|s| s.halves().iter().any(|h| h.contains(source)))
    }

    /// Whether the device may let `source` in for this user: `trusts`, or an api-user with an
    /// empty table (UNCONFIRMED: it may let everyone in). The question "may this user be the
    /// controller's own?" is answered with this one, so a guess never leads to a lockout.
    pub fn may_trust(&self, source: IpAddr) -> bool {
        self.trusts(source) || (self.flavor == Flavor::FortiGateApiUser && self.nothing_set())
    }

    /// The value that closes `slot`: the device's unused value, unless that would leave the
    /// user with nothing set (FortiGate: open to everyone, or UNCONFIRMED for api users), in
    /// which case loopback only.
    pub fn closing_value(&self, slot: u32) -> Slot {
        if self.flavor == Flavor::FortiManager {
            return Slot::UNUSED;
        }
        if self.with(slot, Slot::UNUSED).nothing_set() {
            loopback_only()
        } else {
            Slot::UNUSED
        }
    }
}

/// FortiManager's unused IPv6 value.
pub const FMG_V6_UNUSED: &str = "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff/128";

/// Parses an IPv4 trusted host in any device form: `[ip, mask]`, `"ip mask"`, `"ip/len"`.
/// `unused` says which value means not set on this device.
pub fn parse_v4(value: &serde_json::Value, flavor: Flavor) -> Option<Half> {
    let (ip, mask): (Ipv4Addr, Ipv4Addr) = match value {
        serde_json::Value::Array(a) if a.len() == 2 => {
            (a[0].as_str()?.parse().ok()?, a[1].as_str()?.parse().ok()?)
        }
        serde_json::Value::String(s) => match s.trim().split_once(' ') {
            Some((ip, mask)) => (ip.parse().ok()?, mask.trim().parse().ok()?),
            None => {
                let net: Ipv4Net = s.trim().parse().ok()?;
                (net.addr(), net.netmask())
            }
        },
        _ => return None,
    };
    let unused = match flavor {
        Flavor::FortiManager => ip == Ipv4Addr::BROADCAST && mask == Ipv4Addr::BROADCAST,
        _ => ip.is_unspecified() && mask.is_unspecified(),
    };
    if unused {
        return Some(Half::Unused);
    }
    let len = u32::from(mask).leading_ones() as u8;
    // A mask that is not contiguous cannot be read as a network: refuse to guess.
    if u32::from(mask).count_ones() != u32::from(len) {
        return None;
    }
    Ipv4Net::new(ip, len)
        .ok()
        .map(|n| Half::Net(IpNet::V4(n.trunc())))
}

/// Parses an IPv6 trusted host (`prefix/len`, or a bare address).
pub fn parse_v6(value: &serde_json::Value, flavor: Flavor) -> Option<Half> {
    let text = value.as_str()?.trim();
    let net: Ipv6Net = text
        .parse()
        .ok()
        .or_else(|| text.parse::<Ipv6Addr>().ok().map(Ipv6Net::from))?;
    let unused = match flavor {
        Flavor::FortiManager => net.addr() == Ipv6Addr::from(u128::MAX) && net.prefix_len() == 128,
        Flavor::FortiGateAdmin => net.prefix_len() == 0 && net.addr().is_unspecified(),
        Flavor::FortiGateApiUser => false,
    };
    Some(if unused {
        Half::Unused
    } else {
        Half::Net(IpNet::V6(net.trunc()))
    })
}

/// The IPv4 half in FortiOS text form (`ip mask`), the device's unused value for `Unused`.
pub fn v4_text(half: Half, flavor: Flavor) -> (String, String) {
    match half {
        Half::Net(IpNet::V4(n)) => (n.addr().to_string(), n.netmask().to_string()),
        _ if flavor == Flavor::FortiManager => ("255.255.255.255".into(), "255.255.255.255".into()),
        _ => ("0.0.0.0".into(), "0.0.0.0".into()),
    }
}

/// The IPv6 half as the device writes it, the device's unused value for `Unused`.
pub fn v6_text(half: Half, flavor: Flavor) -> String {
    match half {
        Half::Net(IpNet::V6(n)) => n.to_string(),
        _ if flavor == Flavor::FortiManager => FMG_V6_UNUSED.into(),
        _ => "::/0".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn net(text: &str) -> Half {
        Half::Net(text.parse().expect("net"))
    }

    fn slots(flavor: Flavor, values: &[(u32, Half, Half)]) -> UserSlots {
        UserSlots {
            flavor,
            slots: values
                .iter()
                .map(|(n, v4, v6)| (*n, Slot { v4: *v4, v6: *v6 }))
                .collect(),
        }
    }

    #[test]
    fn each_device_form_parses_and_unused_is_the_devices_own_value() {
        let fmg = Flavor::FortiManager;
        assert_eq!(
            parse_v4(&json!(["255.255.255.255", "255.255.255.255"]), fmg),
            Some(Half::Unused)
        );
        assert_eq!(
            parse_v4(&json!(["0.0.0.0", "0.0.0.0"]), fmg),
            Some(net("0.0.0.0/0"))
        );
        assert_eq!(
            parse_v4(&json!("10.1.0.0 255.255.0.0"), fmg),
            Some(net("10.1.0.0/16"))
        );
        assert_eq!(
            parse_v4(&json!("0.0.0.0 0.0.0.0"), Flavor::FortiGateAdmin),
            Some(Half::Unused)
        );
        assert_eq!(
            parse_v4(&json!("10.0.0.0 255.0.255.0"), fmg),
            None,
            "a mask with holes"
        );
        assert_eq!(parse_v6(&json!(FMG_V6_UNUSED), fmg), Some(Half::Unused));
        assert_eq!(parse_v6(&json!("::/0"), fmg), Some(net("::/0")));
        assert_eq!(
            parse_v6(&json!("::/0"), Flavor::FortiGateAdmin),
            Some(Half::Unused)
        );
    }

    #[test]
    fn a_fortimanager_close_is_unused_and_lets_nobody_in() {
        let s = slots(
            Flavor::FortiManager,
            &[(10, net("192.0.2.10/32"), Half::Unused)],
        );
        assert_eq!(s.closing_value(10), Slot::UNUSED);
        assert!(s.trusts("192.0.2.10".parse().expect("ip")));
        assert!(
            !s.with(10, Slot::UNUSED)
                .trusts("192.0.2.10".parse().expect("ip"))
        );
    }

    #[test]
    fn closing_a_fortigate_admins_last_restriction_leaves_loopback_only_not_allow_all() {
        let s = slots(
            Flavor::FortiGateAdmin,
            &[(10, net("192.0.2.10/32"), Half::Unused)],
        );
        assert_eq!(s.closing_value(10), loopback_only());
        let closed = s.with(10, s.closing_value(10));
        assert!(!closed.trusts("192.0.2.99".parse().expect("ip")));
        let two = slots(
            Flavor::FortiGateAdmin,
            &[
                (2, net("10.0.0.0/8"), Half::Unused),
                (10, net("192.0.2.10/32"), Half::Unused),
            ],
        );
        assert_eq!(two.closing_value(10), Slot::UNUSED);
    }

    #[test]
    fn an_empty_api_user_table_is_never_taken_to_let_the_controller_in() {
        let empty = slots(Flavor::FortiGateApiUser, &[]);
        assert!(!empty.trusts("127.0.0.1".parse().expect("ip")));
        let one = slots(
            Flavor::FortiGateApiUser,
            &[(10, net("127.0.0.5/32"), Half::Unused)],
        );
        assert_eq!(one.closing_value(10), loopback_only());
        assert!(slots(Flavor::FortiGateAdmin, &[]).trusts("198.51.100.1".parse().expect("ip")));
    }

    #[test]
    fn allow_all_slots_are_named_except_the_one_asked_about() {
        let s = slots(
            Flavor::FortiManager,
            &[
                (1, net("0.0.0.0/0"), net("::/0")),
                (2, net("127.0.0.1/32"), Half::Unused),
                (3, Half::Unused, net("::/0")),
                (10, net("0.0.0.0/0"), Half::Unused),
            ],
        );
        assert_eq!(s.allow_all_except(10), vec![1, 3]);
    }
}
