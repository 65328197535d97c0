//! The resumable partial of a protocol-13 download: the ciphertext of the
//! whole chunks received so far, kept beside the target as
//! `.NAME.naslink-partial`, and their seals with the task that fetched them
//! in `.NAME.naslink-partial-seals`. These are the one deliberate exception
//! to "no file is left behind": their names say what they are, they are
//! checked when read back (a foreign or damaged pair is discarded, and
//! every chunk's AES-GCM tag is checked before any plaintext is written),
//! and they are removed when the download completes or is abandoned.

use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};

/// First line of the seals file.
const MAGIC: &[u8] = b"naslink-partial 1\n";
/// One seal record: chunk index (u32 BE), ciphertext length (u32 BE), the
/// 32-byte seal (GCM tag and nonce prefix).
pub(super) const RECORD: usize = 40;
/// Largest seals file read back (about 1.6 million chunks; 3.2 TiB in the
/// real server's 2 MiB chunks).
const MAX_SEALS_FILE: u64 = 64 * 1024 * 1024;
/// Longest document or task id kept in the header.
const MAX_ID: usize = 1024;

/// A seal record for chunk `index` of `len` bytes.
pub(super) fn record(index: u32, len: u32, seal: &[u8; 32]) -> [u8; RECORD] {
    let mut out = [0u8; RECORD];
    out[..4].copy_from_slice(&index.to_be_bytes());
    out[4..8].copy_from_slice(&len.to_be_bytes());
    out[8..].copy_from_slice(seal);
    out
}

/// The two files of a target's partial download.
pub(super) struct Partial {
    /// The ciphertext of the whole chunks so far.
    pub(super) cipher: PathBuf,
    /// Header (document and task ids) and one record per chunk.
    pub(super) seals: PathBuf,
}

/// A partial download read back and found consistent.
pub(super) struct Resume {
    pub(super) task_id: String,
    /// Bytes of whole chunks kept (where the download resumes).
    pub(super) offset: u64,
    /// Their seals, index order.
    pub(super) seals: Vec<[u8; 32]>,
}

impl Partial {
    /// The partial files beside `target`.
    pub(super) fn beside(target: &Path) -> Self {
        let (folder, name) = crate::beside::folder_and_name(target);
        Partial {
            cipher: folder.join(format!(".{name}.naslink-partial")),
            seals: folder.join(format!(".{name}.naslink-partial-seals")),
        }
    }

    /// Whether a partial download is there (either file).
    pub(super) fn exists(&self) -> bool {
        self.cipher.symlink_metadata().is_ok() || self.seals.symlink_metadata().is_ok()
    }

    /// Remove both files (those that are there).
    pub(super) fn remove(&self) {
        let _ = std::fs::remove_file(&self.cipher);
        let _ = std::fs::remove_file(&self.seals);
    }

    /// Whether another download to the same target holds the partial (its
    /// seals file is locked while a download appends to it).
    pub(super) fn busy(&self) -> bool {
        let Ok(file) = std::fs::File::open(&self.seals) else {
            return false;
        };
        matches!(file.try_lock(), Err(std::fs::TryLockError::WouldBlock))
    }

    /// Start a new partial for `document_id` fetched by `task_id`: both
    /// files created afresh (exclusively, owner-only), returned open for
    /// appending; the seals file is locked until it is closed.
    pub(super) fn create(
        &self,
        document_id: &str,
        task_id: &str,
    ) -> std::io::Result<(std::fs::File, std::fs::File)> {
        self.remove();
        let cipher = create_new(&self.cipher)?;
        let mut seals = create_new(&self.seals)?;
        seals.try_lock().map_err(std::io::Error::other)?;
        seals.write_all(&header(document_id, task_id))?;
        seals.flush()?;
        Ok((cipher, seals))
    }

    /// Read the partial back for `document_id`: `Ok(None)` when there is
    /// none, `Err(why)` when it is foreign or damaged (the caller discards
    /// it). The ciphertext is cut back to the last whole chunk recorded, so
    /// the returned files append from [`Resume::offset`].
    pub(super) fn load(
        &self,
        document_id: &str,
    ) -> Result<Option<(Resume, std::fs::File, std::fs::File)>, String> {
        if !self.exists() {
            return Ok(None);
        }
        for path in [&self.cipher, &self.seals] {
            let meta = path
                .symlink_metadata()
                .map_err(|e| format!("{} cannot be read: {e}", path.display()))?;
            if !meta.file_type().is_file() {
                return Err(format!("{} is not a regular file", path.display()));
            }
        }
        let mut seals_file = open_rw(&self.seals)?;
        // Held until the download closes the file (see `busy`).
        seals_file
            .try_lock()
            .map_err(|e| format!("it cannot be locked: {e}"))?;
        let size = seals_file.metadata().map_err(|e| e.to_string())?.len();
        if size > MAX_SEALS_FILE {
            return Err(format!("its seals file is too large ({size} bytes)"));
        }
        let mut bytes = Vec::new();
        seals_file
            .read_to_end(&mut bytes)
            .map_err(|e| e.to_string())?;
        let (task_id, body_at) = parse_header(&bytes, document_id)?;
        let body = bytes.get(body_at..).unwrap_or_default();
        let mut seals = Vec::new();
        let mut offset = 0u64;
        let mut chunk_len = None;
        for (i, rec) in body.chunks_exact(RECORD).enumerate() {
            let index = u32::from_be_bytes(rec[..4].try_into().unwrap_or_default());
            let len = u32::from_be_bytes(rec[4..8].try_into().unwrap_or_default());
            if index as usize != i || len == 0 {
                return Err(format!("seal record {i} is out of order"));
            }
            // Only whole chunks of the first chunk's size count: a shorter
            // (last) chunk is fetched again with the key.
            if *chunk_len.get_or_insert(len) != len {
                break;
            }
            let mut seal = [0u8; 32];
            seal.copy_from_slice(&rec[8..]);
            seals.push(seal);
            offset += u64::from(len);
        }
        let cipher = open_rw(&self.cipher)?;
        let have = cipher.metadata().map_err(|e| e.to_string())?.len();
        if have < offset {
            return Err(format!(
                "it holds {have} bytes of ciphertext where its records name {offset}"
            ));
        }
        // Cut both files back to what is kept.
        cipher.set_len(offset).map_err(|e| e.to_string())?;
        let kept = body_at as u64 + (seals.len() * RECORD) as u64;
        seals_file.set_len(kept).map_err(|e| e.to_string())?;
        seals_file
            .seek(std::io::SeekFrom::End(0))
            .map_err(|e| e.to_string())?;
        let mut cipher = cipher;
        cipher
            .seek(std::io::SeekFrom::End(0))
            .map_err(|e| e.to_string())?;
        let resume = Resume {
            task_id,
            offset,
            seals,
        };
        Ok(Some((resume, cipher, seals_file)))
    }
}

fn header(document_id: &str, task_id: &str) -> Vec<u8> {
    let mut out = MAGIC.to_vec();
    for (key, value) in [("document", document_id), ("task", task_id)] {
        out.extend_from_slice(format!("{key} {}\n", value.len()).as_bytes());
        out.extend_from_slice(value.as_bytes());
        out.push(b'\n');
    }
    out
}

/// The task id and where the records start; the document must be
/// `document_id`.
fn parse_header(bytes: &[u8], document_id: &str) -> Result<(String, usize), String> {
    let rest = bytes
        .strip_prefix(MAGIC)
        .ok_or("it is not a naslink partial download")?;
    let mut at = MAGIC.len();
    let mut fields = Vec::new();
    let mut rest = rest;
    for key in ["document", "task"] {
        let line_end = rest
            .iter()
            .position(|&b| b == b'\n')
            .ok_or("its header is cut short")?;
        let line = std::str::from_utf8(rest.get(..line_end).unwrap_or_default())
            .map_err(|_| "its header is damaged")?;
        let len: usize = line
            .strip_prefix(key)
            .and_then(|l| l.strip_prefix(' '))
            .and_then(|n| n.parse().ok())
            .filter(|&n| n <= MAX_ID)
            .ok_or("its header is damaged")?;
        let value = rest
            .get(line_end + 1..line_end + 1 + len)
            .and_then(|v| std::str::from_utf8(v).ok())
            .ok_or("its header is cut short")?;
        if rest.get(line_end + 1 + len) != Some(&b'\n') {
            return Err("its header is damaged".into());
        }
        fields.push(value.to_owned());
        let used = line_end + 2 + len;
        at += used;
        rest = rest.get(used..).unwrap_or_default();
    }
    if fields.first().map(String::as_str) != Some(document_id) {
        return Err("it belongs to another document".into());
    }
    Ok((fields.pop().unwrap_or_default(), at))
}

fn create_new(path: &Path) -> std::io::Result<std::fs::File> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).read(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    options.open(path)
}

fn open_rw(path: &Path) -> Result<std::fs::File, String> {
    std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .map_err(|e| format!("{} cannot be opened: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// A seals file of random bytes: no panic, and never resumed
        /// unless it has the header.
        #[test]
        fn random_seals_files_are_refused_or_read(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
            let dir = tempfile::tempdir().unwrap();
            let p = Partial::beside(&dir.path().join("t"));
            std::fs::write(&p.seals, &bytes).unwrap();
            std::fs::write(&p.cipher, [0u8; 64]).unwrap();
            let loaded = p.load("doc");
            prop_assert!(loaded.is_err() || bytes.starts_with(MAGIC));
        }
    }

    #[test]
    fn a_partial_of_another_document_is_refused_and_a_short_last_chunk_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let p = Partial::beside(&dir.path().join("t"));
        let (mut c, mut s) = p.create("doc", "task1").unwrap();
        c.write_all(&[1u8; 25]).unwrap();
        for (i, len) in [(0u32, 10u32), (1, 10), (2, 5)] {
            s.write_all(&record(i, len, &[i as u8; 32])).unwrap();
        }
        drop((c, s));
        assert_eq!(
            p.load("other").err().as_deref(),
            Some("it belongs to another document")
        );
        let (resume, _, _) = p.load("doc").unwrap().unwrap();
        assert_eq!(resume.task_id, "task1");
        assert_eq!(resume.offset, 20);
        assert_eq!(resume.seals.len(), 2);
        assert_eq!(std::fs::metadata(&p.cipher).unwrap().len(), 20);
        p.remove();
        assert!(!p.exists());
    }
}
