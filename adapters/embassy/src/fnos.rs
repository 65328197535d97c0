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

use core::cell::RefCell;

use embassy_futures::select::{Either, select};
use embassy_time::Timer;
use embedded_io_async::{Read, Write};
use naslink_core::fnos::session::TRANSMIT_CAPACITY;
use naslink_core::fnos::{self, Event, Reqid, Request, Session};
use naslink_core::random::Entropy;
use naslink_core::time::Instant;
use naslink_core::ws::{self, CloseCode, SendError, Url};

use crate::fmt::{debug, warning};
use crate::time::{now, to_embassy};

/// Bytes read from the transport at a time: one TCP segment on Ethernet.
pub const READ_CHUNK: usize = 536;

/// Extra handshake headers: fnOS checks none, but browsers send `Origin`
/// and some reverse proxies insist on it.
const NO_HEADERS: &[(&str, &str)] = &[];

/// The buffers of one connection, sized by the application.
///
/// - `RX` holds the handshake answer, then one whole received message (the
///   largest fnOS reply the application asks for, plus ~2 bytes of frame
///   header are not counted); 2 KiB fits the front-panel commands and the
///   login answers.
/// - `TX` holds queued outgoing frames; it must fit the login envelope,
///   [`TRANSMIT_CAPACITY`] plus a 8-byte frame header.
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

/// Why a connection ended or could not start.
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
    Send(SendError),
    /// The session refused a request or could not write its output.
    Session(fnos::Error),
    /// The server stopped answering the heartbeat.
    ConnectionDead {
        /// Pings that went unanswered.
        missed_pongs: u8,
    },
}

/// A random source shared by the WebSocket (frame masks) and the session
/// (login keys, RSA padding): both are called from one task, one at a time.
struct SharedEntropy<'r, R>(&'r RefCell<R>);

impl<R: Entropy> Entropy for SharedEntropy<'_, R> {
    fn fill_bytes(&mut self, dest: &mut [u8]) {
        self.0.borrow_mut().fill_bytes(dest);
    }
}

/// An open fnOS connection; see the [module docs](self).
pub struct Connection<'a, 'c, T, R, const N: usize> {
    io: T,
    ws: ws::Client<&'a mut [u8], SharedEntropy<'a, R>>,
    session: &'a mut Session<'c, N>,
    rng: &'a RefCell<R>,
    message: &'a mut [u8],
    read: &'a mut [u8],
    /// Received bytes not yet taken by the WebSocket: `read[start..end]`.
    start: usize,
    end: usize,
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
        let ws = ws::Client::connect(
            now(),
            url,
            NO_HEADERS,
            ws::Config::default(),
            SharedEntropy(rng),
            &mut ws_rx[..],
            &mut ws_tx[..],
        )
        .map_err(Error::Connect)?;
        let mut conn = Connection {
            io,
            ws,
            session,
            rng,
            message: &mut message[..],
            read: &mut read[..],
            start: 0,
            end: 0,
        };
        conn.handshake().await?;
        conn.session.handle_connect(now());
        debug!("websocket open; session started");
        Ok(conn)
    }

    async fn handshake(&mut self) -> Result<(), Error<T::Error>> {
        let mut rejected = None;
        loop {
            self.flush().await?;
            let progressed = self.take_input();
            while let Some(event) = self.ws.poll_event() {
                match event {
                    ws::Event::Connected => return Ok(()),
                    ws::Event::Rejected(response) => rejected = Some(response.status()),
                    ws::Event::Closed(closed) => {
                        return Err(match rejected {
                            Some(status) => Error::Rejected { status },
                            None => Error::Closed(closed),
                        });
                    }
                    _ => {}
                }
            }
            if !progressed {
                self.wait(self.ws.poll_timeout()).await?;
            }
        }
    }

    /// Feed buffered bytes to the WebSocket; `true` if it took any.
    fn take_input(&mut self) -> bool {
        if self.start >= self.end {
            return false;
        }
        let used = self
            .ws
            .handle_input(now(), &self.read[self.start..self.end]);
        self.start += used;
        used > 0
    }

    /// The session (state, uid, stored credentials).
    pub fn session(&self) -> &Session<'c, N> {
        self.session
    }

    /// Send an application request; its reply arrives as
    /// [`Event::Reply`] with the returned reqid (or as
    /// [`Event::RequestTimedOut`]). Fails with
    /// [`fnos::Error::Busy`] when `N` requests are already in flight.
    pub async fn send(&mut self, request: &Request<'_>) -> Result<Reqid, Error<T::Error>> {
        let (reqid, n) = self
            .session
            .send(now(), request, self.message)
            .map_err(Error::Session)?;
        self.queue_message(n).await?;
        self.flush().await?;
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
            self.flush().await?;
            // A pass over buffered input; whatever it changes (a login step
            // answered, a pong queued) is sent from the top of the loop.
            let mut progressed = self.take_input();
            while let Some(event) = self.ws.poll_event() {
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
            if progressed || self.start < self.end {
                continue;
            }
            if until.is_some_and(|at| now() >= at) {
                return Ok(Err(on_event));
            }
            let deadline = [self.ws.poll_timeout(), self.session.poll_timeout(), until]
                .into_iter()
                .flatten()
                .min();
            self.wait(deadline).await?;
        }
    }

    /// Close the WebSocket politely (bounded by the client's close
    /// timeout); the transport can then be closed and dropped.
    pub async fn close(mut self) {
        if self.ws.close(now(), CloseCode::NORMAL, "").is_err() {
            return;
        }
        loop {
            if self.flush().await.is_err() {
                return;
            }
            let progressed = self.take_input();
            while let Some(event) = self.ws.poll_event() {
                if let ws::Event::Closed(_) = event {
                    return;
                }
            }
            if !progressed && self.wait(self.ws.poll_timeout()).await.is_err() {
                return;
            }
        }
    }

    /// Queue what the session itself wants sent (login steps, pings).
    async fn transmit_session_output(&mut self) -> Result<(), Error<T::Error>> {
        loop {
            let mut rng = SharedEntropy(self.rng);
            let written = self
                .session
                .poll_transmit(now(), &mut rng, self.message)
                .map_err(Error::Session)?;
            match written {
                Some(n) => self.queue_message(n).await?,
                None => return Ok(()),
            }
        }
    }

    /// Queue `message[..n]` as a text frame, writing out earlier frames first
    /// if the transmit buffer lacks room.
    async fn queue_message(&mut self, n: usize) -> Result<(), Error<T::Error>> {
        // The session writes JSON text; anything else would be its bug, and
        // the server would reject it anyway.
        let Ok(text) = core::str::from_utf8(&self.message[..n]) else {
            return Err(Error::Session(fnos::Error::ParamsNotAnObject));
        };
        match self.ws.send_text(text) {
            Err(SendError::InsufficientSize(_)) => {
                self.flush().await?;
                let text = core::str::from_utf8(&self.message[..n]).unwrap_or_default();
                self.ws.send_text(text).map_err(Error::Send)
            }
            other => other.map_err(Error::Send),
        }
    }

    /// Write every queued byte.
    async fn flush(&mut self) -> Result<(), Error<T::Error>> {
        let mut wrote = false;
        while let Some(bytes) = self.ws.poll_transmit() {
            let n = self.io.write(bytes).await.map_err(Error::Io)?;
            if n == 0 {
                return Err(Error::WriteZero);
            }
            self.ws.advance_transmit(n);
            wrote = true;
        }
        if wrote {
            self.io.flush().await.map_err(Error::Io)?;
        }
        Ok(())
    }

    /// Wait for bytes (buffered into `read`) or for `deadline`, then
    /// advance the timers that are due.
    async fn wait(&mut self, deadline: Option<Instant>) -> Result<(), Error<T::Error>> {
        let timer = async {
            match deadline {
                Some(at) => Timer::at(to_embassy(at)).await,
                None => core::future::pending().await,
            }
        };
        match select(self.io.read(self.read), timer).await {
            Either::First(Ok(0)) => {
                debug!("transport ended");
                self.ws.handle_eof();
            }
            Either::First(Ok(n)) => {
                self.start = 0;
                self.end = n;
            }
            Either::First(Err(e)) => return Err(Error::Io(e)),
            Either::Second(()) => {}
        }
        let t = now();
        self.ws.handle_timeout(t);
        self.session.handle_timeout(t);
        Ok(())
    }
}

impl<T, R, const N: usize> Drop for Connection<'_, '_, T, R, N> {
    fn drop(&mut self) {
        if self.session.state() != fnos::State::Disconnected {
            self.session.handle_disconnect(now());
        }
    }
}
