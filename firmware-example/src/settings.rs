//! Build-time configuration. Set the variables when building, e.g.
//! `NASLINK_URL=ws://192.168.1.20:5666/websocket?type=main NASLINK_USER=panel
//! NASLINK_PASSWORD=… cargo build …`. Defaults point at the fnOS emulator on
//! the host side of the test TAP link (`192.168.69.1`) with its default
//! `admin`/`admin` account; no real secret is ever in the source.

/// The NAS WebSocket URL (`ws://` or, with the `tls` feature, `wss://`).
pub const URL: &str = match option_env!("NASLINK_URL") {
    Some(v) => v,
    None => "ws://192.168.69.1:5666/websocket?type=main",
};

/// User name.
pub const USER: &str = match option_env!("NASLINK_USER") {
    Some(v) => v,
    None => "admin",
};

/// Password.
pub const PASSWORD: &str = match option_env!("NASLINK_PASSWORD") {
    Some(v) => v,
    None => "admin",
};

/// Seconds between status refreshes.
pub const POLL_SECS: u64 = match option_env!("NASLINK_POLL_SECS") {
    Some(v) => parse_u64(v),
    None => 5,
};

/// A decimal number at compile time (a bad value fails the build).
const fn parse_u64(s: &str) -> u64 {
    let bytes = s.as_bytes();
    let mut i = 0;
    let mut n = 0u64;
    assert!(!bytes.is_empty(), "NASLINK_POLL_SECS is empty");
    while i < bytes.len() {
        assert!(
            bytes[i].is_ascii_digit(),
            "NASLINK_POLL_SECS is not a number"
        );
        n = n * 10 + (bytes[i] - b'0') as u64;
        i += 1;
    }
    n
}
