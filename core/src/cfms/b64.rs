//! Streaming base64 decoding across arbitrary piece boundaries.
//!
//! Holds at most three characters of an unfinished quantum between calls;
//! whole quanta are decoded in blocks straight to the sink.

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
        sink(&out[..n]);
        Ok(())
    }

    pub(crate) fn feed(
        &mut self,
        mut text: &[u8],
        sink: &mut impl FnMut(&[u8]),
    ) -> Result<(), Base64Error> {
        if self.carry_len > 0 {
            let take = (4 - self.carry_len).min(text.len());
            self.carry[self.carry_len..self.carry_len + take].copy_from_slice(&text[..take]);
            self.carry_len += take;
            text = &text[take..];
            if self.carry_len < 4 {
                return Ok(());
            }
            let q = self.carry;
            self.carry_len = 0;
            self.quanta(&q, sink)?;
        }
        let whole = text.len() / 4 * 4;
        for block in text[..whole].chunks(BLOCK) {
            self.quanta(block, sink)?;
        }
        let rest = &text[whole..];
        self.carry[..rest.len()].copy_from_slice(rest);
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
    let mut r = [0u8; N];
    r.copy_from_slice(&out[..N]);
    Some(r)
}

#[cfg(test)]
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
}
