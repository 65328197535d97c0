//! One CFMS connection over an async byte stream.
//!
//! The core's [`Connection`](naslink_core::connection::Connection) holds
//! the WebSocket and the session; this driver only moves bytes and time:
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
//! messages as they stream in). Downloads run through
//! [`Connection::download`] into a caller's store ([`download`]).
#![deny(clippy::indexing_slicing)]

pub mod download;

use embassy_futures::select::{Either, select};
use embassy_time::Timer;
use embedded_io_async::{Read, Write};
use naslink_core::cfms::session::{Error as SessionError, Sent, Session};
use naslink_core::cfms::{ConnectionEvent, Seq};
use naslink_core::connection::{self, Event as ConnEvent};
use naslink_core::random::Entropy;
use naslink_core::time::Instant;
use naslink_core::ws::{self, CloseCode, Url};

pub use crate::Error;
use crate::fmt::{debug, warning};
use crate::time::{now, to_embassy};

/// Bytes read from the transport at a time: one TCP segment on Ethernet.
pub const READ_CHUNK: usize = 536;

/// Extra handshake headers: CFMS checks none.
const NO_HEADERS: &[(&str, &str)] = &[];

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

/// The core connection this driver runs.
type Core<'a, 's, R, const Q: usize> =
    connection::Connection<&'a mut Session<'s, Q>, &'a mut [u8], R>;

/// An open CFMS connection; see the [module docs](self).
pub struct Connection<'a, 's, T, R: Entropy, const Q: usize> {
    io: T,
    conn: Core<'a, 's, R, Q>,
    read: &'a mut [u8],
    /// Received bytes not yet taken by the connection: `read[start..end]`.
    start: usize,
    end: usize,
}

/// What a pass over the connection's events found.
enum Found<O> {
    /// The application's closure ran on a session event.
    Event(O),
    /// The connection ended.
    End(ws::Closed),
    /// Nothing yet.
    Nothing,
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
        let (rx, tx): (&mut [u8], &mut [u8]) = (ws_rx, ws_tx);
        let ws = ws::Client::connect(now(), url, NO_HEADERS, streaming(), rng, rx, tx)
            .map_err(Error::Connect)?;
        let mut this = Connection {
            io,
            conn: connection::Connection::new(ws, session),
            read,
            start: 0,
            end: 0,
        };
        let opened = this.handshake().await;
        this.end_on_error(opened)?;
        debug!("CFMS connection open");
        Ok(this)
    }

    async fn handshake(&mut self) -> Result<(), Error<T::Error>> {
        let mut rejected = None;
        loop {
            self.flush().await?;
            let progressed = self.take_input();
            while let Some(event) = self.conn.poll_event() {
                match event {
                    ConnEvent::Connected => return Ok(()),
                    ConnEvent::Rejected(response) => rejected = Some(response.status()),
                    ConnEvent::Closed(closed) => {
                        return Err(match rejected {
                            Some(status) => Error::Rejected { status },
                            None => Error::Closed(closed),
                        });
                    }
                    _ => {}
                }
            }
            if !progressed {
                self.wait(self.conn.poll_timeout()).await?;
            }
        }
    }

    /// The session (state, protocol version, lockdown, chunk hashes).
    pub fn session(&self) -> &Session<'s, Q> {
        self.conn.session()
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
        self.flush().await?;
        let seq = self.conn.command(now(), write).map_err(Error::Cfms)?;
        self.flush().await?;
        Ok(seq)
    }

    /// Answer `TwoFactorRequired` with a TOTP or backup code.
    pub async fn submit_two_factor(&mut self, code: &str) -> Result<Seq, Error<T::Error>> {
        self.flush().await?;
        let seq = self
            .conn
            .submit_two_factor(now(), code)
            .map_err(Error::Cfms)?;
        self.flush().await?;
        Ok(seq)
    }

    /// Drive the connection until the session has an event, and hand it
    /// to `f` (it borrows the receive buffer until `f` returns).
    pub async fn next_event<O>(
        &mut self,
        f: impl FnOnce(ConnectionEvent<'_>) -> O,
    ) -> Result<O, Error<T::Error>> {
        let mut f = Some(f);
        loop {
            let result = self.drive(None, &mut f).await;
            // Without a deadline `None` only comes back if the clock jumped.
            if let Some(o) = self.end_on_error(result)? {
                return Ok(o);
            }
        }
    }

    /// [`next_event`](Self::next_event), but give up at `until` with
    /// `Ok(None)`.
    pub async fn next_event_until<O>(
        &mut self,
        until: Instant,
        f: impl FnOnce(ConnectionEvent<'_>) -> O,
    ) -> Result<Option<O>, Error<T::Error>> {
        let result = self.drive(Some(until), &mut Some(f)).await;
        self.end_on_error(result)
    }

    fn end_on_error<O>(
        &mut self,
        result: Result<O, Error<T::Error>>,
    ) -> Result<O, Error<T::Error>> {
        if result.is_err() {
            self.conn.session_mut().handle_disconnect(now());
        }
        result
    }

    async fn drive<O>(
        &mut self,
        until: Option<Instant>,
        f: &mut Option<impl FnOnce(ConnectionEvent<'_>) -> O>,
    ) -> Result<Option<O>, Error<T::Error>> {
        loop {
            self.flush().await?;
            match self.next_found(f)? {
                Found::Event(o) => return Ok(Some(o)),
                Found::End(closed) => return Err(Error::Closed(closed)),
                Found::Nothing => {}
            }
            self.flush().await?;
            if self.take_input() || self.has_input() {
                continue;
            }
            if until.is_some_and(|at| now() >= at) {
                return Ok(None);
            }
            let deadline = [self.conn.poll_timeout(), until]
                .into_iter()
                .flatten()
                .min();
            self.wait(deadline).await?;
        }
    }

    /// Drain the connection's events up to the first session event, which
    /// goes to `f` (taken out of its option).
    fn next_found<O>(
        &mut self,
        f: &mut Option<impl FnOnce(ConnectionEvent<'_>) -> O>,
    ) -> Result<Found<O>, Error<T::Error>> {
        while let Some(event) = self.conn.poll_event() {
            match event {
                ConnEvent::Session(ConnectionEvent::Desynchronized(why)) => {
                    warning!("CFMS: answers out of step; reconnecting");
                    return Err(Error::Desynchronized(why));
                }
                ConnEvent::Session(ConnectionEvent::BadMessage(e)) => {
                    return Err(Error::Cfms(e));
                }
                ConnEvent::Session(e) => {
                    return Ok(match f.take() {
                        Some(f) => Found::Event(f(e)),
                        None => Found::Nothing,
                    });
                }
                ConnEvent::TransmitTooSmall(e) => {
                    return Err(Error::Send(ws::SendError::InsufficientSize(e)));
                }
                ConnEvent::Closed(closed) => return Ok(Found::End(closed)),
                ConnEvent::Connected | ConnEvent::Rejected(_) => {}
            }
        }
        Ok(Found::Nothing)
    }

    /// `true` while read bytes wait for the connection.
    fn has_input(&self) -> bool {
        self.start < self.end
    }

    /// Feed buffered bytes to the connection; `true` if it took any.
    fn take_input(&mut self) -> bool {
        if self.start >= self.end {
            return false;
        }
        let input = self.read.get(self.start..self.end).unwrap_or_default();
        let used = self.conn.handle_input(now(), input);
        self.start += used;
        used > 0
    }

    /// Write every queued byte (the session's own output included).
    async fn flush(&mut self) -> Result<(), Error<T::Error>> {
        let mut wrote = false;
        while let Some(bytes) = self.conn.poll_transmit(now()) {
            let n = self.io.write(bytes).await.map_err(Error::Io)?;
            if n == 0 {
                return Err(Error::WriteZero);
            }
            self.conn.advance_transmit(n);
            wrote = true;
        }
        if wrote {
            self.io.flush().await.map_err(Error::Io)?;
        }
        Ok(())
    }

    /// Wait for bytes (buffered into `read`) or for `deadline`, then let
    /// time pass on the connection.
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
                self.conn.handle_eof(now());
            }
            Either::First(Ok(n)) => {
                self.start = 0;
                self.end = n;
            }
            Either::First(Err(e)) => return Err(Error::Io(e)),
            Either::Second(()) => {}
        }
        self.conn.handle_timeout(now());
        Ok(())
    }

    /// Close the WebSocket politely (bounded by the client's close
    /// timeout); the transport can then be closed and dropped.
    pub async fn close(mut self) {
        if self
            .conn
            .ws_mut()
            .close(now(), CloseCode::NORMAL, "")
            .is_err()
        {
            return;
        }
        loop {
            if self.flush().await.is_err() {
                return;
            }
            let progressed = self.take_input();
            while let Some(event) = self.conn.poll_event() {
                if let ConnEvent::Closed(_) = event {
                    return;
                }
            }
            if !progressed && self.wait(self.conn.poll_timeout()).await.is_err() {
                return;
            }
        }
    }
}

impl<T, R: Entropy, const Q: usize> Drop for Connection<'_, '_, T, R, Q> {
    fn drop(&mut self) {
        self.conn.session_mut().handle_disconnect(now());
    }
}
