//! One observation for a batch of AddressGroups on one FortiGate (`batch`): what
//! `fortigate::observe` would read for each, in a few reads for all (every fortisync-marked
//! address object, the groups by name, the holders of wanted names), indexed once, then each
//! group planned exactly as alone.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use serde_json::Value;

use super::batch::{Answer, Request};
use super::converge::{Convergence, FamilyPlan};
use super::fortigate::{Family, read_strangers};
use super::observed;
use super::plan::{self, DesiredGroup, ObservedGroup};
use crate::device::DeviceError;
use crate::device::fortios::FortiOsClient;
use crate::reconcile::error::ReconcileError;

/// Names OR-ed into one `name==` filter at most (as `fortigate::observe` does).
const NAME_LOOKUPS: usize = 40;

/// What every fortisync marker contains (`model::Owner::marker`): one `comment=@` read with
/// it lists every resource's objects at once. No trailing space: how a device trims a filter
/// value is not on the facts pages, and a wider match only costs bytes (owners are checked).
const ANY_MARKER: &str = "managed-by fortisync";

/// Fields of a group the planner reads.
const GROUP_FIELDS: [&str; 3] = ["name", "member", "comment"];

/// Several groups: one observation per family, then each planned as alone.
pub(super) async fn plan_many(client: &FortiOsClient, requests: &[Request]) -> Vec<Answer> {
    let mut plans: Vec<Result<Vec<FamilyPlan>, ReconcileError>> =
        requests.iter().map(|_| Ok(Vec::new())).collect();
    for family in [Family::V4, Family::V6] {
        let wanted: Vec<(usize, &DesiredGroup)> = requests
            .iter()
            .enumerate()
            .filter_map(|(i, r)| {
                r.families
                    .iter()
                    .find(|(f, _)| *f == family)
                    .map(|(_, d)| (i, d))
            })
            .collect();
        if wanted.is_empty() {
            continue;
        }
        let desired: Vec<&DesiredGroup> = wanted.iter().map(|(_, d)| *d).collect();
        match observe_many(client, family, &desired).await {
            Ok(observed) => {
                for ((i, d), mut observed) in wanted.into_iter().zip(observed) {
                    let Ok(family_plans) = &mut plans[i] else {
                        continue;
                    };
                    // Exclusive members not read yet: read per group, as alone (converged,
                    // there are none).
                    let group = observed.group.clone();
                    match read_strangers(client, family, d, group.as_ref(), &mut observed.addresses)
                        .await
                    {
                        Ok(()) => family_plans.push(FamilyPlan {
                            family,
                            plan: plan::plan(d, &observed, requests[i].now),
                        }),
                        Err(e) => plans[i] = Err(e.into()),
                    }
                }
            }
            Err(e) => {
                for (i, _) in wanted {
                    plans[i] = Err(e.clone().into());
                }
            }
        }
    }
    plans
        .into_iter()
        .map(|plans| {
            Ok(Convergence {
                plans: plans?,
                ..Convergence::default()
            })
        })
        .collect()
}

/// What `fortigate::observe` would read for each of `desired` (but for Exclusive strangers):
/// the objects carrying any of their markers, the groups by name, and the holders of wanted
/// names not ours, each up to `NAME_LOOKUPS` resources or names per read.
async fn observe_many(
    client: &FortiOsClient,
    family: Family,
    desired: &[&DesiredGroup],
) -> Result<Vec<ObservedGroup>, DeviceError> {
    let table = family.address_table();
    let fields = &observed::ADDRESS_FIELDS;
    let markers: Vec<String> = desired.iter().map(|d| d.owner.marker()).collect();
    let names: Vec<&str> = desired.iter().map(|d| d.group_name.as_str()).collect();
    let (marked, groups) = futures::try_join!(
        marked_by(client, table, &markers, fields),
        by_names(client, family.group_table(), &names, &GROUP_FIELDS),
    )?;
    let groups: BTreeMap<String, Value> = groups
        .into_iter()
        .filter_map(|g| Some((g["name"].as_str()?.to_string(), g)))
        .collect();
    // Indexed once by the marker they carry, so each group reads only its own (a batch of
    // 1,000 groups must not parse every object 1,000 times).
    let mut by_marker: HashMap<String, Vec<Value>> = HashMap::new();
    for object in marked {
        let comment = object["comment"].as_str().unwrap_or_default();
        // `Owner::owns`: the marker alone, or the marker then ` |`.
        let marker = comment.split_once(" |").map_or(comment, |(m, _)| m);
        by_marker
            .entry(marker.to_string())
            .or_default()
            .push(object);
    }
    // Ours, per group, exactly as alone: the prefix, then the exact owner.
    let mut out: Vec<ObservedGroup> = desired
        .iter()
        .zip(&markers)
        .map(|(d, marker)| ObservedGroup {
            group: groups.get(&d.group_name).map(observed::group),
            addresses: observed::addresses(
                by_marker
                    .get(marker.as_str())
                    .map_or(&[][..], Vec::as_slice),
                &d.prefix,
                family,
            )
            .into_iter()
            .filter(|a| d.owner.owns(&a.comment))
            .collect(),
        })
        .collect();
    // Wanted names that are not ours yet: whoever holds them (a foreign holder is a conflict).
    let missing: Vec<BTreeSet<String>> = desired
        .iter()
        .zip(&out)
        .map(|(d, o)| {
            d.members
                .iter()
                .map(|m| m.address.object_name(&d.prefix))
                .filter(|n| o.addresses.iter().all(|a| &a.name != n))
                .collect()
        })
        .collect();
    let all: BTreeSet<&str> = missing.iter().flatten().map(String::as_str).collect();
    if !all.is_empty() {
        let all: Vec<&str> = all.into_iter().collect();
        let holders = by_names(client, table, &all, fields).await?;
        let holders: HashMap<&str, &Value> = holders
            .iter()
            .filter_map(|h| Some((h["name"].as_str()?, h)))
            .collect();
        for ((d, o), missing) in desired.iter().zip(&mut out).zip(&missing) {
            let held: Vec<Value> = missing
                .iter()
                .filter_map(|n| holders.get(n.as_str()).map(|h| (*h).clone()))
                .collect();
            o.addresses
                .extend(observed::addresses(&held, &d.prefix, family));
        }
    }
    Ok(out)
}

/// Whether `value` can sit in an OR-ed FortiOS filter (`,` separates its terms, `&` ends it).
fn filterable(value: &str) -> bool {
    !value.contains([',', '&'])
}

/// Objects of `table` whose comment contains one of `markers` (`=@` is "contains": the
/// caller checks the exact owner), `NAME_LOOKUPS` markers per read; more than one read's
/// worth: one read of every fortisync-marked object instead (the device answers one call,
/// whatever the number of resources; the caller keeps its owners').
async fn marked_by(
    client: &FortiOsClient,
    table: &str,
    markers: &[String],
    fields: &[&str],
) -> Result<Vec<Value>, DeviceError> {
    if markers.len() > NAME_LOOKUPS {
        let filter = format!("comment=@{ANY_MARKER}");
        return client.list_where(table, Some(&filter), fields).await;
    }
    let reads = markers.chunks(NAME_LOOKUPS).map(|chunk| {
        let filter: Vec<String> = chunk.iter().map(|m| format!("comment=@{m}")).collect();
        let filter = filter.join(",");
        async move { client.list_where(table, Some(&filter), fields).await }
    });
    Ok(futures::future::try_join_all(reads)
        .await?
        .into_iter()
        .flatten()
        .collect())
}

/// Objects of `table` named in `names`, `NAME_LOOKUPS` names per read (one by one for a name
/// an OR-ed filter cannot carry); more names than one read carries: the whole table in one
/// read, kept to the names asked for.
async fn by_names(
    client: &FortiOsClient,
    table: &str,
    names: &[&str],
    fields: &[&str],
) -> Result<Vec<Value>, DeviceError> {
    let asked: BTreeSet<&str> = names.iter().copied().collect();
    if names.len() > NAME_LOOKUPS {
        let all = client.list_where(table, None, fields).await?;
        return Ok(all
            .into_iter()
            .filter(|o| o["name"].as_str().is_some_and(|n| asked.contains(n)))
            .collect());
    }
    let (plain, odd): (Vec<&str>, Vec<&str>) = names.iter().partition(|n| filterable(n));
    let reads = plain.chunks(NAME_LOOKUPS).map(|chunk| {
        let filter: Vec<String> = chunk.iter().map(|n| format!("name=={n}")).collect();
        let filter = filter.join(",");
        async move { client.list_where(table, Some(&filter), fields).await }
    });
    let singles = odd.iter().map(|n| async move {
        Ok::<_, DeviceError>(client.get(table, n).await?.into_iter().collect::<Vec<_>>())
    });
    let (mut found, singles) = futures::try_join!(
        futures::future::try_join_all(reads),
        futures::future::try_join_all(singles)
    )?;
    found.extend(singles);
    // The filter matches by name; keep exactly the names asked for.
    Ok(found
        .into_iter()
        .flatten()
        .filter(|o| o["name"].as_str().is_some_and(|n| asked.contains(n)))
        .collect())
}
