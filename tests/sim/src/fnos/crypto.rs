//! The server's half of the fnOS key exchange: the RSA key pair, opening the
//! `encrypted` login envelope, sealing the login secret, and checking request
//! signatures.

use aes::Aes256;
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use cbc::cipher::{BlockDecryptMut, BlockEncryptMut, KeyIvInit, block_padding::Pkcs7};
use hmac::{Hmac, Mac};
use rand::RngCore;
use rsa::pkcs8::{DecodePrivateKey, EncodePublicKey, LineEnding};
use rsa::{Pkcs1v15Encrypt, RsaPrivateKey};
use sha2::Sha256;

/// Length of the base64 signature that prefixes every signed frame
/// (`base64(HMAC-SHA256)` with padding is always 44 characters).
pub const SIGNATURE_LEN: usize = 44;

/// A 2048-bit throwaway RSA key committed for tests: generating one in a
/// debug build takes long enough to slow every test that starts a server.
pub const FIXTURE_KEY_PEM: &str = include_str!("../../fixtures/fnos-test-key.pem");

/// Where the server's RSA key pair comes from.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum KeySource {
    /// Generate a fresh 2048-bit key at start-up, like a real NAS.
    #[default]
    Generate,
    /// Use the committed test key (`tests/sim/fixtures/fnos-test-key.pem`).
    Fixture,
    /// Use this PKCS#8 PEM private key.
    Pem(String),
}

/// The RSA key pair the server hands out in `util.crypto.getRSAPub`.
pub struct ServerKey {
    private: RsaPrivateKey,
    public_pem: String,
}

impl std::fmt::Debug for ServerKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerKey").finish_non_exhaustive()
    }
}

impl ServerKey {
    /// Load or generate the key pair described by `source`.
    pub fn load(source: &KeySource) -> anyhow::Result<Self> {
        let private = match source {
            KeySource::Generate => RsaPrivateKey::new(&mut rand::rngs::OsRng, 2048)?,
            KeySource::Fixture => RsaPrivateKey::from_pkcs8_pem(FIXTURE_KEY_PEM)?,
            KeySource::Pem(pem) => RsaPrivateKey::from_pkcs8_pem(pem)?,
        };
        let public_pem = private.to_public_key().to_public_key_pem(LineEnding::LF)?;
        Ok(Self {
            private,
            public_pem,
        })
    }

    /// The SPKI PEM of the public key, as sent in the `pub` field.
    pub fn public_pem(&self) -> &str {
        &self.public_pem
    }
}

/// Why an `encrypted` envelope could not be opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EnvelopeError {
    /// `iv`, `rsa` or `aes` is missing or not standard base64.
    Encoding(&'static str),
    /// The RSA block did not decrypt under PKCS#1 v1.5.
    Rsa,
    /// The AES key is not 32 bytes or the IV not 16.
    KeyLength,
    /// The AES ciphertext did not decrypt to PKCS#7-padded data.
    Aes,
    /// The plaintext is not a JSON object.
    Json,
}

impl std::fmt::Display for EnvelopeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Encoding(field) => write!(f, "field `{field}` missing or not base64"),
            Self::Rsa => f.write_str("RSA PKCS#1 v1.5 decryption failed"),
            Self::KeyLength => f.write_str("AES key must be 32 bytes and IV 16 bytes"),
            Self::Aes => f.write_str("AES-256-CBC decryption or PKCS#7 padding failed"),
            Self::Json => f.write_str("decrypted login is not a JSON object"),
        }
    }
}

/// The client's AES key and IV from an envelope; the login answer's
/// `secret` is sealed with exactly these.
#[derive(Clone)]
pub struct EnvelopeKey {
    key: [u8; 32],
    iv: [u8; 16],
}

/// An opened `encrypted` envelope: the inner request and the key to answer with.
pub struct Opened {
    /// The decrypted inner request (e.g. `user.login`).
    pub request: serde_json::Map<String, serde_json::Value>,
    /// The key and IV the client used.
    pub key: EnvelopeKey,
}

fn b64_field(
    envelope: &serde_json::Map<String, serde_json::Value>,
    name: &'static str,
) -> Result<Vec<u8>, EnvelopeError> {
    let text = envelope
        .get(name)
        .and_then(|v| v.as_str())
        .ok_or(EnvelopeError::Encoding(name))?;
    B64.decode(text).map_err(|_| EnvelopeError::Encoding(name))
}

impl ServerKey {
    /// Open `{"req":"encrypted","iv","rsa","aes"}`: RSA-decrypt the AES key,
    /// then AES-256-CBC-decrypt the inner JSON.
    pub fn open(
        &self,
        envelope: &serde_json::Map<String, serde_json::Value>,
    ) -> Result<Opened, EnvelopeError> {
        let iv = b64_field(envelope, "iv")?;
        let wrapped = b64_field(envelope, "rsa")?;
        let ciphertext = b64_field(envelope, "aes")?;
        let key = self
            .private
            .decrypt(Pkcs1v15Encrypt, &wrapped)
            .map_err(|_| EnvelopeError::Rsa)?;
        let key: [u8; 32] = key.try_into().map_err(|_| EnvelopeError::KeyLength)?;
        let iv: [u8; 16] = iv.try_into().map_err(|_| EnvelopeError::KeyLength)?;
        let plain = cbc::Decryptor::<Aes256>::new(&key.into(), &iv.into())
            .decrypt_padded_vec_mut::<Pkcs7>(&ciphertext)
            .map_err(|_| EnvelopeError::Aes)?;
        let request = match serde_json::from_slice(&plain) {
            Ok(serde_json::Value::Object(map)) => map,
            _ => return Err(EnvelopeError::Json),
        };
        Ok(Opened {
            request,
            key: EnvelopeKey { key, iv },
        })
    }
}

impl EnvelopeKey {
    /// `base64(AES-256-CBC(key, iv, PKCS#7(secret)))`, the login's `secret` field.
    pub fn seal(&self, secret: &[u8]) -> String {
        let sealed = cbc::Encryptor::<Aes256>::new(&self.key.into(), &self.iv.into())
            .encrypt_padded_vec_mut::<Pkcs7>(secret);
        B64.encode(sealed)
    }
}

/// Split a text frame into its signature and JSON parts, if it is signed
/// (44 characters of base64 followed by `{`).
pub fn split_signed(frame: &str) -> Option<(&str, &str)> {
    let json = frame.get(SIGNATURE_LEN..)?;
    json.starts_with('{')
        .then(|| (&frame[..SIGNATURE_LEN], json))
}

/// Check `signature == base64(HMAC-SHA256(secret, text bytes as received))`
/// in constant time (`text` is a frame's JSON, or an upload's `Trim-Path`).
pub fn signature_matches(secret: &[u8], signature: &str, text: &str) -> bool {
    let Ok(tag) = B64.decode(signature) else {
        return false;
    };
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret) else {
        return false;
    };
    mac.update(text.as_bytes());
    mac.verify_slice(&tag).is_ok()
}

/// `n` random bytes, base64-encoded: the shape of fnOS tokens.
pub fn random_token(n: usize) -> String {
    let mut bytes = vec![0u8; n];
    rand::thread_rng().fill_bytes(&mut bytes);
    B64.encode(bytes)
}

/// `n` random bytes in URL-safe base64 without padding: a download token
/// that goes into a query string as it is.
pub fn random_url_token(n: usize) -> String {
    let mut bytes = vec![0u8; n];
    rand::thread_rng().fill_bytes(&mut bytes);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// A fresh login secret S (16 bytes, as on real servers).
pub fn random_secret() -> [u8; 16] {
    let mut secret = [0u8; 16];
    rand::thread_rng().fill_bytes(&mut secret);
    secret
}
