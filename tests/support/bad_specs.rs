//! One table of bad specs, run through the real API server (tests/e2e/admission.rs) and
//! through the offline checks `fortisync plan` makes (tests/admission_offline.rs), so the
//! CRDs' rules and `reconcile::validate` cannot drift apart.
//!
//! Each row changes one field of a good manifest. Both sides must refuse it with a message
//! that names `field` and contains `expect`. Every row is checked by both: the rules CEL cannot
//! express (`expiresAt` in the past: CEL has no `now()`) are not in this table.
#![allow(dead_code)] // each test crate uses its own half

use serde_json::{Value, json};

/// Which good manifest a row edits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A `FortiGate` connection.
    FortiGate,
    /// A `FortiManager` connection.
    FortiManager,
    /// An `AddressGroup`.
    AddressGroup,
}

/// How the offline path refuses a row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Offline {
    /// `validate*()` reports `field: …expect…`.
    Validate,
    /// The typed manifest cannot be built (an enum or a timestamp that does not parse), so
    /// loading fails; serde's message names no path (at best the value) and contains this.
    Load(&'static str),
}

/// One spec both sides must refuse.
#[derive(Debug, Clone)]
pub struct BadSpec {
    /// What is wrong, for failure messages.
    pub what: &'static str,
    /// The good manifest edited.
    pub kind: Kind,
    /// Path set to `value` (`spec.members[3].address`).
    pub set: &'static str,
    /// The bad value.
    pub value: Value,
    /// The field the refusal names, as the API server writes it.
    pub field: &'static str,
    /// Text the refusal contains after the field.
    pub expect: &'static str,
    /// How `fortisync plan` refuses it.
    pub offline: Offline,
}

impl BadSpec {
    /// The good manifest of `kind` with this row's change.
    pub fn manifest(&self) -> Value {
        let mut manifest = good(self.kind);
        set(&mut manifest, self.set, self.value.clone());
        manifest
    }
}

/// A manifest both sides admit.
pub fn good(kind: Kind) -> Value {
    match kind {
        Kind::FortiGate => json!({
            "apiVersion": "fortisync.dev/v1alpha1",
            "kind": "FortiGate",
            "metadata": {"name": "fw"},
            "spec": {
                "url": "https://fw.example.com:8443",
                "credentialsSecretRef": {"name": "fw-token", "tokenKey": "token"},
                "tls": {"caBundleSecretRef": {"name": "fw-ca", "key": "ca.crt"}},
            },
        }),
        Kind::FortiManager => json!({
            "apiVersion": "fortisync.dev/v1alpha1",
            "kind": "FortiManager",
            "metadata": {"name": "fmg"},
            "spec": {
                "url": "https://fmg.example.com",
                "credentialsSecretRef": {"name": "fmg.login", "usernameKey": "user", "passwordKey": "pass"},
                "maxConcurrentRequests": 2,
                "adom": "root",
            },
        }),
        Kind::AddressGroup => json!({
            "apiVersion": "fortisync.dev/v1alpha1",
            "kind": "AddressGroup",
            "metadata": {"name": "grp"},
            "spec": {
                "targetRef": {"kind": "FortiGate", "name": "fw"},
                "groupName": "allowed-admins",
                "members": [
                    {"address": "192.0.2.10"},
                    {"address": "10.0.0.0/24"},
                    {"address": "2001:db8::/64"},
                    {"address": "192.0.2.1-192.0.2.9", "comment": "lab range", "expiresAt": "2030-01-01T00:00:00Z"},
                ],
            },
        }),
    }
}

/// A good manifest with one edge value (each one step from a refusal) that both sides admit.
#[derive(Debug, Clone)]
pub struct GoodEdge {
    /// What the edge is.
    pub what: &'static str,
    /// The good manifest edited.
    pub kind: Kind,
    /// Paths set, and their values.
    pub set: Vec<(&'static str, Value)>,
}

impl GoodEdge {
    /// The good manifest of `kind` with this edge's changes.
    pub fn manifest(&self) -> Value {
        let mut manifest = good(self.kind);
        for (path, value) in &self.set {
            set(&mut manifest, path, value.clone());
        }
        manifest
    }
}

/// Edge values both sides must still admit.
#[rustfmt::skip] // a table: one row a line
pub fn good_edges() -> Vec<GoodEdge> {
    use Kind::*;
    let edge = |what, kind, set: &[(&'static str, Value)]| GoodEdge { what, kind, set: set.to_vec() };
    let member = "spec.members[3].address";
    vec![
        edge("one-address range", AddressGroup, &[(member, json!("192.0.2.1-192.0.2.1"))]),
        edge("range 9 to 10 (not a text order)", AddressGroup, &[(member, json!("10.0.0.9-10.0.0.10"))]),
        edge("IPv6 range across a compressed group", AddressGroup, &[(member, json!("2001:db8::ffff-2001:db8::1:0"))]),
        edge("IPv6 range in upper case", AddressGroup, &[(member, json!("2001:DB8::1-2001:db8::2"))]),
        edge("IPv6 range of two full-length addresses", AddressGroup, &[(member, json!("2001:0db8:0000:0000:0000:0000:0000:0001-2001:0db8:0000:0000:0000:0000:0000:0002"))]),
        edge("whole IPv4 space with the opt-in", AddressGroup, &[("spec.allowAnyAddress", json!(true)), (member, json!("0.0.0.0-255.255.255.255"))]),
        edge("::/0 with the opt-in", AddressGroup, &[("spec.allowAnyAddress", json!(true)), (member, json!("::/0"))]),
        edge("IPv4 space but its first address", AddressGroup, &[(member, json!("0.0.0.1-255.255.255.255"))]),
        edge("half of the IPv4 space", AddressGroup, &[(member, json!("128.0.0.0/1"))]),
        edge("group name that starts like a built-in", AddressGroup, &[("spec.groupName", json!("allowed"))]),
        edge("one request in flight with threshold 1", FortiGate, &[("spec.lockout", json!({"threshold": 1})), ("spec.maxConcurrentRequests", json!(1))]),
        edge("threshold - 1 requests in flight", FortiGate, &[("spec.maxConcurrentRequests", json!(2))]),
        edge("dotted Secret name", FortiGate, &[("spec.credentialsSecretRef.name", json!("fw.token-1"))]),
        edge("Go duration with two units", FortiGate, &[("spec.resyncInterval", json!("1h30m"))]),
    ]
}

/// Every bad spec (more than 25; grouped by kind).
#[rustfmt::skip] // a table: one row a line
pub fn bad_specs() -> Vec<BadSpec> {
    use Kind::*;
    let row = |what, kind, set, value: Value, field, expect| BadSpec { what, kind, set, value, field, expect, offline: Offline::Validate };
    let load = |what, kind, set, value: Value, field, expect, serde| BadSpec { offline: Offline::Load(serde), ..row(what, kind, set, value, field, expect) };
    let any = |what, value: &str| row(what, AddressGroup, "spec.members[3].address", json!(value), "spec.members", "unless spec.allowAnyAddress is true");
    let addr = |what, value: &str, expect| row(what, AddressGroup, "spec.members[3].address", json!(value), "spec.members[3].address", expect);
    vec![
        // FortiGate (and every connection field, shared with FortiManager).
        row("url without https", FortiGate, "spec.url", json!("http://fw.example.com"), "spec.url", "spec.url must be an https:// URL"),
        row("url without a scheme", FortiGate, "spec.url", json!("fw.example.com"), "spec.url", "spec.url must be an https:// URL"),
        row("token and password both", FortiGate, "spec.credentialsSecretRef", json!({"name": "fw-token", "tokenKey": "t", "usernameKey": "u", "passwordKey": "p"}), "spec.credentialsSecretRef", "set either tokenKey, or usernameKey and passwordKey"),
        row("username without password", FortiGate, "spec.credentialsSecretRef", json!({"name": "fw-token", "usernameKey": "u"}), "spec.credentialsSecretRef", "usernameKey and passwordKey go together"),
        row("credentials Secret name climbs directories", FortiGate, "spec.credentialsSecretRef.name", json!("../../etc"), "spec.credentialsSecretRef.name", "must be a Secret name (a DNS-1123 subdomain)"),
        row("credentials Secret name in upper case", FortiGate, "spec.credentialsSecretRef.name", json!("FW_Token"), "spec.credentialsSecretRef.name", "must be a Secret name (a DNS-1123 subdomain)"),
        row("token key climbs directories", FortiGate, "spec.credentialsSecretRef.tokenKey", json!("../token"), "spec.credentialsSecretRef.tokenKey", "must be a Secret key"),
        row("CA bundle Secret name climbs directories", FortiGate, "spec.tls.caBundleSecretRef.name", json!("../ca"), "spec.tls.caBundleSecretRef.name", "must be a Secret name (a DNS-1123 subdomain)"),
        row("CA bundle key is ..", FortiGate, "spec.tls.caBundleSecretRef.key", json!(".."), "spec.tls.caBundleSecretRef.key", "must be a Secret key"),
        row("source address not an IP", FortiGate, "spec.sourceAddress", json!("10.0.0.300"), "spec.sourceAddress", "spec.sourceAddress must be an IPv4 or IPv6 address"),
        row("resync interval too short", FortiGate, "spec.resyncInterval", json!("1s"), "spec.resyncInterval", "must be a duration between 10s and 24h"),
        row("resync interval not a duration", FortiGate, "spec.resyncInterval", json!("often"), "spec.resyncInterval", "must be a duration between 10s and 24h"),
        row("resync interval with a fraction", FortiGate, "spec.resyncInterval", json!("1.5h"), "spec.resyncInterval", "must be a duration between 10s and 24h"),
        row("lockout threshold above 10", FortiGate, "spec.lockout", json!({"threshold": 11}), "spec.lockout.threshold", "should be less than or equal to 10"),
        row("lockout threshold 0", FortiGate, "spec.lockout", json!({"threshold": 0}), "spec.lockout.threshold", "should be greater than or equal to 1"),
        row("more than 32 requests in flight", FortiGate, "spec.maxConcurrentRequests", json!(100), "spec.maxConcurrentRequests", "should be less than or equal to 32"),
        row("as many requests in flight as the lockout threshold", FortiGate, "spec.maxConcurrentRequests", json!(3), "spec.maxConcurrentRequests", "must be below spec.lockout.threshold"),
        row("vdom with a space", FortiGate, "spec.vdom", json!("root vdom"), "spec.vdom", "spec.vdom must be 1-31 characters"),
        // FortiManager.
        row("lockout threshold lowered to the requests in flight", FortiManager, "spec.lockout", json!({"threshold": 2}), "spec.maxConcurrentRequests", "must be below spec.lockout.threshold"),
        row("login Secret name with a slash", FortiManager, "spec.credentialsSecretRef.name", json!("fmg/login"), "spec.credentialsSecretRef.name", "must be a Secret name (a DNS-1123 subdomain)"),
        row("password key with a slash", FortiManager, "spec.credentialsSecretRef.passwordKey", json!("pass/word"), "spec.credentialsSecretRef.passwordKey", "must be a Secret key"),
        row("adom with a space", FortiManager, "spec.adom", json!("my adom"), "spec.adom", "spec.adom must be 1-64 characters"),
        row("too many lock retries", FortiManager, "spec.workspace", json!({"lockRetries": 51}), "spec.workspace.lockRetries", "should be less than or equal to 50"),
        // AddressGroup members.
        addr("IPv4 octet above 255", "192.0.2.300", "must be an IP address (192.0.2.10), a CIDR"),
        addr("hostname", "fw.example.com", "must be an IP address (192.0.2.10), a CIDR"),
        addr("IPv4-mapped IPv6", "::ffff:192.0.2.10", "must be an IP address (192.0.2.10), a CIDR"),
        addr("leading space", " 192.0.2.10", "must be an IP address (192.0.2.10), a CIDR"),
        addr("range with three ends", "192.0.2.1-192.0.2.5-192.0.2.9", "must be an IP address (192.0.2.10), a CIDR"),
        addr("CIDR with host bits", "10.0.0.1/24", "a CIDR must not have host bits set"),
        addr("IPv6 CIDR with host bits", "2001:db8::1/64", "a CIDR must not have host bits set"),
        addr("range across families", "192.0.2.1-2001:db8::1", "a range needs two addresses of one IP family"),
        addr("reversed IPv4 range", "192.0.2.9-192.0.2.1", "a range must not end before it starts"),
        addr("reversed IPv4 range, 10 before 9", "10.0.0.10-10.0.0.9", "a range must not end before it starts"),
        addr("reversed IPv4 range across the top bit", "128.0.0.0-127.255.255.255", "a range must not end before it starts"),
        addr("reversed IPv6 range", "2001:db8::9-2001:db8::1", "a range must not end before it starts"),
        addr("reversed IPv6 range across a compressed group", "2001:db8::1:0-2001:db8::ffff", "a range must not end before it starts"),
        addr("member longer than two hex IPv6 addresses", "0000:0000:0000:0000:0000:0000:192.168.100.101-0000:0000:0000:0000:0000:0000:192.168.100.102", "Too long: may not be more than 79 bytes"),
        row("duplicate member", AddressGroup, "spec.members[1].address", json!("192.0.2.10"), "spec.members[1]", "Duplicate value"),
        // Allow-everything members without spec.allowAnyAddress (refused on the spec object, so
        // the field is the list: CEL cannot name the item).
        any("0.0.0.0/0 without the opt-in", "0.0.0.0/0"),
        any("::/0 without the opt-in", "::/0"),
        any("::/0 spelled in full without the opt-in", "0:0:0:0:0:0:0:0/0"),
        any("whole IPv4 range without the opt-in", "0.0.0.0-255.255.255.255"),
        any("whole IPv6 range without the opt-in", "::-ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"),
        any("whole IPv6 range spelled in full without the opt-in", "0:0:0:0:0:0:0:0-FFFF:FFFF:FFFF:FFFF:FFFF:FFFF:FFFF:FFFF"),
        row("0.0.0.0/0 with the opt-in set to false", AddressGroup, "spec", json!({"targetRef": {"kind": "FortiGate", "name": "fw"}, "groupName": "g", "allowAnyAddress": false, "members": [{"address": "0.0.0.0/0"}]}), "spec.members", "unless spec.allowAnyAddress is true"),
        // AddressGroup fields.
        row("group name all", AddressGroup, "spec.groupName", json!("all"), "spec.groupName", "must not be a FortiOS built-in object name"),
        row("group name NONE", AddressGroup, "spec.groupName", json!("NONE"), "spec.groupName", "must not be a FortiOS built-in object name"),
        row("group name too long", AddressGroup, "spec.groupName", json!("g".repeat(80)), "spec.groupName", "Too long: may not be more than 79 bytes"),
        row("group name with markup", AddressGroup, "spec.groupName", json!("admins<script>"), "spec.groupName", "must not contain < > ( ) #"),
        row("prefix too long", AddressGroup, "spec.addressPrefix", json!("p".repeat(33)), "spec.addressPrefix", "Too long: may not be more than 32 bytes"),
        row("prefix with a slash", AddressGroup, "spec.addressPrefix", json!("fs/"), "spec.addressPrefix", "spec.addressPrefix must start with a letter"),
        row("empty target name", AddressGroup, "spec.targetRef.name", json!(""), "spec.targetRef.name", "should be at least 1 chars long"),
        load("unknown target kind", AddressGroup, "spec.targetRef.kind", json!("FortiAnalyzer"), "spec.targetRef.kind", "Unsupported value: \"FortiAnalyzer\"", "FortiAnalyzer"),
        load("unknown membership", AddressGroup, "spec.membership", json!("Some"), "spec.membership", "Unsupported value: \"Some\"", "Some"),
        load("expiry not a timestamp", AddressGroup, "spec.members[3].expiresAt", json!("next tuesday"), "spec.members[3].expiresAt", "must be of type date-time", "failed to parse"),
    ]
}

/// Sets `path` (`a.b[2].c`) in `value` to `new`, creating objects on the way; a missing list
/// index is a bug in the table.
pub fn set(value: &mut Value, path: &str, new: Value) {
    let mut at = value;
    for step in path.split('.') {
        let (key, index) = match step.split_once('[') {
            Some((key, rest)) => (
                key,
                Some(rest.trim_end_matches(']').parse::<usize>().expect("index")),
            ),
            None => (step, None),
        };
        at = at
            .as_object_mut()
            .unwrap_or_else(|| panic!("{path}: {key} is not inside an object"))
            .entry(key)
            .or_insert_with(|| json!({}));
        if let Some(i) = index {
            at = at
                .get_mut(i)
                .unwrap_or_else(|| panic!("{path}: no item {i} in the good manifest"));
        }
    }
    *at = new;
}

/// Whether `message` names `field` and says `expect` in that one complaint: the text after
/// `<field>: ` and before the next complaint contains `expect`.
pub fn names_field(message: &str, field: &str, expect: &str) -> bool {
    let head = format!("{field}: ");
    message.match_indices(&head).any(|(at, _)| {
        let rest = &message[at + head.len()..];
        let end = rest.find("\n").unwrap_or(rest.len());
        rest[..end].contains(expect)
    })
}
