//! What a simulated FortiManager starts with: ADOMs, objects, devices and admin users.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::Ipv6Net;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// An example scenario in YAML, for `fortisync sim` users and docs.
pub const EXAMPLE_SCENARIO: &str = r#"name: lab-fmg
version: 7.4.3
tls: true
port: 0
idle_timeout_api: 900
seed: 7
adoms:
  - name: root
    os_version: "7.4"
    workspace_mode: normal
    addresses:
      - { name: web1, subnet: 10.0.0.1/32, comment: managed by hand }
    addrgrps:
      - { name: web, member: [web1] }
    external_resources:
      - { name: blocklist, type: address, resource: "https://edl.example/block.txt" }
    devices:
      - { name: fw-edge-1, serial: FGVM01TM00000001, version: 7.4.3 }
      - { name: fw-edge-2, serial: FGVM01TM00000002, version: 7.2.8 }
    groups:
      - { name: edge, members: [fw-edge-1, fw-edge-2] }
admins:
  - userid: fortisync
    user_type: api
    rpc_permit: read-write
    profile: Super_User
    api_key: change-me
    trusthosts: [[127.0.0.1, 255.255.255.255]]
  - userid: operator
    password: operator-pw
    rpc_permit: read
    profile: Standard_User
    adoms: [root]
"#;

/// A whole simulated FortiManager, loadable from YAML or JSON.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, rename_all = "snake_case")]
pub struct FortiManagerScenario {
    /// Scenario name, for logs.
    pub name: String,
    /// FortiManager firmware, `major.minor.patch` (drives API-key behaviour).
    pub version: String,
    /// Serial number reported by `/cli/global/system/status`.
    pub serial: String,
    /// Hostname reported by `/cli/global/system/status`.
    pub hostname: String,
    /// Address to bind (loopback).
    pub bind: IpAddr,
    /// Port to bind; 0 picks a free one.
    pub port: u16,
    /// HTTPS with a generated self-signed certificate (plain HTTP when false).
    pub tls: bool,
    /// `config system admin setting` → `idle_timeout_api`, seconds (default 900).
    pub idle_timeout_api: u64,
    /// ADOMs; `root` is added when missing.
    pub adoms: Vec<AdomSpec>,
    /// FortiManager administrators.
    pub admins: Vec<AdminUser>,
    /// Seed for probabilistic faults (random when absent).
    pub seed: Option<u64>,
}

impl Default for FortiManagerScenario {
    fn default() -> Self {
        Self {
            name: "fortimanager".into(),
            version: "7.4.3".into(),
            serial: "FMG-VMTM00000001".into(),
            hostname: "FMG-VM64".into(),
            bind: IpAddr::V4(Ipv4Addr::LOCALHOST),
            port: 0,
            tls: true,
            idle_timeout_api: 900,
            adoms: vec![AdomSpec::default()],
            admins: Vec::new(),
            seed: None,
        }
    }
}

/// Workspace mode of an ADOM (`workspace-mode` disabled | normal).
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum WorkspaceMode {
    /// Writes apply immediately.
    #[default]
    Disabled,
    /// Lock → change → commit → unlock.
    Normal,
}

/// One ADOM and what is in it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, rename_all = "snake_case")]
pub struct AdomSpec {
    /// ADOM name.
    pub name: String,
    /// FortiOS version of the ADOM (`"7.2"`); an empty addrgrp is legal from 7.2.
    pub os_version: String,
    /// Workspace mode.
    pub workspace_mode: WorkspaceMode,
    /// `firewall/address` objects in FortiManager's field names.
    pub addresses: Vec<Map<String, Value>>,
    /// `firewall/addrgrp` objects.
    pub addrgrps: Vec<Map<String, Value>>,
    /// `system/external-resource` objects.
    pub external_resources: Vec<Map<String, Value>>,
    /// Managed devices.
    pub devices: Vec<DeviceSpec>,
    /// Device groups besides the implicit `All_FortiGate`.
    pub groups: Vec<DeviceGroupSpec>,
}

impl Default for AdomSpec {
    fn default() -> Self {
        Self {
            name: "root".into(),
            os_version: "7.4".into(),
            workspace_mode: WorkspaceMode::Disabled,
            addresses: Vec::new(),
            addrgrps: Vec::new(),
            external_resources: Vec::new(),
            devices: Vec::new(),
            groups: Vec::new(),
        }
    }
}

/// A managed FortiGate as FortiManager knows it.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default, rename_all = "snake_case")]
pub struct DeviceSpec {
    /// FMG device name (what URLs and proxy targets use).
    pub name: String,
    /// Serial number (`sn`).
    pub serial: String,
    /// FortiOS version, `major.minor.patch`.
    pub version: String,
    /// Platform string.
    pub platform: String,
}

/// A device group.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default, rename_all = "snake_case")]
pub struct DeviceGroupSpec {
    /// Group name.
    pub name: String,
    /// Device names.
    pub members: Vec<String>,
}

/// `user_type` of an administrator.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum UserType {
    /// Password login.
    #[default]
    Local,
    /// REST API admin with a bearer key.
    Api,
}

/// `rpc-permit` of an administrator.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum RpcPermit {
    /// No JSON-RPC access (the default on a real FortiManager).
    #[default]
    None,
    /// Read only.
    Read,
    /// Read and write.
    ReadWrite,
}

impl RpcPermit {
    /// The CLI spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::None => "none",
            Self::Read => "read",
            Self::ReadWrite => "read-write",
        }
    }

    /// Parses the CLI spelling (the numeric order is unconfirmed, so only symbols are accepted).
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "none" => Some(Self::None),
            "read" => Some(Self::Read),
            "read-write" => Some(Self::ReadWrite),
            _ => None,
        }
    }
}

/// A FortiManager administrator (`config system admin user`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, rename_all = "snake_case")]
pub struct AdminUser {
    /// `userid`.
    pub userid: String,
    /// Password for `sys/login/user` (none for API-only users).
    pub password: Option<String>,
    /// `user_type`.
    pub user_type: UserType,
    /// `rpc-permit`.
    pub rpc_permit: RpcPermit,
    /// `profileid` (Super_User, Standard_User, Restricted_User, ...).
    pub profile: String,
    /// ADOMs the user may use; empty means all.
    pub adoms: Vec<String>,
    /// Bearer key of an API user.
    pub api_key: Option<String>,
    /// `trusthost1..10` as `[ip, mask]`; missing slots take the defaults of §4.5.
    pub trusthosts: Vec<[Ipv4Addr; 2]>,
    /// `ipv6_trusthost1..10` as prefixes; missing slots take the defaults of §4.5 (slot 1
    /// `::/0` when none is given, the others unused).
    pub trusthosts6: Vec<Ipv6Net>,
}

impl Default for AdminUser {
    fn default() -> Self {
        Self {
            userid: "admin".into(),
            password: None,
            user_type: UserType::Local,
            rpc_permit: RpcPermit::None,
            profile: "Super_User".into(),
            adoms: Vec::new(),
            api_key: None,
            trusthosts: Vec::new(),
            trusthosts6: Vec::new(),
        }
    }
}

impl AdminUser {
    /// The ten trusted-host slots: given ones first, then the defaults (slot 1 any when none given).
    pub fn trusthost_slots(&self) -> [[Ipv4Addr; 2]; 10] {
        let unused = [Ipv4Addr::BROADCAST, Ipv4Addr::BROADCAST];
        let mut slots = [unused; 10];
        if self.trusthosts.is_empty() {
            slots[0] = [Ipv4Addr::UNSPECIFIED, Ipv4Addr::UNSPECIFIED];
        }
        for (slot, th) in slots.iter_mut().zip(&self.trusthosts) {
            *slot = *th;
        }
        slots
    }

    /// The ten IPv6 slots: given ones first, then the defaults (slot 1 `::/0` when none given).
    pub fn trusthost6_slots(&self) -> [Ipv6Net; 10] {
        let unused = Ipv6Net::from(Ipv6Addr::from(u128::MAX));
        let mut slots = [unused; 10];
        if self.trusthosts6.is_empty() {
            slots[0] = Ipv6Net::default();
        }
        for (slot, th) in slots.iter_mut().zip(&self.trusthosts6) {
            *slot = *th;
        }
        slots
    }

    /// True when `ip` falls in one of the used trusted-host slots of its family.
    pub fn trusts(&self, ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => v4,
                None => {
                    let unused = Ipv6Addr::from(u128::MAX);
                    return self.trusthost6_slots().iter().any(|n| {
                        !(n.addr() == unused && n.prefix_len() == 128) && n.contains(&v6)
                    });
                }
            },
            IpAddr::V4(v4) => v4,
        };
        self.trusthost_slots().iter().any(|[net, mask]| {
            *net != Ipv4Addr::BROADCAST
                && (u32::from(ip) & u32::from(*mask)) == (u32::from(*net) & u32::from(*mask))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_trusthosts_trust_everyone() {
        let user = AdminUser::default();
        assert!(user.trusts("127.0.0.9".parse().unwrap()));
        assert_eq!(user.trusthost_slots()[0], [Ipv4Addr::UNSPECIFIED; 2]);
        assert_eq!(user.trusthost_slots()[9], [Ipv4Addr::BROADCAST; 2]);
    }

    #[test]
    fn trusthosts_restrict_source_ip() {
        let user = AdminUser {
            trusthosts: vec![["127.0.0.2".parse().unwrap(), Ipv4Addr::BROADCAST]],
            ..AdminUser::default()
        };
        assert!(user.trusts("127.0.0.2".parse().unwrap()));
        assert!(!user.trusts("127.0.0.1".parse().unwrap()));
    }

    #[test]
    fn example_scenario_parses_and_loads() {
        let s: FortiManagerScenario = crate::yaml::from_str(EXAMPLE_SCENARIO).unwrap();
        assert_eq!(s.adoms[0].workspace_mode, WorkspaceMode::Normal);
        assert_eq!(s.admins[0].trusthosts[0][0], Ipv4Addr::LOCALHOST);
        assert_eq!(s.admins[1].adoms, vec!["root".to_string()]);
        let state = crate::sim::fortimanager::state::FmgState::from_scenario(&s).unwrap();
        assert_eq!(
            state.adoms["root"]
                .group_members("All_FortiGate")
                .unwrap()
                .len(),
            2
        );
    }

    #[test]
    fn scenario_parses_from_yaml_with_defaults() {
        let s: FortiManagerScenario = crate::yaml::from_str(
            "version: 7.2.5\nadmins:\n  - userid: api\n    rpc_permit: read-write\n",
        )
        .unwrap();
        assert_eq!(s.version, "7.2.5");
        assert!(s.tls);
        assert_eq!(s.admins[0].rpc_permit, RpcPermit::ReadWrite);
        assert_eq!(s.adoms[0].name, "root");
    }
}
