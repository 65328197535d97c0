//! Replay protection (`cfms-13.md` §3 step 5): every authenticated request
//! carries a fresh `nonce` and a `timestamp` within 15 s of the server's
//! clock; a refusal comes back as code 1001.
//!
//! - [`Nonce`]: 32 hex characters from 16 bytes of the caller's randomness
//!   (the server wants at least 16 characters and remembers every nonce,
//!   from any client, for 30 s).
//! - [`ServerClock`]: the server's time, learnt from the `timestamp` of
//!   any answer (an unauthenticated `server_info` is enough), so a device
//!   without a wall clock (the firmware) still stamps requests the server
//!   accepts. Before any answer, the caller's wall clock is used, if given.
//! - [`Replay`]: which of the two 1001 refusals it was, from the message.
#![deny(clippy::indexing_slicing)]

use crate::cfms::envelope::Response;
use crate::cfms::status::Status;
use crate::json::write::hex_digit;
use crate::random::Entropy;
use crate::time::Instant;

/// Characters in a nonce.
pub const NONCE_LEN: usize = 32;

/// A request nonce: 32 lower-case hex characters.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Nonce([u8; NONCE_LEN]);

impl Nonce {
    /// A new nonce from 16 random bytes.
    pub fn draw<R: Entropy + ?Sized>(rng: &mut R) -> Nonce {
        let mut raw = [0u8; NONCE_LEN / 2];
        rng.fill_bytes(&mut raw);
        let mut out = [0u8; NONCE_LEN];
        for (pair, &b) in out.as_chunks_mut::<2>().0.iter_mut().zip(&raw) {
            *pair = [hex_digit(b >> 4), hex_digit(b)];
        }
        Nonce(out)
    }

    /// The nonce as text.
    pub fn as_str(&self) -> &str {
        // Only hex digits were written.
        core::str::from_utf8(&self.0).unwrap_or_default()
    }
}

impl core::fmt::Debug for Nonce {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "Nonce({})", self.as_str())
    }
}

/// The server's clock as far as this client knows it.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct ServerClock {
    /// At this instant the server said it was this many UNIX seconds.
    server: Option<(Instant, f64)>,
    /// At this instant the local wall clock said this many UNIX seconds.
    local: Option<(Instant, f64)>,
}

impl ServerClock {
    /// A clock that knows nothing yet.
    pub const fn new() -> ServerClock {
        ServerClock {
            server: None,
            local: None,
        }
    }

    /// The local wall clock: at `now` it is `unix_secs`.
    pub fn set_local(&mut self, now: Instant, unix_secs: f64) {
        if unix_secs.is_finite() && unix_secs > 0.0 {
            self.local = Some((now, unix_secs));
        }
    }

    /// An answer received at `now` carried the server's `timestamp`.
    pub fn learn(&mut self, now: Instant, server_secs: f64) {
        if server_secs.is_finite() && server_secs > 0.0 {
            self.server = Some((now, server_secs));
        }
    }

    /// Learn from a response's `timestamp`, if it has one.
    pub fn learn_from(&mut self, now: Instant, response: &Response<'_>) {
        if let Some(ts) = response.timestamp() {
            self.learn(now, ts);
        }
    }

    /// Server time minus local wall-clock time, in seconds, once both are
    /// known.
    pub fn offset(&self) -> Option<f64> {
        let (s_at, s) = self.server?;
        let (l_at, l) = self.local?;
        Some(s - l - secs_between(l_at, s_at))
    }

    /// The `timestamp` to stamp a request sent at `now` with: local time
    /// plus the learnt offset (the server's clock carried forward), else
    /// the local clock; `None` when neither is known.
    pub fn timestamp(&self, now: Instant) -> Option<f64> {
        let (at, secs) = self.server.or(self.local)?;
        Some(secs + secs_between(at, now))
    }
}

/// Seconds from `a` to `b`, negative when `b` is earlier.
fn secs_between(a: Instant, b: Instant) -> f64 {
    let ms = if b >= a {
        b.saturating_since(a).total_millis() as f64
    } else {
        -(a.saturating_since(b).total_millis() as f64)
    };
    ms / 1000.0
}

/// Write `secs` as JSON with millisecond precision (`1796324179.568`);
/// returns the length written into `out` (at most 24 bytes).
pub(crate) fn format_timestamp(secs: f64, out: &mut [u8; 24]) -> usize {
    let millis = (secs.max(0.0) * 1000.0 + 0.5) as u64;
    let (whole, frac) = (millis / 1000, millis % 1000);
    let mut digits = [0u8; 20];
    let mut n = 0;
    let mut v = whole;
    loop {
        if let Some(d) = digits.get_mut(n) {
            *d = b'0' + (v % 10) as u8;
        }
        n += 1;
        v /= 10;
        if v == 0 || n == digits.len() {
            break;
        }
    }
    let mut len = 0;
    let mut put = |b: u8| {
        if let Some(slot) = out.get_mut(len) {
            *slot = b;
            len += 1;
        }
    };
    for &d in digits.get(..n).unwrap_or_default().iter().rev() {
        put(d);
    }
    put(b'.');
    put(b'0' + (frac / 100) as u8);
    put(b'0' + (frac / 10 % 10) as u8);
    put(b'0' + (frac % 10) as u8);
    len
}

/// Which replay check refused a request (code 1001).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Replay {
    /// `Request timestamp is outside the acceptable time window`: the
    /// clock is off by more than 15 s (or the server was stalled): learn
    /// the clock again from a fresh answer and resend.
    StaleTimestamp,
    /// `Duplicate nonce detected`: a nonce was used twice within 30 s
    /// (a retransmission, or a poor random source).
    DuplicateNonce,
    /// A 1001 with another message.
    Other,
}

impl Replay {
    /// The kind of a 1001 response; `None` for any other code.
    pub fn of(response: &Response<'_>) -> Option<Replay> {
        if response.status() != Status::Replay {
            return None;
        }
        let m = response.message();
        Some(if m.is_some_and(|m| m.starts_with("Request timestamp")) {
            Replay::StaleTimestamp
        } else if m.is_some_and(|m| m.starts_with("Duplicate nonce")) {
            Replay::DuplicateNonce
        } else {
            Replay::Other
        })
    }
}

impl Replay {
    /// Whether the refused request may be sent again, once, as it is
    /// (with a fresh nonce and timestamp). The replay check runs before the
    /// action (§3 step 5), so a refused request changed nothing. A stale
    /// timestamp is worth one more try: the refusal carries the server's
    /// `timestamp`, which the session has learnt by the time it reports
    /// the refusal, so the next stamp is the server's own clock (the usual
    /// causes: the server's clock was stepped, this host was suspended
    /// while its monotonic clock stood still, or the server held the
    /// request past the window). A duplicate nonce is not: a fresh random
    /// nonce the server has seen means someone else sent it first, or a
    /// broken random source; it is reported, never retried.
    pub fn worth_resending(self) -> bool {
        self == Replay::StaleTimestamp
    }
}

impl core::fmt::Display for Replay {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            Replay::StaleTimestamp => {
                "the server refused the request's timestamp (clocks more than 15 s apart)"
            }
            Replay::DuplicateNonce => "the server saw this request's nonce before (a replay)",
            Replay::Other => "the server's replay protection refused the request",
        })
    }
}

#[cfg(test)]
// Tests index fixtures they built themselves.
#[allow(clippy::indexing_slicing)]
mod tests {
    use super::*;
    use crate::random;

    #[test]
    fn nonce_is_32_hex_characters_from_the_callers_randomness() {
        let mut rng = random::from_fn(|b: &mut [u8]| b.fill(0xa5));
        let n = Nonce::draw(&mut rng);
        assert_eq!(n.as_str(), "a5".repeat(16));
        let mut counter = 0u8;
        let mut rng = random::from_fn(|b: &mut [u8]| {
            for x in b {
                counter = counter.wrapping_add(1);
                *x = counter;
            }
        });
        assert_ne!(Nonce::draw(&mut rng), Nonce::draw(&mut rng));
    }

    #[test]
    fn timestamp_is_local_time_plus_the_offset_learnt_from_an_answer() {
        let mut c = ServerClock::new();
        assert_eq!(c.timestamp(Instant::ZERO), None);
        c.set_local(Instant::from_secs(10), 1000.0);
        assert_eq!(c.timestamp(Instant::from_secs(12)), Some(1002.0));
        // The server runs 100 s ahead.
        c.learn(Instant::from_secs(20), 1110.0);
        assert_eq!(c.offset(), Some(100.0));
        assert_eq!(c.timestamp(Instant::from_secs(25)), Some(1115.0));
        // Without a local clock the server's is carried forward.
        let mut c = ServerClock::new();
        c.learn(Instant::from_secs(1), 1796324169.141);
        assert_eq!(
            c.timestamp(Instant::from_millis(1500)),
            Some(1796324169.641)
        );
    }

    #[test]
    fn timestamps_are_written_with_milliseconds() {
        let mut out = [0u8; 24];
        let n = format_timestamp(1796324179.5687888, &mut out);
        assert_eq!(&out[..n], b"1796324179.569");
        let n = format_timestamp(0.0, &mut out);
        assert_eq!(&out[..n], b"0.000");
    }

    #[test]
    fn code_1001_says_stale_timestamp_or_duplicate_nonce() {
        let stale = Response::parse(br#"{"code": 1001, "data": {}, "message": "Request timestamp is outside the acceptable time window", "timestamp": 1.0}"#).unwrap();
        let dup = Response::parse(br#"{"code": 1001, "data": {}, "message": "Duplicate nonce detected: possible replay attack"}"#).unwrap();
        let other =
            Response::parse(br#"{"code": 400, "data": {}, "message": "Duplicate nonce"}"#).unwrap();
        assert_eq!(Replay::of(&stale), Some(Replay::StaleTimestamp));
        assert_eq!(Replay::of(&dup), Some(Replay::DuplicateNonce));
        assert_eq!(Replay::of(&other), None);
    }

    #[test]
    fn only_a_stale_timestamp_is_worth_resending() {
        assert!(Replay::StaleTimestamp.worth_resending());
        assert!(!Replay::DuplicateNonce.worth_resending());
        assert!(!Replay::Other.worth_resending());
    }
}
