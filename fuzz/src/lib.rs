//! The fuzz targets' bodies, shared by cargo-fuzz (`fuzz/fuzz_targets/*.rs`, long runs) and the
//! seconds-long stable run in the test command (`tests/fuzz_smoke.rs`). Each takes arbitrary
//! bytes, must never panic, and asserts what has to hold for any input: a device answer is
//! either accepted only as what it claims to be or refused with a short, clean message; an
//! address the offline checks admit is one the reconciler can read, and its object name is one
//! FortiOS accepts; a manifest is loaded or refused, never a crash.

use fortisync::api::validate::{member_address_problems, validate, validate_external_connector};
use fortisync::cli::load::Manifests;
use fortisync::device::fortimanager::RpcAnswer;
use fortisync::device::fortios::response::parse;
use fortisync::device::untrusted::{MAX_TEXT_CHARS, device_text};
use fortisync::device::{Context, DeviceError};
use fortisync::model::MemberAddress;

/// A target's body.
pub type Target = fn(&[u8]);

/// Every target, by the name cargo-fuzz knows it by (and its corpus directory).
pub const TARGETS: [(&str, Target); 5] = [
    ("fortios_response", fortios_response),
    ("fortimanager_answer", fortimanager_answer),
    ("device_text", device_text_target),
    ("member_address", member_address),
    ("manifest", manifest),
];

/// Longest error message a device answer may produce (context, wording and at most
/// [`MAX_TEXT_CHARS`] of cleaned device text).
const MAX_MESSAGE_CHARS: usize = 1000;

fn ctx() -> Context {
    Context {
        device: "fw".into(),
        method: "GET".into(),
        path: "/api/v2/cmdb/firewall/address".into(),
    }
}

/// An error about a device answer: short, one line, no control characters.
fn clean(e: &DeviceError, input: &[u8]) {
    let message = e.to_string();
    assert!(
        message.chars().count() <= MAX_MESSAGE_CHARS,
        "a {}-character message for {} bytes",
        message.chars().count(),
        input.len()
    );
    assert!(
        !message.chars().any(char::is_control),
        "a control character in {message:?}"
    );
}

/// A FortiOS answer: the first byte picks the HTTP status, the second the session kind and
/// method, the rest is the body. Only a 200 is accepted, and then `rows`/`object` either read
/// it or refuse it cleanly.
pub fn fortios_response(data: &[u8]) {
    const STATUSES: [u16; 16] = [
        200, 200, 200, 400, 401, 403, 404, 405, 413, 424, 429, 500, 502, 503, 504, 302,
    ];
    let status = data
        .first()
        .map_or(200, |b| STATUSES[usize::from(*b) % STATUSES.len()]);
    let flags = data.get(1).copied().unwrap_or(0);
    let body = data.get(2..).unwrap_or_default();
    match parse(ctx(), status, body, flags & 1 == 1, flags & 2 == 2) {
        Ok(reply) => {
            assert_eq!(status, 200, "a {status} accepted as an answer");
            let refusals = [reply.rows(&ctx()).err(), reply.object(&ctx()).err()];
            for e in refusals.iter().flatten() {
                assert_eq!(e.reason(), "UnexpectedResponse", "{e}");
                clean(e, body);
            }
        }
        Err(e) => clean(&e, body),
    }
}

/// A FortiManager JSON-RPC answer: accepted with at least one result whose message is
/// cleaned, and its `data` read as rows or an object, or refused.
pub fn fortimanager_answer(data: &[u8]) {
    let Ok(answer) = RpcAnswer::from_slice(data) else {
        return;
    };
    assert!(!answer.results.is_empty(), "an answer without results");
    for result in &answer.results {
        assert!(result.message.chars().count() <= MAX_TEXT_CHARS + 1);
        assert!(!result.message.chars().any(char::is_control));
        let refusals = [
            result.data_rows(&ctx()).err(),
            result.data_object(&ctx()).err(),
        ];
        for e in refusals.iter().flatten() {
            clean(e, data);
        }
    }
}

/// Device text on its way into a message: capped, no control characters, and no word that
/// holds a secret word (`password=…`), nor the word after it, survives.
pub fn device_text_target(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let out = device_text(&text);
    assert!(out.chars().count() <= MAX_TEXT_CHARS + 1, "{out:?}");
    assert!(!out.chars().any(char::is_control), "{out:?}");
    let flat: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    let words: Vec<&str> = flat.split_whitespace().collect();
    let mut kept: Vec<&str> = out.split_whitespace().collect();
    if out.ends_with('…') {
        kept.pop(); // the word the cap cut is no word of the text
    }
    for (i, word) in words.iter().enumerate() {
        let lower = word.to_lowercase();
        if !["password", "secret", "token", "bearer"]
            .iter()
            .any(|s| lower.contains(s))
        {
            continue;
        }
        for hidden in [Some(word), words.get(i + 1)].into_iter().flatten() {
            if *hidden == "<redacted>" {
                continue; // the marker itself
            }
            // A word that also stands elsewhere in the text unguarded may be kept there.
            let elsewhere = words
                .iter()
                .enumerate()
                .any(|(j, w)| w == hidden && j != i && j != i + 1);
            assert!(
                elsewhere || !kept.contains(hidden),
                "{hidden:?} after a secret word kept in {out:?}"
            );
        }
    }
}

/// A member or entry address: what the offline checks admit the reconciler reads; what it
/// reads prints in a form it reads back as the same address; its object name is at most 79
/// characters without `/` or the characters FortiOS refuses in names.
pub fn member_address(data: &[u8]) {
    let prefixes = ["fs_", "kk_", "pppppppppppppppppppppppppppppppp"];
    let prefix = prefixes[usize::from(data.first().copied().unwrap_or(0)) % prefixes.len()];
    let text = String::from_utf8_lossy(data.get(1..).unwrap_or_default()).into_owned();
    let parsed = MemberAddress::parse(&text);
    if member_address_problems(&text).is_empty() {
        assert!(
            parsed.is_ok(),
            "{text:?} admitted offline, unreadable: {parsed:?}"
        );
    }
    let Ok(address) = parsed else {
        return;
    };
    let printed = address.to_string();
    assert_eq!(
        MemberAddress::parse(&printed).as_ref(),
        Ok(&address),
        "{text:?} printed as {printed:?}"
    );
    let name = address.object_name(prefix);
    assert!(name.chars().count() <= 79, "{name:?}");
    assert!(
        name.starts_with(prefix) || name.chars().count() == 79,
        "{name:?}"
    );
    assert!(
        !name.contains(['/', '<', '>', '(', ')', '#', '"', '\'']),
        "{name:?}"
    );
    assert_eq!(name, address.object_name(prefix), "one name per address");
}

/// A manifest file as `fortisync plan` loads it: loaded or refused, and what loads validates.
pub fn manifest(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let mut manifests = Manifests::default();
    if manifests.add(&text, "fuzz", "default").is_err() {
        return;
    }
    for group in &manifests.address_groups {
        let _ = validate(&group.spec);
    }
    for connector in &manifests.external_connectors {
        assert_eq!(
            validate_external_connector(&connector.spec),
            Vec::<String>::new(),
            "a loaded connector must have passed its checks"
        );
    }
}
