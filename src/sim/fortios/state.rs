//! Everything a simulated FortiGate remembers at run time.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use rand::SeedableRng;
use rand::rngs::StdRng;
use serde::{Deserialize, Serialize};
use tokio::time::Instant;

use super::cmdb::{Limits, Table, VdomTables};
use super::fault::{FaultQueue, FaultRule};
use super::feed::{FeedSettings, FeedSignals, Feeds, PollRecord};
use super::lockout::{LockoutBook, LockoutSettings};
use super::scenario::{Admin, ApiUser, FortiGateScenario, GlobalSettings, Profile};
use super::version::FosVersion;

/// How many requests the log keeps, so long benchmarks stay bounded.
pub const LOG_CAPACITY: usize = 100_000;

/// One answered request.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct RequestRecord {
    /// Client source address.
    pub peer: IpAddr,
    /// HTTP method.
    pub method: String,
    /// Path without the query (which may hold a token).
    pub path: String,
    /// Names of the query parameters, without their values (so a client that puts a token in
    /// the URL, `?access_token=`, shows in the log without the log holding the token).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub query_names: Vec<String>,
    /// HTTP status answered (0 when the connection was reset or hung).
    pub status: u16,
    /// Authenticated user, if any.
    pub user: Option<String>,
    /// Whether the request carried credentials the device checked and refused.
    pub auth_failed: bool,
    /// The `User-Agent` header, if any (fortisync's names the replica that sent it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_agent: Option<String>,
    /// When it was logged (answered, or reset/hung), in milliseconds since the device
    /// started: tells which requests fell inside a lockout window. Set by the log.
    #[serde(default)]
    pub at_ms: u64,
}

/// A cookie session from `/logincheck` or `/api/v2/authentication`.
#[derive(Debug, Clone)]
pub struct Session {
    /// Admin name.
    pub user: String,
    /// The CSRF token the client must echo in `X-CSRFTOKEN`.
    pub csrf: String,
    /// Session id (part of cookie names from 7.2.4).
    pub id: u32,
    /// Last use, for `admintimeout`.
    pub last_used: Instant,
}

/// A pending CMDB transaction: the tables as they will be on commit.
#[derive(Debug, Clone)]
pub struct Transaction {
    /// VDOM the transaction was started in.
    pub vdom: String,
    /// Staged tables.
    pub tables: VdomTables,
}

/// The run-time state of one simulated FortiGate.
#[derive(Debug)]
pub struct FortiGateState {
    /// Device name.
    pub name: String,
    /// Firmware.
    pub version: FosVersion,
    /// Serial number.
    pub serial: String,
    /// Model.
    pub model: String,
    /// Host name.
    pub hostname: String,
    /// Listening port (part of cookie names).
    pub port: u16,
    /// Global settings.
    pub global: GlobalSettings,
    /// Member cap override.
    pub member_cap: Option<usize>,
    /// VDOM tables, first = management VDOM.
    pub vdoms: BTreeMap<String, VdomTables>,
    /// VDOM order (management VDOM first).
    pub vdom_order: Vec<String>,
    /// API users.
    pub api_users: BTreeMap<String, ApiUser>,
    /// Password admins.
    pub admins: BTreeMap<String, Admin>,
    /// Custom profiles.
    pub profiles: BTreeMap<String, Profile>,
    /// Lockouts per source IP.
    pub lockout: LockoutBook,
    /// Cookie sessions by APSCOOKIE value; session keys (Bearer) by key.
    pub sessions: HashMap<String, Session>,
    /// What each external resource holds and how its last pull went, per (vdom, feed).
    pub feeds: Feeds,
    /// Pull records (bounded).
    pub feed_polls: VecDeque<PollRecord>,
    /// Feed polling knobs from the scenario.
    pub feed_settings: FeedSettings,
    /// Wakes the poller; shared with it, kept across a scenario load.
    pub feed_signals: Arc<FeedSignals>,
    /// CMDB revision counter.
    pub revision: u64,
    /// Open transactions.
    pub transactions: HashMap<u64, Transaction>,
    /// Request log (bounded).
    pub log: VecDeque<RequestRecord>,
    /// Injected faults, in the order they fire.
    pub faults: FaultQueue,
    /// Seeded randomness (fault probabilities, ids).
    pub rng: StdRng,
    /// Next session / transaction id.
    pub next_id: u32,
    /// When the device started (the log's clock).
    pub started: Instant,
}

impl FortiGateState {
    /// Builds the state a scenario describes; bad initial objects are errors.
    pub fn from_scenario(scenario: &FortiGateScenario, seed: u64) -> anyhow::Result<Self> {
        let mut vdom_order = scenario.vdoms.clone();
        if vdom_order.is_empty() {
            vdom_order.push("root".into());
        }
        let mut state = Self {
            name: scenario.name.clone(),
            version: scenario.version,
            serial: scenario.serial.clone(),
            model: scenario.model.clone(),
            hostname: scenario.hostname.clone(),
            port: scenario.port,
            global: scenario.global.clone(),
            member_cap: scenario.addrgrp_member_cap,
            vdoms: vdom_order
                .iter()
                .map(|v| (v.clone(), VdomTables::default()))
                .collect(),
            vdom_order,
            api_users: scenario
                .api_users
                .iter()
                .map(|u| (u.name.clone(), u.clone()))
                .collect(),
            admins: scenario
                .admins
                .iter()
                .map(|a| (a.name.clone(), a.clone()))
                .collect(),
            profiles: scenario.profiles.clone(),
            lockout: LockoutBook::default(),
            sessions: HashMap::new(),
            feeds: Feeds::new(),
            feed_polls: VecDeque::new(),
            feed_settings: scenario.feeds.clone(),
            feed_signals: Arc::new(FeedSignals::default()),
            revision: 1,
            transactions: HashMap::new(),
            log: VecDeque::new(),
            faults: FaultQueue::default(),
            rng: StdRng::seed_from_u64(seed),
            next_id: 1,
            started: Instant::now(),
        };
        let limits = state.limits();
        for (vdom, objects) in &scenario.objects {
            let tables = state.vdoms.get_mut(vdom).ok_or_else(|| {
                anyhow::anyhow!(
                    "objects for unknown VDOM {vdom:?} in FortiGate {}",
                    scenario.name
                )
            })?;
            // Addresses first, so groups can reference them.
            let ordered = [
                (Table::Address, &objects.addresses),
                (Table::Address6, &objects.addresses6),
                (Table::Addrgrp, &objects.addrgrps),
                (Table::Addrgrp6, &objects.addrgrps6),
                (Table::ExternalResource, &objects.external_resources),
            ];
            for (table, items) in ordered {
                for item in items {
                    tables.create(table, item, limits).map_err(|e| {
                        anyhow::anyhow!("initial {:?} object {item} refused: {e:?}", table)
                    })?;
                }
            }
        }
        Ok(state)
    }

    /// Version-dependent limits.
    pub fn limits(&self) -> Limits {
        Limits {
            version: self.version,
            member_cap: self
                .member_cap
                .unwrap_or_else(|| self.version.default_member_cap()),
        }
    }

    /// Lockout settings from `system/global`.
    pub fn lockout_settings(&self) -> LockoutSettings {
        LockoutSettings {
            threshold: self.global.admin_lockout_threshold.clamp(1, 10),
            duration: Duration::from_secs(self.global.admin_lockout_duration.max(1)),
        }
    }

    /// The profile named `name` (built-in or custom).
    pub fn profile(&self, name: &str) -> Option<Profile> {
        self.profiles
            .get(name)
            .cloned()
            .or_else(|| Profile::built_in(name))
    }

    /// The management VDOM.
    pub fn management_vdom(&self) -> &str {
        self.vdom_order
            .first()
            .map(String::as_str)
            .unwrap_or("root")
    }

    /// Appends to the bounded log.
    pub fn record(&mut self, mut record: RequestRecord) {
        if self.log.len() == LOG_CAPACITY {
            self.log.pop_front();
        }
        record.at_ms = self.started.elapsed().as_millis() as u64;
        self.log.push_back(record);
    }

    /// A fresh id for sessions and transactions.
    pub fn fresh_id(&mut self) -> u32 {
        let id = self.next_id;
        self.next_id += 1;
        id
    }

    /// A random token (session cookies, CSRF tokens, session keys).
    pub fn token(&mut self, len: usize) -> String {
        use rand::Rng;
        const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
        (0..len)
            .map(|_| ALPHABET[self.rng.random_range(0..ALPHABET.len())] as char)
            .collect()
    }

    /// The fault that hits this request (first matching rule, drawn with the seeded RNG).
    pub fn take_fault(&mut self, method: &str, path: &str) -> Option<FaultRule> {
        use rand::Rng;
        let rng = &mut self.rng;
        self.faults.take(method, path, || rng.random::<f64>())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record() -> RequestRecord {
        RequestRecord {
            peer: IpAddr::from([127, 0, 0, 1]),
            method: "GET".into(),
            path: "/api/v2/monitor/system/status".into(),
            query_names: Vec::new(),
            status: 200,
            user: None,
            auth_failed: false,
            at_ms: 0,
            user_agent: None,
        }
    }

    #[tokio::test(start_paused = true)]
    async fn the_log_stamps_each_request_with_milliseconds_since_the_start() {
        let mut state =
            FortiGateState::from_scenario(&FortiGateScenario::default(), 1).expect("state");
        tokio::time::advance(Duration::from_millis(40)).await;
        state.record(record());
        tokio::time::advance(Duration::from_millis(250)).await;
        state.record(record());
        let at: Vec<u64> = state.log.iter().map(|r| r.at_ms).collect();
        assert_eq!(at, [40, 290]);
        let json = serde_json::to_value(&state.log[1]).expect("json");
        assert_eq!(json["at_ms"], 290, "the admin API shows it");
        let old: RequestRecord = serde_json::from_value(serde_json::json!({
            "peer": "127.0.0.1", "method": "GET", "path": "/", "status": 200, "user": null,
            "auth_failed": false
        }))
        .expect("a record without at_ms still reads");
        assert_eq!(old.at_ms, 0);
    }
}
