//! Accounts: login (with two-factor), passwords, tokens, 2FA set-up, and the
//! administrators' user, group and audit-log actions.

use rand::RngCore;
use serde_json::{Map, Value, json};

use super::actions::Reply;
use super::config::UserSpec;
use super::server::Shared;
use super::store::{User, hex};
use super::{jwt, totp};

/// Handle `action` if it is an account action.
pub(crate) fn handle(
    shared: &Shared,
    action: &str,
    user: Option<&str>,
    request: &Map<String, Value>,
    data: &Value,
) -> Option<Reply> {
    let me = user.unwrap_or_default();
    Some(match action {
        "login" => login(shared, data),
        "set_passwd" => set_passwd(shared, user, data),
        "refresh_token" => refresh_token(shared, request),
        "get_2fa_status" => status_2fa(shared, me),
        "setup_2fa" => setup_2fa(shared, me, data),
        "validate_2fa" => validate_2fa(shared, me, data),
        "disable_2fa" => disable_2fa(shared, me, data),
        "list_users" => list_users(shared, me),
        "create_user" => create_user(shared, me, data),
        "list_groups" => list_groups(shared, me),
        "view_audit_logs" => view_audit_logs(shared, me, data),
        "shutdown" if shared.store().may(me, "shutdown") => {
            Reply::bare(200, "Server is shutting down")
        }
        "shutdown" => Reply::bare(403, "Permission denied"),
        _ => return None,
    })
}

fn text<'a>(data: &'a Value, key: &str) -> &'a str {
    data[key].as_str().unwrap_or_default()
}

fn token_data(shared: &Shared, username: &str) -> (String, f64) {
    let exp = shared.now() + shared.config.token_lifetime.as_secs_f64();
    (jwt::issue(&shared.jwt_key, username, exp), exp)
}

fn login(shared: &Shared, data: &Value) -> Reply {
    let (username, password) = (text(data, "username"), text(data, "password"));
    let now = shared.now();
    let mut store = shared.store();
    let Some(user) = store
        .users
        .get_mut(username)
        .filter(|u| u.password == password)
    else {
        return Reply::bare(401, "Invalid credentials").delayed();
    };
    if user.password_expired {
        return Reply::bare(403, "Password should be changed because it's expired");
    }
    let two_factor = user
        .totp_secret
        .clone()
        .filter(|_| shared.config.protocol_version >= 5);
    if let Some(secret) = two_factor {
        let Some(code) = data["2fa_token"].as_str() else {
            return Reply::new(
                202,
                "Two-factor authentication required",
                json!({"method": "totp"}),
            );
        };
        if !second_factor(user, &secret, code, now) {
            return Reply::bare(401, "Invalid two-factor authentication token").delayed();
        }
    }
    let (nickname, groups) = (user.nickname.clone(), user.groups.clone());
    let permissions: Vec<String> = store.permissions(username).into_iter().collect();
    drop(store);
    let (token, exp) = token_data(shared, username);
    let mut answer = json!({
        "token": token, "exp": exp, "nickname": nickname,
        "permissions": permissions, "groups": groups,
    });
    if shared.config.protocol_version >= 5 {
        answer["avatar_id"] = Value::Null;
    }
    Reply::new(200, "Login successful", answer)
}

/// A TOTP code (±1 step) or an unused backup code, which is then spent.
fn second_factor(user: &mut User, secret: &str, code: &str, now: f64) -> bool {
    if totp::accepts(secret, code, now) {
        return true;
    }
    match user.backup_codes.iter().position(|c| c == code) {
        Some(i) => {
            user.backup_codes.remove(i);
            true
        }
        None => false,
    }
}

fn set_passwd(shared: &Shared, caller: Option<&str>, data: &Value) -> Reply {
    let username = text(data, "username");
    let mut store = shared.store();
    let privileged = caller.is_some_and(|c| store.may(c, "super_set_passwd"));
    if caller.is_some_and(|c| c != username) && !privileged {
        return Reply::bare(403, "Permission denied");
    }
    let old = data["old_passwd"].as_str();
    let Some(user) = store.users.get_mut(username) else {
        return Reply::bare(401, "Invalid credentials").delayed();
    };
    if !privileged && old != Some(user.password.as_str()) {
        return Reply::bare(401, "Invalid credentials").delayed();
    }
    user.password = text(data, "new_passwd").to_owned();
    user.password_expired = false;
    Reply::bare(200, "Password set successfully")
}

fn refresh_token(shared: &Shared, request: &Map<String, Value>) -> Reply {
    let token = request
        .get("token")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if token.is_empty() {
        return Reply::bare(400, "missing or invalid token");
    }
    let username = request.get("username").and_then(Value::as_str);
    match jwt::verify(&shared.jwt_key, token, shared.now()) {
        Ok(owner) if username.is_none_or(|u| u == owner) => {
            let (token, exp) = token_data(shared, &owner);
            Reply::new(
                200,
                "Token refreshed successfully",
                json!({"token": token, "exp": exp}),
            )
        }
        _ => Reply::bare(400, "Invalid or expired token"),
    }
}

fn status_2fa(shared: &Shared, me: &str) -> Reply {
    let store = shared.store();
    let user = store.users.get(me);
    let enabled = user.is_some_and(|u| u.totp_secret.is_some());
    let count = user.map_or(0, |u| if enabled { u.backup_codes.len() } else { 0 });
    Reply::new(
        200,
        "Two-factor authentication status",
        json!({"enabled": enabled, "method": enabled.then_some("totp"), "backup_codes_count": count}),
    )
}

fn setup_2fa(shared: &Shared, me: &str, data: &Value) -> Reply {
    if text(data, "method") != "totp" {
        return Reply::bare(400, "Unsupported two-factor authentication method");
    }
    let secret = shared
        .config
        .setup_totp_secret
        .clone()
        .unwrap_or_else(totp::random_secret);
    let codes = shared.config.setup_backup_codes.clone().unwrap_or_else(|| {
        (0..10)
            .map(|_| {
                let mut b = [0u8; 4];
                rand::thread_rng().fill_bytes(&mut b);
                hex(&b)
            })
            .collect()
    });
    let mut store = shared.store();
    let Some(user) = store.users.get_mut(me) else {
        return Reply::bare(404, "User not found");
    };
    if user.totp_secret.is_some() {
        return Reply::bare(400, "Two-factor authentication is already enabled");
    }
    user.pending_2fa = Some((secret.clone(), codes.clone()));
    Reply::new(
        200,
        "Two-factor authentication setup initiated. Please verify with your authenticator app.",
        json!({
            "secret": secret,
            "provisioning_uri": format!("otpauth://totp/CFMS:{me}?secret={secret}&issuer=CFMS"),
            "backup_codes": codes,
        }),
    )
}

fn validate_2fa(shared: &Shared, me: &str, data: &Value) -> Reply {
    let now = shared.now();
    let mut store = shared.store();
    let Some(user) = store.users.get_mut(me) else {
        return Reply::bare(404, "User not found");
    };
    let Some((secret, codes)) = user.pending_2fa.clone() else {
        return Reply::bare(
            400,
            "Two-factor authentication setup has not been initiated",
        );
    };
    if !totp::accepts(&secret, text(data, "token"), now) {
        return Reply::bare(401, "Invalid verification code");
    }
    user.totp_secret = Some(secret);
    user.backup_codes = codes;
    user.pending_2fa = None;
    Reply::new(
        200,
        "Two-factor authentication enabled successfully",
        json!({"method": "totp"}),
    )
}

fn disable_2fa(shared: &Shared, me: &str, data: &Value) -> Reply {
    let mut store = shared.store();
    let Some(user) = store.users.get_mut(me) else {
        return Reply::bare(404, "User not found");
    };
    if data["password"].as_str() != Some(user.password.as_str()) {
        return Reply::bare(401, "Invalid credentials").delayed();
    }
    user.totp_secret = None;
    user.pending_2fa = None;
    user.backup_codes.clear();
    Reply::bare(200, "Two-factor authentication disabled successfully")
}

fn list_users(shared: &Shared, me: &str) -> Reply {
    let store = shared.store();
    if !store.may(me, "list_users") {
        return Reply::bare(403, "You do not have permission to list users");
    }
    let users: Vec<Value> = store
        .users
        .iter()
        .map(|(name, u)| json!({"username": name, "nickname": u.nickname, "groups": u.groups}))
        .collect();
    Reply::new(200, "Users listed successfully", json!({"users": users}))
}

fn create_user(shared: &Shared, me: &str, data: &Value) -> Reply {
    let mut store = shared.store();
    if !store.may(me, "create_user") {
        return Reply::bare(403, "You do not have permission to create users");
    }
    let username = text(data, "username");
    if store.users.contains_key(username) {
        return Reply::bare(409, "User already exists");
    }
    // Groups come as {"group_name", "start_time", ...} objects (or names).
    let mut groups = Vec::new();
    for group in data["groups"].as_array().into_iter().flatten() {
        let name = group["group_name"]
            .as_str()
            .or(group.as_str())
            .unwrap_or_default();
        if !store.groups.contains_key(name) {
            return Reply::bare(400, format!("Group {name} does not exist"));
        }
        groups.push(name.to_owned());
    }
    let mut spec = UserSpec::user(username, text(data, "password"));
    spec.nickname = data["nickname"].as_str().unwrap_or(username).to_owned();
    spec.groups = groups;
    spec.password_expired = true;
    store.add_user(&spec);
    Reply::bare(200, "User created successfully")
}

fn list_groups(shared: &Shared, me: &str) -> Reply {
    let store = shared.store();
    if !store.may(me, "list_groups") {
        return Reply::bare(403, "You do not have permission to list groups");
    }
    let groups: Vec<Value> = store
        .groups
        .iter()
        .map(|(name, perms)| json!({"name": name, "permissions": perms}))
        .collect();
    Reply::new(200, "Groups listed successfully", json!({"groups": groups}))
}

fn view_audit_logs(shared: &Shared, me: &str, data: &Value) -> Reply {
    let store = shared.store();
    if !store.may(me, "view_audit_logs") {
        return Reply::bare(403, "You do not have permission to view audit logs");
    }
    let offset = data["offset"].as_u64().unwrap_or_default() as usize;
    let count = data["count"].as_u64().unwrap_or_default() as usize;
    let logs: Vec<Value> = store
        .audit
        .iter()
        .enumerate()
        .rev()
        .skip(offset)
        .take(count)
        .map(|(id, e)| {
            json!({"id": id, "action": e.action, "username": e.username,
                   "result": e.result, "logged_time": e.logged_time})
        })
        .collect();
    Reply::new(
        200,
        "Audit logs retrieved successfully",
        json!({"logs": logs, "total": store.audit.len()}),
    )
}
