//! Requests/s through the FortiOS client and its Guard against the simulator, next to bare
//! reqwest on the same endpoint: the Guard's overhead. Run: `cargo bench --bench guard_overhead`.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use fortisync::device::fortios::FortiOsClient;
use fortisync::device::{Credentials, DeviceMetrics, Guard, LockoutPolicy, TransportConfig};
use fortisync::sim::{Scenario, Simulator};

const WORKERS: usize = 8;
const RUN: Duration = Duration::from_secs(3);

async fn run<F, Fut>(label: &str, op: F)
where
    F: Fn() -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = bool> + Send,
{
    let ok = Arc::new(AtomicU64::new(0));
    let op = Arc::new(op);
    let started = Instant::now();
    let tasks: Vec<_> = (0..WORKERS)
        .map(|_| {
            let (ok, op) = (ok.clone(), op.clone());
            tokio::spawn(async move {
                while started.elapsed() < RUN {
                    if op().await {
                        ok.fetch_add(1, Ordering::Relaxed);
                    }
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.expect("worker");
    }
    let n = ok.load(Ordering::Relaxed) as f64;
    println!(
        "{label:<44} {:>9.0} req/s",
        n / started.elapsed().as_secs_f64()
    );
}

#[tokio::main]
async fn main() {
    let scenario = Scenario::from_yaml(
        "fortigates:\n  - name: fw\n    api_users: [{name: b, key: bench-key, trusthosts: [\"127.0.0.0/8\"]}]\n    objects: {root: {addresses: [{name: a1, subnet: 10.0.0.1/32}]}}\n",
    )
    .expect("scenario");
    let sim = Simulator::start(scenario).await.expect("simulator");
    let fg = sim.fortigate("fw");
    let ca = fg.ca_pem().expect("ca").to_string();
    let url = format!("{}/api/v2/cmdb/firewall/address/a1?vdom=root", fg.url());
    let bare = reqwest::Client::builder()
        .use_rustls_tls()
        .add_root_certificate(reqwest::Certificate::from_pem(ca.as_bytes()).expect("pem"))
        .build()
        .expect("client");
    run("bare reqwest GET (no guard, no parsing)", move || {
        let (c, u) = (bare.clone(), url.clone());
        async move {
            c.get(u)
                .bearer_auth("bench-key")
                .send()
                .await
                .is_ok_and(|r| r.status().is_success())
        }
    })
    .await;
    for limit in [4usize, 8] {
        let guard = Arc::new(Guard::new(
            "fw",
            LockoutPolicy::default(),
            limit,
            DeviceMetrics::default(),
        ));
        let transport = TransportConfig {
            ca_bundle_pem: Some(ca.clone()),
            ..TransportConfig::default()
        };
        let client = Arc::new(
            FortiOsClient::new(
                "fw",
                fg.url(),
                "root",
                Credentials::Token("bench-key".into()),
                &transport,
                guard,
            )
            .expect("client"),
        );
        run(
            &format!("FortiOsClient::get through the Guard (limit {limit})"),
            move || {
                let c = client.clone();
                async move {
                    c.get("firewall/address", "a1")
                        .await
                        .is_ok_and(|o| o.is_some())
                }
            },
        )
        .await;
    }
    println!(
        "({WORKERS} concurrent callers, {} s each, HTTPS on loopback)",
        RUN.as_secs()
    );
}
