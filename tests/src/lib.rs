//! # naslink-tests
//!
//! Holds naslink's end-to-end tests (in `tests/tests/`), which drive the core
//! over real sockets against the emulators of `naslink-sim` and other peers.
//! The library itself is empty.
//!
//! ```
//! // The tests live in tests/tests/*.rs; run them with `cargo test -p naslink-tests`.
//! ```
