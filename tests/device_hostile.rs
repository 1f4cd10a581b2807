//! Every device answer is untrusted: both clients against a hostile loopback HTTP server that
//! redirects, sends endless or dripping bodies, answers JSON of the wrong shape, and puts
//! secrets in its bodies. Nothing is followed, read without bound, taken as "nothing there", or
//! quoted into an error.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use fortisync::device::fortimanager::FortiManagerClient;
use fortisync::device::fortios::FortiOsClient;
use fortisync::device::transport::MAX_BODY_BYTES;
use fortisync::device::{Credentials, DeviceError, Guard, LockoutPolicy, TransportConfig};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

#[path = "support/fortios_client.rs"]
mod fortios_client;

use fortios_client::FortiOsFixture;

/// What the server does with one request.
#[derive(Clone)]
enum Action {
    /// Sends these bytes (a whole HTTP response) and closes.
    Reply(Vec<u8>),
    /// Sends the head, then body bytes without end until the peer goes away.
    Endless(Vec<u8>),
    /// Sends the head, then one body byte per interval without end.
    Drip(Vec<u8>, Duration),
}

type Script = Arc<dyn Fn(&str) -> Action + Send + Sync>;

/// A loopback HTTP/1.1 server that answers each request line (`POST /jsonrpc`) as its script
/// says, and counts what it saw and sent.
struct Hostile {
    addr: SocketAddr,
    /// Request lines, in order.
    requests: Arc<Mutex<Vec<String>>>,
    /// Connections accepted.
    connections: Arc<AtomicUsize>,
    /// Bytes written to peers (heads and bodies).
    sent: Arc<AtomicU64>,
    /// Connections whose answer has ended (written, or the peer went away).
    ended: Arc<AtomicUsize>,
}

impl Hostile {
    async fn start(script: impl Fn(&str) -> Action + Send + Sync + 'static) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let server = Self {
            addr: listener.local_addr().expect("addr"),
            requests: Arc::default(),
            connections: Arc::default(),
            sent: Arc::default(),
            ended: Arc::default(),
        };
        let script: Script = Arc::new(script);
        let (requests, connections, sent, ended) = (
            server.requests.clone(),
            server.connections.clone(),
            server.sent.clone(),
            server.ended.clone(),
        );
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                connections.fetch_add(1, Ordering::SeqCst);
                let (script, requests, sent, ended) = (
                    script.clone(),
                    requests.clone(),
                    sent.clone(),
                    ended.clone(),
                );
                tokio::spawn(async move {
                    serve(stream, script, requests, sent).await;
                    ended.fetch_add(1, Ordering::SeqCst);
                });
            }
        });
        server
    }

    fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    fn requests(&self) -> Vec<String> {
        self.requests.lock().unwrap().clone()
    }

    /// Waits until `n` answers have ended (the hang guard fails the test instead of hanging).
    async fn ended(&self, n: usize) {
        tokio::time::timeout(Duration::from_secs(20), async {
            while self.ended.load(Ordering::SeqCst) < n {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        })
        .await
        .expect("the server's answers end once the client goes away");
    }
}

async fn serve(
    mut stream: TcpStream,
    script: Script,
    requests: Arc<Mutex<Vec<String>>>,
    sent: Arc<AtomicU64>,
) {
    // Read the head, then the body the head announces (so closing never resets the request).
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
    let length: usize = head
        .lines()
        .find_map(|l| {
            l.to_ascii_lowercase()
                .strip_prefix("content-length:")
                .map(|v| v.trim().parse().unwrap_or(0))
        })
        .unwrap_or(0);
    while buf.len() < head_end + length {
        match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
    let line = head.lines().next().unwrap_or_default();
    let line = line.rsplit_once(' ').map_or(line, |(l, _)| l).to_string();
    requests.lock().unwrap().push(line.clone());
    let mut write = async |bytes: &[u8]| {
        let ok = stream.write_all(bytes).await.is_ok();
        if ok {
            sent.fetch_add(bytes.len() as u64, Ordering::SeqCst);
        }
        ok
    };
    match script(&line) {
        Action::Reply(bytes) => {
            write(&bytes).await;
        }
        Action::Endless(head) => {
            if write(&head).await {
                let block = vec![b' '; 64 * 1024];
                while write(&block).await {}
            }
        }
        Action::Drip(head, every) => {
            if write(&head).await {
                while write(b" ").await {
                    tokio::time::sleep(every).await;
                }
            }
        }
    }
}

/// A whole response with a Content-Length.
fn http(status: &str, headers: &[(&str, &str)], body: &[u8]) -> Vec<u8> {
    let mut out = format!("HTTP/1.1 {status}\r\nConnection: close\r\n");
    for (k, v) in headers {
        out.push_str(&format!("{k}: {v}\r\n"));
    }
    out.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
    let mut out = out.into_bytes();
    out.extend_from_slice(body);
    out
}

fn json_reply(status: &str, body: &str) -> Vec<u8> {
    http(
        status,
        &[("Content-Type", "application/json")],
        body.as_bytes(),
    )
}

fn guard() -> Arc<Guard> {
    fortios_client::guard("hostile", LockoutPolicy::default())
}

fn transport(timeout: Duration) -> TransportConfig {
    TransportConfig {
        timeout,
        ..TransportConfig::default()
    }
}

fn fortigate(server: &Hostile, credentials: Credentials) -> FortiOsClient {
    FortiOsFixture::at("fw", &server.url())
        .guard(guard())
        .client(credentials)
}

fn fortimanager(server: &Hostile, credentials: Credentials) -> FortiManagerClient {
    FortiManagerClient::new(
        "fmg",
        &server.url(),
        "root",
        credentials,
        &transport(Duration::from_secs(5)),
        guard(),
    )
    .expect("client")
}

fn password() -> Credentials {
    Credentials::Password {
        user: "admin".into(),
        password: "pw-canary-000".into(),
    }
}

fn token() -> Credentials {
    Credentials::Token("key-canary-000".into())
}

fn detail(e: &DeviceError) -> &str {
    match e {
        DeviceError::UnexpectedResponse { detail, .. } => detail,
        other => panic!("expected UnexpectedResponse, got {other:?}"),
    }
}

// ---- 1. no redirects ---------------------------------------------------------------------

/// A second listener that must never hear from the client.
async fn elsewhere() -> Hostile {
    Hostile::start(|_| Action::Reply(json_reply("200 OK", r#"{"status": "success"}"#))).await
}

fn redirect(status: &str, to: &Hostile, path: &str) -> Action {
    let location = format!("{}{path}?access_token=canary-query", to.url());
    Action::Reply(http(status, &[("Location", location.as_str())], b""))
}

#[tokio::test]
async fn a_307_on_the_fortigate_login_is_refused_and_the_password_goes_nowhere_else() {
    let second = elsewhere().await;
    let script = redirect("307 Temporary Redirect", &second, "/api/v2/authentication");
    let first = Hostile::start(move |_| script.clone()).await;
    let c = fortigate(&first, password());
    let e = c.list("firewall/address", None).await.unwrap_err();
    assert_eq!(
        (e.reason(), e.troubleshooting_row()),
        ("UnexpectedResponse", "F12")
    );
    assert_eq!(
        detail(&e),
        format!(
            "a redirect to {}/api/v2/authentication, which fortisync never follows",
            second.url()
        )
    );
    assert!(!e.to_string().contains("canary-query"), "{e}");
    assert_eq!(second.connections.load(Ordering::SeqCst), 0);
    // Only the JSON login was sent: no legacy /logincheck with the password either.
    assert_eq!(first.requests(), ["POST /api/v2/authentication"]);
}

#[tokio::test]
async fn a_302_on_a_fortigate_write_is_refused_and_not_turned_into_a_get() {
    let second = elsewhere().await;
    let script = redirect("302 Found", &second, "/api/v2/cmdb/firewall/address");
    let first = Hostile::start(move |_| script.clone()).await;
    let c = fortigate(&first, token());
    let e = c
        .create(
            "firewall/address",
            &json!({"name": "a", "subnet": "192.0.2.1/32"}),
        )
        .await
        .unwrap_err();
    assert_eq!(e.reason(), "UnexpectedResponse");
    assert!(detail(&e).contains("/api/v2/cmdb/firewall/address"), "{e}");
    assert_eq!(second.connections.load(Ordering::SeqCst), 0);
    assert_eq!(
        first.requests(),
        ["POST /api/v2/cmdb/firewall/address?vdom=root"]
    );
}

#[tokio::test]
async fn a_307_on_the_fortimanager_login_is_refused_and_the_password_goes_nowhere_else() {
    let second = elsewhere().await;
    let script = redirect("307 Temporary Redirect", &second, "/jsonrpc");
    let first = Hostile::start(move |_| script.clone()).await;
    let c = fortimanager(&first, password());
    let e = c.objects("firewall/address", None).await.unwrap_err();
    assert_eq!(e.reason(), "UnexpectedResponse");
    assert_eq!(
        detail(&e),
        format!(
            "a redirect to {}/jsonrpc, which fortisync never follows",
            second.url()
        )
    );
    assert_eq!(second.connections.load(Ordering::SeqCst), 0);
    assert_eq!(first.requests(), ["POST /jsonrpc"]);
}

// ---- 2. bounded bodies and time ----------------------------------------------------------

const HEAD_200: &[u8] =
    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n\r\n";

#[tokio::test]
async fn an_endless_body_stops_at_the_cap() {
    let server = Hostile::start(|_| Action::Endless(HEAD_200.to_vec())).await;
    let c = fortigate(&server, token());
    let e = c.list("firewall/address", None).await.unwrap_err();
    assert_eq!(
        (e.reason(), e.troubleshooting_row()),
        ("ResponseTooLarge", "F12")
    );
    assert!(
        e.to_string()
            .contains(&format!("larger than {MAX_BODY_BYTES} bytes")),
        "{e}"
    );
    drop(c);
    server.ended(1).await;
    let sent = server.sent.load(Ordering::SeqCst);
    // The client read up to the cap and then closed: what the server got out beyond it is
    // only what the sockets buffer.
    assert!(sent >= MAX_BODY_BYTES as u64, "{sent}");
    assert!(sent < MAX_BODY_BYTES as u64 + 16 * 1024 * 1024, "{sent}");
    // A body error is not retried: one request.
    assert_eq!(server.requests().len(), 1);
}

#[tokio::test]
async fn a_declared_length_above_the_cap_is_refused_before_reading() {
    let head = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        MAX_BODY_BYTES as u64 * 4
    );
    let server = Hostile::start(move |_| Action::Endless(head.clone().into_bytes())).await;
    let c = fortimanager(&server, token());
    let e = c.objects("firewall/address", None).await.unwrap_err();
    assert_eq!(e.reason(), "ResponseTooLarge");
    drop(c);
    server.ended(1).await;
    assert!(
        server.sent.load(Ordering::SeqCst) < MAX_BODY_BYTES as u64 / 2,
        "{}",
        server.sent.load(Ordering::SeqCst)
    );
}

#[tokio::test]
async fn a_slow_drip_is_a_timeout_at_the_connection_deadline() {
    let head =
        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 1000000\r\n\r\n";
    let server = Hostile::start(|_| Action::Drip(head.to_vec(), Duration::from_millis(100))).await;
    let timeout = Duration::from_secs(1);
    let c = FortiOsFixture::at("fw", &server.url())
        .timeout(timeout)
        .guard(guard())
        .retry(fortisync::device::fortios::RetryPolicy {
            retries: 0,
            base: Duration::ZERO,
            cap: Duration::ZERO,
        })
        .client(token());
    // The outer bound only turns a hang into a failure; it is not a latency assertion.
    let e = tokio::time::timeout(Duration::from_secs(20), c.list("firewall/address", None))
        .await
        .expect("the deadline holds")
        .unwrap_err();
    match &e {
        DeviceError::Timeout { timeout: t, .. } => assert_eq!(*t, timeout),
        other => panic!("expected Timeout, got {other:?}"),
    }
    assert_eq!(e.troubleshooting_row(), "F1");
    drop(c);
    server.ended(1).await;
}

// ---- 3. strict parsing -------------------------------------------------------------------

/// Bodies a 200 must never be taken from: each is an error, not an empty list.
const NOT_AN_ANSWER: [(&str, &str); 5] = [
    ("results is blank text", r#"{"results": "   "}"#),
    (
        "results of the wrong type",
        r#"{"status": "success", "results": "   "}"#,
    ),
    ("missing status", r#"{"results": []}"#),
    (
        "truncated JSON",
        r#"{"status": "success", "results": [{"name": "fs_a"#,
    ),
    (
        "HTML",
        "<!DOCTYPE HTML><html><body>Please log in</body></html>",
    ),
];

#[tokio::test]
async fn a_fortigate_list_of_a_malformed_answer_is_an_error_not_an_empty_table() {
    for (case, body) in NOT_AN_ANSWER {
        let server = Hostile::start(move |_| Action::Reply(json_reply("200 OK", body))).await;
        let c = fortigate(&server, token());
        let e = c.list("firewall/address", Some("fs_")).await.unwrap_err();
        assert_eq!(e.reason(), "UnexpectedResponse", "{case}: {e}");
        assert!(!detail(&e).contains("Please log in"), "{case}: {e}");
        // One GET, not retried: the answer is wrong, not late.
        assert_eq!(server.requests().len(), 1, "{case}");
    }
}

#[tokio::test]
async fn a_fortigate_get_of_a_malformed_answer_is_an_error_not_absent() {
    for (case, body) in NOT_AN_ANSWER {
        let server = Hostile::start(move |_| Action::Reply(json_reply("200 OK", body))).await;
        let c = fortigate(&server, token());
        let e = c.get("firewall/addrgrp", "fs_group").await.unwrap_err();
        assert_eq!(e.reason(), "UnexpectedResponse", "{case}: {e}");
    }
}

#[tokio::test]
async fn a_fortimanager_read_of_a_malformed_answer_is_an_error_not_an_empty_table() {
    let bodies = [
        ("result is blank text", r#"{"id": 1, "result": "   "}"#),
        ("missing status", r#"{"id": 1, "result": [{"data": []}]}"#),
        (
            "data of the wrong type",
            r#"{"id": 1, "result": [{"status": {"code": 0, "message": "OK"}, "data": "   "}]}"#,
        ),
        (
            "no data",
            r#"{"id": 1, "result": [{"status": {"code": 0, "message": "OK"}}]}"#,
        ),
        (
            "truncated JSON",
            r#"{"id": 1, "result": [{"status": {"code": 0, "mess"#,
        ),
        ("HTML", "<html><body>Please log in</body></html>"),
    ];
    for (case, body) in bodies {
        let server = Hostile::start(move |_| Action::Reply(json_reply("200 OK", body))).await;
        let c = fortimanager(&server, token());
        let e = c
            .objects("firewall/address", Some("fs_"))
            .await
            .unwrap_err();
        assert_eq!(e.reason(), "UnexpectedResponse", "{case}: {e}");
        let e = c
            .proxy(
                &["adom/root/device/fw".into()],
                "get",
                "/api/v2/cmdb/firewall/address",
                None,
            )
            .await
            .unwrap_err();
        assert_eq!(e.reason(), "UnexpectedResponse", "{case}: {e}");
    }
}

// ---- 4. device bodies never reach messages -------------------------------------------------

const CANARIES: [&str; 3] = ["canary123", "canary456", "canary789"];
const HOSTILE: &str = "password=canary123 api_key=canary456 bearer canary789";

fn assert_no_canary(case: &str, e: &DeviceError) {
    let report = e.report();
    for text in [
        e.to_string(),
        format!("{e:?}"),
        report.message,
        report.remedy,
    ] {
        for canary in CANARIES {
            assert!(!text.contains(canary), "{case}: {text}");
        }
    }
}

#[tokio::test]
async fn secrets_in_fortigate_bodies_never_reach_the_error() {
    let envelope =
        json!({"status": "error", "http_status": 500, "error": -651, "cli_error": HOSTILE})
            .to_string();
    let ok_envelope =
        json!({"status": "error", "http_status": 200, "cli_error": HOSTILE}).to_string();
    let cases = [
        (
            "a 200 that is not JSON",
            http("200 OK", &[], HOSTILE.as_bytes()),
        ),
        (
            "a 500 that is not JSON",
            http("500 Internal Server Error", &[], HOSTILE.as_bytes()),
        ),
        ("a 418", http("418 I'm a teapot", &[], HOSTILE.as_bytes())),
        (
            "a -651 with the secrets in cli_error",
            json_reply("500 Internal Server Error", &envelope),
        ),
        ("a 200 error envelope", json_reply("200 OK", &ok_envelope)),
        (
            "a 200 with the secrets in JSON",
            json_reply("200 OK", &json!({"results": HOSTILE}).to_string()),
        ),
    ];
    for (case, reply) in cases {
        let server = Hostile::start(move |_| Action::Reply(reply.clone())).await;
        let c = fortigate(&server, token());
        let e = c
            .update("firewall/address", "a", &json!({"subnet": "192.0.2.1/32"}))
            .await
            .unwrap_err();
        assert_no_canary(case, &e);
    }
}

#[tokio::test]
async fn secrets_in_fortimanager_bodies_never_reach_the_error() {
    let coded =
        json!({"id": 1, "result": [{"status": {"code": -10, "message": HOSTILE}, "url": "/x"}]})
            .to_string();
    let unknown =
        json!({"id": 1, "result": [{"status": {"code": -99999, "message": HOSTILE}}]}).to_string();
    let proxied =
        json!({"id": 1, "result": [{"status": {"code": -2, "message": HOSTILE}}]}).to_string();
    let cases = [
        (
            "a 200 that is not JSON",
            http("200 OK", &[], HOSTILE.as_bytes()),
            "add",
        ),
        (
            "a 500 that is not JSON",
            http("500 Internal Server Error", &[], HOSTILE.as_bytes()),
            "add",
        ),
        (
            "an invalid value with the secrets in the message",
            json_reply("200 OK", &coded),
            "add",
        ),
        (
            "an unknown code with the secrets in the message",
            json_reply("200 OK", &unknown),
            "add",
        ),
        (
            "a 500 JSON-RPC answer",
            json_reply("500 Internal Server Error", &unknown),
            "add",
        ),
        (
            "a missing proxy target",
            json_reply("200 OK", &proxied),
            "proxy",
        ),
    ];
    for (case, reply, call) in cases {
        let server = Hostile::start(move |_| Action::Reply(reply.clone())).await;
        let c = fortimanager(&server, token());
        let e = match call {
            "add" => c
                .add("firewall/address", json!({"name": "a"}))
                .await
                .unwrap_err(),
            _ => c
                .proxy(
                    &["adom/root/device/fw".into()],
                    "get",
                    "/api/v2/monitor/system/status",
                    None,
                )
                .await
                .unwrap_err(),
        };
        assert_no_canary(case, &e);
    }
}
