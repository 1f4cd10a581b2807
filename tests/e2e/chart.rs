//! The Helm chart lints, installs on the real apiserver, and its RBAC is least privilege, proven
//! with the real authorizer through impersonation (`kubectl auth can-i --as`, `kubectl get
//! --as`): cluster-wide by default, only in the watched namespaces when `watchNamespaces` is set.
//! The NetworkPolicy is in `network_policy`.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::support::control_plane;

mod lifecycle;
mod network_policy;
mod node;

pub fn chart_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("charts/fortisync")
}

/// The harness's `helm` against the test control plane.
pub fn helm(args: &[&str]) -> Output {
    let cp = control_plane();
    Command::new(cp.bin.join("helm"))
        .args(args)
        .arg(format!("--kubeconfig={}", cp.kubeconfig().display()))
        .output()
        .expect("run helm (built by scripts/control-plane)")
}

/// `helm template RELEASE` into `namespace` with `--set` values (`key=value` each) and any
/// further helm flags.
pub fn helm_template(release: &str, namespace: &str, sets: &[&str], flags: &[&str]) -> String {
    let chart = chart_dir();
    let mut args = vec![
        "template",
        release,
        chart.to_str().expect("utf-8 path"),
        "--namespace",
        namespace,
    ];
    for set in sets {
        args.extend(["--set", set]);
    }
    args.extend(flags);
    let out = helm(&args);
    assert!(
        out.status.success(),
        "helm template {sets:?} {flags:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8 manifests")
}

/// Renders the chart as `release` in `namespace` and applies it. Without the CRDs: the shared
/// control plane's come from the types (`install_crds`) and serve every test at once.
pub fn install(release: &str, namespace: &str, sets: &[&str]) -> String {
    let cp = control_plane();
    let sets: Vec<&str> = ["crds.install=false"]
        .into_iter()
        .chain(sets.iter().copied())
        .collect();
    let manifests = helm_template(release, namespace, &sets, &[]);
    let file = cp.dir.join(format!("chart-{release}-{namespace}.yaml"));
    std::fs::write(&file, &manifests).expect("write manifests");
    cp.kubectl_ok(&["apply", "-f", file.to_str().expect("path")]);
    manifests
}

/// The user name of the chart's ServiceAccount `<release>-fortisync` in `namespace`.
pub fn service_account(release: &str, namespace: &str) -> String {
    format!("system:serviceaccount:{namespace}:{release}-fortisync")
}

/// `kubectl auth can-i VERB RESOURCE[/NAME] --as USER`, in `namespace` or (None) in every
/// namespace. `resource` may carry a subresource as `kind/status`; `name` an object name.
pub fn can_i(user: &str, verb: &str, resource: &str, name: &str, namespace: Option<&str>) -> bool {
    let cp = control_plane();
    // can-i reads the part after '/' as an object name; subresources go in a flag.
    let (resource, subresource) = resource.split_once('/').unwrap_or((resource, ""));
    let target = if name.is_empty() {
        resource.to_string()
    } else {
        format!("{resource}/{name}")
    };
    let subresource_flag = format!("--subresource={subresource}");
    let mut args = vec!["auth", "can-i", verb, &target, "--as", user];
    match namespace {
        Some(ns) => args.extend(["-n", ns]),
        None => args.push("--all-namespaces"),
    }
    if !subresource.is_empty() {
        args.push(&subresource_flag);
    }
    let out = cp.kubectl(&args);
    let answer = String::from_utf8_lossy(&out.stdout).trim().to_string();
    match answer.as_str() {
        "yes" => true,
        "no" => false,
        other => panic!(
            "kubectl {args:?}: unexpected answer {other:?} ({})",
            String::from_utf8_lossy(&out.stderr).trim()
        ),
    }
}

/// What the controller calls (src/reconcile/controller.rs, connection/, lifecycle.rs).
const ALLOWED: [(&str, &str); 17] = [
    ("list", "fortigates.fortisync.dev"),
    ("watch", "fortimanagers.fortisync.dev"),
    // The finalizer fortisync.dev/dependents on connections.
    ("patch", "fortigates.fortisync.dev"),
    ("patch", "fortimanagers.fortisync.dev"),
    ("get", "addressgroups.fortisync.dev"),
    // A deleted connection lists what still targets it.
    ("list", "addressgroups.fortisync.dev"),
    ("patch", "addressgroups.fortisync.dev"),
    ("patch", "addressgroups.fortisync.dev/status"),
    ("patch", "fortigates.fortisync.dev/status"),
    ("watch", "secrets"),
    ("get", "secrets"),
    ("create", "events.events.k8s.io"),
    ("watch", "externalconnectors.fortisync.dev"),
    ("patch", "externalconnectors.fortisync.dev"),
    ("patch", "externalconnectors.fortisync.dev/status"),
    // An ExternalConnector's entriesFrom: a metadata watch, then get by name.
    ("watch", "configmaps"),
    ("get", "configmaps"),
];

/// What it never needs, wherever it may read.
const DENIED: [(&str, &str); 17] = [
    ("create", "secrets"),
    ("update", "secrets"),
    ("patch", "secrets"),
    ("delete", "secrets"),
    ("patch", "configmaps"),
    ("delete", "externalconnectors.fortisync.dev"),
    ("delete", "addressgroups.fortisync.dev"),
    ("create", "addressgroups.fortisync.dev"),
    ("update", "fortigates.fortisync.dev"),
    ("delete", "fortigates.fortisync.dev"),
    ("get", "pods"),
    ("update", "addressgroups.fortisync.dev/status"),
    ("patch", "addressgroups.fortisync.dev/scale"),
    ("create", "deployments.apps"),
    ("get", "leases.coordination.k8s.io"),
    ("list", "events.events.k8s.io"),
    ("*", "*"),
];

/// The Lease: get/patch only the chart's one by name, create (not nameable) in the release
/// namespace, and nothing else anywhere.
fn assert_lease_rights(sa: &str, release_ns: &str, elsewhere: &str) {
    let lease = "leases.coordination.k8s.io";
    for verb in ["get", "patch"] {
        assert!(can_i(
            sa,
            verb,
            lease,
            "fortisync-controller",
            Some(release_ns)
        ));
        assert!(!can_i(sa, verb, lease, "someone-elses", Some(release_ns)));
        assert!(!can_i(
            sa,
            verb,
            lease,
            "fortisync-controller",
            Some(elsewhere)
        ));
    }
    assert!(can_i(sa, "create", lease, "", Some(release_ns)));
    assert!(!can_i(sa, "create", lease, "", Some(elsewhere)));
    for verb in ["update", "delete", "list", "watch"] {
        assert!(
            !can_i(sa, verb, lease, "", Some(release_ns)),
            "{verb} leases"
        );
    }
}

#[test]
fn chart_lints_strict_with_defaults_watch_namespaces_ingress_monitor_host_network_and_network_policy()
 {
    let chart = chart_dir();
    let chart = chart.to_str().expect("utf-8 path");
    let cases: [&[&str]; 4] = [
        &[],
        &["--set", "watchNamespaces={team-a,team-b}"],
        &[
            "--set",
            "edl.ingress.enabled=true,edl.ingress.host=edl.example.com",
            "--set",
            "metrics.serviceMonitor.enabled=true,hostNetwork=true,replicaCount=1",
            "--set",
            "prometheusRule.enabled=true,dashboards.enabled=true,dashboards.annotations.grafana_folder=Network",
            "--set",
            "image.digest=sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
        ],
        &[
            "--set",
            "networkPolicy.enabled=true",
            "--set",
            "networkPolicy.apiServer.cidrs={10.0.0.1/32}",
            "--set",
            "networkPolicy.devices[0].cidr=192.0.2.0/24",
        ],
    ];
    for sets in cases {
        let mut args = vec!["lint", "--strict", chart];
        args.extend(sets);
        let out = helm(&args);
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success() && stdout.contains("1 chart(s) linted, 0 chart(s) failed"),
            "helm lint --strict {sets:?}:\n{stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[test]
fn chart_without_watch_namespaces_grants_cluster_wide_and_least_privilege() {
    let cp = control_plane();
    // can-i resolves resource names through discovery, so the CRDs must be served first.
    cp.install_crds();
    let ns = cp.namespace("chart");
    let manifests = install("fs", &ns, &[]);
    assert!(manifests.contains("kind: ClusterRoleBinding"));
    let sa = service_account("fs", &ns);
    for (verb, resource) in ALLOWED {
        assert!(
            can_i(&sa, verb, resource, "", Some("default")),
            "{verb} {resource} must be allowed for {sa}"
        );
        assert!(
            can_i(&sa, verb, resource, "", None),
            "{verb} {resource} cluster-wide"
        );
    }
    for (verb, resource) in DENIED {
        assert!(
            !can_i(&sa, verb, resource, "", Some("default")),
            "{verb} {resource} must be denied"
        );
    }
    assert_lease_rights(&sa, &ns, "default");
}

#[test]
fn chart_with_watch_namespaces_grants_only_those_namespaces() {
    let cp = control_plane();
    cp.install_crds();
    let release_ns = cp.namespace("chart-rel");
    let (a, b, other) = (
        cp.namespace("chart-a"),
        cp.namespace("chart-b"),
        cp.namespace("chart-other"),
    );
    let watch = format!("watchNamespaces={{{a},{b}}}");
    let manifests = install("fsns", &release_ns, &[&watch]);
    // Cluster-wide, only the read-only DevicePolicy role: the namespaces' own objects and
    // Secrets are granted by Roles in them.
    assert_eq!(
        manifests.matches("\nkind: ClusterRole\n").count(),
        1,
        "one ClusterRole:\n{manifests}"
    );
    assert!(
        manifests.contains("name: fsns-fortisync-device-policies\n"),
        "{manifests}"
    );
    assert!(manifests.contains(&format!("- --namespace={a}\n")));
    assert!(manifests.contains(&format!("- --namespace={b}\n")));
    assert_eq!(manifests.matches("- --namespace=").count(), 2);

    let sa = service_account("fsns", &release_ns);
    for (verb, resource) in ALLOWED {
        for ns in [&a, &b] {
            assert!(
                can_i(&sa, verb, resource, "", Some(ns)),
                "{verb} {resource} must be allowed in the watched namespace {ns}"
            );
        }
        assert!(
            !can_i(&sa, verb, resource, "", Some(&other)),
            "{verb} {resource} must be forbidden in the unwatched namespace {other}"
        );
        assert!(
            !can_i(&sa, verb, resource, "", None),
            "{verb} {resource} must be forbidden cluster-wide"
        );
    }
    for (verb, resource) in DENIED {
        assert!(
            !can_i(&sa, verb, resource, "", Some(&a)),
            "{verb} {resource} denied even where it reads"
        );
    }
    // The release namespace holds only the Lease: no Secrets, no resources there.
    assert!(!can_i(&sa, "get", "secrets", "", Some(&release_ns)));
    assert!(!can_i(
        &sa,
        "list",
        "addressgroups.fortisync.dev",
        "",
        Some(&release_ns)
    ));
    assert_lease_rights(&sa, &release_ns, &a);

    // Not only the authorizer's word: real reads as the ServiceAccount.
    for ns in [&a, &other] {
        cp.kubectl_ok(&[
            "create",
            "secret",
            "generic",
            "api-key",
            "-n",
            ns,
            "--from-literal=token=x",
        ]);
    }
    let read = |ns: &str| {
        cp.kubectl(&[
            "get", "secret", "api-key", "-n", ns, "--as", &sa, "-o", "name",
        ])
    };
    let watched = read(&a);
    assert!(
        watched.status.success(),
        "{}",
        String::from_utf8_lossy(&watched.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&watched.stdout).trim(),
        "secret/api-key"
    );
    let unwatched = read(&other);
    let stderr = String::from_utf8_lossy(&unwatched.stderr);
    assert!(!unwatched.status.success());
    assert!(
        stderr.contains(&format!(
            "Error from server (Forbidden): secrets \"api-key\" is forbidden: User \"{sa}\" cannot get resource \"secrets\" in API group \"\" in the namespace \"{other}\""
        )),
        "{stderr}"
    );
    let everywhere = cp.kubectl(&["get", "secrets", "--all-namespaces", "--as", &sa]);
    assert!(!everywhere.status.success());
    assert!(
        String::from_utf8_lossy(&everywhere.stderr)
            .contains("cannot list resource \"secrets\" in API group \"\" at the cluster scope"),
        "{}",
        String::from_utf8_lossy(&everywhere.stderr)
    );
}
