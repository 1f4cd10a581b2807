//! The FortiOS client and its Guard against the simulator: the lockout rules of issue 4, retries
//! and re-observation, and each troubleshooting row this layer sees.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use fortisync::device::fortios::{FortiOsClient, RetryPolicy};
use fortisync::device::{Credentials, Guard, LockoutPolicy};
use fortisync::sim::fortios::{FaultRule, FortiGateScenario, Table};
use fortisync::sim::{Scenario, Simulator};
use serde_json::json;

#[path = "support/fortios_client.rs"]
mod fortios_client;

use fortios_client::FortiOsFixture;

const KEY: &str = "right-key-000000000000000000000";

fn ip(last: u8) -> IpAddr {
    IpAddr::from([127, 0, 0, last])
}

fn scenario(name: &str, duration_secs: u64) -> FortiGateScenario {
    fortisync::yaml::from_str(&format!(
        r#"
name: {name}
version: "7.4.3"
global: {{admin_lockout_threshold: 3, admin_lockout_duration: {duration_secs}}}
api_users:
  - {{name: fortisync, key: {KEY}, accprofile: super_admin, trusthosts: ["127.0.0.0/24"]}}
  - {{name: reader, key: reader-key, accprofile: readonly, trusthosts: ["127.0.0.0/24"]}}
profiles:
  readonly: {{fwgrp: read, sysgrp: read}}
"#
    ))
    .expect("scenario")
}

async fn start(fgs: Vec<FortiGateScenario>) -> Simulator {
    Simulator::start(Scenario {
        fortigates: fgs,
        ..Scenario::default()
    })
    .await
    .expect("simulator")
}

/// Moves the clock forward without waiting. The clock is paused only for the jump: paused
/// while a request is in flight, tokio would also jump over the client's request timeout
/// whenever it waits on the simulator's socket. The simulator keeps its lockouts and sessions
/// on the same tokio clock, so the device sees the same time pass.
async fn skip(d: Duration) {
    tokio::time::pause();
    tokio::time::advance(d).await;
    tokio::time::resume();
}

fn guard(name: &str, duration: Duration) -> Arc<Guard> {
    fortios_client::guard(
        name,
        LockoutPolicy {
            threshold: 3,
            duration,
        },
    )
}

/// These tests' client: a 2 s timeout and quick retries, so a retried pass takes milliseconds.
fn fixture(sim: &Simulator, device: &str, source: IpAddr, guard: Arc<Guard>) -> FortiOsFixture {
    FortiOsFixture::simulated(sim, device)
        .source(source)
        .timeout(Duration::from_secs(2))
        .guard(guard)
        .retry(RetryPolicy {
            retries: 3,
            base: Duration::from_millis(20),
            cap: Duration::from_millis(100),
        })
}

fn client(
    sim: &Simulator,
    device: &str,
    key: &str,
    source: IpAddr,
    guard: Arc<Guard>,
) -> FortiOsClient {
    fixture(sim, device, source, guard).client(Credentials::Token(key.into()))
}

#[tokio::test]
async fn wrong_key_is_tried_once_across_100_attempts_then_a_rotated_key_works() {
    let sim = start(vec![scenario("fw", 60)]).await;
    let g = guard("fw", Duration::from_secs(60));
    let wrong = client(&sim, "fw", "wrong-key", ip(31), g.clone());
    for attempt in 0..100 {
        let err = wrong.system_status().await.unwrap_err();
        let expected = if attempt == 0 {
            "Unauthorized"
        } else {
            "CredentialFrozen"
        };
        assert_eq!(err.reason(), expected, "attempt {attempt}");
    }
    let fg = sim.fortigate("fw");
    assert_eq!(
        fg.count_from(ip(31)),
        1,
        "exactly one request carried the wrong key"
    );
    assert_eq!(fg.auth_failures_from(ip(31)), 1);
    assert_eq!(fg.lockout_remaining(ip(31)), None);
    // The Secret changed: a new fingerprint, the same device guard.
    let rotated = client(&sim, "fw", KEY, ip(31), g.clone());
    let status = rotated
        .system_status()
        .await
        .expect("the rotated key works at once");
    assert_eq!(status.version, "v7.4.3");
    assert_eq!(fg.count_from(ip(31)), 2);
}

#[tokio::test]
async fn a_lockout_stops_all_requests_for_the_window_then_one_probe_and_doubles_on_repeat() {
    // The device's second lockout of this IP lasts 2 s; fortisync expects 1 s and learns.
    let sim = start(vec![scenario("fw", 1)]).await;
    let fg = sim.fortigate("fw");
    let lock_ip = || async {
        for _ in 0..3 {
            let _ = reqwest_wrong(&sim, ip(32)).await;
        }
    };
    lock_ip().await;
    skip(Duration::from_millis(1100)).await;
    lock_ip().await;
    // The second lockout of this IP lasts 2 s on the device.
    assert_eq!(
        fg.lockout_remaining(ip(32))
            .map(|d| d.as_secs_f64().round() as u64),
        Some(2)
    );
    fg.clear_requests();

    let g = guard("fw", Duration::from_secs(1));
    let ours = client(&sim, "fw", KEY, ip(32), g.clone());
    assert_eq!(
        ours.system_status().await.unwrap_err().reason(),
        "LockedOut"
    );
    for _ in 0..50 {
        assert_eq!(
            ours.system_status().await.unwrap_err().reason(),
            "LockedOut"
        );
    }
    assert_eq!(
        fg.count_from(ip(32)),
        1,
        "nothing is sent inside the window"
    );
    // After 1 s one probe: the device is still locked (2 s), so the breaker doubles to 2 s.
    skip(Duration::from_millis(1150)).await;
    assert_eq!(
        ours.system_status().await.unwrap_err().reason(),
        "LockedOut"
    );
    assert_eq!(fg.count_from(ip(32)), 2, "exactly one probe");
    skip(Duration::from_millis(1150)).await;
    assert_eq!(
        ours.system_status().await.unwrap_err().reason(),
        "LockedOut",
        "the doubled window is honoured"
    );
    assert_eq!(fg.count_from(ip(32)), 2);
    // The doubled window is 2 s plus up to 10% jitter, opened at the probe (~1.15 s).
    skip(Duration::from_millis(1300)).await;
    ours.system_status()
        .await
        .expect("the probe after the doubled window succeeds");
    assert_eq!(fg.count_from(ip(32)), 3);
    ours.system_status().await.expect("the breaker is closed");
}

/// Three failed logins from `source`, as another tool on the controller's host would send.
async fn reqwest_wrong(sim: &Simulator, source: IpAddr) -> u16 {
    let c = reqwest::Client::builder()
        .local_address(source)
        .add_root_certificate(
            reqwest::Certificate::from_pem(sim.fortigate("fw").ca_pem().expect("ca").as_bytes())
                .expect("pem"),
        )
        .build()
        .expect("client");
    c.get(format!(
        "{}/api/v2/monitor/system/status",
        sim.fortigate("fw").url()
    ))
    .bearer_auth("typo")
    .send()
    .await
    .expect("send")
    .status()
    .as_u16()
}

#[tokio::test]
async fn a_locked_out_device_does_not_delay_another_device() {
    let sim = start(vec![scenario("fw1", 60), scenario("fw2", 60)]).await;
    for _ in 0..3 {
        let c = reqwest::Client::builder()
            .local_address(ip(33))
            .add_root_certificate(
                reqwest::Certificate::from_pem(
                    sim.fortigate("fw1").ca_pem().expect("ca").as_bytes(),
                )
                .expect("pem"),
            )
            .build()
            .expect("client");
        let _ = c
            .get(format!(
                "{}/api/v2/monitor/system/status",
                sim.fortigate("fw1").url()
            ))
            .bearer_auth("typo")
            .send()
            .await;
    }
    let locked = client(
        &sim,
        "fw1",
        KEY,
        ip(33),
        guard("fw1", Duration::from_secs(60)),
    );
    let healthy = client(
        &sim,
        "fw2",
        KEY,
        ip(33),
        guard("fw2", Duration::from_secs(60)),
    );
    assert_eq!(
        locked.system_status().await.unwrap_err().reason(),
        "LockedOut"
    );
    let fw1 = sim.fortigate("fw1");
    let fw2 = sim.fortigate("fw2");
    let (fw1_before, fw2_before) = (fw1.count_from(ip(33)), fw2.count_from(ip(33)));
    // The open breaker refuses on the first poll: no queueing, no I/O, nothing to wait for
    // that could hold up a request to another device on the same runtime.
    let refused = futures::FutureExt::now_or_never(locked.system_status())
        .expect("the locked-out device's refusal is ready at once, without waiting");
    assert_eq!(refused.unwrap_err().reason(), "LockedOut");
    let (a, b) = tokio::join!(locked.system_status(), healthy.system_status());
    assert_eq!(a.unwrap_err().reason(), "LockedOut");
    assert!(b.is_ok());
    // The healthy answer came while fw1 still holds this source locked out, and fw1 heard
    // nothing more: the two devices share no queue.
    assert!(
        fw1.lockout_remaining(ip(33)).is_some(),
        "fw1's lockout is still in force"
    );
    assert_eq!(fw1.count_from(ip(33)), fw1_before, "fw1 heard nothing more");
    assert_eq!(fw2.count_from(ip(33)), fw2_before + 1, "fw2 answered once");
}

#[tokio::test]
async fn reads_survive_injected_5xx_resets_and_timeouts() {
    let sim = start(vec![scenario("fw", 60)]).await;
    let fg = sim.fortigate("fw");
    let c = client(
        &sim,
        "fw",
        KEY,
        ip(34),
        guard("fw", Duration::from_secs(60)),
    );
    fg.add_fault(FaultRule {
        path: "/api/v2/cmdb/firewall/address".into(),
        status: Some(503),
        times: Some(2),
        ..FaultRule::default()
    });
    assert!(
        c.list("firewall/address", None)
            .await
            .expect("retried through two 503s")
            .is_empty()
    );
    fg.add_fault(FaultRule {
        path: "/api/v2/cmdb/firewall/address".into(),
        reset: true,
        times: Some(1),
        ..FaultRule::default()
    });
    c.list("firewall/address", None)
        .await
        .expect("retried through a reset");
    fg.add_fault(FaultRule {
        path: "/api/v2/cmdb/firewall/address".into(),
        latency_ms: 3_000,
        times: Some(1),
        ..FaultRule::default()
    });
    c.list("firewall/address", None)
        .await
        .expect("retried through a timeout");
    let gets = fg
        .requests()
        .iter()
        .filter(|r| r.peer == ip(34) && r.method == "GET")
        .count();
    assert!(gets >= 5, "retries reached the device ({gets})");
}

#[tokio::test]
async fn an_ambiguous_create_is_re_observed_and_not_duplicated() {
    let sim = start(vec![scenario("fw", 60)]).await;
    let fg = sim.fortigate("fw");
    let c = client(
        &sim,
        "fw",
        KEY,
        ip(35),
        guard("fw", Duration::from_secs(60)),
    );
    fg.add_fault(FaultRule {
        path: "/api/v2/cmdb/firewall/address".into(),
        method: Some("POST".into()),
        reset: true,
        times: Some(1),
        ..FaultRule::default()
    });
    c.create(
        "firewall/address",
        &json!({"name": "fs_192.0.2.1", "subnet": "192.0.2.1/32"}),
    )
    .await
    .expect("create resolves the ambiguity");
    let posts = fg
        .requests()
        .iter()
        .filter(|r| r.peer == ip(35) && r.method == "POST")
        .count();
    assert_eq!(
        posts, 1,
        "the POST was not re-sent: the re-read found the object"
    );
    assert_eq!(fg.objects("root", Table::Address).len(), 1);
    // A lost answer for a write that did not happen (the 503 came before it ran) is re-sent once.
    fg.add_fault(FaultRule {
        path: "/api/v2/cmdb/firewall/address".into(),
        method: Some("POST".into()),
        status: Some(503),
        times: Some(1),
        ..FaultRule::default()
    });
    c.create(
        "firewall/address",
        &json!({"name": "fs_192.0.2.2", "subnet": "192.0.2.2/32"}),
    )
    .await
    .expect("created after re-observing");
    assert_eq!(fg.objects("root", Table::Address).len(), 2);
}

#[tokio::test]
async fn each_troubleshooting_row_this_layer_sees_has_its_reason() {
    let mut fg = scenario("fw", 60);
    fg.version = "6.4.14".parse().expect("version");
    fg.addrgrp_member_cap = Some(1);
    let sim = start(vec![fg]).await;
    let dev = sim.fortigate("fw");
    let g = guard("fw", Duration::from_secs(60));
    let c = client(&sim, "fw", KEY, ip(36), g.clone());

    // F1: nothing listens there.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("port")
        .local_addr()
        .expect("addr")
        .port();
    let nowhere = FortiOsFixture::at("nowhere", &format!("https://127.0.0.1:{closed}"))
        .timeout(Duration::from_secs(1))
        .guard(guard("nowhere", Duration::from_secs(60)))
        .retry(RetryPolicy {
            retries: 0,
            ..RetryPolicy::default()
        })
        .client(Credentials::Token(KEY.into()));
    let f1 = nowhere.system_status().await.unwrap_err();
    assert_eq!(
        (f1.reason(), f1.troubleshooting_row()),
        ("ConnectFailed", "F1")
    );
    // F2: a self-signed certificate without the CA bundle.
    // `at`, not `simulated`: the client must not be handed the simulator's CA.
    let untrusted = FortiOsFixture::at("fw", dev.url())
        .source(ip(36))
        .guard(guard("fw-tls", Duration::from_secs(60)))
        .client(Credentials::Token(KEY.into()));
    let f2 = untrusted.system_status().await.unwrap_err();
    assert_eq!((f2.reason(), f2.troubleshooting_row()), ("Tls", "F2"));
    assert!(f2.to_string().contains("unknown issuer"), "{f2}");
    // F4: the profile cannot write firewall objects.
    let reader = client(
        &sim,
        "fw",
        "reader-key",
        ip(36),
        guard("fw-reader", Duration::from_secs(60)),
    );
    let f4 = reader
        .create(
            "firewall/address",
            &json!({"name": "x", "subnet": "192.0.2.9/32"}),
        )
        .await
        .unwrap_err();
    assert_eq!((f4.reason(), f4.troubleshooting_row()), ("Forbidden", "F4"));
    assert!(f4.remedy().contains("Admin Profiles"));
    // F7: a VDOM that does not exist.
    let wrong_vdom = FortiOsFixture::simulated(&sim, "fw")
        .source(ip(36))
        .timeout(Duration::from_secs(2))
        .guard(g.clone())
        .vdom("nope")
        .client(Credentials::Token(KEY.into()));
    assert_eq!(
        wrong_vdom
            .list("firewall/address", None)
            .await
            .unwrap_err()
            .troubleshooting_row(),
        "F7"
    );
    // F8, F9, F10, F11.
    c.create(
        "firewall/address",
        &json!({"name": "a", "subnet": "192.0.2.1/32"}),
    )
    .await
    .expect("a");
    c.create(
        "firewall/address",
        &json!({"name": "b", "subnet": "192.0.2.2/32"}),
    )
    .await
    .expect("b");
    assert_eq!(
        c.create(
            "firewall/address",
            &json!({"name": "a", "subnet": "192.0.2.1/32"})
        )
        .await
        .unwrap_err()
        .troubleshooting_row(),
        "F8"
    );
    c.create(
        "firewall/addrgrp",
        &json!({"name": "g", "member": [{"name": "a"}]}),
    )
    .await
    .expect("group");
    assert_eq!(
        c.delete("firewall/address", "a")
            .await
            .unwrap_err()
            .troubleshooting_row(),
        "F9"
    );
    assert_eq!(
        c.add_member("firewall/addrgrp", "g", "b")
            .await
            .unwrap_err()
            .troubleshooting_row(),
        "F10"
    );
    let f11 = c
        .create(
            "firewall/address",
            &json!({"name": "c", "subnet": "192.0.2.300/32"}),
        )
        .await
        .unwrap_err();
    assert_eq!(f11.troubleshooting_row(), "F11");
    assert!(f11.to_string().contains("192.0.2.300"), "{f11}");
    // F12: an HTML page with 200, as a wrong port or a proxy answers.
    dev.add_fault(FaultRule {
        path: "/api/v2/monitor".into(),
        status: Some(200),
        times: Some(1),
        ..FaultRule::default()
    });
    let f12 = c.system_status().await.unwrap_err();
    assert_eq!(
        (f12.reason(), f12.troubleshooting_row()),
        ("UnexpectedResponse", "F12")
    );
    // F19: dynamic push below 7.2.1.
    assert_eq!(
        c.push_entries("edl", "add", &["192.0.2.1".into()])
            .await
            .unwrap_err()
            .troubleshooting_row(),
        "F19"
    );
    // No error text ever carries the key.
    for e in [&f1, &f2, &f4, &f11, &f12] {
        assert!(!e.to_string().contains(KEY) && !e.report().message.contains(KEY));
    }
}

#[tokio::test]
async fn password_sessions_send_csrf_and_log_in_again_after_expiry() {
    let mut fg = scenario("fw", 60);
    fg.admins = vec![fortisync::yaml::from_str("{name: admin, password: s3cret}").expect("admin")];
    let sim = start(vec![fg]).await;
    let c = FortiOsFixture::simulated(&sim, "fw")
        .source(ip(37))
        .timeout(Duration::from_secs(2))
        .guard(guard("fw", Duration::from_secs(60)))
        .client(Credentials::Password {
            user: "admin".into(),
            password: "s3cret".into(),
        });
    c.create(
        "firewall/address",
        &json!({"name": "s", "subnet": "192.0.2.5/32"}),
    )
    .await
    .expect("a write with the CSRF token");
    sim.fortigate("fw").reboot(); // drops every session
    c.create(
        "firewall/address",
        &json!({"name": "t", "subnet": "192.0.2.6/32"}),
    )
    .await
    .expect("re-login once, then the write");
    let bad = FortiOsFixture::simulated(&sim, "fw")
        .source(ip(38))
        .timeout(Duration::from_secs(2))
        .guard(guard("fw-bad", Duration::from_secs(60)))
        .client(Credentials::Password {
            user: "admin".into(),
            password: "wrong".into(),
        });
    assert_eq!(
        bad.list("firewall/address", None)
            .await
            .unwrap_err()
            .reason(),
        "Unauthorized"
    );
    assert_eq!(
        bad.list("firewall/address", None)
            .await
            .unwrap_err()
            .reason(),
        "CredentialFrozen"
    );
    assert_eq!(sim.fortigate("fw").auth_failures_from(ip(38)), 1);
}
