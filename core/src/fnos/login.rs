//! Login messages and the credentials a login leaves behind.
//!
//! A password login (and a two-factor answer) travels inside an `encrypted`
//! envelope; `user.authToken` and `user.tokenLogin` are ordinary signed
//! requests. Their answers carry the token, long token, secret and backId
//! kept in [`Credentials`] and the connection's [`BackId`].
#![deny(clippy::indexing_slicing)]

use super::envelope::EnvelopeError;
use super::envelope::LoginKey;
use super::errno::Errno;
use super::reqid::{BackId, Reqid};
use super::response::Reply;
use super::rsa::{MAX_PEM_LEN, RsaError, RsaPublicKey};
use super::sign::Secret;
use crate::InsufficientSize;
use crate::json::write::JsonWriter;
use crate::json::{JsonStr, Value};
use zeroize::Zeroize;

/// Longest `token` kept (real servers send 44 base64 characters).
pub const TOKEN_CAPACITY: usize = 128;
/// Longest `longToken` kept (real servers send 56 base64 characters).
pub const LONG_TOKEN_CAPACITY: usize = 256;
/// Longest `si` kept (17–18 decimal digits on real servers).
pub const SI_CAPACITY: usize = 24;
/// Longest two-factor `accessToken` kept.
pub const ACCESS_TOKEN_CAPACITY: usize = 256;
/// Longest two-factor code accepted (authenticator codes have 6 digits).
pub const TWO_FACTOR_CODE_CAPACITY: usize = 16;
/// Room for a login plaintext (user, password, device names, did, si) plus
/// its AES padding.
pub const LOGIN_PLAINTEXT_CAPACITY: usize = 1024;

/// Largest base64 `secret` field accepted.
const SECRET_FIELD_CAPACITY: usize = 128;

/// How a login was (or is being) attempted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoginMethod {
    /// `user.authToken` with the stored token and secret.
    AuthToken,
    /// `user.tokenLogin` with the stored long token.
    TokenLogin,
    /// `user.login` with the configured password, in an `encrypted` envelope.
    Password,
    /// `user.2fa.loginVerify` with a two-factor code.
    TwoFactor,
}

/// Why a login ended without a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoginFailure {
    /// The server refused (`errno`, or `result` other than `succ`).
    Rejected {
        /// The last method tried.
        method: LoginMethod,
        /// The server's code, if it gave one.
        errno: Option<Errno>,
    },
    /// `util.crypto.getRSAPub` failed.
    KeyExchangeRefused(Option<Errno>),
    /// A login step got no answer before its deadline.
    TimedOut,
    /// No stored token and no password configured.
    NoCredentials,
    /// The NAS refused the long token of a session with no password (one
    /// started from a [`DeviceToken`](super::device_token::DeviceToken)):
    /// the token was revoked or has expired. The session does not try a
    /// password; the device needs a new token.
    DeviceTokenRefused {
        /// The server's code, if it gave one.
        errno: Option<Errno>,
    },
    /// `util.crypto.getRSAPub` returned an unusable key.
    InvalidServerKey(RsaError),
    /// The `secret` could not be decrypted.
    InvalidSecret(EnvelopeError),
    /// A required member was missing or had the wrong type.
    MissingField(&'static str),
    /// A member was longer than its documented capacity.
    FieldTooLong(&'static str),
}

/// What survives a connection: the tokens and the signing secret (all
/// wiped from memory on drop).
#[derive(Clone, Default)]
pub struct Credentials {
    /// `token` for `user.authToken`.
    pub token: heapless::String<TOKEN_CAPACITY>,
    /// `longToken` for `user.tokenLogin` (returned when `stay` is set).
    pub long_token: heapless::String<LONG_TOKEN_CAPACITY>,
    /// The signing secret S.
    pub secret: Option<Secret>,
}

/// Says which credentials are held, never their text.
impl core::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Credentials")
            .field("token", &Redacted(self.token.len()))
            .field("long_token", &Redacted(self.long_token.len()))
            .field("secret", &self.secret)
            .finish()
    }
}

/// A secret's length in place of its text, for `Debug`.
pub(crate) struct Redacted(pub(crate) usize);

impl core::fmt::Debug for Redacted {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        if self.0 == 0 {
            f.write_str("<none>")
        } else {
            write!(f, "<redacted, {} bytes>", self.0)
        }
    }
}

impl Drop for Credentials {
    fn drop(&mut self) {
        wipe(&mut self.token);
        wipe(&mut self.long_token);
    }
}

/// Overwrite a string's bytes with zeros, then empty it.
pub(crate) fn wipe<const N: usize>(s: &mut heapless::String<N>) {
    s.as_mut_str().zeroize();
    s.clear();
}

impl Credentials {
    /// `user.authToken` is possible.
    pub fn can_auth_token(&self) -> bool {
        !self.token.is_empty() && self.secret.is_some()
    }

    /// `user.tokenLogin` is possible. It needs the old secret too: its
    /// answer's `secret` cannot be decrypted, so the old S is kept.
    pub fn can_token_login(&self) -> bool {
        !self.long_token.is_empty() && self.secret.is_some()
    }
}

/// What `util.crypto.getRSAPub` gave.
#[derive(Debug)]
pub struct ServerKey {
    /// The server's RSA key.
    pub key: RsaPublicKey,
    /// This connection's session id, kept as text.
    pub si: heapless::String<SI_CAPACITY>,
}

/// Read the `pub` PEM and `si` from a `getRSAPub` answer.
pub fn read_server_key(reply: &Reply<'_>) -> Result<ServerKey, LoginFailure> {
    let pem = reply
        .get("pub")
        .and_then(|v| v.as_str())
        .ok_or(LoginFailure::MissingField("pub"))?;
    let mut buf = [0u8; MAX_PEM_LEN];
    let pem = pem
        .decode_into(&mut buf)
        .map_err(|_| LoginFailure::FieldTooLong("pub"))?;
    let key = RsaPublicKey::from_pem(pem).map_err(LoginFailure::InvalidServerKey)?;
    let si = read_si(reply.get("si"))?;
    Ok(ServerKey { key, si })
}

fn read_si(v: Option<Value<'_>>) -> Result<heapless::String<SI_CAPACITY>, LoginFailure> {
    let v = v.ok_or(LoginFailure::MissingField("si"))?;
    if let Some(s) = v.as_str() {
        return s
            .decode_to_string()
            .map_err(|_| LoginFailure::FieldTooLong("si"));
    }
    // A numeric si is kept as its digits, so it goes back out as a string.
    let digits = v.as_number_text().ok_or(LoginFailure::MissingField("si"))?;
    heapless::String::try_from(digits).map_err(|_| LoginFailure::FieldTooLong("si"))
}

/// What a successful login answer granted.
// Returned once per login and moved straight into the session, never stored
// in bulk, so the size difference between variants costs nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub enum Granted {
    /// Logged in.
    Session {
        /// `uid`, if sent.
        uid: Option<u64>,
        /// `admin`, if sent.
        admin: Option<bool>,
        /// The connection's backId, if sent.
        back_id: Option<BackId>,
    },
    /// Two-factor authentication is required; answer with a code.
    TwoFactor {
        /// The `accessToken` to send back with the code.
        access_token: heapless::String<ACCESS_TOKEN_CAPACITY>,
    },
}

fn string_field<const N: usize>(
    reply: &Reply<'_>,
    name: &'static str,
) -> Result<Option<heapless::String<N>>, LoginFailure> {
    match reply.get(name).and_then(|v| v.as_str()) {
        None => Ok(None),
        Some(s) => s
            .decode_to_string()
            .map(Some)
            .map_err(|_| LoginFailure::FieldTooLong(name)),
    }
}

fn decode_secret(s: JsonStr<'_>, key: &LoginKey) -> Result<Secret, LoginFailure> {
    let mut buf = [0u8; SECRET_FIELD_CAPACITY];
    let text = s
        .decode_into(&mut buf)
        .map_err(|_| LoginFailure::FieldTooLong("secret"))?;
    key.decrypt_secret(text.as_bytes())
        .map_err(LoginFailure::InvalidSecret)
}

/// Read a successful answer to `user.login`, `user.2fa.loginVerify`,
/// `user.authToken` or `user.tokenLogin` and update `creds`.
///
/// `login_key` is the envelope key (password and two-factor logins only);
/// without it a `secret` member is ignored and the old S stays.
pub fn read_granted(
    reply: &Reply<'_>,
    login_key: Option<&LoginKey>,
    creds: &mut Credentials,
) -> Result<Granted, LoginFailure> {
    let token = string_field::<TOKEN_CAPACITY>(reply, "token")?;
    let secret = reply.get("secret").and_then(|v| v.as_str());
    if let Some(access) = string_field::<ACCESS_TOKEN_CAPACITY>(reply, "accessToken")?
        && token.is_none()
        && secret.is_none()
    {
        return Ok(Granted::TwoFactor {
            access_token: access,
        });
    }
    let long_token = string_field::<LONG_TOKEN_CAPACITY>(reply, "longToken")?;
    let new_secret = match (secret, login_key) {
        (Some(s), Some(key)) => Some(decode_secret(s, key)?),
        (None, Some(_)) => return Err(LoginFailure::MissingField("secret")),
        (_, None) => None,
    };
    let back_id = match reply.get("backId").and_then(|v| v.as_str()) {
        None => None,
        Some(s) => Some(
            s.as_unescaped()
                .and_then(BackId::parse)
                .ok_or(LoginFailure::MissingField("backId"))?,
        ),
    };
    if let Some(t) = token {
        creds.token = t;
    }
    if let Some(t) = long_token {
        creds.long_token = t;
    }
    if let Some(s) = new_secret {
        creds.secret = Some(s);
    }
    Ok(Granted::Session {
        uid: reply.get("uid").and_then(|v| v.as_u64()),
        admin: reply.get("admin").and_then(|v| v.as_bool()),
        back_id,
    })
}

/// The identity fields a login sends.
#[derive(Debug, Clone, Copy)]
pub struct Device<'c> {
    /// `deviceType`, e.g. `Browser`.
    pub device_type: &'c str,
    /// `deviceName`, e.g. `Windows-Google Chrome`.
    pub device_name: &'c str,
    /// `did`, a stable device id (newer clients send it).
    pub did: Option<&'c str>,
    /// `stay`: ask for a `longToken`.
    pub stay: bool,
}

/// The `user.login` plaintext in web UI order:
/// `{"reqid","user","password","deviceType","deviceName",["did",]"stay","req","si"}`.
pub fn write_password_login(
    reqid: &Reqid,
    user: &str,
    password: &str,
    device: &Device<'_>,
    si: &str,
    out: &mut [u8],
) -> Result<usize, InsufficientSize> {
    let mut w = JsonWriter::new(out, 0);
    w.begin_object()
        .key("reqid")
        .string(reqid.as_str())
        .key("user")
        .string(user)
        .key("password")
        .string(password)
        .key("deviceType")
        .string(device.device_type)
        .key("deviceName")
        .string(device.device_name);
    if let Some(did) = device.did {
        w.key("did").string(did);
    }
    w.key("stay")
        .bool(device.stay)
        .key("req")
        .string("user.login")
        .key("si")
        .string(si)
        .end_object();
    w.finish()
}

/// The `user.2fa.loginVerify` plaintext.
pub fn write_two_factor_verify(
    reqid: &Reqid,
    code: &str,
    trusted_device: bool,
    access_token: &str,
    device: &Device<'_>,
    si: &str,
    out: &mut [u8],
) -> Result<usize, InsufficientSize> {
    let mut w = JsonWriter::new(out, 0);
    w.begin_object()
        .key("reqid")
        .string(reqid.as_str())
        .key("code")
        .string(code)
        .key("isTrustedDevice")
        .bool(trusted_device)
        .key("accessToken")
        .string(access_token)
        .key("stay")
        .bool(device.stay)
        .key("deviceName")
        .string(device.device_name)
        .key("deviceType")
        .string(device.device_type);
    if let Some(did) = device.did {
        w.key("did").string(did);
    }
    w.key("si")
        .string(si)
        .key("req")
        .string("user.2fa.loginVerify")
        .end_object();
    w.finish()
}

#[cfg(test)]
// Tests index fixtures they built themselves.
#[allow(clippy::indexing_slicing)]
mod tests {
    extern crate std;
    use super::*;
    use crate::fnos::response::Message;
    use std::format;

    fn reply(text: &str) -> Reply<'_> {
        match Message::parse(text.as_bytes()).unwrap() {
            Message::Reply(r) => r,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn two_factor_challenge_is_access_token_without_token_or_secret() {
        let r =
            reply(r#"{"accessToken":"a\/b","isTwofaEnforced":true,"result":"succ","reqid":"x"}"#);
        let mut creds = Credentials::default();
        match read_granted(&r, None, &mut creds).unwrap() {
            Granted::TwoFactor { access_token } => assert_eq!(access_token, "a/b"),
            other => panic!("{other:?}"),
        }
        assert!(creds.token.is_empty());
    }

    #[test]
    fn token_login_answer_keeps_the_old_secret() {
        let mut creds = Credentials::default();
        creds.secret = Secret::new(&[9; 16]);
        let r = reply(
            r#"{"uid":7,"token":"T\/1","secret":"ignored","backId":"6915841b00000044","result":"succ","reqid":"x"}"#,
        );
        match read_granted(&r, None, &mut creds).unwrap() {
            Granted::Session { uid, back_id, .. } => {
                assert_eq!(uid, Some(7));
                assert_eq!(back_id, BackId::parse("6915841b00000044"));
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(creds.token, "T/1");
        assert_eq!(creds.secret.as_ref().unwrap().as_bytes(), &[9; 16]);
    }

    #[test]
    fn wiped_tokens_are_empty() {
        let mut creds = Credentials::default();
        creds.token.push_str("secret-token").unwrap();
        wipe(&mut creds.token);
        assert!(creds.token.is_empty());
        creds.token.push_str("ab").unwrap();
        assert_eq!(creds.token, "ab");
    }

    #[test]
    fn numeric_si_is_kept_as_its_digits() {
        assert_eq!(
            read_si(Some(Value::parse(b"72057615512764624").unwrap())).unwrap(),
            "72057615512764624"
        );
        assert_eq!(read_si(None), Err(LoginFailure::MissingField("si")));
    }

    #[test]
    fn over_long_tokens_are_refused_by_name() {
        let long = "x".repeat(TOKEN_CAPACITY + 1);
        let text = format!(r#"{{"token":"{long}","result":"succ","reqid":"x"}}"#);
        let mut creds = Credentials::default();
        assert_eq!(
            read_granted(&reply(&text), None, &mut creds).unwrap_err(),
            LoginFailure::FieldTooLong("token")
        );
    }
}
