//! The FortiManager client against the simulated FortiManager: auth and re-login, credential
//! freeze, workspace locking, proxy results and each troubleshooting row it sees (F13–F17).

use std::sync::Arc;
use std::time::Duration;

use fortisync::device::fortimanager::FortiManagerClient;
use fortisync::device::{Credentials, DeviceMetrics, Guard, LockoutPolicy, TransportConfig};
use fortisync::sim::fortimanager::FortiManagerScenario;
use fortisync::sim::{Scenario, Simulator};
use serde_json::json;

const SCENARIO: &str = r#"
fortigates:
  - name: fw-1
    api_users: [{name: x, key: unused-key, trusthosts: ["127.0.0.0/8"]}]
fortimanagers:
  - name: fmg
    version: "7.4.3"
    idle_timeout_api: 1
    adoms:
      - name: root
        os_version: "7.4"
        workspace_mode: normal
        devices: [{name: fw-1, serial: FGT60FTK20000001, version: "7.4.3"}]
    admins:
      - {userid: api, password: pw, rpc_permit: read-write, profile: Super_User}
      - {userid: keyed, user_type: api, rpc_permit: read-write, profile: Super_User, api_key: good-key, trusthosts: [[127.0.0.1, 255.255.255.255]]}
      - {userid: alice, password: other, rpc_permit: read-write, profile: Super_User}
"#;

async fn sim() -> Simulator {
    let scenario = Scenario::from_yaml(SCENARIO).expect("scenario");
    let _: &FortiManagerScenario = &scenario.fortimanagers[0];
    Simulator::start(scenario).await.expect("simulator")
}

fn client(sim: &Simulator, credentials: Credentials) -> FortiManagerClient {
    let fmg = sim.fortimanager("fmg");
    let transport = TransportConfig {
        ca_bundle_pem: fmg.ca_pem().map(str::to_string),
        timeout: Duration::from_secs(5),
        ..TransportConfig::default()
    };
    let guard = Arc::new(Guard::new(
        "fmg",
        LockoutPolicy::default(),
        4,
        DeviceMetrics::default(),
    ));
    FortiManagerClient::new("fmg", fmg.url(), "root", credentials, &transport, guard)
        .expect("client")
        .with_lock_retries(2, Duration::from_millis(20))
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

fn password(user: &str, pw: &str) -> Credentials {
    Credentials::Password {
        user: user.into(),
        password: pw.into(),
    }
}

#[tokio::test]
async fn workspace_mode_changes_go_through_lock_commit_unlock() {
    let sim = sim().await;
    let c = client(&sim, password("api", "pw"));
    assert!(c.workspace_enabled().await.expect("global"));
    let denied = c
        .add(
            "firewall/address",
            json!({"name": "fs_192.0.2.1", "subnet": "192.0.2.1/32"}),
        )
        .await
        .unwrap_err();
    assert_eq!(
        (denied.reason(), denied.troubleshooting_row()),
        ("NoWritePermission", "F14")
    );
    c.lock().await.expect("lock");
    c.add(
        "firewall/address",
        json!({"name": "fs_192.0.2.1", "subnet": "192.0.2.1/32"}),
    )
    .await
    .expect("add under the lock");
    c.add(
        "firewall/addrgrp",
        json!({"name": "g", "member": ["fs_192.0.2.1"]}),
    )
    .await
    .expect("group");
    c.commit().await.expect("commit");
    c.unlock().await.expect("unlock");
    let objects = c
        .objects("firewall/address", Some("fs_"))
        .await
        .expect("objects");
    assert_eq!(objects.len(), 1);
    assert_eq!(
        objects[0]["subnet"],
        json!(["192.0.2.1", "255.255.255.255"])
    );
}

#[tokio::test]
async fn a_lock_held_by_someone_else_is_retried_then_reported_with_the_holder() {
    let sim = sim().await;
    sim.fortimanager("fmg")
        .hold_lock("root", "alice")
        .expect("alice locks the ADOM");
    let c = client(&sim, password("api", "pw"));
    let e = c.lock().await.unwrap_err();
    assert_eq!(
        (e.reason(), e.troubleshooting_row()),
        ("WorkspaceLocked", "F17")
    );
    assert!(e.to_string().contains("alice"), "{e}");
    let attempts = sim
        .fortimanager("fmg")
        .count("exec", "/dvmdb/adom/root/workspace/lock", -20055);
    assert_eq!(attempts, 3, "one attempt and two bounded retries");
}

#[tokio::test]
async fn an_expired_session_is_renewed_once() {
    let sim = sim().await;
    let c = client(&sim, password("api", "pw"));
    c.objects("firewall/address", None)
        .await
        .expect("first call logs in");
    skip(Duration::from_millis(1_200)).await;
    c.objects("firewall/address", None)
        .await
        .expect("-11 on the expired session, one re-login, success (F13)");
    assert_eq!(
        sim.fortimanager("fmg").count("exec", "/sys/login/user", 0),
        2
    );
}

#[tokio::test]
async fn a_wrong_password_or_key_is_tried_once_and_frozen() {
    let sim = sim().await;
    let wrong = client(&sim, password("api", "nope"));
    assert_eq!(
        wrong
            .objects("firewall/address", None)
            .await
            .unwrap_err()
            .reason(),
        "Unauthorized"
    );
    for _ in 0..20 {
        assert_eq!(
            wrong
                .objects("firewall/address", None)
                .await
                .unwrap_err()
                .reason(),
            "CredentialFrozen"
        );
    }
    assert_eq!(
        sim.fortimanager("fmg")
            .count("exec", "/sys/login/user", -22),
        1
    );
    let bad_key = client(&sim, Credentials::Token("bad-key".into()));
    assert_eq!(
        bad_key
            .objects("firewall/address", None)
            .await
            .unwrap_err()
            .reason(),
        "Unauthorized"
    );
    assert_eq!(
        bad_key
            .objects("firewall/address", None)
            .await
            .unwrap_err()
            .reason(),
        "CredentialFrozen"
    );
    let good_key = client(&sim, Credentials::Token("good-key".into()));
    good_key
        .objects("firewall/address", None)
        .await
        .expect("a good key works");
}

#[tokio::test]
async fn proxy_results_per_target_and_unknown_targets_and_users() {
    let sim = sim().await;
    let c = client(&sim, password("api", "pw"));
    let results = c
        .proxy(
            &["adom/root/device/fw-1".into()],
            "get",
            "/api/v2/monitor/system/status",
            None,
        )
        .await
        .expect("proxy");
    assert_eq!(results.len(), 1);
    assert_eq!((results[0].target.as_str(), results[0].code), ("fw-1", 0));
    assert_eq!(
        results[0].response.as_ref().expect("response")["results"]["model"],
        "FGT60F"
    );
    let f16 = c
        .proxy(
            &["adom/root/group/missing".into()],
            "get",
            "/api/v2/monitor/system/status",
            None,
        )
        .await
        .unwrap_err();
    assert_eq!(
        (f16.reason(), f16.troubleshooting_row()),
        ("TargetNotFound", "F16")
    );
    let f15 = c.admin_user("bob").await.unwrap_err();
    assert_eq!(
        (f15.reason(), f15.troubleshooting_row()),
        ("AdminUserNotFound", "F15")
    );
    c.set_trusthost("alice", 10, "192.0.2.10", "255.255.255.255")
        .await
        .expect("slot 10");
    let alice = c.admin_user("alice").await.expect("alice");
    assert_eq!(
        alice["trusthost10"],
        json!(["192.0.2.10", "255.255.255.255"])
    );
}

#[tokio::test]
async fn referenced_objects_and_wrong_adoms_map_to_their_rows() {
    let sim = sim().await;
    sim.fortimanager("fmg")
        .set_workspace_mode(
            "root",
            fortisync::sim::fortimanager::WorkspaceMode::Disabled,
        )
        .expect("mode");
    let c = client(&sim, password("api", "pw"));
    c.add(
        "firewall/address",
        json!({"name": "a", "subnet": "192.0.2.1/32"}),
    )
    .await
    .expect("a");
    c.add("firewall/addrgrp", json!({"name": "g", "member": ["a"]}))
        .await
        .expect("g");
    assert_eq!(
        c.delete("firewall/address", "a")
            .await
            .unwrap_err()
            .troubleshooting_row(),
        "F9"
    );
    assert_eq!(
        c.add(
            "firewall/address",
            json!({"name": "a", "subnet": "192.0.2.1/32"})
        )
        .await
        .unwrap_err()
        .troubleshooting_row(),
        "F8"
    );
    let fmg = sim.fortimanager("fmg");
    let transport = TransportConfig {
        ca_bundle_pem: fmg.ca_pem().map(str::to_string),
        ..TransportConfig::default()
    };
    let guard = Arc::new(Guard::new(
        "fmg",
        LockoutPolicy::default(),
        4,
        DeviceMetrics::default(),
    ));
    let wrong_adom = FortiManagerClient::new(
        "fmg",
        fmg.url(),
        "nope",
        password("api", "pw"),
        &transport,
        guard,
    )
    .expect("client");
    assert_eq!(
        wrong_adom
            .objects("firewall/address", None)
            .await
            .unwrap_err()
            .troubleshooting_row(),
        "F7"
    );
}
