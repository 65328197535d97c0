//! A minimal protocol-13 CFMS client for the emulator's tests, written from
//! `shared/protocol/cfms-13.md` with tokio-tungstenite and hand-built frames
//! (not naslink-core), so the tests check the emulator independently.

#![allow(dead_code)]

use std::collections::VecDeque;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aes_gcm::aead::AeadInPlace;
use aes_gcm::{Aes256Gcm, KeyInit, Nonce, Tag};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use futures_util::{SinkExt, StreamExt};
use naslink_sim::cfms::{Config, Handle, Server};
use rand::RngCore;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use tokio::net::TcpStream;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

/// How long a test waits for any one frame.
pub const DEADLINE: Duration = Duration::from_secs(10);
/// How long a test waits to be sure nothing comes.
pub const QUIET: Duration = Duration::from_millis(700);
pub const PROCESS: u8 = 0;
pub const CONCLUSION: u8 = 1;

/// A protocol-13 server with admin/admin.
pub async fn start13() -> Handle {
    start(Config {
        protocol_version: 13,
        ..Config::default()
    })
    .await
}

pub async fn start(config: Config) -> Handle {
    Server::start(config).await.expect("emulator starts")
}

/// What came from the server.
#[derive(Debug, Clone, PartialEq)]
pub enum Got {
    /// A frame `(id, type, payload)`.
    Frame(u32, u8, Vec<u8>),
    /// A text message (never expected at 13).
    Text(String),
    /// A close frame with this code.
    Close(Option<u16>),
    /// The connection ended without a close frame.
    Gone,
}

pub fn frame(id: u32, kind: u8, payload: &[u8]) -> Vec<u8> {
    let mut bytes = id.to_be_bytes().to_vec();
    bytes.push(kind);
    bytes.extend_from_slice(payload);
    bytes
}

pub fn now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_secs_f64()
}

pub fn nonce() -> String {
    let mut bytes = [0u8; 16];
    rand::thread_rng().fill_bytes(&mut bytes);
    hex(&bytes)
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

pub fn sha256_hex(data: &[u8]) -> String {
    hex(&Sha256::digest(data))
}

/// `n` bytes of a fixed pseudo-random pattern.
pub fn pattern(n: usize) -> Vec<u8> {
    (0..n)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect()
}

pub struct Client {
    ws: WebSocketStream<TcpStream>,
    /// Frames received while waiting for another stream.
    parked: VecDeque<Got>,
    next_id: u32,
    pub username: String,
    pub token: String,
}

impl Client {
    /// Connect over plain `ws://`.
    pub async fn connect(handle: &Handle) -> Self {
        let tcp = TcpStream::connect(handle.addr()).await.expect("tcp");
        let config = WebSocketConfig::default().max_message_size(Some(64 << 20));
        let (ws, _) = tokio_tungstenite::client_async_with_config(handle.url(), tcp, Some(config))
            .await
            .expect("websocket handshake");
        Self {
            ws,
            parked: VecDeque::new(),
            next_id: 1,
            username: String::new(),
            token: String::new(),
        }
    }

    /// A fresh odd stream id.
    pub fn id(&mut self) -> u32 {
        let id = self.next_id;
        self.next_id += 2;
        id
    }

    pub async fn send_raw(&mut self, message: Message) {
        self.ws.send(message).await.expect("send");
    }

    pub async fn send(&mut self, id: u32, kind: u8, payload: &[u8]) {
        self.send_raw(Message::Binary(frame(id, kind, payload).into()))
            .await;
    }

    pub async fn send_json(&mut self, id: u32, value: &Value) {
        self.send(id, PROCESS, value.to_string().as_bytes()).await;
    }

    /// The envelope of `action` with this client's credentials (nonce and
    /// timestamp when it has a token).
    pub fn envelope(&self, action: &str, data: Value) -> Value {
        let mut request = json!({"action": action, "data": data});
        if !self.token.is_empty() {
            request["username"] = json!(self.username);
            request["token"] = json!(self.token);
            request["nonce"] = json!(nonce());
            request["timestamp"] = json!(now());
        }
        request
    }

    /// Send `action` on a new stream; answers the stream id.
    pub async fn start(&mut self, action: &str, data: Value) -> u32 {
        let id = self.id();
        let request = self.envelope(action, data);
        self.send_json(id, &request).await;
        id
    }

    /// Send `action` and wait for its CONCLUSION.
    pub async fn call(&mut self, action: &str, data: Value) -> Value {
        let id = self.start(action, data).await;
        self.conclusion(id).await
    }

    /// Log in and keep the token.
    pub async fn login(&mut self, username: &str, password: &str) -> Value {
        let answer = self
            .call("login", json!({"username": username, "password": password}))
            .await;
        if answer["code"] == 200 {
            self.username = username.to_owned();
            self.token = answer["data"]["token"].as_str().expect("token").to_owned();
        }
        answer
    }

    /// The next thing from the server within `wait`.
    pub async fn next_within(&mut self, wait: Duration) -> Option<Got> {
        if let Some(got) = self.parked.pop_front() {
            return Some(got);
        }
        self.read_within(wait).await
    }

    async fn read_within(&mut self, wait: Duration) -> Option<Got> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let next = tokio::time::timeout_at(deadline, self.ws.next())
                .await
                .ok()?;
            return Some(match next {
                Some(Ok(Message::Binary(b))) => {
                    let b = b.to_vec();
                    assert!(b.len() >= 5, "short frame from the server: {b:?}");
                    let id = u32::from_be_bytes([b[0], b[1], b[2], b[3]]);
                    Got::Frame(id, b[4], b[5..].to_vec())
                }
                Some(Ok(Message::Text(t))) => Got::Text(t.to_string()),
                Some(Ok(Message::Close(c))) => Got::Close(c.map(|c| u16::from(c.code))),
                Some(Ok(_)) => continue,
                Some(Err(_)) | None => Got::Gone,
            });
        }
    }

    /// The next frame on stream `id`, parking frames of other streams.
    pub async fn frame_on(&mut self, id: u32) -> (u8, Vec<u8>) {
        self.frame_on_within(id, DEADLINE)
            .await
            .unwrap_or_else(|| panic!("no frame on stream {id} in time"))
    }

    pub async fn frame_on_within(&mut self, id: u32, wait: Duration) -> Option<(u8, Vec<u8>)> {
        if let Some(i) = self
            .parked
            .iter()
            .position(|g| matches!(g, Got::Frame(i, _, _) if *i == id))
            && let Some(Got::Frame(_, kind, payload)) = self.parked.remove(i)
        {
            return Some((kind, payload));
        }
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            match self.read_within(left).await? {
                Got::Frame(i, kind, payload) if i == id => return Some((kind, payload)),
                // Not ours: keep it for later.
                got @ (Got::Frame(..) | Got::Text(_)) => self.parked.push_back(got),
                other => panic!("connection ended while waiting on stream {id}: {other:?}"),
            }
        }
    }

    /// A PROCESS frame's JSON on `id`.
    pub async fn process_json(&mut self, id: u32) -> Value {
        let (kind, payload) = self.frame_on(id).await;
        assert_eq!(kind, PROCESS, "expected PROCESS on {id}");
        serde_json::from_slice(&payload).expect("JSON")
    }

    /// The CONCLUSION envelope on `id`.
    pub async fn conclusion(&mut self, id: u32) -> Value {
        let (kind, payload) = self.frame_on(id).await;
        assert_eq!(
            kind,
            CONCLUSION,
            "expected CONCLUSION on {id}, got {:?}",
            String::from_utf8_lossy(&payload)
        );
        let answer: Value = serde_json::from_slice(&payload).expect("JSON");
        let keys: Vec<&String> = answer.as_object().expect("object").keys().collect();
        assert_eq!(keys, ["code", "data", "message", "timestamp"], "{answer}");
        answer
    }

    /// Nothing at all arrives within `wait`.
    pub async fn quiet(&mut self, wait: Duration) -> bool {
        self.parked.is_empty() && self.read_within(wait).await.is_none()
    }

    /// Nothing arrives on stream `id` within `wait`.
    pub async fn quiet_on(&mut self, id: u32, wait: Duration) -> bool {
        self.frame_on_within(id, wait).await.is_none()
    }

    /// Close the TCP connection abruptly.
    pub fn drop_connection(self) {}

    /// Upload `data` with task `task_id`; the verdict (`None` after `stop`).
    pub async fn upload(
        &mut self,
        task_id: &str,
        data: &[u8],
        max_chunk: Option<u64>,
    ) -> Option<Value> {
        let id = self.start("upload_file", json!({"task_id": task_id})).await;
        let waiting = self.process_json(id).await;
        assert_eq!(waiting["message"], "waiting for file transfer");
        let mut header = json!({"file_size": data.len(), "sha256": sha256_hex(data)});
        if let Some(m) = max_chunk {
            header["max_chunk_size"] = json!(m);
        }
        self.send_json(id, &json!({"action": "transfer_file", "data": header}))
            .await;
        let (kind, word) = self.frame_on(id).await;
        if kind == CONCLUSION {
            return Some(serde_json::from_slice(&word).expect("JSON"));
        }
        let word = String::from_utf8(word).expect("ASCII");
        if word == "stop" {
            return None;
        }
        let chunk: usize = word
            .strip_prefix("ready ")
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("expected `ready C`, got {word:?}"));
        for piece in data.chunks(chunk) {
            self.send(id, PROCESS, piece).await;
        }
        if data.len().is_multiple_of(chunk) {
            self.send(id, PROCESS, b"").await;
        }
        Some(self.conclusion(id).await)
    }

    /// `create_document` in the root and upload `data`: the document id.
    pub async fn put(&mut self, title: &str, data: &[u8]) -> String {
        let created = self
            .call("create_document", json!({"title": title, "folder_id": "/"}))
            .await;
        assert_eq!(created["code"], 200, "{created}");
        let task = created["data"]["task_data"]["task_id"]
            .as_str()
            .expect("task");
        let verdict = self.upload(task, data, None).await;
        match verdict {
            None => assert!(data.is_empty()),
            Some(v) => assert_eq!(v["code"], 200, "{v}"),
        }
        created["data"]["document_id"]
            .as_str()
            .expect("id")
            .to_owned()
    }

    /// `get_document`: a download task id.
    pub async fn download_task(&mut self, document: &str) -> String {
        let answer = self
            .call("get_document", json!({"document_id": document}))
            .await;
        assert_eq!(answer["code"], 200, "{answer}");
        answer["data"]["task_data"]["task_id"]
            .as_str()
            .expect("task")
            .to_owned()
    }

    /// Start `download_file` and read the header: `(stream id, header data)`.
    pub async fn download_start(&mut self, task: &str, offset: Option<u64>) -> (u32, Value) {
        let mut data = json!({"task_id": task});
        if let Some(o) = offset {
            data["offset"] = json!(o);
        }
        let id = self.start("download_file", data).await;
        let header = self.process_json(id).await;
        assert_eq!(header["action"], "transfer_file", "{header}");
        self.send(id, PROCESS, b"ready").await;
        (id, header["data"].clone())
    }

    /// Read `file_chunk`s on `id` until `aes_key`: the chunks and the key.
    pub async fn download_rest(&mut self, id: u32) -> (Vec<Chunk>, Option<[u8; 32]>) {
        let mut chunks = Vec::new();
        loop {
            let message = self.process_json(id).await;
            match message["action"].as_str() {
                Some("file_chunk") => chunks.push(Chunk::from(&message["data"])),
                Some("aes_key") => {
                    let key = message["data"]["key"]
                        .as_str()
                        .map(|k| B64.decode(k).expect("b64").try_into().expect("32 bytes"));
                    return (chunks, key);
                }
                _ => panic!("unexpected {message}"),
            }
        }
    }

    /// Download document `document` whole and decrypt it.
    pub async fn get(&mut self, document: &str) -> Vec<u8> {
        let task = self.download_task(document).await;
        let (id, header) = self.download_start(&task, None).await;
        let size = header["file_size"].as_u64().expect("size") as usize;
        if size == 0 {
            assert!(
                self.quiet_on(id, QUIET).await,
                "nothing follows an empty download"
            );
            return Vec::new();
        }
        let (chunks, key) = self.download_rest(id).await;
        let plain = decrypt_all(&chunks, &key.expect("key"));
        assert_eq!(plain.len(), size);
        assert!(
            self.quiet_on(id, Duration::from_millis(300)).await,
            "no CONCLUSION after aes_key"
        );
        plain
    }
}

/// One `file_chunk`.
#[derive(Debug, Clone)]
pub struct Chunk {
    pub index: u32,
    pub cipher: Vec<u8>,
    pub tag: Vec<u8>,
    pub prefix: Vec<u8>,
}

impl From<&Value> for Chunk {
    fn from(data: &Value) -> Self {
        let b = |k: &str| B64.decode(data[k].as_str().expect(k)).expect("b64");
        Self {
            index: data["index"].as_u64().expect("index") as u32,
            cipher: b("chunk"),
            tag: b("tag"),
            prefix: b("prefix"),
        }
    }
}

impl Chunk {
    /// AES-256-GCM with nonce `prefix ‖ index (u32 BE)`; `None` if the tag
    /// does not verify.
    pub fn decrypt(&self, key: &[u8; 32]) -> Option<Vec<u8>> {
        assert_eq!(self.prefix.len(), 8);
        assert_eq!(self.tag.len(), 16);
        let mut nonce = self.prefix.clone();
        nonce.extend_from_slice(&self.index.to_be_bytes());
        let mut plain = self.cipher.clone();
        Aes256Gcm::new(key.into())
            .decrypt_in_place_detached(
                Nonce::from_slice(&nonce),
                b"",
                &mut plain,
                Tag::from_slice(&self.tag),
            )
            .ok()?;
        Some(plain)
    }
}

/// Decrypt contiguous chunks from index 0.
pub fn decrypt_all(chunks: &[Chunk], key: &[u8; 32]) -> Vec<u8> {
    let mut plain = Vec::new();
    for (i, chunk) in chunks.iter().enumerate() {
        assert_eq!(chunk.index as usize, i, "contiguous indices");
        plain.extend(chunk.decrypt(key).expect("tag verifies"));
    }
    plain
}
