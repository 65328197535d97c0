//! The CFMS envelope: requests out, responses and server messages in.
//!
//! Two levels, as in smoltcp's `wire` module: [`Incoming::parse`] checks a
//! received message once and classifies it; the views it returns
//! ([`Response`], [`ServerAction`]) then answer field questions without
//! failing. Requests are emitted by `emit_request` straight into the
//! caller's transmit buffer.
//!
//! What arrives on a protocol 3–5 connection:
//!
//! - a text JSON response `{"code","data","message"[,"timestamp"][,"protocol_version"]}`;
//! - a text JSON server action during transfers: `{"action":"transfer_file"|"file_chunk"|"aes_key","data":{..}}`;
//! - plain text `ready`, `ready N` or `stop` during an upload;
//! - the only unsolicited message: a **binary** frame holding
//!   `{"action": "lockdown", "status": true|false}` (no `code`), which may
//!   arrive between a request and its response.
#![deny(clippy::indexing_slicing)]

use super::status::Status;
use crate::json::write::JsonWriter;
use crate::json::{self, InsufficientSize, JsonError, JsonStr, Value};

/// The kind of a WebSocket data message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MessageKind {
    /// A text message (UTF-8).
    Text,
    /// A binary message.
    Binary,
}

/// Why a received message is not one a protocol 3–5 server sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EnvelopeError {
    /// The text is neither JSON nor `ready`/`ready N`/`stop`.
    NotJson(JsonError),
    /// JSON, but not an object.
    NotAnObject,
    /// An object with neither `code` nor `action`.
    NoCodeOrAction,
    /// `code` is not an integer.
    BadCode,
    /// A binary message that is not a lockdown push. Protocol 13 and later
    /// frame every message as `u32 frame_id | u8 type | JSON`; a client for
    /// protocols 3–5 cannot follow such a server.
    UnexpectedBinary,
}

impl core::fmt::Display for EnvelopeError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            EnvelopeError::NotJson(e) => write!(f, "message is not JSON: {e}"),
            EnvelopeError::NotAnObject => f.write_str("message is JSON but not an object"),
            EnvelopeError::NoCodeOrAction => f.write_str("message has neither `code` nor `action`"),
            EnvelopeError::BadCode => f.write_str("`code` is not an integer"),
            EnvelopeError::UnexpectedBinary => f.write_str(
                "binary message that is not a lockdown push (a framed protocol ≥ 13 server?)",
            ),
        }
    }
}

/// One classified received message.
#[derive(Debug, Clone, Copy)]
pub enum Incoming<'a> {
    /// A response carrying `code`.
    Response(Response<'a>),
    /// A server action (`transfer_file`, `file_chunk`, `aes_key`, …).
    Action(ServerAction<'a>),
    /// Plain text `ready` (protocol 3) or `ready N` (protocol ≥ 4: N is the
    /// short-frame threshold).
    Ready {
        /// The threshold N, when given.
        threshold: Option<u32>,
    },
    /// Plain text `stop`: the server wants no file bytes (size 0).
    Stop,
    /// The binary lockdown push.
    Lockdown {
        /// Whether lockdown is now on.
        on: bool,
    },
}

impl<'a> Incoming<'a> {
    /// Check and classify a whole received message.
    pub fn parse(kind: MessageKind, payload: &'a [u8]) -> Result<Incoming<'a>, EnvelopeError> {
        if kind == MessageKind::Text {
            match payload {
                b"ready" => return Ok(Incoming::Ready { threshold: None }),
                b"stop" => return Ok(Incoming::Stop),
                _ => {}
            }
            if let Some(threshold) = payload
                .strip_prefix(b"ready ")
                .and_then(|n| core::str::from_utf8(n).ok())
                .and_then(|s| s.parse().ok())
            {
                return Ok(Incoming::Ready {
                    threshold: Some(threshold),
                });
            }
        }
        let root = Value::parse(payload).map_err(|e| match kind {
            MessageKind::Text => EnvelopeError::NotJson(e),
            MessageKind::Binary => EnvelopeError::UnexpectedBinary,
        })?;
        if root.kind() != json::Kind::Object {
            return Err(match kind {
                MessageKind::Text => EnvelopeError::NotAnObject,
                MessageKind::Binary => EnvelopeError::UnexpectedBinary,
            });
        }
        if kind == MessageKind::Binary {
            let is_lockdown = root
                .get("action")
                .and_then(|a| a.as_str())
                .is_some_and(|a| a.eq_str("lockdown"));
            let on = root.get("status").and_then(|s| s.as_bool());
            return match (is_lockdown, on) {
                (true, Some(on)) => Ok(Incoming::Lockdown { on }),
                _ => Err(EnvelopeError::UnexpectedBinary),
            };
        }
        if let Some(code) = root.get("code") {
            let code = code.as_i64().ok_or(EnvelopeError::BadCode)?;
            return Ok(Incoming::Response(Response { root, code }));
        }
        match root.get("action").and_then(|a| a.as_str()) {
            Some(action) => Ok(Incoming::Action(ServerAction { root, action })),
            None => Err(EnvelopeError::NoCodeOrAction),
        }
    }
}

/// A response `{"code","data","message"}` viewed in place.
#[derive(Debug, Clone, Copy)]
pub struct Response<'a> {
    root: Value<'a>,
    code: i64,
}

impl<'a> Response<'a> {
    /// Parse a text message that must be a response.
    pub fn parse(payload: &'a [u8]) -> Result<Response<'a>, EnvelopeError> {
        match Incoming::parse(MessageKind::Text, payload)? {
            Incoming::Response(r) => Ok(r),
            _ => Err(EnvelopeError::NoCodeOrAction),
        }
    }

    /// The typed status.
    pub fn status(&self) -> Status {
        Status::from_code(self.code)
    }

    /// The numeric code.
    pub fn code(&self) -> i64 {
        self.code
    }

    /// `data` (an empty object's view when absent or not an object).
    pub fn data(&self) -> Value<'a> {
        match self.root.get("data") {
            Some(d) if d.kind() == json::Kind::Object => d,
            _ => Value::EMPTY_OBJECT,
        }
    }

    /// `message`, when present and a string.
    pub fn message(&self) -> Option<JsonStr<'a>> {
        self.root.get("message").and_then(|m| m.as_str())
    }

    /// Whether `message` equals `text` after decoding escapes.
    pub fn message_is(&self, text: &str) -> bool {
        self.message().is_some_and(|m| m.eq_str(text))
    }

    /// `timestamp` (server clock, float epoch seconds), sent by the real server.
    pub fn timestamp(&self) -> Option<f64> {
        self.root.get("timestamp").and_then(|t| t.as_f64_compact())
    }

    /// `protocol_version`, which the public document shows on responses and
    /// the real server leaves out.
    pub fn protocol_version(&self) -> Option<u32> {
        self.root
            .get("protocol_version")
            .and_then(|v| v.as_u64())
            .and_then(|v| u32::try_from(v).ok())
    }

    /// The schema validator that refused a 400 request, if any.
    pub fn validator(&self) -> Option<Validator<'a>> {
        let data = self.data();
        let name = data.get("validator")?.as_str()?;
        Some(Validator {
            name,
            value: data.get("validator_value")?,
        })
    }

    /// The whole JSON object.
    pub fn root(&self) -> Value<'a> {
        self.root
    }
}

/// Details of a schema refusal: `{"validator": "required", "validator_value": ["username","password"]}`.
#[derive(Debug, Clone, Copy)]
pub struct Validator<'a> {
    /// The JSON-schema keyword that failed (`required`, `additionalProperties`, …).
    pub name: JsonStr<'a>,
    /// The keyword's value in the schema (a list of names, `false`, …).
    pub value: Value<'a>,
}

/// A server-initiated `{"action": …, "data": …}` message.
#[derive(Debug, Clone, Copy)]
pub struct ServerAction<'a> {
    root: Value<'a>,
    action: JsonStr<'a>,
}

impl<'a> ServerAction<'a> {
    /// The action name.
    pub fn action(&self) -> JsonStr<'a> {
        self.action
    }

    /// `data`, or `None` when absent.
    pub fn data(&self) -> Option<Value<'a>> {
        self.root.get("data")
    }

    /// `message`, when present.
    pub fn message(&self) -> Option<JsonStr<'a>> {
        self.root.get("message").and_then(|m| m.as_str())
    }
}

/// Write `{"action":…,"data":{…},"username":…,"token":…}` into `buf`.
///
/// `data` writes the members of the data object (the braces are written
/// here). Returns the length written.
pub(crate) fn emit_request(
    buf: &mut [u8],
    action: &str,
    username: &str,
    token: &str,
    data: impl FnOnce(&mut JsonWriter<'_>),
) -> Result<usize, InsufficientSize> {
    let mut w = JsonWriter::new(buf, 0);
    w.begin_object();
    w.field_str("action", action);
    w.key("data");
    w.begin_object();
    data(&mut w);
    w.end_object();
    w.field_str("username", username);
    w.field_str("token", token);
    w.end_object();
    w.finish()
}

#[cfg(test)]
// Tests index fixtures they built themselves.
#[allow(clippy::indexing_slicing)]
mod tests {
    use super::*;

    #[test]
    fn response_with_timestamp_and_without_protocol_version_parses() {
        let r = Response::parse(br#"{"code": 404, "data": {}, "message": "Directory not found", "timestamp": 1795304847.5092041}"#).unwrap();
        assert_eq!(r.status(), Status::NotFound);
        assert!(r.message_is("Directory not found"));
        assert_eq!(r.timestamp(), Some(1795304847.5092041));
        assert_eq!(r.protocol_version(), None);
    }

    #[test]
    fn response_with_protocol_version_and_unknown_fields_parses() {
        let r = Response::parse(
            br#"{"code":200,"data":{"x":1},"message":"ok","protocol_version":3,"extra":[1,2]}"#,
        )
        .unwrap();
        assert_eq!(r.protocol_version(), Some(3));
        assert_eq!(r.data().get("x").and_then(|x| x.as_u64()), Some(1));
        assert_eq!(r.timestamp(), None);
    }

    #[test]
    fn bad_request_exposes_validator_details() {
        let r = Response::parse(br#"{"code": 400, "data": {"validator": "required", "validator_value": ["username", "password"]}, "message": "'password' is a required property"}"#).unwrap();
        let v = r.validator().unwrap();
        assert!(v.name.eq_str("required"));
        assert_eq!(v.value.items().count(), 2);
    }

    #[test]
    fn lockdown_push_is_binary_and_has_no_code() {
        let m = Incoming::parse(
            MessageKind::Binary,
            br#"{"action": "lockdown", "status": true}"#,
        )
        .unwrap();
        assert!(matches!(m, Incoming::Lockdown { on: true }));
        // The same bytes as text are a server action, not a push.
        let t = Incoming::parse(
            MessageKind::Text,
            br#"{"action": "lockdown", "status": true}"#,
        )
        .unwrap();
        assert!(matches!(t, Incoming::Action(_)));
        let framed = [0u8, 0, 0, 2, 1, b'{', b'}'];
        assert_eq!(
            Incoming::parse(MessageKind::Binary, &framed).unwrap_err(),
            EnvelopeError::UnexpectedBinary
        );
    }

    #[test]
    fn ready_with_threshold_and_stop_are_plain_text() {
        assert!(matches!(
            Incoming::parse(MessageKind::Text, b"ready 4096"),
            Ok(Incoming::Ready {
                threshold: Some(4096)
            })
        ));
        assert!(matches!(
            Incoming::parse(MessageKind::Text, b"ready"),
            Ok(Incoming::Ready { threshold: None })
        ));
        assert!(matches!(
            Incoming::parse(MessageKind::Text, b"stop"),
            Ok(Incoming::Stop)
        ));
    }

    #[test]
    fn request_envelope_has_action_data_username_token() {
        let mut buf = [0u8; 128];
        let n = emit_request(&mut buf, "login", "", "", |w| {
            w.field_str("username", "admin");
        })
        .unwrap();
        assert_eq!(
            &buf[..n],
            br#"{"action":"login","data":{"username":"admin"},"username":"","token":""}"#
        );
    }
}
