//! TrustedHost end to end on the real apiserver with the simulator: a FortiManager admin and a
//! FortiGate admin and API user get a slot opened for a 127.0.0.x source (which the simulator
//! then lets in), closed on time (and the source refused again), closed or left on delete
//! (Delete / Orphan); every safety rule refuses with its reason and the device gets no write;
//! a cleared slot is repaired, one changed by hand is reported and left.

use std::net::Ipv4Addr;
use std::time::Duration;

use fortisync::api::TrustedHost;
use fortisync::api::trustedhost::TrustedHostStatus;
use fortisync::sim::{Scenario, Simulator};
use kube::Api;
use reqwest::Method;
use serde_json::{Value, json};

use crate::support::control_plane;
use crate::support::fixture::{condition, condition_message, secret, start_controller, wait_for};

#[path = "../support/sim_client.rs"]
mod sim_client;

use sim_client::ip;

const WAIT: Duration = Duration::from_secs(30);
const FMG_KEY: &str = "e2e-fmg-key-000000000000000001";
const FW_KEY: &str = "e2e-fw-key-0000000000000000001";
const CI_KEY: &str = "e2e-ci-key-0000000000000000001";

/// Slots 1-9 of a FortiManager admin set as seed 003 asks (127.0.0.1), IPv6 slot 1 `::1`.
const SEEDED: &str = "trusthosts6: [\"::1/128\"], trusthosts: [[127.0.0.1, 255.255.255.255], [127.0.0.1, 255.255.255.255], [127.0.0.1, 255.255.255.255], [127.0.0.1, 255.255.255.255], [127.0.0.1, 255.255.255.255], [127.0.0.1, 255.255.255.255], [127.0.0.1, 255.255.255.255], [127.0.0.1, 255.255.255.255], [127.0.0.1, 255.255.255.255]]";

async fn sim() -> Simulator {
    let admin = |user: &str| {
        format!(
            "      - {{userid: {user}, password: {user}-pw, rpc_permit: read-write, profile: Standard_User, {SEEDED}}}\n"
        )
    };
    let mut yaml = format!(
        "fortimanagers:\n  - name: fmg\n    admins:\n      - {{userid: fortisync, user_type: api, rpc_permit: read-write, profile: Super_User, api_key: {FMG_KEY}, trusthosts: [[127.0.0.40, 255.255.255.255]], trusthosts6: [\"::1/128\"]}}\n"
    );
    for user in ["alice", "bob", "carol", "dave"] {
        yaml.push_str(&admin(user));
    }
    yaml.push_str(&format!(
        "fortigates:\n  - name: fw\n    version: \"7.4.3\"\n    api_users:\n      - {{name: fs, key: {FW_KEY}, trusthosts: [\"127.0.0.40/32\"]}}\n      - {{name: ci, key: {CI_KEY}, trusthosts: [\"127.0.0.70/32\"]}}\n    admins:\n      - {{name: ops, password: ops-pw}}\n"
    ));
    Simulator::start(Scenario::from_yaml(&yaml).expect("scenario"))
        .await
        .expect("simulator")
}

/// The connections `fmg` and `fw`, from 127.0.0.40, resyncing every 10 s.
async fn connections(ns: &str, sim: &Simulator) {
    let cp = control_plane();
    let fmg = sim.fortimanager("fmg");
    let fg = sim.fortigate("fw");
    secret(ns, "fmg-token", FMG_KEY, fmg.ca_pem().expect("ca")).await;
    secret(ns, "fw-token", FW_KEY, fg.ca_pem().expect("ca")).await;
    let connection = |kind: &str, name: &str, url: &str, extra: &str| {
        format!(
            "apiVersion: fortisync.dev/v1alpha1\nkind: {kind}\nmetadata: {{name: {name}}}\nspec:\n  url: {url}\n  credentialsSecretRef: {{name: {name}-token, tokenKey: token}}\n  tls: {{caBundleSecretRef: {{name: {name}-token, key: ca.crt}}}}\n  sourceAddress: 127.0.0.40\n  resyncInterval: 10s\n{extra}"
        )
    };
    let (ok, err) = cp.apply(
        ns,
        &connection("FortiManager", "fmg", fmg.url(), "  adom: root\n"),
    );
    assert!(ok, "{err}");
    let (ok, err) = cp.apply(ns, &connection("FortiGate", "fw", fg.url(), ""));
    assert!(ok, "{err}");
}

fn trusted_host(name: &str, kind: &str, target: &str, spec: Value) -> String {
    let mut s = json!({"targetRef": {"kind": kind, "name": target}});
    s.as_object_mut()
        .expect("object")
        .extend(spec.as_object().expect("object").clone());
    json!({"apiVersion": "fortisync.dev/v1alpha1", "kind": "TrustedHost", "metadata": {"name": name}, "spec": s}).to_string()
}

fn apply(ns: &str, manifest: &str) {
    let (ok, err) = control_plane().apply(ns, manifest);
    assert!(ok, "{err}");
}

async fn ready(ns: &str, name: &str, ok: &str, reason: &str) -> TrustedHostStatus {
    let api: Api<TrustedHost> = Api::namespaced(control_plane().client(), ns);
    wait_for(
        &format!("TrustedHost {name} Ready={ok} {reason}"),
        WAIT,
        || async {
            let th = api.get(name).await.ok()?;
            let s = th.status?;
            (s.observed_generation == th.metadata.generation
                && condition(&s.conditions, "Ready") == Some((ok.into(), reason.into())))
            .then_some(s)
        },
    )
    .await
}

fn fmg_slot(sim: &Simulator, user: &str, n: usize) -> [Ipv4Addr; 2] {
    sim.fortimanager("fmg")
        .control()
        .admin(user)
        .expect("user")
        .trusthost_slots()[n - 1]
}

fn ip4(text: &str) -> Ipv4Addr {
    text.parse().expect("ip")
}

const UNUSED: [Ipv4Addr; 2] = [Ipv4Addr::BROADCAST, Ipv4Addr::BROADCAST];

async fn fmg_login(sim: &Simulator, user: &str, from: u8) -> bool {
    let fmg = sim.fortimanager("fmg");
    let http = sim_client::client(fmg.ca_pem(), ip(from));
    let body = json!({"id": 1, "method": "exec", "params": [{"url": "/sys/login/user", "data": {"user": user, "passwd": format!("{user}-pw")}}]});
    let (_, reply) = sim_client::json(
        sim_client::send(&http, Method::POST, &fmg.jsonrpc_url(), None, Some(body)).await,
    )
    .await;
    reply["result"][0]["status"]["code"] == 0
}

async fn fg_login(sim: &Simulator, from: u8) -> bool {
    let fg = sim.fortigate("fw");
    let http = sim_client::client(fg.ca_pem(), ip(from));
    let url = format!("{}/api/v2/authentication", fg.url());
    let body = json!({"username": "ops", "secretkey": "ops-pw", "password": "ops-pw"});
    let (_, reply) =
        sim_client::json(sim_client::send(&http, Method::POST, &url, None, Some(body)).await).await;
    let code = reply
        .get("status")
        .or(reply.get("status_code"))
        .and_then(Value::as_i64);
    matches!(code, Some(5) | Some(6))
}

async fn fg_key_works(sim: &Simulator, key: &str, from: u8) -> bool {
    let fg = sim.fortigate("fw");
    let http = sim_client::client(fg.ca_pem(), ip(from));
    let url = format!("{}/api/v2/monitor/system/status", fg.url());
    let (status, _) =
        sim_client::json(sim_client::send(&http, Method::GET, &url, Some(key), None).await).await;
    status == 200
}

/// FortiManager writes to admin user `user`.
fn fmg_writes_to(sim: &Simulator, user: &str) -> usize {
    sim.fortimanager("fmg")
        .control()
        .requests()
        .iter()
        .filter(|r| r.method != "get" && r.url.ends_with(&format!("/system/admin/user/{user}")))
        .count()
}

fn soon(seconds: i64) -> String {
    jiff::Timestamp::from_second(jiff::Timestamp::now().as_second() + seconds)
        .expect("timestamp")
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fortimanager_slot_opens_for_the_source_closes_on_time_and_on_delete() {
    let cp = control_plane();
    cp.install_crds();
    let ns = cp.namespace("th-fmg");
    let sim = sim().await;
    connections(&ns, &sim).await;
    let _controller = start_controller(&ns);
    assert!(!fmg_login(&sim, "alice", 50).await);

    let until = soon(6);
    apply(
        &ns,
        &trusted_host(
            "alice",
            "FortiManager",
            "fmg",
            json!({"user": "alice", "address": "127.0.0.50", "expiresAt": until}),
        ),
    );
    let s = ready(&ns, "alice", "True", "Open").await;
    assert_eq!(
        fmg_slot(&sim, "alice", 10),
        [ip4("127.0.0.50"), Ipv4Addr::BROADCAST]
    );
    assert!(fmg_login(&sim, "alice", 50).await, "the grant lets .50 in");
    assert_eq!(
        s.slot.and_then(|v| v.address).as_deref(),
        Some("127.0.0.50/32")
    );
    assert_eq!(s.open_until.map(|t| t.0.to_string()), Some(until.clone()));

    // Closed on time: the pass at expiresAt writes the unused value back.
    let s = ready(&ns, "alice", "True", "Closed").await;
    assert_eq!(fmg_slot(&sim, "alice", 10), UNUSED);
    assert!(!fmg_login(&sim, "alice", 50).await, "refused again");
    assert_eq!(s.open_until, None);

    // Open again without an end; deleting (Delete) closes it.
    apply(
        &ns,
        &trusted_host(
            "alice",
            "FortiManager",
            "fmg",
            json!({"user": "alice", "address": "127.0.0.51"}),
        ),
    );
    ready(&ns, "alice", "True", "Open").await;
    assert!(fmg_login(&sim, "alice", 51).await);
    let api: Api<TrustedHost> = Api::namespaced(cp.client(), &ns);
    api.delete("alice", &Default::default())
        .await
        .expect("delete");
    wait_for("the resource gone", WAIT, || async {
        api.get_opt("alice").await.ok()?.is_none().then_some(())
    })
    .await;
    assert_eq!(fmg_slot(&sim, "alice", 10), UNUSED);
    assert!(!fmg_login(&sim, "alice", 51).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fortigate_admin_and_api_user_slots_open_expire_and_orphan_stays() {
    let cp = control_plane();
    cp.install_crds();
    let ns = cp.namespace("th-fg");
    let sim = sim().await;
    connections(&ns, &sim).await;
    let _controller = start_controller(&ns);
    assert!(!fg_key_works(&sim, CI_KEY, 71).await);

    let until = soon(6);
    apply(
        &ns,
        &trusted_host(
            "ops",
            "FortiGate",
            "fw",
            json!({"user": "ops", "address": "127.0.0.60", "expiresAt": until}),
        ),
    );
    apply(
        &ns,
        &trusted_host(
            "ci",
            "FortiGate",
            "fw",
            json!({"user": "ci", "userKind": "ApiUser", "address": "127.0.0.71", "deletionPolicy": "Orphan"}),
        ),
    );
    ready(&ns, "ops", "True", "Open").await;
    ready(&ns, "ci", "True", "Open").await;
    assert!(fg_login(&sim, 60).await, "the admin from .60");
    assert!(!fg_login(&sim, 61).await, "and only from .60");
    assert!(
        fg_key_works(&sim, CI_KEY, 71).await,
        "the API user from .71"
    );

    ready(&ns, "ops", "True", "Closed").await;
    assert!(!fg_login(&sim, 60).await, "refused again");
    assert!(!fg_login(&sim, 61).await, "and not opened to everyone");

    let api: Api<TrustedHost> = Api::namespaced(cp.client(), &ns);
    api.delete("ci", &Default::default()).await.expect("delete");
    wait_for("the resource gone", WAIT, || async {
        api.get_opt("ci").await.ok()?.is_none().then_some(())
    })
    .await;
    assert!(
        fg_key_works(&sim, CI_KEY, 71).await,
        "Orphan leaves the slot open"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_safety_rule_refuses_with_its_reason_and_writes_nothing() {
    let cp = control_plane();
    cp.install_crds();
    let ns = cp.namespace("th-safety");
    let sim = sim().await;
    let control = sim.fortimanager("fmg").control().clone();
    // bob: slot 3 allows everyone (F20). carol: slot 10 holds someone else's address.
    let mut bob = control.admin("bob").expect("bob");
    bob.trusthosts[2] = [Ipv4Addr::UNSPECIFIED; 2];
    control.put_admin(bob);
    let mut carol = control.admin("carol").expect("carol");
    carol
        .trusthosts
        .push([ip4("127.0.0.99"), Ipv4Addr::BROADCAST]);
    control.put_admin(carol);
    connections(&ns, &sim).await;
    let _controller = start_controller(&ns);

    let grant = |name: &str, spec: Value| trusted_host(name, "FortiManager", "fmg", spec);
    apply(
        &ns,
        &grant("masked", json!({"user": "bob", "address": "127.0.0.50"})),
    );
    apply(
        &ns,
        &grant("foreign", json!({"user": "carol", "address": "127.0.0.50"})),
    );
    apply(
        &ns,
        &grant("nobody", json!({"user": "zed", "address": "127.0.0.50"})),
    );
    apply(
        &ns,
        &grant(
            "self",
            json!({"user": "fortisync", "address": "127.0.0.50", "slot": 1, "allowSlotOne": true, "takeOver": true}),
        ),
    );
    apply(
        &ns,
        &grant("first", json!({"user": "dave", "address": "127.0.0.52"})),
    );
    ready(&ns, "first", "True", "Open").await;
    apply(
        &ns,
        // The first's address: deleting the second must still not close the first's slot.
        &grant("second", json!({"user": "dave", "address": "127.0.0.52"})),
    );

    let s = ready(&ns, "masked", "False", "SlotMasked").await;
    assert_eq!(s.masked_by, vec![3]);
    assert!(condition_message(&s.conditions, "Ready").contains("127.0.0.1"));
    ready(&ns, "foreign", "False", "SlotForeign").await;
    let s = ready(&ns, "nobody", "False", "AdminUserNotFound").await;
    assert!(s.last_error.expect("error").remedy.contains("exactly"));
    ready(&ns, "self", "False", "WouldLockOutController").await;
    let s = ready(&ns, "second", "False", "SlotClaimed").await;
    assert!(condition_message(&s.conditions, "Ready").contains(&format!("{ns}/first")));

    for user in ["bob", "carol", "zed", "fortisync"] {
        assert_eq!(fmg_writes_to(&sim, user), 0, "no write to {user}");
    }
    assert_eq!(
        fmg_slot(&sim, "carol", 10),
        [ip4("127.0.0.99"), Ipv4Addr::BROADCAST]
    );
    assert_eq!(
        fmg_slot(&sim, "fortisync", 1),
        [ip4("127.0.0.40"), Ipv4Addr::BROADCAST]
    );

    // Neither claimant flaps: past a resync the first still holds the slot, one write in all.
    tokio::time::sleep(Duration::from_secs(12)).await;
    ready(&ns, "first", "True", "Open").await;
    ready(&ns, "second", "False", "SlotClaimed").await;
    assert_eq!(
        fmg_slot(&sim, "dave", 10),
        [ip4("127.0.0.52"), Ipv4Addr::BROADCAST]
    );
    assert_eq!(fmg_writes_to(&sim, "dave"), 1);
    let api: Api<TrustedHost> = Api::namespaced(cp.client(), &ns);
    api.delete("second", &Default::default())
        .await
        .expect("delete");
    wait_for("the second gone", WAIT, || async {
        api.get_opt("second").await.ok()?.is_none().then_some(())
    })
    .await;
    assert_eq!(
        fmg_slot(&sim, "dave", 10),
        [ip4("127.0.0.52"), Ipv4Addr::BROADCAST]
    );
    assert_eq!(
        fmg_writes_to(&sim, "dave"),
        1,
        "the refused claim's delete wrote nothing"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cleared_slot_is_repaired_and_one_changed_by_hand_is_reported_not_overwritten() {
    let cp = control_plane();
    cp.install_crds();
    let ns = cp.namespace("th-drift");
    let sim = sim().await;
    connections(&ns, &sim).await;
    let _controller = start_controller(&ns);
    let control = sim.fortimanager("fmg").control().clone();
    apply(
        &ns,
        &trusted_host(
            "alice",
            "FortiManager",
            "fmg",
            json!({"user": "alice", "address": "127.0.0.50"}),
        ),
    );
    ready(&ns, "alice", "True", "Open").await;

    let mut alice = control.admin("alice").expect("alice");
    alice.trusthosts[9] = UNUSED;
    control.put_admin(alice);
    let api: Api<TrustedHost> = Api::namespaced(cp.client(), &ns);
    wait_for("the drift repaired at the next resync", WAIT, || async {
        let s = api.get("alice").await.ok()?.status?;
        (s.drift_repairs == 1).then_some(())
    })
    .await;
    assert_eq!(
        fmg_slot(&sim, "alice", 10),
        [ip4("127.0.0.50"), Ipv4Addr::BROADCAST]
    );

    let mut alice = control.admin("alice").expect("alice");
    alice.trusthosts[9] = [ip4("127.0.0.77"), Ipv4Addr::BROADCAST];
    control.put_admin(alice);
    let s = ready(&ns, "alice", "False", "SlotForeign").await;
    assert!(condition_message(&s.conditions, "Ready").contains("127.0.0.77/32"));
    assert_eq!(
        fmg_slot(&sim, "alice", 10),
        [ip4("127.0.0.77"), Ipv4Addr::BROADCAST]
    );
    assert_eq!(s.drift_repairs, 1);
}

#[test]
fn the_api_server_refuses_what_admission_refuses_with_the_same_words() {
    use fortisync::api::trustedhost as th;
    let cp = control_plane();
    cp.install_crds();
    let ns = cp.namespace("th-admission");
    let cases = [
        (
            json!({"user": "a", "address": "192.0.2.1", "slot": 1}),
            "spec.slot",
            th::SLOT_ONE_MESSAGE,
        ),
        (
            json!({"user": "a", "address": "0.0.0.0/0"}),
            "spec.address",
            th::NOT_ANY_MESSAGE,
        ),
        (
            json!({"user": "a", "ipv6Address": "::/0"}),
            "spec.ipv6Address",
            th::NOT_ANY_MESSAGE,
        ),
        (json!({"user": "a"}), "spec", th::ADDRESS_REQUIRED_MESSAGE),
        (
            json!({"user": "a", "address": "192.0.2.1", "userKind": "ApiUser"}),
            "spec.userKind",
            th::API_USER_MESSAGE,
        ),
        (
            json!({"user": "a", "address": "10.0.0.1/8"}),
            "spec.address",
            th::NO_HOST_BITS_MESSAGE,
        ),
        (
            json!({"user": "a", "address": "192.0.2.1", "slot": 11}),
            "spec.slot",
            "less than or equal to 10",
        ),
    ];
    for (spec, field, reason) in cases {
        let manifest = trusted_host("bad", "FortiManager", "fmg", spec.clone());
        let (ok, err) = cp.apply(&ns, &manifest);
        assert!(!ok, "{spec} admitted");
        assert!(err.contains(field) && err.contains(reason), "{spec}: {err}");
        let typed: fortisync::api::TrustedHostSpec = serde_json::from_value(
            serde_json::from_str::<Value>(&manifest).expect("json")["spec"].clone(),
        )
        .expect("spec");
        let offline = fortisync::api::validate::validate_trustedhost(&typed);
        assert!(
            offline
                .iter()
                .any(|p| p.starts_with(&format!("{field}: ")) && p.contains(reason)),
            "{spec}: offline {offline:?}"
        );
    }
    let (ok, err) = cp.apply(
        &ns,
        &trusted_host(
            "good",
            "FortiManager",
            "fmg",
            json!({"user": "a", "address": "192.0.2.1"}),
        ),
    );
    assert!(ok, "{err}");
    let (ok, err) = cp.apply(&ns, include_str!("../../examples/trustedhosts.yaml"));
    assert!(ok, "examples/trustedhosts.yaml: {err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_device_policys_names_bound_which_users_a_namespace_may_open() {
    let cp = control_plane();
    cp.install_crds();
    let ns = cp.namespace("th-policy");
    let sim = sim().await;
    let fmg = sim.fortimanager("fmg");
    let policy = format!(
        "apiVersion: fortisync.dev/v1alpha1\nkind: DevicePolicy\nmetadata: {{name: {ns}}}\nspec:\n  devices: [\"{}\"]\n  namespaces:\n  - {{namespace: {ns}, names: [\"team-a-*\"]}}\n",
        fmg.url()
    );
    let (ok, err) = cp.apply("default", &policy);
    assert!(ok, "{err}");
    connections(&ns, &sim).await;
    let _controller = start_controller(&ns);
    apply(
        &ns,
        &trusted_host(
            "alice",
            "FortiManager",
            "fmg",
            json!({"user": "alice", "address": "127.0.0.50"}),
        ),
    );
    let s = ready(&ns, "alice", "False", "NotAllowedByPolicy").await;
    assert!(condition_message(&s.conditions, "Ready").contains("spec.user"));
    assert_eq!(fmg_writes_to(&sim, "alice"), 0);
    assert_eq!(fmg_slot(&sim, "alice", 10), UNUSED);
    cp.kubectl_ok(&["delete", "devicepolicy", &ns]);
}
