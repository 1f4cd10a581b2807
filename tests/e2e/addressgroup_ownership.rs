//! What the controller refuses to write, through a real API server: a device group another
//! AddressGroup owns (same namespace: named; another namespace: not), one address admitted in
//! two spellings, members whose `expiresAt` passed before the group existed.

use std::time::Duration;

use fortisync::api::addressgroup::AddressGroupStatus;
use fortisync::sim::fortios::{FortiGateHandle, Table};

use crate::support::control_plane;
use crate::support::fixture::{
    KEY, condition, condition_message, events_of, expiring, fortigate, fortigate_sim, group_named,
    group_observed, group_ready, group_status_named, member, secret, start_controller, wait_for,
};

const CONVERGE_WAIT: Duration = Duration::from_secs(30);

/// The AddressGroup `name` (group `allowed-admins` on `FortiGate/fw`).
fn named(name: &str, extra: &str, members: &[String]) -> String {
    group_named(name, "allowed-admins", ("FortiGate", "fw"), extra, members)
}

async fn ready_of(ns: &str, name: &str, reason: &str) -> AddressGroupStatus {
    wait_for(
        &format!("{ns}/{name} Ready reason {reason}"),
        CONVERGE_WAIT,
        || async {
            let s = group_status_named(ns, name).await?;
            (condition(&s.conditions, "Ready").is_some_and(|(_, r)| r == reason)).then_some(s)
        },
    )
    .await
}

fn device_writes(fg: &FortiGateHandle) -> Vec<String> {
    fg.requests()
        .iter()
        .filter(|r| r.method != "GET")
        .map(|r| format!("{} {}", r.method, r.path))
        .collect()
}

fn group_reads(fg: &FortiGateHandle) -> usize {
    fg.requests()
        .iter()
        .filter(|r| r.method == "GET" && r.path.contains("/firewall/addrgrp/allowed-admins"))
        .count()
}

/// A namespace with the Secret and the `FortiGate` `fw` (10 s resync) for `fg`, and its
/// controller.
async fn tenant(
    test: &str,
    fg: &FortiGateHandle,
) -> (String, crate::support::fixture::RunningController) {
    let cp = control_plane();
    let ns = cp.namespace(test);
    secret(&ns, "fw-token", KEY, fg.ca_pem().expect("ca")).await;
    let controller = start_controller(&ns);
    assert!(cp.apply(&ns, &fortigate(fg.url(), "10s", "")).0);
    (ns, controller)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_addressgroup_on_an_owned_device_group_is_refused_and_nobody_flaps() {
    let cp = control_plane();
    cp.install_crds();
    let sim = fortigate_sim("").await;
    let fg = sim.fortigate("fw");
    let (ns, _controller) = tenant("ag-owner", fg).await;
    let exclusive = "  membership: Exclusive\n";
    let (ok, err) = cp.apply(&ns, &named("admins", exclusive, &[member("192.0.2.10")]));
    assert!(ok, "{err}");
    ready_of(&ns, "admins", "Converged").await;
    let (ok, err) = cp.apply(&ns, &named("web", exclusive, &[member("192.0.2.20")]));
    assert!(ok, "{err}");
    let refused = ready_of(&ns, "web", "GroupOwnedByAnother").await;
    assert_eq!(
        condition_message(&refused.conditions, "Ready"),
        "fortisync resource admins (in this namespace) owns this group: address group allowed-admins carries its marker, so this resource writes nothing to it"
    );
    assert_eq!(
        condition(&refused.conditions, "Ready").expect("Ready").0,
        "False"
    );
    let remedy = refused.last_error.clone().expect("lastError").remedy;
    assert!(remedy.contains("spec.groupName"), "{remedy}");

    // Two resyncs of both resources (each reads the group once per pass): no write at all.
    group_observed(&ns, "admins", CONVERGE_WAIT).await;
    group_observed(&ns, "web", CONVERGE_WAIT).await;
    fg.clear_requests();
    wait_for("two resyncs of both resources", CONVERGE_WAIT, || async {
        (group_reads(fg) >= 4).then_some(())
    })
    .await;
    assert_eq!(device_writes(fg), Vec::<String>::new());
    assert_eq!(
        fg.group_members("root", Table::Addrgrp, "allowed-admins"),
        Some(vec!["fs_192.0.2.10".to_string()])
    );
    assert!(fg.object("root", Table::Address, "fs_192.0.2.20").is_none());
    let owner = group_status_named(&ns, "admins").await.expect("status");
    assert_eq!(
        owner.drift_repairs, 0,
        "the owner never had anything to repair"
    );
    assert_eq!(
        condition(&owner.conditions, "Ready"),
        Some(("True".into(), "Converged".into()))
    );
    let still = group_status_named(&ns, "web").await.expect("status");
    assert_eq!(
        still.conditions, refused.conditions,
        "the refusal does not flap"
    );
    let warnings: Vec<_> = events_of(&ns, "web")
        .await
        .into_iter()
        .filter(|(_, reason, _)| reason == "GroupOwnedByAnother")
        .collect();
    assert_eq!(warnings.len(), 1, "announced once: {warnings:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_group_owned_in_another_namespace_is_refused_without_naming_that_tenant() {
    let cp = control_plane();
    cp.install_crds();
    let sim = fortigate_sim("").await;
    let fg = sim.fortigate("fw");
    let (first, _a) = tenant("ag-tenant-a", fg).await;
    let (second, _b) = tenant("ag-tenant-b", fg).await;
    assert!(
        cp.apply(&first, &named("admins", "", &[member("192.0.2.10")]))
            .0
    );
    ready_of(&first, "admins", "Converged").await;
    fg.clear_requests();
    assert!(
        cp.apply(&second, &named("intruder", "", &[member("192.0.2.20")]))
            .0
    );
    let refused = ready_of(&second, "intruder", "GroupOwnedByAnother").await;
    let message = condition_message(&refused.conditions, "Ready");
    assert_eq!(
        message,
        "another fortisync resource (in another namespace) owns this group: address group allowed-admins carries its marker, so this resource writes nothing to it"
    );
    let all = serde_json::to_string(&refused).expect("json");
    assert!(!all.contains(&first), "the other namespace leaks: {all}");
    assert!(!all.contains("fs_192.0.2.10"), "its members leak: {all}");
    group_observed(&second, "intruder", CONVERGE_WAIT).await;
    assert_eq!(device_writes(fg), Vec::<String>::new());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_address_admitted_in_two_spellings_is_refused_as_a_duplicate() {
    let cp = control_plane();
    cp.install_crds();
    let sim = fortigate_sim("").await;
    let fg = sim.fortigate("fw");
    let (ns, _controller) = tenant("ag-dup", fg).await;
    fg.clear_requests();
    let members = [member("192.0.2.60"), member("192.0.2.60/32")];
    let (ok, err) = cp.apply(&ns, &named("admins", "", &members));
    assert!(ok, "admission compares the text, so both pass: {err}");
    let refused = group_ready(&ns, "False", "DuplicateMember", CONVERGE_WAIT).await;
    assert_eq!(
        condition_message(&refused.conditions, "Ready"),
        "spec.members[0].address (\"192.0.2.60\") and spec.members[1].address (\"192.0.2.60/32\") are the same address, 192.0.2.60; nothing was written"
    );
    group_observed(&ns, "admins", CONVERGE_WAIT).await;
    assert_eq!(device_writes(fg), Vec::<String>::new());
    assert!(
        fg.group_members("root", Table::Addrgrp, "allowed-admins")
            .is_none()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn members_expired_before_the_first_reconcile_create_no_group() {
    let cp = control_plane();
    cp.install_crds();
    let sim = fortigate_sim("").await;
    let fg = sim.fortigate("fw");
    let (ns, _controller) = tenant("ag-expired", fg).await;
    fg.clear_requests();
    let past = jiff::Timestamp::now() - jiff::SignedDuration::from_hours(1);
    let members = [expiring("192.0.2.10", past), expiring("192.0.2.11", past)];
    assert!(cp.apply(&ns, &named("admins", "", &members)).0);
    let done = group_ready(&ns, "True", "Converged", CONVERGE_WAIT).await;
    assert_eq!(
        condition_message(&done.conditions, "Ready"),
        "all 2 member(s) have expired; nothing to write"
    );
    assert_eq!(done.counts.desired, 0);
    assert_eq!(done.next_expiry, None);
    group_observed(&ns, "admins", CONVERGE_WAIT).await;
    assert_eq!(device_writes(fg), Vec::<String>::new());
    assert!(
        fg.group_members("root", Table::Addrgrp, "allowed-admins")
            .is_none()
    );
}
