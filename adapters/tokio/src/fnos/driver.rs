//! The background task behind an [`FnosClient`](super::FnosClient): it
//! connects, keeps the session across reconnects, and runs each connection
//! through the runtime's [`Pump`] over the core's `Connection<fnos::Session>`.
//!
//! ```text
//! drive: open link ──► Pump::new(link, session) ──► run ──► Ended::Lost ──► backoff ──┐
//!          ▲                                          │ Ended::Stop                   │
//!          └──────────────────────────────────────────┼───────────────────────────────┘
//!                                                     ▼
//!                                                   stop
//! run:   drain events (replies to handles, pushes, login outcomes)
//!          ──► send queued requests once Ready ──► flush ──► select!(read, job, timer,
//!          two-factor code, sweep, first-login deadline) ──► drain ...
//! ```
//!
//! The task keeps no protocol rule: login steps, signing, heartbeat and
//! deadlines are the core's. It matches answers to the handles waiting for
//! them and turns frames into [`FnosReply`]s.

use std::collections::HashMap;
use std::time::Duration as StdDuration;

use naslink_core::backoff::Attempts;
use naslink_core::connection::{Event, Message};
use naslink_core::fnos::session::Timed;
use naslink_core::fnos::{self, Errno, LoginFailure, LoginMethod, Request, Session, Status};
use naslink_core::time::Duration;
use tokio::sync::{broadcast, mpsc, oneshot};
use zeroize::Zeroizing;

use super::{
    Command, FnosError, FnosEvent, FnosOptions, FnosReply, HttpAuth, Job, MAX_IN_FLIGHT,
    OwnedOptions,
};
use crate::link::{ConnectError, Link, deadline, now, sleep_until, unix_secs};
use crate::pump::Pump;
use crate::two_factor::CodeWait;

/// The pump of one fnOS connection; it owns the session while open.
type FnosPump<'c> = Pump<Session<'c, MAX_IN_FLIGHT>>;

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

/// What handling one event leaves to do once the event (which borrows the
/// pump) is gone.
enum Step {
    Nothing,
    End(Ended),
    Closed(naslink_core::ws::Closed),
    /// Free the session's slot of a request whose answer went over a limit.
    Cancel(fnos::Reqid),
    TwoFactorRejected(Option<Errno>),
}

struct Driver<'c> {
    /// The session between connections; while one is open its pump has it.
    session: Option<Session<'c, MAX_IN_FLIGHT>>,
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
    /// A request waits for room in the transmit buffer: flush, then retry.
    stalled: bool,
}

/// What one answer may hold.
#[derive(Clone, Copy)]
struct AnswerLimits {
    bytes: usize,
    frames: usize,
}

pub(super) async fn drive(
    options: FnosOptions,
    mut commands: mpsc::UnboundedReceiver<Job>,
    events: broadcast::Sender<FnosEvent>,
    first: oneshot::Sender<Result<(), FnosError>>,
) {
    let owned = OwnedOptions(options);
    let options = &owned.0;
    let mut config = match &options.device_token {
        Some(token) => fnos::Config::from_device_token(token),
        None => fnos::Config::new(&options.user, &options.password),
    };
    // The handles enforce per-request deadlines; the core's is a backstop.
    config.request_timeout = millis(options.request_timeout);
    // A login step may not outlast the first connection's whole budget.
    config.login_timeout = millis(options.connect_timeout.min(StdDuration::from_secs(30)));
    let mut driver = Driver {
        session: Some(match &options.device_token {
            Some(token) => Session::from_device_token(config, token),
            None => Session::new(config),
        }),
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
        stalled: false,
    };
    // Delays since the last successful login; connections before the first.
    let mut attempts = Attempts::new();
    loop {
        let cause = match driver.open(options).await {
            Ok(link) => {
                tracing::info!(url = %options.url, "connected");
                let Some(mut session) = driver.session.take() else {
                    return;
                };
                session.set_unix_time(now(), unix_secs());
                let mut pump = Pump::new(link, session);
                driver.logged_in = false;
                let ended = driver.run(&mut pump, &mut commands).await;
                driver.session = Some(pump.into_session());
                driver.settle_lost_requests();
                match ended {
                    Ended::Stop => return,
                    Ended::Lost(reason) => {
                        tracing::warn!(%reason, "connection lost");
                        let _ = driver.events.send(FnosEvent::Disconnected {
                            reason: reason.clone(),
                        });
                        // Only a login proves the server works: a server
                        // that upgrades and then fails must not reset it.
                        if driver.logged_in {
                            attempts.logged_in();
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
        let attempt = attempts.failed();
        let delay = options.backoff.delay(attempt - 1);
        let wake = tokio::time::Instant::now() + delay;
        if driver.first.is_some() {
            let tried = attempts.before_first_login().unwrap_or(attempt);
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
            driver.sweep_idle();
            tokio::select! {
                () = tokio::time::sleep_until(wake) => break,
                job = commands.recv() => match job {
                    Some(job) => driver.accept_idle(job),
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

    /// Hand the first connection's failure to
    /// [`FnosClient::connect`](super::FnosClient::connect) and fail what
    /// waits for it.
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
    fn no_answer(&self, state: fnos::State) -> String {
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

    /// Take a handle's job between connections.
    fn accept_idle(&mut self, job: Job) {
        if let Some(session) = self.session.as_ref() {
            accept(&mut self.queued, job, session);
        }
    }

    /// Forget abandoned requests between connections.
    fn sweep_idle(&mut self) {
        self.queued.retain(|cmd| !cmd.reply.is_closed());
    }

    async fn run(
        &mut self,
        pump: &mut FnosPump<'_>,
        commands: &mut mpsc::UnboundedReceiver<Job>,
    ) -> Ended {
        // One timer for the core's deadlines, moved only when the deadline
        // moves, and one tick for noticing abandoned requests (within
        // 500 ms): no timer is created and no table is scanned per loop turn.
        let timer = tokio::time::sleep(StdDuration::from_secs(3600));
        tokio::pin!(timer);
        let mut timer_armed = false;
        let mut sweep = tokio::time::interval(StdDuration::from_millis(500));
        sweep.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        loop {
            if let Some(ended) = self.drain(pump) {
                pump.close();
                pump.flush().await;
                return ended;
            }
            pump.flush().await;
            if std::mem::take(&mut self.stalled) {
                continue;
            }
            match pump.poll_timeout().map(deadline) {
                Some(at) if !timer_armed || at != timer.deadline() => {
                    timer.as_mut().reset(at);
                    timer_armed = true;
                }
                Some(_) => {}
                None => timer_armed = false,
            }
            let login_deadline = self.login_deadline();
            tokio::select! {
                n = pump.read() => if n == 0 { pump.handle_eof() },
                job = commands.recv() => match job {
                    Some(job) => {
                        // Take every job already waiting, so that they go
                        // out together in one write instead of one each.
                        accept(&mut self.queued, job, pump.session());
                        while let Ok(job) = commands.try_recv() {
                            accept(&mut self.queued, job, pump.session());
                        }
                    }
                    None => {
                        pump.close();
                        pump.flush().await;
                        return Ended::Stop;
                    }
                },
                () = &mut timer, if timer_armed => {
                    timer_armed = false;
                    pump.handle_timeout();
                }
                code = self.code.next() => {
                    if let Some(ended) = self.submit_code(pump, code) {
                        pump.close();
                        pump.flush().await;
                        return ended;
                    }
                }
                // Abandoned requests are noticed on this tick, not on
                // every turn of the loop.
                _ = sweep.tick() => self.sweep_abandoned(pump.session_mut()),
                // Only before the first login: no timer otherwise.
                () = sleep_until(login_deadline) => {
                    pump.close();
                    pump.flush().await;
                    return Ended::Lost(self.no_answer(pump.session().state()));
                }
            }
        }
    }

    /// A two-factor code came (or the source has none).
    fn submit_code(&mut self, pump: &mut FnosPump<'_>, code: Option<String>) -> Option<Ended> {
        if let Some(asked) = self.code_asked_at.take() {
            // The person's typing does not count against the first
            // login's deadline.
            self.first_deadline += asked.elapsed();
        }
        let submitted = match code.map(Zeroizing::new) {
            Some(code) => pump
                .session_mut()
                .submit_two_factor_code(&code, false)
                .is_ok(),
            None => false,
        };
        if submitted {
            return None;
        }
        // After a refused code, the refusal is the news.
        let error = if self.code.refused_before() {
            FnosError::LoginRefused {
                errno: Some(Errno::WrongTwoFactorCode),
            }
        } else {
            FnosError::TwoFactorRequired
        };
        self.give_up(error)
    }

    /// After a connection: idempotent requests wait for the next one; the
    /// rest fail. The session forgets the connection (its aborted requests
    /// are the ones settled here).
    fn settle_lost_requests(&mut self) {
        if let Some(session) = self.session.as_mut() {
            session.handle_disconnect(now());
            while session.poll_event().is_some() {}
        }
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
    }

    /// Act on every event the connection has, then send what waits.
    fn drain(&mut self, pump: &mut FnosPump<'_>) -> Option<Ended> {
        loop {
            let step = match pump.poll_event() {
                None => break,
                Some((Event::Session(event), message)) => self.on_event(event, message),
                Some((Event::Closed(closed), _)) => Step::Closed(closed),
                Some((Event::TransmitTooSmall(e), _)) => Step::End(Ended::Lost(format!(
                    "cannot write a login message: it needs {} bytes",
                    e.required
                ))),
                Some((Event::Connected | Event::Rejected(_), _)) => Step::Nothing,
            };
            match step {
                Step::Nothing => {}
                Step::End(ended) => return Some(ended),
                Step::Closed(closed) => return Some(Ended::Lost(pump.describe_end(closed))),
                Step::Cancel(reqid) => {
                    pump.session_mut().cancel(&reqid);
                }
                Step::TwoFactorRejected(errno) => {
                    tracing::warn!(?errno, "two-factor code refused");
                    // After an expired access token the session starts the
                    // password login again and the next challenge asks anew.
                    if pump.session().state() == fnos::State::AwaitingTwoFactorCode
                        && let Some(ended) = self.ask_code(FnosError::LoginRefused { errno })
                    {
                        return Some(ended);
                    }
                }
            }
        }
        let state = pump.session().state();
        if matches!(state, fnos::State::KeyExchange | fnos::State::LoggingIn(_)) {
            self.step = state;
        }
        if state == fnos::State::Ready {
            self.send_queued(pump);
        }
        None
    }

    /// One session event; `message` is the received text it is about.
    fn on_event(&mut self, event: fnos::Event<'_>, message: Option<Message<'_>>) -> Step {
        let text = message.and_then(|m| std::str::from_utf8(m.data).ok());
        match event {
            fnos::Event::Reply(reply) => match text {
                Some(text) => self.on_reply(&reply, text),
                None => Step::Nothing,
            },
            fnos::Event::Push(push) => {
                tracing::debug!("push");
                let value = text
                    .and_then(|t| serde_json::from_str(t).ok())
                    .unwrap_or(serde_json::Value::Null);
                let _ = self.events.send(FnosEvent::Push(value));
                // The session stopped (`Session::kicked`): reconnecting
                // would log in again and kick the other login back.
                if push == fnos::Push::Kicked
                    && let Some(ended) = self.give_up(FnosError::Login(
                        "kicked: another login took this session over".into(),
                    ))
                {
                    return Step::End(ended);
                }
                Step::Nothing
            }
            fnos::Event::Malformed(e) => {
                tracing::warn!(error = ?e, "malformed message ignored");
                Step::Nothing
            }
            fnos::Event::TwoFactorRejected(errno) => Step::TwoFactorRejected(errno),
            other => match self.lifecycle(other) {
                Some(ended) => Step::End(ended),
                None => Step::Nothing,
            },
        }
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
            fnos::Event::RequestTimedOut(reqid) => {
                self.finish(&reqid, Err(FnosError::TimedOut));
            }
            // Only on a disconnect: the requests it concerns are settled
            // (resent or failed) once the connection's loop has ended.
            fnos::Event::RequestAborted(_) => {}
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

    /// Send the queued requests the session has room for, straight into
    /// the transmit buffer.
    fn send_queued(&mut self, pump: &mut FnosPump<'_>) {
        let mut waiting = Vec::new();
        let mut queued = std::mem::take(&mut self.queued).into_iter();
        for cmd in queued.by_ref() {
            if cmd.reply.is_closed() {
                continue;
            }
            if !pump.session().has_room() {
                waiting.push(cmd);
                continue;
            }
            let mut request = Request::new(&cmd.command);
            if !cmd.params.is_empty() {
                request = request.with_object(&cmd.params);
            }
            let timeout = Duration::from_millis(cmd.timeout.as_millis() as u64);
            let sent = pump.send(&Timed {
                request: &request,
                timeout,
            });
            drop(request);
            match sent {
                Ok(reqid) => self.track(reqid, cmd),
                Err(fnos::Error::Busy) => waiting.push(cmd),
                // The transmit buffer holds other frames: flush, then retry.
                Err(fnos::Error::BufferTooSmall { required }) if required <= MAX_REQUEST => {
                    waiting.push(cmd);
                    self.stalled = true;
                    break;
                }
                Err(e) => {
                    let why = describe_session_error(&e);
                    let _ = cmd.reply.send(Err(FnosError::Request(why)));
                }
            }
        }
        waiting.extend(queued);
        self.queued = waiting;
    }

    /// Remember a request that went out, for its answer.
    fn track(&mut self, reqid: fnos::Reqid, cmd: Command) {
        tracing::debug!(command = %cmd.command, reqid = reqid.as_str(), "request");
        let resend = cmd.resend.then(|| Resend {
            deadline: tokio::time::Instant::now() + cmd.timeout,
            command: cmd.command.clone(),
            params: cmd.params,
        });
        self.in_flight.insert(
            reqid,
            InFlight {
                method: cmd.command,
                frames: Vec::new(),
                bytes: 0,
                reply: cmd.reply,
                resend,
            },
        );
    }

    /// One frame answering a request in flight.
    fn on_reply(&mut self, reply: &fnos::Reply<'_>, text: &str) -> Step {
        let Some(key) = reply.reqid() else {
            return Step::Nothing;
        };
        let status = reply.status();
        let errno = reply.errno();
        let message = (status != Status::Success && status != Status::Partial)
            .then(|| reply.error_message())
            .flatten()
            .and_then(|m| m.as_unescaped().map(str::to_owned));
        let Some(entry) = self.in_flight.get_mut(&key) else {
            return Step::Nothing;
        };
        entry.bytes = entry.bytes.saturating_add(text.len());
        entry.frames.push(text.to_owned());
        if let Some(limit) = self.limits.exceeded(entry) {
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
            return Step::Cancel(key);
        }
        if status == Status::Partial {
            return Step::Nothing;
        }
        let Some(done) = self.in_flight.remove(&key) else {
            return Step::Nothing;
        };
        let result = if status == Status::Success {
            Ok(FnosReply::from_texts(done.frames))
        } else {
            let body = done
                .frames
                .last()
                .map(|t| parse_frame(t))
                .unwrap_or_default();
            let message = message
                .unwrap_or_else(|| errno.map_or("request failed", |e| e.message()).to_owned());
            Err(FnosError::Server {
                errno,
                message,
                body,
            })
        };
        let _ = done.reply.send(result);
        Step::Nothing
    }

    fn finish(&mut self, reqid: &fnos::Reqid, result: Result<FnosReply, FnosError>) {
        if let Some(request) = self.in_flight.remove(reqid) {
            let _ = request.reply.send(result);
        }
    }

    /// Cancel requests whose caller gave up (dropped the future).
    fn sweep_abandoned(&mut self, session: &mut Session<'_, MAX_IN_FLIGHT>) {
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

/// Take a handle's job: requests wait for the session, signatures are
/// answered at once.
fn accept(queued: &mut Vec<Command>, job: Job, session: &Session<'_, MAX_IN_FLIGHT>) {
    match job {
        Job::Request(cmd) => queued.push(cmd),
        Job::Credentials { reply } => {
            let _ = reply.send(session.credentials().clone());
        }
        Job::Sign { message, reply } => {
            let credentials = session.credentials();
            let auth = session
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

/// Largest request message written (parameters included): the transmit
/// buffer less a frame header. Larger ones fail at once; smaller ones
/// that do not fit wait for the buffer to drain.
const MAX_REQUEST: usize = crate::link::TRANSMIT_BUFFER - 14;

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
pub(super) fn parse_frame(text: &str) -> serde_json::Value {
    serde_json::from_str(text).unwrap_or(serde_json::Value::Null)
}

fn login_error(failure: LoginFailure, step: fnos::State, budget: StdDuration) -> FnosError {
    let text = match failure {
        LoginFailure::Rejected { errno, .. } | LoginFailure::KeyExchangeRefused(errno) => {
            return FnosError::LoginRefused { errno };
        }
        LoginFailure::DeviceTokenRefused { errno } => {
            return FnosError::DeviceTokenRefused { errno };
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
