//! A scripted CFMS server side for session tests: feed JSON, collect what
//! the session sends and the events it reports.
#![allow(dead_code)]

use naslink_core::cfms::{Buffers, Config, Event, MessageKind, Sent, Session};
use naslink_core::time::{Duration, Instant};
use serde_json::{Value, json};

pub const Q: usize = 8;

pub struct Harness {
    pub session: Session<'static, Q>,
    pub now: Instant,
    pub events: Vec<Event>,
    pub ciphertext: Vec<u8>,
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
        loop {
            let mut buf = vec![0u8; 4096];
            match self
                .session
                .poll_transmit(self.now, &mut buf)
                .expect("poll_transmit")
            {
                Some(t) => out.push((t.kind, buf[..t.len].to_vec())),
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
        while let Some(e) = self.session.poll_event() {
            self.events.push(e);
        }
    }

    /// Deliver a whole server message; returns the events it caused.
    pub fn recv(&mut self, kind: MessageKind, bytes: &[u8]) -> Vec<Event> {
        let before = self.events.len();
        let cipher = &mut self.ciphertext;
        self.session
            .handle_message(self.now, kind, bytes, &mut |c: &[u8]| {
                cipher.extend_from_slice(c)
            })
            .expect("message accepted");
        self.drain();
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
