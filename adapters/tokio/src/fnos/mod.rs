//! [`FnosClient`]: an fnOS session in a background task.
//!
//! The task owns the socket and the core's `Session`; handles talk to it
//! through a channel, so a [`FnosClient`] is cheap to clone and usable from
//! many tasks at once (replies are matched by reqid in the core).
//!
//! # The task's life
//!
//! ```text
//! Connecting --open--> LoggingIn --LoggedIn--> Ready --link lost / dead heartbeat--+
//!     ^   |                 |                                                       |
//!     |   +--fail: backoff--+-- login refused, kicked: stop (handles get Closed)    |
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
//! - A `kicked` push (another login took the session over) stops the
//!   client with [`FnosEvent::LoginFailed`]: reconnecting would only kick
//!   the other login back. A `tokenExpired` push is answered by the core
//!   with a fresh login on the same connection.
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

use std::sync::Arc;
use std::time::Duration as StdDuration;

use futures_util::Stream;
use naslink_core::fnos::{Credentials, DeviceToken, Errno, LoginMethod};

use tokio::sync::{broadcast, mpsc, oneshot};
use zeroize::{Zeroize, Zeroizing};

mod driver;
mod panel;
mod transfer;

pub use panel::{
    ContainerStatus, CpuStatus, DiskStatus, HealthReason, HealthReport, Part, PoolStatus, Snapshot,
    UpsStatus,
};
pub use transfer::Overwrite;

use crate::two_factor::TwoFactor;

use crate::link::{ConnectError, LinkOptions, OsEntropy};

/// Requests in flight on one connection (the core's pending table size).
pub const MAX_IN_FLIGHT: usize = 64;

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
    /// The delay before attempt `n` (0-based), with jitter: the core's
    /// [`backoff`](naslink_core::backoff) rule, which every runtime shares.
    pub fn delay(&self, attempt: u32) -> StdDuration {
        let millis = |d: StdDuration| {
            naslink_core::time::Duration::from_millis(d.as_millis().min(u64::MAX as u128) as u64)
        };
        let rule = naslink_core::backoff::Backoff::new(millis(self.initial), millis(self.max));
        StdDuration::from_millis(rule.delay(attempt, &mut OsEntropy).total_millis())
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
    /// Log in with this device token (`user.tokenLogin`) instead of the
    /// password, which is then never used: a refused token fails with
    /// [`FnosError::DeviceTokenRefused`]. See [`FnosOptions::with_device_token`].
    pub device_token: Option<DeviceToken>,
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
            .field("device_token", &self.device_token)
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
            device_token: None,
        }
    }

    /// Options as [`new`](Self::new) that log in with `token` only (its
    /// user, no password).
    pub fn with_device_token(url: &str, token: DeviceToken) -> Self {
        let mut options = FnosOptions::new(url, token.user(), "");
        options.device_token = Some(token);
        options
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
    /// The NAS refused the device token of [`FnosOptions::device_token`]
    /// (revoked or expired); no password was tried.
    DeviceTokenRefused {
        /// The server's code, if any.
        errno: Option<Errno>,
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
            FnosError::DeviceTokenRefused { errno } => {
                f.write_str("the NAS refused the device token (revoked or expired)")?;
                if let Some(e) = errno {
                    write!(f, ": {} (errno {})", e.message(), e.code())?;
                }
                Ok(())
            }
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
///
/// The frames are kept as received text; they become `serde_json` values
/// only when first looked at (the session has matched them already, so a
/// caller that only needs the outcome never pays for a JSON tree).
#[derive(Debug, Clone)]
pub struct FnosReply {
    texts: Vec<String>,
    parsed: std::sync::OnceLock<Vec<serde_json::Value>>,
}

impl PartialEq for FnosReply {
    fn eq(&self, other: &Self) -> bool {
        self.frames() == other.frames()
    }
}

impl FnosReply {
    /// An answer made of these frames (JSON text, arrival order).
    pub(crate) fn from_texts(texts: Vec<String>) -> Self {
        FnosReply {
            texts,
            parsed: std::sync::OnceLock::new(),
        }
    }

    /// The frames in arrival order (at least one), as JSON values.
    pub fn frames(&self) -> &[serde_json::Value] {
        self.parsed
            .get_or_init(|| self.texts.iter().map(|t| driver::parse_frame(t)).collect())
    }

    /// The frames as received text.
    pub fn texts(&self) -> &[String] {
        &self.texts
    }

    /// The frames as JSON values, owned.
    pub fn into_frames(self) -> Vec<serde_json::Value> {
        let _ = self.frames();
        self.parsed.into_inner().unwrap_or_default()
    }

    /// The final frame.
    pub fn last(&self) -> &serde_json::Value {
        self.frames().last().unwrap_or(&serde_json::Value::Null)
    }

    /// `key` from the final frame, or from its `data` object (`appcgi.*`).
    pub fn get(&self, key: &str) -> Option<&serde_json::Value> {
        let last = self.last();
        last.get(key)
            .or_else(|| last.get("data").and_then(|d| d.get(key)))
    }

    /// The elements of array `key` across all frames (multi-frame listings).
    pub fn merged(&self, key: &str) -> Vec<serde_json::Value> {
        self.frames()
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
    /// Hand over a copy of the session's tokens and secret.
    Credentials { reply: oneshot::Sender<Credentials> },
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
    user: String,
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
        let user = options.user.clone();
        let http = Arc::new(HttpTarget {
            url: options.url.clone(),
            link: options.link.clone(),
            idle_timeout: options.request_timeout,
        });
        let span = tracing::info_span!("fnos", url = %options.url, user = %options.user);
        tokio::spawn(tracing::Instrument::instrument(
            driver::drive(options, rx, events.clone(), first_tx),
            span,
        ));
        first_rx.await.map_err(|_| FnosError::Closed)??;
        Ok(FnosClient {
            commands,
            events,
            timeout,
            http,
            user,
        })
    }

    /// A device token for this login: its long token and secret as one
    /// `nlt1.` text (see [`naslink_core::fnos::device_token`]) that logs a
    /// device in without the password. Needs a login that returned a long
    /// token (a password login, which asks for one with `stay`, or a
    /// device-token login).
    pub async fn device_token(&self) -> Result<DeviceToken, FnosError> {
        let (reply, answer) = oneshot::channel();
        self.commands
            .send(Job::Credentials { reply })
            .map_err(|_| FnosError::Closed)?;
        let creds = answer.await.map_err(|_| FnosError::Closed)?;
        DeviceToken::new(&self.user, None, &creds)
            .map_err(|e| FnosError::Login(format!("no device token from this login: {e}")))
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
