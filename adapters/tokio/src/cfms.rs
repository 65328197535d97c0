//! [`CfmsClient`]: a CFMS session in a background task.
//!
//! CFMS has no request ids: the server answers in order, and the core's
//! session matches answers first-in first-out. The task owns the socket
//! and the session; handles send requests through a channel, so many
//! tasks may have requests queued at once and each gets its own answer.
//!
//! # The task's life
//!
//! ```text
//! Connecting --open--> server_info --> login (first time; later the kept token)
//!     ^                                   |
//!     |                                   v
//!     +--- backoff with jitter <--- Ready (register_listener: lockdown pushes)
//!          link lost / desync              |
//!                                  requests FIFO, answers by seq
//! ```
//!
//! - Requests made while (re)connecting wait in a queue, each bounded by
//!   its timeout. When a connection dies, every request in flight fails
//!   with [`CfmsError::ConnectionLost`]; none is resent.
//! - A token the server rejects is replaced by the core logging in again
//!   with the stored password; the core also refreshes the token before it
//!   expires.
//! - Dropping a request future is safe: the answer still arrives in order
//!   (so the FIFO stays aligned) and is thrown away.
//!
//! Not done yet: file transfers (`upload_file`/`download_file` streamed
//! to and from files) and two-factor logins.

use std::collections::HashMap;
use std::time::Duration as StdDuration;

use futures_util::Stream;
use naslink_core::cfms::{
    self, Buffers, Event, LoginError, MessageKind, RequestError, Seq, Session,
};
use naslink_core::time::Duration;
use tokio::sync::{broadcast, mpsc, oneshot};
use zeroize::Zeroizing;

use crate::fnos::Backoff;
use crate::link::{
    ConnectError, Incoming, Link, LinkOptions, deadline, describe_closed, now, sleep_until,
};

/// Requests queued on the connection at once (the core's FIFO size).
pub const MAX_IN_FLIGHT: usize = 16;

/// The largest answer received whole (directory listings).
const RECEIVE_CAPACITY: usize = 4 * 1024 * 1024;

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
}

impl std::fmt::Debug for CfmsOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CfmsOptions")
            .field("url", &self.url)
            .field("user", &self.user)
            .field("password", &"<hidden>")
            .finish_non_exhaustive()
    }
}

impl CfmsOptions {
    /// Options with defaults: web-root TLS trust, 30 s requests, default backoff.
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
        }
    }
}

/// Why a request or the connection failed.
#[derive(Debug)]
pub enum CfmsError {
    /// The connection could not be opened.
    Connect(ConnectError),
    /// The server speaks another protocol version.
    ProtocolUnsupported(Option<u32>),
    /// The login was refused.
    LoginRefused(LoginError),
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
}

impl std::fmt::Display for CfmsError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CfmsError::Connect(e) => e.fmt(f),
            CfmsError::ProtocolUnsupported(v) => {
                write!(
                    f,
                    "the server speaks CFMS protocol {v:?}, this client 3 to 5"
                )
            }
            CfmsError::LoginRefused(e) => write!(f, "login refused: {e}"),
            CfmsError::Server { code, message, .. } => {
                write!(f, "the server refused: {message} (code {code})")
            }
            CfmsError::TimedOut => f.write_str("no answer before the request's deadline"),
            CfmsError::ConnectionLost => f.write_str(
                "the connection dropped before the answer arrived (the request was not resent)",
            ),
            CfmsError::Closed => f.write_str("the client is shut down"),
            CfmsError::Request(why) => write!(f, "cannot send the request: {why}"),
        }
    }
}

impl std::error::Error for CfmsError {}

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
}

struct Command {
    action: String,
    data: String,
    reply: oneshot::Sender<Result<serde_json::Value, CfmsError>>,
}

/// A handle to a CFMS session running in the background.
#[derive(Debug, Clone)]
pub struct CfmsClient {
    commands: mpsc::UnboundedSender<Command>,
    events: broadcast::Sender<CfmsEvent>,
    timeout: StdDuration,
    server: serde_json::Value,
}

impl CfmsClient {
    /// Connect, check the protocol version, log in, and keep the session
    /// alive in a background task. Fails if the first connection or login
    /// fails.
    pub async fn connect(options: CfmsOptions) -> Result<CfmsClient, CfmsError> {
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

    /// The first connection's `server_info` answer (`data`: `server_name`,
    /// `version`, `protocol_version`, `lockdown`).
    pub fn server_info(&self) -> &serde_json::Value {
        &self.server
    }

    /// Send `action` with `data` (a JSON object) and wait for the answer
    /// (code 200; anything else is [`CfmsError::Server`]).
    pub async fn request(
        &self,
        action: &str,
        data: &serde_json::Value,
    ) -> Result<serde_json::Value, CfmsError> {
        if !data.is_object() {
            return Err(CfmsError::Request("data must be a JSON object".into()));
        }
        let (reply, answer) = oneshot::channel();
        self.commands
            .send(Command {
                action: action.to_owned(),
                data: data.to_string(),
                reply,
            })
            .map_err(|_| CfmsError::Closed)?;
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

type Reply = oneshot::Sender<Result<serde_json::Value, CfmsError>>;

/// What the connection is waiting for before it is ready.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    ServerInfo,
    Login,
    Ready,
}

enum Ended {
    Lost(String),
    Stop,
}

struct Driver<'s> {
    session: Session<'s, MAX_IN_FLIGHT>,
    tx: Vec<u8>,
    queued: Vec<Command>,
    in_flight: HashMap<Seq, Reply>,
    events: broadcast::Sender<CfmsEvent>,
    first: Option<oneshot::Sender<Result<serde_json::Value, CfmsError>>>,
    server: serde_json::Value,
    phase: Phase,
    /// Messages written while no link was at hand, sent at the next step.
    outbox: Vec<String>,
}

fn unix_secs_f64() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

async fn drive(
    options: CfmsOptions,
    mut commands: mpsc::UnboundedReceiver<Command>,
    events: broadcast::Sender<CfmsEvent>,
    first: oneshot::Sender<Result<serde_json::Value, CfmsError>>,
) {
    let mut rx = vec![0u8; RECEIVE_CAPACITY];
    // Transfers are not driven yet; one hash slot keeps the core content.
    let mut hashes = vec![[0u8; 32]; 1];
    let config = cfms::Config {
        request_timeout: Duration::from_millis(options.request_timeout.as_millis() as u64),
        ..cfms::Config::default()
    };
    let mut driver = Driver {
        session: Session::new(
            config,
            Buffers {
                rx: &mut rx,
                chunk_hashes: &mut hashes,
            },
        ),
        tx: vec![0; 256 * 1024],
        queued: Vec::new(),
        in_flight: HashMap::new(),
        events,
        first: Some(first),
        server: serde_json::Value::Null,
        phase: Phase::ServerInfo,
        outbox: Vec::new(),
    };
    let mut attempt: u32 = 0;
    loop {
        match Link::open(&options.url, &options.link).await {
            Ok(link) => {
                tracing::info!("connected");
                driver.session.set_unix_time(now(), unix_secs_f64());
                match driver.run(link, &options, &mut commands).await {
                    Ended::Stop => return,
                    Ended::Lost(reason) => {
                        tracing::warn!(%reason, "connection lost");
                        let _ = driver.events.send(CfmsEvent::Disconnected { reason });
                        attempt = 0;
                    }
                }
            }
            Err(e) => {
                if let Some(first) = driver.first.take() {
                    let _ = first.send(Err(CfmsError::Connect(e)));
                    return;
                }
                tracing::warn!(error = %e, "reconnect failed");
            }
        }
        attempt = attempt.saturating_add(1);
        let delay = options.backoff.delay(attempt - 1);
        let _ = driver
            .events
            .send(CfmsEvent::Reconnecting { attempt, delay });
        let wake = tokio::time::Instant::now() + delay;
        loop {
            driver.queued.retain(|c| !c.reply.is_closed());
            tokio::select! {
                () = tokio::time::sleep_until(wake) => break,
                cmd = commands.recv() => match cmd {
                    Some(cmd) => driver.queued.push(cmd),
                    None => return,
                },
            }
        }
    }
}

impl Driver<'_> {
    async fn run(
        &mut self,
        mut link: Link,
        options: &CfmsOptions,
        commands: &mut mpsc::UnboundedReceiver<Command>,
    ) -> Ended {
        self.phase = Phase::ServerInfo;
        let ended = match self.session.server_info(now(), &mut self.tx) {
            Ok(sent) => {
                self.queue_text(sent.len);
                loop {
                    if let Some(ended) = self.step(&mut link, options) {
                        break ended;
                    }
                    link.flush().await;
                    if link.is_closed() {
                        break Ended::Lost("connection closed".into());
                    }
                    let wait = [self.session.poll_timeout(), link.poll_timeout()]
                        .into_iter()
                        .flatten()
                        .min()
                        .map(deadline);
                    tokio::select! {
                        n = link.read() => {
                            if n == 0 {
                                link.handle_eof();
                            }
                            let mut incoming = Vec::new();
                            link.process(|m| incoming.push(m));
                            let mut stop = None;
                            for message in incoming {
                                let outcome = match message {
                                    Incoming::Text(t) => self.handle(MessageKind::Text, t.as_bytes(), options),
                                    Incoming::Binary(b) => self.handle(MessageKind::Binary, &b, options),
                                    Incoming::Closed(c) => Some(Ended::Lost(describe_closed(c))),
                                };
                                stop = stop.or(outcome);
                            }
                            if let Some(ended) = stop {
                                break ended;
                            }
                        }
                        cmd = commands.recv() => match cmd {
                            Some(cmd) => self.queued.push(cmd),
                            None => {
                                link.close();
                                link.flush().await;
                                break Ended::Stop;
                            }
                        },
                        () = sleep_until(wait) => {
                            self.session.handle_timeout(now());
                            link.handle_timeout();
                        }
                    }
                }
            }
            Err(e) => Ended::Lost(format!("server_info: {e:?}")),
        };
        link.close();
        link.flush().await;
        self.session.handle_disconnect(now());
        while let Some(event) = self.session.poll_event() {
            if let Event::RequestFailed { seq, .. } = event
                && let Some(reply) = self.in_flight.remove(&seq)
            {
                let _ = reply.send(Err(CfmsError::ConnectionLost));
            }
        }
        for (_, reply) in self.in_flight.drain() {
            let _ = reply.send(Err(CfmsError::ConnectionLost));
        }
        ended
    }

    /// Keep the message the session wrote into `tx` for the next step.
    fn queue_text(&mut self, len: usize) {
        match std::str::from_utf8(&self.tx[..len]) {
            Ok(text) => self.outbox.push(text.to_owned()),
            Err(_) => tracing::error!("the session wrote a non-UTF-8 message"),
        }
    }

    /// Send what the session owes and the queued requests once ready.
    fn step(&mut self, link: &mut Link, options: &CfmsOptions) -> Option<Ended> {
        loop {
            match self.session.poll_transmit(now(), &mut self.tx) {
                Ok(Some(t)) if t.kind == MessageKind::Text => self.queue_text(t.len),
                Ok(Some(_)) => tracing::warn!("binary transmit without a transfer"),
                Ok(None) => break,
                Err(e) => return Some(Ended::Lost(format!("session message: {e:?}"))),
            }
        }
        if let Some(ended) = self.drain_events(options) {
            return Some(ended);
        }
        if self.phase == Phase::Ready {
            let mut waiting = Vec::new();
            for cmd in std::mem::take(&mut self.queued) {
                if cmd.reply.is_closed() {
                    continue;
                }
                match self
                    .session
                    .request(now(), &cmd.action, cmd.data.as_bytes(), &mut self.tx)
                {
                    Ok(sent) => {
                        tracing::debug!(action = %cmd.action, seq = sent.seq.0, "request");
                        self.queue_text(sent.len);
                        self.in_flight.insert(sent.seq, cmd.reply);
                    }
                    Err(cfms::Error::QueueFull { .. }) => waiting.push(cmd),
                    Err(e) => {
                        let _ = cmd.reply.send(Err(CfmsError::Request(format!("{e:?}"))));
                    }
                }
            }
            self.queued = waiting;
        }
        for text in self.outbox.drain(..) {
            if let Err(e) = link.send_text(&text) {
                tracing::warn!(error = ?e, "send failed");
            }
        }
        None
    }

    fn handle(
        &mut self,
        kind: MessageKind,
        payload: &[u8],
        options: &CfmsOptions,
    ) -> Option<Ended> {
        let mut ignore = |_: &[u8]| {};
        match self
            .session
            .handle_message(now(), kind, payload, &mut ignore)
        {
            Ok(()) => {}
            Err(cfms::Error::Broken) => return Some(Ended::Lost("answers out of step".into())),
            Err(e) => tracing::warn!(error = ?e, "message not accepted"),
        }
        // The body of a reply is only valid until the next message: take
        // it now.
        let body = self
            .session
            .response()
            .and_then(|r| serde_json::from_slice(r.root().raw()).ok())
            .unwrap_or(serde_json::Value::Null);
        let mut pending_body = Some(body);
        while let Some(event) = self.session.poll_event() {
            if let Some(ended) = self.on_event(event, &mut pending_body, options) {
                return Some(ended);
            }
        }
        None
    }

    fn drain_events(&mut self, options: &CfmsOptions) -> Option<Ended> {
        let mut none = None;
        while let Some(event) = self.session.poll_event() {
            if let Some(ended) = self.on_event(event, &mut none, options) {
                return Some(ended);
            }
        }
        None
    }

    fn on_event(
        &mut self,
        event: Event,
        body: &mut Option<serde_json::Value>,
        options: &CfmsOptions,
    ) -> Option<Ended> {
        match event {
            Event::ServerInfo {
                seq: Some(_),
                lockdown,
                ..
            } if self.phase == Phase::ServerInfo => {
                self.server = body.take().unwrap_or_default();
                if self.session.is_logged_in() {
                    self.ready(lockdown);
                } else {
                    match self
                        .session
                        .login(now(), &options.user, &options.password, &mut self.tx)
                    {
                        Ok(sent) => {
                            self.phase = Phase::Login;
                            self.queue_text(sent.len);
                        }
                        Err(e) => return self.fail_first(CfmsError::Request(format!("{e:?}"))),
                    }
                }
            }
            Event::ProtocolUnsupported { version } => {
                return self.fail_first(CfmsError::ProtocolUnsupported(version));
            }
            Event::LoggedIn { .. } if self.phase == Phase::Login => {
                let lockdown = self.session.lockdown().unwrap_or(false);
                self.ready(lockdown);
            }
            Event::LoginFailed(e) => {
                tracing::warn!(error = %e, "login failed");
                return self.fail_first(CfmsError::LoginRefused(e));
            }
            Event::TwoFactorRequired { .. } => {
                return self.fail_first(CfmsError::Request(
                    "the account needs a two-factor code (not supported yet)".into(),
                ));
            }
            Event::Lockdown { on } => {
                let _ = self.events.send(CfmsEvent::Lockdown { on });
            }
            Event::Reply { seq, status } => {
                if let Some(reply) = self.in_flight.remove(&seq) {
                    let body = body.take().unwrap_or_default();
                    let code = status.code();
                    let result = if code == 200 {
                        Ok(body)
                    } else {
                        let message = body["message"].as_str().unwrap_or("").to_owned();
                        Err(CfmsError::Server {
                            code,
                            message,
                            body,
                        })
                    };
                    let _ = reply.send(result);
                }
            }
            Event::RequestFailed { seq, error } => {
                if let Some(reply) = self.in_flight.remove(&seq) {
                    let _ = reply.send(Err(match error {
                        RequestError::Timeout => CfmsError::TimedOut,
                        RequestError::Disconnected => CfmsError::ConnectionLost,
                        other => CfmsError::Request(format!("{other:?}")),
                    }));
                }
            }
            Event::Desynchronized(why) => {
                return Some(Ended::Lost(format!("answers out of step ({why:?})")));
            }
            other => tracing::debug!(?other, "session event"),
        }
        None
    }

    fn ready(&mut self, lockdown: bool) {
        self.phase = Phase::Ready;
        // Lockdown changes are pushed only to registered listeners.
        match self.session.register_listener(now(), &mut self.tx) {
            Ok(sent) => self.queue_text(sent.len),
            Err(e) => tracing::warn!(error = ?e, "register_listener not sent"),
        }
        if let Some(first) = self.first.take() {
            let _ = first.send(Ok(self.server.clone()));
        }
        let _ = self.events.send(CfmsEvent::Ready { lockdown });
    }

    fn fail_first(&mut self, error: CfmsError) -> Option<Ended> {
        if let Some(first) = self.first.take() {
            let _ = first.send(Err(error));
        } else {
            tracing::warn!(%error, "giving up");
        }
        for cmd in self.queued.drain(..) {
            let _ = cmd.reply.send(Err(CfmsError::Closed));
        }
        Some(Ended::Stop)
    }
}
