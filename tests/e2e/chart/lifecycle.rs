//! The chart the way users run it, with `helm` itself against the real apiserver (no node, so
//! the objects are checked, not running Pods): the values schema refuses bad values naming
//! them; the rendered objects pass server-side dry-run; the defaults pass Pod Security
//! `restricted`; and install → upgrade (changed values and a CRD that gains a field) →
//! uninstall, after which the CRDs and the custom resources are still there.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use super::{chart_dir, helm, helm_template};
use crate::support::control_plane;
use crate::support::control_plane::ControlPlane;

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// `helm` against `cp` (a private control plane).
fn helm_on(cp: &ControlPlane, args: &[&str]) -> Output {
    Command::new(cp.bin.join("helm"))
        .args(args)
        .arg(format!("--kubeconfig={}", cp.kubeconfig().display()))
        .output()
        .expect("run helm")
}

fn helm_on_ok(cp: &ControlPlane, args: &[&str]) -> String {
    let out = helm_on(cp, args);
    assert!(out.status.success(), "helm {args:?}: {}", text(&out));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn path(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

#[test]
fn chart_values_outside_the_schema_are_refused_by_lint_and_install_naming_the_value() {
    let chart = chart_dir();
    let cases = [
        (
            "replicaCount=0",
            "- at '/replicaCount': minimum: got 0, want 1",
        ),
        (
            "replicaCont=2",
            "- at '': additional properties 'replicaCont' not allowed",
        ),
        (
            "logFormat=xml",
            "- at '/logFormat': value must be one of 'json', 'text'",
        ),
        (
            "image.digest=sha256:abc",
            "- at '/image/digest': 'sha256:abc' does not match pattern",
        ),
        (
            "watchNamespaces={Team_A}",
            "- at '/watchNamespaces/0': 'Team_A' does not match pattern",
        ),
        (
            "hostNetwork=yes",
            "- at '/hostNetwork': got string, want boolean",
        ),
        (
            "edl.port=70000",
            "- at '/edl/port': maximum: got 70,000, want 65,535",
        ),
    ];
    let ns = control_plane().namespace("chart-schema");
    for (set, message) in cases {
        let lint = helm(&["lint", "--strict", path(&chart), "--set", set]);
        assert!(!lint.status.success(), "helm lint accepted {set}");
        assert!(text(&lint).contains(message), "lint {set}: {}", text(&lint));
        let install = helm(&[
            "install",
            "bad",
            path(&chart),
            "--namespace",
            &ns,
            "--set",
            set,
        ]);
        assert!(!install.status.success(), "helm install accepted {set}");
        let said = text(&install);
        assert!(
            said.contains("values don't meet the specifications of the schema")
                && said.contains(message),
            "install {set}: {said}"
        );
    }
    // Nothing was installed by any of them.
    let releases = helm(&["list", "--namespace", &ns, "--short"]);
    assert_eq!(String::from_utf8_lossy(&releases.stdout).trim(), "");
}

#[test]
fn chart_renders_objects_the_apiserver_accepts_in_a_server_side_dry_run() {
    let cp = control_plane();
    let ns = cp.namespace("chart-dry-run");
    let manifests = helm_template(
        "dr",
        &ns,
        &[
            "edl.ingress.enabled=true",
            "edl.ingress.host=edl.example.com",
            "edl.ingress.className=nginx",
            "edl.ingress.tls[0].secretName=edl-tls",
            "edl.ingress.tls[0].hosts={edl.example.com}",
            "extraEnv[0].name=RUST_LOG",
            "extraEnv[0].value=debug",
            "image.digest=sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
        ],
        &[],
    );
    let file = cp.dir.join(format!("dry-run-{ns}.yaml"));
    std::fs::write(&file, &manifests).expect("write manifests");
    let out = cp.kubectl_ok(&["apply", "--dry-run=server", "-n", &ns, "-f", path(&file)]);
    for object in [
        "deployment.apps/dr-fortisync",
        "poddisruptionbudget.policy/dr-fortisync",
        "service/dr-fortisync-metrics",
        "service/dr-fortisync-edl",
        "ingress.networking.k8s.io/dr-fortisync-edl",
        "serviceaccount/dr-fortisync",
        "clusterrole.rbac.authorization.k8s.io/dr-fortisync",
        "role.rbac.authorization.k8s.io/dr-fortisync-leader-election",
        "customresourcedefinition.apiextensions.k8s.io/addressgroups.fortisync.dev",
        "customresourcedefinition.apiextensions.k8s.io/externalconnectors.fortisync.dev",
    ] {
        assert!(
            out.lines()
                .any(|l| l.starts_with(&format!("{object} ")) && l.ends_with("(server dry run)")),
            "{object} in:\n{out}"
        );
    }
    assert!(manifests.contains(
        "image: \"ghcr.io/fortisync/fortisync@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\""
    ));
    // The ServiceMonitor needs the Prometheus Operator's CRD, which this cluster lacks: its
    // rendering is checked as text.
    let monitored = helm_template(
        "dr",
        &ns,
        &[
            "metrics.serviceMonitor.enabled=true",
            "metrics.serviceMonitor.labels.release=prom",
        ],
        &["--show-only", "templates/servicemonitor.yaml"],
    );
    for line in [
        "kind: ServiceMonitor",
        "    release: prom",
        "      app.kubernetes.io/component: metrics",
        "    - port: metrics",
        "      path: /metrics",
    ] {
        assert!(
            monitored.contains(&format!("{line}\n")),
            "{line}:\n{monitored}"
        );
    }
}

/// The Deployment's Pod template of `helm template` with `sets`, as a Pod manifest (JSON).
fn pod_of_deployment(cp: &ControlPlane, ns: &str, sets: &[&str]) -> PathBuf {
    let rendered = helm_template(
        "ps",
        ns,
        sets,
        &["--show-only", "templates/deployment.yaml"],
    );
    let yaml = cp.dir.join(format!("ps-{ns}-{}.yaml", sets.len()));
    std::fs::write(&yaml, rendered).expect("write");
    let list = cp.kubectl_ok(&[
        "create",
        "--dry-run=client",
        "-o",
        "json",
        "-f",
        path(&yaml),
    ]);
    // One JSON object per rendered object, one after the other.
    let deployment = serde_json::Deserializer::from_str(&list)
        .into_iter::<serde_json::Value>()
        .map(|o| o.expect("JSON"))
        .find(|o| o["kind"] == "Deployment")
        .expect("a Deployment");
    let pod = serde_json::json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "ps", "labels": deployment["spec"]["template"]["metadata"]["labels"]},
        "spec": deployment["spec"]["template"]["spec"],
    });
    let file = cp.dir.join(format!("ps-pod-{ns}-{}.json", sets.len()));
    std::fs::write(&file, pod.to_string()).expect("write pod");
    file
}

#[test]
fn chart_defaults_pass_pod_security_restricted_and_host_network_is_refused_by_it() {
    let cp = control_plane();
    let ns = cp.namespace("chart-restricted");
    cp.kubectl_ok(&[
        "label",
        "namespace",
        &ns,
        "pod-security.kubernetes.io/enforce=restricted",
        "pod-security.kubernetes.io/enforce-version=latest",
    ]);
    // The Pod runs as the chart's ServiceAccount, which must exist for admission.
    cp.kubectl_ok(&["create", "serviceaccount", "ps-fortisync", "-n", &ns]);
    // A Pod is what admission enforces on (Deployments only warn): the chart's Pod template,
    // created in a dry run in a namespace that enforces `restricted`.
    let pod = pod_of_deployment(cp, &ns, &[]);
    let out = cp.kubectl(&["create", "--dry-run=server", "-n", &ns, "-f", path(&pod)]);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "pod/ps created (server dry run)"
    );
    assert!(!text(&out).contains("violate"), "{}", text(&out));

    // The check is live: the same template with hostNetwork is refused, for that reason.
    let pod = pod_of_deployment(cp, &ns, &["hostNetwork=true"]);
    let out = cp.kubectl(&["create", "--dry-run=server", "-n", &ns, "-f", path(&pod)]);
    assert!(!out.status.success());
    assert!(
        text(&out).contains(
            "violates PodSecurity \"restricted:latest\": host namespaces (hostNetwork=true)"
        ),
        "{}",
        text(&out)
    );
}

/// A copy of the chart whose AddressGroup CRD has one more spec field, `upgradeNote`, as the
/// next release of the chart might.
fn chart_with_a_new_crd_field(dir: &Path) -> PathBuf {
    let copy = dir.join("chart-next");
    let _ = std::fs::remove_dir_all(&copy);
    let status = Command::new("cp")
        .arg("-rL")
        .arg(chart_dir())
        .arg(&copy)
        .status()
        .expect("cp");
    assert!(status.success());
    let crds = copy.join("files/crds/fortisync.dev.yaml");
    let yaml = std::fs::read_to_string(&crds).expect("CRDs");
    let anchor = "Members of one firewall address group, kept converged on a FortiGate or FortiManager ADOM.\n            properties:\n";
    assert_eq!(yaml.matches(anchor).count(), 1, "the AddressGroup spec");
    let field = "              upgradeNote:\n                description: A field added by a chart upgrade.\n                type: string\n";
    std::fs::write(&crds, yaml.replace(anchor, &format!("{anchor}{field}"))).expect("write");
    copy
}

fn address_group(note: bool) -> String {
    format!(
        "apiVersion: fortisync.dev/v1alpha1\nkind: AddressGroup\nmetadata:\n  name: kept\nspec:\n  targetRef: {{kind: FortiGate, name: fw}}\n  groupName: kept\n  members: [{{address: 192.0.2.1}}]\n{}",
        if note { "  upgradeNote: added\n" } else { "" }
    )
}

#[test]
fn chart_install_upgrade_with_new_values_and_a_crd_field_then_uninstall_keeps_crds_and_resources() {
    let cp = ControlPlane::private("chart-lifecycle");
    let ns = "fortisync";
    let chart = chart_dir();
    helm_on_ok(
        &cp,
        &[
            "install",
            "fs",
            path(&chart),
            "--namespace",
            ns,
            "--create-namespace",
            "--set",
            "image.tag=1.0.0",
        ],
    );
    let get = |args: &[&str]| cp.kubectl_ok(args).trim().to_string();
    let deployment = |jsonpath: &str| {
        get(&[
            "get",
            "deployment",
            "fs-fortisync",
            "-n",
            ns,
            "-o",
            &format!("jsonpath={jsonpath}"),
        ])
    };
    assert_eq!(deployment("{.spec.replicas}"), "2");
    assert_eq!(
        deployment("{.spec.template.spec.containers[0].image}"),
        "ghcr.io/fortisync/fortisync:1.0.0"
    );
    assert_eq!(
        get(&[
            "get",
            "pdb",
            "fs-fortisync",
            "-n",
            ns,
            "-o",
            "jsonpath={.spec.maxUnavailable}"
        ]),
        "1"
    );
    // The CRDs are the release's, kept on uninstall.
    let names: Vec<String> = fortisync::api::crds()
        .into_iter()
        .map(|crd| crd.metadata.name.expect("CRD name"))
        .collect();
    for name in &names {
        assert_eq!(
            get(&[
                "get",
                &format!("crd/{name}"),
                "-o",
                "jsonpath={.metadata.annotations.helm\\.sh/resource-policy} {.metadata.annotations.meta\\.helm\\.sh/release-name}"
            ]),
            "keep fs",
            "{name}"
        );
    }
    cp.kubectl_ok(&[
        "wait",
        "--for=condition=Established",
        "crd/addressgroups.fortisync.dev",
    ]);
    let (ok, err) = cp.apply("default", &address_group(true));
    assert!(!ok, "the field does not exist yet");
    assert!(err.contains("unknown field \"spec.upgradeNote\""), "{err}");
    let (ok, err) = cp.apply("default", &address_group(false));
    assert!(ok, "{err}");

    // The next chart: a CRD field, new values.
    let next = chart_with_a_new_crd_field(&cp.dir);
    helm_on_ok(
        &cp,
        &[
            "upgrade",
            "fs",
            path(&next),
            "--namespace",
            ns,
            "--reuse-values",
            "--set",
            "replicaCount=3",
            "--set",
            "extraEnv[0].name=RUST_LOG",
            "--set",
            "extraEnv[0].value=debug",
        ],
    );
    assert_eq!(deployment("{.spec.replicas}"), "3");
    assert_eq!(
        deployment("{.spec.template.spec.containers[0].env[2]}"),
        r#"{"name":"RUST_LOG","value":"debug"}"#
    );
    assert_eq!(
        deployment("{.spec.template.spec.containers[0].image}"),
        "ghcr.io/fortisync/fortisync:1.0.0",
        "--reuse-values kept the tag"
    );
    assert_eq!(
        get(&[
            "get",
            "crd/addressgroups.fortisync.dev",
            "-o",
            "jsonpath={.spec.versions[0].schema.openAPIV3Schema.properties.spec.properties.upgradeNote.type}"
        ]),
        "string"
    );
    let (ok, err) = cp.apply("default", &address_group(true));
    assert!(ok, "the upgraded CRD has the field: {err}");
    assert_eq!(
        get(&[
            "get",
            "addressgroup",
            "kept",
            "-n",
            "default",
            "-o",
            "jsonpath={.spec.upgradeNote}"
        ]),
        "added"
    );
    assert!(helm_on_ok(&cp, &["history", "fs", "--namespace", ns]).contains("Upgrade complete"));

    let out = helm_on(&cp, &["uninstall", "fs", "--namespace", ns]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains("release \"fs\" uninstalled"),
        "{}",
        text(&out)
    );
    for name in &names {
        assert!(
            text(&out).contains(&format!("[CustomResourceDefinition] {name}\n")),
            "helm names {name} as kept by its resource policy: {}",
            text(&out)
        );
    }
    let left = cp.kubectl(&["get", "deployment", "fs-fortisync", "-n", ns]);
    assert!(!left.status.success(), "the Deployment is gone");
    assert!(text(&left).contains("not found"));
    // Kept: every CRD and the resource (with the upgraded field), so nothing on the devices
    // is cleaned up by an uninstall.
    let crds = get(&["get", "crd", "-o", "name"]);
    assert_eq!(
        crds.matches(".fortisync.dev").count(),
        names.len(),
        "{crds}"
    );
    assert_eq!(
        get(&[
            "get",
            "addressgroup",
            "kept",
            "-n",
            "default",
            "-o",
            "jsonpath={.spec.upgradeNote}"
        ]),
        "added"
    );
}
