//! placeholder
pub mod fortimanager;
