//! The CFMS protocol version remembered per server, across runs.
//!
//! Finding the version costs a connection against a 3–5 server (the
//! protocol-13 probe is answered by a close, and naslink reconnects
//! speaking text). So the version a server answered is kept in
//! `cfms-protocol-versions.json` under the cache directory
//! (`$NASLINK_CACHE_DIR`, else `$XDG_CACHE_HOME/naslink`, else
//! `~/.cache/naslink`), keyed by scheme, host, port and path of the URL,
//! and handed to the client as
//! [`CfmsOptions::remembered_protocol_version`](naslink_tokio::cfms::CfmsOptions::remembered_protocol_version):
//! spoken at once, but dropped and negotiated afresh when the server
//! contradicts it.
//!
//! - `--protocol-version` (or `NASLINK_PROTOCOL_VERSION`) wins: the cache
//!   is then neither read nor written. `--no-cache` (`NASLINK_NO_CACHE`)
//!   leaves it alone too.
//! - Writes are atomic: a new file beside the old one (created exclusively),
//!   synced, then renamed over it. Two runs writing at once: the last
//!   rename wins, and each file is whole.
//! - Bounded: at most [`MAX_ENTRIES`] servers (the oldest learnt is
//!   dropped first), a file larger than [`MAX_FILE`] is not read.
//! - A file that cannot be read or parsed is ignored with a note on
//!   standard error, and replaced by the next write; failing to write is a
//!   note too, never a failure of the command.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use crate::output::term;

/// Servers remembered at most.
pub const MAX_ENTRIES: usize = 64;
/// The largest cache file read (64 entries take about 6 KiB).
pub const MAX_FILE: u64 = 64 * 1024;
/// The longest key kept (longer URLs are not remembered).
const MAX_KEY: usize = 512;
/// The file's name in the cache directory.
pub const FILE_NAME: &str = "cfms-protocol-versions.json";
/// The file format's version, written as `"format"`.
const FORMAT: u64 = 1;

/// The cache directory: `$NASLINK_CACHE_DIR`, else
/// `$XDG_CACHE_HOME/naslink`, else `$HOME/.cache/naslink` (relative
/// values of the XDG and HOME variables are ignored, as the XDG rules say).
pub fn dir() -> Option<PathBuf> {
    let var = |name| std::env::var_os(name).filter(|v| !v.is_empty());
    if let Some(d) = var("NASLINK_CACHE_DIR") {
        return Some(PathBuf::from(d));
    }
    let absolute = |name| var(name).map(PathBuf::from).filter(|p| p.is_absolute());
    if let Some(d) = absolute("XDG_CACHE_HOME") {
        return Some(d.join("naslink"));
    }
    absolute("HOME").map(|h| h.join(".cache").join("naslink"))
}

/// The key of the server a URL names: `scheme://host:port/path` (host in
/// lower case, the port always written, the query left out).
pub fn server_key(url: &str) -> Option<String> {
    let parsed = naslink_tokio::core::ws::Url::parse(url).ok()?;
    let scheme = if parsed.secure { "wss" } else { "ws" };
    let path = parsed.resource.split('?').next().unwrap_or("/");
    let key = format!(
        "{scheme}://{}:{}{path}",
        parsed.host.to_ascii_lowercase(),
        parsed.port
    );
    (key.len() <= MAX_KEY).then_some(key)
}

/// One remembered server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Entry {
    protocol_version: u32,
    /// When it was learnt (UNIX seconds): the oldest goes first.
    learnt: u64,
}

/// The remembered versions, as read from the file.
#[derive(Debug)]
pub struct ProtocolCache {
    path: PathBuf,
    entries: BTreeMap<String, Entry>,
}

impl ProtocolCache {
    /// Read the cache in `dir`; a missing file is an empty cache, an
    /// unreadable one too (with a note).
    pub fn open(dir: &Path) -> ProtocolCache {
        let path = dir.join(FILE_NAME);
        let entries = match read(&path) {
            Ok(entries) => entries,
            Err(why) => {
                note(&format!(
                    "ignoring the protocol cache {}: {why} (it is replaced on the next change)",
                    path.display()
                ));
                BTreeMap::new()
            }
        };
        ProtocolCache { path, entries }
    }

    /// The version remembered for `server`.
    pub fn get(&self, server: &str) -> Option<u32> {
        self.entries.get(server).map(|e| e.protocol_version)
    }

    /// Remember `version` for `server` and write the file (a note if that
    /// fails).
    pub fn remember(&mut self, server: &str, version: u32) {
        if self.get(server) == Some(version) {
            return;
        }
        self.entries.insert(
            server.to_owned(),
            Entry {
                protocol_version: version,
                learnt: unix_secs(),
            },
        );
        evict(&mut self.entries);
        self.save();
    }

    /// Forget `server` and write the file.
    pub fn forget(&mut self, server: &str) {
        if self.entries.remove(server).is_some() {
            self.save();
        }
    }

    fn save(&self) {
        if let Err(e) = write(&self.path, &self.entries) {
            note(&format!(
                "cannot write the protocol cache {}: {e}",
                self.path.display()
            ));
        }
    }
}

fn note(text: &str) {
    eprintln!("naslink: note: {}", term(text));
}

fn unix_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Drop the oldest entries beyond [`MAX_ENTRIES`].
fn evict(entries: &mut BTreeMap<String, Entry>) {
    while entries.len() > MAX_ENTRIES {
        let oldest = entries
            .iter()
            .min_by_key(|(_, e)| e.learnt)
            .map(|(k, _)| k.clone());
        match oldest {
            Some(k) => entries.remove(&k),
            None => break,
        };
    }
}

/// The file's entries; `Err` says why it cannot be used.
fn read(path: &Path) -> Result<BTreeMap<String, Entry>, String> {
    use std::io::Read;
    let file = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(BTreeMap::new()),
        Err(e) => return Err(e.to_string()),
    };
    let mut text = Vec::new();
    file.take(MAX_FILE + 1)
        .read_to_end(&mut text)
        .map_err(|e| e.to_string())?;
    if text.len() as u64 > MAX_FILE {
        return Err(format!("larger than {MAX_FILE} bytes"));
    }
    parse(&text)
}

/// `{"format": 1, "servers": {KEY: {"protocol_version": N, "learnt": T}}}`.
fn parse(text: &[u8]) -> Result<BTreeMap<String, Entry>, String> {
    let root: Value = serde_json::from_slice(text).map_err(|e| format!("not JSON ({e})"))?;
    if root["format"].as_u64() != Some(FORMAT) {
        return Err(format!("not format {FORMAT}"));
    }
    let servers = root["servers"].as_object().ok_or("no \"servers\" object")?;
    let mut entries = BTreeMap::new();
    for (key, e) in servers {
        let protocol_version = e["protocol_version"]
            .as_u64()
            .and_then(|v| u32::try_from(v).ok())
            .ok_or_else(|| format!("{key}: no protocol_version"))?;
        let learnt = e["learnt"].as_u64().unwrap_or(0);
        if key.len() <= MAX_KEY {
            entries.insert(
                key.clone(),
                Entry {
                    protocol_version,
                    learnt,
                },
            );
        }
    }
    evict(&mut entries);
    Ok(entries)
}

/// Write `entries` to `path` atomically: a new file beside it, synced,
/// renamed over it.
fn write(path: &Path, entries: &BTreeMap<String, Entry>) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir)?;
    let servers: serde_json::Map<String, Value> = entries
        .iter()
        .map(|(k, e)| {
            let v = json!({"protocol_version": e.protocol_version, "learnt": e.learnt});
            (k.clone(), v)
        })
        .collect();
    let text = serde_json::to_vec_pretty(&json!({"format": FORMAT, "servers": servers}))
        .map_err(std::io::Error::other)?;
    // The same temporary-file-then-rename as the downloads: created
    // exclusively under an unpredictable name, removed when dropped.
    let mut temp = tempfile::Builder::new()
        .prefix(&format!(".{FILE_NAME}."))
        .suffix(".tmp")
        .tempfile_in(dir)?;
    temp.write_all(&text)?;
    temp.as_file().sync_all()?;
    temp.persist(path).map_err(|e| e.error)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_key_is_scheme_host_port_and_path() {
        assert_eq!(
            server_key("wss://NAS.example:5104/").as_deref(),
            Some("wss://nas.example:5104/")
        );
        assert_eq!(
            server_key("ws://127.0.0.1/x?y=1").as_deref(),
            Some("ws://127.0.0.1:80/x")
        );
        assert_eq!(server_key("http://nas/"), None);
    }

    #[test]
    fn remembered_versions_survive_a_reopen_and_the_oldest_goes_first() {
        let dir = tempfile::tempdir().unwrap();
        let mut cache = ProtocolCache::open(dir.path());
        cache.remember("ws://a:1/", 13);
        // Entries learnt earlier than the first one, beyond the cap.
        for i in 0..MAX_ENTRIES {
            cache.entries.insert(
                format!("ws://old{i}:1/"),
                Entry {
                    protocol_version: 3,
                    learnt: i as u64,
                },
            );
        }
        cache.remember("ws://b:1/", 5);
        let again = ProtocolCache::open(dir.path());
        assert_eq!(again.entries.len(), MAX_ENTRIES);
        assert_eq!(again.get("ws://a:1/"), Some(13));
        assert_eq!(again.get("ws://b:1/"), Some(5));
        assert_eq!(again.get("ws://old0:1/"), None);
        assert_eq!(again.get("ws://old1:1/"), None);
        assert_eq!(again.get("ws://old2:1/"), Some(3));
        let mut again = again;
        again.forget("ws://a:1/");
        assert_eq!(ProtocolCache::open(dir.path()).get("ws://a:1/"), None);
        // No temporary file is left behind.
        let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(names.len(), 1);
    }

    #[test]
    fn a_corrupt_or_oversized_file_is_an_empty_cache() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(FILE_NAME);
        for bad in [
            &b"{\"format\": 1, \"servers\": {\"ws://a:1/\": {}}}"[..],
            b"\x00\xffnot json",
            b"{\"format\": 2, \"servers\": {}}",
            b"[]",
        ] {
            std::fs::write(&path, bad).unwrap();
            assert_eq!(ProtocolCache::open(dir.path()).entries.len(), 0);
        }
        std::fs::write(&path, vec![b' '; MAX_FILE as usize + 1]).unwrap();
        let mut cache = ProtocolCache::open(dir.path());
        assert!(cache.entries.is_empty());
        cache.remember("ws://a:1/", 3);
        assert_eq!(ProtocolCache::open(dir.path()).get("ws://a:1/"), Some(3));
    }
}
