//! One AddressGroup against its target, without Kubernetes: desired state from the spec →
//! observe → pure plan → (optionally) apply. The controller and `fortisync plan/apply` both
//! run exactly this, so what `plan` prints is what the controller does.

use futures::StreamExt;
use futures::future::BoxFuture;

use super::adom::{self as adom, batch};
use super::fortigate::{self, Family};
use super::install::{self, DevicePlan};
use super::plan::{self, DesiredGroup, DesiredMember, GroupLimit, Op, Plan, Refusal};
use crate::api::addressgroup::{AddressGroup, AddressGroupSpec, DeletionPolicy};
use crate::api::fortimanager::{FortiManagerSpec, InstallPolicy};
use crate::api::validate::{any_address_member, same_addresses};
use crate::device::fortimanager::FortiManagerClient;
use crate::device::fortios::FortiOsClient;
use crate::model::{Firmware, MemberAddress, Owner};
use crate::reconcile::error::ReconcileError;
use crate::reconcile::target::workspace::in_workspace;
use crate::reconcile::target::{Target, proxy};

/// The plan for one address family (`addrgrp` or `addrgrp6`).
#[derive(Debug, Clone, PartialEq)]
pub struct FamilyPlan {
    /// IPv4 or IPv6.
    pub family: Family,
    /// What it takes.
    pub plan: Plan,
}

/// What one pass found and did.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Convergence {
    /// The plans for the FortiGate VDOM or the FortiManager ADOM, per family.
    pub plans: Vec<FamilyPlan>,
    /// With `install: Proxy`, each FortiGate behind the FortiManager.
    pub devices: Vec<DevicePlan>,
    /// Why the spec itself was refused before anything was read (duplicate members).
    pub spec_refusal: Option<Refusal>,
}

impl Convergence {
    /// Writes the target (and devices) needed.
    pub fn writes(&self) -> usize {
        self.plans.iter().map(|p| p.plan.writes()).sum::<usize>()
            + self.devices.iter().map(|d| d.plan.writes()).sum::<usize>()
    }

    /// Whether nothing needed changing.
    pub fn is_converged(&self) -> bool {
        self.writes() == 0
    }

    /// Why nothing was written, when the spec or a family's plan was refused.
    pub fn refusal(&self) -> Option<&Refusal> {
        self.spec_refusal
            .as_ref()
            .or_else(|| self.plans.iter().find_map(|p| p.plan.refusal()))
    }
}

/// Hears each device write as it is made: the device name and the op (logs, progress lines).
pub type WriteObserver<'a> = &'a mut (dyn FnMut(&str, &Op) + Send);

/// What the spec declares, per family: IPv4 always (the group itself is IPv4), IPv6 only when
/// the spec has IPv6 members, so a converged IPv4 group costs two reads per resync.
/// `firmware` decides whether a group may be empty and how many members it may hold.
pub fn desired(
    namespace: &str,
    name: &str,
    spec: &AddressGroupSpec,
    firmware: Firmware,
) -> Result<Vec<(Family, DesiredGroup)>, ReconcileError> {
    let base = DesiredGroup {
        owner: Owner {
            namespace: namespace.to_string(),
            name: name.to_string(),
        },
        group_name: spec.group_name.clone(),
        prefix: spec.address_prefix.clone(),
        members: Vec::new(),
        membership: spec.membership,
        empty_group_allowed: firmware.empty_group_allowed(),
        take_over: spec.take_over,
        limit: firmware
            .group_member_limit()
            .map(|members| GroupLimit { members, firmware }),
        other_family: Vec::new(),
    };
    // Admission refuses this, but an object stored before the rule existed (or written past
    // it) must not open the group to every address either: nothing is planned.
    if let Some(i) = any_address_member(spec) {
        return Err(ReconcileError::Spec(format!(
            "spec.members[{i}].address ({:?}) admits every address; set spec.allowAnyAddress: true if that is intended",
            spec.members[i].address
        )));
    }
    let (mut v4, mut v6) = (base.clone(), base);
    for (i, m) in spec.members.iter().enumerate() {
        let address = MemberAddress::parse(&m.address)
            .map_err(|e| ReconcileError::Spec(format!("spec.members[{i}].address: {e}")))?;
        let member = DesiredMember {
            address,
            comment: m.comment.clone(),
            expires_at: m.expires_at.as_ref().map(|t| t.0),
        };
        if address.is_v6() {
            v6.members.push(member)
        } else {
            v4.members.push(member)
        }
    }
    v4.other_family = v6.members.iter().map(|m| m.expires_at).collect();
    let mut out = vec![(Family::V4, v4)];
    if !v6.members.is_empty() {
        out.push((Family::V6, v6));
    }
    Ok(out)
}

pub(super) fn desired_for(
    group: &AddressGroup,
    target: &Target,
) -> Result<Vec<(Family, DesiredGroup)>, ReconcileError> {
    desired(
        &kube::ResourceExt::namespace(group).unwrap_or_default(),
        &kube::ResourceExt::name_any(group),
        &group.spec,
        target.firmware(),
    )
}

/// The refusal of a spec that declares one address twice in two spellings (`192.0.2.60` and
/// `192.0.2.60/32`): both would be one device object, so nothing is written (pure).
pub fn duplicate_refusal(spec: &AddressGroupSpec) -> Option<Refusal> {
    let (first, second, canonical) = same_addresses(spec).into_iter().next()?;
    Some(Refusal {
        reason: "DuplicateMember",
        message: format!(
            "spec.members[{first}].address ({:?}) and spec.members[{second}].address ({:?}) are the same address, {canonical}; nothing was written",
            spec.members[first].address, spec.members[second].address
        ),
        remedy: format!(
            "remove spec.members[{second}] (or spec.members[{first}]) from the resource"
        ),
    })
}

/// Observes and plans; with `write`, applies the plan (and, through a FortiManager with
/// `install: Proxy`, converges every target FortiGate).
pub fn converge<'a>(
    target: &'a Target,
    group: &'a AddressGroup,
    now: jiff::Timestamp,
    write: bool,
    on_write: WriteObserver<'a>,
) -> BoxFuture<'a, Result<Convergence, ReconcileError>> {
    // Boxed as Send here, where every lifetime is concrete: kube-runtime's bounds are
    // higher-ranked and rustc cannot prove them through the nested futures otherwise.
    Box::pin(async move {
        if let Some(refusal) = duplicate_refusal(&group.spec) {
            return Ok(Convergence {
                spec_refusal: Some(refusal),
                ..Convergence::default()
            });
        }
        let families = desired_for(group, target)?;
        run(target, &families, Pass::Converge(now), write, on_write).await
    })
}

/// Plans (and with `write` applies) what deleting the resource does, per its deletion policy.
pub fn remove<'a>(
    target: &'a Target,
    group: &'a AddressGroup,
    write: bool,
    on_write: WriteObserver<'a>,
) -> BoxFuture<'a, Result<Convergence, ReconcileError>> {
    Box::pin(async move {
        if group.spec.deletion_policy == DeletionPolicy::Orphan {
            return Ok(Convergence::default());
        }
        let families = desired_for(group, target)?;
        run(target, &families, Pass::Delete, write, on_write).await
    })
}

#[derive(Clone, Copy)]
pub(super) enum Pass {
    Converge(jiff::Timestamp),
    Delete,
}

impl Pass {
    fn plan(self, d: &DesiredGroup, observed: &plan::ObservedGroup) -> Plan {
        match self {
            Pass::Converge(now) => plan::plan(d, observed, now),
            Pass::Delete => plan::plan_deletion(d, observed, DeletionPolicy::Delete),
        }
    }
}

pub(super) async fn run(
    target: &Target,
    families: &[(Family, DesiredGroup)],
    pass: Pass,
    write: bool,
    on_write: WriteObserver<'_>,
) -> Result<Convergence, ReconcileError> {
    let mut out = Convergence::default();
    match target {
        Target::FortiGate { client, .. } => {
            // Every family is planned before any is written: a refusal in one (IPv6 past the
            // cap, say) leaves the other unwritten too.
            for (family, d) in families {
                let observed = fortigate::observe(client, *family, d).await?;
                out.plans.push(FamilyPlan {
                    family: *family,
                    plan: pass.plan(d, &observed),
                });
            }
            if write && out.refusal().is_none() {
                for p in &out.plans {
                    apply_fortigate(client, p.family, p.plan.ops(), on_write).await?;
                }
            }
        }
        Target::FortiManager { client, spec, .. } => {
            out.plans = observe_adom(client, families, pass).await?;
            if out.refusal().is_some() {
                // Nothing of a refused group is written, in the ADOM or on its devices.
                return Ok(out);
            }
            if write && out.plans.iter().any(|p| !p.plan.is_empty()) {
                let plans = &out.plans;
                in_workspace(client, spec, || write_adom(client, plans, on_write)).await?;
            }
            out.devices = install_devices(client, spec, families, pass, write, on_write).await?;
        }
    }
    Ok(out)
}

/// Observes the ADOM and plans each family (nothing written).
pub(super) async fn observe_adom(
    client: &FortiManagerClient,
    families: &[(Family, DesiredGroup)],
    pass: Pass,
) -> Result<Vec<FamilyPlan>, ReconcileError> {
    let mut plans = Vec::new();
    for (family, d) in families {
        let observed = adom::observe(client, *family, d).await?;
        plans.push(FamilyPlan {
            family: *family,
            plan: pass.plan(d, &observed),
        });
    }
    Ok(plans)
}

/// Writes `plans` to the ADOM; the caller holds the workspace (`in_workspace`).
pub(super) async fn write_adom(
    client: &FortiManagerClient,
    plans: &[FamilyPlan],
    on_write: WriteObserver<'_>,
) -> Result<(), ReconcileError> {
    for p in plans {
        for w in batch(p.plan.ops()) {
            for op in ops_of(&w, p.plan.ops()) {
                on_write(client.device(), op);
            }
            adom::apply(client, p.family, &w).await?;
        }
    }
    Ok(())
}

/// With `install: Proxy`, plans (and with `write` converges) every target FortiGate.
pub(super) async fn install_devices(
    client: &FortiManagerClient,
    spec: &FortiManagerSpec,
    families: &[(Family, DesiredGroup)],
    pass: Pass,
    write: bool,
    on_write: WriteObserver<'_>,
) -> Result<Vec<DevicePlan>, ReconcileError> {
    let mut out = Vec::new();
    if spec.install != InstallPolicy::Proxy {
        return Ok(out);
    }
    let targets = proxy::targets(spec);
    for (family, d) in families {
        let (now, deleting) = match pass {
            Pass::Converge(now) => (now, false),
            Pass::Delete => (jiff::Timestamp::UNIX_EPOCH, true),
        };
        let mut devices =
            install::plan_devices(client, &targets, *family, d, deleting, now).await?;
        if write {
            install::apply_devices(client, *family, &mut devices, on_write).await?;
        }
        out.extend(devices);
    }
    Ok(out)
}

/// Applies a plan to a FortiGate. Address object writes (creates, rewrites, deletes) do not
/// depend on each other and go out concurrently up to the device's request limit; group
/// changes stay in order between them, so referential integrity holds at every step.
pub(super) async fn apply_fortigate(
    client: &FortiOsClient,
    family: Family,
    ops: &[Op],
    on_write: WriteObserver<'_>,
) -> Result<(), ReconcileError> {
    let independent = |op: &Op| {
        matches!(
            op,
            Op::CreateAddress { .. } | Op::UpdateAddress { .. } | Op::DeleteAddress { .. }
        )
    };
    let mut rest = ops;
    while let Some(first) = rest.first() {
        let run = if independent(first) {
            rest.iter().take_while(|op| independent(op)).count()
        } else {
            1
        };
        let (now, later) = rest.split_at(run);
        for op in now {
            on_write(client.device(), op);
        }
        let limit = client.guard().max_concurrent().max(1);
        // Collected first: a mapping closure held across the await is higher-ranked and makes
        // the future not Send "generally enough" for kube-runtime.
        let writes: Vec<_> = now
            .iter()
            .map(|op| fortigate::apply(client, family, op))
            .collect();
        let mut results = futures::stream::iter(writes).buffer_unordered(limit);
        while let Some(result) = results.next().await {
            result?;
        }
        rest = later;
    }
    Ok(())
}

/// The ops a batched write stands for (for progress and logs).
fn ops_of<'a>(w: &adom::Write<'a>, ops: &'a [Op]) -> Vec<&'a Op> {
    match w {
        adom::Write::One(op) => vec![*op],
        adom::Write::AddAddresses(creates) => creates.clone(),
        adom::Write::AddMembers { group, members } => ops
            .iter()
            .filter(|o| matches!(o, Op::AddMember { group: g, member } if g == group && members.contains(member)))
            .collect(),
        adom::Write::RemoveMembers { group, members } => ops
            .iter()
            .filter(|o| matches!(o, Op::RemoveMember { group: g, member } if g == group && members.contains(member)))
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::addressgroup::{Member, TargetKind, TargetRef};

    fn spec(members: &[&str]) -> AddressGroupSpec {
        serde_json::from_value(serde_json::json!({
            "targetRef": {"kind": "FortiGate", "name": "fw"},
            "groupName": "g",
            "members": members.iter().map(|m| serde_json::json!({"address": m})).collect::<Vec<_>>(),
        }))
        .expect("spec")
    }

    #[test]
    fn an_allow_everything_member_is_refused_without_the_opt_in() {
        let v7 = Firmware::new(7, 4, 3);
        let refused = spec(&["192.0.2.1", "::/0"]);
        match desired("ns", "n", &refused, v7) {
            Err(ReconcileError::Spec(message)) => assert_eq!(
                message,
                "spec.members[1].address (\"::/0\") admits every address; set spec.allowAnyAddress: true if that is intended"
            ),
            other => panic!("planned: {other:?}"),
        }
        let opted_in = AddressGroupSpec {
            allow_any_address: true,
            ..refused
        };
        let planned = desired("ns", "n", &opted_in, v7).expect("desired");
        assert_eq!(planned.len(), 2);
    }

    #[test]
    fn ipv6_is_planned_only_when_the_spec_has_ipv6_members() {
        let v7 = Firmware::new(7, 4, 3);
        let v4 = desired("ns", "n", &spec(&["192.0.2.1"]), v7).expect("desired");
        assert_eq!(v4.len(), 1);
        assert_eq!(v4[0].0, Family::V4);
        let both = desired("ns", "n", &spec(&["192.0.2.1", "2001:db8::1"]), v7).expect("d");
        assert_eq!(both.len(), 2);
        assert_eq!(both[1].1.members.len(), 1);
        assert_eq!(both[1].1.prefix, "fs_");
    }

    #[test]
    fn a_member_admission_should_have_refused_names_its_index() {
        let mut s = spec(&["192.0.2.1"]);
        s.members.push(Member {
            address: "not-an-ip".into(),
            expires_at: None,
            comment: None,
        });
        s.target_ref = TargetRef {
            kind: TargetKind::FortiGate,
            name: "fw".into(),
        };
        let err = desired("ns", "n", &s, Firmware::new(7, 4, 3)).expect_err("bad member");
        assert!(err.to_string().contains("spec.members[1].address"), "{err}");
    }

    #[test]
    fn one_address_written_two_ways_is_refused_naming_both_indices_and_the_canonical_form() {
        let r = duplicate_refusal(&spec(&["192.0.2.1", "192.0.2.60", "192.0.2.60/32"]))
            .expect("refused");
        assert_eq!(r.reason, "DuplicateMember");
        assert_eq!(
            r.message,
            "spec.members[1].address (\"192.0.2.60\") and spec.members[2].address (\"192.0.2.60/32\") are the same address, 192.0.2.60; nothing was written"
        );
        let r = duplicate_refusal(&spec(&["2001:db8::5", "2001:DB8:0:0::5"])).expect("v6");
        assert!(
            r.message.contains("are the same address, 2001:db8::5"),
            "{}",
            r.message
        );
        assert_eq!(
            duplicate_refusal(&spec(&["192.0.2.60", "192.0.2.61"])),
            None
        );
    }
}

#[cfg(test)]
mod send_tests {
    use super::*;

    fn assert_send<T: Send>(_: T) {}

    /// The controller runs reconciles on a multi-threaded runtime: these futures must be Send.
    #[allow(dead_code)]
    fn futures_are_send(t: &Target, g: &AddressGroup, c: &FortiOsClient) {
        let mut observer = |_: &str, _: &Op| {};
        assert_send(apply_fortigate(c, Family::V4, &[], &mut observer));
        assert_send(converge(t, g, jiff::Timestamp::now(), true, &mut observer));
    }
}
