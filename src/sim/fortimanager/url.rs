//! Parsing a JSON-RPC `url` into the resource it names.

/// An ADOM object table the simulator implements.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Table {
    /// `obj/firewall/address`.
    Address,
    /// `obj/firewall/addrgrp`.
    Addrgrp,
    /// `obj/firewall/address6`.
    Address6,
    /// `obj/firewall/addrgrp6`.
    Addrgrp6,
    /// `obj/system/external-resource`.
    ExternalResource,
}

impl Table {
    /// The short name used by the control API (`address`, `addrgrp`, `external-resource`).
    pub fn id(self) -> &'static str {
        match self {
            Self::Address => "address",
            Self::Addrgrp => "addrgrp",
            Self::Address6 => "address6",
            Self::Addrgrp6 => "addrgrp6",
            Self::ExternalResource => "external-resource",
        }
    }

    /// Parses [`Table::id`].
    pub fn from_id(id: &str) -> Option<Self> {
        [
            Self::Address,
            Self::Addrgrp,
            Self::Address6,
            Self::Addrgrp6,
            Self::ExternalResource,
        ]
        .into_iter()
        .find(|t| t.id() == id)
    }
}

/// Workspace actions under `/dvmdb/adom/{adom}/workspace/`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WorkspaceAction {
    /// `lock`.
    Lock,
    /// `commit`.
    Commit,
    /// `unlock`.
    Unlock,
    /// `lockinfo`.
    LockInfo,
    /// `dirty`: whether the caller's session has uncommitted changes.
    Dirty,
}

/// The resource a `url` names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// `sys/login/user`.
    Login,
    /// `sys/logout`.
    Logout,
    /// `/pm/config/adom/{adom}/obj/...[/{name}[/member]]`.
    Object {
        adom: String,
        table: Table,
        name: Option<String>,
        member: bool,
    },
    /// `/cli/global/system/admin/user[/{userid}]`.
    AdminUser { userid: Option<String> },
    /// `/cli/global/system/global`.
    SystemGlobal,
    /// `/cli/global/system/admin/setting` (`idle_timeout_api`).
    AdminSetting,
    /// `/cli/global/system/status` (and the older `/sys/status`).
    SystemStatus,
    /// `/dvmdb/adom[/{adom}]`.
    Adom { name: Option<String> },
    /// `/dvmdb/adom/{adom}/device[/{name}]`.
    Device { adom: String, name: Option<String> },
    /// `/dvmdb/adom/{adom}/group[/{name}]`.
    Group { adom: String, name: Option<String> },
    /// `/dvmdb/adom/{adom}/workspace/{action}` or `/pm/config/adom/{adom}/_workspace/{action}`.
    Workspace {
        adom: String,
        action: WorkspaceAction,
    },
    /// `/sys/proxy/json`.
    Proxy,
    /// Anything else.
    Unknown,
}

/// Splits a url into segments: leading/trailing and doubled slashes are ignored, and `\/`
/// escapes a slash inside a name.
pub fn segments(url: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut chars = url.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' if chars.peek() == Some(&'/') => {
                cur.push('/');
                chars.next();
            }
            '/' => {
                if !cur.is_empty() {
                    out.push(std::mem::take(&mut cur));
                }
            }
            _ => cur.push(c),
        }
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

/// Routes a url.
pub fn route(url: &str) -> Route {
    let segs = segments(url);
    let s: Vec<&str> = segs.iter().map(String::as_str).collect();
    let name = |i: usize| s.get(i).map(|n| n.to_string());
    match s.as_slice() {
        ["sys", "login", "user"] => Route::Login,
        ["sys", "logout"] => Route::Logout,
        ["sys", "status"] | ["cli", "global", "system", "status"] => Route::SystemStatus,
        ["sys", "proxy", "json"] => Route::Proxy,
        ["cli", "global", "system", "global"] => Route::SystemGlobal,
        ["cli", "global", "system", "admin", "setting"] => Route::AdminSetting,
        ["cli", "global", "system", "admin", "user"]
        | ["cli", "global", "system", "admin", "user", _] => Route::AdminUser { userid: name(5) },
        ["pm", "config", "adom", adom, "_workspace", action] => workspace(adom, action),
        ["pm", "config", "adom", adom, "obj", rest @ ..] => object(adom, rest),
        ["dvmdb", "adom"] | ["dvmdb", "adom", _] => Route::Adom { name: name(2) },
        ["dvmdb", "adom", adom, "workspace", action] => workspace(adom, action),
        ["dvmdb", "adom", adom, "device"] | ["dvmdb", "adom", adom, "device", _] => Route::Device {
            adom: adom.to_string(),
            name: name(4),
        },
        ["dvmdb", "adom", adom, "group"] | ["dvmdb", "adom", adom, "group", _] => Route::Group {
            adom: adom.to_string(),
            name: name(4),
        },
        _ => Route::Unknown,
    }
}

fn workspace(adom: &str, action: &str) -> Route {
    let action = match action {
        "lock" => WorkspaceAction::Lock,
        "commit" => WorkspaceAction::Commit,
        "unlock" => WorkspaceAction::Unlock,
        "lockinfo" => WorkspaceAction::LockInfo,
        "dirty" => WorkspaceAction::Dirty,
        _ => return Route::Unknown,
    };
    Route::Workspace {
        adom: adom.to_string(),
        action,
    }
}

fn object(adom: &str, rest: &[&str]) -> Route {
    let (table, tail) = match rest {
        ["firewall", "address", tail @ ..] => (Table::Address, tail),
        ["firewall", "addrgrp", tail @ ..] => (Table::Addrgrp, tail),
        ["firewall", "address6", tail @ ..] => (Table::Address6, tail),
        ["firewall", "addrgrp6", tail @ ..] => (Table::Addrgrp6, tail),
        ["system", "external-resource", tail @ ..] => (Table::ExternalResource, tail),
        _ => return Route::Unknown,
    };
    let adom = adom.to_string();
    match (table, tail) {
        (_, []) => Route::Object {
            adom,
            table,
            name: None,
            member: false,
        },
        (_, [name]) => Route::Object {
            adom,
            table,
            name: Some(name.to_string()),
            member: false,
        },
        (Table::Addrgrp | Table::Addrgrp6, [name, "member"]) => Route::Object {
            adom,
            table,
            name: Some(name.to_string()),
            member: true,
        },
        _ => Route::Unknown,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leading_slash_is_optional_and_trailing_slash_tolerated() {
        assert_eq!(route("sys/login/user"), Route::Login);
        assert_eq!(route("/sys/login/user/"), Route::Login);
        assert_eq!(
            route("/dvmdb/adom/root/workspace/lock/"),
            Route::Workspace {
                adom: "root".into(),
                action: WorkspaceAction::Lock
            }
        );
    }

    #[test]
    fn escaped_slash_stays_in_the_name() {
        assert_eq!(
            route("/pm/config/adom/root/obj/firewall/address/net\\/24"),
            Route::Object {
                adom: "root".into(),
                table: Table::Address,
                name: Some("net/24".into()),
                member: false
            }
        );
    }

    #[test]
    fn addrgrp_member_sub_url() {
        assert_eq!(
            route("pm/config/adom/a1/obj/firewall/addrgrp/g1/member"),
            Route::Object {
                adom: "a1".into(),
                table: Table::Addrgrp,
                name: Some("g1".into()),
                member: true
            }
        );
        assert_eq!(
            route("pm/config/adom/a1/obj/firewall/address/h1/member"),
            Route::Unknown
        );
    }
}
