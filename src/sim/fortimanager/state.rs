//! Everything a simulated FortiManager remembers: ADOMs, admins, sessions, the request log,
//! counters and injected faults.

use std::collections::{BTreeMap, VecDeque};
use std::net::IpAddr;
use std::time::Duration;

use rand::SeedableRng;
use rand::rngs::StdRng;
use serde::{Deserialize, Serialize};

use super::fault::{FaultQueue, FaultRule};
use super::objects::{AdomObjects, Rules};
use super::scenario::{
    AdminUser, DeviceGroupSpec, DeviceSpec, FortiManagerScenario, WorkspaceMode,
};
use super::session::Sessions;
use super::status::Status;
use super::url::Table;
use super::workspace::Workspace;

/// How many answered params the request log keeps, so long benchmarks stay bounded.
pub const LOG_CAPACITY: usize = 100_000;

/// One ADOM at run time.
#[derive(Debug, Clone)]
pub struct Adom {
    /// ADOM name.
    pub name: String,
    /// FortiOS version of the ADOM (`"7.2"`).
    pub os_version: String,
    /// Objects and lock state.
    pub ws: Workspace,
    /// Managed devices.
    pub devices: Vec<DeviceSpec>,
    /// Explicit device groups (All_FortiGate is implicit).
    pub groups: Vec<DeviceGroupSpec>,
}

impl Adom {
    /// The version rules for writes in this ADOM.
    pub fn rules(&self) -> Rules {
        Rules {
            empty_group_ok: version_at_least(&self.os_version, (7, 2, 0)),
        }
    }

    /// Members of a device group; `All_FortiGate` is every device of the ADOM.
    pub fn group_members(&self, group: &str) -> Option<Vec<String>> {
        if group == "All_FortiGate" {
            return Some(self.devices.iter().map(|d| d.name.clone()).collect());
        }
        self.groups
            .iter()
            .find(|g| g.name == group)
            .map(|g| g.members.clone())
    }
}

/// One answered JSON-RPC param.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct RequestRecord {
    /// Client source address.
    pub peer: IpAddr,
    /// Authenticated admin, if any.
    pub user: Option<String>,
    /// JSON-RPC method.
    pub method: String,
    /// Normalised url.
    pub url: String,
    /// `status.code` sent.
    pub code: i64,
    /// The HTTP request's `User-Agent` header, if any (fortisync's names the replica).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_agent: Option<String>,
}

/// Counter key: method, normalised url and status code.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct CounterKey {
    /// JSON-RPC method.
    pub method: String,
    /// Normalised url.
    pub url: String,
    /// `status.code`.
    pub code: i64,
}

/// The whole mutable state.
#[derive(Debug)]
pub struct FmgState {
    /// Firmware version `major.minor.patch`.
    pub version: String,
    /// Serial number.
    pub serial: String,
    /// Hostname.
    pub hostname: String,
    /// ADOMs by name.
    pub adoms: BTreeMap<String, Adom>,
    /// Admins by userid.
    pub admins: BTreeMap<String, AdminUser>,
    /// Login sessions.
    pub sessions: Sessions,
    /// The most recent answered params, oldest first (at most [`LOG_CAPACITY`]).
    pub log: VecDeque<RequestRecord>,
    /// Count per method, url and code.
    pub counters: BTreeMap<CounterKey, u64>,
    /// Count of answered params per client source address.
    pub peer_counters: BTreeMap<IpAddr, u64>,
    /// Injected faults, in the order they fire.
    pub faults: FaultQueue,
    /// Decides probabilistic faults; seeded from the scenario for repeatable runs.
    pub rng: StdRng,
}

impl FmgState {
    /// Builds the state a scenario describes. Objects are normalised (subnet forms, enums) but
    /// integrity is not checked, so a scenario may start from any drift it wants.
    pub fn from_scenario(s: &FortiManagerScenario) -> anyhow::Result<Self> {
        let mut adoms = BTreeMap::new();
        let mut specs = s.adoms.clone();
        if !specs.iter().any(|a| a.name == "root") {
            specs.insert(0, Default::default());
        }
        for spec in specs {
            let mut db = AdomObjects::default();
            for (table, objs) in [
                (Table::Address, &spec.addresses),
                (Table::Addrgrp, &spec.addrgrps),
                (Table::ExternalResource, &spec.external_resources),
            ] {
                for obj in objs {
                    db.force_put(table, obj.clone()).map_err(|st| {
                        anyhow::anyhow!(
                            "ADOM {}: {} {:?}: {}",
                            spec.name,
                            table.id(),
                            obj.get("name"),
                            st.message
                        )
                    })?;
                }
            }
            let adom = Adom {
                name: spec.name.clone(),
                os_version: spec.os_version.clone(),
                ws: Workspace::new(spec.workspace_mode, db),
                devices: spec.devices.clone(),
                groups: spec.groups.clone(),
            };
            adoms.insert(spec.name, adom);
        }
        Ok(Self {
            version: s.version.clone(),
            serial: s.serial.clone(),
            hostname: s.hostname.clone(),
            adoms,
            admins: s
                .admins
                .iter()
                .map(|a| (a.userid.clone(), a.clone()))
                .collect(),
            sessions: Sessions::new(Duration::from_secs(s.idle_timeout_api.max(1))),
            log: VecDeque::new(),
            counters: BTreeMap::new(),
            peer_counters: BTreeMap::new(),
            faults: FaultQueue::default(),
            rng: match s.seed {
                Some(seed) => StdRng::seed_from_u64(seed),
                None => StdRng::from_os_rng(),
            },
        })
    }

    /// Records one answered param.
    pub fn record(&mut self, rec: RequestRecord) {
        let key = CounterKey {
            method: rec.method.clone(),
            url: rec.url.clone(),
            code: rec.code,
        };
        *self.counters.entry(key).or_default() += 1;
        *self.peer_counters.entry(rec.peer).or_default() += 1;
        if self.log.len() == LOG_CAPACITY {
            self.log.pop_front();
        }
        self.log.push_back(rec);
    }

    /// The fault that hits a param on `url` (first matching rule, drawn with the seeded RNG).
    pub fn take_fault(&mut self, url: &str) -> Option<FaultRule> {
        self.faults.take(url, &mut self.rng)
    }

    /// True when FortiManager accepts API keys at all (7.2.2+).
    pub fn api_keys_supported(&self) -> bool {
        version_at_least(&self.version, (7, 2, 2))
    }

    /// True when `?access_token=` still works (refused from 7.4.7 and 7.6.2, #1084776).
    pub fn access_token_query_allowed(&self) -> bool {
        let v = parse_version(&self.version);
        let refused = match (v.0, v.1) {
            (7, 4) => v.2 >= 7,
            (7, 6) => v.2 >= 2,
            (major, minor) => (major, minor) > (7, 6),
        };
        self.api_keys_supported() && !refused
    }

    /// Global workspace mode as `/cli/global/system/global` reports it: normal when any ADOM uses it.
    pub fn workspace_mode(&self) -> WorkspaceMode {
        if self
            .adoms
            .values()
            .any(|a| a.ws.mode == WorkspaceMode::Normal)
        {
            WorkspaceMode::Normal
        } else {
            WorkspaceMode::Disabled
        }
    }

    /// The ADOM or -6 "Invalid url". Under `/pm/config/adom/{adom}/...` the ADOM is part of the
    /// database path, not a table row, and live captures answer a path FortiManager cannot
    /// resolve with -6 (§3). Under `/dvmdb/adom/{adom}` the ADOM *is* a row of the `adom`
    /// table, so a missing one is -3 like any missing object (see `dispatch`).
    pub fn adom_mut(&mut self, name: &str) -> Result<&mut Adom, Status> {
        self.adoms.get_mut(name).ok_or_else(Status::invalid_url)
    }
}

/// Parses `7.4.3` (missing parts are 0).
pub fn parse_version(v: &str) -> (u32, u32, u32) {
    let mut parts = v
        .trim_start_matches('v')
        .split('.')
        .map(|p| p.parse().unwrap_or(0));
    (
        parts.next().unwrap_or(0),
        parts.next().unwrap_or(0),
        parts.next().unwrap_or(0),
    )
}

/// True when `v` ≥ `min`.
pub fn version_at_least(v: &str, min: (u32, u32, u32)) -> bool {
    parse_version(v) >= min
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(version: &str) -> FmgState {
        FmgState::from_scenario(&FortiManagerScenario {
            version: version.into(),
            ..Default::default()
        })
        .unwrap()
    }

    #[test]
    fn access_token_query_follows_version() {
        assert!(!state("7.2.1").access_token_query_allowed());
        assert!(state("7.2.5").access_token_query_allowed());
        assert!(state("7.4.6").access_token_query_allowed());
        assert!(!state("7.4.7").access_token_query_allowed());
        assert!(state("7.6.1").access_token_query_allowed());
        assert!(!state("7.6.2").access_token_query_allowed());
    }

    #[test]
    fn counted_fault_is_dropped_after_use() {
        let mut s = state("7.4.3");
        s.faults.push(FaultRule {
            url: "/sys".into(),
            code: Some(-1),
            times: Some(1),
            ..Default::default()
        });
        assert!(s.take_fault("/sys/status").is_some());
        assert!(s.take_fault("/sys/status").is_none());
    }

    #[test]
    fn probabilistic_faults_repeat_with_the_same_seed() {
        let draw = || {
            let mut s = FmgState::from_scenario(&FortiManagerScenario {
                seed: Some(42),
                ..Default::default()
            })
            .unwrap();
            s.faults.push(FaultRule {
                code: Some(-1),
                probability: Some(0.3),
                ..Default::default()
            });
            (0..200)
                .map(|_| usize::from(s.take_fault("/x").is_some()))
                .collect::<Vec<_>>()
        };
        let first = draw();
        assert_eq!(first, draw());
        let hits = first.iter().sum::<usize>();
        assert!((30..90).contains(&hits), "about 30% of 200, got {hits}");
    }
}
