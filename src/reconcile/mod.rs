//! Reconcilers: resolve the target, observe, plan (pure), apply through the Guard, report.
//!
//! Kind-neutral machinery sits at this level (context, errors, the lifecycle shell, status
//! writes, requeue timing, metrics); `connection/` resolves connections and reports their
//! status; `target/` is where a change lands (FortiGate VDOM, FortiManager ADOM with its
//! workspace lock, the proxy to FortiGates behind it); each kind has its own folder.

pub mod addressgroup;
pub mod batch;
pub mod connection;
pub mod context;
pub mod controller;
pub mod error;
pub mod externalconnector;
pub mod handled;
pub mod lifecycle;
pub mod metrics;
pub mod requeue;
pub mod status;
pub mod target;
pub mod trustedhost;
