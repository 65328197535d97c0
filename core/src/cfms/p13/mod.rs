//! CFMS protocol 13: the framed, multiplexed wire (`cfms-13.md`).
//!
//! Protocol 13 keeps the 3–5 request and response JSON but carries every
//! message in a binary frame `u32 stream id | u8 type | payload`, runs
//! several requests at once on their own streams, stamps authenticated
//! requests with a nonce and a timestamp, and pushes events on streams the
//! server opens. The pieces, bottom up:
//!
//! - [`frame`]: the frame header, parsed and emitted; a reader for
//!   messages that arrive in pieces.
//! - [`streams`]: odd ids handed out and never reused, answers matched by
//!   id in completion order, a deadline per stream, streams that end
//!   without a CONCLUSION.
//! - [`replay`]: the nonce and timestamp of authenticated requests, the
//!   server clock offset, and the typed 1001 answer.
//! - [`request`]: requests written as PROCESS frames, signed or not.
//! - [`negotiate`]: telling a protocol-13 server from a 3–5 one by its
//!   answer to a framed `server_info` (§11).
//! - [`event`]: the server's `{"event": …}` pushes (lockdown).
//! - [`transfer`]: upload and download messages, per-chunk AES-256-GCM.
//! - [`gcm`]: a chunk opened in two passes over pieces of any length
//!   (authenticate, then decrypt), for devices that cannot hold a chunk.
//!
//! # One engine
//!
//! These pieces are protocol 13's *wire*: everything that differs from
//! 3–5 below the request level. The request writers ([`ops`](super::ops)),
//! the response views ([`Response`](super::Response)), the status codes,
//! the login logic and the upload machine are shared with 3–5, so the same
//! [`Session`](super::Session) drives both, with a wire mode
//! ([`Wire`]: text in order, or frames by stream) chosen at construction
//! ([`Config::protocol_version`](super::Config::protocol_version), a pin)
//! or by the probe ([`Config::negotiate`](super::Config::negotiate),
//! [`Session::negotiated`](super::Session::negotiated)). A second session
//! type would have duplicated the opening sequence, the token refresh and
//! every adapter's glue; this way an adapter drives 13 exactly as it drives
//! 3–5 (`Connection`, commands, `poll_transmit`, `poll_event`,
//! `handle_timeout`). The framed branch costs the 3–5 firmware build about
//! 5 KiB of flash (98.0 → 102.9 KiB) and 352 B of static RAM; the
//! AES-GCM code in [`transfer`] is only linked where it is used.
//!
//! Downloads run through the session too
//! ([`Session::download_file_at`](super::Session::download_file_at), with a
//! resume offset): ciphertext streamed to the caller, each chunk's seal kept,
//! chunks opened with [`transfer::open_chunk`] (whole) or [`ChunkOpener`]
//! (in pieces) once `aes_key` arrived.
#![deny(clippy::indexing_slicing)]

pub mod event;
pub mod frame;
pub mod gcm;
pub mod negotiate;
pub mod replay;
pub mod request;
pub mod streams;
pub mod transfer;

pub use event::{EventError, ServerEvent};
pub use frame::{FrameError, FrameType, Header, StreamId};
pub use gcm::{ChunkOpener, VerifiedChunk};
pub use negotiate::{Negotiated, ProbeError, Unsupported, Wire};
pub use replay::{Nonce, Replay, ServerClock};
pub use request::{ROOT_FOLDER, Signed, emit_frame, emit_request};
pub use streams::{Ended, IN_FLIGHT, Route, StreamError, Streams};
pub use transfer::{
    ChunkKey, DownloadCheck, DownloadHeader, FileChunk, TransferError, TransferMessage,
};
