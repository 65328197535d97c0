//! One WebSocket connection over tokio: TCP, optional rustls, and the
//! core's sans-I/O client moving bytes between them.
//!
//! [`Link::open`] runs the upgrade. A 30x answer is an HTTPS redirect
//! (fnOS on a NAS that forces HTTPS): it is reported as
//! [`ConnectError::Redirected`], or followed once (`http(s)` mapped to
//! `ws(s)`) when [`LinkOptions::follow_redirect`] is set. A 401 carrying
//! `X-Trim-Safe-Code-Challenge` is the access-code gate: with
//! [`LinkOptions::access_code`] set, `GET /access_code_verify` fetches the
//! cookie and the upgrade is repeated with it.
//!
//! After the upgrade, [`Link::read`] (cancel-safe: it only fills a buffer)
//! and [`Link::process`] (synchronous: feeds the core, collects messages)
//! alternate; [`Link::flush`] writes what the core queued.

use std::sync::OnceLock;
use std::time::Duration as StdDuration;

use base64::Engine;
use naslink_core::random::Entropy;
use naslink_core::time::Instant;
use naslink_core::ws::{self, Client, Closed, Event};
use rustls_pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

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
#[derive(Debug, Clone, Default)]
pub struct LinkOptions {
    /// Certificate trust for `wss://`.
    pub trust: Trust,
    /// Follow an HTTPS redirect of the upgrade instead of reporting it.
    pub follow_redirect: bool,
    /// The access code for fnOS's access-code gate.
    pub access_code: Option<String>,
    /// Limit for TCP connect, TLS and the upgrade together.
    pub connect_timeout: Option<StdDuration>,
    /// The largest message received whole (bytes).
    pub receive_buffer: usize,
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
            ConnectError::Url(e) => write!(f, "invalid WebSocket URL: {e:?}"),
            ConnectError::Trust(e) => write!(f, "TLS setup: {e}"),
            ConnectError::Tcp(e) => write!(f, "cannot connect: {e}"),
            ConnectError::Tls(e) => write!(f, "TLS handshake failed: {e}"),
            ConnectError::Redirected { status, location } => write!(
                f,
                "the server redirects to {location} (HTTP {status}); it probably forces HTTPS: \
                 use that address with wss://, or ask to follow redirects"
            ),
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
            ConnectError::TimedOut => f.write_str("timed out while connecting"),
        }
    }
}

impl std::error::Error for ConnectError {}

/// A byte stream: TCP or TLS over TCP.
pub(crate) trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

/// What arrived on an open link.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Incoming {
    /// A text message.
    Text(String),
    /// A binary message.
    Binary(Vec<u8>),
    /// The connection is over.
    Closed(Closed),
}

/// An open WebSocket connection.
pub struct Link {
    stream: Box<dyn Io>,
    ws: Client<Vec<u8>, OsEntropy>,
    input: Vec<u8>,
    closed: bool,
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
        let mut cookie: Option<String> = None;
        // One redirect and one access-code round at most: loops end here.
        for _ in 0..3 {
            let headers: Vec<(&str, &str)> =
                cookie.iter().map(|c| ("Cookie", c.as_str())).collect();
            match Self::attempt(&url, options, &headers).await? {
                Ok(link) => return Ok(link),
                Err(Refusal::Redirect(status, location)) => {
                    if !options.follow_redirect {
                        return Err(ConnectError::Redirected { status, location });
                    }
                    tracing::info!(status, %location, "following the upgrade's redirect");
                    url = redirect_target(&location, &url)
                        .ok_or(ConnectError::Redirected { status, location })?;
                }
                Err(Refusal::AccessGate) => {
                    let code = match (&options.access_code, &cookie) {
                        (Some(code), None) => code,
                        _ => return Err(ConnectError::AccessCodeRequired),
                    };
                    cookie = Some(Self::verify_access_code(&url, options, code).await?);
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
            vec![0; 256 * 1024],
        )
        .map_err(|e| ConnectError::Handshake(format!("{e:?}")))?;
        let mut link = Link {
            stream,
            ws,
            input: Vec::new(),
            closed: false,
        };
        loop {
            link.flush().await;
            match link.handshake_outcome() {
                Some(Ok(())) => return Ok(Ok(link)),
                Some(Err(Ok(refusal))) => return Ok(Err(refusal)),
                Some(Err(Err(e))) => return Err(e),
                None => {}
            }
            let wait = link.poll_timeout().map(deadline);
            tokio::select! {
                read = link.read() => if read == 0 { link.ws.handle_eof() },
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
                } else if status == 401 && response.header("X-Trim-Safe-Code-Challenge").is_some() {
                    Some(Err(Ok(Refusal::AccessGate)))
                } else {
                    Some(Err(Ok(Refusal::Status(status))))
                }
            }
            Event::Closed(c) => Some(Err(Err(ConnectError::Handshake(describe_closed(c))))),
            _ => None,
        }
    }

    /// `GET /access_code_verify` on the same host; returns the cookie pair.
    pub(crate) async fn verify_access_code(
        url_text: &str,
        options: &LinkOptions,
        code: &str,
    ) -> Result<String, ConnectError> {
        let url = ws::Url::parse(url_text).map_err(ConnectError::Url)?;
        let mut stream = Self::stream(&url, options).await?;
        let encoded = base64::engine::general_purpose::STANDARD.encode(code.as_bytes());
        let headers = [
            ("x-access-code", encoded.as_str()),
            ("x-access-source", "web"),
        ];
        http::write_head(
            &mut stream,
            "GET",
            "/access_code_verify",
            &http::host_header(&url),
            &headers,
        )
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
        let cookie = response
            .head
            .header("set-cookie")
            .and_then(|v| v.split(';').next())
            .map(str::trim);
        match cookie {
            Some(c) if response.head.status == 200 && !c.is_empty() => Ok(c.to_owned()),
            _ => Err(ConnectError::AccessCodeRequired),
        }
    }

    /// Wait for bytes from the server and buffer them; returns how many
    /// (0 at end of stream). Cancel-safe.
    pub async fn read(&mut self) -> usize {
        if self.closed {
            std::future::pending::<()>().await;
        }
        // Straight into the input buffer: no zeroed scratch array, no copy.
        self.input.reserve(32 * 1024);
        match self.stream.read_buf(&mut self.input).await {
            Ok(n) => n,
            Err(e) => {
                tracing::debug!(error = %e, "read failed");
                0
            }
        }
    }

    /// Note an end of stream from [`read`](Self::read).
    pub fn handle_eof(&mut self) {
        self.ws.handle_eof();
    }

    /// Feed buffered input to the client and hand each message to `sink`.
    pub fn process(&mut self, mut sink: impl FnMut(Incoming)) {
        loop {
            let used = self.ws.handle_input(now(), &self.input);
            self.input.drain(..used);
            let mut progressed = used > 0;
            while let Some(event) = self.ws.poll_event() {
                progressed = true;
                match event {
                    Event::Text(t) => sink(Incoming::Text(t.to_owned())),
                    Event::Binary(b) => sink(Incoming::Binary(b.to_vec())),
                    Event::Closed(c) => {
                        self.closed = true;
                        sink(Incoming::Closed(c));
                    }
                    // Pings are answered by the core; the rest needs nothing.
                    _ => {}
                }
            }
            if self.input.is_empty() || !progressed {
                break;
            }
        }
    }

    /// The core's next deadline (handshake, close).
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.ws.poll_timeout()
    }

    /// Run the core's timers.
    pub fn handle_timeout(&mut self) {
        self.ws.handle_timeout(now());
    }

    /// Queue a text message (call [`flush`](Self::flush) afterwards).
    pub fn send_text(&mut self, text: &str) -> Result<(), ws::SendError> {
        self.ws.send_text(text)
    }

    /// Queue a binary message (call [`flush`](Self::flush) afterwards).
    pub fn send_binary(&mut self, data: &[u8]) -> Result<(), ws::SendError> {
        self.ws.send_binary(data)
    }

    /// Start one binary message of exactly `len` bytes whose payload
    /// follows with [`send_binary_part`](Self::send_binary_part): an
    /// upload frame never has to fit in memory or in the transmit buffer.
    pub fn begin_binary(&mut self, len: u64) -> Result<(), ws::SendError> {
        self.ws.begin_binary(len)
    }

    /// Queue the next piece of the message started with
    /// [`begin_binary`](Self::begin_binary); returns how many bytes were
    /// taken (0 when the transmit buffer is full: flush, then retry).
    pub fn send_binary_part(&mut self, data: &[u8]) -> Result<usize, ws::SendError> {
        self.ws.send_binary_part(data)
    }

    /// Queue a ping (a keep-alive probe; any answer shows the link lives).
    pub fn send_ping(&mut self) -> Result<(), ws::SendError> {
        self.ws.send_ping(b"naslink")
    }

    /// Start a clean close with code 1000.
    pub fn close(&mut self) {
        let _ = self.ws.close(now(), ws::CloseCode::NORMAL, "");
    }

    /// Whether the connection is over.
    pub fn is_closed(&self) -> bool {
        self.closed
    }

    /// Write everything the client queued.
    pub async fn flush(&mut self) {
        while let Some(bytes) = self.ws.poll_transmit() {
            let n = bytes.len();
            if let Err(e) = self.stream.write_all(bytes).await {
                tracing::debug!(error = %e, "write failed");
                self.ws.handle_eof();
                return;
            }
            self.ws.advance_transmit(n);
        }
        let _ = self.stream.flush().await;
    }
}

/// Sleep until `at`, or forever without a deadline.
pub(crate) async fn sleep_until(at: Option<tokio::time::Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// How a connection ended, in words.
pub fn describe_closed(closed: Closed) -> String {
    match closed {
        Closed::Clean { code } => format!("closed by the server (code {code:?})"),
        Closed::Failed(e) => format!("protocol error: {e:?}"),
        Closed::TimedOut => "timed out".into(),
        Closed::Abnormal => "connection lost".into(),
    }
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
    use super::redirect_target;

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
