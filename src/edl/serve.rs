//! The listener: plain HTTP (behind a Service that terminates nothing) or TLS, bounded in
//! connections, header size, header-read time, handshake time and connection lifetime, because
//! it faces firewalls and whatever else can reach the port.

use hyper_util::rt::{TokioIo, TokioTimer};
use rustls::ServerConfig;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tower::ServiceExt;

use super::http::router;
use super::lists::Lists;

/// Bounds of the listener.
pub mod limits {
    use std::time::Duration;

    /// Connections served at once; more are closed on accept.
    pub const MAX_CONNECTIONS: usize = 512;
    /// Request line plus headers, bytes (hyper's read buffer; its floor is 8 KiB).
    pub const MAX_HEADER_BYTES: usize = 16 * 1024;
    /// Header fields per request.
    pub const MAX_HEADERS: usize = 32;
    /// Time to send the request head.
    pub const HEADER_READ: Duration = Duration::from_secs(10);
    /// Time to finish the TLS handshake.
    pub const HANDSHAKE: Duration = Duration::from_secs(10);
    /// Lifetime of a connection, keep-alive included. A 300,000-entry body (~5 MB) needs
    /// 40 KB/s to arrive in time; a slow reader is cut off here.
    pub const CONNECTION: Duration = Duration::from_secs(120);
}

/// Why a TLS configuration could not be made.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// `tls.crt` holds no certificate or does not parse.
    #[error("tls.crt: {0}")]
    Certificate(String),
    /// `tls.key` holds no private key or does not parse.
    #[error("tls.key: {0}")]
    Key(String),
    /// rustls refused the pair (e.g. the key does not match the certificate).
    #[error("tls.crt/tls.key: {0}")]
    Pair(String),
}

/// A rustls server configuration from PEM strings (a `kubernetes.io/tls` Secret's data).
pub fn tls_config(cert_pem: &str, key_pem: &str) -> Result<ServerConfig, TlsError> {
    let chain = CertificateDer::pem_slice_iter(cert_pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| TlsError::Certificate(e.to_string()))?;
    if chain.is_empty() {
        return Err(TlsError::Certificate("no CERTIFICATE block".into()));
    }
    let key = PrivateKeyDer::from_pem_slice(key_pem.as_bytes())
        .map_err(|e| TlsError::Key(e.to_string()))?;
    let mut config =
        ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .map_err(|e| TlsError::Pair(e.to_string()))?
            .with_no_client_auth()
            .with_single_cert(chain, key)
            .map_err(|e| TlsError::Pair(e.to_string()))?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

/// Binds `addr` and serves `lists` until the process ends.
pub async fn serve(addr: SocketAddr, lists: Lists, tls: Option<ServerConfig>) -> io::Result<()> {
    let listener = TcpListener::bind(addr).await?;
    serve_on(listener, lists, tls, std::future::pending()).await;
    Ok(())
}

/// Serves `lists` on a bound listener until `shutdown` completes; open connections end with it.
pub async fn serve_on(
    listener: TcpListener,
    lists: Lists,
    tls: Option<ServerConfig>,
    shutdown: impl Future<Output = ()>,
) {
    serve_bounded(listener, router(lists), tls, shutdown).await
}

/// Serves `app` with the same bounds as the EDL endpoint (connections, header size and count,
/// header and handshake timeouts, a lifetime per connection): every listener fortisync runs
/// faces a network it does not control. Request bodies are never read.
pub async fn serve_bounded(
    listener: TcpListener,
    app: axum::Router,
    tls: Option<ServerConfig>,
    shutdown: impl Future<Output = ()>,
) {
    let acceptor = tls.map(|c| tokio_rustls::TlsAcceptor::from(Arc::new(c)));
    let permits = Arc::new(Semaphore::new(limits::MAX_CONNECTIONS));
    // Connections live in the set, so returning (shutdown) closes them all.
    let mut conns = JoinSet::new();
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            _ = &mut shutdown => break,
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
            accepted = listener.accept() => {
                let Ok((stream, _peer)) = accepted else { continue };
                // Over the cap: close at once rather than queue unbounded work.
                let Ok(permit) = permits.clone().try_acquire_owned() else { continue };
                let _ = stream.set_nodelay(true);
                let app = app.clone();
                let acceptor = acceptor.clone();
                conns.spawn(async move {
                    let _permit = permit;
                    let svc = hyper::service::service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                        // Request bodies are never read: the routes take none.
                        app.clone().oneshot(req)
                    });
                    let mut http = hyper::server::conn::http1::Builder::new();
                    http.timer(TokioTimer::new())
                        .header_read_timeout(limits::HEADER_READ)
                        .max_buf_size(limits::MAX_HEADER_BYTES)
                        .max_headers(limits::MAX_HEADERS);
                    let connection = async {
                        match acceptor {
                            Some(acceptor) => {
                                let Ok(Ok(tls)) = tokio::time::timeout(limits::HANDSHAKE, acceptor.accept(stream)).await else {
                                    return;
                                };
                                let _ = http.serve_connection(TokioIo::new(tls), svc).await;
                            }
                            None => {
                                let _ = http.serve_connection(TokioIo::new(stream), svc).await;
                            }
                        }
                    };
                    let _ = tokio::time::timeout(limits::CONNECTION, connection).await;
                });
            }
        }
    }
}
