//! The FortiOS simulator against the facts page: auth, lockout, envelopes, error codes,
//! queries, monitor endpoints, versions and client tolerance — over real HTTPS.

mod support;

use std::time::Duration;

use fortisync::sim::fortios::{
    FaultBody, FaultRule, FortiGateScenario, FosVersion, GlobalSettings, Permission, Profile,
    Table, VdomObjects,
};
use fortisync::sim::{Scenario, Simulator};
use reqwest::Method;
use serde_json::{Value, json};
use support::sim_client::{client, ip, json as body_of, send};

const KEY: &str = "k3y-for-api-user-0000000000000";

fn fortigate(version: &str) -> FortiGateScenario {
    let yaml = format!(
        r#"
name: fw
version: "{version}"
api_users:
  - name: fortisync
    key: {KEY}
    accprofile: super_admin
    trusthosts: ["127.0.0.0/24"]
  - name: reader
    key: reader-key
    accprofile: readonly
    trusthosts: ["127.0.0.0/24"]
admins:
  - name: admin
    password: s3cret
profiles:
  readonly: {{fwgrp: read, sysgrp: none}}
"#
    );
    fortisync::yaml::from_str(&yaml).expect("scenario")
}

async fn sim(fg: FortiGateScenario) -> Simulator {
    Simulator::start(Scenario {
        fortigates: vec![fg],
        ..Scenario::default()
    })
    .await
    .expect("simulator starts")
}

fn url(sim: &Simulator, path: &str) -> String {
    format!("{}{path}", sim.fortigate("fw").url())
}

#[tokio::test]
async fn bearer_key_reads_and_envelope_has_fortinet_fields() {
    let sim = sim(fortigate("7.4.3")).await;
    let c = client(sim.fortigate("fw").ca_pem(), ip(1));
    let (status, body) = body_of(
        send(
            &c,
            Method::GET,
            &url(&sim, "/api/v2/cmdb/firewall/address"),
            Some(KEY),
            None,
        )
        .await,
    )
    .await;
    assert_eq!(status, 200);
    for field in [
        "http_method",
        "results",
        "vdom",
        "path",
        "name",
        "status",
        "http_status",
        "serial",
        "version",
        "build",
        "revision",
    ] {
        assert!(body.get(field).is_some(), "envelope lacks {field}: {body}");
    }
    assert_eq!(body["status"], "success");
    assert_eq!(body["path"], "firewall");
    assert_eq!(body["name"], "address");
    assert_eq!(body["vdom"], "root");
    assert_eq!(body["version"], "v7.4.3");
    assert!(body["results"].is_array());
}

#[tokio::test]
async fn wrong_key_is_401_html_and_counts_toward_the_lockout() {
    let sim = sim(fortigate("7.4.3")).await;
    let fg = sim.fortigate("fw");
    let c = client(fg.ca_pem(), ip(2));
    let response = send(
        &c,
        Method::GET,
        &url(&sim, "/api/v2/monitor/system/status"),
        Some("wrong"),
        None,
    )
    .await;
    assert_eq!(response.status().as_u16(), 401);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .expect("ct")
            .starts_with("text/html")
    );
    assert!(
        response
            .text()
            .await
            .expect("body")
            .contains("401 Unauthorized")
    );
    assert_eq!(fg.auth_failures_from(ip(2)), 1);
}

#[tokio::test(start_paused = true)]
async fn third_failure_locks_the_source_ip_with_429_for_every_request() {
    let sim = sim(fortigate("7.4.3")).await;
    let fg = sim.fortigate("fw");
    let locked = client(fg.ca_pem(), ip(3));
    let other = client(fg.ca_pem(), ip(4));
    let status_url = url(&sim, "/api/v2/monitor/system/status");
    for _ in 0..3 {
        assert_eq!(
            send(&locked, Method::GET, &status_url, Some("wrong"), None)
                .await
                .status()
                .as_u16(),
            401
        );
    }
    // Locked: even the right key gets 429 with the HTML page, and it does not count.
    let response = send(&locked, Method::GET, &status_url, Some(KEY), None).await;
    assert_eq!(response.status().as_u16(), 429);
    assert!(
        response
            .text()
            .await
            .expect("body")
            .contains("Too Many Requests")
    );
    assert_eq!(fg.auth_failures_from(ip(3)), 3);
    // Another source IP is not affected.
    assert_eq!(
        send(&other, Method::GET, &status_url, Some(KEY), None)
            .await
            .status()
            .as_u16(),
        200
    );
    assert_eq!(fg.lockout_remaining(ip(3)), Some(Duration::from_secs(60)));
    tokio::time::advance(Duration::from_secs(60)).await;
    assert_eq!(
        send(&locked, Method::GET, &status_url, Some(KEY), None)
            .await
            .status()
            .as_u16(),
        200
    );
}

#[tokio::test(start_paused = true)]
async fn repeat_api_key_lockouts_double_the_window() {
    let sim = sim(fortigate("7.4.3")).await;
    let fg = sim.fortigate("fw");
    let c = client(fg.ca_pem(), ip(5));
    let status_url = url(&sim, "/api/v2/monitor/system/status");
    for expected in [60, 120, 240] {
        for _ in 0..3 {
            send(&c, Method::GET, &status_url, Some("wrong"), None).await;
        }
        assert_eq!(
            fg.lockout_remaining(ip(5)),
            Some(Duration::from_secs(expected))
        );
        tokio::time::advance(Duration::from_secs(expected)).await;
    }
}

#[tokio::test(start_paused = true)]
async fn a_success_resets_the_failure_count() {
    let sim = sim(fortigate("7.4.3")).await;
    let fg = sim.fortigate("fw");
    let c = client(fg.ca_pem(), ip(6));
    let status_url = url(&sim, "/api/v2/monitor/system/status");
    for _ in 0..2 {
        send(&c, Method::GET, &status_url, Some("wrong"), None).await;
    }
    assert_eq!(
        send(&c, Method::GET, &status_url, Some(KEY), None)
            .await
            .status()
            .as_u16(),
        200
    );
    for _ in 0..2 {
        send(&c, Method::GET, &status_url, Some("wrong"), None).await;
    }
    assert_eq!(
        fg.lockout_remaining(ip(6)),
        None,
        "2 + 2 failures around a success must not lock"
    );
}

#[tokio::test(start_paused = true)]
async fn lockout_settings_follow_system_global() {
    let sim = sim(fortigate("7.4.3")).await;
    let fg = sim.fortigate("fw");
    let c = client(fg.ca_pem(), ip(7));
    let put = send(
        &c,
        Method::PUT,
        &url(&sim, "/api/v2/cmdb/system/global"),
        Some(KEY),
        Some(json!({"admin-lockout-threshold": 1, "admin-lockout-duration": 5})),
    )
    .await;
    assert_eq!(put.status().as_u16(), 200);
    let (_, global) = body_of(
        send(
            &c,
            Method::GET,
            &url(&sim, "/api/v2/cmdb/system/global"),
            Some(KEY),
            None,
        )
        .await,
    )
    .await;
    assert_eq!(global["results"]["admin-lockout-threshold"], 1);
    assert!(
        global["results"].is_object(),
        "singleton results are an object"
    );
    let out = client(fg.ca_pem(), ip(8));
    send(
        &out,
        Method::GET,
        &url(&sim, "/api/v2/monitor/system/status"),
        Some("wrong"),
        None,
    )
    .await;
    assert_eq!(fg.lockout_remaining(ip(8)), Some(Duration::from_secs(5)));
    let bad = send(
        &c,
        Method::PUT,
        &url(&sim, "/api/v2/cmdb/system/global"),
        Some(KEY),
        Some(json!({"admin-lockout-threshold": 11})),
    )
    .await;
    let (status, body) = body_of(bad).await;
    assert_eq!((status, body["error"].clone()), (500, json!(-651)));
}

#[tokio::test]
async fn untrusted_source_gets_401_and_the_failure_counts() {
    let mut fg = fortigate("7.4.3");
    fg.api_users[0].trusthosts = vec!["127.0.0.9/32".parse().expect("net")];
    let sim = sim(fg).await;
    let fg = sim.fortigate("fw");
    let c = client(fg.ca_pem(), ip(10));
    assert_eq!(
        send(
            &c,
            Method::GET,
            &url(&sim, "/api/v2/cmdb/firewall/address"),
            Some(KEY),
            None
        )
        .await
        .status()
        .as_u16(),
        401
    );
    assert_eq!(fg.auth_failures_from(ip(10)), 1);
    let trusted = client(fg.ca_pem(), ip(9));
    assert_eq!(
        send(
            &trusted,
            Method::GET,
            &url(&sim, "/api/v2/cmdb/firewall/address"),
            Some(KEY),
            None
        )
        .await
        .status()
        .as_u16(),
        200
    );
}

#[tokio::test]
async fn token_in_url_is_refused_from_7_4_5_unless_enabled() {
    for (version, allowed) in [
        ("7.4.4", true),
        ("7.4.5", false),
        ("7.6.0", true),
        ("7.6.1", false),
    ] {
        let sim = sim(fortigate(version)).await;
        let fg = sim.fortigate("fw");
        let c = client(fg.ca_pem(), ip(11));
        let response = send(
            &c,
            Method::GET,
            &url(
                &sim,
                &format!("/api/v2/cmdb/firewall/address?access_token={KEY}"),
            ),
            None,
            None,
        )
        .await;
        if allowed {
            assert_eq!(response.status().as_u16(), 200, "{version}");
        } else {
            assert_eq!(response.status().as_u16(), 401, "{version}");
            assert_eq!(
                response.headers()["www-authenticate"],
                "error=\"invalid_token\"",
                "{version}"
            );
        }
        if !allowed {
            fg.set_global(GlobalSettings {
                rest_api_key_url_query: true,
                ..GlobalSettings::default()
            });
            let again = send(
                &c,
                Method::GET,
                &url(
                    &sim,
                    &format!("/api/v2/cmdb/firewall/address?access_token={KEY}"),
                ),
                None,
                None,
            )
            .await;
            assert_eq!(
                again.status().as_u16(),
                200,
                "{version} with rest-api-key-url-query enable"
            );
        }
    }
}

#[tokio::test]
async fn session_login_needs_csrf_on_writes_with_version_cookie_names() {
    for (version, cookie_prefix) in [
        ("7.2.3", "ccsrftoken="),
        ("7.2.4", "ccsrftoken_"),
        ("7.6.3", "ccsrf_token_"),
    ] {
        let sim = sim(fortigate(version)).await;
        let fg = sim.fortigate("fw");
        let c = client(fg.ca_pem(), ip(12));
        let login = c
            .post(url(&sim, "/logincheck"))
            .header("content-type", "application/x-www-form-urlencoded")
            .body("username=admin&secretkey=s3cret&ajax=1")
            .send()
            .await
            .expect("login");
        let cookies: Vec<String> = login
            .headers()
            .get_all("set-cookie")
            .iter()
            .map(|v| v.to_str().expect("cookie").to_string())
            .collect();
        let csrf_cookie = cookies
            .iter()
            .find(|c| c.starts_with(cookie_prefix))
            .unwrap_or_else(|| panic!("{version}: no {cookie_prefix} cookie in {cookies:?}"));
        assert!(
            cookies.iter().any(|c| c.starts_with("APSCOOKIE_")),
            "{version}"
        );
        let token = csrf_cookie
            .split_once('=')
            .expect("kv")
            .1
            .split(';')
            .next()
            .expect("value")
            .trim_matches('"')
            .to_string();
        let text = login.text().await.expect("body");
        if version == "7.6.3" {
            assert_eq!(
                serde_json::from_str::<Value>(&text).expect("json"),
                json!({"status": 1})
            );
        } else {
            assert!(text.starts_with('1'), "{version}: {text}");
        }
        let (status, _) = body_of(
            send(
                &c,
                Method::GET,
                &url(&sim, "/api/v2/cmdb/firewall/address"),
                None,
                None,
            )
            .await,
        )
        .await;
        assert_eq!(status, 200, "{version}: reads work with the cookie alone");
        let address = json!({"name": "h1", "subnet": "192.0.2.1/32"});
        let no_csrf = c
            .post(url(&sim, "/api/v2/cmdb/firewall/address"))
            .json(&address)
            .send()
            .await
            .expect("post");
        assert_eq!(
            no_csrf.status().as_u16(),
            403,
            "{version}: a write without X-CSRFTOKEN"
        );
        let with_csrf = c
            .post(url(&sim, "/api/v2/cmdb/firewall/address"))
            .header("X-CSRFTOKEN", &token)
            .json(&address)
            .send()
            .await
            .expect("post");
        assert_eq!(with_csrf.status().as_u16(), 200, "{version}");
        let logout = c
            .post(url(&sim, "/logout"))
            .header("X-CSRFTOKEN", &token)
            .send()
            .await
            .expect("logout");
        assert_eq!(logout.status().as_u16(), 200);
        assert_eq!(
            send(
                &c,
                Method::GET,
                &url(&sim, "/api/v2/cmdb/firewall/address"),
                None,
                None
            )
            .await
            .status()
            .as_u16(),
            401
        );
    }
}

#[tokio::test]
async fn json_authentication_returns_a_session_key_and_bad_password_fails() {
    let sim = sim(fortigate("7.4.3")).await;
    let fg = sim.fortigate("fw");
    let c = client(fg.ca_pem(), ip(13));
    let (status, body) = body_of(
        send(
            &c,
            Method::POST,
            &url(&sim, "/api/v2/authentication"),
            None,
            Some(json!({"username": "admin", "secretkey": "s3cret", "request_key": true})),
        )
        .await,
    )
    .await;
    assert_eq!((status, body["status_code"].clone()), (200, json!(5)));
    let key = body["session_key"]
        .as_str()
        .expect("session key")
        .to_string();
    assert_eq!(
        send(
            &c,
            Method::GET,
            &url(&sim, "/api/v2/cmdb/firewall/address"),
            Some(&key),
            None
        )
        .await
        .status()
        .as_u16(),
        200
    );
    let (status, body) = body_of(
        send(
            &c,
            Method::POST,
            &url(&sim, "/api/v2/authentication"),
            None,
            Some(json!({"username": "admin", "secretkey": "nope"})),
        )
        .await,
    )
    .await;
    assert_eq!(
        (status, body["status_message"].clone()),
        (401, json!("LOGIN_FAILED"))
    );
    assert_eq!(
        fg.auth_failures_from(ip(13)),
        1,
        "a wrong password counts toward the lockout too"
    );
}

#[tokio::test]
async fn profiles_refuse_writes_and_reads_without_permission() {
    let sim = sim(fortigate("7.4.3")).await;
    let c = client(sim.fortigate("fw").ca_pem(), ip(14));
    let (status, body) = body_of(
        send(
            &c,
            Method::POST,
            &url(&sim, "/api/v2/cmdb/firewall/address"),
            Some("reader-key"),
            Some(json!({"name": "x", "subnet": "192.0.2.1/32"})),
        )
        .await,
    )
    .await;
    assert_eq!(status, 403);
    assert_eq!(body["http_status"], 403);
    assert_eq!(
        send(
            &c,
            Method::GET,
            &url(&sim, "/api/v2/cmdb/firewall/address"),
            Some("reader-key"),
            None
        )
        .await
        .status()
        .as_u16(),
        200
    );
    assert_eq!(
        send(
            &c,
            Method::GET,
            &url(&sim, "/api/v2/cmdb/system/external-resource"),
            Some("reader-key"),
            None
        )
        .await
        .status()
        .as_u16(),
        403
    );
    let (status, body) = body_of(
        send(
            &c,
            Method::POST,
            &url(&sim, "/api/v2/monitor/system/os/reboot"),
            Some("reader-key"),
            None,
        )
        .await,
    )
    .await;
    assert_eq!((status, body["action"].clone()), (403, json!("reboot")));
    assert_eq!(
        send(
            &c,
            Method::POST,
            &url(&sim, "/api/v2/monitor/system/os/reboot"),
            Some(KEY),
            None
        )
        .await
        .status()
        .as_u16(),
        200
    );
    let (status, _) = body_of(
        send(
            &c,
            Method::POST,
            &url(&sim, "/api/v2/monitor/system/dashboard/reboot"),
            Some(KEY),
            None,
        )
        .await,
    )
    .await;
    assert_eq!(status, 404, "dashboard/reboot never existed (seed 001)");
    sim.fortigate("fw").set_profile(
        "readonly",
        Profile {
            fwgrp: Permission::ReadWrite,
            sysgrp: Permission::None,
        },
    );
    assert_eq!(
        send(
            &c,
            Method::POST,
            &url(&sim, "/api/v2/cmdb/firewall/address"),
            Some("reader-key"),
            Some(json!({"name": "x", "subnet": "192.0.2.1/32"}))
        )
        .await
        .status()
        .as_u16(),
        200
    );
}

#[tokio::test]
async fn cmdb_errors_carry_fortios_codes() {
    let sim = sim(fortigate("6.4.14")).await;
    let c = client(sim.fortigate("fw").ca_pem(), ip(15));
    let post = |body: Value, path: &'static str| {
        let c = c.clone();
        let u = url(&sim, path);
        async move { body_of(send(&c, Method::POST, &u, Some(KEY), Some(body)).await).await }
    };
    let (s, b) = post(
        json!({"name": "a", "subnet": "192.0.2.1/32"}),
        "/api/v2/cmdb/firewall/address",
    )
    .await;
    assert_eq!(
        (s, b["mkey"].clone(), b["revision_changed"].clone()),
        (200, json!("a"), json!(true))
    );
    let (s, b) = post(
        json!({"name": "a", "subnet": "192.0.2.1/32"}),
        "/api/v2/cmdb/firewall/address",
    )
    .await;
    assert_eq!(
        (s, b["error"].clone(), b["status"].clone()),
        (500, json!(-5), json!("error"))
    );
    let (s, b) = post(
        json!({"name": "b", "subnet": "192.0.2.300/32"}),
        "/api/v2/cmdb/firewall/address",
    )
    .await;
    assert_eq!((s, b["error"].clone()), (500, json!(-651)));
    assert!(
        b["cli_error"]
            .as_str()
            .expect("cli_error")
            .contains("192.0.2.300")
    );
    let (s, b) = post(
        json!({"name": "n".repeat(80), "subnet": "192.0.2.1/32"}),
        "/api/v2/cmdb/firewall/address",
    )
    .await;
    assert_eq!((s, b["error"].clone()), (500, json!(-72)));
    let (s, b) = post(
        json!({"name": "g", "member": [{"name": "ghost"}]}),
        "/api/v2/cmdb/firewall/addrgrp",
    )
    .await;
    assert_eq!((s, b["error"].clone()), (500, json!(-651)));
    let (s, b) = post(
        json!({"name": "g", "member": []}),
        "/api/v2/cmdb/firewall/addrgrp",
    )
    .await;
    assert_eq!(
        (s, b["error"].clone()),
        (500, json!(-56)),
        "6.4 refuses an empty group"
    );
    let (s, _) = post(
        json!({"name": "g", "member": [{"name": "a"}]}),
        "/api/v2/cmdb/firewall/addrgrp",
    )
    .await;
    assert_eq!(s, 200);
    let (s, b) = body_of(
        send(
            &c,
            Method::DELETE,
            &url(&sim, "/api/v2/cmdb/firewall/address/a"),
            Some(KEY),
            None,
        )
        .await,
    )
    .await;
    assert_eq!((s, b["error"].clone()), (500, json!(-23)));
    let (s, b) = body_of(
        send(
            &c,
            Method::GET,
            &url(&sim, "/api/v2/cmdb/firewall/address/missing"),
            Some(KEY),
            None,
        )
        .await,
    )
    .await;
    assert_eq!(
        (s, b["mkey"].clone(), b.get("error").is_none()),
        (404, json!("missing"), true)
    );
    let (s, _) = body_of(
        send(
            &c,
            Method::DELETE,
            &url(&sim, "/api/v2/cmdb/firewall/address"),
            Some(KEY),
            None,
        )
        .await,
    )
    .await;
    assert_eq!(s, 405, "DELETE on a collection never purges");
    let bad_json = c
        .post(url(&sim, "/api/v2/cmdb/firewall/address"))
        .bearer_auth(KEY)
        .body("{not json")
        .send()
        .await
        .expect("post");
    assert_eq!(bad_json.status().as_u16(), 400);
}

#[tokio::test]
async fn group_member_cap_is_600_on_6_4() {
    let mut fg = fortigate("6.4.14");
    let addresses: Vec<Value> = (0..601).map(|i| json!({"name": format!("h{i}"), "subnet": format!("10.0.{}.{}/32", i / 250, i % 250)})).collect();
    let members: Vec<Value> = (0..600).map(|i| json!({"name": format!("h{i}")})).collect();
    fg.objects.insert(
        "root".into(),
        VdomObjects {
            addresses,
            addrgrps: vec![json!({"name": "big", "member": members})],
            ..VdomObjects::default()
        },
    );
    let sim = sim(fg).await;
    let c = client(sim.fortigate("fw").ca_pem(), ip(16));
    let (s, b) = body_of(
        send(
            &c,
            Method::POST,
            &url(&sim, "/api/v2/cmdb/firewall/addrgrp/big/member"),
            Some(KEY),
            Some(json!({"name": "h600"})),
        )
        .await,
    )
    .await;
    assert_eq!((s, b["error"].clone()), (500, json!(-4)));
}

#[tokio::test]
async fn member_child_urls_and_percent_encoded_names() {
    let sim = sim(fortigate("7.4.3")).await;
    let c = client(sim.fortigate("fw").ca_pem(), ip(17));
    for name in ["a/b", "h 1"] {
        let (s, _) = body_of(
            send(
                &c,
                Method::POST,
                &url(&sim, "/api/v2/cmdb/firewall/address"),
                Some(KEY),
                Some(json!({"name": name, "subnet": "192.0.2.7/32"})),
            )
            .await,
        )
        .await;
        assert_eq!(s, 200);
    }
    let (s, b) = body_of(
        send(
            &c,
            Method::GET,
            &url(&sim, "/api/v2/cmdb/firewall/address/a%2Fb"),
            Some(KEY),
            None,
        )
        .await,
    )
    .await;
    assert_eq!(
        (
            s,
            b["results"][0]["name"].clone(),
            b["results"][0]["subnet"].clone()
        ),
        (200, json!("a/b"), json!("192.0.2.7 255.255.255.255"))
    );
    assert_eq!(b["results"][0]["q_origin_key"], "a/b");
    assert_eq!(
        send(
            &c,
            Method::GET,
            &url(&sim, "/api/v2/cmdb/firewall/address/a/b"),
            Some(KEY),
            None
        )
        .await
        .status()
        .as_u16(),
        400,
        "a literal / in the mkey"
    );
    send(
        &c,
        Method::POST,
        &url(&sim, "/api/v2/cmdb/firewall/addrgrp"),
        Some(KEY),
        Some(json!({"name": "g", "member": [{"name": "a/b"}]})),
    )
    .await;
    let (s, _) = body_of(
        send(
            &c,
            Method::POST,
            &url(&sim, "/api/v2/cmdb/firewall/addrgrp/g/member"),
            Some(KEY),
            Some(json!({"name": "h 1"})),
        )
        .await,
    )
    .await;
    assert_eq!(s, 200);
    let (_, b) = body_of(
        send(
            &c,
            Method::GET,
            &url(&sim, "/api/v2/cmdb/firewall/addrgrp/g/member"),
            Some(KEY),
            None,
        )
        .await,
    )
    .await;
    assert_eq!(b["results"].as_array().expect("members").len(), 2);
    let (s, _) = body_of(
        send(
            &c,
            Method::DELETE,
            &url(&sim, "/api/v2/cmdb/firewall/addrgrp/g/member/a%2Fb"),
            Some(KEY),
            None,
        )
        .await,
    )
    .await;
    assert_eq!(s, 200);
    assert_eq!(
        sim.fortigate("fw")
            .group_members("root", Table::Addrgrp, "g"),
        Some(vec!["h 1".to_string()])
    );
}

#[tokio::test]
async fn filters_format_and_paging() {
    let mut fg = fortigate("7.4.3");
    fg.objects.insert(
        "root".into(),
        VdomObjects {
            addresses: vec![
                json!({"name": "fs_10.0.0.1", "subnet": "10.0.0.1/32", "comment": "managed-by fortisync ns/a"}),
                json!({"name": "fs_10.0.0.2", "subnet": "10.0.0.2/32"}),
                json!({"name": "admin-pc", "subnet": "10.9.9.9/32"}),
            ],
            ..VdomObjects::default()
        },
    );
    let sim = sim(fg).await;
    let c = client(sim.fortigate("fw").ca_pem(), ip(18));
    let names = |b: &Value| -> Vec<String> {
        b["results"]
            .as_array()
            .expect("array")
            .iter()
            .map(|o| o["name"].as_str().expect("name").to_string())
            .collect()
    };
    let (_, b) = body_of(
        send(
            &c,
            Method::GET,
            &url(
                &sim,
                "/api/v2/cmdb/firewall/address?filter=name%3D%40fs_&format=name%7Ccomment",
            ),
            Some(KEY),
            None,
        )
        .await,
    )
    .await;
    assert_eq!(names(&b), ["fs_10.0.0.1", "fs_10.0.0.2"]);
    assert!(
        b["results"][0].get("subnet").is_none(),
        "format keeps only the listed fields"
    );
    let (_, b) = body_of(
        send(
            &c,
            Method::GET,
            &url(
                &sim,
                "/api/v2/cmdb/firewall/address?filter=name==admin-pc,name==fs_10.0.0.2",
            ),
            Some(KEY),
            None,
        )
        .await,
    )
    .await;
    assert_eq!(names(&b), ["admin-pc", "fs_10.0.0.2"]);
    let (_, b) = body_of(
        send(
            &c,
            Method::GET,
            &url(&sim, "/api/v2/cmdb/firewall/address?start=1&count=1"),
            Some(KEY),
            None,
        )
        .await,
    )
    .await;
    assert_eq!(names(&b), ["fs_10.0.0.1"]);
}

#[tokio::test]
async fn vdoms_scope_and_star_answers_an_array_of_envelopes() {
    let mut fg = fortigate("7.4.3");
    fg.vdoms = vec!["root".into(), "dmz".into()];
    let sim = sim(fg).await;
    let c = client(sim.fortigate("fw").ca_pem(), ip(19));
    send(
        &c,
        Method::POST,
        &url(&sim, "/api/v2/cmdb/firewall/address?vdom=dmz"),
        Some(KEY),
        Some(json!({"name": "d", "subnet": "192.0.2.1/32"})),
    )
    .await;
    let (_, root) = body_of(
        send(
            &c,
            Method::GET,
            &url(&sim, "/api/v2/cmdb/firewall/address/d"),
            Some(KEY),
            None,
        )
        .await,
    )
    .await;
    assert_eq!(root["http_status"], 404);
    let (_, all) = body_of(
        send(
            &c,
            Method::GET,
            &url(&sim, "/api/v2/cmdb/firewall/address?vdom=*"),
            Some(KEY),
            None,
        )
        .await,
    )
    .await;
    let envelopes = all.as_array().expect("array of envelopes");
    assert_eq!(envelopes.len(), 2);
    assert_eq!(envelopes[1]["vdom"], "dmz");
    assert_eq!(envelopes[1]["results"][0]["name"], "d");
    let (s, _) = body_of(
        send(
            &c,
            Method::GET,
            &url(&sim, "/api/v2/cmdb/firewall/address?vdom=nope"),
            Some(KEY),
            None,
        )
        .await,
    )
    .await;
    assert_eq!(s, 404, "a wrong VDOM is a 404 (F7)");
}

#[tokio::test]
async fn monitor_status_and_tolerated_client_quirks() {
    let sim = sim(fortigate("7.4.3")).await;
    let c = client(sim.fortigate("fw").ca_pem(), ip(20));
    let (s, b) = body_of(
        send(
            &c,
            Method::GET,
            &url(&sim, "/api/v2/monitor/system/status"),
            Some(KEY),
            None,
        )
        .await,
    )
    .await;
    assert_eq!(
        (s, b["results"]["model"].clone(), b["serial"].clone()),
        (200, json!("FGT60F"), json!("FGT60FTK20000001"))
    );
    assert!(b.get("http_status").is_none(), "like a 6.4.12 monitor body");
    let (s, _) = body_of(
        send(
            &c,
            Method::GET,
            &url(&sim, "/api/v2/cmdb/system/status"),
            Some(KEY),
            None,
        )
        .await,
    )
    .await;
    assert_eq!(s, 200);
    // Ansible: JSON under a form content type, trailing slashes, //, ?global=1, null DELETE bodies.
    let form = c
        .post(url(&sim, "//api/v2/cmdb/firewall/address/?global=1"))
        .bearer_auth(KEY)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(r#"{"name":"q","subnet":"192.0.2.9 255.255.255.255"}"#)
        .send()
        .await
        .expect("post");
    assert_eq!(form.status().as_u16(), 200);
    let del = c
        .delete(url(&sim, "/api/v2/cmdb/firewall/address/q/"))
        .bearer_auth(KEY)
        .body("null")
        .send()
        .await
        .expect("delete");
    assert_eq!(del.status().as_u16(), 200);
    let (s, b) = body_of(
        send(
            &c,
            Method::GET,
            &url(&sim, "/api/v2/cmdb/firewall/address?action=schema"),
            Some(KEY),
            None,
        )
        .await,
    )
    .await;
    assert_eq!((s, b["results"]["mkey"].clone()), (200, json!("name")));
}

#[tokio::test]
async fn external_resource_push_needs_7_2_1_and_a_push_feed() {
    for (version, pushes) in [("7.2.0", false), ("7.2.1", true)] {
        let mut fg = fortigate(version);
        let method = if pushes { "push" } else { "feed" };
        fg.objects.insert("root".into(), VdomObjects { external_resources: vec![json!({"name": "edl", "type": "address", "update-method": method, "resource": "https://edl.example/list"})], ..VdomObjects::default() });
        let sim = sim(fg).await;
        let c = client(sim.fortigate("fw").ca_pem(), ip(21));
        let push = json!({"commands": [{"name": "edl", "command": "add", "entries": ["192.0.2.1", "10.0.0.0/24", "bogus"]}]});
        let (s, _) = body_of(
            send(
                &c,
                Method::POST,
                &url(&sim, "/api/v2/monitor/system/external-resource/dynamic"),
                Some(KEY),
                Some(push),
            )
            .await,
        )
        .await;
        if !pushes {
            assert_eq!(s, 404, "{version}: no dynamic push before 7.2.1");
            continue;
        }
        assert_eq!(s, 200);
        let (s, b) = body_of(
            send(
                &c,
                Method::GET,
                &url(
                    &sim,
                    "/api/v2/monitor/system/external-resource/entry-list?mkey=edl",
                ),
                Some(KEY),
                None,
            )
            .await,
        )
        .await;
        assert_eq!(
            (
                s,
                b["results"]["valid_count"].clone(),
                b["results"]["invalid_count"].clone()
            ),
            (200, json!(2), json!(1))
        );
        let snapshot = json!({"commands": [{"name": "edl", "command": "snapshot", "entries": ["198.51.100.1"]}]});
        send(
            &c,
            Method::POST,
            &url(&sim, "/api/v2/monitor/system/external-resource/dynamic"),
            Some(KEY),
            Some(snapshot),
        )
        .await;
        assert_eq!(
            sim.fortigate("fw").feed_entries("root", "edl"),
            ["198.51.100.1"]
        );
        let missing =
            json!({"commands": [{"name": "other", "command": "add", "entries": ["192.0.2.1"]}]});
        let (s, b) = body_of(
            send(
                &c,
                Method::POST,
                &url(&sim, "/api/v2/monitor/system/external-resource/dynamic"),
                Some(KEY),
                Some(missing),
            )
            .await,
        )
        .await;
        assert_eq!(
            (s, b["error"].clone()),
            (404, json!(-3)),
            "a feed name that does not exist (F18)"
        );
        let (s, b) = body_of(
            send(
                &c,
                Method::POST,
                &url(&sim, "/api/v2/monitor/system/external-resource/refresh"),
                Some(KEY),
                Some(json!({"mkey": "edl"})),
            )
            .await,
        )
        .await;
        assert_eq!(
            (s, b["results"]["status"].clone()),
            (200, json!("finished"))
        );
    }
}

#[tokio::test]
async fn admin_and_api_user_trusted_hosts() {
    let sim = sim(fortigate("7.4.3")).await;
    let c = client(sim.fortigate("fw").ca_pem(), ip(22));
    let (_, b) = body_of(
        send(
            &c,
            Method::GET,
            &url(&sim, "/api/v2/cmdb/system/admin/admin"),
            Some(KEY),
            None,
        )
        .await,
    )
    .await;
    assert_eq!(b["results"][0]["trusthost1"], "0.0.0.0 0.0.0.0");
    let (s, _) = body_of(
        send(
            &c,
            Method::PUT,
            &url(&sim, "/api/v2/cmdb/system/admin/admin"),
            Some(KEY),
            Some(json!({"trusthost10": "192.0.2.10 255.255.255.255"})),
        )
        .await,
    )
    .await;
    assert_eq!(s, 200);
    let (_, b) = body_of(
        send(
            &c,
            Method::GET,
            &url(&sim, "/api/v2/cmdb/system/api-user/fortisync"),
            Some(KEY),
            None,
        )
        .await,
    )
    .await;
    assert_eq!(
        b["results"][0]["trusthost"][0]["ipv4-trusthost"],
        "127.0.0.0 255.255.255.0"
    );
    let (s, b) = body_of(send(&c, Method::PUT, &url(&sim, "/api/v2/cmdb/system/api-user/reader"), Some(KEY), Some(json!({"trusthost": [{"id": 1, "type": "ipv4-trusthost", "ipv4-trusthost": "0.0.0.0 0.0.0.0"}]}))).await).await;
    assert_eq!(
        (s, b["error"].clone()),
        (500, json!(-651)),
        "allow-all is refused for REST API admins"
    );
}

#[tokio::test]
async fn transactions_stage_writes_until_commit() {
    let sim = sim(fortigate("7.4.3")).await;
    let c = client(sim.fortigate("fw").ca_pem(), ip(23));
    let (s, b) = body_of(
        send(
            &c,
            Method::POST,
            &url(&sim, "/api/v2/cmdb?action=transaction-start"),
            Some(KEY),
            Some(json!({"timeout": 60})),
        )
        .await,
    )
    .await;
    assert_eq!(s, 200);
    let id = b["results"]["transaction-id"]
        .as_u64()
        .expect("transaction id");
    let staged = c
        .post(url(&sim, "/api/v2/cmdb/firewall/address"))
        .bearer_auth(KEY)
        .header("X-TRANSACTION-ID", id.to_string())
        .json(&json!({"name": "t", "subnet": "192.0.2.3/32"}))
        .send()
        .await
        .expect("post");
    let (s, b) = body_of(staged).await;
    assert_eq!((s, b["revision_changed"].clone()), (200, json!(false)));
    assert!(
        sim.fortigate("fw")
            .object("root", Table::Address, "t")
            .is_none(),
        "not visible before commit"
    );
    let (s, _) = body_of(
        send(
            &c,
            Method::POST,
            &url(&sim, "/api/v2/cmdb?action=transaction-commit"),
            Some(KEY),
            Some(json!({"transaction_id": id})),
        )
        .await,
    )
    .await;
    assert_eq!(s, 200);
    assert!(
        sim.fortigate("fw")
            .object("root", Table::Address, "t")
            .is_some()
    );
}

#[tokio::test]
async fn injected_faults_status_reset_and_latency_in_order() {
    let sim = sim(fortigate("7.4.3")).await;
    let fg = sim.fortigate("fw");
    let c = client(fg.ca_pem(), ip(24));
    fg.add_fault(FaultRule {
        path: "/api/v2/monitor".into(),
        status: Some(503),
        times: Some(1),
        ..FaultRule::default()
    });
    assert_eq!(
        send(
            &c,
            Method::GET,
            &url(&sim, "/api/v2/monitor/system/status"),
            Some(KEY),
            None
        )
        .await
        .status()
        .as_u16(),
        503
    );
    assert_eq!(
        send(
            &c,
            Method::GET,
            &url(&sim, "/api/v2/monitor/system/status"),
            Some(KEY),
            None
        )
        .await
        .status()
        .as_u16(),
        200,
        "times: 1"
    );
    fg.add_fault(FaultRule {
        path: "/api/v2/cmdb/firewall/address".into(),
        method: Some("POST".into()),
        reset: true,
        times: Some(1),
        ..FaultRule::default()
    });
    let reset = c
        .post(url(&sim, "/api/v2/cmdb/firewall/address"))
        .bearer_auth(KEY)
        .json(&json!({"name": "r", "subnet": "192.0.2.4/32"}))
        .send()
        .await;
    assert!(
        reset.is_err(),
        "the connection is dropped without an answer"
    );
    assert!(
        fg.object("root", Table::Address, "r").is_some(),
        "but the write happened: the outcome is ambiguous"
    );
    // Latency, told by order rather than by a stopwatch: the delayed answer is still held
    // after an undelayed request to another path has been answered, and comes (a 200) once
    // the simulator's tokio clock has moved past the delay.
    const DELAY: Duration = Duration::from_secs(60);
    fg.add_fault(FaultRule {
        path: "/api/v2/monitor".into(),
        latency_ms: DELAY.as_millis() as u64,
        times: Some(1),
        ..FaultRule::default()
    });
    let delayed = tokio::spawn({
        let (c, status_url) = (c.clone(), url(&sim, "/api/v2/monitor/system/status"));
        async move {
            send(&c, Method::GET, &status_url, Some(KEY), None)
                .await
                .status()
                .as_u16()
        }
    });
    // The rule is used up when the request arrives, before the delay starts.
    for _ in 0..500 {
        if fg.faults().is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(
        fg.faults().is_empty(),
        "the delayed request reached the simulator"
    );
    assert_eq!(
        send(
            &c,
            Method::GET,
            &url(&sim, "/api/v2/cmdb/firewall/address"),
            Some(KEY),
            None
        )
        .await
        .status()
        .as_u16(),
        200,
        "another path is answered at once"
    );
    assert!(!delayed.is_finished(), "the delayed answer is still held");
    tokio::time::pause();
    tokio::time::advance(DELAY).await;
    tokio::time::resume();
    assert_eq!(delayed.await.expect("task"), 200, "then it comes");
}

#[tokio::test]
async fn out_of_band_edits_and_request_log() {
    let sim = sim(fortigate("7.4.3")).await;
    let fg = sim.fortigate("fw");
    fg.put_object(
        "root",
        Table::Address,
        json!({"name": "gui", "subnet": "192.0.2.50/32"}),
    )
    .expect("GUI edit");
    let c = client(fg.ca_pem(), ip(25));
    let (_, b) = body_of(
        send(
            &c,
            Method::GET,
            &url(&sim, "/api/v2/cmdb/firewall/address/gui"),
            Some(KEY),
            None,
        )
        .await,
    )
    .await;
    assert_eq!(b["results"][0]["subnet"], "192.0.2.50 255.255.255.255");
    let log = fg.requests();
    let last = log.last().expect("logged");
    assert_eq!(
        (last.peer, last.status, last.path.as_str()),
        (ip(25), 200, "/api/v2/cmdb/firewall/address/gui")
    );
    assert_eq!(last.user.as_deref(), Some("fortisync"));
    let leaked = fg.requests().iter().any(|r| r.path.contains(KEY));
    assert!(!leaked, "the log never holds a key");
    assert_eq!(fg.version(), FosVersion::new(7, 4, 3));
}

#[tokio::test]
async fn admin_port_exposes_control_as_json() {
    let sim = sim(fortigate("7.4.3")).await;
    let admin = reqwest::Client::new();
    let list: Value = admin
        .get(format!("{}/fortigates", sim.admin_url()))
        .send()
        .await
        .expect("list")
        .json()
        .await
        .expect("json");
    assert_eq!(list[0]["name"], "fw");
    let put = admin
        .put(format!(
            "{}/fortigates/fw/objects/root/firewall/address",
            sim.admin_url()
        ))
        .json(&json!({"name": "oob", "subnet": "192.0.2.60/32"}))
        .send()
        .await
        .expect("put");
    assert_eq!(put.status().as_u16(), 204);
    assert!(
        sim.fortigate("fw")
            .object("root", Table::Address, "oob")
            .is_some()
    );
    let fault = admin
        .post(format!("{}/fortigates/fw/faults", sim.admin_url()))
        .json(&json!({"path": "/api", "status": 502, "times": 1}))
        .send()
        .await
        .expect("fault");
    assert_eq!(fault.status().as_u16(), 201);
    let c = client(sim.fortigate("fw").ca_pem(), ip(26));
    assert_eq!(
        send(
            &c,
            Method::GET,
            &url(&sim, "/api/v2/monitor/system/status"),
            Some(KEY),
            None
        )
        .await
        .status()
        .as_u16(),
        502
    );
    let counters: Value = admin
        .get(format!("{}/fortigates/fw/counters", sim.admin_url()))
        .send()
        .await
        .expect("counters")
        .json()
        .await
        .expect("json");
    assert_eq!(counters["by_peer_and_status"]["127.0.0.26"]["502"], 1);
    let denied = client(sim.fortigate("fw").ca_pem(), ip(1));
    let device_admin = denied
        .get(format!("{}/fortigates", sim.fortigate("fw").url()))
        .send()
        .await
        .expect("get");
    assert_eq!(
        device_admin.status().as_u16(),
        404,
        "control is never on the device port"
    );
}

#[tokio::test]
async fn fortimanager_proxy_reaches_the_simulated_fortigate() {
    let fmg: fortisync::sim::fortimanager::FortiManagerScenario = fortisync::yaml::from_str(
        r#"
name: fmg
tls: false
admins:
  - {userid: api, password: pw, rpc_permit: read-write, profile: Super_User}
adoms:
  - name: root
    devices: [{name: fw, serial: FGT60FTK20000001, version: "7.4.3"}]
"#,
    )
    .expect("fmg scenario");
    let sim = Simulator::start(Scenario {
        fortigates: vec![fortigate("7.4.3")],
        fortimanagers: vec![fmg],
        ..Scenario::default()
    })
    .await
    .expect("start");
    sim.fortigate("fw")
        .put_object(
            "root",
            Table::Address,
            json!({"name": "seen-through-fmg", "subnet": "192.0.2.77/32"}),
        )
        .expect("object");
    let c = reqwest::Client::new();
    let rpc = |body: Value| {
        let c = c.clone();
        let u = format!("{}/jsonrpc", sim.fortimanager("fmg").url());
        async move {
            c.post(u)
                .json(&body)
                .send()
                .await
                .expect("rpc")
                .json::<Value>()
                .await
                .expect("json")
        }
    };
    let login = rpc(json!({"id": 1, "method": "exec", "params": [{"url": "sys/login/user", "data": {"user": "api", "passwd": "pw"}}]})).await;
    let session = login["session"].as_str().expect("session").to_string();
    let proxied = rpc(json!({"id": 2, "method": "exec", "session": session, "params": [{"url": "/sys/proxy/json", "data": {"target": ["adom/root/device/fw"], "action": "get", "resource": "/api/v2/cmdb/firewall/address/seen-through-fmg"}}]})).await;
    let entry = &proxied["result"][0]["data"][0];
    assert_eq!(entry["target"], "fw");
    assert_eq!(
        entry["response"]["results"][0]["subnet"],
        "192.0.2.77 255.255.255.255"
    );
}

#[tokio::test]
async fn scenarios_save_and_load_through_the_admin_port() {
    let sim = sim(fortigate("7.4.3")).await;
    let fg = sim.fortigate("fw");
    fg.put_object(
        "root",
        Table::Address,
        json!({"name": "saved", "subnet": "192.0.2.80/32"}),
    )
    .expect("object");
    let admin = reqwest::Client::new();
    let saved: Value = admin
        .get(format!("{}/fortigates/fw/scenario", sim.admin_url()))
        .send()
        .await
        .expect("save")
        .json()
        .await
        .expect("json");
    assert_eq!(saved["objects"]["root"]["addresses"][0]["name"], "saved");
    assert_eq!(saved["api_users"][0]["name"], "fortisync");
    let mut edited = saved.clone();
    edited["objects"]["root"]["addresses"] = json!([{"name": "loaded", "subnet": "192.0.2.81/32"}]);
    edited["version"] = json!("6.4.14");
    let load = admin
        .put(format!("{}/fortigates/fw/scenario", sim.admin_url()))
        .json(&edited)
        .send()
        .await
        .expect("load");
    assert_eq!(load.status().as_u16(), 204);
    assert!(fg.object("root", Table::Address, "saved").is_none());
    assert!(fg.object("root", Table::Address, "loaded").is_some());
    assert_eq!(fg.version(), FosVersion::new(6, 4, 14));
    let c = client(fg.ca_pem(), ip(27));
    let (s, b) = body_of(
        send(
            &c,
            Method::GET,
            &url(&sim, "/api/v2/cmdb/firewall/address/loaded"),
            Some(KEY),
            None,
        )
        .await,
    )
    .await;
    assert_eq!(
        (s, b["version"].clone()),
        (200, json!("v6.4.14")),
        "the same listener serves the loaded state"
    );
}

#[tokio::test]
async fn a_hung_device_never_answers_and_current_admins_lists_sessions() {
    let mut scenario = fortigate("7.4.3");
    scenario.global = GlobalSettings::default();
    let sim = sim(scenario).await;
    let fg = sim.fortigate("fw");
    fg.add_fault(FaultRule {
        path: "/api/v2/cmdb".into(),
        hang: true,
        times: Some(1),
        ..FaultRule::default()
    });
    let c = client(fg.ca_pem(), ip(28));
    let hung = tokio::time::timeout(
        Duration::from_millis(500),
        send(
            &c,
            Method::GET,
            &url(&sim, "/api/v2/cmdb/firewall/address"),
            Some(KEY),
            None,
        ),
    )
    .await;
    assert!(hung.is_err(), "no answer while hung");
    let login = c
        .post(url(&sim, "/logincheck"))
        .body("username=admin&secretkey=s3cret")
        .send()
        .await
        .expect("login");
    assert_eq!(login.status().as_u16(), 200);
    let (s, b) = body_of(
        send(
            &c,
            Method::GET,
            &url(&sim, "/api/v2/monitor/system/current-admins"),
            Some(KEY),
            None,
        )
        .await,
    )
    .await;
    assert_eq!(
        (s, b["results"][0]["username"].clone()),
        (200, json!("admin"))
    );
}

/// A request with the API key, as every third-party client below sends it.
async fn call(
    sim: &Simulator,
    c: &reqwest::Client,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> (u16, Value) {
    body_of(send(c, method, &url(sim, path), Some(KEY), body).await).await
}

fn two_vdoms(version: &str) -> FortiGateScenario {
    let mut fg = fortigate(version);
    fg.vdoms = vec!["root".into(), "dmz".into()];
    fg
}

#[tokio::test]
async fn system_vdom_is_the_vdom_table_clients_read_to_check_a_login() {
    let mut fg = two_vdoms("7.4.3");
    fg.api_users.push(
        fortisync::yaml::from_str(
            "{name: dmz-only, key: dmz-key, vdoms: [dmz], trusthosts: [127.0.0.0/24]}",
        )
        .expect("user"),
    );
    let sim = sim(fg).await;
    let c = client(sim.fortigate("fw").ca_pem(), ip(30));
    // fortigate-api, PowerFGT and Ansible's fact module read the VDOM list right after login.
    let (s, b) = call(&sim, &c, Method::GET, "/api/v2/cmdb/system/vdom", None).await;
    assert_eq!(
        (s, b["path"].clone(), b["name"].clone()),
        (200, json!("system"), json!("vdom"))
    );
    assert_eq!(
        b["results"],
        json!([{"name": "root", "q_origin_key": "root"}, {"name": "dmz", "q_origin_key": "dmz"}])
    );
    let (s, b) = call(&sim, &c, Method::GET, "/api/v2/cmdb/system/vdom/dmz", None).await;
    assert_eq!(
        (s, b["results"][0]["name"].clone(), b["mkey"].clone()),
        (200, json!("dmz"), json!("dmz"))
    );
    let (s, b) = call(&sim, &c, Method::GET, "/api/v2/cmdb/system/vdom/nope", None).await;
    assert_eq!(
        (s, b["http_status"].clone(), b.get("error")),
        (404, json!(404), None)
    );
    let (s, _) = call(
        &sim,
        &c,
        Method::POST,
        "/api/v2/cmdb/system/vdom",
        Some(json!({"name": "new"})),
    )
    .await;
    assert_eq!(s, 405, "VDOMs are not created through the simulator");
    let (s, b) = body_of(
        send(
            &c,
            Method::GET,
            &url(&sim, "/api/v2/cmdb/system/vdom"),
            Some("dmz-key"),
            None,
        )
        .await,
    )
    .await;
    assert_eq!(
        (s, b["results"].clone()),
        (200, json!([{"name": "dmz", "q_origin_key": "dmz"}])),
        "a VDOM-limited user sees its VDOMs only"
    );
}

#[tokio::test]
async fn global_1_answers_an_array_of_envelopes_like_vdom_star() {
    let sim = sim(two_vdoms("7.4.3")).await;
    let c = client(sim.fortigate("fw").ca_pem(), ip(31));
    let (s, _) = call(
        &sim,
        &c,
        Method::POST,
        "/api/v2/cmdb/firewall/address?vdom=dmz",
        Some(json!({"name": "d", "subnet": "192.0.2.1/32"})),
    )
    .await;
    assert_eq!(s, 200);
    // fortiosapi and Ansible send `?global=1` for vdom "global" and read element 0 of the answer.
    let (s, b) = call(
        &sim,
        &c,
        Method::GET,
        "/api/v2/cmdb/firewall/address/?global=1",
        None,
    )
    .await;
    let envelopes = b.as_array().expect("an array of envelopes");
    assert_eq!(s, 200);
    assert_eq!(
        envelopes
            .iter()
            .map(|e| e["vdom"].clone())
            .collect::<Vec<_>>(),
        [json!("root"), json!("dmz")]
    );
    assert_eq!(envelopes[1]["results"][0]["name"], "d");
    assert_eq!(envelopes[0]["results"], json!([]));
    let (s, b) = call(
        &sim,
        &c,
        Method::GET,
        "/api/v2/cmdb/system/global?global=1",
        None,
    )
    .await;
    assert_eq!((s, b.as_array().map(Vec::len)), (200, Some(1)));
    assert_eq!(b[0]["results"]["admin-lockout-threshold"], 3);
    let (s, b) = call(
        &sim,
        &c,
        Method::POST,
        "/api/v2/cmdb/firewall/address?global=1",
        Some(json!({"name": "g", "subnet": "192.0.2.2/32"})),
    )
    .await;
    assert_eq!(
        (s, b[0]["status"].clone(), b[0]["mkey"].clone()),
        (200, json!("success"), json!("g"))
    );
    let (s, b) = call(
        &sim,
        &c,
        Method::POST,
        "/api/v2/cmdb/firewall/address?global=1",
        Some(json!({"name": "g", "subnet": "192.0.2.2/32"})),
    )
    .await;
    assert_eq!(
        (s, b[0]["error"].clone()),
        (500, json!(-5)),
        "an error is an array of one envelope too"
    );
}

#[tokio::test]
async fn api_user_is_a_cmdb_table_created_on_the_collection_and_deleted_by_mkey() {
    let sim = sim(fortigate("7.4.3")).await;
    let fg = sim.fortigate("fw");
    let c = client(fg.ca_pem(), ip(32));
    // Terraform's fortios_system_apiuser: create on the collection, delete by mkey.
    let user = json!({"name": "ci", "accprofile": "readonly", "vdom": [{"name": "root"}], "trusthost": [{"id": 1, "type": "ipv4-trusthost", "ipv4-trusthost": "127.0.0.0 255.255.255.0"}]});
    let (s, b) = call(
        &sim,
        &c,
        Method::POST,
        "/api/v2/cmdb/system/api-user",
        Some(user.clone()),
    )
    .await;
    assert_eq!(
        (s, b["mkey"].clone(), b["revision_changed"].clone()),
        (200, json!("ci"), json!(true))
    );
    let (s, b) = call(
        &sim,
        &c,
        Method::GET,
        "/api/v2/cmdb/system/api-user/ci",
        None,
    )
    .await;
    assert_eq!(
        (s, b["results"][0]["accprofile"].clone()),
        (200, json!("readonly"))
    );
    assert_eq!(
        b["results"][0]["trusthost"][0]["ipv4-trusthost"],
        "127.0.0.0 255.255.255.0"
    );
    let (s, b) = call(
        &sim,
        &c,
        Method::POST,
        "/api/v2/cmdb/system/api-user",
        Some(user),
    )
    .await;
    assert_eq!((s, b["error"].clone()), (500, json!(-5)), "a duplicate");
    let (s, b) = call(
        &sim,
        &c,
        Method::POST,
        "/api/v2/cmdb/system/api-user",
        Some(json!({"name": "x", "accprofile": "no-such-profile"})),
    )
    .await;
    assert_eq!(
        (s, b["error"].clone()),
        (500, json!(-651)),
        "an unknown profile"
    );
    let (s, _) = body_of(
        send(
            &c,
            Method::POST,
            &url(&sim, "/api/v2/cmdb/system/api-user"),
            Some("reader-key"),
            Some(json!({"name": "y"})),
        )
        .await,
    )
    .await;
    assert_eq!(s, 403, "only a super_admin manages administrators");
    // The created user is a real one once it has a key.
    assert!(fg.set_api_key("ci", Some("ci-key")));
    let (s, _) = body_of(
        send(
            &c,
            Method::GET,
            &url(&sim, "/api/v2/cmdb/firewall/address"),
            Some("ci-key"),
            None,
        )
        .await,
    )
    .await;
    assert_eq!(s, 200);
    let (s, b) = call(
        &sim,
        &c,
        Method::DELETE,
        "/api/v2/cmdb/system/api-user/ci",
        None,
    )
    .await;
    assert_eq!((s, b["mkey"].clone()), (200, json!("ci")));
    let (s, _) = call(
        &sim,
        &c,
        Method::GET,
        "/api/v2/cmdb/system/api-user/ci",
        None,
    )
    .await;
    assert_eq!(s, 404);
    let (s, _) = body_of(
        send(
            &c,
            Method::GET,
            &url(&sim, "/api/v2/cmdb/firewall/address"),
            Some("ci-key"),
            None,
        )
        .await,
    )
    .await;
    assert_eq!(s, 401, "its key went with it");
    let (s, _) = call(
        &sim,
        &c,
        Method::DELETE,
        "/api/v2/cmdb/system/api-user/ci",
        None,
    )
    .await;
    assert_eq!(s, 404);
    let (s, _) = call(
        &sim,
        &c,
        Method::DELETE,
        "/api/v2/cmdb/system/api-user",
        None,
    )
    .await;
    assert_eq!(s, 405, "never a purge of the collection");
}

#[tokio::test]
async fn put_updates_an_existing_member_and_is_405_for_a_missing_one() {
    let sim = sim(fortigate("7.4.3")).await;
    let fg = sim.fortigate("fw");
    let c = client(fg.ca_pem(), ip(33));
    for (name, subnet) in [
        ("a", "192.0.2.1/32"),
        ("b", "192.0.2.2/32"),
        ("c", "192.0.2.3/32"),
    ] {
        call(
            &sim,
            &c,
            Method::POST,
            "/api/v2/cmdb/firewall/address",
            Some(json!({"name": name, "subnet": subnet})),
        )
        .await;
    }
    let (s, _) = call(
        &sim,
        &c,
        Method::POST,
        "/api/v2/cmdb/firewall/addrgrp",
        Some(json!({"name": "g", "member": [{"name": "a"}, {"name": "b"}]})),
    )
    .await;
    assert_eq!(s, 200);
    // Ansible's member operation: GET the child, PUT it when it exists, POST when the PUT is 405.
    let member = "/api/v2/cmdb/firewall/addrgrp/g/member/a";
    assert_eq!(call(&sim, &c, Method::GET, member, None).await.0, 200);
    let (s, b) = call(&sim, &c, Method::PUT, member, Some(json!({"name": "a"}))).await;
    assert_eq!((s, b["status"].clone()), (200, json!("success")));
    assert_eq!(
        fg.group_members("root", Table::Addrgrp, "g"),
        Some(vec!["a".to_string(), "b".to_string()])
    );
    let (s, _) = call(&sim, &c, Method::PUT, member, Some(json!({"name": "c"}))).await;
    assert_eq!(s, 200);
    assert_eq!(
        fg.group_members("root", Table::Addrgrp, "g"),
        Some(vec!["c".to_string(), "b".to_string()]),
        "renamed in place"
    );
    let (s, b) = call(
        &sim,
        &c,
        Method::PUT,
        "/api/v2/cmdb/firewall/addrgrp/g/member/c",
        Some(json!({"name": "b"})),
    )
    .await;
    assert_eq!(
        (s, b["error"].clone()),
        (500, json!(-5)),
        "b is a member already"
    );
    let (s, b) = call(
        &sim,
        &c,
        Method::PUT,
        "/api/v2/cmdb/firewall/addrgrp/g/member/c",
        Some(json!({"name": "ghost"})),
    )
    .await;
    assert_eq!(
        (s, b["error"].clone()),
        (500, json!(-651)),
        "no such address"
    );
    let (s, _) = call(&sim, &c, Method::PUT, member, Some(json!({"name": "a"}))).await;
    assert_eq!(s, 405, "a is no member any more: PUT creates no child");
    let (s, _) = call(
        &sim,
        &c,
        Method::POST,
        "/api/v2/cmdb/firewall/addrgrp/g/member",
        Some(json!({"name": "a"})),
    )
    .await;
    assert_eq!(s, 200, "the POST Ansible falls back to");
    assert_eq!(
        fg.group_members("root", Table::Addrgrp, "g"),
        Some(vec!["c".to_string(), "b".to_string(), "a".to_string()])
    );
    let (s, _) = call(
        &sim,
        &c,
        Method::PUT,
        "/api/v2/cmdb/firewall/addrgrp/nope/member/a",
        Some(json!({"name": "a"})),
    )
    .await;
    assert_eq!(s, 404, "the group itself is missing");
}

#[tokio::test]
async fn a_fault_answers_a_fortios_json_envelope_with_the_chosen_status_and_error() {
    let sim = sim(fortigate("7.4.3")).await;
    let fg = sim.fortigate("fw");
    let c = client(fg.ca_pem(), ip(34));
    fg.add_fault(FaultRule {
        path: "/api/v2/cmdb/firewall/address".into(),
        method: Some("POST".into()),
        status: Some(500),
        body: FaultBody::Json,
        error: Some(-4),
        cli_error: Some("maximum number of entries has been reached".into()),
        times: Some(1),
        ..FaultRule::default()
    });
    let resp = send(
        &c,
        Method::POST,
        &url(&sim, "/api/v2/cmdb/firewall/address?vdom=root"),
        Some(KEY),
        Some(json!({"name": "f", "subnet": "192.0.2.5/32"})),
    )
    .await;
    assert_eq!(resp.headers()["content-type"], "application/json");
    let (s, b) = body_of(resp).await;
    assert_eq!(s, 500);
    assert_eq!(
        (
            b["http_method"].clone(),
            b["status"].clone(),
            b["http_status"].clone(),
            b["error"].clone(),
            b["path"].clone(),
            b["name"].clone(),
            b["vdom"].clone()
        ),
        (
            json!("POST"),
            json!("error"),
            json!(500),
            json!(-4),
            json!("firewall"),
            json!("address"),
            json!("root")
        )
    );
    assert_eq!(b["cli_error"], "maximum number of entries has been reached");
    assert!(
        fg.object("root", Table::Address, "f").is_none(),
        "the request did not run"
    );
    let (s, _) = call(
        &sim,
        &c,
        Method::POST,
        "/api/v2/cmdb/firewall/address",
        Some(json!({"name": "f", "subnet": "192.0.2.5/32"})),
    )
    .await;
    assert_eq!(s, 200, "times: 1");
}

#[tokio::test]
async fn a_fault_adds_headers_and_can_answer_an_empty_body() {
    let sim = sim(fortigate("7.4.3")).await;
    let fg = sim.fortigate("fw");
    let c = client(fg.ca_pem(), ip(35));
    fg.add_fault(FaultRule {
        path: "/api/v2/monitor".into(),
        status: Some(503),
        body: FaultBody::Empty,
        headers: [("Retry-After".to_string(), "7".to_string())].into(),
        times: Some(1),
        ..FaultRule::default()
    });
    let resp = send(
        &c,
        Method::GET,
        &url(&sim, "/api/v2/monitor/system/status"),
        Some(KEY),
        None,
    )
    .await;
    assert_eq!(resp.status().as_u16(), 503);
    assert_eq!(resp.headers()["retry-after"], "7");
    assert!(resp.headers().get("content-type").is_none());
    assert_eq!(resp.text().await.expect("body"), "");
    // Headers without a status go on the device's own answer.
    fg.add_fault(FaultRule {
        path: "/api/v2/monitor".into(),
        headers: [("Retry-After".to_string(), "1".to_string())].into(),
        times: Some(1),
        ..FaultRule::default()
    });
    let resp = send(
        &c,
        Method::GET,
        &url(&sim, "/api/v2/monitor/system/status"),
        Some(KEY),
        None,
    )
    .await;
    assert_eq!(
        (
            resp.status().as_u16(),
            resp.headers()["retry-after"].clone()
        ),
        (200, "1".parse().expect("value"))
    );
}

#[tokio::test]
async fn fault_rules_queue_in_order_through_the_versioned_admin_api() {
    let sim = sim(fortigate("7.4.3")).await;
    let admin = reqwest::Client::new();
    let faults = format!("{}/v1/fortigates/fw/faults", sim.admin_url());
    let version: Value = admin
        .get(format!("{}/v1/version", sim.admin_url()))
        .send()
        .await
        .expect("version")
        .json()
        .await
        .expect("json");
    assert_eq!(version["admin_api"], "v1");
    for rule in [
        json!({"path": "/api/v2/cmdb", "status": 429, "headers": {"Retry-After": "30"}, "times": 1}),
        json!({"path": "/api/v2/cmdb", "status": 500, "body": "json", "error": -5, "times": 2}),
    ] {
        let added = admin.post(&faults).json(&rule).send().await.expect("add");
        assert_eq!(added.status().as_u16(), 201);
    }
    let queued: Value = admin
        .get(&faults)
        .send()
        .await
        .expect("list")
        .json()
        .await
        .expect("json");
    assert_eq!(queued.as_array().map(Vec::len), Some(2));
    let c = client(sim.fortigate("fw").ca_pem(), ip(36));
    let mut seen = Vec::new();
    for _ in 0..4 {
        let resp = send(
            &c,
            Method::GET,
            &url(&sim, "/api/v2/cmdb/firewall/address"),
            Some(KEY),
            None,
        )
        .await;
        let retry = resp
            .headers()
            .get("retry-after")
            .map(|v| v.to_str().unwrap_or_default().to_string());
        let (s, b) = body_of(resp).await;
        seen.push((s, retry, b["error"].clone()));
    }
    assert_eq!(
        seen,
        [
            (429, Some("30".to_string()), Value::Null),
            (500, None, json!(-5)),
            (500, None, json!(-5)),
            (200, None, Value::Null),
        ],
        "one rule per request, first queued first, each used up"
    );
    let queued: Value = admin
        .get(&faults)
        .send()
        .await
        .expect("list")
        .json()
        .await
        .expect("json");
    assert_eq!(queued, json!([]));
    let typo = admin
        .post(&faults)
        .json(&json!({"path": "/api", "statsu": 503}))
        .send()
        .await
        .expect("add");
    assert_eq!(typo.status().as_u16(), 422);
    let why: Value = typo.json().await.expect("json");
    assert!(
        why["error"].as_str().unwrap_or_default().contains("statsu"),
        "{why}"
    );
    let nonsense = admin
        .post(&faults)
        .json(&json!({"path": "/api", "error": -5}))
        .send()
        .await
        .expect("add");
    let why: Value = nonsense.json().await.expect("json");
    assert_eq!(
        why["error"],
        "error: only means something with a forced status"
    );
}

#[tokio::test]
async fn a_password_login_is_checked_by_reading_the_vdom_table_with_the_session_cookie() {
    let sim = sim(two_vdoms("7.2.3")).await;
    let fg = sim.fortigate("fw");
    // fortigate-api and several scripts: POST /logincheck, then GET cmdb/system/vdom with the
    // session cookie alone and `raise_for_status()` on it — that GET is the login check.
    let login = |password: &'static str, c: reqwest::Client| {
        let sim = &sim;
        async move {
            let text = c
                .post(url(sim, "/logincheck"))
                .header("content-type", "application/x-www-form-urlencoded")
                .body(format!("username=admin&secretkey={password}&ajax=1"))
                .send()
                .await
                .expect("login")
                .text()
                .await
                .expect("body");
            let (status, body) = body_of(
                send(
                    &c,
                    Method::GET,
                    &url(sim, "/api/v2/cmdb/system/vdom"),
                    None,
                    None,
                )
                .await,
            )
            .await;
            (text.chars().next(), status, body)
        }
    };
    let (code, status, body) = login("s3cret", client(fg.ca_pem(), ip(37))).await;
    assert_eq!((code, status), (Some('1'), 200));
    assert_eq!(
        body["results"]
            .as_array()
            .map(|vs| vs.iter().map(|v| v["name"].clone()).collect::<Vec<_>>()),
        Some(vec![json!("root"), json!("dmz")])
    );
    let (code, status, _) = login("wrong", client(fg.ca_pem(), ip(38))).await;
    assert_eq!(
        (code, status),
        (Some('0'), 401),
        "a refused login fails the check"
    );
}

#[tokio::test]
async fn the_request_log_keeps_each_requests_user_agent() {
    let sim = sim(fortigate("7.4.3")).await;
    let fg = sim.fortigate("fw");
    let c = client(fg.ca_pem(), ip(1));
    let address = url(&sim, "/api/v2/cmdb/firewall/address");
    let named = c
        .get(&address)
        .bearer_auth(KEY)
        .header(reqwest::header::USER_AGENT, "fortisync/9.9.9 (replica-a)")
        .send()
        .await
        .expect("request");
    assert_eq!(named.status(), 200);
    let anonymous = send(&c, Method::GET, &address, Some(KEY), None).await;
    assert_eq!(anonymous.status(), 200);
    let agents: Vec<Option<String>> = fg.requests().into_iter().map(|r| r.user_agent).collect();
    assert_eq!(
        agents,
        [Some("fortisync/9.9.9 (replica-a)".to_string()), None]
    );
    // Optional in the JSON form: a record without it (an older log) still reads.
    let json = serde_json::to_value(&fg.requests()[1]).expect("json");
    assert!(json.get("user_agent").is_none(), "{json}");
    let back: fortisync::sim::fortios::RequestRecord =
        serde_json::from_value(json).expect("a record without user_agent");
    assert_eq!(back.user_agent, None);
}
