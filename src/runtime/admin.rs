//! The admin HTTP server: `/metrics`, `/healthz` and `/readyz`.
//!
//! Readiness is only reported once every controller has listed its resources once, so a
//! rolling update never routes to a replica whose caches are still cold.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use prometheus_client::registry::Registry;
use tokio::sync::watch;

/// What the admin server reads: the metrics registry and the readiness flag.
#[derive(Clone)]
pub struct AdminState {
    registry: Arc<Mutex<Registry>>,
    ready: watch::Receiver<bool>,
}

impl AdminState {
    /// Serves `registry`; `/readyz` follows `ready`.
    pub fn new(registry: Arc<Mutex<Registry>>, ready: watch::Receiver<bool>) -> Self {
        Self { registry, ready }
    }
}

/// The admin routes, for embedding or tests.
pub fn router(state: AdminState) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .with_state(state)
}

/// Binds `addr` and serves the admin routes until the process ends, with the same bounds as
/// every listener fortisync runs (connections, headers, timeouts).
pub async fn serve(addr: SocketAddr, state: AdminState) -> std::io::Result<()> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    tracing::info!(%addr, "admin server listening (/metrics, /healthz, /readyz)");
    crate::edl::serve_bounded(listener, router(state), None, std::future::pending()).await;
    Ok(())
}

async fn metrics(State(state): State<AdminState>) -> impl IntoResponse {
    let mut body = String::new();
    let encoded = {
        let registry = state.registry.lock().unwrap_or_else(|p| p.into_inner());
        prometheus_client::encoding::text::encode(&mut body, &registry)
    };
    match encoded {
        Ok(()) => (
            StatusCode::OK,
            [(
                header::CONTENT_TYPE,
                "application/openmetrics-text; version=1.0.0; charset=utf-8",
            )],
            body,
        ),
        Err(e) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            format!("encoding metrics failed: {e}"),
        ),
    }
}

async fn readyz(State(state): State<AdminState>) -> impl IntoResponse {
    if *state.ready.borrow() {
        (StatusCode::OK, "ready")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "caches not synced yet")
    }
}
