//! One batch of ExternalConnector passes on a FortiGate (`batch`): observe every connector's
//! resource with one read, read the lists the plans need, plan each exactly as alone, then
//! write: the objects, every push in as few `dynamic` calls as the device takes, the feed
//! refreshes, and read back what changed. A connector that fails at any step fails alone; the
//! others go on.
//!
//! Reads a connector costs: its share of the table read, then its `entry-list` (the endpoint
//! takes exactly one `mkey`, facts §4 and the 6.4.14 spec: a list cannot be read for several
//! feeds at once). A converged resync reads the list once; a Push edit does not read it before
//! the push (one snapshot makes the device hold the declared list whatever it held) and reads
//! it once after; a Feed connector reads it before (is the device behind?) and after a write.

use std::collections::BTreeSet;

use futures::future::join_all;

use super::batch::{Answer, Applied, Pass, Request};
use super::fortigate::{self, EntryList};
use super::plan::{self, ConnectorPlan, ObjectWrite, PUSH_FIRMWARE};
use crate::api::externalconnector::ConnectorMode;
use crate::device::DeviceError;
use crate::device::fortios::FortiOsClient;
use crate::model::Firmware;

/// A Push edit of a list up to this many entries is one snapshot, without reading the list
/// first (the snapshot carries every entry: for a longer list, add/remove after a read is the
/// smaller request).
pub const UNSEEN_SNAPSHOT_MAX: usize = 1_000;

/// Entries one `dynamic` call carries at most, summed over its lists; one list's commands are
/// never split (a list longer than this goes alone, as it always did). How large a body the
/// device takes is not on the facts pages (UNCONFIRMED): this keeps a combined call within the
/// size of the pushes fortisync already sends for one big list.
pub const PUSH_CALL_ENTRIES: usize = 20_000;

/// One connector while the batch runs.
struct Going {
    planned: ConnectorPlan,
    before: Option<EntryList>,
    push_failed: Option<DeviceError>,
    refreshed: bool,
}

enum Slot {
    Done(Answer),
    Going(Box<Going>),
}

impl Slot {
    fn going(&mut self) -> Option<&mut Going> {
        match self {
            Slot::Going(g) => Some(g),
            Slot::Done(_) => None,
        }
    }
}

/// Whether `r`'s plan needs the device's list before it writes.
fn reads_list_first(r: &Request, firmware: Firmware) -> bool {
    match r.desired.mode {
        ConnectorMode::Feed => true,
        // Refused on this firmware: nothing to compare.
        ConnectorMode::Push if firmware < PUSH_FIRMWARE => false,
        ConnectorMode::Push => r.unchanged_spec || r.entries.len() > UNSEEN_SNAPSHOT_MAX,
    }
}

/// Observes, plans and applies `requests` (distinct resource names, one FortiGate VDOM).
pub async fn converge(
    client: &FortiOsClient,
    firmware: Firmware,
    requests: &[Request],
) -> Vec<Answer> {
    let names: Vec<&str> = requests.iter().map(|r| r.desired.name.as_str()).collect();
    let objects = match fortigate::objects(client, &names).await {
        Ok(o) => o,
        Err(e) => return requests.iter().map(|_| Err(e.clone())).collect(),
    };
    let before = join_all(requests.iter().zip(&objects).map(|(r, o)| async move {
        if o.is_some() && reads_list_first(r, firmware) {
            fortigate::entry_list(client, &r.desired.name)
                .await
                .map(Some)
        } else {
            Ok(None)
        }
    }))
    .await;
    let mut slots: Vec<Slot> = requests
        .iter()
        .zip(&objects)
        .zip(before)
        .map(|((r, object), before)| plan_one(r, firmware, object.as_ref(), before))
        .collect();

    // The objects first: a push needs the push-mode object.
    let writes = join_all(slots.iter().zip(requests).map(|(s, r)| async move {
        match s {
            Slot::Going(g) if g.planned.object != ObjectWrite::None => {
                Some(fortigate::write_object(client, &r.desired.name, &g.planned.object).await)
            }
            _ => None,
        }
    }))
    .await;
    for (slot, written) in slots.iter_mut().zip(writes) {
        if let Some(Err(e)) = written {
            *slot = Slot::Done(Err(e));
        }
    }

    push_all(client, requests, &mut slots).await;

    // A feed the device does not hold yet is pulled now, not at the next refresh-rate.
    let refreshes = join_all(slots.iter().zip(requests).map(|(s, r)| async move {
        match s {
            Slot::Going(g)
                if r.desired.mode == ConnectorMode::Feed
                    && (g.before.as_ref().is_none_or(|l| l.entries != r.entries)
                        || g.planned.writes() > 0) =>
            {
                Some(fortigate::refresh(client, &r.desired.name).await)
            }
            _ => None,
        }
    }))
    .await;
    for (slot, refreshed) in slots.iter_mut().zip(refreshes) {
        match refreshed {
            Some(Err(e)) => *slot = Slot::Done(Err(e)),
            Some(Ok(())) => {
                if let Some(g) = slot.going() {
                    g.refreshed = true;
                }
            }
            None => {}
        }
    }

    // The list read first still holds when nothing was sent (a converged resync costs no
    // second read); after a write, a push or a refresh, or when it was not read, it is read.
    let lists = join_all(slots.iter().zip(requests).map(|(s, r)| async move {
        match s {
            Slot::Going(g) => Some(match &g.before {
                Some(list)
                    if g.planned.writes() == 0 && g.push_failed.is_none() && !g.refreshed =>
                {
                    Ok(list.clone())
                }
                _ => fortigate::entry_list(client, &r.desired.name).await,
            }),
            Slot::Done(_) => None,
        }
    }))
    .await;
    slots
        .into_iter()
        .zip(lists)
        .map(|(slot, list)| match (slot, list) {
            (Slot::Done(answer), _) => answer,
            (Slot::Going(g), Some(list)) => list.map(|device| {
                Pass::Applied(Box::new(Applied {
                    planned: g.planned,
                    push_failed: g.push_failed,
                    refreshed: g.refreshed,
                    device,
                }))
            }),
            (Slot::Going(_), None) => unreachable!("a list is read for every connector going on"),
        })
        .collect()
}

/// One connector's plan from the batch's observation, exactly as alone.
fn plan_one(
    r: &Request,
    firmware: Firmware,
    object: Option<&serde_json::Value>,
    before: Result<Option<EntryList>, DeviceError>,
) -> Slot {
    let before = match before {
        Ok(b) => b,
        Err(e) => return Slot::Done(Err(e)),
    };
    let d = &r.desired;
    let planned = match (&before, object) {
        (None, Some(_)) => plan::plan_unseen(d, firmware, object, r.take_over, &r.entries),
        _ => {
            let held: BTreeSet<String> = before
                .as_ref()
                .map(|l| l.entries.clone())
                .unwrap_or_default();
            plan::plan(
                d,
                firmware,
                object,
                r.take_over,
                &r.entries,
                &held,
                r.unchanged_spec,
            )
        }
    };
    match planned {
        Ok(planned) => Slot::Going(Box::new(Going {
            planned,
            before,
            push_failed: None,
            refreshed: false,
        })),
        Err(refusal) => Slot::Done(Ok(Pass::Refused(refusal))),
    }
}

/// Every push of the batch, as few `dynamic` calls as `PUSH_CALL_ENTRIES` allows. A call that
/// fails only for its lists (F19) and carried several is sent again list by list, so the list
/// that fails fails alone; a failure of the connection fails every list the call carried.
async fn push_all(client: &FortiOsClient, requests: &[Request], slots: &mut [Slot]) {
    let mut calls: Vec<Vec<usize>> = Vec::new();
    let mut size = 0;
    for (i, slot) in slots.iter_mut().enumerate() {
        let Some(g) = slot.going() else { continue };
        if g.planned.push.is_empty() {
            continue;
        }
        let n = g.planned.push.entry_count();
        match calls.last_mut() {
            Some(call) if size + n <= PUSH_CALL_ENTRIES => call.push(i),
            _ => {
                calls.push(vec![i]);
                size = 0;
            }
        }
        size += n;
    }
    for call in calls {
        let lists = |ids: &[usize], slots: &[Slot]| -> Vec<(String, plan::PushCommands)> {
            ids.iter()
                .filter_map(|&i| match &slots[i] {
                    Slot::Going(g) => {
                        Some((requests[i].desired.name.clone(), g.planned.push.clone()))
                    }
                    Slot::Done(_) => None,
                })
                .collect()
        };
        let send = move |lists: Vec<(String, plan::PushCommands)>| async move {
            let refs: Vec<(&str, &plan::PushCommands)> =
                lists.iter().map(|(n, c)| (n.as_str(), c)).collect();
            fortigate::push_many(client, &refs).await
        };
        match send(lists(&call, slots)).await {
            Ok(()) => {}
            Err(e) if call.len() > 1 && fortigate::push_failure_is_local(&e) => {
                tracing::warn!(device = %client.device(), lists = call.len(), error = %e, "a combined dynamic push failed; sending each list alone");
                for &i in &call {
                    let result = send(lists(&[i], slots)).await;
                    failed(client, &requests[i], &mut slots[i], result);
                }
            }
            Err(e) => {
                for &i in &call {
                    failed(client, &requests[i], &mut slots[i], Err(e.clone()));
                }
            }
        }
    }
}

/// Records a push's result for one connector: a failure of its list only is a warning (F19),
/// any other fails its pass.
fn failed(client: &FortiOsClient, r: &Request, slot: &mut Slot, result: Result<(), DeviceError>) {
    let Err(e) = result else { return };
    if fortigate::push_failure_is_local(&e) {
        tracing::warn!(device = %client.device(), resource = %r.desired.name, error = %e, "dynamic push failed; retrying within 30 s");
        if let Some(g) = slot.going() {
            g.push_failed = Some(e);
        }
    } else {
        *slot = Slot::Done(Err(e));
    }
}
