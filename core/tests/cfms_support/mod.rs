//! A scripted CFMS server side for session tests: feed JSON, collect what
//! the session sends and the events it reports.
//!
//! Messages go in, and events and output come out, through the session's
//! `connection::Session` implementation (the path a `Connection` drives):
//! every scenario exercises it. Its events are turned back into the direct
//! API's `Event` (the bodies are kept in [`Harness::response`], download
//! data in [`Harness::ciphertext`]) so that the scenarios read the same.
#![allow(dead_code)]

use naslink_core::cfms::{
    Buffers, Config, ConnectionEvent, Event, MessageKind, Response, Sent, Session,
};
use naslink_core::connection::{self, Message};
use naslink_core::random;
use naslink_core::time::{Duration, Instant};
use naslink_core::ws;
use serde_json::{Value, json};

pub const Q: usize = 8;

pub struct Harness {
    pub session: Session<'static, Q>,
    pub now: Instant,
    pub events: Vec<Event>,
    pub ciphertext: Vec<u8>,
    /// The body of the last event that had one.
    pub body: Option<Vec<u8>>,
    /// Messages the session refused (`BadMessage`), in order.
    pub refused: Vec<naslink_core::cfms::Error>,
}

impl Harness {
    pub fn new(config: Config) -> Self {
        Self::with_buffers(config, 64 * 1024, 16)
    }

    pub fn with_buffers(config: Config, rx: usize, chunks: usize) -> Self {
        let rx = Box::leak(vec![0u8; rx].into_boxed_slice());
        let chunk_hashes = Box::leak(vec![[0u8; 32]; chunks].into_boxed_slice());
        Harness {
            session: Session::new(config, Buffers { rx, chunk_hashes }),
            now: Instant::from_secs(1000),
            events: Vec::new(),
            ciphertext: Vec::new(),
            body: None,
            refused: Vec::new(),
        }
    }

    pub fn advance(&mut self, d: Duration) {
        self.now += d;
    }

    /// Run a request method; return the JSON it wrote.
    pub fn req(
        &mut self,
        f: impl FnOnce(
            &mut Session<'static, Q>,
            Instant,
            &mut [u8],
        ) -> Result<Sent, naslink_core::cfms::Error>,
    ) -> (Sent, Value) {
        let mut buf = vec![0u8; 4096];
        let sent = f(&mut self.session, self.now, &mut buf).expect("request accepted");
        let v = serde_json::from_slice(&buf[..sent.len]).expect("request is JSON");
        (sent, v)
    }

    /// Everything the session wants to send now.
    pub fn transmit(&mut self) -> Vec<(MessageKind, Vec<u8>)> {
        let mut out = Vec::new();
        let mut rng = random::from_fn(|b: &mut [u8]| b.fill(7));
        loop {
            let mut buf = vec![0u8; 4096];
            let t =
                connection::Session::poll_transmit(&mut self.session, self.now, &mut rng, &mut buf)
                    .expect("poll_transmit");
            match t {
                Some(t) => {
                    let kind = match t.kind {
                        ws::MessageKind::Text => MessageKind::Text,
                        ws::MessageKind::Binary => MessageKind::Binary,
                    };
                    out.push((kind, buf[..t.len].to_vec()))
                }
                None => break,
            }
        }
        self.drain();
        out
    }

    pub fn transmit_json(&mut self) -> Vec<Value> {
        self.transmit()
            .into_iter()
            .map(|(k, b)| {
                assert_eq!(k, MessageKind::Text);
                serde_json::from_slice(&b)
                    .unwrap_or_else(|_| Value::String(String::from_utf8(b).unwrap()))
            })
            .collect()
    }

    pub fn drain(&mut self) {
        self.drain_with(None);
    }

    /// Take every event, the first with the message it is about.
    fn drain_with(&mut self, mut message: Option<Message<'_>>) {
        while let Some(e) = connection::Session::poll_event(&mut self.session, message.take()) {
            let (event, body, data) = match undress(e) {
                Ok(undressed) => undressed,
                Err(e) => {
                    self.refused.push(e);
                    continue;
                }
            };
            if body.is_some() {
                self.body = body;
            }
            self.ciphertext.extend(data);
            self.events.extend(event);
        }
    }

    /// The body of the last answer that had one.
    pub fn response(&self) -> Response<'_> {
        Response::parse(self.body.as_deref().expect("an answer")).expect("a response")
    }

    /// Deliver a whole server message; returns the events it caused. A
    /// refused message fails the test.
    pub fn recv(&mut self, kind: MessageKind, bytes: &[u8]) -> Vec<Event> {
        self.recv_pieces(kind, bytes, &[])
    }

    /// Deliver a message in pieces cut at `cuts` (as a streaming WebSocket
    /// does with a message larger than its buffer); returns the events. A
    /// refused message fails the test.
    pub fn recv_pieces(&mut self, kind: MessageKind, bytes: &[u8], cuts: &[usize]) -> Vec<Event> {
        let events = self.offer(kind, bytes, cuts);
        assert!(
            self.refused.is_empty(),
            "message refused: {:?}",
            self.refused
        );
        events
    }

    /// [`recv_pieces`](Self::recv_pieces) for a message the session may
    /// refuse (see [`Harness::refused`]).
    pub fn offer(&mut self, kind: MessageKind, bytes: &[u8], cuts: &[usize]) -> Vec<Event> {
        let before = self.events.len();
        let kind = match kind {
            MessageKind::Text => ws::MessageKind::Text,
            MessageKind::Binary => ws::MessageKind::Binary,
        };
        let mut bounds = vec![0];
        bounds.extend(cuts.iter().copied().filter(|&c| c > 0 && c < bytes.len()));
        bounds.push(bytes.len());
        bounds.sort_unstable();
        bounds.dedup();
        if bounds.len() == 1 {
            bounds.push(0);
        }
        for (i, w) in bounds.windows(2).enumerate() {
            let message = Message {
                kind,
                data: &bytes[w[0]..w[1]],
                first: i == 0,
                last: w[1] == bytes.len(),
            };
            if connection::Session::handle_message(&mut self.session, self.now, message) {
                self.drain_with(Some(message));
            }
        }
        self.events[before..].to_vec()
    }

    pub fn recv_json(&mut self, v: Value) -> Vec<Event> {
        self.recv(
            MessageKind::Text,
            serde_json::to_string(&v).unwrap().as_bytes(),
        )
    }

    pub fn ok(&mut self, data: Value) -> Vec<Event> {
        self.recv_json(
            json!({"code": 200, "data": data, "message": "ok", "timestamp": 1795304844.44}),
        )
    }

    /// server_info exchange announcing `protocol`.
    pub fn handshake(&mut self, protocol: u32) {
        self.req(|s, n, b| s.server_info(n, b));
        self.ok(json!({"server_name": "CFMS WebSocket Server", "version": "x", "protocol_version": protocol, "lockdown": false}));
    }

    /// handshake + login with a token valid for an hour.
    pub fn logged_in(protocol: u32) -> Self {
        Self::logged_in_with(Config::default(), protocol)
    }

    /// [`Harness::logged_in`] with a chosen configuration.
    pub fn logged_in_with(config: Config, protocol: u32) -> Self {
        let mut h = Harness::new(config);
        h.handshake(protocol);
        h.req(|s, n, b| s.login(n, "admin", "pw", b));
        h.recv_json(json!({"code": 200, "data": {"token": "tok.en.1", "exp": 1795308447.0, "nickname": "管理员",
            "permissions": ["list_users"], "groups": ["sysop"]}, "message": "Login successful", "timestamp": 1795304847.0}));
        h
    }
}

/// An event as the session queued it (if any), its body, its download data.
type Undressed = (Option<Event>, Option<Vec<u8>>, Vec<u8>);

/// A connection event as the session queued it (if it has one), its body,
/// and its download data; a refused message as its error.
fn undress(e: ConnectionEvent<'_>) -> Result<Undressed, naslink_core::cfms::Error> {
    use ConnectionEvent as C;
    let body = |r: &Response<'_>| Some(r.root().raw().to_vec());
    let (event, body, data) = match e {
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
            body(&response),
            vec![],
        ),
        C::LoggedIn {
            expires_in,
            response,
        } => (Event::LoggedIn { expires_in }, body(&response), vec![]),
        C::Reply {
            seq,
            status,
            response,
        } => (Event::Reply { seq, status }, body(&response), vec![]),
        C::DownloadData { data, .. } => return Ok((None, None, data.to_vec())),
        C::BadMessage(e) => return Err(e),
        C::ListenerRegistered { status } => panic!("no opening sequence here ({status:?})"),
        C::ProtocolUnsupported { version } => {
            (Event::ProtocolUnsupported { version }, None, vec![])
        }
        C::TwoFactorRequired { method } => (Event::TwoFactorRequired { method }, None, vec![]),
        C::LoginFailed(e) => (Event::LoginFailed(e), None, vec![]),
        C::TokenRefreshed { expires_in } => (Event::TokenRefreshed { expires_in }, None, vec![]),
        C::TokenRejected { relogin } => (Event::TokenRejected { relogin }, None, vec![]),
        C::Lockdown { on } => (Event::Lockdown { on }, None, vec![]),
        C::RequestFailed { seq, error } => (Event::RequestFailed { seq, error }, None, vec![]),
        C::Desynchronized(d) => (Event::Desynchronized(d), None, vec![]),
        C::UploadReady { seq, frame_size } => {
            (Event::UploadReady { seq, frame_size }, None, vec![])
        }
        C::UploadFinished { seq, size } => (Event::UploadFinished { seq, size }, None, vec![]),
        C::UploadFailed { seq, error } => (Event::UploadFailed { seq, error }, None, vec![]),
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
            vec![],
        ),
        C::DownloadChunk { seq, index, len } => {
            (Event::DownloadChunk { seq, index, len }, None, vec![])
        }
        C::DownloadFinished { seq, key } => (Event::DownloadFinished { seq, key }, None, vec![]),
        C::DownloadFailed { seq, error } => (Event::DownloadFailed { seq, error }, None, vec![]),
    };
    Ok((Some(event), body, data))
}
