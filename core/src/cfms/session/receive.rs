//! Receiving: messages collected or streamed, then matched to the oldest request.
#![deny(clippy::indexing_slicing)]

use super::*;

impl<'a, const Q: usize> Session<'a, Q> {
    /// Handle a piece of a received message (`first`/`last` mark its ends).
    ///
    /// `file_chunk` messages (about 2.8 MB) are decoded as they stream in:
    /// the base64 ciphertext is decoded across any piece boundary into the
    /// receive buffer and announced as [`Item::Data`]; nothing of it is
    /// kept beyond three base64 characters. Other messages are collected in
    /// the receive buffer and handled when the last piece arrives.
    pub(super) fn handle_part(
        &mut self,
        now: Instant,
        kind: MessageKind,
        part: &[u8],
        first: bool,
        last: bool,
    ) -> Result<(), Error> {
        if first {
            self.begin_message(kind, part)?;
            self.rx_head_len = 0;
            self.rx_undecided = self.wire == Wire::Framed
                && !self.rx_streaming
                && part.len() < HEADER_LEN
                && matches!(&self.transfer, Transfer::Download(d) if d.is_receiving());
        }
        self.last_activity = now;
        if self.rx_streaming {
            return self.stream_part(now, part, first, last);
        }
        if self.rx_undecided {
            return self.decide_part(now, kind, part, last);
        }
        self.collect_part(now, part, first, last)
    }

    /// A message whose first piece was shorter than a frame header, while
    /// a download receives: gather the header, then stream the message (the
    /// download's) or collect it (any other).
    fn decide_part(
        &mut self,
        now: Instant,
        kind: MessageKind,
        part: &[u8],
        last: bool,
    ) -> Result<(), Error> {
        let take = (HEADER_LEN - self.rx_head_len.min(HEADER_LEN)).min(part.len());
        let (bytes, rest) = part.split_at(take);
        if let Some(dst) = self
            .rx_head
            .get_mut(self.rx_head_len..self.rx_head_len + take)
        {
            dst.copy_from_slice(bytes);
            self.rx_head_len += take;
        }
        if self.rx_head_len < HEADER_LEN && !last {
            return Ok(());
        }
        self.rx_undecided = false;
        let head = self.rx_head;
        let head = head.get(..self.rx_head_len).unwrap_or_default();
        let only = last && rest.is_empty();
        if self.streams(kind, head) {
            self.rx_streaming = true;
            if let Transfer::Download(d) = &mut self.transfer {
                d.begin_message();
            }
            self.stream_part(now, head, true, only)?;
            return match only {
                true => Ok(()),
                false => self.stream_part(now, rest, false, last),
            };
        }
        self.collect_part(now, head, true, only)?;
        match only {
            true => Ok(()),
            false => self.collect_part(now, rest, false, last),
        }
    }

    /// A piece of a message that is collected in the receive buffer.
    fn collect_part(
        &mut self,
        now: Instant,
        part: &[u8],
        first: bool,
        last: bool,
    ) -> Result<(), Error> {
        if self.wire == Wire::Framed {
            if first {
                self.rx_header = None;
            }
            if let Ok(Piece::Payload { header, .. }) = self.rx_frame.feed(part, first, last) {
                self.rx_header = Some(header);
            }
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
        self.begin_message(kind, message)?;
        self.last_activity = now;
        self.body = Body::Message;
        self.on_message(now, message)
    }

    /// Whether a message of `kind` starting with `head` is a streamed
    /// `file_chunk` (or, on protocol 13, any frame of the receiving
    /// download's stream: its chunks, key, or error).
    pub(super) fn streams(&self, kind: MessageKind, head: &[u8]) -> bool {
        if !matches!(&self.transfer, Transfer::Download(d) if d.is_receiving()) {
            return false;
        }
        match self.wire {
            Wire::Text => {
                kind == MessageKind::Text
                    && self
                        .pending
                        .front()
                        .is_some_and(|e| e.purpose == Purpose::Transfer)
            }
            // A first piece shorter than the header is collected instead
            // (a chunk then overflows and fails the download by name).
            Wire::Framed => {
                kind == MessageKind::Binary
                    && head
                        .first_chunk::<HEADER_LEN>()
                        .and_then(|h| FrameHeader::parse(*h).ok())
                        .is_some_and(|h| h.stream.0 == self.transfer_stream)
            }
        }
    }

    fn begin_message(&mut self, kind: MessageKind, head: &[u8]) -> Result<(), Error> {
        if self.events.iter().any(Item::refers_to_response) {
            return Err(Error::EventsNotDrained);
        }
        self.rx_len = 0;
        self.rx_overflow = false;
        self.body = Body::None;
        self.body_skip = 0;
        self.rx_kind = kind;
        self.rx_streaming = self.streams(kind, head);
        if let (true, Transfer::Download(d)) = (self.rx_streaming, &mut self.transfer) {
            d.begin_message();
        }
        Ok(())
    }

    fn on_message(&mut self, now: Instant, message: &[u8]) -> Result<(), Error> {
        if self.wire == Wire::Framed {
            return self.on_frame(now, message);
        }
        match Incoming::parse(self.rx_kind, message) {
            Ok(incoming) => self.on_incoming(now, incoming),
            Err(e) => self.on_malformed(e),
        }
    }

    pub(super) fn stream_part(
        &mut self,
        now: Instant,
        mut part: &[u8],
        first: bool,
        last: bool,
    ) -> Result<(), Error> {
        let Transfer::Download(d) = &mut self.transfer else {
            return Ok(());
        };
        if self.wire == Wire::Framed {
            if first {
                // `streams` read this header: the download's own stream.
                if let Some(h) = part
                    .first_chunk::<HEADER_LEN>()
                    .and_then(|h| FrameHeader::parse(*h).ok())
                {
                    self.mux.route(now, h);
                }
                part = part.get(HEADER_LEN..).unwrap_or_default();
            }
            self.mux.extend(
                super::super::p13::StreamId(self.transfer_stream),
                now + self.config.transfer_timeout,
            );
        } else if let Some(head) = self.pending.front_mut() {
            head.deadline = now + self.config.transfer_timeout;
        }
        let seq = d.seq;
        // The ciphertext is decoded into the receive buffer (idle while a
        // file_chunk streams): a piece of n base64 bytes decodes to at most
        // 3n/4 + 2 of them.
        let (rx, mut filled, mut overflow) = (&mut *self.rx, 0usize, false);
        let mut into_rx = |b: &[u8]| match rx.get_mut(filled..filled + b.len()) {
            Some(dst) => {
                dst.copy_from_slice(b);
                filled += b.len();
            }
            None => overflow = true,
        };
        let mut result = d.feed(part, &mut into_rx);
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
                self.end_download();
                self.emit(Event::DownloadFailed { seq, error });
                // On protocol 13 the stream's id is retired: its late
                // frames are dropped, other streams carry on.
                if error.breaks_stream() && self.wire == Wire::Text {
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
                self.end_download();
                self.last_download_chunks = key.total_chunks as usize;
                self.emit(Event::DownloadFinished { seq, key });
            }
            StreamOutcome::Failed(error) => {
                self.end_download();
                self.emit(Event::DownloadFailed { seq, error });
            }
        }
    }

    /// The download ended: its entry leaves the in-flight queue (on 13 its
    /// stream id is retired: `aes_key` has no CONCLUSION). The seals held
    /// stay readable through `chunk_hashes` on 13, for a resume.
    pub(super) fn end_download(&mut self) {
        if let Transfer::Download(d) = &self.transfer
            && self.wire == Wire::Framed
        {
            self.last_download_chunks = d.hashes_known();
        }
        self.transfer = Transfer::None;
        self.pop_transfer();
    }

    pub(super) fn on_overflow(&mut self) -> Result<(), Error> {
        let capacity = self.rx.len();
        if self.wire == Wire::Framed {
            return self.on_framed_overflow(capacity);
        }
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
}
