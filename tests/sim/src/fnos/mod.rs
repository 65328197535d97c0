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
//! - The health panel's commands (`appcgi.resmon.cpu/gpu/disk/sysWarn`,
//!   `stor.listDisk/diskHealth/diskSmart/general/listStor/state`,
//!   `appcgi.dockermgr.containerList/stats`, `appcgi.sac.ups.v1.status`,
//!   `notify.unreadTotal`, `appcgi.sysinfo.getHardwareInfo`, and
//!   `appcgi.finder.fileSearch` with `result:"doing"` frames) answer in the
//!   captured shapes, admin-only ones with errno 4352 for other accounts;
//!   [`Health`] makes the NAS unhealthy (see the `panel` module source for
//!   which shapes are guesses).
//! - Files have content: sample files a synthetic one of their stated size
//!   ([`synthetic_byte`], computed when read, never stored), uploaded files
//!   their real bytes. [`Handle::file_content`] reads a file and
//!   [`Handle::put_file`] seeds one.
//! - Upload: `file.checkUpload {path, size, overwrite}` answers
//!   `{"uploadName":NAME}` and remembers the upload; `POST /upload` on the
//!   same port then carries the bytes (multipart field `trim-upload-file`,
//!   headers `Trim-Path`, `Trim-Sign`, `Trim-Token`, `Trim-Overwrite`,
//!   `Trim-Mtim`).
//! - Download: `file.download {files:[PATH]}` answers
//!   `{"url":"/multiple-download?token=TOKEN"}`; `GET` on that URL answers
//!   the file once.
//!
//! ## Connection states
//!
//! Each connection starts **anonymous** with a fresh `si`: only `ping`,
//! `util.crypto.getRSAPub`, `util.getSI`, `encrypted`,
//! `appcgi.sysinfo.getHostName`, `user.authToken` and `user.tokenLogin` are
//! served (other commands answer errno 135168). A successful `user.login`
//! (or `user.2fa.loginVerify` after a two-factor challenge), `user.authToken`
//! or `user.tokenLogin` makes it **signed in** to a login, whose S then checks
//! every frame. `user.logout` ends the login (its short and long token stop
//! working); a [`Push::Kicked`] ends all logins; a [`Push::TokenExpired`]
//! revokes the short tokens and signs every connection out, leaving long
//! tokens (and their S) usable with `user.tokenLogin`.
//! [`Handle::revoke_long_tokens`] revokes every `stay` login's tokens (what
//! a device token's owner does to retire a device), and
//! [`Config::long_token_lifetime`] makes long tokens expire; a revoked or
//! expired long token answers errno 135168.
//!
//! Before the WebSocket upgrade, optional HTTP modes answer first: an
//! HTTPS redirect ([`Config::https_redirect`]) and an access-code gate
//! ([`Config::access_code`]) with its `GET /access_code_verify`. The
//! transfer requests `POST /upload` and `GET /multiple-download` are served
//! in every mode (they carry their own token; the HTTPS port is not
//! emulated) and close their connection after one answer.
//!
//! ## File transfer
//!
//! `file.checkUpload` (signed, signed-in): `path` is the full target path
//! (folder + "/" + name), `size` the byte count, `overwrite` 0 (skip), 1
//! (replace) or 2 (keep both, the default when absent). The answer names
//! the file to upload: the requested name, or for an existing name with
//! `overwrite: 2` the first free `name (n).ext` (`report (1).pdf`). An
//! existing name with `overwrite: 0` answers errno 4102, as does
//! `overwrite: 1` on an existing folder; a missing parent folder 4100;
//! another user's home 4352; a `size` above [`Config::free_space`] 4386;
//! a malformed request 8192. The check is remembered per user and path; a
//! second check of the same path replaces it.
//!
//! `POST /upload` checks, in order (HTTP status, errno of the JSON body):
//! `Trim-Token` is a live login token (401, 135168); `Trim-Sign` is
//! base64(HMAC-SHA256(S, `Trim-Path` exactly as sent)) for that login's S
//! (403, 65534); `Trim-Path` (percent-decoded, then compared without
//! surrounding or doubled slashes) matches a check of the same user, the
//! other headers parse, the body is `multipart/form-data` with a
//! `trim-upload-file` part of exactly the announced size (400, 8192). The
//! body comes by `Content-Length` or chunked, in any number of reads, and
//! is buffered (at most the announced size plus 64 KiB of framing);
//! `Expect: 100-continue` is honoured. `Trim-Overwrite`, when present,
//! overrides the check's mode: a name that appeared in the meantime is
//! replaced only with 1 (else 409, 4102). `Trim-Mtim` sets the modification
//! time (unix seconds; now when absent). Success: `200`, `{"result":"succ"}`,
//! and `file.ls` lists the file with its real size and times.
//!
//! `file.download` takes exactly one existing regular file (missing: errno
//! 4100); a folder or several files answer errno 8192 because a real NAS
//! would zip them, which is not emulated. The token in the URL is random,
//! single-use and bound to the path, which is read when the `GET` arrives.
//! `GET /multiple-download?token=TOKEN` answers `200` with
//! `Content-Type: application/octet-stream`, `Content-Length`,
//! `Content-Disposition: attachment; filename="NAME"` (plus RFC 5987
//! `filename*=UTF-8''...` for a non-ASCII name) and the bytes, written in
//! 64 KiB pieces; `Range` is ignored (a real NAS answers 200 with the whole
//! file too). An unknown or used token answers 404, errno 4100.
//! [`Faults::cut_download_after`] closes the connection mid-body.
//!
//! Every HTTP refusal is `{"result":"fail","errno":N,"errmsg":"..."}`,
//! `errmsg` being the emulator's explanation.
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
//! `cargo run -p naslink-sim -- fnos --listen 127.0.0.1:5666 --user admin --password admin`;
//! an unhealthy NAS: add `--rebuilding-pool 40 --hot-disk 63 --ups-on-battery 20`
//! (see `--help` for every [`Health`] knob).
//!
//! Choices the specification leaves open, made here: commands that need a
//! login answer errno 135168 on an anonymous connection; malformed frames,
//! envelopes and paths answer errno 8192 (so does a missing path in
//! `file.ls`, `file.mkdir`, `file.rm`, `file.mv` and `file.rename`, while
//! `file.checkUpload` and `file.download` answer 4100 as the transfer notes
//! say); a non-admin asking for admin-only commands gets errno 4352.
//!
//! Not emulated: the `wss://` port the HTTPS redirect points to, zipped
//! downloads of folders or several files, ranged downloads, free space that
//! shrinks as files are uploaded, task-progress pushes other than
//! [`Config::task_frames`]'s, and silence on
//! WebSocket-level PING frames (tungstenite answers them, whereas a real NAS
//! reportedly does not).

mod cli;
mod connection;
mod crypto;
mod figures;
mod files;
mod handlers;
mod http_codec;
mod http_gate;
mod panel;
mod server;
mod state;
mod transfer;

use std::net::SocketAddr;
use std::time::Duration;

pub use cli::{Args, Flags, run_cli};
pub use crypto::{FIXTURE_KEY_PEM, KeySource};
pub use files::{FileError, synthetic_byte};
pub use server::{Handle, Server};

/// errno: the file or folder (or an upload's parent folder) does not exist.
pub const ERRNO_NOT_FOUND: u64 = 4100;
/// errno: the upload target exists and `overwrite` is 0.
pub const ERRNO_EXISTS: u64 = 4102;
/// errno: the upload is larger than the free space ([`Config::free_space`]).
pub const ERRNO_NO_SPACE: u64 = 4386;
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
    /// Close a `GET /multiple-download` connection (TCP FIN, nothing more)
    /// after this many body bytes, short of the announced `Content-Length`.
    pub cut_download_after: Option<u64>,
}

/// [`Config::free_space`] by default: 1 TiB, more than any test uploads.
pub const DEFAULT_FREE_SPACE: u64 = 1 << 40;

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
    /// Free space in bytes: `file.checkUpload` refuses a larger `size` with
    /// errno 4386. It also bounds what one `POST /upload` may buffer.
    pub free_space: u64,
    /// Deliberate faults.
    pub faults: Faults,
    /// `file.rm` answers like a long task: `sysNotify` `taskId` and
    /// `taskInfo` frames with its reqid before the final answer (off by
    /// default: clients that resolve a request on its first frame would
    /// take the `taskId` frame for the answer).
    pub task_frames: bool,
    /// The NAS's health as the panel commands report it at start-up
    /// (change it later with [`Handle::set_health`]).
    pub health: Health,
    /// How long a long token works with `user.tokenLogin` after the login
    /// that issued it; `None` (the default): until revoked. fnOS is said
    /// to keep them 30 days (unconfirmed).
    pub long_token_lifetime: Option<Duration>,
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
            free_space: DEFAULT_FREE_SPACE,
            faults: Faults::default(),
            task_frames: false,
            health: Health::default(),
            long_token_lifetime: None,
        }
    }
}

/// The state of vol1's RAID1 pool (`md0` of `sda` and `sdb`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum PoolCondition {
    /// Both members in sync.
    #[default]
    Healthy,
    /// `sdb` is gone; no rebuild runs.
    Degraded,
    /// `sdb` is being rebuilt (`syncAction:"recover"`), this far along.
    Rebuilding {
        /// Percent done.
        percent: u8,
    },
}

/// The UPS.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum UpsCondition {
    /// No UPS attached (the captured answer).
    #[default]
    Absent,
    /// Attached, on mains.
    Online {
        /// Battery charge, percent.
        charge: u8,
    },
    /// Attached, running on battery.
    OnBattery {
        /// Battery charge, percent.
        charge: u8,
    },
}

/// Knobs that make the emulated NAS unhealthy. `Health::default()` is a
/// healthy NAS. Set at start-up in [`Config::health`] or the CLI flags, and
/// at run time with [`Handle::set_health`] (a change to the pool, a disk or
/// a volume pushes `storageChanged` to signed-in connections).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Health {
    /// vol1's pool.
    pub pool: PoolCondition,
    /// `sda`'s temperature in °C (else it follows the live figures, 34–40 °C).
    pub hot_disk: Option<u32>,
    /// `sdb` fails its SMART self-assessment.
    pub failing_disk: bool,
    /// The CPU temperature in °C (else the live figures, 42–48 °C).
    pub cpu_temperature: Option<u32>,
    /// The UPS.
    pub ups: UpsCondition,
    /// The `nextcloud` container is stopped (`exited`).
    pub stopped_container: bool,
    /// Unread system warnings (`appcgi.resmon.sysWarn`, `notify.unreadTotal`).
    pub unread_warnings: u32,
    /// vol1 this many percent full (else the file tree decides).
    pub volume_used_percent: Option<u8>,
}

impl Health {
    /// Whether going from `self` to `next` changes storage (pool, disks,
    /// volumes): what `storageChanged` announces.
    pub fn storage_differs(&self, next: &Health) -> bool {
        self.pool != next.pool
            || self.hot_disk != next.hot_disk
            || self.failing_disk != next.failing_disk
            || self.volume_used_percent != next.volume_used_percent
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
