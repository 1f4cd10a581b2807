//! HTTP basic credentials of a list, kept and compared as SHA-256 digests in constant time.
//!
//! Comparing digests (with `subtle`, already in the tree) makes the comparison independent of
//! where the presented secret first differs and of its length; `ct_eq` on raw slices of
//! different lengths would return early. The plaintext password is not kept after `set`.
//! A plain hash (not a password hash) suffices: the secrets are machine-generated tokens read
//! from a Kubernetes Secret, and the digests never leave the process.

use base64::Engine;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// The username and password a FortiGate sends for one list.
#[derive(Clone, PartialEq, Eq)]
pub struct BasicCredentials {
    /// `username` of the FortiGate external resource.
    pub username: String,
    /// `password` of the FortiGate external resource.
    pub password: String,
}

impl std::fmt::Debug for BasicCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print the password, not even in a test failure.
        f.debug_struct("BasicCredentials")
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .finish()
    }
}

/// Digests of a list's credentials.
#[derive(Clone)]
pub(crate) struct CredentialDigest {
    user: [u8; 32],
    pass: [u8; 32],
}

impl CredentialDigest {
    pub(crate) fn of(credentials: &BasicCredentials) -> Self {
        Self::from_parts(
            credentials.username.as_bytes(),
            credentials.password.as_bytes(),
        )
    }

    fn from_parts(user: &[u8], pass: &[u8]) -> Self {
        Self {
            user: Sha256::digest(user).into(),
            pass: Sha256::digest(pass).into(),
        }
    }

    /// What an unknown list is compared against, so that it costs the same work and fails the
    /// same way as a known list with wrong credentials. No input hashes to all zeros.
    pub(crate) const NEVER: Self = Self {
        user: [0; 32],
        pass: [0; 32],
    };

    /// Whether the `Authorization` header value proves these credentials.
    pub(crate) fn admits(&self, authorization: Option<&[u8]>) -> bool {
        let presented = parse_basic(authorization.unwrap_or_default());
        let presented = match &presented {
            Some((user, pass)) => Self::from_parts(user, pass),
            // Compare anyway: a missing or malformed header takes as long as a wrong one.
            None => Self::NEVER,
        };
        // `&` on Choice, not `&&`: both halves are always compared.
        let same = self.user.ct_eq(&presented.user) & self.pass.ct_eq(&presented.pass);
        bool::from(same) && presented_is_real(&presented)
    }
}

fn presented_is_real(d: &CredentialDigest) -> bool {
    // NEVER must not admit a request that presented nothing.
    !bool::from(d.user.ct_eq(&[0; 32]))
}

/// `Basic base64(user:pass)` → (user, pass). The password may contain `:`.
fn parse_basic(value: &[u8]) -> Option<(Vec<u8>, Vec<u8>)> {
    // Headers are already capped by the listener; this bounds the decode of one value again.
    if value.len() > 4096 {
        return None;
    }
    let value = std::str::from_utf8(value).ok()?;
    let (scheme, token) = value.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(token.trim())
        .ok()?;
    let colon = decoded.iter().position(|b| *b == b':')?;
    Some((decoded[..colon].to_vec(), decoded[colon + 1..].to_vec()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(user: &str, pass: &str) -> Vec<u8> {
        let token = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pass}"));
        format!("Basic {token}").into_bytes()
    }

    fn digest() -> CredentialDigest {
        CredentialDigest::of(&BasicCredentials {
            username: "fgt".into(),
            password: "s3:cret".into(),
        })
    }

    #[test]
    fn right_credentials_are_admitted_and_a_colon_in_the_password_is_kept() {
        assert!(digest().admits(Some(&header("fgt", "s3:cret"))));
    }

    #[test]
    fn wrong_missing_or_malformed_credentials_are_refused() {
        let d = digest();
        assert!(!d.admits(Some(&header("fgt", "s3:cre"))));
        assert!(!d.admits(Some(&header("fgT", "s3:cret"))));
        assert!(!d.admits(None));
        assert!(!d.admits(Some(b"Bearer abc")));
        assert!(!d.admits(Some(b"Basic !!!")));
    }

    #[test]
    fn an_unknown_list_admits_nothing() {
        assert!(!CredentialDigest::NEVER.admits(None));
        assert!(!CredentialDigest::NEVER.admits(Some(&header("", ""))));
    }

    #[test]
    fn debug_never_shows_the_password() {
        let c = BasicCredentials {
            username: "fgt".into(),
            password: "hunter2".into(),
        };
        assert!(!format!("{c:?}").contains("hunter2"));
    }
}
