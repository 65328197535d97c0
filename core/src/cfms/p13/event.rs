//! Events the server pushes on streams it opens (even ids), each one
//! CONCLUSION frame `{"event": NAME, "data": {...}}` with no code, message
//! or timestamp (`cfms-13.md` §7). Every connection gets them, logged in or
//! not; unknown events are ignored.
#![deny(clippy::indexing_slicing)]

use crate::json::{self, JsonError, Value};

/// A pushed event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServerEvent {
    /// `lockdown {status}`: the same news the 3–5 binary push carries
    /// (the session raises the same [`Event::Lockdown`](crate::cfms::Event::Lockdown)).
    Lockdown {
        /// Whether lockdown is now on.
        on: bool,
    },
    /// An event this client does not know: ignore it.
    Unknown,
}

/// Why an event payload could not be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventError {
    /// Not JSON.
    NotJson(JsonError),
    /// JSON without an `event` name.
    NoEvent,
    /// A `lockdown` event without a boolean `data.status`.
    BadLockdown,
}

impl core::fmt::Display for EventError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            EventError::NotJson(e) => write!(f, "event is not JSON: {e}"),
            EventError::NoEvent => f.write_str("server stream without an event name"),
            EventError::BadLockdown => f.write_str("lockdown event without a boolean status"),
        }
    }
}

impl ServerEvent {
    /// Read the payload of a frame on a server stream.
    pub fn parse(payload: &[u8]) -> Result<ServerEvent, EventError> {
        let root = Value::parse(payload).map_err(EventError::NotJson)?;
        if root.kind() != json::Kind::Object {
            return Err(EventError::NoEvent);
        }
        let name = root
            .get("event")
            .and_then(|e| e.as_str())
            .ok_or(EventError::NoEvent)?;
        if !name.eq_str("lockdown") {
            return Ok(ServerEvent::Unknown);
        }
        root.get("data")
            .and_then(|d| d.get("status"))
            .and_then(|s| s.as_bool())
            .map(|on| ServerEvent::Lockdown { on })
            .ok_or(EventError::BadLockdown)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lockdown_event_carries_its_status() {
        assert_eq!(
            ServerEvent::parse(br#"{"event": "lockdown", "data": {"status": true}}"#),
            Ok(ServerEvent::Lockdown { on: true })
        );
        assert_eq!(
            ServerEvent::parse(br#"{"event": "lockdown", "data": {"status": false}}"#),
            Ok(ServerEvent::Lockdown { on: false })
        );
    }

    #[test]
    fn unknown_events_are_ignored_and_garbage_is_named() {
        assert_eq!(
            ServerEvent::parse(br#"{"event": "quota", "data": {}}"#),
            Ok(ServerEvent::Unknown)
        );
        assert_eq!(
            ServerEvent::parse(br#"{"data": {}}"#),
            Err(EventError::NoEvent)
        );
        assert_eq!(
            ServerEvent::parse(br#"{"event": "lockdown", "data": {}}"#),
            Err(EventError::BadLockdown)
        );
        assert!(matches!(
            ServerEvent::parse(b"\xff"),
            Err(EventError::NotJson(_))
        ));
    }
}
