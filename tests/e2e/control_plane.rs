//! The harness itself: a CRD round trip through the real apiserver, read back with kubectl.

use kube::api::{Api, DynamicObject, Patch, PatchParams, PostParams};
use kube::core::{ApiResource, GroupVersionKind};
use serde_json::json;
use std::io::Write;
use std::process::{Command, Stdio};

use crate::support::control_plane;

const PROBE_CRD: &str = r#"
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: probes.e2e.fortisync.dev
spec:
  group: e2e.fortisync.dev
  scope: Namespaced
  names: {plural: probes, singular: probe, kind: Probe}
  versions:
  - name: v1
    served: true
    storage: true
    subresources: {status: {}}
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec:
            type: object
            properties:
              address: {type: string, x-kubernetes-validations: [{rule: "isIP(self) || isCIDR(self)", message: "spec.address must be an IP or a CIDR"}]}
          status:
            type: object
            properties:
              phase: {type: string}
              observedGeneration: {type: integer}
"#;

#[tokio::test]
async fn crd_status_subresource_round_trips_through_kubectl() {
    let cp = control_plane();
    let ns = cp.namespace("harness");

    let mut apply = Command::new(cp.bin.join("kubectl"))
        .arg(format!("--kubeconfig={}", cp.kubeconfig().display()))
        .args(["apply", "-f", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start kubectl apply");
    apply
        .stdin
        .take()
        .expect("stdin")
        .write_all(PROBE_CRD.as_bytes())
        .expect("write CRD");
    let out = apply.wait_with_output().expect("kubectl apply");
    assert!(
        out.status.success(),
        "apply CRD: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    cp.kubectl_ok(&[
        "wait",
        "--for=condition=Established",
        "crd/probes.e2e.fortisync.dev",
        "--timeout=30s",
    ]);

    let gvk = GroupVersionKind::gvk("e2e.fortisync.dev", "v1", "Probe");
    let resource = ApiResource::from_gvk_with_plural(&gvk, "probes");
    let api: Api<DynamicObject> = Api::namespaced_with(cp.client(), &ns, &resource);
    let probe: DynamicObject = serde_json::from_value(json!({
        "apiVersion": "e2e.fortisync.dev/v1",
        "kind": "Probe",
        "metadata": {"name": "p1"},
        "spec": {"address": "192.0.2.1"},
    }))
    .expect("probe object");
    api.create(&PostParams::default(), &probe)
        .await
        .expect("create probe");

    // A status patch must persist through /status; a spec change sent there must be ignored.
    let patch = json!({"spec": {"address": "198.51.100.7"}, "status": {"phase": "Synced", "observedGeneration": 1}});
    api.patch_status("p1", &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .expect("patch status");

    let phase = cp.kubectl_ok(&[
        "-n",
        &ns,
        "get",
        "probe",
        "p1",
        "-o",
        "jsonpath={.status.phase}",
    ]);
    assert_eq!(phase, "Synced");
    let address = cp.kubectl_ok(&[
        "-n",
        &ns,
        "get",
        "probe",
        "p1",
        "-o",
        "jsonpath={.spec.address}",
    ]);
    assert_eq!(address, "192.0.2.1", "spec sent to /status must be ignored");

    // The CEL IP library is live on this apiserver: a bad address is refused with our message.
    let bad: DynamicObject = serde_json::from_value(json!({
        "apiVersion": "e2e.fortisync.dev/v1",
        "kind": "Probe",
        "metadata": {"name": "bad"},
        "spec": {"address": "192.0.2.300"},
    }))
    .expect("bad probe object");
    let err = api
        .create(&PostParams::default(), &bad)
        .await
        .expect_err("bad address must be rejected");
    let text = err.to_string();
    assert!(
        text.contains("spec.address must be an IP or a CIDR"),
        "unexpected rejection: {text}"
    );
}
