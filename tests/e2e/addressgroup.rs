//! The AddressGroup controller end to end: a real apiserver, the controller in-process, and a
//! simulated FortiGate.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use fortisync::api::AddressGroup;
use fortisync::reconcile::context::Context;
use fortisync::reconcile::controller::{self, Scope};
use fortisync::sim::fortios::Table;
use fortisync::sim::{Scenario, Simulator};
use k8s_openapi::api::core::v1::Secret;
use kube::Api;
use kube::api::PostParams;
use prometheus_client::registry::Registry;

use crate::support::control_plane;

const KEY: &str = "e2e-fortigate-token-000000000000";

async fn fortigate() -> Simulator {
    let yaml = format!(
        "fortigates:\n  - name: fw\n    version: \"7.4.3\"\n    api_users: [{{name: fortisync, key: {KEY}, trusthosts: [\"127.0.0.0/8\"]}}]\n"
    );
    Simulator::start(Scenario::from_yaml(&yaml).expect("scenario"))
        .await
        .expect("simulator")
}

async fn secret(ns: &str, token: &str, ca: &str) {
    let api: Api<Secret> = Api::namespaced(control_plane().client(), ns);
    let secret = Secret {
        metadata: kube::api::ObjectMeta {
            name: Some("fw-token".into()),
            ..Default::default()
        },
        string_data: Some(BTreeMap::from([
            ("token".to_string(), token.to_string()),
            ("ca.crt".to_string(), ca.to_string()),
        ])),
        ..Secret::default()
    };
    api.create(&PostParams::default(), &secret)
        .await
        .expect("secret");
}

fn connection(url: &str) -> String {
    format!(
        "apiVersion: fortisync.dev/v1alpha1\nkind: FortiGate\nmetadata: {{name: fw}}\nspec:\n  url: {url}\n  credentialsSecretRef: {{name: fw-token, tokenKey: token}}\n  tls: {{caBundleSecretRef: {{name: fw-token, key: ca.crt}}}}\n  resyncInterval: 10s\n"
    )
}

fn group(members: &[&str]) -> String {
    let list: String = members
        .iter()
        .map(|m| format!("  - {{address: \"{m}\"}}\n"))
        .collect();
    format!(
        "apiVersion: fortisync.dev/v1alpha1\nkind: AddressGroup\nmetadata: {{name: admins}}\nspec:\n  targetRef: {{kind: FortiGate, name: fw}}\n  groupName: allowed-admins\n  members:\n{list}"
    )
}

fn start_controller(ns: &str) -> tokio::task::JoinHandle<()> {
    let mut registry = Registry::default();
    let ctx = Arc::new(Context::new(control_plane().client(), &mut registry));
    tokio::spawn(controller::run(ctx, Scope::namespace(ns.to_string())))
}

async fn eventually<T>(what: &str, mut check: impl FnMut() -> Option<T>) -> T {
    let started = Instant::now();
    loop {
        if let Some(v) = check() {
            return v;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn status_of(ns: &str) -> Option<fortisync::api::AddressGroupStatus> {
    let api: Api<AddressGroup> = Api::namespaced(control_plane().client(), ns);
    api.get("admins").await.ok()?.status
}

fn condition(status: &fortisync::api::AddressGroupStatus, type_: &str) -> Option<(String, String)> {
    status
        .conditions
        .iter()
        .find(|c| c.type_ == type_)
        .map(|c| (c.status.clone(), c.reason.clone()))
}

// Multi-threaded: kubectl runs as a blocking child process while the controller keeps working.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apply_edit_and_delete_converge_the_device() {
    let cp = control_plane();
    cp.install_crds();
    let ns = cp.namespace("ag-converge");
    let sim = fortigate().await;
    let fg = sim.fortigate("fw");
    secret(&ns, KEY, fg.ca_pem().expect("ca")).await;
    let controller = start_controller(&ns);
    assert!(cp.apply(&ns, &connection(fg.url())).0);
    let (ok, err) = cp.apply(&ns, &group(&["192.0.2.10", "10.0.0.0/24"]));
    assert!(ok, "{err}");

    let members = |n: usize| {
        move || {
            fg.group_members("root", Table::Addrgrp, "allowed-admins")
                .filter(|m| m.len() == n)
        }
    };
    eventually("two members on the device", members(2)).await;
    let mut ready = None;
    for _ in 0..100 {
        if let Some(s) = status_of(&ns).await
            && condition(&s, "Ready") == Some(("True".into(), "Converged".into()))
        {
            ready = Some(s);
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let ready = ready.expect("Ready=True");
    assert_eq!(ready.counts.desired, 2);
    assert_eq!(
        condition(&ready, "Synced"),
        Some(("True".into(), "Applied".into()))
    );
    let printed = cp.kubectl_ok(&["-n", &ns, "get", "addressgroups.fortisync.dev", "admins"]);
    assert!(
        printed.contains("True") && printed.contains("fw"),
        "printer columns: {printed}"
    );

    // Converged and idle: status writes do not re-trigger reconciles, so the device hears
    // nothing until the next resync (10 s here).
    fg.clear_requests();
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(fg.requests().len(), 0, "no device traffic between resyncs");

    // Edit the members: the device follows.
    assert!(
        cp.apply(&ns, &group(&["192.0.2.10", "10.0.0.0/24", "198.51.100.7"]))
            .0
    );
    eventually("three members", members(3)).await;
    assert!(cp.apply(&ns, &group(&["198.51.100.7"])).0);
    eventually("one member", members(1)).await;
    eventually("the removed objects are deleted", || {
        (fg.objects("root", Table::Address).len() == 1).then_some(())
    })
    .await;

    // Delete with deletionPolicy Delete (the default): our objects and group go.
    let out = cp.kubectl(&[
        "-n",
        &ns,
        "delete",
        "addressgroups.fortisync.dev",
        "admins",
        "--wait=true",
        "--timeout=20s",
    ]);
    if !out.status.success() {
        let status = cp.kubectl_ok(&[
            "-n",
            &ns,
            "get",
            "addressgroups.fortisync.dev",
            "admins",
            "-o",
            "yaml",
        ]);
        let events = cp.kubectl_ok(&[
            "-n",
            &ns,
            "get",
            "events.events.k8s.io",
            "-o",
            "custom-columns=REASON:.reason,NOTE:.note",
        ]);
        panic!("delete did not finish:\n{status}\nevents:\n{events}");
    }
    assert!(
        fg.object("root", Table::Addrgrp, "allowed-admins")
            .is_none()
    );
    assert!(fg.objects("root", Table::Address).is_empty());
    controller.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_key_is_reported_and_tried_once() {
    let cp = control_plane();
    cp.install_crds();
    let ns = cp.namespace("ag-wrong-key");
    let sim = fortigate().await;
    let fg = sim.fortigate("fw");
    secret(&ns, "not-the-key", fg.ca_pem().expect("ca")).await;
    let controller = start_controller(&ns);
    assert!(cp.apply(&ns, &connection(fg.url())).0);
    assert!(cp.apply(&ns, &group(&["192.0.2.10"])).0);
    let mut report = None;
    for _ in 0..100 {
        if let Some(s) = status_of(&ns).await
            && let Some(e) = s.last_error.clone()
        {
            report = Some((s, e));
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (status, error) = report.expect("a failure in status");
    assert_eq!(error.reason, "Unauthorized");
    assert!(error.remedy.contains("Regenerate"), "{}", error.remedy);
    assert_eq!(
        condition(&status, "Ready").map(|c| c.0),
        Some("False".into())
    );
    // More reconciles happen (edits re-trigger), but the frozen key is never sent again.
    assert!(cp.apply(&ns, &group(&["192.0.2.10", "192.0.2.11"])).0);
    tokio::time::sleep(Duration::from_secs(2)).await;
    let loopback = IpAddr::from([127, 0, 0, 1]);
    assert_eq!(
        fg.auth_failures_from(loopback),
        1,
        "exactly one failed attempt reached the device"
    );
    assert_eq!(fg.lockout_remaining(loopback), None);
    controller.abort();
}
