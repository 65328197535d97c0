//! One WebSocket connection carrying one protocol session: the byte-level
//! API every adapter drives, whatever the runtime or the protocol.
//!
//! A [`Connection`] owns a [`ws::Client`] and a [`Session`] (an fnOS or CFMS
//! session, or `&mut` one, so that the session outlives the connection and
//! keeps its tokens across reconnects). The adapter moves bytes and time:
//!
//! ```text
//!            handle_input(now, bytes) -> consumed     handle_timeout(now)
//!   socket ───────────────────────────────► Connection ◄──────────────── timer
//!   socket ◄─────── poll_transmit / advance_transmit    poll_timeout ───► timer
//!   app    ◄─────── poll_event: Connected | Rejected | Session(event) | Closed
//!   app    ───────► commands (fnOS `request`, CFMS actions): enqueue, return a handle
//! ```
//!
//! The drain rule is the same at every layer: after any input (bytes, a
//! timeout, a command), drain [`poll_event`](Connection::poll_event) until
//! `None`, then [`poll_transmit`](Connection::poll_transmit) until `None`
//! (handling a message may queue output, such as the next login step;
//! transmitting never raises an event), then arm a timer for
//! [`poll_timeout`](Connection::poll_timeout). An event borrows the
//! connection (a reply body points into the receive buffer) until the next
//! call.
//!
//! Session output (login steps, pings, transfer headers) is written by the
//! session straight into the WebSocket transmit buffer through
//! [`ws::Client::transmit_with`]; there is no second copy buffer. The
//! session draws its randomness from the WebSocket client's entropy source.
//!
//! # States
//!
//! The connection's state is its WebSocket client's ([`ws::State`]):
//! `Handshaking` until the upgrade answer, then `Open` (the session is told
//! [`Session::handle_connect`] when [`Event::Connected`] is handed out),
//! `Closing`, and `Closed` (the session is told
//! [`Session::handle_disconnect`]; its failed requests come out as session
//! events before the final [`Event::Closed`]).
#![deny(clippy::indexing_slicing)]

use core::fmt;

use crate::InsufficientSize;
use crate::random::Entropy;
use crate::time::Instant;
use crate::ws::{self, Closed, MessageKind};

/// One received message, or a piece of one when the WebSocket client runs
/// in streaming mode ([`ws::Config::streaming`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Message<'a> {
    /// Text or binary.
    pub kind: MessageKind,
    /// The bytes (text is valid UTF-8).
    pub data: &'a [u8],
    /// The first piece of the message.
    pub first: bool,
    /// The last piece of the message.
    pub last: bool,
}

/// A message a session wrote into the transmit buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Transmit {
    /// Text or binary.
    pub kind: MessageKind,
    /// Bytes written.
    pub len: usize,
}

/// What a protocol session offers to run inside a [`Connection`]: the
/// shape of every layer (commands enqueue, bytes leave through
/// `poll_transmit`, events through `poll_event`, time through
/// `handle_timeout`/`poll_timeout`).
///
/// Receiving is split in two so that an event can borrow the message
/// without the connection holding that borrow across its own loop:
/// [`handle_message`](Session::handle_message) updates the state and says
/// whether an event refers to the message; the next
/// [`poll_event`](Session::poll_event) gets the same message again to build
/// that event.
pub trait Session {
    /// What the application is told; may borrow the received message and
    /// the session.
    type Event<'a>
    where
        Self: 'a;

    /// The WebSocket connection is open.
    fn handle_connect(&mut self, now: Instant);
    /// The connection is gone; requests in flight fail (as events).
    fn handle_disconnect(&mut self, now: Instant);
    /// The server ended the connection ([`ws::Client::closed_by_peer`]):
    /// told just before [`handle_disconnect`](Session::handle_disconnect),
    /// never when this side closed, failed or timed out. Does nothing
    /// unless a session needs to tell the two apart.
    fn handle_peer_close(&mut self, _now: Instant) {}
    /// When [`handle_timeout`](Session::handle_timeout) is due.
    fn poll_timeout(&self) -> Option<Instant>;
    /// Let time pass.
    fn handle_timeout(&mut self, now: Instant);
    /// Whether the session can take another request now (room in its table
    /// of requests in flight, and a state that sends).
    fn can_send(&self) -> bool;

    /// Write the next message the session itself owes the server (a login
    /// step, a ping, a transfer header) into `out`, drawing randomness from
    /// `rng`. `Ok(None)`: nothing is due.
    fn poll_transmit<R: Entropy>(
        &mut self,
        now: Instant,
        rng: &mut R,
        out: &mut [u8],
    ) -> Result<Option<Transmit>, InsufficientSize>;

    /// Take one received message (or piece). Returns `true` when an event
    /// about it is waiting: the connection then keeps the message and hands
    /// it to the next [`poll_event`](Session::poll_event).
    fn handle_message(&mut self, now: Instant, message: Message<'_>) -> bool;

    /// Whether [`poll_event`](Session::poll_event) with `None` would return
    /// an event (a timeout, a failed request, a login failure found while
    /// sending, or the second of several events one message raised). The
    /// connection hands these out before it takes the next message, so an
    /// event about a message is out before the next message arrives.
    fn has_event(&self) -> bool;

    /// The next event. `message` is the message the last
    /// [`handle_message`](Session::handle_message) returned `true` for, if
    /// that event has not been handed out yet; otherwise `None`.
    fn poll_event<'a>(&'a mut self, message: Option<Message<'a>>) -> Option<Self::Event<'a>>;
}

impl<T: Session + ?Sized> Session for &mut T {
    type Event<'a>
        = T::Event<'a>
    where
        Self: 'a;

    fn handle_connect(&mut self, now: Instant) {
        (**self).handle_connect(now)
    }
    fn handle_disconnect(&mut self, now: Instant) {
        (**self).handle_disconnect(now)
    }
    fn handle_peer_close(&mut self, now: Instant) {
        (**self).handle_peer_close(now)
    }
    fn poll_timeout(&self) -> Option<Instant> {
        (**self).poll_timeout()
    }
    fn handle_timeout(&mut self, now: Instant) {
        (**self).handle_timeout(now)
    }
    fn can_send(&self) -> bool {
        (**self).can_send()
    }
    fn has_event(&self) -> bool {
        (**self).has_event()
    }
    fn poll_transmit<R: Entropy>(
        &mut self,
        now: Instant,
        rng: &mut R,
        out: &mut [u8],
    ) -> Result<Option<Transmit>, InsufficientSize> {
        (**self).poll_transmit(now, rng, out)
    }
    fn handle_message(&mut self, now: Instant, message: Message<'_>) -> bool {
        (**self).handle_message(now, message)
    }
    fn poll_event<'a>(&'a mut self, message: Option<Message<'a>>) -> Option<Self::Event<'a>> {
        (**self).poll_event(message)
    }
}

/// A command a session turns into one message: an fnOS
/// [`Request`](crate::fnos::Request), a CFMS action. [`Connection::send`]
/// has the session write it straight into the WebSocket transmit buffer and
/// returns its handle (an fnOS reqid, a CFMS sequence number).
pub trait Command<S> {
    /// What the answer will be matched by.
    type Handle;
    /// Why the session refused it; also carries the WebSocket's refusal.
    type Error: From<ws::SendError>;

    /// Write the message into `out` (at most `out.len()` bytes) and register
    /// it with `session`; return its kind, length and handle.
    fn write<R: Entropy>(
        &self,
        session: &mut S,
        now: Instant,
        rng: &mut R,
        out: &mut [u8],
    ) -> Result<(Transmit, Self::Handle), Self::Error>;
}

/// Something for the application, from [`Connection::poll_event`].
pub enum Event<'a, S: Session + 'a> {
    /// The upgrade succeeded; the session has started (login steps follow).
    Connected,
    /// The server answered the upgrade with another status (a redirect, an
    /// fnOS access-code challenge, ...); [`Event::Closed`] follows.
    Rejected(ws::Response<'a>),
    /// A session event (a reply, a push, a login outcome, a failed request).
    Session(S::Event<'a>),
    /// The session's output does not fit the WebSocket transmit buffer even
    /// when it is empty: the buffer is too small for this protocol. The
    /// connection cannot make progress; close it and use a larger buffer.
    TransmitTooSmall(InsufficientSize),
    /// The connection is over (after the session's failed requests were
    /// reported): drop the transport.
    Closed(Closed),
}

impl<'a, S: Session + 'a> fmt::Debug for Event<'a, S>
where
    S::Event<'a>: fmt::Debug,
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Event::Connected => f.write_str("Connected"),
            Event::Rejected(r) => f.debug_tuple("Rejected").field(&r.status()).finish(),
            Event::Session(e) => f.debug_tuple("Session").field(e).finish(),
            Event::TransmitTooSmall(e) => f.debug_tuple("TransmitTooSmall").field(e).finish(),
            Event::Closed(c) => f.debug_tuple("Closed").field(c).finish(),
        }
    }
}

/// What the last pass over WebSocket events left for the application.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Held {
    /// Nothing: look at the session's own events.
    Nothing,
    /// The session has an event about the last delivered message.
    Message,
    /// The last delivered WebSocket event was `Connected` or `Rejected`.
    Upgrade,
}

/// A WebSocket client and a protocol session, driven as one; see the
/// [module docs](self).
pub struct Connection<S, B, E> {
    pub(crate) ws: ws::Client<B, E>,
    pub(crate) session: S,
    pub(crate) now: Instant,
    held: Held,
    /// Why the connection ended, reported once the session's events are out.
    closed: Option<Closed>,
    closed_reported: bool,
    /// Session output that can never fit, reported once.
    too_small: Option<InsufficientSize>,
}

impl<S, B, E> fmt::Debug for Connection<S, B, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Connection")
            .field("ws", &self.ws)
            .field("held", &self.held)
            .finish_non_exhaustive()
    }
}

impl<S: Session, B: AsRef<[u8]> + AsMut<[u8]>, E: Entropy> Connection<S, B, E> {
    /// Compose a client that has just queued its upgrade request
    /// ([`ws::Client::connect`]) with a session.
    pub fn new(ws: ws::Client<B, E>, session: S) -> Self {
        Connection {
            ws,
            session,
            now: Instant::ZERO,
            held: Held::Nothing,
            closed: None,
            closed_reported: false,
            too_small: None,
        }
    }

    /// Compose a client whose upgrade already succeeded (a runtime that ran
    /// the upgrade itself, following redirects or an access-code gate) with
    /// a session, which starts at once: its first messages are ready for
    /// [`poll_transmit`](Self::poll_transmit).
    pub fn from_open(ws: ws::Client<B, E>, mut session: S, now: Instant) -> Self {
        session.handle_connect(now);
        let mut conn = Self::new(ws, session);
        conn.now = now;
        conn
    }

    /// Take the session and the buffers back (to reconnect with the same
    /// session, which keeps its tokens).
    pub fn into_parts(self) -> (S, B, B) {
        let (rx, tx) = self.ws.into_buffers();
        (self.session, rx, tx)
    }

    /// The session (state, stored credentials, ...).
    pub fn session(&self) -> &S {
        &self.session
    }

    /// The session, to change its settings.
    pub fn session_mut(&mut self) -> &mut S {
        &mut self.session
    }

    /// The WebSocket client (state, close, ping).
    pub fn ws(&self) -> &ws::Client<B, E> {
        &self.ws
    }

    /// The WebSocket client, for close and ping.
    pub fn ws_mut(&mut self) -> &mut ws::Client<B, E> {
        &mut self.ws
    }

    /// The connection's state: its WebSocket client's.
    pub fn state(&self) -> ws::State {
        self.ws.state()
    }

    /// Whether a command can be queued now: the WebSocket is open, no
    /// message is half sent, and the session has room.
    pub fn can_send(&self) -> bool {
        self.ws.can_send() && self.session.can_send()
    }

    /// Queue `command`: the session writes it straight into the transmit
    /// buffer (nothing is queued if it fails). Returns the handle its answer
    /// will carry. Drain [`poll_transmit`](Self::poll_transmit) afterwards.
    pub fn send<C: Command<S>>(
        &mut self,
        now: Instant,
        command: &C,
    ) -> Result<C::Handle, C::Error> {
        self.now = self.now.max(now);
        // The session's own pending output (a login step, a ping) goes
        // first, so the server sees messages in the order they were made.
        self.queue_session_output();
        let session = &mut self.session;
        let mut handle = None;
        let written = self.ws.transmit_with(usize::MAX, |buf, rng| {
            let (t, h) = command.write(session, now, rng, buf)?;
            handle = Some(h);
            Ok::<_, C::Error>(Some((t.kind, t.len)))
        });
        match written {
            Ok(_) => handle.ok_or_else(|| ws::SendError::NotOpen.into()),
            Err(ws::SendWithError::Send(e)) => Err(e.into()),
            Err(ws::SendWithError::Write(e)) => Err(e),
        }
    }

    /// Feed bytes read from the transport; returns how many were consumed.
    /// Fewer than `data.len()` means events wait: drain
    /// [`poll_event`](Self::poll_event) and
    /// [`poll_transmit`](Self::poll_transmit), then pass the rest again.
    pub fn handle_input(&mut self, now: Instant, data: &[u8]) -> usize {
        self.now = self.now.max(now);
        if self.held != Held::Nothing {
            return 0;
        }
        self.ws.handle_input(now, data)
    }

    /// The transport reached end of stream or broke.
    pub fn handle_eof(&mut self, now: Instant) {
        self.now = self.now.max(now);
        self.ws.handle_eof(now);
    }

    /// When [`handle_timeout`](Self::handle_timeout) is due: the earlier of
    /// the WebSocket's (close handshake) and the session's deadlines.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let session = match self.ws.state() {
            ws::State::Open | ws::State::Closing => self.session.poll_timeout(),
            _ => None,
        };
        match (self.ws.poll_timeout(), session) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Let time pass on both layers.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.now = self.now.max(now);
        self.ws.handle_timeout(now);
        if matches!(self.ws.state(), ws::State::Open | ws::State::Closing) {
            self.session.handle_timeout(now);
        }
    }

    /// Bytes to write to the transport, or `None`. After writing `n` of
    /// them call [`advance_transmit`](Self::advance_transmit). The session's
    /// own output is queued here first, stamped with `now` (a login step's
    /// deadline counts from when it is written).
    pub fn poll_transmit(&mut self, now: Instant) -> Option<&[u8]> {
        self.now = self.now.max(now);
        self.queue_session_output();
        self.ws.poll_transmit()
    }

    /// Record that `n` bytes from the last
    /// [`poll_transmit`](Self::poll_transmit) were written.
    pub fn advance_transmit(&mut self, n: usize) {
        self.ws.advance_transmit(n)
    }

    /// Let the session write what it owes the server, straight into the
    /// WebSocket transmit buffer, until it has nothing more or no room.
    fn queue_session_output(&mut self) {
        let (ws, session, now) = (&mut self.ws, &mut self.session, self.now);
        while ws.can_send() {
            let written = ws.transmit_with(usize::MAX, |buf, rng| {
                session
                    .poll_transmit(now, rng, buf)
                    .map(|t| t.map(|t| (t.kind, t.len)))
            });
            match written {
                Ok(Some(_)) => {}
                Ok(None) => return,
                // The queue holds other frames: retry once they are written.
                Err(ws::SendWithError::Write(e)) if ws.poll_transmit().is_some() => {
                    let _ = e;
                    return;
                }
                Err(ws::SendWithError::Write(e)) => {
                    self.too_small.get_or_insert(e);
                    return;
                }
                Err(ws::SendWithError::Send(_)) => return,
            }
        }
    }

    /// Whether [`poll_event`](Self::poll_event) has an event now. It looks
    /// at received messages to find out, so a runtime that cannot keep a
    /// borrowed event across its own `await`s (or loops) asks this first,
    /// waits for input while it is `false`, and calls `poll_event` once it
    /// is `true`.
    pub fn has_event(&mut self) -> bool {
        if self.held == Held::Nothing && !self.session.has_event() {
            self.held = self.pump();
        }
        self.held != Held::Nothing
            || self.too_small.is_some()
            || self.session.has_event()
            || (self.closed.is_some() && !self.closed_reported)
    }

    /// The next event, or `None`: drain after every input. It borrows the
    /// connection until the next call.
    pub fn poll_event(&mut self) -> Option<Event<'_, S>> {
        self.poll_event_with_message().map(|(event, _)| event)
    }

    /// [`poll_event`](Self::poll_event), with the received message the
    /// event is about (for a session event about a message): for runtimes
    /// that hand the raw text on as well, such as a binding.
    pub fn poll_event_with_message(&mut self) -> Option<(Event<'_, S>, Option<Message<'_>>)> {
        if self.held == Held::Nothing && !self.session.has_event() {
            self.held = self.pump();
        }
        let held = core::mem::replace(&mut self.held, Held::Nothing);
        if held == Held::Upgrade {
            return match self.ws.last_event() {
                Some(ws::Event::Rejected(r)) => Some((Event::Rejected(r), None)),
                _ => Some((Event::Connected, None)),
            };
        }
        if let Some(e) = self.too_small.take() {
            return Some((Event::TransmitTooSmall(e), None));
        }
        // The message's event first, then those the session raised without
        // a message (timeouts, failed requests, login failures found while
        // sending): one call, so the borrow ends with this function.
        let message = match held {
            Held::Message => self.ws.last_event().and_then(as_message),
            _ => None,
        };
        if let Some(e) = self.session.poll_event(message) {
            return Some((Event::Session(e), message));
        }
        match self.closed {
            Some(c) if !self.closed_reported => {
                self.closed_reported = true;
                Some((Event::Closed(c), None))
            }
            _ => None,
        }
    }

    /// Hand WebSocket events to the session until one concerns the
    /// application.
    fn pump(&mut self) -> Held {
        let now = self.now;
        while let Some(event) = self.ws.poll_event() {
            match event {
                ws::Event::Connected => {
                    self.session.handle_connect(now);
                    return Held::Upgrade;
                }
                ws::Event::Rejected(_) => return Held::Upgrade,
                ws::Event::Closed(c) => {
                    if self.closed.is_none() {
                        if self.ws.closed_by_peer() {
                            self.session.handle_peer_close(now);
                        }
                        self.session.handle_disconnect(now);
                        self.closed = Some(c);
                    }
                    return Held::Nothing;
                }
                other => {
                    if let Some(m) = as_message(other)
                        && self.session.handle_message(now, m)
                    {
                        return Held::Message;
                    }
                }
            }
        }
        Held::Nothing
    }
}

/// A data event as a [`Message`]; `None` for control events.
fn as_message(event: ws::Event<'_>) -> Option<Message<'_>> {
    let (kind, data, first, last) = match event {
        ws::Event::Text(t) => (MessageKind::Text, t.as_bytes(), true, true),
        ws::Event::Binary(b) => (MessageKind::Binary, b, true, true),
        ws::Event::TextChunk { data, first, last } => {
            (MessageKind::Text, data.as_bytes(), first, last)
        }
        ws::Event::BinaryChunk { data, first, last } => (MessageKind::Binary, data, first, last),
        _ => return None,
    };
    Some(Message {
        kind,
        data,
        first,
        last,
    })
}
