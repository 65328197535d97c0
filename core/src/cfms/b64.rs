//! Streaming base64 decoding across arbitrary piece boundaries.
//!
//! Holds at most three characters of an unfinished quantum between calls;
//! whole quanta are decoded in blocks straight to the sink.
#![deny(clippy::indexing_slicing)]

use base64::Engine;
use base64::engine::general_purpose::STANDARD;

/// Characters decoded per block (a multiple of 4); the output block lives
/// on the stack.
const BLOCK: usize = 1024;

/// Base64 input that is not canonical standard base64.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Base64Error;

#[derive(Debug, Clone, Default)]
pub(crate) struct Base64Stream {
    carry: [u8; 4],
    carry_len: usize,
    padded: bool,
    decoded: u64,
}

impl Base64Stream {
    pub(crate) fn new() -> Self {
        Self::default()
    }

    /// Bytes decoded so far.
    pub(crate) fn decoded(&self) -> u64 {
        self.decoded
    }

    fn quanta(&mut self, text: &[u8], sink: &mut impl FnMut(&[u8])) -> Result<(), Base64Error> {
        if text.is_empty() {
            return Ok(());
        }
        if self.padded {
            return Err(Base64Error);
        }
        let mut out = [0u8; BLOCK / 4 * 3];
        let n = STANDARD
            .decode_slice(text, &mut out)
            .map_err(|_| Base64Error)?;
        self.padded = text.last() == Some(&b'=');
        self.decoded += n as u64;
        sink(out.get(..n).ok_or(Base64Error)?);
        Ok(())
    }

    pub(crate) fn feed(
        &mut self,
        mut text: &[u8],
        sink: &mut impl FnMut(&[u8]),
    ) -> Result<(), Base64Error> {
        if self.carry_len > 0 {
            // Complete the held quantum first (`carry_len` is 1 to 3).
            let free = self.carry.get_mut(self.carry_len..).unwrap_or_default();
            let take = free.len().min(text.len());
            let (head, rest) = text.split_at_checked(take).unwrap_or((text, &[]));
            for (c, &b) in free.iter_mut().zip(head) {
                *c = b;
            }
            self.carry_len += take;
            text = rest;
            if self.carry_len < 4 {
                return Ok(());
            }
            let q = self.carry;
            self.carry_len = 0;
            self.quanta(&q, sink)?;
        }
        let (quanta, rest) = text.as_chunks::<4>();
        for block in quanta.chunks(BLOCK / 4) {
            self.quanta(block.as_flattened(), sink)?;
        }
        // `rest` has at most 3 bytes: `carry` holds 4.
        let held = self.carry.get_mut(..rest.len()).ok_or(Base64Error)?;
        held.copy_from_slice(rest);
        self.carry_len = rest.len();
        Ok(())
    }

    pub(crate) fn finish(&mut self) -> Result<u64, Base64Error> {
        if self.carry_len != 0 {
            return Err(Base64Error);
        }
        Ok(self.decoded)
    }
}

/// Decode a short base64 value (IV, key) into exactly `N` bytes.
pub(crate) fn decode_exact<const N: usize>(text: &[u8]) -> Option<[u8; N]> {
    let mut out = [0u8; 48];
    let n = STANDARD.decode_slice(text, &mut out).ok()?;
    if n != N {
        return None;
    }
    out.first_chunk::<N>().copied()
}

#[cfg(test)]
// Tests index fixtures they built themselves.
#[allow(clippy::indexing_slicing)]
mod tests {
    use super::*;

    #[test]
    fn any_split_of_the_text_decodes_the_same() {
        let text = b"SGVsbG8sIENGTVMgd29ybGQhIQ==";
        for split in 0..=text.len() {
            let mut out = [0u8; 32];
            let mut n = 0;
            let mut s = Base64Stream::new();
            let mut sink = |b: &[u8]| {
                out[n..n + b.len()].copy_from_slice(b);
                n += b.len();
            };
            s.feed(&text[..split], &mut sink).unwrap();
            s.feed(&text[split..], &mut sink).unwrap();
            assert_eq!(s.finish(), Ok(19));
            assert_eq!(&out[..n], b"Hello, CFMS world!!");
        }
    }

    #[test]
    fn data_after_padding_and_truncation_are_errors() {
        let mut s = Base64Stream::new();
        assert_eq!(s.feed(b"QQ==QUJD", &mut |_| {}), Err(Base64Error));
        let mut s = Base64Stream::new();
        s.feed(b"QUJ", &mut |_| {}).unwrap();
        assert_eq!(s.finish(), Err(Base64Error));
    }

    extern crate std;
    use proptest::prelude::*;
    use std::vec::Vec;

    /// Feed `text` cut at `cuts`; the decoded bytes, or the error.
    fn streamed(text: &[u8], cuts: &[usize]) -> Result<Vec<u8>, Base64Error> {
        let mut bounds: Vec<usize> = cuts.iter().map(|c| c % (text.len() + 1)).collect();
        bounds.extend([0, text.len()]);
        bounds.sort_unstable();
        let mut out = Vec::new();
        let mut s = Base64Stream::new();
        for w in bounds.windows(2) {
            let before = s.decoded();
            s.feed(&text[w[0]..w[1]], &mut |b: &[u8]| out.extend_from_slice(b))?;
            // Progress: everything fed is decoded or held (at most 3 characters).
            assert!(s.decoded() >= before && s.carry_len < 4);
        }
        let n = s.finish()?;
        assert_eq!(n, out.len() as u64);
        Ok(out)
    }

    /// Mostly valid base64 (of random bytes, sometimes with one character
    /// replaced), or arbitrary text.
    fn base64ish() -> impl Strategy<Value = std::string::String> {
        let encoded = (
            prop::collection::vec(any::<u8>(), 0..1600),
            prop::option::of((any::<prop::sample::Index>(), "[ -~]")),
        )
            .prop_map(|(data, edit)| {
                let mut out = std::vec![0u8; data.len().div_ceil(3) * 4];
                let n = STANDARD.encode_slice(&data, &mut out).unwrap_or(0);
                out.truncate(n);
                if let (Some((at, ch)), false) = (edit, out.is_empty()) {
                    let i = at.index(out.len());
                    out[i] = ch.as_bytes()[0];
                }
                std::string::String::from_utf8(out).unwrap_or_default()
            });
        prop_oneof![3 => encoded, 1 => "[A-Za-z0-9+/=]{0,2100}|[ -~]{0,40}"]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        /// Streamed decoding agrees with one-shot decoding of the whole
        /// text, for valid and invalid text, however it is cut.
        #[test]
        fn any_cut_of_any_text_decodes_like_the_whole(
            text in base64ish(),
            cuts in prop::collection::vec(any::<usize>(), 0..8),
        ) {
            let mut whole = std::vec![0u8; text.len()];
            let expected = STANDARD
                .decode_slice(text.as_bytes(), &mut whole)
                .map(|n| whole[..n].to_vec())
                .map_err(|_| Base64Error);
            prop_assert_eq!(streamed(text.as_bytes(), &cuts), expected);
        }

        #[test]
        fn short_values_of_any_text_never_panic(text in prop::collection::vec(any::<u8>(), 0..100)) {
            let _ = decode_exact::<16>(&text);
            let _ = decode_exact::<32>(&text);
        }
    }
}
