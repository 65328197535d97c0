//! Received messages, read in place from the receive buffer.
//!
//! Every text message is one of:
//!
//! - `{"res":"pong"}` — the heartbeat answer ([`Message::Pong`]);
//! - a push, recognised by its `sysNotify` member ([`Message::Push`]), even
//!   when it carries the `reqid` of the command that started a task;
//! - a reply carrying `reqid` ([`Message::Reply`]) in one of three shapes:
//!   core handlers put the payload at the top level beside `result`;
//!   `appcgi.*` put it in `data` (`appcgi.dockermgr.*` in `rsp`); failures
//!   carry `errno` and sometimes `errmsg` or `msg`. A reply is final when it
//!   has `result` or `errno` (`errno: 0` is success); otherwise, or with
//!   `result:"doing"` (a long command's progress), it is one frame of a
//!   multi-frame answer;
//! - anything else ([`Message::Other`]).
#![deny(clippy::indexing_slicing)]

use super::errno::Errno;
use super::reqid::Reqid;
use crate::json::{JsonError, JsonStr, Object, Value};

/// One received message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Message<'a> {
    /// `{"res":"pong"}`.
    Pong,
    /// A `sysNotify` push.
    Push(Push<'a>),
    /// An answer to a request.
    Reply(Reply<'a>),
    /// A JSON object that is none of the above.
    Other(Object<'a>),
}

/// Why a received message could not be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResponseError {
    /// Not valid JSON.
    Json(JsonError),
    /// Valid JSON, but not an object.
    NotAnObject,
    /// A binary message: fnOS speaks text.
    Binary,
    /// A piece of a message too large for the receive buffer.
    Fragment,
}

impl From<JsonError> for ResponseError {
    fn from(e: JsonError) -> Self {
        ResponseError::Json(e)
    }
}

impl<'a> Message<'a> {
    /// Classify one received text message.
    pub fn parse(payload: &'a [u8]) -> Result<Message<'a>, ResponseError> {
        let body = Value::parse(payload)?
            .as_object()
            .ok_or(ResponseError::NotAnObject)?;
        Ok(Self::classify(body))
    }

    /// [`parse`](Self::parse) again, without checking the JSON: for a
    /// payload `parse` already accepted.
    pub(crate) fn parse_trusted(payload: &'a [u8]) -> Result<Message<'a>, ResponseError> {
        let body = Value::trusted(payload)
            .as_object()
            .ok_or(ResponseError::NotAnObject)?;
        Ok(Self::classify(body))
    }

    /// Sort a message by its members, read in one pass over the object.
    fn classify(body: Object<'a>) -> Message<'a> {
        /// The members that decide, in the order of `found`.
        const KEYS: [&str; 5] = ["sysNotify", "reqid", "res", "errno", "result"];
        let mut found: [Option<Value<'a>>; 5] = [None; 5];
        for (key, value) in body.iter() {
            // Names compare decoded, as `Object::get` does; only a name
            // with an escape (none of these has one) needs decoding.
            let escaped = key.raw().contains(&b'\\');
            let hit = KEYS
                .iter()
                .position(|k| key.raw() == k.as_bytes() || (escaped && key.eq_str(k)));
            // The first of each member counts, as with `Object::get`.
            if let Some(slot) = hit.and_then(|i| found.get_mut(i)) {
                slot.get_or_insert(value);
            }
        }
        let [notify, reqid, res, errno, result] = found;
        if let Some(kind) = notify.and_then(|v: Value<'a>| v.as_str()) {
            return Message::Push(Push::from_object(kind, body));
        }
        if let Some(reqid) = reqid.and_then(|v| v.as_str()) {
            return Message::Reply(Reply::new(reqid, body, errno, result));
        }
        if res
            .and_then(|v| v.as_str())
            .is_some_and(|s| s.eq_str("pong"))
        {
            return Message::Pong;
        }
        Message::Other(body)
    }
}

/// Outcome of a reply frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// A frame of a multi-frame answer; more follow.
    Partial,
    /// The final frame, successful (`result:"succ"` or `errno:0`).
    Success,
    /// The final frame, failed; `None` when `result` is not `succ` but no
    /// `errno` was given.
    Failure(Option<Errno>),
}

/// An answer frame to a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reply<'a> {
    reqid: JsonStr<'a>,
    status: Status,
    body: Object<'a>,
}

impl<'a> Reply<'a> {
    fn new(
        reqid: JsonStr<'a>,
        body: Object<'a>,
        errno: Option<Value<'a>>,
        result: Option<Value<'a>>,
    ) -> Self {
        let errno = errno.map(|v| {
            v.as_u64().map_or(Errno::Other(u32::MAX), |n| {
                Errno::from_code(u32::try_from(n).unwrap_or(u32::MAX))
            })
        });
        let status = match (errno, result) {
            (Some(Errno::Other(0)), _) => Status::Success,
            (Some(errno), _) => Status::Failure(Some(errno)),
            (None, Some(r)) if r.as_str().is_some_and(|s| s.eq_str("succ")) => Status::Success,
            // Long commands stream `result:"doing"` frames before the final one.
            (None, Some(r)) if r.as_str().is_some_and(|s| s.eq_str("doing")) => Status::Partial,
            (None, Some(_)) => Status::Failure(None),
            (None, None) => Status::Partial,
        };
        Reply {
            reqid,
            status,
            body,
        }
    }

    /// The reqid as received.
    pub fn reqid_text(&self) -> JsonStr<'a> {
        self.reqid
    }

    /// The reqid, if it has the 28-character form this client sends.
    pub fn reqid(&self) -> Option<Reqid> {
        Reqid::from_bytes(self.reqid.raw())
    }

    /// Partial, success or failure.
    pub fn status(&self) -> Status {
        self.status
    }

    /// `true` for the last frame of an answer.
    pub fn is_final(&self) -> bool {
        self.status != Status::Partial
    }

    /// The `errno`, if the reply failed with one.
    pub fn errno(&self) -> Option<Errno> {
        match self.status {
            Status::Failure(e) => e,
            _ => None,
        }
    }

    /// The whole reply object (shape 1 payloads sit at its top level).
    pub fn body(&self) -> Object<'a> {
        self.body
    }

    /// A top-level member.
    pub fn get(&self, key: &str) -> Option<Value<'a>> {
        self.body.get(key)
    }

    /// The payload of `appcgi.*` replies: `data`, or `rsp` for
    /// `appcgi.dockermgr.*`.
    pub fn data(&self) -> Option<Value<'a>> {
        self.body.get("data").or_else(|| self.body.get("rsp"))
    }

    /// The server's failure text (`errmsg` or `msg`), if any.
    pub fn error_message(&self) -> Option<JsonStr<'a>> {
        self.body
            .get("errmsg")
            .or_else(|| self.body.get("msg"))
            .and_then(|v| v.as_str())
    }
}

/// A server push (`sysNotify`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Push<'a> {
    /// Another login took this session over.
    Kicked,
    /// The login token expired; log in again.
    TokenExpired,
    /// The user's privilege changed (`privilege` as sent, usually a string).
    PrivilegeChanged {
        /// The new privilege value.
        privilege: Option<Value<'a>>,
    },
    /// Storage was added, removed or changed.
    StorageChanged,
    /// A long command became a task.
    TaskId {
        /// The task id as sent (number or string).
        task_id: Option<Value<'a>>,
        /// The reqid of the command that started the task.
        reqid: Option<JsonStr<'a>>,
        /// The whole push.
        body: Object<'a>,
    },
    /// Progress of a task.
    TaskInfo {
        /// The task id as sent, if present.
        task_id: Option<Value<'a>>,
        /// `percent` as sent.
        percent: Option<Value<'a>>,
        /// The whole push.
        body: Object<'a>,
    },
    /// Any other `sysNotify` kind.
    Other {
        /// The `sysNotify` value.
        kind: JsonStr<'a>,
        /// The whole push.
        body: Object<'a>,
    },
}

impl<'a> Push<'a> {
    fn from_object(kind: JsonStr<'a>, body: Object<'a>) -> Self {
        let task_id = body.get("taskId");
        match () {
            _ if kind.eq_str("kicked") => Push::Kicked,
            _ if kind.eq_str("tokenExpired") => Push::TokenExpired,
            _ if kind.eq_str("privilegeChanged") => Push::PrivilegeChanged {
                privilege: body.get("privilege"),
            },
            _ if kind.eq_str("storageChanged") => Push::StorageChanged,
            _ if kind.eq_str("taskId") => Push::TaskId {
                task_id,
                reqid: body.get("reqid").and_then(|v| v.as_str()),
                body,
            },
            _ if kind.eq_str("taskInfo") => Push::TaskInfo {
                task_id,
                percent: body.get("percent"),
                body,
            },
            _ => Push::Other { kind, body },
        }
    }
}

#[cfg(test)]
// Tests index fixtures they built themselves.
#[allow(clippy::indexing_slicing)]
mod tests {
    use super::*;

    fn reply(text: &str) -> Reply<'_> {
        match Message::parse(text.as_bytes()).unwrap() {
            Message::Reply(r) => r,
            other => panic!("not a reply: {other:?}"),
        }
    }

    #[test]
    fn core_handler_reply_has_payload_at_top_level() {
        let r = reply(
            r#"{"stor":[{"id":1}],"uid":1002,"result":"succ","reqid":"6915841c6915841b000000440003"}"#,
        );
        assert_eq!(r.status(), Status::Success);
        assert_eq!(r.get("uid").unwrap().as_u64(), Some(1002));
        assert_eq!(r.reqid().unwrap().as_str(), "6915841c6915841b000000440003");
    }

    #[test]
    fn appcgi_reply_has_payload_in_data_or_rsp() {
        let r = reply(
            r#"{"data":{"hostName":"nas"},"reqid":"x","result":"succ","rev":"0.1","req":"appcgi.sysinfo.getHostName"}"#,
        );
        assert!(
            r.data()
                .unwrap()
                .get("hostName")
                .unwrap()
                .as_str()
                .unwrap()
                .eq_str("nas")
        );
        let r = reply(r#"{"rsp":{"n":1},"reqid":"x","result":"succ"}"#);
        assert_eq!(r.data().unwrap().get("n").unwrap().as_u64(), Some(1));
        assert_eq!(r.reqid(), None, "short reqids are kept as text only");
    }

    #[test]
    fn failure_carries_a_typed_errno_and_message() {
        let r = reply(r#"{"errno":4352,"result":"fail","reqid":"x","errmsg":"admin only"}"#);
        assert_eq!(r.status(), Status::Failure(Some(Errno::PermissionDenied)));
        assert!(r.error_message().unwrap().eq_str("admin only"));
        assert_eq!(
            reply(r#"{"result":"fail","reqid":"x"}"#).status(),
            Status::Failure(None)
        );
    }

    #[test]
    fn a_frame_is_final_only_with_result_or_errno_and_errno_zero_is_success() {
        assert_eq!(
            reply(r#"{"files":[],"reqid":"x"}"#).status(),
            Status::Partial
        );
        assert_eq!(
            reply(r#"{"files":[],"reqid":"x","errno":0}"#).status(),
            Status::Success
        );
    }

    #[test]
    fn pushes_are_recognised_by_sys_notify_even_with_a_reqid() {
        assert_eq!(
            Message::parse(br#"{"sysNotify":"kicked"}"#).unwrap(),
            Message::Push(Push::Kicked)
        );
        assert_eq!(
            Message::parse(br#"{"sysNotify":"tokenExpired"}"#).unwrap(),
            Message::Push(Push::TokenExpired)
        );
        assert_eq!(
            Message::parse(br#"{"sysNotify":"storageChanged"}"#).unwrap(),
            Message::Push(Push::StorageChanged)
        );
        match Message::parse(br#"{"sysNotify":"privilegeChanged","privilege":"1"}"#).unwrap() {
            Message::Push(Push::PrivilegeChanged { privilege }) => {
                assert!(privilege.unwrap().as_str().unwrap().eq_str("1"))
            }
            other => panic!("{other:?}"),
        }
        match Message::parse(br#"{"sysNotify":"taskId","taskId":17,"reqid":"abc"}"#).unwrap() {
            Message::Push(Push::TaskId { task_id, reqid, .. }) => {
                assert_eq!(task_id.unwrap().as_u64(), Some(17));
                assert!(reqid.unwrap().eq_str("abc"));
            }
            other => panic!("{other:?}"),
        }
        match Message::parse(br#"{"sysNotify":"taskInfo","taskId":17,"percent":42}"#).unwrap() {
            Message::Push(Push::TaskInfo { percent, .. }) => {
                assert_eq!(percent.unwrap().as_u64(), Some(42))
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn pong_is_recognised() {
        assert_eq!(Message::parse(br#"{"res":"pong"}"#).unwrap(), Message::Pong);
    }

    #[test]
    fn non_objects_and_bad_json_are_errors() {
        assert_eq!(Message::parse(b"[1]"), Err(ResponseError::NotAnObject));
        assert!(matches!(Message::parse(b"{"), Err(ResponseError::Json(_))));
    }
}
