//! The table of requests in flight.
//!
//! Each entry is a reqid, a deadline and a count of the frames received so
//! far. An entry leaves the table when its final frame arrives, when its
//! deadline passes, or when the connection drops. The capacity is a const
//! generic; a full table refuses new requests ([`Busy`]) rather than
//! forgetting old ones.
#![deny(clippy::indexing_slicing)]

use super::reqid::Reqid;
use crate::time::Instant;

/// The table is full; wait for answers before sending more.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Busy;

/// One request in flight.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pending {
    /// The request's id.
    pub reqid: Reqid,
    /// When the request times out.
    pub deadline: Instant,
    /// Frames received so far (partial frames of a multi-frame answer).
    pub frames: u32,
    /// The connection it was sent on is gone; it waits to be reported.
    pub aborted: bool,
}

/// Up to `N` requests in flight.
#[derive(Debug, Clone)]
pub struct PendingTable<const N: usize> {
    slots: [Option<Pending>; N],
}

impl<const N: usize> Default for PendingTable<N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const N: usize> PendingTable<N> {
    /// An empty table.
    pub const fn new() -> Self {
        PendingTable { slots: [None; N] }
    }

    /// Track `reqid` until `deadline`.
    pub fn insert(&mut self, reqid: Reqid, deadline: Instant) -> Result<(), Busy> {
        let slot = self.slots.iter_mut().find(|s| s.is_none()).ok_or(Busy)?;
        *slot = Some(Pending {
            reqid,
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

    /// Requests in flight.
    pub fn len(&self) -> usize {
        self.slots.iter().flatten().count()
    }

    /// `true` when nothing is in flight.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn live_mut(&mut self, reqid: &Reqid) -> Option<&mut Option<Pending>> {
        self.slots
            .iter_mut()
            .find(|s| s.is_some_and(|p| !p.aborted && p.reqid == *reqid))
    }

    /// Count one partial frame for `reqid`; `None` if it is not in flight.
    pub fn note_partial(&mut self, reqid: &Reqid) -> Option<Pending> {
        let entry = self.live_mut(reqid)?.as_mut()?;
        entry.frames = entry.frames.saturating_add(1);
        Some(*entry)
    }

    /// Stop tracking `reqid` (final frame received); `None` if unknown.
    pub fn remove(&mut self, reqid: &Reqid) -> Option<Pending> {
        let mut entry = self.live_mut(reqid)?.take()?;
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
    pub fn take_expired(&mut self, now: Instant) -> Option<Pending> {
        self.slots
            .iter_mut()
            .find(|s| s.is_some_and(|p| !p.aborted && p.deadline <= now))?
            .take()
    }

    /// Mark every request aborted (the connection dropped). They keep their
    /// slots until [`take_aborted`](Self::take_aborted) reports them, and no
    /// longer match replies: a new connection restarts the reqid counter.
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
    pub fn take_aborted(&mut self) -> Option<Pending> {
        self.slots
            .iter_mut()
            .find(|s| s.is_some_and(|p| p.aborted))?
            .take()
    }
}

#[cfg(test)]
// Tests index fixtures they built themselves.
#[allow(clippy::indexing_slicing)]
mod tests {
    use super::*;
    use crate::fnos::reqid::BackId;

    fn id(n: u16) -> Reqid {
        Reqid::new(1, &BackId::ZERO, n)
    }

    #[test]
    fn a_full_table_answers_busy_and_keeps_its_entries() {
        let mut t = PendingTable::<2>::new();
        t.insert(id(1), Instant::from_secs(5)).unwrap();
        t.insert(id(2), Instant::from_secs(3)).unwrap();
        assert_eq!(t.insert(id(3), Instant::from_secs(1)), Err(Busy));
        assert_eq!(t.len(), 2);
        assert_eq!(t.next_deadline(), Some(Instant::from_secs(3)));
    }

    #[test]
    fn partial_frames_keep_the_request_until_the_final_frame() {
        let mut t = PendingTable::<2>::new();
        t.insert(id(1), Instant::from_secs(5)).unwrap();
        assert_eq!(t.note_partial(&id(1)).unwrap().frames, 1);
        assert_eq!(t.note_partial(&id(1)).unwrap().frames, 2);
        assert_eq!(t.remove(&id(1)).unwrap().frames, 3);
        assert!(t.remove(&id(1)).is_none());
        assert!(t.note_partial(&id(9)).is_none());
    }

    #[test]
    fn only_requests_past_their_deadline_expire() {
        let mut t = PendingTable::<4>::new();
        t.insert(id(1), Instant::from_secs(5)).unwrap();
        t.insert(id(2), Instant::from_secs(3)).unwrap();
        assert!(t.take_expired(Instant::from_secs(2)).is_none());
        assert_eq!(t.take_expired(Instant::from_secs(4)).unwrap().reqid, id(2));
        assert!(t.take_expired(Instant::from_secs(4)).is_none());
    }

    #[test]
    fn aborted_requests_no_longer_match_and_are_reported_once() {
        let mut t = PendingTable::<2>::new();
        t.insert(id(1), Instant::from_secs(5)).unwrap();
        t.abort_all();
        t.insert(id(1), Instant::from_secs(9)).unwrap();
        assert_eq!(t.next_deadline(), Some(Instant::from_secs(9)));
        let old = t.take_aborted().unwrap();
        assert_eq!((old.reqid, old.deadline), (id(1), Instant::from_secs(5)));
        assert!(t.take_aborted().is_none());
        assert_eq!(t.remove(&id(1)).unwrap().deadline, Instant::from_secs(9));
        assert!(t.is_empty());
    }
}
