//! The EDL server at FortiGate scale: 300,000 entries (the 7.4.4+ IP-address entry limit).
//! Prints figures against the aims (body ≤ 50 ms, 304 ≤ 1 ms, ≤ 64 B RSS per entry); asserts
//! nothing. Run with `cargo bench --bench edl`.

use std::time::{Duration, Instant};

use fortisync::edl::{self, BasicCredentials, EdlMetrics, Entry, ListSpec, Lists};
use jiff::{SignedDuration, Timestamp};
use prometheus_client::registry::Registry;

const ENTRIES: usize = 300_000;
const FULL_GETS: usize = 200;
const NOT_MODIFIED: usize = 2_000;

fn rss_bytes() -> usize {
    // statm field 2 is resident pages; 4 KiB pages on the x86-64/arm64 Linux this runs on.
    let statm = std::fs::read_to_string("/proc/self/statm").expect("/proc/self/statm");
    let pages: usize = statm.split_whitespace().nth(1).unwrap().parse().unwrap();
    pages * 4096
}

fn entries() -> Vec<Entry> {
    let soon = Timestamp::now() + SignedDuration::from_hours(1);
    (0..ENTRIES)
        .map(|i| Entry {
            // Distinct addresses; one in ten expires (a time-boxed grant).
            text: format!("10.{}.{}.{}", (i >> 16) & 255, (i >> 8) & 255, i & 255),
            expires_at: (i % 10 == 3).then_some(soon),
        })
        .collect()
}

fn spec(entries: Vec<Entry>) -> ListSpec {
    ListSpec {
        entries,
        credentials: Some(BasicCredentials {
            username: "fgt".into(),
            password: "bench-token".into(),
        }),
    }
}

fn percentiles(mut samples: Vec<Duration>) -> (Duration, Duration) {
    samples.sort();
    let at = |q: f64| samples[((samples.len() - 1) as f64 * q).round() as usize];
    (at(0.50), at(0.99))
}

fn verdict(met: bool) -> &'static str {
    if met { "met" } else { "MISSED" }
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(run());
}

async fn run() {
    let lists = Lists::new(EdlMetrics::register(&mut Registry::default()));

    // Memory first, before timing runs leave freed blocks in the allocator.
    let before = rss_bytes();
    let input = entries();
    let with_input = rss_bytes();
    lists.set("bench", "list", spec(input)); // consumes and drops the Vec<Entry>
    let after = rss_bytes();
    let snap = lists.snapshot("bench", "list").unwrap();
    let served = snap.entries;
    println!(
        "edl bench: {ENTRIES} entries in, {served} served, body {} bytes",
        snap.body.len()
    );
    println!(
        "  input Vec<Entry> (caller's, dropped by set): {:.1} B/entry RSS",
        (with_input - before) as f64 / ENTRIES as f64
    );
    let per_entry = after.saturating_sub(before) as f64 / ENTRIES as f64;
    println!(
        "  retained RSS after set: {per_entry:.1} B/entry  [aim <= 64: {}]",
        verdict(per_entry <= 64.0)
    );
    println!(
        "  retained by the list (body + expiry index + etag): {:.1} B/entry",
        snap.retained_bytes as f64 / ENTRIES as f64
    );

    let mut builds = Vec::new();
    for _ in 0..5 {
        let input = entries();
        let t = Instant::now();
        lists.set("bench", "list", spec(input));
        builds.push(t.elapsed());
    }
    builds.sort();
    println!(
        "  build body (set): min {:.1} ms, median {:.1} ms over {}",
        builds[0].as_secs_f64() * 1e3,
        builds[builds.len() / 2].as_secs_f64() * 1e3,
        builds.len()
    );

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(edl::serve_on(listener, lists.clone(), None, async {
        let _ = rx.await;
    }));
    let client = reqwest::Client::builder().no_proxy().build().unwrap();
    let url = format!("http://{addr}/edl/bench/list");
    let etag = lists.snapshot("bench", "list").unwrap().etag;

    let mut full = Vec::with_capacity(FULL_GETS);
    for _ in 0..FULL_GETS {
        let t = Instant::now();
        let resp = client
            .get(&url)
            .basic_auth("fgt", Some("bench-token"))
            .send()
            .await
            .unwrap();
        if resp.status() != 200 {
            println!("  full GET answered {}; stopping", resp.status());
            return;
        }
        let body = resp.bytes().await.unwrap();
        full.push(t.elapsed());
        std::hint::black_box(body);
    }
    let (p50, p99) = percentiles(full);
    println!(
        "  full GET ({FULL_GETS}x, loopback, body read): p50 {:.2} ms, p99 {:.2} ms  [aim <= 50 ms: {}]",
        p50.as_secs_f64() * 1e3,
        p99.as_secs_f64() * 1e3,
        verdict(p99 <= Duration::from_millis(50))
    );

    let mut cached = Vec::with_capacity(NOT_MODIFIED);
    for _ in 0..NOT_MODIFIED {
        let t = Instant::now();
        let resp = client
            .get(&url)
            .basic_auth("fgt", Some("bench-token"))
            .header("if-none-match", &etag)
            .send()
            .await
            .unwrap();
        if resp.status() != 304 {
            println!("  conditional GET answered {}; stopping", resp.status());
            return;
        }
        cached.push(t.elapsed());
    }
    let (p50, p99) = percentiles(cached);
    println!(
        "  304 ({NOT_MODIFIED}x): p50 {:.3} ms, p99 {:.3} ms  [aim <= 1 ms: {}]",
        p50.as_secs_f64() * 1e3,
        p99.as_secs_f64() * 1e3,
        verdict(p99 <= Duration::from_millis(1))
    );
    let _ = stop.send(());
}
