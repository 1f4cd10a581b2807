//! Member addresses and the device objects that hold them: parsing and canonical forms, object
//! names (`<prefix><address>`), FortiOS / FortiManager object bodies.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::{Ipv4Net, Ipv6Net};
use serde::Serialize;
use serde_json::{Value, json};

use super::ownership::{NAME_LIMIT, hex8};

/// One member address, as admission validated it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub enum MemberAddress {
    /// IPv4 host (/32) or network.
    V4Net(Ipv4Net),
    /// IPv4 range, start ≤ end.
    V4Range(Ipv4Addr, Ipv4Addr),
    /// IPv6 host (/128) or network.
    V6Net(Ipv6Net),
    /// IPv6 range, start ≤ end.
    V6Range(Ipv6Addr, Ipv6Addr),
}

impl MemberAddress {
    /// Parses `192.0.2.1`, `10.0.0.0/24` (no host bits), `192.0.2.1-192.0.2.9` and IPv6 forms.
    pub fn parse(text: &str) -> Result<Self, String> {
        let text = text.trim();
        if let Ok(ip) = text.parse::<IpAddr>() {
            return Ok(match ip {
                IpAddr::V4(v4) => Self::V4Net(Ipv4Net::from(v4)),
                IpAddr::V6(v6) => Self::V6Net(Ipv6Net::from(v6)),
            });
        }
        if let Some((start, end)) = text.split_once('-') {
            return match (start.trim().parse::<IpAddr>(), end.trim().parse::<IpAddr>()) {
                (Ok(IpAddr::V4(a)), Ok(IpAddr::V4(b))) if a <= b => Ok(Self::V4Range(a, b)),
                (Ok(IpAddr::V6(a)), Ok(IpAddr::V6(b))) if a <= b => Ok(Self::V6Range(a, b)),
                (Ok(a), Ok(b)) if a.is_ipv4() == b.is_ipv4() => {
                    Err(format!("{text:?}: the range ends before it starts"))
                }
                _ => Err(format!(
                    "{text:?}: a range needs two addresses of one family"
                )),
            };
        }
        match text.parse::<ipnet::IpNet>() {
            Ok(net) if net.trunc() != net => Err(format!(
                "{text:?}: host bits are set; the network is {}",
                net.trunc()
            )),
            Ok(ipnet::IpNet::V4(n)) => Ok(Self::V4Net(n)),
            Ok(ipnet::IpNet::V6(n)) => Ok(Self::V6Net(n)),
            Err(_) => Err(format!("{text:?} is not an IP address, a CIDR or a range")),
        }
    }

    /// IPv6?
    pub fn is_v6(&self) -> bool {
        matches!(self, Self::V6Net(_) | Self::V6Range(..))
    }

    /// The CMDB table of the address object (`firewall/address` or `firewall/address6`).
    pub fn table(&self) -> &'static str {
        if self.is_v6() {
            "firewall/address6"
        } else {
            "firewall/address"
        }
    }

    /// The name of the device object: `<prefix><canonical>`, with `/` written `_` (a literal `/`
    /// breaks REST URLs) and names over 79 characters shortened to a hash-suffixed form.
    pub fn object_name(&self, prefix: &str) -> String {
        let full = format!("{prefix}{}", self.to_string().replace('/', "_"));
        if full.chars().count() <= NAME_LIMIT {
            return full;
        }
        let hash = hex8(&self.to_string());
        let keep = NAME_LIMIT - hash.len() - 1;
        let head: String = full.chars().take(keep).collect();
        format!("{head}~{hash}")
    }

    /// The FortiOS object body (FortiManager accepts the same fields).
    pub fn fortios_object(&self, name: &str, comment: &str) -> Value {
        match self {
            Self::V4Net(n) => {
                json!({"name": name, "type": "ipmask", "subnet": format!("{} {}", n.addr(), n.netmask()), "comment": comment})
            }
            Self::V4Range(a, b) => {
                json!({"name": name, "type": "iprange", "start-ip": a.to_string(), "end-ip": b.to_string(), "comment": comment})
            }
            Self::V6Net(n) => {
                json!({"name": name, "type": "ipprefix", "ip6": n.to_string(), "comment": comment})
            }
            Self::V6Range(a, b) => {
                json!({"name": name, "type": "iprange", "start-ip": a.to_string(), "end-ip": b.to_string(), "comment": comment})
            }
        }
    }

    /// The FortiManager ADOM object for this member: FortiManager documents `subnet` as an
    /// `[ip, mask]` list, the form it returns on reads.
    pub fn fortimanager_object(&self, name: &str, comment: &str) -> Value {
        match self {
            Self::V4Net(n) => {
                json!({"name": name, "type": "ipmask", "subnet": [n.addr().to_string(), n.netmask().to_string()], "comment": comment})
            }
            other => other.fortios_object(name, comment),
        }
    }

    /// Reads the address out of a device object (FortiOS `"ip mask"`, `"ip/len"`, FortiManager
    /// `["ip", "mask"]`, ranges); None for types fortisync does not manage.
    pub fn from_object(object: &Value, v6: bool) -> Option<Self> {
        let kind = object["type"]
            .as_str()
            .unwrap_or(if v6 { "ipprefix" } else { "ipmask" });
        match (v6, kind) {
            (false, "ipmask") => {
                let (ip, mask) = match &object["subnet"] {
                    Value::String(s) => match s.split_once('/') {
                        Some((ip, len)) => {
                            (ip.trim().parse().ok()?, len.trim().parse::<u8>().ok()?)
                        }
                        None => {
                            let mut parts = s.split_whitespace();
                            (
                                parts.next()?.parse().ok()?,
                                mask_len(parts.next()?.parse().ok()?)?,
                            )
                        }
                    },
                    Value::Array(items) => (
                        items.first()?.as_str()?.parse().ok()?,
                        mask_len(items.get(1)?.as_str()?.parse().ok()?)?,
                    ),
                    _ => return None,
                };
                Some(Self::V4Net(Ipv4Net::new(ip, mask).ok()?))
            }
            (false, "iprange") => Some(Self::V4Range(
                object["start-ip"].as_str()?.parse().ok()?,
                object["end-ip"].as_str()?.parse().ok()?,
            )),
            (true, "ipprefix") => Some(Self::V6Net(object["ip6"].as_str()?.parse().ok()?)),
            (true, "iprange") => Some(Self::V6Range(
                object["start-ip"].as_str()?.parse().ok()?,
                object["end-ip"].as_str()?.parse().ok()?,
            )),
            _ => None,
        }
    }
}

/// The prefix length of a contiguous netmask (`255.255.255.0` → 24); None for others.
fn mask_len(mask: Ipv4Addr) -> Option<u8> {
    ipnet::ipv4_mask_to_prefix(mask).ok()
}

impl fmt::Display for MemberAddress {
    /// The canonical form: hosts without a prefix length, IPv6 compressed.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::V4Net(n) if n.prefix_len() == 32 => write!(f, "{}", n.addr()),
            Self::V4Net(n) => write!(f, "{n}"),
            Self::V6Net(n) if n.prefix_len() == 128 => write!(f, "{}", n.addr()),
            Self::V6Net(n) => write!(f, "{n}"),
            Self::V4Range(a, b) => write!(f, "{a}-{b}"),
            Self::V6Range(a, b) => write!(f, "{a}-{b}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> MemberAddress {
        MemberAddress::parse(s).expect(s)
    }

    #[test]
    fn canonical_forms() {
        assert_eq!(p("10.0.0.1").to_string(), "10.0.0.1");
        assert_eq!(p("10.0.0.1/32"), p("10.0.0.1"));
        assert_eq!(p("10.0.0.0/24").to_string(), "10.0.0.0/24");
        assert_eq!(p("2001:0db8:0::1").to_string(), "2001:db8::1");
        assert_eq!(
            p("192.0.2.1 - 192.0.2.9").to_string(),
            "192.0.2.1-192.0.2.9"
        );
    }

    #[test]
    fn bad_members_are_refused_with_the_reason() {
        assert!(
            MemberAddress::parse("10.0.0.1/24")
                .unwrap_err()
                .contains("host bits")
        );
        assert!(
            MemberAddress::parse("192.0.2.9-192.0.2.1")
                .unwrap_err()
                .contains("ends before")
        );
        assert!(
            MemberAddress::parse("192.0.2.1-2001:db8::1")
                .unwrap_err()
                .contains("one family")
        );
        assert!(MemberAddress::parse("fw.example.com").is_err());
    }

    #[test]
    fn object_names_avoid_slashes_and_fit_79_characters() {
        assert_eq!(p("10.0.0.1").object_name("fs_"), "fs_10.0.0.1");
        assert_eq!(p("10.0.0.0/24").object_name("fs_"), "fs_10.0.0.0_24");
        assert_eq!(
            p("192.0.2.1-192.0.2.9").object_name("fs_"),
            "fs_192.0.2.1-192.0.2.9"
        );
        let long =
            p("2001:db8:1111:2222:3333:4444:5555:6666-2001:db8:1111:2222:3333:4444:5555:7777");
        let name = long.object_name("fortisync-admins_");
        assert_eq!(name.chars().count(), NAME_LIMIT);
        assert!(name.contains('~'));
        assert_eq!(name, long.object_name("fortisync-admins_"), "deterministic");
        assert_ne!(
            name,
            p("2001:db8:1111:2222:3333:4444:5555:6666-2001:db8:1111:2222:3333:4444:5555:8888")
                .object_name("fortisync-admins_")
        );
    }

    #[test]
    fn objects_round_trip_through_every_device_form() {
        for text in [
            "10.0.0.1",
            "10.0.0.0/24",
            "192.0.2.1-192.0.2.9",
            "2001:db8::/64",
            "2001:db8::1",
            "2001:db8::1-2001:db8::9",
        ] {
            let a = p(text);
            let object = a.fortios_object("n", "c");
            assert_eq!(
                MemberAddress::from_object(&object, a.is_v6()),
                Some(a),
                "{text}"
            );
        }
        let fmg = json!({"name": "n", "type": "ipmask", "subnet": ["10.0.0.0", "255.255.255.0"]});
        assert_eq!(
            MemberAddress::from_object(&fmg, false),
            Some(p("10.0.0.0/24"))
        );
        let cidr = json!({"name": "n", "subnet": "10.0.0.1/32"});
        assert_eq!(
            MemberAddress::from_object(&cidr, false),
            Some(p("10.0.0.1"))
        );
        assert_eq!(
            MemberAddress::from_object(&json!({"type": "fqdn", "fqdn": "x"}), false),
            None
        );
    }
}
