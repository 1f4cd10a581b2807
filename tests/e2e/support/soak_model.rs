//! The fault soak's desired state (tests/e2e/soak.rs): what the churn declared, and every
//! difference between it and what the devices and the API server hold.

use std::collections::{BTreeMap, BTreeSet};
use std::net::Ipv4Addr;

use fortisync::sim::Simulator;
use fortisync::sim::fortimanager::Table as AdomTable;
use fortisync::sim::fortios::{FortiGateHandle, Table};

use super::estate::{Dev, Item, Kind, Slot, own_names};

/// What the churn has declared: per slot, the live generation and its items (None: deleted).
#[derive(Debug, Default)]
pub struct Model {
    pub generation: BTreeMap<Slot, usize>,
    pub live: BTreeMap<Slot, Vec<Item>>,
}

impl Model {
    /// The items a slot still desires once every expiry has passed.
    fn lasting(&self, slot: Slot) -> Option<Vec<String>> {
        let items = self.live.get(&slot)?;
        let mut v: Vec<String> = items
            .iter()
            .filter(|i| i.expires.is_none())
            .map(|i| i.address.clone())
            .collect();
        v.sort();
        Some(v)
    }

    fn live_of(&self, kind: Kind, dev: Dev) -> impl Iterator<Item = (Slot, usize)> + '_ {
        self.live
            .keys()
            .filter(move |s| s.kind == kind && s.dev == dev)
            .map(|s| (*s, self.generation[s]))
    }

    /// The Kubernetes names that must exist, per kind.
    pub fn resources(&self, kind: Kind) -> BTreeSet<String> {
        self.live
            .keys()
            .filter(|s| s.kind == kind)
            .map(|s| s.resource(self.generation[s]))
            .collect()
    }

    /// Every difference between the declared state and the devices (empty: converged).
    pub fn differences(&self, sim: &Simulator, n: usize) -> Vec<String> {
        let mut out = Vec::new();
        for dev in [Dev::Fg74, Dev::Fg64] {
            let fg = sim.fortigate(dev.name());
            self.fortigate_groups(dev, fg, dev.name(), &mut out);
            self.fortigate_feeds(dev, fg, dev.name(), &mut out);
            self.fortigate_slots(dev, fg, n, &mut out);
        }
        self.adom(sim, &mut out);
        for fw in ["fw-a", "fw-b"] {
            self.fortigate_groups(Dev::Fmg, sim.fortigate(fw), fw, &mut out);
        }
        self.fortigate_feeds(Dev::Fmg, sim.fortigate("fw-a"), "fw-a", &mut out);
        let fw_b_feeds = own_names(
            &sim.fortigate("fw-b")
                .objects("root", Table::ExternalResource),
        );
        if !fw_b_feeds.is_empty() {
            out.push(format!(
                "fw-b: external resources {fw_b_feeds:?} (none targeted)"
            ));
        }
        let control = sim.fortimanager("fmg").control();
        for index in 0..n {
            let slot = Slot {
                kind: Kind::TrustedHost,
                dev: Dev::Fmg,
                index,
            };
            let slots = control
                .admin(&slot.user())
                .expect("the FortiManager admin")
                .trusthost_slots();
            for (s, want) in self.th_expected(slot) {
                let got = slots[s - 1];
                let want = match want {
                    Some(a) => [a.parse().expect("ip"), Ipv4Addr::BROADCAST],
                    None => [Ipv4Addr::BROADCAST; 2],
                };
                if got != want {
                    out.push(format!(
                        "fmg: {} slot {s} holds {got:?}, want {want:?}",
                        slot.user()
                    ));
                }
            }
        }
        out
    }

    /// Per trusted-host slot of `slot`'s user that any generation used: the address it must
    /// hold (None: closed).
    fn th_expected(&self, slot: Slot) -> BTreeMap<usize, Option<String>> {
        let last = self.generation.get(&slot).copied().unwrap_or(0);
        let mut want: BTreeMap<usize, Option<String>> =
            (0..=last).map(|g| (Slot::th_slot(g), None)).collect();
        if let Some(items) = self.lasting(slot)
            && let Some(a) = items.first()
        {
            want.insert(Slot::th_slot(last), Some(a.clone()));
        }
        want
    }

    fn fortigate_groups(&self, dev: Dev, fg: &FortiGateHandle, label: &str, out: &mut Vec<String>) {
        let mut groups = BTreeSet::new();
        let mut addresses = BTreeSet::new();
        for (slot, g) in self.live_of(Kind::AddressGroup, dev) {
            let want: Vec<String> = self
                .lasting(slot)
                .unwrap_or_default()
                .iter()
                .map(|a| format!("fs_{a}"))
                .collect();
            let mut held = fg
                .group_members("root", Table::Addrgrp, &slot.object(g))
                .unwrap_or_default();
            held.sort();
            if held != want {
                out.push(format!(
                    "{label}: {} holds {held:?}, want {want:?}",
                    slot.object(g)
                ));
            }
            groups.insert(slot.object(g));
            addresses.extend(want);
        }
        let own = own_names(&fg.objects("root", Table::Addrgrp));
        if own != groups {
            out.push(format!("{label}: own groups {own:?}, want {groups:?}"));
        }
        let own = own_names(&fg.objects("root", Table::Address));
        if own != addresses {
            out.push(format!(
                "{label}: own addresses {own:?}, want {addresses:?}"
            ));
        }
    }

    fn fortigate_feeds(&self, dev: Dev, fg: &FortiGateHandle, label: &str, out: &mut Vec<String>) {
        let mut feeds = BTreeSet::new();
        for (slot, g) in self.live_of(Kind::ExternalConnector, dev) {
            let want = self.lasting(slot).unwrap_or_default();
            let mut held = fg.feed_entries("root", &slot.object(g));
            held.sort();
            if held != want {
                out.push(format!(
                    "{label}: {} holds {held:?}, want {want:?}",
                    slot.object(g)
                ));
            }
            feeds.insert(slot.object(g));
        }
        let own = own_names(&fg.objects("root", Table::ExternalResource));
        if own != feeds {
            out.push(format!(
                "{label}: own external resources {own:?}, want {feeds:?}"
            ));
        }
    }

    fn fortigate_slots(&self, dev: Dev, fg: &FortiGateHandle, n: usize, out: &mut Vec<String>) {
        let admins = fg.snapshot().admins;
        for index in 0..n {
            let slot = Slot {
                kind: Kind::TrustedHost,
                dev,
                index,
            };
            let admin = admins
                .iter()
                .find(|a| a.name == slot.user())
                .expect("the admin");
            for (s, want) in self.th_expected(slot) {
                let got = admin
                    .trusthosts
                    .get(s - 1)
                    .filter(|net| net.prefix_len() != 0)
                    .map(|net| net.to_string());
                let want = want.map(|a| format!("{a}/32"));
                if got != want {
                    out.push(format!(
                        "{}: {} trusthost{s} holds {got:?}, want {want:?}",
                        dev.name(),
                        slot.user()
                    ));
                }
            }
        }
    }

    fn adom(&self, sim: &Simulator, out: &mut Vec<String>) {
        let control = sim.fortimanager("fmg").control();
        let mut groups = BTreeSet::new();
        let mut addresses = BTreeSet::new();
        for (slot, g) in self.live_of(Kind::AddressGroup, Dev::Fmg) {
            let want: Vec<String> = self
                .lasting(slot)
                .unwrap_or_default()
                .iter()
                .map(|a| format!("fs_{a}"))
                .collect();
            let mut held: Vec<String> = control
                .object("root", AdomTable::Addrgrp, &slot.object(g))
                .and_then(|o| o["member"].as_array().cloned())
                .unwrap_or_default()
                .iter()
                .filter_map(|m| m.as_str().map(str::to_string))
                .collect();
            held.sort();
            if held != want {
                out.push(format!(
                    "ADOM: {} holds {held:?}, want {want:?}",
                    slot.object(g)
                ));
            }
            groups.insert(slot.object(g));
            addresses.extend(want);
        }
        let own = own_names(&control.objects("root", AdomTable::Addrgrp));
        if own != groups {
            out.push(format!("ADOM: own groups {own:?}, want {groups:?}"));
        }
        let own = own_names(&control.objects("root", AdomTable::Address));
        if own != addresses {
            out.push(format!("ADOM: own addresses {own:?}, want {addresses:?}"));
        }
        let feeds: BTreeSet<String> = self
            .live_of(Kind::ExternalConnector, Dev::Fmg)
            .map(|(slot, g)| slot.object(g))
            .collect();
        let own = own_names(&control.objects("root", AdomTable::ExternalResource));
        if own != feeds {
            out.push(format!(
                "ADOM: own external resources {own:?}, want {feeds:?}"
            ));
        }
        if let Some(holder) = control.lock_holder("root") {
            out.push(format!("ADOM: still locked by {holder:?}"));
        }
    }
}
