//! The fleet bench's peer (issue 17): fortisync and Ansible's `fortinet.fortios` collection
//! (`benches/ansible/converge.yml`) each converging the same address objects and one group
//! holding them all on a simulated FortiGate of their own, at the same latency. Requests are
//! counted from each device's log (every request, connection probes and logins included).

use std::path::Path;
use std::time::Instant;

use fortisync::api::AddressGroup;
use fortisync::sim::Simulator;
use fortisync::sim::fortios::Table;
use kube::Api;
use kube::api::PostParams;
use serde_json::{Value, json};

use super::control_plane::ControlPlane;
use super::fixture::KEY;
use super::fleet::{self, Calls, Figure, FleetRun};

/// The `i`th address of the peer run.
fn address(i: usize) -> String {
    format!("10.100.{}.{}", i / 250, i % 250 + 1)
}

fn every_request(c: &Calls) -> u64 {
    c.reads + c.writes + c.probes
}

/// fortisync's half: one AddressGroup of `count` members, from empty.
async fn ours(cp: &ControlPlane, sim: &Simulator, run: &FleetRun, count: usize) -> Figure {
    let lat = run.latency_ms;
    let fg = sim.fortigate(&format!("peer-ours-{lat}"));
    let client = cp.client();
    let ns = fleet::connected(cp, fg, "10m", &format!("peer-{lat}")).await;
    let _controller = fleet::start(&ns);
    fleet::wait_reachable(&client, &ns).await;
    fleet::latency(fg, lat);
    let members: Vec<Value> = (0..count).map(|i| json!({"address": address(i)})).collect();
    let group: AddressGroup = serde_json::from_value(json!({
        "apiVersion": "fortisync.dev/v1alpha1",
        "kind": "AddressGroup",
        "metadata": {"name": "peer"},
        "spec": {"targetRef": {"kind": "FortiGate", "name": "fw"}, "groupName": "peer", "members": members},
    }))
    .expect("AddressGroup");
    let api = Api::<AddressGroup>::namespaced(client.clone(), &ns);
    fg.clear_requests();
    let started = Instant::now();
    api.create(&PostParams::default(), &group)
        .await
        .expect("create the peer group");
    let ready = fleet::ready_within(&api, 1, run.timeout).await;
    let seconds = started.elapsed().as_secs_f64();
    fleet::quiet(fg).await;
    fg.clear_faults();
    let limit_calls = count as u64 + 1 + 2;
    let calls = Calls::of(&fg.requests());
    Figure {
        scenario: "peer:ours".into(),
        resources: count,
        latency_ms: lat,
        seconds,
        calls,
        api_writes: None,
        limit_calls,
        limit_seconds: fleet::limit_seconds(limit_calls, 3, lat),
        extra: vec![
            ("requests".into(), every_request(&calls) as f64),
            ("ready".into(), if ready.is_ok() { 1.0 } else { 0.0 }),
        ],
    }
}

/// Ansible's half with `playbook` run by `ansible_playbook`; None when it could not run.
async fn ansible(
    cp: &ControlPlane,
    sim: &Simulator,
    run: &FleetRun,
    count: usize,
    ansible_playbook: &Path,
) -> Option<Figure> {
    let lat = run.latency_ms;
    let fg = sim.fortigate(&format!("peer-ansible-{lat}"));
    let port = fg
        .url()
        .rsplit_once(':')
        .map(|(_, p)| p.trim_end_matches('/').to_string())
        .expect("the simulator's port");
    let dir = cp.dir.join(format!("ansible-{lat}"));
    std::fs::create_dir_all(&dir).expect("ansible directory");
    let inventory = dir.join("inventory.ini");
    // The token goes in a file of the bench's own directory, never on a command line.
    std::fs::write(
        &inventory,
        format!(
            "[fortigates]\nfw ansible_host=127.0.0.1 ansible_httpapi_port={port} fortios_access_token={KEY}\n"
        ),
    )
    .expect("inventory");
    let names: Vec<String> = (0..count).map(|i| format!("fs_{}", address(i))).collect();
    let vars = json!({
        "addresses": (0..count)
            .map(|i| json!({"name": names[i], "subnet": format!("{} 255.255.255.255", address(i))}))
            .collect::<Vec<_>>(),
        "group": "peer",
        "members": names.iter().map(|n| json!({"name": n})).collect::<Vec<_>>(),
    });
    let vars_file = dir.join("vars.json");
    std::fs::write(&vars_file, vars.to_string()).expect("vars");
    let playbook = Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/ansible/converge.yml");
    let log = dir.join("ansible.log");
    let out = std::fs::File::create(&log).expect("ansible log");
    fleet::latency(fg, lat);
    fg.clear_requests();
    let started = Instant::now();
    let mut child = tokio::process::Command::new(ansible_playbook)
        .arg("-i")
        .arg(&inventory)
        .arg("-e")
        .arg(format!("@{}", vars_file.display()))
        .arg(&playbook)
        .env("ANSIBLE_HOME", dir.join("home"))
        .env("ANSIBLE_LOCAL_TEMP", dir.join("tmp"))
        .env("ANSIBLE_NOCOLOR", "1")
        .env("ANSIBLE_HOST_KEY_CHECKING", "False")
        // One persistent httpapi connection for the whole play; a loop item may take long on
        // a shared machine.
        .env("ANSIBLE_PERSISTENT_COMMAND_TIMEOUT", "120")
        .stdin(std::process::Stdio::null())
        .stdout(out.try_clone().expect("log"))
        .stderr(out)
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| {
            println!(
                "fleet bench: cannot start {}: {e}",
                ansible_playbook.display()
            )
        })
        .ok()?;
    let status = tokio::time::timeout(run.peer_timeout, child.wait()).await;
    let seconds = started.elapsed().as_secs_f64();
    let finished = match status {
        Ok(Ok(s)) if s.success() => 1.0,
        Ok(_) => {
            println!(
                "fleet bench: ansible-playbook failed; see {}",
                log.display()
            );
            0.0
        }
        Err(_) => {
            let _ = child.kill().await;
            println!(
                "fleet bench: ansible-playbook still running after {:?}; what it did so far is reported",
                run.peer_timeout
            );
            0.0
        }
    };
    fg.clear_faults();
    let snapshot = fg.group_members("root", Table::Addrgrp, "peer");
    let calls = Calls::of(&fg.requests());
    let limit_calls = count as u64 + 1 + 2;
    Some(Figure {
        scenario: "peer:ansible".into(),
        resources: count,
        latency_ms: lat,
        seconds,
        calls,
        api_writes: None,
        limit_calls,
        limit_seconds: fleet::limit_seconds(limit_calls, 3, lat),
        extra: vec![
            ("requests".into(), every_request(&calls) as f64),
            ("finished".into(), finished),
            (
                "group_members".into(),
                snapshot.map_or(0.0, |m| m.len() as f64),
            ),
        ],
    })
}

/// Both halves at `run.latency_ms`, Ansible's with its ratios to fortisync's (wall time and
/// requests); Ansible's is left out when `ansible_playbook` is None.
pub async fn run(
    cp: &ControlPlane,
    sim: &Simulator,
    run: &FleetRun,
    count: usize,
    ansible_playbook: Option<&Path>,
) -> Vec<Figure> {
    let ours = ours(cp, sim, run, count).await;
    let mut out = vec![ours.clone()];
    if let Some(bin) = ansible_playbook
        && let Some(mut theirs) = ansible(cp, sim, run, count, bin).await
    {
        let requests = |f: &Figure| every_request(&f.calls) as f64;
        theirs.extra.push((
            "wall_vs_ours".into(),
            theirs.seconds / ours.seconds.max(1e-9),
        ));
        theirs.extra.push((
            "req_vs_ours".into(),
            requests(&theirs) / requests(&ours).max(1.0),
        ));
        out.push(theirs);
    }
    out
}
