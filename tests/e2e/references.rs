//! Specs admission cannot refuse — they name a connection, ConfigMap, AddressGroup or Secret
//! that does not exist, which CEL cannot look up — are admitted by the real API server, then
//! refused at reconcile with a `Ready=False` condition naming the field and the cause, before
//! anything is written to the device. The rows are `refused_at_reconcile()` of the shared
//! bad-spec table (tests/support/bad_specs.rs).

use std::time::Duration;

use fortisync::api::{AddressGroup, ExternalConnector};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::Api;

use crate::admission::bad_specs::{Kind, refused_at_reconcile};
use crate::support::control_plane;
use crate::support::fixture::{KEY, fortigate, fortigate_sim, secret, start_controller, wait_for};

const WAIT: Duration = Duration::from_secs(30);

/// The `Ready` condition of the resource `name` of `kind`, once it has one.
async fn ready(ns: &str, kind: Kind, name: &str) -> Option<Condition> {
    let client = control_plane().client();
    let conditions = match kind {
        Kind::AddressGroup => {
            Api::<AddressGroup>::namespaced(client, ns)
                .get(name)
                .await
                .ok()?
                .status?
                .conditions
        }
        Kind::ExternalConnector => {
            Api::<ExternalConnector>::namespaced(client, ns)
                .get(name)
                .await
                .ok()?
                .status?
                .conditions
        }
        other => panic!("no reconcile rows for {other:?}"),
    };
    conditions.into_iter().find(|c| c.type_ == "Ready")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn references_to_missing_objects_are_admitted_then_refused_at_reconcile_naming_the_field() {
    let cp = control_plane();
    cp.install_crds();
    let sim = fortigate_sim("").await;
    let fg = sim.fortigate("fw");
    let ns = cp.namespace("references");
    secret(&ns, "fw-token", KEY, fg.ca_pem().expect("ca")).await;
    let _controller = start_controller(&ns);
    assert!(cp.apply(&ns, &fortigate(fg.url(), "10s", "")).0);
    let rows = refused_at_reconcile();
    for row in &rows {
        let (ok, stderr) = cp.apply(&ns, &row.manifest().to_string());
        assert!(ok, "{}: refused at admission: {stderr}", row.what);
    }
    for row in &rows {
        let found = wait_for(
            &format!("{}: Ready=False {}", row.what, row.reason),
            WAIT,
            || async {
                ready(&ns, row.kind, row.name)
                    .await
                    .filter(|c| c.status == "False" && c.reason == row.reason)
            },
        )
        .await;
        assert!(
            found.message.contains(row.field),
            "{}: the message names no {}: {:?}",
            row.what,
            row.field,
            found.message
        );
    }
    let writes: Vec<String> = fg
        .requests()
        .iter()
        .filter(|r| r.method != "GET")
        .map(|r| format!("{} {}", r.method, r.path))
        .collect();
    assert_eq!(
        writes,
        Vec::<String>::new(),
        "nothing written to the device"
    );
}
