//! Any text as a member/entry address: parsing never panics, a parsed address prints in a
//! canonical form that parses back to itself, and its device object name is within FortiOS's
//! name limit and free of the characters FortiOS refuses.
#![no_main]

use fortisync::model::MemberAddress;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let problems = fortisync::api::validate::member_address_problems(text);
    let Ok(address) = MemberAddress::parse(text) else {
        return;
    };
    let canonical = address.to_string();
    let again = MemberAddress::parse(&canonical).expect("the canonical form parses");
    assert_eq!(again, address, "canonical form round-trips");
    assert_eq!(again.to_string(), canonical);
    let name = address.object_name("fs_");
    assert!(name.chars().count() <= 79, "object name over 79: {name}");
    assert!(
        !name.contains(['<', '>', '(', ')', '#', '"', '\'']),
        "a refused character in {name}"
    );
    let _ = problems;
});
