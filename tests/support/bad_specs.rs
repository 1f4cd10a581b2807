//! One table of bad specs, run through the real API server (tests/e2e/admission.rs) and
//! through the offline checks `fortisync plan` makes (tests/admission_offline.rs), so the
//! CRDs' rules and `reconcile::validate` cannot drift apart.
//!
//! Each row changes one field of a good manifest. Both sides must refuse it with a message
//! that names `field` and contains `expect`. Every row is checked by both: what admission
//! cannot decide (`expiresAt` in the past: CEL has no `now()`; a `targetRef` or `entriesFrom`
//! naming an object that does not exist) is not in this table but decided at reconcile, with a
//! condition (tests/e2e/addressgroup*.rs, tests/e2e/externalconnector.rs, tests/cli_plan.rs).
//!
//! Adding a kind (TrustedHost, say): a [`Kind`] variant and its entry in [`Kind::ALL`], its
//! [`good`] manifest, its rows in [`bad_specs`] (and edges in [`good_edges`]), and its
//! validator in `problems()` of tests/admission_offline.rs; tests/e2e/admission.rs needs
//! nothing more.
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
    /// An `ExternalConnector`.
    ExternalConnector,
}

impl Kind {
    /// Every kind the table covers.
    pub const ALL: [Kind; 4] = [
        Kind::FortiGate,
        Kind::FortiManager,
        Kind::AddressGroup,
        Kind::ExternalConnector,
    ];
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
        Kind::ExternalConnector => json!({
            "apiVersion": "fortisync.dev/v1alpha1",
            "kind": "ExternalConnector",
            "metadata": {"name": "edl"},
            "spec": {
                "targetRef": {"kind": "FortiGate", "name": "fw"},
                "resourceName": "fortisync-edl",
                "mode": "Feed",
                "entries": [
                    {"address": "192.0.2.10"},
                    {"address": "10.0.0.0/24"},
                    {"address": "2001:db8::/64", "comment": "lab v6"},
                    {"address": "192.0.2.1-192.0.2.9", "expiresAt": "2030-01-01T00:00:00Z"},
                ],
                "entriesFrom": [
                    {"configMapRef": {"name": "blocklist", "key": "list.txt"}},
                    {"addressGroupRef": {"name": "grp"}},
                ],
                "feed": {
                    "refreshRate": 5,
                    "url": "https://edl.example.com:8443/edl/default/edl",
                    "credentialsSecretRef": {"name": "edl-auth"},
                    "serverIdentityCheck": "Full",
                },
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
        edge("group name of 79 characters", AddressGroup, &[("spec.groupName", json!("g".repeat(79)))]),
        edge("prefix of 32 characters", AddressGroup, &[("spec.addressPrefix", json!("p".repeat(32)))]),
        edge("resource name of 35 characters", ExternalConnector, &[("spec.resourceName", json!("r".repeat(35)))]),
        edge("resource name with g but no dash", ExternalConnector, &[("spec.resourceName", json!("global-edl"))]),
        edge("push connector without a feed block", ExternalConnector, &[("spec.mode", json!("Push")), ("spec.feed", json!(null))]),
        edge("plain-HTTP feed URL to an in-cluster Service", ExternalConnector, &[("spec.feed.url", json!("http://fortisync-edl.fortisync.svc:8080/edl/default/edl"))]),
        edge("feed URL to an IPv6 literal with a query", ExternalConnector, &[("spec.feed.url", json!("https://[2001:db8::1]:8443/edl?list=a"))]),
        edge("refresh rate of 30 days", ExternalConnector, &[("spec.feed.refreshRate", json!(43200))]),
        edge("refresh rate of one minute", ExternalConnector, &[("spec.feed.refreshRate", json!(1))]),
        edge("1000 inline entries", ExternalConnector, &[("spec.entries", many_entries(1000))]),
        edge("dotted ConfigMap key", ExternalConnector, &[("spec.entriesFrom[0].configMapRef.key", json!(".hidden-list"))]),
        edge("feed credentials with their own keys", ExternalConnector, &[("spec.feed.credentialsSecretRef", json!({"name": "edl-auth", "usernameKey": "user", "passwordKey": "pass.word"}))]),
    ]
}

/// Every bad spec (at least 60 for the AddressGroup and ExternalConnector; grouped by kind).
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
        row("url with an empty host (https:///host is a path)", FortiGate, "spec.url", json!("https:///fw.example.com"), "spec.url", "spec.url must be an https:// URL"),
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
        load("unknown deletion policy", AddressGroup, "spec.deletionPolicy", json!("Keep"), "spec.deletionPolicy", "Unsupported value: \"Keep\"", "Keep"),
        load("unknown management policy", AddressGroup, "spec.managementPolicy", json!("ReadOnly"), "spec.managementPolicy", "Unsupported value: \"ReadOnly\"", "ReadOnly"),
        row("empty group name", AddressGroup, "spec.groupName", json!(""), "spec.groupName", "spec.groupName must be 1-79 characters"),
        row("group name with a quote", AddressGroup, "spec.groupName", json!("admins\"x"), "spec.groupName", "must not contain < > ( ) #"),
        row("group name with a slash", AddressGroup, "spec.groupName", json!("dmz/admins"), "spec.groupName", "must not contain < > ( ) #"),
        row("prefix starting with a digit", AddressGroup, "spec.addressPrefix", json!("1fs_"), "spec.addressPrefix", "spec.addressPrefix must start with a letter"),
        row("empty prefix", AddressGroup, "spec.addressPrefix", json!(""), "spec.addressPrefix", "spec.addressPrefix must start with a letter"),
        row("target name over 253 characters", AddressGroup, "spec.targetRef.name", json!("t".repeat(254)), "spec.targetRef.name", "Too long: may not be more than 253 bytes"),
        addr("empty member", "", "must be an IP address (192.0.2.10), a CIDR"),
        addr("IPv6 address with a zone", "fe80::1%eth0", "must be an IP address (192.0.2.10), a CIDR"),
        addr("IPv4 with a leading zero", "010.0.0.1", "must be an IP address (192.0.2.10), a CIDR"),
        addr("IPv4 prefix length 33", "10.0.0.0/33", "must be an IP address (192.0.2.10), a CIDR"),
        addr("IPv6 prefix length 129", "2001:db8::/129", "must be an IP address (192.0.2.10), a CIDR"),
        row("member comment over 128 characters", AddressGroup, "spec.members[3].comment", json!("c".repeat(129)), "spec.members[3].comment", "Too long: may not be more than 128 bytes"),
        row("more than 2000 members", AddressGroup, "spec.members", many_entries(2001), "spec.members", "Too many: 2001: must have at most 2000 items"),
        // ExternalConnector: the resource's name and kind.
        row("resource name over 35 characters", ExternalConnector, "spec.resourceName", json!("r".repeat(36)), "spec.resourceName", "Too long: may not be more than 35 bytes"),
        row("empty resource name", ExternalConnector, "spec.resourceName", json!(""), "spec.resourceName", "spec.resourceName must be 1-35 characters"),
        row("resource name with a space", ExternalConnector, "spec.resourceName", json!("my edl"), "spec.resourceName", "must not contain spaces or < > ( ) #"),
        row("resource name with a slash", ExternalConnector, "spec.resourceName", json!("edl/a"), "spec.resourceName", "must not contain spaces or < > ( ) #"),
        row("resource name with markup", ExternalConnector, "spec.resourceName", json!("<b>edl"), "spec.resourceName", "must not contain spaces or < > ( ) #"),
        row("resource name with the global prefix", ExternalConnector, "spec.resourceName", json!("g-edl"), "spec.resourceName", "must not start with 'g-'"),
        load("unknown connector mode", ExternalConnector, "spec.mode", json!("Pull"), "spec.mode", "Unsupported value: \"Pull\"", "Pull"),
        load("unknown connector type", ExternalConnector, "spec.type", json!("Domain"), "spec.type", "Unsupported value: \"Domain\"", "Domain"),
        load("connector mode in lower case", ExternalConnector, "spec.mode", json!("push"), "spec.mode", "Unsupported value: \"push\"", "push"),
        load("connector target of an unknown kind", ExternalConnector, "spec.targetRef.kind", json!("AddressGroup"), "spec.targetRef.kind", "Unsupported value: \"AddressGroup\"", "AddressGroup"),
        row("connector target without a name", ExternalConnector, "spec.targetRef.name", json!(""), "spec.targetRef.name", "should be at least 1 chars long"),
        load("unknown connector deletion policy", ExternalConnector, "spec.deletionPolicy", json!("Keep"), "spec.deletionPolicy", "Unsupported value: \"Keep\"", "Keep"),
        // ExternalConnector entries (the member rules) and sources.
        row("entry that is a hostname", ExternalConnector, "spec.entries[0].address", json!("edl.example.com"), "spec.entries[0].address", "must be an IP address (192.0.2.10), a CIDR"),
        row("entry CIDR with host bits", ExternalConnector, "spec.entries[1].address", json!("10.0.0.7/24"), "spec.entries[1].address", "a CIDR must not have host bits set"),
        row("entry range across families", ExternalConnector, "spec.entries[3].address", json!("192.0.2.1-2001:db8::9"), "spec.entries[3].address", "a range needs two addresses of one IP family"),
        row("reversed entry range", ExternalConnector, "spec.entries[3].address", json!("192.0.2.9-192.0.2.1"), "spec.entries[3].address", "a range must not end before it starts"),
        row("duplicate entry", ExternalConnector, "spec.entries[1].address", json!("192.0.2.10"), "spec.entries[1]", "Duplicate value"),
        row("entry comment over 128 characters", ExternalConnector, "spec.entries[2].comment", json!("c".repeat(129)), "spec.entries[2].comment", "Too long: may not be more than 128 bytes"),
        load("entry expiry not a timestamp", ExternalConnector, "spec.entries[3].expiresAt", json!("2030-13-01T00:00:00Z"), "spec.entries[3].expiresAt", "must be of type date-time", "failed to parse"),
        row("more than 1000 inline entries", ExternalConnector, "spec.entries", many_entries(1001), "spec.entries", "Too many: 1001: must have at most 1000 items"),
        row("source naming a ConfigMap and a group", ExternalConnector, "spec.entriesFrom[0]", json!({"configMapRef": {"name": "blocklist", "key": "list.txt"}, "addressGroupRef": {"name": "grp"}}), "spec.entriesFrom[0]", "names exactly one of configMapRef or addressGroupRef"),
        row("source naming nothing", ExternalConnector, "spec.entriesFrom[1]", json!({}), "spec.entriesFrom[1]", "names exactly one of configMapRef or addressGroupRef"),
        row("ConfigMap name in upper case", ExternalConnector, "spec.entriesFrom[0].configMapRef.name", json!("BlockList"), "spec.entriesFrom[0].configMapRef.name", "must be a DNS-1123 subdomain name"),
        row("ConfigMap key climbs directories", ExternalConnector, "spec.entriesFrom[0].configMapRef.key", json!("../list"), "spec.entriesFrom[0].configMapRef.key", "must be a ConfigMap key"),
        row("empty ConfigMap key", ExternalConnector, "spec.entriesFrom[0].configMapRef.key", json!(""), "spec.entriesFrom[0].configMapRef.key", "should be at least 1 chars long"),
        row("group source with a slash", ExternalConnector, "spec.entriesFrom[1].addressGroupRef.name", json!("ns/grp"), "spec.entriesFrom[1].addressGroupRef.name", "must be a DNS-1123 subdomain name"),
        row("more than 64 sources", ExternalConnector, "spec.entriesFrom", json!((0..65).map(|i| json!({"addressGroupRef": {"name": format!("g{i}")}})).collect::<Vec<_>>()), "spec.entriesFrom", "Too many: 65: must have at most 64 items"),
        // ExternalConnector feed.
        row("refresh rate 0", ExternalConnector, "spec.feed.refreshRate", json!(0), "spec.feed.refreshRate", "should be greater than or equal to 1"),
        row("refresh rate over 30 days", ExternalConnector, "spec.feed.refreshRate", json!(43201), "spec.feed.refreshRate", "should be less than or equal to 43200"),
        load("negative refresh rate", ExternalConnector, "spec.feed.refreshRate", json!(-5), "spec.feed.refreshRate", "should be greater than or equal to 1", "-5"),
        row("feed URL over ftp", ExternalConnector, "spec.feed.url", json!("ftp://edl.example.com/allow.txt"), "spec.feed.url", "spec.feed.url must be an http:// or https:// URL"),
        row("feed URL without a scheme", ExternalConnector, "spec.feed.url", json!("edl.example.com/allow.txt"), "spec.feed.url", "spec.feed.url must be an http:// or https:// URL"),
        row("feed URL without a host", ExternalConnector, "spec.feed.url", json!("https:///allow.txt"), "spec.feed.url", "spec.feed.url must be an http:// or https:// URL"),
        row("feed URL of a scheme alone", ExternalConnector, "spec.feed.url", json!("https://"), "spec.feed.url", "spec.feed.url must be an http:// or https:// URL"),
        row("feed URL with a space in the host", ExternalConnector, "spec.feed.url", json!("https://edl example.com/allow.txt"), "spec.feed.url", "spec.feed.url must be an http:// or https:// URL"),
        row("feed URL over 511 characters", ExternalConnector, "spec.feed.url", json!(format!("https://edl.example.com/{}", "a".repeat(500))), "spec.feed.url", "Too long: may not be more than 511 bytes"),
        row("feed credentials Secret name climbs directories", ExternalConnector, "spec.feed.credentialsSecretRef.name", json!("../edl"), "spec.feed.credentialsSecretRef.name", "must be a Secret name (a DNS-1123 subdomain)"),
        row("feed password key climbs directories", ExternalConnector, "spec.feed.credentialsSecretRef", json!({"name": "edl-auth", "passwordKey": "../password"}), "spec.feed.credentialsSecretRef.passwordKey", "must be a Secret key"),
        row("feed username key with a slash", ExternalConnector, "spec.feed.credentialsSecretRef", json!({"name": "edl-auth", "usernameKey": "a/user"}), "spec.feed.credentialsSecretRef.usernameKey", "must be a Secret key"),
        load("unknown server identity check", ExternalConnector, "spec.feed.serverIdentityCheck", json!("Strict"), "spec.feed.serverIdentityCheck", "Unsupported value: \"Strict\"", "Strict"),
    ]
}

/// A spec admission cannot refuse, because it names objects that do not exist (CEL cannot look
/// another object up): admitted by the API server and by the offline checks, then refused at
/// reconcile with `reason` in the `Ready` condition and a message naming `field`, before any
/// device write (tests/e2e/references.rs; `fortisync plan` in tests/admission_offline.rs).
/// Members whose `expiresAt` passed before the first reconcile are the other case admission
/// cannot decide (no `now()` in CEL): tests/e2e/addressgroup_ownership.rs
/// (`members_expired_before_the_first_reconcile_create_no_group`).
#[derive(Debug, Clone)]
pub struct RefusedAtReconcile {
    /// What is wrong, for failure messages.
    pub what: &'static str,
    /// The resource's kind.
    pub kind: Kind,
    /// `metadata.name` (rows live side by side in one namespace).
    pub name: &'static str,
    /// The whole spec.
    pub spec: Value,
    /// `Ready=False` with this reason.
    pub reason: &'static str,
    /// The field the condition's message names.
    pub field: &'static str,
}

impl RefusedAtReconcile {
    /// The manifest.
    pub fn manifest(&self) -> Value {
        json!({
            "apiVersion": "fortisync.dev/v1alpha1",
            "kind": format!("{:?}", self.kind),
            "metadata": {"name": self.name},
            "spec": self.spec,
        })
    }
}

/// Every spec refused at reconcile, not at admission. Each names the FortiGate `fw` unless its
/// point is a missing or wrong-kind target; `fw` exists where these run.
#[rustfmt::skip] // a table: one row a line
pub fn refused_at_reconcile() -> Vec<RefusedAtReconcile> {
    use Kind::*;
    let row = |what, kind, name, spec: Value, reason, field| RefusedAtReconcile { what, kind, name, spec, reason, field };
    let fw = json!({"kind": "FortiGate", "name": "fw"});
    vec![
        row("group on a FortiGate that does not exist", AddressGroup, "no-target", json!({"targetRef": {"kind": "FortiGate", "name": "nope"}, "groupName": "g-no-target", "members": [{"address": "192.0.2.10"}]}), "TargetNotFound", "spec.targetRef"),
        row("group on a FortiManager that is a FortiGate", AddressGroup, "wrong-kind", json!({"targetRef": {"kind": "FortiManager", "name": "fw"}, "groupName": "g-wrong-kind", "members": [{"address": "192.0.2.10"}]}), "TargetNotFound", "spec.targetRef"),
        row("connector on a FortiGate that does not exist", ExternalConnector, "ec-no-target", json!({"targetRef": {"kind": "FortiGate", "name": "nope"}, "resourceName": "no-target", "mode": "Push", "entries": [{"address": "192.0.2.10"}]}), "TargetNotFound", "spec.targetRef"),
        row("connector on a FortiManager that is a FortiGate", ExternalConnector, "ec-wrong-kind", json!({"targetRef": {"kind": "FortiManager", "name": "fw"}, "resourceName": "wrong-kind", "mode": "Push", "entries": [{"address": "192.0.2.10"}]}), "TargetNotFound", "spec.targetRef"),
        row("entries from a ConfigMap that does not exist", ExternalConnector, "ec-no-map", json!({"targetRef": fw, "resourceName": "no-map", "mode": "Push", "entriesFrom": [{"configMapRef": {"name": "nope", "key": "list"}}]}), "SourceNotFound", "spec.entriesFrom[0].configMapRef"),
        row("entries from an AddressGroup that does not exist", ExternalConnector, "ec-no-group", json!({"targetRef": fw, "resourceName": "no-group", "mode": "Push", "entriesFrom": [{"addressGroupRef": {"name": "nope"}}]}), "SourceNotFound", "spec.entriesFrom[0].addressGroupRef"),
        row("feed credentials from a Secret that does not exist", ExternalConnector, "ec-no-secret", json!({"targetRef": fw, "resourceName": "no-secret", "mode": "Feed", "entries": [{"address": "192.0.2.10"}], "feed": {"url": "https://edl.example.com/edl", "credentialsSecretRef": {"name": "nope"}}}), "SourceNotFound", "spec.feed.credentialsSecretRef"),
    ]
}

/// `count` distinct IPv4 host entries (`{"address": "10.x.y.z"}`), for the list-size rows.
pub fn many_entries(count: u32) -> Value {
    let entry = |i: u32| {
        let [_, a, b, c] = (0x0a00_0000 + i).to_be_bytes();
        json!({"address": format!("10.{a}.{b}.{c}")})
    };
    Value::Array((1..=count).map(entry).collect())
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
