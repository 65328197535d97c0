//! A download into the caller's store: [`Connection::download`], on
//! either wire the session speaks.
//!
//! CFMS sends the key last, so the file passes through the store (any
//! `embedded-io-async` `Read + Write + Seek`: an SD card file, a flash
//! partition) twice: the ciphertext is written as it arrives, then read
//! back and replaced by the plaintext. Protocols 3–5 encrypt the whole
//! file as one AES-256-CFB8 stream with a SHA-256 per chunk; protocol 13
//! encrypts each chunk on its own with AES-256-GCM (`cfms-13.md` §10), its
//! tag and nonce prefix (its *seal*) sent beside it:
//!
//! ```text
//! Start ──download_file──► Receiving ──aes_key──┬─ 3–5 ─► Decrypting ──end of file──► Verified
//!   │ block too small,       │ each file_chunk:  │          each block: read back at its offset,
//!   │ session refuses        │ its ciphertext    │          decrypted, every chunk's SHA-256
//!   ▼                        │ written to the    │          checked, written back; then size
//! BlockTooSmall, Refused     │ store as it       │          and file SHA-256
//!                            │ arrives (index,   │
//!                            │ length checked;   └─ 13 ──► Opening ──last chunk──► Verified
//!                            │ 3–5: its hash       each chunk, two passes through `block`:
//!                            │ kept, 13: its seal  1. read back a block at a time, hashed
//!                            ▼ kept)                  (GHASH); its tag checked: nothing
//! Connection, Transfer, Receiving                     written if forged
//!                                                  2. read back again a block at a time,
//!                                                     decrypted, written back at the same
//!                                                     offsets; the file's SHA-256 on the way
//!                                           3–5: Decrypting, Decrypt
//!                                           13:  Decrypting, Open
//! ```
//!
//! Memory: the caller's `block`, the session's chunk storage (32 bytes per
//! chunk: a chunk's SHA-256 on 3–5, its seal on 13) and the cipher's stack;
//! no allocation. The ciphertext is decoded by the session into its own
//! receive buffer, a WebSocket piece at a time, and written out from
//! there. While receiving, the store sees sequential writes of any length
//! from offset 0.
//!
//! - 3–5: `block` is any size from [`MIN_BLOCK`] (a few KiB is plenty);
//!   while decrypting, the store sees a read and a write of `block.len()`
//!   bytes (the last one shorter) at each multiple of `block.len()`, so a
//!   block of whole sectors keeps a flash store's accesses aligned.
//! - 13: `block` is any size from [`MIN_BLOCK`] too, whatever the
//!   server's chunk size (`file_chunk_size`, 2 MiB by default on the real
//!   server). A GCM chunk is authenticated whole before any of it may be
//!   used, so each chunk is read back twice ([`ChunkOpener`]): once to
//!   check its tag, once to decrypt it. The store sees, per chunk, reads
//!   of `block.len()` bytes from the chunk's start (the last one shorter),
//!   then a read and a write of `block.len()` bytes at each multiple of
//!   `block.len()` from the chunk's start; a block of whole sectors that
//!   divides `chunk_size` keeps a flash store's accesses aligned. The
//!   opener adds about 0.6 KiB of state on the stack. The chunk storage
//!   needs `⌈file_size / chunk_size⌉` slots (else the session refuses
//!   before `ready`: [`DownloadError::TooManyChunks`]).
//!
//! On any error the store's content is invalid (ciphertext, or plaintext
//! not yet verified): do not use it. The file occupies the first
//! [`Downloaded::size`] bytes; the store is not truncated.
#![deny(clippy::indexing_slicing)]

use embedded_io_async::{Read, Seek, SeekFrom, Write};
use naslink_core::cfms::p13::ChunkOpener;
use naslink_core::cfms::p13::Wire;
use naslink_core::cfms::p13::transfer::TransferError;
use naslink_core::cfms::session::Error as SessionError;
use naslink_core::cfms::{
    ConnectionEvent as Event, DecryptError, DownloadError, DownloadKey, FileDecryptor, Seq,
};
use naslink_core::random::Entropy;
use sha2::{Digest as _, Sha256};

use super::{Connection, Error};
use crate::time::now;

/// The smallest `block` the decryption passes take, on either protocol
/// (three bytes: the size a base64 quad decodes to, kept from when `block`
/// also cut the chunks; a block of at least a few hundred bytes keeps the
/// store's accesses few).
pub const MIN_BLOCK: usize = 3;

/// A verified download.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Downloaded {
    /// Plaintext bytes, at the start of the store.
    pub size: u64,
    /// Their SHA-256 (3–5: checked against the server's when it sent one;
    /// 13: computed here, the server sends none, every chunk's tag having
    /// been checked instead).
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
    /// its size (protocol 13: the size only).
    Decrypt(DecryptError),
    /// Protocol 13: a chunk fails AES-GCM authentication, forged or
    /// corrupted ([`TransferError::ForgedTag`] names it). The chunks before
    /// it are plaintext in the store, it and those after still ciphertext.
    Open(TransferError),
}

impl<E, S> DownloadFailure<E, S> {
    /// Whether the connection is over (chunks may still be in flight, or
    /// the transport failed): the session has been told of the disconnect;
    /// drop the connection and open a new one. Otherwise it stays usable.
    pub fn ends_connection(&self) -> bool {
        match self {
            DownloadFailure::Connection(_) | DownloadFailure::Receiving(_) => true,
            // A refusal, or (13) the `null` key that ends the stream.
            DownloadFailure::Transfer(e) => {
                !matches!(e, DownloadError::Server(_) | DownloadError::KeyTaken)
            }
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
    /// offset 0, decrypting through `block` (a few KiB, at least
    /// [`MIN_BLOCK`], on either protocol); see the [module docs](self). Other events arriving
    /// meanwhile (a lockdown push) are not handed on; the session's state
    /// keeps what they said.
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
        self.driver
            .flush()
            .await
            .map_err(DownloadFailure::Connection)?;
        let framed = self.session().wire() == Wire::Framed;
        let seq = self
            .driver
            .connection_mut()
            .download_file(now(), task_id)
            .map_err(DownloadFailure::Refused)?;
        let key = match self.receive(seq, store).await {
            Ok(key) => key,
            Err(e) => {
                if e.ends_connection() {
                    self.driver.disconnect();
                }
                return Err(e);
            }
        };
        let stored = self.session().chunk_hashes();
        if framed {
            open_in_place(&key, stored, store, block).await
        } else {
            decrypt_in_place(&key, stored, store, block).await
        }
    }

    /// Store the ciphertext as it arrives until the key does.
    async fn receive<S: Write + Seek>(
        &mut self,
        seq: Seq,
        store: &mut S,
    ) -> Result<DownloadKey, DownloadFailure<T::Error, S::Error>> {
        let lost = DownloadFailure::Connection;
        let store_io = |e| DownloadFailure::Receiving(StoreError::Io(e));
        store.seek(SeekFrom::Start(0)).await.map_err(store_io)?;
        let mut stored = 0;
        loop {
            if !self.driver.wait_event(None).await.map_err(lost)? {
                continue;
            }
            let event = match self.driver.poll_event() {
                Ok(Some(event)) => event,
                Ok(None) => continue,
                Err(e) => return Err(lost(e)),
            };
            match event {
                Event::DownloadData { seq: s, data } if s == seq => {
                    write_all(store, data, stored)
                        .await
                        .map_err(DownloadFailure::Receiving)?;
                    stored += data.len() as u64;
                }
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
                Event::BadMessage(e) => return Err(lost(Error::Cfms(e))),
                // Progress, and pushes the session already took note of.
                _ => {}
            }
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
    rewrite(store, block, 0, key.file_size, |data| {
        decryptor.decrypt(data).map_err(DownloadFailure::Decrypt)
    })
    .await?;
    store.flush().await.map_err(store_io)?;
    let sha256 = decryptor.finish().map_err(DownloadFailure::Decrypt)?;
    Ok(Downloaded {
        size: key.file_size,
        sha256,
    })
}

/// Protocol 13: replace each chunk's ciphertext with its plaintext, in
/// two passes through `block`: the tag checked over the whole chunk first,
/// then the chunk decrypted; the file hashed on the way.
async fn open_in_place<E, S: Read + Write + Seek>(
    key: &DownloadKey,
    seals: &[[u8; 32]],
    store: &mut S,
    block: &mut [u8],
) -> Result<Downloaded, DownloadFailure<E, S::Error>> {
    let store_io = |e| DownloadFailure::Decrypting(StoreError::Io(e));
    let chunk_size = u64::from(key.chunk_size);
    let mut sha256 = Sha256::new();
    for index in 0..key.total_chunks {
        let start = u64::from(index) * chunk_size;
        let end = start + key.file_size.saturating_sub(start).min(chunk_size);
        let seal = seals.get(index as usize).ok_or(DownloadFailure::Transfer(
            DownloadError::BadChunkFields { index },
        ))?;
        // Pass 1: authenticate the whole chunk; nothing is written.
        let mut opener = ChunkOpener::from_seal(key, index, seal);
        store.seek(SeekFrom::Start(start)).await.map_err(store_io)?;
        let mut offset = start;
        while offset < end {
            let n = (end - offset).min(block.len() as u64) as usize;
            let data = block.get_mut(..n).unwrap_or_default();
            read_exact(store, data, offset)
                .await
                .map_err(DownloadFailure::Decrypting)?;
            opener.update(data);
            offset += n as u64;
        }
        let mut chunk = opener.verify().map_err(DownloadFailure::Open)?;
        // Pass 2: decrypt it, block by block, at the same offsets.
        rewrite(store, block, start, end, |data| {
            chunk.decrypt(data).map_err(DownloadFailure::Open)?;
            sha256.update(&*data);
            Ok(())
        })
        .await?;
    }
    store.flush().await.map_err(store_io)?;
    Ok(Downloaded {
        size: key.file_size,
        sha256: sha256.finalize().into(),
    })
}

/// Replace the store's bytes `start..end` with `change` applied to them,
/// one `block` at a time: each block read back, changed in place and
/// written at the offset it came from.
async fn rewrite<E, S: Read + Write + Seek>(
    store: &mut S,
    block: &mut [u8],
    start: u64,
    end: u64,
    mut change: impl FnMut(&mut [u8]) -> Result<(), DownloadFailure<E, S::Error>>,
) -> Result<(), DownloadFailure<E, S::Error>> {
    let store_io = |e| DownloadFailure::Decrypting(StoreError::Io(e));
    let mut offset = start;
    while offset < end {
        let n = (end - offset).min(block.len() as u64) as usize;
        let data = block.get_mut(..n).unwrap_or_default();
        store
            .seek(SeekFrom::Start(offset))
            .await
            .map_err(store_io)?;
        read_exact(store, data, offset)
            .await
            .map_err(DownloadFailure::Decrypting)?;
        change(data)?;
        store
            .seek(SeekFrom::Start(offset))
            .await
            .map_err(store_io)?;
        write_all(store, data, offset)
            .await
            .map_err(DownloadFailure::Decrypting)?;
        offset += n as u64;
    }
    Ok(())
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
