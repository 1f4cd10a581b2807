//! TrustedHost passes batched per FortiGate (`trustedhost::batch`) against the simulator,
//! without Kubernetes: the requests the device receives, counted from its log. A converged
//! resync of many TrustedHosts (several on one user too) reads each users' table once; a lone
//! change is one GET of its user and one write; two writes of one user never share an
//! observation; the batch refuses exactly what a pass alone refuses.

use fortisync::api::TrustedHost;
use fortisync::api::addressgroup::TargetKind;
use fortisync::api::common::ConnectionSpec;
use fortisync::device::{Credentials, DeviceMetrics, Endpoints};
use fortisync::reconcile::connection::{ResolvedConnection, endpoint_config};
use fortisync::reconcile::target::{DeviceFacts, Target};
use fortisync::reconcile::trustedhost::batch::converge_together;
use fortisync::reconcile::trustedhost::converge::{Facts, Pass};
use fortisync::sim::fortios::RequestRecord;
use fortisync::sim::{Scenario, Simulator};
use serde_json::{Value, json};

const FW_KEY: &str = "fw-key-00000000000000000000001";
const FMG_KEY: &str = "fmg-key-0000000000000000000001";
/// Administrators on the device besides `ops`.
const ADMINS: usize = 12;
/// API users on the device besides the controller's own.
const API_USERS: usize = 4;

async fn sim() -> Simulator {
    let admins: Vec<Value> = std::iter::once(json!({"name": "ops", "password": "ops-pw"}))
        .chain((0..ADMINS).map(|i| json!({"name": format!("adm-{i:02}"), "password": "pw"})))
        .collect();
    let mut api_users = vec![json!({"name": "fs", "key": FW_KEY, "trusthosts": ["127.0.0.40/32"]})];
    api_users.extend((0..API_USERS).map(|i| {
        json!({"name": format!("ci-{i}"), "key": format!("ci-key-{i:023}"), "trusthosts": ["127.0.0.70/32"]})
    }));
    // FortiManager admin users, each let in from loopback only (slot 1), and fortisync's.
    let mut fmg_admins = vec![json!({
        "userid": "fortisync", "user_type": "api", "rpc_permit": "read-write", "profile": "Super_User",
        "api_key": FMG_KEY, "trusthosts": [["127.0.0.40", "255.255.255.255"]], "trusthosts6": ["::1/128"],
    })];
    fmg_admins.extend((0..ADMINS).map(|i| {
        json!({"userid": format!("adm-{i:02}"), "password": "pw", "rpc_permit": "read-write", "profile": "Standard_User",
               "trusthosts": [["127.0.0.1", "255.255.255.255"]], "trusthosts6": ["::1/128"]})
    }));
    let scenario = json!({
        "fortigates": [{"name": "fw", "version": "7.4.3", "admins": admins, "api_users": api_users}],
        "fortimanagers": [{"name": "fmg", "admins": fmg_admins}],
    });
    let yaml = serde_json::to_string(&scenario).expect("yaml");
    Simulator::start(Scenario::from_yaml(&yaml).expect("scenario"))
        .await
        .expect("simulator")
}

/// The FortiGate as the controller reaches it (token, from 127.0.0.40).
async fn target(sim: &Simulator) -> (Target, Facts) {
    let fg = sim.fortigate("fw");
    let connection: ConnectionSpec = serde_json::from_value(json!({
        "url": fg.url(), "credentialsSecretRef": {"name": "c", "tokenKey": "token"},
        "sourceAddress": "127.0.0.40",
    }))
    .expect("connection");
    let resolved = ResolvedConnection {
        kind: TargetKind::FortiGate,
        namespace: "team-a".into(),
        name: "dev".into(),
        connection,
        scope: "root".into(),
        fortimanager: None,
        credentials: Credentials::Token(FW_KEY.into()),
        ca_bundle_pem: fg.ca_pem().map(str::to_string),
    };
    connected(resolved).await
}

/// `resolved` connected on endpoints of its own, and the facts a pass from 127.0.0.40 has.
async fn connected(resolved: ResolvedConnection) -> (Target, Facts) {
    let endpoints = Endpoints::new(DeviceMetrics::default());
    let endpoint = endpoints
        .get(&endpoint_config(&resolved).expect("config"))
        .expect("endpoint");
    let t = Target::connect(endpoint, &resolved, &DeviceFacts::default())
        .await
        .expect("connect");
    let facts = Facts {
        credentials: resolved.credentials.clone(),
        source: Some("127.0.0.40".parse().expect("ip")),
        claimed_by: None,
    };
    (t, facts)
}

/// The FortiManager as the controller reaches it (its API admin's key, from 127.0.0.40).
async fn fmg_target(sim: &Simulator) -> (Target, Facts) {
    let fmg = sim.fortimanager("fmg");
    let spec: fortisync::api::FortiManagerSpec = serde_json::from_value(json!({
        "url": fmg.url(), "credentialsSecretRef": {"name": "fmg", "tokenKey": "token"},
        "adom": "root", "sourceAddress": "127.0.0.40",
    }))
    .expect("spec");
    let connection: ConnectionSpec = serde_json::from_value(json!({
        "url": fmg.url(), "credentialsSecretRef": {"name": "c", "tokenKey": "token"},
        "sourceAddress": "127.0.0.40",
    }))
    .expect("connection");
    let resolved = ResolvedConnection {
        kind: TargetKind::FortiManager,
        namespace: "team-a".into(),
        name: "dev".into(),
        connection,
        scope: "root".into(),
        fortimanager: Some(spec),
        credentials: Credentials::Token(FMG_KEY.into()),
        ca_bundle_pem: fmg.ca_pem().map(str::to_string),
    };
    connected(resolved).await
}

/// `grant` on the FortiManager connection.
fn fmg_grant(name: &str, user: &str, slot: u8, address: &str) -> TrustedHost {
    let mut th = grant(name, user, "Admin", slot, address);
    th.spec.target_ref.kind = TargetKind::FortiManager;
    th
}

/// What the FortiManager was asked since its log was cleared: (method, url), in order.
fn fmg_asked(sim: &Simulator) -> Vec<(String, String)> {
    sim.fortimanager("fmg")
        .control()
        .requests()
        .iter()
        .map(|r| (r.method.clone(), r.url.clone()))
        .collect()
}

/// `name`: slot `slot` of `user` (`kind` Admin or ApiUser) for `address`.
fn grant(name: &str, user: &str, kind: &str, slot: u8, address: &str) -> TrustedHost {
    let mut th: TrustedHost = serde_json::from_value(json!({
        "apiVersion": "fortisync.dev/v1alpha1", "kind": "TrustedHost",
        "metadata": {"name": name, "namespace": "team-a"},
        "spec": {"targetRef": {"kind": "FortiGate", "name": "dev"}, "user": user, "userKind": kind, "slot": slot, "address": address},
    }))
    .expect("trusted host");
    th.metadata.generation = Some(1);
    th
}

/// Every resource of `ths` through one batch round (and the rounds it hands back), each
/// carrying the status it returns afterwards (as the API server would).
async fn together(t: &Target, ths: &mut [TrustedHost], facts: &Facts) -> Vec<Pass> {
    let all = vec![facts.clone(); ths.len()];
    let passes: Vec<Pass> = converge_together(t, ths, &all, jiff::Timestamp::now())
        .await
        .into_iter()
        .map(|a| a.unwrap_or_else(|e| panic!("pass: {e}")))
        .collect();
    for (th, p) in ths.iter_mut().zip(&passes) {
        th.status = Some(p.status.clone());
    }
    passes
}

/// What the device was asked since its log was cleared: (method, path), in order.
fn asked(sim: &Simulator) -> Vec<(String, String)> {
    sim.fortigate("fw")
        .requests()
        .iter()
        .map(|r: &RequestRecord| (r.method.clone(), r.path.clone()))
        .collect()
}

/// The paths read, sorted (a batch reads its tables concurrently).
fn reads(log: &[(String, String)]) -> Vec<&str> {
    let mut paths: Vec<&str> = log
        .iter()
        .filter(|(m, _)| m == "GET")
        .map(|(_, p)| p.as_str())
        .collect();
    paths.sort();
    paths
}

fn writes(log: &[(String, String)]) -> Vec<&str> {
    log.iter()
        .filter(|(m, _)| m != "GET")
        .map(|(_, p)| p.as_str())
        .collect()
}

/// Slot `n` (1–10) of the FortiGate admin `user`.
fn admin_slot(sim: &Simulator, user: &str, n: usize) -> String {
    sim.fortigate("fw")
        .snapshot()
        .admins
        .into_iter()
        .find(|a| a.name == user)
        .and_then(|a| a.trusthosts.get(n - 1).map(ToString::to_string))
        .unwrap_or_default()
}

/// One grant per administrator and per API user but the controller's.
fn fleet() -> Vec<TrustedHost> {
    let admins = (0..ADMINS).map(|i| {
        grant(
            &format!("a-{i:02}"),
            &format!("adm-{i:02}"),
            "Admin",
            10,
            &format!("127.0.1.{}", i + 1),
        )
    });
    let api_users = (0..API_USERS).map(|i| {
        grant(
            &format!("c-{i}"),
            &format!("ci-{i}"),
            "ApiUser",
            10,
            &format!("127.0.2.{}", i + 1),
        )
    });
    admins.chain(api_users).collect()
}

#[tokio::test]
async fn converged_trustedhosts_on_one_fortigate_resync_with_one_read_per_users_table() {
    let sim = sim().await;
    let (t, facts) = target(&sim).await;
    let mut ths = fleet();
    let fg = sim.fortigate("fw");
    fg.clear_requests();
    let opened = together(&t, &mut ths, &facts).await;
    assert!(
        opened
            .iter()
            .all(|p| p.refused.is_none() && p.wrote.is_some())
    );
    let log = asked(&sim);
    // From empty: one listing per table, then exactly one write per slot.
    assert_eq!(
        reads(&log),
        ["/api/v2/cmdb/system/admin", "/api/v2/cmdb/system/api-user"]
    );
    assert_eq!(writes(&log).len(), ADMINS + API_USERS);
    assert_eq!(admin_slot(&sim, "adm-03", 10), "127.0.1.4/32");

    // The resync of all of them, converged: the two listings, no write, nothing changed.
    fg.clear_requests();
    let before: Vec<_> = ths.iter().map(|t| t.status.clone()).collect();
    let resynced = together(&t, &mut ths, &facts).await;
    let log = asked(&sim);
    assert_eq!(
        reads(&log),
        ["/api/v2/cmdb/system/admin", "/api/v2/cmdb/system/api-user"]
    );
    assert_eq!(writes(&log), Vec::<&str>::new());
    assert!(
        resynced
            .iter()
            .all(|p| p.wrote.is_none() && p.refused.is_none())
    );
    let after: Vec<_> = ths.iter().map(|t| t.status.clone()).collect();
    assert_eq!(before, after, "a converged resync changes no status");

    // Administrators only: the api-user table is not read.
    fg.clear_requests();
    together(&t, &mut ths[..ADMINS], &facts).await;
    assert_eq!(reads(&asked(&sim)), ["/api/v2/cmdb/system/admin"]);
}

#[tokio::test]
async fn a_lone_change_reads_its_user_once_and_writes_its_slot_once() {
    let sim = sim().await;
    let (t, facts) = target(&sim).await;
    let mut ths = vec![grant("g", "ops", "Admin", 10, "127.0.0.60")];
    sim.fortigate("fw").clear_requests();
    let p = together(&t, &mut ths, &facts).await;
    assert_eq!(p[0].refused, None);
    let log = asked(&sim);
    assert_eq!(reads(&log), ["/api/v2/cmdb/system/admin/ops"]);
    assert_eq!(writes(&log), ["/api/v2/cmdb/system/admin/ops"]);
    assert_eq!(admin_slot(&sim, "ops", 10), "127.0.0.60/32");
}

#[tokio::test]
async fn two_writes_of_one_user_never_share_an_observation() {
    let sim = sim().await;
    let (t, facts) = target(&sim).await;
    // Two slots of `ops` and one of `adm-00`: the second `ops` pass waits for the next round,
    // and is read again after the first one's write.
    let mut ths = vec![
        grant("g9", "ops", "Admin", 9, "127.0.0.59"),
        grant("o", "adm-00", "Admin", 10, "127.0.1.1"),
        grant("g10", "ops", "Admin", 10, "127.0.0.60"),
    ];
    sim.fortigate("fw").clear_requests();
    let passes = together(&t, &mut ths, &facts).await;
    assert!(passes.iter().all(|p| p.refused.is_none()));
    let log = asked(&sim);
    assert_eq!(
        reads(&log),
        ["/api/v2/cmdb/system/admin", "/api/v2/cmdb/system/admin/ops"]
    );
    assert_eq!(writes(&log).len(), 3);
    assert_eq!(
        *log.last().expect("log"),
        (
            "PUT".to_string(),
            "/api/v2/cmdb/system/admin/ops".to_string()
        )
    );
    assert_eq!(admin_slot(&sim, "ops", 9), "127.0.0.59/32");
    assert_eq!(admin_slot(&sim, "ops", 10), "127.0.0.60/32");
    assert_eq!(admin_slot(&sim, "adm-00", 10), "127.0.1.1/32");

    // Two slots of one API user (its write carries its whole table): both kept.
    let mut ci = vec![
        grant("c9", "ci-0", "ApiUser", 9, "127.0.2.9"),
        grant("c10", "ci-0", "ApiUser", 10, "127.0.2.10"),
    ];
    let passes = together(&t, &mut ci, &facts).await;
    assert!(
        passes
            .iter()
            .all(|p| p.refused.is_none() && p.wrote.is_some())
    );
    let user = sim
        .fortigate("fw")
        .snapshot()
        .api_users
        .into_iter()
        .find(|u| u.name == "ci-0")
        .expect("ci-0");
    let held: Vec<String> = user.trusthosts.iter().map(|h| h.to_string()).collect();
    for want in ["127.0.0.70/32", "127.0.2.9/32", "127.0.2.10/32"] {
        assert!(held.iter().any(|h| h == want), "{want} in {held:?}");
    }
}

#[tokio::test]
async fn passes_on_one_user_write_one_per_round_and_resync_on_one_reading() {
    let sim = sim().await;
    let (t, facts) = target(&sim).await;
    let mut ths: Vec<TrustedHost> = (2..=9)
        .map(|n| {
            grant(
                &format!("s{n}"),
                "ops",
                "Admin",
                n,
                &format!("127.0.0.{}", 50 + n),
            )
        })
        .collect();
    sim.fortigate("fw").clear_requests();
    let opened = together(&t, &mut ths, &facts).await;
    assert!(
        opened
            .iter()
            .all(|p| p.refused.is_none() && p.wrote.is_some())
    );
    // One write per round, each round read after the previous one's write: seven listings,
    // then the last pass alone (its own GET).
    let log = asked(&sim);
    assert_eq!(writes(&log).len(), 8);
    let mut want = vec!["/api/v2/cmdb/system/admin"; 7];
    want.push("/api/v2/cmdb/system/admin/ops");
    assert_eq!(reads(&log), want);
    for n in 2..=9 {
        assert_eq!(admin_slot(&sim, "ops", n), format!("127.0.0.{}/32", 50 + n));
    }
    // Converged, they share one reading and write nothing.
    sim.fortigate("fw").clear_requests();
    let resynced = together(&t, &mut ths, &facts).await;
    assert!(
        resynced
            .iter()
            .all(|p| p.wrote.is_none() && p.refused.is_none())
    );
    let log = asked(&sim);
    assert_eq!(reads(&log), ["/api/v2/cmdb/system/admin"]);
    assert_eq!(writes(&log), Vec::<&str>::new());
}

#[tokio::test]
async fn the_batch_refuses_what_a_pass_alone_refuses_and_writes_nothing_for_it() {
    let sim = sim().await;
    let (t, facts) = target(&sim).await;
    let mut ths = fleet();
    together(&t, &mut ths, &facts).await;
    // By hand: adm-01's slot 10 now holds another value.
    let fg = sim.fortigate("fw");
    let mut by_hand = fg.snapshot();
    let admin = by_hand
        .admins
        .iter_mut()
        .find(|a| a.name == "adm-01")
        .expect("adm-01");
    admin
        .trusthosts
        .resize(10, "0.0.0.0/0".parse().expect("net"));
    admin.trusthosts[9] = "198.51.100.1/32".parse().expect("net");
    fg.load(&by_hand).expect("load");
    fg.clear_requests();
    let passes = together(&t, &mut ths, &facts).await;
    let reason = |i: usize| passes[i].refused.as_ref().map(|r| r.0);
    assert_eq!(reason(1), Some("SlotForeign"));
    assert_eq!(reason(0), None);
    let log = asked(&sim);
    assert_eq!(reads(&log).len(), 2);
    assert_eq!(
        writes(&log),
        Vec::<&str>::new(),
        "nothing written for a refusal"
    );
    assert_eq!(admin_slot(&sim, "adm-01", 10), "198.51.100.1/32");
    // A user missing from the listing takes the lone path: its own GET, and its reason.
    let gone = vec![
        grant("x", "nobody", "Admin", 10, "127.0.0.9"),
        ths[0].clone(),
    ];
    fg.clear_requests();
    let all = vec![facts.clone(); 2];
    let answers = converge_together(&t, &gone, &all, jiff::Timestamp::now()).await;
    let missing = answers[0].as_ref().expect_err("no such user");
    assert_eq!(missing.reason(), "AdminUserNotFound");
    assert!(answers[1].is_ok());
    assert_eq!(
        reads(&asked(&sim)),
        [
            "/api/v2/cmdb/system/admin",
            "/api/v2/cmdb/system/admin/nobody"
        ]
    );
}

#[tokio::test]
async fn fortimanager_trustedhosts_resync_with_one_listing_of_the_admin_users() {
    let sim = sim().await;
    let (t, facts) = fmg_target(&sim).await;
    let mut ths: Vec<TrustedHost> = (0..ADMINS)
        .map(|i| {
            fmg_grant(
                &format!("m-{i:02}"),
                &format!("adm-{i:02}"),
                10,
                &format!("127.0.3.{}", i + 1),
            )
        })
        .collect();
    sim.fortimanager("fmg").control().clear_requests();
    let opened = together(&t, &mut ths, &facts).await;
    assert!(
        opened
            .iter()
            .all(|p| p.refused.is_none() && p.wrote.is_some())
    );
    // From empty: the table once, then one `update` per user.
    let log = fmg_asked(&sim);
    let gets: Vec<&str> = log
        .iter()
        .filter(|(m, _)| m == "get")
        .map(|(_, u)| u.as_str())
        .collect();
    assert_eq!(gets, ["/cli/global/system/admin/user"]);
    let updates = log.iter().filter(|(m, _)| m == "update").count();
    assert_eq!((updates, log.len()), (ADMINS, ADMINS + 1));
    let held = sim
        .fortimanager("fmg")
        .control()
        .admin("adm-03")
        .expect("adm-03");
    assert_eq!(
        held.trusthost_slots()[9],
        [
            "127.0.3.4".parse::<std::net::Ipv4Addr>().expect("ip"),
            std::net::Ipv4Addr::BROADCAST
        ]
    );

    // Converged: the resync of all of them is that one listing, and changes no status.
    sim.fortimanager("fmg").control().clear_requests();
    let before: Vec<_> = ths.iter().map(|t| t.status.clone()).collect();
    let resynced = together(&t, &mut ths, &facts).await;
    assert!(
        resynced
            .iter()
            .all(|p| p.wrote.is_none() && p.refused.is_none())
    );
    assert_eq!(
        fmg_asked(&sim),
        [(
            "get".to_string(),
            "/cli/global/system/admin/user".to_string()
        )]
    );
    let after: Vec<_> = ths.iter().map(|t| t.status.clone()).collect();
    assert_eq!(before, after);

    // A lone change is its user's own GET and one `update`, as before batching.
    sim.fortimanager("fmg").control().clear_requests();
    let mut one = vec![fmg_grant("m-x", "adm-00", 9, "127.0.3.99")];
    let p = together(&t, &mut one, &facts).await;
    assert!(p[0].wrote.is_some());
    assert_eq!(
        fmg_asked(&sim),
        [
            (
                "get".to_string(),
                "/cli/global/system/admin/user/adm-00".to_string()
            ),
            (
                "update".to_string(),
                "/cli/global/system/admin/user/adm-00".to_string()
            ),
        ]
    );
}

/// Slots 2-10 of every administrator: nine TrustedHosts on each of `ADMINS` users.
fn nine_per_admin() -> Vec<TrustedHost> {
    (0..ADMINS * 9)
        .map(|i| {
            grant(
                &format!("s-{i:03}"),
                &format!("adm-{:02}", i / 9),
                "Admin",
                (2 + i % 9) as u8,
                &format!("127.0.{}.{}", 10 + i / 9, i % 9 + 1),
            )
        })
        .collect()
}

#[tokio::test(start_paused = true)]
async fn a_converged_fortigates_resync_tick_is_one_listing_whatever_the_number_of_trustedhosts() {
    use fortisync::reconcile::trustedhost::batch::{Batches, converge_batched};
    let sim = sim().await;
    let (t, facts) = target(&sim).await;
    let mut ths = nine_per_admin();
    together(&t, &mut ths, &facts).await;
    // The device answers 50 ms later, and the tick's passes reach the queue over half a
    // second (5 ms apart), as a controller's resyncs of one device do.
    let fg = sim.fortigate("fw");
    fg.add_fault(fortisync::sim::fortios::FaultRule {
        path: "/api".into(),
        latency_ms: 50,
        ..Default::default()
    });
    let batches = Batches::default();
    for tick in 0..2 {
        fg.clear_requests();
        let now = jiff::Timestamp::now();
        let passes = futures::future::join_all(ths.iter().enumerate().map(|(i, th)| {
            let (t, batches, facts) = (&t, &batches, facts.clone());
            let th = std::sync::Arc::new(th.clone());
            async move {
                tokio::time::sleep(std::time::Duration::from_millis(5 * i as u64)).await;
                converge_batched(batches, t, th, facts, now, true, None).await
            }
        }))
        .await;
        for (th, p) in ths.iter().zip(&passes) {
            let p = p.as_ref().unwrap_or_else(|e| panic!("pass: {e}"));
            assert_eq!((&p.wrote, &p.refused), (&None, &None));
            assert_eq!(th.status.as_ref(), Some(&p.status), "tick {tick}");
        }
        let log = asked(&sim);
        assert_eq!(reads(&log), ["/api/v2/cmdb/system/admin"], "tick {tick}");
        assert_eq!(writes(&log), Vec::<&str>::new(), "tick {tick}");
    }
}

/// An apiserver that answers every request with `team-a`'s TrustedHosts `items`, counting the
/// requests.
fn apiserver(
    items: Vec<TrustedHost>,
) -> (kube::Client, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    let asked = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let list = serde_json::to_vec(&json!({
        "apiVersion": "fortisync.dev/v1alpha1", "kind": "TrustedHostList",
        "metadata": {"resourceVersion": "1"}, "items": items,
    }))
    .expect("list");
    let counter = asked.clone();
    let service = tower::service_fn(move |_: hyper::Request<kube::client::Body>| {
        counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let body = kube::client::Body::from(list.clone());
        async move { Ok::<_, std::convert::Infallible>(hyper::Response::new(body)) }
    });
    (kube::Client::new(service, "team-a"), asked)
}

#[tokio::test(start_paused = true)]
async fn a_tick_of_resyncs_reads_its_namespaces_claims_once_and_each_pass_still_sees_its_claim() {
    use fortisync::reconcile::trustedhost::batch::{Batches, converge_batched};
    let sim = sim().await;
    let (t, facts) = target(&sim).await;
    let created = |th: &mut TrustedHost, at: &str| {
        th.metadata.creation_timestamp = Some(
            k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(at.parse().expect("time")),
        );
    };
    let mut ths = nine_per_admin();
    for th in &mut ths {
        created(th, "2030-01-01T00:00:10Z");
    }
    together(&t, &mut ths, &facts).await;
    // An older resource claims the slot `s-000` holds: its resync is refused, naming it.
    let mut older = grant("older", "adm-00", "Admin", 2, "127.0.9.9");
    created(&mut older, "2030-01-01T00:00:00Z");
    let mut items = ths.clone();
    items.push(older);
    let (client, listed) = apiserver(items);
    let api: kube::Api<TrustedHost> = kube::Api::namespaced(client, "team-a");
    let batches = Batches::default();
    sim.fortigate("fw").clear_requests();
    let now = jiff::Timestamp::now();
    let passes = futures::future::join_all(ths.iter().enumerate().map(|(i, th)| {
        let (t, batches, facts, api) = (&t, &batches, facts.clone(), api.clone());
        let th = std::sync::Arc::new(th.clone());
        async move {
            tokio::time::sleep(std::time::Duration::from_millis(5 * i as u64)).await;
            converge_batched(batches, t, th, facts, now, true, Some(api)).await
        }
    }))
    .await;
    let reason = |p: &Result<Pass, _>| {
        p.as_ref()
            .unwrap_or_else(|e| panic!("pass: {e}"))
            .refused
            .as_ref()
            .map(|r| r.0)
    };
    assert_eq!(reason(&passes[0]), Some("SlotClaimed"));
    assert!(passes[1..].iter().all(|p| reason(p).is_none()));
    assert_eq!(
        listed.load(std::sync::atomic::Ordering::SeqCst),
        1,
        "one list of team-a"
    );
    let log = asked(&sim);
    assert_eq!(reads(&log), ["/api/v2/cmdb/system/admin"]);
    assert_eq!(writes(&log), Vec::<&str>::new());
}
