//! Protocol 13 requests: the envelope checks in the real server's order
//! (`router.py: handle_request`), then the action.
//!
//! 1. JSON (a payload that is not JSON is never answered) and the envelope
//!    schema (400 `Invalid request format: …`);
//! 2. credentials, when `username` and `token` are both non-empty (401
//!    `Invalid user or token`, also for an inactive account);
//! 3. lockdown (999 unless whitelisted or the user has `bypass_lockdown`);
//! 4. replay protection for authenticated requests: nonce (≥ 16 characters)
//!    and timestamp present (400), `|now − timestamp| > 15 s` (1001), nonce
//!    seen in the last 30 s by anyone (1001); the nonce is recorded here,
//!    before the later checks;
//! 5. action name (400 `Unknown action: X`), data schema (400), login
//!    required (401 `Authentication required`), then the handler.

use std::sync::atomic::Ordering;

use serde_json::{Map, Value, json};

use super::actions::{self, Auth, Reply};
use super::mux::StreamCtx;
use super::store::AuditEntry;
use super::{account, files, jwt, p13_transfer, totp};

/// Seconds a request's timestamp may be off the server's clock.
const TIME_WINDOW: f64 = 15.0;
/// Seconds a nonce is remembered (twice the window).
const NONCE_MEMORY: f64 = 2.0 * TIME_WINDOW;
/// Shortest nonce accepted.
const MIN_NONCE: usize = 16;
/// Failed logins of one user name before 429.
const LOGIN_FAILURES: u32 = 5;
/// The password policy's length limits (the real server's default).
const PASSWORD_LENGTH: std::ops::RangeInclusive<usize> = 8..=32;
/// Actions that pass during lockdown.
const LOCKDOWN_WHITELIST: &[&str] = &[
    "server_info",
    "login",
    "refresh_token",
    "validate_2fa",
    "upload_file",
    "download_file",
];

/// Serve the stream whose first payload is `request`.
pub(crate) async fn handle(mut ctx: StreamCtx, request: Vec<u8>) {
    // Not JSON: the real server's request thread dies; no answer, ever.
    let Ok(value) = serde_json::from_slice::<Value>(&request) else {
        return;
    };
    let action = value
        .get("action")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    let (unanswered, delay) = {
        let faults = ctx
            .shared
            .faults13
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        (
            faults.unanswered.contains(&action),
            faults.delays.get(&action).copied(),
        )
    };
    if unanswered {
        // Keep reading (and dropping) what the client sends on the stream.
        while ctx.recv().await.is_some() {}
        return;
    }
    if let Some(delay) = delay {
        tokio::time::sleep(delay).await;
    }
    let request = match check_envelope(value) {
        Ok(request) => request,
        Err(reply) => {
            let _ = ctx.conclude(reply).await;
            return;
        }
    };
    let user = match authenticate(&ctx, &request) {
        Ok(user) => user,
        Err(reply) => {
            let _ = ctx.conclude(reply).await;
            return;
        }
    };
    let (locked, bypass) = {
        let store = ctx.shared.store();
        let bypass = user
            .as_ref()
            .is_some_and(|u| store.may(u, "bypass_lockdown"));
        (store.lockdown, bypass)
    };
    if locked && !LOCKDOWN_WHITELIST.contains(&action.as_str()) && !bypass {
        let _ = ctx.conclude(Reply::bare(999, "lockdown")).await;
        return;
    }
    if user.is_some()
        && let Err(reply) = replay_check(&ctx, &request)
    {
        let _ = ctx.conclude(reply).await;
        return;
    }
    let Some(spec) = actions::lookup(&action, ctx.shared.config.protocol_version) else {
        let _ = ctx
            .conclude(Reply::bare(400, format!("Unknown action: {action}")))
            .await;
        return;
    };
    let data = request.get("data").cloned().unwrap_or(Value::Null);
    if let Err(refusal) = spec.schema.check(&data) {
        let _ = ctx
            .conclude(Reply::new(400, refusal.message, refusal.data))
            .await;
        return;
    }
    if spec.auth == Auth::Required && user.is_none() {
        let _ = ctx
            .conclude(Reply::bare(401, "Authentication required"))
            .await;
        return;
    }
    let reply = match action.as_str() {
        "upload_file" => return p13_transfer::upload(ctx, &data).await,
        "download_file" => return p13_transfer::download(ctx, &data).await,
        "lockdown" => {
            let me = user.as_deref().unwrap_or_default();
            if !ctx.shared.store().may(me, "apply_lockdown") {
                Reply::bare(403, "Access denied")
            } else {
                // The requester's answer first, then the event everywhere.
                log(&ctx, &action, user, 200);
                if ctx.conclude(Reply::bare(200, "Success")).await.is_some() {
                    ctx.shared
                        .set_lockdown(data["status"].as_bool().unwrap_or_default());
                }
                return;
            }
        }
        _ => reply(&ctx, &action, user.as_deref(), &request, &data),
    };
    log(&ctx, &action, user, reply.code);
    let halt = action == "shutdown" && reply.code == 200;
    let _ = ctx.conclude(reply).await;
    if halt {
        ctx.shared.halt.notify_one();
    }
}

/// The answer of every action that needs no streaming.
fn reply(
    ctx: &StreamCtx,
    action: &str,
    user: Option<&str>,
    request: &Map<String, Value>,
    data: &Value,
) -> Reply {
    let shared = &ctx.shared;
    let mut reply = match action {
        "server_info" => server_info(ctx),
        "login" => login(ctx, data),
        "manage_user_status" => manage_user_status(ctx, user.unwrap_or_default(), data),
        _ => match account::handle(shared, action, user, request, data) {
            Some(reply) => reply,
            None => files13(ctx, action, user.unwrap_or_default(), data),
        },
    };
    // Protocol 13 has no bad-password delay.
    reply.delayed = false;
    match (action, reply.code) {
        ("create_user", 200) => {
            // A new account's password is not expired here (the recorded
            // server had forced expiry off), but it may break the policy.
            let username = data["username"].as_str().unwrap_or_default();
            let password = data["password"].as_str().unwrap_or_default();
            let mut store = shared.store();
            if let Some(u) = store.users.get_mut(username) {
                u.password_expired = false;
                if data["nickname"].is_null() {
                    // No nickname given: login answers `null`.
                    u.nickname.clear();
                }
            }
            if !PASSWORD_LENGTH.contains(&password.chars().count()) {
                store.weak_passwords.insert(username.to_owned());
            }
        }
        ("set_passwd", 200) => {
            let username = data["username"].as_str().unwrap_or_default();
            shared.store().weak_passwords.remove(username);
        }
        ("disable_2fa", 200) => reply.message = "2FA disabled successfully".into(),
        ("get_2fa_status", 200) if reply.data["enabled"] == false => {
            // Codes handed out by `setup_2fa` count before validation.
            let store = shared.store();
            let pending = store
                .users
                .get(user.unwrap_or_default())
                .and_then(|u| u.pending_2fa.as_ref())
                .map_or(0, |(_, codes)| codes.len());
            reply.data["backup_codes_count"] = json!(pending);
        }
        _ => {}
    }
    reply
}

/// `get_directory_info {"directory_id": "/"}`: the root is a real folder
/// record at 13 (`main.py: ensure_root_folder`), with the default rules
/// that let only `sysop` write and manage it (6b5aa0f, checked live).
fn root_info(store: &super::store::Store) -> Reply {
    let folders = store
        .folders
        .values()
        .filter(|f| f.parent.is_none())
        .count();
    let documents = store
        .documents
        .values()
        .filter(|d| d.folder.is_none() && d.revision.is_some())
        .count();
    let sysop = json!({
        "match": "all",
        "match_groups": [{"match": "all", "groups": {"match": "all", "require": ["sysop"]}}],
    });
    Reply::new(
        200,
        "Directory info retrieved successfully",
        json!({
            "directory_id": "/", "count_of_child": folders + documents, "parent_id": null,
            "name": "/", "created_time": store.created_time,
            "access_rules": [
                {"rule_id": 1, "access_type": "write", "rule_data": sysop},
                {"rule_id": 2, "access_type": "manage", "rule_data": sysop},
            ],
            "info_code": 0,
        }),
    )
}

/// Directory and document actions: the 3–5 handlers with the root named
/// `"/"` and protocol 13's answers.
fn files13(ctx: &StreamCtx, action: &str, me: &str, data: &Value) -> Reply {
    let shared = &ctx.shared;
    if action == "get_directory_info" && data["directory_id"] == "/" {
        return root_info(&shared.store());
    }
    let mut data = data.clone();
    for key in ["folder_id", "parent_id", "target_folder_id"] {
        if data[key] == "/" {
            data[key] = Value::Null;
        }
    }
    // What the request names, looked up before the 3–5 handler changes it.
    let (clash, folder_clash) = {
        let store = shared.store();
        let parent = data["parent_id"].as_str().map(str::to_owned);
        let name = data["name"].as_str().unwrap_or_default();
        let clash = store
            .folders
            .iter()
            .find(|(_, f)| f.parent == parent && f.name == name)
            .map(|(id, _)| id.clone());
        let place = data["folder_id"].as_str().map(str::to_owned);
        let title = data["title"].as_str().unwrap_or_default();
        let folder_clash = store
            .folders
            .values()
            .any(|f| f.parent == place && f.name == title);
        (clash, folder_clash)
    };
    if action == "create_document" && folder_clash && shared.store().may(me, "create_document") {
        // The real server's bug (`util/check.py: handle_name_duplicate`).
        return Reply::new(500, "Internal server error", json!({"log_id": log_id()}));
    }
    let mut reply = files::handle(shared, action, me, &data);
    match (action, reply.code) {
        ("create_directory", 400) if clash.is_some() => {
            let id = clash.unwrap_or_default();
            reply.code = 409;
            reply.data = json!({"type": "directory", "id": id, "duplicate_id": id});
        }
        ("create_directory", 200) if clash.is_some() => {
            reply.message = "Directory already exists".into();
        }
        ("get_document" | "get_document_info", 500) => {
            reply = Reply::bare(404, "No active revisions found for this document");
        }
        ("delete_directory", 200) => {
            reply.message = "Directory marked as deleted successfully".into();
        }
        ("delete_document", 200) => reply.message = "Document successfully deleted".into(),
        _ => {}
    }
    if matches!(action, "get_directory_info" | "get_document_info") && reply.code == 200 {
        if reply.data["parent_id"].is_null() {
            reply.data["parent_id"] = json!("/");
        }
        if action == "get_directory_info" {
            // Documents whose upload never finished are not counted.
            let store = shared.store();
            let here = data["directory_id"].as_str().map(str::to_owned);
            let folders = store.folders.values().filter(|f| f.parent == here).count();
            let documents = store
                .documents
                .values()
                .filter(|d| d.folder == here && d.revision.is_some())
                .count();
            reply.data["count_of_child"] = json!(folders + documents);
        }
    }
    if let Some(task) = reply
        .data
        .get_mut("task_data")
        .and_then(Value::as_object_mut)
    {
        task.insert("provider".into(), json!("native"));
    }
    reply
}

/// A random 32-hex-digit id, the shape of the real server's `log_id`.
pub(crate) fn log_id() -> String {
    let mut bytes = [0u8; 16];
    rand::RngCore::fill_bytes(&mut rand::thread_rng(), &mut bytes);
    super::store::hex(&bytes)
}

/// The envelope schema: `action` and `data` required, types, and
/// `username`/`token` each requiring the other.
fn check_envelope(value: Value) -> Result<Map<String, Value>, Reply> {
    let invalid = |why: String| Reply::bare(400, format!("Invalid request format: {why}"));
    let Value::Object(request) = value else {
        return Err(invalid(format!(
            "{} is not of type 'object'",
            py_repr(&value)
        )));
    };
    for key in ["action", "data"] {
        if !request.contains_key(key) {
            return Err(invalid(format!("'{key}' is a required property")));
        }
    }
    let types: [(&str, TypeCheck, &str); 6] = [
        ("action", Value::is_string, "'string'"),
        ("data", Value::is_object, "'object'"),
        (
            "username",
            |v| v.is_string() || v.is_null(),
            "'string', 'null'",
        ),
        (
            "token",
            |v| v.is_string() || v.is_null(),
            "'string', 'null'",
        ),
        ("nonce", Value::is_string, "'string'"),
        ("timestamp", Value::is_number, "'number'"),
    ];
    for (key, ok, name) in types {
        if let Some(v) = request.get(key)
            && !ok(v)
        {
            return Err(invalid(format!("{} is not of type {name}", py_repr(v))));
        }
    }
    for (have, need) in [("username", "token"), ("token", "username")] {
        if request.contains_key(have) && !request.contains_key(need) {
            return Err(invalid(format!("'{need}' is a dependency of '{have}'")));
        }
    }
    Ok(request)
}

/// Does a value have the type a schema names?
type TypeCheck = fn(&Value) -> bool;

/// How Python prints a small decoded JSON value.
fn py_repr(value: &Value) -> String {
    match value {
        Value::Null => "None".into(),
        Value::Bool(true) => "True".into(),
        Value::Bool(false) => "False".into(),
        Value::String(s) => format!("'{s}'"),
        Value::Array(items) => {
            let inner: Vec<String> = items.iter().map(py_repr).collect();
            format!("[{}]", inner.join(", "))
        }
        other => other.to_string(),
    }
}

/// `Some(user)` for valid credentials, `None` for an unauthenticated
/// request (empty or null username or token).
fn authenticate(ctx: &StreamCtx, request: &Map<String, Value>) -> Result<Option<String>, Reply> {
    let field = |k: &str| request.get(k).and_then(Value::as_str).unwrap_or_default();
    let (username, token) = (field("username"), field("token"));
    if username.is_empty() || token.is_empty() {
        return Ok(None);
    }
    let shared = &ctx.shared;
    let store = shared.store();
    match jwt::verify(&shared.jwt_key, token, shared.now()) {
        Ok(owner)
            if owner == username
                && store.users.contains_key(username)
                && !store.disabled.contains(username) =>
        {
            Ok(Some(owner))
        }
        _ => Err(Reply::bare(401, "Invalid user or token")),
    }
}

/// Nonce and timestamp of an authenticated request.
fn replay_check(ctx: &StreamCtx, request: &Map<String, Value>) -> Result<(), Reply> {
    let nonce = request
        .get("nonce")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if nonce.chars().count() < MIN_NONCE {
        return Err(Reply::bare(
            400,
            "Missing or invalid nonce for replay protection",
        ));
    }
    let timestamp = request
        .get("timestamp")
        .and_then(Value::as_f64)
        .unwrap_or_default();
    if timestamp == 0.0 {
        return Err(Reply::bare(
            400,
            "Missing or invalid timestamp for replay protection",
        ));
    }
    let now = ctx.shared.now();
    if (now - timestamp).abs() > TIME_WINDOW {
        ctx.shared.replay_refusals.fetch_add(1, Ordering::Relaxed);
        return Err(Reply::bare(
            1001,
            "Request timestamp is outside the acceptable time window",
        ));
    }
    // Taken before the store's lock: the two are never held together.
    let forced = std::mem::take(
        &mut ctx
            .shared
            .faults13
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .nonce_seen_next,
    );
    let mut store = ctx.shared.store();
    store.nonces.retain(|_, seen| now - *seen <= NONCE_MEMORY);
    if store.nonces.insert(nonce.to_owned(), now).is_some() || forced {
        ctx.shared.replay_refusals.fetch_add(1, Ordering::Relaxed);
        return Err(Reply::bare(
            1001,
            "Duplicate nonce detected: possible replay attack",
        ));
    }
    Ok(())
}

fn server_info(ctx: &StreamCtx) -> Reply {
    let config = &ctx.shared.config;
    let version = config.server_version.as_deref().unwrap_or(VERSION_P13);
    Reply::new(
        200,
        "Server information retrieved successfully",
        json!({
            "server_name": "CFMS WebSocket Server",
            "version": version,
            "protocol_version": config.protocol_version,
            "lockdown": ctx.shared.store().lockdown,
        }),
    )
}

/// The version string the real server reported at protocol 13.
const VERSION_P13: &str = "0.3.0.260519_alpha";

/// `login`: throttle (429), password (401), second factor (202/401),
/// inactive account (4003), password policy (4001), expiry (4002).
fn login(ctx: &StreamCtx, data: &Value) -> Reply {
    let shared = &ctx.shared;
    let text = |k: &str| data[k].as_str().unwrap_or_default();
    let (username, password) = (text("username"), text("password"));
    if username.is_empty() || password.is_empty() {
        return Reply::new(
            400,
            "'' should be non-empty",
            json!({"validator": "minLength", "validator_value": 1}),
        );
    }
    let now = shared.now();
    let mut store = shared.store();
    let fail = |store: &mut super::store::Store, reply: Reply| {
        *store.login_failures.entry(username.to_owned()).or_default() += 1;
        reply
    };
    if store
        .login_failures
        .get(username)
        .copied()
        .unwrap_or_default()
        >= LOGIN_FAILURES
    {
        return Reply::bare(429, "Too many login attempts. Please try again later.");
    }
    let known = store
        .users
        .get(username)
        .is_some_and(|u| u.password == password);
    if !known {
        return fail(&mut store, Reply::bare(401, "Invalid credentials"));
    }
    let Some(user) = store.users.get_mut(username) else {
        return Reply::bare(401, "Invalid credentials");
    };
    if let Some(secret) = user.totp_secret.clone() {
        let Some(code) = data["2fa_token"].as_str() else {
            return Reply::new(
                202,
                "Two-factor authentication required",
                json!({"method": "totp"}),
            );
        };
        let backup = user.backup_codes.iter().position(|c| c == code);
        if totp::accepts(&secret, code, now) {
        } else if let Some(i) = backup {
            user.backup_codes.remove(i);
        } else {
            let reply = Reply::bare(401, "Invalid two-factor authentication token");
            return fail(&mut store, reply);
        }
    }
    if store.disabled.contains(username) {
        return fail(&mut store, Reply::bare(4003, "User account is not active"));
    }
    if store.weak_passwords.contains(username) {
        return Reply::bare(4001, "Password must be changed before you can log in");
    }
    let Some(user) = store.users.get(username) else {
        return Reply::bare(401, "Invalid credentials");
    };
    if user.password_expired {
        return Reply::bare(4002, "Password should be changed because it's expired");
    }
    let nickname = Some(user.nickname.clone()).filter(|n| !n.is_empty());
    let groups = user.groups.clone();
    let permissions: Vec<String> = store.permissions(username).into_iter().collect();
    store.login_failures.remove(username);
    drop(store);
    let exp = now + shared.config.token_lifetime.as_secs_f64();
    let token = jwt::issue(&shared.jwt_key, username, exp);
    Reply::new(
        200,
        "Login successful",
        json!({
            "token": token, "exp": exp, "nickname": nickname, "avatar_id": null,
            "permissions": permissions, "groups": groups,
        }),
    )
}

/// `manage_user_status {username, status: active|disabled}`.
fn manage_user_status(ctx: &StreamCtx, me: &str, data: &Value) -> Reply {
    let mut store = ctx.shared.store();
    if !store.may(me, "manage_user_status") {
        return Reply::bare(403, "Access denied");
    }
    let username = data["username"].as_str().unwrap_or_default();
    if !store.users.contains_key(username) {
        return Reply::bare(404, "User not found");
    }
    match data["status"].as_str() {
        Some("active") => store.disabled.remove(username),
        Some("disabled") => store.disabled.insert(username.to_owned()),
        _ => return Reply::bare(400, "Invalid status"),
    };
    Reply::bare(200, "User status updated successfully")
}

fn log(ctx: &StreamCtx, action: &str, username: Option<String>, result: u16) {
    let entry = AuditEntry {
        action: action.to_owned(),
        username,
        result,
        logged_time: ctx.shared.now(),
    };
    ctx.shared.store().audit.push(entry);
}
