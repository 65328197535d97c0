//! Typed helpers for the directory and document actions.
//!
//! Each writes one authenticated request; the answer arrives as
//! [`ConnectionEvent::Reply`](super::ConnectionEvent::Reply) and its body is read from
//! the `response` of a [`ConnectionEvent`](super::ConnectionEvent), through the typed views
//! below ([`Listing`], [`task_id`], [`LoginInfo`], [`ServerInfo`]). The
//! root folder is `None` (sent as `null`; the public document's `"root"`
//! answers 404).
#![deny(clippy::indexing_slicing)]

use super::envelope::Response;
use super::hex::unhex32;
use super::session::{Error, Sent, Session};
use crate::json::{JsonStr, Value};
use crate::time::Instant;

impl<const Q: usize> Session<'_, Q> {
    /// `list_directory {folder_id}`.
    pub fn list_directory(
        &mut self,
        now: Instant,
        folder_id: Option<&str>,
        buf: &mut [u8],
    ) -> Result<Sent, Error> {
        self.send_op(now, buf, "list_directory", |w| {
            w.field_opt_str("folder_id", folder_id);
        })
    }

    /// `create_directory {parent_id, name[, exists_ok]}`.
    pub fn create_directory(
        &mut self,
        now: Instant,
        parent_id: Option<&str>,
        name: &str,
        exists_ok: Option<bool>,
        buf: &mut [u8],
    ) -> Result<Sent, Error> {
        self.send_op(now, buf, "create_directory", |w| {
            w.field_opt_str("parent_id", parent_id);
            w.field_str("name", name);
            if let Some(ok) = exists_ok {
                w.field_bool("exists_ok", ok);
            }
        })
    }

    /// `get_directory_info {directory_id}`.
    pub fn get_directory_info(
        &mut self,
        now: Instant,
        directory_id: &str,
        buf: &mut [u8],
    ) -> Result<Sent, Error> {
        self.send_op(now, buf, "get_directory_info", |w| {
            w.field_str("directory_id", directory_id);
        })
    }

    /// `rename_directory {folder_id, new_name}`.
    pub fn rename_directory(
        &mut self,
        now: Instant,
        folder_id: &str,
        new_name: &str,
        buf: &mut [u8],
    ) -> Result<Sent, Error> {
        self.send_op(now, buf, "rename_directory", |w| {
            w.field_str("folder_id", folder_id);
            w.field_str("new_name", new_name);
        })
    }

    /// `move_directory {folder_id, target_folder_id}`.
    pub fn move_directory(
        &mut self,
        now: Instant,
        folder_id: &str,
        target: Option<&str>,
        buf: &mut [u8],
    ) -> Result<Sent, Error> {
        self.send_op(now, buf, "move_directory", |w| {
            w.field_str("folder_id", folder_id);
            w.field_opt_str("target_folder_id", target);
        })
    }

    /// `delete_directory {folder_id}`.
    pub fn delete_directory(
        &mut self,
        now: Instant,
        folder_id: &str,
        buf: &mut [u8],
    ) -> Result<Sent, Error> {
        self.send_op(now, buf, "delete_directory", |w| {
            w.field_str("folder_id", folder_id);
        })
    }

    /// `create_document {title, folder_id}` → an upload task (`task_data.task_id`).
    pub fn create_document(
        &mut self,
        now: Instant,
        folder_id: Option<&str>,
        title: &str,
        buf: &mut [u8],
    ) -> Result<Sent, Error> {
        self.send_op(now, buf, "create_document", |w| {
            w.field_str("title", title);
            w.field_opt_str("folder_id", folder_id);
        })
    }

    /// `upload_document {document_id}` → an upload task for a new revision.
    pub fn upload_document(
        &mut self,
        now: Instant,
        document_id: &str,
        buf: &mut [u8],
    ) -> Result<Sent, Error> {
        self.send_op(now, buf, "upload_document", |w| {
            w.field_str("document_id", document_id);
        })
    }

    /// `get_document {document_id}` → a download task (`task_data.task_id`).
    pub fn get_document(
        &mut self,
        now: Instant,
        document_id: &str,
        buf: &mut [u8],
    ) -> Result<Sent, Error> {
        self.send_op(now, buf, "get_document", |w| {
            w.field_str("document_id", document_id);
        })
    }

    /// `get_document_info {document_id}`.
    pub fn get_document_info(
        &mut self,
        now: Instant,
        document_id: &str,
        buf: &mut [u8],
    ) -> Result<Sent, Error> {
        self.send_op(now, buf, "get_document_info", |w| {
            w.field_str("document_id", document_id);
        })
    }

    /// `rename_document {document_id, new_title}`.
    pub fn rename_document(
        &mut self,
        now: Instant,
        document_id: &str,
        new_title: &str,
        buf: &mut [u8],
    ) -> Result<Sent, Error> {
        self.send_op(now, buf, "rename_document", |w| {
            w.field_str("document_id", document_id);
            w.field_str("new_title", new_title);
        })
    }

    /// `move_document {document_id, target_folder_id}`.
    pub fn move_document(
        &mut self,
        now: Instant,
        document_id: &str,
        target: Option<&str>,
        buf: &mut [u8],
    ) -> Result<Sent, Error> {
        self.send_op(now, buf, "move_document", |w| {
            w.field_str("document_id", document_id);
            w.field_opt_str("target_folder_id", target);
        })
    }

    /// `delete_document {document_id}`.
    pub fn delete_document(
        &mut self,
        now: Instant,
        document_id: &str,
        buf: &mut [u8],
    ) -> Result<Sent, Error> {
        self.send_op(now, buf, "delete_document", |w| {
            w.field_str("document_id", document_id);
        })
    }

    /// `lockdown {status}` (needs the `apply_lockdown` permission).
    pub fn set_lockdown(&mut self, now: Instant, on: bool, buf: &mut [u8]) -> Result<Sent, Error> {
        self.send_op(now, buf, "lockdown", |w| {
            w.field_bool("status", on);
        })
    }
}

/// `data.task_data.task_id` of a `create_document`, `upload_document` or
/// `get_document` answer: the credential for `upload_file`/`download_file`.
pub fn task_id<'a>(r: &Response<'a>) -> Option<JsonStr<'a>> {
    r.data().get("task_data")?.get("task_id")?.as_str()
}

/// `data.document_id` of a `create_document` answer: given from
/// protocol 5 on; earlier ones give none (find the new document with
/// [`new_document`]).
pub fn document_id<'a>(r: &Response<'a>) -> Option<JsonStr<'a>> {
    r.data().get("document_id")?.as_str()
}

/// A `list_directory` answer.
#[derive(Debug, Clone, Copy)]
pub struct Listing<'a> {
    data: Value<'a>,
}

/// One document of a [`Listing`].
#[derive(Debug, Clone, Copy)]
pub struct DocumentEntry<'a> {
    /// Document id.
    pub id: JsonStr<'a>,
    /// Title.
    pub title: JsonStr<'a>,
    /// Size in bytes, when known.
    pub size: Option<u64>,
    /// SHA-256 of the content (`null` for documents without a hashed revision).
    pub sha256: Option<[u8; 32]>,
    /// Creation time (epoch seconds, server clock).
    pub created_time: Option<f64>,
    /// Last modification time.
    pub last_modified: Option<f64>,
}

/// One folder of a [`Listing`].
#[derive(Debug, Clone, Copy)]
pub struct FolderEntry<'a> {
    /// Folder id.
    pub id: JsonStr<'a>,
    /// Name.
    pub name: JsonStr<'a>,
    /// Creation time (epoch seconds, server clock).
    pub created_time: Option<f64>,
}

impl<'a> Listing<'a> {
    /// View the answer's `data`.
    pub fn new(r: &Response<'a>) -> Self {
        Listing { data: r.data() }
    }

    /// `parent_id` (`None` for the root).
    pub fn parent_id(&self) -> Option<JsonStr<'a>> {
        self.data.get("parent_id")?.as_str()
    }

    /// The documents; entries without `id` or `title` are skipped.
    pub fn documents(&self) -> impl Iterator<Item = DocumentEntry<'a>> + 'a {
        let list = self.data.get("documents").unwrap_or(Value::EMPTY_OBJECT);
        list.items().filter_map(|d| {
            Some(DocumentEntry {
                id: d.get("id")?.as_str()?,
                title: d.get("title")?.as_str()?,
                size: d.get("size").and_then(|v| v.as_u64()),
                sha256: d
                    .get("sha256")
                    .and_then(|v| v.as_str())
                    .and_then(|h| unhex32(h.raw())),
                created_time: d.get("created_time").and_then(|v| v.as_f64()),
                last_modified: d.get("last_modified").and_then(|v| v.as_f64()),
            })
        })
    }

    /// The folders; entries without `id` or `name` are skipped.
    pub fn folders(&self) -> impl Iterator<Item = FolderEntry<'a>> + 'a {
        let list = self.data.get("folders").unwrap_or(Value::EMPTY_OBJECT);
        list.items().filter_map(|f| {
            Some(FolderEntry {
                id: f.get("id")?.as_str()?,
                name: f.get("name")?.as_str()?,
                created_time: f.get("created_time").and_then(|v| v.as_f64()),
            })
        })
    }
}

impl<'a> Listing<'a> {
    /// The ids of the documents titled `title` (decoded comparison).
    pub fn titled(&self, title: &'a str) -> impl Iterator<Item = JsonStr<'a>> + 'a {
        self.documents()
            .filter(move |d| d.title.eq_str(title))
            .map(|d| d.id)
    }
}

/// Which entry of `listing` is the document an upload's `create_document`
/// made, at protocols 3 and 4 (whose answer gives no `document_id`): list
/// the folder before `create_document` and again after the upload; the
/// new document is the one entry titled `title` that `existed` says was
/// not there before. None, or several (another client uploaded the same
/// title meanwhile), is `None`: guessing could delete theirs. (A document
/// without content is not listed at these protocols.)
pub fn new_document<'a>(
    listing: &Listing<'a>,
    title: &'a str,
    existed: impl Fn(JsonStr<'a>) -> bool,
) -> Option<JsonStr<'a>> {
    let mut new = listing.titled(title).filter(|id| !existed(*id));
    match (new.next(), new.next()) {
        (Some(id), None) => Some(id),
        _ => None,
    }
}

/// A successful `login` answer (after [`Event::LoggedIn`](super::Event::LoggedIn)).
#[derive(Debug, Clone, Copy)]
pub struct LoginInfo<'a> {
    data: Value<'a>,
}

impl<'a> LoginInfo<'a> {
    /// View the answer's `data`.
    pub fn new(r: &Response<'a>) -> Self {
        LoginInfo { data: r.data() }
    }

    /// Display name.
    pub fn nickname(&self) -> Option<JsonStr<'a>> {
        self.data.get("nickname")?.as_str()
    }

    /// Token expiry (float epoch seconds, server clock).
    pub fn exp(&self) -> Option<f64> {
        self.data.get("exp")?.as_f64_compact()
    }

    /// Permission names.
    pub fn permissions(&self) -> impl Iterator<Item = JsonStr<'a>> + 'a {
        strings(self.data.get("permissions"))
    }

    /// Group names.
    pub fn groups(&self) -> impl Iterator<Item = JsonStr<'a>> + 'a {
        strings(self.data.get("groups"))
    }

    /// Whether `permission` is granted.
    pub fn has_permission(&self, permission: &str) -> bool {
        self.permissions().any(|p| p.eq_str(permission))
    }
}

fn strings<'a>(list: Option<Value<'a>>) -> impl Iterator<Item = JsonStr<'a>> + 'a {
    list.unwrap_or(Value::EMPTY_OBJECT)
        .items()
        .filter_map(|v| v.as_str())
}

/// The server information answer (the opening sequence's, or one asked
/// for with [`Connection::ask_server`](crate::connection::Connection::ask_server)):
/// carried by [`ConnectionEvent::ServerInfo`](super::ConnectionEvent::ServerInfo).
#[derive(Debug, Clone, Copy)]
pub struct ServerInfo<'a> {
    data: Value<'a>,
}

impl<'a> ServerInfo<'a> {
    /// View the answer's `data`.
    pub fn new(r: &Response<'a>) -> Self {
        ServerInfo { data: r.data() }
    }

    /// `server_name`.
    pub fn server_name(&self) -> Option<JsonStr<'a>> {
        self.data.get("server_name")?.as_str()
    }

    /// `version` (e.g. `0.1.0.250919_alpha`).
    pub fn version(&self) -> Option<JsonStr<'a>> {
        self.data.get("version")?.as_str()
    }

    /// `protocol_version` (the session speaks [`PROTOCOLS`](super::PROTOCOLS)).
    pub fn protocol_version(&self) -> Option<u32> {
        u32::try_from(self.data.get("protocol_version")?.as_u64()?).ok()
    }

    /// `lockdown`: whether only administrators are served (absent: off).
    pub fn lockdown(&self) -> bool {
        self.data
            .get("lockdown")
            .and_then(|l| l.as_bool())
            .unwrap_or(false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn listing(body: &[u8]) -> Response<'_> {
        Response::parse(body).unwrap()
    }

    const BEFORE: &[&str] = &["d1"];

    fn existed(id: JsonStr<'_>) -> bool {
        BEFORE.iter().any(|b| id.eq_str(b))
    }

    #[test]
    fn the_new_document_is_the_one_entry_with_its_title_not_listed_before() {
        let r = listing(
            br#"{"code":200,"message":"","data":{"documents":[
            {"id":"d1","title":"a.bin"},{"id":"d2","title":"b.bin"},{"id":"d3","title":"a.bin"}]}}"#,
        );
        let found = new_document(&Listing::new(&r), "a.bin", existed);
        assert!(found.is_some_and(|id| id.eq_str("d3")));
    }

    #[test]
    fn two_new_documents_with_the_title_name_none() {
        let r = listing(
            br#"{"code":200,"message":"","data":{"documents":[
            {"id":"d2","title":"a.bin"},{"id":"d3","title":"a.bin"}]}}"#,
        );
        assert!(new_document(&Listing::new(&r), "a.bin", existed).is_none());
    }

    #[test]
    fn no_new_document_with_the_title_names_none() {
        let r = listing(
            br#"{"code":200,"message":"","data":{"documents":[{"id":"d1","title":"a.bin"}]}}"#,
        );
        assert!(new_document(&Listing::new(&r), "a.bin", existed).is_none());
    }

    #[test]
    fn a_protocol_5_create_document_names_its_document_and_its_task() {
        let r = listing(
            br#"{"code":200,"message":"","data":{"document_id":"d9","task_data":{"task_id":"t1"}}}"#,
        );
        assert!(document_id(&r).is_some_and(|id| id.eq_str("d9")));
        assert!(task_id(&r).is_some_and(|id| id.eq_str("t1")));
    }

    #[test]
    fn titles_compare_decoded() {
        let r = listing(
            br#"{"code":200,"message":"","data":{"documents":[{"id":"d4","title":"\u00e9.bin"}]}}"#,
        );
        let found = new_document(&Listing::new(&r), "\u{e9}.bin", existed);
        assert!(found.is_some_and(|id| id.eq_str("d4")));
    }
}
