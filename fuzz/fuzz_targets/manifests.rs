//! Any text as a manifest file for `fortisync plan/apply/doctor`: loading never panics; it is
//! either loaded (every document placed) or refused with the file and document named.
#![no_main]

use fortisync::cli::load::Manifests;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let mut m = Manifests::default();
    if let Err(e) = m.add(text, "fuzz.yaml", "default") {
        let message = e.to_string();
        assert!(message.contains("fuzz.yaml"), "the file is named: {message}");
    }
});
