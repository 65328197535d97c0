//! The baseline `naslink-bench` measures naslink against: an fnOS client
//! written by hand the way a Rust programmer would, with tokio-tungstenite,
//! `serde_json` values, RustCrypto (`rsa`, `aes`/`cbc`, `hmac`/`sha2`) and
//! `base64`, following `shared/protocol/fnos.md` and nothing of
//! naslink-core, so that it is an independent implementation.
//!
//! Shape: the password login runs on the socket first (`getRSAPub`, the
//! `encrypted` envelope with `user.login`, the secret S); then the socket
//! is split, a writer task forwards queued frames (feeding every frame
//! already queued before one flush, as `StreamExt::forward` does), and a
//! reader task hands each final reply to its waiting request through a
//! `reqid → oneshot` table behind a mutex. Requests are signed with
//! `base64(HMAC-SHA256(S, json)) + json`, the HMAC keyed once and cloned.
//!
//! It speaks only what the benchmark needs: no two-factor login, token
//! login, heartbeat or reconnection.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use aes::Aes256;
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use cbc::cipher::{BlockDecryptMut, BlockEncryptMut, KeyIvInit, block_padding::Pkcs7};
use futures_util::{SinkExt, StreamExt};
use hmac::{Hmac, Mac};
use rand::RngCore;
use rsa::pkcs8::DecodePublicKey;
use rsa::{Pkcs1v15Encrypt, RsaPublicKey};
use serde_json::{Value, json};
use sha2::Sha256;
use tokio::sync::{mpsc, oneshot};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// Any failure: this client reports, it does not classify.
pub type Error = Box<dyn std::error::Error + Send + Sync>;

type Socket = WebSocketStream<MaybeTlsStream<tokio::net::TcpStream>>;
type Pending = Arc<Mutex<HashMap<String, oneshot::Sender<Value>>>>;

/// A logged-in connection; clones share it.
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

struct Inner {
    /// HMAC-SHA256 keyed with S, cloned for each request.
    mac: Hmac<Sha256>,
    back_id: String,
    counter: AtomicU32,
    outbox: mpsc::UnboundedSender<Message>,
    pending: Pending,
}

/// `hex8(unix seconds) + backId + hex4(counter)`.
fn reqid(back_id: &str, counter: u32) -> String {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    format!("{:08x}{back_id}{:04x}", secs as u32, counter & 0xffff)
}

/// Send one text frame and wait for the next text frame (login only,
/// before anything else is in flight).
async fn exchange(ws: &mut Socket, frame: &Value) -> Result<Value, Error> {
    ws.send(Message::text(frame.to_string())).await?;
    loop {
        match ws.next().await.ok_or("connection closed during login")?? {
            Message::Text(text) => return Ok(serde_json::from_str(text.as_str())?),
            Message::Close(_) => return Err("connection closed during login".into()),
            _ => {}
        }
    }
}

fn succeeded(reply: &Value, step: &str) -> Result<(), Error> {
    if reply["result"] == "succ" {
        Ok(())
    } else {
        Err(format!("{step} failed: {reply}").into())
    }
}

/// The password login: returns S and the backId.
async fn login(ws: &mut Socket, user: &str, password: &str) -> Result<(Vec<u8>, String), Error> {
    let zeros = "0000000000000000";
    let reply = exchange(
        ws,
        &json!({"reqid": reqid(zeros, 1), "req": "util.crypto.getRSAPub"}),
    )
    .await?;
    succeeded(&reply, "util.crypto.getRSAPub")?;
    let pem = reply["pub"].as_str().ok_or("getRSAPub: no `pub`")?;
    let si = reply["si"].as_str().ok_or("getRSAPub: no `si` string")?;
    let public = RsaPublicKey::from_public_key_pem(pem)?;

    let mut rng = rand::rngs::OsRng;
    let mut key = [0u8; 32];
    let mut iv = [0u8; 16];
    rng.fill_bytes(&mut key);
    rng.fill_bytes(&mut iv);
    let plaintext = json!({
        "reqid": reqid(zeros, 2), "user": user, "password": password,
        "deviceType": "Browser", "deviceName": "naslink-bench handwritten",
        "stay": false, "req": "user.login", "si": si,
    })
    .to_string();
    let aes = cbc::Encryptor::<Aes256>::new(&key.into(), &iv.into())
        .encrypt_padded_vec_mut::<Pkcs7>(plaintext.as_bytes());
    let rsa = public.encrypt(&mut rng, Pkcs1v15Encrypt, &key)?;
    let envelope = json!({
        "req": "encrypted", "iv": B64.encode(iv), "rsa": B64.encode(rsa), "aes": B64.encode(aes),
    });
    let reply = exchange(ws, &envelope).await?;
    succeeded(&reply, "user.login")?;
    let sealed = B64.decode(reply["secret"].as_str().ok_or("user.login: no `secret`")?)?;
    let secret = cbc::Decryptor::<Aes256>::new(&key.into(), &iv.into())
        .decrypt_padded_vec_mut::<Pkcs7>(&sealed)
        .map_err(|_| "user.login: `secret` does not decrypt")?;
    let back_id = reply["backId"].as_str().ok_or("user.login: no `backId`")?;
    Ok((secret, back_id.to_owned()))
}

/// Forward queued frames to the socket, one flush per burst.
async fn write_frames(
    mut sink: futures_util::stream::SplitSink<Socket, Message>,
    mut outbox: mpsc::UnboundedReceiver<Message>,
) {
    while let Some(frame) = outbox.recv().await {
        if sink.feed(frame).await.is_err() {
            return;
        }
        while let Ok(frame) = outbox.try_recv() {
            if sink.feed(frame).await.is_err() {
                return;
            }
        }
        if sink.flush().await.is_err() {
            return;
        }
    }
}

/// Hand each final reply (one with `result` or `errno`) to its request.
/// Dropping the table's senders on close fails every waiting request.
async fn read_replies(mut stream: futures_util::stream::SplitStream<Socket>, pending: Pending) {
    while let Some(Ok(message)) = stream.next().await {
        let Message::Text(text) = message else {
            continue;
        };
        let Ok(reply) = serde_json::from_str::<Value>(text.as_str()) else {
            continue;
        };
        if reply.get("result").is_none() && reply.get("errno").is_none() {
            continue;
        }
        let Some(reqid) = reply["reqid"].as_str() else {
            continue;
        };
        let waiter = pending.lock().unwrap().remove(reqid);
        if let Some(waiter) = waiter {
            let _ = waiter.send(reply);
        }
    }
    pending.lock().unwrap().clear();
}

impl Client {
    /// Connect to `url` (`ws://HOST:PORT/websocket?type=main`) and log in.
    pub async fn connect(url: &str, user: &str, password: &str) -> Result<Self, Error> {
        let (mut ws, _) = tokio_tungstenite::connect_async(url).await?;
        let (secret, back_id) = login(&mut ws, user, password).await?;
        let mac = Hmac::<Sha256>::new_from_slice(&secret)?;
        let (sink, stream) = ws.split();
        let (outbox, queued) = mpsc::unbounded_channel();
        let pending = Pending::default();
        tokio::spawn(write_frames(sink, queued));
        tokio::spawn(read_replies(stream, pending.clone()));
        Ok(Self {
            inner: Arc::new(Inner {
                mac,
                back_id,
                // 1 and 2 went to getRSAPub and user.login.
                counter: AtomicU32::new(3),
                outbox,
                pending,
            }),
        })
    }

    /// Send the signed request `req` (no parameters) and return its
    /// successful reply.
    pub async fn request(&self, req: &str) -> Result<Value, Error> {
        let inner = &self.inner;
        let counter = inner.counter.fetch_add(1, Ordering::Relaxed);
        let reqid = reqid(&inner.back_id, counter);
        let json = json!({"reqid": reqid, "req": req}).to_string();
        let mut mac = inner.mac.clone();
        mac.update(json.as_bytes());
        let mut frame = B64.encode(mac.finalize().into_bytes());
        frame.push_str(&json);
        let (reply_to, reply) = oneshot::channel();
        inner
            .pending
            .lock()
            .unwrap()
            .insert(reqid.clone(), reply_to);
        if inner.outbox.send(Message::text(frame)).is_err() {
            inner.pending.lock().unwrap().remove(&reqid);
            return Err("connection closed".into());
        }
        let reply = reply.await.map_err(|_| "connection closed")?;
        succeeded(&reply, req)?;
        Ok(reply)
    }
}
