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
    /// Writing status or the finalizer failed.
    #[error("Kubernetes API request failed: {0}")]
    Kube(#[source] kube::Error),
    /// The spec holds something admission should have refused.
    #[error("invalid spec: {0}")]
    Spec(String),
    /// The target kind is not handled by this build yet.
    #[error("{0}")]
    Unsupported(String),
}

impl From<kube::runtime::finalizer::Error<ReconcileError>> for ReconcileError {
    fn from(e: kube::runtime::finalizer::Error<ReconcileError>) -> Self {
        use kube::runtime::finalizer::Error;
        match e {
            Error::ApplyFailed(e) | Error::CleanupFailed(e) => e,
            Error::AddFinalizer(e) | Error::RemoveFinalizer(e) => Self::Kube(e),
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
            Self::Kube(_) => "KubernetesApiError",
            Self::Spec(_) => "InvalidSpec",
            Self::Unsupported(_) => "Unsupported",
        }
    }

    /// What an admin can do.
    pub fn remedy(&self) -> String {
        match self {
            Self::Resolve(e) => e.remedy(),
            Self::Device(e) => e.remedy().to_string(),
            Self::Kube(_) => "check the controller's RBAC and the API server's health".to_string(),
            Self::Spec(_) => {
                "fix the resource; please report it so admission validation catches it".to_string()
            }
            Self::Unsupported(_) => {
                "change the resource to what this build supports (see the message)".to_string()
            }
        }
    }

    /// When to look again. A frozen credential or a lockout waits for its own trigger (a Secret
    /// change re-triggers at once through the watch; the breaker admits one probe when due).
    pub fn retry_after(&self) -> Duration {
        match self {
            // Another admin's ADOM lock is released by hand, often within a minute: look again
            // soon (each look is one bounded round of lock attempts) instead of in 5 minutes.
            Self::Device(e) if e.reason() == "WorkspaceLocked" => Duration::from_secs(15),
            Self::Device(e) => e.retry_after().unwrap_or(if e.is_transient() {
                Duration::from_secs(15)
            } else {
                Duration::from_secs(300)
            }),
            Self::Resolve(ResolveError::Kube(_)) | Self::Kube(_) => Duration::from_secs(10),
            Self::Resolve(_) => Duration::from_secs(120),
            Self::Spec(_) | Self::Unsupported(_) => Duration::from_secs(600),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_held_adom_lock_is_looked_at_again_soon() {
        let locked = ReconcileError::Device(DeviceError::WorkspaceLocked {
            ctx: crate::device::Context::default(),
            holder: "alice".into(),
        });
        assert_eq!(locked.retry_after(), Duration::from_secs(15));
    }
}
