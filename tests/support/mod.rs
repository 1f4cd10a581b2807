//! Helpers shared by integration tests.

pub mod sim_client;
