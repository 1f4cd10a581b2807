//! The simulated FortiManager over real HTTPS: envelopes, codes and messages as
//! `fortimanager-jsonrpc.md` gives them.

use std::sync::{Arc, Mutex};

use fortisync::sim::fortimanager::{
    AdminUser, AdomSpec, DeviceGroupSpec, DeviceSpec, FaultRule, FortiManagerHandle,
    FortiManagerScenario, HttpFaultBody, ManagedDevices, RpcPermit, Table, UserType, WorkspaceMode,
    admin_router, start,
};
use futures::future::BoxFuture;
use serde_json::{Value, json};

type Call = (String, String, String, Option<Value>);

/// FortiGates that record proxied calls and answer FortiOS-shaped envelopes.
#[derive(Clone, Default)]
struct Fortigates {
    calls: Arc<Mutex<Vec<Call>>>,
    down: Vec<String>,
}

impl ManagedDevices for Fortigates {
    fn call(
        &self,
        device: &str,
        method: &str,
        path: &str,
        body: Option<Value>,
    ) -> BoxFuture<'static, Option<(u16, Value)>> {
        self.calls
            .lock()
            .unwrap()
            .push((device.into(), method.into(), path.into(), body));
        let up = !self.down.iter().any(|d| d == device);
        let answer = json!({
            "http_method": method, "http_status": 200, "status": "success", "serial": format!("FGVM-{device}"),
            "vdom": "root", "path": "system", "name": "status", "results": {"hostname": device},
            "version": "v7.4.3", "build": 2573,
        });
        Box::pin(async move { up.then_some((200, answer)) })
    }
}

fn admin(userid: &str, permit: RpcPermit, profile: &str) -> AdminUser {
    AdminUser {
        userid: userid.into(),
        password: Some(format!("{userid}-pw")),
        rpc_permit: permit,
        profile: profile.into(),
        ..AdminUser::default()
    }
}

fn scenario() -> FortiManagerScenario {
    let dev = |n: &str| DeviceSpec {
        name: n.into(),
        serial: format!("FGVM-{n}"),
        version: "7.4.3".into(),
        ..Default::default()
    };
    FortiManagerScenario {
        adoms: vec![
            AdomSpec {
                devices: vec![dev("fw1"), dev("fw2")],
                groups: vec![DeviceGroupSpec {
                    name: "edge".into(),
                    members: vec!["fw2".into()],
                }],
                addresses: vec![
                    json!({"name": "h1", "subnet": "10.0.0.1/32"})
                        .as_object()
                        .unwrap()
                        .clone(),
                ],
                ..AdomSpec::default()
            },
            AdomSpec {
                name: "ws".into(),
                workspace_mode: WorkspaceMode::Normal,
                ..AdomSpec::default()
            },
            AdomSpec {
                name: "old".into(),
                os_version: "7.0".into(),
                ..AdomSpec::default()
            },
        ],
        admins: vec![
            admin("rw", RpcPermit::ReadWrite, "Super_User"),
            admin("ro", RpcPermit::Read, "Super_User"),
            admin("none", RpcPermit::None, "Super_User"),
            admin("std", RpcPermit::ReadWrite, "Standard_User"),
            AdminUser {
                userid: "api".into(),
                user_type: UserType::Api,
                rpc_permit: RpcPermit::ReadWrite,
                api_key: Some("k3y".into()),
                trusthosts: vec![[
                    "127.0.0.1".parse().unwrap(),
                    "255.255.255.255".parse().unwrap(),
                ]],
                ..AdminUser::default()
            },
        ],
        ..FortiManagerScenario::default()
    }
}

struct Fmg {
    handle: FortiManagerHandle,
    http: reqwest::Client,
    gates: Fortigates,
}

impl Fmg {
    async fn start(s: FortiManagerScenario) -> Self {
        let gates = Fortigates {
            down: vec!["fw2".into()],
            ..Default::default()
        };
        let handle = start(s, Arc::new(gates.clone())).await.unwrap();
        let ca = reqwest::Certificate::from_pem(handle.ca_pem().unwrap().as_bytes()).unwrap();
        let http = reqwest::Client::builder()
            .add_root_certificate(ca)
            // No client-side timers: a paused clock then only moves when a test advances it.
            .pool_idle_timeout(None)
            .build()
            .unwrap();
        Self {
            handle,
            http,
            gates,
        }
    }

    async fn raw(&self, body: Value, bearer: Option<&str>, query: &str) -> (u16, Value) {
        let mut req = self
            .http
            .post(format!("{}{query}", self.handle.jsonrpc_url()))
            .json(&body);
        if let Some(key) = bearer {
            req = req.bearer_auth(key);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap_or(Value::Null))
    }

    async fn rpc(&self, session: &Value, method: &str, params: Value) -> Value {
        let params = if params.is_array() {
            params
        } else {
            json!([params])
        };
        self.raw(
            json!({"id": 7, "method": method, "params": params, "session": session}),
            None,
            "",
        )
        .await
        .1
    }

    async fn login(&self, user: &str) -> Value {
        let reply = self.rpc(&Value::Null, "exec", json!({"url": "sys/login/user", "data": {"user": user, "passwd": format!("{user}-pw")}})).await;
        assert_eq!(
            reply["result"][0]["status"],
            json!({"code": 0, "message": "OK"}),
            "{reply}"
        );
        reply["session"].clone()
    }
}

fn status(reply: &Value) -> (i64, String) {
    let st = &reply["result"][0]["status"];
    (
        st["code"].as_i64().unwrap(),
        st["message"].as_str().unwrap().to_string(),
    )
}

const ADDR: &str = "/pm/config/adom/root/obj/firewall/address";
const GRP: &str = "/pm/config/adom/root/obj/firewall/addrgrp";

#[tokio::test]
async fn login_answers_token_then_numeric_session_and_echoes_id() {
    let fmg = Fmg::start(scenario()).await;
    let reply = fmg
        .rpc(
            &Value::Null,
            "exec",
            json!({"url": "/sys/login/user", "data": [{"user": "rw", "passwd": "rw-pw"}]}),
        )
        .await;
    assert_eq!(reply["id"], json!(7));
    assert_eq!(
        reply["result"][0],
        json!({"status": {"code": 0, "message": "OK"}, "url": "/sys/login/user"})
    );
    let token = reply["session"].as_str().unwrap().to_string();
    assert!(token.ends_with("=="));
    let reply = fmg
        .rpc(
            &json!(token),
            "get",
            json!({"url": "cli/global/system/status/"}),
        )
        .await;
    assert_eq!(status(&reply), (0, "OK".into()));
    assert!(reply["session"].is_u64(), "{reply}");
    assert_eq!(reply["result"][0]["data"]["Major"], json!(7));
    assert_eq!(
        reply["result"][0]["data"]["Serial Number"],
        json!("FMG-VMTM00000001")
    );
}

#[tokio::test]
async fn wrong_password_is_login_fail() {
    let fmg = Fmg::start(scenario()).await;
    let reply = fmg
        .rpc(
            &Value::Null,
            "exec",
            json!({"url": "sys/login/user", "data": {"user": "rw", "passwd": "nope"}}),
        )
        .await;
    assert_eq!(status(&reply), (-22, "Login fail".into()));
    assert!(reply.get("session").is_none());
    assert_eq!(fmg.handle.live_sessions(), 0);
}

#[tokio::test]
async fn rpc_permit_none_is_refused_at_login() {
    let fmg = Fmg::start(scenario()).await;
    let reply = fmg
        .rpc(
            &Value::Null,
            "exec",
            json!({"url": "sys/login/user", "data": {"user": "none", "passwd": "none-pw"}}),
        )
        .await;
    assert_eq!(
        status(&reply),
        (-11, "No permission for the resource".into())
    );
}

#[tokio::test]
async fn read_only_admin_reads_but_gets_minus_11_on_writes() {
    let fmg = Fmg::start(scenario()).await;
    let s = fmg.login("ro").await;
    assert_eq!(status(&fmg.rpc(&s, "get", json!({"url": ADDR})).await).0, 0);
    let reply = fmg
        .rpc(
            &s,
            "add",
            json!({"url": ADDR, "data": {"name": "x", "subnet": "10.1.1.1/32"}}),
        )
        .await;
    assert_eq!(
        status(&reply),
        (-11, "No permission for the resource".into())
    );
    assert!(fmg.handle.object("root", Table::Address, "x").is_none());
}

#[tokio::test]
async fn invalid_or_logged_out_session_is_minus_11() {
    let fmg = Fmg::start(scenario()).await;
    let reply = fmg
        .rpc(&json!("bogus=="), "get", json!({"url": ADDR}))
        .await;
    assert_eq!(
        status(&reply),
        (-11, "No permission for the resource".into())
    );
    let s = fmg.login("rw").await;
    assert_eq!(
        status(&fmg.rpc(&s, "exec", json!({"url": "sys/logout"})).await),
        (0, "OK".into())
    );
    assert_eq!(
        status(&fmg.rpc(&s, "get", json!({"url": ADDR})).await).0,
        -11
    );
    assert_eq!(
        status(&fmg.rpc(&s, "exec", json!({"url": "sys/logout"})).await).0,
        -11
    );
}

#[tokio::test(start_paused = true)]
async fn session_expires_after_idle_timeout_api() {
    let fmg = Fmg::start(FortiManagerScenario {
        idle_timeout_api: 60,
        tls: true,
        ..scenario()
    })
    .await;
    let s = fmg.login("rw").await;
    tokio::time::advance(std::time::Duration::from_secs(59)).await;
    assert_eq!(status(&fmg.rpc(&s, "get", json!({"url": ADDR})).await).0, 0);
    tokio::time::advance(std::time::Duration::from_secs(61)).await;
    assert_eq!(
        status(&fmg.rpc(&s, "get", json!({"url": ADDR})).await),
        (-11, "No permission for the resource".into())
    );
}

#[tokio::test]
async fn api_key_bearer_works_and_bad_key_is_minus_11() {
    let fmg = Fmg::start(scenario()).await;
    let get = json!({"id": 1, "method": "get", "params": [{"url": ADDR}]});
    let (http, reply) = fmg.raw(get.clone(), Some("k3y"), "").await;
    assert_eq!((http, status(&reply).0), (200, 0));
    assert_eq!(reply["result"][0]["data"][0]["name"], json!("h1"));
    let (_, reply) = fmg.raw(get.clone(), Some("wrong"), "").await;
    assert_eq!(
        status(&reply),
        (-11, "No permission for the resource".into())
    );
    // 7.4.3 still takes ?access_token=
    let (_, reply) = fmg.raw(get, None, "?access_token=k3y").await;
    assert_eq!(status(&reply).0, 0);
}

#[tokio::test]
async fn access_token_query_is_refused_from_7_4_7() {
    let fmg = Fmg::start(FortiManagerScenario {
        version: "7.4.7".into(),
        ..scenario()
    })
    .await;
    let get = json!({"id": 1, "method": "get", "params": [{"url": ADDR}]});
    assert_eq!(
        status(&fmg.raw(get.clone(), None, "?access_token=k3y").await.1).0,
        -11
    );
    assert_eq!(status(&fmg.raw(get, Some("k3y"), "").await.1).0, 0);
}

#[tokio::test]
async fn api_key_before_7_2_2_is_minus_11() {
    let fmg = Fmg::start(FortiManagerScenario {
        version: "7.2.1".into(),
        ..scenario()
    })
    .await;
    let get = json!({"id": 1, "method": "get", "params": [{"url": ADDR}]});
    assert_eq!(status(&fmg.raw(get, Some("k3y"), "").await.1).0, -11);
}

#[tokio::test]
async fn api_key_from_untrusted_host_is_minus_11() {
    let mut s = scenario();
    s.admins[4].trusthosts = vec![[
        "127.0.0.2".parse().unwrap(),
        "255.255.255.255".parse().unwrap(),
    ]];
    let fmg = Fmg::start(s).await;
    let get = json!({"id": 1, "method": "get", "params": [{"url": ADDR}]});
    assert_eq!(status(&fmg.raw(get, Some("k3y"), "").await.1).0, -11);
}

#[tokio::test]
async fn multiplexed_params_answer_in_order_with_method_shapes() {
    let fmg = Fmg::start(scenario()).await;
    let s = fmg.login("rw").await;
    let reply = fmg
        .rpc(&s, "add", json!([
            {"url": ADDR, "data": {"name": "h2", "subnet": ["10.0.0.2", "255.255.255.255"]}},
            {"url": ADDR, "data": {"name": "h1"}},
            {"url": ADDR, "data": [{"name": "h3", "subnet": "10.0.0.3/255.255.255.255"}, {"name": "h4", "subnet": "10.0.0.4/32"}]},
        ]))
        .await;
    let results = reply["result"].as_array().unwrap();
    assert_eq!(
        results[0],
        json!({"status": {"code": 0, "message": "OK"}, "url": ADDR, "data": {"name": "h2"}})
    );
    assert_eq!(
        results[1],
        json!({"status": {"code": -2, "message": "Object already exists"}, "url": ADDR})
    );
    assert_eq!(
        results[2],
        json!({"status": {"code": 0, "message": "OK"}, "url": ADDR}),
        "bulk add has no data"
    );
    let reply = fmg
        .rpc(&s, "delete", json!({"url": format!("{ADDR}/h4")}))
        .await;
    assert_eq!(
        reply["result"][0],
        json!({"status": {"code": 0, "message": "OK"}, "url": format!("{ADDR}/h4")})
    );
    let reply = fmg
        .rpc(&s, "get", json!({"url": format!("{ADDR}/h4")}))
        .await;
    assert_eq!(status(&reply), (-3, "Object does not exist".into()));
    assert_eq!(
        status(
            &fmg.rpc(
                &s,
                "update",
                json!({"url": format!("{ADDR}/h4"), "data": {"comment": "x"}})
            )
            .await
        )
        .0,
        -3
    );
    assert_eq!(
        status(
            &fmg.rpc(&s, "delete", json!({"url": format!("{ADDR}/h4")}))
                .await
        )
        .0,
        -3
    );
}

#[tokio::test]
async fn address_subnet_is_returned_as_ip_and_mask_and_type_follows_verbose() {
    let fmg = Fmg::start(scenario()).await;
    let s = fmg.login("rw").await;
    let reply = fmg
        .rpc(
            &s,
            "set",
            json!({"url": ADDR, "data": {"name": "n24", "subnet": "10.9.0.0/24", "type": 0}}),
        )
        .await;
    assert_eq!(reply["result"][0]["data"], json!({"name": "n24"}));
    let url = format!("{ADDR}/n24");
    let reply = fmg
        .rpc(&s, "get", json!({"url": url, "fields": ["subnet", "type"]}))
        .await;
    assert_eq!(
        reply["result"][0]["data"],
        json!({"name": "n24", "subnet": ["10.9.0.0", "255.255.255.0"], "type": 0})
    );
    let reply = fmg
        .rpc(
            &s,
            "get",
            json!({"url": url, "fields": ["type"], "verbose": 1}),
        )
        .await;
    assert_eq!(
        reply["result"][0]["data"],
        json!({"name": "n24", "type": "ipmask"})
    );
    let reply = fmg
        .rpc(
            &s,
            "set",
            json!({"url": ADDR, "data": {"name": "bad", "subnet": "10.9.0.0/40"}}),
        )
        .await;
    assert_eq!(
        status(&reply),
        (-10, "The data is invalid for selected url".into())
    );
}

#[tokio::test]
async fn filter_fields_range_and_count() {
    let fmg = Fmg::start(scenario()).await;
    let s = fmg.login("rw").await;
    let data: Vec<Value> = (0..5)
        .map(|i| json!({"name": format!("web{i}"), "subnet": format!("10.1.0.{i}/32")}))
        .collect();
    fmg.rpc(&s, "add", json!({"url": ADDR, "data": data})).await;
    let reply = fmg
        .rpc(
            &s,
            "get",
            json!({"url": ADDR, "filter": ["name", "like", "web%"], "option": ["count"]}),
        )
        .await;
    assert_eq!(reply["result"][0]["data"], json!(5));
    let reply = fmg.rpc(&s, "get", json!({"url": ADDR, "filter": ["name", "like", "web%"], "range": [1, 2], "fields": ["name"]})).await;
    assert_eq!(
        reply["result"][0]["data"],
        json!([{"name": "web1"}, {"name": "web2"}])
    );
}

#[tokio::test]
async fn addrgrp_integrity_members_and_empty_group_by_version() {
    let fmg = Fmg::start(scenario()).await;
    let s = fmg.login("rw").await;
    let reply = fmg
        .rpc(
            &s,
            "add",
            json!({"url": GRP, "data": {"name": "g", "member": ["ghost"]}}),
        )
        .await;
    assert_eq!(status(&reply), (-10131, "Object dependency failed".into()));
    let reply = fmg
        .rpc(
            &s,
            "add",
            json!({"url": GRP, "data": {"name": "g", "member": ["h1"]}}),
        )
        .await;
    assert_eq!(reply["result"][0]["data"], json!({"name": "g"}));
    let reply = fmg
        .rpc(&s, "delete", json!({"url": format!("{ADDR}/h1")}))
        .await;
    assert_eq!(status(&reply), (-10015, "Object is in use".into()));
    fmg.rpc(
        &s,
        "add",
        json!({"url": ADDR, "data": {"name": "h2", "subnet": "10.0.0.2/32"}}),
    )
    .await;
    let member = format!("{GRP}/g/member");
    assert_eq!(
        status(
            &fmg.rpc(&s, "add", json!({"url": member, "data": ["h2"]}))
                .await
        )
        .0,
        0
    );
    assert_eq!(
        fmg.rpc(&s, "get", json!({"url": format!("{GRP}/g")})).await["result"][0]["data"]["member"],
        json!(["h1", "h2"])
    );
    assert_eq!(
        status(
            &fmg.rpc(&s, "delete", json!({"url": member, "data": ["h1", "h2"]}))
                .await
        )
        .0,
        0,
        "empty is legal on 7.4"
    );
    // ADOM "old" runs FortiOS 7.0: an empty group is refused.
    fmg.rpc(&s, "add", json!({"url": "pm/config/adom/old/obj/firewall/address", "data": {"name": "o1", "subnet": "10.0.0.9/32"}})).await;
    let reply = fmg.rpc(&s, "add", json!({"url": "pm/config/adom/old/obj/firewall/addrgrp", "data": {"name": "e", "member": []}})).await;
    assert_eq!(
        status(&reply),
        (-10, "The data is invalid for selected url".into())
    );
}

#[tokio::test]
async fn external_resource_crud() {
    let fmg = Fmg::start(scenario()).await;
    let s = fmg.login("rw").await;
    let url = "/pm/config/adom/root/obj/system/external-resource";
    let reply = fmg.rpc(&s, "add", json!({"url": url, "data": {"name": "feed", "type": "address", "resource": "https://edl.example/list"}})).await;
    assert_eq!(reply["result"][0]["data"], json!({"name": "feed"}));
    let reply = fmg
        .rpc(
            &s,
            "get",
            json!({"url": format!("{url}/feed"), "verbose": 1}),
        )
        .await;
    assert_eq!(
        reply["result"][0]["data"]["resource"],
        json!("https://edl.example/list")
    );
    assert_eq!(reply["result"][0]["data"]["status"], json!("enable"));
    assert_eq!(
        status(
            &fmg.rpc(&s, "delete", json!({"url": format!("{url}/feed")}))
                .await
        )
        .0,
        0
    );
}

#[tokio::test]
async fn an_external_resources_feed_password_is_never_read_back_in_clear() {
    let fmg = Fmg::start(scenario()).await;
    let s = fmg.login("rw").await;
    let url = "/pm/config/adom/root/obj/system/external-resource";
    let reply = fmg.rpc(&s, "add", json!({"url": url, "data": {"name": "feed", "type": "address", "resource": "https://edl.example/list"}})).await;
    assert_eq!(status(&reply).0, 0);
    assert_eq!(
        status(&fmg.rpc(&s, "update", json!({"url": format!("{url}/feed"), "data": {"username": "fg", "password": "s3cret"}})).await).0,
        0
    );
    let reply = fmg
        .rpc(
            &s,
            "get",
            json!({"url": format!("{url}/feed"), "verbose": 1}),
        )
        .await;
    assert_eq!(reply["result"][0]["data"]["username"], json!("fg"));
    assert_eq!(
        reply["result"][0]["data"]["password"],
        json!(["ENC", "<hidden>"]),
        "the feed password is never answered in clear"
    );
}

#[tokio::test]
async fn admin_users_show_trusthost_defaults_and_only_super_user_edits() {
    let fmg = Fmg::start(scenario()).await;
    let s = fmg.login("rw").await;
    let reply = fmg
        .rpc(
            &s,
            "get",
            json!({"url": "/cli/global/system/admin/user/ro"}),
        )
        .await;
    let data = &reply["result"][0]["data"];
    assert_eq!(
        (data["trusthost1"].clone(), data["trusthost2"].clone()),
        (
            json!(["0.0.0.0", "0.0.0.0"]),
            json!(["255.255.255.255", "255.255.255.255"])
        )
    );
    assert_eq!(data["rpc-permit"], json!("read"));
    let reply = fmg.rpc(&s, "update", json!({"url": "/cli/global/system/admin/user/ro", "data": {"trusthost1": ["127.0.0.5", "255.255.255.255"]}})).await;
    assert_eq!(status(&reply).0, 0);
    assert_eq!(
        fmg.handle.admin("ro").unwrap().trusthosts[0],
        [
            "127.0.0.5".parse::<std::net::Ipv4Addr>().unwrap(),
            std::net::Ipv4Addr::BROADCAST
        ]
    );
    assert_eq!(
        status(
            &fmg.rpc(
                &s,
                "get",
                json!({"url": "/cli/global/system/admin/user/ghost"})
            )
            .await
        )
        .0,
        -3
    );
    let std = fmg.login("std").await;
    let reply = fmg.rpc(&std, "update", json!({"url": "/cli/global/system/admin/user/ro", "data": {"rpc-permit": "read-write"}})).await;
    assert_eq!(
        status(&reply),
        (-11, "No permission for the resource".into())
    );
}

#[tokio::test]
async fn the_admin_user_table_lists_each_user_as_its_own_get_shows_it_and_takes_a_query() {
    let fmg = Fmg::start(scenario()).await;
    let s = fmg.login("rw").await;
    let get = |param: Value| {
        let (fmg, s) = (&fmg, &s);
        async move { fmg.rpc(s, "get", param).await["result"][0]["data"].clone() }
    };
    let one = get(json!({"url": "/cli/global/system/admin/user/ro"})).await;
    let all = get(json!({"url": "/cli/global/system/admin/user"})).await;
    let ids: Vec<&str> = all
        .as_array()
        .expect("a list")
        .iter()
        .map(|r| r["userid"].as_str().expect("userid"))
        .collect();
    assert_eq!(ids, ["api", "none", "ro", "rw", "std"]);
    let ro = all
        .as_array()
        .expect("a list")
        .iter()
        .find(|r| r["userid"] == "ro");
    assert_eq!(ro, Some(&one), "a listed row is the user's own GET");
    let filtered = get(json!({
        "url": "/cli/global/system/admin/user",
        "filter": ["userid", "==", "ro"], "fields": ["trusthost1"],
    }))
    .await;
    assert_eq!(
        filtered,
        json!([{"userid": "ro", "trusthost1": ["0.0.0.0", "0.0.0.0"]}])
    );
}

#[tokio::test]
async fn system_global_devices_groups_and_unknown_adom() {
    let fmg = Fmg::start(scenario()).await;
    let s = fmg.login("rw").await;
    let reply = fmg.rpc(&s, "get", json!({"url": "/cli/global/system/global", "fields": ["workspace-mode", "adom-status"], "verbose": 1})).await;
    assert_eq!(
        reply["result"][0]["data"]["workspace-mode"],
        json!("normal")
    );
    assert_eq!(reply["result"][0]["data"]["adom-status"], json!("enable"));
    let reply = fmg
        .rpc(&s, "get", json!({"url": "/dvmdb/adom/root/device/fw1"}))
        .await;
    assert_eq!(
        (
            reply["result"][0]["data"]["sn"].clone(),
            reply["result"][0]["data"]["conn_status"].clone()
        ),
        (json!("FGVM-fw1"), json!(1))
    );
    let reply = fmg
        .rpc(
            &s,
            "get",
            json!({"url": "/dvmdb/adom/root/group/All_FortiGate"}),
        )
        .await;
    assert_eq!(
        reply["result"][0]["data"]["object member"],
        json!([{"name": "fw1", "vdom": "root"}, {"name": "fw2", "vdom": "root"}])
    );
    let reply = fmg
        .rpc(
            &s,
            "get",
            json!({"url": "/pm/config/adom/nowhere/obj/firewall/address"}),
        )
        .await;
    assert_eq!(status(&reply), (-6, "Invalid url".into()));
    let reply = fmg
        .rpc(&s, "get", json!({"url": "/dvmdb/adom/nowhere"}))
        .await;
    assert_eq!(status(&reply), (-3, "Object does not exist".into()));
}

#[tokio::test]
async fn workspace_lock_commit_unlock() {
    let fmg = Fmg::start(scenario()).await;
    let a = fmg.login("rw").await;
    let b = fmg.login("rw").await;
    let url = "pm/config/adom/ws/obj/firewall/address";
    let add = |name: &str| json!({"url": url, "data": {"name": name, "subnet": "10.0.0.1/32"}});
    assert_eq!(
        status(&fmg.rpc(&a, "add", add("x")).await),
        (-10147, "no write permission".into())
    );
    let reply = fmg
        .rpc(&a, "exec", json!({"url": "/dvmdb/adom/ws/workspace/lock"}))
        .await;
    assert_eq!(
        reply["result"][0],
        json!({"status": {"code": 0, "message": "OK"}, "url": "/dvmdb/adom/ws/workspace/lock"})
    );
    let reply = fmg
        .rpc(
            &b,
            "get",
            json!({"url": "/dvmdb/adom/ws/workspace/lockinfo"}),
        )
        .await;
    assert_eq!(reply["result"][0]["data"][0]["lock_user"], json!("rw"));
    let own_sid = fmg
        .rpc(&a, "get", json!({"url": "/pm/pkg/adom/not-existing"}))
        .await["session"]
        .clone();
    assert_eq!(
        reply["result"][0]["data"][0]["lock_sid"], own_sid,
        "lock_sid is the holder's numeric session"
    );
    assert_eq!(
        status(
            &fmg.rpc(&b, "exec", json!({"url": "/dvmdb/adom/ws/workspace/lock"}))
                .await
        ),
        (-20055, "Workspace is locked by other user".into())
    );
    assert_eq!(status(&fmg.rpc(&b, "add", add("y")).await).0, -10147);
    assert_eq!(status(&fmg.rpc(&a, "add", add("x")).await).0, 0);
    assert!(
        fmg.handle.object("ws", Table::Address, "x").is_none(),
        "not committed yet"
    );
    assert_eq!(
        status(
            &fmg.rpc(
                &a,
                "exec",
                json!({"url": "/dvmdb/adom/ws/workspace/commit"})
            )
            .await
        )
        .0,
        0
    );
    assert!(fmg.handle.object("ws", Table::Address, "x").is_some());
    assert_eq!(status(&fmg.rpc(&a, "add", add("z")).await).0, 0);
    assert_eq!(
        status(
            &fmg.rpc(
                &a,
                "exec",
                json!({"url": "/dvmdb/adom/ws/workspace/unlock/"})
            )
            .await
        )
        .0,
        0
    );
    assert!(
        fmg.handle.object("ws", Table::Address, "z").is_none(),
        "unlock without commit discards"
    );
    let reply = fmg
        .rpc(
            &a,
            "get",
            json!({"url": "/dvmdb/adom/ws/workspace/lockinfo"}),
        )
        .await;
    assert_eq!(
        reply["result"][0],
        json!({"status": {"code": 0, "message": "OK"}, "url": "/dvmdb/adom/ws/workspace/lockinfo"})
    );
    let reply = fmg
        .rpc(
            &a,
            "get",
            json!({"url": "/dvmdb/adom/root/workspace/lockinfo"}),
        )
        .await;
    assert_eq!(
        status(&reply),
        (-9, "command invalid for selected URL".into())
    );
}

#[tokio::test]
async fn lock_held_by_another_admin_is_reported() {
    let fmg = Fmg::start(scenario()).await;
    let sid = fmg.handle.hold_lock("ws", "gui-admin").unwrap();
    let s = fmg.login("rw").await;
    let reply = fmg
        .rpc(&s, "exec", json!({"url": "/dvmdb/adom/ws/workspace/lock"}))
        .await;
    assert_eq!(
        status(&reply),
        (-20055, "Workspace is locked by other user".into())
    );
    let reply = fmg
        .rpc(
            &s,
            "get",
            json!({"url": "/dvmdb/adom/ws/workspace/lockinfo"}),
        )
        .await;
    assert_eq!(
        (
            reply["result"][0]["data"][0]["lock_user"].clone(),
            reply["result"][0]["data"][0]["lock_sid"].clone()
        ),
        (json!("gui-admin"), json!(sid))
    );
}

#[tokio::test]
async fn proxy_fans_out_deduplicated_and_reports_each_target() {
    let fmg = Fmg::start(scenario()).await;
    let s = fmg.login("rw").await;
    let data = json!({"target": ["adom/root/device/fw1", "adom/root/group/All_FortiGate", "/adom/root/group/edge"], "action": "get", "resource": "/api/v2/monitor/system/status"});
    let reply = fmg
        .rpc(&s, "exec", json!({"url": "/sys/proxy/json", "data": data}))
        .await;
    assert_eq!(status(&reply), (0, "OK".into()));
    let targets = reply["result"][0]["data"].as_array().unwrap();
    assert_eq!(targets.len(), 2);
    assert_eq!(targets[0]["target"], json!("fw1"));
    assert_eq!(targets[0]["status"], json!({"code": 0, "message": "OK"}));
    assert_eq!(targets[0]["response"]["serial"], json!("FGVM-fw1"));
    assert_eq!(targets[1]["target"], json!("fw2"));
    assert_eq!(
        targets[1]["status"],
        json!({"code": -20042, "message": "device unreachable"})
    );
    let calls = fmg.gates.calls.lock().unwrap().clone();
    assert_eq!(calls.len(), 2);
    assert_eq!(
        (
            calls[0].0.as_str(),
            calls[0].1.as_str(),
            calls[0].2.as_str()
        ),
        ("fw1", "GET", "/api/v2/monitor/system/status")
    );
}

#[tokio::test]
async fn proxy_unknown_target_is_minus_2_and_read_only_post_is_minus_11() {
    let fmg = Fmg::start(scenario()).await;
    let s = fmg.login("rw").await;
    let data = json!({"target": ["adom/root/device/ghost"], "action": "get", "resource": "/api/v2/monitor/system/status"});
    let reply = fmg
        .rpc(&s, "exec", json!({"url": "sys/proxy/json", "data": data}))
        .await;
    assert_eq!(status(&reply), (-2, "Object already exists".into()));
    let ro = fmg.login("ro").await;
    let data = json!({"target": ["adom/root/device/fw1"], "action": "post", "resource": "/api/v2/cmdb/firewall/address", "payload": {"name": "a"}});
    assert_eq!(
        status(
            &fmg.rpc(&ro, "exec", json!({"url": "sys/proxy/json", "data": data}))
                .await
        )
        .0,
        -11
    );
    assert!(fmg.gates.calls.lock().unwrap().is_empty());
}

#[tokio::test]
async fn out_of_band_edit_counters_and_faults() {
    let fmg = Fmg::start(scenario()).await;
    let s = fmg.login("rw").await;
    fmg.handle
        .put_object(
            "root",
            Table::Address,
            json!({"name": "drift", "subnet": "10.7.7.7/32"}),
        )
        .unwrap();
    let reply = fmg
        .rpc(
            &s,
            "get",
            json!({"url": format!("{ADDR}/drift"), "fields": ["subnet"]}),
        )
        .await;
    assert_eq!(
        reply["result"][0]["data"]["subnet"],
        json!(["10.7.7.7", "255.255.255.255"])
    );
    assert_eq!(fmg.handle.count("get", &format!("{ADDR}/drift"), 0), 1);
    fmg.handle.add_fault(FaultRule {
        url: ADDR.into(),
        code: Some(-1),
        message: Some("runtime error 0: invalid value".into()),
        times: Some(1),
        ..Default::default()
    });
    assert_eq!(
        status(&fmg.rpc(&s, "get", json!({"url": ADDR})).await),
        (-1, "runtime error 0: invalid value".into())
    );
    assert_eq!(
        status(&fmg.rpc(&s, "get", json!({"url": ADDR})).await).0,
        0,
        "the fault was used up"
    );
    fmg.handle.add_fault(FaultRule {
        http_status: Some(503),
        ..Default::default()
    });
    let (http, _) = fmg
        .raw(
            json!({"id": 1, "method": "get", "params": [{"url": ADDR}], "session": s}),
            None,
            "",
        )
        .await;
    assert_eq!(http, 503);
    // The forced -1 and the param refused by the injected 503 (logged as -1).
    assert_eq!(fmg.handle.count("get", ADDR, -1), 2);
}

#[tokio::test]
async fn admin_router_exposes_control_as_json() {
    use tower::ServiceExt;
    let fmg = Fmg::start(scenario()).await;
    let app = admin_router(&fmg.handle);
    let req = |method: &str, uri: &str, body: Value| {
        axum::http::Request::builder()
            .method(method)
            .uri(uri)
            .header("content-type", "application/json")
            .body(axum::body::Body::from(body.to_string()))
            .unwrap()
    };
    let resp = app
        .clone()
        .oneshot(req(
            "PUT",
            "/adoms/root/address",
            json!({"name": "gui", "subnet": "10.2.2.2/32"}),
        ))
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert!(fmg.handle.object("root", Table::Address, "gui").is_some());
    let resp = app
        .clone()
        .oneshot(req("POST", "/adoms/ws/lock", json!({"user": "other"})))
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(fmg.handle.lock_holder("ws").unwrap().0, "other");
    let resp = app
        .clone()
        .oneshot(req("DELETE", "/adoms/root/address/gui", Value::Null))
        .await
        .unwrap();
    assert_eq!(resp.status(), 204);
    let resp = app
        .clone()
        .oneshot(req("GET", "/counters", Value::Null))
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let resp = app
        .clone()
        .oneshot(req(
            "POST",
            "/faults",
            json!({"url": "/sys", "http_statuss": 503}),
        ))
        .await
        .unwrap();
    assert_eq!(
        resp.status(),
        422,
        "a misspelt field is refused, not ignored"
    );
    let resp = app
        .clone()
        .oneshot(req(
            "POST",
            "/faults",
            json!({"url": "/sys", "code": -1, "times": 1}),
        ))
        .await
        .unwrap();
    assert_eq!(resp.status(), 204);
    assert_eq!(fmg.handle.faults()[0].code, Some(-1));
}

#[tokio::test]
async fn verbose_on_the_envelope_returns_symbols() {
    let fmg = Fmg::start(scenario()).await;
    let s = fmg.login("rw").await;
    let body = json!({"id": 3, "method": "get", "verbose": 1, "session": s,
        "params": [{"url": format!("{ADDR}/h1"), "fields": ["type"]}, {"url": "/dvmdb/adom/root/device/fw1", "fields": ["conn_status"]}]});
    let reply = fmg.raw(body, None, "").await.1;
    assert_eq!(
        reply["result"][0]["data"],
        json!({"name": "h1", "type": "ipmask"})
    );
    assert_eq!(
        reply["result"][1]["data"],
        json!({"name": "fw1", "conn_status": "up"})
    );
}

#[tokio::test]
async fn json_under_a_form_content_type_is_accepted_and_garbage_is_minus_8() {
    let fmg = Fmg::start(scenario()).await;
    let body = json!({"id": 1, "method": "exec", "params": [{"url": "sys/login/user", "data": {"user": "rw", "passwd": "rw-pw"}}]});
    let resp = fmg
        .http
        .post(fmg.handle.jsonrpc_url())
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    let reply: Value = resp.json().await.unwrap();
    assert_eq!(status(&reply), (0, "OK".into()));
    let resp = fmg
        .http
        .post(fmg.handle.jsonrpc_url())
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let reply: Value = resp.json().await.unwrap();
    assert_eq!(status(&reply), (-8, "Invalid parameter".into()));
}

#[tokio::test]
async fn admin_limited_to_other_adoms_gets_minus_11() {
    let fmg = Fmg::start(scenario()).await;
    fmg.handle.put_admin(AdminUser {
        adoms: vec!["ws".into()],
        ..admin("tenant", RpcPermit::ReadWrite, "Standard_User")
    });
    let s = fmg.login("tenant").await;
    assert_eq!(
        status(&fmg.rpc(&s, "get", json!({"url": ADDR})).await),
        (-11, "No permission for the resource".into())
    );
    assert_eq!(
        status(
            &fmg.rpc(
                &s,
                "get",
                json!({"url": "pm/config/adom/ws/obj/firewall/address"})
            )
            .await
        )
        .0,
        0
    );
    let data = json!({"target": ["adom/root/device/fw1"], "action": "get", "resource": "/api/v2/monitor/system/status"});
    assert_eq!(
        status(
            &fmg.rpc(&s, "exec", json!({"url": "sys/proxy/json", "data": data}))
                .await
        )
        .0,
        -11
    );
}

#[tokio::test]
async fn rpc_permit_changed_to_read_takes_effect_on_live_session() {
    let fmg = Fmg::start(scenario()).await;
    let s = fmg.login("rw").await;
    assert!(fmg.handle.set_rpc_permit("rw", RpcPermit::Read));
    let reply = fmg
        .rpc(
            &s,
            "set",
            json!({"url": ADDR, "data": {"name": "x", "subnet": "10.3.3.3/32"}}),
        )
        .await;
    assert_eq!(
        status(&reply),
        (-11, "No permission for the resource".into())
    );
    assert!(fmg.handle.set_api_key("api", Some("new-key".into())));
    let get = json!({"id": 1, "method": "get", "params": [{"url": ADDR}]});
    assert_eq!(
        status(&fmg.raw(get.clone(), Some("k3y"), "").await.1).0,
        -11,
        "old key is gone"
    );
    assert_eq!(status(&fmg.raw(get, Some("new-key"), "").await.1).0, 0);
}

#[tokio::test]
async fn injected_reset_drops_the_connection_once() {
    let fmg = Fmg::start(scenario()).await;
    fmg.handle.add_fault(FaultRule {
        url: "/sys/login".into(),
        reset: true,
        times: Some(1),
        ..Default::default()
    });
    let body = json!({"id": 1, "method": "exec", "params": [{"url": "sys/login/user", "data": {"user": "rw", "passwd": "rw-pw"}}]});
    let err = fmg
        .http
        .post(fmg.handle.jsonrpc_url())
        .json(&body)
        .send()
        .await;
    assert!(err.is_err(), "no HTTP answer after a reset: {err:?}");
    let (http, reply) = fmg.raw(body, None, "").await;
    assert_eq!((http, status(&reply).0), (200, 0));
}

#[tokio::test]
async fn trusted_hosts_are_checked_against_the_real_source_ip() {
    let mut s = scenario();
    let only_2 = vec![["127.0.0.2".parse().unwrap(), std::net::Ipv4Addr::BROADCAST]];
    s.admins[4].trusthosts = only_2.clone();
    s.admins[0].trusthosts = only_2;
    let fmg = Fmg::start(s).await;
    let ca = reqwest::Certificate::from_pem(fmg.handle.ca_pem().unwrap().as_bytes()).unwrap();
    let from_2 = reqwest::Client::builder()
        .add_root_certificate(ca)
        .local_address(std::net::IpAddr::from([127, 0, 0, 2]))
        .build()
        .unwrap();
    let get = json!({"id": 1, "method": "get", "params": [{"url": ADDR}]});
    let reply: Value = from_2
        .post(fmg.handle.jsonrpc_url())
        .bearer_auth("k3y")
        .json(&get)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(status(&reply).0, 0);
    assert_eq!(
        status(&fmg.raw(get, Some("k3y"), "").await.1).0,
        -11,
        "127.0.0.1 is not trusted"
    );
    let login = json!({"id": 1, "method": "exec", "params": [{"url": "sys/login/user", "data": {"user": "rw", "passwd": "rw-pw"}}]});
    assert_eq!(
        status(&fmg.raw(login.clone(), None, "").await.1),
        (-22, "Login fail".into())
    );
    let reply: Value = from_2
        .post(fmg.handle.jsonrpc_url())
        .json(&login)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(status(&reply).0, 0);
    let peers = fmg.handle.counts_by_peer();
    assert_eq!(
        peers,
        vec![
            ("127.0.0.1".parse().unwrap(), 2),
            ("127.0.0.2".parse().unwrap(), 2)
        ]
    );
}

#[tokio::test]
async fn shutdown_stops_listening() {
    let fmg = Fmg::start(scenario()).await;
    let url = fmg.handle.jsonrpc_url();
    let Fmg { handle, http, .. } = fmg;
    handle.shutdown().await;
    assert!(http.post(&url).body("{}").send().await.is_err());
}

#[tokio::test]
async fn clone_copies_an_object_under_a_new_name() {
    let fmg = Fmg::start(scenario()).await;
    let s = fmg.login("rw").await;
    let reply = fmg
        .rpc(
            &s,
            "clone",
            json!({"url": format!("{ADDR}/h1"), "data": {"name": "h1-copy"}}),
        )
        .await;
    assert_eq!(reply["result"][0]["data"], json!({"name": "h1-copy"}));
    assert_eq!(
        fmg.handle
            .object("root", Table::Address, "h1-copy")
            .unwrap()["subnet"],
        json!(["10.0.0.1", "255.255.255.255"])
    );
    let again = fmg
        .rpc(
            &s,
            "clone",
            json!({"url": format!("{ADDR}/h1"), "data": {"name": "h1-copy"}}),
        )
        .await;
    assert_eq!(status(&again), (-2, "Object already exists".into()));
    let missing = fmg
        .rpc(
            &s,
            "clone",
            json!({"url": format!("{ADDR}/ghost"), "data": {"name": "g2"}}),
        )
        .await;
    assert_eq!(status(&missing), (-3, "Object does not exist".into()));
}

#[tokio::test(start_paused = true)]
async fn idle_timeout_api_set_over_the_api_applies() {
    let fmg = Fmg::start(scenario()).await;
    let s = fmg.login("rw").await;
    let url = "/cli/global/system/admin/setting";
    assert_eq!(
        fmg.rpc(&s, "get", json!({"url": url})).await["result"][0]["data"],
        json!({"idle_timeout_api": 900})
    );
    assert_eq!(
        status(
            &fmg.rpc(
                &s,
                "set",
                json!({"url": url, "data": {"idle_timeout_api": 0}})
            )
            .await
        )
        .0,
        -10
    );
    assert_eq!(
        status(
            &fmg.rpc(
                &s,
                "set",
                json!({"url": url, "data": {"idle_timeout_api": 30}})
            )
            .await
        )
        .0,
        0
    );
    tokio::time::advance(std::time::Duration::from_secs(31)).await;
    assert_eq!(
        status(&fmg.rpc(&s, "get", json!({"url": url})).await).0,
        -11
    );
}

#[tokio::test]
async fn workspace_dirty_reports_the_callers_uncommitted_changes() {
    let fmg = Fmg::start(scenario()).await;
    let s = fmg.login("rw").await;
    let dirty = "/dvmdb/adom/ws/workspace/dirty";
    fmg.rpc(&s, "exec", json!({"url": "/dvmdb/adom/ws/workspace/lock"}))
        .await;
    assert_eq!(
        fmg.rpc(&s, "get", json!({"url": dirty})).await["result"][0]["data"],
        json!({"dirty": 0})
    );
    fmg.rpc(&s, "add", json!({"url": "pm/config/adom/ws/obj/firewall/address", "data": {"name": "d", "subnet": "10.0.0.4/32"}})).await;
    assert_eq!(
        fmg.rpc(&s, "get", json!({"url": dirty})).await["result"][0]["data"],
        json!({"dirty": 1})
    );
    fmg.rpc(
        &s,
        "exec",
        json!({"url": "/dvmdb/adom/ws/workspace/commit"}),
    )
    .await;
    assert_eq!(
        fmg.rpc(&s, "get", json!({"url": dirty})).await["result"][0]["data"],
        json!({"dirty": 0})
    );
}

#[tokio::test]
async fn forced_code_refuses_the_write_but_reset_applies_it() {
    let fmg = Fmg::start(scenario()).await;
    let s = fmg.login("rw").await;
    fmg.handle.add_fault(FaultRule {
        url: ADDR.into(),
        code: Some(-10147),
        message: Some("no write permission".into()),
        times: Some(1),
        ..Default::default()
    });
    let add = |n: &str| json!({"url": ADDR, "data": {"name": n, "subnet": "10.0.0.8/32"}});
    assert_eq!(
        status(&fmg.rpc(&s, "add", add("f1")).await),
        (-10147, "no write permission".into())
    );
    assert!(fmg.handle.object("root", Table::Address, "f1").is_none());
    fmg.handle.add_fault(FaultRule {
        url: ADDR.into(),
        reset: true,
        times: Some(1),
        ..Default::default()
    });
    let body = json!({"id": 1, "method": "add", "params": [add("f2")], "session": s});
    assert!(
        fmg.http
            .post(fmg.handle.jsonrpc_url())
            .json(&body)
            .send()
            .await
            .is_err()
    );
    assert!(
        fmg.handle.object("root", Table::Address, "f2").is_some(),
        "applied, answer lost"
    );
}

#[tokio::test(start_paused = true)]
async fn injected_latency_delays_the_answer() {
    let fmg = Fmg::start(scenario()).await;
    let s = fmg.login("rw").await;
    fmg.handle.add_fault(FaultRule {
        url: ADDR.into(),
        latency_ms: 5_000,
        jitter_ms: 1_000,
        ..Default::default()
    });
    let t0 = tokio::time::Instant::now();
    assert_eq!(status(&fmg.rpc(&s, "get", json!({"url": ADDR})).await).0, 0);
    let waited = t0.elapsed();
    assert!(
        (5_000..=6_000).contains(&(waited.as_millis() as u64)),
        "waited {waited:?}"
    );
}

#[tokio::test]
async fn fault_rules_queue_in_order_instead_of_stacking_on_one_request() {
    let fmg = Fmg::start(scenario()).await;
    let s = fmg.login("rw").await;
    for (code, message) in [(-1, "first"), (-6, "second")] {
        fmg.handle.add_fault(FaultRule {
            url: ADDR.into(),
            code: Some(code),
            message: Some(message.into()),
            times: Some(1),
            ..Default::default()
        });
    }
    let mut seen = Vec::new();
    for _ in 0..3 {
        seen.push(status(&fmg.rpc(&s, "get", json!({"url": ADDR})).await));
    }
    assert_eq!(
        seen,
        [
            (-1, "first".into()),
            (-6, "second".into()),
            (0, "OK".into())
        ]
    );
    // A rule that answers the whole request leaves the request's other params alone: the
    // code rule behind it waits for the next request.
    fmg.handle.add_fault(FaultRule {
        url: ADDR.into(),
        http_status: Some(503),
        times: Some(1),
        ..Default::default()
    });
    fmg.handle.add_fault(FaultRule {
        url: ADDR.into(),
        code: Some(-3),
        times: Some(1),
        ..Default::default()
    });
    let (http, _) = fmg
        .raw(
            json!({"id": 1, "method": "get", "params": [{"url": ADDR}, {"url": ADDR}], "session": s}),
            None,
            "",
        )
        .await;
    assert_eq!(http, 503);
    assert_eq!(fmg.handle.faults().len(), 1, "the -3 rule is still queued");
    assert_eq!(
        status(&fmg.rpc(&s, "get", json!({"url": ADDR})).await).0,
        -3
    );
    assert!(fmg.handle.faults().is_empty());
}

#[tokio::test]
async fn an_injected_http_status_can_carry_a_jsonrpc_or_an_html_body_and_headers() {
    let fmg = Fmg::start(scenario()).await;
    let s = fmg.login("rw").await;
    let body = json!({"id": 4, "method": "get", "params": [{"url": ADDR}], "session": s});
    fmg.handle.add_fault(FaultRule {
        url: ADDR.into(),
        http_status: Some(503),
        body: HttpFaultBody::Jsonrpc,
        code: Some(-11),
        message: Some("No permission for the resource".into()),
        headers: [("Retry-After".to_string(), "5".to_string())].into(),
        times: Some(1),
        ..Default::default()
    });
    let resp = fmg
        .http
        .post(fmg.handle.jsonrpc_url())
        .json(&body)
        .send()
        .await
        .expect("answer");
    assert_eq!(
        (
            resp.status().as_u16(),
            resp.headers()["retry-after"].clone()
        ),
        (503, "5".parse().expect("value"))
    );
    let reply: Value = resp.json().await.expect("a JSON-RPC body");
    assert_eq!(reply["id"], 4);
    assert_eq!(
        status(&reply),
        (-11, "No permission for the resource".into())
    );
    fmg.handle.add_fault(FaultRule {
        url: ADDR.into(),
        http_status: Some(502),
        body: HttpFaultBody::Html,
        times: Some(1),
        ..Default::default()
    });
    let resp = fmg
        .http
        .post(fmg.handle.jsonrpc_url())
        .json(&body)
        .send()
        .await
        .expect("answer");
    assert_eq!(resp.status().as_u16(), 502);
    assert!(
        resp.headers()["content-type"]
            .to_str()
            .unwrap_or_default()
            .starts_with("text/html")
    );
    assert!(
        resp.text()
            .await
            .expect("body")
            .contains("<title>502 Bad Gateway</title>")
    );
    // Without a body kind the status comes bare, as before.
    fmg.handle.add_fault(FaultRule {
        url: ADDR.into(),
        http_status: Some(500),
        times: Some(1),
        ..Default::default()
    });
    let resp = fmg
        .http
        .post(fmg.handle.jsonrpc_url())
        .json(&body)
        .send()
        .await
        .expect("answer");
    assert_eq!(resp.status().as_u16(), 500);
    assert_eq!(resp.text().await.expect("body"), "");
}

#[tokio::test]
async fn the_request_log_keeps_each_requests_user_agent() {
    let fmg = Fmg::start(scenario()).await;
    let login = json!({"id": 1, "method": "exec", "params": [{"url": "/sys/login/user", "data": {"user": "rw", "passwd": "rw-pw"}}]});
    let reply = fmg
        .http
        .post(fmg.handle.jsonrpc_url())
        .header(reqwest::header::USER_AGENT, "fortisync/9.9.9 (replica-b)")
        .json(&login)
        .send()
        .await
        .unwrap();
    assert_eq!(reply.status(), 200);
    fmg.login("rw").await;
    let agents: Vec<Option<String>> = fmg
        .handle
        .control()
        .requests()
        .into_iter()
        .map(|r| r.user_agent)
        .collect();
    assert_eq!(
        agents,
        [Some("fortisync/9.9.9 (replica-b)".to_string()), None]
    );
    let json = serde_json::to_value(&fmg.handle.control().requests()[1]).unwrap();
    assert!(json.get("user_agent").is_none(), "{json}");
}
