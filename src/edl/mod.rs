//! The built-in external dynamic list (EDL) server FortiGates poll for an `ExternalConnector` in
//! Feed mode (Knocknoc "Passive"). Every replica serves it from its own watch cache: the
//! controller calls [`Lists::set`] / [`Lists::remove`]; [`serve`] answers the FortiGates.
//! See docs/edl.md.

mod auth;
mod body;
mod http;
mod lists;
mod metrics;
mod serve;

pub use auth::BasicCredentials;
pub use body::RejectedEntry;
pub use http::{CHALLENGE, router};
pub use lists::{Clock, Entry, ListSnapshot, ListSpec, Lists};
pub use metrics::{EdlMetrics, Outcome, OutcomeLabels};
pub use serve::{TlsError, limits, serve, serve_bounded, serve_on, tls_config};
