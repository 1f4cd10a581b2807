//! `fortisync doctor` against the simulator configured to fail each way the troubleshooting
//! table describes: the step, its cause and remedy, the exit code, and what reached the device
//! (one refused attempt at most, nothing written). A few cases run the real binary.

mod support;

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use fortisync::cli::doctor::checks::{Report, STOPPED, Status};
use fortisync::cli::doctor::{Target, diagnose};
use fortisync::device::{
    Credentials, DeviceError, DeviceKind, EndpointConfig, LockoutPolicy, TransportConfig,
};
use fortisync::sim::fortios::FaultRule;
use fortisync::sim::{Scenario, Simulator};
use reqwest::Method;
use support::sim_client::{client, ip, send};

const KEY: &str = "doctor-key-0000000000000000000001";
const FMG_KEY: &str = "fmg-doctor-key-00000000000000001";

fn fortigate_yaml(version: &str, duration: u64, extra_user: &str) -> String {
    format!(
        r#"
fortigates:
  - name: fw
    version: "{version}"
    vdoms: [root]
    global: {{admin_lockout_threshold: 3, admin_lockout_duration: {duration}}}
    api_users:
      - {{name: fortisync, key: {KEY}, accprofile: super_admin, trusthosts: ["127.0.0.0/24"]}}
{extra_user}
    profiles:
      thin: {{fwgrp: none, sysgrp: read}}
"#
    )
}

async fn fortigate(version: &str) -> Simulator {
    Simulator::start(Scenario::from_yaml(&fortigate_yaml(version, 60, "")).expect("scenario"))
        .await
        .expect("simulator")
}

fn endpoint(
    kind: DeviceKind,
    url: &str,
    ca: Option<&str>,
    key: &str,
    source: IpAddr,
) -> EndpointConfig {
    EndpointConfig {
        kind,
        name: "test/device".into(),
        url: url.to_string(),
        scope: "root".into(),
        credentials: Credentials::Token(key.into()),
        transport: TransportConfig {
            ca_bundle_pem: ca.map(str::to_string),
            insecure_skip_verify: false,
            source_address: Some(source),
            timeout: Duration::from_secs(5),
        },
        max_concurrent: 1,
        lockout: LockoutPolicy::default(),
        lock_retries: 0,
    }
}

fn fw_target(sim: &Simulator, key: &str, source: IpAddr) -> Target {
    let fg = sim.fortigate("fw");
    Target {
        endpoint: endpoint(DeviceKind::FortiGate, fg.url(), fg.ca_pem(), key, source),
        admin_user: None,
        feeds: Vec::new(),
        users: Vec::new(),
    }
}

fn status_of(report: &Report, id: &str) -> Status {
    report
        .step(id)
        .unwrap_or_else(|| panic!("no step {id} in {report:#?}"))
        .status
}

/// A temporary directory for files the binary reads.
fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("fortisync-doctor-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).expect("write");
    path
}

/// Runs the real binary; returns exit code and stdout.
async fn doctor(args: &[&str]) -> (i32, String) {
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_fortisync"))
        .arg("doctor")
        .args(args)
        .args(["--color", "never"])
        // Refused keys are remembered in the test's own file, never the user's.
        .env(
            "FORTISYNC_STATE_FILE",
            std::env::temp_dir()
                .join(format!("fortisync-doctor-state-{}", std::process::id()))
                .join("refused-keys.json"),
        )
        .output()
        .await
        .expect("run fortisync doctor");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

fn indent(text: &str) -> String {
    text.replace('\n', "\n  ")
}

// ---- FortiGate, through the binary -------------------------------------------------------

#[tokio::test]
async fn all_green_fortigate_from_manifests_exits_0_and_never_prints_the_token() {
    let sim = fortigate("7.4.3").await;
    let fg = sim.fortigate("fw");
    let dir = temp_dir("green");
    let ca = fg.ca_pem().expect("tls").replace('\n', "\n    ");
    write(
        &dir,
        "fw.yaml",
        &format!(
            r#"apiVersion: v1
kind: Secret
metadata: {{name: fw-api}}
stringData:
  token: {KEY}
  ca.crt: |
    {ca}
---
apiVersion: fortisync.dev/v1alpha1
kind: FortiGate
metadata: {{name: edge}}
spec:
  url: {url}
  vdom: root
  credentialsSecretRef: {{name: fw-api, tokenKey: token}}
  tls: {{caBundleSecretRef: {{name: fw-api, key: ca.crt}}}}
"#,
            url = fg.url()
        ),
    );
    let (code, out) = doctor(&[
        "-f",
        dir.to_str().expect("path"),
        "--source-address",
        "127.0.0.11",
    ])
    .await;
    assert_eq!(code, 0, "{out}");
    for line in [
        "fortisync doctor: FortiGate default/edge at",
        "✓ DNS",
        "✓ TCP connect",
        "from 127.0.0.11:",
        "✓ TLS",
        "verifies against the CA bundle",
        "✓ authenticated read",
        "✓ VDOM exists",
        "✓ read firewall/address",
        "✓ read firewall/addrgrp",
        "✓ read system/external-resource",
        "✓ read system/global",
        "✓ device facts",
        "FortiOS v7.4.3, serial FGT60FTK20000001",
        "lockout after 3 failed logins for 60 s",
        "✓ API key in the URL",
        "✓ dynamic push",
        "✓ address group size",
        "fortisync can manage this device.",
    ] {
        assert!(
            out.contains(line),
            "missing {line:?} in\n  {}",
            indent(&out)
        );
    }
    assert!(!out.contains('✗') && !out.contains(KEY), "{out}");
    // Reads only: GET / for the handshake, then GETs.
    let reqs = fg.requests();
    assert!(reqs.iter().all(|r| r.method == "GET"), "{reqs:?}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn refused_port_is_f1_and_no_credential_is_sent() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port();
    let dir = temp_dir("refused");
    let token = write(&dir, "token", KEY);
    let url = format!("https://127.0.0.1:{port}");
    let (code, out) = doctor(&["--url", &url, "--token-file", token.to_str().expect("path")]).await;
    let e = DeviceError::ConnectFailed {
        ctx: Default::default(),
        detail: String::new(),
    };
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("✗ TCP connect"), "{out}");
    assert!(out.contains("refused"), "{out}");
    assert!(out.contains(&format!("cause:  {}", e.cause())), "{out}");
    assert!(out.contains(&format!("remedy: {}", e.remedy())), "{out}");
    assert!(out.contains("row F1, reason ConnectFailed"), "{out}");
    assert!(
        out.contains("- authenticated read") && out.contains("no credential was sent"),
        "{out}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn wrong_key_is_f3_tried_exactly_once_and_every_later_step_is_skipped() {
    let sim = fortigate("7.4.3").await;
    let fg = sim.fortigate("fw");
    let dir = temp_dir("wrongkey");
    let token = write(&dir, "token", "wrong-key-00000000000000000000\n");
    let ca = write(&dir, "ca.pem", fg.ca_pem().expect("tls"));
    let (code, out) = doctor(&[
        "--url",
        fg.url(),
        "--token-file",
        token.to_str().expect("path"),
        "--ca-file",
        ca.to_str().expect("path"),
        "--source-address",
        "127.0.0.12",
    ])
    .await;
    let e = DeviceError::Unauthorized {
        ctx: Default::default(),
    };
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("✗ authenticated read"), "{out}");
    assert!(out.contains("Sent once from 127.0.0.12"), "{out}");
    assert!(out.contains(&format!("cause:  {}", e.cause())), "{out}");
    assert!(out.contains(&format!("remedy: {}", e.remedy())), "{out}");
    assert!(out.contains("row F3, reason Unauthorized"), "{out}");
    assert_eq!(
        out.matches(STOPPED).count(),
        10,
        "every authenticated step skipped:\n{out}"
    );
    assert!(
        !out.contains("wrong-key-0000"),
        "the token is never printed"
    );
    assert_eq!(
        fg.auth_failures_from(ip(12)),
        1,
        "exactly one failed attempt"
    );
    assert_eq!(fg.count_status_from(ip(12), 401), 1);
    assert_eq!(fg.lockout_remaining(ip(12)), None);
    let _ = std::fs::remove_dir_all(&dir);
}

// ---- FortiGate, through the library ------------------------------------------------------

#[tokio::test]
async fn no_ca_bundle_is_f2_unknown_issuer_before_any_request() {
    let sim = fortigate("7.4.3").await;
    let mut target = fw_target(&sim, KEY, ip(13));
    target.endpoint.transport.ca_bundle_pem = None;
    let report = diagnose(&target).await;
    let tls = report.step("tls").expect("tls");
    assert_eq!(tls.status, Status::Fail, "{report:#?}");
    assert_eq!(tls.troubleshooting_row.as_deref(), Some("F2"));
    assert!(tls.detail.contains("unknown issuer"), "{}", tls.detail);
    let remedy = tls.remedy.as_deref().expect("remedy");
    assert!(
        remedy.contains("--ca-file") && remedy.contains("spec.tls.caBundleSecretRef"),
        "{remedy}"
    );
    assert_eq!(status_of(&report, "auth"), Status::Skip);
    assert!(!report.passed());
    assert_eq!(
        sim.fortigate("fw").count_from(ip(13)),
        0,
        "no request got past the handshake"
    );
}

#[tokio::test]
async fn another_devices_ca_is_f2_and_insecure_mode_is_a_warning_that_explains() {
    let sim = Simulator::start(
        Scenario::from_yaml(&format!(
            "{}  - name: other\n    bind: 127.0.0.2\n",
            fortigate_yaml("7.4.3", 60, "")
        ))
        .expect("scenario"),
    )
    .await
    .expect("simulator");
    let mut target = fw_target(&sim, KEY, ip(14));
    target.endpoint.transport.ca_bundle_pem = sim.fortigate("other").ca_pem().map(str::to_string);
    let report = diagnose(&target).await;
    assert_eq!(status_of(&report, "tls"), Status::Fail);
    let detail = &report.step("tls").expect("tls").detail;
    assert!(
        detail.contains("does not verify with the CA bundle"),
        "{detail}"
    );

    target.endpoint.transport.insecure_skip_verify = true;
    let report = diagnose(&target).await;
    let tls = report.step("tls").expect("tls");
    assert_eq!(tls.status, Status::Warn, "{report:#?}");
    assert!(
        tls.detail.contains("NOT verified") && tls.detail.contains("different CA"),
        "{}",
        tls.detail
    );
    assert_eq!(tls.troubleshooting_row.as_deref(), Some("F2"));
    assert_eq!(status_of(&report, "auth"), Status::Ok);
    assert!(report.passed(), "a warning alone passes");
}

#[tokio::test]
async fn source_ip_outside_the_trusted_hosts_is_f3_naming_the_source_and_tried_once() {
    let sim = Simulator::start(
        Scenario::from_yaml(&fortigate_yaml(
            "7.4.3",
            60,
            "      - {name: narrow, key: narrow-key-000000000000000001, trusthosts: [\"127.0.0.20/32\"]}",
        ))
        .expect("scenario"),
    )
    .await
    .expect("simulator");
    let report = diagnose(&fw_target(&sim, "narrow-key-000000000000000001", ip(21))).await;
    let auth = report.step("auth").expect("auth");
    assert_eq!(auth.status, Status::Fail);
    assert_eq!(auth.troubleshooting_row.as_deref(), Some("F3"));
    assert!(
        auth.cause
            .as_deref()
            .is_some_and(|c| c.contains("trusted hosts"))
    );
    assert!(
        auth.detail.contains("Sent once from 127.0.0.21"),
        "{}",
        auth.detail
    );
    assert_eq!(sim.fortigate("fw").auth_failures_from(ip(21)), 1);
    // From the trusted address the same key works.
    let report = diagnose(&fw_target(&sim, "narrow-key-000000000000000001", ip(20))).await;
    assert_eq!(status_of(&report, "auth"), Status::Ok, "{report:#?}");
}

#[tokio::test]
async fn thin_profile_is_f4_naming_the_area_to_grant() {
    let sim = Simulator::start(
        Scenario::from_yaml(&fortigate_yaml(
            "7.4.3",
            60,
            "      - {name: thin, key: thin-key-0000000000000000001, accprofile: thin, trusthosts: [\"127.0.0.0/24\"]}",
        ))
        .expect("scenario"),
    )
    .await
    .expect("simulator");
    let report = diagnose(&fw_target(&sim, "thin-key-0000000000000000001", ip(22))).await;
    for id in ["read.firewall.address", "read.firewall.addrgrp"] {
        let step = report.step(id).expect("probe");
        assert_eq!(step.status, Status::Fail, "{step:#?}");
        assert_eq!(step.troubleshooting_row.as_deref(), Some("F4"));
        assert_eq!(step.reason.as_deref(), Some("Forbidden"));
        let remedy = step.remedy.as_deref().expect("remedy");
        assert!(
            remedy.starts_with("grant Firewall > Address Read/Write (fwgrp)"),
            "{remedy}"
        );
        assert!(remedy.contains("System > Admin Profiles"), "{remedy}");
    }
    assert_eq!(
        status_of(&report, "read.system.external-resource"),
        Status::Ok
    );
    assert_eq!(status_of(&report, "read.system.global"), Status::Ok);
    assert_eq!(status_of(&report, "vdom"), Status::Skip);
    assert!(!report.passed());
}

#[tokio::test]
async fn a_source_locked_out_beforehand_is_f6_says_how_long_and_sends_nothing_more() {
    let sim =
        Simulator::start(Scenario::from_yaml(&fortigate_yaml("7.4.3", 120, "")).expect("scenario"))
            .await
            .expect("simulator");
    let fg = sim.fortigate("fw");
    let other = client(fg.ca_pem(), ip(23));
    for _ in 0..3 {
        let url = format!("{}/api/v2/monitor/system/status", fg.url());
        send(&other, Method::GET, &url, Some("a-wrong-key"), None).await;
    }
    let remaining = fg.lockout_remaining(ip(23)).expect("locked out");
    fg.clear_requests();
    let mut target = fw_target(&sim, KEY, ip(23));
    target.endpoint.lockout.duration = Duration::from_secs(120);
    let report = diagnose(&target).await;
    let auth = report.step("auth").expect("auth");
    assert_eq!(auth.status, Status::Fail, "{report:#?}");
    assert_eq!(auth.troubleshooting_row.as_deref(), Some("F6"));
    assert_eq!(auth.reason.as_deref(), Some("LockedOut"));
    assert!(
        auth.detail.contains("admin-lockout-duration is 120 s"),
        "{}",
        auth.detail
    );
    assert!(
        auth.detail.contains("(240 s, 480 s, ...)"),
        "{}",
        auth.detail
    );
    assert_eq!(
        auth.remedy.as_deref(),
        Some(
            DeviceError::LockedOut {
                ctx: Default::default(),
                retry_after: Duration::ZERO
            }
            .remedy()
        )
    );
    assert_eq!(report.step("vdom").expect("vdom").detail, STOPPED);
    // The handshake's GET / and the one authenticated read, both 429, and nothing else.
    let paths: Vec<(String, u16)> = fg
        .requests()
        .into_iter()
        .map(|r| (r.path, r.status))
        .collect();
    assert_eq!(
        paths,
        vec![
            ("/".to_string(), 429),
            ("/api/v2/monitor/system/status".to_string(), 429)
        ]
    );
    assert!(fg.lockout_remaining(ip(23)).expect("still locked") <= remaining);
}

#[tokio::test]
async fn wrong_vdom_is_f7_and_lists_the_vdoms_the_user_sees() {
    let sim = fortigate("7.4.3").await;
    let mut target = fw_target(&sim, KEY, ip(24));
    target.endpoint.scope = "dmz".into();
    let report = diagnose(&target).await;
    let vdom = report.step("vdom").expect("vdom");
    assert_eq!(vdom.status, Status::Fail, "{report:#?}");
    assert_eq!(vdom.troubleshooting_row.as_deref(), Some("F7"));
    assert!(
        vdom.detail
            .contains("no VDOM \"dmz\" (VDOMs this API user sees: root)"),
        "{}",
        vdom.detail
    );
    assert!(
        vdom.remedy
            .as_deref()
            .is_some_and(|r| r.starts_with("set spec.vdom (doctor: --vdom)"))
    );
    assert_eq!(status_of(&report, "read.firewall.addrgrp"), Status::Skip);
    assert_eq!(status_of(&report, "read.system.global"), Status::Ok);
    assert!(!report.passed());
}

#[tokio::test]
async fn an_html_answer_where_json_belongs_is_f12_with_the_first_bytes() {
    let sim = fortigate("7.4.3").await;
    sim.fortigate("fw").add_fault(FaultRule {
        path: "/api/v2/monitor/system/status".into(),
        status: Some(200),
        ..FaultRule::default()
    });
    let report = diagnose(&fw_target(&sim, KEY, ip(25))).await;
    let auth = report.step("auth").expect("auth");
    assert_eq!(auth.status, Status::Fail, "{report:#?}");
    assert_eq!(auth.troubleshooting_row.as_deref(), Some("F12"));
    assert_eq!(auth.reason.as_deref(), Some("UnexpectedResponse"));
    assert!(auth.detail.contains("<!DOCTYPE HTML"), "{}", auth.detail);
    assert!(
        auth.remedy
            .as_deref()
            .is_some_and(|r| r.contains("HTTPS admin port of the device itself"))
    );
}

#[tokio::test]
async fn fortios_6_4_warns_about_dynamic_push_and_the_600_member_cap_but_passes() {
    let sim = fortigate("6.4.14").await;
    let report = diagnose(&fw_target(&sim, KEY, ip(26))).await;
    assert!(report.passed(), "{report:#?}");
    let push = report.step("version.dynamic-push").expect("push");
    assert_eq!(
        (push.status, push.troubleshooting_row.as_deref()),
        (Status::Warn, Some("F19"))
    );
    assert!(push.detail.contains("below 7.2.1"));
    let cap = report.step("version.member-cap").expect("cap");
    assert_eq!(
        (cap.status, cap.troubleshooting_row.as_deref()),
        (Status::Warn, Some("F10"))
    );
    assert!(cap.detail.contains("at most 600 members"));
    assert!(
        report
            .step("version.token-in-url")
            .expect("token")
            .detail
            .contains("still accepts")
    );
}

#[tokio::test]
async fn fortios_7_0_warns_about_dynamic_push_only() {
    let sim = fortigate("7.0.12").await;
    let report = diagnose(&fw_target(&sim, KEY, ip(27))).await;
    assert!(report.passed(), "{report:#?}");
    assert_eq!(status_of(&report, "version.dynamic-push"), Status::Warn);
    assert_eq!(status_of(&report, "version.member-cap"), Status::Ok);
    assert_eq!(report.count(Status::Warn), 1);
}

// ---- FortiManager ------------------------------------------------------------------------

const FMG_SCENARIO: &str = r#"
fortimanagers:
  - name: fmg
    version: "7.4.3"
    adoms:
      - {name: root, os_version: "7.4", workspace_mode: normal}
    admins:
      - {userid: fortisync, user_type: api, rpc_permit: read-write, profile: Super_User, api_key: KEY, trusthosts: [[127.0.0.0, 255.255.255.0]]}
      - {userid: loose, user_type: api, rpc_permit: read-write, profile: Super_User, api_key: loose-key-000000000000000001, trusthosts: [[127.0.0.0, 255.255.255.0], [0.0.0.0, 0.0.0.0]]}
      - {userid: operator, password: operator-pw, rpc_permit: read, profile: Standard_User, trusthosts: [[127.0.0.0, 255.255.255.0]]}
"#;

async fn fortimanager() -> Simulator {
    Simulator::start(Scenario::from_yaml(&FMG_SCENARIO.replace("KEY", FMG_KEY)).expect("scenario"))
        .await
        .expect("simulator")
}

fn fmg_target(sim: &Simulator, key: &str, source: IpAddr, user: Option<&str>) -> Target {
    let fmg = sim.fortimanager("fmg");
    Target {
        endpoint: endpoint(
            DeviceKind::FortiManager,
            fmg.url(),
            fmg.ca_pem(),
            key,
            source,
        ),
        admin_user: user.map(str::to_string),
        feeds: Vec::new(),
        users: Vec::new(),
    }
}

#[tokio::test]
async fn all_green_fortimanager_as_json_exits_0() {
    let sim = fortimanager().await;
    let fmg = sim.fortimanager("fmg");
    let dir = temp_dir("fmg-green");
    let token = write(&dir, "token", FMG_KEY);
    let ca = write(&dir, "ca.pem", fmg.ca_pem().expect("tls"));
    let (code, out) = doctor(&[
        "--kind",
        "fortimanager",
        "--url",
        fmg.url(),
        "--token-file",
        token.to_str().expect("path"),
        "--ca-file",
        ca.to_str().expect("path"),
        "--source-address",
        "127.0.0.31",
        "--admin-user",
        "fortisync",
        "--output",
        "json",
    ])
    .await;
    assert_eq!(code, 0, "{out}");
    let doc: serde_json::Value = serde_json::from_str(&out).expect("one JSON document");
    assert_eq!(doc["passed"], true);
    assert_eq!(doc["kind"], "FortiManager");
    assert_eq!(doc["scope"], "root");
    let ids: Vec<&str> = doc["steps"]
        .as_array()
        .expect("steps")
        .iter()
        .map(|s| s["id"].as_str().expect("id"))
        .collect();
    assert_eq!(
        ids,
        [
            "dns",
            "tcp",
            "tls",
            "auth",
            "adom",
            "workspace",
            "admin-user",
            "trusted-hosts",
            "rpc-permit",
            "adom-access",
            "facts"
        ]
    );
    assert!(
        doc["steps"]
            .as_array()
            .expect("steps")
            .iter()
            .all(|s| s["status"] == "ok"),
        "{out}"
    );
    assert!(
        doc["steps"][5]["detail"]
            .as_str()
            .expect("detail")
            .contains("fortisync locks the ADOM")
    );
    assert!(!out.contains(FMG_KEY));
    // Only `get` (the key needs no login) reached the FortiManager.
    assert!(
        fmg.control().requests().iter().all(|r| r.method == "get"),
        "{:?}",
        fmg.control().requests()
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn fortimanager_wrong_key_is_f13_and_sent_once() {
    let sim = fortimanager().await;
    let report = diagnose(&fmg_target(
        &sim,
        "not-the-key-0000000000000000",
        ip(32),
        Some("fortisync"),
    ))
    .await;
    let auth = report.step("auth").expect("auth");
    assert_eq!(auth.status, Status::Fail, "{report:#?}");
    assert_eq!(auth.troubleshooting_row.as_deref(), Some("F13"));
    assert!(auth.detail.contains("-11 or -22"), "{}", auth.detail);
    assert!(
        auth.remedy
            .as_deref()
            .is_some_and(|r| r.contains("execute api-user generate-key"))
    );
    assert!(
        report
            .steps
            .iter()
            .skip_while(|s| s.id != "adom")
            .all(|s| s.status == Status::Skip)
    );
    let control = sim.fortimanager("fmg").control();
    assert_eq!(control.requests().len(), 1, "{:?}", control.requests());
    assert_eq!(control.count("get", "/cli/global/system/status", -11), 1);
}

#[tokio::test]
async fn fortimanager_wrong_adom_is_f7() {
    let sim = fortimanager().await;
    let mut target = fmg_target(&sim, FMG_KEY, ip(33), Some("fortisync"));
    target.endpoint.scope = "nope".into();
    let report = diagnose(&target).await;
    let adom = report.step("adom").expect("adom");
    assert_eq!(adom.status, Status::Fail, "{report:#?}");
    assert_eq!(adom.troubleshooting_row.as_deref(), Some("F7"));
    assert!(adom.detail.contains("no ADOM \"nope\""));
    assert!(
        adom.remedy
            .as_deref()
            .is_some_and(|r| r.starts_with("set spec.adom (doctor: --adom)"))
    );
    assert_eq!(status_of(&report, "adom-access"), Status::Skip);
}

#[tokio::test]
async fn fortimanager_unknown_admin_user_is_f15() {
    let sim = fortimanager().await;
    let report = diagnose(&fmg_target(&sim, FMG_KEY, ip(34), Some("fortisyncc"))).await;
    let user = report.step("admin-user").expect("admin-user");
    assert_eq!(user.status, Status::Fail, "{report:#?}");
    assert_eq!(user.troubleshooting_row.as_deref(), Some("F15"));
    assert_eq!(user.reason.as_deref(), Some("AdminUserNotFound"));
    assert!(user.detail.contains("\"fortisyncc\""), "{}", user.detail);
    assert!(
        user.remedy
            .as_deref()
            .is_some_and(|r| r.contains("exactly as shown"))
    );
    assert_eq!(status_of(&report, "trusted-hosts"), Status::Skip);
}

#[tokio::test]
async fn fortimanager_allow_all_trusted_host_slot_is_an_f20_warning() {
    let sim = fortimanager().await;
    let report = diagnose(&fmg_target(
        &sim,
        "loose-key-000000000000000001",
        ip(35),
        Some("loose"),
    ))
    .await;
    let hosts = report.step("trusted-hosts").expect("trusted-hosts");
    assert_eq!(hosts.status, Status::Warn, "{report:#?}");
    assert_eq!(hosts.troubleshooting_row.as_deref(), Some("F20"));
    assert!(hosts.detail.contains("slot(s) [2]"), "{}", hosts.detail);
    assert!(
        hosts
            .remedy
            .as_deref()
            .is_some_and(|r| r.contains("127.0.0.1 or a controlled IP"))
    );
    assert!(report.passed(), "a warning alone passes");
}

#[tokio::test]
async fn fortimanager_read_only_rpc_permit_is_f14_for_the_login_user() {
    let sim = fortimanager().await;
    let mut target = fmg_target(&sim, "", ip(36), None);
    target.endpoint.credentials = Credentials::Password {
        user: "operator".into(),
        password: "operator-pw".into(),
    };
    let report = diagnose(&target).await;
    assert_eq!(status_of(&report, "auth"), Status::Ok, "{report:#?}");
    let permit = report.step("rpc-permit").expect("rpc-permit");
    assert_eq!(permit.status, Status::Fail);
    assert_eq!(permit.troubleshooting_row.as_deref(), Some("F14"));
    assert!(
        permit.detail.contains("\"operator\" has rpc-permit read"),
        "{}",
        permit.detail
    );
    assert!(
        permit
            .remedy
            .as_deref()
            .is_some_and(|r| r.contains("set rpc-permit read-write"))
    );
    assert!(!report.passed());
    assert_eq!(
        sim.fortimanager("fmg").control().live_sessions(),
        0,
        "doctor logs out"
    );
}

#[tokio::test]
async fn a_feed_the_fortigate_cannot_pull_is_explained_from_what_the_device_reports() {
    use fortisync::api::externalconnector::ConnectorMode;
    use fortisync::cli::doctor::feeds::FeedCheck;
    use fortisync::model::Owner;

    let sim = fortigate("7.4.3").await;
    let fg = sim.fortigate("fw");
    let owner = Owner {
        namespace: "team-a".into(),
        name: "blocklist".into(),
    };
    // Port 9 on loopback: nothing listens, so the FortiGate's pull fails to connect.
    let created = send(
        &client(fg.ca_pem(), ip(1)),
        Method::POST,
        &format!("{}/api/v2/cmdb/system/external-resource", fg.url()),
        Some(KEY),
        Some(serde_json::json!({
            "name": "fs-blocklist", "type": "address", "update-method": "feed",
            "resource": "http://127.0.0.1:9/edl/team-a/blocklist", "refresh-rate": 5,
            "comments": owner.marker(),
        })),
    )
    .await;
    assert_eq!(created.status(), 200);
    let polls = fg
        .wait_for_polls("root", "fs-blocklist", 1, Duration::from_secs(10))
        .await;
    assert_eq!(polls.len(), 1, "the simulated FortiGate pulled once");
    fg.clear_requests();

    let mut target = fw_target(&sim, KEY, ip(1));
    target.feeds = vec![FeedCheck {
        resource: "team-a/blocklist".into(),
        resource_name: "fs-blocklist".into(),
        mode: ConnectorMode::Feed,
        owner,
    }];
    let report = diagnose(&target).await;
    let step = report
        .steps
        .iter()
        .find(|s| s.id == "connector.fs-blocklist")
        .expect("the connector's step");
    assert_eq!(step.status, Status::Fail, "{step:?}");
    assert_eq!(step.reason.as_deref(), Some("FeedPullFailed"));
    assert!(
        step.detail.starts_with(
            "the FortiGate's last pull of http://127.0.0.1:9/edl/team-a/blocklist failed ("
        ),
        "{}",
        step.detail
    );
    assert!(
        step.cause
            .as_deref()
            .is_some_and(|c| c.starts_with("the FortiGate could not fetch the URL")),
        "{step:?}"
    );
    assert!(!report.passed());
    let writes: Vec<_> = fg
        .requests()
        .into_iter()
        .filter(|r| r.method != "GET")
        .collect();
    assert!(writes.is_empty(), "doctor only reads: {writes:?}");
}
