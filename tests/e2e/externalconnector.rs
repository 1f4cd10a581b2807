//! ExternalConnector end to end on a FortiGate: Push (the dynamic API, 7.2.1+) and Feed (the
//! FortiGate pulls from the controller's EDL endpoint), on the real apiserver and the simulator.

use std::sync::Arc;
use std::time::Duration;

use fortisync::api::ExternalConnector;
use fortisync::api::externalconnector::ExternalConnectorStatus;
use fortisync::reconcile::context::Context;
use fortisync::reconcile::controller::{self, Scope};
use fortisync::sim::{Scenario, Simulator};
use kube::Api;
use kube::api::{Patch, PatchParams};
use prometheus_client::registry::Registry;
use serde_json::json;

use crate::support::control_plane;
use crate::support::fixture::{
    KEY, RunningController, condition, fortigate, fortigate_sim, secret, start_controller, wait_for,
};

const WAIT: Duration = Duration::from_secs(30);

/// A simulated FortiGate `fw` on `version`, whose feeds pull on a scaled clock.
async fn fortigate_on(version: &str) -> Simulator {
    let yaml = format!(
        "fortigates:\n  - name: fw\n    version: \"{version}\"\n    feeds: {{minute_ms: 1000}}\n    api_users: [{{name: fortisync, key: {KEY}, trusthosts: [\"127.0.0.0/8\"]}}]\n"
    );
    Simulator::start(Scenario::from_yaml(&yaml).expect("scenario"))
        .await
        .expect("simulator")
}

fn connector(mode: &str, extra: &str, entries: &[&str]) -> String {
    let list: String = entries.iter().map(|e| format!("  - {e}\n")).collect();
    format!(
        "apiVersion: fortisync.dev/v1alpha1\nkind: ExternalConnector\nmetadata: {{name: blocklist}}\nspec:\n  targetRef: {{kind: FortiGate, name: fw}}\n  resourceName: fs-blocklist\n  mode: {mode}\n{extra}  entries:\n{list}"
    )
}

async fn status(ns: &str) -> Option<ExternalConnectorStatus> {
    let api: Api<ExternalConnector> = Api::namespaced(control_plane().client(), ns);
    api.get("blocklist").await.ok()?.status
}

/// Waits until the status describes the current generation, Ready, with the device holding
/// every desired entry.
async fn settled(ns: &str) -> ExternalConnectorStatus {
    let api: Api<ExternalConnector> = Api::namespaced(control_plane().client(), ns);
    wait_for("the status settled on this generation", WAIT, || async {
        let ec = api.get("blocklist").await.ok()?;
        let s = ec.status?;
        (s.observed_generation == ec.metadata.generation
            && condition(&s.conditions, "Ready").is_some_and(|(ok, _)| ok == "True")
            && s.entries.on_device == s.entries.desired)
            .then_some(s)
    })
    .await
}

async fn ready(ns: &str, ok: &str, reason: &str) -> ExternalConnectorStatus {
    let started = std::time::Instant::now();
    loop {
        let s = status(ns).await;
        if let Some(s) = &s
            && condition(&s.conditions, "Ready") == Some((ok.into(), reason.into()))
        {
            return s.clone();
        }
        assert!(
            started.elapsed() < WAIT,
            "timed out waiting for ExternalConnector Ready={ok} {reason}; last status: {s:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn push_converges_apply_edit_expiry_drift_and_delete() {
    let cp = control_plane();
    cp.install_crds();
    let ns = cp.namespace("ec-push");
    let sim = fortigate_sim("").await;
    let fg = sim.fortigate("fw");
    secret(&ns, "fw-token", KEY, fg.ca_pem().expect("ca")).await;
    let _controller = start_controller(&ns);
    assert!(cp.apply(&ns, &fortigate(fg.url(), "1h", "")).0);
    let expires =
        jiff::Timestamp::from_second(jiff::Timestamp::now().as_second() + 8).expect("timestamp");
    let apply = |entries: &[&str]| cp.apply(&ns, &connector("Push", "", entries));
    let (ok, err) = apply(&[
        "{address: 192.0.2.1}",
        "{address: 192.0.2.2/32}",
        &format!("{{address: 192.0.2.3, expiresAt: \"{expires}\"}}"),
    ]);
    assert!(ok, "{err}");
    let s = ready(&ns, "True", "Converged").await;
    assert_eq!(s.entries.desired, 3);
    let on_device = || sorted(fg.feed_entries("root", "fs-blocklist"));
    assert_eq!(on_device(), ["192.0.2.1", "192.0.2.2", "192.0.2.3"]);
    let object = fg
        .object(
            "root",
            fortisync::sim::fortios::Table::ExternalResource,
            "fs-blocklist",
        )
        .expect("the resource");
    assert_eq!(object["update-method"], "push");
    assert_eq!(
        object["comments"],
        format!("managed-by fortisync {ns}/blocklist")
    );

    // The expiring entry leaves on time.
    wait_for(
        "the expired entry removed",
        Duration::from_secs(20),
        || async { (on_device() == ["192.0.2.1", "192.0.2.2"]).then_some(()) },
    )
    .await;

    // An edit: one dynamic call removes and adds.
    fg.clear_requests();
    let (ok, err) = apply(&["{address: 192.0.2.1}", "{address: 198.51.100.0/24}"]);
    assert!(ok, "{err}");
    wait_for("the edit on the device", WAIT, || async {
        (on_device() == ["192.0.2.1", "198.51.100.0/24"]).then_some(())
    })
    .await;
    let pushes = fg
        .requests()
        .iter()
        .filter(|r| r.method == "POST" && r.path.ends_with("/external-resource/dynamic"))
        .count();
    assert_eq!(pushes, 1, "one batched call per change");
    // The edit's pass reports itself settled before the hand edit below; otherwise the hand
    // edit races that pass and its repair is not an out-of-band change over a converged spec.
    settled(&ns).await;

    // Someone removes an entry on the device by hand: the next pass repairs it.
    let removed = reqwest::Client::builder()
        .danger_accept_invalid_certs(true)
        .build()
        .expect("client")
        .post(format!(
            "{}/api/v2/monitor/system/external-resource/dynamic",
            fg.url()
        ))
        .bearer_auth(KEY)
        .json(&json!({"commands": [{"name": "fs-blocklist", "command": "remove", "entries": ["192.0.2.1"]}]}))
        .send()
        .await
        .expect("remove by hand");
    assert!(removed.status().is_success());
    assert_eq!(on_device(), ["198.51.100.0/24"]);
    let api: Api<ExternalConnector> = Api::namespaced(cp.client(), &ns);
    api.patch(
        "blocklist",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"annotations": {"resync": "now"}}})),
    )
    .await
    .expect("annotate");
    wait_for("the entry restored", WAIT, || async {
        (on_device() == ["192.0.2.1", "198.51.100.0/24"]).then_some(())
    })
    .await;
    let repaired = wait_for("the repair counted", WAIT, || async {
        status(&ns).await.filter(|s| s.drift_repairs >= 1)
    })
    .await;
    assert_eq!(repaired.drift_repairs, 1);

    // Delete removes the resource.
    cp.kubectl_ok(&[
        "delete",
        "-n",
        &ns,
        "externalconnector/blocklist",
        "--timeout=30s",
    ]);
    assert!(
        fg.object(
            "root",
            fortisync::sim::fortios::Table::ExternalResource,
            "fs-blocklist"
        )
        .is_none()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn push_to_fortios_7_0_is_refused_with_its_reason_and_nothing_is_written() {
    let cp = control_plane();
    cp.install_crds();
    let ns = cp.namespace("ec-push-70");
    let sim = fortigate_on("7.0.12").await;
    let fg = sim.fortigate("fw");
    secret(&ns, "fw-token", KEY, fg.ca_pem().expect("ca")).await;
    let _controller = start_controller(&ns);
    assert!(cp.apply(&ns, &fortigate(fg.url(), "1h", "")).0);
    assert!(
        cp.apply(&ns, &connector("Push", "", &["{address: 192.0.2.1}"]))
            .0
    );
    let s = ready(&ns, "False", "PushUnsupported").await;
    let message = crate::support::fixture::condition_message(&s.conditions, "Ready");
    assert!(
        message.contains("7.0.12") && message.contains("mode: Feed"),
        "{message}"
    );
    let writes = fg.requests().iter().filter(|r| r.method != "GET").count();
    assert_eq!(writes, 0, "refused before any write");
}

/// The in-process controller with its EDL endpoint served on loopback.
async fn start_with_edl(ns: &str) -> (RunningController, String) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    let mut registry = Registry::default();
    let ctx = Arc::new(
        Context::new(control_plane().client(), &mut registry).with_edl_base_url(Some(base.clone())),
    );
    tokio::spawn(fortisync::edl::serve_on(
        listener,
        ctx.edl.clone(),
        None,
        std::future::pending(),
    ));
    let running = crate::support::fixture::RunningController::spawn(controller::run(
        ctx,
        Scope::namespace(ns.to_string()),
    ));
    (running, base)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn feed_the_fortigate_pulls_from_the_edl_and_a_wrong_password_is_reported() {
    let cp = control_plane();
    cp.install_crds();
    let ns = cp.namespace("ec-feed");
    let sim = fortigate_on("7.4.3").await;
    let fg = sim.fortigate("fw");
    secret(&ns, "fw-token", KEY, fg.ca_pem().expect("ca")).await;
    crate::support::canary::register("feed-pass-1");
    cp.kubectl_ok(&[
        "create",
        "secret",
        "generic",
        "feed-auth",
        "-n",
        &ns,
        "--from-literal=username=fortigate",
        "--from-literal=password=feed-pass-1",
    ]);
    let (_controller, base) = start_with_edl(&ns).await;
    assert!(cp.apply(&ns, &fortigate(fg.url(), "1h", "")).0);
    let feed = "  feed: {refreshRate: 60, credentialsSecretRef: {name: feed-auth}}\n";
    let (ok, err) = cp.apply(
        &ns,
        &connector(
            "Feed",
            feed,
            &["{address: 192.0.2.1}", "{address: 10.0.0.0/8}"],
        ),
    );
    assert!(ok, "{err}");
    let s = ready(&ns, "True", "Converged").await;
    assert_eq!(
        s.feed_url.as_deref(),
        Some(format!("{base}/edl/{ns}/blocklist").as_str())
    );
    assert_eq!(s.entries.on_device, 2);
    let on_device = || sorted(fg.feed_entries("root", "fs-blocklist"));
    assert_eq!(on_device(), ["10.0.0.0/8", "192.0.2.1"]);
    let object = fg
        .object(
            "root",
            fortisync::sim::fortios::Table::ExternalResource,
            "fs-blocklist",
        )
        .expect("the resource");
    assert_eq!(object["update-method"], "feed");
    assert_eq!(object["resource"], format!("{base}/edl/{ns}/blocklist"));

    // An edit reaches the device at once (refresh), not at the 60-minute refresh rate.
    let (ok, err) = cp.apply(
        &ns,
        &connector(
            "Feed",
            feed,
            &["{address: 192.0.2.1}", "{address: 203.0.113.5}"],
        ),
    );
    assert!(ok, "{err}");
    wait_for("the edit pulled", Duration::from_secs(5), || async {
        (on_device() == ["192.0.2.1", "203.0.113.5"]).then_some(())
    })
    .await;

    // The device's copy of the password goes wrong: its pull fails, it keeps the last list,
    // and the connector says so with the remedy.
    let client = reqwest::Client::builder()
        .danger_accept_invalid_certs(true)
        .build()
        .expect("client");
    let put = client
        .put(format!(
            "{}/api/v2/cmdb/system/external-resource/fs-blocklist",
            fg.url()
        ))
        .bearer_auth(KEY)
        .json(&json!({"password": "not-the-feed-password"}))
        .send()
        .await
        .expect("put");
    assert!(put.status().is_success());
    let refresh = client
        .post(format!(
            "{}/api/v2/monitor/system/external-resource/refresh",
            fg.url()
        ))
        .bearer_auth(KEY)
        .json(&json!({"mkey": "fs-blocklist"}))
        .send()
        .await
        .expect("refresh");
    assert!(refresh.status().is_success());
    wait_for(
        "the failed pull on the device",
        Duration::from_secs(5),
        || async {
            fg.feed_polls("root", "fs-blocklist")
                .last()
                .filter(|p| p.http_status == Some(401))
                .map(|_| ())
        },
    )
    .await;
    let api: Api<ExternalConnector> = Api::namespaced(cp.client(), &ns);
    api.patch(
        "blocklist",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"annotations": {"look": "again"}}})),
    )
    .await
    .expect("annotate");
    let s = wait_for("FeedPullFailed", WAIT, || async {
        let s = status(&ns).await?;
        (condition(&s.conditions, "Ready") == Some(("False".into(), "FeedPullFailed".into())))
            .then_some(s)
    })
    .await;
    let message = crate::support::fixture::condition_message(&s.conditions, "Ready");
    assert!(
        message.contains("HTTP 401") && message.contains("credentialsSecretRef"),
        "{message}"
    );
    assert_eq!(
        on_device(),
        ["192.0.2.1", "203.0.113.5"],
        "the last good list stays"
    );
}

/// A free loopback port.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_standby_replica_serves_the_feed_too() {
    let cp = control_plane();
    cp.install_crds();
    let ns = cp.namespace("ec-standby");
    let sim = fortigate_on("7.4.3").await;
    let fg = sim.fortigate("fw");
    secret(&ns, "fw-token", KEY, fg.ca_pem().expect("ca")).await;
    assert!(cp.apply(&ns, &fortigate(fg.url(), "1h", "")).0);
    let ports = [free_port(), free_port()];
    let start = |identity: &str, port: u16| {
        let edl = format!("127.0.0.1:{port}");
        crate::support::run::RunProcess::start(
            cp,
            &ns,
            identity,
            &["--lease-duration-seconds", "4", "--edl-address", &edl],
        )
    };
    let replicas = [start("replica-a", ports[0]), start("replica-b", ports[1])];
    let leader = wait_for("a Lease holder", WAIT, || async {
        let api: Api<k8s_openapi::api::coordination::v1::Lease> = Api::namespaced(cp.client(), &ns);
        api.get_opt("fortisync-controller")
            .await
            .ok()??
            .spec?
            .holder_identity
    })
    .await;
    let standby = replicas
        .iter()
        .position(|r| r.identity != leader)
        .expect("a standby");
    // The FortiGate polls the standby's endpoint: only the standby's cache can answer it.
    let feed = format!(
        "  feed: {{refreshRate: 60, url: \"http://127.0.0.1:{}/edl/{ns}/blocklist\"}}\n",
        ports[standby]
    );
    let (ok, err) = cp.apply(
        &ns,
        &connector(
            "Feed",
            &feed,
            &["{address: 192.0.2.1}", "{address: 192.0.2.2}"],
        ),
    );
    assert!(ok, "{err}");
    ready(&ns, "True", "Converged").await;
    assert_eq!(
        sorted(fg.feed_entries("root", "fs-blocklist")),
        ["192.0.2.1", "192.0.2.2"]
    );
    let polls = fg.feed_polls("root", "fs-blocklist");
    assert!(
        polls
            .iter()
            .all(|p| p.url.contains(&format!(":{}/", ports[standby]))),
        "every pull went to the standby: {polls:?}"
    );
    assert_eq!(replicas[standby].writes(), 0, "the standby wrote nothing");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_push_is_a_warning_the_object_stays_and_the_next_pass_pushes_again() {
    use fortisync::sim::fortios::{FaultBody, FaultRule};

    let cp = control_plane();
    cp.install_crds();
    let ns = cp.namespace("ec-push-fail");
    let sim = fortigate_sim("").await;
    let fg = sim.fortigate("fw");
    // The device refuses the first dynamic call with a server error (F19: transient).
    fg.add_fault(FaultRule {
        path: "/api/v2/monitor/system/external-resource/dynamic".into(),
        method: Some("POST".into()),
        status: Some(500),
        body: FaultBody::Json,
        error: Some(-1),
        times: Some(1),
        ..FaultRule::default()
    });
    secret(&ns, "fw-token", KEY, fg.ca_pem().expect("ca")).await;
    let _controller = start_controller(&ns);
    assert!(cp.apply(&ns, &fortigate(fg.url(), "1h", "")).0);
    let (ok, err) = cp.apply(&ns, &connector("Push", "", &["{address: 192.0.2.1}"]));
    assert!(ok, "{err}");
    let failed = ready(&ns, "False", "PushFailed").await;
    let degraded = failed
        .conditions
        .iter()
        .find(|c| c.type_ == "PushDegraded")
        .expect("the PushDegraded warning condition");
    assert_eq!(degraded.status, "True");
    assert!(
        degraded
            .message
            .contains("the next pass, within 30 s, pushes again"),
        "{}",
        degraded.message
    );
    assert!(
        fg.object(
            "root",
            fortisync::sim::fortios::Table::ExternalResource,
            "fs-blocklist"
        )
        .is_some(),
        "the object was written before the push"
    );
    assert!(fg.feed_entries("root", "fs-blocklist").is_empty());
    let events = crate::support::fixture::events_of(&ns, "blocklist").await;
    assert_eq!(
        events
            .iter()
            .filter(|(_, reason, _)| reason == "PushFailed")
            .count(),
        1,
        "one warning event: {events:?}"
    );

    // Retried on its own schedule; a touch makes it now.
    let api: Api<ExternalConnector> = Api::namespaced(cp.client(), &ns);
    api.patch(
        "blocklist",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"annotations": {"retry": "now"}}})),
    )
    .await
    .expect("annotate");
    let healed = ready(&ns, "True", "Converged").await;
    assert!(
        healed.conditions.iter().all(|c| c.type_ != "PushDegraded"),
        "{:?}",
        healed.conditions
    );
    assert_eq!(fg.feed_entries("root", "fs-blocklist"), ["192.0.2.1"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_configmap_that_swaps_entries_is_an_edit_not_drift() {
    let cp = control_plane();
    cp.install_crds();
    let ns = cp.namespace("ec-cm-swap");
    let sim = fortigate_sim("").await;
    let fg = sim.fortigate("fw");
    secret(&ns, "fw-token", KEY, fg.ca_pem().expect("ca")).await;
    let _controller = start_controller(&ns);
    assert!(cp.apply(&ns, &fortigate(fg.url(), "1h", "")).0);
    let map = |ips: &str| {
        format!(
            "apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: extra}}\ndata:\n  ips: \"{ips}\"\n"
        )
    };
    assert!(cp.apply(&ns, &map("192.0.2.1\\n192.0.2.2\\n")).0);
    let (ok, err) = cp.apply(
        &ns,
        &connector(
            "Push",
            "  entriesFrom: [{configMapRef: {name: extra, key: ips}}]\n",
            &["{address: 203.0.113.1}"],
        ),
    );
    assert!(ok, "{err}");
    wait_for("the first list on the device", WAIT, || async {
        (sorted(fg.feed_entries("root", "fs-blocklist"))
            == ["192.0.2.1", "192.0.2.2", "203.0.113.1"])
        .then_some(())
    })
    .await;
    settled(&ns).await;

    // Same count, other entries, same generation of the connector: an edit of the list.
    assert!(cp.apply(&ns, &map("198.51.100.1\\n198.51.100.2\\n")).0);
    wait_for("the swapped list on the device", WAIT, || async {
        (sorted(fg.feed_entries("root", "fs-blocklist"))
            == ["198.51.100.1", "198.51.100.2", "203.0.113.1"])
        .then_some(())
    })
    .await;
    let s = settled(&ns).await;
    assert_eq!(
        s.drift_repairs, 0,
        "an edit of the list is not drift: {s:?}"
    );
}
