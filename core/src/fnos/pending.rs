//! The fnOS table of requests in flight: the shared
//! [`pending`](crate::pending) table keyed by [`Reqid`].
#![deny(clippy::indexing_slicing)]

use super::reqid::Reqid;
pub use crate::pending::{Busy, Pending};

/// Up to `N` fnOS requests in flight.
pub type PendingTable<const N: usize> = crate::pending::Table<Reqid, N>;
