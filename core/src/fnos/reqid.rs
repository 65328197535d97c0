//! Request ids: `hex8(unix seconds) + backId (16 hex) + hex4(counter)`.
//!
//! The server only echoes the reqid back; the client uses it to match
//! answers to requests. The counter starts at 1 on every connection and the
//! `backId` is zeros until a login of this connection returns one.
#![deny(clippy::indexing_slicing)]

use core::fmt;

/// Length of a reqid in characters.
pub const REQID_LEN: usize = 28;

/// A request id as sent on the wire: 28 lowercase hex characters.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Reqid([u8; REQID_LEN]);

impl Reqid {
    /// Build a reqid from its three parts.
    pub fn new(unix_secs: u32, back_id: &BackId, counter: u16) -> Self {
        let mut out = [0u8; REQID_LEN];
        hex_into(&mut out[..8], u64::from(unix_secs));
        out[8..24].copy_from_slice(&back_id.0);
        hex_into(&mut out[24..], u64::from(counter));
        Reqid(out)
    }

    /// Accept any 28-character reqid received from the server (it is echoed,
    /// not validated, so only the length is checked).
    pub fn from_bytes(bytes: &[u8]) -> Option<Self> {
        Some(Reqid(bytes.try_into().ok()?))
    }

    /// The reqid text.
    pub fn as_str(&self) -> &str {
        // Built from hex digits or checked UTF-8 input; the fallback is
        // unreachable but keeps this accessor panic-free.
        core::str::from_utf8(&self.0).unwrap_or("")
    }

    /// The reqid bytes.
    pub fn as_bytes(&self) -> &[u8; REQID_LEN] {
        &self.0
    }
}

impl fmt::Debug for Reqid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Reqid({})", self.as_str())
    }
}

impl fmt::Display for Reqid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The 16-hex-character `backId` a login returns; zeros before login.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct BackId([u8; 16]);

impl BackId {
    /// The all-zero backId used before login on every connection.
    pub const ZERO: BackId = BackId(*b"0000000000000000");

    /// Parse a backId as received: exactly 16 hex digits.
    pub fn parse(text: &str) -> Option<Self> {
        let bytes: [u8; 16] = text.as_bytes().try_into().ok()?;
        bytes
            .iter()
            .all(u8::is_ascii_hexdigit)
            .then(|| BackId(bytes.map(|b| b.to_ascii_lowercase())))
    }

    /// The backId text.
    pub fn as_str(&self) -> &str {
        core::str::from_utf8(&self.0).unwrap_or("")
    }
}

impl fmt::Debug for BackId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "BackId({})", self.as_str())
    }
}

fn hex_into(out: &mut [u8], mut v: u64) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    for slot in out.iter_mut().rev() {
        // `& 15` is below the 16 digits.
        #[allow(clippy::indexing_slicing)]
        let digit = HEX[(v & 15) as usize];
        *slot = digit;
        v >>= 4;
    }
}

/// Hands out reqids for one connection.
#[derive(Debug, Clone)]
pub struct ReqidGenerator {
    back_id: BackId,
    counter: u16,
}

impl Default for ReqidGenerator {
    fn default() -> Self {
        Self::new()
    }
}

impl ReqidGenerator {
    /// A generator for a fresh connection: zero backId, counter before 1.
    pub const fn new() -> Self {
        ReqidGenerator {
            back_id: BackId::ZERO,
            counter: 0,
        }
    }

    /// Start over for a new connection.
    pub fn reset(&mut self) {
        *self = Self::new();
    }

    /// Use the backId a login of this connection returned.
    pub fn set_back_id(&mut self, back_id: BackId) {
        self.back_id = back_id;
    }

    /// The backId in use.
    pub fn back_id(&self) -> &BackId {
        &self.back_id
    }

    /// The next reqid; the counter wraps at 16 bits like the web UI's.
    pub fn next(&mut self, unix_secs: u64) -> Reqid {
        self.counter = self.counter.wrapping_add(1);
        // hex8 holds the low 32 bits of the seconds, as the web UI does.
        Reqid::new(unix_secs as u32, &self.back_id, self.counter)
    }
}

#[cfg(test)]
// Tests index fixtures they built themselves.
#[allow(clippy::indexing_slicing)]
mod tests {
    use super::*;

    #[test]
    fn counter_starts_at_one_and_resets_with_the_back_id() {
        let mut g = ReqidGenerator::new();
        g.set_back_id(BackId::parse("6915841b00000044").unwrap());
        assert_eq!(g.next(0x6915841c).as_str(), "6915841c6915841b000000440001");
        assert_eq!(g.next(0x6915841c).as_str(), "6915841c6915841b000000440002");
        g.reset();
        assert_eq!(g.next(0x6915841c).as_str(), "6915841c00000000000000000001");
    }

    #[test]
    fn back_id_must_be_sixteen_hex_digits() {
        assert!(BackId::parse("6915841b0000004").is_none());
        assert!(BackId::parse("6915841b0000004g").is_none());
    }
}
