//! fortisync: keeps Fortinet firewalls converged with Kubernetes custom resources.
#![forbid(unsafe_code)]

pub mod api;
pub mod cli;
pub mod device;
pub mod edl;
pub mod model;
pub mod reconcile;
pub mod runtime;
#[cfg(feature = "sim")]
pub mod sim;
pub mod yaml;
