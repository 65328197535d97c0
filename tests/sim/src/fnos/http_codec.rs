//! Sans-I/O codecs for the HTTP side of file transfer: the chunked transfer
//! coding and the `multipart/form-data` framing of `POST /upload`, percent
//! encoding (`Trim-Path`, query strings) and the `Content-Disposition` of
//! `GET /multiple-download`. Nothing here reads a socket: bytes go in, and
//! the answer is "need more", "done", or a named fault. The I/O is in
//! [`super::transfer`].
//!
//! The chunked decoder's states, in order for each chunk:
//!
//! - **Size**: reading the `HEX[;extensions]` line; `0` moves to Trailer,
//!   anything else to Data.
//! - **Data**: copying that many bytes out, then DataEnd.
//! - **DataEnd**: the CRLF after the data, then Size again.
//! - **Trailer**: trailer lines up to an empty one, then Done.
//! - **Done**: the body is complete; later bytes are not looked at.

use std::fmt;
use std::ops::Range;

/// Longest chunk-size or trailer line accepted. Real ones are a few bytes;
/// the cap keeps a peer from growing the line buffer without end.
const MAX_LINE: usize = 4096;

/// Why a chunked body could not be decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChunkedError {
    /// A chunk-size line is not a hexadecimal number.
    BadChunkSize,
    /// A chunk's data is not followed by CRLF.
    MissingChunkEnd,
    /// A chunk-size or trailer line is longer than [`MAX_LINE`].
    LineTooLong,
    /// The decoded body would exceed the limit given to [`Chunked::feed`].
    TooLarge {
        /// The limit in bytes.
        limit: u64,
    },
}

impl fmt::Display for ChunkedError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::BadChunkSize => f.write_str("chunk size is not hexadecimal"),
            Self::MissingChunkEnd => f.write_str("chunk data not followed by CRLF"),
            Self::LineTooLong => write!(f, "chunk line longer than {MAX_LINE} bytes"),
            Self::TooLarge { limit } => write!(f, "body larger than {limit} bytes"),
        }
    }
}

/// Whether a decoder has seen the whole body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Progress {
    /// Feed more bytes.
    NeedMore,
    /// The body is complete.
    Done,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ChunkState {
    Size,
    Data(u64),
    DataEnd,
    Trailer,
    Done,
}

/// A decoder for `Transfer-Encoding: chunked` (see the module doc).
#[derive(Debug)]
pub struct Chunked {
    state: ChunkState,
    line: Vec<u8>,
}

impl Default for Chunked {
    fn default() -> Self {
        Self {
            state: ChunkState::Size,
            line: Vec::new(),
        }
    }
}

impl Chunked {
    /// Decode `input`, appending the data to `out`, which may not grow
    /// beyond `limit` bytes.
    pub fn feed(
        &mut self,
        mut input: &[u8],
        out: &mut Vec<u8>,
        limit: u64,
    ) -> Result<Progress, ChunkedError> {
        while !input.is_empty() && self.state != ChunkState::Done {
            if let ChunkState::Data(left) = self.state {
                let n = left.min(input.len() as u64);
                if out.len() as u64 + n > limit {
                    return Err(ChunkedError::TooLarge { limit });
                }
                // `n <= input.len()`, so it fits in usize.
                let (data, rest) = input.split_at(n as usize);
                out.extend_from_slice(data);
                input = rest;
                self.state = if n == left {
                    ChunkState::DataEnd
                } else {
                    ChunkState::Data(left - n)
                };
                continue;
            }
            let Some(line) = self.take_line(&mut input)? else {
                break;
            };
            self.state = match self.state {
                ChunkState::Size => match chunk_size(&line)? {
                    0 => ChunkState::Trailer,
                    size if out.len() as u64 + size > limit => {
                        return Err(ChunkedError::TooLarge { limit });
                    }
                    size => ChunkState::Data(size),
                },
                ChunkState::DataEnd if line.is_empty() => ChunkState::Size,
                ChunkState::DataEnd => return Err(ChunkedError::MissingChunkEnd),
                ChunkState::Trailer if line.is_empty() => ChunkState::Done,
                other => other,
            };
        }
        Ok(if self.state == ChunkState::Done {
            Progress::Done
        } else {
            Progress::NeedMore
        })
    }

    /// The next complete line without its line end, or `None` (the partial
    /// line is kept) when `input` ends first.
    fn take_line(&mut self, input: &mut &[u8]) -> Result<Option<Vec<u8>>, ChunkedError> {
        let newline = input.iter().position(|&b| b == b'\n');
        let take = newline.map_or(input.len(), |at| at + 1);
        if self.line.len() + take > MAX_LINE {
            return Err(ChunkedError::LineTooLong);
        }
        self.line.extend_from_slice(&input[..take]);
        *input = &input[take..];
        if newline.is_none() {
            return Ok(None);
        }
        let mut line = std::mem::take(&mut self.line);
        line.pop();
        if line.last() == Some(&b'\r') {
            line.pop();
        }
        Ok(Some(line))
    }
}

fn chunk_size(line: &[u8]) -> Result<u64, ChunkedError> {
    let text = std::str::from_utf8(line).map_err(|_| ChunkedError::BadChunkSize)?;
    let digits = text.split(';').next().unwrap_or_default().trim();
    u64::from_str_radix(digits, 16).map_err(|_| ChunkedError::BadChunkSize)
}

/// Why a `multipart/form-data` body did not yield the file part.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MultipartError {
    /// No `--boundary` line opens the body.
    NoOpeningDelimiter,
    /// A `--boundary` is followed by something other than CRLF or `--`.
    BadDelimiterLine,
    /// A part's headers do not end with an empty line.
    UnterminatedHeaders,
    /// A part is not closed by a `--boundary` line.
    UnterminatedPart,
    /// No part is the form field of this name.
    NoSuchField(String),
}

impl fmt::Display for MultipartError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NoOpeningDelimiter => f.write_str("multipart body has no opening boundary"),
            Self::BadDelimiterLine => f.write_str("multipart boundary line is malformed"),
            Self::UnterminatedHeaders => f.write_str("multipart part headers do not end"),
            Self::UnterminatedPart => f.write_str("multipart part has no closing boundary"),
            Self::NoSuchField(name) => write!(f, "multipart body has no field `{name}`"),
        }
    }
}

/// The `boundary` parameter of a `multipart/form-data` Content-Type.
pub fn boundary(content_type: &str) -> Option<String> {
    let (kind, params) = content_type.split_once(';')?;
    if !kind.trim().eq_ignore_ascii_case("multipart/form-data") {
        return None;
    }
    let boundary = param(params, "boundary")?;
    // RFC 2046 allows 1 to 70 characters.
    (1..=70).contains(&boundary.len()).then_some(boundary)
}

/// The value of `key` in `; key=value; key2="quoted \" value"` parameters.
fn param(params: &str, key: &str) -> Option<String> {
    let mut rest = params;
    loop {
        rest = rest.trim_start_matches([';', ' ', '\t']);
        let (name, after) = rest.split_once('=')?;
        let (value, next) = if let Some(quoted) = after.strip_prefix('"') {
            let mut value = String::new();
            let mut chars = quoted.char_indices();
            let end = loop {
                match chars.next()? {
                    (_, '\\') => value.push(chars.next()?.1),
                    (at, '"') => break at + 1,
                    (_, c) => value.push(c),
                }
            };
            (value, &quoted[end..])
        } else {
            let end = after.find(';').unwrap_or(after.len());
            (after[..end].trim().to_owned(), &after[end..])
        };
        if name.trim().eq_ignore_ascii_case(key) {
            return Some(value);
        }
        rest = next;
    }
}

/// The first position of `needle` in `hay` at or after `from`.
fn find(hay: &[u8], needle: &[u8], from: usize) -> Option<usize> {
    let (&first, rest) = needle.split_first()?;
    let last_start = hay.len().checked_sub(needle.len())?;
    let mut at = from;
    while at <= last_start {
        let hit = at + hay[at..=last_start].iter().position(|&b| b == first)?;
        if hay[hit + 1..hit + needle.len()] == *rest {
            return Some(hit);
        }
        at = hit + 1;
    }
    None
}

/// The byte range of form field `field`'s content in a complete
/// `multipart/form-data` body. Parts before it are skipped; its own
/// headers (filename, Content-Type) are not needed.
pub fn field_range(
    body: &[u8],
    boundary: &str,
    field: &str,
) -> Result<Range<usize>, MultipartError> {
    let delimiter = format!("--{boundary}");
    let delimiter = delimiter.as_bytes();
    let mut at = if body.starts_with(delimiter) {
        0
    } else {
        let mut crlf_delimiter = b"\r\n".to_vec();
        crlf_delimiter.extend_from_slice(delimiter);
        find(body, &crlf_delimiter, 0).ok_or(MultipartError::NoOpeningDelimiter)? + 2
    };
    loop {
        let after = &body[at + delimiter.len()..];
        if after.starts_with(b"--") {
            return Err(MultipartError::NoSuchField(field.to_owned()));
        }
        // Transport padding (spaces, tabs) may precede the CRLF.
        let padding = after
            .iter()
            .take_while(|b| matches!(b, b' ' | b'\t'))
            .count();
        if !after[padding..].starts_with(b"\r\n") {
            return Err(MultipartError::BadDelimiterLine);
        }
        let line_end = at + delimiter.len() + padding;
        let headers_end =
            find(body, b"\r\n\r\n", line_end).ok_or(MultipartError::UnterminatedHeaders)?;
        let headers = body.get(line_end + 2..headers_end).unwrap_or_default();
        let data_start = headers_end + 4;
        let mut closing = b"\r\n".to_vec();
        closing.extend_from_slice(delimiter);
        let data_end = find(body, &closing, data_start).ok_or(MultipartError::UnterminatedPart)?;
        if part_name(headers).as_deref() == Some(field) {
            return Ok(data_start..data_end);
        }
        at = data_end + 2;
    }
}

/// The `name` of a part from its `Content-Disposition: form-data; name=...`.
fn part_name(headers: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(headers);
    let value = text.split("\r\n").find_map(|line| {
        let (name, value) = line.split_once(':')?;
        name.trim()
            .eq_ignore_ascii_case("content-disposition")
            .then(|| value.to_owned())
    })?;
    let (kind, params) = value.split_once(';')?;
    if !kind.trim().eq_ignore_ascii_case("form-data") {
        return None;
    }
    param(params, "name")
}

/// Decode `%XX` escapes; `None` for a bad escape or a result that is not
/// UTF-8. (`+` stays `+`: these are paths, not form-encoded queries.)
pub fn percent_decode(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes.get(i + 1..i + 3)?;
            if !hex.iter().all(u8::is_ascii_hexdigit) {
                return None;
            }
            let hex = std::str::from_utf8(hex).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// The value of `key` in a query string `a=1&key=v`, percent-decoded.
pub fn query_param(query: &str, key: &str) -> Option<String> {
    query
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .find(|(k, _)| *k == key)
        .and_then(|(_, v)| percent_decode(v))
}

/// `Content-Disposition` for a download named `name`: a quoted ASCII
/// `filename`, plus the exact UTF-8 name as RFC 5987 `filename*` when the
/// name is not plain ASCII.
pub fn content_disposition(name: &str) -> String {
    let plain: String = name
        .chars()
        .map(|c| match c {
            ' '..='~' => c,
            _ => '_',
        })
        .collect();
    let quoted = plain.replace('\\', "\\\\").replace('"', "\\\"");
    if plain == name {
        return format!("attachment; filename=\"{quoted}\"");
    }
    let mut encoded = String::new();
    for byte in name.bytes() {
        // RFC 5987 attr-char: sent as is; everything else is %XX.
        if byte.is_ascii_alphanumeric() || b"!#$&+-.^_`|~".contains(&byte) {
            encoded.push(char::from(byte));
        } else {
            encoded.push_str(&format!("%{byte:02X}"));
        }
    }
    format!("attachment; filename=\"{quoted}\"; filename*=UTF-8''{encoded}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode_in_pieces(body: &[u8], piece: usize) -> Result<(Vec<u8>, Progress), ChunkedError> {
        let mut decoder = Chunked::default();
        let mut out = Vec::new();
        let mut progress = Progress::NeedMore;
        for chunk in body.chunks(piece) {
            progress = decoder.feed(chunk, &mut out, 1 << 20)?;
        }
        Ok((out, progress))
    }

    #[test]
    fn chunked_body_decodes_whatever_the_read_sizes() {
        let body = b"5;ext=1\r\nhello\r\n7\r\n, world\r\n0\r\nX-Trailer: 1\r\n\r\nleftover";
        for piece in 1..body.len() {
            let (out, progress) = decode_in_pieces(body, piece).expect("decodes");
            assert_eq!(out, b"hello, world", "pieces of {piece}");
            assert_eq!(progress, Progress::Done);
        }
    }

    #[test]
    fn chunked_body_needs_more_until_the_last_chunk() {
        let (out, progress) = decode_in_pieces(b"3\r\nabc\r\n", 4).expect("decodes");
        assert_eq!(
            (out.as_slice(), progress),
            (&b"abc"[..], Progress::NeedMore)
        );
    }

    #[test]
    fn chunked_faults_are_named() {
        assert_eq!(
            decode_in_pieces(b"zz\r\n", 8).unwrap_err(),
            ChunkedError::BadChunkSize
        );
        assert_eq!(
            decode_in_pieces(b"3\r\nabcX\r\n", 8).unwrap_err(),
            ChunkedError::MissingChunkEnd
        );
        let mut out = Vec::new();
        assert_eq!(
            Chunked::default().feed(b"10\r\n", &mut out, 15),
            Err(ChunkedError::TooLarge { limit: 15 })
        );
        assert_eq!(
            decode_in_pieces(&[b'1'; MAX_LINE + 1], 64).unwrap_err(),
            ChunkedError::LineTooLong
        );
    }

    #[test]
    fn boundary_comes_from_the_content_type_quoted_or_not() {
        assert_eq!(
            boundary("multipart/form-data; boundary=----WebKitFormBoundaryx7"),
            Some("----WebKitFormBoundaryx7".into())
        );
        assert_eq!(
            boundary("Multipart/Form-Data;charset=utf-8; boundary=\"a b;c\""),
            Some("a b;c".into())
        );
        assert_eq!(boundary("application/octet-stream"), None);
        assert_eq!(boundary("multipart/form-data"), None);
    }

    #[test]
    fn multipart_finds_the_named_field_after_others() {
        let body =
            b"preamble\r\n--XX\r\nContent-Disposition: form-data; name=\"other\"\r\n\r\nv\r\n\
--XX  \r\nContent-Disposition: form-data; name=\"trim-upload-file\"; filename=\"a;b.bin\"\r\n\
Content-Type: application/octet-stream\r\n\r\n\r\n--X\r\n\r\n--XX--\r\n";
        let range = field_range(body, "XX", "trim-upload-file").expect("found");
        assert_eq!(&body[range], b"\r\n--X\r\n");
    }

    #[test]
    fn multipart_faults_are_named() {
        let field = "f";
        assert_eq!(
            field_range(b"nothing", "XX", field),
            Err(MultipartError::NoOpeningDelimiter)
        );
        assert_eq!(
            field_range(b"--XXjunk", "XX", field),
            Err(MultipartError::BadDelimiterLine)
        );
        assert_eq!(
            field_range(b"--XX\r\nContent-Disposition: form-data", "XX", field),
            Err(MultipartError::UnterminatedHeaders)
        );
        assert_eq!(
            field_range(
                b"--XX\r\nContent-Disposition: form-data; name=f\r\n\r\ndata",
                "XX",
                field
            ),
            Err(MultipartError::UnterminatedPart)
        );
        assert_eq!(
            field_range(b"--XX--\r\n", "XX", field),
            Err(MultipartError::NoSuchField("f".into()))
        );
    }

    #[test]
    fn percent_decoding_is_strict() {
        assert_eq!(
            percent_decode("vol1%2F1000%2F%E6%8A%A5%20x.pdf").as_deref(),
            Some("vol1/1000/报 x.pdf")
        );
        assert_eq!(percent_decode("a+b").as_deref(), Some("a+b"));
        assert_eq!(percent_decode("100%"), None);
        assert_eq!(percent_decode("%zz"), None);
        assert_eq!(percent_decode("%+1"), None);
        assert_eq!(percent_decode("%FF"), None);
    }

    #[test]
    fn disposition_adds_rfc5987_for_non_ascii_names() {
        assert_eq!(
            content_disposition("a \"b\".txt"),
            r#"attachment; filename="a \"b\".txt""#
        );
        assert_eq!(
            content_disposition("报告 1.pdf"),
            "attachment; filename=\"__ 1.pdf\"; filename*=UTF-8''%E6%8A%A5%E5%91%8A%201.pdf"
        );
    }
}
