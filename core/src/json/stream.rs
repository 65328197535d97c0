//! A streaming JSON reader: a document fed in pieces of any size (a
//! 2.8 MB CFMS `file_chunk` arrives in many), its structure reported to a
//! [`Visit`]or as the bytes go by, with bounded memory.
//!
//! The checked view ([`Value`](super::Value)) needs the whole document in
//! one buffer; this reader needs none. It keeps the grammar state, one
//! member name ([`MAX_KEY`] bytes) and one number or literal
//! ([`MAX_SCALAR`] bytes); string *values* pass through to the visitor in
//! bulk, escapes decoded, without being collected. Containers nest at most
//! [`MAX_DEPTH`] levels, the module's one limit.
//!
//! Escapes decode as [`JsonStr`](super::JsonStr) decodes them: a `\u`
//! surrogate pair to its one character, a lone surrogate to U+FFFD. Raw
//! control characters in strings are refused, as the view refuses them;
//! string contents are not checked to be UTF-8 (the visitor reads bytes).
//!
//! ```
//! use naslink_core::json::stream::{Reader, Visit};
//!
//! #[derive(Default)]
//! struct Names(Vec<Vec<u8>>);
//! impl Visit for Names {
//!     type Error = ();
//!     fn member(&mut self, _depth: u8, name: Option<&[u8]>) -> Result<(), ()> {
//!         self.0.push(name.unwrap_or_default().to_vec());
//!         Ok(())
//!     }
//! }
//! let mut reader = Reader::new();
//! let mut names = Names::default();
//! for piece in [&br#"{"act"#[..], br#"ion":"x","da"#, br#"ta":{"i":1}}"#] {
//!     reader.feed(piece, &mut names).unwrap();
//! }
//! reader.finish(&mut names).unwrap();
//! assert_eq!(names.0, [&b"action"[..], b"data", b"i"]);
//! ```
#![deny(clippy::indexing_slicing)]

use super::MAX_DEPTH;

/// Longest member name passed to [`Visit::member`]; a longer one is
/// passed as `None` (it matches no name a reader looks for).
pub const MAX_KEY: usize = 16;

/// Longest number or literal: the longest a CFMS or fnOS message carries
/// is a 64-digit hash-like number far below this; the margin lets numbers
/// written with exponents and fractions through.
pub const MAX_SCALAR: usize = 96;

/// [`MAX_DEPTH`] as the reader counts it, one bit per level in `objects`.
const DEPTH: u8 = {
    assert!(MAX_DEPTH <= u32::BITS as usize);
    MAX_DEPTH as u8
};

/// Why the reader stopped. After an error, start a new [`Reader`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamError<E> {
    /// A byte the JSON grammar does not allow here (or the document ended
    /// early, from [`Reader::finish`]).
    Grammar,
    /// Containers nested deeper than [`MAX_DEPTH`].
    TooDeep,
    /// A number or literal longer than [`MAX_SCALAR`] bytes.
    ScalarTooLong,
    /// The visitor refused what it was given.
    Visitor(E),
}

/// What a [`Reader`] reports, in document order. Every method has a
/// default that ignores the report.
pub trait Visit {
    /// The visitor's own reason to stop.
    type Error;

    /// A member name of the object at `depth` (1: the root object);
    /// `None` when longer than [`MAX_KEY`]. Its value follows.
    fn member(&mut self, depth: u8, name: Option<&[u8]>) -> Result<(), Self::Error> {
        let _ = (depth, name);
        Ok(())
    }

    /// A container opened; `depth` is its own (1: the root).
    fn open(&mut self, depth: u8, object: bool) -> Result<(), Self::Error> {
        let _ = (depth, object);
        Ok(())
    }

    /// The container at `depth` closed.
    fn close(&mut self, depth: u8) -> Result<(), Self::Error> {
        let _ = depth;
        Ok(())
    }

    /// The next decoded bytes of a string value (never of a member name);
    /// one string may come in many parts, an empty one in none.
    fn string_part(&mut self, bytes: &[u8]) -> Result<(), Self::Error> {
        let _ = bytes;
        Ok(())
    }

    /// The string value whose parts came last ended.
    fn string_end(&mut self) -> Result<(), Self::Error> {
        Ok(())
    }

    /// A number, `true`, `false` or `null` (checked).
    fn scalar(&mut self, text: &str) -> Result<(), Self::Error> {
        let _ = text;
        Ok(())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tok {
    Value,
    /// Right after `[`: a value or the `]` of an empty array.
    FirstValue,
    AfterValue,
    KeyOrEnd,
    Colon,
    Str,
    Escape,
    Unicode(u8),
    Scalar,
    Done,
}

/// The reader's state between pieces (about 130 bytes).
#[derive(Debug, Clone)]
pub struct Reader {
    tok: Tok,
    depth: u8,
    /// Bit `d` set: the container at depth `d + 1` is an object.
    objects: u32,
    /// The string being read is a member name.
    in_key: bool,
    key: [u8; MAX_KEY],
    /// Bytes of the name so far (may pass `MAX_KEY`: then it is too long).
    key_len: u8,
    scalar: [u8; MAX_SCALAR],
    scalar_len: u8,
    uni: u32,
    /// A `\u` high surrogate waiting for its low half.
    high: Option<u32>,
}

impl Default for Reader {
    fn default() -> Self {
        Self::new()
    }
}

type Step<E> = Result<(), StreamError<E>>;

impl Reader {
    /// A reader at the start of a document.
    pub const fn new() -> Self {
        Reader {
            tok: Tok::Value,
            depth: 0,
            objects: 0,
            in_key: false,
            key: [0; MAX_KEY],
            key_len: 0,
            scalar: [0; MAX_SCALAR],
            scalar_len: 0,
            uni: 0,
            high: None,
        }
    }

    /// Whether one whole value (the document) has been read.
    pub fn is_done(&self) -> bool {
        self.tok == Tok::Done
    }

    /// Read the next piece of the document. Only whitespace may follow the
    /// document's value.
    pub fn feed<V: Visit>(&mut self, mut input: &[u8], v: &mut V) -> Step<V::Error> {
        while let Some((&b, after)) = input.split_first() {
            if self.tok == Tok::Str {
                // String contents go in bulk up to the next quote, escape
                // or (refused) control character.
                let n = input
                    .iter()
                    .position(|&c| c == b'"' || c == b'\\' || c < 0x20)
                    .unwrap_or(input.len());
                let (text, rest) = input.split_at_checked(n).unwrap_or((input, &[]));
                if !text.is_empty() {
                    self.string_bytes(text, v)?;
                }
                let Some((&end, rest)) = rest.split_first() else {
                    break;
                };
                input = rest;
                match end {
                    b'\\' => self.tok = Tok::Escape,
                    b'"' => self.end_string(v)?,
                    _ => return Err(StreamError::Grammar),
                }
                continue;
            }
            if self.byte(b, v)? {
                input = after;
            }
        }
        Ok(())
    }

    /// The document ended: a number at the top level ends with it; anything
    /// unfinished is [`StreamError::Grammar`].
    pub fn finish<V: Visit>(&mut self, v: &mut V) -> Step<V::Error> {
        if self.tok == Tok::Scalar && self.depth == 0 {
            self.end_scalar(v)?;
        }
        if self.is_done() {
            Ok(())
        } else {
            Err(StreamError::Grammar)
        }
    }

    fn in_object(&self) -> bool {
        self.depth > 0 && self.objects & (1 << (self.depth - 1)) != 0
    }

    /// One byte outside string contents; `false` when the byte must be
    /// looked at again.
    fn byte<V: Visit>(&mut self, b: u8, v: &mut V) -> Result<bool, StreamError<V::Error>> {
        let ws = matches!(b, b' ' | b'\t' | b'\n' | b'\r');
        match self.tok {
            Tok::Str => return Err(StreamError::Grammar),
            Tok::Escape => {
                let ch = match b {
                    b'"' | b'\\' | b'/' => b,
                    b'b' => 8,
                    b'f' => 12,
                    b'n' => b'\n',
                    b'r' => b'\r',
                    b't' => b'\t',
                    b'u' => {
                        self.tok = Tok::Unicode(0);
                        self.uni = 0;
                        return Ok(true);
                    }
                    _ => return Err(StreamError::Grammar),
                };
                self.tok = Tok::Str;
                self.string_bytes(&[ch], v)?;
            }
            Tok::Unicode(n) => {
                let d = char::from(b).to_digit(16).ok_or(StreamError::Grammar)?;
                self.uni = self.uni * 16 + d;
                if n < 3 {
                    self.tok = Tok::Unicode(n + 1);
                } else {
                    self.tok = Tok::Str;
                    self.unicode(v)?;
                }
            }
            _ if ws => {}
            Tok::FirstValue if b == b']' => self.close(false, v)?,
            Tok::Value | Tok::FirstValue => self.value_start(b, v)?,
            Tok::Scalar => {
                if b.is_ascii_alphanumeric() || matches!(b, b'.' | b'+' | b'-') {
                    let slot = self
                        .scalar
                        .get_mut(usize::from(self.scalar_len))
                        .ok_or(StreamError::ScalarTooLong)?;
                    *slot = b;
                    self.scalar_len += 1;
                } else {
                    self.end_scalar(v)?;
                    return Ok(false);
                }
            }
            Tok::Colon => {
                if b != b':' {
                    return Err(StreamError::Grammar);
                }
                self.tok = Tok::Value;
            }
            Tok::KeyOrEnd => match b {
                b'"' => {
                    self.in_key = true;
                    self.key_len = 0;
                    self.tok = Tok::Str;
                }
                b'}' => self.close(true, v)?,
                _ => return Err(StreamError::Grammar),
            },
            Tok::AfterValue => match b {
                b',' if self.in_object() => self.tok = Tok::KeyOrEnd,
                b',' => self.tok = Tok::Value,
                b'}' => self.close(true, v)?,
                b']' => self.close(false, v)?,
                _ => return Err(StreamError::Grammar),
            },
            Tok::Done => return Err(StreamError::Grammar),
        }
        Ok(true)
    }

    fn value_start<V: Visit>(&mut self, b: u8, v: &mut V) -> Step<V::Error> {
        match b {
            b'{' | b'[' => {
                if self.depth >= DEPTH {
                    return Err(StreamError::TooDeep);
                }
                let object = b == b'{';
                if object {
                    self.objects |= 1 << self.depth;
                } else {
                    self.objects &= !(1 << self.depth);
                }
                self.depth += 1;
                v.open(self.depth, object).map_err(StreamError::Visitor)?;
                self.tok = if object {
                    Tok::KeyOrEnd
                } else {
                    Tok::FirstValue
                };
            }
            b'"' => {
                self.in_key = false;
                self.tok = Tok::Str;
            }
            b'-' | b'0'..=b'9' | b't' | b'f' | b'n' => {
                self.scalar_len = 0;
                self.tok = Tok::Scalar;
                return self.byte(b, v).map(|_| ());
            }
            _ => return Err(StreamError::Grammar),
        }
        Ok(())
    }

    fn close<V: Visit>(&mut self, object: bool, v: &mut V) -> Step<V::Error> {
        if self.depth == 0 || self.in_object() != object {
            return Err(StreamError::Grammar);
        }
        v.close(self.depth).map_err(StreamError::Visitor)?;
        self.depth -= 1;
        self.after_value();
        Ok(())
    }

    fn after_value(&mut self) {
        self.tok = if self.depth == 0 {
            Tok::Done
        } else {
            Tok::AfterValue
        };
    }

    /// A completed `\uXXXX`: pairs become one character, lone surrogates U+FFFD.
    fn unicode<V: Visit>(&mut self, v: &mut V) -> Step<V::Error> {
        let u = self.uni;
        let ch = match (self.high.take(), u) {
            (None, 0xD800..=0xDBFF) => {
                self.high = Some(u);
                return Ok(());
            }
            (Some(high), 0xDC00..=0xDFFF) => {
                char::from_u32(0x10000 + ((high - 0xD800) << 10) + (u - 0xDC00))
            }
            (Some(_), _) => {
                // The high half stood alone; `u` is read afresh.
                self.emit(&[0xEF, 0xBF, 0xBD], v)?;
                self.uni = u;
                return self.unicode(v);
            }
            (None, _) => char::from_u32(u),
        };
        let mut utf8 = [0u8; 4];
        let s = ch.unwrap_or('\u{fffd}').encode_utf8(&mut utf8);
        self.emit(s.as_bytes(), v)
    }

    /// String bytes other than a `\u` escape: a waiting high surrogate
    /// stood alone.
    fn string_bytes<V: Visit>(&mut self, bytes: &[u8], v: &mut V) -> Step<V::Error> {
        if self.high.take().is_some() {
            self.emit(&[0xEF, 0xBF, 0xBD], v)?;
        }
        self.emit(bytes, v)
    }

    fn emit<V: Visit>(&mut self, bytes: &[u8], v: &mut V) -> Step<V::Error> {
        if !self.in_key {
            return v.string_part(bytes).map_err(StreamError::Visitor);
        }
        // Names longer than the buffer match no name a visitor looks for:
        // only their length is kept.
        let free = self.key.get_mut(usize::from(self.key_len)..);
        if let Some(dest) = free.and_then(|f| f.get_mut(..bytes.len())) {
            dest.copy_from_slice(bytes);
        }
        let n = u8::try_from(bytes.len()).unwrap_or(u8::MAX);
        self.key_len = self.key_len.saturating_add(n);
        Ok(())
    }

    fn end_string<V: Visit>(&mut self, v: &mut V) -> Step<V::Error> {
        if self.high.take().is_some() {
            self.emit(&[0xEF, 0xBF, 0xBD], v)?;
        }
        if self.in_key {
            self.in_key = false;
            let name = self.key.get(..usize::from(self.key_len));
            v.member(self.depth, name).map_err(StreamError::Visitor)?;
            self.tok = Tok::Colon;
            return Ok(());
        }
        v.string_end().map_err(StreamError::Visitor)?;
        self.after_value();
        Ok(())
    }

    fn end_scalar<V: Visit>(&mut self, v: &mut V) -> Step<V::Error> {
        let text = self
            .scalar
            .get(..usize::from(self.scalar_len))
            .unwrap_or_default();
        let text = core::str::from_utf8(text).map_err(|_| StreamError::Grammar)?;
        if !(matches!(text, "true" | "false" | "null") || is_number(text)) {
            return Err(StreamError::Grammar);
        }
        v.scalar(text).map_err(StreamError::Visitor)?;
        self.after_value();
        Ok(())
    }
}

/// JSON's number grammar: `-? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?`.
fn is_number(text: &str) -> bool {
    let mut b = text.as_bytes();
    let digits = |b: &mut &[u8]| {
        let n = b.iter().take_while(|c| c.is_ascii_digit()).count();
        *b = b.get(n..).unwrap_or_default();
        n
    };
    if let [b'-', rest @ ..] = b {
        b = rest;
    }
    match b {
        [b'0', rest @ ..] => b = rest,
        [b'1'..=b'9', ..] => {
            digits(&mut b);
        }
        _ => return false,
    }
    if let [b'.', rest @ ..] = b {
        b = rest;
        if digits(&mut b) == 0 {
            return false;
        }
    }
    if let [b'e' | b'E', rest @ ..] = b {
        b = rest;
        if let [b'+' | b'-', rest @ ..] = b {
            b = rest;
        }
        if digits(&mut b) == 0 {
            return false;
        }
    }
    b.is_empty()
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;

    /// Everything reported, as text.
    #[derive(Default)]
    struct Log(std::string::String);

    impl Visit for Log {
        type Error = ();
        fn member(&mut self, depth: u8, name: Option<&[u8]>) -> Result<(), ()> {
            let name = name.map(|n| std::string::String::from_utf8_lossy(n).into_owned());
            self.0 += &std::format!("k{depth}:{name:?} ");
            Ok(())
        }
        fn open(&mut self, depth: u8, object: bool) -> Result<(), ()> {
            self.0 += &std::format!("{}{depth} ", if object { "{" } else { "[" });
            Ok(())
        }
        fn close(&mut self, depth: u8) -> Result<(), ()> {
            self.0 += &std::format!("/{depth} ");
            Ok(())
        }
        fn string_part(&mut self, bytes: &[u8]) -> Result<(), ()> {
            self.0 += &std::string::String::from_utf8_lossy(bytes);
            Ok(())
        }
        fn string_end(&mut self) -> Result<(), ()> {
            self.0 += "$ ";
            Ok(())
        }
        fn scalar(&mut self, text: &str) -> Result<(), ()> {
            self.0 += &std::format!("#{text} ");
            Ok(())
        }
    }

    fn read(doc: &[u8]) -> Result<std::string::String, StreamError<()>> {
        let mut log = Log::default();
        let mut r = Reader::new();
        // Byte by byte: every state is crossed at a piece boundary.
        for b in doc {
            r.feed(core::slice::from_ref(b), &mut log)?;
        }
        r.finish(&mut log)?;
        Ok(log.0)
    }

    #[test]
    fn structure_is_reported_in_document_order() {
        assert_eq!(
            read(br#"{"a": [1, true, "x"], "b": {"c": null}}"#).unwrap(),
            r#"{1 k1:Some("a") [2 #1 #true x$ /2 k1:Some("b") {2 k2:Some("c") #null /2 /1 "#
        );
    }

    #[test]
    fn escapes_decode_as_the_view_decodes_them() {
        let doc = br#"["a\n\"\u00e9\ud83d\ude00\ud800x"]"#;
        assert_eq!(read(doc).unwrap(), "[1 a\n\"é😀\u{fffd}x$ /1 ");
        let text = br#""\ud83d\ude00\ud800x""#;
        let view = crate::json::Value::parse(text).unwrap();
        let mut buf = [0u8; 16];
        let decoded = view.as_str().unwrap().decode_into(&mut buf).unwrap();
        assert_eq!(decoded, "😀\u{fffd}x");
    }

    #[test]
    fn a_long_name_is_reported_without_its_text() {
        let doc = std::format!(r#"{{"{}":1}}"#, "n".repeat(MAX_KEY + 1));
        assert_eq!(read(doc.as_bytes()).unwrap(), "{1 k1:None #1 /1 ");
    }

    #[test]
    fn limits_and_grammar_errors_are_named() {
        let deep = [b'['; MAX_DEPTH + 1];
        assert_eq!(read(&deep), Err(StreamError::TooDeep));
        let long = std::format!("[{}]", "1".repeat(MAX_SCALAR + 1));
        assert_eq!(read(long.as_bytes()), Err(StreamError::ScalarTooLong));
        for bad in [
            &b"[01]"[..],
            b"[1.]",
            b"[tru]",
            b"{\"a\" 1}",
            b"[1,]x",
            b"[\"\x01\"]",
            b"{}}",
        ] {
            assert_eq!(read(bad), Err(StreamError::Grammar), "{bad:?}");
        }
        assert_eq!(read(b"{\"a\":"), Err(StreamError::Grammar));
    }

    #[test]
    fn a_top_level_number_ends_with_the_document() {
        assert_eq!(read(b" -1.5e3 ").unwrap(), "#-1.5e3 ");
        assert_eq!(read(b"7").unwrap(), "#7 ");
    }

    #[test]
    fn numbers_follow_the_json_grammar() {
        for ok in ["0", "-0", "10", "1.5", "1e5", "1E+5", "-2.5e-3"] {
            assert!(is_number(ok), "{ok}");
        }
        for bad in ["", "-", "01", "1.", ".5", "1e", "+1", "0x1", "1e+"] {
            assert!(!is_number(bad), "{bad}");
        }
    }
}
