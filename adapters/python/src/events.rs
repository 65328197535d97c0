//! The event objects `next_event()` returns: frozen Python classes, one per
//! core event. Replies and pushes keep the received JSON text (`raw`) and
//! parse it with `json.loads` the first time `body` or `data` is read, so a
//! reply nobody looks into costs no parsing.

use std::sync::OnceLock;

use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyBytes, PyDict};

/// `json.loads`, looked up once.
fn loads<'py>(py: Python<'py>, raw: &Py<PyBytes>) -> PyResult<Bound<'py, PyAny>> {
    static LOADS: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
    let f = LOADS.get_or_try_init(py, || {
        Ok::<_, PyErr>(py.import("json")?.getattr("loads")?.unbind())
    })?;
    f.bind(py).call1((raw.bind(py),))
}

/// The parsed message, cached.
fn body<'py>(
    py: Python<'py>,
    cache: &OnceLock<Py<PyAny>>,
    raw: &Py<PyBytes>,
) -> PyResult<Bound<'py, PyAny>> {
    if let Some(b) = cache.get() {
        return Ok(b.bind(py).clone());
    }
    let parsed = loads(py, raw)?;
    let _ = cache.set(parsed.clone().unbind());
    Ok(parsed)
}

/// `None`, or the value, as Python writes it.
fn opt<T: std::fmt::Display>(v: Option<T>) -> String {
    v.map_or_else(|| "None".to_owned(), |v| v.to_string())
}

/// `True` or `False`.
fn pybool(b: bool) -> &'static str {
    if b { "True" } else { "False" }
}

/// The WebSocket upgrade succeeded; the login runs by itself.
#[pyclass(frozen, module = "naslink")]
pub struct Connected;

#[pymethods]
impl Connected {
    fn __repr__(&self) -> &'static str {
        "Connected()"
    }
}

/// The server answered the upgrade with another HTTP status (a redirect,
/// an access-code gate); `Closed` follows.
#[pyclass(frozen, get_all, module = "naslink")]
pub struct Rejected {
    /// The HTTP status.
    pub status: u16,
    /// The `Location` header, if any.
    pub location: Option<String>,
}

#[pymethods]
impl Rejected {
    fn __repr__(&self) -> String {
        format!(
            "Rejected(status={}, location={})",
            self.status,
            opt(self.location.as_ref().map(|l| format!("{l:?}")))
        )
    }
}

/// The login succeeded; requests are signed from now on.
#[pyclass(frozen, get_all, module = "naslink")]
pub struct LoggedIn {
    /// `"auth_token"`, `"token_login"`, `"password"` or `"two_factor"`.
    pub method: &'static str,
    /// The user's uid, if the server sent it.
    pub uid: Option<u64>,
    /// Whether the user is an administrator, if the server said.
    pub admin: Option<bool>,
}

#[pymethods]
impl LoggedIn {
    fn __repr__(&self) -> String {
        format!(
            "LoggedIn(method={:?}, uid={}, admin={})",
            self.method,
            opt(self.uid),
            opt(self.admin.map(pybool))
        )
    }
}

/// The server wants a two-factor code: call
/// `Connection.submit_two_factor_code`.
#[pyclass(frozen, module = "naslink")]
pub struct TwoFactorRequired;

#[pymethods]
impl TwoFactorRequired {
    fn __repr__(&self) -> &'static str {
        "TwoFactorRequired()"
    }
}

/// The two-factor code was refused; submit another.
#[pyclass(frozen, get_all, module = "naslink")]
pub struct TwoFactorRejected {
    /// The server's errno, if it sent one.
    pub errno: Option<u32>,
    /// What went wrong, in words.
    pub message: String,
}

#[pymethods]
impl TwoFactorRejected {
    fn __repr__(&self) -> String {
        format!("TwoFactorRejected(errno={})", opt(self.errno))
    }
}

/// The login gave up on this connection (unsigned requests still work).
#[pyclass(frozen, get_all, module = "naslink")]
pub struct LoginFailed {
    /// What went wrong, in words.
    pub message: String,
    /// The server's errno, if the server refused with one.
    pub errno: Option<u32>,
}

#[pymethods]
impl LoginFailed {
    fn __repr__(&self) -> String {
        format!(
            "LoginFailed(message={:?}, errno={})",
            self.message,
            opt(self.errno)
        )
    }
}

/// One frame of an answer. `final` tells whether more frames follow;
/// `ok` whether the final frame reports success.
#[pyclass(frozen, module = "naslink")]
pub struct Reply {
    /// The reqid `request()` returned.
    #[pyo3(get)]
    pub reqid: String,
    /// The last frame of the answer.
    #[pyo3(get, name = "final")]
    pub is_final: bool,
    /// The final frame reports success (`False` for a partial frame).
    #[pyo3(get)]
    pub ok: bool,
    /// The failure code of a failed final frame, if given.
    #[pyo3(get)]
    pub errno: Option<u32>,
    /// The server's failure text (`errmsg` or `msg`), or the errno's meaning.
    #[pyo3(get)]
    pub error_message: Option<String>,
    /// Whether its reqid was in flight (`False`: a late or unknown answer).
    #[pyo3(get)]
    pub matched: bool,
    /// The message as received (JSON text).
    #[pyo3(get)]
    pub raw: Py<PyBytes>,
    pub(crate) cache: OnceLock<Py<PyAny>>,
}

#[pymethods]
impl Reply {
    /// The whole reply object, parsed (core handlers answer at its top level).
    #[getter]
    fn body<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        body(py, &self.cache, &self.raw)
    }

    /// The payload of `appcgi.*` answers: `data` (or `rsp`); else the whole
    /// object without `reqid`, `result` and `errno`.
    #[getter]
    fn data<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let body = body(py, &self.cache, &self.raw)?;
        let Ok(dict) = body.cast::<PyDict>() else {
            return Ok(body);
        };
        for key in ["data", "rsp"] {
            if let Some(v) = dict.get_item(key)? {
                return Ok(v);
            }
        }
        let rest = dict.copy()?;
        for key in ["reqid", "result", "errno"] {
            if rest.contains(key)? {
                rest.del_item(key)?;
            }
        }
        Ok(rest.into_any())
    }

    fn __repr__(&self) -> String {
        format!(
            "Reply(reqid={:?}, final={}, ok={}, errno={})",
            self.reqid,
            pybool(self.is_final),
            pybool(self.ok),
            opt(self.errno)
        )
    }
}

/// A server push (`sysNotify`).
#[pyclass(frozen, module = "naslink")]
pub struct Push {
    /// The `sysNotify` kind (`kicked`, `tokenExpired`, `storageChanged`,
    /// `taskId`, `taskInfo`, ...).
    #[pyo3(get)]
    pub kind: String,
    /// The message as received (JSON text).
    #[pyo3(get)]
    pub raw: Py<PyBytes>,
    pub(crate) cache: OnceLock<Py<PyAny>>,
}

#[pymethods]
impl Push {
    /// The whole push, parsed.
    #[getter]
    fn body<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        body(py, &self.cache, &self.raw)
    }

    fn __repr__(&self) -> String {
        format!("Push(kind={:?})", self.kind)
    }
}

/// A JSON object that is neither reply, push nor pong.
#[pyclass(frozen, module = "naslink")]
pub struct Unsolicited {
    /// The message as received (JSON text).
    #[pyo3(get)]
    pub raw: Py<PyBytes>,
    pub(crate) cache: OnceLock<Py<PyAny>>,
}

#[pymethods]
impl Unsolicited {
    /// The object, parsed.
    #[getter]
    fn body<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        body(py, &self.cache, &self.raw)
    }

    fn __repr__(&self) -> &'static str {
        "Unsolicited(...)"
    }
}

/// A request got no final frame before its deadline (its slot is free).
#[pyclass(frozen, get_all, module = "naslink")]
pub struct RequestTimedOut {
    /// The request's reqid.
    pub reqid: String,
}

#[pymethods]
impl RequestTimedOut {
    fn __repr__(&self) -> String {
        format!("RequestTimedOut(reqid={:?})", self.reqid)
    }
}

/// The connection dropped before the request was answered.
#[pyclass(frozen, get_all, module = "naslink")]
pub struct RequestAborted {
    /// The request's reqid.
    pub reqid: String,
}

#[pymethods]
impl RequestAborted {
    fn __repr__(&self) -> String {
        format!("RequestAborted(reqid={:?})", self.reqid)
    }
}

/// A received message could not be read; the connection stays usable.
#[pyclass(frozen, get_all, module = "naslink")]
pub struct Malformed {
    /// What was wrong with it.
    pub message: String,
}

#[pymethods]
impl Malformed {
    fn __repr__(&self) -> String {
        format!("Malformed(message={:?})", self.message)
    }
}

/// Too many pongs missed: close the connection and reconnect.
#[pyclass(frozen, get_all, module = "naslink")]
pub struct ConnectionDead {
    /// Pings that went unanswered.
    pub missed_pongs: u8,
}

#[pymethods]
impl ConnectionDead {
    fn __repr__(&self) -> String {
        format!("ConnectionDead(missed_pongs={})", self.missed_pongs)
    }
}

/// The connection is over: close the transport. `reconnect()` starts a
/// new one with the same session (tokens kept).
#[pyclass(frozen, get_all, module = "naslink")]
pub struct Closed {
    /// Why, in words.
    pub reason: String,
    /// The close code: the server's for a clean close, 1006 for a broken
    /// transport, ours when we failed the connection; `None` when the
    /// server's Close frame carried none.
    pub code: Option<u16>,
    /// Both sides exchanged Close frames.
    pub clean: bool,
}

#[pymethods]
impl Closed {
    fn __repr__(&self) -> String {
        format!("Closed(reason={:?}, code={})", self.reason, opt(self.code))
    }
}

/// Add the event classes to the module.
pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<Connected>()?;
    m.add_class::<Rejected>()?;
    m.add_class::<LoggedIn>()?;
    m.add_class::<TwoFactorRequired>()?;
    m.add_class::<TwoFactorRejected>()?;
    m.add_class::<LoginFailed>()?;
    m.add_class::<Reply>()?;
    m.add_class::<Push>()?;
    m.add_class::<Unsolicited>()?;
    m.add_class::<RequestTimedOut>()?;
    m.add_class::<RequestAborted>()?;
    m.add_class::<Malformed>()?;
    m.add_class::<ConnectionDead>()?;
    m.add_class::<Closed>()?;
    Ok(())
}
