//! The one error every layer uses when a caller's buffer is too small.

use core::fmt;

/// A caller-provided buffer cannot hold the result; `required` bytes would.
///
/// Every layer (WebSocket framing, the fnOS and CFMS writers, the
/// [`Connection`](crate::Connection)) reports a short buffer with this one
/// type, so an adapter handles "buffer too small" in one place.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InsufficientSize {
    /// Bytes the buffer needs to hold.
    pub required: usize,
}

impl fmt::Display for InsufficientSize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "buffer too small: {} bytes required", self.required)
    }
}
