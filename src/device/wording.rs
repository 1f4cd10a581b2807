//! How a refused credential is named, in the CLI and the controller alike. The device layer's texts for a refusal speak of an
//! API key (regenerate it, the API user's trusted hosts); a refused password login is a wrong
//! password, fixed elsewhere in the GUI, so every report says "password" for password
//! credentials and "API key" for key credentials.

use crate::api::common::ErrorReport;
use crate::device::{Credentials, DeviceError};

/// "API key" or "password", as messages name the credential.
pub fn noun(credentials: &Credentials) -> &'static str {
    match credentials {
        Credentials::Token(_) => "API key",
        Credentials::Password { .. } => "password",
    }
}

/// The cause of a refused password login.
pub const PASSWORD_CAUSE: &str = "the password (or the user name) is wrong or expired, or the controller's source IP is not in the administrator's trusted hosts";

/// The remedy for a refused password login.
pub const PASSWORD_REMEDY: &str = "check the administrator's user name and password (FortiManager: System Settings > Administrators; FortiGate: System > Administrators) and update the Secret, and add the controller's egress IP to the administrator's trusted hosts; fortisync stops using the password until the Secret changes, because each failure counts toward the device lockout";

/// Whether `e` says the device refused the credential itself.
pub fn is_refusal(e: &DeviceError) -> bool {
    matches!(
        e,
        DeviceError::Unauthorized { .. } | DeviceError::CredentialFrozen { .. }
    )
}

/// The cause of `e` for this kind of credential.
pub fn cause(e: &DeviceError, credentials: &Credentials) -> &'static str {
    match credentials {
        Credentials::Password { .. } if is_refusal(e) => PASSWORD_CAUSE,
        _ => e.cause(),
    }
}

/// The remedy of `e` for this kind of credential.
pub fn remedy(e: &DeviceError, credentials: &Credentials) -> &'static str {
    match credentials {
        Credentials::Password { .. } if is_refusal(e) => PASSWORD_REMEDY,
        _ => e.remedy(),
    }
}

/// `e.report()`, worded for this kind of credential.
pub fn report(e: &DeviceError, credentials: &Credentials) -> ErrorReport {
    ErrorReport {
        reason: e.condition_reason().to_string(),
        message: format!(
            "{e} ({}: {})",
            e.troubleshooting_row(),
            cause(e, credentials)
        ),
        remedy: remedy(e, credentials).to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::device::Context;

    #[test]
    fn a_refused_password_is_reported_as_a_password_and_a_refused_key_as_an_api_key() {
        let e = DeviceError::Unauthorized {
            ctx: Context::default(),
        };
        let password = Credentials::Password {
            user: "api".into(),
            password: "x".into(),
        };
        let by_password = report(&e, &password);
        assert!(by_password.message.contains("password"), "{by_password:?}");
        assert!(!by_password.message.contains("API key"), "{by_password:?}");
        assert!(by_password.remedy.contains("password"));
        assert!(
            !by_password.remedy.contains("key"),
            "{}",
            by_password.remedy
        );
        let by_key = report(&e, &Credentials::Token("x".into()));
        assert!(by_key.message.contains("API key"), "{by_key:?}");
        assert_eq!(by_key, e.report());
    }

    #[test]
    fn other_errors_keep_the_device_layers_words() {
        let e = DeviceError::Forbidden {
            ctx: Context::default(),
            status: 403,
            code: None,
        };
        let password = Credentials::Password {
            user: "api".into(),
            password: "x".into(),
        };
        assert_eq!(report(&e, &password), e.report());
    }
}
