//! The connection task: one [`Link`] at a time, the core's [`Session`] on
//! it, requests in, answers and events out, reconnecting with backoff.

use std::collections::HashMap;
use std::time::Duration as StdDuration;

use naslink_core::cfms::{
    self, Buffers, DownloadError, Event, LoginError, MessageKind, RequestError, Seq, Session,
    UploadError,
};
use naslink_core::time::Duration;
use tokio::sync::{broadcast, mpsc, oneshot};
use zeroize::Zeroizing;

use super::files::{read_blocks, write_blocks};
use super::transfer::{
    ActiveDownload, ActiveUpload, DISK_BLOCK, DISK_QUEUE, DownloadJob, UploadJob,
};
use super::words;
use super::{
    CfmsError, CfmsEvent, CfmsOptions, MAX_CHUNKS, MAX_IN_FLIGHT, RECEIVE_CAPACITY, SetupStep,
};
use crate::link::{Incoming, Link, deadline, describe_closed, now};
use crate::two_factor::CodeWait;

pub(super) struct Command {
    pub(super) action: String,
    /// The `data` object as text; it may hold a password (`set_passwd`),
    /// so it is wiped when dropped.
    pub(super) data: Zeroizing<String>,
    pub(super) reply: oneshot::Sender<Result<serde_json::Value, CfmsError>>,
    /// Idempotent requests: sent again after a reconnect until then.
    pub(super) resend_until: Option<tokio::time::Instant>,
}

/// A request whose answer is awaited.
pub(super) struct InFlight {
    pub(super) reply: Reply,
    /// The request itself, when it may be sent again after a reconnect.
    pub(super) again: Option<(String, Zeroizing<String>, tokio::time::Instant)>,
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
            Job::Request(c) => {
                let _ = c.reply.send(Err(error));
            }
            Job::Download(d) => {
                let _ = d.reply.send(Err(error));
            }
            Job::Upload(u) => {
                let _ = u.reply.send(Err(error));
            }
        }
    }
}

pub(super) type Reply = oneshot::Sender<Result<serde_json::Value, CfmsError>>;

/// What the connection is waiting for before it is ready.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Phase {
    ServerInfo,
    Login,
    Ready,
}

pub(super) enum Ended {
    /// The link broke or the stream went out of step: reconnect.
    Lost(String),
    /// A step before the login's success got no answer in time.
    Setup(CfmsError),
    /// The client is shut down, or its first connection failed for good.
    Stop,
}

/// Timers of the connection task that the core does not keep: the
/// deadline of the step before `Ready`, and the keep-alive.
#[derive(Debug, Default)]
pub(super) struct Clock {
    /// The first connect and login must end by then (`None` once logged in).
    pub(super) connect_by: Option<tokio::time::Instant>,
    /// The current setup step (`server_info`, login) times out then.
    pub(super) step_until: Option<tokio::time::Instant>,
    /// How long the current setup step may take (for the message).
    pub(super) step_limit: StdDuration,
    /// Since when a two-factor code is awaited (that wait does not count).
    pub(super) code_since: Option<tokio::time::Instant>,
    /// The next keep-alive ping (or the verdict on the last one).
    pub(super) ping_at: Option<tokio::time::Instant>,
    /// A ping is out and nothing arrived since it was sent.
    pub(super) ping_unanswered: bool,
}

pub(super) struct Driver<'s> {
    pub(super) session: Session<'s, MAX_IN_FLIGHT>,
    pub(super) tx: Vec<u8>,
    pub(super) queued: Vec<Job>,
    pub(super) in_flight: HashMap<Seq, InFlight>,
    pub(super) download: Option<ActiveDownload>,
    pub(super) upload: Option<ActiveUpload>,
    pub(super) events: broadcast::Sender<CfmsEvent>,
    pub(super) first: Option<oneshot::Sender<Result<serde_json::Value, CfmsError>>>,
    pub(super) server: serde_json::Value,
    pub(super) phase: Phase,
    /// Messages written while no link was at hand, sent at the next step.
    pub(super) outbox: Vec<String>,
    pub(super) code: CodeWait,
    pub(super) clock: Clock,
    /// This connection reached a successful login (the backoff restarts).
    pub(super) logged_in: bool,
    pub(super) request_timeout: StdDuration,
    pub(super) keepalive: Option<StdDuration>,
    /// The `max_chunk_size` announced at protocol 4 and later.
    pub(super) upload_frame: u32,
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
    first: oneshot::Sender<Result<serde_json::Value, CfmsError>>,
) {
    let mut rx = vec![0u8; RECEIVE_CAPACITY];
    let mut hashes = vec![[0u8; 32]; MAX_CHUNKS];
    let config = cfms::Config {
        request_timeout: Duration::from_millis(options.request_timeout.as_millis() as u64),
        upload_frame: options.upload_frame,
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
        download: None,
        upload: None,
        events,
        first: Some(first),
        server: serde_json::Value::Null,
        phase: Phase::ServerInfo,
        outbox: Vec::new(),
        code: CodeWait::new(options.two_factor.clone()),
        clock: Clock {
            connect_by: Some(tokio::time::Instant::now() + options.connect_timeout),
            ..Clock::default()
        },
        logged_in: false,
        request_timeout: options.request_timeout,
        keepalive: options.keepalive.filter(|k| !k.is_zero()),
        upload_frame: options.upload_frame,
    };
    // Attempts since the last connection that reached a successful login:
    // a server that accepts connections and then fails them must not
    // reset the backoff.
    let mut attempt: u32 = 0;
    loop {
        let cause = match driver.connect_once(&options, &mut commands).await {
            Some(cause) => cause,
            None => return,
        };
        if driver.logged_in {
            attempt = 0;
        }
        attempt = attempt.saturating_add(1);
        if driver.first.is_some() && driver.give_up_first(&options, attempt, cause) {
            return;
        }
        let mut delay = options.backoff.delay(attempt - 1);
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

/// A non-200 answer: the server's code and message, and the whole body.
fn refusal(code: i64, body: serde_json::Value) -> CfmsError {
    let message = body["message"].as_str().unwrap_or("").to_owned();
    CfmsError::Server {
        code,
        message,
        body,
    }
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
            Err(e) => {
                tracing::warn!(error = %e, "connection failed");
                return Some(CfmsError::Connect(e));
            }
        };
        tracing::info!("connected");
        self.session.set_unix_time(now(), unix_secs_f64());
        self.logged_in = false;
        match self.run(link, options, commands).await {
            Ended::Stop => None,
            Ended::Setup(cause) => {
                tracing::warn!(%cause, "connection not ready");
                Some(cause)
            }
            Ended::Lost(reason) => {
                tracing::warn!(%reason, "connection lost");
                let _ = self.events.send(CfmsEvent::Disconnected {
                    reason: reason.clone(),
                });
                Some(CfmsError::LinkClosed(reason))
            }
        }
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

    /// Start the deadline of a setup step: the request timeout, cut to
    /// what is left of the first connect's time.
    fn arm_step(&mut self) {
        let at = tokio::time::Instant::now();
        let mut limit = self.request_timeout;
        if let Some(by) = self.clock.connect_by {
            limit = limit.min(by.saturating_duration_since(at));
        }
        self.clock.step_limit = limit;
        self.clock.step_until = Some(at + limit);
    }

    /// The earliest of this task's own deadlines.
    fn own_deadline(&self) -> Option<tokio::time::Instant> {
        let step = self
            .clock
            .step_until
            .filter(|_| self.clock.code_since.is_none());
        [step, self.clock.ping_at].into_iter().flatten().min()
    }

    /// Act on this task's own deadlines: a setup step without an answer
    /// ends the connection; the keep-alive pings, or ends a silent link.
    fn on_own_timer(&mut self, link: &mut Link) -> Option<Ended> {
        let at = tokio::time::Instant::now();
        if self.clock.code_since.is_none()
            && let Some(until) = self.clock.step_until
            && until <= at
        {
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
        let _ = link.send_ping();
        self.clock.ping_unanswered = true;
        self.clock.ping_at = Some(at + every);
        None
    }

    /// How long one flush may wait for the server to take bytes: two
    /// keep-alive intervals, and never less than a request's deadline
    /// (before the login: what is left of the step's deadline).
    fn write_limit(&self) -> StdDuration {
        let keepalive = self.keepalive.map_or(StdDuration::ZERO, |k| k * 2);
        let limit = keepalive.max(self.request_timeout);
        // Before the login, the step's deadline rules (the first connect
        // must end in time).
        match self.clock.step_until {
            Some(until) if self.clock.code_since.is_none() => {
                limit.min(until.saturating_duration_since(tokio::time::Instant::now()))
            }
            _ => limit,
        }
    }

    /// The current setup step ran out of time.
    fn step_expired(&self) -> Ended {
        let step = match self.phase {
            Phase::ServerInfo => SetupStep::ServerInfo,
            _ => SetupStep::Login,
        };
        let waited = self.clock.step_limit;
        Ended::Setup(CfmsError::NoAnswer { step, waited })
    }

    /// Bytes arrived: the link lives (any byte answers the keep-alive).
    fn heard(&mut self) {
        self.clock.ping_unanswered = false;
    }

    async fn run(
        &mut self,
        mut link: Link,
        options: &CfmsOptions,
        commands: &mut mpsc::UnboundedReceiver<Job>,
    ) -> Ended {
        self.phase = Phase::ServerInfo;
        self.clock.ping_at = None;
        self.clock.ping_unanswered = false;
        self.clock.code_since = None;
        self.arm_step();
        let ended = match self.session.server_info(now(), &mut self.tx) {
            Ok(sent) => {
                self.queue_text(sent.len);
                self.serve(&mut link, options, commands).await
            }
            Err(e) => Ended::Lost(format!(
                "server_info not written: {}",
                words::session_error(&e)
            )),
        };
        self.clock.step_until = None;
        self.clock.ping_at = None;
        link.close();
        link.flush().await;
        self.session.handle_disconnect(now());
        while let Some(event) = self.session.poll_event() {
            let _ = self.on_event(event, &mut false, options);
        }
        for (_, request) in std::mem::take(&mut self.in_flight) {
            self.lost(request);
        }
        if let Some(d) = self.download.take() {
            d.fail(CfmsError::ConnectionLost);
        }
        if let Some(u) = self.upload.take() {
            let _ = u.reply.send(Err(CfmsError::ConnectionLost));
        }
        ended
    }

    /// The connection's loop: write what is owed, wait for input, a
    /// command, a deadline or a two-factor code.
    async fn serve(
        &mut self,
        link: &mut Link,
        options: &CfmsOptions,
        commands: &mut mpsc::UnboundedReceiver<Job>,
    ) -> Ended {
        // One timer for the deadlines, moved only when they move.
        let timer = tokio::time::sleep(StdDuration::from_secs(3600));
        tokio::pin!(timer);
        let mut timer_armed = false;
        loop {
            if let Some(ended) = self.step(link, options) {
                return ended;
            }
            // A server that stops reading would block the write forever.
            let limit = self.write_limit();
            if tokio::time::timeout(limit, link.flush()).await.is_err() {
                if self.clock.step_until.is_some() && self.clock.code_since.is_none() {
                    return self.step_expired();
                }
                let secs = limit.as_secs();
                return Ended::Lost(format!("the server took nothing for {secs} s"));
            }
            if link.is_closed() {
                return Ended::Lost("connection closed".into());
            }
            let wait = [self.session.poll_timeout(), link.poll_timeout()]
                .into_iter()
                .flatten()
                .min()
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
                n = link.read() => {
                    if let Some(ended) = self.on_read(link, n, options) {
                        return ended;
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
                    if let Some(ended) = self.on_own_timer(link) {
                        return ended;
                    }
                }
                code = self.code.next() => {
                    if let Some(ended) = self.on_code(code) {
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
            && d.buffer.len() >= DISK_BLOCK
        {
            let block = std::mem::take(&mut d.buffer);
            if d.to_disk.send(block).await.is_err() {
                // The writer stopped on an error; its verdict arrives with
                // DownloadFinished. Nothing more is kept meanwhile.
                d.buffer = Vec::new();
            }
        }
    }

    /// `n` bytes were read (0: end of stream): hand the messages on.
    fn on_read(&mut self, link: &mut Link, n: usize, options: &CfmsOptions) -> Option<Ended> {
        if n == 0 {
            link.handle_eof();
        } else {
            self.heard();
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
        stop
    }

    /// The two-factor source answered (`None`: it gave up).
    fn on_code(&mut self, code: Option<String>) -> Option<Ended> {
        if let Some(since) = self.clock.code_since.take()
            && let Some(by) = self.clock.connect_by.as_mut()
        {
            // The person's time to type a code is not the server's.
            *by += since.elapsed();
        }
        let code = code.map(zeroize::Zeroizing::new);
        let sent = code
            .as_ref()
            .map(|code| self.session.submit_two_factor(now(), code, &mut self.tx));
        match sent {
            Some(Ok(sent)) => {
                self.queue_text(sent.len);
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
                Err(e) => {
                    return Some(Ended::Lost(format!(
                        "session message: {}",
                        words::session_error(&e)
                    )));
                }
            }
        }
        if let Some(ended) = self.drain_events(options) {
            return Some(ended);
        }
        if self.phase == Phase::Ready {
            let mut waiting = Vec::new();
            for job in std::mem::take(&mut self.queued) {
                if job.abandoned() {
                    continue;
                }
                // Requests keep their order behind a transfer: nothing
                // may be pipelined while one runs.
                if !waiting.is_empty() || self.download.is_some() || self.upload.is_some() {
                    waiting.push(job);
                    continue;
                }
                let result = match &job {
                    Job::Request(cmd) => {
                        self.session
                            .request(now(), &cmd.action, cmd.data.as_bytes(), &mut self.tx)
                    }
                    Job::Download(d) => self.session.download_file(now(), &d.task_id, &mut self.tx),
                    Job::Upload(u) => self.session.upload_file(
                        now(),
                        &u.task_id,
                        cfms::UploadSource {
                            size: u.size,
                            sha256: Some(u.sha256),
                        },
                        &mut self.tx,
                    ),
                };
                match result {
                    Ok(sent) => {
                        self.queue_text(sent.len);
                        match job {
                            Job::Request(cmd) => {
                                tracing::debug!(action = %cmd.action, seq = sent.seq.0, "request");
                                let again =
                                    cmd.resend_until.map(|until| (cmd.action, cmd.data, until));
                                self.in_flight.insert(
                                    sent.seq,
                                    InFlight {
                                        reply: cmd.reply,
                                        again,
                                    },
                                );
                            }
                            Job::Upload(u) => {
                                tracing::info!(seq = sent.seq.0, size = u.size, "upload");
                                self.upload = Some(ActiveUpload {
                                    from_disk: read_blocks(u.source),
                                    pending: Vec::new(),
                                    owed: 0,
                                    header_owed: None,
                                    frame_size: cfms::upload::PROTOCOL3_FRAME,
                                    sending: false,
                                    at_eof: false,
                                    sent: 0,
                                    size: u.size,
                                    progress: u.progress,
                                    reply: u.reply,
                                });
                            }
                            Job::Download(d) => {
                                tracing::info!(seq = sent.seq.0, "download");
                                let (to_disk, blocks) = mpsc::channel(DISK_QUEUE);
                                self.download = Some(ActiveDownload {
                                    buffer: Vec::new(),
                                    to_disk,
                                    writer: write_blocks(d.cipher, blocks),
                                    progress: d.progress,
                                    reply: d.reply,
                                    received: 0,
                                    size: 0,
                                });
                            }
                        }
                    }
                    Err(cfms::Error::QueueFull { .. } | cfms::Error::TransferActive) => {
                        waiting.push(job)
                    }
                    Err(e) => job.fail(CfmsError::Request(words::session_error(&e))),
                }
            }
            self.queued = waiting;
        }
        for text in self.outbox.drain(..) {
            if let Err(e) = link.send_text(&text) {
                tracing::warn!(error = ?e, "send failed");
            }
        }
        self.feed_upload(link)
    }

    fn handle(
        &mut self,
        kind: MessageKind,
        payload: &[u8],
        options: &CfmsOptions,
    ) -> Option<Ended> {
        let Driver {
            session, download, ..
        } = self;
        // Ciphertext is gathered here and handed to the file's thread by
        // the run loop before the next read: memory stays bounded by
        // DISK_QUEUE blocks plus one read's messages whatever the file size.
        let mut sink = |bytes: &[u8]| {
            if let Some(d) = download.as_mut() {
                d.buffer.extend_from_slice(bytes);
            }
        };
        match session.handle_message(now(), kind, payload, &mut sink) {
            Ok(()) => {}
            Err(cfms::Error::Broken) => return Some(Ended::Lost("answers out of step".into())),
            Err(e) => tracing::warn!(error = ?e, "message not accepted"),
        }
        // The reply's body is parsed only for a taker (see `take_body`).
        let mut pending_body = true;
        while let Some(event) = self.session.poll_event() {
            if let Some(ended) = self.on_event(event, &mut pending_body, options) {
                return Some(ended);
            }
        }
        None
    }

    /// The current message's body as JSON, for the one event that answers
    /// it (`available` is then cleared). Parsed only on demand: the answers
    /// the session consumes itself (the login's and the refresh's, which
    /// carry the token) are never copied into memory that is not wiped.
    /// The session keeps the message until the next one.
    fn take_body(&self, available: &mut bool) -> serde_json::Value {
        if !std::mem::take(available) {
            return serde_json::Value::Null;
        }
        self.session
            .response()
            .and_then(|r| serde_json::from_slice(r.root().raw()).ok())
            .unwrap_or_default()
    }

    fn drain_events(&mut self, options: &CfmsOptions) -> Option<Ended> {
        let mut none = false;
        while let Some(event) = self.session.poll_event() {
            if let Some(ended) = self.on_event(event, &mut none, options) {
                return Some(ended);
            }
        }
        None
    }

    fn on_event(&mut self, event: Event, body: &mut bool, options: &CfmsOptions) -> Option<Ended> {
        match event {
            Event::ServerInfo {
                seq: Some(_),
                lockdown,
                ..
            } if self.phase == Phase::ServerInfo => {
                self.server = self.take_body(body);
                if self.session.is_logged_in() {
                    self.ready(lockdown);
                } else {
                    match self
                        .session
                        .login(now(), &options.user, &options.password, &mut self.tx)
                    {
                        Ok(sent) => {
                            self.phase = Phase::Login;
                            self.arm_step();
                            self.queue_text(sent.len);
                        }
                        Err(e) => {
                            return self.fail_first(CfmsError::Request(words::session_error(&e)));
                        }
                    }
                }
            }
            Event::ProtocolUnsupported { version } => {
                return self.fail_first(CfmsError::ProtocolUnsupported(version));
            }
            Event::LoggedIn { .. } if self.phase == Phase::Login => {
                self.code.reset();
                let lockdown = self.session.lockdown().unwrap_or(false);
                self.ready(lockdown);
            }
            // The session's own re-login after a rejected token.
            Event::LoggedIn { .. } => self.code.reset(),
            Event::LoginFailed(LoginError::InvalidTwoFactorCode) => {
                tracing::warn!("two-factor code refused");
                return self.ask_code(CfmsError::LoginRefused(LoginError::InvalidTwoFactorCode));
            }
            Event::LoginFailed(e) => {
                tracing::warn!(error = %e, "login failed");
                self.code.reset();
                return self.fail_first(CfmsError::LoginRefused(e));
            }
            Event::TwoFactorRequired { .. } => return self.ask_code(CfmsError::TwoFactorRequired),
            Event::Lockdown { on } => {
                let _ = self.events.send(CfmsEvent::Lockdown { on });
            }
            Event::Reply { seq, status } => {
                if let Some(InFlight { reply, .. }) = self.in_flight.remove(&seq) {
                    let body = self.take_body(body);
                    // Success is the protocol's rule (`Status::is_ok`), not a number here.
                    let result = if status.is_ok() {
                        Ok(body)
                    } else {
                        Err(refusal(status.code(), body))
                    };
                    let _ = reply.send(result);
                }
            }
            Event::RequestFailed { seq, error } => {
                if let Some(request) = self.in_flight.remove(&seq) {
                    let error = match error {
                        RequestError::Timeout => CfmsError::TimedOut,
                        RequestError::Disconnected => {
                            self.lost(request);
                            return None;
                        }
                        other => CfmsError::Protocol(words::request_error(&other)),
                    };
                    let _ = request.reply.send(Err(error));
                }
            }
            Event::UploadReady { frame_size, .. } => return self.upload_ready(frame_size),
            Event::UploadFinished { size, .. } => {
                if let Some(up) = self.upload.take() {
                    let _ = up.reply.send(Ok(size));
                }
            }
            Event::UploadFailed { error, .. } => {
                if let Some(up) = self.upload.take() {
                    let _ = up.reply.send(Err(match error {
                        UploadError::Disconnected => CfmsError::ConnectionLost,
                        UploadError::Timeout => CfmsError::TimedOut,
                        UploadError::Server(status) => refusal(status.code(), self.take_body(body)),
                        other => CfmsError::Upload(other),
                    }));
                }
                // Refused here (a `ready N` out of range, an answer out of
                // order): the server may still wait for frames, and would
                // take the next request for one. Start afresh.
                let server_done = matches!(
                    error,
                    UploadError::Server(_)
                        | UploadError::Timeout
                        | UploadError::Disconnected
                        | UploadError::SourceChanged { .. }
                );
                if !server_done {
                    let why = CfmsError::Upload(error).to_string();
                    return Some(Ended::Lost(why));
                }
            }
            Event::DownloadStarted { file_size, .. } => {
                if let Some(d) = self.download.as_mut() {
                    d.size = file_size;
                    let _ = d.progress.send((0, file_size));
                }
            }
            Event::DownloadChunk { len, .. } => {
                if self.download.as_ref().is_some_and(|d| d.reply.is_closed()) {
                    // Nobody waits for it (the caller's future was dropped):
                    // a new connection is cheaper than the rest of the file.
                    return Some(Ended::Lost("download abandoned by its caller".into()));
                }
                if let Some(d) = self.download.as_mut() {
                    d.received = (d.received + u64::from(len)).min(d.size.max(d.received));
                    let _ = d.progress.send((d.received, d.size));
                }
            }
            Event::DownloadFinished { key, .. } => {
                if let Some(d) = self.download.take() {
                    let hashes = self.session.chunk_hashes().to_vec();
                    // The last block and the writer's verdict are awaited
                    // off the connection task, which goes on serving.
                    tokio::spawn(async move {
                        let ActiveDownload {
                            buffer,
                            to_disk,
                            writer,
                            reply,
                            ..
                        } = d;
                        let handed = buffer.is_empty() || to_disk.send(buffer).await.is_ok();
                        drop(to_disk);
                        let result = match writer.await {
                            Ok(Ok(())) if handed => Ok((key, hashes)),
                            Ok(Err(e)) => Err(CfmsError::Io(e)),
                            _ => Err(CfmsError::Transfer("the download's writer stopped".into())),
                        };
                        let _ = reply.send(result);
                    });
                }
            }
            Event::DownloadFailed { error, .. } => {
                if let Some(d) = self.download.take() {
                    d.fail(match error {
                        DownloadError::Disconnected => CfmsError::ConnectionLost,
                        DownloadError::Timeout => CfmsError::TimedOut,
                        DownloadError::Server(status) => {
                            refusal(status.code(), self.take_body(body))
                        }
                        other => CfmsError::Download(other),
                    });
                }
                if error.breaks_stream() {
                    return Some(Ended::Lost(CfmsError::Download(error).to_string()));
                }
            }
            Event::Desynchronized(why) => {
                return Some(Ended::Lost(format!(
                    "answers out of step: {}",
                    words::desync(&why)
                )));
            }
            // Events carry no secrets except `DownloadFinished`'s key,
            // which is handled above and never logged.
            other => tracing::debug!(?other, "session event"),
        }
        None
    }

    fn ready(&mut self, lockdown: bool) {
        self.phase = Phase::Ready;
        self.logged_in = true;
        self.clock.step_until = None;
        self.clock.connect_by = None;
        self.clock.ping_at = self.keepalive.map(|k| tokio::time::Instant::now() + k);
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

    /// A request whose connection dropped: queued again for the next
    /// connection when it is idempotent and its deadline allows, else failed.
    fn lost(&mut self, request: InFlight) {
        match request.again {
            Some((action, data, until))
                if until > tokio::time::Instant::now() && !request.reply.is_closed() =>
            {
                tracing::debug!(%action, "resending after the reconnect");
                self.queued.push(Job::Request(Command {
                    action,
                    data,
                    reply: request.reply,
                    resend_until: Some(until),
                }));
            }
            _ => {
                let _ = request.reply.send(Err(CfmsError::ConnectionLost));
            }
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
