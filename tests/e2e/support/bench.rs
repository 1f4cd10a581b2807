//! What every benchmark binary does before and around its figures: run only under
//! `cargo bench`, find the control plane, read its sizes from the environment, say what
//! machine the figures come from.

use std::path::PathBuf;
use std::process::ExitCode;

use super::control_plane::ControlPlane;

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
