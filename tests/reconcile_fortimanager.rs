//! An AddressGroup on a FortiManager ADOM in workspace mode, with `install: Proxy`: the ADOM
//! change goes lock → writes → commit → unlock, every FortiGate behind it converges through
//! `/sys/proxy/json`, a converged pass writes nothing, a lock held by someone else is reported
//! with its holder, an unreachable device is reported without failing the others, and
//! deletion cleans the ADOM and the devices.

use fortisync::api::AddressGroup;
use fortisync::api::addressgroup::TargetKind;
use fortisync::api::common::ConnectionSpec;
use fortisync::api::fortimanager::FortiManagerSpec;
use fortisync::device::{Credentials, DeviceMetrics, Endpoints};
use fortisync::reconcile::addressgroup::converge::{self, Convergence};
use fortisync::reconcile::connection::{ResolvedConnection, endpoint_config};
use fortisync::reconcile::error::ReconcileError;
use fortisync::reconcile::target::{DeviceFacts, Target};
use fortisync::sim::Simulator;
use fortisync::sim::fortimanager::Table as AdomTable;
use fortisync::sim::fortios::Table;

#[path = "support/estate.rs"]
mod estate;

use estate::{Estate, FMG_KEY, device_members};

fn spec(url: &str) -> FortiManagerSpec {
    serde_json::from_value(serde_json::json!({
        "url": url,
        "credentialsSecretRef": {"name": "fmg", "tokenKey": "token"},
        "adom": "root",
        "install": "Proxy",
        "workspace": {"lockRetries": 1},
    }))
    .expect("spec")
}

/// The FortiManager of `sim` as a reconcile target, on endpoints and facts of its own.
async fn target(sim: &Simulator) -> Target {
    let (endpoints, facts) = (
        Endpoints::new(DeviceMetrics::default()),
        DeviceFacts::default(),
    );
    let fmg = sim.fortimanager("fmg");
    let fmg_spec = spec(fmg.url());
    let connection: ConnectionSpec = fmg_spec.connection.clone();
    let mut resolved = ResolvedConnection {
        kind: TargetKind::FortiManager,
        namespace: "team-a".into(),
        name: "fmg".into(),
        connection,
        scope: "root".into(),
        fortimanager: Some(fmg_spec),
        credentials: Credentials::Token(FMG_KEY.into()),
        ca_bundle_pem: fmg.ca_pem().map(str::to_string),
    };
    resolved.connection.tls.insecure_skip_verify = false;
    let endpoint = endpoints
        .get(&endpoint_config(&resolved).expect("config"))
        .expect("endpoint");
    Target::connect(endpoint, &resolved, &facts)
        .await
        .expect("connect")
}

fn group(members: &[&str]) -> AddressGroup {
    let mut g: AddressGroup = serde_json::from_value(serde_json::json!({
        "apiVersion": "fortisync.dev/v1alpha1",
        "kind": "AddressGroup",
        "metadata": {"name": "admins", "namespace": "team-a"},
        "spec": {
            "targetRef": {"kind": "FortiManager", "name": "fmg"},
            "groupName": "allowed-admins",
            "members": members.iter().map(|m| serde_json::json!({"address": m})).collect::<Vec<_>>(),
        }
    }))
    .expect("group");
    g.metadata.generation = Some(1);
    g
}

async fn converge(t: &Target, g: &AddressGroup) -> Result<Convergence, ReconcileError> {
    converge::converge(
        t,
        g,
        jiff::Timestamp::now(),
        true,
        &mut |_: &str, _: &fortisync::reconcile::addressgroup::plan::Op| {},
    )
    .await
}

/// The sorted members of the ADOM group, which must exist.
fn adom_members(sim: &Simulator) -> Vec<String> {
    estate::adom_members(sim).expect("ADOM group")
}

#[tokio::test]
async fn an_adom_change_is_locked_committed_unlocked_and_reaches_every_device() {
    let sim = Estate::default().start().await;
    let t = target(&sim).await;
    let control = sim.fortimanager("fmg").control().clone();
    control.clear_requests();

    let first = converge(&t, &group(&["192.0.2.10", "10.0.0.0/24"]))
        .await
        .expect("converge");
    let want = vec!["fs_10.0.0.0_24".to_string(), "fs_192.0.2.10".to_string()];
    assert_eq!(adom_members(&sim), want);
    assert_eq!(device_members(&sim, "fw-a"), want);
    assert_eq!(device_members(&sim, "fw-b"), want);
    assert!(
        control.lock_holder("root").is_none(),
        "the ADOM lock is released"
    );
    let urls: Vec<String> = control
        .requests()
        .iter()
        .filter(|r| r.method == "exec")
        .map(|r| r.url.clone())
        .collect();
    let lock = urls.iter().position(|u| u.ends_with("/workspace/lock"));
    let commit = urls.iter().position(|u| u.ends_with("/workspace/commit"));
    let unlock = urls.iter().position(|u| u.ends_with("/workspace/unlock"));
    assert!(
        lock < commit && commit < unlock && lock.is_some(),
        "lock → commit → unlock: {urls:?}"
    );
    assert_eq!(first.devices.len(), 2);
    assert!(
        first.devices.iter().all(|d| d.error.is_none()),
        "{:?}",
        first.devices
    );
    // Two objects + one group with both members on the ADOM: three writes, not one per member
    // edit; each device the same three through one proxy call per distinct write.
    assert_eq!(first.plans[0].plan.writes(), 3);

    control.clear_requests();
    let again = converge(&t, &group(&["192.0.2.10", "10.0.0.0/24"]))
        .await
        .expect("again");
    assert!(again.is_converged(), "nothing to write: {again:?}");
    let calls = control.requests();
    assert_eq!(
        calls.len(),
        4,
        "two ADOM reads and two proxy reads (every device at once): {calls:?}"
    );
    assert!(
        calls.iter().all(|r| !r.url.contains("workspace")),
        "no lock when nothing changes"
    );
}

#[tokio::test]
async fn a_lock_held_by_another_admin_is_reported_with_its_holder_and_nothing_changes() {
    let sim = Estate::default().start().await;
    let t = target(&sim).await;
    converge(&t, &group(&["192.0.2.10"])).await.expect("first");
    let control = sim.fortimanager("fmg").control().clone();
    control
        .hold_lock("root", "alice")
        .expect("alice locks the ADOM");

    let err = converge(&t, &group(&["192.0.2.10", "192.0.2.11"]))
        .await
        .expect_err("locked by alice");
    assert_eq!(err.reason(), "WorkspaceLocked");
    assert!(err.to_string().contains("alice"), "names the holder: {err}");
    assert_eq!(adom_members(&sim), vec!["fs_192.0.2.10".to_string()]);

    control.release_lock("root").expect("alice unlocks");
    converge(&t, &group(&["192.0.2.10", "192.0.2.11"]))
        .await
        .expect("after unlock");
    assert_eq!(adom_members(&sim).len(), 2);
    assert_eq!(device_members(&sim, "fw-b").len(), 2);
}

#[tokio::test]
async fn an_unreachable_device_is_reported_and_the_others_converge() {
    let sim = Estate::default().with_unreachable_device().start().await;
    let t = target(&sim).await;
    let out = converge(&t, &group(&["192.0.2.10"]))
        .await
        .expect("converge");
    let gone = out
        .devices
        .iter()
        .find(|d| d.device == "fw-gone")
        .expect("the unreachable device is listed");
    assert!(
        gone.error
            .as_deref()
            .is_some_and(|e| e.contains("unreachable")),
        "{gone:?}"
    );
    assert_eq!(
        device_members(&sim, "fw-a"),
        vec!["fs_192.0.2.10".to_string()]
    );
    assert_eq!(
        device_members(&sim, "fw-b"),
        vec!["fs_192.0.2.10".to_string()]
    );
}

#[tokio::test]
async fn deletion_cleans_the_adom_and_every_device() {
    let sim = Estate::default().start().await;
    let t = target(&sim).await;
    let g = group(&["192.0.2.10", "10.0.0.0/24"]);
    converge(&t, &g).await.expect("converge");
    converge::remove(
        &t,
        &g,
        true,
        &mut |_: &str, _: &fortisync::reconcile::addressgroup::plan::Op| {},
    )
    .await
    .expect("remove");
    let control = sim.fortimanager("fmg").control().clone();
    assert!(
        control
            .object("root", AdomTable::Addrgrp, "allowed-admins")
            .is_none()
    );
    assert!(control.objects("root", AdomTable::Address).is_empty());
    for device in ["fw-a", "fw-b"] {
        let fg = sim.fortigate(device);
        assert!(
            fg.object("root", Table::Addrgrp, "allowed-admins")
                .is_none(),
            "{device}"
        );
        assert!(fg.objects("root", Table::Address).is_empty(), "{device}");
    }
    assert!(control.lock_holder("root").is_none());
}

#[tokio::test]
async fn ipv6_members_go_to_the_adom_address6_tables_and_the_devices() {
    let sim = Estate::default().start().await;
    let t = target(&sim).await;
    let out = converge(&t, &group(&["192.0.2.10", "2001:db8::/64"]))
        .await
        .expect("converge");
    assert_eq!(out.plans.len(), 2, "an IPv4 and an IPv6 plan");
    let control = sim.fortimanager("fmg").control().clone();
    let v6 = control
        .object("root", AdomTable::Addrgrp6, "allowed-admins")
        .expect("ADOM addrgrp6");
    assert_eq!(v6["member"], serde_json::json!(["fs_2001:db8::_64"]));
    let object = control
        .object("root", AdomTable::Address6, "fs_2001:db8::_64")
        .expect("ADOM address6");
    assert_eq!(object["ip6"], "2001:db8::/64");
    for device in ["fw-a", "fw-b"] {
        assert_eq!(
            sim.fortigate(device)
                .group_members("root", Table::Addrgrp6, "allowed-admins"),
            Some(vec!["fs_2001:db8::_64".to_string()]),
            "{device}"
        );
    }
    let again = converge(&t, &group(&["192.0.2.10", "2001:db8::/64"]))
        .await
        .expect("again");
    assert!(again.is_converged(), "{again:?}");
}

#[tokio::test]
async fn before_7_2_an_emptied_group_keeps_the_none_placeholder() {
    let sim = Estate::default().adom_os_version("7.0").start().await;
    let t = target(&sim).await;
    converge(&t, &group(&["192.0.2.10"]))
        .await
        .expect("one member");
    converge(&t, &group(&[])).await.expect("emptied");
    assert_eq!(adom_members(&sim), vec!["none".to_string()]);
    let control = sim.fortimanager("fmg").control().clone();
    assert!(
        control.objects("root", AdomTable::Address).is_empty(),
        "our object is gone"
    );
    // fw-b runs 6.4: the placeholder there too; fw-a (7.4) may hold an empty group.
    assert_eq!(device_members(&sim, "fw-b"), vec!["none".to_string()]);
    assert!(device_members(&sim, "fw-a").is_empty());
    converge(&t, &group(&["192.0.2.11"]))
        .await
        .expect("refilled");
    assert_eq!(adom_members(&sim), vec!["fs_192.0.2.11".to_string()]);
}

#[tokio::test]
async fn an_adom_group_another_resource_owns_is_refused_without_a_lock_or_a_write() {
    let sim = Estate::default().start().await;
    let t = target(&sim).await;
    converge(&t, &group(&["192.0.2.10"])).await.expect("first");
    let control = sim.fortimanager("fmg").control().clone();
    control.clear_requests();
    let mut second = group(&["192.0.2.20"]);
    second.metadata.name = Some("web".into());
    let out = converge(&t, &second).await.expect("refused, not failed");
    assert_eq!(out.writes(), 0);
    assert_eq!(out.refusal().map(|r| r.reason), Some("GroupOwnedByAnother"));
    assert!(out.devices.is_empty(), "the devices are not even read");
    let calls = control.requests();
    assert!(
        calls.iter().all(|r| r.method == "get"),
        "reads only, no lock: {calls:?}"
    );
    assert_eq!(adom_members(&sim), vec!["fs_192.0.2.10".to_string()]);
    assert_eq!(
        device_members(&sim, "fw-a"),
        vec!["fs_192.0.2.10".to_string()]
    );
}

#[tokio::test]
async fn in_the_adom_and_on_the_devices_an_exclusive_group_keeps_a_member_another_resource_owns() {
    let sim = Estate::default().start().await;
    let t = target(&sim).await;
    let mut g = group(&["192.0.2.10"]);
    g.spec.membership = fortisync::api::addressgroup::Membership::Exclusive;
    converge(&t, &g).await.expect("first");
    let fw = sim.fortigate("fw-a");
    fw.put_object(
        "root",
        Table::Address,
        serde_json::json!({"name": "web_192.0.2.7", "subnet": "192.0.2.7/32", "comment": "managed-by fortisync team-b/web"}),
    )
    .expect("another resource's object");
    fw.add_member("root", Table::Addrgrp, "allowed-admins", "web_192.0.2.7")
        .expect("member");
    fw.put_object(
        "root",
        Table::Address,
        serde_json::json!({"name": "admin-pc", "subnet": "10.9.9.9/32"}),
    )
    .expect("gui object");
    fw.add_member("root", Table::Addrgrp, "allowed-admins", "admin-pc")
        .expect("gui member");

    // The same in the ADOM: another resource's object, outside our prefix, in our group.
    let control = sim.fortimanager("fmg").control().clone();
    control
        .put_object(
            "root",
            AdomTable::Address,
            serde_json::json!({"name": "web_192.0.2.7", "type": "ipmask", "subnet": ["192.0.2.7", "255.255.255.255"], "comment": "managed-by fortisync team-b/web"}),
        )
        .expect("ADOM object");
    let mut adom_group = control
        .object("root", AdomTable::Addrgrp, "allowed-admins")
        .expect("ADOM group");
    adom_group["member"] = serde_json::json!(["fs_192.0.2.10", "web_192.0.2.7"]);
    control
        .put_object("root", AdomTable::Addrgrp, adom_group)
        .expect("ADOM member");

    let out = converge(&t, &g).await.expect("again");
    assert!(out.plans[0].plan.is_empty(), "{}", out.plans[0].plan);
    assert_eq!(out.plans[0].plan.foreign_members(), ["web_192.0.2.7"]);
    assert_eq!(adom_members(&sim), ["fs_192.0.2.10", "web_192.0.2.7"]);
    let fw_a = out
        .devices
        .iter()
        .find(|d| d.device == "fw-a")
        .expect("fw-a");
    let ops: Vec<String> = fw_a.plan.ops().iter().map(ToString::to_string).collect();
    assert_eq!(ops, ["- member admin-pc <- group allowed-admins"]);
    assert_eq!(
        device_members(&sim, "fw-a"),
        ["fs_192.0.2.10", "web_192.0.2.7"]
    );
    assert_eq!(device_members(&sim, "fw-b"), ["fs_192.0.2.10"]);
}

fn group_named(name: &str, group_name: &str, members: &[&str]) -> AddressGroup {
    let mut g = group(members);
    g.metadata.name = Some(name.into());
    g.spec.group_name = group_name.into();
    g
}

fn workspace_calls(sim: &Simulator, suffix: &str) -> usize {
    sim.fortimanager("fmg")
        .control()
        .requests()
        .iter()
        .filter(|r| r.url.ends_with(suffix))
        .count()
}

#[tokio::test]
async fn groups_queued_together_share_one_workspace_session_and_reach_every_device() {
    use fortisync::reconcile::addressgroup::adom_batch::converge_together;
    let sim = Estate::default().start().await;
    let t = target(&sim).await;
    let control = sim.fortimanager("fmg").control().clone();
    control.clear_requests();
    let groups: Vec<_> = (0..3)
        .map(|i| {
            group_named(
                &format!("g{i}"),
                &format!("group-{i}"),
                &[&format!("192.0.2.{i}")],
            )
        })
        .collect();
    let answers: Vec<Convergence> = converge_together(&t, &groups, jiff::Timestamp::now(), true)
        .await
        .into_iter()
        .map(|a| a.expect("batched"))
        .collect();
    // One lock, one commit, one unlock for the three groups' six writes.
    assert_eq!(workspace_calls(&sim, "/workspace/lock"), 1);
    assert_eq!(workspace_calls(&sim, "/workspace/commit"), 1);
    assert_eq!(workspace_calls(&sim, "/workspace/unlock"), 1);
    for (i, a) in answers.iter().enumerate() {
        assert_eq!(a.plans[0].plan.writes(), 2, "{a:?}");
        assert_eq!(a.devices.len(), 2, "{a:?}");
        let name = format!("group-{i}");
        let object = control
            .object("root", AdomTable::Addrgrp, &name)
            .expect("ADOM group");
        assert_eq!(
            object["member"],
            serde_json::json!([format!("fs_192.0.2.{i}")])
        );
        for fw in ["fw-a", "fw-b"] {
            assert_eq!(
                sim.fortigate(fw)
                    .group_members("root", Table::Addrgrp, &name),
                Some(vec![format!("fs_192.0.2.{i}")]),
                "{fw}"
            );
        }
    }
    assert!(control.lock_holder("root").is_none());
    // Converged: each group as alone, no lock.
    control.clear_requests();
    for g in &groups {
        assert!(converge(&t, g).await.expect("again").is_converged());
    }
    assert_eq!(workspace_calls(&sim, "/workspace/lock"), 0);
}

#[tokio::test]
async fn a_shared_session_the_adom_refuses_commits_nothing_and_each_group_runs_alone() {
    use fortisync::reconcile::addressgroup::adom_batch::converge_together;
    use fortisync::sim::fortimanager::FaultRule;
    let sim = Estate::default().start().await;
    let t = target(&sim).await;
    let control = sim.fortimanager("fmg").control().clone();
    // The shared session's commit is refused once: its writes must be discarded.
    control.add_fault(FaultRule {
        url: "/dvmdb/adom/root/workspace/commit".into(),
        code: Some(-10),
        message: Some("commit failed".into()),
        times: Some(1),
        ..FaultRule::default()
    });
    control.clear_requests();
    let groups: Vec<_> = (0..3)
        .map(|i| {
            group_named(
                &format!("g{i}"),
                &format!("group-{i}"),
                &[&format!("192.0.2.{i}")],
            )
        })
        .collect();
    let answers = converge_together(&t, &groups, jiff::Timestamp::now(), true).await;
    // The shared session was unlocked without a commit (its writes discarded); then each
    // group alone, observed afresh: three more sessions, each committed.
    assert_eq!(workspace_calls(&sim, "/workspace/lock"), 4);
    assert_eq!(workspace_calls(&sim, "/workspace/commit"), 4);
    assert_eq!(workspace_calls(&sim, "/workspace/unlock"), 4);
    for (i, a) in answers.iter().enumerate() {
        let a = a.as_ref().expect("each converged alone");
        // Alone, it found nothing of the discarded session and wrote its two objects again.
        assert_eq!(a.plans[0].plan.writes(), 2, "{a:?}");
        assert_eq!(a.devices.len(), 2, "{a:?}");
        let name = format!("group-{i}");
        assert_eq!(
            control
                .object("root", AdomTable::Addrgrp, &name)
                .map(|g| g["member"].clone()),
            Some(serde_json::json!([format!("fs_192.0.2.{i}")])),
            "{name}"
        );
    }
    assert!(control.lock_holder("root").is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn passes_queued_together_under_different_device_targets_install_each_to_its_own() {
    use fortisync::api::fortimanager::{DeviceTarget, DeviceTargetKind};
    use fortisync::reconcile::addressgroup::batch::{Batches, converge_batched};
    use std::sync::Arc;
    let sim = Estate::default().start().await;
    let every = Arc::new(target(&sim).await);
    // The same client (it outlives an edit of the device targets), another reading of them.
    let only_a = {
        let Target::FortiManager {
            client,
            spec,
            firmware,
        } = &*every
        else {
            panic!("a FortiManager target");
        };
        let mut spec = spec.clone();
        spec.device_targets = vec![DeviceTarget {
            kind: DeviceTargetKind::Device,
            name: "fw-a".into(),
        }];
        Arc::new(Target::FortiManager {
            client: client.clone(),
            spec,
            firmware: *firmware,
        })
    };
    let batches = Arc::new(Batches::default());
    let now = jiff::Timestamp::now();
    // The first holds the turn; the two behind it queue together, each under its own reading.
    let passes: Vec<_> = [(0, &every), (1, &every), (2, &only_a)]
        .into_iter()
        .map(|(i, t)| {
            let (t, batches) = ((*t).clone(), batches.clone());
            let g = group_named(
                &format!("g{i}"),
                &format!("group-{i}"),
                &[&format!("192.0.2.{i}")],
            );
            tokio::spawn(async move { converge_batched(&batches, &t, &g, now, true, false).await })
        })
        .collect();
    for p in passes {
        p.await.expect("task").expect("converged");
    }
    let has = |fw: &str, i: usize| {
        sim.fortigate(fw)
            .group_members("root", Table::Addrgrp, &format!("group-{i}"))
            .is_some()
    };
    assert!(has("fw-a", 0) && has("fw-a", 1) && has("fw-a", 2));
    assert!(has("fw-b", 0) && has("fw-b", 1));
    assert!(
        !has("fw-b", 2),
        "group-2 was installed beyond its device targets"
    );
}
