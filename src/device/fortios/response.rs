//! Reading FortiOS answers without ever panicking: JSON envelopes (with or without
//! `http_status`), arrays of envelopes, HTML error pages, `200` with `status: "error"`, and the
//! mapping of (HTTP status, FortiOS `error`) to the error taxonomy.

use serde_json::Value;

use crate::device::error::{Context, DeviceError, snippet};

/// Parses a FortiOS answer. `cookie_session` tells a CSRF 403 from a permission 403.
pub fn parse(
    ctx: Context,
    status: u16,
    body: &[u8],
    cookie_session: bool,
    write: bool,
) -> Result<Value, DeviceError> {
    let json: Option<Value> = serde_json::from_slice(body).ok();
    let code = json
        .as_ref()
        .and_then(|v| v.get("error"))
        .and_then(Value::as_i64);
    let cli = json
        .as_ref()
        .and_then(|v| v.get("cli_error"))
        .and_then(Value::as_str)
        .map(|s| {
            s.lines()
                .find(|l| !l.trim().is_empty())
                .unwrap_or(s)
                .trim()
                .to_string()
        })
        .unwrap_or_default();
    match status {
        200 => match json {
            Some(v) if v.get("status").and_then(Value::as_str) == Some("error") => {
                Err(DeviceError::UnexpectedResponse {
                    ctx,
                    status,
                    snippet: snippet(body),
                })
            }
            Some(v) => Ok(v),
            None => Err(DeviceError::UnexpectedResponse {
                ctx,
                status,
                snippet: snippet(body),
            }),
        },
        401 => Err(DeviceError::Unauthorized { ctx }),
        403 if cookie_session && write => Err(DeviceError::CsrfMissing { ctx }),
        403 => Err(DeviceError::Forbidden { ctx, status, code }),
        404 => Err(DeviceError::NotFound { ctx, status, code }),
        429 => Err(DeviceError::LockedOut {
            ctx,
            retry_after: std::time::Duration::ZERO,
        }),
        502..=504 => Err(DeviceError::Unavailable { ctx, status }),
        400 => Err(DeviceError::Invalid {
            ctx,
            code: code.unwrap_or(0),
            detail: "the device could not process the request (HTTP 400)".into(),
        }),
        424 | 500 => Err(match code {
            Some(c @ (-5 | -15 | -100)) => DeviceError::Duplicate { ctx, code: c },
            Some(c @ (-23 | -94 | -95 | -96)) => DeviceError::InUse { ctx, code: c },
            Some(c @ -4) => DeviceError::LimitReached {
                ctx,
                code: c,
                detail: non_empty(cli, "maximum number of entries has been reached"),
            },
            Some(-3) => DeviceError::NotFound {
                ctx,
                status,
                code: Some(-3),
            },
            Some(c @ (-14 | -37)) => DeviceError::Forbidden {
                ctx,
                status,
                code: Some(c),
            },
            Some(c) => DeviceError::Invalid {
                ctx,
                code: c,
                detail: non_empty(cli, "input value is invalid"),
            },
            None => DeviceError::UnexpectedResponse {
                ctx,
                status,
                snippet: snippet(body),
            },
        }),
        _ => Err(DeviceError::UnexpectedResponse {
            ctx,
            status,
            snippet: snippet(body),
        }),
    }
}

fn non_empty(text: String, fallback: &str) -> String {
    if text.is_empty() {
        fallback.to_string()
    } else {
        text
    }
}

/// The `results` of a table GET as a list (also for one mkey, and for an array of envelopes
/// from `vdom=*`, where the first envelope counts).
pub fn results(envelope: &Value) -> Vec<Value> {
    let envelope = match envelope {
        Value::Array(items) => items.first().cloned().unwrap_or(Value::Null),
        other => other.clone(),
    };
    match envelope.get("results") {
        Some(Value::Array(items)) => items.clone(),
        Some(Value::Null) | None => Vec::new(),
        Some(other) => vec![other.clone()],
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ctx() -> Context {
        Context {
            device: "fw".into(),
            method: "POST".into(),
            path: "/api/v2/cmdb/firewall/address".into(),
        }
    }

    fn reason(status: u16, body: &Value, cookie: bool, write: bool) -> &'static str {
        parse(ctx(), status, body.to_string().as_bytes(), cookie, write)
            .unwrap_err()
            .reason()
    }

    #[test]
    fn fortios_codes_map_to_the_taxonomy() {
        assert_eq!(
            reason(500, &json!({"status": "error", "error": -5}), false, true),
            "Duplicate"
        );
        assert_eq!(
            reason(500, &json!({"error": -15}), false, true),
            "Duplicate"
        );
        assert_eq!(reason(500, &json!({"error": -23}), false, true), "InUse");
        assert_eq!(
            reason(500, &json!({"error": -4}), false, true),
            "LimitReached"
        );
        for code in [-651, -8, -9, -72, -56] {
            assert_eq!(
                reason(500, &json!({"error": code}), false, true),
                "Invalid",
                "{code}"
            );
        }
        assert_eq!(
            reason(404, &json!({"http_status": 404}), false, false),
            "NotFound"
        );
        assert_eq!(reason(503, &json!(null), false, false), "Unavailable");
    }

    #[test]
    fn a_403_on_a_cookie_write_is_csrf_and_otherwise_permission() {
        let body = json!({"http_status": 403});
        assert_eq!(reason(403, &body, true, true), "CsrfMissing");
        assert_eq!(reason(403, &body, true, false), "Forbidden");
        assert_eq!(reason(403, &body, false, true), "Forbidden");
    }

    #[test]
    fn html_and_error_bodies_are_unexpected_and_never_panic() {
        let html = b"<html><head><title>401 Unauthorized</title></head></html>";
        assert_eq!(
            parse(ctx(), 401, html, false, false).unwrap_err().reason(),
            "Unauthorized"
        );
        let login_page = b"<html><body>Please log in</body></html>";
        let e = parse(ctx(), 200, login_page, false, false).unwrap_err();
        assert_eq!(e.reason(), "UnexpectedResponse");
        assert!(e.to_string().contains("Please log in"));
        assert_eq!(
            reason(
                200,
                &json!({"status": "error", "http_status": 200}),
                false,
                false
            ),
            "UnexpectedResponse"
        );
        assert_eq!(
            parse(ctx(), 500, b"", false, true).unwrap_err().reason(),
            "UnexpectedResponse"
        );
        assert_eq!(
            parse(ctx(), 418, &[0xff, 0xfe], false, false)
                .unwrap_err()
                .reason(),
            "UnexpectedResponse"
        );
    }

    #[test]
    fn the_cli_error_becomes_the_detail() {
        let body = json!({"error": -651, "cli_error": "node_check_object fail! for subnet 10.0.0.300\n\nvalue parse error"});
        let e = parse(ctx(), 500, body.to_string().as_bytes(), false, true).unwrap_err();
        assert!(
            e.to_string()
                .contains("node_check_object fail! for subnet 10.0.0.300"),
            "{e}"
        );
    }

    #[test]
    fn results_are_a_list_in_every_shape() {
        assert_eq!(results(&json!({"results": [{"name": "a"}]})).len(), 1);
        assert_eq!(
            results(&json!({"results": {"hostname": "fw"}}))[0]["hostname"],
            "fw"
        );
        assert_eq!(
            results(&json!([{"vdom": "root", "results": [{"name": "a"}, {"name": "b"}]}])).len(),
            2
        );
        assert!(results(&json!({"status": "success"})).is_empty());
        assert!(results(&json!("text")).is_empty());
    }

    #[test]
    fn a_success_without_http_status_is_fine() {
        let body = json!({"http_method": "GET", "results": {"model": "FGT60F"}, "status": "success", "serial": "S", "version": "v6.4.12", "build": 2060});
        assert!(parse(ctx(), 200, body.to_string().as_bytes(), false, false).is_ok());
    }
}
