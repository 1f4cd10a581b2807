//! Leader election on a `coordination.k8s.io` Lease: every replica keeps its caches warm, only
//! the holder writes. If the election task dies the process exits on purpose, because a replica
//! that cannot tell whether it leads must not write.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use kube::Client;
use kube_lease_manager::LeaseManagerBuilder;
use tokio::sync::watch;

/// How a replica takes part in leader election.
#[derive(Debug, Clone)]
pub struct LeaderConfig {
    /// Namespace of the Lease.
    pub namespace: String,
    /// Name of the Lease.
    pub lease_name: String,
    /// This replica's identity (pod name).
    pub identity: String,
    /// How long a lease is valid without renewal.
    pub lease_duration: Duration,
}

/// This replica's part in the election, to leave it on shutdown.
pub struct Elected {
    leaving: Arc<AtomicBool>,
    done: tokio::sync::oneshot::Receiver<()>,
}

impl Elected {
    /// Leaves the election: once every receiver of [`elect`]'s channel is dropped, the
    /// manager releases the Lease (if held), so a standby takes over at once instead of
    /// after the Lease expires. Waits at most `limit`.
    pub async fn leave(self, limit: Duration) -> bool {
        self.leaving.store(true, Ordering::SeqCst);
        tokio::time::timeout(limit, self.done).await.is_ok()
    }
}

/// Starts the election; the receiver says whether this replica leads right now.
pub async fn elect(
    client: Client,
    config: LeaderConfig,
) -> kube_lease_manager::Result<(watch::Receiver<bool>, Elected)> {
    let manager = LeaseManagerBuilder::new(client, config.lease_name.clone())
        .with_namespace(config.namespace.clone())
        .with_identity(config.identity.clone())
        .with_duration(config.lease_duration.as_secs().max(2))
        .with_grace(2)
        .build()
        .await?;
    let (leading, task) = manager.watch().await;
    let leaving = Arc::new(AtomicBool::new(false));
    let (done_tx, done) = tokio::sync::oneshot::channel();
    let left = leaving.clone();
    tokio::spawn(async move {
        let outcome = task.await;
        if left.load(Ordering::SeqCst) {
            tracing::info!(lease = %config.lease_name, released = matches!(outcome, Ok(Ok(_))), "left the leader election");
            let _ = done_tx.send(());
            return;
        }
        tracing::error!(?outcome, lease = %config.lease_name, "leader election stopped; exiting so no replica writes without the lease");
        std::process::exit(3);
    });
    Ok((leading, Elected { leaving, done }))
}
