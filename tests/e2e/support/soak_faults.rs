//! The fault soak's faults (tests/e2e/soak.rs): each injected against a seeded target while
//! the churn goes on, and returning once it has taken effect.

use std::time::Duration;

use fortisync::sim::fortimanager::{FaultRule as RpcFault, HttpFaultBody};
use fortisync::sim::fortios::{FaultBody, FaultRule};
use k8s_openapi::api::core::v1::Secret;
use kube::Api;
use kube::api::{Patch, PatchParams};
use serde_json::json;

use super::estate::{Dev, Kind};
use super::{Soak, WAIT};
use crate::support::fixture::wait_for;
use crate::support::run::RunProcess;

/// The path only the other client (the lockout's cause) uses, so its failed logins are told
/// apart from the controller's.
pub const OTHER_CLIENT_PATH: &str = "/api/v2/monitor/license/status";

impl Soak {
    /// One fault of `kind` against a seeded target; returns once it has taken effect.
    pub(super) async fn fault(&mut self, kind: &'static str) {
        let fortigate = if self.draw.below(2) == 0 {
            Dev::Fg74
        } else {
            Dev::Fg64
        };
        let any = Dev::ALL[self.draw.below(3)];
        let target = match kind {
            "lockout" => Dev::Fg74,
            "key rotation" => Dev::Fg64,
            "workspace held" => Dev::Fmg,
            "hang" | "reboot" => fortigate,
            _ => any,
        };
        self.faults.entry(kind).or_default().push(target.name());
        match kind {
            "5xx" | "reset" | "latency" if target == Dev::Fmg => {
                let rule = match kind {
                    "5xx" => RpcFault {
                        url: "/pm/config".into(),
                        http_status: Some(503),
                        body: HttpFaultBody::Html,
                        times: Some(1),
                        ..RpcFault::default()
                    },
                    "reset" => RpcFault {
                        url: "/pm/config".into(),
                        reset: true,
                        times: Some(1),
                        ..RpcFault::default()
                    },
                    _ => RpcFault {
                        latency_ms: 800,
                        times: Some(3),
                        ..RpcFault::default()
                    },
                };
                let control = self.sim.fortimanager("fmg").control().clone();
                control.add_fault(rule);
                self.churn_until(
                    Dev::Fmg,
                    None,
                    &format!("the FortiManager {kind} fired"),
                    || control.faults().is_empty(),
                )
                .await;
            }
            "5xx" | "reset" | "latency" | "hang" | "reboot" => {
                let dev = target;
                let sim = self.sim.clone();
                let fg = sim.fortigate(dev.name());
                let rule = match kind {
                    // Transient server errors only: a 500 with an error code on a write is
                    // the device refusing a value (F11), which no retry may paper over.
                    "5xx" => match self.draw.below(3) {
                        0 => FaultRule {
                            path: "/api/v2/cmdb".into(),
                            method: Some("GET".into()),
                            status: Some(500),
                            body: FaultBody::Json,
                            error: Some(-1),
                            times: Some(2),
                            ..FaultRule::default()
                        },
                        n => FaultRule {
                            path: "/api/v2/".into(),
                            status: Some(if n == 1 { 503 } else { 502 }),
                            body: if n == 1 {
                                FaultBody::Empty
                            } else {
                                FaultBody::Html
                            },
                            times: Some(2),
                            ..FaultRule::default()
                        },
                    },
                    // The write runs, the answer is lost: the ambiguous case.
                    "reset" => FaultRule {
                        path: "/api/v2/".into(),
                        method: Some(["POST", "PUT", "DELETE"][self.draw.below(3)].into()),
                        reset: true,
                        times: Some(1),
                        ..FaultRule::default()
                    },
                    "hang" => FaultRule {
                        path: "/api/v2/cmdb".into(),
                        method: Some("GET".into()),
                        hang: true,
                        times: Some(1),
                        ..FaultRule::default()
                    },
                    "latency" => FaultRule {
                        latency_ms: 300 + 100 * self.draw.below(6) as u64,
                        times: Some(5),
                        ..FaultRule::default()
                    },
                    // A reboot ends sessions and lockouts; while it boots it answers 503.
                    _ => {
                        fg.reboot();
                        FaultRule {
                            status: Some(503),
                            body: FaultBody::Empty,
                            times: Some(3),
                            ..FaultRule::default()
                        }
                    }
                };
                fg.add_fault(rule);
                let what = format!("the {kind} on {} fired", dev.name());
                self.churn_until(dev, None, &what, || fg.faults().is_empty())
                    .await;
            }
            "lockout" => self.lockout().await,
            "key rotation" => self.rotate_key().await,
            _ => self.hold_workspace().await,
        }
    }

    /// Another client behind fg74's controller source sends a wrong key until the device
    /// locks the IP; the churn goes on; afterwards, the window's requests are counted.
    async fn lockout(&mut self) {
        let sim = self.sim.clone();
        let fg = sim.fortigate(Dev::Fg74.name());
        let source = Dev::Fg74.source();
        let client = reqwest::Client::builder()
            .local_address(source)
            .add_root_certificate(
                reqwest::Certificate::from_pem(fg.ca_pem().expect("ca").as_bytes()).expect("pem"),
            )
            .build()
            .expect("client");
        let mut attempts = 0;
        // A success of the controller in between resets the device's count: keep trying.
        while fg.lockout_remaining(source).is_none() {
            assert!(attempts < 30, "the other client never locked the IP out");
            client
                .get(format!("{}{OTHER_CLIENT_PATH}", fg.url()))
                .bearer_auth("typo")
                .send()
                .await
                .expect("send");
            attempts += 1;
        }
        let window = fg.lockout_remaining(source).unwrap_or_default();
        let from = fg.requests().len();
        let locked_at = fg.requests()[..from]
            .iter()
            .rev()
            .find(|r| r.path == OTHER_CLIENT_PATH)
            .expect("the other client's request")
            .at_ms;
        self.churn_some(Dev::Fg74).await;
        wait_for(
            "the lockout window over",
            Duration::from_secs(120),
            || async { fg.lockout_remaining(source).is_none().then_some(()) },
        )
        .await;
        // While locked every request gets 429 (no fault is queued meanwhile), so the 429s
        // from the source are the requests inside the window.
        let inside: Vec<u64> = fg.requests()[from..]
            .iter()
            .filter(|r| r.peer == source && r.status == 429)
            .map(|r| r.at_ms - locked_at)
            .collect();
        self.lockout_windows
            .push((window.as_millis() as u64, inside));
    }

    /// The device's key is regenerated; the controller meets it (one failed login at most);
    /// then the Secret gets the new key.
    async fn rotate_key(&mut self) {
        let sim = self.sim.clone();
        let fg = sim.fortigate(Dev::Fg64.name());
        let source = Dev::Fg64.source();
        let next = Dev::Fg64.key(self.key_version + 1);
        assert!(fg.set_api_key("fortisync", Some(&next)));
        let since = *self.key_since.last().expect("a version");
        self.churn_until(
            Dev::Fg64,
            None,
            "the controller meeting the old key",
            || {
                fg.requests()[since..]
                    .iter()
                    .any(|r| r.peer == source && r.auth_failed)
            },
        )
        .await;
        // One more change on the device while the key is wrong: the controller holds back
        // (it says so in its log) instead of logging in again.
        let held_back = |run: &RunProcess| {
            run.log()
                .lines()
                .filter(|l| {
                    l.contains("not sending requests with credential") && l.contains("/fg64")
                })
                .count()
        };
        let before = held_back(&self.run);
        self.churn(Some(Dev::Fg64), None).await;
        wait_for(
            "the controller holding the refused key back",
            WAIT,
            || async { (held_back(&self.run) > before).then_some(()) },
        )
        .await;
        let secrets: Api<Secret> = Api::namespaced(self.client.clone(), &self.ns);
        self.key_since.push(fg.requests().len());
        secrets
            .patch(
                "fg64-token",
                &PatchParams::default(),
                &Patch::Merge(json!({"stringData": {"token": next}})),
            )
            .await
            .expect("the new key in the Secret");
        self.key_version += 1;
    }

    /// Another admin holds the ADOM lock while the churn goes on; nothing is written to the
    /// ADOM until it is released.
    async fn hold_workspace(&mut self) {
        let control = self.sim.fortimanager("fmg").control().clone();
        control.hold_lock("root", "alice").expect("alice locks");
        let from = control.requests().len();
        // An ADOM object to change: the controller must ask for the lock.
        let kind = [Kind::AddressGroup, Kind::ExternalConnector][self.draw.below(2)];
        self.churn_until(
            Dev::Fmg,
            Some(kind),
            "the controller meeting alice's lock",
            || {
                control.requests()[from..]
                    .iter()
                    .any(|r| r.url.ends_with("/workspace/lock") && r.code != 0)
            },
        )
        .await;
        let writes = control.requests()[from..]
            .iter()
            .filter(|r| {
                ["set", "add", "update", "delete"].contains(&r.method.as_str())
                    && r.url.starts_with("/pm/config/adom/root")
                    && r.code == 0
            })
            .count();
        control.release_lock("root").expect("alice unlocks");
        self.writes_under_lock.push(writes);
    }
}
