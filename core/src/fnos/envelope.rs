//! The `encrypted` login envelope and the login secret.
//!
//! ```text
//! {"req":"encrypted","iv":b64(iv),"rsa":b64(RSA-PKCS1v15(pub, key)),"aes":b64(AES-256-CBC(key, iv, PKCS#7(json)))}
//! ```
//!
//! The same AES key and IV later decrypt the `secret` field of the login
//! answer, so a [`LoginKey`] lives from the envelope until that answer and is
//! wiped on drop.
#![deny(clippy::indexing_slicing)]

use aes::Aes256;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use cbc::cipher::{BlockModeDecrypt, BlockModeEncrypt, KeyIvInit};
use zeroize::{Zeroize, ZeroizeOnDrop};

#[cfg(not(naslink_token_only))]
use super::rsa::MAX_MODULUS_BYTES;
use super::rsa::{RsaError, RsaPublicKey};
use super::sign::{SECRET_CAPACITY, Secret};
#[cfg(not(naslink_token_only))]
use crate::json::write::JsonWriter;
use crate::random::Entropy;

const BLOCK: usize = 16;

/// What went wrong building an envelope or reading a secret.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EnvelopeError {
    /// RSA encryption of the AES key failed.
    Rsa(RsaError),
    /// A buffer was too small; `required` bytes are needed.
    BufferTooSmall {
        /// Bytes needed.
        required: usize,
    },
    /// The `secret` field is not valid base64 or not whole AES blocks.
    InvalidSecretEncoding,
    /// The decrypted secret has bad PKCS#7 padding (wrong key or IV).
    InvalidPadding,
    /// The decrypted secret is empty or longer than [`SECRET_CAPACITY`].
    SecretLength,
    /// This build leaves password login out (`--cfg naslink_token_only`,
    /// as a device-token firmware is built): only a device token logs in.
    PasswordLoginNotBuilt,
}

impl From<crate::InsufficientSize> for EnvelopeError {
    fn from(crate::InsufficientSize { required }: crate::InsufficientSize) -> Self {
        EnvelopeError::BufferTooSmall { required }
    }
}

impl From<RsaError> for EnvelopeError {
    fn from(e: RsaError) -> Self {
        EnvelopeError::Rsa(e)
    }
}

/// The AES-256 key and IV of one login exchange.
#[derive(Clone, PartialEq, Eq)]
pub struct LoginKey {
    key: [u8; 32],
    iv: [u8; 16],
}

impl core::fmt::Debug for LoginKey {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("LoginKey(..)")
    }
}

impl Drop for LoginKey {
    fn drop(&mut self) {
        self.key.zeroize();
        self.iv.zeroize();
    }
}

impl ZeroizeOnDrop for LoginKey {}

impl LoginKey {
    /// A key and IV given by the caller (tests, recorded exchanges).
    pub fn new(key: [u8; 32], iv: [u8; 16]) -> Self {
        LoginKey { key, iv }
    }

    /// Draw a key the way the web UI does (32 characters of `[0-9A-Za-z]`,
    /// used as their ASCII bytes) and a random 16-byte IV.
    pub fn generate(rng: &mut impl Entropy) -> Self {
        const ALPHABET: &[u8; 62] =
            b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
        let mut key = [0u8; 32];
        for slot in key.iter_mut() {
            // Rejection sampling: 248 = 4 * 62 keeps every character equally likely.
            let mut b = [255u8];
            while b[0] >= 248 {
                rng.fill_bytes(&mut b);
            }
            // `% 62` is below the alphabet's 62 entries.
            #[allow(clippy::indexing_slicing)]
            let ch = ALPHABET[usize::from(b[0] % 62)];
            *slot = ch;
        }
        let mut iv = [0u8; 16];
        rng.fill_bytes(&mut iv);
        LoginKey { key, iv }
    }

    /// The AES key bytes (what the RSA layer encrypts).
    pub fn key(&self) -> &[u8; 32] {
        &self.key
    }

    /// The IV.
    pub fn iv(&self) -> &[u8; 16] {
        &self.iv
    }

    /// PKCS#7-pad `buf[..len]` and AES-256-CBC-encrypt it in place; returns
    /// the ciphertext length (`len` rounded up to the next whole block).
    pub fn encrypt_in_place(&self, buf: &mut [u8], len: usize) -> Result<usize, EnvelopeError> {
        let padded = (len / BLOCK + 1) * BLOCK;
        let data = buf
            .get_mut(..padded)
            .ok_or(EnvelopeError::BufferTooSmall { required: padded })?;
        let pad = (padded - len) as u8;
        // `padded > len`, so the tail holds 1 to 16 bytes.
        if let Some(tail) = data.get_mut(len..) {
            tail.fill(pad);
        }
        let mut enc = cbc::Encryptor::<Aes256>::new(&self.key.into(), &self.iv.into());
        for chunk in data.chunks_exact_mut(BLOCK) {
            let block: &mut [u8; BLOCK] = chunk
                .try_into()
                .map_err(|_| EnvelopeError::InvalidPadding)?;
            enc.encrypt_block(block.into());
        }
        Ok(padded)
    }

    /// AES-256-CBC-decrypt `buf` in place and strip PKCS#7 padding; returns
    /// the plaintext length.
    pub fn decrypt_in_place(&self, buf: &mut [u8]) -> Result<usize, EnvelopeError> {
        if buf.is_empty() || !buf.len().is_multiple_of(BLOCK) {
            return Err(EnvelopeError::InvalidSecretEncoding);
        }
        let mut dec = cbc::Decryptor::<Aes256>::new(&self.key.into(), &self.iv.into());
        for chunk in buf.chunks_exact_mut(BLOCK) {
            let block: &mut [u8; BLOCK] = chunk
                .try_into()
                .map_err(|_| EnvelopeError::InvalidPadding)?;
            dec.decrypt_block(block.into());
        }
        let pad = buf.last().map_or(0, |&b| usize::from(b));
        let start = buf.len().checked_sub(pad);
        match start.and_then(|start| buf.get(start..)) {
            Some(tail)
                if (1..=BLOCK).contains(&pad) && tail.iter().all(|&b| usize::from(b) == pad) =>
            {
                Ok(buf.len() - pad)
            }
            _ => Err(EnvelopeError::InvalidPadding),
        }
    }

    /// Decrypt the login answer's `secret` field (base64, escapes already
    /// decoded) into the signing secret S.
    pub fn decrypt_secret(&self, secret_b64: &[u8]) -> Result<Secret, EnvelopeError> {
        let mut raw = [0u8; SECRET_CAPACITY + BLOCK];
        let len = STANDARD
            .decode_slice(secret_b64, &mut raw)
            .map_err(|_| EnvelopeError::InvalidSecretEncoding)?;
        let plain = match raw.get_mut(..len) {
            Some(cipher) => self.decrypt_in_place(cipher),
            None => Err(EnvelopeError::InvalidSecretEncoding),
        };
        let result = plain.and_then(|n| {
            raw.get(..n)
                .and_then(Secret::new)
                .ok_or(EnvelopeError::SecretLength)
        });
        raw.zeroize();
        result
    }
}

/// Upper bound of the envelope length for a plaintext of `plaintext_len`
/// bytes and an RSA key of `rsa_len` bytes.
pub const fn envelope_len(plaintext_len: usize, rsa_len: usize) -> usize {
    const FIXED: usize = r#"{"req":"encrypted","iv":"","rsa":"","aes":""}"#.len();
    let padded = (plaintext_len / BLOCK + 1) * BLOCK;
    FIXED + b64_len(BLOCK) + b64_len(rsa_len) + b64_len(padded)
}

fn wipe(buf: &mut [u8], len: usize) {
    let len = len.min(buf.len());
    if let Some(part) = buf.get_mut(..len) {
        part.zeroize();
    }
}

const fn b64_len(n: usize) -> usize {
    n.div_ceil(3) * 4
}

/// A build with `--cfg naslink_token_only` (a device-token firmware) has
/// no password login: the RSA and AES-CBC encryption it needs are left out
/// of the image. The password JSON is wiped and the login refused by name.
#[cfg(naslink_token_only)]
pub fn write_envelope(
    _key: &LoginKey,
    _rsa: &RsaPublicKey,
    plaintext: &mut [u8],
    plaintext_len: usize,
    _rng: &mut impl Entropy,
    _out: &mut [u8],
) -> Result<usize, EnvelopeError> {
    wipe(plaintext, plaintext_len);
    Err(EnvelopeError::PasswordLoginNotBuilt)
}

/// Write the `encrypted` envelope for the login JSON in
/// `plaintext[..plaintext_len]` into `out`.
///
/// `plaintext` needs room for the padding (up to 16 more bytes); it is
/// encrypted in place, so it no longer holds the password afterwards.
/// Returns the envelope length.
#[cfg(not(naslink_token_only))]
pub fn write_envelope(
    key: &LoginKey,
    rsa: &RsaPublicKey,
    plaintext: &mut [u8],
    plaintext_len: usize,
    rng: &mut impl Entropy,
    out: &mut [u8],
) -> Result<usize, EnvelopeError> {
    let required = envelope_len(plaintext_len, rsa.size());
    if out.len() < required {
        wipe(plaintext, plaintext_len);
        return Err(EnvelopeError::BufferTooSmall { required });
    }
    let mut rsa_ct = [0u8; MAX_MODULUS_BYTES];
    let rsa_len = rsa.encrypt_pkcs1v15(key.key(), rng, &mut rsa_ct);
    let aes_len = key.encrypt_in_place(plaintext, plaintext_len);
    let (rsa_len, aes_len) = match (rsa_len, aes_len) {
        (Ok(r), Ok(a)) => (r, a),
        (Err(e), _) => {
            wipe(plaintext, plaintext_len);
            return Err(e.into());
        }
        (_, Err(e)) => {
            wipe(plaintext, plaintext_len);
            return Err(e);
        }
    };

    // From here `plaintext` holds ciphertext: nothing left to wipe.
    let too_small = EnvelopeError::BufferTooSmall { required };
    let mut iv_b64 = [0u8; 24];
    let mut rsa_b64 = [0u8; MAX_MODULUS_BYTES.div_ceil(3) * 4];
    let iv_n = STANDARD.encode_slice(key.iv(), &mut iv_b64).unwrap_or(0);
    let rsa_ct = rsa_ct.get(..rsa_len).ok_or(too_small)?;
    let rsa_n = STANDARD.encode_slice(rsa_ct, &mut rsa_b64).unwrap_or(0);
    let iv_b64 = iv_b64.get(..iv_n).ok_or(too_small)?;
    let rsa_b64 = rsa_b64.get(..rsa_n).ok_or(too_small)?;

    let at = {
        let mut w = JsonWriter::new(out, 0);
        w.begin_object()
            .key("req")
            .string("encrypted")
            .key("iv")
            .escaped_string(iv_b64)
            .key("rsa")
            .escaped_string(rsa_b64)
            .key("aes")
            .raw(b"\"");
        w.len()
    };
    // The AES ciphertext is base64-encoded straight into the output, after
    // the opening quote.
    let w_end = at + b64_len(aes_len);
    let dest = out.get_mut(at..w_end).ok_or(too_small)?;
    let cipher = plaintext.get(..aes_len).ok_or(too_small)?;
    let n = STANDARD.encode_slice(cipher, dest).map_err(|_| too_small)?;
    let mut w = JsonWriter::new(out, at + n);
    w.raw(b"\"}");
    w.finish()
        .map_err(|_| EnvelopeError::BufferTooSmall { required })
}
