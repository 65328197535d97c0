//! The HTTP half of fnOS file transfer, served on the WebSocket's listener.
//!
//! **Upload.** `file.checkUpload` on the WebSocket names the file and
//! records a [`PendingUpload`](super::state::PendingUpload); then `POST /upload` carries the bytes as the
//! form field `trim-upload-file` of a `multipart/form-data` body (by
//! `Content-Length` or chunked), with headers `Trim-Token` (the login's
//! token), `Trim-Path` (folder + "/" + uploadName, possibly
//! percent-encoded), `Trim-Sign` = base64(HMAC-SHA256(S, Trim-Path as
//! sent)), `Trim-Overwrite` (0/1/2) and `Trim-Mtim` (unix seconds). The
//! checks run in that order: token (401, errno 135168), signature (403,
//! errno 65534), headers and a matching check (400, errno 8192), then the
//! body, whose file part must have exactly the announced size (400, errno
//! 8192). Success is `200 {"result":"succ"}`.
//!
//! **Download.** `file.download` hands out a one-time token;
//! `GET /multiple-download?token=...` answers `200` with the whole file
//! (Range is ignored, as on a real NAS), written in [`PIECE`]-sized writes
//! so [`Faults::cut_download_after`](super::Faults::cut_download_after) can
//! stop it mid-body. An unknown or used token answers 404, errno 4100.
//!
//! Every refusal is JSON, `{"result":"fail","errno":N,"errmsg":"..."}`.

use std::time::Duration;

use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::crypto::signature_matches;
use super::files::{Content, FileError, Overwrite, normalize};
use super::handlers::transfer_errno;
use super::http_codec::{
    Chunked, Progress, boundary, content_disposition, field_range, percent_decode, query_param,
};
use super::http_gate::{Head, write_json};
use super::state::{Shared, unix_now};
use super::{ERRNO_BAD_PARAMETER, ERRNO_BAD_SIGNATURE, ERRNO_INVALID_CREDENTIAL, ERRNO_NOT_FOUND};

/// The multipart form field that carries the uploaded file.
pub const UPLOAD_FIELD: &str = "trim-upload-file";

/// Bytes a multipart body may carry beyond the file: boundary lines and
/// part headers, a few hundred bytes from a browser. Together with the size
/// `file.checkUpload` announced, this caps what one upload buffers.
const MULTIPART_OVERHEAD: u64 = 64 * 1024;

/// Size of each socket read of an upload body and each write of a download.
pub const PIECE: usize = 64 * 1024;

/// Most memory reserved up front for an upload body; beyond it the buffer
/// grows as bytes actually arrive, so a false `Content-Length` costs nothing.
const RESERVE_AT_MOST: usize = 16 << 20;

/// How long an upload may stall between two reads before it is dropped.
const IDLE: Duration = Duration::from_secs(30);

/// How long the rest of a refused request is read and discarded. Closing a
/// socket with unread bytes sends a reset, which can destroy the refusal
/// before the client reads it.
const DRAIN_FOR: Duration = Duration::from_secs(2);

/// A refused request: the status line and the errno of its JSON body.
#[derive(Debug)]
struct Refusal {
    status: &'static str,
    errno: u64,
    why: String,
}

impl Refusal {
    fn bad(why: impl Into<String>) -> Self {
        Self {
            status: "400 Bad Request",
            errno: ERRNO_BAD_PARAMETER,
            why: why.into(),
        }
    }

    fn file(e: &FileError) -> Self {
        let status = match e {
            FileError::NotFound(_) => "404 Not Found",
            FileError::Exists(_) => "409 Conflict",
            FileError::Forbidden(_) => "403 Forbidden",
            FileError::BadPath(_) | FileError::IsFolder(_) => "400 Bad Request",
        };
        Self {
            status,
            errno: transfer_errno(e),
            why: e.to_string(),
        }
    }

    fn body(&self) -> String {
        format!(
            r#"{{"result":"fail","errno":{},"errmsg":{}}}"#,
            self.errno,
            Value::String(self.why.clone())
        )
    }

    /// Answer, then read what the client still sends for a moment.
    async fn send(&self, mut stream: TcpStream) {
        write_json(&mut stream, self.status, &[], &self.body()).await;
        let deadline = tokio::time::Instant::now() + DRAIN_FOR;
        let mut sink = vec![0; PIECE];
        while let Ok(Ok(n)) = tokio::time::timeout_at(deadline, stream.read(&mut sink)).await {
            if n == 0 {
                break;
            }
        }
    }
}

/// Why an upload did not complete.
enum Failure {
    /// Answer the client with this.
    Refused(Refusal),
    /// The connection ended or stalled; nobody is left to answer.
    Gone,
}

impl From<Refusal> for Failure {
    fn from(refusal: Refusal) -> Self {
        Self::Refused(refusal)
    }
}

/// How the request body is delimited.
#[derive(Debug, Clone, Copy)]
enum Framing {
    Length(u64),
    Chunked,
}

/// An upload whose head passed every check.
#[derive(Debug)]
struct Accepted {
    uid: u32,
    path: String,
    size: u64,
    replace: bool,
    mtim: u64,
    boundary: String,
    framing: Framing,
    expect_continue: bool,
}

/// Serve `POST /upload`; `body_start` holds body bytes read with the head.
pub async fn upload(mut stream: TcpStream, head: &Head, body_start: Vec<u8>, shared: &Shared) {
    let outcome = match check_upload_head(head, shared) {
        Ok(accepted) => receive(&mut stream, accepted, body_start, shared).await,
        Err(refusal) => Err(refusal.into()),
    };
    match outcome {
        Ok(()) => write_json(&mut stream, "200 OK", &[], r#"{"result":"succ"}"#).await,
        Err(Failure::Refused(refusal)) => refusal.send(stream).await,
        Err(Failure::Gone) => {}
    }
}

fn check_upload_head(head: &Head, shared: &Shared) -> Result<Accepted, Refusal> {
    if head.method != "POST" {
        return Err(Refusal {
            status: "405 Method Not Allowed",
            ..Refusal::bad("/upload takes POST")
        });
    }
    let reg = shared.registry();
    let login = head
        .header("trim-token")
        .and_then(|token| reg.by_token(token))
        .and_then(|id| reg.logins.get(&id))
        .ok_or_else(|| Refusal {
            status: "401 Unauthorized",
            errno: ERRNO_INVALID_CREDENTIAL,
            why: "Trim-Token missing, unknown or expired".into(),
        })?;
    let raw_path = head
        .header("trim-path")
        .ok_or_else(|| Refusal::bad("Trim-Path missing"))?;
    let signed = head
        .header("trim-sign")
        .is_some_and(|sign| signature_matches(&login.secret, sign, raw_path));
    if !signed {
        return Err(Refusal {
            status: "403 Forbidden",
            errno: ERRNO_BAD_SIGNATURE,
            why: "Trim-Sign is not base64(HMAC-SHA256(S, Trim-Path))".into(),
        });
    }
    let path = percent_decode(raw_path)
        .map(|p| normalize(&p))
        .ok_or_else(|| Refusal::bad("Trim-Path is not percent-encoded UTF-8"))?;
    let pending = reg
        .pending_uploads
        .get(&(login.uid, path.clone()))
        .ok_or_else(|| Refusal::bad("no file.checkUpload for this Trim-Path"))?;
    let overwrite = match head.header("trim-overwrite") {
        None => pending.overwrite,
        Some(code) => code
            .parse()
            .ok()
            .and_then(Overwrite::from_code)
            .ok_or_else(|| Refusal::bad("Trim-Overwrite must be 0, 1 or 2"))?,
    };
    let mtim = match head.header("trim-mtim") {
        None | Some("") => unix_now(),
        Some(secs) => secs
            .parse()
            .map_err(|_| Refusal::bad("Trim-Mtim must be unix seconds"))?,
    };
    let boundary = head
        .header("content-type")
        .and_then(boundary)
        .ok_or_else(|| Refusal::bad("Content-Type must be multipart/form-data with a boundary"))?;
    let framing = framing(head)?;
    if let Framing::Length(len) = framing
        && len > pending.size + MULTIPART_OVERHEAD
    {
        return Err(Refusal::bad(format!(
            "Content-Length {len} is too large for the {} bytes file.checkUpload announced",
            pending.size
        )));
    }
    Ok(Accepted {
        uid: login.uid,
        path,
        size: pending.size,
        replace: overwrite == Overwrite::Replace,
        mtim,
        boundary,
        framing,
        expect_continue: head
            .header("expect")
            .is_some_and(|v| v.eq_ignore_ascii_case("100-continue")),
    })
}

fn framing(head: &Head) -> Result<Framing, Refusal> {
    let chunked = head.header("transfer-encoding").is_some_and(|codings| {
        codings
            .split(',')
            .any(|c| c.trim().eq_ignore_ascii_case("chunked"))
    });
    if chunked {
        return Ok(Framing::Chunked);
    }
    let length = head
        .header("content-length")
        .ok_or_else(|| Refusal::bad("Content-Length or Transfer-Encoding: chunked needed"))?;
    length
        .parse()
        .map(Framing::Length)
        .map_err(|_| Refusal::bad("Content-Length is not a number"))
}

/// Read the body, take the file part out of it and store the file.
async fn receive(
    stream: &mut TcpStream,
    accepted: Accepted,
    body_start: Vec<u8>,
    shared: &Shared,
) -> Result<(), Failure> {
    if accepted.expect_continue {
        stream
            .write_all(b"HTTP/1.1 100 Continue\r\n\r\n")
            .await
            .map_err(|_| Failure::Gone)?;
    }
    let limit = accepted.size + MULTIPART_OVERHEAD;
    let mut body = read_body(stream, body_start, accepted.framing, limit).await?;
    let part = field_range(&body, &accepted.boundary, UPLOAD_FIELD)
        .map_err(|e| Refusal::bad(e.to_string()))?;
    if part.len() as u64 != accepted.size {
        return Err(Refusal::bad(format!(
            "the file has {} bytes, file.checkUpload announced {}",
            part.len(),
            accepted.size
        ))
        .into());
    }
    body.truncate(part.end);
    body.drain(..part.start);
    let mut reg = shared.registry();
    reg.tree(accepted.uid)
        .write(
            &accepted.path,
            body,
            accepted.mtim,
            unix_now(),
            accepted.replace,
        )
        .map_err(|e| Refusal::file(&e))?;
    reg.pending_uploads.remove(&(accepted.uid, accepted.path));
    Ok(())
}

async fn read_some(stream: &mut TcpStream, buf: &mut [u8]) -> Result<usize, Failure> {
    match tokio::time::timeout(IDLE, stream.read(buf)).await {
        Ok(Ok(n)) if n > 0 => Ok(n),
        _ => Err(Failure::Gone),
    }
}

async fn read_body(
    stream: &mut TcpStream,
    body_start: Vec<u8>,
    framing: Framing,
    limit: u64,
) -> Result<Vec<u8>, Failure> {
    let mut piece = vec![0; PIECE];
    match framing {
        Framing::Length(len) => {
            // `len <= limit` was checked with the head; on a 32-bit host a
            // length beyond memory is refused here.
            let len = usize::try_from(len).map_err(|_| Refusal::bad("body too large"))?;
            let mut body = body_start;
            body.truncate(len);
            body.reserve(len.min(RESERVE_AT_MOST).saturating_sub(body.len()));
            while body.len() < len {
                let want = PIECE.min(len - body.len());
                let n = read_some(stream, &mut piece[..want]).await?;
                body.extend_from_slice(&piece[..n]);
            }
            Ok(body)
        }
        Framing::Chunked => {
            let mut decoder = Chunked::default();
            let mut body = Vec::new();
            let bad = |e: super::http_codec::ChunkedError| Refusal::bad(e.to_string());
            let mut progress = decoder.feed(&body_start, &mut body, limit).map_err(bad)?;
            while progress == Progress::NeedMore {
                let n = read_some(stream, &mut piece).await?;
                progress = decoder.feed(&piece[..n], &mut body, limit).map_err(bad)?;
            }
            Ok(body)
        }
    }
}

/// Serve `GET /multiple-download?token=...`.
pub async fn download(mut stream: TcpStream, head: &Head, shared: &Shared) {
    let (name, content) = match redeem(head, shared) {
        Ok(found) => found,
        Err(refusal) => return refusal.send(stream).await,
    };
    let len = content.len();
    let answer_head = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: {len}\r\n\
         Content-Disposition: {}\r\nConnection: close\r\n\r\n",
        content_disposition(&name)
    );
    if stream.write_all(answer_head.as_bytes()).await.is_err() {
        return;
    }
    let cut = shared.config.faults.cut_download_after;
    let end = cut.map_or(len, |cut| cut.min(len));
    let mut piece = vec![0; PIECE];
    let mut offset = 0;
    while offset < end {
        // At most PIECE, so the cast cannot truncate.
        let want = (end - offset).min(PIECE as u64) as usize;
        let n = content.read_at(offset, &mut piece[..want]);
        if n == 0 || stream.write_all(&piece[..n]).await.is_err() {
            return;
        }
        offset += n as u64;
    }
    // On a cut this FIN comes before `Content-Length` bytes: the fault.
    let _ = stream.shutdown().await;
}

/// Use up the download token of `head` and find its file.
fn redeem(head: &Head, shared: &Shared) -> Result<(String, Content), Refusal> {
    if head.method != "GET" {
        return Err(Refusal {
            status: "405 Method Not Allowed",
            ..Refusal::bad("/multiple-download takes GET")
        });
    }
    let token = query_param(&head.query, "token").ok_or_else(|| Refusal::bad("`token` missing"))?;
    let mut reg = shared.registry();
    let ticket = reg.downloads.remove(&token).ok_or_else(|| Refusal {
        status: "404 Not Found",
        errno: ERRNO_NOT_FOUND,
        why: "download token unknown or already used".into(),
    })?;
    let content = reg
        .tree(ticket.uid)
        .content(&ticket.path)
        .map_err(|e| Refusal::file(&e))?;
    let name = ticket
        .path
        .rsplit('/')
        .next()
        .unwrap_or(&ticket.path)
        .to_owned();
    Ok((name, content))
}
