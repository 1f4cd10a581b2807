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

/// Replaces the status of `name` with `status`.
pub async fn replace<K, S>(api: &Api<K>, name: &str, status: &S) -> Result<(), kube::Error>
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + std::fmt::Debug,
    S: Serialize,
{
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
