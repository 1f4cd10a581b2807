//! The object database of one ADOM: addresses, address groups and external resources,
//! with FortiManager's validation and referential integrity.

use serde_json::{Map, Value};
use std::collections::BTreeMap;

use super::forms::{defaults, member_names, normalize, object_name};
use super::status::Status;
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
    address6: ObjectTable,
    addrgrp6: ObjectTable,
    external_resource: ObjectTable,
}

/// Addresses every ADOM has, as FortiOS does: `all` and `none` (matches nothing).
const BUILT_IN_ADDRESSES: [&str; 2] = ["all", "none"];

impl Table {
    /// The group table whose members are this address table's objects, and back.
    fn is_group(self) -> bool {
        matches!(self, Table::Addrgrp | Table::Addrgrp6)
    }
    fn is_address_or_group(self) -> bool {
        !matches!(self, Table::ExternalResource)
    }
}

impl AdomObjects {
    /// A table, read-only.
    pub fn table(&self, t: Table) -> &ObjectTable {
        match t {
            Table::Address => &self.address,
            Table::Addrgrp => &self.addrgrp,
            Table::Address6 => &self.address6,
            Table::Addrgrp6 => &self.addrgrp6,
            Table::ExternalResource => &self.external_resource,
        }
    }

    fn table_mut(&mut self, t: Table) -> &mut ObjectTable {
        match t {
            Table::Address => &mut self.address,
            Table::Addrgrp => &mut self.addrgrp,
            Table::Address6 => &mut self.address6,
            Table::Addrgrp6 => &mut self.addrgrp6,
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
        if t.is_address_or_group() && self.referenced(name) {
            return Err(Status::in_use());
        }
        self.table_mut(t).remove(name);
        Ok(())
    }

    /// `clone`: copies `name` under `data.name`; -3 when the source is missing, -2 when the
    /// new name is taken.
    pub fn clone_object(&mut self, t: Table, name: &str, data: &Value) -> Result<String, Status> {
        let new = data
            .get("name")
            .and_then(Value::as_str)
            .filter(|n| !n.is_empty())
            .ok_or_else(Status::invalid_data)?;
        let mut obj = self
            .table(t)
            .get(name)
            .cloned()
            .ok_or_else(Status::not_found)?;
        if self.table(t).contains_key(new) {
            return Err(Status::already_exists());
        }
        obj.insert("name".into(), Value::from(new));
        self.table_mut(t).insert(new.to_string(), obj);
        Ok(new.to_string())
    }

    /// Adds (`add`), removes (`delete`) or clears (`unset`) members through
    /// `.../addrgrp/{grp}/member` (or `addrgrp6`).
    pub fn edit_members(
        &mut self,
        t: Table,
        group: &str,
        method: &str,
        data: &Value,
        rules: Rules,
    ) -> Result<(), Status> {
        let mut grp = self
            .table(t)
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
        self.put(t, None, grp, rules).map(|_| ())
    }

    /// True when a group lists `name` as a member or excluded member.
    pub fn referenced(&self, name: &str) -> bool {
        self.addrgrp
            .values()
            .chain(self.addrgrp6.values())
            .any(|g| {
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
        if t.is_group() {
            self.check_members(t, &name, &merged, rules)?;
        }
        self.table_mut(t).insert(name.clone(), merged);
        Ok(name)
    }

    fn check_members(
        &self,
        t: Table,
        group: &str,
        grp: &Map<String, Value>,
        rules: Rules,
    ) -> Result<(), Status> {
        let members = member_names(grp.get("member").unwrap_or(&Value::Null))?;
        if members.is_empty() && !rules.empty_group_ok {
            return Err(Status::invalid_data());
        }
        for m in &members {
            let (addresses, groups) = if t == Table::Addrgrp6 {
                (&self.address6, &self.addrgrp6)
            } else {
                (&self.address, &self.addrgrp)
            };
            let known = addresses.contains_key(m)
                || BUILT_IN_ADDRESSES.contains(&m.as_str())
                || (m != group && groups.contains_key(m));
            if !known {
                return Err(Status::dependency_failed());
            }
        }
        Ok(())
    }
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
        db.edit_members(Table::Addrgrp, "g", "add", &json!(["h2"]), OLD)
            .unwrap();
        assert_eq!(db.table(Table::Addrgrp)["g"]["member"], json!(["h1", "h2"]));
        db.edit_members(Table::Addrgrp, "g", "delete", &json!(["h1"]), OLD)
            .unwrap();
        assert_eq!(db.table(Table::Addrgrp)["g"]["member"], json!(["h2"]));
        assert_eq!(
            db.edit_members(Table::Addrgrp, "g", "delete", &json!(["h2"]), OLD),
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
