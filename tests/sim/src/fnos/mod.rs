//! # fnOS emulator
//!
//! A server that behaves like an fnOS NAS on loopback, for naslink's tests,
//! the host example's demo, and firmware developers without a NAS. It
//! speaks the WebSocket API of `shared/protocol/fnos.md`:
//!
//! - `util.crypto.getRSAPub` hands out a real 2048-bit RSA public key and
//!   this connection's `si` **as a string**; `util.getSI` returns `si` alone.
//! - `{"req":"encrypted","iv","rsa","aes"}` is opened (RSA PKCS#1 v1.5, then
//!   AES-256-CBC/PKCS#7) and the inner `user.login` checked: `si` must be the
//!   connection's string (a number answers errno 8192), a wrong password
//!   answers errno 131072. Success returns `token`, `longToken` (with
//!   `stay`), `backId` and `secret` = base64(AES-256-CBC(client key, client
//!   IV, PKCS#7(S))) for a fresh 16-byte S.
//! - Once logged in, every request but `ping`, `util.crypto.getRSAPub`,
//!   `util.getSI` and `encrypted` must be `base64(HMAC-SHA256(S, json)) + json`,
//!   checked over the bytes as received; anything else answers errno 65534.
//! - `user.authToken` / `user.tokenLogin` on a new connection are checked
//!   against the S of the login that issued the token.
//! - Front-panel commands (`appcgi.sysinfo.*`, `appcgi.resmon.*` for admins,
//!   `stor.*`, `file.*`, `user.*`) answer from a small virtual file tree and
//!   figures that change over time; `file.ls`, `stor.listDisk` and
//!   `stor.listStor` answer in several frames.
//!
//! ## Connection states
//!
//! Each connection starts **anonymous** with a fresh `si`: only `ping`,
//! `util.crypto.getRSAPub`, `util.getSI`, `encrypted`,
//! `appcgi.sysinfo.getHostName`, `user.authToken` and `user.tokenLogin` are
//! served (other commands answer errno 135168). A successful `user.login`
//! (or `user.2fa.loginVerify` after a two-factor challenge), `user.authToken`
//! or `user.tokenLogin` makes it **signed in** to a login, whose S then checks
//! every frame. `user.logout` ends the login; a [`Push::Kicked`] ends all
//! logins; a [`Push::TokenExpired`] revokes the short tokens and signs every
//! connection out, leaving long tokens (and their S) usable with
//! `user.tokenLogin`.
//!
//! Before the WebSocket upgrade, optional HTTP modes answer first: an
//! HTTPS redirect ([`Config::https_redirect`]) and an access-code gate
//! ([`Config::access_code`]) with its `GET /access_code_verify`.
//!
//! ## Example
//!
//! ```no_run
//! use naslink_sim::fnos::{Config, KeySource, Push, Server};
//!
//! # async fn demo() -> anyhow::Result<()> {
//! let handle = Server::start(Config { key: KeySource::Fixture, ..Config::default() }).await?;
//! println!("connect to {}", handle.url()); // ws://127.0.0.1:PORT/websocket?type=main
//! // ... log in as admin/admin with any fnOS client ...
//! handle.push(Push::StorageChanged);
//! handle.drop_connections();
//! handle.shutdown().await;
//! # Ok(()) }
//! ```
//!
//! From the command line:
//! `cargo run -p naslink-sim -- fnos --listen 127.0.0.1:5666 --user admin --password admin`.
//!
//! Choices the specification leaves open, made here: commands that need a
//! login answer errno 135168 on an anonymous connection; malformed frames,
//! envelopes and paths answer errno 8192; a non-admin asking for admin-only
//! commands gets errno 4352.
//!
//! Not emulated: the `wss://` port the HTTPS redirect points to, HTTP
//! upload/download (`/upload`, `/multiple-download`, `file.checkUpload`
//! answers errno 10000002), task-progress pushes, and silence on
//! WebSocket-level PING frames (tungstenite answers them, whereas a real NAS
//! reportedly does not).

mod cli;
mod connection;
mod crypto;
mod figures;
mod files;
mod handlers;
mod http_gate;
mod server;
mod state;

use std::net::SocketAddr;
use std::time::Duration;

pub use cli::{Args, Flags, run_cli};
pub use crypto::{FIXTURE_KEY_PEM, KeySource};
pub use server::{Handle, Server};

/// errno: the request is malformed (also a numeric `si`).
pub const ERRNO_BAD_PARAMETER: u64 = 8192;
/// errno: the account may not do this (non-admin asking for admin data).
pub const ERRNO_NO_PERMISSION: u64 = 4352;
/// errno: the signature is missing or wrong.
pub const ERRNO_BAD_SIGNATURE: u64 = 65534;
/// errno: wrong user name or password.
pub const ERRNO_WRONG_PASSWORD: u64 = 131072;
/// errno: the token is unknown or expired, or the connection is not signed in.
pub const ERRNO_INVALID_CREDENTIAL: u64 = 135168;
/// errno: no such command.
pub const ERRNO_UNKNOWN_METHOD: u64 = 10_000_002;
/// errno: the two-factor code is wrong.
pub const ERRNO_WRONG_TWO_FACTOR_CODE: u64 = 102_570_104;
/// errno: the two-factor `accessToken` is unknown or used up.
pub const ERRNO_TWO_FACTOR_EXPIRED: u64 = 102_570_109;

/// An account the emulator accepts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    /// Login name.
    pub user: String,
    /// Password.
    pub password: String,
    /// uid; the user's homes are `vol{v}/{uid}/`.
    pub uid: u32,
    /// Administrators may read `appcgi.resmon.*` and the admin `stor.*` commands.
    pub admin: bool,
}

impl Account {
    /// An account with the given name, password, uid and admin flag.
    pub fn new(user: &str, password: &str, uid: u32, admin: bool) -> Self {
        Self {
            user: user.to_owned(),
            password: password.to_owned(),
            uid,
            admin,
        }
    }
}

/// The HTTPS-redirect mode: plain upgrades are answered with a redirect.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Redirect {
    /// HTTP status, 301–308.
    pub status: u16,
    /// Port in the `Location: https://HOST:PORT/websocket?...` header.
    pub https_port: u16,
}

impl Default for Redirect {
    fn default() -> Self {
        Self {
            status: 301,
            https_port: 5667,
        }
    }
}

/// Misbehaviour on purpose, to test a client's error handling.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Faults {
    /// Wait this long before every answer frame.
    pub answer_delay: Duration,
    /// Drop the TCP connection (no close frame) after sending this many frames.
    pub drop_after_frames: Option<u64>,
    /// Send one frame of non-JSON text after this many frames.
    pub garbage_after_frames: Option<u64>,
}

/// How the emulator behaves. `Config::default()` is an admin account
/// `admin`/`admin` (uid 1000) on `127.0.0.1:0` with a freshly generated key.
#[derive(Debug, Clone)]
pub struct Config {
    /// Address to listen on; port 0 picks a free one (see [`Handle::url`]).
    pub listen: SocketAddr,
    /// Accounts that may log in.
    pub accounts: Vec<Account>,
    /// Where the RSA key comes from ([`KeySource::Fixture`] is fastest).
    pub key: KeySource,
    /// `hostName` in `appcgi.sysinfo.getHostName`.
    pub host_name: String,
    /// `trimVersion` (the fnOS version).
    pub trim_version: String,
    /// `machineId` (40 hex characters).
    pub machine_id: String,
    /// Answer `{"req":"ping"}` with `{"res":"pong"}` (some firmware reportedly does not).
    pub pong: bool,
    /// When set, password logins get a two-factor challenge and this code
    /// completes them in `user.2fa.loginVerify`.
    pub two_factor_code: Option<String>,
    /// When set, every upgrade is answered with this HTTPS redirect.
    pub https_redirect: Option<Redirect>,
    /// When set, upgrades need the cookie `GET /access_code_verify` gives for this code.
    pub access_code: Option<String>,
    /// Send `{"sysNotify":"storageChanged"}` to signed-in connections this often.
    pub push_every: Option<Duration>,
    /// File entries per `file.ls` frame (multi-frame answers).
    pub entries_per_frame: usize,
    /// Deliberate faults.
    pub faults: Faults,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            accounts: vec![Account::new("admin", "admin", 1000, true)],
            key: KeySource::Generate,
            host_name: "fnos-sim".into(),
            trim_version: "0.9.27".into(),
            machine_id: "744d46cccc6b4ababf2ffbe273a55cc620fee21f".into(),
            pong: true,
            two_factor_code: None,
            https_redirect: None,
            access_code: None,
            push_every: None,
            entries_per_frame: 4,
            faults: Faults::default(),
        }
    }
}

/// A server-initiated frame, sent to every signed-in connection.
#[derive(Debug, Clone, PartialEq)]
pub enum Push {
    /// `{"sysNotify":"kicked"}`; every login ends (tokens and S are forgotten).
    Kicked,
    /// `{"sysNotify":"storageChanged"}`.
    StorageChanged,
    /// `{"sysNotify":"tokenExpired"}`; short tokens are revoked and
    /// connections signed out; long tokens still work with `user.tokenLogin`.
    TokenExpired,
    /// `{"sysNotify":"privilegeChanged","privilege":VALUE}`.
    PrivilegeChanged(String),
    /// Any JSON value, sent as is.
    Raw(serde_json::Value),
}

impl Push {
    /// The frame this push sends.
    pub fn frame(&self) -> serde_json::Value {
        use serde_json::json;
        match self {
            Self::Kicked => json!({"sysNotify": "kicked"}),
            Self::StorageChanged => json!({"sysNotify": "storageChanged"}),
            Self::TokenExpired => json!({"sysNotify": "tokenExpired"}),
            Self::PrivilegeChanged(p) => json!({"sysNotify": "privilegeChanged", "privilege": p}),
            Self::Raw(v) => v.clone(),
        }
    }
}
