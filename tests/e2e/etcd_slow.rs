//! etcd turns slow under a running controller (a saturated disk or network under the
//! apiserver): every chunk between kube-apiserver and etcd waits 300 ms for 20 s. The
//! controller keeps its Lease, converges the changes made meanwhile and after, and the device
//! takes exactly the writes they need (a slow status write is never taken for a lost one).

use std::time::{Duration, Instant};

use fortisync::api::AddressGroup;
use fortisync::sim::fortios::Table;
use kube::Api;

use crate::support::control_plane::ControlPlane;
use crate::support::device_log::writes;
use crate::support::fixture::{
    KEY, condition, fortigate, fortigate_sim, group, group_named, member, secret_in, wait_for,
};
use crate::support::proxy::Proxy;
use crate::support::run::{RunOptions, RunProcess};

const WAIT: Duration = Duration::from_secs(90);
const LATENCY: Duration = Duration::from_millis(300);
const SLOW_FOR: Duration = Duration::from_secs(20);

async fn converged(api: &Api<AddressGroup>, name: &str) {
    wait_for(&format!("{name} converged"), WAIT, || async {
        let g = api.get(name).await.ok()?;
        let s = g.status?;
        (condition(&s.conditions, "Ready") == Some(("True".into(), "Converged".into()))
            && s.observed_generation == g.metadata.generation)
            .then_some(())
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_etcd_slows_the_controller_but_it_keeps_the_lease_converges_and_doubles_no_write() {
    let mut etcd_proxy = None;
    let cp = tokio::task::block_in_place(|| {
        ControlPlane::private_with_etcd_front("etcd-slow", |etcd| {
            let proxy = Proxy::start(etcd);
            let addr = proxy.addr;
            etcd_proxy = Some(proxy);
            addr
        })
    });
    let etcd_proxy = etcd_proxy.expect("the etcd proxy");
    tokio::task::block_in_place(|| cp.install_crds());
    let ns = tokio::task::block_in_place(|| cp.namespace("etcd-slow"));
    let sim = fortigate_sim("").await;
    let fg = sim.fortigate("fw");
    secret_in(&cp, &ns, "fw-token", KEY, fg.ca_pem().expect("ca")).await;
    let apply = |manifest: String| {
        let (ok, err) = tokio::task::block_in_place(|| cp.apply(&ns, &manifest));
        assert!(ok, "{err}");
    };
    apply(fortigate(fg.url(), "1h", ""));
    let controller = RunProcess::start_with(
        &cp,
        &RunOptions {
            namespaces: &[&ns],
            lease_namespace: &ns,
            identity: "etcd-slow",
            extra: &[],
            kubeconfig: None,
            log_filter: "info",
        },
    );
    apply(group(("FortiGate", "fw"), "", &[member("192.0.2.10")]));
    let groups: Api<AddressGroup> = Api::namespaced(cp.client(), &ns);
    converged(&groups, "admins").await;
    assert_eq!(writes(fg).len(), 2, "{:?}", writes(fg));

    let on_device = |group: String, address: String| async move {
        (fg.group_members("root", Table::Addrgrp, &group)? == [format!("fs_{address}")])
            .then_some(())
    };
    etcd_proxy.set_latency(LATENCY);
    let slow = Instant::now();
    let mut made = vec!["admins".to_string()];
    for (round, address) in [(1u8, "192.0.2.21"), (2, "192.0.2.22")] {
        let name = format!("slow-{round}");
        let started = Instant::now();
        apply(group_named(
            &name,
            &name,
            ("FortiGate", "fw"),
            "",
            &[member(address)],
        ));
        let applied = started.elapsed();
        wait_for(&format!("{name} on the device"), WAIT, || {
            on_device(name.clone(), address.to_string())
        })
        .await;
        eprintln!(
            "etcd slow ({} ms a chunk): {name} on the device {:.2} s after kubectl apply began (the apply took {:.2} s)",
            LATENCY.as_millis(),
            started.elapsed().as_secs_f64(),
            applied.as_secs_f64()
        );
        made.push(name);
    }
    if let Some(rest) = SLOW_FOR.checked_sub(slow.elapsed()) {
        tokio::time::sleep(rest).await;
    }
    etcd_proxy.set_latency(Duration::ZERO);
    let healed = Instant::now();
    apply(group_named(
        "after",
        "after",
        ("FortiGate", "fw"),
        "",
        &[member("192.0.2.30")],
    ));
    wait_for("after on the device", WAIT, || {
        on_device("after".into(), "192.0.2.30".into())
    })
    .await;
    eprintln!(
        "etcd slow: {:.1} s slow in all; once etcd was fast again a new group was on the device {:.2} s later",
        slow.elapsed().as_secs_f64() - healed.elapsed().as_secs_f64(),
        healed.elapsed().as_secs_f64()
    );
    made.push("after".into());
    for name in &made {
        converged(&groups, name).await;
    }
    // A real apiserver and process: time for a reconcile repeated by a slow status write to
    // come and be counted.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let writes = writes(fg);
    assert_eq!(writes.len(), 2 * made.len(), "{writes:#?}");
    let log = controller.log();
    assert!(!log.contains("lost the Lease"), "{log}");
    assert_eq!(controller.writes(), writes.len(), "{log}");
}
