//! fnOS WebSocket API session (`ws://HOST:5666/websocket?type=main`).
//!
//! Under construction: the wire pieces are here, the session follows.
//!
//! - [`reqid`]: request ids (`hex8(seconds) + backId + hex4(counter)`).
//! - [`sign`]: the login secret S and `base64(HMAC-SHA256(S, json)) + json`.
//! - [`rsa`]: RSAES-PKCS1-v1_5 with SPKI PEM keys, no allocator.
//! - [`envelope`]: the `encrypted` login envelope and `secret` decryption.
//! - [`json`]: a borrowed, checked JSON view for received messages.
//! - [`write`]: compact JSON written in place for requests.
//! - [`request`]: commands with parameters, typed front-panel helpers.
//! - [`response`]: replies, pushes and pong, read in place.
//! - [`errno`]: typed failure codes.

pub mod envelope;
pub mod errno;
pub mod json;
pub mod reqid;
pub mod request;
pub mod response;
pub mod rsa;
pub mod sign;
pub mod write;
