use std::collections::BTreeMap;

use super::super::slots::{Flavor, Half, Slot, UserSlots, loopback_only};
use super::*;

fn v4(text: &str) -> Slot {
    Slot {
        v4: Half::Net(text.parse().expect("net")),
        v6: Half::Unused,
    }
}

fn user(flavor: Flavor, slots: &[(u32, Slot)]) -> UserSlots {
    UserSlots {
        flavor,
        slots: slots.iter().copied().collect::<BTreeMap<_, _>>(),
    }
}

/// A FortiManager admin set up as seed 003 asks: slots 1-9 loopback, slot 10 unused.
fn seeded() -> UserSlots {
    let mut slots: Vec<(u32, Slot)> = (1..=9).map(|n| (n, v4("127.0.0.1/32"))).collect();
    slots.push((10, Slot::UNUSED));
    user(Flavor::FortiManager, &slots)
}

fn input(current: &UserSlots, desired: Option<Slot>) -> PlanInput<'_> {
    PlanInput {
        slot: 10,
        desired,
        current,
        written: None,
        take_over: false,
        own: Own::No,
        source: Some("127.0.0.1".parse().expect("ip")),
        claimed_by: None,
    }
}

#[test]
fn a_grant_into_an_unused_slot_writes_the_address() {
    let current = seeded();
    let p = plan(&input(&current, Some(v4("192.0.2.10/32")))).expect("plan");
    assert_eq!(p.write, Some(v4("192.0.2.10/32")));
    assert!(!p.drift);
}

#[test]
fn a_slot_already_holding_the_grant_is_left_alone() {
    let current = seeded().with(10, v4("192.0.2.10/32"));
    let p = plan(&input(&current, Some(v4("192.0.2.10/32")))).expect("plan");
    assert_eq!(p.write, None);
}

#[test]
fn closing_writes_the_devices_unused_value_never_allow_all() {
    let current = seeded().with(10, v4("192.0.2.10/32"));
    let mut i = input(&current, None);
    i.written = Some(v4("192.0.2.10/32"));
    assert_eq!(plan(&i).expect("plan").write, Some(Slot::UNUSED));
    let fg = user(Flavor::FortiGateAdmin, &[(10, v4("192.0.2.10/32"))]);
    let mut i = input(&fg, None);
    i.written = Some(v4("192.0.2.10/32"));
    assert_eq!(
        plan(&i).expect("plan").write,
        Some(loopback_only()),
        "unset everywhere would open the FortiGate admin to every source"
    );
}

#[test]
fn closing_an_unused_slot_writes_nothing() {
    let current = seeded();
    assert_eq!(plan(&input(&current, None)).expect("plan").write, None);
}

#[test]
fn another_resources_claim_refuses_first_naming_it() {
    let current = seeded();
    let mut i = input(&current, Some(v4("192.0.2.10/32")));
    i.claimed_by = Some("team-a/alice-vpn".into());
    let r = plan(&i).expect_err("refused");
    assert_eq!(r.reason(), "SlotClaimed");
    assert!(r.message("alice", 10).contains("team-a/alice-vpn"));
}

#[test]
fn an_allow_all_slot_elsewhere_masks_the_grant_and_is_named() {
    let current = seeded().with(3, v4("0.0.0.0/0")).with(
        5,
        Slot {
            v4: Half::Unused,
            v6: Half::Net("::/0".parse().expect("net")),
        },
    );
    let r = plan(&input(&current, Some(v4("192.0.2.10/32")))).expect_err("refused");
    assert_eq!(r, Refusal::Masked { slots: vec![3, 5] });
    assert_eq!(r.reason(), "SlotMasked");
    assert!(r.remedy().contains("127.0.0.1"));
}

#[test]
fn masking_does_not_stop_a_close() {
    let current = seeded()
        .with(3, v4("0.0.0.0/0"))
        .with(10, v4("192.0.2.10/32"));
    let mut i = input(&current, None);
    i.written = Some(v4("192.0.2.10/32"));
    assert_eq!(plan(&i).expect("plan").write, Some(Slot::UNUSED));
}

#[test]
fn a_value_fortisync_did_not_write_is_foreign_unless_taken_over() {
    let current = seeded().with(10, v4("198.51.100.7/32"));
    let mut i = input(&current, Some(v4("192.0.2.10/32")));
    i.written = Some(v4("192.0.2.10/32"));
    let r = plan(&i).expect_err("refused");
    assert_eq!(r.reason(), "SlotForeign");
    assert!(r.message("alice", 10).contains("198.51.100.7/32"));
    i.take_over = true;
    assert_eq!(plan(&i).expect("plan").write, Some(v4("192.0.2.10/32")));
}

#[test]
fn a_foreign_value_is_not_closed_either() {
    let current = seeded().with(10, v4("198.51.100.7/32"));
    let mut i = input(&current, None);
    i.written = Some(v4("192.0.2.10/32"));
    assert_eq!(plan(&i).expect_err("refused").reason(), "SlotForeign");
}

#[test]
fn the_value_fortisync_wrote_is_its_own_to_change() {
    let current = seeded().with(10, v4("192.0.2.10/32"));
    let mut i = input(&current, Some(v4("192.0.2.11/32")));
    i.written = Some(v4("192.0.2.10/32"));
    assert_eq!(plan(&i).expect("plan").write, Some(v4("192.0.2.11/32")));
}

#[test]
fn a_removed_grant_is_put_back_and_counted_as_drift() {
    let current = seeded();
    let mut i = input(&current, Some(v4("192.0.2.10/32")));
    i.written = Some(v4("192.0.2.10/32"));
    let p = plan(&i).expect("plan");
    assert_eq!(p.write, Some(v4("192.0.2.10/32")));
    assert!(p.drift);
}

#[test]
fn the_controllers_own_user_is_never_left_without_its_source() {
    // Only slot 10 lets the controller (127.0.0.1) in: moving it elsewhere locks it out.
    let current = user(
        Flavor::FortiManager,
        &[(1, v4("10.9.9.9/32")), (10, v4("127.0.0.1/32"))],
    );
    let mut i = input(&current, Some(v4("192.0.2.10/32")));
    i.written = Some(v4("127.0.0.1/32"));
    i.own = Own::Yes;
    let r = plan(&i).expect_err("refused");
    assert_eq!(r.reason(), "WouldLockOutController");
    assert!(r.message("api", 10).contains("127.0.0.1"));
    // With the controller's address in another slot, the same change is fine.
    let kept = current.with(2, v4("127.0.0.0/8"));
    let mut i = input(&kept, Some(v4("192.0.2.10/32")));
    i.written = Some(v4("127.0.0.1/32"));
    i.own = Own::Yes;
    assert!(plan(&i).is_ok());
}

#[test]
fn an_unknown_source_refuses_changes_to_a_user_that_may_be_the_controllers() {
    let current = seeded();
    let mut i = input(&current, Some(v4("192.0.2.10/32")));
    i.own = Own::Yes;
    i.source = None;
    assert_eq!(
        plan(&i).expect_err("refused").reason(),
        "SourceAddressUnknown"
    );
    i.own = Own::IfTrustedNow;
    assert_eq!(
        plan(&i).expect_err("refused").reason(),
        "SourceAddressUnknown"
    );
}

#[test]
fn a_token_user_that_does_not_let_the_controller_in_now_cannot_be_the_controllers() {
    // A FortiGate admin with nothing set lets everyone in; opening slot 10 restricts it to
    // 192.0.2.10, which would exclude 127.0.0.1.
    let open = user(Flavor::FortiGateAdmin, &[]);
    let mut i = input(&open, Some(v4("192.0.2.10/32")));
    i.own = Own::IfTrustedNow;
    assert_eq!(
        plan(&i).expect_err("refused").reason(),
        "WouldLockOutController"
    );
    // An API user with an empty table may let everyone in (UNCONFIRMED), so it may be the
    // token's: a first entry that leaves 127.0.0.1 out is refused.
    let empty = user(Flavor::FortiGateApiUser, &[]);
    let mut i = input(&empty, Some(v4("192.0.2.10/32")));
    i.own = Own::IfTrustedNow;
    assert_eq!(
        plan(&i).expect_err("refused").reason(),
        "WouldLockOutController"
    );
    // An API user that only trusts 10.0.0.0/8 is not the one calling from 127.0.0.1.
    let other = user(Flavor::FortiGateApiUser, &[(1, v4("10.0.0.0/8"))]);
    let mut i = input(&other, Some(v4("192.0.2.10/32")));
    i.own = Own::IfTrustedNow;
    assert!(plan(&i).is_ok());
}

/// Values a slot half can hold in the properties: unused, loopback, the grant's pool, a
/// network, allow-all.
const V4_POOL: [&str; 5] = [
    "127.0.0.1/32",
    "192.0.2.10/32",
    "192.0.2.11/32",
    "10.0.0.0/8",
    "0.0.0.0/0",
];
const V6_POOL: [&str; 3] = ["::1/128", "2001:db8::/64", "::/0"];
/// Sources the properties probe.
const PROBES: [&str; 7] = [
    "127.0.0.1",
    "192.0.2.10",
    "192.0.2.11",
    "10.1.2.3",
    "198.51.100.9",
    "::1",
    "2001:db8::5",
];

fn half(pool: &[&str], pick: Option<usize>) -> Half {
    pick.map_or(Half::Unused, |i| {
        Half::Net(pool[i % pool.len()].parse().expect("net"))
    })
}

type SlotPicks = Vec<(u32, Option<usize>, Option<usize>)>;

/// Flavor, the slots, the grant (None: closed), what fortisync wrote, takeOver.
type Scenario = (
    u8,
    SlotPicks,
    Option<(Option<usize>, Option<usize>)>,
    Option<usize>,
    bool,
);

fn scenario() -> impl proptest::strategy::Strategy<Value = Scenario> {
    use proptest::prelude::*;
    (
        0u8..3,
        prop::collection::vec(
            (
                1u32..=10,
                prop::option::of(0usize..5),
                prop::option::of(0usize..3),
            ),
            0..6,
        ),
        prop::option::of((prop::option::of(1usize..4), prop::option::of(0usize..2))),
        prop::option::of(0usize..5),
        any::<bool>(),
    )
}

fn flavor(n: u8) -> Flavor {
    [
        Flavor::FortiManager,
        Flavor::FortiGateAdmin,
        Flavor::FortiGateApiUser,
    ][n as usize % 3]
}

proptest::proptest! {
    #![proptest_config(proptest::test_runner::Config::with_cases(500))]

    /// Whatever the slots hold, a planned write never puts an allow-all value in the slot, and a
    /// close never lets in a remote source the user did not let in before (the loopback-only
    /// close of a FortiGate lets the device's own loopback in, which no remote peer can be).
    #[test]
    fn writes_never_allow_all_and_closes_never_widen(
        (f, picks, grant, written, take_over) in scenario()
    ) {
        let flavor = flavor(f);
        let mut current = user(flavor, &[]);
        for (n, v4, v6) in picks {
            let mut s = Slot { v4: half(&V4_POOL, v4), v6: half(&V6_POOL, v6) };
            if flavor == Flavor::FortiGateApiUser && s.v4 != Half::Unused {
                s.v6 = Half::Unused; // an api-user entry holds one family
            }
            current = current.with(n, s);
        }
        let desired = grant.map(|(v4, v6)| Slot { v4: half(&V4_POOL, v4), v6: half(&V6_POOL, v6) });
        let mut i = input(&current, desired);
        i.written = written.map(|w| Slot { v4: half(&V4_POOL, Some(w)), v6: Half::Unused });
        i.take_over = take_over;
        if let Ok(Plan { write: Some(value), .. }) = plan(&i) {
            proptest::prop_assert!(!value.v4.is_allow_all() && !value.v6.is_allow_all(), "{value:?}");
            if desired.is_none() {
                let after = current.with(10, value);
                for probe in PROBES {
                    let ip: std::net::IpAddr = probe.parse().expect("ip");
                    proptest::prop_assert!(
                        !after.trusts(ip) || current.trusts(ip) || ip.is_loopback(),
                        "closing let {probe} in: {current:?} -> {after:?}"
                    );
                }
            }
        }
    }
}
