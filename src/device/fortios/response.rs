//! Reading FortiOS answers strictly and without ever panicking: a 200 must be a FortiOS
//! envelope (or, for `vdom=*`, a list of them) whose typed fields have their types, or it is an
//! `UnexpectedResponse` and nothing is written on its strength; error statuses map (HTTP status,
//! FortiOS `error`) to the error taxonomy. Messages carry only the status, the code and the
//! cleaned `cli_error`, never the body.

use serde_json::{Map, Value};

use crate::device::error::{Context, DeviceError};
use crate::device::untrusted::{body_kind, device_text, json_failure, json_type};

/// The envelope's `status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EnvelopeStatus {
    /// `"success"`.
    Success,
    /// `"error"`.
    Error,
}

/// One FortiOS envelope whose fields fortisync reads have been checked: `status` is
/// `"success"` or `"error"`; `results`, when present and not null, is a list or an object;
/// `error` and `http_status` are integers; `cli_error` is a string.
#[derive(Debug, Clone, PartialEq)]
pub struct Envelope(Map<String, Value>);

/// The `results` of an envelope.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Results<'a> {
    /// A table GET (also for one mkey).
    List(&'a [Value]),
    /// A singleton (`system/global`) or a monitor answer.
    Object(&'a Map<String, Value>),
}

impl Envelope {
    /// Checks `value`; the error names the field and what it was.
    pub fn from_value(value: Value) -> Result<Self, String> {
        let Value::Object(map) = value else {
            return Err(format!(
                "JSON that is not a FortiOS envelope ({})",
                json_type(&value)
            ));
        };
        match map.get("status") {
            Some(Value::String(s)) if s == "success" || s == "error" => {}
            Some(Value::String(_)) => {
                return Err(
                    "a FortiOS envelope whose `status` is neither \"success\" nor \"error\"".into(),
                );
            }
            Some(other) => {
                return Err(format!(
                    "a FortiOS envelope whose `status` is {}, expected a string",
                    json_type(other)
                ));
            }
            None => return Err("a FortiOS envelope without `status`".into()),
        }
        match map.get("results") {
            None | Some(Value::Null | Value::Array(_) | Value::Object(_)) => {}
            Some(other) => {
                return Err(format!(
                    "a FortiOS envelope whose `results` is {}, expected a list or an object",
                    json_type(other)
                ));
            }
        }
        for (field, ok) in [
            ("error", map.get("error").is_none_or(|v| v.is_i64())),
            (
                "http_status",
                map.get("http_status").is_none_or(|v| v.is_u64()),
            ),
            (
                "cli_error",
                map.get("cli_error")
                    .is_none_or(|v| v.is_string() || v.is_null()),
            ),
        ] {
            if !ok {
                return Err(format!(
                    "a FortiOS envelope whose `{field}` is {}",
                    json_type(&map[field])
                ));
            }
        }
        Ok(Self(map))
    }

    /// `status`.
    pub fn status(&self) -> EnvelopeStatus {
        if self.0.get("status").and_then(Value::as_str) == Some("error") {
            EnvelopeStatus::Error
        } else {
            EnvelopeStatus::Success
        }
    }

    /// `results`, None when absent or null.
    pub fn results(&self) -> Option<Results<'_>> {
        match self.0.get("results") {
            Some(Value::Array(items)) => Some(Results::List(items)),
            Some(Value::Object(map)) => Some(Results::Object(map)),
            _ => None,
        }
    }

    /// The FortiOS `error` code.
    pub fn code(&self) -> Option<i64> {
        self.0.get("error").and_then(Value::as_i64)
    }

    /// The first non-empty line of `cli_error`, cleaned for a message.
    pub fn cli_error(&self) -> Option<String> {
        let text = self.0.get("cli_error")?.as_str()?;
        let line = text.lines().find(|l| !l.trim().is_empty())?;
        Some(device_text(line))
    }

    /// A top-level field as text (`version`, `serial`), whatever its JSON type.
    pub fn text(&self, key: &str) -> Option<String> {
        self.0.get(key).map(|v| match v {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        })
    }

    /// The envelope as JSON.
    pub fn into_value(self) -> Value {
        Value::Object(self.0)
    }
}

/// A checked 200 answer.
#[derive(Debug, Clone, PartialEq)]
pub enum Reply {
    /// One envelope.
    One(Envelope),
    /// `vdom=*`: one envelope per VDOM.
    PerVdom(Vec<Envelope>),
}

impl Reply {
    /// Checks a 200 body: an envelope, or a non-empty list of envelopes.
    pub fn from_slice(body: &[u8]) -> Result<Self, String> {
        match serde_json::from_slice::<Value>(body) {
            Err(e) => Err(json_failure(body, &e)),
            Ok(Value::Array(items)) if items.is_empty() => {
                Err("an empty list where FortiOS envelopes belong".into())
            }
            Ok(Value::Array(items)) => items
                .into_iter()
                .map(Envelope::from_value)
                .collect::<Result<Vec<_>, _>>()
                .map(Reply::PerVdom),
            Ok(other) => Envelope::from_value(other).map(Reply::One),
        }
    }

    /// The envelope that counts: the only one, or the first VDOM's.
    pub fn envelope(&self) -> &Envelope {
        match self {
            Self::One(e) => e,
            // from_slice never builds an empty list.
            Self::PerVdom(all) => &all[0],
        }
    }

    /// The answer as JSON (an object, or a list for `vdom=*`).
    pub fn into_value(self) -> Value {
        match self {
            Self::One(e) => e.into_value(),
            Self::PerVdom(all) => Value::Array(all.into_iter().map(Envelope::into_value).collect()),
        }
    }

    /// A table's rows: `results` must be a list of objects. Anything else is an error, never
    /// an empty table (an empty table would make the caller create what exists).
    pub fn rows(&self, ctx: &Context) -> Result<Vec<Value>, DeviceError> {
        match self.envelope().results() {
            Some(Results::List(items)) => {
                if let Some(bad) = items.iter().find(|i| !i.is_object()) {
                    return Err(unexpected(
                        ctx,
                        format!(
                            "a table whose `results` holds {}, expected objects",
                            json_type(bad)
                        ),
                    ));
                }
                Ok(items.to_vec())
            }
            Some(Results::Object(_)) => Err(unexpected(
                ctx,
                "a table whose `results` is an object, expected a list".into(),
            )),
            None => Err(unexpected(ctx, "a table answer without `results`".into())),
        }
    }

    /// One object: `results` an object, or a list of at most one object (a GET by mkey).
    pub fn object(&self, ctx: &Context) -> Result<Option<Map<String, Value>>, DeviceError> {
        match self.envelope().results() {
            Some(Results::Object(map)) => Ok(Some(map.clone())),
            Some(Results::List(_)) => {
                Ok(self.rows(ctx)?.into_iter().next().and_then(|v| match v {
                    Value::Object(m) => Some(m),
                    _ => None,
                }))
            }
            None => Err(unexpected(ctx, "an answer without `results`".into())),
        }
    }
}

fn unexpected(ctx: &Context, detail: String) -> DeviceError {
    DeviceError::UnexpectedResponse {
        ctx: ctx.clone(),
        status: 200,
        detail,
    }
}

/// Parses a FortiOS answer. `cookie_session` tells a CSRF 403 from a permission 403.
pub fn parse(
    ctx: Context,
    status: u16,
    body: &[u8],
    cookie_session: bool,
    write: bool,
) -> Result<Reply, DeviceError> {
    if status == 200 {
        let reply = Reply::from_slice(body).map_err(|detail| DeviceError::UnexpectedResponse {
            ctx: ctx.clone(),
            status,
            detail,
        })?;
        let first = reply.envelope();
        if first.status() == EnvelopeStatus::Error {
            return Err(DeviceError::UnexpectedResponse {
                ctx,
                status,
                detail: error_detail(first.code(), first.cli_error()),
            });
        }
        return Ok(reply);
    }
    // An error answer: only its integer `error` and string `cli_error` are read (the status
    // already says it failed, so nothing is written on its strength); an HTML page or other
    // JSON only tells its status.
    let fields = match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(map)) => Some(Envelope(map)),
        _ => None,
    };
    let code = fields.as_ref().and_then(Envelope::code);
    let cli = fields
        .as_ref()
        .and_then(Envelope::cli_error)
        .unwrap_or_default();
    let kind = || match (&fields, code) {
        (Some(e), Some(_)) => error_detail(code, e.cli_error()),
        _ => body_kind(body),
    };
    match status {
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
            // A read sends no value to refuse: its 500 is the device failing internally, so
            // it is retried soon like a 503 instead of parked as F11 with "fix the value".
            // Retrying a read can neither widen access nor lose data.
            _ if !write => DeviceError::Unavailable { ctx, status },
            Some(c) => DeviceError::Invalid {
                ctx,
                code: c,
                detail: non_empty(cli, "input value is invalid"),
            },
            None => DeviceError::UnexpectedResponse {
                ctx,
                status,
                detail: kind(),
            },
        }),
        _ => Err(DeviceError::UnexpectedResponse {
            ctx,
            status,
            detail: kind(),
        }),
    }
}

/// "status \"error\" (code -651: node_check_object fail!)" from allow-listed fields only.
fn error_detail(code: Option<i64>, cli: Option<String>) -> String {
    match (code, cli) {
        (Some(c), Some(t)) => format!("a FortiOS envelope with status \"error\" (code {c}: {t})"),
        (Some(c), None) => format!("a FortiOS envelope with status \"error\" (code {c})"),
        (None, Some(t)) => format!("a FortiOS envelope with status \"error\" ({t})"),
        (None, None) => "a FortiOS envelope with status \"error\" and no code".into(),
    }
}

fn non_empty(text: String, fallback: &str) -> String {
    if text.is_empty() {
        fallback.to_string()
    } else {
        text
    }
}

/// The rows of a FortiOS table answer given as JSON (a body proxied through FortiManager):
/// an error naming what is wrong unless it is an envelope whose `results` is a list of objects.
pub fn strict_results(body: &Value) -> Result<Vec<Value>, String> {
    let reply = match body {
        Value::Array(items) if items.is_empty() => {
            return Err("an empty list where FortiOS envelopes belong".into());
        }
        Value::Array(items) => Reply::PerVdom(
            items
                .iter()
                .cloned()
                .map(Envelope::from_value)
                .collect::<Result<_, _>>()?,
        ),
        other => Reply::One(Envelope::from_value(other.clone())?),
    };
    reply.rows(&Context::default()).map_err(|e| match e {
        DeviceError::UnexpectedResponse { detail, .. } => detail,
        other => other.to_string(),
    })
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
    fn a_500_on_a_read_is_transient_and_on_a_write_an_invalid_value() {
        for body in [json!({"error": -1}), json!({"error": -651}), json!(null)] {
            assert_eq!(reason(500, &body, false, false), "Unavailable", "{body}");
        }
        assert_eq!(reason(500, &json!({"error": -1}), false, true), "Invalid");
        assert_eq!(
            reason(500, &json!({"error": -3}), false, false),
            "NotFound",
            "the codes that mean something on a read keep it"
        );
        assert_eq!(
            reason(500, &json!({"error": -14}), false, false),
            "Forbidden"
        );
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
        // The page is described, never quoted.
        assert!(!e.to_string().contains("Please log in"), "{e}");
        assert!(e.to_string().contains("an HTML page"), "{e}");
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
    fn proxied_table_bodies_are_read_strictly() {
        let ok = json!([{"status": "success", "vdom": "root", "results": [{"name": "a"}, {"name": "b"}]}]);
        assert_eq!(strict_results(&ok).unwrap().len(), 2);
        assert_eq!(
            strict_results(&json!({"status": "success", "results": "   "})).unwrap_err(),
            "a FortiOS envelope whose `results` is a string, expected a list or an object"
        );
        assert_eq!(
            strict_results(&json!({"results": []})).unwrap_err(),
            "a FortiOS envelope without `status`"
        );
        assert_eq!(
            strict_results(&json!({"status": "success"})).unwrap_err(),
            "a table answer without `results`"
        );
        assert!(strict_results(&json!("text")).is_err());
    }

    fn unexpected(body: &[u8]) -> String {
        match parse(ctx(), 200, body, false, false) {
            Err(DeviceError::UnexpectedResponse { detail, .. }) => detail,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_200_that_is_not_a_well_typed_envelope_is_unexpected() {
        assert!(unexpected(br#"{"results": "   "}"#).contains("without `status`"));
        assert!(
            unexpected(br#"{"status": "success", "results": "   "}"#)
                .contains("`results` is a string, expected a list or an object")
        );
        assert!(unexpected(br#"{"status": 1, "results": []}"#).contains("`status` is a number"));
        assert!(unexpected(br#"{"status": "success", "results": [{"na"#).contains("truncated"));
        assert!(unexpected(br#"{"status": "success", "error": "x"}"#).contains("`error`"));
        assert!(unexpected(b"[]").contains("empty list"));
        assert!(unexpected(b"\"success\"").contains("not a FortiOS envelope"));
    }

    #[test]
    fn table_rows_must_be_a_list_of_objects() {
        let rows = |body: Value| {
            parse(ctx(), 200, body.to_string().as_bytes(), false, false)
                .unwrap()
                .rows(&ctx())
        };
        assert_eq!(
            rows(json!({"status": "success", "results": [{"name": "a"}]}))
                .unwrap()
                .len(),
            1
        );
        assert!(
            rows(json!({"status": "success", "results": []}))
                .unwrap()
                .is_empty()
        );
        for bad in [
            json!({"status": "success"}),
            json!({"status": "success", "results": null}),
            json!({"status": "success", "results": {"name": "a"}}),
            json!({"status": "success", "results": ["a"]}),
        ] {
            assert_eq!(
                rows(bad.clone()).unwrap_err().reason(),
                "UnexpectedResponse",
                "{bad}"
            );
        }
    }

    #[test]
    fn error_details_carry_the_code_and_cleaned_cli_error_only() {
        let body = json!({"status": "error", "error": -651, "cli_error": "set password canary1\nfail", "leak": "canary2"});
        let e = parse(ctx(), 200, body.to_string().as_bytes(), false, false).unwrap_err();
        let text = e.to_string();
        assert!(text.contains("code -651"), "{text}");
        assert!(!text.contains("canary"), "{text}");
    }

    #[test]
    fn a_success_without_http_status_is_fine() {
        let body = json!({"http_method": "GET", "results": {"model": "FGT60F"}, "status": "success", "serial": "S", "version": "v6.4.12", "build": 2060});
        assert!(parse(ctx(), 200, body.to_string().as_bytes(), false, false).is_ok());
    }
}
