//! The in-flight request queue.
//!
//! CFMS requests carry no id: one connection answers strictly in request
//! order. So the session keeps what it sent in a fixed-capacity FIFO and
//! gives each response to the oldest entry. Each entry has a deadline; a
//! missed deadline means a late answer would be matched to the wrong
//! request, so the session treats it as fatal for the connection.
#![deny(clippy::indexing_slicing)]

use crate::time::Instant;

/// The local sequence number of a request this session wrote (the
/// protocol has no request id; this names "the n-th request").
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Seq(pub u32);

/// One request awaiting its response.
#[derive(Debug, Clone)]
pub(crate) struct Entry<P> {
    pub(crate) purpose: P,
    pub(crate) deadline: Instant,
}

/// FIFO of at most `N` in-flight requests.
#[derive(Debug)]
pub(crate) struct Pending<P, const N: usize> {
    items: heapless::Deque<Entry<P>, N>,
}

/// The queue already holds `N` requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct QueueFull;

impl<P, const N: usize> Pending<P, N> {
    pub(crate) const fn new() -> Self {
        Pending {
            items: heapless::Deque::new(),
        }
    }

    pub(crate) fn push(&mut self, purpose: P, deadline: Instant) -> Result<(), QueueFull> {
        self.items
            .push_back(Entry { purpose, deadline })
            .map_err(|_| QueueFull)
    }

    pub(crate) fn is_full(&self) -> bool {
        self.items.is_full()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    pub(crate) fn front(&self) -> Option<&Entry<P>> {
        self.items.front()
    }

    pub(crate) fn front_mut(&mut self) -> Option<&mut Entry<P>> {
        self.items.front_mut()
    }

    pub(crate) fn pop(&mut self) -> Option<Entry<P>> {
        self.items.pop_front()
    }

    /// The soonest deadline of any entry.
    /// Whether a request in flight is for `purpose`.
    pub(crate) fn any(&self, mut purpose: impl FnMut(&P) -> bool) -> bool {
        self.items.iter().any(|e| purpose(&e.purpose))
    }

    pub(crate) fn earliest_deadline(&self) -> Option<Instant> {
        self.items.iter().map(|e| e.deadline).min()
    }
}

#[cfg(test)]
// Tests index fixtures they built themselves.
#[allow(clippy::indexing_slicing)]
mod tests {
    use super::*;

    #[test]
    fn responses_match_requests_in_fifo_order_within_capacity() {
        let mut q: Pending<u8, 2> = Pending::new();
        q.push(1, Instant::from_secs(30)).unwrap();
        q.push(2, Instant::from_secs(10)).unwrap();
        assert_eq!(q.push(3, Instant::from_secs(5)), Err(QueueFull));
        assert_eq!(q.earliest_deadline(), Some(Instant::from_secs(10)));
        assert_eq!(q.pop().map(|e| e.purpose), Some(1));
        assert_eq!(q.pop().map(|e| e.purpose), Some(2));
        assert!(q.is_empty());
    }
}
