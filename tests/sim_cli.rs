//! `fortisync sim --scenario` serves the scenario's devices until stopped.

mod support;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::Value;
use support::sim_client::{client, ip, json, send};

#[tokio::test]
async fn sim_command_serves_the_scenario_and_writes_its_urls() {
    let dir = std::env::temp_dir().join(format!("fortisync-sim-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let scenario = dir.join("scenario.yaml");
    std::fs::write(
        &scenario,
        "fortigates:\n  - name: fw\n    version: \"7.2.8\"\n    api_users:\n      - {name: ci, key: ci-token, trusthosts: [\"127.0.0.0/8\"]}\n",
    )
    .expect("scenario");
    let urls = dir.join("urls.json");
    let mut child = Command::new(env!("CARGO_BIN_EXE_fortisync"))
        .args(["sim", "--scenario"])
        .arg(&scenario)
        .arg("--write-urls")
        .arg(&urls)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start fortisync sim");
    let started = Instant::now();
    while !urls.exists() {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "fortisync sim did not write its URLs"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // The file is renamed into place complete, so existing means readable.
    let doc: Value =
        serde_json::from_str(&std::fs::read_to_string(&urls).expect("urls")).expect("json");
    let device = &doc["devices"]["fw"];
    let c = client(device["ca_pem"].as_str(), ip(1));
    let (status, body) = json(
        send(
            &c,
            Method::GET,
            &format!(
                "{}/api/v2/monitor/system/status",
                device["url"].as_str().expect("url")
            ),
            Some("ci-token"),
            None,
        )
        .await,
    )
    .await;
    child.kill().expect("stop the simulator");
    let _ = child.wait();
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(status, 200);
    assert_eq!(body["version"], "v7.2.8");
}
