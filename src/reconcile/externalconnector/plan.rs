//! What it takes to make a FortiGate's external resource hold what an ExternalConnector
//! declares (pure): the resource object itself, and in Push mode the dynamic commands.

use std::collections::BTreeSet;

use serde_json::{Value, json};

use crate::api::common::ErrorReport;
use crate::api::externalconnector::{ConnectorMode, ServerIdentityCheck};
use crate::model::{Firmware, Owner, has_marker};

/// FortiOS added `update-method` (feed | push) and the dynamic API in 7.2.1.
pub const PUSH_FIRMWARE: Firmware = Firmware::new(7, 2, 1);

/// The resource object as fortisync wants it.
#[derive(Debug, Clone, PartialEq)]
pub struct DesiredResource {
    /// Device name.
    pub name: String,
    /// Who owns it.
    pub owner: Owner,
    /// Feed or Push.
    pub mode: ConnectorMode,
    /// The URL the FortiGate polls (Feed), or the EDL URL kept as a fallback (Push).
    pub url: String,
    /// Minutes between polls.
    pub refresh_rate: u32,
    /// HTTP basic credentials the FortiGate sends.
    pub credentials: Option<(String, String)>,
    /// Certificate check of the URL.
    pub server_identity_check: ServerIdentityCheck,
    /// The credentials changed since they were last written (the device never reads a
    /// password back, so this is the only way to know).
    pub credentials_changed: bool,
}

/// Why the device's object cannot be managed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// An object of that name that no fortisync resource created.
    NotOwned,
    /// An object another fortisync resource owns.
    OwnedByAnother {
        /// Whether the owner is in the same namespace (only then may it be named).
        same_namespace: bool,
        /// `<namespace>/<name>` of the owner, when the marker says it.
        owner: String,
    },
    /// Push needs FortiOS 7.2.1+.
    PushUnsupported(Firmware),
}

impl Refusal {
    /// The reason, message and remedy of this refusal of the external resource
    /// `resource_name`; nothing was written.
    fn parts(&self, resource_name: &str) -> (&'static str, String, &'static str) {
        match self {
            Refusal::NotOwned => (
                "ResourceNotOwned",
                format!(
                    "an external resource {resource_name:?} exists that fortisync did not create; nothing was written."
                ),
                "rename spec.resourceName, or set spec.takeOver: true to manage it",
            ),
            Refusal::OwnedByAnother {
                same_namespace,
                owner,
            } => (
                "ResourceOwnedByAnother",
                if *same_namespace {
                    format!(
                        "the external resource {resource_name:?} belongs to {owner}; nothing was written."
                    )
                } else {
                    format!(
                        "another fortisync resource (in another namespace) owns the external resource {resource_name:?}; nothing was written."
                    )
                },
                "choose another spec.resourceName",
            ),
            Refusal::PushUnsupported(f) => (
                "PushUnsupported",
                format!(
                    "the device runs FortiOS {f}; the dynamic push API needs 7.2.1 or later; nothing was written."
                ),
                "use mode: Feed, or upgrade the FortiGate",
            ),
        }
    }

    /// This refusal as a report (reason, message, remedy apart), for the CLI and doctor.
    pub fn report(&self, resource_name: &str) -> ErrorReport {
        let (reason, message, remedy) = self.parts(resource_name);
        ErrorReport {
            reason: reason.into(),
            message,
            remedy: remedy.into(),
        }
    }

    /// The condition reason and message (the remedy in it) of this refusal.
    pub fn explain(&self, resource_name: &str) -> (&'static str, String) {
        let (reason, message, remedy) = self.parts(resource_name);
        (reason, format!("{message} Remedy: {remedy}"))
    }
}

/// The object write a pass needs.
#[derive(Debug, Clone, PartialEq)]
pub enum ObjectWrite {
    /// Nothing to write.
    None,
    /// POST the object.
    Create(Value),
    /// PUT the object.
    Update(Value),
}

/// Push mode's dynamic commands: one call carries all of them.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct PushCommands {
    /// Entries to add.
    pub add: Vec<String>,
    /// Entries to remove.
    pub remove: Vec<String>,
    /// Replace the whole list with this (after drift), instead of add/remove.
    pub snapshot: Option<Vec<String>>,
}

impl PushCommands {
    /// No command.
    pub fn is_empty(&self) -> bool {
        self.add.is_empty() && self.remove.is_empty() && self.snapshot.is_none()
    }

    /// The `dynamic` call's body for feed `name`.
    pub fn body(&self, name: &str) -> Value {
        json!({ "commands": self.commands(name) })
    }

    /// The commands for feed `name`, in the order the device applies them. Each command names
    /// its feed, so one `dynamic` call can carry several feeds' commands (facts §4).
    pub fn commands(&self, name: &str) -> Vec<Value> {
        let mut commands = Vec::new();
        if let Some(all) = &self.snapshot {
            commands.push(json!({"name": name, "command": "snapshot", "entries": all}));
        } else {
            if !self.remove.is_empty() {
                commands.push(json!({"name": name, "command": "remove", "entries": self.remove}));
            }
            if !self.add.is_empty() {
                commands.push(json!({"name": name, "command": "add", "entries": self.add}));
            }
        }
        commands
    }

    /// Entries these commands carry (what a call's size grows with).
    pub fn entry_count(&self) -> usize {
        self.snapshot
            .as_ref()
            .map_or(self.add.len() + self.remove.len(), Vec::len)
    }
}

/// A pass's plan.
#[derive(Debug, Clone, PartialEq)]
pub struct ConnectorPlan {
    /// The object write.
    pub object: ObjectWrite,
    /// Push mode: the entries to change.
    pub push: PushCommands,
}

impl ConnectorPlan {
    /// Writes this plan makes.
    pub fn writes(&self) -> usize {
        usize::from(self.object != ObjectWrite::None) + usize::from(!self.push.is_empty())
    }
}

/// The FortiOS body of the resource on `firmware`.
pub fn resource_body(d: &DesiredResource, firmware: Firmware, with_password: bool) -> Value {
    let mut body = json!({
        "name": d.name,
        "status": "enable",
        "type": "address",
        "resource": d.url,
        "refresh-rate": d.refresh_rate,
        "comments": d.owner.marker(),
        "username": d.credentials.as_ref().map(|(u, _)| u.as_str()).unwrap_or_default(),
    });
    if firmware >= PUSH_FIRMWARE {
        body["update-method"] = json!(match d.mode {
            ConnectorMode::Feed => "feed",
            ConnectorMode::Push => "push",
        });
    }
    if has_identity_check(firmware) {
        body["server-identity-check"] = json!(match d.server_identity_check {
            ServerIdentityCheck::Full => "full",
            ServerIdentityCheck::Basic => "basic",
            ServerIdentityCheck::None => "none",
        });
    }
    if with_password {
        body["password"] = json!(
            d.credentials
                .as_ref()
                .map(|(_, p)| p.as_str())
                .unwrap_or_default()
        );
    }
    body
}

/// `server-identity-check` exists on 7.0.8–7.0.12 and 7.2.4+.
fn has_identity_check(f: Firmware) -> bool {
    (f >= Firmware::new(7, 0, 8) && f < Firmware::new(7, 1, 0)) || f >= Firmware::new(7, 2, 4)
}

/// Plans one pass. `observed` is the device's object (None: absent); `on_device` its entries
/// (Push mode); `take_over` lets fortisync manage an object nobody owns; `drift` says the
/// resource was converged at this generation, so a difference is an out-of-band change and is
/// repaired with one snapshot rather than add/remove.
pub fn plan(
    d: &DesiredResource,
    firmware: Firmware,
    observed: Option<&Value>,
    take_over: bool,
    desired_entries: &BTreeSet<String>,
    on_device: &BTreeSet<String>,
    drift: bool,
) -> Result<ConnectorPlan, Refusal> {
    if d.mode == ConnectorMode::Push && firmware < PUSH_FIRMWARE {
        return Err(Refusal::PushUnsupported(firmware));
    }
    let object = plan_object(d, firmware, observed, take_over)?;
    let push = match d.mode {
        ConnectorMode::Feed => PushCommands::default(),
        ConnectorMode::Push => {
            let add: Vec<String> = desired_entries.difference(on_device).cloned().collect();
            let remove: Vec<String> = on_device.difference(desired_entries).cloned().collect();
            if add.is_empty() && remove.is_empty() {
                PushCommands::default()
            } else if drift {
                PushCommands {
                    snapshot: Some(desired_entries.iter().cloned().collect()),
                    ..Default::default()
                }
            } else {
                PushCommands {
                    add,
                    remove,
                    snapshot: None,
                }
            }
        }
    };
    Ok(ConnectorPlan { object, push })
}

/// Plans a Push edit without reading the device's list first: the object as `plan` does, and
/// one `snapshot` of the declared entries, which leaves the device holding exactly them
/// whatever it held (so no read is needed to compute add/remove). For an edit only: a pass
/// over an unchanged spec reads the list, so that drift is seen and counted.
pub fn plan_unseen(
    d: &DesiredResource,
    firmware: Firmware,
    observed: Option<&Value>,
    take_over: bool,
    desired_entries: &BTreeSet<String>,
) -> Result<ConnectorPlan, Refusal> {
    if d.mode == ConnectorMode::Push && firmware < PUSH_FIRMWARE {
        return Err(Refusal::PushUnsupported(firmware));
    }
    let object = plan_object(d, firmware, observed, take_over)?;
    let push = match d.mode {
        ConnectorMode::Feed => PushCommands::default(),
        ConnectorMode::Push => PushCommands {
            snapshot: Some(desired_entries.iter().cloned().collect()),
            ..Default::default()
        },
    };
    Ok(ConnectorPlan { object, push })
}

/// The object write alone, with the ownership rules (no firmware check: an ADOM object is a
/// definition, and whether a device can push is decided per device).
pub fn plan_object(
    d: &DesiredResource,
    firmware: Firmware,
    observed: Option<&Value>,
    take_over: bool,
) -> Result<ObjectWrite, Refusal> {
    Ok(match observed {
        None => ObjectWrite::Create(resource_body(d, firmware, true)),
        Some(o) => {
            let comment = o["comments"].as_str().unwrap_or_default();
            if !d.owner.owns(comment) {
                if has_marker(comment) {
                    let owner = comment
                        .trim_start_matches("managed-by fortisync ")
                        .split(' ')
                        .next()
                        .unwrap_or_default()
                        .to_string();
                    let same_namespace = owner
                        .split_once('/')
                        .is_some_and(|(ns, _)| ns == d.owner.namespace);
                    return Err(Refusal::OwnedByAnother {
                        same_namespace,
                        owner,
                    });
                }
                if !take_over {
                    return Err(Refusal::NotOwned);
                }
            }
            let want = resource_body(d, firmware, false);
            let differs = want
                .as_object()
                .into_iter()
                .flatten()
                .any(|(k, v)| !same_field(&o[k.as_str()], v));
            if differs || d.credentials_changed {
                ObjectWrite::Update(resource_body(d, firmware, true))
            } else {
                ObjectWrite::None
            }
        }
    })
}

/// FortiOS answers numbers as numbers and strings as strings, but some clients and versions
/// quote numbers: compare by text for scalars.
fn same_field(have: &Value, want: &Value) -> bool {
    match (have, want) {
        (Value::Number(a), Value::Number(b)) => a == b,
        (Value::String(a), Value::Number(b)) | (Value::Number(b), Value::String(a)) => {
            *a == b.to_string()
        }
        (Value::Null, Value::String(w)) => w.is_empty(),
        (a, b) => a == b,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn desired(mode: ConnectorMode) -> DesiredResource {
        DesiredResource {
            name: "fs-blocklist".into(),
            owner: Owner {
                namespace: "team-a".into(),
                name: "blocklist".into(),
            },
            mode,
            url: "https://edl.example/edl/team-a/blocklist".into(),
            refresh_rate: 5,
            credentials: Some(("fortigate".into(), "s3cret".into())),
            server_identity_check: ServerIdentityCheck::Full,
            credentials_changed: false,
        }
    }

    fn set(items: &[&str]) -> BTreeSet<String> {
        items.iter().map(|s| s.to_string()).collect()
    }

    const V74: Firmware = Firmware::new(7, 4, 3);

    #[test]
    fn an_absent_resource_is_created_with_the_password_and_our_marker() {
        let d = desired(ConnectorMode::Feed);
        let p = plan(&d, V74, None, false, &set(&[]), &set(&[]), false).expect("plan");
        let ObjectWrite::Create(body) = &p.object else {
            panic!("{p:?}")
        };
        assert_eq!(body["comments"], "managed-by fortisync team-a/blocklist");
        assert_eq!(body["update-method"], "feed");
        assert_eq!(body["password"], "s3cret");
        assert_eq!(body["server-identity-check"], "full");
        assert!(p.push.is_empty());
    }

    #[test]
    fn a_converged_resource_needs_nothing_and_the_password_is_only_sent_when_it_changed() {
        let mut d = desired(ConnectorMode::Feed);
        let mut on_device = resource_body(&d, V74, false);
        on_device["refresh-rate"] = json!("5");
        let p = plan(
            &d,
            V74,
            Some(&on_device),
            false,
            &set(&[]),
            &set(&[]),
            false,
        )
        .expect("plan");
        assert_eq!(p.writes(), 0, "{p:?}");
        d.credentials_changed = true;
        let p = plan(
            &d,
            V74,
            Some(&on_device),
            false,
            &set(&[]),
            &set(&[]),
            false,
        )
        .expect("plan");
        assert!(matches!(&p.object, ObjectWrite::Update(b) if b["password"] == "s3cret"));
    }

    #[test]
    fn another_owner_or_a_hand_made_resource_is_never_taken() {
        let d = desired(ConnectorMode::Feed);
        let theirs =
            json!({"name": "fs-blocklist", "comments": "managed-by fortisync team-b/other"});
        assert_eq!(
            plan(&d, V74, Some(&theirs), true, &set(&[]), &set(&[]), false),
            Err(Refusal::OwnedByAnother {
                same_namespace: false,
                owner: "team-b/other".into()
            })
        );
        let by_hand = json!({"name": "fs-blocklist", "comments": "made by alice"});
        assert_eq!(
            plan(&d, V74, Some(&by_hand), false, &set(&[]), &set(&[]), false),
            Err(Refusal::NotOwned)
        );
        let p = plan(&d, V74, Some(&by_hand), true, &set(&[]), &set(&[]), false).expect("plan");
        assert!(
            matches!(&p.object, ObjectWrite::Update(b) if b["comments"] == "managed-by fortisync team-a/blocklist")
        );
    }

    #[test]
    fn push_sends_one_batched_call_and_repairs_drift_with_a_snapshot() {
        let d = desired(ConnectorMode::Push);
        let object = resource_body(&d, V74, false);
        let want = set(&["192.0.2.1", "192.0.2.2", "192.0.2.3"]);
        let have = set(&["192.0.2.1", "198.51.100.9"]);
        let p = plan(&d, V74, Some(&object), false, &want, &have, false).expect("plan");
        assert_eq!(p.push.add, ["192.0.2.2", "192.0.2.3"]);
        assert_eq!(p.push.remove, ["198.51.100.9"]);
        assert_eq!(
            p.push.body("fs-blocklist"),
            json!({"commands": [
                {"name": "fs-blocklist", "command": "remove", "entries": ["198.51.100.9"]},
                {"name": "fs-blocklist", "command": "add", "entries": ["192.0.2.2", "192.0.2.3"]},
            ]})
        );
        let repaired = plan(&d, V74, Some(&object), false, &want, &have, true).expect("plan");
        assert_eq!(
            repaired.push.snapshot.as_deref(),
            Some(
                &[
                    "192.0.2.1".to_string(),
                    "192.0.2.2".into(),
                    "192.0.2.3".into()
                ][..]
            )
        );
        let converged = plan(&d, V74, Some(&object), false, &want, &want, true).expect("plan");
        assert_eq!(converged.writes(), 0);
    }

    #[test]
    fn an_unseen_push_edit_is_one_snapshot_and_keeps_the_ownership_rules() {
        let d = desired(ConnectorMode::Push);
        let object = resource_body(&d, V74, false);
        let want = set(&["192.0.2.1", "192.0.2.2"]);
        let p = plan_unseen(&d, V74, Some(&object), false, &want).expect("plan");
        assert_eq!(p.object, ObjectWrite::None);
        assert_eq!(
            p.push.commands("fs-blocklist"),
            [
                json!({"name": "fs-blocklist", "command": "snapshot", "entries": ["192.0.2.1", "192.0.2.2"]})
            ]
        );
        assert_eq!(p.push.entry_count(), 2);
        let by_hand = json!({"name": "fs-blocklist", "comments": "made by alice"});
        assert_eq!(
            plan_unseen(&d, V74, Some(&by_hand), false, &want),
            Err(Refusal::NotOwned)
        );
        assert_eq!(
            plan_unseen(&d, Firmware::new(7, 0, 12), Some(&object), false, &want),
            Err(Refusal::PushUnsupported(Firmware::new(7, 0, 12)))
        );
    }

    #[test]
    fn push_before_7_2_1_is_refused_before_any_write() {
        let d = desired(ConnectorMode::Push);
        let v70 = Firmware::new(7, 0, 12);
        assert_eq!(
            plan(&d, v70, None, false, &set(&["192.0.2.1"]), &set(&[]), false),
            Err(Refusal::PushUnsupported(v70))
        );
        let feed = desired(ConnectorMode::Feed);
        let p = plan(&feed, v70, None, false, &set(&[]), &set(&[]), false).expect("feed works");
        let ObjectWrite::Create(body) = p.object else {
            panic!()
        };
        assert!(
            body.get("update-method").is_none(),
            "no such field before 7.2.1"
        );
        assert_eq!(
            body["server-identity-check"], "full",
            "7.0.12 has the check"
        );
    }
}
