//! The decryption pass over a downloaded file's ciphertext.
//!
//! CFMS encrypts the whole file as one AES-256-CFB8 stream and sends the
//! key last, so the caller stores the ciphertext first and then replays it
//! here, in order, in pieces of any size. Every `chunk_size` bytes of
//! plaintext are checked against that chunk's SHA-256 from the download,
//! and [`FileDecryptor::finish`] checks the size and the whole-file
//! SHA-256. A mismatch names the chunk, so the caller knows which part of
//! the file is bad; plaintext must not be trusted before `finish` is `Ok`.

use aes::Aes256;
use cfb8::cipher::KeyIvInit;
use sha2::{Digest, Sha256};

use super::download::DownloadKey;

/// Why decrypted data cannot be trusted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DecryptError {
    /// Chunk `index` decrypts to data whose SHA-256 is not the one sent.
    ChunkHashMismatch {
        /// Chunk index.
        index: u32,
    },
    /// The whole file's SHA-256 differs from the header's.
    FileHashMismatch,
    /// More ciphertext than the file size, or less at `finish`.
    SizeMismatch {
        /// The file size.
        expected: u64,
        /// Bytes given.
        got: u64,
    },
    /// Fewer chunk hashes than chunks.
    MissingChunkHashes,
    /// A key with `chunk_size` 0 for a non-empty file.
    ZeroChunkSize,
}

impl core::fmt::Display for DecryptError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            DecryptError::ChunkHashMismatch { index } => {
                write!(f, "chunk {index} fails its SHA-256 check")
            }
            DecryptError::FileHashMismatch => f.write_str("file fails its SHA-256 check"),
            DecryptError::SizeMismatch { expected, got } => {
                write!(f, "file is {got} bytes, expected {expected}")
            }
            DecryptError::MissingChunkHashes => f.write_str("fewer chunk hashes than chunks"),
            DecryptError::ZeroChunkSize => f.write_str("chunk size 0 for a non-empty file"),
        }
    }
}

/// Decrypts and verifies a downloaded file (see the module doc).
pub struct FileDecryptor<'h> {
    cipher: cfb8::Decryptor<Aes256>,
    key: DownloadKey,
    hashes: &'h [[u8; 32]],
    chunk: Sha256,
    file: Sha256,
    offset: u64,
    in_chunk: u64,
    index: u32,
}

impl<'h> FileDecryptor<'h> {
    /// A decryptor for the file described by `key`, with one hash per chunk.
    pub fn new(key: &DownloadKey, hashes: &'h [[u8; 32]]) -> Result<Self, DecryptError> {
        if key.chunk_size == 0 && key.file_size > 0 {
            return Err(DecryptError::ZeroChunkSize);
        }
        if hashes.len() < key.total_chunks as usize {
            return Err(DecryptError::MissingChunkHashes);
        }
        Ok(FileDecryptor {
            cipher: cfb8::Decryptor::<Aes256>::new(&key.key.into(), &key.iv.into()),
            key: *key,
            hashes,
            chunk: Sha256::new(),
            file: Sha256::new(),
            offset: 0,
            in_chunk: 0,
            index: 0,
        })
    }

    /// Decrypt the next ciphertext bytes in place and check finished chunks.
    pub fn decrypt(&mut self, mut data: &mut [u8]) -> Result<(), DecryptError> {
        let got = self.offset + data.len() as u64;
        if got > self.key.file_size {
            return Err(DecryptError::SizeMismatch {
                expected: self.key.file_size,
                got,
            });
        }
        self.cipher.decrypt(data);
        self.file.update(&*data);
        let chunk_size = u64::from(self.key.chunk_size);
        while !data.is_empty() {
            let take = (chunk_size - self.in_chunk).min(data.len() as u64) as usize;
            let (head, rest) = data.split_at_mut(take);
            self.chunk.update(&*head);
            self.in_chunk += take as u64;
            self.offset += take as u64;
            data = rest;
            if self.in_chunk == chunk_size || self.offset == self.key.file_size {
                self.check_chunk()?;
            }
        }
        Ok(())
    }

    fn check_chunk(&mut self) -> Result<(), DecryptError> {
        let digest: [u8; 32] = core::mem::take(&mut self.chunk).finalize().into();
        let index = self.index;
        self.index += 1;
        self.in_chunk = 0;
        match self.hashes.get(index as usize) {
            Some(h) if *h == digest => Ok(()),
            _ => Err(DecryptError::ChunkHashMismatch { index }),
        }
    }

    /// Check the size and the whole-file SHA-256; returns the digest.
    pub fn finish(self) -> Result<[u8; 32], DecryptError> {
        if self.offset != self.key.file_size {
            return Err(DecryptError::SizeMismatch {
                expected: self.key.file_size,
                got: self.offset,
            });
        }
        let digest: [u8; 32] = self.file.finalize().into();
        match self.key.sha256 {
            Some(h) if h != digest => Err(DecryptError::FileHashMismatch),
            _ => Ok(digest),
        }
    }
}
