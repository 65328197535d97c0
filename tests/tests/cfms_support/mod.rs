//! CFMS glue for the end-to-end tests: the core's CFMS session on top of the
//! shared blocking [`WsLink`], plus an RFC 6238 TOTP written here (HMAC-SHA-1
//! from the `hmac`/`sha1` crates) so the two-factor test does not borrow the
//! emulator's own code generator.

#![allow(dead_code)] // each test uses part of the glue

pub mod conn;

use std::collections::VecDeque;
use std::time::Duration as StdDuration;

use hmac::{Hmac, Mac};
use naslink_core::cfms::{
    Buffers, Config, ConnectionEvent, DecryptError, DownloadKey, Error, Event, FileDecryptor,
    Response, Seq, Session, Status, UploadSource, sha256_of,
};
use naslink_core::connection::{self, Message};
use naslink_core::random::{self, Entropy};
use naslink_core::ws::{self, Closed};

use crate::support::{Clock, Incoming, WsLink, unix_secs};

/// Requests in flight per connection.
pub const QUEUE: usize = 8;
/// The session's receive buffer: listings and answers, never chunks (those
/// are streamed).
pub const SESSION_RX: usize = 64 * 1024;
/// The WebSocket receive buffer: far below the 2.8 MB chunk messages, so a
/// download really arrives in pieces.
pub const WS_RX: usize = 64 * 1024;
/// One SHA-256 per download chunk: 5 MiB at 64 KiB chunks needs 80.
pub const CHUNK_HASHES: usize = 128;

/// What the test saw, owned so it can be kept and compared.
#[derive(Debug, Clone, PartialEq)]
pub enum Seen {
    /// A session event, with the answer's JSON when it has one.
    Event { event: Event, body: Option<String> },
    /// The WebSocket connection ended (the session was told).
    Closed(Closed),
    /// The session refused a received message.
    Refused(Error),
}

impl Seen {
    pub fn event(&self) -> Option<&Event> {
        match self {
            Seen::Event { event, .. } => Some(event),
            _ => None,
        }
    }
}

/// One CFMS connection: a session over a blocking WebSocket link.
pub struct CfmsLink<E: Entropy + Clone> {
    pub clock: Clock,
    url: String,
    entropy: E,
    pub link: Option<WsLink<E>>,
    pub session: Session<'static, QUEUE>,
    tx: Vec<u8>,
    /// Where downloaded ciphertext goes (the decryption pass reads it back).
    pub ciphertext: Vec<u8>,
    /// Pieces of messages larger than the WebSocket receive buffer.
    pub pieces: usize,
    /// The frame size of the last upload's `UploadReady`.
    pub frame_size: Option<u32>,
    /// Seen but not yet waited for.
    backlog: VecDeque<Seen>,
}

impl<E: Entropy + Clone> CfmsLink<E> {
    /// Connect (plain `ws://`, streaming receive) with `config`.
    pub fn connect(url: &str, config: Config, entropy: E) -> Self {
        Self::connect_with_rx(url, config, entropy, SESSION_RX)
    }

    /// As [`connect`](Self::connect) with a session receive buffer of
    /// `session_rx` bytes.
    pub fn connect_with_rx(url: &str, config: Config, entropy: E, session_rx: usize) -> Self {
        let clock = Clock::start();
        // The session borrows its buffers for its whole life; a test's few
        // leaked kilobytes buy a `'static` session the driver can own.
        let rx: &'static mut [u8] = Box::leak(vec![0u8; session_rx].into_boxed_slice());
        let hashes: &'static mut [[u8; 32]] =
            Box::leak(vec![[0u8; 32]; CHUNK_HASHES].into_boxed_slice());
        let mut session = Session::new(
            config,
            Buffers {
                rx,
                chunk_hashes: hashes,
            },
        );
        session.set_unix_time(clock.now(), unix_secs() as f64);
        let mut me = CfmsLink {
            clock,
            url: url.to_owned(),
            entropy,
            link: None,
            session,
            tx: vec![0; 16 * 1024],
            ciphertext: Vec::new(),
            pieces: 0,
            frame_size: None,
            backlog: VecDeque::new(),
        };
        me.reconnect();
        me
    }

    /// A fresh WebSocket connection for the same session.
    pub fn reconnect(&mut self) {
        let config = ws::Config {
            streaming: true,
            ..ws::Config::default()
        };
        self.link = Some(WsLink::connect(
            &self.clock,
            &self.url,
            config,
            self.entropy.clone(),
            WS_RX,
        ));
    }

    /// The transport dies under the session (socket gone, no close frame).
    pub fn drop_transport(&mut self) -> Vec<Seen> {
        self.link = None;
        self.session.handle_disconnect(self.clock.now());
        let mut seen = Vec::new();
        self.drain(&mut seen);
        seen
    }

    /// Send a request the session wrote into the transmit buffer.
    pub fn send(
        &mut self,
        write: impl FnOnce(
            &mut Session<'static, QUEUE>,
            &Clock,
            &mut [u8],
        ) -> Result<naslink_core::cfms::Sent, Error>,
    ) -> Seq {
        let sent = write(&mut self.session, &self.clock, &mut self.tx).expect("request accepted");
        let text = std::str::from_utf8(&self.tx[..sent.len]).expect("requests are UTF-8");
        let link = self.link.as_mut().expect("connected");
        link.ws.send_text(text).expect("ws send");
        link.flush(&self.clock);
        sent.seq
    }

    /// Send a text message the session did not write (a misbehaving peer).
    pub fn send_raw_text(&mut self, text: &str) {
        let link = self.link.as_mut().expect("connected");
        link.ws.send_text(text).expect("ws send");
        link.flush(&self.clock);
    }

    /// One round of I/O and timers; returns what happened.
    pub fn pump(&mut self, wait: StdDuration) -> Vec<Seen> {
        let mut seen = Vec::new();
        self.transmit();
        if let Some(link) = self.link.as_mut() {
            let incoming = link.poll_once(&self.clock, wait);
            let closed = link.is_closed();
            for item in incoming {
                let now = self.clock.now();
                let (kind, data, first, last) = match item {
                    Incoming::Text(t) => (ws::MessageKind::Text, t.into_bytes(), true, true),
                    Incoming::Binary(b) => (ws::MessageKind::Binary, b, true, true),
                    Incoming::Chunk {
                        text,
                        data,
                        first,
                        last,
                    } => {
                        self.pieces += 1;
                        let kind = if text {
                            ws::MessageKind::Text
                        } else {
                            ws::MessageKind::Binary
                        };
                        (kind, data, first, last)
                    }
                    Incoming::Closed(c) => {
                        self.session.handle_disconnect(now);
                        seen.push(Seen::Closed(c));
                        continue;
                    }
                };
                let message = Message {
                    kind,
                    data: &data,
                    first,
                    last,
                };
                // The session's path inside a Connection: events (and the
                // answers they borrow) are taken before the next message.
                connection::Session::handle_message(&mut self.session, now, message);
                self.drain_with(Some(message), &mut seen);
            }
            if closed {
                self.link = None;
            }
        }
        let now = self.clock.now();
        if self.session.poll_timeout().is_some_and(|at| at <= now) {
            self.session.handle_timeout(now);
        }
        self.drain(&mut seen);
        self.transmit();
        seen
    }

    fn drain(&mut self, seen: &mut Vec<Seen>) {
        self.drain_with(None, seen);
    }

    /// Take every event, the first with the message it is about.
    fn drain_with(&mut self, mut message: Option<Message<'_>>, seen: &mut Vec<Seen>) {
        while let Some(e) = connection::Session::poll_event(&mut self.session, message.take()) {
            match undress(e) {
                Undressed::Event(event, body) => seen.push(Seen::Event { event, body }),
                Undressed::Data(data) => self.ciphertext.extend_from_slice(data),
                Undressed::Refused(e) => seen.push(Seen::Refused(e)),
            }
        }
    }

    /// Send what the session owes the server (header, `ready`, refresh …).
    fn transmit(&mut self) {
        let now = self.clock.now();
        let mut rng = random::from_fn(|b: &mut [u8]| b.fill(7));
        while let Some(t) =
            connection::Session::poll_transmit(&mut self.session, now, &mut rng, &mut self.tx)
                .expect("transmit buffer large enough")
        {
            let Some(link) = self.link.as_mut() else {
                return;
            };
            let bytes = &self.tx[..t.len];
            let sent = match t.kind {
                ws::MessageKind::Text => link
                    .ws
                    .send_text(std::str::from_utf8(bytes).expect("UTF-8")),
                ws::MessageKind::Binary => link.ws.send_binary(bytes),
            };
            sent.expect("ws send");
            link.flush(&self.clock);
        }
    }

    /// Pump until `pred` matches; returns the match and everything seen up
    /// to and including it. What arrived after the match stays queued for
    /// the next wait. Panics after `limit`.
    pub fn wait_for(
        &mut self,
        limit: StdDuration,
        mut pred: impl FnMut(&Seen) -> bool,
    ) -> (Seen, Vec<Seen>) {
        let deadline = std::time::Instant::now() + limit;
        let mut all = Vec::new();
        loop {
            while let Some(seen) = self.backlog.pop_front() {
                let hit = pred(&seen);
                all.push(seen.clone());
                if hit {
                    return (seen, all);
                }
            }
            assert!(
                std::time::Instant::now() < deadline,
                "timed out; saw {all:#?}"
            );
            let batch = self.pump(StdDuration::from_millis(10));
            self.backlog.extend(batch);
        }
    }

    /// Keep the connection served for `d`; what is seen stays queued.
    pub fn idle(&mut self, d: StdDuration) {
        let until = std::time::Instant::now() + d;
        while std::time::Instant::now() < until {
            let batch = self.pump(StdDuration::from_millis(10));
            self.backlog.extend(batch);
        }
    }

    /// Wait for an event matching `pred`.
    pub fn wait_event(
        &mut self,
        limit: StdDuration,
        mut pred: impl FnMut(&Event) -> bool,
    ) -> (Event, Option<String>) {
        match self.wait_for(limit, |s| s.event().is_some_and(&mut pred)).0 {
            Seen::Event { event, body } => (event, body),
            _ => unreachable!("the predicate only matches events"),
        }
    }

    /// The answer to request `seq`: its status and JSON body.
    pub fn reply(&mut self, seq: Seq) -> (Status, serde_json::Value) {
        let (event, body) = self.wait_event(
            StdDuration::from_secs(10),
            |e| matches!(e, Event::Reply { seq: s, .. } if *s == seq),
        );
        let Event::Reply { status, .. } = event else {
            unreachable!()
        };
        (status, json(body.as_deref().expect("a reply has a body")))
    }

    /// `server_info`, expecting a spoken protocol.
    pub fn server_info(&mut self) -> u32 {
        let seq = self.send(|s, c, b| s.server_info(c.now(), b));
        match self
            .wait_event(
                StdDuration::from_secs(5),
                |e| matches!(e, Event::ServerInfo { seq: Some(s), .. } if *s == seq),
            )
            .0
        {
            Event::ServerInfo {
                protocol_version, ..
            } => protocol_version,
            _ => unreachable!(),
        }
    }

    /// `server_info` then `login`, expecting success; returns the login body.
    pub fn login(&mut self, user: &str, password: &str) -> serde_json::Value {
        self.server_info();
        let (user, password) = (user.to_owned(), password.to_owned());
        self.send(move |s, c, b| s.login(c.now(), &user, &password, b));
        let (event, body) = self.wait_event(StdDuration::from_secs(10), |e| {
            matches!(e, Event::LoggedIn { .. } | Event::LoginFailed(_))
        });
        assert!(
            matches!(event, Event::LoggedIn { .. }),
            "login failed: {event:?}"
        );
        json(body.as_deref().expect("login body"))
    }

    /// `create_document` in the root, upload `data` into it, and return its
    /// id as a root listing shows it.
    pub fn upload(&mut self, title: &str, data: &[u8]) -> String {
        let source = UploadSource {
            size: data.len() as u64,
            sha256: Some(sha256_of(data)),
        };
        let (seq, end) = self.upload_as(title, source, data);
        if data.is_empty() {
            assert_eq!(self.frame_size, None, "an empty file is answered `stop`");
        }
        assert_eq!(
            end,
            Event::UploadFinished {
                seq,
                size: data.len() as u64
            }
        );

        let seq = self.send(|s, c, b| s.list_directory(c.now(), None, b));
        let (status, body) = self.reply(seq);
        assert_eq!(status, Status::Ok);
        let docs = body["data"]["documents"].as_array().expect("documents");
        let doc = docs
            .iter()
            .find(|d| d["title"] == title)
            .unwrap_or_else(|| panic!("{title} not listed: {body}"));
        assert_eq!(doc["size"], data.len() as u64, "listed size");
        doc["id"].as_str().expect("document id").to_owned()
    }

    /// `create_document`, then `upload_file` announcing `source` and
    /// sending `data`: the upload's seq and its final event.
    pub fn upload_as(&mut self, title: &str, source: UploadSource, data: &[u8]) -> (Seq, Event) {
        let (seq, event) = self.begin_upload(title, source);
        self.frame_size = None;
        let Event::UploadReady { frame_size, .. } = event else {
            return (seq, event);
        };
        self.frame_size = Some(frame_size);
        self.feed(data, frame_size);
        let (event, _) = self.wait_event(StdDuration::from_secs(20), |e| {
            matches!(
                e,
                Event::UploadFinished { seq: s, .. }
                | Event::UploadFailed { seq: s, .. } if *s == seq
            )
        });
        (seq, event)
    }

    /// `create_document` and `upload_file` announcing `source`: the
    /// upload's seq and its first event (`UploadReady` unless refused or
    /// finished at once).
    pub fn begin_upload(&mut self, title: &str, source: UploadSource) -> (Seq, Event) {
        let t = title.to_owned();
        let seq = self.send(move |s, c, b| s.create_document(c.now(), None, &t, b));
        let (status, body) = self.reply(seq);
        assert_eq!(status, Status::Ok, "create_document: {body}");
        let task = body["data"]["task_data"]["task_id"]
            .as_str()
            .expect("task id")
            .to_owned();

        let seq = self.send(move |s, c, b| s.upload_file(c.now(), &task, source, b));
        let (event, _) = self.wait_event(StdDuration::from_secs(10), |e| {
            matches!(
                e,
                Event::UploadReady { seq: s, .. }
                | Event::UploadFinished { seq: s, .. }
                | Event::UploadFailed { seq: s, .. } if *s == seq
            )
        });
        (seq, event)
    }

    /// Hand the file to the session and send the binary messages it cuts.
    fn feed(&mut self, data: &[u8], frame_size: u32) {
        let mut frame = Vec::with_capacity(frame_size as usize);
        let mut offset = 0;
        let mut sent_frames = 0usize;
        // After the last byte, one more empty write: it answers the empty
        // final message when the size is a multiple of the frame size.
        let mut finished = false;
        while !finished {
            let rest = &data[offset..];
            finished = rest.is_empty();
            let w = self
                .session
                .upload_write(self.clock.now(), rest)
                .expect("upload write");
            if w.message_start {
                frame.clear();
            }
            frame.extend_from_slice(&rest[..w.accepted]);
            offset += w.accepted;
            if w.message_end {
                assert!(frame.len() <= frame_size as usize);
                let link = self.link.as_mut().expect("connected");
                link.ws.send_binary(&frame).expect("ws send");
                link.flush(&self.clock);
                sent_frames += 1;
            }
        }
        let full = data.len() / frame_size as usize;
        assert_eq!(sent_frames, full + 1, "frames for {} bytes", data.len());
    }

    /// `get_document` then `download_file`: the chunks seen and the key.
    pub fn download(&mut self, document: &str) -> Download {
        let task = self.download_task(document);
        let seq = self.start_download(&task);
        self.finish_download(seq)
    }

    /// `get_document`: the download task id.
    pub fn download_task(&mut self, document: &str) -> String {
        let d = document.to_owned();
        let seq = self.send(move |s, c, b| s.get_document(c.now(), &d, b));
        let (status, body) = self.reply(seq);
        assert_eq!(status, Status::Ok, "get_document: {body}");
        body["data"]["task_data"]["task_id"]
            .as_str()
            .expect("task id")
            .to_owned()
    }

    /// `download_file {task_id}` with an empty ciphertext store.
    pub fn start_download(&mut self, task: &str) -> Seq {
        self.ciphertext.clear();
        let task = task.to_owned();
        self.send(move |s, c, b| s.download_file(c.now(), &task, b))
    }

    /// Follow download `seq` to its end.
    pub fn finish_download(&mut self, seq: Seq) -> Download {
        let mut started = None;
        let mut chunks = Vec::new();
        let (end, _) = self.wait_for(StdDuration::from_secs(30), |s| match s.event() {
            Some(Event::DownloadStarted {
                seq: s,
                file_size,
                total_chunks,
            }) if *s == seq => {
                started = Some((*file_size, *total_chunks));
                false
            }
            Some(Event::DownloadChunk { seq: s, index, len }) if *s == seq => {
                chunks.push((*index, *len));
                false
            }
            Some(Event::DownloadFinished { seq: s, .. } | Event::DownloadFailed { seq: s, .. }) => {
                *s == seq
            }
            _ => false,
        });
        let result = match end {
            Seen::Event {
                event: Event::DownloadFinished { key, .. },
                ..
            } => Ok(key),
            Seen::Event {
                event: Event::DownloadFailed { error, .. },
                ..
            } => Err(format!("{error:?}")),
            other => unreachable!("{other:?}"),
        };
        Download {
            started,
            chunks,
            key: result,
        }
    }

    /// Decrypt the stored ciphertext with `key` and the chunk hashes.
    pub fn decrypt(&self, key: &DownloadKey) -> Result<Vec<u8>, DecryptError> {
        let mut plain = self.ciphertext.clone();
        let mut decryptor = FileDecryptor::new(key, self.session.chunk_hashes())?;
        // Pieces of an odd size: chunk and piece boundaries must not matter.
        for piece in plain.chunks_mut(10_007) {
            decryptor.decrypt(piece)?;
        }
        let digest = decryptor.finish()?;
        let independent: [u8; 32] = <sha2::Sha256 as sha2::Digest>::digest(&plain).into();
        assert_eq!(digest, independent, "FileDecryptor's whole-file digest");
        Ok(plain)
    }
}

/// How a download went.
#[derive(Debug)]
pub struct Download {
    /// `(file_size, total_chunks)` from the header, if one came.
    pub started: Option<(u64, u32)>,
    /// `(index, ciphertext length)` of each chunk, in arrival order.
    pub chunks: Vec<(u32, u32)>,
    /// The key, or why the download failed.
    pub key: Result<DownloadKey, String>,
}

pub fn json(text: &str) -> serde_json::Value {
    serde_json::from_str(text).expect("answer is JSON")
}

/// RFC 6238 TOTP: HMAC-SHA-1 over the 30 s step counter, dynamic
/// truncation, six digits. `secret` is RFC 4648 base32.
pub fn totp(secret: &str, unix_secs: u64) -> String {
    let key = base32(secret);
    let mut mac = Hmac::<sha1::Sha1>::new_from_slice(&key).expect("HMAC takes any key length");
    mac.update(&(unix_secs / 30).to_be_bytes());
    let h = mac.finalize().into_bytes();
    let at = usize::from(h[19] & 0x0f);
    let bin = u32::from_be_bytes([h[at] & 0x7f, h[at + 1], h[at + 2], h[at + 3]]);
    format!("{:06}", bin % 1_000_000)
}

fn base32(secret: &str) -> Vec<u8> {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let (mut acc, mut bits, mut out) = (0u32, 0u32, Vec::new());
    for c in secret.bytes().filter(|&c| c != b'=') {
        let v = ALPHABET
            .iter()
            .position(|&a| a == c.to_ascii_uppercase())
            .expect("base32 secret") as u32;
        acc = (acc << 5) | v;
        bits += 5;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    out
}

#[test]
fn totp_matches_rfc6238_sha1_vector() {
    // RFC 6238 appendix B: secret "12345678901234567890", T = 59 s gives
    // 94287082 (8 digits); the six-digit code is its last six.
    let secret = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ";
    assert_eq!(totp(secret, 59), "287082");
    assert_eq!(totp(secret, 1_111_111_109), "081804");
}

/// A connection event as the session queued it, with its body as text.
enum Undressed<'e> {
    Event(Event, Option<String>),
    Data(&'e [u8]),
    Refused(Error),
}

fn undress(e: ConnectionEvent<'_>) -> Undressed<'_> {
    use ConnectionEvent as C;
    let text = |r: &Response<'_>| Some(String::from_utf8_lossy(r.root().raw()).into_owned());
    let (event, body) = match e {
        C::ServerInfo {
            seq,
            protocol_version,
            lockdown,
            response,
        } => (
            Event::ServerInfo {
                seq,
                protocol_version,
                lockdown,
            },
            text(&response),
        ),
        C::LoggedIn {
            expires_in,
            response,
        } => (Event::LoggedIn { expires_in }, text(&response)),
        C::Reply {
            seq,
            status,
            response,
        } => (Event::Reply { seq, status }, text(&response)),
        C::DownloadData { data, .. } => return Undressed::Data(data),
        C::BadMessage(e) => return Undressed::Refused(e),
        C::ListenerRegistered { status } => panic!("no opening sequence here ({status:?})"),
        C::ProtocolUnsupported { version } => (Event::ProtocolUnsupported { version }, None),
        C::TwoFactorRequired { method } => (Event::TwoFactorRequired { method }, None),
        C::LoginFailed(e) => (Event::LoginFailed(e), None),
        C::TokenRefreshed { expires_in } => (Event::TokenRefreshed { expires_in }, None),
        C::TokenRejected { relogin } => (Event::TokenRejected { relogin }, None),
        C::Lockdown { on } => (Event::Lockdown { on }, None),
        C::RequestFailed { seq, error } => (Event::RequestFailed { seq, error }, None),
        C::Desynchronized(d) => (Event::Desynchronized(d), None),
        C::UploadReady { seq, frame_size } => (Event::UploadReady { seq, frame_size }, None),
        C::UploadFinished { seq, size } => (Event::UploadFinished { seq, size }, None),
        C::UploadFailed { seq, error } => (Event::UploadFailed { seq, error }, None),
        C::DownloadStarted {
            seq,
            file_size,
            total_chunks,
        } => (
            Event::DownloadStarted {
                seq,
                file_size,
                total_chunks,
            },
            None,
        ),
        C::DownloadChunk { seq, index, len } => (Event::DownloadChunk { seq, index, len }, None),
        C::DownloadFinished { seq, key } => (Event::DownloadFinished { seq, key }, None),
        C::DownloadFailed { seq, error } => (Event::DownloadFailed { seq, error }, None),
    };
    Undressed::Event(event, body)
}
