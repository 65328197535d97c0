//! Request signatures: `base64(HMAC-SHA256(S, exact bytes)) + json`.
//!
//! The key S is the login secret (see [`Secret`]). The HMAC is keyed once per
//! secret and the keyed state cloned for every message, so signing costs two
//! SHA-256 compressions plus the message, not four.
#![deny(clippy::indexing_slicing)]

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use zeroize::{Zeroize, ZeroizeOnDrop};

/// Length of the base64 signature prefix (32-byte MAC, padded base64).
pub const SIGNATURE_LEN: usize = 44;

/// Most bytes a [`Secret`] may hold. Real servers send 16; the protocol
/// notes ask to accept other lengths, and 64 bytes is one HMAC block, beyond
/// which HMAC would hash the key anyway.
pub const SECRET_CAPACITY: usize = 64;

/// The login secret S: the HMAC key for request signatures. It belongs to the
/// login, not the connection, and is wiped from memory on drop.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret {
    bytes: [u8; SECRET_CAPACITY],
    len: u8,
}

impl Drop for Secret {
    fn drop(&mut self) {
        self.bytes.zeroize();
        self.len = 0;
    }
}

impl ZeroizeOnDrop for Secret {}

impl core::fmt::Debug for Secret {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "Secret({} bytes)", self.len)
    }
}

impl Secret {
    /// A secret from its raw bytes; `None` if empty or longer than
    /// [`SECRET_CAPACITY`].
    pub fn new(raw: &[u8]) -> Option<Self> {
        if raw.is_empty() || raw.len() > SECRET_CAPACITY {
            return None;
        }
        let mut bytes = [0u8; SECRET_CAPACITY];
        bytes.get_mut(..raw.len())?.copy_from_slice(raw);
        Some(Secret {
            bytes,
            len: raw.len() as u8,
        })
    }

    /// The raw key bytes.
    pub fn as_bytes(&self) -> &[u8] {
        self.bytes.get(..usize::from(self.len)).unwrap_or_default()
    }
}

// The keyed state is as good as the key for forging signatures. It is two
// SHA-256 cores (inner and outer pad); sha2's `zeroize` feature makes those
// wipe themselves on drop, and this fails to compile if it is turned off.
const _: fn() = || {
    fn wiped_on_drop<T: ZeroizeOnDrop>() {}
    wiped_on_drop::<<Sha256 as hmac::EagerHash>::Core>();
};

/// An HMAC-SHA256 state keyed with a [`Secret`], ready to sign messages
/// (wiped from memory on drop).
#[derive(Clone)]
pub struct Signer {
    keyed: Hmac<Sha256>,
}

impl core::fmt::Debug for Signer {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("Signer")
    }
}

impl Signer {
    /// Key the HMAC once with `secret`.
    pub fn new(secret: &Secret) -> Self {
        // HMAC accepts keys of any length, so this never fails; the fallback
        // keeps the constructor total without a panic path.
        let keyed = <Hmac<Sha256> as KeyInit>::new_from_slice(secret.as_bytes())
            .unwrap_or_else(|_| <Hmac<Sha256> as KeyInit>::new(&Default::default()));
        Signer { keyed }
    }

    /// The base64 signature of `message`.
    pub fn signature(&self, message: &[u8]) -> [u8; SIGNATURE_LEN] {
        let mut mac = self.keyed.clone();
        mac.update(message);
        let tag = mac.finalize().into_bytes();
        let mut out = [0u8; SIGNATURE_LEN];
        // 32 bytes always encode to exactly 44 characters.
        let _ = STANDARD.encode_slice(tag.as_slice(), &mut out);
        out
    }

    /// Sign a message already written at `buf[SIGNATURE_LEN..end]` by filling
    /// the prefix; returns the wire length `end`.
    pub fn sign_in_place(&self, buf: &mut [u8], end: usize) -> usize {
        let Some(message) = buf.get(SIGNATURE_LEN..end) else {
            return end;
        };
        let sig = self.signature(message);
        if let Some(prefix) = buf.get_mut(..SIGNATURE_LEN) {
            prefix.copy_from_slice(&sig);
        }
        end
    }
}

/// Commands that are never signed, even after login.
pub const NEVER_SIGNED: [&str; 4] = ["util.crypto.getRSAPub", "util.getSI", "encrypted", "ping"];

/// `true` if `command` is sent without a signature even once S is known.
pub fn is_never_signed(command: &str) -> bool {
    NEVER_SIGNED.contains(&command)
}

#[cfg(test)]
// Tests index fixtures they built themselves.
#[allow(clippy::indexing_slicing)]
mod tests {
    use super::*;

    #[test]
    fn secrets_longer_than_one_hmac_block_are_refused() {
        assert!(Secret::new(&[1; SECRET_CAPACITY + 1]).is_none());
        assert!(Secret::new(&[]).is_none());
        assert_eq!(Secret::new(&[7; 16]).unwrap().as_bytes(), &[7; 16]);
    }

    #[test]
    fn key_exchange_and_heartbeat_commands_are_never_signed() {
        for c in ["util.crypto.getRSAPub", "util.getSI", "encrypted", "ping"] {
            assert!(is_never_signed(c));
        }
        assert!(!is_never_signed("file.ls"));
    }
}
