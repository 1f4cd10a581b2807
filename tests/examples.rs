//! Every manifest in `examples/` works as is against `examples/sim-scenario.yaml`: together they
//! hold every kind on both backends (FortiGate and FortiManager), `fortisync plan` finds
//! changes (exit 2), `apply` converges all of them (exit 0) and `plan` then finds nothing
//! (exit 0). Only the simulator's addresses (its ports are picked free here) and its CA
//! certificates differ from what a user applies.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use fortisync::sim::{Scenario, Simulator};

fn examples_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("examples")
}

/// The example manifests: every `*.yaml` directly in `examples/` but the simulator's scenario
/// (the GitOps and Argo CD layouts in the subdirectories are not fortisync manifests).
fn example_files() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(examples_dir())
        .expect("examples/")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
        .filter(|p| !p.ends_with("sim-scenario.yaml"))
        .collect();
    files.sort();
    files
}

/// `(kind, backend)` of every fortisync object in `text`: a connection is its own backend, a
/// resource's is its `targetRef.kind`.
fn kinds_and_backends(text: &str) -> BTreeSet<(String, String)> {
    fortisync::yaml::documents(text)
        .into_iter()
        .map(|d| d.expect("an example parses"))
        .filter(|d| d["apiVersion"] == "fortisync.dev/v1alpha1")
        .map(|d| {
            let kind = d["kind"].as_str().unwrap_or_default().to_string();
            let backend = d["spec"]["targetRef"]["kind"]
                .as_str()
                .unwrap_or(&kind)
                .to_string();
            (kind, backend)
        })
        .collect()
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
        .env(
            "FORTISYNC_STATE_FILE",
            secrets.with_file_name("state").join("refused-keys.json"),
        )
        .output()
        .expect("run fortisync")
}

async fn run(args: &'static [&'static str], dir: &Path, secrets: &Path) -> Output {
    let (dir, secrets) = (dir.to_path_buf(), secrets.to_path_buf());
    tokio::task::spawn_blocking(move || fortisync(args, &dir, &secrets))
        .await
        .expect("join")
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[test]
fn the_examples_hold_every_kind_on_both_backends() {
    let all: BTreeSet<(String, String)> = example_files()
        .iter()
        .flat_map(|f| kinds_and_backends(&std::fs::read_to_string(f).expect("read")))
        .collect();
    let pair = |k: &str, b: &str| (k.to_string(), b.to_string());
    let want: BTreeSet<(String, String)> = [
        pair("AddressGroup", "FortiGate"),
        pair("AddressGroup", "FortiManager"),
        pair("ExternalConnector", "FortiGate"),
        pair("ExternalConnector", "FortiManager"),
        pair("FortiGate", "FortiGate"),
        pair("FortiManager", "FortiManager"),
        pair("TrustedHost", "FortiGate"),
        pair("TrustedHost", "FortiManager"),
    ]
    .into();
    let missing: Vec<_> = want.difference(&all).collect();
    assert!(missing.is_empty(), "no example for {missing:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_example_plans_changes_applies_and_then_plans_none_against_the_sim_scenario() {
    let mut scenario = Scenario::from_yaml(
        &std::fs::read_to_string(examples_dir().join("sim-scenario.yaml")).expect("read"),
    )
    .expect("scenario");
    for fg in &mut scenario.fortigates {
        fg.port = 0;
    }
    for fmg in &mut scenario.fortimanagers {
        fmg.port = 0;
    }
    scenario.admin.port = 0;
    let sim = Simulator::start(scenario).await.expect("simulator");
    let fg = sim.fortigate("fw-edge-1");
    let fmg = sim.fortimanager("fmg");

    let base = std::env::temp_dir().join(format!("fortisync-examples-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&base);
    let (dir, secrets) = (base.join("manifests"), base.join("secrets"));
    std::fs::create_dir_all(&dir).expect("dir");
    for (secret, ca) in [("fw-edge-1-tls", fg.ca_pem()), ("fmg-tls", fmg.ca_pem())] {
        std::fs::create_dir_all(secrets.join(secret)).expect("secrets dir");
        std::fs::write(secrets.join(secret).join("ca.crt"), ca.expect("ca")).expect("ca");
    }
    for file in example_files() {
        let text = std::fs::read_to_string(&file)
            .expect("read")
            .replace("https://127.0.0.1:18443", fg.url())
            .replace("https://127.0.0.1:18444", fmg.url());
        std::fs::write(dir.join(file.file_name().expect("name")), text).expect("write");
    }

    let planned = run(&["plan"], &dir, &secrets).await;
    assert_eq!(planned.status.code(), Some(2), "{}", text(&planned));
    let applied = run(&["apply"], &dir, &secrets).await;
    assert_eq!(applied.status.code(), Some(0), "{}", text(&applied));
    let again = run(&["plan"], &dir, &secrets).await;
    assert_eq!(again.status.code(), Some(0), "{}", text(&again));

    // Doctor shows the granted slots as fortisync's and the controlled slot 1 as foreign.
    let doctor = run(&["doctor", "--name", "fmg"], &dir, &secrets).await;
    assert_eq!(doctor.status.code(), Some(0), "{}", text(&doctor));
    assert!(
        text(&doctor).contains("1: foreign 127.0.0.1/32 / ::1/128;")
            && text(&doctor).contains("10: ours 192.0.2.10/32 / unused [default/alice-session]"),
        "{}",
        text(&doctor)
    );

    // What the FortiManager example asked for is on both FortiGates behind the ADOM, and the
    // FortiGate examples on theirs.
    for device in ["fw-edge-1", "fw-edge-2"] {
        let mut members = sim
            .fortigate(device)
            .group_members(
                "root",
                fortisync::sim::fortios::Table::Addrgrp,
                "fs-jump-hosts",
            )
            .unwrap_or_default();
        members.sort();
        assert_eq!(
            members,
            ["fs_192.0.2.50", "fs_198.51.100.64_28"],
            "{device}"
        );
    }
    let mut blocklist = fg.feed_entries("root", "fs-blocklist");
    blocklist.sort();
    assert_eq!(
        blocklist,
        [
            "192.0.2.10",
            "192.0.2.64/26",
            "198.51.100.0/24",
            "203.0.113.7"
        ]
    );
    assert!(
        fg.group_members(
            "root",
            fortisync::sim::fortios::Table::Addrgrp,
            "allowed-admins"
        )
        .expect("allowed-admins")
        .contains(&"fs_192.0.2.10".to_string())
    );
}
