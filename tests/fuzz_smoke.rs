//! The fuzz targets (fuzz/src/lib.rs) for a few seconds on stable: each seed of
//! `fuzz/corpus/<target>/`, then seeded mutations of them (byte flips, cuts, splices, inserted
//! tokens), so every run of the test command exercises them. Long runs: `cargo +nightly fuzz
//! run <target>` (fuzz/README.md). A crash found there becomes a seed here.

#[path = "../fuzz/src/lib.rs"]
mod targets;

use std::path::Path;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// Mutations per target; with the seeds this stays within seconds in a debug build.
const MUTATIONS: usize = 10_000;

/// Fragments worth inserting: JSON and YAML structure, numbers at type limits, secrets.
const TOKENS: [&[u8]; 20] = [
    b"{",
    b"}",
    b"[",
    b"]",
    b"\"",
    b":",
    b",",
    b"null",
    b"-1",
    b"18446744073709551616",
    b"1e999",
    b"\\u0000",
    b"password=",
    b"bearer ",
    b"\n- ",
    b": &a",
    b"*a",
    b"/",
    b"-",
    b"::",
];

fn seeds(target: &str) -> Vec<Vec<u8>> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/corpus")
        .join(target);
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.expect("entry").path())
        .collect();
    files.sort();
    let seeds: Vec<Vec<u8>> = files
        .iter()
        .map(|f| std::fs::read(f).expect("seed"))
        .collect();
    assert!(!seeds.is_empty(), "{target}: no seeds");
    seeds
}

fn mutate(rng: &mut StdRng, seeds: &[Vec<u8>]) -> Vec<u8> {
    let mut data = seeds[rng.random_range(0..seeds.len())].clone();
    for _ in 0..rng.random_range(1..=4) {
        let at = rng.random_range(0..=data.len());
        match rng.random_range(0..5) {
            0 if !data.is_empty() => {
                let i = rng.random_range(0..data.len());
                data[i] ^= 1 << rng.random_range(0..8);
            }
            1 => data.truncate(at),
            2 => {
                let token = TOKENS[rng.random_range(0..TOKENS.len())];
                data.splice(at..at, token.iter().copied());
            }
            3 => {
                let other = &seeds[rng.random_range(0..seeds.len())];
                let from = rng.random_range(0..=other.len());
                data.splice(at..at, other[from..].iter().copied());
            }
            _ => {
                let end = rng.random_range(at..=data.len());
                data.drain(at..end);
            }
        }
    }
    data
}

#[test]
fn every_fuzz_target_survives_its_seeds_and_seeded_mutations() {
    for (name, target) in targets::TARGETS {
        let seeds = seeds(name);
        for seed in &seeds {
            target(seed);
        }
        let mut rng = StdRng::seed_from_u64(16);
        for _ in 0..MUTATIONS {
            let input = mutate(&mut rng, &seeds);
            let run = std::panic::catch_unwind(|| target(&input));
            if let Err(panic) = run {
                let why = panic
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_default();
                panic!(
                    "{name}: {why}\ninput: {:?}",
                    String::from_utf8_lossy(&input)
                );
            }
        }
    }
}
