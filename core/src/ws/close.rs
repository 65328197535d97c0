//! Close status codes (RFC 6455 §7.4) and which of them may travel in a
//! Close frame.
#![deny(clippy::indexing_slicing)]

use core::fmt;

/// A close status code as carried in a Close frame's first two bytes.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CloseCode(u16);

impl CloseCode {
    /// 1000: the purpose of the connection is fulfilled.
    pub const NORMAL: CloseCode = CloseCode(1000);
    /// 1001: the endpoint goes away (server shutdown, page left).
    pub const GOING_AWAY: CloseCode = CloseCode(1001);
    /// 1002: the peer broke the protocol.
    pub const PROTOCOL_ERROR: CloseCode = CloseCode(1002);
    /// 1003: a data type the endpoint cannot accept.
    pub const UNSUPPORTED_DATA: CloseCode = CloseCode(1003);
    /// 1007: a message's data does not match its type (text not UTF-8).
    pub const INVALID_PAYLOAD: CloseCode = CloseCode(1007);
    /// 1008: a message violates the endpoint's policy.
    pub const POLICY_VIOLATION: CloseCode = CloseCode(1008);
    /// 1009: a message is too big to process.
    pub const MESSAGE_TOO_BIG: CloseCode = CloseCode(1009);
    /// 1010: the client expected an extension the server did not negotiate.
    pub const MANDATORY_EXTENSION: CloseCode = CloseCode(1010);
    /// 1011: the server hit an unexpected condition.
    pub const INTERNAL_ERROR: CloseCode = CloseCode(1011);

    /// A code from its number; any value, checked only when sent or received.
    pub const fn new(code: u16) -> CloseCode {
        CloseCode(code)
    }

    /// The number.
    pub const fn as_u16(self) -> u16 {
        self.0
    }

    /// Whether the code may appear in a Close frame: 1000–1003 and 1007–1014
    /// (IANA registry), or 3000–4999 (libraries and applications). 1004–1006
    /// and 1015 are reserved or only for local reporting; the rest of
    /// 0–2999 is unassigned and 5000 and up does not exist.
    pub const fn is_valid_on_wire(self) -> bool {
        matches!(self.0, 1000..=1003 | 1007..=1014 | 3000..=4999)
    }
}

impl fmt::Debug for CloseCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CloseCode({})", self.0)
    }
}

impl fmt::Display for CloseCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

#[cfg(test)]
// Tests index fixtures they built themselves.
#[allow(clippy::indexing_slicing)]
mod tests {
    use super::*;

    #[test]
    fn close_codes_allowed_on_the_wire_follow_rfc6455_and_iana() {
        for ok in [
            1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014, 3000, 3999,
            4000, 4999,
        ] {
            assert!(CloseCode::new(ok).is_valid_on_wire(), "{ok}");
        }
        for bad in [
            0, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000, 65535,
        ] {
            assert!(!CloseCode::new(bad).is_valid_on_wire(), "{bad}");
        }
    }
}
