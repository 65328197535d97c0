//! # naslink-tokio
//!
//! **Not implemented yet.** This crate will drive `naslink-core` over tokio
//! sockets with rustls for `wss://`, offering cheap-to-clone fnOS and CFMS
//! client handles. Today it only re-exports the core.
//!
//! ```
//! use naslink_tokio::core::time::Duration;
//! assert_eq!(Duration::from_secs(2).total_millis(), 2000);
//! ```

pub use naslink_core as core;
