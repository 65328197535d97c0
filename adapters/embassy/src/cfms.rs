//! One CFMS connection over an async byte stream.
//!
//! The core's [`Connection`](naslink_core::connection::Connection) holds
//! the WebSocket and the session; the runtime's one [`Driver`] moves bytes
//! and time, as it does for fnOS; this module names the CFMS buffers and
//! commands and turns the faults that end a connection into errors:
//!
//! ```text
//! open(): write upgrade ──► read 101 ──► the session sends server_info,
//!         login (Config::login), register_listener (Config::listener) by itself
//! request(write): the session writes a request straight into the WebSocket
//! next_event(f): write what is queued ──► hand the next event to `f`
//!                  ▲                         │ none
//!                  └── timers ◄── wait for bytes or the next deadline
//! ```
//!
//! Application requests are accepted once the session is
//! [`State::Ready`](naslink_core::cfms::State::Ready) (its
//! `LoggedIn`/`ListenerRegistered` event, or `ServerInfo` without
//! credentials). Events borrow the connection (a reply's body points into
//! the receive buffer), so [`Connection::next_event`] hands each to a
//! closure. `Desynchronized`, a message no CFMS server sends, and
//! transport failures end the connection with an error; the session is
//! then told about the disconnect (it keeps its token), and the
//! application reconnects with a new transport. A dropped `Connection`
//! disconnects the session the same way.
//!
//! The WebSocket streams: a message larger than `RX` reaches the session
//! in pieces (the session collects answers in its own receive buffer, which
//! must hold the largest answer and 3/4 of `RX`, and decodes `file_chunk`
//! messages as they stream in). Downloads, over 3–5 or 13 (whichever
//! the session speaks), run through [`Connection::download`] into a
//! caller's store ([`download`]).
#![deny(clippy::indexing_slicing)]

pub mod download;

use embedded_io_async::{Read, Write};
use naslink_core::cfms::session::{Error as SessionError, Sent, Session};
use naslink_core::cfms::{ConnectionEvent, Seq};
use naslink_core::random::Entropy;
use naslink_core::time::Instant;
use naslink_core::ws::{self, Url};

pub use crate::Error;
use crate::driver::{Driver, Memory};
use crate::fmt::{debug, warning};
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
/// - `TX`: queued outgoing frames; requests are written straight into it,
///   so the largest request plus 14 bytes.
pub struct Buffers<const RX: usize, const TX: usize> {
    ws_rx: [u8; RX],
    ws_tx: [u8; TX],
    read: [u8; READ_CHUNK],
}

impl<const RX: usize, const TX: usize> Buffers<RX, TX> {
    /// Zeroed buffers (`const`, so they can live in a `static`).
    pub const fn new() -> Self {
        Buffers {
            ws_rx: [0; RX],
            ws_tx: [0; TX],
            read: [0; READ_CHUNK],
        }
    }
}

impl<const RX: usize, const TX: usize> Default for Buffers<RX, TX> {
    fn default() -> Self {
        Self::new()
    }
}

/// An open CFMS connection; see the [module docs](self).
pub struct Connection<'a, 's, T, R: Entropy, const Q: usize> {
    driver: Driver<'a, T, &'a mut Session<'s, Q>, R>,
}

impl<'a, 's, T, R, const Q: usize> Connection<'a, 's, T, R, Q>
where
    T: Read + Write,
    R: Entropy,
{
    /// Run the WebSocket handshake for `url` over `io` (already connected,
    /// TLS already running for `wss://`); the session then starts its
    /// opening sequence. `rng` masks the frames (pass `&mut rng` to keep it).
    pub async fn open<const RX: usize, const TX: usize>(
        io: T,
        url: &Url<'_>,
        session: &'a mut Session<'s, Q>,
        rng: R,
        buffers: &'a mut Buffers<RX, TX>,
    ) -> Result<Self, Error<T::Error>> {
        let Buffers { ws_rx, ws_tx, read } = buffers;
        let memory = Memory {
            rx: ws_rx,
            tx: ws_tx,
            read,
        };
        let driver = Driver::open(io, url, streaming(), session, rng, memory).await?;
        debug!("CFMS connection open");
        Ok(Connection { driver })
    }

    /// The session (state, protocol version, lockdown, chunk hashes).
    pub fn session(&self) -> &Session<'s, Q> {
        self.driver.session()
    }

    /// Send the request `write` makes with the session, for example
    /// `|s, now, buf| s.list_directory(now, None, buf)`; it is written
    /// straight into the WebSocket transmit buffer, and its answer arrives
    /// as an event carrying the returned sequence number.
    pub async fn request<F>(&mut self, write: F) -> Result<Seq, Error<T::Error>>
    where
        F: FnOnce(&mut Session<'s, Q>, Instant, &mut [u8]) -> Result<Sent, SessionError>,
    {
        // Room first: the request goes into what the queue leaves free.
        self.driver.flush().await?;
        let seq = self
            .driver
            .connection_mut()
            .command(now(), write)
            .map_err(Error::Cfms)?;
        self.driver.flush().await?;
        Ok(seq)
    }

    /// Answer `TwoFactorRequired` with a TOTP or backup code.
    pub async fn submit_two_factor(&mut self, code: &str) -> Result<Seq, Error<T::Error>> {
        self.driver.flush().await?;
        let seq = self
            .driver
            .connection_mut()
            .submit_two_factor(now(), code)
            .map_err(Error::Cfms)?;
        self.driver.flush().await?;
        Ok(seq)
    }

    /// Drive the connection until the session has an event, and hand it
    /// to `f` (it borrows the receive buffer until `f` returns).
    pub async fn next_event<O>(
        &mut self,
        f: impl FnOnce(ConnectionEvent<'_>) -> O,
    ) -> Result<O, Error<T::Error>> {
        match self.drive(None, f).await? {
            Some(o) => Ok(o),
            // Without a deadline the driver only returns with an event.
            None => Err(Error::Closed(ws::Closed::Abnormal)),
        }
    }

    /// [`next_event`](Self::next_event), but give up at `until` with
    /// `Ok(None)`.
    pub async fn next_event_until<O>(
        &mut self,
        until: Instant,
        f: impl FnOnce(ConnectionEvent<'_>) -> O,
    ) -> Result<Option<O>, Error<T::Error>> {
        self.drive(Some(until), f).await
    }

    async fn drive<O>(
        &mut self,
        until: Option<Instant>,
        f: impl FnOnce(ConnectionEvent<'_>) -> O,
    ) -> Result<Option<O>, Error<T::Error>> {
        loop {
            if !self.driver.wait_event(until).await? {
                return Ok(None);
            }
            match self.driver.poll_event()? {
                Some(ConnectionEvent::Desynchronized(why)) => {
                    warning!("CFMS: answers out of step; reconnecting");
                    return Err(Error::Desynchronized(why));
                }
                Some(ConnectionEvent::BadMessage(e)) => return Err(Error::Cfms(e)),
                Some(event) => return Ok(Some(f(event))),
                None => {}
            }
        }
    }

    /// Close the WebSocket politely (bounded by the client's close
    /// timeout); the transport can then be closed and dropped.
    pub async fn close(mut self) {
        self.driver.close().await;
    }
}
