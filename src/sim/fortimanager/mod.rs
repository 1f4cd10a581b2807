//! A simulated FortiManager JSON-RPC API (`POST /jsonrpc`), faithful to
//! `shared/fortinet/fortimanager-jsonrpc.md`: sessions and API keys, ADOM objects, admin users,
//! devices and groups, workspace locking, and `/sys/proxy/json` to managed FortiGates.
//!
//! The HTTP layer (`server`) is thin; the JSON-RPC semantics live in pure modules
//! (`url`, `objects`, `query`, `workspace`, `session`, `dispatch`, `proxy`).

mod control;
mod dispatch;
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
pub use scenario::{
    AdminUser, AdomSpec, DeviceGroupSpec, DeviceSpec, EXAMPLE_SCENARIO, FortiManagerScenario,
    RpcPermit, UserType, WorkspaceMode,
};
pub use server::{FortiManagerHandle, start};
pub use state::{CounterKey, FaultRule, RequestRecord};
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
