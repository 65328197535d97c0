//! The event struct `naslink_poll_event`
//! fills: one tagged C struct for every protocol, whose fields each event
//! kind documents.

use core::ffi::c_char;

/// What happened. Each kind lists the `naslink_event` fields it sets;
/// the others keep their "none" values.
#[repr(i32)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum naslink_event_kind {
    /// No event: the queue is drained.
    NASLINK_EVENT_NONE = 0,
    /// The WebSocket upgrade succeeded; the login starts by itself.
    NASLINK_EVENT_CONNECTED = 1,
    /// The server refused the upgrade: `http_status`. `CLOSED` follows.
    NASLINK_EVENT_REJECTED = 2,
    /// The login succeeded: `login_method`, `uid`, `admin` (fnOS);
    /// `expires_in_ms`, `json` (CFMS).
    NASLINK_EVENT_LOGGED_IN = 3,
    /// The server asks for a two-factor code: answer with
    /// `naslink_fnos_submit_two_factor_code` (fnOS). CFMS two-factor logins
    /// are not in the C ABI yet: close the connection.
    NASLINK_EVENT_TWO_FACTOR_REQUIRED = 4,
    /// The login gave up: `detail`, `errno_code`, `login_method`.
    NASLINK_EVENT_LOGIN_FAILED = 5,
    /// A frame answering a request in flight: `reqid`, `status`,
    /// `errno_code`, `json` (the whole reply object).
    NASLINK_EVENT_REPLY = 6,
    /// A reply whose reqid is not in flight: as `REPLY`.
    NASLINK_EVENT_UNMATCHED_REPLY = 7,
    /// A server push: `push`, `json` (the whole push object).
    NASLINK_EVENT_PUSH = 8,
    /// A JSON object that is neither reply nor push: `json`.
    NASLINK_EVENT_UNSOLICITED = 9,
    /// A request got no final frame before its deadline: `reqid`.
    NASLINK_EVENT_REQUEST_TIMED_OUT = 10,
    /// The connection ended before a request was answered: `reqid`.
    NASLINK_EVENT_REQUEST_ABORTED = 11,
    /// A received message could not be read: `detail`. The connection
    /// stays usable.
    NASLINK_EVENT_MALFORMED = 12,
    /// Too many heartbeat pongs missed: `missed_pongs`. Close and reconnect.
    NASLINK_EVENT_CONNECTION_DEAD = 13,
    /// The session's output does not fit `NASLINK_TRANSMIT_BUFFER`:
    /// no progress is possible; close the connection.
    NASLINK_EVENT_TRANSMIT_TOO_SMALL = 14,
    /// The connection is over: `close_code` (the server's, or -1),
    /// `detail`. Close the transport.
    NASLINK_EVENT_CLOSED = 15,
    /// The two-factor code was refused: `errno_code`. Submit another.
    NASLINK_EVENT_TWO_FACTOR_REJECTED = 16,
    /// CFMS: the server information: `protocol_version` (3, 4, 5 or 13),
    /// `lockdown`, `json`; `reqid` when it answers a request of the
    /// application's.
    NASLINK_EVENT_SERVER_INFO = 17,
    /// CFMS: the server speaks a protocol version this library does not
    /// (6 to 12, above 13, or 3–5 framed as 13): `protocol_version` (the
    /// version it announced, 0 when it named none), `detail`. Close.
    NASLINK_EVENT_PROTOCOL_UNSUPPORTED = 18,
    /// CFMS: the token was refreshed: `expires_in_ms`.
    NASLINK_EVENT_TOKEN_REFRESHED = 19,
    /// CFMS: the server rejected the token (the session logs in again when
    /// it can).
    NASLINK_EVENT_TOKEN_REJECTED = 20,
    /// CFMS 3–5: the listener registration was answered: `errno_code`
    /// (200: lockdown changes will arrive). Protocol 13 has no
    /// registration (every connection gets lockdown changes), so this
    /// never comes there.
    NASLINK_EVENT_LISTENER_REGISTERED = 21,
    /// CFMS: lockdown changed (a push to listeners; at 13 to every
    /// connection): `lockdown`.
    NASLINK_EVENT_LOCKDOWN = 22,
    /// CFMS, negotiating (`naslink_cfms_config.protocol_version` 0): the
    /// server closed the connection at the protocol-13 probe, so it speaks
    /// 3–5 as text: `protocol_version` (3: the pin that selects text),
    /// `detail`. `REQUEST_ABORTED` (the session's own `server_info`, a
    /// reqid the application never had) comes before it, `CLOSED` after
    /// it. Then close the socket, connect a new one, `naslink_deinit` and
    /// call `naslink_cfms_init` again with `protocol_version` set to this
    /// event's; remember it for this server to skip the probe next time.
    NASLINK_EVENT_RECONNECT_TEXT = 23,
}

/// How a reply frame ended.
#[repr(i32)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum naslink_reply_status {
    /// Not a reply.
    NASLINK_STATUS_NONE = 0,
    /// One frame of a multi-frame answer; more follow.
    NASLINK_STATUS_PARTIAL = 1,
    /// The final frame, successful.
    NASLINK_STATUS_SUCCESS = 2,
    /// The final frame, failed (`errno_code`, when the server gave one).
    NASLINK_STATUS_FAILURE = 3,
}

/// Which fnOS push (`sysNotify`) arrived.
#[repr(i32)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum naslink_push_kind {
    /// Not a push.
    NASLINK_PUSH_NONE = 0,
    /// Another login took this session over.
    NASLINK_PUSH_KICKED = 1,
    /// The login token expired.
    NASLINK_PUSH_TOKEN_EXPIRED = 2,
    /// The user's privilege changed.
    NASLINK_PUSH_PRIVILEGE_CHANGED = 3,
    /// Storage was added, removed or changed.
    NASLINK_PUSH_STORAGE_CHANGED = 4,
    /// A long command became a task.
    NASLINK_PUSH_TASK_ID = 5,
    /// Progress of a task.
    NASLINK_PUSH_TASK_INFO = 6,
    /// Any other kind (read `sysNotify` from `json`).
    NASLINK_PUSH_OTHER = 7,
}

/// How a login was attempted.
#[repr(i32)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum naslink_login_method {
    /// Not a login event (or no method tried).
    NASLINK_LOGIN_NONE = 0,
    /// `user.authToken` with the stored token.
    NASLINK_LOGIN_AUTH_TOKEN = 1,
    /// `user.tokenLogin` with the stored long token.
    NASLINK_LOGIN_TOKEN_LOGIN = 2,
    /// `user.login` with the password.
    NASLINK_LOGIN_PASSWORD = 3,
    /// `user.2fa.loginVerify`.
    NASLINK_LOGIN_TWO_FACTOR = 4,
}

/// Capacity of [`naslink_reqid::text`]: the 28 characters of an fnOS
/// reqid (or a CFMS sequence number) and a NUL.
pub const NASLINK_REQID_CAPACITY: usize = 32;

/// A request's handle as text, NUL-terminated (empty when none). A reply
/// from the server with a longer reqid is cut to fit.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct naslink_reqid {
    /// The text and a NUL.
    pub text: [c_char; NASLINK_REQID_CAPACITY],
}

impl naslink_reqid {
    /// No reqid.
    pub const EMPTY: naslink_reqid = naslink_reqid {
        text: [0; NASLINK_REQID_CAPACITY],
    };

    /// `bytes`, cut to the capacity, NUL-terminated.
    pub(crate) fn from_bytes(bytes: &[u8]) -> Self {
        let mut r = Self::EMPTY;
        for (dst, src) in r
            .text
            .iter_mut()
            .zip(bytes.iter().take(NASLINK_REQID_CAPACITY - 1))
        {
            *dst = *src as c_char;
        }
        r
    }
}

/// One event: `kind` says which fields mean something (see
/// `naslink_event_kind`). Pointers borrow the connection's memory and are
/// valid until the next call on that connection; `json` is not
/// NUL-terminated (use `json_len`), `detail` is a static NUL-terminated
/// string.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct naslink_event {
    /// What happened.
    pub kind: naslink_event_kind,
    /// Replies: how the frame ended.
    pub status: naslink_reply_status,
    /// Pushes: which one.
    pub push: naslink_push_kind,
    /// Login events: the method.
    pub login_method: naslink_login_method,
    /// Replies, timeouts, aborts: the request's handle.
    pub reqid: naslink_reqid,
    /// The server's code: fnOS `errno`, CFMS `code` (200 success); -1 none.
    pub errno_code: i64,
    /// CFMS `SERVER_INFO`: the protocol version (3, 4, 5 or 13);
    /// `PROTOCOL_UNSUPPORTED`: the one announced; `RECONNECT_TEXT`: the one
    /// to pin (3); else 0.
    pub protocol_version: u32,
    /// CFMS `SERVER_INFO`, `LOCKDOWN`: 1 on, 0 off, -1 not this event.
    pub lockdown: i32,
    /// CFMS `LOGGED_IN`, `TOKEN_REFRESHED`: milliseconds until the token
    /// expires, else 0.
    pub expires_in_ms: u64,
    /// `LOGGED_IN`: the user's uid, or -1 when not sent.
    pub uid: i64,
    /// `LOGGED_IN`: 1 administrator, 0 not, -1 not sent.
    pub admin: i32,
    /// `CLOSED`: the server's close code, or -1.
    pub close_code: i32,
    /// `REJECTED`: the HTTP status of the upgrade answer, or 0.
    pub http_status: u16,
    /// `CONNECTION_DEAD`: pings that went unanswered.
    pub missed_pongs: u8,
    /// The received JSON object (replies, pushes, unsolicited), or NULL.
    pub json: *const u8,
    /// Bytes at `json`.
    pub json_len: usize,
    /// A short English explanation (login failures, malformed messages,
    /// why the connection closed), or NULL.
    pub detail: *const c_char,
}

impl naslink_event {
    /// No event.
    pub(crate) const NONE: naslink_event = naslink_event {
        kind: naslink_event_kind::NASLINK_EVENT_NONE,
        status: naslink_reply_status::NASLINK_STATUS_NONE,
        push: naslink_push_kind::NASLINK_PUSH_NONE,
        login_method: naslink_login_method::NASLINK_LOGIN_NONE,
        reqid: naslink_reqid::EMPTY,
        errno_code: -1,
        protocol_version: 0,
        lockdown: -1,
        expires_in_ms: 0,
        uid: -1,
        admin: -1,
        close_code: -1,
        http_status: 0,
        missed_pongs: 0,
        json: core::ptr::null(),
        json_len: 0,
        detail: core::ptr::null(),
    };

    /// An event of `kind` with every other field "none".
    pub(crate) fn of(kind: naslink_event_kind) -> Self {
        naslink_event { kind, ..Self::NONE }
    }

    /// Point `json` at `bytes`.
    pub(crate) fn with_json(mut self, bytes: &[u8]) -> Self {
        self.json = bytes.as_ptr();
        self.json_len = bytes.len();
        self
    }

    /// Set `detail`.
    pub(crate) fn with_detail(mut self, detail: &'static core::ffi::CStr) -> Self {
        self.detail = detail.as_ptr();
        self
    }
}
