//! A feed's list as FortiOS reads it (facts §4, §8): entries per line, what is valid for an
//! address feed, and the entry and size limits of each version.

use std::net::IpAddr;

use ipnet::IpNet;

use super::version::FosVersion;

/// The default entry limit for a feed type (facts §8). Before 7.4.4: 128K entries per list
/// (read as 131,072). From 7.4.4 a global budget per type; the model class is unknown to the
/// simulator, so it takes the entry-level figure (the smallest, never admitting more than a
/// device would): IP address 300,000, domain 1,000,000, MAC 1,000,000, category 150,000, and
/// 150,000 for types the table does not list.
pub fn entry_limit(version: FosVersion, kind: &str) -> usize {
    if !version.global_feed_limits() {
        return 131_072;
    }
    match kind {
        "address" | "generic-address" => 300_000,
        "domain" | "mac-address" => 1_000_000,
        _ => 150_000,
    }
}

pub fn default_max_body(version: FosVersion) -> usize {
    // 10 MB per resource before 7.4.4; from 7.4.4 the entry-level 32 MB (facts §8).
    if version.global_feed_limits() {
        32 << 20
    } else {
        10 << 20
    }
}

/// Whether one entry is valid for a feed of `kind`. Address feeds take IPv4/IPv6 hosts,
/// prefixes and `a-b` ranges (same family, in order); other types take any text.
pub fn entry_valid(kind: &str, entry: &str) -> bool {
    if kind != "address" {
        return true;
    }
    let entry = entry.trim();
    if let Some((a, b)) = entry.split_once('-') {
        return matches!((a.trim().parse::<IpAddr>(), b.trim().parse::<IpAddr>()),
            (Ok(x), Ok(y)) if x.is_ipv4() == y.is_ipv4() && x <= y);
    }
    entry.parse::<IpAddr>().is_ok() || entry.parse::<IpNet>().is_ok()
}

/// The entries of a list body: one per line, trimmed; blank lines and `#` comments dropped.
pub fn parse_list(body: &str) -> Vec<String> {
    body.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(str::to_string)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_drop_blank_lines_and_comments_and_keep_invalid_lines() {
        let body = "# header\n192.0.2.1\r\n\n  10.0.0.0/8  \n#x\n2001:db8::/32\nbogus\n";
        assert_eq!(
            parse_list(body),
            ["192.0.2.1", "10.0.0.0/8", "2001:db8::/32", "bogus"]
        );
    }

    #[test]
    fn address_entries_are_hosts_prefixes_or_ordered_ranges_of_one_family() {
        for ok in [
            "192.0.2.1",
            "10.0.0.0/8",
            "2001:db8::1",
            "2001:db8::/32",
            "10.0.0.1-10.0.0.9",
        ] {
            assert!(entry_valid("address", ok), "{ok}");
        }
        for bad in [
            "bogus",
            "10.0.0.9-10.0.0.1",
            "10.0.0.1-2001:db8::1",
            "10.0.0.0/33",
            "1.2.3.4 # note",
        ] {
            assert!(!entry_valid("address", bad), "{bad}");
        }
        assert!(entry_valid("domain", "example.com"));
    }

    #[test]
    fn limits_follow_the_version() {
        let v = |s: &str| s.parse::<FosVersion>().expect("version");
        assert_eq!(entry_limit(v("7.4.3"), "address"), 131_072);
        assert_eq!(entry_limit(v("7.4.4"), "address"), 300_000);
        assert_eq!(default_max_body(v("7.2.8")), 10 << 20);
    }
}
