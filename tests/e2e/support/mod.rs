//! Shared e2e harness: a real control plane and small helpers around it.

pub mod canary;
pub mod control_plane;
pub mod device_log;
pub mod fixture;
pub mod fleet;
pub mod node;
pub mod proxy;
pub mod run;
pub mod tools;

pub use control_plane::control_plane;
