//! Every entry point refuses NULL, misaligned and wrong pointers with an
//! error code instead of touching them.

mod support;

use std::ffi::CString;
use std::ptr::{null, null_mut};

use naslink_capi::*;
use support::{FnosConfig, Memory, naslink_event_none, os_rng};

use naslink_result::*;

fn init(mem: &Memory, len: usize, offset: usize, config: &naslink_fnos_config) -> naslink_result {
    let mut conn = null_mut();
    // SAFETY: `mem` has `len` bytes from `offset` (the tests keep it so).
    unsafe {
        naslink_fnos_init(
            mem.ptr.add(offset).cast(),
            len,
            config,
            Some(os_rng),
            null_mut(),
            &mut conn,
        )
    }
}

fn config() -> FnosConfig {
    FnosConfig::new("ws://127.0.0.1:1/websocket?type=main", "admin", "admin")
}

#[test]
fn init_refuses_null_misaligned_and_short_memory() {
    let c = config();
    let raw = c.raw(0);
    let size = naslink_fnos_size();
    assert!(naslink_fnos_align() >= 4);
    // C11 aligned_alloc wants a multiple of the alignment.
    assert_eq!(size % naslink_fnos_align(), 0);
    assert_eq!(naslink_cfms_size() % naslink_cfms_align(), 0);
    let mem = Memory::new(size + 64, naslink_fnos_align());
    let mut conn = null_mut();
    // SAFETY: (every call here) NULL or valid pointers only.
    unsafe {
        assert_eq!(
            naslink_fnos_init(null_mut(), size, &raw, Some(os_rng), null_mut(), &mut conn),
            NASLINK_ERR_NULL
        );
        assert_eq!(
            naslink_fnos_init(
                mem.ptr.cast(),
                size,
                null(),
                Some(os_rng),
                null_mut(),
                &mut conn
            ),
            NASLINK_ERR_NULL
        );
        assert_eq!(
            naslink_fnos_init(mem.ptr.cast(), size, &raw, None, null_mut(), &mut conn),
            NASLINK_ERR_NULL
        );
        assert_eq!(
            naslink_fnos_init(
                mem.ptr.cast(),
                size,
                &raw,
                Some(os_rng),
                null_mut(),
                null_mut()
            ),
            NASLINK_ERR_NULL
        );
    }
    assert_eq!(init(&mem, size, 1, &raw), NASLINK_ERR_MISALIGNED);
    assert_eq!(init(&mem, size - 1, 0, &raw), NASLINK_ERR_MEMORY_TOO_SMALL);
    assert_eq!(init(&mem, size, 0, &raw), NASLINK_OK);
}

#[test]
fn init_refuses_bad_strings() {
    let mem = Memory::fnos();
    let size = mem.len();
    let c = config();

    let mut raw = c.raw(0);
    raw.password = null();
    assert_eq!(init(&mem, size, 0, &raw), NASLINK_ERR_NULL);

    let bad = CString::new(vec![b'a', 0xff]).unwrap();
    let mut raw = c.raw(0);
    raw.user = bad.as_ptr();
    assert_eq!(init(&mem, size, 0, &raw), NASLINK_ERR_INVALID_UTF8);

    let http = CString::new("http://nas/").unwrap();
    let mut raw = c.raw(0);
    raw.url = http.as_ptr();
    assert_eq!(init(&mem, size, 0, &raw), NASLINK_ERR_INVALID_URL);

    let long = CString::new("x".repeat(NASLINK_FNOS_STRINGS)).unwrap();
    let mut raw = c.raw(0);
    raw.password = long.as_ptr();
    assert_eq!(init(&mem, size, 0, &raw), NASLINK_ERR_STRING_TOO_LONG);
}

#[test]
fn loop_functions_refuse_null_misaligned_and_foreign_memory() {
    let mem = Memory::fnos();
    let c = config();
    assert_eq!(init(&mem, mem.len(), 0, &c.raw(0)), NASLINK_OK);
    let conn: *mut naslink_conn = mem.ptr.cast();
    let skewed: *mut naslink_conn = mem.ptr.wrapping_add(2).cast();
    // Zeroed memory was never initialized: no tag.
    let zeroed = Memory::fnos();
    // SAFETY: the memory is ours.
    unsafe { zeroed.ptr.write_bytes(0, zeroed.len()) };
    let foreign: *mut naslink_conn = zeroed.ptr.cast();

    let mut consumed = 0usize;
    let mut event = naslink_event_none();
    let (mut ptr, mut len, mut at) = (null(), 0usize, 0u64);
    let mut reqid = naslink_reqid {
        text: [0; NASLINK_REQID_CAPACITY],
    };
    let req = CString::new("appcgi.resmon.cpu").unwrap();
    for (target, want) in [
        (null_mut(), NASLINK_ERR_NULL),
        (skewed, NASLINK_ERR_MISALIGNED),
        (foreign, NASLINK_ERR_WRONG_CONNECTION),
    ] {
        // SAFETY: (every call here) the library must check before it touches.
        unsafe {
            assert_eq!(
                naslink_handle_input(target, 0, b"x".as_ptr(), 1, &mut consumed),
                want
            );
            assert_eq!(consumed, 0);
            assert_eq!(naslink_poll_transmit(target, 0, &mut ptr, &mut len), want);
            assert_eq!(naslink_advance_transmit(target, 1), want);
            assert_eq!(naslink_poll_event(target, &mut event), want);
            assert_eq!(naslink_poll_timeout(target, &mut at), want);
            assert_eq!(naslink_handle_timeout(target, 0), want);
            assert_eq!(naslink_handle_eof(target, 0), want);
            assert_eq!(naslink_close(target, 0), want);
            assert_eq!(
                naslink_fnos_request(target, 0, req.as_ptr(), null(), &mut reqid),
                want
            );
            assert_eq!(naslink_fnos_request_panel(target, 0, 0, &mut reqid), want);
            assert_eq!(
                naslink_cfms_request(target, 0, req.as_ptr(), null(), &mut reqid),
                want
            );
            assert_eq!(naslink_deinit(target), want);
        }
    }

    // SAFETY: (every call here) a real connection, with NULL or skewed out-pointers.
    unsafe {
        assert_eq!(
            naslink_handle_input(conn, 0, null(), 1, &mut consumed),
            NASLINK_ERR_NULL
        );
        assert_eq!(
            naslink_handle_input(conn, 0, null(), 0, null_mut()),
            NASLINK_ERR_NULL
        );
        assert_eq!(
            naslink_handle_input(conn, 0, null(), 0, &mut consumed),
            NASLINK_OK
        );
        let skewed_len = (&mut at as *mut u64)
            .cast::<u8>()
            .wrapping_add(1)
            .cast::<usize>();
        assert_eq!(
            naslink_poll_transmit(conn, 0, &mut ptr, skewed_len),
            NASLINK_ERR_MISALIGNED
        );
        assert_eq!(
            naslink_poll_transmit(conn, 0, null_mut(), &mut len),
            NASLINK_ERR_NULL
        );
        assert_eq!(naslink_poll_event(conn, null_mut()), NASLINK_ERR_NULL);
        assert_eq!(naslink_poll_timeout(conn, null_mut()), NASLINK_ERR_NULL);
        assert_eq!(
            naslink_fnos_request(conn, 0, null(), null(), &mut reqid),
            NASLINK_ERR_NULL
        );
        assert_eq!(
            naslink_fnos_request(conn, 0, req.as_ptr(), null(), null_mut()),
            NASLINK_ERR_NULL
        );
        assert_eq!(
            naslink_fnos_request_panel(conn, 0, 99, &mut reqid),
            NASLINK_ERR_INVALID_ARGUMENT
        );
        // The upgrade has not been answered: requests wait for it.
        assert_eq!(
            naslink_fnos_request(conn, 0, req.as_ptr(), null(), &mut reqid),
            NASLINK_ERR_NOT_OPEN
        );
        // The upgrade request is ready to go.
        assert_eq!(
            naslink_poll_transmit(conn, 0, &mut ptr, &mut len),
            NASLINK_OK
        );
        assert!(len > 0 && std::slice::from_raw_parts(ptr, len).starts_with(b"GET /websocket"));

        // An fnOS connection is not a CFMS one.
        assert_eq!(
            naslink_cfms_request(conn, 0, req.as_ptr(), null(), &mut reqid),
            NASLINK_ERR_WRONG_CONNECTION
        );
        assert_eq!(naslink_deinit(conn), NASLINK_OK);
        assert_eq!(
            naslink_poll_event(conn, &mut event),
            NASLINK_ERR_WRONG_CONNECTION
        );
        assert_eq!(naslink_deinit(conn), NASLINK_ERR_WRONG_CONNECTION);
    }
}

#[test]
fn json_get_refuses_null_and_bad_json() {
    let path = CString::new("a").unwrap();
    let (mut ptr, mut len) = (null(), 0usize);
    // SAFETY: (every call here) NULL or valid pointers.
    unsafe {
        assert_eq!(
            naslink_json_get(null(), 0, path.as_ptr(), &mut ptr, &mut len),
            NASLINK_ERR_NULL
        );
        assert_eq!(
            naslink_json_get(b"[".as_ptr(), 1, path.as_ptr(), &mut ptr, &mut len),
            NASLINK_ERR_INVALID_JSON
        );
        assert_eq!(
            naslink_json_get(b"{\"a\":1}".as_ptr(), 7, path.as_ptr(), &mut ptr, &mut len),
            NASLINK_OK
        );
        assert_eq!(std::slice::from_raw_parts(ptr, len), b"1");
    }
}
