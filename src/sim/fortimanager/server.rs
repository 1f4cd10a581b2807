//! The HTTP(S) listener: `POST /jsonrpc` in, [`rpc::handle`] out. Kept thin on purpose.

use std::ops::Deref;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Extension, RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use super::ManagedDevices;
use super::control::FortiManagerControl;
use super::rpc::{self, Incoming, OutBody, Shared};
use super::scenario::FortiManagerScenario;
use super::state::FmgState;
use crate::sim::listener::{Peer, ResetConnection, listen};

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
    let app = Router::new()
        .route("/jsonrpc", post(jsonrpc))
        .fallback(|| async { StatusCode::NOT_FOUND })
        .with_state(shared.clone());
    let listening = listen(scenario.bind, scenario.port, scenario.tls, app).await?;
    tracing::info!(scenario = %scenario.name, url = %listening.url, "simulated FortiManager listening");
    Ok(FortiManagerHandle {
        control: FortiManagerControl::new(shared),
        url: listening.url,
        ca_pem: listening.ca_pem,
        shutdown: Some(listening.stop),
        task: Some(listening.task),
    })
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
            user_agent: headers
                .get(header::USER_AGENT)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string),
        },
    )
    .await;
    let status = StatusCode::from_u16(out.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    if out.reset {
        let mut resp = status.into_response();
        resp.extensions_mut().insert(ResetConnection);
        return resp;
    }
    let mut resp = match out.body {
        OutBody::Json(body) => (status, axum::Json(body)).into_response(),
        OutBody::Html(page) => (status, axum::response::Html(page)).into_response(),
        OutBody::Empty => status.into_response(),
    };
    for (name, value) in out.headers {
        if let (Ok(name), Ok(value)) = (
            header::HeaderName::try_from(name),
            header::HeaderValue::try_from(value),
        ) {
            resp.headers_mut().append(name, value);
        }
    }
    resp
}
