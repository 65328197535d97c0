//! CFMS client session, protocols 3–5 (text) and 13 (frames): sans-I/O,
//! `no_std`, no allocation.
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
//! - [`p13`]: protocol 13's framed, multiplexed wire (frames, streams,
//!   replay protection, negotiation, events).
//!
//! - [`connection`]: the commands on a
//!   [`Connection`](crate::connection::Connection) carrying a [`Session`],
//!   the way every adapter drives it: the session logs in by itself
//!   ([`Config::login`], [`State`]) and its [`ConnectionEvent`]s carry
//!   their reply bodies and download data (example there). This is the
//!   only way to drive a session.
//!
pub mod auth;
mod b64;
pub mod connection;
pub mod decrypt;
pub mod download;
pub mod envelope;
mod hex;
pub mod ops;
pub mod p13;
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
    RequestError, Sent, Session, State,
};
pub use status::Status;
pub use upload::{UploadError, UploadSource, UploadWrite, UploadWriteError, sha256_of};
