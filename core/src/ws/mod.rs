//! RFC 6455 WebSocket client, sans-I/O and allocation-free.
//!
//! - [`frame`]: the wire format (checked [`Frame`](frame::Frame) view,
//!   [`FrameHeader`](frame::FrameHeader) repr, word-at-a-time masking).
//! - [`handshake`]: the upgrade request and the checks on the answer.
//! - [`Client`]: the connection state machine over caller buffers.
//!
//! # Driving a client
//!
//! The client never touches a socket or a clock. An adapter runs this loop:
//!
//! ```text
//! read socket ──► handle_input(now, bytes) ──► consumed n (re-feed the rest)
//!                 poll_event()      until None: messages, pings, Closed
//!                 poll_transmit()   until None: write, advance_transmit(n)
//!                 poll_timeout()    sleep until then, or until readable
//!                 handle_timeout(now)
//! ```
//!
//! ```
//! use naslink_core::random;
//! use naslink_core::time::Instant;
//! use naslink_core::ws::{handshake, Client, Config, Event, Url};
//!
//! let url = Url::parse("ws://nas.local:5666/websocket?type=main").unwrap();
//! let (mut rx, mut tx) = ([0u8; 1024], [0u8; 1024]);
//! let rng = random::from_fn(|buf: &mut [u8]| buf.fill(4)); // use a real RNG
//! let mut ws = Client::connect(Instant::ZERO, &url, &[("Origin", "http://nas.local")],
//!                              Config::default(), rng, &mut rx, &mut tx).unwrap();
//!
//! // Write the upgrade request.
//! let mut wire = Vec::new();
//! while let Some(bytes) = ws.poll_transmit() {
//!     let n = bytes.len(); // a socket write may take fewer
//!     wire.extend_from_slice(bytes);
//!     ws.advance_transmit(n);
//! }
//!
//! // The server answers 101 and, in the same read, a text frame "hi".
//! let key = handshake::key_from_nonce([4; 16]);
//! let accept = handshake::accept_for_key(&key);
//! let mut read = b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\
//!     Connection: Upgrade\r\nSec-WebSocket-Accept: ".to_vec();
//! read.extend_from_slice(&accept);
//! read.extend_from_slice(b"\r\n\r\n\x81\x02hi");
//!
//! let mut input = &read[..];
//! let mut texts = Vec::new();
//! while !input.is_empty() {
//!     let used = ws.handle_input(Instant::ZERO, input);
//!     input = &input[used..]; // never drop the rest: it is the next frame
//!     while let Some(event) = ws.poll_event() {
//!         if let Event::Text(text) = event {
//!             texts.push(text.to_owned());
//!         }
//!     }
//! }
//! assert_eq!(texts, ["hi"]);
//! ```
//!
//! `handle_input` stops early (returns fewer bytes than given) whenever an
//! event must be taken first, or a pong is waiting to be written before the
//! next ping can be answered. Every call either makes progress or says what
//! it needs: more input (all consumed), event draining, or output draining.
//!
//! # States
//!
//! ```text
//!              101 + checks                 close() / server Close /
//! Handshaking ─────────────► Open ─────────► protocol error ───► Closing
//!      │ other status,         │                                    │
//!      │ bad answer, timeout   │ transport EOF                      │ our Close written and
//!      ▼                       ▼                                    ▼ theirs received; or
//!   Closed ◄───────────────── Closed ◄────────────────────────── Closed  failure Close written;
//!                                                                      or close timeout
//! ```
//!
//! - **Handshaking**: the upgrade request sits in the transmit queue; input
//!   is the response head. A 101 passing every check gives
//!   [`Event::Connected`] (bytes after the head are the first frames). Any
//!   other status gives [`Event::Rejected`] with the borrowed head (a
//!   redirect's `Location`, a 401's `X-Trim-Safe-Code-Challenge`), then
//!   [`Event::Closed`].
//! - **Open**: messages both ways. Pings are answered automatically; the
//!   pong goes out at the next frame boundary, ahead of queued data.
//! - **Closing**: a Close frame is queued or written, so no more data may be
//!   sent. Entered by [`Client::close`], by a server Close (our echo is
//!   queued after data already queued), or by a protocol error (queued data
//!   not yet started is dropped, a Close with 1002/1007/1009 is queued). Ends
//!   when both Closes have passed, when a failure's Close is written, or
//!   after [`Config::close_timeout`].
//! - **Closed**: [`Event::Closed`] reports why; drop the transport. (After a
//!   clean close RFC 6455 lets the server close TCP first: an adapter may
//!   read until EOF for a moment before dropping.)
//!
//! # Buffers
//!
//! The receive buffer holds the handshake response, then one data message
//! at a time; a larger message fails the connection with 1009 unless
//! [`Config::streaming`] delivers it in chunks. Control frame payloads (at
//! most 125 bytes) have their own space inside the client, so they can
//! interleave with fragments. The transmit buffer holds queued frames,
//! masked as they are queued; control frames have their own slots.
//!
//! # Not supported
//!
//! Extensions (permessage-deflate) and subprotocols are never offered, and a
//! server selecting one fails the handshake.

pub mod client;
pub mod close;
pub mod frame;
pub mod handshake;
mod utf8;

pub use client::{
    Client, Closed, Config, ConnectError, Error, Event, MIN_RECEIVE_BUFFER, MessageKind,
    ProtocolError, SendError, SendWithError, State,
};
pub use close::CloseCode;
pub use handshake::{HandshakeError, Response, Url, UrlError};
