//! Credentials, the token, and when to refresh it.
//!
//! The token is a JWT whose `exp` is a float epoch second on the *server's*
//! clock. The session learns the token's lifetime without trusting the
//! device clock when it can: `exp − timestamp` of the login response (both
//! server clock). Without `timestamp` it uses the caller's wall clock
//! ([`Session::set_unix_time`](super::Session::set_unix_time)); without
//! either it assumes [`Config::assumed_token_lifetime`](super::Config).
//! The refresh is scheduled at a configurable share of that lifetime.
#![deny(clippy::indexing_slicing)]

use zeroize::Zeroize;

use super::status::Status;
use crate::time::{Duration, Instant};

/// Longest username kept (bytes).
pub const MAX_USERNAME: usize = 64;
/// Longest password kept for re-login (bytes).
pub const MAX_PASSWORD: usize = 128;
/// Longest token kept (bytes). A CFMS HS256 JWT for a 64-byte username is
/// about 250 bytes; 512 leaves room for longer claims.
pub const MAX_TOKEN: usize = 512;

/// A string in a fixed buffer, wiped when replaced or dropped.
pub(crate) struct Bounded<const N: usize> {
    buf: [u8; N],
    len: usize,
}

impl<const N: usize> Bounded<N> {
    pub(crate) const fn new() -> Self {
        Bounded {
            buf: [0; N],
            len: 0,
        }
    }

    pub(crate) fn set(&mut self, s: &str) -> Result<(), usize> {
        if s.len() > N {
            return Err(N);
        }
        self.clear();
        self.buf[..s.len()].copy_from_slice(s.as_bytes());
        self.len = s.len();
        Ok(())
    }

    /// Room to decode into; call [`Bounded::commit`] with the length used.
    pub(crate) fn spare(&mut self) -> &mut [u8] {
        self.clear();
        &mut self.buf
    }

    pub(crate) fn commit(&mut self, len: usize) {
        self.len = len.min(N);
    }

    pub(crate) fn as_str(&self) -> &str {
        core::str::from_utf8(&self.buf[..self.len]).unwrap_or("")
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub(crate) fn clear(&mut self) {
        self.buf.zeroize();
        self.len = 0;
    }
}

impl<const N: usize> Drop for Bounded<N> {
    fn drop(&mut self) {
        self.buf.zeroize();
    }
}

impl<const N: usize> Clone for Bounded<N> {
    fn clone(&self) -> Self {
        Bounded {
            buf: self.buf,
            len: self.len,
        }
    }
}

/// The account a [`Session`](super::Session) logs in with by itself after
/// `server_info` (see [`Config::login`](super::Config::login)). Kept in
/// fixed buffers that are wiped when dropped; `Debug` shows neither the
/// username nor the password.
#[derive(Clone)]
pub struct Credentials {
    pub(crate) username: Bounded<MAX_USERNAME>,
    pub(crate) password: Bounded<MAX_PASSWORD>,
}

/// A username or password longer than its fixed buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CredentialsTooLong {
    /// `"username"` or `"password"`.
    pub field: &'static str,
    /// Its capacity in bytes ([`MAX_USERNAME`], [`MAX_PASSWORD`]).
    pub max: usize,
}

impl Credentials {
    /// Copy a username and password into wiped-on-drop buffers.
    pub fn new(username: &str, password: &str) -> Result<Self, CredentialsTooLong> {
        let mut c = Credentials {
            username: Bounded::new(),
            password: Bounded::new(),
        };
        let too_long = |field| move |max| CredentialsTooLong { field, max };
        c.username.set(username).map_err(too_long("username"))?;
        c.password.set(password).map_err(too_long("password"))?;
        Ok(c)
    }
}

impl core::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Credentials")
            .field("username", &"<redacted>")
            .field("password", &"<redacted>")
            .finish()
    }
}

/// The second factor the server asks for after a 202.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TwoFactorMethod {
    /// A TOTP code (±1 step accepted) or a one-time backup code.
    Totp,
    /// A method this client does not know by name.
    Other,
}

/// Why a login did not succeed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoginError {
    /// 401 `Invalid credentials` (answered after a deliberate 3 s delay).
    InvalidCredentials,
    /// 401 after a wrong TOTP or backup code.
    InvalidTwoFactorCode,
    /// 403 `Password should be changed because it's expired` (protocol 13: 4002).
    ///
    /// How to fix: change the password with
    /// [`Session::set_passwd`](super::Session::set_passwd)`(username, old, new)`,
    /// which sends `set_passwd` with an empty envelope username and token
    /// as the server requires, then log in with the new password.
    PasswordExpired,
    /// 999: the server is in lockdown.
    Lockdown,
    /// The server sent a token longer than [`MAX_TOKEN`] or without `token`.
    BadToken,
    /// Any other refusal.
    Rejected(Status),
}

impl core::fmt::Display for LoginError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            LoginError::InvalidCredentials => f.write_str("invalid username or password"),
            LoginError::InvalidTwoFactorCode => f.write_str("invalid two-factor code"),
            LoginError::PasswordExpired => f.write_str(
                "password expired: change it with set_passwd(username, old, new) sent with an empty \
                 envelope username and token (Session::set_passwd), then log in with the new password",
            ),
            LoginError::Lockdown => f.write_str("server is in lockdown"),
            LoginError::BadToken => f.write_str("login response carries no usable token"),
            LoginError::Rejected(s) => write!(f, "login refused with code {}", s.code()),
        }
    }
}

/// Login state: who, the token, and the refresh schedule.
pub(crate) struct Auth {
    pub(crate) username: Bounded<MAX_USERNAME>,
    pub(crate) password: Bounded<MAX_PASSWORD>,
    pub(crate) token: Bounded<MAX_TOKEN>,
    pub(crate) logged_in: bool,
    pub(crate) refresh_at: Option<Instant>,
    pub(crate) awaiting_two_factor: bool,
}

impl Auth {
    pub(crate) const fn new() -> Self {
        Auth {
            username: Bounded::new(),
            password: Bounded::new(),
            token: Bounded::new(),
            logged_in: false,
            refresh_at: None,
            awaiting_two_factor: false,
        }
    }
}

/// Lifetime of a token from its `exp`, preferring the server's own clock.
pub(crate) fn token_lifetime(
    now: Instant,
    exp: Option<f64>,
    server_time: Option<f64>,
    unix_anchor: Option<(Instant, f64)>,
    assumed: Duration,
) -> Duration {
    let secs = match (exp, server_time, unix_anchor) {
        (Some(exp), Some(ts), _) => exp - ts,
        (Some(exp), None, Some((at, unix))) => {
            exp - (unix + (now - at).total_millis() as f64 / 1000.0)
        }
        _ => return assumed,
    };
    if secs.is_finite() && secs > 0.0 {
        Duration::from_millis((secs * 1000.0) as u64)
    } else {
        Duration::ZERO
    }
}

/// When to refresh: `percent` of the lifetime after `now`.
pub(crate) fn refresh_instant(now: Instant, lifetime: Duration, percent: u8) -> Instant {
    let pct = u64::from(percent.min(100));
    now + Duration::from_millis(
        lifetime.total_millis() / 100 * pct + lifetime.total_millis() % 100 * pct / 100,
    )
}

#[cfg(test)]
// Tests index fixtures they built themselves.
#[allow(clippy::indexing_slicing)]
mod tests {
    use super::*;

    #[test]
    fn lifetime_prefers_server_clock_then_caller_clock_then_assumption() {
        let now = Instant::from_secs(100);
        let assumed = Duration::from_secs(3600);
        let l = token_lifetime(
            now,
            Some(1795308447.4919195),
            Some(1795304847.4919195),
            None,
            assumed,
        );
        assert_eq!(l.total_millis() / 1000, 3600);
        let l = token_lifetime(
            now,
            Some(2000.0),
            None,
            Some((Instant::from_secs(90), 1000.0)),
            assumed,
        );
        assert_eq!(l, Duration::from_secs(990));
        assert_eq!(token_lifetime(now, None, None, None, assumed), assumed);
        assert_eq!(
            token_lifetime(now, Some(5.0), Some(10.0), None, assumed),
            Duration::ZERO
        );
    }

    #[test]
    fn refresh_is_scheduled_at_the_configured_share_of_the_lifetime() {
        let at = refresh_instant(Instant::from_secs(10), Duration::from_secs(3600), 80);
        assert_eq!(at, Instant::from_secs(10 + 2880));
    }

    #[test]
    fn bounded_strings_refuse_overlong_values() {
        let mut b: Bounded<4> = Bounded::new();
        assert_eq!(b.set("hello"), Err(4));
        b.set("abc").unwrap();
        assert_eq!(b.as_str(), "abc");
    }
}
