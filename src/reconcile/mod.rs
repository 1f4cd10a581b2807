//! Reconcilers: resolve the target, observe, plan (pure), apply through the Guard, report.

pub mod addressgroup;
pub mod connection;
pub mod connection_status;
pub mod context;
pub mod controller;
pub mod converge;
pub mod error;
pub mod fortigate;
pub mod fortimanager;
pub mod install;
pub mod metrics;
pub mod naming;
pub mod observed;
pub mod plan;
pub mod status;
pub mod target;
pub mod validate;
