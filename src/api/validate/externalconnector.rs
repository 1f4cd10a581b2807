//! The admission rules of an `ExternalConnector` for the paths with no API server in front of
//! them, worded as the API server words its schema and CEL refusals (see the parent module).

use super::{
    Problems, data_key, has_written_host, is_dns1123_subdomain, members, secret_key, secret_name,
};
use crate::api::externalconnector::{
    CONFIG_MAP_KEY_MESSAGE, ENTRY_SOURCE_MESSAGE, ExternalConnectorSpec, FEED_URL_MESSAGE,
    LOCAL_NAME_MESSAGE, MAX_INLINE_ENTRIES, RESOURCE_NAME_MAX_LEN,
    RESOURCE_NAME_NOT_GLOBAL_MESSAGE,
};

/// Most `entriesFrom` sources (the CRD's `maxItems`).
const MAX_ENTRY_SOURCES: usize = 64;
/// Longest `feed.url` (FortiOS `resource` is at most 511 characters).
const MAX_FEED_URL_LEN: usize = 511;

/// Every problem with an ExternalConnector `spec`, each naming its field; empty when admitted.
pub fn validate_external_connector(spec: &ExternalConnectorSpec) -> Vec<String> {
    let mut out = Problems::default();
    let name = &spec.resource_name;
    if out.max_len("spec.resourceName", name, RESOURCE_NAME_MAX_LEN) {
        if name.is_empty() {
            out.refuse(
                "spec.resourceName",
                name,
                "spec.resourceName must be 1-35 characters (the FortiOS name limit)",
            );
        }
        if name.contains(['<', '>', '(', ')', '#', '"', '\'', '/', ' ']) {
            out.refuse(
                "spec.resourceName",
                name,
                "spec.resourceName must not contain spaces or < > ( ) # \" ' / (refused by FortiOS)",
            );
        }
        if name.starts_with("g-") {
            out.refuse("spec.resourceName", name, RESOURCE_NAME_NOT_GLOBAL_MESSAGE);
        }
    }
    out.length("spec.targetRef.name", &spec.target_ref.name, 1, 253);
    too_many(
        &mut out,
        "spec.entries",
        spec.entries.len(),
        MAX_INLINE_ENTRIES,
    );
    members(&mut out, "spec.entries", &spec.entries);
    too_many(
        &mut out,
        "spec.entriesFrom",
        spec.entries_from.len(),
        MAX_ENTRY_SOURCES,
    );
    for (i, source) in spec.entries_from.iter().enumerate() {
        let field = format!("spec.entriesFrom[{i}]");
        if source.config_map_ref.is_some() == source.address_group_ref.is_some() {
            out.push(&field, ENTRY_SOURCE_MESSAGE);
        }
        if let Some(cm) = &source.config_map_ref {
            local_name(&mut out, &format!("{field}.configMapRef.name"), &cm.name);
            data_key(
                &mut out,
                &format!("{field}.configMapRef.key"),
                &cm.key,
                CONFIG_MAP_KEY_MESSAGE,
            );
        }
        if let Some(group) = &source.address_group_ref {
            local_name(
                &mut out,
                &format!("{field}.addressGroupRef.name"),
                &group.name,
            );
        }
    }
    if let Some(feed) = &spec.feed {
        out.range("spec.feed.refreshRate", feed.refresh_rate, 1, 43200);
        if let Some(url) = &feed.url
            && out.max_len("spec.feed.url", url, MAX_FEED_URL_LEN)
            && !is_feed_url(url)
        {
            out.refuse("spec.feed.url", url, FEED_URL_MESSAGE);
        }
        if let Some(c) = &feed.credentials_secret_ref {
            let field = "spec.feed.credentialsSecretRef";
            secret_name(&mut out, &format!("{field}.name"), &c.name);
            secret_key(&mut out, &format!("{field}.usernameKey"), &c.username_key);
            secret_key(&mut out, &format!("{field}.passwordKey"), &c.password_key);
        }
    }
    out.0.extend(super::validate_device_targets(spec));
    out.0
}

/// `maxItems`, worded as the API server words it.
fn too_many(out: &mut Problems, field: &str, len: usize, max: usize) {
    if len > max {
        out.push(
            field,
            &format!("Too many: {len}: must have at most {max} items"),
        );
    }
}

/// The name of another object of the namespace: `minLength`, `maxLength`, DNS-1123.
fn local_name(out: &mut Problems, field: &str, name: &str) {
    if out.length(field, name, 1, 253) && !is_dns1123_subdomain(name) {
        out.refuse(field, name, LOCAL_NAME_MESSAGE);
    }
}

/// The CRD's `FEED_URL_RULE`: parses, scheme `http` or `https`, a host.
fn is_feed_url(text: &str) -> bool {
    url::Url::parse(text).is_ok_and(|u| matches!(u.scheme(), "http" | "https"))
        && has_written_host(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn feed_urls_need_an_http_scheme_and_a_host() {
        for good in [
            "https://edl.example.com/allow.txt",
            "http://fortisync-edl.fortisync.svc:8080/edl/ns/name",
            "https://[2001:db8::1]:8443/x?y=1",
        ] {
            assert!(is_feed_url(good), "{good}");
        }
        for bad in [
            "https://",
            "https:///allow.txt",
            "ftp://edl.example.com/x",
            "edl.example.com/allow.txt",
            "https://edl example.com/",
        ] {
            assert!(!is_feed_url(bad), "{bad}");
        }
    }
}
