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
    /// Serve only this namespace (default: every namespace).
    #[arg(long)]
    pub namespace: Option<String>,
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
    /// This replica's identity in the Lease (default: the pod name or host name).
    #[arg(long, env = "POD_NAME")]
    pub identity: Option<String>,
}

/// Runs the controller until SIGTERM / Ctrl-C.
pub async fn run(args: RunArgs) -> ExitCode {
    logging::init(args.log_format);
    let client = match kube::Client::try_default().await {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "no Kubernetes configuration (in-cluster or KUBECONFIG)");
            return ExitCode::FAILURE;
        }
    };
    let mut registry = Registry::default();
    let ctx = Arc::new(Context::new(client.clone(), &mut registry));
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

    let identity = args.identity.unwrap_or_else(|| {
        std::env::var("HOSTNAME").unwrap_or_else(|_| format!("fortisync-{}", std::process::id()))
    });
    let lease = leader::LeaderConfig {
        namespace: args
            .lease_namespace
            .unwrap_or_else(|| "default".to_string()),
        lease_name: args.lease_name,
        identity: identity.clone(),
        lease_duration: Duration::from_secs(args.lease_duration_seconds),
    };
    let mut leading = match leader::elect(client.clone(), lease).await {
        Ok(rx) => rx,
        Err(e) => {
            tracing::error!(error = %e, "leader election could not start");
            return ExitCode::FAILURE;
        }
    };
    // A standby replica is ready to take over once it takes part in the election; readiness
    // must not wait for the Lease, or a rolling update would wait forever on the old leader.
    let _ = ready_tx.send(true);
    tracing::info!(%identity, "waiting for the Lease; only the holder writes to devices");
    while !*leading.borrow_and_update() {
        if leading.changed().await.is_err() {
            return ExitCode::FAILURE;
        }
    }
    tracing::info!(%identity, "leading: starting controllers");
    // Losing the lease ends the process on purpose: a replica that may not lead must not write.
    tokio::spawn(async move {
        while leading.changed().await.is_ok() {
            if !*leading.borrow() {
                tracing::error!("lost the Lease; exiting so that only the new leader writes");
                std::process::exit(3);
            }
        }
    });
    let scope = args
        .namespace
        .map(Scope::Namespace)
        .unwrap_or(Scope::Cluster);
    controller::run(ctx, scope).await;
    tracing::info!("controllers stopped");
    ExitCode::SUCCESS
}
