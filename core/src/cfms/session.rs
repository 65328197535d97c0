//! The CFMS session: one WebSocket connection's request/response state.
//!
//! Inputs: request methods (which write a message into the caller's
//! buffer), [`Session::handle_message_part`] / [`Session::handle_message`],
//! [`Session::handle_timeout`], [`Session::handle_disconnect`]. Outputs,
//! drained after every input: [`Session::poll_transmit`] (messages the
//! session itself must send: transfer headers, `ready`, token refresh,
//! re-login, keep-alive), [`Session::poll_event`], [`Session::poll_timeout`].
//! Send messages in the order the session produced them: the server answers
//! in that order and the session matches answers first-in first-out.
//!
//! Connection states:
//!
//! ```text
//! Unknown --server_info 200, protocol 3..=5--> Spoken --login 200--> logged in
//!    |                                          |   \--202--> awaiting 2FA --login+2fa_token--> logged in
//!    \--other protocol_version--> Refused        \--token rejected--> re-login (stored password)
//! any --request deadline missed / unknown message--> Broken (reconnect: handle_disconnect)
//! ```
#![deny(clippy::indexing_slicing)]

use super::auth::{self, Auth, LoginError, TwoFactorMethod};
use super::download::{Download, DownloadError, DownloadKey, StreamOutcome};
use super::envelope::{EnvelopeError, Incoming, MessageKind, Response, ServerAction, emit_request};
use super::json::{InsufficientSize, JsonError};
use super::queue::{Pending, Seq};
use super::status::Status;
use super::upload::{
    self, Phase, Upload, UploadError, UploadSource, UploadWrite, UploadWriteError,
};
use super::write::Writer;
use crate::time::{Duration, Instant};

/// Events held between two `poll_event` drains. A message produces at most
/// three; a timeout or disconnect produces one per pending request plus
/// one, so with `Q` above 7 the oldest of those may be dropped. A caller
/// that does not drain loses the oldest events first.
pub const EVENTS: usize = 8;

/// Lowest and highest `protocol_version` this session speaks.
pub const PROTOCOLS: core::ops::RangeInclusive<u32> = 3..=5;

/// Tunables. `Config::default()` suits the real server.
#[derive(Debug, Clone, Copy)]
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

/// A message the session wants sent, from [`Session::poll_transmit`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Transmit {
    /// Text or binary.
    pub kind: MessageKind,
    /// Bytes written into the buffer.
    pub len: usize,
}

/// Why a call was refused; nothing was written or consumed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Error {
    /// The buffer is too small; `required` bytes would do.
    BufferTooSmall {
        /// Bytes needed.
        required: usize,
    },
    /// `capacity` requests are already in flight.
    QueueFull {
        /// The queue's capacity.
        capacity: usize,
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
    /// Drain [`Session::poll_event`] before the next message: the pending
    /// events refer to the response still in the receive buffer.
    EventsNotDrained,
    /// A received message is not one a protocol 3–5 server sends.
    Malformed(EnvelopeError),
    /// A message arrived that no request is waiting for.
    Unsolicited,
    /// `upload_write` misuse.
    Upload(UploadWriteError),
}

impl From<InsufficientSize> for Error {
    fn from(e: InsufficientSize) -> Self {
        Error::BufferTooSmall {
            required: e.required,
        }
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

/// Why the connection can no longer be trusted to match answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Desync {
    /// A request's deadline passed: a late answer would go to the wrong request.
    Timeout,
    /// A transfer message could not be followed.
    Transfer,
}

/// What happened; drain with [`Session::poll_event`] after every input.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Event {
    /// `server_info` answered with a spoken protocol version. Details via
    /// [`Session::response`] (`server_name`, `version`).
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
    /// [`Session::response`].
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
    /// The answer to a request; its body via [`Session::response`].
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
    /// [`FileDecryptor`](super::FileDecryptor) and [`Session::chunk_hashes`].
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
    /// Whether [`Session::response`] holds this event's body.
    fn refers_to_response(&self) -> bool {
        matches!(
            self,
            Event::ServerInfo { seq: Some(_), .. } | Event::LoggedIn { .. } | Event::Reply { .. }
        )
    }
}

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
    pub rx: &'a mut [u8],
    /// One SHA-256 per download chunk (2 MiB each): bounds the largest
    /// downloadable file to `chunk_hashes.len()` × 2 MiB.
    pub chunk_hashes: &'a mut [[u8; 32]],
}

/// A CFMS protocol 3–5 client session with at most `Q` requests in flight.
pub struct Session<'a, const Q: usize> {
    config: Config,
    rx: &'a mut [u8],
    rx_len: usize,
    rx_overflow: bool,
    rx_kind: MessageKind,
    rx_streaming: bool,
    rx_valid: bool,
    chunk_hashes: &'a mut [[u8; 32]],
    pending: Pending<Purpose, Q>,
    next_seq: u32,
    protocol: Protocol,
    broken: bool,
    auth: Auth,
    unix_anchor: Option<(Instant, f64)>,
    lockdown: Option<bool>,
    transfer: Transfer,
    events: heapless::Deque<Event, EVENTS>,
    due: Due,
    last_activity: Instant,
    last_download_chunks: usize,
}

impl<'a, const Q: usize> Session<'a, Q> {
    /// A session for a freshly opened connection.
    pub fn new(config: Config, buffers: Buffers<'a>) -> Self {
        Session {
            config,
            rx: buffers.rx,
            rx_len: 0,
            rx_overflow: false,
            rx_kind: MessageKind::Text,
            rx_streaming: false,
            rx_valid: false,
            chunk_hashes: buffers.chunk_hashes,
            pending: Pending::new(),
            next_seq: 0,
            protocol: Protocol::Unknown,
            broken: false,
            auth: Auth::new(),
            unix_anchor: None,
            lockdown: None,
            transfer: Transfer::None,
            events: heapless::Deque::new(),
            due: Due::default(),
            last_activity: Instant::ZERO,
            last_download_chunks: 0,
        }
    }

    /// Tell the session the wall clock: at `now`, it is `unix_secs` seconds
    /// since the UNIX epoch. Used for the token expiry when a login
    /// response carries no server `timestamp`.
    pub fn set_unix_time(&mut self, now: Instant, unix_secs: f64) {
        self.unix_anchor = Some((now, unix_secs));
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

    /// The most recent response, valid until the next message is handled.
    pub fn response(&self) -> Option<Response<'_>> {
        if !self.rx_valid {
            return None;
        }
        Response::parse(self.rx.get(..self.rx_len)?).ok()
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

    /// The next event, if any.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    fn emit(&mut self, e: Event) {
        if self.events.is_full() {
            // The oldest event is dropped rather than the newest: a caller
            // that never drains loses history, not the current state.
            self.events.pop_front();
        }
        let _ = self.events.push_back(e);
    }

    fn next_seq(&mut self) -> Seq {
        let s = Seq(self.next_seq);
        self.next_seq = self.next_seq.wrapping_add(1);
        s
    }

    // ----- sending ---------------------------------------------------------

    fn check_can_send(&self, action: &str) -> Result<(), Error> {
        if self.broken {
            return Err(Error::Broken);
        }
        match self.protocol {
            Protocol::Refused(version) => return Err(Error::ProtocolUnsupported { version }),
            Protocol::Unknown if action != "server_info" => return Err(Error::ServerInfoFirst),
            _ => {}
        }
        if !matches!(self.transfer, Transfer::None) {
            return Err(Error::TransferActive);
        }
        if self.pending.is_full() {
            return Err(Error::QueueFull { capacity: Q });
        }
        Ok(())
    }

    /// Write a request with the session's credentials into `buf` and queue it.
    fn send(
        &mut self,
        now: Instant,
        buf: &mut [u8],
        action: &str,
        anonymous: bool,
        purpose: impl FnOnce(Seq) -> Purpose,
        data: impl FnOnce(&mut Writer<'_>),
    ) -> Result<Sent, Error> {
        self.check_can_send(action)?;
        let (user, token) = if anonymous {
            ("", "")
        } else {
            (self.auth.username.as_str(), self.auth.token.as_str())
        };
        let len = emit_request(buf, action, user, token, data)?;
        let seq = self.next_seq();
        let deadline = now + self.config.request_timeout;
        // Cannot fail: check_can_send saw room.
        self.pending
            .push(purpose(seq), deadline)
            .map_err(|_| Error::QueueFull { capacity: Q })?;
        self.last_activity = now;
        Ok(Sent { seq, len })
    }

    /// `server_info {}`: must be the first request; checks `protocol_version`.
    pub fn server_info(&mut self, now: Instant, buf: &mut [u8]) -> Result<Sent, Error> {
        self.send(
            now,
            buf,
            "server_info",
            true,
            |s| Purpose::ServerInfo(Some(s)),
            |_| {},
        )
    }

    /// `login {username, password}`. The credentials are kept (fixed
    /// buffers, wiped on drop) for a two-factor answer and, with
    /// [`Config::relogin`], for logging in again when the token is rejected.
    pub fn login(
        &mut self,
        now: Instant,
        username: &str,
        password: &str,
        buf: &mut [u8],
    ) -> Result<Sent, Error> {
        self.check_can_send("login")?;
        self.keep_credentials(username, password)?;
        self.auth.awaiting_two_factor = false;
        self.send_login(now, buf, None, true)
    }

    /// Store the credentials a login is sent with, refusing ones longer than
    /// their fixed buffers.
    fn keep_credentials(&mut self, username: &str, password: &str) -> Result<(), Error> {
        let too_long = |field| move |max| Error::TooLong { field, max };
        self.auth
            .username
            .set(username)
            .map_err(too_long("username"))?;
        self.auth
            .password
            .set(password)
            .map_err(too_long("password"))
    }

    /// `login {username, password, 2fa_token}` in one step, for an account
    /// known to have two-factor login on.
    pub fn login_with_two_factor(
        &mut self,
        now: Instant,
        username: &str,
        password: &str,
        code: &str,
        buf: &mut [u8],
    ) -> Result<Sent, Error> {
        self.check_can_send("login")?;
        self.keep_credentials(username, password)?;
        self.send_login(now, buf, Some(code), true)
    }

    /// `refresh_token {}` now, instead of waiting for the schedule.
    pub fn refresh_token(&mut self, now: Instant, buf: &mut [u8]) -> Result<Sent, Error> {
        if !self.auth.logged_in {
            return Err(Error::NotLoggedIn);
        }
        self.send(
            now,
            buf,
            "refresh_token",
            false,
            |s| Purpose::Refresh(Some(s)),
            |_| {},
        )
    }

    /// Repeat the login with `2fa_token` (a TOTP or a backup code) after
    /// [`Event::TwoFactorRequired`].
    pub fn submit_two_factor(
        &mut self,
        now: Instant,
        code: &str,
        buf: &mut [u8],
    ) -> Result<Sent, Error> {
        if !self.auth.awaiting_two_factor {
            return Err(Error::NoTwoFactorPending);
        }
        self.check_can_send("login")?;
        self.send_login(now, buf, Some(code), true)
    }

    fn send_login(
        &mut self,
        now: Instant,
        buf: &mut [u8],
        two_factor: Option<&str>,
        by_application: bool,
    ) -> Result<Sent, Error> {
        let user = self.auth.username.as_str();
        let pass = self.auth.password.as_str();
        let len = emit_request(buf, "login", "", "", |w| {
            w.field_str("username", user);
            w.field_str("password", pass);
            if let Some(code) = two_factor {
                w.field_str("2fa_token", code);
            }
        })?;
        let seq = self.next_seq();
        self.pending
            .push(
                Purpose::Login(by_application.then_some(seq)),
                now + self.config.request_timeout,
            )
            .map_err(|_| Error::QueueFull { capacity: Q })?;
        self.last_activity = now;
        Ok(Sent { seq, len })
    }

    /// `set_passwd {username, old_passwd, new_passwd}` with an empty
    /// envelope username and token: the way out of
    /// [`LoginError::PasswordExpired`].
    pub fn set_passwd(
        &mut self,
        now: Instant,
        username: &str,
        old: &str,
        new: &str,
        buf: &mut [u8],
    ) -> Result<Sent, Error> {
        self.send(now, buf, "set_passwd", true, Purpose::App, |w| {
            w.field_str("username", username);
            w.field_str("old_passwd", old);
            w.field_str("new_passwd", new);
        })
    }

    /// `register_listener {}`: lockdown changes then arrive as
    /// [`Event::Lockdown`].
    pub fn register_listener(&mut self, now: Instant, buf: &mut [u8]) -> Result<Sent, Error> {
        let anonymous = !self.auth.logged_in;
        self.send(
            now,
            buf,
            "register_listener",
            anonymous,
            Purpose::Listener,
            |_| {},
        )
    }

    /// Any action with caller-given `data`, a pre-serialised JSON object.
    pub fn request(
        &mut self,
        now: Instant,
        action: &str,
        data: &[u8],
        buf: &mut [u8],
    ) -> Result<Sent, Error> {
        let v = super::json::parse(data).map_err(Error::InvalidData)?;
        if v.kind() != super::json::Kind::Object {
            return Err(Error::InvalidData(JsonError::UnexpectedByte { offset: 0 }));
        }
        // An object's raw text starts with `{` and ends with `}`.
        let raw = v.raw();
        let inner = raw.get(1..raw.len() - 1).unwrap_or_default();
        self.send(now, buf, action, false, Purpose::App, |w| w.raw(inner))
    }

    /// An authenticated action whose data the `ops` helpers write.
    pub(crate) fn send_op(
        &mut self,
        now: Instant,
        buf: &mut [u8],
        action: &str,
        data: impl FnOnce(&mut Writer<'_>),
    ) -> Result<Sent, Error> {
        self.check_can_send(action)?;
        if !self.auth.logged_in {
            return Err(Error::NotLoggedIn);
        }
        self.send(now, buf, action, false, Purpose::App, data)
    }

    /// `upload_file {task_id}` and the upload state machine behind it (see
    /// [`upload`]).
    pub fn upload_file(
        &mut self,
        now: Instant,
        task_id: &str,
        source: UploadSource,
        buf: &mut [u8],
    ) -> Result<Sent, Error> {
        let anonymous = !self.auth.logged_in;
        let sent = self.send(
            now,
            buf,
            "upload_file",
            anonymous,
            |_| Purpose::Transfer,
            |w| w.field_str("task_id", task_id),
        )?;
        let max_chunk = match self.protocol {
            Protocol::Spoken(v) if v >= 4 => Some(self.config.upload_frame.max(upload::MIN_FRAME)),
            _ => None,
        };
        self.transfer = Transfer::Upload(Upload::new(sent.seq, source, max_chunk));
        Ok(sent)
    }

    /// Feed file bytes during an upload (after [`Event::UploadReady`]).
    pub fn upload_write(&mut self, now: Instant, data: &[u8]) -> Result<UploadWrite, Error> {
        let Transfer::Upload(up) = &mut self.transfer else {
            return Err(Error::Upload(UploadWriteError::NotSending));
        };
        let w = up.write(data).map_err(Error::Upload)?;
        if let Some(head) = self.pending.front_mut() {
            let limit = if up.phase == Phase::AwaitVerdict {
                self.config.request_timeout
            } else {
                self.config.transfer_timeout
            };
            head.deadline = now + limit;
        }
        self.last_activity = now;
        Ok(w)
    }

    /// `download_file {task_id}` and the download state machine behind it
    /// (see [`download`](super::download)). Ciphertext goes to the sink
    /// given to `handle_message*`.
    pub fn download_file(
        &mut self,
        now: Instant,
        task_id: &str,
        buf: &mut [u8],
    ) -> Result<Sent, Error> {
        let anonymous = !self.auth.logged_in;
        let sent = self.send(
            now,
            buf,
            "download_file",
            anonymous,
            |_| Purpose::Transfer,
            |w| w.field_str("task_id", task_id),
        )?;
        self.transfer = Transfer::Download(Download::new(sent.seq));
        // The hash storage is about to be overwritten.
        self.last_download_chunks = 0;
        Ok(sent)
    }

    /// Write the next message the session owes the server into `buf`.
    pub fn poll_transmit(
        &mut self,
        now: Instant,
        buf: &mut [u8],
    ) -> Result<Option<Transmit>, Error> {
        let text = |len| {
            Ok(Some(Transmit {
                kind: MessageKind::Text,
                len,
            }))
        };
        match &mut self.transfer {
            Transfer::Upload(up) if up.phase == Phase::HeaderDue => {
                let len = up.header(buf)?;
                up.phase = Phase::AwaitReady;
                return text(len);
            }
            Transfer::Download(d) => {
                if let Some(msg) = d.due_message() {
                    let Some(dst) = buf.get_mut(..msg.len()) else {
                        return Err(Error::BufferTooSmall {
                            required: msg.len(),
                        });
                    };
                    dst.copy_from_slice(msg);
                    if let Some(outcome) = d.sent_due(now) {
                        self.finish_download(outcome);
                    }
                    return text(msg.len());
                }
            }
            _ => {}
        }
        if self.broken || self.pending.is_full() {
            return Ok(None);
        }
        if self.due.fence {
            let len = emit_request(buf, "server_info", "", "", |_| {})?;
            self.due.fence = false;
            let _ = self
                .pending
                .push(Purpose::ServerInfo(None), now + self.config.request_timeout);
            return text(len);
        }
        if !matches!(self.transfer, Transfer::None) || !matches!(self.protocol, Protocol::Spoken(_))
        {
            return Ok(None);
        }
        if self.due.relogin {
            let sent = self.send_login(now, buf, None, false)?;
            self.due.relogin = false;
            return text(sent.len);
        }
        if self.due.refresh {
            let (user, token) = (self.auth.username.as_str(), self.auth.token.as_str());
            let len = emit_request(buf, "refresh_token", user, token, |_| {})?;
            self.due.refresh = false;
            let _ = self
                .pending
                .push(Purpose::Refresh(None), now + self.config.request_timeout);
            self.last_activity = now;
            return text(len);
        }
        if self.due.keep_alive {
            let len = emit_request(buf, "server_info", "", "", |_| {})?;
            self.due.keep_alive = false;
            let _ = self
                .pending
                .push(Purpose::ServerInfo(None), now + self.config.request_timeout);
            self.last_activity = now;
            return text(len);
        }
        Ok(None)
    }

    // ----- time ------------------------------------------------------------

    /// When [`Session::handle_timeout`] wants to run next.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let mut t = self.pending.earliest_deadline();
        let mut consider = |x: Option<Instant>| {
            if let Some(x) = x {
                t = Some(t.map_or(x, |t: Instant| t.min(x)));
            }
        };
        if self.auth.logged_in {
            consider(self.auth.refresh_at);
        }
        if let (Some(iv), Protocol::Spoken(_), true) = (
            self.config.keep_alive,
            self.protocol,
            self.pending.is_empty(),
        ) {
            consider(Some(self.last_activity + iv));
        }
        t
    }

    /// Let time pass: expire requests, schedule refresh and keep-alive.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.pending.earliest_deadline().is_some_and(|d| d <= now) {
            self.fail_all(
                RequestError::Timeout,
                UploadError::Timeout,
                DownloadError::Timeout,
            );
            self.broken = true;
            self.emit(Event::Desynchronized(Desync::Timeout));
            return;
        }
        if self.auth.logged_in && self.auth.refresh_at.is_some_and(|r| r <= now) {
            self.auth.refresh_at = None;
            self.due.refresh = true;
        }
        let idle = |iv| self.pending.is_empty() && now >= self.last_activity + iv;
        if let (Some(iv), Protocol::Spoken(_)) = (self.config.keep_alive, self.protocol)
            && idle(iv)
        {
            self.due.keep_alive = true;
            self.last_activity = now;
        }
    }

    /// The connection closed: every pending request fails. The token is
    /// kept (it stays valid on a new connection, which starts with
    /// `server_info` again).
    pub fn handle_disconnect(&mut self, _now: Instant) {
        self.fail_all(
            RequestError::Disconnected,
            UploadError::Disconnected,
            DownloadError::Disconnected,
        );
        self.protocol = Protocol::Unknown;
        self.broken = false;
        self.due = Due::default();
        self.rx_len = 0;
        self.rx_valid = false;
        self.rx_streaming = false;
        self.lockdown = None;
        self.auth.awaiting_two_factor = false;
    }

    fn fail_all(&mut self, req: RequestError, up: UploadError, down: DownloadError) {
        while let Some(entry) = self.pending.pop() {
            match (entry.purpose, entry.purpose.seq()) {
                (Purpose::Transfer, _) => self.fail_transfer(up, down),
                (_, Some(seq)) => self.emit(Event::RequestFailed { seq, error: req }),
                (_, None) => {}
            }
        }
        self.due.fence = false;
    }

    fn fail_transfer(&mut self, up: UploadError, down: DownloadError) {
        match core::mem::replace(&mut self.transfer, Transfer::None) {
            Transfer::Upload(u) => self.emit(Event::UploadFailed {
                seq: u.seq,
                error: up,
            }),
            Transfer::Download(d) => self.emit(Event::DownloadFailed {
                seq: d.seq,
                error: down,
            }),
            Transfer::None => {}
        }
    }

    // ----- receiving -------------------------------------------------------

    /// Handle one whole received message.
    pub fn handle_message(
        &mut self,
        now: Instant,
        kind: MessageKind,
        payload: &[u8],
        sink: &mut impl FnMut(&[u8]),
    ) -> Result<(), Error> {
        self.handle_message_part(now, kind, payload, true, true, sink)
    }

    /// Handle a piece of a received message (`first`/`last` mark its ends).
    ///
    /// `file_chunk` messages (about 2.8 MB) are decoded as they stream in:
    /// the base64 ciphertext is decoded across any piece boundary and
    /// handed to `sink` in order; nothing of it is buffered beyond three
    /// base64 characters. Other messages are collected in the receive
    /// buffer and handled when the last piece arrives.
    pub fn handle_message_part(
        &mut self,
        now: Instant,
        kind: MessageKind,
        part: &[u8],
        first: bool,
        last: bool,
        sink: &mut impl FnMut(&[u8]),
    ) -> Result<(), Error> {
        if first {
            if self.events.iter().any(Event::refers_to_response) {
                return Err(Error::EventsNotDrained);
            }
            self.rx_len = 0;
            self.rx_overflow = false;
            self.rx_valid = false;
            self.rx_kind = kind;
            self.rx_streaming = kind == MessageKind::Text
                && matches!(&self.transfer, Transfer::Download(d) if d.is_receiving())
                && self
                    .pending
                    .front()
                    .is_some_and(|e| e.purpose == Purpose::Transfer);
            if let (true, Transfer::Download(d)) = (self.rx_streaming, &mut self.transfer) {
                d.begin_message();
            }
        }
        self.last_activity = now;
        if self.rx_streaming {
            return self.stream_part(now, part, last, sink);
        }
        let end = self.rx_len + part.len();
        if let Some(dst) = self.rx.get_mut(self.rx_len..end) {
            dst.copy_from_slice(part);
            self.rx_len = end;
        } else {
            self.rx_overflow = true;
        }
        if !last {
            return Ok(());
        }
        if self.rx_overflow {
            return self.on_overflow();
        }
        let rx = core::mem::take(&mut self.rx);
        let message = rx.get(..self.rx_len).unwrap_or_default();
        let result = match Incoming::parse(self.rx_kind, message) {
            Ok(incoming) => self.on_incoming(now, incoming),
            Err(e) => self.on_malformed(e),
        };
        self.rx = rx;
        self.rx_valid = true;
        result
    }

    fn stream_part(
        &mut self,
        now: Instant,
        part: &[u8],
        last: bool,
        sink: &mut impl FnMut(&[u8]),
    ) -> Result<(), Error> {
        let Transfer::Download(d) = &mut self.transfer else {
            return Ok(());
        };
        if let Some(head) = self.pending.front_mut() {
            head.deadline = now + self.config.transfer_timeout;
        }
        let mut result = d.feed(part, sink);
        if last && result.is_ok() {
            result = d.end_message(self.chunk_hashes);
        }
        match result {
            Ok(None) => Ok(()),
            Ok(Some(outcome)) => {
                self.finish_download(outcome);
                Ok(())
            }
            Err(error) => {
                let seq = d.seq;
                self.transfer = Transfer::None;
                self.pending.pop();
                self.emit(Event::DownloadFailed { seq, error });
                if error.breaks_stream() {
                    self.broken = true;
                    self.emit(Event::Desynchronized(Desync::Transfer));
                }
                Ok(())
            }
        }
    }

    fn finish_download(&mut self, outcome: StreamOutcome) {
        let Transfer::Download(d) = &self.transfer else {
            return;
        };
        let seq = d.seq;
        match outcome {
            StreamOutcome::Started {
                file_size,
                total_chunks,
            } => self.emit(Event::DownloadStarted {
                seq,
                file_size,
                total_chunks,
            }),
            StreamOutcome::Chunk { index, len } => {
                self.emit(Event::DownloadChunk { seq, index, len })
            }
            StreamOutcome::Finished(key) => {
                self.last_download_chunks = key.total_chunks as usize;
                self.transfer = Transfer::None;
                self.pending.pop();
                self.emit(Event::DownloadFinished { seq, key });
            }
            StreamOutcome::Failed(error) => {
                self.transfer = Transfer::None;
                self.pending.pop();
                self.emit(Event::DownloadFailed { seq, error });
            }
        }
    }

    fn on_overflow(&mut self) -> Result<(), Error> {
        let capacity = self.rx.len();
        if self.rx_kind == MessageKind::Binary {
            // Lockdown pushes are 38 bytes; anything this large is not one.
            return Err(Error::Malformed(EnvelopeError::UnexpectedBinary));
        }
        let Some(entry) = self.pending.pop() else {
            return Err(Error::Unsolicited);
        };
        self.fail_head(
            entry.purpose,
            RequestError::ResponseTooLarge { capacity },
            DownloadError::MessageTooLarge,
        );
        Ok(())
    }

    /// The oldest request's answer could not be used.
    fn fail_head(&mut self, purpose: Purpose, req: RequestError, down: DownloadError) {
        match (purpose, purpose.seq()) {
            (Purpose::Transfer, _) => self.fail_transfer(UploadError::Unexpected, down),
            (_, Some(seq)) => self.emit(Event::RequestFailed { seq, error: req }),
            (_, None) => {}
        }
    }

    fn on_malformed(&mut self, e: EnvelopeError) -> Result<(), Error> {
        if self.rx_kind == MessageKind::Text {
            if let Some(entry) = self.pending.pop() {
                self.fail_head(
                    entry.purpose,
                    RequestError::Malformed(e),
                    DownloadError::Malformed,
                );
            }
        } else if matches!(
            self.pending.front().map(|e| e.purpose),
            Some(Purpose::ServerInfo(_))
        ) {
            // A framed (protocol ≥ 13) server answers server_info in binary.
            self.pending.pop();
            self.protocol = Protocol::Refused(None);
            self.emit(Event::ProtocolUnsupported { version: None });
        }
        Err(Error::Malformed(e))
    }

    fn on_incoming(&mut self, now: Instant, incoming: Incoming<'_>) -> Result<(), Error> {
        if let Incoming::Lockdown { on } = incoming {
            self.lockdown = Some(on);
            self.emit(Event::Lockdown { on });
            return Ok(());
        }
        let Some(head) = self.pending.front().map(|e| e.purpose) else {
            return Err(Error::Unsolicited);
        };
        if head == Purpose::Transfer {
            return self.on_transfer_message(now, incoming);
        }
        let Incoming::Response(response) = incoming else {
            self.broken = true;
            self.emit(Event::Desynchronized(Desync::Transfer));
            return Err(Error::Unsolicited);
        };
        self.pending.pop();
        self.on_response(now, head, response);
        Ok(())
    }

    fn on_response(&mut self, now: Instant, purpose: Purpose, r: Response<'_>) {
        match purpose {
            Purpose::ServerInfo(seq) => self.on_server_info(seq, r),
            Purpose::Login(_) => self.on_login(now, r),
            Purpose::Refresh(_) => self.on_refresh(now, r),
            Purpose::Listener(seq) => self.emit(Event::Reply {
                seq,
                status: r.status(),
            }),
            Purpose::App(seq) => {
                self.emit(Event::Reply {
                    seq,
                    status: r.status(),
                });
                self.check_token_rejected(&r);
            }
            Purpose::Transfer => {}
        }
    }

    fn on_server_info(&mut self, seq: Option<Seq>, r: Response<'_>) {
        let data = r.data();
        let version = data
            .get("protocol_version")
            .and_then(|v| v.as_u64())
            .and_then(|v| u32::try_from(v).ok());
        if !r.status().is_ok() {
            if let Some(seq) = seq {
                self.emit(Event::Reply {
                    seq,
                    status: r.status(),
                });
            }
            return;
        }
        match version {
            Some(v) if PROTOCOLS.contains(&v) => {
                self.protocol = Protocol::Spoken(v);
                let lockdown = data
                    .get("lockdown")
                    .and_then(|l| l.as_bool())
                    .unwrap_or(false);
                let changed = self.lockdown.is_some_and(|old| old != lockdown);
                self.lockdown = Some(lockdown);
                if seq.is_some() {
                    self.emit(Event::ServerInfo {
                        seq,
                        protocol_version: v,
                        lockdown,
                    });
                } else if changed {
                    self.emit(Event::Lockdown { on: lockdown });
                }
            }
            other => {
                self.protocol = Protocol::Refused(other);
                self.emit(Event::ProtocolUnsupported { version: other });
            }
        }
    }

    fn on_login(&mut self, now: Instant, r: Response<'_>) {
        let data = r.data();
        let status = r.status();
        if status == Status::TwoFactorRequired {
            self.auth.awaiting_two_factor = true;
            let totp = data
                .get("method")
                .and_then(|m| m.as_str())
                .is_some_and(|m| m.eq_str("totp"));
            let method = if totp {
                TwoFactorMethod::Totp
            } else {
                TwoFactorMethod::Other
            };
            self.emit(Event::TwoFactorRequired { method });
            return;
        }
        let error = match status {
            Status::Ok => match self.store_token(now, &r) {
                Some(expires_in) => {
                    self.auth.awaiting_two_factor = false;
                    if !self.config.relogin {
                        self.auth.password.clear();
                    }
                    self.emit(Event::LoggedIn { expires_in });
                    return;
                }
                None => LoginError::BadToken,
            },
            Status::Unauthorized if r.message_is("Invalid credentials") => {
                LoginError::InvalidCredentials
            }
            Status::Unauthorized
                if r.message()
                    .is_some_and(|m| m.starts_with("Invalid two-factor")) =>
            {
                LoginError::InvalidTwoFactorCode
            }
            Status::Forbidden
                if r.message()
                    .is_some_and(|m| m.starts_with("Password should be changed")) =>
            {
                LoginError::PasswordExpired
            }
            Status::Lockdown => LoginError::Lockdown,
            other => LoginError::Rejected(other),
        };
        // A wrong code may be retried with another one: the password stays
        // until the login ends one way or the other.
        self.auth.awaiting_two_factor = error == LoginError::InvalidTwoFactorCode;
        if !self.auth.awaiting_two_factor {
            self.auth.password.clear();
        }
        self.auth.logged_in = false;
        self.emit(Event::LoginFailed(error));
    }

    /// Keep the token and schedule its refresh; `None` if unusable.
    fn store_token(&mut self, now: Instant, r: &Response<'_>) -> Option<Duration> {
        let data = r.data();
        let token = data.get("token")?.as_str()?;
        let decoded = token.decode_into(self.auth.token.spare()).ok()?.len();
        if decoded == 0 {
            return None;
        }
        self.auth.token.commit(decoded);
        let exp = data.get("exp").and_then(|e| e.as_f64());
        let lifetime = auth::token_lifetime(
            now,
            exp,
            r.timestamp(),
            self.unix_anchor,
            self.config.assumed_token_lifetime,
        );
        self.auth.refresh_at = Some(auth::refresh_instant(
            now,
            lifetime,
            self.config.refresh_at_percent,
        ));
        self.auth.logged_in = true;
        Some(lifetime)
    }

    fn on_refresh(&mut self, now: Instant, r: Response<'_>) {
        if r.status().is_ok()
            && let Some(expires_in) = self.store_token(now, &r)
        {
            self.emit(Event::TokenRefreshed { expires_in });
            return;
        }
        // 400 `Invalid or expired token` (or anything else): log in again.
        self.token_rejected();
    }

    fn check_token_rejected(&mut self, r: &Response<'_>) {
        let rejected = matches!(r.status(), Status::Unauthorized | Status::Forbidden)
            && (r.message_is("Invalid user or token") || r.message_is("Authentication required"));
        if rejected && self.auth.logged_in {
            self.token_rejected();
        }
    }

    fn token_rejected(&mut self) {
        self.auth.logged_in = false;
        self.auth.refresh_at = None;
        self.auth.token.clear();
        let relogin = self.config.relogin && !self.auth.password.is_empty();
        self.due.relogin = relogin;
        self.emit(Event::TokenRejected { relogin });
    }

    fn on_transfer_message(&mut self, now: Instant, incoming: Incoming<'_>) -> Result<(), Error> {
        if let Some(head) = self.pending.front_mut() {
            head.deadline = now + self.config.transfer_timeout;
        }
        match &mut self.transfer {
            Transfer::Upload(_) => self.on_upload_message(now, incoming),
            Transfer::Download(d) => {
                let outcome = match incoming {
                    Incoming::Action(a) => d.on_header(&a, self.chunk_hashes.len()),
                    Incoming::Response(r) => StreamOutcome::Failed(d.on_response(r.status())),
                    _ => StreamOutcome::Failed(DownloadError::Unexpected),
                };
                self.finish_download(outcome);
                Ok(())
            }
            Transfer::None => Err(Error::Unsolicited),
        }
    }

    fn on_upload_message(&mut self, now: Instant, incoming: Incoming<'_>) -> Result<(), Error> {
        let Transfer::Upload(up) = &mut self.transfer else {
            return Ok(());
        };
        let seq = up.seq;
        // A refused `ready N` leaves the server waiting for binary frames:
        // whatever is sent next would be read as file content.
        let mut desync = false;
        let result: Result<Option<Event>, UploadError> = match (up.phase, incoming) {
            (Phase::AwaitHandshake, Incoming::Action(a)) if is_transfer_file(&a) => {
                up.phase = Phase::HeaderDue;
                Ok(None)
            }
            (Phase::AwaitReady, Incoming::Ready { threshold }) => up
                .on_ready(threshold)
                .map(|frame_size| Some(Event::UploadReady { seq, frame_size }))
                .inspect_err(|_| desync = true),
            (Phase::AwaitReady, Incoming::Stop) => {
                up.phase = Phase::AwaitFence;
                self.due.fence = true;
                Ok(None)
            }
            (Phase::AwaitFence, Incoming::Response(r)) => {
                let size = up.sent();
                self.transfer = Transfer::None;
                self.pending.pop();
                if r.status().is_ok() {
                    // Silence after `stop`: this is the fence's answer.
                    self.emit(Event::UploadFinished { seq, size });
                    if let Some(head) = self.pending.pop() {
                        self.on_response(now, head.purpose, r);
                    }
                } else {
                    self.emit(Event::UploadFailed {
                        seq,
                        error: UploadError::Server(r.status()),
                    });
                }
                return Ok(());
            }
            (_, Incoming::Response(r)) => match up.verdict(r.status()) {
                Ok(()) if up.phase == Phase::AwaitVerdict => Ok(Some(Event::UploadFinished {
                    seq,
                    size: up.sent(),
                })),
                Ok(()) => Err(UploadError::Unexpected),
                Err(e) => Err(e),
            }
            .inspect(|_| {
                self.transfer = Transfer::None;
                self.pending.pop();
            }),
            _ => Err(UploadError::Unexpected),
        };
        match result {
            Ok(Some(e)) => self.emit(e),
            Ok(None) => {}
            Err(error) => {
                if matches!(self.transfer, Transfer::Upload(_)) {
                    self.transfer = Transfer::None;
                    self.pending.pop();
                }
                self.emit(Event::UploadFailed { seq, error });
                if desync {
                    self.broken = true;
                    self.emit(Event::Desynchronized(Desync::Transfer));
                }
            }
        }
        Ok(())
    }
}

fn is_transfer_file(a: &ServerAction<'_>) -> bool {
    a.action().eq_str("transfer_file")
}
