//! Device access: the error taxonomy, the lockout-safe Guard, and the FortiOS / FortiManager
//! clients behind it.

pub mod credentials;
pub mod endpoint;
pub mod error;
pub mod fortimanager;
pub mod fortios;
pub mod guard;
pub mod metrics;
pub mod transport;
pub mod untrusted;
pub mod wording;

pub use credentials::Credentials;
pub use endpoint::{DeviceKind, Endpoint, EndpointConfig, Endpoints};
pub use error::{Context, DeviceError};
pub use guard::{Guard, LockoutPolicy, Outcome};
pub use metrics::DeviceMetrics;
pub use transport::TransportConfig;
