//! What happens before the WebSocket upgrade: the HTTP request head is read
//! here, so that the HTTPS-redirect and access-code modes can answer with
//! plain HTTP, `GET /access_code_verify` can hand out its cookie, and the
//! file-transfer requests (`POST /upload`, `GET /multiple-download`) go to
//! [`super::transfer`]. An admitted upgrade is replayed to tokio-tungstenite
//! through [`Rewind`].
//!
//! Every plain HTTP answer closes its connection (`Connection: close`).

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;

use super::crypto::random_token;
use super::state::Shared;
use super::transfer;

/// Largest request head accepted; real browsers stay far below.
pub const MAX_HEAD: usize = 16 * 1024;

/// Name of the cookie `/access_code_verify` sets.
pub const ACCESS_COOKIE: &str = "trim-safe-code";

/// A stream that first yields bytes already read from `inner`.
pub struct Rewind {
    prefix: Vec<u8>,
    pos: usize,
    inner: TcpStream,
}

impl AsyncRead for Rewind {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if self.pos < self.prefix.len() {
            let n = buf.remaining().min(self.prefix.len() - self.pos);
            let start = self.pos;
            buf.put_slice(&self.prefix[start..start + n]);
            self.pos += n;
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for Rewind {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// The parts of a request head the gate and the transfer handlers look at.
pub struct Head {
    /// `GET`, `POST`, ...
    pub method: String,
    /// The target before `?`.
    pub path: String,
    /// The target after `?` (empty without one).
    pub query: String,
    /// Header names in lower case, values trimmed, in the order received.
    headers: Vec<(String, String)>,
}

impl Head {
    fn parse(bytes: &[u8]) -> Option<Self> {
        let text = std::str::from_utf8(bytes).ok()?;
        let mut lines = text.split("\r\n");
        let mut request_line = lines.next()?.split(' ');
        let method = request_line.next()?;
        let target = request_line.next()?;
        let (path, query) = target.split_once('?').unwrap_or((target, ""));
        let headers = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
            .collect();
        Some(Self {
            method: method.to_owned(),
            path: path.to_owned(),
            query: query.to_owned(),
            headers,
        })
    }

    /// The first value of header `name` (lower case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    fn is_upgrade(&self) -> bool {
        self.header("upgrade")
            .is_some_and(|v| v.eq_ignore_ascii_case("websocket"))
    }

    fn cookies(&self) -> impl Iterator<Item = (&str, &str)> {
        self.headers
            .iter()
            .filter(|(k, _)| k == "cookie")
            .flat_map(|(_, v)| v.split(';'))
            .filter_map(|c| c.trim().split_once('='))
    }
}

/// Write a complete answer with a JSON (or empty) body, then end the
/// sending side (FIN).
pub async fn write_json(
    stream: &mut TcpStream,
    status: &str,
    headers: &[(&str, String)],
    body: &str,
) {
    let mut text = format!("HTTP/1.1 {status}\r\n");
    for (name, value) in headers {
        text.push_str(&format!("{name}: {value}\r\n"));
    }
    text.push_str(&format!(
        "Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    ));
    // The peer may already be gone; there is nobody left to tell.
    let _ = stream.write_all(text.as_bytes()).await;
    let _ = stream.shutdown().await;
}

async fn respond(mut stream: TcpStream, status: &str, headers: &[(&str, String)], body: &str) {
    write_json(&mut stream, status, headers, body).await;
}

fn status_text(status: u16) -> &'static str {
    match status {
        301 => "Moved Permanently",
        302 => "Found",
        303 => "See Other",
        307 => "Temporary Redirect",
        _ => "Permanent Redirect",
    }
}

/// Read the request head and either answer it here (returning `None`) or
/// return the stream for the WebSocket handshake.
pub async fn admit(mut stream: TcpStream, shared: &Shared) -> Option<Rewind> {
    let mut buf = Vec::with_capacity(1024);
    let head_end = loop {
        if let Some(at) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break at + 4;
        }
        if buf.len() > MAX_HEAD {
            respond(stream, "431 Request Header Fields Too Large", &[], "").await;
            return None;
        }
        let mut chunk = [0u8; 2048];
        match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => return None,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    };
    let Some(head) = Head::parse(&buf[..head_end]) else {
        respond(stream, "400 Bad Request", &[], "").await;
        return None;
    };
    let config = &shared.config;
    if let Some(code) = &config.access_code
        && head.path == "/access_code_verify"
    {
        let expected = B64.encode(code.as_bytes());
        let good = head.header("x-access-code") == Some(expected.as_str())
            && head.header("x-access-source") == Some("web");
        if good {
            let cookie = random_token(24);
            shared.registry().access_cookies.push(cookie.clone());
            let set = format!("{ACCESS_COOKIE}={cookie}; Path=/; HttpOnly");
            respond(
                stream,
                "200 OK",
                &[("Set-Cookie", set)],
                r#"{"result":"succ"}"#,
            )
            .await;
        } else {
            respond(
                stream,
                "401 Unauthorized",
                &[],
                r#"{"result":"fail","errno":8192}"#,
            )
            .await;
        }
        return None;
    }
    match head.path.as_str() {
        "/upload" => {
            let body_start = buf.split_off(head_end);
            transfer::upload(stream, &head, body_start, shared).await;
            return None;
        }
        "/multiple-download" => {
            transfer::download(stream, &head, shared).await;
            return None;
        }
        _ => {}
    }
    if head.path != "/websocket" {
        respond(stream, "404 Not Found", &[], "").await;
        return None;
    }
    if let Some(redirect) = &config.https_redirect {
        let host = head.header("host").unwrap_or("127.0.0.1");
        let host = host.rsplit_once(':').map_or(host, |(h, _)| h);
        let query = if head.query.is_empty() {
            "type=main"
        } else {
            head.query.as_str()
        };
        let location = format!("https://{host}:{}/websocket?{query}", redirect.https_port);
        let status = format!("{} {}", redirect.status, status_text(redirect.status));
        respond(stream, &status, &[("Location", location)], "").await;
        return None;
    }
    if !head.is_upgrade() {
        respond(stream, "400 Bad Request", &[], "").await;
        return None;
    }
    if config.access_code.is_some() {
        let admitted = {
            let reg = shared.registry();
            head.cookies()
                .any(|(k, v)| k == ACCESS_COOKIE && reg.access_cookies.iter().any(|c| c == v))
        };
        if !admitted {
            let challenge = [("X-Trim-Safe-Code-Challenge", "1".to_owned())];
            respond(stream, "401 Unauthorized", &challenge, "").await;
            return None;
        }
    }
    Some(Rewind {
        prefix: buf,
        pos: 0,
        inner: stream,
    })
}
