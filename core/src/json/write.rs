//! Compact JSON written straight into the transmit buffer.
//!
//! An fnOS signature covers the exact bytes sent, so requests are serialized
//! once, in place, and signed afterwards. Escaping follows the fnOS web UI
//! (CFMS accepts the same): only `"`, `\` and control characters are
//! escaped, `/` and non-ASCII text are written as they are.
//!
//! A writer that runs out of room keeps counting, so the caller learns the
//! size it would have needed ([`InsufficientSize`]) instead of a truncated
//! message.
#![deny(clippy::indexing_slicing)]

use crate::InsufficientSize;
use crate::decimal::decimal;

/// Writes one compact JSON object member by member.
#[derive(Debug)]
pub struct JsonWriter<'b> {
    buf: &'b mut [u8],
    len: usize,
    need_comma: bool,
}

impl<'b> JsonWriter<'b> {
    /// A writer appending to `buf` from offset `start`.
    pub fn new(buf: &'b mut [u8], start: usize) -> Self {
        JsonWriter {
            buf,
            len: start,
            need_comma: false,
        }
    }

    /// Append raw bytes (already valid JSON).
    pub fn raw(&mut self, bytes: &[u8]) -> &mut Self {
        let end = self.len + bytes.len();
        if let Some(dest) = self.buf.get_mut(self.len..end) {
            dest.copy_from_slice(bytes);
        }
        self.len = end;
        self
    }

    fn byte(&mut self, b: u8) -> &mut Self {
        self.raw(&[b])
    }

    /// Open an object (`{`), as a value or array element.
    pub fn begin_object(&mut self) -> &mut Self {
        self.separator();
        self.need_comma = false;
        self.byte(b'{')
    }

    /// Close an object (`}`).
    pub fn end_object(&mut self) -> &mut Self {
        self.need_comma = true;
        self.byte(b'}')
    }

    /// Open an array (`[`), as a value or array element.
    pub fn begin_array(&mut self) -> &mut Self {
        self.separator();
        self.need_comma = false;
        self.byte(b'[')
    }

    /// Close an array (`]`).
    pub fn end_array(&mut self) -> &mut Self {
        self.need_comma = true;
        self.byte(b']')
    }

    /// Write a member name and its colon, with a comma before it if needed.
    pub fn key(&mut self, name: &str) -> &mut Self {
        self.separator();
        self.string_body(name);
        self.need_comma = false;
        self.byte(b':')
    }

    fn separator(&mut self) {
        if self.need_comma {
            self.byte(b',');
        }
        self.need_comma = true;
    }

    /// Write a string value.
    pub fn string(&mut self, s: &str) -> &mut Self {
        self.separator();
        self.string_body(s);
        self
    }

    /// Write an already-escaped string's content inside quotes (for text
    /// copied from a received JSON string, escapes intact).
    pub fn escaped_string(&mut self, escaped: &[u8]) -> &mut Self {
        self.separator();
        self.byte(b'"').raw(escaped).byte(b'"')
    }

    /// Write a value given as JSON text.
    pub fn raw_value(&mut self, json: &[u8]) -> &mut Self {
        self.separator();
        self.raw(json)
    }

    /// Write `true` or `false`.
    pub fn bool(&mut self, v: bool) -> &mut Self {
        self.raw_value(if v { b"true" } else { b"false" })
    }

    /// Write `null`.
    pub fn null(&mut self) -> &mut Self {
        self.raw_value(b"null")
    }

    /// Write a non-negative integer.
    pub fn u64(&mut self, v: u64) -> &mut Self {
        let mut digits = [0u8; 20];
        self.separator();
        self.raw(decimal(v, &mut digits))
    }

    /// Write member `key` with a string value.
    pub fn field_str(&mut self, key: &str, value: &str) -> &mut Self {
        self.key(key).string(value)
    }

    /// Write member `key` with a string value, or `null` for `None` (the
    /// CFMS root folder is `null`).
    pub fn field_opt_str(&mut self, key: &str, value: Option<&str>) -> &mut Self {
        self.key(key);
        match value {
            Some(v) => self.string(v),
            None => self.null(),
        }
    }

    /// Write member `key` with an integer value.
    pub fn field_u64(&mut self, key: &str, value: u64) -> &mut Self {
        self.key(key).u64(value)
    }

    /// Write member `key` with a boolean value.
    pub fn field_bool(&mut self, key: &str, value: bool) -> &mut Self {
        self.key(key).bool(value)
    }

    /// Write member `key` whose value is already-valid JSON text.
    pub fn field_raw(&mut self, key: &str, json: &[u8]) -> &mut Self {
        self.key(key).raw_value(json)
    }

    /// Write an integer.
    pub fn i64(&mut self, v: i64) -> &mut Self {
        let mut digits = [0u8; 20];
        let text = decimal(v.unsigned_abs(), &mut digits);
        self.separator();
        if v < 0 {
            self.byte(b'-');
        }
        self.raw(text)
    }

    fn string_body(&mut self, s: &str) {
        self.byte(b'"');
        let bytes = s.as_bytes();
        let mut run_start = 0;
        for (i, &b) in bytes.iter().enumerate() {
            let short = match b {
                b'"' => b'"',
                b'\\' => b'\\',
                b'\n' => b'n',
                b'\r' => b'r',
                b'\t' => b't',
                0x08 => b'b',
                0x0c => b'f',
                0x00..=0x1f => 0,
                _ => continue,
            };
            self.raw(bytes.get(run_start..i).unwrap_or_default());
            run_start = i + 1;
            if short != 0 {
                self.raw(&[b'\\', short]);
            } else {
                self.raw(&[b'\\', b'u', b'0', b'0', hex_digit(b >> 4), hex_digit(b)]);
            }
        }
        self.raw(bytes.get(run_start..).unwrap_or_default());
        self.byte(b'"');
    }

    /// Total length written so far (including `start`), even if it no longer
    /// fits.
    pub fn len(&self) -> usize {
        self.len
    }

    /// `true` while the message is empty (start offset zero, nothing written).
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The end offset of the message, or how much room it needed.
    pub fn finish(self) -> Result<usize, InsufficientSize> {
        if self.len <= self.buf.len() {
            Ok(self.len)
        } else {
            Err(InsufficientSize { required: self.len })
        }
    }
}

/// The lower-case hex digit of `v`'s low four bits.
pub(crate) fn hex_digit(v: u8) -> u8 {
    match v & 15 {
        n @ 0..=9 => b'0' + n,
        n => b'a' + n - 10,
    }
}

#[cfg(test)]
// Tests index fixtures they built themselves.
#[allow(clippy::indexing_slicing)]
mod tests {
    use super::*;

    #[test]
    fn only_quote_backslash_and_control_characters_are_escaped() {
        let mut buf = [0u8; 64];
        let mut w = JsonWriter::new(&mut buf, 0);
        w.begin_object()
            .key("p")
            .string("vol1/é\"\\\n\u{1}")
            .key("n")
            .i64(-42)
            .end_object();
        let n = w.finish().unwrap();
        assert_eq!(
            &buf[..n],
            "{\"p\":\"vol1/é\\\"\\\\\\n\\u0001\",\"n\":-42}".as_bytes()
        );
    }

    #[test]
    fn nested_containers_get_their_commas() {
        let mut buf = [0u8; 64];
        let mut w = JsonWriter::new(&mut buf, 0);
        w.begin_array()
            .begin_array()
            .i64(1)
            .end_array()
            .begin_object()
            .key("a")
            .null()
            .end_object();
        w.string("s").end_array();
        let n = w.finish().unwrap();
        assert_eq!(&buf[..n], br#"[[1],{"a":null},"s"]"#);
    }

    #[test]
    fn fields_write_cfms_members_with_their_commas() {
        let mut buf = [0u8; 96];
        let mut w = JsonWriter::new(&mut buf, 0);
        w.begin_object()
            .field_str("p", "a\"b\\c\n\u{1}é")
            .field_u64("n", 10800)
            .field_opt_str("f", None)
            .field_bool("b", false)
            .field_raw("d", b"{}")
            .end_object();
        let n = w.finish().unwrap();
        assert_eq!(
            &buf[..n],
            r#"{"p":"a\"b\\c\n\u0001é","n":10800,"f":null,"b":false,"d":{}}"#.as_bytes()
        );
    }

    #[test]
    fn a_short_buffer_reports_the_size_needed() {
        let mut buf = [0u8; 4];
        let mut w = JsonWriter::new(&mut buf, 0);
        w.begin_object().key("abc").bool(true).end_object();
        assert_eq!(w.finish(), Err(InsufficientSize { required: 12 }));
    }
}
