//! The HTTP(S) listener: `POST /jsonrpc` in, [`rpc::handle`] out. Kept thin on purpose.

use std::net::SocketAddr;
use std::ops::Deref;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Extension, RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::{JoinHandle, JoinSet};
use tower::ServiceExt;

use super::ManagedDevices;
use super::control::FortiManagerControl;
use super::rpc::{self, Incoming, Shared};
use super::scenario::FortiManagerScenario;
use super::state::FmgState;

/// Marks a response whose connection must be dropped instead (fault injection).
#[derive(Debug, Clone, Copy)]
struct ResetConnection;

/// The client address of a connection, attached to each of its requests.
#[derive(Debug, Clone, Copy)]
struct Peer(SocketAddr);

/// A running simulated FortiManager. Dereferences to its [`FortiManagerControl`]; stops on drop.
pub struct FortiManagerHandle {
    control: FortiManagerControl,
    url: String,
    ca_pem: Option<String>,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl FortiManagerHandle {
    /// Base URL, e.g. `https://127.0.0.1:40123` (the API is at `/jsonrpc`).
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The JSON-RPC endpoint, `{url}/jsonrpc`.
    pub fn jsonrpc_url(&self) -> String {
        format!("{}/jsonrpc", self.url)
    }

    /// PEM of the self-signed certificate to trust (None for plain HTTP).
    pub fn ca_pem(&self) -> Option<&str> {
        self.ca_pem.as_deref()
    }

    /// The in-process control surface (cloneable, e.g. for [`super::admin_router`]).
    pub fn control(&self) -> &FortiManagerControl {
        &self.control
    }

    /// Stops listening and closes every connection.
    pub async fn shutdown(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Deref for FortiManagerHandle {
    type Target = FortiManagerControl;
    fn deref(&self) -> &FortiManagerControl {
        &self.control
    }
}

impl Drop for FortiManagerHandle {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

/// Starts a simulated FortiManager for `scenario`; `devices` answers `/sys/proxy/json`.
pub async fn start(
    scenario: FortiManagerScenario,
    devices: Arc<dyn ManagedDevices>,
) -> anyhow::Result<FortiManagerHandle> {
    let state = FmgState::from_scenario(&scenario)?;
    let shared = Arc::new(Shared {
        state: Mutex::new(state),
        devices,
    });
    let listener = TcpListener::bind((scenario.bind, scenario.port)).await?;
    let addr = listener.local_addr()?;
    let (acceptor, ca_pem) = if scenario.tls {
        let (acceptor, pem) = tls_acceptor(&scenario)?;
        (Some(acceptor), Some(pem))
    } else {
        (None, None)
    };
    let scheme = if scenario.tls { "https" } else { "http" };
    let app = Router::new()
        .route("/jsonrpc", post(jsonrpc))
        .fallback(|| async { StatusCode::NOT_FOUND })
        .with_state(shared.clone());
    let (tx, rx) = oneshot::channel();
    let task = tokio::spawn(serve(listener, acceptor, app, rx));
    tracing::info!(scenario = %scenario.name, %addr, "simulated FortiManager listening");
    Ok(FortiManagerHandle {
        control: FortiManagerControl::new(shared),
        url: format!("{scheme}://{addr}"),
        ca_pem,
        shutdown: Some(tx),
        task: Some(task),
    })
}

fn tls_acceptor(
    scenario: &FortiManagerScenario,
) -> anyhow::Result<(tokio_rustls::TlsAcceptor, String)> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let names = vec!["localhost".to_string(), scenario.bind.to_string()];
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

async fn jsonrpc(
    State(shared): State<Arc<Shared>>,
    Extension(Peer(peer)): Extension<Peer>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
    body: Bytes,
) -> Response {
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, key)| key.trim().to_string());
    let access_token = query.as_deref().and_then(|q| {
        url::form_urlencoded::parse(q.as_bytes())
            .find(|(k, _)| k == "access_token")
            .map(|(_, v)| v.into_owned())
    });
    let out = rpc::handle(
        &shared,
        Incoming {
            body,
            bearer,
            access_token,
            peer: peer.ip(),
        },
    )
    .await;
    let status = StatusCode::from_u16(out.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    if out.reset {
        let mut resp = status.into_response();
        resp.extensions_mut().insert(ResetConnection);
        return resp;
    }
    match out.body {
        Some(body) => (status, axum::Json(body)).into_response(),
        None => status.into_response(),
    }
}
