//! A download into the caller's store: [`Connection::download`].
//!
//! CFMS encrypts the whole file as one AES-256-CFB8 stream and sends the key
//! last, so the file passes through the store (any `embedded-io-async`
//! `Read + Write + Seek`: an SD card file, a flash partition) twice:
//!
//! ```text
//! Start ──download_file──► Receiving ──aes_key──► Decrypting ──end of file──► Verified
//!   │ block too small,       │ each file_chunk: its      │ each block: read back at
//!   │ session refuses        │ ciphertext written to     │ its offset, decrypted, every
//!   ▼                        │ the store as it arrives   │ chunk's SHA-256 checked,
//! BlockTooSmall, Refused     │ (index, length checked,   │ written back at that offset;
//!                            │ plaintext hash kept)      │ then size and file SHA-256
//!                            ▼                           ▼
//!          Connection, Transfer, Receiving       Decrypting, Decrypt
//! ```
//!
//! Memory: the caller's `block`, the session's chunk-hash storage (one
//! SHA-256 per chunk) and the decryptor's stack; no allocation. While
//! receiving, the store sees sequential writes of any length from offset 0;
//! while decrypting, a read and a write of `block.len()` bytes (the last one
//! shorter) at each multiple of `block.len()`, so a block of whole sectors
//! keeps a flash store's accesses aligned.
//!
//! On any error the store's content is invalid (ciphertext, or plaintext
//! not yet verified): do not use it. The file occupies the first
//! [`Downloaded::size`] bytes; the store is not truncated.
#![deny(clippy::indexing_slicing)]

use embedded_io_async::{Read, Seek, SeekFrom, Write};
use naslink_core::cfms::session::{Error as SessionError, Event};
use naslink_core::cfms::{DecryptError, DownloadError, DownloadKey, FileDecryptor, Seq, Session};
use naslink_core::random::Entropy;
use naslink_core::ws;

use super::{Connection, Error, Piece, sent_bytes};
use crate::time::now;

/// The smallest `block`: four base64 characters decode to three bytes, the
/// least a `file_chunk` message can be cut into.
pub const MIN_BLOCK: usize = 3;

/// A verified download.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Downloaded {
    /// Plaintext bytes, at the start of the store.
    pub size: u64,
    /// Their SHA-256 (checked against the server's when it sent one).
    pub sha256: [u8; 32],
}

/// How the store failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreError<S> {
    /// Its own error.
    Io(S),
    /// It took no bytes (full) or gave none (shorter than the file) at `offset`.
    Ended {
        /// Where.
        offset: u64,
    },
}

/// Why a download failed; the store's content is invalid in every case.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DownloadFailure<E, S> {
    /// `block` is shorter than [`MIN_BLOCK`]; nothing was sent.
    BlockTooSmall {
        /// Bytes needed.
        required: usize,
    },
    /// The session would not send `download_file` (not logged in, requests
    /// or a transfer under way, `MESSAGE` too small); nothing was sent.
    Refused(SessionError),
    /// The transport, the WebSocket or the session failed while receiving.
    Connection(Error<E>),
    /// The server refused the download ([`DownloadError::Server`]) or sent
    /// something no download allows.
    Transfer(DownloadError),
    /// Writing the ciphertext failed.
    Receiving(StoreError<S>),
    /// Reading back or writing the plaintext failed.
    Decrypting(StoreError<S>),
    /// The plaintext fails a check: a chunk's or the file's SHA-256, or
    /// its size.
    Decrypt(DecryptError),
}

impl<E, S> DownloadFailure<E, S> {
    /// Whether the connection is over (chunks may still be in flight, or
    /// the transport failed): the session has been told of the disconnect;
    /// drop the connection and open a new one. Otherwise it stays usable.
    pub fn ends_connection(&self) -> bool {
        match self {
            DownloadFailure::Connection(_) | DownloadFailure::Receiving(_) => true,
            DownloadFailure::Transfer(e) => !matches!(e, DownloadError::Server(_)),
            _ => false,
        }
    }
}

impl<T, R, const Q: usize> Connection<'_, '_, T, R, Q>
where
    T: Read + Write,
    R: Entropy,
{
    /// Download the file of `task_id` (from `get_document`'s answer, see
    /// [`ops::task_id`](naslink_core::cfms::ops::task_id)) into `store` from
    /// offset 0, through `block` (a few KiB; at least [`MIN_BLOCK`]); see
    /// the [module docs](self). Other events arriving meanwhile (a lockdown
    /// push) are not handed on; the session's state keeps what they said.
    pub async fn download<S: Read + Write + Seek>(
        &mut self,
        task_id: &str,
        store: &mut S,
        block: &mut [u8],
    ) -> Result<Downloaded, DownloadFailure<T::Error, S::Error>> {
        if block.len() < MIN_BLOCK {
            return Err(DownloadFailure::BlockTooSmall {
                required: MIN_BLOCK,
            });
        }
        let sent = self
            .session
            .download_file(now(), task_id, self.message)
            .map_err(DownloadFailure::Refused)?;
        let key = match self.receive(sent.seq, sent.len, store, block).await {
            Ok(key) => key,
            Err(e) => {
                if e.ends_connection() {
                    self.session.handle_disconnect(now());
                }
                return Err(e);
            }
        };
        decrypt_in_place(&key, self.session.chunk_hashes(), store, block).await
    }

    /// Send the request (`len` bytes in the message buffer), then store
    /// the ciphertext until the key arrives.
    async fn receive<S: Write + Seek>(
        &mut self,
        seq: Seq,
        len: usize,
        store: &mut S,
        block: &mut [u8],
    ) -> Result<DownloadKey, DownloadFailure<T::Error, S::Error>> {
        let lost = DownloadFailure::Connection;
        let request = sent_bytes(self.message, len).map_err(lost)?;
        self.link
            .send(ws::MessageKind::Text, request)
            .await
            .map_err(lost)?;
        let store_io = |e| DownloadFailure::Receiving(StoreError::Io(e));
        store.seek(SeekFrom::Start(0)).await.map_err(store_io)?;
        let mut stored = 0;
        loop {
            self.transmit_session_output().await.map_err(lost)?;
            while let Some(event) = self.session.poll_event() {
                match event {
                    Event::DownloadFinished { seq: s, key } if s == seq => {
                        store.flush().await.map_err(store_io)?;
                        if stored != key.file_size {
                            let short = DecryptError::SizeMismatch {
                                expected: key.file_size,
                                got: stored,
                            };
                            return Err(DownloadFailure::Decrypt(short));
                        }
                        return Ok(key);
                    }
                    Event::DownloadFailed { seq: s, error } if s == seq => {
                        return Err(DownloadFailure::Transfer(error));
                    }
                    Event::Desynchronized(why) => return Err(lost(Error::Desynchronized(why))),
                    // Progress, and pushes the session already took note of.
                    _ => {}
                }
            }
            self.link.flush().await.map_err(lost)?;
            let mut progressed = self.link.take_input();
            if let Some(event) = self.link.ws.poll_event() {
                progressed = true;
                if let Some(piece) = Piece::of(event).map_err(lost)? {
                    stored = store_piece(self.session, piece, store, block, stored).await?;
                }
            }
            if progressed || self.link.has_input() {
                continue;
            }
            let deadline = [self.link.ws.poll_timeout(), self.session.poll_timeout()]
                .into_iter()
                .flatten()
                .min();
            self.link.wait(deadline).await.map_err(lost)?;
            self.session.handle_timeout(now());
        }
    }
}

/// Hand `piece` to the session in cuts whose ciphertext fits `block`, and
/// write each cut's ciphertext to the store after the `stored` bytes
/// before it; returns the new total.
async fn store_piece<E, S: Write, const Q: usize>(
    session: &mut Session<'_, Q>,
    piece: Piece<'_>,
    store: &mut S,
    block: &mut [u8],
    mut stored: u64,
) -> Result<u64, DownloadFailure<E, S::Error>> {
    // The decoder holds back at most three characters, so a cut of 4k
    // characters completes at most k quads: 3k bytes.
    let cut = block.len() / 3 * 4;
    let mut rest = piece.data;
    let mut first = piece.first;
    loop {
        let (head, tail) = rest.split_at_checked(cut).unwrap_or((rest, &[]));
        let last = piece.last && tail.is_empty();
        let (mut filled, mut required) = (0, 0);
        let mut sink = |bytes: &[u8]| match block.get_mut(filled..filled + bytes.len()) {
            Some(dst) => {
                dst.copy_from_slice(bytes);
                filled += bytes.len();
            }
            None => required = filled + bytes.len(),
        };
        session
            .handle_message_part(now(), piece.kind, head, first, last, &mut sink)
            .map_err(|e| DownloadFailure::Connection(Error::Cfms(e)))?;
        if required > 0 {
            let too_small = SessionError::BufferTooSmall { required };
            return Err(DownloadFailure::Connection(Error::Cfms(too_small)));
        }
        let ciphertext = block.get(..filled).unwrap_or_default();
        write_all(store, ciphertext, stored)
            .await
            .map_err(DownloadFailure::Receiving)?;
        stored += filled as u64;
        first = false;
        rest = tail;
        if rest.is_empty() {
            return Ok(stored);
        }
    }
}

/// Replace the ciphertext with the plaintext, block by block, checking
/// every chunk's hash, then the size and the file's hash.
async fn decrypt_in_place<E, S: Read + Write + Seek>(
    key: &DownloadKey,
    hashes: &[[u8; 32]],
    store: &mut S,
    block: &mut [u8],
) -> Result<Downloaded, DownloadFailure<E, S::Error>> {
    let store_io = |e| DownloadFailure::Decrypting(StoreError::Io(e));
    let mut decryptor = FileDecryptor::new(key, hashes).map_err(DownloadFailure::Decrypt)?;
    let mut offset = 0;
    while offset < key.file_size {
        let n = (key.file_size - offset).min(block.len() as u64) as usize;
        let data = block.get_mut(..n).unwrap_or_default();
        store
            .seek(SeekFrom::Start(offset))
            .await
            .map_err(store_io)?;
        read_exact(store, data, offset)
            .await
            .map_err(DownloadFailure::Decrypting)?;
        decryptor.decrypt(data).map_err(DownloadFailure::Decrypt)?;
        store
            .seek(SeekFrom::Start(offset))
            .await
            .map_err(store_io)?;
        write_all(store, data, offset)
            .await
            .map_err(DownloadFailure::Decrypting)?;
        offset += n as u64;
    }
    store.flush().await.map_err(store_io)?;
    let sha256 = decryptor.finish().map_err(DownloadFailure::Decrypt)?;
    Ok(Downloaded {
        size: key.file_size,
        sha256,
    })
}

/// `Write::write_all`, but a store that takes nothing is an error, not a
/// panic.
async fn write_all<S: Write>(
    store: &mut S,
    mut data: &[u8],
    mut offset: u64,
) -> Result<(), StoreError<S::Error>> {
    while !data.is_empty() {
        let n = store.write(data).await.map_err(StoreError::Io)?;
        if n == 0 {
            return Err(StoreError::Ended { offset });
        }
        data = data.get(n..).unwrap_or_default();
        offset += n as u64;
    }
    Ok(())
}

/// Fill `data` from the store.
async fn read_exact<S: Read>(
    store: &mut S,
    mut data: &mut [u8],
    mut offset: u64,
) -> Result<(), StoreError<S::Error>> {
    while !data.is_empty() {
        let n = store.read(data).await.map_err(StoreError::Io)?;
        if n == 0 {
            return Err(StoreError::Ended { offset });
        }
        data = core::mem::take(&mut data).get_mut(n..).unwrap_or_default();
        offset += n as u64;
    }
    Ok(())
}
