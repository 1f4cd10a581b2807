//! `/api/v2/cmdb/system/api-user`: the REST API admins, a CMDB table like any other (facts
//! §1.6): GET the collection or one user, POST a new user on the collection, PUT and DELETE by
//! mkey. Only a super_admin writes it, as only a super_admin manages administrators.

use serde_json::{Value, json};

use super::auth::Principal;
use super::cmdb::CmdbError;
use super::cmdb_api::{error_reply, ok_reply};
use super::cmdb_system::{list_or_one, not_allowed};
use super::envelope::{Reply, Request};
use super::rest::forbidden;
use super::scenario::ApiUser;
use super::state::FortiGateState;

/// `name` is at most 35 characters (SW64, HFX, TF).
const NAME_LIMIT: usize = 35;

/// Handles a request on the table; `rest` is what follows `api-user` in the path.
pub fn handle(
    state: &mut FortiGateState,
    req: &Request,
    who: &Principal,
    rest: &[&str],
    body: Option<Value>,
) -> Reply {
    let vdom = state.management_vdom().to_string();
    let here = super::cmdb_api::at(&vdom, "system", "api-user");
    if req.method == "GET" {
        let rendered: Vec<(String, Value)> = state
            .api_users
            .iter()
            .map(|(n, u)| (n.clone(), render(u)))
            .collect();
        return list_or_one(state, req, here, rest, rendered);
    }
    if !who.super_admin {
        return forbidden(state, req, &["api", "v2", "cmdb", "system", "api-user"]);
    }
    let outcome = match (req.method.as_str(), rest) {
        ("POST", []) => create(state, body.as_ref()),
        ("PUT", [name]) => update(state, name, body.as_ref()).map(|()| name.to_string()),
        ("DELETE", [name]) => match state.api_users.remove(*name) {
            Some(_) => Ok(name.to_string()),
            None => Err(CmdbError::not_found()),
        },
        _ => Err(not_allowed()),
    };
    match outcome {
        Ok(mkey) => {
            state.revision += 1;
            ok_reply(state, req, here, Some(&mkey), None, true)
        }
        Err(e) => error_reply(state, req, here, rest.first().copied(), &e),
    }
}

/// A user as a GET shows it; the key is never shown, as on the device.
fn render(u: &ApiUser) -> Value {
    let trusthost = super::trusthost::render_api_user(u);
    let vdoms: Vec<Value> = u.vdoms.iter().map(|v| json!({"name": v})).collect();
    json!({"name": u.name, "q_origin_key": u.name, "accprofile": u.accprofile, "api-key": "ENC XXXX", "vdom": vdoms, "trusthost": trusthost})
}

/// `POST` on the collection: a new user without a key (the key comes from
/// `execute api-user generate-key`, or the admin port's `PUT …/api-users/{user}/key`).
fn create(state: &mut FortiGateState, body: Option<&Value>) -> Result<String, CmdbError> {
    let body = body.ok_or_else(CmdbError::bad_request)?;
    let name = body.get("name").and_then(Value::as_str).unwrap_or_default();
    if name.is_empty() {
        return Err(cli(-56, "name: empty values are not allowed"));
    }
    if name.chars().count() > NAME_LIMIT {
        return Err(cli(
            -72,
            format!("name: field value exceeds the maximum number of characters ({NAME_LIMIT})"),
        ));
    }
    if state.api_users.contains_key(name) {
        return Err(cli(-5, format!("object already exists (mkey='{name}')")));
    }
    // accprofile defaults to "" (SW64), which names no profile: such a user is refused until
    // one is set, rather than getting any access by default.
    let mut user = ApiUser {
        name: name.to_string(),
        key: None,
        accprofile: String::new(),
        vdoms: Vec::new(),
        trusthosts: Vec::new(),
        trusthost_ids: Vec::new(),
    };
    apply(state, &mut user, body)?;
    state.api_users.insert(user.name.clone(), user);
    Ok(name.to_string())
}

/// `PUT` by mkey: the fields the body names change, the others stay.
fn update(state: &mut FortiGateState, name: &str, body: Option<&Value>) -> Result<(), CmdbError> {
    let mut user = state
        .api_users
        .get(name)
        .cloned()
        .ok_or_else(CmdbError::not_found)?;
    apply(state, &mut user, body.unwrap_or(&Value::Null))?;
    state.api_users.insert(name.to_string(), user);
    Ok(())
}

/// Sets `accprofile`, `vdom` and `trusthost` from a body, refusing what the device refuses.
fn apply(state: &FortiGateState, user: &mut ApiUser, body: &Value) -> Result<(), CmdbError> {
    if let Some(profile) = body.get("accprofile") {
        let profile = profile.as_str().unwrap_or_default();
        if state.profile(profile).is_none() {
            return Err(invalid("accprofile", profile));
        }
        user.accprofile = profile.to_string();
    }
    if let Some(vdoms) = body.get("vdom") {
        let mut names = Vec::new();
        for v in vdoms.as_array().map(Vec::as_slice).unwrap_or_default() {
            let vdom = v["name"].as_str().unwrap_or_default();
            if !state.vdoms.contains_key(vdom) {
                return Err(invalid("vdom", vdom));
            }
            names.push(vdom.to_string());
        }
        user.vdoms = names;
    }
    if let Some(items) = body.get("trusthost").and_then(Value::as_array) {
        // "Allow all (0.0.0.0/0) is not allowed" for REST API admins (DOCAPIADM).
        super::trusthost::apply_api_user(user, items).map_err(|(code, text)| cli(code, text))?;
    }
    Ok(())
}

fn cli(code: i64, text: impl Into<String>) -> CmdbError {
    CmdbError {
        http_status: 500,
        code: Some(code),
        cli_error: Some(text.into()),
    }
}

/// A reference to something that does not exist: -651, as for an unknown group member.
fn invalid(field: &str, value: &str) -> CmdbError {
    cli(
        -651,
        format!(
            "node_check_object fail! for {field} {value}\n\nvalue parse error before '{value}'\nCommand fail. Return code -651"
        ),
    )
}
