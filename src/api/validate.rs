//! The admission rules of fortisync's kinds for the paths with no API server in front of them
//! (`fortisync plan/apply/demo`): the checks the CRDs' schemas and CEL rules make, each
//! problem written `<field>: <reason>` with the API server's wording, so one table of bad specs
//! (tests/support/bad_specs.rs) is run through both the real API server (tests/e2e/admission.rs)
//! and these functions (tests/admission_offline.rs) and the two cannot drift.
//!
//! Why not evaluate the CRDs' CEL rules client-side instead? kube 5.0 has a `cel` feature
//! (`kube::core::validate_cel`, `#[x_kube(cel)]`) backed by kube-cel 0.8 on the `cel` 0.13
//! interpreter. Run on 2026-12-02 against our generated CRDs (a scratch crate, not part of
//! fortisync), kube-cel 0.8 agreed with kube-apiserver v1.36.3 on every CEL rule we use: the
//! IP/CIDR functions (`isIP`, `ip().family()`, `isCIDR`, `cidr().masked()`, `containsIP`,
//! `cidr().ip()` equality), the bound-variable range-order rule, `isURL`/`url()`, `duration()`,
//! `matches`, `lowerAscii`, `substring`/`indexOf` and the object rule with `fieldPath`. But it
//! evaluates only `x-kubernetes-validations`: `maximum`, `minLength`/`maxLength`, enums,
//! `date-time` and list-map duplicates were all admitted by it and refused by the API server,
//! and it applies no cost estimate (a rule it runs may still be refused when the CRD is
//! installed; the range rule needed reshaping for that). The offline path would need this
//! module for the schema half anyway, so it is the one offline implementation, kept honest by
//! the shared table.

use std::collections::BTreeSet;
use std::net::IpAddr;

mod externalconnector;
pub use externalconnector::validate_external_connector;

use crate::api::addressgroup::TargetKind;
use crate::api::addressgroup::{
    ANY_ADDRESS_MESSAGE, AddressGroupSpec, BUILTIN_OBJECT_NAMES, GROUP_NAME_BUILTIN_MESSAGE,
    MAX_PREFIX_LEN, MEMBER_ADDRESS_MAX_LEN, MEMBER_FORM_MESSAGE, MEMBER_HOST_BITS_MESSAGE,
    MEMBER_RANGE_FAMILY_MESSAGE, MEMBER_RANGE_ORDER_MESSAGE, Member,
};
use crate::api::common::{
    ConnectionSpec, CredentialsSecretRef, MAX_CONCURRENT_MESSAGE, SECRET_KEY_MESSAGE,
    SECRET_NAME_MESSAGE, SecretKeyRef, parse_go_duration,
};
use crate::api::externalconnector::{
    DEVICE_TARGET_NAME_MESSAGE, DEVICE_TARGET_VDOM_MESSAGE, DEVICE_TARGETS_KIND_MESSAGE,
    DEVICE_TARGETS_UNIQUE_MESSAGE, ExternalConnectorSpec, MAX_DEVICE_TARGETS,
};
use crate::api::fortigate::FortiGateSpec;
use crate::api::fortimanager::FortiManagerSpec;
use crate::api::trustedhost::TrustedHostSpec;
use crate::model::MemberAddress;

/// Every problem with an AddressGroup `spec`, each naming its field; empty when admitted.
pub fn validate(spec: &AddressGroupSpec) -> Vec<String> {
    let mut out = Problems::default();
    let name = &spec.group_name;
    if out.max_len("spec.groupName", name, 79) {
        if name.is_empty() {
            out.refuse(
                "spec.groupName",
                name,
                "spec.groupName must be 1-79 characters (the FortiOS name limit)",
            );
        }
        if name.contains(['<', '>', '(', ')', '#', '"', '\'', '/']) {
            out.refuse(
                "spec.groupName",
                name,
                "spec.groupName must not contain < > ( ) # \" ' or / (refused by FortiOS)",
            );
        }
        if BUILTIN_OBJECT_NAMES.contains(&name.to_ascii_lowercase().as_str()) {
            out.refuse("spec.groupName", name, GROUP_NAME_BUILTIN_MESSAGE);
        }
    }
    let prefix = &spec.address_prefix;
    if out.max_len("spec.addressPrefix", prefix, MAX_PREFIX_LEN) {
        let prefix_ok = prefix
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic())
            && prefix
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
        if !prefix_ok {
            out.refuse(
                "spec.addressPrefix",
                prefix,
                &format!("spec.addressPrefix must start with a letter and be at most {MAX_PREFIX_LEN} characters of letters, digits, '_', '.', '-'"),
            );
        }
    }
    out.length("spec.targetRef.name", &spec.target_ref.name, 1, 253);
    if spec.members.len() > 2000 {
        out.push(
            "spec.members",
            &format!(
                "Too many: {}: must have at most 2000 items",
                spec.members.len()
            ),
        );
    }
    members(&mut out, "spec.members", &spec.members);
    if let Some(i) = any_address_member(spec) {
        out.push(
            "spec.members",
            &format!(
                "{ANY_ADDRESS_MESSAGE} (spec.members[{i}].address is {:?})",
                spec.members[i].address
            ),
        );
    }
    for (first, second, canonical) in same_addresses(spec) {
        if spec.members[first].address == spec.members[second].address {
            continue; // the list-map key's `Duplicate value` above
        }
        out.push(
            &format!("spec.members[{second}].address"),
            &format!(
                "{:?} is {canonical}, the same address as spec.members[{first}].address ({:?}); both would be one device object",
                spec.members[second].address, spec.members[first].address
            ),
        );
    }
    out.0
}

/// The checks every item of a member list gets (`spec.members` of an AddressGroup,
/// `spec.entries` of an ExternalConnector): the address rules, the list-map key, the comment.
fn members(out: &mut Problems, list: &str, members: &[Member]) {
    let mut seen = BTreeSet::new();
    for (i, m) in members.iter().enumerate() {
        let field = format!("{list}[{i}].address");
        if out.max_len(&field, &m.address, MEMBER_ADDRESS_MAX_LEN) {
            let problems = member_address_problems(&m.address);
            for problem in &problems {
                out.refuse(&field, &m.address, problem);
            }
            // The reconciler parses with `MemberAddress`; anything it cannot read must not
            // pass here (none is known: these checks are the stricter ones).
            if let (true, Err(e)) = (problems.is_empty(), MemberAddress::parse(&m.address)) {
                out.refuse(&field, &m.address, &e);
            }
        }
        if !seen.insert(m.address.as_str()) {
            out.push(
                &format!("{list}[{i}]"),
                &format!("Duplicate value: {{\"address\":\"{}\"}}", m.address),
            );
        }
        if let Some(comment) = &m.comment {
            out.max_len(&format!("{list}[{i}].comment"), comment, 128);
        }
    }
}

/// The first member that admits every address, when the spec has not opted in with
/// `allowAnyAddress` (the CRD's `ANY_ADDRESS_RULE`; the reconciler refuses it too, for
/// objects stored before the rule existed).
pub fn any_address_member(spec: &AddressGroupSpec) -> Option<usize> {
    if spec.allow_any_address {
        return None;
    }
    spec.members.iter().position(|m| is_any_address(&m.address))
}

/// Whether a member text admits every address, as `ANY_ADDRESS_RULE` reads it: any text ending
/// in `/0`, or a range from the lowest to the highest address of one family, however spelled.
pub fn is_any_address(text: &str) -> bool {
    if text.ends_with("/0") {
        return true;
    }
    let Some((a, b)) = text.split_once('-').filter(|(a, b)| is_ip(a) && is_ip(b)) else {
        return false;
    };
    match (a.parse::<IpAddr>(), b.parse::<IpAddr>()) {
        (Ok(IpAddr::V4(a)), Ok(IpAddr::V4(b))) => {
            a == std::net::Ipv4Addr::UNSPECIFIED && b == std::net::Ipv4Addr::BROADCAST
        }
        (Ok(IpAddr::V6(a)), Ok(IpAddr::V6(b))) => {
            a == std::net::Ipv6Addr::UNSPECIFIED && b == std::net::Ipv6Addr::from(u128::MAX)
        }
        _ => false,
    }
}

/// Members that are one address, however written (`192.0.2.60` and `192.0.2.60/32`,
/// `2001:db8::5` and `2001:DB8:0:0::5`): `(first index, later index, canonical form)`. The API
/// server's list-map key compares the text, so differently written ones pass admission.
pub fn same_addresses(spec: &AddressGroupSpec) -> Vec<(usize, usize, MemberAddress)> {
    let mut first: std::collections::BTreeMap<String, usize> = Default::default();
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

/// Every problem with a FortiGate `spec`.
pub fn validate_fortigate(spec: &FortiGateSpec) -> Vec<String> {
    let mut out = Problems(validate_connection(&spec.connection));
    if out.max_len("spec.vdom", &spec.vdom, 31) && !is_scope_name(&spec.vdom, 31) {
        out.refuse(
            "spec.vdom",
            &spec.vdom,
            "spec.vdom must be 1-31 characters of letters, digits, '_', '.', '-'",
        );
    }
    out.0
}

/// Every problem with a TrustedHost `spec`: the CRD's rules (slot bounds, slot 1 opt-in, an
/// address required, each address's family, host bits, allow-all and the unused value,
/// `ApiUser` on FortiGate only), worded as the API server words them.
pub fn validate_trustedhost(spec: &TrustedHostSpec) -> Vec<String> {
    use crate::api::addressgroup::TargetKind;
    use crate::api::trustedhost as th;
    let mut out = Problems::default();
    out.length("spec.targetRef.name", &spec.target_ref.name, 1, 253);
    if out.max_len("spec.user", &spec.user, 64) {
        if spec.user.is_empty() {
            out.refuse(
                "spec.user",
                &spec.user,
                "spec.user must be 1-64 characters (the FortiOS admin name limit)",
            );
        }
        if spec
            .user
            .contains(['<', '>', '(', ')', '#', '"', '\'', '/', ' '])
        {
            out.refuse(
                "spec.user",
                &spec.user,
                "spec.user must not contain spaces or < > ( ) # \" ' /",
            );
        }
    }
    if out.range(
        "spec.slot",
        u32::from(spec.slot),
        1,
        u32::from(th::MAX_SLOT),
    ) && spec.slot == 1
        && !spec.allow_slot_one
    {
        out.push("spec.slot", th::SLOT_ONE_MESSAGE);
    }
    if spec.address.is_none() && spec.ipv6_address.is_none() {
        out.push("spec", th::ADDRESS_REQUIRED_MESSAGE);
    }
    if spec.user_kind == th::UserKind::ApiUser && spec.target_ref.kind != TargetKind::FortiGate {
        out.push("spec.userKind", th::API_USER_MESSAGE);
    }
    if spec.user_kind == th::UserKind::ApiUser
        && spec.address.is_some()
        && spec.ipv6_address.is_some()
    {
        out.push("spec.userKind", th::API_USER_ONE_FAMILY_MESSAGE);
    }
    let halves = [
        ("spec.address", spec.address.as_deref(), 4, 18),
        ("spec.ipv6Address", spec.ipv6_address.as_deref(), 6, 43),
    ];
    for (field, value, family, max) in halves {
        let Some(text) = value else { continue };
        if !out.max_len(field, text, max) {
            continue;
        }
        for reason in trusted_address_problems(text, family) {
            out.refuse(field, text, reason);
        }
    }
    out.0
}

/// The rules a TrustedHost address breaks (`family` 4 or 6), in the CRD's order.
pub fn trusted_address_problems(text: &str, family: u8) -> Vec<&'static str> {
    use crate::api::trustedhost as th;
    let parsed_ip = is_ip(text).then(|| text.parse::<IpAddr>().ok()).flatten();
    let parsed_net = is_cidr(text)
        .then(|| text.parse::<ipnet::IpNet>().ok())
        .flatten();
    let of_family = |v4: bool| if family == 4 { v4 } else { !v4 };
    let mut out = Vec::new();
    let form_ok = parsed_ip.is_some_and(|ip| of_family(ip.is_ipv4()))
        || parsed_net.is_some_and(|n| of_family(matches!(n, ipnet::IpNet::V4(_))));
    if !form_ok {
        out.push(if family == 4 {
            th::ADDRESS_FORM_MESSAGE
        } else {
            th::IPV6_FORM_MESSAGE
        });
    }
    if parsed_net.is_some_and(|n| n.trunc() != n) {
        out.push(th::NO_HOST_BITS_MESSAGE);
    }
    if parsed_net.is_some_and(|n| n.prefix_len() == 0)
        || parsed_ip.is_some_and(|ip| ip.is_unspecified())
    {
        out.push(th::NOT_ANY_MESSAGE);
    }
    if family == 4 && (text == "255.255.255.255" || text == "255.255.255.255/32") {
        out.push(th::NOT_UNUSED_MESSAGE);
    }
    out
}

/// Every problem with a FortiManager `spec`.
pub fn validate_fortimanager(spec: &FortiManagerSpec) -> Vec<String> {
    let mut out = Problems(validate_connection(&spec.connection));
    if out.max_len("spec.adom", &spec.adom, 64) && !is_scope_name(&spec.adom, 64) {
        out.refuse(
            "spec.adom",
            &spec.adom,
            "spec.adom must be 1-64 characters of letters, digits, '_', '.', '-'",
        );
    }
    out.range(
        "spec.workspace.lockRetries",
        spec.workspace.lock_retries,
        0,
        50,
    );
    if spec.device_targets.len() > 256 {
        out.push(
            "spec.deviceTargets",
            &format!(
                "Too many: {}: must have at most 256 items",
                spec.device_targets.len()
            ),
        );
    }
    for (i, target) in spec.device_targets.iter().enumerate() {
        out.length(
            &format!("spec.deviceTargets[{i}].name"),
            &target.name,
            1,
            64,
        );
    }
    out.0
}

/// The problems of an ExternalConnector's `spec.deviceTargets` (the CRD's schema and CEL
/// rules for that field, with the API server's wording), for the offline checks.
pub fn validate_device_targets(spec: &ExternalConnectorSpec) -> Vec<String> {
    let mut out = Problems::default();
    let targets = &spec.device_targets;
    if !targets.is_empty() && spec.target_ref.kind != TargetKind::FortiManager {
        out.refuse("spec", "object", DEVICE_TARGETS_KIND_MESSAGE);
    }
    if targets.len() > MAX_DEVICE_TARGETS {
        out.push(
            "spec.deviceTargets",
            &format!(
                "Too many: {}: must have at most {MAX_DEVICE_TARGETS} items",
                targets.len()
            ),
        );
    }
    let keys: BTreeSet<(&str, &str)> = targets
        .iter()
        .map(|t| (t.name.as_str(), t.vdom.as_deref().unwrap_or_default()))
        .collect();
    if keys.len() != targets.len() {
        out.refuse("spec.deviceTargets", "array", DEVICE_TARGETS_UNIQUE_MESSAGE);
    }
    for (i, t) in targets.iter().enumerate() {
        let field = format!("spec.deviceTargets[{i}].name");
        if out.max_len(&field, &t.name, 64) && (t.name.is_empty() || t.name.contains('/')) {
            out.refuse(&field, &t.name, DEVICE_TARGET_NAME_MESSAGE);
        }
        if let Some(vdom) = &t.vdom {
            let field = format!("spec.deviceTargets[{i}].vdom");
            if out.max_len(&field, vdom, 31) && !is_scope_name(vdom, 31) {
                out.refuse(&field, vdom, DEVICE_TARGET_VDOM_MESSAGE);
            }
        }
    }
    out.0
}

/// Every problem with the connection half of a FortiGate or FortiManager spec.
pub fn validate_connection(spec: &ConnectionSpec) -> Vec<String> {
    let mut out = Problems::default();
    if out.max_len("spec.url", &spec.url, 2048) && !is_https_url(&spec.url) {
        out.refuse(
            "spec.url",
            &spec.url,
            "spec.url must be an https:// URL such as https://fw.example.com:8443",
        );
    }
    credentials(&mut out, &spec.credentials_secret_ref);
    if let Some(ca) = &spec.tls.ca_bundle_secret_ref {
        secret_key_ref(&mut out, "spec.tls.caBundleSecretRef", ca);
    }
    if let Some(source) = &spec.source_address
        && out.max_len("spec.sourceAddress", source, 64)
        && !is_ip(source)
    {
        out.refuse(
            "spec.sourceAddress",
            source,
            "spec.sourceAddress must be an IPv4 or IPv6 address",
        );
    }
    let threshold_ok = out.range("spec.lockout.threshold", spec.lockout.threshold, 1, 10);
    out.range(
        "spec.lockout.durationSeconds",
        spec.lockout.duration_seconds,
        1,
        86400,
    );
    if let Some(max) = spec.max_concurrent_requests {
        // The API server runs CEL only on a schema-valid object, so the cross-field rule is
        // reported only when both fields are in range.
        if out.range("spec.maxConcurrentRequests", max, 1, 32)
            && threshold_ok
            && max >= spec.lockout.threshold
            && max != 1
        {
            out.push("spec.maxConcurrentRequests", MAX_CONCURRENT_MESSAGE);
        }
    }
    let resync = &spec.resync_interval;
    if out.max_len("spec.resyncInterval", resync, 32) && !is_resync_interval(resync) {
        out.refuse(
            "spec.resyncInterval",
            resync,
            "spec.resyncInterval must be a duration between 10s and 24h, such as 5m",
        );
    }
    out.0
}

/// The problems of one member address, in the order of the CRD's rules: form, host bits,
/// range family, range order. Mirrors the CEL rules (`crate::api::cel`), which follow the
/// Kubernetes IP library: no spaces, no IPv4-mapped IPv6, no zones, no leading zeros.
pub fn member_address_problems(text: &str) -> Vec<&'static str> {
    let range = text
        .split_once('-')
        .filter(|(a, b)| is_ip(a) && is_ip(b))
        .and_then(|(a, b)| Some((a.parse::<IpAddr>().ok()?, b.parse::<IpAddr>().ok()?)));
    let cidr = is_cidr(text)
        .then(|| text.parse::<ipnet::IpNet>().ok())
        .flatten();
    let mut out = Vec::new();
    if !(is_ip(text) || cidr.is_some() || range.is_some()) {
        out.push(MEMBER_FORM_MESSAGE);
    }
    if cidr.is_some_and(|net| net.trunc() != net) {
        out.push(MEMBER_HOST_BITS_MESSAGE);
    }
    if let Some((a, b)) = range {
        if a.is_ipv4() != b.is_ipv4() {
            out.push(MEMBER_RANGE_FAMILY_MESSAGE);
        } else if a > b {
            out.push(MEMBER_RANGE_ORDER_MESSAGE);
        }
    }
    out
}

fn credentials(out: &mut Problems, r: &CredentialsSecretRef) {
    let field = "spec.credentialsSecretRef";
    secret_name(out, &format!("{field}.name"), &r.name);
    for (key, value) in [
        ("tokenKey", &r.token_key),
        ("usernameKey", &r.username_key),
        ("passwordKey", &r.password_key),
    ] {
        if let Some(value) = value {
            secret_key(out, &format!("{field}.{key}"), value);
        }
    }
    let login = r.username_key.is_some() || r.password_key.is_some();
    if r.token_key.is_some() == login {
        out.push(
            field,
            "credentialsSecretRef: set either tokenKey, or usernameKey and passwordKey",
        );
    }
    if r.username_key.is_some() != r.password_key.is_some() {
        out.push(
            field,
            "credentialsSecretRef: usernameKey and passwordKey go together",
        );
    }
}

fn secret_key_ref(out: &mut Problems, field: &str, r: &SecretKeyRef) {
    secret_name(out, &format!("{field}.name"), &r.name);
    secret_key(out, &format!("{field}.key"), &r.key);
}

fn secret_name(out: &mut Problems, field: &str, name: &str) {
    if out.length(field, name, 1, 253) && !is_dns1123_subdomain(name) {
        out.refuse(field, name, SECRET_NAME_MESSAGE);
    }
}

fn secret_key(out: &mut Problems, field: &str, key: &str) {
    data_key(out, field, key, SECRET_KEY_MESSAGE);
}

/// A Secret or ConfigMap data key (the API server's rule for both), refused with `message`.
fn data_key(out: &mut Problems, field: &str, key: &str, message: &str) {
    let shape = !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if out.length(field, key, 1, 253) && !(shape && key != "." && !key.starts_with("..")) {
        out.refuse(field, key, message);
    }
}

/// Problems found so far, and the schema checks written as the API server words them.
#[derive(Default)]
struct Problems(Vec<String>);

impl Problems {
    fn push(&mut self, field: &str, reason: &str) {
        self.0.push(format!("{field}: {reason}"));
    }

    /// A rule on a text field, written as the API server writes it: with the value.
    fn refuse(&mut self, field: &str, value: &str, reason: &str) {
        self.0
            .push(format!("{field}: Invalid value: {value:?}: {reason}"));
    }

    /// `maxLength`; true when within it (the API server then goes on to the CEL rules).
    fn max_len(&mut self, field: &str, text: &str, max: usize) -> bool {
        let ok = text.chars().count() <= max;
        if !ok {
            self.push(
                field,
                &format!("Too long: may not be more than {max} bytes"),
            );
        }
        ok
    }

    /// `minLength` and `maxLength`; true when within both.
    fn length(&mut self, field: &str, text: &str, min: usize, max: usize) -> bool {
        if text.chars().count() < min {
            self.push(
                field,
                &format!("{field} in body should be at least {min} chars long"),
            );
            return false;
        }
        self.max_len(field, text, max)
    }

    /// `minimum` and `maximum`; true when within both.
    fn range(&mut self, field: &str, value: u32, min: u32, max: u32) -> bool {
        if value < min {
            self.push(
                field,
                &format!("{field} in body should be greater than or equal to {min}"),
            );
            false
        } else if value > max {
            self.push(
                field,
                &format!("{field} in body should be less than or equal to {max}"),
            );
            false
        } else {
            true
        }
    }
}

/// CEL `isIP`: an IPv4 or IPv6 address as Kubernetes parses it (Rust's parser, like Go's
/// `netip`, refuses zones and leading zeros in IPv4; Kubernetes also refuses IPv4-mapped IPv6).
fn is_ip(text: &str) -> bool {
    match text.parse::<IpAddr>() {
        Ok(IpAddr::V4(_)) => true,
        Ok(IpAddr::V6(v6)) => v6.to_ipv4_mapped().is_none(),
        Err(_) => false,
    }
}

/// CEL `isCIDR`: `address/length` with an address `isIP` accepts.
fn is_cidr(text: &str) -> bool {
    text.split_once('/')
        .is_some_and(|(addr, _)| is_ip(addr) && text.parse::<ipnet::IpNet>().is_ok())
}

/// The CRD's URL rule: parses, scheme `https`, a host.
fn is_https_url(text: &str) -> bool {
    url::Url::parse(text).is_ok_and(|u| u.scheme() == "https") && has_written_host(text)
}

/// Whether the URL names a host where it is written, as Go's parser (CEL's `url()`) reads it:
/// the `url` crate takes `https:///fw` as host `fw`, Go as an empty host and path `/fw`.
fn has_written_host(text: &str) -> bool {
    let Some((_, rest)) = text.split_once("://") else {
        return false;
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let host = authority.rsplit('@').next().unwrap_or_default();
    let host = match host.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or_default(),
        None => host.split(':').next().unwrap_or_default(),
    };
    !host.is_empty()
}

/// `^[A-Za-z0-9_.-]{1,max}$`, the VDOM and ADOM rule.
fn is_scope_name(text: &str, max: usize) -> bool {
    (1..=max).contains(&text.chars().count())
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
}

/// The Secret name rule: dot-separated labels of `[a-z0-9-]`, each starting and ending with a
/// letter or digit.
fn is_dns1123_subdomain(text: &str) -> bool {
    text.split('.').all(|label| {
        !label.is_empty()
            && !label.starts_with('-')
            && !label.ends_with('-')
            && label
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
    })
}

/// The resync rule: `^([0-9]+(ms|s|m|h))+$` and between 10 s and 24 h. Limiting the characters
/// to digits and `m`, `s`, `h` and the ends to digit…unit leaves exactly the texts that regex
/// accepts and kube's Go-duration parser reads as a sum of `ms`/`s`/`m`/`h` terms.
fn is_resync_interval(text: &str) -> bool {
    let shape = text.starts_with(|c: char| c.is_ascii_digit())
        && text.ends_with(['m', 's', 'h'])
        && text
            .chars()
            .all(|c| c.is_ascii_digit() || matches!(c, 'm' | 's' | 'h'));
    shape
        && parse_go_duration(text).is_some_and(|d| {
            (std::time::Duration::from_secs(10)..=std::time::Duration::from_secs(86400))
                .contains(&d)
        })
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
        let good = [
            "192.0.2.1",
            "10.0.0.0/8",
            "2001:db8::/64",
            "192.0.2.1-192.0.2.1",
            "10.0.0.9-10.0.0.10",
            "2001:db8::ffff-2001:db8::1:0",
        ];
        assert_eq!(
            validate(&spec("allowed", "fs_", &good)),
            Vec::<String>::new()
        );
    }

    #[test]
    fn each_problem_names_its_field() {
        let cases = [
            (spec("a/b", "fs_", &[]), "spec.groupName: "),
            (
                spec(&"x".repeat(80), "fs_", &[]),
                "spec.groupName: Too long",
            ),
            (spec("None", "fs_", &[]), "spec.groupName: "),
            (spec("g", "1fs", &[]), "spec.addressPrefix: "),
            (spec("g", &"p".repeat(33), &[]), "spec.addressPrefix: "),
            (
                spec("g", "fs_", &["192.0.2.300"]),
                "spec.members[0].address: ",
            ),
            (
                spec("g", "fs_", &["10.0.0.1/8"]),
                "spec.members[0].address: ",
            ),
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

    #[test]
    fn member_addresses_get_the_reason_of_the_rule_they_break() {
        let cases = [
            ("192.0.2.300", MEMBER_FORM_MESSAGE),
            (" 192.0.2.1", MEMBER_FORM_MESSAGE),
            ("::ffff:192.0.2.1", MEMBER_FORM_MESSAGE),
            ("10.0.0.1/24", MEMBER_HOST_BITS_MESSAGE),
            ("192.0.2.1-2001:db8::1", MEMBER_RANGE_FAMILY_MESSAGE),
            ("192.0.2.9-192.0.2.1", MEMBER_RANGE_ORDER_MESSAGE),
            ("2001:db8::1:0-2001:db8::ffff", MEMBER_RANGE_ORDER_MESSAGE),
        ];
        for (address, reason) in cases {
            assert_eq!(member_address_problems(address), vec![reason], "{address}");
        }
    }

    #[test]
    fn allow_everything_members_need_the_opt_in() {
        let everything = [
            "0.0.0.0/0",
            "::/0",
            "0:0:0:0:0:0:0:0/0",
            "0.0.0.0-255.255.255.255",
            "::-ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
            "0:0::0-FFFF:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
        ];
        for address in everything {
            assert!(is_any_address(address), "{address}");
            let refused = spec("g", "fs_", &["192.0.2.1", address]);
            assert_eq!(any_address_member(&refused), Some(1), "{address}");
            assert_eq!(
                validate(&refused),
                vec![format!(
                    "spec.members: {ANY_ADDRESS_MESSAGE} (spec.members[1].address is {address:?})"
                )],
                "{address}"
            );
            let opted_in = AddressGroupSpec {
                allow_any_address: true,
                ..refused
            };
            assert_eq!(validate(&opted_in), Vec::<String>::new(), "{address}");
        }
        // One address short of everything is a (wide) member like any other.
        for wide in [
            "0.0.0.0/1",
            "128.0.0.0/1",
            "0.0.0.1-255.255.255.255",
            "0.0.0.0-255.255.255.254",
            "::/1",
            "::1-ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
        ] {
            assert!(!is_any_address(wide), "{wide}");
            assert_eq!(
                validate(&spec("g", "fs_", &[wide])),
                Vec::<String>::new(),
                "{wide}"
            );
        }
    }

    #[test]
    fn a_url_needs_its_host_where_it_is_written() {
        for good in [
            "https://fw",
            "https://u@fw:8443/x",
            "https://[2001:db8::1]:443",
        ] {
            assert!(is_https_url(good), "{good}");
        }
        for bad in [
            "https:///fw",
            "https://",
            "https://:8443/",
            "https://u@/x",
            "https://[]/",
        ] {
            assert!(!is_https_url(bad), "{bad}");
        }
    }

    #[test]
    fn resync_intervals_follow_the_crd_rule() {
        for good in ["10s", "5m", "1h30m", "24h", "90000ms"] {
            assert!(is_resync_interval(good), "{good}");
        }
        for bad in ["", "9s", "25h", "1.5h", "5m0", "m5", "5d", "-5m", "5mh"] {
            assert!(!is_resync_interval(bad), "{bad}");
        }
    }
}

#[cfg(test)]
mod trustedhost_tests {
    use super::*;
    use crate::api::trustedhost as th;

    fn spec(extra: serde_json::Value) -> TrustedHostSpec {
        let mut v = serde_json::json!({
            "targetRef": {"kind": "FortiManager", "name": "fmg"},
            "user": "alice",
            "address": "192.0.2.10",
        });
        v.as_object_mut()
            .expect("object")
            .extend(extra.as_object().expect("object").clone());
        serde_json::from_value(v).expect("spec")
    }

    #[test]
    fn a_good_trustedhost_has_no_problems_and_defaults_to_slot_ten() {
        let s = spec(serde_json::json!({}));
        assert_eq!(s.slot, 10);
        assert_eq!(validate_trustedhost(&s), Vec::<String>::new());
        let both = spec(
            serde_json::json!({"address": "10.0.0.0/8", "ipv6Address": "2001:db8::/64", "slot": 1, "allowSlotOne": true}),
        );
        assert_eq!(validate_trustedhost(&both), Vec::<String>::new());
    }

    #[test]
    fn each_trustedhost_rule_is_refused_naming_its_field() {
        let cases = [
            (
                serde_json::json!({"slot": 1}),
                "spec.slot",
                th::SLOT_ONE_MESSAGE,
            ),
            (
                serde_json::json!({"slot": 11}),
                "spec.slot",
                "less than or equal to 10",
            ),
            (
                serde_json::json!({"slot": 0}),
                "spec.slot",
                "greater than or equal to 1",
            ),
            (
                serde_json::json!({"address": "0.0.0.0/0"}),
                "spec.address",
                th::NOT_ANY_MESSAGE,
            ),
            (
                serde_json::json!({"address": "0.0.0.0"}),
                "spec.address",
                th::NOT_ANY_MESSAGE,
            ),
            (
                serde_json::json!({"address": null, "ipv6Address": "::/0"}),
                "spec.ipv6Address",
                th::NOT_ANY_MESSAGE,
            ),
            (
                serde_json::json!({"address": "255.255.255.255"}),
                "spec.address",
                th::NOT_UNUSED_MESSAGE,
            ),
            (
                serde_json::json!({"address": "10.0.0.1/8"}),
                "spec.address",
                th::NO_HOST_BITS_MESSAGE,
            ),
            (
                serde_json::json!({"address": "2001:db8::1"}),
                "spec.address",
                th::ADDRESS_FORM_MESSAGE,
            ),
            (
                serde_json::json!({"address": null, "ipv6Address": "192.0.2.1"}),
                "spec.ipv6Address",
                th::IPV6_FORM_MESSAGE,
            ),
            (
                serde_json::json!({"address": null}),
                "spec",
                th::ADDRESS_REQUIRED_MESSAGE,
            ),
            (
                serde_json::json!({"userKind": "ApiUser"}),
                "spec.userKind",
                th::API_USER_MESSAGE,
            ),
            (
                serde_json::json!({"user": "a b"}),
                "spec.user",
                "must not contain spaces",
            ),
            (
                serde_json::json!({"userKind": "ApiUser", "targetRef": {"kind": "FortiGate", "name": "fw"}, "ipv6Address": "2001:db8::/64"}),
                "spec.userKind",
                th::API_USER_ONE_FAMILY_MESSAGE,
            ),
        ];
        for (extra, field, reason) in cases {
            let problems = validate_trustedhost(&spec(extra.clone()));
            assert_eq!(problems.len(), 1, "{extra}: {problems:?}");
            assert!(
                problems[0].starts_with(&format!("{field}: ")) && problems[0].contains(reason),
                "{extra}: {problems:?}"
            );
        }
    }
}
