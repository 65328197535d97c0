//! Downloads and uploads: the caller's side ([`CfmsClient::download`],
//! [`CfmsClient::upload`]) and the connection task's side (the transfer
//! under way, fed from and to the blocking pool).

use naslink_core::cfms::DownloadKey;
use tokio::sync::{mpsc, oneshot};

use super::driver::{Driver, Ended, Job};
use super::files::{decrypt_file, hash_file, sibling};
use super::{CfmsClient, CfmsError};
use crate::link::{Link, now};

/// Where the task sends a finished download's key and chunk hashes.
pub(super) type DownloadReply = oneshot::Sender<Result<(DownloadKey, Vec<[u8; 32]>), CfmsError>>;

/// A download the task runs: ciphertext into `cipher`, then the key and
/// chunk hashes back to the caller for the decryption pass.
pub(super) struct DownloadJob {
    pub(super) task_id: String,
    pub(super) cipher: std::fs::File,
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
    pub(super) buffer: Vec<u8>,
    pub(super) to_disk: mpsc::Sender<Vec<u8>>,
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
    /// Blocks read on the blocking pool; an empty block marks the end.
    pub(super) from_disk: mpsc::Receiver<std::io::Result<Vec<u8>>>,
    /// Read from the file, not yet accepted by the session.
    pub(super) pending: Vec<u8>,
    /// The binary message being assembled.
    pub(super) message: Vec<u8>,
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
}

/// The newest document titled `title` in the folder (protocol 3 and 4 do
/// not return the new document's id).
pub(super) async fn newest_document(
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

impl Driver<'_> {
    /// Whether upload bytes are waiting to be sent (the loop must not sleep).
    pub(super) fn upload_busy(&self) -> bool {
        self.upload.as_ref().is_some_and(|u| u.sending)
    }

    /// Send up to a few frames of the file; the loop comes back for more
    /// after flushing, so memory stays at one read buffer.
    pub(super) fn feed_upload(&mut self, link: &mut Link) -> Option<Ended> {
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
}
