//! fnOS `errno` codes.
//!
//! Failures carry a numeric `errno` (`{"errno":4352,"result":"fail",...}`).
//! Every code the protocol notes name has its own variant and an English
//! message; other codes keep their number in [`Errno::Other`]. The file and
//! account codes a client meets on the HTTP and `file.*` side (4100 not
//! found … 4386 no space) come from a public client's table, which also
//! gives the server's Chinese wording: [`Errno::chinese`] has it where it
//! is known.
#![deny(clippy::indexing_slicing)]

use core::fmt;

/// A failure code from the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Errno {
    /// 4096: the server hit an internal error.
    InternalError,
    /// 4352: permission denied (for example an admin-only command).
    PermissionDenied,
    /// 4100: no such file or folder.
    NotFound,
    /// 4101: the file name or path is not valid.
    InvalidPath,
    /// 4102: a file or folder of that name already exists.
    AlreadyExists,
    /// 4128: the server hit an I/O error.
    IoError,
    /// 4224: not logged in.
    NotLoggedIn,
    /// 4386: not enough free space.
    NoSpace,
    /// 131073: no user of that name.
    NoSuchUser,
    /// 100000002: a parameter is wrong (newer handlers' code).
    InvalidArgument,
    /// 100000006: the server is busy; try again later.
    ServerBusy,
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
            4100 => Errno::NotFound,
            4101 => Errno::InvalidPath,
            4102 => Errno::AlreadyExists,
            4128 => Errno::IoError,
            4224 => Errno::NotLoggedIn,
            4386 => Errno::NoSpace,
            131073 => Errno::NoSuchUser,
            100000002 => Errno::InvalidArgument,
            100000006 => Errno::ServerBusy,
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
            Errno::NotFound => 4100,
            Errno::InvalidPath => 4101,
            Errno::AlreadyExists => 4102,
            Errno::IoError => 4128,
            Errno::NotLoggedIn => 4224,
            Errno::NoSpace => 4386,
            Errno::NoSuchUser => 131073,
            Errno::InvalidArgument => 100000002,
            Errno::ServerBusy => 100000006,
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
            Errno::NotFound => "no such file or folder",
            Errno::InvalidPath => "invalid file name or path",
            Errno::AlreadyExists => "a file or folder of that name already exists",
            Errno::IoError => "I/O error on the server",
            Errno::NotLoggedIn => "not logged in",
            Errno::NoSpace => "not enough free space",
            Errno::NoSuchUser => "no such user",
            Errno::InvalidArgument => "invalid argument",
            Errno::ServerBusy => "the server is busy, try again later",
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

    /// The server's own (Chinese) wording, where it is known.
    pub const fn chinese(self) -> Option<&'static str> {
        Some(match self {
            Errno::PermissionDenied => "权限不足",
            Errno::BadParameter | Errno::InvalidArgument => "参数错误",
            Errno::SignatureCheckFailed => "验签失败",
            Errno::WrongUserOrPassword => "用户名或密码错误",
            Errno::InvalidCredential => "无效的凭证",
            Errno::NotFound => "文件或目录不存在",
            Errno::InvalidPath => "无效的文件名或路径",
            Errno::AlreadyExists => "文件或目录已存在",
            Errno::IoError => "I/O错误",
            Errno::NotLoggedIn => "没有登录",
            Errno::NoSpace => "可用容量不足",
            Errno::NoSuchUser => "用户名不存在",
            Errno::ServerBusy => "服务器开小差，请稍后重试",
            _ => return None,
        })
    }
}

impl fmt::Display for Errno {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (errno {})", self.message(), self.code())
    }
}

#[cfg(test)]
// Tests index fixtures they built themselves.
#[allow(clippy::indexing_slicing)]
mod tests {
    use super::*;

    #[test]
    fn every_documented_errno_round_trips_through_its_variant() {
        for code in [
            4096, 4352, 8192, 65534, 131072, 135168, 10000002, 102570104, 102570109, 4100, 4101,
            4102, 4128, 4224, 4386, 131073, 100000002, 100000006,
        ] {
            let e = Errno::from_code(code);
            assert!(!matches!(e, Errno::Other(_)), "{code} has a variant");
            assert_eq!(e.code(), code);
            assert_ne!(e.message(), "unrecognised error");
        }
        assert_eq!(Errno::from_code(4100).chinese(), Some("文件或目录不存在"));
        assert_eq!(Errno::from_code(4096).chinese(), None);
        assert_eq!(Errno::from_code(7), Errno::Other(7));
        assert_eq!(Errno::from_code(7).code(), 7);
    }
}
