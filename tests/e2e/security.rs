//! Security properties seen from outside, on a real API server with `fortisync run` as a
//! process: a connection that skips certificate checks says so (condition, metric, log), and
//! API tokens — one the device refuses, one it accepts — never leave the Secret: not in an
//! event, a status, a log line (at `trace`), `/metrics`, or a URL the device received.

use std::time::Duration;

use fortisync::api::{AddressGroup, FortiGate};
use fortisync::sim::fortios::Table;
use fortisync::sim::{Scenario, Simulator};
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::api::events::v1::Event;
use kube::Api;
use kube::api::ListParams;

use crate::support::control_plane;
use crate::support::fixture::{KEY, condition, condition_message, fortigate_sim, secret, wait_for};
use crate::support::run::{RunOptions, RunProcess};

const WAIT: Duration = Duration::from_secs(40);

/// A `FortiGate` named `name` on `url` reading the Secret `secret`; `tls` is its `tls` mapping.
fn connection(name: &str, url: &str, secret: &str, tls: &str) -> String {
    format!(
        "apiVersion: fortisync.dev/v1alpha1\nkind: FortiGate\nmetadata: {{name: {name}}}\nspec:\n  url: {url}\n  credentialsSecretRef: {{name: {secret}, tokenKey: token}}\n  tls: {tls}\n  resyncInterval: 10s\n"
    )
}

/// An AddressGroup `name` (device group `group`) on the FortiGate `target`.
fn address_group(name: &str, target: &str, group: &str, members: &[&str]) -> String {
    let list: String = members
        .iter()
        .map(|m| format!("  - {{address: \"{m}\"}}\n"))
        .collect();
    format!(
        "apiVersion: fortisync.dev/v1alpha1\nkind: AddressGroup\nmetadata: {{name: {name}}}\nspec:\n  targetRef: {{kind: FortiGate, name: {target}}}\n  groupName: {group}\n  members:\n{list}"
    )
}

/// Waits until the FortiGate `name`'s condition `type_` has `status` and `reason`.
async fn fortigate_condition(ns: &str, name: &str, type_: &str, status: &str, reason: &str) {
    let api: Api<FortiGate> = Api::namespaced(control_plane().client(), ns);
    wait_for(
        &format!("FortiGate {name} {type_}={status} {reason}"),
        WAIT,
        || async {
            let s = api.get(name).await.ok()?.status?;
            (condition(&s.conditions, type_) == Some((status.into(), reason.into()))).then_some(())
        },
    )
    .await
}

/// Waits until the AddressGroup `name`'s `Ready` has `status` and `reason`.
async fn group_ready(ns: &str, name: &str, status: &str, reason: &str) {
    let api: Api<AddressGroup> = Api::namespaced(control_plane().client(), ns);
    wait_for(
        &format!("AddressGroup {name} Ready={status} {reason}"),
        WAIT,
        || async {
            let s = api.get(name).await.ok()?.status?;
            (condition(&s.conditions, "Ready") == Some((status.into(), reason.into())))
                .then_some(())
        },
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn insecure_skip_verify_shows_as_a_condition_a_metric_and_one_warning() {
    let cp = control_plane();
    cp.install_crds();
    let ns = cp.namespace("insecure-tls");
    let sim = fortigate_sim("").await;
    let fg = sim.fortigate("fw");
    secret(&ns, "fw-token", KEY, fg.ca_pem().expect("ca")).await;
    // Everything every crate logs, so a token in any of it would show.
    let controller = RunProcess::start_with(
        control_plane(),
        &RunOptions {
            namespaces: &[&ns],
            lease_namespace: &ns,
            identity: "security",
            extra: &[],
            kubeconfig: None,
            log_filter: "trace",
        },
    );
    let manifest = connection("fw", fg.url(), "fw-token", "{insecureSkipVerify: true}");
    assert!(cp.apply(&ns, &manifest).0);

    fortigate_condition(&ns, "fw", "Ready", "True", "Connected").await;
    fortigate_condition(&ns, "fw", "InsecureTLS", "True", "InsecureSkipVerify").await;
    let api: Api<FortiGate> = Api::namespaced(cp.client(), &ns);
    let status = api.get("fw").await.expect("fw").status.expect("status");
    assert_eq!(
        condition_message(&status.conditions, "InsecureTLS"),
        fortisync::reconcile::connection::status::INSECURE_TLS_MESSAGE
    );
    let metrics = controller.metrics().await;
    let gauge =
        format!("fortisync_connection_insecure_tls{{connection=\"{ns}/fw\",kind=\"FortiGate\"}} 1");
    assert!(metrics.contains(&gauge), "no {gauge} in:\n{metrics}");
    // One warning, on the first probe; the resyncs that follow stay quiet.
    fortigate_probes(fg, 2).await;
    let warnings = controller
        .log()
        .lines()
        .filter(|l| l.contains("WARN") && l.contains("TLS verification is OFF for FortiGate"))
        .count();
    assert_eq!(warnings, 1, "{}", controller.log());

    // Verification back on (with the CA): the condition goes and the gauge drops to 0.
    let verified = connection(
        "fw",
        fg.url(),
        "fw-token",
        "{caBundleSecretRef: {name: fw-token, key: ca.crt}}",
    );
    assert!(cp.apply(&ns, &verified).0);
    wait_for("InsecureTLS gone", WAIT, || async {
        let s = api.get("fw").await.ok()?.status?;
        (s.observed_generation == Some(2) && condition(&s.conditions, "InsecureTLS").is_none())
            .then_some(())
    })
    .await;
    let metrics = controller.metrics().await;
    assert!(metrics.contains(&gauge.replace("} 1", "} 0")), "{metrics}");
}

/// Waits until the device answered `count` status probes (`/api/v2/monitor/system/status`).
async fn fortigate_probes(fg: &fortisync::sim::fortios::FortiGateHandle, count: usize) {
    wait_for(
        &format!("{count} probes"),
        Duration::from_secs(30),
        || async {
            let probes = fg
                .requests()
                .iter()
                .filter(|r| r.path.ends_with("/system/status"))
                .count();
            (probes >= count).then_some(())
        },
    )
    .await
}

/// One simulator with two FortiGates: `fw` accepts `good`, `fw2` accepts a key no resource has.
async fn two_fortigates(good: &str) -> Simulator {
    let yaml = format!(
        "fortigates:\n  - name: fw\n    version: \"7.4.3\"\n    serial: FGT60FTK2E2E0001\n    api_users: [{{name: fortisync, key: {good}, trusthosts: [\"127.0.0.0/8\"]}}]\n  - name: fw2\n    version: \"7.4.3\"\n    serial: FGT60FTK2E2E0002\n    api_users: [{{name: fortisync, key: {KEY}, trusthosts: [\"127.0.0.0/8\"]}}]\n"
    );
    Simulator::start(Scenario::from_yaml(&yaml).expect("scenario"))
        .await
        .expect("simulator")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_tokens_appear_in_no_event_status_log_metric_or_device_url() {
    let cp = control_plane();
    cp.install_crds();
    let ns = cp.namespace("secret-canary");
    // Unique strings: if one shows anywhere but the Secret, it leaked from there.
    let refused = format!("canaryrefused{:016x}", rand::random::<u64>());
    let accepted = format!("canaryaccepted{:016x}", rand::random::<u64>());
    let sim = two_fortigates(&accepted).await;
    let (good, bad) = (sim.fortigate("fw"), sim.fortigate("fw2"));
    secret(&ns, "good-token", &accepted, good.ca_pem().expect("ca")).await;
    secret(&ns, "bad-token", &refused, bad.ca_pem().expect("ca")).await;
    // Everything every crate logs, so a token in any of it would show.
    let controller = RunProcess::start_with(
        control_plane(),
        &RunOptions {
            namespaces: &[&ns],
            lease_namespace: &ns,
            identity: "security",
            extra: &[],
            kubeconfig: None,
            log_filter: "trace",
        },
    );
    let tls = |secret: &str| format!("{{caBundleSecretRef: {{name: {secret}, key: ca.crt}}}}");
    let manifests = [
        connection("good", good.url(), "good-token", &tls("good-token")),
        connection("bad", bad.url(), "bad-token", &tls("bad-token")),
        address_group("admins", "good", "allowed-admins", &["192.0.2.10"]),
        address_group("blocked", "bad", "blocked-admins", &["192.0.2.20"]),
    ]
    .join("---\n");
    let (ok, err) = cp.apply(&ns, &manifests);
    assert!(ok, "{err}");

    fortigate_condition(&ns, "good", "Ready", "True", "Connected").await;
    fortigate_condition(&ns, "bad", "Ready", "False", "Unauthorized").await;
    group_ready(&ns, "admins", "True", "Converged").await;
    group_ready(&ns, "blocked", "False", "Unauthorized").await;
    // A second reconcile that writes: one more member.
    let two = address_group(
        "admins",
        "good",
        "allowed-admins",
        &["192.0.2.10", "192.0.2.11"],
    );
    assert!(cp.apply(&ns, &two).0);
    wait_for("the second member on the device", WAIT, || async {
        let mut m = good.group_members("root", Table::Addrgrp, "allowed-admins")?;
        m.sort();
        (m == ["fs_192.0.2.10", "fs_192.0.2.11"]).then_some(())
    })
    .await;
    fortigate_probes(good, 2).await;

    // Every place a token could leak to, as text.
    let client = cp.client();
    let events = Api::<Event>::namespaced(client.clone(), &ns)
        .list(&ListParams::default())
        .await
        .expect("events");
    assert!(!events.items.is_empty(), "the controller recorded events");
    let objects = cp.kubectl_ok(&[
        "-n",
        &ns,
        "get",
        "fortigates.fortisync.dev,addressgroups.fortisync.dev",
        "-o",
        "json",
    ]);
    assert!(
        objects.contains("\"Unauthorized\""),
        "statuses are in: {objects}"
    );
    let log = controller.log();
    assert!(
        log.contains("TRACE") && log.contains("device write"),
        "the log is at trace and covers the writes:\n{log}"
    );
    let metrics = controller.metrics().await;
    assert!(
        metrics.contains("fortisync_device_requests_total"),
        "{metrics}"
    );
    let device_requests = [good, bad]
        .iter()
        .flat_map(|fg| fg.requests())
        .collect::<Vec<_>>();
    assert_eq!(
        bad.requests().iter().filter(|r| r.auth_failed).count(),
        1,
        "the refused key was tried once: {:?}",
        bad.requests()
    );
    assert!(
        good.requests()
            .iter()
            .any(|r| r.user.as_deref() == Some("fortisync")),
        "the accepted key was used: {:?}",
        good.requests()
    );
    // The token goes in the Authorization header, never in the URL (FortiOS also accepts
    // `?access_token=`, which lands in the device's and every proxy's access log).
    for r in &device_requests {
        assert!(
            r.query_names.iter().all(|q| q != "access_token"),
            "a token in the URL: {r:?}"
        );
    }
    let urls: String = device_requests
        .iter()
        .map(|r| format!("{} {}?{}\n", r.method, r.path, r.query_names.join("&")))
        .collect();
    let places = [
        (
            "events",
            serde_json::to_string(&events.items).expect("events"),
        ),
        ("statuses", objects),
        ("controller log", log),
        ("/metrics", metrics),
        ("device URLs", urls),
    ];
    for canary in [&refused, &accepted] {
        for (place, text) in &places {
            assert!(
                !text.contains(canary.as_str()),
                "{canary} leaked into the {place}"
            );
        }
    }
    // The canaries are findable where they belong, so the search above could find them.
    let secrets = Api::<Secret>::namespaced(client, &ns);
    for (name, canary) in [("bad-token", &refused), ("good-token", &accepted)] {
        let secret = secrets.get(name).await.expect("secret");
        assert_eq!(
            fortisync::reconcile::connection::secret_value(&secret, "token").as_ref(),
            Some(canary)
        );
    }
}
