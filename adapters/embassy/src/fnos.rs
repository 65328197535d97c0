//! One fnOS connection over an async byte stream.
//!
//! A [`Session`] outlives connections: it keeps the tokens and secret a login
//! earned, so after a reconnect [`Connection::open`] re-authenticates with
//! `user.authToken` (or `user.tokenLogin`) before falling back to the
//! password. A [`Connection`] lives as long as one transport:
//!
//! ```text
//! open(): write upgrade ──► read 101 ──► session.handle_connect ──► Connection
//!                 │ other status / close / timeout
//!                 ▼
//!              Err(Rejected | Closed)
//!
//! next_event(): flush session output ──► deliver queued session event
//!                  ▲                         │ none
//!                  │                         ▼
//!              timers fire ◄── wait for bytes or the next deadline
//!                  │                         │ bytes
//!                  └─────────── WebSocket text ──► session.handle_text ──► event
//! ```
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

use core::cell::RefCell;

use embedded_io_async::{Read, Write};
use naslink_core::fnos::session::TRANSMIT_CAPACITY;
use naslink_core::fnos::{self, Event, Reqid, Request, Session};
use naslink_core::random::Entropy;
use naslink_core::time::Instant;
use naslink_core::ws::{self, Url};

pub use crate::Error;
use crate::fmt::{debug, warning};
use crate::link::{Link, SharedEntropy};
use crate::time::now;

/// Bytes read from the transport at a time: one TCP segment on Ethernet.
pub const READ_CHUNK: usize = 536;

/// The buffers of one connection, sized by the application.
///
/// - `RX` holds the handshake answer, then one whole received message: the
///   largest fnOS reply the application asks for (2 KiB fits the
///   front-panel commands and the login answers).
/// - `TX` holds queued outgoing frames; it must fit the login envelope,
///   [`TRANSMIT_CAPACITY`] plus an 8-byte frame header.
///
/// Besides these it holds [`TRANSMIT_CAPACITY`] bytes where the session
/// writes each message, and [`READ_CHUNK`] bytes for transport reads.
pub struct Buffers<const RX: usize, const TX: usize> {
    ws_rx: [u8; RX],
    ws_tx: [u8; TX],
    message: [u8; TRANSMIT_CAPACITY],
    read: [u8; READ_CHUNK],
}

impl<const RX: usize, const TX: usize> Buffers<RX, TX> {
    /// Zeroed buffers (`const`, so they can live in a `static`).
    pub const fn new() -> Self {
        Buffers {
            ws_rx: [0; RX],
            ws_tx: [0; TX],
            message: [0; TRANSMIT_CAPACITY],
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
pub struct Connection<'a, 'c, T, R, const N: usize> {
    link: Link<'a, T, R>,
    session: &'a mut Session<'c, N>,
    rng: &'a RefCell<R>,
    message: &'a mut [u8],
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
    /// login's AES key and the RSA padding.
    pub async fn open<const RX: usize, const TX: usize>(
        io: T,
        url: &Url<'_>,
        session: &'a mut Session<'c, N>,
        rng: &'a RefCell<R>,
        buffers: &'a mut Buffers<RX, TX>,
    ) -> Result<Self, Error<T::Error>> {
        let Buffers {
            ws_rx,
            ws_tx,
            message,
            read,
        } = buffers;
        let link = Link::open(io, url, ws::Config::default(), rng, ws_rx, ws_tx, read).await?;
        session.handle_connect(now());
        debug!("fnOS session started");
        Ok(Connection {
            link,
            session,
            rng,
            message,
        })
    }

    /// The session (state, uid, stored credentials).
    pub fn session(&self) -> &Session<'c, N> {
        self.session
    }

    /// Send an application request; its reply arrives as
    /// [`Event::Reply`] with the returned reqid (or as
    /// [`Event::RequestTimedOut`]). Fails with
    /// [`fnos::Error::Busy`] (as [`Error::Fnos`]) when `N` requests are already in flight.
    pub async fn send(&mut self, request: &Request<'_>) -> Result<Reqid, Error<T::Error>> {
        let (reqid, n) = self
            .session
            .send(now(), request, self.message)
            .map_err(Error::Fnos)?;
        self.link
            .send(ws::MessageKind::Text, sent_bytes(self.message, n)?)
            .await?;
        self.link.flush().await?;
        Ok(reqid)
    }

    /// Drive the connection until the session has something for the
    /// application, and hand it to `on_event`. Login, heartbeat and request
    /// deadlines all advance in here, so call it continually.
    pub async fn next_event<F, O>(&mut self, on_event: F) -> Result<O, Error<T::Error>>
    where
        F: FnOnce(Event<'_>) -> O,
    {
        let mut on_event = on_event;
        loop {
            // Without a deadline the closure only comes back if the clock
            // jumped; go round again.
            match self.drive(None, on_event).await {
                Ok(Ok(output)) => return Ok(output),
                Ok(Err(unused)) => on_event = unused,
                Err(e) => {
                    self.session.handle_disconnect(now());
                    return Err(e);
                }
            }
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
        match self.drive(until, on_event).await {
            Ok(output) => Ok(output.ok()),
            Err(e) => {
                self.session.handle_disconnect(now());
                Err(e)
            }
        }
    }

    async fn drive<F, O>(
        &mut self,
        until: Option<Instant>,
        on_event: F,
    ) -> Result<Result<O, F>, Error<T::Error>>
    where
        F: FnOnce(Event<'_>) -> O,
    {
        loop {
            self.transmit_session_output().await?;
            if let Some(event) = self.session.poll_event() {
                if let Event::ConnectionDead { missed_pongs } = event {
                    warning!("heartbeat: {} pongs missed", missed_pongs);
                    return Err(Error::ConnectionDead { missed_pongs });
                }
                return Ok(Ok(on_event(event)));
            }
            self.link.flush().await?;
            // A pass over buffered input; whatever it changes (a login step
            // answered, a pong queued) is sent from the top of the loop.
            let mut progressed = self.link.take_input();
            while let Some(event) = self.link.ws.poll_event() {
                progressed = true;
                match event {
                    ws::Event::Text(text) => match self.session.handle_text(now(), text.as_bytes())
                    {
                        Ok(Some(event)) => return Ok(Ok(on_event(event))),
                        Ok(None) => {}
                        // A message the session cannot read is the server's
                        // fault; the connection stays usable.
                        Err(_) => warning!("fnOS: unreadable message skipped"),
                    },
                    ws::Event::Closed(closed) => return Err(Error::Closed(closed)),
                    _ => {}
                }
            }
            if progressed || self.link.has_input() {
                continue;
            }
            if until.is_some_and(|at| now() >= at) {
                return Ok(Err(on_event));
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

    /// Close the WebSocket politely (bounded by the client's close
    /// timeout); the transport can then be closed and dropped.
    pub async fn close(mut self) {
        self.link.close().await;
    }

    /// Queue what the session itself wants sent (login steps, pings).
    async fn transmit_session_output(&mut self) -> Result<(), Error<T::Error>> {
        loop {
            let mut rng = SharedEntropy(self.rng);
            let written = self
                .session
                .poll_transmit(now(), &mut rng, self.message)
                .map_err(Error::Fnos)?;
            match written {
                Some(n) => {
                    self.link
                        .send(ws::MessageKind::Text, sent_bytes(self.message, n)?)
                        .await?
                }
                None => return Ok(()),
            }
        }
    }
}

impl<T, R, const N: usize> Drop for Connection<'_, '_, T, R, N> {
    fn drop(&mut self) {
        if self.session.state() != fnos::State::Disconnected {
            self.session.handle_disconnect(now());
        }
    }
}

/// The `len` bytes the session wrote at the start of `message`.
fn sent_bytes<E>(message: &[u8], len: usize) -> Result<&[u8], Error<E>> {
    message
        .get(..len)
        .ok_or(Error::Fnos(fnos::Error::BufferTooSmall { required: len }))
}
