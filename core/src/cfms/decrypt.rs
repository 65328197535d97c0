//! The decryption pass over a downloaded file's ciphertext.
//!
//! CFMS encrypts the whole file as one AES-256-CFB8 stream and sends the
//! key last, so the caller stores the ciphertext first and then replays it
//! here, in order, in pieces of any size. Every `chunk_size` bytes of
//! plaintext are checked against that chunk's SHA-256 from the download,
//! and [`FileDecryptor::finish`] checks the size and the whole-file
//! SHA-256. A mismatch names the chunk, so the caller knows which part of
//! the file is bad; plaintext must not be trusted before `finish` is `Ok`.
#![deny(clippy::indexing_slicing)]

use aes::Aes256;
use aes::cipher::{BlockCipherEncrypt, KeyInit};
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

/// Block encryptions computed together by [`Cfb8Decryptor`]: enough to
/// fill the parallel pipelines of AES-NI (8 blocks) and VAES several times
/// over, small enough for a device's stack (about 600 bytes).
const BATCH: usize = 32;

/// AES-256-CFB8 decryption that runs a batch of block encryptions at once.
///
/// In CFB8 each byte costs one AES block encryption of the 16 ciphertext
/// bytes before it. Encrypting, each depends on the last; decrypting, all
/// of them are known in advance, so a batch goes through the cipher's
/// multi-block entry point, which AES-NI (and the bitsliced software
/// backend of a microcontroller) pipelines. The `cfb8` crate decrypts one
/// byte, one dependent block encryption, at a time.
pub(crate) struct Cfb8Decryptor {
    cipher: Aes256,
    /// The last 16 ciphertext bytes (the IV at the start).
    register: [u8; 16],
}

impl Cfb8Decryptor {
    /// A decryptor for `key` and `iv`.
    pub(crate) fn new(key: &[u8; 32], iv: &[u8; 16]) -> Self {
        Cfb8Decryptor {
            cipher: Aes256::new(&(*key).into()),
            register: *iv,
        }
    }

    /// Decrypt the next bytes of the stream in place; pieces of any size.
    // Bounds: `n` ≤ BATCH (a `chunks_mut(BATCH)` piece), `window` holds
    // 16 + BATCH bytes and `blocks` BATCH, and `j` < `n`, so `j + 16` ≤
    // `n + 16` ≤ `window.len()`. Kept as indexes: this is the download's
    // inner loop.
    #[allow(clippy::indexing_slicing)]
    pub(crate) fn decrypt(&mut self, data: &mut [u8]) {
        // The register, then the batch's ciphertext: block j is window[j..j + 16].
        let mut window = [0u8; 16 + BATCH];
        let mut blocks = [aes::Block::default(); BATCH];
        for piece in data.chunks_mut(BATCH) {
            let n = piece.len();
            window[..16].copy_from_slice(&self.register);
            window[16..16 + n].copy_from_slice(piece);
            for (j, block) in blocks[..n].iter_mut().enumerate() {
                block.copy_from_slice(&window[j..j + 16]);
            }
            self.cipher.encrypt_blocks(&mut blocks[..n]);
            for (byte, block) in piece.iter_mut().zip(&blocks[..n]) {
                *byte ^= block[0];
            }
            self.register.copy_from_slice(&window[n..n + 16]);
        }
    }
}

/// Decrypts and verifies a downloaded file (see the module doc).
pub struct FileDecryptor<'h> {
    cipher: Cfb8Decryptor,
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
            cipher: Cfb8Decryptor::new(&key.key, &key.iv),
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

#[cfg(test)]
// Tests index fixtures they built themselves.
#[allow(clippy::indexing_slicing)]
mod tests {
    use super::*;
    use cfb8::cipher::KeyIvInit;

    /// A small deterministic generator for test data and split points.
    struct XorShift(u64);

    impl XorShift {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
    }

    #[test]
    fn batched_decryption_equals_the_cfb8_crate_for_any_length_and_any_split() {
        let mut rng = XorShift(0x9E37_79B9_7F4A_7C15);
        for len in (0..130).chain([1000, 4096, 5003]) {
            let mut key = [0u8; 32];
            let mut iv = [0u8; 16];
            key.iter_mut().for_each(|b| *b = rng.next() as u8);
            iv.iter_mut().for_each(|b| *b = rng.next() as u8);
            let mut plain = [0u8; 5003];
            plain[..len].iter_mut().for_each(|b| *b = rng.next() as u8);
            let mut cipher = plain;
            cfb8::Encryptor::<Aes256>::new(&key.into(), &iv.into()).encrypt(&mut cipher[..len]);

            let mut reference = cipher;
            cfb8::Decryptor::<Aes256>::new(&key.into(), &iv.into()).decrypt(&mut reference[..len]);
            assert_eq!(reference[..len], plain[..len]);

            // Ours, fed in pieces of random sizes (empty ones too).
            let mut ours = cipher;
            let mut decryptor = Cfb8Decryptor::new(&key, &iv);
            let mut at = 0;
            while at < len {
                let step = (rng.next() % 70) as usize;
                let end = (at + step).min(len);
                decryptor.decrypt(&mut ours[at..end]);
                at = end;
            }
            assert_eq!(ours[..len], plain[..len], "length {len}");
        }
    }
}
