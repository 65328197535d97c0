//! # naslink-tokio
//!
//! The `naslink` driver for tokio: sockets, TLS (rustls), timers and tasks
//! live here; every protocol rule stays in `naslink-core`.
//!
//! - [`link`]: one WebSocket connection over TCP or TLS, with fnOS's HTTPS
//!   redirect reported (or followed) and its access-code gate.
//! - [`tls`]: which certificates are trusted — the system store by default
//!   (webpki-roots when it is empty or unreadable), a CA file, a SHA-256
//!   pin, or a loudly named insecure switch.
//! - [`fnos`]: [`FnosClient`], a cheap-to-clone handle to an fnOS session
//!   in a background task with heartbeat, reconnect with backoff and
//!   jitter, and token re-login.
//! - [`cfms`]: [`CfmsClient`], the same for CFMS: server_info, login,
//!   answers matched first-in first-out, lockdown pushes, reconnect
//!   keeping the token (the core refreshes it and logs in again when it is
//!   rejected), and streamed transfers: [`CfmsClient::download`] (ciphertext
//!   to a temporary file, decryption pass with SHA-256 checks, rename into
//!   place on success) and [`CfmsClient::upload`], both with progress.
//!
//! - fnOS file transfers over its HTTP endpoints:
//!   [`FnosClient::upload`](fnos::FnosClient::upload) (`file.checkUpload`,
//!   then a signed multipart `POST /upload` streamed from disk) and
//!   [`FnosClient::download`](fnos::FnosClient::download) (`file.download`,
//!   then `GET` into a temporary file renamed into place when complete).
//! - [`two_factor`]: where two-factor codes come from ([`TwoFactor`]: a
//!   fixed code or a prompt); both clients ask it when a login is
//!   challenged, and again after a refused code.
//!
//! A misbehaving server is bounded everywhere: a WebSocket protocol fault
//! ends the connection at once with its close code and RFC 6455 rule; the
//! first connect and login finish or fail within the client's
//! `connect_timeout` and `first_attempts`; an fnOS answer is capped in
//! bytes and frames (`max_answer_bytes`, `max_answer_frames`); redirects
//! and download URLs stay on the server's host and never drop TLS; a
//! download lands in an exclusively created temporary file that is removed
//! on any failure or cancellation, and only a body whose end the server
//! announced is renamed into place.
//!
//! Requests in flight when a connection dies fail with a clear error and
//! are never resent, unless the caller marked them idempotent
//! (`request_idempotent`): those go out again after the reconnect, within
//! their deadline. Passwords, tokens, secrets and signatures are never
//! logged (`tracing` spans name the URL and user only).
//!
//! ```no_run
//! use naslink_tokio::fnos::{FnosClient, FnosOptions};
//!
//! # async fn demo() -> Result<(), naslink_tokio::fnos::FnosError> {
//! let nas = FnosClient::connect(FnosOptions::new(
//!     "ws://nas.local:5666/websocket?type=main",
//!     "admin",
//!     "password",
//! ))
//! .await?;
//! let host = nas.request("appcgi.sysinfo.getHostName", None).await?;
//! println!("{:?}", host.get("hostName"));
//! # Ok(()) }
//! ```

mod beside;
pub mod cfms;
pub mod fnos;
mod http;
pub mod link;
mod pump;
pub mod tls;
pub mod two_factor;

pub use cfms::{CfmsClient, CfmsError, CfmsEvent, CfmsOptions};
pub use fnos::{FnosClient, FnosError, FnosEvent, FnosOptions, FnosReply};
pub use link::{ConnectError, LinkOptions};
pub use naslink_core as core;
pub use tls::Trust;
pub use two_factor::TwoFactor;
