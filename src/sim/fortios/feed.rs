//! Threat feeds (`system/external-resource`) as a FortiGate holds them (facts §3.4, §4, §8):
//! the list each feed has now, how its last pull went, and when the next pull is due. Pure
//! over the state and the time; `feed_poll` does the HTTP side, `feed_list` the parsing.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tokio::sync::{Notify, watch};
use tokio::time::Instant;

use super::cmdb::Table;
use super::feed_list::{default_max_body, entry_limit, entry_valid, parse_list};
use super::state::FortiGateState;
use super::version::FosVersion;

/// How many poll records a device keeps.
const POLL_LOG_CAPACITY: usize = 10_000;

/// Scenario knobs for feed polling (`feeds:` in a FortiGate scenario).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FeedSettings {
    /// Milliseconds one `refresh-rate` minute lasts (60,000 = real time; tests shrink it).
    pub minute_ms: u64,
    /// Whether feed-mode resources are pulled at all (off: they stay `unavailable`).
    pub poll: bool,
    /// Entry limit: per list before 7.4.4, a budget shared by every feed of one type from
    /// 7.4.4 (default: the version's, see [`entry_limit`]).
    pub entry_limit: Option<usize>,
    /// Largest list body accepted (default: 10 MB before 7.4.4, 32 MB from 7.4.4).
    pub max_body_bytes: Option<usize>,
    /// Timeout of one pull.
    pub timeout_ms: u64,
    /// Extra CA certificates (PEM bundle) the device trusts when it verifies a feed server.
    pub ca_pem: Option<String>,
    /// Source address of pulls when a resource's `source-ip` is unset (a 127.0.0.x on
    /// loopback, so a list server can tell devices apart).
    pub source_ip: Option<IpAddr>,
}

impl Default for FeedSettings {
    fn default() -> Self {
        Self {
            minute_ms: 60_000,
            poll: true,
            entry_limit: None,
            max_body_bytes: None,
            timeout_ms: 10_000,
            ca_pem: None,
            source_ip: None,
        }
    }
}

/// A feed by (VDOM, name).
pub type FeedKey = (String, String);

/// Why a pull failed, as entry-list shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PullError {
    /// Text for `error`.
    pub error: String,
    /// `error_code`. The numbers FortiOS uses are UNCONFIRMED; these are the simulator's
    /// (see the `CODE_*` constants).
    pub error_code: i64,
    /// `http_status_code` when the server answered.
    pub http_status_code: Option<u16>,
}

/// The server could not be reached.
pub const CODE_CONNECT: i64 = 1;
/// The TLS handshake or certificate check failed.
pub const CODE_TLS: i64 = 2;
/// The server answered with a status other than 200 (redirects are not followed).
pub const CODE_HTTP: i64 = 3;
/// The pull timed out.
pub const CODE_TIMEOUT: i64 = 4;
/// The body was larger than the device accepts.
pub const CODE_TOO_LARGE: i64 = 5;
/// The resource is not an http(s) URL, or the source address cannot be used.
pub const CODE_CONFIG: i64 = 6;

/// What a device knows about one feed.
#[derive(Debug, Clone, Default)]
pub struct FeedState {
    /// The list (valid and invalid entries, in order, after truncation).
    pub entries: Vec<String>,
    /// More entries than the limit were offered.
    pub overflow: bool,
    /// A pull has succeeded at least once.
    pub downloaded: bool,
    /// The last pull's failure (None after a success).
    pub error: Option<PullError>,
    /// Unix seconds of the last attempt, success and content change (0 = never).
    pub conn_attempt_time: i64,
    /// See `conn_attempt_time`.
    pub last_conn_success_time: i64,
    /// See `conn_attempt_time`.
    pub last_content_update_time: i64,
    /// The configuration the last pull started with (a change means a new pull).
    polled_config: Option<Value>,
    next_due: Option<Instant>,
    refresh_requested: bool,
    in_flight: bool,
}

/// One pull, for tests: where it went, how, and what came of it. Never holds a password.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PollRecord {
    /// VDOM of the feed.
    pub vdom: String,
    /// Feed name.
    pub feed: String,
    /// The URL without query or user info (a query may hold a token).
    pub url: String,
    /// Source address the pull was bound to.
    pub source: Option<IpAddr>,
    /// The user name sent with HTTP basic auth.
    pub username: Option<String>,
    /// HTTP status the server answered.
    pub http_status: Option<u16>,
    /// Why the pull failed (None on success).
    pub error: Option<String>,
    /// Entries the feed holds after this pull.
    pub entries: usize,
}

/// Wake-ups between the request side and the poller; survive a scenario load.
#[derive(Debug)]
pub struct FeedSignals {
    /// Something changed that may make a pull due (config write, refresh, pull done).
    pub wake: Notify,
    /// Count of finished pulls, for waiting in tests.
    pub polled: watch::Sender<u64>,
}

impl Default for FeedSignals {
    fn default() -> Self {
        Self {
            wake: Notify::new(),
            polled: watch::Sender::new(0),
        }
    }
}

/// How a pull checks the server certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verify {
    /// No check (`server-identity-check none`).
    None,
    /// Chain and host name.
    Full,
}

/// Everything one pull needs, taken from the state so the HTTP side runs unlocked.
#[derive(Debug, Clone)]
pub struct PollJob {
    /// The feed.
    pub key: FeedKey,
    /// `resource`.
    pub url: String,
    /// `username` (empty = no basic auth).
    pub username: String,
    /// `password`.
    pub password: String,
    /// `user-agent`.
    pub user_agent: String,
    /// Certificate check.
    pub verify: Verify,
    /// Extra trusted CAs.
    pub ca_pem: Option<String>,
    /// Source address.
    pub source: Option<IpAddr>,
    /// Pull timeout.
    pub timeout: Duration,
    /// Body cap in bytes.
    pub max_body: usize,
    /// When the next periodic pull is due after this one.
    pub period: Duration,
}

fn text<'a>(object: &'a Value, key: &str) -> &'a str {
    object[key].as_str().unwrap_or_default()
}

/// Whether the device pulls this resource: enabled, feed mode (push arrived in 7.2.1; before
/// it every resource is a feed), with a URL.
fn pulled(object: &Value) -> bool {
    text(object, "status") != "disable"
        && text(object, "update-method") != "push"
        && !text(object, "resource").is_empty()
}

/// How `server-identity-check` reads on this version.
fn verify(version: FosVersion, object: &Value) -> Verify {
    if !version.server_identity_check() {
        // Versions without the field: whether they check the certificate is UNCONFIRMED; the
        // simulator checks it fully, which never lets a pull through that a device refuses.
        return Verify::Full;
    }
    match text(object, "server-identity-check") {
        "" | "none" => Verify::None,
        // `basic` presumably checks the chain without the host name; that is UNCONFIRMED, so
        // it is read as `full`, which never accepts a certificate a device would refuse.
        _ => Verify::Full,
    }
}

impl FortiGateState {
    /// The entry limit that applies to `key` now: per list before 7.4.4; from 7.4.4 the
    /// type's budget less what the other feeds of that type hold, so the feed changed last is
    /// the one truncated ("the most recently added entries are truncated", facts §8).
    fn room_for(&self, key: &FeedKey) -> usize {
        let kind = self.feed_object(key).map(|o| text(&o, "type").to_string());
        let kind = kind.unwrap_or_default();
        let limit = self
            .feed_settings
            .entry_limit
            .unwrap_or_else(|| entry_limit(self.version, &kind));
        if !self.version.global_feed_limits() {
            return limit;
        }
        let used: usize = self
            .feeds
            .iter()
            .filter(|(k, _)| *k != key)
            .filter(|(k, _)| {
                self.feed_object(k)
                    .is_some_and(|o| text(&o, "type") == kind)
            })
            .map(|(_, f)| f.entries.len())
            .sum();
        limit.saturating_sub(used)
    }

    fn feed_object(&self, (vdom, name): &FeedKey) -> Option<Value> {
        self.vdoms
            .get(vdom)?
            .get(Table::ExternalResource, name)
            .cloned()
    }

    /// Replaces a feed's list (from a pull or a push), truncated to its limit.
    pub fn set_feed_entries(&mut self, key: &FeedKey, mut entries: Vec<String>, now_unix: i64) {
        let room = self.room_for(key);
        let overflow = entries.len() > room;
        entries.truncate(room);
        let feed = self.feeds.entry(key.clone()).or_default();
        if feed.entries != entries {
            feed.last_content_update_time = now_unix;
        }
        feed.entries = entries;
        feed.overflow = overflow;
    }

    /// Asks for a pull of `key` now (monitor `refresh`).
    pub fn request_refresh(&mut self, key: &FeedKey) {
        self.feeds.entry(key.clone()).or_default().refresh_requested = true;
        self.feed_signals.wake.notify_one();
    }

    /// Whether a pull of `key` is queued or running.
    pub fn refresh_pending(&self, key: &FeedKey) -> bool {
        self.feeds
            .get(key)
            .is_some_and(|f| f.refresh_requested || f.in_flight)
    }

    /// The pulls due at `now` (marked running) and when the next one falls due.
    pub fn plan_polls(&mut self, now: Instant) -> (Vec<PollJob>, Option<Instant>) {
        let mut jobs = Vec::new();
        let mut next: Option<Instant> = None;
        let mut live = BTreeSet::new();
        let settings = self.feed_settings.clone();
        let minute = Duration::from_millis(settings.minute_ms.max(1));
        let version = self.version;
        let Self { vdoms, feeds, .. } = self;
        for (vdom, tables) in vdoms.iter() {
            for object in tables.list(Table::ExternalResource) {
                let key = (vdom.clone(), text(object, "name").to_string());
                live.insert(key.clone());
                let feed = feeds.entry(key.clone()).or_default();
                if !settings.poll || !pulled(object) {
                    feed.polled_config = None;
                    feed.next_due = None;
                    feed.refresh_requested = false;
                    continue;
                }
                if feed.in_flight {
                    continue;
                }
                let due = feed.polled_config.as_ref() != Some(object)
                    || feed.refresh_requested
                    || feed.next_due.is_some_and(|d| d <= now);
                if !due {
                    next = match (next, feed.next_due) {
                        (Some(a), Some(b)) => Some(a.min(b)),
                        (a, b) => a.or(b),
                    };
                    continue;
                }
                feed.in_flight = true;
                feed.refresh_requested = false;
                feed.polled_config = Some(object.clone());
                let rate = object["refresh-rate"].as_u64().unwrap_or(5).max(1);
                let source = object["source-ip"]
                    .as_str()
                    .and_then(|s| s.parse::<IpAddr>().ok())
                    .filter(|ip| *ip != IpAddr::V4(Ipv4Addr::UNSPECIFIED))
                    .or(settings.source_ip);
                jobs.push(PollJob {
                    key,
                    url: text(object, "resource").to_string(),
                    username: text(object, "username").to_string(),
                    password: text(object, "password").to_string(),
                    user_agent: text(object, "user-agent").to_string(),
                    verify: verify(version, object),
                    ca_pem: settings.ca_pem.clone(),
                    source,
                    timeout: Duration::from_millis(settings.timeout_ms.max(1)),
                    max_body: settings
                        .max_body_bytes
                        .unwrap_or_else(|| default_max_body(version)),
                    period: minute.saturating_mul(u32::try_from(rate).unwrap_or(u32::MAX)),
                });
            }
        }
        feeds.retain(|k, _| live.contains(k));
        (jobs, next)
    }

    /// Records a finished pull: a success replaces the list, a failure keeps the last good
    /// one (as FortiOS does) and shows the error.
    pub fn finish_poll(
        &mut self,
        job: &PollJob,
        outcome: Result<String, PullError>,
        record: PollRecord,
        now: Instant,
        now_unix: i64,
    ) {
        let mut record = record;
        let mut pulled = None;
        if let Some(feed) = self.feeds.get_mut(&job.key) {
            feed.in_flight = false;
            feed.next_due = Some(now + job.period);
            feed.conn_attempt_time = now_unix;
            match outcome {
                Ok(body) => {
                    feed.error = None;
                    feed.downloaded = true;
                    feed.last_conn_success_time = now_unix;
                    pulled = Some(parse_list(&body));
                }
                Err(e) => feed.error = Some(e),
            }
        }
        if let Some(entries) = pulled {
            self.set_feed_entries(&job.key, entries, now_unix);
        }
        record.entries = self.feeds.get(&job.key).map_or(0, |f| f.entries.len());
        if self.feed_polls.len() == POLL_LOG_CAPACITY {
            self.feed_polls.pop_front();
        }
        self.feed_polls.push_back(record);
    }

    /// The `results` of `monitor/system/external-resource/entry-list` for a feed.
    pub fn entry_list(&self, key: &FeedKey, status_only: bool, counts_only: bool) -> Option<Value> {
        let object = self.feed_object(key)?;
        let empty = FeedState::default();
        let feed = self.feeds.get(key).unwrap_or(&empty);
        let push = text(&object, "update-method") == "push";
        let status = if text(&object, "status") == "disable" {
            "disable"
        } else if push {
            "success"
        } else if feed.error.is_some() {
            "error"
        } else if feed.downloaded {
            "success"
        } else {
            "unavailable"
        };
        let file = if push || feed.downloaded {
            "downloaded"
        } else {
            "unavailable"
        };
        let mut results = json!({
            "status": status,
            "resource_file_status": file,
            "conn_attempt_time": feed.conn_attempt_time,
            "last_conn_success_time": feed.last_conn_success_time,
            "last_content_update_time": feed.last_content_update_time,
        });
        if let Some(e) = &feed.error {
            results["error"] = json!(e.error);
            results["error_code"] = json!(e.error_code);
            results["http_status_code"] = json!(e.http_status_code.unwrap_or(0));
        }
        if status_only {
            return Some(results);
        }
        let kind = text(&object, "type");
        let valid = feed.entries.iter().filter(|e| entry_valid(kind, e)).count();
        results["valid_count"] = json!(valid);
        results["invalid_count"] = json!(feed.entries.len() - valid);
        results["overflow"] = json!(feed.overflow);
        if !counts_only {
            let listed: Vec<Value> = feed
                .entries
                .iter()
                .map(|e| json!({"entry": e, "valid": entry_valid(kind, e)}))
                .collect();
            results["entries"] = Value::Array(listed);
        }
        Some(results)
    }

    /// Pull records of one feed (oldest first).
    pub fn polls_of(&self, key: &FeedKey) -> Vec<PollRecord> {
        self.feed_polls
            .iter()
            .filter(|r| r.vdom == key.0 && r.feed == key.1)
            .cloned()
            .collect()
    }
}

/// Feeds by key, as the state keeps them.
pub type Feeds = BTreeMap<FeedKey, FeedState>;
