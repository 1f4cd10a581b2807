//! What an ExternalConnector declares: its entries from the spec and from the ConfigMaps and
//! AddressGroups it names, canonicalised, de-duplicated and without the expired ones (pure).

use std::collections::{BTreeMap, BTreeSet};

use crate::api::addressgroup::Member;
use crate::model::MemberAddress;

/// One source's entries as text, before parsing, with where they came from (for messages).
#[derive(Debug, Clone, PartialEq)]
pub struct SourceEntries {
    /// `spec.entries`, `ConfigMap/<name>[<key>]` or `AddressGroup/<name>`.
    pub origin: String,
    /// The entries with their expiry.
    pub entries: Vec<SourceEntry>,
}

/// One entry of a source.
#[derive(Debug, Clone, PartialEq)]
pub struct SourceEntry {
    /// The address as written.
    pub text: String,
    /// When it stops being desired.
    pub expires_at: Option<jiff::Timestamp>,
}

impl SourceEntries {
    /// The inline entries of a spec (or an AddressGroup's members).
    pub fn of_members(origin: &str, members: &[Member]) -> Self {
        Self {
            origin: origin.to_string(),
            entries: members
                .iter()
                .map(|m| SourceEntry {
                    text: m.address.clone(),
                    expires_at: m.expires_at.as_ref().map(|t| t.0),
                })
                .collect(),
        }
    }

    /// A ConfigMap value: one entry per line; blank lines and `#` comments skipped.
    pub fn of_lines(origin: &str, text: &str) -> Self {
        Self {
            origin: origin.to_string(),
            entries: text
                .lines()
                .map(|l| l.split('#').next().unwrap_or_default().trim())
                .filter(|l| !l.is_empty())
                .map(|l| SourceEntry {
                    text: l.to_string(),
                    expires_at: None,
                })
                .collect(),
        }
    }
}

/// The list to hold, in canonical form.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DesiredList {
    /// Canonical entries, sorted, each once.
    pub entries: BTreeSet<String>,
    /// When an entry stops being desired, for those that do (an entry that some source
    /// declares without expiry has none; of several expiries the latest counts).
    pub expiries: BTreeMap<String, jiff::Timestamp>,
    /// The nearest future expiry.
    pub next_expiry: Option<jiff::Timestamp>,
    /// Entries that are not addresses, as `<origin> line/item <n>: <reason>`.
    pub invalid: Vec<String>,
}

impl DesiredList {
    /// A short digest of the entries (sorted, canonical): equal lists, equal digests.
    pub fn digest(&self) -> String {
        use sha2::{Digest, Sha256};
        let mut d = Sha256::new();
        for e in &self.entries {
            d.update(e.as_bytes());
            d.update(b"\n");
        }
        let full = format!("{:x}", d.finalize());
        full[..16].to_string()
    }
}

/// Merges `sources` at `now`. An invalid entry is reported, never sent (the device would count
/// it invalid anyway, and a typo must not be mistaken for a narrower list).
pub fn desired(sources: &[SourceEntries], now: jiff::Timestamp) -> DesiredList {
    let mut out = DesiredList::default();
    let mut forever = BTreeSet::new();
    for source in sources {
        for (i, e) in source.entries.iter().enumerate() {
            if e.expires_at.is_some_and(|at| at <= now) {
                continue;
            }
            match MemberAddress::parse(&e.text) {
                Ok(a) => {
                    let text = a.to_string();
                    match e.expires_at {
                        None => {
                            forever.insert(text.clone());
                        }
                        Some(at) => {
                            let latest = out.expiries.entry(text.clone()).or_insert(at);
                            *latest = (*latest).max(at);
                        }
                    }
                    out.entries.insert(text);
                }
                Err(reason) => {
                    out.invalid
                        .push(format!("{} entry {}: {reason}", source.origin, i + 1))
                }
            }
        }
    }
    out.expiries.retain(|entry, _| !forever.contains(entry));
    out.next_expiry = out.expiries.values().min().copied();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> jiff::Timestamp {
        s.parse().expect("timestamp")
    }

    #[test]
    fn sources_merge_canonical_sorted_once_and_without_expired_entries() {
        let inline = SourceEntries {
            origin: "spec.entries".into(),
            entries: vec![
                SourceEntry {
                    text: "192.0.2.10/32".into(),
                    expires_at: None,
                },
                SourceEntry {
                    text: "198.51.100.7".into(),
                    expires_at: Some(at("2030-01-01T00:00:00Z")),
                },
                SourceEntry {
                    text: "203.0.113.1".into(),
                    expires_at: Some(at("2030-06-01T00:00:00Z")),
                },
            ],
        };
        let map = SourceEntries::of_lines(
            "ConfigMap/blocklist[ips]",
            "# header\n192.0.2.10\n\n2001:DB8:0:0::5  # a host\n10.0.0.0/8\nnot-an-ip\n",
        );
        let d = desired(&[inline, map], at("2030-02-01T00:00:00Z"));
        assert_eq!(
            d.entries.iter().map(String::as_str).collect::<Vec<_>>(),
            ["10.0.0.0/8", "192.0.2.10", "2001:db8::5", "203.0.113.1"]
        );
        assert_eq!(d.next_expiry, Some(at("2030-06-01T00:00:00Z")));
        assert_eq!(
            d.expiries.len(),
            1,
            "192.0.2.10 is also declared without expiry"
        );
        assert_eq!(d.invalid.len(), 1);
        assert!(
            d.invalid[0].starts_with("ConfigMap/blocklist[ips] entry 4:"),
            "{:?}",
            d.invalid
        );
    }
}
