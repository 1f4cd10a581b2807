//! `fortisync sim`: run the FortiGate / FortiManager simulator until Ctrl-C.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use crate::sim::{Scenario, Simulator};

/// Arguments of `fortisync sim`.
#[derive(Debug, clap::Args)]
pub struct SimArgs {
    /// Scenario file (YAML or JSON); without it, one FortiGate with an API user.
    #[arg(long, short = 's')]
    pub scenario: Option<PathBuf>,
    /// Write the device URLs, certificates and admin URL as JSON to this file once listening.
    #[arg(long)]
    pub write_urls: Option<PathBuf>,
    /// Write each device's CA certificate to DIR/<device>-tls/ca.crt, laid out like a mounted
    /// Secret, for `fortisync plan/apply --secrets-dir DIR`.
    #[arg(long, value_name = "DIR")]
    pub secrets_dir: Option<PathBuf>,
}

const DEFAULT_SCENARIO: &str = r#"
fortigates:
  - name: fortigate
    api_users:
      - {name: fortisync, key: fortisync-sim-token, trusthosts: ["127.0.0.0/8"]}
"#;

/// Runs the simulator.
pub async fn run(args: SimArgs) -> ExitCode {
    crate::runtime::logging::init(crate::runtime::logging::LogFormat::Text);
    let text = match &args.scenario {
        Some(path) => match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(e) => {
                eprintln!("fortisync sim: cannot read {}: {e}", path.display());
                return ExitCode::FAILURE;
            }
        },
        None => DEFAULT_SCENARIO.to_string(),
    };
    let scenario = match Scenario::from_yaml(&text) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("fortisync sim: the scenario is not valid: {e}");
            return ExitCode::FAILURE;
        }
    };
    let sim = match Simulator::start(scenario).await {
        Ok(sim) => sim,
        Err(e) => {
            eprintln!("fortisync sim: cannot start: {e}");
            return ExitCode::FAILURE;
        }
    };
    let mut urls = serde_json::Map::new();
    for fg in sim.fortigates() {
        println!(
            "FortiGate    {:<12} {}  ({})",
            fg.name(),
            fg.url(),
            fg.version()
        );
        urls.insert(
            fg.name().to_string(),
            serde_json::json!({"kind": "FortiGate", "url": fg.url(), "ca_pem": fg.ca_pem()}),
        );
    }
    for (name, fmg) in sim.fortimanagers() {
        println!("FortiManager {name:<12} {}/jsonrpc", fmg.url());
        urls.insert(
            name.to_string(),
            serde_json::json!({"kind": "FortiManager", "url": fmg.url(), "ca_pem": fmg.ca_pem()}),
        );
    }
    println!("admin (test control)      {}", sim.admin_url());
    if let Some(dir) = &args.secrets_dir {
        let cas = sim
            .fortigates()
            .map(|fg| (fg.name().to_string(), fg.ca_pem()))
            .chain(
                sim.fortimanagers()
                    .map(|(n, f)| (n.to_string(), f.ca_pem())),
            );
        for (name, pem) in cas {
            let Some(pem) = pem else { continue };
            let path = dir.join(format!("{name}-tls")).join("ca.crt");
            let written = std::fs::create_dir_all(dir.join(format!("{name}-tls")))
                .and_then(|_| std::fs::write(&path, pem));
            if let Err(e) = written {
                eprintln!("fortisync sim: cannot write {}: {e}", path.display());
                return ExitCode::FAILURE;
            }
            println!("CA of {name:<22} {}", path.display());
        }
    }
    if let Some(path) = &args.write_urls {
        let doc = serde_json::json!({"admin": sim.admin_url(), "devices": urls});
        if let Err(e) = write_atomically(
            path,
            &serde_json::to_string_pretty(&doc).unwrap_or_default(),
        ) {
            eprintln!("fortisync sim: cannot write {}: {e}", path.display());
            return ExitCode::FAILURE;
        }
    }
    println!("press Ctrl-C to stop");
    let _ = tokio::signal::ctrl_c().await;
    sim.shutdown().await;
    ExitCode::SUCCESS
}

/// Writes `contents` to a temporary file beside `path` and renames it over `path`, so a script
/// polling for the file never reads it half written: it is absent, then complete.
fn write_atomically(path: &Path, contents: &str) -> std::io::Result<()> {
    let name = path
        .file_name()
        .ok_or_else(|| std::io::Error::other("the path names no file"))?;
    // Same directory, so the rename never crosses a filesystem; hidden and per-process, so it
    // neither matches a glob for the final name nor collides with another `fortisync sim`.
    let mut temp_name = std::ffi::OsString::from(".");
    temp_name.push(name);
    temp_name.push(format!(".{}.tmp", std::process::id()));
    let temp = path.with_file_name(temp_name);
    std::fs::write(&temp, contents)
        .and_then(|()| std::fs::rename(&temp, path))
        .inspect_err(|_| {
            let _ = std::fs::remove_file(&temp);
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_and_example_scenarios_parse() {
        assert!(Scenario::from_yaml(DEFAULT_SCENARIO).is_ok());
        let example = include_str!("../../examples/sim-scenario.yaml");
        let scenario = Scenario::from_yaml(example).expect("examples/sim-scenario.yaml parses");
        assert_eq!(scenario.fortigates.len(), 2);
        assert_eq!(scenario.fortimanagers.len(), 1);
    }

    #[test]
    fn the_url_file_is_replaced_whole_and_leaves_no_temporary_file() {
        let dir = std::env::temp_dir().join(format!("fortisync-urls-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let path = dir.join("urls.json");
        std::fs::write(&path, "old").expect("old file");
        write_atomically(&path, "{\"admin\": \"http://127.0.0.1:1\"}").expect("written");
        let left: Vec<_> = std::fs::read_dir(&dir)
            .expect("dir")
            .map(|e| e.expect("entry").file_name())
            .collect();
        let text = std::fs::read_to_string(&path).expect("read");
        let _ = std::fs::remove_dir_all(&dir);
        assert_eq!(text, "{\"admin\": \"http://127.0.0.1:1\"}");
        assert_eq!(left, ["urls.json"]);
    }
}
