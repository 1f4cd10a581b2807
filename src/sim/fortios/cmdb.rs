//! The CMDB tables a FortiGate keeps per VDOM, with FortiOS's validation, defaults and error
//! codes (facts page §2.4, §3): duplicate `-5`, entry in use `-23`, invalid value `-651` (with
//! `cli_error`), name too long `-72`, table full `-4`, empty group `-56`.

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, Ipv6Addr};

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use super::version::FosVersion;

/// A CMDB table the simulator serves per VDOM.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Table {
    /// `firewall/address`
    #[serde(rename = "firewall/address")]
    Address,
    /// `firewall/address6`
    #[serde(rename = "firewall/address6")]
    Address6,
    /// `firewall/addrgrp`
    #[serde(rename = "firewall/addrgrp")]
    Addrgrp,
    /// `firewall/addrgrp6`
    #[serde(rename = "firewall/addrgrp6")]
    Addrgrp6,
    /// `system/external-resource`
    #[serde(rename = "system/external-resource")]
    ExternalResource,
}

impl Table {
    /// Every per-VDOM table.
    pub const ALL: [Table; 5] = [
        Table::Address,
        Table::Address6,
        Table::Addrgrp,
        Table::Addrgrp6,
        Table::ExternalResource,
    ];

    /// `(path, name)` as URLs and envelopes spell them.
    pub fn path_name(self) -> (&'static str, &'static str) {
        match self {
            Table::Address => ("firewall", "address"),
            Table::Address6 => ("firewall", "address6"),
            Table::Addrgrp => ("firewall", "addrgrp"),
            Table::Addrgrp6 => ("firewall", "addrgrp6"),
            Table::ExternalResource => ("system", "external-resource"),
        }
    }

    /// The table at `path/name`.
    pub fn from_path(path: &str, name: &str) -> Option<Table> {
        Table::ALL
            .into_iter()
            .find(|t| t.path_name() == (path, name))
    }

    fn name_limit(self) -> usize {
        match self {
            Table::ExternalResource => 35,
            _ => 79,
        }
    }

    /// For groups: the tables their members may name.
    fn member_tables(self) -> Option<[Table; 2]> {
        match self {
            Table::Addrgrp => Some([Table::Address, Table::Addrgrp]),
            Table::Addrgrp6 => Some([Table::Address6, Table::Addrgrp6]),
            _ => None,
        }
    }
}

/// A CMDB write refused the way FortiOS refuses it.
#[derive(Debug, Clone, PartialEq)]
pub struct CmdbError {
    /// HTTP status (500 for CLI errors, 404 for a missing entry, 400 for a malformed request).
    pub http_status: u16,
    /// FortiOS `error` code, absent on 404.
    pub code: Option<i64>,
    /// `cli_error` diagnostics, as some errors carry.
    pub cli_error: Option<String>,
}

impl CmdbError {
    fn cli(code: i64, cli_error: impl Into<String>) -> Self {
        Self {
            http_status: 500,
            code: Some(code),
            cli_error: Some(cli_error.into()),
        }
    }
    /// The entry does not exist: 404 without `error` (as on a real 6.2/6.4 GET).
    pub fn not_found() -> Self {
        Self {
            http_status: 404,
            code: None,
            cli_error: None,
        }
    }
    /// Malformed request body.
    pub fn bad_request() -> Self {
        Self {
            http_status: 400,
            code: None,
            cli_error: None,
        }
    }
    fn invalid(field: &str, value: &str) -> Self {
        Self::cli(
            -651,
            format!(
                "node_check_object fail! for {field} {value}\n\nvalue parse error before '{value}'\nCommand fail. Return code -651"
            ),
        )
    }
}

/// Version-dependent limits of one device.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Firmware version.
    pub version: FosVersion,
    /// Members per group.
    pub member_cap: usize,
}

/// The tables of one VDOM.
#[derive(Debug, Clone, Default)]
pub struct VdomTables {
    tables: BTreeMap<Table, BTreeMap<String, Value>>,
}

const BUILT_IN_ADDRESSES: [&str; 2] = ["all", "none"];

impl VdomTables {
    /// Every object of a table, in name order.
    pub fn list(&self, table: Table) -> impl Iterator<Item = &Value> {
        self.tables.get(&table).into_iter().flat_map(|t| t.values())
    }

    /// One object.
    pub fn get(&self, table: Table, name: &str) -> Option<&Value> {
        self.tables.get(&table)?.get(name)
    }

    fn exists(&self, table: Table, name: &str) -> bool {
        self.get(table, name).is_some()
    }

    /// Creates an object (`POST`).
    pub fn create(
        &mut self,
        table: Table,
        body: &Value,
        limits: Limits,
    ) -> Result<String, CmdbError> {
        let name = body
            .get("name")
            .and_then(Value::as_str)
            .ok_or_else(|| CmdbError::cli(-56, "name: empty values are not allowed"))?;
        check_name(table, name)?;
        if self.exists(table, name)
            || (matches!(table, Table::Address | Table::Address6)
                && BUILT_IN_ADDRESSES.contains(&name))
        {
            return Err(CmdbError::cli(
                -5,
                format!("object already exists (mkey='{name}')"),
            ));
        }
        let object = normalise(table, name, body, None, limits)?;
        self.check_members(table, name, &object, limits)?;
        self.tables
            .entry(table)
            .or_default()
            .insert(name.to_string(), object);
        Ok(name.to_string())
    }

    /// Updates an object (`PUT`): given attributes replace the old ones, sub-tables wholesale.
    pub fn update(
        &mut self,
        table: Table,
        name: &str,
        body: &Value,
        limits: Limits,
    ) -> Result<(), CmdbError> {
        let old = self
            .get(table, name)
            .cloned()
            .ok_or_else(CmdbError::not_found)?;
        if let Some(new_name) = body
            .get("name")
            .and_then(Value::as_str)
            .filter(|n| *n != name)
        {
            return Err(CmdbError::invalid("name", new_name));
        }
        let object = normalise(table, name, body, Some(&old), limits)?;
        self.check_members(table, name, &object, limits)?;
        self.tables
            .entry(table)
            .or_default()
            .insert(name.to_string(), object);
        Ok(())
    }

    /// Deletes an object unless something references it (`-23`).
    pub fn delete(&mut self, table: Table, name: &str) -> Result<(), CmdbError> {
        if !self.exists(table, name) {
            return Err(CmdbError::not_found());
        }
        if let Some(group) = self.referenced_by(table, name) {
            return Err(CmdbError::cli(
                -23,
                format!("entry is used by firewall group {group}"),
            ));
        }
        self.tables.entry(table).or_default().remove(name);
        Ok(())
    }

    /// Adds one member to a group (`POST .../addrgrp/<g>/member`).
    pub fn add_member(
        &mut self,
        table: Table,
        group: &str,
        member: &str,
        limits: Limits,
    ) -> Result<(), CmdbError> {
        self.edit_members(table, group, limits, |members| {
            if members.iter().any(|m| m["name"] == member) {
                return Err(CmdbError::cli(
                    -5,
                    format!("object already exists (mkey='{member}')"),
                ));
            }
            members.push(json!({"name": member, "q_origin_key": member}));
            Ok(())
        })
    }

    /// Removes one member from a group (`DELETE .../addrgrp/<g>/member/<m>`).
    pub fn remove_member(
        &mut self,
        table: Table,
        group: &str,
        member: &str,
        limits: Limits,
    ) -> Result<(), CmdbError> {
        self.edit_members(table, group, limits, |members| {
            let before = members.len();
            members.retain(|m| m["name"] != member);
            if members.len() == before {
                Err(CmdbError::not_found())
            } else {
                Ok(())
            }
        })
    }

    /// Updates one existing member entry (`PUT .../addrgrp/<g>/member/<m>`): a body naming
    /// another address renames the entry in place; one naming the same (or none) changes
    /// nothing. A member that is not there yet is 405: PUT does not create children (facts
    /// §2.2), and clients answer it with a POST.
    pub fn update_member(
        &mut self,
        table: Table,
        group: &str,
        member: &str,
        body: &Value,
        limits: Limits,
    ) -> Result<(), CmdbError> {
        let new = body.get("name").and_then(Value::as_str).unwrap_or(member);
        self.edit_members(table, group, limits, |members| {
            let index = members
                .iter()
                .position(|m| m["name"] == member)
                .ok_or(CmdbError {
                    http_status: 405,
                    code: None,
                    cli_error: None,
                })?;
            if new != member && members.iter().any(|m| m["name"] == new) {
                return Err(CmdbError::cli(
                    -5,
                    format!("object already exists (mkey='{new}')"),
                ));
            }
            members[index] = json!({"name": new, "q_origin_key": new});
            Ok(())
        })
    }

    /// Edits a group's member list and stores it only if the result passes the group checks.
    fn edit_members(
        &mut self,
        table: Table,
        group: &str,
        limits: Limits,
        edit: impl FnOnce(&mut Vec<Value>) -> Result<(), CmdbError>,
    ) -> Result<(), CmdbError> {
        let mut object = self
            .get(table, group)
            .cloned()
            .ok_or_else(CmdbError::not_found)?;
        edit(
            object["member"]
                .as_array_mut()
                .ok_or_else(CmdbError::not_found)?,
        )?;
        self.check_members(table, group, &object, limits)?;
        self.tables
            .entry(table)
            .or_default()
            .insert(group.to_string(), object);
        Ok(())
    }

    fn referenced_by(&self, table: Table, name: &str) -> Option<String> {
        let group_tables: &[Table] = match table {
            Table::Address | Table::Addrgrp => &[Table::Addrgrp],
            Table::Address6 | Table::Addrgrp6 => &[Table::Addrgrp6],
            Table::ExternalResource => &[],
        };
        group_tables.iter().find_map(|gt| {
            self.list(*gt).find_map(|g| {
                let uses = g["member"]
                    .as_array()
                    .is_some_and(|ms| ms.iter().any(|m| m["name"] == name));
                uses.then(|| g["name"].as_str().unwrap_or_default().to_string())
            })
        })
    }

    fn check_members(
        &self,
        table: Table,
        group: &str,
        object: &Value,
        limits: Limits,
    ) -> Result<(), CmdbError> {
        let Some(member_tables) = table.member_tables() else {
            return Ok(());
        };
        let members = object["member"].as_array().cloned().unwrap_or_default();
        if members.is_empty() && !limits.version.empty_group_allowed() {
            // FortiOS before 7.2 refuses to save a group without members (#0769154).
            return Err(CmdbError::cli(-56, "member: empty values are not allowed"));
        }
        if members.len() > limits.member_cap {
            return Err(CmdbError::cli(
                -4,
                format!(
                    "member: maximum number of entries ({}) has been reached",
                    limits.member_cap
                ),
            ));
        }
        for member in &members {
            let name = member["name"].as_str().unwrap_or_default();
            let known = BUILT_IN_ADDRESSES.contains(&name)
                || (name != group && member_tables.iter().any(|t| self.exists(*t, name)));
            if !known {
                return Err(CmdbError::invalid("member", name));
            }
        }
        Ok(())
    }
}

fn check_name(table: Table, name: &str) -> Result<(), CmdbError> {
    if name.is_empty() {
        return Err(CmdbError::cli(-56, "name: empty values are not allowed"));
    }
    if name.chars().count() > table.name_limit() {
        return Err(CmdbError::cli(
            -72,
            format!(
                "name: field value exceeds the maximum number of characters ({})",
                table.name_limit()
            ),
        ));
    }
    if name.contains(['<', '>', '(', ')', '#', '"', '\'']) {
        return Err(CmdbError::cli(
            -173,
            "name: the string contains XSS vulnerability characters",
        ));
    }
    Ok(())
}

/// Fills defaults and canonical forms the way a device stores an object.
fn normalise(
    table: Table,
    name: &str,
    body: &Value,
    old: Option<&Value>,
    limits: Limits,
) -> Result<Value, CmdbError> {
    let mut object: Map<String, Value> = match old {
        Some(Value::Object(map)) => map.clone(),
        _ => defaults(table),
    };
    let Value::Object(fields) = body else {
        return Err(CmdbError::bad_request());
    };
    for (key, value) in fields {
        object.insert(key.clone(), value.clone());
    }
    object.insert("name".into(), Value::String(name.to_string()));
    object.insert("q_origin_key".into(), Value::String(name.to_string()));
    if let Some(comment) = object.get("comment").and_then(Value::as_str)
        && comment.chars().count() > 255
    {
        return Err(CmdbError::cli(
            -72,
            "comment: field value exceeds the maximum number of characters (255)",
        ));
    }
    match table {
        Table::Address => normalise_address(&mut object)?,
        Table::Address6 => normalise_address6(&mut object)?,
        Table::Addrgrp | Table::Addrgrp6 => normalise_members(&mut object)?,
        Table::ExternalResource => normalise_feed(&mut object, limits)?,
    }
    Ok(Value::Object(object))
}

fn defaults(table: Table) -> Map<String, Value> {
    let value = match table {
        Table::Address => {
            json!({"type": "ipmask", "subnet": "0.0.0.0 0.0.0.0", "start-ip": "0.0.0.0", "end-ip": "0.0.0.0", "comment": "", "color": 0, "associated-interface": "", "allow-routing": "disable", "uuid": uuid_like()})
        }
        Table::Address6 => {
            json!({"type": "ipprefix", "ip6": "::/0", "start-ip": "::", "end-ip": "::", "comment": "", "color": 0, "uuid": uuid_like()})
        }
        Table::Addrgrp | Table::Addrgrp6 => {
            json!({"type": "default", "member": [], "comment": "", "color": 0, "exclude": "disable", "allow-routing": "disable", "uuid": uuid_like()})
        }
        Table::ExternalResource => {
            json!({"status": "enable", "type": "category", "update-method": "feed", "category": 0, "comments": "", "resource": "", "refresh-rate": 5, "user-agent": "curl/7.58.0", "username": "", "source-ip": "0.0.0.0", "interface-select-method": "auto"})
        }
    };
    match value {
        Value::Object(map) => map,
        _ => Map::new(),
    }
}

fn uuid_like() -> String {
    let bytes: [u8; 16] = rand::random();
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

fn text<'a>(object: &'a Map<String, Value>, key: &str) -> &'a str {
    object.get(key).and_then(Value::as_str).unwrap_or_default()
}

/// Parses `"a.b.c.d m.m.m.m"` or `"a.b.c.d/len"` into (address, prefix length).
pub fn parse_subnet(value: &str) -> Option<(Ipv4Addr, u8)> {
    if let Some((ip, len)) = value.split_once('/') {
        let len: u8 = len.trim().parse().ok()?;
        return (len <= 32).then_some((ip.trim().parse().ok()?, len));
    }
    let mut parts = value.split_whitespace();
    let ip: Ipv4Addr = parts.next()?.parse().ok()?;
    let mask: Ipv4Addr = match parts.next() {
        Some(m) => m.parse().ok()?,
        None => Ipv4Addr::new(255, 255, 255, 255),
    };
    let bits = u32::from(mask);
    // A netmask is contiguous ones.
    (bits.leading_ones() + bits.trailing_zeros() == 32 || bits == 0)
        .then_some((ip, bits.leading_ones() as u8))
}

fn mask_of(len: u8) -> Ipv4Addr {
    Ipv4Addr::from(if len == 0 {
        0
    } else {
        u32::MAX << (32 - u32::from(len))
    })
}

fn normalise_address(object: &mut Map<String, Value>) -> Result<(), CmdbError> {
    match text(object, "type") {
        "ipmask" => {
            let subnet = text(object, "subnet").to_string();
            let (ip, len) =
                parse_subnet(&subnet).ok_or_else(|| CmdbError::invalid("subnet", &subnet))?;
            // Devices store the dotted form and keep host bits as given.
            object.insert(
                "subnet".into(),
                Value::String(format!("{ip} {}", mask_of(len))),
            );
        }
        "iprange" => check_range::<Ipv4Addr>(object)?,
        "fqdn" | "geography" | "wildcard" | "dynamic" | "interface-subnet" | "mac"
        | "wildcard-fqdn" => {}
        other => return Err(CmdbError::invalid("type", other)),
    }
    Ok(())
}

/// `start-ip` and `end-ip` parse as addresses of one family, in order (`-73` otherwise).
fn check_range<A: std::str::FromStr + Ord>(object: &Map<String, Value>) -> Result<(), CmdbError> {
    let parse = |field: &str| -> Result<A, CmdbError> {
        let value = text(object, field);
        value.parse().map_err(|_| CmdbError::invalid(field, value))
    };
    if parse("end-ip")? < parse("start-ip")? {
        return Err(CmdbError::cli(
            -73,
            "end IP cannot be smaller than the start IP",
        ));
    }
    Ok(())
}

fn normalise_address6(object: &mut Map<String, Value>) -> Result<(), CmdbError> {
    match text(object, "type") {
        "ipprefix" => {
            let prefix = text(object, "ip6").to_string();
            let (ip, len) = prefix.split_once('/').unwrap_or((&prefix, "128"));
            let ip: Ipv6Addr = ip.parse().map_err(|_| CmdbError::invalid("ip6", &prefix))?;
            let len: u8 = len
                .parse()
                .ok()
                .filter(|l| *l <= 128)
                .ok_or_else(|| CmdbError::invalid("ip6", &prefix))?;
            object.insert("ip6".into(), Value::String(format!("{ip}/{len}")));
        }
        "iprange" => check_range::<Ipv6Addr>(object)?,
        "fqdn" | "geography" | "dynamic" | "template" | "mac" => {}
        other => return Err(CmdbError::invalid("type", other)),
    }
    Ok(())
}

fn normalise_members(object: &mut Map<String, Value>) -> Result<(), CmdbError> {
    let members = match object.get("member") {
        Some(Value::Array(items)) => items.clone(),
        Some(Value::Null) | None => Vec::new(),
        Some(_) => return Err(CmdbError::invalid("member", "?")),
    };
    let mut out = Vec::with_capacity(members.len());
    for item in members {
        let name = match &item {
            Value::String(s) => s.clone(),
            Value::Object(m) => m
                .get("name")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string(),
            _ => String::new(),
        };
        if name.is_empty() {
            return Err(CmdbError::cli(-56, "member: empty values are not allowed"));
        }
        out.push(json!({"name": name, "q_origin_key": name}));
    }
    object.insert("member".into(), Value::Array(out));
    Ok(())
}

fn normalise_feed(object: &mut Map<String, Value>, limits: Limits) -> Result<(), CmdbError> {
    let method = text(object, "update-method").to_string();
    if method == "push" && !limits.version.dynamic_push() {
        return Err(CmdbError::invalid("update-method", &method));
    }
    if !matches!(method.as_str(), "feed" | "push") {
        return Err(CmdbError::invalid("update-method", &method));
    }
    let kind = text(object, "type").to_string();
    if !matches!(
        kind.as_str(),
        "category" | "domain" | "malware" | "address" | "mac-address" | "data" | "generic-address"
    ) {
        return Err(CmdbError::invalid("type", &kind));
    }
    let rate = object
        .get("refresh-rate")
        .and_then(Value::as_u64)
        .unwrap_or(0);
    if !(1..=43_200).contains(&rate) {
        return Err(CmdbError::invalid("refresh-rate", &rate.to_string()));
    }
    if text(object, "resource").chars().count() > 511 {
        return Err(CmdbError::cli(
            -72,
            "resource: field value exceeds the maximum number of characters (511)",
        ));
    }
    let category = object.get("category").and_then(Value::as_u64).unwrap_or(0);
    if kind == "category" && !(category == 0 || (192..=221).contains(&category)) {
        return Err(CmdbError::invalid("category", &category.to_string()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(v: &str) -> Limits {
        let version: FosVersion = v.parse().expect("version");
        Limits {
            version,
            member_cap: version.default_member_cap(),
        }
    }

    fn with_addresses(names: &[&str]) -> VdomTables {
        let mut t = VdomTables::default();
        for n in names {
            t.create(
                Table::Address,
                &json!({"name": n, "subnet": "10.0.0.1/32"}),
                limits("7.4.3"),
            )
            .expect("create");
        }
        t
    }

    #[test]
    fn cidr_input_is_stored_as_dotted_mask_with_host_bits_kept() {
        let mut t = VdomTables::default();
        t.create(
            Table::Address,
            &json!({"name": "h", "subnet": "127.0.0.100/30"}),
            limits("7.4.3"),
        )
        .expect("create");
        assert_eq!(
            t.get(Table::Address, "h").expect("h")["subnet"],
            "127.0.0.100 255.255.255.252"
        );
        assert_eq!(t.get(Table::Address, "h").expect("h")["q_origin_key"], "h");
    }

    #[test]
    fn duplicate_is_minus_5_and_built_ins_are_taken() {
        let mut t = with_addresses(&["a"]);
        let dup = t
            .create(
                Table::Address,
                &json!({"name": "a", "subnet": "10.0.0.2/32"}),
                limits("7.4.3"),
            )
            .unwrap_err();
        assert_eq!((dup.http_status, dup.code), (500, Some(-5)));
        let all = t
            .create(Table::Address, &json!({"name": "all"}), limits("7.4.3"))
            .unwrap_err();
        assert_eq!(all.code, Some(-5));
    }

    #[test]
    fn invalid_values_are_minus_651_with_cli_error() {
        let mut t = VdomTables::default();
        let e = t
            .create(
                Table::Address,
                &json!({"name": "x", "subnet": "10.0.0.300/32"}),
                limits("7.4.3"),
            )
            .unwrap_err();
        assert_eq!(e.code, Some(-651));
        assert!(e.cli_error.expect("cli_error").contains("10.0.0.300/32"));
        let mask = t
            .create(
                Table::Address,
                &json!({"name": "x", "subnet": "10.0.0.0 255.0.255.0"}),
                limits("7.4.3"),
            )
            .unwrap_err();
        assert_eq!(mask.code, Some(-651));
    }

    #[test]
    fn long_names_are_minus_72() {
        let mut t = VdomTables::default();
        let e = t
            .create(
                Table::Address,
                &json!({"name": "n".repeat(80), "subnet": "10.0.0.1/32"}),
                limits("7.4.3"),
            )
            .unwrap_err();
        assert_eq!(e.code, Some(-72));
        assert!(
            t.create(
                Table::Address,
                &json!({"name": "n".repeat(79), "subnet": "10.0.0.1/32"}),
                limits("7.4.3")
            )
            .is_ok()
        );
    }

    #[test]
    fn groups_check_members_references_and_caps() {
        let mut t = with_addresses(&["a", "b"]);
        let unknown = t
            .create(
                Table::Addrgrp,
                &json!({"name": "g", "member": [{"name": "zzz"}]}),
                limits("7.4.3"),
            )
            .unwrap_err();
        assert_eq!(unknown.code, Some(-651));
        t.create(
            Table::Addrgrp,
            &json!({"name": "g", "member": [{"name": "a"}]}),
            limits("7.4.3"),
        )
        .expect("group");
        let used = t.delete(Table::Address, "a").unwrap_err();
        assert_eq!(used.code, Some(-23));
        t.add_member(Table::Addrgrp, "g", "b", limits("7.4.3"))
            .expect("add member");
        t.remove_member(Table::Addrgrp, "g", "a", limits("7.4.3"))
            .expect("remove member");
        t.delete(Table::Address, "a").expect("now unused");
        let cap = Limits {
            member_cap: 1,
            ..limits("7.4.3")
        };
        let full = t.add_member(Table::Addrgrp, "g", "none", cap).unwrap_err();
        assert_eq!(full.code, Some(-4));
    }

    #[test]
    fn empty_groups_are_refused_before_7_2() {
        let mut t = with_addresses(&["a"]);
        let e = t
            .create(
                Table::Addrgrp,
                &json!({"name": "g", "member": []}),
                limits("7.0.12"),
            )
            .unwrap_err();
        assert_eq!(e.code, Some(-56));
        assert!(
            t.create(
                Table::Addrgrp,
                &json!({"name": "g", "member": []}),
                limits("7.2.0")
            )
            .is_ok()
        );
        t.add_member(Table::Addrgrp, "g", "a", limits("7.0.12"))
            .expect("add");
        let last = t
            .remove_member(Table::Addrgrp, "g", "a", limits("7.0.12"))
            .unwrap_err();
        assert_eq!(last.code, Some(-56));
    }

    #[test]
    fn ipv6_objects_belong_in_addrgrp6_only() {
        let mut t = VdomTables::default();
        t.create(
            Table::Address6,
            &json!({"name": "v6", "ip6": "2001:db8:0::1/128"}),
            limits("7.4.3"),
        )
        .expect("v6");
        assert_eq!(
            t.get(Table::Address6, "v6").expect("v6")["ip6"],
            "2001:db8::1/128"
        );
        let wrong = t
            .create(
                Table::Addrgrp,
                &json!({"name": "g", "member": [{"name": "v6"}]}),
                limits("7.4.3"),
            )
            .unwrap_err();
        assert_eq!(wrong.code, Some(-651));
        t.create(
            Table::Addrgrp6,
            &json!({"name": "g6", "member": ["v6"]}),
            limits("7.4.3"),
        )
        .expect("addrgrp6 with a string member");
    }

    #[test]
    fn push_feeds_need_7_2_1() {
        let mut t = VdomTables::default();
        let feed = json!({"name": "feed", "type": "address", "update-method": "push", "resource": "https://edl.example/list"});
        assert_eq!(
            t.create(Table::ExternalResource, &feed, limits("7.2.0"))
                .unwrap_err()
                .code,
            Some(-651)
        );
        assert!(
            t.create(Table::ExternalResource, &feed, limits("7.2.1"))
                .is_ok()
        );
        let long = json!({"name": "f".repeat(36), "type": "address"});
        assert_eq!(
            t.create(Table::ExternalResource, &long, limits("7.4.3"))
                .unwrap_err()
                .code,
            Some(-72)
        );
    }
}
