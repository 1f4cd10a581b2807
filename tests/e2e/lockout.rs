//! Another tool behind the controller's source IP locks the FortiGate out: the AddressGroup and
//! the FortiGate report it with the remedy, the device hears nothing from that IP while the
//! window lasts, and the controller recovers by itself afterwards.

use std::net::IpAddr;
use std::time::{Duration, Instant};

use fortisync::api::common::BreakerState;
use fortisync::sim::fortios::{FortiGateHandle, Table};

use crate::support::control_plane;
use crate::support::fixture::{
    KEY, condition, condition_message, fortigate, fortigate_sim, fortigate_status, group,
    group_ready, member, secret, start_controller, wait_for,
};

const SOURCE: [u8; 4] = [127, 0, 0, 23];
/// `admin-lockout-duration` on the device, and as the connection declares it.
const WINDOW_SECS: u64 = 4;

/// A script with a typo in its key, sending from `source`: one failed login.
async fn wrong_key_request(fg: &FortiGateHandle, source: IpAddr) -> u16 {
    let client = reqwest::Client::builder()
        .local_address(source)
        .add_root_certificate(
            reqwest::Certificate::from_pem(fg.ca_pem().expect("ca").as_bytes()).expect("pem"),
        )
        .build()
        .expect("client");
    client
        .get(format!("{}/api/v2/monitor/system/status", fg.url()))
        .bearer_auth("typo")
        .send()
        .await
        .expect("send")
        .status()
        .as_u16()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lockout_by_another_tool_is_reported_waited_out_and_recovered_from() {
    let cp = control_plane();
    cp.install_crds();
    let ns = cp.namespace("ag-lockout");
    let sim = fortigate_sim(&format!(
        "{{admin_lockout_threshold: 3, admin_lockout_duration: {WINDOW_SECS}}}"
    ))
    .await;
    let fg = sim.fortigate("fw");
    let source = IpAddr::from(SOURCE);
    secret(&ns, "fw-token", KEY, fg.ca_pem().expect("ca")).await;
    let _controller = start_controller(&ns);
    let extra = format!(
        "  sourceAddress: {source}\n  lockout: {{threshold: 3, durationSeconds: {WINDOW_SECS}}}\n"
    );
    assert!(cp.apply(&ns, &fortigate(fg.url(), "10s", &extra)).0);
    assert!(
        cp.apply(
            &ns,
            &group(("FortiGate", "fw"), "", &[member("192.0.2.10")])
        )
        .0
    );
    group_ready(&ns, "True", "Converged", Duration::from_secs(30)).await;
    assert!(
        fg.requests().iter().all(|r| r.peer == source),
        "the controller sends from spec.sourceAddress"
    );

    for _ in 0..3 {
        wrong_key_request(fg, source).await;
    }
    let locked = fg
        .lockout_remaining(source)
        .expect("the device locked the IP");
    assert!(locked > Duration::from_secs(WINDOW_SECS - 1), "{locked:?}");
    let locked_at = Instant::now();
    fg.clear_requests();

    // An edit needs the device: the controller finds the lockout with one request.
    let two = [member("192.0.2.10"), member("192.0.2.11")];
    assert!(cp.apply(&ns, &group(("FortiGate", "fw"), "", &two)).0);
    let status = group_ready(&ns, "False", "LockedOut", Duration::from_secs(3)).await;
    let error = status.last_error.clone().expect("lastError");
    assert_eq!(error.reason, "LockedOut");
    assert!(
        error
            .remedy
            .starts_with("fortisync sends nothing to this device until the window has passed"),
        "{}",
        error.remedy
    );
    assert!(
        condition_message(&status.conditions, "Ready").contains(" Remedy: fortisync sends nothing"),
        "{:?}",
        status.conditions
    );
    let connection = wait_for(
        "the FortiGate reporting the open breaker",
        Duration::from_secs(2),
        || async {
            let s = fortigate_status(&ns).await?;
            (s.breaker == Some(BreakerState::Open)).then_some(s)
        },
    )
    .await;
    assert_eq!(
        condition(&connection.conditions, "Ready"),
        Some(("False".into(), "LockedOut".into()))
    );
    assert!(!connection.reachable);

    // Nothing reaches the device from that IP while the window lasts but what was already in
    // flight when the first 429 came: a pass's two reads go together, the Guard keeps at most
    // 2 in flight (threshold 3 − 1), and calls during a lockout count as neither success nor
    // failure (facts §7). After that answer, nothing.
    while fg.lockout_remaining(source).is_some() {
        assert!(locked_at.elapsed() < Duration::from_secs(WINDOW_SECS + 2));
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let inside: Vec<_> = fg.requests();
    assert!(
        (1..=2).contains(&inside.len()),
        "the requests in flight when the lockout was found, no more: {inside:?}"
    );
    assert!(inside.iter().all(|r| r.status == 429), "{inside:?}");
    assert_eq!(
        fg.auth_failures_from(source),
        0,
        "fortisync failed no login"
    );

    // After the window the controller recovers on its own and converges the edit.
    let recovered = group_ready(&ns, "True", "Converged", Duration::from_secs(10)).await;
    assert_eq!(recovered.last_error, None);
    assert_eq!(recovered.counts.desired, 2);
    let mut members = fg
        .group_members("root", Table::Addrgrp, "allowed-admins")
        .expect("group");
    members.sort();
    assert_eq!(members, ["fs_192.0.2.10", "fs_192.0.2.11"]);
    let connection = wait_for(
        "the FortiGate connected again",
        Duration::from_secs(15),
        || async {
            let s = fortigate_status(&ns).await?;
            (condition(&s.conditions, "Ready") == Some(("True".into(), "Connected".into())))
                .then_some(s)
        },
    )
    .await;
    assert_eq!(connection.breaker, Some(BreakerState::Closed));
    assert_eq!(connection.last_error, None);
    assert_eq!(
        fg.count_status_from(source, 429) as usize,
        inside.len(),
        "no request ever met the lockout again"
    );
}
