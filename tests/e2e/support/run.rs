//! The real `fortisync run` binary as a child process of a test: one replica serving a
//! namespace (its leader-election Lease in the same namespace), logging to a file in the
//! control plane's directory, killed when dropped. fortisync's own logs are always at `trace`
//! (everything else at the test's filter), and when the process is dropped its whole log is
//! searched for every secret the tests registered (support/canary.rs): a hit fails the test.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

use super::control_plane::ControlPlane;

/// How to start one `fortisync run`.
pub struct RunOptions<'a> {
    /// `--namespace` flags (empty: every namespace).
    pub namespaces: &'a [&'a str],
    /// Where its Lease lives.
    pub lease_namespace: &'a str,
    /// Its identity in the Lease (and its log file's name).
    pub identity: &'a str,
    /// More arguments.
    pub extra: &'a [&'a str],
    /// A kubeconfig other than the admin's (e.g. a ServiceAccount token's).
    pub kubeconfig: Option<PathBuf>,
    /// `RUST_LOG` (fortisync's own targets are at `trace` whatever it says).
    pub log_filter: &'a str,
}

/// One `fortisync run` process; killed (SIGKILL, so it never releases its Lease) when dropped.
pub struct RunProcess {
    /// Its identity in the Lease.
    pub identity: String,
    child: Child,
    log: PathBuf,
    admin: String,
    /// The test that started it, for a leak report.
    test: String,
}

impl RunProcess {
    /// Starts `fortisync run` for `ns` as `identity`, with `extra` arguments (e.g.
    /// `["--lease-duration-seconds", "4"]`) and its admin server on a free loopback port.
    pub fn start(cp: &ControlPlane, ns: &str, identity: &str, extra: &[&str]) -> Self {
        Self::start_with(
            cp,
            &RunOptions {
                namespaces: &[ns],
                lease_namespace: ns,
                identity,
                extra,
                kubeconfig: None,
                log_filter: "info",
            },
        )
    }

    /// Starts `fortisync run` as `options` say.
    pub fn start_with(cp: &ControlPlane, options: &RunOptions<'_>) -> Self {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("free port")
            .port();
        let log = cp.dir.join(format!(
            "{}-{}.log",
            options.lease_namespace, options.identity
        ));
        let out = std::fs::File::create(&log).expect("log file");
        let admin = format!("127.0.0.1:{port}");
        // The fleet bench may measure another build (e.g. the release binary that ships).
        let binary = std::env::var_os("FORTISYNC_BENCH_BIN")
            .filter(|b| !b.is_empty())
            .unwrap_or_else(|| env!("CARGO_BIN_EXE_fortisync").into());
        let mut command = Command::new(binary);
        command.args(["run", "--lease-namespace", options.lease_namespace]);
        for ns in options.namespaces {
            command.args(["--namespace", ns]);
        }
        let child = command
            .args(["--identity", options.identity, "--admin-address", &admin])
            .args(options.extra)
            .env(
                "KUBECONFIG",
                options
                    .kubeconfig
                    .clone()
                    .unwrap_or_else(|| cp.kubeconfig()),
            )
            .env(
                "RUST_LOG",
                format!("{},fortisync=trace", options.log_filter),
            )
            .env_remove("POD_NAME")
            .env_remove("POD_NAMESPACE")
            .stdin(Stdio::null())
            .stdout(out.try_clone().expect("log file"))
            .stderr(out)
            .spawn()
            .expect("start fortisync run");
        Self {
            identity: options.identity.to_string(),
            child,
            log,
            admin,
            test: std::thread::current()
                .name()
                .unwrap_or("an unnamed test")
                .to_string(),
        }
    }

    /// `GET /metrics` of its admin server.
    pub async fn metrics(&self) -> String {
        let url = format!("http://{}/metrics", self.admin);
        reqwest::get(&url)
            .await
            .and_then(|r| r.error_for_status())
            .expect("GET /metrics")
            .text()
            .await
            .expect("metrics body")
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

    /// Sends SIGTERM (what the kubelet sends a Pod) and waits up to `limit` for the process to
    /// exit: its exit status and how long it took, or None if it is still running.
    pub fn terminate(
        &mut self,
        limit: std::time::Duration,
    ) -> Option<(std::process::ExitStatus, std::time::Duration)> {
        let started = std::time::Instant::now();
        let sent = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("run kill");
        assert!(sent.success(), "kill -TERM failed");
        while started.elapsed() < limit {
            if let Some(status) = self.child.try_wait().expect("wait") {
                return Some((status, started.elapsed()));
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        None
    }

    /// Its process id (the benchmark reads its `/proc/<pid>` figures).
    pub fn pid(&self) -> u32 {
        self.child.id()
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
        // The whole log, now that nothing more can be written to it.
        let leaks = super::canary::leaks(&self.log());
        if leaks.is_empty() {
            return;
        }
        // Masked whole: the identity or the log's path may be the secret too.
        let report = super::canary::masked(&format!(
            "{}: the log of `fortisync run` {} ({}) holds a secret in {} line(s) (masked here):\n{}",
            self.test,
            self.identity,
            self.log.display(),
            leaks.len(),
            leaks.join("\n")
        ));
        // A panic while already unwinding would abort the whole test binary.
        if std::thread::panicking() {
            eprintln!("{report}");
        } else {
            panic!("{report}");
        }
    }
}
