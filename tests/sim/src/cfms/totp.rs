//! RFC 6238 TOTP (HMAC-SHA-1, 30 s steps, 6 digits) with base32 secrets, as
//! `setup_2fa` hands them out.

use hmac::{Hmac, Mac};
use rand::Rng;
use sha1::Sha1;

/// Seconds per TOTP step.
const STEP: f64 = 30.0;
/// RFC 4648 base32 alphabet.
const ALPHABET: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

/// The 6-digit TOTP code of base32 `secret` at epoch second `now`, or `None`
/// when the secret is not base32.
pub fn totp_code(secret: &str, now: f64) -> Option<String> {
    let key = base32_decode(secret)?;
    Some(code_at_step(&key, (now / STEP).floor() as u64))
}

/// Does `code` match `secret` at `now`, one step either way?
pub(crate) fn accepts(secret: &str, code: &str, now: f64) -> bool {
    let Some(key) = base32_decode(secret) else {
        return false;
    };
    let step = (now / STEP).floor() as u64;
    [step.saturating_sub(1), step, step + 1]
        .iter()
        .any(|&s| code_at_step(&key, s) == code)
}

/// A fresh 32-character base32 secret (160 bits).
pub(crate) fn random_secret() -> String {
    let mut rng = rand::thread_rng();
    (0..32)
        .map(|_| ALPHABET[rng.gen_range(0..32)] as char)
        .collect()
}

fn code_at_step(key: &[u8], step: u64) -> String {
    // HMAC takes keys of any length, so this cannot fail.
    let mut mac = Hmac::<Sha1>::new_from_slice(key).unwrap_or_else(|_| unreachable!());
    mac.update(&step.to_be_bytes());
    let digest = mac.finalize().into_bytes();
    let offset = usize::from(digest[19] & 0x0f);
    let word = u32::from_be_bytes([
        digest[offset],
        digest[offset + 1],
        digest[offset + 2],
        digest[offset + 3],
    ]) & 0x7fff_ffff;
    format!("{:06}", word % 1_000_000)
}

fn base32_decode(text: &str) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    let (mut acc, mut bits) = (0u32, 0u32);
    for c in text.bytes().filter(|&c| c != b'=') {
        let value = ALPHABET.iter().position(|&a| a == c.to_ascii_uppercase())?;
        acc = (acc << 5) | value as u32;
        bits += 5;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn totp_matches_the_recorded_codes() {
        // cfms-p5-2fa.jsonl: validate_2fa at 1795304939.705 accepted 469447,
        // login at 1795304942.85 accepted 739088 (the next step).
        let secret = "EO6YD4XZGUHH6DVV2T4ATUXWYVFGJYY6";
        assert_eq!(totp_code(secret, 1795304939.705).as_deref(), Some("469447"));
        assert_eq!(totp_code(secret, 1795304942.85).as_deref(), Some("739088"));
        assert!(accepts(secret, "739088", 1795304939.705));
        assert!(!accepts(secret, "000000", 1795304939.705));
    }

    #[test]
    fn totp_matches_rfc6238_sha1_vector() {
        // RFC 6238 appendix B, T = 59, secret "12345678901234567890" (8 digits 94287082).
        let secret = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ";
        assert_eq!(totp_code(secret, 59.0).as_deref(), Some("287082"));
    }
}
