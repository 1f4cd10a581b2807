//! TrustedHost passes against the simulator, without Kubernetes (`converge` directly): a grant
//! opens the slot and the simulator lets that source in; expiry closes it on time and the
//! source is refused again; every safety rule refuses with its reason and the device receives
//! no write; drift is repaired and counted; a slot changed by hand is reported, not
//! overwritten. FortiManager admins, FortiGate admins and FortiGate API users.

use std::net::IpAddr;

use fortisync::api::TrustedHost;
use fortisync::api::addressgroup::TargetKind;
use fortisync::api::common::ConnectionSpec;
use fortisync::device::{Credentials, DeviceMetrics, Endpoints};
use fortisync::reconcile::connection::{ResolvedConnection, endpoint_config};
use fortisync::reconcile::error::ReconcileError;
use fortisync::reconcile::target::{DeviceFacts, Target};
use fortisync::reconcile::trustedhost::converge::{self, Facts, Pass};
use fortisync::sim::{Scenario, Simulator};
use reqwest::Method;
use serde_json::{Value, json};

#[path = "support/sim_client.rs"]
mod sim_client;

use sim_client::ip;

const FMG_KEY: &str = "fmg-key-0000000000000000000001";
const FW_KEY: &str = "fw-key-00000000000000000000001";
const CI_KEY: &str = "ci-key-00000000000000000000001";
/// The controller's source address in these tests.
const CONTROLLER: u8 = 40;

const SCENARIO: &str = r#"
fortimanagers:
  - name: fmg
    admins:
      - {userid: fortisync, user_type: api, rpc_permit: read-write, profile: Super_User, api_key: KEY_FMG, trusthosts: [[127.0.0.40, 255.255.255.255]], trusthosts6: ["::1/128"]}
      - {userid: alice, password: alice-pw, rpc_permit: read-write, profile: Standard_User, trusthosts6: ["::1/128"], trusthosts: [[127.0.0.1, 255.255.255.255], [127.0.0.1, 255.255.255.255], [127.0.0.1, 255.255.255.255], [127.0.0.1, 255.255.255.255], [127.0.0.1, 255.255.255.255], [127.0.0.1, 255.255.255.255], [127.0.0.1, 255.255.255.255], [127.0.0.1, 255.255.255.255], [127.0.0.1, 255.255.255.255]]}
fortigates:
  - name: fw
    version: "7.4.3"
    api_users:
      - {name: fs, key: KEY_FW, trusthosts: ["127.0.0.40/32"]}
      - {name: ci, key: KEY_CI, trusthosts: ["127.0.0.70/32"]}
    admins:
      - {name: ops, password: ops-pw}
"#;

async fn sim() -> Simulator {
    let yaml = SCENARIO
        .replace("KEY_FMG", FMG_KEY)
        .replace("KEY_FW", FW_KEY)
        .replace("KEY_CI", CI_KEY);
    Simulator::start(Scenario::from_yaml(&yaml).expect("scenario"))
        .await
        .expect("simulator")
}

/// The connected target `kind` as the controller reaches it (token, from 127.0.0.40).
async fn target(sim: &Simulator, kind: TargetKind) -> (Target, Facts) {
    let (url, ca, key, fmg_spec) = match kind {
        TargetKind::FortiManager => {
            let fmg = sim.fortimanager("fmg");
            let spec: fortisync::api::FortiManagerSpec = serde_json::from_value(json!({
                "url": fmg.url(), "credentialsSecretRef": {"name": "fmg", "tokenKey": "token"},
                "adom": "root", "sourceAddress": "127.0.0.40",
            }))
            .expect("spec");
            (
                fmg.url().to_string(),
                fmg.ca_pem().map(str::to_string),
                FMG_KEY,
                Some(spec),
            )
        }
        TargetKind::FortiGate => {
            let fg = sim.fortigate("fw");
            (
                fg.url().to_string(),
                fg.ca_pem().map(str::to_string),
                FW_KEY,
                None,
            )
        }
    };
    let connection: ConnectionSpec = serde_json::from_value(json!({
        "url": url, "credentialsSecretRef": {"name": "c", "tokenKey": "token"},
        "sourceAddress": "127.0.0.40",
    }))
    .expect("connection");
    let resolved = ResolvedConnection {
        kind,
        namespace: "team-a".into(),
        name: "dev".into(),
        connection: connection.clone(),
        scope: "root".into(),
        fortimanager: fmg_spec,
        credentials: Credentials::Token(key.into()),
        ca_bundle_pem: ca,
    };
    let endpoints = Endpoints::new(DeviceMetrics::default());
    let endpoint = endpoints
        .get(&endpoint_config(&resolved).expect("config"))
        .expect("endpoint");
    let t = Target::connect(endpoint, &resolved, &DeviceFacts::default())
        .await
        .expect("connect");
    let facts = Facts {
        credentials: resolved.credentials.clone(),
        source: Some(ip(CONTROLLER)),
        claimed_by: None,
    };
    (t, facts)
}

fn grant(kind: &str, user: &str, spec: Value) -> TrustedHost {
    let mut s = json!({"targetRef": {"kind": kind, "name": "dev"}, "user": user});
    s.as_object_mut()
        .expect("object")
        .extend(spec.as_object().expect("object").clone());
    let mut th: TrustedHost = serde_json::from_value(json!({
        "apiVersion": "fortisync.dev/v1alpha1", "kind": "TrustedHost",
        "metadata": {"name": "grant", "namespace": "team-a"}, "spec": s,
    }))
    .expect("trusted host");
    th.metadata.generation = Some(1);
    th
}

/// One pass at `now`, the resource carrying the status it returns (as the API server would).
async fn pass(t: &Target, th: &mut TrustedHost, facts: &Facts, now: jiff::Timestamp) -> Pass {
    let p = converge::converge(t, th, facts, now)
        .await
        .unwrap_or_else(|e| panic!("pass: {e}"));
    th.status = Some(p.status.clone());
    p
}

fn now() -> jiff::Timestamp {
    jiff::Timestamp::now()
}

/// Whether FortiManager admin `user` can log in with `password` from 127.0.0.`from`.
async fn fmg_login(sim: &Simulator, user: &str, password: &str, from: u8) -> bool {
    let fmg = sim.fortimanager("fmg");
    let http = sim_client::client(fmg.ca_pem(), ip(from));
    let body = json!({"id": 1, "method": "exec", "params": [{"url": "/sys/login/user", "data": {"user": user, "passwd": password}}]});
    let (_, reply) = sim_client::json(
        sim_client::send(&http, Method::POST, &fmg.jsonrpc_url(), None, Some(body)).await,
    )
    .await;
    reply["result"][0]["status"]["code"] == 0
}

/// The FortiManager requests that wrote to an admin user.
fn fmg_admin_writes(sim: &Simulator) -> usize {
    sim.fortimanager("fmg")
        .control()
        .requests()
        .iter()
        .filter(|r| r.url.contains("/system/admin/user") && r.method != "get")
        .count()
}

/// The FortiGate requests that wrote anything.
fn fg_writes(sim: &Simulator) -> usize {
    sim.fortigate("fw")
        .requests()
        .iter()
        .filter(|r| r.method != "GET")
        .count()
}

/// Whether an API key is let in from 127.0.0.`from` (HTTP 200 on a read).
async fn fg_key_works(sim: &Simulator, key: &str, from: u8) -> bool {
    let fg = sim.fortigate("fw");
    let http = sim_client::client(fg.ca_pem(), ip(from));
    let url = format!("{}/api/v2/monitor/system/status", fg.url());
    let (status, _) =
        sim_client::json(sim_client::send(&http, Method::GET, &url, Some(key), None).await).await;
    status == 200
}

/// Whether FortiGate admin `user` can log in from 127.0.0.`from` (JSON login).
async fn fg_login(sim: &Simulator, user: &str, password: &str, from: u8) -> bool {
    let fg = sim.fortigate("fw");
    let http = sim_client::client(fg.ca_pem(), ip(from));
    let url = format!("{}/api/v2/authentication", fg.url());
    let body = json!({"username": user, "secretkey": password, "password": password});
    let (_, reply) =
        sim_client::json(sim_client::send(&http, Method::POST, &url, None, Some(body)).await).await;
    let code = reply
        .get("status")
        .or(reply.get("status_code"))
        .and_then(Value::as_i64);
    matches!(code, Some(5) | Some(6))
}

fn in_a_minute() -> String {
    (now() + jiff::SignedDuration::from_secs(60)).to_string()
}

#[tokio::test]
async fn fortimanager_grant_opens_slot_ten_for_that_source_and_expiry_closes_it() {
    let sim = sim().await;
    let (t, facts) = target(&sim, TargetKind::FortiManager).await;
    assert!(
        !fmg_login(&sim, "alice", "alice-pw", 50).await,
        "not yet trusted"
    );
    let until = in_a_minute();
    let mut th = grant(
        "FortiManager",
        "alice",
        json!({"address": "127.0.0.50", "expiresAt": until}),
    );
    let opened = pass(&t, &mut th, &facts, now()).await;
    assert_eq!(opened.refused, None);
    assert!(opened.wrote.is_some());
    let alice = sim
        .fortimanager("fmg")
        .control()
        .admin("alice")
        .expect("alice");
    assert_eq!(
        alice.trusthost_slots()[9],
        [ip4("127.0.0.50"), ip4("255.255.255.255")]
    );
    assert!(
        fmg_login(&sim, "alice", "alice-pw", 50).await,
        "the grant lets .50 in"
    );
    let status = opened.status;
    assert_eq!(
        status.slot.and_then(|s| s.address).as_deref(),
        Some("127.0.0.50/32")
    );
    assert_eq!(
        status.open_until.map(|t| t.0.to_string()),
        Some(until.clone())
    );
    assert!(opened.expires_in.is_some_and(|d| d.as_secs() <= 60));

    // Converged: a second pass reads and writes nothing.
    sim.fortimanager("fmg").control().clear_requests();
    assert_eq!(pass(&t, &mut th, &facts, now()).await.wrote, None);
    assert_eq!(fmg_admin_writes(&sim), 0);

    // At the grant's end the slot goes back to unused, never to allow-all.
    let after: jiff::Timestamp = until.parse().expect("time");
    let closed = pass(&t, &mut th, &facts, after).await;
    assert_eq!(closed.refused, None);
    let alice = sim
        .fortimanager("fmg")
        .control()
        .admin("alice")
        .expect("alice");
    assert_eq!(alice.trusthost_slots()[9], [ip4("255.255.255.255"); 2]);
    assert!(
        !fmg_login(&sim, "alice", "alice-pw", 50).await,
        "refused again"
    );
    assert_eq!(closed.status.open_until, None);
    let ready = &closed.status.conditions[0];
    assert_eq!(
        (ready.status.as_str(), ready.reason.as_str()),
        ("True", "Closed")
    );
}

fn ip4(text: &str) -> std::net::Ipv4Addr {
    text.parse().expect("ip")
}

/// Runs `th` once and asserts it is refused with `reason` and nothing was written to the
/// device (FortiManager admin users or any FortiGate write).
async fn assert_refused(
    sim: &Simulator,
    t: &Target,
    th: &mut TrustedHost,
    facts: &Facts,
    reason: &str,
) {
    sim.fortimanager("fmg").control().clear_requests();
    sim.fortigate("fw").clear_requests();
    let p = pass(t, th, facts, now()).await;
    let (got, message, remedy) = p
        .refused
        .clone()
        .unwrap_or_else(|| panic!("not refused: {p:?}"));
    assert_eq!(got, reason, "{message}");
    assert!(message.ends_with("nothing was written"), "{message}");
    assert!(!remedy.is_empty());
    assert_eq!(p.wrote, None);
    let ready = &p.status.conditions[0];
    assert_eq!(
        (ready.status.as_str(), ready.reason.as_str()),
        ("False", reason)
    );
    assert_eq!(
        p.status.last_error.as_ref().map(|e| e.reason.as_str()),
        Some(reason)
    );
    assert_eq!(fmg_admin_writes(sim), 0, "no FortiManager write");
    assert_eq!(fg_writes(sim), 0, "no FortiGate write");
}

#[tokio::test]
async fn an_allow_all_slot_masks_the_grant_and_is_named() {
    let sim = sim().await;
    let (t, facts) = target(&sim, TargetKind::FortiManager).await;
    let control = sim.fortimanager("fmg").control().clone();
    let mut alice = control.admin("alice").expect("alice");
    alice.trusthosts[2] = [ip4("0.0.0.0"), ip4("0.0.0.0")];
    control.put_admin(alice);
    let mut th = grant("FortiManager", "alice", json!({"address": "127.0.0.50"}));
    assert_refused(&sim, &t, &mut th, &facts, "SlotMasked").await;
    assert_eq!(th.status.as_ref().expect("status").masked_by, vec![3]);
}

#[tokio::test]
async fn the_default_ipv6_any_of_slot_one_masks_too() {
    let sim = sim().await;
    let (t, facts) = target(&sim, TargetKind::FortiManager).await;
    let control = sim.fortimanager("fmg").control().clone();
    let mut alice = control.admin("alice").expect("alice");
    alice.trusthosts6.clear(); // back to the default: ipv6_trusthost1 ::/0
    control.put_admin(alice);
    let mut th = grant("FortiManager", "alice", json!({"address": "127.0.0.50"}));
    assert_refused(&sim, &t, &mut th, &facts, "SlotMasked").await;
}

#[tokio::test]
async fn a_user_the_fortimanager_does_not_have_is_its_own_reason_f15() {
    let sim = sim().await;
    let (t, facts) = target(&sim, TargetKind::FortiManager).await;
    sim.fortimanager("fmg").control().clear_requests();
    let th = grant("FortiManager", "bob", json!({"address": "127.0.0.50"}));
    let err = converge::converge(&t, &th, &facts, now())
        .await
        .expect_err("no such user");
    assert_eq!(err.reason(), "AdminUserNotFound");
    assert!(err.to_string().contains("\"bob\""), "{err}");
    assert_eq!(fmg_admin_writes(&sim), 0);
}

#[tokio::test]
async fn an_api_admin_without_super_user_is_refused_by_the_device_f14() {
    let sim = sim().await;
    let (t, facts) = target(&sim, TargetKind::FortiManager).await;
    let control = sim.fortimanager("fmg").control().clone();
    assert!(control.set_profile("fortisync", "Standard_User"));
    let mut th = grant("FortiManager", "alice", json!({"address": "127.0.0.50"}));
    let err = converge::converge(&t, &th, &facts, now())
        .await
        .expect_err("refused");
    assert_eq!(err.reason(), "SuperUserRequired");
    assert!(err.remedy().contains("Super_User"));
    let alice = control.admin("alice").expect("alice");
    assert_eq!(
        alice.trusthost_slots()[9],
        [ip4("255.255.255.255"); 2],
        "slot unchanged"
    );
    th.status = None;
}

#[tokio::test]
async fn the_controllers_own_user_is_not_changed_into_a_lockout() {
    let sim = sim().await;
    let (t, facts) = target(&sim, TargetKind::FortiManager).await;
    // `fortisync` (the key's user) trusts only 127.0.0.40, in slot 1; taking slot 1 over for
    // another address would lock the controller out.
    let mut th = grant(
        "FortiManager",
        "fortisync",
        json!({"address": "127.0.0.50", "slot": 1, "allowSlotOne": true, "takeOver": true}),
    );
    assert_refused(&sim, &t, &mut th, &facts, "WouldLockOutController").await;
    assert!(fmg_login_key_works(&sim).await);
}

async fn fmg_login_key_works(sim: &Simulator) -> bool {
    let fmg = sim.fortimanager("fmg");
    let http = sim_client::client(fmg.ca_pem(), ip(CONTROLLER));
    let body = json!({"id": 1, "method": "get", "params": [{"url": "/cli/global/system/status"}]});
    let (_, reply) = sim_client::json(
        sim_client::send(
            &http,
            Method::POST,
            &fmg.jsonrpc_url(),
            Some(FMG_KEY),
            Some(body),
        )
        .await,
    )
    .await;
    reply["result"][0]["status"]["code"] == 0
}

#[tokio::test]
async fn an_unknown_controller_source_refuses_changes_to_an_api_admin() {
    let sim = sim().await;
    let (t, mut facts) = target(&sim, TargetKind::FortiManager).await;
    facts.source = None;
    let mut th = grant(
        "FortiManager",
        "fortisync",
        json!({"address": "127.0.0.50"}),
    );
    assert_refused(&sim, &t, &mut th, &facts, "SourceAddressUnknown").await;
}

#[tokio::test]
async fn a_second_claim_on_the_slot_is_refused_naming_the_first() {
    let sim = sim().await;
    let (t, mut facts) = target(&sim, TargetKind::FortiManager).await;
    facts.claimed_by = Some("team-a/first".into());
    let mut th = grant("FortiManager", "alice", json!({"address": "127.0.0.50"}));
    assert_refused(&sim, &t, &mut th, &facts, "SlotClaimed").await;
    let message = &th.status.as_ref().expect("status").conditions[0].message;
    assert!(message.contains("team-a/first"), "{message}");
}

#[tokio::test]
async fn a_slot_changed_by_hand_is_reported_not_overwritten_and_a_cleared_one_is_repaired() {
    let sim = sim().await;
    let (t, facts) = target(&sim, TargetKind::FortiManager).await;
    let control = sim.fortimanager("fmg").control().clone();
    let mut th = grant("FortiManager", "alice", json!({"address": "127.0.0.50"}));
    pass(&t, &mut th, &facts, now()).await;

    // Cleared by hand: fortisync wrote it, so it is put back and counted.
    let mut alice = control.admin("alice").expect("alice");
    alice.trusthosts[9] = [ip4("255.255.255.255"); 2];
    control.put_admin(alice);
    let repaired = pass(&t, &mut th, &facts, now()).await;
    assert!(repaired.wrote.is_some());
    assert_eq!(repaired.status.drift_repairs, 1);
    assert!(fmg_login(&sim, "alice", "alice-pw", 50).await);

    // Set to another address by hand: someone else's now, reported and left.
    let mut alice = control.admin("alice").expect("alice");
    alice.trusthosts[9] = [ip4("127.0.0.99"), ip4("255.255.255.255")];
    control.put_admin(alice);
    assert_refused(&sim, &t, &mut th, &facts, "SlotForeign").await;
    let alice = control.admin("alice").expect("alice");
    assert_eq!(
        alice.trusthosts[9],
        [ip4("127.0.0.99"), ip4("255.255.255.255")]
    );
    assert_eq!(th.status.as_ref().expect("status").drift_repairs, 1);
}

#[tokio::test]
async fn ipv6_halves_are_written_and_closed_on_a_fortimanager() {
    let sim = sim().await;
    let (t, facts) = target(&sim, TargetKind::FortiManager).await;
    let until = in_a_minute();
    let mut th = grant(
        "FortiManager",
        "alice",
        json!({"ipv6Address": "2001:db8::/64", "expiresAt": until}),
    );
    pass(&t, &mut th, &facts, now()).await;
    let alice = sim
        .fortimanager("fmg")
        .control()
        .admin("alice")
        .expect("alice");
    assert_eq!(alice.trusthost6_slots()[9].to_string(), "2001:db8::/64");
    assert!(alice.trusts("2001:db8::7".parse::<IpAddr>().expect("ip")));
    pass(&t, &mut th, &facts, until.parse().expect("time")).await;
    let alice = sim
        .fortimanager("fmg")
        .control()
        .admin("alice")
        .expect("alice");
    assert_eq!(
        alice.trusthost6_slots()[9].to_string(),
        "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff/128"
    );
}

#[tokio::test]
async fn fortigate_admin_grant_restricts_to_the_address_and_expiry_leaves_loopback_only() {
    let sim = sim().await;
    let (t, facts) = target(&sim, TargetKind::FortiGate).await;
    assert!(
        fg_login(&sim, "ops", "ops-pw", 61).await,
        "nothing set: open to all"
    );
    let until = in_a_minute();
    let mut th = grant(
        "FortiGate",
        "ops",
        json!({"address": "127.0.0.60", "expiresAt": until}),
    );
    let opened = pass(&t, &mut th, &facts, now()).await;
    assert_eq!(opened.refused, None);
    assert!(
        fg_login(&sim, "ops", "ops-pw", 60).await,
        "the grant lets .60 in"
    );
    assert!(!fg_login(&sim, "ops", "ops-pw", 61).await, "and only .60");
    let closed = pass(&t, &mut th, &facts, until.parse().expect("time")).await;
    assert_eq!(closed.refused, None);
    let ops = sim
        .fortigate("fw")
        .snapshot()
        .admins
        .into_iter()
        .find(|a| a.name == "ops")
        .expect("ops");
    assert_eq!(
        ops.trusthosts[9].to_string(),
        "127.0.0.1/32",
        "closing the last restriction never opens the admin to all"
    );
    assert!(!fg_login(&sim, "ops", "ops-pw", 60).await, "refused again");
    assert!(
        !fg_login(&sim, "ops", "ops-pw", 61).await,
        "and not open to all"
    );
}

#[tokio::test]
async fn fortigate_api_user_grant_is_entry_id_slot_and_expiry_removes_it() {
    let sim = sim().await;
    let (t, facts) = target(&sim, TargetKind::FortiGate).await;
    assert!(!fg_key_works(&sim, CI_KEY, 71).await);
    let until = in_a_minute();
    let mut th = grant(
        "FortiGate",
        "ci",
        json!({"userKind": "ApiUser", "address": "127.0.0.71", "expiresAt": until}),
    );
    let opened = pass(&t, &mut th, &facts, now()).await;
    assert_eq!(opened.refused, None);
    assert!(
        fg_key_works(&sim, CI_KEY, 71).await,
        "the grant lets .71 in"
    );
    assert!(
        fg_key_works(&sim, CI_KEY, 70).await,
        "the user's own entry is kept"
    );
    let ci = sim
        .fortigate("fw")
        .snapshot()
        .api_users
        .into_iter()
        .find(|u| u.name == "ci")
        .expect("ci");
    assert_eq!(ci.trusthost_ids, vec![1, 10]);
    pass(&t, &mut th, &facts, until.parse().expect("time")).await;
    assert!(!fg_key_works(&sim, CI_KEY, 71).await, "refused again");
    assert!(fg_key_works(&sim, CI_KEY, 70).await);
}

#[tokio::test]
async fn fortigate_api_user_that_lets_the_controller_in_is_not_locked_out() {
    let sim = sim().await;
    let (t, facts) = target(&sim, TargetKind::FortiGate).await;
    // `fs` is the key fortisync uses; its only entry (id 1) lets 127.0.0.40 in.
    let mut th = grant(
        "FortiGate",
        "fs",
        json!({"userKind": "ApiUser", "address": "127.0.0.71", "slot": 1, "allowSlotOne": true, "takeOver": true}),
    );
    assert_refused(&sim, &t, &mut th, &facts, "WouldLockOutController").await;
    assert!(fg_key_works(&sim, FW_KEY, CONTROLLER).await);
}

#[tokio::test]
async fn a_fortigate_user_that_does_not_exist_is_reported_without_a_write() {
    let sim = sim().await;
    let (t, facts) = target(&sim, TargetKind::FortiGate).await;
    sim.fortigate("fw").clear_requests();
    let th = grant("FortiGate", "nobody", json!({"address": "127.0.0.60"}));
    let err: ReconcileError = converge::converge(&t, &th, &facts, now())
        .await
        .expect_err("no user");
    assert_eq!(err.reason(), "AdminUserNotFound");
    assert_eq!(fg_writes(&sim), 0);
}

#[tokio::test]
async fn a_slot_whose_status_write_was_lost_is_still_recorded_and_closed() {
    let sim = sim().await;
    let (t, facts) = target(&sim, TargetKind::FortiManager).await;
    let mut th = grant("FortiManager", "alice", json!({"address": "127.0.0.50"}));
    pass(&t, &mut th, &facts, now()).await;
    // The status update after the write never landed: the next pass finds the slot holding
    // exactly the spec's value and records it as its own.
    th.status = None;
    let again = pass(&t, &mut th, &facts, now()).await;
    assert_eq!(again.wrote, None);
    let written = again.status.written.expect("recorded");
    assert_eq!(written.value.address.as_deref(), Some("127.0.0.50/32"));
    // And a close that only knows the spec's value still closes it.
    let granted = converge::granted(&th).expect("value");
    let closed =
        converge::close_if_ours(&t, &th, "alice", th.spec.user_kind, 10, &[granted], &facts)
            .await
            .expect("close");
    assert!(closed.is_ok());
    let alice = sim
        .fortimanager("fmg")
        .control()
        .admin("alice")
        .expect("alice");
    assert_eq!(alice.trusthost_slots()[9], [ip4("255.255.255.255"); 2]);
}
