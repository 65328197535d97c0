//! # naslink-embassy
//!
//! **Not implemented yet.** This crate will drive `naslink-core` over
//! `embedded-io-async` streams (an embassy-net `TcpSocket`, `embedded-tls`)
//! with `embassy-time` timers, for microcontrollers. Today it only re-exports
//! the core so that dependants can already name it.
//!
//! ```
//! use naslink_embassy::core::time::Instant;
//! assert_eq!(Instant::from_secs(1).total_millis(), 1000);
//! ```
#![no_std]

pub use naslink_core as core;
