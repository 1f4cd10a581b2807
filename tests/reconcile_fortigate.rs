//! The AddressGroup planner applied to a simulated FortiGate through the FortiOS client:
//! converge from empty, stay converged, keep what an admin added, repair what an admin broke,
//! and keep a group non-empty on 6.4; through `converge`, refuse what must not be written
//! (a group another resource owns, one past the 6.4 cap, one address spelled twice).

use std::net::IpAddr;
use std::sync::Arc;

use fortisync::api::AddressGroup;
use fortisync::api::addressgroup::{AddressGroupStatus, DeletionPolicy, Membership};
use fortisync::device::Credentials;
use fortisync::device::fortios::FortiOsClient;
use fortisync::model::{Firmware, MemberAddress, Owner};
use fortisync::reconcile::addressgroup::converge::{self, Convergence};
use fortisync::reconcile::addressgroup::fortigate::{self, Family};
use fortisync::reconcile::addressgroup::plan::{
    DesiredGroup, DesiredMember, Op, Plan, plan, plan_deletion,
};
use fortisync::reconcile::addressgroup::status::converged_status;
use fortisync::reconcile::target::Target;
use fortisync::sim::fortios::Table;
use fortisync::sim::{Scenario, Simulator};
use serde_json::json;

#[path = "support/fortios_client.rs"]
mod fortios_client;

use fortios_client::FortiOsFixture;

async fn sim(version: &str) -> Simulator {
    let yaml = format!(
        "fortigates:\n  - name: fw\n    version: \"{version}\"\n    api_users: [{{name: fs, key: k3y, trusthosts: [\"127.0.0.0/8\"]}}]\n"
    );
    Simulator::start(Scenario::from_yaml(&yaml).expect("scenario"))
        .await
        .expect("simulator")
}

fn client(sim: &Simulator) -> FortiOsClient {
    FortiOsFixture::simulated(sim, "fw")
        .source(IpAddr::from([127, 0, 0, 40]))
        .client(Credentials::Token("k3y".into()))
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
        take_over: false,
        limit: None,
        other_family: Vec::new(),
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

/// A direct FortiGate target whose firmware is what the device reports, as `Target::connect`
/// learns it.
async fn target(c: FortiOsClient) -> Target {
    let firmware = Firmware::parse(&c.system_status().await.expect("status").version);
    Target::FortiGate {
        client: Arc::new(c),
        firmware,
    }
}

/// The AddressGroup `<namespace>/<name>` for group `allowed-admins`; `extra` merges into its spec.
fn resource(
    namespace: &str,
    name: &str,
    members: &[String],
    extra: serde_json::Value,
) -> AddressGroup {
    let mut spec = json!({
        "targetRef": {"kind": "FortiGate", "name": "fw"},
        "groupName": "allowed-admins",
        "members": members.iter().map(|m| json!({"address": m})).collect::<Vec<_>>(),
    });
    if let (Some(spec), Some(extra)) = (spec.as_object_mut(), extra.as_object()) {
        spec.extend(extra.clone());
    }
    let mut g: AddressGroup = serde_json::from_value(json!({
        "apiVersion": "fortisync.dev/v1alpha1",
        "kind": "AddressGroup",
        "metadata": {"name": name, "namespace": namespace},
        "spec": spec,
    }))
    .expect("group");
    g.metadata.generation = Some(1);
    g
}

fn addresses(list: &[&str]) -> Vec<String> {
    list.iter().map(|a| a.to_string()).collect()
}

/// One controller pass without Kubernetes: converge, then the status it would write.
async fn pass(t: &Target, g: &AddressGroup) -> (Convergence, AddressGroupStatus) {
    let now = jiff::Timestamp::now();
    let outcome = converge::converge(t, g, now, true, &mut |_: &str, _: &Op| {})
        .await
        .expect("converge");
    let status = converged_status(g, &AddressGroupStatus::default(), &outcome, false, 0, now);
    (outcome, status)
}

fn ready(status: &AddressGroupStatus) -> (String, String, String) {
    let c = status
        .conditions
        .iter()
        .find(|c| c.type_ == "Ready")
        .expect("Ready");
    (c.status.clone(), c.reason.clone(), c.message.clone())
}

fn writes(fg: &fortisync::sim::fortios::FortiGateHandle) -> Vec<String> {
    fg.requests()
        .iter()
        .filter(|r| r.method != "GET")
        .map(|r| format!("{} {}", r.method, r.path))
        .collect()
}

fn sorted_members(fg: &fortisync::sim::fortios::FortiGateHandle) -> Vec<String> {
    let mut m = fg
        .group_members("root", Table::Addrgrp, "allowed-admins")
        .unwrap_or_default();
    m.sort();
    m
}

#[tokio::test]
async fn a_second_resource_on_a_group_another_owns_writes_nothing_and_is_not_ready() {
    let sim = sim("7.4.3").await;
    let fg = sim.fortigate("fw");
    let t = target(client(&sim)).await;
    let exclusive = json!({"membership": "Exclusive"});
    let first = resource(
        "team-a",
        "admins",
        &addresses(&["192.0.2.10"]),
        exclusive.clone(),
    );
    let (_, status) = pass(&t, &first).await;
    assert_eq!(ready(&status).1, "Converged");
    assert_eq!(
        fg.object("root", Table::Addrgrp, "allowed-admins")
            .expect("group")["comment"],
        "managed-by fortisync team-a/admins",
        "the group records its owner when it is created"
    );

    let same_ns = resource(
        "team-a",
        "web",
        &addresses(&["192.0.2.20"]),
        exclusive.clone(),
    );
    let other_ns = resource("team-b", "web", &addresses(&["192.0.2.30"]), json!({}));
    // Several resyncs of all three: the owner stays converged, the others never write.
    for _ in 0..3 {
        fg.clear_requests();
        let (outcome, status) = pass(&t, &same_ns).await;
        assert_eq!(outcome.writes(), 0);
        assert_eq!(
            ready(&status),
            (
                "False".into(),
                "GroupOwnedByAnother".into(),
                "fortisync resource admins (in this namespace) owns this group: address group allowed-admins carries its marker, so this resource writes nothing to it".into()
            )
        );
        let (_, status) = pass(&t, &other_ns).await;
        let (state, reason, message) = ready(&status);
        assert_eq!(
            (state.as_str(), reason.as_str()),
            ("False", "GroupOwnedByAnother")
        );
        // Neither the owner's namespace nor its name.
        assert_eq!(
            message,
            "another fortisync resource (in another namespace) owns this group: address group allowed-admins carries its marker, so this resource writes nothing to it"
        );
        let last_error = status.last_error.expect("remedy");
        assert!(
            last_error.remedy.contains("spec.groupName"),
            "{}",
            last_error.remedy
        );
        let (outcome, status) = pass(&t, &first).await;
        assert_eq!(
            outcome.writes(),
            0,
            "the owner is converged: nothing to repair"
        );
        assert_eq!(ready(&status).0, "True");
        assert_eq!(writes(fg), Vec::<String>::new());
    }
    assert_eq!(sorted_members(fg), ["fs_192.0.2.10"]);
}

#[tokio::test]
async fn an_exclusive_resource_takes_a_hand_made_group_only_when_told_to() {
    let sim = sim("7.4.3").await;
    let fg = sim.fortigate("fw");
    fg.put_object(
        "root",
        Table::Address,
        json!({"name": "admin-pc", "subnet": "10.9.9.9/32"}),
    )
    .expect("gui object");
    fg.put_object(
        "root",
        Table::Addrgrp,
        json!({"name": "allowed-admins", "member": [{"name": "admin-pc"}], "comment": "vpn admins"}),
    )
    .expect("gui group");
    let t = target(client(&sim)).await;
    fg.clear_requests();
    let refused = resource(
        "team-a",
        "admins",
        &addresses(&["192.0.2.10"]),
        json!({"membership": "Exclusive"}),
    );
    let (outcome, status) = pass(&t, &refused).await;
    assert_eq!(outcome.writes(), 0);
    assert_eq!(ready(&status).1, "GroupNotOwned");
    assert!(
        status
            .last_error
            .expect("remedy")
            .remedy
            .contains("spec.takeOver: true")
    );
    assert_eq!(writes(fg), Vec::<String>::new());

    let taking = resource(
        "team-a",
        "admins",
        &addresses(&["192.0.2.10"]),
        json!({"membership": "Exclusive", "takeOver": true}),
    );
    let (_, status) = pass(&t, &taking).await;
    assert_eq!(ready(&status).1, "Converged");
    assert_eq!(
        fg.object("root", Table::Addrgrp, "allowed-admins")
            .expect("group")["comment"],
        "managed-by fortisync team-a/admins | vpn admins"
    );
    assert_eq!(sorted_members(fg), ["fs_192.0.2.10"]);
    assert!(
        fg.object("root", Table::Address, "admin-pc").is_some(),
        "objects are never deleted"
    );
}

#[tokio::test]
async fn an_exclusive_owner_never_removes_a_member_another_resource_owns() {
    let sim = sim("7.4.3").await;
    let fg = sim.fortigate("fw");
    let t = target(client(&sim)).await;
    let owner = resource(
        "team-a",
        "admins",
        &addresses(&["192.0.2.10"]),
        json!({"membership": "Exclusive"}),
    );
    pass(&t, &owner).await;
    fg.put_object(
        "root",
        Table::Address,
        json!({"name": "web_192.0.2.7", "subnet": "192.0.2.7/32", "comment": "managed-by fortisync team-b/web"}),
    )
    .expect("another resource's object");
    fg.add_member("root", Table::Addrgrp, "allowed-admins", "web_192.0.2.7")
        .expect("member");
    fg.put_object(
        "root",
        Table::Address,
        json!({"name": "admin-pc", "subnet": "10.9.9.9/32"}),
    )
    .expect("gui object");
    fg.add_member("root", Table::Addrgrp, "allowed-admins", "admin-pc")
        .expect("gui member");
    fg.clear_requests();
    let (outcome, status) = pass(&t, &owner).await;
    assert_eq!(
        outcome.plans[0]
            .plan
            .ops()
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>(),
        ["- member admin-pc <- group allowed-admins"]
    );
    assert_eq!(sorted_members(fg), ["fs_192.0.2.10", "web_192.0.2.7"]);
    assert_eq!(status.foreign_members, ["web_192.0.2.7"]);
    assert_eq!(writes(fg).len(), 1);
}

#[tokio::test]
async fn two_thousand_members_on_6_4_are_refused_before_any_write() {
    let sim = sim("6.4.14").await;
    let fg = sim.fortigate("fw");
    let t = target(client(&sim)).await;
    let many: Vec<String> = (0..2000)
        .map(|i| format!("10.{}.{}.1", i / 250, i % 250))
        .collect();
    fg.clear_requests();
    let (outcome, status) = pass(&t, &resource("team-a", "admins", &many, json!({}))).await;
    assert_eq!(outcome.writes(), 0);
    assert_eq!(writes(fg), Vec::<String>::new(), "not one address object");
    assert!(
        fg.objects("root", Table::Address)
            .iter()
            .all(|o| o["name"] != "fs_10.0.0.1")
    );
    let (state, reason, message) = ready(&status);
    assert_eq!((state.as_str(), reason.as_str()), ("False", "LimitReached"));
    assert_eq!(
        message,
        "address group allowed-admins would hold 2000 members; FortiOS 6.4.14 allows at most 600 per group, so nothing was written"
    );
    assert_eq!(
        (
            status.counts.desired,
            status.counts.present,
            status.counts.foreign
        ),
        (2000, 0, 0)
    );
    let remedy = status.last_error.expect("remedy").remedy;
    assert!(
        remedy.contains("several AddressGroups") && remedy.contains("FortiOS 7.x"),
        "{remedy}"
    );
    assert!(!remedy.contains("ExternalConnector"));
}

#[tokio::test]
async fn one_address_written_two_ways_is_refused_without_touching_the_device() {
    let sim = sim("7.4.3").await;
    let fg = sim.fortigate("fw");
    let t = target(client(&sim)).await;
    for pair in [
        ["192.0.2.60", "192.0.2.60/32"],
        ["2001:db8::5", "2001:DB8:0:0::5"],
    ] {
        fg.clear_requests();
        let g = resource(
            "team-a",
            "admins",
            &addresses(&["192.0.2.1", pair[0], pair[1]]),
            json!({}),
        );
        let (outcome, status) = pass(&t, &g).await;
        assert_eq!(outcome.writes(), 0);
        assert!(fg.requests().is_empty(), "{:?}", fg.requests());
        let (state, reason, message) = ready(&status);
        assert_eq!(
            (state.as_str(), reason.as_str()),
            ("False", "DuplicateMember")
        );
        assert!(
            message.starts_with("spec.members[1].address")
                && message.contains("spec.members[2].address"),
            "{message}"
        );
        assert!(!message.contains("fortisync does not own"), "{message}");
    }
    assert!(
        fg.group_members("root", Table::Addrgrp, "allowed-admins")
            .is_none()
    );
}

#[tokio::test]
async fn members_expired_before_the_first_pass_write_nothing() {
    let sim = sim("6.4.14").await;
    let fg = sim.fortigate("fw");
    let t = target(client(&sim)).await;
    let mut g = resource(
        "team-a",
        "admins",
        &addresses(&["192.0.2.1", "192.0.2.2"]),
        json!({}),
    );
    for m in &mut g.spec.members {
        m.expires_at = Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
            "2020-01-01T00:00:00Z".parse().expect("t"),
        ));
    }
    fg.clear_requests();
    let (outcome, status) = pass(&t, &g).await;
    assert_eq!(outcome.writes(), 0);
    assert_eq!(writes(fg), Vec::<String>::new());
    assert!(
        fg.group_members("root", Table::Addrgrp, "allowed-admins")
            .is_none()
    );
    assert_eq!(
        ready(&status),
        (
            "True".into(),
            "Converged".into(),
            "all 2 member(s) have expired; nothing to write".into()
        )
    );
}

/// Requests of the device's log that are reads.
fn reads(fg: &fortisync::sim::fortios::FortiGateHandle) -> usize {
    fg.requests().iter().filter(|r| r.method == "GET").count()
}

#[tokio::test]
async fn groups_batched_on_one_device_plan_exactly_as_alone_from_one_observation() {
    use fortisync::reconcile::addressgroup::batch::converge_together;
    let sim = sim("7.4.3").await;
    let fg = sim.fortigate("fw");
    let t = target(client(&sim)).await;
    // An Exclusive owner, converged, whose group then gains another resource's member and a
    // hand-made one (as in an_exclusive_owner_never_removes_a_member_another_resource_owns).
    let owner = resource(
        "team-a",
        "admins",
        &addresses(&["192.0.2.10"]),
        json!({"membership": "Exclusive"}),
    );
    pass(&t, &owner).await;
    fg.put_object(
        "root",
        Table::Address,
        json!({"name": "web_192.0.2.7", "subnet": "192.0.2.7/32", "comment": "managed-by fortisync team-b/web"}),
    )
    .expect("another resource's object");
    fg.add_member("root", Table::Addrgrp, "allowed-admins", "web_192.0.2.7")
        .expect("member");
    fg.put_object(
        "root",
        Table::Address,
        json!({"name": "admin-pc", "subnet": "10.9.9.9/32"}),
    )
    .expect("gui object");
    fg.add_member("root", Table::Addrgrp, "allowed-admins", "admin-pc")
        .expect("gui member");
    // A name another holds without our marker: a conflict, planned alone or batched.
    fg.put_object(
        "root",
        Table::Address,
        json!({"name": "fs_192.0.2.30", "subnet": "192.0.2.30/32", "comment": "hand-made"}),
    )
    .expect("foreign holder");
    let named = |ns: &str, name: &str, group: &str, members: &[&str]| {
        resource(ns, name, &addresses(members), json!({"groupName": group}))
    };
    let groups = vec![
        owner.clone(),
        named(
            "team-b",
            "web",
            "web-servers",
            &["192.0.2.20", "192.0.2.21"],
        ),
        named("team-c", "db", "db-servers", &["192.0.2.30", "192.0.2.31"]),
        // The owner's group again: never in the owner's batch, refused as alone.
        named("team-d", "late", "allowed-admins", &["192.0.2.40"]),
    ];
    let now = jiff::Timestamp::now();
    let mut alone = Vec::new();
    fg.clear_requests();
    for g in &groups {
        alone.push(
            converge::converge(&t, g, now, false, &mut |_: &str, _: &Op| {})
                .await
                .expect("alone"),
        );
    }
    let alone_reads = reads(fg);
    fg.clear_requests();
    let batched: Vec<Convergence> = converge_together(&t, &groups, now, false)
        .await
        .into_iter()
        .map(|a| a.expect("batched"))
        .collect();
    assert_eq!(batched, alone);
    assert_eq!(
        batched[0].plans[0]
            .plan
            .ops()
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>(),
        ["- member admin-pc <- group allowed-admins"]
    );
    // The hand-made holder is never rewritten nor made a member, batched as alone.
    assert!(
        batched[2].plans[0]
            .plan
            .ops()
            .iter()
            .all(|op| !op.to_string().contains("192.0.2.30")),
        "{:?}",
        batched[2]
    );
    assert_eq!(
        batched[3].refusal().map(|r| r.reason),
        Some("GroupOwnedByAnother")
    );
    // Round one (three groups): their markers and wanted names in one read, their groups, the
    // owner's strangers; round two (the late one) alone: its marker and name, its group.
    assert_eq!(reads(fg), 3 + 2, "alone it took {alone_reads}");
    assert_eq!(writes(fg).len(), 0);

    // Written, then alone again: nothing left to do but the refusals.
    converge_together(&t, &groups, now, true).await;
    for g in &groups[..2] {
        let (again, _) = pass(&t, g).await;
        assert!(again.is_converged(), "{again:?}");
    }
    assert_eq!(sorted_members(fg), ["fs_192.0.2.10", "web_192.0.2.7"]);
    let mut web = fg
        .group_members("root", Table::Addrgrp, "web-servers")
        .expect("web-servers");
    web.sort();
    assert_eq!(web, ["fs_192.0.2.20", "fs_192.0.2.21"]);
    // db-servers holds the member it could create; the conflicting name stays out.
    assert_eq!(
        fg.group_members("root", Table::Addrgrp, "db-servers"),
        Some(vec!["fs_192.0.2.31".to_string()])
    );
}

#[tokio::test]
async fn a_batch_of_many_groups_reads_each_table_once_and_plans_exactly_as_alone() {
    use fortisync::reconcile::addressgroup::batch::converge_together;
    let sim = sim("7.4.3").await;
    let fg = sim.fortigate("fw");
    let t = target(client(&sim)).await;
    // 60 groups (more than one OR-ed filter carries), two members each; the first 30 converged
    // alone before, one of them then edited by hand (a member removed, an object deleted).
    let groups: Vec<_> = (0..60)
        .map(|i| {
            resource(
                &format!("team-{}", i % 3),
                &format!("g{i}"),
                &addresses(&[&format!("192.0.2.{i}"), &format!("198.51.100.{i}")]),
                json!({"groupName": format!("group-{i}")}),
            )
        })
        .collect();
    for g in &groups[..30] {
        pass(&t, g).await;
    }
    fg.remove_member("root", Table::Addrgrp, "group-3", "fs_192.0.2.3")
        .expect("hand edit");
    // A hand-made object whose comment merely mentions fortisync is not anyone's.
    fg.put_object(
        "root",
        Table::Address,
        json!({"name": "fs_192.0.2.40", "subnet": "192.0.2.40/32", "comment": "copied from managed-by fortisync team-1/g40 by hand"}),
    )
    .expect("foreign holder");
    let now = jiff::Timestamp::now();
    let mut alone = Vec::new();
    for g in &groups {
        alone.push(
            converge::converge(&t, g, now, false, &mut |_: &str, _: &Op| {})
                .await
                .expect("alone"),
        );
    }
    fg.clear_requests();
    let batched: Vec<Convergence> = converge_together(&t, &groups, now, false)
        .await
        .into_iter()
        .map(|a| a.expect("batched"))
        .collect();
    assert_eq!(batched, alone);
    // The address table (120 wanted names: more than one filter carries, so all of it, which
    // holds every marked object too), the group table.
    assert_eq!(reads(fg), 2);
    assert!(
        batched[40].plans[0]
            .plan
            .ops()
            .iter()
            .all(|op| !op.to_string().contains("192.0.2.40 ")
                && !op.to_string().starts_with("+ address fs_192.0.2.40")),
        "{:?}",
        batched[40]
    );
    assert_eq!(batched[3].writes(), 1, "{:?}", batched[3]);
    assert!(
        batched[..30]
            .iter()
            .enumerate()
            .all(|(i, c)| i == 3 || c.writes() == 0)
    );

    converge_together(&t, &groups, now, true).await;
    for g in &groups {
        let (again, _) = pass(&t, g).await;
        assert!(
            again.is_converged() || again.refusal().is_some(),
            "{again:?}"
        );
    }
    assert_eq!(
        fg.group_members("root", Table::Addrgrp, "group-3")
            .map(|m| m.len()),
        Some(2)
    );
}

#[tokio::test]
async fn a_batch_asks_for_new_names_with_the_markers_and_for_a_converged_groups_only_when_missing()
{
    use fortisync::reconcile::addressgroup::batch::converge_together;
    let sim = sim("7.4.3").await;
    let fg = sim.fortigate("fw");
    let t = target(client(&sim)).await;
    let group = |i: usize| {
        resource(
            "team-a",
            &format!("g{i}"),
            &addresses(&[&format!("192.0.2.{i}"), &format!("198.51.100.{i}")]),
            json!({"groupName": format!("group-{i}")}),
        )
    };
    // Three converged, with the status the controller wrote (their resync is no change),
    // then two new ones.
    let mut groups = Vec::new();
    for i in 0..3 {
        let mut g = group(i);
        let (_, status) = pass(&t, &g).await;
        g.status = Some(status);
        groups.push(g);
    }
    groups.extend((3..5).map(group));
    let now = jiff::Timestamp::now();
    let alone = |groups: Vec<AddressGroup>| {
        let t = &t;
        async move {
            let mut out = Vec::new();
            for g in &groups {
                out.push(
                    converge::converge(t, g, now, false, &mut |_: &str, _: &Op| {})
                        .await
                        .expect("alone"),
                );
            }
            out
        }
    };
    let together = |groups: Vec<AddressGroup>| {
        let t = &t;
        async move {
            converge_together(t, &groups, now, false)
                .await
                .into_iter()
                .map(|a| a.expect("batched"))
                .collect::<Vec<Convergence>>()
        }
    };
    let expected = alone(groups.clone()).await;
    fg.clear_requests();
    assert_eq!(together(groups.clone()).await, expected);
    // The address table once (five markers and the new groups' four names OR-ed in one
    // filter), the group table once: nothing was missing that the first read did not ask for.
    assert_eq!(reads(fg), 2);
    assert_eq!(
        expected.iter().map(Convergence::writes).collect::<Vec<_>>(),
        [0, 0, 0, 3, 3]
    );

    // A converged group's member removed and its object deleted by hand: a name the first
    // read did not ask for is not ours any more, so whoever holds it costs one more read.
    fg.remove_member("root", Table::Addrgrp, "group-1", "fs_192.0.2.1")
        .expect("hand edit");
    fg.delete_object("root", Table::Address, "fs_192.0.2.1")
        .expect("hand delete");
    let expected = alone(groups.clone()).await;
    fg.clear_requests();
    assert_eq!(together(groups).await, expected);
    assert_eq!(reads(fg), 3);
    assert_eq!(expected[1].writes(), 2, "{:?}", expected[1]);
}

#[tokio::test]
async fn a_lone_pass_reads_the_address_table_once_and_the_group_once() {
    use fortisync::reconcile::addressgroup::batch::{Batches, converge_batched};
    let sim = sim("7.4.3").await;
    let fg = sim.fortigate("fw");
    let t = target(client(&sim)).await;
    let batches = Batches::default();
    let group = |members: &[&str]| resource("team-a", "admins", &addresses(members), json!({}));
    let now = jiff::Timestamp::now();
    let lone = async |g: &AddressGroup, patient: bool| {
        fg.clear_requests();
        let out = converge_batched(&batches, &t, g, now, true, patient)
            .await
            .expect("lone pass");
        (out.writes(), reads(fg), writes(fg).len())
    };
    // From empty: our marker and the two wanted names in one read, the group in another.
    assert_eq!(
        lone(&group(&["192.0.2.1", "192.0.2.2"]), false).await,
        (3, 2, 3)
    );
    // A member added: the same two reads (alone, its holder was a third read, in turn).
    let edited = group(&["192.0.2.1", "192.0.2.2", "192.0.2.3"]);
    assert_eq!(lone(&edited, false).await, (2, 2, 2));
    // A resync of the converged group: its marker alone, and the group.
    assert_eq!(lone(&edited, true).await, (0, 2, 0));
    assert_eq!(
        sorted_members(fg),
        ["fs_192.0.2.1", "fs_192.0.2.2", "fs_192.0.2.3"]
    );
}

/// A FortiGate answering 20 ms late, holding the group `edited` (one member) written before,
/// and a batch queue over it: what the burst-and-edit tests share.
struct BurstBench {
    sim: Simulator,
    t: Arc<Target>,
    batches: Arc<fortisync::reconcile::addressgroup::batch::Batches>,
    now: jiff::Timestamp,
}

impl BurstBench {
    async fn start() -> Self {
        use fortisync::reconcile::addressgroup::batch::{Batches, converge_batched};
        use fortisync::sim::fortios::FaultRule;
        let sim = sim("7.4.3").await;
        let t = Arc::new(target(client(&sim)).await);
        let batches = Arc::new(Batches::default());
        let now = jiff::Timestamp::now();
        converge_batched(
            &batches,
            &t,
            &Self::edited(&["203.0.113.1"]),
            now,
            true,
            false,
        )
        .await
        .expect("the edited group, converged before");
        let fg = sim.fortigate("fw");
        fg.add_fault(FaultRule {
            path: "/api".into(),
            latency_ms: 20,
            ..FaultRule::default()
        });
        fg.clear_requests();
        Self {
            sim,
            t,
            batches,
            now,
        }
    }

    /// The group `edited` with `members`.
    fn edited(members: &[&str]) -> AddressGroup {
        resource(
            "team-e",
            "edited",
            &addresses(members),
            json!({"groupName": "edited"}),
        )
    }

    /// 30 new groups of 3 members (120 writes), each pass on its own task.
    fn burst(
        &self,
    ) -> Vec<
        tokio::task::JoinHandle<Result<Convergence, fortisync::reconcile::error::ReconcileError>>,
    > {
        use fortisync::reconcile::addressgroup::batch::converge_batched;
        (0..30)
            .map(|i| {
                let (t, batches, now) = (self.t.clone(), self.batches.clone(), self.now);
                let g = resource(
                    "team-b",
                    &format!("b{i}"),
                    &addresses(&[
                        &format!("192.0.2.{i}"),
                        &format!("198.51.100.{i}"),
                        &format!("203.0.113.{}", 100 + i),
                    ]),
                    json!({"groupName": format!("burst-{i}")}),
                );
                tokio::spawn(
                    async move { converge_batched(&batches, &t, &g, now, true, false).await },
                )
            })
            .collect()
    }

    /// The edit: `edited` gains a member; it must write exactly the object and the member.
    async fn edit(&self) {
        use fortisync::reconcile::addressgroup::batch::converge_batched;
        let edited = Self::edited(&["203.0.113.1", "203.0.113.2"]);
        let edit = converge_batched(&self.batches, &self.t, &edited, self.now, true, false)
            .await
            .expect("the edit");
        assert_eq!(edit.writes(), 2, "{edit:?}");
    }

    /// Waits for every pass of `burst` (4 writes each); the device writes then, each exactly
    /// once: the burst's and the edit's.
    async fn burst_written(
        &self,
        burst: Vec<
            tokio::task::JoinHandle<
                Result<Convergence, fortisync::reconcile::error::ReconcileError>,
            >,
        >,
    ) -> usize {
        for b in burst {
            let out = b.await.expect("task").expect("burst group");
            assert_eq!(out.writes(), 4, "{out:?}");
        }
        let total = self.writes();
        assert_eq!(total, 30 * 4 + 2, "every write exactly once");
        total
    }

    /// Device writes so far.
    fn writes(&self) -> usize {
        let fg = self.sim.fortigate("fw");
        fg.requests().iter().filter(|r| r.method != "GET").count()
    }
}

#[tokio::test]
async fn an_edit_made_while_a_burst_is_written_is_not_held_until_the_burst_ends() {
    let bench = BurstBench::start().await;
    let burst = bench.burst();
    while bench.writes() < 4 {
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    // Writes of the burst are in flight: the edit is observed, planned and written beside
    // them, not after the last of them.
    bench.edit().await;
    let edit_done = bench.writes();
    let total = bench.burst_written(burst).await;
    assert!(
        edit_done < total / 2,
        "the edit landed after {edit_done} of {total} writes"
    );
    assert_eq!(
        bench
            .sim
            .fortigate("fw")
            .group_members("root", Table::Addrgrp, "edited")
            .map(|m| m.len()),
        Some(2)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_edit_queued_with_a_burst_of_new_groups_is_written_before_them() {
    let bench = BurstBench::start().await;
    // The first new group runs alone, the others queue behind it, and the edit queues with
    // them, last.
    let burst = bench.burst();
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    bench.edit().await;
    let edit_done = bench.writes();
    let total = bench.burst_written(burst).await;
    // Ahead of it at most: the lone first group's 4 writes and the 2 groups written beside
    // it (the Guard's slots); before, the 29 planned ahead of it in its batch.
    assert!(
        edit_done <= 4 + 2 + 2 * 4,
        "the edit landed after {edit_done} of {total} writes"
    );
}
