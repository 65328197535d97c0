//! CFMS commands on a [`Connection`]: each writes its request straight into
//! the WebSocket transmit buffer and returns the request's [`Seq`], which
//! the answering [`ConnectionEvent`](super::ConnectionEvent) repeats.
//!
//! The opening sequence (`server_info`, `login`, `register_listener`) is
//! the session's own ([`State`](super::State)); the application sends its
//! requests once the session is `Ready`. Every command refuses with
//! [`Error::Busy`] while the session cannot take a request
//! ([`Connection::can_send`]), and with [`Error::Ws`] when the WebSocket
//! cannot (not open, closing, a binary message half sent).
//!
//! ```
//! use naslink_core::cfms::{self, Buffers, Config, Credentials};
//! use naslink_core::connection::Connection;
//! use naslink_core::random;
//! use naslink_core::time::Instant;
//! use naslink_core::ws::{self, Url};
//!
//! let (mut rx, mut hashes) = ([0u8; 4096], [[0u8; 32]; 4]);
//! let config = Config {
//!     login: Some(Credentials::new("admin", "NewAdminPass-123").unwrap()),
//!     ..Config::default()
//! };
//! let session: cfms::Session<'_, 4> =
//!     cfms::Session::new(config, Buffers { rx: &mut rx, chunk_hashes: &mut hashes });
//! let url = Url::parse("ws://nas.local:5104/").unwrap();
//! let ws = ws::Client::connect(Instant::ZERO, &url, &[], ws::Config::default(),
//!     random::from_fn(|b: &mut [u8]| b.fill(7)), [0u8; 4096], [0u8; 4096]).unwrap();
//! let mut conn = Connection::new(ws, session);
//! // Not open yet: commands wait for the opening sequence.
//! assert_eq!(conn.request(Instant::ZERO, "list_directory", b"{}"), Err(cfms::Error::Busy));
//! assert!(conn.poll_transmit(Instant::ZERO).is_some()); // the upgrade request
//! ```
#![deny(clippy::indexing_slicing)]

use super::queue::Seq;
use super::session::{Error, Sent, Session};
use super::upload::UploadSource;
use crate::connection::{self, Connection};
use crate::random::Entropy;
use crate::time::Instant;
use crate::ws::{self, SendWithError};

/// The commands, for a connection that owns its session and for one that
/// borrows it (so that the session outlives reconnects).
macro_rules! commands {
    ($($lt:lifetime)? ; $session:ty) => {
        impl<$($lt,)? 's, const Q: usize, B: AsRef<[u8]> + AsMut<[u8]>, E: Entropy>
            Connection<$session, B, E>
        {
            /// Any action with caller-given `data`, a JSON object.
            pub fn request(&mut self, now: Instant, action: &str, data: &[u8]) -> Result<Seq, Error> {
                self.command(now, |s, now, buf| s.request(now, action, data, buf))
            }

            /// Ask the server for its information again (name, version,
            /// protocol version, lockdown): the answer is a
            /// [`ConnectionEvent::ServerInfo`](super::ConnectionEvent::ServerInfo)
            /// with this request's `Seq` (read it with
            /// [`ops::ServerInfo`](super::ops::ServerInfo)), or a `Reply` when
            /// the server refuses.
            pub fn ask_server(&mut self, now: Instant) -> Result<Seq, Error> {
                self.command(now, |s, now, buf| s.server_info(now, buf))
            }

            /// A request written by one of the session's writers (the
            /// [`ops`](super::ops) helpers, `set_passwd`, `refresh_token`):
            /// `conn.command(now, |s, now, buf| s.list_directory(now, None, buf))`.
            pub fn command(
                &mut self,
                now: Instant,
                write: impl FnOnce(&mut Session<'s, Q>, Instant, &mut [u8]) -> Result<Sent, Error>,
            ) -> Result<Seq, Error> {
                self.queue(now, true, write)
            }

            /// `upload_file {task_id}` (the `task_id` of a
            /// `create_document`/`upload_document` answer,
            /// [`ops::task_id`](super::ops::task_id)); feed the file with
            /// [`upload_write`](Self::upload_write) after
            /// `UploadReady`.
            pub fn upload_file(
                &mut self,
                now: Instant,
                task_id: &str,
                source: UploadSource,
            ) -> Result<Seq, Error> {
                self.command(now, |s, now, buf| s.upload_file(now, task_id, source, buf))
            }

            /// `download_file {task_id}`: the ciphertext arrives as
            /// `DownloadData` events, then `DownloadFinished` with the key.
            pub fn download_file(&mut self, now: Instant, task_id: &str) -> Result<Seq, Error> {
                self.command(now, |s, now, buf| s.download_file(now, task_id, buf))
            }

            /// Protocol 13: `download_file {task_id, offset}`, a download
            /// resumed at `offset` (whole chunks); see
            /// [`Session::download_file_at`](crate::cfms::Session::download_file_at).
            pub fn download_file_at(
                &mut self,
                now: Instant,
                task_id: &str,
                offset: u64,
            ) -> Result<Seq, Error> {
                self.command(now, |s, now, buf| s.download_file_at(now, task_id, offset, buf))
            }

            /// Answer `TwoFactorRequired` with a TOTP or backup code.
            pub fn submit_two_factor(&mut self, now: Instant, code: &str) -> Result<Seq, Error> {
                self.queue(now, false, |s, now, buf| s.write_two_factor(now, code, buf))
            }

            /// Send file bytes during an upload (after `UploadReady`),
            /// straight into the WebSocket transmit buffer. Returns how
            /// many leading bytes of `data` were taken: fewer when the
            /// buffer is full (drain `poll_transmit`, then pass the rest).
            /// The final, possibly empty, message is sent by a call with
            /// the last bytes (or with an empty `data` when the file ends
            /// on a message boundary).
            pub fn upload_write(&mut self, now: Instant, data: &[u8]) -> Result<usize, Error> {
                self.now = self.now.max(now);
                let session: &mut Session<'s, Q> = core::borrow::BorrowMut::borrow_mut(&mut self.session);
                let Some((start, len, left)) = session.upload_frame() else {
                    // Let the session name the misuse.
                    return session.upload_write(now, data).map(|w| w.accepted);
                };
                // Protocol 13: each binary message starts with the frame
                // header of the upload's stream.
                let head = session.upload_frame_header();
                let head_len = head.map_or(0, |h| h.len() as u64);
                if start {
                    match self.ws.begin_binary(len + head_len) {
                        // Begun by an earlier call whose bytes found no
                        // room: only uploads stream binary messages.
                        Ok(()) | Err(ws::SendError::MessageInProgress) => {}
                        Err(e) => return Err(Error::Ws(e)),
                    }
                }
                if let Some(head) = head
                    && start
                {
                    let left = session.upload_head_left();
                    let rest = head.get(head.len() - left..).unwrap_or_default();
                    if !rest.is_empty() {
                        let n = self.ws.send_binary_part(rest).map_err(Error::Ws)?;
                        session.upload_head_advance(n);
                        if n < rest.len() {
                            // No room: drain poll_transmit and call again.
                            return Ok(0);
                        }
                    }
                }
                let left = usize::try_from(left).unwrap_or(usize::MAX);
                let part = data.get(..left).unwrap_or(data);
                let taken = if part.is_empty() {
                    0
                } else {
                    self.ws.send_binary_part(part).map_err(Error::Ws)?
                };
                let part = part.get(..taken).unwrap_or(part);
                session.upload_write(now, part).map(|w| w.accepted)
            }

            /// Write one request with `write` into the transmit buffer.
            fn queue(
                &mut self,
                now: Instant,
                needs_ready: bool,
                write: impl FnOnce(&mut Session<'s, Q>, Instant, &mut [u8]) -> Result<Sent, Error>,
            ) -> Result<Seq, Error> {
                self.now = self.now.max(now);
                let session: &mut Session<'s, Q> = core::borrow::BorrowMut::borrow_mut(&mut self.session);
                if needs_ready && !connection::Session::can_send(&*session) {
                    return Err(Error::Busy);
                }
                let mut seq = None;
                let kind = match session.message_kind() {
                    super::MessageKind::Text => ws::MessageKind::Text,
                    super::MessageKind::Binary => ws::MessageKind::Binary,
                };
                let written = self.ws.send_with(kind, usize::MAX, |buf, rng| {
                    // Protocol 13 signs requests with a nonce from the
                    // connection's entropy.
                    session.prepare_nonce(rng);
                    let sent = write(session, now, buf)?;
                    seq = Some(sent.seq);
                    Ok(sent.len)
                });
                match written {
                    Ok(_) => seq.ok_or(Error::Busy),
                    Err(SendWithError::Write(e)) => Err(e),
                    Err(SendWithError::Send(e)) => Err(Error::Ws(e)),
                }
            }
        }
    };
}

commands!(; Session<'s, Q>);
commands!('m; &'m mut Session<'s, Q>);
