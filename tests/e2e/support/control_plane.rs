//! A real control plane for e2e tests: etcd + kube-apiserver on loopback, built from upstream Go
//! modules by `scripts/control-plane` and started once per test binary.
//!
//! The processes run under a small shell watchdog that stops them (and removes the data
//! directory) when the test binary exits, because statics are never dropped in Rust.

use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use kube::Client;
use kube::config::{AuthInfo, Config};
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair, KeyUsagePurpose};

/// The bearer token of the harness's cluster admin (`system:masters`).
const ADMIN_TOKEN: &str = "fortisync-e2e-admin-token";

/// The bearer token of the node `127.0.0.1`'s kubelet (support/node.rs).
pub const NODE_TOKEN: &str = "fortisync-e2e-node-token";

/// A running etcd + kube-apiserver pair.
pub struct ControlPlane {
    /// `https://127.0.0.1:<port>`
    pub url: String,
    /// Directory with certificates, kubeconfig and the processes' logs.
    pub dir: PathBuf,
    /// Directory holding kube-apiserver, etcd, kubectl (and helm).
    pub bin: PathBuf,
    ca_der: Vec<u8>,
    api_args: Vec<String>,
    crds: OnceLock<()>,
}

static CONTROL_PLANE: OnceLock<ControlPlane> = OnceLock::new();

/// The control plane of this test run, started on first use. Panics (never skips) when it
/// cannot be built or started, with the reason and the log to read.
pub fn control_plane() -> &'static ControlPlane {
    CONTROL_PLANE.get_or_init(|| match ControlPlane::start() {
        Ok(cp) => cp,
        Err(e) => panic!("e2e: the test control plane could not start: {e}"),
    })
}

impl ControlPlane {
    /// A control plane of the test's own, for tests that restart it (the shared one serves
    /// every other test at once). Panics when it cannot start.
    pub fn private(name: &str) -> Self {
        Self::start_in(name)
            .unwrap_or_else(|e| panic!("e2e: a private control plane could not start: {e}"))
    }

    /// Like [`ControlPlane::private`], with kube-apiserver reaching etcd through whatever
    /// `front` puts before etcd's client address (e.g. a latency proxy): `front` gets that
    /// address and answers the one to hand kube-apiserver as `--etcd-servers`.
    pub fn private_with_etcd_front(
        name: &str,
        front: impl FnOnce(SocketAddr) -> SocketAddr,
    ) -> Self {
        Self::start_fronted(name, front)
            .unwrap_or_else(|e| panic!("e2e: a private control plane could not start: {e}"))
    }

    fn start() -> Result<Self, String> {
        Self::start_in("shared")
    }

    fn start_in(name: &str) -> Result<Self, String> {
        Self::start_fronted(name, |etcd| etcd)
    }

    fn start_fronted(
        name: &str,
        front: impl FnOnce(SocketAddr) -> SocketAddr,
    ) -> Result<Self, String> {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let bin = control_plane_bin()?;
        let dir = std::env::temp_dir().join(format!("fortisync-e2e-{}-{name}", std::process::id()));
        std::fs::create_dir_all(&dir).map_err(|e| format!("create {}: {e}", dir.display()))?;

        let pki = Pki::generate(&dir)?;
        let token_file = dir.join("tokens.csv");
        // The node's kubelet (support/node.rs) authenticates as `system:node:127.0.0.1`, which
        // the Node authorizer limits to its own node and pods.
        write(
            &token_file,
            &format!(
                "{ADMIN_TOKEN},e2e-admin,e2e-admin,system:masters\n{NODE_TOKEN},system:node:127.0.0.1,system:node:127.0.0.1,system:nodes\n"
            ),
        )?;

        let etcd_client = free_port()?;
        let etcd_peer = free_port()?;
        let api_port = free_port()?;
        let etcd_url = format!("http://127.0.0.1:{etcd_client}");
        let etcd_args = vec![
            "--name=e2e".to_string(),
            format!("--data-dir={}", dir.join("etcd").display()),
            format!("--listen-client-urls={etcd_url}"),
            format!("--advertise-client-urls={etcd_url}"),
            format!("--listen-peer-urls=http://127.0.0.1:{etcd_peer}"),
            format!("--initial-advertise-peer-urls=http://127.0.0.1:{etcd_peer}"),
            format!("--initial-cluster=e2e=http://127.0.0.1:{etcd_peer}"),
            "--unsafe-no-fsync=true".to_string(),
            "--log-level=warn".to_string(),
        ];
        // The etcd watchdog removes the run directory once everything has stopped (etcd
        // outlives kube-apiserver restarts).
        spawn_watched(
            &bin.join("etcd"),
            &etcd_args,
            &dir.join("etcd.log"),
            Some(&dir),
        )?;

        let etcd_front = front(SocketAddr::from(([127, 0, 0, 1], etcd_client)));
        let api_args = vec![
            format!("--etcd-servers=http://{etcd_front}"),
            "--bind-address=127.0.0.1".to_string(),
            "--advertise-address=127.0.0.1".to_string(),
            format!("--secure-port={api_port}"),
            "--endpoint-reconciler-type=none".to_string(),
            format!("--tls-cert-file={}", pki.serving_cert.display()),
            format!("--tls-private-key-file={}", pki.serving_key.display()),
            format!("--client-ca-file={}", pki.ca_cert.display()),
            format!("--token-auth-file={}", token_file.display()),
            "--authorization-mode=Node,RBAC".to_string(),
            "--service-account-issuer=https://kubernetes.default.svc".to_string(),
            format!("--service-account-key-file={}", pki.sa_pub.display()),
            format!(
                "--service-account-signing-key-file={}",
                pki.sa_key.display()
            ),
            "--service-cluster-ip-range=10.0.0.0/24".to_string(),
            format!("--cert-dir={}", dir.join("apiserver-certs").display()),
            "--enable-priority-and-fairness=false".to_string(),
            "--v=0".to_string(),
        ];
        // The watchdog also removes the run directory once everything has stopped.
        spawn_watched(
            &bin.join("kube-apiserver"),
            &api_args,
            &dir.join("kube-apiserver.log"),
            None,
        )?;

        let cp = ControlPlane {
            url: format!("https://127.0.0.1:{api_port}"),
            dir,
            bin,
            ca_der: pki.ca_der,
            api_args,
            crds: OnceLock::new(),
        };
        cp.write_kubeconfig()?;
        cp.wait_ready(Duration::from_secs(90))?;
        Ok(cp)
    }

    /// Stops kube-apiserver (SIGTERM as a rolling restart does, SIGKILL after 5 s), keeps it down for `down`,
    /// starts it again with the same flags and waits until it answers; etcd keeps the data.
    pub fn restart_apiserver(&self, down: Duration) {
        let log = self.dir.join("kube-apiserver.log");
        let pid_file = log.with_extension("log.pid");
        let pid = std::fs::read_to_string(&pid_file).expect("kube-apiserver pid");
        let pid = pid.trim();
        let alive = || {
            Command::new("kill")
                .args(["-0", pid])
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
        };
        let _ = Command::new("kill").arg(pid).status();
        let started = Instant::now();
        while alive() {
            // Open watches can hold a graceful shutdown for a minute: a crash is as good.
            if started.elapsed() > Duration::from_secs(5) {
                let _ = Command::new("kill").args(["-9", pid]).status();
            }
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "kube-apiserver did not stop"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        // Its watchdog notices within half a second and leaves the exit status; this stop was
        // on purpose, so the status is removed once written.
        let exit = log.with_extension("log.exit");
        let noticed = Instant::now();
        while !exit.exists() && noticed.elapsed() < Duration::from_secs(5) {
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = std::fs::remove_file(&exit);
        std::thread::sleep(down);
        spawn_watched(&self.bin.join("kube-apiserver"), &self.api_args, &log, None)
            .expect("restart kube-apiserver");
        self.wait_ready(Duration::from_secs(90))
            .expect("kube-apiserver ready after the restart");
    }

    /// A kube client authenticated as the cluster admin.
    pub fn client(&self) -> Client {
        let mut config = Config::new(self.url.parse().expect("control plane URL"));
        config.root_cert = Some(vec![self.ca_der.clone()]);
        config.auth_info = AuthInfo {
            token: Some(ADMIN_TOKEN.to_string().into()),
            ..AuthInfo::default()
        };
        Client::try_from(config).expect("kube client for the test control plane")
    }

    /// The address kube-apiserver listens on.
    pub fn api_addr(&self) -> SocketAddr {
        self.url
            .trim_start_matches("https://")
            .parse()
            .expect("control plane address")
    }

    /// A kubeconfig like [`ControlPlane::kubeconfig`] that reaches the apiserver at `server`
    /// (e.g. a proxy in front of it, `https://127.0.0.1:<port>`; its certificate names
    /// 127.0.0.1, so any loopback port verifies).
    pub fn kubeconfig_via(&self, server: &str) -> PathBuf {
        let port = server.rsplit(':').next().unwrap_or("other");
        let path = self.dir.join(format!("kubeconfig-via-{port}"));
        write(&path, &self.kubeconfig_text(server)).expect("write kubeconfig");
        path
    }

    /// Path of a kubeconfig for `kubectl` and `helm`.
    pub fn kubeconfig(&self) -> PathBuf {
        self.dir.join("kubeconfig")
    }

    /// Runs the harness's `kubectl` against this control plane.
    pub fn kubectl(&self, args: &[&str]) -> Output {
        Command::new(self.bin.join("kubectl"))
            .arg(format!("--kubeconfig={}", self.kubeconfig().display()))
            .arg(format!(
                "--cache-dir={}",
                self.dir.join("kube-cache").display()
            ))
            .args(args)
            .output()
            .expect("run kubectl")
    }

    /// Runs `kubectl` and returns stdout, panicking with stderr when it fails.
    pub fn kubectl_ok(&self, args: &[&str]) -> String {
        let out = self.kubectl(args);
        assert!(
            out.status.success(),
            "kubectl {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Creates a fresh namespace for one test and returns its name.
    pub fn namespace(&self, test: &str) -> String {
        let suffix: u32 = rand::random::<u32>() % 1_000_000;
        let name = format!("{}-{suffix:06}", test.replace('_', "-"));
        self.kubectl_ok(&["create", "namespace", &name]);
        name
    }

    fn write_kubeconfig(&self) -> Result<(), String> {
        write(&self.kubeconfig(), &self.kubeconfig_text(&self.url))
    }

    fn kubeconfig_text(&self, server: &str) -> String {
        let ca = self.dir.join("ca.crt");
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: e2e\n  cluster:\n    server: {}\n    certificate-authority: {}\nusers:\n- name: e2e-admin\n  user:\n    token: {ADMIN_TOKEN}\ncontexts:\n- name: e2e\n  context:\n    cluster: e2e\n    user: e2e-admin\n    namespace: default\ncurrent-context: e2e\n",
            server,
            ca.display()
        )
    }

    fn wait_ready(&self, limit: Duration) -> Result<(), String> {
        let started = Instant::now();
        loop {
            let out = self.kubectl(&["get", "--raw", "/readyz"]);
            if out.status.success() {
                eprintln!(
                    "e2e: control plane ready at {} in {:.1?}",
                    self.url,
                    started.elapsed()
                );
                return Ok(());
            }
            for process in ["etcd", "kube-apiserver"] {
                let log = self.dir.join(format!("{process}.log"));
                if let Ok(code) = std::fs::read_to_string(log.with_extension("log.exit")) {
                    return Err(format!(
                        "{process} exited with status {}; log tail:\n{}",
                        code.trim(),
                        tail(&log, 30)
                    ));
                }
            }
            if started.elapsed() > limit {
                return Err(format!(
                    "kube-apiserver not ready after {limit:?}; last kubectl error: {}; log tail:\n{}",
                    String::from_utf8_lossy(&out.stderr).trim(),
                    tail(&self.dir.join("kube-apiserver.log"), 30)
                ));
            }
            std::thread::sleep(Duration::from_millis(250));
        }
    }
}

/// Finds (building on first use) the directory with the control-plane binaries.
fn control_plane_bin() -> Result<PathBuf, String> {
    if let Ok(dir) = std::env::var("FORTISYNC_CONTROL_PLANE_BIN") {
        return Ok(PathBuf::from(dir));
    }
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/control-plane");
    eprintln!(
        "e2e: preparing the control plane with {} (cold builds take minutes)",
        script.display()
    );
    let out = Command::new(&script)
        .stderr(Stdio::inherit())
        .output()
        .map_err(|e| format!("run {}: {e}", script.display()))?;
    if !out.status.success() {
        return Err(format!("{} failed with {}", script.display(), out.status));
    }
    let stdout = String::from_utf8_lossy(&out.stdout);
    let dir = stdout.lines().last().unwrap_or_default().trim().to_string();
    for name in ["etcd", "kube-apiserver", "kubectl"] {
        if !Path::new(&dir).join(name).is_file() {
            return Err(format!(
                "{name} missing in {dir:?} after {}",
                script.display()
            ));
        }
    }
    Ok(PathBuf::from(dir))
}

/// Starts `program` under a watchdog that ends it when this test process exits.
pub(super) fn spawn_watched(
    program: &Path,
    args: &[String],
    log: &Path,
    cleanup: Option<&Path>,
) -> Result<(), String> {
    let parent = std::process::id();
    let rm = cleanup
        .map(|d| format!("rm -rf '{}'", d.display()))
        .unwrap_or_default();
    // When the child dies on its own, its exit status is left beside the log for the harness;
    // when the test process is gone, the child is stopped and the run directory removed.
    let script = format!(
        "\"$0\" \"$@\" >>'{log}' 2>&1 & child=$!\necho $child >'{log}.pid'\n\
         while kill -0 {parent} 2>/dev/null && kill -0 $child 2>/dev/null; do sleep 0.5; done\n\
         if kill -0 {parent} 2>/dev/null; then wait $child; echo $? >'{log}.exit'; exit; fi\n\
         kill $child 2>/dev/null\n\
         for _ in 1 2 3 4 5 6 7 8 9 10; do kill -0 $child 2>/dev/null || break; sleep 0.5; done\n\
         kill -9 $child 2>/dev/null; wait $child 2>/dev/null; {rm}",
        log = log.display()
    );
    Command::new("bash")
        .arg("-c")
        .arg(script)
        .arg(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("start {}: {e}", program.display()))?;
    Ok(())
}

struct Pki {
    ca_pem: String,
    ca_der: Vec<u8>,
    ca_cert: PathBuf,
    serving_cert: PathBuf,
    serving_key: PathBuf,
    sa_key: PathBuf,
    sa_pub: PathBuf,
}

impl Pki {
    /// A throwaway CA, a serving certificate for 127.0.0.1 and a service-account signing key.
    fn generate(dir: &Path) -> Result<Self, String> {
        let err = |e: rcgen::Error| format!("generate certificates: {e}");
        let ca_key = KeyPair::generate().map_err(err)?;
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).map_err(err)?;
        ca_params
            .distinguished_name
            .push(DnType::CommonName, "fortisync-e2e-ca");
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let ca = ca_params.self_signed(&ca_key).map_err(err)?;
        let issuer = rcgen::Issuer::from_params(&ca_params, &ca_key);

        let key = KeyPair::generate().map_err(err)?;
        let mut params =
            CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".to_string()])
                .map_err(err)?;
        params
            .distinguished_name
            .push(DnType::CommonName, "kube-apiserver");
        let cert = params.signed_by(&key, &issuer).map_err(err)?;
        let sa = KeyPair::generate().map_err(err)?;

        let pki = Pki {
            ca_pem: ca.pem(),
            ca_der: ca.der().to_vec(),
            ca_cert: dir.join("ca.crt"),
            serving_cert: dir.join("apiserver.crt"),
            serving_key: dir.join("apiserver.key"),
            sa_key: dir.join("sa.key"),
            sa_pub: dir.join("sa.pub"),
        };
        write(&pki.ca_cert, &pki.ca_pem)?;
        write(&pki.serving_cert, &cert.pem())?;
        write(&pki.serving_key, &key.serialize_pem())?;
        write(&pki.sa_key, &sa.serialize_pem())?;
        write(&pki.sa_pub, &sa.public_key_pem())?;
        Ok(pki)
    }
}

fn free_port() -> Result<u16, String> {
    let listener =
        TcpListener::bind("127.0.0.1:0").map_err(|e| format!("pick a free port: {e}"))?;
    listener
        .local_addr()
        .map(|a| a.port())
        .map_err(|e| format!("pick a free port: {e}"))
}

fn write(path: &Path, text: &str) -> Result<(), String> {
    std::fs::write(path, text).map_err(|e| format!("write {}: {e}", path.display()))
}

fn tail(path: &Path, lines: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

impl ControlPlane {
    /// Installs fortisync's CRDs (as generated from the types) once per run and waits until
    /// they are established.
    pub fn install_crds(&self) {
        self.crds.get_or_init(|| {
            let yaml = fortisync::api::crds_yaml().expect("serialise CRDs");
            let file = self.dir.join("fortisync-crds.yaml");
            std::fs::write(&file, yaml).expect("write CRDs");
            self.kubectl_ok(&[
                "apply",
                "--server-side",
                "-f",
                file.to_str().expect("utf-8 path"),
            ]);
            for crd in fortisync::api::crds() {
                let name = crd.metadata.name.unwrap_or_default();
                self.kubectl_ok(&[
                    "wait",
                    "--for=condition=Established",
                    &format!("crd/{name}"),
                    "--timeout=60s",
                ]);
            }
        });
    }

    /// `kubectl apply -f -` with `manifest` in `namespace`; returns (success, stderr).
    pub fn apply(&self, namespace: &str, manifest: &str) -> (bool, String) {
        use std::io::Write;
        let mut child = Command::new(self.bin.join("kubectl"))
            .arg(format!("--kubeconfig={}", self.kubeconfig().display()))
            .args(["apply", "-n", namespace, "-f", "-"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start kubectl apply");
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(manifest.as_bytes())
            .expect("write manifest");
        let out = child.wait_with_output().expect("kubectl apply");
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }
}
