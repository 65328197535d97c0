//! The connection task: one [`Link`] at a time, the core's [`Session`] on
//! it, requests in, answers and events out, reconnecting with backoff.

use std::collections::HashMap;
use std::time::Duration as StdDuration;

use naslink_core::cfms::{
    self, Buffers, DownloadError, Event, LoginError, MessageKind, RequestError, Seq, Session,
};
use naslink_core::time::Duration;
use tokio::sync::{broadcast, mpsc, oneshot};

use super::files::{read_blocks, write_blocks};
use super::transfer::{
    ActiveDownload, ActiveUpload, DISK_BLOCK, DISK_QUEUE, DownloadJob, UploadJob,
};
use super::{CfmsError, CfmsEvent, CfmsOptions, MAX_CHUNKS, MAX_IN_FLIGHT, RECEIVE_CAPACITY};
use crate::link::{Incoming, Link, deadline, describe_closed, now};
use crate::two_factor::CodeWait;

pub(super) struct Command {
    pub(super) action: String,
    pub(super) data: String,
    pub(super) reply: oneshot::Sender<Result<serde_json::Value, CfmsError>>,
    /// Idempotent requests: sent again after a reconnect until then.
    pub(super) resend_until: Option<tokio::time::Instant>,
}

/// A request whose answer is awaited.
pub(super) struct InFlight {
    pub(super) reply: Reply,
    /// The request itself, when it may be sent again after a reconnect.
    pub(super) again: Option<(String, String, tokio::time::Instant)>,
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
    Lost(String),
    Stop,
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

impl Driver<'_> {
    async fn run(
        &mut self,
        mut link: Link,
        options: &CfmsOptions,
        commands: &mut mpsc::UnboundedReceiver<Job>,
    ) -> Ended {
        self.phase = Phase::ServerInfo;
        let ended = match self.session.server_info(now(), &mut self.tx) {
            Ok(sent) => {
                self.queue_text(sent.len);
                // One timer for the deadlines, moved only when they move.
                let timer = tokio::time::sleep(StdDuration::from_secs(3600));
                tokio::pin!(timer);
                let mut timer_armed = false;
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
                    match wait {
                        Some(at) if !timer_armed || at != timer.deadline() => {
                            timer.as_mut().reset(at);
                            timer_armed = true;
                        }
                        Some(_) => {}
                        None => timer_armed = false,
                    }
                    if let Some(d) = self.download.as_mut()
                        && d.buffer.len() >= DISK_BLOCK
                    {
                        // Waiting here is the back-pressure: a slow disk
                        // slows the reads instead of growing memory.
                        let block = std::mem::take(&mut d.buffer);
                        if d.to_disk.send(block).await.is_err() {
                            // The writer stopped on an error; its verdict
                            // arrives with DownloadFinished. Nothing more is
                            // kept meanwhile.
                            d.buffer = Vec::new();
                        }
                    }
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
                                break Ended::Stop;
                            }
                        },
                        () = &mut timer, if timer_armed => {
                            timer_armed = false;
                            self.session.handle_timeout(now());
                            link.handle_timeout();
                        }
                        code = self.code.next() => {
                            let sent = code.map(|code| {
                                self.session.submit_two_factor(now(), &code, &mut self.tx)
                            });
                            match sent {
                                Some(Ok(sent)) => self.queue_text(sent.len),
                                _ => {
                                    // After a refused code, the refusal is the news.
                                    let error = if self.code.refused_before() {
                                        CfmsError::LoginRefused(LoginError::InvalidTwoFactorCode)
                                    } else {
                                        CfmsError::TwoFactorRequired
                                    };
                                    self.code.reset();
                                    break self.fail_first(error).unwrap_or(Ended::Stop);
                                }
                            }
                        }
                        () = tokio::task::yield_now(), if self.upload_busy() => {}
                    }
                }
            }
            Err(e) => Ended::Lost(format!("server_info: {e:?}")),
        };
        link.close();
        link.flush().await;
        self.session.handle_disconnect(now());
        while let Some(event) = self.session.poll_event() {
            let _ = self.on_event(event, &mut None, options);
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
                                    message: Vec::new(),
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
                    Err(e) => job.fail(CfmsError::Request(format!("{e:?}"))),
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
                if let Some(request) = self.in_flight.remove(&seq) {
                    let error = match error {
                        RequestError::Timeout => CfmsError::TimedOut,
                        RequestError::Disconnected => {
                            self.lost(request);
                            return None;
                        }
                        other => CfmsError::Request(format!("{other:?}")),
                    };
                    let _ = request.reply.send(Err(error));
                }
            }
            Event::UploadReady { .. } => {
                if let Some(up) = self.upload.as_mut() {
                    up.sending = true;
                    let _ = up.progress.send((0, up.size));
                }
            }
            Event::UploadFinished { size, .. } => {
                if let Some(up) = self.upload.take() {
                    let _ = up.reply.send(Ok(size));
                }
            }
            Event::UploadFailed { error, .. } => {
                if let Some(up) = self.upload.take() {
                    let _ = up.reply.send(Err(match error {
                        cfms::UploadError::Disconnected => CfmsError::ConnectionLost,
                        cfms::UploadError::Timeout => CfmsError::TimedOut,
                        other => CfmsError::Transfer(format!("{other:?}")),
                    }));
                }
            }
            Event::DownloadStarted { file_size, .. } => {
                if let Some(d) = self.download.as_mut() {
                    d.size = file_size;
                    let _ = d.progress.send((0, file_size));
                }
            }
            Event::DownloadChunk { len, .. } => {
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
                        other => CfmsError::Transfer(format!("{other:?}")),
                    });
                }
                if error.breaks_stream() {
                    return Some(Ended::Lost(format!("download failed: {error:?}")));
                }
            }
            Event::Desynchronized(why) => {
                return Some(Ended::Lost(format!("answers out of step ({why:?})")));
            }
            // Events carry no secrets except `DownloadFinished`'s key,
            // which is handled above and never logged.
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
