//! [`CfmsClient`]: a CFMS session in a background task.
//!
//! CFMS has no request ids: the server answers in order, and the core's
//! session matches answers first-in first-out. The task owns the socket
//! and the session; handles send requests through a channel, so many
//! tasks may have requests queued at once and each gets its own answer.
//!
//! # The task's life
//!
//! ```text
//! Connecting --open--> server_info --> login (first time; later the kept token)
//!     ^                                   |
//!     |                                   v
//!     +--- backoff with jitter <--- Ready (register_listener: lockdown pushes)
//!          link lost / desync              |
//!                                  requests FIFO, answers by seq
//! ```
//!
//! - Requests made while (re)connecting wait in a queue, each bounded by
//!   its timeout. When a connection dies, every request in flight fails
//!   with [`CfmsError::ConnectionLost`]; none is resent, except those the
//!   caller sent with [`CfmsClient::request_idempotent`], which go out
//!   again on the next connection within their deadline.
//! - A two-factor challenge (202) asks [`CfmsOptions::two_factor`] for a
//!   code, again after a refused one (at most three codes per login).
//! - A token the server rejects is replaced by the core logging in again
//!   with the stored password; the core also refreshes the token before it
//!   expires.
//! - Dropping a request future is safe: the answer still arrives in order
//!   (so the FIFO stays aligned) and is thrown away.
//!
//! - [`CfmsClient::download`] streams a document's ciphertext to a
//!   temporary file, decrypts and verifies it in a second pass, and renames
//!   the result into place only on success.
//!
//! - [`CfmsClient::upload`] hashes the file in a first streamed pass,
//!   then sends it in the frames the server asked for, reading as it goes.

use std::collections::HashMap;
use std::time::Duration as StdDuration;

use futures_util::Stream;
use naslink_core::cfms::{
    self, Buffers, DownloadError, DownloadKey, Event, FileDecryptor, LoginError, MessageKind,
    RequestError, Seq, Session,
};
use naslink_core::time::Duration;
use tokio::sync::{broadcast, mpsc, oneshot};
use zeroize::Zeroizing;

use crate::fnos::Backoff;
use crate::link::{ConnectError, Incoming, Link, LinkOptions, deadline, describe_closed, now};
use crate::two_factor::{CodeWait, TwoFactor};

/// Requests queued on the connection at once (the core's FIFO size).
pub const MAX_IN_FLIGHT: usize = 16;

/// The largest message received whole: directory listings, and download
/// chunks (2 MiB of ciphertext in base64 is about 2.8 MB).
const RECEIVE_CAPACITY: usize = 4 * 1024 * 1024;

/// Chunk hashes kept per download: with the server's 2 MiB chunks, files
/// up to 16 GiB (256 KiB of hashes).
const MAX_CHUNKS: usize = 8192;

/// What [`CfmsClient::connect`] needs.
#[derive(Clone)]
pub struct CfmsOptions {
    /// `wss://HOST:5104/` (or `ws://` for a plain test server).
    pub url: String,
    /// User name.
    pub user: String,
    /// Password (wiped from memory when dropped).
    pub password: Zeroizing<String>,
    /// Transport: TLS trust.
    pub link: LinkOptions,
    /// Default deadline of each request (a wrong password is answered
    /// after about 3 s on purpose).
    pub request_timeout: StdDuration,
    /// Reconnect delays.
    pub backoff: Backoff,
    /// Where two-factor codes (TOTP or backup codes) come from; without
    /// one, an account that needs a code fails its login with
    /// [`CfmsError::TwoFactorRequired`].
    pub two_factor: Option<TwoFactor>,
}

impl std::fmt::Debug for CfmsOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CfmsOptions")
            .field("url", &self.url)
            .field("user", &self.user)
            .field("password", &"<hidden>")
            .finish_non_exhaustive()
    }
}

impl CfmsOptions {
    /// Options with defaults: the system certificate store, 30 s requests,
    /// default backoff.
    pub fn new(url: &str, user: &str, password: &str) -> Self {
        CfmsOptions {
            url: url.to_owned(),
            user: user.to_owned(),
            password: Zeroizing::new(password.to_owned()),
            link: LinkOptions {
                receive_buffer: RECEIVE_CAPACITY,
                ..LinkOptions::default()
            },
            request_timeout: StdDuration::from_secs(30),
            backoff: Backoff::default(),
            two_factor: None,
        }
    }
}

/// Why a request or the connection failed.
#[derive(Debug)]
pub enum CfmsError {
    /// The connection could not be opened.
    Connect(ConnectError),
    /// The server speaks another protocol version.
    ProtocolUnsupported(Option<u32>),
    /// The login was refused.
    LoginRefused(LoginError),
    /// The account needs a two-factor code and no source of codes was
    /// given, or the source gave up.
    TwoFactorRequired,
    /// The server answered with a code other than 200.
    Server {
        /// The `code`.
        code: i64,
        /// The `message`, if any.
        message: String,
        /// The whole answer.
        body: serde_json::Value,
    },
    /// No answer before the deadline.
    TimedOut,
    /// The connection dropped before the answer; the request was not resent.
    ConnectionLost,
    /// The client is shut down.
    Closed,
    /// The request could not be written (too large, `data` not an object).
    Request(String),
    /// A transfer failed (bad header, chunk out of order, hash mismatch...).
    Transfer(String),
    /// A local file could not be read or written.
    Io(std::io::Error),
}

impl std::fmt::Display for CfmsError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CfmsError::Connect(e) => e.fmt(f),
            CfmsError::ProtocolUnsupported(v) => {
                write!(
                    f,
                    "the server speaks CFMS protocol {v:?}, this client 3 to 5"
                )
            }
            CfmsError::LoginRefused(e) => write!(f, "login refused: {e}"),
            CfmsError::TwoFactorRequired => {
                f.write_str("the account needs a two-factor code and none was given")
            }
            CfmsError::Server { code, message, .. } => {
                write!(f, "the server refused: {message} (code {code})")
            }
            CfmsError::TimedOut => f.write_str("no answer before the request's deadline"),
            CfmsError::ConnectionLost => f.write_str(
                "the connection dropped before the answer arrived (the request was not resent)",
            ),
            CfmsError::Closed => f.write_str("the client is shut down"),
            CfmsError::Request(why) => write!(f, "cannot send the request: {why}"),
            CfmsError::Transfer(why) => write!(f, "transfer failed: {why}"),
            CfmsError::Io(e) => write!(f, "local file: {e}"),
        }
    }
}

impl std::error::Error for CfmsError {}

/// Lifecycle changes and pushes.
#[derive(Debug, Clone, PartialEq)]
pub enum CfmsEvent {
    /// Connected and logged in (also after each reconnect).
    Ready {
        /// Lockdown state from `server_info`.
        lockdown: bool,
    },
    /// Lockdown changed (pushed by the server).
    Lockdown {
        /// Whether it is on now.
        on: bool,
    },
    /// The connection ended; requests in flight failed.
    Disconnected {
        /// Why, in words.
        reason: String,
    },
    /// The next connection attempt starts after `delay`.
    Reconnecting {
        /// Attempts since the last good connection (1-based).
        attempt: u32,
        /// The wait before it.
        delay: StdDuration,
    },
    /// The server asked for a two-factor code; the configured source is
    /// being asked (attempt 1-based).
    TwoFactorRequired {
        /// Which code of this login is being asked for.
        attempt: u32,
    },
}

struct Command {
    action: String,
    data: String,
    reply: oneshot::Sender<Result<serde_json::Value, CfmsError>>,
    /// Idempotent requests: sent again after a reconnect until then.
    resend_until: Option<tokio::time::Instant>,
}

/// A request whose answer is awaited.
struct InFlight {
    reply: Reply,
    /// The request itself, when it may be sent again after a reconnect.
    again: Option<(String, String, tokio::time::Instant)>,
}

/// Where the task sends a finished download's key and chunk hashes.
type DownloadReply = oneshot::Sender<Result<(DownloadKey, Vec<[u8; 32]>), CfmsError>>;

/// A download the task runs: ciphertext into `cipher`, then the key and
/// chunk hashes back to the caller for the decryption pass.
struct DownloadJob {
    task_id: String,
    cipher: std::fs::File,
    progress: mpsc::UnboundedSender<(u64, u64)>,
    reply: DownloadReply,
}

/// Ciphertext gathered before it goes to the writer thread; the run loop
/// hands it over (waiting for room) before reading the link again.
const DISK_BLOCK: usize = 256 * 1024;
/// Blocks queued between the connection task and the file's thread.
const DISK_QUEUE: usize = 4;

/// A download under way. The file is written on the blocking pool: the
/// connection task only gathers ciphertext into `buffer`.
struct ActiveDownload {
    buffer: Vec<u8>,
    to_disk: mpsc::Sender<Vec<u8>>,
    writer: tokio::task::JoinHandle<std::io::Result<()>>,
    progress: mpsc::UnboundedSender<(u64, u64)>,
    reply: DownloadReply,
    received: u64,
    size: u64,
}

/// An upload the task runs: the file's bytes, sent in the frames the
/// server asked for.
struct UploadJob {
    task_id: String,
    source: std::fs::File,
    size: u64,
    sha256: [u8; 32],
    progress: mpsc::UnboundedSender<(u64, u64)>,
    reply: oneshot::Sender<Result<u64, CfmsError>>,
}

/// An upload under way.
struct ActiveUpload {
    /// Blocks read on the blocking pool; an empty block marks the end.
    from_disk: mpsc::Receiver<std::io::Result<Vec<u8>>>,
    /// Read from the file, not yet accepted by the session.
    pending: Vec<u8>,
    /// The binary message being assembled.
    message: Vec<u8>,
    /// Set after `UploadReady`; cleared once the final empty call is done.
    sending: bool,
    at_eof: bool,
    sent: u64,
    size: u64,
    progress: mpsc::UnboundedSender<(u64, u64)>,
    reply: oneshot::Sender<Result<u64, CfmsError>>,
}

enum Job {
    Request(Command),
    Download(DownloadJob),
    Upload(UploadJob),
}

impl Job {
    fn abandoned(&self) -> bool {
        match self {
            Job::Request(c) => c.reply.is_closed(),
            Job::Download(d) => d.reply.is_closed(),
            Job::Upload(u) => u.reply.is_closed(),
        }
    }

    fn fail(self, error: CfmsError) {
        match self {
            Job::Request(c) => {
                let _ = c.reply.send(Err(error));
            }
            Job::Download(d) => {
                let _ = d.reply.send(Err(error));
            }
            Job::Upload(u) => {
                let _ = u.reply.send(Err(error));
            }
        }
    }
}

/// A handle to a CFMS session running in the background.
#[derive(Debug, Clone)]
pub struct CfmsClient {
    commands: mpsc::UnboundedSender<Job>,
    events: broadcast::Sender<CfmsEvent>,
    timeout: StdDuration,
    server: serde_json::Value,
}

impl CfmsClient {
    /// Connect, check the protocol version, log in, and keep the session
    /// alive in a background task. Fails if the first connection or login
    /// fails.
    pub async fn connect(options: CfmsOptions) -> Result<CfmsClient, CfmsError> {
        let (commands, rx) = mpsc::unbounded_channel();
        let (events, _) = broadcast::channel(256);
        let (first_tx, first_rx) = oneshot::channel();
        let timeout = options.request_timeout;
        let span = tracing::info_span!("cfms", url = %options.url, user = %options.user);
        tokio::spawn(tracing::Instrument::instrument(
            drive(options, rx, events.clone(), first_tx),
            span,
        ));
        let server = first_rx.await.map_err(|_| CfmsError::Closed)??;
        Ok(CfmsClient {
            commands,
            events,
            timeout,
            server,
        })
    }

    /// The first connection's `server_info` answer (`data`: `server_name`,
    /// `version`, `protocol_version`, `lockdown`).
    pub fn server_info(&self) -> &serde_json::Value {
        &self.server
    }

    /// Send `action` with `data` (a JSON object) and wait for the answer
    /// (code 200; anything else is [`CfmsError::Server`]).
    pub async fn request(
        &self,
        action: &str,
        data: &serde_json::Value,
    ) -> Result<serde_json::Value, CfmsError> {
        self.submit(action, data, false).await
    }

    /// [`request`](Self::request) for an action the caller knows to be
    /// idempotent (a read such as `list_directory` or `get_document_info`):
    /// if the connection drops before its answer, it is sent again once the
    /// client has reconnected, as often as its deadline allows, instead of
    /// failing with [`CfmsError::ConnectionLost`]. Never use it for actions
    /// that change something.
    pub async fn request_idempotent(
        &self,
        action: &str,
        data: &serde_json::Value,
    ) -> Result<serde_json::Value, CfmsError> {
        self.submit(action, data, true).await
    }

    async fn submit(
        &self,
        action: &str,
        data: &serde_json::Value,
        resend: bool,
    ) -> Result<serde_json::Value, CfmsError> {
        if !data.is_object() {
            return Err(CfmsError::Request("data must be a JSON object".into()));
        }
        let (reply, answer) = oneshot::channel();
        self.commands
            .send(Job::Request(Command {
                action: action.to_owned(),
                data: data.to_string(),
                reply,
                resend_until: resend.then(|| tokio::time::Instant::now() + self.timeout),
            }))
            .map_err(|_| CfmsError::Closed)?;
        match tokio::time::timeout(self.timeout, answer).await {
            Ok(Ok(result)) => result,
            Ok(Err(_)) => Err(CfmsError::Closed),
            Err(_) => Err(CfmsError::TimedOut),
        }
    }

    /// Download document `document_id` into `target`, calling
    /// `progress(received, total)` as ciphertext arrives.
    ///
    /// Memory stays bounded: the ciphertext streams into a temporary file
    /// beside `target`, then a decryption pass (checking every chunk's and
    /// the file's SHA-256) writes a second temporary file that is renamed
    /// to `target` only when everything checked out. On any failure both
    /// temporary files are removed and `target` is left untouched.
    /// Requests made meanwhile wait until the transfer ends.
    pub async fn download(
        &self,
        document_id: &str,
        target: &std::path::Path,
        mut progress: impl FnMut(u64, u64) + Send,
    ) -> Result<u64, CfmsError> {
        let answer = self
            .request(
                "get_document",
                &serde_json::json!({ "document_id": document_id }),
            )
            .await?;
        let task_id = answer["data"]["task_data"]["task_id"]
            .as_str()
            .ok_or_else(|| CfmsError::Transfer("get_document gave no task_id".into()))?
            .to_owned();
        let cipher_path = sibling(target, "cipher");
        let plain_path = sibling(target, "part");
        let outcome = async {
            let cipher = tokio::fs::File::create(&cipher_path)
                .await
                .map_err(CfmsError::Io)?
                .into_std()
                .await;
            let (progress_tx, mut progress_rx) = mpsc::unbounded_channel();
            let (reply, answer) = oneshot::channel();
            self.commands
                .send(Job::Download(DownloadJob {
                    task_id,
                    cipher,
                    progress: progress_tx,
                    reply,
                }))
                .map_err(|_| CfmsError::Closed)?;
            let mut answer = std::pin::pin!(answer);
            let (key, hashes) = loop {
                tokio::select! {
                    biased;
                    // `Some(..)`: the branch is disabled once the task
                    // drops its sender.
                    Some((done, total)) = progress_rx.recv() => progress(done, total),
                    result = &mut answer => break result.map_err(|_| CfmsError::Closed)??,
                }
            };
            while let Ok((done, total)) = progress_rx.try_recv() {
                progress(done, total);
            }
            let (cipher_path, plain_path) = (cipher_path.clone(), plain_path.clone());
            tokio::task::spawn_blocking(move || {
                decrypt_file(&key, &hashes, &cipher_path, &plain_path)
            })
            .await
            .map_err(|e| CfmsError::Transfer(format!("decryption task: {e}")))?
        }
        .await;
        let _ = tokio::fs::remove_file(&cipher_path).await;
        match outcome {
            Ok(size) => {
                tokio::fs::rename(&plain_path, target)
                    .await
                    .map_err(CfmsError::Io)?;
                Ok(size)
            }
            Err(e) => {
                let _ = tokio::fs::remove_file(&plain_path).await;
                Err(e)
            }
        }
    }

    /// Upload `source` as a new document `title` in folder `folder_id`
    /// (`None`: the root), calling `progress(sent, total)` per frame.
    /// Returns the new document's id.
    ///
    /// Two passes over the file, both streamed: SHA-256 first (the header
    /// announces it), then the frames; the core checks that what was sent
    /// hashes to what was announced. Requests made meanwhile wait.
    pub async fn upload(
        &self,
        source: &std::path::Path,
        folder_id: Option<&str>,
        title: &str,
        mut progress: impl FnMut(u64, u64) + Send,
    ) -> Result<String, CfmsError> {
        let path = source.to_owned();
        let (size, sha256) = tokio::task::spawn_blocking(move || hash_file(&path))
            .await
            .map_err(|e| CfmsError::Transfer(format!("hashing task: {e}")))??;
        let file = tokio::fs::File::open(source)
            .await
            .map_err(CfmsError::Io)?
            .into_std()
            .await;
        let created = self
            .request(
                "create_document",
                &serde_json::json!({ "title": title, "folder_id": folder_id }),
            )
            .await?;
        let task_id = created["data"]["task_data"]["task_id"]
            .as_str()
            .ok_or_else(|| CfmsError::Transfer("create_document gave no task_id".into()))?
            .to_owned();
        let (progress_tx, mut progress_rx) = mpsc::unbounded_channel();
        let (reply, answer) = oneshot::channel();
        self.commands
            .send(Job::Upload(UploadJob {
                task_id,
                source: file,
                size,
                sha256,
                progress: progress_tx,
                reply,
            }))
            .map_err(|_| CfmsError::Closed)?;
        let mut answer = std::pin::pin!(answer);
        loop {
            tokio::select! {
                biased;
                Some((done, total)) = progress_rx.recv() => progress(done, total),
                result = &mut answer => {
                    result.map_err(|_| CfmsError::Closed)??;
                    break;
                }
            }
        }
        while let Ok((done, total)) = progress_rx.try_recv() {
            progress(done, total);
        }
        if let Some(id) = created["data"]["document_id"].as_str() {
            return Ok(id.to_owned());
        }
        newest_document(self, title, folder_id)
            .await?
            .ok_or_else(|| CfmsError::Transfer("the uploaded document is not listed".into()))
    }

    /// Lifecycle events and lockdown pushes from now on.
    pub fn events(&self) -> impl Stream<Item = CfmsEvent> + Send + 'static {
        let rx = self.events.subscribe();
        futures_util::stream::unfold(rx, |mut rx| async move {
            loop {
                match rx.recv().await {
                    Ok(event) => return Some((event, rx)),
                    Err(broadcast::error::RecvError::Lagged(_)) => continue,
                    Err(broadcast::error::RecvError::Closed) => return None,
                }
            }
        })
    }
}

/// Size and SHA-256 of a file, read in blocks.
fn hash_file(path: &std::path::Path) -> Result<(u64, [u8; 32]), CfmsError> {
    use sha2::Digest;
    use std::io::Read;
    let mut file = std::fs::File::open(path).map_err(CfmsError::Io)?;
    let mut hasher = sha2::Sha256::new();
    let mut block = vec![0u8; 256 * 1024];
    let mut size = 0u64;
    loop {
        let n = file.read(&mut block).map_err(CfmsError::Io)?;
        if n == 0 {
            break;
        }
        hasher.update(&block[..n]);
        size += n as u64;
    }
    Ok((size, hasher.finalize().into()))
}

/// The newest document titled `title` in the folder (protocol 3 and 4 do
/// not return the new document's id).
async fn newest_document(
    client: &CfmsClient,
    title: &str,
    folder_id: Option<&str>,
) -> Result<Option<String>, CfmsError> {
    let listing = client
        .request(
            "list_directory",
            &serde_json::json!({ "folder_id": folder_id }),
        )
        .await?;
    Ok(listing["data"]["documents"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|d| d["title"] == title)
        .max_by(|a, b| {
            let t = |d: &serde_json::Value| d["created_time"].as_f64().unwrap_or(0.0);
            t(a).total_cmp(&t(b))
        })
        .and_then(|d| d["id"].as_str())
        .map(str::to_owned))
}

/// `.NAME.naslink-WHAT` beside `target`: same directory, so the final
/// rename stays on one file system (CFMS and fnOS downloads alike).
pub(crate) fn sibling(target: &std::path::Path, what: &str) -> std::path::PathBuf {
    let name = target
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "download".into());
    target.with_file_name(format!(".{name}.naslink-{what}"))
}

impl ActiveDownload {
    /// Give up: the writer is told to stop, and `error` reaches the caller
    /// only once the writer has closed the file, so the caller's removal
    /// of the temporary file cannot race a last write (on Windows an open
    /// file could not be removed).
    fn fail(self, error: CfmsError) {
        let ActiveDownload {
            to_disk,
            writer,
            reply,
            ..
        } = self;
        drop(to_disk);
        tokio::spawn(async move {
            let _ = writer.await;
            let _ = reply.send(Err(error));
        });
    }
}

/// The file's side of a download, on the blocking pool: blocks in, written
/// in order, flushed at the end (when the sender is dropped).
fn write_blocks(
    file: std::fs::File,
    mut blocks: mpsc::Receiver<Vec<u8>>,
) -> tokio::task::JoinHandle<std::io::Result<()>> {
    tokio::task::spawn_blocking(move || {
        use std::io::Write;
        let mut file = file;
        while let Some(block) = blocks.blocking_recv() {
            file.write_all(&block)?;
        }
        file.flush()
    })
}

/// The file's side of an upload, on the blocking pool: 64 KiB blocks out,
/// then an empty block at the end (or the read error). Stops when the
/// receiver is dropped.
fn read_blocks(file: std::fs::File) -> mpsc::Receiver<std::io::Result<Vec<u8>>> {
    let (tx, rx) = mpsc::channel(DISK_QUEUE);
    tokio::task::spawn_blocking(move || {
        use std::io::Read;
        let mut file = file;
        loop {
            let mut block = vec![0u8; 64 * 1024];
            let read = file.read(&mut block).map(|n| {
                block.truncate(n);
                block
            });
            let last = !matches!(&read, Ok(b) if !b.is_empty());
            if tx.blocking_send(read).is_err() || last {
                return;
            }
        }
    });
    rx
}

/// The decryption pass: ciphertext file in, verified plaintext file out.
fn decrypt_file(
    key: &DownloadKey,
    hashes: &[[u8; 32]],
    cipher_path: &std::path::Path,
    plain_path: &std::path::Path,
) -> Result<u64, CfmsError> {
    use std::io::{Read, Write};
    let mut decryptor =
        FileDecryptor::new(key, hashes).map_err(|e| CfmsError::Transfer(e.to_string()))?;
    let mut input = std::fs::File::open(cipher_path).map_err(CfmsError::Io)?;
    let mut output =
        std::io::BufWriter::new(std::fs::File::create(plain_path).map_err(CfmsError::Io)?);
    let mut block = vec![0u8; 256 * 1024];
    loop {
        let n = input.read(&mut block).map_err(CfmsError::Io)?;
        if n == 0 {
            break;
        }
        decryptor
            .decrypt(&mut block[..n])
            .map_err(|e| CfmsError::Transfer(e.to_string()))?;
        output.write_all(&block[..n]).map_err(CfmsError::Io)?;
    }
    decryptor
        .finish()
        .map_err(|e| CfmsError::Transfer(e.to_string()))?;
    let file = output
        .into_inner()
        .map_err(|e| CfmsError::Io(e.into_error()))?;
    file.sync_all().map_err(CfmsError::Io)?;
    Ok(key.file_size)
}

type Reply = oneshot::Sender<Result<serde_json::Value, CfmsError>>;

/// What the connection is waiting for before it is ready.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    ServerInfo,
    Login,
    Ready,
}

enum Ended {
    Lost(String),
    Stop,
}

struct Driver<'s> {
    session: Session<'s, MAX_IN_FLIGHT>,
    tx: Vec<u8>,
    queued: Vec<Job>,
    in_flight: HashMap<Seq, InFlight>,
    download: Option<ActiveDownload>,
    upload: Option<ActiveUpload>,
    events: broadcast::Sender<CfmsEvent>,
    first: Option<oneshot::Sender<Result<serde_json::Value, CfmsError>>>,
    server: serde_json::Value,
    phase: Phase,
    /// Messages written while no link was at hand, sent at the next step.
    outbox: Vec<String>,
    code: CodeWait,
}

fn unix_secs_f64() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

async fn drive(
    options: CfmsOptions,
    mut commands: mpsc::UnboundedReceiver<Job>,
    events: broadcast::Sender<CfmsEvent>,
    first: oneshot::Sender<Result<serde_json::Value, CfmsError>>,
) {
    let mut rx = vec![0u8; RECEIVE_CAPACITY];
    let mut hashes = vec![[0u8; 32]; MAX_CHUNKS];
    let config = cfms::Config {
        request_timeout: Duration::from_millis(options.request_timeout.as_millis() as u64),
        ..cfms::Config::default()
    };
    let mut driver = Driver {
        session: Session::new(
            config,
            Buffers {
                rx: &mut rx,
                chunk_hashes: &mut hashes,
            },
        ),
        tx: vec![0; 256 * 1024],
        queued: Vec::new(),
        in_flight: HashMap::new(),
        download: None,
        upload: None,
        events,
        first: Some(first),
        server: serde_json::Value::Null,
        phase: Phase::ServerInfo,
        outbox: Vec::new(),
        code: CodeWait::new(options.two_factor.clone()),
    };
    let mut attempt: u32 = 0;
    loop {
        match Link::open(&options.url, &options.link).await {
            Ok(link) => {
                tracing::info!("connected");
                driver.session.set_unix_time(now(), unix_secs_f64());
                match driver.run(link, &options, &mut commands).await {
                    Ended::Stop => return,
                    Ended::Lost(reason) => {
                        tracing::warn!(%reason, "connection lost");
                        let _ = driver.events.send(CfmsEvent::Disconnected { reason });
                        attempt = 0;
                    }
                }
            }
            Err(e) => {
                if let Some(first) = driver.first.take() {
                    let _ = first.send(Err(CfmsError::Connect(e)));
                    return;
                }
                tracing::warn!(error = %e, "reconnect failed");
            }
        }
        attempt = attempt.saturating_add(1);
        let delay = options.backoff.delay(attempt - 1);
        let _ = driver
            .events
            .send(CfmsEvent::Reconnecting { attempt, delay });
        let wake = tokio::time::Instant::now() + delay;
        loop {
            driver.queued.retain(|job| !job.abandoned());
            tokio::select! {
                () = tokio::time::sleep_until(wake) => break,
                cmd = commands.recv() => match cmd {
                    Some(cmd) => driver.queued.push(cmd),
                    None => return,
                },
            }
        }
    }
}

impl Driver<'_> {
    async fn run(
        &mut self,
        mut link: Link,
        options: &CfmsOptions,
        commands: &mut mpsc::UnboundedReceiver<Job>,
    ) -> Ended {
        self.phase = Phase::ServerInfo;
        let ended = match self.session.server_info(now(), &mut self.tx) {
            Ok(sent) => {
                self.queue_text(sent.len);
                // One timer for the deadlines, moved only when they move.
                let timer = tokio::time::sleep(StdDuration::from_secs(3600));
                tokio::pin!(timer);
                let mut timer_armed = false;
                loop {
                    if let Some(ended) = self.step(&mut link, options) {
                        break ended;
                    }
                    link.flush().await;
                    if link.is_closed() {
                        break Ended::Lost("connection closed".into());
                    }
                    let wait = [self.session.poll_timeout(), link.poll_timeout()]
                        .into_iter()
                        .flatten()
                        .min()
                        .map(deadline);
                    match wait {
                        Some(at) if !timer_armed || at != timer.deadline() => {
                            timer.as_mut().reset(at);
                            timer_armed = true;
                        }
                        Some(_) => {}
                        None => timer_armed = false,
                    }
                    if let Some(d) = self.download.as_mut()
                        && d.buffer.len() >= DISK_BLOCK
                    {
                        // Waiting here is the back-pressure: a slow disk
                        // slows the reads instead of growing memory.
                        let block = std::mem::take(&mut d.buffer);
                        if d.to_disk.send(block).await.is_err() {
                            // The writer stopped on an error; its verdict
                            // arrives with DownloadFinished. Nothing more is
                            // kept meanwhile.
                            d.buffer = Vec::new();
                        }
                    }
                    tokio::select! {
                        n = link.read() => {
                            if n == 0 {
                                link.handle_eof();
                            }
                            let mut incoming = Vec::new();
                            link.process(|m| incoming.push(m));
                            let mut stop = None;
                            for message in incoming {
                                let outcome = match message {
                                    Incoming::Text(t) => self.handle(MessageKind::Text, t.as_bytes(), options),
                                    Incoming::Binary(b) => self.handle(MessageKind::Binary, &b, options),
                                    Incoming::Closed(c) => Some(Ended::Lost(describe_closed(c))),
                                };
                                stop = stop.or(outcome);
                            }
                            if let Some(ended) = stop {
                                break ended;
                            }
                        }
                        cmd = commands.recv() => match cmd {
                            Some(cmd) => {
                                // Every job already waiting goes out in the
                                // same write.
                                self.queued.push(cmd);
                                while let Ok(cmd) = commands.try_recv() {
                                    self.queued.push(cmd);
                                }
                            }
                            None => {
                                link.close();
                                link.flush().await;
                                break Ended::Stop;
                            }
                        },
                        () = &mut timer, if timer_armed => {
                            timer_armed = false;
                            self.session.handle_timeout(now());
                            link.handle_timeout();
                        }
                        code = self.code.next() => {
                            let sent = code.map(|code| {
                                self.session.submit_two_factor(now(), &code, &mut self.tx)
                            });
                            match sent {
                                Some(Ok(sent)) => self.queue_text(sent.len),
                                _ => {
                                    // After a refused code, the refusal is the news.
                                    let error = if self.code.refused_before() {
                                        CfmsError::LoginRefused(LoginError::InvalidTwoFactorCode)
                                    } else {
                                        CfmsError::TwoFactorRequired
                                    };
                                    self.code.reset();
                                    break self.fail_first(error).unwrap_or(Ended::Stop);
                                }
                            }
                        }
                        () = tokio::task::yield_now(), if self.upload_busy() => {}
                    }
                }
            }
            Err(e) => Ended::Lost(format!("server_info: {e:?}")),
        };
        link.close();
        link.flush().await;
        self.session.handle_disconnect(now());
        while let Some(event) = self.session.poll_event() {
            let _ = self.on_event(event, &mut None, options);
        }
        for (_, request) in std::mem::take(&mut self.in_flight) {
            self.lost(request);
        }
        if let Some(d) = self.download.take() {
            d.fail(CfmsError::ConnectionLost);
        }
        if let Some(u) = self.upload.take() {
            let _ = u.reply.send(Err(CfmsError::ConnectionLost));
        }
        ended
    }

    /// Keep the message the session wrote into `tx` for the next step.
    fn queue_text(&mut self, len: usize) {
        match std::str::from_utf8(&self.tx[..len]) {
            Ok(text) => self.outbox.push(text.to_owned()),
            Err(_) => tracing::error!("the session wrote a non-UTF-8 message"),
        }
    }

    /// Send what the session owes and the queued requests once ready.
    fn step(&mut self, link: &mut Link, options: &CfmsOptions) -> Option<Ended> {
        loop {
            match self.session.poll_transmit(now(), &mut self.tx) {
                Ok(Some(t)) if t.kind == MessageKind::Text => self.queue_text(t.len),
                Ok(Some(_)) => tracing::warn!("binary transmit without a transfer"),
                Ok(None) => break,
                Err(e) => return Some(Ended::Lost(format!("session message: {e:?}"))),
            }
        }
        if let Some(ended) = self.drain_events(options) {
            return Some(ended);
        }
        if self.phase == Phase::Ready {
            let mut waiting = Vec::new();
            for job in std::mem::take(&mut self.queued) {
                if job.abandoned() {
                    continue;
                }
                // Requests keep their order behind a transfer: nothing
                // may be pipelined while one runs.
                if !waiting.is_empty() || self.download.is_some() || self.upload.is_some() {
                    waiting.push(job);
                    continue;
                }
                let result = match &job {
                    Job::Request(cmd) => {
                        self.session
                            .request(now(), &cmd.action, cmd.data.as_bytes(), &mut self.tx)
                    }
                    Job::Download(d) => self.session.download_file(now(), &d.task_id, &mut self.tx),
                    Job::Upload(u) => self.session.upload_file(
                        now(),
                        &u.task_id,
                        cfms::UploadSource {
                            size: u.size,
                            sha256: Some(u.sha256),
                        },
                        &mut self.tx,
                    ),
                };
                match result {
                    Ok(sent) => {
                        self.queue_text(sent.len);
                        match job {
                            Job::Request(cmd) => {
                                tracing::debug!(action = %cmd.action, seq = sent.seq.0, "request");
                                let again =
                                    cmd.resend_until.map(|until| (cmd.action, cmd.data, until));
                                self.in_flight.insert(
                                    sent.seq,
                                    InFlight {
                                        reply: cmd.reply,
                                        again,
                                    },
                                );
                            }
                            Job::Upload(u) => {
                                tracing::info!(seq = sent.seq.0, size = u.size, "upload");
                                self.upload = Some(ActiveUpload {
                                    from_disk: read_blocks(u.source),
                                    pending: Vec::new(),
                                    message: Vec::new(),
                                    sending: false,
                                    at_eof: false,
                                    sent: 0,
                                    size: u.size,
                                    progress: u.progress,
                                    reply: u.reply,
                                });
                            }
                            Job::Download(d) => {
                                tracing::info!(seq = sent.seq.0, "download");
                                let (to_disk, blocks) = mpsc::channel(DISK_QUEUE);
                                self.download = Some(ActiveDownload {
                                    buffer: Vec::new(),
                                    to_disk,
                                    writer: write_blocks(d.cipher, blocks),
                                    progress: d.progress,
                                    reply: d.reply,
                                    received: 0,
                                    size: 0,
                                });
                            }
                        }
                    }
                    Err(cfms::Error::QueueFull { .. } | cfms::Error::TransferActive) => {
                        waiting.push(job)
                    }
                    Err(e) => job.fail(CfmsError::Request(format!("{e:?}"))),
                }
            }
            self.queued = waiting;
        }
        for text in self.outbox.drain(..) {
            if let Err(e) = link.send_text(&text) {
                tracing::warn!(error = ?e, "send failed");
            }
        }
        self.feed_upload(link)
    }

    /// Whether upload bytes are waiting to be sent (the loop must not sleep).
    fn upload_busy(&self) -> bool {
        self.upload.as_ref().is_some_and(|u| u.sending)
    }

    /// Send up to a few frames of the file; the loop comes back for more
    /// after flushing, so memory stays at one read buffer.
    fn feed_upload(&mut self, link: &mut Link) -> Option<Ended> {
        let up = self.upload.as_mut()?;
        if !up.sending {
            return None;
        }
        // The link's transmit queue holds 256 KiB and is flushed before the
        // next call: 16 frames of at most 8 KiB (protocol 3) or a few
        // larger ones stay well inside it.
        let mut queued = 0usize;
        while queued < 128 * 1024 {
            if up.pending.is_empty() && !up.at_eof {
                match up.from_disk.try_recv() {
                    Ok(Ok(block)) if block.is_empty() => up.at_eof = true,
                    Ok(Ok(block)) => up.pending = block,
                    // The reader is behind: the loop comes back (it does
                    // not sleep while an upload is sending).
                    Err(mpsc::error::TryRecvError::Empty) => break,
                    Ok(Err(e)) => {
                        let up = self.upload.take()?;
                        let _ = up.reply.send(Err(CfmsError::Io(e)));
                        return Some(Ended::Lost("upload source unreadable".into()));
                    }
                    Err(mpsc::error::TryRecvError::Disconnected) => {
                        let up = self.upload.take()?;
                        let _ = up.reply.send(Err(CfmsError::Transfer(
                            "the upload's reader stopped".into(),
                        )));
                        return Some(Ended::Lost("upload source unreadable".into()));
                    }
                }
            }
            let write = match self.session.upload_write(now(), &up.pending) {
                Ok(w) => w,
                Err(e) => {
                    let up = self.upload.take()?;
                    let _ = up.reply.send(Err(CfmsError::Transfer(format!("{e:?}"))));
                    return Some(Ended::Lost("upload out of step".into()));
                }
            };
            if write.message_start {
                up.message.clear();
            }
            up.message.extend_from_slice(&up.pending[..write.accepted]);
            up.pending.drain(..write.accepted);
            up.sent += write.accepted as u64;
            if write.message_end {
                if let Err(e) = link.send_binary(&up.message) {
                    // A lost frame would corrupt the file: end the
                    // connection instead (the upload fails, nothing is
                    // stored).
                    let up = self.upload.take()?;
                    let _ = up
                        .reply
                        .send(Err(CfmsError::Transfer(format!("frame not queued: {e:?}"))));
                    return Some(Ended::Lost("upload frame not queued".into()));
                }
                queued += up.message.len();
                let _ = up.progress.send((up.sent, up.size));
            }
            if up.at_eof && up.pending.is_empty() && write.accepted == 0 {
                // The final empty call is done: wait for the verdict.
                up.sending = false;
                break;
            }
        }
        None
    }

    fn handle(
        &mut self,
        kind: MessageKind,
        payload: &[u8],
        options: &CfmsOptions,
    ) -> Option<Ended> {
        let Driver {
            session, download, ..
        } = self;
        // Ciphertext is gathered here and handed to the file's thread by
        // the run loop before the next read: memory stays bounded by
        // DISK_QUEUE blocks plus one read's messages whatever the file size.
        let mut sink = |bytes: &[u8]| {
            if let Some(d) = download.as_mut() {
                d.buffer.extend_from_slice(bytes);
            }
        };
        match session.handle_message(now(), kind, payload, &mut sink) {
            Ok(()) => {}
            Err(cfms::Error::Broken) => return Some(Ended::Lost("answers out of step".into())),
            Err(e) => tracing::warn!(error = ?e, "message not accepted"),
        }
        // The body of a reply is only valid until the next message: take
        // it now.
        let body = self
            .session
            .response()
            .and_then(|r| serde_json::from_slice(r.root().raw()).ok())
            .unwrap_or(serde_json::Value::Null);
        let mut pending_body = Some(body);
        while let Some(event) = self.session.poll_event() {
            if let Some(ended) = self.on_event(event, &mut pending_body, options) {
                return Some(ended);
            }
        }
        None
    }

    fn drain_events(&mut self, options: &CfmsOptions) -> Option<Ended> {
        let mut none = None;
        while let Some(event) = self.session.poll_event() {
            if let Some(ended) = self.on_event(event, &mut none, options) {
                return Some(ended);
            }
        }
        None
    }

    fn on_event(
        &mut self,
        event: Event,
        body: &mut Option<serde_json::Value>,
        options: &CfmsOptions,
    ) -> Option<Ended> {
        match event {
            Event::ServerInfo {
                seq: Some(_),
                lockdown,
                ..
            } if self.phase == Phase::ServerInfo => {
                self.server = body.take().unwrap_or_default();
                if self.session.is_logged_in() {
                    self.ready(lockdown);
                } else {
                    match self
                        .session
                        .login(now(), &options.user, &options.password, &mut self.tx)
                    {
                        Ok(sent) => {
                            self.phase = Phase::Login;
                            self.queue_text(sent.len);
                        }
                        Err(e) => return self.fail_first(CfmsError::Request(format!("{e:?}"))),
                    }
                }
            }
            Event::ProtocolUnsupported { version } => {
                return self.fail_first(CfmsError::ProtocolUnsupported(version));
            }
            Event::LoggedIn { .. } if self.phase == Phase::Login => {
                self.code.reset();
                let lockdown = self.session.lockdown().unwrap_or(false);
                self.ready(lockdown);
            }
            // The session's own re-login after a rejected token.
            Event::LoggedIn { .. } => self.code.reset(),
            Event::LoginFailed(LoginError::InvalidTwoFactorCode) => {
                tracing::warn!("two-factor code refused");
                return self.ask_code(CfmsError::LoginRefused(LoginError::InvalidTwoFactorCode));
            }
            Event::LoginFailed(e) => {
                tracing::warn!(error = %e, "login failed");
                self.code.reset();
                return self.fail_first(CfmsError::LoginRefused(e));
            }
            Event::TwoFactorRequired { .. } => return self.ask_code(CfmsError::TwoFactorRequired),
            Event::Lockdown { on } => {
                let _ = self.events.send(CfmsEvent::Lockdown { on });
            }
            Event::Reply { seq, status } => {
                if let Some(InFlight { reply, .. }) = self.in_flight.remove(&seq) {
                    let body = body.take().unwrap_or_default();
                    let code = status.code();
                    let result = if code == 200 {
                        Ok(body)
                    } else {
                        let message = body["message"].as_str().unwrap_or("").to_owned();
                        Err(CfmsError::Server {
                            code,
                            message,
                            body,
                        })
                    };
                    let _ = reply.send(result);
                }
            }
            Event::RequestFailed { seq, error } => {
                if let Some(request) = self.in_flight.remove(&seq) {
                    let error = match error {
                        RequestError::Timeout => CfmsError::TimedOut,
                        RequestError::Disconnected => {
                            self.lost(request);
                            return None;
                        }
                        other => CfmsError::Request(format!("{other:?}")),
                    };
                    let _ = request.reply.send(Err(error));
                }
            }
            Event::UploadReady { .. } => {
                if let Some(up) = self.upload.as_mut() {
                    up.sending = true;
                    let _ = up.progress.send((0, up.size));
                }
            }
            Event::UploadFinished { size, .. } => {
                if let Some(up) = self.upload.take() {
                    let _ = up.reply.send(Ok(size));
                }
            }
            Event::UploadFailed { error, .. } => {
                if let Some(up) = self.upload.take() {
                    let _ = up.reply.send(Err(match error {
                        cfms::UploadError::Disconnected => CfmsError::ConnectionLost,
                        cfms::UploadError::Timeout => CfmsError::TimedOut,
                        other => CfmsError::Transfer(format!("{other:?}")),
                    }));
                }
            }
            Event::DownloadStarted { file_size, .. } => {
                if let Some(d) = self.download.as_mut() {
                    d.size = file_size;
                    let _ = d.progress.send((0, file_size));
                }
            }
            Event::DownloadChunk { len, .. } => {
                if let Some(d) = self.download.as_mut() {
                    d.received = (d.received + u64::from(len)).min(d.size.max(d.received));
                    let _ = d.progress.send((d.received, d.size));
                }
            }
            Event::DownloadFinished { key, .. } => {
                if let Some(d) = self.download.take() {
                    let hashes = self.session.chunk_hashes().to_vec();
                    // The last block and the writer's verdict are awaited
                    // off the connection task, which goes on serving.
                    tokio::spawn(async move {
                        let ActiveDownload {
                            buffer,
                            to_disk,
                            writer,
                            reply,
                            ..
                        } = d;
                        let handed = buffer.is_empty() || to_disk.send(buffer).await.is_ok();
                        drop(to_disk);
                        let result = match writer.await {
                            Ok(Ok(())) if handed => Ok((key, hashes)),
                            Ok(Err(e)) => Err(CfmsError::Io(e)),
                            _ => Err(CfmsError::Transfer("the download's writer stopped".into())),
                        };
                        let _ = reply.send(result);
                    });
                }
            }
            Event::DownloadFailed { error, .. } => {
                if let Some(d) = self.download.take() {
                    d.fail(match error {
                        DownloadError::Disconnected => CfmsError::ConnectionLost,
                        DownloadError::Timeout => CfmsError::TimedOut,
                        other => CfmsError::Transfer(format!("{other:?}")),
                    });
                }
                if error.breaks_stream() {
                    return Some(Ended::Lost(format!("download failed: {error:?}")));
                }
            }
            Event::Desynchronized(why) => {
                return Some(Ended::Lost(format!("answers out of step ({why:?})")));
            }
            // Events carry no secrets except `DownloadFinished`'s key,
            // which is handled above and never logged.
            other => tracing::debug!(?other, "session event"),
        }
        None
    }

    fn ready(&mut self, lockdown: bool) {
        self.phase = Phase::Ready;
        // Lockdown changes are pushed only to registered listeners.
        match self.session.register_listener(now(), &mut self.tx) {
            Ok(sent) => self.queue_text(sent.len),
            Err(e) => tracing::warn!(error = ?e, "register_listener not sent"),
        }
        if let Some(first) = self.first.take() {
            let _ = first.send(Ok(self.server.clone()));
        }
        let _ = self.events.send(CfmsEvent::Ready { lockdown });
    }

    /// A request whose connection dropped: queued again for the next
    /// connection when it is idempotent and its deadline allows, else failed.
    fn lost(&mut self, request: InFlight) {
        match request.again {
            Some((action, data, until))
                if until > tokio::time::Instant::now() && !request.reply.is_closed() =>
            {
                tracing::debug!(%action, "resending after the reconnect");
                self.queued.push(Job::Request(Command {
                    action,
                    data,
                    reply: request.reply,
                    resend_until: Some(until),
                }));
            }
            _ => {
                let _ = request.reply.send(Err(CfmsError::ConnectionLost));
            }
        }
    }

    /// Ask the two-factor source for a code, or give up with `error` when
    /// there is none or its attempts are used up.
    fn ask_code(&mut self, error: CfmsError) -> Option<Ended> {
        match self.code.ask() {
            Some(attempt) => {
                let _ = self.events.send(CfmsEvent::TwoFactorRequired { attempt });
                None
            }
            None => {
                self.code.reset();
                self.fail_first(error)
            }
        }
    }

    fn fail_first(&mut self, error: CfmsError) -> Option<Ended> {
        if let Some(first) = self.first.take() {
            let _ = first.send(Err(error));
        } else {
            tracing::warn!(%error, "giving up");
        }
        for job in self.queued.drain(..) {
            job.fail(CfmsError::Closed);
        }
        Some(Ended::Stop)
    }
}
