//! [`CfmsClient`]: a CFMS session in a background task.
//!
//! CFMS has no request ids: the server answers in order, and the core's
//! session matches answers first-in first-out. The task runs the core's
//! `Connection<cfms::Session>` on the runtime's byte pump (as the fnOS
//! client does); handles send requests through a channel, so many tasks
//! may have requests queued at once and each gets its own answer.
//!
//! # The task's life
//!
//! ```text
//! Connecting --open--> the session's opening sequence (server_info, login or
//!     ^                the kept token, two-factor code, register_listener)
//!     |                                   |
//!     |                                   v
//!     +--- backoff with jitter <--- Ready (lockdown pushes on)
//!          link lost / desync /            |
//!          keep-alive unanswered   requests FIFO, answers by seq
//! ```
//!
//! - The first connect is bounded: [`CfmsOptions::connect_timeout`] for
//!   all of it and [`CfmsOptions::first_attempts`] attempts; `server_info`
//!   and the login each wait at most the request timeout (cut to what is
//!   left). It fails with the cause in words ([`CfmsError::NoAnswer`],
//!   [`CfmsError::LinkClosed`], [`CfmsError::GaveUp`]); a refused login,
//!   a wrong URL or an untrusted certificate are not retried. The backoff
//!   starts again only after a connection reached a successful login, so
//!   a server that breaks every connection is not hammered.
//! - The protocol is found without configuration: the first connection
//!   opens with the protocol-13 probe (a framed `server_info`). A 13
//!   server answers it; a 3–5 server closes the connection, and the task
//!   reconnects at once (once, not counted as an attempt) speaking text.
//!   The session keeps the answer for every later connection.
//!   [`CfmsOptions::protocol_version`] pins it and skips the probe;
//!   versions other than 3–5 and 13 fail with
//!   [`CfmsError::ProtocolUnsupported`] naming them. A version remembered
//!   from an earlier run ([`CfmsOptions::remembered_protocol_version`]) is
//!   spoken like a pin, but forgotten (and the protocol negotiated once
//!   afresh) when the server contradicts it. Over 13 a download's
//!   chunks are opened one by one (AES-256-GCM, each tag checked before
//!   its plaintext is written; a forged or corrupted chunk is a
//!   [`CfmsError::Transfer`] naming its index). Resuming a cut download
//!   is not offered yet.
//! - A keep-alive ping ([`CfmsOptions::keepalive`]) lets an idle client
//!   notice a dead link within two intervals.
//!
//! - Requests made while (re)connecting wait in a queue, each bounded by
//!   its timeout. When a connection dies, every request in flight fails
//!   with [`CfmsError::ConnectionLost`]; none is resent, except those the
//!   caller sent with [`CfmsClient::request_idempotent`], which go out
//!   again on the next connection within their deadline.
//! - A request the server's replay protection refuses (1001) for a stale
//!   timestamp is sent again once, with a fresh nonce and the server's
//!   clock learnt from the refusal (the core's
//!   [`Replay::worth_resending`](cfms::p13::Replay::worth_resending)); a
//!   duplicate nonce, or a second refusal, fails as [`CfmsError::Replay`].
//! - A two-factor challenge (202) asks [`CfmsOptions::two_factor`] for a
//!   code, again after a refused one (at most three codes per login).
//! - A token the server rejects is replaced by the core logging in again
//!   with the stored password; the core also refreshes the token before it
//!   expires.
//! - Dropping a request future is safe: the answer still arrives in order
//!   (so the FIFO stays aligned) and is thrown away.
//!
//! - [`CfmsClient::download`] streams a document's ciphertext to a
//!   temporary file, decrypts and verifies it in a second pass, and renames
//!   the result into place only on success. The temporary files are
//!   created exclusively with unpredictable names and unlinked on every
//!   failure and when the download's future is dropped.
//! - [`CfmsClient::upload`] hashes the file in a first streamed pass,
//!   then streams it in the frames the server asked for (never larger than
//!   this client announced), reading as it goes; a failed or dropped upload
//!   deletes the document it created.
//! - A transfer the server refuses is [`CfmsError::Server`], like any
//!   refused request.
//!
//! The files: `driver` (the connection task), `transfer` (both sides of
//! downloads and uploads), `files` (blocking-pool file work). The core's
//! errors say themselves what went wrong (`Display`).

mod driver;
mod files;
mod partial;
mod transfer;

use std::time::Duration as StdDuration;

use futures_util::Stream;
use naslink_core::cfms::{self, DownloadError, LoginError, NoAnswer, UploadError};
use tokio::sync::{broadcast, mpsc, oneshot};
use zeroize::Zeroizing;

use crate::fnos::Backoff;
use crate::link::{ConnectError, LinkOptions};
use crate::two_factor::TwoFactor;

use driver::{Ask, Command, Job, Reply, drive};

/// Requests queued on the connection at once (the core's FIFO size).
pub const MAX_IN_FLIGHT: usize = 16;

/// The largest message received whole: directory listings, and download
/// chunks (2 MiB of ciphertext in base64 is about 2.8 MB).
const RECEIVE_CAPACITY: usize = 4 * 1024 * 1024;

/// Chunk hashes kept per download: with the server's 2 MiB chunks, files
/// up to 16 GiB (256 KiB of hashes).
const MAX_CHUNKS: usize = 8192;

/// What [`CfmsClient::connect`] needs.
#[derive(Clone)]
pub struct CfmsOptions {
    /// `wss://HOST:5104/` (or `ws://` for a plain test server).
    pub url: String,
    /// User name.
    pub user: String,
    /// Password (wiped from memory when dropped).
    pub password: Zeroizing<String>,
    /// Transport: TLS trust.
    pub link: LinkOptions,
    /// Default deadline of each request (a wrong password is answered
    /// after about 3 s on purpose).
    pub request_timeout: StdDuration,
    /// Reconnect delays.
    pub backoff: Backoff,
    /// Where two-factor codes (TOTP or backup codes) come from; without
    /// one, an account that needs a code fails its login with
    /// [`CfmsError::TwoFactorRequired`].
    pub two_factor: Option<TwoFactor>,
    /// The first connect and login (every attempt: TCP, TLS, upgrade,
    /// `server_info`, login; the wait for a two-factor code excluded) must
    /// succeed or fail within this. Each of `server_info` and the login
    /// waits at most `min(request_timeout, what is left of it)`.
    pub connect_timeout: StdDuration,
    /// Connection attempts before the first successful login (at least
    /// one). Later, the client reconnects as long as it lives; its backoff
    /// starts again only after a connection reached a successful login.
    pub first_attempts: u32,
    /// Keep-alive: a WebSocket ping after this much time; no byte from
    /// the server during the next interval means the link is dead (a
    /// [`CfmsEvent::Disconnected`], then a reconnect). So an idle client
    /// (a `watch`) notices a dead link within twice the interval. `None`
    /// turns it off.
    pub keepalive: Option<StdDuration>,
    /// The upload frame size announced as `max_chunk_size` to a protocol 4
    /// or later server (at least 512; protocol 3 always uses 8192). The
    /// default, 65536, is what a protocol-13 server uses at most. Larger
    /// frames mean fewer messages; memory does not grow with it, as frames
    /// are streamed. A server asking for larger frames is refused.
    pub upload_frame: u32,
    /// The server's protocol version, when known in advance (3, 4, 5 or
    /// 13): the client speaks it at once, without the protocol-13 probe.
    /// `None` (the default): each client finds it out on its first
    /// connection (a framed `server_info`; a 3–5 server closes the
    /// connection, and the client reconnects once speaking text) and keeps
    /// the answer for its later connections. Any other version fails
    /// [`CfmsClient::connect`] with [`CfmsError::ProtocolUnsupported`].
    pub protocol_version: Option<u32>,
    /// A version remembered from an earlier connection to this server (a
    /// cache the caller keeps, as the `naslink` program does): spoken at
    /// once like [`protocol_version`](Self::protocol_version), without the
    /// probe, but not trusted like it. When the server contradicts it (a
    /// remembered 13 meets a close before any answer, as a 3–5 server does
    /// with a frame; a remembered 3–5 gets no answer to its `server_info`
    /// within 3 s, as from a 13 server), the client forgets it and
    /// negotiates once afresh, without counting an attempt;
    /// [`CfmsClient::protocol_version`] then tells the version to remember.
    /// Ignored when `protocol_version` is set, or when it names a version
    /// this client does not speak.
    pub remembered_protocol_version: Option<u32>,
}

impl std::fmt::Debug for CfmsOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CfmsOptions")
            .field("url", &self.url)
            .field("user", &self.user)
            .field("password", &"<hidden>")
            .field("request_timeout", &self.request_timeout)
            .field("connect_timeout", &self.connect_timeout)
            .field("first_attempts", &self.first_attempts)
            .field("keepalive", &self.keepalive)
            .field("protocol_version", &self.protocol_version)
            .field(
                "remembered_protocol_version",
                &self.remembered_protocol_version,
            )
            .finish_non_exhaustive()
    }
}

impl CfmsOptions {
    /// Options with defaults: the system certificate store, 30 s requests,
    /// default backoff, 30 s and 3 attempts for the first connect, a
    /// keep-alive ping every 30 s.
    pub fn new(url: &str, user: &str, password: &str) -> Self {
        CfmsOptions {
            url: url.to_owned(),
            user: user.to_owned(),
            password: Zeroizing::new(password.to_owned()),
            link: LinkOptions {
                receive_buffer: RECEIVE_CAPACITY,
                ..LinkOptions::default()
            },
            request_timeout: StdDuration::from_secs(30),
            backoff: Backoff::default(),
            two_factor: None,
            connect_timeout: StdDuration::from_secs(30),
            first_attempts: 3,
            keepalive: Some(StdDuration::from_secs(30)),
            upload_frame: cfms::p13::transfer::MAX_UPLOAD_CHUNK,
            protocol_version: None,
            remembered_protocol_version: None,
        }
    }
}

/// Why a request or the connection failed.
#[derive(Debug)]
pub enum CfmsError {
    /// The connection could not be opened.
    Connect(ConnectError),
    /// The server answered the WebSocket upgrade with HTTP 403: it has
    /// blocked this IP address (`IP temporarily blocked. Too many failed
    /// attempts.`; the real server lifts it after 15 min). Not retried by
    /// the first connect; a client that was connected waits the longest
    /// backoff delay before each further attempt.
    IpBlocked,
    /// The server speaks another protocol version.
    ProtocolUnsupported(Option<u32>),
    /// The login was refused.
    LoginRefused(LoginError),
    /// The account needs a two-factor code and no source of codes was
    /// given, or the source gave up.
    TwoFactorRequired,
    /// The server's replay protection refused the request (1001): a
    /// duplicate nonce, or a timestamp still stale after the one resend
    /// made with the server's clock (`kind` says which).
    Replay {
        /// Which check refused it.
        kind: cfms::p13::Replay,
        /// The whole answer.
        body: serde_json::Value,
    },
    /// The server answered with a code other than 200.
    Server {
        /// The `code`.
        code: i64,
        /// The `message`, if any.
        message: String,
        /// The whole answer.
        body: serde_json::Value,
    },
    /// No answer before the deadline.
    TimedOut,
    /// The connection dropped before the answer; the request was not resent.
    ConnectionLost,
    /// The client is shut down.
    Closed,
    /// The request could not be written (too large, `data` not an object).
    Request(String),
    /// A transfer could not go on here: no task id in the answer, a
    /// chunk or the file failing its SHA-256 in the decryption pass, the
    /// local reader or writer stopped. (What the server got wrong in the
    /// transfer itself is [`CfmsError::Download`] or [`CfmsError::Upload`].)
    Transfer(String),
    /// A local file could not be read or written.
    Io(std::io::Error),
    /// A step of the session's opening sequence got no answer in time
    /// (while connecting): the core's [`NoAnswer`] names the step.
    NoAnswer(NoAnswer),
    /// The connection ended while connecting or logging in.
    LinkClosed(String),
    /// The first connect failed `attempts` times (or ran out of
    /// [`CfmsOptions::connect_timeout`]); `last` says why the last one did.
    GaveUp {
        /// Attempts made.
        attempts: u32,
        /// The last attempt's failure.
        last: Box<CfmsError>,
    },
    /// The server broke the CFMS protocol (the session's own words).
    Protocol(String),
    /// The download failed: the core's named reason.
    Download(DownloadError),
    /// The upload failed: the core's named reason.
    Upload(UploadError),
}

impl std::fmt::Display for CfmsError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CfmsError::Connect(e) => e.fmt(f),
            CfmsError::IpBlocked => f.write_str(
                "the server has blocked this IP address (HTTP 403 at the upgrade: too many \
                 failed logins from it; a CFMS server lifts the block after 15 minutes)",
            ),
            CfmsError::ProtocolUnsupported(version) => {
                cfms::Error::ProtocolUnsupported { version: *version }.fmt(f)
            }
            CfmsError::LoginRefused(e) => write!(f, "login refused: {e}"),
            CfmsError::TwoFactorRequired => {
                f.write_str("the account needs a two-factor code and none was given")
            }
            CfmsError::Server { code, message, .. } => {
                write!(f, "the server refused: {message} (code {code})")
            }
            CfmsError::Replay { kind, .. } => write!(f, "{kind} (code 1001)"),
            CfmsError::TimedOut => f.write_str("no answer before the request's deadline"),
            CfmsError::ConnectionLost => f.write_str(
                "the connection dropped before the answer arrived (the request was not resent)",
            ),
            CfmsError::Closed => f.write_str("the client is shut down"),
            CfmsError::Request(why) => write!(f, "cannot send the request: {why}"),
            CfmsError::Transfer(why) => write!(f, "transfer failed: {why}"),
            CfmsError::Io(e) => write!(f, "local file: {e}"),
            CfmsError::NoAnswer(e) => e.fmt(f),
            CfmsError::LinkClosed(why) => {
                write!(
                    f,
                    "the server closed the connection before the login ({why})"
                )
            }
            CfmsError::GaveUp { attempts, last } => {
                write!(f, "gave up after {attempts} attempts: {last}")
            }
            CfmsError::Protocol(why) => write!(f, "the server broke the CFMS protocol: {why}"),
            CfmsError::Download(e) => write!(f, "download failed: {e}"),
            CfmsError::Upload(e) => write!(f, "upload failed: {e}"),
        }
    }
}

impl std::error::Error for CfmsError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            CfmsError::Connect(e) => Some(e),
            CfmsError::Io(e) => Some(e),
            CfmsError::GaveUp { last, .. } => Some(last.as_ref()),
            _ => None,
        }
    }
}

/// Lifecycle changes and pushes.
#[derive(Debug, Clone, PartialEq)]
pub enum CfmsEvent {
    /// Connected and logged in (also after each reconnect).
    Ready {
        /// Lockdown state from `server_info`.
        lockdown: bool,
    },
    /// Lockdown changed (pushed by the server).
    Lockdown {
        /// Whether it is on now.
        on: bool,
    },
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
    /// The server asked for a two-factor code; the configured source is
    /// being asked (attempt 1-based).
    TwoFactorRequired {
        /// Which code of this login is being asked for.
        attempt: u32,
    },
}

/// What the server says about itself (its server information answer, read
/// by the core's [`cfms::ops::ServerInfo`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ServerInfo {
    /// The server's name (`CFMS WebSocket Server`).
    pub server_name: String,
    /// Its software version (e.g. `0.1.0.250919_alpha`).
    pub version: String,
    /// The CFMS protocol version it speaks (3 to 5, or 13).
    pub protocol_version: u32,
    /// Whether lockdown is on (only administrators are served).
    pub lockdown: bool,
}

impl ServerInfo {
    /// The owned form of the core's view.
    pub fn from_view(view: &cfms::ops::ServerInfo<'_>) -> Self {
        let text =
            |s: Option<cfms::JsonStr<'_>>| s.map(|s| s.chars().collect()).unwrap_or_default();
        ServerInfo {
            server_name: text(view.server_name()),
            version: text(view.version()),
            protocol_version: view.protocol_version().unwrap_or(0),
            lockdown: view.lockdown(),
        }
    }
}

/// A handle to a CFMS session running in the background.
#[derive(Debug, Clone)]
pub struct CfmsClient {
    commands: mpsc::UnboundedSender<Job>,
    events: broadcast::Sender<CfmsEvent>,
    timeout: StdDuration,
    server: ServerInfo,
}

impl CfmsClient {
    /// Connect, check the protocol version, log in, and keep the session
    /// alive in a background task. Fails if the first connection or login
    /// fails.
    pub async fn connect(options: CfmsOptions) -> Result<CfmsClient, CfmsError> {
        if let Some(Err(refused)) = options.protocol_version.map(cfms::p13::Wire::for_version) {
            return Err(CfmsError::ProtocolUnsupported(Some(refused.version)));
        }
        let (commands, rx) = mpsc::unbounded_channel();
        let (events, _) = broadcast::channel(256);
        let (first_tx, first_rx) = oneshot::channel();
        let timeout = options.request_timeout;
        let span = tracing::info_span!("cfms", url = %options.url, user = %options.user);
        tokio::spawn(tracing::Instrument::instrument(
            drive(options, rx, events.clone(), first_tx),
            span,
        ));
        let server = first_rx.await.map_err(|_| CfmsError::Closed)??;
        Ok(CfmsClient {
            commands,
            events,
            timeout,
            server,
        })
    }

    /// What the server said about itself when the first connection opened.
    pub fn server(&self) -> &ServerInfo {
        &self.server
    }

    /// The CFMS protocol version this client speaks with the server (3 to
    /// 5, or 13), as found on the first connection (or pinned with
    /// [`CfmsOptions::protocol_version`]).
    pub fn protocol_version(&self) -> u32 {
        self.server.protocol_version
    }

    /// Ask the server about itself now (its lockdown may have changed
    /// since [`server`](Self::server)). Idempotent: sent again after a
    /// reconnect within the request timeout.
    pub async fn ask_server(&self) -> Result<ServerInfo, CfmsError> {
        let (reply, answer) = oneshot::channel();
        self.enqueue(Ask::Server, Reply::Server(reply), true)?;
        self.wait(answer).await
    }

    /// Send `action` with `data` (a JSON object) and wait for the answer
    /// (code 200; anything else is [`CfmsError::Server`]).
    pub async fn request(
        &self,
        action: &str,
        data: &serde_json::Value,
    ) -> Result<serde_json::Value, CfmsError> {
        self.submit(action, data, false).await
    }

    /// [`request`](Self::request) for an action the caller knows to be
    /// idempotent (a read such as `list_directory` or `get_document_info`):
    /// if the connection drops before its answer, it is sent again once the
    /// client has reconnected, as often as its deadline allows, instead of
    /// failing with [`CfmsError::ConnectionLost`]. Never use it for actions
    /// that change something.
    pub async fn request_idempotent(
        &self,
        action: &str,
        data: &serde_json::Value,
    ) -> Result<serde_json::Value, CfmsError> {
        self.submit(action, data, true).await
    }

    async fn submit(
        &self,
        action: &str,
        data: &serde_json::Value,
        resend: bool,
    ) -> Result<serde_json::Value, CfmsError> {
        if !data.is_object() {
            return Err(CfmsError::Request("data must be a JSON object".into()));
        }
        let (reply, answer) = oneshot::channel();
        let ask = Ask::Action(action.to_owned(), Zeroizing::new(data.to_string()));
        self.enqueue(ask, Reply::Body(reply), resend)?;
        self.wait(answer).await
    }

    fn enqueue(&self, ask: Ask, reply: Reply, resend: bool) -> Result<(), CfmsError> {
        self.commands
            .send(Job::Request(Command {
                ask,
                reply,
                resend_until: resend.then(|| tokio::time::Instant::now() + self.timeout),
                replayed: false,
            }))
            .map_err(|_| CfmsError::Closed)
    }

    async fn wait<T>(
        &self,
        answer: oneshot::Receiver<Result<T, CfmsError>>,
    ) -> Result<T, CfmsError> {
        match tokio::time::timeout(self.timeout, answer).await {
            Ok(Ok(result)) => result,
            Ok(Err(_)) => Err(CfmsError::Closed),
            Err(_) => Err(CfmsError::TimedOut),
        }
    }

    /// Lifecycle events and lockdown pushes from now on.
    pub fn events(&self) -> impl Stream<Item = CfmsEvent> + Send + 'static {
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
