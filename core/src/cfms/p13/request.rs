//! Protocol-13 requests as they leave: a PROCESS frame header, then the
//! 3–5 envelope JSON with replay protection added (`cfms-13.md` §3).
//!
//! Every client frame is PROCESS: a request sent as CONCLUSION would make
//! the server forget the stream before the client's `ready` or upload data
//! arrive on it (§2).
#![deny(clippy::indexing_slicing)]

use super::frame::{FrameType, HEADER_LEN, Header, StreamId};
use super::replay::{Nonce, format_timestamp};
use crate::InsufficientSize;
use crate::json::write::JsonWriter;

/// The root folder's id at protocol 13: a real folder record (`null` and
/// `""` still mean the root where a schema allows them; a folder directly
/// under the root lists `parent_id: "/"`).
pub const ROOT_FOLDER: &str = "/";

/// What makes a request authenticated: the account, its token, and the
/// replay stamp the server checks.
#[derive(Clone, Copy)]
pub struct Signed<'a> {
    /// The envelope `username`.
    pub username: &'a str,
    /// The envelope `token`.
    pub token: &'a str,
    /// A nonce never sent before ([`Nonce::draw`]).
    pub nonce: Nonce,
    /// Server time in UNIX seconds
    /// ([`ServerClock::timestamp`](super::replay::ServerClock::timestamp)).
    pub timestamp: f64,
}

impl core::fmt::Debug for Signed<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        // The token is a credential.
        f.debug_struct("Signed")
            .field("username", &self.username)
            .field("token", &"<redacted>")
            .field("nonce", &self.nonce)
            .field("timestamp", &self.timestamp)
            .finish()
    }
}

/// Write `header(stream, PROCESS) {"action":…,"data":{…}[,"username","token","nonce","timestamp"]}`
/// into `out`. `data` writes the members of the data object. Unsigned
/// requests (`server_info`, `login`, `set_passwd`, transfers by task id)
/// carry no credentials at all. Returns the frame's length.
pub fn emit_request(
    out: &mut [u8],
    stream: StreamId,
    action: &str,
    signed: Option<&Signed<'_>>,
    data: impl FnOnce(&mut JsonWriter<'_>),
) -> Result<usize, InsufficientSize> {
    let mut w = JsonWriter::new(out, HEADER_LEN);
    w.begin_object();
    w.field_str("action", action);
    w.key("data");
    w.begin_object();
    data(&mut w);
    w.end_object();
    if let Some(s) = signed {
        w.field_str("username", s.username);
        w.field_str("token", s.token);
        w.field_str("nonce", s.nonce.as_str());
        let mut ts = [0u8; 24];
        let n = format_timestamp(s.timestamp, &mut ts);
        w.field_raw("timestamp", ts.get(..n).unwrap_or_default());
    }
    w.end_object();
    let len = w.finish()?;
    emit_header(out, stream)?;
    Ok(len)
}

/// Write a PROCESS frame whose payload is `payload` (`ready`, a
/// `transfer_file` JSON, upload bytes, or nothing: the empty final upload
/// frame). Returns the frame's length.
pub fn emit_frame(
    out: &mut [u8],
    stream: StreamId,
    payload: &[u8],
) -> Result<usize, InsufficientSize> {
    let len = HEADER_LEN + payload.len();
    let dst = out
        .get_mut(HEADER_LEN..len)
        .ok_or(InsufficientSize { required: len })?;
    dst.copy_from_slice(payload);
    emit_header(out, stream)?;
    Ok(len)
}

fn emit_header(out: &mut [u8], stream: StreamId) -> Result<usize, InsufficientSize> {
    Header {
        stream,
        kind: FrameType::Process,
    }
    .emit(out)
}

#[cfg(test)]
// Tests index fixtures they built themselves.
#[allow(clippy::indexing_slicing)]
mod tests {
    extern crate std;
    use super::*;
    use crate::random;
    use std::format;

    #[test]
    fn an_unsigned_request_has_only_action_and_data() {
        let mut out = [0u8; 64];
        let n = emit_request(&mut out, StreamId(1), "server_info", None, |_| {}).unwrap();
        assert_eq!(
            &out[..n],
            b"\x00\x00\x00\x01\x00{\"action\":\"server_info\",\"data\":{}}"
        );
    }

    #[test]
    fn a_signed_request_carries_nonce_and_timestamp() {
        let mut rng = random::from_fn(|b: &mut [u8]| b.fill(0x11));
        let signed = Signed {
            username: "admin",
            token: "t0k",
            nonce: Nonce::draw(&mut rng),
            timestamp: 1796324179.25,
        };
        let mut out = [0u8; 256];
        let n = emit_request(
            &mut out,
            StreamId(17),
            "list_directory",
            Some(&signed),
            |w| {
                w.field_str("folder_id", ROOT_FOLDER);
            },
        )
        .unwrap();
        let json = core::str::from_utf8(&out[5..n]).unwrap();
        assert_eq!(&out[..5], &[0, 0, 0, 17, 0]);
        assert_eq!(
            json,
            format!(
                "{{\"action\":\"list_directory\",\"data\":{{\"folder_id\":\"/\"}},\"username\":\"admin\",\"token\":\"t0k\",\"nonce\":\"{}\",\"timestamp\":1796324179.250}}",
                "11".repeat(16)
            )
        );
        assert!(!format!("{signed:?}").contains("t0k"));
    }

    #[test]
    fn a_short_buffer_names_the_size_needed() {
        let mut out = [0u8; 10];
        let e = emit_request(&mut out, StreamId(1), "server_info", None, |_| {}).unwrap_err();
        assert_eq!(
            e.required,
            5 + br#"{"action":"server_info","data":{}}"#.len()
        );
        assert_eq!(
            emit_frame(&mut out, StreamId(3), b"ready 65536")
                .unwrap_err()
                .required,
            16
        );
        assert_eq!(emit_frame(&mut out, StreamId(3), b"").unwrap(), 5);
        assert_eq!(&out[..5], &[0, 0, 0, 3, 0]);
    }
}
