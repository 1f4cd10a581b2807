//! The value forms FortiManager accepts on writes, and the canonical form it stores and
//! returns (subnet as `[ip, mask]`, members as a list of names, symbolic enums).

use std::net::Ipv4Addr;

use serde_json::{Map, Value};

use super::status::Status;
use super::symbolic;
use super::url::Table;

/// The object's name: `data.name`, else the name in the url; -10 when neither.
pub fn object_name(obj: &Map<String, Value>, url_name: Option<&str>) -> Result<String, Status> {
    match (obj.get("name"), url_name) {
        (Some(Value::String(n)), _) if !n.is_empty() => Ok(n.clone()),
        (None, Some(n)) => Ok(n.to_string()),
        _ => Err(Status::invalid_data()),
    }
}

/// What a new object starts as before the written fields.
pub fn defaults(t: Table) -> Map<String, Value> {
    let v = match t {
        Table::Address => {
            serde_json::json!({"type": "ipmask", "subnet": ["0.0.0.0", "0.0.0.0"], "comment": ""})
        }
        Table::Addrgrp | Table::Addrgrp6 => serde_json::json!({"member": [], "comment": ""}),
        Table::Address6 => serde_json::json!({"type": "ipprefix", "ip6": "::/0", "comment": ""}),
        Table::ExternalResource => {
            serde_json::json!({"type": "category", "status": "enable", "refresh-rate": 5})
        }
    };
    v.as_object().cloned().unwrap_or_default()
}

/// Puts an object in its stored (symbolic, canonical) form.
pub fn normalize(t: Table, mut obj: Map<String, Value>) -> Result<Map<String, Value>, Status> {
    symbolic::to_symbolic(t.id(), &mut obj);
    match t {
        Table::Address => {
            if let Some(subnet) = obj.get("subnet") {
                let [ip, mask] = parse_subnet(subnet).ok_or_else(Status::invalid_data)?;
                obj.insert(
                    "subnet".into(),
                    serde_json::json!([ip.to_string(), mask.to_string()]),
                );
            }
        }
        Table::Address6 => {
            if let Some(ip6) = obj.get("ip6") {
                let net: ipnet::Ipv6Net = ip6
                    .as_str()
                    .and_then(|s| s.parse().ok())
                    .ok_or_else(Status::invalid_data)?;
                obj.insert("ip6".into(), Value::from(net.to_string()));
            }
        }
        Table::Addrgrp | Table::Addrgrp6 => {
            for field in ["member", "exclude-member"] {
                if let Some(v) = obj.get(field) {
                    let names = member_names(v)?;
                    obj.insert(field.into(), names.into_iter().map(Value::from).collect());
                }
            }
        }
        Table::ExternalResource => {}
    }
    Ok(obj)
}

/// Member lists arrive as a name, a list of names or a list of `{"name": ..}`.
pub fn member_names(v: &Value) -> Result<Vec<String>, Status> {
    let one = |v: &Value| match v {
        Value::String(s) => Ok(s.clone()),
        Value::Object(o) => o
            .get("name")
            .and_then(Value::as_str)
            .map(str::to_string)
            .ok_or_else(Status::invalid_data),
        _ => Err(Status::invalid_data()),
    };
    match v {
        Value::Null => Ok(Vec::new()),
        Value::Array(list) => list.iter().map(one).collect(),
        other => Ok(vec![one(other)?]),
    }
}

/// Parses a subnet given as `[ip, mask]`, `"ip/len"`, `"ip/mask"` or `"ip mask"`.
pub fn parse_subnet(v: &Value) -> Option<[Ipv4Addr; 2]> {
    let (ip, mask) = match v {
        Value::Array(a) if a.len() == 2 => (a[0].as_str()?.to_string(), a[1].as_str()?.to_string()),
        Value::String(s) => {
            let (ip, mask) = s.split_once('/').or_else(|| s.split_once(' '))?;
            (ip.trim().to_string(), mask.trim().to_string())
        }
        _ => return None,
    };
    let ip: Ipv4Addr = ip.parse().ok()?;
    let mask: Ipv4Addr = match mask.parse::<u8>() {
        Ok(len) if len <= 32 => {
            Ipv4Addr::from(u32::MAX.checked_shl(32 - u32::from(len)).unwrap_or(0))
        }
        Ok(_) => return None,
        Err(_) => mask.parse().ok()?,
    };
    let m = u32::from(mask);
    // A netmask is contiguous ones.
    (m.leading_ones() + m.trailing_zeros() == 32).then_some([ip, mask])
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn subnet_forms_all_store_as_ip_and_mask() {
        for form in [
            json!("10.0.0.0/24"),
            json!("10.0.0.0/255.255.255.0"),
            json!(["10.0.0.0", "255.255.255.0"]),
            json!("10.0.0.0 255.255.255.0"),
        ] {
            assert_eq!(
                parse_subnet(&form),
                Some([
                    "10.0.0.0".parse().unwrap(),
                    "255.255.255.0".parse().unwrap()
                ]),
                "{form}"
            );
        }
        assert_eq!(parse_subnet(&json!("10.0.0.0/33")), None);
        assert_eq!(parse_subnet(&json!("10.0.0.0/255.0.255.0")), None);
    }
}
