//! The FortiManager JSON-RPC client.

mod answer;
mod client;
mod codes;

pub use answer::{RpcAnswer, RpcResult};
pub use client::{AdomFacts, FortiManagerClient, ProxyResult, escape_name};
