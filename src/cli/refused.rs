//! Keys a device refused, remembered across CLI runs. The Guard freezes a refused credential for
//! one process only; each `plan`, `apply` or `doctor` is a new process, so without this file
//! two wrong-key `plan` runs and a `doctor` were three failed logins, enough to lock the source
//! address out (troubleshooting F3, F6).
//!
//! The file (mode 0600, in a 0700 directory) records, per device URL, source address and
//! credential, "refused at <time>". The credential is only a salted SHA-256 fingerprint: the
//! salt is random per file, so the file never holds the key nor a hash that could be matched
//! against another machine's or a list of guessed keys. A changed key is a new fingerprint and
//! is tried; `--retry-refused-key` sends a remembered one once more.

use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::doctor::render::safe_url;
use crate::device::wording::noun;
use crate::device::{Credentials, EndpointConfig};

/// Where the memory lives and whether to ignore it once (shared by plan, apply and doctor).
#[derive(Debug, Clone, Default, clap::Args)]
pub struct RefusedArgs {
    /// File remembering keys the devices refused, so that no later run sends them again
    /// (default: $XDG_STATE_HOME/fortisync/refused-keys.json, else
    /// ~/.local/state/fortisync/refused-keys.json).
    #[arg(long, env = "FORTISYNC_STATE_FILE", value_name = "PATH")]
    pub state_file: Option<PathBuf>,
    /// Send a key that a device refused before once more (after fixing trusted hosts, say).
    /// Each refusal counts toward the device's lockout.
    #[arg(long)]
    pub retry_refused_key: bool,
}

/// One remembered refusal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Refusal {
    /// Device URL as configured.
    pub url: String,
    /// Source address configured (`default` when the route picks it).
    pub source: String,
    /// Salted fingerprint of the credential (never the credential).
    pub fingerprint: String,
    /// The connection's name when it was refused.
    pub device: String,
    /// RFC 3339, to the second.
    pub refused_at: String,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct StateFile {
    /// Random per file; hex.
    salt: String,
    #[serde(default)]
    refused: Vec<Refusal>,
}

/// The refused-key memory of this machine.
#[derive(Debug, Clone)]
pub struct RefusedKeys {
    path: Option<PathBuf>,
    retry: bool,
}

/// The default file: `$XDG_STATE_HOME/fortisync/refused-keys.json`, else
/// `$HOME/.local/state/fortisync/refused-keys.json`; none without either variable.
pub fn default_path() -> Option<PathBuf> {
    let non_empty = |v: &str| {
        std::env::var_os(v)
            .filter(|s| !s.is_empty())
            .map(PathBuf::from)
    };
    non_empty("XDG_STATE_HOME")
        .or_else(|| non_empty("HOME").map(|h| h.join(".local").join("state")))
        .map(|d| d.join("fortisync").join("refused-keys.json"))
}

fn fingerprint(salt: &str, credentials: &Credentials) -> String {
    credentials.salted_fingerprint(salt)
}

impl Refusal {
    /// What a run says instead of sending the credential again.
    pub fn message(&self, noun: &str) -> String {
        format!(
            "this {noun} was refused by {} ({}) at {}; fortisync will not try it again until it changes — `--retry-refused-key` to try once anyway",
            self.device, self.url, self.refused_at
        )
    }
}

impl RefusedKeys {
    /// The memory at `args.state_file`, or the default file.
    pub fn new(args: &RefusedArgs) -> Self {
        Self {
            path: args.state_file.clone().or_else(default_path),
            retry: args.retry_refused_key,
        }
    }

    /// No memory at all (library use, the demo).
    pub fn none() -> Self {
        Self {
            path: None,
            retry: false,
        }
    }

    /// The file in use, if any.
    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    fn read(&self) -> Option<StateFile> {
        let text = std::fs::read_to_string(self.path.as_ref()?).ok()?;
        serde_json::from_str(&text).ok()
    }

    /// The refusal that forbids sending `endpoint`'s credential, unless `--retry-refused-key`.
    pub fn refused(&self, endpoint: &EndpointConfig) -> Option<Refusal> {
        if self.retry {
            return None;
        }
        let state = self.read()?;
        let id = Identity::of(&state.salt, endpoint);
        state.refused.into_iter().find(|r| id.is(r))
    }

    /// Remembers that the device refused `endpoint`'s credential now. A file that cannot be
    /// written is reported on stderr; the run itself goes on.
    pub fn remember(&self, endpoint: &EndpointConfig) {
        let now = jiff::Timestamp::now();
        let refused_at = now.round(jiff::Unit::Second).unwrap_or(now);
        self.update(endpoint, |state, id| {
            state.refused.retain(|r| !id.is(r));
            state.refused.push(Refusal {
                url: id.url,
                source: id.source,
                fingerprint: id.fingerprint,
                device: endpoint.name.clone(),
                refused_at: refused_at.to_string(),
            });
        });
    }

    /// Forgets a refusal of `endpoint`'s credential (the device accepted it after all).
    pub fn forget(&self, endpoint: &EndpointConfig) {
        let Some(state) = self.read() else { return };
        let id = Identity::of(&state.salt, endpoint);
        if state.refused.iter().any(|r| id.is(r)) {
            self.update(endpoint, |state, id| state.refused.retain(|r| !id.is(r)));
        }
    }

    fn update(&self, endpoint: &EndpointConfig, change: impl FnOnce(&mut StateFile, Identity)) {
        let Some(path) = &self.path else { return };
        let mut state = self.read().unwrap_or_default();
        if state.salt.is_empty() {
            state.salt = (0..16)
                .map(|_| format!("{:02x}", rand::random::<u8>()))
                .collect();
        }
        let id = Identity::of(&state.salt, endpoint);
        change(&mut state, id);
        if let Err(e) = write_private(path, &state) {
            eprintln!(
                "fortisync: cannot remember the refused {} in {}: {e}; a later run may send it again",
                noun(&endpoint.credentials),
                path.display()
            );
        }
    }
}

/// What a refusal is keyed by: device URL (never its user info or query, where a key must not
/// reach the file), configured source address, salted fingerprint of the credential.
struct Identity {
    url: String,
    source: String,
    fingerprint: String,
}

impl Identity {
    fn of(salt: &str, endpoint: &EndpointConfig) -> Self {
        Self {
            url: safe_url(&endpoint.url),
            source: endpoint
                .transport
                .source_address
                .map_or_else(|| "default".to_string(), |ip| ip.to_string()),
            fingerprint: fingerprint(salt, &endpoint.credentials),
        }
    }

    fn is(&self, r: &Refusal) -> bool {
        r.url == self.url && r.source == self.source && r.fingerprint == self.fingerprint
    }
}

/// Writes the file as 0600 (directory 0700), replacing it atomically so a concurrent reader
/// never sees half a file.
fn write_private(path: &Path, state: &StateFile) -> std::io::Result<()> {
    use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)?;
    }
    let text = serde_json::to_string_pretty(state).map_err(std::io::Error::other)?;
    let tmp = path.with_extension(format!("tmp.{}", std::process::id()));
    let _ = std::fs::remove_file(&tmp);
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)?;
    file.write_all(text.as_bytes())?;
    file.sync_all()?;
    std::fs::rename(&tmp, path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::device::{DeviceKind, LockoutPolicy, TransportConfig};

    fn endpoint(token: &str) -> EndpointConfig {
        EndpointConfig {
            kind: DeviceKind::FortiGate,
            name: "default/fw".into(),
            url: "https://fw.example.com:8443".into(),
            scope: "root".into(),
            credentials: Credentials::Token(token.into()),
            transport: TransportConfig::default(),
            max_concurrent: 1,
            lockout: LockoutPolicy::default(),
            lock_retries: 0,
        }
    }

    fn store(name: &str, retry: bool) -> (RefusedKeys, PathBuf) {
        let dir =
            std::env::temp_dir().join(format!("fortisync-refused-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let path = dir.join("state").join("refused-keys.json");
        let keys = RefusedKeys::new(&RefusedArgs {
            state_file: Some(path.clone()),
            retry_refused_key: retry,
        });
        (keys, path)
    }

    #[test]
    fn a_refused_key_is_remembered_a_changed_key_is_not_and_the_file_is_private() {
        use std::os::unix::fs::PermissionsExt;
        let (keys, path) = store("remember", false);
        assert_eq!(keys.refused(&endpoint("wrong-key")), None);
        keys.remember(&endpoint("wrong-key"));
        let r = keys.refused(&endpoint("wrong-key")).expect("remembered");
        assert_eq!(r.device, "default/fw");
        assert!(
            r.message("API key").starts_with(
                "this API key was refused by default/fw (https://fw.example.com:8443) at "
            ),
            "{}",
            r.message("API key")
        );
        assert_eq!(
            keys.refused(&endpoint("new-key")),
            None,
            "a changed key is tried"
        );
        let mut elsewhere = endpoint("wrong-key");
        elsewhere.transport.source_address = Some([192, 0, 2, 1].into());
        assert_eq!(
            keys.refused(&elsewhere),
            None,
            "keyed by source address too"
        );
        let text = std::fs::read_to_string(&path).expect("file");
        assert!(!text.contains("wrong-key"), "never the key itself: {text}");
        let mode = std::fs::metadata(&path).expect("meta").permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        keys.forget(&endpoint("wrong-key"));
        assert_eq!(
            keys.refused(&endpoint("wrong-key")),
            None,
            "forgotten once accepted"
        );
    }

    #[test]
    fn retry_refused_key_ignores_the_memory() {
        let (keys, path) = store("retry", false);
        keys.remember(&endpoint("wrong-key"));
        let retry = RefusedKeys::new(&RefusedArgs {
            state_file: Some(path),
            retry_refused_key: true,
        });
        assert_eq!(retry.refused(&endpoint("wrong-key")), None);
        assert!(keys.refused(&endpoint("wrong-key")).is_some());
    }

    #[test]
    fn the_fingerprint_is_salted_per_file() {
        let token = Credentials::Token("k".into());
        assert_ne!(fingerprint("aa", &token), fingerprint("bb", &token));
        assert_eq!(fingerprint("aa", &token), fingerprint("aa", &token));
    }
}
