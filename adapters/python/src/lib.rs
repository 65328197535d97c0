//! `naslink._naslink`: the sans-I/O layer of the `naslink` Python package.
//!
//! A thin binding of [`naslink_core::Connection`]: the Python object owns
//! the core connection and its buffers, takes bytes and time in, and hands
//! bytes, events and deadlines out, in the shape of `h11` and `wsproto`
//! (`receive_data`, `next_event`, `data_to_send`). No protocol logic lives
//! here; the asyncio client (`naslink.aio`) is pure Python on top.
//!
//! Time is `time.monotonic()` seconds (a float), the clock asyncio's
//! `loop.time()` also reads; every method that needs the time takes an
//! optional `now` and reads that clock when it is left out.

mod cfms;
mod events;
mod fnos;

use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;

pyo3::create_exception!(
    _naslink,
    Error,
    pyo3::exceptions::PyException,
    "Base class of naslink's errors."
);
pyo3::create_exception!(
    _naslink,
    NotConnectedError,
    Error,
    "The connection is not open (or not yet): no request can be sent."
);
pyo3::create_exception!(
    _naslink,
    BusyError,
    Error,
    "The table of requests in flight is full, or a message is half sent."
);
pyo3::create_exception!(
    _naslink,
    UnsupportedProtocolError,
    Error,
    "A CFMS protocol version this client does not speak (it speaks 3 to 5 and 13)."
);

/// `time.monotonic()`, looked up once.
fn monotonic(py: Python<'_>) -> PyResult<f64> {
    static MONOTONIC: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
    let f = MONOTONIC.get_or_try_init(py, || {
        Ok::<_, PyErr>(py.import("time")?.getattr("monotonic")?.unbind())
    })?;
    f.call0(py)?.extract(py)
}

/// The core's instant for `now` (seconds on the monotonic clock), reading
/// the clock when `now` is `None`.
fn instant(py: Python<'_>, now: Option<f64>) -> PyResult<naslink_core::time::Instant> {
    let secs = match now {
        Some(s) => s,
        None => monotonic(py)?,
    };
    if !secs.is_finite() || secs < 0.0 {
        return Err(pyo3::exceptions::PyValueError::new_err(
            "now must be a finite, non-negative number of seconds",
        ));
    }
    Ok(naslink_core::time::Instant::from_millis(
        (secs * 1000.0) as u64,
    ))
}

/// Seconds (monotonic clock) of a core instant.
fn seconds(at: naslink_core::time::Instant) -> f64 {
    at.total_millis() as f64 / 1000.0
}

/// A core duration from seconds.
fn duration(secs: f64) -> PyResult<naslink_core::time::Duration> {
    if !secs.is_finite() || secs < 0.0 {
        return Err(pyo3::exceptions::PyValueError::new_err(
            "a timeout must be a finite, non-negative number of seconds",
        ));
    }
    Ok(naslink_core::time::Duration::from_millis(
        (secs * 1000.0).ceil() as u64,
    ))
}

/// How many received bytes may wait for the core: what one read of the
/// asyncio client brings (256 KiB) several times over, and never less
/// than the largest message. A caller that feeds more without taking
/// events gets `BusyError` instead of an ever-growing buffer.
fn input_cap(receive_buffer: usize) -> usize {
    receive_buffer.max(256 * 1024) * 4
}

/// Received bytes the core has not taken yet, and an end of stream not
/// yet passed on: what both bindings' `receive_data` queues and their
/// event loop feeds to the core.
#[derive(Default)]
struct Inbox {
    bytes: Vec<u8>,
    /// Where the untaken bytes of `bytes` start.
    start: usize,
    eof: bool,
}

impl Inbox {
    /// Queues bytes from the transport (`b""` is end of stream); more than
    /// `input_cap(receive_buffer)` waiting is `BusyError`.
    fn push(&mut self, data: &[u8], receive_buffer: usize) -> PyResult<()> {
        if data.is_empty() {
            self.eof = true;
            return Ok(());
        }
        if self.pending().len() + data.len() > input_cap(receive_buffer) {
            return Err(BusyError::new_err(
                "too much received data waits: take events with next_event() first",
            ));
        }
        self.bytes.drain(..self.start);
        self.start = 0;
        self.bytes.extend_from_slice(data);
        Ok(())
    }

    /// The bytes the core has not taken yet.
    fn pending(&self) -> &[u8] {
        self.bytes.get(self.start..).unwrap_or_default()
    }

    /// The core took `n` more bytes.
    fn consume(&mut self, n: usize) {
        self.start = (self.start + n).min(self.bytes.len());
        if self.start == self.bytes.len() {
            self.bytes.clear();
            self.start = 0;
        }
    }

    /// Whether an end of stream waits to be passed on (once).
    fn take_eof(&mut self) -> bool {
        core::mem::take(&mut self.eof)
    }
}

/// The OS random source: WebSocket masks, login keys, RSA padding.
///
/// A failing OS random source cannot be answered with weaker keys, so it
/// stops the operation (a Python `PanicException`), which on the systems
/// Python runs on does not happen.
fn os_random(buf: &mut [u8]) {
    if let Err(e) = getrandom::fill(buf) {
        panic!("the OS random source failed: {e}");
    }
}

/// The entropy source every connection uses.
type Rng = naslink_core::random::FromFn<fn(&mut [u8])>;

fn rng() -> Rng {
    naslink_core::random::from_fn(os_random as fn(&mut [u8]))
}

#[pymodule]
fn _naslink(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    m.add("Error", py.get_type::<Error>())?;
    m.add("NotConnectedError", py.get_type::<NotConnectedError>())?;
    m.add("BusyError", py.get_type::<BusyError>())?;
    m.add(
        "UnsupportedProtocolError",
        py.get_type::<UnsupportedProtocolError>(),
    )?;
    m.add_class::<fnos::Connection>()?;
    m.add_class::<cfms::CfmsConnection>()?;
    m.add_class::<cfms::CfmsEvent>()?;
    events::register(m)?;
    Ok(())
}
