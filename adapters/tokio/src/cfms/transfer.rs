//! Downloads and uploads: the caller's side ([`CfmsClient::download`],
//! [`CfmsClient::upload`]) and the connection task's side (the transfer
//! under way, fed from and to the blocking pool).

use naslink_core::cfms::{self, DownloadKey, Seq, UploadWriteError, ops};
use naslink_core::ws::SendError;
use tempfile::NamedTempFile;
use tokio::sync::{mpsc, oneshot};
use zeroize::Zeroize;

use super::driver::{CfmsPump, Driver, Ended, Job};
use super::files::{decrypt_file, hash_file, open_chunks};
use super::partial::Partial;
use super::{CfmsClient, CfmsError};
use crate::link::now;

/// Where the task sends a finished download's key and chunk hashes.
pub(super) type DownloadReply = oneshot::Sender<Result<(DownloadKey, Vec<[u8; 32]>), CfmsError>>;

/// A download the task runs: ciphertext into `cipher`, then the key and
/// chunk hashes back to the caller for the decryption pass.
pub(super) struct DownloadJob {
    pub(super) task_id: String,
    /// Where the download starts (protocol 13: a whole number of chunks).
    pub(super) offset: u64,
    pub(super) cipher: std::fs::File,
    /// Protocol 13, resumable: the partial's seal records, appended.
    pub(super) seals: Option<std::fs::File>,
    pub(super) progress: mpsc::UnboundedSender<(u64, u64)>,
    pub(super) reply: DownloadReply,
}

/// Ciphertext gathered before it goes to the writer thread; the run loop
/// hands it over (waiting for room) before reading the link again.
pub(super) const DISK_BLOCK: usize = 256 * 1024;
/// Blocks queued between the connection task and the file's thread.
pub(super) const DISK_QUEUE: usize = 4;

/// A download under way. The file is written on the blocking pool: the
/// connection task only gathers ciphertext into `buffer`.
pub(super) struct ActiveDownload {
    /// Its `download_file` request.
    pub(super) seq: Seq,
    pub(super) buffer: Vec<u8>,
    /// Seal records of the chunks in `buffer` (and before), not yet handed over.
    pub(super) pending_records: Vec<u8>,
    /// Whether seal records are kept (a resumable protocol-13 download).
    pub(super) records: bool,
    pub(super) to_disk: mpsc::Sender<(Vec<u8>, Vec<u8>)>,
    pub(super) writer: tokio::task::JoinHandle<std::io::Result<()>>,
    pub(super) progress: mpsc::UnboundedSender<(u64, u64)>,
    pub(super) reply: DownloadReply,
    pub(super) received: u64,
    pub(super) size: u64,
}

/// An upload the task runs: the file's bytes, sent in the frames the
/// server asked for.
pub(super) struct UploadJob {
    pub(super) task_id: String,
    pub(super) source: std::fs::File,
    pub(super) size: u64,
    pub(super) sha256: [u8; 32],
    pub(super) progress: mpsc::UnboundedSender<(u64, u64)>,
    pub(super) reply: oneshot::Sender<Result<u64, CfmsError>>,
}

/// An upload under way.
pub(super) struct ActiveUpload {
    /// Its `upload_file` request.
    pub(super) seq: Seq,
    /// Blocks read on the blocking pool; an empty block marks the end.
    pub(super) from_disk: mpsc::Receiver<std::io::Result<Vec<u8>>>,
    /// Read from the file and not yet taken by the connection.
    pub(super) pending: Vec<u8>,
    /// Set after `UploadReady`; cleared once the final empty call is done.
    pub(super) sending: bool,
    pub(super) at_eof: bool,
    pub(super) sent: u64,
    pub(super) size: u64,
    pub(super) progress: mpsc::UnboundedSender<(u64, u64)>,
    pub(super) reply: oneshot::Sender<Result<u64, CfmsError>>,
}

impl CfmsClient {
    /// Download document `document_id` into `target`, calling
    /// `progress(received, total)` as ciphertext arrives.
    ///
    /// Memory stays bounded: the ciphertext streams into a temporary file
    /// beside `target`, then a decryption pass (checking every chunk's and
    /// the file's SHA-256) writes a second temporary file that is renamed
    /// to `target` only when everything checked out. Both are created
    /// exclusively with unpredictable names (two downloads to one target
    /// do not collide) and removed on any failure, and also at once when
    /// this future is dropped (Ctrl-C): `target` is then left untouched.
    /// A refusal by the server is [`CfmsError::Server`]. Requests made
    /// meanwhile wait until the transfer ends.
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
        let task_id = task_id(&answer)
            .ok_or_else(|| CfmsError::Transfer("get_document gave no task_id".into()))?;
        // The guards unlink both files when dropped: on every error below
        // and when this future is dropped at any await.
        let cipher = temp_beside(target, "cipher")?;
        let plain = temp_beside(target, "part")?;
        let (progress_tx, progress_rx) = mpsc::unbounded_channel();
        let (reply, answer) = oneshot::channel();
        self.commands
            .send(Job::Download(DownloadJob {
                task_id,
                offset: 0,
                cipher: cipher.as_file().try_clone().map_err(CfmsError::Io)?,
                seals: None,
                progress: progress_tx,
                reply,
            }))
            .map_err(|_| CfmsError::Closed)?;
        let (key, hashes) = await_job(answer, progress_rx, &mut progress).await?;
        let input = cipher.reopen().map_err(CfmsError::Io)?;
        let output = plain.as_file().try_clone().map_err(CfmsError::Io)?;
        let framed = self.server.protocol_version == cfms::p13::negotiate::FRAMED;
        let size = tokio::task::spawn_blocking(move || {
            let mut key = key;
            let size = if framed {
                open_chunks(&key, &hashes, input, output)
            } else {
                decrypt_file(&key, &hashes, input, output)
            };
            key.key.zeroize();
            size
        })
        .await
        .map_err(|e| CfmsError::Transfer(format!("the decryption task failed: {e}")))??;
        drop(cipher);
        plain.persist(target).map_err(|e| CfmsError::Io(e.error))?;
        Ok(size)
    }

    /// [`download`](Self::download), resumable at protocol 13: the
    /// ciphertext of the whole chunks received so far and their seals are
    /// kept beside `target` as `.NAME.naslink-partial` and
    /// `.NAME.naslink-partial-seals` when the download is interrupted (an
    /// error, or this future dropped), and a later call for the same
    /// document and target resumes after the last whole chunk with the same
    /// task. A partial of another document, or one that does not read back
    /// consistently, is discarded; a task the server no longer honours
    /// starts the download over. `resume == false` discards any partial
    /// first. Each such decision is told to `note`. The partial is removed
    /// when the download completes, or when a chunk fails its AES-GCM
    /// check (it is not trusted again). At protocols 3–5 this is
    /// [`download`](Self::download).
    pub async fn download_resumable(
        &self,
        document_id: &str,
        target: &std::path::Path,
        resume: bool,
        mut note: impl FnMut(&str) + Send,
        mut progress: impl FnMut(u64, u64) + Send,
    ) -> Result<u64, CfmsError> {
        if self.server.protocol_version != cfms::p13::negotiate::FRAMED {
            return self.download(document_id, target, progress).await;
        }
        let partial = Partial::beside(target);
        if partial.busy() {
            return Err(CfmsError::Transfer(format!(
                "another download to {} is under way (its partial is locked)",
                target.display()
            )));
        }
        let mut kept = None;
        if !resume {
            if partial.exists() {
                note("--no-resume: the partial download was removed; starting over");
            }
            partial.remove();
        } else {
            match partial.load(document_id) {
                Ok(found) => kept = found,
                Err(why) => {
                    note(&format!("the partial download was discarded: {why}"));
                    partial.remove();
                }
            }
        }
        loop {
            let resumed = kept.is_some();
            let (task_id, offset, prior, cipher, seals) = match kept.take() {
                Some((r, cipher, seals)) => {
                    note(&format!(
                        "resuming the partial download at byte {}",
                        r.offset
                    ));
                    (r.task_id, r.offset, r.seals, cipher, seals)
                }
                None => {
                    let answer = self
                        .request(
                            "get_document",
                            &serde_json::json!({ "document_id": document_id }),
                        )
                        .await?;
                    let task_id = task_id(&answer).ok_or_else(|| {
                        CfmsError::Transfer("get_document gave no task_id".into())
                    })?;
                    let (cipher, seals) = partial
                        .create(document_id, &task_id)
                        .map_err(CfmsError::Io)?;
                    (task_id, 0, Vec::new(), cipher, seals)
                }
            };
            let (progress_tx, progress_rx) = mpsc::unbounded_channel();
            let (reply, answer) = oneshot::channel();
            self.commands
                .send(Job::Download(DownloadJob {
                    task_id,
                    offset,
                    cipher,
                    seals: Some(seals),
                    progress: progress_tx,
                    reply,
                }))
                .map_err(|_| CfmsError::Closed)?;
            let result = await_job(answer, progress_rx, &mut progress).await;
            let (key, hashes) = match result {
                Ok(got) => got,
                // The task is spent or expired: a fresh one, from the start.
                Err(CfmsError::Server { code, .. }) if resumed => {
                    note(&format!(
                        "the partial download's task was refused ({code}); starting over"
                    ));
                    partial.remove();
                    continue;
                }
                // The partial stays for the next run.
                Err(e) => return Err(e),
            };
            let mut seals = prior;
            seals.extend_from_slice(hashes.get(seals.len()..).unwrap_or_default());
            let input = std::fs::File::open(&partial.cipher).map_err(CfmsError::Io)?;
            let plain = temp_beside(target, "part")?;
            let output = plain.as_file().try_clone().map_err(CfmsError::Io)?;
            let size = tokio::task::spawn_blocking(move || {
                let mut key = key;
                let size = open_chunks(&key, &seals, input, output);
                key.key.zeroize();
                size
            })
            .await
            .map_err(|e| CfmsError::Transfer(format!("the decryption task failed: {e}")));
            match size {
                Ok(Ok(size)) => {
                    plain.persist(target).map_err(|e| CfmsError::Io(e.error))?;
                    partial.remove();
                    return Ok(size);
                }
                // A chunk failed its check (or the file does not add up):
                // the partial is not trusted again.
                Ok(Err(e @ CfmsError::Transfer(_))) | Err(e) => {
                    partial.remove();
                    return Err(e);
                }
                Ok(Err(e)) => return Err(e),
            }
        }
    }

    /// Upload `source` as a new document `title` in folder `folder_id`
    /// (`None`: the root), calling `progress(sent, total)` per frame.
    /// Returns the new document's id.
    ///
    /// Two passes over the file, both streamed: SHA-256 first (the header
    /// announces it), then the frames; the core checks that what was sent
    /// hashes to what was announced. Requests made meanwhile wait. A
    /// refusal by the server is [`CfmsError::Server`]. When the upload
    /// fails, or this future is dropped, the document `create_document`
    /// made is deleted again (on drop, by a task in the background).
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
            .map_err(|e| CfmsError::Transfer(format!("the hashing task failed: {e}")))??;
        let file = std::fs::File::open(source).map_err(CfmsError::Io)?;
        let mut created = self.create_document(folder_id, title).await?;
        let (progress_tx, progress_rx) = mpsc::unbounded_channel();
        let (reply, answer) = oneshot::channel();
        self.commands
            .send(Job::Upload(UploadJob {
                task_id: created.task_id.clone(),
                source: file,
                size,
                sha256,
                progress: progress_tx,
                reply,
            }))
            .map_err(|_| CfmsError::Closed)?;
        let result = await_job(answer, progress_rx, &mut progress).await;
        match result {
            Ok(_) => created.keep(self).await,
            Err(e) => {
                created.remove(self).await;
                Err(e)
            }
        }
    }

    /// `create_document`, remembering enough to find the new document
    /// again (protocols 3 and 4 do not return its id).
    async fn create_document(
        &self,
        folder_id: Option<&str>,
        title: &str,
    ) -> Result<CreatedDocument, CfmsError> {
        let before = match self.server.protocol_version {
            p if p >= 5 => None,
            _ => Some(titled(self, title, folder_id).await?),
        };
        let answer = self
            .request(
                "create_document",
                &serde_json::json!({ "title": title, "folder_id": folder_id }),
            )
            .await?;
        let mut created = CreatedDocument {
            client: Some(self.clone()),
            id: read(&answer, ops::document_id),
            task_id: String::new(),
            title: title.to_owned(),
            folder_id: folder_id.map(str::to_owned),
            before: before.unwrap_or_default(),
        };
        created.task_id = task_id(&answer)
            .ok_or_else(|| CfmsError::Transfer("create_document gave no task_id".into()))?;
        Ok(created)
    }
}

/// Wait for a transfer job's answer from the driver task, handing its
/// progress reports to `progress` as they come and the last ones after
/// the answer. A driver gone without answering is [`CfmsError::Closed`].
async fn await_job<T>(
    answer: oneshot::Receiver<Result<T, CfmsError>>,
    mut progress_rx: mpsc::UnboundedReceiver<(u64, u64)>,
    progress: &mut impl FnMut(u64, u64),
) -> Result<T, CfmsError> {
    let mut answer = std::pin::pin!(answer);
    let result = loop {
        tokio::select! {
            biased;
            // `Some(..)`: the branch is disabled once the task drops its
            // sender.
            Some((done, total)) = progress_rx.recv() => progress(done, total),
            result = &mut answer => break result.unwrap_or(Err(CfmsError::Closed)),
        }
    };
    while let Ok((done, total)) = progress_rx.try_recv() {
        progress(done, total);
    }
    result
}

/// A temporary file beside `target` (same folder, so the final rename
/// stays on one file system), created exclusively with an unpredictable
/// name; dropping it unlinks it.
pub(super) fn temp_beside(
    target: &std::path::Path,
    what: &str,
) -> Result<NamedTempFile, CfmsError> {
    let (folder, name) = crate::beside::folder_and_name(target);
    let (prefix, suffix) = (format!(".{name}."), format!(".naslink-{what}"));
    let mut builder = tempfile::Builder::new();
    builder.prefix(&prefix).suffix(&suffix);
    // The part file becomes the target: the mode any new file gets (the
    // umask applies), not the owner-only mode of the ciphertext.
    #[cfg(unix)]
    if what == "part" {
        use std::os::unix::fs::PermissionsExt;
        builder.permissions(std::fs::Permissions::from_mode(0o666));
    }
    builder.tempfile_in(folder).map_err(CfmsError::Io)
}

/// The folder's listing (an idempotent read).
async fn listing(
    client: &CfmsClient,
    folder_id: Option<&str>,
) -> Result<serde_json::Value, CfmsError> {
    client
        .request_idempotent(
            "list_directory",
            &serde_json::json!({ "folder_id": folder_id }),
        )
        .await
}

/// An answer as the core reads it (it is a JSON object the core already
/// accepted once).
fn as_response(answer: &serde_json::Value) -> Vec<u8> {
    serde_json::to_vec(answer).unwrap_or_default()
}

/// The ids of the documents titled `title` in the folder.
async fn titled(
    client: &CfmsClient,
    title: &str,
    folder_id: Option<&str>,
) -> Result<Vec<String>, CfmsError> {
    let text = as_response(&listing(client, folder_id).await?);
    let Ok(response) = cfms::Response::parse(&text) else {
        return Ok(Vec::new());
    };
    let listing = ops::Listing::new(&response);
    Ok(listing
        .titled(title)
        .map(|id| id.chars().collect())
        .collect())
}

/// `data.task_data.task_id` of an answer, by the core's rule.
fn task_id(answer: &serde_json::Value) -> Option<String> {
    read(answer, ops::task_id)
}

/// A string of `answer` that the core's `view` reads.
fn read(
    answer: &serde_json::Value,
    view: impl for<'a> Fn(&cfms::Response<'a>) -> Option<cfms::JsonStr<'a>>,
) -> Option<String> {
    let text = as_response(answer);
    let response = cfms::Response::parse(&text).ok()?;
    Some(view(&response)?.chars().collect())
}

/// The document an upload's `create_document` made: deleted again unless
/// the upload succeeded ([`keep`](Self::keep)).
struct CreatedDocument {
    /// `None` once kept or removed.
    client: Option<CfmsClient>,
    /// Known at protocol 5; found by listing otherwise.
    id: Option<String>,
    task_id: String,
    title: String,
    folder_id: Option<String>,
    /// Documents with the same title before (protocols 3 and 4, where
    /// the new one is found by listing once it has content).
    before: Vec<String>,
}

impl CreatedDocument {
    /// Its id: given, or the one new document with its title.
    async fn find(&self, client: &CfmsClient) -> Result<Option<String>, CfmsError> {
        if let Some(id) = &self.id {
            return Ok(Some(id.clone()));
        }
        let text = as_response(&listing(client, self.folder_id.as_deref()).await?);
        let Ok(response) = cfms::Response::parse(&text) else {
            return Ok(None);
        };
        let existed = |id: cfms::JsonStr<'_>| self.before.iter().any(|b| id.eq_str(b));
        let new = ops::new_document(&ops::Listing::new(&response), &self.title, existed);
        Ok(new.map(|id| id.chars().collect()))
    }

    /// The upload succeeded: its id.
    async fn keep(&mut self, client: &CfmsClient) -> Result<String, CfmsError> {
        self.client = None;
        self.find(client)
            .await?
            .ok_or_else(|| CfmsError::Transfer("the uploaded document is not listed".into()))
    }

    /// The upload failed: delete the document (best effort; the failure
    /// the caller sees is the upload's).
    async fn remove(&mut self, client: &CfmsClient) {
        self.client = None;
        remove_document(client, self.find(client).await).await;
    }
}

async fn remove_document(client: &CfmsClient, id: Result<Option<String>, CfmsError>) {
    match id {
        Ok(Some(id)) => {
            let data = serde_json::json!({ "document_id": id });
            if let Err(e) = client.request("delete_document", &data).await {
                tracing::warn!(error = %e, "the failed upload's document was not deleted");
            }
        }
        // Protocols 3 and 4: a document without content is not listed
        // (and its id was never given), so it is seen by nobody.
        Ok(None) => tracing::debug!("the failed upload's document is not listed"),
        Err(e) => tracing::warn!(error = %e, "the failed upload's document was not found"),
    }
}

impl Drop for CreatedDocument {
    /// The upload's future was dropped: delete the document in the
    /// background (it waits for the transfer still running to end).
    fn drop(&mut self) {
        let Some(client) = self.client.take() else {
            return;
        };
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let me = CreatedDocument {
            client: None,
            id: self.id.take(),
            task_id: String::new(),
            title: std::mem::take(&mut self.title),
            folder_id: self.folder_id.take(),
            before: std::mem::take(&mut self.before),
        };
        runtime.spawn(async move {
            let id = me.find(&client).await;
            remove_document(&client, id).await;
        });
    }
}

impl ActiveDownload {
    /// Give up: the writer is told to stop, and `error` reaches the caller
    /// only once the writer has closed the file, so the caller's removal
    /// of the temporary file cannot race a last write (on Windows an open
    /// file could not be removed).
    pub(super) fn fail(self, error: CfmsError) {
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

/// Upload bytes handed to the connection per turn of the connection
/// loop, so that answers and other work are served between turns.
const UPLOAD_TURN: usize = 128 * 1024;

impl Driver<'_> {
    /// Whether upload bytes are waiting to be sent (the loop must not sleep).
    pub(super) fn upload_busy(&self) -> bool {
        self.upload.as_ref().is_some_and(|u| u.sending)
    }

    /// Stream the file into the connection for one turn; the loop comes
    /// back after flushing. The connection writes the bytes straight into
    /// its transmit buffer in the frames the session cuts, so memory stays
    /// at one read block and the transmit buffer whatever frame size the
    /// server asked for.
    pub(super) fn feed_upload(&mut self, pump: &mut CfmsPump<'_>) -> Option<Ended> {
        let mut budget = UPLOAD_TURN;
        loop {
            let up = self.upload.as_mut()?;
            if !up.sending || budget == 0 {
                return None;
            }
            if up.reply.is_closed() {
                // The caller's future was dropped: stop sending (the server
                // then stores nothing; the caller's guard deletes the
                // document once the client has reconnected).
                self.upload = None;
                return Some(Ended::Lost("upload abandoned by its caller".into()));
            }
            if up.pending.is_empty() && !up.at_eof {
                match up.from_disk.try_recv() {
                    Ok(Ok(block)) if block.is_empty() => up.at_eof = true,
                    Ok(Ok(block)) => up.pending = block,
                    // The reader is behind: the loop comes back (it does
                    // not sleep while an upload is sending).
                    Err(mpsc::error::TryRecvError::Empty) => return None,
                    Ok(Err(e)) => return self.upload_broken(CfmsError::Io(e)),
                    Err(mpsc::error::TryRecvError::Disconnected) => {
                        let why = "the upload's reader stopped".to_owned();
                        return self.upload_broken(CfmsError::Transfer(why));
                    }
                }
            }
            let written = pump.connection_mut().upload_write(now(), &up.pending);
            let taken = match written {
                Ok(taken) => taken,
                // The file's last bytes ended the last message: nothing
                // more to send; the verdict is awaited.
                Err(cfms::Error::Upload(UploadWriteError::NotSending)) if up.pending.is_empty() => {
                    up.sending = false;
                    return None;
                }
                // No room for the next frame's header: flush first.
                Err(cfms::Error::Ws(SendError::InsufficientSize(_))) => return None,
                Err(e) => {
                    return self.upload_broken(CfmsError::Transfer(e.to_string()));
                }
            };
            if up.at_eof && up.pending.is_empty() {
                // The final (empty) message is written.
                up.sending = false;
                return None;
            }
            if taken == 0 {
                // The transmit buffer is full: flush first.
                return None;
            }
            up.pending.drain(..taken);
            up.sent += taken as u64;
            budget = budget.saturating_sub(taken);
            let _ = up.progress.send((up.sent, up.size));
        }
    }

    /// The upload cannot go on: the caller learns why, and the connection
    /// ends (a frame cut short would corrupt the stream; nothing is stored).
    pub(super) fn upload_broken(&mut self, error: CfmsError) -> Option<Ended> {
        let up = self.upload.take()?;
        let reason = format!("upload stopped: {error}");
        let _ = up.reply.send(Err(error));
        Some(Ended::Lost(reason))
    }

    /// `ready N`: the session checked N against what this client
    /// announced; the file may go.
    pub(super) fn upload_ready(&mut self) {
        if let Some(up) = self.upload.as_mut() {
            up.sending = true;
            let _ = up.progress.send((0, up.size));
        }
    }
}
