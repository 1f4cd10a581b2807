//! The FortiOS REST client.

mod client;
pub mod response;

pub use client::{FortiOsClient, RetryPolicy, SystemStatus, encode_name, member_names};
