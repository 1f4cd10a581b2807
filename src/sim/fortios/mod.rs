//! A simulated FortiGate REST API, faithful to `shared/fortinet/fortios-rest.md`.

mod auth;
pub mod cmdb;
mod cmdb_api;
mod cmdb_api_user;
mod cmdb_system;
pub mod envelope;
pub mod fault;
pub mod feed;
mod feed_list;
mod feed_monitor;
mod feed_poll;
pub mod lockout;
mod login;
mod monitor;
pub mod query;
mod rest;
pub mod scenario;
mod server;
pub mod state;
mod trusthost;
pub mod version;

pub use cmdb::{CmdbError, Table};
pub use fault::{FaultBody, FaultRule};
pub use feed::{FeedSettings, PollRecord};
pub use scenario::{
    Admin, ApiUser, FortiGateScenario, GlobalSettings, Permission, Profile, VdomObjects,
};
pub use server::{FortiGateHandle, start};
pub use state::RequestRecord;
pub use version::FosVersion;
