//! The HTTP client both device kinds use: rustls with an optional CA bundle, explicit insecure
//! mode, a chosen source address, timeouts, a keep-alive pool; one exchange that treats the
//! answer as untrusted (no redirect followed, a bounded body, a whole-answer deadline); and the
//! classification of transport failures into the error taxonomy.

use std::net::IpAddr;
use std::sync::OnceLock;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use reqwest::header::{CONTENT_LENGTH, HeaderMap, LOCATION};

use super::error::{Context, DeviceError};
use super::untrusted::redirect_target;

/// The most fortisync reads of one device answer. Far above any real one (a FortiManager ADOM
/// table of 10,000 addresses with every field is under 10 MiB), so that only a broken or
/// hostile peer reaches it: one endless answer once took the process from 20 MB to 3.5 GB.
pub const MAX_BODY_BYTES: usize = 64 * 1024 * 1024;

/// How to reach a device at the network level.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransportConfig {
    /// PEM CA bundle that signs the device certificate.
    pub ca_bundle_pem: Option<String>,
    /// Skip certificate verification (explicit opt-in only).
    pub insecure_skip_verify: bool,
    /// Local address to send from.
    pub source_address: Option<IpAddr>,
    /// Per-request timeout.
    pub timeout: Duration,
}

impl Default for TransportConfig {
    fn default() -> Self {
        Self {
            ca_bundle_pem: None,
            insecure_skip_verify: false,
            source_address: None,
            timeout: Duration::from_secs(15),
        }
    }
}

/// The leader-election identity of this `fortisync run` replica, set once at start.
static REPLICA_IDENTITY: OnceLock<String> = OnceLock::new();

/// Names this replica in the `User-Agent` of every device request from now on, so a device's
/// (or the simulator's) request log tells which replica wrote. The identity is a pod or host
/// name, never a secret. Only the first call counts; the CLI never calls it.
pub fn set_replica_identity(identity: &str) {
    let _ = REPLICA_IDENTITY.set(identity.to_string());
}

/// `fortisync/<version>`, with ` (<identity>)` when a replica identity is given. Characters a
/// header value or a comment cannot hold (controls, non-ASCII, parentheses, backslash) are
/// dropped, and the identity is cut at 128 characters, so no identity can break the header.
pub fn user_agent(identity: Option<&str>) -> String {
    let base = concat!("fortisync/", env!("CARGO_PKG_VERSION"));
    let clean: String = identity
        .unwrap_or_default()
        .chars()
        .filter(|c| c.is_ascii_graphic() && !matches!(c, '(' | ')' | '\\'))
        .take(128)
        .collect();
    if clean.is_empty() {
        base.to_string()
    } else {
        format!("{base} ({clean})")
    }
}

/// Builds the HTTP client; a bad CA bundle is a TLS error naming the problem.
pub fn http_client(config: &TransportConfig, device: &str) -> Result<reqwest::Client, DeviceError> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut builder = reqwest::Client::builder()
        .use_rustls_tls()
        .cookie_store(true)
        .timeout(config.timeout)
        // A redirect is never followed: a 307 re-sends the login password (to any host, even
        // over http), a 302 turns a write into a GET. `exchange` turns a 3xx into an error.
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(config.timeout.min(Duration::from_secs(10)))
        .pool_idle_timeout(Duration::from_secs(50))
        .user_agent(user_agent(REPLICA_IDENTITY.get().map(String::as_str)));
    if let Some(pem) = &config.ca_bundle_pem {
        let certs = reqwest::Certificate::from_pem_bundle(pem.as_bytes()).map_err(|e| {
            DeviceError::Tls {
                ctx: Context {
                    device: device.to_string(),
                    ..Context::default()
                },
                detail: format!("the CA bundle is not valid PEM: {e}"),
            }
        })?;
        if certs.is_empty() {
            return Err(DeviceError::Tls {
                ctx: Context {
                    device: device.to_string(),
                    ..Context::default()
                },
                detail: "the CA bundle holds no certificate".into(),
            });
        }
        for cert in certs {
            builder = builder.add_root_certificate(cert);
        }
    }
    if config.insecure_skip_verify {
        builder = builder.danger_accept_invalid_certs(true);
    }
    if let Some(ip) = config.source_address {
        builder = builder.local_address(ip);
    }
    builder.build().map_err(|e| DeviceError::ConnectFailed {
        ctx: Context {
            device: device.to_string(),
            ..Context::default()
        },
        detail: format!("cannot build the HTTP client: {e}"),
    })
}

/// One device answer, read in full and within the limits.
#[derive(Debug, Clone)]
pub struct Answer {
    /// HTTP status (never a 3xx).
    pub status: u16,
    /// Response headers.
    pub headers: HeaderMap,
    /// The body, at most [`MAX_BODY_BYTES`].
    pub body: Bytes,
}

/// Sends `request` and reads its whole answer before `timeout` has passed since the start (so
/// a peer that drips one byte at a time cannot hold a request), at most `limit` bytes of body
/// (see [`MAX_BODY_BYTES`]), and refuses a 3xx naming where it pointed. A deadline that passes
/// on a write is `OutcomeUnknown` (the device may have acted), as a dropped connection is.
pub async fn exchange(
    request: reqwest::RequestBuilder,
    ctx: &Context,
    timeout: Duration,
    write: bool,
    limit: usize,
) -> Result<Answer, DeviceError> {
    match tokio::time::timeout(timeout, exchange_inner(request, ctx, timeout, write, limit)).await {
        Ok(answer) => answer,
        Err(_) if write => Err(DeviceError::OutcomeUnknown { ctx: ctx.clone() }),
        Err(_) => Err(DeviceError::Timeout {
            ctx: ctx.clone(),
            timeout,
        }),
    }
}

async fn exchange_inner(
    request: reqwest::RequestBuilder,
    ctx: &Context,
    timeout: Duration,
    write: bool,
    limit: usize,
) -> Result<Answer, DeviceError> {
    let mut response = request
        .send()
        .await
        .map_err(|e| classify(&e, ctx.clone(), timeout, write && !never_sent(&e)))?;
    let status = response.status().as_u16();
    if response.status().is_redirection() {
        let to = redirect_target(
            response.url(),
            response.headers().get(LOCATION).map(|v| v.as_bytes()),
        );
        return Err(DeviceError::UnexpectedResponse {
            ctx: ctx.clone(),
            status,
            detail: format!("a redirect to {to}, which fortisync never follows"),
        });
    }
    let too_large = || DeviceError::ResponseTooLarge {
        ctx: ctx.clone(),
        status,
        limit,
    };
    let declared = response
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(too_large());
    }
    // The declared length only sizes the first allocation, never beyond 1 MiB: it is the
    // peer's word.
    let mut body = BytesMut::with_capacity(
        declared
            .map_or(0, |n| n as usize)
            .min(limit)
            .min(1024 * 1024),
    );
    loop {
        match response.chunk().await {
            Ok(Some(chunk)) => {
                if body.len() + chunk.len() > limit {
                    return Err(too_large());
                }
                body.extend_from_slice(&chunk);
            }
            Ok(None) => break,
            Err(e) => return Err(classify(&e, ctx.clone(), timeout, write)),
        }
    }
    Ok(Answer {
        status,
        headers: response.headers().clone(),
        body: body.freeze(),
    })
}

/// Whether the request surely never reached the device (safe to re-send even a write).
pub fn never_sent(error: &reqwest::Error) -> bool {
    error.is_connect()
}

/// Maps a transport failure (no HTTP status) to the taxonomy.
pub fn classify(
    error: &reqwest::Error,
    ctx: Context,
    timeout: Duration,
    write: bool,
) -> DeviceError {
    let chain = error_chain(error);
    // Only handshake and certificate failures are TLS problems; a peer that closes the
    // connection without close_notify is a reset.
    if chain.contains("certificate")
        || chain.contains("handshake")
        || chain.contains("unknownissuer")
    {
        return DeviceError::Tls {
            ctx,
            detail: tls_detail(&chain),
        };
    }
    if error.is_timeout() {
        return if write && !error.is_connect() {
            DeviceError::OutcomeUnknown { ctx }
        } else {
            DeviceError::Timeout { ctx, timeout }
        };
    }
    if error.is_connect() {
        return DeviceError::ConnectFailed {
            ctx,
            detail: short(&chain),
        };
    }
    if write {
        DeviceError::OutcomeUnknown { ctx }
    } else {
        DeviceError::ConnectFailed {
            ctx,
            detail: short(&chain),
        }
    }
}

fn error_chain(error: &reqwest::Error) -> String {
    let mut text = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(e) = source {
        text.push_str(": ");
        text.push_str(&e.to_string());
        source = e.source();
    }
    // URLs can carry queries; never keep them in an error.
    text.split_whitespace()
        .filter(|w| !w.contains("://"))
        .collect::<Vec<_>>()
        .join(" ")
        .to_lowercase()
}

/// Why a certificate with `CA:TRUE` fails even when it is the configured CA: webpki refuses a
/// CA certificate as an end entity (`CaUsedAsEndEntity`), and accepting it would need a
/// verifier of our own; the message says what to change instead.
pub const CA_AS_END_ENTITY: &str = "the device presents a CA certificate (CA:TRUE) as its own certificate, which verification refuses even when it is in the CA bundle";

/// What to do about [`CA_AS_END_ENTITY`].
pub const CA_AS_END_ENTITY_REMEDY: &str = "give fortisync the CA that signed it, or regenerate the device certificate without CA:TRUE (basicConstraints CA:FALSE)";

fn tls_detail(chain: &str) -> String {
    if chain.contains("causedasendentity") || chain.contains("ca used as end entity") {
        format!("{CA_AS_END_ENTITY}: {CA_AS_END_ENTITY_REMEDY}")
    } else if chain.contains("unknownissuer") || chain.contains("unknown issuer") {
        "the certificate is signed by an unknown issuer (self-signed or private CA)".into()
    } else if chain.contains("expired") {
        "the certificate has expired (or the controller's clock is ahead)".into()
    } else if chain.contains("notvalidyet") || chain.contains("not valid yet") {
        "the certificate is not valid yet: it was issued for a later date, or the device's or the controller's clock is wrong".into()
    } else if chain.contains("notvalidforname") || chain.contains("not valid for name") {
        "the certificate does not match the host name in spec.url".into()
    } else if chain.contains("badsignature") || chain.contains("bad signature") {
        // The issuer's name matched a CA of the bundle, its key did not: another device's
        // self-signed certificate, or a re-generated one.
        "the certificate's signature does not verify with the CA bundle: the bundle holds a different CA of the same name (another device's or an older self-signed certificate)".into()
    } else {
        short(chain)
    }
}

fn short(text: &str) -> String {
    text.chars().take(200).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tls_details_name_the_problem() {
        assert!(tls_detail("invalid peer certificate: unknownissuer").contains("unknown issuer"));
        assert!(tls_detail("invalid peer certificate: expired").contains("expired"));
        assert!(tls_detail("invalid peer certificate: notvalidyet").contains("not valid yet"));
        assert!(tls_detail("invalid peer certificate: notvalidforname").contains("host name"));
        assert!(tls_detail("invalid peer certificate: badsignature").contains("different CA"));
        let ca = tls_detail("invalid peer certificate: other(othererror(causedasendentity))");
        assert!(ca.contains("CA:TRUE") && ca.contains("regenerate"), "{ca}");
    }

    #[test]
    fn the_user_agent_names_the_replica_and_nothing_a_header_cannot_hold() {
        let base = concat!("fortisync/", env!("CARGO_PKG_VERSION"));
        assert_eq!(user_agent(None), base);
        assert_eq!(user_agent(Some("")), base);
        assert_eq!(
            user_agent(Some("fortisync-7d9f-abcde")),
            format!("{base} (fortisync-7d9f-abcde)")
        );
        assert_eq!(user_agent(Some("a b\r\n(c)\\dé")), format!("{base} (abcd)"));
        assert_eq!(
            user_agent(Some(&"x".repeat(300))).len(),
            base.len() + 3 + 128
        );
        assert!(reqwest::header::HeaderValue::from_str(&user_agent(Some("p\u{7f}od"))).is_ok());
    }
}
