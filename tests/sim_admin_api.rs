//! The admin API v1 is an interface users' CI scripts: every example in docs/simulator.md
//! ("Bodies and examples") is run here as written, against a simulator with the devices it
//! names, and must answer what the document says (2xx; the listed bodies' shapes), so the
//! document and the routes cannot drift apart.

use fortisync::sim::{Scenario, Simulator};
use serde_json::Value;

/// A FortiGate `fw` with the feed `blocklist`, and a FortiManager `fmg` with ADOM `root`, as
/// the examples name them; ports are picked by the system.
const SCENARIO: &str = r#"
fortigates:
  - name: fw
    version: "7.4.3"
    port: 0
    api_users: [{name: fortisync, key: k3y, trusthosts: ["127.0.0.0/8"]}]
    objects:
      root:
        external_resources:
          - {name: blocklist, type: address, update-method: push, resource: "https://edl.example/x"}
fortimanagers:
  - name: fmg
    port: 0
    adoms: [{name: root}]
"#;

/// One `curl` line of the examples: method, path after `$A`, body (`-d`).
#[derive(Debug)]
struct Call {
    line: String,
    method: String,
    path: String,
    body: Option<String>,
    /// `> file`: the answer is kept under this name for a later `-d @file`.
    save_as: Option<String>,
}

/// Splits a shell line into words, honouring single quotes (all the examples use).
fn words(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut word = String::new();
    let mut quoted = false;
    let mut started = false;
    for c in line.chars() {
        match c {
            '\'' => {
                quoted = !quoted;
                started = true;
            }
            ' ' | '\t' if !quoted => {
                if started {
                    out.push(std::mem::take(&mut word));
                    started = false;
                }
            }
            _ => {
                word.push(c);
                started = true;
            }
        }
    }
    if started {
        out.push(word);
    }
    out
}

/// The examples' `curl` calls, continuation lines joined and comments dropped.
fn calls() -> Vec<Call> {
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/simulator.md"))
        .expect("docs/simulator.md");
    let section = doc
        .split("### Bodies and examples")
        .nth(1)
        .expect("the examples section");
    let block = section
        .split("```sh\n")
        .nth(1)
        .and_then(|b| b.split("\n```").next())
        .expect("the sh block");
    let joined = block.replace("\\\n", " ");
    joined
        .lines()
        .map(str::trim)
        .filter(|l| l.starts_with("curl "))
        .map(|l| {
            // A comment starts at ` #` outside quotes; the examples never quote a `#`.
            let code = match l.find("  #") {
                Some(at) => &l[..at],
                None => l,
            };
            let w = words(code);
            let mut call = Call {
                line: l.to_string(),
                method: "GET".into(),
                path: String::new(),
                body: None,
                save_as: None,
            };
            let mut i = 1;
            while i < w.len() {
                match w[i].as_str() {
                    "-s" => {}
                    "-X" => {
                        i += 1;
                        call.method = w[i].clone();
                    }
                    "-H" => i += 1,
                    "-d" => {
                        i += 1;
                        call.body = Some(w[i].clone());
                    }
                    ">" => {
                        i += 1;
                        call.save_as = Some(w[i].clone());
                    }
                    url => {
                        call.path = url
                            .strip_prefix("$A")
                            .unwrap_or_else(|| panic!("{l}: not an admin URL"))
                            .to_string();
                    }
                }
                i += 1;
            }
            call
        })
        .collect()
}

#[tokio::test]
async fn every_documented_admin_api_example_runs_as_written() {
    let sim = Simulator::start(Scenario::from_yaml(SCENARIO).expect("scenario"))
        .await
        .expect("simulator");
    let admin = reqwest::Client::new();
    let calls = calls();
    assert!(calls.len() >= 30, "{} examples", calls.len());
    let mut saved: std::collections::BTreeMap<String, String> = Default::default();
    let mut covered = std::collections::BTreeSet::new();
    for call in &calls {
        let url = format!("{}{}", sim.admin_url(), call.path);
        let method = reqwest::Method::from_bytes(call.method.as_bytes()).expect("method");
        let mut request = admin.request(method, &url);
        if let Some(body) = &call.body {
            let body = match body.strip_prefix('@') {
                Some(file) => saved.get(file).cloned().expect("saved before"),
                None => body.clone(),
            };
            request = request
                .header("content-type", "application/json")
                .body(body);
        }
        let answer = request.send().await.expect("send");
        let status = answer.status().as_u16();
        let text = answer.text().await.expect("body");
        assert!(
            (200..300).contains(&status),
            "{}\n→ {status} {text}",
            call.line
        );
        if !text.is_empty() {
            serde_json::from_str::<Value>(&text)
                .unwrap_or_else(|e| panic!("{}\n→ not JSON ({e}): {text}", call.line));
        }
        if let Some(file) = &call.save_as {
            saved.insert(file.clone(), text);
        }
        covered.insert((call.method.clone(), route_of(&call.path)));
    }
    // Every route of the v1 table has an example (the FortiGate and FortiManager halves).
    for route in [
        "/v1/version",
        "/v1/fortigates",
        "/v1/fortigates/{name}/requests",
        "/v1/fortigates/{name}/counters",
        "/v1/fortigates/{name}/faults",
        "/v1/fortigates/{name}/global",
        "/v1/fortigates/{name}/api-users/{user}/key",
        "/v1/fortigates/{name}/reboot",
        "/v1/fortigates/{name}/feeds/{vdom}/{feed}",
        "/v1/fortigates/{name}/feeds/{vdom}/{feed}/polls",
        "/v1/fortigates/{name}/scenario",
        "/v1/fortigates/{name}/objects/{vdom}/{path}/{table}",
        "/v1/fortigates/{name}/objects/{vdom}/{path}/{table}/{object}",
        "/v1/fortimanagers/{name}/requests",
        "/v1/fortimanagers/{name}/counters",
        "/v1/fortimanagers/{name}/sessions",
        "/v1/fortimanagers/{name}/faults",
        "/v1/fortimanagers/{name}/admins/{userid}",
        "/v1/fortimanagers/{name}/adoms/{adom}/lock",
        "/v1/fortimanagers/{name}/adoms/{adom}/workspace-mode",
        "/v1/fortimanagers/{name}/adoms/{adom}/{table}",
        "/v1/fortimanagers/{name}/adoms/{adom}/{table}/{object}",
    ] {
        assert!(
            covered.iter().any(|(_, r)| r == route),
            "no example for {route}"
        );
    }
}

/// The route template a path of the examples takes.
fn route_of(path: &str) -> String {
    let s: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let t = |i: usize| s.get(i).copied().unwrap_or_default();
    let template: Vec<&str> = match (t(1), s.len()) {
        ("fortigates", 2) => vec!["v1", "fortigates"],
        ("fortigates", _) => {
            let mut v = vec!["v1", "fortigates", "{name}", t(3)];
            match t(3) {
                "api-users" => v.extend(["{user}", "key"]),
                "feeds" => {
                    v.extend(["{vdom}", "{feed}"]);
                    if s.len() > 6 {
                        v.push("polls");
                    }
                }
                "objects" => {
                    v.extend(["{vdom}", "{path}", "{table}"]);
                    if s.len() > 7 {
                        v.push("{object}");
                    }
                }
                _ => {}
            }
            v
        }
        ("fortimanagers", _) => {
            let mut v = vec!["v1", "fortimanagers", "{name}", t(3)];
            match t(3) {
                "admins" => v.push("{userid}"),
                "adoms" => match t(5) {
                    "lock" | "workspace-mode" => v.extend(["{adom}", t(5)]),
                    _ => {
                        v.extend(["{adom}", "{table}"]);
                        if s.len() > 6 {
                            v.push("{object}");
                        }
                    }
                },
                _ => {}
            }
            v
        }
        _ => s.clone(),
    };
    format!("/{}", template.join("/"))
}
