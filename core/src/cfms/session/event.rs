//! The events of a session inside a [`Connection`](crate::connection::Connection):
//! each carries what it is about (a reply its body, a download piece its
//! bytes), borrowing the received message or the session's buffer.
#![deny(clippy::indexing_slicing)]

use super::engine::Body;
use super::*;
use crate::connection::Message;

/// What happened, from [`Connection::poll_event`](crate::connection::Connection::poll_event)
/// as [`connection::Event::Session`](crate::connection::Event::Session). Bodies borrow the received message
/// until the next call.
#[derive(Debug, Clone, Copy)]
pub enum Event<'a> {
    /// `server_info` answered with a spoken protocol version.
    ServerInfo {
        /// Which request (`None`: the opening sequence's).
        seq: Option<Seq>,
        /// The protocol version (3–5).
        protocol_version: u32,
        /// Whether lockdown is on.
        lockdown: bool,
        /// The answer (`server_name`, `version`: [`ops::ServerInfo`](crate::cfms::ops::ServerInfo)).
        response: Response<'a>,
    },
    /// The server speaks another protocol; the session refuses to go on.
    ProtocolUnsupported {
        /// What it announced, if readable.
        version: Option<u32>,
    },
    /// Logged in (or logged in again after a rejected token).
    LoggedIn {
        /// Time until the token expires.
        expires_in: Duration,
        /// The answer (nickname, permissions: [`ops::LoginInfo`](crate::cfms::ops::LoginInfo)).
        response: Response<'a>,
    },
    /// 202: answer with the two-factor command.
    TwoFactorRequired {
        /// The method named by the server.
        method: TwoFactorMethod,
    },
    /// Login failed.
    LoginFailed(LoginError),
    /// The token was refreshed.
    TokenRefreshed {
        /// Time until the new token expires.
        expires_in: Duration,
    },
    /// The server rejected the token; with [`Config::relogin`] and a kept
    /// password the session logs in again by itself.
    TokenRejected {
        /// Whether a re-login is under way.
        relogin: bool,
    },
    /// The opening sequence's `register_listener` was answered.
    ListenerRegistered {
        /// Its status (200: lockdown changes will arrive as events).
        status: Status,
    },
    /// Lockdown changed (pushed to a registered listener).
    Lockdown {
        /// Whether lockdown is now on.
        on: bool,
    },
    /// The answer to a request.
    Reply {
        /// Which request.
        seq: Seq,
        /// Its status (999 is [`Status::Lockdown`]).
        status: Status,
        /// The whole answer (`data` via [`Response::data`]).
        response: Response<'a>,
    },
    /// A request got no answer.
    RequestFailed {
        /// Which request.
        seq: Seq,
        /// Why.
        error: RequestError,
    },
    /// Answers can no longer be matched: reconnect.
    Desynchronized(Desync),
    /// A received message is not one a CFMS 3–5 server sends (or arrived
    /// when no request waits for it): close the connection.
    BadMessage(Error),
    /// The server is ready for the file: feed it with the upload command.
    UploadReady {
        /// Which upload.
        seq: Seq,
        /// Every binary message but the last has exactly this size.
        frame_size: u32,
    },
    /// The server stored the file.
    UploadFinished {
        /// Which upload.
        seq: Seq,
        /// Bytes sent.
        size: u64,
    },
    /// The upload failed.
    UploadFailed {
        /// Which upload.
        seq: Seq,
        /// Why.
        error: UploadError,
    },
    /// The download header arrived and `ready` is queued.
    DownloadStarted {
        /// Which download.
        seq: Seq,
        /// Plaintext size.
        file_size: u64,
        /// Number of `file_chunk` messages to come.
        total_chunks: u32,
    },
    /// Ciphertext, in order: store it for the decryption pass.
    DownloadData {
        /// Which download.
        seq: Seq,
        /// The next ciphertext bytes.
        data: &'a [u8],
    },
    /// One `file_chunk` was received whole.
    DownloadChunk {
        /// Which download.
        seq: Seq,
        /// Chunk index.
        index: u32,
        /// Ciphertext bytes in it.
        len: u32,
    },
    /// All chunks and the key arrived; decrypt the stored ciphertext with
    /// [`FileDecryptor`](crate::cfms::FileDecryptor) and
    /// [`Session::chunk_hashes`] (protocol 13: chunk by chunk with
    /// [`open_chunk`](crate::cfms::p13::transfer::open_chunk); `iv` and
    /// `sha256` are unused there).
    DownloadFinished {
        /// Which download.
        seq: Seq,
        /// Key, IV and expected hashes.
        key: DownloadKey,
    },
    /// The download failed.
    DownloadFailed {
        /// Which download.
        seq: Seq,
        /// Why.
        error: DownloadError,
    },
}

impl<'a, const Q: usize> Session<'a, Q> {
    /// The body of the last handled message.
    fn body<'m>(&'m self, message: Option<Message<'m>>) -> Option<Response<'m>> {
        match self.body {
            Body::None => None,
            Body::Rx => Response::parse(self.rx.get(self.body_skip..self.rx_len)?).ok(),
            Body::Message => Response::parse(message?.data.get(self.body_skip..)?).ok(),
        }
    }

    /// Dress a queued event for the application.
    pub(super) fn dress<'m>(&'m self, e: super::Event, message: Option<Message<'m>>) -> Event<'m> {
        use super::Event as E;
        let body = || self.body(message).ok_or(Error::EventsNotDrained);
        let dressed = match e {
            E::ServerInfo {
                seq,
                protocol_version,
                lockdown,
            } => body().map(|response| Event::ServerInfo {
                seq: seq.filter(|s| !self.is_opening(*s)),
                protocol_version,
                lockdown,
                response,
            }),
            E::LoggedIn { expires_in } => body().map(|response| Event::LoggedIn {
                expires_in,
                response,
            }),
            E::Reply { seq, status } if self.is_listener(seq) => {
                Ok(Event::ListenerRegistered { status })
            }
            E::Reply { seq, status } => body().map(|response| Event::Reply {
                seq,
                status,
                response,
            }),
            E::ProtocolUnsupported { version } => Ok(Event::ProtocolUnsupported { version }),
            E::TwoFactorRequired { method } => Ok(Event::TwoFactorRequired { method }),
            E::LoginFailed(e) => Ok(Event::LoginFailed(e)),
            E::TokenRefreshed { expires_in } => Ok(Event::TokenRefreshed { expires_in }),
            E::TokenRejected { relogin } => Ok(Event::TokenRejected { relogin }),
            E::Lockdown { on } => Ok(Event::Lockdown { on }),
            E::RequestFailed { seq, error } => Ok(Event::RequestFailed { seq, error }),
            E::Desynchronized(d) => Ok(Event::Desynchronized(d)),
            E::UploadReady { seq, frame_size } => Ok(Event::UploadReady { seq, frame_size }),
            E::UploadFinished { seq, size } => Ok(Event::UploadFinished { seq, size }),
            E::UploadFailed { seq, error } => Ok(Event::UploadFailed { seq, error }),
            E::DownloadStarted {
                seq,
                file_size,
                total_chunks,
            } => Ok(Event::DownloadStarted {
                seq,
                file_size,
                total_chunks,
            }),
            E::DownloadChunk { seq, index, len } => Ok(Event::DownloadChunk { seq, index, len }),
            E::DownloadFinished { seq, key } => Ok(Event::DownloadFinished { seq, key }),
            E::DownloadFailed { seq, error } => Ok(Event::DownloadFailed { seq, error }),
        };
        // A body is always there when the connection keeps the drain rule
        // (no message is taken while events wait); if not, say so.
        dressed.unwrap_or_else(Event::BadMessage)
    }
}
