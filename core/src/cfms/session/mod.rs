//! The CFMS session: one WebSocket connection's request/response state.
//!
//! It runs inside a [`Connection`](crate::connection::Connection) (the
//! shape every layer shares): the session implements
//! [`connection::Session`](crate::connection::Session), runs its own
//! opening sequence ([`State`]; credentials in [`Config::login`]), and
//! hands out [`ConnectionEvent`]s that carry reply bodies and download
//! data. Commands are in [`cfms::connection`](super::connection); the
//! request writers below (`list_directory`, `set_passwd`, ...) are what
//! `Connection::command` runs.
//!
//! Outputs are drained after every input: `poll_transmit` (messages the
//! session itself must send: the opening sequence, transfer headers,
//! `ready`, token refresh, re-login, keep-alive), `poll_event`,
//! `poll_timeout`. Messages leave in the order the session produced them:
//! the server answers in that order and the session matches answers
//! first-in first-out.
//!
//! Protocol states (the opening sequence's are in [`State`]):
//!
//! ```text
//! Unknown --server_info 200, protocol 3..=5--> Spoken --login 200--> logged in
//!    |                                          |   \--202--> awaiting 2FA --login+2fa_token--> logged in
//!    \--other protocol_version--> Refused        \--token rejected--> re-login (stored password)
//! any --request deadline missed / unknown message--> Broken (reconnect: handle_disconnect)
//! ```
//!
//! Files: `types` (config, errors, queued events), `send` (requests),
//! `framed` (the protocol-13 wire: streams, signing, events, per-request
//! deadlines), `receive` (message intake, download streaming), `respond` (answers:
//! login, token), `transfer` (upload/download messages), `time`
//! (deadlines, disconnect), `engine` (opening sequence and the
//! `connection::Session` impl), `event` (events with bodies).
#![deny(clippy::indexing_slicing)]

mod engine;
mod event;
mod framed;
mod receive;
mod respond;
mod send;
mod time;
mod transfer;
mod types;

pub(crate) use types::Transmit;
pub use types::{Config, Desync, EVENTS, Error, Event, NoAnswer, PROTOCOLS, RequestError, Sent};

pub use engine::State;
use engine::{Body, Item};
pub use event::Event as ConnectionEvent;

use super::auth::{self, Auth, Credentials, LoginError, TwoFactorMethod};
use super::download::{Download, DownloadError, DownloadKey, StreamOutcome};
use super::envelope::{EnvelopeError, Incoming, MessageKind, Response, ServerAction, emit_request};
use super::p13::frame::{HEADER_LEN, Header as FrameHeader, Piece, Reader as FrameReader};
use super::p13::{FrameError, Negotiated, Nonce, ServerClock, Streams, Wire};
use super::queue::{Pending, Seq};
use super::status::Status;
use super::upload::{
    self, Phase, Upload, UploadError, UploadSource, UploadWrite, UploadWriteError,
};
use crate::json::write::JsonWriter;
use crate::json::{InsufficientSize, JsonError};
use crate::time::{Duration, Instant};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Purpose {
    /// `None`: the session's own (keep-alive, fence, re-login, scheduled refresh).
    ServerInfo(Option<Seq>),
    Login(Option<Seq>),
    Refresh(Option<Seq>),
    App(Seq),
    Listener(Seq),
    Transfer,
}

impl Purpose {
    /// The sequence number the application knows this request by.
    fn seq(self) -> Option<Seq> {
        match self {
            Purpose::ServerInfo(s) | Purpose::Login(s) | Purpose::Refresh(s) => s,
            Purpose::App(s) | Purpose::Listener(s) => Some(s),
            Purpose::Transfer => None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Protocol {
    Unknown,
    Spoken(u32),
    Refused(Option<u32>),
}

// One per session, never moved around: a download's reader state is
// bounded and has no heap to be boxed on.
#[allow(clippy::large_enum_variant)]
enum Transfer {
    None,
    Upload(Upload),
    Download(Download),
}

/// Messages the session owes the server, sent through `poll_transmit`.
#[derive(Debug, Clone, Copy, Default)]
struct Due {
    fence: bool,
    relogin: bool,
    refresh: bool,
    keep_alive: bool,
}

/// The caller-provided memory of a [`Session`].
pub struct Buffers<'a> {
    /// Holds one received message (except `file_chunk` messages, which are
    /// streamed): the largest response (directory listings!) must fit.
    /// Inside a [`Connection`](crate::connection::Connection) a message
    /// the WebSocket delivers whole is read where it lies, so only one that
    /// arrives in pieces (streaming WebSocket) is collected here; and a
    /// `file_chunk` piece's ciphertext is decoded here, so `rx` must also
    /// hold 3/4 of the WebSocket receive buffer plus 2 bytes.
    pub rx: &'a mut [u8],
    /// One SHA-256 per download chunk (2 MiB each): bounds the largest
    /// downloadable file to `chunk_hashes.len()` × 2 MiB. On protocol 13
    /// a slot holds the chunk's seal instead (GCM tag ‖ nonce prefix ‖ 8
    /// zero bytes), for [`open_chunk`](crate::cfms::p13::transfer::open_chunk);
    /// to resume on a new session, copy the earlier seals back in.
    pub chunk_hashes: &'a mut [[u8; 32]],
}

/// A CFMS client session (protocols 3–5 as text, 13 as frames: see
/// [`Config::protocol_version`], [`Config::negotiate`]) with at most `Q`
/// requests in flight.
pub struct Session<'a, const Q: usize> {
    config: Config,
    rx: &'a mut [u8],
    rx_len: usize,
    rx_overflow: bool,
    rx_kind: MessageKind,
    rx_streaming: bool,
    chunk_hashes: &'a mut [[u8; 32]],
    pending: Pending<Purpose, Q>,
    next_seq: u32,
    protocol: Protocol,
    broken: bool,
    auth: Auth,
    unix_anchor: Option<(Instant, f64)>,
    lockdown: Option<bool>,
    transfer: Transfer,
    events: heapless::Deque<Item, EVENTS>,
    due: Due,
    /// The opening sequence's step (see [`State`]) and whether its message
    /// is still to be written.
    state: State,
    step_due: bool,
    /// The `register_listener` the opening sequence sent.
    listener_seq: Option<Seq>,
    /// The `server_info` the opening sequence sent.
    opening_seq: Option<Seq>,
    /// Where the body of the last handled message lives.
    body: Body,
    last_activity: Instant,
    last_download_chunks: usize,
    /// How messages are carried: text in order (3–5) or frames (13).
    wire: Wire,
    /// Open connections with the protocol-13 probe (no version pinned).
    probe: bool,
    /// What the probe found, once known.
    negotiated: Option<Negotiated>,
    /// The server ended the current connection
    /// ([`Session::handle_peer_close`]), until `handle_disconnect`.
    peer_closed: bool,
    /// Protocol 13: stream ids, deadlines, quiet ends.
    mux: Streams<Q>,
    /// Header bytes in front of the last handled message's body (5 on the
    /// framed wire).
    body_skip: usize,
    /// Protocol 13: the header of a message arriving in pieces, read even
    /// when the message does not fit `rx` (its request then fails alone).
    rx_frame: FrameReader,
    rx_header: Option<FrameHeader>,
    /// Protocol 13, while a download receives: the first bytes of a
    /// message whose first piece was shorter than a frame header, until
    /// the header tells whether it is the download's (streamed) or not.
    rx_head: [u8; HEADER_LEN],
    rx_head_len: usize,
    rx_undecided: bool,
    /// Protocol 13: the stream of the last request written, and of the
    /// running transfer.
    last_stream: u32,
    transfer_stream: u32,
    /// Protocol 13: bytes of the running upload frame's 5-byte header
    /// already handed to the WebSocket.
    upload_head_sent: usize,
    /// Protocol 13: the server's clock, for request timestamps.
    clock: ServerClock,
    /// Protocol 13: the nonce of the next signed request, drawn from the
    /// connection's entropy just before the request is written.
    nonce: Option<Nonce>,
}

/// How a session with `config` opens its connections: the wire, whether
/// with the protocol-13 probe, and the protocol known so far (a pinned
/// version this client does not speak is refused by name).
fn opening(config: &Config) -> (Wire, bool, Protocol) {
    match config.protocol_version.map(Wire::for_version) {
        Some(Ok(wire)) => (wire, false, Protocol::Unknown),
        Some(Err(u)) => (Wire::Text, false, Protocol::Refused(Some(u.version))),
        None if config.negotiate => (Wire::Framed, true, Protocol::Unknown),
        None => (Wire::Text, false, Protocol::Unknown),
    }
}

impl<'a, const Q: usize> Session<'a, Q> {
    /// A session for a freshly opened connection.
    pub fn new(mut config: Config, buffers: Buffers<'a>) -> Self {
        let mut auth = Auth::new();
        let (wire, probe, protocol) = opening(&config);
        let mux = Streams::new(config.request_timeout);
        if let Some(c) = config.login.take() {
            auth.username = c.username.clone();
            auth.password = c.password.clone();
        }
        Session {
            config,
            rx: buffers.rx,
            rx_len: 0,
            rx_overflow: false,
            rx_kind: MessageKind::Text,
            rx_streaming: false,
            chunk_hashes: buffers.chunk_hashes,
            pending: Pending::new(),
            next_seq: 0,
            protocol,
            broken: false,
            auth,
            unix_anchor: None,
            lockdown: None,
            transfer: Transfer::None,
            events: heapless::Deque::new(),
            due: Due::default(),
            state: State::Disconnected,
            step_due: false,
            listener_seq: None,
            opening_seq: None,
            body: Body::None,
            last_activity: Instant::ZERO,
            last_download_chunks: 0,
            wire,
            probe,
            negotiated: None,
            peer_closed: false,
            mux,
            body_skip: 0,
            rx_frame: FrameReader::new(),
            rx_header: None,
            rx_head: [0; HEADER_LEN],
            rx_head_len: 0,
            rx_undecided: false,
            last_stream: 0,
            transfer_stream: 0,
            upload_head_sent: 0,
            clock: ServerClock::new(),
            nonce: None,
        }
    }

    /// How this session carries messages now: text (3–5) or frames (13).
    pub fn wire(&self) -> Wire {
        self.wire
    }

    /// What the protocol-13 probe found ([`Config::negotiate`]): `Framed`
    /// once a 13 server answered it; `Text` once a connection closed
    /// without an answer (a 3–5 server: reconnect with this session, which
    /// then speaks text). The adapter remembers the outcome per server and
    /// pins it next time ([`Config::protocol_version`]).
    pub fn negotiated(&self) -> Option<Negotiated> {
        self.negotiated
    }

    /// Forget the protocol version, pinned or found: the next connection
    /// finds it afresh (the protocol-13 probe when [`Config::negotiate`]
    /// is on, else text). For an adapter whose [`Config::protocol_version`]
    /// was a version remembered from an earlier run that the server has
    /// just contradicted: a remembered 13 met a close before any answer
    /// (what a 3–5 server does with a frame), a remembered 3–5 met silence
    /// (what a 13 server does with text). Call it between connections,
    /// after [`handle_disconnect`](Self::handle_disconnect); the token is
    /// kept.
    pub fn forget_protocol(&mut self) {
        self.config.protocol_version = None;
        self.negotiated = None;
        (self.wire, self.probe, self.protocol) = opening(&self.config);
    }

    /// Tell the session the wall clock: at `now`, it is `unix_secs` seconds
    /// since the UNIX epoch. Used for the token expiry when a login
    /// response carries no server `timestamp`.
    pub fn set_unix_time(&mut self, now: Instant, unix_secs: f64) {
        self.unix_anchor = Some((now, unix_secs));
        self.clock.set_local(now, unix_secs);
    }

    /// The protocol version, once `server_info` answered with a spoken one.
    pub fn protocol_version(&self) -> Option<u32> {
        match self.protocol {
            Protocol::Spoken(v) => Some(v),
            _ => None,
        }
    }

    /// Whether a token is held and not known to be rejected.
    pub fn is_logged_in(&self) -> bool {
        self.auth.logged_in
    }

    /// The current token.
    pub fn token(&self) -> &str {
        self.auth.token.as_str()
    }

    /// Lockdown as last learnt (server_info or a push).
    pub fn lockdown(&self) -> Option<bool> {
        self.lockdown
    }

    /// The chunk hashes of the last download, index order.
    pub fn chunk_hashes(&self) -> &[[u8; 32]] {
        match &self.transfer {
            Transfer::Download(d) => {
                let known = d.hashes_known();
                self.chunk_hashes.get(..known).unwrap_or(self.chunk_hashes)
            }
            _ => self
                .chunk_hashes
                .get(..self.last_download_chunks)
                .unwrap_or(self.chunk_hashes),
        }
    }

    pub(super) fn emit(&mut self, e: Event) {
        self.push(Item::Event(e));
    }

    pub(super) fn push(&mut self, item: Item) {
        if self.events.is_full() {
            // The oldest event is dropped rather than the newest: a caller
            // that never drains loses history, not the current state.
            self.events.pop_front();
        }
        let _ = self.events.push_back(item);
    }

    pub(super) fn next_seq(&mut self) -> Seq {
        let s = Seq(self.next_seq);
        self.next_seq = self.next_seq.wrapping_add(1);
        s
    }
}
