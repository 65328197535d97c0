//! `upload_file` and `download_file` on the requesting connection; the task
//! id is the credential and is spent once a transfer starts.
//!
//! Upload: `waiting for file transfer` → client header `{sha256, file_size}`
//! → `ready` (`ready N` when a protocol ≥ 4 client chose `max_chunk_size`),
//! or `stop` for an empty file (then nothing more, as recorded) → binary
//! frames until the first shorter than the threshold → verdict.
//!
//! Download: header `{sha256, file_size, chunk_size, total_chunks}` → client
//! `ready` → `file_chunk` messages (AES-256-CFB8, one stream, fresh key and IV
//! per download, IV in chunk 0) → `aes_key`. Nothing follows `ready` for an
//! empty file.

use std::sync::Arc;

use aes::Aes256;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use cfb8::cipher::{AsyncStreamCipher, KeyIvInit};
use rand::RngCore;
use serde_json::{Value, json};

use super::actions::{Reply, answer};
use super::config::DownloadFault;
use super::connection::{Conn, Incoming};
use super::store::{Revision, TaskKind, sha256_hex};

/// Frames shorter than this end an upload (protocol 3).
const DEFAULT_THRESHOLD: usize = 8192;
/// The smallest `max_chunk_size` a client may choose (protocol ≥ 4).
const MIN_CHUNK: u64 = 512;

/// Take task `data.task_id` of `kind` for a transfer: its document id.
fn claim(conn: &Conn, data: &Value, kind: TaskKind, spend: bool) -> Result<String, Reply> {
    let id = data["task_id"].as_str().unwrap_or_default();
    let now = conn.shared.now();
    let mut store = conn.shared.store();
    let Some(task) = store.tasks.get_mut(id) else {
        return Err(Reply::bare(404, "Task not found"));
    };
    if task.kind != kind || task.used || now > task.end_time {
        let what = match kind {
            TaskKind::Upload => "upload",
            TaskKind::Download => "download",
        };
        return Err(Reply::bare(
            400,
            format!("Task is not in a valid state for {what}"),
        ));
    }
    task.used |= spend;
    Ok(task.document.clone())
}

/// The client's upload header.
struct Header {
    sha256: Option<String>,
    size: usize,
    threshold: Option<usize>,
}

fn parse_header(message: &Incoming, protocol: u32) -> Option<Header> {
    let Incoming::Text(text) = message else {
        return None;
    };
    let value: Value = serde_json::from_str(text).ok()?;
    if value["action"] != "transfer_file" {
        return None;
    }
    let data = &value["data"];
    let sha256 = match &data["sha256"] {
        Value::String(s) => Some(s.clone()),
        Value::Null => None,
        _ => return None,
    };
    let size = usize::try_from(data["file_size"].as_u64()?).ok()?;
    let threshold = match data.get("max_chunk_size") {
        Some(n) if protocol >= 4 => {
            Some(usize::try_from(n.as_u64().filter(|&n| n >= MIN_CHUNK)?).ok()?)
        }
        _ => None,
    };
    Some(Header {
        sha256,
        size,
        threshold,
    })
}

/// `upload_file {task_id}`.
pub(crate) async fn upload(conn: &mut Conn, data: &Value) -> Option<()> {
    let document = match claim(conn, data, TaskKind::Upload, false) {
        Ok(d) => d,
        Err(reply) => return answer(conn, reply).await,
    };
    let waiting =
        json!({"action": "transfer_file", "data": {}, "message": "waiting for file transfer"});
    conn.send_text(waiting.to_string()).await?;
    let message = conn.recv().await?;
    let protocol = conn.shared.config.protocol_version;
    let Some(header) = parse_header(&message, protocol) else {
        return answer(conn, Reply::bare(400, "Invalid request for file transfer")).await;
    };
    // Spent from here on, whatever the verdict.
    if let Err(reply) = claim(conn, data, TaskKind::Upload, true) {
        return answer(conn, reply).await;
    }
    if header.size == 0 {
        store_revision(conn, &document, Vec::new(), header.sha256);
        return conn.send_text("stop".into()).await;
    }
    let threshold = header.threshold.unwrap_or(DEFAULT_THRESHOLD);
    let ready = match header.threshold {
        Some(n) => format!("ready {n}"),
        None => "ready".into(),
    };
    conn.send_text(ready).await?;
    let mut received = Vec::with_capacity(header.size);
    loop {
        match conn.recv().await? {
            Incoming::Binary(frame) => {
                received.extend_from_slice(&frame);
                if frame.len() < threshold {
                    break;
                }
            }
            Incoming::Text(_) => {
                return answer(conn, Reply::bare(400, "Invalid request for file transfer")).await;
            }
        }
    }
    let actual = sha256_hex(&received);
    let reply = if received.len() != header.size {
        let (expected, got) = (header.size, received.len());
        Reply::bare(
            400,
            format!("File size mismatch: expected {expected}, got {got}"),
        )
    } else if header.sha256.as_deref() != Some(actual.as_str()) {
        let expected = header.sha256.as_deref().unwrap_or("None");
        Reply::bare(
            400,
            format!("SHA256 mismatch: expected {expected}, got {actual}"),
        )
    } else {
        store_revision(conn, &document, received, Some(actual));
        Reply::bare(200, "File received successfully")
    };
    answer(conn, reply).await
}

fn store_revision(conn: &Conn, document: &str, data: Vec<u8>, sha256: Option<String>) {
    let now = conn.shared.now();
    if let Some(doc) = conn.shared.store().documents.get_mut(document) {
        doc.revision = Some(Revision {
            data: Arc::new(data),
            sha256,
        });
        doc.last_modified = now;
    }
}

/// `download_file {task_id}`.
pub(crate) async fn download(conn: &mut Conn, data: &Value) -> Option<()> {
    let document = match claim(conn, data, TaskKind::Download, true) {
        Ok(d) => d,
        Err(reply) => return answer(conn, reply).await,
    };
    let revision = {
        let store = conn.shared.store();
        store
            .documents
            .get(&document)
            .and_then(|d| d.revision.clone())
    };
    let Some(revision) = revision else {
        return answer(conn, Reply::bare(404, "Document not found")).await;
    };
    let chunk_size = conn.shared.config.chunk_size.max(1);
    let size = revision.data.len();
    let header = json!({"action": "transfer_file", "data": {
        "sha256": revision.sha256, "file_size": size,
        "chunk_size": chunk_size, "total_chunks": size.div_ceil(chunk_size),
    }});
    conn.send_text(header.to_string()).await?;
    match conn.recv().await? {
        Incoming::Text(t) if t == "ready" => {}
        _ => return answer(conn, Reply::bare(400, "Client not ready for file transfer")).await,
    }
    if size == 0 {
        return Some(());
    }
    let (mut key, mut iv) = ([0u8; 32], [0u8; 16]);
    rand::thread_rng().fill_bytes(&mut key);
    rand::thread_rng().fill_bytes(&mut iv);
    let mut ciphertext = revision.data.as_ref().clone();
    cfb8::Encryptor::<Aes256>::new(&key.into(), &iv.into()).encrypt(&mut ciphertext);
    let fault = conn.shared.fault();
    for (index, (plain, cipher)) in revision
        .data
        .chunks(chunk_size)
        .zip(ciphertext.chunks(chunk_size))
        .enumerate()
    {
        let mut hash = sha256_hex(plain);
        let mut cipher = cipher.to_vec();
        match fault {
            Some(DownloadFault::FlipCiphertext { index: i }) if i == index => cipher[0] ^= 0x01,
            Some(DownloadFault::FlipHash { index: i }) if i == index => {
                let flipped = if hash.starts_with('0') { "1" } else { "0" };
                hash.replace_range(0..1, flipped);
            }
            _ => {}
        }
        let mut chunk = json!({"index": index, "hash": hash, "chunk": STANDARD.encode(&cipher)});
        if index == 0 {
            chunk["iv"] = json!(STANDARD.encode(iv));
        }
        let message = json!({"action": "file_chunk", "data": chunk});
        conn.send_text(message.to_string()).await?;
    }
    let key = json!({"action": "aes_key", "data": {"key": STANDARD.encode(key)}});
    conn.send_text(key.to_string()).await
}
