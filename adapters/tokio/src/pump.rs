//! The byte pump of this runtime: a TCP or TLS stream moved through a core
//! [`Connection`], whatever the protocol. It keeps no protocol rule: it
//! reads, writes, reads the clock, and hands the connection's events on.
//!
//! ```text
//! Link::open (upgrade, redirects, access code) ──► Pump::new(link, session)
//!
//!   read() ──► input ──► poll_event(): feed input until an event ──► driver
//!   driver ──► send(command) / handle_timeout() ──► flush() ──► socket
//! ```
//!
//! [`read`](Pump::read) is cancel-safe (it only fills the input buffer), so
//! a driver can `select!` it against its commands and timers. After an
//! event is handled, [`flush`](Pump::flush) writes what handling it queued
//! (the drain rule: events first, then transmit).

use naslink_core::Connection;
use naslink_core::connection::{Command, Event, Message, Session};
use naslink_core::ws::{self, Closed, State};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::link::{Io, Link, OsEntropy, describe_closed, now};

/// How long one write may make no progress before the connection counts
/// as dead (a server that stops reading must not hold the driver forever).
const WRITE_STALL: std::time::Duration = std::time::Duration::from_secs(30);

/// An open connection carrying a session; see the [module docs](self).
pub(crate) struct Pump<S: Session> {
    stream: Box<dyn Io>,
    conn: Connection<S, Vec<u8>, OsEntropy>,
    /// Received bytes; `input[start..]` are not yet taken by the connection.
    input: Vec<u8>,
    start: usize,
    /// Input waits that a read must hand over without waiting for the
    /// server (bytes that came with the 101, or left while a pong was
    /// unwritten).
    leftover: bool,
    /// [`Event::Closed`] was handed over.
    closed: bool,
}

impl<S: Session> Pump<S> {
    /// Start `session` on the open `link`.
    pub(crate) fn new(link: Link, session: S) -> Self {
        let (stream, ws, input) = link.into_parts();
        Pump {
            stream,
            conn: Connection::from_open(ws, session, now()),
            leftover: !input.is_empty(),
            input,
            start: 0,
            closed: false,
        }
    }

    /// The session.
    pub(crate) fn session(&self) -> &S {
        self.conn.session()
    }

    /// The session, to change it (answer a challenge, cancel a request).
    pub(crate) fn session_mut(&mut self) -> &mut S {
        self.conn.session_mut()
    }

    /// The connection, for a protocol's own commands (a CFMS upload writes
    /// file bytes straight into the transmit buffer); call
    /// [`flush`](Self::flush) afterwards.
    pub(crate) fn connection_mut(&mut self) -> &mut Connection<S, Vec<u8>, OsEntropy> {
        &mut self.conn
    }

    /// Queue a WebSocket ping (a keep-alive probe: any answer shows the
    /// link lives). A ping that finds no room is left to the next turn.
    pub(crate) fn ping(&mut self) {
        let _ = self.conn.ws_mut().send_ping(b"naslink");
    }

    /// Wait for bytes from the server and buffer them; returns how many
    /// (0 at end of stream). Cancel-safe. Returns at once while input waits,
    /// and never once the end was handed over.
    pub(crate) async fn read(&mut self) -> usize {
        if self.closed {
            std::future::pending::<()>().await;
        }
        // Input may have been used up since it was marked: then read.
        if std::mem::take(&mut self.leftover) && self.start < self.input.len() {
            return self.input.len() - self.start;
        }
        if self.conn.state() == State::Closed {
            return 0;
        }
        if self.start > 0 {
            self.input.drain(..self.start);
            self.start = 0;
        }
        self.input.reserve(32 * 1024);
        match self.stream.read_buf(&mut self.input).await {
            Ok(n) => n,
            Err(e) => {
                tracing::debug!(error = %e, "read failed");
                0
            }
        }
    }

    /// Note an end of stream from [`read`](Self::read).
    pub(crate) fn handle_eof(&mut self) {
        self.conn.handle_eof(now());
    }

    /// The next event, feeding buffered input to the connection as needed,
    /// with the received message it is about, if any.
    pub(crate) fn poll_event(&mut self) -> Option<(Event<'_, S>, Option<Message<'_>>)> {
        while !self.conn.has_event() {
            let rest = self.input.get(self.start..).unwrap_or_default();
            if rest.is_empty() {
                break;
            }
            let used = self.conn.handle_input(now(), rest);
            if used == 0 {
                break;
            }
            self.start += used;
        }
        let event = self.conn.poll_event_with_message();
        self.closed |= matches!(event, Some((Event::Closed(_), _)));
        event
    }

    /// Queue `command`, written by the session straight into the transmit
    /// buffer; call [`flush`](Self::flush) afterwards.
    pub(crate) fn send<C: Command<S>>(&mut self, command: &C) -> Result<C::Handle, C::Error> {
        self.conn.send(now(), command)
    }

    /// When [`handle_timeout`](Self::handle_timeout) is due.
    pub(crate) fn poll_timeout(&self) -> Option<naslink_core::time::Instant> {
        self.conn.poll_timeout()
    }

    /// Run both layers' timers.
    pub(crate) fn handle_timeout(&mut self) {
        self.conn.handle_timeout(now());
    }

    /// Start a clean close with code 1000.
    pub(crate) fn close(&mut self) {
        let _ = self.conn.ws_mut().close(now(), ws::CloseCode::NORMAL, "");
    }

    /// Give the session back (it keeps its tokens for the next connection).
    pub(crate) fn into_session(self) -> S {
        self.conn.into_parts().0
    }

    /// How the connection ended, in words ([`describe_closed`]), with the
    /// reason text of the server's Close frame when it gave one.
    pub(crate) fn describe_end(&self, closed: Closed) -> String {
        let text = describe_closed(closed);
        match (self.conn.ws().peer_close(), closed) {
            (Some((_, reason)), Closed::Clean { .. }) if !reason.is_empty() => {
                format!("{text}: \"{}\"", crate::link::printable(reason))
            }
            _ => text,
        }
    }

    /// Write everything queued. A write that fails, or makes no progress
    /// for 30 s, ends the connection.
    pub(crate) async fn flush(&mut self) {
        let mut wrote = false;
        while let Some(bytes) = self.conn.poll_transmit(now()) {
            match tokio::time::timeout(WRITE_STALL, self.stream.write(bytes)).await {
                Ok(Ok(n)) if n > 0 => {
                    self.conn.advance_transmit(n);
                    wrote = true;
                    // The core stops taking input while a pong is unwritten
                    // (it never drops an answer): input it left buffered is
                    // fed again by the next `read`, which must not wait for
                    // the server's next byte (a burst of pings would stall).
                    self.leftover |= self.start < self.input.len();
                }
                Ok(Ok(_)) => return self.write_failed("the connection accepts no more bytes"),
                Ok(Err(e)) => return self.write_failed(&e.to_string()),
                Err(_) => return self.write_failed("the server stopped reading"),
            }
        }
        if wrote {
            let _ = tokio::time::timeout(WRITE_STALL, self.stream.flush()).await;
        }
    }

    fn write_failed(&mut self, why: &str) {
        tracing::debug!(error = why, "write failed");
        self.conn.handle_eof(now());
    }
}
