//! Test glue: blocking std drivers over a real TCP socket: [`ConnLink`]
//! for the core's `Connection<S>` (a session over the WebSocket client),
//! and [`WsLink`] for the bare WebSocket client. Short on purpose: the
//! adapters are the real drivers; this only moves bytes so end-to-end tests
//! can exercise the core against the emulators.

#![allow(dead_code)] // each test file uses part of the glue

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::time::Duration as StdDuration;

use naslink_core::Connection;
use naslink_core::connection::{Command, Event as ConnEvent, Session};
use naslink_core::random::{self, Entropy};
use naslink_core::time::Instant;
use naslink_core::ws::{self, Client, Closed, Event};

/// Randomness from the operating system (through `rand`'s `OsRng`).
pub fn os_entropy() -> random::FromFn<impl FnMut(&mut [u8]) + Clone> {
    random::from_fn(|buf: &mut [u8]| rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, buf))
}

/// Milliseconds since the test clock started, as the core's `Instant`.
#[derive(Clone, Copy)]
pub struct Clock(std::time::Instant);

impl Clock {
    pub fn start() -> Self {
        Clock(std::time::Instant::now())
    }
    pub fn now(&self) -> Instant {
        Instant::from_millis(self.0.elapsed().as_millis() as u64)
    }
}

/// Seconds since the UNIX epoch (fnOS reqids and CFMS token expiry need them).
pub fn unix_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs()
}

/// A TCP connection to `url` and a WebSocket client with its upgrade
/// request queued (`rx` bytes of receive buffer, 64 KiB to transmit).
fn open<E: Entropy>(
    clock: &Clock,
    url: &str,
    config: ws::Config,
    entropy: E,
    rx: usize,
) -> (TcpStream, Client<Vec<u8>, E>) {
    let parsed = ws::Url::parse(url).expect("valid ws:// URL");
    let stream = TcpStream::connect((parsed.host, parsed.port)).expect("emulator reachable");
    stream.set_nodelay(true).expect("nodelay");
    let ws = Client::connect(
        clock.now(),
        &parsed,
        &[],
        config,
        entropy,
        vec![0; rx],
        vec![0; 64 * 1024],
    )
    .expect("client");
    (stream, ws)
}

/// What arrived on the WebSocket, owned so the test can hold it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Incoming {
    Text(String),
    Binary(Vec<u8>),
    /// Part of a message larger than the receive buffer (streaming mode).
    Chunk {
        text: bool,
        data: Vec<u8>,
        first: bool,
        last: bool,
    },
    /// The connection is over (clean or not): drop the transport.
    Closed(Closed),
}

/// One WebSocket connection driven over blocking TCP.
pub struct WsLink<E: Entropy> {
    stream: TcpStream,
    pub ws: Client<Vec<u8>, E>,
    pending_input: Vec<u8>,
    closed: bool,
}

impl<E: Entropy> WsLink<E> {
    /// Connect to a `ws://` URL and finish the upgrade.
    pub fn connect(clock: &Clock, url: &str, config: ws::Config, entropy: E, rx: usize) -> Self {
        let (stream, ws) = open(clock, url, config, entropy, rx);
        let mut link = WsLink {
            stream,
            ws,
            pending_input: Vec::new(),
            closed: false,
        };
        let deadline = std::time::Instant::now() + StdDuration::from_secs(10);
        while link.ws.state() == ws::State::Handshaking {
            assert!(
                std::time::Instant::now() < deadline,
                "upgrade did not finish"
            );
            if let [Incoming::Closed(c), ..] = link
                .poll_once(clock, StdDuration::from_millis(50))
                .as_slice()
            {
                panic!("upgrade failed: {c:?}");
            }
        }
        link
    }

    pub fn is_closed(&self) -> bool {
        self.closed
    }

    /// Send whatever the client has queued.
    pub fn flush(&mut self, clock: &Clock) {
        while let Some(bytes) = self.ws.poll_transmit() {
            let n = bytes.len();
            if self.stream.write_all(bytes).is_err() {
                self.ws.handle_eof(clock.now());
                return;
            }
            self.ws.advance_transmit(n);
        }
    }

    /// One round: flush, wait up to `wait` for input, feed it, collect events.
    /// `Connected` is consumed here; everything else is returned.
    pub fn poll_once(&mut self, clock: &Clock, wait: StdDuration) -> Vec<Incoming> {
        let mut out = Vec::new();
        self.flush(clock);
        if let Some(at) = self.ws.poll_timeout()
            && at <= clock.now()
        {
            self.ws.handle_timeout(clock.now());
        }
        if self.pending_input.is_empty() && !self.closed {
            self.stream.set_read_timeout(Some(wait)).expect("timeout");
            let mut buf = [0u8; 16 * 1024];
            match self.stream.read(&mut buf) {
                Ok(0) => self.ws.handle_eof(clock.now()),
                Ok(n) => self.pending_input.extend_from_slice(&buf[..n]),
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
                Err(_) => self.ws.handle_eof(clock.now()),
            }
        }
        loop {
            let used = self.ws.handle_input(clock.now(), &self.pending_input);
            self.pending_input.drain(..used);
            let mut progressed = used > 0;
            while let Some(event) = self.ws.poll_event() {
                progressed = true;
                match event {
                    Event::Connected
                    | Event::Ping(_)
                    | Event::Pong(_)
                    | Event::CloseReceived { .. } => {}
                    Event::Rejected(r) => panic!("upgrade rejected with {}", r.status()),
                    Event::Text(t) => out.push(Incoming::Text(t.to_owned())),
                    Event::Binary(b) => out.push(Incoming::Binary(b.to_vec())),
                    Event::TextChunk { data, first, last } => out.push(Incoming::Chunk {
                        text: true,
                        data: data.as_bytes().to_vec(),
                        first,
                        last,
                    }),
                    Event::BinaryChunk { data, first, last } => out.push(Incoming::Chunk {
                        text: false,
                        data: data.to_vec(),
                        first,
                        last,
                    }),
                    Event::Closed(c) => {
                        self.closed = true;
                        out.push(Incoming::Closed(c));
                    }
                }
            }
            self.flush(clock);
            if self.pending_input.is_empty() || !progressed {
                break;
            }
        }
        out
    }
}

/// One connection carrying a session, driven over blocking TCP: the
/// tests' one driver loop over the core's [`Connection`].
pub struct ConnLink<S: Session, E: Entropy> {
    stream: TcpStream,
    pub conn: Connection<S, Vec<u8>, E>,
    pending_input: Vec<u8>,
    closed: bool,
    /// A write failed; the end is noted at the next round.
    closed_by_write: bool,
}

impl<S: Session, E: Entropy> ConnLink<S, E> {
    /// Connect to a `ws://` URL, finish the upgrade and start `session`.
    pub fn connect(
        clock: &Clock,
        url: &str,
        config: ws::Config,
        entropy: E,
        rx: usize,
        session: S,
    ) -> Self {
        let (stream, ws) = open(clock, url, config, entropy, rx);
        let mut link = ConnLink {
            stream,
            conn: Connection::new(ws, session),
            pending_input: Vec::new(),
            closed: false,
            closed_by_write: false,
        };
        let deadline = std::time::Instant::now() + StdDuration::from_secs(10);
        let mut open = false;
        while !open {
            assert!(
                std::time::Instant::now() < deadline,
                "upgrade did not finish"
            );
            link.poll_once(
                clock,
                StdDuration::from_millis(50),
                |event, _| match event {
                    ConnEvent::Connected => open = true,
                    ConnEvent::Rejected(r) => panic!("upgrade rejected with {}", r.status()),
                    ConnEvent::Closed(c) => panic!("upgrade failed: {c:?}"),
                    _ => {}
                },
            );
        }
        link
    }

    /// The connection is over.
    pub fn is_closed(&self) -> bool {
        self.closed
    }

    /// Give the session back for the next connection.
    pub fn into_session(self) -> S {
        self.conn.into_parts().0
    }

    /// Queue a command (written by the session into the transmit buffer).
    pub fn send<C: Command<S>>(
        &mut self,
        clock: &Clock,
        command: &C,
    ) -> Result<C::Handle, C::Error> {
        self.conn.send(clock.now(), command)
    }

    /// Write what the connection has queued.
    pub fn flush(&mut self, clock: &Clock) {
        while let Some(bytes) = self.conn.poll_transmit(clock.now()) {
            let n = bytes.len();
            if self.stream.write_all(bytes).is_err() {
                self.closed_by_write = true;
                return;
            }
            self.conn.advance_transmit(n);
        }
    }

    /// One round: timers, wait up to `wait` for input, then every event to
    /// `on` (with the text of the message it is about), then flush.
    pub fn poll_once(
        &mut self,
        clock: &Clock,
        wait: StdDuration,
        mut on: impl FnMut(ConnEvent<'_, S>, Option<&str>),
    ) {
        self.flush(clock);
        if std::mem::take(&mut self.closed_by_write) {
            self.conn.handle_eof(clock.now());
        }
        if self.conn.poll_timeout().is_some_and(|at| at <= clock.now()) {
            self.conn.handle_timeout(clock.now());
        }
        if self.pending_input.is_empty() && !self.closed {
            self.stream.set_read_timeout(Some(wait)).expect("timeout");
            let mut buf = [0u8; 16 * 1024];
            match self.stream.read(&mut buf) {
                Ok(0) => self.conn.handle_eof(clock.now()),
                Ok(n) => self.pending_input.extend_from_slice(&buf[..n]),
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
                Err(_) => self.conn.handle_eof(clock.now()),
            }
        }
        loop {
            let used = self.conn.handle_input(clock.now(), &self.pending_input);
            self.pending_input.drain(..used);
            let mut progressed = used > 0;
            while let Some((event, message)) = self.conn.poll_event_with_message() {
                progressed = true;
                self.closed |= matches!(event, ConnEvent::Closed(_));
                let text = message.and_then(|m| std::str::from_utf8(m.data).ok());
                on(event, text);
            }
            self.flush(clock);
            if self.pending_input.is_empty() || !progressed {
                break;
            }
        }
    }
}
