//! `scripts/image` turns the built binary into a docker-save style image that runs: the tar has
//! the layout `docker load` / `ctr image import` read, the config runs the binary as a numeric
//! non-root user, the layer holds exactly the binary and the libraries it loads (so it runs
//! chrooted into the layer, with nothing from the host), and the same binary gives the same
//! bytes.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use serde_json::Value;

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// A folder under cargo's per-target scratch space (reused by the next run, so nothing piles up
/// in /tmp).
fn scratch(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("image-{name}"));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("scratch dir");
    dir
}

/// Runs `scripts/image` on the test build of the binary into `out`; returns its stdout.
fn build_image(out: &Path) -> String {
    let result = Command::new(repo().join("scripts/image"))
        .args(["--binary", env!("CARGO_BIN_EXE_fortisync"), "--tag"])
        .arg("fortisync:test")
        .arg("--out")
        .arg(out)
        .output()
        .expect("run scripts/image");
    assert!(
        result.status.success(),
        "scripts/image failed: {}",
        String::from_utf8_lossy(&result.stderr)
    );
    String::from_utf8(result.stdout).expect("utf-8")
}

fn untar(archive: &Path, into: &Path) {
    std::fs::create_dir_all(into).expect("dir");
    let status = Command::new("tar")
        .arg("-xf")
        .arg(archive)
        .arg("-C")
        .arg(into)
        .status()
        .expect("run tar");
    assert!(status.success(), "tar -xf {}", archive.display());
}

fn sha256_hex(path: &Path) -> String {
    let out = Command::new("sha256sum")
        .arg(path)
        .output()
        .expect("sha256sum");
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .expect("digest")
        .to_string()
}

fn tar_listing(archive: &Path) -> Vec<String> {
    let out = Command::new("tar")
        .arg("-tf")
        .arg(archive)
        .output()
        .expect("tar -t");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .collect()
}

struct Built {
    dir: PathBuf,
    tar: PathBuf,
    stdout: String,
}

/// One image for the tests that only read it.
fn built() -> &'static Built {
    static BUILT: OnceLock<Built> = OnceLock::new();
    BUILT.get_or_init(|| {
        let dir = scratch("shared");
        let tar = dir.join("image.tar");
        let stdout = build_image(&tar);
        untar(&tar, &dir.join("image"));
        Built { dir, tar, stdout }
    })
}

fn manifest() -> Value {
    let text = std::fs::read_to_string(built().dir.join("image/manifest.json")).expect("manifest");
    serde_json::from_str(&text).expect("manifest.json is JSON")
}

fn config() -> Value {
    let name = manifest()[0]["Config"]
        .as_str()
        .expect("Config")
        .to_string();
    let text = std::fs::read_to_string(built().dir.join("image").join(name)).expect("config");
    serde_json::from_str(&text).expect("config is JSON")
}

#[test]
fn image_tar_has_the_docker_save_layout_with_content_addressed_config_and_layer() {
    let b = built();
    let manifest = manifest();
    let entries = manifest.as_array().expect("manifest is a list");
    assert_eq!(entries.len(), 1);
    assert_eq!(
        entries[0]["RepoTags"],
        serde_json::json!(["fortisync:test"])
    );
    let config_name = entries[0]["Config"].as_str().expect("Config");
    let layers = entries[0]["Layers"].as_array().expect("Layers");
    assert_eq!(layers.len(), 1, "one layer");
    let layer = layers[0].as_str().expect("layer path");

    // Names are digests: the config's file is its own sha256, the layer's folder its diff_id.
    let config_hex = config_name.strip_suffix(".json").expect(".json");
    assert_eq!(
        sha256_hex(&b.dir.join("image").join(config_name)),
        config_hex
    );
    let layer_hex = layer
        .strip_suffix("/layer.tar")
        .expect("<diff_id>/layer.tar");
    assert_eq!(sha256_hex(&b.dir.join("image").join(layer)), layer_hex);
    assert_eq!(
        config()["rootfs"],
        serde_json::json!({"type": "layers", "diff_ids": [format!("sha256:{layer_hex}")]})
    );
    let mut listing = tar_listing(&b.tar);
    listing.sort();
    // Sorted both sides: which digest sorts first depends on the binary.
    let mut want = vec![
        config_name.to_string(),
        format!("{layer_hex}/"),
        layer.to_string(),
        "manifest.json".to_string(),
    ];
    want.sort();
    assert_eq!(listing, want);
    assert!(
        b.stdout.contains(&format!("id sha256:{config_hex}\n")),
        "{}",
        b.stdout
    );
    assert!(b.stdout.contains("size "), "{}", b.stdout);
}

#[test]
fn image_runs_the_binary_as_numeric_non_root_user_with_oci_labels_from_cargo_toml() {
    let config = config();
    let version = env!("CARGO_PKG_VERSION");
    assert_eq!(config["os"], "linux");
    assert_eq!(config["architecture"], "amd64");
    let c = &config["config"];
    assert_eq!(c["User"], "65532:65532");
    assert_eq!(
        c["Entrypoint"],
        serde_json::json!(["/usr/local/bin/fortisync"])
    );
    assert!(
        c.get("Cmd").is_none(),
        "the chart passes `run` and its flags"
    );
    let labels = &c["Labels"];
    assert_eq!(labels["org.opencontainers.image.version"], version);
    assert_eq!(labels["org.opencontainers.image.title"], "fortisync");
    assert_eq!(labels["org.opencontainers.image.licenses"], "Apache-2.0");
    assert_eq!(
        labels["org.opencontainers.image.source"],
        "https://github.com/fortisync/fortisync"
    );
}

#[test]
fn image_layer_holds_only_the_binary_and_the_four_libraries_it_loads_and_no_shell() {
    let b = built();
    let layer = manifest()[0]["Layers"][0]
        .as_str()
        .expect("layer")
        .to_string();
    let mut files: Vec<String> = tar_listing(&b.dir.join("image").join(layer))
        .into_iter()
        .filter(|e| !e.ends_with('/'))
        .collect();
    files.sort();
    assert_eq!(
        files,
        [
            "lib/x86_64-linux-gnu/libc.so.6",
            "lib/x86_64-linux-gnu/libgcc_s.so.1",
            "lib/x86_64-linux-gnu/libm.so.6",
            "lib64/ld-linux-x86-64.so.2",
            "usr/local/bin/fortisync",
        ]
    );
}

#[test]
fn image_binary_runs_version_chrooted_into_the_layer_as_the_image_user() {
    let b = built();
    let layer = manifest()[0]["Layers"][0]
        .as_str()
        .expect("layer")
        .to_string();
    let rootfs = b.dir.join("rootfs");
    untar(&b.dir.join("image").join(layer), &rootfs);
    // chroot: the loader and libraries are the layer's own, nothing from the host. As root (the
    // real-node tests need root anyway) with the image's user; otherwise in a user namespace.
    let root = Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout == b"0\n");
    let mut command = if root {
        let mut c = Command::new("chroot");
        c.arg("--userspec=65532:65532");
        c
    } else {
        let mut c = Command::new("unshare");
        c.args(["--map-root-user", "chroot"]);
        c
    };
    let out = command
        .arg(&rootfs)
        .args(["/usr/local/bin/fortisync", "--version"])
        .output()
        .expect("run chroot");
    assert!(
        out.status.success(),
        "fortisync --version in the image: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        format!("fortisync {}\n", env!("CARGO_PKG_VERSION"))
    );
}

#[test]
fn image_is_deterministic_the_same_binary_gives_the_same_bytes() {
    let dir = scratch("again");
    let again = dir.join("image.tar");
    let stdout = build_image(&again);
    let first = built();
    assert_eq!(sha256_hex(&again), sha256_hex(&first.tar));
    let id = |s: &str| s.lines().find(|l| l.starts_with("id ")).map(str::to_string);
    assert_eq!(id(&stdout), id(&first.stdout));
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn image_script_refuses_a_binary_whose_version_disagrees_with_cargo_toml() {
    let dir = scratch("liar");
    let liar = dir.join("fortisync");
    std::fs::write(&liar, "#!/bin/sh\necho fortisync 9.9.9\n").expect("write");
    let status = Command::new("chmod")
        .arg("+x")
        .arg(&liar)
        .status()
        .expect("chmod");
    assert!(status.success());
    let out = Command::new(repo().join("scripts/image"))
        .arg("--binary")
        .arg(&liar)
        .arg("--out")
        .arg(dir.join("x.tar"))
        .output()
        .expect("run scripts/image");
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        format!(
            "scripts/image: {} --version says 'fortisync 9.9.9', Cargo.toml says {}\n",
            liar.display(),
            env!("CARGO_PKG_VERSION")
        )
    );
    assert!(!dir.join("x.tar").exists());
    let _ = std::fs::remove_dir_all(dir);
}
