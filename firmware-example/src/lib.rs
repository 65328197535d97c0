//! Front-panel firmware for a NAS, shared by the board and host builds.
//!
//! - [`panel`]: the pure rendering of a status snapshot to text lines.
//! - [`settings`]: URL and credentials, fixed at build time.
//! - [`app`]: the connection loop (resolve, TCP, WebSocket, fnOS login,
//!   periodic status requests, reconnect with backoff).
//!
//! The binaries only bring up hardware (or a TAP device), the embassy-net
//! stack and a random source, then call [`app::run`].
#![no_std]

pub mod app;
pub mod panel;
pub mod settings;
#[cfg(feature = "tls")]
pub mod tls;
