//! Lockout promises across connections and tenants, through `Endpoints` as the controller uses
//! it: a refused key stays refused per credential whatever other connections do.

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
    let fg: FortiGateScenario = serde_yaml::from_str(&format!(
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
