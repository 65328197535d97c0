//! The session on the protocol-13 wire ([`Wire::Framed`]): the same
//! requests, answers, opening sequence and events as 3–5, carried in
//! frames (`cfms::p13`).
//!
//! What changes against the text wire:
//!
//! - each request opens a stream (odd id, never reused); its answer is the
//!   CONCLUSION on that id, in whatever order answers finish, so a
//!   request's entry is taken from the in-flight queue by stream id, not
//!   from its front;
//! - a request whose deadline passes fails alone ([`RequestError::Timeout`])
//!   and its id is retired: a late answer cannot be misread, so the
//!   connection is not broken (except for the session's own steps, whose
//!   silence means the server is wedged);
//! - signed requests carry a nonce and the server-clock timestamp learnt
//!   from every answer;
//! - frames on even ids are events (lockdown), for every connection.
//!
//! Uploads run the 3–5 upload machine on their stream (the server's words
//! and JSON are the same, framed; the data frames get a header); the
//! silence after an empty upload's `stop` is its success. Downloads run
//! the 3–5 download machine too: the header and `ready` framed, every
//! frame of the download's stream streamed through the same reader (its
//! chunks carry `tag` and `prefix` instead of `hash`/`iv`), `aes_key`
//! ends the stream (no CONCLUSION), an empty file ends at `ready`; each
//! chunk's seal is kept for [`open_chunk`](crate::cfms::p13::transfer::open_chunk).
#![deny(clippy::indexing_slicing)]

use super::*;
use crate::cfms::p13::frame::{Frame, FrameType, HEADER_LEN, Header, StreamId};
use crate::cfms::p13::{self, Ended, Route, ServerEvent, Signed};
use crate::random::Entropy;

impl<'a, const Q: usize> Session<'a, Q> {
    /// Draw the nonce the next signed protocol-13 request carries. The
    /// connection does this before every request it writes; a session
    /// driven directly calls it before each signed request.
    pub fn prepare_nonce<R: Entropy + ?Sized>(&mut self, rng: &mut R) {
        if self.wire == Wire::Framed && self.nonce.is_none() {
            self.nonce = Some(Nonce::draw(rng));
        }
    }

    /// The message kind requests go out as.
    pub(crate) fn message_kind(&self) -> MessageKind {
        match self.wire {
            Wire::Text => MessageKind::Text,
            Wire::Framed => MessageKind::Binary,
        }
    }

    /// Write a request on the current wire; returns its length and stream
    /// (0 on the text wire). Nothing is tracked yet: see [`track`](Self::track).
    pub(super) fn write_request(
        &mut self,
        now: Instant,
        buf: &mut [u8],
        action: &str,
        anonymous: bool,
        data: impl FnOnce(&mut JsonWriter<'_>),
    ) -> Result<(usize, u32), Error> {
        let (user, token) = if anonymous {
            ("", "")
        } else {
            (self.auth.username.as_str(), self.auth.token.as_str())
        };
        if self.wire == Wire::Text {
            return Ok((emit_request(buf, action, user, token, data)?, 0));
        }
        let stream = match self.mux.next_id() {
            Some(id) if self.mux.can_open() => id,
            _ => return Err(Error::Busy),
        };
        // An empty username or token makes a request unauthenticated, and
        // those carry neither nonce nor timestamp.
        let signed = if user.is_empty() || token.is_empty() {
            None
        } else {
            Some(Signed {
                username: user,
                token,
                nonce: self.nonce.ok_or(Error::NonceNeeded)?,
                timestamp: self.clock.timestamp(now).ok_or(Error::ServerInfoFirst)?,
            })
        };
        let len = p13::emit_request(buf, stream, action, signed.as_ref(), data)?;
        if signed.is_some() {
            self.nonce = None;
        }
        self.mux.open(now).map_err(|_| Error::Busy)?;
        Ok((len, stream.0))
    }

    /// Track a written request until its answer.
    pub(super) fn track(
        &mut self,
        purpose: Purpose,
        now: Instant,
        stream: u32,
    ) -> Result<(), Error> {
        self.pending
            .push_on(purpose, now + self.config.request_timeout, stream)?;
        self.last_activity = now;
        self.last_stream = stream;
        Ok(())
    }

    /// Whether `version` is spoken on the current wire.
    pub(super) fn speaks(&self, version: u32) -> bool {
        match self.wire {
            Wire::Text => PROTOCOLS.contains(&version),
            Wire::Framed => version == p13::negotiate::FRAMED,
        }
    }

    /// A whole received message on the framed wire.
    pub(super) fn on_frame(&mut self, now: Instant, message: &[u8]) -> Result<(), Error> {
        if self.rx_kind == MessageKind::Text {
            return Err(Error::Frame(FrameError::TextMessage));
        }
        let frame = Frame::parse(message).map_err(Error::Frame)?;
        self.body_skip = HEADER_LEN;
        match self.mux.route(now, frame.header) {
            Route::Event { .. } => {
                // Unknown or unreadable events are ignored (§7).
                if let Ok(ServerEvent::Lockdown { on }) = ServerEvent::parse(frame.payload) {
                    self.lockdown = Some(on);
                    self.emit(Event::Lockdown { on });
                }
            }
            Route::Answer { stream, .. }
                if stream.0 == self.transfer_stream && !matches!(self.transfer, Transfer::None) =>
            {
                // The upload's own steps are the 3-5 words and JSON, framed.
                match Incoming::parse(MessageKind::Text, frame.payload) {
                    Ok(incoming) => self.on_transfer_message(now, incoming)?,
                    Err(_) => {
                        self.fail_transfer(UploadError::Unexpected, DownloadError::Unexpected)
                    }
                }
            }
            // A late answer to a request given up on, or a PROCESS frame
            // of a request that has no intermediate steps.
            Route::Stray { .. } | Route::Answer { last: false, .. } => {}
            Route::Answer { stream, last: true } => {
                let Some(entry) = self.pending.remove_stream(stream.0) else {
                    return Ok(());
                };
                match Response::parse(frame.payload) {
                    Ok(r) => {
                        self.clock.learn_from(now, &r);
                        self.on_response(now, entry.purpose, r);
                    }
                    Err(e) => self.fail_head(
                        entry.purpose,
                        RequestError::Malformed(e),
                        DownloadError::Malformed,
                    ),
                }
            }
        }
        Ok(())
    }

    /// Take the running transfer's entry from the in-flight queue.
    pub(super) fn pop_transfer(&mut self) {
        match self.wire {
            Wire::Text => {
                self.pending.pop();
            }
            Wire::Framed => {
                self.pending.remove_stream(self.transfer_stream);
                self.mux.finish(StreamId(self.transfer_stream));
            }
        }
    }

    /// The 5-byte header of the running upload's frames.
    pub(crate) fn upload_frame_header(&self) -> Option<[u8; HEADER_LEN]> {
        (self.wire == Wire::Framed && matches!(self.transfer, Transfer::Upload(_))).then(|| {
            Header {
                stream: StreamId(self.transfer_stream),
                kind: FrameType::Process,
            }
            .to_bytes()
        })
    }

    /// How much of the current upload frame's header is still to be sent.
    pub(crate) fn upload_head_left(&self) -> usize {
        HEADER_LEN - self.upload_head_sent.min(HEADER_LEN)
    }

    /// `n` more header bytes were handed to the WebSocket.
    pub(crate) fn upload_head_advance(&mut self, n: usize) {
        self.upload_head_sent = (self.upload_head_sent + n).min(HEADER_LEN);
    }

    /// An empty upload's `stop`: wait a little for a late CONCLUSION.
    pub(super) fn upload_stopped(&mut self, now: Instant) {
        self.mux
            .end_quietly(now, StreamId(self.transfer_stream), p13::streams::QUIET_END);
    }

    /// Keep the running upload's stream alive while the client sends.
    pub(super) fn upload_touch(&mut self, now: Instant, limit: Duration) {
        if self.wire == Wire::Framed {
            self.mux.extend(StreamId(self.transfer_stream), now + limit);
        }
    }

    /// A framed message larger than the receive buffer: only its stream's
    /// request fails (a large directory listing does not break the
    /// connection); an oversized event is dropped.
    pub(super) fn on_framed_overflow(&mut self, capacity: usize) -> Result<(), Error> {
        let header = self
            .rx_header
            .ok_or(Error::Frame(FrameError::ShortFrame { len: 0 }))?;
        if let Route::Answer { stream, last: true } = self.mux.route(self.last_activity, header)
            && let Some(entry) = self.pending.remove_stream(stream.0)
        {
            self.fail_head(
                entry.purpose,
                RequestError::ResponseTooLarge { capacity },
                DownloadError::MessageTooLarge,
            );
        }
        Ok(())
    }

    /// Protocol 13's deadlines: each stream's own. Returns whether the
    /// connection is now broken.
    pub(super) fn expire_streams(&mut self, now: Instant) -> bool {
        let mut broken = false;
        while let Some(ended) = self.mux.take_ended(now) {
            let (Ended::Timeout(stream) | Ended::Quiet(stream) | Ended::Disconnected(stream)) =
                ended;
            let Some(entry) = self.pending.remove_stream(stream.0) else {
                continue;
            };
            match entry.purpose {
                Purpose::App(seq) => self.emit(Event::RequestFailed {
                    seq,
                    error: RequestError::Timeout,
                }),
                // Silence after an empty upload's `stop` is success (§9.5).
                Purpose::Transfer if matches!(ended, Ended::Quiet(_)) => {
                    if let Transfer::Upload(up) = &self.transfer {
                        let (seq, size) = (up.seq, up.sent());
                        self.transfer = Transfer::None;
                        self.emit(Event::UploadFinished { seq, size });
                    }
                }
                Purpose::Transfer => {
                    self.fail_transfer(UploadError::Timeout, DownloadError::Timeout)
                }
                // The session's own steps: a server that leaves them
                // unanswered is wedged (§12.6); reconnect.
                other => {
                    if let Some(seq) = other.seq() {
                        self.emit(Event::RequestFailed {
                            seq,
                            error: RequestError::Timeout,
                        });
                    }
                    broken = true;
                }
            }
        }
        broken
    }

    /// The connection closed: settle the probe, reset the streams.
    pub(super) fn framed_disconnect(&mut self) {
        if self.probe && self.negotiated.is_none() && self.opening_seq.is_some() && self.peer_closed
        {
            // The probe went out and the server closed without answering:
            // a 3–5 server. The next connection speaks text. (A close of
            // our own, after a timeout say, proves nothing.)
            self.negotiated = Some(p13::negotiate::closed_before_answer());
            self.wire = Wire::Text;
            self.probe = false;
        }
        self.mux = Streams::new(self.config.request_timeout);
        self.nonce = None;
        self.body_skip = 0;
        if let Some(Err(u)) = self.config.protocol_version.map(Wire::for_version) {
            self.protocol = Protocol::Refused(Some(u.version));
        }
    }

    /// The probe was answered by a server speaking `version` on frames.
    pub(super) fn framed_answered(&mut self, version: u32, lockdown: bool) {
        if self.probe && self.wire == Wire::Framed && self.negotiated.is_none() {
            self.negotiated = Some(Negotiated::Framed {
                protocol_version: version,
                lockdown,
            });
        }
    }
}
