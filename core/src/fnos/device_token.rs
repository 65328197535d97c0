//! Device tokens: what a device needs to log in without the password.
//!
//! `user.tokenLogin {token: longToken, deviceType, deviceName, did, si}` is
//! a *signed* request, so a fresh device needs both the `longToken` of a
//! `stay` login and that login's secret S. A [`DeviceToken`] carries the
//! two, with the user name and the `did` the login was made with, as one
//! line of text that survives copy and paste:
//!
//! ```text
//! nlt1.<base64url, no padding, of the payload>
//!
//! payload = user_len:u8 user  did_len:u8 did  long_len:u8 longToken
//!           secret_len:u8 S  check:4
//! check   = the first 4 bytes of SHA-256(everything before it)
//! ```
//!
//! The `nlt1.` prefix names the format's version; a later layout gets a new
//! prefix. The check catches a token damaged in transit (a character lost
//! or changed), so the device says "this token is damaged" instead of "the
//! NAS refused it". It is not a signature: whoever holds the text holds the
//! login, so treat the token like a password.
//!
//! A session started with [`Session::from_device_token`](super::Session::from_device_token)
//! has no password: when the NAS refuses the long token (revoked or
//! expired) the login ends with
//! [`LoginFailure::DeviceTokenRefused`](super::LoginFailure::DeviceTokenRefused)
//! and never tries a password.
#![deny(clippy::indexing_slicing)]

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};
use zeroize::Zeroize;

use super::login::{Credentials, LONG_TOKEN_CAPACITY, Redacted, wipe};
use super::sign::{SECRET_CAPACITY, Secret};
use crate::InsufficientSize;

/// The text every version-1 device token starts with.
pub const PREFIX: &str = "nlt1.";
/// Longest user name a device token holds.
pub const USER_CAPACITY: usize = 64;
/// Longest `did` a device token holds.
pub const DID_CAPACITY: usize = 64;
/// Longest long token a device token holds: its length is one byte.
pub const MAX_LONG_TOKEN: usize = if LONG_TOKEN_CAPACITY < 255 {
    LONG_TOKEN_CAPACITY
} else {
    255
};
/// Bytes of the SHA-256 check at the end of the payload.
const CHECK_LEN: usize = 4;
/// The largest payload: four length bytes, the four fields, the check.
const MAX_PAYLOAD: usize =
    4 + USER_CAPACITY + DID_CAPACITY + MAX_LONG_TOKEN + SECRET_CAPACITY + CHECK_LEN;
/// The longest device token text ([`PREFIX`] and the base64 of the largest
/// payload). Longer text is refused before it is decoded.
pub const MAX_TEXT_LEN: usize = PREFIX.len() + (MAX_PAYLOAD * 4).div_ceil(3);

/// Why a text is not a device token, or a login cannot become one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeviceTokenError {
    /// The text does not start with `nlt1.` (another version, or not a
    /// device token at all).
    UnknownFormat,
    /// The text is longer than [`MAX_TEXT_LEN`].
    TooLong,
    /// The text after the prefix is not unpadded base64url.
    NotBase64,
    /// The payload ends inside a field.
    Truncated,
    /// Bytes follow the check.
    TrailingBytes,
    /// The check does not match: the token was damaged when copied.
    Damaged,
    /// A field is longer than this format or the core holds.
    FieldTooLong(&'static str),
    /// A field that must not be empty is (`long token`, `secret`).
    MissingField(&'static str),
}

impl core::fmt::Display for DeviceTokenError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::UnknownFormat => f.write_str("not a naslink device token (it starts with nlt1.)"),
            Self::TooLong => f.write_str("the device token is too long"),
            Self::NotBase64 => f.write_str("the device token is not base64url after nlt1."),
            Self::Truncated => f.write_str("the device token is cut short"),
            Self::TrailingBytes => f.write_str("the device token has bytes after its end"),
            Self::Damaged => f.write_str("the device token is damaged (its check does not match)"),
            Self::FieldTooLong(field) => write!(f, "the device token's {field} is too long"),
            Self::MissingField(field) => write!(f, "the device token has no {field}"),
        }
    }
}

/// A long token, its secret S, the user and the `did`: a password-free
/// login for one device. Wiped from memory on drop; `Debug` shows lengths
/// only.
#[derive(Clone)]
pub struct DeviceToken {
    user: heapless::String<USER_CAPACITY>,
    did: heapless::String<DID_CAPACITY>,
    long_token: heapless::String<MAX_LONG_TOKEN>,
    secret: Secret,
}

impl core::fmt::Debug for DeviceToken {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("DeviceToken")
            .field("user", &self.user)
            .field("did", &self.did)
            .field("long_token", &Redacted(self.long_token.len()))
            .field("secret", &self.secret)
            .finish()
    }
}

impl Drop for DeviceToken {
    fn drop(&mut self) {
        wipe(&mut self.long_token);
    }
}

fn bounded<const N: usize>(
    text: &str,
    field: &'static str,
) -> Result<heapless::String<N>, DeviceTokenError> {
    heapless::String::try_from(text).map_err(|_| DeviceTokenError::FieldTooLong(field))
}

impl DeviceToken {
    /// The device token of a `stay` login: `creds` must hold a long token
    /// and the secret (what [`Session::credentials`](super::Session::credentials)
    /// holds after a password login with `stay` on). `did` is the one the
    /// login sent, if any; the device must send the same.
    pub fn new(
        user: &str,
        did: Option<&str>,
        creds: &Credentials,
    ) -> Result<Self, DeviceTokenError> {
        if creds.long_token.is_empty() {
            return Err(DeviceTokenError::MissingField("long token"));
        }
        let secret = creds
            .secret
            .clone()
            .ok_or(DeviceTokenError::MissingField("secret"))?;
        Ok(DeviceToken {
            user: bounded(user, "user")?,
            did: bounded(did.unwrap_or(""), "did")?,
            long_token: bounded(&creds.long_token, "long token")?,
            secret,
        })
    }

    /// The user name the token was made for.
    pub fn user(&self) -> &str {
        &self.user
    }

    /// The `did` the login sent, if any.
    pub fn did(&self) -> Option<&str> {
        (!self.did.is_empty()).then_some(self.did.as_str())
    }

    /// The credentials a session logs in with: the long token and S (no
    /// short token, so the first login is `user.tokenLogin`).
    pub fn credentials(&self) -> Credentials {
        let mut creds = Credentials::default();
        // Both fit: MAX_LONG_TOKEN <= LONG_TOKEN_CAPACITY.
        let _ = creds.long_token.push_str(&self.long_token);
        creds.secret = Some(self.secret.clone());
        creds
    }

    /// Read a device token. Blanks around the text (a pasted line) are
    /// ignored; anything else out of place is a named error.
    pub fn parse(text: &str) -> Result<Self, DeviceTokenError> {
        let text = text.trim_matches(|c: char| c.is_ascii_whitespace());
        let body = text
            .strip_prefix(PREFIX)
            .ok_or(DeviceTokenError::UnknownFormat)?;
        if text.len() > MAX_TEXT_LEN {
            return Err(DeviceTokenError::TooLong);
        }
        let mut payload = [0u8; MAX_PAYLOAD];
        let result = match URL_SAFE_NO_PAD.decode_slice(body, &mut payload) {
            Ok(n) => Self::from_payload(payload.get(..n).unwrap_or_default()),
            Err(base64::DecodeSliceError::OutputSliceTooSmall) => Err(DeviceTokenError::TooLong),
            Err(_) => Err(DeviceTokenError::NotBase64),
        };
        payload.zeroize();
        result
    }

    fn from_payload(payload: &[u8]) -> Result<Self, DeviceTokenError> {
        let body_len = payload
            .len()
            .checked_sub(CHECK_LEN)
            .ok_or(DeviceTokenError::Truncated)?;
        let (body, check) = payload.split_at(body_len);
        let mut fields = Fields(body);
        let user = fields.next()?;
        let did = fields.next()?;
        let long_token = fields.next()?;
        let secret = fields.next()?;
        if !fields.0.is_empty() {
            return Err(DeviceTokenError::TrailingBytes);
        }
        if Sha256::digest(body).get(..CHECK_LEN) != Some(check) {
            return Err(DeviceTokenError::Damaged);
        }
        let text = |bytes, field| {
            core::str::from_utf8(bytes).map_err(|_| DeviceTokenError::FieldTooLong(field))
        };
        if long_token.is_empty() {
            return Err(DeviceTokenError::MissingField("long token"));
        }
        Ok(DeviceToken {
            user: bounded(text(user, "user")?, "user")?,
            did: bounded(text(did, "did")?, "did")?,
            long_token: bounded(text(long_token, "long token")?, "long token")?,
            secret: Secret::new(secret).ok_or(if secret.is_empty() {
                DeviceTokenError::MissingField("secret")
            } else {
                DeviceTokenError::FieldTooLong("secret")
            })?,
        })
    }

    /// Length of [`encode`](Self::encode)'s text.
    pub fn encoded_len(&self) -> usize {
        PREFIX.len() + (self.payload_len() * 4).div_ceil(3)
    }

    fn payload_len(&self) -> usize {
        4 + self.user.len()
            + self.did.len()
            + self.long_token.len()
            + self.secret.as_bytes().len()
            + CHECK_LEN
    }

    /// Write the token's text (ASCII, [`encoded_len`](Self::encoded_len)
    /// bytes) into `out`.
    pub fn encode(&self, out: &mut [u8]) -> Result<usize, InsufficientSize> {
        let required = self.encoded_len();
        let too_small = InsufficientSize { required };
        let (prefix, rest) = out.split_at_mut_checked(PREFIX.len()).ok_or(too_small)?;
        if rest.len() < required - PREFIX.len() {
            return Err(too_small);
        }
        prefix.copy_from_slice(PREFIX.as_bytes());
        let mut payload = [0u8; MAX_PAYLOAD];
        let mut at = 0;
        for field in [
            self.user.as_bytes(),
            self.did.as_bytes(),
            self.long_token.as_bytes(),
            self.secret.as_bytes(),
        ] {
            // Every field is at most 255 bytes (its capacity), and the
            // payload has room for all of them.
            let slot = payload.get_mut(at..at + 1 + field.len()).ok_or(too_small)?;
            let (len, bytes) = slot.split_at_mut(1);
            len.fill(field.len() as u8);
            bytes.copy_from_slice(field);
            at += 1 + field.len();
        }
        let digest = Sha256::digest(payload.get(..at).unwrap_or_default());
        let check = digest.get(..CHECK_LEN).unwrap_or_default();
        payload
            .get_mut(at..at + CHECK_LEN)
            .ok_or(too_small)?
            .copy_from_slice(check);
        at += CHECK_LEN;
        let written = URL_SAFE_NO_PAD
            .encode_slice(payload.get(..at).unwrap_or_default(), rest)
            .map_err(|_| too_small);
        payload.zeroize();
        Ok(PREFIX.len() + written?)
    }
}

/// Length-prefixed fields read one after another.
struct Fields<'a>(&'a [u8]);

impl<'a> Fields<'a> {
    fn next(&mut self) -> Result<&'a [u8], DeviceTokenError> {
        let (&len, rest) = self.0.split_first().ok_or(DeviceTokenError::Truncated)?;
        let (field, rest) = rest
            .split_at_checked(usize::from(len))
            .ok_or(DeviceTokenError::Truncated)?;
        self.0 = rest;
        Ok(field)
    }
}

#[cfg(test)]
// Tests index fixtures they built themselves.
#[allow(clippy::indexing_slicing)]
mod tests {
    extern crate std;
    use super::*;
    use proptest::prelude::*;
    use std::format;
    use std::string::String;

    fn creds(long: &str, secret: &[u8]) -> Credentials {
        let mut c = Credentials::default();
        c.long_token.push_str(long).unwrap();
        c.secret = Secret::new(secret);
        c
    }

    fn text(token: &DeviceToken) -> String {
        let mut buf = [0u8; MAX_TEXT_LEN];
        let n = token.encode(&mut buf).unwrap();
        assert_eq!(n, token.encoded_len());
        String::from_utf8(buf[..n].to_vec()).unwrap()
    }

    fn sample() -> DeviceToken {
        DeviceToken::new("admin", Some("dev-1"), &creds("L/ong+Token==", &[7; 16])).unwrap()
    }

    #[test]
    fn a_token_reads_back_what_it_was_made_of() {
        let t = text(&sample());
        assert!(t.starts_with("nlt1."));
        assert!(
            t[5..]
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        );
        let back = DeviceToken::parse(&t).unwrap();
        assert_eq!(back.user(), "admin");
        assert_eq!(back.did(), Some("dev-1"));
        let c = back.credentials();
        assert_eq!(c.long_token, "L/ong+Token==");
        assert!(c.token.is_empty(), "the first login is user.tokenLogin");
        assert_eq!(c.secret.as_ref().unwrap().as_bytes(), &[7; 16]);
        assert!(c.can_token_login() && !c.can_auth_token());
    }

    #[test]
    fn blanks_around_a_pasted_token_are_ignored() {
        let t = text(&sample());
        assert!(DeviceToken::parse(&format!("  {t}\r\n")).is_ok());
    }

    #[test]
    fn a_changed_character_is_reported_as_damage() {
        let t = text(&sample());
        let mut bytes = t.into_bytes();
        let i = bytes.len() / 2;
        bytes[i] = if bytes[i] == b'A' { b'B' } else { b'A' };
        let damaged = String::from_utf8(bytes).unwrap();
        assert_eq!(
            DeviceToken::parse(&damaged).unwrap_err(),
            DeviceTokenError::Damaged
        );
    }

    #[test]
    fn a_cut_token_is_refused_by_name() {
        let t = text(&sample());
        let cut = &t[..t.len() - 8];
        assert!(matches!(
            DeviceToken::parse(cut).unwrap_err(),
            DeviceTokenError::Truncated | DeviceTokenError::Damaged | DeviceTokenError::NotBase64
        ));
        assert_eq!(
            DeviceToken::parse("nlt1.").unwrap_err(),
            DeviceTokenError::Truncated
        );
    }

    #[test]
    fn other_formats_and_versions_are_unknown() {
        assert_eq!(
            DeviceToken::parse("admin").unwrap_err(),
            DeviceTokenError::UnknownFormat
        );
        let t = text(&sample()).replacen("nlt1.", "nlt2.", 1);
        assert_eq!(
            DeviceToken::parse(&t).unwrap_err(),
            DeviceTokenError::UnknownFormat
        );
        assert_eq!(
            DeviceToken::parse("nlt1.a+b/").unwrap_err(),
            DeviceTokenError::NotBase64
        );
    }

    #[test]
    fn overlong_text_is_refused_before_decoding() {
        let t = format!("nlt1.{}", "A".repeat(MAX_TEXT_LEN));
        assert_eq!(
            DeviceToken::parse(&t).unwrap_err(),
            DeviceTokenError::TooLong
        );
    }

    #[test]
    fn a_login_without_long_token_or_secret_makes_no_token() {
        assert_eq!(
            DeviceToken::new("u", None, &creds("", &[1; 16])).unwrap_err(),
            DeviceTokenError::MissingField("long token")
        );
        let mut c = creds("L", &[1; 16]);
        c.secret = None;
        assert_eq!(
            DeviceToken::new("u", None, &c).unwrap_err(),
            DeviceTokenError::MissingField("secret")
        );
        let long_user = "u".repeat(USER_CAPACITY + 1);
        assert_eq!(
            DeviceToken::new(&long_user, None, &creds("L", &[1; 16])).unwrap_err(),
            DeviceTokenError::FieldTooLong("user")
        );
    }

    #[test]
    fn the_largest_token_fits_max_text_len() {
        let long = "t".repeat(MAX_LONG_TOKEN);
        let user = "u".repeat(USER_CAPACITY);
        let did = "d".repeat(DID_CAPACITY);
        let token =
            DeviceToken::new(&user, Some(&did), &creds(&long, &[3; SECRET_CAPACITY])).unwrap();
        assert_eq!(token.encoded_len(), MAX_TEXT_LEN);
        let t = text(&token);
        assert_eq!(
            DeviceToken::parse(&t).unwrap().credentials().long_token,
            long.as_str()
        );
        let mut small = [0u8; 10];
        assert_eq!(
            token.encode(&mut small).unwrap_err(),
            InsufficientSize {
                required: MAX_TEXT_LEN
            }
        );
    }

    #[test]
    fn debug_shows_no_secret() {
        let shown = format!("{:?}", sample());
        assert!(!shown.contains("L/ong"), "{shown}");
        assert!(shown.contains("redacted"), "{shown}");
    }

    proptest! {
        #[test]
        fn any_text_parses_or_is_refused_without_panic(
            bytes in proptest::collection::vec(any::<u8>(), 0..800),
            cut in 0usize..800,
        ) {
            let text = String::from_utf8_lossy(&bytes);
            let _ = DeviceToken::parse(&text);
            let with_prefix = format!("nlt1.{text}");
            let _ = DeviceToken::parse(&with_prefix);
            // A real token cut anywhere, or with random bytes after it.
            let t = text_of_sample();
            let at = cut.min(t.len());
            let _ = DeviceToken::parse(&t[..at]);
            let _ = DeviceToken::parse(&format!("{t}{text}"));
        }

        #[test]
        fn any_payload_behind_the_prefix_parses_or_is_refused(
            payload in proptest::collection::vec(any::<u8>(), 0..500),
        ) {
            let mut buf = [0u8; 1024];
            let n = URL_SAFE_NO_PAD.encode_slice(&payload, &mut buf).unwrap();
            let t = format!("nlt1.{}", core::str::from_utf8(&buf[..n]).unwrap());
            let _ = DeviceToken::parse(&t);
        }

        #[test]
        fn every_token_round_trips(
            user in "[a-z0-9_.-]{0,64}",
            did in "[a-zA-Z0-9-]{0,64}",
            long in "[A-Za-z0-9+/=]{1,255}",
            secret in proptest::collection::vec(any::<u8>(), 1..=SECRET_CAPACITY),
        ) {
            let did_opt = (!did.is_empty()).then_some(did.as_str());
            let token = DeviceToken::new(&user, did_opt, &creds(&long, &secret)).unwrap();
            let back = DeviceToken::parse(&text(&token)).unwrap();
            prop_assert_eq!(back.user(), user.as_str());
            prop_assert_eq!(back.did(), did_opt);
            let c = back.credentials();
            prop_assert_eq!(c.long_token.as_str(), long.as_str());
            prop_assert_eq!(c.secret.as_ref().unwrap().as_bytes(), &secret[..]);
        }
    }

    fn text_of_sample() -> String {
        text(&sample())
    }
}
