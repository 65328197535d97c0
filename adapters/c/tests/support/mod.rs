//! Test glue: a blocking loop over a `TcpStream` that calls only the
//! `extern "C"` functions, the way a C program does.

#![allow(dead_code)] // each test file uses part of the glue

use std::alloc::Layout;
use std::ffi::{CStr, CString, c_void};
use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use naslink_capi::*;

/// Fill from the operating system, as `getrandom` does in C.
pub unsafe extern "C" fn os_rng(_ctx: *mut c_void, buf: *mut u8, len: usize) {
    // SAFETY: the library passes `len` writable bytes.
    let out = unsafe { std::slice::from_raw_parts_mut(buf, len) };
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(out))
        .expect("urandom");
}

/// Connection memory from the allocator, sized and aligned as the library
/// says, freed on drop.
pub struct Memory {
    pub ptr: *mut u8,
    layout: Layout,
}

impl Memory {
    pub fn new(size: usize, align: usize) -> Self {
        let layout = Layout::from_size_align(size, align).expect("layout");
        // SAFETY: non-zero size.
        let ptr = unsafe { std::alloc::alloc(layout) };
        assert!(!ptr.is_null());
        Memory { ptr, layout }
    }
    pub fn fnos() -> Self {
        Self::new(naslink_fnos_size(), naslink_fnos_align())
    }
    pub fn len(&self) -> usize {
        self.layout.size()
    }
}

impl Drop for Memory {
    fn drop(&mut self) {
        // SAFETY: allocated with this layout.
        unsafe { std::alloc::dealloc(self.ptr, self.layout) }
    }
}

/// C strings kept alive for a config.
pub struct FnosConfig {
    pub url: CString,
    pub user: CString,
    pub password: CString,
}

impl FnosConfig {
    pub fn new(url: &str, user: &str, password: &str) -> Self {
        FnosConfig {
            url: CString::new(url).unwrap(),
            user: CString::new(user).unwrap(),
            password: CString::new(password).unwrap(),
        }
    }
    pub fn raw(&self, now_ms: u64) -> naslink_fnos_config {
        naslink_fnos_config {
            url: self.url.as_ptr(),
            user: self.user.as_ptr(),
            password: self.password.as_ptr(),
            device_name: std::ptr::null(),
            now_ms,
            unix_time_s: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_secs(),
            request_timeout_ms: 0,
        }
    }
}

/// An event copied out of the library's memory.
#[derive(Debug, Clone, PartialEq)]
pub struct Seen {
    pub kind: naslink_event_kind,
    pub status: naslink_reply_status,
    pub push: naslink_push_kind,
    pub login_method: naslink_login_method,
    pub reqid: String,
    pub errno_code: i64,
    pub uid: i64,
    pub admin: i32,
    pub close_code: i32,
    pub protocol_version: u32,
    pub lockdown: i32,
    pub expires_in_ms: u64,
    pub json: String,
    pub detail: String,
}

impl Seen {
    fn of(e: &naslink_event) -> Self {
        let json = if e.json.is_null() {
            String::new()
        } else {
            // SAFETY: the library's pointer and length, valid until the next call.
            let b = unsafe { std::slice::from_raw_parts(e.json, e.json_len) };
            String::from_utf8(b.to_vec()).unwrap()
        };
        let detail = if e.detail.is_null() {
            String::new()
        } else {
            // SAFETY: a static C string.
            unsafe { CStr::from_ptr(e.detail) }
                .to_str()
                .unwrap()
                .to_owned()
        };
        // SAFETY: NUL-terminated inside the array.
        let reqid = unsafe { CStr::from_ptr(e.reqid.text.as_ptr()) };
        Seen {
            kind: e.kind,
            status: e.status,
            push: e.push,
            login_method: e.login_method,
            reqid: reqid.to_str().unwrap().to_owned(),
            errno_code: e.errno_code,
            uid: e.uid,
            admin: e.admin,
            close_code: e.close_code,
            protocol_version: e.protocol_version,
            lockdown: e.lockdown,
            expires_in_ms: e.expires_in_ms,
            json,
            detail,
        }
    }

    /// The value at `path` in the event's JSON, through `naslink_json_get`.
    pub fn get(&self, path: &str) -> Option<String> {
        let path = CString::new(path).unwrap();
        let (mut ptr, mut len) = (std::ptr::null(), 0usize);
        // SAFETY: valid pointers.
        let r = unsafe {
            naslink_json_get(
                self.json.as_ptr(),
                self.json.len(),
                path.as_ptr(),
                &mut ptr,
                &mut len,
            )
        };
        (r == naslink_result::NASLINK_OK).then(|| {
            // SAFETY: points into self.json.
            let b = unsafe { std::slice::from_raw_parts(ptr, len) };
            String::from_utf8(b.to_vec()).unwrap()
        })
    }
}

/// One connection driven over a blocking socket.
pub struct Client {
    pub mem: Memory,
    pub conn: *mut naslink_conn,
    sock: TcpStream,
    start: std::time::Instant,
    buf: Vec<u8>,
    input: std::ops::Range<usize>,
    eof: bool,
    /// Events already read, handed out again first (oldest first).
    unread: Vec<Seen>,
}

pub fn ok(r: naslink_result) {
    assert_eq!(r, naslink_result::NASLINK_OK, "{}", strerror(r));
}

pub fn strerror(r: naslink_result) -> String {
    // SAFETY: a static C string.
    unsafe { CStr::from_ptr(naslink_strerror(r as i32)) }
        .to_str()
        .unwrap()
        .to_owned()
}

impl Client {
    pub fn connect(config: &FnosConfig) -> Self {
        let url = config.url.to_str().unwrap().to_owned();
        Self::open(&url, Memory::fnos(), |mem, conn| {
            // SAFETY: memory of the right size and alignment, valid config.
            unsafe {
                naslink_fnos_init(
                    mem.ptr.cast(),
                    mem.len(),
                    &config.raw(0),
                    Some(os_rng),
                    std::ptr::null_mut(),
                    conn,
                )
            }
        })
    }

    /// A CFMS connection logging in as `user`/`password`, registered as
    /// listener, pinned to protocol 3 (text, no probe).
    pub fn connect_cfms(url: &str, user: &str, password: &str) -> Self {
        Self::connect_cfms_at(url, user, password, 3)
    }

    /// A CFMS connection as `connect_cfms`, with `protocol_version` in its
    /// config (0 negotiates; no reconnect: see `negotiate_cfms`).
    pub fn connect_cfms_at(url: &str, user: &str, password: &str, protocol_version: u32) -> Self {
        let (c_url, c_user, c_password) = (
            CString::new(url).unwrap(),
            CString::new(user).unwrap(),
            CString::new(password).unwrap(),
        );
        let config = naslink_cfms_config {
            url: c_url.as_ptr(),
            user: c_user.as_ptr(),
            password: c_password.as_ptr(),
            now_ms: 0,
            unix_time_s: 0,
            request_timeout_ms: 0,
            listener: true,
            protocol_version,
        };
        let mem = Memory::new(naslink_cfms_size(), naslink_cfms_align());
        Self::open(url, mem, |mem, conn| {
            // SAFETY: memory of the right size and alignment, valid config.
            unsafe {
                naslink_cfms_init(
                    mem.ptr.cast(),
                    mem.len(),
                    &config,
                    Some(os_rng),
                    std::ptr::null_mut(),
                    conn,
                )
            }
        })
    }

    /// A negotiated CFMS connection, as a C program makes one: connect with
    /// `protocol_version` 0; on `NASLINK_EVENT_RECONNECT_TEXT` wait for
    /// `CLOSED`, then connect again pinned to the version the event gives.
    /// Returns the connection and that pin (0: the first connection was
    /// kept). The events that settled it stay to be read.
    pub fn negotiate_cfms(url: &str, user: &str, password: &str) -> (Self, u32) {
        let mut first = Self::connect_cfms_at(url, user, password, 0);
        let mut seen = Vec::new();
        loop {
            let e = first.next_event(Duration::from_secs(20));
            match e.kind {
                naslink_event_kind::NASLINK_EVENT_RECONNECT_TEXT => {
                    let pin = e.protocol_version;
                    let (closed, _) = first.wait_for(naslink_event_kind::NASLINK_EVENT_CLOSED);
                    assert_eq!(closed.close_code, 1000, "{closed:?}");
                    drop(first);
                    return (Self::connect_cfms_at(url, user, password, pin), pin);
                }
                // The session's own server_info fails with the probe's
                // close: not yet an answer.
                naslink_event_kind::NASLINK_EVENT_CONNECTED
                | naslink_event_kind::NASLINK_EVENT_REQUEST_ABORTED => seen.push(e),
                _ => {
                    seen.push(e);
                    first.unread = seen;
                    return (first, 0);
                }
            }
        }
    }

    /// The protocol version `naslink_cfms_protocol_version` reports.
    pub fn cfms_protocol_version(&self) -> u32 {
        let mut v = u32::MAX;
        // SAFETY: conn from init; v writable.
        ok(unsafe { naslink_cfms_protocol_version(self.conn, &mut v) });
        v
    }

    fn open(
        url: &str,
        mem: Memory,
        init: impl FnOnce(&Memory, *mut *mut naslink_conn) -> naslink_result,
    ) -> Self {
        let start = std::time::Instant::now();
        let mut conn = std::ptr::null_mut();
        let addr = url
            .trim_start_matches("ws://")
            .split('/')
            .next()
            .unwrap()
            .to_owned();
        let sock = TcpStream::connect(addr).expect("emulator reachable");
        sock.set_nodelay(true).unwrap();
        ok(init(&mem, &mut conn));
        assert_eq!(conn.cast::<u8>(), mem.ptr);
        Client {
            mem,
            conn,
            sock,
            start,
            buf: vec![0; 4096],
            input: 0..0,
            eof: false,
            unread: Vec::new(),
        }
    }

    pub fn now(&self) -> u64 {
        self.start.elapsed().as_millis() as u64
    }

    /// Drive the loop until the next event (or panic after `limit`).
    pub fn next_event(&mut self, limit: Duration) -> Seen {
        if !self.unread.is_empty() {
            return self.unread.remove(0);
        }
        let give_up = std::time::Instant::now() + limit;
        loop {
            let mut event = naslink_event_none();
            // SAFETY: conn from init; event writable.
            ok(unsafe { naslink_poll_event(self.conn, &mut event) });
            if event.kind != naslink_event_kind::NASLINK_EVENT_NONE {
                return Seen::of(&event);
            }
            self.flush();
            assert!(std::time::Instant::now() < give_up, "no event in {limit:?}");
            if self.input.is_empty() && !self.eof {
                self.read();
            }
            if !self.input.is_empty() {
                let mut consumed = 0;
                let data = &self.buf[self.input.clone()];
                // SAFETY: valid pointers.
                ok(unsafe {
                    naslink_handle_input(
                        self.conn,
                        self.now(),
                        data.as_ptr(),
                        data.len(),
                        &mut consumed,
                    )
                });
                assert!(consumed <= data.len());
                self.input.start += consumed;
            }
        }
    }

    fn flush(&mut self) {
        loop {
            let (mut ptr, mut len) = (std::ptr::null(), 0usize);
            // SAFETY: valid pointers.
            ok(unsafe { naslink_poll_transmit(self.conn, self.now(), &mut ptr, &mut len) });
            if len == 0 {
                return;
            }
            // SAFETY: the library's bytes, valid until the next call.
            let bytes = unsafe { std::slice::from_raw_parts(ptr, len) };
            let n = self.sock.write(bytes).unwrap_or(len);
            // SAFETY: conn from init.
            ok(unsafe { naslink_advance_transmit(self.conn, n) });
        }
    }

    fn read(&mut self) {
        let mut at = 0u64;
        // SAFETY: valid pointers.
        ok(unsafe { naslink_poll_timeout(self.conn, &mut at) });
        let wait = if at == NASLINK_NO_TIMEOUT {
            100
        } else {
            at.saturating_sub(self.now()).clamp(1, 100)
        };
        self.sock
            .set_read_timeout(Some(Duration::from_millis(wait)))
            .unwrap();
        match self.sock.read(&mut self.buf) {
            Ok(0) => {
                self.eof = true;
                // SAFETY: conn from init.
                ok(unsafe { naslink_handle_eof(self.conn, self.now()) });
            }
            Ok(n) => self.input = 0..n,
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                // SAFETY: conn from init.
                ok(unsafe { naslink_handle_timeout(self.conn, self.now()) });
            }
            Err(_) => {
                self.eof = true;
                // SAFETY: conn from init.
                ok(unsafe { naslink_handle_eof(self.conn, self.now()) });
            }
        }
    }

    /// Events until one of `kind` (returned); the others are returned too.
    pub fn wait_for(&mut self, kind: naslink_event_kind) -> (Seen, Vec<Seen>) {
        let mut other = Vec::new();
        loop {
            let e = self.next_event(Duration::from_secs(20));
            if e.kind == kind {
                return (e, other);
            }
            other.push(e);
        }
    }

    /// The final reply to `reqid`.
    pub fn final_reply(&mut self, reqid: &str) -> Seen {
        loop {
            let (e, _) = self.wait_for(naslink_event_kind::NASLINK_EVENT_REPLY);
            if e.reqid == reqid && e.status != naslink_reply_status::NASLINK_STATUS_PARTIAL {
                return e;
            }
        }
    }

    pub fn request(&mut self, req: &str, params: Option<&str>) -> String {
        let req = CString::new(req).unwrap();
        let params = params.map(|p| CString::new(p).unwrap());
        let mut reqid = naslink_reqid {
            text: [0; NASLINK_REQID_CAPACITY],
        };
        // SAFETY: valid pointers.
        ok(unsafe {
            naslink_fnos_request(
                self.conn,
                self.now(),
                req.as_ptr(),
                params.as_ref().map_or(std::ptr::null(), |p| p.as_ptr()),
                &mut reqid,
            )
        });
        reqid_text(&reqid)
    }

    pub fn cfms_request(&mut self, action: &str, data: Option<&str>) -> String {
        let action = CString::new(action).unwrap();
        let data = data.map(|p| CString::new(p).unwrap());
        let mut reqid = naslink_reqid {
            text: [0; NASLINK_REQID_CAPACITY],
        };
        // SAFETY: valid pointers.
        ok(unsafe {
            naslink_cfms_request(
                self.conn,
                self.now(),
                action.as_ptr(),
                data.as_ref().map_or(std::ptr::null(), |p| p.as_ptr()),
                &mut reqid,
            )
        });
        reqid_text(&reqid)
    }

    pub fn panel(&mut self, which: naslink_fnos_panel) -> String {
        let mut reqid = naslink_reqid {
            text: [0; NASLINK_REQID_CAPACITY],
        };
        // SAFETY: valid pointers.
        ok(unsafe { naslink_fnos_request_panel(self.conn, self.now(), which as i32, &mut reqid) });
        reqid_text(&reqid)
    }
}

impl Drop for Client {
    fn drop(&mut self) {
        // SAFETY: conn from init (deinit twice is refused, not UB).
        unsafe { naslink_deinit(self.conn) };
    }
}

pub fn reqid_text(r: &naslink_reqid) -> String {
    // SAFETY: NUL-terminated inside the array.
    unsafe { CStr::from_ptr(r.text.as_ptr()) }
        .to_str()
        .unwrap()
        .to_owned()
}

/// An event struct to be written by `naslink_poll_event`.
pub fn naslink_event_none() -> naslink_event {
    naslink_event {
        kind: naslink_event_kind::NASLINK_EVENT_NONE,
        status: naslink_reply_status::NASLINK_STATUS_NONE,
        push: naslink_push_kind::NASLINK_PUSH_NONE,
        login_method: naslink_login_method::NASLINK_LOGIN_NONE,
        reqid: naslink_reqid {
            text: [0; NASLINK_REQID_CAPACITY],
        },
        errno_code: -1,
        protocol_version: 0,
        lockdown: -1,
        expires_in_ms: 0,
        uid: -1,
        admin: -1,
        close_code: -1,
        http_status: 0,
        missed_pongs: 0,
        json: std::ptr::null(),
        json_len: 0,
        detail: std::ptr::null(),
    }
}
