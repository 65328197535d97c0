//! fnOS file transfers over its HTTP endpoints, beside the WebSocket.
//!
//! The protocol rules below (request heads, multipart framing, the URL and
//! size checks) are the core's, `naslink_core::fnos::http`; this module
//! owns the sockets, the files and the timers.
//!
//! - Upload: `file.checkUpload {path, size, overwrite}` names the file to
//!   write (`uploadName`), then `POST /upload` carries it as the multipart
//!   field `trim-upload-file`, with `Trim-Path` (folder + `/` + uploadName,
//!   percent-encoded), `Trim-Sign` = base64(HMAC-SHA256(S, Trim-Path as
//!   sent)), `Trim-Token`, `Trim-Overwrite` and `Trim-Mtim`. The body
//!   length is known up front, so the file streams from disk in 64 KiB
//!   pieces and never sits in memory.
//! - Download: `file.download {files:[path]}` answers a URL
//!   (`/multiple-download?token=…`); a `GET` of it streams into a
//!   temporary file beside the target — created exclusively, with an
//!   unpredictable name (`.NAME.XXXXXX.naslink-part`) — renamed into place
//!   only when the body's framing (`Content-Length` or chunked) says it is
//!   complete and its size is the one `file.ls` lists for the file (when
//!   the listing gives one): a server that announces or sends more, or
//!   less, fails the download at once. A body without framing is refused:
//!   its end could not be told from a cut. The temporary file is removed on every failure and when
//!   the download's future is dropped (a guard unlinks it at once), so an
//!   interrupted download leaves the target as it was and nothing beside.
//!
//! Both go to the WebSocket's own host (`ws` → `http`, `wss` → `https`)
//! with the same TLS trust, and fetch the access-code cookie first when an
//! access code is configured. A download URL naming another host, another
//! port on the same scheme, or plain `http` when the WebSocket uses TLS is
//! refused ([`FnosError::DownloadUrlRefused`]): the token and the cookie
//! go nowhere else. Every wait for the server is bounded by the client's
//! request timeout: a transfer may take long, but it may not stall.

use std::future::Future;
use std::path::Path;

use naslink_core::fnos::http::{self as fnos_http, DownloadError, DownloadSize, Multipart};
use naslink_core::fnos::http::{UploadHead, UrlRefused};
use naslink_core::fnos::{Errno, Param, Request};
use naslink_core::ws;
use rand::Rng;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use zeroize::Zeroizing;

use super::{FnosClient, FnosError};
use crate::http::{self, Response};
use crate::link::{Io, Link};

/// What the upload does when the target already exists (the core's).
pub use naslink_core::fnos::http::Overwrite;

/// Piece size for reading and writing file bodies.
const PIECE: usize = 64 * 1024;

/// Largest JSON answer read from the HTTP endpoints.
const ANSWER_LIMIT: usize = 64 * 1024;

fn transfer(what: impl Into<String>) -> FnosError {
    FnosError::Transfer(what.into())
}

fn io_error(what: &str, e: std::io::Error) -> FnosError {
    FnosError::Transfer(format!("{what}: {e}"))
}

impl FnosClient {
    /// Upload the local file `source` to `remote` (a full path such as
    /// `vol1/1000/Documents/report.pdf`), calling `progress(sent, total)`
    /// as the body goes out. Returns the path the server stored it under,
    /// which differs from `remote` when [`Overwrite::KeepBoth`] met an
    /// existing file.
    ///
    /// The file streams from disk; its size is announced first, so a file
    /// that changes length meanwhile fails the upload rather than sending
    /// something else.
    pub async fn upload(
        &self,
        source: &Path,
        remote: &str,
        overwrite: Overwrite,
        mut progress: impl FnMut(u64, u64) + Send,
    ) -> Result<String, FnosError> {
        let (folder, _) = fnos_http::split_remote_path(remote).ok_or_else(|| {
            transfer(format!(
                "`{remote}` is not a full remote path to a file (vol1/1000/…/name)"
            ))
        })?;
        let mut file = tokio::fs::File::open(source)
            .await
            .map_err(|e| io_error(&format!("cannot open {}", source.display()), e))?;
        let meta = file
            .metadata()
            .await
            .map_err(|e| io_error(&format!("cannot read {}", source.display()), e))?;
        if !meta.is_file() {
            return Err(transfer(format!("{} is not a file", source.display())));
        }
        let size = meta.len();
        let mtime = meta
            .modified()
            .ok()
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map_or(0, |d| d.as_secs());

        let check = fnos_http::check_upload_request(remote, size, overwrite);
        let checked = self
            .request(check.command(), Some(&params_json(&check)))
            .await?;
        let upload_name = checked
            .get("uploadName")
            .and_then(|v| v.as_str())
            .filter(|n| fnos_http::is_usable_upload_name(n))
            .ok_or_else(|| {
                transfer(format!(
                    "{} answered without a usable uploadName",
                    check.command()
                ))
            })?
            .to_owned();
        let stored = format!("{folder}/{upload_name}");
        let trim_path = http::written(|out| fnos_http::write_trim_path(folder, &upload_name, out))
            .map_err(|e| io_error("the upload's path", e))?;
        // Only unreserved ASCII and `%XX` are written.
        let trim_path = String::from_utf8_lossy(&trim_path).into_owned();
        let auth = self.http_auth(&trim_path).await?;

        let part = Multipart::new(rand::thread_rng().r#gen(), &upload_name);
        let preamble = http::written(|out| part.write_head(out))
            .map_err(|e| io_error("the upload's framing", e))?;
        let epilogue = http::written(|out| part.write_tail(out))
            .map_err(|e| io_error("the upload's framing", e))?;

        let idle = self.http_target().idle_timeout;
        let origin = self.websocket_url()?;
        let (mut stream, cookie) = self.http_stream(&origin).await?;
        let head = UploadHead {
            trim_path: &trim_path,
            token: &auth.token,
            sign: &auth.sign,
            overwrite,
            mtime,
            cookie: cookie.as_deref().map(String::as_str),
        };
        let head = http::written(|out| head.write(&origin, &part, size, out))
            .map_err(|e| io_error("sending the upload request", e))?;
        let mut piece = vec![0u8; PIECE];
        let mut sent = 0u64;
        // Whether the failure, if any, was the connection's (not the file's).
        let mut on_the_wire = true;
        let sending = async {
            let writing = async {
                http::send(&mut stream, &head).await?;
                stream.write_all(&preamble).await
            };
            bounded(idle, "sending the upload request", writing).await?;
            progress(0, size);
            while sent < size {
                let want = PIECE.min((size - sent) as usize);
                let n = file.read(&mut piece[..want]).await.map_err(|e| {
                    on_the_wire = false;
                    io_error(&format!("reading {}", source.display()), e)
                })?;
                if n == 0 {
                    on_the_wire = false;
                    return Err(transfer(format!(
                        "{} shrank while it was uploaded ({sent} of {size} bytes)",
                        source.display()
                    )));
                }
                bounded(idle, "sending the file", stream.write_all(&piece[..n])).await?;
                sent += n as u64;
                progress(sent, size);
            }
            if file.read(&mut piece[..1]).await.unwrap_or(0) > 0 {
                on_the_wire = false;
                return Err(transfer(format!(
                    "{} grew while it was uploaded",
                    source.display()
                )));
            }
            let finishing = async {
                stream.write_all(&epilogue).await?;
                stream.flush().await
            };
            bounded(idle, "finishing the upload", finishing).await
        }
        .await;
        if let Err(e) = sending {
            if !on_the_wire {
                return Err(e);
            }
            // A server that refuses an upload may answer and close before
            // the body is through: its answer says more than the broken
            // pipe, so read it if it is there.
            let refusal = async {
                let mut response = Response::read(stream).await?;
                let body = response.body(ANSWER_LIMIT).await?;
                Ok::<_, std::io::Error>((response.head.status, body))
            };
            if let Ok(Ok((status, body))) =
                tokio::time::timeout(std::time::Duration::from_secs(2), refusal).await
            {
                check_answer("upload", status, &body)?;
            }
            return Err(e);
        }

        let answering = async {
            let mut response = Response::read(stream).await?;
            let body = response.body(ANSWER_LIMIT).await?;
            Ok::<_, std::io::Error>((response.head.status, body))
        };
        let (status, body) = bounded(idle, "waiting for the upload's answer", answering).await?;
        check_answer("upload", status, &body)?;
        Ok(stored)
    }

    /// Download the remote file `remote` (a full path) into `target`,
    /// calling `progress(received, total)` as it arrives (`total` is 0
    /// when the server did not announce the size). Returns the size.
    ///
    /// The bytes go to an exclusively created, unpredictably named
    /// temporary file beside `target`, renamed to `target` only when the
    /// whole framed body arrived; on any failure, and when this future is
    /// dropped, the temporary file is removed and `target` is untouched.
    ///
    /// The size is checked against the one `file.ls` of the parent folder
    /// lists for `remote` (one request before the download): a server that
    /// announces or sends a different size fails the download.
    pub async fn download(
        &self,
        remote: &str,
        target: &Path,
        mut progress: impl FnMut(u64, u64) + Send,
    ) -> Result<u64, FnosError> {
        let listed = self.listed_size(remote).await;
        let answer = self
            .request(
                "file.download",
                Some(&serde_json::json!({ "files": [remote] })),
            )
            .await?;
        let location = answer
            .get("url")
            .and_then(|v| v.as_str())
            .ok_or_else(|| transfer("file.download answered without a url"))?
            .to_owned();
        let websocket = self.websocket_url()?;
        let url = fnos_http::check_download_url(&websocket, &location).map_err(|e| match e {
            UrlRefused::Unusable => transfer("file.download answered an unusable url"),
            UrlRefused::Origin { url, why } => FnosError::DownloadUrlRefused {
                origin: origin_of(&url),
                why: why.why(),
            },
        })?;
        let idle = self.http_target().idle_timeout;
        let (mut stream, cookie) = self.http_stream(&url.origin()).await?;
        let request =
            http::written(|out| url.write_request(cookie.as_deref().map(String::as_str), out))
                .map_err(|e| io_error("asking for the download", e))?;
        let asking = async {
            http::send(&mut stream, &request).await?;
            Response::read(stream).await
        };
        let mut response = bounded(idle, "waiting for the download", asking).await?;
        if response.head.status != 200 {
            let body = bounded(idle, "reading the refusal", response.body(ANSWER_LIMIT))
                .await
                .unwrap_or_default();
            check_answer("download", response.head.status, &body)?;
            return Err(transfer(format!(
                "download answered HTTP {} instead of the file",
                response.head.status
            )));
        }
        let mut size_check = DownloadSize::new(listed);
        let total = size_check
            .check_head(response.is_delimited(), response.content_length())
            .map_err(|e| refused_download(e, remote))?;

        // Dropping `part` (an error below, or this future dropped) unlinks
        // the file at once.
        let (file, part) = part_file(target)?.into_parts();
        let mut file = tokio::fs::File::from_std(file);
        let outcome = async {
            let mut received = 0u64;
            let mut piece = Vec::with_capacity(PIECE);
            progress(0, total.unwrap_or(0));
            loop {
                piece.clear();
                let n = bounded(idle, "receiving the file", response.next(&mut piece)).await?;
                if n == 0 {
                    break;
                }
                received = size_check
                    .received(n)
                    .map_err(|e| refused_download(e, remote))?;
                file.write_all(&piece)
                    .await
                    .map_err(|e| io_error(&format!("writing {}", part.display()), e))?;
                progress(received, total.unwrap_or(0));
            }
            size_check
                .finish()
                .map_err(|e| refused_download(e, remote))?;
            file.flush()
                .await
                .and(file.sync_all().await)
                .map_err(|e| io_error(&format!("writing {}", part.display()), e))?;
            Ok::<_, FnosError>(received)
        }
        .await;
        let size = outcome?;
        drop(file);
        part.persist(target).map_err(|e| {
            io_error(
                &format!("cannot move the download to {}", target.display()),
                e.error,
            )
        })?;
        Ok(size)
    }

    /// The size `file.ls` of the parent folder gives for `remote`, when it
    /// gives one: the download must match it, so a server that claims or
    /// sends more (or less) is caught. Without it (no such entry, the
    /// listing failed or was too large) only the HTTP framing is checked.
    async fn listed_size(&self, remote: &str) -> Option<u64> {
        let (folder, name) = remote.rsplit_once('/')?;
        let listing = self
            .request_idempotent("file.ls", Some(&serde_json::json!({ "path": folder })))
            .await;
        let listing = match listing {
            Ok(listing) => listing,
            Err(e) => {
                tracing::debug!(error = %e, "no listing to check the download's size against");
                return None;
            }
        };
        listing
            .merged("files")
            .iter()
            .find(|entry| entry.get("name").and_then(|n| n.as_str()) == Some(name))
            .filter(|entry| entry.get("dir").is_none())
            .and_then(|entry| entry.get("size"))
            .and_then(|size| size.as_u64())
    }

    /// The WebSocket's URL: the HTTP endpoints' origin.
    fn websocket_url(&self) -> Result<ws::Url<'_>, FnosError> {
        let url = &self.http_target().url;
        ws::Url::parse(url).map_err(|_| transfer("the WebSocket URL is not usable for transfers"))
    }

    /// A connection to `url`'s host and port, and the access-code cookie
    /// when one is configured.
    async fn http_stream(
        &self,
        url: &ws::Url<'_>,
    ) -> Result<(Box<dyn Io>, Option<Zeroizing<String>>), FnosError> {
        let target = self.http_target();
        let connecting = async {
            let cookie = match &target.link.access_code {
                Some(code) => Some(Link::verify_access_code(url, &target.link, code).await?),
                None => None,
            };
            let stream = Link::stream(url, &target.link).await?;
            Ok((stream, cookie))
        };
        let limit = target
            .link
            .connect_timeout
            .unwrap_or(std::time::Duration::from_secs(15));
        let (stream, cookie) = tokio::time::timeout(limit, connecting)
            .await
            .map_err(|_| FnosError::Connect(crate::link::ConnectError::TimedOut))?
            .map_err(FnosError::Connect)?;
        Ok((stream, cookie))
    }
}

/// A new temporary file beside `target`, created exclusively (never
/// following a planted link) under a name no one can guess.
fn part_file(target: &Path) -> Result<tempfile::NamedTempFile, FnosError> {
    let (folder, name) = crate::beside::folder_and_name(target);
    tempfile::Builder::new()
        .prefix(&format!(".{name}."))
        .suffix(".naslink-part")
        .tempfile_in(folder)
        .map_err(|e| {
            io_error(
                &format!("cannot create a temporary file in {}", folder.display()),
                e,
            )
        })
}

/// `scheme://host:port` of a URL, without its path and query (which may
/// carry a token).
fn origin_of(url: &ws::Url<'_>) -> String {
    let scheme = if url.secure { "https" } else { "http" };
    format!("{scheme}://{}:{}", url.host, url.port)
}

/// A download the core's size checks refused, in words.
fn refused_download(e: DownloadError, remote: &str) -> FnosError {
    transfer(match e {
        DownloadError::Unframed => "the server sent the file without a Content-Length or \
                                    chunked framing: a cut connection could not be told from \
                                    the end, so it was not saved"
            .to_owned(),
        DownloadError::AnnouncedOtherSize { announced, listed } => format!(
            "the server announces {announced} bytes for {remote}, but its listing gives \
             {listed}: nothing was saved"
        ),
        DownloadError::TooLong { listed } => format!(
            "the server sends more than the {listed} bytes {remote} has in its listing: \
             nothing was saved"
        ),
        DownloadError::TooShort { received, listed } => format!(
            "the server sent {received} of the {listed} bytes {remote} has in its listing: \
             nothing was saved"
        ),
    })
}

/// A core request's parameters as the JSON object [`FnosClient::request`]
/// takes.
fn params_json(request: &Request<'_>) -> serde_json::Value {
    let params = request.params().iter().map(|(name, value)| {
        let value = match *value {
            Param::Str(s) => serde_json::Value::from(s),
            Param::Int(i) => serde_json::Value::from(i),
            Param::Bool(b) => serde_json::Value::from(b),
            Param::Null => serde_json::Value::Null,
            Param::StrList(list) => serde_json::Value::from(list.to_vec()),
            Param::Json(text) => serde_json::from_str(text).unwrap_or(serde_json::Value::Null),
        };
        ((*name).to_owned(), value)
    });
    serde_json::Value::Object(params.collect())
}

/// Run one step of a transfer, failing it when the server stalls.
async fn bounded<T>(
    limit: std::time::Duration,
    what: &str,
    step: impl Future<Output = std::io::Result<T>>,
) -> Result<T, FnosError> {
    match tokio::time::timeout(limit, step).await {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(e)) => Err(io_error(what, e)),
        Err(_) => Err(transfer(format!(
            "{what}: the server stalled for {} s",
            limit.as_secs_f64()
        ))),
    }
}

/// A 2xx answer whose JSON (if any) says `succ` is success; anything else
/// is the server's refusal, with its errno when it gave one.
fn check_answer(what: &str, status: u16, body: &[u8]) -> Result<(), FnosError> {
    let json: serde_json::Value = serde_json::from_slice(body).unwrap_or(serde_json::Value::Null);
    let errno = json
        .get("errno")
        .and_then(|e| e.as_u64())
        .filter(|&e| e != 0)
        .map(|e| Errno::from_code(e.min(u32::MAX as u64) as u32));
    let failed = json.get("result").and_then(|r| r.as_str()) == Some("fail") || errno.is_some();
    if (200..300).contains(&status) && !failed {
        return Ok(());
    }
    let message = json
        .get("errmsg")
        .or_else(|| json.get("msg"))
        .and_then(|m| m.as_str())
        .map(str::to_owned)
        .or_else(|| errno.map(|e| e.message().to_owned()))
        .unwrap_or_else(|| format!("{what} answered HTTP {status}"));
    Err(FnosError::Server {
        errno,
        message,
        body: json,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refused_download_urls_are_named_by_their_origin_only() {
        let wss = ws::Url::parse("wss://nas:5667/websocket?type=main").unwrap();
        let location = "http://nas:5667/multiple-download?token=secret";
        match fnos_http::check_download_url(&wss, location) {
            Err(UrlRefused::Origin { url, why }) => {
                assert_eq!(origin_of(&url), "http://nas:5667");
                assert_eq!(why.why(), "it goes from TLS down to plain text");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn core_requests_become_the_json_parameters_the_session_sends() {
        let check = fnos_http::check_upload_request("vol1/1000/a.txt", 42, Overwrite::Replace);
        assert_eq!(
            params_json(&check),
            serde_json::json!({"path": "vol1/1000/a.txt", "size": 42, "overwrite": 1})
        );
        let list = ["a", "b"];
        let other = Request::new("x")
            .param("l", Param::StrList(&list))
            .param("n", Param::Null)
            .param("b", Param::Bool(true))
            .param("j", Param::Json("{\"k\":[1]}"));
        assert_eq!(
            params_json(&other),
            serde_json::json!({"l": ["a", "b"], "n": null, "b": true, "j": {"k": [1]}})
        );
    }

    #[test]
    fn temporary_files_are_unpredictable_and_beside_the_target() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("report.pdf");
        let a = part_file(&target).unwrap();
        let b = part_file(&target).unwrap();
        assert_ne!(a.path(), b.path());
        for part in [&a, &b] {
            assert_eq!(part.path().parent(), Some(dir.path()));
            let name = part.path().file_name().unwrap().to_string_lossy();
            assert!(name.starts_with(".report.pdf."), "{name}");
            assert!(name.ends_with(".naslink-part"), "{name}");
        }
    }

    #[test]
    fn answers_map_to_success_or_the_servers_errno() {
        assert!(check_answer("upload", 200, br#"{"result":"succ"}"#).is_ok());
        assert!(check_answer("upload", 200, b"").is_ok());
        match check_answer("upload", 403, br#"{"result":"fail","errno":65534}"#) {
            Err(FnosError::Server { errno, .. }) => {
                assert_eq!(errno, Some(Errno::SignatureCheckFailed))
            }
            other => panic!("{other:?}"),
        }
        match check_answer("upload", 200, br#"{"result":"fail","errno":4386}"#) {
            Err(FnosError::Server { errno, .. }) => assert_eq!(errno, Some(Errno::from_code(4386))),
            other => panic!("{other:?}"),
        }
        match check_answer("download", 404, b"not json") {
            Err(FnosError::Server { errno, message, .. }) => {
                assert_eq!(errno, None);
                assert_eq!(message, "download answered HTTP 404");
            }
            other => panic!("{other:?}"),
        }
    }
}
