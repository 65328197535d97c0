//! Front-panel firmware for a NAS, shared by the board and host builds.
//!
//! - [`panel`]: the pure rendering of a status snapshot to text lines.
//! - [`settings`]: URL and credentials, fixed at build time.
//! - [`app`]: the connection loop (resolve, TCP, WebSocket, reconnect with
//!   backoff), shared by both server kinds.
//! - `fnos_watch` (default) or `cfms_watch` (feature `cfms`): log in,
//!   ask for the status periodically, fill in the snapshot.
//!
//! The binaries only bring up hardware (or a TAP device), the embassy-net
//! stack and a random source, then call [`app::run`].
#![no_std]

pub mod app;
#[cfg(feature = "cfms")]
pub mod cfms_watch;
#[cfg(not(feature = "cfms"))]
pub mod fnos_watch;
pub mod panel;
pub mod settings;
#[cfg(feature = "tls")]
pub mod tls;
