//! State shared by all connections of one server: accounts, logins (with
//! their secret S and tokens), pending two-factor challenges, access-code
//! cookies, the file trees, uploads announced by `file.checkUpload`,
//! download tickets handed out by `file.download`, and the clock the live
//! figures run on.
//!
//! A login outlives the connection that made it: `user.authToken` and
//! `user.tokenLogin` on a later connection find it by token and reuse its S.
//! The HTTP side (`POST /upload`, `GET /multiple-download`) meets the
//! WebSocket side only here.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use super::crypto::{ServerKey, random_secret, random_token};
use super::files::{FileTree, Overwrite};
use super::{Config, Health};

/// Identifies a login in [`Registry::logins`].
pub type LoginId = u64;

/// One successful password login and what it handed out.
#[derive(Debug, Clone)]
pub struct Login {
    /// The account's uid.
    pub uid: u32,
    /// Whether the account is an administrator.
    pub admin: bool,
    /// The account name.
    pub user: String,
    /// The HMAC key S.
    pub secret: [u8; 16],
    /// `backId`: hex8(login time) + hex8(login counter).
    pub back_id: String,
    /// The short token for `user.authToken`, while valid.
    pub token: Option<String>,
    /// The long token for `user.tokenLogin` (`stay: true`), while valid.
    pub long_token: Option<String>,
    /// When the password login was made (long tokens age from here).
    pub issued: Instant,
}

/// A password login waiting for its two-factor code.
#[derive(Debug, Clone)]
pub struct PendingTwoFactor {
    /// The account name that passed the password check.
    pub user: String,
    /// Whether the login asked for a long token.
    pub stay: bool,
}

/// An upload `file.checkUpload` agreed to, waiting for its `POST /upload`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PendingUpload {
    /// The announced size; the uploaded file must have exactly this many bytes.
    pub size: u64,
    /// The `overwrite` mode of the check.
    pub overwrite: Overwrite,
}

/// What a `file.download` token lets one `GET /multiple-download` fetch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DownloadTicket {
    /// The owner of the file.
    pub uid: u32,
    /// The file's full path; read when the download starts.
    pub path: String,
}

/// The mutable part of the shared state.
#[derive(Debug, Default)]
pub struct Registry {
    /// Logins by id.
    pub logins: HashMap<LoginId, Login>,
    /// Two-factor challenges by `accessToken`.
    pub pending_two_factor: HashMap<String, PendingTwoFactor>,
    /// Cookies handed out by `/access_code_verify`.
    pub access_cookies: Vec<String>,
    /// File trees by uid.
    pub trees: HashMap<u32, FileTree>,
    /// Checked uploads by (uid, normalized full path of the upload name).
    pub pending_uploads: HashMap<(u32, String), PendingUpload>,
    /// Unused download tickets by token.
    pub downloads: HashMap<String, DownloadTicket>,
    next_login: LoginId,
}

impl Registry {
    /// Record a login and return its id.
    pub fn add_login(&mut self, user: &str, uid: u32, admin: bool, stay: bool) -> LoginId {
        self.next_login += 1;
        let id = self.next_login;
        let back_id = format!("{:08x}{:08x}", unix_now() as u32, id as u32);
        let login = Login {
            uid,
            admin,
            user: user.to_owned(),
            secret: random_secret(),
            back_id,
            token: Some(random_token(32)),
            long_token: stay.then(|| random_token(40)),
            issued: Instant::now(),
        };
        self.logins.insert(id, login);
        id
    }

    /// The login whose short token is `token`.
    pub fn by_token(&self, token: &str) -> Option<LoginId> {
        self.logins
            .iter()
            .find(|(_, l)| l.token.as_deref() == Some(token))
            .map(|(id, _)| *id)
    }

    /// The login whose long token is `long_token`.
    pub fn by_long_token(&self, long_token: &str) -> Option<LoginId> {
        self.logins
            .iter()
            .find(|(_, l)| l.long_token.as_deref() == Some(long_token))
            .map(|(id, _)| *id)
    }

    /// The file tree of `uid`, created on first use.
    pub fn tree(&mut self, uid: u32) -> &mut FileTree {
        self.trees
            .entry(uid)
            .or_insert_with(|| FileTree::sample(uid, unix_now()))
    }
}

/// Everything one server's connections share.
#[derive(Debug)]
pub struct Shared {
    /// The server's configuration.
    pub config: Config,
    /// The RSA key pair.
    pub key: ServerKey,
    /// When the server started (drives uptime and the live figures).
    pub started: Instant,
    /// Logins, challenges, cookies, file trees.
    pub registry: Mutex<Registry>,
    /// The health knobs now.
    pub health: Mutex<Health>,
}

impl Shared {
    /// Lock the registry; a poisoned lock only means another connection
    /// task panicked, and the data is still consistent enough for a test server.
    pub fn registry(&self) -> std::sync::MutexGuard<'_, Registry> {
        self.registry.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The health knobs now.
    pub fn health(&self) -> Health {
        *self.health.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Seconds since the Unix epoch.
pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}
