//! An ExternalConnector on a FortiGate: reading the external resource and what the device says
//! of its list (`entry-list`), and the writes a plan needs (the object, the dynamic push, a
//! refresh so a feed is pulled at once instead of at the next `refresh-rate`).

use std::collections::BTreeSet;

use reqwest::Method;
use serde_json::{Value, json};

use super::plan::{ConnectorPlan, ObjectWrite, PushCommands};
use crate::api::externalconnector::DeviceListStatus;
use crate::device::DeviceError;
use crate::device::fortios::FortiOsClient;

/// The CMDB table of external resources.
pub const TABLE: &str = "system/external-resource";
const MONITOR: &str = "/api/v2/monitor/system/external-resource";

/// What the device reports of one list.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct EntryList {
    /// The status fields, for `status.device`.
    pub status: DeviceListStatus,
    /// The entries it holds that it counts valid.
    pub entries: BTreeSet<String>,
    /// The entries it counts invalid.
    pub invalid: u32,
}

/// The resource object (None: absent) and, when it exists, its list.
pub async fn observe(
    client: &FortiOsClient,
    name: &str,
) -> Result<(Option<Value>, Option<EntryList>), DeviceError> {
    let object = client.get(TABLE, name).await?;
    let list = match object {
        Some(_) => Some(entry_list(client, name).await?),
        None => None,
    };
    Ok((object, list))
}

/// `entry-list` of `name`, read strictly: a field of the wrong type is an unexpected answer.
pub async fn entry_list(client: &FortiOsClient, name: &str) -> Result<EntryList, DeviceError> {
    let path = format!("{MONITOR}/entry-list");
    let answer = client
        .request(Method::GET, &path, &[("mkey", name)], None)
        .await?;
    Ok(read_entry_list(&answer["results"]))
}

/// The list fields of an `entry-list` answer (pure).
pub fn read_entry_list(results: &Value) -> EntryList {
    let text = |k: &str| results[k].as_str().map(str::to_string);
    let mut list = EntryList {
        status: DeviceListStatus {
            status: text("status").unwrap_or_else(|| "unavailable".into()),
            error: text("error").filter(|e| !e.is_empty()),
            http_status_code: results["http_status_code"]
                .as_u64()
                .and_then(|c| u16::try_from(c).ok())
                .filter(|c| *c != 0),
            last_success: results["last_conn_success_time"]
                .as_str()
                .map(str::to_string)
                .or_else(|| {
                    results["last_conn_success_time"]
                        .as_u64()
                        .map(|t| t.to_string())
                }),
            overflow: results["overflow"].as_bool().unwrap_or(false),
        },
        ..Default::default()
    };
    for e in results["entries"].as_array().into_iter().flatten() {
        let Some(entry) = e["entry"].as_str() else {
            continue;
        };
        if e["valid"].as_bool().unwrap_or(true) {
            list.entries.insert(canonical(entry));
        } else {
            list.invalid += 1;
        }
    }
    list
}

/// The canonical form of a device entry, so `192.0.2.1/32` on the device equals `192.0.2.1`.
fn canonical(entry: &str) -> String {
    crate::model::MemberAddress::parse(entry)
        .map(|a| a.to_string())
        .unwrap_or_else(|_| entry.to_string())
}

/// Applies `plan` to resource `name`: the object first (a push needs the push-mode object).
pub async fn apply(
    client: &FortiOsClient,
    name: &str,
    plan: &ConnectorPlan,
) -> Result<(), DeviceError> {
    write_object(client, name, &plan.object).await?;
    push(client, name, &plan.push).await
}

/// Creates or updates the resource object.
pub async fn write_object(
    client: &FortiOsClient,
    name: &str,
    object: &ObjectWrite,
) -> Result<(), DeviceError> {
    match object {
        ObjectWrite::None => Ok(()),
        ObjectWrite::Create(body) => {
            tracing::info!(device = %client.device(), resource = %name, "device write: create external resource");
            client.create(TABLE, body).await
        }
        ObjectWrite::Update(body) => {
            tracing::info!(device = %client.device(), resource = %name, "device write: update external resource");
            client.update(TABLE, name, body).await
        }
    }
}

/// Sends the push commands (one `dynamic` call), if any.
pub async fn push(
    client: &FortiOsClient,
    name: &str,
    commands: &PushCommands,
) -> Result<(), DeviceError> {
    if commands.is_empty() {
        return Ok(());
    }
    push_many(client, &[(name, commands)]).await
}

/// Sends the commands of several lists in one `dynamic` call: its body is an array of
/// commands, each naming its own feed (facts §4), so one call carries every list's. The device
/// answers for the batch only; whether it applies part of a failed batch is UNCONFIRMED, so a
/// caller that gets an error re-sends each list's commands alone (add, remove and snapshot
/// towards the declared list are idempotent: a re-send never adds what is not declared).
pub async fn push_many(
    client: &FortiOsClient,
    lists: &[(&str, &PushCommands)],
) -> Result<(), DeviceError> {
    let mut commands = Vec::new();
    for (name, c) in lists {
        tracing::info!(
            device = %client.device(),
            resource = %name,
            add = c.add.len(),
            remove = c.remove.len(),
            snapshot = c.snapshot.as_ref().map(Vec::len),
            lists = lists.len(),
            "device write: dynamic push"
        );
        commands.extend(c.commands(name));
    }
    let path = format!("{MONITOR}/dynamic");
    client
        .request(
            Method::POST,
            &path,
            &[],
            Some(&json!({ "commands": commands })),
        )
        .await
        .map(|_| ())
}

/// What every fortisync marker contains (`model::Owner::marker`): one `comments=@` read with it
/// lists every connector's resource at once (the planner checks the exact owner).
const ANY_MARKER: &str = "managed-by fortisync";

/// Names OR-ed into one `name==` filter at most (as AddressGroup's batch does).
const NAME_LOOKUPS: usize = 40;

/// The resource objects named `names` (None: absent), in their order. One name: read by name.
/// More: one read of every fortisync-marked resource, then whoever holds a name not among them
/// (a hand-made or foreign object is a refusal, never a create), OR-ed `NAME_LOOKUPS` to a read;
/// more names than that: the whole table in one read (at most 511 resources per FortiGate,
/// facts §8).
pub async fn objects(
    client: &FortiOsClient,
    names: &[&str],
) -> Result<Vec<Option<Value>>, DeviceError> {
    if let [name] = names {
        return Ok(vec![client.get(TABLE, name).await?]);
    }
    let marked = client
        .list_where(TABLE, Some(&format!("comments=@{ANY_MARKER}")), &[])
        .await?;
    let mut found: std::collections::HashMap<String, Value> = marked
        .into_iter()
        .filter_map(|o| Some((o["name"].as_str()?.to_string(), o)))
        .collect();
    let missing: BTreeSet<&str> = names
        .iter()
        .copied()
        .filter(|n| !found.contains_key(*n))
        .collect();
    if !missing.is_empty() {
        let holders = if missing.len() > NAME_LOOKUPS {
            client.list_where(TABLE, None, &[]).await?
        } else {
            by_names(client, &missing).await?
        };
        for o in holders {
            if let Some(n) = o["name"].as_str()
                && missing.contains(n)
            {
                found.insert(n.to_string(), o);
            }
        }
    }
    Ok(names.iter().map(|n| found.get(*n).cloned()).collect())
}

/// Objects named in `names` (at most `NAME_LOOKUPS`): one OR-ed read, and one read by name for
/// a name a filter cannot carry (`,` separates its terms, `&` ends it).
async fn by_names(
    client: &FortiOsClient,
    names: &BTreeSet<&str>,
) -> Result<Vec<Value>, DeviceError> {
    let (plain, odd): (Vec<&str>, Vec<&str>) =
        names.iter().copied().partition(|n| !n.contains([',', '&']));
    let mut out = Vec::new();
    if !plain.is_empty() {
        let filter: Vec<String> = plain.iter().map(|n| format!("name=={n}")).collect();
        out.extend(
            client
                .list_where(TABLE, Some(&filter.join(",")), &[])
                .await?,
        );
    }
    for n in odd {
        out.extend(client.get(TABLE, n).await?);
    }
    Ok(out)
}

/// Whether a failed push only affects this list (F19: reported as a warning, retried), not the
/// connection: an unreachable device, a refused or frozen key and a lockout fail the pass as
/// any request would, and so does a profile without the permission (nothing retries that away).
pub fn push_failure_is_local(e: &DeviceError) -> bool {
    !matches!(
        e,
        DeviceError::ConnectFailed { .. }
            | DeviceError::Timeout { .. }
            | DeviceError::Tls { .. }
            | DeviceError::Unauthorized { .. }
            | DeviceError::CredentialFrozen { .. }
            | DeviceError::LockedOut { .. }
            | DeviceError::AuthBudgetExhausted { .. }
            | DeviceError::Forbidden { .. }
    )
}

/// Asks the FortiGate to pull the feed now.
pub async fn refresh(client: &FortiOsClient, name: &str) -> Result<(), DeviceError> {
    let path = format!("{MONITOR}/refresh");
    client
        .request(Method::POST, &path, &[], Some(&json!({"mkey": name})))
        .await
        .map(|_| ())
}

/// Removes resource `name`.
pub async fn delete(client: &FortiOsClient, name: &str) -> Result<(), DeviceError> {
    tracing::info!(device = %client.device(), resource = %name, "device write: delete external resource");
    match client.delete(TABLE, name).await {
        Err(DeviceError::NotFound { .. }) => Ok(()),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_entry_list_answer_becomes_counts_canonical_entries_and_the_pull_state() {
        let results = json!({
            "status": "error", "error": "HTTP 401", "http_status_code": 401,
            "last_conn_success_time": "2026-12-02 08:00:00", "overflow": false,
            "entries": [
                {"entry": "192.0.2.1/32", "valid": true},
                {"entry": "10.0.0.0/8", "valid": true},
                {"entry": "bogus", "valid": false},
            ],
        });
        let l = read_entry_list(&results);
        assert_eq!(l.status.status, "error");
        assert_eq!(l.status.http_status_code, Some(401));
        assert_eq!(
            l.status.last_success.as_deref(),
            Some("2026-12-02 08:00:00")
        );
        assert_eq!(
            l.entries.iter().map(String::as_str).collect::<Vec<_>>(),
            ["10.0.0.0/8", "192.0.2.1"]
        );
        assert_eq!(l.invalid, 1);
    }
}
