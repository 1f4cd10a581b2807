//! Starting up on a cluster that is not quite ready: readiness waits for every watch's first
//! complete list, a missing CRD is named with how to install it, and one object that does not
//! deserialize is reported and skipped while the others converge.

use std::time::Duration;

use fortisync::sim::fortios::Table;
use kube::Api;

use crate::support::control_plane::ControlPlane;
use crate::support::fixture::{
    KEY, fortigate, fortigate_sim, group, group_named, member, secret_in, start_controller_in,
    wait_for,
};
use crate::support::run::RunProcess;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readiness_waits_for_every_watch_and_a_missing_crd_is_named_with_its_remedy() {
    let cp = ControlPlane::private("startup");
    let ns = cp.namespace("startup");
    let run = RunProcess::start(&cp, &ns, "startup", &[]);
    // Without the CRDs the watches cannot list: not ready, and the log says what to do.
    wait_for(
        "the missing CRD named in the log",
        Duration::from_secs(30),
        || async {
            run.log()
                .contains("the CRD is not installed: run `fortisync crds | kubectl apply -f -`")
                .then_some(())
        },
    )
    .await;
    let status = wait_for("the admin server", Duration::from_secs(10), || run.readyz()).await;
    assert_eq!(
        status,
        503,
        "not ready before the first list: {}",
        run.log()
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(run.readyz().await, Some(503), "still not ready");

    tokio::task::block_in_place(|| cp.install_crds());
    wait_for(
        "ready once every watch has listed",
        Duration::from_secs(20),
        || async { (run.readyz().await == Some(200)).then_some(()) },
    )
    .await;
    assert!(
        run.log().contains("every watch has listed its resources"),
        "{}",
        run.log()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_object_that_does_not_deserialize_is_reported_and_the_others_converge() {
    let cp = ControlPlane::private("bad-object");
    // A CRD looser than the controller's types (as after a downgrade, or a CRD edited by
    // hand): `membership` takes any string.
    let mut crds = fortisync::api::crds();
    for crd in &mut crds {
        if crd.spec.names.kind != "AddressGroup" {
            continue;
        }
        for version in &mut crd.spec.versions {
            let schema = version.schema.as_mut().expect("schema");
            let spec = schema
                .open_api_v3_schema
                .as_mut()
                .and_then(|s| s.properties.as_mut())
                .and_then(|p| p.get_mut("spec"))
                .and_then(|s| s.properties.as_mut())
                .expect("spec properties");
            spec.get_mut("membership").expect("membership").enum_ = None;
        }
    }
    let file = cp.dir.join("loose-crds.yaml");
    let yaml: Vec<String> = crds
        .iter()
        .map(|c| serde_json::to_string(c).expect("crd"))
        .collect();
    std::fs::write(&file, yaml.join("\n---\n")).expect("write");
    let file = file.to_str().expect("utf-8").to_string();
    tokio::task::block_in_place(|| {
        cp.kubectl_ok(&["apply", "--server-side", "-f", &file]);
        cp.kubectl_ok(&[
            "wait",
            "--for=condition=Established",
            "crd/addressgroups.fortisync.dev",
            "--timeout=60s",
        ]);
    });
    let ns = cp.namespace("bad-object");
    let sim = fortigate_sim("").await;
    let fg = sim.fortigate("fw");
    secret_in(&cp, &ns, "fw-token", KEY, fg.ca_pem().expect("ca")).await;
    assert!(cp.apply(&ns, &fortigate(fg.url(), "1h", "")).0);
    let bad = group_named(
        "broken",
        "broken-group",
        ("FortiGate", "fw"),
        "  membership: Sometimes\n",
        &[member("192.0.2.66")],
    );
    let (ok, err) = cp.apply(&ns, &bad);
    assert!(ok, "the loose CRD admits it: {err}");
    assert!(
        cp.apply(
            &ns,
            &group(("FortiGate", "fw"), "", &[member("192.0.2.10")])
        )
        .0
    );
    let controller = start_controller_in(&cp, &ns);
    wait_for(
        "the good group on the device",
        Duration::from_secs(30),
        || async {
            (fg.group_members("root", Table::Addrgrp, "allowed-admins")?
                == ["fs_192.0.2.10".to_string()])
            .then_some(())
        },
    )
    .await;
    let events: Api<k8s_openapi::api::events::v1::Event> = Api::namespaced(cp.client(), &ns);
    let note = wait_for(
        "an InvalidObject event",
        Duration::from_secs(20),
        || async {
            events
                .list(&Default::default())
                .await
                .ok()?
                .items
                .into_iter()
                .find(|e| {
                    e.reason.as_deref() == Some("InvalidObject")
                        && e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some("broken")
                })
                .and_then(|e| e.note)
        },
    )
    .await;
    assert!(note.contains("Sometimes"), "{note}");
    assert!(fg.object("root", Table::Addrgrp, "broken-group").is_none());
    assert!(!controller.is_finished(), "the controller kept running");
}
