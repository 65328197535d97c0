//! One CFMS connection over an async byte stream.
//!
//! The core's [`Session`] writes requests into a buffer and matches answers
//! first-in first-out; this driver carries them over the WebSocket:
//!
//! ```text
//! open(): write upgrade ──► read 101 ──► Connection
//! request(write): the session writes a request ──► queued as a text message
//! next_event(): send what the session owes (refresh, re-login, keep-alive,
//!               transfer frames) ──► deliver a queued session event
//!                  ▲                         │ none
//!                  └── timers ◄── wait for a message or the next deadline
//! ```
//!
//! The session starts at `Unknown`: the application's first request must be
//! `server_info`, then `login`. [`Event::Desynchronized`] and transport
//! failures end the connection with an error; the session is then told
//! about the disconnect, and the application reconnects with a new
//! transport. A dropped `Connection` disconnects the session the same way.
//! Answer bodies stay readable through [`Connection::session`]`().response()`
//! until the next message arrives.
//!
//! The WebSocket streams: a message larger than `RX` reaches the session
//! in pieces (the session collects answers in its own receive buffer and
//! decodes `file_chunk` messages as they stream in). Downloads run through
//! [`Connection::download`] into a caller's store ([`download`]); a
//! `download_file` sent through [`Connection::request`] hands its
//! ciphertext to no sink.
#![deny(clippy::indexing_slicing)]

pub mod download;

use core::cell::RefCell;

use embedded_io_async::{Read, Write};
use naslink_core::cfms::session::{Error as SessionError, Event, Sent, Session};
use naslink_core::cfms::{MessageKind, Seq};
use naslink_core::random::Entropy;
use naslink_core::time::Instant;
use naslink_core::ws::{self, Url};

pub use crate::Error;
use crate::fmt::{debug, warning};
use crate::link::Link;
use crate::time::now;

/// Bytes read from the transport at a time: one TCP segment on Ethernet.
pub const READ_CHUNK: usize = 536;

/// `file_chunk` messages are about 2.8 MB: the WebSocket hands every message
/// larger than its receive buffer on in pieces instead of refusing it.
fn streaming() -> ws::Config {
    ws::Config {
        streaming: true,
        ..ws::Config::default()
    }
}

/// The buffers of one connection, sized by the application.
///
/// - `RX`: the handshake answer, then received messages; a larger one
///   arrives in pieces of `RX` bytes (whole answers must fit the session's
///   own receive buffer).
/// - `TX`: queued outgoing frames; the largest request plus 8 bytes.
/// - `MESSAGE`: where the session writes each request (the largest one).
pub struct Buffers<const RX: usize, const TX: usize, const MESSAGE: usize> {
    ws_rx: [u8; RX],
    ws_tx: [u8; TX],
    message: [u8; MESSAGE],
    read: [u8; READ_CHUNK],
}

impl<const RX: usize, const TX: usize, const MESSAGE: usize> Buffers<RX, TX, MESSAGE> {
    /// Zeroed buffers (`const`, so they can live in a `static`).
    pub const fn new() -> Self {
        Buffers {
            ws_rx: [0; RX],
            ws_tx: [0; TX],
            message: [0; MESSAGE],
            read: [0; READ_CHUNK],
        }
    }
}

impl<const RX: usize, const TX: usize, const MESSAGE: usize> Default for Buffers<RX, TX, MESSAGE> {
    fn default() -> Self {
        Self::new()
    }
}

/// An open CFMS connection; see the [module docs](self).
pub struct Connection<'a, 's, T, R, const Q: usize> {
    link: Link<'a, T, R>,
    session: &'a mut Session<'s, Q>,
    message: &'a mut [u8],
}

impl<'a, 's, T, R, const Q: usize> Connection<'a, 's, T, R, Q>
where
    T: Read + Write,
    R: Entropy,
{
    /// Run the WebSocket handshake for `url` over `io` (already connected,
    /// TLS already running for `wss://`). `rng` masks the frames.
    pub async fn open<const RX: usize, const TX: usize, const MESSAGE: usize>(
        io: T,
        url: &Url<'_>,
        session: &'a mut Session<'s, Q>,
        rng: &'a RefCell<R>,
        buffers: &'a mut Buffers<RX, TX, MESSAGE>,
    ) -> Result<Self, Error<T::Error>> {
        let Buffers {
            ws_rx,
            ws_tx,
            message,
            read,
        } = buffers;
        let link = Link::open(io, url, streaming(), rng, ws_rx, ws_tx, read).await?;
        debug!("CFMS connection open");
        Ok(Connection {
            link,
            session,
            message,
        })
    }

    /// The session (protocol version, lockdown, the last answer's body).
    pub fn session(&self) -> &Session<'s, Q> {
        self.session
    }

    /// Send the request `write` makes with the session, for example
    /// `|s, now, buf| s.server_info(now, buf)`; its answer arrives as an
    /// event carrying the returned sequence number.
    pub async fn request<F>(&mut self, write: F) -> Result<Seq, Error<T::Error>>
    where
        F: FnOnce(&mut Session<'s, Q>, Instant, &mut [u8]) -> Result<Sent, SessionError>,
    {
        let sent = write(self.session, now(), self.message).map_err(Error::Cfms)?;
        self.link
            .send(ws::MessageKind::Text, sent_bytes(self.message, sent.len)?)
            .await?;
        self.link.flush().await?;
        Ok(sent.seq)
    }

    /// Drive the connection until the session has an event.
    pub async fn next_event(&mut self) -> Result<Event, Error<T::Error>> {
        loop {
            // Without a deadline `None` only comes back if the clock jumped.
            let result = self.drive(None).await;
            if let Some(event) = self.end_on_error(result)? {
                return Ok(event);
            }
        }
    }

    /// [`next_event`](Self::next_event), but give up at `until` with
    /// `Ok(None)`.
    pub async fn next_event_until(
        &mut self,
        until: Instant,
    ) -> Result<Option<Event>, Error<T::Error>> {
        let result = self.drive(Some(until)).await;
        self.end_on_error(result)
    }

    fn end_on_error<O>(
        &mut self,
        result: Result<O, Error<T::Error>>,
    ) -> Result<O, Error<T::Error>> {
        if result.is_err() {
            self.session.handle_disconnect(now());
        }
        result
    }

    async fn drive(&mut self, until: Option<Instant>) -> Result<Option<Event>, Error<T::Error>> {
        loop {
            self.transmit_session_output().await?;
            if let Some(event) = self.session.poll_event() {
                if let Event::Desynchronized(why) = event {
                    warning!("CFMS: answers out of step; reconnecting");
                    return Err(Error::Desynchronized(why));
                }
                return Ok(Some(event));
            }
            self.link.flush().await?;
            let mut progressed = self.link.take_input();
            // One message per pass: its events are drained at the top
            // before the session may take the next one.
            if let Some(event) = self.link.ws.poll_event() {
                progressed = true;
                if let Some(p) = Piece::of(event)? {
                    self.session
                        .handle_message_part(now(), p.kind, p.data, p.first, p.last, &mut |_| {})
                        .map_err(Error::Cfms)?;
                }
            }
            if progressed || self.link.has_input() {
                continue;
            }
            if until.is_some_and(|at| now() >= at) {
                return Ok(None);
            }
            let deadline = [
                self.link.ws.poll_timeout(),
                self.session.poll_timeout(),
                until,
            ]
            .into_iter()
            .flatten()
            .min();
            self.link.wait(deadline).await?;
            self.session.handle_timeout(now());
        }
    }

    /// Queue what the session owes the server.
    async fn transmit_session_output(&mut self) -> Result<(), Error<T::Error>> {
        while let Some(out) = self
            .session
            .poll_transmit(now(), self.message)
            .map_err(Error::Cfms)?
        {
            let kind = match out.kind {
                MessageKind::Text => ws::MessageKind::Text,
                MessageKind::Binary => ws::MessageKind::Binary,
            };
            self.link
                .send(kind, sent_bytes(self.message, out.len)?)
                .await?;
        }
        Ok(())
    }

    /// Close the WebSocket politely (bounded by the client's close
    /// timeout); the transport can then be closed and dropped.
    pub async fn close(mut self) {
        self.link.close().await;
    }
}

impl<T, R, const Q: usize> Drop for Connection<'_, '_, T, R, Q> {
    fn drop(&mut self) {
        self.session.handle_disconnect(now());
    }
}

/// The `len` bytes the session wrote at the start of `message`.
fn sent_bytes<E>(message: &[u8], len: usize) -> Result<&[u8], Error<E>> {
    message
        .get(..len)
        .ok_or(Error::Cfms(SessionError::BufferTooSmall { required: len }))
}

/// A received message, or a piece of one, on its way to the session.
struct Piece<'d> {
    kind: MessageKind,
    data: &'d [u8],
    first: bool,
    last: bool,
}

impl<'d> Piece<'d> {
    /// The message (piece) a WebSocket event carries; `Closed` ends the
    /// connection, other events carry none.
    fn of<E>(event: ws::Event<'d>) -> Result<Option<Self>, Error<E>> {
        let (kind, data, first, last) = match event {
            ws::Event::Text(text) => (MessageKind::Text, text.as_bytes(), true, true),
            ws::Event::Binary(data) => (MessageKind::Binary, data, true, true),
            ws::Event::TextChunk { data, first, last } => {
                (MessageKind::Text, data.as_bytes(), first, last)
            }
            ws::Event::BinaryChunk { data, first, last } => {
                (MessageKind::Binary, data, first, last)
            }
            ws::Event::Closed(closed) => return Err(Error::Closed(closed)),
            _ => return Ok(None),
        };
        Ok(Some(Piece {
            kind,
            data,
            first,
            last,
        }))
    }
}
