//! Upload: `upload_file` → handshake → header → `ready`/`stop` → binary
//! frames → verdict.
//!
//! States and transitions (the entry stays at the head of the request
//! queue for the whole exchange, so nothing else may be sent meanwhile):
//!
//! ```text
//! AwaitHandshake --{"action":"transfer_file"}--> HeaderDue --poll_transmit--> AwaitReady
//! AwaitHandshake --response (404, 400 …)-------> failed
//! AwaitReady --"ready" | "ready N"--> Sending --last frame--> AwaitVerdict --response--> done
//! AwaitReady --"stop" (size 0)------> AwaitFence --response--> done
//! AwaitReady --response (400 invalid header)--> failed
//! ```
//!
//! Frames: the server stops reading at the first binary message shorter
//! than the threshold (8192 at protocol 3; at protocol ≥ 4 the N of
//! `ready N`, which answers the `max_chunk_size` this client sends). So
//! every message but the last is exactly N bytes and, when the size is a
//! multiple of N, an **empty** final message follows. The caller feeds file
//! bytes in pieces of any size through
//! [`Session::upload_write`](super::Session::upload_write), which says how
//! many bytes belong to the current message and where messages begin and
//! end.
//!
//! SHA-256: the caller supplies the hash in [`UploadSource`] (compute it in
//! a first pass over the file, e.g. with [`sha256_of`] or `sha2` directly).
//! The session hashes what is actually sent and, if it differs from what
//! was announced, reports [`UploadError::SourceChanged`]. `sha256: None`
//! announces `null`, which the server accepts without checking.
//!
//! After `stop` the real server sends nothing when it stored the empty file
//! and a 500 when it failed. To tell silence from a late verdict without a
//! timer, the session sends a `server_info` *fence*: the next non-200
//! response is the upload's verdict, a 200 is the fence's own answer.
#![deny(clippy::indexing_slicing)]

use sha2::{Digest, Sha256};

use super::hex::hex32;
use super::queue::Seq;
use super::status::Status;
use crate::InsufficientSize;
use crate::json::write::JsonWriter;

/// Frame threshold at protocol 3 (fixed by the server).
pub const PROTOCOL3_FRAME: u32 = 8192;
/// Smallest `max_chunk_size` a protocol ≥ 4 server accepts.
pub const MIN_FRAME: u32 = 512;
/// Largest `ready N` threshold accepted when no `max_chunk_size` was
/// announced (protocol 3): such a server frames at 8192, so a larger N is
/// not a threshold the client agreed to build frames for.
pub const UNANNOUNCED_FRAME_LIMIT: u32 = PROTOCOL3_FRAME;

/// What the caller is about to upload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UploadSource {
    /// Exact size in bytes.
    pub size: u64,
    /// SHA-256 of the content, or `None` to announce `null`.
    pub sha256: Option<[u8; 32]>,
}

/// SHA-256 of a byte slice (a convenience for the first pass over data
/// already in memory).
pub fn sha256_of(data: &[u8]) -> [u8; 32] {
    Sha256::digest(data).into()
}

/// Where the bytes given to `upload_write` go.
///
/// Feed the file until every byte is accepted, then call once more with an
/// empty slice: when the size is a multiple of the frame size, that call
/// answers the required empty final message (`accepted == 0` with both
/// `message_start` and `message_end`); otherwise it answers no message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UploadWrite {
    /// How many leading bytes of the input belong to the current binary
    /// message (send them; give the rest again in the next call).
    pub accepted: usize,
    /// These bytes begin a new binary message.
    pub message_start: bool,
    /// These bytes complete the binary message.
    pub message_end: bool,
}

/// Why an upload failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UploadError {
    /// The server refused or failed (`Task not found`, size/SHA mismatch, 500 …).
    Server(Status),
    /// The bytes sent hash to `sent`, not the announced `announced`: the
    /// source changed between the hashing pass and the sending pass.
    SourceChanged {
        /// What the header announced.
        announced: [u8; 32],
        /// What was actually sent.
        sent: [u8; 32],
    },
    /// The server answered something a protocol 3–5 upload never contains.
    Unexpected,
    /// The server's `ready N` threshold is below the protocol minimum.
    BadThreshold(u32),
    /// The server's `ready N` threshold is above the `max_chunk_size` the
    /// client announced ([`UNANNOUNCED_FRAME_LIMIT`] when none was): frames
    /// that large were never agreed to, and the connection is given up.
    ThresholdAboveAnnounced {
        /// The announced `max_chunk_size` (or the limit).
        announced: u32,
        /// The N of `ready N`.
        got: u32,
    },
    /// No answer in time.
    Timeout,
    /// The connection closed.
    Disconnected,
}

/// Misuse of [`Session::upload_write`](super::Session::upload_write).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UploadWriteError {
    /// No upload is in its sending phase (wait for the `UploadReady` event).
    NotSending,
    /// More bytes than the announced size.
    BeyondAnnouncedSize,
}

impl core::fmt::Display for UploadError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            UploadError::Server(status) => write!(f, "the server answered {}", status.code()),
            UploadError::SourceChanged { .. } => {
                f.write_str("the file changed while it was being sent (its SHA-256 differs)")
            }
            UploadError::Unexpected => f.write_str("the server answered out of the upload's order"),
            UploadError::BadThreshold(n) => write!(
                f,
                "the server asked for frames of {n} bytes, below the protocol's {MIN_FRAME}"
            ),
            UploadError::ThresholdAboveAnnounced { announced, got } => write!(
                f,
                "the server asked for frames of {got} bytes, above the {announced} this client announced"
            ),
            UploadError::Timeout => f.write_str("no answer in time"),
            UploadError::Disconnected => f.write_str("the connection closed"),
        }
    }
}

impl core::fmt::Display for UploadWriteError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            UploadWriteError::NotSending => "no upload is sending now",
            UploadWriteError::BeyondAnnouncedSize => {
                "the file grew beyond the size announced to the server"
            }
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Phase {
    AwaitHandshake,
    HeaderDue,
    AwaitReady,
    Sending,
    AwaitVerdict,
    AwaitFence,
}

pub(crate) struct Upload {
    pub(crate) seq: Seq,
    pub(crate) phase: Phase,
    source: UploadSource,
    max_chunk: Option<u32>,
    threshold: u32,
    sent: u64,
    in_frame: u32,
    empty_final_due: bool,
    hasher: Sha256,
    pub(crate) mismatch: Option<UploadError>,
}

impl Upload {
    pub(crate) fn new(seq: Seq, source: UploadSource, max_chunk: Option<u32>) -> Self {
        Upload {
            seq,
            phase: Phase::AwaitHandshake,
            source,
            max_chunk,
            threshold: PROTOCOL3_FRAME,
            sent: 0,
            in_frame: 0,
            empty_final_due: false,
            hasher: Sha256::new(),
            mismatch: None,
        }
    }

    /// `{"action":"transfer_file","data":{"sha256":…,"file_size":N[,"max_chunk_size":M]}}`
    pub(crate) fn header(&self, buf: &mut [u8]) -> Result<usize, InsufficientSize> {
        let mut w = JsonWriter::new(buf, 0);
        w.begin_object();
        w.field_str("action", "transfer_file");
        w.key("data");
        w.begin_object();
        match (&self.source.sha256, self.source.size) {
            // The real client announces `null` for an empty file.
            (Some(h), n) if n > 0 => {
                let hex = hex32(h);
                w.field_str("sha256", core::str::from_utf8(&hex).unwrap_or(""));
            }
            _ => {
                w.field_raw("sha256", b"null");
            }
        }
        w.field_u64("file_size", self.source.size);
        if let Some(m) = self.max_chunk {
            w.field_u64("max_chunk_size", u64::from(m));
        }
        w.end_object();
        w.end_object();
        w.finish()
    }

    /// `ready` / `ready N`: start sending, in frames of at most what was announced.
    pub(crate) fn on_ready(&mut self, threshold: Option<u32>) -> Result<u32, UploadError> {
        let t = threshold.unwrap_or(PROTOCOL3_FRAME);
        if t < MIN_FRAME {
            return Err(UploadError::BadThreshold(t));
        }
        let announced = self.max_chunk.unwrap_or(UNANNOUNCED_FRAME_LIMIT);
        if t > announced {
            return Err(UploadError::ThresholdAboveAnnounced { announced, got: t });
        }
        self.threshold = t;
        self.phase = Phase::Sending;
        if self.source.size == 0 {
            // Never announced by a real server (size 0 answers `stop`), but
            // the rule still holds: one empty message ends the upload.
            self.empty_final_due = true;
        }
        Ok(t)
    }

    pub(crate) fn write(&mut self, data: &[u8]) -> Result<UploadWrite, UploadWriteError> {
        if self.phase == Phase::AwaitVerdict && data.is_empty() {
            // Asking again after the last message is harmless: nothing more to send.
            return Ok(UploadWrite {
                accepted: 0,
                message_start: false,
                message_end: false,
            });
        }
        if self.phase != Phase::Sending {
            return Err(UploadWriteError::NotSending);
        }
        if self.empty_final_due {
            if !data.is_empty() {
                return Err(UploadWriteError::BeyondAnnouncedSize);
            }
            self.empty_final_due = false;
            self.finish_sending();
            return Ok(UploadWrite {
                accepted: 0,
                message_start: true,
                message_end: true,
            });
        }
        let remaining = self.source.size - self.sent;
        let room = u64::from(self.threshold - self.in_frame).min(remaining);
        let room = usize::try_from(room).unwrap_or(usize::MAX);
        // The first `room` bytes, or all of `data` when it is shorter.
        let chunk = data.get(..room).unwrap_or(data);
        let take = chunk.len();
        if take == 0 {
            return Ok(UploadWrite {
                accepted: 0,
                message_start: false,
                message_end: false,
            });
        }
        let message_start = self.in_frame == 0;
        self.hasher.update(chunk);
        self.sent += take as u64;
        self.in_frame += take as u32;
        let mut message_end = false;
        if self.in_frame == self.threshold {
            message_end = true;
            self.in_frame = 0;
            if self.sent == self.source.size {
                self.empty_final_due = true;
            }
        } else if self.sent == self.source.size {
            message_end = true;
            self.in_frame = 0;
            self.finish_sending();
        }
        Ok(UploadWrite {
            accepted: take,
            message_start,
            message_end,
        })
    }

    fn finish_sending(&mut self) {
        self.phase = Phase::AwaitVerdict;
        let sent: [u8; 32] = self.hasher.clone().finalize().into();
        if let Some(announced) = self.source.sha256
            && announced != sent
            && self.source.size > 0
        {
            self.mismatch = Some(UploadError::SourceChanged { announced, sent });
        }
    }

    /// The verdict: 200 is success unless what was sent contradicts the header.
    pub(crate) fn verdict(&self, status: Status) -> Result<(), UploadError> {
        match (status, self.mismatch) {
            (_, Some(local)) => Err(local),
            (Status::Ok, None) => Ok(()),
            (other, None) => Err(UploadError::Server(other)),
        }
    }

    /// The binary message the next [`write`](Self::write) goes into:
    /// whether it starts there, its whole length, and the bytes it still
    /// takes. `None` outside the sending phase.
    pub(crate) fn frame(&self) -> Option<(bool, u64, u64)> {
        if self.phase != Phase::Sending {
            return None;
        }
        if self.empty_final_due {
            return Some((true, 0, 0));
        }
        let remaining = self.source.size - self.sent;
        let left = u64::from(self.threshold - self.in_frame).min(remaining);
        Some((self.in_frame == 0, u64::from(self.in_frame) + left, left))
    }

    /// Bytes of the file accepted so far.
    pub(crate) fn sent(&self) -> u64 {
        self.sent
    }
}
