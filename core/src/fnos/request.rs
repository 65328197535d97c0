//! Requests: flat JSON objects, `reqid` first and `req` last like the web UI.
//!
//! ```text
//! {"reqid":"6915841c6915841b000000440003","path":"vol1/1000/Documents","req":"file.ls"}
//! ```
//!
//! A [`Request`] is a command name and up to [`MAX_PARAMS`] parameters that
//! borrow the caller's data. [`Request::write`] serializes it once into the
//! transmit buffer; the session then signs those exact bytes.
#![deny(clippy::indexing_slicing)]

use super::reqid::Reqid;
use crate::InsufficientSize;
use crate::json::Value;
use crate::json::write::JsonWriter;

/// Most parameters one request can carry; the front-panel commands need at
/// most three, and the login-like commands the session builds need six.
pub const MAX_PARAMS: usize = 8;

/// The `item` list the web UI asks `appcgi.resmon.gen` for.
pub const RESMON_GEN_ITEMS: [&str; 4] = ["storeSpeed", "netSpeed", "cpuBusy", "memPercent"];

/// One parameter value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Param<'a> {
    /// A string, escaped when written.
    Str(&'a str),
    /// An integer.
    Int(i64),
    /// `true` or `false`.
    Bool(bool),
    /// `null`.
    Null,
    /// An array of strings.
    StrList(&'a [&'a str]),
    /// Any JSON value the caller serialized already (object, array, number),
    /// written verbatim; it must be valid compact JSON.
    Json(&'a str),
}

/// A command and its parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request<'a> {
    command: &'a str,
    params: heapless::Vec<(&'a str, Param<'a>), MAX_PARAMS>,
    members: Option<&'a str>,
    overflow: bool,
}

/// A request could not be written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestError {
    /// More than [`MAX_PARAMS`] parameters were added.
    TooManyParams,
    /// The text given to [`Request::with_object`] is not a JSON object.
    NotAnObject,
    /// The transmit buffer is too small.
    BufferTooSmall {
        /// Bytes needed.
        required: usize,
    },
}

impl From<InsufficientSize> for RequestError {
    fn from(InsufficientSize { required }: InsufficientSize) -> Self {
        RequestError::BufferTooSmall { required }
    }
}

impl<'a> Request<'a> {
    /// A request for `command` without parameters.
    pub fn new(command: &'a str) -> Self {
        Request {
            command,
            params: heapless::Vec::new(),
            members: None,
            overflow: false,
        }
    }

    /// Add a parameter (written in the order added).
    #[must_use]
    pub fn param(mut self, name: &'a str, value: Param<'a>) -> Self {
        if self.params.push((name, value)).is_err() {
            self.overflow = true;
        }
        self
    }

    /// Add every member of a JSON object the caller serialized already
    /// (`{"path":"vol1","size":3}`), spliced in after the other parameters
    /// so the request stays flat. Checked when written.
    #[must_use]
    pub fn with_object(mut self, object_json: &'a str) -> Self {
        self.members = Some(object_json);
        self
    }

    /// The command name (`req`).
    pub fn command(&self) -> &'a str {
        self.command
    }

    /// The parameters in order.
    pub fn params(&self) -> &[(&'a str, Param<'a>)] {
        &self.params
    }

    /// Write `{"reqid":…,params…,"req":…}` into `out` from offset `start`;
    /// returns the end offset. Without a reqid (heartbeat) the field is left
    /// out.
    pub fn write(
        &self,
        reqid: Option<&Reqid>,
        out: &mut [u8],
        start: usize,
    ) -> Result<usize, RequestError> {
        if self.overflow {
            return Err(RequestError::TooManyParams);
        }
        let mut w = JsonWriter::new(out, start);
        w.begin_object();
        if let Some(reqid) = reqid {
            w.key("reqid").string(reqid.as_str());
        }
        for (name, value) in &self.params {
            w.key(name);
            write_param(&mut w, value);
        }
        if let Some(json) = self.members {
            let inner = object_members(json).ok_or(RequestError::NotAnObject)?;
            if !inner.is_empty() {
                w.raw_value(inner);
            }
        }
        w.key("req").string(self.command).end_object();
        Ok(w.finish()?)
    }

    /// `appcgi.sysinfo.getHostName` → `data{hostName, trimVersion, hasUsers}`;
    /// works before login.
    pub fn get_host_name() -> Self {
        Request::new("appcgi.sysinfo.getHostName")
    }

    /// `appcgi.sysinfo.getUptime` → `data.uptime` in seconds.
    pub fn get_uptime() -> Self {
        Request::new("appcgi.sysinfo.getUptime")
    }

    /// `appcgi.resmon.gen {item:[…]}` (admin only); see [`RESMON_GEN_ITEMS`].
    pub fn resmon_gen(items: &'a [&'a str]) -> Self {
        Request::new("appcgi.resmon.gen").param("item", Param::StrList(items))
    }

    /// `appcgi.resmon.mem` → `data.mem{total, used, free, available, …}` (admin only).
    pub fn resmon_mem() -> Self {
        Request::new("appcgi.resmon.mem")
    }

    /// `appcgi.resmon.cpu` (admin only).
    pub fn resmon_cpu() -> Self {
        Request::new("appcgi.resmon.cpu")
    }

    /// `appcgi.resmon.net` → `data.ifs[{name, receive, transmit}]` (admin only).
    pub fn resmon_net() -> Self {
        Request::new("appcgi.resmon.net")
    }

    /// `appcgi.resmon.disk` → `data.disk[{name, temp, standby, busy, read, write}]` (admin only).
    pub fn resmon_disk() -> Self {
        Request::new("appcgi.resmon.disk")
    }

    /// `stor.getUserStorage {spaceInfo, storInfo, quotaInfo}` → `stor[…]`.
    pub fn get_user_storage() -> Self {
        Request::new("stor.getUserStorage")
            .param("spaceInfo", Param::Bool(true))
            .param("storInfo", Param::Bool(true))
            .param("quotaInfo", Param::Bool(true))
    }

    /// `stor.calcSpace`.
    pub fn calc_space() -> Self {
        Request::new("stor.calcSpace")
    }

    /// `file.ls {path}`; without a path the server lists the home view
    /// (entries carry `v`, the volume id). May answer in several frames.
    pub fn file_ls(path: Option<&'a str>) -> Self {
        let r = Request::new("file.ls");
        match path {
            Some(p) => r.param("path", Param::Str(p)),
            None => r,
        }
    }

    /// `file.mkdir {path}`.
    pub fn file_mkdir(path: &'a str) -> Self {
        Request::new("file.mkdir").param("path", Param::Str(path))
    }

    /// `file.rm {files, moveToTrashbin}`.
    pub fn file_rm(files: &'a [&'a str], move_to_trashbin: bool) -> Self {
        Request::new("file.rm")
            .param("files", Param::StrList(files))
            .param("moveToTrashbin", Param::Bool(move_to_trashbin))
    }

    /// `file.mv {files, destination}`.
    pub fn file_mv(files: &'a [&'a str], destination: &'a str) -> Self {
        Request::new("file.mv")
            .param("files", Param::StrList(files))
            .param("destination", Param::Str(destination))
    }

    /// `user.info` → `userInfo{user, uid, admin, groups, …}`.
    pub fn user_info() -> Self {
        Request::new("user.info")
    }

    /// `user.logout`.
    pub fn user_logout() -> Self {
        Request::new("user.logout")
    }
}

/// The text between the braces of a JSON object, trimmed; `None` if `json`
/// is not one object.
fn object_members(json: &str) -> Option<&[u8]> {
    let object = Value::parse(json.as_bytes()).ok()?.as_object()?;
    let raw = object.raw();
    let inner = raw.get(1..raw.len().checked_sub(1)?)?;
    Some(inner.trim_ascii())
}

pub(crate) fn write_param(w: &mut JsonWriter<'_>, value: &Param<'_>) {
    match *value {
        Param::Str(s) => {
            w.string(s);
        }
        Param::Int(n) => {
            w.i64(n);
        }
        Param::Bool(b) => {
            w.bool(b);
        }
        Param::Null => {
            w.null();
        }
        Param::Json(json) => {
            w.raw_value(json.as_bytes());
        }
        Param::StrList(items) => {
            w.begin_array();
            for item in items {
                w.string(item);
            }
            w.end_array();
        }
    }
}

#[cfg(test)]
// Tests index fixtures they built themselves.
#[allow(clippy::indexing_slicing)]
mod tests {
    use super::*;
    use crate::fnos::reqid::BackId;

    fn written(r: &Request<'_>) -> heapless::String<256> {
        let reqid = Reqid::new(0x6915841c, &BackId::parse("6915841b00000044").unwrap(), 3);
        let mut buf = [0u8; 256];
        let n = r.write(Some(&reqid), &mut buf, 0).unwrap();
        heapless::String::try_from(core::str::from_utf8(&buf[..n]).unwrap()).unwrap()
    }

    #[test]
    fn reqid_comes_first_and_req_last_like_the_web_ui() {
        assert_eq!(
            written(&Request::file_ls(Some("vol1/1000/Documents"))),
            r#"{"reqid":"6915841c6915841b000000440003","path":"vol1/1000/Documents","req":"file.ls"}"#
        );
    }

    #[test]
    fn list_and_boolean_parameters_are_compact_json() {
        assert_eq!(
            written(&Request::file_rm(&["vol1/1000/a", "vol1/1000/b"], true)),
            r#"{"reqid":"6915841c6915841b000000440003","files":["vol1/1000/a","vol1/1000/b"],"moveToTrashbin":true,"req":"file.rm"}"#
        );
        assert_eq!(
            written(&Request::resmon_gen(&RESMON_GEN_ITEMS)),
            r#"{"reqid":"6915841c6915841b000000440003","item":["storeSpeed","netSpeed","cpuBusy","memPercent"],"req":"appcgi.resmon.gen"}"#
        );
    }

    #[test]
    fn caller_serialized_json_parameters_are_written_verbatim() {
        let r = Request::new("appcgi.x")
            .param("data", Param::Json(r#"{"a":[1,2]}"#))
            .param("n", Param::Int(-5));
        assert_eq!(
            written(&r),
            r#"{"reqid":"6915841c6915841b000000440003","data":{"a":[1,2]},"n":-5,"req":"appcgi.x"}"#
        );
    }

    #[test]
    fn caller_serialized_object_members_are_spliced_in_flat() {
        let r = Request::new("file.checkUpload")
            .param("path", Param::Str("vol1/1000"))
            .with_object(r#" { "size": 3, "overwrite": 1 } "#);
        assert_eq!(
            written(&r),
            r#"{"reqid":"6915841c6915841b000000440003","path":"vol1/1000","size": 3, "overwrite": 1,"req":"file.checkUpload"}"#
        );
        assert_eq!(
            written(&Request::new("x").with_object("{}")),
            r#"{"reqid":"6915841c6915841b000000440003","req":"x"}"#
        );
        let mut buf = [0u8; 64];
        assert_eq!(
            Request::new("x")
                .with_object("[1]")
                .write(None, &mut buf, 0),
            Err(RequestError::NotAnObject)
        );
    }

    #[test]
    fn heartbeat_has_no_reqid() {
        let mut buf = [0u8; 32];
        let n = Request::new("ping").write(None, &mut buf, 0).unwrap();
        assert_eq!(&buf[..n], br#"{"req":"ping"}"#);
    }

    #[test]
    fn more_params_than_capacity_is_an_error_not_a_truncation() {
        let mut r = Request::new("x");
        for _ in 0..=MAX_PARAMS {
            r = r.param("a", Param::Null);
        }
        let mut buf = [0u8; 256];
        assert_eq!(r.write(None, &mut buf, 0), Err(RequestError::TooManyParams));
    }
}
