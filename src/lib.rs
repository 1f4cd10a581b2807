//! fortisync: keeps Fortinet firewalls converged with Kubernetes custom resources.
#![forbid(unsafe_code)]

pub mod api;
pub mod cli;
pub mod device;
pub mod edl;
pub mod reconcile;
#[cfg(feature = "sim")]
pub mod sim;
