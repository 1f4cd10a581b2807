//! Reconcilers: resolve the target, observe, plan (pure), apply through the Guard, report.

pub mod addressgroup;
pub mod connection;
pub mod context;
pub mod controller;
pub mod error;
pub mod fortigate;
pub mod metrics;
pub mod naming;
pub mod plan;
