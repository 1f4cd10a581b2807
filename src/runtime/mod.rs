//! The controller process around the reconcilers: logging, the admin server (metrics and
//! health) and leader election.

pub mod admin;
pub mod leader;
pub mod logging;
