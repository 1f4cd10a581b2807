//! The external resource object a connector declares, from its spec and where its feed is
//! served (pure): shared by the controller and by `fortisync plan/apply`.

use kube::ResourceExt;

use super::feed_url;
use super::plan::DesiredResource;
use crate::api::externalconnector::{ConnectorMode, ExternalConnector, ServerIdentityCheck};
use crate::model::Owner;

/// The `resource` of a Push-mode list when no feed URL is configured.
pub const PUSH_ONLY_URL: &str = "https://fortisync.invalid/push-only";

/// The URL to write in the object's `resource`: the feed URL (`spec.feed.url`, or the EDL
/// endpoint under `edl_base`), a reserved unreachable one for a push-only list, or None for a
/// Feed-mode list with nowhere to poll (the caller says which setting is missing).
pub fn resource_url(ec: &ExternalConnector, edl_base: Option<&str>) -> Option<String> {
    match (feed_url(ec, edl_base), ec.spec.mode) {
        (Some(url), _) => Some(url),
        // Whether a push-only resource needs `resource` is UNCONFIRMED (Terraform marks it
        // required): a name under the reserved `.invalid` domain can never reach anyone.
        (None, ConnectorMode::Push) => Some(PUSH_ONLY_URL.to_string()),
        (None, ConnectorMode::Feed) => None,
    }
}

/// The object as fortisync wants it. `credentials_changed`: the feed credentials differ from
/// those last written (the device never reads a password back).
pub fn desired_resource(
    ec: &ExternalConnector,
    url: &str,
    credentials: Option<(String, String)>,
    credentials_changed: bool,
) -> DesiredResource {
    let feed = ec.spec.feed.clone().unwrap_or_default();
    DesiredResource {
        name: ec.spec.resource_name.clone(),
        owner: Owner {
            namespace: ec.namespace().unwrap_or_default(),
            name: ec.name_any(),
        },
        mode: ec.spec.mode,
        url: url.to_string(),
        refresh_rate: feed.refresh_rate,
        credentials,
        // Plain http has no certificate to check.
        server_identity_check: if url.starts_with("http://") {
            ServerIdentityCheck::None
        } else {
            feed.server_identity_check
        },
        credentials_changed,
    }
}
