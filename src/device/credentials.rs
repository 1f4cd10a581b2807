//! Credential material for a device. `Debug` never shows a secret; the fingerprint identifies a
//! credential version for the Guard without storing it.

use std::fmt;

use sha2::{Digest, Sha256};

/// How fortisync authenticates to a device.
#[derive(Clone, PartialEq, Eq)]
pub enum Credentials {
    /// REST API token, sent only in the `Authorization: Bearer` header.
    Token(String),
    /// Admin user and password for a session login.
    Password {
        /// Admin user name.
        user: String,
        /// Admin password.
        password: String,
    },
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Token(_) => f.write_str("Token(<redacted>)"),
            Self::Password { user, .. } => {
                write!(f, "Password {{ user: {user:?}, password: <redacted> }}")
            }
        }
    }
}

impl Credentials {
    /// A short fingerprint that changes whenever the material changes; safe to log.
    pub fn fingerprint(&self) -> String {
        self.digest(None, 8)
    }

    /// A fingerprint under `salt` (a stored record that must not be matched across files).
    pub fn salted_fingerprint(&self, salt: &str) -> String {
        self.digest(Some(salt), 16)
    }

    /// The first `bytes` bytes of SHA-256 over the optional salt and the material, in hex.
    fn digest(&self, salt: Option<&str>, bytes: usize) -> String {
        let mut hash = Sha256::new();
        if let Some(salt) = salt {
            hash.update(salt.as_bytes());
            hash.update(b"\0");
        }
        match self {
            Self::Token(token) => {
                hash.update(b"token\0");
                hash.update(token.as_bytes());
            }
            Self::Password { user, password } => {
                hash.update(b"password\0");
                hash.update(user.as_bytes());
                hash.update(b"\0");
                hash.update(password.as_bytes());
            }
        }
        hash.finalize()
            .iter()
            .take(bytes)
            .map(|b| format!("{b:02x}"))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_the_secret() {
        let token = Credentials::Token("s3cr3t-token".into());
        let password = Credentials::Password {
            user: "api".into(),
            password: "hunter2".into(),
        };
        assert!(!format!("{token:?}").contains("s3cr3t"));
        assert!(!format!("{password:?}").contains("hunter2"));
    }

    #[test]
    fn fingerprint_changes_with_the_material_only() {
        let a = Credentials::Token("one".into());
        assert_eq!(
            a.fingerprint(),
            Credentials::Token("one".into()).fingerprint()
        );
        assert_ne!(
            a.fingerprint(),
            Credentials::Token("two".into()).fingerprint()
        );
        assert!(!a.fingerprint().contains("one"));
        assert_eq!(a.fingerprint().len(), 16);
    }
}
