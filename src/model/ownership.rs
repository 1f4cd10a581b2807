//! Ownership of device objects: the marker fortisync writes into a comment, and the limits of
//! names and comments it must fit.

use serde::Serialize;
use sha2::{Digest, Sha256};

/// FortiOS and FortiManager limit object names to 79 characters.
pub const NAME_LIMIT: usize = 79;
/// FortiOS limits comments to 255 characters.
pub const COMMENT_LIMIT: usize = 255;

/// The resource that owns device objects, written into their comment.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct Owner {
    /// Namespace of the resource.
    pub namespace: String,
    /// Name of the resource.
    pub name: String,
}

const MARKER: &str = "managed-by fortisync ";

impl Owner {
    /// The ownership marker: `managed-by fortisync <ns>/<name>`, or a hash form when that would
    /// leave no room in a 255-character comment.
    pub fn marker(&self) -> String {
        let id = format!("{}/{}", self.namespace, self.name);
        if MARKER.len() + id.len() <= 128 {
            format!("{MARKER}{id}")
        } else {
            format!("{MARKER}~{}", hex8(&id))
        }
    }

    /// The full comment: marker, then ` | <user comment>`, cut to the device's limit.
    pub fn comment(&self, user: Option<&str>) -> String {
        let mut text = self.marker();
        if let Some(user) = user.filter(|u| !u.is_empty()) {
            text.push_str(" | ");
            text.push_str(user);
        }
        text.chars().take(COMMENT_LIMIT).collect()
    }

    /// Whether a device comment carries this owner's marker.
    pub fn owns(&self, comment: &str) -> bool {
        let marker = self.marker();
        comment == marker || comment.starts_with(&format!("{marker} |"))
    }
}

/// Whether a comment carries any fortisync marker (an object another resource owns).
pub fn has_marker(comment: &str) -> bool {
    comment.starts_with(MARKER)
}

/// The resource a fortisync marker names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Holder {
    /// `managed-by fortisync <namespace>/<name>`.
    Resource {
        /// Its namespace.
        namespace: String,
        /// Its name.
        name: String,
    },
    /// The hash form (`managed-by fortisync ~1a2b3c4d`): who it is cannot be read back.
    Hashed,
}

impl Holder {
    /// The holder named by `comment`'s marker; None when it has no fortisync marker.
    pub fn of(comment: &str) -> Option<Self> {
        let rest = comment.strip_prefix(MARKER)?;
        let id = rest.split(" | ").next().unwrap_or_default();
        if id.starts_with('~') {
            return Some(Self::Hashed);
        }
        match id.split_once('/') {
            Some((namespace, name)) => Some(Self::Resource {
                namespace: namespace.to_string(),
                name: name.to_string(),
            }),
            // A marker fortisync did not write in this form: someone's, but not readable.
            None => Some(Self::Hashed),
        }
    }
}

/// The first 8 hex digits of the SHA-256 of `text`: a short, stable stand-in for a long id.
pub(crate) fn hex8(text: &str) -> String {
    Sha256::digest(text.as_bytes())
        .iter()
        .take(4)
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ownership_marker_and_comment() {
        let owner = Owner {
            namespace: "team-a".into(),
            name: "admins".into(),
        };
        assert_eq!(owner.comment(None), "managed-by fortisync team-a/admins");
        assert_eq!(
            owner.comment(Some("alice laptop")),
            "managed-by fortisync team-a/admins | alice laptop"
        );
        assert!(owner.owns(&owner.comment(Some("x"))));
        assert!(!owner.owns("managed-by fortisync team-a/admins-2"));
        assert!(!owner.owns("added by hand"));
        assert!(has_marker("managed-by fortisync other/x"));
        assert_eq!(
            Holder::of("managed-by fortisync team-b/web | hi"),
            Some(Holder::Resource {
                namespace: "team-b".into(),
                name: "web".into()
            })
        );
        assert_eq!(Holder::of("added by hand"), None);
        let long = Owner {
            namespace: "n".repeat(63),
            name: "m".repeat(200),
        };
        assert!(long.marker().len() < 40);
        assert_eq!(Holder::of(&long.marker()), Some(Holder::Hashed));
        assert!(long.owns(&long.comment(Some(&"c".repeat(300)))));
        assert_eq!(
            long.comment(Some(&"c".repeat(300))).chars().count(),
            COMMENT_LIMIT
        );
    }
}
