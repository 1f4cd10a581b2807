//! The admission rules of an AddressGroup, for the paths that have no API server in front of
//! them (`fortisync plan/apply/demo`): the same checks the CRD's CEL rules and schema make,
//! with messages that name the field.

use std::collections::{BTreeMap, BTreeSet};

use crate::api::addressgroup::{AddressGroupSpec, MAX_PREFIX_LEN};
use crate::model::MemberAddress;

/// Every problem with `spec`, each naming its field; empty when it would be admitted.
pub fn validate(spec: &AddressGroupSpec) -> Vec<String> {
    let mut out = Vec::new();
    let name = &spec.group_name;
    if name.is_empty() || name.chars().count() > 79 {
        out.push("spec.groupName must be 1-79 characters (the FortiOS name limit)".into());
    }
    if name.contains(['<', '>', '(', ')', '#', '"', '\'', '/']) {
        out.push("spec.groupName must not contain < > ( ) # \" ' or / (refused by FortiOS)".into());
    }
    let prefix = &spec.address_prefix;
    let prefix_ok = prefix.len() <= MAX_PREFIX_LEN
        && prefix
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic())
        && prefix
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
    if !prefix_ok {
        out.push(format!(
            "spec.addressPrefix must start with a letter and be at most {MAX_PREFIX_LEN} characters of letters, digits, '_', '.', '-'"
        ));
    }
    if spec.target_ref.name.is_empty() {
        out.push("spec.targetRef.name must not be empty".into());
    }
    if spec.members.len() > 2000 {
        out.push("spec.members: at most 2000 members".into());
    }
    let mut seen = BTreeSet::new();
    for (i, m) in spec.members.iter().enumerate() {
        if let Err(e) = MemberAddress::parse(&m.address) {
            out.push(format!("spec.members[{i}].address: {e}"));
        }
        if !seen.insert(m.address.as_str()) {
            out.push(format!(
                "spec.members[{i}]: Duplicate value: {{\"address\":\"{}\"}}",
                m.address
            ));
        }
        if m.comment.as_ref().is_some_and(|c| c.chars().count() > 128) {
            out.push(format!("spec.members[{i}].comment: at most 128 characters"));
        }
    }
    for (first, second, canonical) in same_addresses(spec) {
        if spec.members[first].address == spec.members[second].address {
            continue; // the list-map key's `Duplicate value` above
        }
        out.push(format!(
            "spec.members[{second}].address: {:?} is {canonical}, the same address as spec.members[{first}].address ({:?}); both would be one device object",
            spec.members[second].address, spec.members[first].address
        ));
    }
    out
}

/// Members that are one address, however written (`192.0.2.60` and `192.0.2.60/32`,
/// `2001:db8::5` and `2001:DB8:0:0::5`): `(first index, later index, canonical form)`. The API
/// server's list-map key compares the text, so differently written ones pass admission.
pub fn same_addresses(spec: &AddressGroupSpec) -> Vec<(usize, usize, MemberAddress)> {
    let mut first: BTreeMap<String, usize> = BTreeMap::new();
    let mut out = Vec::new();
    for (i, m) in spec.members.iter().enumerate() {
        let Ok(address) = MemberAddress::parse(&m.address) else {
            continue;
        };
        match first.get(&address.to_string()) {
            Some(&j) => out.push((j, i, address)),
            None => {
                first.insert(address.to_string(), i);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(group: &str, prefix: &str, members: &[&str]) -> AddressGroupSpec {
        serde_json::from_value(serde_json::json!({
            "targetRef": {"kind": "FortiGate", "name": "fw"},
            "groupName": group,
            "addressPrefix": prefix,
            "members": members.iter().map(|m| serde_json::json!({"address": m})).collect::<Vec<_>>(),
        }))
        .expect("spec")
    }

    #[test]
    fn a_good_spec_has_no_problems() {
        assert!(
            validate(&spec(
                "g",
                "fs_",
                &["192.0.2.1", "10.0.0.0/8", "2001:db8::/64"]
            ))
            .is_empty()
        );
    }

    #[test]
    fn each_problem_names_its_field() {
        let cases = [
            (spec("a/b", "fs_", &[]), "spec.groupName"),
            (spec(&"x".repeat(80), "fs_", &[]), "spec.groupName"),
            (spec("g", "1fs", &[]), "spec.addressPrefix"),
            (spec("g", &"p".repeat(33), &[]), "spec.addressPrefix"),
            (
                spec("g", "fs_", &["192.0.2.300"]),
                "spec.members[0].address",
            ),
            (spec("g", "fs_", &["10.0.0.1/8"]), "spec.members[0].address"),
            (
                spec("g", "fs_", &["192.0.2.1", "192.0.2.1"]),
                "spec.members[1]: Duplicate",
            ),
            (
                spec("g", "fs_", &["192.0.2.60", "10.0.0.1", "192.0.2.60/32"]),
                "spec.members[2].address: \"192.0.2.60/32\" is 192.0.2.60, the same address as spec.members[0].address",
            ),
            (
                spec("g", "fs_", &["2001:db8::5", "2001:DB8:0:0::5"]),
                "spec.members[1].address: \"2001:DB8:0:0::5\" is 2001:db8::5",
            ),
        ];
        for (s, field) in cases {
            let problems = validate(&s);
            assert!(
                problems.iter().any(|p| p.starts_with(field)),
                "{field}: {problems:?}"
            );
        }
    }
}
