//! `naslink.Connection`: one fnOS session over successive WebSocket
//! connections, sans I/O.

use std::sync::OnceLock;

use naslink_core::connection::Event as CoreEvent;
use naslink_core::fnos::{self, LoginFailure, LoginMethod, Push as CorePush, Reqid, Status};
use naslink_core::ws::{self, Closed as WsClosed};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict};
use zeroize::Zeroizing;

use crate::events;
use crate::{BusyError, Error, NotConnectedError, Rng, duration, instant, rng, seconds};

/// What the session borrows: its configuration's strings, owned here.
struct Owned {
    url: String,
    user: String,
    password: Zeroizing<String>,
    device_name: String,
}

/// The core connection over an fnOS session that borrows [`Owned`];
/// `None` only if building the next connection failed.
type Live<'a> = Option<naslink_core::Connection<Session<'a>, Vec<u8>, Rng>>;

/// Requests in flight per connection: an asyncio client keeps many going
/// at once (the benchmark runs 64), more than the core's default of 16.
pub const PENDING: usize = 128;

/// The core's fnOS session with room for [`PENDING`] requests.
type Session<'a> = fnos::Session<'a, PENDING>;

self_cell::self_cell!(
    /// The owned strings and the connection borrowing them, in one value a
    /// Python object can hold.
    struct Cell {
        owner: Owned,
        #[not_covariant]
        dependent: Live,
    }
);

/// Seconds since the UNIX epoch (reqids carry wall-clock seconds).
fn unix_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Settings kept for every new connection.
#[derive(Clone, Copy)]
struct Sizes {
    receive: usize,
    transmit: usize,
}

/// Transmit buffer: the largest login envelope is about 2 KB; requests
/// with large parameters need more.
const TRANSMIT_BUFFER: usize = 64 * 1024;

/// A new WebSocket client for `url`, its upgrade request queued.
fn ws_client(
    url: &str,
    now: naslink_core::time::Instant,
    sizes: Sizes,
) -> Result<ws::Client<Vec<u8>, Rng>, String> {
    let url = ws::Url::parse(url).map_err(|e| format!("invalid URL {url:?}: {e:?}"))?;
    ws::Client::connect(
        now,
        &url,
        &[],
        ws::Config::default(),
        rng(),
        vec![0; sizes.receive],
        vec![0; sizes.transmit],
    )
    .map_err(|e| format!("cannot start the WebSocket upgrade: {e:?}"))
}

/// One fnOS session (login, signed requests, pushes, heartbeat) over a
/// WebSocket connection, sans I/O: it never touches a socket or a clock.
///
/// Dial ``(host, port)`` (TLS when ``secure``), then loop: write
/// ``data_to_send()``, pass what you read to ``receive_data()`` (``b""`` at
/// end of stream), take events from ``next_event()`` until it returns
/// ``None``, and call ``handle_timeout()`` at ``next_timeout()``. The login
/// runs by itself; ``request()`` queues a command and returns its reqid.
/// After ``Closed``, ``reconnect()`` starts over on a new transport with the
/// same session, which logs in again with its token.
#[pyclass(module = "naslink")]
pub struct Connection {
    cell: Cell,
    sizes: Sizes,
    /// Received bytes and end of stream, for the core.
    inbox: crate::Inbox,
    /// Bytes taken out of the core to unblock input, for `data_to_send`.
    output: Vec<u8>,
    /// The time of the last input, for calls that take none.
    now: naslink_core::time::Instant,
}

impl Connection {
    fn with<R>(
        &mut self,
        f: impl for<'a> FnOnce(&mut naslink_core::Connection<Session<'a>, Vec<u8>, Rng>) -> PyResult<R>,
    ) -> PyResult<R> {
        self.cell.with_dependent_mut(|_, live| match live {
            Some(conn) => f(conn),
            None => Err(Error::new_err("the connection could not be rebuilt")),
        })
    }

    /// Move what the core wants to transmit into `output`.
    fn drain_transmit(&mut self) {
        let now = self.now;
        let out = &mut self.output;
        self.cell.with_dependent_mut(|_, live| {
            if let Some(conn) = live {
                while let Some(bytes) = conn.poll_transmit(now) {
                    out.extend_from_slice(bytes);
                    let n = bytes.len();
                    conn.advance_transmit(n);
                }
            }
        });
    }

    /// One event, feeding buffered input as needed; `None` when more input
    /// is needed.
    fn next(&mut self, py: Python<'_>) -> PyResult<Option<Py<PyAny>>> {
        loop {
            let now = self.now;
            let event = self.cell.with_dependent_mut(|_, live| {
                let Some(conn) = live else { return Ok(None) };
                match conn.poll_event_with_message() {
                    Some((event, message)) => convert(py, event, message.map(|m| m.data)).map(Some),
                    None => Ok(None),
                }
            })?;
            if let Some(e) = event {
                return Ok(Some(e));
            }
            if !self.inbox.pending().is_empty() {
                let input = self.inbox.pending();
                let taken = self.cell.with_dependent_mut(|_, live| {
                    live.as_mut()
                        .map_or(0, |conn| conn.handle_input(now, input))
                });
                self.inbox.consume(taken);
                if taken == 0 {
                    // A pong or close reply waits for room: move the
                    // output out, then try again; still nothing means
                    // the core is done with this input for now.
                    let before = self.output.len();
                    self.drain_transmit();
                    if self.output.len() == before {
                        return Ok(None);
                    }
                }
                continue;
            }
            if self.inbox.take_eof() {
                self.with(|conn| {
                    conn.handle_eof(now);
                    Ok(())
                })?;
                continue;
            }
            return Ok(None);
        }
    }
}

#[pymethods]
impl Connection {
    /// Start a session for ``url`` (``ws://HOST:5666/websocket?type=main``
    /// or ``wss://...``) as ``user``; the upgrade request is ready in
    /// ``data_to_send()``.
    #[new]
    #[pyo3(signature = (url, user, password, *, device_name = "naslink".to_owned(),
        request_timeout = 30.0, login_timeout = 30.0, heartbeat_interval = 30.0,
        max_message_size = 1 << 20, now = None))]
    #[pyo3(text_signature = "(url, user, password, *, device_name='naslink', \
        request_timeout=30.0, login_timeout=30.0, heartbeat_interval=30.0, \
        max_message_size=1048576, now=None)")]
    #[allow(clippy::too_many_arguments)]
    fn new(
        py: Python<'_>,
        url: String,
        user: String,
        password: String,
        device_name: String,
        request_timeout: f64,
        login_timeout: f64,
        heartbeat_interval: f64,
        max_message_size: usize,
        now: Option<f64>,
    ) -> PyResult<Self> {
        let now = instant(py, now)?;
        let sizes = Sizes {
            receive: max_message_size.max(ws::MIN_RECEIVE_BUFFER),
            transmit: TRANSMIT_BUFFER,
        };
        let client = ws_client(&url, now, sizes).map_err(PyValueError::new_err)?;
        let (request_timeout, login_timeout) =
            (duration(request_timeout)?, duration(login_timeout)?);
        let heartbeat = duration(heartbeat_interval)?;
        let owned = Owned {
            url,
            user,
            password: Zeroizing::new(password),
            device_name,
        };
        let cell = Cell::new(owned, move |o| {
            let mut config = fnos::Config::new(&o.user, &o.password);
            config.device.device_name = &o.device_name;
            config.request_timeout = request_timeout;
            config.login_timeout = login_timeout;
            config.heartbeat.interval = heartbeat;
            let mut session = Session::new(config);
            session.set_unix_time(now, unix_secs());
            Some(naslink_core::Connection::new(client, session))
        });
        Ok(Connection {
            cell,
            sizes,
            inbox: crate::Inbox::default(),
            output: Vec::new(),
            now,
        })
    }

    /// The host to dial.
    #[getter]
    fn host(&self) -> PyResult<String> {
        let url = &self.cell.borrow_owner().url;
        let parsed = ws::Url::parse(url).map_err(|e| PyValueError::new_err(format!("{e:?}")))?;
        Ok(parsed
            .host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned())
    }

    /// The port to dial.
    #[getter]
    fn port(&self) -> PyResult<u16> {
        ws::Url::parse(&self.cell.borrow_owner().url)
            .map(|u| u.port)
            .map_err(|e| PyValueError::new_err(format!("{e:?}")))
    }

    /// ``True`` for ``wss://``: run TLS below the WebSocket.
    #[getter]
    fn secure(&self) -> PyResult<bool> {
        ws::Url::parse(&self.cell.borrow_owner().url)
            .map(|u| u.secure)
            .map_err(|e| PyValueError::new_err(format!("{e:?}")))
    }

    /// Bytes read from the transport; ``b""`` means end of stream.
    #[pyo3(signature = (data, now = None))]
    fn receive_data(&mut self, py: Python<'_>, data: &[u8], now: Option<f64>) -> PyResult<()> {
        self.now = self.now.max(instant(py, now)?);
        self.inbox.push(data, self.sizes.receive)
    }

    /// The next event, or ``None`` when more input (or time) is needed.
    #[pyo3(signature = (now = None))]
    fn next_event(&mut self, py: Python<'_>, now: Option<f64>) -> PyResult<Option<Py<PyAny>>> {
        self.now = self.now.max(instant(py, now)?);
        self.next(py)
    }

    /// Every event available now, in order.
    #[pyo3(signature = (now = None))]
    fn events(&mut self, py: Python<'_>, now: Option<f64>) -> PyResult<Vec<Py<PyAny>>> {
        self.now = self.now.max(instant(py, now)?);
        let mut all = Vec::new();
        while let Some(e) = self.next(py)? {
            all.push(e);
        }
        Ok(all)
    }

    /// Bytes to write to the transport (empty when there are none).
    #[pyo3(signature = (now = None))]
    fn data_to_send<'py>(
        &mut self,
        py: Python<'py>,
        now: Option<f64>,
    ) -> PyResult<Bound<'py, PyBytes>> {
        self.now = self.now.max(instant(py, now)?);
        self.drain_transmit();
        let bytes = PyBytes::new(py, &self.output);
        self.output.clear();
        Ok(bytes)
    }

    /// When ``handle_timeout`` is due (``time.monotonic()`` seconds), or
    /// ``None``.
    fn next_timeout(&mut self) -> PyResult<Option<f64>> {
        self.with(|conn| Ok(conn.poll_timeout().map(seconds)))
    }

    /// Let time pass: heartbeat, login and request deadlines, close
    /// handshake.
    #[pyo3(signature = (now = None))]
    fn handle_timeout(&mut self, py: Python<'_>, now: Option<f64>) -> PyResult<()> {
        let now = instant(py, now)?;
        self.now = self.now.max(now);
        self.with(|conn| {
            conn.handle_timeout(now);
            Ok(())
        })
    }

    /// Queue the command ``req`` with parameters (a dict and/or keywords,
    /// serialised with ``json.dumps``); returns its reqid. ``timeout``
    /// (seconds) overrides the connection's request timeout.
    #[pyo3(signature = (req, params = None, /, *, timeout = None, now = None, **kwargs))]
    fn request(
        &mut self,
        py: Python<'_>,
        req: &str,
        params: Option<&Bound<'_, PyDict>>,
        timeout: Option<f64>,
        now: Option<f64>,
        kwargs: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<String> {
        let now = instant(py, now)?;
        self.now = self.now.max(now);
        let json = params_json(py, params, kwargs)?;
        let mut request = fnos::Request::new(req);
        if let Some(json) = &json {
            request = request.with_object(json);
        }
        let timeout = timeout.map(duration).transpose()?;
        let reqid = self.with(|conn| {
            let sent = match timeout {
                Some(timeout) => conn.send(
                    now,
                    &fnos::session::Timed {
                        request: &request,
                        timeout,
                    },
                ),
                None => conn.send(now, &request),
            };
            sent.map_err(send_error)
        })?;
        Ok(reqid.to_string())
    }

    /// Stop waiting for ``reqid`` (an abandoned request): its slot is freed
    /// and a late answer comes out as an unmatched ``Reply``. Returns
    /// whether it was in flight.
    fn cancel(&mut self, reqid: &str) -> PyResult<bool> {
        let Some(reqid) = Reqid::from_bytes(reqid.as_bytes()) else {
            return Ok(false);
        };
        self.with(|conn| Ok(conn.session_mut().cancel(&reqid)))
    }

    /// Answer ``TwoFactorRequired``.
    #[pyo3(signature = (code, trusted_device = false))]
    fn submit_two_factor_code(&mut self, code: &str, trusted_device: bool) -> PyResult<()> {
        self.with(|conn| {
            conn.session_mut()
                .submit_two_factor_code(code, trusted_device)
                .map_err(|e| Error::new_err(format!("{e:?}")))
        })
    }

    /// Whether a request can be queued now.
    fn can_send(&mut self) -> PyResult<bool> {
        self.with(|conn| Ok(conn.can_send()))
    }

    /// ``"handshaking"``, ``"open"``, ``"closing"`` or ``"closed"``.
    #[getter]
    fn state(&mut self) -> PyResult<&'static str> {
        self.with(|conn| {
            Ok(match conn.state() {
                ws::State::Handshaking => "handshaking",
                ws::State::Open => "open",
                ws::State::Closing => "closing",
                ws::State::Closed => "closed",
            })
        })
    }

    /// Whether the session is logged in.
    #[getter]
    fn logged_in(&mut self) -> PyResult<bool> {
        self.with(|conn| Ok(conn.session().state() == fnos::State::Ready))
    }

    /// Whether the session holds a token to log in again without the
    /// password.
    #[getter]
    fn has_token(&mut self) -> PyResult<bool> {
        self.with(|conn| {
            let c = conn.session().credentials();
            Ok(c.can_auth_token() || c.can_token_login())
        })
    }

    /// Start the close handshake (code 1000 unless given).
    #[pyo3(signature = (code = 1000, reason = "", now = None))]
    fn close(&mut self, py: Python<'_>, code: u16, reason: &str, now: Option<f64>) -> PyResult<()> {
        let now = instant(py, now)?;
        self.now = self.now.max(now);
        self.with(|conn| {
            conn.ws_mut()
                .close(now, ws::CloseCode::new(code), reason)
                .map_err(|e| NotConnectedError::new_err(format!("cannot close: {e:?}")))
        })
    }

    /// Start a new WebSocket connection (for a new transport) with the same
    /// session: tokens and secret are kept, so it logs in again without the
    /// password. Input and output of the old one are dropped.
    #[pyo3(signature = (now = None))]
    fn reconnect(&mut self, py: Python<'_>, now: Option<f64>) -> PyResult<()> {
        let now = instant(py, now)?;
        self.now = self.now.max(now);
        self.inbox = crate::Inbox::default();
        self.output.clear();
        let sizes = self.sizes;
        self.cell.with_dependent_mut(|owned, live| {
            let Some(old) = live.take() else {
                return Err(Error::new_err("the connection could not be rebuilt"));
            };
            let (mut session, rx, tx) = old.into_parts();
            // The new upgrade's buffers: the old ones, reused.
            let client = ws_client(&owned.url, now, sizes);
            drop((rx, tx));
            let client = client.map_err(Error::new_err)?;
            session.set_unix_time(now, unix_secs());
            *live = Some(naslink_core::Connection::new(client, session));
            Ok(())
        })
    }

    fn __repr__(&mut self) -> String {
        let user = self.cell.borrow_owner().user.clone();
        let url = self.cell.borrow_owner().url.clone();
        let state = self.state().unwrap_or("broken");
        format!("<naslink.Connection {url} user={user:?} state={state}>")
    }
}

/// The request's parameters as one JSON object text, or `None`.
pub(crate) fn params_json(
    py: Python<'_>,
    params: Option<&Bound<'_, PyDict>>,
    kwargs: Option<&Bound<'_, PyDict>>,
) -> PyResult<Option<String>> {
    let merged = match (params, kwargs) {
        (None, None) => return Ok(None),
        (Some(p), None) => p.clone(),
        (None, Some(k)) => k.clone(),
        (Some(p), Some(k)) => {
            let m = p.copy()?;
            m.update(k.as_mapping())?;
            m
        }
    };
    if merged.is_empty() {
        return Ok(None);
    }
    let dumps = py.import("json")?.getattr("dumps")?;
    let kw = PyDict::new(py);
    kw.set_item("separators", (",", ":"))?;
    kw.set_item("ensure_ascii", false)?;
    Ok(Some(dumps.call((merged,), Some(&kw))?.extract()?))
}

fn send_error(e: fnos::Error) -> PyErr {
    match e {
        fnos::Error::NotConnected => {
            NotConnectedError::new_err("not connected: wait for the connection to open")
        }
        fnos::Error::Busy => BusyError::new_err("too many requests in flight"),
        fnos::Error::ParamsNotAnObject => PyValueError::new_err("parameters are not a JSON object"),
        fnos::Error::TooManyParams => PyValueError::new_err("too many parameters"),
        fnos::Error::BufferTooSmall { required } => PyValueError::new_err(format!(
            "the request needs {required} bytes, more than the transmit buffer holds"
        )),
        other => Error::new_err(format!("{other:?}")),
    }
}

fn method_name(m: LoginMethod) -> &'static str {
    match m {
        LoginMethod::AuthToken => "auth_token",
        LoginMethod::TokenLogin => "token_login",
        LoginMethod::Password => "password",
        LoginMethod::TwoFactor => "two_factor",
    }
}

fn login_failure(f: LoginFailure) -> (String, Option<u32>) {
    match f {
        LoginFailure::Rejected { method, errno } => (
            match errno {
                Some(e) => format!("login refused ({}): {e}", method_name(method)),
                None => format!("login refused ({})", method_name(method)),
            },
            errno.map(|e| e.code()),
        ),
        LoginFailure::KeyExchangeRefused(errno) => (
            match errno {
                Some(e) => format!("key exchange refused: {e}"),
                None => "key exchange refused".to_owned(),
            },
            errno.map(|e| e.code()),
        ),
        LoginFailure::TimedOut => ("a login step timed out".to_owned(), None),
        LoginFailure::NoCredentials => ("no password and no stored token".to_owned(), None),
        other => (format!("login failed: {other:?}"), None),
    }
}

pub(crate) fn closed(c: WsClosed) -> events::Closed {
    match c {
        WsClosed::Clean { code } => events::Closed {
            reason: match code {
                Some(code) => format!("closed by the server ({code})"),
                None => "closed by the server".to_owned(),
            },
            code: code.map(|c| c.as_u16()),
            clean: true,
        },
        WsClosed::Failed(e) => events::Closed {
            reason: format!("connection failed: {e}"),
            code: None,
            clean: false,
        },
        WsClosed::TimedOut => events::Closed {
            reason: "the opening or closing handshake timed out".to_owned(),
            code: None,
            clean: false,
        },
        WsClosed::Abnormal => events::Closed {
            reason: "the transport ended before the close handshake".to_owned(),
            code: Some(1006),
            clean: false,
        },
    }
}

/// A core event as its Python object.
fn convert<'a>(
    py: Python<'_>,
    event: CoreEvent<'a, Session<'_>>,
    raw: Option<&[u8]>,
) -> PyResult<Py<PyAny>> {
    let raw_bytes = || PyBytes::new(py, raw.unwrap_or_default()).unbind();
    let obj = match event {
        CoreEvent::Connected => Py::new(py, events::Connected)?.into_any(),
        CoreEvent::Rejected(r) => Py::new(
            py,
            events::Rejected {
                status: r.status(),
                location: r.location().map(str::to_owned),
            },
        )?
        .into_any(),
        CoreEvent::Closed(c) => Py::new(py, closed(c))?.into_any(),
        CoreEvent::TransmitTooSmall(e) => {
            return Err(Error::new_err(format!(
                "the transmit buffer is too small: {e}"
            )));
        }
        CoreEvent::Session(e) => session_event(py, e, raw_bytes)?,
    };
    Ok(obj)
}

fn session_event(
    py: Python<'_>,
    event: fnos::Event<'_>,
    raw: impl FnOnce() -> Py<PyBytes>,
) -> PyResult<Py<PyAny>> {
    Ok(match event {
        fnos::Event::LoggedIn { method, uid, admin } => Py::new(
            py,
            events::LoggedIn {
                method: method_name(method),
                uid,
                admin,
            },
        )?
        .into_any(),
        fnos::Event::TwoFactorRequired => Py::new(py, events::TwoFactorRequired)?.into_any(),
        fnos::Event::TwoFactorRejected(errno) => Py::new(
            py,
            events::TwoFactorRejected {
                errno: errno.map(|e| e.code()),
                message: errno
                    .map_or_else(|| "two-factor code refused".to_owned(), |e| e.to_string()),
            },
        )?
        .into_any(),
        fnos::Event::LoginFailed(f) => {
            let (message, errno) = login_failure(f);
            Py::new(py, events::LoginFailed { message, errno })?.into_any()
        }
        fnos::Event::Reply(r) => reply(py, &r, true, raw())?,
        fnos::Event::UnmatchedReply(r) => reply(py, &r, false, raw())?,
        fnos::Event::Push(p) => Py::new(
            py,
            events::Push {
                kind: push_kind(&p),
                raw: raw(),
                cache: OnceLock::new(),
            },
        )?
        .into_any(),
        fnos::Event::Unsolicited(_) => Py::new(
            py,
            events::Unsolicited {
                raw: raw(),
                cache: OnceLock::new(),
            },
        )?
        .into_any(),
        fnos::Event::RequestTimedOut(reqid) => Py::new(
            py,
            events::RequestTimedOut {
                reqid: reqid.to_string(),
            },
        )?
        .into_any(),
        fnos::Event::RequestAborted(reqid) => Py::new(
            py,
            events::RequestAborted {
                reqid: reqid.to_string(),
            },
        )?
        .into_any(),
        fnos::Event::Malformed(e) => Py::new(
            py,
            events::Malformed {
                message: format!("{e:?}"),
            },
        )?
        .into_any(),
        fnos::Event::ConnectionDead { missed_pongs } => {
            Py::new(py, events::ConnectionDead { missed_pongs })?.into_any()
        }
    })
}

fn push_kind(p: &CorePush<'_>) -> String {
    match p {
        CorePush::Kicked => "kicked".to_owned(),
        CorePush::TokenExpired => "tokenExpired".to_owned(),
        CorePush::PrivilegeChanged { .. } => "privilegeChanged".to_owned(),
        CorePush::StorageChanged => "storageChanged".to_owned(),
        CorePush::TaskId { .. } => "taskId".to_owned(),
        CorePush::TaskInfo { .. } => "taskInfo".to_owned(),
        CorePush::Other { kind, .. } => String::from_utf8_lossy(kind.raw()).into_owned(),
    }
}

fn reply(
    py: Python<'_>,
    r: &fnos::Reply<'_>,
    matched: bool,
    raw: Py<PyBytes>,
) -> PyResult<Py<PyAny>> {
    let errno = r.errno();
    let error_message = match r.status() {
        Status::Failure(_) => Some(
            r.error_message()
                .map(|m| String::from_utf8_lossy(m.raw()).into_owned())
                .or_else(|| errno.map(|e| e.to_string()))
                .unwrap_or_else(|| "request failed".to_owned()),
        ),
        _ => None,
    };
    Ok(Py::new(
        py,
        events::Reply {
            reqid: String::from_utf8_lossy(r.reqid_text().raw()).into_owned(),
            is_final: r.is_final(),
            ok: r.status() == Status::Success,
            errno: errno.map(|e| e.code()),
            error_message,
            matched,
            raw,
            cache: OnceLock::new(),
        },
    )?
    .into_any())
}
