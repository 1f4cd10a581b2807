//! The simulated FortiGate's external resources against the facts page (§3.4, §4, §8): a
//! feed-mode resource really pulls its URL (here a tiny loopback server playing fortisync's
//! list), keeps the last good list when a pull fails, parses and truncates as FortiOS does;
//! push-mode resources hold what `dynamic` built; FortiManager's proxy reaches both.

mod support;

use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use fortisync::sim::fortios::{FeedSettings, FortiGateScenario};
use fortisync::sim::{Scenario, Simulator};
use reqwest::Method;
use serde_json::{Value, json};
use support::sim_client::{client, ip, json as body_of, send};

const KEY: &str = "k3y-for-api-user-0000000000000";
/// Long enough that no periodic pull lands inside a test that does not ask for one.
const HOURLY: u64 = 60;
/// How long a test waits for a pull it expects (a bound, not a latency assertion).
const WAIT: Duration = Duration::from_secs(5);

/// One request the list server saw.
#[derive(Debug, Clone)]
struct Hit {
    peer: IpAddr,
    authorization: Option<String>,
    user_agent: Option<String>,
}

#[derive(Default)]
struct ListState {
    body: String,
    /// `Authorization` header the server insists on (None = open).
    required: Option<String>,
    hits: Vec<Hit>,
}

/// A loopback HTTP server playing the list URL fortisync serves.
struct ListServer {
    url: String,
    state: Arc<Mutex<ListState>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for ListServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn serve_list(
    State(state): State<Arc<Mutex<ListState>>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
) -> Response {
    let header = |n: &str| {
        headers
            .get(n)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    let mut s = state.lock().unwrap();
    let authorization = header("authorization");
    s.hits.push(Hit {
        peer: peer.ip(),
        authorization: authorization.clone(),
        user_agent: header("user-agent"),
    });
    if s.required.is_some() && s.required != authorization {
        return StatusCode::UNAUTHORIZED.into_response();
    }
    s.body.clone().into_response()
}

impl ListServer {
    async fn start(body: &str) -> Self {
        let state = Arc::new(Mutex::new(ListState {
            body: body.into(),
            ..ListState::default()
        }));
        let app = Router::new()
            .route("/list", axum::routing::get(serve_list))
            .route(
                "/moved",
                axum::routing::get(|| async {
                    (StatusCode::FOUND, [("location", "/list")]).into_response()
                }),
            )
            .with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind list server");
        let url = format!("http://{}/list", listener.local_addr().expect("addr"));
        let task = tokio::spawn(async move {
            let _ = axum::serve(
                listener,
                app.into_make_service_with_connect_info::<SocketAddr>(),
            )
            .await;
        });
        Self { url, state, task }
    }

    fn set_body(&self, body: &str) {
        self.state.lock().unwrap().body = body.into();
    }

    fn require_basic(&self, user: &str, password: &str) {
        self.state.lock().unwrap().required = Some(basic(user, password));
    }

    fn hits(&self) -> Vec<Hit> {
        self.state.lock().unwrap().hits.clone()
    }
}

/// `Basic base64(user:password)`, written out so the test needs no base64 crate.
fn basic(user: &str, password: &str) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let input = format!("{user}:{password}").into_bytes();
    let mut out = String::new();
    for chunk in input.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    format!("Basic {out}")
}

fn fortigate(version: &str, feeds: FeedSettings) -> FortiGateScenario {
    let yaml = format!(
        r#"
name: fw
version: "{version}"
api_users:
  - name: fortisync
    key: {KEY}
    trusthosts: ["127.0.0.0/24"]
admins:
  - name: admin
    password: s3cret
"#
    );
    let mut fg: FortiGateScenario = fortisync::yaml::from_str(&yaml).expect("scenario");
    fg.feeds = feeds;
    fg
}

async fn sim(fg: FortiGateScenario) -> Simulator {
    Simulator::start(Scenario {
        fortigates: vec![fg],
        ..Scenario::default()
    })
    .await
    .expect("simulator starts")
}

struct Device {
    sim: Simulator,
    http: reqwest::Client,
}

impl Device {
    async fn start(version: &str, feeds: FeedSettings) -> Self {
        let sim = sim(fortigate(version, feeds)).await;
        let http = client(sim.fortigate("fw").ca_pem(), ip(1));
        Self { sim, http }
    }

    async fn call(&self, method: Method, path: &str, body: Option<Value>) -> (u16, Value) {
        let url = format!("{}{path}", self.sim.fortigate("fw").url());
        body_of(send(&self.http, method, &url, Some(KEY), body).await).await
    }

    async fn create(&self, feed: Value) -> u16 {
        self.call(
            Method::POST,
            "/api/v2/cmdb/system/external-resource",
            Some(feed),
        )
        .await
        .0
    }

    async fn update(&self, name: &str, fields: Value) -> u16 {
        let path = format!("/api/v2/cmdb/system/external-resource/{name}");
        self.call(Method::PUT, &path, Some(fields)).await.0
    }

    async fn entry_list(&self, query: &str) -> (u16, Value) {
        let path = format!("/api/v2/monitor/system/external-resource/entry-list?{query}");
        let (status, body) = self.call(Method::GET, &path, None).await;
        (status, body["results"].clone())
    }

    async fn dynamic(&self, commands: Value) -> (u16, Value) {
        self.call(
            Method::POST,
            "/api/v2/monitor/system/external-resource/dynamic",
            Some(json!({"commands": commands})),
        )
        .await
    }

    async fn polls(&self, feed: &str, count: usize) -> Vec<fortisync::sim::fortios::PollRecord> {
        self.sim
            .fortigate("fw")
            .wait_for_polls("root", feed, count, WAIT)
            .await
    }
}

fn address_feed(name: &str, url: &str, rate: u64) -> Value {
    json!({"name": name, "type": "address", "resource": url, "refresh-rate": rate})
}

fn entries(results: &Value) -> Vec<(String, bool)> {
    results["entries"]
        .as_array()
        .expect("entries")
        .iter()
        .map(|e| {
            (
                e["entry"].as_str().unwrap().to_string(),
                e["valid"].as_bool().unwrap(),
            )
        })
        .collect()
}

#[tokio::test]
async fn a_feed_is_pulled_on_create_from_the_configured_source_with_its_user_agent() {
    let list = ListServer::start("192.0.2.1\n10.0.0.0/24\n").await;
    let dev = Device::start(
        "7.4.3",
        FeedSettings {
            source_ip: Some(ip(7)),
            ..FeedSettings::default()
        },
    )
    .await;
    assert_eq!(
        dev.create(address_feed("edl", &list.url, HOURLY)).await,
        200
    );
    let polls = dev.polls("edl", 1).await;
    assert_eq!(polls.len(), 1);
    assert_eq!(
        (
            polls[0].http_status,
            polls[0].error.clone(),
            polls[0].entries
        ),
        (Some(200), None, 2)
    );
    assert_eq!(polls[0].source, Some(ip(7)));
    let hits = list.hits();
    assert_eq!(hits.len(), 1, "one pull on create, none before");
    assert_eq!(hits[0].peer, ip(7));
    assert_eq!(hits[0].user_agent.as_deref(), Some("curl/7.58.0"));
    assert_eq!(hits[0].authorization, None, "no username, no basic auth");
    assert_eq!(
        dev.sim.fortigate("fw").feed_entries("root", "edl"),
        ["192.0.2.1", "10.0.0.0/24"]
    );
}

#[tokio::test]
async fn entry_list_shows_the_pulled_list_with_counts_and_timestamps() {
    let list = ListServer::start("192.0.2.1\n10.0.0.0/24\n2001:db8::/32\n").await;
    let dev = Device::start("7.4.3", FeedSettings::default()).await;
    dev.create(address_feed("edl", &list.url, HOURLY)).await;
    dev.polls("edl", 1).await;
    let (status, results) = dev.entry_list("mkey=edl").await;
    assert_eq!(status, 200);
    assert_eq!(
        (
            results["status"].clone(),
            results["resource_file_status"].clone()
        ),
        (json!("success"), json!("downloaded"))
    );
    assert_eq!(
        (
            results["valid_count"].clone(),
            results["invalid_count"].clone(),
            results["overflow"].clone()
        ),
        (json!(3), json!(0), json!(false))
    );
    assert_eq!(
        entries(&results),
        [
            ("192.0.2.1".to_string(), true),
            ("10.0.0.0/24".to_string(), true),
            ("2001:db8::/32".to_string(), true)
        ]
    );
    for field in [
        "conn_attempt_time",
        "last_conn_success_time",
        "last_content_update_time",
    ] {
        assert!(results[field].as_i64().unwrap() > 0, "{field}: {results}");
    }
    assert!(results.get("error").is_none(), "no error after a success");
    assert_eq!(
        dev.sim.fortigate("fw").feed_state("root", "edl"),
        Some(results),
        "the handle reads what the device answers"
    );
}

#[tokio::test]
async fn entry_list_honours_status_only_and_counts_only() {
    let list = ListServer::start("192.0.2.1\nbogus\n").await;
    let dev = Device::start("7.4.3", FeedSettings::default()).await;
    dev.create(address_feed("edl", &list.url, HOURLY)).await;
    dev.polls("edl", 1).await;
    let (_, status_only) = dev.entry_list("mkey=edl&status_only=true").await;
    assert_eq!(status_only["status"], "success");
    for absent in ["entries", "valid_count", "invalid_count", "overflow"] {
        assert!(status_only.get(absent).is_none(), "status_only: {absent}");
    }
    let (_, counts_only) = dev.entry_list("mkey=edl&counts_only=true").await;
    assert_eq!(
        (
            counts_only["valid_count"].clone(),
            counts_only["invalid_count"].clone()
        ),
        (json!(1), json!(1))
    );
    assert!(counts_only.get("entries").is_none(), "counts_only: entries");
    let (missing, _) = dev.entry_list("mkey=ghost").await;
    assert_eq!(missing, 404);
}

#[tokio::test]
async fn refresh_pulls_again_within_a_second() {
    let list = ListServer::start("192.0.2.1\n").await;
    let dev = Device::start("7.4.3", FeedSettings::default()).await;
    dev.create(address_feed("edl", &list.url, HOURLY)).await;
    dev.polls("edl", 1).await;
    list.set_body("198.51.100.7\n");
    let (status, body) = dev
        .call(
            Method::POST,
            "/api/v2/monitor/system/external-resource/refresh",
            Some(json!({"mkey": "edl"})),
        )
        .await;
    assert_eq!(
        (status, body["results"]["status"].clone()),
        (200, json!("start"))
    );
    let polls = dev
        .sim
        .fortigate("fw")
        .wait_for_polls("root", "edl", 2, Duration::from_secs(1))
        .await;
    assert_eq!(polls.len(), 2, "the refresh pulled within a second");
    assert_eq!(
        dev.sim.fortigate("fw").feed_entries("root", "edl"),
        ["198.51.100.7"]
    );
    let (_, body) = dev
        .call(
            Method::POST,
            "/api/v2/monitor/system/external-resource/refresh",
            Some(json!({"mkey": "edl", "check_status_only": true})),
        )
        .await;
    assert_eq!(body["results"]["status"], "finished");
    assert_eq!(list.hits().len(), 2, "a status check pulls nothing");
}

#[tokio::test]
async fn pulls_repeat_every_refresh_rate_in_scaled_minutes() {
    let list = ListServer::start("192.0.2.1\n").await;
    // One "minute" is 50 ms: refresh-rate 1 pulls about twenty times a second.
    let dev = Device::start(
        "7.4.3",
        FeedSettings {
            minute_ms: 50,
            ..FeedSettings::default()
        },
    )
    .await;
    dev.create(address_feed("edl", &list.url, 1)).await;
    let polls = dev.polls("edl", 3).await;
    assert!(
        polls.len() >= 3,
        "three pulls without any request: {polls:?}"
    );
    assert!(polls.iter().all(|p| p.http_status == Some(200)));
    let other = ListServer::start("192.0.2.2\n").await;
    let slow =
        json!({"name": "slow", "type": "address", "resource": other.url, "refresh-rate": HOURLY});
    dev.create(slow).await;
    dev.polls("slow", 1).await;
    dev.polls("edl", polls.len() + 3).await;
    assert_eq!(
        other.hits().len(),
        1,
        "a 60-minute feed is not pulled again within the 1-minute feed's next pulls"
    );
}

#[tokio::test]
async fn basic_auth_is_sent_and_a_wrong_password_keeps_the_last_good_list() {
    let list = ListServer::start("192.0.2.1\n192.0.2.2\n").await;
    list.require_basic("feeduser", "right-pw");
    let dev = Device::start("7.4.3", FeedSettings::default()).await;
    let mut feed = address_feed("edl", &list.url, HOURLY);
    feed["username"] = json!("feeduser");
    feed["password"] = json!("right-pw");
    assert_eq!(dev.create(feed).await, 200);
    let polls = dev.polls("edl", 1).await;
    assert_eq!(
        (polls[0].username.as_deref(), polls[0].http_status),
        (Some("feeduser"), Some(200))
    );
    assert_eq!(
        list.hits()[0].authorization.as_deref(),
        Some(basic("feeduser", "right-pw").as_str())
    );
    let (_, good) = dev.entry_list("mkey=edl").await;
    list.set_body("203.0.113.9\n");
    assert_eq!(
        dev.update("edl", json!({"password": "wrong-pw"})).await,
        200
    );
    let polls = dev.polls("edl", 2).await;
    assert_eq!(polls.len(), 2, "an update pulls at once");
    assert_eq!(
        (polls[1].http_status, polls[1].error.as_deref()),
        (Some(401), Some("HTTP status 401"))
    );
    let (_, failed) = dev.entry_list("mkey=edl").await;
    assert_eq!(failed["status"], "error");
    assert_eq!(failed["http_status_code"], 401);
    assert_eq!(failed["error"], "HTTP status 401");
    assert!(failed["error_code"].as_i64().unwrap() != 0);
    assert!(
        failed["conn_attempt_time"].as_i64().unwrap()
            >= good["conn_attempt_time"].as_i64().unwrap()
    );
    for kept in [
        "last_conn_success_time",
        "last_content_update_time",
        "entries",
        "valid_count",
        "resource_file_status",
    ] {
        assert_eq!(
            failed[kept], good[kept],
            "{kept} stays from the last success"
        );
    }
    let records =
        serde_json::to_string(&dev.sim.fortigate("fw").feed_polls("root", "edl")).expect("records");
    assert!(!records.contains("right-pw") && !records.contains("wrong-pw"));
}

#[tokio::test]
async fn invalid_lines_are_counted_and_blank_lines_and_comments_are_not_returned() {
    let body = "# fortisync list\n192.0.2.1\n\n10.0.0.1-10.0.0.9\nnot-an-ip\n  # indented comment\n10.0.0.9-10.0.0.1\n2001:db8::1\n";
    let list = ListServer::start(body).await;
    let dev = Device::start("7.4.3", FeedSettings::default()).await;
    dev.create(address_feed("edl", &list.url, HOURLY)).await;
    dev.polls("edl", 1).await;
    let (_, results) = dev.entry_list("mkey=edl").await;
    assert_eq!(
        entries(&results),
        [
            ("192.0.2.1".to_string(), true),
            ("10.0.0.1-10.0.0.9".to_string(), true),
            ("not-an-ip".to_string(), false),
            ("10.0.0.9-10.0.0.1".to_string(), false),
            ("2001:db8::1".to_string(), true)
        ]
    );
    assert_eq!(
        (
            results["valid_count"].clone(),
            results["invalid_count"].clone()
        ),
        (json!(3), json!(2))
    );
}

#[tokio::test]
async fn a_list_over_the_scenario_entry_limit_is_truncated_and_flagged() {
    let list = ListServer::start("192.0.2.1\n192.0.2.2\n192.0.2.3\n192.0.2.4\n192.0.2.5\n").await;
    let dev = Device::start(
        "7.4.3",
        FeedSettings {
            entry_limit: Some(3),
            ..FeedSettings::default()
        },
    )
    .await;
    dev.create(address_feed("edl", &list.url, HOURLY)).await;
    dev.polls("edl", 1).await;
    let (_, results) = dev.entry_list("mkey=edl").await;
    assert_eq!(results["overflow"], true);
    assert_eq!(results["valid_count"], 3);
    assert_eq!(
        dev.sim.fortigate("fw").feed_entries("root", "edl"),
        ["192.0.2.1", "192.0.2.2", "192.0.2.3"]
    );
}

#[tokio::test]
async fn a_list_over_the_body_cap_fails_the_pull_and_the_last_good_list_stays() {
    let list = ListServer::start("192.0.2.1\n").await;
    let dev = Device::start(
        "7.4.3",
        FeedSettings {
            max_body_bytes: Some(16),
            ..FeedSettings::default()
        },
    )
    .await;
    dev.create(address_feed("edl", &list.url, HOURLY)).await;
    dev.polls("edl", 1).await;
    list.set_body("192.0.2.1\n192.0.2.2\n192.0.2.3\n");
    dev.call(
        Method::POST,
        "/api/v2/monitor/system/external-resource/refresh",
        Some(json!({"mkey": "edl"})),
    )
    .await;
    let polls = dev.polls("edl", 2).await;
    assert_eq!(
        polls[1].error.as_deref(),
        Some("resource file larger than 16 bytes")
    );
    let (_, results) = dev.entry_list("mkey=edl").await;
    assert_eq!(results["status"], "error");
    assert_eq!(
        dev.sim.fortigate("fw").feed_entries("root", "edl"),
        ["192.0.2.1"]
    );
}

#[tokio::test]
async fn from_7_4_4_the_entry_limit_is_a_budget_the_feed_added_last_is_truncated_in() {
    let first = ListServer::start("192.0.2.1\n192.0.2.2\n").await;
    let second = ListServer::start("198.51.100.1\n198.51.100.2\n").await;
    let dev = Device::start(
        "7.4.4",
        FeedSettings {
            entry_limit: Some(3),
            ..FeedSettings::default()
        },
    )
    .await;
    dev.create(address_feed("a", &first.url, HOURLY)).await;
    dev.polls("a", 1).await;
    dev.create(address_feed("b", &second.url, HOURLY)).await;
    dev.polls("b", 1).await;
    let fg = dev.sim.fortigate("fw");
    assert_eq!(fg.feed_entries("root", "a"), ["192.0.2.1", "192.0.2.2"]);
    assert_eq!(fg.feed_entries("root", "b"), ["198.51.100.1"]);
    assert_eq!(
        (
            fg.feed_state("root", "a").unwrap()["overflow"].clone(),
            fg.feed_state("root", "b").unwrap()["overflow"].clone()
        ),
        (json!(false), json!(true))
    );
}

#[tokio::test]
async fn a_redirect_is_not_followed_and_an_unreachable_server_is_an_error() {
    let list = ListServer::start("192.0.2.1\n").await;
    let dev = Device::start("7.4.3", FeedSettings::default()).await;
    let moved = list.url.replace("/list", "/moved");
    dev.create(address_feed("moved", &moved, HOURLY)).await;
    let polls = dev.polls("moved", 1).await;
    assert_eq!(polls[0].http_status, Some(302));
    assert!(
        list.hits().is_empty(),
        "the redirect target was not fetched"
    );
    let (_, results) = dev.entry_list("mkey=moved").await;
    assert_eq!(
        (
            results["status"].clone(),
            results["http_status_code"].clone()
        ),
        (json!("error"), json!(302))
    );
    // Nothing listens there once the listener is dropped.
    let closed = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/list", closed.local_addr().unwrap());
    drop(closed);
    dev.create(address_feed("edl", &url, HOURLY)).await;
    let polls = dev.polls("edl", 1).await;
    assert_eq!(polls[0].http_status, None);
    assert!(
        polls[0]
            .error
            .as_deref()
            .unwrap()
            .starts_with("connection failed")
    );
    let (_, results) = dev.entry_list("mkey=edl").await;
    assert_eq!(
        (
            results["status"].clone(),
            results["resource_file_status"].clone(),
            results["last_conn_success_time"].clone(),
            results["entries"].clone()
        ),
        (json!("error"), json!("unavailable"), json!(0), json!([]))
    );
}

#[tokio::test]
async fn server_identity_check_full_needs_a_trusted_certificate() {
    // Another simulated FortiGate's HTTPS port plays an HTTPS list server with a
    // self-signed certificate: its /list answers 404, so a pull that gets past TLS ends there.
    let https = sim(fortigate("7.4.3", FeedSettings::default())).await;
    let url = format!("{}/list", https.fortigate("fw").url());
    let ca = https.fortigate("fw").ca_pem().map(str::to_string);
    for (ca_pem, outcome) in [(None, None), (ca, Some(404))] {
        let dev = Device::start(
            "7.4.3",
            FeedSettings {
                ca_pem: ca_pem.clone(),
                ..FeedSettings::default()
            },
        )
        .await;
        let mut feed = address_feed("edl", &url, HOURLY);
        feed["server-identity-check"] = json!("full");
        dev.create(feed).await;
        let polls = dev.polls("edl", 1).await;
        assert_eq!(
            polls[0].http_status,
            outcome,
            "trusting the CA: {}",
            ca_pem.is_some()
        );
        if outcome.is_none() {
            assert!(
                polls[0]
                    .error
                    .as_deref()
                    .unwrap()
                    .starts_with("TLS failure")
            );
        }
        let mut none = address_feed("lax", &url, HOURLY);
        none["server-identity-check"] = json!("none");
        dev.create(none).await;
        assert_eq!(
            dev.sim
                .fortigate("fw")
                .wait_for_polls("root", "lax", 1, WAIT)
                .await[0]
                .http_status,
            Some(404),
            "`none` checks nothing"
        );
    }
}

#[tokio::test]
async fn dynamic_add_remove_and_snapshot_build_a_push_feed_and_nothing_is_pulled() {
    let dev = Device::start("7.4.3", FeedSettings::default()).await;
    let push = json!({"name": "edl", "type": "address", "update-method": "push", "resource": "http://127.0.0.1:9/unused"});
    assert_eq!(dev.create(push).await, 200);
    let (s, _) = dev
        .dynamic(json!([{"name": "edl", "command": "add", "entries": ["192.0.2.1", "192.0.2.2", "bogus"]}]))
        .await;
    assert_eq!(s, 200);
    dev.dynamic(json!([{"name": "edl", "command": "remove", "entries": ["192.0.2.1"]}]))
        .await;
    let fg = dev.sim.fortigate("fw");
    assert_eq!(fg.feed_entries("root", "edl"), ["192.0.2.2", "bogus"]);
    let (_, results) = dev.entry_list("mkey=edl").await;
    assert_eq!(
        (
            results["status"].clone(),
            results["valid_count"].clone(),
            results["invalid_count"].clone()
        ),
        (json!("success"), json!(1), json!(1))
    );
    dev.dynamic(json!([{"name": "edl", "command": "snapshot", "entries": ["198.51.100.1", "198.51.100.2"]}]))
        .await;
    assert_eq!(
        fg.feed_entries("root", "edl"),
        ["198.51.100.1", "198.51.100.2"]
    );
    // A batch naming a feed-mode resource is refused whole: the push feed is not touched.
    let list = ListServer::start("203.0.113.1\n").await;
    dev.create(address_feed("pulled", &list.url, HOURLY)).await;
    dev.polls("pulled", 1).await;
    let (s, b) = dev
        .dynamic(json!([
            {"name": "edl", "command": "add", "entries": ["203.0.113.50"]},
            {"name": "pulled", "command": "add", "entries": ["203.0.113.51"]}
        ]))
        .await;
    assert_eq!((s, b["error"].clone()), (500, json!(-651)));
    assert_eq!(
        fg.feed_entries("root", "edl"),
        ["198.51.100.1", "198.51.100.2"]
    );
    assert_eq!(fg.feed_entries("root", "pulled"), ["203.0.113.1"]);
    assert!(
        fg.feed_polls("root", "edl").is_empty(),
        "a push feed is never pulled"
    );
}

#[tokio::test]
async fn one_dynamic_call_carries_the_commands_of_several_push_feeds() {
    // Each command names its feed (facts §4): one call updates every feed it names, in order.
    let dev = Device::start("7.4.3", FeedSettings::default()).await;
    for name in ["a", "b"] {
        let push = json!({"name": name, "type": "address", "update-method": "push", "resource": "http://127.0.0.1:9/unused"});
        assert_eq!(dev.create(push).await, 200);
    }
    let (s, _) = dev
        .dynamic(json!([
            {"name": "a", "command": "snapshot", "entries": ["192.0.2.1", "192.0.2.2"]},
            {"name": "b", "command": "add", "entries": ["198.51.100.1"]},
            {"name": "a", "command": "remove", "entries": ["192.0.2.1"]}
        ]))
        .await;
    assert_eq!(s, 200);
    let fg = dev.sim.fortigate("fw");
    assert_eq!(fg.feed_entries("root", "a"), ["192.0.2.2"]);
    assert_eq!(fg.feed_entries("root", "b"), ["198.51.100.1"]);
}

#[tokio::test]
async fn dynamic_is_refused_on_7_0_where_every_resource_is_a_feed() {
    let list = ListServer::start("192.0.2.1\n").await;
    let dev = Device::start("7.0.12", FeedSettings::default()).await;
    let push =
        json!({"name": "p", "type": "address", "update-method": "push", "resource": list.url});
    assert_eq!(
        dev.create(push).await,
        500,
        "no update-method push before 7.2.1"
    );
    dev.create(address_feed("edl", &list.url, HOURLY)).await;
    dev.polls("edl", 1).await;
    let (s, _) = dev
        .dynamic(json!([{"name": "edl", "command": "add", "entries": ["198.51.100.1"]}]))
        .await;
    assert_eq!(s, 404, "the push API does not exist before 7.2.1");
    assert_eq!(
        dev.sim.fortigate("fw").feed_entries("root", "edl"),
        ["192.0.2.1"]
    );
}

#[tokio::test]
async fn the_fortimanager_proxy_reaches_refresh_entry_list_and_dynamic() {
    let list = ListServer::start("192.0.2.1\n").await;
    let yaml = format!(
        r#"
fortigates:
  - name: fw
    version: "7.4.3"
    objects:
      root:
        external_resources:
          - {{name: edl, type: address, resource: "{url}", refresh-rate: {HOURLY}}}
          - {{name: pushed, type: address, update-method: push, resource: "{url}"}}
fortimanagers:
  - name: fmg
    adoms:
      - name: root
        devices: [{{name: fw, serial: FGT60FTK20000001, version: "7.4.3"}}]
    admins:
      - {{userid: api, password: pw, rpc_permit: read-write, profile: Super_User}}
"#,
        url = list.url
    );
    let sim = Simulator::start(Scenario::from_yaml(&yaml).expect("scenario"))
        .await
        .expect("simulator");
    let fg = sim.fortigate("fw");
    assert_eq!(
        fg.wait_for_polls("root", "edl", 1, WAIT).await.len(),
        1,
        "initial feeds are pulled at start"
    );
    let fmg = sim.fortimanager("fmg");
    let http = client(fmg.ca_pem(), ip(2));
    let rpc = |session: Value, method: &str, params: Value| {
        let body = json!({"id": 1, "method": method, "params": [params], "session": session});
        let req = http.post(fmg.jsonrpc_url()).json(&body);
        async move {
            req.send()
                .await
                .expect("FortiManager answers")
                .json::<Value>()
                .await
                .expect("JSON")
        }
    };
    let login = rpc(
        Value::Null,
        "exec",
        json!({"url": "sys/login/user", "data": {"user": "api", "passwd": "pw"}}),
    )
    .await;
    let session = login["session"].clone();
    let proxy = |action: &str, resource: &str, payload: Option<Value>| {
        let mut data =
            json!({"target": ["adom/root/device/fw"], "action": action, "resource": resource});
        if let Some(p) = payload {
            data["payload"] = p;
        }
        rpc(
            session.clone(),
            "exec",
            json!({"url": "/sys/proxy/json", "data": data}),
        )
    };
    list.set_body("192.0.2.1\n192.0.2.99\n");
    let refresh = proxy(
        "post",
        "/api/v2/monitor/system/external-resource/refresh",
        Some(json!({"mkey": "edl"})),
    )
    .await;
    assert_eq!(
        refresh["result"][0]["data"][0]["response"]["results"]["status"], "start",
        "{refresh}"
    );
    assert_eq!(fg.wait_for_polls("root", "edl", 2, WAIT).await.len(), 2);
    let listed = proxy(
        "get",
        "/api/v2/monitor/system/external-resource/entry-list?mkey=edl",
        None,
    )
    .await;
    let results = &listed["result"][0]["data"][0]["response"]["results"];
    assert_eq!(
        (results["valid_count"].clone(), results["status"].clone()),
        (json!(2), json!("success")),
        "{listed}"
    );
    let pushed = proxy(
        "post",
        "/api/v2/monitor/system/external-resource/dynamic",
        Some(json!({"commands": [{"name": "pushed", "command": "snapshot", "entries": ["198.51.100.5"]}]})),
    )
    .await;
    assert_eq!(
        pushed["result"][0]["data"][0]["response"]["http_status"], 200,
        "{pushed}"
    );
    assert_eq!(fg.feed_entries("root", "pushed"), ["198.51.100.5"]);
}

#[tokio::test]
async fn the_admin_api_shows_feed_state_and_pulls() {
    let list = ListServer::start("192.0.2.1\n").await;
    let dev = Device::start("7.4.3", FeedSettings::default()).await;
    dev.create(address_feed("edl", &list.url, HOURLY)).await;
    dev.polls("edl", 1).await;
    let admin = reqwest::Client::new();
    let base = dev.sim.admin_url();
    let state: Value = admin
        .get(format!("{base}/v1/fortigates/fw/feeds/root/edl"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        (state["status"].clone(), state["valid_count"].clone()),
        (json!("success"), json!(1))
    );
    let polls: Value = admin
        .get(format!("{base}/v1/fortigates/fw/feeds/root/edl/polls"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(polls.as_array().unwrap().len(), 1);
    assert_eq!(polls[0]["http_status"], 200);
    let missing = admin
        .get(format!("{base}/v1/fortigates/fw/feeds/root/ghost"))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status().as_u16(), 404);
}
