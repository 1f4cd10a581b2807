//! `crds/` must be exactly what the Rust types generate.

#[test]
fn crds_dir_matches_the_rust_types() {
    let generated = fortisync::api::crds_yaml().expect("serialise CRDs");
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("crds/fortisync.dev.yaml");
    let stored = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        generated == stored,
        "{} differs from the types in src/api; regenerate with: cargo run -- crds > crds/fortisync.dev.yaml",
        path.display()
    );
}
