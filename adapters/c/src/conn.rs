//! The protocol-independent half of the ABI: the connection handle, the
//! loop functions every protocol shares, and the pointer checks.
//!
//! A connection's memory starts with a `Header` whose tag says which
//! protocol's init function built it; each loop function checks the
//! pointer (not NULL, aligned), reads the tag, and hands the call to that
//! protocol's `Protocol` implementation.

use core::ffi::c_void;

use naslink_core::random::Entropy;
use naslink_core::time::Instant;

use crate::cfms::CfmsConn;
use crate::event::naslink_event;
use crate::fnos::FnosConn;
use crate::result::naslink_result;

/// Bytes of receive buffer in each connection: the largest message the
/// server may send (a larger one closes the connection with 1009). The
/// fnOS front-panel and storage replies are well under this.
pub const NASLINK_RECEIVE_BUFFER: usize = 8192;

/// Bytes of transmit buffer in each connection: queued outgoing frames.
/// It holds the fnOS login envelope (about 2.1 KiB, the largest message
/// the session writes) plus a request.
pub const NASLINK_TRANSMIT_BUFFER: usize = 4096;

/// What `naslink_poll_timeout` reports when no deadline is armed.
pub const NASLINK_NO_TIMEOUT: u64 = 0xFFFF_FFFF_FFFF_FFFF;

/// An open connection: opaque, it lives in the caller's memory (see
/// `naslink_fnos_init`).
pub struct naslink_conn {
    _opaque: [u8; 0],
}

/// The random-number callback: fill all `len` bytes at `buf` from a
/// cryptographically secure source (`getrandom`, a hardware RNG). `ctx` is
/// the pointer given to the init function. It must not call back into
/// naslink. NULL is refused by the init functions.
pub type naslink_rng_fn = Option<unsafe extern "C" fn(ctx: *mut c_void, buf: *mut u8, len: usize)>;

/// The callback itself (a `naslink_rng_fn` checked not NULL).
type RngCallback = unsafe extern "C" fn(ctx: *mut c_void, buf: *mut u8, len: usize);

/// Randomness through the caller's callback.
pub(crate) struct CallbackRng {
    pub(crate) fill: RngCallback,
    pub(crate) ctx: *mut c_void,
}

impl Entropy for CallbackRng {
    fn fill_bytes(&mut self, dest: &mut [u8]) {
        // SAFETY: the init function's contract: `fill` writes at most
        // `len` bytes at `buf`, which is `dest`, valid for writes.
        unsafe { (self.fill)(self.ctx, dest.as_mut_ptr(), dest.len()) }
    }
}

/// The first field of every protocol's connection struct (`repr(C)`).
///
/// The loop functions reach the protocol through `open`, which only the
/// protocol's init function stores: a firmware that never calls
/// `naslink_cfms_init` links no CFMS code (the linker drops it), though the
/// loop functions serve both protocols.
#[repr(C)]
pub(crate) struct Header {
    pub(crate) tag: u32,
    pub(crate) open: Opener,
}

/// The connection at a pointer as its protocol, or `None` when misaligned
/// for it.
pub(crate) type Opener = fn(*mut naslink_conn) -> Option<*mut dyn Protocol>;

impl Header {
    /// The header of a `P` connection.
    pub(crate) fn of<P: Tagged + Protocol + 'static>() -> Self {
        Header {
            tag: P::TAG,
            open: open_as::<P>,
        }
    }
}

fn open_as<P: Protocol + 'static>(conn: *mut naslink_conn) -> Option<*mut dyn Protocol> {
    check(conn.cast::<P>()).ok()?;
    Some(conn.cast::<P>() as *mut dyn Protocol)
}

/// The tags an init function writes.
const TAGS: [u32; 2] = [FnosConn::TAG, CfmsConn::TAG];

/// The tag of no connection (after `naslink_deinit`).
const TAG_NONE: u32 = 0;

/// What each protocol's connection does for the shared loop functions.
pub(crate) trait Protocol {
    fn handle_input(&mut self, now: Instant, data: &[u8]) -> usize;
    fn poll_transmit(&mut self, now: Instant) -> Option<&[u8]>;
    fn advance_transmit(&mut self, n: usize);
    fn poll_event(&mut self, out: &mut naslink_event);
    fn poll_timeout(&self) -> Option<Instant>;
    fn handle_timeout(&mut self, now: Instant);
    fn handle_eof(&mut self, now: Instant);
    fn close(&mut self, now: Instant) -> Result<(), naslink_result>;
    /// Drop the connection in place and wipe what must not outlive it
    /// (the copied credentials). Nothing may use it afterwards.
    fn wipe(&mut self);
}

/// A protocol's connection struct: `repr(C)`, starting with a `Header`.
pub(crate) trait Tagged {
    /// The tag in its `Header`.
    const TAG: u32;
}

/// `n` rounded up to a multiple of `align` (a power of two).
pub(crate) const fn round_up(n: usize, align: usize) -> usize {
    (n + align - 1) & !(align - 1)
}

/// `ptr` is not NULL and is aligned for `T`.
pub(crate) fn check<T>(ptr: *const T) -> Result<(), naslink_result> {
    if ptr.is_null() {
        Err(naslink_result::NASLINK_ERR_NULL)
    } else if !(ptr as usize).is_multiple_of(align_of::<T>()) {
        Err(naslink_result::NASLINK_ERR_MISALIGNED)
    } else {
        Ok(())
    }
}

/// The connection at `conn` as protocol `P`, after checking the pointer
/// and the tag.
///
/// # Safety
/// `conn` is NULL, or points to memory an init function initialized (and
/// that is not in use by another call).
pub(crate) unsafe fn as_protocol<'a, P: Tagged>(
    conn: *mut naslink_conn,
) -> Result<&'a mut P, naslink_result> {
    check(conn.cast::<Header>())?;
    // SAFETY: not NULL, aligned for the header, and (caller's contract)
    // initialized connection memory, which starts with a header.
    let tag = unsafe { (*conn.cast::<Header>()).tag };
    if tag != P::TAG {
        return Err(naslink_result::NASLINK_ERR_WRONG_CONNECTION);
    }
    check(conn.cast::<P>())?;
    // SAFETY: the tag says the init function of `P` wrote a `P` here, and
    // the pointer is aligned for it.
    Ok(unsafe { &mut *conn.cast::<P>() })
}

/// Run `f` on whichever protocol's connection `conn` is.
///
/// # Safety
/// As `as_protocol`.
unsafe fn with_conn(
    conn: *mut naslink_conn,
    f: impl FnOnce(&mut dyn Protocol) -> Result<(), naslink_result>,
) -> naslink_result {
    let header = conn.cast::<Header>();
    check(header)
        .and_then(|()| {
            // SAFETY: not NULL and aligned; the caller's contract makes it
            // initialized connection memory (or memory deinit tagged).
            if !TAGS.contains(&unsafe { (*header).tag }) {
                return Err(naslink_result::NASLINK_ERR_WRONG_CONNECTION);
            }
            // SAFETY: a known tag: an init function wrote the whole header.
            let open = unsafe { (*header).open };
            let p = open(conn).ok_or(naslink_result::NASLINK_ERR_MISALIGNED)?;
            // SAFETY: `open` is the init function's, for the struct it
            // wrote there; aligned (checked by `open`).
            f(unsafe { &mut *p })
        })
        .map_or_else(|e| e, |()| naslink_result::NASLINK_OK)
}

/// A writable, aligned out-pointer.
fn out<'a, T>(ptr: *mut T) -> Result<&'a mut T, naslink_result> {
    check(ptr)?;
    // SAFETY: not NULL and aligned; the caller passes writable memory for
    // a `T`. Only written through (every T here is plain data).
    Ok(unsafe { &mut *ptr })
}

/// Feed `len` bytes read from the transport at `buf`; `*consumed` is how
/// many were taken. Fewer than `len` means events wait: drain
/// `naslink_poll_event` and `naslink_poll_transmit`, then pass the rest
/// again. `buf` may be NULL when `len` is 0. `now_ms` is a monotonic clock
/// in milliseconds (any origin, never going back).
///
/// # Safety
/// `conn` comes from an init function; `buf` points to `len` readable bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn naslink_handle_input(
    conn: *mut naslink_conn,
    now_ms: u64,
    buf: *const u8,
    len: usize,
    consumed: *mut usize,
) -> naslink_result {
    let consumed = match out(consumed) {
        Ok(c) => c,
        Err(e) => return e,
    };
    *consumed = 0;
    let data: &[u8] = if len == 0 {
        &[]
    } else if buf.is_null() {
        return naslink_result::NASLINK_ERR_NULL;
    } else {
        // SAFETY: the caller's contract: `len` readable bytes at `buf`.
        unsafe { core::slice::from_raw_parts(buf, len) }
    };
    // SAFETY: the caller's contract on `conn`.
    unsafe {
        with_conn(conn, |c| {
            *consumed = c.handle_input(Instant::from_millis(now_ms), data);
            Ok(())
        })
    }
}

/// The next bytes to write to the transport: `*ptr`/`*len`, or `*len == 0`
/// (and `*ptr` NULL) when there are none. After writing `n` of them call
/// `naslink_advance_transmit`. The bytes stay valid until the next call
/// on `conn`.
///
/// # Safety
/// `conn` comes from an init function.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn naslink_poll_transmit(
    conn: *mut naslink_conn,
    now_ms: u64,
    ptr: *mut *const u8,
    len: *mut usize,
) -> naslink_result {
    let (ptr, len) = match (out(ptr), out(len)) {
        (Ok(p), Ok(l)) => (p, l),
        (Err(e), _) | (_, Err(e)) => return e,
    };
    *ptr = core::ptr::null();
    *len = 0;
    // SAFETY: the caller's contract on `conn`.
    unsafe {
        with_conn(conn, |c| {
            if let Some(bytes) = c.poll_transmit(Instant::from_millis(now_ms)) {
                *ptr = bytes.as_ptr();
                *len = bytes.len();
            }
            Ok(())
        })
    }
}

/// Record that `n` bytes from the last `naslink_poll_transmit` were
/// written (more than it gave counts as all of them).
///
/// # Safety
/// `conn` comes from an init function.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn naslink_advance_transmit(
    conn: *mut naslink_conn,
    n: usize,
) -> naslink_result {
    // SAFETY: the caller's contract on `conn`.
    unsafe {
        with_conn(conn, |c| {
            c.advance_transmit(n);
            Ok(())
        })
    }
}

/// The next event into `*event`; `event->kind == NASLINK_EVENT_NONE` when
/// there is none. Pointers in the event borrow the connection's memory and
/// are valid until the next call on `conn`.
///
/// # Safety
/// `conn` comes from an init function; `event` points to writable memory
/// for a `naslink_event`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn naslink_poll_event(
    conn: *mut naslink_conn,
    event: *mut naslink_event,
) -> naslink_result {
    let event = match check(event) {
        // SAFETY: not NULL, aligned, writable (caller's contract); written
        // whole before it is read.
        Ok(()) => unsafe {
            event.write(naslink_event::NONE);
            &mut *event
        },
        Err(e) => return e,
    };
    // SAFETY: the caller's contract on `conn`.
    unsafe {
        with_conn(conn, |c| {
            c.poll_event(event);
            Ok(())
        })
    }
}

/// When to call `naslink_handle_timeout`, in the `now_ms` clock:
/// `*at_ms`, or `NASLINK_NO_TIMEOUT` when nothing is armed.
///
/// # Safety
/// `conn` comes from an init function.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn naslink_poll_timeout(
    conn: *mut naslink_conn,
    at_ms: *mut u64,
) -> naslink_result {
    let at_ms = match out(at_ms) {
        Ok(a) => a,
        Err(e) => return e,
    };
    *at_ms = NASLINK_NO_TIMEOUT;
    // SAFETY: the caller's contract on `conn`.
    unsafe {
        with_conn(conn, |c| {
            if let Some(at) = c.poll_timeout() {
                *at_ms = at.total_millis();
            }
            Ok(())
        })
    }
}

/// Let time pass (call it at or after `naslink_poll_timeout`'s time).
///
/// # Safety
/// `conn` comes from an init function.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn naslink_handle_timeout(
    conn: *mut naslink_conn,
    now_ms: u64,
) -> naslink_result {
    // SAFETY: the caller's contract on `conn`.
    unsafe {
        with_conn(conn, |c| {
            c.handle_timeout(Instant::from_millis(now_ms));
            Ok(())
        })
    }
}

/// The transport reached end of stream or failed: the connection closes
/// (requests in flight come out as aborted, then `NASLINK_EVENT_CLOSED`).
///
/// # Safety
/// `conn` comes from an init function.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn naslink_handle_eof(
    conn: *mut naslink_conn,
    now_ms: u64,
) -> naslink_result {
    // SAFETY: the caller's contract on `conn`.
    unsafe {
        with_conn(conn, |c| {
            c.handle_eof(Instant::from_millis(now_ms));
            Ok(())
        })
    }
}

/// Start the close handshake (status 1000); keep driving the loop until
/// `NASLINK_EVENT_CLOSED`.
///
/// # Safety
/// `conn` comes from an init function.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn naslink_close(conn: *mut naslink_conn, now_ms: u64) -> naslink_result {
    // SAFETY: the caller's contract on `conn`.
    unsafe { with_conn(conn, |c| c.close(Instant::from_millis(now_ms))) }
}

/// End the connection: wipe the copied credentials and mark the memory as
/// no connection (later calls give `NASLINK_ERR_WRONG_CONNECTION`). The
/// memory is the caller's again afterwards.
///
/// # Safety
/// `conn` comes from an init function.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn naslink_deinit(conn: *mut naslink_conn) -> naslink_result {
    // SAFETY: the caller's contract on `conn`.
    let r = unsafe {
        with_conn(conn, |c| {
            c.wipe();
            Ok(())
        })
    };
    if r == naslink_result::NASLINK_OK {
        // SAFETY: `with_conn` checked the pointer, and the connection's own
        // wipe already dropped it; only the tag is written.
        unsafe { (*conn.cast::<Header>()).tag = TAG_NONE };
    }
    r
}
