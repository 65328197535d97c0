//! Download: `download_file` → header → `ready` → `file_chunk`… → `aes_key`.
//!
//! ```text
//! AwaitHeader --{"action":"transfer_file","data":{sha256,file_size,chunk_size,total_chunks}}--> ReadyDue
//! AwaitHeader --response (404 Task not found, 400 …)--> failed
//! ReadyDue --poll_transmit sends "ready"--> Receiving (total_chunks 0: finished at once)
//! ReadyDue (too many chunks for the hash storage) --sends "cancel"--> AwaitRefusal --400--> failed
//! Receiving --file_chunk i--> Receiving --aes_key--> finished   (a response: failed)
//! ```
//!
//! `file_chunk` messages (2 MiB of ciphertext, about 2.8 MB of base64) are
//! read by the crate's streaming JSON reader ([`json::stream`](crate::json::stream)):
//! structure byte by byte, the `chunk`
//! string in bulk through a streaming base64 decoder to the caller's sink.
//! Keys may come in any order. Each chunk's `hash` (SHA-256 of its
//! plaintext) is kept in the caller-provided storage for the decryption
//! pass; the key arrives last, so decryption happens afterwards over the
//! ciphertext the caller stored ([`FileDecryptor`](super::FileDecryptor)).
//!
//! Protocol 13 (`cfms-13.md` §10) runs the same machine: no `sha256` in the
//! header, an optional resume `offset`, chunks with `tag` and `prefix`
//! (AES-256-GCM per chunk, kept as the chunk's seal where 3–5 keep its
//! hash), no `iv`, and a `null` key when another attempt finished first.
#![deny(clippy::indexing_slicing)]

use super::b64::{self, Base64Stream};
use super::envelope::ServerAction;
use super::hex::unhex32;
use super::status::Status;
use crate::json::stream::{self, StreamError, Visit};
use crate::time::Instant;

/// What the decryption pass needs, from the header and the `aes_key` message.
/// `Debug` hides the key and the IV.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct DownloadKey {
    /// AES-256 key.
    pub key: [u8; 32],
    /// CFB8 IV (sent with chunk 0).
    pub iv: [u8; 16],
    /// SHA-256 of the whole file (`None` for an empty file).
    pub sha256: Option<[u8; 32]>,
    /// Plaintext size.
    pub file_size: u64,
    /// Plaintext bytes per chunk (2 MiB on the real server).
    pub chunk_size: u32,
    /// Number of chunks.
    pub total_chunks: u32,
}

impl core::fmt::Debug for DownloadKey {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("DownloadKey")
            .field("key", &"<redacted>")
            .field("iv", &"<redacted>")
            .field("sha256", &self.sha256)
            .field("file_size", &self.file_size)
            .field("chunk_size", &self.chunk_size)
            .field("total_chunks", &self.total_chunks)
            .finish()
    }
}

/// Why a download failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DownloadError {
    /// The server answered with an error code.
    Server(Status),
    /// The header's fields are missing or inconsistent.
    BadHeader,
    /// More chunks than the hash storage holds.
    TooManyChunks {
        /// Chunks announced.
        total: u32,
        /// Hash slots available.
        capacity: usize,
    },
    /// A chunk index other than the next one.
    ChunkOutOfOrder {
        /// The index expected.
        expected: u32,
        /// The index received.
        got: u64,
    },
    /// A chunk's ciphertext length differs from its share of the file.
    ChunkLength {
        /// Chunk index.
        index: u32,
        /// Bytes expected.
        expected: u64,
        /// Bytes received.
        got: u64,
    },
    /// A chunk without a valid `hash`, or chunk 0 without a valid `iv`.
    BadChunkFields {
        /// Chunk index.
        index: u32,
    },
    /// The `aes_key` is missing, not 32 bytes, or arrived early.
    BadKey,
    /// Protocol 13: the `aes_key` is `null`, another attempt on the task
    /// finished first (§10.9); the task is spent.
    KeyTaken,
    /// A number, literal or read string in a transfer message is longer
    /// than any valid value ([`MAX_FIELD_LEN`] bytes): not a CFMS server's
    /// message.
    FieldTooLong {
        /// Which member.
        field: TransferField,
        /// The index the next `file_chunk` would carry (for `aes_key`: the
        /// number of chunks).
        chunk: u32,
    },
    /// A transfer message is not JSON, or its base64 is invalid.
    Malformed,
    /// A non-chunk message did not fit the receive buffer.
    MessageTooLarge,
    /// The ciphertext decoded from one received piece of a `file_chunk`
    /// did not fit the session's receive buffer (which must hold 3/4 of
    /// the WebSocket receive buffer when the session decodes for a
    /// [`Connection`](crate::connection::Connection)).
    PieceTooLarge {
        /// The session's receive buffer size.
        capacity: usize,
    },
    /// A message that has no place in a download.
    Unexpected,
    /// No message in time.
    Timeout,
    /// The connection closed.
    Disconnected,
}

impl DownloadError {
    /// Whether chunk messages may still be in flight after this failure:
    /// then the connection cannot be used for requests anymore.
    pub fn breaks_stream(&self) -> bool {
        !matches!(
            self,
            DownloadError::Server(_) | DownloadError::Timeout | DownloadError::Disconnected
        )
    }
}

impl core::fmt::Display for DownloadError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            DownloadError::Server(status) => write!(f, "the server answered {}", status.code()),
            DownloadError::BadHeader => {
                f.write_str("the transfer header is missing fields or inconsistent")
            }
            DownloadError::TooManyChunks { total, capacity } => write!(
                f,
                "the file has {total} chunks, this client keeps at most {capacity}"
            ),
            DownloadError::ChunkOutOfOrder { expected, got } => {
                write!(f, "chunk {got} arrived where chunk {expected} was due")
            }
            DownloadError::ChunkLength {
                index,
                expected,
                got,
            } => write!(f, "chunk {index} holds {got} bytes instead of {expected}"),
            DownloadError::BadChunkFields { index } => write!(
                f,
                "chunk {index} lacks a valid hash (or chunk 0 a valid iv)"
            ),
            DownloadError::BadKey => f.write_str("the AES key is missing, not 32 bytes, or early"),
            DownloadError::KeyTaken => {
                f.write_str("another attempt finished this download task first (no key)")
            }
            DownloadError::FieldTooLong { field, chunk } => write!(
                f,
                "{field} in the message for chunk {chunk} is too long to be valid"
            ),
            DownloadError::Malformed => f.write_str("a transfer message is not JSON or not base64"),
            DownloadError::MessageTooLarge => f.write_str("a transfer message is too large"),
            DownloadError::PieceTooLarge { capacity } => write!(
                f,
                "a received piece of a chunk decodes to more than the {capacity}-byte receive buffer"
            ),
            DownloadError::Unexpected => f.write_str("a message that has no place in a download"),
            DownloadError::Timeout => f.write_str("no message in time"),
            DownloadError::Disconnected => f.write_str("the connection closed"),
        }
    }
}

/// Longest number, literal or read string of a transfer message: the
/// longest valid one is the 64-digit chunk hash; the margin lets numbers
/// written with exponents and fractions through.
pub const MAX_FIELD_LEN: usize = 96;

/// A member of a transfer message, as named by [`DownloadError::FieldTooLong`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransferField {
    /// `action`.
    Action,
    /// `code` (a response in the transfer stream).
    Code,
    /// `data.index` of `file_chunk`.
    Index,
    /// `data.hash` of `file_chunk`.
    Hash,
    /// `data.iv` of `file_chunk`.
    Iv,
    /// `data.key` of `aes_key`.
    Key,
    /// `data.tag` of a protocol-13 `file_chunk`.
    Tag,
    /// `data.prefix` of a protocol-13 `file_chunk`.
    Prefix,
    /// A number or literal in a member the download does not read.
    Other,
}

impl core::fmt::Display for TransferField {
    /// The member as the protocol names it.
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            TransferField::Action => "action",
            TransferField::Code => "code",
            TransferField::Index => "data.index",
            TransferField::Hash => "data.hash",
            TransferField::Iv => "data.iv",
            TransferField::Key => "data.key",
            TransferField::Tag => "data.tag",
            TransferField::Prefix => "data.prefix",
            TransferField::Other => "a number or literal",
        })
    }
}

/// What a handled message meant for the download.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum StreamOutcome {
    Started { file_size: u64, total_chunks: u32 },
    Chunk { index: u32, len: u32 },
    Finished(DownloadKey),
    Failed(DownloadError),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    AwaitHeader,
    ReadyDue,
    RefuseDue,
    AwaitRefusal,
    Receiving,
}

pub(crate) struct Download {
    pub(crate) seq: super::Seq,
    /// Protocol 13: chunks carry `tag`/`prefix` (AES-256-GCM), the header
    /// no `sha256`, and the download may start at `offset`.
    framed: bool,
    offset: u64,
    phase: Phase,
    key: DownloadKey,
    iv_seen: bool,
    next_index: u32,
    refusal: Option<DownloadError>,
    reader: stream::Reader,
    message: Message,
}

impl Download {
    /// A 3–5 download (`offset: None`) or a protocol-13 download (`offset: Some`), resuming at `offset`.
    pub(crate) fn framed(seq: super::Seq, offset: Option<u64>) -> Self {
        Download {
            seq,
            framed: offset.is_some(),
            offset: offset.unwrap_or(0),
            phase: Phase::AwaitHeader,
            key: DownloadKey {
                key: [0; 32],
                iv: [0; 16],
                sha256: None,
                file_size: 0,
                chunk_size: 0,
                total_chunks: 0,
            },
            iv_seen: false,
            next_index: 0,
            refusal: None,
            reader: stream::Reader::new(),
            message: Message::new(),
        }
    }

    pub(crate) fn is_receiving(&self) -> bool {
        self.phase == Phase::Receiving
    }

    pub(crate) fn hashes_known(&self) -> usize {
        self.next_index as usize
    }

    /// The header `{"action":"transfer_file","data":{…}}` or, while refusing, the 400.
    pub(crate) fn on_header(&mut self, a: &ServerAction<'_>, capacity: usize) -> StreamOutcome {
        if self.phase != Phase::AwaitHeader || !a.action().eq_str("transfer_file") {
            return StreamOutcome::Failed(DownloadError::Unexpected);
        }
        let Some(data) = a.data() else {
            return StreamOutcome::Failed(DownloadError::BadHeader);
        };
        let num = |k| data.get(k).and_then(|v| v.as_u64());
        let (Some(size), Some(chunk), Some(total)) =
            (num("file_size"), num("chunk_size"), num("total_chunks"))
        else {
            return StreamOutcome::Failed(DownloadError::BadHeader);
        };
        let sha256 = match data.get("sha256") {
            Some(v) if v.is_null() => None,
            Some(v) => match v.as_str().and_then(|s| unhex32(s.raw())) {
                Some(h) => Some(h),
                None => return StreamOutcome::Failed(DownloadError::BadHeader),
            },
            None => None,
        };
        let consistent = chunk > 0
            && chunk <= u64::from(u32::MAX)
            && total == size.div_ceil(chunk)
            && total <= u64::from(u32::MAX);
        // Protocol 13 dropped the whole-file hash (§10.3).
        if !consistent || (size > 0 && sha256.is_none() && !self.framed) {
            return StreamOutcome::Failed(DownloadError::BadHeader);
        }
        self.key = DownloadKey {
            sha256,
            file_size: size,
            chunk_size: chunk as u32,
            total_chunks: total as u32,
            ..self.key
        };
        if self.framed {
            // The server continues at offset / chunk_size; an offset it
            // refuses is answered with a 400 after `ready` (§10.7).
            self.next_index = u32::try_from(self.offset / chunk).unwrap_or(u32::MAX);
        }
        if total as usize > capacity {
            self.refusal = Some(DownloadError::TooManyChunks {
                total: total as u32,
                capacity,
            });
            self.phase = Phase::RefuseDue;
        } else {
            self.phase = Phase::ReadyDue;
        }
        StreamOutcome::Started {
            file_size: size,
            total_chunks: total as u32,
        }
    }

    /// A response while waiting: the refusal we provoked, or a server error.
    pub(crate) fn on_response(&self, status: Status) -> DownloadError {
        self.refusal.unwrap_or(DownloadError::Server(status))
    }

    pub(crate) fn due_message(&self) -> Option<&'static [u8]> {
        match self.phase {
            Phase::ReadyDue => Some(b"ready"),
            // Anything but `ready` makes the server answer 400 and stop.
            Phase::RefuseDue => Some(b"cancel"),
            _ => None,
        }
    }

    pub(crate) fn sent_due(&mut self, _now: Instant) -> Option<StreamOutcome> {
        match self.phase {
            Phase::ReadyDue if self.key.total_chunks == 0 => {
                Some(StreamOutcome::Finished(self.key))
            }
            Phase::ReadyDue => {
                self.phase = Phase::Receiving;
                None
            }
            Phase::RefuseDue => {
                self.phase = Phase::AwaitRefusal;
                None
            }
            _ => None,
        }
    }

    pub(crate) fn begin_message(&mut self) {
        self.reader = stream::Reader::new();
        self.message = Message::new();
    }

    pub(crate) fn feed(
        &mut self,
        part: &[u8],
        sink: &mut impl FnMut(&[u8]),
    ) -> Result<Option<StreamOutcome>, DownloadError> {
        let m = &mut self.message;
        let field = |f: Field| DownloadError::FieldTooLong {
            field: f.named(),
            chunk: self.next_index,
        };
        let mut gather = Gather { m, sink };
        match self.reader.feed(part, &mut gather) {
            Ok(()) => Ok(None),
            Err(StreamError::ScalarTooLong) => Err(field(gather.m.field)),
            Err(StreamError::Visitor(Refusal::TooLong(f))) => Err(field(f)),
            Err(_) => Err(DownloadError::Malformed),
        }
    }

    pub(crate) fn end_message(
        &mut self,
        hashes: &mut [[u8; 32]],
    ) -> Result<Option<StreamOutcome>, DownloadError> {
        let r = &mut self.message;
        if !self.reader.is_done() || r.b64.finish().is_err() {
            return Err(DownloadError::Malformed);
        }
        if let Some(code) = r.code {
            return Ok(Some(StreamOutcome::Failed(DownloadError::Server(
                Status::from_code(code),
            ))));
        }
        match r.action() {
            b"file_chunk" => self.on_chunk(hashes).map(Some),
            b"aes_key" => {
                if self.framed && r.key_null {
                    return Ok(Some(StreamOutcome::Failed(DownloadError::KeyTaken)));
                }
                let key = r.key_bytes.ok_or(DownloadError::BadKey)?;
                if self.next_index != self.key.total_chunks || !(self.iv_seen || self.framed) {
                    return Err(DownloadError::BadKey);
                }
                self.key.key = key;
                Ok(Some(StreamOutcome::Finished(self.key)))
            }
            _ => Err(DownloadError::Unexpected),
        }
    }

    fn on_chunk(&mut self, hashes: &mut [[u8; 32]]) -> Result<StreamOutcome, DownloadError> {
        let r = &self.message;
        let index = self.next_index;
        let got = r.index.ok_or(DownloadError::BadChunkFields { index })?;
        if got != u64::from(index) || index >= self.key.total_chunks {
            return Err(DownloadError::ChunkOutOfOrder {
                expected: index,
                got,
            });
        }
        let start = u64::from(index) * u64::from(self.key.chunk_size);
        let expected = (self.key.file_size - start).min(u64::from(self.key.chunk_size));
        let len = r.b64.decoded();
        if len != expected {
            return Err(DownloadError::ChunkLength {
                index,
                expected,
                got: len,
            });
        }
        let hash = if self.framed {
            // The 32-byte slot holds the chunk's seal: tag ‖ prefix ‖ 0s.
            let (Some(tag), Some(prefix)) = (r.tag, r.prefix) else {
                return Err(DownloadError::BadChunkFields { index });
            };
            seal(&tag, &prefix)
        } else {
            r.hash.ok_or(DownloadError::BadChunkFields { index })?
        };
        if index == 0 && !self.framed {
            self.key.iv = r.iv.ok_or(DownloadError::BadChunkFields { index })?;
            self.iv_seen = true;
        }
        let slot = hashes
            .get_mut(index as usize)
            .ok_or(DownloadError::TooManyChunks {
                total: self.key.total_chunks,
                capacity: 0,
            })?;
        *slot = hash;
        self.next_index += 1;
        Ok(StreamOutcome::Chunk {
            index,
            len: len as u32,
        })
    }
}

/// A protocol-13 chunk's seal as kept in the session's 32-byte chunk slot:
/// the GCM tag, then the nonce prefix, then 8 zero bytes.
pub(crate) fn seal(tag: &[u8; 16], prefix: &[u8; 8]) -> [u8; 32] {
    let mut out = [0u8; 32];
    let (t, rest) = out.split_at_mut(16);
    t.copy_from_slice(tag);
    if let Some(p) = rest.get_mut(..8) {
        p.copy_from_slice(prefix);
    }
    out
}

// ----- what a transfer message carries ---------------------------------------

/// The member whose value is being read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Field {
    Other,
    Action,
    Code,
    Index,
    Hash,
    Iv,
    AesKey,
    Chunk,
    Data,
    Tag,
    Prefix,
}

impl Field {
    fn named(self) -> TransferField {
        match self {
            Field::Action => TransferField::Action,
            Field::Code => TransferField::Code,
            Field::Index => TransferField::Index,
            Field::Hash => TransferField::Hash,
            Field::Iv => TransferField::Iv,
            Field::AesKey => TransferField::Key,
            Field::Tag => TransferField::Tag,
            Field::Prefix => TransferField::Prefix,
            _ => TransferField::Other,
        }
    }
}

/// The members of a transfer message the download reads, gathered from the
/// [`json::stream::Reader`]'s reports; keys may come in any order.
struct Message {
    /// The depth of the `data` object (0: not inside it).
    data_depth: u8,
    /// The member whose value comes next.
    field: Field,
    cap: [u8; MAX_FIELD_LEN],
    cap_len: usize,
    action: [u8; 16],
    action_len: usize,
    code: Option<i64>,
    index: Option<u64>,
    hash: Option<[u8; 32]>,
    iv: Option<[u8; 16]>,
    key_bytes: Option<[u8; 32]>,
    key_null: bool,
    tag: Option<[u8; 16]>,
    prefix: Option<[u8; 8]>,
    b64: Base64Stream,
}

impl Message {
    fn new() -> Self {
        Message {
            data_depth: 0,
            field: Field::Other,
            cap: [0; MAX_FIELD_LEN],
            cap_len: 0,
            action: [0; 16],
            action_len: 0,
            code: None,
            index: None,
            hash: None,
            iv: None,
            key_bytes: None,
            key_null: false,
            tag: None,
            prefix: None,
            b64: Base64Stream::new(),
        }
    }

    fn action(&self) -> &[u8] {
        self.action.get(..self.action_len).unwrap_or_default()
    }

    fn captured(&self) -> &[u8] {
        self.cap.get(..self.cap_len).unwrap_or_default()
    }
}

/// Why a transfer message could not be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Refusal {
    /// A string member outgrew [`MAX_FIELD_LEN`].
    TooLong(Field),
    /// The `chunk` is not base64.
    Base64,
}

/// A [`Message`] being filled, with the sink the `chunk`'s ciphertext goes to.
struct Gather<'m, S> {
    m: &'m mut Message,
    sink: &'m mut S,
}

impl<S: FnMut(&[u8])> Visit for Gather<'_, S> {
    type Error = Refusal;

    fn member(&mut self, depth: u8, name: Option<&[u8]>) -> Result<(), Refusal> {
        let m = &mut *self.m;
        m.field = match (depth, name.unwrap_or_default()) {
            (1, b"action") => Field::Action,
            (1, b"code") => Field::Code,
            (1, b"data") => Field::Data,
            (d, k) if d == m.data_depth && d > 0 => match k {
                b"index" => Field::Index,
                b"hash" => Field::Hash,
                b"iv" => Field::Iv,
                b"key" => Field::AesKey,
                b"chunk" => Field::Chunk,
                b"tag" => Field::Tag,
                b"prefix" => Field::Prefix,
                _ => Field::Other,
            },
            _ => Field::Other,
        };
        m.cap_len = 0;
        Ok(())
    }

    fn open(&mut self, depth: u8, object: bool) -> Result<(), Refusal> {
        if self.m.field == Field::Data && object {
            self.m.data_depth = depth;
        }
        self.m.field = Field::Other;
        Ok(())
    }

    fn close(&mut self, depth: u8) -> Result<(), Refusal> {
        if depth == self.m.data_depth {
            self.m.data_depth = 0;
        }
        self.m.field = Field::Other;
        Ok(())
    }

    fn string_part(&mut self, bytes: &[u8]) -> Result<(), Refusal> {
        let m = &mut *self.m;
        match m.field {
            Field::Chunk => m.b64.feed(bytes, self.sink).map_err(|_| Refusal::Base64),
            Field::Action
            | Field::Hash
            | Field::Iv
            | Field::AesKey
            | Field::Tag
            | Field::Prefix => {
                let dest = m
                    .cap
                    .get_mut(m.cap_len..)
                    .and_then(|free| free.get_mut(..bytes.len()))
                    .ok_or(Refusal::TooLong(m.field))?;
                dest.copy_from_slice(bytes);
                m.cap_len += bytes.len();
                Ok(())
            }
            _ => Ok(()),
        }
    }

    fn string_end(&mut self) -> Result<(), Refusal> {
        let m = &mut *self.m;
        match m.field {
            Field::Action => {
                // An action longer than the buffer is no known one: it stays empty.
                let n = m.cap_len;
                if let (Some(dest), Some(src)) = (m.action.get_mut(..n), m.cap.get(..n)) {
                    dest.copy_from_slice(src);
                    m.action_len = n;
                }
            }
            Field::Hash => m.hash = unhex32(m.captured()),
            Field::Iv => m.iv = b64::decode_exact::<16>(m.captured()),
            Field::AesKey => m.key_bytes = b64::decode_exact::<32>(m.captured()),
            Field::Tag => m.tag = b64::decode_exact::<16>(m.captured()),
            Field::Prefix => m.prefix = b64::decode_exact::<8>(m.captured()),
            _ => {}
        }
        m.field = Field::Other;
        Ok(())
    }

    fn scalar(&mut self, text: &str) -> Result<(), Refusal> {
        let m = &mut *self.m;
        match m.field {
            Field::Code => m.code = text.parse().ok(),
            Field::Index => m.index = text.parse().ok(),
            Field::AesKey => m.key_null = text == "null",
            _ => {}
        }
        m.field = Field::Other;
        Ok(())
    }
}
