//! The in-flight request queue.
//!
//! CFMS requests carry no id: one connection answers strictly in request
//! order. So the session keeps what it sent in the shared fixed-capacity
//! FIFO ([`pending`](crate::pending)) and gives each response to the oldest
//! entry. Each entry has a deadline; a missed deadline means a late answer
//! would be matched to the wrong request, so the session treats it as
//! fatal for the connection.
#![deny(clippy::indexing_slicing)]

pub(crate) use crate::pending::Fifo as Pending;

/// The local sequence number of a request this session wrote (the
/// protocol has no request id; this names "the n-th request").
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Seq(pub u32);
