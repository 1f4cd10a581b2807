//! The served form of one list: the body bytes, their ETag and a compact expiry index. Pure.
//!
//! Only the body and the index are kept, never the `Vec<Entry>` the caller passed in: at
//! 300,000 entries a `String` per entry (24 B + heap block) alone would exceed the per-entry
//! memory aim, while the body costs its text plus one newline and the index 16 B per entry that
//! expires at all.

use bytes::Bytes;
use jiff::Timestamp;
use sha2::{Digest, Sha256};

use super::Entry;

/// An entry that was not served, and why (the controller can surface it in status).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RejectedEntry {
    /// Index in `ListSpec::entries`.
    pub index: usize,
    /// Why it was left out.
    pub reason: &'static str,
}

/// Where an expiring line sits in the body and when it leaves.
#[derive(Debug, Clone, Copy)]
struct Expiring {
    /// Expiry in nanoseconds since the Unix epoch.
    at: i64,
    /// Byte offset of the line in the body.
    start: u32,
    /// Length of the line including its newline.
    len: u32,
}

/// One built body: what every request for the list is answered with until the next change.
#[derive(Debug, Clone)]
pub struct Body {
    /// `entry\n` per served entry, sorted and de-duplicated.
    pub bytes: Bytes,
    /// Strong ETag, quoted: `"<sha-256 hex>"`.
    pub etag: String,
    /// Entries in `bytes`.
    pub entries: usize,
    /// Expiring lines, soonest first.
    expiring: Vec<Expiring>,
}

fn nanos(at: Timestamp) -> i64 {
    // Saturating: a far-future expiry (past year 2262) is as good as never within a process life.
    i64::try_from(at.as_nanosecond()).unwrap_or(if at.as_nanosecond() < 0 {
        i64::MIN
    } else {
        i64::MAX
    })
}

/// Why `text` cannot be a line of the feed, if it cannot.
fn refuse(text: &str) -> Option<&'static str> {
    if text.is_empty() {
        return Some("is empty");
    }
    // A line break would smuggle a second entry into the feed (widening access); other control
    // characters have no meaning to the FortiGate's parser, so neither is ever served.
    if text.chars().any(char::is_control) {
        return Some("contains a control character or line break");
    }
    None
}

impl Body {
    /// Builds the body from `entries` as seen at `now`: entries trimmed, invalid ones rejected,
    /// expired ones omitted, sorted, duplicates merged (the later expiry wins, none beats any).
    pub fn build(entries: &[Entry], now: Timestamp) -> (Self, Vec<RejectedEntry>) {
        let now = nanos(now);
        let mut rejected = Vec::new();
        let mut lines: Vec<(&str, Option<i64>)> = Vec::with_capacity(entries.len());
        for (index, entry) in entries.iter().enumerate() {
            let text = entry.text.trim();
            if let Some(reason) = refuse(text) {
                rejected.push(RejectedEntry { index, reason });
                continue;
            }
            lines.push((text, entry.expires_at.map(nanos)));
        }
        lines.sort_unstable_by(|a, b| a.0.cmp(b.0));
        lines.dedup_by(|later, kept| {
            if later.0 != kept.0 {
                return false;
            }
            kept.1 = match (kept.1, later.1) {
                (Some(a), Some(b)) => Some(a.max(b)),
                _ => None,
            };
            true
        });
        lines.retain(|(_, at)| at.is_none_or(|at| at > now));

        let size: usize = lines.iter().map(|(text, _)| text.len() + 1).sum();
        let mut bytes = Vec::with_capacity(size);
        let mut expiring = Vec::new();
        for (text, at) in &lines {
            if let Some(at) = at {
                expiring.push(Expiring {
                    at: *at,
                    start: offset(bytes.len()),
                    len: offset(text.len() + 1),
                });
            }
            bytes.extend_from_slice(text.as_bytes());
            bytes.push(b'\n');
        }
        expiring.sort_unstable_by_key(|e| e.at);
        expiring.shrink_to_fit();
        (Self::seal(bytes, lines.len(), expiring), rejected)
    }

    fn seal(bytes: Vec<u8>, entries: usize, expiring: Vec<Expiring>) -> Self {
        let etag = format!("\"{:x}\"", Sha256::digest(&bytes));
        Self {
            bytes: Bytes::from(bytes),
            etag,
            entries,
            expiring,
        }
    }

    /// When the next entry leaves, if any does.
    pub fn next_expiry(&self) -> Option<i64> {
        self.expiring.first().map(|e| e.at)
    }

    /// Whether an entry has expired by `now` (the body is stale).
    pub fn is_stale(&self, now: Timestamp) -> bool {
        self.next_expiry().is_some_and(|at| at <= nanos(now))
    }

    /// The body without the lines expired by `now`, cut from this one (no re-sort needed).
    pub fn without_expired(&self, now: Timestamp) -> Self {
        let now = nanos(now);
        let gone = self.expiring.partition_point(|e| e.at <= now);
        let mut removed: Vec<Expiring> = self.expiring[..gone].to_vec();
        removed.sort_unstable_by_key(|e| e.start);
        let removed_len: usize = removed.iter().map(|e| e.len as usize).sum();

        let mut bytes = Vec::with_capacity(self.bytes.len() - removed_len);
        let mut from = 0usize;
        for cut in &removed {
            bytes.extend_from_slice(&self.bytes[from..cut.start as usize]);
            from = (cut.start + cut.len) as usize;
        }
        bytes.extend_from_slice(&self.bytes[from..]);

        // Each kept line moves left by the bytes removed before it.
        let mut shift_before = Vec::with_capacity(removed.len() + 1);
        shift_before.push(0u32);
        for cut in &removed {
            shift_before.push(shift_before.last().copied().unwrap_or(0) + cut.len);
        }
        let expiring = self.expiring[gone..]
            .iter()
            .map(|e| {
                let cuts_before = removed.partition_point(|cut| cut.start < e.start);
                Expiring {
                    start: e.start - shift_before[cuts_before],
                    ..*e
                }
            })
            .collect();
        Self::seal(bytes, self.entries - gone, expiring)
    }

    /// Bytes held by this body and its index (for the memory benchmark and status).
    pub fn retained_bytes(&self) -> usize {
        self.bytes.len() + self.expiring.capacity() * size_of::<Expiring>() + self.etag.len()
    }
}

fn offset(n: usize) -> u32 {
    // FortiGate feeds are capped at 128 MB (7.4.4+ high-end), far below 4 GiB.
    u32::try_from(n).expect("EDL body over 4 GiB")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: i64) -> Timestamp {
        Timestamp::from_second(s).unwrap()
    }

    fn entry(text: &str, expires: Option<i64>) -> Entry {
        Entry {
            text: text.into(),
            expires_at: expires.map(at),
        }
    }

    #[test]
    fn entries_are_sorted_deduplicated_one_per_line() {
        let (body, rejected) = Body::build(
            &[
                entry("10.0.0.2", None),
                entry(" 10.0.0.1 ", None),
                entry("10.0.0.2", Some(5)),
            ],
            at(0),
        );
        assert_eq!(&body.bytes[..], b"10.0.0.1\n10.0.0.2\n");
        assert_eq!(body.entries, 2);
        assert!(rejected.is_empty());
        // The duplicate without expiry wins: nothing is left to expire.
        assert_eq!(body.next_expiry(), None);
    }

    #[test]
    fn line_breaks_and_empty_entries_are_rejected_not_served() {
        let (body, rejected) = Body::build(
            &[
                entry("10.0.0.1\n0.0.0.0/0", None),
                entry("  ", None),
                entry("10.0.0.3", None),
            ],
            at(0),
        );
        assert_eq!(&body.bytes[..], b"10.0.0.3\n");
        assert_eq!(
            rejected,
            vec![
                RejectedEntry {
                    index: 0,
                    reason: "contains a control character or line break"
                },
                RejectedEntry {
                    index: 1,
                    reason: "is empty"
                },
            ]
        );
    }

    #[test]
    fn already_expired_entries_are_omitted_and_expiry_is_exclusive() {
        let (body, _) = Body::build(&[entry("a", Some(10)), entry("b", Some(11))], at(10));
        assert_eq!(&body.bytes[..], b"b\n");
        assert!(!body.is_stale(at(10)));
        assert!(body.is_stale(at(11)));
    }

    #[test]
    fn cutting_expired_lines_equals_building_afresh() {
        let entries: Vec<Entry> = (0..50)
            .map(|i| {
                entry(
                    &format!("10.0.{}.{}", i % 7, i),
                    (i % 3 != 0).then_some(i % 11),
                )
            })
            .collect();
        let (mut body, _) = Body::build(&entries, at(0));
        for now in 1..12 {
            body = body.without_expired(at(now));
            let (fresh, _) = Body::build(&entries, at(now));
            assert_eq!(body.bytes, fresh.bytes, "at {now}");
            assert_eq!(body.etag, fresh.etag);
            assert_eq!(body.entries, fresh.entries);
        }
    }

    #[test]
    fn etag_is_the_sha256_of_the_body() {
        let (body, _) = Body::build(&[], at(0));
        assert_eq!(
            body.etag,
            "\"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855\""
        );
    }
}
