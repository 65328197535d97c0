//! Request dispatch: the action table (schema, credentials, lockdown), the
//! envelope checks in the order the real server makes them, and answers.

use serde_json::{Map, Value, json};

use super::connection::Conn;
use super::store::AuditEntry;
use super::validate::{Schema, Ty};
use super::{account, files, jwt, transfer};

/// An answer `{"code","data","message","timestamp"}`.
#[derive(Debug, Clone)]
pub(crate) struct Reply {
    pub code: u16,
    pub message: String,
    pub data: Value,
    /// Answer only after the bad-password delay.
    pub delayed: bool,
}

impl Reply {
    /// An answer with `data`.
    pub fn new(code: u16, message: impl Into<String>, data: Value) -> Self {
        Self {
            code,
            message: message.into(),
            data,
            delayed: false,
        }
    }

    /// An answer with empty `data`.
    pub fn bare(code: u16, message: impl Into<String>) -> Self {
        Self::new(code, message, json!({}))
    }

    /// The same answer, sent after the bad-password delay.
    pub fn delayed(self) -> Self {
        Self {
            delayed: true,
            ..self
        }
    }
}

/// Who must be signed in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Auth {
    /// Nobody (or the action checks credentials itself).
    Open,
    /// The envelope's username and token must be valid.
    Required,
}

/// How one action is admitted.
pub(crate) struct ActionSpec {
    pub schema: Schema,
    pub auth: Auth,
    /// Passes during lockdown.
    pub lockdown_ok: bool,
}

const fn spec(
    required: &'static [&'static str],
    properties: &'static [(&'static str, Ty)],
    auth: Auth,
) -> ActionSpec {
    ActionSpec {
        schema: Schema {
            required,
            properties,
            open: false,
        },
        auth,
        lockdown_ok: false,
    }
}

const fn passes_lockdown(spec: ActionSpec) -> ActionSpec {
    ActionSpec {
        lockdown_ok: true,
        ..spec
    }
}

use Auth::{Open, Required};
use Ty::{Any, Array, Bool, Int, NonEmptyStr, Object, Str, StrOrNull};

/// The actions of `protocol`, with their schemas.
pub(crate) fn lookup(action: &str, protocol: u32) -> Option<ActionSpec> {
    // `minLength: 1` on both (d059bc7 and 6b5aa0f; an empty name is a 400).
    let login_p3: &[(&str, Ty)] = &[("username", NonEmptyStr), ("password", NonEmptyStr)];
    let login_p5: &[(&str, Ty)] = &[
        ("username", NonEmptyStr),
        ("password", NonEmptyStr),
        ("2fa_token", Str),
    ];
    let p13 = protocol >= 13;
    Some(match action {
        "server_info" => passes_lockdown(spec(&[], &[], Open)),
        "register_listener" if p13 => return None,
        "register_listener" => passes_lockdown(spec(&[], &[], Open)),
        "refresh_token" if p13 => passes_lockdown(spec(&[], &[], Required)),
        "download_file" if p13 => passes_lockdown(spec(
            &["task_id"],
            &[("task_id", Str), ("offset", Int)],
            Open,
        )),
        "create_directory" if p13 => ActionSpec {
            schema: Schema {
                required: &["name"],
                properties: &[("parent_id", StrOrNull), ("name", Str), ("exists_ok", Bool)],
                open: true,
            },
            ..spec(&[], &[], Required)
        },
        "create_document" if p13 => spec(
            &["title"],
            &[
                ("title", Str),
                ("folder_id", StrOrNull),
                ("access_rules", Any),
                ("inherit_parent", Bool),
            ],
            Required,
        ),
        "set_passwd" if p13 => spec(
            &["username", "new_passwd"],
            &[
                ("username", Str),
                ("old_passwd", StrOrNull),
                ("new_passwd", Str),
                ("force_update_after_login", Bool),
                ("bypass_passwd_requirements", Bool),
            ],
            Open,
        ),
        "manage_user_status" if p13 => spec(
            &["username", "status"],
            &[("username", Str), ("status", Str)],
            Required,
        ),
        "login" if protocol >= 5 => {
            passes_lockdown(spec(&["username", "password"], login_p5, Open))
        }
        "login" => passes_lockdown(spec(&["username", "password"], login_p3, Open)),
        "refresh_token" => passes_lockdown(spec(&[], &[], Open)),
        "upload_file" => passes_lockdown(spec(&["task_id"], &[("task_id", Str)], Open)),
        "download_file" => passes_lockdown(spec(&["task_id"], &[("task_id", Str)], Open)),
        "set_passwd" => spec(
            &["username", "new_passwd"],
            &[
                ("username", Str),
                ("old_passwd", StrOrNull),
                ("new_passwd", Str),
            ],
            Open,
        ),
        "list_directory" => spec(&["folder_id"], &[("folder_id", StrOrNull)], Required),
        "create_directory" => spec(
            &["parent_id", "name"],
            &[("parent_id", StrOrNull), ("name", Str), ("exists_ok", Bool)],
            Required,
        ),
        // `minLength: 1` at 3 (d059bc7) and 13 (6b5aa0f) alike.
        "get_directory_info" => spec(
            &["directory_id"],
            &[("directory_id", NonEmptyStr)],
            Required,
        ),
        "rename_directory" => spec(
            &["folder_id", "new_name"],
            &[("folder_id", Str), ("new_name", Str)],
            Required,
        ),
        "move_directory" => spec(
            &["folder_id", "target_folder_id"],
            &[("folder_id", Str), ("target_folder_id", StrOrNull)],
            Required,
        ),
        "delete_directory" => spec(&["folder_id"], &[("folder_id", Str)], Required),
        "create_document" => spec(
            &["title"],
            &[("title", Str), ("folder_id", StrOrNull)],
            Required,
        ),
        "upload_document" | "get_document" | "get_document_info" | "delete_document" => {
            spec(&["document_id"], &[("document_id", Str)], Required)
        }
        "rename_document" => spec(
            &["document_id", "new_title"],
            &[("document_id", Str), ("new_title", Str)],
            Required,
        ),
        "move_document" => spec(
            &["document_id", "target_folder_id"],
            &[("document_id", Str), ("target_folder_id", StrOrNull)],
            Required,
        ),
        "lockdown" => spec(&["status"], &[("status", Bool)], Required),
        "list_users" | "list_groups" | "shutdown" => spec(&[], &[], Required),
        "create_user" => spec(
            &["username", "password"],
            &[
                ("username", Str),
                ("password", Str),
                ("nickname", Str),
                ("groups", Array),
            ],
            Required,
        ),
        "view_audit_logs" => spec(
            &["offset", "count"],
            &[("offset", Int), ("count", Int), ("filters", Object)],
            Required,
        ),
        "get_2fa_status" if protocol >= 5 => spec(&[], &[], Required),
        "setup_2fa" if protocol >= 5 => spec(&["method"], &[("method", Str)], Required),
        "validate_2fa" if protocol >= 5 => {
            passes_lockdown(spec(&["token"], &[("token", Str)], Required))
        }
        "disable_2fa" if protocol >= 5 => spec(&["password"], &[("password", Any)], Required),
        _ => return None,
    })
}

/// Why the envelope's credentials were refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AuthFault {
    /// No username or no token.
    Missing,
    /// Token malformed, forged, expired, for another user, or user gone.
    Invalid,
}

/// Handle one request; `None` when the connection is over.
pub(crate) async fn handle(conn: &mut Conn, request: Map<String, Value>) -> Option<()> {
    let protocol = conn.shared.config.protocol_version;
    let Some(action) = request.get("action").and_then(Value::as_str) else {
        return answer(conn, Reply::bare(400, "No action specified in request")).await;
    };
    let Some(spec) = lookup(action, protocol) else {
        return answer(conn, Reply::bare(400, format!("Unknown action: {action}"))).await;
    };
    let data = request.get("data").cloned().unwrap_or(Value::Null);
    if let Err(refusal) = spec.schema.check(&data) {
        return answer(conn, Reply::new(400, refusal.message, refusal.data)).await;
    }
    let data = if data.is_object() { data } else { json!({}) };
    let user = authenticate(conn, &request);
    let (locked, bypass) = {
        let store = conn.shared.store();
        let bypass = user.as_ref().is_ok_and(|u| store.may(u, "bypass_lockdown"));
        (store.lockdown, bypass)
    };
    if locked && !spec.lockdown_ok && !bypass {
        return answer(conn, Reply::bare(999, "lockdown")).await;
    }
    if let (Required, Err(fault)) = (spec.auth, &user) {
        return answer(conn, auth_refusal(action, *fault, protocol)).await;
    }
    let user = user.ok();
    let reply = match action {
        "upload_file" => return transfer::upload(conn, &data).await,
        "download_file" => return transfer::download(conn, &data).await,
        "register_listener" => {
            conn.listener = true;
            Reply::bare(200, "registered as a listener")
        }
        "server_info" => server_info(conn),
        "lockdown" => lockdown(conn, user.as_deref().unwrap_or_default(), &data),
        _ => match account::handle(&conn.shared, action, user.as_deref(), &request, &data) {
            Some(reply) => reply,
            None => files::handle(
                &conn.shared,
                action,
                user.as_deref().unwrap_or_default(),
                &data,
            ),
        },
    };
    log(conn, action, user, reply.code);
    let halt = action == "shutdown" && reply.code == 200;
    answer(conn, reply).await?;
    if halt {
        conn.shared.halt.notify_one();
    }
    Some(())
}

/// Send `reply` (after the bad-password delay when it asks for one).
pub(crate) async fn answer(conn: &mut Conn, reply: Reply) -> Option<()> {
    if reply.delayed {
        conn.pause(conn.shared.config.bad_password_delay).await?;
    }
    let message = json!({
        "code": reply.code,
        "data": reply.data,
        "message": reply.message,
        "timestamp": conn.shared.now(),
    });
    conn.send_text(message.to_string()).await
}

/// The envelope's user, if its token is valid now.
fn authenticate(conn: &Conn, request: &Map<String, Value>) -> Result<String, AuthFault> {
    let field = |k: &str| request.get(k).and_then(Value::as_str).unwrap_or_default();
    let (username, token) = (field("username"), field("token"));
    if username.is_empty() || token.is_empty() {
        return Err(AuthFault::Missing);
    }
    let shared = &conn.shared;
    match jwt::verify(&shared.jwt_key, token, shared.now()) {
        Ok(owner) if owner == username && shared.store().users.contains_key(username) => Ok(owner),
        _ => Err(AuthFault::Invalid),
    }
}

/// Protocol 3 refuses document actions with 403 and the rest with 401;
/// protocol 5 names missing credentials.
fn auth_refusal(action: &str, fault: AuthFault, protocol: u32) -> Reply {
    if protocol >= 5 && fault == AuthFault::Missing {
        return Reply::bare(401, "Authentication required");
    }
    let document_action = action.contains("document");
    let code = if protocol < 5 && document_action {
        403
    } else {
        401
    };
    Reply::bare(code, "Invalid user or token")
}

fn server_info(conn: &Conn) -> Reply {
    let config = &conn.shared.config;
    Reply::new(
        200,
        "Server information retrieved successfully",
        json!({
            "server_name": "CFMS WebSocket Server",
            "version": config.version(),
            "protocol_version": config.protocol_version,
            "lockdown": conn.shared.store().lockdown,
        }),
    )
}

fn lockdown(conn: &Conn, user: &str, data: &Value) -> Reply {
    if !conn.shared.store().may(user, "apply_lockdown") {
        return Reply::bare(403, "Permission denied");
    }
    conn.shared
        .set_lockdown(data["status"].as_bool().unwrap_or_default());
    Reply::bare(200, "Success")
}

fn log(conn: &Conn, action: &str, username: Option<String>, result: u16) {
    let entry = AuditEntry {
        action: action.to_owned(),
        username,
        result,
        logged_time: conn.shared.now(),
    };
    conn.shared.store().audit.push(entry);
}
