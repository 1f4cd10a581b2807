//! ExternalConnectors batched per FortiGate (`externalconnector::batch`) against the simulator,
//! counting the device's requests: connectors queued together share one observation of the
//! external-resource table and one `dynamic` call; a lone edit costs exactly the calls it
//! needs; one connector's failure fails that connector alone.
//!
//! A list is read per connector: `entry-list` takes exactly one `mkey` (facts §4; required in
//! the 6.4.14 spec), so a converged device's resync reads the table once and each list once.

use std::collections::BTreeSet;
use std::net::IpAddr;

use fortisync::api::externalconnector::{ConnectorMode, ServerIdentityCheck};
use fortisync::device::Credentials;
use fortisync::device::fortios::FortiOsClient;
use fortisync::model::{Firmware, Owner};
use fortisync::reconcile::externalconnector::batch::{
    Answer, Applied, Pass, Request, converge_together,
};
use fortisync::reconcile::externalconnector::plan::{DesiredResource, ObjectWrite, Refusal};
use fortisync::sim::fortios::{FaultBody, FaultRule, FortiGateHandle, Table};
use fortisync::sim::{Scenario, Simulator};
use serde_json::json;

#[path = "support/fortios_client.rs"]
mod fortios_client;

use fortios_client::FortiOsFixture;

const FIRMWARE: Firmware = Firmware::new(7, 4, 3);
const TABLE_PATH: &str = "/api/v2/cmdb/system/external-resource";
const DYNAMIC: &str = "/api/v2/monitor/system/external-resource/dynamic";
const ENTRY_LIST: &str = "/api/v2/monitor/system/external-resource/entry-list";

async fn sim() -> Simulator {
    let yaml = "fortigates:\n  - name: fw\n    version: \"7.4.3\"\n    api_users: [{name: fs, key: k3y, trusthosts: [\"127.0.0.0/8\"]}]\n";
    Simulator::start(Scenario::from_yaml(yaml).expect("scenario"))
        .await
        .expect("simulator")
}

fn client(sim: &Simulator) -> FortiOsClient {
    FortiOsFixture::simulated(sim, "fw")
        .source(IpAddr::from([127, 0, 0, 41]))
        .client(Credentials::Token("k3y".into()))
}

fn entries(list: &[String]) -> BTreeSet<String> {
    list.iter().cloned().collect()
}

/// Connector `i` of team-a: Push, resource `fs-<i>`, holding `list`.
fn push(i: usize, list: &[String], unchanged_spec: bool) -> Request {
    Request {
        desired: DesiredResource {
            name: format!("fs-{i}"),
            owner: Owner {
                namespace: "team-a".into(),
                name: format!("c{i}"),
            },
            mode: ConnectorMode::Push,
            url: "https://fortisync.invalid/push-only".into(),
            refresh_rate: 5,
            credentials: None,
            server_identity_check: ServerIdentityCheck::Full,
            credentials_changed: false,
        },
        take_over: false,
        entries: entries(list),
        unchanged_spec,
    }
}

fn list_of(i: usize, n: usize) -> Vec<String> {
    (1..=n).map(|k| format!("10.{i}.0.{k}")).collect()
}

fn applied(answer: &Answer) -> &Applied {
    match answer {
        Ok(Pass::Applied(a)) => a,
        other => panic!("not applied: {other:?}"),
    }
}

/// The device's log as `METHOD path` (no query: the log keeps only its names).
fn log(fg: &FortiGateHandle) -> Vec<String> {
    fg.requests()
        .iter()
        .map(|r| format!("{} {}", r.method, r.path))
        .collect()
}

fn count(log: &[String], method: &str, path: &str) -> usize {
    log.iter()
        .filter(|l| l.split_once(' ') == Some((method, path)))
        .count()
}

fn reads(log: &[String]) -> usize {
    log.iter().filter(|l| l.starts_with("GET ")).count()
}

/// `n` connectors converged from empty through one batch.
async fn converged(c: &FortiOsClient, fg: &FortiGateHandle, n: usize) -> Vec<Request> {
    let requests: Vec<Request> = (0..n).map(|i| push(i, &list_of(i, 3), false)).collect();
    fg.clear_requests();
    let answers = converge_together(c, FIRMWARE, requests.clone()).await;
    let log = log(fg);
    // The marked resources (none yet) and the names not among them (absent) — alone: the
    // one name —, one create each, one push for all, one list read each.
    let observed = if n == 1 { 1 } else { 2 };
    assert_eq!(
        (
            reads(&log) - count(&log, "GET", ENTRY_LIST),
            count(&log, "POST", TABLE_PATH),
            count(&log, "POST", DYNAMIC),
            count(&log, "GET", ENTRY_LIST),
            log.len()
        ),
        (observed, n, 1, n, observed + 2 * n + 1),
        "{log:#?}"
    );
    for (i, a) in answers.iter().enumerate() {
        let a = applied(a);
        assert!(matches!(a.planned.object, ObjectWrite::Create(_)));
        assert_eq!(a.device.entries, entries(&list_of(i, 3)));
        assert_eq!(fg.feed_entries("root", &format!("fs-{i}")).len(), 3);
    }
    requests
        .into_iter()
        .map(|r| Request {
            unchanged_spec: true,
            ..r
        })
        .collect()
}

#[tokio::test]
async fn a_converged_fortigates_resync_reads_the_table_once_and_each_list_once() {
    let sim = sim().await;
    let fg = sim.fortigate("fw");
    let c = client(&sim);
    let n = 8;
    let requests = converged(&c, fg, n).await;
    fg.clear_requests();
    let answers = converge_together(&c, FIRMWARE, requests).await;
    let calls = log(fg);
    assert_eq!(count(&calls, "GET", TABLE_PATH), 1, "{calls:#?}");
    assert_eq!(count(&calls, "GET", ENTRY_LIST), n, "{calls:#?}");
    assert_eq!(calls.len(), 1 + n, "reads only: {calls:#?}");
    for a in &answers {
        let a = applied(a);
        assert_eq!(a.planned.writes(), 0);
        assert!(a.push_failed.is_none());
    }
    // Alone, the same resync read the object by name and its list: two reads per connector.
    fg.clear_requests();
    for i in 0..n {
        converge_together(&c, FIRMWARE, vec![push(i, &list_of(i, 3), true)]).await;
    }
    assert_eq!(reads(&log(fg)), 2 * n);
}

#[tokio::test]
async fn push_edits_queued_together_are_one_table_read_one_dynamic_call_and_a_list_read_each() {
    let sim = sim().await;
    let fg = sim.fortigate("fw");
    let c = client(&sim);
    let n = 6;
    converged(&c, fg, n).await;
    // Each connector gains one entry and loses one: an edit, not a resync.
    let edited: Vec<Vec<String>> = (0..n)
        .map(|i| {
            let mut l = list_of(i, 3)[1..].to_vec();
            l.push(format!("192.0.2.{i}"));
            l
        })
        .collect();
    let requests: Vec<Request> = (0..n).map(|i| push(i, &edited[i], false)).collect();
    fg.clear_requests();
    let answers = converge_together(&c, FIRMWARE, requests).await;
    let log = log(fg);
    assert_eq!(
        log,
        std::iter::once(format!("GET {TABLE_PATH}"))
            .chain(std::iter::once(format!("POST {DYNAMIC}")))
            .chain((0..n).map(|_| format!("GET {ENTRY_LIST}")))
            .collect::<Vec<_>>()
    );
    for (i, a) in answers.iter().enumerate() {
        let a = applied(a);
        assert_eq!(a.planned.object, ObjectWrite::None);
        assert_eq!(a.device.entries, entries(&edited[i]));
        assert_eq!(
            entries(&fg.feed_entries("root", &format!("fs-{i}"))),
            entries(&edited[i])
        );
    }
}

#[tokio::test]
async fn a_lone_push_edit_reads_the_object_pushes_once_and_reads_the_list_once() {
    let sim = sim().await;
    let fg = sim.fortigate("fw");
    let c = client(&sim);
    converged(&c, fg, 1).await;
    let mut edited = list_of(0, 3);
    edited.push("198.51.100.7".into());
    fg.clear_requests();
    let answers = converge_together(&c, FIRMWARE, vec![push(0, &edited, false)]).await;
    assert_eq!(
        log(fg),
        [
            format!("GET {TABLE_PATH}/fs-0"),
            format!("POST {DYNAMIC}"),
            format!("GET {ENTRY_LIST}"),
        ]
    );
    assert_eq!(applied(&answers[0]).device.entries, entries(&edited));
    assert_eq!(entries(&fg.feed_entries("root", "fs-0")), entries(&edited));
}

#[tokio::test]
async fn a_hand_removed_entry_is_drift_repaired_with_a_snapshot_in_the_batch() {
    let sim = sim().await;
    let fg = sim.fortigate("fw");
    let c = client(&sim);
    let requests = converged(&c, fg, 3).await;
    // Someone removes an entry of fs-1 by hand.
    c.push_entries("fs-1", "remove", &list_of(1, 3)[2..])
        .await
        .expect("remove by hand");
    fg.clear_requests();
    let answers = converge_together(&c, FIRMWARE, requests).await;
    let log = log(fg);
    assert_eq!(
        (reads(&log), count(&log, "POST", DYNAMIC)),
        // The table, three lists first, the repaired one again.
        (1 + 3 + 1, 1),
        "{log:#?}"
    );
    let repaired = applied(&answers[1]);
    assert_eq!(
        repaired.planned.push.snapshot.as_deref(),
        Some(&list_of(1, 3)[..])
    );
    assert_eq!(repaired.device.entries, entries(&list_of(1, 3)));
    assert_eq!(applied(&answers[0]).planned.writes(), 0);
    assert_eq!(applied(&answers[2]).planned.writes(), 0);
}

#[tokio::test]
async fn a_push_failing_for_one_list_of_a_batch_fails_that_connector_alone() {
    let sim = sim().await;
    let fg = sim.fortigate("fw");
    let c = client(&sim);
    let n = 4;
    converged(&c, fg, n).await;
    // The device refuses two dynamic calls (F19): the combined one, then the first list sent
    // alone; the others, sent alone, go through.
    fg.add_fault(FaultRule {
        path: DYNAMIC.into(),
        method: Some("POST".into()),
        status: Some(500),
        body: FaultBody::Json,
        error: Some(-1),
        times: Some(2),
        ..FaultRule::default()
    });
    let edited: Vec<Vec<String>> = (0..n).map(|i| list_of(i, 4)).collect();
    let requests: Vec<Request> = (0..n).map(|i| push(i, &edited[i], false)).collect();
    fg.clear_requests();
    let answers = converge_together(&c, FIRMWARE, requests).await;
    let log = log(fg);
    assert_eq!(count(&log, "POST", DYNAMIC), 1 + n, "{log:#?}");
    let failed = applied(&answers[0]);
    assert!(failed.push_failed.is_some(), "{failed:?}");
    assert_eq!(
        failed.device.entries,
        entries(&list_of(0, 3)),
        "keeps its last list"
    );
    for (i, a) in answers.iter().enumerate().skip(1) {
        let a = applied(a);
        assert!(a.push_failed.is_none(), "{i}: {a:?}");
        assert_eq!(a.device.entries, entries(&edited[i]));
    }
}

#[tokio::test]
async fn an_object_write_refused_for_one_connector_leaves_the_others_applied() {
    let sim = sim().await;
    let fg = sim.fortigate("fw");
    let c = client(&sim);
    let requests = converged(&c, fg, 3).await;
    // Out-of-band edits of two objects; the device refuses the write of one of them.
    for name in ["fs-0", "fs-2"] {
        let mut object = fg
            .object("root", Table::ExternalResource, name)
            .expect("object");
        object["refresh-rate"] = json!(60);
        fg.put_object("root", Table::ExternalResource, object)
            .expect("edit by hand");
    }
    fg.add_fault(FaultRule {
        path: format!("{TABLE_PATH}/fs-0"),
        method: Some("PUT".into()),
        status: Some(500),
        body: FaultBody::Json,
        error: Some(-651),
        ..FaultRule::default()
    });
    let answers = converge_together(&c, FIRMWARE, requests).await;
    assert!(answers[0].is_err(), "{:?}", answers[0]);
    assert!(matches!(
        applied(&answers[2]).planned.object,
        ObjectWrite::Update(_)
    ));
    assert_eq!(applied(&answers[1]).planned.writes(), 0);
    assert_eq!(
        fg.object("root", Table::ExternalResource, "fs-2")
            .expect("fs-2")["refresh-rate"],
        json!(5)
    );
}

#[tokio::test]
async fn two_connectors_naming_one_resource_never_share_a_batch() {
    let sim = sim().await;
    let fg = sim.fortigate("fw");
    let c = client(&sim);
    let first = push(0, &list_of(0, 2), false);
    let mut second = push(1, &list_of(1, 2), false);
    second.desired.name = first.desired.name.clone();
    let answers = converge_together(&c, FIRMWARE, vec![first, second]).await;
    assert_eq!(applied(&answers[0]).device.entries, entries(&list_of(0, 2)));
    assert!(
        matches!(&answers[1], Ok(Pass::Refused(Refusal::OwnedByAnother { same_namespace: true, owner })) if owner == "team-a/c0"),
        "{:?}",
        answers[1]
    );
    assert_eq!(
        entries(&fg.feed_entries("root", "fs-0")),
        entries(&list_of(0, 2))
    );
}
