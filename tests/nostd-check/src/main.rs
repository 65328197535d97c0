//! A `#![no_std]` host binary with its own panic handler and **no global
//! allocator** that links `naslink-core` and drives its code paths.
//!
//! If the core or any dependency pulls in `std`, the build fails with a
//! duplicate `panic_impl` lang item; if anything needs the allocator, it
//! fails with "no global memory allocator found". It also runs: `main`
//! returns 0 only when the exercised paths gave the expected results.
#![no_std]
#![no_main]

use naslink_core::time::{Duration, Instant};

#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    unsafe extern "C" {
        fn abort() -> !;
    }
    // SAFETY: libc's abort has no preconditions.
    unsafe { abort() }
}

// A dev build still references the unwinding personality even with
// panic = "abort"; nothing ever calls it.
#[cfg(debug_assertions)]
#[unsafe(no_mangle)]
extern "C" fn rust_eh_personality() {}

#[link(name = "c")]
unsafe extern "C" {}

/// The C entry point: libc's start-up code calls it.
#[unsafe(no_mangle)]
extern "C" fn main(_argc: i32, _argv: *const *const u8) -> i32 {
    let mut failures = 0;
    let t = Instant::from_secs(1) + Duration::from_millis(500);
    if t.total_millis() != 1500 {
        failures += 1;
    }
    failures
}
