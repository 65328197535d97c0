//! Response codes of the CFMS envelope.
#![deny(clippy::indexing_slicing)]

/// The `code` of a CFMS response, typed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Status {
    /// 200: success.
    Ok,
    /// 202: two-factor login required (protocol ≥ 5).
    TwoFactorRequired,
    /// 400: the request was malformed or refused (see the validator details).
    BadRequest,
    /// 401: unauthenticated (wrong password, rejected token, wrong 2FA code).
    Unauthorized,
    /// 403: forbidden (no permission, rejected token, or an expired password).
    Forbidden,
    /// 404: not found.
    NotFound,
    /// 409: conflict.
    Conflict,
    /// 429: too many failed logins for this user from this address
    /// (protocol 13's login throttle; 15 minutes).
    TooManyAttempts,
    /// 500: server error.
    ServerError,
    /// 999: the server is in lockdown and refused this action.
    Lockdown,
    /// 1001 (protocol 13): replay protection refused the request, a stale
    /// or future timestamp or a reused nonce
    /// ([`p13::replay::Replay`](super::p13::replay::Replay) tells which).
    Replay,
    /// 4001 (protocol 13): the password no longer meets the policy and must
    /// be changed before logging in (`set_passwd`).
    PasswordPolicy,
    /// 4002 (protocol 13): the password has expired (protocol 3–5 answered
    /// 403).
    PasswordExpired,
    /// 4003 (protocol 13): the account is not active.
    AccountInactive,
    /// Any other code.
    Other(i64),
}

impl Status {
    /// The status for a numeric `code`.
    pub fn from_code(code: i64) -> Status {
        match code {
            200 => Status::Ok,
            202 => Status::TwoFactorRequired,
            400 => Status::BadRequest,
            401 => Status::Unauthorized,
            403 => Status::Forbidden,
            404 => Status::NotFound,
            409 => Status::Conflict,
            429 => Status::TooManyAttempts,
            500 => Status::ServerError,
            999 => Status::Lockdown,
            1001 => Status::Replay,
            4001 => Status::PasswordPolicy,
            4002 => Status::PasswordExpired,
            4003 => Status::AccountInactive,
            other => Status::Other(other),
        }
    }

    /// The numeric code.
    pub fn code(self) -> i64 {
        match self {
            Status::Ok => 200,
            Status::TwoFactorRequired => 202,
            Status::BadRequest => 400,
            Status::Unauthorized => 401,
            Status::Forbidden => 403,
            Status::NotFound => 404,
            Status::Conflict => 409,
            Status::TooManyAttempts => 429,
            Status::ServerError => 500,
            Status::Lockdown => 999,
            Status::Replay => 1001,
            Status::PasswordPolicy => 4001,
            Status::PasswordExpired => 4002,
            Status::AccountInactive => 4003,
            Status::Other(c) => c,
        }
    }

    /// Only 200 is success; 202 asks for more.
    pub fn is_ok(self) -> bool {
        self == Status::Ok
    }
}

#[cfg(test)]
// Tests index fixtures they built themselves.
#[allow(clippy::indexing_slicing)]
mod tests {
    use super::*;

    #[test]
    fn every_documented_code_round_trips() {
        for code in [
            200, 202, 400, 401, 403, 404, 409, 429, 500, 999, 1001, 4001, 4002, 4003, 418,
        ] {
            assert_eq!(Status::from_code(code).code(), code);
        }
        assert_eq!(Status::from_code(999), Status::Lockdown);
        assert_eq!(Status::from_code(418), Status::Other(418));
        assert_eq!(Status::from_code(1001), Status::Replay);
        assert_eq!(Status::from_code(4003), Status::AccountInactive);
    }
}
