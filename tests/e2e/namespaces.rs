//! A real `fortisync run` process with `--namespace a --namespace b`, authenticated as the
//! chart's ServiceAccount (a token from the TokenRequest API, so exactly the chart's namespaced
//! RBAC): both namespaces converge on their devices, and a third namespace's AddressGroup is
//! never touched — no finalizer, no status, not one request to its device.

use std::path::PathBuf;
use std::time::Duration;

use fortisync::api::{AddressGroup, FortiGate};
use fortisync::sim::Simulator;
use fortisync::sim::fortios::Table;
use k8s_openapi::api::coordination::v1::Lease;
use kube::{Api, ResourceExt};

use crate::chart::install;
use crate::support::control_plane;
use crate::support::fixture::{
    KEY, events_of, fortigate, fortigate_sim, group, group_ready, group_status, member, secret,
    wait_for,
};
use crate::support::run::{RunOptions, RunProcess};

const RELEASE: &str = "fsrun";

/// A kubeconfig holding a fresh token of the chart's ServiceAccount in `release_ns`.
fn service_account_kubeconfig(release_ns: &str) -> PathBuf {
    let cp = control_plane();
    let sa = format!("{RELEASE}-fortisync");
    let token = cp.kubectl_ok(&["create", "token", &sa, "-n", release_ns, "--duration=1h"]);
    let path = cp.dir.join(format!("kubeconfig-{release_ns}-{sa}"));
    let kubeconfig = format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: e2e\n  cluster:\n    server: {}\n    certificate-authority: {}\nusers:\n- name: {sa}\n  user:\n    token: {}\ncontexts:\n- name: e2e\n  context: {{cluster: e2e, user: {sa}}}\ncurrent-context: e2e\n",
        cp.url,
        cp.dir.join("ca.crt").display(),
        token.trim()
    );
    std::fs::write(&path, kubeconfig).expect("write kubeconfig");
    path
}

/// A FortiGate `fw` (its own simulator) and the AddressGroup `admins` with `address`, in `ns`.
async fn tenant(ns: &str, address: &str) -> Simulator {
    let cp = control_plane();
    let sim = fortigate_sim("").await;
    let fg = sim.fortigate("fw");
    secret(ns, "fw-token", KEY, fg.ca_pem().expect("ca")).await;
    let (ok, err) = cp.apply(ns, &fortigate(fg.url(), "10s", ""));
    assert!(ok, "{err}");
    let (ok, err) = cp.apply(ns, &group(("FortiGate", "fw"), "", &[member(address)]));
    assert!(ok, "{err}");
    sim
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_scoped_to_two_namespaces_with_the_charts_rbac_converges_both_and_leaves_a_third_alone()
 {
    let cp = control_plane();
    cp.install_crds();
    let release_ns = cp.namespace("ns-release");
    let (a, b, c) = (
        cp.namespace("ns-a"),
        cp.namespace("ns-b"),
        cp.namespace("ns-c"),
    );
    install(
        RELEASE,
        &release_ns,
        &[&format!("watchNamespaces={{{a},{b}}}")],
    );
    let kubeconfig = service_account_kubeconfig(&release_ns);

    // Every namespace's resources exist before the controller starts, so by the time it has
    // listed and converged a and b it has had every chance to see c.
    let sim_a = tenant(&a, "192.0.2.10").await;
    let sim_b = tenant(&b, "192.0.2.20").await;
    let sim_c = tenant(&c, "192.0.2.30").await;
    let controller = RunProcess::start_with(
        cp,
        &RunOptions {
            namespaces: &[&a, &b],
            lease_namespace: &release_ns,
            identity: "ns-run",
            extra: &[],
            kubeconfig: Some(kubeconfig.clone()),
            log_filter: "info",
        },
    );

    for ns in [&a, &b] {
        group_ready(ns, "True", "Converged", Duration::from_secs(40)).await;
    }
    assert_eq!(
        sim_a
            .fortigate("fw")
            .group_members("root", Table::Addrgrp, "allowed-admins"),
        Some(vec!["fs_192.0.2.10".to_string()])
    );
    assert_eq!(
        sim_b
            .fortigate("fw")
            .group_members("root", Table::Addrgrp, "allowed-admins"),
        Some(vec!["fs_192.0.2.20".to_string()])
    );
    wait_for(
        "the controller's readiness",
        Duration::from_secs(20),
        || async {
            controller
                .log()
                .contains("every watch has listed its resources")
                .then_some(())
        },
    )
    .await;

    // What the chart's Roles must allow, done for real by the process: the connection
    // finalizer, a status, an event, the Lease in the release namespace.
    for ns in [&a, &b] {
        let api = Api::<FortiGate>::namespaced(cp.client(), ns);
        let fw = wait_for(
            "the FortiGate reachable",
            Duration::from_secs(20),
            || async {
                let fw = api.get("fw").await.ok()?;
                fw.status
                    .as_ref()
                    .is_some_and(|s| s.reachable)
                    .then_some(fw)
            },
        )
        .await;
        assert_eq!(fw.finalizers(), ["fortisync.dev/dependents"], "in {ns}");
        let events = events_of(ns, "fw").await;
        assert!(
            events
                .iter()
                .any(|(t, reason, _)| t == "Normal" && reason == "Connected"),
            "in {ns}: {events:?}"
        );
    }
    let lease = Api::<Lease>::namespaced(cp.client(), &release_ns)
        .get("fortisync-controller")
        .await
        .expect("the Lease in the release namespace");
    assert_eq!(
        lease.spec.and_then(|s| s.holder_identity).as_deref(),
        Some("ns-run")
    );

    // The third namespace: untouched on the cluster and on its device.
    let untouched = Api::<AddressGroup>::namespaced(cp.client(), &c)
        .get("admins")
        .await
        .expect("AddressGroup in c");
    assert!(untouched.finalizers().is_empty());
    assert!(group_status(&c).await.is_none());
    let fw_c = Api::<FortiGate>::namespaced(cp.client(), &c)
        .get("fw")
        .await
        .expect("FortiGate in c");
    assert!(fw_c.finalizers().is_empty());
    assert!(fw_c.status.is_none());
    assert!(events_of(&c, "fw").await.is_empty());
    assert!(events_of(&c, "admins").await.is_empty());
    let device_c = sim_c.fortigate("fw");
    assert_eq!(
        device_c.group_members("root", Table::Addrgrp, "allowed-admins"),
        None
    );
    assert_eq!(
        device_c.requests().len(),
        0,
        "no request reached c's device"
    );

    // The chart's RBAC was enough: no watch or request was refused.
    let log = controller.log();
    assert!(!log.contains("watch failed"), "{log}");
    assert!(!log.to_lowercase().contains("forbidden"), "{log}");
}
