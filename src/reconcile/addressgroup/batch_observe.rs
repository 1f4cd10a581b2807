//! One observation for a batch of AddressGroups on one FortiGate (`batch`): what
//! `fortigate::observe` would read for each, in two reads for all (from empty as converged):
//! the address table once, for every fortisync-marked object of the batch and the holders of
//! the names its changed groups want, beside the group table once; indexed once, then each
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
        let changed: Vec<bool> = wanted.iter().map(|(i, _)| requests[*i].changed).collect();
        match observe_many(client, family, &desired, &changed).await {
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
/// names not ours. The markers and the wanted names of the groups that `changed` (a new or
/// edited spec: its names are likely not ours yet) go in one read of the address table
/// (`addresses_of`), beside the read of the groups; only names that read did not cover and
/// that are not ours (drift of a converged group) cost another.
async fn observe_many(
    client: &FortiOsClient,
    family: Family,
    desired: &[&DesiredGroup],
    changed: &[bool],
) -> Result<Vec<ObservedGroup>, DeviceError> {
    let table = family.address_table();
    let fields = &observed::ADDRESS_FIELDS;
    let markers: Vec<String> = desired.iter().map(|d| d.owner.marker()).collect();
    let names: Vec<&str> = desired.iter().map(|d| d.group_name.as_str()).collect();
    let wanted: BTreeSet<String> = desired
        .iter()
        .zip(changed)
        .filter(|(_, changed)| **changed)
        .flat_map(|(d, _)| d.members.iter().map(|m| m.address.object_name(&d.prefix)))
        .collect();
    let (read, groups) = futures::try_join!(
        addresses_of(client, table, &markers, &wanted, fields),
        by_names(client, family.group_table(), &names, &GROUP_FIELDS),
    )?;
    let groups: BTreeMap<String, Value> = groups
        .into_iter()
        .filter_map(|g| Some((g["name"].as_str()?.to_string(), g)))
        .collect();
    // Indexed once by the marker they carry, so each group reads only its own (a batch of
    // 1,000 groups must not parse every object 1,000 times), and by name for the holders.
    let mut by_marker: HashMap<&str, Vec<&Value>> = HashMap::new();
    let mut by_name: HashMap<&str, &Value> = HashMap::new();
    for object in &read.objects {
        let comment = object["comment"].as_str().unwrap_or_default();
        // `Owner::owns`: the marker alone, or the marker then ` |`.
        let marker = comment.split_once(" |").map_or(comment, |(m, _)| m);
        by_marker.entry(marker).or_default().push(object);
        if let Some(name) = object["name"].as_str() {
            by_name.insert(name, object);
        }
    }
    // Ours, per group, exactly as alone: the prefix, then the exact owner.
    let mut out: Vec<ObservedGroup> = desired
        .iter()
        .zip(&markers)
        .map(|(d, marker)| {
            let marked: Vec<Value> = by_marker
                .get(marker.as_str())
                .map_or(Vec::new(), |objects| {
                    objects.iter().map(|o| (*o).clone()).collect()
                });
            ObservedGroup {
                group: groups.get(&d.group_name).map(observed::group),
                addresses: observed::addresses(&marked, &d.prefix, family)
                    .into_iter()
                    .filter(|a| d.owner.owns(&a.comment))
                    .collect(),
            }
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
    let unread: Vec<&str> = missing
        .iter()
        .flatten()
        .map(String::as_str)
        .filter(|n| !read.covers(n))
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let more = if unread.is_empty() {
        Vec::new()
    } else {
        by_names(client, table, &unread, fields).await?
    };
    for object in &more {
        if let Some(name) = object["name"].as_str() {
            by_name.insert(name, object);
        }
    }
    for ((d, o), missing) in desired.iter().zip(&mut out).zip(&missing) {
        let held: Vec<Value> = missing
            .iter()
            .filter_map(|n| by_name.get(n.as_str()).map(|h| (*h).clone()))
            .collect();
        o.addresses
            .extend(observed::addresses(&held, &d.prefix, family));
    }
    Ok(out)
}

/// One read of an address table: the objects, and which names it holds every holder of.
struct AddressRead {
    objects: Vec<Value>,
    /// None: the whole table was read.
    names: Option<BTreeSet<String>>,
}

impl AddressRead {
    /// Whether whoever holds `name` is in `objects` (if anyone does).
    fn covers(&self, name: &str) -> bool {
        self.names.as_ref().is_none_or(|n| n.contains(name))
    }
}

/// Objects of `table` whose comment contains one of `markers` (`=@` is "contains": the
/// caller checks the exact owner), and those named in `names`, in one read: comma is OR
/// inside one filter, whatever the fields it names (facts page §5), so the read carries what
/// a read of the markers and one of the names would. Each kind goes by name up to
/// `NAME_LOOKUPS`, as those two reads did; past that, the markers become every
/// fortisync-marked object (the caller keeps its owners'), and the names the whole table
/// (one read, whatever the number of groups). Names a filter cannot carry are read apart.
async fn addresses_of(
    client: &FortiOsClient,
    table: &str,
    markers: &[String],
    names: &BTreeSet<String>,
    fields: &[&str],
) -> Result<AddressRead, DeviceError> {
    if names.len() > NAME_LOOKUPS {
        return Ok(AddressRead {
            objects: client.list_where(table, None, fields).await?,
            names: None,
        });
    }
    let (plain, odd): (Vec<&str>, Vec<&str>) = names
        .iter()
        .map(String::as_str)
        .partition(|n| filterable(n));
    let mut terms: Vec<String> = if markers.len() > NAME_LOOKUPS {
        vec![format!("comment=@{ANY_MARKER}")]
    } else {
        markers.iter().map(|m| format!("comment=@{m}")).collect()
    };
    terms.extend(plain.iter().map(|n| format!("name=={n}")));
    let filter = terms.join(",");
    let (mut objects, singles) = futures::try_join!(
        client.list_where(table, Some(&filter), fields),
        by_names(client, table, &odd, fields),
    )?;
    objects.extend(singles);
    Ok(AddressRead {
        objects,
        names: Some(names.clone()),
    })
}

/// Whether `value` can sit in an OR-ed FortiOS filter (`,` separates its terms, `&` ends it).
fn filterable(value: &str) -> bool {
    !value.contains([',', '&'])
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
    // One name (a lone group's): a GET of it, as `fortigate::observe` reads a group.
    let (plain, odd): (Vec<&str>, Vec<&str>) = if names.len() == 1 {
        (Vec::new(), names.to_vec())
    } else {
        names.iter().partition(|n| filterable(n))
    };
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
