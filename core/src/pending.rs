//! Requests in flight, for every session: one vocabulary, one capacity
//! error.
//!
//! - [`Table`]: answers matched by key in any order (fnOS reqids; the
//!   stream ids of CFMS protocol 13), with partial frames counted, and a
//!   dropped connection's requests kept until they are reported.
//! - `Fifo` (crate-internal): answers matched strictly in the order sent
//!   (CFMS protocols 3–5 carry no request id).
//!
//! Both hold a fixed number of entries (a const generic) and refuse more
//! with [`Busy`] rather than forgetting old ones; both say their
//! `next_deadline` and whether they are `is_full`/`is_empty`.
#![deny(clippy::indexing_slicing)]

use crate::time::Instant;

/// The table is full; wait for answers before sending more.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Busy;

/// One request in flight, known by its key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pending<K> {
    /// The request's id (an fnOS reqid; a CFMS stream id).
    pub key: K,
    /// When the request times out.
    pub deadline: Instant,
    /// Frames received so far (partial frames of a multi-frame answer).
    pub frames: u32,
    /// The connection it was sent on is gone; it waits to be reported.
    pub aborted: bool,
}

/// Up to `N` requests in flight, matched by key in any order.
#[derive(Debug, Clone)]
pub struct Table<K, const N: usize> {
    slots: [Option<Pending<K>>; N],
}

impl<K: Copy + Eq, const N: usize> Default for Table<K, N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<K: Copy + Eq, const N: usize> Table<K, N> {
    /// An empty table.
    pub const fn new() -> Self {
        Table { slots: [None; N] }
    }

    /// Track `key` until `deadline`.
    pub fn insert(&mut self, key: K, deadline: Instant) -> Result<(), Busy> {
        let slot = self.slots.iter_mut().find(|s| s.is_none()).ok_or(Busy)?;
        *slot = Some(Pending {
            key,
            deadline,
            frames: 0,
            aborted: false,
        });
        Ok(())
    }

    /// `true` if another request fits.
    pub fn has_room(&self) -> bool {
        self.slots.iter().any(Option::is_none)
    }

    /// `true` if no other request fits.
    pub fn is_full(&self) -> bool {
        !self.has_room()
    }

    /// Requests in flight.
    pub fn len(&self) -> usize {
        self.slots.iter().flatten().count()
    }

    /// `true` when nothing is in flight.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn live_mut(&mut self, key: &K) -> Option<&mut Option<Pending<K>>> {
        self.slots
            .iter_mut()
            .find(|s| s.is_some_and(|p| !p.aborted && p.key == *key))
    }

    /// Count one partial frame for `key`; `None` if it is not in flight.
    pub fn note_partial(&mut self, key: &K) -> Option<Pending<K>> {
        let entry = self.live_mut(key)?.as_mut()?;
        entry.frames = entry.frames.saturating_add(1);
        Some(*entry)
    }

    /// Move `key`'s deadline (a stream that is still sending is alive);
    /// `false` if it is not in flight.
    pub fn set_deadline(&mut self, key: &K, deadline: Instant) -> bool {
        match self.live_mut(key).and_then(Option::as_mut) {
            Some(entry) => {
                entry.deadline = deadline;
                true
            }
            None => false,
        }
    }

    /// Stop tracking `key` (final frame received); `None` if unknown.
    pub fn remove(&mut self, key: &K) -> Option<Pending<K>> {
        let mut entry = self.live_mut(key)?.take()?;
        entry.frames = entry.frames.saturating_add(1);
        Some(entry)
    }

    /// The earliest deadline.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.slots
            .iter()
            .flatten()
            .filter(|p| !p.aborted)
            .map(|p| p.deadline)
            .min()
    }

    /// Remove and return one request whose deadline is at or before `now`.
    pub fn take_expired(&mut self, now: Instant) -> Option<Pending<K>> {
        self.slots
            .iter_mut()
            .find(|s| s.is_some_and(|p| !p.aborted && p.deadline <= now))?
            .take()
    }

    /// Mark every request aborted (the connection dropped). They keep their
    /// slots until [`take_aborted`](Self::take_aborted) reports them, and no
    /// longer match replies (a new connection may reuse their keys).
    pub fn abort_all(&mut self) {
        for p in self.slots.iter_mut().flatten() {
            p.aborted = true;
        }
    }

    /// Whether [`take_aborted`](Self::take_aborted) or
    /// [`take_expired`](Self::take_expired) with `now` would return one.
    pub fn has_finished(&self, now: Instant) -> bool {
        self.slots
            .iter()
            .flatten()
            .any(|p| p.aborted || p.deadline <= now)
    }

    /// Remove and return one aborted request.
    pub fn take_aborted(&mut self) -> Option<Pending<K>> {
        self.slots
            .iter_mut()
            .find(|s| s.is_some_and(|p| p.aborted))?
            .take()
    }
}

/// One request awaiting its in-order response.
#[derive(Debug, Clone)]
pub(crate) struct Entry<P> {
    pub(crate) purpose: P,
    pub(crate) deadline: Instant,
    /// The CFMS protocol-13 stream the request went out on (0 on an
    /// in-order wire).
    pub(crate) stream: u32,
}

/// Up to `N` requests in flight, answered strictly in the order sent.
#[derive(Debug)]
pub(crate) struct Fifo<P, const N: usize> {
    items: heapless::Deque<Entry<P>, N>,
}

impl<P, const N: usize> Fifo<P, N> {
    pub(crate) const fn new() -> Self {
        Fifo {
            items: heapless::Deque::new(),
        }
    }

    /// Track a request for `purpose` until `deadline`.
    /// `stream` is the CFMS protocol-13 stream it went out on (0 on the
    /// in-order wire).
    pub(crate) fn push_on(
        &mut self,
        purpose: P,
        deadline: Instant,
        stream: u32,
    ) -> Result<(), Busy> {
        self.items
            .push_back(Entry {
                purpose,
                deadline,
                stream,
            })
            .map_err(|_| Busy)
    }

    /// Stop tracking the request sent on `stream`, wherever it is in the
    /// queue (answers on a multiplexed wire come in any order).
    pub(crate) fn remove_stream(&mut self, stream: u32) -> Option<Entry<P>> {
        let mut found = None;
        for _ in 0..self.items.len() {
            let entry = self.items.pop_front()?;
            if found.is_none() && entry.stream == stream {
                found = Some(entry);
            } else {
                // Room is certain: one was just taken out.
                let _ = self.items.push_back(entry);
            }
        }
        found
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

    /// Whether a request in flight is for `purpose`.
    pub(crate) fn any(&self, mut purpose: impl FnMut(&P) -> bool) -> bool {
        self.items.iter().any(|e| purpose(&e.purpose))
    }

    /// The earliest deadline.
    pub(crate) fn next_deadline(&self) -> Option<Instant> {
        self.items.iter().map(|e| e.deadline).min()
    }
}

#[cfg(test)]
// Tests index fixtures they built themselves.
#[allow(clippy::indexing_slicing)]
mod tests {
    use super::*;
    use crate::fnos::reqid::{BackId, Reqid};

    fn id(n: u16) -> Reqid {
        Reqid::new(1, &BackId::ZERO, n)
    }

    #[test]
    fn a_full_table_answers_busy_and_keeps_its_entries() {
        let mut t = Table::<Reqid, 2>::new();
        t.insert(id(1), Instant::from_secs(5)).unwrap();
        t.insert(id(2), Instant::from_secs(3)).unwrap();
        assert_eq!(t.insert(id(3), Instant::from_secs(1)), Err(Busy));
        assert_eq!(t.len(), 2);
        assert_eq!(t.next_deadline(), Some(Instant::from_secs(3)));
    }

    #[test]
    fn partial_frames_keep_the_request_until_the_final_frame() {
        let mut t = Table::<Reqid, 2>::new();
        t.insert(id(1), Instant::from_secs(5)).unwrap();
        assert_eq!(t.note_partial(&id(1)).unwrap().frames, 1);
        assert_eq!(t.note_partial(&id(1)).unwrap().frames, 2);
        assert_eq!(t.remove(&id(1)).unwrap().frames, 3);
        assert!(t.remove(&id(1)).is_none());
        assert!(t.note_partial(&id(9)).is_none());
    }

    #[test]
    fn only_requests_past_their_deadline_expire() {
        let mut t = Table::<Reqid, 4>::new();
        t.insert(id(1), Instant::from_secs(5)).unwrap();
        t.insert(id(2), Instant::from_secs(3)).unwrap();
        assert!(t.take_expired(Instant::from_secs(2)).is_none());
        assert_eq!(t.take_expired(Instant::from_secs(4)).unwrap().key, id(2));
        assert!(t.take_expired(Instant::from_secs(4)).is_none());
    }

    #[test]
    fn aborted_requests_no_longer_match_and_are_reported_once() {
        let mut t = Table::<Reqid, 2>::new();
        t.insert(id(1), Instant::from_secs(5)).unwrap();
        t.abort_all();
        t.insert(id(1), Instant::from_secs(9)).unwrap();
        assert_eq!(t.next_deadline(), Some(Instant::from_secs(9)));
        let old = t.take_aborted().unwrap();
        assert_eq!((old.key, old.deadline), (id(1), Instant::from_secs(5)));
        assert!(t.take_aborted().is_none());
        assert_eq!(t.remove(&id(1)).unwrap().deadline, Instant::from_secs(9));
        assert!(t.is_empty());
    }

    #[test]
    fn a_request_is_taken_out_by_its_stream_wherever_it_is() {
        let mut q: Fifo<u8, 3> = Fifo::new();
        for (p, stream) in [(1, 1), (2, 3), (3, 5)] {
            q.push_on(p, Instant::from_secs(30), stream).unwrap();
        }
        assert_eq!(q.remove_stream(3).map(|e| e.purpose), Some(2));
        assert!(q.remove_stream(3).is_none());
        assert_eq!(q.pop().map(|e| e.purpose), Some(1));
        assert_eq!(q.pop().map(|e| e.purpose), Some(3));
    }

    #[test]
    fn responses_match_requests_in_fifo_order_within_capacity() {
        let mut q: Fifo<u8, 2> = Fifo::new();
        q.push_on(1, Instant::from_secs(30), 0).unwrap();
        q.push_on(2, Instant::from_secs(10), 0).unwrap();
        assert_eq!(q.push_on(3, Instant::from_secs(5), 0), Err(Busy));
        assert_eq!(q.next_deadline(), Some(Instant::from_secs(10)));
        assert_eq!(q.pop().map(|e| e.purpose), Some(1));
        assert_eq!(q.pop().map(|e| e.purpose), Some(2));
        assert!(q.is_empty());
    }
}
