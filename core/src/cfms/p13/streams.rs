//! The client's streams on one protocol-13 connection: ids handed out,
//! answers matched by id in the order they finish, and a deadline on each.
//!
//! Rules (`cfms-13.md` §2, §12):
//!
//! - The client opens odd ids 1, 3, 5, … and never reuses one on a
//!   connection: a reused id is swallowed by the server (the id of a
//!   finished download stays bound there), so even an id given up on (its
//!   deadline passed) is retired, never handed out again.
//! - Even ids are the server's event streams.
//! - A CONCLUSION ends a stream. Some streams end without one: a download
//!   ends with its `aes_key` frame and an empty download after its header
//!   ([`finish`](Streams::finish)); a successful empty upload ends with
//!   `stop` and then silence, so after `stop` the stream gets a short grace
//!   ([`end_quietly`](Streams::end_quietly)) in which a late CONCLUSION (the
//!   server's 500 on a fresh storage month) still counts.
//! - Some requests are never answered (non-JSON payloads, a lost database
//!   race, a wedged connection): each stream has a deadline, pushed back by
//!   every frame it receives, and one that passes ends the stream with
//!   [`Ended::Timeout`].
//!
//! The table holds `N` streams (default [`IN_FLIGHT`]); one more is refused
//! with [`StreamError::Busy`].
#![deny(clippy::indexing_slicing)]

use super::frame::{FrameType, Header, StreamId};
use crate::pending::{Busy, Table};
use crate::time::{Duration, Instant};

/// Requests in flight by default. The real server's database pool
/// deadlocks above about 20 authenticated requests in flight (16 and 20
/// were fine, 24 sometimes failed, 32 and 48 failed: `cfms-13.md` §2);
/// 8 leaves it a wide margin.
pub const IN_FLIGHT: usize = 8;

/// How long an empty upload waits after `stop` for a late CONCLUSION
/// before it counts as stored (`cfms-13.md` §9 step 5).
pub const QUIET_END: Duration = Duration::from_secs(2);

/// Why no stream was opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamError {
    /// `N` streams are in flight; wait for one to end.
    Busy,
    /// Every odd `u32` id has been used on this connection: reconnect.
    IdsExhausted,
}

impl From<Busy> for StreamError {
    fn from(_: Busy) -> Self {
        StreamError::Busy
    }
}

impl core::fmt::Display for StreamError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            StreamError::Busy => "the table of requests in flight is full",
            StreamError::IdsExhausted => "every stream id of this connection is used",
        })
    }
}

/// Where a received frame belongs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    /// A frame on one of the client's streams in flight. `last`: it was a
    /// CONCLUSION and the stream is over (its id retired).
    Answer {
        /// Which stream.
        stream: StreamId,
        /// The stream ended with this frame.
        last: bool,
    },
    /// A frame on a stream the server opened (an even id): an event.
    Event {
        /// Which stream.
        stream: StreamId,
    },
    /// A frame on an odd id not in flight (given up on, finished, or never
    /// opened): nobody waits for it; drop it.
    Stray {
        /// Which stream.
        stream: StreamId,
    },
}

/// A stream that ended without a frame saying so.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ended {
    /// Its deadline passed with no answer: the request failed, its id is
    /// retired.
    Timeout(StreamId),
    /// The grace after `stop` passed in silence: the empty upload is
    /// stored.
    Quiet(StreamId),
    /// The connection closed while it was in flight.
    Disconnected(StreamId),
}

/// The client's streams on one connection; see the [module docs](self).
#[derive(Debug, Clone)]
pub struct Streams<const N: usize = IN_FLIGHT> {
    table: Table<u32, N>,
    /// Streams in their grace after `stop`.
    quiet: heapless::Vec<u32, N>,
    /// The next id to hand out; `None` once every odd id is used.
    next: Option<u32>,
    /// Each stream's deadline, counted from its request and from each
    /// frame it receives.
    timeout: Duration,
}

impl<const N: usize> Streams<N> {
    /// A fresh connection's streams: the first id is 1.
    pub fn new(timeout: Duration) -> Self {
        Streams {
            table: Table::new(),
            quiet: heapless::Vec::new(),
            next: Some(1),
            timeout,
        }
    }

    /// Open a stream for a request sent at `now`.
    pub fn open(&mut self, now: Instant) -> Result<StreamId, StreamError> {
        let id = self.next.ok_or(StreamError::IdsExhausted)?;
        self.table.insert(id, now + self.timeout)?;
        self.next = id.checked_add(2);
        Ok(StreamId(id))
    }

    /// The id the next [`open`](Self::open) hands out (to write a request
    /// before committing to it).
    pub fn next_id(&self) -> Option<StreamId> {
        self.next.map(StreamId)
    }

    /// Whether another stream can be opened now.
    pub fn can_open(&self) -> bool {
        self.next.is_some() && self.table.has_room()
    }

    /// Streams in flight.
    pub fn in_flight(&self) -> usize {
        self.table.len()
    }

    /// Route a received frame; a CONCLUSION ends its stream, a PROCESS
    /// frame pushes its deadline back.
    pub fn route(&mut self, now: Instant, header: Header) -> Route {
        let stream = header.stream;
        if stream.is_server() {
            return Route::Event { stream };
        }
        let known = match header.kind {
            FrameType::Conclusion => {
                self.forget_quiet(stream);
                self.table.remove(&stream.0).is_some()
            }
            FrameType::Process => {
                self.table.note_partial(&stream.0).is_some()
                    && self.table.set_deadline(&stream.0, now + self.timeout)
            }
        };
        match (known, header.kind) {
            (true, FrameType::Conclusion) => Route::Answer { stream, last: true },
            (true, FrameType::Process) => Route::Answer {
                stream,
                last: false,
            },
            (false, _) => Route::Stray { stream },
        }
    }

    /// Push `stream`'s deadline to `deadline` (the client is still
    /// sending on it). `false` if it is not in flight.
    pub fn extend(&mut self, stream: StreamId, deadline: Instant) -> bool {
        self.table.set_deadline(&stream.0, deadline)
    }

    /// The stream ended by its content (a download's `aes_key`, an empty
    /// download's header): forget it. `false` if it was not in flight.
    pub fn finish(&mut self, stream: StreamId) -> bool {
        self.forget_quiet(stream);
        self.table.remove(&stream.0).is_some()
    }

    /// The stream may end in silence (an empty upload's `stop`): unless a
    /// CONCLUSION comes within `grace`, it ends as [`Ended::Quiet`].
    pub fn end_quietly(&mut self, now: Instant, stream: StreamId, grace: Duration) -> bool {
        if !self.table.set_deadline(&stream.0, now + grace) {
            return false;
        }
        if !self.quiet.contains(&stream.0) {
            // Room is certain: every quiet id is also in the table.
            let _ = self.quiet.push(stream.0);
        }
        true
    }

    fn forget_quiet(&mut self, stream: StreamId) {
        self.quiet.retain(|&id| id != stream.0);
    }

    /// When [`take_ended`](Self::take_ended) is next due.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.table.next_deadline()
    }

    /// One stream that ended at `now` without a frame (a passed deadline, a
    /// quiet end, or a closed connection); call until `None`.
    pub fn take_ended(&mut self, now: Instant) -> Option<Ended> {
        if let Some(p) = self.table.take_aborted() {
            self.forget_quiet(StreamId(p.key));
            return Some(Ended::Disconnected(StreamId(p.key)));
        }
        let p = self.table.take_expired(now)?;
        let stream = StreamId(p.key);
        if self.quiet.contains(&p.key) {
            self.forget_quiet(stream);
            Some(Ended::Quiet(stream))
        } else {
            Some(Ended::Timeout(stream))
        }
    }

    /// The connection closed: every stream in flight ends as
    /// [`Ended::Disconnected`] (through [`take_ended`](Self::take_ended)),
    /// and the next connection starts again at id 1.
    pub fn disconnect(&mut self) {
        self.table.abort_all();
        self.next = Some(1);
    }
}

#[cfg(test)]
// Tests index fixtures they built themselves.
#[allow(clippy::indexing_slicing)]
mod tests {
    use super::*;

    const T: Duration = Duration::from_secs(30);

    fn conclusion(id: u32) -> Header {
        Header {
            stream: StreamId(id),
            kind: FrameType::Conclusion,
        }
    }

    fn process(id: u32) -> Header {
        Header {
            stream: StreamId(id),
            kind: FrameType::Process,
        }
    }

    #[test]
    fn client_ids_are_odd_and_never_reused() {
        let mut s: Streams<2> = Streams::new(T);
        let a = s.open(Instant::ZERO).unwrap();
        let b = s.open(Instant::ZERO).unwrap();
        assert_eq!((a, b), (StreamId(1), StreamId(3)));
        assert_eq!(s.open(Instant::ZERO), Err(StreamError::Busy));
        assert!(s.finish(a));
        assert_eq!(s.open(Instant::ZERO), Ok(StreamId(5)));
    }

    #[test]
    fn answers_match_by_id_in_completion_order() {
        let mut s: Streams = Streams::new(T);
        let ids: [StreamId; 3] = core::array::from_fn(|_| s.open(Instant::ZERO).unwrap());
        let now = Instant::from_millis(5);
        for id in [ids[2], ids[0], ids[1]] {
            assert_eq!(
                s.route(now, conclusion(id.0)),
                Route::Answer {
                    stream: id,
                    last: true
                }
            );
        }
        // A second CONCLUSION on a finished id belongs to nobody.
        assert_eq!(
            s.route(now, conclusion(ids[0].0)),
            Route::Stray { stream: ids[0] }
        );
    }

    #[test]
    fn even_ids_are_server_events() {
        let mut s: Streams = Streams::new(T);
        assert_eq!(
            s.route(Instant::ZERO, conclusion(2)),
            Route::Event {
                stream: StreamId(2)
            }
        );
    }

    #[test]
    fn an_unanswered_request_times_out_and_its_id_is_retired() {
        let mut s: Streams<1> = Streams::new(T);
        let id = s.open(Instant::ZERO).unwrap();
        assert_eq!(s.poll_timeout(), Some(Instant::ZERO + T));
        assert_eq!(s.take_ended(Instant::from_secs(29)), None);
        assert_eq!(
            s.take_ended(Instant::from_secs(30)),
            Some(Ended::Timeout(id))
        );
        // A late answer is dropped, and the id is not handed out again.
        assert_eq!(
            s.route(Instant::from_secs(31), conclusion(id.0)),
            Route::Stray { stream: id }
        );
        assert_eq!(s.open(Instant::from_secs(31)), Ok(StreamId(3)));
    }

    #[test]
    fn frames_of_a_running_stream_push_its_deadline_back() {
        let mut s: Streams<1> = Streams::new(T);
        let id = s.open(Instant::ZERO).unwrap();
        s.route(Instant::from_secs(20), process(id.0));
        assert_eq!(s.take_ended(Instant::from_secs(40)), None);
        assert_eq!(
            s.take_ended(Instant::from_secs(50)),
            Some(Ended::Timeout(id))
        );
    }

    #[test]
    fn an_empty_upload_ends_quietly_after_stop_unless_a_conclusion_follows() {
        let mut s: Streams = Streams::new(T);
        let quiet = s.open(Instant::ZERO).unwrap();
        let loud = s.open(Instant::ZERO).unwrap();
        for id in [quiet, loud] {
            s.route(Instant::ZERO, process(id.0));
            assert!(s.end_quietly(Instant::ZERO, id, QUIET_END));
        }
        assert_eq!(
            s.route(Instant::from_secs(1), conclusion(loud.0)),
            Route::Answer {
                stream: loud,
                last: true
            }
        );
        assert_eq!(
            s.take_ended(Instant::from_secs(2)),
            Some(Ended::Quiet(quiet))
        );
        assert_eq!(s.take_ended(Instant::from_secs(99)), None);
    }

    #[test]
    fn a_closed_connection_ends_every_stream_and_starts_ids_again() {
        let mut s: Streams = Streams::new(T);
        let id = s.open(Instant::ZERO).unwrap();
        s.disconnect();
        assert_eq!(s.take_ended(Instant::ZERO), Some(Ended::Disconnected(id)));
        assert_eq!(s.take_ended(Instant::ZERO), None);
        assert_eq!(s.open(Instant::ZERO), Ok(StreamId(1)));
    }

    #[test]
    fn the_last_odd_id_is_the_last() {
        let mut s: Streams = Streams::new(T);
        s.next = Some(u32::MAX);
        assert_eq!(s.open(Instant::ZERO), Ok(StreamId(u32::MAX)));
        assert_eq!(s.open(Instant::ZERO), Err(StreamError::IdsExhausted));
    }
}
