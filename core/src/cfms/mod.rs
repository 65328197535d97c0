//! CFMS protocol 3–5 client session: sans-I/O, `no_std`, no allocation.
//!
//! The session works at the level of WebSocket *messages*: it writes
//! requests into caller buffers and consumes received messages, whole or in
//! pieces (download chunks are about 2.8 MB and are decoded as they stream
//! in). The WebSocket layer (answering PINGs, framing) lives in `ws`.
//!
//! - [`envelope`], [`status`]: the wire format (requests written,
//!   responses viewed in place, escapes decoded on demand).
//! - [`queue`]: responses matched to requests first-in first-out.
//! - [`session`]: server_info / login / 2FA / refresh / re-login /
//!   lockdown, and the operations ([`ops`]).
//! - [`upload`], [`download`], [`decrypt`]: the file transfer state
//!   machines and the AES-256-CFB8 + SHA-256 verification pass.
//!
//! - [`connection`]: the commands on a
//!   [`Connection`](crate::connection::Connection) carrying a [`Session`],
//!   the way every adapter drives it: the session logs in by itself
//!   ([`Config::login`], [`State`]) and its [`ConnectionEvent`]s carry
//!   their reply bodies and download data (example there).
//!
//! The session can also be driven directly (below; the core's tests
//! still do, no runtime does): after every input, drain [`Session::poll_transmit`] and
//! [`Session::poll_event`], then sleep until [`Session::poll_timeout`].
//!
//! ```
//! use naslink_core::cfms::{Buffers, Config, Event, MessageKind, Session};
//! use naslink_core::time::Instant;
//!
//! let (mut rx, mut hashes) = ([0u8; 4096], [[0u8; 32]; 4]);
//! let mut cfms: Session<'_, 4> = Session::new(
//!     Config::default(),
//!     Buffers { rx: &mut rx, chunk_hashes: &mut hashes },
//! );
//! let now = Instant::from_secs(1);
//! let mut tx = [0u8; 512];
//! let sent = cfms.server_info(now, &mut tx).unwrap();
//! // … send tx[..sent.len] as a text message; the server answers:
//! let answer = br#"{"code": 200, "data": {"server_name": "CFMS WebSocket Server",
//!     "version": "0.1.0.250919_alpha", "protocol_version": 3, "lockdown": false},
//!     "message": "Server information retrieved successfully", "timestamp": 1795304844.44}"#;
//! cfms.handle_message(now, MessageKind::Text, answer, &mut |_ciphertext: &[u8]| {}).unwrap();
//! assert!(matches!(cfms.poll_event(), Some(Event::ServerInfo { protocol_version: 3, .. })));
//! let sent = cfms.login(now, "admin", "NewAdminPass-123", &mut tx).unwrap();
//! assert!(tx[..sent.len].starts_with(br#"{"action":"login""#));
//! ```
pub mod auth;
mod b64;
pub mod connection;
pub mod decrypt;
pub mod download;
pub mod envelope;
mod hex;
pub mod ops;
pub mod queue;
pub mod session;
pub mod status;
pub mod upload;

pub use crate::json::{InsufficientSize, JsonError, JsonStr, Value};
pub use auth::{
    Credentials, CredentialsTooLong, LoginError, MAX_PASSWORD, MAX_TOKEN, MAX_USERNAME,
    TwoFactorMethod,
};
pub use decrypt::{DecryptError, FileDecryptor};
pub use download::{DownloadError, DownloadKey, MAX_FIELD_LEN, TransferField};
pub use envelope::{EnvelopeError, Incoming, MessageKind, Response, ServerAction, Validator};
pub use queue::Seq;
pub use session::{
    Buffers, Config, ConnectionEvent, Desync, EVENTS, Error, Event, NoAnswer, PROTOCOLS,
    RequestError, Sent, Session, State, Transmit,
};
pub use status::Status;
pub use upload::{UploadError, UploadSource, UploadWrite, UploadWriteError, sha256_of};
