//! The opening handshake (RFC 6455 §4): the HTTP/1.1 upgrade request a
//! client sends and the checks on the server's answer.
//!
//! Everything works in caller buffers: [`write_request`] formats into a slice
//! and answers [`InsufficientSize`] when it is too short; [`parse_response`]
//! borrows the response head (through httparse) and answers
//! [`Status::Partial`] until the blank line has arrived. A non-101 answer is
//! described by a [`Response`] that borrows the raw head, so a redirect's
//! `Location` or fnOS's `X-Trim-Safe-Code-Challenge` can be read without
//! copying anything.
#![deny(clippy::indexing_slicing)]

use core::fmt;

use base64::Engine as _;
use sha1::{Digest, Sha1};

use super::frame::{InsufficientSize, Status};
use crate::decimal::{U64_DIGITS, decimal};

/// RFC 6455 §1.3: the GUID appended to the key before hashing.
const GUID: &[u8] = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/// Most headers a response may carry; httparse needs a fixed array and
/// ordinary servers (nginx in front of fnOS included) send about ten.
pub const MAX_RESPONSE_HEADERS: usize = 32;

/// Length of a base64 `Sec-WebSocket-Key` (16 random bytes).
pub const KEY_LEN: usize = 24;

/// Length of a base64 `Sec-WebSocket-Accept` (a SHA-1 digest).
pub const ACCEPT_LEN: usize = 28;

/// A `ws://` or `wss://` URL split into what the handshake needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Url<'a> {
    /// `wss`: the adapter must run TLS below the WebSocket.
    pub secure: bool,
    /// Host name or address; an IPv6 literal keeps its brackets.
    pub host: &'a str,
    /// Port, the scheme's default (80 or 443) when the URL has none.
    pub port: u16,
    /// Whether the URL named the port (then `Host:` repeats it).
    pub explicit_port: bool,
    /// Path and query, `/` when empty: the request target.
    pub resource: &'a str,
}

/// Why a string is not a usable WebSocket URL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UrlError {
    /// The scheme is neither `ws` nor `wss`.
    UnsupportedScheme,
    /// No host between `//` and the path.
    MissingHost,
    /// `user:password@` is not allowed in WebSocket URLs.
    UserInfo,
    /// The port is not a number from 1 to 65535.
    InvalidPort,
    /// RFC 6455 §3: a WebSocket URL has no fragment.
    Fragment,
    /// Whitespace or control characters, which would corrupt the request.
    InvalidCharacter,
}

impl<'a> Url<'a> {
    /// Split `url` (e.g. `ws://nas.local:5666/websocket?type=main`).
    pub fn parse(url: &'a str) -> Result<Url<'a>, UrlError> {
        if url.bytes().any(|b| b <= b' ' || b == 0x7F) {
            return Err(UrlError::InvalidCharacter);
        }
        if url.contains('#') {
            return Err(UrlError::Fragment);
        }
        // `:` then `//` rather than a search for "://": the same split for
        // every URL that has a scheme we take, and a firmware then links no
        // substring searcher (about 1 KiB of flash).
        let (scheme, rest) = url.split_once(':').ok_or(UrlError::UnsupportedScheme)?;
        let rest = rest.strip_prefix("//").ok_or(UrlError::UnsupportedScheme)?;
        let secure = if scheme.eq_ignore_ascii_case("ws") {
            false
        } else if scheme.eq_ignore_ascii_case("wss") {
            true
        } else {
            return Err(UrlError::UnsupportedScheme);
        };
        let split = rest.find(['/', '?']).unwrap_or(rest.len());
        let (authority, resource) = rest.split_at(split);
        if authority.contains('@') {
            return Err(UrlError::UserInfo);
        }
        let (host, port) = split_host_port(authority)?;
        if host.is_empty() {
            return Err(UrlError::MissingHost);
        }
        let resource = match resource {
            "" => "/",
            r if r.starts_with('?') => return Ok(Url::with_query_only(secure, host, port, r)),
            r => r,
        };
        Ok(Url {
            secure,
            host,
            port: port.unwrap_or(if secure { 443 } else { 80 }),
            explicit_port: port.is_some(),
            resource,
        })
    }

    // `ws://host?x` has an empty path, which HTTP wants as `/?x`; we cannot
    // allocate the joined string, so the request writer adds the slash.
    fn with_query_only(secure: bool, host: &'a str, port: Option<u16>, query: &'a str) -> Url<'a> {
        Url {
            secure,
            host,
            port: port.unwrap_or(if secure { 443 } else { 80 }),
            explicit_port: port.is_some(),
            resource: query,
        }
    }
}

fn split_host_port(authority: &str) -> Result<(&str, Option<u16>), UrlError> {
    let (host, port) = if authority.starts_with('[') {
        let close = authority.find(']').ok_or(UrlError::MissingHost)?;
        let (host, rest) = authority.split_at(close + 1);
        match rest {
            "" => (host, None),
            r => (
                host,
                Some(r.strip_prefix(':').ok_or(UrlError::InvalidPort)?),
            ),
        }
    } else {
        match authority.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (authority, None),
        }
    };
    let port = match port {
        None => None,
        Some(p) => match p.parse::<u16>() {
            Ok(0) | Err(_) => return Err(UrlError::InvalidPort),
            Ok(n) => Some(n),
        },
    };
    Ok((host, port))
}

/// Why the request could not be written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestError {
    /// The output buffer is too short.
    InsufficientSize(InsufficientSize),
    /// An extra header name or value contains CR, LF or another byte HTTP
    /// forbids there (it would inject headers).
    InvalidHeader,
    /// An extra header would override one the handshake itself manages
    /// (`Host`, `Upgrade`, `Connection`, `Sec-WebSocket-*`): this client
    /// negotiates no extension and no subprotocol.
    ReservedHeader,
}

/// Base64 of 16 random bytes, for `Sec-WebSocket-Key`.
pub fn key_from_nonce(nonce: [u8; 16]) -> [u8; KEY_LEN] {
    let mut key = [0u8; KEY_LEN];
    let n = base64::engine::general_purpose::STANDARD.encode_slice(nonce, &mut key);
    debug_assert_eq!(n, Ok(KEY_LEN));
    key
}

/// The `Sec-WebSocket-Accept` a server must answer for `key`:
/// base64(SHA-1(key ‖ GUID)).
pub fn accept_for_key(key: &[u8]) -> [u8; ACCEPT_LEN] {
    let mut sha = Sha1::new();
    sha.update(key);
    sha.update(GUID);
    let digest = sha.finalize();
    let mut accept = [0u8; ACCEPT_LEN];
    let n = base64::engine::general_purpose::STANDARD.encode_slice(digest.as_slice(), &mut accept);
    debug_assert_eq!(n, Ok(ACCEPT_LEN));
    accept
}

const MANAGED_HEADERS: [&str; 5] = [
    "host",
    "upgrade",
    "connection",
    "sec-websocket-",
    "content-length",
];

fn valid_header(name: &str, value: &str) -> Result<(), RequestError> {
    let token = |b: u8| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b);
    if name.is_empty()
        || !name.bytes().all(token)
        || value.bytes().any(|b| b < b' ' && b != b'\t' || b == 0x7F)
    {
        return Err(RequestError::InvalidHeader);
    }
    let lower_starts = |prefix: &str| {
        name.as_bytes()
            .get(..prefix.len())
            .is_some_and(|head| head.eq_ignore_ascii_case(prefix.as_bytes()))
    };
    let managed = MANAGED_HEADERS.iter().any(|m| {
        if m.ends_with('-') {
            lower_starts(m)
        } else {
            name.eq_ignore_ascii_case(m)
        }
    });
    if managed {
        return Err(RequestError::ReservedHeader);
    }
    Ok(())
}

/// A cursor that writes into a slice and remembers how much it lacked.
struct Writer<'b> {
    out: &'b mut [u8],
    len: usize,
}

impl Writer<'_> {
    fn put(&mut self, bytes: &[u8]) {
        let end = self.len + bytes.len();
        if let Some(dst) = self.out.get_mut(self.len..end) {
            dst.copy_from_slice(bytes);
        }
        self.len = end;
    }

    fn put_port(&mut self, port: u16) {
        let mut digits = [0u8; U64_DIGITS];
        self.put(decimal(u64::from(port), &mut digits));
    }
}

/// Write the upgrade request for `url` into `out`, returning its length.
/// `key` comes from [`key_from_nonce`]; `extra` headers (a `Cookie`, an
/// `Origin`, ...) follow the standard ones.
pub fn write_request(
    url: &Url<'_>,
    key: &[u8; KEY_LEN],
    extra: &[(&str, &str)],
    out: &mut [u8],
) -> Result<usize, RequestError> {
    for (name, value) in extra {
        valid_header(name, value)?;
    }
    let mut w = Writer { out, len: 0 };
    w.put(b"GET ");
    if url.resource.starts_with('?') {
        w.put(b"/");
    }
    w.put(url.resource.as_bytes());
    w.put(b" HTTP/1.1\r\nHost: ");
    w.put(url.host.as_bytes());
    if url.explicit_port {
        w.put(b":");
        w.put_port(url.port);
    }
    w.put(b"\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: ");
    w.put(key);
    w.put(b"\r\nSec-WebSocket-Version: 13\r\n");
    for (name, value) in extra {
        w.put(name.as_bytes());
        w.put(b": ");
        w.put(value.as_bytes());
        w.put(b"\r\n");
    }
    w.put(b"\r\n");
    if w.len > w.out.len() {
        return Err(RequestError::InsufficientSize(InsufficientSize {
            required: w.len,
        }));
    }
    Ok(w.len)
}

/// Why a server's answer does not open a WebSocket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HandshakeError {
    /// httparse refused the response head.
    Http(httparse::Error),
    /// The response head did not fit in the receive buffer.
    ResponseTooLarge,
    /// 101 without `Upgrade: websocket`.
    MissingUpgrade,
    /// 101 without `Connection: Upgrade`.
    MissingConnectionUpgrade,
    /// 101 without a `Sec-WebSocket-Accept` header.
    MissingAccept,
    /// `Sec-WebSocket-Accept` does not match the key we sent.
    WrongAccept,
    /// The server selected an extension we did not offer.
    UnofferedExtension,
    /// The server selected a subprotocol we did not offer.
    UnofferedSubprotocol,
    /// The server answered with a status other than 101; the response is
    /// reported in [`Event::Rejected`](super::Event::Rejected).
    Rejected(u16),
}

impl fmt::Display for HandshakeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HandshakeError::Http(e) => write!(f, "malformed handshake response: {e}"),
            HandshakeError::ResponseTooLarge => {
                f.write_str("handshake response larger than the receive buffer")
            }
            HandshakeError::MissingUpgrade => {
                f.write_str("101 response lacks `Upgrade: websocket`")
            }
            HandshakeError::MissingConnectionUpgrade => {
                f.write_str("101 response lacks `Connection: Upgrade`")
            }
            HandshakeError::MissingAccept => f.write_str("101 response lacks Sec-WebSocket-Accept"),
            HandshakeError::WrongAccept => {
                f.write_str("Sec-WebSocket-Accept does not match our key")
            }
            HandshakeError::UnofferedExtension => {
                f.write_str("server selected an extension we did not offer")
            }
            HandshakeError::UnofferedSubprotocol => {
                f.write_str("server selected a subprotocol we did not offer")
            }
            HandshakeError::Rejected(code) => {
                write!(f, "server refused the upgrade with status {code}")
            }
        }
    }
}

/// What the server answered, once the head is complete.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome<'r> {
    /// 101 with every check passed: the connection speaks WebSocket now.
    Accepted,
    /// Any other status; the head is kept for inspection.
    Rejected(Response<'r>),
}

/// Parse the server's answer from the start of `buf`. On `Complete` also
/// returns the head's length: bytes after it are the first frames and must
/// be fed to the frame parser, not dropped.
pub fn parse_response<'r>(
    buf: &'r [u8],
    accept: &[u8; ACCEPT_LEN],
) -> Result<Status<(Outcome<'r>, usize)>, HandshakeError> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_RESPONSE_HEADERS];
    let mut response = httparse::Response::new(&mut headers);
    let head_len = match response.parse(buf).map_err(HandshakeError::Http)? {
        httparse::Status::Partial => return Ok(Status::Partial),
        httparse::Status::Complete(n) => n,
    };
    let status = response.code.unwrap_or(0);
    if status != 101 {
        return Ok(Status::Complete((
            Outcome::Rejected(Response {
                status,
                head: buf.get(..head_len).unwrap_or(buf),
            }),
            head_len,
        )));
    }
    check_upgrade(response.headers, accept)?;
    Ok(Status::Complete((Outcome::Accepted, head_len)))
}

fn check_upgrade(
    headers: &[httparse::Header<'_>],
    accept: &[u8; ACCEPT_LEN],
) -> Result<(), HandshakeError> {
    fn named<'h, 'v>(
        headers: &'h [httparse::Header<'v>],
        name: &'static str,
    ) -> impl Iterator<Item = &'h httparse::Header<'v>> {
        headers
            .iter()
            .filter(move |h| h.name.eq_ignore_ascii_case(name))
    }
    let find = |name: &'static str| named(headers, name);
    let has_token = |name: &'static str, token: &str| {
        find(name).any(|h| {
            h.value
                .split(|&b| b == b',')
                .any(|t| t.trim_ascii().eq_ignore_ascii_case(token.as_bytes()))
        })
    };
    if !has_token("upgrade", "websocket") {
        return Err(HandshakeError::MissingUpgrade);
    }
    if !has_token("connection", "upgrade") {
        return Err(HandshakeError::MissingConnectionUpgrade);
    }
    let mut accepts = find("sec-websocket-accept");
    match (accepts.next(), accepts.next()) {
        (None, _) => return Err(HandshakeError::MissingAccept),
        (Some(h), None) if h.value.trim_ascii() == accept.as_slice() => {}
        _ => return Err(HandshakeError::WrongAccept),
    }
    if find("sec-websocket-extensions").any(|h| !h.value.trim_ascii().is_empty()) {
        return Err(HandshakeError::UnofferedExtension);
    }
    if find("sec-websocket-protocol").next().is_some() {
        return Err(HandshakeError::UnofferedSubprotocol);
    }
    Ok(())
}

/// A non-101 response head, borrowed: the status and the raw header lines,
/// which [`header`](Response::header) and [`headers`](Response::headers)
/// read without allocating.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Response<'r> {
    status: u16,
    head: &'r [u8],
}

impl fmt::Debug for Response<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Response")
            .field("status", &self.status)
            .field("location", &self.location())
            .finish()
    }
}

impl<'r> Response<'r> {
    pub(crate) fn new(status: u16, head: &'r [u8]) -> Self {
        Response { status, head }
    }

    /// The HTTP status code.
    pub fn status(&self) -> u16 {
        self.status
    }

    /// A redirect (301–308).
    pub fn is_redirect(&self) -> bool {
        (301..=308).contains(&self.status)
    }

    /// The `Location` of a redirect, if sent.
    pub fn location(&self) -> Option<&'r str> {
        self.header("location")
            .and_then(|v| core::str::from_utf8(v).ok())
    }

    /// The first header called `name` (ASCII case-insensitive), value trimmed.
    pub fn header(&self, name: &str) -> Option<&'r [u8]> {
        self.headers()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v)
    }

    /// Every header in order, as (name, value).
    pub fn headers(&self) -> impl Iterator<Item = (&'r str, &'r [u8])> + 'r {
        // httparse already accepted this head, so plain line splitting is
        // enough; the first line is the status line.
        self.head.split(|&b| b == b'\n').skip(1).filter_map(|line| {
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            let colon = line.iter().position(|&b| b == b':')?;
            let (name, value) = line.split_at_checked(colon)?;
            let name = core::str::from_utf8(name).ok()?;
            let value = value.get(1..).unwrap_or_default();
            Some((name.trim_ascii(), value.trim_ascii()))
        })
    }

    /// The raw response head, status line to blank line.
    pub fn raw(&self) -> &'r [u8] {
        self.head
    }
}

#[cfg(test)]
// Tests index fixtures they built themselves.
#[allow(clippy::indexing_slicing)]
mod tests {
    use super::*;

    #[test]
    fn accept_key_matches_rfc6455_sample() {
        assert_eq!(
            &accept_for_key(b"dGhlIHNhbXBsZSBub25jZQ=="),
            b"s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
        );
    }

    #[test]
    fn key_is_base64_of_sixteen_bytes() {
        // RFC 6455 §4.1's sample nonce is "the sample nonce".
        assert_eq!(
            &key_from_nonce(*b"the sample nonce"),
            b"dGhlIHNhbXBsZSBub25jZQ=="
        );
    }

    #[test]
    fn url_splits_host_port_and_resource() {
        let u = Url::parse("ws://nas.local:5666/websocket?type=main").unwrap();
        assert_eq!(
            (u.secure, u.host, u.port, u.explicit_port, u.resource),
            (false, "nas.local", 5666, true, "/websocket?type=main")
        );
        let u = Url::parse("WSS://[::1]").unwrap();
        assert_eq!(
            (u.secure, u.host, u.port, u.explicit_port, u.resource),
            (true, "[::1]", 443, false, "/")
        );
        assert_eq!(
            Url::parse("http://x/").unwrap_err(),
            UrlError::UnsupportedScheme
        );
        assert_eq!(Url::parse("ws://u:p@x/").unwrap_err(), UrlError::UserInfo);
        assert_eq!(Url::parse("ws://x:0/").unwrap_err(), UrlError::InvalidPort);
        assert_eq!(
            Url::parse("ws://x:99999/").unwrap_err(),
            UrlError::InvalidPort
        );
        assert_eq!(Url::parse("ws://x/#f").unwrap_err(), UrlError::Fragment);
        assert_eq!(Url::parse("ws:///p").unwrap_err(), UrlError::MissingHost);
    }

    #[test]
    fn request_carries_the_rfc_headers_and_extras() {
        let url = Url::parse("ws://nas:5666/websocket?type=main").unwrap();
        let key = key_from_nonce(*b"the sample nonce");
        let mut out = [0u8; 512];
        let n = write_request(
            &url,
            &key,
            &[("Cookie", "a=b"), ("Origin", "http://nas:5666")],
            &mut out,
        )
        .unwrap();
        let expected = "GET /websocket?type=main HTTP/1.1\r\nHost: nas:5666\r\nUpgrade: websocket\r\n\
            Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
            Sec-WebSocket-Version: 13\r\nCookie: a=b\r\nOrigin: http://nas:5666\r\n\r\n";
        assert_eq!(core::str::from_utf8(&out[..n]).unwrap(), expected);
        assert_eq!(
            write_request(
                &url,
                &key,
                &[("Cookie", "a=b"), ("Origin", "http://nas:5666")],
                &mut out[..20]
            ),
            Err(RequestError::InsufficientSize(InsufficientSize {
                required: n
            }))
        );
    }

    #[test]
    fn request_refuses_header_injection_and_managed_headers() {
        let url = Url::parse("ws://nas/").unwrap();
        let key = [b'A'; KEY_LEN];
        let mut out = [0u8; 512];
        assert_eq!(
            write_request(&url, &key, &[("Cookie", "a\r\nX: y")], &mut out),
            Err(RequestError::InvalidHeader)
        );
        assert_eq!(
            write_request(&url, &key, &[("Sec-WebSocket-Protocol", "x")], &mut out),
            Err(RequestError::ReservedHeader)
        );
        assert_eq!(
            write_request(&url, &key, &[("host", "x")], &mut out),
            Err(RequestError::ReservedHeader)
        );
    }

    #[test]
    fn query_only_url_gets_a_slash_path() {
        let url = Url::parse("ws://nas?x=1").unwrap();
        let mut out = [0u8; 256];
        let n = write_request(&url, &[b'A'; KEY_LEN], &[], &mut out).unwrap();
        assert!(out[..n].starts_with(b"GET /?x=1 HTTP/1.1\r\nHost: nas\r\n"));
    }
}
