//! The network edge every simulated device shares: a TCP listener, optional TLS with a
//! generated self-signed certificate, the peer address on every request, and injected resets.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use axum::Router;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::{JoinHandle, JoinSet};
use tower::ServiceExt;

/// Marks a response whose connection must be dropped instead of answered (fault injection).
#[derive(Debug, Clone, Copy)]
pub struct ResetConnection;

/// The client address of a connection, attached to each of its requests.
#[derive(Debug, Clone, Copy)]
pub struct Peer(pub SocketAddr);

/// A listening device: its base URL, certificate, and the task serving it.
pub struct Listening {
    /// `https://127.0.0.1:40123` or `http://…`.
    pub url: String,
    /// PEM of the self-signed certificate (None for plain HTTP).
    pub ca_pem: Option<String>,
    /// Stops the accept loop (and with it every connection).
    pub stop: oneshot::Sender<()>,
    /// The accept loop.
    pub task: JoinHandle<()>,
}

/// Binds `bind:port` and serves `app`, over TLS when `tls` is set.
pub async fn listen(bind: IpAddr, port: u16, tls: bool, app: Router) -> anyhow::Result<Listening> {
    let listener = TcpListener::bind((bind, port)).await?;
    let addr = listener.local_addr()?;
    let (acceptor, ca_pem) = if tls {
        let (acceptor, pem) = tls_acceptor(bind)?;
        (Some(acceptor), Some(pem))
    } else {
        (None, None)
    };
    let scheme = if tls { "https" } else { "http" };
    let (stop, rx) = oneshot::channel();
    let task = tokio::spawn(serve(listener, acceptor, app, rx));
    Ok(Listening {
        url: format!("{scheme}://{addr}"),
        ca_pem,
        stop,
        task,
    })
}

fn tls_acceptor(bind: IpAddr) -> anyhow::Result<(tokio_rustls::TlsAcceptor, String)> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut names = vec!["localhost".to_string(), bind.to_string()];
    if bind.is_unspecified() {
        names.push("127.0.0.1".to_string());
    }
    let certified = rcgen::generate_simple_self_signed(names)?;
    let key = rustls::pki_types::PrivateKeyDer::Pkcs8(certified.signing_key.serialize_der().into());
    let mut config = rustls::ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(vec![certified.cert.der().clone()], key)?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok((
        tokio_rustls::TlsAcceptor::from(Arc::new(config)),
        certified.cert.pem(),
    ))
}

async fn serve(
    listener: TcpListener,
    acceptor: Option<tokio_rustls::TlsAcceptor>,
    app: Router,
    mut stop: oneshot::Receiver<()>,
) {
    // Connections live in the set, so ending this task (shutdown or drop) closes them all.
    let mut conns = JoinSet::new();
    loop {
        tokio::select! {
            _ = &mut stop => break,
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
            accepted = listener.accept() => {
                let Ok((stream, peer)) = accepted else { continue };
                let _ = stream.set_nodelay(true);
                let app = app.clone();
                let acceptor = acceptor.clone();
                conns.spawn(async move {
                    let svc = hyper::service::service_fn(move |mut req: hyper::Request<hyper::body::Incoming>| {
                        req.extensions_mut().insert(Peer(peer));
                        let app = app.clone();
                        async move {
                            let resp = app.oneshot(req).await.unwrap_or_else(|never| match never {});
                            // An error makes hyper drop the connection without answering.
                            match resp.extensions().get::<ResetConnection>() {
                                Some(_) => Err(std::io::Error::new(std::io::ErrorKind::ConnectionReset, "injected reset")),
                                None => Ok(resp),
                            }
                        }
                    });
                    let http = hyper::server::conn::http1::Builder::new();
                    let _ = match acceptor {
                        Some(acceptor) => match acceptor.accept(stream).await {
                            Ok(tls) => http.serve_connection(TokioIo::new(tls), svc).await,
                            Err(_) => return,
                        },
                        None => http.serve_connection(TokioIo::new(stream), svc).await,
                    };
                });
            }
        }
    }
}
