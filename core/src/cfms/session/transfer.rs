//! Messages inside a transfer: the download header and the upload
//! handshake, `ready`, `stop` and verdict.
#![deny(clippy::indexing_slicing)]

use super::*;

impl<'a, const Q: usize> Session<'a, Q> {
    pub(super) fn on_transfer_message(
        &mut self,
        now: Instant,
        incoming: Incoming<'_>,
    ) -> Result<(), Error> {
        if let Some(head) = self.pending.front_mut() {
            head.deadline = now + self.config.transfer_timeout;
        }
        if self.wire == Wire::Framed && matches!(self.transfer, Transfer::Download(_)) {
            self.mux.extend(
                crate::cfms::p13::StreamId(self.transfer_stream),
                now + self.config.transfer_timeout,
            );
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
                if self.wire == Wire::Framed {
                    // Success is silence; a failure still concludes.
                    self.upload_stopped(now);
                } else {
                    self.due.fence = true;
                }
                Ok(None)
            }
            (Phase::AwaitFence, Incoming::Response(r)) => {
                let size = up.sent();
                self.transfer = Transfer::None;
                self.pop_transfer();
                if r.status().is_ok() && self.wire == Wire::Framed {
                    self.emit(Event::UploadFinished { seq, size });
                } else if r.status().is_ok() {
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
                self.pop_transfer();
            }),
            _ => Err(UploadError::Unexpected),
        };
        match result {
            Ok(Some(e)) => self.emit(e),
            Ok(None) => {}
            Err(error) => {
                if matches!(self.transfer, Transfer::Upload(_)) {
                    self.transfer = Transfer::None;
                    self.pop_transfer();
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
