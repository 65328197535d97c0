//! Typed helpers for the directory and document actions.
//!
//! Each writes one authenticated request; the answer arrives as
//! [`Event::Reply`](super::Event::Reply) and its body is read with
//! [`Session::response`](super::Session::response). The root folder is
//! `None` (sent as `null`; the public document's `"root"` answers 404).

use super::session::{Error, Sent, Session};
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
            w.field_opt_str("folder_id", folder_id)
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
            w.field_str("directory_id", directory_id)
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
            w.field_str("folder_id", folder_id)
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
            w.field_str("document_id", document_id)
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
            w.field_str("document_id", document_id)
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
            w.field_str("document_id", document_id)
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
            w.field_str("document_id", document_id)
        })
    }

    /// `lockdown {status}` (needs the `apply_lockdown` permission).
    pub fn set_lockdown(&mut self, now: Instant, on: bool, buf: &mut [u8]) -> Result<Sent, Error> {
        self.send_op(now, buf, "lockdown", |w| w.field_bool("status", on))
    }
}
