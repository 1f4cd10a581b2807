//! What operators look at: the chart's alerts pass Prometheus' own `promtool check rules`, the
//! chart carries exactly the rules file and the dashboard of `docs/`, and every metric name the
//! rules and the dashboard query has samples on the `/metrics` of a real `fortisync run`.

use std::collections::BTreeSet;
use std::net::TcpListener;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use fortisync::sim::fortios::{FaultRule, Table};
use fortisync::sim::{Scenario, Simulator};

use crate::chart::helm_template;
use crate::support::control_plane;
use crate::support::fixture::{KEY, group, group_ready, member, secret};
use crate::support::run::RunProcess;
use crate::support::tools::tool;

fn repo(path: &str) -> String {
    let file = Path::new(env!("CARGO_MANIFEST_DIR")).join(path);
    std::fs::read_to_string(&file).unwrap_or_else(|e| panic!("read {}: {e}", file.display()))
}

const RULES: &str = "charts/fortisync/files/prometheus-rules.yaml";
const DASHBOARD: &str = "charts/fortisync/files/dashboards/fortisync.json";

/// The metric names (ours and controller-runtime's) `text` mentions.
fn metric_names(text: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for prefix in ["fortisync_", "controller_runtime_"] {
        let mut rest = text;
        while let Some(at) = rest.find(prefix) {
            let tail = &rest[at..];
            let end = tail
                .find(|c: char| !(c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'))
                .unwrap_or(tail.len());
            names.insert(tail[..end].to_string());
            rest = &tail[end..];
        }
    }
    names
}

/// Whether the exposition holds a sample of `name` (a family without samples is not exposed
/// at all, so each name is proven by a real sample).
fn has_sample(exposition: &str, name: &str) -> bool {
    exposition.lines().any(|l| {
        l.strip_prefix(name)
            .is_some_and(|rest| rest.starts_with('{') || rest.starts_with(' '))
    })
}

fn connection(name: &str, url: &str, secret: &str, extra: &str) -> String {
    format!(
        "apiVersion: fortisync.dev/v1alpha1\nkind: FortiGate\nmetadata: {{name: {name}}}\nspec:\n  url: {url}\n  credentialsSecretRef: {{name: {secret}, tokenKey: token}}\n  tls: {{caBundleSecretRef: {{name: {secret}, key: ca.crt}}}}\n  resyncInterval: 10s\n{extra}"
    )
}

#[test]
fn promtool_accepts_the_chart_alert_rules() {
    let out = Command::new(tool("promtool"))
        .args(["check", "rules"])
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join(RULES))
        .output()
        .expect("run promtool");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "promtool check rules: {stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("SUCCESS: 5 rules found"), "{stdout}");
}

#[test]
fn the_chart_renders_the_rules_file_and_the_documented_dashboard_behind_their_values() {
    assert_eq!(
        repo(DASHBOARD),
        repo("docs/grafana-dashboard.json"),
        "docs/grafana-dashboard.json is a copy of the chart's dashboard"
    );
    let off = helm_template("obs", "fortisync", &[], &[]);
    assert!(!off.contains("kind: PrometheusRule"), "off by default");
    assert!(!off.contains("grafana_dashboard"), "off by default");
    let on = helm_template(
        "obs",
        "fortisync",
        &["prometheusRule.enabled=true", "dashboards.enabled=true"],
        &[],
    );
    let docs: Vec<serde_json::Value> = fortisync::yaml::documents(&on)
        .into_iter()
        .map(|d| d.expect("a rendered manifest"))
        .collect();
    let find = |kind: &str| {
        docs.iter()
            .find(|d| d["kind"] == kind && d["metadata"]["name"].as_str().is_some())
            .unwrap_or_else(|| panic!("{kind} in the rendered chart"))
    };
    let rule = find("PrometheusRule");
    let rules: serde_json::Value = fortisync::yaml::from_str(&repo(RULES)).expect("rules file");
    assert_eq!(
        rule["spec"], rules,
        "the PrometheusRule's spec is the rules file"
    );
    let dashboards = docs
        .iter()
        .find(|d| d["kind"] == "ConfigMap" && d["metadata"]["labels"]["grafana_dashboard"] == "1")
        .expect("the dashboard ConfigMap with the sidecar's label");
    let carried: serde_json::Value =
        serde_json::from_str(dashboards["data"]["fortisync.json"].as_str().expect("data"))
            .expect("dashboard JSON");
    let file: serde_json::Value = serde_json::from_str(&repo(DASHBOARD)).expect("dashboard");
    assert_eq!(carried, file);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_metric_the_alerts_and_the_dashboard_query_has_samples_on_metrics() {
    let cp = control_plane();
    cp.install_crds();
    let ns = cp.namespace("obs-metrics");
    // What each metric is about happens for real: a group converges on `fw` and an admin's
    // removal of its member is repaired (drift), a wrong key is refused (auth failure, error),
    // `fw-locked` answers 429 (lockout, breaker), an EDL feed is polled.
    let user =
        format!("api_users: [{{name: fortisync, key: {KEY}, trusthosts: [\"127.0.0.0/8\"]}}]");
    let yaml = format!(
        "fortigates:\n  - name: fw\n    version: \"7.4.3\"\n    {user}\n  - name: fw-locked\n    version: \"7.4.3\"\n    {user}\n"
    );
    let sim = Simulator::start(Scenario::from_yaml(&yaml).expect("scenario"))
        .await
        .expect("simulator");
    let (fw, locked) = (sim.fortigate("fw"), sim.fortigate("fw-locked"));
    locked.add_fault(FaultRule {
        status: Some(429),
        ..FaultRule::default()
    });
    secret(&ns, "fw-token", KEY, fw.ca_pem().expect("ca")).await;
    secret(&ns, "bad-token", "not-the-key", fw.ca_pem().expect("ca")).await;
    secret(&ns, "locked-token", KEY, locked.ca_pem().expect("ca")).await;
    let edl = TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port");
    let edl_address = edl.to_string();
    let run = RunProcess::start(cp, &ns, "obs", &["--edl-address", &edl_address]);
    let manifests = [
        connection("fw", fw.url(), "fw-token", ""),
        connection("fw-bad", fw.url(), "bad-token", ""),
        connection("fw-locked", locked.url(), "locked-token", ""),
        group(("FortiGate", "fw"), "", &[member("192.0.2.10")]),
    ]
    .join("---\n");
    let (ok, err) = cp.apply(&ns, &manifests);
    assert!(ok, "{err}");
    group_ready(&ns, "True", "Converged", Duration::from_secs(30)).await;
    fw.remove_member("root", Table::Addrgrp, "allowed-admins", "fs_192.0.2.10")
        .expect("remove a member by hand");
    let _ = reqwest::get(format!("http://{edl_address}/edl/{ns}/none")).await;

    let mut used = metric_names(&repo(RULES));
    let rules = used.len();
    used.extend(metric_names(&repo(DASHBOARD)));
    assert!(rules >= 5 && used.len() >= 10, "names found: {used:?}");
    // The repair comes with the next resync (10 s, jittered).
    let started = std::time::Instant::now();
    loop {
        let exposition = run.metrics().await;
        let missing: Vec<&String> = used
            .iter()
            .filter(|name| !has_sample(&exposition, name))
            .collect();
        if missing.is_empty() {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(40),
            "no sample on /metrics of {missing:?}\n{exposition}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}
