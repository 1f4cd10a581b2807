use super::*;
use crate::device::Context;

fn ctx() -> Context {
    Context {
        device: "fw".into(),
        method: "GET".into(),
        path: "/api/v2/monitor/system/status".into(),
    }
}

static KEY: Credentials = Credentials::Token(String::new());

const POLICY: LockoutPolicy = LockoutPolicy {
    threshold: 3,
    duration: Duration::from_secs(60),
};

#[test]
fn a_refused_key_on_fortigate_is_f3_and_says_it_was_sent_once_from_which_address() {
    let e = DeviceError::Unauthorized { ctx: ctx() };
    let step = auth_step(
        DeviceKind::FortiGate,
        Err(&e),
        Some("127.0.0.7".parse().expect("ip")),
        POLICY,
        &KEY,
    );
    assert_eq!(step.status, Status::Fail);
    assert_eq!(step.troubleshooting_row.as_deref(), Some("F3"));
    assert_eq!(step.cause.as_deref(), Some(e.cause()));
    assert_eq!(step.remedy.as_deref(), Some(e.remedy()));
    assert!(
        step.detail.contains("Sent once from 127.0.0.7"),
        "{}",
        step.detail
    );
}

#[test]
fn a_refused_key_on_fortimanager_is_f13() {
    let e = DeviceError::Unauthorized { ctx: ctx() };
    let step = auth_step(DeviceKind::FortiManager, Err(&e), None, POLICY, &KEY);
    assert_eq!(step.troubleshooting_row.as_deref(), Some("F13"));
    assert!(step.detail.contains("-11 or -22"));
    assert!(
        step.remedy
            .as_deref()
            .is_some_and(|r| r.ends_with(e.remedy()))
    );
}

#[test]
fn a_refused_password_on_fortimanager_says_password_not_api_key() {
    let e = DeviceError::Unauthorized { ctx: ctx() };
    let password = Credentials::Password {
        user: "admin".into(),
        password: "wrong".into(),
    };
    let step = auth_step(DeviceKind::FortiManager, Err(&e), None, POLICY, &password);
    assert!(
        step.detail.contains("the password is wrong"),
        "{}",
        step.detail
    );
    for text in [
        &step.detail,
        step.cause.as_ref().expect("cause"),
        step.remedy.as_ref().expect("remedy"),
    ] {
        assert!(!text.contains("API key"), "{text}");
        assert!(!text.contains("regenerate the key"), "{text}");
    }
    assert!(
        step.remedy
            .as_deref()
            .is_some_and(|r| r.contains("password"))
    );
}

#[test]
fn a_lockout_says_how_long_from_the_declared_duration_and_its_doubling() {
    let e = DeviceError::LockedOut {
        ctx: ctx(),
        retry_after: Duration::from_secs(66),
    };
    let policy = LockoutPolicy {
        threshold: 3,
        duration: Duration::from_secs(120),
    };
    let step = auth_step(DeviceKind::FortiGate, Err(&e), None, policy, &KEY);
    assert_eq!(step.troubleshooting_row.as_deref(), Some("F6"));
    assert!(
        step.detail.contains("admin-lockout-duration is 120 s"),
        "{}",
        step.detail
    );
    assert!(
        step.detail.contains("(240 s, 480 s, ...)"),
        "{}",
        step.detail
    );
}

#[test]
fn a_403_names_the_profile_area_and_only_firewall_areas_fail() {
    let e = DeviceError::Forbidden {
        ctx: ctx(),
        status: 403,
        code: None,
    };
    let fw = probe_step(&PROBES[0], Err(&e));
    assert_eq!(fw.status, Status::Fail);
    assert_eq!(fw.troubleshooting_row.as_deref(), Some("F4"));
    assert!(
        fw.remedy
            .as_deref()
            .is_some_and(|r| r.starts_with("grant Firewall > Address Read/Write"))
    );
    let feeds = probe_step(&PROBES[2], Err(&e));
    assert_eq!(feeds.status, Status::Warn);
    assert!(
        feeds
            .remedy
            .as_deref()
            .is_some_and(|r| r.contains("System > Configuration"))
    );
    assert_eq!(probe_step(&PROBES[1], Ok(())).status, Status::Ok);
}

#[test]
fn a_missing_vdom_is_f7_and_lists_the_vdoms_seen() {
    let e = DeviceError::NotFound {
        ctx: ctx(),
        status: 404,
        code: None,
    };
    let step = vdom_step("dmz", Err(&e), &["root".into(), "prod".into()]);
    assert_eq!(step.troubleshooting_row.as_deref(), Some("F7"));
    assert!(
        step.detail
            .contains("no VDOM \"dmz\" (VDOMs this API user sees: root, prod)")
    );
    assert_eq!(vdom_step("root", Ok(()), &[]).status, Status::Ok);
}

#[test]
fn skipping_starts_at_the_named_step() {
    let skipped = skip_from(DeviceKind::FortiGate, "facts", STOPPED);
    assert_eq!(skipped[0].id, "facts");
    assert_eq!(skipped.len(), 5);
    assert!(skipped.iter().all(|s| s.status == Status::Skip));
}
