//! One user on either device, for a pass: read its slots (F15 when it does not exist), work
//! out whether it may be the user fortisync signs in as (and, where fortisync knows who it
//! is, check its Super_User profile first, F14), and write one slot.

use super::fortimanager::FmgUser;
use super::plan::Own;
use super::slots::{Flavor, Slot, UserSlots};
use super::{fortigate, fortimanager};
use crate::api::trustedhost::{TrustedHost, UserKind};
use crate::device::{Credentials, DeviceError};
use crate::reconcile::error::ReconcileError;
use crate::reconcile::target::Target;

/// A user as read, with who fortisync may be there.
#[derive(Debug, Clone)]
pub struct Observed {
    /// The slots.
    pub slots: UserSlots,
    /// Whether it may be fortisync's own.
    pub own: Own,
}

fn user_not_found(th: &TrustedHost, table: &str) -> ReconcileError {
    ReconcileError::Setup {
        reason: "AdminUserNotFound",
        message: format!(
            "user {:?} does not exist in {table} on the device (F15); nothing was written",
            th.spec.user
        ),
        remedy: "set spec.user to the administrator's name exactly as the device shows it".into(),
    }
}

fn super_user_required(th: &TrustedHost, profile: &str) -> ReconcileError {
    ReconcileError::Setup {
        reason: "SuperUserRequired",
        message: format!(
            "the FortiManager refuses fortisync's admin ({profile}) writes to admin user {:?}'s trusted hosts (F14); nothing was written",
            th.spec.user
        ),
        remedy: "give the admin fortisync uses the Super_User profile (System Settings > Administrators), as FortiManager requires for trusted hosts; with an API key, then update the connection's Secret (fortisync stops using a key the device refused)".into(),
    }
}

/// Reads `user` of `kind` on `target`.
pub async fn observe(
    target: &Target,
    th: &TrustedHost,
    user: &str,
    kind: UserKind,
    credentials: &Credentials,
) -> Result<Observed, ReconcileError> {
    match target {
        Target::FortiManager { client, .. } => {
            if kind == UserKind::ApiUser {
                return Err(ReconcileError::Spec(
                    "spec.userKind ApiUser is for FortiGate targets".into(),
                ));
            }
            let u = match fortimanager::observe(client, user).await {
                Err(DeviceError::AdminUserNotFound { .. }) => {
                    return Err(user_not_found(th, "the FortiManager's admin users"));
                }
                other => other?,
            };
            // F14 needs fortisync's own profile when it signs in as another user.
            let mine = match credentials {
                Credentials::Password { user: me, .. } if me != user => {
                    Some(fortimanager::observe(client, me).await?)
                }
                _ => None,
            };
            fortimanager_user(th, user, u, credentials, mine.as_ref())
        }
        Target::FortiGate { client, .. } => {
            let flavor = match kind {
                UserKind::Admin => Flavor::FortiGateAdmin,
                UserKind::ApiUser => Flavor::FortiGateApiUser,
            };
            let Some(u) = fortigate::observe(client, flavor, user).await? else {
                let table = match kind {
                    UserKind::Admin => fortigate::ADMIN_TABLE,
                    UserKind::ApiUser => fortigate::API_USER_TABLE,
                };
                return Err(user_not_found(th, table));
            };
            Ok(fortigate_user(u.slots, user, kind, credentials))
        }
    }
}

/// The FortiManager admin user `user` read as `u` (alone or in a batch's listing), with who fortisync
/// may be there; `mine` is fortisync's own admin user, read when it signs in with a password
/// as another user (its profile decides F14 before any write).
pub fn fortimanager_user(
    th: &TrustedHost,
    user: &str,
    u: FmgUser,
    credentials: &Credentials,
    mine: Option<&FmgUser>,
) -> Result<Observed, ReconcileError> {
    let own = match credentials {
        Credentials::Password { user: me, .. } if me == user => Own::Yes,
        Credentials::Password { .. } => {
            let Some(mine) = mine else {
                return Err(ReconcileError::Spec(
                    "fortisync's own FortiManager admin user was not read".into(),
                ));
            };
            if mine.profile != "Super_User" {
                return Err(super_user_required(th, &mine.profile));
            }
            Own::No
        }
        Credentials::Token(_) if u.api => Own::IfTrustedNow,
        Credentials::Token(_) => Own::No,
    };
    if let (Own::Yes, Credentials::Password { .. }) = (own, credentials)
        && u.profile != "Super_User"
    {
        return Err(super_user_required(th, &u.profile));
    }
    Ok(Observed {
        slots: u.slots,
        own,
    })
}

/// A FortiGate user read as `slots` (alone or in a batch's listing), with who fortisync may
/// be there.
pub fn fortigate_user(
    slots: UserSlots,
    user: &str,
    kind: UserKind,
    credentials: &Credentials,
) -> Observed {
    // A session login is a `system/admin`; a token is an API user's.
    let own = match (credentials, kind) {
        (Credentials::Password { user: me, .. }, UserKind::Admin) if me == user => Own::Yes,
        (Credentials::Token(_), UserKind::ApiUser) => Own::IfTrustedNow,
        _ => Own::No,
    };
    Observed { slots, own }
}

/// Writes slot `n` of `user` (read as `slots`); a FortiManager refusal is F14.
pub async fn write(
    target: &Target,
    th: &TrustedHost,
    user: &str,
    slots: &UserSlots,
    n: u32,
    value: Slot,
) -> Result<(), ReconcileError> {
    let result = match target {
        Target::FortiManager { client, .. } => fortimanager::write(client, user, n, value).await,
        Target::FortiGate { client, .. } => fortigate::write(client, user, slots, n, value).await,
    };
    match (result, target) {
        // The read with the same credential just worked, so a refusal of the write is about
        // rights (F14). The device layer stops using a key the device refused (-11) until its
        // Secret changes, so the remedy says to touch the Secret after fixing the profile.
        (
            Err(DeviceError::Forbidden { .. } | DeviceError::Unauthorized { .. }),
            Target::FortiManager { .. },
        ) => Err(super_user_required(th, "its profile")),
        (other, _) => other.map_err(ReconcileError::from),
    }
}
