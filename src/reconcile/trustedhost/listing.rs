//! What a batch (`batch`) reads of a device's users, once for all its passes: a FortiGate's
//! `system/admin` and `system/api-user` tables, a FortiManager's admin users; and each pass's
//! user as they show it, read as `user::observe` reads one alone (None where they do not
//! show it plainly: that pass is read alone).

use std::collections::HashMap;

use serde_json::Value;

use super::fortigate::{self, read_user};
use super::fortimanager;
use super::slots::Flavor;
use super::user::{Observed, fortigate_user, fortimanager_user};
use crate::api::trustedhost::{TrustedHost, UserKind};
use crate::device::fortios::FortiOsClient;
use crate::device::{Credentials, DeviceError};
use crate::reconcile::error::ReconcileError;
use crate::reconcile::target::Target;

/// A table's users by name, listed once (None: no request of the batch reads it).
type Listing = Option<Result<HashMap<String, Value>, DeviceError>>;

/// `rows` by their key field.
fn by_key(rows: Vec<Value>, key: &str) -> HashMap<String, Value> {
    rows.into_iter()
        .filter_map(|row| Some((row[key].as_str()?.to_string(), row)))
        .collect()
}

async fn listing(client: &FortiOsClient, flavor: Flavor, wanted: bool) -> Listing {
    if !wanted {
        return None;
    }
    // Whole, without `format`: each entry as a GET of that user returns it, so it reads the
    // same (administrator tables are small; a `name==` filter's case rules are not on the
    // facts pages).
    let rows = client.list_where(fortigate::table(flavor), None, &[]).await;
    Some(rows.map(|rows| by_key(rows, "name")))
}

fn flavor(kind: UserKind) -> Flavor {
    match kind {
        UserKind::Admin => Flavor::FortiGateAdmin,
        UserKind::ApiUser => Flavor::FortiGateApiUser,
    }
}

/// The users' tables a batch read, once each.
pub(super) enum Listings {
    FortiGate { admins: Listing, api_users: Listing },
    FortiManager { users: Listing },
}

impl Listings {
    /// The tables the batch's listed passes (`kinds`, one per listed pass) read.
    pub(super) async fn read(target: &Target, kinds: &[UserKind]) -> Self {
        let wants = |kind| kinds.contains(&kind);
        match target {
            Target::FortiGate { client, .. } => {
                let (admins, api_users) = futures::join!(
                    listing(client, Flavor::FortiGateAdmin, wants(UserKind::Admin)),
                    listing(client, Flavor::FortiGateApiUser, wants(UserKind::ApiUser)),
                );
                Self::FortiGate { admins, api_users }
            }
            Target::FortiManager { client, .. } => {
                let users = match kinds.is_empty() {
                    true => None,
                    false => Some(
                        client
                            .admin_users()
                            .await
                            .map(|rows| by_key(rows, "userid")),
                    ),
                };
                Self::FortiManager { users }
            }
        }
    }

    /// `th`'s user as these listings show it, with who fortisync may be there: None when they
    /// do not show it plainly (not in them, a row that does not parse), so it is read alone.
    pub(super) fn observed(
        &self,
        th: &TrustedHost,
        credentials: &Credentials,
    ) -> Option<Result<Observed, ReconcileError>> {
        let (user, kind) = (th.spec.user.as_str(), th.spec.user_kind);
        match self {
            Self::FortiGate { admins, api_users } => {
                let table = match kind {
                    UserKind::Admin => admins,
                    UserKind::ApiUser => api_users,
                };
                let rows = match table.as_ref()? {
                    Ok(rows) => rows,
                    Err(e) => return Some(Err(e.clone().into())),
                };
                let slots = read_user(rows.get(user)?, flavor(kind))?;
                Some(Ok(fortigate_user(slots, user, kind, credentials)))
            }
            Self::FortiManager { users } => {
                // An API user is a FortiGate's: the lone path refuses it.
                if kind == UserKind::ApiUser {
                    return None;
                }
                let rows = match users.as_ref()? {
                    Ok(rows) => rows,
                    Err(e) => return Some(Err(e.clone().into())),
                };
                let listed = |name: &str| {
                    rows.get(name)
                        .filter(|row| fmg_row_complete(row))
                        .and_then(fortimanager::read_user)
                };
                let u = listed(user)?;
                let mine = match credentials {
                    Credentials::Password { user: me, .. } if me != user => Some(listed(me)?),
                    _ => None,
                };
                Some(fortimanager_user(th, user, u, credentials, mine.as_ref()))
            }
        }
    }
}

/// Whether a row of the FortiManager's admin-user table names every slot field. Whether the
/// table form carries every `trusthostN` / `ipv6_trusthostN` as a GET of one user does is
/// UNCONFIRMED (fortimanager-jsonrpc.md §4.5: the format's source is a table GET, of a
/// default user). A field left out would be read as its default, unused, and a slot holding
/// someone else's value could then be overwritten: a row lacking one is read alone instead.
fn fmg_row_complete(row: &Value) -> bool {
    (1..=10).all(|n| {
        row.get(format!("trusthost{n}")).is_some()
            && row.get(format!("ipv6_trusthost{n}")).is_some()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_fortimanager_row_lacking_a_slot_field_is_not_read_from_the_listing() {
        let mut row = json!({"userid": "alice"});
        for n in 1..=10 {
            row[format!("trusthost{n}")] = json!(["255.255.255.255", "255.255.255.255"]);
            row[format!("ipv6_trusthost{n}")] = json!(super::super::slots::FMG_V6_UNUSED);
        }
        assert!(fmg_row_complete(&row));
        for field in ["trusthost7", "ipv6_trusthost10"] {
            let mut short = row.clone();
            short.as_object_mut().expect("object").remove(field);
            assert!(!fmg_row_complete(&short), "{field}");
        }
    }
}
