//! The one driver loop of this runtime: an async byte stream pumped through
//! a core [`Connection`], whatever the protocol.
//!
//! ```text
//! open(): queue upgrade ──► write ──► read ──► Connected ──► Driver
//!                                       │ Rejected / Closed / timeout
//!                                       ▼
//!                                  Err(Rejected | Closed)
//!
//! wait_event(): event ready? ──yes──► Ok(true): take it with poll_event()
//!                  ▲    │ no (queued bytes written either way)
//!                  │    ▼
//!                  └── feed bytes / timers ◄── wait for bytes or poll_timeout
//! ```
//!
//! Events borrow the connection, so [`Driver::wait_event`] only says that
//! one is ready and [`Driver::poll_event`] hands it over: a borrowed event
//! never lives across an `await` of the driver.
//! The driver keeps no protocol rule: it moves bytes, reads the clock and
//! waits.
#![deny(clippy::indexing_slicing)]

use embassy_futures::select::{Either, select};
use embassy_time::Timer;
use embedded_io_async::{Read, Write};
use naslink_core::connection::{Command, Event, Session};
use naslink_core::random::Entropy;
use naslink_core::time::Instant;
use naslink_core::ws::{self, CloseCode, Url};
use naslink_core::{Connection, InsufficientSize};

use crate::Error;
use crate::fmt::debug;
use crate::time::{now, to_embassy};

/// Extra handshake headers: neither fnOS nor CFMS checks any.
const NO_HEADERS: &[(&str, &str)] = &[];

/// The memory a [`Driver`] runs in, borrowed from the application.
pub struct Memory<'a> {
    /// One whole received message (the largest answer asked for).
    pub rx: &'a mut [u8],
    /// Queued outgoing frames; must fit the largest message a session
    /// writes (the fnOS login envelope: about 2 KiB).
    pub tx: &'a mut [u8],
    /// Transport reads land here.
    pub read: &'a mut [u8],
}

/// A connection over one transport; see the [module docs](self).
pub struct Driver<'a, T, S: Session, R: Entropy> {
    io: T,
    conn: Connection<S, &'a mut [u8], R>,
    read: &'a mut [u8],
    /// Received bytes not yet taken by the connection: `read[start..end]`.
    start: usize,
    end: usize,
}

impl<'a, T: Read + Write, S: Session, R: Entropy> Driver<'a, T, S, R> {
    /// Run the WebSocket handshake for `url` over `io` (connected, TLS
    /// already running for `wss://`), then start `session` on it.
    ///
    /// `rng` must be a cryptographically secure generator: it makes the
    /// frame masks and the sessions' login keys and padding.
    pub async fn open(
        io: T,
        url: &Url<'_>,
        config: ws::Config,
        session: S,
        rng: R,
        memory: Memory<'a>,
    ) -> Result<Self, Error<T::Error>> {
        let Memory { rx, tx, read } = memory;
        let ws = ws::Client::connect(now(), url, NO_HEADERS, config, rng, rx, tx)
            .map_err(Error::Connect)?;
        let mut driver = Driver {
            io,
            conn: Connection::new(ws, session),
            read,
            start: 0,
            end: 0,
        };
        driver.handshake().await?;
        debug!("websocket open");
        Ok(driver)
    }

    async fn handshake(&mut self) -> Result<(), Error<T::Error>> {
        let mut rejected = None;
        loop {
            self.flush().await?;
            let progressed = self.take_input();
            while let Some(event) = self.conn.poll_event() {
                match event {
                    Event::Connected => return Ok(()),
                    Event::Rejected(response) => rejected = Some(response.status()),
                    Event::Closed(closed) => {
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

    /// The session (state, stored credentials).
    pub fn session(&self) -> &S {
        self.conn.session()
    }

    /// The session, to change its settings or answer a challenge.
    pub fn session_mut(&mut self) -> &mut S {
        self.conn.session_mut()
    }

    /// The core connection, for a protocol's own commands (write them,
    /// then [`flush`](Self::flush)).
    pub fn connection_mut(&mut self) -> &mut Connection<S, &'a mut [u8], R> {
        &mut self.conn
    }

    /// End the connection for the session now (after a fault the
    /// application saw first): its requests in flight fail, its tokens stay.
    pub fn disconnect(&mut self) {
        abandon(&mut self.conn);
        while self.conn.poll_event().is_some() {}
    }

    /// Queue `command` (written straight into the transmit buffer, after
    /// writing out what was queued before) and return its handle.
    pub async fn send<C: Command<S>>(
        &mut self,
        command: &C,
    ) -> Result<C::Handle, SendFailed<T::Error, C::Error>> {
        self.flush().await.map_err(SendFailed::Link)?;
        let handle = self
            .conn
            .send(now(), command)
            .map_err(SendFailed::Refused)?;
        self.flush().await.map_err(SendFailed::Link)?;
        Ok(handle)
    }

    /// Drive the connection until it has an event for the application
    /// (`Ok(true)`: take it with [`poll_event`](Self::poll_event)), or until
    /// `until` (`Ok(false)`). Login, heartbeat and deadlines all advance in
    /// here.
    pub async fn wait_event(&mut self, until: Option<Instant>) -> Result<bool, Error<T::Error>> {
        loop {
            // Events first: handling a message may queue output (the next
            // login step), which the flush then writes.
            let ready = self.conn.has_event();
            self.flush().await?;
            if ready {
                return Ok(true);
            }
            if self.take_input() {
                continue;
            }
            if until.is_some_and(|at| now() >= at) {
                return Ok(false);
            }
            let deadline = match (self.conn.poll_timeout(), until) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            self.wait(deadline).await?;
        }
    }

    /// The event [`wait_event`](Self::wait_event) found. The connection's
    /// end is `Err(Error::Closed)`, after the session's failed requests were
    /// handed over; `Ok(None)` when there is none.
    pub fn poll_event(&mut self) -> Result<Option<S::Event<'_>>, Error<T::Error>> {
        match self.conn.poll_event() {
            Some(Event::Session(e)) => Ok(Some(e)),
            Some(Event::Closed(closed)) => Err(Error::Closed(closed)),
            Some(Event::TransmitTooSmall(InsufficientSize { required })) => {
                Err(Error::TransmitTooSmall { required })
            }
            // The handshake is over before a driver exists.
            Some(Event::Connected | Event::Rejected(_)) | None => Ok(None),
        }
    }

    /// Feed buffered bytes to the connection; `true` if it took any.
    fn take_input(&mut self) -> bool {
        if self.start >= self.end {
            return false;
        }
        let used = self.conn.handle_input(
            now(),
            self.read.get(self.start..self.end).unwrap_or_default(),
        );
        self.start += used;
        used > 0
    }

    /// Write every queued byte (the session's own output included).
    pub async fn flush(&mut self) -> Result<(), Error<T::Error>> {
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

    /// Wait for bytes (into `read`) or for `deadline`, then let the
    /// connection's timers run. Only called once the input is used up.
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

    /// Close politely, bounded by the WebSocket's close timeout; the
    /// transport can then be closed and dropped.
    pub async fn close(&mut self) {
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
                if let Event::Closed(_) = event {
                    return;
                }
            }
            if !progressed && self.wait(self.conn.poll_timeout()).await.is_err() {
                return;
            }
        }
    }
}

impl<T, S: Session, R: Entropy> Drop for Driver<'_, T, S, R> {
    /// A dropped driver ends the connection for the session too: its
    /// requests in flight fail, and its tokens stay for the next one.
    fn drop(&mut self) {
        abandon(&mut self.conn);
        while self.conn.poll_event().is_some() {}
    }
}

/// This side ends the connection: a Close is queued first (when the
/// WebSocket is still open) so that the end is not taken for the server's
/// ([`ws::Client::closed_by_peer`]).
fn abandon<S: Session, R: Entropy>(conn: &mut Connection<S, &mut [u8], R>) {
    let _ = conn.ws_mut().close(now(), CloseCode::NORMAL, "");
    conn.handle_eof(now());
}

/// Why [`Driver::send`] queued nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SendFailed<E, X> {
    /// The transport failed while writing.
    Link(Error<E>),
    /// The session or the WebSocket refused the command.
    Refused(X),
}
