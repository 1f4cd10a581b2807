//! Writing a resource's status. The controller is the only writer of `status`, so it applies
//! the whole status server-side as its one owner: a field the new status leaves out (a cleared
//! `lastError`, a passed `nextExpiry`, an empty `foreignMembers`) is removed, where a merge
//! patch would keep the stale value forever.

use kube::api::{Patch, PatchParams};
use kube::{Api, Resource};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::json;

/// Field manager of every status fortisync writes.
pub const FIELD_MANAGER: &str = "fortisync";

/// Status writes and events in flight at most, per process: a burst of passes (a GitOps
/// sync of 1,000 resources, a restart) reaches the apiserver as a steady stream instead of
/// 1,000 concurrent writes, well inside its default 200 mutating requests in flight.
pub const WRITES: usize = 48;

static WRITE_TURNS: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(WRITES);

/// A turn to write to the apiserver (status or event), held while the write is in flight.
pub async fn apiserver_turn() -> tokio::sync::SemaphorePermit<'static> {
    WRITE_TURNS
        .acquire()
        .await
        .expect("the write semaphore is never closed")
}

/// Replaces the status of `name` with `status`.
pub async fn replace<K, S>(api: &Api<K>, name: &str, status: &S) -> Result<(), kube::Error>
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + std::fmt::Debug,
    S: Serialize,
{
    let _turn = apiserver_turn().await;
    let body = json!({
        "apiVersion": K::api_version(&()),
        "kind": K::kind(&()),
        "status": status,
    });
    api.patch_status(
        name,
        &PatchParams::apply(FIELD_MANAGER).force(),
        &Patch::Apply(body),
    )
    .await
    .map(|_| ())
}
