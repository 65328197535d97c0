//! A borrowed, allocation-free JSON view over a received message.
//!
//! [`parse`] validates a whole JSON text once (grammar, escapes, UTF-8,
//! nesting depth up to [`MAX_DEPTH`]) and hands back a [`Value`] that borrows
//! the input. Accessors on a validated value never fail on structure; they
//! only answer `None` when the JSON holds a different kind than asked for.
//!
//! Strings stay as they arrived ([`JsonStr`]): escapes such as `\/` or
//! `\u00e9` (and surrogate pairs) are decoded on demand, either compared
//! against a `&str` ([`JsonStr::eq_str`]), iterated ([`JsonStr::chars`]) or
//! decoded into a caller buffer ([`JsonStr::decode_into`]). This is why the
//! core does not use serde-json-core, which leaves escapes inside `&str`.
#![deny(clippy::indexing_slicing)]

/// Deepest nesting of arrays and objects [`parse`] accepts. CFMS responses
/// nest four levels at most (`data.documents[i].field`); 16 leaves headroom
/// while bounding the validator's recursion on small stacks.
pub const MAX_DEPTH: usize = 16;

/// Why a byte slice is not the JSON text it was expected to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JsonError {
    /// The input ended inside a value.
    UnexpectedEnd,
    /// A byte that the JSON grammar does not allow at this offset.
    UnexpectedByte {
        /// Offset of the byte in the input.
        offset: usize,
    },
    /// Arrays/objects nest deeper than [`MAX_DEPTH`].
    TooDeep {
        /// Offset where the limit was crossed.
        offset: usize,
    },
    /// A backslash escape that JSON does not define.
    InvalidEscape {
        /// Offset of the backslash.
        offset: usize,
    },
    /// String contents are not UTF-8.
    InvalidUtf8 {
        /// Offset of the string's opening quote.
        offset: usize,
    },
    /// Something follows the top-level value.
    TrailingBytes {
        /// Offset of the first extra byte.
        offset: usize,
    },
}

impl core::fmt::Display for JsonError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            JsonError::UnexpectedEnd => write!(f, "JSON text ends inside a value"),
            JsonError::UnexpectedByte { offset } => write!(f, "unexpected byte at offset {offset}"),
            JsonError::TooDeep { offset } => {
                write!(f, "nesting deeper than {MAX_DEPTH} at offset {offset}")
            }
            JsonError::InvalidEscape { offset } => {
                write!(f, "invalid string escape at offset {offset}")
            }
            JsonError::InvalidUtf8 { offset } => {
                write!(f, "string at offset {offset} is not UTF-8")
            }
            JsonError::TrailingBytes { offset } => {
                write!(f, "bytes after the JSON value at offset {offset}")
            }
        }
    }
}

pub use crate::InsufficientSize;

/// Validate `input` as one JSON value (surrounding whitespace allowed).
pub fn parse(input: &[u8]) -> Result<Value<'_>, JsonError> {
    let mut c = Cursor { b: input, pos: 0 };
    c.ws();
    let start = c.pos;
    c.value(0)?;
    let end = c.pos;
    c.ws();
    if c.pos != input.len() {
        return Err(JsonError::TrailingBytes { offset: c.pos });
    }
    Ok(Value {
        raw: input.get(start..end).ok_or(JsonError::UnexpectedEnd)?,
    })
}

/// What kind of JSON value a [`Value`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `null`
    Null,
    /// `true` / `false`
    Bool,
    /// A number.
    Number,
    /// A string.
    String,
    /// An array.
    Array,
    /// An object.
    Object,
}

/// One validated JSON value, borrowing the message it came from.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Value<'a> {
    raw: &'a [u8],
}

impl core::fmt::Debug for Value<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match core::str::from_utf8(self.raw) {
            Ok(s) => write!(f, "Value({s})"),
            Err(_) => write!(f, "Value({:?})", self.raw),
        }
    }
}

impl<'a> Value<'a> {
    /// `{}`, for absent `data`.
    pub const EMPTY_OBJECT: Value<'static> = Value { raw: b"{}" };

    /// The exact bytes of this value in the message (already valid JSON).
    pub fn raw(&self) -> &'a [u8] {
        self.raw
    }

    /// The kind of value.
    pub fn kind(&self) -> Kind {
        match self.raw.first() {
            Some(b'n') => Kind::Null,
            Some(b't') | Some(b'f') => Kind::Bool,
            Some(b'"') => Kind::String,
            Some(b'[') => Kind::Array,
            Some(b'{') => Kind::Object,
            _ => Kind::Number,
        }
    }

    /// `true` for JSON `null`.
    pub fn is_null(&self) -> bool {
        self.kind() == Kind::Null
    }

    /// The boolean, if this is one.
    pub fn as_bool(&self) -> Option<bool> {
        match self.raw {
            b"true" => Some(true),
            b"false" => Some(false),
            _ => None,
        }
    }

    fn number_str(&self) -> Option<&'a str> {
        if self.kind() != Kind::Number {
            return None;
        }
        core::str::from_utf8(self.raw).ok()
    }

    /// The number as an integer, if it is written as one and fits.
    pub fn as_i64(&self) -> Option<i64> {
        self.number_str()?.parse().ok()
    }

    /// The number as an unsigned integer, if it is written as one and fits.
    pub fn as_u64(&self) -> Option<u64> {
        self.number_str()?.parse().ok()
    }

    /// The number as a float (integers included).
    pub fn as_f64(&self) -> Option<f64> {
        self.number_str()?.parse().ok()
    }

    /// The string, if this is one.
    pub fn as_str(&self) -> Option<JsonStr<'a>> {
        if self.kind() != Kind::String || self.raw.len() < 2 {
            return None;
        }
        Some(JsonStr {
            raw: self.raw.get(1..self.raw.len() - 1)?,
        })
    }

    /// The member `key` of an object (the first, if the key repeats).
    pub fn get(&self, key: &str) -> Option<Value<'a>> {
        self.entries().find(|(k, _)| k.eq_str(key)).map(|(_, v)| v)
    }

    /// The members of an object in order; empty for other kinds.
    pub fn entries(&self) -> Entries<'a> {
        let pos = if self.kind() == Kind::Object {
            1
        } else {
            self.raw.len()
        };
        Entries {
            c: Cursor { b: self.raw, pos },
        }
    }

    /// The items of an array in order; empty for other kinds.
    pub fn items(&self) -> Items<'a> {
        let pos = if self.kind() == Kind::Array {
            1
        } else {
            self.raw.len()
        };
        Items {
            c: Cursor { b: self.raw, pos },
        }
    }
}

/// Iterator over an object's members, from [`Value::entries`].
#[derive(Debug, Clone)]
pub struct Entries<'a> {
    c: Cursor<'a>,
}

impl<'a> Iterator for Entries<'a> {
    type Item = (JsonStr<'a>, Value<'a>);

    fn next(&mut self) -> Option<Self::Item> {
        let c = &mut self.c;
        c.ws();
        if c.peek()? == b',' {
            c.pos += 1;
            c.ws();
        }
        if c.peek()? != b'"' {
            c.pos = c.b.len();
            return None;
        }
        let key_start = c.pos;
        c.string().ok()?;
        let key = JsonStr {
            raw: c.b.get(key_start + 1..c.pos.checked_sub(1)?)?,
        };
        c.ws();
        c.expect(b':').ok()?;
        c.ws();
        let start = c.pos;
        c.value(0).ok()?;
        Some((
            key,
            Value {
                raw: c.b.get(start..c.pos)?,
            },
        ))
    }
}

/// Iterator over an array's items, from [`Value::items`].
#[derive(Debug, Clone)]
pub struct Items<'a> {
    c: Cursor<'a>,
}

impl<'a> Iterator for Items<'a> {
    type Item = Value<'a>;

    fn next(&mut self) -> Option<Self::Item> {
        let c = &mut self.c;
        c.ws();
        if c.peek()? == b',' {
            c.pos += 1;
            c.ws();
        }
        if c.peek()? == b']' {
            c.pos = c.b.len();
            return None;
        }
        let start = c.pos;
        c.value(0).ok()?;
        Some(Value {
            raw: c.b.get(start..c.pos)?,
        })
    }
}

/// A JSON string's contents as they arrived, escapes not yet decoded.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct JsonStr<'a> {
    raw: &'a [u8],
}

impl core::fmt::Debug for JsonStr<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("\"")?;
        for ch in self.chars() {
            for e in ch.escape_debug() {
                core::fmt::Write::write_char(f, e)?;
            }
        }
        f.write_str("\"")
    }
}

impl<'a> JsonStr<'a> {
    /// Contents between the quotes, escapes included.
    pub fn raw(&self) -> &'a [u8] {
        self.raw
    }

    /// The contents as `&str` without copying, when there is no escape.
    pub fn as_str(&self) -> Option<&'a str> {
        if self.raw.contains(&b'\\') {
            return None;
        }
        core::str::from_utf8(self.raw).ok()
    }

    /// The decoded characters.
    pub fn chars(&self) -> Chars<'a> {
        Chars {
            raw: self.raw,
            pos: 0,
        }
    }

    /// Whether the decoded string equals `s`.
    pub fn eq_str(&self, s: &str) -> bool {
        self.chars().eq(s.chars())
    }

    /// Whether the decoded string starts with `prefix`.
    pub fn starts_with(&self, prefix: &str) -> bool {
        let mut mine = self.chars();
        prefix.chars().all(|p| mine.next() == Some(p))
    }

    /// Length of the decoded string in UTF-8 bytes.
    pub fn decoded_len(&self) -> usize {
        self.chars().map(char::len_utf8).sum()
    }

    /// Decode into `out` and return the decoded text.
    pub fn decode_into<'b>(&self, out: &'b mut [u8]) -> Result<&'b str, InsufficientSize> {
        let required = self.decoded_len();
        if required > out.len() {
            return Err(InsufficientSize { required });
        }
        let mut n = 0;
        for ch in self.chars() {
            let free = out.get_mut(n..).ok_or(InsufficientSize { required })?;
            if free.len() < ch.len_utf8() {
                return Err(InsufficientSize { required });
            }
            n += ch.encode_utf8(free).len();
        }
        // Every byte came from `char::encode_utf8`, so this cannot fail.
        let text = out.get(..n).ok_or(InsufficientSize { required })?;
        core::str::from_utf8(text).map_err(|_| InsufficientSize { required })
    }
}

/// Decoding iterator over a [`JsonStr`]; lone surrogates become U+FFFD.
#[derive(Debug, Clone)]
pub struct Chars<'a> {
    raw: &'a [u8],
    pos: usize,
}

impl Chars<'_> {
    fn hex4(&self, at: usize) -> Option<u32> {
        let digits = self.raw.get(at..at + 4)?;
        let mut v = 0u32;
        for &d in digits {
            v = v * 16 + (d as char).to_digit(16)?;
        }
        Some(v)
    }
}

impl Iterator for Chars<'_> {
    type Item = char;

    fn next(&mut self) -> Option<char> {
        let b = *self.raw.get(self.pos)?;
        if b != b'\\' {
            let len = utf8_len(b);
            let end = (self.pos + len).min(self.raw.len());
            let s = self
                .raw
                .get(self.pos..end)
                .and_then(|s| core::str::from_utf8(s).ok());
            self.pos = end;
            return Some(s.and_then(|s| s.chars().next()).unwrap_or('\u{fffd}'));
        }
        let esc = *self.raw.get(self.pos + 1)?;
        self.pos += 2;
        let ch = match esc {
            b'"' => '"',
            b'\\' => '\\',
            b'/' => '/',
            b'b' => '\u{8}',
            b'f' => '\u{c}',
            b'n' => '\n',
            b'r' => '\r',
            b't' => '\t',
            b'u' => {
                let hi = self.hex4(self.pos)?;
                self.pos += 4;
                let low = self
                    .hex4(self.pos + 2)
                    .filter(|lo| (0xDC00..0xE000).contains(lo));
                if let (true, Some(b"\\u"), Some(lo)) = (
                    (0xD800..0xDC00).contains(&hi),
                    self.raw.get(self.pos..self.pos + 2),
                    low,
                ) {
                    self.pos += 6;
                    let cp = 0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00);
                    return Some(char::from_u32(cp).unwrap_or('\u{fffd}'));
                }
                char::from_u32(hi).unwrap_or('\u{fffd}')
            }
            _ => '\u{fffd}',
        };
        Some(ch)
    }
}

fn utf8_len(first: u8) -> usize {
    match first {
        0x00..=0x7F => 1,
        0xC0..=0xDF => 2,
        0xE0..=0xEF => 3,
        _ => 4,
    }
}

/// The validating scanner behind [`parse`] and the iterators.
#[derive(Debug, Clone)]
struct Cursor<'a> {
    b: &'a [u8],
    pos: usize,
}

impl Cursor<'_> {
    fn peek(&self) -> Option<u8> {
        self.b.get(self.pos).copied()
    }

    fn ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.pos += 1;
        }
    }

    fn expect(&mut self, byte: u8) -> Result<(), JsonError> {
        match self.peek() {
            Some(b) if b == byte => {
                self.pos += 1;
                Ok(())
            }
            Some(_) => Err(JsonError::UnexpectedByte { offset: self.pos }),
            None => Err(JsonError::UnexpectedEnd),
        }
    }

    fn value(&mut self, depth: usize) -> Result<(), JsonError> {
        match self.peek().ok_or(JsonError::UnexpectedEnd)? {
            b'{' => self.container(depth, b'}', true),
            b'[' => self.container(depth, b']', false),
            b'"' => self.string(),
            b't' => self.literal(b"true"),
            b'f' => self.literal(b"false"),
            b'n' => self.literal(b"null"),
            b'-' | b'0'..=b'9' => self.number(),
            _ => Err(JsonError::UnexpectedByte { offset: self.pos }),
        }
    }

    fn container(&mut self, depth: usize, close: u8, object: bool) -> Result<(), JsonError> {
        if depth >= MAX_DEPTH {
            return Err(JsonError::TooDeep { offset: self.pos });
        }
        self.pos += 1;
        self.ws();
        if self.peek() == Some(close) {
            self.pos += 1;
            return Ok(());
        }
        loop {
            self.ws();
            if object {
                if self.peek() != Some(b'"') {
                    return Err(self.unexpected());
                }
                self.string()?;
                self.ws();
                self.expect(b':')?;
                self.ws();
            }
            self.value(depth + 1)?;
            self.ws();
            match self.peek() {
                Some(b',') => self.pos += 1,
                Some(b) if b == close => {
                    self.pos += 1;
                    return Ok(());
                }
                _ => return Err(self.unexpected()),
            }
        }
    }

    fn unexpected(&self) -> JsonError {
        if self.pos >= self.b.len() {
            JsonError::UnexpectedEnd
        } else {
            JsonError::UnexpectedByte { offset: self.pos }
        }
    }

    fn string(&mut self) -> Result<(), JsonError> {
        let open = self.pos;
        self.pos += 1;
        loop {
            let b = self.peek().ok_or(JsonError::UnexpectedEnd)?;
            match b {
                b'"' => break,
                b'\\' => {
                    let esc = self.b.get(self.pos + 1).ok_or(JsonError::UnexpectedEnd)?;
                    match esc {
                        b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't' => self.pos += 2,
                        b'u' => {
                            let hex = self
                                .b
                                .get(self.pos + 2..self.pos + 6)
                                .ok_or(JsonError::UnexpectedEnd)?;
                            if !hex.iter().all(u8::is_ascii_hexdigit) {
                                return Err(JsonError::InvalidEscape { offset: self.pos });
                            }
                            self.pos += 6;
                        }
                        _ => return Err(JsonError::InvalidEscape { offset: self.pos }),
                    }
                }
                0x00..=0x1F => return Err(JsonError::UnexpectedByte { offset: self.pos }),
                _ => self.pos += 1,
            }
        }
        let text = self.b.get(open + 1..self.pos);
        if text.is_none_or(|t| core::str::from_utf8(t).is_err()) {
            return Err(JsonError::InvalidUtf8 { offset: open });
        }
        self.pos += 1;
        Ok(())
    }

    fn literal(&mut self, word: &[u8]) -> Result<(), JsonError> {
        match self.b.get(self.pos..self.pos + word.len()) {
            Some(w) if w == word => {
                self.pos += word.len();
                Ok(())
            }
            Some(_) => Err(JsonError::UnexpectedByte { offset: self.pos }),
            None => Err(JsonError::UnexpectedEnd),
        }
    }

    fn digits(&mut self) -> Result<(), JsonError> {
        let start = self.pos;
        while matches!(self.peek(), Some(b'0'..=b'9')) {
            self.pos += 1;
        }
        if self.pos == start {
            Err(self.unexpected())
        } else {
            Ok(())
        }
    }

    fn number(&mut self) -> Result<(), JsonError> {
        if self.peek() == Some(b'-') {
            self.pos += 1;
        }
        if self.peek() == Some(b'0') {
            self.pos += 1;
        } else {
            self.digits()?;
        }
        if self.peek() == Some(b'.') {
            self.pos += 1;
            self.digits()?;
        }
        if matches!(self.peek(), Some(b'e' | b'E')) {
            self.pos += 1;
            if matches!(self.peek(), Some(b'+' | b'-')) {
                self.pos += 1;
            }
            self.digits()?;
        }
        Ok(())
    }
}

#[cfg(test)]
// Tests index fixtures they built themselves.
#[allow(clippy::indexing_slicing)]
mod tests {
    use super::*;

    #[test]
    fn escapes_decode_including_surrogate_pairs() {
        let v = parse(br#"{"s":"a\/b \u00e9 \ud83d\ude00 \ud800x"}"#).unwrap();
        let s = v.get("s").unwrap().as_str().unwrap();
        let mut buf = [0u8; 32];
        assert_eq!(s.decode_into(&mut buf).unwrap(), "a/b é 😀 \u{fffd}x");
        assert!(s.as_str().is_none());
        assert_eq!(
            s.decode_into(&mut [0u8; 3]),
            Err(InsufficientSize { required: 16 })
        );
    }

    #[test]
    fn validation_names_the_fault() {
        assert_eq!(parse(b"{\"a\":1"), Err(JsonError::UnexpectedEnd));
        assert_eq!(
            parse(b"{\"a\" 1}"),
            Err(JsonError::UnexpectedByte { offset: 5 })
        );
        assert_eq!(
            parse(br#"["\x"]"#),
            Err(JsonError::InvalidEscape { offset: 2 })
        );
        assert_eq!(parse(b"1 2"), Err(JsonError::TrailingBytes { offset: 2 }));
        assert!(matches!(parse(&[b'['; 40]), Err(JsonError::TooDeep { .. })));
        assert_eq!(
            parse(b"\"\xff\""),
            Err(JsonError::InvalidUtf8 { offset: 0 })
        );
    }

    #[test]
    fn accessors_walk_objects_and_arrays() {
        let v =
            parse(br#" {"n": -1.5e3, "i": 42, "a": [true, null, {"k": "v"}], "o": {}} "#).unwrap();
        assert_eq!(v.get("n").unwrap().as_f64(), Some(-1500.0));
        assert_eq!(v.get("i").unwrap().as_u64(), Some(42));
        assert_eq!(v.get("n").unwrap().as_i64(), None);
        let items: heapless::Vec<Kind, 4> = v.get("a").unwrap().items().map(|i| i.kind()).collect();
        assert_eq!(&items[..], &[Kind::Bool, Kind::Null, Kind::Object]);
        assert_eq!(v.get("o").unwrap().entries().count(), 0);
        assert!(v.get("missing").is_none());
    }
}
