//! What of a device's answer may reach an error message (and so a status, an event, CLI
//! output): an allow-list. A body is never quoted; it is described by its kind and length. Only
//! the device's own message fields (FortiOS `cli_error`, FortiManager `status.message`) are
//! passed on, and those only cleaned: control characters stripped, anything that follows a
//! secret-looking word replaced, the length capped.
//!
//! A deny-list of secret markers in raw bodies missed `password`, `api_key`, a lower-case
//! `bearer`, `psksecret`; the message fields are cleaned too because FortiOS echoes the values
//! of a failed CLI command in `cli_error`, and the value may be a connector's password.

/// Longest device text kept in a message, in characters.
pub const MAX_TEXT_CHARS: usize = 200;

/// Words after which the next value is a secret (lower-case; matched inside a token, so
/// `"password":"x"`, `psksecret=x` and `Authorization: Bearer x` all count).
const SECRET_WORDS: [&str; 12] = [
    "password",
    "passwd",
    "secret",
    "api_key",
    "api-key",
    "apikey",
    "token",
    "bearer",
    "session",
    "authorization",
    "cookie",
    "credential",
];

/// A device message field made safe for a message: control characters become spaces, a token
/// holding a secret word is replaced together with the token after it (the value), and the
/// result is capped at [`MAX_TEXT_CHARS`].
pub fn device_text(text: &str) -> String {
    let flat: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    let mut out: Vec<&str> = Vec::new();
    let mut redact_next = false;
    for word in flat.split_whitespace() {
        let lower = word.to_lowercase();
        let secret = SECRET_WORDS.iter().any(|s| lower.contains(s));
        if secret || redact_next {
            if out.last() != Some(&"<redacted>") {
                out.push("<redacted>");
            }
            // `password=value` carries its value; `bearer value` has it in the next word.
            redact_next = secret;
        } else {
            out.push(word);
        }
    }
    cap(&out.join(" "))
}

fn cap(text: &str) -> String {
    if text.chars().count() <= MAX_TEXT_CHARS {
        text.to_string()
    } else {
        let mut s: String = text.chars().take(MAX_TEXT_CHARS).collect();
        s.push('…');
        s
    }
}

/// What a body is, without quoting it: `an HTML page (starts with "<!DOCTYPE HTML"), 312
/// bytes`, `an empty body`, `312 bytes that are not JSON`.
pub fn body_kind(body: &[u8]) -> String {
    let start = body
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .map_or(&body[body.len()..], |i| &body[i..]);
    let head = |n: usize| String::from_utf8_lossy(&start[..start.len().min(n)]).to_lowercase();
    let size = body.len();
    if start.is_empty() {
        return if size == 0 {
            "an empty body".into()
        } else {
            format!("{size} bytes of white space")
        };
    }
    // The fixed marker is ours, named only when the body does start with it: it tells a
    // proxy's or login page's HTML from JSON without echoing the page.
    if head(14) == "<!doctype html" {
        format!("an HTML page (starts with \"<!DOCTYPE HTML\"), {size} bytes")
    } else if head(5) == "<html" {
        format!("an HTML page (starts with \"<html\"), {size} bytes")
    } else if start[0] == b'<' {
        format!("markup (starts with \"<\"), {size} bytes")
    } else if serde_json::from_slice::<serde::de::IgnoredAny>(body).is_ok() {
        let kind = match start[0] {
            b'{' => "an object",
            b'[' => "a list",
            b'"' => "a string",
            _ => "a scalar",
        };
        format!("JSON ({kind}, {size} bytes) of the wrong shape")
    } else {
        format!("{size} bytes that are not JSON")
    }
}

/// Why a body that should be JSON is not, without quoting it (serde's own messages quote the
/// offending value).
pub fn json_failure(body: &[u8], error: &serde_json::Error) -> String {
    match error.classify() {
        serde_json::error::Category::Eof if !body.iter().all(u8::is_ascii_whitespace) => {
            format!("JSON that ends early (truncated at {} bytes)", body.len())
        }
        serde_json::error::Category::Syntax | serde_json::error::Category::Eof => {
            if body.first().is_some_and(|b| matches!(b, b'{' | b'[')) {
                format!(
                    "malformed JSON (line {}, column {}), {} bytes",
                    error.line(),
                    error.column(),
                    body.len()
                )
            } else {
                body_kind(body)
            }
        }
        _ => format!("{} bytes that are not JSON", body.len()),
    }
}

/// The JSON type of a value, for "`results` is a string, expected a list".
pub fn json_type(value: &serde_json::Value) -> &'static str {
    match value {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "a boolean",
        serde_json::Value::Number(_) => "a number",
        serde_json::Value::String(_) => "a string",
        serde_json::Value::Array(_) => "a list",
        serde_json::Value::Object(_) => "an object",
    }
}

/// Where a refused redirect pointed: host (and port) and path of `location` resolved against
/// `request`, never the query or fragment (which may carry a token), cleaned like device text.
pub fn redirect_target(request: &url::Url, location: Option<&[u8]>) -> String {
    let Some(raw) = location else {
        return "no Location".into();
    };
    let text = String::from_utf8_lossy(raw);
    match request.join(text.trim()) {
        Ok(url) => {
            let host = url.host_str().unwrap_or("?");
            let port = url.port().map(|p| format!(":{p}")).unwrap_or_default();
            cap(&format!("{}://{host}{port}{}", url.scheme(), url.path())
                .chars()
                .map(|c| if c.is_control() { ' ' } else { c })
                .collect::<String>())
        }
        Err(_) => "a Location that is not a URL".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn device_text_redacts_values_after_secret_words_in_any_case() {
        let text = "password=canary123 api_key=canary456 bearer canary789 PSKSECRET x1 \"Token\": \"t2\" fail!";
        let clean = device_text(text);
        for canary in ["canary123", "canary456", "canary789", "x1", "t2"] {
            assert!(!clean.contains(canary), "{clean}");
        }
        assert!(clean.ends_with("fail!"), "{clean}");
    }

    #[test]
    fn device_text_strips_control_characters_and_caps_the_length() {
        assert_eq!(device_text("a\u{1b}[31m\nb\r\tc"), "a [31m b c");
        let long = "x".repeat(1000);
        assert_eq!(device_text(&long).chars().count(), MAX_TEXT_CHARS + 1);
    }

    #[test]
    fn values_a_cli_error_echoes_stay() {
        assert_eq!(
            device_text("node_check_object fail! for subnet 10.0.0.300"),
            "node_check_object fail! for subnet 10.0.0.300"
        );
    }

    #[test]
    fn bodies_are_described_never_quoted() {
        let html = b"<!DOCTYPE HTML PUBLIC><html>password=canary</html>";
        let kind = body_kind(html);
        assert!(kind.starts_with("an HTML page"), "{kind}");
        assert!(!kind.contains("canary"));
        assert_eq!(body_kind(b""), "an empty body");
        assert_eq!(body_kind(b"secret=1"), "8 bytes that are not JSON");
        assert_eq!(
            body_kind(br#"{"secret": 1}"#),
            "JSON (an object, 13 bytes) of the wrong shape"
        );
    }

    #[test]
    fn json_failures_name_truncation_without_the_text() {
        let body = br#"{"results": [{"name": "canary"#;
        let e = serde_json::from_slice::<serde_json::Value>(body).unwrap_err();
        let why = json_failure(body, &e);
        assert!(why.contains("truncated"), "{why}");
        assert!(!why.contains("canary"));
    }

    #[test]
    fn redirect_targets_keep_host_and_path_only() {
        let base = url::Url::parse("https://fw.example:8443/api/v2/cmdb/firewall/address").unwrap();
        assert_eq!(
            redirect_target(
                &base,
                Some(b"http://evil.example:80/x?access_token=canary#f")
            ),
            "http://evil.example/x"
        );
        assert_eq!(
            redirect_target(&base, Some(b"/login?redir=canary")),
            "https://fw.example:8443/login"
        );
        assert_eq!(redirect_target(&base, None), "no Location");
    }
}
