//! A simulated FortiManager JSON-RPC API (`POST /jsonrpc`), faithful to
//! `shared/fortinet/fortimanager-jsonrpc.md`: sessions and API keys, ADOM objects, admin users,
//! devices and groups, workspace locking, and `/sys/proxy/json` to managed FortiGates.
//!
//! The HTTP layer (`server`) is thin; the JSON-RPC semantics live in pure modules
//! (`url`, `objects`, `query`, `workspace`, `session`, `dispatch`, `proxy`).
//!
//! Where the facts say UNCONFIRMED, the simulator chooses (and tests) this:
//! - malformed JSON: HTTP 200 with one result `-8 "Invalid parameter"`;
//! - login from outside the trusted hosts: `-22 "Login fail"`; an API key from outside: `-11`;
//! - a key on FortiManager before 7.2.2: `-11`; responses to key calls carry the numeric id
//!   that owns the caller's workspace locks;
//! - unknown ADOM: `-6` under `/pm/config/adom/..`, `-3` under `/dvmdb/adom/..`;
//! - an empty addrgrp before FortiOS 7.2, or a bad subnet: `-10`; messages for -10015 and
//!   -10131 ("Object is in use", "Object dependency failed") are descriptive;
//! - workspace calls on a non-workspace ADOM: `-9`; commit without any lock: `-10147`; locks
//!   survive logout and session expiry (clients must unlock);
//! - unreachable proxy target: per-target `{"code": -20042, "message": "device unreachable"}`,
//!   no `response`; an unknown target fails the whole call with `-2` (F16).

mod control;
mod dispatch;
mod fault;
mod forms;
mod inventory;
mod objects;
mod proxy;
mod query;
mod rpc;
mod scenario;
mod server;
mod session;
mod state;
mod status;
mod symbolic;
mod url;
mod workspace;

use futures::future::BoxFuture;

pub use control::{FortiManagerControl, admin_router};
pub use fault::{FaultRule, HttpFaultBody};
pub use scenario::{
    AdminUser, AdomSpec, DeviceGroupSpec, DeviceSpec, EXAMPLE_SCENARIO, FortiManagerScenario,
    RpcPermit, UserType, WorkspaceMode,
};
pub use server::{FortiManagerHandle, start};
pub use state::{CounterKey, RequestRecord};
pub use status::Status;
pub use url::Table;

/// The FortiGates a FortiManager manages, as `/sys/proxy/json` reaches them.
pub trait ManagedDevices: Send + Sync + 'static {
    /// Sends a FortiOS REST request to `device` (FMG device name); `None` when unreachable.
    /// The answer is the HTTP status and the FortiOS JSON body.
    fn call(
        &self,
        device: &str,
        method: &str,
        path_and_query: &str,
        body: Option<serde_json::Value>,
    ) -> BoxFuture<'static, Option<(u16, serde_json::Value)>>;
}

/// No managed devices reachable: every proxy target answers "device unreachable".
#[derive(Debug, Clone, Copy, Default)]
pub struct NoDevices;

impl ManagedDevices for NoDevices {
    fn call(
        &self,
        _: &str,
        _: &str,
        _: &str,
        _: Option<serde_json::Value>,
    ) -> BoxFuture<'static, Option<(u16, serde_json::Value)>> {
        Box::pin(async { None })
    }
}
