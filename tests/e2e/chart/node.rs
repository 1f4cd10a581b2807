//! The chart where it matters: Pods running on a real node (support/node.rs), from the image
//! `scripts/image` builds out of the test binary. `helm install --wait` → the Pod is Ready,
//! holds the Lease and converges an AddressGroup on the simulator (hostNetwork, loopback only),
//! `/metrics` answers; `helm upgrade` to a new image tag and `kubectl delete pod` each replace
//! the Pod, and the new one takes the Lease and converges without writing to the device again;
//! `helm uninstall` removes the Pod and leaves the resource and the device's group alone.

use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use fortisync::sim::fortios::FortiGateHandle;

use crate::support::control_plane::ControlPlane;
use crate::support::fixture::{
    KEY, fortigate, fortigate_sim, group, member, members_of, secret_in, wait_for,
};
use crate::support::node::Node;

const RELEASE_NS: &str = "fortisync";

fn helm_on(cp: &ControlPlane, args: &[&str]) -> Output {
    Command::new(cp.bin.join("helm"))
        .args(args)
        .arg(format!("--kubeconfig={}", cp.kubeconfig().display()))
        .output()
        .expect("run helm")
}

/// `scripts/image` on the test binary, tagged `fortisync:<tag>`, imported into the node.
fn image(cp: &ControlPlane, node: &Node, tag: &str) -> String {
    let out_file = cp.dir.join(format!("fortisync-{tag}.tar"));
    let out = Command::new(Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/image"))
        .args(["--binary", env!("CARGO_BIN_EXE_fortisync"), "--tag"])
        .arg(format!("fortisync:{tag}"))
        .arg("--out")
        .arg(&out_file)
        .output()
        .expect("scripts/image");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    node.import(&out_file);
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn device_writes(fg: &FortiGateHandle) -> Vec<String> {
    fg.requests()
        .iter()
        .filter(|r| r.method != "GET")
        .map(|r| format!("{} {}", r.method, r.path))
        .collect()
}

fn get(cp: &ControlPlane, args: &[&str]) -> String {
    String::from_utf8_lossy(&cp.kubectl(args).stdout)
        .trim()
        .to_string()
}

/// The names of the release's Pods that are Ready.
fn ready_pods(cp: &ControlPlane) -> Vec<String> {
    let out = get(
        cp,
        &[
            "get",
            "pods",
            "-n",
            RELEASE_NS,
            "-l",
            "app.kubernetes.io/instance=fs",
            "-o",
            "jsonpath={range .items[*]}{.metadata.name} {.status.conditions[?(@.type==\"Ready\")].status}{\"\\n\"}{end}",
        ],
    );
    out.lines()
        .filter_map(|l| l.strip_suffix(" True").map(str::to_string))
        .collect()
}

fn lease_holder(cp: &ControlPlane) -> String {
    get(
        cp,
        &[
            "get",
            "lease",
            "fortisync-controller",
            "-n",
            RELEASE_NS,
            "-o",
            "jsonpath={.spec.holderIdentity}",
        ],
    )
}

/// AddressGroup reconciles that succeeded, from the running Pod's `/metrics`.
async fn successful_group_reconciles(admin: &str) -> Option<u64> {
    let body = reqwest::get(format!("http://{admin}/metrics"))
        .await
        .ok()?
        .text()
        .await
        .ok()?;
    body.lines()
        .find(|l| {
            l.starts_with("controller_runtime_reconcile_total{")
                && l.contains("controller=\"addressgroup\"")
                && l.contains("result=\"success\"")
        })
        .and_then(|l| l.rsplit(' ').next()?.parse().ok())
}

/// VmRSS of the controller process in the node's container (`/usr/local/bin/fortisync run`),
/// in KiB.
fn controller_rss_kib() -> Option<u64> {
    std::fs::read_dir("/proc")
        .ok()?
        .flatten()
        .find_map(|entry| {
            let cmdline = std::fs::read(entry.path().join("cmdline")).ok()?;
            if !cmdline.starts_with(b"/usr/local/bin/fortisync\0run\0") {
                return None;
            }
            let status = std::fs::read_to_string(entry.path().join("status")).ok()?;
            let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
            line.split_whitespace().nth(1)?.parse().ok()
        })
}

/// Waits for one Ready Pod other than `old` that holds the Lease and has reconciled the
/// AddressGroup; returns its name.
async fn replacement_converges(cp: &ControlPlane, old: &str, admin: &str, what: &str) -> String {
    wait_for(what, Duration::from_secs(120), || async {
        let pods = tokio::task::block_in_place(|| ready_pods(cp));
        let [pod] = pods.as_slice() else { return None };
        if pod == old || tokio::task::block_in_place(|| lease_holder(cp)) != *pod {
            return None;
        }
        (successful_group_reconciles(admin).await? >= 1).then(|| pod.clone())
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chart_on_a_real_node_is_ready_leads_converges_survives_upgrade_and_pod_deletion_and_uninstalls()
 {
    let cp = ControlPlane::private("node");
    let node = tokio::task::block_in_place(|| Node::start(&cp));
    let built = tokio::task::block_in_place(|| image(&cp, &node, "e2e-1"));
    eprintln!("e2e: {built}");
    let sim = fortigate_sim("").await;
    let fg = sim.fortigate("fw");

    let admin_port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port();
    let admin = format!("127.0.0.1:{admin_port}");
    let api_port = cp.url.rsplit(':').next().expect("port").to_string();
    let chart = super::chart_dir();
    // No kube-proxy here: the Pod reaches the apiserver at its loopback address (explicit env
    // wins over what kubelet injects). One replica: two on one node's network would clash.
    let values = [
        "--set",
        "image.repository=fortisync",
        "--set",
        "image.pullPolicy=Never",
        "--set",
        "replicaCount=1",
        "--set",
        "hostNetwork=true",
        "--set",
        &format!("admin.address={admin}"),
        "--set",
        "edl.enabled=false",
        "--set",
        "logFormat=json",
        "--set",
        "extraEnv[0].name=KUBERNETES_SERVICE_HOST",
        "--set",
        "extraEnv[0].value=127.0.0.1",
        "--set",
        "extraEnv[1].name=KUBERNETES_SERVICE_PORT",
        "--set-string",
        &format!("extraEnv[1].value={api_port}"),
    ];
    let started = Instant::now();
    let mut install = vec![
        "install",
        "fs",
        chart.to_str().expect("path"),
        "--namespace",
        RELEASE_NS,
        "--create-namespace",
        "--wait",
        "--timeout=180s",
        "--set",
        "image.tag=e2e-1",
    ];
    install.extend(values);
    let out = tokio::task::block_in_place(|| helm_on(&cp, &install));
    assert!(
        out.status.success(),
        "helm install --wait: {}\nkubelet:\n{}",
        String::from_utf8_lossy(&out.stderr),
        node.log_tail("kubelet")
    );
    let installed_in = started.elapsed();
    let pods = tokio::task::block_in_place(|| ready_pods(&cp));
    assert_eq!(pods.len(), 1, "{pods:?}");
    let first = pods[0].clone();
    let timing = tokio::task::block_in_place(|| {
        get(
            &cp,
            &[
                "get",
                "pod",
                &first,
                "-n",
                RELEASE_NS,
                "-o",
                "jsonpath={.status.containerStatuses[0].state.running.startedAt} {.status.conditions[?(@.type==\"Ready\")].lastTransitionTime}",
            ],
        )
    });
    eprintln!(
        "e2e: helm install --wait took {installed_in:.1?}; container started, Ready at: {timing}"
    );
    assert_eq!(
        tokio::task::block_in_place(|| get(
            &cp,
            &[
                "get",
                "pod",
                &first,
                "-n",
                RELEASE_NS,
                "-o",
                "jsonpath={.spec.containers[0].image} {.spec.securityContext.runAsUser} {.spec.hostNetwork}"
            ]
        )),
        "fortisync:e2e-1 65532 true"
    );
    // Start-up as the container saw it: its first log line to "ready" (every watch listed).
    let log = node.pod_log(RELEASE_NS, &first);
    let stamp = |line: &str| {
        line.split(' ')
            .next()
            .and_then(|t| t.parse::<jiff::Timestamp>().ok())
    };
    let first_line = log
        .lines()
        .next()
        .and_then(stamp)
        .expect("a first log line");
    let ready_line = log
        .lines()
        .find(|l| l.contains("every watch has listed its resources: ready"))
        .and_then(stamp)
        .expect("the ready line");
    eprintln!(
        "e2e: controller start-up in the Pod (first log line to ready): {} ms",
        ready_line.duration_since(first_line).as_millis()
    );
    wait_for(
        "the Pod holds the Lease",
        Duration::from_secs(60),
        || async { (tokio::task::block_in_place(|| lease_holder(&cp)) == first).then_some(()) },
    )
    .await;

    // A FortiGate and an AddressGroup: the Pod converges the device.
    let ns = cp.namespace("node-app");
    secret_in(&cp, &ns, "fw-token", KEY, fg.ca_pem().expect("ca")).await;
    assert!(cp.apply(&ns, &fortigate(fg.url(), "1h", "")).0);
    let (ok, err) = cp.apply(
        &ns,
        &group(
            ("FortiGate", "fw"),
            "",
            &[member("192.0.2.10"), member("198.51.100.0/28")],
        ),
    );
    assert!(ok, "{err}");
    wait_for(
        "the group on the device",
        Duration::from_secs(60),
        || async { (members_of(fg) == ["fs_192.0.2.10", "fs_198.51.100.0_28"]).then_some(()) },
    )
    .await;
    let ready = wait_for("AddressGroup Ready", Duration::from_secs(30), || async {
        let s = tokio::task::block_in_place(|| {
            get(
                &cp,
                &["get", "addressgroup", "admins", "-n", &ns, "-o", "jsonpath={.status.conditions[?(@.type==\"Ready\")].status} {.status.conditions[?(@.type==\"Ready\")].reason}"],
            )
        });
        (s == "True Converged").then_some(s)
    })
    .await;
    assert_eq!(ready, "True Converged");
    let reconciled = wait_for("/metrics of the Pod", Duration::from_secs(30), || {
        successful_group_reconciles(&admin)
    })
    .await;
    assert!(reconciled >= 1);
    let writes = device_writes(fg);
    assert!(!writes.is_empty());
    eprintln!(
        "e2e: converged {:.1?} after install; controller RSS {} KiB (debug build)",
        started.elapsed(),
        controller_rss_kib().unwrap_or_default()
    );

    // A new image tag rolls the Pod; the new one converges with no further device write.
    tokio::task::block_in_place(|| image(&cp, &node, "e2e-2"));
    let mut upgrade = vec![
        "upgrade",
        "fs",
        chart.to_str().expect("path"),
        "--namespace",
        RELEASE_NS,
        "--wait",
        "--timeout=180s",
        "--set",
        "image.tag=e2e-2",
    ];
    upgrade.extend(values);
    let out = tokio::task::block_in_place(|| helm_on(&cp, &upgrade));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rolled = Instant::now();
    let second = replacement_converges(&cp, &first, &admin, "the upgraded Pod converges").await;
    eprintln!(
        "e2e: upgraded Pod leads and converged in {:.1?}",
        rolled.elapsed()
    );
    assert_eq!(
        tokio::task::block_in_place(|| get(
            &cp,
            &[
                "get",
                "pod",
                &second,
                "-n",
                RELEASE_NS,
                "-o",
                "jsonpath={.spec.containers[0].image}"
            ]
        )),
        "fortisync:e2e-2"
    );
    assert_eq!(
        device_writes(fg),
        writes,
        "no duplicate write after the upgrade"
    );

    // A deleted Pod is replaced, and the replacement converges without writing either.
    tokio::task::block_in_place(|| {
        cp.kubectl_ok(&["delete", "pod", &second, "-n", RELEASE_NS, "--wait=false"])
    });
    let deleted = Instant::now();
    wait_for("the deleted Pod gone", Duration::from_secs(90), || async {
        let out =
            tokio::task::block_in_place(|| cp.kubectl(&["get", "pod", &second, "-n", RELEASE_NS]));
        (!out.status.success()).then_some(())
    })
    .await;
    eprintln!(
        "e2e: the deleted Pod was gone after {:.1?}",
        deleted.elapsed()
    );
    replacement_converges(&cp, &second, &admin, "the replacement Pod converges").await;
    eprintln!(
        "e2e: replacement Pod leads and converged in {:.1?}",
        deleted.elapsed()
    );
    assert_eq!(
        device_writes(fg),
        writes,
        "no duplicate write after the deletion"
    );

    let out = tokio::task::block_in_place(|| {
        helm_on(
            &cp,
            &["uninstall", "fs", "--namespace", RELEASE_NS, "--wait"],
        )
    });
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    wait_for("the Pods gone", Duration::from_secs(60), || async {
        let pods = tokio::task::block_in_place(|| {
            get(&cp, &["get", "pods", "-n", RELEASE_NS, "-o", "name"])
        });
        pods.is_empty().then_some(())
    })
    .await;
    // The resource and the device's group stay.
    assert_eq!(
        tokio::task::block_in_place(|| get(
            &cp,
            &["get", "addressgroup", "admins", "-n", &ns, "-o", "name"]
        )),
        "addressgroup.fortisync.dev/admins"
    );
    assert_eq!(members_of(fg), ["fs_192.0.2.10", "fs_198.51.100.0_28"]);
    assert_eq!(device_writes(fg), writes);
    drop(node);
}
