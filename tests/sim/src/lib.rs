//! # naslink-sim
//!
//! NAS emulators that run on loopback: an fnOS server ([`fnos`]) and a CFMS v3
//! server ([`cfms`]), and a [`hostile`] server in front of either that
//! misbehaves on purpose. They are built on tokio, tokio-tungstenite and
//! RustCrypto and deliberately **do not** use `naslink-core`, so that the
//! emulators and the client cross-check each other.
//!
//! ```no_run
//! # async fn demo() -> anyhow::Result<()> {
//! // Start an emulator in-process on an ephemeral port (see each module).
//! # Ok(()) }
//! ```

pub mod cfms;
pub mod fnos;
pub mod hostile;
