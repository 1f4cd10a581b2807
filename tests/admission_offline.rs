//! The offline half of the shared bad-spec table: what `fortisync plan` loads and validates
//! refuses every spec the API server refuses (tests/e2e/admission.rs runs the same table),
//! naming the same field with the same reason, and admits the same edge values.

#[path = "support/bad_specs.rs"]
mod bad_specs;

use bad_specs::{Kind, Offline, bad_specs, good, good_edges, names_field, refused_at_reconcile};
use fortisync::api::validate::{
    validate, validate_external_connector, validate_fortigate, validate_fortimanager,
};
use fortisync::cli::load::Manifests;
use serde_json::Value;

/// Loads `manifest` as `fortisync plan` does; the load error if it is refused.
fn load(manifest: &Value) -> Result<Manifests, String> {
    let mut manifests = Manifests::default();
    manifests
        .add(&manifest.to_string(), "table", "default")
        .map_err(|e| e.to_string())?;
    Ok(manifests)
}

/// The problems the validator of `kind` finds in `manifest`'s spec.
fn problems(kind: Kind, manifest: &Value) -> Vec<String> {
    let spec = manifest["spec"].clone();
    match kind {
        Kind::FortiGate => validate_fortigate(&serde_json::from_value(spec).expect("spec")),
        Kind::FortiManager => validate_fortimanager(&serde_json::from_value(spec).expect("spec")),
        Kind::AddressGroup => validate(&serde_json::from_value(spec).expect("spec")),
        Kind::ExternalConnector => {
            validate_external_connector(&serde_json::from_value(spec).expect("spec"))
        }
    }
}

#[test]
fn the_table_is_big_enough_and_names_each_row_once() {
    let rows = bad_specs();
    let resources = rows
        .iter()
        .filter(|r| matches!(r.kind, Kind::AddressGroup | Kind::ExternalConnector))
        .count();
    assert!(
        resources >= 60,
        "{resources} AddressGroup/ExternalConnector rows"
    );
    for kind in Kind::ALL {
        assert!(rows.iter().any(|r| r.kind == kind), "no row for {kind:?}");
    }
    let mut whats: Vec<&str> = rows.iter().map(|r| r.what).collect();
    whats.sort_unstable();
    whats.dedup();
    assert_eq!(whats.len(), rows.len(), "duplicate row names");
}

#[test]
fn good_manifests_and_edge_values_load_without_problems() {
    let mut cases: Vec<(String, Kind, Value)> = Kind::ALL
        .into_iter()
        .map(|k| (format!("good {k:?}"), k, good(k)))
        .collect();
    cases.extend(
        good_edges()
            .into_iter()
            .map(|e| (e.what.to_string(), e.kind, e.manifest())),
    );
    for (what, kind, manifest) in cases {
        if let Err(e) = load(&manifest) {
            panic!("{what}: refused while loading: {e}");
        }
        assert_eq!(problems(kind, &manifest), Vec::<String>::new(), "{what}");
    }
}

#[test]
fn every_bad_spec_is_refused_offline_naming_the_field() {
    for row in bad_specs() {
        let manifest = row.manifest();
        let loaded = load(&manifest);
        match row.offline {
            Offline::Load(serde) => {
                let e = loaded
                    .err()
                    .unwrap_or_else(|| panic!("{}: loaded", row.what));
                assert!(e.contains(serde), "{}: {serde:?} not in {e}", row.what);
            }
            Offline::Validate => {
                let found = problems(row.kind, &manifest);
                assert!(
                    found.iter().any(|p| names_field(p, row.field, row.expect)),
                    "{}: no problem \"{}: …{}…\" in {found:?}",
                    row.what,
                    row.field,
                    row.expect
                );
                // Connections are refused while loading (before their Secrets are read);
                // groups when planned.
                let refused_on_load = loaded.is_err();
                assert_eq!(
                    refused_on_load,
                    row.kind != Kind::AddressGroup,
                    "{}: {loaded:?}",
                    row.what
                );
            }
        }
    }
}

#[test]
fn references_to_missing_objects_are_admitted_offline_and_plan_refuses_a_missing_target() {
    for row in refused_at_reconcile() {
        let mut manifests =
            load(&good(Kind::FortiGate)).unwrap_or_else(|e| panic!("the FortiGate: {e}"));
        let manifest = row.manifest();
        manifests
            .add(&manifest.to_string(), "row", "default")
            .unwrap_or_else(|e| panic!("{}: refused while loading: {e}", row.what));
        assert_eq!(
            problems(row.kind, &manifest),
            Vec::<String>::new(),
            "{}",
            row.what
        );
        if row.reason != "TargetNotFound" {
            continue; // a source is read by the controller only (plan covers AddressGroups)
        }
        let target = serde_json::from_value(manifest["spec"]["targetRef"].clone()).expect("ref");
        let refused = manifests
            .resolve("default", &target, None)
            .err()
            .unwrap_or_else(|| panic!("{}: resolved", row.what));
        assert_eq!(refused.reason(), row.reason, "{}", row.what);
        assert!(
            refused.to_string().contains(row.field),
            "{}: {refused}",
            row.what
        );
    }
}
