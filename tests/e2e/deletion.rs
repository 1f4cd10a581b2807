//! Deleting the way `kubectl delete -f` does: one file holding the Secret, the connection and
//! the AddressGroup is deleted in file order, Secret first, and the device is still cleaned.

use std::time::Duration;

use fortisync::sim::fortios::Table;

use crate::support::control_plane;
use crate::support::fixture::{
    KEY, fortigate, fortigate_sim, group, group_ready, member, start_controller, wait_for,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_delete_of_one_file_cleans_the_device_although_the_secret_goes_first() {
    let cp = control_plane();
    cp.install_crds();
    let ns = cp.namespace("delete-order");
    let sim = fortigate_sim("").await;
    let fg = sim.fortigate("fw");
    let ca = fg.ca_pem().expect("ca").replace('\n', "\n    ");
    crate::support::canary::register(KEY);
    let secret = format!(
        "apiVersion: v1\nkind: Secret\nmetadata: {{name: fw-token}}\nstringData:\n  token: {KEY}\n  ca.crt: |\n    {ca}\n"
    );
    let file = cp.dir.join(format!("{ns}.yaml"));
    let manifest = [
        secret,
        fortigate(fg.url(), "1h", ""),
        group(
            ("FortiGate", "fw"),
            "",
            &[member("192.0.2.10"), member("192.0.2.11")],
        ),
    ]
    .join("---\n");
    std::fs::write(&file, manifest).expect("write the manifest");
    let file = file.to_str().expect("utf-8 path").to_string();
    let _controller = start_controller(&ns);
    cp.kubectl_ok(&["apply", "-n", &ns, "-f", &file]);
    group_ready(&ns, "True", "Converged", Duration::from_secs(30)).await;
    assert!(
        fg.object("root", Table::Addrgrp, "allowed-admins")
            .is_some()
    );

    // kubectl deletes in file order and waits for every finalizer.
    let out = tokio::task::block_in_place(|| {
        cp.kubectl(&["delete", "-n", &ns, "-f", &file, "--timeout=60s"])
    });
    assert!(
        out.status.success(),
        "kubectl delete: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    wait_for("the device cleaned", Duration::from_secs(10), || async {
        let ours = fg
            .objects("root", Table::Address)
            .iter()
            .filter(|o| o["name"].as_str().is_some_and(|n| n.starts_with("fs_")))
            .count();
        (fg.object("root", Table::Addrgrp, "allowed-admins")
            .is_none()
            && ours == 0)
            .then_some(())
    })
    .await;
    let left = cp.kubectl_ok(&[
        "get",
        "-n",
        &ns,
        "fortigates,addressgroups,secrets",
        "-o",
        "name",
    ]);
    assert_eq!(left.trim(), "", "everything is gone");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cleanup_that_cannot_reach_the_device_says_what_it_leaves_there() {
    let cp = control_plane();
    cp.install_crds();
    let ns = cp.namespace("left-behind");
    let sim = fortigate_sim("").await;
    let fg = sim.fortigate("fw");
    crate::support::fixture::secret(&ns, "fw-token", KEY, fg.ca_pem().expect("ca")).await;
    let controller = start_controller(&ns);
    assert!(cp.apply(&ns, &fortigate(fg.url(), "1h", "")).0);
    assert!(
        cp.apply(
            &ns,
            &group(("FortiGate", "fw"), "", &[member("192.0.2.10")])
        )
        .0
    );
    group_ready(&ns, "True", "Converged", Duration::from_secs(30)).await;
    // The controller is down while the Secret and then everything else is deleted; the one
    // that comes back never read the Secret.
    drop(controller);
    cp.kubectl_ok(&["delete", "-n", &ns, "secret/fw-token"]);
    cp.kubectl_ok(&[
        "delete",
        "-n",
        &ns,
        "fortigate/fw",
        "addressgroup/admins",
        "--wait=false",
    ]);
    let _controller = start_controller(&ns);
    let note = wait_for("a LeftOnDevice event", Duration::from_secs(30), || async {
        crate::support::fixture::events_of(&ns, "admins")
            .await
            .into_iter()
            .find(|(t, reason, _)| t == "Warning" && reason == "LeftOnDevice")
            .map(|(_, _, note)| note)
    })
    .await;
    assert!(note.contains("\"allowed-admins\""), "{note}");
    assert!(note.contains("managed-by fortisync"), "{note}");
    assert!(
        note.contains("SecretNotFound") || note.contains("Secret"),
        "{note}"
    );
    wait_for("both resources gone", Duration::from_secs(30), || async {
        let left = cp.kubectl_ok(&["get", "-n", &ns, "fortigates,addressgroups", "-o", "name"]);
        left.trim().is_empty().then_some(())
    })
    .await;
    assert_eq!(
        fg.group_members("root", Table::Addrgrp, "allowed-admins"),
        Some(vec!["fs_192.0.2.10".to_string()]),
        "what the event says is left is really left"
    );
}
