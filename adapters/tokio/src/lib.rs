//! # naslink-tokio
//!
//! The `naslink` driver for tokio: sockets, TLS (rustls), timers and tasks
//! live here; every protocol rule stays in `naslink-core`.
//!
//! - [`link`]: one WebSocket connection over TCP or TLS, with fnOS's HTTPS
//!   redirect reported (or followed) and its access-code gate.
//! - [`tls`]: which certificates are trusted — web roots by default, a CA
//!   file, a SHA-256 pin, or a loudly named insecure switch.
//! - [`fnos`]: [`FnosClient`], a cheap-to-clone handle to an fnOS session
//!   in a background task with heartbeat, reconnect with backoff and
//!   jitter, and token re-login.
//!
//! Not done yet: a CFMS client (login, FIFO requests, streamed transfers)
//! — the core's `cfms` session is ready for it; resending idempotent
//! requests after a reconnect (requests in flight always fail instead).
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

pub mod fnos;
pub mod link;
pub mod tls;

pub use fnos::{FnosClient, FnosError, FnosEvent, FnosOptions, FnosReply};
pub use link::{ConnectError, LinkOptions};
pub use naslink_core as core;
pub use tls::Trust;
