//! # naslink-embassy
//!
//! Runs [`naslink_core`] sessions on microcontrollers: any byte stream that
//! implements [`embedded_io_async::Read`] + [`Write`](embedded_io_async::Write)
//! (an embassy-net `TcpSocket`, an `embedded-tls` connection, a UART bridge)
//! carries the WebSocket, and [`embassy_time`] supplies the clock and timers.
//! No allocator, no panics on network input, every buffer chosen by the
//! application.
//!
//! - [`fnos`]: one fnOS connection ([`fnos::Connection`]): WebSocket
//!   handshake, RSA key exchange and login (token re-authentication on
//!   reconnects), heartbeat, requests in flight up to the session's table,
//!   replies and pushes handed to the application.
//! - [`net`] (feature `embassy-net`): resolve the URL's host and open the
//!   TCP socket on an embassy-net `Stack`.
//!
//! The protocol lives in the core; this crate only moves bytes and time
//! between the socket and the core's state machines.
//!
//! ## Features
//!
//! - `embassy-net` (default): [`net`].
//! - `defmt` / `log`: connection-level diagnostics through either logger.
#![no_std]
#![forbid(unsafe_code)]

pub(crate) mod fmt;
pub mod fnos;
#[cfg(feature = "embassy-net")]
pub mod net;
pub mod time;

pub use naslink_core as core;
