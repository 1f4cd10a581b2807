//! How a doctor report reads: one line per step (`✓` passed, `✗` failed, `!` warning, `-`
//! skipped) with the cause, remedy and troubleshooting row under anything not passed; and
//! the same as one stable JSON document.

use std::fmt::Write as _;

use serde_json::{Value, json};

use super::checks::{Report, Status};

/// The URL without user info, query or fragment (which may hold secrets).
pub fn safe_url(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut u) => {
            let _ = u.set_username("");
            let _ = u.set_password(None);
            u.set_query(None);
            u.set_fragment(None);
            u.to_string().trim_end_matches('/').to_string()
        }
        Err(_) => url.split(['?', '#']).next().unwrap_or_default().to_string(),
    }
}

fn mark(status: Status) -> &'static str {
    match status {
        Status::Ok => "✓",
        Status::Fail => "✗",
        Status::Warn => "!",
        Status::Skip => "-",
    }
}

fn paint(text: &str, status: Status, color: bool) -> String {
    if !color {
        return text.to_string();
    }
    let code = match status {
        Status::Ok => "32",
        Status::Fail => "1;31",
        Status::Warn => "33",
        Status::Skip => "2",
    };
    format!("\x1b[{code}m{text}\x1b[0m")
}

/// The report for a terminal.
pub fn text(report: &Report, color: bool) -> String {
    let mut out = String::new();
    let scope = if report.kind == "FortiGate" {
        "VDOM"
    } else {
        "ADOM"
    };
    let _ = writeln!(
        out,
        "fortisync doctor: {} {} at {} ({scope} {})",
        report.kind, report.device, report.url, report.scope
    );
    let _ = writeln!(
        out,
        "Each step below must pass for fortisync to manage this device. Doctor only reads.\n"
    );
    let width = report
        .steps
        .iter()
        .map(|s| s.title.chars().count())
        .max()
        .unwrap_or(0);
    for step in &report.steps {
        let head = format!(
            "{} {:width$}  {}",
            mark(step.status),
            step.title,
            step.detail
        );
        let _ = writeln!(out, "{}", paint(&head, step.status, color));
        if matches!(step.status, Status::Fail | Status::Warn) {
            if let Some(cause) = &step.cause {
                let _ = writeln!(out, "    cause:  {cause}");
            }
            if let Some(remedy) = &step.remedy {
                let _ = writeln!(out, "    remedy: {remedy}");
            }
            if let Some(row) = &step.troubleshooting_row {
                let reason = step
                    .reason
                    .as_deref()
                    .map(|r| format!(", reason {r}"))
                    .unwrap_or_default();
                let _ = writeln!(out, "    see:    troubleshooting table row {row}{reason}");
            }
        }
    }
    let (fail, warn) = (report.count(Status::Fail), report.count(Status::Warn));
    let _ = writeln!(
        out,
        "\n{} passed, {fail} failed, {warn} warning(s), {} skipped. {}",
        report.count(Status::Ok),
        report.count(Status::Skip),
        if fail > 0 {
            "fortisync cannot manage this device until the failed (✗) steps are fixed; fix the first one first, the others may follow from it."
        } else if warn > 0 {
            "fortisync can manage this device; the warnings (!) deserve a look."
        } else {
            "fortisync can manage this device."
        }
    );
    out
}

/// The report as one JSON document (stable keys; `null` where a step has no explanation).
pub fn json(report: &Report) -> Value {
    json!({
        "kind": report.kind,
        "device": report.device,
        "url": report.url,
        "scope": report.scope,
        "passed": report.passed(),
        "summary": {
            "ok": report.count(Status::Ok),
            "fail": report.count(Status::Fail),
            "warn": report.count(Status::Warn),
            "skip": report.count(Status::Skip),
        },
        "steps": serde_json::to_value(&report.steps).unwrap_or(Value::Null),
    })
}

#[cfg(test)]
mod tests {
    use super::super::checks::Step;
    use super::*;
    use crate::device::{Context, DeviceError};

    fn report(steps: Vec<Step>) -> Report {
        Report {
            kind: "FortiGate".into(),
            device: "default/fw".into(),
            url: "https://fw:8443".into(),
            scope: "root".into(),
            steps,
        }
    }

    #[test]
    fn urls_lose_credentials_queries_and_fragments() {
        assert_eq!(
            safe_url("https://user:pw@fw.example:8443/?access_token=SECRET#x"),
            "https://fw.example:8443"
        );
        assert_eq!(safe_url("not a url?access_token=S"), "not a url");
    }

    #[test]
    fn failures_print_cause_remedy_and_row_and_json_is_stable() {
        let e = DeviceError::Unauthorized {
            ctx: Context::default(),
        };
        let r = report(vec![
            Step::ok("tcp", "TCP connect", "connected"),
            Step::failed("auth", "authenticated read", &e),
            Step::skip("vdom", "VDOM exists", "not tried"),
        ]);
        let text = text(&r, false);
        assert!(text.contains("✓ TCP connect"), "{text}");
        assert!(text.contains("✗ authenticated read"), "{text}");
        assert!(text.contains(&format!("cause:  {}", e.cause())), "{text}");
        assert!(text.contains(&format!("remedy: {}", e.remedy())), "{text}");
        assert!(text.contains("row F3, reason Unauthorized"), "{text}");
        assert!(
            text.contains("1 passed, 1 failed, 0 warning(s), 1 skipped"),
            "{text}"
        );
        let doc = json(&r);
        assert_eq!(doc["passed"], false);
        assert_eq!(doc["summary"]["fail"], 1);
        assert_eq!(doc["steps"][1]["status"], "fail");
        assert_eq!(doc["steps"][1]["troubleshooting_row"], "F3");
        assert_eq!(doc["steps"][0]["cause"], Value::Null);
        for key in [
            "id",
            "title",
            "status",
            "detail",
            "reason",
            "cause",
            "remedy",
            "troubleshooting_row",
        ] {
            assert!(doc["steps"][2].get(key).is_some(), "{key} always present");
        }
    }
}
