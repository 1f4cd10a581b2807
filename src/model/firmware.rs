//! Firmware versions as devices report them (`v7.4.3`, FortiManager ADOM `os_ver` + `mr`), and
//! what a version allows: facts that rule a plan before any write.

use std::fmt;

/// A FortiOS version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Firmware {
    /// Major (`7` of 7.4.3).
    pub major: u32,
    /// Minor (`4` of 7.4.3).
    pub minor: u32,
    /// Patch (`3` of 7.4.3).
    pub patch: u32,
}

impl Firmware {
    /// `major.minor.patch`.
    pub const fn new(major: u32, minor: u32, patch: u32) -> Self {
        Self {
            major,
            minor,
            patch,
        }
    }

    /// Reads `v7.4.3`, `7.4.3`, `v7.2` or `v7.4.3-build2573`; parts it cannot read count as 0,
    /// which errs toward the older firmware's (stricter) rules.
    pub fn parse(text: &str) -> Self {
        let core = text.trim().trim_start_matches(['v', 'V']);
        let core = core.split(['-', ' ', ',']).next().unwrap_or_default();
        let mut parts = core.split('.').map(|p| p.parse::<u32>().unwrap_or(0));
        Self::new(
            parts.next().unwrap_or(0),
            parts.next().unwrap_or(0),
            parts.next().unwrap_or(0),
        )
    }

    /// FortiOS 7.2 and later accept an address group without members.
    pub fn empty_group_allowed(self) -> bool {
        self >= Self::new(7, 2, 0)
    }

    /// Members one address group may hold: 600 on 6.4 (the device answers -4 past it); later
    /// firmware allows far more (the simulator's default is 5,000, scenario-overridable;
    /// UNCONFIRMED per model, so only the 6.4 cap is enforced before writing).
    pub fn group_member_limit(self) -> Option<usize> {
        (self < Self::new(7, 0, 0)).then_some(600)
    }
}

impl fmt::Display for Firmware {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.major, self.minor, self.patch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_read_as_devices_write_them() {
        assert_eq!(Firmware::parse("v7.4.3"), Firmware::new(7, 4, 3));
        assert_eq!(Firmware::parse("7.2"), Firmware::new(7, 2, 0));
        assert_eq!(
            Firmware::parse("v7.0.12-build0523"),
            Firmware::new(7, 0, 12)
        );
        assert_eq!(Firmware::parse("garbage"), Firmware::new(0, 0, 0));
        assert_eq!(Firmware::new(7, 4, 3).to_string(), "7.4.3");
    }

    #[test]
    fn empty_groups_from_7_2_and_the_6_4_member_cap() {
        assert!(!Firmware::parse("v7.0.12").empty_group_allowed());
        assert!(Firmware::parse("v7.2.0").empty_group_allowed());
        assert_eq!(Firmware::parse("v6.4.14").group_member_limit(), Some(600));
        assert_eq!(Firmware::parse("v7.4.3").group_member_limit(), None);
    }
}
