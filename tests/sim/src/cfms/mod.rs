//! A CFMS server emulator speaking protocol 3 to 5, as recorded from the real
//! server (`/work/shared/transcripts/cfms-*.jsonl`; where the public document
//! and the recordings differ, the recordings win), and protocol 13
//! (`shared/protocol/cfms-13.md`, `cfms-p13*.jsonl`) when
//! [`Config::protocol_version`] is 13 or more: binary stream framing, many
//! requests in flight, replay protection, AES-256-GCM downloads with resume.
//! What follows describes 3 to 5; the `mux`, `p13` and `p13_transfer`
//! modules describe 13.
//!
//! ```no_run
//! # async fn demo() -> anyhow::Result<()> {
//! use naslink_sim::cfms::{Config, Server};
//! let server = Server::start(Config::default()).await?; // admin / admin, plain ws://
//! println!("{}", server.url());
//! server.shutdown().await;
//! # Ok(()) }
//! ```
//!
//! # One connection
//!
//! A connection handles one message at a time, in order (the protocol has no
//! request id). Its states:
//!
//! - **Idle**: waiting for a request. A text (or binary) frame is parsed as
//!   JSON; malformed JSON closes the connection with close code 1000 and
//!   nothing else. A request is checked in this order: `action` present
//!   (400 `No action specified in request`), action known (400
//!   `Unknown action: X`), `data` against the action's schema (400 with
//!   `{"validator", "validator_value"}`), lockdown (999 unless the action is
//!   allowed or the user has `bypass_lockdown`), envelope credentials, then
//!   the action itself.
//! - **Uploading** (after `upload_file`): waiting for the client's
//!   `transfer_file` header, then for binary frames until the first one
//!   shorter than the threshold (8192, or the client's `max_chunk_size` from
//!   protocol 4 on), then the verdict; back to Idle.
//! - **Downloading** (after `download_file`): header sent, waiting for the
//!   client's `ready`, then every `file_chunk` and the trailing `aes_key`;
//!   back to Idle.
//!
//! In every state the connection sends a PING each [`Config::ping_interval`]
//! and drops the client (TCP, no close frame) when the PONG is not back within
//! [`Config::pong_timeout`]. A connection that sent `register_listener`
//! receives each lockdown change as an unsolicited binary frame, also while
//! an answer is held back by the bad-password delay (so a push can arrive
//! between a request and its answer).
//!
//! # What is not emulated
//!
//! Access rules and grants, avatars, user blocking, group editing, and the
//! cancellation of *running* transfers when lockdown turns on (pending tasks
//! are cancelled). Answers that were never recorded are plausible guesses:
//! the messages of `rename_*`, `move_*`, `delete_*`, `upload_document`,
//! `list_groups`, `view_audit_logs`, `shutdown`, the `data` of successful
//! `list_users`/`list_groups`/`view_audit_logs`, `create_user` conflicts,
//! refused `set_passwd`, and two-factor errors other than the recorded ones.
//! Below protocol 5 two-factor secrets are ignored (login needs no code).
//! At protocol 3, after `stop` for an empty upload, the public document
//! promises a 500 verdict but the recorded server sends nothing; the emulator
//! follows the recording and stores an empty revision (`sha256` as declared).

mod account;
mod actions;
mod cli;
mod clock;
mod config;
mod connection;
mod files;
mod jwt;
mod mux;
mod p13;
mod p13_transfer;
mod server;
mod store;
mod tls;
mod totp;
mod transfer;
mod validate;

pub use cli::{Args, run_cli};
pub use clock::Clock;
pub use config::{Config, DownloadFault, UserSpec};
pub use server::{Handle, Server};
pub use totp::totp_code;
