//! Request and reply as the pure handler sees them, and FortiOS's JSON envelope (facts §2).

use std::net::IpAddr;

use serde_json::{Map, Value, json};

use super::state::FortiGateState;

/// A request as the handler sees it: everything already read from the wire.
#[derive(Debug, Clone)]
pub struct Request {
    /// HTTP method, upper case.
    pub method: String,
    /// Raw path (still percent-encoded).
    pub path: String,
    /// Decoded query pairs.
    pub query: Vec<(String, String)>,
    /// `Authorization` header.
    pub authorization: Option<String>,
    /// `Cookie` header.
    pub cookie: Option<String>,
    /// `X-CSRFTOKEN` header.
    pub csrf: Option<String>,
    /// `X-TRANSACTION-ID` header.
    pub transaction: Option<String>,
    /// Body bytes.
    pub body: Vec<u8>,
    /// TCP peer address.
    pub peer: IpAddr,
    /// In-process call from FortiManager's proxy: trusted, never locked out.
    pub internal: bool,
    /// `User-Agent` header.
    pub user_agent: Option<String>,
}

impl Request {
    /// The query parameters' names, in order (for the request log, which keeps no values).
    pub fn query_names(&self) -> Vec<String> {
        self.query.iter().map(|(k, _)| k.clone()).collect()
    }

    /// First value of a query parameter.
    pub fn param(&self, key: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

/// What the handler answers.
#[derive(Debug, Clone, PartialEq)]
pub struct Reply {
    /// HTTP status.
    pub status: u16,
    /// Extra headers (`Set-Cookie`, `WWW-Authenticate`, ...).
    pub headers: Vec<(String, String)>,
    /// Body.
    pub body: Body,
}

/// A reply body.
#[derive(Debug, Clone, PartialEq)]
pub enum Body {
    /// `application/json`
    Json(Value),
    /// `text/html; charset=iso-8859-1`, like the device's Apache-style error pages.
    Html(String),
    /// `text/plain` (legacy `/logincheck` answers).
    Text(String),
    /// No body at all (an injected fault).
    Empty,
}

impl Reply {
    /// A JSON reply.
    pub fn json(status: u16, body: Value) -> Self {
        Self {
            status,
            headers: Vec::new(),
            body: Body::Json(body),
        }
    }

    /// The device's HTML error page for `status`.
    pub fn html(status: u16) -> Self {
        let body = match status {
            401 => page(
                "401 Unauthorized",
                "Unauthorized",
                "This server could not verify that you are authorized to access the document requested. Either you supplied the wrong credentials (e.g., bad password), or your browser doesn't understand how to supply the credentials required.",
            ),
            429 => page(
                "429 Too Many Requests",
                "Too Many Requests",
                "The user has sent too many requests in a given amount of time.</p>\n<p>Additionally, a 429 Too Many Requests error was encountered while trying to use an ErrorDocument to handle the request.",
            ),
            404 => page(
                "404 Not Found",
                "Not Found",
                "The requested URL was not found on this server.",
            ),
            503 => page(
                "503 Service Unavailable",
                "Service Unavailable",
                "The server is temporarily unable to service your request.",
            ),
            _ => page(
                &format!("{status} Error"),
                "Error",
                "The server encountered an error.",
            ),
        };
        Self {
            status,
            headers: Vec::new(),
            body: Body::Html(body),
        }
    }

    /// Adds a header.
    pub fn with_header(mut self, name: &str, value: impl Into<String>) -> Self {
        self.headers.push((name.to_string(), value.into()));
        self
    }
}

fn page(title: &str, heading: &str, text: &str) -> String {
    format!(
        "<!DOCTYPE HTML PUBLIC \"-//IETF//DTD HTML 2.0//EN\">\n<html><head>\n<title>{title}</title>\n</head><body>\n<h1>{heading}</h1>\n<p>{text}</p>\n</body></html>\n"
    )
}

/// The common envelope fields of a CMDB or monitor answer.
pub fn envelope(
    state: &FortiGateState,
    method: &str,
    vdom: &str,
    path: &str,
    name: &str,
    http_status: u16,
) -> Map<String, Value> {
    let mut map = Map::new();
    map.insert("http_method".into(), json!(method));
    map.insert("revision".into(), json!(format!("{:032x}", state.revision)));
    map.insert("vdom".into(), json!(vdom));
    map.insert("path".into(), json!(path));
    map.insert("name".into(), json!(name));
    map.insert(
        "status".into(),
        json!(if http_status == 200 {
            "success"
        } else {
            "error"
        }),
    );
    map.insert("http_status".into(), json!(http_status));
    map.insert("serial".into(), json!(state.serial));
    map.insert("version".into(), json!(state.version.to_string()));
    map.insert("build".into(), json!(state.version.build()));
    map
}
