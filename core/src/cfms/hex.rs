//! Hex digests as CFMS writes and reads them.
#![deny(clippy::indexing_slicing)]

use crate::json::write::hex_digit;

/// Lower-case hex of a SHA-256 digest, as CFMS writes hashes.
pub(crate) fn hex32(bytes: &[u8; 32]) -> [u8; 64] {
    let mut out = [0u8; 64];
    for (pair, &b) in out.as_chunks_mut::<2>().0.iter_mut().zip(bytes) {
        *pair = [hex_digit(b >> 4), hex_digit(b)];
    }
    out
}

/// Parse 64 hex digits (either case) into a digest.
pub(crate) fn unhex32(text: &[u8]) -> Option<[u8; 32]> {
    if text.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (o, &[hi, lo]) in out.iter_mut().zip(text.as_chunks::<2>().0) {
        let hi = (hi as char).to_digit(16)?;
        let lo = (lo as char).to_digit(16)?;
        *o = (hi * 16 + lo) as u8;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trips() {
        let d = [0xabu8; 32];
        assert_eq!(unhex32(&hex32(&d)), Some(d));
        assert_eq!(unhex32(b"zz"), None);
    }
}
