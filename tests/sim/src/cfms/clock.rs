//! The server's wall clock, which tests may pin.

use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

/// Wall-clock time in float epoch seconds, as the server reports it in
/// `timestamp`, `exp`, task times and TOTP steps.
///
/// [`Clock::system`] follows the host clock; [`Clock::manual`] stands still
/// until [`Clock::set`] or [`Clock::advance`] moves it, which makes token
/// expiry and TOTP codes deterministic in tests.
#[derive(Debug, Clone)]
pub struct Clock {
    manual: Option<Arc<Mutex<f64>>>,
}

impl Clock {
    /// The host's clock.
    pub fn system() -> Self {
        Self { manual: None }
    }

    /// A clock pinned at `now` (epoch seconds).
    pub fn manual(now: f64) -> Self {
        Self {
            manual: Some(Arc::new(Mutex::new(now))),
        }
    }

    /// The current time in epoch seconds.
    pub fn now(&self) -> f64 {
        match &self.manual {
            Some(t) => *t.lock().unwrap_or_else(|e| e.into_inner()),
            None => SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0.0, |d| d.as_secs_f64()),
        }
    }

    /// Pin a manual clock at `now`. A system clock ignores this and
    /// answers `false`.
    pub fn set(&self, now: f64) -> bool {
        match &self.manual {
            Some(t) => {
                *t.lock().unwrap_or_else(|e| e.into_inner()) = now;
                true
            }
            None => false,
        }
    }

    /// Move a manual clock forward by `secs`. A system clock ignores this and
    /// answers `false`.
    pub fn advance(&self, secs: f64) -> bool {
        match &self.manual {
            Some(t) => {
                *t.lock().unwrap_or_else(|e| e.into_inner()) += secs;
                true
            }
            None => false,
        }
    }
}

impl Default for Clock {
    fn default() -> Self {
        Self::system()
    }
}
