//! Front-panel firmware for a NAS, shared by the board and host builds.
//!
//! - [`panel`]: the pure rendering of a status snapshot to text lines.
//! - [`display`]: those lines drawn for a 128×64 monochrome display
//!   (`embedded-graphics`), into any display driver or a [`display::Frame`].
//! - `picture` (host build): a frame as a PNG file.
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
pub mod display;
#[cfg(not(feature = "cfms"))]
pub mod fnos_watch;
pub mod panel;
#[cfg(feature = "host")]
pub mod picture;
pub mod settings;
#[cfg(feature = "tls")]
pub mod tls;
