//! The controller's connections to the apiserver break mid-stream (a load balancer or a node
//! going away closes every open watch at once) or stall: `fortisync run`, reaching the
//! apiserver through a proxy that cuts or holds them, recovers by itself, converges a change
//! made after each fault, and the device takes exactly the writes the changes need: none lost
//! (a dropped watch event), none doubled (a reconcile repeated because its status write broke).

use std::time::{Duration, Instant};

use fortisync::api::AddressGroup;
use fortisync::sim::fortios::Table;
use kube::Api;

use crate::support::control_plane;
use crate::support::device_log::writes;
use crate::support::fixture::{
    KEY, condition, fortigate, fortigate_sim, group, group_named, member, secret, wait_for,
};
use crate::support::proxy::Proxy;
use crate::support::run::{RunOptions, RunProcess};

const WAIT: Duration = Duration::from_secs(60);

/// Waits until every AddressGroup in `names` is Ready=True Converged on its current generation.
async fn converged(api: &Api<AddressGroup>, names: &[String]) {
    wait_for("every group converged", WAIT, || async {
        for name in names {
            let g = api.get(name).await.ok()?;
            let s = g.status?;
            let ready =
                condition(&s.conditions, "Ready") == Some(("True".into(), "Converged".into()));
            (ready && s.observed_generation == g.metadata.generation).then_some(())?;
        }
        Some(())
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cut_and_stalled_watches_recover_and_every_later_change_converges_with_no_write_lost_or_doubled()
 {
    let cp = control_plane();
    cp.install_crds();
    let ns = cp.namespace("watch-cuts");
    let sim = fortigate_sim("").await;
    let fg = sim.fortigate("fw");
    secret(&ns, "fw-token", KEY, fg.ca_pem().expect("ca")).await;
    // A resync far away: every write below comes from a watch event, none from a timer.
    assert!(cp.apply(&ns, &fortigate(fg.url(), "1h", "")).0);
    let proxy = Proxy::start(cp.api_addr());
    let kubeconfig = cp.kubeconfig_via(&format!("https://{}", proxy.addr));
    let controller = RunProcess::start_with(
        cp,
        &RunOptions {
            namespaces: &[&ns],
            lease_namespace: &ns,
            identity: "cuts",
            extra: &[],
            kubeconfig: Some(kubeconfig),
            log_filter: "info",
        },
    );
    assert!(
        cp.apply(
            &ns,
            &group(("FortiGate", "fw"), "", &[member("192.0.2.10")])
        )
        .0
    );
    let groups: Api<AddressGroup> = Api::namespaced(cp.client(), &ns);
    let mut names = vec!["admins".to_string()];
    converged(&groups, &names).await;
    // One group of one member: its address, then the group.
    assert_eq!(writes(fg).len(), 2, "{:?}", writes(fg));

    // Two cuts; a stall of 10 s; a stall with a cut inside it, so the edit lands while the
    // controller has no connection at all and its watches must resume from where they were.
    // After each, a new group of one new member.
    for round in 1..=4u8 {
        let faulted = match round {
            1 | 2 => "cut",
            3 => "stalled",
            _ => "stalled and cut",
        };
        if round >= 3 {
            proxy.stall(true);
            tokio::time::sleep(Duration::from_secs(10)).await;
        }
        let cut_at = Instant::now();
        if round != 3 {
            let cut = proxy.cut();
            // Its watches (one per kind and the Secrets), the Lease renewals: all open at once.
            assert!(
                cut >= 2,
                "round {round}: only {cut} connection(s) were open"
            );
        }
        let name = format!("after-{round}");
        let address = format!("192.0.2.{}", 20 + round);
        let manifest = group_named(
            &name,
            &format!("group-{round}"),
            ("FortiGate", "fw"),
            "",
            &[member(&address)],
        );
        // The edit is made while a stall still holds (kubectl has its own connection).
        let applying = Instant::now();
        assert!(cp.apply(&ns, &manifest).0);
        let applied = applying.elapsed();
        // Recovery runs from the cut (rounds 1-2) or from the end of the stall (3-4).
        let fault_over = if round >= 3 { Instant::now() } else { cut_at };
        proxy.stall(false);
        let expected = vec![format!("fs_{address}")];
        wait_for(
            &format!("group-{round} on the device after the {faulted} connections"),
            WAIT,
            || async {
                (fg.group_members("root", Table::Addrgrp, &format!("group-{round}"))? == expected)
                    .then_some(())
            },
        )
        .await;
        eprintln!(
            "watch faults: round {round} ({faulted}): the change made after it on the device {:.2} s after the fault ended (kubectl apply: {:.2} s, inside the stall in rounds 3-4)",
            fault_over.elapsed().as_secs_f64(),
            applied.as_secs_f64()
        );
        names.push(name);
    }
    converged(&groups, &names).await;
    // Real processes and a real apiserver: a paused clock cannot stand in. Time for a repeated
    // reconcile (a status write that broke, a relist) to come and be counted.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let writes = writes(fg);
    assert_eq!(writes.len(), 2 * names.len(), "{writes:#?}");
    assert!(writes.iter().all(|w| w.ends_with(" 200")), "{writes:#?}");
    assert_eq!(
        controller.writes(),
        writes.len(),
        "the controller logged each write once: {}",
        controller.log()
    );
    eprintln!(
        "watch faults: {} connections accepted over 3 cuts and 2 stalls; {} device writes for {} groups",
        proxy.accepted(),
        writes.len(),
        names.len()
    );
}
