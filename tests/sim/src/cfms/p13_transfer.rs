//! Protocol 13 transfers, on the client's stream (spec §9 and §10).
//!
//! Upload: PROCESS `waiting for file transfer` → client header
//! `{file_size, sha256?, max_chunk_size?}` → `stop` for an empty file (then
//! nothing more) or `ready C` with `C = min(max_chunk_size, 65536)` → frames
//! of exactly C bytes until the first shorter one (an empty frame when the
//! size is a multiple of C) → CONCLUSION verdict.
//!
//! Download: PROCESS header `{file_size, chunk_size, total_chunks}` → client
//! `ready` → offset checks → one `file_chunk` per chunk from `offset /
//! chunk_size`, each AES-256-GCM with nonce `prefix (8 random bytes) ‖ index
//! (u32 BE)` and the tag sent apart → `aes_key` (the task's key, made by its
//! first attempt; `null` if another attempt finished first). No CONCLUSION
//! after a download, nor after an empty one.

use std::sync::Arc;

use aes_gcm::aead::AeadInPlace;
use aes_gcm::{Aes256Gcm, KeyInit, Nonce};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use rand::RngCore;
use serde_json::{Value, json};

use super::actions::Reply;
use super::config::DownloadFault;
use super::mux::StreamCtx;
use super::p13::log_id;
use super::store::{Revision, TaskKind, sha256_hex};

/// The largest upload frame the server asks for (`FILE_TRANSFER_MAX_CHUNK_SIZE`).
const MAX_UPLOAD_CHUNK: u64 = 65536;
/// The smallest `max_chunk_size` a client may choose.
const MIN_UPLOAD_CHUNK: u64 = 512;

/// Check task `data.task_id` of `kind`: its document id.
fn claim(ctx: &StreamCtx, data: &Value, kind: TaskKind) -> Result<String, Reply> {
    let id = data["task_id"].as_str().unwrap_or_default();
    let now = ctx.shared.now();
    let store = ctx.shared.store();
    let Some(task) = store.tasks.get(id) else {
        return Err(Reply::bare(404, "Task not found"));
    };
    if task.kind != kind || task.used {
        let what = match kind {
            TaskKind::Upload => "upload",
            TaskKind::Download => "download",
        };
        let message = format!("Task is not in a valid state for {what}");
        return Err(Reply::bare(400, message));
    }
    if now > task.end_time {
        let message = "Task is either not started yet or has already ended";
        return Err(Reply::bare(400, message));
    }
    Ok(task.document.clone())
}

/// The client's upload header: `(file_size, sha256, chunk size C)`.
fn parse_header(payload: &[u8]) -> Option<(usize, Option<String>, usize)> {
    let value: Value = serde_json::from_slice(payload).ok()?;
    let object = value.as_object()?;
    if object.keys().any(|k| k != "action" && k != "data") {
        return None;
    }
    if object.get("action").is_some_and(|a| a != "transfer_file") {
        return None;
    }
    let data = object.get("data")?.as_object()?;
    if data
        .keys()
        .any(|k| !["file_size", "sha256", "max_chunk_size"].contains(&k.as_str()))
    {
        return None;
    }
    let size = usize::try_from(data.get("file_size")?.as_u64()?).ok()?;
    let sha256 = match data.get("sha256") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(_) => return None,
    };
    let chunk = match data.get("max_chunk_size") {
        None => MAX_UPLOAD_CHUNK,
        Some(n) => n.as_u64().filter(|&n| n >= MIN_UPLOAD_CHUNK)?,
    };
    let chunk = usize::try_from(chunk.min(MAX_UPLOAD_CHUNK)).ok()?;
    Some((size, sha256, chunk))
}

/// `upload_file {task_id}`.
pub(crate) async fn upload(mut ctx: StreamCtx, data: &Value) {
    let _ = upload_inner(&mut ctx, data).await;
}

async fn upload_inner(ctx: &mut StreamCtx, data: &Value) -> Option<()> {
    let document = match claim(ctx, data, TaskKind::Upload) {
        Ok(d) => d,
        Err(reply) => return ctx.conclude(reply).await,
    };
    let waiting =
        json!({"action": "transfer_file", "data": {}, "message": "waiting for file transfer"});
    ctx.process_json(&waiting).await?;
    let header = ctx.recv().await?;
    let Some((size, sha256, chunk)) = parse_header(&header) else {
        return ctx
            .conclude(Reply::bare(400, "Invalid request for file transfer"))
            .await;
    };
    if size == 0 {
        ctx.process(b"stop").await?;
        let bug = std::mem::take(
            &mut ctx
                .shared
                .faults13
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .empty_upload_bug,
        );
        if bug {
            let reply = Reply::new(500, "Internal server error", json!({"log_id": log_id()}));
            return ctx.conclude(reply).await;
        }
        // Stored with no hash; the task stays unfinished; nothing follows.
        store_revision(ctx, &document, Vec::new(), None);
        return Some(());
    }
    ctx.process(format!("ready {chunk}").as_bytes()).await?;
    let mut received = Vec::with_capacity(size.min(64 << 20));
    let mut total = 0usize;
    loop {
        let frame = ctx.recv().await?;
        total = total.saturating_add(frame.len());
        // Keep at most the announced size (anything beyond is a mismatch).
        if received.len() + frame.len() <= size {
            received.extend_from_slice(&frame);
        }
        if frame.len() < chunk {
            break;
        }
    }
    let reply = if total != size {
        Reply::bare(
            400,
            format!("File size mismatch: expected {size}, got {total}"),
        )
    } else {
        let actual = sha256_hex(&received);
        match sha256 {
            Some(expected) if expected != actual => Reply::bare(
                400,
                format!("SHA256 mismatch: expected {expected}, got {actual}"),
            ),
            _ => {
                store_revision(ctx, &document, received, Some(actual));
                let id = data["task_id"].as_str().unwrap_or_default();
                if let Some(task) = ctx.shared.store().tasks.get_mut(id) {
                    task.used = true;
                }
                Reply::bare(200, "File received successfully")
            }
        }
    };
    ctx.conclude(reply).await
}

fn store_revision(ctx: &StreamCtx, document: &str, data: Vec<u8>, sha256: Option<String>) {
    let now = ctx.shared.now();
    if let Some(doc) = ctx.shared.store().documents.get_mut(document) {
        doc.revision = Some(Revision {
            data: Arc::new(data),
            sha256,
        });
        doc.last_modified = now;
    }
}

/// `download_file {task_id, offset?}`.
pub(crate) async fn download(mut ctx: StreamCtx, data: &Value) {
    let _ = download_inner(&mut ctx, data).await;
}

async fn download_inner(ctx: &mut StreamCtx, data: &Value) -> Option<()> {
    let document = match claim(ctx, data, TaskKind::Download) {
        Ok(d) => d,
        Err(reply) => return ctx.conclude(reply).await,
    };
    let revision = {
        let store = ctx.shared.store();
        store
            .documents
            .get(&document)
            .and_then(|d| d.revision.clone())
    };
    let Some(revision) = revision else {
        let reply = Reply::bare(404, "No active revisions found for this document");
        return ctx.conclude(reply).await;
    };
    let chunk_size = ctx.shared.config.chunk_size.max(1);
    let size = revision.data.len();
    let total_chunks = size.div_ceil(chunk_size);
    let header = json!({"action": "transfer_file", "data": {
        "file_size": size, "chunk_size": chunk_size, "total_chunks": total_chunks,
    }});
    ctx.process_json(&header).await?;
    if ctx.recv().await? != b"ready" {
        let reply = Reply::bare(400, "Client not ready for file transfer");
        return ctx.conclude(reply).await;
    }
    if size == 0 {
        return Some(());
    }
    let task_id = data["task_id"].as_str().unwrap_or_default().to_owned();
    let key = {
        let mut store = ctx.shared.store();
        let task = store.tasks.get_mut(&task_id)?;
        *task.key.get_or_insert_with(|| {
            let mut key = [0u8; 32];
            rand::thread_rng().fill_bytes(&mut key);
            key
        })
    };
    let offset = data["offset"].as_u64().unwrap_or_default();
    let offset = usize::try_from(offset).unwrap_or(usize::MAX);
    if offset > size {
        let reply = Reply::bare(400, "Invalid offset: exceeds file size");
        return ctx.conclude(reply).await;
    }
    if offset % chunk_size != 0 {
        let reply = Reply::bare(
            400,
            "Invalid offset: must be a multiple of chunk_size or zero",
        );
        return ctx.conclude(reply).await;
    }
    let (fault, freeze_after) = {
        let faults = ctx
            .shared
            .faults13
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        (ctx.shared.fault(), faults.freeze_after)
    };
    let cipher = Aes256Gcm::new(&key.into());
    for (sent, index) in (offset / chunk_size..total_chunks).enumerate() {
        if freeze_after.is_some_and(|n| sent >= n) {
            // Frozen: the stream stays open and silent.
            std::future::pending::<()>().await;
        }
        let start = index * chunk_size;
        let end = (start + chunk_size).min(size);
        let mut chunk = revision.data.get(start..end)?.to_vec();
        let mut prefix = [0u8; 8];
        rand::thread_rng().fill_bytes(&mut prefix);
        let mut nonce = [0u8; 12];
        nonce[..8].copy_from_slice(&prefix);
        nonce[8..].copy_from_slice(&u32::try_from(index).ok()?.to_be_bytes());
        let Ok(tag) = cipher.encrypt_in_place_detached(Nonce::from_slice(&nonce), b"", &mut chunk)
        else {
            let reply = Reply::new(500, "Internal server error", json!({"log_id": log_id()}));
            return ctx.conclude(reply).await;
        };
        let mut tag = tag.to_vec();
        match fault {
            Some(DownloadFault::FlipCiphertext { index: i }) if i == index => {
                if let Some(b) = chunk.first_mut() {
                    *b ^= 0x01;
                }
            }
            Some(DownloadFault::FlipHash { index: i }) if i == index => {
                if let Some(b) = tag.first_mut() {
                    *b ^= 0x01;
                }
            }
            _ => {}
        }
        let message = json!({"action": "file_chunk", "data": {
            "index": index, "chunk": STANDARD.encode(&chunk),
            "tag": STANDARD.encode(&tag), "prefix": STANDARD.encode(prefix),
        }});
        ctx.process_json(&message).await?;
    }
    // Whoever finishes first spends the task; later finishers get no key.
    let first = {
        let mut store = ctx.shared.store();
        let task = store.tasks.get_mut(&task_id)?;
        !std::mem::replace(&mut task.used, true)
    };
    let key = first.then(|| STANDARD.encode(key));
    ctx.process_json(&json!({"action": "aes_key", "data": {"key": key}}))
        .await
}
