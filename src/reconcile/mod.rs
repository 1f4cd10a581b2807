//! Reconcilers: resolve the target, observe, plan (pure), apply through the Guard, report.

pub mod connection;
pub mod fortigate;
pub mod metrics;
pub mod naming;
pub mod plan;
