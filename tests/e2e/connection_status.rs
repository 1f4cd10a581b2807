//! The FortiGate connection resource's status: reachability, firmware, serial and breaker from
//! one probe, and a wrong key tried once across every controller that uses it.

use std::net::IpAddr;
use std::time::Duration;

use fortisync::api::common::{BreakerState, ConnectionStatus};

use crate::support::control_plane;
use crate::support::fixture::{
    KEY, SERIAL, condition, condition_message, fortigate, fortigate_observed, fortigate_sim,
    fortigate_status, group, group_observed, group_ready, member, secret, start_controller,
    wait_for,
};

const WAIT: Duration = Duration::from_secs(30);

/// Waits until the FortiGate's `Ready` condition has `status` and `reason`.
pub async fn fortigate_ready(ns: &str, status: &str, reason: &str) -> ConnectionStatus {
    wait_for(
        &format!("FortiGate Ready={status} {reason}"),
        WAIT,
        || async {
            let s = fortigate_status(ns).await?;
            (condition(&s.conditions, "Ready") == Some((status.into(), reason.into()))).then_some(s)
        },
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fortigate_reports_reachable_version_serial_and_a_closed_breaker() {
    let cp = control_plane();
    cp.install_crds();
    let ns = cp.namespace("fg-status");
    let sim = fortigate_sim("").await;
    let fg = sim.fortigate("fw");
    secret(&ns, "fw-token", KEY, fg.ca_pem().expect("ca")).await;
    let _controller = start_controller(&ns);
    assert!(cp.apply(&ns, &fortigate(fg.url(), "10s", "")).0);

    let status = fortigate_ready(&ns, "True", "Connected").await;
    assert!(status.reachable);
    assert_eq!(status.version.as_deref(), Some("v7.4.3"));
    assert_eq!(status.serial.as_deref(), Some(SERIAL));
    assert_eq!(status.breaker, Some(BreakerState::Closed));
    assert_eq!(status.last_error, None);
    assert_eq!(status.observed_generation, Some(1));
    assert_eq!(
        condition_message(&status.conditions, "Ready"),
        "reachable and authorised, firmware v7.4.3"
    );
    let printed = cp.kubectl_ok(&["-n", &ns, "get", "fortigates.fortisync.dev", "fw"]);
    assert!(
        printed.contains("v7.4.3") && printed.contains("Closed"),
        "printer columns: {printed}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_key_fails_once_for_the_fortigate_and_its_address_group_together() {
    let cp = control_plane();
    cp.install_crds();
    let ns = cp.namespace("fg-wrong-key");
    let sim = fortigate_sim("").await;
    let fg = sim.fortigate("fw");
    secret(&ns, "fw-token", "not-the-key", fg.ca_pem().expect("ca")).await;
    let _controller = start_controller(&ns);
    // Both resources at once: the FortiGate's probe and the AddressGroup's first reads race.
    let manifests = format!(
        "{}---\n{}",
        fortigate(fg.url(), "10s", ""),
        group(("FortiGate", "fw"), "", &[member("192.0.2.10")])
    );
    let (ok, err) = cp.apply(&ns, &manifests);
    assert!(ok, "{err}");

    let status = fortigate_ready(&ns, "False", "Unauthorized").await;
    assert!(!status.reachable);
    let error = status.last_error.expect("lastError");
    assert_eq!(error.reason, "Unauthorized");
    assert!(error.remedy.contains("Regenerate"), "{}", error.remedy);
    let group = group_ready(&ns, "False", "Unauthorized", WAIT).await;
    assert_eq!(
        group.last_error.map(|e| e.reason),
        Some("Unauthorized".into())
    );
    // Both resources' passes on their current spec have run before "nothing else" is judged.
    fortigate_observed(&ns, "fw", WAIT).await;
    group_observed(&ns, "admins", WAIT).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let loopback = IpAddr::from([127, 0, 0, 1]);
    assert_eq!(
        fg.auth_failures_from(loopback),
        1,
        "exactly one failed attempt across both controllers: {:?}",
        fg.requests()
    );
    assert_eq!(fg.count_from(loopback), 1, "and nothing else was sent");
    assert_eq!(fg.lockout_remaining(loopback), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_password_is_called_a_password_not_an_api_key() {
    let cp = control_plane();
    cp.install_crds();
    let ns = cp.namespace("wrong-password");
    let yaml = "fortigates:\n  - name: fw\n    version: \"7.4.3\"\n    admins: [{name: admin, password: right-password, trusthosts: [\"127.0.0.0/8\"]}]\n";
    let sim = fortisync::sim::Simulator::start(
        fortisync::sim::Scenario::from_yaml(yaml).expect("scenario"),
    )
    .await
    .expect("simulator");
    let fg = sim.fortigate("fw");
    let ca = fg.ca_pem().expect("ca").to_string();
    crate::support::canary::register("wrong-password");
    cp.kubectl_ok(&[
        "create",
        "secret",
        "generic",
        "fw-login",
        "-n",
        &ns,
        "--from-literal=username=admin",
        "--from-literal=password=wrong-password",
        &format!("--from-literal=ca.crt={ca}"),
    ]);
    let _controller = start_controller(&ns);
    let manifest = format!(
        "apiVersion: fortisync.dev/v1alpha1\nkind: FortiGate\nmetadata: {{name: fw}}\nspec:\n  url: {}\n  credentialsSecretRef: {{name: fw-login, usernameKey: username, passwordKey: password}}\n  tls: {{caBundleSecretRef: {{name: fw-login, key: ca.crt}}}}\n  resyncInterval: 1h\n",
        fg.url()
    );
    let (ok, err) = cp.apply(&ns, &manifest);
    assert!(ok, "{err}");
    assert!(
        cp.apply(
            &ns,
            &group(("FortiGate", "fw"), "", &[member("192.0.2.10")])
        )
        .0
    );
    let s = fortigate_ready(&ns, "False", "Unauthorized").await;
    let on_connection = condition_message(&s.conditions, "Ready");
    let g = group_ready(&ns, "False", "Unauthorized", WAIT).await;
    let on_group = condition_message(&g.conditions, "Ready");
    for message in [on_connection, on_group] {
        assert!(message.contains("password"), "{message}");
        assert!(!message.contains("API key"), "{message}");
        assert!(!message.contains("Regenerate"), "{message}");
    }
}
