//! A simulated FortiGate REST API, faithful to `shared/fortinet/fortios-rest.md`.

mod auth;
pub mod cmdb;
mod cmdb_api;
mod cmdb_api_user;
mod cmdb_system;
pub mod envelope;
pub mod lockout;
mod login;
mod monitor;
pub mod query;
mod rest;
pub mod scenario;
mod server;
pub mod state;
pub mod version;

pub use cmdb::{CmdbError, Table};
pub use scenario::{
    Admin, ApiUser, FortiGateScenario, GlobalSettings, Permission, Profile, VdomObjects,
};
pub use server::{FortiGateHandle, start};
pub use state::{FaultRule, RequestRecord};
pub use version::FosVersion;
