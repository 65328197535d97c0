//! The session inside a [`Connection`]: the opening sequence and the
//! events in the shape every layer shares.
//!
//! The opening sequence and its states are documented on [`State`].
//!
//! Requests from the application are accepted in `Ready` only
//! ([`connection::Session::can_send`]); the two-factor code in `TwoFactor`.
//!
//! Every event is handed out whole: a reply carries its body
//! ([`Response`], borrowing the received message, or the session's
//! receive buffer when the message came in pieces), and a `file_chunk`'s
//! ciphertext comes out as [`Event::DownloadData`] pieces decoded into the
//! session's receive buffer.
#![deny(clippy::indexing_slicing)]

use super::event::Event;
use super::*;
use crate::connection::{self, Message, Transmit as ConnTransmit};
use crate::random::Entropy;
use crate::ws;

/// Where a [`Session`] is in its opening sequence.
///
/// Once the WebSocket is open ([`connection::Session::handle_connect`]),
/// the session walks through its opening sequence by itself, writing each
/// step from `poll_transmit`:
///
/// ```text
/// Disconnected --handle_connect--> ServerInfo --200, protocol 3..=5--> LoggingIn (Config::login)
///                                      |                                |  or Ready (no login,
///                                      |                                |  or a token kept from
///                                      |                                |  the last connection)
///                                      \--other version--> Refused      |
/// LoggingIn --200--> Registering (Config::listener) --reply--> Ready    |
///     |     \-200, no listener--> Ready                                 |
///     |--202--> TwoFactor --submit_two_factor--> LoggingIn              |
///     \--refused (401, 403, 999, ...)--> LoginFailed                    |
/// any --request deadline missed, unreadable transfer--> Broken (reconnect)
/// any --handle_disconnect--> Disconnected (the token is kept)
/// ```
///
/// Requests from the application are accepted in `Ready` only; the
/// two-factor code in `TwoFactor`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// No connection, or driven without a [`Connection`](crate::connection::Connection).
    Disconnected,
    /// `server_info` is due or awaiting its answer.
    ServerInfo,
    /// `login` is due or awaiting its answer.
    LoggingIn,
    /// The server asked for a second factor: answer with the two-factor
    /// command.
    TwoFactor,
    /// `register_listener` is due or awaiting its answer.
    Registering,
    /// Open for requests.
    Ready,
    /// The login was refused ([`Event::LoginFailed`] said why): close.
    /// (An expired password is changed with the direct API's
    /// [`Session::set_passwd`] on a session without credentials.)
    LoginFailed,
    /// The server speaks another protocol version, or refused the opening
    /// `server_info` (its `Reply` says with what status): close.
    Refused,
    /// Answers can no longer be matched to requests: reconnect.
    Broken,
}

/// What the session queued for the application.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Item {
    /// An event (legacy shape; its body, if any, is [`Session::body`]).
    Event(super::Event),
    /// `len` bytes of ciphertext decoded into the receive buffer.
    Data { seq: Seq, len: usize },
    /// A received message could not be handled.
    Bad(Error),
}

impl Item {
    pub(super) fn refers_to_response(&self) -> bool {
        match self {
            Item::Event(e) => e.refers_to_response(),
            Item::Data { .. } => true,
            Item::Bad(_) => false,
        }
    }
}

/// Where the body of the last handled message lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Body {
    /// Nowhere (nothing handled, or a streamed message).
    None,
    /// In the receive buffer (the message came in pieces).
    Rx,
    /// In the message the connection hands back to `poll_event`.
    Message,
}

impl<'a, const Q: usize> Session<'a, Q> {
    /// Where the session is in its opening sequence.
    pub fn state(&self) -> State {
        match self.protocol {
            _ if self.broken => State::Broken,
            Protocol::Refused(_) => State::Refused,
            _ => self.state,
        }
    }

    /// Enter `next`; its message (if it has one) is due.
    pub(super) fn step(&mut self, next: State) {
        self.state = next;
        self.step_due = matches!(
            next,
            State::ServerInfo | State::LoggingIn | State::Registering
        );
    }

    /// `server_info` was answered with a spoken version.
    pub(super) fn on_spoken(&mut self) {
        if self.state != State::ServerInfo {
            return;
        }
        if self.auth.logged_in {
            self.after_login();
        } else if !self.auth.username.is_empty() && !self.auth.password.is_empty() {
            self.step(State::LoggingIn);
        } else {
            self.step(State::Ready);
        }
    }

    /// Logged in: register the listener if configured.
    pub(super) fn after_login(&mut self) {
        if matches!(
            self.state,
            State::ServerInfo | State::LoggingIn | State::TwoFactor
        ) {
            // Protocol 13 sends events to every connection unasked.
            let listen = self.config.listener && self.wire == Wire::Text;
            let next = if listen && self.listener_seq.is_none() {
                State::Registering
            } else {
                State::Ready
            };
            self.step(next);
        }
    }

    /// The login answered 202 (`two_factor`) or was refused.
    pub(super) fn on_login_refused(&mut self, two_factor: bool) {
        if matches!(self.state, State::LoggingIn | State::TwoFactor) {
            self.step(if two_factor {
                State::TwoFactor
            } else {
                State::LoginFailed
            });
        }
    }

    /// Whether the reply to `seq` is the opening sequence's listener.
    pub(super) fn is_listener(&self, seq: Seq) -> bool {
        self.listener_seq == Some(seq)
    }

    /// Whether `seq` is the opening sequence's `server_info`.
    pub(super) fn is_opening(&self, seq: Seq) -> bool {
        self.opening_seq == Some(seq)
    }

    /// Write the opening sequence's next message, if due.
    fn write_step(&mut self, now: Instant, out: &mut [u8]) -> Result<Option<usize>, Error> {
        if !self.step_due || self.broken || self.pending.is_full() {
            return Ok(None);
        }
        let sent = match self.state {
            State::ServerInfo => {
                let sent = self.server_info(now, out)?;
                self.opening_seq = Some(sent.seq);
                sent
            }
            State::LoggingIn => {
                self.check_can_send("login")?;
                self.send_login(now, out, None, true)?
            }
            State::Registering => {
                let sent = self.register_listener(now, out)?;
                self.listener_seq = Some(sent.seq);
                sent
            }
            _ => return Ok(None),
        };
        self.step_due = false;
        Ok(Some(sent.len))
    }

    /// Send the two-factor code (after [`Event::TwoFactorRequired`]).
    pub(crate) fn write_two_factor(
        &mut self,
        now: Instant,
        code: &str,
        buf: &mut [u8],
    ) -> Result<Sent, Error> {
        let sent = self.submit_two_factor(now, code, buf)?;
        if self.state == State::TwoFactor {
            self.state = State::LoggingIn;
        }
        Ok(sent)
    }

    /// The upload's current binary message: whether it starts now, its
    /// length, and the bytes it still takes.
    pub(crate) fn upload_frame(&self) -> Option<(bool, u64, u64)> {
        match &self.transfer {
            Transfer::Upload(up) => up.frame(),
            _ => None,
        }
    }
}

/// WebSocket message kinds as CFMS's.
fn kind_of(kind: ws::MessageKind) -> MessageKind {
    match kind {
        ws::MessageKind::Text => MessageKind::Text,
        ws::MessageKind::Binary => MessageKind::Binary,
    }
}

impl<const Q: usize> connection::Session for Session<'_, Q> {
    type Event<'e>
        = Event<'e>
    where
        Self: 'e;

    fn handle_connect(&mut self, now: Instant) {
        self.last_activity = now;
        self.listener_seq = None;
        self.step(State::ServerInfo);
    }

    fn handle_disconnect(&mut self, now: Instant) {
        Session::handle_disconnect(self, now);
    }

    fn handle_peer_close(&mut self, now: Instant) {
        Session::handle_peer_close(self, now);
    }

    fn poll_timeout(&self) -> Option<Instant> {
        Session::poll_timeout(self)
    }

    fn handle_timeout(&mut self, now: Instant) {
        Session::handle_timeout(self, now)
    }

    fn can_send(&self) -> bool {
        // Behind a re-login a request would carry the rejected token.
        let relogging = self.relogging();
        self.state() == State::Ready
            && matches!(self.transfer, Transfer::None)
            && !self.pending.is_full()
            && !relogging
    }

    fn has_event(&self) -> bool {
        !self.events.is_empty()
    }

    fn poll_transmit<R: Entropy>(
        &mut self,
        now: Instant,
        rng: &mut R,
        out: &mut [u8],
    ) -> Result<Option<ConnTransmit>, crate::InsufficientSize> {
        self.prepare_nonce(rng);
        let kind = match self.message_kind() {
            MessageKind::Text => ws::MessageKind::Text,
            MessageKind::Binary => ws::MessageKind::Binary,
        };
        let text = |len| Some(ConnTransmit { kind, len });
        match self.write_step(now, out) {
            Ok(Some(len)) => return Ok(text(len)),
            Ok(None) => {}
            Err(Error::BufferTooSmall { required }) => {
                return Err(crate::InsufficientSize { required });
            }
            // Nothing else can refuse a step the state allows; the step
            // stays due.
            Err(_) => return Ok(None),
        }
        match Session::poll_transmit(self, now, out) {
            Ok(t) => Ok(t.map(|t| ConnTransmit {
                kind: match t.kind {
                    // Requests the session owes go out on the current wire.
                    MessageKind::Text => kind,
                    MessageKind::Binary => ws::MessageKind::Binary,
                },
                len: t.len,
            })),
            Err(Error::BufferTooSmall { required }) => Err(crate::InsufficientSize { required }),
            Err(_) => Ok(None),
        }
    }

    fn handle_message(&mut self, now: Instant, message: Message<'_>) -> bool {
        let kind = kind_of(message.kind);
        let whole = message.first && message.last;
        let result = if whole && !self.streams(kind, message.data) {
            self.handle_in_place(now, kind, message.data)
        } else {
            self.handle_part(now, kind, message.data, message.first, message.last)
        };
        if let Err(e) = result {
            // The adapter closes on it; meanwhile nothing more is sent.
            self.broken = true;
            self.push(Item::Bad(e));
        }
        !self.events.is_empty()
    }

    fn poll_event<'e>(&'e mut self, message: Option<Message<'e>>) -> Option<Event<'e>> {
        let item = self.events.pop_front()?;
        let this: &'e Self = self;
        Some(match item {
            Item::Event(e) => this.dress(e, message),
            Item::Data { seq, len } => Event::DownloadData {
                seq,
                data: this.rx.get(..len).unwrap_or_default(),
            },
            Item::Bad(e) => Event::BadMessage(e),
        })
    }
}
