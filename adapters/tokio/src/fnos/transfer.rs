//! fnOS file transfers over its HTTP endpoints, beside the WebSocket.
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

use naslink_core::fnos::Errno;
use naslink_core::ws;
use rand::Rng;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use zeroize::Zeroizing;

use super::{FnosClient, FnosError};
use crate::http::{self, Response};
use crate::link::{Io, Link};

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
        let (folder, name) = remote
            .rsplit_once('/')
            .filter(|(folder, name)| !folder.is_empty() && !name.is_empty())
            .ok_or_else(|| {
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

        let checked = self
            .request(
                "file.checkUpload",
                Some(&serde_json::json!({
                    "path": format!("{folder}/{name}"),
                    "size": size,
                    "overwrite": overwrite.code(),
                })),
            )
            .await?;
        let upload_name = checked
            .get("uploadName")
            .and_then(|v| v.as_str())
            .filter(|n| !n.is_empty() && !n.contains('/'))
            .ok_or_else(|| transfer("file.checkUpload answered without a usable uploadName"))?
            .to_owned();
        let stored = format!("{folder}/{upload_name}");
        let trim_path = http::encode_path(&stored);
        let auth = self.http_auth(&trim_path).await?;

        let boundary = format!("naslink-{:032x}", rand::thread_rng().r#gen::<u128>());
        let preamble = format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"trim-upload-file\"; \
             filename=\"{}\"\r\nContent-Type: application/octet-stream\r\n\r\n",
            quoted_file_name(&upload_name)
        );
        let epilogue = format!("\r\n--{boundary}--\r\n");
        let length = preamble.len() as u64 + size + epilogue.len() as u64;

        let idle = self.http_target().idle_timeout;
        let (mut stream, host, cookie) = self.http_stream(&self.http_target().url).await?;
        let content_type = format!("multipart/form-data; boundary={boundary}");
        let length_text = length.to_string();
        let overwrite_text = overwrite.code().to_string();
        let mtime_text = mtime.to_string();
        let mut headers = vec![
            ("Content-Type", content_type.as_str()),
            ("Content-Length", length_text.as_str()),
            ("Trim-Path", trim_path.as_str()),
            ("Trim-Sign", auth.sign.as_str()),
            ("Trim-Token", auth.token.as_str()),
            ("Trim-Overwrite", overwrite_text.as_str()),
            ("Trim-Mtim", mtime_text.as_str()),
        ];
        if let Some(cookie) = &cookie {
            headers.push(("Cookie", cookie.as_str()));
        }
        let mut piece = vec![0u8; PIECE];
        let mut sent = 0u64;
        // Whether the failure, if any, was the connection's (not the file's).
        let mut on_the_wire = true;
        let sending = async {
            let writing = async {
                http::write_head(&mut stream, "POST", "/upload", &host, &headers).await?;
                stream.write_all(preamble.as_bytes()).await
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
                stream.write_all(epilogue.as_bytes()).await?;
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
        let (origin, resource) = resolve(&self.http_target().url, &location)?;
        if let Err(why) = crate::link::may_follow(&self.http_target().url, &origin) {
            return Err(FnosError::DownloadUrlRefused {
                origin: origin_of(&origin),
                why,
            });
        }
        let idle = self.http_target().idle_timeout;
        let (mut stream, host, cookie) = self.http_stream(&origin).await?;
        let mut headers = vec![("Accept", "*/*")];
        if let Some(cookie) = &cookie {
            headers.push(("Cookie", cookie.as_str()));
        }
        let asking = async {
            http::write_head(&mut stream, "GET", &resource, &host, &headers).await?;
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
        if !response.is_delimited() {
            return Err(transfer(
                "the server sent the file without a Content-Length or chunked framing: \
                 a cut connection could not be told from the end, so it was not saved",
            ));
        }
        let announced = response.content_length();
        if let (Some(listed), Some(announced)) = (listed, announced)
            && listed != announced
        {
            return Err(transfer(format!(
                "the server announces {announced} bytes for {remote}, but its listing gives \
                 {listed}: nothing was saved"
            )));
        }
        let total = announced.or(listed);
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
                received += n as u64;
                if let Some(listed) = listed.filter(|&l| received > l) {
                    return Err(transfer(format!(
                        "the server sends more than the {listed} bytes {remote} has in its \
                         listing: nothing was saved"
                    )));
                }
                file.write_all(&piece)
                    .await
                    .map_err(|e| io_error(&format!("writing {}", part.display()), e))?;
                progress(received, total.unwrap_or(0));
            }
            if let Some(listed) = listed.filter(|&l| received != l) {
                return Err(transfer(format!(
                    "the server sent {received} of the {listed} bytes {remote} has in its \
                     listing: nothing was saved"
                )));
            }
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

    /// A connection to `url`'s host and port, its `Host` header value, and
    /// the access-code cookie when one is configured.
    async fn http_stream(
        &self,
        url: &str,
    ) -> Result<(Box<dyn Io>, String, Option<Zeroizing<String>>), FnosError> {
        let target = self.http_target();
        let parsed = ws::Url::parse(url)
            .map_err(|_| transfer(format!("invalid address {}", origin_of(url))))?;
        let host = http::host_header(&parsed);
        let connecting = async {
            let cookie = match &target.link.access_code {
                Some(code) => Some(Link::verify_access_code(url, &target.link, code).await?),
                None => None,
            };
            let stream = Link::stream(&parsed, &target.link).await?;
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
        Ok((stream, host, cookie))
    }
}

/// A new temporary file beside `target`, created exclusively (never
/// following a planted link) under a name no one can guess.
fn part_file(target: &Path) -> Result<tempfile::NamedTempFile, FnosError> {
    let folder = match target.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let name = target
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "download".into());
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
fn origin_of(url: &str) -> String {
    match ws::Url::parse(url) {
        Ok(u) => format!(
            "{}://{}:{}",
            if u.secure { "https" } else { "http" },
            u.host,
            u.port
        ),
        Err(_) => "an unusable address".into(),
    }
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

/// The WebSocket-style origin and the request target for a download
/// location: an absolute `http(s)://` URL, or a path on the WebSocket's
/// own host.
fn resolve(ws_url: &str, location: &str) -> Result<(String, String), FnosError> {
    let absolute = if let Some(rest) = location.strip_prefix("https://") {
        Some(format!("wss://{rest}"))
    } else {
        location
            .strip_prefix("http://")
            .map(|rest| format!("ws://{rest}"))
    };
    match absolute {
        Some(url) => {
            let parsed = ws::Url::parse(&url)
                .map_err(|_| transfer("file.download answered an unusable url"))?;
            let resource = parsed.resource.to_owned();
            Ok((url, resource))
        }
        None if location.starts_with('/') => Ok((ws_url.to_owned(), location.to_owned())),
        None => Ok((ws_url.to_owned(), format!("/{location}"))),
    }
}

/// A file name inside a quoted multipart parameter: quotes and line breaks
/// percent-encoded, as browsers do.
fn quoted_file_name(name: &str) -> String {
    name.replace('"', "%22")
        .replace('\r', "%0D")
        .replace('\n', "%0A")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn download_locations_resolve_against_the_websocket_origin() {
        let ws = "ws://nas:5666/websocket?type=main";
        assert_eq!(
            resolve(ws, "/multiple-download?token=ab").unwrap(),
            (ws.to_owned(), "/multiple-download?token=ab".to_owned())
        );
        assert_eq!(
            resolve(ws, "multiple-download?token=ab").unwrap().1,
            "/multiple-download?token=ab"
        );
        assert_eq!(
            resolve(ws, "https://nas:5667/multiple-download?token=x").unwrap(),
            (
                "wss://nas:5667/multiple-download?token=x".to_owned(),
                "/multiple-download?token=x".to_owned()
            )
        );
    }

    #[test]
    fn download_urls_stay_on_the_websockets_host_and_never_drop_tls() {
        let wss = "wss://nas:5667/websocket?type=main";
        for (location, allowed) in [
            ("/multiple-download?token=a", true),
            ("https://nas:5667/multiple-download?token=a", true),
            ("http://nas:5667/multiple-download?token=a", false),
            ("https://evil:5667/multiple-download?token=a", false),
            ("https://nas:8443/multiple-download?token=a", false),
        ] {
            let (origin, _) = resolve(wss, location).unwrap();
            let verdict = crate::link::may_follow(wss, &origin);
            assert_eq!(verdict.is_ok(), allowed, "{location}: {verdict:?}");
        }
        assert_eq!(
            origin_of("wss://nas:5667/multiple-download?token=secret"),
            "https://nas:5667"
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

    #[test]
    fn multipart_file_names_cannot_break_the_part_header() {
        assert_eq!(quoted_file_name("a\"b\r\nc.txt"), "a%22b%0D%0Ac.txt");
    }
}
