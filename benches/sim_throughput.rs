//! Simulator throughput on loopback: simple GETs/s and writes/s, so the simulator is never the
//! bottleneck of fortisync's own benchmarks. Run: `cargo bench --bench sim_throughput`.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use fortisync::sim::{Scenario, Simulator};
use serde_json::json;

const CLIENTS: usize = 16;
const RUN: Duration = Duration::from_secs(3);

fn scenario(tls: bool) -> Scenario {
    let yaml = format!(
        "fortigates:\n  - name: fw\n    tls: {tls}\n    api_users:\n      - {{name: bench, key: bench-token, trusthosts: [\"127.0.0.0/8\"]}}\n    objects:\n      root:\n        addresses: [{{name: a1, subnet: 10.0.0.1/32}}]\n"
    );
    Scenario::from_yaml(&yaml).expect("scenario")
}

async fn measure<F, Fut>(label: &str, op: F)
where
    F: Fn(reqwest::Client, u64) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = bool> + Send,
{
    let _ = label;
    let done = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let op = Arc::new(op);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for worker in 0..CLIENTS {
        let (done, failed, op) = (done.clone(), failed.clone(), op.clone());
        tasks.push(tokio::spawn(async move {
            let client = reqwest::Client::builder()
                .danger_accept_invalid_certs(true)
                .build()
                .expect("client");
            let mut i = worker as u64 * 1_000_000;
            while started.elapsed() < RUN {
                if op(client.clone(), i).await {
                    done.fetch_add(1, Ordering::Relaxed);
                } else {
                    failed.fetch_add(1, Ordering::Relaxed);
                }
                i += 1;
            }
        }));
    }
    for t in tasks {
        t.await.expect("worker");
    }
    let secs = started.elapsed().as_secs_f64();
    let n = done.load(Ordering::Relaxed);
    println!(
        "{label:<40} {:>9.0} req/s  ({n} ok, {} failed, {CLIENTS} clients, {secs:.1} s)",
        n as f64 / secs,
        failed.load(Ordering::Relaxed)
    );
}

#[tokio::main]
async fn main() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    for tls in [false, true] {
        let sim = Simulator::start(scenario(tls)).await.expect("simulator");
        let base = sim.fortigate("fw").url().to_string();
        let proto = if tls { "https" } else { "http" };
        let get_url = format!("{base}/api/v2/cmdb/firewall/address/a1");
        measure(
            &format!("GET firewall/address/<name> ({proto})"),
            move |c, _| {
                let url = get_url.clone();
                async move {
                    c.get(url)
                        .bearer_auth("bench-token")
                        .send()
                        .await
                        .is_ok_and(|r| r.status().is_success())
                }
            },
        )
        .await;
        let post_url = format!("{base}/api/v2/cmdb/firewall/address");
        measure(&format!("POST+DELETE firewall/address ({proto})"), move |c, i| {
            let url = post_url.clone();
            async move {
                let name = format!("b{i}");
                let body = json!({"name": name, "subnet": format!("10.{}.{}.{}/32", (i >> 16) & 255, (i >> 8) & 255, i & 255)});
                let created = c.post(&url).bearer_auth("bench-token").json(&body).send().await.is_ok_and(|r| r.status().is_success());
                let deleted = c.delete(format!("{url}/{name}")).bearer_auth("bench-token").send().await.is_ok_and(|r| r.status().is_success());
                created && deleted
            }
        })
        .await;
        sim.shutdown().await;
    }
    println!("(each POST+DELETE pair counts once: writes/s is twice the figure)");
}
