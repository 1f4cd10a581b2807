//! `fortisync plan` and `fortisync apply` through the binary against the simulator: exit codes
//! (0 no change, 2 changes, 1 failure), the printed plan (snapshot), JSON output, apply then
//! plan shows nothing left, credentials from a secrets directory or the environment, a wrong
//! key tried once, and a bad manifest refused with the field named.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use fortisync::sim::fortios::Table;
use fortisync::sim::{Scenario, Simulator};

const FORTIGATE: &str = include_str!("../examples/fortigate.yaml");
const GROUPS: &str = include_str!("../examples/addressgroups.yaml");
const SCENARIO: &str = include_str!("../examples/sim-scenario.yaml");

struct Estate {
    sim: Simulator,
    dir: PathBuf,
    secrets: PathBuf,
}

async fn estate(name: &str, fortigate_yaml: &str) -> Estate {
    let mut scenario = Scenario::from_yaml(SCENARIO).expect("scenario");
    for fg in &mut scenario.fortigates {
        fg.port = 0;
    }
    for fmg in &mut scenario.fortimanagers {
        fmg.port = 0;
    }
    scenario.admin.port = 0;
    let sim = Simulator::start(scenario).await.expect("simulator");
    let base = std::env::temp_dir().join(format!("fortisync-cli-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&base);
    let dir = base.join("manifests");
    let secrets = base.join("secrets");
    std::fs::create_dir_all(&dir).expect("dir");
    std::fs::create_dir_all(secrets.join("fw-edge-1-tls")).expect("secrets dir");
    let fg = sim.fortigate("fw-edge-1");
    std::fs::write(
        dir.join("fortigate.yaml"),
        fortigate_yaml.replace("https://127.0.0.1:18443", fg.url()),
    )
    .expect("write");
    std::fs::write(dir.join("addressgroups.yaml"), GROUPS).expect("write");
    std::fs::write(
        secrets.join("fw-edge-1-tls").join("ca.crt"),
        fg.ca_pem().expect("ca"),
    )
    .expect("ca");
    Estate { sim, dir, secrets }
}

fn fortisync(args: &[&str], dir: &Path, secrets: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_fortisync"))
        .args(args)
        .arg("-f")
        .arg(dir)
        .arg("--secrets-dir")
        .arg(secrets)
        .args(["--color", "never"])
        .env_remove("FORTISYNC_SECRETS_DIR")
        .env("FORTISYNC_STATE_FILE", state_file(secrets))
        .output()
        .expect("run fortisync")
}

/// Each estate remembers refused keys in its own file, never the user's.
fn state_file(secrets: &Path) -> PathBuf {
    secrets.with_file_name("state").join("refused-keys.json")
}

fn text(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

async fn run(e: &Estate, args: &[&str]) -> Output {
    let (dir, secrets) = (e.dir.clone(), e.secrets.clone());
    let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    tokio::task::spawn_blocking(move || {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        fortisync(&args, &dir, &secrets)
    })
    .await
    .expect("join")
}

const PLAN_SNAPSHOT: &str = "\
AddressGroup default/allowed-admins -> FortiGate default/fw-edge-1 group \"allowed-admins\"
  at <URL> (vdom root)
  + address fs_192.0.2.10 (192.0.2.10)
  + address fs_198.51.100.0_28 (198.51.100.0/28)
  + address fs_203.0.113.7 (203.0.113.7)
  + member fs_192.0.2.10 -> group allowed-admins
  + member fs_198.51.100.0_28 -> group allowed-admins
  + member fs_203.0.113.7 -> group allowed-admins
  = member admin-pc kept (added outside fortisync)
AddressGroup default/blocked-scanners -> FortiGate default/fw-edge-1 group \"blocked-scanners\"
  at <URL> (vdom root)
  + address fs_192.0.2.128_25 (192.0.2.128/25)
  + address fs_198.51.100.20-198.51.100.29 (198.51.100.20-198.51.100.29)
  + group blocked-scanners [fs_192.0.2.128_25, fs_198.51.100.20-198.51.100.29]
    IPv6 (firewall/address6, firewall/addrgrp6):
  + address fs_2001:db8:bad::_48 (2001:db8:bad::/48)
  + group blocked-scanners [fs_2001:db8:bad::_48]
11 change(s) to apply across 2 resource(s)
";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plan_prints_the_changes_and_exits_2_then_apply_converges_and_plan_exits_0() {
    let e = estate("converge", FORTIGATE).await;
    let fg = e.sim.fortigate("fw-edge-1");

    let planned = run(&e, &["plan"]).await;
    assert_eq!(
        planned.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&planned.stderr)
    );
    assert_eq!(text(&planned).replace(fg.url(), "<URL>"), PLAN_SNAPSHOT);
    assert!(
        fg.group_members("root", Table::Addrgrp, "allowed-admins")
            .is_some_and(|m| m == vec!["admin-pc".to_string()]),
        "plan writes nothing"
    );

    let json = run(&e, &["plan", "--output", "json"]).await;
    assert_eq!(json.status.code(), Some(2));
    let doc: serde_json::Value = serde_json::from_slice(&json.stdout).expect("JSON");
    assert_eq!(doc["changes"], 11);
    assert_eq!(doc["failures"], 0);
    assert_eq!(doc["resources"][0]["resource"], "default/allowed-admins");
    assert_eq!(doc["resources"][0]["foreignMembers"][0], "admin-pc");
    assert_eq!(doc["resources"][0]["ops"][0]["op"], "createAddress");

    let applied = run(&e, &["apply"]).await;
    assert_eq!(applied.status.code(), Some(0), "{}", text(&applied));
    assert!(text(&applied).contains("11 change(s) applied across 2 resource(s)"));
    let stderr = String::from_utf8_lossy(&applied.stderr);
    assert!(
        stderr.contains("[1/2] applying AddressGroup default/allowed-admins"),
        "{stderr}"
    );
    let mut members = fg
        .group_members("root", Table::Addrgrp, "allowed-admins")
        .expect("group");
    members.sort();
    assert_eq!(
        members,
        [
            "admin-pc",
            "fs_192.0.2.10",
            "fs_198.51.100.0_28",
            "fs_203.0.113.7"
        ]
    );

    let again = run(&e, &["plan"]).await;
    assert_eq!(again.status.code(), Some(0), "{}", text(&again));
    assert!(text(&again).ends_with("0 change(s) to apply across 2 resource(s)\n"));
    assert_eq!(text(&again).matches("= no changes").count(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credentials_can_come_from_the_environment() {
    let without_secret = FORTIGATE
        .split("\n---\n")
        .nth(1)
        .expect("the FortiGate document")
        .to_string();
    let e = estate("env", &without_secret).await;
    let (dir, secrets) = (e.dir.clone(), e.secrets.clone());
    let missing = tokio::task::spawn_blocking(move || fortisync(&["plan"], &dir, &secrets))
        .await
        .expect("join");
    assert_eq!(missing.status.code(), Some(1));
    assert!(
        text(&missing).contains("SecretNotFound"),
        "{}",
        text(&missing)
    );
    assert!(text(&missing).contains("remedy: create the Secret \"fw-edge-1-token\""));

    let (dir, secrets) = (e.dir.clone(), e.secrets.clone());
    let with_env = tokio::task::spawn_blocking(move || {
        Command::new(env!("CARGO_BIN_EXE_fortisync"))
            .args(["plan", "--color", "never", "-f"])
            .arg(&dir)
            .arg("--secrets-dir")
            .arg(&secrets)
            .env("FORTISYNC_STATE_FILE", state_file(&secrets))
            .env(
                "FORTISYNC_SECRET_FW_EDGE_1_TOKEN_TOKEN",
                "fortisync-demo-token-000000000",
            )
            .output()
            .expect("run")
    })
    .await
    .expect("join");
    assert_eq!(with_env.status.code(), Some(2), "{}", text(&with_env));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_key_fails_with_the_remedy_and_reaches_the_device_once() {
    let wrong = FORTIGATE.replace(
        "token: fortisync-demo-token-000000000",
        "token: not-the-key",
    );
    let e = estate("wrong-key", &wrong).await;
    let out = run(&e, &["apply"]).await;
    assert_eq!(out.status.code(), Some(1));
    let printed = text(&out);
    assert!(printed.contains("! Unauthorized:"), "{printed}");
    assert!(printed.contains("remedy: regenerate the key"), "{printed}");
    assert!(
        printed.contains("2 failed"),
        "both groups report it: {printed}"
    );
    let fg = e.sim.fortigate("fw-edge-1");
    assert_eq!(
        fg.auth_failures_from(IpAddr::from([127, 0, 0, 1])),
        1,
        "the second group did not send the frozen key"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_member_is_refused_naming_the_field_and_nothing_is_written() {
    let e = estate("bad-member", FORTIGATE).await;
    std::fs::write(
        e.dir.join("addressgroups.yaml"),
        GROUPS.replace("address: 192.0.2.10", "address: 192.0.2.300"),
    )
    .expect("write");
    let out = run(&e, &["apply"]).await;
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out).contains(
            "spec.members[0].address: Invalid value: \"192.0.2.300\": must be an IP address"
        ),
        "{}",
        text(&out)
    );
    let fg = e.sim.fortigate("fw-edge-1");
    assert!(
        fg.object("root", Table::Address, "fs_203.0.113.7")
            .is_none(),
        "the bad resource wrote nothing"
    );
    assert_eq!(
        fg.group_members("root", Table::Addrgrp, "allowed-admins"),
        Some(vec!["admin-pc".to_string()])
    );
    assert!(
        fg.object("root", Table::Addrgrp, "blocked-scanners")
            .is_some(),
        "the other, valid resource was still applied"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_manifest_that_is_not_yaml_names_the_file_and_document() {
    let e = estate("bad-yaml", FORTIGATE).await;
    std::fs::write(e.dir.join("zz-broken.yaml"), "apiVersion: v1\nkind: [\n").expect("write");
    let out = run(&e, &["plan"]).await;
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("zz-broken.yaml: document 1:"), "{stderr}");
}

const CONNECTORS: &str = include_str!("../examples/externalconnectors.yaml");

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_external_connector_is_planned_pushed_in_one_call_and_then_in_sync() {
    let e = estate("connector", FORTIGATE).await;
    std::fs::write(e.dir.join("externalconnectors.yaml"), CONNECTORS).expect("write");
    let fg = e.sim.fortigate("fw-edge-1");

    let planned = run(&e, &["plan"]).await;
    assert_eq!(planned.status.code(), Some(2), "{}", text(&planned));
    let out = text(&planned);
    assert!(out.contains("ExternalConnector default/blocklist -> FortiGate default/fw-edge-1 external resource \"fs-blocklist\" (Push)\n  at "), "{out}");
    for line in [
        "  + external resource fs-blocklist\n",
        "  + entry 192.0.2.10\n",
        "  + entry 192.0.2.64/26\n",
        "  + entry 198.51.100.0/24\n",
        "  + entry 203.0.113.7\n",
    ] {
        assert!(out.contains(line), "{line:?} missing from:\n{out}");
    }
    assert!(
        out.ends_with("13 change(s) to apply across 3 resource(s)\n"),
        "{out}"
    );
    assert!(
        fg.feed_entries("root", "fs-blocklist").is_empty(),
        "plan writes nothing"
    );

    let json = run(&e, &["plan", "--output", "json"]).await;
    let doc: serde_json::Value = serde_json::from_slice(&json.stdout).expect("JSON");
    let ec = &doc["resources"][2];
    assert_eq!(ec["kind"], "ExternalConnector");
    assert_eq!(ec["object"], "create");
    assert_eq!(ec["add"].as_array().map(Vec::len), Some(4));
    assert_eq!(ec["desired"], 4);

    fg.clear_requests();
    let applied = run(&e, &["apply"]).await;
    assert_eq!(applied.status.code(), Some(0), "{}", text(&applied));
    let mut held = fg.feed_entries("root", "fs-blocklist");
    held.sort();
    assert_eq!(
        held,
        [
            "192.0.2.10",
            "192.0.2.64/26",
            "198.51.100.0/24",
            "203.0.113.7"
        ]
    );
    let pushes = fg
        .requests()
        .iter()
        .filter(|r| r.path.ends_with("/external-resource/dynamic"))
        .count();
    assert_eq!(pushes, 1, "every entry in one dynamic call");

    let again = run(&e, &["plan"]).await;
    assert_eq!(again.status.code(), Some(0), "{}", text(&again));
    assert!(
        text(&again).contains("  = no changes\n  = device holds 4 of 4 entries; list status"),
        "{}",
        text(&again)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connectors_refused_by_ownership_or_without_a_feed_url_name_their_reason_and_write_nothing()
{
    let e = estate("connector-refused", FORTIGATE).await;
    std::fs::remove_file(e.dir.join("addressgroups.yaml")).expect("rm");
    let connector = |name: &str, resource: &str, mode: &str| {
        format!(
            "apiVersion: fortisync.dev/v1alpha1\nkind: ExternalConnector\nmetadata: {{name: {name}}}\nspec:\n  targetRef: {{kind: FortiGate, name: fw-edge-1}}\n  resourceName: {resource}\n  mode: {mode}\n  entries: [{{address: 192.0.2.1}}]\n"
        )
    };
    std::fs::write(
        e.dir.join("connectors.yaml"),
        [
            // The scenario's `fortisync-edl` was made by hand, without fortisync's marker.
            connector("taken", "fortisync-edl", "Push"),
            connector("feed", "fs-feed", "Feed"),
        ]
        .join("---\n"),
    )
    .expect("write");
    let fg = e.sim.fortigate("fw-edge-1");
    fg.clear_requests();

    let out = run(&e, &["apply"]).await;
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let report = text(&out);
    for expected in [
        "! ResourceNotOwned: an external resource \"fortisync-edl\" exists that fortisync did not create; nothing was written.\n    remedy: rename spec.resourceName, or set spec.takeOver: true to manage it",
        "! FeedUrlUnknown: no URL for the FortiGate to poll: spec.feed.url is unset",
    ] {
        assert!(
            report.contains(expected),
            "{expected:?} missing from:\n{report}"
        );
    }
    assert!(
        report.ends_with("0 change(s) applied across 2 resource(s); 2 failed\n"),
        "{report}"
    );
    let writes: Vec<String> = fg
        .requests()
        .iter()
        .filter(|r| r.method != "GET")
        .map(|r| format!("{} {}", r.method, r.path))
        .collect();
    assert!(writes.is_empty(), "nothing written: {writes:?}");
}

const FORTIMANAGER: &str = include_str!("../examples/fortimanager.yaml");

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_external_connector_through_the_fortimanager_reaches_the_adom_and_its_fortigate() {
    let e = estate("connector-fmg", FORTIGATE).await;
    std::fs::remove_file(e.dir.join("addressgroups.yaml")).expect("rm");
    let fmg = e.sim.fortimanager("fmg");
    std::fs::write(
        e.dir.join("fortimanager.yaml"),
        FORTIMANAGER.replace("https://127.0.0.1:18444", fmg.url()),
    )
    .expect("write");
    std::fs::create_dir_all(e.secrets.join("fmg-tls")).expect("dir");
    std::fs::write(
        e.secrets.join("fmg-tls").join("ca.crt"),
        fmg.ca_pem().expect("ca"),
    )
    .expect("ca");

    let planned = run(&e, &["plan"]).await;
    assert_eq!(planned.status.code(), Some(2), "{}", text(&planned));
    let out = text(&planned);
    assert!(
        out.contains("  + ADOM external resource fs-fmg-blocklist (in the workspace)\n  ~ device fw-edge-1: 2 write(s)\n"),
        "{out}"
    );

    let applied = run(&e, &["apply"]).await;
    assert_eq!(applied.status.code(), Some(0), "{}", text(&applied));
    let mut held = e
        .sim
        .fortigate("fw-edge-1")
        .feed_entries("root", "fs-fmg-blocklist");
    held.sort();
    assert_eq!(held, ["192.0.2.200", "198.51.100.128/25"]);
    assert_eq!(
        fmg.control().lock_holder("root"),
        None,
        "the ADOM lock is released"
    );

    let again = run(&e, &["plan"]).await;
    assert_eq!(again.status.code(), Some(0), "{}", text(&again));
    assert!(
        text(&again).contains("  = device fw-edge-1: Converged, holds 2 entries\n  = no changes\n"),
        "{}",
        text(&again)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_external_connector_is_refused_naming_the_field_before_any_request() {
    let e = estate("bad-connector", FORTIGATE).await;
    let connector = "apiVersion: fortisync.dev/v1alpha1\nkind: ExternalConnector\nmetadata: {name: edl}\nspec:\n  targetRef: {kind: FortiGate, name: fw-edge-1}\n  resourceName: fs-edl\n  mode: Feed\n  feed: {url: \"https:///edl/default/edl\"}\n";
    std::fs::write(e.dir.join("connector.yaml"), connector).expect("write");
    let fg = e.sim.fortigate("fw-edge-1");
    fg.clear_requests();
    let out = run(&e, &["plan"]).await;
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("connector.yaml: document 1: spec.feed.url: Invalid value: \"https:///edl/default/edl\": spec.feed.url must be an http:// or https:// URL with a host"),
        "{stderr}"
    );
    assert_eq!(fg.requests().len(), 0, "refused while loading");
    // The same connector with a host is admitted and planned with the groups.
    std::fs::write(
        e.dir.join("connector.yaml"),
        connector.replace("https:///", "https://edl.example.com/"),
    )
    .expect("write");
    let out = run(&e, &["plan"]).await;
    assert_eq!(out.status.code(), Some(2), "the groups still have changes");
    assert!(
        text(&out).contains("ExternalConnector default/edl -> FortiGate default/fw-edge-1 external resource \"fs-edl\" (Feed)\n  at "),
        "{}",
        text(&out)
    );
    assert!(
        text(&out).contains("  + external resource fs-edl\n"),
        "{}",
        text(&out)
    );
}
