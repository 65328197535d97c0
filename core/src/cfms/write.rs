//! Writing JSON requests into a caller buffer.
//!
//! The writer never truncates: when the buffer is too short it keeps
//! counting, and [`Writer::finish`] reports the size that would have fit
//! (rustls' `InsufficientSize { required }` idea).
#![deny(clippy::indexing_slicing)]

use super::json::InsufficientSize;
use crate::decimal::decimal;

/// Serialises JSON into a fixed buffer, object members comma-separated
/// automatically.
pub(crate) struct Writer<'b> {
    buf: &'b mut [u8],
    required: usize,
    /// Whether the innermost open object already has a member.
    need_comma: bool,
}

impl<'b> Writer<'b> {
    pub(crate) fn new(buf: &'b mut [u8]) -> Self {
        Writer {
            buf,
            required: 0,
            need_comma: false,
        }
    }

    pub(crate) fn raw(&mut self, bytes: &[u8]) {
        let end = self.required + bytes.len();
        if let Some(dst) = self.buf.get_mut(self.required..end) {
            dst.copy_from_slice(bytes);
        }
        self.required = end;
    }

    /// A JSON string literal with the escapes the grammar requires.
    pub(crate) fn string(&mut self, s: &str) {
        self.raw(b"\"");
        let bytes = s.as_bytes();
        let mut start = 0;
        for (i, &b) in bytes.iter().enumerate() {
            let esc: &[u8] = match b {
                b'"' => b"\\\"",
                b'\\' => b"\\\\",
                b'\n' => b"\\n",
                b'\r' => b"\\r",
                b'\t' => b"\\t",
                0x00..=0x1F => b"",
                _ => continue,
            };
            self.raw(bytes.get(start..i).unwrap_or_default());
            if esc.is_empty() {
                self.raw(&[b'\\', b'u', b'0', b'0', hex_digit(b >> 4), hex_digit(b)]);
            } else {
                self.raw(esc);
            }
            start = i + 1;
        }
        self.raw(bytes.get(start..).unwrap_or_default());
        self.raw(b"\"");
    }

    pub(crate) fn begin_object(&mut self) {
        self.raw(b"{");
        self.need_comma = false;
    }

    pub(crate) fn end_object(&mut self) {
        self.raw(b"}");
        self.need_comma = true;
    }

    /// Start member `key`; the caller then writes exactly one value.
    pub(crate) fn key(&mut self, key: &str) {
        if self.need_comma {
            self.raw(b",");
        }
        self.string(key);
        self.raw(b":");
        self.need_comma = true;
    }

    pub(crate) fn field_str(&mut self, key: &str, value: &str) {
        self.key(key);
        self.string(value);
    }

    /// `value` or `null` (the CFMS root folder is `null`).
    pub(crate) fn field_opt_str(&mut self, key: &str, value: Option<&str>) {
        self.key(key);
        match value {
            Some(v) => self.string(v),
            None => self.raw(b"null"),
        }
    }

    pub(crate) fn field_u64(&mut self, key: &str, value: u64) {
        self.key(key);
        let mut digits = [0u8; 20];
        self.raw(decimal(value, &mut digits));
    }

    pub(crate) fn field_bool(&mut self, key: &str, value: bool) {
        self.key(key);
        self.raw(if value { b"true" } else { b"false" });
    }

    /// A member whose value is already-valid JSON.
    pub(crate) fn field_raw(&mut self, key: &str, json: &[u8]) {
        self.key(key);
        self.raw(json);
    }

    pub(crate) fn finish(self) -> Result<usize, InsufficientSize> {
        if self.required <= self.buf.len() {
            Ok(self.required)
        } else {
            Err(InsufficientSize {
                required: self.required,
            })
        }
    }
}

/// Lower-case hex of a SHA-256 digest, as CFMS writes hashes.
pub(crate) fn hex32(bytes: &[u8; 32]) -> [u8; 64] {
    let mut out = [0u8; 64];
    for (pair, &b) in out.as_chunks_mut::<2>().0.iter_mut().zip(bytes) {
        *pair = [hex_digit(b >> 4), hex_digit(b)];
    }
    out
}

/// The lower-case hex digit of `v`'s low four bits.
pub(crate) fn hex_digit(v: u8) -> u8 {
    match v & 15 {
        n @ 0..=9 => b'0' + n,
        n => b'a' + n - 10,
    }
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
// Tests index fixtures they built themselves.
#[allow(clippy::indexing_slicing)]
mod tests {
    use super::*;

    #[test]
    fn strings_are_escaped_and_short_buffers_report_required_size() {
        let mut buf = [0u8; 64];
        let mut w = Writer::new(&mut buf);
        w.begin_object();
        w.field_str("p", "a\"b\\c\n\u{1}é");
        w.field_u64("n", 10800);
        w.end_object();
        let n = w.finish().unwrap();
        assert_eq!(
            &buf[..n],
            r#"{"p":"a\"b\\c\n\u0001é","n":10800}"#.as_bytes()
        );
        let mut small = [0u8; 4];
        let mut w = Writer::new(&mut small);
        w.string("hello");
        assert_eq!(w.finish(), Err(InsufficientSize { required: 7 }));
    }

    #[test]
    fn hex_round_trips() {
        let d = [0xabu8; 32];
        assert_eq!(unhex32(&hex32(&d)), Some(d));
        assert_eq!(unhex32(b"zz"), None);
    }
}
