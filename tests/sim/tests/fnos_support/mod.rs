//! A minimal fnOS client for the emulator's tests, written from the
//! specification with tokio-tungstenite and RustCrypto (not naslink-core),
//! so the tests check the emulator against an independent implementation.

#![allow(dead_code)]

use std::time::Duration;

use aes::Aes256;
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use cbc::cipher::{BlockDecryptMut, BlockEncryptMut, KeyIvInit, block_padding::Pkcs7};
use futures_util::{SinkExt, StreamExt};
use hmac::{Hmac, Mac};
use naslink_sim::fnos::{Config, KeySource, Server};
use rand::RngCore;
use rsa::pkcs8::DecodePublicKey;
use rsa::{Pkcs1v15Encrypt, RsaPublicKey};
use serde_json::{Value, json};
use sha2::Sha256;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

pub use naslink_sim::fnos::Handle;

/// How long a test waits for any one frame.
pub const FRAME_DEADLINE: Duration = Duration::from_secs(5);

/// A server with the committed test key (key generation is slow in debug builds).
pub async fn start(config: Config) -> Handle {
    Server::start(Config {
        key: KeySource::Fixture,
        ..config
    })
    .await
    .expect("server starts")
}

/// The default server: admin/admin.
pub async fn start_default() -> Handle {
    start(Config::default()).await
}

/// `base64(HMAC-SHA256(secret, text)) + text`.
pub fn sign(secret: &[u8], text: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("any key length");
    mac.update(text.as_bytes());
    format!("{}{text}", B64.encode(mac.finalize().into_bytes()))
}

/// The credentials a login hands out, kept for later connections.
#[derive(Debug, Clone)]
pub struct Credentials {
    pub secret: Vec<u8>,
    pub token: String,
    pub long_token: Option<String>,
    pub back_id: String,
}

pub struct Client {
    pub ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
    pub si: String,
    pub public_pem: String,
    pub secret: Option<Vec<u8>>,
    counter: u32,
}

impl Client {
    /// Connect and run `util.crypto.getRSAPub`.
    pub async fn connect(url: &str) -> Self {
        let (ws, _) = tokio_tungstenite::connect_async(url)
            .await
            .expect("upgrade accepted");
        let mut client = Self {
            ws,
            si: String::new(),
            public_pem: String::new(),
            secret: None,
            counter: 0,
        };
        let reqid = client.reqid();
        client
            .send(&format!(
                r#"{{"reqid":"{reqid}","req":"util.crypto.getRSAPub"}}"#
            ))
            .await;
        let answer = client.recv().await;
        assert_eq!(answer["result"], "succ", "{answer}");
        assert_eq!(answer["reqid"], reqid.as_str());
        client.si = answer["si"].as_str().expect("si is a string").to_owned();
        client.public_pem = answer["pub"].as_str().expect("pub is a string").to_owned();
        client
    }

    /// `hex8(seconds) + 16 zeros + hex4(counter)`.
    pub fn reqid(&mut self) -> String {
        self.counter += 1;
        format!("6915841c0000000000000000{:04x}", self.counter & 0xffff)
    }

    pub async fn send(&mut self, text: &str) {
        self.ws
            .send(Message::text(text.to_owned()))
            .await
            .expect("send");
    }

    /// The next text frame as JSON.
    pub async fn recv(&mut self) -> Value {
        let text = self.recv_text().await;
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
    }

    /// The next text frame as received.
    pub async fn recv_text(&mut self) -> String {
        loop {
            let message = tokio::time::timeout(FRAME_DEADLINE, self.ws.next())
                .await
                .expect("a frame before the deadline")
                .expect("connection open")
                .expect("frame readable");
            match message {
                Message::Text(text) => return text.as_str().to_owned(),
                Message::Ping(_) | Message::Pong(_) => continue,
                other => panic!("unexpected frame {other:?}"),
            }
        }
    }

    /// Whether no frame arrives within `wait`.
    pub async fn silent_for(&mut self, wait: Duration) -> bool {
        tokio::time::timeout(wait, self.ws.next()).await.is_err()
    }

    /// Send `inner` (a JSON object text) in an `encrypted` envelope with a
    /// fresh random key and IV; returns them for opening the `secret`.
    pub async fn send_encrypted(&mut self, inner: &str) -> ([u8; 32], [u8; 16]) {
        let mut key = [0u8; 32];
        let mut iv = [0u8; 16];
        rand::thread_rng().fill_bytes(&mut key);
        rand::thread_rng().fill_bytes(&mut iv);
        let public = RsaPublicKey::from_public_key_pem(&self.public_pem).expect("SPKI PEM");
        let wrapped = public
            .encrypt(&mut rand::thread_rng(), Pkcs1v15Encrypt, &key)
            .expect("RSA");
        let sealed = cbc::Encryptor::<Aes256>::new(&key.into(), &iv.into())
            .encrypt_padded_vec_mut::<Pkcs7>(inner.as_bytes());
        let envelope = json!({"req": "encrypted", "iv": B64.encode(iv),
                              "rsa": B64.encode(wrapped), "aes": B64.encode(sealed)});
        self.send(&envelope.to_string()).await;
        (key, iv)
    }

    /// The web UI's login plaintext, with `si` as sent.
    pub fn login_json(&mut self, user: &str, password: &str, si: &Value) -> String {
        let reqid = self.reqid();
        json!({"reqid": reqid, "user": user, "password": password, "deviceType": "Browser",
               "deviceName": "naslink-sim test", "stay": true, "req": "user.login", "si": si})
        .to_string()
    }

    /// Log in with the password; panics unless it succeeds.
    pub async fn login(&mut self, user: &str, password: &str) -> Credentials {
        let si = Value::String(self.si.clone());
        let inner = self.login_json(user, password, &si);
        let (key, iv) = self.send_encrypted(&inner).await;
        let answer = self.recv().await;
        assert_eq!(answer["result"], "succ", "{answer}");
        self.take_credentials(&answer, &key, &iv)
    }

    /// Open the `secret` of a successful login answer and remember S.
    pub fn take_credentials(
        &mut self,
        answer: &Value,
        key: &[u8; 32],
        iv: &[u8; 16],
    ) -> Credentials {
        let sealed = B64
            .decode(answer["secret"].as_str().expect("secret"))
            .expect("base64 secret");
        let secret = cbc::Decryptor::<Aes256>::new(key.into(), iv.into())
            .decrypt_padded_vec_mut::<Pkcs7>(&sealed)
            .expect("secret opens with the login's key and IV");
        self.secret = Some(secret.clone());
        Credentials {
            secret,
            token: answer["token"].as_str().expect("token").to_owned(),
            long_token: answer["longToken"].as_str().map(str::to_owned),
            back_id: answer["backId"].as_str().expect("backId").to_owned(),
        }
    }

    /// Send `req` with `params` signed with S; returns the reqid used.
    pub async fn request(&mut self, req: &str, params: Value) -> String {
        let reqid = self.reqid();
        let mut body = json!({"reqid": reqid});
        if let Value::Object(extra) = params {
            body.as_object_mut().expect("object").extend(extra);
        }
        body["req"] = json!(req);
        let secret = self.secret.clone().expect("logged in");
        self.send(&sign(&secret, &body.to_string())).await;
        reqid
    }

    /// Signed request, single answer.
    pub async fn call(&mut self, req: &str, params: Value) -> Value {
        let reqid = self.request(req, params).await;
        let answer = self.recv().await;
        assert_eq!(answer["reqid"], reqid.as_str(), "{answer}");
        answer
    }

    /// Signed request, every frame up to the final one (with `result` or `errno`).
    pub async fn call_frames(&mut self, req: &str, params: Value) -> Vec<Value> {
        let reqid = self.request(req, params).await;
        let mut frames = Vec::new();
        loop {
            let frame = self.recv().await;
            assert_eq!(frame["reqid"], reqid.as_str(), "{frame}");
            let last = frame.get("result").is_some() || frame.get("errno").is_some();
            frames.push(frame);
            if last {
                return frames;
            }
        }
    }
}
