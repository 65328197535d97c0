//! A protocol-13 chunk opened in two passes over pieces of any length, so
//! a device never holds a whole chunk (2 MiB by default on the real
//! server) in memory.
//!
//! Each chunk is AES-256-GCM with nonce = prefix ‖ index (u32 BE) and no
//! associated data (`cfms-13.md` §10); its tag covers the whole chunk, so
//! no byte of it may be used before the last byte has been authenticated.
//! [`open_chunk`](super::transfer::open_chunk) does both at once on a
//! chunk held whole; here the caller goes over its stored ciphertext
//! twice, in pieces of whatever length its buffer has:
//!
//! ```text
//! ChunkOpener::new ──► Hashing ──verify──┬─ tag matches ──► Verified ──decrypt(piece)…──► plaintext
//!   (key, index,       update(piece)…    │                  (pass 2: the same bytes, in
//!    prefix, tag)      (pass 1: GHASH    │                   order, decrypted in place)
//!                       of the ciphertext)└─ otherwise ──► TransferError::ForgedTag { index }
//! ```
//!
//! - **Hashing** ([`ChunkOpener`]): pass 1. [`ChunkOpener::update`] feeds
//!   ciphertext pieces to GHASH; [`ChunkOpener::verify`] adds the lengths
//!   block, computes the tag (GHASH ⊕ E(K, J0), J0 = nonce ‖ 00000001) and
//!   compares it in constant time with the one received. It consumes the
//!   opener: a forged chunk leaves nothing to decrypt with.
//! - **Verified** ([`VerifiedChunk`]): pass 2. Only `verify` makes one, so
//!   decrypting an unauthenticated chunk does not type-check.
//!   [`VerifiedChunk::decrypt`] applies the CTR keystream (counter from
//!   J0 + 1, 32-bit big-endian in the block's last four bytes) in place to
//!   pieces of any length, keeping its position inside a keystream block;
//!   it refuses to go past the length that was authenticated.
//!
//! The caller must feed pass 2 the same bytes as pass 1 (its store must
//! not change in between): the type can check the length, not the bytes.
//! Keys, GHASH state and keystream are wiped on drop and redacted in
//! `Debug`. Memory: about 0.6 KiB for either state (the AES-256 round
//! keys, GHASH state, four keystream blocks), no allocation.
#![deny(clippy::indexing_slicing)]

use aes::Aes256;
use aes::cipher::{BlockCipherEncrypt, KeyInit};
use ctutils::CtEq;
use ghash::GHash;
use ghash::universal_hash::UniversalHash;
use zeroize::Zeroize;

use super::transfer::TransferError;

/// Keystream blocks computed at once (the software AES does several in
/// parallel).
const KS_BLOCKS: usize = 4;
const KS_BYTES: usize = KS_BLOCKS * 16;

/// Pass 1 (the *Hashing* state): the ciphertext of one chunk goes through
/// GHASH, in pieces of any length, then [`verify`](Self::verify).
pub struct ChunkOpener {
    cipher: Aes256,
    ghash: GHash,
    /// Bytes of an incomplete GHASH block.
    partial: [u8; 16],
    filled: usize,
    /// Ciphertext bytes hashed.
    len: u64,
    /// nonce ‖ 00000001.
    j0: [u8; 16],
    tag: [u8; 16],
    index: u32,
}

impl ChunkOpener {
    /// Start opening chunk `index`, sealed with `prefix` and `tag`, under
    /// the download's `key`.
    pub fn new(key: &[u8; 32], index: u32, prefix: &[u8; 8], tag: &[u8; 16]) -> ChunkOpener {
        let cipher = Aes256::new(key.into());
        let mut h = ghash::Key::default();
        cipher.encrypt_block(&mut h);
        let ghash = GHash::new(&h);
        h.zeroize();
        let mut j0 = [0u8; 16];
        let (nonce, counter) = j0.split_at_mut(12);
        let (head, tail) = nonce.split_at_mut(8);
        head.copy_from_slice(prefix);
        tail.copy_from_slice(&index.to_be_bytes());
        counter.copy_from_slice(&1u32.to_be_bytes());
        ChunkOpener {
            cipher,
            ghash,
            partial: [0; 16],
            filled: 0,
            len: 0,
            j0,
            tag: *tag,
            index,
        }
    }

    /// Start opening chunk `index` of a download run by the
    /// [`Session`](crate::cfms::Session): `seal` is its slot in the chunk
    /// storage (tag ‖ nonce prefix), as for
    /// [`open_chunk`](super::transfer::open_chunk).
    pub fn from_seal(key: &crate::cfms::DownloadKey, index: u32, seal: &[u8; 32]) -> ChunkOpener {
        let (tag, prefix) = super::transfer::split_seal(seal);
        ChunkOpener::new(&key.key, index, &prefix, &tag)
    }

    /// The chunk being opened.
    pub fn index(&self) -> u32 {
        self.index
    }

    /// Ciphertext bytes hashed so far.
    pub fn hashed(&self) -> u64 {
        self.len
    }

    /// Hash the next `piece` of the chunk's ciphertext (any length, empty
    /// included).
    pub fn update(&mut self, piece: &[u8]) {
        self.len = self.len.saturating_add(piece.len() as u64);
        let mut rest = piece;
        if self.filled > 0 {
            let free = self.partial.get_mut(self.filled..).unwrap_or_default();
            let n = free.len().min(rest.len());
            let (now, later) = rest.split_at(n);
            free.iter_mut().zip(now).for_each(|(d, s)| *d = *s);
            self.filled += n;
            rest = later;
            if self.filled < 16 {
                return;
            }
            self.ghash.update(&[self.partial.into()]);
            self.filled = 0;
        }
        let (blocks, tail) = ghash::Block::slice_as_chunks(rest);
        self.ghash.update(blocks);
        self.partial.iter_mut().zip(tail).for_each(|(d, s)| *d = *s);
        self.filled = tail.len();
    }

    /// End pass 1: check the tag against everything hashed. On a match
    /// the chunk may be decrypted ([`VerifiedChunk`]); otherwise it is
    /// refused by index ([`TransferError::ForgedTag`]) and the opener is
    /// gone.
    pub fn verify(self) -> Result<VerifiedChunk, TransferError> {
        let index = self.index;
        let len = self.len;
        let mut ghash = self.ghash.clone();
        if let Some(tail) = self.partial.get(..self.filled) {
            ghash.update_padded(tail);
        }
        let mut lengths = ghash::Block::default();
        // No associated data: the first eight bytes stay zero.
        if let Some(bits) = lengths.get_mut(8..) {
            bits.copy_from_slice(&len.saturating_mul(8).to_be_bytes());
        }
        ghash.update(&[lengths]);
        let mut expected = ghash.finalize();
        let mut mask = ghash::Block::from(self.j0);
        self.cipher.encrypt_block(&mut mask);
        expected
            .iter_mut()
            .zip(mask.iter())
            .for_each(|(t, m)| *t ^= m);
        mask.zeroize();
        let matches: bool = expected.as_slice().ct_eq(&self.tag[..]).into();
        expected.zeroize();
        if !matches {
            return Err(TransferError::ForgedTag { index });
        }
        let mut counter = self.j0;
        inc32(&mut counter);
        Ok(VerifiedChunk {
            cipher: self.cipher.clone(),
            counter,
            keystream: [0; KS_BYTES],
            used: KS_BYTES,
            remaining: len,
            len,
            index,
        })
    }
}

impl Drop for ChunkOpener {
    fn drop(&mut self) {
        // `cipher` and `ghash` wipe themselves (their `zeroize` features).
        self.partial.zeroize();
        self.j0.zeroize();
    }
}

impl core::fmt::Debug for ChunkOpener {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("ChunkOpener")
            .field("index", &self.index)
            .field("hashed", &self.len)
            .finish_non_exhaustive()
    }
}

/// Pass 2 (the *Verified* state): chunk `index` authenticated; its
/// ciphertext is decrypted in place, in order, in pieces of any length.
/// Only [`ChunkOpener::verify`] makes one.
pub struct VerifiedChunk {
    cipher: Aes256,
    /// The next counter block.
    counter: [u8; 16],
    keystream: [u8; KS_BYTES],
    /// Keystream bytes already used.
    used: usize,
    /// Authenticated bytes not yet decrypted.
    remaining: u64,
    len: u64,
    index: u32,
}

impl VerifiedChunk {
    /// The chunk.
    pub fn index(&self) -> u32 {
        self.index
    }

    /// Bytes authenticated and not decrypted yet.
    pub fn remaining(&self) -> u64 {
        self.remaining
    }

    /// Decrypt the next `piece` of the chunk in place (the bytes that
    /// follow the previous piece in pass 1's order). Past the
    /// authenticated length nothing is touched:
    /// [`TransferError::SizeMismatch`] with `expected` the chunk's length.
    pub fn decrypt(&mut self, piece: &mut [u8]) -> Result<(), TransferError> {
        let n = piece.len() as u64;
        if n > self.remaining {
            return Err(TransferError::SizeMismatch {
                expected: self.len,
                got: self.len - self.remaining + n,
            });
        }
        self.remaining -= n;
        let mut rest = piece;
        while !rest.is_empty() {
            if self.used >= KS_BYTES {
                self.refill();
            }
            let avail = self.keystream.get(self.used..).unwrap_or_default();
            let n = avail.len().min(rest.len());
            let (now, later) = core::mem::take(&mut rest).split_at_mut(n);
            now.iter_mut().zip(avail).for_each(|(b, k)| *b ^= k);
            self.used += n;
            rest = later;
        }
        Ok(())
    }

    fn refill(&mut self) {
        let mut blocks = [aes::Block::default(); KS_BLOCKS];
        for b in blocks.iter_mut() {
            *b = self.counter.into();
            inc32(&mut self.counter);
        }
        self.cipher.encrypt_blocks(&mut blocks);
        for (dst, b) in self.keystream.chunks_exact_mut(16).zip(blocks.iter_mut()) {
            dst.copy_from_slice(b);
            b.zeroize();
        }
        self.used = 0;
    }
}

impl Drop for VerifiedChunk {
    fn drop(&mut self) {
        // `cipher` wipes itself (its `zeroize` feature).
        self.keystream.zeroize();
        self.counter.zeroize();
    }
}

impl core::fmt::Debug for VerifiedChunk {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("VerifiedChunk")
            .field("index", &self.index)
            .field("remaining", &self.remaining)
            .finish_non_exhaustive()
    }
}

/// GCM's inc32: the last four bytes, big-endian, wrapping.
fn inc32(block: &mut [u8; 16]) {
    if let Some(c) = block.last_chunk_mut::<4>() {
        *c = u32::from_be_bytes(*c).wrapping_add(1).to_be_bytes();
    }
}

#[cfg(test)]
// Tests index fixtures they built themselves.
#[allow(clippy::indexing_slicing)]
mod tests {
    extern crate std;
    use super::*;
    use aes_gcm::Aes256Gcm;
    use aes_gcm::aead::AeadInOut;
    use proptest::prelude::*;
    use std::format;
    use std::vec::Vec;

    fn seal(key: &[u8; 32], prefix: &[u8; 8], index: u32, buf: &mut [u8]) -> [u8; 16] {
        let mut nonce = [0u8; 12];
        nonce[..8].copy_from_slice(prefix);
        nonce[8..].copy_from_slice(&index.to_be_bytes());
        Aes256Gcm::new(key.into())
            .encrypt_inout_detached((&nonce).into(), b"", buf.into())
            .unwrap()
            .into()
    }

    /// Cut `len` bytes into pieces whose lengths cycle through `cuts`.
    fn pieces(len: usize, cuts: &[usize]) -> Vec<core::ops::Range<usize>> {
        let mut out = Vec::new();
        let mut at = 0;
        let mut i = 0;
        while at < len {
            let n = cuts[i % cuts.len()].min(len - at);
            out.push(at..at + n);
            at += n;
            i += 1;
        }
        out
    }

    fn open(
        key: &[u8; 32],
        prefix: &[u8; 8],
        index: u32,
        tag: &[u8; 16],
        buf: &mut [u8],
        hash_cuts: &[usize],
        decrypt_cuts: &[usize],
    ) -> Result<(), TransferError> {
        let mut opener = ChunkOpener::new(key, index, prefix, tag);
        for r in pieces(buf.len(), hash_cuts) {
            opener.update(&buf[r]);
        }
        let mut chunk = opener.verify()?;
        for r in pieces(buf.len(), decrypt_cuts) {
            chunk.decrypt(&mut buf[r])?;
        }
        assert_eq!(chunk.remaining(), 0);
        Ok(())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        #[test]
        fn two_passes_in_random_pieces_open_what_aes_gcm_sealed(
            key in any::<[u8; 32]>(),
            prefix in any::<[u8; 8]>(),
            index in any::<u32>(),
            plain in proptest::collection::vec(any::<u8>(), 0..70000),
            hash_cuts in proptest::collection::vec(1usize..5000, 1..8),
            decrypt_cuts in proptest::collection::vec(1usize..5000, 1..8),
            flip in any::<usize>(),
        ) {
            let mut buf = plain.clone();
            let tag = seal(&key, &prefix, index, &mut buf);
            let cipher = buf.clone();
            open(&key, &prefix, index, &tag, &mut buf, &hash_cuts, &decrypt_cuts).unwrap();
            prop_assert_eq!(&buf, &plain);

            // A flipped tag bit, or a flipped ciphertext bit, is refused by name.
            let mut bad = tag;
            bad[flip % 16] ^= 1 << (flip % 8);
            let mut buf = cipher.clone();
            prop_assert_eq!(
                open(&key, &prefix, index, &bad, &mut buf, &hash_cuts, &decrypt_cuts),
                Err(TransferError::ForgedTag { index })
            );
            prop_assert_eq!(&buf, &cipher);
            if !cipher.is_empty() {
                buf[flip % cipher.len()] ^= 1 << (flip % 8);
                prop_assert_eq!(
                    open(&key, &prefix, index, &tag, &mut buf, &hash_cuts, &decrypt_cuts),
                    Err(TransferError::ForgedTag { index })
                );
            }
        }
    }

    #[test]
    fn the_python_vector_opens_and_a_wrong_index_is_refused() {
        // Python `cryptography`'s AESGCM: key 00..1f, nonce a0..a7 ‖ 00000003.
        let key: [u8; 32] = core::array::from_fn(|i| i as u8);
        let prefix = [0xa0, 0xa1, 0xa2, 0xa3, 0xa4, 0xa5, 0xa6, 0xa7];
        let unhex = |s: &str| -> Vec<u8> {
            (0..s.len() / 2)
                .map(|i| u8::from_str_radix(&s[2 * i..2 * i + 2], 16).unwrap())
                .collect()
        };
        let cipher = unhex("4e54ededd79c2bf80f1d47048e44a9e11a9a6afc76489ea6374a6e44f398d64202");
        let tag: [u8; 16] = unhex("7e6742815d1af3e5d0731e2456dd299a")
            .try_into()
            .unwrap();
        let mut buf = cipher.clone();
        open(&key, &prefix, 3, &tag, &mut buf, &[5], &[1, 16, 3]).unwrap();
        assert_eq!(&buf[..], b"CFMS protocol 13 chunk, index 3!!");
        let mut buf = cipher.clone();
        assert_eq!(
            open(&key, &prefix, 4, &tag, &mut buf, &[33], &[33]),
            Err(TransferError::ForgedTag { index: 4 })
        );
    }

    #[test]
    fn decrypting_past_the_authenticated_length_touches_nothing() {
        let key = [7u8; 32];
        let prefix = [1u8; 8];
        let mut buf = [0u8; 20];
        let tag = seal(&key, &prefix, 0, &mut buf);
        let mut opener = ChunkOpener::new(&key, 0, &prefix, &tag);
        opener.update(&buf);
        let mut chunk = opener.verify().unwrap();
        chunk.decrypt(&mut buf[..15]).unwrap();
        let mut extra = [9u8; 6];
        assert_eq!(
            chunk.decrypt(&mut extra),
            Err(TransferError::SizeMismatch {
                expected: 20,
                got: 21
            })
        );
        assert_eq!(extra, [9; 6]);
        chunk.decrypt(&mut buf[15..]).unwrap();
        assert_eq!(buf, [0; 20]);
        assert!(!format!("{chunk:?}").contains("cipher"));
    }

    #[test]
    fn the_counter_wraps_in_its_last_four_bytes() {
        let mut b = [0xffu8; 16];
        inc32(&mut b);
        assert_eq!(b[..12], [0xff; 12]);
        assert_eq!(b[12..], [0; 4]);
    }
}
