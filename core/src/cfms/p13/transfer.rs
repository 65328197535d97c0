//! Protocol-13 file transfers, message by message (`cfms-13.md` §9, §10):
//! what the server sends on a transfer stream, the per-chunk AES-256-GCM
//! decryption, and the checks a download must pass.
//!
//! Download: after `download_file {task_id, offset}` the server sends a
//! `transfer_file` header ([`DownloadHeader`]), waits for `ready`, then one
//! `file_chunk` per chunk ([`FileChunk`]: ciphertext, a separate 16-byte
//! tag, an 8-byte nonce prefix) and last `aes_key` ([`ChunkKey`]), with no
//! CONCLUSION. Each chunk is AES-256-GCM with nonce = prefix ‖ index (u32
//! BE) and no associated data, so it can be checked on its own, in any
//! order, once the key is there: [`decrypt_chunk`] decrypts in place and
//! refuses a forged tag by name. [`DownloadCheck`] checks the indices are
//! contiguous from the resume point and the total equals `file_size`.
//! Resuming sends the same task id with `offset` = whole chunks held ×
//! chunk size ([`DownloadHeader::resume_offset`]).
//!
//! Upload: the server asks for the header (`waiting for file transfer`),
//! the client sends [`emit_upload_header`], the server answers `stop`
//! (an empty file: then silence on success) or `ready C`; the client sends
//! frames of exactly `C` bytes, the last one shorter, and an empty frame
//! when the size is a multiple of `C` ([`upload_frames`]).
//!
//! [`TransferMessage`] reads a `file_chunk` whole; the
//! [`Session`](crate::cfms::Session) streams them instead (the 3–5
//! streaming reader, which also takes `tag` and `prefix`), keeps each
//! chunk's seal (tag ‖ prefix) in its chunk storage, and the caller opens
//! the stored ciphertext with [`open_chunk`] once the key arrived, or, a
//! piece at a time without holding the chunk, with the two-pass
//! [`gcm::ChunkOpener`](super::gcm::ChunkOpener).
#![deny(clippy::indexing_slicing)]

use aes_gcm::aead::AeadInOut;
use aes_gcm::{Aes256Gcm, KeyInit};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use zeroize::Zeroize;

use super::frame::StreamId;
use super::request::emit_request;
use crate::InsufficientSize;
use crate::cfms::b64::decode_exact;
use crate::json::{self, Value};

/// The smallest `max_chunk_size` the server accepts.
pub const MIN_UPLOAD_CHUNK: u32 = 512;
/// The largest upload frame the server uses, whatever is asked.
pub const MAX_UPLOAD_CHUNK: u32 = 65536;

/// Why a transfer message or chunk was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransferError {
    /// Not a transfer message this client knows.
    Unexpected,
    /// A field is missing or of the wrong type.
    Field(&'static str),
    /// A base64 field does not decode (or has the wrong length).
    Base64(&'static str),
    /// The chunk's tag does not authenticate it: forged or corrupted.
    ForgedTag {
        /// The chunk.
        index: u32,
    },
    /// A chunk out of order (they must be contiguous from the resume point).
    OutOfOrder {
        /// The index expected.
        expected: u32,
        /// The index received.
        got: u32,
    },
    /// The chunks do not add up to `file_size`.
    SizeMismatch {
        /// `file_size` from the header (less the resume offset).
        expected: u64,
        /// Bytes received.
        got: u64,
    },
    /// The server ended the task before this attempt (`key` is `null`).
    KeyTaken,
    /// The caller's buffer is too small for the chunk.
    BufferTooSmall {
        /// Bytes needed.
        required: usize,
    },
}

impl core::fmt::Display for TransferError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            TransferError::Unexpected => f.write_str("not a protocol-13 transfer message"),
            TransferError::Field(n) => write!(f, "transfer message without a valid `{n}`"),
            TransferError::Base64(n) => write!(f, "`{n}` is not valid base64 of the right length"),
            TransferError::ForgedTag { index } => write!(
                f,
                "chunk {index} failed AES-GCM authentication (forged or corrupted)"
            ),
            TransferError::OutOfOrder { expected, got } => {
                write!(f, "chunk {got} arrived where chunk {expected} was due")
            }
            TransferError::SizeMismatch { expected, got } => {
                write!(f, "received {got} bytes, the file has {expected}")
            }
            TransferError::KeyTaken => {
                f.write_str("another attempt finished this download task first (no key)")
            }
            TransferError::BufferTooSmall { required } => {
                write!(f, "a chunk needs {required} bytes of buffer")
            }
        }
    }
}

/// A message on a transfer stream, from the server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TransferMessage<'a> {
    /// Upload: `transfer_file` with empty data, "waiting for file transfer".
    SendHeader,
    /// Upload: `ready C`: send frames of exactly `C` bytes.
    Ready {
        /// The frame size.
        chunk: u32,
    },
    /// Upload: `stop`: the file is empty; success is silence.
    Stop,
    /// Download: the header.
    Header(DownloadHeader),
    /// Download: one chunk.
    Chunk(FileChunk<'a>),
    /// Download: the key, last.
    Key(ChunkKey),
}

impl<'a> TransferMessage<'a> {
    /// Read the payload of a PROCESS frame on a transfer stream.
    pub fn parse(payload: &'a [u8]) -> Result<TransferMessage<'a>, TransferError> {
        if payload == b"stop" {
            return Ok(TransferMessage::Stop);
        }
        if let Some(n) = payload.strip_prefix(b"ready ") {
            let chunk = core::str::from_utf8(n)
                .ok()
                .and_then(|s| s.parse().ok())
                .ok_or(TransferError::Field("ready"))?;
            return Ok(TransferMessage::Ready { chunk });
        }
        let root = Value::parse(payload).map_err(|_| TransferError::Unexpected)?;
        if root.kind() != json::Kind::Object {
            return Err(TransferError::Unexpected);
        }
        let action = root
            .get("action")
            .and_then(|a| a.as_str())
            .ok_or(TransferError::Unexpected)?;
        let data = root.get("data").ok_or(TransferError::Field("data"))?;
        if action.eq_str("file_chunk") {
            FileChunk::from_data(data).map(TransferMessage::Chunk)
        } else if action.eq_str("aes_key") {
            ChunkKey::from_data(data).map(TransferMessage::Key)
        } else if action.eq_str("transfer_file") {
            match data.get("file_size") {
                None => Ok(TransferMessage::SendHeader),
                Some(_) => DownloadHeader::from_data(data).map(TransferMessage::Header),
            }
        } else {
            Err(TransferError::Unexpected)
        }
    }
}

fn u64_field(data: Value<'_>, name: &'static str) -> Result<u64, TransferError> {
    data.get(name)
        .and_then(|v| v.as_u64())
        .ok_or(TransferError::Field(name))
}

/// A download's header: `{file_size, chunk_size, total_chunks}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DownloadHeader {
    /// Plaintext size of the whole file.
    pub file_size: u64,
    /// Plaintext bytes per chunk (the last may be shorter).
    pub chunk_size: u64,
    /// Chunks in the whole file, whatever the offset.
    pub total_chunks: u32,
}

impl DownloadHeader {
    fn from_data(data: Value<'_>) -> Result<DownloadHeader, TransferError> {
        let total = u64_field(data, "total_chunks")?;
        let header = DownloadHeader {
            file_size: u64_field(data, "file_size")?,
            chunk_size: u64_field(data, "chunk_size")?,
            total_chunks: u32::try_from(total).map_err(|_| TransferError::Field("total_chunks"))?,
        };
        if header.chunk_size == 0 || header.file_size.div_ceil(header.chunk_size) != total {
            return Err(TransferError::Field("total_chunks"));
        }
        Ok(header)
    }

    /// The `offset` to resume with when the first `chunks_held` chunks are
    /// held whole.
    pub fn resume_offset(&self, chunks_held: u32) -> u64 {
        (u64::from(chunks_held) * self.chunk_size).min(self.file_size)
    }

    /// Plaintext bytes of chunk `index`.
    pub fn chunk_len(&self, index: u32) -> u64 {
        let start = u64::from(index).saturating_mul(self.chunk_size);
        self.file_size.saturating_sub(start).min(self.chunk_size)
    }
}

/// One `file_chunk`, viewed in place.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileChunk<'a> {
    /// Chunk index in the whole file.
    pub index: u32,
    /// The ciphertext, base64 as sent.
    pub chunk: &'a [u8],
    /// The GCM tag.
    pub tag: [u8; 16],
    /// The first 8 bytes of the GCM nonce.
    pub prefix: [u8; 8],
}

impl<'a> FileChunk<'a> {
    fn from_data(data: Value<'a>) -> Result<FileChunk<'a>, TransferError> {
        let index =
            u32::try_from(u64_field(data, "index")?).map_err(|_| TransferError::Field("index"))?;
        let b64 = |name: &'static str| {
            data.get(name)
                .and_then(|v| v.as_str())
                .and_then(|s| s.as_unescaped())
                .map(str::as_bytes)
                .ok_or(TransferError::Field(name))
        };
        Ok(FileChunk {
            index,
            chunk: b64("chunk")?,
            tag: decode_exact(b64("tag")?).ok_or(TransferError::Base64("tag"))?,
            prefix: decode_exact(b64("prefix")?).ok_or(TransferError::Base64("prefix"))?,
        })
    }

    /// Decode the ciphertext into `out`; returns its length.
    pub fn ciphertext_into(&self, out: &mut [u8]) -> Result<usize, TransferError> {
        let required = self.chunk.len() / 4 * 3;
        let out_len = out.len();
        STANDARD.decode_slice(self.chunk, out).map_err(|e| match e {
            base64::DecodeSliceError::OutputSliceTooSmall if out_len < required => {
                TransferError::BufferTooSmall { required }
            }
            _ => TransferError::Base64("chunk"),
        })
    }
}

/// The download's AES-256 key (wiped on drop, redacted in Debug).
#[derive(Clone, PartialEq, Eq)]
pub struct ChunkKey(Option<[u8; 32]>);

impl ChunkKey {
    fn from_data(data: Value<'_>) -> Result<ChunkKey, TransferError> {
        let key = data.get("key").ok_or(TransferError::Field("key"))?;
        if key.is_null() {
            return Ok(ChunkKey(None));
        }
        let text = key
            .as_str()
            .and_then(|s| s.as_unescaped())
            .ok_or(TransferError::Field("key"))?;
        decode_exact(text.as_bytes())
            .map(|k| ChunkKey(Some(k)))
            .ok_or(TransferError::Base64("key"))
    }

    /// A key from its bytes.
    pub fn new(key: [u8; 32]) -> ChunkKey {
        ChunkKey(Some(key))
    }

    /// Decrypt chunk `index` in place (`buf` holds its ciphertext), checking
    /// its tag. Nothing is decrypted when the tag is wrong.
    pub fn decrypt_chunk(
        &self,
        index: u32,
        prefix: &[u8; 8],
        tag: &[u8; 16],
        buf: &mut [u8],
    ) -> Result<(), TransferError> {
        let key = self.0.as_ref().ok_or(TransferError::KeyTaken)?;
        let cipher = Aes256Gcm::new(key.into());
        let mut nonce = [0u8; 12];
        let (head, tail) = nonce.split_at_mut(8);
        head.copy_from_slice(prefix);
        tail.copy_from_slice(&index.to_be_bytes());
        cipher
            .decrypt_inout_detached((&nonce).into(), b"", buf.into(), tag.into())
            .map_err(|_| TransferError::ForgedTag { index })
    }
}

impl Drop for ChunkKey {
    fn drop(&mut self) {
        if let Some(k) = self.0.as_mut() {
            k.zeroize();
        }
    }
}

impl core::fmt::Debug for ChunkKey {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self.0 {
            Some(_) => "ChunkKey(<redacted>)",
            None => "ChunkKey(null)",
        })
    }
}

/// Decrypt one chunk in place: see [`ChunkKey::decrypt_chunk`].
pub fn decrypt_chunk(
    key: &ChunkKey,
    chunk: &FileChunk<'_>,
    buf: &mut [u8],
) -> Result<(), TransferError> {
    key.decrypt_chunk(chunk.index, &chunk.prefix, &chunk.tag, buf)
}

/// Decrypt chunk `index` of a protocol-13 download run by the
/// [`Session`](crate::cfms::Session), in place: `buf` holds the chunk's
/// ciphertext as the session handed it out (`DownloadData`), `seal` its
/// slot in the session's chunk storage
/// ([`Session::chunk_hashes`](crate::cfms::Session::chunk_hashes): tag ‖
/// nonce prefix), `key` the `DownloadFinished` key. `buf` is plaintext
/// only when `Ok`: a wrong tag leaves it ciphertext and is named
/// ([`TransferError::ForgedTag`]).
pub fn open_chunk(
    key: &crate::cfms::DownloadKey,
    index: u32,
    seal: &[u8; 32],
    buf: &mut [u8],
) -> Result<(), TransferError> {
    let (tag, prefix) = split_seal(seal);
    ChunkKey::new(key.key).decrypt_chunk(index, &prefix, &tag, buf)
}

/// A seal's tag and nonce prefix (tag ‖ prefix ‖ 8 unused bytes).
pub(crate) fn split_seal(seal: &[u8; 32]) -> ([u8; 16], [u8; 8]) {
    let (tag, rest) = seal.split_first_chunk::<16>().unwrap_or((&[0; 16], &[]));
    let prefix = rest.first_chunk::<8>().copied().unwrap_or_default();
    (*tag, prefix)
}

/// A download's chunks: contiguous from the resume point, adding up to the
/// file size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DownloadCheck {
    header: DownloadHeader,
    next: u32,
    received: u64,
    expected: u64,
}

impl DownloadCheck {
    /// Checks for a download that asked for `offset`.
    pub fn new(header: DownloadHeader, offset: u64) -> DownloadCheck {
        let first = offset
            .checked_div(header.chunk_size)
            .and_then(|c| u32::try_from(c).ok())
            .unwrap_or(0);
        DownloadCheck {
            header,
            next: first,
            received: 0,
            expected: header.file_size.saturating_sub(offset),
        }
    }

    /// Accept chunk `index` of `len` ciphertext bytes.
    pub fn accept(&mut self, index: u32, len: usize) -> Result<(), TransferError> {
        if index != self.next {
            return Err(TransferError::OutOfOrder {
                expected: self.next,
                got: index,
            });
        }
        let len = len as u64;
        if len != self.header.chunk_len(index) {
            return Err(TransferError::SizeMismatch {
                expected: self.header.chunk_len(index),
                got: len,
            });
        }
        self.next = self.next.saturating_add(1);
        self.received += len;
        Ok(())
    }

    /// Whole chunks accepted so far, counted from the start of the file
    /// (what [`DownloadHeader::resume_offset`] takes).
    pub fn chunks_held(&self) -> u32 {
        self.next
    }

    /// The key arrived: every byte must be there.
    pub fn finish(&self) -> Result<(), TransferError> {
        if self.received != self.expected {
            return Err(TransferError::SizeMismatch {
                expected: self.expected,
                got: self.received,
            });
        }
        Ok(())
    }
}

/// Write the upload header
/// `{"action":"transfer_file","data":{"file_size","sha256","max_chunk_size"}}`
/// as a PROCESS frame on `stream`. `max_chunk` is raised to
/// [`MIN_UPLOAD_CHUNK`].
pub fn emit_upload_header(
    out: &mut [u8],
    stream: StreamId,
    file_size: u64,
    sha256: Option<&[u8; 32]>,
    max_chunk: u32,
) -> Result<usize, InsufficientSize> {
    let hex = sha256.map(crate::cfms::hex::hex32);
    emit_request(out, stream, "transfer_file", None, |w| {
        w.field_u64("file_size", file_size);
        match &hex {
            Some(h) => {
                w.field_str("sha256", core::str::from_utf8(h).unwrap_or_default());
            }
            None => {
                w.key("sha256").null();
            }
        }
        w.field_u64("max_chunk_size", u64::from(max_chunk.max(MIN_UPLOAD_CHUNK)));
    })
}

/// Frames an upload of `file_size` bytes sends after `ready chunk`: full
/// frames, then the short last one, or an empty one when the size is a
/// multiple of `chunk` (the server stops at the first frame shorter than
/// `chunk`). An empty file sends none (the server said `stop`).
pub fn upload_frames(file_size: u64, chunk: u32) -> u64 {
    match (file_size, u64::from(chunk.max(1))) {
        (0, _) => 0,
        (n, c) => n / c + 1,
    }
}

#[cfg(test)]
// Tests index fixtures they built themselves.
#[allow(clippy::indexing_slicing)]
mod tests {
    use super::*;

    /// From Python `cryptography`'s AESGCM: key 00..1f, nonce
    /// a0..a7 ‖ 00000003, no associated data.
    const PLAIN: &[u8] = b"CFMS protocol 13 chunk, index 3!!";
    const CIPHER: &str = "4e54ededd79c2bf80f1d47048e44a9e11a9a6afc76489ea6374a6e44f398d64202";
    const TAG: &str = "7e6742815d1af3e5d0731e2456dd299a";

    fn unhex<const N: usize>(s: &str) -> [u8; N] {
        let mut out = [0u8; N];
        for (i, o) in out.iter_mut().enumerate() {
            *o = u8::from_str_radix(&s[2 * i..2 * i + 2], 16).unwrap();
        }
        out
    }

    fn key() -> ChunkKey {
        ChunkKey::new(core::array::from_fn(|i| i as u8))
    }

    const PREFIX: [u8; 8] = [0xa0, 0xa1, 0xa2, 0xa3, 0xa4, 0xa5, 0xa6, 0xa7];

    #[test]
    fn a_chunk_decrypts_with_prefix_and_big_endian_index_as_nonce() {
        let mut buf: [u8; 33] = unhex(CIPHER);
        key()
            .decrypt_chunk(3, &PREFIX, &unhex(TAG), &mut buf)
            .unwrap();
        assert_eq!(&buf[..], PLAIN);
    }

    #[test]
    fn a_forged_tag_or_a_wrong_index_is_named() {
        let mut tag: [u8; 16] = unhex(TAG);
        tag[0] ^= 1;
        let mut buf: [u8; 33] = unhex(CIPHER);
        assert_eq!(
            key().decrypt_chunk(3, &PREFIX, &tag, &mut buf),
            Err(TransferError::ForgedTag { index: 3 })
        );
        let mut buf: [u8; 33] = unhex(CIPHER);
        assert_eq!(
            key().decrypt_chunk(4, &PREFIX, &unhex(TAG), &mut buf),
            Err(TransferError::ForgedTag { index: 4 })
        );
        assert_eq!(
            ChunkKey(None).decrypt_chunk(3, &PREFIX, &unhex(TAG), &mut buf),
            Err(TransferError::KeyTaken)
        );
    }

    #[test]
    fn the_server_messages_of_a_transfer_parse() {
        assert_eq!(
            TransferMessage::parse(b"ready 65536"),
            Ok(TransferMessage::Ready { chunk: 65536 })
        );
        assert_eq!(TransferMessage::parse(b"stop"), Ok(TransferMessage::Stop));
        assert_eq!(
            TransferMessage::parse(br#"{"action": "transfer_file", "data": {}, "message": "waiting for file transfer"}"#),
            Ok(TransferMessage::SendHeader)
        );
        assert_eq!(
            TransferMessage::parse(br#"{"action": "transfer_file", "data": {"file_size": 5242880, "chunk_size": 2097152, "total_chunks": 3}}"#),
            Ok(TransferMessage::Header(DownloadHeader {
                file_size: 5242880,
                chunk_size: 2097152,
                total_chunks: 3
            }))
        );
        let m = TransferMessage::parse(br#"{"action": "file_chunk", "data": {"index": 1, "chunk": "QUJD", "tag": "sVKjSQ2/S9DOwRwhqVmvWQ==", "prefix": "uOXcstBwWQw="}}"#).unwrap();
        let TransferMessage::Chunk(c) = m else {
            panic!()
        };
        assert_eq!(c.index, 1);
        let mut out = [0u8; 3];
        assert_eq!(c.ciphertext_into(&mut out), Ok(3));
        assert_eq!(&out, b"ABC");
        let k = TransferMessage::parse(br#"{"action": "aes_key", "data": {"key": null}}"#).unwrap();
        assert_eq!(k, TransferMessage::Key(ChunkKey(None)));
    }

    #[test]
    fn chunks_must_be_contiguous_from_the_resume_point_and_add_up() {
        let h = DownloadHeader {
            file_size: 5,
            chunk_size: 2,
            total_chunks: 3,
        };
        assert_eq!(h.resume_offset(1), 2);
        let mut c = DownloadCheck::new(h, 2);
        assert_eq!(
            c.accept(2, 1),
            Err(TransferError::OutOfOrder {
                expected: 1,
                got: 2
            })
        );
        c.accept(1, 2).unwrap();
        assert_eq!(
            c.finish(),
            Err(TransferError::SizeMismatch {
                expected: 3,
                got: 2
            })
        );
        c.accept(2, 1).unwrap();
        assert_eq!(c.finish(), Ok(()));
        assert_eq!(c.chunks_held(), 3);
    }

    #[test]
    fn upload_ends_with_a_short_frame_or_an_empty_one() {
        assert_eq!(upload_frames(0, 65536), 0);
        assert_eq!(upload_frames(1, 512), 1);
        assert_eq!(upload_frames(65536, 65536), 2);
        assert_eq!(upload_frames(65537, 65536), 2);
        assert_eq!(upload_frames(70000, 65536), 2);
        let mut out = [0u8; 160];
        let n = emit_upload_header(&mut out, StreamId(45), 1, None, 100).unwrap();
        assert_eq!(
            &out[5..n],
            br#"{"action":"transfer_file","data":{"file_size":1,"sha256":null,"max_chunk_size":512}}"#
        );
    }
}
