//! `Connection<cfms::Session>` over the tests' one blocking driver loop
//! ([`ConnLink`]), with what the end-to-end tests look at: the events as
//! owned text and bodies, the downloaded ciphertext, uploads fed through
//! the connection.

use std::collections::VecDeque;
use std::time::Duration as StdDuration;

use naslink_core::cfms::{
    Buffers, Config, ConnectionEvent, DecryptError, DownloadKey, FileDecryptor, Session,
};
use naslink_core::connection::Event;
use naslink_core::random::Entropy;
use naslink_core::ws::{self, Closed};

use super::{CHUNK_HASHES, QUEUE, SESSION_RX, WS_RX};
use crate::support::{Clock, ConnLink};

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

/// One connection: the tests' one driver loop ([`ConnLink`]) over a
/// `Connection<cfms::Session>`, and what the test saw on it.
pub struct CfmsConn<E: Entropy> {
    pub clock: Clock,
    pub link: ConnLink<Session<'static, QUEUE>, E>,
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
        let streaming = ws::Config {
            streaming: true,
            ..ws::Config::default()
        };
        let link = ConnLink::connect(&clock, url, streaming, entropy, WS_RX, session);
        CfmsConn {
            clock,
            link,
            ciphertext: Vec::new(),
            key: None,
            backlog: VecDeque::new(),
        }
    }

    /// Write what the connection has queued.
    pub fn flush(&mut self) {
        self.link.flush(&self.clock);
    }

    /// One round of the driver loop; every event lands in the backlog.
    fn pump(&mut self, wait: StdDuration) {
        let CfmsConn {
            clock,
            link,
            ciphertext,
            key,
            backlog,
        } = self;
        link.poll_once(clock, wait, |event, _| {
            let got = match event {
                Event::Session(e) => {
                    let body = match &e {
                        ConnectionEvent::Reply { response, .. }
                        | ConnectionEvent::LoggedIn { response, .. }
                        | ConnectionEvent::ServerInfo { response, .. } => {
                            serde_json::from_slice(response.root().raw()).ok()
                        }
                        ConnectionEvent::DownloadData { data, .. } => {
                            ciphertext.extend_from_slice(data);
                            None
                        }
                        ConnectionEvent::DownloadFinished { key: k, .. } => {
                            *key = Some(*k);
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
                other => Got::Event {
                    debug: format!("{other:?}"),
                    body: None,
                },
            };
            backlog.push_back(got);
        });
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
                .link
                .conn
                .upload_write(self.clock.now(), &data[offset..])
                .expect("upload write");
            self.flush();
        }
        loop {
            match self.link.conn.upload_write(self.clock.now(), &[]) {
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
        let mut decryptor = FileDecryptor::new(&key, self.link.conn.session().chunk_hashes())?;
        decryptor.decrypt(&mut plain)?;
        decryptor.finish()?;
        Ok(plain)
    }
}
