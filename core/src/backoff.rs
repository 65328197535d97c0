//! Reconnect timing, the same for every runtime: how long to wait before
//! the next attempt, and how many attempts were made.
//!
//! The delay doubles from [`Backoff::initial`] up to [`Backoff::max`] and is
//! multiplied by a random factor in `[0.5, 1.5)`, so that many clients cut
//! off together do not come back in step. [`Attempts`] counts since the
//! last login (a connection that opens but never logs in does not reset
//! the backoff) and, separately, before the first login, which a runtime
//! limits: a client that never got in gives up instead of retrying for
//! ever.
//!
//! ```
//! use naslink_core::backoff::{Attempts, Backoff};
//! use naslink_core::random;
//! use naslink_core::time::Duration;
//!
//! let backoff = Backoff::new(Duration::from_millis(250), Duration::from_secs(30));
//! let mut rng = random::from_fn(|b: &mut [u8]| b.fill(0x80)); // use a CSPRNG
//! let mut attempts = Attempts::new();
//! let n = attempts.failed(); // the first attempt failed
//! assert_eq!(attempts.before_first_login(), Some(1));
//! let wait = backoff.delay(n - 1, &mut rng);
//! assert!(wait >= Duration::from_millis(125) && wait < Duration::from_millis(375));
//! attempts.logged_in();
//! assert_eq!(attempts.before_first_login(), None);
//! ```
#![deny(clippy::indexing_slicing)]

use crate::random::Entropy;
use crate::time::Duration;

/// Delays between reconnect attempts; see the [module docs](self).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// The first delay.
    pub initial: Duration,
    /// The cap (before jitter).
    pub max: Duration,
}

impl Backoff {
    /// Doubling from `initial` up to `max`.
    pub const fn new(initial: Duration, max: Duration) -> Self {
        Backoff { initial, max }
    }

    /// The delay before attempt `attempt` (0-based), with jitter from `rng`.
    pub fn delay(&self, attempt: u32, rng: &mut impl Entropy) -> Duration {
        let base = self
            .initial
            .total_millis()
            .saturating_mul(1u64 << attempt.min(16))
            .min(self.max.total_millis());
        let mut r = [0u8; 2];
        rng.fill_bytes(&mut r);
        // A factor of (32768 + r) / 65536, r uniform in 0..65536: [0.5, 1.5).
        let factor = 32_768 + u64::from(u16::from_le_bytes(r));
        Duration::from_millis(base.saturating_mul(factor) / 65_536)
    }
}

impl Default for Backoff {
    /// 250 ms doubling up to 30 s.
    fn default() -> Self {
        Backoff::new(Duration::from_millis(250), Duration::from_secs(30))
    }
}

/// Connection attempts: since the last login, and before the first one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Attempts {
    since_login: u32,
    before_first: Option<u32>,
}

impl Attempts {
    /// No attempt yet, never logged in.
    pub const fn new() -> Self {
        Attempts {
            since_login: 0,
            before_first: Some(0),
        }
    }

    /// A login succeeded: the backoff starts over, and the limit on
    /// attempts before the first login no longer applies.
    pub fn logged_in(&mut self) {
        self.since_login = 0;
        self.before_first = None;
    }

    /// An attempt failed (or a connection ended); returns the number of
    /// failures since the last login, 1-based (the backoff's `attempt` is
    /// one less).
    pub fn failed(&mut self) -> u32 {
        self.since_login = self.since_login.saturating_add(1);
        if let Some(n) = self.before_first.as_mut() {
            *n = n.saturating_add(1);
        }
        self.since_login
    }

    /// Attempts made before the first login, while there was none.
    pub fn before_first_login(&self) -> Option<u32> {
        self.before_first
    }
}

impl Default for Attempts {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::random;

    #[test]
    fn delays_double_up_to_the_cap_within_the_jitter() {
        let backoff = Backoff::new(Duration::from_millis(100), Duration::from_millis(1000));
        for fill in [0u8, 0x80, 0xff] {
            let mut rng = random::from_fn(move |b: &mut [u8]| b.fill(fill));
            for (attempt, base) in [(0, 100u64), (1, 200), (3, 800), (4, 1000), (40, 1000)] {
                let d = backoff.delay(attempt, &mut rng).total_millis();
                assert!(
                    d >= base / 2 && d < base * 3 / 2,
                    "{attempt}: {d} vs {base}"
                );
            }
        }
    }

    #[test]
    fn only_a_login_resets_the_count_and_lifts_the_first_limit() {
        let mut a = Attempts::new();
        assert_eq!(a.failed(), 1);
        assert_eq!(a.failed(), 2);
        assert_eq!(a.before_first_login(), Some(2));
        a.logged_in();
        assert_eq!(a.failed(), 1);
        assert_eq!(a.before_first_login(), None);
    }
}
