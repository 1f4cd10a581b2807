//! Lockout promises across connections and tenants, through `Endpoints` as the controller uses
//! it: a refused key stays refused per credential whatever other connections do, and the
//! failed-login budget holds per device and source address whoever's keys fail.

use std::net::IpAddr;
use std::time::Duration;

use fortisync::device::{
    Credentials, DeviceError, DeviceKind, DeviceMetrics, Endpoint, EndpointConfig, Endpoints,
    LockoutPolicy, TransportConfig,
};
use fortisync::sim::fortios::FortiGateScenario;
use fortisync::sim::{Scenario, Simulator};

const KEY: &str = "right-key-000000000000000000000";

fn ip(last: u8) -> IpAddr {
    IpAddr::from([127, 0, 0, last])
}

async fn start(threshold: u32) -> Simulator {
    let fg: FortiGateScenario = fortisync::yaml::from_str(&format!(
        r#"
name: fw
version: "7.4.3"
global: {{admin_lockout_threshold: {threshold}, admin_lockout_duration: 60}}
api_users:
  - {{name: fortisync, key: {KEY}, accprofile: super_admin, trusthosts: ["127.0.0.0/24"]}}
"#
    ))
    .expect("scenario");
    Simulator::start(Scenario {
        fortigates: vec![fg],
        ..Scenario::default()
    })
    .await
    .expect("simulator")
}

/// A connection `<namespace>/<name>` to the simulated `fw`, root VDOM, from `source`.
fn connection(
    sim: &Simulator,
    name: &str,
    key: &str,
    source: IpAddr,
    threshold: u32,
) -> EndpointConfig {
    let fg = sim.fortigate("fw");
    EndpointConfig {
        kind: DeviceKind::FortiGate,
        name: name.into(),
        url: fg.url().to_string(),
        scope: "root".into(),
        credentials: Credentials::Token(key.into()),
        transport: TransportConfig {
            ca_bundle_pem: fg.ca_pem().map(str::to_string),
            source_address: Some(source),
            timeout: Duration::from_secs(2),
            ..TransportConfig::default()
        },
        max_concurrent: 4,
        lockout: LockoutPolicy {
            threshold,
            duration: Duration::from_secs(60),
        },
        lock_retries: 0,
    }
}

/// One reconcile's first device call: the endpoint as the controller gets it, then a read.
async fn reconcile(endpoints: &Endpoints, config: &EndpointConfig) -> Result<(), DeviceError> {
    let Endpoint::FortiGate(client) = endpoints.get(config)? else {
        panic!("a FortiGate endpoint")
    };
    client.system_status().await.map(|_| ())
}

/// Moves the clock forward without waiting. The clock is paused only for the jump: paused
/// while a request is in flight, tokio would also jump over the client's request timeout
/// whenever it waits on the simulator's socket.
async fn skip(d: Duration) {
    tokio::time::pause();
    tokio::time::advance(d).await;
    tokio::time::resume();
}

#[tokio::test]
async fn wrong_keys_of_two_tenants_are_each_tried_once_however_their_reconciles_alternate() {
    // Threshold 10: the budget has room for both keys, so only the freeze is at work.
    let sim = start(10).await;
    let fg = sim.fortigate("fw");
    let source = ip(41);
    let endpoints = Endpoints::new(DeviceMetrics::default());
    let tenant_a = connection(&sim, "tenant-a/fw", "wrong-key-a", source, 10);
    let tenant_b = connection(&sim, "tenant-b/fw", "wrong-key-b", source, 10);
    let good = connection(&sim, "tenant-c/fw", KEY, source, 10);
    let mut failures_seen = Vec::new();
    // A minute of reconciles, alternating a and b, every 5 s.
    for round in 0..=12 {
        for (tenant, config) in [("a", &tenant_a), ("b", &tenant_b)] {
            let reason = reconcile(&endpoints, config).await.unwrap_err().reason();
            let expected = if round == 0 {
                "Unauthorized"
            } else {
                "CredentialFrozen"
            };
            assert_eq!(reason, expected, "tenant {tenant}, round {round}");
            failures_seen.push(fg.auth_failures_from(source));
        }
        reconcile(&endpoints, &good)
            .await
            .unwrap_or_else(|e| panic!("the good key works in round {round}: {e}"));
        skip(Duration::from_secs(5)).await;
    }
    // One failed login for a's key, one for b's, then never another.
    assert_eq!(failures_seen[..2], [1, 2]);
    assert!(
        failures_seen[2..].iter().all(|&n| n == 2),
        "{failures_seen:?}"
    );
    assert_eq!(fg.count_status_from(source, 401), 2);
    assert_eq!(fg.count_status_from(source, 200), 13, "every good read");
    assert_eq!(fg.count_from(source), 15, "nothing else reached the device");
    assert_eq!(fg.lockout_remaining(source), None);
}

#[tokio::test]
async fn one_tenants_wrong_keys_never_lock_the_device_out_nor_stop_anothers_good_key() {
    let sim = start(3).await;
    let fg = sim.fortigate("fw");
    let source = ip(42);
    let endpoints = Endpoints::new(DeviceMetrics::default());
    // Namespace A has been working; namespace B then adds four connections with wrong keys.
    let good = connection(&sim, "tenant-a/fw", KEY, source, 3);
    reconcile(&endpoints, &good).await.expect("a works");
    let wrong: Vec<EndpointConfig> = (0..4)
        .map(|i| {
            connection(
                &sim,
                &format!("tenant-b/fw-{i}"),
                &format!("wrong-{i}"),
                source,
                3,
            )
        })
        .collect();
    // Three minutes of reconciles of all five connections, every 10 s. Threshold 3 leaves
    // two failures per minute: one for a key never tried, one kept for the good key.
    let mut new_failures = Vec::new();
    for round in 0..=18 {
        let before = fg.auth_failures_from(source);
        for (i, config) in wrong.iter().enumerate() {
            let sent_before = fg.count_from(source);
            let e = reconcile(&endpoints, config).await.unwrap_err();
            let sent = fg.count_from(source) - sent_before;
            // Key i gets its one trial when the window of the previous failure has passed.
            let expected = match (round / 6, round % 6) {
                (tried, 0) if tried == i => "Unauthorized",
                (tried, _) if tried >= i => "CredentialFrozen",
                _ => "AuthBudgetExhausted",
            };
            assert_eq!(e.reason(), expected, "key {i}, round {round}: {e}");
            assert_eq!(
                sent,
                usize::from(expected == "Unauthorized"),
                "key {i}, round {round}"
            );
            if expected == "AuthBudgetExhausted" {
                assert_budget_spent(&e, &config.name, round);
            }
        }
        new_failures.push(fg.auth_failures_from(source) - before);
        assert_eq!(fg.lockout_remaining(source), None, "round {round}");
        reconcile(&endpoints, &good)
            .await
            .unwrap_or_else(|e| panic!("the good key works in round {round}: {e}"));
        skip(Duration::from_secs(10)).await;
    }
    // At most one failed login per minute from this source: never near the threshold of 3.
    let expected: Vec<usize> = (0..=18).map(|r| usize::from(r % 6 == 0)).collect();
    assert_eq!(new_failures, expected);
    assert_eq!(fg.auth_failures_from(source), 4, "one per wrong key");
    assert_eq!(fg.count_status_from(source, 429), 0, "never locked out");
    assert_eq!(fg.count_status_from(source, 200), 20, "every good read");
}

/// The local refusal says what is spent, whose connection asked, and when it frees up.
fn assert_budget_spent(e: &DeviceError, connection: &str, round: usize) {
    let message = e.to_string();
    assert!(message.starts_with(connection), "{message}");
    assert!(
        !message.contains("tenant-a"),
        "no other tenant's name: {message}"
    );
    assert!(
        message.contains("failed-login budget of this device and source address is spent"),
        "{message}"
    );
    assert!(message.contains("frees up in"), "{message}");
    // The last failure was at the start of this minute; it leaves the window at its end.
    let left = Duration::from_secs(60 - 10 * (round as u64 % 6));
    let retry = e.retry_after().expect("retry_after");
    assert!(
        retry <= left && retry > left - Duration::from_secs(1),
        "round {round}: frees up in {retry:?}, expected about {left:?}"
    );
    assert!(
        e.remedy().contains("failed-login budget is spent"),
        "{}",
        e.remedy()
    );
    assert_eq!(e.report().reason, "AuthBudgetExhausted");
}
