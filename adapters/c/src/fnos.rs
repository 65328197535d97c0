//! fnOS over the C ABI: the configuration, the init function, requests and
//! the front-panel helpers, and how fnOS events become `naslink_event`s.

use core::ffi::{CStr, c_char, c_void};

use naslink_core::Connection;
use naslink_core::connection::Event;
use naslink_core::fnos::{self, LoginFailure, LoginMethod, Push, Request, Session, Status};
use naslink_core::time::{Duration, Instant};
use naslink_core::ws::{self, CloseCode};

use crate::conn::{
    CallbackRng, Header, NASLINK_RECEIVE_BUFFER, NASLINK_TRANSMIT_BUFFER, Protocol, Tagged,
    as_protocol, check, naslink_conn, naslink_rng_fn,
};
use crate::event::{
    naslink_event, naslink_event_kind as K, naslink_login_method, naslink_push_kind,
    naslink_reply_status, naslink_reqid,
};
use crate::result::{code, naslink_result};

/// Bytes for the copies of `user`, `password` and `device_name` together
/// (UTF-8, without NULs).
pub const NASLINK_FNOS_STRINGS: usize = 256;

/// How to reach and log in to an fnOS NAS. The strings are copied by
/// `naslink_fnos_init`; the caller may free or wipe them afterwards.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct naslink_fnos_config {
    /// `ws://HOST[:PORT]/websocket?type=main` (for `wss://` the caller runs
    /// TLS below the bytes this library produces).
    pub url: *const c_char,
    /// User name.
    pub user: *const c_char,
    /// Password.
    pub password: *const c_char,
    /// Device name shown in the NAS's login list; NULL for "naslink".
    pub device_name: *const c_char,
    /// The monotonic clock (milliseconds) at init; later `now_ms` values
    /// continue it.
    pub now_ms: u64,
    /// Seconds since the UNIX epoch at `now_ms` (request ids carry wall
    /// time); 0 takes `now_ms / 1000` as UNIX time.
    pub unix_time_s: u64,
    /// Deadline of each request in milliseconds; 0 for 30 000.
    pub request_timeout_ms: u32,
}

/// The connection struct at the start of an fnOS connection's memory; the
/// buffers and strings follow it.
#[repr(C)]
pub(crate) struct FnosConn {
    header: Header,
    conn: Connection<Session<'static>, &'static mut [u8], CallbackRng>,
    strings: *mut u8,
}

impl Tagged for FnosConn {
    const TAG: u32 = u32::from_le_bytes(*b"fnOS");
}

/// A multiple of the alignment, so that C11 `aligned_alloc(align, size)`
/// accepts it.
const FNOS_SIZE: usize = crate::conn::round_up(
    size_of::<FnosConn>() + NASLINK_RECEIVE_BUFFER + NASLINK_TRANSMIT_BUFFER + NASLINK_FNOS_STRINGS,
    align_of::<FnosConn>(),
);

/// Bytes of memory one fnOS connection needs (the connection, its
/// receive and transmit buffers, and the copied strings): a multiple of
/// `naslink_fnos_align`, so `aligned_alloc(naslink_fnos_align(),
/// naslink_fnos_size())` is valid C11.
#[unsafe(no_mangle)]
pub extern "C" fn naslink_fnos_size() -> usize {
    FNOS_SIZE
}

/// The alignment that memory needs.
#[unsafe(no_mangle)]
pub extern "C" fn naslink_fnos_align() -> usize {
    align_of::<FnosConn>()
}

/// A C string as `&str`.
///
/// # Safety
/// `s` is NULL or a NUL-terminated string.
pub(crate) unsafe fn text<'a>(s: *const c_char) -> Result<&'a str, naslink_result> {
    if s.is_null() {
        return Err(naslink_result::NASLINK_ERR_NULL);
    }
    // SAFETY: the caller's contract.
    unsafe { CStr::from_ptr(s) }
        .to_str()
        .map_err(|_| naslink_result::NASLINK_ERR_INVALID_UTF8)
}

/// Copies strings into the connection's string area.
struct Strings {
    area: &'static mut [u8],
}

impl Strings {
    /// Copy `s` and return the copy.
    fn copy(&mut self, s: &str) -> Result<&'static str, naslink_result> {
        let area = core::mem::take(&mut self.area);
        if s.len() > area.len() {
            return Err(naslink_result::NASLINK_ERR_STRING_TOO_LONG);
        }
        let (dst, rest) = area.split_at_mut(s.len());
        dst.copy_from_slice(s.as_bytes());
        self.area = rest;
        core::str::from_utf8(dst).map_err(|_| naslink_result::NASLINK_ERR_INVALID_UTF8)
    }
}

/// Build an fnOS connection in `mem` (`len` bytes, at least
/// `naslink_fnos_size`, aligned to `naslink_fnos_align`) and queue
/// the WebSocket upgrade request; `*conn` is the connection (it is `mem`).
/// Then run the loop: the login follows the upgrade by itself.
///
/// `rng` must be a cryptographically secure source: it makes the frame
/// masks and the login's keys. `ctx` is passed to it.
///
/// # Safety
/// `mem` points to `len` writable bytes that stay in place, unused by
/// anything else, until `naslink_deinit`; the
/// config's strings are NUL-terminated.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn naslink_fnos_init(
    mem: *mut c_void,
    len: usize,
    config: *const naslink_fnos_config,
    rng: naslink_rng_fn,
    ctx: *mut c_void,
    conn: *mut *mut naslink_conn,
) -> naslink_result {
    // SAFETY: the caller's contract.
    code(unsafe { init(mem, len, config, rng, ctx, conn) })
}

/// `naslink_fnos_init` with `?`.
///
/// # Safety
/// As `naslink_fnos_init`.
unsafe fn init(
    mem: *mut c_void,
    len: usize,
    config: *const naslink_fnos_config,
    rng: naslink_rng_fn,
    ctx: *mut c_void,
    conn: *mut *mut naslink_conn,
) -> Result<(), naslink_result> {
    let mem = mem.cast::<FnosConn>();
    check(mem)?;
    check(config)?;
    check(conn)?;
    let fill = rng.ok_or(naslink_result::NASLINK_ERR_NULL)?;
    if len < FNOS_SIZE {
        return Err(naslink_result::NASLINK_ERR_MEMORY_TOO_SMALL);
    }
    // SAFETY: checked not NULL and aligned; the caller's contract makes it
    // readable.
    let config = unsafe { *config };
    // SAFETY: the caller's contract on the config's strings.
    let url = unsafe { text(config.url) }?;
    // SAFETY: as above.
    let user = unsafe { text(config.user) }?;
    // SAFETY: as above.
    let password = unsafe { text(config.password) }?;
    let device_name = if config.device_name.is_null() {
        "naslink"
    } else {
        // SAFETY: as above.
        unsafe { text(config.device_name) }?
    };
    let url = ws::Url::parse(url).map_err(|_| naslink_result::NASLINK_ERR_INVALID_URL)?;

    // The regions after the struct, each used through one slice only.
    let base = mem.cast::<u8>();
    // The caller's memory may be uninitialized (malloc, .bss on some
    // toolchains): zero it before any byte of it is seen as a `u8`.
    // SAFETY: `FNOS_SIZE` <= the caller's `len` writable bytes at `mem`.
    unsafe { base.write_bytes(0, FNOS_SIZE) };
    let region = |offset: usize, len: usize| -> &'static mut [u8] {
        // SAFETY: offset + len <= FNOS_SIZE <= the caller's `len`, and the
        // regions do not overlap each other or the struct.
        unsafe { core::slice::from_raw_parts_mut(base.add(offset), len) }
    };
    let rx_at = size_of::<FnosConn>();
    let tx_at = rx_at + NASLINK_RECEIVE_BUFFER;
    let strings_at = tx_at + NASLINK_TRANSMIT_BUFFER;
    let (rx, tx) = (
        region(rx_at, NASLINK_RECEIVE_BUFFER),
        region(tx_at, NASLINK_TRANSMIT_BUFFER),
    );
    let mut strings = Strings {
        area: region(strings_at, NASLINK_FNOS_STRINGS),
    };
    let mut session_config = fnos::Config::new(strings.copy(user)?, strings.copy(password)?);
    session_config.device.device_name = strings.copy(device_name)?;
    if config.request_timeout_ms != 0 {
        session_config.request_timeout = Duration::from_millis(config.request_timeout_ms.into());
    }

    let now = Instant::from_millis(config.now_ms);
    let rng = CallbackRng { fill, ctx };
    let client = ws::Client::connect(now, &url, &[], ws::Config::default(), rng, rx, tx).map_err(
        |e| match e {
            ws::ConnectError::Request(_) => naslink_result::NASLINK_ERR_TRANSMIT_BUFFER_TOO_SMALL,
            ws::ConnectError::ReceiveBufferTooSmall => naslink_result::NASLINK_ERR_MEMORY_TOO_SMALL,
        },
    )?;
    let mut session = Session::new(session_config);
    if config.unix_time_s != 0 {
        session.set_unix_time(now, config.unix_time_s);
    }
    // SAFETY: checked aligned and large enough; the memory is the caller's
    // to give.
    unsafe {
        mem.write(FnosConn {
            header: Header::of::<FnosConn>(),
            conn: Connection::new(client, session),
            strings: base.add(strings_at),
        });
        *conn = mem.cast();
    }
    Ok(())
}

/// Send an fnOS request: the command `req` (such as
/// `"appcgi.resmon.cpu"`) with the members of `params_json` (one JSON
/// object, or NULL for none). `*reqid` receives its request id; its
/// answer comes as `NASLINK_EVENT_REPLY` events with that reqid (the last
/// with a final status), or as `NASLINK_EVENT_REQUEST_TIMED_OUT`. Drain
/// `naslink_poll_transmit` afterwards.
///
/// Fails with `NASLINK_ERR_NOT_OPEN` before the upgrade finished and
/// `NASLINK_ERR_BUSY` while 16 requests are in flight; most commands
/// need the login to have finished (`NASLINK_EVENT_LOGGED_IN`).
///
/// # Safety
/// `conn` comes from `naslink_fnos_init`; the strings are
/// NUL-terminated.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn naslink_fnos_request(
    conn: *mut naslink_conn,
    now_ms: u64,
    req: *const c_char,
    params_json: *const c_char,
    reqid: *mut naslink_reqid,
) -> naslink_result {
    code((|| {
        check(reqid)?;
        // SAFETY: the caller's contract.
        let c = unsafe { as_protocol::<FnosConn>(conn) }?;
        // SAFETY: the caller's contract.
        let mut request = Request::new(unsafe { text(req) }?);
        if !params_json.is_null() {
            // SAFETY: the caller's contract.
            request = request.with_object(unsafe { text(params_json) }?);
        }
        c.send(now_ms, &request, reqid)
    })())
}

/// A front-panel figure, for `naslink_fnos_request_panel`.
#[repr(i32)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum naslink_fnos_panel {
    /// `appcgi.sysinfo.getHostName` → `data.hostName`, `data.trimVersion`
    /// (works before login).
    NASLINK_PANEL_HOST_NAME = 0,
    /// `appcgi.sysinfo.getUptime` → `data.uptime` (seconds).
    NASLINK_PANEL_UPTIME = 1,
    /// `appcgi.resmon.gen` for storeSpeed, netSpeed, cpuBusy, memPercent →
    /// `data.item.cpuBusy`, ... (administrators).
    NASLINK_PANEL_RESMON_GEN = 2,
    /// `appcgi.resmon.cpu` (administrators).
    NASLINK_PANEL_CPU = 3,
    /// `appcgi.resmon.mem` → `data.mem.total`, `.used`, ... (administrators).
    NASLINK_PANEL_MEMORY = 4,
    /// `appcgi.resmon.net` → `data.ifs[]` (administrators).
    NASLINK_PANEL_NETWORK = 5,
    /// `appcgi.resmon.disk` → `data.disk[]` (administrators).
    NASLINK_PANEL_DISKS = 6,
    /// `stor.getUserStorage` → `stor[]`.
    NASLINK_PANEL_STORAGE = 7,
}

impl naslink_fnos_panel {
    fn from_i32(which: i32) -> Option<Self> {
        use naslink_fnos_panel::*;
        [
            NASLINK_PANEL_HOST_NAME,
            NASLINK_PANEL_UPTIME,
            NASLINK_PANEL_RESMON_GEN,
            NASLINK_PANEL_CPU,
            NASLINK_PANEL_MEMORY,
            NASLINK_PANEL_NETWORK,
            NASLINK_PANEL_DISKS,
            NASLINK_PANEL_STORAGE,
        ]
        .into_iter()
        .find(|p| *p as i32 == which)
    }

    fn request(self) -> Request<'static> {
        match self {
            Self::NASLINK_PANEL_HOST_NAME => Request::get_host_name(),
            Self::NASLINK_PANEL_UPTIME => Request::get_uptime(),
            Self::NASLINK_PANEL_RESMON_GEN => Request::resmon_gen(&fnos::request::RESMON_GEN_ITEMS),
            Self::NASLINK_PANEL_CPU => Request::resmon_cpu(),
            Self::NASLINK_PANEL_MEMORY => Request::resmon_mem(),
            Self::NASLINK_PANEL_NETWORK => Request::resmon_net(),
            Self::NASLINK_PANEL_DISKS => Request::resmon_disk(),
            Self::NASLINK_PANEL_STORAGE => Request::get_user_storage(),
        }
    }
}

/// Send the front-panel request `which` (a `naslink_fnos_panel` value;
/// others give `NASLINK_ERR_INVALID_ARGUMENT`), as
/// `naslink_fnos_request` does.
///
/// # Safety
/// `conn` comes from `naslink_fnos_init`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn naslink_fnos_request_panel(
    conn: *mut naslink_conn,
    now_ms: u64,
    which: i32,
    reqid: *mut naslink_reqid,
) -> naslink_result {
    code((|| {
        check(reqid)?;
        let panel = naslink_fnos_panel::from_i32(which)
            .ok_or(naslink_result::NASLINK_ERR_INVALID_ARGUMENT)?;
        // SAFETY: the caller's contract.
        let c = unsafe { as_protocol::<FnosConn>(conn) }?;
        c.send(now_ms, &panel.request(), reqid)
    })())
}

/// Answer `NASLINK_EVENT_TWO_FACTOR_REQUIRED` with the code the user
/// typed; `trusted_device` asks the NAS to remember this device. The
/// verification goes out through `naslink_poll_transmit`; the outcome is
/// `NASLINK_EVENT_LOGGED_IN` or `NASLINK_EVENT_TWO_FACTOR_REJECTED`.
///
/// # Safety
/// `conn` comes from `naslink_fnos_init`; `code` is NUL-terminated.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn naslink_fnos_submit_two_factor_code(
    conn: *mut naslink_conn,
    code: *const c_char,
    trusted_device: bool,
) -> naslink_result {
    crate::result::code((|| {
        // SAFETY: the caller's contract.
        let c = unsafe { as_protocol::<FnosConn>(conn) }?;
        // SAFETY: the caller's contract.
        let code = unsafe { text(code) }?;
        c.conn
            .session_mut()
            .submit_two_factor_code(code, trusted_device)
            .map_err(|e| match e {
                fnos::Error::TwoFactorCodeTooLong => naslink_result::NASLINK_ERR_STRING_TOO_LONG,
                _ => naslink_result::NASLINK_ERR_NO_CODE_REQUESTED,
            })
    })())
}

impl FnosConn {
    fn send(
        &mut self,
        now_ms: u64,
        request: &Request<'_>,
        reqid: *mut naslink_reqid,
    ) -> Result<(), naslink_result> {
        if matches!(self.conn.state(), ws::State::Closing | ws::State::Closed) {
            return Err(naslink_result::NASLINK_ERR_CLOSING);
        }
        let id = self
            .conn
            .send(Instant::from_millis(now_ms), request)
            .map_err(|e| match e {
                fnos::Error::NotConnected => naslink_result::NASLINK_ERR_NOT_OPEN,
                fnos::Error::Busy => naslink_result::NASLINK_ERR_BUSY,
                fnos::Error::BufferTooSmall { required } if required <= NASLINK_TRANSMIT_BUFFER => {
                    naslink_result::NASLINK_ERR_BUSY
                }
                fnos::Error::BufferTooSmall { .. } => {
                    naslink_result::NASLINK_ERR_TRANSMIT_BUFFER_TOO_SMALL
                }
                fnos::Error::TooManyParams => naslink_result::NASLINK_ERR_TOO_MANY_PARAMS,
                fnos::Error::ParamsNotAnObject => naslink_result::NASLINK_ERR_PARAMS_NOT_AN_OBJECT,
                _ => naslink_result::NASLINK_ERR_INVALID_ARGUMENT,
            })?;
        // SAFETY: `reqid` was checked not NULL and aligned by the callers;
        // it is writable by their contract.
        unsafe { reqid.write(naslink_reqid::from_bytes(id.as_str().as_bytes())) };
        Ok(())
    }
}

impl Protocol for FnosConn {
    fn handle_input(&mut self, now: Instant, data: &[u8]) -> usize {
        self.conn.handle_input(now, data)
    }
    fn poll_transmit(&mut self, now: Instant) -> Option<&[u8]> {
        self.conn.poll_transmit(now)
    }
    fn advance_transmit(&mut self, n: usize) {
        self.conn.advance_transmit(n)
    }
    fn poll_event(&mut self, out: &mut naslink_event) {
        if let Some((event, message)) = self.conn.poll_event_with_message() {
            *out = to_c(event);
            // A push without a body of its own (kicked, storageChanged)
            // still shows the message it came in.
            if let (true, Some(m)) = (out.json.is_null(), message) {
                *out = out.with_json(m.data);
            }
        }
    }
    fn poll_timeout(&self) -> Option<Instant> {
        self.conn.poll_timeout()
    }
    fn handle_timeout(&mut self, now: Instant) {
        self.conn.handle_timeout(now)
    }
    fn handle_eof(&mut self, now: Instant) {
        self.conn.handle_eof(now)
    }
    fn close(&mut self, now: Instant) -> Result<(), naslink_result> {
        match self.conn.ws_mut().close(now, CloseCode::NORMAL, "") {
            Ok(()) => Ok(()),
            Err(ws::SendError::NotOpen) => Err(naslink_result::NASLINK_ERR_NOT_OPEN),
            Err(_) => Err(naslink_result::NASLINK_ERR_CLOSING),
        }
    }
    fn wipe(&mut self) {
        // SAFETY: the connection is never used again (the caller resets
        // the tag), and the strings pointer covers the string area.
        unsafe {
            core::ptr::drop_in_place(&mut self.conn);
            core::slice::from_raw_parts_mut(self.strings, NASLINK_FNOS_STRINGS).fill(0);
        }
    }
}

/// An fnOS connection event as the C struct.
fn to_c(event: Event<'_, Session<'static>>) -> naslink_event {
    match event {
        Event::Connected => naslink_event::of(K::NASLINK_EVENT_CONNECTED),
        Event::Rejected(r) => naslink_event {
            http_status: r.status(),
            ..naslink_event::of(K::NASLINK_EVENT_REJECTED)
        },
        Event::TransmitTooSmall(_) => naslink_event::of(K::NASLINK_EVENT_TRANSMIT_TOO_SMALL),
        Event::Closed(c) => closed(c),
        Event::Session(e) => session_event(e),
    }
}

pub(crate) fn closed(c: ws::Closed) -> naslink_event {
    let e = naslink_event::of(K::NASLINK_EVENT_CLOSED);
    match c {
        ws::Closed::Clean { code } => naslink_event {
            close_code: code.map_or(-1, |c| c.as_u16().into()),
            ..e.with_detail(c"closed cleanly")
        },
        ws::Closed::Failed(_) => e.with_detail(c"protocol error: the connection was failed"),
        ws::Closed::TimedOut => e.with_detail(c"the opening or closing handshake timed out"),
        ws::Closed::Abnormal => e.with_detail(c"the transport ended without a close handshake"),
    }
}

fn method(m: LoginMethod) -> naslink_login_method {
    match m {
        LoginMethod::AuthToken => naslink_login_method::NASLINK_LOGIN_AUTH_TOKEN,
        LoginMethod::TokenLogin => naslink_login_method::NASLINK_LOGIN_TOKEN_LOGIN,
        LoginMethod::Password => naslink_login_method::NASLINK_LOGIN_PASSWORD,
        LoginMethod::TwoFactor => naslink_login_method::NASLINK_LOGIN_TWO_FACTOR,
    }
}

fn errno(e: Option<fnos::Errno>) -> i64 {
    e.map_or(-1, |e| e.code().into())
}

fn reply(kind: K, r: fnos::Reply<'_>) -> naslink_event {
    let status = match r.status() {
        Status::Partial => naslink_reply_status::NASLINK_STATUS_PARTIAL,
        Status::Success => naslink_reply_status::NASLINK_STATUS_SUCCESS,
        Status::Failure(_) => naslink_reply_status::NASLINK_STATUS_FAILURE,
    };
    naslink_event {
        status,
        reqid: naslink_reqid::from_bytes(r.reqid_text().raw()),
        errno_code: errno(r.errno()),
        ..naslink_event::of(kind).with_json(r.body().raw())
    }
}

fn push_kind(p: &Push<'_>) -> naslink_push_kind {
    match p {
        Push::Kicked => naslink_push_kind::NASLINK_PUSH_KICKED,
        Push::TokenExpired => naslink_push_kind::NASLINK_PUSH_TOKEN_EXPIRED,
        Push::PrivilegeChanged { .. } => naslink_push_kind::NASLINK_PUSH_PRIVILEGE_CHANGED,
        Push::StorageChanged => naslink_push_kind::NASLINK_PUSH_STORAGE_CHANGED,
        Push::TaskId { .. } => naslink_push_kind::NASLINK_PUSH_TASK_ID,
        Push::TaskInfo { .. } => naslink_push_kind::NASLINK_PUSH_TASK_INFO,
        Push::Other { .. } => naslink_push_kind::NASLINK_PUSH_OTHER,
    }
}

fn login_failure(f: LoginFailure) -> naslink_event {
    let e = naslink_event::of(K::NASLINK_EVENT_LOGIN_FAILED);
    match f {
        LoginFailure::Rejected {
            method: m,
            errno: n,
        } => naslink_event {
            login_method: method(m),
            errno_code: errno(n),
            ..e.with_detail(c"the server refused the login")
        },
        LoginFailure::KeyExchangeRefused(n) => naslink_event {
            errno_code: errno(n),
            ..e.with_detail(c"the server refused the key exchange")
        },
        LoginFailure::TimedOut => e.with_detail(c"a login step timed out"),
        LoginFailure::NoCredentials => e.with_detail(c"no credentials to log in with"),
        LoginFailure::DeviceTokenRefused { errno: n } => naslink_event {
            login_method: method(LoginMethod::TokenLogin),
            errno_code: errno(n),
            ..e.with_detail(c"the NAS refused the device token (revoked or expired)")
        },
        LoginFailure::InvalidServerKey(_) => e.with_detail(c"the server's RSA key is unusable"),
        LoginFailure::InvalidSecret(_) => e.with_detail(c"the login secret could not be decrypted"),
        LoginFailure::MissingField(_) => e.with_detail(c"a login answer lacks a required member"),
        LoginFailure::FieldTooLong(_) => e.with_detail(c"a login answer member is too long"),
    }
}

fn session_event(e: fnos::Event<'_>) -> naslink_event {
    use fnos::Event as F;
    match e {
        F::LoggedIn {
            method: m,
            uid,
            admin,
        } => naslink_event {
            login_method: method(m),
            uid: uid.and_then(|u| i64::try_from(u).ok()).unwrap_or(-1),
            admin: admin.map_or(-1, i32::from),
            ..naslink_event::of(K::NASLINK_EVENT_LOGGED_IN)
        },
        F::TwoFactorRequired => naslink_event::of(K::NASLINK_EVENT_TWO_FACTOR_REQUIRED),
        F::TwoFactorRejected(n) => naslink_event {
            errno_code: errno(n),
            ..naslink_event::of(K::NASLINK_EVENT_TWO_FACTOR_REJECTED)
        },
        F::LoginFailed(f) => login_failure(f),
        F::Reply(r) => reply(K::NASLINK_EVENT_REPLY, r),
        F::UnmatchedReply(r) => reply(K::NASLINK_EVENT_UNMATCHED_REPLY, r),
        F::Push(p) => {
            let body = match p {
                Push::TaskId { body, .. }
                | Push::TaskInfo { body, .. }
                | Push::Other { body, .. } => Some(body.raw()),
                _ => None,
            };
            let e = naslink_event {
                push: push_kind(&p),
                ..naslink_event::of(K::NASLINK_EVENT_PUSH)
            };
            body.map_or(e, |b| e.with_json(b))
        }
        F::Unsolicited(o) => naslink_event::of(K::NASLINK_EVENT_UNSOLICITED).with_json(o.raw()),
        F::RequestTimedOut(id) => naslink_event {
            reqid: naslink_reqid::from_bytes(id.as_str().as_bytes()),
            ..naslink_event::of(K::NASLINK_EVENT_REQUEST_TIMED_OUT)
        },
        F::RequestAborted(id) => naslink_event {
            reqid: naslink_reqid::from_bytes(id.as_str().as_bytes()),
            ..naslink_event::of(K::NASLINK_EVENT_REQUEST_ABORTED)
        },
        F::Malformed(_) => naslink_event::of(K::NASLINK_EVENT_MALFORMED)
            .with_detail(c"a received message is not a JSON object"),
        F::ConnectionDead { missed_pongs } => naslink_event {
            missed_pongs,
            ..naslink_event::of(K::NASLINK_EVENT_CONNECTION_DEAD)
        },
    }
}
