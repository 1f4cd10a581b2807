//! Enum fields in their two forms: symbolic with `verbose: 1`, numeric without (§1.2).
//!
//! Only fields whose numeric values the facts give (or whose order follows the documented
//! choice list, noted below) are converted; every other field is always symbolic.

use serde_json::{Map, Value};

/// Choice lists where the position is the numeric value.
fn choices(field: &str) -> Option<&'static [&'static str]> {
    Some(match field {
        // 0 = ipmask is confirmed; the rest follow the documented choice order.
        "type@address" => &[
            "ipmask",
            "iprange",
            "fqdn",
            "wildcard",
            "geography",
            "url",
            "wildcard-fqdn",
            "nsx",
            "aws",
            "dynamic",
            "interface-subnet",
            "mac",
            "fqdn-group",
            "route-tag",
        ],
        // §4.6: UNKNOWN/up/down is 0/1/2.
        "conn_status" => &["UNKNOWN", "up", "down"],
        "conf_status" => &["unknown", "insync", "outofsync"],
        "db_status" => &["unknown", "nomod", "mod"],
        // §4.1: enable/disable or 1/0.
        "adom-status" | "status@external-resource" => &["disable", "enable"],
        // §5: numeric 0 means disabled.
        "workspace-mode" => &["disabled", "normal", "workflow", "per-adom"],
        _ => return None,
    })
}

fn key(scope: &str, field: &str) -> String {
    match field {
        "type" | "status" => format!("{field}@{scope}"),
        _ => field.to_string(),
    }
}

/// Rewrites symbolic values as numbers for a non-verbose reply.
pub fn to_numeric(scope: &str, obj: &mut Map<String, Value>) {
    for (field, value) in obj.iter_mut() {
        let (Some(list), Some(s)) = (choices(&key(scope, field)), value.as_str()) else {
            continue;
        };
        if let Some(i) = list.iter().position(|c| *c == s) {
            *value = Value::from(i);
        }
    }
}

/// Rewrites numbers as symbols on a write (writes accept either form).
pub fn to_symbolic(scope: &str, obj: &mut Map<String, Value>) {
    for (field, value) in obj.iter_mut() {
        let (Some(list), Some(n)) = (choices(&key(scope, field)), value.as_u64()) else {
            continue;
        };
        if let Some(s) = list.get(n as usize) {
            *value = Value::from(*s);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn address_type_round_trips() {
        let mut obj = json!({"name": "h", "type": "ipmask"})
            .as_object()
            .unwrap()
            .clone();
        to_numeric("address", &mut obj);
        assert_eq!(obj["type"], json!(0));
        to_symbolic("address", &mut obj);
        assert_eq!(obj["type"], json!("ipmask"));
    }

    #[test]
    fn unknown_fields_stay_symbolic() {
        let mut obj = json!({"type": "category"}).as_object().unwrap().clone();
        to_numeric("addrgrp", &mut obj);
        assert_eq!(obj["type"], json!("category"));
    }
}
