//! Local files of a transfer: hashing, the blocking-pool reader and
//! writer, and the decryption pass.

use naslink_core::cfms::{DownloadKey, FileDecryptor};
use tokio::sync::mpsc;

use super::CfmsError;
use super::transfer::DISK_QUEUE;

/// The file's side of a download, on the blocking pool: blocks in, written
/// in order, flushed at the end (when the sender is dropped). Each block's
/// seal records (protocol 13, resumable) go to `seals` only after its
/// ciphertext was written, so a record never claims bytes not on disk.
pub(super) fn write_blocks(
    file: std::fs::File,
    seals: Option<std::fs::File>,
    mut blocks: mpsc::Receiver<(Vec<u8>, Vec<u8>)>,
) -> tokio::task::JoinHandle<std::io::Result<()>> {
    tokio::task::spawn_blocking(move || {
        use std::io::Write;
        let mut file = file;
        let mut seals = seals;
        while let Some((block, records)) = blocks.blocking_recv() {
            file.write_all(&block)?;
            if let Some(seals) = seals.as_mut()
                && !records.is_empty()
            {
                file.flush()?;
                seals.write_all(&records)?;
            }
        }
        if let Some(seals) = seals.as_mut() {
            seals.flush()?;
        }
        file.flush()
    })
}

/// The file's side of an upload, on the blocking pool: 64 KiB blocks out,
/// then an empty block at the end (or the read error). Stops when the
/// receiver is dropped.
pub(super) fn read_blocks(file: std::fs::File) -> mpsc::Receiver<std::io::Result<Vec<u8>>> {
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

/// The decryption pass: ciphertext file in, verified plaintext file out
/// (both already open: their names belong to the caller's guards).
pub(super) fn decrypt_file(
    key: &DownloadKey,
    hashes: &[[u8; 32]],
    mut input: std::fs::File,
    output: std::fs::File,
) -> Result<u64, CfmsError> {
    use std::io::{Read, Write};
    let mut decryptor =
        FileDecryptor::new(key, hashes).map_err(|e| CfmsError::Transfer(e.to_string()))?;
    let mut output = std::io::BufWriter::new(output);
    let mut block = vec![0u8; 256 * 1024];
    loop {
        let n = input.read(&mut block).map_err(CfmsError::Io)?;
        if n == 0 {
            break;
        }
        let read = block.get_mut(..n).unwrap_or_default();
        decryptor
            .decrypt(read)
            .map_err(|e| CfmsError::Transfer(e.to_string()))?;
        output.write_all(read).map_err(CfmsError::Io)?;
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

/// Largest protocol-13 chunk decrypted (the real server's is 2 MiB): one
/// chunk is held in memory while its tag is checked.
const MAX_GCM_CHUNK: u64 = 16 * 1024 * 1024;

/// The protocol-13 decryption pass: chunk by chunk (AES-256-GCM, each
/// chunk's tag and nonce prefix from its seal), plaintext written only
/// once its tag verified. A forged or corrupted chunk is named by index.
pub(super) fn open_chunks(
    key: &DownloadKey,
    seals: &[[u8; 32]],
    mut input: std::fs::File,
    output: std::fs::File,
) -> Result<u64, CfmsError> {
    use naslink_core::cfms::p13::transfer::open_chunk;
    use std::io::{Read, Write};
    let chunk = u64::from(key.chunk_size);
    if key.file_size > 0 && (chunk == 0 || chunk > MAX_GCM_CHUNK) {
        return Err(CfmsError::Transfer(format!(
            "chunk size {chunk} (this client opens chunks of 1 B to {MAX_GCM_CHUNK} B)"
        )));
    }
    let mut output = std::io::BufWriter::new(output);
    let mut block = vec![0u8; chunk.min(key.file_size) as usize];
    let mut left = key.file_size;
    let mut index = 0u32;
    while left > 0 {
        let len = chunk.min(left) as usize;
        let buf = block.get_mut(..len).unwrap_or_default();
        input.read_exact(buf).map_err(CfmsError::Io)?;
        let seal = seals
            .get(index as usize)
            .ok_or_else(|| CfmsError::Transfer(format!("no tag was received for chunk {index}")))?;
        open_chunk(key, index, seal, buf).map_err(|e| CfmsError::Transfer(e.to_string()))?;
        output.write_all(buf).map_err(CfmsError::Io)?;
        left -= len as u64;
        index += 1;
    }
    if input.read(&mut [0u8; 1]).map_err(CfmsError::Io)? != 0 {
        return Err(CfmsError::Transfer(
            "more ciphertext than the file's size".into(),
        ));
    }
    let file = output
        .into_inner()
        .map_err(|e| CfmsError::Io(e.into_error()))?;
    file.sync_all().map_err(CfmsError::Io)?;
    Ok(key.file_size)
}

/// Size and SHA-256 of a file, read in blocks.
pub(super) fn hash_file(path: &std::path::Path) -> Result<(u64, [u8; 32]), CfmsError> {
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
