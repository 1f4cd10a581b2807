//! The claims of a batch's resyncs, read once per namespace by the batch (`batch`) instead of
//! once per pass: a converged device's tick is one apiserver list, not one per TrustedHost,
//! and its passes reach the device's queue at once (a list of every TrustedHost of the
//! namespace per pass spread a tick's hundred passes over seconds, so they queued in several
//! batches, each reading the device again).
//!
//! The list is read after every pass of the batch queued, so it is never older than one each
//! pass would have read itself when it began. Only resyncs defer theirs (they wait for the
//! tick's others anyway); a change reads its claims beside its target, as before, so it is
//! not kept an apiserver round trip longer.

use std::collections::BTreeMap;

use kube::Api;

use super::claims::first_claim;
use crate::api::trustedhost::TrustedHost;
use crate::reconcile::error::ReconcileError;

/// Lists the TrustedHosts of `api`'s namespace.
pub async fn list(api: &Api<TrustedHost>) -> Result<Vec<TrustedHost>, ReconcileError> {
    api.list(&Default::default())
        .await
        .map(|l| l.items)
        .map_err(ReconcileError::Kube)
}

/// For each of `wanted` (a resource and the namespace's Api, or None when its claims are read
/// already), who holds its claim first: one list per namespace, each read concurrently. A
/// namespace whose list fails is read again for each of its resources, so each has its own
/// error.
pub async fn claimed_by_each(
    wanted: &[(&TrustedHost, Option<&Api<TrustedHost>>)],
) -> Vec<Option<Result<Option<String>, ReconcileError>>> {
    let mut namespaces: BTreeMap<String, &Api<TrustedHost>> = BTreeMap::new();
    for (th, api) in wanted {
        if let Some(api) = api {
            namespaces.insert(namespace(th), api);
        }
    }
    let lists: BTreeMap<String, Result<Vec<TrustedHost>, ReconcileError>> =
        futures::future::join_all(namespaces.into_iter().map(|(ns, api)| async move {
            let listed = list(api).await;
            (ns, listed)
        }))
        .await
        .into_iter()
        .collect();
    futures::future::join_all(wanted.iter().map(|(th, api)| {
        let listed = lists.get(&namespace(th));
        async move {
            let api = (*api)?;
            Some(match listed {
                Some(Ok(all)) => Ok(first_claim(th, all)),
                _ => list(api).await.map(|all| first_claim(th, &all)),
            })
        }
    }))
    .await
}

fn namespace(th: &TrustedHost) -> String {
    kube::ResourceExt::namespace(th).unwrap_or_default()
}
