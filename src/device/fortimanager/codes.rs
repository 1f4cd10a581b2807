//! FortiManager status codes (fortimanager-jsonrpc.md §3) mapped to the error taxonomy. `-2`
//! means different things by URL: a duplicate on `add`, a missing admin user (F15), a missing
//! proxy target (F16).

use crate::device::error::{Context, DeviceError};

/// Maps a non-zero `status.code` to an error.
pub fn error(ctx: Context, code: i64, message: &str) -> DeviceError {
    let url = ctx.path.clone();
    match code {
        -2 if url.contains("/sys/proxy/json") => DeviceError::TargetNotFound {
            ctx,
            target: message.to_string(),
        },
        -2 | -3 if url.contains("/system/admin/user") => {
            let user = url.rsplit('/').next().unwrap_or_default().to_string();
            DeviceError::AdminUserNotFound { ctx, user }
        }
        -2 | -9998 | -10000 | -10033 => DeviceError::Duplicate { ctx, code },
        -3 | -6 => DeviceError::NotFound {
            ctx,
            status: 200,
            code: Some(code),
        },
        -10015 | -7 => DeviceError::InUse { ctx, code },
        -8 | -10 | -10131 => DeviceError::Invalid {
            ctx,
            code,
            detail: message.to_string(),
        },
        -11 | -20020 => DeviceError::Forbidden {
            ctx,
            status: 200,
            code: Some(code),
        },
        -22 => DeviceError::Unauthorized { ctx },
        -10147 => DeviceError::NoWritePermission { ctx },
        -20055 => DeviceError::WorkspaceLocked {
            ctx,
            holder: "another session".into(),
        },
        _ => DeviceError::Rejected {
            ctx,
            code,
            message: message.to_string(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(path: &str) -> Context {
        Context {
            device: "fmg".into(),
            method: "exec".into(),
            path: path.into(),
        }
    }

    #[test]
    fn codes_map_by_url() {
        assert_eq!(
            error(at("/sys/proxy/json"), -2, "x").reason(),
            "TargetNotFound"
        );
        assert_eq!(
            error(at("/cli/global/system/admin/user/alice"), -3, "x").reason(),
            "AdminUserNotFound"
        );
        assert_eq!(
            error(at("/pm/config/adom/root/obj/firewall/address"), -2, "x").reason(),
            "Duplicate"
        );
        assert_eq!(
            error(
                at("/pm/config/adom/nope/obj/firewall/address"),
                -6,
                "Invalid url"
            )
            .troubleshooting_row(),
            "F7"
        );
        assert_eq!(error(at("/x"), -10015, "x").reason(), "InUse");
        assert_eq!(error(at("/x"), -10147, "x").troubleshooting_row(), "F14");
        assert_eq!(error(at("/x"), -20055, "x").troubleshooting_row(), "F17");
        assert_eq!(error(at("/x"), -22, "Login fail").reason(), "Unauthorized");
        assert_eq!(error(at("/x"), -99999, "?").reason(), "Rejected");
    }
}
