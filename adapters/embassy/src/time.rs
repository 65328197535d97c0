//! The core's clock from embassy-time.
//!
//! The core takes time as an argument ([`Instant`] in milliseconds);
//! here that time is the embassy-time tick counter, so it starts at boot.

use naslink_core::time::Instant;

/// Now, as the core counts time.
pub fn now() -> Instant {
    Instant::from_millis(embassy_time::Instant::now().as_millis())
}

/// The embassy-time instant of a core deadline.
pub fn to_embassy(at: Instant) -> embassy_time::Instant {
    embassy_time::Instant::from_millis(at.total_millis())
}
