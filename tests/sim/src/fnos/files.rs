//! The small virtual file tree behind `file.*`.
//!
//! Paths look like `vol{v}/{uid}/Documents/report.pdf`: volume id, owner
//! uid, then the path inside the user's home on that volume. The home view
//! (`file.ls` without a path) lists the top-level entries of every volume's
//! home, each tagged with its volume id `v`.
//!
//! Files have content. The sample files are declared with sizes up to
//! 17 GiB, so their bytes are never stored: byte `i` of such a file is
//! [`synthetic_byte`]`(seed, i)`, where the seed is a hash of the path the
//! file was created under (a rename or move keeps it). Uploaded files and
//! files put by [`Handle::put_file`](super::Handle::put_file) store their
//! real bytes.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::{Value, json};

/// Why a file operation failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FileError {
    /// The path is not `vol{v}/{uid}/...`.
    BadPath(String),
    /// The path names another user's home.
    Forbidden(String),
    /// Nothing exists at the path.
    NotFound(String),
    /// Something already exists at the target path.
    Exists(String),
    /// The path names a folder where a regular file is needed.
    IsFolder(String),
}

impl std::fmt::Display for FileError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::BadPath(p) => write!(f, "malformed path `{p}`"),
            Self::Forbidden(p) => write!(f, "no access to `{p}`"),
            Self::NotFound(p) => write!(f, "no such file or folder `{p}`"),
            Self::Exists(p) => write!(f, "`{p}` already exists"),
            Self::IsFolder(p) => write!(f, "`{p}` is a folder, not a file"),
        }
    }
}

impl std::error::Error for FileError {}

/// Byte `index` of a sample file whose path hashed to `seed`: the top byte
/// of a multiplicative hash, so neighbouring bytes and files differ.
pub fn synthetic_byte(seed: u64, index: u64) -> u8 {
    ((index ^ seed).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 56) as u8
}

/// FNV-1a of `path` without its surrounding slashes: the seed of a sample
/// file's synthetic content.
fn path_seed(path: &str) -> u64 {
    path.trim_matches('/')
        .bytes()
        .fold(0xcbf2_9ce4_8422_2325, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
        })
}

/// What a regular file holds.
#[derive(Debug, Clone)]
pub enum Content {
    /// `len` bytes of [`synthetic_byte`]`(seed, i)`, computed when read.
    Synthetic {
        /// The hash of the path the file was created under.
        seed: u64,
        /// The declared size.
        len: u64,
    },
    /// Real bytes (uploads); shared so a download can stream them unlocked.
    Stored(Arc<[u8]>),
}

impl Content {
    /// Size in bytes.
    pub fn len(&self) -> u64 {
        match self {
            Self::Synthetic { len, .. } => *len,
            Self::Stored(bytes) => bytes.len() as u64,
        }
    }

    /// Fill `buf` with the bytes from `offset` on; returns how many there
    /// were (fewer than `buf.len()` only at the end of the file).
    pub fn read_at(&self, offset: u64, buf: &mut [u8]) -> usize {
        let available = self.len().saturating_sub(offset);
        let n = buf
            .len()
            .min(usize::try_from(available).unwrap_or(usize::MAX));
        match self {
            Self::Synthetic { seed, .. } => {
                for (i, byte) in buf[..n].iter_mut().enumerate() {
                    *byte = synthetic_byte(*seed, offset + i as u64);
                }
            }
            Self::Stored(bytes) => {
                // `n > 0` implies `offset < len`, which fits in usize.
                let start = offset as usize;
                buf[..n].copy_from_slice(&bytes[start..start + n]);
            }
        }
        n
    }

    /// The whole content in memory.
    pub fn to_vec(&self) -> Vec<u8> {
        match self {
            Self::Stored(bytes) => bytes.to_vec(),
            Self::Synthetic { len, .. } => {
                let mut out = vec![0; usize::try_from(*len).unwrap_or(usize::MAX)];
                self.read_at(0, &mut out);
                out
            }
        }
    }
}

/// How `file.checkUpload` treats an existing file of the same name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Overwrite {
    /// `overwrite: 0`: refuse (errno 4102).
    Skip,
    /// `overwrite: 1`: replace the file.
    Replace,
    /// `overwrite: 2` (also when absent): upload under a fresh name.
    KeepBoth,
}

impl Overwrite {
    /// The mode for a protocol value 0, 1 or 2.
    pub fn from_code(code: u64) -> Option<Self> {
        match code {
            0 => Some(Self::Skip),
            1 => Some(Self::Replace),
            2 => Some(Self::KeepBoth),
            _ => None,
        }
    }
}

#[derive(Debug, Clone)]
enum Kind {
    Folder(BTreeMap<String, Node>),
    File(Content),
}

#[derive(Debug, Clone)]
struct Node {
    mtim: u64,
    btim: u64,
    kind: Kind,
}

impl Node {
    fn dir(t: u64, children: Vec<(&str, Node)>) -> Self {
        Self {
            mtim: t,
            btim: t,
            kind: Kind::Folder(
                children
                    .into_iter()
                    .map(|(n, c)| (n.to_owned(), c))
                    .collect(),
            ),
        }
    }

    /// A sample file; its content is synthetic, seeded by where it lives.
    fn file(t: u64, size: u64) -> Self {
        Self {
            mtim: t,
            btim: t - 3600,
            kind: Kind::File(Content::Synthetic { seed: 0, len: size }),
        }
    }

    /// Give every synthetic file below this node the seed of its path.
    fn seed_below(&mut self, path: &str) {
        match &mut self.kind {
            Kind::File(Content::Synthetic { seed, .. }) => *seed = path_seed(path),
            Kind::File(Content::Stored(_)) => {}
            Kind::Folder(children) => {
                for (name, child) in children {
                    child.seed_below(&format!("{path}/{name}"));
                }
            }
        }
    }

    fn children(&self) -> Option<&BTreeMap<String, Node>> {
        match &self.kind {
            Kind::Folder(children) => Some(children),
            Kind::File(_) => None,
        }
    }

    fn children_mut(&mut self) -> Option<&mut BTreeMap<String, Node>> {
        match &mut self.kind {
            Kind::Folder(children) => Some(children),
            Kind::File(_) => None,
        }
    }

    fn size(&self) -> Option<u64> {
        match &self.kind {
            Kind::File(content) => Some(content.len()),
            Kind::Folder(_) => None,
        }
    }

    fn bytes(&self) -> u64 {
        match &self.kind {
            Kind::File(content) => content.len(),
            Kind::Folder(children) => children.values().map(Node::bytes).sum(),
        }
    }

    fn entry(&self, name: &str, uid: u32) -> serde_json::Map<String, Value> {
        let mut e = serde_json::Map::new();
        e.insert("name".into(), json!(name));
        e.insert("uid".into(), json!(uid));
        if let Some(size) = self.size() {
            e.insert("size".into(), json!(size));
        }
        e.insert("mtim".into(), json!(self.mtim));
        e.insert("btim".into(), json!(self.btim));
        if self.children().is_some() {
            e.insert("dir".into(), json!(1));
        }
        e
    }
}

/// One user's homes on the emulated volumes.
#[derive(Debug, Clone)]
pub struct FileTree {
    uid: u32,
    /// Volume id → that volume's home folder of `uid`.
    volumes: BTreeMap<u32, Node>,
    /// Bumped on every change; reported as `uver`.
    uver: u64,
}

/// A parsed `vol{v}/{uid}/rest` path.
struct Parsed<'a> {
    volume: u32,
    parts: Vec<&'a str>,
}

/// `path` without empty components: `/vol1//1000/a/` → `vol1/1000/a`.
pub fn normalize(path: &str) -> String {
    path.split('/')
        .filter(|p| !p.is_empty())
        .collect::<Vec<_>>()
        .join("/")
}

/// The uid in a `vol{v}/{uid}/...` path, if it has that shape.
pub fn owner(path: &str) -> Option<u32> {
    let mut parts = path.split('/').filter(|p| !p.is_empty());
    parts.next()?.strip_prefix("vol")?.parse::<u32>().ok()?;
    parts.next()?.parse().ok()
}

/// `report.pdf` → `report (n).pdf`; names without an extension (or
/// starting with their only dot, like `.bashrc`) get the suffix at the end.
fn numbered(name: &str, n: u32) -> String {
    match name.rfind('.') {
        Some(dot) if dot > 0 => format!("{} ({n}){}", &name[..dot], &name[dot..]),
        _ => format!("{name} ({n})"),
    }
}

impl FileTree {
    /// The sample tree for user `uid`: Documents, Photos and Music on
    /// volume 1, Backup on volume 2, with sizes and times fixed around
    /// `now` (unix seconds).
    pub fn sample(uid: u32, now: u64) -> Self {
        let day = 86_400;
        let t = |days_ago: u64| now - days_ago * day;
        let documents = Node::dir(
            t(2),
            vec![
                ("report-2025.pdf", Node::file(t(30), 2_481_233)),
                ("notes.txt", Node::file(t(2), 5_120)),
                ("budget.xlsx", Node::file(t(12), 48_760)),
                ("slides.pptx", Node::file(t(45), 7_340_032)),
                (
                    "Projects",
                    Node::dir(
                        t(5),
                        vec![
                            ("naslink.md", Node::file(t(5), 12_288)),
                            ("sketch.png", Node::file(t(9), 431_002)),
                        ],
                    ),
                ),
            ],
        );
        let photos = Node::dir(
            t(1),
            vec![
                ("IMG_0001.jpg", Node::file(t(100), 3_912_441)),
                ("IMG_0002.jpg", Node::file(t(100), 4_087_112)),
                ("IMG_0003.heic", Node::file(t(40), 2_199_553)),
                (
                    "2024",
                    Node::dir(t(300), vec![("beach.jpg", Node::file(t(320), 5_602_310))]),
                ),
            ],
        );
        let music = Node::dir(t(60), vec![("playlist.m3u", Node::file(t(60), 822))]);
        let home1 = Node::dir(
            t(1),
            vec![
                ("Documents", documents),
                ("Photos", photos),
                ("Music", music),
            ],
        );
        let backup = Node::dir(
            t(7),
            vec![("laptop-2025-11.tar.zst", Node::file(t(7), 18_253_611_008))],
        );
        let home2 = Node::dir(t(7), vec![("Backup", backup)]);
        let mut volumes = BTreeMap::from([(1, home1), (2, home2)]);
        for (v, home) in &mut volumes {
            home.seed_below(&format!("vol{v}/{uid}"));
        }
        Self {
            uid,
            volumes,
            uver: now << 16,
        }
    }

    /// The `uver` counter (changes with every modification).
    pub fn uver(&self) -> u64 {
        self.uver
    }

    /// The volume ids that hold a home for this user.
    pub fn volume_ids(&self) -> Vec<u32> {
        self.volumes.keys().copied().collect()
    }

    /// Bytes stored on volume `v`.
    pub fn used_bytes(&self, v: u32) -> u64 {
        self.volumes.get(&v).map_or(0, Node::bytes)
    }

    fn parse<'a>(&self, path: &'a str) -> Result<Parsed<'a>, FileError> {
        let trimmed = path.trim_matches('/');
        let mut parts = trimmed.split('/').filter(|p| !p.is_empty());
        let volume = parts
            .next()
            .and_then(|v| v.strip_prefix("vol"))
            .and_then(|v| v.parse::<u32>().ok())
            .ok_or_else(|| FileError::BadPath(path.to_owned()))?;
        let uid = parts
            .next()
            .and_then(|u| u.parse::<u32>().ok())
            .ok_or_else(|| FileError::BadPath(path.to_owned()))?;
        if uid != self.uid {
            return Err(FileError::Forbidden(path.to_owned()));
        }
        let parts: Vec<&str> = parts.collect();
        if parts.iter().any(|p| *p == "." || *p == "..") {
            return Err(FileError::BadPath(path.to_owned()));
        }
        Ok(Parsed { volume, parts })
    }

    fn node(&self, path: &str) -> Result<&Node, FileError> {
        let parsed = self.parse(path)?;
        let mut node = self
            .volumes
            .get(&parsed.volume)
            .ok_or_else(|| FileError::NotFound(path.to_owned()))?;
        for part in parsed.parts {
            node = node
                .children()
                .and_then(|c| c.get(part))
                .ok_or_else(|| FileError::NotFound(path.to_owned()))?;
        }
        Ok(node)
    }

    /// The parent folder's children and the last path component.
    fn parent<'a>(&self, path: &'a str) -> Result<(&BTreeMap<String, Node>, &'a str), FileError> {
        let parsed = self.parse(path)?;
        let (last, dirs) = parsed
            .parts
            .split_last()
            .ok_or_else(|| FileError::BadPath(path.to_owned()))?;
        let mut node = self
            .volumes
            .get(&parsed.volume)
            .ok_or_else(|| FileError::NotFound(path.to_owned()))?;
        for part in dirs {
            node = node
                .children()
                .and_then(|c| c.get(*part))
                .ok_or_else(|| FileError::NotFound(path.to_owned()))?;
        }
        let children = node
            .children()
            .ok_or_else(|| FileError::NotFound(path.to_owned()))?;
        Ok((children, last))
    }

    /// The parent folder's children (mutable) and the last path component.
    fn parent_mut<'a>(
        &mut self,
        path: &'a str,
    ) -> Result<(&mut BTreeMap<String, Node>, &'a str), FileError> {
        let parsed = self.parse(path)?;
        let (last, dirs) = parsed
            .parts
            .split_last()
            .ok_or_else(|| FileError::BadPath(path.to_owned()))?;
        let mut node = self
            .volumes
            .get_mut(&parsed.volume)
            .ok_or_else(|| FileError::NotFound(path.to_owned()))?;
        for part in dirs {
            node = node
                .children_mut()
                .and_then(|c| c.get_mut(*part))
                .ok_or_else(|| FileError::NotFound(path.to_owned()))?;
        }
        let children = node
            .children_mut()
            .ok_or_else(|| FileError::NotFound(path.to_owned()))?;
        Ok((children, last))
    }

    /// `file.ls` entries: the home view for `None`, else the folder's content.
    pub fn list(&self, path: Option<&str>) -> Result<Vec<Value>, FileError> {
        let Some(path) = path else {
            let mut out = Vec::new();
            for (v, home) in &self.volumes {
                for (name, node) in home.children().into_iter().flatten() {
                    let mut e = node.entry(name, self.uid);
                    e.insert("v".into(), json!(v));
                    out.push(Value::Object(e));
                }
            }
            return Ok(out);
        };
        let node = self.node(path)?;
        let children = node
            .children()
            .ok_or_else(|| FileError::NotFound(path.to_owned()))?;
        Ok(children
            .iter()
            .map(|(n, c)| Value::Object(c.entry(n, self.uid)))
            .collect())
    }

    /// The content of the regular file at `path`.
    pub fn content(&self, path: &str) -> Result<Content, FileError> {
        match &self.node(path)?.kind {
            Kind::File(content) => Ok(content.clone()),
            Kind::Folder(_) => Err(FileError::IsFolder(path.to_owned())),
        }
    }

    /// The name an upload to `path` (folder + "/" + name) goes under, as
    /// `file.checkUpload` decides it: the requested name when it is free,
    /// else per `overwrite` a refusal, the same name, or the first free
    /// `name (n).ext`. A folder of that name is never replaced.
    pub fn upload_name(&self, path: &str, overwrite: Overwrite) -> Result<String, FileError> {
        let (children, name) = self.parent(path)?;
        let Some(existing) = children.get(name) else {
            return Ok(name.to_owned());
        };
        match overwrite {
            Overwrite::Replace if existing.children().is_none() => Ok(name.to_owned()),
            Overwrite::Skip | Overwrite::Replace => Err(FileError::Exists(path.to_owned())),
            Overwrite::KeepBoth => Ok((1..)
                .map(|n| numbered(name, n))
                .find(|candidate| !children.contains_key(candidate))
                .unwrap_or_else(|| name.to_owned())),
        }
    }

    /// Store `bytes` as the file `path` with modification time `mtim`,
    /// replacing a file of that name only if `replace`. The parent folder
    /// must exist; a folder is never replaced.
    pub fn write(
        &mut self,
        path: &str,
        bytes: Vec<u8>,
        mtim: u64,
        now: u64,
        replace: bool,
    ) -> Result<(), FileError> {
        let (children, name) = self.parent_mut(path)?;
        match children.get(name).map(Node::children) {
            Some(Some(_)) => return Err(FileError::IsFolder(path.to_owned())),
            Some(None) if !replace => return Err(FileError::Exists(path.to_owned())),
            _ => {}
        }
        let node = Node {
            mtim,
            btim: now,
            kind: Kind::File(Content::Stored(bytes.into())),
        };
        children.insert(name.to_owned(), node);
        self.uver += 1;
        Ok(())
    }

    /// `file.mkdir`.
    pub fn mkdir(&mut self, path: &str, now: u64) -> Result<(), FileError> {
        let (children, name) = self.parent_mut(path)?;
        if children.contains_key(name) {
            return Err(FileError::Exists(path.to_owned()));
        }
        children.insert(name.to_owned(), Node::dir(now, vec![]));
        self.uver += 1;
        Ok(())
    }

    fn take(&mut self, path: &str) -> Result<Node, FileError> {
        let (children, name) = self.parent_mut(path)?;
        children
            .remove(name)
            .ok_or_else(|| FileError::NotFound(path.to_owned()))
    }

    fn put(&mut self, path: &str, node: Node) -> Result<(), FileError> {
        let (children, name) = self.parent_mut(path)?;
        if children.contains_key(name) {
            return Err(FileError::Exists(path.to_owned()));
        }
        children.insert(name.to_owned(), node);
        Ok(())
    }

    /// `file.rm`: every path must exist, or nothing is removed.
    pub fn remove(&mut self, paths: &[&str]) -> Result<(), FileError> {
        for path in paths {
            self.node(path)?;
        }
        for path in paths {
            self.take(path)?;
        }
        self.uver += 1;
        Ok(())
    }

    /// `file.mv`: move each path into the folder `destination`.
    pub fn move_into(&mut self, paths: &[&str], destination: &str) -> Result<(), FileError> {
        if self.node(destination)?.children().is_none() {
            return Err(FileError::NotFound(destination.to_owned()));
        }
        for path in paths {
            self.node(path)?;
            let inside = format!("{}/", path.trim_matches('/'));
            if format!("{}/", destination.trim_matches('/')).starts_with(&inside) {
                return Err(FileError::BadPath(destination.to_owned()));
            }
        }
        for path in paths {
            let name = path
                .trim_end_matches('/')
                .rsplit('/')
                .next()
                .unwrap_or(path);
            let target = format!("{}/{name}", destination.trim_end_matches('/'));
            if target.trim_matches('/') == path.trim_matches('/') {
                continue;
            }
            if self.node(&target).is_ok() {
                return Err(FileError::Exists(target));
            }
            let node = self.take(path)?;
            self.put(&target, node)?;
        }
        self.uver += 1;
        Ok(())
    }

    /// `file.rename`: give `path` the name `new_name` in the same folder.
    pub fn rename(&mut self, path: &str, new_name: &str) -> Result<(), FileError> {
        if new_name.is_empty() || new_name.contains('/') {
            return Err(FileError::BadPath(new_name.to_owned()));
        }
        let (children, old) = self.parent_mut(path)?;
        if children.contains_key(new_name) {
            return Err(FileError::Exists(new_name.to_owned()));
        }
        let node = children
            .remove(old)
            .ok_or_else(|| FileError::NotFound(path.to_owned()))?;
        children.insert(new_name.to_owned(), node);
        self.uver += 1;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keep_both_numbers_the_name_before_its_extension() {
        assert_eq!(numbered("report.pdf", 1), "report (1).pdf");
        assert_eq!(numbered("archive.tar.gz", 2), "archive.tar (2).gz");
        assert_eq!(numbered("README", 1), "README (1)");
        assert_eq!(numbered(".bashrc", 1), ".bashrc (1)");
    }

    #[test]
    fn synthetic_content_reads_the_same_in_any_pieces() {
        let content = Content::Synthetic { seed: 42, len: 10 };
        let whole = content.to_vec();
        let mut tail = [0u8; 8];
        assert_eq!(content.read_at(6, &mut tail), 4);
        assert_eq!(&tail[..4], &whole[6..]);
        assert_eq!(content.read_at(10, &mut tail), 0);
        assert_ne!(whole, Content::Synthetic { seed: 43, len: 10 }.to_vec());
    }

    #[test]
    fn a_rename_keeps_the_synthetic_content() {
        let mut tree = FileTree::sample(1000, 1_000_000_000);
        let before = tree.content("vol1/1000/Documents/notes.txt").unwrap();
        tree.rename("vol1/1000/Documents/notes.txt", "todo.txt")
            .unwrap();
        let after = tree.content("vol1/1000/Documents/todo.txt").unwrap();
        assert_eq!(before.to_vec(), after.to_vec());
        assert_eq!(after.len(), 5120);
    }
}
