//! FortiOS versions and the behaviour that depends on them (facts page §1, §3, §4, §6).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A FortiOS firmware version, e.g. `7.4.3`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct FosVersion {
    /// Major.
    pub major: u32,
    /// Minor.
    pub minor: u32,
    /// Patch.
    pub patch: u32,
}

impl FosVersion {
    /// A version from its parts.
    pub const fn new(major: u32, minor: u32, patch: u32) -> Self {
        Self {
            major,
            minor,
            patch,
        }
    }

    fn at_least(self, major: u32, minor: u32, patch: u32) -> bool {
        self >= Self::new(major, minor, patch)
    }

    /// `?access_token=` works by default before 7.4.5 and on 7.6.0 (refused from 7.4.5 / 7.6.1).
    pub fn access_token_query_default(self) -> bool {
        !self.at_least(7, 4, 5) || self == Self::new(7, 6, 0)
    }

    /// `/logincheck` answers JSON `{"status":N}` from 7.6.3 (a leading code digit before).
    pub fn logincheck_json(self) -> bool {
        self.at_least(7, 6, 3)
    }

    /// The CSRF cookie name for an admin port and session id.
    pub fn csrf_cookie_name(self, port: u16, id: u32) -> String {
        if self.at_least(7, 6, 3) {
            format!("ccsrf_token_{port}_{id}")
        } else if self.at_least(7, 2, 4) {
            format!("ccsrftoken_{port}_{id}")
        } else {
            "ccsrftoken".to_string()
        }
    }

    /// The external-resource dynamic push API exists from 7.2.1.
    pub fn dynamic_push(self) -> bool {
        self.at_least(7, 2, 1)
    }

    /// `server-identity-check` on external resources: 7.0.8–7.0.12 and 7.2.4+ (facts §3.4).
    pub fn server_identity_check(self) -> bool {
        (self.at_least(7, 0, 8) && !self.at_least(7, 1, 0)) || self.at_least(7, 2, 4)
    }

    /// Feed entry limits are global budgets from 7.4.4 (per list of 128K before; facts §8).
    pub fn global_feed_limits(self) -> bool {
        self.at_least(7, 4, 4)
    }

    /// An address group may be empty from 7.2.0 (#0769154).
    pub fn empty_group_allowed(self) -> bool {
        self.at_least(7, 2, 0)
    }

    /// Members per address group: 600 in the 6.4.14 schema. 7.x schemas give no maximum; the
    /// simulator uses 5,000 (a mid-range model's order of magnitude), overridable per scenario.
    pub fn default_member_cap(self) -> usize {
        if self.at_least(7, 0, 0) { 5_000 } else { 600 }
    }

    /// `api_version` as monitor answers show it, e.g. `v7.4`.
    pub fn api_version(self) -> String {
        format!("v{}.{}", self.major, self.minor)
    }

    /// A plausible build number for envelopes.
    pub fn build(self) -> u32 {
        1000 + self.minor * 400 + self.patch * 37 + (self.major - 6) * 100
    }
}

impl fmt::Display for FosVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "v{}.{}.{}", self.major, self.minor, self.patch)
    }
}

impl FromStr for FosVersion {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let text = s.trim().trim_start_matches(['v', 'V']);
        let parts: Vec<&str> = text.split('.').collect();
        let num = |i: usize| -> Result<u32, String> {
            parts.get(i).map_or(Ok(0), |p| {
                p.parse().map_err(|_| format!("bad FortiOS version {s:?}"))
            })
        };
        if parts.is_empty() || parts.len() > 3 {
            return Err(format!("bad FortiOS version {s:?}"));
        }
        let version = Self::new(num(0)?, num(1)?, num(2)?);
        if !(FosVersion::new(6, 4, 0)..FosVersion::new(8, 0, 0)).contains(&version) {
            return Err(format!(
                "FortiOS {s} is outside the simulated range 6.4-7.6"
            ));
        }
        Ok(version)
    }
}

impl Serialize for FosVersion {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format!("{}.{}.{}", self.major, self.minor, self.patch))
    }
}

impl<'de> Deserialize<'de> for FosVersion {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

impl Default for FosVersion {
    fn default() -> Self {
        Self::new(7, 4, 3)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &str) -> FosVersion {
        s.parse().expect("version")
    }

    #[test]
    fn token_in_url_is_refused_from_7_4_5_and_7_6_1() {
        assert!(v("6.4.14").access_token_query_default());
        assert!(v("7.4.4").access_token_query_default());
        assert!(!v("7.4.5").access_token_query_default());
        assert!(v("7.6.0").access_token_query_default());
        assert!(!v("7.6.1").access_token_query_default());
    }

    #[test]
    fn csrf_cookie_names_follow_the_version() {
        assert_eq!(v("7.2.3").csrf_cookie_name(443, 7), "ccsrftoken");
        assert_eq!(v("7.2.4").csrf_cookie_name(443, 7), "ccsrftoken_443_7");
        assert_eq!(v("7.6.3").csrf_cookie_name(8443, 7), "ccsrf_token_8443_7");
    }

    #[test]
    fn version_gates() {
        assert!(!v("7.2.0").dynamic_push());
        assert!(v("7.2.1").dynamic_push());
        assert!(!v("7.0.7").server_identity_check() && v("7.0.8").server_identity_check());
        assert!(!v("7.2.3").server_identity_check() && v("7.2.4").server_identity_check());
        assert!(!v("7.4.3").global_feed_limits() && v("7.4.4").global_feed_limits());
        assert!(!v("7.0.12").empty_group_allowed());
        assert!(v("7.2.0").empty_group_allowed());
        assert_eq!(v("6.4.14").default_member_cap(), 600);
        assert!(v("7.6.3").logincheck_json() && !v("7.6.2").logincheck_json());
    }

    #[test]
    fn parsing_accepts_v_prefix_and_short_forms_and_refuses_out_of_range() {
        assert_eq!(v("v7.4"), FosVersion::new(7, 4, 0));
        assert!("6.2.3".parse::<FosVersion>().is_err());
        assert!("seven".parse::<FosVersion>().is_err());
        assert!("8.0.0".parse::<FosVersion>().is_err());
    }
}
