//! # naslink-capi
//!
//! A C ABI over [`naslink_core::Connection`] for fnOS and CFMS sessions:
//! the same sans-I/O loop as in Rust, with pointers. The library has no
//! allocator and no std; the caller owns all memory, the socket and the
//! clock. The header is `include/naslink.h` (cbindgen); a complete program
//! is `examples/panel.c`.
//!
//! ```c
//! void *mem = aligned_alloc(naslink_fnos_align(), naslink_fnos_size()); // or a static buffer
//! naslink_fnos_config cfg = { .url = "ws://nas:5666/websocket?type=main",
//!                             .user = "admin", .password = "secret", .now_ms = now() };
//! naslink_conn *conn;
//! naslink_fnos_init(mem, naslink_fnos_size(), &cfg, my_rng, NULL, &conn);
//! for (;;) {
//!     naslink_event ev;
//!     while (naslink_poll_event(conn, &ev) == NASLINK_OK && ev.kind != NASLINK_EVENT_NONE) { ... }
//!     const uint8_t *out; size_t n;
//!     while (naslink_poll_transmit(conn, now(), &out, &n) == NASLINK_OK && n > 0)
//!         naslink_advance_transmit(conn, write(fd, out, n));
//!     // poll(2) on fd until naslink_poll_timeout(); then naslink_handle_input
//!     // (pass unconsumed bytes again), naslink_handle_timeout or naslink_handle_eof.
//! }
//! ```
//!
//! **The drain rule** is the core's: after any input (bytes, a timeout, a
//! request), call `naslink_poll_event` until it reports
//! `NASLINK_EVENT_NONE`, then `naslink_poll_transmit` until it gives no
//! bytes, then wait for input or `naslink_poll_timeout`.
//! `naslink_handle_input` may consume fewer bytes than given (an event
//! waits): drain, then pass the rest again.
//!
//! **Memory.** `naslink_fnos_size` bytes aligned to `naslink_fnos_align`
//! (`naslink_cfms_size`, `naslink_cfms_align` for CFMS) hold one
//! connection, its buffers (fixed at compile time: see
//! `NASLINK_RECEIVE_BUFFER`, `NASLINK_TRANSMIT_BUFFER`) and copies of
//! the configured strings. The memory must not be moved or copied while
//! the connection lives; `naslink_deinit` wipes the credentials.
//!
//! **Errors** are `naslink_result` codes (0 is success, errors are
//! negative), named by `naslink_strerror`. Null and misaligned pointers
//! are reported, never dereferenced. No call can unwind into C: the library
//! is built with `panic = "abort"`, and its panic handler calls the C
//! library's `abort()`.
//!
//! **CFMS protocols 3–5 and 13.** A CFMS connection speaks text (3–5) or
//! frames (13). `naslink_cfms_config.protocol_version` 0 negotiates (a
//! zeroed config does): the connection opens with a protocol-13
//! `server_info`, which a 13 server answers (the connection goes on) and
//! a 3–5 server answers by closing. The library owns no socket, so that
//! reconnect is the caller's, told by an event:
//!
//! ```c
//! case NASLINK_EVENT_RECONNECT_TEXT:    // CLOSED follows
//!     pin = ev.protocol_version;        // 3: speak text
//!     break;
//! case NASLINK_EVENT_CLOSED:
//!     if (pin) { close(fd); fd = dial(url); naslink_deinit(conn);
//!                cfg.protocol_version = pin; naslink_cfms_init(mem, size, &cfg, rng, NULL, &conn); }
//! ```
//!
//! `naslink_cfms_protocol_version` gives the version the server announced
//! (3, 4, 5 or 13); remember it per server and pin it in the config to
//! skip the probe. Other pinned versions (6–12 speak a protocol between
//! the two; above 13 is unknown) are refused by `naslink_cfms_init` with
//! `NASLINK_ERR_PROTOCOL_UNSUPPORTED`, and a server announcing one gives
//! `NASLINK_EVENT_PROTOCOL_UNSUPPORTED` with its `protocol_version`.
//!
//! **Threads.** A connection is used by one thread at a time, and never
//! from inside its random-number callback.
//!
//! **Borrowed pointers** in a `naslink_event` and from
//! `naslink_poll_transmit` point into the connection's memory and are
//! valid until the next call on that connection.
#![cfg_attr(not(test), no_std)]
#![deny(clippy::indexing_slicing)]
#![allow(non_camel_case_types)]

mod cfms;
mod conn;
mod event;
mod fnos;
mod json;
mod result;

pub use cfms::{
    NASLINK_CFMS_QUEUE, naslink_cfms_align, naslink_cfms_config, naslink_cfms_init,
    naslink_cfms_protocol_version, naslink_cfms_request, naslink_cfms_size,
};
pub use conn::{
    NASLINK_NO_TIMEOUT, NASLINK_RECEIVE_BUFFER, NASLINK_TRANSMIT_BUFFER, naslink_advance_transmit,
    naslink_close, naslink_conn, naslink_deinit, naslink_handle_eof, naslink_handle_input,
    naslink_handle_timeout, naslink_poll_event, naslink_poll_timeout, naslink_poll_transmit,
    naslink_rng_fn,
};
pub use event::{
    NASLINK_REQID_CAPACITY, naslink_event, naslink_event_kind, naslink_login_method,
    naslink_push_kind, naslink_reply_status, naslink_reqid,
};
pub use fnos::{
    NASLINK_FNOS_STRINGS, naslink_fnos_align, naslink_fnos_config, naslink_fnos_init,
    naslink_fnos_panel, naslink_fnos_request, naslink_fnos_request_panel, naslink_fnos_size,
    naslink_fnos_submit_two_factor_code,
};
pub use json::naslink_json_get;
pub use result::{naslink_result, naslink_strerror};

#[cfg(all(not(test), feature = "panic-handler"))]
#[panic_handler]
fn panic(_: &core::panic::PanicInfo<'_>) -> ! {
    unsafe extern "C" {
        fn abort() -> !;
    }
    // SAFETY: `abort` is the C library's; it takes nothing and never returns.
    unsafe { abort() }
}

/// Panics, for the test that proves a panic in the C library aborts the
/// process instead of unwinding into C (`scripts/capi.sh`). Only in builds
/// with the `panic-probe` feature; not in the header.
#[cfg(feature = "panic-probe")]
#[unsafe(no_mangle)]
pub extern "C" fn naslink_panic_probe() {
    panic!("naslink_panic_probe");
}

/// The precompiled `core` of hosted targets is built to unwind and refers
/// to this symbol; with `panic = "abort"` nothing unwinds, so it is never
/// called. (Firmware targets' `core` does not refer to it.)
#[cfg(all(not(test), feature = "panic-handler"))]
#[unsafe(no_mangle)]
extern "C" fn rust_eh_personality() {}

#[cfg(test)]
mod tests {
    /// A panic inside an `extern "C"` function (every entry point is one)
    /// aborts the process instead of unwinding into the caller: run it in
    /// a child process and look at how that process died.
    #[test]
    fn a_panic_in_an_entry_point_aborts_the_process() {
        extern "C" fn entry_point_that_panics() {
            panic!("deliberate");
        }
        if std::env::var_os("NASLINK_PANIC_CHILD").is_some() {
            entry_point_that_panics();
            // Not reached when the rule holds; the parent sees exit code 0.
            return;
        }
        let status = std::process::Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "tests::a_panic_in_an_entry_point_aborts_the_process",
                "--nocapture",
            ])
            .env("NASLINK_PANIC_CHILD", "1")
            .stderr(std::process::Stdio::piped())
            .output()
            .expect("run child");
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(
            status.status.signal(),
            Some(6),
            "child should die of SIGABRT: {:?} {}",
            status.status,
            String::from_utf8_lossy(&status.stderr)
        );
        assert!(String::from_utf8_lossy(&status.stderr).contains("cannot unwind"));
    }
}
