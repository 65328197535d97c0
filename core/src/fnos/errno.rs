//! fnOS `errno` codes.
//!
//! Failures carry a numeric `errno` (`{"errno":4352,"result":"fail",...}`).
//! Every code the protocol notes name has its own variant and an English
//! message; other codes keep their number in [`Errno::Other`]. The server's
//! Chinese wording is not recorded in the protocol notes, so none is offered.

use core::fmt;

/// A failure code from the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Errno {
    /// 4096: the server hit an internal error.
    InternalError,
    /// 4352: permission denied (for example an admin-only command).
    PermissionDenied,
    /// 8192: a parameter is missing or malformed (also: `si` sent as a number).
    BadParameter,
    /// 65534: the request signature did not verify.
    SignatureCheckFailed,
    /// 131072: wrong user name or password.
    WrongUserOrPassword,
    /// 135168: the credential or token is invalid or has expired.
    InvalidCredential,
    /// 10000002: the server does not know the command.
    UnknownMethod,
    /// 102570104: wrong two-factor code.
    WrongTwoFactorCode,
    /// 102570109: the two-factor access token has expired; log in again.
    TwoFactorAccessTokenExpired,
    /// Any other code.
    Other(u32),
}

impl Errno {
    /// The variant for a numeric code.
    pub const fn from_code(code: u32) -> Self {
        match code {
            4096 => Errno::InternalError,
            4352 => Errno::PermissionDenied,
            8192 => Errno::BadParameter,
            65534 => Errno::SignatureCheckFailed,
            131072 => Errno::WrongUserOrPassword,
            135168 => Errno::InvalidCredential,
            10000002 => Errno::UnknownMethod,
            102570104 => Errno::WrongTwoFactorCode,
            102570109 => Errno::TwoFactorAccessTokenExpired,
            other => Errno::Other(other),
        }
    }

    /// The numeric code as sent by the server.
    pub const fn code(self) -> u32 {
        match self {
            Errno::InternalError => 4096,
            Errno::PermissionDenied => 4352,
            Errno::BadParameter => 8192,
            Errno::SignatureCheckFailed => 65534,
            Errno::WrongUserOrPassword => 131072,
            Errno::InvalidCredential => 135168,
            Errno::UnknownMethod => 10000002,
            Errno::WrongTwoFactorCode => 102570104,
            Errno::TwoFactorAccessTokenExpired => 102570109,
            Errno::Other(code) => code,
        }
    }

    /// A short English description.
    pub const fn message(self) -> &'static str {
        match self {
            Errno::InternalError => "internal server error",
            Errno::PermissionDenied => "permission denied (administrators only)",
            Errno::BadParameter => "bad parameter",
            Errno::SignatureCheckFailed => "request signature check failed",
            Errno::WrongUserOrPassword => "wrong user name or password",
            Errno::InvalidCredential => "invalid or expired credential or token",
            Errno::UnknownMethod => "unknown method",
            Errno::WrongTwoFactorCode => "wrong two-factor authentication code",
            Errno::TwoFactorAccessTokenExpired => "two-factor access token expired",
            Errno::Other(_) => "unrecognised error",
        }
    }
}

impl fmt::Display for Errno {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (errno {})", self.message(), self.code())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_documented_errno_round_trips_through_its_variant() {
        for code in [
            4096, 4352, 8192, 65534, 131072, 135168, 10000002, 102570104, 102570109,
        ] {
            let e = Errno::from_code(code);
            assert!(!matches!(e, Errno::Other(_)), "{code} has a variant");
            assert_eq!(e.code(), code);
        }
        assert_eq!(Errno::from_code(7), Errno::Other(7));
        assert_eq!(Errno::from_code(7).code(), 7);
    }
}
