//! Reading FortiManager JSON-RPC answers strictly: `{"result": [{"status": {"code", "message"},
//! "data"?}], "session"?}`. An answer that is not that shape, or whose `data` has the wrong type
//! for the call, is an `UnexpectedResponse`, never "nothing there". Messages carry the cleaned
//! `status.message` only, never the body.

use serde_json::{Map, Value};

use crate::device::error::{Context, DeviceError};
use crate::device::untrusted::{body_kind, device_text, json_failure, json_type};

/// One checked element of `result`.
#[derive(Debug, Clone, PartialEq)]
pub struct RpcResult {
    /// `status.code` (0 = success).
    pub code: i64,
    /// `status.message`, cleaned for a message (`untrusted::device_text`).
    pub message: String,
    /// The whole element, `data` and all.
    pub raw: Map<String, Value>,
}

/// A checked JSON-RPC answer.
#[derive(Debug, Clone, PartialEq)]
pub struct RpcAnswer {
    /// `result`, one element per param (at least one).
    pub results: Vec<RpcResult>,
    /// The top-level `session` (a login's token).
    pub session: Option<String>,
}

impl RpcAnswer {
    /// Checks a body; the error names the field and what it was.
    pub fn from_slice(body: &[u8]) -> Result<Self, String> {
        let value: Value = serde_json::from_slice(body).map_err(|e| match body.first() {
            Some(b'{' | b'[') => json_failure(body, &e),
            _ => body_kind(body),
        })?;
        let Value::Object(mut map) = value else {
            return Err(format!(
                "JSON that is not a JSON-RPC answer ({})",
                json_type(&value)
            ));
        };
        let session = match map.remove("session") {
            // Calls other than login answer the numeric session id: never a token.
            None | Some(Value::Null | Value::Number(_)) => None,
            Some(Value::String(s)) => Some(s),
            Some(other) => {
                return Err(format!(
                    "a JSON-RPC answer whose `session` is {}",
                    json_type(&other)
                ));
            }
        };
        // pyfmg and Ansible also take a `result` object for a one-element list.
        let items = match map.remove("result") {
            Some(Value::Array(items)) if !items.is_empty() => items,
            Some(Value::Array(_)) => return Err("a JSON-RPC answer with an empty `result`".into()),
            Some(Value::Object(one)) => vec![Value::Object(one)],
            Some(other) => {
                return Err(format!(
                    "a JSON-RPC answer whose `result` is {}, expected a list",
                    json_type(&other)
                ));
            }
            None => return Err("a JSON-RPC answer without `result`".into()),
        };
        let results = items
            .into_iter()
            .map(RpcResult::from_value)
            .collect::<Result<_, _>>()?;
        Ok(Self { results, session })
    }

    /// `result[0]`.
    pub fn first(&self) -> &RpcResult {
        // from_slice never builds an empty list.
        &self.results[0]
    }
}

impl RpcResult {
    fn from_value(value: Value) -> Result<Self, String> {
        let Value::Object(raw) = value else {
            return Err(format!(
                "a JSON-RPC `result` element that is {}",
                json_type(&value)
            ));
        };
        let Some(status) = raw.get("status") else {
            return Err("a JSON-RPC result without `status`".into());
        };
        let Some(code) = status.get("code") else {
            return Err(format!(
                "a JSON-RPC result whose `status` is {} without `code`",
                json_type(status)
            ));
        };
        let Some(code) = code.as_i64() else {
            return Err(format!(
                "a JSON-RPC result whose `status.code` is {}",
                json_type(code)
            ));
        };
        let message = match status.get("message") {
            None | Some(Value::Null) => String::new(),
            Some(Value::String(s)) => device_text(s),
            Some(other) => {
                return Err(format!(
                    "a JSON-RPC result whose `status.message` is {}",
                    json_type(other)
                ));
            }
        };
        Ok(Self { code, message, raw })
    }

    /// `data`, or an error naming what it is instead of a list of objects. Absent `data` is an
    /// error too: a table read always answers a list, and "no list" must never read as "no
    /// objects".
    pub fn data_rows(&self, ctx: &Context) -> Result<Vec<Value>, DeviceError> {
        match self.raw.get("data") {
            Some(Value::Array(items)) => match items.iter().find(|i| !i.is_object()) {
                Some(bad) => Err(unexpected(
                    ctx,
                    format!("`data` holds {}, expected objects", json_type(bad)),
                )),
                None => Ok(items.clone()),
            },
            Some(other) => Err(unexpected(
                ctx,
                format!("`data` is {}, expected a list", json_type(other)),
            )),
            None => Err(unexpected(ctx, "a table read without `data`".into())),
        }
    }

    /// `data` as one object, or an error naming what it is.
    pub fn data_object(&self, ctx: &Context) -> Result<Map<String, Value>, DeviceError> {
        match self.raw.get("data") {
            Some(Value::Object(map)) => Ok(map.clone()),
            Some(other) => Err(unexpected(
                ctx,
                format!("`data` is {}, expected an object", json_type(other)),
            )),
            None => Err(unexpected(ctx, "an answer without `data`".into())),
        }
    }
}

fn unexpected(ctx: &Context, detail: String) -> DeviceError {
    DeviceError::UnexpectedResponse {
        ctx: ctx.clone(),
        status: 200,
        detail: format!("a JSON-RPC result whose {detail}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn why(body: &[u8]) -> String {
        RpcAnswer::from_slice(body).unwrap_err()
    }

    #[test]
    fn answers_of_the_wrong_shape_say_what_is_wrong_without_quoting() {
        assert!(why(b"<html>password=canary</html>").starts_with("an HTML page"));
        assert!(why(br#"{"id": 1}"#).contains("without `result`"));
        assert!(why(br#"{"result": "canary"}"#).contains("`result` is a string"));
        assert!(why(br#"{"result": []}"#).contains("empty `result`"));
        assert!(why(br#"{"result": [{"data": []}]}"#).contains("without `status`"));
        assert!(
            why(br#"{"result": [{"status": {"code": "0"}}]}"#)
                .contains("`status.code` is a string")
        );
        assert!(why(br#"{"result": [{"status": {"code": 0, "mess"#).contains("truncated"));
        for text in [
            why(b"<html>password=canary</html>"),
            why(br#"{"result": "canary"}"#),
        ] {
            assert!(!text.contains("canary"), "{text}");
        }
    }

    #[test]
    fn data_must_have_the_type_the_call_reads() {
        let ctx = Context::default();
        let answer = |data: &str| {
            RpcAnswer::from_slice(
                format!(r#"{{"result": [{{"status": {{"code": 0, "message": "OK"}}, "data": {data}}}]}}"#)
                    .as_bytes(),
            )
            .unwrap()
        };
        assert_eq!(
            answer(r#"[{"name": "a"}]"#)
                .first()
                .data_rows(&ctx)
                .unwrap()
                .len(),
            1
        );
        for bad in [r#""   ""#, "null", r#"{"name": "a"}"#, r#"["a"]"#] {
            assert_eq!(
                answer(bad).first().data_rows(&ctx).unwrap_err().reason(),
                "UnexpectedResponse",
                "{bad}"
            );
        }
        assert!(answer("[]").first().data_object(&ctx).is_err());
    }

    #[test]
    fn a_result_object_is_taken_as_one_element() {
        let a = RpcAnswer::from_slice(
            br#"{"result": {"status": {"code": -6, "message": "Invalid url"}}, "session": "s"}"#,
        )
        .unwrap();
        assert_eq!(
            (a.first().code, a.first().message.as_str()),
            (-6, "Invalid url")
        );
        assert_eq!(a.session.as_deref(), Some("s"));
        let numeric =
            RpcAnswer::from_slice(br#"{"result": [{"status": {"code": 0}}], "session": 29259}"#)
                .unwrap();
        assert_eq!(numeric.session, None);
        assert!(
            why(br#"{"result": [{"status": {"code": 0}}], "session": []}"#).contains("`session`")
        );
    }
}
