//! One WebSocket connection over tokio: TCP, optional rustls, and the
//! core's sans-I/O client moving bytes between them.
//!
//! [`Link::open`] runs the upgrade. A 30x answer is an HTTPS redirect
//! (fnOS on a NAS that forces HTTPS): it is reported as
//! [`ConnectError::Redirected`], or followed once (`http(s)` mapped to
//! `ws(s)`) when [`LinkOptions::follow_redirect`] is set — but only to the
//! same host, never from `wss` down to `ws`, and to another port only when
//! the scheme goes up from `ws` to `wss` ([`ConnectError::RedirectRefused`]
//! otherwise). The access-code cookie is never carried across a redirect:
//! the new origin is asked for its own. A 401 carrying
//! `X-Trim-Safe-Code-Challenge` is the access-code gate: with
//! [`LinkOptions::access_code`] set, `GET /access_code_verify` fetches the
//! cookie and the upgrade is repeated with it.
//!
//! After the upgrade the link hands its stream, its open client and the
//! bytes that came with the 101 to a `Pump` (`pump.rs`), the
//! runtime's one driving loop, which starts a session on them.
//! [`describe_closed`] names how a connection ended, with the close code
//! and, for a fault of the server, the RFC 6455 rule it broke.

use std::sync::OnceLock;
use std::time::Duration as StdDuration;

use naslink_core::fnos::http as fnos_http;
use naslink_core::random::Entropy;
use naslink_core::time::Instant;
use naslink_core::ws::{self, Client, Closed, Event, ProtocolError};
use rustls_pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use zeroize::Zeroizing;

use crate::http;
use crate::tls::{Trust, TrustError};

/// Milliseconds since the process's first use of the clock, as the core
/// counts time.
pub fn now() -> Instant {
    static START: OnceLock<std::time::Instant> = OnceLock::new();
    let start = START.get_or_init(std::time::Instant::now);
    Instant::from_millis(start.elapsed().as_millis() as u64)
}

/// The core's `Instant` back as a tokio deadline.
pub(crate) fn deadline(at: Instant) -> tokio::time::Instant {
    let ahead = at.total_millis().saturating_sub(now().total_millis());
    tokio::time::Instant::now() + StdDuration::from_millis(ahead)
}

/// Seconds since the UNIX epoch (fnOS reqids carry them).
pub fn unix_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Randomness seeded by the operating system: rand's thread-local
/// ChaCha12 generator, reseeded from the OS, so that a frame mask costs no
/// system call (drawing every mask from the OS took a `getrandom` call per
/// frame). Login keys and IVs come from the same cryptographic generator.
#[derive(Debug, Clone, Copy, Default)]
pub struct OsEntropy;

impl Entropy for OsEntropy {
    fn fill_bytes(&mut self, dest: &mut [u8]) {
        rand::RngCore::fill_bytes(&mut rand::thread_rng(), dest);
    }
}

/// How to reach the server.
#[derive(Clone, Default)]
pub struct LinkOptions {
    /// Certificate trust for `wss://`.
    pub trust: Trust,
    /// Follow an HTTPS redirect of the upgrade instead of reporting it:
    /// only to the same host, never `wss` to `ws`, another port only on the
    /// way up from `ws` to `wss`.
    pub follow_redirect: bool,
    /// The access code for fnOS's access-code gate (never printed by
    /// `Debug`; sent only to the WebSocket's own host).
    pub access_code: Option<String>,
    /// Limit for TCP connect, TLS and the upgrade together.
    pub connect_timeout: Option<StdDuration>,
    /// The largest message received whole (bytes).
    pub receive_buffer: usize,
}

impl std::fmt::Debug for LinkOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LinkOptions")
            .field("trust", &self.trust)
            .field("follow_redirect", &self.follow_redirect)
            .field(
                "access_code",
                &self.access_code.as_ref().map(|_| "<hidden>"),
            )
            .field("connect_timeout", &self.connect_timeout)
            .field("receive_buffer", &self.receive_buffer)
            .finish()
    }
}

/// Why a connection could not be opened.
#[derive(Debug)]
pub enum ConnectError {
    /// The URL is not a usable `ws://`/`wss://` URL.
    Url(ws::UrlError),
    /// The TLS configuration could not be built.
    Trust(TrustError),
    /// TCP connect failed (refused, unreachable, name not found).
    Tcp(std::io::Error),
    /// The TLS handshake failed (certificate refused, pin mismatch...).
    Tls(std::io::Error),
    /// The server answered the upgrade with a redirect.
    Redirected {
        /// HTTP status (301–308).
        status: u16,
        /// The `Location` header.
        location: String,
    },
    /// A redirect was not followed because it leads somewhere a
    /// credential must not go (another host, `wss` down to `ws`, another
    /// port without the step up to TLS).
    RedirectRefused {
        /// The `Location` header.
        location: String,
        /// Which rule it breaks.
        why: &'static str,
    },
    /// The server requires an access code and none (or a wrong one) was given.
    AccessCodeRequired,
    /// The server answered the upgrade with another status.
    Rejected(u16),
    /// The upgrade failed (bad answer, timeout, connection closed).
    Handshake(String),
    /// The connection did not open within the configured time.
    TimedOut,
}

impl std::fmt::Display for ConnectError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ConnectError::Url(e) => write!(f, "invalid WebSocket URL: {}", describe_url_error(*e)),
            ConnectError::Trust(e) => write!(f, "TLS setup: {e}"),
            ConnectError::Tcp(e) => write!(f, "cannot connect: {e}"),
            ConnectError::Tls(e) => write!(f, "TLS handshake failed: {e}"),
            ConnectError::Redirected { status, location } => write!(
                f,
                "the server redirects to {location} (HTTP {status}); it probably forces HTTPS: \
                 use that address with wss://, or ask to follow redirects"
            ),
            ConnectError::RedirectRefused { location, why } => {
                write!(
                    f,
                    "the server redirects to {location}, which was not followed: {why}"
                )
            }
            ConnectError::AccessCodeRequired => {
                f.write_str("the server requires an access code (missing or wrong)")
            }
            ConnectError::Rejected(status) => {
                write!(
                    f,
                    "the server refused the WebSocket upgrade (HTTP {status})"
                )
            }
            ConnectError::Handshake(why) => write!(f, "WebSocket upgrade failed: {why}"),
            ConnectError::TimedOut => f.write_str(
                "the connection (TCP, TLS and the WebSocket upgrade) did not open within the \
                 connect timeout",
            ),
        }
    }
}

impl std::error::Error for ConnectError {}

/// A byte stream: TCP or TLS over TCP.
pub(crate) trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

/// The WebSocket transmit buffer: requests and upload frames are queued
/// (and written by the sessions straight into) it.
pub(crate) const TRANSMIT_BUFFER: usize = 256 * 1024;

/// How long one write may make no progress before the connection counts
/// as dead (a server that stops reading must not hold the driver forever).
const WRITE_STALL: StdDuration = StdDuration::from_secs(30);

/// The core's WebSocket client as this runtime holds it.
pub(crate) type WsClient = Client<Vec<u8>, OsEntropy>;

/// A WebSocket connection whose upgrade succeeded, ready for a
/// `Pump` (`pump.rs`).
pub struct Link {
    stream: Box<dyn Io>,
    ws: Client<Vec<u8>, OsEntropy>,
    /// Bytes read after the 101 (the first frames, or garbage).
    input: Vec<u8>,
}

impl std::fmt::Debug for Link {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Link")
            .field("state", &self.ws.state())
            .finish_non_exhaustive()
    }
}

/// How the upgrade ended when it did not open.
enum Refusal {
    Redirect(u16, String),
    AccessGate,
    Status(u16),
}

impl Link {
    /// Connect to `url` and complete the WebSocket upgrade.
    pub async fn open(url: &str, options: &LinkOptions) -> Result<Link, ConnectError> {
        let limit = options
            .connect_timeout
            .unwrap_or(StdDuration::from_secs(15));
        tokio::time::timeout(limit, Self::open_inner(url, options))
            .await
            .map_err(|_| ConnectError::TimedOut)?
    }

    async fn open_inner(url: &str, options: &LinkOptions) -> Result<Link, ConnectError> {
        let mut url = url.to_owned();
        let mut cookie: Option<Zeroizing<String>> = None;
        let mut redirected = false;
        // One redirect and one access-code round per origin at most: loops
        // end here.
        for _ in 0..4 {
            let headers: Vec<(&str, &str)> =
                cookie.iter().map(|c| ("Cookie", c.as_str())).collect();
            match Self::attempt(&url, options, &headers).await? {
                Ok(link) => return Ok(link),
                Err(Refusal::Redirect(status, location)) => {
                    if !options.follow_redirect || redirected {
                        return Err(ConnectError::Redirected { status, location });
                    }
                    let next = redirect_target(&location, &url).ok_or_else(|| {
                        ConnectError::Redirected {
                            status,
                            location: location.clone(),
                        }
                    })?;
                    if let Err(why) = may_follow(&url, &next) {
                        return Err(ConnectError::RedirectRefused { location, why });
                    }
                    tracing::info!(status, %location, "following the upgrade's redirect");
                    url = next;
                    redirected = true;
                    // The cookie belongs to the old origin: ask the new one.
                    cookie = None;
                }
                Err(Refusal::AccessGate) => {
                    let code = match (&options.access_code, &cookie) {
                        (Some(code), None) => code,
                        _ => return Err(ConnectError::AccessCodeRequired),
                    };
                    let origin = ws::Url::parse(&url).map_err(ConnectError::Url)?;
                    cookie = Some(Self::verify_access_code(&origin, options, code).await?);
                }
                Err(Refusal::Status(status)) => return Err(ConnectError::Rejected(status)),
            }
        }
        Err(ConnectError::Handshake("too many redirects".into()))
    }

    pub(crate) async fn stream(
        url: &ws::Url<'_>,
        options: &LinkOptions,
    ) -> Result<Box<dyn Io>, ConnectError> {
        let host = url.host.trim_start_matches('[').trim_end_matches(']');
        let tcp = TcpStream::connect((host, url.port))
            .await
            .map_err(ConnectError::Tcp)?;
        let _ = tcp.set_nodelay(true);
        if !url.secure {
            return Ok(Box::new(tcp));
        }
        let config = options.trust.client_config().map_err(ConnectError::Trust)?;
        let name = ServerName::try_from(host.to_owned())
            .map_err(|e| ConnectError::Handshake(format!("server name {host}: {e}")))?;
        let tls = TlsConnector::from(config)
            .connect(name, tcp)
            .await
            .map_err(ConnectError::Tls)?;
        Ok(Box::new(tls))
    }

    async fn attempt(
        url_text: &str,
        options: &LinkOptions,
        headers: &[(&str, &str)],
    ) -> Result<Result<Link, Refusal>, ConnectError> {
        let url = ws::Url::parse(url_text).map_err(ConnectError::Url)?;
        let stream = Self::stream(&url, options).await?;
        let rx = options.receive_buffer.max(64 * 1024);
        let ws = Client::connect(
            now(),
            &url,
            headers,
            ws::Config::default(),
            OsEntropy,
            vec![0; rx],
            vec![0; TRANSMIT_BUFFER],
        )
        .map_err(|e| ConnectError::Handshake(describe_request_error(e)))?;
        let mut link = Link {
            stream,
            ws,
            input: Vec::new(),
        };
        loop {
            link.flush().await;
            match link.handshake_outcome() {
                // Frames sent along with the 101 (or garbage) stay in
                // `input` for the pump, which looks at them at once.
                Some(Ok(())) => return Ok(Ok(link)),
                Some(Err(Ok(refusal))) => return Ok(Err(refusal)),
                Some(Err(Err(e))) => return Err(e),
                None => {}
            }
            let wait = link.ws.poll_timeout().map(deadline);
            tokio::select! {
                read = link.read() => if read == 0 { link.ws.handle_eof(now()) },
                () = sleep_until(wait) => link.ws.handle_timeout(now()),
            }
        }
    }

    /// Feed buffered input and look at the first handshake event.
    fn handshake_outcome(&mut self) -> Option<Result<(), Result<Refusal, ConnectError>>> {
        let used = self.ws.handle_input(now(), &self.input);
        self.input.drain(..used);
        match self.ws.poll_event()? {
            Event::Connected => Some(Ok(())),
            Event::Rejected(response) => {
                let status = response.status();
                if response.is_redirect() {
                    let location = response.location().unwrap_or_default().to_owned();
                    Some(Err(Ok(Refusal::Redirect(status, location))))
                } else if fnos_http::is_access_challenge(status, |name| {
                    response.header(name).is_some()
                }) {
                    Some(Err(Ok(Refusal::AccessGate)))
                } else {
                    Some(Err(Ok(Refusal::Status(status))))
                }
            }
            Event::Closed(c) => Some(Err(Err(ConnectError::Handshake(describe_upgrade_end(c))))),
            _ => None,
        }
    }

    /// Trade the access code for its cookie on `url`'s own host (the
    /// request and the answer's rules are the core's, `fnos::http`);
    /// returns the cookie pair (wiped from memory when dropped, as is the
    /// request carrying the encoded code).
    pub(crate) async fn verify_access_code(
        url: &ws::Url<'_>,
        options: &LinkOptions,
        code: &str,
    ) -> Result<Zeroizing<String>, ConnectError> {
        let request = http::written(|out| fnos_http::write_access_code_request(url, code, out))
            .map_err(ConnectError::Tcp)?;
        let mut stream = Self::stream(url, options).await?;
        http::send(&mut stream, &request)
            .await
            .map_err(ConnectError::Tcp)?;
        // A garbled or missing answer is a refusal; a broken socket is not.
        let response = http::Response::read(stream)
            .await
            .map_err(|e| match e.kind() {
                std::io::ErrorKind::InvalidData | std::io::ErrorKind::UnexpectedEof => {
                    ConnectError::AccessCodeRequired
                }
                _ => ConnectError::Tcp(e),
            })?;
        let set_cookie = response.head.header("set-cookie").map(str::as_bytes);
        fnos_http::access_cookie(response.head.status, set_cookie)
            .map(|cookie| Zeroizing::new(cookie.as_str().to_owned()))
            .map_err(|_| ConnectError::AccessCodeRequired)
    }

    /// Wait for bytes of the upgrade answer; returns how many (0 at end of
    /// stream).
    async fn read(&mut self) -> usize {
        self.input.reserve(4096);
        match self.stream.read_buf(&mut self.input).await {
            Ok(n) => n,
            Err(e) => {
                tracing::debug!(error = %e, "read failed");
                0
            }
        }
    }

    /// The stream, the open client and the bytes already read after the
    /// 101, for a `Pump` (`pump.rs`) to carry on with.
    pub(crate) fn into_parts(self) -> (Box<dyn Io>, WsClient, Vec<u8>) {
        (self.stream, self.ws, self.input)
    }

    /// Write the upgrade request. A write that fails, or makes no
    /// progress for 30 s, ends the attempt.
    async fn flush(&mut self) {
        while let Some(bytes) = self.ws.poll_transmit() {
            match tokio::time::timeout(WRITE_STALL, self.stream.write(bytes)).await {
                Ok(Ok(n)) if n > 0 => self.ws.advance_transmit(n),
                Ok(Ok(_)) => return self.write_failed("the connection accepts no more bytes"),
                Ok(Err(e)) => return self.write_failed(&e.to_string()),
                Err(_) => return self.write_failed("the server stopped reading"),
            }
        }
        let _ = tokio::time::timeout(WRITE_STALL, self.stream.flush()).await;
    }

    fn write_failed(&mut self, why: &str) {
        tracing::debug!(error = why, "write failed");
        self.ws.handle_eof(now());
    }
}

/// Sleep until `at`, or forever without a deadline.
pub(crate) async fn sleep_until(at: Option<tokio::time::Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// How a connection ended, in words: the close code and, for a fault of
/// the server, the RFC 6455 rule it broke.
pub fn describe_closed(closed: Closed) -> String {
    match closed {
        Closed::Clean { code: Some(code) } => {
            format!("the server closed the connection (WebSocket close {code})")
        }
        Closed::Clean { code: None } => {
            "the server closed the connection (WebSocket close without a code)".into()
        }
        Closed::Failed(ws::Error::Protocol(e)) => format!(
            "the server broke the WebSocket protocol (closed with {}: {e}, {})",
            e.close_code(),
            rule(e)
        ),
        Closed::Failed(ws::Error::Handshake(e)) => format!("WebSocket upgrade failed: {e}"),
        Closed::TimedOut => "the WebSocket handshake or close timed out".into(),
        Closed::Abnormal => "the connection was cut (no WebSocket close)".into(),
    }
}

/// Why the upgrade ended without a connection, in words (the caller
/// already says it was the upgrade).
fn describe_upgrade_end(closed: Closed) -> String {
    match closed {
        Closed::Failed(ws::Error::Handshake(e)) => e.to_string(),
        Closed::TimedOut => format!(
            "the answer to the upgrade request did not complete within {} s",
            ws::Config::default().handshake_timeout.total_millis() as f64 / 1000.0
        ),
        Closed::Abnormal => "the server closed the connection during the upgrade".into(),
        other => describe_closed(other),
    }
}

/// Server text made safe for a terminal: control characters escaped.
pub(crate) fn printable(text: &str) -> String {
    text.chars()
        .flat_map(char::escape_default)
        .collect::<String>()
}

/// The RFC 6455 section a server fault breaks.
fn rule(e: ProtocolError) -> &'static str {
    match e {
        ProtocolError::MaskedFrame => "RFC 6455 5.1",
        ProtocolError::ReservedBits(_)
        | ProtocolError::ReservedOpcode(_)
        | ProtocolError::LengthMsbSet => "RFC 6455 5.2",
        ProtocolError::UnexpectedContinuation | ProtocolError::UnfinishedMessage => "RFC 6455 5.4",
        ProtocolError::FragmentedControlFrame | ProtocolError::ControlFrameTooLong(_) => {
            "RFC 6455 5.5"
        }
        ProtocolError::CloseFrameTooShort => "RFC 6455 5.5.1",
        ProtocolError::InvalidCloseCode(_) => "RFC 6455 7.4",
        ProtocolError::InvalidUtf8 => "RFC 6455 8.1",
        ProtocolError::MessageTooBig { .. } => "RFC 6455 7.4.1, code 1009",
    }
}

/// A URL refusal in words.
fn describe_url_error(e: ws::UrlError) -> &'static str {
    match e {
        ws::UrlError::UnsupportedScheme => "the scheme must be ws:// or wss://",
        ws::UrlError::MissingHost => "no host name",
        ws::UrlError::UserInfo => "user:password@ is not allowed in a WebSocket URL",
        ws::UrlError::InvalidPort => "the port must be a number from 1 to 65535",
        ws::UrlError::Fragment => "a WebSocket URL has no #fragment",
        ws::UrlError::InvalidCharacter => "it contains whitespace or control characters",
    }
}

/// Why the core could not start the upgrade, in words.
fn describe_request_error(e: ws::ConnectError) -> String {
    match e {
        ws::ConnectError::Request(ws::handshake::RequestError::InsufficientSize(_)) => {
            "the upgrade request (URL and headers) is too long".into()
        }
        ws::ConnectError::Request(ws::handshake::RequestError::InvalidHeader) => {
            "a header of the upgrade request contains a line break".into()
        }
        ws::ConnectError::Request(ws::handshake::RequestError::ReservedHeader) => {
            "a header of the upgrade request is one the handshake sets itself".into()
        }
        ws::ConnectError::ReceiveBufferTooSmall => "the receive buffer is too small".into(),
    }
}

/// Whether a credential may follow from `current` to `next` (both
/// WebSocket URLs): the core's rule (`fnos::http::check_redirect`), the
/// refusal in words.
pub(crate) fn may_follow(current: &str, next: &str) -> Result<(), &'static str> {
    let from = ws::Url::parse(current).map_err(|_| "the current address is not a WebSocket URL")?;
    let to = ws::Url::parse(next).map_err(|_| "it is not a usable http(s) or ws(s) URL")?;
    fnos_http::check_redirect(&from, &to).map_err(|why| why.why())
}

/// Map a redirect's `Location` (`https://host:5667/websocket?type=main`)
/// to a WebSocket URL; a relative location keeps the current origin.
fn redirect_target(location: &str, current: &str) -> Option<String> {
    if let Some(rest) = location.strip_prefix("https://") {
        Some(format!("wss://{rest}"))
    } else if let Some(rest) = location.strip_prefix("http://") {
        Some(format!("ws://{rest}"))
    } else if location.starts_with("wss://") || location.starts_with("ws://") {
        Some(location.to_owned())
    } else if location.starts_with('/') {
        let (scheme, rest) = current.split_once("://")?;
        let authority = rest.split('/').next()?;
        Some(format!("{scheme}://{authority}{location}"))
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redirects_stay_on_the_host_and_never_step_down_from_tls() {
        let ws = "ws://nas:5666/websocket";
        assert_eq!(may_follow(ws, "wss://nas:5667/websocket"), Ok(()));
        assert_eq!(may_follow(ws, "ws://NAS:5666/other"), Ok(()));
        assert_eq!(may_follow("wss://nas/x", "wss://nas:443/y"), Ok(()));
        assert!(may_follow(ws, "wss://evil:5667/websocket").is_err());
        assert!(may_follow(ws, "ws://nas:8080/websocket").is_err());
        assert!(may_follow("wss://nas:5667/x", "ws://nas:5667/x").is_err());
        assert!(may_follow("wss://nas:5667/x", "wss://nas.evil:5667/x").is_err());
    }

    #[test]
    fn debug_of_link_options_hides_the_access_code() {
        let options = LinkOptions {
            access_code: Some("s3cr3t-code".into()),
            ..LinkOptions::default()
        };
        let text = format!("{options:?}");
        assert!(!text.contains("s3cr3t-code"), "{text}");
        assert!(text.contains("<hidden>"), "{text}");
    }

    #[test]
    fn a_protocol_fault_is_named_with_its_code_and_rule() {
        let text = describe_closed(Closed::Failed(ws::Error::Protocol(
            ProtocolError::MaskedFrame,
        )));
        assert!(text.contains("1002"), "{text}");
        assert!(text.contains("masked"), "{text}");
        assert!(text.contains("RFC 6455 5.1"), "{text}");
        let text = describe_closed(Closed::Failed(ws::Error::Protocol(
            ProtocolError::InvalidUtf8,
        )));
        assert!(text.contains("1007") && text.contains("8.1"), "{text}");
    }

    #[test]
    fn https_redirect_maps_to_wss() {
        assert_eq!(
            redirect_target(
                "https://nas:5667/websocket?type=main",
                "ws://nas:5666/websocket"
            )
            .as_deref(),
            Some("wss://nas:5667/websocket?type=main")
        );
        assert_eq!(
            redirect_target("/websocket?type=main", "ws://nas:5666/x").as_deref(),
            Some("ws://nas:5666/websocket?type=main")
        );
        assert_eq!(redirect_target("ftp://x", "ws://nas/"), None);
    }
}
