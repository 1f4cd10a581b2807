//! TrustedHost figures against a real kube-apiserver (etcd + kube-apiserver on loopback, as the
//! e2e tests start them) and the simulator, with the controller in-process: grant (create the
//! resource) → the slot holds the address on the device, and revoke (delete it, Delete policy)
//! → the slot holds the unused value again; p50/p99 for a FortiManager admin and a FortiGate
//! admin. Aim: p99 ≤ 50 ms on loopback.
//!
//! Run: `FORTISYNC_CONTROL_PLANE_BIN=<dir with etcd, kube-apiserver, kubectl> cargo bench
//! --bench trustedhost`. Size: `FORTISYNC_BENCH_GRANTS` (30 per target).
//!
//! This is a benchmark, not a test: it prints figures next to their aim and fails (non-zero
//! exit) only when it cannot measure (no control plane, a timeout).

#[path = "../tests/e2e/support/mod.rs"]
#[allow(dead_code)]
mod support;

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::process::ExitCode;
use std::sync::Arc;

use fortisync::api::TrustedHost;
use fortisync::reconcile::context::Context;
use fortisync::reconcile::controller::{self, Scope};
use fortisync::sim::{Scenario, Simulator};
use k8s_openapi::api::core::v1::{Namespace, Secret};
use kube::api::{ObjectMeta, PostParams};
use kube::{Api, Client};
use prometheus_client::registry::Registry;
use serde_json::json;
use std::time::Duration;
use support::kinds::{self, Grantee};

const FMG_KEY: &str = "bench-fmg-key-0000000000000001";
const FW_KEY: &str = "bench-fw-key-00000000000000001";

fn main() -> ExitCode {
    let cp = match support::bench::start("trustedhost") {
        Ok(cp) => cp,
        Err(code) => return code,
    };
    if std::env::var("RUST_LOG").is_ok() {
        tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .init();
    }
    support::bench::runtime().block_on(async { bench(cp.client()).await });
    ExitCode::SUCCESS
}

fn scenario() -> Scenario {
    let slots = "[127.0.0.1, 255.255.255.255], ".repeat(9);
    let yaml = format!(
        "fortimanagers:\n  - name: fmg\n    admins:\n      - {{userid: fortisync, user_type: api, rpc_permit: read-write, profile: Super_User, api_key: {FMG_KEY}, trusthosts: [[127.0.0.1, 255.255.255.255]], trusthosts6: [\"::1/128\"]}}\n      - {{userid: alice, password: alice-pw, rpc_permit: read-write, profile: Standard_User, trusthosts6: [\"::1/128\"], trusthosts: [{}]}}\nfortigates:\n  - name: fw\n    version: \"7.4.3\"\n    api_users: [{{name: fortisync, key: {FW_KEY}, trusthosts: [\"127.0.0.0/8\"]}}]\n    admins: [{{name: ops, password: ops-pw, trusthosts: [\"127.0.0.1/32\"]}}]\n",
        slots.trim_end_matches(", ")
    );
    Scenario::from_yaml(&yaml).expect("scenario")
}

async fn bench(client: Client) {
    let grants = std::env::var("FORTISYNC_BENCH_GRANTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(30usize);
    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    println!(
        "trustedhost bench: {cpus} CPU(s), {} build, everything on loopback",
        if cfg!(debug_assertions) {
            "debug"
        } else {
            "release"
        }
    );
    let sim = Simulator::start(scenario()).await.expect("simulator");
    let ns = format!("bench-th-{:06}", rand::random::<u32>() % 1_000_000);
    Api::<Namespace>::all(client.clone())
        .create(
            &PostParams::default(),
            &Namespace {
                metadata: ObjectMeta {
                    name: Some(ns.clone()),
                    ..Default::default()
                },
                ..Default::default()
            },
        )
        .await
        .expect("namespace");
    let fmg = sim.fortimanager("fmg");
    let fg = sim.fortigate("fw");
    for (kind, name, url, key, ca, extra) in [
        (
            "FortiManager",
            "fmg",
            fmg.url(),
            FMG_KEY,
            fmg.ca_pem(),
            json!({"adom": "root"}),
        ),
        ("FortiGate", "fw", fg.url(), FW_KEY, fg.ca_pem(), json!({})),
    ] {
        let secret = Secret {
            metadata: ObjectMeta {
                name: Some(format!("{name}-token")),
                ..Default::default()
            },
            string_data: Some(BTreeMap::from([
                ("token".to_string(), key.to_string()),
                ("ca.crt".to_string(), ca.expect("ca").to_string()),
            ])),
            ..Secret::default()
        };
        Api::<Secret>::namespaced(client.clone(), &ns)
            .create(&PostParams::default(), &secret)
            .await
            .expect("secret");
        let mut spec = json!({
            "url": url,
            "credentialsSecretRef": {"name": format!("{name}-token"), "tokenKey": "token"},
            "tls": {"caBundleSecretRef": {"name": format!("{name}-token"), "key": "ca.crt"}},
            "resyncInterval": "10m",
        });
        spec.as_object_mut()
            .expect("spec")
            .extend(extra.as_object().expect("extra").clone());
        let body = json!({"apiVersion": "fortisync.dev/v1alpha1", "kind": kind, "metadata": {"name": name}, "spec": spec});
        let api: Api<kube::api::DynamicObject> = Api::namespaced_with(
            client.clone(),
            &ns,
            &kube::api::ApiResource::from_gvk(&kube::api::GroupVersionKind::gvk(
                "fortisync.dev",
                "v1alpha1",
                kind,
            )),
        );
        api.create(
            &PostParams::default(),
            &serde_json::from_value(body).expect("connection"),
        )
        .await
        .expect("connection");
    }
    let mut registry = Registry::default();
    let ctx = Arc::new(Context::new(client.clone(), &mut registry));
    let controller = tokio::spawn(controller::run(ctx, Scope::namespace(ns.clone())));
    let api: Api<TrustedHost> = Api::namespaced(client.clone(), &ns);

    let fmg_control = fmg.control().clone();
    let fmg_slot = move || fmg_control.admin("alice").map(|u| u.trusthost_slots()[9]);
    let unused = [Ipv4Addr::BROADCAST; 2];
    let fmg_admin = Grantee {
        kind: "FortiManager",
        target: "fmg",
        user: "alice",
    };
    let (open, closed) = kinds::grant_rounds(&api, grants, &fmg_admin, |addr| {
        let want = [addr, Ipv4Addr::BROADCAST];
        let now = fmg_slot();
        (now == Some(want), now == Some(unused))
    })
    .await;
    report("FortiManager admin", &open, &closed);

    let fg_admin = Grantee {
        kind: "FortiGate",
        target: "fw",
        user: "ops",
    };
    let (open, closed) = kinds::grant_rounds(&api, grants, &fg_admin, |addr| {
        kinds::fortigate_slot_state(fg, "ops", addr)
    })
    .await;
    report("FortiGate admin", &open, &closed);
    controller.abort();
    let _ = controller.await;
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn report(what: &str, open: &[Duration], closed: &[Duration]) {
    for (label, v) in [
        ("grant → slot open", open),
        ("revoke → slot closed", closed),
    ] {
        let mut v = v.to_vec();
        v.sort();
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        println!(
            "{what}: {label}: p50 {:.1} ms, p99 {:.1} ms over {} (aim p99 ≤ 50 ms)",
            ms(percentile(&v, 0.5)),
            ms(percentile(&v, 0.99)),
            v.len()
        );
    }
}
