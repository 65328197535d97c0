//! What a server is started with.

use std::net::SocketAddr;
use std::time::Duration;

use super::Clock;

/// The version string the real server reported at protocol 3 (and 4).
pub(crate) const VERSION_P3: &str = "0.1.0.250919_alpha";
/// The version string the real server reported at protocol 5 and later.
pub(crate) const VERSION_P5: &str = "0.1.0.251226_alpha";

/// Everything a [`Server`](super::Server) is started with.
///
/// `Config::default()` listens on an ephemeral loopback port over plain
/// `ws://`, at protocol 3, with one account `admin`/`admin` whose password is
/// not expired.
#[derive(Debug, Clone)]
pub struct Config {
    /// Where to listen (port 0 picks a free port).
    pub listen: SocketAddr,
    /// The host name the certificate is made for and the URL names.
    pub host: String,
    /// Serve `wss://` with a fresh self-signed ECDSA P-256 certificate
    /// (like the real server) instead of plain `ws://`.
    pub tls: bool,
    /// `server_info.protocol_version`; 3, 4 and 5 change behaviour; 13 and
    /// above speak protocol 13 (binary stream framing, see the `p13`
    /// module); 6 to 12 are only reported over the 3–5 framing (to test a
    /// client's refusal).
    pub protocol_version: u32,
    /// `server_info.version`; `None` picks the recorded string for the
    /// protocol version.
    pub server_version: Option<String>,
    /// Accounts present at start.
    pub users: Vec<UserSpec>,
    /// How far ahead a token's `exp` lies (3600 s on the real server).
    pub token_lifetime: Duration,
    /// How long an upload/download task id stays valid (3600 s).
    pub task_lifetime: Duration,
    /// Delay before answering a wrong password or 2FA code (3 s).
    pub bad_password_delay: Duration,
    /// Interval between the server's PINGs (20 s).
    pub ping_interval: Duration,
    /// How long a PONG may take before the client is dropped (20 s).
    pub pong_timeout: Duration,
    /// Plaintext bytes per download chunk (2 MiB).
    pub chunk_size: usize,
    /// Start in lockdown.
    pub lockdown: bool,
    /// The wall clock (pin it for deterministic tokens and TOTP codes).
    pub clock: Clock,
    /// Seed the document `hello` the real server creates on first start:
    /// below protocol 5 it has no revision (hidden from listings, 500
    /// `No active revisions found.`); from 5 on it is a 4720-byte file whose
    /// `sha256` is null.
    pub seed_hello: bool,
    /// Secret that `setup_2fa` hands out (base32); random when `None`.
    pub setup_totp_secret: Option<String>,
    /// Backup codes that `setup_2fa` hands out; ten random ones when `None`.
    pub setup_backup_codes: Option<Vec<String>>,
    /// The HS256 key tokens are signed with; random when `None`.
    pub jwt_secret: Option<Vec<u8>>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            host: "localhost".into(),
            tls: false,
            protocol_version: 3,
            server_version: None,
            users: vec![UserSpec::admin("admin")],
            token_lifetime: Duration::from_secs(3600),
            task_lifetime: Duration::from_secs(3600),
            bad_password_delay: Duration::from_secs(3),
            ping_interval: Duration::from_secs(20),
            pong_timeout: Duration::from_secs(20),
            chunk_size: 2 * 1024 * 1024,
            lockdown: false,
            clock: Clock::system(),
            seed_hello: true,
            setup_totp_secret: None,
            setup_backup_codes: None,
            jwt_secret: None,
        }
    }
}

impl Config {
    /// The `server_info.version` this configuration reports.
    pub fn version(&self) -> &str {
        match &self.server_version {
            Some(v) => v,
            None if self.protocol_version >= 5 => VERSION_P5,
            None => VERSION_P3,
        }
    }
}

/// An account present at start.
#[derive(Debug, Clone)]
pub struct UserSpec {
    /// Login name.
    pub username: String,
    /// Current password.
    pub password: String,
    /// `nickname` in the login answer.
    pub nickname: String,
    /// Group names (`sysop` holds every permission, `user` only `set_passwd`).
    pub groups: Vec<String>,
    /// Login answers 403 until `set_passwd` (a freshly created account).
    pub password_expired: bool,
    /// Two-factor login with this base32 TOTP secret (protocol ≥ 5).
    pub totp_secret: Option<String>,
    /// One-time backup codes accepted instead of a TOTP code.
    pub backup_codes: Vec<String>,
}

impl UserSpec {
    /// The administrator as the real server creates it (`管理员`, groups
    /// `sysop` and `user`), with `password` not expired.
    pub fn admin(password: &str) -> Self {
        Self {
            username: "admin".into(),
            password: password.into(),
            nickname: "管理员".into(),
            groups: vec!["sysop".into(), "user".into()],
            password_expired: false,
            totp_secret: None,
            backup_codes: Vec::new(),
        }
    }

    /// An ordinary account (group `user`).
    pub fn user(username: &str, password: &str) -> Self {
        Self {
            username: username.into(),
            password: password.into(),
            nickname: username.into(),
            groups: vec!["user".into()],
            password_expired: false,
            totp_secret: None,
            backup_codes: Vec::new(),
        }
    }
}

/// A deliberate fault in the download of every document, for client tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DownloadFault {
    /// Flip one byte of chunk `index`'s ciphertext (its hash stays right).
    FlipCiphertext {
        /// Chunk index (0-based).
        index: usize,
    },
    /// Flip one byte of chunk `index`'s announced plaintext hash.
    FlipHash {
        /// Chunk index (0-based).
        index: usize,
    },
}
