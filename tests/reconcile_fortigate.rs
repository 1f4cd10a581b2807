//! The AddressGroup planner applied to a simulated FortiGate through the FortiOS client:
//! converge from empty, stay converged, keep what an admin added, repair what an admin broke,
//! and keep a group non-empty on 6.4.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use fortisync::api::addressgroup::{DeletionPolicy, Membership};
use fortisync::device::fortios::FortiOsClient;
use fortisync::device::{Credentials, DeviceMetrics, Guard, LockoutPolicy, TransportConfig};
use fortisync::model::{MemberAddress, Owner};
use fortisync::reconcile::addressgroup::fortigate::{self, Family};
use fortisync::reconcile::addressgroup::plan::{
    DesiredGroup, DesiredMember, Plan, plan, plan_deletion,
};
use fortisync::sim::fortios::Table;
use fortisync::sim::{Scenario, Simulator};
use serde_json::json;

async fn sim(version: &str) -> Simulator {
    let yaml = format!(
        "fortigates:\n  - name: fw\n    version: \"{version}\"\n    api_users: [{{name: fs, key: k3y, trusthosts: [\"127.0.0.0/8\"]}}]\n"
    );
    Simulator::start(Scenario::from_yaml(&yaml).expect("scenario"))
        .await
        .expect("simulator")
}

fn client(sim: &Simulator) -> FortiOsClient {
    let fg = sim.fortigate("fw");
    let transport = TransportConfig {
        ca_bundle_pem: fg.ca_pem().map(str::to_string),
        source_address: Some(IpAddr::from([127, 0, 0, 40])),
        timeout: Duration::from_secs(5),
        ..TransportConfig::default()
    };
    let guard = Arc::new(Guard::new(
        "fw",
        LockoutPolicy::default(),
        4,
        DeviceMetrics::default(),
    ));
    FortiOsClient::new(
        "fw",
        fg.url(),
        "root",
        Credentials::Token("k3y".into()),
        &transport,
        guard,
    )
    .expect("client")
}

fn desired(members: &[&str], empty_allowed: bool) -> DesiredGroup {
    DesiredGroup {
        owner: Owner {
            namespace: "team-a".into(),
            name: "admins".into(),
        },
        group_name: "allowed-admins".into(),
        prefix: "fs_".into(),
        members: members
            .iter()
            .map(|m| DesiredMember {
                address: MemberAddress::parse(m).expect("member"),
                comment: None,
                expires_at: None,
            })
            .collect(),
        membership: Membership::Additive,
        empty_group_allowed: empty_allowed,
    }
}

async fn reconcile(c: &FortiOsClient, d: &DesiredGroup) -> Plan {
    let observed = fortigate::observe(c, Family::V4, d).await.expect("observe");
    let p = plan(d, &observed, jiff::Timestamp::now());
    for op in p.ops() {
        fortigate::apply(c, Family::V4, op)
            .await
            .unwrap_or_else(|e| panic!("{op}: {e}"));
    }
    p
}

#[tokio::test]
async fn converges_stays_converged_keeps_foreign_and_repairs_drift() {
    let sim = sim("7.4.3").await;
    let fg = sim.fortigate("fw");
    let c = client(&sim);
    let d = desired(
        &["192.0.2.10", "10.0.0.0/24", "198.51.100.1-198.51.100.9"],
        true,
    );
    let first = reconcile(&c, &d).await;
    assert_eq!(first.writes(), 4);
    let mut members = fg
        .group_members("root", Table::Addrgrp, "allowed-admins")
        .expect("group");
    members.sort();
    assert_eq!(
        members,
        [
            "fs_10.0.0.0_24",
            "fs_192.0.2.10",
            "fs_198.51.100.1-198.51.100.9"
        ]
    );
    assert_eq!(
        fg.object("root", Table::Address, "fs_10.0.0.0_24")
            .expect("object")["subnet"],
        "10.0.0.0 255.255.255.0"
    );
    assert_eq!(
        fg.object("root", Table::Address, "fs_192.0.2.10")
            .expect("object")["comment"],
        "managed-by fortisync team-a/admins"
    );

    fg.clear_requests();
    assert!(reconcile(&c, &d).await.is_empty(), "converged: no writes");
    let steady: Vec<_> = fg.requests();
    assert_eq!(steady.len(), 2, "a converged resync costs two reads");
    assert!(steady.iter().all(|r| r.method == "GET"));

    // An admin adds a member in the GUI: kept and reported.
    fg.put_object(
        "root",
        Table::Address,
        json!({"name": "admin-pc", "subnet": "10.9.9.9/32"}),
    )
    .expect("gui object");
    fg.add_member("root", Table::Addrgrp, "allowed-admins", "admin-pc")
        .expect("gui member");
    let kept = reconcile(&c, &d).await;
    assert!(kept.is_empty());
    assert_eq!(kept.foreign_members(), ["admin-pc"]);

    // An admin removes and deletes one of ours: repaired with two writes.
    fg.remove_member("root", Table::Addrgrp, "allowed-admins", "fs_192.0.2.10")
        .expect("gui remove");
    fg.delete_object("root", Table::Address, "fs_192.0.2.10")
        .expect("gui delete");
    let repaired = reconcile(&c, &d).await;
    assert_eq!(repaired.writes(), 2, "{repaired}");
    assert!(
        fg.group_members("root", Table::Addrgrp, "allowed-admins")
            .expect("group")
            .contains(&"fs_192.0.2.10".to_string())
    );

    // Deleting the resource with Delete: our members and objects go, the admin's member stays.
    let observed = fortigate::observe(&c, Family::V4, &d)
        .await
        .expect("observe");
    for op in plan_deletion(&d, &observed, DeletionPolicy::Delete).ops() {
        fortigate::apply(&c, Family::V4, op)
            .await
            .expect("delete op");
    }
    assert_eq!(
        fg.group_members("root", Table::Addrgrp, "allowed-admins"),
        Some(vec!["admin-pc".to_string()])
    );
    assert!(
        fg.objects("root", Table::Address)
            .iter()
            .all(|o| !o["name"].as_str().unwrap_or_default().starts_with("fs_"))
    );
}

#[tokio::test]
async fn on_6_4_the_group_is_never_left_empty() {
    let sim = sim("6.4.14").await;
    let fg = sim.fortigate("fw");
    let c = client(&sim);
    reconcile(&c, &desired(&["192.0.2.10"], false)).await;
    reconcile(&c, &desired(&[], false)).await;
    assert_eq!(
        fg.group_members("root", Table::Addrgrp, "allowed-admins"),
        Some(vec!["none".to_string()])
    );
    assert!(fg.object("root", Table::Address, "fs_192.0.2.10").is_none());
    reconcile(&c, &desired(&["192.0.2.11"], false)).await;
    assert_eq!(
        fg.group_members("root", Table::Addrgrp, "allowed-admins"),
        Some(vec!["fs_192.0.2.11".to_string()])
    );
}

#[tokio::test]
async fn observe_reads_only_our_objects_and_whoever_holds_a_name_we_need() {
    let sim = sim("7.4.3").await;
    let fg = sim.fortigate("fw");
    let c = client(&sim);
    // Another resource with the same prefix owns three objects; an admin holds a name we need.
    let mut other = desired(&["203.0.113.1", "203.0.113.2", "203.0.113.3"], true);
    other.owner.name = "other".into();
    other.group_name = "other-group".into();
    reconcile(&c, &other).await;
    fg.put_object(
        "root",
        Table::Address,
        json!({"name": "fs_192.0.2.99", "subnet": "192.0.2.99 255.255.255.255", "comment": "by hand"}),
    )
    .expect("admin object");

    let d = desired(&["192.0.2.10", "192.0.2.99"], true);
    let observed = fortigate::observe(&c, Family::V4, &d)
        .await
        .expect("observe");
    let names: Vec<&str> = observed.addresses.iter().map(|a| a.name.as_str()).collect();
    assert_eq!(
        names,
        ["fs_192.0.2.99"],
        "only the holder of a name we need"
    );
    let p = plan(&d, &observed, jiff::Timestamp::now());
    assert_eq!(p.conflicts().len(), 1, "{p}");
    assert_eq!(p.conflicts()[0].holder, "an administrator");

    // Converged, observe is two reads however many objects others own.
    let d = desired(&["192.0.2.10"], true);
    reconcile(&c, &d).await;
    fg.clear_requests();
    let observed = fortigate::observe(&c, Family::V4, &d)
        .await
        .expect("observe");
    assert_eq!(observed.addresses.len(), 1);
    assert_eq!(fg.requests().len(), 2, "{:?}", fg.requests());
}
