//! fnOS WebSocket API session (`ws://HOST:5666/websocket?type=main`).
//!
//! [`Session`] is the sans-I/O state machine an application drives (see
//! [`session`] for its states, inputs and outputs); the other modules are
//! the wire pieces it is built from, usable on their own:
//!
//! - [`reqid`]: request ids (`hex8(seconds) + backId + hex4(counter)`).
//! - [`sign`]: the login secret S and `base64(HMAC-SHA256(S, json)) + json`.
//! - [`rsa`]: RSAES-PKCS1-v1_5 with SPKI PEM keys and RSASSA-PSS
//!   verification (a TLS server's CertificateVerify), no allocator.
//! - [`envelope`]: the `encrypted` login envelope and `secret` decryption.
//! - [`request`]: commands with parameters, typed front-panel helpers.
//! - [`response`]: replies, pushes and pong, read in place.
//! - [`errno`]: typed failure codes.
//! - [`health`]: the OK / WARNING / CRITICAL verdict from a panel snapshot.
//! - [`panel`]: the front panel's commands and borrowed views of their answers.
//! - [`login`]: login messages, credentials kept across connections.
//! - [`device_token`]: the `nlt1.` text that lets a device log in with a
//!   long token and its secret instead of the password.
//! - [`pending`]: the table of requests in flight.
//! - [`heartbeat`]: ping timer and missed-pong count.
//! - [`http`]: the HTTP side (access-code gate, upload, download checks).

pub mod device_token;
pub mod envelope;
pub mod errno;
pub mod health;
pub mod heartbeat;
pub mod http;
pub mod login;
pub mod panel;
pub mod pending;
pub mod reqid;
pub mod request;
pub mod response;
pub mod rsa;
pub mod session;
pub mod sign;

pub use device_token::{DeviceToken, DeviceTokenError};
pub use errno::Errno;
pub use login::{Credentials, Device, LoginFailure, LoginMethod};
pub use reqid::Reqid;
pub use request::{Param, Request};
pub use response::{Push, Reply, Status};
pub use session::{Config, Error, Event, Session, State};
