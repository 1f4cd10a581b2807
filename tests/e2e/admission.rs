//! Bad specs are refused by the real API server at `kubectl apply`, with a message that names
//! the field and the reason — before the controller ever sees them. The table is shared with
//! tests/admission_offline.rs, which runs it through `fortisync plan`'s checks.

#[path = "../support/bad_specs.rs"]
pub mod bad_specs;

use bad_specs::{Kind, bad_specs, good, good_edges, names_field};
use serde_json::Value;

use crate::support::control_plane;
use crate::support::control_plane::ControlPlane;

/// `kubectl <verb> --dry-run=server -f <manifest>` in `namespace`: the full admission of a
/// create (schema, CEL, list-map keys) without keeping anything. Returns (success, stderr).
fn dry_run(cp: &ControlPlane, verb: &str, namespace: &str, manifest: &Value) -> (bool, String) {
    let file = cp
        .dir
        .join(format!("admission-{}.json", rand::random::<u32>()));
    std::fs::write(&file, manifest.to_string()).expect("write manifest");
    let path = file.to_str().expect("utf-8 path");
    let out = cp.kubectl(&[verb, "--dry-run=server", "-n", namespace, "-f", path]);
    let _ = std::fs::remove_file(&file);
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The served CRDs under another API group, so they can be created (dry run) next to the
/// installed ones and the server judges them as new.
fn crds_renamed(group: &str) -> Vec<Value> {
    fortisync::api::crds()
        .into_iter()
        .map(|crd| {
            let mut v = serde_json::to_value(crd).expect("CRD as JSON");
            let plural = v["spec"]["names"]["plural"]
                .as_str()
                .expect("plural")
                .to_string();
            v["spec"]["group"] = Value::from(group);
            v["metadata"]["name"] = Value::from(format!("{plural}.{group}"));
            v
        })
        .collect()
}

#[test]
fn the_crds_apply_without_warnings() {
    let cp = control_plane();
    let ns = cp.namespace("admission-crds");
    for crd in crds_renamed("warnings.fortisync.dev") {
        let (ok, stderr) = dry_run(cp, "create", &ns, &crd);
        assert!(ok, "{}: refused: {stderr}", crd["metadata"]["name"]);
        assert_eq!(
            stderr, "",
            "{}: the API server warned",
            crd["metadata"]["name"]
        );
    }
    // The check can see a warning: the same CRD with one uint32 format back is warned about.
    let mut crd = crds_renamed("control.fortisync.dev").remove(0);
    let threshold = "/spec/versions/0/schema/openAPIV3Schema/properties/spec/properties/lockout/properties/threshold";
    crd.pointer_mut(threshold).expect("lockout.threshold")["format"] = Value::from("uint32");
    let (ok, stderr) = dry_run(cp, "create", &ns, &crd);
    assert!(ok, "{stderr}");
    assert!(
        stderr.contains("Warning: unrecognized format \"uint32\""),
        "no warning for uint32: {stderr:?}"
    );
}

#[test]
fn good_specs_are_accepted() {
    let cp = control_plane();
    cp.install_crds();
    let ns = cp.namespace("admission-good");
    for kind in Kind::ALL {
        let (ok, stderr) = cp.apply(&ns, &good(kind).to_string());
        assert!(ok, "the good {kind:?} was refused: {stderr}");
    }
    let prefix = cp.kubectl_ok(&[
        "-n",
        &ns,
        "get",
        "addressgroup",
        "grp",
        "-o",
        "jsonpath={.spec.addressPrefix}",
    ]);
    assert_eq!(
        prefix, "fs_",
        "the default prefix is filled in by the schema"
    );
    let max = cp.kubectl_ok(&[
        "-n",
        &ns,
        "get",
        "fortigate",
        "fw",
        "-o",
        "jsonpath={.spec.maxConcurrentRequests}",
    ]);
    assert_eq!(
        max, "",
        "no default is stored: the controller lowers it below the threshold"
    );
}

#[test]
fn edge_values_are_accepted() {
    let cp = control_plane();
    cp.install_crds();
    let ns = cp.namespace("admission-edges");
    for edge in good_edges() {
        let (ok, stderr) = dry_run(cp, "create", &ns, &edge.manifest());
        assert!(ok, "{}: refused: {stderr}", edge.what);
    }
}

#[test]
fn bad_specs_are_rejected_naming_the_field() {
    let cp = control_plane();
    cp.install_crds();
    let ns = cp.namespace("admission-bad");
    let rows = bad_specs();
    assert!(rows.len() >= 60);
    for row in rows {
        let manifest = row.manifest();
        let (ok, stderr) = dry_run(cp, "create", &ns, &manifest);
        assert!(
            !ok,
            "{}: the API server accepted a bad spec:\n{manifest:#}",
            row.what
        );
        assert!(
            names_field(&stderr, row.field, row.expect),
            "{}: expected \"{}: …{}…\" in the rejection, got:\n{stderr}",
            row.what,
            row.field,
            row.expect
        );
    }
}
