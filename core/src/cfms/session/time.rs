//! Time and disconnects: deadlines, token refresh, keep-alive.
#![deny(clippy::indexing_slicing)]

use super::*;

impl<'a, const Q: usize> Session<'a, Q> {
    /// When [`Session::handle_timeout`] wants to run next.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let mut t = match self.wire {
            Wire::Text => self.pending.next_deadline(),
            Wire::Framed => self.mux.poll_timeout(),
        };
        let mut consider = |x: Option<Instant>| {
            if let Some(x) = x {
                t = Some(t.map_or(x, |t: Instant| t.min(x)));
            }
        };
        if self.auth.logged_in {
            consider(self.auth.refresh_at);
        }
        if let (Some(iv), Protocol::Spoken(_), true) = (
            self.config.keep_alive,
            self.protocol,
            self.pending.is_empty(),
        ) {
            consider(Some(self.last_activity + iv));
        }
        t
    }

    /// Let time pass: expire requests, schedule refresh and keep-alive.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.wire == Wire::Framed {
            // Each stream times out alone; only the session's own steps
            // going unanswered break the connection.
            if self.expire_streams(now) {
                self.broken = true;
                self.emit(Event::Desynchronized(Desync::Timeout));
                return;
            }
        } else if self.pending.next_deadline().is_some_and(|d| d <= now) {
            self.fail_all(
                RequestError::Timeout,
                UploadError::Timeout,
                DownloadError::Timeout,
            );
            self.broken = true;
            self.emit(Event::Desynchronized(Desync::Timeout));
            return;
        }
        if self.auth.logged_in && self.auth.refresh_at.is_some_and(|r| r <= now) {
            self.auth.refresh_at = None;
            self.due.refresh = true;
        }
        let idle = |iv| self.pending.is_empty() && now >= self.last_activity + iv;
        if let (Some(iv), Protocol::Spoken(_)) = (self.config.keep_alive, self.protocol)
            && idle(iv)
        {
            self.due.keep_alive = true;
            self.last_activity = now;
        }
    }

    /// The server ended the connection (its Close came first, or the
    /// transport ended): told just before
    /// [`handle_disconnect`](Session::handle_disconnect). Only this settles
    /// an unanswered protocol-13 probe as "speak text" ([`Config::negotiate`]);
    /// a connection this side closed or abandoned (a timeout against a
    /// silent server) leaves the question open.
    pub fn handle_peer_close(&mut self, _now: Instant) {
        self.peer_closed = true;
    }

    /// The connection closed: every pending request fails. The token is
    /// kept (it stays valid on a new connection, which starts with
    /// `server_info` again).
    pub fn handle_disconnect(&mut self, _now: Instant) {
        self.fail_all(
            RequestError::Disconnected,
            UploadError::Disconnected,
            DownloadError::Disconnected,
        );
        self.protocol = Protocol::Unknown;
        self.broken = false;
        self.due = Due::default();
        self.rx_len = 0;
        self.rx_streaming = false;
        self.lockdown = None;
        self.auth.awaiting_two_factor = false;
        self.state = State::Disconnected;
        self.step_due = false;
        self.framed_disconnect();
        self.opening_seq = None;
        self.peer_closed = false;
    }

    pub(super) fn fail_all(&mut self, req: RequestError, up: UploadError, down: DownloadError) {
        while let Some(entry) = self.pending.pop() {
            match (entry.purpose, entry.purpose.seq()) {
                (Purpose::Transfer, _) => self.fail_transfer(up, down),
                (_, Some(seq)) => self.emit(Event::RequestFailed { seq, error: req }),
                (_, None) => {}
            }
        }
        self.due.fence = false;
    }

    pub(super) fn fail_transfer(&mut self, up: UploadError, down: DownloadError) {
        if let Transfer::Download(d) = &self.transfer
            && self.wire == Wire::Framed
        {
            self.last_download_chunks = d.hashes_known();
        }
        match core::mem::replace(&mut self.transfer, Transfer::None) {
            Transfer::Upload(u) => self.emit(Event::UploadFailed {
                seq: u.seq,
                error: up,
            }),
            Transfer::Download(d) => self.emit(Event::DownloadFailed {
                seq: d.seq,
                error: down,
            }),
            Transfer::None => {}
        }
    }
}
