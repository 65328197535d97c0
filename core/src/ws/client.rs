//! The client connection state machine; see the [module docs](super).
#![deny(clippy::indexing_slicing)]

use core::fmt;

use super::close::CloseCode;
use super::frame::{
    self, FrameHeader, InsufficientSize, MAX_CONTROL_PAYLOAD, MAX_HEADER_LEN, Opcode, Status,
};
use super::handshake::{self, ACCEPT_LEN, HandshakeError, Outcome, RequestError, Response, Url};
use super::utf8::Utf8Validator;
use crate::random::Entropy;
use crate::time::{Duration, Instant};

/// Smallest receive buffer [`Client::connect`] accepts. It must also hold
/// the server's whole handshake response head; 1 KiB or more is sensible.
pub const MIN_RECEIVE_BUFFER: usize = 128;

/// A masked control frame: 2 header bytes, 4 mask bytes, 125 payload bytes.
const CONTROL_FRAME_LEN: usize = 6 + MAX_CONTROL_PAYLOAD;

/// Tunables; [`Config::default`] suits both firmware and PCs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Config {
    /// Deliver a message larger than the receive buffer as
    /// [`Event::TextChunk`]/[`Event::BinaryChunk`] pieces instead of failing
    /// the connection with 1009 (Message Too Big).
    pub streaming: bool,
    /// How long the server may take to answer the upgrade request.
    pub handshake_timeout: Duration,
    /// How long to wait for the close handshake to finish (our Close to be
    /// written and the server's to arrive) before giving up.
    pub close_timeout: Duration,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            streaming: false,
            handshake_timeout: Duration::from_secs(10),
            close_timeout: Duration::from_secs(5),
        }
    }
}

/// Where the connection is in its life; see the [module docs](super).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// The upgrade request is queued or sent; waiting for the 101.
    Handshaking,
    /// Messages flow both ways.
    Open,
    /// A Close frame is queued or sent (ours or our reply); no more data is
    /// sent. Data still received before the server's Close is delivered.
    Closing,
    /// Finished: drop the transport. [`Event::Closed`] says why.
    Closed,
}

/// How the server broke RFC 6455. Each maps to the close code we send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProtocolError {
    /// A server frame had the MASK bit set (§5.1).
    MaskedFrame,
    /// RSV bits were set but no extension was negotiated (§5.2).
    ReservedBits(u8),
    /// An opcode reserved for future use (§5.2).
    ReservedOpcode(u8),
    /// A 64-bit length with its most significant bit set (§5.2).
    LengthMsbSet,
    /// A control frame without FIN (§5.5).
    FragmentedControlFrame,
    /// A control frame longer than 125 bytes (§5.5).
    ControlFrameTooLong(u64),
    /// A continuation frame with no fragmented message in progress (§5.4).
    UnexpectedContinuation,
    /// A new text or binary frame while a fragmented message was unfinished.
    UnfinishedMessage,
    /// A text message (or close reason) is not UTF-8 (§8.1): code 1007.
    InvalidUtf8,
    /// A Close frame with a one-byte payload (§5.5.1).
    CloseFrameTooShort,
    /// A Close frame with a code that may not be sent (§7.4).
    InvalidCloseCode(u16),
    /// The message is larger than the receive buffer and streaming is off:
    /// code 1009.
    MessageTooBig {
        /// The receive buffer's size.
        capacity: usize,
    },
}

impl ProtocolError {
    /// The status code of the Close frame this fault is answered with.
    pub fn close_code(&self) -> CloseCode {
        match self {
            ProtocolError::InvalidUtf8 => CloseCode::INVALID_PAYLOAD,
            ProtocolError::MessageTooBig { .. } => CloseCode::MESSAGE_TOO_BIG,
            _ => CloseCode::PROTOCOL_ERROR,
        }
    }
}

impl fmt::Display for ProtocolError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProtocolError::MaskedFrame => f.write_str("server sent a masked frame"),
            ProtocolError::ReservedBits(b) => {
                write!(f, "RSV bits {b:#05b} set without an extension")
            }
            ProtocolError::ReservedOpcode(op) => write!(f, "reserved opcode {op:#x}"),
            ProtocolError::LengthMsbSet => f.write_str("64-bit payload length has its top bit set"),
            ProtocolError::FragmentedControlFrame => f.write_str("control frame without FIN"),
            ProtocolError::ControlFrameTooLong(n) => {
                write!(f, "control frame of {n} bytes (max 125)")
            }
            ProtocolError::UnexpectedContinuation => {
                f.write_str("continuation frame outside a fragmented message")
            }
            ProtocolError::UnfinishedMessage => {
                f.write_str("new message before the fragmented one ended")
            }
            ProtocolError::InvalidUtf8 => f.write_str("text is not valid UTF-8"),
            ProtocolError::CloseFrameTooShort => f.write_str("close frame with a one-byte payload"),
            ProtocolError::InvalidCloseCode(c) => write!(f, "close code {c} may not be sent"),
            ProtocolError::MessageTooBig { capacity } => {
                write!(f, "message larger than the {capacity}-byte receive buffer")
            }
        }
    }
}

/// Why the connection was failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Error {
    /// The opening handshake did not succeed.
    Handshake(HandshakeError),
    /// The server broke the framing rules.
    Protocol(ProtocolError),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Handshake(e) => write!(f, "handshake failed: {e}"),
            Error::Protocol(e) => write!(f, "protocol error: {e}"),
        }
    }
}

/// How the connection ended, reported once by [`Event::Closed`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Closed {
    /// Both Close frames were exchanged. `code` is the server's.
    Clean {
        /// The status code in the server's Close frame, if it sent one.
        code: Option<CloseCode>,
    },
    /// We failed the connection (after sending a Close frame if we could).
    Failed(Error),
    /// The opening or closing handshake took longer than configured.
    TimedOut,
    /// The transport ended before the close handshake finished (what
    /// RFC 6455 reports as 1006).
    Abnormal,
}

/// Why [`Client::connect`] refused to start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnectError {
    /// The upgrade request could not be written into the transmit buffer.
    Request(RequestError),
    /// The receive buffer is shorter than [`MIN_RECEIVE_BUFFER`].
    ReceiveBufferTooSmall,
}

/// Why a send was refused. Nothing was queued.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SendError {
    /// The handshake has not finished.
    NotOpen,
    /// A Close frame is queued or sent, or the connection is closed.
    Closing,
    /// The transmit buffer lacks room; drain [`Client::poll_transmit`] and
    /// retry. If `required` exceeds the whole buffer it will never fit: use
    /// [`Client::send_fragment`] or [`Client::begin_binary`].
    InsufficientSize(InsufficientSize),
    /// A fragmented or streamed message is unfinished, so a new message
    /// cannot start.
    MessageInProgress,
    /// [`Client::send_binary_part`] without a [`Client::begin_binary`]
    /// stream in progress.
    NoMessageInProgress,
    /// Control payloads (ping, close reason + 2) are limited to 125 bytes.
    ControlPayloadTooLong,
    /// The previous ping is still waiting to be written.
    PingPending,
    /// The close code may not be sent (see [`CloseCode::is_valid_on_wire`]).
    InvalidCloseCode,
}

/// Why [`Client::send_with`] queued nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SendWithError<X> {
    /// The client refused the message (see [`SendError`]).
    Send(SendError),
    /// The writer failed with its own error.
    Write(X),
}

/// Kind of data message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MessageKind {
    /// UTF-8 text.
    Text,
    /// Arbitrary bytes.
    Binary,
}

/// Something for the application, from [`Client::poll_event`]. Borrowed
/// data stays valid until the next call on the client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event<'e> {
    /// The server accepted the upgrade: the connection is open.
    Connected,
    /// The server answered the upgrade with another status (a redirect, a
    /// 401 with an access-code challenge, ...); [`Event::Closed`] follows.
    Rejected(Response<'e>),
    /// A whole text message.
    Text(&'e str),
    /// A whole binary message.
    Binary(&'e [u8]),
    /// A piece of a text message larger than the receive buffer
    /// ([`Config::streaming`]). Pieces end on character boundaries: a
    /// character split by the buffer's end moves to the next piece.
    TextChunk {
        /// The piece.
        data: &'e str,
        /// First piece of the message.
        first: bool,
        /// Last piece of the message.
        last: bool,
    },
    /// A piece of a binary message larger than the receive buffer.
    BinaryChunk {
        /// The piece.
        data: &'e [u8],
        /// First piece of the message.
        first: bool,
        /// Last piece of the message.
        last: bool,
    },
    /// A ping arrived; the pong is already queued (none is sent once our
    /// Close is queued).
    Ping(&'e [u8]),
    /// A pong arrived.
    Pong(&'e [u8]),
    /// The server sent a Close frame; our answer is queued unless we had
    /// sent ours already. [`Event::Closed`] follows once done.
    CloseReceived {
        /// The server's status code, if any.
        code: Option<CloseCode>,
        /// The server's reason text.
        reason: &'e str,
    },
    /// The connection is over: drop the transport.
    Closed(Closed),
}

/// An event waiting to be handed out; its data sits in `rx` or `control`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Pending {
    None,
    Connected,
    Rejected {
        status: u16,
        head_len: usize,
    },
    Message {
        kind: MessageKind,
        len: usize,
    },
    Chunk {
        kind: MessageKind,
        len: usize,
        first: bool,
        last: bool,
    },
    Ping,
    Pong,
    CloseReceived {
        code: Option<CloseCode>,
    },
}

/// The frame whose payload is arriving.
#[derive(Debug, Clone, Copy)]
struct InFrame {
    opcode: Opcode,
    fin: bool,
    remaining: u64,
}

/// The data message being reassembled in `rx[..len]`.
#[derive(Debug, Clone, Copy)]
struct InMessage {
    kind: MessageKind,
    len: usize,
    utf8: Utf8Validator,
    /// Some piece was already delivered as a chunk.
    chunked: bool,
}

/// A masked control frame queued for sending, kept apart from the data
/// queue so it can jump ahead of queued data at a frame boundary.
#[derive(Debug, Clone, Copy)]
struct ControlSlot {
    buf: [u8; CONTROL_FRAME_LEN],
    len: u8,
    sent: u8,
}

impl ControlSlot {
    const EMPTY: ControlSlot = ControlSlot {
        buf: [0; CONTROL_FRAME_LEN],
        len: 0,
        sent: 0,
    };

    fn is_empty(&self) -> bool {
        self.len == 0
    }

    fn fill(&mut self, opcode: Opcode, mask: [u8; 4], parts: [&[u8]; 2]) {
        let len = parts[0].len() + parts[1].len();
        let header = FrameHeader {
            fin: true,
            rsv: 0,
            opcode,
            mask: Some(mask),
            payload_len: len as u64,
        };
        // 131 bytes always hold a control frame; callers check `len <= 125`.
        let at = header.emit(&mut self.buf).unwrap_or(0);
        let body = self.buf.get_mut(at..at + len).unwrap_or_default();
        let Some((first, second)) = body.split_at_mut_checked(parts[0].len()) else {
            self.len = 0;
            return;
        };
        let phase = frame::copy_masked(parts[0], first, mask, 0);
        frame::copy_masked(parts[1], second, mask, phase);
        self.len = (at + len) as u8;
        self.sent = 0;
    }
}

/// Which control slot is being written out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Slot {
    Pong,
    Ping,
    Close,
}

/// The outgoing message the application is in the middle of.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Sending {
    Idle,
    Fragmented,
    Stream {
        remaining: u64,
        mask: [u8; 4],
        phase: usize,
    },
}

/// A sans-I/O RFC 6455 client over caller-provided buffers; see the
/// [module docs](super) for the driving loop and the states.
///
/// `B` is the buffer type for both the receive and the transmit buffer:
/// `&mut [u8]` on a device (a `static` or stack array), `Vec<u8>` or
/// `Box<[u8]>` when an adapter wants to own the client. `E` supplies the
/// handshake nonce and the frame masks.
pub struct Client<B, E> {
    state: State,
    config: Config,
    entropy: E,
    deadline: Option<Instant>,
    accept: [u8; ACCEPT_LEN],

    rx: B,
    /// Handshake: response bytes collected in `rx`.
    head_len: usize,
    header: [u8; MAX_HEADER_LEN],
    header_len: usize,
    frame: Option<InFrame>,
    message: Option<InMessage>,
    /// Drop the rest of the current message (after a failure).
    control: [u8; MAX_CONTROL_PAYLOAD],
    control_len: usize,
    pending: Pending,
    /// `pending` was handed out and is released by the next call.
    delivered: bool,

    tx: B,
    queue_start: usize,
    queue_end: usize,
    /// Bytes of the frame at the head of the queue still to be written;
    /// zero at a frame boundary.
    frame_left: u64,
    pong: ControlSlot,
    ping: ControlSlot,
    close: ControlSlot,
    writing: Option<Slot>,
    sending: Sending,
    close_queued: bool,
    close_received: bool,
    /// The server ended the connection first (its Close before ours, or
    /// end of stream before we queued a Close).
    peer_closed_first: bool,
    /// Why we end, once known; reported by `Event::Closed`.
    outcome: Option<Closed>,
    closed_reported: bool,
}

impl<B, E> fmt::Debug for Client<B, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("state", &self.state)
            .field("pending", &self.pending)
            .field("queued", &(self.queue_end - self.queue_start))
            .finish_non_exhaustive()
    }
}

impl<B: AsRef<[u8]> + AsMut<[u8]>, E: Entropy> Client<B, E> {
    /// Start a connection to `url`: the upgrade request (with `headers`
    /// such as `Cookie` or `Origin` added) is queued in `tx`, ready for
    /// [`poll_transmit`](Client::poll_transmit).
    ///
    /// `rx` holds the handshake response, then each message being
    /// reassembled: it bounds the largest message received whole. `tx` holds
    /// queued outgoing frames: it bounds the largest message sent with
    /// [`send_text`](Client::send_text)/[`send_binary`](Client::send_binary).
    pub fn connect(
        now: Instant,
        url: &Url<'_>,
        headers: &[(&str, &str)],
        config: Config,
        mut entropy: E,
        rx: B,
        mut tx: B,
    ) -> Result<Self, ConnectError> {
        if rx.as_ref().len() < MIN_RECEIVE_BUFFER {
            return Err(ConnectError::ReceiveBufferTooSmall);
        }
        let mut nonce = [0u8; 16];
        entropy.fill_bytes(&mut nonce);
        let key = handshake::key_from_nonce(nonce);
        let request_len = handshake::write_request(url, &key, headers, tx.as_mut())
            .map_err(ConnectError::Request)?;
        Ok(Client {
            state: State::Handshaking,
            config,
            entropy,
            deadline: Some(now + config.handshake_timeout),
            accept: handshake::accept_for_key(&key),
            rx,
            head_len: 0,
            header: [0; MAX_HEADER_LEN],
            header_len: 0,
            frame: None,
            message: None,
            control: [0; MAX_CONTROL_PAYLOAD],
            control_len: 0,
            pending: Pending::None,
            delivered: false,
            tx,
            queue_start: 0,
            queue_end: request_len,
            // The request is not a frame: treat it as one opaque unit so no
            // control frame is slipped into it.
            frame_left: request_len as u64,
            pong: ControlSlot::EMPTY,
            ping: ControlSlot::EMPTY,
            close: ControlSlot::EMPTY,
            writing: None,
            sending: Sending::Idle,
            close_queued: false,
            close_received: false,
            peer_closed_first: false,
            outcome: None,
            closed_reported: false,
        })
    }

    /// Take the buffers back (to reconnect without reallocating, say).
    pub fn into_buffers(self) -> (B, B) {
        (self.rx, self.tx)
    }

    /// The current state.
    pub fn state(&self) -> State {
        self.state
    }

    /// The server's Close frame, once received: its code and reason text
    /// (kept after [`Event::CloseReceived`] was handed out, for the
    /// application's account of how the connection ended).
    pub fn peer_close(&self) -> Option<(Option<CloseCode>, &str)> {
        if !self.close_received {
            return None;
        }
        Some((
            self.received_close_code(),
            as_str(self.control.get(2..self.control_len).unwrap_or(&[])),
        ))
    }

    /// Whether the server ended the connection: its Close frame arrived
    /// before this client queued one, or the transport ended while this
    /// client had neither queued a Close nor failed the connection. `false`
    /// while the connection is open and when this client closed or failed
    /// it (a timeout included).
    pub fn closed_by_peer(&self) -> bool {
        self.peer_closed_first
    }

    /// Whether a new message may be sent now.
    pub fn can_send(&self) -> bool {
        self.state == State::Open && !self.close_queued && self.sending == Sending::Idle
    }

    // ---------------------------------------------------------------- input

    /// Feed bytes read from the transport; returns how many were consumed.
    ///
    /// Fewer than `data.len()` means an event or the transmit side needs
    /// draining first: drain [`poll_event`](Client::poll_event) and
    /// [`poll_transmit`](Client::poll_transmit), then call again with the
    /// rest. The bytes after a handshake response belong to the first
    /// frames, so they must be passed again, never dropped. Once closing has
    /// gone past the point where input matters, all input is consumed and
    /// ignored.
    pub fn handle_input(&mut self, now: Instant, data: &[u8]) -> usize {
        self.release();
        if self.pending != Pending::None {
            return 0;
        }
        match self.state {
            State::Handshaking => self.handshake_input(data),
            State::Open | State::Closing if !self.close_received && self.outcome.is_none() => {
                self.frames_input(now, data)
            }
            _ => data.len(),
        }
    }

    /// The transport reached end of stream (or broke) at `now`. (The
    /// client needs no time for it; the argument keeps the lifecycle calls
    /// of every layer alike.)
    pub fn handle_eof(&mut self, _now: Instant) {
        if self.state == State::Closed {
            return;
        }
        if self.outcome.is_none() {
            self.peer_closed_first |= !self.close_queued;
            self.outcome = Some(if self.close_received && self.close_queued {
                Closed::Clean {
                    code: self.received_close_code(),
                }
            } else {
                Closed::Abnormal
            });
        }
        self.state = State::Closed;
    }

    /// The control frame payload received so far (at most 125 bytes).
    fn control_payload(&self) -> &[u8] {
        span(&self.control, 0..self.control_len)
    }

    fn received_close_code(&self) -> Option<CloseCode> {
        match self.pending {
            Pending::CloseReceived { code } => code,
            _ => (self.control_len >= 2)
                .then(|| CloseCode::new(u16::from_be_bytes([self.control[0], self.control[1]]))),
        }
    }

    fn handshake_input(&mut self, data: &[u8]) -> usize {
        let room = self.rx.as_ref().len() - self.head_len;
        let take = room.min(data.len());
        // `take` fits the room left after `head_len`.
        put(self.rx.as_mut(), self.head_len, span(data, 0..take));
        let parsed = handshake::parse_response(
            span(self.rx.as_ref(), 0..self.head_len + take),
            &self.accept,
        );
        let (rejected, head_len) = match parsed {
            Err(e) => {
                self.fail_now(Error::Handshake(e));
                return data.len();
            }
            Ok(Status::Partial) => {
                self.head_len += take;
                if self.head_len == self.rx.as_ref().len() {
                    self.fail_now(Error::Handshake(HandshakeError::ResponseTooLarge));
                    return data.len();
                }
                return take;
            }
            Ok(Status::Complete((Outcome::Accepted, n))) => (None, n),
            Ok(Status::Complete((Outcome::Rejected(r), n))) => (Some(r.status()), n),
        };
        let consumed = head_len - self.head_len;
        self.head_len = 0;
        match rejected {
            None => {
                self.state = State::Open;
                self.deadline = None;
                self.pending = Pending::Connected;
            }
            Some(status) => {
                self.pending = Pending::Rejected { status, head_len };
                self.fail_now(Error::Handshake(HandshakeError::Rejected(status)));
            }
        }
        consumed
    }

    fn frames_input(&mut self, now: Instant, data: &[u8]) -> usize {
        let mut used = 0;
        while used < data.len()
            && self.pending == Pending::None
            && self.outcome.is_none()
            && !self.close_received
        {
            let rest = span(data, used..data.len());
            let step = match self.frame {
                None => self.header_input(now, rest),
                Some(frame) if frame.opcode.is_control() => self.control_input(now, frame, rest),
                Some(frame) => self.data_input(now, frame, rest),
            };
            match step {
                Some(n) => used += n,
                None => break,
            }
        }
        if self.outcome.is_some() || self.close_received {
            // Nothing after a failure or the server's Close is meaningful.
            return data.len();
        }
        used
    }

    /// Parse a header, buffering a partial one. `None`: stalled.
    fn header_input(&mut self, now: Instant, rest: &[u8]) -> Option<usize> {
        let (parsed, taken) = if self.header_len == 0 {
            (FrameHeader::parse_prefix(rest), 0)
        } else {
            // A buffered header is partial: `header_len` < 14, `take` fills the rest.
            let take = (MAX_HEADER_LEN - self.header_len).min(rest.len());
            put(&mut self.header, self.header_len, span(rest, 0..take));
            (
                FrameHeader::parse_prefix(span(&self.header, 0..self.header_len + take)),
                take,
            )
        };
        let (header, header_len) = match parsed {
            Err(frame::FrameError::ReservedOpcode(op)) => {
                return self.fail(now, ProtocolError::ReservedOpcode(op));
            }
            Err(frame::FrameError::LengthMsbSet) => {
                return self.fail(now, ProtocolError::LengthMsbSet);
            }
            Ok(Status::Complete(found)) => found,
            Ok(Status::Partial) => {
                let take = if self.header_len == 0 {
                    rest.len()
                } else {
                    taken
                };
                if self.header_len == 0 {
                    // A partial header is shorter than the 14-byte buffer.
                    put(&mut self.header, 0, rest);
                }
                self.header_len += take;
                return Some(take);
            }
        };
        if header.opcode == Opcode::Ping && !self.pong.is_empty() && !self.close_queued {
            // The previous pong is still unwritten: wait for the transmit
            // side rather than drop an answer. The header is kept buffered.
            if self.header_len == 0 {
                put(&mut self.header, 0, span(rest, 0..header_len));
            }
            let consumed = header_len - self.header_len;
            self.header_len = header_len;
            return (consumed > 0).then_some(consumed);
        }
        let consumed = header_len - self.header_len;
        self.header_len = 0;
        if let Err(e) = self.check_header(&header) {
            return self.fail(now, e);
        }
        self.begin_frame(header);
        self.finish_frame_if_done(now)?;
        Some(consumed)
    }

    fn check_header(&self, h: &FrameHeader) -> Result<(), ProtocolError> {
        if h.mask.is_some() {
            return Err(ProtocolError::MaskedFrame);
        }
        if h.rsv != 0 {
            return Err(ProtocolError::ReservedBits(h.rsv));
        }
        if h.opcode.is_control() {
            if !h.fin {
                return Err(ProtocolError::FragmentedControlFrame);
            }
            if h.payload_len > MAX_CONTROL_PAYLOAD as u64 {
                return Err(ProtocolError::ControlFrameTooLong(h.payload_len));
            }
            return Ok(());
        }
        match (h.opcode, &self.message) {
            (Opcode::Continuation, None) => Err(ProtocolError::UnexpectedContinuation),
            (Opcode::Text | Opcode::Binary, Some(_)) => Err(ProtocolError::UnfinishedMessage),
            (_, message) => {
                let have = message.map_or(0, |m| m.len) as u64;
                if !self.config.streaming && have + h.payload_len > self.rx.as_ref().len() as u64 {
                    return Err(ProtocolError::MessageTooBig {
                        capacity: self.rx.as_ref().len(),
                    });
                }
                Ok(())
            }
        }
    }

    fn begin_frame(&mut self, h: FrameHeader) {
        if h.opcode.is_control() {
            self.control_len = 0;
        } else if self.message.is_none() {
            let kind = if h.opcode == Opcode::Text {
                MessageKind::Text
            } else {
                MessageKind::Binary
            };
            self.message = Some(InMessage {
                kind,
                len: 0,
                utf8: Utf8Validator::new(),
                chunked: false,
            });
        }
        self.frame = Some(InFrame {
            opcode: h.opcode,
            fin: h.fin,
            remaining: h.payload_len,
        });
    }

    fn control_input(&mut self, now: Instant, frame: InFrame, rest: &[u8]) -> Option<usize> {
        let take = (frame.remaining as usize).min(rest.len());
        // `check_header` refused control payloads over 125 bytes: they fit.
        if !put(&mut self.control, self.control_len, span(rest, 0..take)) {
            return self.fail(now, ProtocolError::ControlFrameTooLong(frame.remaining));
        }
        self.control_len += take;
        self.frame = Some(InFrame {
            remaining: frame.remaining - take as u64,
            ..frame
        });
        self.finish_frame_if_done(now)?;
        Some(take)
    }

    fn data_input(&mut self, now: Instant, frame: InFrame, rest: &[u8]) -> Option<usize> {
        let Some(mut message) = self.message else {
            // Unreachable: `begin_frame` starts a message for every data
            // frame. Dropping the frame keeps the loop making progress.
            self.frame = None;
            return Some(0);
        };
        let space = self.rx.as_ref().len() - message.len;
        if space == 0 {
            // Only reachable in streaming mode: hand out what is whole.
            let len = message.len - message.utf8.pending_len();
            self.pending = Pending::Chunk {
                kind: message.kind,
                len,
                first: !message.chunked,
                last: false,
            };
            message.chunked = true;
            self.message = Some(message);
            return Some(0);
        }
        let take = (frame.remaining.min(rest.len() as u64) as usize).min(space);
        // `take` ≤ `space`, the room after the message so far.
        let (Some(dst), Some(src)) = (
            self.rx.as_mut().get_mut(message.len..message.len + take),
            rest.get(..take),
        ) else {
            let capacity = self.rx.as_ref().len();
            return self.fail(now, ProtocolError::MessageTooBig { capacity });
        };
        dst.copy_from_slice(src);
        if message.kind == MessageKind::Text && message.utf8.feed(dst).is_err() {
            return self.fail(now, ProtocolError::InvalidUtf8);
        }
        message.len += take;
        self.message = Some(message);
        self.frame = Some(InFrame {
            remaining: frame.remaining - take as u64,
            ..frame
        });
        self.finish_frame_if_done(now)?;
        Some(take)
    }

    /// Act on a frame whose payload is complete. `None` if that failed.
    fn finish_frame_if_done(&mut self, now: Instant) -> Option<()> {
        let Some(frame) = self.frame else {
            return Some(());
        };
        if frame.remaining != 0 {
            return Some(());
        }
        self.frame = None;
        match frame.opcode {
            Opcode::Ping => {
                if !self.close_queued {
                    let mask = self.mask();
                    self.pong.fill(
                        Opcode::Pong,
                        mask,
                        [span(&self.control, 0..self.control_len), &[]],
                    );
                }
                self.pending = Pending::Ping;
            }
            Opcode::Pong => self.pending = Pending::Pong,
            Opcode::Close => return self.close_frame_received(now),
            _ if frame.fin => return self.message_complete(now),
            _ => {}
        }
        Some(())
    }

    fn message_complete(&mut self, now: Instant) -> Option<()> {
        let message = self.message?;
        if !message.utf8.is_boundary() {
            return self.fail(now, ProtocolError::InvalidUtf8).map(|_| ());
        }
        self.pending = if message.chunked {
            Pending::Chunk {
                kind: message.kind,
                len: message.len,
                first: false,
                last: true,
            }
        } else {
            Pending::Message {
                kind: message.kind,
                len: message.len,
            }
        };
        Some(())
    }

    fn close_frame_received(&mut self, now: Instant) -> Option<()> {
        let payload = self.control_payload();
        let code = match payload {
            [] => None,
            [_] => {
                return self
                    .fail(now, ProtocolError::CloseFrameTooShort)
                    .map(|_| ());
            }
            [hi, lo, reason @ ..] => {
                let code = CloseCode::new(u16::from_be_bytes([*hi, *lo]));
                if !code.is_valid_on_wire() {
                    return self
                        .fail(now, ProtocolError::InvalidCloseCode(code.as_u16()))
                        .map(|_| ());
                }
                if core::str::from_utf8(reason).is_err() {
                    return self.fail(now, ProtocolError::InvalidUtf8).map(|_| ());
                }
                Some(code)
            }
        };
        self.close_received = true;
        self.pending = Pending::CloseReceived { code };
        if self.close_queued {
            if self.close.is_empty() {
                // Ours is already written: the handshake is complete.
                self.finish(Closed::Clean { code });
            } else {
                self.outcome = Some(Closed::Clean { code });
            }
        } else {
            self.peer_closed_first = true;
            // Echo the code (RFC 6455 §5.5.1); anything queued but not yet
            // started is still sent first, but nothing after our Close.
            let echo = code.map(|c| c.as_u16().to_be_bytes());
            self.queue_close(now, echo.as_ref().map_or(&[][..], |e| &e[..]), &[]);
            self.outcome = Some(Closed::Clean { code });
        }
        Some(())
    }

    /// Fail the connection: queue a Close with the fault's code and drop
    /// the transport once it is written. Always `None` (input stops).
    fn fail(&mut self, now: Instant, error: ProtocolError) -> Option<usize> {
        self.frame = None;
        self.message = None;
        self.header_len = 0;
        if self.close_queued {
            self.finish(Closed::Failed(Error::Protocol(error)));
            return None;
        }
        // Whatever has not started to go out is dropped: a failing
        // connection should end quickly. A frame half written must finish.
        let queued = (self.queue_end - self.queue_start) as u64;
        if self.frame_left == 0 {
            self.queue_end = self.queue_start;
        } else if self.frame_left <= queued {
            self.queue_end = self.queue_start + self.frame_left as usize;
        } else {
            // A streamed frame is still incomplete: no Close can follow it.
            self.finish(Closed::Failed(Error::Protocol(error)));
            return None;
        }
        self.sending = Sending::Idle;
        if self.writing != Some(Slot::Ping) {
            self.ping = ControlSlot::EMPTY;
        }
        if self.writing != Some(Slot::Pong) {
            self.pong = ControlSlot::EMPTY;
        }
        let code = error.close_code().as_u16().to_be_bytes();
        self.queue_close(now, &code, &[]);
        self.outcome = Some(Closed::Failed(Error::Protocol(error)));
        None
    }

    /// Fail without a Close frame (handshake failures: no WebSocket yet).
    fn fail_now(&mut self, error: Error) {
        self.finish(Closed::Failed(error));
    }

    fn finish(&mut self, outcome: Closed) {
        self.outcome.get_or_insert(outcome);
        self.state = State::Closed;
        self.deadline = None;
    }

    // --------------------------------------------------------------- events

    /// The next event, if any. Call until `None` after every input.
    pub fn poll_event(&mut self) -> Option<Event<'_>> {
        self.release();
        if self.pending == Pending::None {
            if self.state == State::Closed && !self.closed_reported {
                self.closed_reported = true;
                return Some(Event::Closed(self.outcome.unwrap_or(Closed::Abnormal)));
            }
            return None;
        }
        self.delivered = true;
        self.pending_event()
    }

    /// The event [`poll_event`](Client::poll_event) handed out last, again,
    /// while its data is still held (until the next call that takes
    /// `&mut self`). `None` once released, and for [`Event::Closed`].
    ///
    /// A composition uses this to look at a message twice without keeping a
    /// borrow alive across its own loop: once to update state, once to hand
    /// a view of it to the application.
    pub fn last_event(&self) -> Option<Event<'_>> {
        if self.delivered {
            self.pending_event()
        } else {
            None
        }
    }

    /// `pending` as an event borrowing `rx` or `control`.
    fn pending_event(&self) -> Option<Event<'_>> {
        Some(match self.pending {
            Pending::None => return None,
            Pending::Connected => Event::Connected,
            Pending::Rejected { status, head_len } => {
                Event::Rejected(Response::new(status, span(self.rx.as_ref(), 0..head_len)))
            }
            Pending::Message { kind, len } => match kind {
                MessageKind::Text => Event::Text(as_str(span(self.rx.as_ref(), 0..len))),
                MessageKind::Binary => Event::Binary(span(self.rx.as_ref(), 0..len)),
            },
            Pending::Chunk {
                kind,
                len,
                first,
                last,
            } => match kind {
                MessageKind::Text => Event::TextChunk {
                    data: as_str(span(self.rx.as_ref(), 0..len)),
                    first,
                    last,
                },
                MessageKind::Binary => Event::BinaryChunk {
                    data: span(self.rx.as_ref(), 0..len),
                    first,
                    last,
                },
            },
            Pending::Ping => Event::Ping(span(&self.control, 0..self.control_len)),
            Pending::Pong => Event::Pong(span(&self.control, 0..self.control_len)),
            Pending::CloseReceived { code } => Event::CloseReceived {
                code,
                reason: as_str(self.control.get(2..self.control_len).unwrap_or(&[])),
            },
        })
    }

    /// Free what the last handed-out event borrowed.
    fn release(&mut self) {
        if !self.delivered {
            return;
        }
        self.delivered = false;
        match core::mem::replace(&mut self.pending, Pending::None) {
            Pending::Message { .. } => self.message = None,
            Pending::Chunk { last: true, .. } => self.message = None,
            Pending::Chunk { len, .. } => {
                if let Some(message) = self.message.as_mut() {
                    // Move the split character's first bytes to the front.
                    self.rx.as_mut().copy_within(len..message.len, 0);
                    message.len -= len;
                }
            }
            _ => {}
        }
    }

    // ------------------------------------------------------------- transmit

    /// Bytes to write to the transport now, or `None` if nothing is ready.
    /// After writing `n` of them, call
    /// [`advance_transmit(n)`](Client::advance_transmit). Loop until `None`.
    pub fn poll_transmit(&mut self) -> Option<&[u8]> {
        if self.state == State::Closed {
            return None;
        }
        if self.frame_left == 0 && self.writing.is_none() {
            self.writing = self.next_slot();
        }
        if let Some(slot) = self.writing {
            let s = self.slot(slot);
            return Some(span(&s.buf, s.sent as usize..s.len as usize));
        }
        if self.queue_start == self.queue_end {
            return None;
        }
        if self.frame_left == 0 {
            self.frame_left = self.head_frame_len();
        }
        let queued = self.queue_end - self.queue_start;
        // With a control frame waiting, stop at the frame boundary so it can
        // go next; otherwise hand out everything in one write.
        let control_waiting = !self.pong.is_empty() || !self.ping.is_empty();
        let n = if control_waiting {
            queued.min(self.frame_left as usize)
        } else {
            queued
        };
        Some(span(
            self.tx.as_ref(),
            self.queue_start..self.queue_start + n,
        ))
    }

    /// Record that `n` bytes from the last [`poll_transmit`] were written.
    ///
    /// [`poll_transmit`]: Client::poll_transmit
    pub fn advance_transmit(&mut self, n: usize) {
        if let Some(slot) = self.writing {
            let s = self.slot_mut(slot);
            s.sent = (s.sent as usize + n).min(s.len as usize) as u8;
            if s.sent == s.len {
                *s = ControlSlot::EMPTY;
                self.writing = None;
                if slot == Slot::Close {
                    self.close_written();
                }
            }
            return;
        }
        let mut n = n.min(self.queue_end - self.queue_start);
        while n > 0 {
            if self.frame_left == 0 {
                self.frame_left = self.head_frame_len();
            }
            let k = (self.frame_left.min(n as u64)) as usize;
            self.queue_start += k;
            self.frame_left -= k as u64;
            n -= k;
        }
        if self.queue_start == self.queue_end {
            self.queue_start = 0;
            self.queue_end = 0;
        }
    }

    fn next_slot(&self) -> Option<Slot> {
        if !self.pong.is_empty() {
            Some(Slot::Pong)
        } else if !self.ping.is_empty() {
            Some(Slot::Ping)
        } else if !self.close.is_empty() && self.queue_start == self.queue_end {
            Some(Slot::Close)
        } else {
            None
        }
    }

    fn slot(&self, slot: Slot) -> &ControlSlot {
        match slot {
            Slot::Pong => &self.pong,
            Slot::Ping => &self.ping,
            Slot::Close => &self.close,
        }
    }

    fn slot_mut(&mut self, slot: Slot) -> &mut ControlSlot {
        match slot {
            Slot::Pong => &mut self.pong,
            Slot::Ping => &mut self.ping,
            Slot::Close => &mut self.close,
        }
    }

    /// Length of the frame starting at the head of the queue. Every frame
    /// enters the queue header first and whole, so the header is there.
    fn head_frame_len(&self) -> u64 {
        match FrameHeader::parse_prefix(span(self.tx.as_ref(), self.queue_start..self.queue_end)) {
            Ok(Status::Complete((h, header_len))) => header_len as u64 + h.payload_len,
            _ => (self.queue_end - self.queue_start) as u64,
        }
    }

    fn close_written(&mut self) {
        if self.close_received || matches!(self.outcome, Some(Closed::Failed(_))) {
            let outcome = self.outcome.unwrap_or(Closed::Clean { code: None });
            self.finish(outcome);
        }
    }

    // ------------------------------------------------------------- timeouts

    /// When [`handle_timeout`](Client::handle_timeout) should be called next.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.deadline
    }

    /// Tell the client the time; past a deadline the connection is closed
    /// with [`Closed::TimedOut`].
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.deadline.is_some_and(|d| now >= d) {
            // A failure keeps its cause; anything else just ran out of time.
            if !matches!(self.outcome, Some(Closed::Failed(_))) {
                self.outcome = Some(Closed::TimedOut);
            }
            self.finish(Closed::TimedOut);
        }
    }

    // ----------------------------------------------------------------- send

    fn mask(&mut self) -> [u8; 4] {
        let mut mask = [0u8; 4];
        self.entropy.fill_bytes(&mut mask);
        mask
    }

    fn check_open(&self) -> Result<(), SendError> {
        match self.state {
            State::Handshaking => Err(SendError::NotOpen),
            State::Open if !self.close_queued => Ok(()),
            _ => Err(SendError::Closing),
        }
    }

    /// Make `needed` bytes free at the end of the queue, compacting it.
    fn reserve(&mut self, needed: usize) -> Result<(), SendError> {
        if self.tx.as_ref().len() - self.queue_end >= needed {
            return Ok(());
        }
        self.tx
            .as_mut()
            .copy_within(self.queue_start..self.queue_end, 0);
        self.queue_end -= self.queue_start;
        self.queue_start = 0;
        let free = self.tx.as_ref().len() - self.queue_end;
        if free < needed {
            return Err(SendError::InsufficientSize(InsufficientSize {
                required: needed,
            }));
        }
        Ok(())
    }

    fn queue_frame(&mut self, opcode: Opcode, fin: bool, payload: &[u8]) -> Result<(), SendError> {
        let header_len = FrameHeader {
            fin,
            rsv: 0,
            opcode,
            mask: Some([0; 4]),
            payload_len: payload.len() as u64,
        }
        .buffer_len();
        self.reserve(header_len + payload.len())?;
        let mask = self.mask();
        let n = frame::encode_masked(
            opcode,
            fin,
            mask,
            payload,
            self.tx
                .as_mut()
                .get_mut(self.queue_end..)
                .unwrap_or_default(),
        )
        .map_err(SendError::InsufficientSize)?;
        self.queue_end += n;
        Ok(())
    }

    /// Queue a whole text message as one frame.
    pub fn send_text(&mut self, text: &str) -> Result<(), SendError> {
        self.send_message(MessageKind::Text, text.as_bytes())
    }

    /// Queue a whole binary message as one frame.
    pub fn send_binary(&mut self, data: &[u8]) -> Result<(), SendError> {
        self.send_message(MessageKind::Binary, data)
    }

    /// Queue one whole message that `write` produces straight into the
    /// transmit buffer (no intermediate copy), smoltcp's `send_with`.
    ///
    /// `write` gets at most `max` bytes of buffer (fewer when the buffer
    /// has less room) and the client's entropy source (for login keys and
    /// padding), and returns how many bytes it wrote, or its own error (then
    /// nothing is queued). Text must be UTF-8 (not checked here).
    pub fn send_with<X>(
        &mut self,
        kind: MessageKind,
        max: usize,
        write: impl FnOnce(&mut [u8], &mut E) -> Result<usize, X>,
    ) -> Result<usize, SendWithError<X>> {
        let queued =
            self.transmit_with(max, |buf, rng| write(buf, rng).map(|n| Some((kind, n))))?;
        Ok(queued.unwrap_or(0))
    }

    /// [`send_with`](Client::send_with) where the writer also chooses the
    /// message kind, or declines to send anything (`Ok(None)`). This is the
    /// hook a session's own output goes through.
    ///
    /// The frame header is sized for `max`; when the message turns out
    /// shorter than that size class, the payload moves down the header's
    /// spare bytes (at most 8) before it is masked in place.
    pub fn transmit_with<X>(
        &mut self,
        max: usize,
        write: impl FnOnce(&mut [u8], &mut E) -> Result<Option<(MessageKind, usize)>, X>,
    ) -> Result<Option<usize>, SendWithError<X>> {
        self.check_open().map_err(SendWithError::Send)?;
        if self.sending != Sending::Idle {
            return Err(SendWithError::Send(SendError::MessageInProgress));
        }
        let len = self.tx.as_ref().len();
        let free = len - (self.queue_end - self.queue_start);
        let max = max.min(free.saturating_sub(header_len_for(max.min(free))));
        let reserved = header_len_for(max);
        self.reserve(reserved + max).map_err(SendWithError::Send)?;
        let at = self.queue_end;
        // `reserve` made `reserved + max` bytes free after `queue_end`.
        let body = self
            .tx
            .as_mut()
            .get_mut(at + reserved..at + reserved + max)
            .unwrap_or_default();
        let Some((kind, n)) = write(body, &mut self.entropy).map_err(SendWithError::Write)? else {
            return Ok(None);
        };
        let n = n.min(max);
        let mask = self.mask();
        let header = FrameHeader {
            fin: true,
            rsv: 0,
            opcode: opcode_of(kind),
            mask: Some(mask),
            payload_len: n as u64,
        };
        // `n ≤ max`, so this header is no longer than the one reserved.
        let used = header.buffer_len();
        let frame = self
            .tx
            .as_mut()
            .get_mut(at..at + reserved + n)
            .unwrap_or_default();
        if used < reserved {
            frame.copy_within(reserved..reserved + n, used);
        }
        frame::apply_mask(frame.get_mut(used..used + n).unwrap_or_default(), mask, 0);
        header
            .emit(frame.get_mut(..used).unwrap_or_default())
            .map_err(|e| SendWithError::Send(SendError::InsufficientSize(e)))?;
        self.queue_end = at + used + n;
        Ok(Some(n))
    }

    fn send_message(&mut self, kind: MessageKind, payload: &[u8]) -> Result<(), SendError> {
        self.check_open()?;
        if self.sending != Sending::Idle {
            return Err(SendError::MessageInProgress);
        }
        self.queue_frame(opcode_of(kind), true, payload)
    }

    /// Queue one fragment of a message: the first call fixes the kind and
    /// later ones continue it until `fin`. Text fragments may split a
    /// character; the whole message must be UTF-8 (not checked here).
    pub fn send_fragment(
        &mut self,
        kind: MessageKind,
        payload: &[u8],
        fin: bool,
    ) -> Result<(), SendError> {
        self.check_open()?;
        let opcode = match self.sending {
            Sending::Idle => opcode_of(kind),
            Sending::Fragmented => Opcode::Continuation,
            Sending::Stream { .. } => return Err(SendError::MessageInProgress),
        };
        self.queue_frame(opcode, fin, payload)?;
        self.sending = if fin {
            Sending::Idle
        } else {
            Sending::Fragmented
        };
        Ok(())
    }

    /// Start one binary message of exactly `len` bytes, sent as a single
    /// frame whose payload is supplied piece by piece with
    /// [`send_binary_part`](Client::send_binary_part) and masked on the fly,
    /// so it never has to fit in memory. Control frames wait for its end,
    /// and so does a Close: finish the stream even after
    /// [`Event::CloseReceived`], or the close handshake ends by timeout.
    pub fn begin_binary(&mut self, len: u64) -> Result<(), SendError> {
        self.check_open()?;
        if self.sending != Sending::Idle {
            return Err(SendError::MessageInProgress);
        }
        let mask = self.mask();
        let header = FrameHeader {
            fin: true,
            rsv: 0,
            opcode: Opcode::Binary,
            mask: Some(mask),
            payload_len: len,
        };
        self.reserve(header.buffer_len())?;
        let n = header
            .emit(
                self.tx
                    .as_mut()
                    .get_mut(self.queue_end..)
                    .unwrap_or_default(),
            )
            .map_err(SendError::InsufficientSize)?;
        self.queue_end += n;
        if len > 0 {
            self.sending = Sending::Stream {
                remaining: len,
                mask,
                phase: 0,
            };
        }
        Ok(())
    }

    /// Queue the next piece of a message started with
    /// [`begin_binary`](Client::begin_binary); returns how many bytes of
    /// `data` were taken (0 when the transmit buffer is full: drain it). Bytes
    /// past the announced length are not taken.
    pub fn send_binary_part(&mut self, data: &[u8]) -> Result<usize, SendError> {
        let Sending::Stream {
            remaining,
            mask,
            phase,
        } = self.sending
        else {
            return Err(SendError::NoMessageInProgress);
        };
        if self.state == State::Closed {
            return Err(SendError::Closing);
        }
        let want = (data.len() as u64).min(remaining) as usize;
        if self.tx.as_ref().len() - self.queue_end < want {
            let _ = self.reserve(want);
        }
        let take = want.min(self.tx.as_ref().len() - self.queue_end);
        // `take` ≤ the room after `queue_end` and ≤ `data.len()`.
        let src = span(data, 0..take);
        let dst = self
            .tx
            .as_mut()
            .get_mut(self.queue_end..)
            .unwrap_or_default();
        let Some(dst) = dst.get_mut(..src.len()) else {
            return Ok(0);
        };
        let phase = frame::copy_masked(src, dst, mask, phase);
        self.queue_end += take;
        let remaining = remaining - take as u64;
        self.sending = if remaining == 0 {
            Sending::Idle
        } else {
            Sending::Stream {
                remaining,
                mask,
                phase,
            }
        };
        Ok(take)
    }

    /// Bytes still owed to a message started with
    /// [`begin_binary`](Client::begin_binary).
    pub fn binary_remaining(&self) -> u64 {
        match self.sending {
            Sending::Stream { remaining, .. } => remaining,
            _ => 0,
        }
    }

    /// Queue a ping. It goes out at the next frame boundary, ahead of
    /// queued data.
    pub fn send_ping(&mut self, payload: &[u8]) -> Result<(), SendError> {
        self.check_open()?;
        if payload.len() > MAX_CONTROL_PAYLOAD {
            return Err(SendError::ControlPayloadTooLong);
        }
        if !self.ping.is_empty() {
            return Err(SendError::PingPending);
        }
        let mask = self.mask();
        self.ping.fill(Opcode::Ping, mask, [payload, &[]]);
        Ok(())
    }

    /// Start the close handshake with `code` and a short `reason` (at most
    /// 123 bytes). Queued data goes out first; then the client waits up to
    /// [`Config::close_timeout`] for the server's Close.
    pub fn close(&mut self, now: Instant, code: CloseCode, reason: &str) -> Result<(), SendError> {
        self.check_open()?;
        if !code.is_valid_on_wire() {
            return Err(SendError::InvalidCloseCode);
        }
        if reason.len() > MAX_CONTROL_PAYLOAD - 2 {
            return Err(SendError::ControlPayloadTooLong);
        }
        self.queue_close(now, &code.as_u16().to_be_bytes(), reason.as_bytes());
        Ok(())
    }

    fn queue_close(&mut self, now: Instant, code: &[u8], reason: &[u8]) {
        let mask = self.mask();
        self.close.fill(Opcode::Close, mask, [code, reason]);
        self.close_queued = true;
        self.state = State::Closing;
        self.deadline = Some(now + self.config.close_timeout);
    }
}

/// The header of a masked frame carrying `len` payload bytes.
fn header_len_for(len: usize) -> usize {
    FrameHeader {
        fin: true,
        rsv: 0,
        opcode: Opcode::Text,
        mask: Some([0; 4]),
        payload_len: len as u64,
    }
    .buffer_len()
}

fn opcode_of(kind: MessageKind) -> Opcode {
    match kind {
        MessageKind::Text => Opcode::Text,
        MessageKind::Binary => Opcode::Binary,
    }
}

/// Text the validator already accepted (`""` cannot happen, but no panic).
/// `buf[range]`, or nothing when the range is not inside `buf`. Every
/// caller keeps its range inside (the comment at each call says why); the
/// fallback only keeps a broken invariant from becoming a panic.
fn span(buf: &[u8], range: core::ops::Range<usize>) -> &[u8] {
    buf.get(range).unwrap_or_default()
}

/// Copy `src` into `dst` at `at`; `false`, copying nothing, if it does not fit.
fn put(dst: &mut [u8], at: usize, src: &[u8]) -> bool {
    let end = at.saturating_add(src.len());
    match dst.get_mut(at..end) {
        Some(d) => {
            d.copy_from_slice(src);
            true
        }
        None => false,
    }
}

fn as_str(bytes: &[u8]) -> &str {
    core::str::from_utf8(bytes).unwrap_or_default()
}
