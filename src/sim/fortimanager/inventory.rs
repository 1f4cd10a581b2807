//! How FortiManager presents its own configuration, ADOMs, devices, groups and admin users.

use serde_json::{Map, Value, json};

use super::forms::parse_subnet;
use super::scenario::{AdminUser, DeviceSpec, RpcPermit, UserType, WorkspaceMode};
use super::state::{Adom, FmgState, parse_version};
use super::status::Status;

/// `/cli/global/system/status`.
pub fn system_status(s: &FmgState) -> Value {
    let (major, minor, patch) = parse_version(&s.version);
    json!({
        "Admin Domain Configuration": "Enabled",
        "BIOS version": "04000002",
        "Branch Point": "2487",
        "Build": 2487,
        "Current Time": jiff::Timestamp::now().to_string(),
        "Daylight Time Saving": "Yes",
        "FIPS Mode": "Disabled",
        "HA Mode": "Stand Alone",
        "Hostname": s.hostname,
        "License Status": "Valid",
        "Major": major,
        "Minor": minor,
        "Patch": patch,
        "Platform Full Name": "FortiManager-VM64",
        "Platform Type": "FMG-VM64",
        "Release Version Information": " (GA)",
        "Serial Number": s.serial,
        "Version": format!("v{major}.{minor}.{patch}-build2487 240315 (GA)"),
    })
}

/// `/cli/global/system/global`.
pub fn system_global(s: &FmgState) -> Map<String, Value> {
    let mode = match s.workspace_mode() {
        WorkspaceMode::Disabled => "disabled",
        WorkspaceMode::Normal => "normal",
    };
    let v = json!({"adom-status": "enable", "adom-mode": "normal", "hostname": s.hostname, "workspace-mode": mode});
    v.as_object().cloned().unwrap_or_default()
}

/// One `/dvmdb/adom` entry; `workspace_mode` is numeric as §5 shows it.
pub fn adom(a: &Adom) -> Map<String, Value> {
    let (major, minor, _) = parse_version(&a.os_version);
    let ws = u8::from(a.ws.mode == WorkspaceMode::Normal);
    let v = json!({"name": a.name, "os_ver": format!("{major}.0"), "mr": minor, "restricted_prds": "fos", "workspace_mode": ws, "state": 1});
    v.as_object().cloned().unwrap_or_default()
}

/// One `/dvmdb/adom/{adom}/device` entry (symbolic; numeric conversion happens on reply).
pub fn device(d: &DeviceSpec) -> Map<String, Value> {
    let (major, minor, patch) = parse_version(&d.version);
    let platform = if d.platform.is_empty() {
        "FortiGate-VM64"
    } else {
        &d.platform
    };
    let v = json!({
        "name": d.name, "hostname": d.name, "sn": d.serial, "os_type": "fos", "os_ver": format!("{major}.0"),
        "mr": minor, "patch": patch, "build": 0, "platform_str": platform, "mgmt_mode": "fmg",
        "conn_status": "up", "conf_status": "insync", "db_status": "nomod", "ha_mode": "standalone",
        "vdom": [{"name": "root"}],
    });
    v.as_object().cloned().unwrap_or_default()
}

/// One `/dvmdb/adom/{adom}/group` entry.
pub fn group(a: &Adom, name: &str) -> Option<Map<String, Value>> {
    let members = a.group_members(name)?;
    let kind = if name == "All_FortiGate" {
        "default"
    } else {
        "normal"
    };
    let members: Vec<Value> = members
        .iter()
        .map(|m| json!({"name": m, "vdom": "root"}))
        .collect();
    json!({"name": name, "type": kind, "os_type": "fos", "object member": members})
        .as_object()
        .cloned()
}

/// Group names of an ADOM, All_FortiGate first.
pub fn group_names(a: &Adom) -> Vec<String> {
    std::iter::once("All_FortiGate".to_string())
        .chain(a.groups.iter().map(|g| g.name.clone()))
        .collect()
}

/// `/cli/global/system/admin/user/{userid}`: the password is never shown in clear.
pub fn admin(u: &AdminUser) -> Map<String, Value> {
    let user_type = match u.user_type {
        UserType::Local => "local",
        UserType::Api => "api",
    };
    let adoms: Vec<Value> = if u.adoms.is_empty() {
        vec![json!({"adom-name": "all_adoms"})]
    } else {
        u.adoms.iter().map(|a| json!({"adom-name": a})).collect()
    };
    let mut m = json!({
        "userid": u.userid, "profileid": u.profile, "rpc-permit": u.rpc_permit.as_str(),
        "user_type": user_type, "adom": adoms, "password": ["ENC", "<hidden>"],
    })
    .as_object()
    .cloned()
    .unwrap_or_default();
    for (i, [ip, mask]) in u.trusthost_slots().iter().enumerate() {
        m.insert(
            format!("trusthost{}", i + 1),
            json!([ip.to_string(), mask.to_string()]),
        );
    }
    for (i, net) in u.trusthost6_slots().iter().enumerate() {
        m.insert(format!("ipv6_trusthost{}", i + 1), json!(net.to_string()));
    }
    m
}

/// Applies a write to an admin user; -10 on invalid values.
pub fn apply_admin(u: &mut AdminUser, data: &Map<String, Value>) -> Result<(), Status> {
    let mut slots = u.trusthost_slots();
    let mut slots6 = u.trusthost6_slots();
    let mut touched_slots = false;
    let mut touched_slots6 = false;
    for (k, v) in data {
        match k.as_str() {
            "userid" | "name" => {}
            "password" => u.password = Some(text(v)?),
            "profileid" => u.profile = text(v)?,
            "rpc-permit" => {
                u.rpc_permit = RpcPermit::parse(&text(v)?).ok_or_else(Status::invalid_data)?
            }
            "user_type" => {
                u.user_type = match text(v)?.as_str() {
                    "local" => UserType::Local,
                    "api" => UserType::Api,
                    _ => return Err(Status::invalid_data()),
                }
            }
            "adom" => {
                let list = v.as_array().ok_or_else(Status::invalid_data)?;
                u.adoms = list
                    .iter()
                    .map(|a| {
                        a.get("adom-name")
                            .or(Some(a))
                            .and_then(Value::as_str)
                            .map(str::to_string)
                    })
                    .collect::<Option<Vec<_>>>()
                    .ok_or_else(Status::invalid_data)?
                    .into_iter()
                    .filter(|a| a != "all_adoms")
                    .collect();
            }
            other if other.starts_with("ipv6_trusthost") => {
                let n = other["ipv6_trusthost".len()..]
                    .parse::<usize>()
                    .ok()
                    .filter(|n| (1..=10).contains(n))
                    .ok_or_else(Status::invalid_data)?;
                let net: ipnet::Ipv6Net = v
                    .as_str()
                    .and_then(|t| t.parse().ok())
                    .ok_or_else(Status::invalid_data)?;
                slots6[n - 1] = net.trunc();
                touched_slots6 = true;
            }
            other => {
                let Some(n) = other
                    .strip_prefix("trusthost")
                    .and_then(|n| n.parse::<usize>().ok())
                else {
                    continue; // fields the simulator does not model are accepted and ignored
                };
                if !(1..=10).contains(&n) {
                    return Err(Status::invalid_data());
                }
                slots[n - 1] = parse_subnet(v).ok_or_else(Status::invalid_data)?;
                touched_slots = true;
            }
        }
    }
    if touched_slots {
        u.trusthosts = slots.to_vec();
    }
    if touched_slots6 {
        u.trusthosts6 = slots6.to_vec();
    }
    Ok(())
}

fn text(v: &Value) -> Result<String, Status> {
    v.as_str()
        .map(str::to_string)
        .ok_or_else(Status::invalid_data)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trusthost_write_accepts_list_and_string_forms() {
        let mut u = AdminUser::default();
        let data = json!({"trusthost1": ["127.0.0.2", "255.255.255.255"], "trusthost2": "127.0.0.0 255.0.0.0"});
        apply_admin(&mut u, data.as_object().unwrap()).unwrap();
        let shown = admin(&u);
        assert_eq!(shown["trusthost1"], json!(["127.0.0.2", "255.255.255.255"]));
        assert_eq!(shown["trusthost2"], json!(["127.0.0.0", "255.0.0.0"]));
        assert_eq!(
            shown["trusthost3"],
            json!(["255.255.255.255", "255.255.255.255"])
        );
        assert_eq!(u.trusthosts.len(), 10);
    }

    #[test]
    fn ipv6_trusthost_writes_keep_their_slot_and_restrict_ipv6_sources() {
        let mut u = AdminUser::default();
        assert_eq!(admin(&u)["ipv6_trusthost1"], json!("::/0"));
        assert!(u.trusts("2001:db8::5".parse().unwrap()));
        let data = json!({"ipv6_trusthost1": "::1/128", "ipv6_trusthost10": "2001:db8::/64"});
        apply_admin(&mut u, data.as_object().unwrap()).unwrap();
        let shown = admin(&u);
        assert_eq!(shown["ipv6_trusthost10"], json!("2001:db8::/64"));
        assert_eq!(
            shown["ipv6_trusthost5"],
            json!("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff/128")
        );
        assert!(u.trusts("2001:db8::5".parse().unwrap()));
        assert!(!u.trusts("2001:db9::5".parse().unwrap()));
        let bad = json!({"ipv6_trusthost11": "::1/128"});
        assert_eq!(
            apply_admin(&mut u, bad.as_object().unwrap()),
            Err(Status::invalid_data())
        );
    }

    #[test]
    fn invalid_rpc_permit_is_rejected() {
        let mut u = AdminUser::default();
        let data = json!({"rpc-permit": "everything"});
        assert_eq!(
            apply_admin(&mut u, data.as_object().unwrap()),
            Err(Status::invalid_data())
        );
    }
}
