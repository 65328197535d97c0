//! [`FnosClient`]: an fnOS session in a background task.
//!
//! The task owns the socket and the core's [`Session`]; handles talk to it
//! through a channel, so a [`FnosClient`] is cheap to clone and usable from
//! many tasks at once (replies are matched by reqid in the core).
//!
//! # The task's life
//!
//! ```text
//! Connecting --open--> LoggingIn --LoggedIn--> Ready --link lost / dead heartbeat--+
//!     ^   |                 |                                                       |
//!     |   +--fail: backoff--+-- login refused: stop (handles get Closed)           |
//!     +-------------------- backoff with jitter <-----------------------------------+
//! ```
//!
//! - Requests made before the login finishes wait in a queue (each still
//!   bounded by its timeout) and go out, signed, once the session is ready.
//! - When the connection dies, every request in flight fails with
//!   [`FnosError::ConnectionLost`]; none is sent again, except those the
//!   caller sent with [`FnosClient::request_idempotent`], which go out
//!   again after the reconnect within their deadline. The reconnect logs
//!   in again with the stored token and secret, then the long token, then
//!   the password (the core picks the order).
//! - A two-factor challenge asks [`FnosOptions::two_factor`] for a code,
//!   again after a refused one (at most three codes per login); the
//!   connection is served meanwhile.
//! - Files move over fnOS's HTTP endpoints: [`FnosClient::upload`] and
//!   [`FnosClient::download`].
//! - Dropping a request future is safe: the task notices the abandoned
//!   answer slot and cancels the reqid in the core, so late replies are
//!   ignored and the slot is freed.
//! - The first connection is made by [`FnosClient::connect`]: at most
//!   [`FnosOptions::first_attempts`] connections within
//!   [`FnosOptions::connect_timeout`] (time spent waiting for a
//!   two-factor code not counted), then it returns the failure with its
//!   cause ([`FnosError::ConnectFailed`]); a refused login or a definitive
//!   connection error (bad URL, refused certificate, redirect) fails at
//!   once. The backoff starts over only after a successful login; later
//!   failures are retried without limit.
//! - A multi-frame answer keeps its frames as received text and is parsed
//!   only when complete; one that outgrows
//!   [`FnosOptions::max_answer_bytes`] or
//!   [`FnosOptions::max_answer_frames`] fails with
//!   [`FnosError::AnswerTooLarge`] and its later frames are ignored.
//!
//! Passwords, tokens, secrets and signatures never reach `tracing`.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration as StdDuration;

use futures_util::Stream;
use naslink_core::fnos::session::TRANSMIT_CAPACITY;
use naslink_core::fnos::{self, Errno, LoginFailure, LoginMethod, Request, Session, Status};
use naslink_core::time::Duration;
use rand::Rng;
use tokio::sync::{broadcast, mpsc, oneshot};
use zeroize::{Zeroize, Zeroizing};

mod transfer;

pub use transfer::Overwrite;

use crate::two_factor::{CodeWait, TwoFactor};

use crate::link::{
    ConnectError, Incoming, Link, LinkOptions, OsEntropy, deadline, now, sleep_until, unix_secs,
};

/// Requests in flight on one connection (the core's pending table size).
pub const MAX_IN_FLIGHT: usize = 64;

/// Largest request message written (parameters included).
const REQUEST_CAPACITY: usize = 64 * 1024;

/// Delays between reconnect attempts: doubling from `initial` up to `max`,
/// each multiplied by a random factor in 0.5..1.5 so many clients do not
/// reconnect in step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// The first delay.
    pub initial: StdDuration,
    /// The cap.
    pub max: StdDuration,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff {
            initial: StdDuration::from_millis(250),
            max: StdDuration::from_secs(30),
        }
    }
}

impl Backoff {
    /// The delay before attempt `n` (0-based), with jitter.
    pub fn delay(&self, attempt: u32) -> StdDuration {
        let base = self
            .initial
            .saturating_mul(1u32 << attempt.min(16))
            .min(self.max);
        base.mul_f64(rand::thread_rng().gen_range(0.5..1.5))
    }
}

/// What [`FnosClient::connect`] needs.
#[derive(Clone)]
pub struct FnosOptions {
    /// `ws://HOST:5666/websocket?type=main` or the `wss://` equivalent.
    pub url: String,
    /// User name.
    pub user: String,
    /// Password (wiped from memory when dropped).
    pub password: Zeroizing<String>,
    /// Transport: TLS trust, redirects, access code.
    pub link: LinkOptions,
    /// Default deadline of each request.
    pub request_timeout: StdDuration,
    /// Reconnect delays.
    pub backoff: Backoff,
    /// Where two-factor codes come from; without one, an account that
    /// needs a code fails its login with [`FnosError::TwoFactorRequired`].
    pub two_factor: Option<TwoFactor>,
    /// How long [`FnosClient::connect`] may take for its first connection
    /// and login, all attempts together (waiting for a two-factor code
    /// excluded). Default 30 s.
    pub connect_timeout: StdDuration,
    /// Connection attempts before the first successful login. Default 3.
    pub first_attempts: u32,
    /// Largest answer to one request, all its frames' text together.
    /// Default 16 MiB.
    pub max_answer_bytes: usize,
    /// Most frames in the answer to one request. Default 4096.
    pub max_answer_frames: usize,
}

impl std::fmt::Debug for FnosOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FnosOptions")
            .field("url", &self.url)
            .field("user", &self.user)
            .field("password", &"<hidden>")
            .field("link", &self.link)
            .field("request_timeout", &self.request_timeout)
            .field("connect_timeout", &self.connect_timeout)
            .field("first_attempts", &self.first_attempts)
            .field("max_answer_bytes", &self.max_answer_bytes)
            .field("max_answer_frames", &self.max_answer_frames)
            .finish_non_exhaustive()
    }
}

impl FnosOptions {
    /// Options with defaults: the system certificate store, 30 s requests,
    /// default backoff, 30 s and 3 attempts for the first connection,
    /// answers up to 16 MiB and 4096 frames.
    pub fn new(url: &str, user: &str, password: &str) -> Self {
        FnosOptions {
            url: url.to_owned(),
            user: user.to_owned(),
            password: Zeroizing::new(password.to_owned()),
            link: LinkOptions {
                receive_buffer: 1024 * 1024,
                ..LinkOptions::default()
            },
            request_timeout: StdDuration::from_secs(30),
            backoff: Backoff::default(),
            two_factor: None,
            connect_timeout: StdDuration::from_secs(30),
            first_attempts: 3,
            max_answer_bytes: 16 * 1024 * 1024,
            max_answer_frames: 4096,
        }
    }
}

/// Why a request or the connection failed.
#[derive(Debug)]
pub enum FnosError {
    /// The connection could not be opened, and trying again would not help
    /// (bad URL, refused certificate, redirect, access code).
    Connect(ConnectError),
    /// The first connection and login did not succeed within
    /// [`FnosOptions::connect_timeout`] or [`FnosOptions::first_attempts`].
    ConnectFailed {
        /// Connections tried.
        attempts: u32,
        /// Why the last one failed, in words.
        cause: String,
    },
    /// An answer outgrew [`FnosOptions::max_answer_bytes`] or
    /// [`FnosOptions::max_answer_frames`]; the request failed and the rest
    /// of its answer is ignored.
    AnswerTooLarge {
        /// The request's method (`file.ls`...).
        method: String,
        /// Which limit: `"max_answer_bytes"` or `"max_answer_frames"`.
        limit: &'static str,
        /// Its value.
        value: usize,
    },
    /// The server refused the login.
    LoginRefused {
        /// The server's code, if any.
        errno: Option<Errno>,
    },
    /// The login failed for another reason (timeout, malformed answer).
    Login(String),
    /// The account needs a two-factor code and no source of codes was
    /// given, or the source gave up.
    TwoFactorRequired,
    /// The server answered the request with a failure.
    Server {
        /// The code, if the server gave one.
        errno: Option<Errno>,
        /// `errmsg`/`msg`, or the code's meaning.
        message: String,
        /// The whole failing frame.
        body: serde_json::Value,
    },
    /// No final answer before the request's deadline.
    TimedOut,
    /// The connection dropped while the request was in flight; it was not
    /// resent (the server may or may not have acted on it).
    ConnectionLost,
    /// The client is shut down (every handle dropped, or the login can no
    /// longer succeed).
    Closed,
    /// The request could not be written (too large, parameters not a JSON object).
    Request(String),
    /// A file transfer failed (local file, HTTP exchange, cut connection).
    Transfer(String),
    /// `file.download` answered a URL the client will not use: another
    /// host, another port on the same scheme, or plain `http` while the
    /// WebSocket uses TLS.
    DownloadUrlRefused {
        /// The URL's `scheme://host:port` (its token left out).
        origin: String,
        /// Which rule it breaks.
        why: &'static str,
    },
}

impl std::fmt::Display for FnosError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FnosError::Connect(e) => e.fmt(f),
            FnosError::ConnectFailed { attempts: 1, cause } => f.write_str(cause),
            FnosError::ConnectFailed { attempts, cause } => {
                write!(f, "gave up after {attempts} attempts: {cause}")
            }
            FnosError::AnswerTooLarge {
                method,
                limit,
                value,
            } => write!(
                f,
                "the answer to {method} is larger than allowed ({limit} = {value}); \
                 the request failed"
            ),
            FnosError::LoginRefused { errno: Some(e) } => {
                write!(f, "login refused: {} (errno {})", e.message(), e.code())
            }
            FnosError::LoginRefused { errno: None } => f.write_str("login refused"),
            FnosError::Login(why) => write!(f, "login failed: {why}"),
            FnosError::TwoFactorRequired => {
                f.write_str("the account needs a two-factor code and none was given")
            }
            FnosError::Server { errno, message, .. } => match errno {
                Some(e) => write!(f, "the server refused: {message} (errno {})", e.code()),
                None => write!(f, "the server refused: {message}"),
            },
            FnosError::TimedOut => f.write_str("no answer before the request's deadline"),
            FnosError::ConnectionLost => f.write_str(
                "the connection dropped before the answer arrived (the request was not resent)",
            ),
            FnosError::Closed => f.write_str("the client is shut down"),
            FnosError::Request(why) => write!(f, "cannot send the request: {why}"),
            FnosError::Transfer(why) => write!(f, "transfer failed: {why}"),
            FnosError::DownloadUrlRefused { origin, why } => write!(
                f,
                "file.download answered a URL on {origin}, which was not used: {why}"
            ),
        }
    }
}

impl std::error::Error for FnosError {}

/// A request's answer: every frame with its reqid, the last one final.
#[derive(Debug, Clone, PartialEq)]
pub struct FnosReply {
    /// The frames in arrival order (at least one).
    pub frames: Vec<serde_json::Value>,
}

impl FnosReply {
    /// The final frame.
    pub fn last(&self) -> &serde_json::Value {
        self.frames.last().unwrap_or(&serde_json::Value::Null)
    }

    /// `key` from the final frame, or from its `data` object (`appcgi.*`).
    pub fn get(&self, key: &str) -> Option<&serde_json::Value> {
        let last = self.last();
        last.get(key)
            .or_else(|| last.get("data").and_then(|d| d.get(key)))
    }

    /// The elements of array `key` across all frames (multi-frame listings).
    pub fn merged(&self, key: &str) -> Vec<serde_json::Value> {
        self.frames
            .iter()
            .filter_map(|f| f.get(key).and_then(|v| v.as_array()))
            .flatten()
            .cloned()
            .collect()
    }
}

/// Lifecycle changes and server pushes.
#[derive(Debug, Clone, PartialEq)]
pub enum FnosEvent {
    /// The login succeeded (also after each reconnect).
    LoggedIn {
        /// How: after a reconnect, normally the stored token.
        method: LoginMethod,
    },
    /// A `sysNotify` push, as received.
    Push(serde_json::Value),
    /// The connection ended; requests in flight failed.
    Disconnected {
        /// Why, in words.
        reason: String,
    },
    /// The next connection attempt starts after `delay`.
    Reconnecting {
        /// Attempts since the last good connection (1-based).
        attempt: u32,
        /// The wait before it.
        delay: StdDuration,
    },
    /// A login after a reconnect failed for good; the client stops.
    LoginFailed(String),
    /// The server asked for a two-factor code; the configured source is
    /// being asked (attempt 1-based).
    TwoFactorRequired {
        /// Which code of this login is being asked for.
        attempt: u32,
    },
}

struct Command {
    command: String,
    params: String,
    timeout: StdDuration,
    reply: oneshot::Sender<Result<FnosReply, FnosError>>,
    /// The caller marked it idempotent: sent again after a reconnect.
    resend: bool,
}

/// What a handle asks of the background task.
enum Job {
    /// Send a request and answer with its reply.
    Request(Command),
    /// Sign `message` for the HTTP side of the API and hand over the token.
    Sign {
        message: String,
        reply: oneshot::Sender<Option<HttpAuth>>,
    },
}

/// The credentials of one HTTP transfer request.
pub(crate) struct HttpAuth {
    /// `Trim-Token`: the login token.
    pub token: Zeroizing<String>,
    /// `Trim-Sign`: base64(HMAC-SHA256(S, message)).
    pub sign: String,
}

/// Where the HTTP endpoints are: the WebSocket's origin and transport.
#[derive(Debug)]
pub(crate) struct HttpTarget {
    /// The WebSocket URL the client connected to.
    pub url: String,
    /// TLS trust and access code, shared with the WebSocket.
    pub link: LinkOptions,
    /// Longest wait for the server during a transfer (no byte moving).
    pub idle_timeout: StdDuration,
}

impl Drop for HttpTarget {
    fn drop(&mut self) {
        wipe_access_code(&mut self.link);
    }
}

/// Overwrite the access code's bytes before its memory is freed (the
/// public field is a plain `String`).
fn wipe_access_code(link: &mut LinkOptions) {
    if let Some(code) = link.access_code.as_mut() {
        code.zeroize();
    }
}

/// The driver's own copy of the options, whose access code is wiped when
/// the task ends (the password is a `Zeroizing` already).
struct OwnedOptions(FnosOptions);

impl Drop for OwnedOptions {
    fn drop(&mut self) {
        wipe_access_code(&mut self.0.link);
    }
}

/// A handle to an fnOS session running in the background.
#[derive(Debug, Clone)]
pub struct FnosClient {
    commands: mpsc::UnboundedSender<Job>,
    events: broadcast::Sender<FnosEvent>,
    timeout: StdDuration,
    http: Arc<HttpTarget>,
}

impl FnosClient {
    /// Connect, log in, and keep the session alive in a background task.
    ///
    /// Fails when the login is refused, when the connection cannot work
    /// however often it is tried (bad URL, refused certificate, redirect,
    /// access code: [`FnosError::Connect`]), or when
    /// [`FnosOptions::first_attempts`] connections or
    /// [`FnosOptions::connect_timeout`] are used up
    /// ([`FnosError::ConnectFailed`], naming the last cause: the login
    /// step that got no answer, the WebSocket close and its rule, the
    /// TCP or TLS error).
    pub async fn connect(options: FnosOptions) -> Result<FnosClient, FnosError> {
        let (commands, rx) = mpsc::unbounded_channel();
        let (events, _) = broadcast::channel(256);
        let (first_tx, first_rx) = oneshot::channel();
        let timeout = options.request_timeout;
        let http = Arc::new(HttpTarget {
            url: options.url.clone(),
            link: options.link.clone(),
            idle_timeout: options.request_timeout,
        });
        let span = tracing::info_span!("fnos", url = %options.url, user = %options.user);
        tokio::spawn(tracing::Instrument::instrument(
            drive(options, rx, events.clone(), first_tx),
            span,
        ));
        first_rx.await.map_err(|_| FnosError::Closed)??;
        Ok(FnosClient {
            commands,
            events,
            timeout,
            http,
        })
    }

    /// Send `command` with the parameters of the JSON object `params`
    /// (`None` for none) and wait for its final frame, at most the default
    /// request timeout.
    pub async fn request(
        &self,
        command: &str,
        params: Option<&serde_json::Value>,
    ) -> Result<FnosReply, FnosError> {
        self.request_with_timeout(command, params, self.timeout)
            .await
    }

    /// [`request`](Self::request) with its own deadline.
    pub async fn request_with_timeout(
        &self,
        command: &str,
        params: Option<&serde_json::Value>,
        timeout: StdDuration,
    ) -> Result<FnosReply, FnosError> {
        self.submit(command, params, timeout, false).await
    }

    /// [`request`](Self::request) for a command the caller knows to be
    /// idempotent (a read such as `file.ls` or `appcgi.resmon.gen`): if the
    /// connection drops before its answer, it is sent again once the
    /// client has reconnected and logged in, as often as its deadline
    /// allows, instead of failing with [`FnosError::ConnectionLost`].
    /// Never use it for commands that change something.
    pub async fn request_idempotent(
        &self,
        command: &str,
        params: Option<&serde_json::Value>,
    ) -> Result<FnosReply, FnosError> {
        self.submit(command, params, self.timeout, true).await
    }

    async fn submit(
        &self,
        command: &str,
        params: Option<&serde_json::Value>,
        timeout: StdDuration,
        resend: bool,
    ) -> Result<FnosReply, FnosError> {
        let params = match params {
            None => String::new(),
            Some(v @ serde_json::Value::Object(_)) => v.to_string(),
            Some(_) => {
                return Err(FnosError::Request(
                    "parameters must be a JSON object".into(),
                ));
            }
        };
        let (reply, answer) = oneshot::channel();
        self.commands
            .send(Job::Request(Command {
                command: command.to_owned(),
                params,
                timeout,
                reply,
                resend,
            }))
            .map_err(|_| FnosError::Closed)?;
        // The core enforces the deadline too; this one also covers time
        // spent queued before the login or while reconnecting.
        match tokio::time::timeout(timeout, answer).await {
            Ok(Ok(result)) => result,
            Ok(Err(_)) => Err(FnosError::Closed),
            Err(_) => Err(FnosError::TimedOut),
        }
    }

    /// The login token and `base64(HMAC-SHA256(S, message))`, for the HTTP
    /// endpoints; `None` before the first login.
    pub(crate) async fn http_auth(&self, message: &str) -> Result<HttpAuth, FnosError> {
        let (reply, answer) = oneshot::channel();
        self.commands
            .send(Job::Sign {
                message: message.to_owned(),
                reply,
            })
            .map_err(|_| FnosError::Closed)?;
        answer.await.map_err(|_| FnosError::Closed)?.ok_or_else(|| {
            FnosError::Login("not logged in: no token and secret to sign with".into())
        })
    }

    pub(crate) fn http_target(&self) -> &HttpTarget {
        &self.http
    }

    /// Lifecycle events and pushes from now on. A subscriber that falls
    /// more than 256 events behind skips the oldest.
    pub fn events(&self) -> impl Stream<Item = FnosEvent> + Send + 'static {
        let rx = self.events.subscribe();
        futures_util::stream::unfold(rx, |mut rx| async move {
            loop {
                match rx.recv().await {
                    Ok(event) => return Some((event, rx)),
                    Err(broadcast::error::RecvError::Lagged(_)) => continue,
                    Err(broadcast::error::RecvError::Closed) => return None,
                }
            }
        })
    }
}

/// A request waiting for its final frame.
struct InFlight {
    /// The method, for errors.
    method: String,
    /// The frames received so far, as text: parsed only once the answer
    /// is complete, so a partial answer costs its bytes and no more.
    frames: Vec<String>,
    /// Their total length.
    bytes: usize,
    reply: oneshot::Sender<Result<FnosReply, FnosError>>,
    /// What to send again after a reconnect (idempotent requests only).
    resend: Option<Resend>,
}

/// An idempotent request as it was asked for.
struct Resend {
    command: String,
    params: String,
    /// When the caller stops waiting; no resend after it.
    deadline: tokio::time::Instant,
}

/// Why a connection's loop ended.
enum Ended {
    /// Reconnect.
    Lost(String),
    /// Stop the task.
    Stop,
}

struct Driver<'c> {
    session: Session<'c, MAX_IN_FLIGHT>,
    tx: Vec<u8>,
    queued: Vec<Command>,
    in_flight: HashMap<fnos::Reqid, InFlight>,
    events: broadcast::Sender<FnosEvent>,
    first: Option<oneshot::Sender<Result<(), FnosError>>>,
    code: CodeWait,
    limits: AnswerLimits,
    /// The first login's deadline ([`FnosOptions::connect_timeout`]).
    first_deadline: tokio::time::Instant,
    connect_timeout: StdDuration,
    /// When a two-factor code was asked for and has not come yet: that
    /// wait does not count against the first login's deadline.
    code_asked_at: Option<tokio::time::Instant>,
    /// The login step under way, for errors that name it.
    step: fnos::State,
    /// The current connection reached a successful login.
    logged_in: bool,
}

/// What one answer may hold.
#[derive(Clone, Copy)]
struct AnswerLimits {
    bytes: usize,
    frames: usize,
}

async fn drive(
    options: FnosOptions,
    mut commands: mpsc::UnboundedReceiver<Job>,
    events: broadcast::Sender<FnosEvent>,
    first: oneshot::Sender<Result<(), FnosError>>,
) {
    let owned = OwnedOptions(options);
    let options = &owned.0;
    let mut config = fnos::Config::new(&options.user, &options.password);
    // The handles enforce per-request deadlines; the core's is a backstop.
    config.request_timeout = millis(options.request_timeout);
    // A login step may not outlast the first connection's whole budget.
    config.login_timeout = millis(options.connect_timeout.min(StdDuration::from_secs(30)));
    let mut driver = Driver {
        session: Session::new(config),
        tx: vec![0; REQUEST_CAPACITY.max(TRANSMIT_CAPACITY)],
        queued: Vec::new(),
        in_flight: HashMap::new(),
        events,
        first: Some(first),
        code: CodeWait::new(options.two_factor.clone()),
        limits: AnswerLimits {
            bytes: options.max_answer_bytes,
            frames: options.max_answer_frames,
        },
        first_deadline: tokio::time::Instant::now() + options.connect_timeout,
        connect_timeout: options.connect_timeout,
        code_asked_at: None,
        step: fnos::State::Disconnected,
        logged_in: false,
    };
    // Delays since the last successful login; connections before the first.
    let mut attempt: u32 = 0;
    let mut tried: u32 = 0;
    loop {
        let cause = match driver.open(options).await {
            Ok(link) => {
                tracing::info!(url = %options.url, "connected");
                driver.session.set_unix_time(now(), unix_secs());
                driver.session.handle_connect(now());
                driver.logged_in = false;
                match driver.run(link, &mut commands).await {
                    Ended::Stop => return,
                    Ended::Lost(reason) => {
                        tracing::warn!(%reason, "connection lost");
                        let _ = driver.events.send(FnosEvent::Disconnected {
                            reason: reason.clone(),
                        });
                        // Only a login proves the server works: a server
                        // that upgrades and then fails must not reset it.
                        if driver.logged_in {
                            attempt = 0;
                        }
                        reason
                    }
                }
            }
            Err(e) => {
                if driver.first.is_some() && !worth_retrying(&e) {
                    driver.fail_first(FnosError::Connect(e));
                    return;
                }
                tracing::warn!(error = %e, "connection failed");
                e.to_string()
            }
        };
        attempt = attempt.saturating_add(1);
        let delay = options.backoff.delay(attempt - 1);
        let wake = tokio::time::Instant::now() + delay;
        if driver.first.is_some() {
            tried += 1;
            if tried >= options.first_attempts.max(1) || wake >= driver.first_deadline {
                driver.fail_first(FnosError::ConnectFailed {
                    attempts: tried,
                    cause,
                });
                return;
            }
        }
        let _ = driver
            .events
            .send(FnosEvent::Reconnecting { attempt, delay });
        // Keep taking requests while waiting; they go out after the login.
        loop {
            driver.sweep_abandoned();
            tokio::select! {
                () = tokio::time::sleep_until(wake) => break,
                job = commands.recv() => match job {
                    Some(job) => driver.accept(job),
                    None => return,
                },
                () = tokio::time::sleep(StdDuration::from_millis(200)) => {}
            }
        }
    }
}

/// A std duration as the core counts it.
fn millis(d: StdDuration) -> Duration {
    Duration::from_millis(d.as_millis().min(u64::MAX as u128) as u64)
}

/// Whether another attempt could end differently: not for a bad URL, a
/// trust setup or certificate problem, a redirect or the access-code gate,
/// nor for a 4xx answer to the upgrade.
fn worth_retrying(e: &ConnectError) -> bool {
    match e {
        ConnectError::Tcp(_) | ConnectError::Handshake(_) | ConnectError::TimedOut => true,
        ConnectError::Tls(io) => io.kind() != std::io::ErrorKind::InvalidData,
        ConnectError::Rejected(status) => *status >= 500,
        _ => false,
    }
}

/// The method a login step waits for, in the protocol's words.
fn step_name(state: fnos::State) -> &'static str {
    match state {
        fnos::State::KeyExchange => "the key exchange (util.crypto.getRSAPub)",
        fnos::State::LoggingIn(LoginMethod::AuthToken) => "the token login (user.authToken)",
        fnos::State::LoggingIn(LoginMethod::TokenLogin) => "the token login (user.tokenLogin)",
        fnos::State::LoggingIn(LoginMethod::Password) => "the login (user.login)",
        fnos::State::LoggingIn(LoginMethod::TwoFactor) => {
            "the two-factor code (user.2fa.loginVerify)"
        }
        fnos::State::AwaitingTwoFactorCode => "the two-factor challenge",
        fnos::State::Disconnected | fnos::State::Ready | fnos::State::LoginFailed => "the login",
    }
}

impl Driver<'_> {
    /// Open a connection; before the first login, within what is left of
    /// its deadline.
    async fn open(&self, options: &FnosOptions) -> Result<Link, ConnectError> {
        if self.first.is_none() {
            return Link::open(&options.url, &options.link).await;
        }
        match tokio::time::timeout_at(self.first_deadline, Link::open(&options.url, &options.link))
            .await
        {
            Ok(opened) => opened,
            Err(_) => Err(ConnectError::TimedOut),
        }
    }

    /// Hand the first connection's failure to [`FnosClient::connect`] and
    /// fail what waits for it.
    fn fail_first(&mut self, error: FnosError) {
        let text = error.to_string();
        for cmd in self.queued.drain(..) {
            let _ = cmd.reply.send(Err(FnosError::Login(text.clone())));
        }
        if let Some(first) = self.first.take() {
            let _ = first.send(Err(error));
        }
    }

    /// When the first login must be done by; `None` after it, and while a
    /// two-factor code is awaited.
    fn login_deadline(&self) -> Option<tokio::time::Instant> {
        (self.first.is_some() && self.code_asked_at.is_none()).then_some(self.first_deadline)
    }

    /// Why the first login did not finish in time, naming its step.
    fn no_answer(&self) -> String {
        let state = self.session.state();
        // Silence at the very first step usually means another service.
        let hint = if state == fnos::State::KeyExchange {
            ": is this an fnOS server?"
        } else {
            ""
        };
        format!(
            "no answer to {} within {} s{hint}",
            step_name(state),
            self.connect_timeout.as_secs_f64()
        )
    }

    /// Take a handle's job: requests wait for the session, signatures are
    /// answered at once.
    fn accept(&mut self, job: Job) {
        match job {
            Job::Request(cmd) => self.queued.push(cmd),
            Job::Sign { message, reply } => {
                let credentials = self.session.credentials();
                let auth = self
                    .session
                    .signature(message.as_bytes())
                    .filter(|_| !credentials.token.is_empty())
                    .map(|sign| HttpAuth {
                        token: Zeroizing::new(credentials.token.as_str().to_owned()),
                        sign: String::from_utf8_lossy(&sign).into_owned(),
                    });
                let _ = reply.send(auth);
            }
        }
    }

    async fn run(&mut self, mut link: Link, commands: &mut mpsc::UnboundedReceiver<Job>) -> Ended {
        let mut rng = OsEntropy;
        // One timer for the core's deadlines, moved only when the deadline
        // moves, and one tick for noticing abandoned requests (within
        // 500 ms): no timer is created and no table is scanned per loop turn.
        let timer = tokio::time::sleep(StdDuration::from_secs(3600));
        tokio::pin!(timer);
        let mut timer_armed = false;
        let mut sweep = tokio::time::interval(StdDuration::from_millis(500));
        sweep.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        let ended = loop {
            if let Some(ended) = self.drain(&mut link, &mut rng) {
                link.close();
                link.flush().await;
                break ended;
            }
            link.flush().await;
            if link.is_closed() {
                break Ended::Lost("the connection closed".into());
            }
            let wait = [self.session.poll_timeout(), link.poll_timeout()]
                .into_iter()
                .flatten()
                .min()
                .map(deadline);
            match wait {
                Some(at) if !timer_armed || at != timer.deadline() => {
                    timer.as_mut().reset(at);
                    timer_armed = true;
                }
                Some(_) => {}
                None => timer_armed = false,
            }
            let login_deadline = self.login_deadline();
            tokio::select! {
                n = link.read() => {
                    if n == 0 {
                        link.handle_eof();
                    }
                    let mut closed = None;
                    let mut texts = Vec::new();
                    link.process(|incoming| match incoming {
                        Incoming::Text(t) => texts.push(t),
                        Incoming::Binary(_) => tracing::debug!("ignoring a binary message"),
                        Incoming::Closed(c) => closed = Some(c),
                    });
                    let mut stop = None;
                    for text in texts {
                        stop = stop.or(self.handle_text(&text));
                    }
                    if let Some(ended) = stop {
                        link.close();
                        link.flush().await;
                        break ended;
                    }
                    if let Some(closed) = closed {
                        break Ended::Lost(link.describe_end(closed));
                    }
                }
                job = commands.recv() => match job {
                    Some(job) => {
                        // Take every job already waiting, so that they go
                        // out together in one write instead of one each.
                        self.accept(job);
                        while let Ok(job) = commands.try_recv() {
                            self.accept(job);
                        }
                    }
                    None => {
                        link.close();
                        link.flush().await;
                        return Ended::Stop;
                    }
                },
                () = &mut timer, if timer_armed => {
                    timer_armed = false;
                    self.session.handle_timeout(now());
                    link.handle_timeout();
                }
                code = self.code.next() => {
                    if let Some(asked) = self.code_asked_at.take() {
                        // The person's typing does not count against the
                        // first login's deadline.
                        self.first_deadline += asked.elapsed();
                    }
                    let submitted = match code.map(Zeroizing::new) {
                        Some(code) => self.session.submit_two_factor_code(&code, false).is_ok(),
                        None => false,
                    };
                    if !submitted {
                        // After a refused code, the refusal is the news.
                        let error = if self.code.refused_before() {
                            FnosError::LoginRefused { errno: Some(Errno::WrongTwoFactorCode) }
                        } else {
                            FnosError::TwoFactorRequired
                        };
                        if let Some(ended) = self.give_up(error) {
                            link.close();
                            link.flush().await;
                            break ended;
                        }
                    }
                }
                // Abandoned requests are noticed on this tick, not on
                // every turn of the loop.
                _ = sweep.tick() => self.sweep_abandoned(),
                // Only before the first login: no timer otherwise.
                () = sleep_until(login_deadline) => {
                    link.close();
                    link.flush().await;
                    break Ended::Lost(self.no_answer());
                }
            }
        };
        self.session.handle_disconnect(now());
        while self.session.poll_event().is_some() {}
        // Idempotent requests wait for the next connection; the rest fail.
        let now = tokio::time::Instant::now();
        for (_, request) in self.in_flight.drain() {
            match request.resend {
                Some(again) if again.deadline > now && !request.reply.is_closed() => {
                    tracing::debug!(command = %again.command, "resending after the reconnect");
                    self.queued.push(Command {
                        command: again.command,
                        params: again.params,
                        timeout: again.deadline - now,
                        reply: request.reply,
                        resend: true,
                    });
                }
                _ => {
                    let _ = request.reply.send(Err(FnosError::ConnectionLost));
                }
            }
        }
        ended
    }

    /// Move the session's output to the link and act on its events.
    fn drain(&mut self, link: &mut Link, rng: &mut OsEntropy) -> Option<Ended> {
        loop {
            match self.session.poll_transmit(now(), rng, &mut self.tx) {
                Ok(Some(n)) => self.transmit(link, n),
                Ok(None) => break,
                Err(e) => {
                    return Some(Ended::Lost(format!(
                        "cannot write a login message: {}",
                        describe_session_error(&e)
                    )));
                }
            }
        }
        while let Some(event) = self.session.poll_event() {
            if let Some(ended) = self.lifecycle(event) {
                return Some(ended);
            }
        }
        if matches!(
            self.session.state(),
            fnos::State::KeyExchange | fnos::State::LoggingIn(_)
        ) {
            self.step = self.session.state();
        }
        if self.session.state() == fnos::State::Ready {
            self.send_queued(link);
        }
        None
    }

    /// Act on a session event other than a reply or a push.
    fn lifecycle(&mut self, event: fnos::Event<'_>) -> Option<Ended> {
        match event {
            fnos::Event::LoggedIn { method, .. } => {
                tracing::info!(?method, "logged in");
                self.code.reset();
                self.code_asked_at = None;
                self.logged_in = true;
                if let Some(first) = self.first.take() {
                    let _ = first.send(Ok(()));
                }
                let _ = self.events.send(FnosEvent::LoggedIn { method });
            }
            fnos::Event::LoginFailed(failure) => {
                let error = login_error(failure, self.step, self.connect_timeout);
                return self.give_up(error);
            }
            fnos::Event::TwoFactorRequired => return self.ask_code(FnosError::TwoFactorRequired),
            fnos::Event::TwoFactorRejected(errno) => {
                tracing::warn!(?errno, "two-factor code refused");
                if self.session.state() == fnos::State::AwaitingTwoFactorCode {
                    return self.ask_code(FnosError::LoginRefused { errno });
                }
                // An expired access token: the session starts the password
                // login again and the next challenge asks anew.
            }
            fnos::Event::RequestTimedOut(reqid) => {
                self.finish(&reqid, Err(FnosError::TimedOut));
            }
            fnos::Event::RequestAborted(reqid) => {
                self.finish(&reqid, Err(FnosError::ConnectionLost));
            }
            fnos::Event::ConnectionDead { missed_pongs } => {
                return Some(Ended::Lost(format!(
                    "heartbeat: {missed_pongs} pings unanswered"
                )));
            }
            // Only the kind: bodies may carry tokens and are never logged.
            other => tracing::debug!(kind = event_kind(&other), "session event"),
        }
        None
    }

    /// Ask the two-factor source for a code, or give up with `error` when
    /// there is none or its attempts are used up.
    fn ask_code(&mut self, error: FnosError) -> Option<Ended> {
        match self.code.ask() {
            Some(attempt) => {
                self.code_asked_at = Some(tokio::time::Instant::now());
                let _ = self.events.send(FnosEvent::TwoFactorRequired { attempt });
                None
            }
            None => self.give_up(error),
        }
    }

    /// The login cannot succeed: fail what waits for it and stop.
    fn give_up(&mut self, error: FnosError) -> Option<Ended> {
        tracing::warn!(%error, "login failed");
        self.code.reset();
        self.code_asked_at = None;
        for cmd in self.queued.drain(..) {
            let _ = cmd.reply.send(Err(FnosError::Login(error.to_string())));
        }
        let _ = self.events.send(FnosEvent::LoginFailed(error.to_string()));
        if let Some(first) = self.first.take() {
            let _ = first.send(Err(error));
        }
        Some(Ended::Stop)
    }

    fn transmit(&mut self, link: &mut Link, n: usize) {
        match std::str::from_utf8(&self.tx[..n]) {
            Ok(text) => {
                if let Err(e) = link.send_text(text) {
                    tracing::warn!(error = ?e, "send failed");
                }
            }
            Err(_) => tracing::error!("the session wrote a non-UTF-8 message"),
        }
    }

    fn send_queued(&mut self, link: &mut Link) {
        let mut waiting = Vec::new();
        for cmd in std::mem::take(&mut self.queued) {
            if cmd.reply.is_closed() {
                continue;
            }
            if !self.session.has_room() {
                waiting.push(cmd);
                continue;
            }
            let mut request = Request::new(&cmd.command);
            if !cmd.params.is_empty() {
                request = request.with_object(&cmd.params);
            }
            let timeout = Duration::from_millis(cmd.timeout.as_millis() as u64);
            let sent = self
                .session
                .send_with_timeout(now(), &request, timeout, &mut self.tx);
            drop(request);
            match sent {
                Ok((reqid, n)) => {
                    tracing::debug!(command = %cmd.command, reqid = reqid.as_str(), "request");
                    self.transmit(link, n);
                    let resend = cmd.resend.then(|| Resend {
                        deadline: tokio::time::Instant::now() + cmd.timeout,
                        command: cmd.command.clone(),
                        params: cmd.params,
                    });
                    self.in_flight.insert(
                        reqid,
                        InFlight {
                            method: cmd.command.clone(),
                            frames: Vec::new(),
                            bytes: 0,
                            reply: cmd.reply,
                            resend,
                        },
                    );
                }
                Err(fnos::Error::Busy) => waiting.push(cmd),
                Err(e) => {
                    let why = describe_session_error(&e);
                    let _ = cmd.reply.send(Err(FnosError::Request(why)));
                }
            }
        }
        self.queued = waiting;
    }

    fn handle_text(&mut self, text: &str) -> Option<Ended> {
        match self.session.handle_text(now(), text.as_bytes()) {
            Ok(Some(fnos::Event::Reply(reply))) => {
                let key = reply.reqid()?;
                let status = reply.status();
                let errno = reply.errno();
                let message = (status != Status::Success && status != Status::Partial)
                    .then(|| reply.error_message())
                    .flatten()
                    .and_then(|m| m.as_unescaped().map(str::to_owned));
                let entry = self.in_flight.get_mut(&key)?;
                entry.bytes = entry.bytes.saturating_add(text.len());
                entry.frames.push(text.to_owned());
                if let Some(limit) = self.limits.exceeded(entry) {
                    self.session.cancel(&key);
                    if let Some(done) = self.in_flight.remove(&key) {
                        tracing::warn!(method = %done.method, limit, "answer too large");
                        let value = match limit {
                            "max_answer_bytes" => self.limits.bytes,
                            _ => self.limits.frames,
                        };
                        let _ = done.reply.send(Err(FnosError::AnswerTooLarge {
                            method: done.method,
                            limit,
                            value,
                        }));
                    }
                    return None;
                }
                match status {
                    Status::Partial => {}
                    Status::Success => {
                        if let Some(done) = self.in_flight.remove(&key) {
                            let frames = done.frames.iter().map(|t| parse_frame(t)).collect();
                            let _ = done.reply.send(Ok(FnosReply { frames }));
                        }
                    }
                    _ => {
                        if let Some(done) = self.in_flight.remove(&key) {
                            let body = done
                                .frames
                                .last()
                                .map(|t| parse_frame(t))
                                .unwrap_or_default();
                            let message = message.unwrap_or_else(|| {
                                errno.map_or("request failed", |e| e.message()).to_owned()
                            });
                            let _ = done.reply.send(Err(FnosError::Server {
                                errno,
                                message,
                                body,
                            }));
                        }
                    }
                }
            }
            Ok(Some(fnos::Event::Push(_))) => {
                tracing::debug!("push");
                let value = serde_json::from_str(text).unwrap_or(serde_json::Value::Null);
                let _ = self.events.send(FnosEvent::Push(value));
            }
            Ok(Some(other)) => return self.lifecycle(other),
            Ok(None) => {}
            Err(e) => tracing::warn!(error = ?e, "malformed message ignored"),
        }
        None
    }

    fn finish(&mut self, reqid: &fnos::Reqid, result: Result<FnosReply, FnosError>) {
        if let Some(request) = self.in_flight.remove(reqid) {
            let _ = request.reply.send(result);
        }
    }

    /// Cancel requests whose caller gave up (dropped the future).
    fn sweep_abandoned(&mut self) {
        let session = &mut self.session;
        self.in_flight.retain(|reqid, request| {
            if request.reply.is_closed() {
                session.cancel(reqid);
                false
            } else {
                true
            }
        });
        self.queued.retain(|cmd| !cmd.reply.is_closed());
    }
}

/// An event's kind, for logs that must not show message bodies.
fn event_kind(event: &fnos::Event<'_>) -> &'static str {
    match event {
        fnos::Event::LoggedIn { .. } => "logged in",
        fnos::Event::TwoFactorRequired => "two-factor required",
        fnos::Event::TwoFactorRejected(_) => "two-factor rejected",
        fnos::Event::LoginFailed(_) => "login failed",
        fnos::Event::Reply(_) => "reply",
        fnos::Event::UnmatchedReply(_) => "reply to no request in flight",
        fnos::Event::Push(_) => "push",
        fnos::Event::Unsolicited(_) => "unsolicited message",
        fnos::Event::RequestTimedOut(_) => "request timed out",
        fnos::Event::RequestAborted(_) => "request aborted",
        fnos::Event::ConnectionDead { .. } => "connection dead",
        fnos::Event::Malformed(_) => "unreadable message",
    }
}

impl AnswerLimits {
    /// Which limit `entry` went over, if any.
    fn exceeded(&self, entry: &InFlight) -> Option<&'static str> {
        if entry.bytes > self.bytes {
            Some("max_answer_bytes")
        } else if entry.frames.len() > self.frames {
            Some("max_answer_frames")
        } else {
            None
        }
    }
}

/// A frame's text as JSON (the core already checked it is an object).
fn parse_frame(text: &str) -> serde_json::Value {
    serde_json::from_str(text).unwrap_or(serde_json::Value::Null)
}

fn login_error(failure: LoginFailure, step: fnos::State, budget: StdDuration) -> FnosError {
    let text = match failure {
        LoginFailure::Rejected { errno, .. } | LoginFailure::KeyExchangeRefused(errno) => {
            return FnosError::LoginRefused { errno };
        }
        LoginFailure::TimedOut => format!(
            "no answer to {} within {} s",
            step_name(step),
            budget.min(StdDuration::from_secs(30)).as_secs_f64()
        ),
        LoginFailure::NoCredentials => "no password and no stored token".into(),
        LoginFailure::InvalidServerKey(_) => {
            "the server's RSA public key (util.crypto.getRSAPub) is unusable".into()
        }
        LoginFailure::InvalidSecret(_) => {
            "the login's secret could not be decrypted (wrong key or garbled answer)".into()
        }
        LoginFailure::MissingField(field) => {
            format!("the login answer lacks `{field}` or it has the wrong type")
        }
        LoginFailure::FieldTooLong(field) => {
            format!("the login answer's `{field}` is longer than allowed")
        }
    };
    FnosError::Login(text)
}

/// The core's refusal to write or read a message, in words.
fn describe_session_error(e: &fnos::Error) -> String {
    match e {
        fnos::Error::NotConnected => "not connected".into(),
        fnos::Error::Busy => format!("{MAX_IN_FLIGHT} requests are already in flight"),
        fnos::Error::BufferTooSmall { required } => {
            format!("the request needs {required} bytes, more than the client writes")
        }
        fnos::Error::TooManyParams => "the request has too many parameters".into(),
        fnos::Error::ParamsNotAnObject => "parameters must be a JSON object".into(),
        fnos::Error::Malformed(_) => "a received message is not a JSON object".into(),
        fnos::Error::NotAwaitingTwoFactorCode => "no two-factor code is being asked for".into(),
        fnos::Error::TwoFactorCodeTooLong => "the two-factor code is too long".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_of_the_options_and_the_client_hides_password_and_access_code() {
        let mut options = FnosOptions::new("ws://nas:5666/websocket", "admin", "pa55-word");
        options.link.access_code = Some("acc3ss-code".into());
        options.two_factor = Some(TwoFactor::fixed("123456"));
        let text = format!("{options:?}");
        for secret in ["pa55-word", "acc3ss-code", "123456"] {
            assert!(!text.contains(secret), "{text}");
        }
        let target = HttpTarget {
            url: options.url.clone(),
            link: options.link.clone(),
            idle_timeout: StdDuration::from_secs(1),
        };
        assert!(!format!("{target:?}").contains("acc3ss-code"));
    }

    #[test]
    fn connect_failures_name_the_attempts_and_answer_limits_name_the_method() {
        let failed = FnosError::ConnectFailed {
            attempts: 3,
            cause: "cannot connect: refused".into(),
        };
        assert_eq!(
            failed.to_string(),
            "gave up after 3 attempts: cannot connect: refused"
        );
        let single = FnosError::ConnectFailed {
            attempts: 1,
            cause: "no answer to the login (user.login) within 5 s".into(),
        };
        assert_eq!(
            single.to_string(),
            "no answer to the login (user.login) within 5 s"
        );
        let big = FnosError::AnswerTooLarge {
            method: "file.ls".into(),
            limit: "max_answer_bytes",
            value: 16,
        };
        let text = big.to_string();
        assert!(text.contains("file.ls") && text.contains("max_answer_bytes = 16"));
    }
}
