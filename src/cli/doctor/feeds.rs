//! The ExternalConnector steps: doctor cannot test the EDL URL from the firewall's side, so it
//! reads what the FortiGate itself reports of each list (`entry-list`: the last pull's status,
//! error, HTTP code, last success, overflow) and explains it. Read-only, like every step.

use serde_json::Value;

use super::checks::{Status, Step};
use crate::api::externalconnector::ConnectorMode;
use crate::device::DeviceError;
use crate::device::fortios::FortiOsClient;
use crate::model::{Owner, has_marker};
use crate::reconcile::externalconnector::fortigate::{self, EntryList, TABLE};
use crate::reconcile::externalconnector::plan::Refusal;

/// One ExternalConnector of the manifests on the checked connection.
#[derive(Debug, Clone, PartialEq)]
pub struct FeedCheck {
    /// `namespace/name` of the ExternalConnector.
    pub resource: String,
    /// The external resource's name on the device.
    pub resource_name: String,
    /// Feed or Push.
    pub mode: ConnectorMode,
    /// The ownership marker the object must carry.
    pub owner: Owner,
}

impl FeedCheck {
    pub(super) fn id(&self) -> String {
        format!("connector.{}", self.resource_name)
    }

    pub(super) fn title(&self) -> String {
        format!("external resource {}", self.resource_name)
    }
}

/// The step for one connector from what the device holds (pure): `object` the CMDB row (None:
/// absent), `list` its `entry-list`.
pub fn feed_step(check: &FeedCheck, object: Option<&Value>, list: Option<&EntryList>) -> Step {
    let (id, title) = (check.id(), check.title());
    let Some(object) = object else {
        return Step {
            status: Status::Warn,
            reason: Some("NotCreated".into()),
            cause: Some(format!(
                "ExternalConnector {} has not been converged on this device yet",
                check.resource
            )),
            remedy: Some(
                "let the controller converge it (or run `fortisync apply`), then run doctor again"
                    .into(),
            ),
            ..Step::ok(&id, &title, "not on the device")
        };
    };
    let comment = object["comments"].as_str().unwrap_or_default();
    if !check.owner.owns(comment) {
        // Someone else's object: what the controller would refuse, and its list says nothing
        // of this connector.
        let refusal = if has_marker(comment) {
            Refusal::OwnedByAnother {
                same_namespace: false,
                owner: String::new(),
            }
        } else {
            Refusal::NotOwned
        };
        let r = refusal.report(&check.resource_name);
        return Step {
            status: Status::Warn,
            reason: Some(r.reason),
            cause: Some(r.message),
            remedy: Some(r.remedy),
            ..Step::ok(
                &id,
                &title,
                format!("exists, but not as ExternalConnector {}", check.resource),
            )
        };
    }
    let list = list.cloned().unwrap_or_default();
    let url = object["resource"].as_str().unwrap_or_default();
    let holds = format!(
        "holds {} entr(ies){}",
        list.entries.len(),
        if list.invalid > 0 {
            format!(", {} invalid", list.invalid)
        } else {
            String::new()
        }
    );
    if list.status.overflow {
        return Step {
            status: Status::Warn,
            reason: Some("ListOverflow".into()),
            cause: Some("the list is larger than the device's external-resource entry limit (128K per list before 7.4.4, a budget shared by all lists after); entries past it are dropped".into()),
            remedy: Some("split the list across ExternalConnectors, or check the model's limits".into()),
            ..Step::ok(&id, &title, format!("{holds}; the device set overflow"))
        };
    }
    if check.mode == ConnectorMode::Push {
        return Step::ok(&id, &title, format!("push list; {holds}"));
    }
    let failed =
        list.status.status == "error" || list.status.http_status_code.is_some_and(|c| c >= 400);
    if !failed {
        let last = list
            .status
            .last_success
            .as_deref()
            .map(|t| format!(", last successful pull {t}"))
            .unwrap_or_default();
        return Step::ok(
            &id,
            &title,
            format!("the FortiGate pulls {url}{last}; {holds}"),
        );
    }
    let why = list
        .status
        .error
        .clone()
        .unwrap_or_else(|| "no detail".into());
    let (cause, remedy) = match list.status.http_status_code {
        Some(401) | Some(403) => (
            "the feed server refused the FortiGate's credentials".to_string(),
            "make the FortiGate's feed user and password match the EDL endpoint's: check spec.feed.credentialsSecretRef and the Secret it names (the controller writes them to the device when the Secret changes)".to_string(),
        ),
        Some(404) => (
            "the URL the FortiGate polls does not name this list".to_string(),
            "check spec.feed.url, or the controller's --edl-base-url (the chart's edl.baseUrl): /edl/<namespace>/<name> of this ExternalConnector".to_string(),
        ),
        Some(code) => (
            format!("the feed server answered HTTP {code}"),
            "check the EDL endpoint's logs and the fortisync_edl_* metrics of the controller".to_string(),
        ),
        None => (
            "the FortiGate could not fetch the URL: no route, DNS, a firewall policy in the way, or TLS (its CA store does not trust the EDL certificate, or server-identity-check does not match the name)".to_string(),
            "from the FortiGate CLI: `execute ping` / `diagnose test application dnsproxy` for the host; for TLS give the EDL a certificate the FortiGate trusts or set spec.feed.serverIdentityCheck; doctor cannot test from the firewall's side".to_string(),
        ),
    };
    Step {
        status: Status::Fail,
        reason: Some("FeedPullFailed".into()),
        cause: Some(cause),
        remedy: Some(remedy),
        troubleshooting_row: None,
        ..Step::ok(
            &id,
            &title,
            format!(
                "the FortiGate's last pull of {url} failed ({why}{}); it keeps its last good list: {holds}",
                list.status
                    .http_status_code
                    .map(|c| format!(", HTTP {c}"))
                    .unwrap_or_default()
            ),
        )
    }
}

/// Reads each connector's object and list (GETs only) and explains them.
pub async fn check(client: &FortiOsClient, feeds: &[FeedCheck]) -> Vec<Step> {
    let mut steps = Vec::new();
    for f in feeds {
        let read: Result<(Option<Value>, Option<EntryList>), DeviceError> = async {
            let object = client.get(TABLE, &f.resource_name).await?;
            let list = match &object {
                Some(_) => Some(fortigate::entry_list(client, &f.resource_name).await?),
                None => None,
            };
            Ok((object, list))
        }
        .await;
        steps.push(match read {
            Ok((object, list)) => feed_step(f, object.as_ref(), list.as_ref()),
            Err(e) => Step::failed(&f.id(), &f.title(), &e),
        });
    }
    steps
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::reconcile::externalconnector::fortigate::read_entry_list;

    fn feed() -> FeedCheck {
        FeedCheck {
            resource: "team-a/blocklist".into(),
            resource_name: "fs-blocklist".into(),
            mode: ConnectorMode::Feed,
            owner: Owner {
                namespace: "team-a".into(),
                name: "blocklist".into(),
            },
        }
    }

    fn object() -> Value {
        json!({
            "name": "fs-blocklist",
            "resource": "https://edl.example/edl/team-a/blocklist",
            "comments": feed().owner.marker(),
        })
    }

    #[test]
    fn a_refused_pull_names_the_credentials_and_keeps_the_last_good_list() {
        let list = read_entry_list(&json!({
            "status": "error", "error": "HTTP 401 Unauthorized", "http_status_code": 401,
            "entries": [{"entry": "192.0.2.1", "valid": true}],
        }));
        let s = feed_step(&feed(), Some(&object()), Some(&list));
        assert_eq!(s.status, Status::Fail);
        assert_eq!(s.reason.as_deref(), Some("FeedPullFailed"));
        assert_eq!(
            s.detail,
            "the FortiGate's last pull of https://edl.example/edl/team-a/blocklist failed (HTTP 401 Unauthorized, HTTP 401); it keeps its last good list: holds 1 entr(ies)"
        );
        assert!(
            s.remedy
                .as_deref()
                .is_some_and(|r| r.contains("spec.feed.credentialsSecretRef"))
        );
    }

    #[test]
    fn an_unreachable_url_is_explained_from_the_firewalls_side() {
        let list = read_entry_list(&json!({"status": "error", "error": "connection timed out"}));
        let s = feed_step(&feed(), Some(&object()), Some(&list));
        assert_eq!(s.status, Status::Fail);
        assert!(
            s.cause
                .as_deref()
                .is_some_and(|c| c.contains("could not fetch the URL"))
        );
        assert!(
            s.remedy
                .as_deref()
                .is_some_and(|r| r.contains("cannot test from the firewall's side"))
        );
    }

    #[test]
    fn a_good_pull_an_overflow_a_push_list_and_an_absent_object() {
        let good = read_entry_list(&json!({
            "status": "success", "last_conn_success_time": "2026-12-02 10:00:00",
            "entries": [{"entry": "192.0.2.1", "valid": true}, {"entry": "x", "valid": false}],
        }));
        let s = feed_step(&feed(), Some(&object()), Some(&good));
        assert_eq!(s.status, Status::Ok);
        assert_eq!(
            s.detail,
            "the FortiGate pulls https://edl.example/edl/team-a/blocklist, last successful pull 2026-12-02 10:00:00; holds 1 entr(ies), 1 invalid"
        );
        let full = read_entry_list(&json!({"status": "success", "overflow": true}));
        assert_eq!(
            feed_step(&feed(), Some(&object()), Some(&full))
                .reason
                .as_deref(),
            Some("ListOverflow")
        );
        let push = FeedCheck {
            mode: ConnectorMode::Push,
            ..feed()
        };
        assert_eq!(
            feed_step(&push, Some(&object()), Some(&good)).status,
            Status::Ok
        );
        let by_hand = json!({"name": "fs-blocklist", "comments": "made in the GUI"});
        let foreign = feed_step(&feed(), Some(&by_hand), Some(&good));
        assert_eq!(
            (foreign.status, foreign.reason.as_deref()),
            (Status::Warn, Some("ResourceNotOwned"))
        );
        assert_eq!(
            foreign.detail,
            "exists, but not as ExternalConnector team-a/blocklist"
        );
        let absent = feed_step(&feed(), None, None);
        assert_eq!(
            (absent.status, absent.reason.as_deref()),
            (Status::Warn, Some("NotCreated"))
        );
    }
}
