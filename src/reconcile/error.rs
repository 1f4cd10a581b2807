//! Reconcile errors: each has a stable reason (conditions, events, metrics), a remedy, and a
//! requeue delay chosen so a failing resource never hammers the device.

use std::time::Duration;

use crate::device::DeviceError;

use super::connection::ResolveError;

/// Why a reconcile failed.
#[derive(Debug, thiserror::Error)]
pub enum ReconcileError {
    /// The target or its Secret could not be resolved.
    #[error(transparent)]
    Resolve(#[from] ResolveError),
    /// The device refused or failed.
    #[error(transparent)]
    Device(#[from] DeviceError),
    /// Writing status failed.
    #[error("Kubernetes API request failed: {0}")]
    Kube(#[source] kube::Error),
    /// Adding or removing the finalizer failed.
    #[error("could not update the finalizer: {0}")]
    Finalizer(#[source] kube::Error),
    /// The spec holds something admission should have refused.
    #[error("invalid spec: {0}")]
    Spec(String),
    /// A connection being deleted waits until no resource targets it, so their cleanup can
    /// still reach the device.
    #[error("deletion of {connection} waits for {} resource(s) that target it: {}", dependents.len(), dependents.join(", "))]
    DependentsRemain {
        /// `<namespace>/<name>` of the connection.
        connection: String,
        /// `<Kind>/<name>` of each dependent.
        dependents: Vec<String>,
    },
    /// An object the resource draws from (a ConfigMap, an AddressGroup, a feed Secret) is
    /// missing or lacks what it names.
    #[error("{0}")]
    Source(String),
    /// The resource cannot work with how this controller is set up (named reason and remedy).
    #[error("{message}")]
    Setup {
        /// Stable reason.
        reason: &'static str,
        /// What is wrong.
        message: String,
        /// What to do.
        remedy: String,
    },
    /// The target kind is not handled by this build yet.
    #[error("{0}")]
    Unsupported(String),
}

impl From<kube::runtime::finalizer::Error<ReconcileError>> for ReconcileError {
    fn from(e: kube::runtime::finalizer::Error<ReconcileError>) -> Self {
        use kube::runtime::finalizer::Error;
        match e {
            Error::ApplyFailed(e) | Error::CleanupFailed(e) => e,
            Error::AddFinalizer(e) | Error::RemoveFinalizer(e) => Self::Finalizer(e),
            Error::UnnamedObject => Self::Spec("the object has no name".into()),
            Error::InvalidFinalizer => Self::Spec("invalid finalizer name".into()),
        }
    }
}

impl ReconcileError {
    /// Stable reason.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::Resolve(e) => e.reason(),
            Self::Device(e) => e.reason(),
            Self::Kube(_) | Self::Finalizer(_) => "KubernetesApiError",
            Self::Spec(_) => "InvalidSpec",
            Self::DependentsRemain { .. } => "DependentsRemain",
            Self::Source(_) => "SourceNotFound",
            Self::Setup { reason, .. } => reason,
            Self::Unsupported(_) => "Unsupported",
        }
    }

    /// What an admin can do.
    pub fn remedy(&self) -> String {
        match self {
            Self::Resolve(e) => e.remedy(),
            Self::Device(e) => e.remedy().to_string(),
            Self::Kube(_) | Self::Finalizer(_) => {
                "check the controller's RBAC and the API server's health".to_string()
            }
            Self::Spec(_) => {
                "fix the resource; please report it so admission validation catches it".to_string()
            }
            Self::DependentsRemain { .. } => {
                "nothing: the connection goes once its dependents have cleaned up".to_string()
            }
            Self::Source(_) => {
                "create the object the message names, or fix the reference in the spec".to_string()
            }
            Self::Setup { remedy, .. } => remedy.clone(),
            Self::Unsupported(_) => {
                "change the resource to what this build supports (see the message)".to_string()
            }
        }
    }

    /// A conflict between a cached object and a newer one on the server (HTTP 409, or the
    /// finalizer's JSON-patch `test` failing with 422): the next pass reads the newer object,
    /// so it is retried at once and never reported as a failure.
    pub fn recovers_by_itself(&self) -> bool {
        match self {
            Self::Kube(kube::Error::Api(s)) => s.code == 409,
            Self::Finalizer(kube::Error::Api(s)) => s.code == 409 || s.code == 422,
            Self::DependentsRemain { .. } => true,
            // The DevicePolicies arrive within moments of the start; their listing
            // re-triggers every resource.
            Self::Setup { reason, .. } => *reason == "PoliciesUnknown",
            _ => false,
        }
    }

    /// A refused credential or a lockout: the connection's status must show it now.
    pub fn is_credential_or_lockout(&self) -> bool {
        matches!(
            self,
            Self::Device(
                DeviceError::LockedOut { .. }
                    | DeviceError::Unauthorized { .. }
                    | DeviceError::CredentialFrozen { .. }
                    | DeviceError::AuthBudgetExhausted { .. }
            )
        )
    }

    /// When to look again. A frozen credential or a lockout waits for its own trigger (a Secret
    /// change re-triggers at once through the watch; the breaker admits one probe when due).
    pub fn retry_after(&self) -> Duration {
        match self {
            // Another admin's ADOM lock is released by hand, often within a minute: look again
            // soon (each look is one bounded round of lock attempts) instead of in 5 minutes.
            Self::Device(DeviceError::WorkspaceLocked { .. }) => Duration::from_secs(15),
            Self::Device(e) => e.retry_after().unwrap_or(if e.is_transient() {
                Duration::from_secs(15)
            } else {
                Duration::from_secs(300)
            }),
            Self::Resolve(ResolveError::Kube(_)) | Self::Kube(_) | Self::Finalizer(_) => {
                Duration::from_secs(10)
            }
            Self::Resolve(_) => Duration::from_secs(120),
            Self::Spec(_) | Self::Unsupported(_) => Duration::from_secs(600),
            Self::DependentsRemain { .. } => Duration::from_secs(2),
            // Its creation re-triggers the resource through the watches; this is a backstop.
            Self::Source(_) => Duration::from_secs(60),
            // Policies arrive within moments of the start; a policy change re-triggers anyway.
            Self::Setup { reason, .. } if *reason == "PoliciesUnknown" => Duration::from_secs(2),
            Self::Setup { .. } => Duration::from_secs(300),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn api_error(code: u16) -> kube::Error {
        kube::Error::Api(
            kube::core::Status {
                code,
                message: "the server rejected our request".into(),
                ..Default::default()
            }
            .boxed(),
        )
    }

    #[test]
    fn a_stale_cache_meeting_a_newer_object_is_retried_without_a_warning() {
        // kube's finalizer helper guards its JSON patch with a `test` op: a pass that read a
        // cache from before its own finalizer write gets 422 and must simply look again.
        assert!(ReconcileError::Finalizer(api_error(422)).recovers_by_itself());
        assert!(ReconcileError::Finalizer(api_error(409)).recovers_by_itself());
        assert!(ReconcileError::Kube(api_error(409)).recovers_by_itself());
        assert!(!ReconcileError::Kube(api_error(422)).recovers_by_itself());
        assert!(!ReconcileError::Finalizer(api_error(403)).recovers_by_itself());
        assert!(!ReconcileError::Kube(api_error(403)).recovers_by_itself());
        let waiting = |reason| ReconcileError::Setup {
            reason,
            message: String::new(),
            remedy: String::new(),
        };
        assert!(waiting("PoliciesUnknown").recovers_by_itself());
        assert!(!waiting("NotAllowedByPolicy").recovers_by_itself());
    }

    #[test]
    fn a_held_adom_lock_is_looked_at_again_soon() {
        let locked = ReconcileError::Device(DeviceError::WorkspaceLocked {
            ctx: crate::device::Context::default(),
            holder: "alice".into(),
        });
        assert_eq!(locked.retry_after(), Duration::from_secs(15));
    }
}
