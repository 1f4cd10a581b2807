//! The real `fortisync run` binary as a child process of a test: one replica serving a
//! namespace (its leader-election Lease in the same namespace), logging to a file in the
//! control plane's directory, killed when dropped.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

use super::control_plane::ControlPlane;

/// One `fortisync run` process; killed (SIGKILL, so it never releases its Lease) when dropped.
pub struct RunProcess {
    /// Its identity in the Lease.
    pub identity: String,
    child: Child,
    log: PathBuf,
    admin: String,
}

impl RunProcess {
    /// Starts `fortisync run` for `ns` as `identity`, with `extra` arguments (e.g.
    /// `["--lease-duration-seconds", "4"]`) and its admin server on a free loopback port.
    pub fn start(cp: &ControlPlane, ns: &str, identity: &str, extra: &[&str]) -> Self {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("free port")
            .port();
        let log = cp.dir.join(format!("{ns}-{identity}.log"));
        let out = std::fs::File::create(&log).expect("log file");
        let admin = format!("127.0.0.1:{port}");
        let child = Command::new(env!("CARGO_BIN_EXE_fortisync"))
            .args(["run", "--namespace", ns, "--lease-namespace", ns])
            .args(["--identity", identity, "--admin-address", &admin])
            .args(extra)
            .env("KUBECONFIG", cp.kubeconfig())
            .env("RUST_LOG", "info")
            .env_remove("POD_NAME")
            .env_remove("POD_NAMESPACE")
            .stdin(Stdio::null())
            .stdout(out.try_clone().expect("log file"))
            .stderr(out)
            .spawn()
            .expect("start fortisync run");
        Self {
            identity: identity.to_string(),
            child,
            log,
            admin,
        }
    }

    /// Everything it has logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Device writes it has logged.
    pub fn writes(&self) -> usize {
        self.log()
            .lines()
            .filter(|l| l.contains("\"device write\""))
            .count()
    }

    /// The HTTP status of `/readyz`, None while the admin server is not up.
    pub async fn readyz(&self) -> Option<u16> {
        let url = format!("http://{}/readyz", self.admin);
        let answer = reqwest::get(&url).await.ok()?;
        Some(answer.status().as_u16())
    }
}

impl Drop for RunProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
