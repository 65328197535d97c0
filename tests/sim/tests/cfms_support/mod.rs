//! A minimal CFMS client for the emulator's tests, written from the
//! specification with tokio-tungstenite, rustls and RustCrypto (not
//! naslink-core), so the tests check the emulator against an independent
//! implementation.

#![allow(dead_code)]

use std::sync::Arc;
use std::time::Duration;

use aes::Aes256;
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use cfb8::cipher::{AsyncStreamCipher, KeyIvInit};
use futures_util::{SinkExt, StreamExt};
use naslink_sim::cfms::{Config, Handle, Server};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::rustls::pki_types::{CertificateDer, ServerName};
use tokio_rustls::rustls::{ClientConfig, RootCertStore, crypto::ring};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

/// How long a test waits for any one message.
pub const DEADLINE: Duration = Duration::from_secs(10);

/// A byte stream under the WebSocket.
pub trait Stream: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Stream for T {}

/// What the server sent.
#[derive(Debug, Clone, PartialEq)]
pub enum Received {
    Text(String),
    Binary(Vec<u8>),
    /// A close frame with this code (or `None`: no code).
    Close(Option<u16>),
    /// The connection ended without a close frame.
    Gone,
}

/// A config with short delays, so tests stay quick.
pub fn quick(config: Config) -> Config {
    Config {
        bad_password_delay: Duration::from_millis(300),
        ..config
    }
}

pub async fn start(config: Config) -> Handle {
    Server::start(config).await.expect("emulator starts")
}

pub struct Client {
    ws: WebSocketStream<Box<dyn Stream>>,
    pub username: String,
    pub token: String,
}

impl Client {
    /// Connect over plain `ws://` to `handle`.
    pub async fn connect(handle: &Handle) -> Self {
        let tcp = TcpStream::connect(handle.addr()).await.expect("tcp");
        Self::over(Box::new(tcp), &handle.url()).await
    }

    /// Connect over `wss://`, trusting exactly `cert_der`.
    pub async fn connect_tls(handle: &Handle, cert_der: &[u8]) -> Result<Self, std::io::Error> {
        let mut roots = RootCertStore::empty();
        roots
            .add(CertificateDer::from(cert_der.to_vec()))
            .expect("certificate parses");
        let config = ClientConfig::builder_with_provider(Arc::new(ring::default_provider()))
            .with_safe_default_protocol_versions()
            .expect("protocol versions")
            .with_root_certificates(roots)
            .with_no_client_auth();
        let name = ServerName::try_from(handle.config().host.clone()).expect("server name");
        let tcp = TcpStream::connect(handle.addr()).await?;
        let tls = TlsConnector::from(Arc::new(config))
            .connect(name, tcp)
            .await?;
        Ok(Self::over(Box::new(tls), &handle.url()).await)
    }

    async fn over(stream: Box<dyn Stream>, url: &str) -> Self {
        // Download chunks are ~2.8 MB text messages.
        let config = WebSocketConfig::default().max_message_size(Some(64 << 20));
        let (ws, _) = tokio_tungstenite::client_async_with_config(url, stream, Some(config))
            .await
            .expect("websocket handshake");
        Self {
            ws,
            username: String::new(),
            token: String::new(),
        }
    }

    pub async fn send_text(&mut self, text: &str) {
        self.ws
            .send(Message::Text(text.into()))
            .await
            .expect("send text");
    }

    pub async fn send_binary(&mut self, bytes: &[u8]) {
        self.ws
            .send(Message::Binary(bytes.to_vec().into()))
            .await
            .expect("send binary");
    }

    pub async fn send_json(&mut self, value: &Value) {
        self.send_text(&value.to_string()).await;
    }

    /// Send `action` with this client's username and token.
    pub async fn send_action(&mut self, action: &str, data: Value) {
        let request = json!({"action": action, "data": data,
                             "username": self.username, "token": self.token});
        self.send_json(&request).await;
    }

    /// The next data message or the end of the connection.
    pub async fn recv(&mut self) -> Received {
        self.recv_within(DEADLINE).await.expect("a message in time")
    }

    /// Like [`recv`](Self::recv), `None` if nothing comes within `wait`.
    pub async fn recv_within(&mut self, wait: Duration) -> Option<Received> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let next = tokio::time::timeout_at(deadline, self.ws.next())
                .await
                .ok()?;
            return Some(match next {
                Some(Ok(Message::Text(t))) => Received::Text(t.to_string()),
                Some(Ok(Message::Binary(b))) => Received::Binary(b.to_vec()),
                Some(Ok(Message::Close(frame))) => Received::Close(frame.map(|f| f.code.into())),
                Some(Ok(_)) => continue,
                Some(Err(_)) | None => Received::Gone,
            });
        }
    }

    pub async fn recv_json(&mut self) -> Value {
        match self.recv().await {
            Received::Text(t) => serde_json::from_str(&t).expect("JSON text"),
            other => panic!("expected a JSON text message, got {other:?}"),
        }
    }

    pub async fn recv_text(&mut self) -> String {
        match self.recv().await {
            Received::Text(t) => t,
            other => panic!("expected a text message, got {other:?}"),
        }
    }

    /// Send `action` and read its answer.
    pub async fn call(&mut self, action: &str, data: Value) -> Value {
        self.send_action(action, data).await;
        self.recv_json().await
    }

    /// Log in and keep the token; panics unless the answer is 200.
    pub async fn login(&mut self, username: &str, password: &str) -> Value {
        let answer = self
            .call("login", json!({"username": username, "password": password}))
            .await;
        assert_eq!(answer["code"], 200, "login answer {answer}");
        self.username = username.to_owned();
        self.token = answer["data"]["token"].as_str().expect("token").to_owned();
        answer
    }

    /// Create a document with `content` in `folder` through the protocol
    /// (create_document, upload_file, binary frames of 8192) and answer the
    /// verdict.
    pub async fn upload(&mut self, title: &str, folder: Value, content: &[u8]) -> Value {
        let created = self
            .call(
                "create_document",
                json!({"title": title, "folder_id": folder}),
            )
            .await;
        assert_eq!(created["code"], 200, "create_document {created}");
        let task = created["data"]["task_data"]["task_id"].clone();
        self.upload_task(task, content).await
    }

    /// Run `upload_file` for `task` and answer the verdict (or `{"stop"}`).
    pub async fn upload_task(&mut self, task: Value, content: &[u8]) -> Value {
        self.send_action("upload_file", json!({"task_id": task}))
            .await;
        let waiting = self.recv_json().await;
        assert_eq!(waiting["message"], "waiting for file transfer");
        let sha = hex(&Sha256::digest(content));
        let info = json!({"action": "transfer_file",
                          "data": {"sha256": sha, "file_size": content.len()}});
        self.send_json(&info).await;
        match self.recv_text().await.as_str() {
            "ready" => {}
            "stop" => return json!("stop"),
            other => panic!("expected ready, got {other}"),
        }
        for frame in content.chunks(8192) {
            self.send_binary(frame).await;
        }
        if content.len().is_multiple_of(8192) {
            self.send_binary(&[]).await;
        }
        self.recv_json().await
    }

    /// `get_document` + `download_file`, decrypting with CFB8 and checking
    /// every chunk hash and the whole-file SHA-256.
    pub async fn download(&mut self, document_id: &str) -> Result<Vec<u8>, String> {
        let got = self
            .call("get_document", json!({"document_id": document_id}))
            .await;
        assert_eq!(got["code"], 200, "get_document {got}");
        let task = got["data"]["task_data"]["task_id"].clone();
        self.send_action("download_file", json!({"task_id": task}))
            .await;
        let header = self.recv_json().await;
        assert_eq!(header["action"], "transfer_file", "{header}");
        let size = header["data"]["file_size"].as_u64().expect("file_size") as usize;
        let total = header["data"]["total_chunks"].as_u64().expect("total") as usize;
        self.send_text("ready").await;
        if size == 0 {
            return Ok(Vec::new());
        }
        let (mut ciphertext, mut hashes, mut iv) = (Vec::new(), Vec::new(), Vec::new());
        for index in 0..total {
            let chunk = self.recv_json().await;
            assert_eq!(chunk["action"], "file_chunk");
            assert_eq!(chunk["data"]["index"], index);
            if index == 0 {
                iv = B64
                    .decode(chunk["data"]["iv"].as_str().expect("iv"))
                    .expect("iv b64");
            }
            let bytes = B64
                .decode(chunk["data"]["chunk"].as_str().expect("chunk"))
                .expect("chunk b64");
            hashes.push((ciphertext.len(), bytes.len(), chunk["data"]["hash"].clone()));
            ciphertext.extend_from_slice(&bytes);
        }
        let key = self.recv_json().await;
        assert_eq!(key["action"], "aes_key");
        let key = B64
            .decode(key["data"]["key"].as_str().expect("key"))
            .expect("key b64");
        let mut plain = ciphertext;
        cfb8::Decryptor::<Aes256>::new_from_slices(&key, &iv)
            .map_err(|e| format!("key/iv sizes: {e}"))?
            .decrypt(&mut plain);
        for (index, (start, len, hash)) in hashes.iter().enumerate() {
            let actual = hex(&Sha256::digest(&plain[*start..start + len]));
            if hash != &json!(actual) {
                return Err(format!("chunk {index} hash mismatch"));
            }
        }
        let whole = hex(&Sha256::digest(&plain));
        if header["data"]["sha256"] != json!(whole) {
            return Err("file sha256 mismatch".into());
        }
        Ok(plain)
    }
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
