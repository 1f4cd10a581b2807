//! Device JSON → what the planner sees. FortiOS and FortiManager (and FortiOS bodies through
//! FortiManager's proxy) describe address objects and groups alike, so one reading serves all.

use serde_json::Value;

use super::fortigate::Family;
use super::plan::{ObservedAddress, ObservedGroupObject};
use crate::device::fortios::member_names;
use crate::model::MemberAddress;

/// The address object fields the planner reads; listing only these keeps each observe small
/// (a listing holds every object under the prefix, often those of every group on the device).
pub const ADDRESS_FIELDS: [&str; 7] = [
    "name", "type", "subnet", "start-ip", "end-ip", "ip6", "comment",
];

/// Our candidates among `objects`: names that start with `prefix` (device filters are
/// "contains" or SQL `like`, where `_` is a wildcard; ownership needs a literal prefix).
pub fn addresses(objects: &[Value], prefix: &str, family: Family) -> Vec<ObservedAddress> {
    objects
        .iter()
        .filter_map(|o| {
            let name = o["name"].as_str()?;
            name.starts_with(prefix).then(|| ObservedAddress {
                name: name.to_string(),
                address: MemberAddress::from_object(o, family.v6),
                comment: o["comment"].as_str().unwrap_or_default().to_string(),
            })
        })
        .collect()
}

/// A group object's members and comment.
pub fn group(object: &Value) -> ObservedGroupObject {
    ObservedGroupObject {
        members: member_names(object),
        comment: object["comment"].as_str().unwrap_or_default().to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn only_names_starting_with_the_prefix_are_candidates() {
        let objects = vec![
            json!({"name": "fs_192.0.2.1", "subnet": "192.0.2.1 255.255.255.255", "comment": "c"}),
            json!({"name": "fsX192.0.2.2", "subnet": "192.0.2.2 255.255.255.255"}),
            json!({"name": "admin-fs_1", "subnet": "10.0.0.1/32"}),
        ];
        let found = addresses(&objects, "fs_", Family::V4);
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].name, "fs_192.0.2.1");
        assert_eq!(found[0].comment, "c");
        assert!(found[0].address.is_some());
    }

    #[test]
    fn group_members_are_read_as_names_or_objects() {
        assert_eq!(
            group(&json!({"member": [{"name": "a"}, "b"], "comment": "m"})),
            ObservedGroupObject {
                members: vec!["a".into(), "b".into()],
                comment: "m".into()
            }
        );
    }
}
