//! The FortiManager JSON-RPC client.

mod client;
mod codes;

pub use client::{FortiManagerClient, ProxyResult, escape_name};
