//! RSA public-key operations without an allocator: RSAES-PKCS1-v1_5
//! encryption and RSASSA-PSS signature verification.
//!
//! The login sends the AES key encrypted to the server's RSA key (SPKI PEM,
//! 2048 bits on real servers). Encryption is one modular exponentiation with
//! the public exponent on fixed-width integers in Montgomery form, so any
//! modulus from [`MIN_MODULUS_BITS`] to [`MAX_MODULUS_BITS`] bits works and
//! the ciphertext always has exactly the modulus' length.
//!
//! Verifying a PSS signature ([`RsaPublicKey::verify_pss`]) is the same
//! exponentiation on the signature followed by the EMSA-PSS decoding of
//! RFC 8017 §9.1.2; a TLS 1.3 client uses it to check an RSA server's
//! CertificateVerify.
//!
//! Keys of up to 2048 bits run on 2048-bit integers, larger ones on 4096-bit
//! integers, and the exponentiation is plain square-and-multiply (the public
//! exponent is short), so no table of powers sits on the stack: a whole
//! password-login `poll_transmit` with a 2048-bit key runs in a 16 KB thread
//! stack in a release build (measured on x86-64; debug builds need several
//! times more, 4096-bit keys about twice as much).
//!
//! The padding string PS is drawn from the caller's [`Entropy`]: all of it in
//! one call, then one more byte for each zero byte in it. A test that feeds
//! recorded non-zero PS bytes therefore reproduces a recorded ciphertext.
#![deny(clippy::indexing_slicing)]

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use crypto_bigint::modular::{FixedMontyForm, FixedMontyParams};
use crypto_bigint::{Limb, Odd, U2048, Uint};
use der::Decode as _;
use sha2::Digest;
use zeroize::Zeroize;

use crate::random::Entropy;

/// Largest modulus supported, in bits.
pub const MAX_MODULUS_BITS: usize = 4096;
/// Smallest modulus accepted, in bits (smaller keys are broken).
pub const MIN_MODULUS_BITS: usize = 1024;
/// Largest modulus (and ciphertext) in bytes.
pub const MAX_MODULUS_BYTES: usize = MAX_MODULUS_BITS / 8;
/// Largest PEM text accepted: a 4096-bit SPKI key is about 800 characters.
pub const MAX_PEM_LEN: usize = 1024;
/// Largest DER key accepted: a 4096-bit SPKI key is 550 bytes.
const MAX_DER_LEN: usize = 640;

/// Why a public key could not be read or used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RsaError {
    /// No `-----BEGIN PUBLIC KEY-----` / `RSA PUBLIC KEY` block, or its
    /// base64 body is malformed or too long.
    InvalidPem,
    /// The DER structure is not a valid SPKI or PKCS#1 public key.
    InvalidDer,
    /// The SPKI algorithm is not `rsaEncryption`.
    NotRsa,
    /// The modulus is even or outside the supported sizes.
    UnsupportedModulus {
        /// Modulus size in bits.
        bits: usize,
    },
    /// The public exponent is even, below 3, or wider than 64 bits.
    UnsupportedExponent,
    /// The message is longer than modulus length − 11 bytes.
    MessageTooLong,
    /// The output buffer is shorter than the modulus.
    BufferTooSmall {
        /// Bytes needed.
        required: usize,
    },
    /// The signature is not exactly as long as the modulus, not below it,
    /// or does not verify.
    InvalidSignature,
}

impl From<crate::InsufficientSize> for RsaError {
    fn from(crate::InsufficientSize { required }: crate::InsufficientSize) -> Self {
        RsaError::BufferTooSmall { required }
    }
}

/// An RSA public key of up to [`MAX_MODULUS_BITS`] bits.
#[derive(Clone, PartialEq, Eq)]
pub struct RsaPublicKey {
    /// Big-endian, right-aligned in [`MAX_MODULUS_BYTES`].
    modulus: [u8; MAX_MODULUS_BYTES],
    exponent: u64,
    modulus_len: usize,
}

impl core::fmt::Debug for RsaPublicKey {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "RsaPublicKey({} bits, e={})", self.bits(), self.exponent)
    }
}

impl RsaPublicKey {
    /// A key from its big-endian modulus and exponent bytes.
    pub fn from_components(modulus: &[u8], exponent: &[u8]) -> Result<Self, RsaError> {
        let n = trim_leading_zeros(modulus);
        let bits = n
            .first()
            .map_or(0, |b| n.len() * 8 - b.leading_zeros() as usize);
        if !(MIN_MODULUS_BITS..=MAX_MODULUS_BITS).contains(&bits) {
            return Err(RsaError::UnsupportedModulus { bits });
        }
        if n.last().is_none_or(|b| b % 2 == 0) {
            return Err(RsaError::UnsupportedModulus { bits });
        }
        let modulus = right_aligned(n).ok_or(RsaError::UnsupportedModulus { bits })?;
        let e = trim_leading_zeros(exponent);
        if e.len() > 8 {
            return Err(RsaError::UnsupportedExponent);
        }
        let exponent = e.iter().fold(0u64, |acc, &b| (acc << 8) | u64::from(b));
        if exponent < 3 || exponent.is_multiple_of(2) {
            return Err(RsaError::UnsupportedExponent);
        }
        Ok(RsaPublicKey {
            modulus,
            exponent,
            modulus_len: n.len(),
        })
    }

    /// A key from a DER `SubjectPublicKeyInfo`.
    pub fn from_spki_der(der: &[u8]) -> Result<Self, RsaError> {
        let spki =
            spki::SubjectPublicKeyInfoRef::from_der(der).map_err(|_| RsaError::InvalidDer)?;
        if spki.algorithm.oid != pkcs1::ALGORITHM_OID {
            return Err(RsaError::NotRsa);
        }
        let inner = spki
            .subject_public_key
            .as_bytes()
            .ok_or(RsaError::InvalidDer)?;
        Self::from_pkcs1_der(inner)
    }

    /// A key from a DER PKCS#1 `RSAPublicKey`.
    pub fn from_pkcs1_der(der: &[u8]) -> Result<Self, RsaError> {
        let key = pkcs1::RsaPublicKeyRef::from_der(der).map_err(|_| RsaError::InvalidDer)?;
        Self::from_components(key.modulus.as_bytes(), key.public_exponent.as_bytes())
    }

    /// A key from PEM text: `PUBLIC KEY` (SPKI, what fnOS sends) or
    /// `RSA PUBLIC KEY` (PKCS#1).
    pub fn from_pem(pem: &str) -> Result<Self, RsaError> {
        let (label, body) = pem_body(pem).ok_or(RsaError::InvalidPem)?;
        let mut text = [0u8; MAX_PEM_LEN];
        let mut len = 0;
        for b in body.bytes().filter(|b| !b.is_ascii_whitespace()) {
            *text.get_mut(len).ok_or(RsaError::InvalidPem)? = b;
            len += 1;
        }
        let mut der = [0u8; MAX_DER_LEN];
        let text = text.get(..len).ok_or(RsaError::InvalidPem)?;
        let der_len = STANDARD
            .decode_slice(text, &mut der)
            .map_err(|_| RsaError::InvalidPem)?;
        let der = der.get(..der_len).ok_or(RsaError::InvalidPem)?;
        match label {
            PemLabel::Spki => Self::from_spki_der(der),
            PemLabel::Pkcs1 => Self::from_pkcs1_der(der),
        }
    }

    /// Modulus size in bits.
    pub fn bits(&self) -> usize {
        let n = self.modulus_bytes();
        n.first()
            .map_or(0, |b| n.len() * 8 - b.leading_zeros() as usize)
    }

    /// The modulus without its left padding (`modulus_len` bytes).
    fn modulus_bytes(&self) -> &[u8] {
        let start = MAX_MODULUS_BYTES.saturating_sub(self.modulus_len);
        self.modulus.get(start..).unwrap_or_default()
    }

    /// Modulus size in bytes: the length of every ciphertext.
    pub fn size(&self) -> usize {
        self.modulus_len
    }

    /// The public exponent.
    pub fn exponent(&self) -> u64 {
        self.exponent
    }

    /// RSAES-PKCS1-v1_5-encrypt `message` into `out[..self.size()]`, drawing
    /// the padding from `rng`. Returns the ciphertext length.
    pub fn encrypt_pkcs1v15(
        &self,
        message: &[u8],
        rng: &mut impl Entropy,
        out: &mut [u8],
    ) -> Result<usize, RsaError> {
        let k = self.modulus_len;
        if message.len() + 11 > k {
            return Err(RsaError::MessageTooLong);
        }
        let out = out
            .get_mut(..k)
            .ok_or(RsaError::BufferTooSmall { required: k })?;
        // EM = 00 || 02 || PS || 00 || M, right-aligned in the 4096-bit block;
        // PS has k - 3 - |M| ≥ 8 bytes.
        let mut em = [0u8; MAX_MODULUS_BYTES];
        let block = em.get_mut(MAX_MODULUS_BYTES - k..).unwrap_or_default();
        let [_, block_type, rest @ ..] = block else {
            return Err(RsaError::MessageTooLong);
        };
        *block_type = 2;
        let (ps, rest) = rest
            .split_at_mut_checked(k - 3 - message.len())
            .ok_or(RsaError::MessageTooLong)?;
        fill_nonzero(ps, rng);
        if let Some((_zero, m)) = rest.split_first_mut() {
            m.copy_from_slice(message);
        }
        let done = self.public_op(&em, out);
        em.zeroize();
        done.then_some(())
            .ok_or(RsaError::UnsupportedModulus { bits: self.bits() })?;
        Ok(k)
    }

    /// RSASSA-PSS-VERIFY (RFC 8017 §8.1.2) with hash `D`, MGF1 over `D`,
    /// and a salt as long as the hash: the only salt length TLS 1.3 allows
    /// (RFC 8446 §4.2.3) and what signers use by default.
    ///
    /// `message_hash` is `D(message)`: hashing stays with the caller, who
    /// may feed the message in pieces. `signature` must be exactly
    /// [`size`](Self::size) bytes and below the modulus.
    pub fn verify_pss<D: Digest>(
        &self,
        message_hash: &[u8],
        signature: &[u8],
    ) -> Result<(), RsaError> {
        let k = self.modulus_len;
        let n = self.modulus_bytes();
        // Equal lengths, big-endian: byte order is numeric order.
        if signature.len() != k || signature >= n {
            return Err(RsaError::InvalidSignature);
        }
        let s = right_aligned(signature).ok_or(RsaError::InvalidSignature)?;
        let mut m = [0u8; MAX_MODULUS_BYTES];
        let m = m.get_mut(..k).ok_or(RsaError::InvalidSignature)?;
        if !self.public_op(&s, m) {
            return Err(RsaError::UnsupportedModulus { bits: self.bits() });
        }
        // EM is emLen = ceil((modBits - 1) / 8) bytes: one less than the
        // modulus when modBits ≡ 1 (mod 8), and then m's top byte is zero.
        let em_bits = self.bits() - 1;
        let (top, em) = m
            .split_at_mut_checked(k - em_bits.div_ceil(8))
            .ok_or(RsaError::InvalidSignature)?;
        if top.iter().any(|&b| b != 0) || !emsa_pss_verify::<D>(message_hash, em, em_bits) {
            return Err(RsaError::InvalidSignature);
        }
        Ok(())
    }

    /// `out = input^e mod n`, `input` right-aligned in [`MAX_MODULUS_BYTES`]
    /// and below the modulus, `out` the modulus' length. Keys of up to 2048
    /// bits (what servers use) run on 2048-bit integers: half the stack and
    /// a quarter of the work of 4096 bits.
    ///
    /// A firmware built with `--cfg naslink_rsa_max_2048` (the fnOS key is
    /// 2048 bits) leaves the 4096-bit arithmetic out, about 4 KiB of flash;
    /// larger keys then fail as an invalid key would.
    fn public_op(&self, input: &[u8; MAX_MODULUS_BYTES], out: &mut [u8]) -> bool {
        if self.modulus_len <= U2048::BYTES {
            modexp::<{ U2048::LIMBS }>(&self.modulus, input, self.exponent, out)
        } else {
            #[cfg(not(naslink_rsa_max_2048))]
            return modexp::<{ crypto_bigint::U4096::LIMBS }>(
                &self.modulus,
                input,
                self.exponent,
                out,
            );
            #[cfg(naslink_rsa_max_2048)]
            false
        }
    }
}

/// EMSA-PSS-VERIFY (RFC 8017 §9.1.2) of `em` (unmasked in place) against
/// `message_hash`, with a salt as long as `D`'s output.
fn emsa_pss_verify<D: Digest>(message_hash: &[u8], em: &mut [u8], em_bits: usize) -> bool {
    let h_len = <D as Digest>::output_size();
    let salt_len = h_len;
    let em_len = em.len();
    if message_hash.len() != h_len || em_len < h_len + salt_len + 2 {
        return false;
    }
    // EM = maskedDB (em_len - h_len - 1 bytes) || H || 0xbc
    let Some((&mut 0xbc, em)) = em.split_last_mut() else {
        return false;
    };
    let Some((masked_db, h)) = em.split_at_mut_checked(em_len - h_len - 1) else {
        return false;
    };
    // The bits above emBits must be zero before and after unmasking.
    let top_bits = 0xffu8 >> (8 * em_len - em_bits);
    if masked_db.first().is_none_or(|&b| b & !top_bits != 0) {
        return false;
    }
    mgf1_xor::<D>(h, masked_db);
    let db = masked_db;
    if let Some(first) = db.first_mut() {
        *first &= top_bits;
    }
    // DB = PS (zeros) || 0x01 || salt
    let ps_len = em_len - h_len - salt_len - 2;
    let Some((ps, rest)) = db.split_at_checked(ps_len) else {
        return false;
    };
    let Some((&0x01, salt)) = rest.split_first() else {
        return false;
    };
    if ps.iter().any(|&b| b != 0) {
        return false;
    }
    let expected = D::new()
        .chain_update([0u8; 8])
        .chain_update(message_hash)
        .chain_update(salt)
        .finalize();
    expected.as_slice() == h
}

/// `out ^= MGF1(seed)` (RFC 8017 §B.2.1), one hash block at a time.
fn mgf1_xor<D: Digest>(seed: &[u8], out: &mut [u8]) {
    for (counter, chunk) in (0u32..).zip(out.chunks_mut(<D as Digest>::output_size())) {
        let block = D::new()
            .chain_update(seed)
            .chain_update(counter.to_be_bytes())
            .finalize();
        for (o, m) in chunk.iter_mut().zip(block.iter()) {
            *o ^= m;
        }
    }
}

/// `out = em^e mod n` on `L`-limb integers; `n` and `em` are right-aligned
/// in [`MAX_MODULUS_BYTES`] and must fit `L` limbs. `false` if they do not
/// or `n` is even. Never inlined, so only the width in use takes stack.
#[inline(never)]
fn modexp<const L: usize>(
    n: &[u8; MAX_MODULUS_BYTES],
    em: &[u8; MAX_MODULUS_BYTES],
    e: u64,
    out: &mut [u8],
) -> bool {
    let width = L * Limb::BYTES;
    let Some(skip) = MAX_MODULUS_BYTES.checked_sub(width) else {
        return false;
    };
    let (Some((n_high, n)), Some((em_high, em))) =
        (n.split_at_checked(skip), em.split_at_checked(skip))
    else {
        return false;
    };
    if n_high.iter().chain(em_high).any(|&b| b != 0) {
        return false;
    }
    let Some(modulus) = Odd::new(Uint::<L>::from_be_slice(n)).into_option() else {
        return false;
    };
    let params = FixedMontyParams::new_vartime(modulus);
    let mut m = Uint::<L>::from_be_slice(em);
    let mut m_form = FixedMontyForm::new(&m, &params);
    m.zeroize();
    let mut c = pow_public(&m_form, e).retrieve();
    m_form.zeroize();
    let encoded = c.to_be_bytes();
    c.zeroize();
    let bytes = encoded.as_ref();
    match bytes.get(bytes.len().saturating_sub(out.len())..) {
        Some(tail) if tail.len() == out.len() => {
            out.copy_from_slice(tail);
            true
        }
        _ => false,
    }
}

/// `base^e` by left-to-right square-and-multiply. The exponent is public
/// (65537 in practice: 16 squarings and one multiplication), so variable
/// time is fine, and unlike a windowed exponentiation this keeps no table
/// of sixteen 4096-bit powers on the stack.
fn pow_public<const L: usize>(base: &FixedMontyForm<L>, e: u64) -> FixedMontyForm<L> {
    let mut acc = *base;
    let top = 63 - e.leading_zeros();
    for bit in (0..top).rev() {
        acc = acc.square();
        if (e >> bit) & 1 == 1 {
            acc = acc.mul(base);
        }
    }
    acc
}

/// `bytes` without its leading zero bytes.
fn trim_leading_zeros(bytes: &[u8]) -> &[u8] {
    let mut rest = bytes;
    while let [0, tail @ ..] = rest {
        rest = tail;
    }
    rest
}

/// `src` right-aligned in a modulus-sized block; `None` if it is longer.
fn right_aligned(src: &[u8]) -> Option<[u8; MAX_MODULUS_BYTES]> {
    let mut out = [0u8; MAX_MODULUS_BYTES];
    let start = MAX_MODULUS_BYTES.checked_sub(src.len())?;
    out.get_mut(start..)?.copy_from_slice(src);
    Some(out)
}

enum PemLabel {
    Spki,
    Pkcs1,
}

fn pem_body(pem: &str) -> Option<(PemLabel, &str)> {
    for (label, name) in [
        (PemLabel::Spki, "PUBLIC KEY"),
        (PemLabel::Pkcs1, "RSA PUBLIC KEY"),
    ] {
        let mut begin = heapless::String::<32>::new();
        let mut end = heapless::String::<32>::new();
        core::fmt::write(&mut begin, format_args!("-----BEGIN {name}-----")).ok()?;
        core::fmt::write(&mut end, format_args!("-----END {name}-----")).ok()?;
        if let Some(at) = pem.find(begin.as_str()) {
            let rest = &pem[at + begin.len()..];
            let stop = rest.find(end.as_str())?;
            return Some((label, &rest[..stop]));
        }
    }
    None
}

/// Fill `ps` with non-zero random bytes, replacing each zero drawn by a fresh
/// draw so the distribution stays uniform over 1..=255.
fn fill_nonzero(ps: &mut [u8], rng: &mut impl Entropy) {
    rng.fill_bytes(ps);
    for b in ps.iter_mut() {
        while *b == 0 {
            let mut one = [0u8; 1];
            rng.fill_bytes(&mut one);
            *b = one[0];
        }
    }
}

#[cfg(test)]
// Tests index fixtures they built themselves.
#[allow(clippy::indexing_slicing)]
mod tests {
    extern crate std;
    use super::*;
    use rsa::pkcs8::{DecodePrivateKey, EncodePublicKey};
    use rsa::rand_core::{CryptoRng, RngCore};
    use rsa::traits::PublicKeyParts;

    /// A throwaway 4096-bit key (also used by `tests/fnos_rsa.rs`).
    const KEY_4096: &str = include_str!("../../tests/fixtures/fnos_rsa4096_test_key.pem");
    const VECTORS: &str = include_str!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../shared/vectors/fnos.json"
    ));

    /// Salts and key generation for the `rsa` crate: deterministic, so a
    /// failure reproduces.
    struct TestRng(u64);

    impl RngCore for TestRng {
        fn next_u32(&mut self) -> u32 {
            self.next_u64() as u32
        }
        fn next_u64(&mut self) -> u64 {
            // xorshift64*
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
        }
        fn fill_bytes(&mut self, dest: &mut [u8]) {
            for chunk in dest.chunks_mut(8) {
                let n = self.next_u64().to_le_bytes();
                chunk.copy_from_slice(&n[..chunk.len()]);
            }
        }
        fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), rsa::rand_core::Error> {
            self.fill_bytes(dest);
            Ok(())
        }
    }

    impl CryptoRng for TestRng {}

    fn key_2048() -> rsa::RsaPrivateKey {
        let v: serde_json::Value = serde_json::from_str(VECTORS).unwrap();
        let pem = v["rsa_test_key"]["private_pem_pkcs8"].as_str().unwrap();
        rsa::RsaPrivateKey::from_pkcs8_pem(pem).unwrap()
    }

    /// A 1025-bit key: the smallest size with modBits ≡ 1 (mod 8).
    fn key_1025() -> rsa::RsaPrivateKey {
        rsa::RsaPrivateKey::new(&mut TestRng(0x5eed), 1025).unwrap()
    }

    fn public(private: &rsa::RsaPrivateKey) -> RsaPublicKey {
        let der = private.to_public_key().to_public_key_der().unwrap();
        RsaPublicKey::from_spki_der(der.as_bytes()).unwrap()
    }

    /// `D(message)` with this crate's SHA-2 (the `rsa` crate signs with its own).
    fn hash<D: Digest>(message: &[u8]) -> sha2::digest::Output<D> {
        D::digest(message)
    }

    /// A PSS signature over `digest` by the `rsa` crate, salt as long as
    /// the hash.
    fn sign_pss<D: 'static + rsa::sha2::Digest + rsa::sha2::digest::DynDigest + Send + Sync>(
        private: &rsa::RsaPrivateKey,
        digest: &[u8],
        salt_len: usize,
    ) -> std::vec::Vec<u8> {
        private
            .sign_with_rng(
                &mut TestRng(7),
                rsa::Pss::new_with_salt::<D>(salt_len),
                digest,
            )
            .unwrap()
    }

    const MESSAGE: &[u8] = b"TLS 1.3, server CertificateVerify";

    #[test]
    fn pss_sha256_signature_by_the_key_verifies() {
        let private = key_2048();
        let digest = hash::<sha2::Sha256>(MESSAGE);
        let sig = sign_pss::<rsa::sha2::Sha256>(&private, &digest, 32);
        assert_eq!(
            public(&private).verify_pss::<sha2::Sha256>(&digest, &sig),
            Ok(())
        );
    }

    #[test]
    fn pss_sha384_and_sha512_signatures_verify() {
        let private = key_2048();
        let key = public(&private);
        let d384 = hash::<sha2::Sha384>(MESSAGE);
        let sig = sign_pss::<rsa::sha2::Sha384>(&private, &d384, 48);
        assert_eq!(key.verify_pss::<sha2::Sha384>(&d384, &sig), Ok(()));
        let d512 = hash::<sha2::Sha512>(MESSAGE);
        let sig = sign_pss::<rsa::sha2::Sha512>(&private, &d512, 64);
        assert_eq!(key.verify_pss::<sha2::Sha512>(&d512, &sig), Ok(()));
    }

    #[test]
    fn pss_signature_of_a_4096_bit_key_verifies() {
        let private = rsa::RsaPrivateKey::from_pkcs8_pem(KEY_4096).unwrap();
        let digest = hash::<sha2::Sha256>(MESSAGE);
        let sig = sign_pss::<rsa::sha2::Sha256>(&private, &digest, 32);
        assert_eq!(sig.len(), 512);
        assert_eq!(
            public(&private).verify_pss::<sha2::Sha256>(&digest, &sig),
            Ok(())
        );
    }

    #[test]
    fn pss_encoding_one_byte_shorter_than_the_modulus_verifies() {
        // modBits ≡ 1 (mod 8): EM has one byte less than the modulus.
        let private = key_1025();
        assert_eq!(private.n().bits(), 1025);
        let digest = hash::<sha2::Sha256>(MESSAGE);
        let sig = sign_pss::<rsa::sha2::Sha256>(&private, &digest, 32);
        assert_eq!(
            public(&private).verify_pss::<sha2::Sha256>(&digest, &sig),
            Ok(())
        );
    }

    #[test]
    fn pss_signature_over_another_message_is_refused() {
        let private = key_2048();
        let digest = hash::<sha2::Sha256>(MESSAGE);
        let sig = sign_pss::<rsa::sha2::Sha256>(&private, &digest, 32);
        let other = hash::<sha2::Sha256>(b"TLS 1.3, server CertificateVerifz");
        assert_eq!(
            public(&private).verify_pss::<sha2::Sha256>(&other, &sig),
            Err(RsaError::InvalidSignature)
        );
    }

    #[test]
    fn pss_signature_by_another_key_is_refused() {
        let signer = rsa::RsaPrivateKey::from_pkcs8_pem(KEY_4096).unwrap();
        let digest = hash::<sha2::Sha256>(MESSAGE);
        let sig = sign_pss::<rsa::sha2::Sha256>(&signer, &digest, 32);
        let key = public(&key_2048());
        // Both the full signature (wrong length) and one cut to length.
        for sig in [&sig[..], &sig[..256]] {
            assert_eq!(
                key.verify_pss::<sha2::Sha256>(&digest, sig),
                Err(RsaError::InvalidSignature)
            );
        }
    }

    #[test]
    fn pss_with_a_salt_shorter_than_the_hash_is_refused() {
        let private = key_2048();
        let digest = hash::<sha2::Sha256>(MESSAGE);
        let sig = sign_pss::<rsa::sha2::Sha256>(&private, &digest, 20);
        assert_eq!(
            public(&private).verify_pss::<sha2::Sha256>(&digest, &sig),
            Err(RsaError::InvalidSignature)
        );
    }

    #[test]
    fn pss_with_another_hash_is_refused() {
        let private = key_2048();
        let digest = hash::<sha2::Sha384>(MESSAGE);
        let sig = sign_pss::<rsa::sha2::Sha384>(&private, &digest, 48);
        assert_eq!(
            public(&private).verify_pss::<sha2::Sha512>(&hash::<sha2::Sha512>(MESSAGE), &sig),
            Err(RsaError::InvalidSignature)
        );
    }

    #[test]
    fn signature_not_below_the_modulus_is_refused() {
        // s + n has the same residue as s, so only the range check refuses
        // it. With a 1025-bit key s + n still fits the modulus' 129 bytes.
        let private = key_1025();
        let key = public(&private);
        let digest = hash::<sha2::Sha256>(MESSAGE);
        let sig = sign_pss::<rsa::sha2::Sha256>(&private, &digest, 32);
        assert_eq!(key.verify_pss::<sha2::Sha256>(&digest, &sig), Ok(()));
        let lifted = (rsa::BigUint::from_bytes_be(&sig) + private.n()).to_bytes_be();
        assert_eq!(lifted.len(), sig.len());
        assert_eq!(
            key.verify_pss::<sha2::Sha256>(&digest, &lifted),
            Err(RsaError::InvalidSignature)
        );
        assert_eq!(
            key.verify_pss::<sha2::Sha256>(&digest, &private.n().to_bytes_be()),
            Err(RsaError::InvalidSignature)
        );
    }

    #[test]
    fn every_flipped_signature_bit_in_the_first_bytes_is_refused() {
        let private = key_2048();
        let key = public(&private);
        let digest = hash::<sha2::Sha256>(MESSAGE);
        let sig = sign_pss::<rsa::sha2::Sha256>(&private, &digest, 32);
        for i in [0, 1, 100, 254, 255] {
            let mut bad = sig.clone();
            bad[i] ^= 0x01;
            assert_eq!(
                key.verify_pss::<sha2::Sha256>(&digest, &bad),
                Err(RsaError::InvalidSignature),
                "byte {i}"
            );
        }
    }

    #[test]
    fn zero_padding_bytes_are_redrawn() {
        let mut feed = [0u8, 5, 0, 0, 9].into_iter();
        let mut rng = crate::random::from_fn(|buf: &mut [u8]| {
            for b in buf {
                *b = feed.next().unwrap_or(1);
            }
        });
        let mut ps = [0u8; 3];
        fill_nonzero(&mut ps, &mut rng);
        // The first draw gives 0,5,0; the zeros are replaced by later draws.
        assert_eq!(ps, [9, 5, 1]);
    }

    #[test]
    fn zero_or_empty_modulus_is_refused_without_panicking() {
        for n in [&[][..], &[0u8; 4][..]] {
            assert_eq!(
                RsaPublicKey::from_components(n, &[1, 0, 1]),
                Err(RsaError::UnsupportedModulus { bits: 0 })
            );
        }
    }

    #[test]
    fn small_and_even_moduli_are_refused() {
        let small = [0xffu8; 64];
        assert_eq!(
            RsaPublicKey::from_components(&small, &[1, 0, 1]),
            Err(RsaError::UnsupportedModulus { bits: 512 })
        );
        let mut even = [0xffu8; 256];
        even[255] = 0xfe;
        assert_eq!(
            RsaPublicKey::from_components(&even, &[1, 0, 1]),
            Err(RsaError::UnsupportedModulus { bits: 2048 })
        );
        let odd = [0xffu8; 256];
        assert_eq!(
            RsaPublicKey::from_components(&odd, &[2]),
            Err(RsaError::UnsupportedExponent)
        );
    }
}
