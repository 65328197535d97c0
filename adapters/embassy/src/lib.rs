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
//! - [`cfms`]: one CFMS connection ([`cfms::Connection`], driving the
//!   core's `Connection<&mut cfms::Session>`): WebSocket handshake, the
//!   session's own opening sequence (server_info, login, two-factor event,
//!   listener) and messages (token refresh, re-login, keep-alive),
//!   requests written straight into the WebSocket, events with their
//!   bodies handed to the application, and downloads into a caller's
//!   `Read + Write + Seek` store over protocols 3–5 (AES-CFB8) and 13
//!   (AES-GCM per chunk, checked then decrypted in two passes through a
//!   block of any size) ([`cfms::download`]).
//! - [`net`] (feature `embassy-net`): resolve the URL's host and open the
//!   TCP socket on an embassy-net `Stack`.
//! - `tls` (feature `embedded-tls`): `wss://` through embedded-tls with
//!   the server's certificate pinned by its SHA-256, and the server made
//!   to prove it holds the certificate's key.
//!
//! The protocol lives in the core; this crate only moves bytes and time
//! between the socket and the core's state machines.
//!
//! ```no_run
//! use embedded_io_async::{Read, Write};
//! use naslink_embassy::core::fnos::{Config, Event, Request, Session};
//! use naslink_embassy::core::{random, ws::Url};
//! use naslink_embassy::fnos::{Buffers, Connection};
//!
//! async fn host_name(socket: impl Read + Write) -> bool {
//!     let url = Url::parse("ws://nas.local:5666/websocket?type=main").unwrap();
//!     let mut session: Session<'_, 4> = Session::new(Config::new("admin", "secret"));
//!     let mut rng = random::from_fn(|b: &mut [u8]| b.fill(0)); // use a CSPRNG
//!     let mut buffers = Buffers::<2048, 2200>::new();
//!     let Ok(mut conn) = Connection::open(socket, &url, &mut session, &mut rng, &mut buffers).await
//!     else {
//!         return false;
//!     };
//!     // Login runs inside next_event; wait for its outcome.
//!     while let Ok(event) = conn.next_event(|e| matches!(e, Event::LoggedIn { .. })).await {
//!         if event {
//!             break;
//!         }
//!     }
//!     let Ok(reqid) = conn.send(&Request::get_host_name()).await else {
//!         return false;
//!     };
//!     conn.next_event(|e| match e {
//!         Event::Reply(reply) if reply.reqid() == Some(reqid) => reply
//!             .data()
//!             .and_then(|d| d.get("hostName"))
//!             .and_then(|v| v.as_str())
//!             .is_some_and(|name| name.eq_str("nas")),
//!         _ => false,
//!     })
//!     .await
//!     .unwrap_or(false)
//! }
//! ```
//!
//! ## Features
//!
//! - `embassy-net` (default): [`net`].
//! - `embedded-tls`: `tls` (embedded-tls 0.19, P-256, RSA-PSS through the
//!   core's allocation-free RSA).
//! - `defmt` / `log`: connection-level diagnostics through either logger.
#![no_std]
#![forbid(unsafe_code)]

pub mod cfms;
pub mod driver;
pub(crate) mod fmt;
pub mod fnos;
#[cfg(feature = "embassy-net")]
pub mod net;
pub mod time;
#[cfg(feature = "embedded-tls")]
pub mod tls;

pub use naslink_core as core;

use naslink_core::ws;

/// Why a connection ended or could not start. `E` is the transport's error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Error<E> {
    /// The transport failed.
    Io(E),
    /// The transport accepted no bytes.
    WriteZero,
    /// The upgrade request could not be built (buffer too small, bad header).
    Connect(ws::ConnectError),
    /// The server answered the upgrade with this HTTP status instead of 101.
    Rejected {
        /// The status code.
        status: u16,
    },
    /// The WebSocket closed (cleanly, by a protocol error, a timeout, or
    /// because the transport ended).
    Closed(ws::Closed),
    /// A message could not be queued on the WebSocket.
    Send(ws::SendError),
    /// A session wrote a text message that is not UTF-8.
    NotText,
    /// The transmit buffer cannot hold a message the session must send
    /// (the fnOS login envelope needs about 2 KiB): use a larger one.
    TransmitTooSmall {
        /// Bytes the message needs.
        required: usize,
    },
    /// The fnOS session refused a request or could not write its output.
    Fnos(naslink_core::fnos::Error),
    /// The CFMS session refused a request, an input, or could not write.
    Cfms(naslink_core::cfms::session::Error),
    /// The fnOS server stopped answering the heartbeat.
    ConnectionDead {
        /// Pings that went unanswered.
        missed_pongs: u8,
    },
    /// CFMS answers can no longer be matched to requests.
    Desynchronized(naslink_core::cfms::session::Desync),
    /// The fnOS server sent `{"sysNotify":"kicked"}`: another login took
    /// this session over ([`Session::kicked`](naslink_core::fnos::Session::kicked)).
    /// Do not reconnect: a new login would kick the other one back.
    Kicked,
}
