//! The protocol-13 frame: `u32 BE stream id | u8 type | payload`
//! (`cfms-13.md` §2, the server's `HEADER_FORMAT "!IB"`).
//!
//! Two levels, as in the rest of the wire code: [`Frame::parse`] checks a
//! whole message once; [`Header::emit`] writes the five header bytes in
//! front of a payload the caller writes after them. [`Reader`] takes a
//! message delivered in pieces (a download chunk is about 2.8 MB and is
//! streamed): it collects the header across pieces and then hands the
//! payload pieces through untouched.
#![deny(clippy::indexing_slicing)]

use crate::InsufficientSize;

/// Bytes in a frame header.
pub const HEADER_LEN: usize = 5;

/// A stream id. The client opens odd ids (1, 3, 5, …) and never reuses one
/// on a connection; the server opens even ids (2, 4, …) for its events.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct StreamId(pub u32);

impl StreamId {
    /// The id the negotiation probe uses (the first client id).
    pub const PROBE: StreamId = StreamId(1);

    /// Whether the client opened it (odd).
    pub const fn is_client(self) -> bool {
        !self.0.is_multiple_of(2)
    }

    /// Whether the server opened it for an event (even). The server does
    /// not check parity, but it only ever opens even ids itself.
    pub const fn is_server(self) -> bool {
        self.0.is_multiple_of(2)
    }
}

/// The frame type byte.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameType {
    /// `0`: more frames may follow on this stream.
    Process,
    /// `1`: the sender's last frame on this stream; the server forgets the
    /// id once it sends or receives one.
    Conclusion,
}

impl FrameType {
    /// The type for a byte, if it is one.
    pub const fn from_byte(b: u8) -> Option<FrameType> {
        match b {
            0 => Some(FrameType::Process),
            1 => Some(FrameType::Conclusion),
            _ => None,
        }
    }

    /// The byte on the wire.
    pub const fn byte(self) -> u8 {
        match self {
            FrameType::Process => 0,
            FrameType::Conclusion => 1,
        }
    }
}

/// Why received bytes are not a frame. (The server drops such messages
/// silently; a client treats them as a broken peer.)
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameError {
    /// The message ended before its five header bytes.
    ShortFrame {
        /// Bytes the message had.
        len: usize,
    },
    /// The type byte is neither 0 (PROCESS) nor 1 (CONCLUSION).
    BadType(u8),
    /// A message arrived as text: protocol 13 frames everything as binary.
    TextMessage,
}

impl core::fmt::Display for FrameError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            FrameError::ShortFrame { len } => {
                write!(f, "a {len}-byte message is shorter than a frame header")
            }
            FrameError::BadType(t) => write!(f, "frame type {t} is neither PROCESS nor CONCLUSION"),
            FrameError::TextMessage => {
                f.write_str("a text message on a protocol-13 connection (frames are binary)")
            }
        }
    }
}

/// A frame header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// Which stream.
    pub stream: StreamId,
    /// PROCESS or CONCLUSION.
    pub kind: FrameType,
}

impl Header {
    /// Read a header from exactly its five bytes.
    pub fn parse(bytes: [u8; HEADER_LEN]) -> Result<Header, FrameError> {
        let [a, b, c, d, t] = bytes;
        let kind = FrameType::from_byte(t).ok_or(FrameError::BadType(t))?;
        Ok(Header {
            stream: StreamId(u32::from_be_bytes([a, b, c, d])),
            kind,
        })
    }

    /// The five header bytes.
    pub fn to_bytes(self) -> [u8; HEADER_LEN] {
        let [a, b, c, d] = self.stream.0.to_be_bytes();
        [a, b, c, d, self.kind.byte()]
    }

    /// Write the header at the start of `out`; the payload goes after it.
    pub fn emit(self, out: &mut [u8]) -> Result<usize, InsufficientSize> {
        let dst = out.get_mut(..HEADER_LEN).ok_or(InsufficientSize {
            required: HEADER_LEN,
        })?;
        dst.copy_from_slice(&self.to_bytes());
        Ok(HEADER_LEN)
    }
}

/// A whole received frame, viewed in place.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Frame<'a> {
    /// Its header.
    pub header: Header,
    /// Everything after the header (JSON, a short word, or file bytes).
    pub payload: &'a [u8],
}

impl<'a> Frame<'a> {
    /// Check a whole binary message.
    pub fn parse(message: &'a [u8]) -> Result<Frame<'a>, FrameError> {
        let (head, payload) = message
            .split_first_chunk::<HEADER_LEN>()
            .ok_or(FrameError::ShortFrame { len: message.len() })?;
        Ok(Frame {
            header: Header::parse(*head)?,
            payload,
        })
    }
}

/// What [`Reader::feed`] made of a piece.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Piece<'a> {
    /// The header is not complete yet: feed the next piece.
    NeedMore,
    /// Payload bytes of the frame with this header (possibly none).
    Payload {
        /// The frame's header.
        header: Header,
        /// The payload bytes this piece carried.
        data: &'a [u8],
        /// The message (and so the frame) ends with this piece.
        last: bool,
    },
}

/// Reads one frame delivered as pieces of a WebSocket message.
#[derive(Debug, Clone, Default)]
pub struct Reader {
    head: [u8; HEADER_LEN],
    have: usize,
    header: Option<Header>,
}

impl Reader {
    /// A reader waiting for a message's first piece.
    pub const fn new() -> Reader {
        Reader {
            head: [0; HEADER_LEN],
            have: 0,
            header: None,
        }
    }

    /// Take one piece of a message; `first` starts a new message, `last`
    /// ends it. A message that ends inside its header is a
    /// [`FrameError::ShortFrame`].
    pub fn feed<'a>(
        &mut self,
        data: &'a [u8],
        first: bool,
        last: bool,
    ) -> Result<Piece<'a>, FrameError> {
        if first {
            *self = Reader::new();
        }
        let mut rest = data;
        if self.header.is_none() {
            let want = HEADER_LEN.saturating_sub(self.have);
            let take = want.min(rest.len());
            let (now, after) = rest.split_at(take);
            if let Some(dst) = self.head.get_mut(self.have..self.have + take) {
                dst.copy_from_slice(now);
            }
            self.have += take;
            rest = after;
            if self.have == HEADER_LEN {
                self.header = Some(Header::parse(self.head)?);
            }
        }
        match self.header {
            Some(header) => Ok(Piece::Payload {
                header,
                data: rest,
                last,
            }),
            None if last => Err(FrameError::ShortFrame { len: self.have }),
            None => Ok(Piece::NeedMore),
        }
    }
}

#[cfg(test)]
// Tests index fixtures they built themselves.
#[allow(clippy::indexing_slicing)]
mod tests {
    use super::*;

    #[test]
    fn header_is_u32_big_endian_id_then_type() {
        let f = Frame::parse(b"\x00\x00\x00\x01\x01{}").unwrap();
        assert_eq!(f.header.stream, StreamId(1));
        assert_eq!(f.header.kind, FrameType::Conclusion);
        assert_eq!(f.payload, b"{}");
        let mut out = [0u8; 5];
        Header {
            stream: StreamId(65537),
            kind: FrameType::Process,
        }
        .emit(&mut out)
        .unwrap();
        assert_eq!(out, [0, 1, 0, 1, 0]);
    }

    #[test]
    fn a_message_shorter_than_five_bytes_is_a_short_frame() {
        assert_eq!(
            Frame::parse(b"\x00\x00\x01"),
            Err(FrameError::ShortFrame { len: 3 })
        );
        // A header alone is a frame with an empty payload (the final
        // empty upload frame).
        assert_eq!(Frame::parse(&[0, 0, 0, 3, 0]).unwrap().payload, b"");
    }

    #[test]
    fn a_type_other_than_0_or_1_is_named() {
        assert_eq!(
            Frame::parse(b"\x00\x00\x00\x01\x02{}"),
            Err(FrameError::BadType(2))
        );
        // A JSON text read as a frame: its fifth byte is `t`.
        assert_eq!(
            Frame::parse(br#"{"action":"x"}"#),
            Err(FrameError::BadType(b't'))
        );
    }

    #[test]
    fn client_ids_are_odd_server_ids_even() {
        assert!(StreamId(1).is_client() && StreamId(2).is_server());
        assert!(!StreamId(1000).is_client());
    }

    #[test]
    fn reader_collects_a_header_split_across_pieces() {
        let mut r = Reader::new();
        assert_eq!(r.feed(&[0, 0], true, false), Ok(Piece::NeedMore));
        let header = Header {
            stream: StreamId(7),
            kind: FrameType::Process,
        };
        assert_eq!(
            r.feed(&[0, 7, 0, b'a'], false, false),
            Ok(Piece::Payload {
                header,
                data: b"a",
                last: false
            })
        );
        assert_eq!(
            r.feed(b"bc", false, true),
            Ok(Piece::Payload {
                header,
                data: b"bc",
                last: true
            })
        );
        assert_eq!(
            r.feed(&[0, 0], true, true),
            Err(FrameError::ShortFrame { len: 2 })
        );
    }
}
