//! Shared e2e harness: a real control plane and small helpers around it.

pub mod control_plane;
pub mod fixture;
pub mod fleet;
pub mod kinds;
pub mod node;
pub mod run;
pub mod tools;

pub use control_plane::control_plane;
