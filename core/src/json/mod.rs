//! JSON for both protocols: a borrowed view of received messages and a
//! writer for requests, with one error type ([`JsonError`]) and one nesting
//! limit ([`MAX_DEPTH`]).
//!
//! fnOS and CFMS answers are small objects whose string values may carry
//! escapes (`\/` in base64 tokens, `\n` in the PEM key, `\uXXXX` in file
//! names). serde-json-core hands such strings over with the escapes still
//! inside, so this module offers its own view types instead:
//!
//! - [`Value::parse`] checks the whole document once (syntax, UTF-8,
//!   escapes, nesting depth) and returns a [`Value`] that borrows it.
//! - [`Object`], [`Array`] and [`JsonStr`] then *skip* over the checked
//!   text instead of checking it again; they never copy and never panic.
//! - [`JsonStr::decode_into`] decodes escapes into a caller buffer;
//!   [`JsonStr::eq_str`] compares with a `&str` without a buffer.
//! - [`write::JsonWriter`] writes compact JSON in place.
//! - [`stream::Reader`] reads a document fed in pieces, with bounded
//!   memory, reporting its structure to a visitor (the CFMS download reads
//!   its 2.8 MB `file_chunk` messages with it).
//!
//! A `\u` escape of a lone surrogate is accepted (it is valid JSON grammar,
//! and a Python server writes one for a file name it could not decode) and
//! decodes to U+FFFD; a proper pair decodes to its one character.
#![deny(clippy::indexing_slicing)]

pub mod stream;
pub mod write;

use core::fmt;

pub use crate::InsufficientSize;

/// Containers nested deeper than this are rejected. The checker recurses
/// once per level and runs on small firmware stacks; fnOS and CFMS messages
/// nest at most four levels (`data.documents[i].field`), so 16 leaves
/// headroom. The CFMS download's streaming reader uses the same limit.
pub const MAX_DEPTH: usize = 16;

/// What is wrong with a received JSON text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JsonErrorKind {
    /// The text ended inside a value.
    UnexpectedEnd,
    /// A byte that cannot start or continue a value at this point.
    UnexpectedByte(u8),
    /// A backslash escape other than the nine JSON allows.
    InvalidEscape,
    /// A `\u` escape without four hex digits.
    InvalidUnicode,
    /// A raw control character inside a string.
    ControlCharacter,
    /// A malformed number.
    InvalidNumber,
    /// Nesting deeper than [`MAX_DEPTH`].
    TooDeep,
    /// Something other than whitespace after the value.
    TrailingData,
    /// The text is not UTF-8.
    NotUtf8,
}

/// A JSON syntax error and the byte offset where it was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JsonError {
    /// What went wrong.
    pub kind: JsonErrorKind,
    /// Offset in the parsed text.
    pub offset: usize,
}

impl fmt::Display for JsonError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid JSON at byte {}: {:?}", self.offset, self.kind)
    }
}

/// The type of a JSON value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `null`
    Null,
    /// `true` or `false`
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

/// One checked JSON value, borrowing the received text.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Value<'a> {
    raw: &'a [u8],
}

impl fmt::Debug for Value<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match core::str::from_utf8(self.raw) {
            Ok(s) => f.write_str(s),
            Err(_) => write!(f, "{:?}", self.raw),
        }
    }
}

impl<'a> Value<'a> {
    /// `{}`, for an absent object (CFMS `data`).
    pub const EMPTY_OBJECT: Value<'static> = Value { raw: b"{}" };

    /// Check `text` as one JSON document (surrounding whitespace allowed).
    pub fn parse(text: &'a [u8]) -> Result<Value<'a>, JsonError> {
        if let Err(e) = core::str::from_utf8(text) {
            return Err(JsonError {
                kind: JsonErrorKind::NotUtf8,
                offset: e.valid_up_to(),
            });
        }
        let start = skip_ws(text, 0);
        let end = check_value(text, start, 0)?;
        let rest = skip_ws(text, end);
        if rest != text.len() {
            return Err(err(JsonErrorKind::TrailingData, rest));
        }
        let raw = text
            .get(start..end)
            .ok_or(err(JsonErrorKind::UnexpectedEnd, text.len()))?;
        Ok(Value { raw })
    }

    /// `text` as a value without checking it again: only for text that
    /// [`parse`](Value::parse) accepted before (the session looks at each
    /// message twice). On other text the views stay panic-free but may read
    /// nonsense.
    pub(crate) fn trusted(text: &'a [u8]) -> Value<'a> {
        let start = skip_ws(text, 0);
        let end = skip_value(text, start).unwrap_or(text.len());
        Value {
            raw: text.get(start..end).unwrap_or_default(),
        }
    }

    /// The value's text exactly as received.
    pub fn raw(&self) -> &'a [u8] {
        self.raw
    }

    /// The value's type.
    pub fn kind(&self) -> Kind {
        match self.raw.first() {
            Some(b'n') => Kind::Null,
            Some(b't' | b'f') => Kind::Bool,
            Some(b'"') => Kind::String,
            Some(b'[') => Kind::Array,
            Some(b'{') => Kind::Object,
            _ => Kind::Number,
        }
    }

    /// `true` for `null`.
    pub fn is_null(&self) -> bool {
        self.kind() == Kind::Null
    }

    /// The boolean, if this is `true` or `false`.
    pub fn as_bool(&self) -> Option<bool> {
        match self.raw {
            b"true" => Some(true),
            b"false" => Some(false),
            _ => None,
        }
    }

    /// The number, if this is a non-negative integer that fits a `u64`.
    pub fn as_u64(&self) -> Option<u64> {
        if self.kind() != Kind::Number || self.raw.is_empty() {
            return None;
        }
        let mut n: u64 = 0;
        for &b in self.raw {
            if !b.is_ascii_digit() {
                return None;
            }
            n = n.checked_mul(10)?.checked_add(u64::from(b - b'0'))?;
        }
        Some(n)
    }

    /// The number, if this is an integer that fits an `i64`.
    pub fn as_i64(&self) -> Option<i64> {
        match self.raw.split_first() {
            Some((b'-', digits)) => {
                let magnitude = Value { raw: digits }.as_u64()?;
                0i64.checked_sub_unsigned(magnitude)
            }
            _ => i64::try_from(self.as_u64()?).ok(),
        }
    }

    /// The number's text (for floats or integers too large for `u64`).
    pub fn as_number_text(&self) -> Option<&'a str> {
        if self.kind() != Kind::Number {
            return None;
        }
        core::str::from_utf8(self.raw).ok()
    }

    /// The number as a float (integers included).
    pub fn as_f64(&self) -> Option<f64> {
        self.as_number_text()?.parse().ok()
    }

    /// [`as_f64`](Self::as_f64) for the numbers protocol messages carry
    /// (timestamps, expiry times): the same correctly rounded value, read
    /// without `core`'s float parser, whose tables cost about 14 KiB of
    /// flash on a microcontroller. `None` when the number has more than 19
    /// significant digits or a decimal exponent beyond what 128-bit
    /// integer arithmetic reads exactly (then use `as_f64`).
    pub fn as_f64_compact(&self) -> Option<f64> {
        compact_f64(self.as_number_text()?.as_bytes())
    }

    /// The string, if this is one.
    pub fn as_str(&self) -> Option<JsonStr<'a>> {
        match self.raw {
            [b'"', inner @ .., b'"'] => Some(JsonStr { raw: inner }),
            _ => None,
        }
    }

    /// The object, if this is one.
    pub fn as_object(&self) -> Option<Object<'a>> {
        (self.kind() == Kind::Object).then_some(Object { raw: self.raw })
    }

    /// The array, if this is one.
    pub fn as_array(&self) -> Option<Array<'a>> {
        (self.kind() == Kind::Array).then_some(Array { raw: self.raw })
    }

    /// Field `key` of this object (`None` if this is not an object).
    pub fn get(&self, key: &str) -> Option<Value<'a>> {
        self.as_object()?.get(key)
    }

    /// The members of an object in order; none for other kinds.
    pub fn entries(&self) -> ObjectIter<'a> {
        let raw = if self.kind() == Kind::Object {
            self.raw
        } else {
            &[]
        };
        ObjectIter { raw, pos: 1 }
    }

    /// The elements of an array in order; none for other kinds.
    pub fn items(&self) -> ArrayIter<'a> {
        let raw = if self.kind() == Kind::Array {
            self.raw
        } else {
            &[]
        };
        ArrayIter { raw, pos: 1 }
    }
}

/// A checked JSON object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Object<'a> {
    raw: &'a [u8],
}

impl<'a> Object<'a> {
    /// The object's text exactly as received.
    pub fn raw(&self) -> &'a [u8] {
        self.raw
    }

    /// The members in received order.
    pub fn iter(&self) -> ObjectIter<'a> {
        ObjectIter {
            raw: self.raw,
            pos: 1,
        }
    }

    /// The first member named `key` (names compared after decoding escapes).
    pub fn get(&self, key: &str) -> Option<Value<'a>> {
        self.iter().find(|(k, _)| k.eq_str(key)).map(|(_, v)| v)
    }

    /// The object as a [`Value`].
    pub fn as_value(&self) -> Value<'a> {
        Value { raw: self.raw }
    }
}

impl<'a> IntoIterator for Object<'a> {
    type Item = (JsonStr<'a>, Value<'a>);
    type IntoIter = ObjectIter<'a>;
    fn into_iter(self) -> ObjectIter<'a> {
        self.iter()
    }
}

/// Iterator over an [`Object`]'s members.
#[derive(Debug, Clone)]
pub struct ObjectIter<'a> {
    raw: &'a [u8],
    pos: usize,
}

impl<'a> Iterator for ObjectIter<'a> {
    type Item = (JsonStr<'a>, Value<'a>);

    fn next(&mut self) -> Option<Self::Item> {
        let raw = self.raw;
        let mut pos = skip_ws(raw, self.pos);
        if raw.get(pos) == Some(&b',') {
            pos = skip_ws(raw, pos + 1);
        }
        if raw.get(pos) != Some(&b'"') {
            self.pos = raw.len();
            return None;
        }
        let key_end = skip_string(raw, pos)?;
        let key = JsonStr {
            raw: raw.get(pos + 1..key_end - 1)?,
        };
        let colon = skip_ws(raw, key_end);
        let start = skip_ws(raw, colon + 1);
        let end = skip_value(raw, start)?;
        self.pos = end;
        Some((
            key,
            Value {
                raw: raw.get(start..end)?,
            },
        ))
    }
}

/// A checked JSON array.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Array<'a> {
    raw: &'a [u8],
}

impl<'a> Array<'a> {
    /// The elements in order.
    pub fn iter(&self) -> ArrayIter<'a> {
        ArrayIter {
            raw: self.raw,
            pos: 1,
        }
    }

    /// The array as a [`Value`].
    pub fn as_value(&self) -> Value<'a> {
        Value { raw: self.raw }
    }
}

impl<'a> IntoIterator for Array<'a> {
    type Item = Value<'a>;
    type IntoIter = ArrayIter<'a>;
    fn into_iter(self) -> ArrayIter<'a> {
        self.iter()
    }
}

/// Iterator over an [`Array`]'s elements.
#[derive(Debug, Clone)]
pub struct ArrayIter<'a> {
    raw: &'a [u8],
    pos: usize,
}

impl<'a> Iterator for ArrayIter<'a> {
    type Item = Value<'a>;

    fn next(&mut self) -> Option<Value<'a>> {
        let raw = self.raw;
        let mut pos = skip_ws(raw, self.pos);
        if raw.get(pos) == Some(&b',') {
            pos = skip_ws(raw, pos + 1);
        }
        if matches!(raw.get(pos), None | Some(b']')) {
            self.pos = raw.len();
            return None;
        }
        let end = skip_value(raw, pos)?;
        self.pos = end;
        Some(Value {
            raw: raw.get(pos..end)?,
        })
    }
}

/// A checked JSON string, escapes still in place.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct JsonStr<'a> {
    raw: &'a [u8],
}

impl fmt::Debug for JsonStr<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("\"")?;
        for c in self.chars() {
            for e in c.escape_debug() {
                fmt::Write::write_char(f, e)?;
            }
        }
        f.write_str("\"")
    }
}

impl<'a> JsonStr<'a> {
    /// The text between the quotes, escapes included.
    pub fn raw(&self) -> &'a [u8] {
        self.raw
    }

    /// The string itself when it contains no escapes (the common case), so
    /// it can be borrowed without decoding.
    pub fn as_unescaped(&self) -> Option<&'a str> {
        if self.raw.contains(&b'\\') {
            return None;
        }
        core::str::from_utf8(self.raw).ok()
    }

    /// The decoded characters.
    pub fn chars(&self) -> Chars<'a> {
        Chars { raw: self.raw }
    }

    /// Length of the decoded string in UTF-8 bytes.
    pub fn decoded_len(&self) -> usize {
        self.chars().map(char::len_utf8).sum()
    }

    /// Whether the decoded string starts with `prefix`.
    pub fn starts_with(&self, prefix: &str) -> bool {
        let mut mine = self.chars();
        prefix.chars().all(|p| mine.next() == Some(p))
    }

    /// Compare the decoded string with `s`.
    pub fn eq_str(&self, s: &str) -> bool {
        if let Some(plain) = self.as_unescaped() {
            return plain == s;
        }
        self.chars().eq(s.chars())
    }

    /// Decode into `out` and return the decoded text.
    pub fn decode_into<'o>(&self, out: &'o mut [u8]) -> Result<&'o str, InsufficientSize> {
        let required = self.decoded_len();
        let Some(dest) = out.get_mut(..required) else {
            return Err(InsufficientSize { required });
        };
        let mut at = 0;
        for c in self.chars() {
            let free = dest.get_mut(at..).unwrap_or_default();
            if free.len() < c.len_utf8() {
                return Err(InsufficientSize { required });
            }
            at += c.encode_utf8(free).len();
        }
        // Every byte came from `encode_utf8`, so this cannot fail; the error
        // arm keeps the function total without a panic path.
        core::str::from_utf8(dest).map_err(|_| InsufficientSize { required })
    }

    /// Decode into a fixed-capacity string.
    pub fn decode_to_string<const N: usize>(
        &self,
    ) -> Result<heapless::String<N>, InsufficientSize> {
        let mut s = heapless::String::new();
        for c in self.chars() {
            s.push(c).map_err(|_| InsufficientSize {
                required: self.decoded_len(),
            })?;
        }
        Ok(s)
    }
}

/// Iterator over the decoded characters of a [`JsonStr`].
#[derive(Debug, Clone)]
pub struct Chars<'a> {
    raw: &'a [u8],
}

impl Iterator for Chars<'_> {
    type Item = char;

    fn next(&mut self) -> Option<char> {
        let (&first, rest) = self.raw.split_first()?;
        if first != b'\\' {
            let width = utf8_width(first);
            let (head, tail) = self.raw.split_at_checked(width)?;
            self.raw = tail;
            return core::str::from_utf8(head).ok()?.chars().next();
        }
        let (&esc, rest) = rest.split_first()?;
        self.raw = rest;
        Some(match esc {
            b'"' => '"',
            b'\\' => '\\',
            b'/' => '/',
            b'b' => '\u{8}',
            b'f' => '\u{c}',
            b'n' => '\n',
            b'r' => '\r',
            b't' => '\t',
            b'u' => {
                let (c, used) = decode_u_escape(rest)?;
                self.raw = rest.get(used..)?;
                c
            }
            _ => return None,
        })
    }
}

fn utf8_width(first: u8) -> usize {
    match first {
        0x00..=0x7f => 1,
        0xc0..=0xdf => 2,
        0xe0..=0xef => 3,
        _ => 4,
    }
}

fn hex4(bytes: &[u8]) -> Option<u16> {
    let digits = bytes.get(..4)?;
    let mut v: u16 = 0;
    for &d in digits {
        let n = (d as char).to_digit(16)?;
        v = (v << 4) | n as u16;
    }
    Some(v)
}

/// Decode the text after `\u`: one code unit, or a surrogate pair written as
/// `\uD83D\uDE00`; a lone surrogate is U+FFFD. Returns the character and
/// the bytes consumed, or `None` without four hex digits.
fn decode_u_escape(after_u: &[u8]) -> Option<(char, usize)> {
    let high = u32::from(hex4(after_u)?);
    if (0xd800..0xdc00).contains(&high)
        && let Some(b"\\u") = after_u.get(4..6)
        && let Some(low @ 0xdc00..=0xdfff) = after_u.get(6..).and_then(hex4)
    {
        let code = 0x10000 + ((high - 0xd800) << 10) + (u32::from(low) - 0xdc00);
        return Some((char::from_u32(code).unwrap_or('\u{fffd}'), 10));
    }
    Some((char::from_u32(high).unwrap_or('\u{fffd}'), 4))
}

fn err(kind: JsonErrorKind, offset: usize) -> JsonError {
    JsonError { kind, offset }
}

fn skip_ws(text: &[u8], mut pos: usize) -> usize {
    while matches!(text.get(pos), Some(b' ' | b'\t' | b'\n' | b'\r')) {
        pos += 1;
    }
    pos
}

// The views below only ever walk text that `Value::parse` already checked,
// so they skip values instead of checking them again (checking on every
// lookup made the checker the hottest code of a request round trip). The
// skippers still never index out of bounds: on text that was not checked
// they stop with `None` or at the end.

/// Skip the checked value at `pos`; return the offset just past it.
fn skip_value(text: &[u8], pos: usize) -> Option<usize> {
    match text.get(pos)? {
        b'"' => skip_string(text, pos),
        b'{' | b'[' => skip_container(text, pos),
        _ => {
            let rest = text.get(pos..)?;
            let len = rest
                .iter()
                .position(|b| matches!(b, b',' | b'}' | b']' | b' ' | b'\t' | b'\n' | b'\r'))
                .unwrap_or(rest.len());
            Some(pos + len)
        }
    }
}

/// Skip the checked string whose opening quote is at `pos`.
fn skip_string(text: &[u8], pos: usize) -> Option<usize> {
    let mut i = pos + 1;
    loop {
        let rest = text.get(i..)?;
        let at = rest.iter().position(|b| matches!(b, b'"' | b'\\'))?;
        i += at;
        match text.get(i)? {
            b'"' => return Some(i + 1),
            _ => i += 2,
        }
    }
}

/// Skip the checked object or array opening at `pos` by counting brackets
/// outside strings.
fn skip_container(text: &[u8], pos: usize) -> Option<usize> {
    let mut depth = 0usize;
    let mut i = pos;
    loop {
        match text.get(i)? {
            b'"' => {
                i = skip_string(text, i)?;
                continue;
            }
            b'{' | b'[' => depth += 1,
            b'}' | b']' => {
                depth -= 1;
                if depth == 0 {
                    return Some(i + 1);
                }
            }
            _ => {}
        }
        i += 1;
    }
}

/// Check the value starting at `pos`; return the offset just past it.
fn check_value(text: &[u8], pos: usize, depth: usize) -> Result<usize, JsonError> {
    match text.get(pos) {
        None => Err(err(JsonErrorKind::UnexpectedEnd, pos)),
        Some(b'"') => check_string(text, pos),
        Some(b'{') => check_object(text, pos, depth + 1),
        Some(b'[') => check_array(text, pos, depth + 1),
        Some(b't') => check_literal(text, pos, b"true"),
        Some(b'f') => check_literal(text, pos, b"false"),
        Some(b'n') => check_literal(text, pos, b"null"),
        Some(b'-' | b'0'..=b'9') => check_number(text, pos),
        Some(&b) => Err(err(JsonErrorKind::UnexpectedByte(b), pos)),
    }
}

fn check_literal(text: &[u8], pos: usize, lit: &[u8]) -> Result<usize, JsonError> {
    let end = pos + lit.len();
    match text.get(pos..end) {
        Some(found) if found == lit => Ok(end),
        Some(found) => {
            let first = found.first().copied().unwrap_or_default();
            Err(err(JsonErrorKind::UnexpectedByte(first), pos))
        }
        None => Err(err(JsonErrorKind::UnexpectedEnd, text.len())),
    }
}

fn check_digits(text: &[u8], mut pos: usize) -> Result<usize, JsonError> {
    let start = pos;
    while matches!(text.get(pos), Some(b'0'..=b'9')) {
        pos += 1;
    }
    if pos == start {
        return Err(err(JsonErrorKind::InvalidNumber, pos));
    }
    Ok(pos)
}

fn check_number(text: &[u8], mut pos: usize) -> Result<usize, JsonError> {
    if text.get(pos) == Some(&b'-') {
        pos += 1;
    }
    if text.get(pos) == Some(&b'0') {
        pos += 1;
    } else {
        pos = check_digits(text, pos)?;
    }
    if text.get(pos) == Some(&b'.') {
        pos = check_digits(text, pos + 1)?;
    }
    if matches!(text.get(pos), Some(b'e' | b'E')) {
        pos += 1;
        if matches!(text.get(pos), Some(b'+' | b'-')) {
            pos += 1;
        }
        pos = check_digits(text, pos)?;
    }
    Ok(pos)
}

/// Whether any of the eight bytes of `w` is `"`, `\\` or a control
/// character (below 0x20). May say yes for a plain byte that follows one
/// of those (a borrow carries over), never no for one of them.
#[inline(always)]
fn has_special(w: u64) -> bool {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let quote = w ^ (ONES * b'"' as u64);
    let backslash = w ^ (ONES * b'\\' as u64);
    let zero_byte = |x: u64| x.wrapping_sub(ONES) & !x & HIGH;
    let control = w.wrapping_sub(ONES * 0x20) & !w & HIGH;
    (zero_byte(quote) | zero_byte(backslash) | control) != 0
}

fn check_string(text: &[u8], pos: usize) -> Result<usize, JsonError> {
    let mut i = pos + 1;
    loop {
        // Plain bytes eight at a time; the byte loop below takes over at
        // anything that needs a look.
        while let Some(chunk) = text.get(i..i + 8) {
            match <[u8; 8]>::try_from(chunk) {
                Ok(bytes) if !has_special(u64::from_le_bytes(bytes)) => i += 8,
                _ => break,
            }
        }
        match text.get(i) {
            None => return Err(err(JsonErrorKind::UnexpectedEnd, i)),
            Some(b'"') => return Ok(i + 1),
            Some(b'\\') => match text.get(i + 1) {
                None => return Err(err(JsonErrorKind::UnexpectedEnd, i + 1)),
                Some(b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't') => i += 2,
                Some(b'u') => {
                    let rest = text.get(i + 2..).unwrap_or_default();
                    let (_, used) =
                        decode_u_escape(rest).ok_or(err(JsonErrorKind::InvalidUnicode, i))?;
                    i += 2 + used;
                }
                Some(_) => return Err(err(JsonErrorKind::InvalidEscape, i)),
            },
            Some(&b) if b < 0x20 => return Err(err(JsonErrorKind::ControlCharacter, i)),
            Some(_) => i += 1,
        }
    }
}

fn expect(text: &[u8], pos: usize, byte: u8) -> Result<usize, JsonError> {
    match text.get(pos) {
        Some(&b) if b == byte => Ok(pos + 1),
        Some(&b) => Err(err(JsonErrorKind::UnexpectedByte(b), pos)),
        None => Err(err(JsonErrorKind::UnexpectedEnd, pos)),
    }
}

fn check_object(text: &[u8], pos: usize, depth: usize) -> Result<usize, JsonError> {
    if depth > MAX_DEPTH {
        return Err(err(JsonErrorKind::TooDeep, pos));
    }
    let mut i = skip_ws(text, pos + 1);
    if text.get(i) == Some(&b'}') {
        return Ok(i + 1);
    }
    loop {
        if text.get(i) != Some(&b'"') {
            return Err(match text.get(i) {
                Some(&b) => err(JsonErrorKind::UnexpectedByte(b), i),
                None => err(JsonErrorKind::UnexpectedEnd, i),
            });
        }
        i = check_string(text, i)?;
        i = expect(text, skip_ws(text, i), b':')?;
        i = check_value(text, skip_ws(text, i), depth)?;
        i = skip_ws(text, i);
        match text.get(i) {
            Some(b',') => i = skip_ws(text, i + 1),
            Some(b'}') => return Ok(i + 1),
            Some(&b) => return Err(err(JsonErrorKind::UnexpectedByte(b), i)),
            None => return Err(err(JsonErrorKind::UnexpectedEnd, i)),
        }
    }
}

fn check_array(text: &[u8], pos: usize, depth: usize) -> Result<usize, JsonError> {
    if depth > MAX_DEPTH {
        return Err(err(JsonErrorKind::TooDeep, pos));
    }
    let mut i = skip_ws(text, pos + 1);
    if text.get(i) == Some(&b']') {
        return Ok(i + 1);
    }
    loop {
        i = check_value(text, i, depth)?;
        i = skip_ws(text, i);
        match text.get(i) {
            Some(b',') => i = skip_ws(text, i + 1),
            Some(b']') => return Ok(i + 1),
            Some(&b) => return Err(err(JsonErrorKind::UnexpectedByte(b), i)),
            None => return Err(err(JsonErrorKind::UnexpectedEnd, i)),
        }
    }
}

/// A checked JSON number as a correctly rounded float, in integer
/// arithmetic (see [`Value::as_f64_compact`]).
fn compact_f64(text: &[u8]) -> Option<f64> {
    let (negative, text) = match text {
        [b'-', rest @ ..] => (true, rest),
        _ => (false, text),
    };
    let (mut mantissa, mut scale) = (0u64, 0i32);
    let mut rest = text;
    let mut fraction = false;
    while let Some((&c, after)) = rest.split_first() {
        match c {
            b'0'..=b'9' => match mantissa.checked_mul(10) {
                Some(m) if m.checked_add(u64::from(c - b'0')).is_some() => {
                    mantissa = m + u64::from(c - b'0');
                    scale -= i32::from(fraction);
                }
                // Trailing zeros beyond 19 digits change nothing.
                _ if c == b'0' => scale += i32::from(!fraction),
                _ => return None,
            },
            b'.' => fraction = true,
            _ => break,
        }
        rest = after;
    }
    if let [b'e' | b'E', exponent @ ..] = rest {
        let exponent = core::str::from_utf8(exponent).ok()?.parse::<i32>().ok()?;
        scale = scale.checked_add(exponent)?;
    }
    let value = if mantissa == 0 {
        0.0
    } else if scale >= 0 {
        // Exact in 128 bits, then rounded once.
        let power = 10u128.checked_pow(scale.unsigned_abs())?;
        u128::from(mantissa).checked_mul(power)? as f64
    } else {
        // mantissa / 10^k as a quotient of at least 64 bits, the remainder
        // kept as a sticky bit, so that the one rounding to 53 bits is
        // correct; then scaled by an exact power of two.
        let power = 10u128.checked_pow(scale.unsigned_abs())?;
        let power = u64::try_from(power).ok()?;
        let shift = mantissa.leading_zeros();
        let top = u128::from(mantissa << shift) << 64;
        let (q, r) = (top / u128::from(power), top % u128::from(power));
        let q = q | u128::from(r != 0);
        let exp = 1023 - i64::from(64 + shift);
        (q as f64) * f64::from_bits(u64::try_from(exp).ok()? << 52)
    };
    Some(if negative { -value } else { value })
}

#[cfg(test)]
// Tests index fixtures they built themselves.
#[allow(clippy::indexing_slicing)]
mod tests {
    use super::*;

    #[test]
    fn the_eight_byte_scan_finds_every_special_byte_at_every_position() {
        for special in [b'"', b'\\', 0x00, 0x1f, b'\n'] {
            for at in 0..8 {
                for fill in [b'a', b' ', 0x7f, 0x80, 0xff, 0x21] {
                    let mut bytes = [fill; 8];
                    bytes[at] = special;
                    assert!(
                        has_special(u64::from_le_bytes(bytes)),
                        "{special:#x} at {at}"
                    );
                }
            }
        }
        for fill in [b'a', b' ', 0x7f, 0x80, 0xe6, 0xff, b'/'] {
            assert!(!has_special(u64::from_le_bytes([fill; 8])), "{fill:#x}");
        }
        // Strings of every length around the chunk size end at their quote.
        for len in 0..40 {
            let mut text = b"\"".to_vec();
            text.extend(core::iter::repeat_n(b'x', len));
            text.extend_from_slice(b"\"tail");
            assert_eq!(check_string(&text, 0), Ok(len + 2));
            let mut bad = text.clone();
            if len > 0 {
                bad[1 + len / 2] = 0x01;
                assert!(check_string(&bad, 0).is_err(), "control byte in {len}");
            }
        }
    }

    #[test]
    fn escapes_in_strings_are_decoded_including_surrogate_pairs() {
        let v = Value::parse(br#"{"t":"a\/b\n\u00e9\ud83d\ude00\"\\"}"#).unwrap();
        let s = v.get("t").unwrap().as_str().unwrap();
        let mut buf = [0u8; 32];
        assert_eq!(s.decode_into(&mut buf).unwrap(), "a/b\n\u{e9}\u{1f600}\"\\");
        assert!(s.eq_str("a/b\n\u{e9}\u{1f600}\"\\"));
        assert!(!s.eq_str("a/b"));
        assert_eq!(s.as_unescaped(), None);
    }

    #[test]
    fn lone_surrogates_decode_to_the_replacement_character() {
        let v = Value::parse(br#"["\ud800x","\udc00","\ud800\u0041"]"#).unwrap();
        let mut buf = [0u8; 8];
        let decoded: [&str; 3] = ["\u{fffd}x", "\u{fffd}", "\u{fffd}A"];
        for (item, want) in v.items().zip(decoded) {
            let s = item.as_str().unwrap();
            assert_eq!(s.decode_into(&mut buf).unwrap(), want);
        }
    }

    #[test]
    fn numbers_read_as_integers_and_floats() {
        let v = Value::parse(br#"{"n": -1.5e3, "i": 42, "o": {}}"#).unwrap();
        assert_eq!(v.get("n").unwrap().as_f64(), Some(-1500.0));
        // The compact reader gives the float parser's answer.
        for text in [
            "1795304844.44",
            "1795304847.5092041",
            "1795308447.4919195",
            "1795308447.0",
            "0.1",
            "-2.5e-3",
            "12345678901234567890",
            "1E+2",
            "0",
            "9.87654321e-10",
            "1.7976931348623157e20",
            "1795308447.000000000000000000000",
        ] {
            let want: f64 = text.parse().unwrap();
            assert_eq!(compact_f64(text.as_bytes()), Some(want), "{text}");
        }
        // Beyond what it reads exactly: 20 digits, 10^-20 and smaller.
        assert_eq!(compact_f64(b"123456789012345678901"), None);
        assert_eq!(compact_f64(b"4.9406564584124654e-5"), None);
        assert_eq!(compact_f64(b"1e400"), None);
        assert_eq!(compact_f64(b"0e400"), Some(0.0));
        assert_eq!(v.get("n").unwrap().as_i64(), None);
        assert_eq!(v.get("i").unwrap().as_u64(), Some(42));
        assert_eq!(v.get("o").unwrap().entries().count(), 0);
        assert_eq!(v.get("i").unwrap().items().count(), 0);
    }

    #[test]
    fn decoding_into_a_short_buffer_reports_the_required_size() {
        let v = Value::parse(br#""\u00e9x""#).unwrap();
        let mut buf = [0u8; 2];
        assert_eq!(
            v.as_str().unwrap().decode_into(&mut buf),
            Err(InsufficientSize { required: 3 })
        );
    }

    #[test]
    fn keys_with_escapes_match_their_decoded_name() {
        let v = Value::parse(br#"{"re\u0071id":"x","n":[1,-2,{"a":null}]}"#).unwrap();
        assert!(v.get("reqid").is_some());
        let items: heapless::Vec<Value<'_>, 4> =
            v.get("n").unwrap().as_array().unwrap().iter().collect();
        assert_eq!(items[0].as_u64(), Some(1));
        assert_eq!(items[1].as_i64(), Some(-2));
        assert!(items[2].get("a").unwrap().is_null());
    }

    #[test]
    fn malformed_text_is_rejected_with_its_offset() {
        let cases: [(&[u8], JsonErrorKind, usize); 7] = [
            (br#"{"a":1"#, JsonErrorKind::UnexpectedEnd, 6),
            (br#"{"a" 1}"#, JsonErrorKind::UnexpectedByte(b'1'), 5),
            (br#""\x""#, JsonErrorKind::InvalidEscape, 1),
            (br#""\u12g4""#, JsonErrorKind::InvalidUnicode, 1),
            (b"\"a\x01\"", JsonErrorKind::ControlCharacter, 2),
            (b"01", JsonErrorKind::TrailingData, 1),
            (b"{} x", JsonErrorKind::TrailingData, 3),
        ];
        for (text, kind, offset) in cases {
            assert_eq!(
                Value::parse(text),
                Err(JsonError { kind, offset }),
                "{text:?}"
            );
        }
    }

    #[test]
    fn nesting_beyond_the_limit_is_rejected() {
        let deep = [b'['; MAX_DEPTH + 1];
        assert_eq!(
            Value::parse(&deep).unwrap_err().kind,
            JsonErrorKind::TooDeep
        );
    }
}
