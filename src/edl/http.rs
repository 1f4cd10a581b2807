//! The routes FortiGates poll: `GET|HEAD /edl/{namespace}/{name}` and `/healthz`.
//!
//! Order of checks: credentials first, existence second. An unknown list is compared against
//! credentials nothing matches, so it answers 401 exactly like a known list with wrong
//! credentials (same status, headers, empty body, same digest work): a scanner cannot learn
//! which namespace/name pairs exist. Hence 404 only answers URLs that are not list URLs at all.

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use super::auth::CredentialDigest;
use super::lists::Lists;
use super::metrics::Outcome;

/// The challenge sent with every 401.
pub const CHALLENGE: &str = "Basic realm=\"fortisync\"";

/// The EDL routes over `lists`.
pub fn router(lists: Lists) -> Router {
    let not_found = lists.clone();
    Router::new()
        .route("/edl/{namespace}/{name}", get(list).head(list))
        .route("/healthz", get(|| async { "ok\n" }))
        .fallback(move || {
            let lists = not_found.clone();
            async move {
                lists.metrics().count(Outcome::not_found);
                StatusCode::NOT_FOUND
            }
        })
        .with_state(lists)
}

async fn list(
    State(lists): State<Lists>,
    Path((namespace, name)): Path<(String, String)>,
    method: Method,
    headers: HeaderMap,
) -> Response {
    let metrics = lists.metrics();
    let found = lists.lookup(&namespace, &name);
    let authorization = headers
        .get(header::AUTHORIZATION)
        .map(HeaderValue::as_bytes);
    let admitted = match &found {
        Some((state, _)) => match &state.credentials {
            Some(digest) => digest.admits(authorization),
            None => true,
        },
        None => CredentialDigest::NEVER.admits(authorization),
    };
    let served = match found {
        Some((_, served)) if admitted => served,
        _ => {
            metrics.auth_failures.inc();
            metrics.count(Outcome::unauthorized);
            return (
                StatusCode::UNAUTHORIZED,
                [(header::WWW_AUTHENTICATE, CHALLENGE)],
            )
                .into_response();
        }
    };
    let body = &served.body;
    let etag = HeaderValue::from_str(&body.etag).expect("hex ETag is a valid header");
    if if_none_match(&headers, &body.etag) {
        metrics.count(Outcome::not_modified);
        return (StatusCode::NOT_MODIFIED, [(header::ETAG, etag)]).into_response();
    }
    metrics.count(Outcome::served);
    let head = [
        (
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; charset=utf-8"),
        ),
        (header::ETAG, etag),
        // Revalidate on every poll; the 304 path makes that cheap.
        (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
        (header::CONTENT_LENGTH, HeaderValue::from(body.bytes.len())),
    ];
    if method == Method::HEAD {
        return (StatusCode::OK, head).into_response();
    }
    metrics.bytes_served.inc_by(body.bytes.len() as u64);
    // `Bytes` clone: a reference count, never a copy or rebuild of the body.
    (StatusCode::OK, head, body.bytes.clone()).into_response()
}

/// RFC 9110 §13.1.2: weak comparison; `*` matches any current representation.
fn if_none_match(headers: &HeaderMap, etag: &str) -> bool {
    headers
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .any(|tag| tag == "*" || tag.strip_prefix("W/").unwrap_or(tag) == etag)
}
