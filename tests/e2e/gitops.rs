//! What GitOps tools make of real objects: every kind, in each state (Ready, a spec not yet
//! observed because the device is slow, failed with a reason), read from the real apiserver
//! with the controller running and fed to `gitops-health`, which computes the kstatus result
//! with the kstatus library itself (what Flux's `healthChecks` use) and runs the Argo CD Lua
//! checks of `examples/argocd/argocd-cm.yaml` as Argo CD does.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use fortisync::sim::fortimanager::FaultRule as FmgFault;
use fortisync::sim::fortios::FaultRule;
use serde::Deserialize;
use serde_json::Value;

use crate::addressgroup_fortimanager::estate::{Estate, FMG_KEY};
use crate::support::control_plane;
use crate::support::fixture::{
    KEY, fortigate, fortigate_sim, group, member, secret, start_controller, wait_for,
};
use crate::support::tools::tool;

const WAIT: Duration = Duration::from_secs(30);

/// Every kind this build serves, as `kubectl get` names them (one line per new kind).
const KINDS: &[&str] = &[
    "addressgroups.fortisync.dev",
    "externalconnectors.fortisync.dev",
    "fortigates.fortisync.dev",
    "fortimanagers.fortisync.dev",
    "trustedhosts.fortisync.dev",
];

/// What `gitops-health` says of one object.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Verdict {
    kind: String,
    name: String,
    kstatus: String,
    kstatus_message: String,
    argo: String,
    argo_message: String,
}

fn fortimanager(url: &str) -> String {
    format!(
        "apiVersion: fortisync.dev/v1alpha1\nkind: FortiManager\nmetadata: {{name: fmg}}\nspec:\n  url: {url}\n  credentialsSecretRef: {{name: fmg-token, tokenKey: token}}\n  tls: {{caBundleSecretRef: {{name: fmg-token, key: ca.crt}}}}\n  resyncInterval: 10s\n  adom: root\n"
    )
}

fn connector() -> String {
    "apiVersion: fortisync.dev/v1alpha1\nkind: ExternalConnector\nmetadata: {name: blocklist}\nspec:\n  targetRef: {kind: FortiGate, name: fw}\n  resourceName: fs-blocklist\n  mode: Push\n  entries:\n  - {address: 192.0.2.1}\n".into()
}

/// A TrustedHost opening a slot for `127.0.0.50` to the FortiManager admin `alice`.
fn trusted_host() -> String {
    "apiVersion: fortisync.dev/v1alpha1\nkind: TrustedHost\nmetadata: {name: alice}\nspec:\n  targetRef: {kind: FortiManager, name: fmg}\n  user: alice\n  address: 127.0.0.50\n".into()
}

/// The FortiManager of the ADOM tests with one more admin, `alice`, whose slots 1-9 already
/// hold 127.0.0.1 and IPv6 slot 1 `::1` (an unset slot allows every source and masks slot 10,
/// which the controller refuses to write: F20).
async fn fortimanager_sim() -> fortisync::sim::Simulator {
    let mut scenario = Estate::default().scenario();
    let one = [std::net::Ipv4Addr::LOCALHOST, std::net::Ipv4Addr::BROADCAST];
    scenario.fortimanagers[0]
        .admins
        .push(fortisync::sim::fortimanager::AdminUser {
            userid: "alice".into(),
            password: Some("alice-pw".into()),
            profile: "Standard_User".into(),
            trusthosts: vec![one; 9],
            trusthosts6: vec!["::1/128".parse().expect("net")],
            ..Default::default()
        });
    fortisync::sim::Simulator::start(scenario)
        .await
        .expect("simulator")
}

/// One object of each kind in `ns`: a FortiGate `fw` with an AddressGroup and an
/// ExternalConnector on it, and a FortiManager `fmg` with a TrustedHost on it; the Secrets
/// hold `fw_key` and `fmg_key`.
async fn estate(
    ns: &str,
    fw_key: &str,
    fmg_key: &str,
) -> (fortisync::sim::Simulator, fortisync::sim::Simulator) {
    let cp = control_plane();
    let fg_sim = fortigate_sim("").await;
    let fmg_sim = fortimanager_sim().await;
    let fg = fg_sim.fortigate("fw");
    let fmg = fmg_sim.fortimanager("fmg");
    secret(ns, "fw-token", fw_key, fg.ca_pem().expect("ca")).await;
    secret(ns, "fmg-token", fmg_key, fmg.ca_pem().expect("ca")).await;
    let manifests = [
        fortigate(fg.url(), "1h", ""),
        group(("FortiGate", "fw"), "", &[member("192.0.2.10")]),
        connector(),
        fortimanager(fmg.url()),
        trusted_host(),
    ]
    .join("---\n");
    let (ok, err) = cp.apply(ns, &manifests);
    assert!(ok, "{err}");
    (fg_sim, fmg_sim)
}

/// Every fortisync object in `ns` as `kubectl get -o json` returns them.
fn snapshot(ns: &str) -> Value {
    let json = control_plane().kubectl_ok(&["-n", ns, "get", &KINDS.join(","), "-o", "json"]);
    serde_json::from_str(&json).expect("kubectl get -o json")
}

fn items(list: &Value) -> &[Value] {
    list["items"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
}

/// `(status, reason)` of the condition `type_` of `object`.
fn condition(object: &Value, type_: &str) -> Option<(String, String)> {
    object["status"]["conditions"]
        .as_array()?
        .iter()
        .find(|c| c["type"] == type_)
        .map(|c| {
            (
                c["status"].as_str().unwrap_or_default().into(),
                c["reason"].as_str().unwrap_or_default().into(),
            )
        })
}

fn observed(object: &Value) -> bool {
    object["status"]["observedGeneration"] == object["metadata"]["generation"]
}

/// Waits until one snapshot shows every object on their current generation with `check`
/// accepting each, and returns that snapshot.
async fn settled(ns: &str, what: &str, check: impl Fn(&Value) -> bool) -> Value {
    wait_for(what, WAIT, || async {
        let list = snapshot(ns);
        (items(&list).len() == KINDS.len() && items(&list).iter().all(|o| observed(o) && check(o)))
            .then_some(list)
    })
    .await
}

/// `gitops-health` on `list`, one verdict per object, sorted by kind.
fn health(list: &Value) -> Vec<Verdict> {
    let cm = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/argocd/argocd-cm.yaml");
    let mut child = Command::new(tool("gitops-health"))
        .arg("-argocd-cm")
        .arg(&cm)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start gitops-health");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(list.to_string().as_bytes())
        .expect("write objects");
    let out = child.wait_with_output().expect("gitops-health");
    assert!(
        out.status.success(),
        "gitops-health: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut verdicts: Vec<Verdict> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("a verdict line"))
        .collect();
    verdicts.sort_by(|a, b| a.kind.cmp(&b.kind));
    verdicts
}

/// `(kind, kstatus, argo)` of each verdict.
fn summary(verdicts: &[Verdict]) -> Vec<(&str, &str, &str)> {
    verdicts
        .iter()
        .map(|v| (v.kind.as_str(), v.kstatus.as_str(), v.argo.as_str()))
        .collect()
}

fn every_kind<'a>(kstatus: &'a str, argo: &'a str) -> Vec<(&'a str, &'a str, &'a str)> {
    [
        "AddressGroup",
        "ExternalConnector",
        "FortiGate",
        "FortiManager",
        "TrustedHost",
    ]
    .into_iter()
    .map(|k| (k, kstatus, argo))
    .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_kind_ready_reads_current_to_kstatus_and_healthy_to_argo_cd() {
    let cp = control_plane();
    cp.install_crds();
    let ns = cp.namespace("gitops-ready");
    let _controller = start_controller(&ns);
    let _sims = estate(&ns, KEY, FMG_KEY).await;
    let list = settled(&ns, "every object Ready", |o| {
        condition(o, "Ready").is_some_and(|(s, _)| s == "True")
    })
    .await;
    for o in items(&list) {
        assert_eq!(condition(o, "Stalled"), None, "{o}");
        assert_eq!(condition(o, "Reconciling"), None, "{o}");
    }
    let verdicts = health(&list);
    assert_eq!(summary(&verdicts), every_kind("Current", "Healthy"));
    let fw = verdicts
        .iter()
        .find(|v| v.kind == "FortiGate")
        .expect("FortiGate");
    assert_eq!(fw.name, "fw");
    assert_eq!(fw.kstatus_message, "Resource is Ready");
    assert_eq!(fw.argo_message, "reachable and authorised, firmware v7.4.3");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_spec_a_slow_device_has_not_let_the_controller_observe_reads_in_progress_and_progressing()
{
    let cp = control_plane();
    cp.install_crds();
    let ns = cp.namespace("gitops-slow");
    let _controller = start_controller(&ns);
    let (fg_sim, fmg_sim) = estate(&ns, KEY, FMG_KEY).await;
    settled(&ns, "every object Ready", |o| {
        condition(o, "Ready").is_some_and(|(s, _)| s == "True")
    })
    .await;
    // Both devices stop answering (the client's timeout is 15 s, longer than this test's look),
    // then every spec changes: each pass on the new generation is stuck on the device.
    fg_sim.fortigate("fw").add_fault(FaultRule {
        hang: true,
        ..FaultRule::default()
    });
    fmg_sim.fortimanager("fmg").control().add_fault(FmgFault {
        latency_ms: 600_000,
        ..FmgFault::default()
    });
    let patch = |resource: &str, name: &str, spec: &str| {
        cp.kubectl_ok(&[
            "-n", &ns, "patch", resource, name, "--type", "merge", "-p", spec,
        ]);
    };
    patch(
        "fortigates.fortisync.dev",
        "fw",
        r#"{"spec":{"resyncInterval":"2h"}}"#,
    );
    patch(
        "fortimanagers.fortisync.dev",
        "fmg",
        r#"{"spec":{"resyncInterval":"11s"}}"#,
    );
    patch(
        "addressgroups.fortisync.dev",
        "admins",
        r#"{"spec":{"members":[{"address":"192.0.2.11"}]}}"#,
    );
    patch(
        "externalconnectors.fortisync.dev",
        "blocklist",
        r#"{"spec":{"entries":[{"address":"192.0.2.2"}]}}"#,
    );
    patch(
        "trustedhosts.fortisync.dev",
        "alice",
        r#"{"spec":{"address":"127.0.0.51"}}"#,
    );

    let list = snapshot(&ns);
    for o in items(&list) {
        assert_eq!(o["metadata"]["generation"], 2, "{o}");
        assert_eq!(
            o["status"]["observedGeneration"], 1,
            "not observed yet: {o}"
        );
        assert_eq!(
            condition(o, "Ready").map(|c| c.0),
            Some("True".into()),
            "{o}"
        );
    }
    let verdicts = health(&list);
    assert_eq!(summary(&verdicts), every_kind("InProgress", "Progressing"));
    for v in &verdicts {
        assert_eq!(
            v.kstatus_message,
            format!(
                "{} generation is 2, but latest observed generation is 1",
                v.kind
            )
        );
        assert_eq!(
            v.argo_message,
            "Waiting for the controller to observe generation 2"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_key_reads_failed_to_kstatus_and_degraded_to_argo_cd_with_the_reason() {
    let cp = control_plane();
    cp.install_crds();
    let ns = cp.namespace("gitops-refused");
    let _controller = start_controller(&ns);
    let _sims = estate(&ns, "not-the-key", "not-the-fmg-key").await;
    let list = settled(&ns, "every object Stalled", |o| {
        condition(o, "Stalled").is_some_and(|(s, _)| s == "True")
    })
    .await;
    let mut reasons: Vec<(String, String, String)> = items(&list)
        .iter()
        .map(|o| {
            let (ready, reason) = condition(o, "Ready").expect("Ready");
            assert_eq!(
                condition(o, "Stalled").map(|c| c.1),
                Some(reason.clone()),
                "{o}"
            );
            (
                o["kind"].as_str().unwrap_or_default().to_string(),
                ready,
                reason,
            )
        })
        .collect();
    reasons.sort();
    let refused = |kind: &str| {
        (
            kind.to_string(),
            "False".to_string(),
            "Unauthorized".to_string(),
        )
    };
    assert_eq!(
        reasons,
        [
            refused("AddressGroup"),
            refused("ExternalConnector"),
            refused("FortiGate"),
            refused("FortiManager"),
            refused("TrustedHost")
        ]
    );
    let verdicts = health(&list);
    assert_eq!(summary(&verdicts), every_kind("Failed", "Degraded"));
    for v in &verdicts {
        assert!(v.argo_message.starts_with("Unauthorized: "), "{v:?}");
        assert!(
            v.kstatus_message.contains("Remedy:"),
            "kstatus carries the condition's message: {v:?}"
        );
    }
}
