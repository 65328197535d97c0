//! `naslink.CfmsConnection`: one CFMS session over successive WebSocket
//! connections, sans I/O, and the download decryption passes.
//!
//! Protocols 3–5 (text) and 13 (frames) are spoken. Without a pinned
//! `protocol_version`, a connection opens with the core's protocol-13
//! probe (`cfms-13.md` §11): a 13 server answers it; a 3–5 server closes
//! the connection, which this object reports as a ``protocol_text`` event
//! just before ``Closed``. What was learnt is kept for every later
//! ``reconnect()`` (text without a probe, or 13 pinned), the way the tokio
//! adapter keeps its session.

use std::io::{Read, Write};

use naslink_core::cfms::p13::{Negotiated, Wire};
use naslink_core::cfms::{self, DownloadKey, FileDecryptor, UploadSource};
use naslink_core::connection::Event as CoreEvent;
use naslink_core::ws;
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict};

use crate::fnos::closed;
use crate::{
    BusyError, Error, NotConnectedError, Rng, UnsupportedProtocolError, duration, instant, rng,
    seconds,
};

/// Requests in flight per connection (the CFMS server answers in order).
const QUEUE: usize = 16;

/// Chunk hashes kept per download: with the server's 2 MiB chunks, files
/// up to 16 GiB.
const MAX_CHUNKS: usize = 8192;

/// WebSocket transmit buffer: requests and upload frames.
const TRANSMIT_BUFFER: usize = 256 * 1024;

type Core<'a> = naslink_core::Connection<cfms::Session<'a, QUEUE>, Vec<u8>, Rng>;

/// The CFMS session borrows its receive buffer and chunk-hash table
/// mutably (`cfms::Buffers<'a>`), and a Python object must own both:
/// ouroboros builds the self-referential value (self_cell, used for the
/// fnOS session's shared borrows, cannot lend an owner mutably).
#[ouroboros::self_referencing]
struct Cell {
    rx: Box<[u8]>,
    hashes: Box<[[u8; 32]]>,
    #[borrows(mut rx, mut hashes)]
    #[not_covariant]
    conn: Core<'this>,
}

fn unix_secs() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// One CFMS session over a WebSocket connection, sans I/O.
///
/// Driven exactly like :class:`naslink.Connection`. The session sends
/// ``server_info``, logs in and registers for lockdown changes by itself;
/// ``request()`` queues an action and returns its sequence number, which
/// the answering ``CfmsEvent`` (``kind == "reply"``) repeats.
#[pyclass(module = "naslink")]
pub struct CfmsConnection {
    cell: Option<Cell>,
    url: String,
    user: String,
    password: zeroize::Zeroizing<String>,
    settings: Settings,
    /// Received bytes and end of stream, for the core.
    inbox: crate::Inbox,
    output: Vec<u8>,
    now: naslink_core::time::Instant,
    /// What the protocol-13 probe found on an earlier connection, kept
    /// across `reconnect()` (each connection gets a fresh core session).
    learned: Option<Negotiated>,
    /// The `Closed` event held back behind the `protocol_text` event.
    held: Option<Py<PyAny>>,
}

#[derive(Clone, Copy)]
struct Settings {
    receive: usize,
    request_timeout: naslink_core::time::Duration,
    transfer_timeout: naslink_core::time::Duration,
    /// A version given by the caller: no probe.
    pinned: Option<u32>,
    /// Probe for protocol 13 when nothing is pinned or learnt.
    negotiate: bool,
}

impl CfmsConnection {
    /// A new cell: buffers, session, and a WebSocket client with its
    /// upgrade queued.
    fn build(&self, now: naslink_core::time::Instant) -> PyResult<Cell> {
        let login = cfms::Credentials::new(&self.user, &self.password).map_err(|e| {
            PyValueError::new_err(format!("the {} is longer than {} bytes", e.field, e.max))
        })?;
        let url = ws::Url::parse(&self.url)
            .map_err(|e| PyValueError::new_err(format!("invalid URL {:?}: {e:?}", self.url)))?;
        let client = ws::Client::connect(
            now,
            &url,
            &[],
            ws::Config::default(),
            rng(),
            vec![0; self.settings.receive],
            vec![0; TRANSMIT_BUFFER],
        )
        .map_err(|e| Error::new_err(format!("cannot start the WebSocket upgrade: {e:?}")))?;
        // A pin wins; then what an earlier connection learnt: 13 is
        // pinned, text is spoken without a probe (its server_info tells
        // 3, 4 or 5).
        let (protocol_version, negotiate) = match (self.settings.pinned, self.learned) {
            (Some(v), _) => (Some(v), false),
            (None, Some(Negotiated::Framed { .. })) => (Some(cfms::p13::negotiate::FRAMED), false),
            (None, Some(Negotiated::Text)) => (None, false),
            (None, None) => (None, self.settings.negotiate),
        };
        let config = cfms::Config {
            request_timeout: self.settings.request_timeout,
            transfer_timeout: self.settings.transfer_timeout,
            login: Some(login),
            listener: true,
            protocol_version,
            negotiate,
            ..cfms::Config::default()
        };
        // The session decodes a download piece into rx: 3/4 of the
        // WebSocket receive buffer plus 2 bytes, and whole responses.
        let rx = vec![0u8; self.settings.receive].into_boxed_slice();
        let hashes = vec![[0u8; 32]; MAX_CHUNKS].into_boxed_slice();
        Ok(CellBuilder {
            rx,
            hashes,
            conn_builder: |rx, hashes| {
                let mut session = cfms::Session::new(
                    config,
                    cfms::Buffers {
                        rx,
                        chunk_hashes: hashes,
                    },
                );
                session.set_unix_time(now, unix_secs());
                naslink_core::Connection::new(client, session)
            },
        }
        .build())
    }

    fn with<R>(&mut self, f: impl for<'a> FnOnce(&mut Core<'a>) -> PyResult<R>) -> PyResult<R> {
        match &mut self.cell {
            Some(cell) => cell.with_conn_mut(|conn| f(conn)),
            None => Err(Error::new_err("the connection could not be rebuilt")),
        }
    }

    fn drain_transmit(&mut self) {
        let now = self.now;
        let out = &mut self.output;
        if let Some(cell) = &mut self.cell {
            cell.with_conn_mut(|conn| {
                while let Some(bytes) = conn.poll_transmit(now) {
                    out.extend_from_slice(bytes);
                    let n = bytes.len();
                    conn.advance_transmit(n);
                }
            });
        }
    }

    /// What the probe found, on this connection or an earlier one.
    fn negotiated_now(&mut self) -> Option<Negotiated> {
        let live = match &mut self.cell {
            Some(cell) => cell.with_conn_mut(|conn| conn.session().negotiated()),
            None => None,
        };
        live.or(self.learned)
    }

    fn next(&mut self, py: Python<'_>) -> PyResult<Option<Py<PyAny>>> {
        if let Some(held) = self.held.take() {
            return Ok(Some(held));
        }
        loop {
            let now = self.now;
            let event = match &mut self.cell {
                Some(cell) => cell.with_conn_mut(|conn| {
                    let converted = match conn.poll_event() {
                        Some(event) => convert(py, event)?,
                        None => return Ok::<_, PyErr>(None),
                    };
                    Ok(Some(match converted {
                        Converted::Other(p) => p,
                        Converted::Cfms(mut e) => {
                            if e.key.is_some() {
                                e.hashes = Some(conn.session().chunk_hashes().to_vec());
                                e.framed = conn.session().wire() == Wire::Framed;
                            }
                            Py::new(py, *e)?.into_any()
                        }
                    }))
                })?,
                None => None,
            };
            if let Some(e) = event {
                return self.settle(py, e).map(Some);
            }
            if !self.inbox.pending().is_empty() {
                let input = self.inbox.pending();
                let taken = match &mut self.cell {
                    Some(cell) => cell.with_conn_mut(|conn| conn.handle_input(now, input)),
                    None => 0,
                };
                self.inbox.consume(taken);
                if taken == 0 {
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

    /// Record what the probe found once the session knows it. When a
    /// connection closed at the probe (a 3–5 server), `event` (its
    /// `Closed`) is held back behind a `protocol_text` event.
    fn settle(&mut self, py: Python<'_>, event: Py<PyAny>) -> PyResult<Py<PyAny>> {
        if self.learned.is_some() || self.settings.pinned.is_some() {
            return Ok(event);
        }
        let found = match &mut self.cell {
            Some(cell) => cell.with_conn_mut(|conn| conn.session().negotiated()),
            None => None,
        };
        match found {
            Some(Negotiated::Text) => {
                self.learned = found;
                self.held = Some(event);
                let e = CfmsEvent {
                    message: Some(
                        "the server closed the protocol-13 probe: a protocol 3-5 server; \
                         reconnect, the next connection speaks text"
                            .to_owned(),
                    ),
                    ..event_of("protocol_text")
                };
                Ok(Py::new(py, e)?.into_any())
            }
            Some(Negotiated::Framed { .. }) => {
                self.learned = found;
                Ok(event)
            }
            None => Ok(event),
        }
    }
}

/// The refusal of a version this client does not speak, by name.
fn unsupported(version: u32) -> PyErr {
    UnsupportedProtocolError::new_err(cfms::p13::Unsupported { version }.to_string())
}

#[pymethods]
impl CfmsConnection {
    /// Start a session for ``url`` (``wss://HOST:5104/``) as ``user``; the
    /// upgrade request is ready in ``data_to_send()``. ``max_message_size``
    /// bounds the largest answer (directory listings).
    ///
    /// ``protocol_version`` pins the version (3, 4, 5 or 13): no probe.
    /// Any other raises :class:`naslink.UnsupportedProtocolError`. Without
    /// a pin, ``negotiate`` (the default) opens with the protocol-13 probe;
    /// ``negotiate=False`` speaks text (3–5) only.
    #[new]
    #[pyo3(signature = (url, user, password, *, request_timeout = 30.0,
        transfer_timeout = 60.0, max_message_size = 4 << 20, protocol_version = None,
        negotiate = true, now = None))]
    #[pyo3(text_signature = "(url, user, password, *, request_timeout=30.0, \
        transfer_timeout=60.0, max_message_size=4194304, protocol_version=None, \
        negotiate=True, now=None)")]
    #[allow(clippy::too_many_arguments)]
    fn new(
        py: Python<'_>,
        url: String,
        user: String,
        password: String,
        request_timeout: f64,
        transfer_timeout: f64,
        max_message_size: usize,
        protocol_version: Option<u32>,
        negotiate: bool,
        now: Option<f64>,
    ) -> PyResult<Self> {
        if let Some(v) = protocol_version {
            Wire::for_version(v).map_err(|u| unsupported(u.version))?;
        }
        let now = instant(py, now)?;
        let mut conn = CfmsConnection {
            cell: None,
            url,
            user,
            password: zeroize::Zeroizing::new(password),
            settings: Settings {
                receive: max_message_size.max(64 * 1024),
                request_timeout: duration(request_timeout)?,
                transfer_timeout: duration(transfer_timeout)?,
                pinned: protocol_version,
                negotiate,
            },
            inbox: crate::Inbox::default(),
            output: Vec::new(),
            now,
            learned: None,
            held: None,
        };
        conn.cell = Some(conn.build(now)?);
        Ok(conn)
    }

    /// The host to dial.
    #[getter]
    fn host(&self) -> PyResult<String> {
        let u = ws::Url::parse(&self.url).map_err(|e| PyValueError::new_err(format!("{e:?}")))?;
        Ok(u.host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned())
    }

    /// The port to dial.
    #[getter]
    fn port(&self) -> PyResult<u16> {
        ws::Url::parse(&self.url)
            .map(|u| u.port)
            .map_err(|e| PyValueError::new_err(format!("{e:?}")))
    }

    /// ``True`` for ``wss://``.
    #[getter]
    fn secure(&self) -> PyResult<bool> {
        ws::Url::parse(&self.url)
            .map(|u| u.secure)
            .map_err(|e| PyValueError::new_err(format!("{e:?}")))
    }

    /// Bytes read from the transport; ``b""`` means end of stream.
    #[pyo3(signature = (data, now = None))]
    fn receive_data(&mut self, py: Python<'_>, data: &[u8], now: Option<f64>) -> PyResult<()> {
        self.now = self.now.max(instant(py, now)?);
        self.inbox.push(data, self.settings.receive)
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

    /// When ``handle_timeout`` is due, or ``None``.
    fn next_timeout(&mut self) -> PyResult<Option<f64>> {
        self.with(|conn| Ok(conn.poll_timeout().map(seconds)))
    }

    /// Let time pass.
    #[pyo3(signature = (now = None))]
    fn handle_timeout(&mut self, py: Python<'_>, now: Option<f64>) -> PyResult<()> {
        let now = instant(py, now)?;
        self.now = self.now.max(now);
        self.with(|conn| {
            conn.handle_timeout(now);
            Ok(())
        })
    }

    /// Queue ``action`` with ``data`` (a dict and/or keywords); returns its
    /// sequence number.
    #[pyo3(signature = (action, data = None, /, *, now = None, **kwargs))]
    fn request(
        &mut self,
        py: Python<'_>,
        action: &str,
        data: Option<&Bound<'_, PyDict>>,
        now: Option<f64>,
        kwargs: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<u32> {
        let now = instant(py, now)?;
        self.now = self.now.max(now);
        let json = crate::fnos::params_json(py, data, kwargs)?.unwrap_or_else(|| "{}".to_owned());
        self.with(|conn| {
            conn.request(now, action, json.as_bytes())
                .map(|s| s.0)
                .map_err(cfms_error)
        })
    }

    /// Start uploading to ``task_id`` (from ``create_document``): ``size``
    /// bytes whose SHA-256 is ``sha256``. Feed them with ``upload_write``
    /// after the ``upload_ready`` event.
    #[pyo3(signature = (task_id, size, sha256, now = None))]
    fn upload_file(
        &mut self,
        py: Python<'_>,
        task_id: &str,
        size: u64,
        sha256: &[u8],
        now: Option<f64>,
    ) -> PyResult<u32> {
        let now = instant(py, now)?;
        self.now = self.now.max(now);
        let sha256: [u8; 32] = sha256
            .try_into()
            .map_err(|_| PyValueError::new_err("sha256 must be 32 bytes"))?;
        let source = UploadSource {
            size,
            sha256: Some(sha256),
        };
        self.with(|conn| {
            conn.upload_file(now, task_id, source)
                .map(|s| s.0)
                .map_err(cfms_error)
        })
    }

    /// Send file bytes during an upload; returns how many leading bytes
    /// were taken (fewer when the transmit buffer is full: send
    /// ``data_to_send()``, then pass the rest). After the last byte, call
    /// once more with ``b""``.
    #[pyo3(signature = (data, now = None))]
    fn upload_write(&mut self, py: Python<'_>, data: &[u8], now: Option<f64>) -> PyResult<usize> {
        let now = instant(py, now)?;
        self.now = self.now.max(now);
        self.with(|conn| conn.upload_write(now, data).map_err(cfms_error))
    }

    /// Start downloading ``task_id`` (from ``get_document``): the ciphertext
    /// arrives as ``download_data`` events, then ``download_finished``,
    /// whose ``decrypt_file`` makes the plaintext.
    #[pyo3(signature = (task_id, now = None))]
    fn download_file(&mut self, py: Python<'_>, task_id: &str, now: Option<f64>) -> PyResult<u32> {
        let now = instant(py, now)?;
        self.now = self.now.max(now);
        self.with(|conn| {
            conn.download_file(now, task_id)
                .map(|s| s.0)
                .map_err(cfms_error)
        })
    }

    /// Answer ``two_factor_required`` with a TOTP or backup code.
    #[pyo3(signature = (code, now = None))]
    fn submit_two_factor(&mut self, py: Python<'_>, code: &str, now: Option<f64>) -> PyResult<u32> {
        let now = instant(py, now)?;
        self.now = self.now.max(now);
        self.with(|conn| {
            conn.submit_two_factor(now, code)
                .map(|s| s.0)
                .map_err(cfms_error)
        })
    }

    /// Whether an action can be queued now.
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

    /// The session's step: ``"server_info"``, ``"logging_in"``,
    /// ``"two_factor"``, ``"registering"``, ``"ready"``, ``"login_failed"``,
    /// ``"refused"``, ``"broken"`` or ``"disconnected"``.
    #[getter]
    fn session_state(&mut self) -> PyResult<&'static str> {
        self.with(|conn| {
            use naslink_core::cfms::State as S;
            Ok(match conn.session().state() {
                S::Disconnected => "disconnected",
                S::ServerInfo => "server_info",
                S::LoggingIn => "logging_in",
                S::TwoFactor => "two_factor",
                S::Registering => "registering",
                S::Ready => "ready",
                S::LoginFailed => "login_failed",
                S::Refused => "refused",
                S::Broken => "broken",
            })
        })
    }

    /// The protocol version this connection's ``server_info`` announced
    /// (3–5 or 13), once known.
    #[getter]
    fn protocol_version(&mut self) -> PyResult<Option<u32>> {
        self.with(|conn| Ok(conn.session().protocol_version()))
    }

    /// What the protocol-13 probe found, on this connection or an earlier
    /// one: ``"framed"`` (a protocol-13 server), ``"text"`` (a 3–5 server
    /// closed the probe: reconnect, the next connection speaks text), or
    /// ``None`` (not known yet, or a version was pinned).
    #[getter]
    fn negotiated(&mut self) -> Option<&'static str> {
        self.negotiated_now().map(|n| match n {
            Negotiated::Framed { .. } => "framed",
            Negotiated::Text => "text",
        })
    }

    /// How this connection carries messages: ``"text"`` (3–5) or
    /// ``"framed"`` (13).
    #[getter]
    fn wire(&mut self) -> PyResult<&'static str> {
        self.with(|conn| {
            Ok(match conn.session().wire() {
                Wire::Text => "text",
                Wire::Framed => "framed",
            })
        })
    }

    /// Start the close handshake.
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

    /// Start a new connection (new transport) that logs in again, in the
    /// protocol learnt so far (see ``negotiated``).
    #[pyo3(signature = (now = None))]
    fn reconnect(&mut self, py: Python<'_>, now: Option<f64>) -> PyResult<()> {
        let now = instant(py, now)?;
        self.now = self.now.max(now);
        if self.settings.pinned.is_none() {
            self.learned = self.negotiated_now();
        }
        self.held = None;
        self.inbox = crate::Inbox::default();
        self.output.clear();
        self.cell = None;
        self.cell = Some(self.build(now)?);
        Ok(())
    }
}

fn cfms_error(e: cfms::Error) -> PyErr {
    match e {
        cfms::Error::Busy | cfms::Error::TransferActive => BusyError::new_err(format!("{e:?}")),
        cfms::Error::Ws(_) | cfms::Error::NotLoggedIn | cfms::Error::Broken => {
            NotConnectedError::new_err(format!("{e:?}"))
        }
        cfms::Error::InvalidData(_) | cfms::Error::TooLong { .. } => {
            PyValueError::new_err(format!("{e:?}"))
        }
        other => Error::new_err(format!("{other:?}")),
    }
}

/// Something a CFMS connection reports; ``kind`` says what, the other
/// attributes are set where they apply.
#[pyclass(frozen, module = "naslink")]
pub struct CfmsEvent {
    /// ``server_info``, ``protocol_unsupported``, ``protocol_text``, ``logged_in``,
    /// ``two_factor_required``, ``login_failed``, ``token_refreshed``,
    /// ``token_rejected``, ``listener_registered``, ``lockdown``, ``reply``,
    /// ``request_failed``, ``desynchronized``, ``bad_message``,
    /// ``upload_ready``, ``upload_finished``, ``upload_failed``,
    /// ``download_started``, ``download_data``, ``download_chunk``,
    /// ``download_finished``, ``download_failed``.
    #[pyo3(get)]
    pub kind: &'static str,
    /// The request it answers, where there is one.
    #[pyo3(get)]
    pub seq: Option<u32>,
    /// The answer's status code (``reply``, ``listener_registered``).
    #[pyo3(get)]
    pub code: Option<i64>,
    /// The answer as received (JSON text), where there is one.
    #[pyo3(get)]
    pub raw: Option<Py<PyBytes>>,
    /// Ciphertext (``download_data``).
    #[pyo3(get)]
    pub data: Option<Py<PyBytes>>,
    /// What went wrong, in words (failures).
    #[pyo3(get)]
    pub message: Option<String>,
    /// Sizes: ``upload_ready`` frame size, ``upload_finished`` bytes sent,
    /// ``download_started``/``download_finished`` plaintext size,
    /// ``download_chunk`` ciphertext bytes.
    #[pyo3(get)]
    pub size: Option<u64>,
    /// ``download_started``: chunks to come; ``download_chunk``: its index.
    #[pyo3(get)]
    pub chunks: Option<u32>,
    /// ``lockdown``: on or off; ``token_rejected``: a re-login is under way.
    #[pyo3(get)]
    pub flag: Option<bool>,
    /// ``logged_in``/``token_refreshed``: seconds until the token expires.
    #[pyo3(get)]
    pub expires_in: Option<f64>,
    /// ``server_info``: the protocol version.
    #[pyo3(get)]
    pub protocol_version: Option<u32>,
    key: Option<DownloadKey>,
    hashes: Option<Vec<[u8; 32]>>,
    /// The download ran on the protocol-13 wire (AES-GCM per chunk).
    framed: bool,
}

#[pymethods]
impl CfmsEvent {
    /// The answer, parsed (``None`` without one).
    #[getter]
    fn body<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyAny>>> {
        let Some(raw) = &self.raw else {
            return Ok(None);
        };
        let loads = py.import("json")?.getattr("loads")?;
        Ok(Some(loads.call1((raw.bind(py),))?))
    }

    /// ``download_finished``: decrypt the ciphertext file ``source`` into
    /// ``target``, checking every chunk's and the file's SHA-256 (3–5), or
    /// every chunk's AES-GCM tag before its plaintext is written (13);
    /// returns the plaintext size. Runs without the GIL.
    fn decrypt_file(&self, py: Python<'_>, source: &str, target: &str) -> PyResult<u64> {
        let (Some(key), Some(hashes)) = (&self.key, &self.hashes) else {
            return Err(Error::new_err("only a download_finished event can decrypt"));
        };
        let (key, hashes, framed) = (*key, hashes.clone(), self.framed);
        let (source, target) = (source.to_owned(), target.to_owned());
        py.detach(move || {
            let mut key = key;
            let size = if framed {
                open_chunks(&key, &hashes, &source, &target)
            } else {
                decrypt(&key, &hashes, &source, &target)
            };
            zeroize::Zeroize::zeroize(&mut key.key);
            size
        })
        .map_err(Error::new_err)
    }

    fn __repr__(&self) -> String {
        let mut s = format!("CfmsEvent(kind={:?}", self.kind);
        if let Some(seq) = self.seq {
            s += &format!(", seq={seq}");
        }
        if let Some(code) = self.code {
            s += &format!(", code={code}");
        }
        if let Some(m) = &self.message {
            s += &format!(", message={m:?}");
        }
        s + ")"
    }
}

fn decrypt(
    key: &DownloadKey,
    hashes: &[[u8; 32]],
    source: &str,
    target: &str,
) -> Result<u64, String> {
    let mut input = std::fs::File::open(source).map_err(|e| format!("{source}: {e}"))?;
    let mut output = std::fs::File::create(target).map_err(|e| format!("{target}: {e}"))?;
    let mut decryptor = FileDecryptor::new(key, hashes).map_err(|e| e.to_string())?;
    let mut buf = vec![0u8; 1 << 20];
    let mut size = 0u64;
    loop {
        let n = input.read(&mut buf).map_err(|e| format!("{source}: {e}"))?;
        if n == 0 {
            break;
        }
        let block = buf.get_mut(..n).unwrap_or_default();
        decryptor.decrypt(block).map_err(|e| e.to_string())?;
        output
            .write_all(block)
            .map_err(|e| format!("{target}: {e}"))?;
        size += n as u64;
    }
    decryptor.finish().map_err(|e| e.to_string())?;
    output.sync_all().map_err(|e| format!("{target}: {e}"))?;
    Ok(size)
}

/// Largest protocol-13 chunk decrypted (the real server's is 2 MiB): one
/// chunk is held in memory while its tag is checked.
const MAX_GCM_CHUNK: u64 = 16 * 1024 * 1024;

/// The protocol-13 pass: chunk by chunk (AES-256-GCM; each chunk's tag and
/// nonce prefix from its seal), each chunk's plaintext written only once
/// its tag verified. A forged or corrupted chunk is named by index.
fn open_chunks(
    key: &DownloadKey,
    seals: &[[u8; 32]],
    source: &str,
    target: &str,
) -> Result<u64, String> {
    use naslink_core::cfms::p13::transfer::open_chunk;
    let chunk = u64::from(key.chunk_size);
    if key.file_size > 0 && (chunk == 0 || chunk > MAX_GCM_CHUNK) {
        return Err(format!(
            "chunk size {chunk} (this client opens chunks of 1 B to {MAX_GCM_CHUNK} B)"
        ));
    }
    let mut input = std::fs::File::open(source).map_err(|e| format!("{source}: {e}"))?;
    let output = std::fs::File::create(target).map_err(|e| format!("{target}: {e}"))?;
    let mut output = std::io::BufWriter::new(output);
    let mut block = vec![0u8; usize::try_from(chunk.min(key.file_size)).unwrap_or(0)];
    let mut left = key.file_size;
    let mut index = 0u32;
    while left > 0 {
        let len = usize::try_from(chunk.min(left)).unwrap_or(0);
        let buf = block.get_mut(..len).unwrap_or_default();
        input
            .read_exact(buf)
            .map_err(|e| format!("{source}: chunk {index}: {e}"))?;
        let seal = seals
            .get(index as usize)
            .ok_or_else(|| format!("no tag was received for chunk {index}"))?;
        open_chunk(key, index, seal, buf).map_err(|e| format!("chunk {index}: {e}"))?;
        output
            .write_all(buf)
            .map_err(|e| format!("{target}: {e}"))?;
        left -= len as u64;
        index += 1;
    }
    if input
        .read(&mut [0u8; 1])
        .map_err(|e| format!("{source}: {e}"))?
        != 0
    {
        return Err("more ciphertext than the file's size".to_owned());
    }
    let file = output
        .into_inner()
        .map_err(|e| format!("{target}: {}", e.error()))?;
    file.sync_all().map_err(|e| format!("{target}: {e}"))?;
    Ok(key.file_size)
}

fn event_of(kind: &'static str) -> CfmsEvent {
    CfmsEvent {
        kind,
        seq: None,
        code: None,
        raw: None,
        data: None,
        message: None,
        size: None,
        chunks: None,
        flag: None,
        expires_in: None,
        protocol_version: None,
        key: None,
        hashes: None,
        framed: false,
    }
}

/// A converted event: a CFMS one still open for the chunk hashes.
enum Converted {
    Cfms(Box<CfmsEvent>),
    Other(Py<PyAny>),
}

fn convert(py: Python<'_>, e: CoreEvent<'_, cfms::Session<'_, QUEUE>>) -> PyResult<Converted> {
    use cfms::ConnectionEvent as C;
    let raw = |r: &cfms::Response<'_>| Some(PyBytes::new(py, r.root().raw()).unbind());
    let secs = |d: naslink_core::time::Duration| Some(d.total_millis() as f64 / 1000.0);
    let out = match e {
        CoreEvent::Connected => {
            return Ok(Converted::Other(
                Py::new(py, crate::events::Connected)?.into_any(),
            ));
        }
        CoreEvent::Rejected(r) => {
            return Ok(Converted::Other(
                Py::new(
                    py,
                    crate::events::Rejected {
                        status: r.status(),
                        location: r.location().map(str::to_owned),
                    },
                )?
                .into_any(),
            ));
        }
        CoreEvent::Closed(c) => return Ok(Converted::Other(Py::new(py, closed(c))?.into_any())),
        CoreEvent::TransmitTooSmall(e) => {
            return Err(Error::new_err(format!(
                "the transmit buffer is too small: {e}"
            )));
        }
        CoreEvent::Session(s) => match s {
            C::ServerInfo {
                seq,
                protocol_version,
                lockdown,
                response,
            } => CfmsEvent {
                seq: seq.map(|s| s.0),
                protocol_version: Some(protocol_version),
                flag: Some(lockdown),
                raw: raw(&response),
                code: Some(response.code()),
                ..event_of("server_info")
            },
            C::ProtocolUnsupported { version } => CfmsEvent {
                protocol_version: version,
                message: Some(match version {
                    Some(version) => cfms::p13::Unsupported { version }.to_string(),
                    None => "the server speaks a CFMS protocol this client does not".to_owned(),
                }),
                ..event_of("protocol_unsupported")
            },
            C::LoggedIn {
                expires_in,
                response,
            } => CfmsEvent {
                expires_in: secs(expires_in),
                raw: raw(&response),
                code: Some(response.code()),
                ..event_of("logged_in")
            },
            C::TwoFactorRequired { method } => CfmsEvent {
                message: Some(format!("{method:?}")),
                ..event_of("two_factor_required")
            },
            C::LoginFailed(e) => CfmsEvent {
                message: Some(e.to_string()),
                ..event_of("login_failed")
            },
            C::TokenRefreshed { expires_in } => CfmsEvent {
                expires_in: secs(expires_in),
                ..event_of("token_refreshed")
            },
            C::TokenRejected { relogin } => CfmsEvent {
                flag: Some(relogin),
                ..event_of("token_rejected")
            },
            C::ListenerRegistered { status } => CfmsEvent {
                code: Some(status.code()),
                ..event_of("listener_registered")
            },
            C::Lockdown { on } => CfmsEvent {
                flag: Some(on),
                ..event_of("lockdown")
            },
            C::Reply {
                seq,
                status,
                response,
            } => CfmsEvent {
                seq: Some(seq.0),
                code: Some(status.code()),
                raw: raw(&response),
                message: response.message().map(|m| m.chars().collect::<String>()),
                ..event_of("reply")
            },
            C::RequestFailed { seq, error } => CfmsEvent {
                seq: Some(seq.0),
                message: Some(format!("{error:?}")),
                ..event_of("request_failed")
            },
            C::Desynchronized(d) => CfmsEvent {
                message: Some(format!("{d:?}")),
                ..event_of("desynchronized")
            },
            C::BadMessage(e) => CfmsEvent {
                message: Some(format!("{e:?}")),
                ..event_of("bad_message")
            },
            C::UploadReady { seq, frame_size } => CfmsEvent {
                seq: Some(seq.0),
                size: Some(u64::from(frame_size)),
                ..event_of("upload_ready")
            },
            C::UploadFinished { seq, size } => CfmsEvent {
                seq: Some(seq.0),
                size: Some(size),
                ..event_of("upload_finished")
            },
            C::UploadFailed { seq, error } => CfmsEvent {
                seq: Some(seq.0),
                message: Some(format!("{error:?}")),
                ..event_of("upload_failed")
            },
            C::DownloadStarted {
                seq,
                file_size,
                total_chunks,
            } => CfmsEvent {
                seq: Some(seq.0),
                size: Some(file_size),
                chunks: Some(total_chunks),
                ..event_of("download_started")
            },
            C::DownloadData { seq, data } => CfmsEvent {
                seq: Some(seq.0),
                data: Some(PyBytes::new(py, data).unbind()),
                ..event_of("download_data")
            },
            C::DownloadChunk { seq, index, len } => CfmsEvent {
                seq: Some(seq.0),
                chunks: Some(index),
                size: Some(u64::from(len)),
                ..event_of("download_chunk")
            },
            C::DownloadFinished { seq, key } => CfmsEvent {
                seq: Some(seq.0),
                size: Some(key.file_size),
                key: Some(key),
                hashes: None,
                ..event_of("download_finished")
            },
            C::DownloadFailed { seq, error } => CfmsEvent {
                seq: Some(seq.0),
                message: Some(format!("{error:?}")),
                ..event_of("download_failed")
            },
        },
    };
    Ok(Converted::Cfms(Box::new(out)))
}
