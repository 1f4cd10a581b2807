//! The FortiManager estate the ADOM tests share (tests/reconcile_fortimanager.rs against the
//! converger, tests/e2e/addressgroup_fortimanager.rs through the API server): one FortiManager
//! `fmg` whose ADOM `root` is in workspace mode and manages `fw-a` (7.4.3) and `fw-b` (6.4.14),
//! both played by simulated FortiGates.
//!
//! Typed, not YAML: a variant (an older ADOM, a device nobody plays) is a method call the
//! compiler checks, where a string `replace` on the YAML silently did nothing when the text
//! drifted. It lives with the tests, not in src/sim: it is one estate of these tests, not a
//! feature of the simulator.

#![allow(dead_code)]

use std::net::Ipv4Addr;

use fortisync::sim::fortimanager::Table as AdomTable;
use fortisync::sim::fortimanager::{
    AdminUser, AdomSpec, DeviceSpec, FortiManagerScenario, RpcPermit, UserType, WorkspaceMode,
};
use fortisync::sim::fortios::{ApiUser, FortiGateScenario, Table};
use fortisync::sim::{Scenario, Simulator};

/// The FortiManager API admin `fortisync`'s key.
pub const FMG_KEY: &str = "fmg-api-key-0000000000000000";

/// The FortiGates' API user `fs`'s key (the controller reaches them through the FortiManager).
pub const FW_KEY: &str = "fw-key";

/// The estate, with its variants.
#[derive(Debug, Clone)]
pub struct Estate {
    adom_os_version: String,
    unreachable_device: bool,
    fw_b_version: String,
}

impl Default for Estate {
    fn default() -> Self {
        Self {
            adom_os_version: "7.4".into(),
            unreachable_device: false,
            fw_b_version: "6.4.14".into(),
        }
    }
}

impl Estate {
    /// The ADOM's FortiOS version (`"7.0"`: before 7.2 an addrgrp may not be empty).
    pub fn adom_os_version(mut self, version: &str) -> Self {
        self.adom_os_version = version.into();
        self
    }

    /// `fw-b`'s FortiOS version (`"7.4.3"`: both devices take a dynamic push).
    pub fn fw_b_version(mut self, version: &str) -> Self {
        self.fw_b_version = version.into();
        self
    }

    /// Adds `fw-gone` to the ADOM: a device it knows but no simulated FortiGate plays.
    pub fn with_unreachable_device(mut self) -> Self {
        self.unreachable_device = true;
        self
    }

    pub fn scenario(&self) -> Scenario {
        let fortigate = |name: &str, version: &str| FortiGateScenario {
            name: name.into(),
            version: version.parse().expect("FortiOS version"),
            api_users: vec![ApiUser {
                name: "fs".into(),
                key: Some(FW_KEY.into()),
                accprofile: "super_admin".into(),
                vdoms: Vec::new(),
                trusthosts: vec!["127.0.0.0/8".parse().expect("net")],
                trusthost_ids: Vec::new(),
            }],
            ..FortiGateScenario::default()
        };
        let device = |name: &str, serial: &str, version: &str| DeviceSpec {
            name: name.into(),
            serial: serial.into(),
            version: version.into(),
            ..DeviceSpec::default()
        };
        let mut devices = vec![
            device("fw-a", "FGT60F0000000001", "7.4.3"),
            device("fw-b", "FGT60F0000000002", &self.fw_b_version),
        ];
        if self.unreachable_device {
            devices.push(device("fw-gone", "FGT60F0000000003", "7.4.3"));
        }
        Scenario {
            fortigates: vec![
                fortigate("fw-a", "7.4.3"),
                fortigate("fw-b", &self.fw_b_version),
            ],
            fortimanagers: vec![FortiManagerScenario {
                name: "fmg".into(),
                version: "7.4.3".into(),
                adoms: vec![AdomSpec {
                    name: "root".into(),
                    os_version: self.adom_os_version.clone(),
                    workspace_mode: WorkspaceMode::Normal,
                    devices,
                    ..AdomSpec::default()
                }],
                admins: vec![AdminUser {
                    userid: "fortisync".into(),
                    user_type: UserType::Api,
                    rpc_permit: RpcPermit::ReadWrite,
                    profile: "Super_User".into(),
                    api_key: Some(FMG_KEY.into()),
                    trusthosts: vec![[Ipv4Addr::LOCALHOST, Ipv4Addr::BROADCAST]],
                    ..AdminUser::default()
                }],
                ..FortiManagerScenario::default()
            }],
            ..Scenario::default()
        }
    }

    pub async fn start(&self) -> Simulator {
        Simulator::start(self.scenario()).await.expect("simulator")
    }
}

/// The sorted members of the ADOM group `allowed-admins`, None while it does not exist.
pub fn adom_members(sim: &Simulator) -> Option<Vec<String>> {
    let g =
        sim.fortimanager("fmg")
            .control()
            .object("root", AdomTable::Addrgrp, "allowed-admins")?;
    let mut m: Vec<String> = g["member"]
        .as_array()
        .expect("the ADOM group's members are a list")
        .iter()
        .filter_map(|v| v.as_str().map(str::to_string))
        .collect();
    m.sort();
    Some(m)
}

/// The sorted members of `allowed-admins` on the FortiGate `device` (empty while absent).
pub fn device_members(sim: &Simulator, device: &str) -> Vec<String> {
    let mut m = sim
        .fortigate(device)
        .group_members("root", Table::Addrgrp, "allowed-admins")
        .unwrap_or_default();
    m.sort();
    m
}
