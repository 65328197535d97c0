//! Receiving: messages collected or streamed, then matched to the oldest request.
#![deny(clippy::indexing_slicing)]

use super::*;

/// Where a caller wants a `file_chunk`'s ciphertext.
pub(super) type Sink<'s> = &'s mut dyn FnMut(&[u8]);

impl<'a, const Q: usize> Session<'a, Q> {
    /// Handle one whole received message.
    pub fn handle_message(
        &mut self,
        now: Instant,
        kind: MessageKind,
        payload: &[u8],
        sink: &mut impl FnMut(&[u8]),
    ) -> Result<(), Error> {
        self.handle_message_part(now, kind, payload, true, true, sink)
    }

    /// Handle a piece of a received message (`first`/`last` mark its ends).
    ///
    /// `file_chunk` messages (about 2.8 MB) are decoded as they stream in:
    /// the base64 ciphertext is decoded across any piece boundary and
    /// handed to `sink` in order; nothing of it is buffered beyond three
    /// base64 characters. Other messages are collected in the receive
    /// buffer and handled when the last piece arrives.
    pub fn handle_message_part(
        &mut self,
        now: Instant,
        kind: MessageKind,
        part: &[u8],
        first: bool,
        last: bool,
        sink: &mut impl FnMut(&[u8]),
    ) -> Result<(), Error> {
        self.handle_part(now, kind, part, first, last, Some(sink))
    }

    /// [`handle_message_part`](Self::handle_message_part) with the
    /// ciphertext going to `sink`, or (`None`) decoded into the receive
    /// buffer and announced as [`Item::Data`].
    pub(super) fn handle_part(
        &mut self,
        now: Instant,
        kind: MessageKind,
        part: &[u8],
        first: bool,
        last: bool,
        sink: Option<Sink<'_>>,
    ) -> Result<(), Error> {
        if first {
            self.begin_message(kind)?;
        }
        self.last_activity = now;
        if self.rx_streaming {
            return self.stream_part(now, part, last, sink);
        }
        let end = self.rx_len + part.len();
        if let Some(dst) = self.rx.get_mut(self.rx_len..end) {
            dst.copy_from_slice(part);
            self.rx_len = end;
        } else {
            self.rx_overflow = true;
        }
        if !last {
            return Ok(());
        }
        if self.rx_overflow {
            return self.on_overflow();
        }
        let rx = core::mem::take(&mut self.rx);
        let message = rx.get(..self.rx_len).unwrap_or_default();
        let result = self.on_message(now, message);
        self.rx = rx;
        self.rx_valid = true;
        self.body = Body::Rx;
        result
    }

    /// A whole message that is not a streamed `file_chunk`: handled where
    /// it lies, without a copy (its body is then [`Body::Message`]).
    pub(super) fn handle_in_place(
        &mut self,
        now: Instant,
        kind: MessageKind,
        message: &[u8],
    ) -> Result<(), Error> {
        self.begin_message(kind)?;
        self.last_activity = now;
        self.body = Body::Message;
        self.on_message(now, message)
    }

    /// Whether a message of `kind` starting now is a streamed `file_chunk`.
    pub(super) fn streams(&self, kind: MessageKind) -> bool {
        kind == MessageKind::Text
            && matches!(&self.transfer, Transfer::Download(d) if d.is_receiving())
            && self
                .pending
                .front()
                .is_some_and(|e| e.purpose == Purpose::Transfer)
    }

    fn begin_message(&mut self, kind: MessageKind) -> Result<(), Error> {
        if self.events.iter().any(Item::refers_to_response) {
            return Err(Error::EventsNotDrained);
        }
        self.rx_len = 0;
        self.rx_overflow = false;
        self.rx_valid = false;
        self.body = Body::None;
        self.rx_kind = kind;
        self.rx_streaming = self.streams(kind);
        if let (true, Transfer::Download(d)) = (self.rx_streaming, &mut self.transfer) {
            d.begin_message();
        }
        Ok(())
    }

    fn on_message(&mut self, now: Instant, message: &[u8]) -> Result<(), Error> {
        match Incoming::parse(self.rx_kind, message) {
            Ok(incoming) => self.on_incoming(now, incoming),
            Err(e) => self.on_malformed(e),
        }
    }

    pub(super) fn stream_part(
        &mut self,
        now: Instant,
        part: &[u8],
        last: bool,
        sink: Option<Sink<'_>>,
    ) -> Result<(), Error> {
        let Transfer::Download(d) = &mut self.transfer else {
            return Ok(());
        };
        if let Some(head) = self.pending.front_mut() {
            head.deadline = now + self.config.transfer_timeout;
        }
        let seq = d.seq;
        // Without a caller's sink the ciphertext is decoded into the
        // receive buffer (idle while a file_chunk streams): a piece of n
        // base64 bytes decodes to at most 3n/4 + 2 of them.
        let (rx, mut filled, mut overflow) = (&mut *self.rx, 0usize, false);
        let mut into_rx = |b: &[u8]| match rx.get_mut(filled..filled + b.len()) {
            Some(dst) => {
                dst.copy_from_slice(b);
                filled += b.len();
            }
            None => overflow = true,
        };
        let mut result = match sink {
            Some(sink) => d.feed(part, &mut |b: &[u8]| sink(b)),
            None => d.feed(part, &mut into_rx),
        };
        if overflow {
            result = Err(DownloadError::PieceTooLarge {
                capacity: self.rx.len(),
            });
        }
        if last && result.is_ok() {
            result = d.end_message(self.chunk_hashes);
        }
        if filled > 0 && !overflow {
            self.push(Item::Data { seq, len: filled });
        }
        match result {
            Ok(None) => Ok(()),
            Ok(Some(outcome)) => {
                self.finish_download(outcome);
                Ok(())
            }
            Err(error) => {
                self.transfer = Transfer::None;
                self.pending.pop();
                self.emit(Event::DownloadFailed { seq, error });
                if error.breaks_stream() {
                    self.broken = true;
                    self.emit(Event::Desynchronized(Desync::Transfer));
                }
                Ok(())
            }
        }
    }

    pub(super) fn finish_download(&mut self, outcome: StreamOutcome) {
        let Transfer::Download(d) = &self.transfer else {
            return;
        };
        let seq = d.seq;
        match outcome {
            StreamOutcome::Started {
                file_size,
                total_chunks,
            } => self.emit(Event::DownloadStarted {
                seq,
                file_size,
                total_chunks,
            }),
            StreamOutcome::Chunk { index, len } => {
                self.emit(Event::DownloadChunk { seq, index, len })
            }
            StreamOutcome::Finished(key) => {
                self.last_download_chunks = key.total_chunks as usize;
                self.transfer = Transfer::None;
                self.pending.pop();
                self.emit(Event::DownloadFinished { seq, key });
            }
            StreamOutcome::Failed(error) => {
                self.transfer = Transfer::None;
                self.pending.pop();
                self.emit(Event::DownloadFailed { seq, error });
            }
        }
    }

    pub(super) fn on_overflow(&mut self) -> Result<(), Error> {
        let capacity = self.rx.len();
        if self.rx_kind == MessageKind::Binary {
            // Lockdown pushes are 38 bytes; anything this large is not one.
            return Err(Error::Malformed(EnvelopeError::UnexpectedBinary));
        }
        let Some(entry) = self.pending.pop() else {
            return Err(Error::Unsolicited);
        };
        self.fail_head(
            entry.purpose,
            RequestError::ResponseTooLarge { capacity },
            DownloadError::MessageTooLarge,
        );
        Ok(())
    }

    /// The oldest request's answer could not be used.
    pub(super) fn fail_head(&mut self, purpose: Purpose, req: RequestError, down: DownloadError) {
        match (purpose, purpose.seq()) {
            (Purpose::Transfer, _) => self.fail_transfer(UploadError::Unexpected, down),
            (_, Some(seq)) => self.emit(Event::RequestFailed { seq, error: req }),
            (_, None) => {}
        }
    }

    pub(super) fn on_malformed(&mut self, e: EnvelopeError) -> Result<(), Error> {
        if self.rx_kind == MessageKind::Text {
            if let Some(entry) = self.pending.pop() {
                self.fail_head(
                    entry.purpose,
                    RequestError::Malformed(e),
                    DownloadError::Malformed,
                );
            }
        } else if matches!(
            self.pending.front().map(|e| e.purpose),
            Some(Purpose::ServerInfo(_))
        ) {
            // A framed (protocol ≥ 13) server answers server_info in binary.
            self.pending.pop();
            self.protocol = Protocol::Refused(None);
            self.emit(Event::ProtocolUnsupported { version: None });
        }
        Err(Error::Malformed(e))
    }

    pub(super) fn on_incoming(
        &mut self,
        now: Instant,
        incoming: Incoming<'_>,
    ) -> Result<(), Error> {
        if let Incoming::Lockdown { on } = incoming {
            self.lockdown = Some(on);
            self.emit(Event::Lockdown { on });
            return Ok(());
        }
        let Some(head) = self.pending.front().map(|e| e.purpose) else {
            return Err(Error::Unsolicited);
        };
        if head == Purpose::Transfer {
            return self.on_transfer_message(now, incoming);
        }
        let Incoming::Response(response) = incoming else {
            self.broken = true;
            self.emit(Event::Desynchronized(Desync::Transfer));
            return Err(Error::Unsolicited);
        };
        self.pending.pop();
        self.on_response(now, head, response);
        Ok(())
    }

    pub(super) fn on_response(&mut self, now: Instant, purpose: Purpose, r: Response<'_>) {
        match purpose {
            Purpose::ServerInfo(seq) => self.on_server_info(seq, r),
            Purpose::Login(_) => self.on_login(now, r),
            Purpose::Refresh(_) => self.on_refresh(now, r),
            Purpose::Listener(seq) => {
                if self.listener_seq == Some(seq) && self.state == State::Registering {
                    self.step(State::Ready);
                }
                self.emit(Event::Reply {
                    seq,
                    status: r.status(),
                })
            }
            Purpose::App(seq) => {
                self.emit(Event::Reply {
                    seq,
                    status: r.status(),
                });
                self.check_token_rejected(&r);
            }
            Purpose::Transfer => {}
        }
    }

    pub(super) fn on_server_info(&mut self, seq: Option<Seq>, r: Response<'_>) {
        let data = r.data();
        let version = data
            .get("protocol_version")
            .and_then(|v| v.as_u64())
            .and_then(|v| u32::try_from(v).ok());
        if !r.status().is_ok() {
            if let Some(seq) = seq {
                self.emit(Event::Reply {
                    seq,
                    status: r.status(),
                });
            }
            return;
        }
        match version {
            Some(v) if PROTOCOLS.contains(&v) => {
                self.protocol = Protocol::Spoken(v);
                self.on_spoken();
                let lockdown = data
                    .get("lockdown")
                    .and_then(|l| l.as_bool())
                    .unwrap_or(false);
                let changed = self.lockdown.is_some_and(|old| old != lockdown);
                self.lockdown = Some(lockdown);
                if seq.is_some() {
                    self.emit(Event::ServerInfo {
                        seq,
                        protocol_version: v,
                        lockdown,
                    });
                } else if changed {
                    self.emit(Event::Lockdown { on: lockdown });
                }
            }
            other => {
                self.protocol = Protocol::Refused(other);
                self.emit(Event::ProtocolUnsupported { version: other });
            }
        }
    }

    pub(super) fn on_login(&mut self, now: Instant, r: Response<'_>) {
        let data = r.data();
        let status = r.status();
        if status == Status::TwoFactorRequired {
            self.auth.awaiting_two_factor = true;
            let totp = data
                .get("method")
                .and_then(|m| m.as_str())
                .is_some_and(|m| m.eq_str("totp"));
            let method = if totp {
                TwoFactorMethod::Totp
            } else {
                TwoFactorMethod::Other
            };
            self.on_login_refused(true);
            self.emit(Event::TwoFactorRequired { method });
            return;
        }
        let error = match status {
            Status::Ok => match self.store_token(now, &r) {
                Some(expires_in) => {
                    self.auth.awaiting_two_factor = false;
                    if !self.config.relogin {
                        self.auth.password.clear();
                    }
                    self.after_login();
                    self.emit(Event::LoggedIn { expires_in });
                    return;
                }
                None => LoginError::BadToken,
            },
            Status::Unauthorized if r.message_is("Invalid credentials") => {
                LoginError::InvalidCredentials
            }
            Status::Unauthorized
                if r.message()
                    .is_some_and(|m| m.starts_with("Invalid two-factor")) =>
            {
                LoginError::InvalidTwoFactorCode
            }
            Status::Forbidden
                if r.message()
                    .is_some_and(|m| m.starts_with("Password should be changed")) =>
            {
                LoginError::PasswordExpired
            }
            Status::Lockdown => LoginError::Lockdown,
            other => LoginError::Rejected(other),
        };
        // A wrong code may be retried with another one: the password stays
        // until the login ends one way or the other.
        self.auth.awaiting_two_factor = error == LoginError::InvalidTwoFactorCode;
        if !self.auth.awaiting_two_factor {
            self.auth.password.clear();
        }
        self.auth.logged_in = false;
        self.on_login_refused(self.auth.awaiting_two_factor);
        self.emit(Event::LoginFailed(error));
    }

    /// Keep the token and schedule its refresh; `None` if unusable.
    pub(super) fn store_token(&mut self, now: Instant, r: &Response<'_>) -> Option<Duration> {
        let data = r.data();
        let token = data.get("token")?.as_str()?;
        let decoded = token.decode_into(self.auth.token.spare()).ok()?.len();
        if decoded == 0 {
            return None;
        }
        self.auth.token.commit(decoded);
        let exp = data.get("exp").and_then(|e| e.as_f64());
        let lifetime = auth::token_lifetime(
            now,
            exp,
            r.timestamp(),
            self.unix_anchor,
            self.config.assumed_token_lifetime,
        );
        self.auth.refresh_at = Some(auth::refresh_instant(
            now,
            lifetime,
            self.config.refresh_at_percent,
        ));
        self.auth.logged_in = true;
        Some(lifetime)
    }

    pub(super) fn on_refresh(&mut self, now: Instant, r: Response<'_>) {
        if r.status().is_ok()
            && let Some(expires_in) = self.store_token(now, &r)
        {
            self.emit(Event::TokenRefreshed { expires_in });
            return;
        }
        // 400 `Invalid or expired token` (or anything else): log in again.
        self.token_rejected();
    }

    pub(super) fn check_token_rejected(&mut self, r: &Response<'_>) {
        let rejected = matches!(r.status(), Status::Unauthorized | Status::Forbidden)
            && (r.message_is("Invalid user or token") || r.message_is("Authentication required"));
        if rejected && self.auth.logged_in {
            self.token_rejected();
        }
    }

    pub(super) fn token_rejected(&mut self) {
        self.auth.logged_in = false;
        self.auth.refresh_at = None;
        self.auth.token.clear();
        let relogin = self.config.relogin && !self.auth.password.is_empty();
        self.due.relogin = relogin;
        self.emit(Event::TokenRejected { relogin });
    }

    pub(super) fn on_transfer_message(
        &mut self,
        now: Instant,
        incoming: Incoming<'_>,
    ) -> Result<(), Error> {
        if let Some(head) = self.pending.front_mut() {
            head.deadline = now + self.config.transfer_timeout;
        }
        match &mut self.transfer {
            Transfer::Upload(_) => self.on_upload_message(now, incoming),
            Transfer::Download(d) => {
                let outcome = match incoming {
                    Incoming::Action(a) => d.on_header(&a, self.chunk_hashes.len()),
                    Incoming::Response(r) => StreamOutcome::Failed(d.on_response(r.status())),
                    _ => StreamOutcome::Failed(DownloadError::Unexpected),
                };
                self.finish_download(outcome);
                Ok(())
            }
            Transfer::None => Err(Error::Unsolicited),
        }
    }

    pub(super) fn on_upload_message(
        &mut self,
        now: Instant,
        incoming: Incoming<'_>,
    ) -> Result<(), Error> {
        let Transfer::Upload(up) = &mut self.transfer else {
            return Ok(());
        };
        let seq = up.seq;
        // A refused `ready N` leaves the server waiting for binary frames:
        // whatever is sent next would be read as file content.
        let mut desync = false;
        let result: Result<Option<Event>, UploadError> = match (up.phase, incoming) {
            (Phase::AwaitHandshake, Incoming::Action(a)) if is_transfer_file(&a) => {
                up.phase = Phase::HeaderDue;
                Ok(None)
            }
            (Phase::AwaitReady, Incoming::Ready { threshold }) => up
                .on_ready(threshold)
                .map(|frame_size| Some(Event::UploadReady { seq, frame_size }))
                .inspect_err(|_| desync = true),
            (Phase::AwaitReady, Incoming::Stop) => {
                up.phase = Phase::AwaitFence;
                self.due.fence = true;
                Ok(None)
            }
            (Phase::AwaitFence, Incoming::Response(r)) => {
                let size = up.sent();
                self.transfer = Transfer::None;
                self.pending.pop();
                if r.status().is_ok() {
                    // Silence after `stop`: this is the fence's answer.
                    self.emit(Event::UploadFinished { seq, size });
                    if let Some(head) = self.pending.pop() {
                        self.on_response(now, head.purpose, r);
                    }
                } else {
                    self.emit(Event::UploadFailed {
                        seq,
                        error: UploadError::Server(r.status()),
                    });
                }
                return Ok(());
            }
            (_, Incoming::Response(r)) => match up.verdict(r.status()) {
                Ok(()) if up.phase == Phase::AwaitVerdict => Ok(Some(Event::UploadFinished {
                    seq,
                    size: up.sent(),
                })),
                Ok(()) => Err(UploadError::Unexpected),
                Err(e) => Err(e),
            }
            .inspect(|_| {
                self.transfer = Transfer::None;
                self.pending.pop();
            }),
            _ => Err(UploadError::Unexpected),
        };
        match result {
            Ok(Some(e)) => self.emit(e),
            Ok(None) => {}
            Err(error) => {
                if matches!(self.transfer, Transfer::Upload(_)) {
                    self.transfer = Transfer::None;
                    self.pending.pop();
                }
                self.emit(Event::UploadFailed { seq, error });
                if desync {
                    self.broken = true;
                    self.emit(Event::Desynchronized(Desync::Transfer));
                }
            }
        }
        Ok(())
    }
}

fn is_transfer_file(a: &ServerAction<'_>) -> bool {
    a.action().eq_str("transfer_file")
}
