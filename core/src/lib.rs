//! # naslink-core
//!
//! A `#![no_std]`, allocation-free, **sans-I/O** client for NAS WebSocket APIs.
//! It never touches a socket or a clock: the caller feeds received bytes and
//! the current time in, and drains bytes to transmit, events and the next
//! timeout out. The same core runs in firmware (through `naslink-embassy`),
//! on a PC (through `naslink-tokio`), and in any other runtime that moves
//! bytes.
//!
//! Layers, one folder each:
//!
//! - [`ws`]: RFC 6455 WebSocket client — handshake, framing, masking,
//!   fragmentation, control frames and the close handshake.
//! - [`fnos`] and [`cfms`]: the two NAS protocols' sessions (login, signing,
//!   requests and their answers, pushes, transfers).
//! - [`json`]: the one JSON view, writer and error type both protocols
//!   use.
//! - [`connection`]: [`Connection`], a WebSocket client and a session driven
//!   as one — the byte-level API every adapter uses.
//! - Shared machinery, once: [`json`] (the checked borrowed view and the
//!   writer both protocols use), [`pending`] (requests in flight),
//!   [`InsufficientSize`] (every "buffer too small").
//! - [`backoff`]: reconnect delays and attempt counting, the same for
//!   every runtime.
//! - [`time`]: [`Instant`](time::Instant) and [`Duration`](time::Duration),
//!   plain integers the caller supplies.
//! - [`random`]: the [`Entropy`](random::Entropy) trait through which the
//!   caller supplies randomness.
//!
//! # One shape at every layer
//!
//! Commands enqueue and return a handle (an fnOS reqid, a CFMS sequence
//! number); bytes leave only through `poll_transmit`; events only through
//! `poll_event`, borrowing the received message until the next call; time
//! enters through `handle_timeout(now)` and `poll_timeout()` says when;
//! `handle_connect(now)` / `handle_disconnect(now)` / `handle_eof(now)`
//! mark the connection's life; `can_send()` says whether a command fits.
//!
//! **The drain rule:** after any input (bytes, a timeout, a command),
//! drain `poll_event` until `None`, then `poll_transmit` until `None`
//! (handling a message may queue output, such as the next login step;
//! transmitting never raises an event), then sleep until `poll_timeout()`
//! or the next bytes. `handle_input` may take fewer bytes than it is given
//! (an event waits, or a pong is unwritten): pass the rest again after
//! draining.
//!
//! The whole loop, over a blocking `std` socket (the README's "Using the
//! core" is this example):
//!
//! ```no_run
//! use std::io::{ErrorKind, Read, Write};
//! use std::net::TcpStream;
//!
//! use naslink_core::connection::Event;
//! use naslink_core::fnos::{self, Request};
//! use naslink_core::time::Instant;
//! use naslink_core::{Connection, random, ws};
//!
//! fn main() -> Result<(), Box<dyn std::error::Error>> {
//!     let start = std::time::Instant::now();
//!     let now = || Instant::from_millis(start.elapsed().as_millis() as u64);
//!     let rng = random::from_fn(|b: &mut [u8]| b.fill(4)); // use a CSPRNG
//!     let url = ws::Url::parse("ws://nas.local:5666/websocket?type=main")
//!         .map_err(|e| format!("{e:?}"))?;
//!     let mut socket = TcpStream::connect((url.host, url.port))?;
//!     let client = ws::Client::connect(now(), &url, &[], ws::Config::default(), rng,
//!         vec![0; 64 * 1024], vec![0; 16 * 1024]).map_err(|e| format!("{e:?}"))?;
//!     let session: fnos::Session<'_> = fnos::Session::new(fnos::Config::new("admin", "secret"));
//!     let mut conn = Connection::new(client, session);
//!     let (mut buf, mut input) = ([0u8; 4096], 0..0);
//!     loop {
//!         // 1. Events: the login runs by itself; requests once logged in.
//!         while let Some(event) = conn.poll_event() {
//!             match event {
//!                 Event::Session(fnos::Event::LoggedIn { .. }) => {
//!                     conn.send(now(), &Request::get_host_name()).map_err(|e| format!("{e:?}"))?;
//!                 }
//!                 Event::Session(fnos::Event::Reply(reply)) => {
//!                     println!("{:?}", reply.data());
//!                     return Ok(());
//!                 }
//!                 Event::Closed(why) => return Err(format!("closed: {why:?}").into()),
//!                 _ => {}
//!             }
//!         }
//!         // 2. Bytes out.
//!         while let Some(bytes) = conn.poll_transmit(now()) {
//!             let n = socket.write(bytes)?;
//!             conn.advance_transmit(n);
//!         }
//!         // 3. Bytes in, or the next deadline.
//!         if input.is_empty() {
//!             let wait = conn.poll_timeout().map(|at| at.saturating_since(now()).total_millis());
//!             socket.set_read_timeout(wait.map(|ms| std::time::Duration::from_millis(ms.max(1))))?;
//!             match socket.read(&mut buf) {
//!                 Ok(0) => conn.handle_eof(now()),
//!                 Ok(n) => input = 0..n,
//!                 Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
//!                     conn.handle_timeout(now())
//!                 }
//!                 Err(e) => return Err(e.into()),
//!             }
//!         }
//!         input.start += conn.handle_input(now(), &buf[input.clone()]);
//!     }
//! }
//! ```
#![no_std]
#![forbid(unsafe_code)]

pub mod backoff;
pub mod cfms;
pub mod connection;
mod decimal;
mod error;
pub mod fnos;
pub mod json;
pub mod pending;
pub mod random;
pub mod time;
pub mod ws;

pub use connection::Connection;
pub use error::InsufficientSize;
