//! CFMS over the C ABI, kept thin: the configuration (credentials
//! included: the session logs in by itself), the init function, one
//! request function for any action with JSON data, and how CFMS events
//! become `naslink_event`s. File transfers are not in the C ABI yet.
//!
//! Protocols 3–5 (text) and 13 (frames) are both spoken. Unless the
//! caller pins a version, the connection opens with the core's
//! protocol-13 probe ([`naslink_core::cfms::p13::negotiate`]): a 13 server
//! answers it and the connection goes on; a 3–5 server closes it, which
//! the caller hears as `NASLINK_EVENT_RECONNECT_TEXT` before `CLOSED`.
//! The caller owns the socket, so the reconnect is the caller's: a new
//! socket and a new `naslink_cfms_init` pinned to text.

use core::ffi::{c_char, c_void};

use naslink_core::Connection;
use naslink_core::cfms::p13::{Negotiated, Wire};
use naslink_core::cfms::{self, Buffers, ConnectionEvent, Credentials, LoginError, RequestError};
use naslink_core::connection::Event;
use naslink_core::time::{Duration, Instant};
use naslink_core::ws::{self, CloseCode};

use crate::conn::{
    CallbackRng, Header, NASLINK_RECEIVE_BUFFER, NASLINK_TRANSMIT_BUFFER, Protocol, Tagged,
    as_protocol, check, naslink_conn, naslink_rng_fn,
};
use crate::event::{
    naslink_event, naslink_event_kind as K, naslink_login_method, naslink_reply_status,
    naslink_reqid,
};
use crate::fnos::{closed, text};
use crate::result::{code, naslink_result};

/// CFMS requests in flight per connection.
pub const NASLINK_CFMS_QUEUE: usize = 8;

/// The CFMS session's own buffer: it collects only messages that arrive
/// in pieces, which this ABI's WebSocket (not streaming) never delivers.
const SESSION_RX: usize = 512;

/// How to reach and log in to a CFMS server (protocol 3–5 or 13). The
/// strings are copied by `naslink_cfms_init`.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct naslink_cfms_config {
    /// `ws://HOST:PORT/` (for `wss://` the caller runs TLS below).
    pub url: *const c_char,
    /// User name; NULL stays anonymous (no login).
    pub user: *const c_char,
    /// Password (ignored when `user` is NULL).
    pub password: *const c_char,
    /// The monotonic clock (milliseconds) at init.
    pub now_ms: u64,
    /// Seconds since the UNIX epoch at `now_ms` (token expiry); 0 when
    /// unknown.
    pub unix_time_s: u64,
    /// Deadline of each request in milliseconds; 0 for 30 000.
    pub request_timeout_ms: u32,
    /// After logging in, register as listener: lockdown changes then
    /// arrive as `NASLINK_EVENT_LOCKDOWN`. (Protocol 13 sends them to
    /// every connection: nothing is registered there.)
    pub listener: bool,
    /// 0 (zero-initialized configs): negotiate. The connection opens with
    /// a protocol-13 `server_info`; a 13 server answers it, a 3–5 server
    /// closes the connection (`NASLINK_EVENT_RECONNECT_TEXT`: reconnect
    /// with the version it gives). 3, 4 or 5: speak text, 13: speak
    /// frames, without the probe (any of 3–5 selects text; `server_info`
    /// then tells which). Any other version is refused by
    /// `naslink_cfms_init` with `NASLINK_ERR_PROTOCOL_UNSUPPORTED`.
    /// Remember `naslink_cfms_protocol_version` per server and pin it here.
    pub protocol_version: u32,
}

type CfmsSession = cfms::Session<'static, NASLINK_CFMS_QUEUE>;

/// The connection struct at the start of a CFMS connection's memory; the
/// buffers follow it.
#[repr(C)]
pub(crate) struct CfmsConn {
    header: Header,
    conn: Connection<CfmsSession, &'static mut [u8], CallbackRng>,
    /// The `CLOSED` event, held back while `RECONNECT_TEXT` goes first.
    closed: Option<ws::Closed>,
}

impl Tagged for CfmsConn {
    const TAG: u32 = u32::from_le_bytes(*b"CFMS");
}

/// A multiple of the alignment (for C11 `aligned_alloc`).
const CFMS_SIZE: usize = crate::conn::round_up(
    size_of::<CfmsConn>()
        + NASLINK_RECEIVE_BUFFER
        + NASLINK_TRANSMIT_BUFFER
        + SESSION_RX
        + size_of::<[u8; 32]>(),
    align_of::<CfmsConn>(),
);

/// Bytes of memory one CFMS connection needs: a multiple of
/// `naslink_cfms_align`.
#[unsafe(no_mangle)]
pub extern "C" fn naslink_cfms_size() -> usize {
    CFMS_SIZE
}

/// The alignment that memory needs.
#[unsafe(no_mangle)]
pub extern "C" fn naslink_cfms_align() -> usize {
    align_of::<CfmsConn>()
}

/// Build a CFMS connection in `mem` (`len` bytes, at least
/// `naslink_cfms_size`, aligned to `naslink_cfms_align`) and queue the
/// WebSocket upgrade; `*conn` is the connection. The session then asks
/// the server information (`NASLINK_EVENT_SERVER_INFO`) and logs in
/// (`NASLINK_EVENT_LOGGED_IN`) by itself. With `protocol_version` 0 it
/// asks as protocol 13 first: a 3–5 server then closes the connection
/// (`NASLINK_EVENT_RECONNECT_TEXT`, then `NASLINK_EVENT_CLOSED`): close
/// the socket, connect a new one, `naslink_deinit`, and init again with
/// the event's `protocol_version`. A `protocol_version` other than 0, 3,
/// 4, 5 or 13 is refused with `NASLINK_ERR_PROTOCOL_UNSUPPORTED`.
///
/// # Safety
/// As `naslink_fnos_init`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn naslink_cfms_init(
    mem: *mut c_void,
    len: usize,
    config: *const naslink_cfms_config,
    rng: naslink_rng_fn,
    ctx: *mut c_void,
    conn: *mut *mut naslink_conn,
) -> naslink_result {
    // SAFETY: the caller's contract.
    code(unsafe { init(mem, len, config, rng, ctx, conn) })
}

/// `naslink_cfms_init` with `?`.
///
/// # Safety
/// As `naslink_cfms_init`.
unsafe fn init(
    mem: *mut c_void,
    len: usize,
    config: *const naslink_cfms_config,
    rng: naslink_rng_fn,
    ctx: *mut c_void,
    conn: *mut *mut naslink_conn,
) -> Result<(), naslink_result> {
    let mem = mem.cast::<CfmsConn>();
    check(mem)?;
    check(config)?;
    check(conn)?;
    let fill = rng.ok_or(naslink_result::NASLINK_ERR_NULL)?;
    if len < CFMS_SIZE {
        return Err(naslink_result::NASLINK_ERR_MEMORY_TOO_SMALL);
    }
    // SAFETY: checked not NULL and aligned; readable by contract.
    let config = unsafe { *config };
    let pinned = match config.protocol_version {
        0 => None,
        v => {
            Wire::for_version(v).map_err(|_| naslink_result::NASLINK_ERR_PROTOCOL_UNSUPPORTED)?;
            Some(v)
        }
    };
    // SAFETY: the caller's contract on the config's strings.
    let url = unsafe { text(config.url) }?;
    let url = ws::Url::parse(url).map_err(|_| naslink_result::NASLINK_ERR_INVALID_URL)?;
    let login = if config.user.is_null() {
        None
    } else {
        // SAFETY: as above.
        let (user, password) = unsafe { (text(config.user)?, text(config.password)?) };
        Some(
            Credentials::new(user, password)
                .map_err(|_| naslink_result::NASLINK_ERR_STRING_TOO_LONG)?,
        )
    };

    let base = mem.cast::<u8>();
    // The caller's memory may be uninitialized (malloc, .bss on some
    // toolchains): zero it before any byte of it is seen as a `u8`.
    // SAFETY: `CFMS_SIZE` <= the caller's `len` writable bytes at `mem`.
    unsafe { base.write_bytes(0, CFMS_SIZE) };
    let region = |offset: usize, len: usize| -> &'static mut [u8] {
        // SAFETY: offset + len <= CFMS_SIZE <= the caller's `len`; the
        // regions do not overlap each other or the struct.
        unsafe { core::slice::from_raw_parts_mut(base.add(offset), len) }
    };
    let rx_at = size_of::<CfmsConn>();
    let tx_at = rx_at + NASLINK_RECEIVE_BUFFER;
    let session_at = tx_at + NASLINK_TRANSMIT_BUFFER;
    let hashes_at = session_at + SESSION_RX;
    let (rx, tx, session_rx) = (
        region(rx_at, NASLINK_RECEIVE_BUFFER),
        region(tx_at, NASLINK_TRANSMIT_BUFFER),
        region(session_at, SESSION_RX),
    );
    let (hashes, _) = region(hashes_at, 32).as_chunks_mut::<32>();

    let mut session_config = cfms::Config {
        login,
        listener: config.listener,
        protocol_version: pinned,
        negotiate: pinned.is_none(),
        ..cfms::Config::default()
    };
    if config.request_timeout_ms != 0 {
        session_config.request_timeout = Duration::from_millis(config.request_timeout_ms.into());
    }
    let now = Instant::from_millis(config.now_ms);
    let mut session = CfmsSession::new(
        session_config,
        Buffers {
            rx: session_rx,
            chunk_hashes: hashes,
        },
    );
    if config.unix_time_s != 0 {
        session.set_unix_time(now, config.unix_time_s as f64);
    }
    let rng = CallbackRng { fill, ctx };
    let client = ws::Client::connect(now, &url, &[], ws::Config::default(), rng, rx, tx)
        .map_err(|_| naslink_result::NASLINK_ERR_TRANSMIT_BUFFER_TOO_SMALL)?;
    // SAFETY: checked aligned and large enough; the caller's memory.
    unsafe {
        mem.write(CfmsConn {
            header: Header::of::<CfmsConn>(),
            conn: Connection::new(client, session),
            closed: None,
        });
        *conn = mem.cast();
    }
    Ok(())
}

/// Send the CFMS action `action` (such as `"list_directory"`) with
/// `data_json`, a JSON object (NULL for `{}`). `*reqid` receives the
/// request's sequence number as text; its answer is a
/// `NASLINK_EVENT_REPLY` with that reqid, `errno_code` the CFMS `code`
/// (200: `NASLINK_STATUS_SUCCESS`; protocol 13 adds 1001 replay refused,
/// 4001 password policy, 4002 password expired, 4003 account inactive,
/// 429 too many login attempts). Refused with `NASLINK_ERR_BUSY`
/// until the opening sequence is done (after `NASLINK_EVENT_LOGGED_IN`,
/// or `NASLINK_EVENT_LISTENER_REGISTERED` when registering as listener
/// at 3–5), and while a queue of 8 is full. The same call works at 3–5
/// and 13.
///
/// # Safety
/// `conn` comes from `naslink_cfms_init`; the strings are NUL-terminated.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn naslink_cfms_request(
    conn: *mut naslink_conn,
    now_ms: u64,
    action: *const c_char,
    data_json: *const c_char,
    reqid: *mut naslink_reqid,
) -> naslink_result {
    code((|| {
        check(reqid)?;
        // SAFETY: the caller's contract.
        let c = unsafe { as_protocol::<CfmsConn>(conn) }?;
        // SAFETY: the caller's contract.
        let action = unsafe { text(action) }?;
        let data = if data_json.is_null() {
            "{}"
        } else {
            // SAFETY: the caller's contract.
            unsafe { text(data_json) }?
        };
        let seq = c
            .conn
            .request(Instant::from_millis(now_ms), action, data.as_bytes())
            .map_err(refusal)?;
        // SAFETY: checked not NULL and aligned; writable by contract.
        unsafe { reqid.write(seq_text(seq)) };
        Ok(())
    })())
}

/// `*version`: the CFMS protocol version the server announced on this
/// connection (3, 4, 5 or 13), 0 until its `server_info` answer. Remember
/// it per server and pin it (`naslink_cfms_config.protocol_version`) to
/// skip the negotiation next time.
///
/// # Safety
/// `conn` comes from `naslink_cfms_init`; `version` points to a writable
/// `uint32_t`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn naslink_cfms_protocol_version(
    conn: *mut naslink_conn,
    version: *mut u32,
) -> naslink_result {
    code((|| {
        check(version)?;
        // SAFETY: the caller's contract.
        let c = unsafe { as_protocol::<CfmsConn>(conn) }?;
        let v = c.conn.session().protocol_version().unwrap_or(0);
        // SAFETY: checked not NULL and aligned; writable by contract.
        unsafe { version.write(v) };
        Ok(())
    })())
}

fn refusal(e: cfms::Error) -> naslink_result {
    use naslink_result::*;
    match e {
        cfms::Error::Busy | cfms::Error::TransferActive => NASLINK_ERR_BUSY,
        cfms::Error::Ws(ws::SendError::NotOpen) => NASLINK_ERR_NOT_OPEN,
        cfms::Error::Ws(ws::SendError::Closing) => NASLINK_ERR_CLOSING,
        cfms::Error::Ws(ws::SendError::InsufficientSize(s))
            if s.required <= NASLINK_TRANSMIT_BUFFER =>
        {
            NASLINK_ERR_BUSY
        }
        cfms::Error::Ws(_) | cfms::Error::BufferTooSmall { .. } => {
            NASLINK_ERR_TRANSMIT_BUFFER_TOO_SMALL
        }
        cfms::Error::InvalidData(_) => NASLINK_ERR_PARAMS_NOT_AN_OBJECT,
        cfms::Error::TooLong { .. } => NASLINK_ERR_STRING_TOO_LONG,
        cfms::Error::Broken => NASLINK_ERR_CLOSING,
        _ => NASLINK_ERR_INVALID_ARGUMENT,
    }
}

/// A sequence number as reqid text.
fn seq_text(seq: cfms::Seq) -> naslink_reqid {
    let mut digits = [0u8; 10];
    let mut n = seq.0;
    let mut at = digits.len();
    loop {
        at -= 1;
        if let Some(d) = digits.get_mut(at) {
            *d = b'0' + (n % 10) as u8;
        }
        n /= 10;
        if n == 0 || at == 0 {
            break;
        }
    }
    naslink_reqid::from_bytes(digits.get(at..).unwrap_or_default())
}

impl Protocol for CfmsConn {
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
        if let Some(c) = self.closed.take() {
            *out = closed(c);
            return;
        }
        let framed = self.conn.session().wire() == Wire::Framed;
        let (event, close) = match self.conn.poll_event() {
            Some(Event::Closed(c)) => (closed(c), Some(c)),
            Some(e) => (to_c(e, framed), None),
            None => return,
        };
        // The probe's close: the server speaks text. The session learnt
        // it; the caller, who owns the socket, must reconnect (§11).
        if close.is_some() && self.conn.session().negotiated() == Some(Negotiated::Text) {
            self.closed = close;
            *out = naslink_event {
                protocol_version: *cfms::PROTOCOLS.start(),
                ..naslink_event::of(K::NASLINK_EVENT_RECONNECT_TEXT)
                    .with_detail(c"the server speaks CFMS 3-5: reconnect with protocol_version 3")
            };
            return;
        }
        *out = event;
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
        // the tag); the session wipes its credentials when dropped.
        unsafe { core::ptr::drop_in_place(&mut self.conn) }
    }
}

/// `framed`: the connection speaks protocol 13 (its codes differ).
fn to_c(event: Event<'_, CfmsSession>, framed: bool) -> naslink_event {
    match event {
        Event::Connected => naslink_event::of(K::NASLINK_EVENT_CONNECTED),
        Event::Rejected(r) => naslink_event {
            http_status: r.status(),
            ..naslink_event::of(K::NASLINK_EVENT_REJECTED)
        },
        Event::TransmitTooSmall(_) => naslink_event::of(K::NASLINK_EVENT_TRANSMIT_TOO_SMALL),
        Event::Closed(c) => closed(c),
        Event::Session(e) => session_event(e, framed),
    }
}

fn login_failure(e: LoginError, framed: bool) -> naslink_event {
    let (detail, code): (&'static core::ffi::CStr, i64) = match e {
        LoginError::InvalidCredentials => (c"invalid username or password", 401),
        LoginError::InvalidTwoFactorCode => (c"invalid two-factor code", 401),
        LoginError::PasswordExpired => (
            c"the password has expired and must be changed",
            if framed { 4002 } else { 403 },
        ),
        LoginError::Lockdown => (c"the server is in lockdown", 999),
        LoginError::BadToken => (c"the server sent an unusable token", -1),
        LoginError::Rejected(s) => (c"the server refused the login", s.code()),
    };
    naslink_event {
        login_method: naslink_login_method::NASLINK_LOGIN_PASSWORD,
        errno_code: code,
        ..naslink_event::of(K::NASLINK_EVENT_LOGIN_FAILED).with_detail(detail)
    }
}

fn session_event(e: ConnectionEvent<'_>, framed: bool) -> naslink_event {
    use ConnectionEvent as C;
    match e {
        C::ServerInfo {
            seq,
            protocol_version,
            lockdown,
            response,
        } => naslink_event {
            reqid: seq.map_or(naslink_reqid::EMPTY, seq_text),
            protocol_version,
            lockdown: lockdown.into(),
            ..naslink_event::of(K::NASLINK_EVENT_SERVER_INFO).with_json(response.root().raw())
        },
        C::ProtocolUnsupported { version } => naslink_event {
            protocol_version: version.unwrap_or(0),
            ..naslink_event::of(K::NASLINK_EVENT_PROTOCOL_UNSUPPORTED).with_detail(
                c"the server speaks a CFMS protocol version this library does not (3-5, 13)",
            )
        },
        C::LoggedIn {
            expires_in,
            response,
        } => naslink_event {
            login_method: naslink_login_method::NASLINK_LOGIN_PASSWORD,
            expires_in_ms: expires_in.total_millis(),
            ..naslink_event::of(K::NASLINK_EVENT_LOGGED_IN).with_json(response.root().raw())
        },
        C::TwoFactorRequired { .. } => naslink_event::of(K::NASLINK_EVENT_TWO_FACTOR_REQUIRED),
        C::LoginFailed(e) => login_failure(e, framed),
        C::TokenRefreshed { expires_in } => naslink_event {
            expires_in_ms: expires_in.total_millis(),
            ..naslink_event::of(K::NASLINK_EVENT_TOKEN_REFRESHED)
        },
        C::TokenRejected { .. } => naslink_event::of(K::NASLINK_EVENT_TOKEN_REJECTED),
        C::ListenerRegistered { status } => naslink_event {
            errno_code: status.code(),
            ..naslink_event::of(K::NASLINK_EVENT_LISTENER_REGISTERED)
        },
        C::Lockdown { on } => naslink_event {
            lockdown: on.into(),
            ..naslink_event::of(K::NASLINK_EVENT_LOCKDOWN)
        },
        C::Reply {
            seq,
            status,
            response,
        } => naslink_event {
            reqid: seq_text(seq),
            status: if status.code() == 200 {
                naslink_reply_status::NASLINK_STATUS_SUCCESS
            } else {
                naslink_reply_status::NASLINK_STATUS_FAILURE
            },
            errno_code: status.code(),
            ..naslink_event::of(K::NASLINK_EVENT_REPLY).with_json(response.root().raw())
        },
        C::RequestFailed { seq, error } => {
            let kind = match error {
                RequestError::Timeout => K::NASLINK_EVENT_REQUEST_TIMED_OUT,
                RequestError::Disconnected => K::NASLINK_EVENT_REQUEST_ABORTED,
                _ => K::NASLINK_EVENT_MALFORMED,
            };
            naslink_event {
                reqid: seq_text(seq),
                ..naslink_event::of(kind).with_detail(c"the request got no usable answer")
            }
        }
        C::Desynchronized(_) => naslink_event::of(K::NASLINK_EVENT_CONNECTION_DEAD)
            .with_detail(c"answers can no longer be matched to requests: reconnect"),
        C::BadMessage(_) => naslink_event::of(K::NASLINK_EVENT_MALFORMED)
            .with_detail(c"a received message is not one a CFMS server sends: close"),
        // Transfers are not in the C ABI: the server sends these only after
        // a transfer command.
        _ => naslink_event::of(K::NASLINK_EVENT_MALFORMED)
            .with_detail(c"a file transfer event (transfers are not in the C ABI)"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sequence_numbers_become_decimal_text() {
        let text = |n| seq_text(cfms::Seq(n)).text.map(|c| c as u8);
        assert!(text(0).starts_with(b"0\0"));
        assert!(text(42).starts_with(b"42\0"));
        assert!(text(u32::MAX).starts_with(b"4294967295\0"));
    }
}
