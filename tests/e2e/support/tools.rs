//! Go tools the harness builds next to the control plane (`scripts/control-plane`, cached):
//! `gitops-health` (kstatus and the Argo CD Lua checks) and `promtool`.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;

/// The harness's bin directory after `scripts/control-plane` ran once in this test binary, so
/// the tools built from this clone (gitops-health, keyed by its sources' hash) are current
/// even when `FORTISYNC_CONTROL_PLANE_BIN` points at a cache built from an older tree.
fn bin() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/control-plane");
        let out = Command::new(&script)
            .stderr(Stdio::inherit())
            .output()
            .unwrap_or_else(|e| panic!("run {}: {e}", script.display()));
        assert!(out.status.success(), "{} failed", script.display());
        let stdout = String::from_utf8_lossy(&out.stdout);
        PathBuf::from(stdout.lines().last().unwrap_or_default().trim())
    })
}

/// The path of the harness tool `name`.
pub fn tool(name: &str) -> PathBuf {
    let path = bin().join(name);
    assert!(
        path.is_file(),
        "{} missing after scripts/control-plane",
        path.display()
    );
    path
}
