//! The application heartbeat: `{"req":"ping"}` every interval.
//!
//! The server answers `{"res":"pong"}`, though some firmware is reported not
//! to. Each time a ping falls due, the pings still unanswered are counted;
//! when that count reaches the configured limit the connection is declared
//! dead so the application reconnects. A limit of 0 never declares it dead
//! (pings are still sent to keep the connection open).
//!
//! States: stopped (no connection) → running (`start`) → a ping due
//! (`handle_timeout`) → sent (`on_ping_sent`) → running; `on_pong` clears
//! the unanswered count; `stop` on disconnect.
#![deny(clippy::indexing_slicing)]

use crate::time::{Duration, Instant};

/// Heartbeat settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeartbeatConfig {
    /// Time between pings. The protocol notes say at most 30 s.
    pub interval: Duration,
    /// Unanswered pings tolerated when the next ping falls due; 0 disables
    /// the check.
    pub missed_pong_limit: u8,
}

impl Default for HeartbeatConfig {
    fn default() -> Self {
        HeartbeatConfig {
            interval: Duration::from_secs(30),
            missed_pong_limit: 2,
        }
    }
}

/// What a timer expiry asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeartbeatAction {
    /// Nothing yet.
    Idle,
    /// Send a ping now.
    SendPing,
    /// Too many pongs missed: close and reconnect.
    Dead {
        /// Pings that went unanswered.
        missed: u8,
    },
}

/// Heartbeat timer state for one connection.
#[derive(Debug, Clone)]
pub struct Heartbeat {
    config: HeartbeatConfig,
    next_ping: Option<Instant>,
    unanswered: u8,
    ping_due: bool,
}

impl Heartbeat {
    /// A stopped heartbeat.
    pub const fn new(config: HeartbeatConfig) -> Self {
        Heartbeat {
            config,
            next_ping: None,
            unanswered: 0,
            ping_due: false,
        }
    }

    /// Begin on a new connection: the first ping falls due one interval on.
    pub fn start(&mut self, now: Instant) {
        self.next_ping = Some(now + self.config.interval);
        self.unanswered = 0;
        self.ping_due = false;
    }

    /// Stop (connection gone).
    pub fn stop(&mut self) {
        self.next_ping = None;
        self.unanswered = 0;
        self.ping_due = false;
    }

    /// When the heartbeat next needs `handle_timeout`.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.next_ping
    }

    /// Advance the timer.
    pub fn handle_timeout(&mut self, now: Instant) -> HeartbeatAction {
        let Some(at) = self.next_ping else {
            return HeartbeatAction::Idle;
        };
        if now < at {
            return HeartbeatAction::Idle;
        }
        let limit = self.config.missed_pong_limit;
        if limit > 0 && self.unanswered >= limit {
            let missed = self.unanswered;
            self.stop();
            return HeartbeatAction::Dead { missed };
        }
        self.next_ping = Some(now + self.config.interval);
        self.ping_due = true;
        HeartbeatAction::SendPing
    }

    /// `true` while a ping waits to be transmitted.
    pub fn ping_due(&self) -> bool {
        self.ping_due
    }

    /// The due ping was written to the transmit buffer.
    pub fn on_ping_sent(&mut self) {
        if self.ping_due {
            self.ping_due = false;
            self.unanswered = self.unanswered.saturating_add(1);
        }
    }

    /// A pong arrived.
    pub fn on_pong(&mut self) {
        self.unanswered = 0;
    }
}

#[cfg(test)]
// Tests index fixtures they built themselves.
#[allow(clippy::indexing_slicing)]
mod tests {
    use super::*;

    fn at(s: u64) -> Instant {
        Instant::from_secs(s)
    }

    #[test]
    fn ping_falls_due_every_interval() {
        let mut h = Heartbeat::new(HeartbeatConfig::default());
        h.start(at(0));
        assert_eq!(h.poll_timeout(), Some(at(30)));
        assert_eq!(h.handle_timeout(at(29)), HeartbeatAction::Idle);
        assert_eq!(h.handle_timeout(at(30)), HeartbeatAction::SendPing);
        assert!(h.ping_due());
        h.on_ping_sent();
        assert!(!h.ping_due());
        assert_eq!(h.poll_timeout(), Some(at(60)));
    }

    #[test]
    fn connection_is_dead_after_the_missed_pong_limit() {
        let mut h = Heartbeat::new(HeartbeatConfig {
            interval: Duration::from_secs(10),
            missed_pong_limit: 2,
        });
        h.start(at(0));
        for t in [10, 20] {
            assert_eq!(h.handle_timeout(at(t)), HeartbeatAction::SendPing);
            h.on_ping_sent();
        }
        assert_eq!(
            h.handle_timeout(at(30)),
            HeartbeatAction::Dead { missed: 2 }
        );
        assert_eq!(h.poll_timeout(), None);
    }

    #[test]
    fn a_pong_resets_the_missed_count() {
        let mut h = Heartbeat::new(HeartbeatConfig {
            interval: Duration::from_secs(10),
            missed_pong_limit: 1,
        });
        h.start(at(0));
        assert_eq!(h.handle_timeout(at(10)), HeartbeatAction::SendPing);
        h.on_ping_sent();
        h.on_pong();
        assert_eq!(h.handle_timeout(at(20)), HeartbeatAction::SendPing);
    }

    #[test]
    fn a_zero_limit_never_declares_the_connection_dead() {
        let mut h = Heartbeat::new(HeartbeatConfig {
            interval: Duration::from_secs(10),
            missed_pong_limit: 0,
        });
        h.start(at(0));
        for t in 1..50 {
            assert_eq!(h.handle_timeout(at(t * 10)), HeartbeatAction::SendPing);
            h.on_ping_sent();
        }
    }
}
