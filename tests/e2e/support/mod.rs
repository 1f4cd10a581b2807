//! Shared e2e harness: a real control plane and small helpers around it.

// The benches' own start-up: the e2e suite uses none of it.
#[allow(dead_code)]
pub mod bench;
pub mod canary;
pub mod control_plane;
pub mod device_log;
pub mod figures;
pub mod fixture;
pub mod fleet;
pub mod fleet_fair;
pub mod fleet_kinds;
pub mod fleet_peer;
pub mod fleet_process;
pub mod kinds;
pub mod node;
pub mod proxy;
pub mod run;
pub mod tools;

pub use control_plane::control_plane;
