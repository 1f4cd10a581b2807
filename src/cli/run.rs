//! `fortisync run`: the controller process.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use prometheus_client::registry::Registry;

use crate::reconcile::context::Context;
use crate::reconcile::controller::{self, Scope};
use crate::runtime::{admin, leader, logging};

/// Arguments of `fortisync run`.
#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// Serve only these namespaces (repeat the flag; default: every namespace).
    #[arg(long = "namespace", value_name = "NAMESPACE")]
    pub namespaces: Vec<String>,
    /// Address of the admin server (/metrics, /healthz, /readyz).
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub admin_address: SocketAddr,
    /// Log format.
    #[arg(long, value_enum, default_value = "json")]
    pub log_format: logging::LogFormat,
    /// Namespace of the leader-election Lease (default: the pod's namespace or `default`).
    #[arg(long, env = "POD_NAMESPACE")]
    pub lease_namespace: Option<String>,
    /// Name of the leader-election Lease.
    #[arg(long, default_value = "fortisync-controller")]
    pub lease_name: String,
    /// Lease duration in seconds.
    #[arg(long, default_value_t = 15)]
    pub lease_duration_seconds: u64,
    /// Serve ExternalConnector feeds (the EDL endpoint FortiGates poll) on this address; every
    /// replica serves them from its own cache.
    #[arg(long)]
    pub edl_address: Option<SocketAddr>,
    /// The EDL endpoint as FortiGates reach it (a Service, Ingress or LoadBalancer address),
    /// e.g. `https://fortisync-edl.fortisync.svc:8443`; feeds poll `<base>/edl/<ns>/<name>`.
    #[arg(long)]
    pub edl_base_url: Option<String>,
    /// PEM certificate (chain) of the EDL endpoint; with `--edl-tls-key-file`, it serves HTTPS.
    #[arg(long, requires = "edl_tls_key_file")]
    pub edl_tls_cert_file: Option<std::path::PathBuf>,
    /// PEM private key of the EDL endpoint.
    #[arg(long, requires = "edl_tls_cert_file")]
    pub edl_tls_key_file: Option<std::path::PathBuf>,
    /// This replica's identity in the Lease (default: the pod name or host name).
    #[arg(long, env = "POD_NAME")]
    pub identity: Option<String>,
}

/// Runs the controller until SIGTERM / Ctrl-C.
pub async fn run(args: RunArgs) -> ExitCode {
    logging::init(args.log_format);
    let client = match apiserver_client().await {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "no Kubernetes configuration (in-cluster or KUBECONFIG)");
            return ExitCode::FAILURE;
        }
    };
    let identity = args.identity.unwrap_or_else(|| {
        std::env::var("HOSTNAME").unwrap_or_else(|_| format!("fortisync-{}", std::process::id()))
    });
    // Every device request names this replica, so a device log shows which one wrote.
    crate::device::transport::set_replica_identity(&identity);
    let lease = leader::LeaderConfig {
        namespace: args
            .lease_namespace
            .unwrap_or_else(|| "default".to_string()),
        lease_name: args.lease_name,
        identity: identity.clone(),
        lease_duration: Duration::from_secs(args.lease_duration_seconds),
    };
    let (leading, elected) = match leader::elect(client.clone(), lease).await {
        Ok(pair) => pair,
        Err(e) => {
            tracing::error!(error = %e, "leader election could not start");
            return ExitCode::FAILURE;
        }
    };
    let mut registry = Registry::default();
    let ctx = Arc::new(
        Context::new(client.clone(), &mut registry)
            .with_leader_election(leading.clone())
            .with_edl_base_url(args.edl_base_url.clone()),
    );
    if let Some(addr) = args.edl_address {
        let tls = match edl_tls(
            args.edl_tls_cert_file.as_deref(),
            args.edl_tls_key_file.as_deref(),
        ) {
            Ok(tls) => tls,
            Err(e) => {
                tracing::error!(error = %e, "the EDL certificate or key is not usable");
                return ExitCode::FAILURE;
            }
        };
        let lists = ctx.edl.clone();
        tokio::spawn(async move {
            tracing::info!(%addr, tls = tls.is_some(), "EDL endpoint listening (/edl/<namespace>/<name>)");
            if let Err(e) = crate::edl::serve(addr, lists, tls).await {
                tracing::error!(error = %e, %addr, "EDL server failed");
                std::process::exit(1);
            }
        });
    }
    let registry = Arc::new(Mutex::new(registry));
    let (ready_tx, ready_rx) = tokio::sync::watch::channel(false);
    let admin_state = admin::AdminState::new(registry, ready_rx);
    let admin_address = args.admin_address;
    tokio::spawn(async move {
        if let Err(e) = admin::serve(admin_address, admin_state).await {
            tracing::error!(error = %e, %admin_address, "admin server failed");
            std::process::exit(1);
        }
    });
    // Losing the lease ends the process on purpose: a replica that may not lead must not
    // write, and a fresh start is the simplest way to drop whatever it had in flight.
    let mut watch_lease = leading;
    let lease_watch = tokio::spawn(async move {
        let mut led = *watch_lease.borrow_and_update();
        if led {
            tracing::info!(%identity, "leading: reconciling");
        } else {
            tracing::info!(%identity, "standby: caches warm, writing nothing until the Lease is ours");
        }
        while watch_lease.changed().await.is_ok() {
            let now = *watch_lease.borrow();
            if led && !now {
                tracing::error!("lost the Lease; exiting so that only the new leader writes");
                std::process::exit(3);
            }
            if now && !led {
                tracing::info!(%identity, "took the Lease: reconciling every resource");
            }
            led = now;
        }
    });
    let scope = if args.namespaces.is_empty() {
        Scope::Cluster
    } else {
        Scope::Namespaces(args.namespaces)
    };
    // Every replica runs the watches; readiness follows their first complete list.
    controller::run_reporting_readiness(ctx, scope, ready_tx).await;
    // Shutdown (SIGTERM from the kubelet, or ctrl+c): the in-flight reconciles are done; give
    // the Lease back so a standby leads now, not when it expires.
    lease_watch.abort();
    let _ = lease_watch.await;
    if elected.leave(Duration::from_secs(5)).await {
        tracing::info!("controllers stopped; the Lease is released");
    } else {
        tracing::warn!(
            "controllers stopped; the Lease could not be released in 5 s and expires by itself"
        );
    }
    ExitCode::SUCCESS
}

/// Idle connections to the apiserver kept for reuse. kube's client keeps every one it ever
/// opened for 90 s: a burst of 1,000 reconciles (48 status writes and events at a time, the
/// finalizer patches beside them) left ~100 open, each with its TLS state and read buffer
/// (~30 KiB). The watches hold their own connections; a burst's writes reuse these as each
/// returns to the pool, and open a few more while it lasts.
const IDLE_CONNECTIONS: usize = 8;

/// Read buffer of an apiserver connection at most (hyper's default: ~400 KiB, grown by a
/// busy watch or a large list and kept while the connection lives). Bodies stream through
/// it; the largest response head, a list's, is a few hundred bytes.
const READ_BUFFER: usize = 16 << 10;

/// The client `fortisync run` talks to the apiserver with: kube's own stack (TLS, auth,
/// headers, its retry of 429/503, its request tracing) over a connection pool that keeps
/// fewer idle connections, with smaller buffers. Behind a proxy, kube's client unchanged.
async fn apiserver_client() -> Result<kube::Client, kube::Error> {
    use kube::client::ConfigExt;
    let config = kube::Config::infer()
        .await
        .map_err(kube::Error::InferConfig)?;
    if config.proxy_url.is_some() {
        return kube::Client::try_from(config);
    }
    let mut http = hyper_util::client::legacy::connect::HttpConnector::new();
    http.enforce_http(false);
    let https = config.rustls_https_connector_with_connector(http)?;
    let mut connector = hyper_timeout::TimeoutConnector::new(https);
    connector.set_connect_timeout(config.connect_timeout);
    connector.set_read_timeout(config.read_timeout);
    connector.set_write_timeout(config.write_timeout);
    connector.set_reset_reader_on_write(config.reset_reader_on_write);
    let pool: hyper_util::client::legacy::Client<_, kube::client::Body> =
        hyper_util::client::legacy::Builder::new(hyper_util::rt::TokioExecutor::new())
            .pool_max_idle_per_host(IDLE_CONNECTIONS)
            .http1_max_buf_size(READ_BUFFER)
            .build(connector);
    let retry = config
        .default_retry
        .then(|| tower::retry::RetryLayer::new(kube::client::retry::RetryPolicy::server_retry()));
    let service = tower::ServiceBuilder::new()
        .layer(config.base_uri_layer())
        .option_layer(retry)
        .option_layer(config.auth_layer()?)
        .layer(config.extra_headers_layer()?)
        .layer(tower_http::trace::TraceLayer::new_for_http())
        .map_err(tower::BoxError::from)
        .service(pool);
    Ok(kube::client::ClientBuilder::new(service, config.default_namespace).build())
}

/// The EDL endpoint's TLS settings from `--edl-tls-cert-file` / `--edl-tls-key-file`.
fn edl_tls(
    cert: Option<&std::path::Path>,
    key: Option<&std::path::Path>,
) -> Result<Option<rustls::ServerConfig>, String> {
    let (Some(cert), Some(key)) = (cert, key) else {
        return Ok(None);
    };
    let read = |p: &std::path::Path| {
        std::fs::read_to_string(p).map_err(|e| format!("{}: {e}", p.display()))
    };
    crate::edl::tls_config(&read(cert)?, &read(key)?)
        .map(Some)
        .map_err(|e| e.to_string())
}
