//! Which TrustedHost holds a user's slot when several claim it (pure): the oldest by creation
//! time, then by name. The order is a property of the objects, not of who reconciled first,
//! so neither resource ever flaps: the first keeps the slot, every later one is refused naming
//! it until the first goes (a resource being deleted keeps its claim until its finalizer has
//! closed the slot).
//!
//! Claims are compared within the namespace and by connection (`targetRef`): two connections
//! to one device in different namespaces are not seen here (documented in docs/trustedhost.md).

use crate::api::trustedhost::{TrustedHost, UserKind};
use kube::ResourceExt;

/// What a resource claims: connection, user, kind, slot.
pub fn claim_key(th: &TrustedHost) -> (String, String, UserKind, u8) {
    (
        format!("{:?}/{}", th.spec.target_ref.kind, th.spec.target_ref.name),
        th.spec.user.clone(),
        th.spec.user_kind,
        th.spec.slot,
    )
}

/// The resource of `all` (this namespace's TrustedHosts) that holds `me`'s claim, when it is
/// another one: `<namespace>/<name>`.
pub fn first_claim(me: &TrustedHost, all: &[TrustedHost]) -> Option<String> {
    let key = claim_key(me);
    let first = all
        .iter()
        .filter(|t| claim_key(t) == key)
        .chain(std::iter::once(me))
        .min_by(|a, b| {
            let at = |t: &TrustedHost| t.metadata.creation_timestamp.as_ref().map(|c| c.0);
            at(a)
                .cmp(&at(b))
                .then_with(|| a.name_any().cmp(&b.name_any()))
        })?;
    (first.name_any() != me.name_any()).then(|| {
        format!(
            "{}/{}",
            first.namespace().unwrap_or_default(),
            first.name_any()
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

    fn th(name: &str, created: i64, slot: u8) -> TrustedHost {
        let mut t: TrustedHost = serde_json::from_value(serde_json::json!({
            "apiVersion": "fortisync.dev/v1alpha1", "kind": "TrustedHost",
            "metadata": {"name": name, "namespace": "team-a"},
            "spec": {"targetRef": {"kind": "FortiManager", "name": "fmg"}, "user": "alice", "slot": slot, "address": "192.0.2.10"},
        }))
        .expect("th");
        t.metadata.creation_timestamp = Some(Time(
            k8s_openapi::jiff::Timestamp::from_second(created).expect("time"),
        ));
        t
    }

    #[test]
    fn the_older_claim_wins_then_the_name_and_the_winner_sees_no_conflict() {
        let (a, b, c) = (
            th("b-old", 100, 10),
            th("a-new", 200, 10),
            th("z-same", 100, 10),
        );
        let all = vec![a.clone(), b.clone(), c.clone()];
        assert_eq!(first_claim(&a, &all), None);
        assert_eq!(first_claim(&b, &all).as_deref(), Some("team-a/b-old"));
        assert_eq!(first_claim(&c, &all).as_deref(), Some("team-a/b-old"));
        let other_slot = th("c", 50, 9);
        assert_eq!(first_claim(&other_slot, &all), None);
    }
}
