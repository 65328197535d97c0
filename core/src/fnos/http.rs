//! fnOS's HTTP side, beside the WebSocket: the access-code gate, file
//! upload (`POST /upload`) and download (`GET /multiple-download`).
//!
//! Nothing here reads a socket. Request heads and multipart framing are
//! written into caller buffers (an [`HeadError::BufferTooSmall`] names the
//! size needed; the writers count on past the end so one retry is
//! enough), and answers are checked from bytes or from a parsed status and
//! header. The adapter moves the bytes and streams the file between
//! [`Multipart::write_head`] and [`Multipart::write_tail`].
//!
//! The rules, in the protocol's words:
//!
//! - **Access code.** An upgrade answered `401` with
//!   `X-Trim-Safe-Code-Challenge` ([`is_access_challenge`]) wants
//!   `GET /access_code_verify` with `x-access-code: base64(code)` and
//!   `x-access-source: web` ([`write_access_code_request`]); a `200`
//!   answer's `Set-Cookie`, up to its first `;`, is the cookie every later
//!   request of that origin carries ([`read_access_cookie`],
//!   [`access_cookie`]).
//! - **Upload.** `file.checkUpload {path, size, overwrite}`
//!   ([`check_upload_request`]) answers an `uploadName`; the body is one
//!   multipart field `trim-upload-file` ([`Multipart`]), and the head
//!   carries `Trim-Path` (folder + `/` + uploadName, encoded as
//!   JavaScript's `encodeURI` does: [`write_trim_path`]), `Trim-Sign` =
//!   base64(HMAC-SHA256(S, Trim-Path as sent)) (what
//!   [`Session::signature`](super::Session::signature) returns for those
//!   bytes), `Trim-Token`, `Trim-Overwrite` and `Trim-Mtim`
//!   ([`UploadHead`]).
//! - **Download.** The URL `file.download` answers must stay on the
//!   WebSocket's host and never drop TLS ([`check_download_url`]); the
//!   body must announce its end and match the size the listing gives
//!   ([`DownloadSize`]).
//! - **Redirects.** A credential follows a redirect only to the same host,
//!   never from `wss` down to `ws`, and to another port only on the step up
//!   from `ws` to `wss` ([`check_redirect`]).
//!
//! Secrets (access code, cookie, token, signature) are only borrowed: the
//! core keeps no copy, `Debug` hides them, and the caller wipes the buffers
//! it wrote them into once they are sent.
//!
//! ```
//! use naslink_core::fnos::http::{self, Multipart, Overwrite, UploadHead};
//! use naslink_core::ws::Url;
//!
//! let origin = Url::parse("ws://nas:5666/websocket?type=main").unwrap();
//! let mut path = [0u8; 64];
//! let n = http::write_trim_path("vol1/1000", "a b.txt", &mut path).unwrap();
//! let trim_path = core::str::from_utf8(&path[..n]).unwrap();
//! assert_eq!(trim_path, "vol1/1000/a%20b.txt");
//!
//! // `sign` is base64(HMAC-SHA256(S, trim_path)) from the logged-in session.
//! let head = UploadHead {
//!     trim_path,
//!     token: "TOKEN",
//!     sign: "SIGN",
//!     overwrite: Overwrite::Replace,
//!     mtime: 1_700_000_000,
//!     cookie: None,
//! };
//! let part = Multipart::new([7; 16], "a b.txt");
//! let mut out = [0u8; 512];
//! let n = head.write(&origin, &part, 5, &mut out).unwrap();
//! let text = core::str::from_utf8(&out[..n]).unwrap();
//! assert!(text.starts_with("POST /upload HTTP/1.1\r\nHost: nas:5666\r\n"));
//! assert!(text.contains("\r\nTrim-Path: vol1/1000/a%20b.txt\r\n"));
//! assert!(text.ends_with("Connection: close\r\n\r\n"));
//!
//! // Then: the part head, the file's 5 bytes, the tail.
//! let mut framing = [0u8; 256];
//! let head_len = part.write_head(&mut framing).unwrap();
//! let tail_len = part.write_tail(&mut framing).unwrap();
//! assert_eq!(part.body_len(5), (head_len + 5 + tail_len) as u64);
//! ```
#![deny(clippy::indexing_slicing)]

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

use super::request::{Param, Request};
use crate::ws::Url;

/// The header of a `401` that means "access code required".
pub const ACCESS_CHALLENGE_HEADER: &str = "X-Trim-Safe-Code-Challenge";

/// The request target that trades the access code for a cookie.
pub const ACCESS_CODE_PATH: &str = "/access_code_verify";

/// The request target of uploads.
pub const UPLOAD_PATH: &str = "/upload";

/// The WebSocket command that names an upload's file.
pub const CHECK_UPLOAD: &str = "file.checkUpload";

/// The multipart field the file travels in.
pub const UPLOAD_FIELD: &str = "trim-upload-file";

/// Most response headers [`read_access_cookie`] looks through; an answer
/// with more is refused rather than searched in a larger table.
pub const MAX_ACCESS_HEADERS: usize = 32;

/// A request head or framing could not be written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeadError {
    /// The output buffer is too small; `required` bytes would do.
    BufferTooSmall {
        /// Bytes needed for the whole head.
        required: usize,
    },
    /// A header value (token, cookie, path...) contains a line break or
    /// another control character, which would forge headers.
    InvalidHeader,
}

impl From<crate::InsufficientSize> for HeadError {
    fn from(crate::InsufficientSize { required }: crate::InsufficientSize) -> Self {
        HeadError::BufferTooSmall { required }
    }
}

/// Bytes appended to a caller buffer. Past the end it keeps counting
/// instead of writing, so the error can name the size needed.
struct Out<'b> {
    buf: &'b mut [u8],
    len: usize,
    invalid: bool,
}

impl<'b> Out<'b> {
    fn new(buf: &'b mut [u8]) -> Self {
        Out {
            buf,
            len: 0,
            invalid: false,
        }
    }

    fn bytes(&mut self, bytes: &[u8]) -> &mut Self {
        let end = self.len.saturating_add(bytes.len());
        if let Some(dst) = self.buf.get_mut(self.len..end) {
            dst.copy_from_slice(bytes);
        }
        self.len = end;
        self
    }

    fn text(&mut self, text: &str) -> &mut Self {
        self.bytes(text.as_bytes())
    }

    fn number(&mut self, mut n: u64) -> &mut Self {
        let mut digits = [0u8; 20];
        let mut at = digits.len();
        loop {
            at -= 1;
            if let Some(d) = digits.get_mut(at) {
                *d = b'0' + (n % 10) as u8;
            }
            n /= 10;
            if n == 0 {
                break;
            }
        }
        self.bytes(digits.get(at..).unwrap_or_default())
    }

    /// `name: value\r\n`, refusing values that could end the line.
    fn header(&mut self, name: &str, value: &str) -> &mut Self {
        self.invalid |= !is_header_value(value);
        self.text(name).text(": ").text(value).text("\r\n")
    }

    /// The request line and `Host` (with the port only when the URL names
    /// one, as browsers do).
    fn request_line(&mut self, method: &str, origin: &Url<'_>, target: &str) -> &mut Self {
        self.text(method).text(" ");
        if !target.starts_with('/') {
            self.text("/");
        }
        self.invalid |= !is_header_value(target) || target.contains(' ');
        self.text(target)
            .text(" HTTP/1.1\r\nHost: ")
            .text(origin.host);
        if origin.explicit_port {
            self.text(":").number(u64::from(origin.port));
        }
        self.text("\r\n")
    }

    /// The last header and the empty line: one request per connection.
    fn end_head(&mut self) -> &mut Self {
        self.text("Connection: close\r\n\r\n")
    }

    fn finish(&self) -> Result<usize, HeadError> {
        if self.invalid {
            Err(HeadError::InvalidHeader)
        } else if self.len > self.buf.len() {
            Err(HeadError::BufferTooSmall { required: self.len })
        } else {
            Ok(self.len)
        }
    }
}

/// No line break or other control character (tab is allowed in HTTP).
fn is_header_value(value: &str) -> bool {
    value
        .bytes()
        .all(|b| b == b'\t' || (b >= 0x20 && b != 0x7F))
}

// ---------------------------------------------------------------- access code

/// Whether an upgrade answer is the access-code gate: `401` with
/// [`ACCESS_CHALLENGE_HEADER`]. `has_header` says whether the answer
/// carries a header (names compare case-insensitively).
pub fn is_access_challenge(status: u16, has_header: impl FnOnce(&str) -> bool) -> bool {
    status == 401 && has_header(ACCESS_CHALLENGE_HEADER)
}

/// Write `GET /access_code_verify` for `origin` (the WebSocket's own host:
/// the code goes nowhere else) with `x-access-code: base64(code)`.
///
/// `out` then holds the code in base64: wipe it once it is sent.
pub fn write_access_code_request(
    origin: &Url<'_>,
    code: &str,
    out: &mut [u8],
) -> Result<usize, HeadError> {
    let mut o = Out::new(out);
    o.request_line("GET", origin, ACCESS_CODE_PATH)
        .text("x-access-code: ");
    let encoded = base64::encoded_len(code.len(), true).unwrap_or(usize::MAX);
    let end = o.len.saturating_add(encoded);
    if let Some(dst) = o.buf.get_mut(o.len..end) {
        // The slot is exactly the encoded length: it cannot fail.
        let _ = STANDARD.encode_slice(code.as_bytes(), dst);
    }
    o.len = end;
    o.text("\r\n")
        .header("x-access-source", "web")
        .end_head()
        .finish()
}

/// The access-code cookie (`name=value`), borrowed from the answer.
/// `Debug` hides it.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Cookie<'a>(&'a str);

impl<'a> Cookie<'a> {
    /// The `name=value` pair, as the `Cookie` header carries it.
    pub fn as_str(&self) -> &'a str {
        self.0
    }
}

impl core::fmt::Debug for Cookie<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("Cookie(<hidden>)")
    }
}

/// Why the access-code answer gave no cookie: each means the code is
/// missing or wrong, or the server is not fnOS.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AccessRefused {
    /// The answer is not an HTTP response head (or has more than
    /// [`MAX_ACCESS_HEADERS`] headers).
    Malformed,
    /// The answer's status is not `200`.
    Status(u16),
    /// A `200` without a usable `Set-Cookie`.
    NoCookie,
}

/// The cookie of an access-code answer from its status and its first
/// `Set-Cookie` header (for adapters that parse heads themselves).
pub fn access_cookie(status: u16, set_cookie: Option<&[u8]>) -> Result<Cookie<'_>, AccessRefused> {
    if status != 200 {
        return Err(AccessRefused::Status(status));
    }
    let value = set_cookie
        .and_then(|v| core::str::from_utf8(v).ok())
        .ok_or(AccessRefused::NoCookie)?;
    let pair = value.split(';').next().unwrap_or_default().trim();
    if pair.is_empty() || !is_header_value(pair) {
        return Err(AccessRefused::NoCookie);
    }
    Ok(Cookie(pair))
}

/// Parse an access-code answer's head from the bytes received so far:
/// `Ok(None)` while the head is incomplete, the cookie once it is there.
pub fn read_access_cookie(head: &[u8]) -> Result<Option<Cookie<'_>>, AccessRefused> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_ACCESS_HEADERS];
    let mut response = httparse::Response::new(&mut headers);
    match response.parse(head) {
        Ok(httparse::Status::Complete(_)) => {}
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(_) => return Err(AccessRefused::Malformed),
    }
    let status = response.code.ok_or(AccessRefused::Malformed)?;
    let set_cookie = response
        .headers
        .iter()
        .find(|h| h.name.eq_ignore_ascii_case("set-cookie"))
        .map(|h| h.value);
    access_cookie(status, set_cookie).map(Some)
}

// ------------------------------------------------------------------ redirects

/// Why a credential may not follow a URL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OriginRefused {
    /// It names another host.
    OtherHost,
    /// It goes from TLS down to plain text.
    Downgrade,
    /// It names another port on the same scheme.
    OtherPort,
}

impl OriginRefused {
    /// The rule, in words.
    pub fn why(self) -> &'static str {
        match self {
            OriginRefused::OtherHost => "it names another host",
            OriginRefused::Downgrade => "it goes from TLS down to plain text",
            OriginRefused::OtherPort => "it names another port on the same scheme",
        }
    }
}

/// Whether a credential (access-code cookie, token) may follow from
/// `current` to `next`: the same host, never `wss` to `ws`, and the same
/// port unless the scheme steps up from `ws` to `wss` (fnOS moves from
/// 5666 to 5667 when it forces HTTPS).
pub fn check_redirect(current: &Url<'_>, next: &Url<'_>) -> Result<(), OriginRefused> {
    if !current.host.eq_ignore_ascii_case(next.host) {
        return Err(OriginRefused::OtherHost);
    }
    match (current.secure, next.secure) {
        (true, false) => Err(OriginRefused::Downgrade),
        (false, true) => Ok(()),
        _ if current.port != next.port => Err(OriginRefused::OtherPort),
        _ => Ok(()),
    }
}

// ------------------------------------------------------------------- download

/// Why a download URL is not fetched.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UrlRefused<'a> {
    /// Not an `http(s)://` URL or a path, or it carries user info, a
    /// fragment, whitespace or control characters.
    Unusable,
    /// It leaves the WebSocket's origin ([`check_redirect`]'s rules).
    Origin {
        /// Where it points (`secure`, `host`, `port` say the origin; the
        /// resource may carry a token: do not print it).
        url: Url<'a>,
        /// The rule it breaks.
        why: OriginRefused,
    },
}

/// A checked download location: where to connect and what to ask for.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct DownloadUrl<'a> {
    origin: Url<'a>,
}

impl core::fmt::Debug for DownloadUrl<'_> {
    // The resource carries the download token.
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("DownloadUrl")
            .field("secure", &self.origin.secure)
            .field("host", &self.origin.host)
            .field("port", &self.origin.port)
            .finish_non_exhaustive()
    }
}

impl<'a> DownloadUrl<'a> {
    /// Where to connect (`secure` means TLS); its `resource` is the
    /// request target, perhaps without its leading `/`, which
    /// [`write_request`](Self::write_request) adds.
    pub fn origin(&self) -> Url<'a> {
        self.origin
    }

    /// Write the `GET` with `cookie` (the access-code cookie of this
    /// origin, when the server has a gate). `out` then holds the download
    /// token and the cookie: wipe it once it is sent.
    pub fn write_request(&self, cookie: Option<&str>, out: &mut [u8]) -> Result<usize, HeadError> {
        let mut o = Out::new(out);
        o.request_line("GET", &self.origin, self.origin.resource)
            .header("Accept", "*/*");
        if let Some(cookie) = cookie {
            o.header("Cookie", cookie);
        }
        o.end_head().finish()
    }
}

/// Check the URL `file.download` answered against the WebSocket's URL:
/// a path stays on the WebSocket's origin (`ws` read as `http`, `wss` as
/// `https`); an absolute `http(s)://` URL must keep the host and never
/// drop TLS, as for redirects.
pub fn check_download_url<'a>(
    websocket: &Url<'a>,
    location: &'a str,
) -> Result<DownloadUrl<'a>, UrlRefused<'a>> {
    if !is_header_value(location) || location.contains([' ', '\t', '#']) {
        return Err(UrlRefused::Unusable);
    }
    let Some(url) = absolute_http(location)? else {
        return Ok(DownloadUrl {
            origin: Url {
                resource: location,
                ..*websocket
            },
        });
    };
    check_redirect(websocket, &url).map_err(|why| UrlRefused::Origin { url, why })?;
    Ok(DownloadUrl { origin: url })
}

/// An `http://` or `https://` URL split like a WebSocket URL; `None` for
/// a path.
fn absolute_http(location: &str) -> Result<Option<Url<'_>>, UrlRefused<'_>> {
    let scheme_end = location.find("://").unwrap_or(0);
    let (scheme, rest) = match location.split_at_checked(scheme_end) {
        Some((scheme, rest)) if !scheme.is_empty() => (scheme, rest.get(3..).unwrap_or("")),
        _ => return Ok(None),
    };
    let secure = if scheme.eq_ignore_ascii_case("https") {
        true
    } else if scheme.eq_ignore_ascii_case("http") {
        false
    } else {
        return Ok(None);
    };
    let split = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, resource) = rest.split_at_checked(split).ok_or(UrlRefused::Unusable)?;
    if authority.contains('@') {
        return Err(UrlRefused::Unusable);
    }
    let (host, port) = split_authority(authority).ok_or(UrlRefused::Unusable)?;
    Ok(Some(Url {
        secure,
        host,
        port: port.unwrap_or(if secure { 443 } else { 80 }),
        explicit_port: port.is_some(),
        resource,
    }))
}

/// `host[:port]` or `[v6][:port]`: the host (brackets kept) and the port
/// when one is named; `None` when either is unusable.
fn split_authority(authority: &str) -> Option<(&str, Option<u16>)> {
    let (host, port) = if authority.starts_with('[') {
        let close = authority.find(']')?;
        let (host, rest) = authority.split_at_checked(close + 1)?;
        match rest {
            "" => (host, None),
            r => (host, Some(r.strip_prefix(':')?)),
        }
    } else {
        match authority.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (authority, None),
        }
    };
    if host.is_empty() || host == "[]" {
        return None;
    }
    match port {
        None => Some((host, None)),
        Some(p) => match p.parse::<u16>() {
            Ok(0) | Err(_) => None,
            Ok(port) => Some((host, Some(port))),
        },
    }
}

/// Why a download's body is not saved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DownloadError {
    /// Neither `Content-Length` nor chunked: a cut connection could not be
    /// told from the end.
    Unframed,
    /// The answer announces another size than the listing gives.
    AnnouncedOtherSize {
        /// The `Content-Length`.
        announced: u64,
        /// The listing's size.
        listed: u64,
    },
    /// More bytes arrived than the listing gives.
    TooLong {
        /// The listing's size.
        listed: u64,
    },
    /// The body ended before the listing's size.
    TooShort {
        /// Bytes received.
        received: u64,
        /// The listing's size.
        listed: u64,
    },
}

/// The size checks of one download: the body must announce its end and
/// match the size `file.ls` lists for the file, when it lists one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DownloadSize {
    listed: Option<u64>,
    received: u64,
}

impl DownloadSize {
    /// Checks against `listed` (`None` when the listing gave no size:
    /// then only the framing is checked).
    pub fn new(listed: Option<u64>) -> Self {
        DownloadSize {
            listed,
            received: 0,
        }
    }

    /// Check a `200` answer's head: `delimited` is whether its end is
    /// announced (`Content-Length`, chunked); `content_length` is the
    /// announced size. Returns the size to expect, when known.
    pub fn check_head(
        &self,
        delimited: bool,
        content_length: Option<u64>,
    ) -> Result<Option<u64>, DownloadError> {
        if !delimited {
            return Err(DownloadError::Unframed);
        }
        match (self.listed, content_length) {
            (Some(listed), Some(announced)) if listed != announced => {
                Err(DownloadError::AnnouncedOtherSize { announced, listed })
            }
            (listed, announced) => Ok(announced.or(listed)),
        }
    }

    /// Count `n` more body bytes; fails as soon as the body outgrows the
    /// listing, before those bytes are kept. Returns the total so far.
    pub fn received(&mut self, n: usize) -> Result<u64, DownloadError> {
        let total = self.received.saturating_add(n as u64);
        if let Some(listed) = self.listed.filter(|&l| total > l) {
            return Err(DownloadError::TooLong { listed });
        }
        self.received = total;
        Ok(total)
    }

    /// The body ended (its framing says complete): the size, or the
    /// shortfall against the listing.
    pub fn finish(&self) -> Result<u64, DownloadError> {
        match self.listed {
            Some(listed) if listed != self.received => Err(DownloadError::TooShort {
                received: self.received,
                listed,
            }),
            _ => Ok(self.received),
        }
    }
}

// --------------------------------------------------------------------- upload

/// What `file.checkUpload` should do when the target already exists.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Overwrite {
    /// Refuse the upload (the server answers an error).
    Skip,
    /// Replace the existing file.
    Replace,
    /// Keep both: the server picks a new name for the upload.
    #[default]
    KeepBoth,
}

impl Overwrite {
    /// The protocol's number (0, 1, 2).
    pub fn code(self) -> u8 {
        match self {
            Overwrite::Skip => 0,
            Overwrite::Replace => 1,
            Overwrite::KeepBoth => 2,
        }
    }
}

/// A remote file path split into folder and name (`vol1/1000/a.txt` →
/// `vol1/1000`, `a.txt`); `None` unless both are there.
pub fn split_remote_path(remote: &str) -> Option<(&str, &str)> {
    remote
        .rsplit_once('/')
        .filter(|(folder, name)| !folder.is_empty() && !name.is_empty())
}

/// `file.checkUpload {path, size, overwrite}` for the file to be stored
/// at `path` (a full remote path).
pub fn check_upload_request(path: &str, size: u64, overwrite: Overwrite) -> Request<'_> {
    Request::new(CHECK_UPLOAD)
        .param("path", Param::Str(path))
        .param("size", Param::Int(i64::try_from(size).unwrap_or(i64::MAX)))
        .param("overwrite", Param::Int(i64::from(overwrite.code())))
}

/// Whether the `uploadName` `file.checkUpload` answered can name a file
/// in the folder: not empty, no `/`.
pub fn is_usable_upload_name(name: &str) -> bool {
    !name.is_empty() && !name.contains('/')
}

/// Write `Trim-Path` for `folder` + `/` + `upload_name`, percent-encoded
/// as JavaScript's `encodeURI` does (the fnOS web UI uses it): letters,
/// digits and `;,/?:@&=+$-_.!~*'()#` stay, every other byte of the UTF-8
/// text becomes `%XX`. `Trim-Sign` signs exactly these bytes.
pub fn write_trim_path(
    folder: &str,
    upload_name: &str,
    out: &mut [u8],
) -> Result<usize, HeadError> {
    let mut o = Out::new(out);
    let text = folder.bytes().chain([b'/']).chain(upload_name.bytes());
    for b in text {
        if b.is_ascii_alphanumeric() || b";,/?:@&=+$-_.!~*'()#".contains(&b) {
            o.bytes(&[b]);
        } else {
            o.bytes(&[b'%', hex_digit(b >> 4), hex_digit(b & 0xF)]);
        }
    }
    o.finish()
}

fn hex_digit(nibble: u8) -> u8 {
    match nibble {
        0..=9 => b'0' + nibble,
        _ => b'A' + (nibble - 10),
    }
}

/// Length of a boundary: `naslink-` and 32 hex digits.
pub const BOUNDARY_LEN: usize = 40;

/// The multipart framing of an upload body: one field, [`UPLOAD_FIELD`],
/// holding the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Multipart<'a> {
    boundary: [u8; BOUNDARY_LEN],
    file_name: &'a str,
}

impl<'a> Multipart<'a> {
    /// Framing for the file `file_name` (the `uploadName`), its boundary
    /// made of 16 random bytes so the file's content cannot end the part.
    pub fn new(random: [u8; 16], file_name: &'a str) -> Self {
        let mut boundary = [0u8; BOUNDARY_LEN];
        let mut o = Out::new(&mut boundary);
        o.text("naslink-");
        for b in random {
            o.bytes(&[
                hex_digit(b >> 4).to_ascii_lowercase(),
                hex_digit(b & 0xF).to_ascii_lowercase(),
            ]);
        }
        Multipart {
            boundary,
            file_name,
        }
    }

    /// The boundary (ASCII).
    pub fn boundary(&self) -> &str {
        core::str::from_utf8(&self.boundary).unwrap_or_default()
    }

    fn head_into(&self, o: &mut Out<'_>) {
        o.text("--")
            .text(self.boundary())
            .text("\r\nContent-Disposition: form-data; name=\"")
            .text(UPLOAD_FIELD)
            .text("\"; filename=\"");
        // Quotes and line breaks percent-encoded, as browsers do, so the
        // name cannot end the parameter or the header.
        for b in self.file_name.bytes() {
            match b {
                b'"' => o.text("%22"),
                b'\r' => o.text("%0D"),
                b'\n' => o.text("%0A"),
                _ => o.bytes(&[b]),
            };
        }
        o.text("\"\r\nContent-Type: application/octet-stream\r\n\r\n");
    }

    fn tail_into(&self, o: &mut Out<'_>) {
        o.text("\r\n--").text(self.boundary()).text("--\r\n");
    }

    /// Write what precedes the file's bytes.
    pub fn write_head(&self, out: &mut [u8]) -> Result<usize, HeadError> {
        let mut o = Out::new(out);
        self.head_into(&mut o);
        o.finish()
    }

    /// Write what follows the file's bytes.
    pub fn write_tail(&self, out: &mut [u8]) -> Result<usize, HeadError> {
        let mut o = Out::new(out);
        self.tail_into(&mut o);
        o.finish()
    }

    /// The body's `Content-Length` for a file of `file_len` bytes.
    pub fn body_len(&self, file_len: u64) -> u64 {
        let mut o = Out::new(&mut []);
        self.head_into(&mut o);
        self.tail_into(&mut o);
        (o.len as u64).saturating_add(file_len)
    }
}

/// The head of `POST /upload`. `Debug` hides the token, the signature
/// and the cookie.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct UploadHead<'a> {
    /// `Trim-Path`, as [`write_trim_path`] wrote it.
    pub trim_path: &'a str,
    /// `Trim-Token`: the login token.
    pub token: &'a str,
    /// `Trim-Sign`: base64(HMAC-SHA256(S, `trim_path`)).
    pub sign: &'a str,
    /// `Trim-Overwrite`.
    pub overwrite: Overwrite,
    /// `Trim-Mtim`: the file's modification time, seconds since 1970.
    pub mtime: u64,
    /// The access-code cookie of the origin, if it has a gate.
    pub cookie: Option<&'a str>,
}

impl core::fmt::Debug for UploadHead<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("UploadHead")
            .field("trim_path", &self.trim_path)
            .field("overwrite", &self.overwrite)
            .field("mtime", &self.mtime)
            .finish_non_exhaustive()
    }
}

impl UploadHead<'_> {
    /// Write the request head for a body framed by `multipart` around a
    /// file of `file_len` bytes, sent to `origin` (the WebSocket's host).
    /// `out` then holds the token and the cookie: wipe it once it is sent.
    pub fn write(
        &self,
        origin: &Url<'_>,
        multipart: &Multipart<'_>,
        file_len: u64,
        out: &mut [u8],
    ) -> Result<usize, HeadError> {
        let mut o = Out::new(out);
        o.request_line("POST", origin, UPLOAD_PATH)
            .text("Content-Type: multipart/form-data; boundary=")
            .text(multipart.boundary())
            .text("\r\nContent-Length: ")
            .number(multipart.body_len(file_len))
            .text("\r\n")
            .header("Trim-Path", self.trim_path)
            .header("Trim-Sign", self.sign)
            .header("Trim-Token", self.token)
            .text("Trim-Overwrite: ")
            .number(u64::from(self.overwrite.code()))
            .text("\r\nTrim-Mtim: ")
            .number(self.mtime)
            .text("\r\n");
        if let Some(cookie) = self.cookie {
            o.header("Cookie", cookie);
        }
        o.end_head().finish()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::indexing_slicing)]
    use super::*;

    fn text(buf: &[u8], n: usize) -> &str {
        core::str::from_utf8(&buf[..n]).unwrap()
    }

    fn url(s: &str) -> Url<'_> {
        Url::parse(s).unwrap()
    }

    #[test]
    fn the_gate_is_a_401_with_the_challenge_header() {
        assert!(is_access_challenge(401, |h| h == ACCESS_CHALLENGE_HEADER));
        assert!(!is_access_challenge(403, |_| true));
        assert!(!is_access_challenge(401, |_| false));
    }

    #[test]
    fn the_access_code_travels_in_base64_to_the_websockets_host() {
        let mut out = [0u8; 256];
        let n =
            write_access_code_request(&url("ws://nas:5666/websocket"), "1234", &mut out).unwrap();
        assert_eq!(
            text(&out, n),
            "GET /access_code_verify HTTP/1.1\r\nHost: nas:5666\r\nx-access-code: MTIzNA==\r\n\
             x-access-source: web\r\nConnection: close\r\n\r\n"
        );
        let n = write_access_code_request(&url("wss://nas/x"), "", &mut out).unwrap();
        assert!(text(&out, n).starts_with("GET /access_code_verify HTTP/1.1\r\nHost: nas\r\n"));
    }

    #[test]
    fn a_small_buffer_names_the_size_needed() {
        let origin = url("ws://nas:5666/");
        let mut big = [0u8; 256];
        let need = write_access_code_request(&origin, "secret code", &mut big).unwrap();
        for size in [0, 1, 20, 40, need - 1] {
            let mut small = [0u8; 256];
            assert_eq!(
                write_access_code_request(&origin, "secret code", &mut small[..size]),
                Err(HeadError::BufferTooSmall { required: need })
            );
        }
    }

    #[test]
    fn the_cookie_is_the_first_part_of_set_cookie_on_a_200() {
        let head = b"HTTP/1.1 200 OK\r\nSet-Cookie: ac=abc; Path=/; HttpOnly\r\n\r\n";
        assert_eq!(
            read_access_cookie(head).unwrap().unwrap().as_str(),
            "ac=abc"
        );
        assert_eq!(read_access_cookie(&head[..20]), Ok(None));
        assert_eq!(
            read_access_cookie(b"HTTP/1.1 401 No\r\nSet-Cookie: a=b\r\n\r\n"),
            Err(AccessRefused::Status(401))
        );
        assert_eq!(
            read_access_cookie(b"HTTP/1.1 200 OK\r\nSet-Cookie:  ; x\r\n\r\n"),
            Err(AccessRefused::NoCookie)
        );
        assert_eq!(
            read_access_cookie(b"HTTP/1.1 200 OK\r\n\r\n"),
            Err(AccessRefused::NoCookie)
        );
        assert_eq!(
            read_access_cookie(b"NOT HTTP\r\n\r\n"),
            Err(AccessRefused::Malformed)
        );
        assert_eq!(access_cookie(200, Some(b" k=v ")).unwrap().as_str(), "k=v");
    }

    #[test]
    fn debug_hides_cookies_tokens_and_download_tokens() {
        let cookie = access_cookie(200, Some(b"ac=s3cr3t")).unwrap();
        assert!(!format_args!("{cookie:?}").shown().contains("s3cr3t"));
        let head = UploadHead {
            trim_path: "p",
            token: "t0ken",
            sign: "s1gn",
            overwrite: Overwrite::Skip,
            mtime: 0,
            cookie: Some("ac=s3cr3t"),
        };
        let shown = format_args!("{head:?}").shown();
        assert!(!shown.contains("t0ken") && !shown.contains("s1gn") && !shown.contains("s3cr3t"));
        let ws = url("ws://nas:5666/websocket");
        let download = check_download_url(&ws, "/multiple-download?token=s3cr3t").unwrap();
        assert!(!format_args!("{download:?}").shown().contains("s3cr3t"));
    }

    /// `format!` without alloc: into a fixed buffer.
    trait Shown {
        fn shown(&self) -> Fixed;
    }
    struct Fixed([u8; 512], usize);
    impl Fixed {
        fn contains(&self, s: &str) -> bool {
            self.0[..self.1].windows(s.len()).any(|w| w == s.as_bytes())
        }
    }
    impl core::fmt::Write for Fixed {
        fn write_str(&mut self, s: &str) -> core::fmt::Result {
            let end = self.1 + s.len();
            self.0
                .get_mut(self.1..end)
                .ok_or(core::fmt::Error)?
                .copy_from_slice(s.as_bytes());
            self.1 = end;
            Ok(())
        }
    }
    impl Shown for core::fmt::Arguments<'_> {
        fn shown(&self) -> Fixed {
            let mut f = Fixed([0; 512], 0);
            core::fmt::Write::write_fmt(&mut f, *self).unwrap();
            f
        }
    }

    #[test]
    fn redirects_stay_on_the_host_and_never_step_down_from_tls() {
        let ws = url("ws://nas:5666/websocket");
        assert_eq!(
            check_redirect(&ws, &url("wss://nas:5667/websocket")),
            Ok(())
        );
        assert_eq!(check_redirect(&ws, &url("ws://NAS:5666/other")), Ok(()));
        assert_eq!(
            check_redirect(&url("wss://nas/x"), &url("wss://nas:443/y")),
            Ok(())
        );
        assert_eq!(
            check_redirect(&ws, &url("wss://evil:5667/websocket")),
            Err(OriginRefused::OtherHost)
        );
        assert_eq!(
            check_redirect(&ws, &url("ws://nas:8080/websocket")),
            Err(OriginRefused::OtherPort)
        );
        assert_eq!(
            check_redirect(&url("wss://nas:5667/x"), &url("ws://nas:5667/x")),
            Err(OriginRefused::Downgrade)
        );
        assert_eq!(
            check_redirect(&url("wss://nas:5667/x"), &url("wss://nas.evil:5667/x")),
            Err(OriginRefused::OtherHost)
        );
    }

    #[test]
    fn download_urls_stay_on_the_websockets_host_and_never_drop_tls() {
        let wss = url("wss://nas:5667/websocket?type=main");
        for (location, verdict) in [
            ("/multiple-download?token=a", Ok(())),
            ("multiple-download?token=a", Ok(())),
            ("https://nas:5667/multiple-download?token=a", Ok(())),
            ("HTTPS://nas:5667/x", Ok(())),
            ("http://nas:5667/x", Err(Some(OriginRefused::Downgrade))),
            ("https://evil:5667/x", Err(Some(OriginRefused::OtherHost))),
            ("https://nas:8443/x", Err(Some(OriginRefused::OtherPort))),
            ("https://user@nas:5667/x", Err(None)),
            ("https://nas:0/x", Err(None)),
            ("https://nas:99999/x", Err(None)),
            ("https:///x", Err(None)),
            ("/x\r\nEvil: 1", Err(None)),
            ("/a b", Err(None)),
            ("/a#b", Err(None)),
        ] {
            let got = check_download_url(&wss, location)
                .map(|_| ())
                .map_err(|e| match e {
                    UrlRefused::Unusable => None,
                    UrlRefused::Origin { why, .. } => Some(why),
                });
            assert_eq!(got, verdict, "{location}");
        }
        let ws = url("ws://nas:5666/websocket");
        let d = check_download_url(&ws, "http://[::1]:5666/d").unwrap_err();
        assert!(
            matches!(d, UrlRefused::Origin { url, .. } if url.host == "[::1]" && url.port == 5666)
        );
    }

    #[test]
    fn download_requests_name_the_path_and_carry_the_cookie() {
        let ws = url("ws://nas:5666/websocket");
        let mut out = [0u8; 256];
        for location in ["/multiple-download?token=ab", "multiple-download?token=ab"] {
            let d = check_download_url(&ws, location).unwrap();
            let n = d.write_request(Some("ac=1"), &mut out).unwrap();
            assert_eq!(
                text(&out, n),
                "GET /multiple-download?token=ab HTTP/1.1\r\nHost: nas:5666\r\nAccept: */*\r\n\
                 Cookie: ac=1\r\nConnection: close\r\n\r\n"
            );
        }
        let d = check_download_url(&url("wss://nas:5667/ws"), "https://nas:5667?t=1").unwrap();
        assert_eq!(d.origin().port, 5667);
        let n = d.write_request(None, &mut out).unwrap();
        assert!(text(&out, n).starts_with("GET /?t=1 HTTP/1.1\r\nHost: nas:5667\r\n"));
        assert_eq!(
            d.write_request(Some("a\nb"), &mut out),
            Err(HeadError::InvalidHeader)
        );
    }

    #[test]
    fn download_sizes_must_be_framed_and_match_the_listing() {
        let check = DownloadSize::new(Some(10));
        assert_eq!(
            check.check_head(false, Some(10)),
            Err(DownloadError::Unframed)
        );
        assert_eq!(
            check.check_head(true, Some(11)),
            Err(DownloadError::AnnouncedOtherSize {
                announced: 11,
                listed: 10
            })
        );
        assert_eq!(check.check_head(true, None), Ok(Some(10)));
        assert_eq!(
            DownloadSize::new(None).check_head(true, Some(3)),
            Ok(Some(3))
        );
        assert_eq!(DownloadSize::new(None).check_head(true, None), Ok(None));

        let mut check = DownloadSize::new(Some(10));
        assert_eq!(check.received(6), Ok(6));
        assert_eq!(
            check.finish(),
            Err(DownloadError::TooShort {
                received: 6,
                listed: 10
            })
        );
        assert_eq!(
            check.received(5),
            Err(DownloadError::TooLong { listed: 10 })
        );
        assert_eq!(check.received(4), Ok(10));
        assert_eq!(check.finish(), Ok(10));
        let mut free = DownloadSize::new(None);
        assert_eq!(free.received(usize::MAX), Ok(usize::MAX as u64));
        assert_eq!(free.finish(), Ok(usize::MAX as u64));
    }

    #[test]
    fn check_upload_names_path_size_and_overwrite() {
        let r = check_upload_request("vol1/1000/a.txt", 42, Overwrite::KeepBoth);
        assert_eq!(r.command(), "file.checkUpload");
        assert_eq!(
            r.params(),
            &[
                ("path", Param::Str("vol1/1000/a.txt")),
                ("size", Param::Int(42)),
                ("overwrite", Param::Int(2)),
            ]
        );
        assert_eq!(
            [Overwrite::Skip, Overwrite::Replace, Overwrite::KeepBoth].map(Overwrite::code),
            [0, 1, 2]
        );
        assert_eq!(
            split_remote_path("vol1/1000/a.txt"),
            Some(("vol1/1000", "a.txt"))
        );
        assert_eq!(split_remote_path("a.txt"), None);
        assert_eq!(split_remote_path("vol1/"), None);
        assert_eq!(split_remote_path("/a"), None);
        assert!(is_usable_upload_name("a (1).txt"));
        assert!(!is_usable_upload_name("") && !is_usable_upload_name("../a"));
    }

    #[test]
    fn paths_are_percent_encoded_as_encode_uri_does() {
        let mut out = [0u8; 128];
        for (folder, name, encoded) in [
            (
                "vol1/1000/a b",
                "报告.txt",
                "vol1/1000/a%20b/%E6%8A%A5%E5%91%8A.txt",
            ),
            ("v", "report (1).pdf", "v/report%20(1).pdf"),
            ("x~y-z_.w", ";,?:@&=+$!*'#", "x~y-z_.w/;,?:@&=+$!*'#"),
            (
                "v",
                "100%\"<>[]{}|^`\\",
                "v/100%25%22%3C%3E%5B%5D%7B%7D%7C%5E%60%5C",
            ),
        ] {
            let n = write_trim_path(folder, name, &mut out).unwrap();
            assert_eq!(text(&out, n), encoded);
        }
        assert_eq!(
            write_trim_path("v", "é", &mut out[..4]),
            Err(HeadError::BufferTooSmall { required: 8 })
        );
    }

    #[test]
    fn multipart_framing_wraps_the_file_in_one_field() {
        let part = Multipart::new([0xAB; 16], "a\"b\r\nc.txt");
        assert_eq!(part.boundary(), "naslink-abababababababababababababababab");
        let mut out = [0u8; 256];
        let n = part.write_head(&mut out).unwrap();
        assert_eq!(
            text(&out, n),
            "--naslink-abababababababababababababababab\r\nContent-Disposition: form-data; \
             name=\"trim-upload-file\"; filename=\"a%22b%0D%0Ac.txt\"\r\n\
             Content-Type: application/octet-stream\r\n\r\n"
        );
        let m = part.write_tail(&mut out).unwrap();
        assert_eq!(
            text(&out, m),
            "\r\n--naslink-abababababababababababababababab--\r\n"
        );
        assert_eq!(part.body_len(1000), (n + m) as u64 + 1000);
        assert_eq!(part.body_len(u64::MAX), u64::MAX);
    }

    #[test]
    fn the_upload_head_carries_the_trim_headers() {
        let part = Multipart::new([0; 16], "a.txt");
        let head = UploadHead {
            trim_path: "vol1/a.txt",
            token: "TOK",
            sign: "SIG=",
            overwrite: Overwrite::Replace,
            mtime: 1_700_000_000,
            cookie: Some("ac=1"),
        };
        let mut out = [0u8; 512];
        let n = head
            .write(&url("wss://nas/websocket"), &part, 7, &mut out)
            .unwrap();
        let expected_len = part.body_len(7);
        let mut expected = Fixed([0; 512], 0);
        core::fmt::Write::write_fmt(
            &mut expected,
            format_args!(
                "POST /upload HTTP/1.1\r\nHost: nas\r\n\
                 Content-Type: multipart/form-data; boundary={}\r\n\
                 Content-Length: {expected_len}\r\nTrim-Path: vol1/a.txt\r\nTrim-Sign: SIG=\r\n\
                 Trim-Token: TOK\r\nTrim-Overwrite: 1\r\nTrim-Mtim: 1700000000\r\n\
                 Cookie: ac=1\r\nConnection: close\r\n\r\n",
                part.boundary()
            ),
        )
        .unwrap();
        assert_eq!(text(&out, n), text(&expected.0, expected.1));
        let forged = UploadHead {
            token: "TOK\r\nEvil: 1",
            ..head
        };
        assert_eq!(
            forged.write(&url("ws://nas/"), &part, 7, &mut out),
            Err(HeadError::InvalidHeader)
        );
    }
}
