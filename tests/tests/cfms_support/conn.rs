//! A blocking std driver for `Connection<cfms::Session>` over a real TCP
//! socket: the shape every adapter has (bytes in, `poll_transmit` out,
//! events drained), a few dozen lines, so that the end-to-end tests run the
//! session's own opening sequence against the emulator.

use std::collections::VecDeque;
use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::time::Duration as StdDuration;

use naslink_core::cfms::{
    Buffers, Config, ConnectionEvent, DecryptError, DownloadKey, FileDecryptor, Session,
};
use naslink_core::connection::{Connection, Event};
use naslink_core::random::Entropy;
use naslink_core::ws::{self, Closed};

use super::{CHUNK_HASHES, QUEUE, SESSION_RX, WS_RX};
use crate::support::Clock;

/// What the test saw, owned: the event's `Debug` text and, for answers,
/// the JSON body.
#[derive(Debug, Clone)]
pub enum Got {
    Event {
        debug: String,
        body: Option<serde_json::Value>,
    },
    Closed(Closed),
}

impl Got {
    /// The event's `Debug` text starts with `prefix`.
    pub fn is(&self, prefix: &str) -> bool {
        matches!(self, Got::Event { debug, .. } if debug.starts_with(prefix))
    }
}

/// One connection: a `Connection` and its socket.
pub struct CfmsConn<E: Entropy> {
    pub clock: Clock,
    stream: TcpStream,
    pub conn: Connection<Session<'static, QUEUE>, Vec<u8>, E>,
    input: Vec<u8>,
    /// Every `DownloadData` byte, in order.
    pub ciphertext: Vec<u8>,
    /// The last `DownloadFinished` key.
    pub key: Option<DownloadKey>,
    backlog: VecDeque<Got>,
}

impl<E: Entropy> CfmsConn<E> {
    /// Connect to `url` (streaming WebSocket) with a session over `config`.
    pub fn connect(url: &str, config: Config, entropy: E) -> Self {
        let clock = Clock::start();
        let rx: &'static mut [u8] = Box::leak(vec![0u8; SESSION_RX].into_boxed_slice());
        let chunk_hashes: &'static mut [[u8; 32]] =
            Box::leak(vec![[0u8; 32]; CHUNK_HASHES].into_boxed_slice());
        let session = Session::new(config, Buffers { rx, chunk_hashes });
        let parsed = ws::Url::parse(url).expect("valid ws:// URL");
        let stream = TcpStream::connect((parsed.host, parsed.port)).expect("emulator reachable");
        stream.set_nodelay(true).expect("nodelay");
        let streaming = ws::Config {
            streaming: true,
            ..ws::Config::default()
        };
        let ws = ws::Client::connect(
            clock.now(),
            &parsed,
            &[],
            streaming,
            entropy,
            vec![0; WS_RX],
            vec![0; 64 * 1024],
        )
        .expect("client");
        CfmsConn {
            clock,
            stream,
            conn: Connection::new(ws, session),
            input: Vec::new(),
            ciphertext: Vec::new(),
            key: None,
            backlog: VecDeque::new(),
        }
    }

    /// Write what the connection has queued.
    pub fn flush(&mut self) {
        while let Some(bytes) = self.conn.poll_transmit(self.clock.now()) {
            let n = bytes.len();
            if self.stream.write_all(bytes).is_err() {
                self.conn.handle_eof(self.clock.now());
                return;
            }
            self.conn.advance_transmit(n);
        }
    }

    /// One round: flush, read for up to `wait`, feed, drain events.
    fn pump(&mut self, wait: StdDuration) {
        self.flush();
        if self.input.is_empty() {
            self.stream.set_read_timeout(Some(wait)).expect("timeout");
            let mut buf = [0u8; 16 * 1024];
            match self.stream.read(&mut buf) {
                Ok(0) => self.conn.handle_eof(self.clock.now()),
                Ok(n) => self.input.extend_from_slice(&buf[..n]),
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
                Err(_) => self.conn.handle_eof(self.clock.now()),
            }
        }
        loop {
            let used = self.conn.handle_input(self.clock.now(), &self.input);
            self.input.drain(..used);
            let drained = self.drain();
            self.flush();
            if self.input.is_empty() || (used == 0 && !drained) {
                break;
            }
        }
        let now = self.clock.now();
        if self.conn.poll_timeout().is_some_and(|at| at <= now) {
            self.conn.handle_timeout(now);
            self.drain();
        }
    }

    /// Take every event; `true` if there was one.
    fn drain(&mut self) -> bool {
        let mut any = false;
        while let Some(event) = self.conn.poll_event() {
            any = true;
            let got = match event {
                Event::Session(e) => {
                    let body = match &e {
                        ConnectionEvent::Reply { response, .. }
                        | ConnectionEvent::LoggedIn { response, .. }
                        | ConnectionEvent::ServerInfo { response, .. } => {
                            serde_json::from_slice(response.root().raw()).ok()
                        }
                        ConnectionEvent::DownloadData { data, .. } => {
                            self.ciphertext.extend_from_slice(data);
                            None
                        }
                        ConnectionEvent::DownloadFinished { key, .. } => {
                            self.key = Some(*key);
                            None
                        }
                        _ => None,
                    };
                    Got::Event {
                        debug: format!("{e:?}"),
                        body,
                    }
                }
                Event::Closed(c) => Got::Closed(c),
                Event::Connected | Event::Rejected(_) | Event::TransmitTooSmall(_) => Got::Event {
                    debug: format!("{event:?}"),
                    body: None,
                },
            };
            self.backlog.push_back(got);
        }
        any
    }

    /// Pump until an event matches `pred`; panics after `limit`.
    pub fn wait_for(&mut self, limit: StdDuration, pred: impl Fn(&Got) -> bool) -> Got {
        let deadline = std::time::Instant::now() + limit;
        let mut seen = Vec::new();
        loop {
            while let Some(got) = self.backlog.pop_front() {
                if pred(&got) {
                    return got;
                }
                seen.push(got);
            }
            assert!(
                std::time::Instant::now() < deadline,
                "timed out; saw {seen:#?}"
            );
            self.pump(StdDuration::from_millis(10));
        }
    }

    /// Pump until the event whose `Debug` text starts with `prefix`.
    pub fn wait_event(&mut self, prefix: &str) -> Got {
        self.wait_for(StdDuration::from_secs(10), |g| g.is(prefix))
    }

    /// Send a file through `upload_write`, draining the transmit buffer
    /// whenever it is full; then the final empty message, which the
    /// session sends only when the size is a multiple of the frame size.
    pub fn upload_bytes(&mut self, data: &[u8]) {
        let mut offset = 0;
        while offset < data.len() {
            offset += self
                .conn
                .upload_write(self.clock.now(), &data[offset..])
                .expect("upload write");
            self.flush();
        }
        loop {
            match self.conn.upload_write(self.clock.now(), &[]) {
                Ok(_) => break,
                Err(naslink_core::cfms::Error::Ws(ws::SendError::InsufficientSize(_))) => {
                    self.flush()
                }
                Err(e) => panic!("final upload message: {e:?}"),
            }
        }
        self.flush();
    }

    /// Decrypt the stored ciphertext with the last key.
    pub fn decrypt(&self) -> Result<Vec<u8>, DecryptError> {
        let key = self.key.expect("a finished download");
        let mut plain = self.ciphertext.clone();
        let mut decryptor = FileDecryptor::new(&key, self.conn.session().chunk_hashes())?;
        decryptor.decrypt(&mut plain)?;
        decryptor.finish()?;
        Ok(plain)
    }
}
