//! Incremental UTF-8 validation for text messages that arrive in pieces.
//!
//! RFC 6455 §8.1 lets an endpoint fail a connection as soon as the bytes
//! seen so far cannot begin valid UTF-8 (Autobahn 6.4.x requires it), so
//! every piece of a text payload is checked the moment it arrives, and a
//! character split across pieces is carried over in a few bits of state.
#![deny(clippy::indexing_slicing)]

/// Validator state between pieces: how many continuation bytes the current
/// character still needs and which range the next one must fall in (the
/// ranges exclude overlong forms, surrogates and code points past U+10FFFF).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Utf8Validator {
    need: u8,
    seen: u8,
    lo: u8,
    hi: u8,
}

/// The bytes fed so far cannot be UTF-8, whatever follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct InvalidUtf8;

impl Utf8Validator {
    pub(crate) const fn new() -> Self {
        Utf8Validator {
            need: 0,
            seen: 0,
            lo: 0x80,
            hi: 0xBF,
        }
    }

    /// Whether everything fed so far ends on a character boundary.
    pub(crate) fn is_boundary(&self) -> bool {
        self.need == 0
    }

    /// Bytes of an unfinished character at the end of what was fed.
    pub(crate) fn pending_len(&self) -> usize {
        self.seen as usize
    }

    /// Check the next piece of the text.
    pub(crate) fn feed(&mut self, bytes: &[u8]) -> Result<(), InvalidUtf8> {
        let mut rest = bytes;
        while self.need > 0 {
            let Some((&b, tail)) = rest.split_first() else {
                return Ok(());
            };
            self.step(b)?;
            rest = tail;
        }
        // The standard library's validator is fast on long runs, and it
        // reports `error_len() == None` only for a valid but unfinished
        // prefix, which the byte-wise state machine then takes over.
        match core::str::from_utf8(rest) {
            Ok(_) => Ok(()),
            Err(e) if e.error_len().is_some() => Err(InvalidUtf8),
            Err(e) => rest
                .get(e.valid_up_to()..)
                .unwrap_or_default()
                .iter()
                .try_for_each(|&b| self.step(b)),
        }
    }

    fn step(&mut self, b: u8) -> Result<(), InvalidUtf8> {
        if self.need > 0 {
            if b < self.lo || b > self.hi {
                return Err(InvalidUtf8);
            }
            self.need -= 1;
            self.seen = if self.need == 0 { 0 } else { self.seen + 1 };
            self.lo = 0x80;
            self.hi = 0xBF;
            return Ok(());
        }
        let (need, lo, hi) = match b {
            0x00..=0x7F => return Ok(()),
            0xC2..=0xDF => (1, 0x80, 0xBF),
            0xE0 => (2, 0xA0, 0xBF),
            0xED => (2, 0x80, 0x9F),
            0xE1..=0xEF => (2, 0x80, 0xBF),
            0xF0 => (3, 0x90, 0xBF),
            0xF1..=0xF3 => (3, 0x80, 0xBF),
            0xF4 => (3, 0x80, 0x8F),
            _ => return Err(InvalidUtf8),
        };
        self.need = need;
        self.seen = 1;
        self.lo = lo;
        self.hi = hi;
        Ok(())
    }
}

#[cfg(test)]
// Tests index fixtures they built themselves.
#[allow(clippy::indexing_slicing)]
mod tests {
    use super::*;

    fn valid_in_pieces(bytes: &[u8]) -> bool {
        // Every split into two pieces must agree with the whole.
        let whole = core::str::from_utf8(bytes).is_ok();
        for cut in 0..=bytes.len() {
            let mut v = Utf8Validator::new();
            let ok =
                v.feed(&bytes[..cut]).is_ok() && v.feed(&bytes[cut..]).is_ok() && v.is_boundary();
            assert_eq!(ok, whole, "{bytes:x?} cut at {cut}");
        }
        whole
    }

    #[test]
    fn split_characters_validate_like_whole_ones() {
        assert!(valid_in_pieces("κόσμε €𝄞 ascii".as_bytes()));
        assert!(!valid_in_pieces(
            b"\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xed\xa0\x80edited"
        ));
        assert!(!valid_in_pieces(b"\xc0\xaf"));
        assert!(!valid_in_pieces(b"\xf4\x90\x80\x80"));
        assert!(!valid_in_pieces(b"\xe0\x80\xaf"));
    }

    #[test]
    fn invalid_prefix_fails_before_the_character_ends() {
        let mut v = Utf8Validator::new();
        assert_eq!(v.feed(b"ok\xf4"), Ok(()));
        assert_eq!(v.pending_len(), 1);
        assert_eq!(v.feed(b"\x90"), Err(InvalidUtf8));
    }

    #[test]
    fn pending_len_counts_the_unfinished_character() {
        let mut v = Utf8Validator::new();
        v.feed(b"a\xf0\x9d").unwrap();
        assert_eq!(v.pending_len(), 2);
        v.feed(b"\x84").unwrap();
        assert_eq!(v.pending_len(), 3);
        v.feed(b"\x9e").unwrap();
        assert!(v.is_boundary());
        assert_eq!(v.pending_len(), 0);
    }
}
