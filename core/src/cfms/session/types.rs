//! The session's public vocabulary: tunables, errors, and [`Event`], the
//! events as the session queues them (without their bodies).
#![deny(clippy::indexing_slicing)]

use super::*;

/// Events held between two `poll_event` drains. A message produces at most
/// three; a timeout or disconnect produces one per pending request plus
/// one, so with `Q` above 7 the oldest of those may be dropped. A caller
/// that does not drain loses the oldest events first.
pub const EVENTS: usize = 8;

/// Lowest and highest `protocol_version` this session speaks as text; it
/// also speaks [`p13::negotiate::FRAMED`](crate::cfms::p13::negotiate::FRAMED)
/// (13) as frames.
pub const PROTOCOLS: core::ops::RangeInclusive<u32> = 3..=5;

/// Tunables. `Config::default()` suits the real server.
#[derive(Debug, Clone)]
pub struct Config {
    /// How long a request may wait for its answer. A wrong password is
    /// answered after 3 s on purpose.
    pub request_timeout: Duration,
    /// Longest silence tolerated inside a transfer.
    pub transfer_timeout: Duration,
    /// Refresh the token after this share (percent) of its lifetime.
    pub refresh_at_percent: u8,
    /// Lifetime assumed when neither the server nor the caller gives a clock.
    pub assumed_token_lifetime: Duration,
    /// Send a quiet `server_info` after this much idleness (optional: the
    /// server's own PING every 20 s keeps the connection alive).
    pub keep_alive: Option<Duration>,
    /// Keep the password so a rejected token can be replaced by logging in
    /// again. Off: the password is wiped after each login attempt.
    pub relogin: bool,
    /// Upload frame size announced as `max_chunk_size` at protocol ≥ 4
    /// (at least 512). Protocol 3 always uses 8192.
    pub upload_frame: u32,
    /// The account to log in with after `server_info`, when the session
    /// runs inside a [`Connection`](crate::connection::Connection) (see
    /// [`State`]). `None`: stay anonymous. Moved into the session (and
    /// wiped from there) by [`Session::new`].
    pub login: Option<Credentials>,
    /// After logging in, send `register_listener` so that lockdown changes
    /// arrive as events. (Protocol 13 has no listener registration: every
    /// connection gets the events, so it is never sent there.)
    pub listener: bool,
    /// A protocol version known in advance (pinned by the user, or
    /// remembered for this server by the adapter): 3–5 speak text, 13
    /// speaks frames, without a probe. Any other version is refused with
    /// [`Error::ProtocolUnsupported`] naming it. `None`: see
    /// [`negotiate`](Self::negotiate).
    pub protocol_version: Option<u32>,
    /// Without a pinned version: open each connection with the protocol-13
    /// probe (a framed `server_info`). A 13 server answers it; a 3–5 server
    /// closes the connection, after which [`Session::negotiated`] is
    /// [`Negotiated::Text`](crate::cfms::p13::Negotiated::Text) and the
    /// session speaks text on the next connection (reconnect with the same
    /// session). Off (the default until every adapter reconnects on that
    /// outcome): speak text and learn 3–5 from `server_info`.
    pub negotiate: bool,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            request_timeout: Duration::from_secs(30),
            transfer_timeout: Duration::from_secs(60),
            refresh_at_percent: 80,
            assumed_token_lifetime: Duration::from_secs(3600),
            keep_alive: None,
            relogin: true,
            upload_frame: upload::PROTOCOL3_FRAME,
            login: None,
            listener: false,
            protocol_version: None,
            negotiate: false,
        }
    }
}

/// A request written into the caller's buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sent {
    /// Its sequence number, repeated in the answering event.
    pub seq: Seq,
    /// Bytes written (send them as one text message).
    pub len: usize,
}

/// A message the session wants sent (inside `poll_transmit`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Transmit {
    /// Text or binary.
    pub(crate) kind: MessageKind,
    /// Bytes written into the buffer.
    pub(crate) len: usize,
}

/// Why a call was refused; nothing was written or consumed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Error {
    /// The buffer is too small; `required` bytes would do.
    BufferTooSmall {
        /// Bytes needed.
        required: usize,
    },
    /// A transfer is running; nothing may be pipelined behind it.
    TransferActive,
    /// Send `server_info` first: the protocol version is not known yet.
    ServerInfoFirst,
    /// The server speaks a protocol version this session does not.
    ProtocolUnsupported {
        /// What the server announced (`None`: it framed its answer in
        /// the binary protocol ≥ 13 format).
        version: Option<u32>,
    },
    /// Log in first.
    NotLoggedIn,
    /// No 202 is waiting for a two-factor code.
    NoTwoFactorPending,
    /// The connection lost request/response alignment; reconnect and call
    /// [`Session::handle_disconnect`].
    Broken,
    /// A string exceeds its fixed capacity.
    TooLong {
        /// Which field.
        field: &'static str,
        /// Its capacity in bytes.
        max: usize,
    },
    /// Caller-given `data` is not a JSON object.
    InvalidData(JsonError),
    /// A driver broke the drain rule: a message was handed in while events
    /// that borrow the previous one were not taken yet.
    EventsNotDrained,
    /// A received message is not one a protocol 3–5 server sends.
    Malformed(EnvelopeError),
    /// A message arrived that no request is waiting for.
    Unsolicited,
    /// `upload_write` misuse.
    Upload(UploadWriteError),
    /// The session cannot take a request now (opening sequence not done,
    /// a transfer running, `Q` requests in flight, or the connection
    /// broken): see [`State`] and
    /// [`Connection::can_send`](crate::connection::Connection::can_send).
    /// The capacity error every layer shares ([`pending::Busy`](crate::pending::Busy)).
    Busy,
    /// The WebSocket refused the message (not open, closing, a binary
    /// message half sent, no room in its transmit buffer).
    Ws(crate::ws::SendError),
    /// A protocol-13 message is not a frame.
    Frame(FrameError),
    /// This operation needs the other wire: a download `offset` other than
    /// 0 needs protocol 13 (3–5 cannot resume).
    NotOnFramedWire,
    /// A signed protocol-13 request needs a nonce: call
    /// [`Session::prepare_nonce`] first (a connection does).
    NonceNeeded,
}

impl From<InsufficientSize> for Error {
    fn from(e: InsufficientSize) -> Self {
        Error::BufferTooSmall {
            required: e.required,
        }
    }
}

impl From<crate::pending::Busy> for Error {
    fn from(_: crate::pending::Busy) -> Self {
        Error::Busy
    }
}

impl core::fmt::Display for Error {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Error::BufferTooSmall { required } => write!(
                f,
                "the message needs {required} bytes, more than the buffer holds"
            ),
            Error::TransferActive => f.write_str("a transfer is running"),
            Error::ServerInfoFirst => {
                f.write_str("the server has not told its protocol version yet")
            }
            Error::ProtocolUnsupported { version } => unsupported(f, *version),
            Error::NotLoggedIn => f.write_str("not logged in"),
            Error::NoTwoFactorPending => f.write_str("no two-factor code was asked for"),
            Error::Broken => f.write_str("answers and requests are out of step"),
            Error::TooLong { field, max } => write!(f, "{field} is longer than {max} bytes"),
            Error::InvalidData(j) => write!(f, "data is not a JSON object: {j}"),
            Error::EventsNotDrained => f.write_str("events were not drained (a driver bug)"),
            Error::Malformed(m) => {
                write!(f, "the server sent a message that is not CFMS 3-5: {m}")
            }
            Error::Unsolicited => f.write_str("the server sent a message nobody asked for"),
            Error::Upload(e) => e.fmt(f),
            Error::Busy => f.write_str("the session cannot take a request now"),
            Error::Ws(e) => write!(f, "the WebSocket refused the message: {e:?}"),
            Error::Frame(e) => write!(f, "the server sent a message that is not CFMS 13: {e}"),
            Error::NonceNeeded => f.write_str("no nonce was drawn for a signed request"),
            Error::NotOnFramedWire => {
                f.write_str("resuming a download at an offset needs CFMS protocol 13")
            }
        }
    }
}

/// A server that speaks another protocol version, in words.
pub(super) fn unsupported(
    f: &mut core::fmt::Formatter<'_>,
    version: Option<u32>,
) -> core::fmt::Result {
    match version {
        Some(v) => write!(
            f,
            "the server speaks CFMS protocol {v}, this client 3 to 5 and 13"
        ),
        None => f.write_str(
            "the server frames its messages as CFMS protocol 13 or later; \
             this client speaks 3 to 5",
        ),
    }
}

/// A step of the opening sequence ([`State`]) got no answer in time: the
/// error an adapter reports when it gives up on a silent server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NoAnswer {
    /// The step that waited ([`State::ServerInfo`], [`State::LoggingIn`],
    /// [`State::TwoFactor`] or [`State::Registering`]).
    pub step: State,
    /// How long it waited.
    pub waited: Duration,
}

impl core::fmt::Display for NoAnswer {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        // Whole seconds as such ("5 s"), a cut-short wait to a tenth ("0.4 s").
        let tenths = self.waited.total_millis().saturating_add(50) / 100;
        let (secs, tenth) = (tenths / 10, tenths % 10);
        f.write_str("no answer to ")?;
        f.write_str(match self.step {
            State::ServerInfo => "the server information request",
            State::Registering => "the listener registration",
            _ => "the login",
        })?;
        write!(f, " within {secs}")?;
        if tenth != 0 {
            write!(f, ".{tenth}")?;
        }
        f.write_str(" s")?;
        if self.step == State::ServerInfo {
            // A 3-5 server closes the connection at the protocol-13 probe
            // (it never goes silent); a 13 server drops text unanswered.
            f.write_str(
                ": not a CFMS server, or a protocol-13 server asked in protocol 3-5 text?",
            )?;
        }
        Ok(())
    }
}

/// Why a request got no response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestError {
    /// Its deadline passed (the connection is then [`Error::Broken`]).
    Timeout,
    /// The connection closed.
    Disconnected,
    /// The response was larger than the receive buffer.
    ResponseTooLarge {
        /// The receive buffer's size.
        capacity: usize,
    },
    /// The response could not be parsed.
    Malformed(EnvelopeError),
}

impl core::fmt::Display for RequestError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            RequestError::Timeout => f.write_str("no answer in time"),
            RequestError::Disconnected => f.write_str("the connection closed"),
            RequestError::ResponseTooLarge { capacity } => write!(
                f,
                "the answer is larger than the {capacity}-byte receive buffer"
            ),
            RequestError::Malformed(m) => write!(f, "the answer is not CFMS: {m}"),
        }
    }
}

/// Why the connection can no longer be trusted to match answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Desync {
    /// A request's deadline passed: a late answer would go to the wrong request.
    Timeout,
    /// A transfer message could not be followed.
    Transfer,
}

impl core::fmt::Display for Desync {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            Desync::Timeout => "a request's deadline passed, a late answer would be misread",
            Desync::Transfer => "a transfer message could not be followed",
        })
    }
}

/// What happened, as the session queues it: a [`ConnectionEvent`](super::ConnectionEvent)
/// without the body or data it borrows (a test or a log can keep it).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Event {
    /// `server_info` answered with a spoken protocol version. Details via
    /// the [`ConnectionEvent`](super::ConnectionEvent) (`server_name`, `version`).
    ServerInfo {
        /// Which request (`None` for the session's own keep-alive/fence).
        seq: Option<Seq>,
        /// The protocol version (3–5).
        protocol_version: u32,
        /// Whether lockdown is on.
        lockdown: bool,
    },
    /// The server speaks another protocol; the session refuses to go on.
    ProtocolUnsupported {
        /// What it announced, if readable.
        version: Option<u32>,
    },
    /// Logged in (or re-logged in). Nickname, permissions and groups via
    /// the [`ConnectionEvent`](super::ConnectionEvent).
    LoggedIn {
        /// Time until the token expires.
        expires_in: Duration,
    },
    /// 202: answer with [`Session::submit_two_factor`].
    TwoFactorRequired {
        /// The method named by the server.
        method: TwoFactorMethod,
    },
    /// Login failed.
    LoginFailed(LoginError),
    /// The token was refreshed.
    TokenRefreshed {
        /// Time until the new token expires.
        expires_in: Duration,
    },
    /// The server rejected the token. With `relogin` the session logs in
    /// again by itself; otherwise call [`Session::login`].
    TokenRejected {
        /// Whether a re-login is under way.
        relogin: bool,
    },
    /// Lockdown changed (pushed to a registered listener).
    Lockdown {
        /// Whether lockdown is now on.
        on: bool,
    },
    /// The answer to a request; its body via the [`ConnectionEvent`](super::ConnectionEvent).
    Reply {
        /// Which request.
        seq: Seq,
        /// Its status (999 is [`Status::Lockdown`]).
        status: Status,
    },
    /// A request got no answer.
    RequestFailed {
        /// Which request.
        seq: Seq,
        /// Why.
        error: RequestError,
    },
    /// Answers can no longer be matched: reconnect.
    Desynchronized(Desync),
    /// The server is ready for the file: feed it with [`Session::upload_write`].
    UploadReady {
        /// Which upload.
        seq: Seq,
        /// Every binary message but the last has exactly this size.
        frame_size: u32,
    },
    /// The server stored the file.
    UploadFinished {
        /// Which upload.
        seq: Seq,
        /// Bytes sent.
        size: u64,
    },
    /// The upload failed.
    UploadFailed {
        /// Which upload.
        seq: Seq,
        /// Why.
        error: UploadError,
    },
    /// The download header arrived and `ready` is queued.
    DownloadStarted {
        /// Which download.
        seq: Seq,
        /// Plaintext size.
        file_size: u64,
        /// Number of `file_chunk` messages to come.
        total_chunks: u32,
    },
    /// One `file_chunk` was received whole (its ciphertext went to the sink).
    DownloadChunk {
        /// Which download.
        seq: Seq,
        /// Chunk index.
        index: u32,
        /// Ciphertext bytes in it.
        len: u32,
    },
    /// All chunks and the key arrived; decrypt the stored ciphertext with
    /// [`FileDecryptor`](crate::cfms::FileDecryptor) and [`Session::chunk_hashes`].
    DownloadFinished {
        /// Which download.
        seq: Seq,
        /// Key, IV and expected hashes.
        key: DownloadKey,
    },
    /// The download failed.
    DownloadFailed {
        /// Which download.
        seq: Seq,
        /// Why.
        error: DownloadError,
    },
}

impl Event {
    /// Whether the [`ConnectionEvent`](super::ConnectionEvent) holds this event's body.
    pub(super) fn refers_to_response(&self) -> bool {
        matches!(
            self,
            Event::ServerInfo { seq: Some(_), .. } | Event::LoggedIn { .. } | Event::Reply { .. }
        )
    }
}
