//! An ExternalConnector through a FortiManager ADOM in workspace mode: the ADOM's
//! `system/external-resource` goes lock → write → commit → unlock, the list is pushed to every
//! targeted FortiGate through `/sys/proxy/json`, a converged pass writes nothing, an
//! unreachable or unknown device is reported on its own while the others converge, a lock
//! held by someone else stops every write, a hand-made resource is refused per device, and
//! deletion cleans the ADOM and the devices.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use fortisync::api::addressgroup::TargetKind;
use fortisync::api::common::ConnectionSpec;
use fortisync::api::externalconnector::{
    ConnectorDeviceTarget, ConnectorMode, ServerIdentityCheck,
};
use fortisync::api::fortimanager::FortiManagerSpec;
use fortisync::device::{Credentials, DeviceMetrics, Endpoints};
use fortisync::model::Owner;
use fortisync::reconcile::connection::{ResolvedConnection, endpoint_config};
use fortisync::reconcile::error::ReconcileError;
use fortisync::reconcile::externalconnector::PUSH_ONLY_URL;
use fortisync::reconcile::externalconnector::fortimanager::{self, Outcome};
use fortisync::reconcile::externalconnector::plan::{DesiredResource, ObjectWrite};
use fortisync::reconcile::externalconnector::proxied::{DevicePass, DeviceState};
use fortisync::reconcile::target::{DeviceFacts, Target};
use fortisync::sim::Simulator;
use fortisync::sim::fortimanager::Table as AdomTable;
use fortisync::sim::fortios::Table;
use serde_json::json;

#[path = "support/estate.rs"]
mod estate;

use estate::{Estate, FMG_KEY};

const RESOURCE: &str = "fs-blocklist";
const MARKER: &str = "managed-by fortisync team-a/blocklist";

fn spec(url: &str) -> FortiManagerSpec {
    serde_json::from_value(json!({
        "url": url,
        "credentialsSecretRef": {"name": "fmg", "tokenKey": "token"},
        "adom": "root",
        "workspace": {"lockRetries": 1},
    }))
    .expect("spec")
}

async fn target(sim: &Simulator, endpoints: &Endpoints) -> Target {
    let fmg = sim.fortimanager("fmg");
    let fmg_spec = spec(fmg.url());
    let connection: ConnectionSpec = fmg_spec.connection.clone();
    let resolved = ResolvedConnection {
        kind: TargetKind::FortiManager,
        namespace: "team-a".into(),
        name: "fmg".into(),
        connection,
        scope: "root".into(),
        fortimanager: Some(fmg_spec),
        credentials: Credentials::Token(FMG_KEY.into()),
        ca_bundle_pem: fmg.ca_pem().map(str::to_string),
    };
    let endpoint = endpoints
        .get(&endpoint_config(&resolved).expect("config"))
        .expect("endpoint");
    Target::connect(endpoint, &resolved, &DeviceFacts::default())
        .await
        .expect("connect")
}

fn owner() -> Owner {
    Owner {
        namespace: "team-a".into(),
        name: "blocklist".into(),
    }
}

fn desired() -> DesiredResource {
    DesiredResource {
        name: RESOURCE.into(),
        owner: owner(),
        mode: ConnectorMode::Push,
        url: PUSH_ONLY_URL.into(),
        refresh_rate: 5,
        credentials: None,
        server_identity_check: ServerIdentityCheck::Full,
        credentials_changed: false,
    }
}

fn entries(items: &[&str]) -> BTreeSet<String> {
    items.iter().map(|s| s.to_string()).collect()
}

fn device(name: &str) -> ConnectorDeviceTarget {
    ConnectorDeviceTarget {
        name: name.into(),
        vdom: None,
    }
}

/// One Push pass, written, as the controller runs it.
async fn converge(
    t: &Target,
    list: &BTreeSet<String>,
    targets: &[ConnectorDeviceTarget],
    converged: &BTreeSet<(String, Option<String>)>,
) -> Result<Outcome, ReconcileError> {
    converge_as(t, &desired(), list, targets, converged).await
}

async fn converge_as(
    t: &Target,
    d: &DesiredResource,
    list: &BTreeSet<String>,
    targets: &[ConnectorDeviceTarget],
    converged: &BTreeSet<(String, Option<String>)>,
) -> Result<Outcome, ReconcileError> {
    let Target::FortiManager {
        client,
        spec,
        firmware,
    } = t
    else {
        panic!("a FortiManager target")
    };
    let pass = DevicePass {
        desired: d,
        take_over: false,
        entries: list,
        targets,
        converged,
    };
    fortimanager::converge(client, spec, *firmware, pass, true).await
}

fn state_of(out: &Outcome, name: &str) -> DeviceState {
    out.devices
        .iter()
        .find(|d| d.name == name)
        .unwrap_or_else(|| panic!("{name} is reported: {out:?}"))
        .state
}

fn held(sim: &Simulator, device: &str) -> Vec<String> {
    let mut e = sim.fortigate(device).feed_entries("root", RESOURCE);
    e.sort();
    e
}

#[tokio::test]
async fn the_adom_object_is_committed_and_the_push_reaches_both_fortigates_then_nothing_is_written()
{
    let sim = Estate::default().fw_b_version("7.4.3").start().await;
    let endpoints = Endpoints::new(DeviceMetrics::default());
    let t = target(&sim, &endpoints).await;
    let control = sim.fortimanager("fmg").control().clone();
    control.clear_requests();
    let list = entries(&["192.0.2.1", "198.51.100.0/24"]);

    let first = converge(&t, &list, &[], &BTreeSet::new())
        .await
        .expect("converge");
    assert!(matches!(first.adom, ObjectWrite::Create(_)), "{first:?}");
    let adom = control
        .object("root", AdomTable::ExternalResource, RESOURCE)
        .expect("the ADOM object exists");
    assert_eq!(adom["comments"], MARKER);
    assert_eq!(adom["update-method"], "push");
    assert_eq!(adom["type"], "address");
    let urls: Vec<String> = control
        .requests()
        .iter()
        .filter(|r| r.method == "exec")
        .map(|r| r.url.clone())
        .collect();
    let at = |s: &str| urls.iter().position(|u| u.ends_with(s));
    assert!(
        at("/workspace/lock").is_some()
            && at("/workspace/lock") < at("/workspace/commit")
            && at("/workspace/commit") < at("/workspace/unlock"),
        "lock → commit → unlock: {urls:?}"
    );
    assert!(
        control.lock_holder("root").is_none(),
        "the lock is released"
    );
    let want = vec!["192.0.2.1".to_string(), "198.51.100.0/24".to_string()];
    for fw in ["fw-a", "fw-b"] {
        assert_eq!(state_of(&first, fw), DeviceState::Converged, "{fw}");
        assert_eq!(held(&sim, fw), want, "{fw}");
        let object = sim
            .fortigate(fw)
            .object("root", Table::ExternalResource, RESOURCE)
            .expect("the device's resource");
        assert_eq!(object["comments"], MARKER, "{fw}");
        assert_eq!(object["update-method"], "push", "{fw}");
    }
    // Per device: the object and one batched dynamic call; both devices get the same two
    // requests, so each went out once for both.
    assert_eq!(first.devices.iter().map(|d| d.writes).sum::<usize>(), 4);

    control.clear_requests();
    let synced: BTreeSet<(String, Option<String>)> =
        [("fw-a".into(), None), ("fw-b".into(), None)].into();
    let again = converge(&t, &list, &[], &synced).await.expect("again");
    assert_eq!(again.writes(), 0, "{again:?}");
    assert_eq!(again.adom, ObjectWrite::None);
    // Converged: one ADOM read and two proxy reads (the object, entry-list) reaching both
    // devices at once; no lock, no write.
    let calls: Vec<(String, String)> = control
        .requests()
        .iter()
        .map(|r| (r.method.clone(), r.url.clone()))
        .collect();
    assert_eq!(
        calls,
        [
            (
                "get".to_string(),
                format!("/pm/config/adom/root/obj/system/external-resource/{RESOURCE}")
            ),
            ("exec".to_string(), "/sys/proxy/json".to_string()),
            ("exec".to_string(), "/sys/proxy/json".to_string()),
        ]
    );
}

#[tokio::test]
async fn an_edit_pushes_add_and_remove_and_a_hand_removed_entry_is_restored_with_a_snapshot() {
    let sim = Estate::default().fw_b_version("7.4.3").start().await;
    let endpoints = Endpoints::new(DeviceMetrics::default());
    let t = target(&sim, &endpoints).await;
    converge(
        &t,
        &entries(&["192.0.2.1", "192.0.2.2"]),
        &[],
        &BTreeSet::new(),
    )
    .await
    .expect("first");
    let edited = entries(&["192.0.2.2", "192.0.2.3"]);
    let out = converge(&t, &edited, &[], &BTreeSet::new())
        .await
        .expect("edit");
    assert_eq!(out.adom, ObjectWrite::None, "the ADOM object is unchanged");
    for fw in ["fw-a", "fw-b"] {
        assert_eq!(held(&sim, fw), ["192.0.2.2", "192.0.2.3"], "{fw}");
    }
    // An admin removes an entry on fw-a by hand.
    let (status, _) = sim.fortigate("fw-a").dispatch_internal(
        "POST",
        "/api/v2/monitor/system/external-resource/dynamic",
        Some(json!({"commands": [{"name": RESOURCE, "command": "remove", "entries": ["192.0.2.3"]}]})),
    );
    assert_eq!(status, 200);
    let synced: BTreeSet<(String, Option<String>)> =
        [("fw-a".into(), None), ("fw-b".into(), None)].into();
    let repaired = converge(&t, &edited, &[], &synced).await.expect("repair");
    assert_eq!(repaired.drift_writes(), 1, "{repaired:?}");
    assert_eq!(held(&sim, "fw-a"), ["192.0.2.2", "192.0.2.3"]);
    assert_eq!(state_of(&repaired, "fw-a"), DeviceState::Converged);
    assert_eq!(
        repaired
            .devices
            .iter()
            .find(|d| d.name == "fw-b")
            .map(|d| d.writes),
        Some(0)
    );
}

#[tokio::test]
async fn an_unreachable_device_is_reported_and_the_other_converges() {
    let sim = Estate::default().with_unreachable_device().start().await;
    let endpoints = Endpoints::new(DeviceMetrics::default());
    let t = target(&sim, &endpoints).await;
    let out = converge(
        &t,
        &entries(&["192.0.2.1"]),
        &[device("fw-a"), device("fw-gone")],
        &BTreeSet::new(),
    )
    .await
    .expect("one device down does not fail the pass");
    assert_eq!(state_of(&out, "fw-a"), DeviceState::Converged);
    assert_eq!(held(&sim, "fw-a"), ["192.0.2.1"]);
    let gone = out
        .devices
        .iter()
        .find(|d| d.name == "fw-gone")
        .expect("listed");
    assert_eq!(gone.state, DeviceState::Unreachable);
    assert!(
        gone.error
            .as_deref()
            .is_some_and(|e| e.contains("device unreachable")),
        "{gone:?}"
    );
    assert_eq!(out.devices.len(), 2, "fw-b is not targeted: {out:?}");
}

#[tokio::test]
async fn an_unknown_device_target_gets_its_own_reason_and_the_others_converge() {
    let sim = Estate::default().fw_b_version("7.4.3").start().await;
    let endpoints = Endpoints::new(DeviceMetrics::default());
    let t = target(&sim, &endpoints).await;
    let out = converge(
        &t,
        &entries(&["192.0.2.1"]),
        &[device("fw-a"), device("fw-typo"), device("fw-b")],
        &BTreeSet::new(),
    )
    .await
    .expect("converge");
    let typo = out
        .devices
        .iter()
        .find(|d| d.name == "fw-typo")
        .expect("listed");
    assert_eq!(typo.state, DeviceState::UnknownDevice);
    assert_eq!(typo.state.reason(), "UnknownDevice");
    assert!(
        typo.error.as_deref().is_some_and(
            |e| e.contains("has no device \"fw-typo\"") && e.contains("spec.deviceTargets")
        ),
        "{typo:?}"
    );
    for fw in ["fw-a", "fw-b"] {
        assert_eq!(state_of(&out, fw), DeviceState::Converged, "{fw}");
        assert_eq!(held(&sim, fw), ["192.0.2.1"], "{fw}");
    }
}

#[tokio::test]
async fn a_lock_held_by_another_admin_is_reported_and_nothing_is_written_anywhere() {
    let sim = Estate::default().fw_b_version("7.4.3").start().await;
    let endpoints = Endpoints::new(DeviceMetrics::default());
    let t = target(&sim, &endpoints).await;
    let control = sim.fortimanager("fmg").control().clone();
    control.hold_lock("root", "alice").expect("alice locks");

    let err = converge(&t, &entries(&["192.0.2.1"]), &[], &BTreeSet::new())
        .await
        .expect_err("locked by alice");
    assert_eq!(err.reason(), "WorkspaceLocked");
    assert!(err.to_string().contains("alice"), "names the holder: {err}");
    assert!(
        control
            .object("root", AdomTable::ExternalResource, RESOURCE)
            .is_none()
    );
    for fw in ["fw-a", "fw-b"] {
        assert!(
            sim.fortigate(fw)
                .object("root", Table::ExternalResource, RESOURCE)
                .is_none(),
            "{fw} is not written while the ADOM is locked"
        );
    }

    control.release_lock("root").expect("alice unlocks");
    converge(&t, &entries(&["192.0.2.1"]), &[], &BTreeSet::new())
        .await
        .expect("after the unlock");
    assert_eq!(held(&sim, "fw-b"), ["192.0.2.1"]);
}

#[tokio::test]
async fn a_hand_made_resource_is_refused_on_its_device_and_a_7_0_device_cannot_take_a_push() {
    // fw-b runs 6.4.14: no dynamic API there.
    let sim = Estate::default().start().await;
    let endpoints = Endpoints::new(DeviceMetrics::default());
    let t = target(&sim, &endpoints).await;
    let out = converge(&t, &entries(&["192.0.2.1"]), &[], &BTreeSet::new())
        .await
        .expect("converge");
    assert_eq!(
        state_of(&out, "fw-b"),
        DeviceState::Refused("PushUnsupported")
    );
    assert!(
        sim.fortigate("fw-b")
            .object("root", Table::ExternalResource, RESOURCE)
            .is_none(),
        "nothing is written to fw-b"
    );
    assert_eq!(state_of(&out, "fw-a"), DeviceState::Converged);

    // On a second ADOM device, the resource exists and was made by hand.
    let sim = Estate::default().fw_b_version("7.4.3").start().await;
    sim.fortigate("fw-b")
        .put_object(
            "root",
            Table::ExternalResource,
            json!({"name": RESOURCE, "type": "address", "update-method": "push", "resource": "https://lists.example/x", "comments": "alice's list"}),
        )
        .expect("hand-made resource");
    let t = target(&sim, &endpoints).await;
    let out = converge(&t, &entries(&["192.0.2.1"]), &[], &BTreeSet::new())
        .await
        .expect("converge");
    assert_eq!(
        state_of(&out, "fw-b"),
        DeviceState::Refused("ResourceNotOwned")
    );
    let theirs = sim
        .fortigate("fw-b")
        .object("root", Table::ExternalResource, RESOURCE)
        .expect("kept");
    assert_eq!(theirs["comments"], "alice's list", "not modified");
    assert!(held(&sim, "fw-b").is_empty());
    assert_eq!(state_of(&out, "fw-a"), DeviceState::Converged);
}

#[tokio::test]
async fn deletion_removes_the_adom_object_and_every_devices_resource_only_where_ours() {
    let sim = Estate::default().fw_b_version("7.4.3").start().await;
    let endpoints = Endpoints::new(DeviceMetrics::default());
    let t = target(&sim, &endpoints).await;
    converge(
        &t,
        &entries(&["192.0.2.1"]),
        &[device("fw-a")],
        &BTreeSet::new(),
    )
    .await
    .expect("converge");
    sim.fortigate("fw-b")
        .put_object(
            "root",
            Table::ExternalResource,
            json!({"name": RESOURCE, "type": "address", "resource": "https://lists.example/x", "comments": "alice's list"}),
        )
        .expect("hand-made resource");
    let Target::FortiManager { client, spec, .. } = &t else {
        panic!()
    };
    let left = fortimanager::remove(client, spec, RESOURCE, &owner(), &[])
        .await
        .expect("remove");
    assert!(left.is_empty(), "{left:?}");
    let control = sim.fortimanager("fmg").control().clone();
    assert!(
        control
            .object("root", AdomTable::ExternalResource, RESOURCE)
            .is_none()
    );
    assert!(control.lock_holder("root").is_none());
    assert!(
        sim.fortigate("fw-a")
            .object("root", Table::ExternalResource, RESOURCE)
            .is_none()
    );
    assert_eq!(
        sim.fortigate("fw-b")
            .object("root", Table::ExternalResource, RESOURCE)
            .expect("alice's stays")["comments"],
        "alice's list"
    );
}

/// A loopback list URL the simulated FortiGates pull, whose body the test sets.
async fn list_server(body: &str) -> (String, Arc<Mutex<String>>) {
    let state = Arc::new(Mutex::new(body.to_string()));
    let served = state.clone();
    let app = axum::Router::new().route(
        "/list",
        axum::routing::get(move || {
            let served = served.clone();
            async move { served.lock().expect("body").clone() }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}/list", listener.local_addr().expect("addr"));
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (url, state)
}

#[tokio::test]
async fn feed_mode_creates_feed_resources_and_refreshes_each_device_through_the_proxy_on_a_change()
{
    let (url, body) = list_server("192.0.2.1\n").await;
    let sim = Estate::default().start().await;
    let endpoints = Endpoints::new(DeviceMetrics::default());
    let t = target(&sim, &endpoints).await;
    let feed = DesiredResource {
        mode: ConnectorMode::Feed,
        url: url.clone(),
        refresh_rate: 60,
        server_identity_check: ServerIdentityCheck::None,
        ..desired()
    };
    let wait = Duration::from_secs(10);
    let first = converge_as(&t, &feed, &entries(&["192.0.2.1"]), &[], &BTreeSet::new())
        .await
        .expect("first");
    let adom = sim
        .fortimanager("fmg")
        .control()
        .object("root", AdomTable::ExternalResource, RESOURCE)
        .expect("the ADOM object");
    assert_eq!(adom["update-method"], "feed");
    assert_eq!(adom["resource"], url.as_str());
    // fw-b runs 6.4.14: a feed works there (no update-method field before 7.2.1).
    for fw in ["fw-a", "fw-b"] {
        assert!(
            !sim.fortigate(fw)
                .wait_for_polls("root", RESOURCE, 1, wait)
                .await
                .is_empty(),
            "{fw} pulled"
        );
        assert_eq!(held(&sim, fw), ["192.0.2.1"], "{fw}");
    }
    assert!(first.devices.iter().all(|d| d.error.is_none()), "{first:?}");

    let settled = converge_as(&t, &feed, &entries(&["192.0.2.1"]), &[], &BTreeSet::new())
        .await
        .expect("settled");
    assert_eq!(settled.writes(), 0, "{settled:?}");
    for fw in ["fw-a", "fw-b"] {
        assert_eq!(state_of(&settled, fw), DeviceState::Converged, "{fw}");
    }
    let polls = |fw: &str| sim.fortigate(fw).feed_polls("root", RESOURCE).len();
    let before = (polls("fw-a"), polls("fw-b"));

    // The list changes: nothing to write, but each device is asked to pull at once.
    *body.lock().expect("body") = "192.0.2.1\n192.0.2.2\n".into();
    let changed = entries(&["192.0.2.1", "192.0.2.2"]);
    let out = converge_as(&t, &feed, &changed, &[], &BTreeSet::new())
        .await
        .expect("change");
    assert_eq!(out.writes(), 0, "a refresh is not a write: {out:?}");
    for (fw, n) in [("fw-a", before.0), ("fw-b", before.1)] {
        sim.fortigate(fw)
            .wait_for_polls("root", RESOURCE, n + 1, wait)
            .await;
        assert_eq!(held(&sim, fw), ["192.0.2.1", "192.0.2.2"], "{fw}");
        assert_eq!(polls(fw), n + 1, "{fw}: one pull, the one asked for");
    }
}

#[tokio::test]
async fn a_device_target_with_a_vdom_is_written_in_that_vdom_only() {
    let mut scenario = Estate::default().fw_b_version("7.4.3").scenario();
    scenario.fortigates[0].vdoms = vec!["root".into(), "dmz".into()];
    let sim = Simulator::start(scenario).await.expect("simulator");
    let endpoints = Endpoints::new(DeviceMetrics::default());
    let t = target(&sim, &endpoints).await;
    let dmz = ConnectorDeviceTarget {
        name: "fw-a".into(),
        vdom: Some("dmz".into()),
    };
    let out = converge(&t, &entries(&["192.0.2.1"]), &[dmz], &BTreeSet::new())
        .await
        .expect("converge");
    assert_eq!(out.devices.len(), 1, "{out:?}");
    assert_eq!(out.devices[0].vdom.as_deref(), Some("dmz"));
    assert_eq!(out.devices[0].state, DeviceState::Converged);
    let fw = sim.fortigate("fw-a");
    assert_eq!(fw.feed_entries("dmz", RESOURCE), ["192.0.2.1"]);
    assert!(
        fw.object("root", Table::ExternalResource, RESOURCE)
            .is_none(),
        "the management VDOM is not written"
    );
    assert!(
        sim.fortigate("fw-b")
            .object("root", Table::ExternalResource, RESOURCE)
            .is_none(),
        "an untargeted device is not written"
    );
}

#[tokio::test]
async fn a_fault_injected_on_a_fortigate_answers_its_proxied_requests_too() {
    use fortisync::sim::fortios::{FaultBody, FaultRule};
    let sim = Estate::default().start().await;
    let fw = sim.fortigate("fw-a");
    fw.add_fault(FaultRule {
        path: "/api/v2/monitor/system/external-resource/dynamic".into(),
        method: Some("POST".into()),
        status: Some(500),
        body: FaultBody::Json,
        error: Some(-5),
        times: Some(1),
        ..FaultRule::default()
    });
    let call = || {
        fw.dispatch_internal(
            "POST",
            "/api/v2/monitor/system/external-resource/dynamic",
            Some(json!({"commands": [{"name": RESOURCE, "command": "add", "entries": ["192.0.2.1"]}]})),
        )
    };
    let (status, body) = call();
    assert_eq!(
        (status, body["http_status"].clone(), body["error"].clone()),
        (500, json!(500), json!(-5))
    );
    assert!(fw.faults().is_empty(), "the rule is used up");
    let (status, _) = call();
    assert_ne!(status, 500, "the next request runs on the device");
}

#[tokio::test]
async fn a_push_one_device_refuses_is_push_failed_there_and_the_other_device_converges() {
    use fortisync::sim::fortios::{FaultBody, FaultRule};
    let sim = Estate::default().fw_b_version("7.4.3").start().await;
    let endpoints = Endpoints::new(DeviceMetrics::default());
    let t = target(&sim, &endpoints).await;
    sim.fortigate("fw-b").add_fault(FaultRule {
        path: "/api/v2/monitor/system/external-resource/dynamic".into(),
        status: Some(500),
        body: FaultBody::Json,
        error: Some(-5),
        times: Some(1),
        ..FaultRule::default()
    });
    let list = entries(&["192.0.2.1"]);
    let out = converge(&t, &list, &[], &BTreeSet::new())
        .await
        .expect("a refused push does not fail the pass");
    assert_eq!(state_of(&out, "fw-a"), DeviceState::Converged);
    let b = out
        .devices
        .iter()
        .find(|d| d.name == "fw-b")
        .expect("listed");
    assert_eq!(b.state, DeviceState::PushFailed, "{b:?}");
    assert!(
        b.error
            .as_deref()
            .is_some_and(|e| e.starts_with("pushing the entries: the device refused it, HTTP 500")),
        "{b:?}"
    );
    assert!(held(&sim, "fw-b").is_empty());
    assert!(
        sim.fortigate("fw-b")
            .object("root", Table::ExternalResource, RESOURCE)
            .is_some(),
        "the object write before the push went through"
    );
    let again = converge(&t, &list, &[], &BTreeSet::new())
        .await
        .expect("again");
    assert_eq!(state_of(&again, "fw-b"), DeviceState::Converged);
    assert_eq!(held(&sim, "fw-b"), ["192.0.2.1"]);
}

#[tokio::test]
async fn deletion_names_the_devices_it_could_not_reach_and_cleans_the_rest() {
    let sim = Estate::default().with_unreachable_device().start().await;
    let endpoints = Endpoints::new(DeviceMetrics::default());
    let t = target(&sim, &endpoints).await;
    let targets = [device("fw-a"), device("fw-gone"), device("fw-typo")];
    converge(&t, &entries(&["192.0.2.1"]), &targets, &BTreeSet::new())
        .await
        .expect("converge");
    let Target::FortiManager { client, spec, .. } = &t else {
        panic!()
    };
    let left = fortimanager::remove(client, spec, RESOURCE, &owner(), &targets)
        .await
        .expect("remove");
    assert_eq!(left, ["fw-gone"], "an unknown name holds nothing to leave");
    assert!(
        sim.fortimanager("fmg")
            .control()
            .object("root", AdomTable::ExternalResource, RESOURCE)
            .is_none()
    );
    assert!(
        sim.fortigate("fw-a")
            .object("root", Table::ExternalResource, RESOURCE)
            .is_none()
    );
}

#[tokio::test]
async fn connectors_queued_for_one_adom_share_one_workspace_session_and_converge_as_alone() {
    use fortisync::reconcile::externalconnector::fmg_batch::{AdomRequest, converge_together};
    let sim = Estate::default().fw_b_version("7.4.3").start().await;
    let endpoints = Endpoints::new(DeviceMetrics::default());
    let t = target(&sim, &endpoints).await;
    let Target::FortiManager {
        client,
        spec,
        firmware,
    } = &t
    else {
        panic!("a FortiManager target")
    };
    let control = sim.fortimanager("fmg").control().clone();
    let request = |i: usize| AdomRequest {
        spec: (**spec).clone(),
        desired: DesiredResource {
            name: format!("fs-list-{i}"),
            owner: Owner {
                namespace: "team-a".into(),
                name: format!("list-{i}"),
            },
            ..desired()
        },
        take_over: false,
        entries: entries(&[&format!("192.0.2.{i}")]),
        targets: Vec::new(),
        converged: BTreeSet::new(),
    };
    control.clear_requests();
    let answers = converge_together(client, *firmware, (0..3).map(request).collect()).await;
    let exec: Vec<String> = control
        .requests()
        .iter()
        .filter(|r| r.method == "exec" && r.url.contains("/workspace/"))
        .map(|r| r.url.rsplit('/').next().unwrap_or_default().to_string())
        .collect();
    assert_eq!(exec, ["lock", "commit", "unlock"], "one session for three");
    for (i, answer) in answers.iter().enumerate() {
        let out = answer.as_ref().expect("converged");
        assert!(matches!(out.adom, ObjectWrite::Create(_)), "{out:?}");
        let name = format!("fs-list-{i}");
        let adom = control
            .object("root", AdomTable::ExternalResource, &name)
            .expect("the ADOM object");
        assert_eq!(
            adom["comments"],
            format!("managed-by fortisync team-a/list-{i}")
        );
        for fw in ["fw-a", "fw-b"] {
            assert_eq!(state_of(out, fw), DeviceState::Converged, "{fw}");
            assert_eq!(
                sim.fortigate(fw).feed_entries("root", &name),
                [format!("192.0.2.{i}")],
                "{fw}"
            );
        }
    }
    assert!(
        control.lock_holder("root").is_none(),
        "the lock is released"
    );

    // Another connection's connector (its settings differ) never joins the batch: its own
    // session follows, under its own settings.
    let mut other = request(3);
    other.spec.workspace.lock_retries = 2;
    control.clear_requests();
    let answers = converge_together(client, *firmware, vec![request(4), other, request(5)]).await;
    assert!(answers.iter().all(|a| a.is_ok()), "{answers:?}");
    let sessions = control
        .requests()
        .iter()
        .filter(|r| r.method == "exec" && r.url.ends_with("/workspace/commit"))
        .count();
    assert_eq!(sessions, 2, "4 and 5 together, then 3");
    assert_eq!(
        sim.fortigate("fw-a").feed_entries("root", "fs-list-3"),
        ["192.0.2.3"]
    );
}
