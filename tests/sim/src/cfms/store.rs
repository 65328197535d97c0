//! The server's memory: accounts, groups, folders, documents and tasks.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use rand::RngCore;
use sha2::{Digest, Sha256};

use super::config::{Config, UserSpec};

/// Permissions of group `sysop` at protocol 3 and 4, as recorded.
const SYSOP_P3: &[&str] = &[
    "move",
    "super_create_directory",
    "change_user_groups",
    "super_set_passwd",
    "shutdown",
    "delete_document",
    "delete_group",
    "manage_access",
    "delete_user",
    "rename_directory",
    "create_directory",
    "view_access_rules",
    "set_access_rules",
    "list_users",
    "delete_directory",
    "list_groups",
    "unblock",
    "set_passwd",
    "get_user_info",
    "super_create_document",
    "rename_document",
    "create_group",
    "rename_user",
    "bypass_lockdown",
    "get_group_info",
    "block",
    "rename_group",
    "create_document",
    "set_group_permissions",
    "view_access_entries",
    "super_list_directory",
    "view_audit_logs",
    "apply_lockdown",
    "create_user",
    "manage_system",
];
/// What protocol 5 adds to `sysop`.
const SYSOP_P5_EXTRA: &[&str] = &["debugging", "super_set_user_avatar", "manage_2fa"];

/// What protocol 13 adds to `sysop` (as recorded).
const SYSOP_P13_EXTRA: &[&str] = &[
    "manage_user_status",
    "view_revision",
    "restore",
    "list_user_blocks",
    "delete_revision",
    "list_revisions",
    "purge",
    "manage_keyrings",
    "list_deleted_items",
    "set_current_revision",
];

/// An account.
#[derive(Debug, Clone)]
pub(crate) struct User {
    pub password: String,
    pub nickname: String,
    pub groups: Vec<String>,
    pub password_expired: bool,
    /// Enabled two-factor secret.
    pub totp_secret: Option<String>,
    /// Secret and backup codes handed out by `setup_2fa`, enabled by
    /// `validate_2fa`.
    pub pending_2fa: Option<(String, Vec<String>)>,
    pub backup_codes: Vec<String>,
}

/// A folder; `parent` `None` is the root.
#[derive(Debug, Clone)]
pub(crate) struct Folder {
    pub name: String,
    pub parent: Option<String>,
    pub created_time: f64,
}

/// The stored content of a document.
#[derive(Debug, Clone)]
pub(crate) struct Revision {
    pub data: Arc<Vec<u8>>,
    /// As announced by the uploader (null for an empty upload without one).
    pub sha256: Option<String>,
}

/// A document; only documents with a revision show in listings.
#[derive(Debug, Clone)]
pub(crate) struct Document {
    pub title: String,
    pub folder: Option<String>,
    pub created_time: f64,
    pub last_modified: f64,
    pub revision: Option<Revision>,
}

/// What a task id lets its holder do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TaskKind {
    Upload,
    Download,
}

/// A transfer task (the task id is the credential).
#[derive(Debug, Clone)]
pub(crate) struct Task {
    pub kind: TaskKind,
    pub document: String,
    pub end_time: f64,
    /// Single use: set once a transfer has started or been cancelled
    /// (protocol 13: once an upload succeeded or a download ended).
    pub used: bool,
    /// Protocol 13: the AES-256 key of this download task, made by its
    /// first attempt and reused by every resumed one.
    pub key: Option<[u8; 32]>,
}

/// One audit log entry (`view_audit_logs`).
#[derive(Debug, Clone)]
pub(crate) struct AuditEntry {
    pub action: String,
    pub username: Option<String>,
    pub result: u16,
    pub logged_time: f64,
}

/// Everything the server remembers.
#[derive(Debug, Default)]
pub(crate) struct Store {
    pub users: BTreeMap<String, User>,
    pub groups: BTreeMap<String, BTreeSet<String>>,
    pub folders: BTreeMap<String, Folder>,
    pub documents: BTreeMap<String, Document>,
    pub tasks: BTreeMap<String, Task>,
    pub lockdown: bool,
    pub audit: Vec<AuditEntry>,
    /// Protocol 13: accounts that are not active (login 4003, tokens 401).
    pub disabled: BTreeSet<String>,
    /// Protocol 13: accounts whose password breaks the policy (login 4001).
    pub weak_passwords: BTreeSet<String>,
    /// Protocol 13: failed logins per user name (5 or more: 429).
    pub login_failures: BTreeMap<String, u32>,
    /// Protocol 13: nonces seen, with the time they were recorded.
    pub nonces: BTreeMap<String, f64>,
    /// When the server was set up (protocol 13: the root folder record's
    /// `created_time`).
    pub created_time: f64,
}

impl Store {
    /// The store a fresh server starts with.
    pub fn new(config: &Config, now: f64) -> Self {
        let mut sysop: BTreeSet<String> = SYSOP_P3.iter().map(|p| p.to_string()).collect();
        if config.protocol_version >= 5 {
            sysop.extend(SYSOP_P5_EXTRA.iter().map(|p| p.to_string()));
        }
        if config.protocol_version >= 13 {
            sysop.extend(SYSOP_P13_EXTRA.iter().map(|p| p.to_string()));
        }
        let mut store = Store {
            lockdown: config.lockdown,
            created_time: now,
            ..Store::default()
        };
        store.groups.insert("sysop".into(), sysop);
        store
            .groups
            .insert("user".into(), BTreeSet::from(["set_passwd".to_string()]));
        for spec in &config.users {
            store.add_user(spec);
        }
        if config.seed_hello {
            // Protocol 13's sample document is empty.
            let content = if config.protocol_version >= 13 {
                Vec::new()
            } else {
                hello_content()
            };
            let revision = (config.protocol_version >= 5).then(|| Revision {
                data: Arc::new(content),
                sha256: None,
            });
            store.documents.insert(
                "hello".into(),
                Document {
                    title: "Hello World".into(),
                    folder: None,
                    created_time: now,
                    last_modified: now,
                    revision,
                },
            );
        }
        store
    }

    /// Add (or replace) an account.
    pub fn add_user(&mut self, spec: &UserSpec) {
        self.users.insert(
            spec.username.clone(),
            User {
                password: spec.password.clone(),
                nickname: spec.nickname.clone(),
                groups: spec.groups.clone(),
                password_expired: spec.password_expired,
                totp_secret: spec.totp_secret.clone(),
                pending_2fa: None,
                backup_codes: spec.backup_codes.clone(),
            },
        );
    }

    /// The union of the permissions of `username`'s groups.
    pub fn permissions(&self, username: &str) -> BTreeSet<String> {
        let Some(user) = self.users.get(username) else {
            return BTreeSet::new();
        };
        user.groups
            .iter()
            .filter_map(|g| self.groups.get(g))
            .flatten()
            .cloned()
            .collect()
    }

    /// Does `username` hold `permission`?
    pub fn may(&self, username: &str, permission: &str) -> bool {
        self.permissions(username).contains(permission)
    }

    /// Resolve a folder reference: `None` and `""` are the root; anything
    /// else must name an existing folder. `Err(())` means "not found".
    pub fn folder_ref(&self, id: Option<&str>) -> Result<Option<String>, ()> {
        match id {
            None | Some("") => Ok(None),
            Some(id) if self.folders.contains_key(id) => Ok(Some(id.to_owned())),
            Some(_) => Err(()),
        }
    }

    /// A new task for `document`, valid for `lifetime` seconds.
    pub fn new_task(&mut self, kind: TaskKind, document: &str, now: f64, lifetime: f64) -> String {
        let id = new_id();
        self.tasks.insert(
            id.clone(),
            Task {
                kind,
                document: document.to_owned(),
                end_time: now + lifetime,
                used: false,
                key: None,
            },
        );
        id
    }

    /// Lockdown turning on cancels every task not yet started.
    pub fn cancel_tasks(&mut self) {
        self.tasks.values_mut().for_each(|t| t.used = true);
    }
}

/// A random 64-hex-digit id, the shape of the real server's ids.
pub(crate) fn new_id() -> String {
    let mut bytes = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut bytes);
    hex(&bytes)
}

/// Lower-case hex of `bytes`.
pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Lower-case hex SHA-256 of `data`.
pub(crate) fn sha256_hex(data: &[u8]) -> String {
    hex(&Sha256::digest(data))
}

/// 4720 bytes standing in for the real server's seeded `hello` document
/// (whose content was not recorded, only its size).
fn hello_content() -> Vec<u8> {
    b"Hello, World!\n"
        .iter()
        .copied()
        .cycle()
        .take(4720)
        .collect()
}
