//! Just enough HTTP/1.1 for fnOS's transfer endpoints (`POST /upload`,
//! `GET /multiple-download`): one request per connection
//! (`Connection: close`), the response head parsed with httparse, and the
//! body read as it arrives — by `Content-Length` or chunked — so a file of
//! any size streams through a fixed buffer. A body delimited only by the
//! server closing the connection is accepted for small answers
//! ([`Response::body`]) but never streamed as a file
//! ([`Response::next`] fails at its end): a cut could not be told from the
//! end. Request heads are the core's (`naslink_core::fnos::http` writes
//! them): this module only sizes their buffer and moves the bytes.

use std::io;

use naslink_core::fnos::http::HeadError;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use zeroize::Zeroizing;

use crate::link::Io;

/// Largest response head accepted.
const MAX_HEAD: usize = 64 * 1024;

/// Largest chunk-size line or trailer line accepted in a chunked body.
const MAX_LINE: usize = 4 * 1024;

/// A response head.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Head {
    /// The status code.
    pub status: u16,
    /// Header names (lower case) and values, in order.
    pub headers: Vec<(String, String)>,
}

impl Head {
    /// The first header called `name` (lower case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// How the body's end is known.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Framing {
    /// `remaining` bytes are still to come.
    Length { remaining: u64 },
    /// Chunked: `remaining` bytes of the current chunk are still to come;
    /// `None` before a chunk-size line.
    Chunked { remaining: Option<u64> },
    /// Until the server closes the connection.
    UntilClose,
    /// Nothing more.
    Done,
}

/// A response being read: its head, then its body piece by piece.
pub(crate) struct Response {
    stream: Box<dyn Io>,
    /// Bytes read but not yet consumed.
    buf: Vec<u8>,
    framing: Framing,
    /// The response head.
    pub head: Head,
}

fn malformed(what: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, what.into())
}

impl Response {
    /// Read and parse the response head from `stream`.
    pub async fn read(mut stream: Box<dyn Io>) -> io::Result<Response> {
        // Buffers live on the heap: a future holding a large array would
        // weigh on every task stack that awaits it.
        let mut buf = Vec::with_capacity(4096);
        let (head, used) = loop {
            let mut headers = [httparse::EMPTY_HEADER; 64];
            let mut parsed = httparse::Response::new(&mut headers);
            match parsed.parse(&buf) {
                Ok(httparse::Status::Complete(used)) => {
                    let head = Head {
                        status: parsed.code.unwrap_or(0),
                        headers: parsed
                            .headers
                            .iter()
                            .map(|h| {
                                (
                                    h.name.to_ascii_lowercase(),
                                    String::from_utf8_lossy(h.value).trim().to_owned(),
                                )
                            })
                            .collect(),
                    };
                    break (head, used);
                }
                Ok(httparse::Status::Partial) => {}
                Err(e) => return Err(malformed(format!("malformed HTTP response head: {e}"))),
            }
            if buf.len() > MAX_HEAD {
                return Err(malformed("HTTP response head larger than 64 KiB"));
            }
            buf.reserve(4096);
            if stream.read_buf(&mut buf).await? == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "the server closed the connection before answering",
                ));
            }
        };
        buf.drain(..used);
        let chunked = head
            .header("transfer-encoding")
            .is_some_and(|v| v.to_ascii_lowercase().contains("chunked"));
        let framing = if chunked {
            Framing::Chunked { remaining: None }
        } else if let Some(length) = head.header("content-length") {
            let remaining = length
                .parse()
                .map_err(|_| malformed(format!("bad Content-Length `{length}`")))?;
            Framing::Length { remaining }
        } else if head.status == 204 || head.status == 304 {
            Framing::Done
        } else {
            Framing::UntilClose
        };
        Ok(Response {
            stream,
            buf,
            framing,
            head,
        })
    }

    /// Whether the body's end is announced (`Content-Length`, chunked, or
    /// no body at all) rather than the connection's close.
    pub fn is_delimited(&self) -> bool {
        self.framing != Framing::UntilClose
    }

    /// The body's length, when the server announced it.
    pub fn content_length(&self) -> Option<u64> {
        match self.framing {
            Framing::Length { .. } => self.head.header("content-length")?.parse().ok(),
            _ => None,
        }
    }

    /// Read more from the stream into `buf`; `false` at end of stream.
    async fn fill(&mut self) -> io::Result<bool> {
        self.buf.reserve(64 * 1024);
        Ok(self.stream.read_buf(&mut self.buf).await? > 0)
    }

    /// A CRLF-terminated line from the buffer, without its CRLF.
    async fn line(&mut self) -> io::Result<String> {
        loop {
            if let Some(end) = self.buf.windows(2).position(|w| w == b"\r\n") {
                let line = String::from_utf8_lossy(&self.buf[..end]).into_owned();
                self.buf.drain(..end + 2);
                return Ok(line);
            }
            if self.buf.len() > MAX_LINE {
                return Err(malformed("chunked body: line longer than 4 KiB"));
            }
            if !self.fill().await? {
                return Err(truncated());
            }
        }
    }

    /// The next piece of the body appended to `out`; 0 once the body is
    /// complete. A body cut short is an `UnexpectedEof` error, and so is
    /// the end of a body that only the connection's close delimits.
    pub async fn next(&mut self, out: &mut Vec<u8>) -> io::Result<usize> {
        self.piece(out, false).await
    }

    async fn piece(&mut self, out: &mut Vec<u8>, until_close_ok: bool) -> io::Result<usize> {
        loop {
            match self.framing {
                Framing::Done => return Ok(0),
                Framing::Length { remaining: 0 } => {
                    self.framing = Framing::Done;
                    return Ok(0);
                }
                Framing::Length { remaining } => {
                    if self.buf.is_empty() && !self.fill().await? {
                        return Err(truncated());
                    }
                    let n = (self.buf.len() as u64).min(remaining) as usize;
                    out.extend_from_slice(&self.buf[..n]);
                    self.buf.drain(..n);
                    self.framing = Framing::Length {
                        remaining: remaining - n as u64,
                    };
                    return Ok(n);
                }
                Framing::UntilClose => {
                    if self.buf.is_empty() && !self.fill().await? {
                        if !until_close_ok {
                            return Err(io::Error::new(
                                io::ErrorKind::UnexpectedEof,
                                "the server closed the connection and gave no length: \
                                 the body may be cut",
                            ));
                        }
                        self.framing = Framing::Done;
                        return Ok(0);
                    }
                    let n = self.buf.len();
                    out.append(&mut self.buf);
                    return Ok(n);
                }
                Framing::Chunked { remaining: None } => {
                    let line = self.line().await?;
                    let size = line.split(';').next().unwrap_or("").trim();
                    let size = u64::from_str_radix(size, 16)
                        .map_err(|_| malformed(format!("chunked body: bad chunk size `{size}`")))?;
                    if size == 0 {
                        // Trailers, then the empty line.
                        while !self.line().await?.is_empty() {}
                        self.framing = Framing::Done;
                        return Ok(0);
                    }
                    self.framing = Framing::Chunked {
                        remaining: Some(size),
                    };
                }
                Framing::Chunked { remaining: Some(0) } => {
                    if !self.line().await?.is_empty() {
                        return Err(malformed("chunked body: no CRLF after a chunk"));
                    }
                    self.framing = Framing::Chunked { remaining: None };
                }
                Framing::Chunked {
                    remaining: Some(remaining),
                } => {
                    if self.buf.is_empty() && !self.fill().await? {
                        return Err(truncated());
                    }
                    let n = (self.buf.len() as u64).min(remaining) as usize;
                    out.extend_from_slice(&self.buf[..n]);
                    self.buf.drain(..n);
                    self.framing = Framing::Chunked {
                        remaining: Some(remaining - n as u64),
                    };
                    return Ok(n);
                }
            }
        }
    }

    /// The whole body, at most `limit` bytes (for small JSON answers,
    /// which may end with the connection).
    pub async fn body(&mut self, limit: usize) -> io::Result<Vec<u8>> {
        let mut out = Vec::new();
        while self.piece(&mut out, true).await? > 0 {
            if out.len() > limit {
                return Err(malformed(format!(
                    "HTTP response body larger than {limit} bytes"
                )));
            }
        }
        Ok(out)
    }
}

fn truncated() -> io::Error {
    io::Error::new(
        io::ErrorKind::UnexpectedEof,
        "the server closed the connection in the middle of the response body",
    )
}

/// A request head (or framing) from one of the core's writers
/// (`naslink_core::fnos::http`), in a buffer sized to it and wiped when
/// dropped: heads carry tokens, cookies and the access code.
pub(crate) fn written(
    write: impl Fn(&mut [u8]) -> Result<usize, HeadError>,
) -> io::Result<Zeroizing<Vec<u8>>> {
    let mut buf = Zeroizing::new(vec![0u8; 1024]);
    let mut result = write(&mut buf);
    if let Err(HeadError::BufferTooSmall { required }) = result {
        buf = Zeroizing::new(vec![0u8; required]);
        result = write(&mut buf);
    }
    match result {
        Ok(n) => {
            buf.truncate(n);
            Ok(buf)
        }
        Err(HeadError::InvalidHeader) => Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "a request header would contain a line break or a control character",
        )),
        Err(HeadError::BufferTooSmall { required }) => Err(io::Error::other(format!(
            "the request head needs {required} bytes and its writer asked for less"
        ))),
    }
}

/// Write `bytes` and flush them (a TLS stream may hold bytes back until
/// flushed).
pub(crate) async fn send(stream: &mut Box<dyn Io>, bytes: &[u8]) -> io::Result<()> {
    stream.write_all(bytes).await?;
    stream.flush().await
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A response over an in-memory pipe, the server side fed `bytes` in
    /// pieces of `step` then closed.
    async fn respond(bytes: &'static [u8], step: usize) -> Response {
        let (client, mut server) = tokio::io::duplex(16);
        tokio::spawn(async move {
            for piece in bytes.chunks(step) {
                if server.write_all(piece).await.is_err() {
                    return;
                }
            }
        });
        Response::read(Box::new(client)).await.expect("head")
    }

    async fn whole(r: &mut Response) -> io::Result<Vec<u8>> {
        let mut out = Vec::new();
        while r.next(&mut out).await? > 0 {}
        Ok(out)
    }

    #[tokio::test]
    async fn content_length_body_split_anywhere() {
        for step in [1, 3, 7, 100] {
            let mut r = respond(
                b"HTTP/1.1 200 OK\r\nContent-Length: 11\r\nX-A: b\r\n\r\nhello world",
                step,
            )
            .await;
            assert_eq!(r.head.status, 200);
            assert_eq!(r.head.header("x-a"), Some("b"));
            assert_eq!(r.content_length(), Some(11));
            assert_eq!(whole(&mut r).await.unwrap(), b"hello world");
        }
    }

    #[tokio::test]
    async fn chunked_body_with_extensions_and_trailers() {
        for step in [1, 2, 5, 100] {
            let mut r = respond(
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n\
                  5;x=y\r\nhello\r\n1\r\n \r\n5\r\nworld\r\n0\r\nTrailer: 1\r\n\r\n",
                step,
            )
            .await;
            assert_eq!(r.content_length(), None);
            assert_eq!(whole(&mut r).await.unwrap(), b"hello world");
        }
    }

    #[tokio::test]
    async fn a_body_ended_only_by_the_close_is_never_complete_as_a_stream() {
        let mut r = respond(b"HTTP/1.0 200 OK\r\n\r\nall of it", 4).await;
        assert!(!r.is_delimited());
        let e = whole(&mut r).await.unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::UnexpectedEof);
        // A small answer may still end with the connection.
        let mut r = respond(b"HTTP/1.0 200 OK\r\n\r\nall of it", 4).await;
        assert_eq!(r.body(100).await.unwrap(), b"all of it");
        let r = respond(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", 4).await;
        assert!(r.is_delimited());
    }

    #[tokio::test]
    async fn cut_bodies_are_errors_not_short_files() {
        let mut r = respond(
            b"HTTP/1.1 200 OK\r\nContent-Length: 20\r\n\r\nonly ten b",
            3,
        )
        .await;
        let e = whole(&mut r).await.unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::UnexpectedEof);
        let mut r = respond(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n10\r\nshort",
            3,
        )
        .await;
        assert_eq!(
            whole(&mut r).await.unwrap_err().kind(),
            io::ErrorKind::UnexpectedEof
        );
    }

    #[tokio::test]
    async fn malformed_heads_and_chunk_sizes_are_named() {
        let (client, mut server) = tokio::io::duplex(64);
        tokio::spawn(async move {
            let _ = server.write_all(b"NOT HTTP AT ALL\r\n\r\n").await;
        });
        let e = Response::read(Box::new(client)).await.err().unwrap();
        assert!(
            e.to_string().contains("malformed HTTP response head"),
            "{e}"
        );

        let mut r = respond(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
            4,
        )
        .await;
        let e = whole(&mut r).await.unwrap_err();
        assert!(e.to_string().contains("bad chunk size `zz`"), "{e}");

        let (client, mut server) = tokio::io::duplex(64);
        tokio::spawn(async move {
            let _ = server
                .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: -3\r\n\r\n")
                .await;
        });
        let e = Response::read(Box::new(client)).await.err().unwrap();
        assert!(e.to_string().contains("bad Content-Length"), "{e}");
    }

    #[test]
    fn core_heads_get_a_buffer_of_their_size_and_forged_headers_are_refused() {
        let long = "x".repeat(5000);
        let head =
            written(|out| naslink_core::fnos::http::write_trim_path("vol1", &long, out)).unwrap();
        assert_eq!(head.len(), 5005);
        let origin = naslink_core::ws::Url::parse("ws://nas:5666/").unwrap();
        let url = naslink_core::fnos::http::check_download_url(&origin, "/d").unwrap();
        let e = written(|out| url.write_request(Some("a\r\nEvil: 1"), out)).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidInput);
    }

    /// Feed `bytes` cut at `cuts` (then closed) through the parser: the
    /// head, then the body as a stream and, when that fails, as a small
    /// answer. Returns the streamed body, if it was complete.
    fn parse_all(bytes: Vec<u8>, mut cuts: Vec<usize>) -> Option<Vec<u8>> {
        cuts.sort_unstable();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async move {
            let (client, mut server) = tokio::io::duplex(64);
            tokio::spawn(async move {
                let mut at = 0;
                for cut in cuts.into_iter().chain([bytes.len()]) {
                    let end = cut.clamp(at, bytes.len());
                    if server.write_all(&bytes[at..end]).await.is_err() {
                        return;
                    }
                    at = end;
                }
            });
            let mut response = Response::read(Box::new(client)).await.ok()?;
            let mut out = Vec::new();
            loop {
                match response.next(&mut out).await {
                    Ok(0) => return Some(out),
                    Ok(_) => {}
                    Err(_) => return None,
                }
            }
        })
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(256))]

        /// Random bytes, split anywhere: an answer or a named error, never
        /// a panic or a hang (the server side closes after its bytes).
        #[test]
        fn random_bytes_split_anywhere_never_panic(
            bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..2048),
            cuts in proptest::collection::vec(0usize..2048, 0..8),
        ) {
            let _ = parse_all(bytes, cuts);
        }

        /// A random response head and chunked body around random bytes,
        /// split anywhere: the streamed body is exactly those bytes, or a
        /// named error when the framing text was mangled.
        #[test]
        fn chunked_bodies_split_anywhere_come_out_whole(
            body in proptest::collection::vec(proptest::num::u8::ANY, 0..4096),
            chunk in 1usize..700,
            cuts in proptest::collection::vec(0usize..6000, 0..8),
        ) {
            let mut bytes = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
            for piece in body.chunks(chunk) {
                bytes.extend_from_slice(format!("{:x}\r\n", piece.len()).as_bytes());
                bytes.extend_from_slice(piece);
                bytes.extend_from_slice(b"\r\n");
            }
            bytes.extend_from_slice(b"0\r\n\r\n");
            proptest::prop_assert_eq!(parse_all(bytes, cuts), Some(body));
        }

        /// A body announced by `Content-Length` but cut short is an error,
        /// never a short success.
        #[test]
        fn cut_content_length_bodies_are_errors(
            body in proptest::collection::vec(proptest::num::u8::ANY, 1..2048),
            keep in 0usize..2048,
            cuts in proptest::collection::vec(0usize..4096, 0..8),
        ) {
            let keep = keep % body.len();
            let mut bytes =
                format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n", body.len()).into_bytes();
            bytes.extend_from_slice(&body[..keep]);
            proptest::prop_assert_eq!(parse_all(bytes, cuts), None);
        }
    }
}
