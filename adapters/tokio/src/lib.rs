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
//! Requests in flight when a connection dies fail with a clear error and
//! are never resent. Passwords, tokens, secrets and signatures are never
//! logged (`tracing` spans name the URL and user only).
//!
//! Not done yet:
//! - two-factor logins (both clients stop with an error naming it);
//! - an opt-in resend of idempotent requests after a reconnect;
//! - fnOS file transfers over its HTTP endpoints.
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

pub mod cfms;
pub mod fnos;
pub mod link;
pub mod tls;

pub use cfms::{CfmsClient, CfmsError, CfmsEvent, CfmsOptions};
pub use fnos::{FnosClient, FnosError, FnosEvent, FnosOptions, FnosReply};
pub use link::{ConnectError, LinkOptions};
pub use naslink_core as core;
pub use tls::Trust;
