//! # naslink-core
//!
//! A `#![no_std]`, allocation-free, **sans-I/O** client for NAS WebSocket APIs.
//! It never touches a socket or a clock: the caller feeds received bytes and
//! the current time in, and drains bytes to transmit, events and the next
//! timeout out. The same core runs in firmware (through `naslink-embassy`) and
//! on a PC (through `naslink-tokio`).
//!
//! Layers, one folder each:
//!
//! - [`ws`]: RFC 6455 WebSocket client — handshake, framing, masking,
//!   fragmentation, control frames and the close handshake.
//! - [`time`]: [`Instant`](time::Instant) and [`Duration`](time::Duration),
//!   plain integers the caller supplies.
//! - [`random`]: the [`Entropy`](random::Entropy) trait through which the
//!   caller supplies randomness.
//!
//! ```
//! use naslink_core::time::{Duration, Instant};
//!
//! let connected_at = Instant::from_secs(10);
//! let deadline = connected_at + Duration::from_secs(30);
//! assert_eq!(deadline - connected_at, Duration::from_secs(30));
//! ```
#![no_std]
#![forbid(unsafe_code)]

pub mod cfms;
pub mod connection;
mod decimal;
mod error;
pub mod fnos;
pub mod random;
pub mod time;
pub mod ws;

pub use connection::Connection;
pub use error::InsufficientSize;
