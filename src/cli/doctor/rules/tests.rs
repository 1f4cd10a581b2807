use super::*;
use serde_json::json;

const POLICY: LockoutPolicy = LockoutPolicy {
    threshold: 3,
    duration: Duration::from_secs(60),
};

#[test]
fn versions_parse_from_every_spelling_the_devices_use() {
    assert_eq!(parse_version("v7.4.3"), Some((7, 4, 3)));
    assert_eq!(parse_version("7.2"), Some((7, 2, 0)));
    assert_eq!(
        parse_version("v7.4.3-build2487 240315 (GA)"),
        Some((7, 4, 3))
    );
    assert_eq!(parse_version(""), None);
}

#[test]
fn version_rules_warn_below_7_2_1_and_on_6_4_only() {
    let status = |v: &str| -> Vec<(String, Status)> {
        version_steps(v)
            .into_iter()
            .map(|s| (s.id, s.status))
            .collect()
    };
    assert_eq!(
        status("v6.4.14"),
        vec![
            ("version.token-in-url".into(), Status::Ok),
            ("version.dynamic-push".into(), Status::Warn),
            ("version.member-cap".into(), Status::Warn),
        ]
    );
    assert_eq!(status("v7.0.12")[1].1, Status::Warn);
    assert_eq!(status("v7.0.12")[2].1, Status::Ok);
    assert!(status("v7.2.1").iter().all(|(_, s)| *s == Status::Ok));
    let push = &version_steps("v7.0.12")[1];
    assert_eq!(push.troubleshooting_row.as_deref(), Some("F19"));
    let cap = &version_steps("v6.4.14")[2];
    assert_eq!(cap.troubleshooting_row.as_deref(), Some("F10"));
    assert!(cap.detail.contains("600"));
    assert!(
        version_steps("v7.4.5")[0]
            .detail
            .contains("refuses an API key in the URL")
    );
    assert!(version_steps("v7.6.0")[0].detail.contains("still accepts"));
    assert!(version_steps("v7.6.1")[0].detail.contains("refuses"));
    assert!(version_steps("?").iter().all(|s| s.status == Status::Skip));
}

#[test]
fn a_device_stricter_than_the_declared_lockout_is_a_warning() {
    let device =
        device_lockout(&json!({"admin-lockout-threshold": "2", "admin-lockout-duration": 300}));
    assert_eq!(
        device,
        Some(LockoutPolicy {
            threshold: 2,
            duration: Duration::from_secs(300)
        })
    );
    let step = lockout_step(device, POLICY);
    assert_eq!(step.status, Status::Warn);
    assert!(
        step.remedy
            .as_deref()
            .is_some_and(|r| r.contains("spec.lockout.threshold: 2"))
    );
    assert_eq!(lockout_step(Some(POLICY), POLICY).status, Status::Ok);
    assert_eq!(lockout_step(None, POLICY).status, Status::Skip);
}

fn admin(permit: &str, profile: &str, hosts: &[(&str, &str)]) -> Value {
    let mut user = json!({"userid": "api", "rpc-permit": permit, "profileid": profile, "adom": [{"adom-name": "all_adoms"}]});
    for n in 1..=10 {
        let (ip, mask) = hosts
            .get(n - 1)
            .copied()
            .unwrap_or(("255.255.255.255", "255.255.255.255"));
        user[format!("trusthost{n}")] = json!([ip, mask]);
    }
    user
}

#[test]
fn an_allow_all_trusted_host_slot_is_f20_and_names_the_slot() {
    let user = admin(
        "read-write",
        "Super_User",
        &[("10.0.0.5", "255.255.255.255"), ("0.0.0.0", "0.0.0.0")],
    );
    let steps = fortimanager_user_steps("api", &user, "root");
    assert_eq!(steps[0].status, Status::Warn);
    assert_eq!(steps[0].troubleshooting_row.as_deref(), Some("F20"));
    assert!(
        steps[0].detail.contains("slot(s) [2]"),
        "{}",
        steps[0].detail
    );
    assert_eq!(steps[1].status, Status::Ok);
    let strict = admin(
        "read-write",
        "Super_User",
        &[("10.0.0.5", "255.255.255.255")],
    );
    assert_eq!(
        fortimanager_user_steps("api", &strict, "root")[0].status,
        Status::Ok
    );
}

#[test]
fn rpc_permit_profile_and_adom_access_are_f14() {
    let read = admin("read", "Super_User", &[("10.0.0.5", "255.255.255.255")]);
    let step = &fortimanager_user_steps("api", &read, "root")[1];
    assert_eq!(
        (step.status, step.troubleshooting_row.as_deref()),
        (Status::Fail, Some("F14"))
    );
    assert!(step.detail.contains("rpc-permit read"));
    let restricted = admin("read-write", "Restricted_User", &[]);
    assert_eq!(
        fortimanager_user_steps("api", &restricted, "root")[1].status,
        Status::Fail
    );
    let standard = admin("read-write", "Standard_User", &[]);
    assert_eq!(
        fortimanager_user_steps("api", &standard, "root")[1].status,
        Status::Warn
    );
    let mut elsewhere = admin("read-write", "Super_User", &[]);
    elsewhere["adom"] = json!([{"adom-name": "prod"}]);
    let step = &fortimanager_user_steps("api", &elsewhere, "root")[1];
    assert_eq!(step.status, Status::Fail);
    assert!(step.detail.contains("not \"root\""));
}
