//! The review's CLI security items (issue 12), through the binary where the process boundary is
//! the point: an `http://` device URL is refused before any connection; a refused key is
//! remembered across runs (two `plan` runs and a `doctor` cost the device one failed login);
//! turning TLS verification off is said in the output; `RUST_LOG` is honoured on stderr only;
//! a CA certificate presented as the device certificate is explained; a refused password is
//! called a password.

use std::net::IpAddr;
use std::path::PathBuf;
use std::process::{Command, Output};
use std::sync::Arc;
use std::time::Duration;

use fortisync::cli::doctor::checks::Status;
use fortisync::cli::doctor::{Target, diagnose};
use fortisync::device::{Credentials, DeviceKind, EndpointConfig, LockoutPolicy, TransportConfig};
use fortisync::sim::{Scenario, Simulator};

const FORTIGATE: &str = include_str!("../examples/fortigate.yaml");
const GROUPS: &str = include_str!("../examples/addressgroups.yaml");
const SCENARIO: &str = include_str!("../examples/sim-scenario.yaml");
const GOOD_KEY: &str = "token: fortisync-demo-token-000000000";

struct Estate {
    sim: Simulator,
    dir: PathBuf,
    secrets: PathBuf,
    state: PathBuf,
}

fn base(name: &str) -> PathBuf {
    let base =
        std::env::temp_dir().join(format!("fortisync-cli-sec-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&base);
    std::fs::create_dir_all(&base).expect("dir");
    base
}

async fn estate(name: &str, fortigate_yaml: &str) -> Estate {
    let mut scenario = Scenario::from_yaml(SCENARIO).expect("scenario");
    scenario.fortigates.retain(|f| f.name == "fw-edge-1");
    scenario.fortigates[0].port = 0;
    scenario.fortimanagers.clear();
    scenario.admin.port = 0;
    let sim = Simulator::start(scenario).await.expect("simulator");
    let base = base(name);
    let (dir, secrets) = (base.join("manifests"), base.join("secrets"));
    std::fs::create_dir_all(&dir).expect("dir");
    std::fs::create_dir_all(secrets.join("fw-edge-1-tls")).expect("secrets dir");
    let ca = sim.fortigate("fw-edge-1").ca_pem().expect("ca").to_string();
    let estate = Estate {
        dir,
        secrets,
        state: base.join("state").join("refused-keys.json"),
        sim,
    };
    estate.write_fortigate(fortigate_yaml);
    std::fs::write(estate.dir.join("addressgroups.yaml"), GROUPS).expect("write");
    std::fs::write(estate.secrets.join("fw-edge-1-tls").join("ca.crt"), ca).expect("ca");
    estate
}

impl Estate {
    fn write_fortigate(&self, yaml: &str) {
        let url = self.sim.fortigate("fw-edge-1").url().to_string();
        std::fs::write(
            self.dir.join("fortigate.yaml"),
            yaml.replace("https://127.0.0.1:18443", &url),
        )
        .expect("write");
    }

    fn failed_logins(&self) -> usize {
        self.sim
            .fortigate("fw-edge-1")
            .auth_failures_from(IpAddr::from([127, 0, 0, 1]))
    }

    /// Runs the binary with these manifests, secrets and state file, without RUST_LOG.
    async fn run(&self, args: &[&str], env: &[(&str, &str)]) -> Output {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_fortisync"));
        cmd.args(args)
            .arg("-f")
            .arg(&self.dir)
            .arg("--secrets-dir")
            .arg(&self.secrets)
            .args(["--color", "never"])
            .env("FORTISYNC_STATE_FILE", &self.state)
            .env_remove("FORTISYNC_SECRETS_DIR")
            .env_remove("RUST_LOG");
        for (k, v) in env {
            cmd.env(k, v);
        }
        tokio::task::spawn_blocking(move || cmd.output().expect("run fortisync"))
            .await
            .expect("join")
    }
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn wrong_key() -> String {
    FORTIGATE.replace(GOOD_KEY, "token: not-the-key-0000000000000")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_plans_and_a_doctor_with_the_same_wrong_key_cost_one_failed_login() {
    let e = estate("refused", &wrong_key()).await;

    let first = e.run(&["plan"], &[]).await;
    assert_eq!(first.status.code(), Some(1), "{}", stdout(&first));
    assert!(
        stdout(&first).contains("! Unauthorized:"),
        "{}",
        stdout(&first)
    );
    assert_eq!(e.failed_logins(), 1);

    let second = e.run(&["plan"], &[]).await;
    assert_eq!(second.status.code(), Some(1));
    let said = stdout(&second);
    assert!(
        said.contains("this API key was refused by default/fw-edge-1 ("),
        "{said}"
    );
    assert!(
        said.contains("fortisync will not try it again until it changes — `--retry-refused-key` to try once anyway"),
        "{said}"
    );

    let doctor = e.run(&["doctor"], &[]).await;
    assert_eq!(doctor.status.code(), Some(1));
    assert!(
        stdout(&doctor).contains("this API key was refused by default/fw-edge-1"),
        "{}",
        stdout(&doctor)
    );
    assert_eq!(
        e.failed_logins(),
        1,
        "the later plan and the doctor did not send the refused key"
    );

    let state = std::fs::read_to_string(&e.state).expect("state file");
    assert!(!state.contains("not-the-key"), "never the key: {state}");
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&e.state)
        .expect("meta")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);

    let retried = e.run(&["plan", "--retry-refused-key"], &[]).await;
    assert_eq!(retried.status.code(), Some(1));
    assert_eq!(
        e.failed_logins(),
        2,
        "--retry-refused-key sends it exactly once"
    );

    e.write_fortigate(FORTIGATE);
    let fixed = e.run(&["plan"], &[]).await;
    assert_eq!(
        fixed.status.code(),
        Some(2),
        "a changed key is tried: {}",
        stdout(&fixed)
    );
    assert_eq!(e.failed_logins(), 2);
}

/// A listener that counts the connections it was offered.
async fn listener() -> (std::net::SocketAddr, tokio::net::TcpListener) {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    (l.local_addr().expect("addr"), l)
}

async fn connections(l: &tokio::net::TcpListener) -> usize {
    let mut n = 0;
    while let Ok(Ok(_)) = tokio::time::timeout(Duration::from_millis(50), l.accept()).await {
        n += 1;
    }
    n
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_http_url_is_refused_naming_spec_url_before_any_connection() {
    let e = estate("http", FORTIGATE).await;
    let (addr, l) = listener().await;
    std::fs::write(
        e.dir.join("fortigate.yaml"),
        FORTIGATE.replace("https://127.0.0.1:18443", &format!("http://{addr}")),
    )
    .expect("write");
    // plan and apply refuse it while loading the manifests, as the API server would.
    for command in ["plan", "apply"] {
        let out = e.run(&[command], &[]).await;
        assert_eq!(out.status.code(), Some(1));
        let said = stderr(&out);
        assert!(
            said.contains(&format!(
                "spec.url: Invalid value: \"http://{addr}\": spec.url must be an https:// URL"
            )),
            "{said}"
        );
    }
    let doctor = e.run(&["doctor"], &[]).await;
    assert_eq!(doctor.status.code(), Some(2), "bad arguments");
    assert!(
        stderr(&doctor).contains("spec.url: Invalid value: \"http://"),
        "{}",
        stderr(&doctor)
    );

    let token = e.secrets.join("token");
    std::fs::write(&token, "some-key").expect("token");
    let flags = tokio::task::spawn_blocking(move || {
        Command::new(env!("CARGO_BIN_EXE_fortisync"))
            .args(["doctor", "--url", &format!("http://{addr}"), "--token-file"])
            .arg(&token)
            .output()
            .expect("run")
    })
    .await
    .expect("join");
    assert_eq!(flags.status.code(), Some(2));
    assert!(
        stderr(&flags).contains(&format!("--url: \"http://{addr}\" is a plain http:// URL")),
        "{}",
        stderr(&flags)
    );
    assert_eq!(
        connections(&l).await,
        0,
        "nothing reached the http:// address"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn insecure_skip_verify_is_said_in_plan_and_doctor_output() {
    let insecure = FORTIGATE.replace("  tls:\n", "  tls:\n    insecureSkipVerify: true\n");
    let e = estate("insecure", &insecure).await;
    const LINE: &str =
        "TLS verification is OFF for FortiGate default/fw-edge-1 (spec.tls.insecureSkipVerify)";
    let plan = e.run(&["plan"], &[]).await;
    assert_eq!(plan.status.code(), Some(2), "{}", stdout(&plan));
    assert_eq!(
        stdout(&plan).matches(LINE).count(),
        1,
        "once per connection: {}",
        stdout(&plan)
    );
    let json = e.run(&["plan", "-o", "json"], &[]).await;
    let doc: serde_json::Value = serde_json::from_slice(&json.stdout).expect("JSON");
    assert_eq!(doc["warnings"], serde_json::json!([LINE]));
    let doctor = e.run(&["doctor"], &[]).await;
    assert!(
        stdout(&doctor).starts_with(
            "TLS verification is OFF for default/fw-edge-1 (spec.tls.insecureSkipVerify)\n"
        ),
        "{}",
        stdout(&doctor)
    );
    let secure = estate("secure", FORTIGATE).await;
    let plan = secure.run(&["plan"], &[]).await;
    assert!(!stdout(&plan).contains("TLS verification is OFF"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rust_log_is_honoured_on_stderr_and_the_default_is_quiet() {
    let e = estate("rust-log", &wrong_key()).await;
    let quiet = e.run(&["plan", "--retry-refused-key"], &[]).await;
    assert_eq!(quiet.status.code(), Some(1));
    assert!(
        !stderr(&quiet).contains("credential refused"),
        "{}",
        stderr(&quiet)
    );
    let logged = e
        .run(
            &["plan", "-o", "json", "--retry-refused-key"],
            &[("RUST_LOG", "fortisync=warn")],
        )
        .await;
    assert!(
        stderr(&logged).contains("credential refused; frozen until the Secret changes"),
        "{}",
        stderr(&logged)
    );
    let doc: serde_json::Value =
        serde_json::from_slice(&logged.stdout).expect("stdout is still only the JSON report");
    assert_eq!(doc["failures"], 2);
}

/// A TLS server presenting `cert` (answers any request with an empty 200).
async fn tls_server(cert: &rcgen::Certificate, key: &rcgen::KeyPair) -> std::net::SocketAddr {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let key = rustls::pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into());
    let mut config = rustls::ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(vec![cert.der().clone()], key)
        .expect("server config");
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let (addr, l) = listener().await;
    tokio::spawn(async move {
        while let Ok((tcp, _)) = l.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                use tokio::io::{AsyncReadExt, AsyncWriteExt};
                if let Ok(mut tls) = acceptor.accept(tcp).await {
                    let mut buf = [0u8; 4096];
                    let _ = tls.read(&mut buf).await;
                    let _ = tls
                        .write_all(
                            b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
                        )
                        .await;
                    let _ = tls.shutdown().await;
                }
            });
        }
    });
    addr
}

fn target(url: String, ca: String, credentials: Credentials) -> Target {
    Target {
        endpoint: EndpointConfig {
            kind: DeviceKind::FortiGate,
            name: "test/device".into(),
            url,
            scope: "root".into(),
            credentials,
            transport: TransportConfig {
                ca_bundle_pem: Some(ca),
                insecure_skip_verify: false,
                source_address: None,
                timeout: Duration::from_secs(5),
            },
            max_concurrent: 1,
            lockout: LockoutPolicy::default(),
            lock_retries: 0,
        },
        admin_user: None,
        feeds: Vec::new(),
        users: Vec::new(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ca_certificate_presented_as_the_device_certificate_is_explained() {
    let mut params = rcgen::CertificateParams::new(vec!["127.0.0.1".to_string()]).expect("params");
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let key = rcgen::KeyPair::generate().expect("key");
    let cert = params.self_signed(&key).expect("cert");
    let addr = tls_server(&cert, &key).await;
    let report = diagnose(&target(
        format!("https://{addr}"),
        cert.pem(),
        Credentials::Token("k".into()),
    ))
    .await;
    let tls = report
        .steps
        .iter()
        .find(|s| s.id == "tls")
        .expect("tls step");
    assert_eq!(tls.status, Status::Fail);
    assert_eq!(tls.reason.as_deref(), Some("Tls"));
    assert!(
        tls.detail
            .contains("the device presents a CA certificate (CA:TRUE) as its own certificate"),
        "{}",
        tls.detail
    );
    assert!(!tls.detail.contains("causedasendentity"), "{}", tls.detail);
    assert!(
        tls.remedy.as_deref().is_some_and(|r| r.starts_with(
            "give fortisync the CA that signed it, or regenerate the device certificate without CA:TRUE"
        )),
        "{:?}",
        tls.remedy
    );
    let auth = report.steps.iter().find(|s| s.id == "auth").expect("auth");
    assert_eq!(auth.status, Status::Skip, "no credential sent");
}

const FMG: &str = r#"
fortimanagers:
  - name: fmg
    version: "7.4.3"
    adoms:
      - {name: root, os_version: "7.4", workspace_mode: normal}
    admins:
      - {userid: operator, password: operator-pw, rpc_permit: read-write, profile: Super_User, trusthosts: [[127.0.0.0, 255.255.255.0]]}
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_fortimanager_password_is_called_a_password() {
    let sim = Simulator::start(Scenario::from_yaml(FMG).expect("scenario"))
        .await
        .expect("simulator");
    let fmg = sim.fortimanager("fmg");
    let mut t = target(
        fmg.url().to_string(),
        fmg.ca_pem().expect("ca").to_string(),
        Credentials::Password {
            user: "operator".into(),
            password: "not-the-password".into(),
        },
    );
    t.endpoint.kind = DeviceKind::FortiManager;
    let report = diagnose(&t).await;
    let auth = report.steps.iter().find(|s| s.id == "auth").expect("auth");
    assert_eq!(auth.status, Status::Fail);
    assert_eq!(auth.reason.as_deref(), Some("Unauthorized"));
    assert!(
        auth.detail.contains("the password is wrong"),
        "{}",
        auth.detail
    );
    let (cause, remedy) = (
        auth.cause.as_deref().unwrap_or_default(),
        auth.remedy.as_deref().unwrap_or_default(),
    );
    assert!(cause.contains("password"), "{cause}");
    assert!(remedy.contains("password"), "{remedy}");
    for text in [&auth.detail[..], cause, remedy] {
        assert!(!text.contains("API key"), "{text}");
        assert!(!text.contains("regenerate the key"), "{text}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plan_calls_a_refused_password_a_password() {
    let by_password = FORTIGATE
        .replace(
            GOOD_KEY,
            "username: admin\n  password: not-the-admin-password",
        )
        .replace(
            "    tokenKey: token",
            "    usernameKey: username\n    passwordKey: password",
        );
    let e = estate("password", &by_password).await;
    let out = e.run(&["plan"], &[]).await;
    assert_eq!(out.status.code(), Some(1));
    let said = stdout(&out);
    assert!(said.contains("! Unauthorized:"), "{said}");
    assert!(
        said.contains("the password (or the user name) is wrong"),
        "{said}"
    );
    assert!(
        said.contains("this password was refused by default/fw-edge-1"),
        "{said}"
    );
    assert!(
        said.contains("remedy: check the administrator's user name and password"),
        "{said}"
    );
    assert!(!said.contains("API key"), "{said}");
    assert!(!said.contains("regenerate the key"), "{said}");
    assert_eq!(e.failed_logins(), 1);
}
