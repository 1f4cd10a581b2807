//! Two `fortisync run` replicas: exactly one holds the Lease and writes to the device, the other
//! keeps its caches warm; when the holder dies the other takes the Lease over and converges the
//! next edit.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use fortisync::sim::fortios::Table;
use k8s_openapi::api::coordination::v1::Lease;
use kube::Api;

use crate::support::control_plane;
use crate::support::fixture::{
    KEY, fortigate, fortigate_sim, group, group_ready, member, secret, wait_for,
};

/// One `fortisync run` process; killed when dropped.
struct Replica {
    identity: String,
    child: Child,
    log: PathBuf,
}

impl Replica {
    fn start(ns: &str, identity: &str) -> Self {
        let cp = control_plane();
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("free port")
            .port();
        let log = cp.dir.join(format!("{ns}-{identity}.log"));
        let out = std::fs::File::create(&log).expect("log file");
        let child = Command::new(env!("CARGO_BIN_EXE_fortisync"))
            .args([
                "run",
                "--namespace",
                ns,
                "--lease-namespace",
                ns,
                "--identity",
                identity,
                "--lease-duration-seconds",
                "4",
                "--admin-address",
                &format!("127.0.0.1:{port}"),
            ])
            .env("KUBECONFIG", cp.kubeconfig())
            .env("RUST_LOG", "info")
            .env_remove("POD_NAME")
            .env_remove("POD_NAMESPACE")
            .stdin(Stdio::null())
            .stdout(out.try_clone().expect("log file"))
            .stderr(out)
            .spawn()
            .expect("start fortisync run");
        Self {
            identity: identity.to_string(),
            child,
            log,
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Device writes this replica logged.
    fn writes(&self) -> usize {
        self.log()
            .lines()
            .filter(|l| l.contains("\"device write\""))
            .count()
    }
}

impl Drop for Replica {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn holder(ns: &str) -> Option<String> {
    let api: Api<Lease> = Api::namespaced(control_plane().client(), ns);
    api.get_opt("fortisync-controller")
        .await
        .ok()??
        .spec?
        .holder_identity
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_the_lease_holder_writes_and_the_standby_takes_over_when_it_dies() {
    let cp = control_plane();
    cp.install_crds();
    let ns = cp.namespace("replicas");
    let sim = fortigate_sim("").await;
    let fg = sim.fortigate("fw");
    secret(&ns, "fw-token", KEY, fg.ca_pem().expect("ca")).await;
    assert!(cp.apply(&ns, &fortigate(fg.url(), "10s", "")).0);
    let mut replicas = vec![
        Replica::start(&ns, "replica-a"),
        Replica::start(&ns, "replica-b"),
    ];
    assert!(
        cp.apply(
            &ns,
            &group(("FortiGate", "fw"), "", &[member("192.0.2.10")])
        )
        .0
    );
    group_ready(&ns, "True", "Converged", Duration::from_secs(40)).await;
    let leader = holder(&ns).await.expect("a Lease holder");
    let (lead, standby): (Vec<_>, Vec<_>) = replicas.drain(..).partition(|r| r.identity == leader);
    let (lead, standby) = (
        lead.into_iter().next().expect("the holder is one of ours"),
        standby.into_iter().next().expect("the other replica"),
    );
    assert_eq!(
        fg.group_members("root", Table::Addrgrp, "allowed-admins"),
        Some(vec!["fs_192.0.2.10".to_string()])
    );
    assert_eq!(lead.writes(), 2, "the holder wrote: {}", lead.log());
    assert_eq!(
        standby.writes(),
        0,
        "the standby never writes: {}",
        standby.log()
    );
    // Warm standby: its watches run and it is ready (caches listed), but it writes nothing.
    assert!(
        standby.log().contains("standby: caches warm"),
        "{}",
        standby.log()
    );
    assert!(
        standby
            .log()
            .contains("every watch has listed its resources")
    );
    assert!(!standby.log().contains("took the Lease"));

    // The leader dies without releasing the Lease; the standby takes it after it expires.
    drop(lead);
    let next = wait_for(
        "the standby holding the Lease",
        Duration::from_secs(30),
        || async { holder(&ns).await.filter(|h| h == &standby.identity) },
    )
    .await;
    assert_eq!(next, standby.identity);
    let two = [member("192.0.2.10"), member("192.0.2.11")];
    assert!(cp.apply(&ns, &group(("FortiGate", "fw"), "", &two)).0);
    wait_for(
        "the edit on the device",
        Duration::from_secs(30),
        || async {
            let mut m = fg.group_members("root", Table::Addrgrp, "allowed-admins")?;
            m.sort();
            (m == ["fs_192.0.2.10", "fs_192.0.2.11"]).then_some(())
        },
    )
    .await;
    assert!(
        standby.log().contains("took the Lease"),
        "{}",
        standby.log()
    );
    assert_eq!(standby.writes(), 2, "{}", standby.log());
}
