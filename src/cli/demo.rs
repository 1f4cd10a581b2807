//! `fortisync demo`: the README's first command. Starts the built-in simulator with the
//! example estate, converges `examples/fortigate.yaml` + `examples/addressgroups.yaml` the way
//! `fortisync apply` does (no cluster needed), shows the plan, the writes and the device's
//! resulting groups, pushes `examples/externalconnectors.yaml` and repairs a hand edit of it,
//! opens a trusted-host slot of `examples/trustedhosts.yaml`,
//! then plays one failure live: a regenerated API key. Leaves nothing running.

use std::net::IpAddr;
use std::process::ExitCode;
use std::time::Instant;

use k8s_openapi::api::core::v1::Secret;

use super::connector;
use super::load::Manifests;
use super::render;
use super::runs::Runs;
use super::standalone::{CredentialSources, GroupRun, Runner};
use super::trustedhost;
use crate::reconcile::addressgroup::plan::Op;
use crate::sim::fortios::{FortiGateHandle, Table};
use crate::sim::{Scenario, Simulator};

/// Arguments of `fortisync demo`.
#[derive(Debug, clap::Args)]
pub struct DemoArgs {
    /// When to color the output.
    #[arg(long, value_enum, default_value = "auto")]
    pub color: render::ColorChoice,
}

const SCENARIO: &str = include_str!("../../examples/sim-scenario.yaml");
const FORTIGATE: &str = include_str!("../../examples/fortigate.yaml");
const GROUPS: &str = include_str!("../../examples/addressgroups.yaml");
const CONNECTORS: &str = include_str!("../../examples/externalconnectors.yaml");
const FORTIMANAGER: &str = include_str!("../../examples/fortimanager.yaml");
const TRUSTED_HOSTS: &str = include_str!("../../examples/trustedhosts.yaml");
const DEVICE: &str = "fw-edge-1";
const API_USER: &str = "fortisync";

/// Runs the demo.
pub async fn run(args: DemoArgs) -> ExitCode {
    match demo(args.color.enabled()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("fortisync demo: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn step(color: bool, n: u32, text: &str) {
    let line = format!("\n{n}. {text}");
    if color {
        println!("\x1b[1;36m{line}\x1b[0m");
    } else {
        println!("{line}");
    }
}

async fn demo(color: bool) -> anyhow::Result<()> {
    let started = Instant::now();
    println!(
        "fortisync demo: the example manifests against the built-in simulator, no cluster needed."
    );

    // Free ports instead of the scenario's fixed ones, so the demo never collides with a
    // `fortisync sim` left running.
    let mut scenario = Scenario::from_yaml(SCENARIO)?;
    for fg in &mut scenario.fortigates {
        fg.port = 0;
    }
    for fmg in &mut scenario.fortimanagers {
        fmg.port = 0;
    }
    scenario.admin.port = 0;
    let sim = Simulator::start(scenario).await?;
    let fg = sim.fortigate(DEVICE);
    step(color, 1, "The simulator plays a FortiGate");
    println!(
        "   {DEVICE}: FortiOS {} at {} (the manifests say https://127.0.0.1:18443; the demo points them here)",
        fg.version(),
        fg.url()
    );
    println!("   lockout: 3 failed logins from one IP lock it out for 60 s, doubling on repeats");
    print_groups(fg, "   before:");

    let mut manifests = Manifests::default();
    manifests.add(FORTIGATE, "examples/fortigate.yaml", "default")?;
    manifests.add(GROUPS, "examples/addressgroups.yaml", "default")?;
    for f in &mut manifests.fortigates {
        f.spec.connection.url = fg.url().to_string();
    }
    // The simulator's self-signed CA, as `kubectl create secret generic fw-edge-1-tls
    // --from-file=ca.crt` would hold it: TLS stays verified.
    manifests.secrets.push(ca_secret(fg));

    let runner = Runner::new(CredentialSources::default());
    step(
        color,
        2,
        "Plan: what `fortisync plan -f examples/` prints (reads only, nothing changes yet)",
    );
    let planned = runner
        .run_all(&manifests, false, &mut |_: &str, _: &Op| {})
        .await;
    show(&planned, false, color);
    fail_on_error(&planned)?;

    step(
        color,
        3,
        "Apply: addresses first, then group membership, then deletions",
    );
    let mut writes = 0;
    let t = Instant::now();
    let applied = runner
        .run_all(&manifests, true, &mut |device: &str, op: &Op| {
            writes += 1;
            println!("   {device}: {op}");
        })
        .await;
    let elapsed = t.elapsed();
    fail_on_error(&applied)?;
    println!(
        "   {writes} device write(s) in {:.0} ms",
        elapsed.as_secs_f64() * 1000.0
    );

    step(color, 4, "The device now holds");
    print_groups(fg, "  ");
    print_objects(fg);

    step(
        color,
        5,
        "Converged: planning again finds nothing to do (a resync costs two reads per group)",
    );
    fg.clear_requests();
    let again = runner
        .run_all(&manifests, false, &mut |_: &str, _: &Op| {})
        .await;
    show(&again, false, color);
    println!(
        "   device requests for this check: {} (all reads)",
        fg.requests().len()
    );

    connectors(&runner, &mut manifests, fg, color).await?;
    trusted_host(&runner, &sim, color).await?;

    step(
        color,
        8,
        "A failure, live: an admin regenerates the API key on the device; the Secret still has the old one",
    );
    let new_key = "fortisync-regenerated-key-000001";
    fg.set_api_key(API_USER, Some(new_key));
    fg.clear_requests();
    let loopback = IpAddr::from([127, 0, 0, 1]);
    let before = fg.auth_failures_from(loopback);
    let mut last = Vec::new();
    for attempt in 1..=5 {
        last = runner
            .run_all(&manifests, false, &mut |_: &str, _: &Op| {})
            .await;
        if attempt == 1 {
            show(&last[..1], false, color);
        }
    }
    let failures = fg.auth_failures_from(loopback) - before;
    let reason = last
        .first()
        .and_then(|r| r.result.as_ref().err())
        .map(|e| e.reason.clone())
        .unwrap_or_default();
    println!("   5 reconcile passes over both groups later:");
    println!(
        "     failed logins the device saw: {failures} (its lockout threshold is 3): the key was tried once, then frozen"
    );
    println!(
        "     locked out: {}",
        match fg.lockout_remaining(loopback) {
            Some(d) => format!("yes, for {} s", d.as_secs()),
            None => "no — every other admin and tool behind this IP keeps working".to_string(),
        }
    );
    println!(
        "     a cluster shows it as: Ready=False reason={reason}, the remedy above, and a Warning event"
    );
    anyhow::ensure!(
        failures == 1,
        "expected exactly one failed login, the device saw {failures}"
    );

    println!("   the admin puts the new key in the Secret; fortisync uses it at once:");
    for s in &mut manifests.secrets {
        if s.metadata.name.as_deref() == Some("fw-edge-1-token") {
            s.string_data = Some([("token".to_string(), new_key.to_string())].into());
        }
    }
    let fixed = runner
        .run_all(&manifests, false, &mut |_: &str, _: &Op| {})
        .await;
    fail_on_error(&fixed)?;
    print!(
        "{}",
        indent(&render::summary(&Runs::of_groups(fixed.clone()), false))
    );

    sim.shutdown().await;
    println!(
        "\ndemo finished in {:.1} s; the simulator is stopped and nothing is left running.",
        started.elapsed().as_secs_f64()
    );
    println!(
        "next: `fortisync plan -f examples/` against your own device, `fortisync doctor` when it refuses you."
    );
    Ok(())
}

/// Step 6: a list too large for a group, pushed in one call; then drift made by hand, repaired.
async fn connectors(
    runner: &Runner,
    manifests: &mut Manifests,
    fg: &FortiGateHandle,
    color: bool,
) -> anyhow::Result<()> {
    step(
        color,
        6,
        "An IP list (examples/externalconnectors.yaml): ExternalConnector pushes it with FortiOS's dynamic API",
    );
    manifests.add(CONNECTORS, "examples/externalconnectors.yaml", "default")?;
    let list = manifests
        .external_connectors
        .first()
        .cloned()
        .ok_or_else(|| anyhow::anyhow!("examples/externalconnectors.yaml holds no connector"))?;
    fg.clear_requests();
    let t = Instant::now();
    let pushed = runner.run_connector(manifests, &list, true).await;
    let elapsed = t.elapsed();
    print!("{}", indent(&connector::render(&pushed, true, color)));
    if let Err(e) = &pushed.result {
        anyhow::bail!(
            "{}: {}: {} (remedy: {})",
            pushed.resource,
            e.reason,
            e.message,
            e.remedy
        );
    }
    let calls = fg.requests().iter().filter(|r| r.method != "GET").count();
    let mut held = fg.feed_entries("root", &list.spec.resource_name);
    held.sort();
    println!(
        "   {} entries on the device after {calls} write call(s) in {:.0} ms: {}",
        held.len(),
        elapsed.as_secs_f64() * 1000.0,
        held.join(", ")
    );
    println!("   an admin removes 192.0.2.10 on the device by hand; the next pass puts it back:");
    // As another tool on the device would: its own dynamic call.
    let (status, _) = fg.dispatch_internal(
        "POST",
        "/api/v2/monitor/system/external-resource/dynamic?vdom=root",
        Some(serde_json::json!({"commands": [{
            "name": list.spec.resource_name, "command": "remove", "entries": ["192.0.2.10"],
        }]})),
    );
    anyhow::ensure!(
        status == 200,
        "the simulated hand edit failed: HTTP {status}"
    );
    let repaired = runner.run_connector(manifests, &list, true).await;
    print!("{}", indent(&connector::render(&repaired, true, color)));
    let back = fg
        .feed_entries("root", &list.spec.resource_name)
        .iter()
        .any(|e| e == "192.0.2.10");
    anyhow::ensure!(back, "the entry removed by hand was not restored");
    Ok(())
}

/// Step 7: slot 10 of the FortiManager admin alice opened for one address, and a grant to
/// everyone refused before any request.
async fn trusted_host(runner: &Runner, sim: &Simulator, color: bool) -> anyhow::Result<()> {
    step(
        color,
        7,
        "A trusted-host slot (examples/trustedhosts.yaml): the FortiManager admin alice, slot 10, for one address",
    );
    let fmg = sim.fortimanager("fmg");
    let mut manifests = Manifests::default();
    manifests.add(FORTIMANAGER, "examples/fortimanager.yaml", "default")?;
    manifests.add(TRUSTED_HOSTS, "examples/trustedhosts.yaml", "default")?;
    for f in &mut manifests.fortimanagers {
        f.spec.connection.url = fmg.url().to_string();
    }
    manifests.secrets.push(named_ca("fmg-tls", fmg.ca_pem()));
    let alice = manifests
        .trusted_hosts
        .iter()
        .find(|t| t.spec.user == "alice")
        .cloned()
        .ok_or_else(|| anyhow::anyhow!("examples/trustedhosts.yaml holds no grant for alice"))?;
    let granted = runner.run_trusted_host(&manifests, &alice, true).await;
    print!("{}", indent(&trustedhost::render(&granted, true, color)));
    if let Err(e) = &granted.result {
        anyhow::bail!(
            "{}: {}: {} (remedy: {})",
            granted.resource,
            e.reason,
            e.message,
            e.remedy
        );
    }
    let mut everyone = alice.clone();
    everyone.spec.address = Some("0.0.0.0/0".into());
    let refused = crate::api::validate::validate_trustedhost(&everyone.spec);
    println!("   the same grant for 0.0.0.0/0 never reaches the device: admission refuses it:");
    for problem in &refused {
        println!("     ! {problem}");
    }
    anyhow::ensure!(!refused.is_empty(), "an allow-all grant was admitted");
    Ok(())
}

fn named_ca(name: &str, pem: Option<&str>) -> Secret {
    Secret {
        metadata: kube::api::ObjectMeta {
            name: Some(name.into()),
            namespace: Some("default".into()),
            ..Default::default()
        },
        string_data: Some([("ca.crt".to_string(), pem.unwrap_or_default().to_string())].into()),
        ..Secret::default()
    }
}

fn ca_secret(fg: &FortiGateHandle) -> Secret {
    named_ca(&format!("{DEVICE}-tls"), fg.ca_pem())
}

fn show(runs: &[GroupRun], applied: bool, color: bool) {
    for r in runs {
        print!("{}", indent(&render::resource(r, applied, color)));
    }
    print!(
        "{}",
        indent(&render::summary(&Runs::of_groups(runs.to_vec()), applied))
    );
}

fn indent(text: &str) -> String {
    text.lines()
        .map(|l| format!("   {l}\n"))
        .collect::<String>()
        .trim_end()
        .to_string()
        + "\n"
}

fn fail_on_error(runs: &[GroupRun]) -> anyhow::Result<()> {
    for r in runs {
        if let Err(e) = &r.result {
            anyhow::bail!(
                "{}: {}: {} (remedy: {})",
                r.resource,
                e.reason,
                e.message,
                e.remedy
            );
        }
    }
    Ok(())
}

fn print_groups(fg: &FortiGateHandle, label: &str) {
    for (table, family) in [(Table::Addrgrp, "IPv4"), (Table::Addrgrp6, "IPv6")] {
        for g in fg.objects("root", table) {
            let name = g["name"].as_str().unwrap_or_default();
            let members = fg.group_members("root", table, name).unwrap_or_default();
            println!("{label} {family} group {name:<16} [{}]", members.join(", "));
        }
    }
}

fn print_objects(fg: &FortiGateHandle) {
    for table in [Table::Address, Table::Address6] {
        for o in fg.objects("root", table) {
            let name = o["name"].as_str().unwrap_or_default();
            let value = match o["type"].as_str() {
                Some("iprange") => format!(
                    "{}-{}",
                    o["start-ip"].as_str().unwrap_or_default(),
                    o["end-ip"].as_str().unwrap_or_default()
                ),
                _ => o["subnet"]
                    .as_str()
                    .or(o["ip6"].as_str())
                    .unwrap_or_default()
                    .to_string(),
            };
            println!(
                "   address {name:<32} {value:<34} {:?}",
                o["comment"].as_str().unwrap_or_default()
            );
        }
    }
}
