//! The FortiGate + FortiManager simulator: faithful in paths, envelopes, error codes, auth and
//! lockout, used by tests, the demo, benchmarks, and users' own CI (`fortisync sim`).

mod admin;
pub mod fortimanager;
pub mod fortios;
mod listener;
mod simulator;

pub use simulator::{AdminListen, Scenario, Simulator};
