//! The TrustedHost steps: every slot of each user the manifests' TrustedHosts name on this
//! device, as the device means it — allow-all (it masks every other slot), unused, ours (the
//! value a TrustedHost of the manifests declares for that slot) or foreign. Read-only.

use super::checks::{Status, Step};
use crate::api::trustedhost::{TrustedHost, UserKind};
use crate::reconcile::trustedhost::converge::granted;
use crate::reconcile::trustedhost::slots::{Slot, UserSlots};

/// One user the manifests' TrustedHosts name, with the slots they declare.
#[derive(Debug, Clone, PartialEq)]
pub struct UserCheck {
    /// The administrator.
    pub user: String,
    /// Admin or API user (FortiGate).
    pub kind: UserKind,
    /// `(slot, declared value, resource)` of each TrustedHost on this user.
    pub declared: Vec<(u32, Option<Slot>, String)>,
}

impl UserCheck {
    pub(super) fn id(&self) -> String {
        format!("trusted-hosts.{}", self.user)
    }

    pub(super) fn title(&self) -> String {
        format!("trusted hosts of {}", self.user)
    }
}

/// Groups the TrustedHosts of one connection by user (sorted, each user once).
pub fn users(hosts: &[&TrustedHost]) -> Vec<UserCheck> {
    let mut out: Vec<UserCheck> = Vec::new();
    for th in hosts {
        let entry = (
            u32::from(th.spec.slot),
            granted(th).ok(),
            format!(
                "{}/{}",
                th.metadata.namespace.as_deref().unwrap_or_default(),
                th.metadata.name.as_deref().unwrap_or_default()
            ),
        );
        match out
            .iter_mut()
            .find(|u| u.user == th.spec.user && u.kind == th.spec.user_kind)
        {
            Some(u) => u.declared.push(entry),
            None => out.push(UserCheck {
                user: th.spec.user.clone(),
                kind: th.spec.user_kind,
                declared: vec![entry],
            }),
        }
    }
    out.sort_by(|a, b| a.user.cmp(&b.user));
    out
}

/// The step for one user from its slots as read (pure).
pub fn slots_step(check: &UserCheck, slots: &UserSlots) -> Step {
    let mut words = Vec::new();
    let mut allow_all = Vec::new();
    for n in 1..=10u32 {
        let value = slots.get(n);
        let declared = check.declared.iter().find(|(s, ..)| *s == n);
        let what = if value.v4.is_allow_all() || value.v6.is_allow_all() {
            allow_all.push(n);
            "allow-all"
        } else if value.is_unused() {
            "unused"
        } else if declared.is_some_and(|(_, v, _)| *v == Some(value)) {
            "ours"
        } else {
            "foreign"
        };
        let text = if value.is_unused() {
            String::new()
        } else {
            format!(" {} / {}", value.v4.text(), value.v6.text())
        };
        let owner = declared
            .map(|(_, _, r)| format!(" [{r}]"))
            .unwrap_or_default();
        words.push(format!("{n}: {what}{text}{owner}"));
    }
    let detail = words.join("; ");
    let (id, title) = (check.id(), check.title());
    if allow_all.is_empty() {
        return Step::ok(&id, &title, detail);
    }
    let list: Vec<String> = allow_all.iter().map(ToString::to_string).collect();
    Step {
        status: Status::Warn,
        reason: Some("SlotMasked".into()),
        cause: Some(format!(
            "slot(s) {} let every source in, which masks any restriction in the other slots (F20)",
            list.join(", ")
        )),
        remedy: Some(
            "set those slots to 127.0.0.1 or a controlled address (seed 003) before a TrustedHost can restrict this user"
                .into(),
        ),
        troubleshooting_row: Some("F20".into()),
        ..Step::ok(&id, &title, detail)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::reconcile::trustedhost::fortimanager::read_user;
    use crate::reconcile::trustedhost::slots::Half;

    fn check() -> UserCheck {
        UserCheck {
            user: "alice".into(),
            kind: UserKind::Admin,
            declared: vec![(
                10,
                Some(Slot {
                    v4: Half::Net("192.0.2.10/32".parse().expect("net")),
                    v6: Half::Unused,
                }),
                "team-a/alice-session".into(),
            )],
        }
    }

    #[test]
    fn each_slot_is_named_allow_all_unused_ours_or_foreign_and_allow_all_warns() {
        let user = read_user(&json!({
            "userid": "alice",
            "trusthost1": ["0.0.0.0", "0.0.0.0"],
            "trusthost2": ["10.1.2.0", "255.255.255.0"],
            "trusthost10": ["192.0.2.10", "255.255.255.255"],
            "ipv6_trusthost1": "::1/128",
        }))
        .expect("user");
        let s = slots_step(&check(), &user.slots);
        assert_eq!(s.status, Status::Warn);
        assert_eq!(s.reason.as_deref(), Some("SlotMasked"));
        assert_eq!(s.troubleshooting_row.as_deref(), Some("F20"));
        assert!(
            s.detail.starts_with(
                "1: allow-all 0.0.0.0/0 / ::1/128; 2: foreign 10.1.2.0/24 / unused; 3: unused;"
            ),
            "{}",
            s.detail
        );
        assert!(
            s.detail
                .ends_with("10: ours 192.0.2.10/32 / unused [team-a/alice-session]"),
            "{}",
            s.detail
        );

        let controlled = read_user(&json!({
            "userid": "alice",
            "trusthost1": ["127.0.0.1", "255.255.255.255"],
            "ipv6_trusthost1": "::1/128",
        }))
        .expect("user");
        let ok = slots_step(&check(), &controlled.slots);
        assert_eq!(ok.status, Status::Ok);
        assert!(
            ok.detail.ends_with("10: unused [team-a/alice-session]"),
            "{}",
            ok.detail
        );
    }
}
