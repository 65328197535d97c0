//! The small virtual file tree behind `file.*`.
//!
//! Paths look like `vol{v}/{uid}/Documents/report.pdf`: volume id, owner
//! uid, then the path inside the user's home on that volume. The home view
//! (`file.ls` without a path) lists the top-level entries of every volume's
//! home, each tagged with its volume id `v`.

use std::collections::BTreeMap;

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
}

impl std::fmt::Display for FileError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::BadPath(p) => write!(f, "malformed path `{p}`"),
            Self::Forbidden(p) => write!(f, "no access to `{p}`"),
            Self::NotFound(p) => write!(f, "no such file or folder `{p}`"),
            Self::Exists(p) => write!(f, "`{p}` already exists"),
        }
    }
}

#[derive(Debug, Clone)]
struct Node {
    size: Option<u64>,
    mtim: u64,
    btim: u64,
    children: Option<BTreeMap<String, Node>>,
}

impl Node {
    fn dir(t: u64, children: Vec<(&str, Node)>) -> Self {
        Self {
            size: None,
            mtim: t,
            btim: t,
            children: Some(
                children
                    .into_iter()
                    .map(|(n, c)| (n.to_owned(), c))
                    .collect(),
            ),
        }
    }

    fn file(t: u64, size: u64) -> Self {
        Self {
            size: Some(size),
            mtim: t,
            btim: t - 3600,
            children: None,
        }
    }

    fn bytes(&self) -> u64 {
        self.size.unwrap_or(0)
            + self
                .children
                .iter()
                .flatten()
                .map(|(_, c)| c.bytes())
                .sum::<u64>()
    }

    fn entry(&self, name: &str, uid: u32) -> serde_json::Map<String, Value> {
        let mut e = serde_json::Map::new();
        e.insert("name".into(), json!(name));
        e.insert("uid".into(), json!(uid));
        if let Some(size) = self.size {
            e.insert("size".into(), json!(size));
        }
        e.insert("mtim".into(), json!(self.mtim));
        e.insert("btim".into(), json!(self.btim));
        if self.children.is_some() {
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
        Self {
            uid,
            volumes: BTreeMap::from([(1, home1), (2, home2)]),
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
                .children
                .as_ref()
                .and_then(|c| c.get(part))
                .ok_or_else(|| FileError::NotFound(path.to_owned()))?;
        }
        Ok(node)
    }

    /// The parent folder's children and the last path component.
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
                .children
                .as_mut()
                .and_then(|c| c.get_mut(*part))
                .ok_or_else(|| FileError::NotFound(path.to_owned()))?;
        }
        let children = node
            .children
            .as_mut()
            .ok_or_else(|| FileError::NotFound(path.to_owned()))?;
        Ok((children, last))
    }

    /// `file.ls` entries: the home view for `None`, else the folder's content.
    pub fn list(&self, path: Option<&str>) -> Result<Vec<Value>, FileError> {
        let Some(path) = path else {
            let mut out = Vec::new();
            for (v, home) in &self.volumes {
                for (name, node) in home.children.iter().flatten() {
                    let mut e = node.entry(name, self.uid);
                    e.insert("v".into(), json!(v));
                    out.push(Value::Object(e));
                }
            }
            return Ok(out);
        };
        let node = self.node(path)?;
        let children = node
            .children
            .as_ref()
            .ok_or_else(|| FileError::NotFound(path.to_owned()))?;
        Ok(children
            .iter()
            .map(|(n, c)| Value::Object(c.entry(n, self.uid)))
            .collect())
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
        if self.node(destination)?.children.is_none() {
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
