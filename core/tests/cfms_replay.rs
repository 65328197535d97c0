//! Replays the recorded exchanges with real servers through the session:
//! every request the session writes for a recorded action equals the
//! recorded `>>` JSON, and every recorded answer is accepted.
//!
//! Lines the session cannot produce by design are skipped with their
//! answer: forged or missing tokens on a logged-in connection, requests
//! without `action` or `data`, and malformed JSON.

mod cfms_support;

use aes::Aes256;
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use cfb8::cipher::KeyIvInit;
use cfms_support::Harness;
use naslink_core::cfms::{Config, Event, FileDecryptor, MessageKind, UploadSource};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

fn lines(name: &str) -> Vec<Value> {
    let path = format!(
        "{}/../../shared/transcripts/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{path}: {e}"))
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// The file contents the recording client used, known by size.
fn content(size: u64) -> Vec<u8> {
    match size {
        10800 => b"Hello from the scratch CFMS client!\n".repeat(300),
        16384 => (0..16384).map(|i| (i % 256) as u8).collect(),
        5 => b"hello".to_vec(),
        0 => Vec::new(),
        other => panic!("unknown recorded file of {other} bytes"),
    }
}

fn s(v: &Value) -> &str {
    v.as_str().unwrap()
}

fn opt(v: &Value) -> Option<&str> {
    v.as_str()
}

fn unhex(h: &str) -> [u8; 32] {
    let mut out = [0u8; 32];
    for i in 0..32 {
        out[i] = u8::from_str_radix(&h[2 * i..2 * i + 2], 16).unwrap();
    }
    out
}

fn b64(data: &[u8]) -> String {
    let mut out = vec![0u8; data.len().div_ceil(3) * 4];
    let n = B64.encode_slice(data, &mut out).unwrap();
    out.truncate(n);
    String::from_utf8(out).unwrap()
}

struct Replay {
    h: Harness,
    protocol: u32,
    skip_answer: bool,
    upload: Vec<u8>,
    upload_pos: usize,
    download_plain: Vec<u8>,
    compared: usize,
}

impl Replay {
    fn new(protocol: u32) -> Self {
        let frame = if protocol >= 4 { 4096 } else { 8192 };
        let mut h = Harness::new(Config {
            upload_frame: frame,
            ..Config::default()
        });
        h.handshake(protocol);
        Replay {
            h,
            protocol,
            skip_answer: false,
            upload: Vec::new(),
            upload_pos: 0,
            download_plain: Vec::new(),
            compared: 0,
        }
    }

    /// Write the request for recorded `req` with the session's API.
    fn generate(&mut self, req: &Value, rest: &[Value]) -> Option<Value> {
        let action = s(&req["action"]);
        let data = req.get("data")?;
        let has_envelope = req.get("username").is_some();
        let logged_in = self.h.session.is_logged_in();
        if has_envelope {
            let token = s(&req["token"]);
            if !token.is_empty() && token != self.h.session.token() {
                return None; // forged or superseded token
            }
            if token.is_empty()
                && logged_in
                && !matches!(action, "login" | "set_passwd" | "server_info")
            {
                return None; // deliberately unauthenticated
            }
        } else if logged_in {
            return None;
        }
        let keys: Vec<&str> = data.as_object()?.keys().map(String::as_str).collect();
        let has = |want: &[&str]| {
            let mut k = keys.clone();
            k.sort();
            let mut w = want.to_vec();
            w.sort();
            k == w
        };
        let h = &mut self.h;
        let (_, v) = match action {
            "server_info" if s(&req["username"]).is_empty() => {
                h.req(|ss, n, b| ss.server_info(n, b))
            }
            "login" if has(&["username", "password"]) => {
                h.req(|ss, n, b| ss.login(n, s(&data["username"]), s(&data["password"]), b))
            }
            "login" if has(&["username", "password", "2fa_token"]) => {
                let code = s(&data["2fa_token"]);
                if h.events.last()
                    == Some(&Event::LoginFailed(
                        naslink_core::cfms::LoginError::InvalidTwoFactorCode,
                    ))
                    || matches!(h.events.last(), Some(Event::TwoFactorRequired { .. }))
                {
                    h.req(|ss, n, b| ss.submit_two_factor(n, code, b))
                } else {
                    h.req(|ss, n, b| {
                        ss.login_with_two_factor(
                            n,
                            s(&data["username"]),
                            s(&data["password"]),
                            code,
                            b,
                        )
                    })
                }
            }
            "login" => return None, // e.g. without password: the API always sends one
            "set_passwd" => h.req(|ss, n, b| {
                ss.set_passwd(
                    n,
                    s(&data["username"]),
                    s(&data["old_passwd"]),
                    s(&data["new_passwd"]),
                    b,
                )
            }),
            "register_listener" => h.req(|ss, n, b| ss.register_listener(n, b)),
            "refresh_token" => h.req(|ss, n, b| ss.refresh_token(n, b)),
            "lockdown" => {
                h.req(|ss, n, b| ss.set_lockdown(n, data["status"].as_bool().unwrap(), b))
            }
            "list_directory" if has(&["folder_id"]) && logged_in => {
                h.req(|ss, n, b| ss.list_directory(n, opt(&data["folder_id"]), b))
            }
            "create_directory" if has(&["parent_id", "name"]) => h.req(|ss, n, b| {
                ss.create_directory(n, opt(&data["parent_id"]), s(&data["name"]), None, b)
            }),
            "get_directory_info" if has(&["directory_id"]) => {
                h.req(|ss, n, b| ss.get_directory_info(n, s(&data["directory_id"]), b))
            }
            "create_document" if has(&["title", "folder_id"]) => h.req(|ss, n, b| {
                ss.create_document(n, opt(&data["folder_id"]), s(&data["title"]), b)
            }),
            "get_document_info" if has(&["document_id"]) && logged_in => {
                h.req(|ss, n, b| ss.get_document_info(n, s(&data["document_id"]), b))
            }
            "get_document" if has(&["document_id"]) && logged_in => {
                h.req(|ss, n, b| ss.get_document(n, s(&data["document_id"]), b))
            }
            "upload_file" => {
                // The header that follows tells size and hash.
                let header = rest
                    .iter()
                    .find(|l| l["dir"] == ">>" && l["json"]["action"] == "transfer_file")
                    .map(|l| &l["json"]["data"])
                    .unwrap();
                let size = header.get("file_size").and_then(Value::as_u64).unwrap_or(5);
                let sha256 = header.get("sha256").and_then(Value::as_str).map(unhex);
                self.upload = content(size);
                self.upload_pos = 0;
                let source = UploadSource { size, sha256 };
                h.req(|ss, n, b| ss.upload_file(n, s(&data["task_id"]), source, b))
            }
            "download_file" => h.req(|ss, n, b| ss.download_file(n, s(&data["task_id"]), b)),
            _ => {
                let raw = serde_json::to_vec(data).unwrap();
                h.req(|ss, n, b| ss.request(n, action, &raw, b))
            }
        };
        Some(v)
    }

    fn client_line(&mut self, line: &Value, rest: &[Value]) {
        if let Some(req) = line.get("json").filter(|j| j.get("action").is_some()) {
            if req["action"] == "transfer_file" {
                // The upload header comes from poll_transmit.
                let sent = self.h.transmit_json();
                if req["data"].get("file_size").is_some() {
                    assert_eq!(sent, vec![req.clone()], "{}", line["note"]);
                    self.compared += 1;
                }
                return;
            }
            match self.generate(req, rest) {
                Some(mine) => {
                    let mut expect = req.clone();
                    if req.get("username").is_none() {
                        // Recorded without an envelope: ours is empty.
                        expect["username"] = json!("");
                        expect["token"] = json!("");
                    }
                    assert_eq!(mine, expect, "{}", line["note"]);
                    self.compared += 1;
                }
                None => self.skip_answer = true,
            }
        } else if line.get("json").is_some() {
            self.skip_answer = true; // a request without action
        } else if let Some(len) = line.get("binary_len").and_then(Value::as_u64) {
            if len == 0 {
                // cfms-p5.jsonl logs three of the four 4096-byte frames of
                // its 16384-byte upload (its summary line says four): send
                // the unlogged full frames before the empty terminator.
                while self.upload_pos < self.upload.len() {
                    let w = self
                        .h
                        .session
                        .upload_write(self.h.now, &self.upload[self.upload_pos..])
                        .unwrap();
                    self.upload_pos += w.accepted;
                    assert!(
                        w.message_end && w.accepted == 4096,
                        "only full frames can be missing from the log"
                    );
                }
            }
            let mut frame = 0usize;
            loop {
                let input = &self.upload[self.upload_pos..];
                let w = self.h.session.upload_write(self.h.now, input).unwrap();
                self.upload_pos += w.accepted;
                frame += w.accepted;
                if w.message_end {
                    break;
                }
            }
            assert_eq!(frame as u64, len, "{}", line["note"]);
            self.compared += 1;
        } else if let Some(text) = line.get("text").and_then(Value::as_str) {
            if text.is_empty() {
                return;
            }
            let sent = self.h.transmit();
            if text == "ready" {
                assert_eq!(sent, vec![(MessageKind::Text, b"ready".to_vec())]);
                self.compared += 1;
            } else {
                // Bad JSON or a wrong ack: the session never writes those.
                self.skip_answer = line["json"].is_null() && !text.starts_with("not-ready");
            }
        }
    }

    fn server_line(&mut self, line: &Value, rest: &[Value]) {
        if std::mem::take(&mut self.skip_answer) {
            return;
        }
        if let Some(j) = line.get("json") {
            let mut j = j.clone();
            if j["action"] == "transfer_file" && j["data"].get("file_size").is_some() {
                self.download_plain = content(j["data"]["file_size"].as_u64().unwrap());
            }
            if j["action"] == "file_chunk" && s(&j["data"]["chunk"]).contains("...") {
                j["data"]["chunk"] = json!(self.rebuild_chunk(&j, rest));
            }
            self.h.recv_json(j.clone());
            if line["note"].as_str().is_some_and(|n| n.contains("aes_key"))
                || j["action"] == "aes_key"
            {
                self.check_download();
            }
        } else if let Some(text) = line.get("text").and_then(Value::as_str) {
            self.h.recv(MessageKind::Text, text.as_bytes());
            if text == "stop" {
                // The session fences with server_info; a real server answers it.
                let fence = self.h.transmit_json();
                assert_eq!(fence[0]["action"], "server_info");
                self.h.ok(json!({"server_name": "CFMS WebSocket Server", "version": "x", "protocol_version": self.protocol, "lockdown": false}));
            }
        } else if let Some(len) = line.get("binary_len").and_then(Value::as_u64) {
            let on = len == 38;
            let e = self.h.recv(
                MessageKind::Binary,
                format!("{{\"action\": \"lockdown\", \"status\": {on}}}").as_bytes(),
            );
            assert_eq!(e, vec![Event::Lockdown { on }]);
        }
    }

    /// The log truncates the ciphertext; rebuild it from the recorded key
    /// and IV and the known plaintext, and check it against the logged prefix.
    fn rebuild_chunk(&self, j: &Value, rest: &[Value]) -> String {
        let key_b64 = rest
            .iter()
            .find(|l| l["json"]["action"] == "aes_key")
            .map(|l| s(&l["json"]["data"]["key"]))
            .unwrap();
        let mut key = [0u8; 32];
        assert_eq!(B64.decode_slice(key_b64, &mut key).unwrap(), 32);
        let mut iv = [0u8; 16];
        assert_eq!(B64.decode_slice(s(&j["data"]["iv"]), &mut iv).unwrap(), 16);
        let mut c = self.download_plain.clone();
        cfb8::Encryptor::<Aes256>::new(&key.into(), &iv.into()).encrypt(&mut c);
        let full = b64(&c);
        let logged = s(&j["data"]["chunk"]);
        let prefix = &logged[..logged.find("...").unwrap()];
        assert!(
            full.starts_with(prefix),
            "our CFB8 differs from the server's"
        );
        full
    }

    fn check_download(&mut self) {
        let Some(Event::DownloadFinished { key, .. }) = self.h.events.last().copied() else {
            panic!("download not finished: {:?}", self.h.events.last())
        };
        let hashes = self.h.session.chunk_hashes().to_vec();
        let mut data = std::mem::take(&mut self.h.ciphertext);
        let mut d = FileDecryptor::new(&key, &hashes).unwrap();
        d.decrypt(&mut data).unwrap();
        let digest = d.finish().unwrap();
        assert_eq!(data, self.download_plain);
        assert_eq!(digest.to_vec(), Sha256::digest(&data).to_vec());
    }
}

fn replay(name: &str, protocol: u32) -> usize {
    let all = lines(name);
    let mut conns: Vec<String> = Vec::new();
    for l in &all {
        let c = l["conn"].as_str().unwrap_or("").to_string();
        if !conns.contains(&c) {
            conns.push(c);
        }
    }
    let mut compared = 0;
    for conn in conns {
        let mine: Vec<Value> = all
            .iter()
            .filter(|l| l["conn"].as_str().unwrap_or("") == conn)
            .cloned()
            .collect();
        let mut r = Replay::new(protocol);
        for (i, line) in mine.iter().enumerate() {
            match line["dir"].as_str().unwrap() {
                ">>" => r.client_line(line, &mine[i + 1..]),
                "<<" => r.server_line(line, &mine[i + 1..]),
                _ => {}
            }
        }
        compared += r.compared;
    }
    compared
}

#[test]
fn protocol_3_exchanges_replay_through_the_session() {
    assert!(replay("cfms-v3.jsonl", 3) > 40);
}

#[test]
fn protocol_3_edge_cases_replay_through_the_session() {
    assert!(replay("cfms-v3-edge.jsonl", 3) > 15);
}

#[test]
fn protocol_5_exchanges_replay_through_the_session() {
    assert!(replay("cfms-p5.jsonl", 5) > 40);
}

#[test]
fn protocol_5_two_factor_exchanges_replay_through_the_session() {
    assert!(replay("cfms-p5-2fa.jsonl", 5) > 8);
}
