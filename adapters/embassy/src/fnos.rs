//! One fnOS connection over an async byte stream.
//!
//! A [`Session`] outlives connections: it keeps the tokens and secret a login
//! earned, so after a reconnect [`Connection::open`] re-authenticates with
//! `user.authToken` (or `user.tokenLogin`) before falling back to the
//! password. A [`Connection`] lives as long as one transport. It is the
//! runtime's one [`Driver`] over the core's `Connection<fnos::Session>`; this
//! module only names the fnOS buffers and turns a lost heartbeat into an
//! error:
//!
//! ```text
//! open(): upgrade ──► 101 ──► session started ──► Connection
//! next_event(): Driver::next_event ──► fnOS event ──► closure
//!                                  └─► ConnectionDead / Closed ──► Err
//! ```
//!
//! A `kicked` push (another login took the session over) is handed to
//! the closure like any push; the next call then fails with
//! [`Error::Kicked`], and [`Connection::open`] refuses a kicked session
//! with the same error before touching the transport, so an application
//! that reconnects on errors stops instead of kicking the other login
//! back ([`Session::kicked`] clears only with a login the application asks
//! for).
//!
//! Any error ends the connection: the session is told about the
//! disconnect (requests in flight are then reported as aborted), and the
//! application drops the transport and calls [`Connection::open`] on a new
//! one. A dropped `Connection` disconnects the session the same way.
//!
//! Events borrow the received message, so [`Connection::next_event`] hands
//! each one to a closure instead of returning it; the closure's result is
//! returned.
#![deny(clippy::indexing_slicing)]

use embedded_io_async::{Read, Write};
use naslink_core::fnos::{Event, Reqid, Request, Session};
use naslink_core::random::Entropy;
use naslink_core::time::Instant;
use naslink_core::ws::{self, Url};

pub use crate::Error;
use crate::driver::{Driver, Memory, SendFailed};
use crate::fmt::warning;

/// Bytes read from the transport at a time: one TCP segment on Ethernet.
pub const READ_CHUNK: usize = 536;

/// The buffers of one connection, sized by the application.
///
/// - `RX` holds the handshake answer, then one whole received message: the
///   largest fnOS reply the application asks for (2 KiB fits the
///   front-panel commands and the login answers).
/// - `TX` holds queued outgoing frames, which the session writes into
///   directly; it must fit the login envelope,
///   [`TRANSMIT_CAPACITY`](naslink_core::fnos::session::TRANSMIT_CAPACITY) plus a 14-byte
///   frame header.
///
/// Besides these it holds [`READ_CHUNK`] bytes for transport reads.
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

/// An open fnOS connection; see the [module docs](self).
pub struct Connection<'a, 'c, T, R: Entropy, const N: usize> {
    driver: Driver<'a, T, &'a mut Session<'c, N>, &'a mut R>,
}

impl<'a, 'c, T, R, const N: usize> Connection<'a, 'c, T, R, N>
where
    T: Read + Write,
    R: Entropy,
{
    /// Run the WebSocket handshake for `url` over `io` (already connected,
    /// TLS already running for `wss://`), then start the session on it: its
    /// key exchange and login proceed inside [`next_event`](Self::next_event).
    ///
    /// `rng` must be a cryptographically secure generator: it makes the
    /// frame masks, the login's AES key and the RSA padding.
    pub async fn open<const RX: usize, const TX: usize>(
        io: T,
        url: &Url<'_>,
        session: &'a mut Session<'c, N>,
        rng: &'a mut R,
        buffers: &'a mut Buffers<RX, TX>,
    ) -> Result<Self, Error<T::Error>> {
        if session.kicked() {
            return Err(Error::Kicked);
        }
        let Buffers { ws_rx, ws_tx, read } = buffers;
        let memory = Memory {
            rx: ws_rx,
            tx: ws_tx,
            read,
        };
        let driver = Driver::open(io, url, ws::Config::default(), session, rng, memory).await?;
        Ok(Connection { driver })
    }

    /// The session (state, uid, stored credentials).
    pub fn session(&self) -> &Session<'c, N> {
        self.driver.session()
    }

    /// Send an application request; its reply arrives as
    /// [`Event::Reply`] with the returned reqid (or as
    /// [`Event::RequestTimedOut`]). Fails with
    /// [`naslink_core::fnos::Error::Busy`] (as [`Error::Fnos`]) when `N` requests are already in flight.
    pub async fn send(&mut self, request: &Request<'_>) -> Result<Reqid, Error<T::Error>> {
        self.driver.send(request).await.map_err(|e| match e {
            SendFailed::Link(e) => e,
            SendFailed::Refused(e) => Error::Fnos(e),
        })
    }

    /// Drive the connection until the session has something for the
    /// application, and hand it to `on_event`. Login, heartbeat and request
    /// deadlines all advance in here, so call it continually.
    pub async fn next_event<F, O>(&mut self, on_event: F) -> Result<O, Error<T::Error>>
    where
        F: FnOnce(Event<'_>) -> O,
    {
        match self.drive(None, on_event).await? {
            Some(output) => Ok(output),
            // Without a deadline the driver only returns with an event.
            None => Err(Error::Closed(ws::Closed::Abnormal)),
        }
    }

    /// [`next_event`](Self::next_event), but give up at `until` and return
    /// `Ok(None)`: the application's own timer (a refresh period, say)
    /// without cancelling a half-finished write.
    pub async fn next_event_until<F, O>(
        &mut self,
        until: Option<Instant>,
        on_event: F,
    ) -> Result<Option<O>, Error<T::Error>>
    where
        F: FnOnce(Event<'_>) -> O,
    {
        self.drive(until, on_event).await
    }

    async fn drive<F, O>(
        &mut self,
        until: Option<Instant>,
        on_event: F,
    ) -> Result<Option<O>, Error<T::Error>>
    where
        F: FnOnce(Event<'_>) -> O,
    {
        loop {
            if self.driver.session().kicked() {
                return Err(Error::Kicked);
            }
            if !self.driver.wait_event(until).await? {
                return Ok(None);
            }
            match self.driver.poll_event()? {
                Some(Event::ConnectionDead { missed_pongs }) => {
                    warning!("heartbeat: {} pongs missed", missed_pongs);
                    return Err(Error::ConnectionDead { missed_pongs });
                }
                Some(event) => return Ok(Some(on_event(event))),
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
