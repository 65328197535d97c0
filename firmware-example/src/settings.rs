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
//!
//! fnOS only: `NASLINK_TOKEN`, a device token made by
//! `naslink login --device-token`, replaces the password: the panel logs
//! in with `user.tokenLogin` and never holds the password (the token's user
//! replaces `NASLINK_USER`). Setting both `NASLINK_TOKEN` and
//! `NASLINK_PASSWORD` (non-empty) fails the build, as does a token that does
//! not start with `nlt1.`; a token damaged in copying stops the firmware at
//! start-up, naming the fault. When the NAS refuses the token (revoked or
//! expired) the panel shows `token refused`.

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

/// Password (unused when [`TOKEN`] is set).
pub const PASSWORD: &str = match option_env!("NASLINK_PASSWORD") {
    Some(v) => v,
    None => "admin",
};

/// The fnOS device token, if the build was given one (empty counts as unset).
pub const TOKEN: Option<&str> = {
    let token = match option_env!("NASLINK_TOKEN") {
        Some(v) if !v.is_empty() => Some(v),
        _ => None,
    };
    let password = match option_env!("NASLINK_PASSWORD") {
        Some(v) => !v.is_empty(),
        None => false,
    };
    if let Some(t) = token {
        assert!(
            !password,
            "set NASLINK_TOKEN or NASLINK_PASSWORD, not both: the token replaces the password"
        );
        assert!(
            starts_with(t, "nlt1."),
            "NASLINK_TOKEN is not a device token (`naslink login --device-token` prints one starting with nlt1.)"
        );
    }
    token
};

/// Prefix test at compile time.
const fn starts_with(s: &str, prefix: &str) -> bool {
    let (s, p) = (s.as_bytes(), prefix.as_bytes());
    if s.len() < p.len() {
        return false;
    }
    let mut i = 0;
    while i < p.len() {
        if s[i] != p[i] {
            return false;
        }
        i += 1;
    }
    true
}

/// CFMS only: `NASLINK_CFMS_PROTOCOL` pins the server's protocol version
/// (3, 4, 5 or 13; another version is refused by name at login). Unset or
/// empty: the panel probes with protocol 13 and falls back to text (3–5)
/// when the server closes the probe.
#[cfg_attr(not(feature = "cfms"), allow(dead_code))]
pub const CFMS_PROTOCOL: Option<u32> = match option_env!("NASLINK_CFMS_PROTOCOL") {
    Some(v) if !v.is_empty() => Some(parse_u64(v) as u32),
    _ => None,
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
