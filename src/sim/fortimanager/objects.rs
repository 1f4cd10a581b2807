//! The object database of one ADOM: addresses, address groups and external resources,
//! with FortiManager's validation and referential integrity.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;

use serde_json::{Map, Value};

use super::status::Status;
use super::symbolic;
use super::url::Table;

/// One table: objects by name.
pub type ObjectTable = BTreeMap<String, Map<String, Value>>;

/// Version-dependent rules of an ADOM.
#[derive(Debug, Clone, Copy)]
pub struct Rules {
    /// An addrgrp without members is legal (ADOM FortiOS ≥ 7.2, #0769154).
    pub empty_group_ok: bool,
}

/// The objects of one ADOM (committed, or a workspace's pending copy).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AdomObjects {
    address: ObjectTable,
    addrgrp: ObjectTable,
    external_resource: ObjectTable,
}

impl AdomObjects {
    /// A table, read-only.
    pub fn table(&self, t: Table) -> &ObjectTable {
        match t {
            Table::Address => &self.address,
            Table::Addrgrp => &self.addrgrp,
            Table::ExternalResource => &self.external_resource,
        }
    }

    fn table_mut(&mut self, t: Table) -> &mut ObjectTable {
        match t {
            Table::Address => &mut self.address,
            Table::Addrgrp => &mut self.addrgrp,
            Table::ExternalResource => &mut self.external_resource,
        }
    }

    /// `add`: creates each object in `data` (object or list); -2 when one exists.
    pub fn add(
        &mut self,
        t: Table,
        url_name: Option<&str>,
        data: &Value,
        rules: Rules,
    ) -> Result<String, Status> {
        self.write_each(url_name, data, |db, name, obj| {
            if db.table(t).contains_key(name) {
                return Err(Status::already_exists());
            }
            db.put(t, None, obj, rules)
        })
    }

    /// `set`: creates or overwrites the given fields.
    pub fn set(
        &mut self,
        t: Table,
        url_name: Option<&str>,
        data: &Value,
        rules: Rules,
    ) -> Result<String, Status> {
        self.write_each(url_name, data, |db, name, obj| {
            let existing = db.table(t).get(name).cloned();
            db.put(t, existing, obj, rules)
        })
    }

    /// `update`: changes fields of an existing object; -3 when it does not exist.
    pub fn update(
        &mut self,
        t: Table,
        url_name: Option<&str>,
        data: &Value,
        rules: Rules,
    ) -> Result<String, Status> {
        self.write_each(url_name, data, |db, name, obj| {
            let existing = db
                .table(t)
                .get(name)
                .cloned()
                .ok_or_else(Status::not_found)?;
            db.put(t, Some(existing), obj, rules)
        })
    }

    /// `delete`: -3 when missing, -10015 while another object references it.
    pub fn delete(&mut self, t: Table, name: &str) -> Result<(), Status> {
        if !self.table(t).contains_key(name) {
            return Err(Status::not_found());
        }
        if matches!(t, Table::Address | Table::Addrgrp) && self.referenced(name) {
            return Err(Status::in_use());
        }
        self.table_mut(t).remove(name);
        Ok(())
    }

    /// Adds (`add`), removes (`delete`) or clears (`unset`) members through `.../addrgrp/{grp}/member`.
    pub fn edit_members(
        &mut self,
        group: &str,
        method: &str,
        data: &Value,
        rules: Rules,
    ) -> Result<(), Status> {
        let mut grp = self
            .addrgrp
            .get(group)
            .cloned()
            .ok_or_else(Status::not_found)?;
        let mut members = member_names(grp.get("member").unwrap_or(&Value::Null))?;
        let given = member_names(data)?;
        match method {
            "add" | "set" => {
                for m in given {
                    if !members.contains(&m) {
                        members.push(m);
                    }
                }
            }
            "delete" => {
                for m in &given {
                    if !members.contains(m) {
                        return Err(Status::not_found());
                    }
                }
                members.retain(|m| !given.contains(m));
            }
            "unset" => members.clear(),
            _ => return Err(Status::no_such_command()),
        }
        grp.insert(
            "member".into(),
            members.into_iter().map(Value::from).collect(),
        );
        self.put(Table::Addrgrp, None, grp, rules).map(|_| ())
    }

    /// True when a group lists `name` as a member or excluded member.
    pub fn referenced(&self, name: &str) -> bool {
        self.addrgrp.values().any(|g| {
            ["member", "exclude-member"].iter().any(|f| {
                member_names(g.get(*f).unwrap_or(&Value::Null))
                    .is_ok_and(|ms| ms.iter().any(|m| m == name))
            })
        })
    }

    /// Out-of-band write (an admin in the GUI): stores `obj` over the defaults, skipping
    /// integrity checks so a test can create any drift it wants.
    pub fn force_put(&mut self, t: Table, obj: Map<String, Value>) -> Result<String, Status> {
        let name = object_name(&obj, None)?;
        let mut full = defaults(t);
        full.extend(obj);
        let obj = normalize(t, full)?;
        self.table_mut(t).insert(name.clone(), obj);
        Ok(name)
    }

    /// Out-of-band delete; true when something was removed.
    pub fn force_delete(&mut self, t: Table, name: &str) -> bool {
        self.table_mut(t).remove(name).is_some()
    }

    fn write_each(
        &mut self,
        url_name: Option<&str>,
        data: &Value,
        mut op: impl FnMut(&mut Self, &str, Map<String, Value>) -> Result<String, Status>,
    ) -> Result<String, Status> {
        let items: Vec<&Value> = match data {
            Value::Array(list) if !list.is_empty() => list.iter().collect(),
            Value::Object(_) => vec![data],
            _ => return Err(Status::invalid_data()),
        };
        let prepare = |item: &Value| -> Result<(String, Map<String, Value>), Status> {
            let mut obj = item.as_object().cloned().ok_or_else(Status::invalid_data)?;
            let name = object_name(&obj, url_name)?;
            obj.insert("name".into(), Value::from(name.clone()));
            Ok((name, obj))
        };
        if let [item] = items.as_slice() {
            // A single write validates before it stores, so a failure changes nothing.
            let (name, obj) = prepare(item)?;
            return op(self, &name, obj);
        }
        // A failed item of a bulk write leaves the table as it was: work on a copy.
        let mut draft = self.clone();
        let mut last = String::new();
        for item in items {
            let (name, obj) = prepare(item)?;
            last = op(&mut draft, &name, obj)?;
        }
        *self = draft;
        Ok(last)
    }

    /// Merges `obj` over `existing`, normalises, validates and stores it.
    fn put(
        &mut self,
        t: Table,
        existing: Option<Map<String, Value>>,
        obj: Map<String, Value>,
        rules: Rules,
    ) -> Result<String, Status> {
        let name = object_name(&obj, None)?;
        let mut merged = existing.unwrap_or_else(|| defaults(t));
        let unset: Vec<String> = obj
            .get("unset attrs")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default();
        for (k, v) in obj {
            if k != "unset attrs" {
                merged.insert(k, v);
            }
        }
        for attr in unset {
            match attr.as_str() {
                "member" | "exclude-member" => merged.insert(attr, Value::Array(Vec::new())),
                _ => merged.remove(&attr),
            };
        }
        let merged = normalize(t, merged)?;
        if t == Table::Addrgrp {
            self.check_members(&name, &merged, rules)?;
        }
        self.table_mut(t).insert(name.clone(), merged);
        Ok(name)
    }

    fn check_members(
        &self,
        group: &str,
        grp: &Map<String, Value>,
        rules: Rules,
    ) -> Result<(), Status> {
        let members = member_names(grp.get("member").unwrap_or(&Value::Null))?;
        if members.is_empty() && !rules.empty_group_ok {
            return Err(Status::invalid_data());
        }
        for m in &members {
            let known =
                self.address.contains_key(m) || (m != group && self.addrgrp.contains_key(m));
            if !known {
                return Err(Status::dependency_failed());
            }
        }
        Ok(())
    }
}

fn object_name(obj: &Map<String, Value>, url_name: Option<&str>) -> Result<String, Status> {
    match (obj.get("name"), url_name) {
        (Some(Value::String(n)), _) if !n.is_empty() => Ok(n.clone()),
        (None, Some(n)) => Ok(n.to_string()),
        _ => Err(Status::invalid_data()),
    }
}

fn defaults(t: Table) -> Map<String, Value> {
    let v = match t {
        Table::Address => {
            serde_json::json!({"type": "ipmask", "subnet": ["0.0.0.0", "0.0.0.0"], "comment": ""})
        }
        Table::Addrgrp => serde_json::json!({"member": [], "comment": ""}),
        Table::ExternalResource => {
            serde_json::json!({"type": "category", "status": "enable", "refresh-rate": 5})
        }
    };
    v.as_object().cloned().unwrap_or_default()
}

/// Puts an object in its stored (symbolic, canonical) form.
fn normalize(t: Table, mut obj: Map<String, Value>) -> Result<Map<String, Value>, Status> {
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
        Table::Addrgrp => {
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
fn member_names(v: &Value) -> Result<Vec<String>, Status> {
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

    const NEW: Rules = Rules {
        empty_group_ok: true,
    };
    const OLD: Rules = Rules {
        empty_group_ok: false,
    };

    fn db_with_hosts() -> AdomObjects {
        let mut db = AdomObjects::default();
        db.add(Table::Address, None, &json!([{"name": "h1", "subnet": "10.0.0.1/32"}, {"name": "h2", "subnet": ["10.0.0.2", "255.255.255.255"]}]), NEW)
            .unwrap();
        db
    }

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

    #[test]
    fn duplicate_add_is_minus_two_and_changes_nothing() {
        let mut db = db_with_hosts();
        let before = db.clone();
        assert_eq!(
            db.add(Table::Address, None, &json!({"name": "h1"}), NEW),
            Err(Status::already_exists())
        );
        assert_eq!(db, before);
    }

    #[test]
    fn update_of_missing_object_is_minus_three() {
        let mut db = db_with_hosts();
        assert_eq!(
            db.update(Table::Address, Some("nope"), &json!({"comment": "x"}), NEW),
            Err(Status::not_found())
        );
    }

    #[test]
    fn referenced_address_cannot_be_deleted() {
        let mut db = db_with_hosts();
        db.add(
            Table::Addrgrp,
            None,
            &json!({"name": "g", "member": ["h1"]}),
            NEW,
        )
        .unwrap();
        assert_eq!(db.delete(Table::Address, "h1"), Err(Status::in_use()));
        assert_eq!(db.delete(Table::Address, "h2"), Ok(()));
    }

    #[test]
    fn unknown_member_is_a_dependency_failure() {
        let mut db = db_with_hosts();
        assert_eq!(
            db.add(
                Table::Addrgrp,
                None,
                &json!({"name": "g", "member": ["ghost"]}),
                NEW
            ),
            Err(Status::dependency_failed())
        );
    }

    #[test]
    fn empty_group_depends_on_adom_version() {
        let mut db = db_with_hosts();
        assert_eq!(
            db.add(
                Table::Addrgrp,
                None,
                &json!({"name": "g", "member": []}),
                OLD
            ),
            Err(Status::invalid_data())
        );
        assert!(
            db.add(
                Table::Addrgrp,
                None,
                &json!({"name": "g", "member": []}),
                NEW
            )
            .is_ok()
        );
    }

    #[test]
    fn member_sub_url_adds_and_removes() {
        let mut db = db_with_hosts();
        db.add(
            Table::Addrgrp,
            None,
            &json!({"name": "g", "member": ["h1"]}),
            OLD,
        )
        .unwrap();
        db.edit_members("g", "add", &json!(["h2"]), OLD).unwrap();
        assert_eq!(db.table(Table::Addrgrp)["g"]["member"], json!(["h1", "h2"]));
        db.edit_members("g", "delete", &json!(["h1"]), OLD).unwrap();
        assert_eq!(db.table(Table::Addrgrp)["g"]["member"], json!(["h2"]));
        assert_eq!(
            db.edit_members("g", "delete", &json!(["h2"]), OLD),
            Err(Status::invalid_data())
        );
    }

    #[test]
    fn unset_attrs_clears_members() {
        let mut db = db_with_hosts();
        db.add(
            Table::Addrgrp,
            None,
            &json!({"name": "g", "member": ["h1"]}),
            NEW,
        )
        .unwrap();
        db.set(
            Table::Addrgrp,
            None,
            &json!({"name": "g", "unset attrs": ["member"]}),
            NEW,
        )
        .unwrap();
        assert_eq!(db.table(Table::Addrgrp)["g"]["member"], json!([]));
    }
}
