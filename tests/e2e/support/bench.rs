//! What every benchmark binary does before and around its figures: run only under
//! `cargo bench`, find the control plane, read its sizes from the environment, say what
//! machine the figures come from.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use fortisync::api::FortiGate;
use fortisync::sim::fortios::FortiGateHandle;
use k8s_openapi::api::core::v1::{Namespace, Secret};
use kube::api::{ObjectMeta, PostParams};
use kube::{Api, Client};
use serde_json::json;

use super::control_plane::ControlPlane;

/// The API key of every simulated FortiGate a bench connects to.
pub const KEY: &str = "bench-fortigate-token-000000000000";

/// The control plane with the CRDs installed, or the exit code when this is no bench run:
/// `cargo test --benches` runs the binary without `--bench` (nothing to do, success), and
/// without the control-plane binaries nothing can be measured (2).
pub fn start(name: &str) -> Result<&'static ControlPlane, ExitCode> {
    if !std::env::args().any(|a| a == "--bench") {
        println!("{name} bench: run it with `cargo bench --bench {name}`");
        return Err(ExitCode::SUCCESS);
    }
    if let Err(e) = control_plane_bin() {
        eprintln!("{name} bench: cannot run: {e}");
        return Err(ExitCode::from(2));
    }
    let cp = super::control_plane();
    cp.install_crds();
    Ok(cp)
}

/// The runtime a bench drives the controller and the simulator on.
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime")
}

/// `name` from the environment as a number, else `default`.
pub fn env_usize(name: &str, default: usize) -> usize {
    match std::env::var(name) {
        Ok(v) => v
            .parse()
            .unwrap_or_else(|_| panic!("{name}={v:?} is not a number")),
        Err(_) => default,
    }
}

/// The control-plane binaries, or why the bench cannot run.
fn control_plane_bin() -> Result<PathBuf, String> {
    let dir = std::env::var("FORTISYNC_CONTROL_PLANE_BIN").map_err(|_| {
        "FORTISYNC_CONTROL_PLANE_BIN is not set: point it at the directory holding etcd, \
         kube-apiserver and kubectl (`scripts/control-plane | tail -n 1` builds them and prints it)"
            .to_string()
    })?;
    let dir = PathBuf::from(dir);
    for name in ["etcd", "kube-apiserver", "kubectl"] {
        if !dir.join(name).is_file() {
            return Err(format!(
                "{name} is missing in FORTISYNC_CONTROL_PLANE_BIN={}",
                dir.display()
            ));
        }
    }
    Ok(dir)
}

/// CPUs, model, load and build: a shared or loaded machine makes every figure pessimistic.
pub fn machine_context() -> String {
    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    let model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|t| {
            t.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, m)| m.trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let load = std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default();
    format!(
        "{cpus} CPU(s), {model}, load average {load}; {} build, everything on loopback",
        if cfg!(debug_assertions) {
            "debug"
        } else {
            "release"
        }
    )
}

/// A new namespace named `prefix-NNNNNN`.
pub async fn namespace(client: &Client, prefix: &str) -> String {
    let name = format!("{prefix}-{:06}", rand::random::<u32>() % 1_000_000);
    let ns = Namespace {
        metadata: ObjectMeta {
            name: Some(name.clone()),
            ..Default::default()
        },
        ..Default::default()
    };
    Api::<Namespace>::all(client.clone())
        .create(&PostParams::default(), &ns)
        .await
        .expect("namespace");
    name
}

/// The Secret `name` with [`KEY`] and `fg`'s CA.
pub async fn secret(client: &Client, ns: &str, fg: &FortiGateHandle, name: &str) {
    let secret = Secret {
        metadata: ObjectMeta {
            name: Some(name.into()),
            ..Default::default()
        },
        string_data: Some(BTreeMap::from([
            ("token".to_string(), KEY.to_string()),
            ("ca.crt".to_string(), fg.ca_pem().expect("ca").to_string()),
        ])),
        ..Secret::default()
    };
    Api::<Secret>::namespaced(client.clone(), ns)
        .create(&PostParams::default(), &secret)
        .await
        .expect("secret");
}

/// The FortiGate connection `name` to `fg`, reading the Secret `<name>-token`.
pub async fn connection(client: &Client, ns: &str, name: &str, fg: &FortiGateHandle, resync: &str) {
    let secret = format!("{name}-token");
    let fortigate: FortiGate = serde_json::from_value(json!({
        "apiVersion": "fortisync.dev/v1alpha1",
        "kind": "FortiGate",
        "metadata": {"name": name},
        "spec": {
            "url": fg.url(),
            "credentialsSecretRef": {"name": secret, "tokenKey": "token"},
            "tls": {"caBundleSecretRef": {"name": secret, "key": "ca.crt"}},
            "resyncInterval": resync,
        },
    }))
    .expect("FortiGate");
    Api::<FortiGate>::namespaced(client.clone(), ns)
        .create(&PostParams::default(), &fortigate)
        .await
        .expect("create FortiGate");
}

/// The `p`th percentile of `sorted` (nearest rank).
pub fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let rank = ((p / 100.0) * sorted.len() as f64).ceil().max(1.0) as usize;
    sorted[rank.min(sorted.len()) - 1]
}

/// `d` in milliseconds.
pub fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// How a figure compares with its aim.
pub fn verdict(ok: bool) -> &'static str {
    if ok { "meets" } else { "MISSES" }
}
