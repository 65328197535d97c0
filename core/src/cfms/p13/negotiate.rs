//! Which protocol a server speaks, found by its answer to the first
//! message (`cfms-13.md` §11, recorded in `cfms-detect.jsonl`).
//!
//! ```text
//! connect --send probe (framed server_info on stream 1)-->
//!     binary CONCLUSION on stream 1, protocol_version 13 --> Framed (keep the connection)
//!     binary answer with protocol_version 6..=12 or > 13  --> Unsupported(v) (close)
//!     close with no message (a 3-5 server, code 1000)     --> Text (reconnect, speak text)
//! pinned version --> no probe: 3..=5 Text, 13 Framed, anything else Unsupported(v)
//! ```
//!
//! A 3–5 server closes at once (its `json.loads` chokes on the leading NUL
//! bytes) and a 13 server answers at once, so neither outcome needs a
//! timeout; a text probe, by contrast, is never answered by a 13 server.
//! Remembering the outcome per server is the adapter's job: it passes the
//! remembered version back as a pin ([`Wire::for_version`]).
#![deny(clippy::indexing_slicing)]

use super::frame::{Frame, FrameError, FrameType, StreamId};
use super::request::emit_request;
use crate::InsufficientSize;
use crate::cfms::envelope::{EnvelopeError, Response};
use crate::cfms::status::Status;

/// The framed protocol version this client speaks.
pub const FRAMED: u32 = 13;

/// How messages are carried on a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wire {
    /// Protocols 3–5: text JSON messages answered in order.
    Text,
    /// Protocol 13: binary frames on streams.
    Framed,
}

impl Wire {
    /// The wire of a known (pinned or remembered) protocol version.
    pub fn for_version(version: u32) -> Result<Wire, Unsupported> {
        match version {
            3..=5 => Ok(Wire::Text),
            FRAMED => Ok(Wire::Framed),
            _ => Err(Unsupported { version }),
        }
    }
}

/// A protocol version this client does not speak.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Unsupported {
    /// The version the server announced (or the caller pinned).
    pub version: u32,
}

impl core::fmt::Display for Unsupported {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let v = self.version;
        match v {
            6..=9 => write!(
                f,
                "the server speaks CFMS protocol {v}; this client speaks 3 to 5 and 13"
            ),
            10..=12 => write!(
                f,
                "the server speaks CFMS protocol {v}, framed like 13 but with other transfers; \
                 this client speaks 3 to 5 and 13"
            ),
            _ => write!(
                f,
                "the server speaks CFMS protocol {v}; this client speaks 3 to 5 and 13"
            ),
        }
    }
}

/// What the probe found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Negotiated {
    /// A protocol-13 server: keep this connection; `lockdown` is its
    /// `server_info` state.
    Framed {
        /// The announced version (13).
        protocol_version: u32,
        /// Whether lockdown is on.
        lockdown: bool,
    },
    /// A protocol 3–5 server closed the connection at the probe: reconnect
    /// and speak text (its `server_info` then tells 3, 4 or 5).
    Text,
}

/// Why the probe's answer settles nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProbeError {
    /// The server speaks a version this client does not.
    Unsupported(Unsupported),
    /// The answer is not a frame.
    Frame(FrameError),
    /// A frame on another stream, or not a CONCLUSION.
    UnexpectedFrame {
        /// Its stream.
        stream: StreamId,
    },
    /// The payload is not a response.
    Malformed(EnvelopeError),
    /// `server_info` was refused with this status.
    Refused(Status),
    /// The answer has no `protocol_version`.
    NoVersion,
}

impl core::fmt::Display for ProbeError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            ProbeError::Unsupported(u) => u.fmt(f),
            ProbeError::Frame(e) => write!(f, "the answer to the probe is not a frame: {e}"),
            ProbeError::UnexpectedFrame { stream } => {
                write!(f, "the probe was answered on stream {}", stream.0)
            }
            ProbeError::Malformed(e) => write!(f, "the answer to the probe is not CFMS: {e}"),
            ProbeError::Refused(s) => write!(f, "server_info was refused with {}", s.code()),
            ProbeError::NoVersion => f.write_str("server_info carries no protocol_version"),
        }
    }
}

/// Write the probe: `server_info` as a protocol-13 frame on stream 1, sent
/// as a binary message. Returns its length.
pub fn probe(out: &mut [u8]) -> Result<usize, InsufficientSize> {
    emit_request(out, StreamId::PROBE, "server_info", None, |_| {})
}

/// Read the first binary message after the probe. An event the server
/// pushed first (an even stream) is `Ok(None)`: wait for the next message.
pub fn read_answer(message: &[u8]) -> Result<Option<Negotiated>, ProbeError> {
    let frame = Frame::parse(message).map_err(ProbeError::Frame)?;
    let stream = frame.header.stream;
    if stream.is_server() {
        return Ok(None);
    }
    if stream != StreamId::PROBE || frame.header.kind != FrameType::Conclusion {
        return Err(ProbeError::UnexpectedFrame { stream });
    }
    let r = Response::parse(frame.payload).map_err(ProbeError::Malformed)?;
    if r.status() != Status::Ok {
        return Err(ProbeError::Refused(r.status()));
    }
    let data = r.data();
    let version = data
        .get("protocol_version")
        .and_then(|v| v.as_u64())
        .and_then(|v| u32::try_from(v).ok())
        .ok_or(ProbeError::NoVersion)?;
    match Wire::for_version(version) {
        Ok(Wire::Framed) => Ok(Some(Negotiated::Framed {
            protocol_version: version,
            lockdown: data
                .get("lockdown")
                .and_then(|l| l.as_bool())
                .unwrap_or(false),
        })),
        // A text server never answers a frame; one that says 3-5 in a
        // frame is not one this client can follow either.
        _ => Err(ProbeError::Unsupported(Unsupported { version })),
    }
}

/// The connection closed before any answer to the probe: a 3–5 server.
pub const fn closed_before_answer() -> Negotiated {
    Negotiated::Text
}

#[cfg(test)]
// Tests index fixtures they built themselves.
#[allow(clippy::indexing_slicing)]
mod tests {
    extern crate std;
    use super::*;
    use std::string::ToString;
    use std::vec::Vec;

    fn answer(stream: u32, json: &str) -> Vec<u8> {
        let mut v = stream.to_be_bytes().to_vec();
        v.push(1);
        v.extend_from_slice(json.as_bytes());
        v
    }

    #[test]
    fn the_probe_is_a_framed_server_info_on_stream_1() {
        let mut out = [0u8; 64];
        let n = probe(&mut out).unwrap();
        assert_eq!(
            &out[..n],
            b"\x00\x00\x00\x01\x00{\"action\":\"server_info\",\"data\":{}}"
        );
    }

    #[test]
    fn a_binary_answer_with_version_13_keeps_the_connection() {
        let m = answer(
            1,
            r#"{"code": 200, "data": {"server_name": "CFMS WebSocket Server", "version": "0.3.0.260519_alpha", "protocol_version": 13, "lockdown": false}, "message": "Server information retrieved successfully", "timestamp": 1796323748.9257762}"#,
        );
        assert_eq!(
            read_answer(&m),
            Ok(Some(Negotiated::Framed {
                protocol_version: 13,
                lockdown: false
            }))
        );
    }

    #[test]
    fn a_close_without_answer_means_reconnect_speaking_text() {
        assert_eq!(closed_before_answer(), Negotiated::Text);
    }

    #[test]
    fn versions_6_to_12_and_above_13_are_refused_by_name() {
        for v in [6u32, 10, 12, 14, 24] {
            let m = answer(
                1,
                &std::format!(r#"{{"code":200,"data":{{"protocol_version":{v}}},"message":""}}"#),
            );
            let e = read_answer(&m).unwrap_err();
            assert_eq!(e, ProbeError::Unsupported(Unsupported { version: v }));
            assert!(e.to_string().contains(&std::format!("protocol {v}")));
        }
        assert_eq!(Wire::for_version(4), Ok(Wire::Text));
        assert_eq!(Wire::for_version(13), Ok(Wire::Framed));
        assert_eq!(Wire::for_version(11), Err(Unsupported { version: 11 }));
    }

    #[test]
    fn an_event_before_the_answer_is_waited_past() {
        let m = answer(2, r#"{"event":"lockdown","data":{"status":true}}"#);
        assert_eq!(read_answer(&m), Ok(None));
        assert_eq!(
            read_answer(&answer(3, r#"{"code":200,"data":{}}"#)),
            Err(ProbeError::UnexpectedFrame {
                stream: StreamId(3)
            })
        );
    }
}
