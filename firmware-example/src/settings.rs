//! Build-time configuration. Set the variables when building, e.g.
//! `NASLINK_URL=ws://192.168.1.20:5666/websocket?type=main NASLINK_USER=panel
//! NASLINK_PASSWORD=… cargo build …`. Defaults point at the fnOS emulator on
//! the host side of the test TAP link (`192.168.69.1`) with its default
//! `admin`/`admin` account; no real secret is ever in the source.
//!
//! A `wss://` URL (feature `tls`) also needs to know which server to trust:
//! `NASLINK_TLS_PIN_SHA256`, the SHA-256 fingerprint of the NAS's
//! certificate (64 hex digits, colons allowed: what
//! `openssl x509 -noout -fingerprint -sha256` and the emulator print, and
//! what the host CLI's `--pin-sha256` takes), or, for a lab only,
//! `NASLINK_TLS_INSECURE=1` to accept any certificate. With neither the
//! panel refuses to start a `wss://` connection. A malformed value, or
//! both at once, fails the build.

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

/// Which `wss://` server certificate the panel accepts; `None` when
/// neither setting is given.
#[cfg(feature = "tls")]
pub const TLS_TRUST: Option<naslink_embassy::tls::Trust> = {
    use naslink_embassy::tls::{CertificatePin, Trust};
    let pin = match option_env!("NASLINK_TLS_PIN_SHA256") {
        Some(v) if !v.is_empty() => match CertificatePin::from_hex(v) {
            Ok(pin) => Some(pin),
            Err(_) => panic!("NASLINK_TLS_PIN_SHA256 is not 64 hex digits (colons allowed)"),
        },
        _ => None,
    };
    let insecure = match option_env!("NASLINK_TLS_INSECURE") {
        None => false,
        Some(v) if eq(v, "") || eq(v, "0") => false,
        Some(v) if eq(v, "1") => true,
        Some(_) => panic!("NASLINK_TLS_INSECURE is 1 or 0"),
    };
    match (pin, insecure) {
        (Some(_), true) => {
            panic!("set NASLINK_TLS_PIN_SHA256 or NASLINK_TLS_INSECURE=1, not both")
        }
        (Some(pin), false) => Some(Trust::Pinned(pin)),
        (None, true) => Some(Trust::InsecureAnyCertificate),
        (None, false) => None,
    }
};

/// String equality at compile time.
#[cfg(feature = "tls")]
const fn eq(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len() != b.len() {
        return false;
    }
    let mut i = 0;
    while i < a.len() {
        if a[i] != b[i] {
            return false;
        }
        i += 1;
    }
    true
}

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
