//! The Helm chart installs on the real apiserver and its RBAC is least privilege, proven with
//! the real authorizer through impersonation (`kubectl auth can-i --as`).

use std::path::Path;
use std::process::Command;

use crate::support::control_plane;

fn helm_template(release: &str, namespace: &str) -> String {
    let cp = control_plane();
    let chart = Path::new(env!("CARGO_MANIFEST_DIR")).join("charts/fortisync");
    let out = Command::new(cp.bin.join("helm"))
        .args(["template", release, "--include-crds"])
        .arg(&chart)
        .args(["--namespace", namespace])
        .output()
        .expect("run helm (built by scripts/control-plane)");
    assert!(
        out.status.success(),
        "helm template: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8 manifests")
}

#[test]
fn chart_rbac_is_least_privilege() {
    let cp = control_plane();
    // can-i resolves resource names through discovery, so the CRDs must be served first.
    cp.install_crds();
    let ns = cp.namespace("chart");
    let manifests = helm_template("fs", &ns);
    let file = cp.dir.join(format!("chart-{ns}.yaml"));
    std::fs::write(&file, &manifests).expect("write manifests");
    cp.kubectl_ok(&["apply", "-n", &ns, "-f", file.to_str().expect("path")]);

    let sa = format!("system:serviceaccount:{ns}:fs-fortisync");
    let can = |verb: &str, resource: &str, namespace: &str| -> bool {
        // `can-i VERB TYPE/NAME` reads the part after '/' as an object name; subresources go in a flag.
        let (resource, subresource) = resource.split_once('/').unwrap_or((resource, ""));
        let subresource_flag = format!("--subresource={subresource}");
        let mut args = vec![
            "auth", "can-i", verb, resource, "-n", namespace, "--as", &sa,
        ];
        if !subresource.is_empty() {
            args.push(&subresource_flag);
        }
        let out = cp.kubectl(&args);
        let answer = String::from_utf8_lossy(&out.stdout).trim().to_string();
        match answer.as_str() {
            "yes" => true,
            "no" => false,
            other => panic!(
                "kubectl auth can-i {verb} {resource}: unexpected answer {other:?} ({})",
                String::from_utf8_lossy(&out.stderr).trim()
            ),
        }
    };

    let allowed = [
        ("list", "fortigates.fortisync.dev"),
        ("watch", "fortimanagers.fortisync.dev"),
        ("get", "addressgroups.fortisync.dev"),
        ("patch", "addressgroups.fortisync.dev"),
        ("patch", "addressgroups.fortisync.dev/status"),
        ("patch", "fortigates.fortisync.dev/status"),
        ("watch", "secrets"),
        ("create", "events.events.k8s.io"),
    ];
    for (verb, resource) in allowed {
        assert!(
            can(verb, resource, "default"),
            "{verb} {resource} must be allowed for {sa}"
        );
    }
    assert!(
        can("update", "leases.coordination.k8s.io", &ns),
        "the Lease in the release namespace"
    );

    let denied = [
        ("create", "secrets"),
        ("update", "secrets"),
        ("delete", "secrets"),
        ("delete", "addressgroups.fortisync.dev"),
        ("create", "addressgroups.fortisync.dev"),
        ("patch", "fortigates.fortisync.dev"),
        ("delete", "fortigates.fortisync.dev"),
        ("get", "pods"),
        ("update", "addressgroups.fortisync.dev/status"),
        ("update", "addressgroups.fortisync.dev/status"),
        ("patch", "addressgroups.fortisync.dev/scale"),
        ("create", "deployments.apps"),
        ("*", "*"),
    ];
    for (verb, resource) in denied {
        assert!(
            !can(verb, resource, "default"),
            "{verb} {resource} must be denied"
        );
    }
    assert!(
        !can("update", "leases.coordination.k8s.io", "default"),
        "Leases elsewhere must be denied"
    );
}
