//! FortiManager JSON-RPC status codes and their messages (fortimanager-jsonrpc.md §3).

use serde_json::{Value, json};

/// One `result[].status` value: a code and the message FortiManager sends with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Status {
    /// The numeric code (`0` is success).
    pub code: i64,
    /// The message text.
    pub message: String,
}

impl Status {
    /// Builds a status from its parts.
    pub fn new(code: i64, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }

    /// 0 "OK".
    pub fn ok() -> Self {
        Self::new(0, "OK")
    }

    /// -2 "Object already exists": duplicate `add`, also an unknown proxy target (F16).
    pub fn already_exists() -> Self {
        Self::new(-2, "Object already exists")
    }

    /// -3 "Object does not exist".
    pub fn not_found() -> Self {
        Self::new(-3, "Object does not exist")
    }

    /// -5 "No such command": a method the URL does not implement.
    pub fn no_such_command() -> Self {
        Self::new(-5, "No such command")
    }

    /// -6 "Invalid url".
    pub fn invalid_url() -> Self {
        Self::new(-6, "Invalid url")
    }

    /// -8 "Invalid parameter": a malformed request or param.
    pub fn invalid_parameter() -> Self {
        Self::new(-8, "Invalid parameter")
    }

    /// -9 "command invalid for selected URL" (e.g. `lockinfo` outside workspace mode).
    pub fn command_invalid() -> Self {
        Self::new(-9, "command invalid for selected URL")
    }

    /// -10 "The data is invalid for selected url".
    pub fn invalid_data() -> Self {
        Self::new(-10, "The data is invalid for selected url")
    }

    /// -11 "No permission for the resource": rights, rpc-permit, stale session or bad key.
    pub fn no_permission() -> Self {
        Self::new(-11, "No permission for the resource")
    }

    /// -22 "Login fail".
    pub fn login_fail() -> Self {
        Self::new(-22, "Login fail")
    }

    /// -10015: delete refused while the object is referenced. The facts give no message text;
    /// this one is descriptive.
    pub fn in_use() -> Self {
        Self::new(-10015, "Object is in use")
    }

    /// -10131: a referenced object (e.g. a group member) does not exist. Message not in the facts.
    pub fn dependency_failed() -> Self {
        Self::new(-10131, "Object dependency failed")
    }

    /// -10147 "no write permission": a write in workspace mode without holding the lock.
    pub fn no_write_permission() -> Self {
        Self::new(-10147, "no write permission")
    }

    /// -20055 "Workspace is locked by other user".
    pub fn locked_by_other() -> Self {
        Self::new(-20055, "Workspace is locked by other user")
    }

    /// The JSON form `{"code":..,"message":..}`.
    pub fn to_json(&self) -> Value {
        json!({ "code": self.code, "message": self.message })
    }

    /// True for code 0.
    pub fn is_ok(&self) -> bool {
        self.code == 0
    }
}
