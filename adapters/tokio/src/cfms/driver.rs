//! The connection task: the core's `Connection<cfms::Session>` on the
//! runtime's [`Pump`], one link at a time, requests in, answers and events
//! out, reconnecting with backoff.
//!
//! ```text
//! drive: open link ──► Pump::new(link, session) ──► run ──► Ended::Lost ──► backoff ──┐
//!          ▲                                          │ Ended::Stop                   │
//!          └──────────────────────────────────────────┼───────────────────────────────┘
//! run:   drain events (answers to handles by Seq, transfer events, the
//!          opening sequence's outcome) ──► send queued jobs once Ready ──► feed
//!          the upload ──► flush ──► select!(read, job, timer, two-factor code)
//! ```
//!
//! The task keeps no protocol rule: the opening sequence (`server_info`,
//! login, two-factor, listener), request deadlines and transfers are the
//! session's. The task keeps the first connect's limits, the keep-alive,
//! and the deadline of each opening step (so that a silent server fails
//! the connect with the step's name).

use std::collections::HashMap;
use std::time::Duration as StdDuration;

use naslink_core::backoff::Attempts;
use naslink_core::cfms::{
    self, Buffers, Credentials, DownloadError, LoginError, RequestError, Seq, Session, State,
    UploadError,
};
use naslink_core::connection::{self, Event};
use naslink_core::time::Duration;
use tokio::sync::{broadcast, mpsc, oneshot};
use zeroize::Zeroizing;

use super::files::{read_blocks, write_blocks};
use super::transfer::{
    ActiveDownload, ActiveUpload, DISK_BLOCK, DISK_QUEUE, DownloadJob, UploadJob,
};
use super::{
    CfmsError, CfmsEvent, CfmsOptions, MAX_CHUNKS, MAX_IN_FLIGHT, RECEIVE_CAPACITY, ServerInfo,
};
use crate::link::{Link, deadline, now};
use crate::pump::Pump;
use crate::two_factor::CodeWait;

/// The pump of one CFMS connection; it owns the session while open.
pub(super) type CfmsPump<'s> = Pump<Session<'s, MAX_IN_FLIGHT>>;

pub(super) struct Command {
    pub(super) ask: Ask,
    pub(super) reply: Reply,
    /// Idempotent requests: sent again after a reconnect until then.
    pub(super) resend_until: Option<tokio::time::Instant>,
    /// Already sent again after a stale-timestamp refusal (1001): a second
    /// refusal is the caller's news.
    pub(super) replayed: bool,
}

/// What a request asks.
pub(super) enum Ask {
    /// An action and its `data` object as text; it may hold a password
    /// (`set_passwd`), so it is wiped when dropped.
    Action(String, Zeroizing<String>),
    /// The server's information (the session's `ask_server`).
    Server,
}

/// Where a request's answer goes.
pub(super) enum Reply {
    /// The answer's whole body.
    Body(oneshot::Sender<Result<serde_json::Value, CfmsError>>),
    /// The server's information.
    Server(oneshot::Sender<Result<ServerInfo, CfmsError>>),
}

impl Reply {
    pub(super) fn is_closed(&self) -> bool {
        match self {
            Reply::Body(tx) => tx.is_closed(),
            Reply::Server(tx) => tx.is_closed(),
        }
    }

    pub(super) fn fail(self, error: CfmsError) {
        match self {
            Reply::Body(tx) => drop(tx.send(Err(error))),
            Reply::Server(tx) => drop(tx.send(Err(error))),
        }
    }
}

/// A request whose answer is awaited.
pub(super) struct InFlight {
    pub(super) reply: Reply,
    /// The request itself: sent again after a stale-timestamp refusal,
    /// and after a reconnect when idempotent.
    pub(super) ask: Ask,
    /// Idempotent: sent again after a reconnect until then.
    pub(super) resend_until: Option<tokio::time::Instant>,
    /// Already sent again after a stale-timestamp refusal.
    pub(super) replayed: bool,
}

pub(super) enum Job {
    Request(Command),
    Download(DownloadJob),
    Upload(UploadJob),
}

impl Job {
    pub(super) fn abandoned(&self) -> bool {
        match self {
            Job::Request(c) => c.reply.is_closed(),
            Job::Download(d) => d.reply.is_closed(),
            Job::Upload(u) => u.reply.is_closed(),
        }
    }

    pub(super) fn fail(self, error: CfmsError) {
        match self {
            Job::Request(c) => c.reply.fail(error),
            Job::Download(d) => {
                let _ = d.reply.send(Err(error));
            }
            Job::Upload(u) => {
                let _ = u.reply.send(Err(error));
            }
        }
    }
}

pub(super) enum Ended {
    /// The link broke or the stream went out of step: reconnect.
    Lost(String),
    /// A step before the login's success got no answer in time.
    Setup(CfmsError),
    /// The client is shut down, or its first connection failed for good.
    Stop,
}

/// What handling one event leaves to do once the event (which borrows the
/// pump) is gone.
enum Step {
    Nothing,
    End(Ended),
    /// A download's last chunk and key arrived: the chunk hashes are read
    /// from the session.
    Downloaded(Seq, cfms::DownloadKey),
    /// A protocol-13 chunk arrived whole: its seal is read from the
    /// session and recorded in the resumable partial.
    Chunk(Seq, u32, u32),
}

/// Timers of the connection task that the core does not keep: the
/// deadline of the opening step under way, and the keep-alive.
#[derive(Debug, Default)]
pub(super) struct Clock {
    /// The first connect and login must end by then (`None` once logged in).
    pub(super) connect_by: Option<tokio::time::Instant>,
    /// The current opening step (`server_info`, login) times out then.
    pub(super) step_until: Option<tokio::time::Instant>,
    /// How long the current opening step may take (for the message).
    pub(super) step_limit: StdDuration,
    /// Since when a two-factor code is awaited (that wait does not count).
    pub(super) code_since: Option<tokio::time::Instant>,
    /// The next keep-alive ping (or the verdict on the last one).
    pub(super) ping_at: Option<tokio::time::Instant>,
    /// A ping is out and nothing arrived since it was sent.
    pub(super) ping_unanswered: bool,
}

pub(super) struct Driver<'s> {
    /// The session between connections; while one is open its pump has it.
    session: Option<Session<'s, MAX_IN_FLIGHT>>,
    pub(super) queued: Vec<Job>,
    pub(super) in_flight: HashMap<Seq, InFlight>,
    pub(super) download: Option<ActiveDownload>,
    pub(super) upload: Option<ActiveUpload>,
    pub(super) events: broadcast::Sender<CfmsEvent>,
    pub(super) first: Option<oneshot::Sender<Result<ServerInfo, CfmsError>>>,
    /// What the server said about itself when this connection opened.
    pub(super) server: ServerInfo,
    /// The session's opening state as last seen (a change starts the
    /// next step's deadline).
    pub(super) phase: State,
    pub(super) code: CodeWait,
    pub(super) clock: Clock,
    /// This connection reached a successful login (the backoff restarts).
    pub(super) logged_in: bool,
    pub(super) request_timeout: StdDuration,
    pub(super) keepalive: Option<StdDuration>,
    /// A request waits for room in the transmit buffer: flush, then retry.
    stalled: bool,
    /// The protocol-13 probe just ended with the server closing the
    /// connection (a 3–5 server): reconnect at once, speaking text.
    speak_text: bool,
    /// The wire of [`CfmsOptions::remembered_protocol_version`], while the
    /// session speaks it as a pin (`None`: pinned by the caller, found by
    /// the probe, or forgotten).
    remembered: Option<cfms::p13::Wire>,
    /// The server just contradicted the remembered version: the session
    /// forgot it; reconnect at once and negotiate.
    renegotiate: bool,
}

pub(super) fn unix_secs_f64() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

pub(super) async fn drive(
    options: CfmsOptions,
    mut commands: mpsc::UnboundedReceiver<Job>,
    events: broadcast::Sender<CfmsEvent>,
    first: oneshot::Sender<Result<ServerInfo, CfmsError>>,
) {
    let login = match Credentials::new(&options.user, &options.password) {
        Ok(login) => login,
        Err(e) => {
            let why = format!("the {} is longer than {} bytes", e.field, e.max);
            let _ = first.send(Err(CfmsError::Request(why)));
            return;
        }
    };
    // A remembered version this client does not speak (a stale or edited
    // record) is no guess at all: negotiate.
    let remembered = options
        .remembered_protocol_version
        .filter(|_| options.protocol_version.is_none())
        .and_then(|v| cfms::p13::Wire::for_version(v).ok().map(|wire| (v, wire)));
    let mut rx = vec![0u8; RECEIVE_CAPACITY];
    let mut hashes = vec![[0u8; 32]; MAX_CHUNKS];
    let config = cfms::Config {
        request_timeout: Duration::from_millis(options.request_timeout.as_millis() as u64),
        upload_frame: options.upload_frame,
        login: Some(login),
        // Lockdown changes are pushed only to registered listeners (3–5;
        // at 13 every connection gets them).
        listener: true,
        // Without a pinned version the first connection probes for 13; the
        // session keeps what it found for every later connection. A
        // remembered version is spoken like a pin until the server
        // contradicts it.
        protocol_version: options.protocol_version.or(remembered.map(|(v, _)| v)),
        negotiate: true,
        ..cfms::Config::default()
    };
    let session = Session::new(
        config,
        Buffers {
            rx: &mut rx,
            chunk_hashes: &mut hashes,
        },
    );
    let mut driver = Driver {
        session: Some(session),
        queued: Vec::new(),
        in_flight: HashMap::new(),
        download: None,
        upload: None,
        events,
        first: Some(first),
        server: ServerInfo::default(),
        phase: State::Disconnected,
        code: CodeWait::new(options.two_factor.clone()),
        clock: Clock {
            connect_by: Some(tokio::time::Instant::now() + options.connect_timeout),
            ..Clock::default()
        },
        logged_in: false,
        request_timeout: options.request_timeout,
        keepalive: options.keepalive.filter(|k| !k.is_zero()),
        stalled: false,
        speak_text: false,
        remembered: remembered.map(|(_, wire)| wire),
        renegotiate: false,
    };
    // The reconnect after the probe's close is not a failure; it happens
    // at most once per client (the session probes only until it knows).
    let mut text_reconnects = 0u32;
    // Likewise the reconnect after the server contradicted a remembered
    // version (at most once: the session has forgotten it).
    let mut renegotiations = 0u32;
    // Failures since the last connection that reached a successful login:
    // a server that accepts connections and then fails them must not
    // reset the backoff.
    let mut attempts = Attempts::new();
    loop {
        let cause = match driver.connect_once(&options, &mut commands).await {
            Some(cause) => cause,
            None => return,
        };
        if std::mem::take(&mut driver.renegotiate) && renegotiations < 1 {
            renegotiations += 1;
            tracing::info!(%cause, "the remembered protocol version no longer fits: negotiating afresh");
            continue;
        }
        if std::mem::take(&mut driver.speak_text) && text_reconnects < MAX_TEXT_RECONNECTS {
            text_reconnects += 1;
            tracing::info!("not a protocol-13 server: reconnecting, speaking text");
            continue;
        }
        if driver.logged_in {
            attempts.logged_in();
        }
        let attempt = attempts.failed();
        let blocked = matches!(cause, CfmsError::IpBlocked);
        if driver.first.is_some() && driver.give_up_first(&options, attempt, cause) {
            return;
        }
        // A block lasts minutes: knocking sooner only adds to the log.
        let mut delay = if blocked {
            options.backoff.max
        } else {
            options.backoff.delay(attempt - 1)
        };
        if let Some(by) = driver.clock.connect_by {
            delay = delay.min(by.saturating_duration_since(tokio::time::Instant::now()));
        }
        let _ = driver
            .events
            .send(CfmsEvent::Reconnecting { attempt, delay });
        let wake = tokio::time::Instant::now() + delay;
        loop {
            driver.queued.retain(|job| !job.abandoned());
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

/// Reconnects after the protocol-13 probe found a text (3–5) server,
/// before the backoff takes over.
const MAX_TEXT_RECONNECTS: u32 = 1;

/// How long the first `server_info` of a connection speaking a remembered
/// text version (3–5) waits before the version is taken to be stale: a
/// 3–5 server answers it at once, a 13 server never answers text
/// (`cfms-13.md` §11). A slow 3–5 server only costs a probe.
const REMEMBERED_TEXT_WAIT: StdDuration = StdDuration::from_secs(3);

/// Whether a connection's end shows that the server no longer speaks the
/// remembered version (on `wire`): nothing answered the opening
/// `server_info`, and the server reacted as the other kind of server does
/// (a 3–5 server closes at a frame; a 13 server ignores text). What the
/// client cannot tell from this: a server of the same kind that changed
/// its version within the kind (3 to 5: the text session speaks every
/// 3–5 and the cache follows) or a version this client does not speak
/// (refused by name, never retried).
fn contradicts(wire: cfms::p13::Wire, ended: &Ended, answered: bool) -> bool {
    use cfms::p13::Wire;
    !answered
        && match (wire, ended) {
            (Wire::Framed, Ended::Lost(_)) => true,
            (Wire::Text, Ended::Setup(CfmsError::NoAnswer(e))) => e.step == State::ServerInfo,
            _ => false,
        }
}

/// A refused answer: the server's code and message, and the whole body.
fn refusal(status: cfms::Status, body: serde_json::Value) -> CfmsError {
    let message = body["message"].as_str().unwrap_or("").to_owned();
    CfmsError::Server {
        code: status.code(),
        message,
        body,
    }
}

/// The JSON a received message carries: a protocol-13 message is a binary
/// frame whose payload follows its five-byte header (the real server frames
/// a refused transfer's CONCLUSION so); a text message is the JSON itself.
/// (A later piece of a message has no header.)
fn json_of<'m>(message: &connection::Message<'m>) -> &'m [u8] {
    match message.kind {
        naslink_core::ws::MessageKind::Binary if message.first => {
            cfms::p13::frame::Frame::parse(message.data).map_or(message.data, |f| f.payload)
        }
        _ => message.data,
    }
}

/// An answer's body as JSON (the core already checked it is an object).
fn body_of(response: &cfms::Response<'_>) -> serde_json::Value {
    serde_json::from_slice(response.root().raw()).unwrap_or_default()
}

/// Whether another attempt may fix a failed first connect (a refused
/// login, a wrong URL or an untrusted certificate never will).
fn worth_retrying(cause: &CfmsError) -> bool {
    use crate::link::ConnectError as C;
    matches!(
        cause,
        CfmsError::Connect(C::Tcp(_) | C::Handshake(_) | C::TimedOut)
            | CfmsError::NoAnswer { .. }
            | CfmsError::LinkClosed(_)
    )
}

/// Largest request message written (data included): the transmit buffer
/// less a frame header. Larger ones fail at once; smaller ones that do not
/// fit wait for the buffer to drain.
const MAX_REQUEST: usize = crate::link::TRANSMIT_BUFFER - 14;

impl Driver<'_> {
    /// One connection, until it ends: `None` when the task must stop,
    /// else why the connection failed or ended.
    async fn connect_once(
        &mut self,
        options: &CfmsOptions,
        commands: &mut mpsc::UnboundedReceiver<Job>,
    ) -> Option<CfmsError> {
        let mut link_options = options.link.clone();
        if let Some(by) = self.clock.connect_by {
            let left = by.saturating_duration_since(tokio::time::Instant::now());
            let limit = link_options
                .connect_timeout
                .unwrap_or(StdDuration::from_secs(15));
            link_options.connect_timeout = Some(limit.min(left));
        }
        let link = match Link::open(&options.url, &link_options).await {
            Ok(link) => link,
            // A CFMS server answers 403 to the upgrade of an IP it has
            // blocked (`cfms-13.md` §1).
            Err(crate::link::ConnectError::Rejected(403)) => {
                tracing::warn!("the server has blocked this IP address (HTTP 403)");
                return Some(CfmsError::IpBlocked);
            }
            Err(e) => {
                tracing::warn!(error = %e, "connection failed");
                return Some(CfmsError::Connect(e));
            }
        };
        tracing::info!("connected");
        let mut session = self.session.take()?;
        session.set_unix_time(now(), unix_secs_f64());
        // Whether this connection opens with the probe (its close then
        // settles the protocol: the connection layer tells the session).
        let knew = session.negotiated();
        let spoke_13 = session.wire() == cfms::p13::Wire::Framed;
        self.logged_in = false;
        let mut pump = Pump::new(link, session);
        let ended = self.run(&mut pump, commands).await;
        let mut session = pump.into_session();
        self.settle(&mut session);
        let answered = self.server.protocol_version != 0;
        if self
            .remembered
            .is_some_and(|wire| contradicts(wire, &ended, answered))
        {
            session.forget_protocol();
            self.remembered = None;
            self.renegotiate = true;
        }
        // Only the server's close is its answer to the probe (the session
        // cannot tell it from this task giving up on a silent server).
        self.speak_text = knew.is_none()
            && matches!(ended, Ended::Lost(_))
            && session.negotiated() == Some(cfms::p13::Negotiated::Text);
        self.session = Some(session);
        match ended {
            Ended::Stop => None,
            Ended::Setup(cause) => {
                tracing::warn!(%cause, "connection not ready");
                Some(cause)
            }
            Ended::Lost(reason) if self.speak_text || self.renegotiate => {
                tracing::debug!(%reason, "the server closed the protocol-13 probe");
                Some(CfmsError::LinkClosed(reason))
            }
            Ended::Lost(reason) => {
                tracing::warn!(%reason, "connection lost");
                let _ = self.events.send(CfmsEvent::Disconnected {
                    reason: reason.clone(),
                });
                // Closed before any answer while speaking 13 (pinned or
                // learnt, not probing): what a 3-5 server does to a frame
                // (`cfms-13.md` §11).
                if !answered && spoke_13 {
                    return Some(CfmsError::LinkClosed(format!(
                        "{reason}; a CFMS 3-5 server closes a protocol-13 message this way: \
                         is protocol 13 pinned for a 3-5 server?"
                    )));
                }
                Some(CfmsError::LinkClosed(reason))
            }
        }
    }

    /// After a connection: the session forgets its requests (their
    /// failures are settled here, not by event), idempotent requests are
    /// queued again, the rest and the transfers fail.
    fn settle(&mut self, session: &mut Session<'_, MAX_IN_FLIGHT>) {
        session.handle_disconnect(now());
        while connection::Session::poll_event(session, None).is_some() {}
        for (_, request) in std::mem::take(&mut self.in_flight) {
            self.lost(request);
        }
        if let Some(d) = self.download.take() {
            d.fail(CfmsError::ConnectionLost);
        }
        if let Some(u) = self.upload.take() {
            let _ = u.reply.send(Err(CfmsError::ConnectionLost));
        }
        self.clock.step_until = None;
        self.clock.ping_at = None;
    }

    /// After a failed first connect: whether to stop (the caller of
    /// `connect` then has its error).
    fn give_up_first(&mut self, options: &CfmsOptions, attempts: u32, cause: CfmsError) -> bool {
        let out_of_time = self
            .clock
            .connect_by
            .is_some_and(|by| by <= tokio::time::Instant::now());
        if worth_retrying(&cause) && attempts < options.first_attempts.max(1) && !out_of_time {
            tracing::info!(%cause, attempts, "first connect failed, trying again");
            return false;
        }
        // A definite answer (a refused login, ...) is the news as it is.
        let error = if attempts > 1 && worth_retrying(&cause) {
            CfmsError::GaveUp {
                attempts,
                last: Box::new(cause),
            }
        } else {
            cause
        };
        if let Some(first) = self.first.take() {
            let _ = first.send(Err(error));
        }
        for job in self.queued.drain(..) {
            job.fail(CfmsError::Closed);
        }
        true
    }

    /// Start the deadline of an opening step: the request timeout, cut to
    /// what is left of the first connect's time.
    fn arm_step(&mut self) {
        let at = tokio::time::Instant::now();
        let mut limit = self.request_timeout;
        if self.phase == State::ServerInfo && self.remembered == Some(cfms::p13::Wire::Text) {
            limit = limit.min(REMEMBERED_TEXT_WAIT);
        }
        if let Some(by) = self.clock.connect_by {
            limit = limit.min(by.saturating_duration_since(at));
        }
        self.clock.step_limit = limit;
        self.clock.step_until = Some(at + limit);
    }

    /// Whether the opening sequence is under way (not waiting for a code).
    fn in_setup(&self) -> bool {
        self.clock.step_until.is_some() && self.clock.code_since.is_none()
    }

    /// The earliest of this task's own deadlines.
    fn own_deadline(&self) -> Option<tokio::time::Instant> {
        let step = self.clock.step_until.filter(|_| self.in_setup());
        [step, self.clock.ping_at].into_iter().flatten().min()
    }

    /// Act on this task's own deadlines: an opening step without an
    /// answer ends the connection; the keep-alive pings, or ends a silent
    /// link.
    fn on_own_timer(&mut self, pump: &mut CfmsPump<'_>) -> Option<Ended> {
        let at = tokio::time::Instant::now();
        if self.in_setup() && self.clock.step_until.is_some_and(|until| until <= at) {
            return Some(self.step_expired());
        }
        let (Some(ping_at), Some(every)) = (self.clock.ping_at, self.keepalive) else {
            return None;
        };
        if ping_at > at {
            return None;
        }
        if self.clock.ping_unanswered {
            return Some(Ended::Lost(format!(
                "nothing from the server since a keep-alive ping {} s ago: the link is dead",
                every.as_secs_f64().round()
            )));
        }
        // A ping still queued behind a streamed frame is answered later:
        // the next turn judges it.
        pump.ping();
        self.clock.ping_unanswered = true;
        self.clock.ping_at = Some(at + every);
        None
    }

    /// The current opening step ran out of time.
    fn step_expired(&self) -> Ended {
        let waited = Duration::from_millis(self.clock.step_limit.as_millis() as u64);
        Ended::Setup(CfmsError::NoAnswer(cfms::NoAnswer {
            step: self.phase,
            waited,
        }))
    }

    async fn run(
        &mut self,
        pump: &mut CfmsPump<'_>,
        commands: &mut mpsc::UnboundedReceiver<Job>,
    ) -> Ended {
        self.phase = State::Disconnected;
        self.server = ServerInfo::default();
        self.clock.ping_at = None;
        self.clock.ping_unanswered = false;
        self.clock.code_since = None;
        let ended = self.serve(pump, commands).await;
        pump.close();
        pump.flush().await;
        ended
    }

    /// The connection's loop: act on events, write what is owed, wait for
    /// input, a job, a deadline or a two-factor code.
    async fn serve(
        &mut self,
        pump: &mut CfmsPump<'_>,
        commands: &mut mpsc::UnboundedReceiver<Job>,
    ) -> Ended {
        // One timer for the deadlines, moved only when they move.
        let timer = tokio::time::sleep(StdDuration::from_secs(3600));
        tokio::pin!(timer);
        let mut timer_armed = false;
        loop {
            if let Some(ended) = self.drain(pump) {
                return ended;
            }
            if let Some(ended) = self.feed_upload(pump) {
                return ended;
            }
            pump.flush().await;
            if std::mem::take(&mut self.stalled) {
                continue;
            }
            // Writing may end something (a protocol-13 download of an empty
            // file ends with its `ready`): its event is drained first.
            if pump.connection_mut().has_event() {
                continue;
            }
            let wait = pump
                .poll_timeout()
                .map(deadline)
                .into_iter()
                .chain(self.own_deadline())
                .min();
            match wait {
                Some(at) if !timer_armed || at != timer.deadline() => {
                    timer.as_mut().reset(at);
                    timer_armed = true;
                }
                Some(_) => {}
                None => timer_armed = false,
            }
            self.hand_to_disk().await;
            tokio::select! {
                n = pump.read() => {
                    if n == 0 {
                        pump.handle_eof();
                    } else {
                        // Any byte answers the keep-alive.
                        self.clock.ping_unanswered = false;
                    }
                }
                cmd = commands.recv() => match cmd {
                    Some(cmd) => {
                        // Every job already waiting goes out in the
                        // same write.
                        self.queued.push(cmd);
                        while let Ok(cmd) = commands.try_recv() {
                            self.queued.push(cmd);
                        }
                    }
                    None => return Ended::Stop,
                },
                () = &mut timer, if timer_armed => {
                    timer_armed = false;
                    pump.handle_timeout();
                    if let Some(ended) = self.on_own_timer(pump) {
                        return ended;
                    }
                }
                code = self.code.next() => {
                    if let Some(ended) = self.on_code(pump, code) {
                        return ended;
                    }
                }
                () = tokio::task::yield_now(), if self.upload_busy() => {}
            }
        }
    }

    /// Hand gathered ciphertext to the file's thread. Waiting here is the
    /// back-pressure: a slow disk slows the reads instead of growing memory.
    async fn hand_to_disk(&mut self) {
        if let Some(d) = self.download.as_mut()
            && (d.buffer.len() >= DISK_BLOCK || !d.pending_records.is_empty())
        {
            // A chunk's seal record follows its ciphertext to the disk.
            let block = std::mem::take(&mut d.buffer);
            let records = std::mem::take(&mut d.pending_records);
            if d.to_disk.send((block, records)).await.is_err() {
                // The writer stopped on an error; its verdict arrives with
                // DownloadFinished. Nothing more is kept meanwhile.
                d.buffer = Vec::new();
            }
        }
    }

    /// The two-factor source answered (`None`: it gave up).
    fn on_code(&mut self, pump: &mut CfmsPump<'_>, code: Option<String>) -> Option<Ended> {
        if let Some(since) = self.clock.code_since.take()
            && let Some(by) = self.clock.connect_by.as_mut()
        {
            // The person's time to type a code is not the server's.
            *by += since.elapsed();
        }
        let code = code.map(Zeroizing::new);
        let sent = code
            .as_ref()
            .map(|code| pump.connection_mut().submit_two_factor(now(), code));
        match sent {
            Some(Ok(_)) => {
                self.arm_step();
                None
            }
            _ => {
                // After a refused code, the refusal is the news.
                let error = if self.code.refused_before() {
                    CfmsError::LoginRefused(LoginError::InvalidTwoFactorCode)
                } else {
                    CfmsError::TwoFactorRequired
                };
                self.code.reset();
                Some(self.fail_first(error).unwrap_or(Ended::Stop))
            }
        }
    }

    /// Act on every event the connection has (the drain rule: events
    /// first), follow the opening sequence, then send the queued jobs.
    fn drain(&mut self, pump: &mut CfmsPump<'_>) -> Option<Ended> {
        loop {
            let step = match pump.poll_event() {
                None => break,
                Some((Event::Session(event), message)) => {
                    // A refusal's body is the message that carried it.
                    let body = message.map(|m| json_of(&m));
                    self.on_event(event, body)
                }
                Some((Event::Closed(closed), _)) => {
                    Step::End(Ended::Lost(pump.describe_end(closed)))
                }
                Some((Event::TransmitTooSmall(e), _)) => Step::End(Ended::Lost(format!(
                    "cannot write a message the session owes: it needs {} bytes",
                    e.required
                ))),
                Some((Event::Connected | Event::Rejected(_), _)) => Step::Nothing,
            };
            match step {
                Step::Nothing => {}
                Step::End(ended) => return Some(ended),
                Step::Downloaded(seq, key) => {
                    let hashes = pump.session().chunk_hashes().to_vec();
                    self.downloaded(seq, key, hashes);
                }
                Step::Chunk(seq, index, len) => {
                    let seal = pump.session().chunk_hashes().get(index as usize).copied();
                    if let (Some(seal), Some(d)) = (seal, self.download.as_mut())
                        && d.seq == seq
                        && d.records
                    {
                        d.pending_records
                            .extend_from_slice(&super::partial::record(index, len, &seal));
                    }
                }
            }
        }
        let session = pump.session();
        if let Some(ended) = self.follow_opening(session.state(), session.lockdown()) {
            return Some(ended);
        }
        if self.phase == State::Ready {
            self.send_queued(pump);
        }
        None
    }

    /// The session's opening state after its events: a new step gets its
    /// deadline; `Ready` is announced; a dead end ends the connection.
    fn follow_opening(&mut self, state: State, lockdown: Option<bool>) -> Option<Ended> {
        if state == self.phase {
            return None;
        }
        let was = std::mem::replace(&mut self.phase, state);
        match state {
            State::ServerInfo | State::LoggingIn | State::Registering => self.arm_step(),
            State::Ready => self.ready(lockdown.unwrap_or(false)),
            State::Refused if was == State::ServerInfo => {
                let why = "the server refused to say which protocol it speaks";
                return self.fail_first(CfmsError::Protocol(why.into()));
            }
            State::Broken => return Some(Ended::Lost("answers out of step".into())),
            _ => {}
        }
        None
    }

    /// One session event; bodies are parsed only for a taker (the answers
    /// the session consumes itself, login and refresh, carry the token
    /// and are never copied into memory that is not wiped).
    fn on_event(&mut self, event: cfms::ConnectionEvent<'_>, message: Option<&[u8]>) -> Step {
        use cfms::ConnectionEvent as E;
        match event {
            E::ServerInfo {
                seq: None,
                response,
                ..
            } if self.phase == State::ServerInfo => {
                self.server = ServerInfo::from_view(&cfms::ops::ServerInfo::new(&response));
            }
            E::ServerInfo {
                seq: Some(seq),
                response,
                ..
            } => {
                if let Some(InFlight { reply, .. }) = self.in_flight.remove(&seq) {
                    let info = ServerInfo::from_view(&cfms::ops::ServerInfo::new(&response));
                    match reply {
                        Reply::Server(tx) => drop(tx.send(Ok(info))),
                        Reply::Body(tx) => drop(tx.send(Ok(body_of(&response)))),
                    }
                }
            }
            E::ProtocolUnsupported { version } => {
                return end(self.fail_first(CfmsError::ProtocolUnsupported(version)));
            }
            E::LoggedIn { .. } => self.code.reset(),
            E::LoginFailed(LoginError::InvalidTwoFactorCode) => {
                tracing::warn!("two-factor code refused");
                let error = CfmsError::LoginRefused(LoginError::InvalidTwoFactorCode);
                return end(self.ask_code(error));
            }
            E::LoginFailed(e) => {
                tracing::warn!(error = %e, "login failed");
                self.code.reset();
                return end(self.fail_first(CfmsError::LoginRefused(e)));
            }
            E::TwoFactorRequired { .. } => {
                return end(self.ask_code(CfmsError::TwoFactorRequired));
            }
            E::Lockdown { on } => {
                let _ = self.events.send(CfmsEvent::Lockdown { on });
            }
            E::Reply {
                seq,
                status,
                response,
            } => {
                if let Some(request) = self.in_flight.remove(&seq) {
                    let replay = cfms::p13::Replay::of(&response);
                    let Some(reply) = self.replay_refused(request, replay) else {
                        return Step::Nothing;
                    };
                    let body = body_of(&response);
                    if let Some(kind) = replay {
                        reply.fail(CfmsError::Replay { kind, body });
                        return Step::Nothing;
                    }
                    // Success is the protocol's rule (`Status::is_ok`).
                    match reply {
                        _ if !status.is_ok() => reply.fail(refusal(status, body)),
                        Reply::Body(tx) => drop(tx.send(Ok(body))),
                        // A server information answer is an `Event::ServerInfo`.
                        Reply::Server(tx) => drop(tx.send(Err(refusal(status, body)))),
                    }
                }
            }
            E::RequestFailed { seq, error } => self.request_failed(seq, error),
            E::Desynchronized(_) if self.in_setup() => return Step::End(self.step_expired()),
            E::Desynchronized(why) => {
                return Step::End(Ended::Lost(format!("answers out of step: {why}")));
            }
            E::BadMessage(cfms::Error::Broken) => {
                return Step::End(Ended::Lost("answers out of step".into()));
            }
            E::BadMessage(e) => {
                return Step::End(Ended::Lost(format!(
                    "a message this client cannot follow: {e}"
                )));
            }
            other => return self.on_transfer_event(other, message),
        }
        Step::Nothing
    }

    /// A request refused by the replay protection (1001, `replay`): sent
    /// again once, with a fresh nonce and timestamp, when the core says it
    /// is worth it (a stale timestamp: the session has learnt the server's
    /// clock from the refusal); else its reply, to be failed.
    fn replay_refused(
        &mut self,
        request: InFlight,
        replay: Option<cfms::p13::Replay>,
    ) -> Option<Reply> {
        let resend = replay.is_some_and(|kind| kind.worth_resending())
            && !request.replayed
            && !request.reply.is_closed();
        if !resend {
            return Some(request.reply);
        }
        tracing::info!("stale timestamp (1001): sending again with the server's clock");
        self.queued.push(Job::Request(Command {
            ask: request.ask,
            reply: request.reply,
            resend_until: request.resend_until,
            replayed: true,
        }));
        None
    }

    /// A request got no answer on this connection.
    fn request_failed(&mut self, seq: Seq, error: RequestError) {
        let Some(request) = self.in_flight.remove(&seq) else {
            return;
        };
        let error = match error {
            RequestError::Timeout => CfmsError::TimedOut,
            RequestError::Disconnected => return self.lost(request),
            other => CfmsError::Protocol(other.to_string()),
        };
        request.reply.fail(error);
    }

    /// An upload's or a download's event.
    fn on_transfer_event(
        &mut self,
        event: cfms::ConnectionEvent<'_>,
        message: Option<&[u8]>,
    ) -> Step {
        use cfms::ConnectionEvent as E;
        let body = || {
            message
                .and_then(|m| serde_json::from_slice(m).ok())
                .unwrap_or_default()
        };
        match event {
            E::UploadReady { seq, .. } if self.upload_is(seq) => self.upload_ready(),
            E::UploadFinished { seq, size } if self.upload_is(seq) => {
                if let Some(up) = self.upload.take() {
                    let _ = up.reply.send(Ok(size));
                }
            }
            E::UploadFailed { seq, error } if self.upload_is(seq) => {
                return end(self.upload_failed(error, body()));
            }
            E::DownloadStarted { seq, file_size, .. } if self.download_is(seq) => {
                if let Some(d) = self.download.as_mut() {
                    d.size = file_size;
                    // A resumed download starts at its offset.
                    let _ = d.progress.send((d.received, file_size));
                }
            }
            E::DownloadData { seq, data } if self.download_is(seq) => {
                // Handed to the file's thread before the next read: memory
                // stays bounded by DISK_QUEUE blocks plus one read.
                if let Some(d) = self.download.as_mut() {
                    d.buffer.extend_from_slice(data);
                }
            }
            E::DownloadChunk { seq, index, len } if self.download_is(seq) => {
                if let Some(ended) = self.download_chunk(len) {
                    return Step::End(ended);
                }
                return Step::Chunk(seq, index, len);
            }
            E::DownloadFinished { seq, key } => return Step::Downloaded(seq, key),
            E::DownloadFailed { seq, error } if self.download_is(seq) => {
                if let Some(d) = self.download.take() {
                    d.fail(match error {
                        DownloadError::Disconnected => CfmsError::ConnectionLost,
                        DownloadError::Timeout => CfmsError::TimedOut,
                        DownloadError::Server(status) => refusal(status, body()),
                        other => CfmsError::Download(other),
                    });
                }
                if error.breaks_stream() {
                    return Step::End(Ended::Lost(CfmsError::Download(error).to_string()));
                }
            }
            // Only the kind: the events left carry no secrets.
            other => tracing::debug!(kind = event_kind(&other), "session event"),
        }
        Step::Nothing
    }

    fn upload_is(&self, seq: Seq) -> bool {
        self.upload.as_ref().is_some_and(|u| u.seq == seq)
    }

    fn download_is(&self, seq: Seq) -> bool {
        self.download.as_ref().is_some_and(|d| d.seq == seq)
    }

    /// The upload failed, by the server's word or the session's.
    fn upload_failed(&mut self, error: UploadError, body: serde_json::Value) -> Option<Ended> {
        if let Some(up) = self.upload.take() {
            let _ = up.reply.send(Err(match error {
                UploadError::Disconnected => CfmsError::ConnectionLost,
                UploadError::Timeout => CfmsError::TimedOut,
                UploadError::Server(status) => refusal(status, body),
                other => CfmsError::Upload(other),
            }));
        }
        // Refused here (a `ready N` out of range, an answer out of order):
        // the server may still wait for frames, and would take the next
        // request for one. Start afresh.
        let server_done = matches!(
            error,
            UploadError::Server(_)
                | UploadError::Timeout
                | UploadError::Disconnected
                | UploadError::SourceChanged { .. }
        );
        (!server_done).then(|| Ended::Lost(CfmsError::Upload(error).to_string()))
    }

    /// One `file_chunk` arrived whole.
    fn download_chunk(&mut self, len: u32) -> Option<Ended> {
        let d = self.download.as_mut()?;
        if d.reply.is_closed() {
            // Nobody waits for it (the caller's future was dropped): a new
            // connection is cheaper than the rest of the file.
            return Some(Ended::Lost("download abandoned by its caller".into()));
        }
        d.received = (d.received + u64::from(len)).min(d.size.max(d.received));
        let _ = d.progress.send((d.received, d.size));
        None
    }

    /// The download's last chunk and key arrived: the last block and the
    /// writer's verdict are awaited off the connection task.
    fn downloaded(&mut self, seq: Seq, key: cfms::DownloadKey, hashes: Vec<[u8; 32]>) {
        if !self.download_is(seq) {
            return;
        }
        let Some(d) = self.download.take() else {
            return;
        };
        tokio::spawn(async move {
            let ActiveDownload {
                buffer,
                pending_records,
                to_disk,
                writer,
                reply,
                ..
            } = d;
            let handed = (buffer.is_empty() && pending_records.is_empty())
                || to_disk.send((buffer, pending_records)).await.is_ok();
            drop(to_disk);
            let result = match writer.await {
                Ok(Ok(())) if handed => Ok((key, hashes)),
                Ok(Err(e)) => Err(CfmsError::Io(e)),
                _ => Err(CfmsError::Transfer("the download's writer stopped".into())),
            };
            let _ = reply.send(result);
        });
    }

    /// The opening sequence is done: the connection serves requests.
    fn ready(&mut self, lockdown: bool) {
        self.logged_in = true;
        self.code.reset();
        self.clock.step_until = None;
        self.clock.connect_by = None;
        self.clock.ping_at = self.keepalive.map(|k| tokio::time::Instant::now() + k);
        if let Some(first) = self.first.take() {
            let _ = first.send(Ok(self.server.clone()));
        }
        let _ = self.events.send(CfmsEvent::Ready { lockdown });
    }

    /// Send the queued jobs the session takes, in order: nothing is
    /// pipelined behind a transfer (the session says `Busy`).
    fn send_queued(&mut self, pump: &mut CfmsPump<'_>) {
        let mut waiting = Vec::new();
        let mut queued = std::mem::take(&mut self.queued).into_iter();
        for job in queued.by_ref() {
            if job.abandoned() {
                continue;
            }
            if !waiting.is_empty() {
                waiting.push(job);
                continue;
            }
            let conn = pump.connection_mut();
            let sent = match &job {
                Job::Request(cmd) => match &cmd.ask {
                    Ask::Action(action, data) => conn.request(now(), action, data.as_bytes()),
                    Ask::Server => conn.ask_server(now()),
                },
                Job::Download(d) => conn.download_file_at(now(), &d.task_id, d.offset),
                Job::Upload(u) => {
                    let source = cfms::UploadSource {
                        size: u.size,
                        sha256: Some(u.sha256),
                    };
                    conn.upload_file(now(), &u.task_id, source)
                }
            };
            match sent {
                Ok(seq) => self.track(seq, job),
                Err(cfms::Error::Busy) => waiting.push(job),
                // The transmit buffer holds other messages: flush, retry.
                Err(cfms::Error::BufferTooSmall { required }) if required <= MAX_REQUEST => {
                    waiting.push(job);
                    self.stalled = true;
                }
                Err(e) => job.fail(CfmsError::Request(e.to_string())),
            }
        }
        waiting.extend(queued);
        self.queued = waiting;
    }

    /// Remember a job that went out, for its answer.
    fn track(&mut self, seq: Seq, job: Job) {
        match job {
            Job::Request(cmd) => {
                if let Ask::Action(action, _) = &cmd.ask {
                    tracing::debug!(%action, seq = seq.0, "request");
                }
                let request = InFlight {
                    reply: cmd.reply,
                    ask: cmd.ask,
                    resend_until: cmd.resend_until,
                    replayed: cmd.replayed,
                };
                self.in_flight.insert(seq, request);
            }
            Job::Upload(u) => {
                tracing::info!(seq = seq.0, size = u.size, "upload");
                self.upload = Some(ActiveUpload {
                    seq,
                    from_disk: read_blocks(u.source),
                    pending: Vec::new(),
                    sending: false,
                    at_eof: false,
                    sent: 0,
                    size: u.size,
                    progress: u.progress,
                    reply: u.reply,
                });
            }
            Job::Download(d) => {
                tracing::info!(seq = seq.0, "download");
                let (to_disk, blocks) = mpsc::channel(DISK_QUEUE);
                let records = d.seals.is_some();
                self.download = Some(ActiveDownload {
                    seq,
                    buffer: Vec::new(),
                    pending_records: Vec::new(),
                    records,
                    to_disk,
                    writer: write_blocks(d.cipher, d.seals, blocks),
                    progress: d.progress,
                    reply: d.reply,
                    received: d.offset,
                    size: 0,
                });
            }
        }
    }

    /// A request whose connection dropped: queued again for the next
    /// connection when it is idempotent and its deadline allows, else failed.
    fn lost(&mut self, request: InFlight) {
        match request.resend_until {
            Some(until) if until > tokio::time::Instant::now() && !request.reply.is_closed() => {
                tracing::debug!("resending after the reconnect");
                self.queued.push(Job::Request(Command {
                    ask: request.ask,
                    reply: request.reply,
                    resend_until: Some(until),
                    replayed: request.replayed,
                }));
            }
            _ => request.reply.fail(CfmsError::ConnectionLost),
        }
    }

    /// Ask the two-factor source for a code, or give up with `error` when
    /// there is none or its attempts are used up.
    fn ask_code(&mut self, error: CfmsError) -> Option<Ended> {
        match self.code.ask() {
            Some(attempt) => {
                self.clock.code_since = Some(tokio::time::Instant::now());
                let _ = self.events.send(CfmsEvent::TwoFactorRequired { attempt });
                None
            }
            None => {
                self.code.reset();
                self.fail_first(error)
            }
        }
    }

    fn fail_first(&mut self, error: CfmsError) -> Option<Ended> {
        if let Some(first) = self.first.take() {
            let _ = first.send(Err(error));
        } else {
            tracing::warn!(%error, "giving up");
        }
        for job in self.queued.drain(..) {
            job.fail(CfmsError::Closed);
        }
        Some(Ended::Stop)
    }
}

/// `ended` as the step it makes.
fn end(ended: Option<Ended>) -> Step {
    ended.map_or(Step::Nothing, Step::End)
}

/// An event's kind, for logs that must not show message bodies or keys.
fn event_kind(event: &cfms::ConnectionEvent<'_>) -> &'static str {
    use cfms::ConnectionEvent as E;
    match event {
        E::ServerInfo { .. } => "server information",
        E::ProtocolUnsupported { .. } => "protocol unsupported",
        E::LoggedIn { .. } => "logged in",
        E::TwoFactorRequired { .. } => "two-factor required",
        E::LoginFailed(_) => "login failed",
        E::TokenRefreshed { .. } => "token refreshed",
        E::TokenRejected { .. } => "token rejected",
        E::ListenerRegistered { .. } => "listener registered",
        E::Lockdown { .. } => "lockdown",
        E::Reply { .. } => "reply",
        E::RequestFailed { .. } => "request failed",
        E::Desynchronized(_) => "desynchronized",
        E::BadMessage(_) => "bad message",
        E::UploadReady { .. } | E::UploadFinished { .. } | E::UploadFailed { .. } => "upload",
        E::DownloadStarted { .. }
        | E::DownloadData { .. }
        | E::DownloadChunk { .. }
        | E::DownloadFinished { .. }
        | E::DownloadFailed { .. } => "download",
    }
}
