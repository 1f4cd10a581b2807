//! Plans that must write nothing: one owner per group, the firmware's member cap, members
//! whose time passed before the group existed.

use super::*;
use crate::model::Firmware;

fn group_of(comment: &str, members: &[&str]) -> ObservedGroupObject {
    ObservedGroupObject {
        members: members.iter().map(|m| m.to_string()).collect(),
        comment: comment.into(),
    }
}

fn other_owner(namespace: &str, name: &str) -> Owner {
    Owner {
        namespace: namespace.into(),
        name: name.into(),
    }
}

/// The device after another resource `other` converged `members` into group `allowed`.
fn owned_by(other: &Owner, members: &[&str]) -> ObservedGroup {
    let d = DesiredGroup {
        owner: other.clone(),
        ..desired(members)
    };
    super::converge(&d, &ObservedGroup::default())
}

#[test]
fn a_group_another_resource_of_this_namespace_owns_is_refused_naming_it_and_never_written() {
    let state = owned_by(&other_owner("team-a", "web"), &["10.0.0.1"]);
    for membership in [Membership::Exclusive, Membership::Additive] {
        let mut d = desired(&["10.0.0.2"]);
        d.membership = membership;
        d.take_over = true; // never takes from another fortisync resource
        let p = plan(&d, &state, now());
        assert!(p.is_empty(), "{membership:?}: {p}");
        let r = p.refusal().expect("refused");
        assert_eq!(r.reason, "GroupOwnedByAnother");
        assert_eq!(
            r.message,
            "fortisync resource web (in this namespace) owns this group: address group allowed carries its marker, so this resource writes nothing to it"
        );
        assert!(r.remedy.contains("spec.groupName"), "{}", r.remedy);
        assert_eq!(
            p.counts(),
            Counts {
                desired: 1,
                present: 0,
                foreign: 0
            }
        );
        assert!(
            p.foreign_members().is_empty(),
            "another's members are not listed"
        );
    }
}

#[test]
fn a_group_owned_in_another_namespace_is_refused_without_naming_the_tenant() {
    let state = owned_by(&other_owner("team-b", "web"), &["10.0.0.1"]);
    let mut d = desired(&["10.0.0.1"]);
    d.membership = Membership::Exclusive;
    let p = plan(&d, &state, now());
    let r = p.refusal().expect("refused");
    assert_eq!(r.reason, "GroupOwnedByAnother");
    assert!(
        r.message
            .starts_with("another fortisync resource (in another namespace) owns this group"),
        "{}",
        r.message
    );
    let said = format!("{r}{p}");
    assert!(!said.contains("team-b") && !said.contains("web"), "{said}");
    assert!(p.is_empty());
}

#[test]
fn an_exclusive_resource_refuses_a_hand_made_group_unless_it_takes_it_over() {
    let mut state = ObservedGroup {
        group: Some(group_of("vpn admins", &["admin-pc"])),
        addresses: vec![foreign_address("admin-pc", "10.9.9.9")],
    };
    let mut d = desired(&["10.0.0.1"]);
    d.membership = Membership::Exclusive;
    let p = plan(&d, &state, now());
    assert!(p.is_empty(), "{p}");
    let r = p.refusal().expect("refused");
    assert_eq!(r.reason, "GroupNotOwned");
    assert!(r.remedy.contains("spec.takeOver: true"), "{}", r.remedy);

    d.take_over = true;
    let p = plan(&d, &state, now());
    let lines: Vec<String> = p.ops().iter().map(ToString::to_string).collect();
    assert_eq!(
        lines,
        [
            "~ group allowed taken over (comment \"managed-by fortisync team-a/admins | vpn admins\")",
            "+ address fs_10.0.0.1 (10.0.0.1)",
            "+ member fs_10.0.0.1 -> group allowed",
            "- member admin-pc <- group allowed",
        ]
    );
    for op in p.ops() {
        apply(&mut state, op, true);
    }
    assert_eq!(sorted_members(&state), ["fs_10.0.0.1"]);
    assert!(plan(&d, &state, now()).is_empty(), "ours now: converged");
    // Taken over, the group has one owner: a second resource is refused.
    let second = DesiredGroup {
        owner: other_owner("team-a", "web"),
        ..desired(&["10.0.0.2"])
    };
    assert_eq!(
        plan(&second, &state, now()).refusal().map(|r| r.reason),
        Some("GroupOwnedByAnother")
    );
}

#[test]
fn additive_joins_a_hand_made_group_without_claiming_it_and_keeps_every_member() {
    let state = ObservedGroup {
        group: Some(group_of("", &["admin-pc"])),
        addresses: vec![foreign_address("admin-pc", "10.9.9.9")],
    };
    let p = plan(&desired(&["10.0.0.1"]), &state, now());
    assert_eq!(p.refusal(), None);
    let lines: Vec<String> = p.ops().iter().map(ToString::to_string).collect();
    assert_eq!(
        lines,
        [
            "+ address fs_10.0.0.1 (10.0.0.1)",
            "+ member fs_10.0.0.1 -> group allowed"
        ]
    );
    assert_eq!(p.foreign_members(), ["admin-pc"]);
}

#[test]
fn members_another_resource_owns_are_never_removed_even_by_an_exclusive_owner() {
    let mut d = desired(&["10.0.0.1"]);
    d.membership = Membership::Exclusive;
    let mut state = super::converge(&d, &ObservedGroup::default());
    state.addresses.push(ObservedAddress {
        name: "web_10.0.0.7".into(),
        address: MemberAddress::parse("10.0.0.7").ok(),
        comment: "managed-by fortisync team-b/web".into(),
    });
    state
        .addresses
        .push(foreign_address("admin-pc", "10.9.9.9"));
    let g = state.group.as_mut().expect("group");
    g.members.push("web_10.0.0.7".into());
    g.members.push("admin-pc".into());
    let p = plan(&d, &state, now());
    let lines: Vec<String> = p.ops().iter().map(ToString::to_string).collect();
    assert_eq!(lines, ["- member admin-pc <- group allowed"]);
    assert_eq!(p.foreign_members(), ["web_10.0.0.7"]);
    assert_eq!(
        p.counts(),
        Counts {
            desired: 1,
            present: 2,
            foreign: 1
        }
    );
}

fn many(n: usize) -> Vec<String> {
    (0..n)
        .map(|i| format!("10.{}.{}.1", i / 250, i % 250))
        .collect()
}

fn capped(addresses: &[String]) -> DesiredGroup {
    let refs: Vec<&str> = addresses.iter().map(String::as_str).collect();
    DesiredGroup {
        empty_group_allowed: false,
        limit: Some(GroupLimit {
            members: 600,
            firmware: Firmware::new(6, 4, 14),
        }),
        ..desired(&refs)
    }
}

#[test]
fn past_the_6_4_member_cap_nothing_is_written_and_the_counts_say_why() {
    let p = plan(&capped(&many(2000)), &ObservedGroup::default(), now());
    assert!(
        p.is_empty(),
        "not one address object: {} writes",
        p.writes()
    );
    let r = p.refusal().expect("refused");
    assert_eq!(r.reason, "LimitReached");
    assert_eq!(
        r.message,
        "address group allowed would hold 2000 members; FortiOS 6.4.14 allows at most 600 per group, so nothing was written"
    );
    assert_eq!(
        r.remedy,
        "split the members across several AddressGroups (each with its own spec.groupName, at most 600 members each), or upgrade the device to FortiOS 7.x"
    );
    assert_eq!(
        p.counts(),
        Counts {
            desired: 2000,
            present: 0,
            foreign: 0
        }
    );
    assert_eq!(
        plan(&capped(&many(600)), &ObservedGroup::default(), now()).refusal(),
        None,
        "exactly at the cap is allowed"
    );
}

#[test]
fn members_an_admin_keeps_in_an_additive_group_count_toward_the_cap() {
    let d = capped(&many(599));
    let mut state = super::converge(&d, &ObservedGroup::default());
    state
        .addresses
        .push(foreign_address("admin-pc", "10.9.9.9"));
    state
        .addresses
        .push(foreign_address("admin-nas", "10.9.9.8"));
    let g = state.group.as_mut().expect("group");
    g.members.push("admin-pc".into());
    g.members.push("admin-nas".into());
    let p = plan(&d, &state, now());
    let r = p.refusal().expect("601 members: refused");
    assert!(
        r.message.contains("would hold 601 members"),
        "{}",
        r.message
    );
    assert_eq!(
        p.counts(),
        Counts {
            desired: 599,
            present: 601,
            foreign: 2
        }
    );
    assert!(p.is_empty());
}

#[test]
fn members_expired_before_the_group_exists_write_nothing_and_say_so() {
    let mut d = desired(&["10.0.0.1", "10.0.0.2"]);
    for m in &mut d.members {
        m.expires_at = Some("2029-12-31T00:00:00Z".parse().expect("t"));
    }
    for empty_allowed in [true, false] {
        d.empty_group_allowed = empty_allowed;
        let p = plan(&d, &ObservedGroup::default(), now());
        assert!(p.is_empty(), "no empty group, no placeholder: {p}");
        assert_eq!(p.refusal(), None);
        assert_eq!(
            p.note(),
            Some("all 2 member(s) have expired; nothing to write")
        );
        assert_eq!(p.counts(), Counts::default());
        assert_eq!(p.next_expiry(), None);
    }
    // One member still live: the group is created with it alone.
    d.members[1].expires_at = Some("2030-06-01T00:00:00Z".parse().expect("t"));
    let lines: Vec<String> = plan(&d, &ObservedGroup::default(), now())
        .ops()
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(
        lines,
        [
            "+ address fs_10.0.0.2 (10.0.0.2)",
            "+ group allowed [fs_10.0.0.2]"
        ]
    );
    // IPv6 members only, all expired: no IPv4 group either; one still live: the IPv4 group.
    let mut v4 = desired(&[]);
    v4.other_family = vec![Some("2029-12-31T00:00:00Z".parse().expect("t"))];
    let p = plan(&v4, &ObservedGroup::default(), now());
    assert!(p.is_empty(), "{p}");
    assert_eq!(
        p.note(),
        Some("all 1 member(s) have expired; nothing to write")
    );
    v4.other_family.push(None);
    assert_eq!(
        plan(&v4, &ObservedGroup::default(), now()).ops()[0].to_string(),
        "+ group allowed []"
    );
    // A resource declaring no members at all still gets its (empty) group.
    let none = plan(&desired(&[]), &ObservedGroup::default(), now());
    assert_eq!(none.ops()[0].to_string(), "+ group allowed []");
}
