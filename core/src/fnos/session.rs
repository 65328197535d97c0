//! The fnOS session state machine, sans I/O.
//!
//! The session works on whole WebSocket text messages. The caller owns the
//! socket and the clock and drives it with:
//!
//! - inputs: [`handle_connect`](Session::handle_connect),
//!   [`handle_text`](Session::handle_text) (returns an event that borrows the
//!   received payload), [`handle_timeout`](Session::handle_timeout),
//!   [`handle_disconnect`](Session::handle_disconnect),
//!   [`send`](Session::send) and
//!   [`submit_two_factor_code`](Session::submit_two_factor_code);
//! - outputs, drained after every input:
//!   [`poll_transmit`](Session::poll_transmit) until `None`,
//!   [`poll_event`](Session::poll_event) until `None`, then
//!   [`poll_timeout`](Session::poll_timeout).
//!
//! # States
//!
//! ```text
//! Disconnected --connect--> KeyExchange --pub+si--> LoggingIn(method) --succ--> Ready
//!                                                     |   ^    |
//!                             fail: next method ------+---+    +--accessToken--> AwaitingTwoFactorCode
//!                             (AuthToken -> TokenLogin -> Password)                 |
//!                             none left / timeout --> LoginFailed     code --> LoggingIn(TwoFactor)
//! any --disconnect--> Disconnected (pending requests aborted, backId and counter reset,
//!                                   token, long token and secret kept)
//! Ready --tokenExpired push--> LoggingIn(TokenLogin or Password)
//! any connected --kicked push--> LoginFailed (tokens forgotten, `kicked()` until the next login)
//! ```
//!
//! The first method is `user.authToken` when a token and secret are stored,
//! else `user.tokenLogin` when a long token and secret are stored, else the
//! password. A failed token method clears that token and falls through to the
//! next; a refused password ends in `LoginFailed`. A session with no password
//! (one started from a [`DeviceToken`], see
//! [`Session::from_device_token`]) never tries one: when its tokens are
//! refused the login ends with [`LoginFailure::DeviceTokenRefused`].
//!
//! Requests are signed once the session is `Ready` (and the token logins with
//! the stored secret); before that everything goes unsigned, as the web UI
//! does. The heartbeat runs from connect to disconnect.
//!
//! ```
//! use naslink_core::fnos::session::TRANSMIT_CAPACITY;
//! use naslink_core::fnos::{Config, Event, Request, Session, Status};
//! use naslink_core::random;
//! use naslink_core::time::Instant;
//!
//! let mut fnos: Session<'_> = Session::new(Config::new("admin", "secret"));
//! // Login keys need a CSPRNG; this constant source only suits the example.
//! let mut rng = random::from_fn(|buf: &mut [u8]| buf.fill(7));
//! let mut tx = [0u8; TRANSMIT_CAPACITY];
//! let now = Instant::from_secs(1_763_017_756);
//!
//! fnos.handle_connect(now); // after the WebSocket handshake
//! let n = fnos.poll_transmit(now, &mut rng, &mut tx).unwrap().unwrap();
//! assert!(tx[..n].ends_with(br#""req":"util.crypto.getRSAPub"}"#));
//!
//! // Commands that work before login can go out at once (unsigned).
//! let (reqid, n) = fnos.send(now, &Request::get_host_name(), &mut tx).unwrap();
//! // ... send tx[..n] as a text message; feed each received one back:
//! let answer = format!(r#"{{"data":{{"hostName":"nas"}},"result":"succ","reqid":"{reqid}"}}"#);
//! match fnos.handle_text(now, answer.as_bytes()).unwrap() {
//!     Some(Event::Reply(reply)) => {
//!         assert_eq!(reply.status(), Status::Success);
//!         let name = reply.data().and_then(|d| d.get("hostName")).and_then(|v| v.as_str());
//!         assert!(name.unwrap().eq_str("nas"));
//!     }
//!     other => panic!("unexpected {other:?}"),
//! }
//! ```
#![deny(clippy::indexing_slicing)]

use zeroize::Zeroize;

use super::device_token::DeviceToken;
use super::envelope::{EnvelopeError, LoginKey, envelope_len, write_envelope};
use super::errno::Errno;
use super::heartbeat::{Heartbeat, HeartbeatAction, HeartbeatConfig};
use super::login::{
    ACCESS_TOKEN_CAPACITY, Credentials, Device, Granted, LOGIN_PLAINTEXT_CAPACITY, LoginFailure,
    LoginMethod, Redacted, SI_CAPACITY, TWO_FACTOR_CODE_CAPACITY, read_granted, read_server_key,
    wipe, write_password_login, write_two_factor_verify,
};
use super::pending::{Busy, PendingTable};
use super::reqid::{BackId, Reqid, ReqidGenerator};
use super::request::{Param, Request, RequestError};
use super::response::{Message, Push, Reply, ResponseError, Status};
use super::rsa::{MAX_MODULUS_BYTES, RsaPublicKey};
use super::sign::{SIGNATURE_LEN, Signer, is_never_signed};
use crate::InsufficientSize;
use crate::connection::{self, Message as WsMessage, Transmit};
use crate::json::Object;
use crate::random::Entropy;
use crate::time::{Duration, Instant};
use crate::ws::MessageKind;

/// Requests in flight by default.
pub const DEFAULT_PENDING: usize = 16;

/// A transmit buffer this large always fits what
/// [`Session::poll_transmit`] writes: the largest login envelope (a full
/// login plaintext under a 4096-bit key), about 2 KB.
pub const TRANSMIT_CAPACITY: usize = envelope_len(LOGIN_PLAINTEXT_CAPACITY - 16, MAX_MODULUS_BYTES);

/// What the session needs to know about the user and device. `Debug`
/// shows the password's length only.
#[derive(Clone, Copy)]
pub struct Config<'c> {
    /// User name.
    pub user: &'c str,
    /// Password; `None` allows token logins only.
    pub password: Option<&'c str>,
    /// Device identity sent with logins.
    pub device: Device<'c>,
    /// Deadline for each application request.
    pub request_timeout: Duration,
    /// Deadline for each login step.
    pub login_timeout: Duration,
    /// Heartbeat settings.
    pub heartbeat: HeartbeatConfig,
}

impl core::fmt::Debug for Config<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Config")
            .field("user", &self.user)
            .field("password", &Redacted(self.password.map_or(0, str::len)))
            .field("device", &self.device)
            .field("request_timeout", &self.request_timeout)
            .field("login_timeout", &self.login_timeout)
            .field("heartbeat", &self.heartbeat)
            .finish()
    }
}

impl<'c> Config<'c> {
    /// Defaults: device type `Browser`, device name `naslink`, no `did`,
    /// `stay` on, 30 s request and login timeouts, default heartbeat.
    pub fn new(user: &'c str, password: &'c str) -> Self {
        Config {
            user,
            password: Some(password),
            device: Device {
                device_type: "Browser",
                device_name: "naslink",
                did: None,
                stay: true,
            },
            request_timeout: Duration::from_secs(30),
            login_timeout: Duration::from_secs(30),
            heartbeat: HeartbeatConfig::default(),
        }
    }
}

impl<'c> Config<'c> {
    /// Defaults as [`Config::new`] for the token's user, with the token's
    /// `did` and **no password**: the session logs in with
    /// `user.tokenLogin` only (see [`Session::from_device_token`]).
    pub fn from_device_token(token: &'c DeviceToken) -> Self {
        let mut config = Config::new(token.user(), "");
        config.password = None;
        config.device.did = token.did();
        config
    }
}

/// Where the session is (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// No connection.
    Disconnected,
    /// Connected; fetching the server's RSA key and `si`.
    KeyExchange,
    /// A login step is under way.
    LoggingIn(LoginMethod),
    /// The server asked for a two-factor code.
    AwaitingTwoFactorCode,
    /// Logged in; requests are signed.
    Ready,
    /// Login gave up on this connection; unsigned requests still work.
    LoginFailed,
}

/// Something the application should know.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event<'b> {
    /// The login succeeded.
    LoggedIn {
        /// How.
        method: LoginMethod,
        /// `uid`, if the server sent it.
        uid: Option<u64>,
        /// `admin`, if the server sent it.
        admin: Option<bool>,
    },
    /// Answer with [`Session::submit_two_factor_code`].
    TwoFactorRequired,
    /// The two-factor code was refused; submit another (after an expired
    /// access token the session restarts the password login by itself).
    TwoFactorRejected(Option<Errno>),
    /// The login gave up.
    LoginFailed(LoginFailure),
    /// A frame answering a request in flight; [`Reply::is_final`] tells
    /// whether more follow.
    Reply(Reply<'b>),
    /// A reply whose reqid is not in flight (unknown, finished or timed out).
    UnmatchedReply(Reply<'b>),
    /// A server push.
    Push(Push<'b>),
    /// A JSON object that is neither reply, push nor pong.
    Unsolicited(Object<'b>),
    /// A request got no final frame before its deadline.
    RequestTimedOut(Reqid),
    /// The connection dropped before a request was answered.
    RequestAborted(Reqid),
    /// A received message could not be read (not JSON, not an object,
    /// binary); the connection stays usable. Only through
    /// [`Connection`](crate::Connection): [`Session::handle_text`] returns
    /// the error instead.
    Malformed(ResponseError),
    /// Too many pongs missed: close the connection and reconnect.
    ConnectionDead {
        /// Pings that went unanswered.
        missed_pongs: u8,
    },
}

/// An input the session could not accept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Error {
    /// No connection (call [`Session::handle_connect`] first).
    NotConnected,
    /// The table of requests in flight is full.
    Busy,
    /// The transmit buffer is too small.
    BufferTooSmall {
        /// Bytes needed.
        required: usize,
    },
    /// The request has more than [`MAX_PARAMS`](super::request::MAX_PARAMS) parameters.
    TooManyParams,
    /// The caller's pre-serialized parameters are not a JSON object.
    ParamsNotAnObject,
    /// A received message is not a JSON object.
    Malformed(ResponseError),
    /// No two-factor code is being asked for.
    NotAwaitingTwoFactorCode,
    /// The code is longer than [`TWO_FACTOR_CODE_CAPACITY`].
    TwoFactorCodeTooLong,
}

impl From<RequestError> for Error {
    fn from(e: RequestError) -> Self {
        match e {
            RequestError::TooManyParams => Error::TooManyParams,
            RequestError::NotAnObject => Error::ParamsNotAnObject,
            RequestError::BufferTooSmall { required } => Error::BufferTooSmall { required },
        }
    }
}

impl From<InsufficientSize> for Error {
    fn from(InsufficientSize { required }: InsufficientSize) -> Self {
        Error::BufferTooSmall { required }
    }
}

impl From<Busy> for Error {
    fn from(_: Busy) -> Self {
        Error::Busy
    }
}

/// What a received message left for the application, kept between
/// [`connection::Session::handle_message`] and the `poll_event` that reads
/// the message again to build the borrowed event.
#[derive(Debug, Clone, Copy)]
enum Staged {
    /// A reply, push or other object; `known`: the reply's reqid is in flight.
    Borrowed { known: bool },
    /// A login outcome, which borrows nothing.
    Owned(Event<'static>),
    /// The message could not be read.
    Malformed(ResponseError),
}

/// The event `staged` stands for, about `message`.
fn event_of(staged: Staged, message: Message<'_>) -> Event<'_> {
    match (staged, message) {
        (Staged::Owned(e), _) => e,
        (Staged::Malformed(e), _) => Event::Malformed(e),
        (Staged::Borrowed { .. }, Message::Push(p)) => Event::Push(p),
        (Staged::Borrowed { known: true }, Message::Reply(r)) => Event::Reply(r),
        (Staged::Borrowed { known: false }, Message::Reply(r)) => Event::UnmatchedReply(r),
        (Staged::Borrowed { .. }, Message::Other(o)) => Event::Unsolicited(o),
        // A pong stages nothing.
        (Staged::Borrowed { .. }, Message::Pong) => Event::Malformed(ResponseError::NotAnObject),
    }
}

/// `staged` built again from the message it was staged for (which `parse`
/// accepted then, so it is read without checking it again).
fn rebuild(staged: Staged, payload: &[u8]) -> Event<'_> {
    match staged {
        Staged::Owned(e) => e,
        Staged::Malformed(e) => Event::Malformed(e),
        Staged::Borrowed { .. } => match Message::parse_trusted(payload) {
            Ok(message) => event_of(staged, message),
            Err(e) => Event::Malformed(e),
        },
    }
}

#[derive(Debug, Clone, Copy)]
enum Notice {
    Dead(u8),
    LoginFailed(LoginFailure),
}

/// One fnOS session over successive connections, with up to `N` requests
/// in flight.
pub struct Session<'c, const N: usize = DEFAULT_PENDING> {
    config: Config<'c>,
    state: State,
    /// The login step's reqid once sent; `None` while it waits to be sent.
    step: Option<(Reqid, Instant)>,
    reqids: ReqidGenerator,
    pending: PendingTable<N>,
    heartbeat: Heartbeat,
    wall_clock: (Instant, u64),
    creds: Credentials,
    signer: Option<Signer>,
    si: heapless::String<SI_CAPACITY>,
    server_key: Option<RsaPublicKey>,
    login_key: Option<LoginKey>,
    access_token: heapless::String<ACCESS_TOKEN_CAPACITY>,
    code: heapless::String<TWO_FACTOR_CODE_CAPACITY>,
    trusted_device: bool,
    uid: Option<u64>,
    admin: Option<bool>,
    /// A `kicked` push ended the login; cleared by the next login.
    kicked: bool,
    notices: heapless::Deque<Notice, 4>,
    /// The event about the message the last `handle_message` took, not yet
    /// handed out.
    staged: Option<Staged>,
    last_timeout: Instant,
}

impl<const N: usize> core::fmt::Debug for Session<'_, N> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Session")
            .field("state", &self.state)
            .field("back_id", self.reqids.back_id())
            .field("pending", &self.pending.len())
            .finish_non_exhaustive()
    }
}

impl<const N: usize> Drop for Session<'_, N> {
    fn drop(&mut self) {
        // Credentials, signer and login key wipe themselves; these two are
        // short-lived login material kept inline.
        wipe(&mut self.access_token);
        wipe(&mut self.code);
    }
}

impl<'c, const N: usize> Session<'c, N> {
    /// A disconnected session with no stored credentials.
    pub fn new(config: Config<'c>) -> Self {
        Session {
            config,
            state: State::Disconnected,
            step: None,
            reqids: ReqidGenerator::new(),
            pending: PendingTable::new(),
            heartbeat: Heartbeat::new(config.heartbeat),
            wall_clock: (Instant::ZERO, 0),
            creds: Credentials::default(),
            signer: None,
            si: heapless::String::new(),
            server_key: None,
            login_key: None,
            access_token: heapless::String::new(),
            code: heapless::String::new(),
            trusted_device: false,
            uid: None,
            admin: None,
            kicked: false,
            notices: heapless::Deque::new(),
            staged: None,
            last_timeout: Instant::ZERO,
        }
    }

    /// A disconnected session that logs in with a device token: its long
    /// token and secret are stored and `config`'s password is dropped, so
    /// the session never falls back to one. A refused token ends the login
    /// with [`LoginFailure::DeviceTokenRefused`].
    pub fn from_device_token(mut config: Config<'c>, token: &DeviceToken) -> Self {
        config.password = None;
        let mut session = Session::new(config);
        session.set_credentials(token.credentials());
        session
    }

    /// Tell the session that `now` is `unix_secs` seconds after the UNIX
    /// epoch; reqids carry wall-clock seconds. Without this call, `now`
    /// itself is taken as UNIX time.
    pub fn set_unix_time(&mut self, now: Instant, unix_secs: u64) {
        self.wall_clock = (now, unix_secs);
    }

    fn unix_secs(&self, now: Instant) -> u64 {
        let (at, secs) = self.wall_clock;
        secs + (now - at).total_millis() / 1000
    }

    /// The current state.
    pub fn state(&self) -> State {
        self.state
    }

    /// The stored tokens and secret (to persist them across restarts).
    pub fn credentials(&self) -> &Credentials {
        &self.creds
    }

    /// Restore persisted tokens and secret; the next connection tries them
    /// before the password.
    pub fn set_credentials(&mut self, creds: Credentials) {
        self.signer = creds.secret.as_ref().map(Signer::new);
        self.creds = creds;
    }

    /// Forget tokens and secret (after `user.logout`).
    pub fn forget_credentials(&mut self) {
        self.set_credentials(Credentials::default());
    }

    /// `uid` from the last login.
    pub fn uid(&self) -> Option<u64> {
        self.uid
    }

    /// `admin` from the last login (or a later `privilegeChanged` push).
    pub fn is_admin(&self) -> Option<bool> {
        self.admin
    }

    /// Whether a `kicked` push ended the login: another login took this
    /// session over, so the tokens were forgotten and the session stopped.
    /// Drivers do not reconnect while this holds (a reconnect would only
    /// log in with the password again and kick the other side back); it
    /// clears with the next successful login, which only the application
    /// should ask for.
    pub fn kicked(&self) -> bool {
        self.kicked
    }

    /// This connection's backId (zeros before login).
    pub fn back_id(&self) -> &BackId {
        self.reqids.back_id()
    }

    /// This connection's `si` (empty before the key exchange).
    pub fn si(&self) -> &str {
        &self.si
    }

    /// `base64(HMAC-SHA256(S, message))` with the stored secret, for the
    /// HTTP side of the API (`Trim-Sign` over `Trim-Path` on uploads).
    pub fn signature(&self, message: &[u8]) -> Option<[u8; SIGNATURE_LEN]> {
        self.signer.as_ref().map(|s| s.signature(message))
    }

    /// `true` if another request fits in the table.
    pub fn has_room(&self) -> bool {
        self.pending.has_room()
    }

    /// Whether a request can be sent now: connected, with room in the
    /// table of requests in flight.
    pub fn can_send(&self) -> bool {
        self.state != State::Disconnected && self.pending.has_room()
    }

    /// Stop waiting for `reqid`: its slot is freed at once and any frame
    /// that still arrives for it is reported as
    /// [`Event::UnmatchedReply`]. This is what an adapter calls when the
    /// application drops a request it no longer wants, so an abandoned
    /// request never holds a slot until its deadline. Returns whether the
    /// request was in flight.
    pub fn cancel(&mut self, reqid: &Reqid) -> bool {
        self.pending.remove(reqid).is_some()
    }

    /// A connection is open (the WebSocket handshake completed).
    pub fn handle_connect(&mut self, now: Instant) {
        if self.state != State::Disconnected {
            self.handle_disconnect(now);
        }
        self.reqids.reset();
        self.heartbeat.start(now);
        self.last_timeout = now;
        self.state = State::KeyExchange;
        self.step = None;
    }

    /// The connection is gone. Requests in flight are reported as aborted
    /// by [`poll_event`](Self::poll_event); tokens and secret are kept.
    pub fn handle_disconnect(&mut self, now: Instant) {
        self.staged = None;
        self.pending.abort_all();
        self.heartbeat.stop();
        self.reqids.reset();
        self.state = State::Disconnected;
        self.step = None;
        self.server_key = None;
        self.login_key = None;
        self.si.clear();
        wipe(&mut self.access_token);
        wipe(&mut self.code);
        self.last_timeout = now;
    }

    /// Send an application request with the configured timeout. The
    /// message (signed when `Ready`) is written to `out`; returns its reqid
    /// and length.
    pub fn send(
        &mut self,
        now: Instant,
        request: &Request<'_>,
        out: &mut [u8],
    ) -> Result<(Reqid, usize), Error> {
        self.send_with_timeout(now, request, self.config.request_timeout, out)
    }

    /// [`send`](Self::send) with an explicit timeout.
    pub fn send_with_timeout(
        &mut self,
        now: Instant,
        request: &Request<'_>,
        timeout: Duration,
        out: &mut [u8],
    ) -> Result<(Reqid, usize), Error> {
        if self.state == State::Disconnected {
            return Err(Error::NotConnected);
        }
        if !self.pending.has_room() {
            return Err(Error::Busy);
        }
        let reqid = self.reqids.next(self.unix_secs(now));
        let signer = match self.state {
            State::Ready if !is_never_signed(request.command()) => self.signer.as_ref(),
            _ => None,
        };
        let n = write_request(request, &reqid, signer, out)?;
        self.pending.insert(reqid, now + timeout)?;
        Ok((reqid, n))
    }

    /// Answer a two-factor challenge; the verification is sent by the next
    /// [`poll_transmit`](Self::poll_transmit).
    pub fn submit_two_factor_code(
        &mut self,
        code: &str,
        trusted_device: bool,
    ) -> Result<(), Error> {
        if self.state != State::AwaitingTwoFactorCode {
            return Err(Error::NotAwaitingTwoFactorCode);
        }
        self.code = heapless::String::try_from(code).map_err(|_| Error::TwoFactorCodeTooLong)?;
        self.trusted_device = trusted_device;
        self.begin(LoginMethod::TwoFactor);
        Ok(())
    }

    /// Write the next message the session itself needs to send (heartbeat
    /// ping or login step) into `out`. `rng` supplies login keys and RSA
    /// padding. Call until it returns `None`.
    pub fn poll_transmit(
        &mut self,
        now: Instant,
        rng: &mut impl Entropy,
        out: &mut [u8],
    ) -> Result<Option<usize>, Error> {
        if self.state == State::Disconnected {
            return Ok(None);
        }
        if self.heartbeat.ping_due() {
            let n = Request::new("ping").write(None, out, 0)?;
            self.heartbeat.on_ping_sent();
            return Ok(Some(n));
        }
        if self.step.is_some() {
            return Ok(None);
        }
        let method = match self.state {
            State::KeyExchange => None,
            State::LoggingIn(method) => Some(method),
            _ => return Ok(None),
        };
        let reqid = self.reqids.next(self.unix_secs(now));
        let written = match method {
            None => write_request(&Request::new("util.crypto.getRSAPub"), &reqid, None, out),
            Some(LoginMethod::AuthToken) => self.write_auth_token(&reqid, out),
            Some(LoginMethod::TokenLogin) => self.write_token_login(&reqid, out),
            Some(m @ (LoginMethod::Password | LoginMethod::TwoFactor)) => {
                match self.write_encrypted(m, &reqid, rng, out) {
                    Ok(n) => Ok(n),
                    Err(Ok(e)) => Err(e),
                    Err(Err(failure)) => {
                        self.fail_later(failure);
                        return Ok(None);
                    }
                }
            }
        };
        let n = written?;
        self.step = Some((reqid, now + self.config.login_timeout));
        Ok(Some(n))
    }

    fn write_auth_token(&self, reqid: &Reqid, out: &mut [u8]) -> Result<usize, Error> {
        let request = Request::new("user.authToken")
            .param("token", Param::Str(&self.creds.token))
            .param("si", Param::Str(&self.si))
            .param("main", Param::Bool(true));
        write_request(&request, reqid, self.signer.as_ref(), out)
    }

    fn write_token_login(&self, reqid: &Reqid, out: &mut [u8]) -> Result<usize, Error> {
        let device = &self.config.device;
        let mut request = Request::new("user.tokenLogin")
            .param("token", Param::Str(&self.creds.long_token))
            .param("deviceType", Param::Str(device.device_type))
            .param("deviceName", Param::Str(device.device_name));
        if let Some(did) = device.did {
            request = request.param("did", Param::Str(did));
        }
        let request = request.param("si", Param::Str(&self.si));
        write_request(&request, reqid, self.signer.as_ref(), out)
    }

    /// Build a password or two-factor envelope. `Err(Ok(_))` is a retryable
    /// transmit error, `Err(Err(_))` ends the login.
    fn write_encrypted(
        &mut self,
        method: LoginMethod,
        reqid: &Reqid,
        rng: &mut impl Entropy,
        out: &mut [u8],
    ) -> Result<usize, Result<Error, LoginFailure>> {
        let Some(server_key) = self.server_key.as_ref() else {
            return Err(Err(LoginFailure::MissingField("pub")));
        };
        let mut plain = [0u8; LOGIN_PLAINTEXT_CAPACITY];
        let room = LOGIN_PLAINTEXT_CAPACITY - 16;
        let device = &self.config.device;
        let written = match method {
            LoginMethod::TwoFactor => write_two_factor_verify(
                reqid,
                &self.code,
                self.trusted_device,
                &self.access_token,
                device,
                &self.si,
                plain.get_mut(..room).unwrap_or_default(),
            ),
            _ => {
                let Some(password) = self.config.password else {
                    return Err(Err(LoginFailure::NoCredentials));
                };
                write_password_login(
                    reqid,
                    self.config.user,
                    password,
                    device,
                    &self.si,
                    plain.get_mut(..room).unwrap_or_default(),
                )
            }
        };
        let Ok(len) = written else {
            plain.zeroize();
            return Err(Err(LoginFailure::FieldTooLong("login message")));
        };
        let key = LoginKey::generate(rng);
        let result = write_envelope(&key, server_key, &mut plain, len, rng, out);
        plain.zeroize();
        match result {
            Ok(n) => {
                self.login_key = Some(key);
                Ok(n)
            }
            Err(EnvelopeError::BufferTooSmall { required }) => {
                Err(Ok(Error::BufferTooSmall { required }))
            }
            Err(EnvelopeError::Rsa(e)) => Err(Err(LoginFailure::InvalidServerKey(e))),
            Err(e) => Err(Err(LoginFailure::InvalidSecret(e))),
        }
    }

    /// One received text message. Events that borrow `payload` come back
    /// directly; drain [`poll_event`](Self::poll_event) afterwards as well.
    pub fn handle_text<'b>(
        &mut self,
        _now: Instant,
        payload: &'b [u8],
    ) -> Result<Option<Event<'b>>, Error> {
        let message = Message::parse(payload).map_err(Error::Malformed)?;
        Ok(self
            .absorb(&message)
            .map(|staged| event_of(staged, message)))
    }

    /// Update the state for a received message; what the application is
    /// to be told about it.
    fn absorb(&mut self, message: &Message<'_>) -> Option<Staged> {
        match message {
            Message::Pong => {
                self.heartbeat.on_pong();
                None
            }
            Message::Push(push) => {
                self.on_push(push);
                Some(Staged::Borrowed { known: true })
            }
            Message::Reply(reply) => self.on_reply(reply),
            Message::Other(_) => Some(Staged::Borrowed { known: true }),
        }
    }

    /// What a push does to the session (the push itself is still handed
    /// to the application):
    ///
    /// - `tokenExpired`: the short token is gone and the server signed this
    ///   connection out, so a logged-in session logs in afresh at once
    ///   (`user.tokenLogin` with the long token, else the password);
    /// - `kicked`: another login took over and the server ended this one;
    ///   the tokens are forgotten, the session stops in `LoginFailed` and
    ///   [`kicked`](Self::kicked) tells drivers not to reconnect;
    /// - `privilegeChanged`: [`is_admin`](Self::is_admin) follows
    ///   `privilege` (`"1"` admin, `"0"` not).
    fn on_push(&mut self, push: &Push<'_>) {
        match push {
            Push::TokenExpired => {
                wipe(&mut self.creds.token);
                if self.state == State::Ready
                    && let Some(Event::LoginFailed(f)) = self.next_method(None)
                {
                    let _ = self.notices.push_back(Notice::LoginFailed(f));
                }
            }
            Push::Kicked => {
                self.kicked = true;
                wipe(&mut self.creds.token);
                wipe(&mut self.creds.long_token);
                if self.state != State::Disconnected {
                    self.state = State::LoginFailed;
                    self.step = None;
                    self.login_key = None;
                }
            }
            Push::PrivilegeChanged { privilege: Some(p) } => {
                let text = p.as_str().and_then(|s| s.as_unescaped());
                match (text, p.as_u64()) {
                    (Some("1"), _) | (_, Some(1)) => self.admin = Some(true),
                    (Some("0"), _) | (_, Some(0)) => self.admin = Some(false),
                    _ => {}
                }
            }
            _ => {}
        }
    }

    fn on_reply(&mut self, reply: &Reply<'_>) -> Option<Staged> {
        let Some(reqid) = reply.reqid() else {
            return Some(Staged::Borrowed { known: false });
        };
        if self.step.is_some_and(|(step, _)| step == reqid) {
            // Login steps answer in one frame; stray partial frames are ignored.
            return if reply.is_final() {
                self.step = None;
                self.on_login_reply(reply).map(Staged::Owned)
            } else {
                None
            };
        }
        let known = if reply.is_final() {
            self.pending.remove(&reqid).is_some()
        } else {
            self.pending.note_partial(&reqid).is_some()
        };
        Some(Staged::Borrowed { known })
    }

    fn on_login_reply(&mut self, reply: &Reply<'_>) -> Option<Event<'static>> {
        match self.state {
            State::KeyExchange if reply.status() == Status::Success => match read_server_key(reply)
            {
                Ok(server) => {
                    self.server_key = Some(server.key);
                    self.si = server.si;
                    self.next_method(None)
                }
                Err(f) => self.fail(f),
            },
            State::KeyExchange => self.fail(LoginFailure::KeyExchangeRefused(reply.errno())),
            State::LoggingIn(method) if reply.status() == Status::Success => {
                self.on_granted(method, reply)
            }
            State::LoggingIn(method) => self.on_refused(method, reply.errno()),
            _ => None,
        }
    }

    fn on_granted(&mut self, method: LoginMethod, reply: &Reply<'_>) -> Option<Event<'static>> {
        let key = match method {
            LoginMethod::Password | LoginMethod::TwoFactor => self.login_key.take(),
            _ => None,
        };
        match read_granted(reply, key.as_ref(), &mut self.creds) {
            Ok(Granted::Session {
                uid,
                admin,
                back_id,
            }) => {
                if self.creds.secret.is_none() {
                    return self.fail(LoginFailure::MissingField("secret"));
                }
                self.signer = self.creds.secret.as_ref().map(Signer::new);
                if let Some(back_id) = back_id {
                    self.reqids.set_back_id(back_id);
                }
                self.uid = uid.or(self.uid);
                self.admin = admin.or(self.admin);
                self.kicked = false;
                self.state = State::Ready;
                wipe(&mut self.code);
                wipe(&mut self.access_token);
                Some(Event::LoggedIn { method, uid, admin })
            }
            Ok(Granted::TwoFactor { access_token }) => {
                self.access_token = access_token;
                self.state = State::AwaitingTwoFactorCode;
                Some(Event::TwoFactorRequired)
            }
            Err(f) => self.fail(f),
        }
    }

    fn on_refused(&mut self, method: LoginMethod, errno: Option<Errno>) -> Option<Event<'static>> {
        match method {
            LoginMethod::AuthToken => {
                wipe(&mut self.creds.token);
                self.next_method(Some((method, errno)))
            }
            LoginMethod::TokenLogin => {
                wipe(&mut self.creds.long_token);
                self.next_method(Some((method, errno)))
            }
            LoginMethod::Password => self.fail(LoginFailure::Rejected { method, errno }),
            LoginMethod::TwoFactor => {
                if errno == Some(Errno::TwoFactorAccessTokenExpired)
                    && self.config.password.is_some()
                {
                    self.begin(LoginMethod::Password);
                } else {
                    self.state = State::AwaitingTwoFactorCode;
                }
                Some(Event::TwoFactorRejected(errno))
            }
        }
    }

    /// Start the best login method still possible; `refused` is the method
    /// that just failed, reported if nothing is left.
    fn next_method(
        &mut self,
        refused: Option<(LoginMethod, Option<Errno>)>,
    ) -> Option<Event<'static>> {
        let next = if self.creds.can_auth_token() {
            Some(LoginMethod::AuthToken)
        } else if self.creds.can_token_login() {
            Some(LoginMethod::TokenLogin)
        } else if self.config.password.is_some() {
            Some(LoginMethod::Password)
        } else {
            None
        };
        match (next, refused) {
            (Some(method), _) => {
                self.begin(method);
                None
            }
            // Without a password a refused token is the end: say so by
            // name rather than as an ordinary refusal.
            (None, Some((LoginMethod::AuthToken | LoginMethod::TokenLogin, errno)))
                if self.config.password.is_none() =>
            {
                self.fail(LoginFailure::DeviceTokenRefused { errno })
            }
            (None, Some((method, errno))) => self.fail(LoginFailure::Rejected { method, errno }),
            (None, None) => self.fail(LoginFailure::NoCredentials),
        }
    }

    fn begin(&mut self, method: LoginMethod) {
        self.state = State::LoggingIn(method);
        self.step = None;
    }

    fn fail(&mut self, failure: LoginFailure) -> Option<Event<'static>> {
        self.state = State::LoginFailed;
        self.step = None;
        self.login_key = None;
        Some(Event::LoginFailed(failure))
    }

    fn fail_later(&mut self, failure: LoginFailure) {
        if let Some(Event::LoginFailed(f)) = self.fail(failure) {
            // A full queue means earlier notices are still undrained; the
            // state already says LoginFailed either way.
            let _ = self.notices.push_back(Notice::LoginFailed(f));
        }
    }

    /// The next moment [`handle_timeout`](Self::handle_timeout) is needed.
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.state == State::Disconnected {
            return None;
        }
        [
            self.heartbeat.poll_timeout(),
            self.step.map(|(_, deadline)| deadline),
            self.pending.next_deadline(),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// Advance timers: heartbeat, login step deadline, request deadlines.
    /// Expired requests are reported by [`poll_event`](Self::poll_event).
    pub fn handle_timeout(&mut self, now: Instant) {
        self.last_timeout = self.last_timeout.max(now);
        if let HeartbeatAction::Dead { missed } = self.heartbeat.handle_timeout(now) {
            let _ = self.notices.push_back(Notice::Dead(missed));
        }
        if self.step.is_some_and(|(_, deadline)| deadline <= now) {
            self.fail_later(LoginFailure::TimedOut);
        }
    }

    /// The next event not tied to a received message: connection dead,
    /// login failures found while sending or by a timer, aborted and
    /// timed-out requests. Call until `None`.
    pub fn poll_event(&mut self) -> Option<Event<'static>> {
        if let Some(notice) = self.notices.pop_front() {
            return Some(match notice {
                Notice::Dead(missed_pongs) => Event::ConnectionDead { missed_pongs },
                Notice::LoginFailed(f) => Event::LoginFailed(f),
            });
        }
        if let Some(p) = self.pending.take_aborted() {
            return Some(Event::RequestAborted(p.key));
        }
        self.pending
            .take_expired(self.last_timeout)
            .map(|p| Event::RequestTimedOut(p.key))
    }
}

/// Write `request` with `reqid`, prefixed with its signature when a signer
/// is given.
fn write_request(
    request: &Request<'_>,
    reqid: &Reqid,
    signer: Option<&Signer>,
    out: &mut [u8],
) -> Result<usize, Error> {
    let start = if signer.is_some() { SIGNATURE_LEN } else { 0 };
    let end = request.write(Some(reqid), out, start)?;
    Ok(match signer {
        Some(s) => s.sign_in_place(out, end),
        None => end,
    })
}

impl<const N: usize> connection::Session for Session<'_, N> {
    type Event<'a>
        = Event<'a>
    where
        Self: 'a;

    fn handle_connect(&mut self, now: Instant) {
        Session::handle_connect(self, now)
    }

    fn handle_disconnect(&mut self, now: Instant) {
        Session::handle_disconnect(self, now)
    }

    fn poll_timeout(&self) -> Option<Instant> {
        Session::poll_timeout(self)
    }

    fn handle_timeout(&mut self, now: Instant) {
        Session::handle_timeout(self, now)
    }

    fn can_send(&self) -> bool {
        Session::can_send(self)
    }

    fn poll_transmit<R: Entropy>(
        &mut self,
        now: Instant,
        rng: &mut R,
        out: &mut [u8],
    ) -> Result<Option<Transmit>, InsufficientSize> {
        match Session::poll_transmit(self, now, rng, out) {
            Ok(n) => Ok(n.map(|len| Transmit {
                kind: MessageKind::Text,
                len,
            })),
            Err(Error::BufferTooSmall { required }) => Err(InsufficientSize { required }),
            // The session's own messages have no caller parameters, so no
            // other error can occur; were one to, nothing is sent.
            Err(_) => Ok(None),
        }
    }

    fn handle_message(&mut self, _now: Instant, message: WsMessage<'_>) -> bool {
        let staged = match message {
            WsMessage {
                kind: MessageKind::Binary,
                ..
            } => Some(Staged::Malformed(ResponseError::Binary)),
            WsMessage {
                first: true,
                last: true,
                data,
                ..
            } => match Message::parse(data) {
                Ok(message) => self.absorb(&message),
                Err(e) => Some(Staged::Malformed(e)),
            },
            _ => Some(Staged::Malformed(ResponseError::Fragment)),
        };
        self.staged = staged;
        staged.is_some()
    }

    fn has_event(&self) -> bool {
        !self.notices.is_empty() || self.pending.has_finished(self.last_timeout)
    }

    fn poll_event<'a>(&'a mut self, message: Option<WsMessage<'a>>) -> Option<Event<'a>> {
        if let (Some(staged), Some(message)) = (self.staged, message) {
            self.staged = None;
            return Some(rebuild(staged, message.data));
        }
        self.staged = None;
        Session::poll_event(self)
    }
}

impl From<crate::ws::SendError> for Error {
    fn from(e: crate::ws::SendError) -> Self {
        use crate::ws::SendError;
        match e {
            SendError::InsufficientSize(InsufficientSize { required }) => {
                Error::BufferTooSmall { required }
            }
            SendError::MessageInProgress => Error::Busy,
            _ => Error::NotConnected,
        }
    }
}

/// An fnOS request with its own deadline, for [`Connection::send`](crate::Connection::send).
#[derive(Debug, Clone, Copy)]
pub struct Timed<'r, 'p> {
    /// The request.
    pub request: &'r Request<'p>,
    /// How long to wait for its final frame.
    pub timeout: Duration,
}

impl<const N: usize> Session<'_, N> {
    /// [`connection::Command::write`] for both command types.
    fn write_command(
        &mut self,
        now: Instant,
        request: &Request<'_>,
        timeout: Option<Duration>,
        out: &mut [u8],
    ) -> Result<(Transmit, Reqid), Error> {
        let timeout = timeout.unwrap_or(self.config.request_timeout);
        let (reqid, len) = self.send_with_timeout(now, request, timeout, out)?;
        Ok((text(len), reqid))
    }
}

/// `Command` for a request and a timed request, sent through a connection
/// that owns its session or borrows it.
macro_rules! fnos_command {
    ($session:ty, $command:ty, |$me:ident| $parts:expr) => {
        impl<'s, 'c, const N: usize> connection::Command<$session> for $command {
            type Handle = Reqid;
            type Error = Error;

            fn write<R: Entropy>(
                &self,
                session: &mut $session,
                now: Instant,
                _rng: &mut R,
                out: &mut [u8],
            ) -> Result<(Transmit, Reqid), Error> {
                let $me = self;
                let (request, timeout) = $parts;
                session.write_command(now, request, timeout, out)
            }
        }
    };
}

fnos_command!(Session<'c, N>, Request<'_>, |r| (r, None));
fnos_command!(&'s mut Session<'c, N>, Request<'_>, |r| (r, None));
fnos_command!(Session<'c, N>, Timed<'_, '_>, |t| (
    t.request,
    Some(t.timeout)
));
fnos_command!(&'s mut Session<'c, N>, Timed<'_, '_>, |t| (
    t.request,
    Some(t.timeout)
));

fn text(len: usize) -> Transmit {
    Transmit {
        kind: MessageKind::Text,
        len,
    }
}
