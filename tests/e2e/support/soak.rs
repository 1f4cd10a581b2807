//! The fault soak's estate (tests/e2e/soak.rs): three simulated targets (a FortiGate 7.4, a
//! FortiGate 6.4, a FortiManager whose ADOM manages a 7.4 and a 6.4), the resources' names,
//! addresses and manifests, and the hand-made objects seeded on the devices.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, Ipv4Addr};

use fortisync::sim::fortimanager::{AdminUser, RpcPermit, Table as AdomTable};
use fortisync::sim::fortios::{
    Admin, ApiUser, FeedSettings, FortiGateScenario, GlobalSettings, Table,
};
use fortisync::sim::{Scenario, Simulator};
use serde_json::{Value, json};

use crate::addressgroup_fortimanager::estate::Estate;

/// What fortisync writes into the comment of every object it owns.
pub const MARKER: &str = "managed-by fortisync";
/// `admin-lockout-duration` of the 7.4 FortiGate (the lockout fault's window).
pub const LOCKOUT_SECS: u64 = 3;

/// One of the three targets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Dev {
    Fg74,
    Fg64,
    Fmg,
}

impl Dev {
    pub const ALL: [Dev; 3] = [Dev::Fg74, Dev::Fg64, Dev::Fmg];

    /// The connection resource's (and the simulated device's) name.
    pub fn name(self) -> &'static str {
        match self {
            Dev::Fg74 => "fg74",
            Dev::Fg64 => "fg64",
            Dev::Fmg => "fmg",
        }
    }

    pub fn target_kind(self) -> &'static str {
        match self {
            Dev::Fmg => "FortiManager",
            _ => "FortiGate",
        }
    }

    /// `spec.sourceAddress` of its connection: one per target, so a lockout or a failed
    /// login at one source is the controller's doing at that target only.
    pub fn source(self) -> IpAddr {
        IpAddr::V4(Ipv4Addr::new(127, 0, 0, 31 + self as u8))
    }

    /// The FortiGate API key at credential version `version`.
    pub fn key(self, version: usize) -> String {
        format!("soak-{}-key-v{version}-0000000000", self.name())
    }
}

/// The three resource kinds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Kind {
    AddressGroup,
    ExternalConnector,
    TrustedHost,
}

impl Kind {
    pub const ALL: [Kind; 3] = [
        Kind::AddressGroup,
        Kind::ExternalConnector,
        Kind::TrustedHost,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Kind::AddressGroup => "AddressGroup",
            Kind::ExternalConnector => "ExternalConnector",
            Kind::TrustedHost => "TrustedHost",
        }
    }
}

/// One declared address (member, entry or trusted host) and when it stops being desired.
#[derive(Debug, Clone, PartialEq)]
pub struct Item {
    pub address: String,
    pub expires: Option<jiff::Timestamp>,
}

/// One resource slot: kind, target, index. Each (re)creation is a new generation with its own
/// names (and, for an AddressGroup, its own addresses), so an object still being deleted never
/// shares a name with its successor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Slot {
    pub kind: Kind,
    pub dev: Dev,
    pub index: usize,
}

impl Slot {
    /// The Kubernetes name of generation `g`.
    pub fn resource(self, g: usize) -> String {
        let prefix = match self.kind {
            Kind::AddressGroup => "ag",
            Kind::ExternalConnector => "ec",
            Kind::TrustedHost => "th",
        };
        format!("{prefix}-{}-{}-{g}", self.dev.name(), self.index)
    }

    /// The device object's name of generation `g` (group or external resource).
    pub fn object(self, g: usize) -> String {
        match self.kind {
            Kind::AddressGroup => format!("sk-{}-{}-{g}", self.dev.name(), self.index),
            _ => format!("sk-feed-{}-{}-{g}", self.dev.name(), self.index),
        }
    }

    /// The administrator a TrustedHost slot manages (one per index).
    pub fn user(self) -> String {
        match self.dev {
            Dev::Fmg => format!("th{}", self.index),
            _ => format!("ops{}", self.index),
        }
    }

    /// The trusted-host slot of generation `g`: 3-10 in turn (1 and 2 hold hand-made values).
    pub fn th_slot(g: usize) -> usize {
        3 + g % 8
    }

    /// Address `k` (0-7) of generation `g`'s pool.
    pub fn address(self, g: usize, k: usize) -> String {
        let d = self.dev as usize;
        match self.kind {
            // Disjoint per generation: fs_<address> objects are never shared by two owners.
            Kind::AddressGroup => {
                format!("10.{}.{}.{}", 10 + d, self.index, (g % 30) * 8 + k + 1)
            }
            Kind::ExternalConnector => format!("198.18.{}.{}", d * 16 + self.index, k + 1),
            Kind::TrustedHost => format!("100.64.{d}.{}", self.index * 10 + k + 1),
        }
    }

    /// The manifest of generation `g` declaring `items`.
    pub fn manifest(self, g: usize, items: &[Item]) -> Value {
        let entry = |i: &Item| {
            let mut v = json!({"address": i.address});
            if let Some(at) = i.expires {
                v["expiresAt"] = json!(at.to_string());
            }
            v
        };
        let target = json!({"kind": self.dev.target_kind(), "name": self.dev.name()});
        let spec = match self.kind {
            Kind::AddressGroup => json!({
                "targetRef": target,
                "groupName": self.object(g),
                "members": items.iter().map(entry).collect::<Vec<_>>(),
            }),
            Kind::ExternalConnector => {
                let mut spec = json!({
                    "targetRef": target,
                    "resourceName": self.object(g),
                    "mode": if self.dev == Dev::Fg64 { "Feed" } else { "Push" },
                    "feed": {"refreshRate": 1},
                    "entries": items.iter().map(entry).collect::<Vec<_>>(),
                });
                if self.dev == Dev::Fmg {
                    // fw-b runs 6.4, which has no push API: the ADOM's list goes to fw-a.
                    spec["deviceTargets"] = json!([{"name": "fw-a"}]);
                }
                spec
            }
            Kind::TrustedHost => {
                let item = &items[0];
                let mut spec = json!({
                    "targetRef": target,
                    "user": self.user(),
                    "slot": Self::th_slot(g),
                    "address": item.address,
                });
                if let Some(at) = item.expires {
                    spec["expiresAt"] = json!(at.to_string());
                }
                spec
            }
        };
        json!({
            "apiVersion": "fortisync.dev/v1alpha1",
            "kind": self.kind.name(),
            "metadata": {"name": self.resource(g)},
            "spec": spec,
        })
    }
}

pub fn is_own(o: &Value) -> bool {
    ["comment", "comments"]
        .iter()
        .any(|f| o[f].as_str().is_some_and(|c| c.contains(MARKER)))
}

/// Names of the objects carrying fortisync's marker.
pub fn own_names(objects: &[Value]) -> BTreeSet<String> {
    objects
        .iter()
        .filter(|o| is_own(o))
        .filter_map(|o| o["name"].as_str().map(str::to_string))
        .collect()
}

/// The estate: `fg74` (7.4.3, lockout after 3 failures for [`LOCKOUT_SECS`]), `fg64`
/// (6.4.14, feeds pulled every 300 ms), and the FortiManager `fmg` managing `fw-a` (7.4.3)
/// and `fw-b` (6.4.14); `n` administrators per target for the TrustedHosts.
pub async fn start(n: usize) -> Simulator {
    let mut scenario: Scenario = Estate::default().scenario();
    let fmg = &mut scenario.fortimanagers[0];
    // The controller sends from 127.0.0.33.
    fmg.admins[0].trusthosts = vec![[Ipv4Addr::new(127, 0, 0, 0), Ipv4Addr::new(255, 0, 0, 0)]];
    for i in 0..n {
        fmg.admins.push(AdminUser {
            userid: format!("th{i}"),
            password: Some(format!("th{i}-pw")),
            rpc_permit: RpcPermit::ReadWrite,
            profile: "Standard_User".into(),
            // Slots 1 and 2 set by hand: never touched. IPv6 slot 1 set too: left at its
            // default (::/0) it would let every source in and mask the others (F20).
            trusthosts: vec![
                [Ipv4Addr::new(10, 1, 1, 0), Ipv4Addr::new(255, 255, 255, 0)],
                [Ipv4Addr::new(10, 2, 2, 0), Ipv4Addr::new(255, 255, 255, 0)],
            ],
            trusthosts6: vec!["::1/128".parse().expect("net")],
            ..AdminUser::default()
        });
    }
    let standalone = |dev: Dev, version: &str| FortiGateScenario {
        name: dev.name().into(),
        version: version.parse().expect("FortiOS version"),
        global: GlobalSettings {
            admin_lockout_threshold: 3,
            admin_lockout_duration: LOCKOUT_SECS,
            ..GlobalSettings::default()
        },
        api_users: vec![ApiUser {
            name: "fortisync".into(),
            key: Some(dev.key(0)),
            accprofile: "super_admin".into(),
            vdoms: Vec::new(),
            trusthosts: vec!["127.0.0.0/8".parse().expect("net")],
            trusthost_ids: Vec::new(),
        }],
        admins: (0..n)
            .map(|i| Admin {
                name: format!("ops{i}"),
                password: format!("ops{i}-pw"),
                accprofile: "super_admin".into(),
                vdoms: Vec::new(),
                trusthosts: vec![
                    "10.1.1.0/24".parse().expect("net"),
                    "10.2.2.0/24".parse().expect("net"),
                ],
                ip6_trusthosts: Vec::new(),
            })
            .collect(),
        feeds: FeedSettings {
            minute_ms: 300,
            ..FeedSettings::default()
        },
        ..FortiGateScenario::default()
    };
    scenario.fortigates.push(standalone(Dev::Fg74, "7.4.3"));
    scenario.fortigates.push(standalone(Dev::Fg64, "6.4.14"));
    let sim = Simulator::start(scenario).await.expect("simulator");
    seed_foreign(&sim);
    sim
}

/// Hand-made objects without the marker on every device, one named like fortisync's own.
fn seed_foreign(sim: &Simulator) {
    for fw in ["fg74", "fg64", "fw-a", "fw-b"] {
        let fg = sim.fortigate(fw);
        for (name, subnet) in [
            ("hand-a", "192.168.10.1 255.255.255.255"),
            ("hand-b", "192.168.11.0 255.255.255.0"),
            ("fs_10.250.0.1", "10.250.0.1 255.255.255.255"),
        ] {
            fg.put_object(
                "root",
                Table::Address,
                json!({"name": name, "subnet": subnet}),
            )
            .expect("a hand-made address");
        }
        fg.put_object(
            "root",
            Table::Addrgrp,
            json!({"name": "hand-grp", "member": [{"name": "hand-a"}, {"name": "fs_10.250.0.1"}]}),
        )
        .expect("a hand-made group");
        fg.put_object(
            "root",
            Table::ExternalResource,
            json!({"name": "hand-feed", "type": "address", "status": "disable", "resource": "http://127.0.0.1:9/list"}),
        )
        .expect("a hand-made external resource");
    }
    let control = sim.fortimanager("fmg").control();
    control
        .put_object(
            "root",
            AdomTable::Address,
            json!({"name": "hand-adom", "subnet": ["192.168.20.1", "255.255.255.255"]}),
        )
        .expect("a hand-made ADOM address");
    control
        .put_object(
            "root",
            AdomTable::Addrgrp,
            json!({"name": "hand-adom-grp", "member": ["hand-adom"]}),
        )
        .expect("a hand-made ADOM group");
}

/// Everything fortisync does not own, as the devices hold it now: objects without the marker
/// and every trusted-host slot no TrustedHost of the soak may use.
pub fn foreign(sim: &Simulator, n: usize) -> BTreeMap<String, Value> {
    let mut out = BTreeMap::new();
    let tables = [
        (Table::Address, "address"),
        (Table::Addrgrp, "addrgrp"),
        (Table::ExternalResource, "external-resource"),
    ];
    for fw in ["fg74", "fg64", "fw-a", "fw-b"] {
        let fg = sim.fortigate(fw);
        for (table, label) in tables {
            for o in fg.objects("root", table).into_iter().filter(|o| !is_own(o)) {
                out.insert(format!("{fw}/{label}/{}", o["name"]), o);
            }
        }
        let snapshot = fg.snapshot();
        for admin in &snapshot.admins {
            let mine = admin.name.strip_prefix("ops").is_some_and(|i| {
                i.parse::<usize>().is_ok_and(|i| i < n) && ["fg74", "fg64"].contains(&fw)
            });
            let kept: Vec<String> = admin
                .trusthosts
                .iter()
                .enumerate()
                .filter(|(s, _)| !mine || *s < 2)
                .map(|(_, t)| t.to_string())
                .collect();
            out.insert(format!("{fw}/admin/{}", admin.name), json!(kept));
        }
        for user in &snapshot.api_users {
            out.insert(
                format!("{fw}/api-user/{}", user.name),
                json!(
                    user.trusthosts
                        .iter()
                        .map(|t| t.to_string())
                        .collect::<Vec<_>>()
                ),
            );
        }
    }
    let control = sim.fortimanager("fmg").control();
    for (table, label) in [
        (AdomTable::Address, "address"),
        (AdomTable::Addrgrp, "addrgrp"),
        (AdomTable::ExternalResource, "external-resource"),
    ] {
        for o in control
            .objects("root", table)
            .into_iter()
            .filter(|o| !is_own(o))
        {
            out.insert(format!("fmg/{label}/{}", o["name"]), o);
        }
    }
    for user in std::iter::once("fortisync".to_string()).chain((0..n).map(|i| format!("th{i}"))) {
        let admin = control.admin(&user).expect("admin");
        let slots = admin.trusthost_slots();
        let kept = if user == "fortisync" {
            &slots[..]
        } else {
            &slots[..2]
        };
        let kept6 = admin.trusthost6_slots();
        out.insert(
            format!("fmg/admin/{user}"),
            json!(format!("{kept:?} {kept6:?}")),
        );
    }
    out
}
