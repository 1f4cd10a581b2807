//! Canaries: every secret value a test puts in a Secret (an API key, a password, an EDL
//! credential) is registered here, so that wherever fortisync's output lands (a `fortisync run`
//! log at trace, an event, a status, `/metrics`, a URL the device received, the CLI's output)
//! it can be searched for all of them. A value that shows anywhere but the Secret leaked.
//!
//! Process-wide on purpose: a leak is a leak whichever test's Secret it came from.

use std::collections::BTreeSet;
use std::sync::Mutex;

/// Shorter values are ordinary words ("x", "admin"): finding one in a log says nothing, so
/// they are not registered (the tests that need weak tokens keep working).
const MIN_LEN: usize = 8;

static CANARIES: Mutex<BTreeSet<String>> = Mutex::new(BTreeSet::new());

/// Registers `value` as a secret no output may hold.
pub fn register(value: &str) {
    if value.len() >= MIN_LEN {
        CANARIES
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(value.to_string());
    }
}

/// Every registered secret.
pub fn registered() -> Vec<String> {
    CANARIES
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .iter()
        .cloned()
        .collect()
}

/// `value` with all but its first three characters hidden, for a failure message that must
/// not itself leak the secret.
pub fn mask(value: &str) -> String {
    let head: String = value.chars().take(3).collect();
    format!("{head}…({} chars)", value.chars().count())
}

/// `text` with every registered secret masked.
pub fn masked(text: &str) -> String {
    registered()
        .iter()
        .fold(text.to_string(), |t, c| t.replace(c.as_str(), &mask(c)))
}

/// The lines of `text` holding a registered secret, the secret masked in each.
pub fn leaks(text: &str) -> Vec<String> {
    let canaries = registered();
    text.lines()
        .filter_map(|line| {
            let found: Vec<&String> = canaries
                .iter()
                .filter(|c| line.contains(c.as_str()))
                .collect();
            (!found.is_empty()).then(|| {
                found
                    .iter()
                    .fold(line.to_string(), |l, c| l.replace(c.as_str(), &mask(c)))
            })
        })
        .collect()
}

/// Panics, naming `place` and each line (masked), when `text` holds a registered secret.
pub fn assert_clean(place: &str, text: &str) {
    let lines = leaks(text);
    assert!(
        lines.is_empty(),
        "{} line(s) of the {place} hold a secret (masked here):\n{}",
        lines.len(),
        lines.join("\n")
    );
}

#[test]
fn a_registered_secret_is_found_masked_and_a_short_one_is_not_registered() {
    register("canary-unit-test-0123456789");
    register("x");
    assert!(!registered().contains(&"x".to_string()));
    let found = leaks("fine\nGET /?t=canary-unit-test-0123456789 200\n");
    assert_eq!(found, ["GET /?t=can…(27 chars) 200"]);
    assert!(leaks("nothing here").is_empty());
}
