//! How a simulated FortiGate is described: version, users, profiles, trusted hosts, lockout
//! settings and initial objects. YAML or JSON, snake_case keys.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};

use ipnet::IpNet;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::feed::FeedSettings;
use super::version::FosVersion;

/// One simulated FortiGate.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FortiGateScenario {
    /// Name used to find the device in tests and in FortiManager's device list.
    pub name: String,
    /// Firmware, e.g. `7.4.3` (6.4 – 7.6).
    pub version: FosVersion,
    /// Serial number.
    pub serial: String,
    /// Model, e.g. `FGT60F`.
    pub model: String,
    /// Host name.
    pub hostname: String,
    /// Address to listen on (several 127.0.0.x play different devices).
    pub bind: IpAddr,
    /// Port, 0 = any free port.
    pub port: u16,
    /// HTTPS with a generated self-signed certificate (plain HTTP when false).
    pub tls: bool,
    /// VDOMs; the first is the management VDOM.
    pub vdoms: Vec<String>,
    /// `config system global`.
    pub global: GlobalSettings,
    /// REST API users (`config system api-user`).
    pub api_users: Vec<ApiUser>,
    /// Password admins (`config system admin`).
    pub admins: Vec<Admin>,
    /// Admin profiles beyond the built-in `super_admin` and `prof_admin`.
    pub profiles: BTreeMap<String, Profile>,
    /// Members per address group (default: 600 on 6.4, 5,000 on 7.x).
    pub addrgrp_member_cap: Option<usize>,
    /// Initial objects per VDOM.
    pub objects: BTreeMap<String, VdomObjects>,
    /// How feed-mode external resources are pulled (scaled minutes, limits, trusted CAs).
    pub feeds: FeedSettings,
}

impl Default for FortiGateScenario {
    fn default() -> Self {
        Self {
            name: "fgt".into(),
            version: FosVersion::default(),
            serial: "FGT60FTK20000001".into(),
            model: "FGT60F".into(),
            hostname: "fgt".into(),
            bind: IpAddr::V4(Ipv4Addr::LOCALHOST),
            port: 0,
            tls: true,
            vdoms: vec!["root".into()],
            global: GlobalSettings::default(),
            api_users: Vec::new(),
            admins: Vec::new(),
            profiles: BTreeMap::new(),
            addrgrp_member_cap: None,
            objects: BTreeMap::new(),
            feeds: FeedSettings::default(),
        }
    }
}

/// Settings of `config system global` the simulator honours.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GlobalSettings {
    /// Failed logins before a lockout (1–10).
    pub admin_lockout_threshold: u32,
    /// Lockout duration in seconds.
    pub admin_lockout_duration: u64,
    /// Accept `?access_token=` on 7.4.5+ / 7.6.1+.
    pub rest_api_key_url_query: bool,
    /// Idle minutes before a session expires.
    pub admintimeout: u64,
}

impl Default for GlobalSettings {
    fn default() -> Self {
        Self {
            admin_lockout_threshold: 3,
            admin_lockout_duration: 60,
            rest_api_key_url_query: false,
            admintimeout: 5,
        }
    }
}

/// A REST API user.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ApiUser {
    /// User name.
    pub name: String,
    /// API key (None = no key generated yet).
    #[serde(default)]
    pub key: Option<String>,
    /// Admin profile.
    #[serde(default = "super_admin")]
    pub accprofile: String,
    /// VDOMs the user may use (empty = all).
    #[serde(default)]
    pub vdoms: Vec<String>,
    /// Trusted hosts (`10.0.0.0/8` or `10.0.0.0 255.0.0.0`); empty = loopback only, because a
    /// REST API admin must have trusted hosts and allow-all is refused.
    #[serde(default, with = "trusthosts")]
    pub trusthosts: Vec<IpNet>,
    /// The `trusthost` table's entry ids, in the order of `trusthosts` (missing: 1, 2, … by
    /// position), kept as a write gave them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub trusthost_ids: Vec<u32>,
}

/// A password admin.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Admin {
    /// User name.
    pub name: String,
    /// Password.
    pub password: String,
    /// Admin profile.
    #[serde(default = "super_admin")]
    pub accprofile: String,
    /// VDOMs (empty = all).
    #[serde(default)]
    pub vdoms: Vec<String>,
    /// trusthost1..10 by position (`0.0.0.0/0` = not set; nothing set at all = any source).
    #[serde(default, with = "trusthosts")]
    pub trusthosts: Vec<IpNet>,
    /// ip6-trusthost1..10 by position (`::/0` = not set).
    #[serde(default, with = "trusthosts", skip_serializing_if = "Vec::is_empty")]
    pub ip6_trusthosts: Vec<IpNet>,
}

fn super_admin() -> String {
    "super_admin".into()
}

/// Permission on one area of an admin profile.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Permission {
    /// No access.
    #[default]
    None,
    /// Read only.
    Read,
    /// Read and write.
    ReadWrite,
}

/// An admin profile: permission per access group.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Profile {
    /// Firewall (addresses, groups, policies).
    pub fwgrp: Permission,
    /// System configuration (external resources, global settings, reboot).
    pub sysgrp: Permission,
}

impl Profile {
    /// The built-in profiles.
    pub fn built_in(name: &str) -> Option<Profile> {
        match name {
            "super_admin" | "prof_admin" => Some(Profile {
                fwgrp: Permission::ReadWrite,
                sysgrp: Permission::ReadWrite,
            }),
            _ => None,
        }
    }
}

/// Initial objects of one VDOM, in FortiOS JSON.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct VdomObjects {
    /// `firewall/address`
    pub addresses: Vec<Value>,
    /// `firewall/address6`
    pub addresses6: Vec<Value>,
    /// `firewall/addrgrp`
    pub addrgrps: Vec<Value>,
    /// `firewall/addrgrp6`
    pub addrgrps6: Vec<Value>,
    /// `system/external-resource`
    pub external_resources: Vec<Value>,
}

/// Trusted hosts as strings: `a.b.c.d/len`, `a.b.c.d m.m.m.m`, or an IPv6 prefix.
mod trusthosts {
    use ipnet::IpNet;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(nets: &[IpNet], s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(nets.iter().map(|n| n.to_string()))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<IpNet>, D::Error> {
        let items = Vec::<String>::deserialize(d)?;
        items
            .iter()
            .map(|t| super::parse_trusthost(t).map_err(serde::de::Error::custom))
            .collect()
    }
}

/// Parses a trusted host in either FortiOS notation.
pub fn parse_trusthost(text: &str) -> Result<IpNet, String> {
    let text = text.trim();
    if let Ok(net) = text.parse::<IpNet>() {
        return Ok(net);
    }
    if let Some((ip, mask)) = text.split_once(' ') {
        let ip: Ipv4Addr = ip
            .parse()
            .map_err(|_| format!("bad trusted host {text:?}"))?;
        let mask: Ipv4Addr = mask
            .trim()
            .parse()
            .map_err(|_| format!("bad trusted host {text:?}"))?;
        let len = u32::from(mask).leading_ones() as u8;
        return IpNet::new(IpAddr::V4(ip), len).map_err(|e| e.to_string());
    }
    text.parse::<IpAddr>()
        .map(IpNet::from)
        .map_err(|_| format!("bad trusted host {text:?}"))
}
