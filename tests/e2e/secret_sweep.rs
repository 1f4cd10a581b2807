//! Secret hygiene across everything at once: every kind (FortiGate, FortiManager,
//! AddressGroup, ExternalConnector as a Feed, TrustedHost) and every credential type (an API
//! key the device accepts, one it refuses, one rotated in the Secret, a FortiManager password,
//! the EDL's basic-auth password), with `fortisync run` logging at trace. Each secret is a
//! unique canary (support/canary.rs); none may show in an event, any kind's status,
//! `/metrics`, the log, a URL either device (or the feed poller) received, or the output of
//! `fortisync plan` and `fortisync doctor` run against the same simulator. The RunProcess hook
//! that searches every controller log is itself shown to catch a leak.

use std::net::TcpListener;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use fortisync::api::{ExternalConnector, FortiGate, FortiManager, TrustedHost};
use fortisync::sim::{Scenario, Simulator};
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::api::events::v1::Event;
use kube::Api;
use kube::api::{ListParams, Patch, PatchParams};
use serde_json::json;

use crate::support::canary;
use crate::support::control_plane;
use crate::support::fixture::{condition, group_named, member, secret, wait_for};
use crate::support::run::{RunOptions, RunProcess};

const WAIT: Duration = Duration::from_secs(40);

/// A unique string: if it shows anywhere but its Secret, it leaked from there.
fn canary(what: &str) -> String {
    let value = format!("canary{what}{:016x}", rand::random::<u64>());
    canary::register(&value);
    value
}

/// The secrets of this test, one per credential type.
struct Canaries {
    accepted: String,
    refused: String,
    rotated_old: String,
    rotated_new: String,
    fmg_password: String,
    edl_password: String,
}

impl Canaries {
    fn new() -> Self {
        Self {
            accepted: canary("accepted"),
            refused: canary("refused"),
            rotated_old: canary("rotatedold"),
            rotated_new: canary("rotatednew"),
            fmg_password: canary("fmgpassword"),
            edl_password: canary("edlpassword"),
        }
    }

    fn all(&self) -> [&str; 6] {
        [
            &self.accepted,
            &self.refused,
            &self.rotated_old,
            &self.rotated_new,
            &self.fmg_password,
            &self.edl_password,
        ]
    }
}

/// `fw` accepts `accepted`, `fw2` a key no Secret holds, `fw3` the rotated key's new value;
/// the FortiManager `fmg` logs `fortisync` in with `fmg_password` and has an admin `alice`
/// whose slots 1-9 (and IPv6 slot 1) are already set, so a TrustedHost may open slot 10.
async fn simulator(c: &Canaries) -> Simulator {
    let fortigate = |name: &str, serial: &str, key: &str, feeds: &str| {
        format!(
            "  - name: {name}\n    version: \"7.4.3\"\n    serial: {serial}\n{feeds}    api_users: [{{name: fortisync, key: {key}, trusthosts: [\"127.0.0.0/8\"]}}]\n"
        )
    };
    let seeded = "[127.0.0.1, 255.255.255.255], ".repeat(9);
    let yaml = format!(
        "fortigates:\n{}{}{}fortimanagers:\n  - name: fmg\n    admins:\n      - {{userid: fortisync, password: {}, rpc_permit: read-write, profile: Super_User, trusthosts: [[127.0.0.1, 255.255.255.255]]}}\n      - {{userid: alice, password: alice-pw, profile: Standard_User, trusthosts6: [\"::1/128\"], trusthosts: [{}]}}\n",
        fortigate(
            "fw",
            "FGT60FTK2E2E0001",
            &c.accepted,
            "    feeds: {minute_ms: 1000}\n"
        ),
        fortigate(
            "fw2",
            "FGT60FTK2E2E0002",
            "e2e-sweep-key-nobody-has-000000",
            ""
        ),
        fortigate("fw3", "FGT60FTK2E2E0003", &c.rotated_new, ""),
        c.fmg_password,
        seeded.trim_end_matches(", ")
    );
    Simulator::start(Scenario::from_yaml(&yaml).expect("scenario"))
        .await
        .expect("simulator")
}

/// A connection `kind`/`name` on `url` reading the Secret `secret` (`credentials` is its
/// `credentialsSecretRef` keys).
fn connection(kind: &str, name: &str, url: &str, secret: &str, credentials: &str) -> String {
    let adom = if kind == "FortiManager" {
        "  adom: root\n"
    } else {
        ""
    };
    format!(
        "apiVersion: fortisync.dev/v1alpha1\nkind: {kind}\nmetadata: {{name: {name}}}\nspec:\n  url: {url}\n  credentialsSecretRef: {{name: {secret}, {credentials}}}\n  tls: {{caBundleSecretRef: {{name: {secret}, key: ca.crt}}}}\n  resyncInterval: 10s\n{adom}"
    )
}

/// The Secret `name` with `data` (key, value) pairs and the CA, as a manifest.
fn secret_manifest(name: &str, data: &[(&str, &str)], ca: &str) -> String {
    let mut string_data: serde_json::Map<String, serde_json::Value> = data
        .iter()
        .map(|(k, v)| (k.to_string(), json!(v)))
        .collect();
    string_data.insert("ca.crt".into(), json!(ca));
    json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name}, "stringData": string_data})
        .to_string()
}

/// Waits until the `K` named `name` has condition `type_` at `status` with `reason`, on its
/// current generation.
async fn condition_of<K>(ns: &str, name: &str, type_: &str, status: &str, reason: &str)
where
    K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>
        + Clone
        + serde::de::DeserializeOwned
        + serde::Serialize
        + std::fmt::Debug,
{
    let api: Api<K> = Api::namespaced(control_plane().client(), ns);
    wait_for(
        &format!("{name} {type_}={status} {reason}"),
        WAIT,
        || async {
            let object = serde_json::to_value(api.get(name).await.ok()?).ok()?;
            let conditions: Vec<k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition> =
                serde_json::from_value(object["status"]["conditions"].clone()).ok()?;
            (object["status"]["observedGeneration"] == object["metadata"]["generation"]
                && condition(&conditions, type_) == Some((status.into(), reason.into())))
            .then_some(())
        },
    )
    .await
}

/// Runs the fortisync CLI with fortisync's logs at trace; stdout and stderr together.
fn cli(args: &[&str], state: &Path) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_fortisync"))
        .args(args)
        .env("RUST_LOG", "trace")
        .env("FORTISYNC_STATE_FILE", state)
        .output()
        .expect("run fortisync");
    format!(
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_secret_of_any_kind_or_credential_type_shows_in_any_output_at_trace() {
    let cp = control_plane();
    cp.install_crds();
    let ns = cp.namespace("secret-sweep");
    let c = Canaries::new();
    let sim = simulator(&c).await;
    let (fw, fw2, fw3) = (
        sim.fortigate("fw"),
        sim.fortigate("fw2"),
        sim.fortigate("fw3"),
    );
    let fmg = sim.fortimanager("fmg");
    secret(&ns, "fw-token", &c.accepted, fw.ca_pem().expect("ca")).await;
    secret(&ns, "fw2-token", &c.refused, fw2.ca_pem().expect("ca")).await;
    secret(&ns, "fw3-token", &c.rotated_old, fw3.ca_pem().expect("ca")).await;
    let fmg_secret = secret_manifest(
        "fmg-login",
        &[("username", "fortisync"), ("password", &c.fmg_password)],
        fmg.ca_pem().expect("ca"),
    );
    let edl_secret = format!(
        "apiVersion: v1\nkind: Secret\nmetadata: {{name: feed-auth}}\nstringData: {{username: fortigate, password: {}}}\n",
        c.edl_password
    );
    let edl = format!("127.0.0.1:{}", free_port());
    let edl_base = format!("--edl-base-url=http://{edl}");
    let edl_address = format!("--edl-address={edl}");
    let controller = RunProcess::start_with(
        cp,
        &RunOptions {
            namespaces: &[&ns],
            lease_namespace: &ns,
            identity: "sweep",
            extra: &[&edl_address, &edl_base],
            kubeconfig: None,
            log_filter: "trace",
        },
    );
    let token = "tokenKey: token";
    let login = "usernameKey: username, passwordKey: password";
    let manifests = [
        fmg_secret.clone(),
        edl_secret,
        connection("FortiGate", "good", fw.url(), "fw-token", token),
        connection("FortiGate", "bad", fw2.url(), "fw2-token", token),
        connection("FortiGate", "rotated", fw3.url(), "fw3-token", token),
        connection("FortiManager", "fmg", fmg.url(), "fmg-login", login),
        group_named("admins", "allowed-admins", ("FortiGate", "good"), "", &[member("192.0.2.10")]),
        "apiVersion: fortisync.dev/v1alpha1\nkind: ExternalConnector\nmetadata: {name: blocklist}\nspec:\n  targetRef: {kind: FortiGate, name: good}\n  resourceName: fs-blocklist\n  mode: Feed\n  feed: {refreshRate: 60, credentialsSecretRef: {name: feed-auth}}\n  entries:\n  - {address: 192.0.2.1}\n".into(),
        "apiVersion: fortisync.dev/v1alpha1\nkind: TrustedHost\nmetadata: {name: alice}\nspec:\n  targetRef: {kind: FortiManager, name: fmg}\n  user: alice\n  address: 127.0.0.50\n".into(),
    ]
    .join("---\n");
    let (ok, err) = cp.apply(&ns, &manifests);
    assert!(ok, "{err}");

    condition_of::<FortiGate>(&ns, "good", "Ready", "True", "Connected").await;
    condition_of::<FortiGate>(&ns, "bad", "Ready", "False", "Unauthorized").await;
    condition_of::<FortiGate>(&ns, "rotated", "Ready", "False", "Unauthorized").await;
    condition_of::<FortiManager>(&ns, "fmg", "Ready", "True", "Connected").await;
    condition_of::<fortisync::api::AddressGroup>(&ns, "admins", "Ready", "True", "Converged").await;
    condition_of::<ExternalConnector>(&ns, "blocklist", "Ready", "True", "Converged").await;
    condition_of::<TrustedHost>(&ns, "alice", "Ready", "True", "Open").await;
    // The FortiGate pulled the list from the EDL with the password.
    wait_for("the feed pulled", WAIT, || async {
        (fw.feed_entries("root", "fs-blocklist") == ["192.0.2.1"]).then_some(())
    })
    .await;
    // The key is rotated in the Secret (the device already has the new one): it connects.
    let secrets: Api<Secret> = Api::namespaced(cp.client(), &ns);
    secrets
        .patch(
            "fw3-token",
            &PatchParams::default(),
            &Patch::Merge(json!({"stringData": {"token": c.rotated_new}})),
        )
        .await
        .expect("rotate the key");
    wait_for("the rotated key accepted", WAIT, || async {
        let api: Api<FortiGate> = Api::namespaced(cp.client(), &ns);
        let s = api.get("rotated").await.ok()?.status?;
        (condition(&s.conditions, "Ready") == Some(("True".into(), "Connected".into())))
            .then_some(())
    })
    .await;

    // The CLI against the same simulator, from manifests holding the Secrets.
    let dir = cp.dir.join(format!("{ns}-cli"));
    std::fs::create_dir_all(&dir).expect("cli dir");
    let state = dir.join("refused-keys.json");
    let fw_secret = secret_manifest(
        "fw-token",
        &[("token", &c.accepted)],
        fw.ca_pem().expect("ca"),
    );
    let cli_manifests = [
        fw_secret,
        fmg_secret,
        connection("FortiGate", "good", fw.url(), "fw-token", token),
        connection("FortiManager", "fmg", fmg.url(), "fmg-login", login),
        group_named(
            "admins",
            "allowed-admins",
            ("FortiGate", "good"),
            "",
            &[member("192.0.2.11")],
        ),
    ]
    .join("\n---\n");
    std::fs::write(dir.join("estate.yaml"), cli_manifests).expect("write manifests");
    let files = dir.join("estate.yaml");
    let files = files.to_str().expect("utf-8 path");
    let plan = cli(&["plan", "-f", files, "-n", &ns], &state);
    assert!(
        plan.contains("192.0.2.11"),
        "the plan shows the change:\n{plan}"
    );
    let doctor_fw = cli(
        &[
            "doctor", "-f", files, "-n", &ns, "--name", "good", "--color", "never",
        ],
        &state,
    );
    assert!(doctor_fw.contains("authenticated read"), "{doctor_fw}");
    let doctor_fmg = cli(
        &[
            "doctor", "-f", files, "-n", &ns, "--name", "fmg", "--color", "never",
        ],
        &state,
    );
    assert!(
        doctor_fmg.contains("fortisync doctor: FortiManager"),
        "{doctor_fmg}"
    );

    // Every place a secret could leak to, as text.
    let events = Api::<Event>::namespaced(cp.client(), &ns)
        .list(&ListParams::default())
        .await
        .expect("events");
    assert!(!events.items.is_empty(), "the controller recorded events");
    let statuses = cp.kubectl_ok(&[
        "-n",
        &ns,
        "get",
        "fortigates.fortisync.dev,fortimanagers.fortisync.dev,addressgroups.fortisync.dev,externalconnectors.fortisync.dev,trustedhosts.fortisync.dev",
        "-o",
        "json",
    ]);
    for kind in [
        "FortiGate",
        "FortiManager",
        "AddressGroup",
        "ExternalConnector",
        "TrustedHost",
    ] {
        assert!(
            statuses.contains(&format!("\"kind\": \"{kind}\"")),
            "{kind} in {statuses}"
        );
    }
    let log = controller.log();
    assert!(log.contains("TRACE"), "the log is at trace");
    let metrics = controller.metrics().await;
    assert!(
        metrics.contains("fortisync_device_requests_total"),
        "{metrics}"
    );
    let mut urls: String = [fw, fw2, fw3]
        .iter()
        .flat_map(|fg| fg.requests())
        .map(|r| format!("{} {}?{}\n", r.method, r.path, r.query_names.join("&")))
        .collect();
    urls.extend(
        fmg.control()
            .requests()
            .iter()
            .map(|r| format!("{} {}\n", r.method, r.url)),
    );
    urls.extend(
        fw.feed_polls("root", "fs-blocklist")
            .iter()
            .map(|p| format!("{} {:?}\n", p.url, p.username)),
    );
    assert!(
        fw.feed_polls("root", "fs-blocklist")
            .iter()
            .any(|p| p.username.as_deref() == Some("fortigate") && p.http_status == Some(200)),
        "the feed pulled with basic auth"
    );
    assert_eq!(
        fw2.requests().iter().filter(|r| r.auth_failed).count(),
        1,
        "the refused key was tried once: {:?}",
        fw2.requests()
    );
    // Each request names its sender: the replica (its identity), or the CLI (no identity).
    let cli_agent = format!("fortisync/{}", env!("CARGO_PKG_VERSION"));
    let run_agent = crate::support::device_log::agent_of("sweep");
    let mut agents: Vec<Option<String>> = fw.requests().into_iter().map(|r| r.user_agent).collect();
    agents.extend(fmg.control().requests().into_iter().map(|r| r.user_agent));
    agents.sort();
    agents.dedup();
    assert_eq!(agents, [Some(cli_agent), Some(run_agent)]);
    let places = [
        (
            "events",
            serde_json::to_string(&events.items).expect("events"),
        ),
        ("statuses", statuses),
        ("controller log", log),
        ("/metrics", metrics),
        ("device URLs", urls),
        ("plan output", plan),
        ("doctor output (FortiGate)", doctor_fw),
        ("doctor output (FortiManager)", doctor_fmg),
    ];
    for (place, text) in &places {
        canary::assert_clean(place, text);
    }
    // The canaries are registered and findable where they belong, so the search could find them.
    let registered = canary::registered();
    for value in c.all() {
        assert!(
            registered.iter().any(|r| r == value),
            "{} registered",
            canary::mask(value)
        );
    }
    let fw3_token = secrets.get("fw3-token").await.expect("secret");
    assert_eq!(
        fortisync::reconcile::connection::secret_value(&fw3_token, "token").as_deref(),
        Some(c.rotated_new.as_str())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_run_process_hook_fails_a_test_whose_controller_logged_a_registered_secret() {
    let cp = control_plane();
    cp.install_crds();
    let ns = cp.namespace("canary-hook");
    // The identity is logged (standby, then took the Lease), so registering it plays a leak.
    let leaked = format!("hookcanary{:016x}", rand::random::<u64>());
    let run = RunProcess::start(cp, &ns, &leaked, &[]);
    let logged = tokio::time::timeout(WAIT, async {
        while !run.log().contains(&leaked) {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await;
    assert!(logged.is_ok(), "the identity never logged:\n{}", run.log());
    canary::register(&leaked);
    let report = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| drop(run)))
        .expect_err("the hook fails the test");
    let report = report.downcast_ref::<String>().cloned().unwrap_or_default();
    assert!(
        report.contains(
            "the_run_process_hook_fails_a_test_whose_controller_logged_a_registered_secret"
        ) && report.contains(&canary::mask(&leaked))
            && report.contains("standby: caches warm"),
        "the report names the test, the line and the masked secret: {report}"
    );
    assert!(
        !report.contains(&leaked),
        "the report itself leaks: {report}"
    );
}
