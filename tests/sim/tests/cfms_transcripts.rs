//! Fidelity check: replay the client side of every recorded exchange with the
//! real CFMS server (`shared/transcripts/cfms-*.jsonl`) against the emulator
//! and compare every answer with the recording.
//!
//! Compared exactly: codes, messages, plain-text answers (`ready`, `stop`),
//! integers, booleans, nulls, key sets and stable strings. Compared by type:
//! floats (times). Volatile strings (tokens, ids, IVs, keys) are learnt: the
//! first live value seen for a recorded one is remembered, later occurrences
//! must agree with it, and client messages are rewritten to use it. Binary
//! pushes are compared by length and recorded head. Download chunks are
//! compared by base64 length (the recording truncated them) and then
//! decrypted with CFB8 and checked against the chunk hashes and file SHA-256.
//!
//! The recording kept only the first 32 bytes of each uploaded frame; upload
//! payloads are rebuilt from the patterns the recording client used and
//! chosen by the declared SHA-256 (or the recorded heads); the server's
//! verdict, which quotes the SHA-256 it computed, checks the rest.

mod cfms_support;

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Duration;

use aes::Aes256;
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use cfb8::cipher::{AsyncStreamCipher, KeyIvInit};
use cfms_support::{Client, Received, hex, start};
use naslink_sim::cfms::{Clock, Config, UserSpec};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

fn transcripts() -> PathBuf {
    PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../../shared/transcripts"
    ))
}

/// One recorded line.
struct Line {
    number: usize,
    t: f64,
    conn: String,
    dir: String,
    note: String,
    json: Option<Value>,
    text: Option<String>,
    binary_len: Option<usize>,
    binary_head: Option<Vec<u8>>,
}

fn unhex(text: &str) -> Vec<u8> {
    (0..text.len() / 2)
        .filter_map(|i| u8::from_str_radix(&text[2 * i..2 * i + 2], 16).ok())
        .collect()
}

fn read(name: &str) -> Vec<Line> {
    let path = transcripts().join(name);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| {
            let v: Value =
                serde_json::from_str(l).unwrap_or_else(|e| panic!("{name}:{}: {e}", i + 1));
            Line {
                number: i + 1,
                t: v["t"].as_f64().expect("t"),
                conn: v["conn"].as_str().unwrap_or("main").to_owned(),
                dir: v["dir"].as_str().expect("dir").to_owned(),
                note: v["note"].as_str().unwrap_or_default().to_owned(),
                json: v.get("json").cloned(),
                text: v["text"].as_str().map(str::to_owned),
                binary_len: v["binary_len"].as_u64().map(|n| n as usize),
                binary_head: v["binary_head_hex"].as_str().map(unhex),
            }
        })
        .collect()
}

/// The situation each recording was made in.
fn scenario(name: &str, lines: &[Line]) -> Config {
    let expired_admin = |password: &str| {
        let mut admin = UserSpec::admin(password);
        admin.password_expired = true;
        vec![admin]
    };
    let base = Config {
        clock: Clock::manual(lines[0].t),
        bad_password_delay: Duration::from_millis(50),
        ..Config::default()
    };
    match name {
        // Fresh servers: the initial admin password is expired.
        "cfms-v3.jsonl" => Config {
            users: expired_admin("1zjs:{>D-x/StGW]"),
            ..base
        },
        "cfms-v3-edge.jsonl" => Config {
            users: expired_admin("[i=D^>+9(:M+^,?]"),
            ..base
        },
        "cfms-p5.jsonl" => Config {
            protocol_version: 5,
            users: expired_admin("i4WM?Jf0Y4*[sLTc"),
            ..base
        },
        // Recorded after cfms-p5.jsonl changed the password; setup_2fa's
        // secret and backup codes are taken from the recording.
        "cfms-p5-2fa.jsonl" => {
            let setup = lines
                .iter()
                .filter_map(|l| l.json.as_ref())
                .find(|j| j["data"]["provisioning_uri"].is_string())
                .expect("a setup_2fa answer");
            let codes = setup["data"]["backup_codes"].as_array().expect("codes");
            Config {
                protocol_version: 5,
                users: vec![UserSpec::admin("NewAdminPass-123")],
                setup_totp_secret: setup["data"]["secret"].as_str().map(str::to_owned),
                setup_backup_codes: Some(
                    codes
                        .iter()
                        .filter_map(|c| c.as_str().map(str::to_owned))
                        .collect(),
                ),
                ..base
            }
        }
        other => panic!("no scenario for transcript {other}"),
    }
}

/// Payload patterns the recording client uploaded.
fn candidates(len: usize) -> Vec<Vec<u8>> {
    let line = b"Hello from the scratch CFMS client!\n";
    vec![
        b"hello".iter().copied().cycle().take(len).collect(),
        line.iter().copied().cycle().take(len).collect(),
        (0..=255u8).cycle().take(len).collect(),
    ]
}

/// A download in progress: live header data, (ciphertext, hash) per chunk, IV.
type Download = (Value, Vec<(Vec<u8>, String)>, Vec<u8>);

/// Per-connection replay state.
struct Conn {
    client: Client,
    /// Recorded upload frames not sent yet (length, head).
    frames: Vec<(usize, Option<Vec<u8>>)>,
    /// Declared upload header (sha256, size), until the first frame.
    declared: Option<(Value, usize)>,
    /// Live download header and chunks collected so far.
    download: Option<Download>,
}

struct Replay {
    name: &'static str,
    ids: HashMap<String, String>,
}

impl Replay {
    fn fail(&self, line: &Line, why: String) -> ! {
        panic!("{}:{} ({}): {why}", self.name, line.number, line.note)
    }

    /// Rewrite recorded volatile strings to their live values.
    fn substitute(&self, value: &Value) -> Value {
        match value {
            Value::String(s) => json!(self.ids.get(s).unwrap_or(s)),
            Value::Array(a) => Value::Array(a.iter().map(|v| self.substitute(v)).collect()),
            Value::Object(o) => Value::Object(
                o.iter()
                    .map(|(k, v)| (k.clone(), self.substitute(v)))
                    .collect(),
            ),
            other => other.clone(),
        }
    }

    fn compare(&mut self, path: &str, rec: &Value, live: &Value) -> Result<(), String> {
        let key = path.rsplit('.').next().unwrap_or_default();
        match (rec, live) {
            (Value::Object(r), Value::Object(l)) => {
                let mut rk: Vec<&String> = r.keys().collect();
                let mut lk: Vec<&String> = l.keys().collect();
                rk.sort();
                lk.sort();
                if rk != lk {
                    return Err(format!("{path}: keys {rk:?} recorded, {lk:?} live"));
                }
                for (k, v) in r {
                    self.compare(&format!("{path}.{k}"), v, &l[k])?;
                }
                Ok(())
            }
            (Value::Array(r), Value::Array(l)) if key == "permissions" || key == "groups" => {
                let mut r: Vec<String> = r.iter().map(Value::to_string).collect();
                let mut l: Vec<String> = l.iter().map(Value::to_string).collect();
                r.sort();
                l.sort();
                (r == l)
                    .then_some(())
                    .ok_or(format!("{path}: {r:?} recorded, {l:?} live"))
            }
            (Value::Array(r), Value::Array(l)) => {
                if r.len() != l.len() {
                    return Err(format!(
                        "{path}: {} items recorded, {} live",
                        r.len(),
                        l.len()
                    ));
                }
                for (i, (rv, lv)) in r.iter().zip(l).enumerate() {
                    self.compare(&format!("{path}[{i}]"), rv, lv)?;
                }
                Ok(())
            }
            (Value::String(r), Value::String(l)) => self.compare_str(path, key, r, l),
            (Value::Number(r), Value::Number(_)) if r.is_f64() => Ok(()),
            _ if rec == live => Ok(()),
            _ => Err(format!("{path}: {rec} recorded, {live} live")),
        }
    }

    fn compare_str(&mut self, path: &str, key: &str, rec: &str, live: &str) -> Result<(), String> {
        if key == "chunk" {
            // Recorded as "<head>...(N b64 chars)" when long.
            let expected = match rec.rsplit_once("...(") {
                Some((_, tail)) => tail.trim_end_matches(" b64 chars)").parse().unwrap_or(0),
                None => rec.len(),
            };
            return (live.len() == expected).then_some(()).ok_or(format!(
                "{path}: {expected} b64 chars recorded, {} live",
                live.len()
            ));
        }
        if let Some(known) = self.ids.get(rec) {
            return (known == live).then_some(()).ok_or(format!(
                "{path}: expected the live value {known}, got {live}"
            ));
        }
        if rec == live {
            return Ok(());
        }
        let volatile = matches!(
            key,
            "token"
                | "id"
                | "task_id"
                | "document_id"
                | "directory_id"
                | "parent_id"
                | "iv"
                | "key"
        );
        if volatile {
            self.ids.insert(rec.to_owned(), live.to_owned());
            return Ok(());
        }
        Err(format!("{path}: {rec:?} recorded, {live:?} live"))
    }
}

async fn run(name: &'static str) {
    let lines = read(name);
    let config = scenario(name, &lines);
    let clock = config.clock.clone();
    let server = start(config).await;
    let mut replay = Replay {
        name,
        ids: HashMap::new(),
    };
    let mut conns: HashMap<String, Conn> = HashMap::new();
    for line in &lines {
        if !conns.contains_key(&line.conn) {
            let conn = Conn {
                client: Client::connect(&server).await,
                frames: Vec::new(),
                declared: None,
                download: None,
            };
            conns.insert(line.conn.clone(), conn);
        }
        let conn = conns.get_mut(&line.conn).expect("inserted above");
        let summary = (line.dir == "--")
            .then(|| sent_summary(&line.note))
            .flatten();
        if line.binary_len.is_none() && !conn.frames.is_empty() {
            flush_upload(&replay, conn, line, summary).await;
        }
        match line.dir.as_str() {
            ">>" => {
                clock.set(line.t);
                send(&replay, conn, line).await;
            }
            "<<" => receive(&mut replay, conn, line).await,
            _ => note(&replay, conn, line).await,
        }
    }
    // Nothing unrecorded may be left on any connection.
    for (name, conn) in &mut conns {
        match conn.client.recv_within(Duration::from_millis(200)).await {
            None | Some(Received::Gone) | Some(Received::Close(_)) => {}
            Some(extra) => panic!(
                "{}: connection {name} got unrecorded {extra:?}",
                replay.name
            ),
        }
    }
    server.shutdown().await;
}

async fn send(replay: &Replay, conn: &mut Conn, line: &Line) {
    if let Some(json) = &line.json {
        let json = replay.substitute(json);
        if json["action"] == "transfer_file" {
            let size = json["data"]["file_size"].as_u64().unwrap_or(0) as usize;
            conn.declared = Some((json["data"]["sha256"].clone(), size));
        }
        conn.client.send_json(&json).await;
    } else if let Some(len) = line.binary_len {
        // Held back until the client's summary note (or the next line), which
        // may show that the recording lost a frame line.
        conn.frames.push((len, line.binary_head.clone()));
    } else if let Some(text) = &line.text {
        conn.client.send_text(text).await;
    }
}

/// `(frames, frame size, total)` from a note like
/// "sent 4 binary chunks of <= 4096 bytes, total 16384".
fn sent_summary(note: &str) -> Option<(usize, usize, usize)> {
    if !note.starts_with("sent ") {
        return None;
    }
    let numbers: Vec<usize> = note
        .split(|c: char| !c.is_ascii_digit())
        .filter_map(|w| w.parse().ok())
        .collect();
    match numbers[..] {
        [n, size, total] => Some((n, size, total)),
        _ => None,
    }
}

/// Send the held-back upload frames, rebuilt from the payload pattern.
async fn flush_upload(
    replay: &Replay,
    conn: &mut Conn,
    line: &Line,
    summary: Option<(usize, usize, usize)>,
) {
    let frames = std::mem::take(&mut conn.frames);
    let Some((sha, size)) = conn.declared.take() else {
        replay.fail(line, "binary frames without an upload header".into());
    };
    let all = candidates(size);
    let first_head = frames.first().and_then(|(_, h)| h.clone());
    let by_sha = all.iter().find(|c| json!(hex(&Sha256::digest(c))) == sha);
    let by_head = all
        .iter()
        .find(|c| first_head.as_ref().is_some_and(|h| c.starts_with(h)));
    let payload = by_sha.or(by_head).unwrap_or(&all[0]).clone();
    let mut lens: Vec<usize> = frames.iter().map(|(len, _)| *len).collect();
    if let Some((n, frame, total)) = summary
        && lens.iter().sum::<usize>() != total
    {
        // cfms-p5.jsonl logs 3 frames of 4096 + the empty terminator but
        // its summary (and the server's 200) say 4 frames, 16384 bytes:
        // a frame line was lost. Send what the client sent.
        lens = payload.chunks(frame).map(<[u8]>::len).collect();
        if total.is_multiple_of(frame) {
            lens.push(0);
        }
        let non_empty = lens.iter().filter(|&&l| l > 0).count();
        if total != payload.len() || non_empty != n {
            replay.fail(
                line,
                format!("summary {n} frames / {total} bytes unexplained"),
            );
        }
    }
    let mut sent = 0;
    for (i, len) in lens.into_iter().enumerate() {
        let Some(bytes) = payload.get(sent..sent + len) else {
            replay.fail(
                line,
                format!("frame beyond the {}-byte payload", payload.len()),
            );
        };
        if let Some(Some(head)) = frames.get(i).map(|(_, h)| h)
            && !bytes.starts_with(head)
        {
            replay.fail(
                line,
                format!("rebuilt frame {i} does not match the recorded head"),
            );
        }
        sent += len;
        conn.client.send_binary(bytes).await;
    }
}

async fn receive(replay: &mut Replay, conn: &mut Conn, line: &Line) {
    let received = conn.client.recv().await;
    if let Some(len) = line.binary_len {
        let Received::Binary(bytes) = received else {
            replay.fail(line, format!("expected a binary frame, got {received:?}"));
        };
        let head = line.binary_head.clone().unwrap_or_default();
        if bytes.len() != len || !bytes.starts_with(&head) {
            replay.fail(
                line,
                format!("binary {:?} differs", String::from_utf8_lossy(&bytes)),
            );
        }
        return;
    }
    let Received::Text(text) = received else {
        replay.fail(line, format!("expected a text message, got {received:?}"));
    };
    let Some(recorded) = &line.json else {
        if Some(&text) != line.text.as_ref() {
            replay.fail(
                line,
                format!("text {text:?} live, {:?} recorded", line.text),
            );
        }
        return;
    };
    let live: Value = serde_json::from_str(&text)
        .unwrap_or_else(|e| replay.fail(line, format!("live answer is not JSON: {e}")));
    if let Err(why) = replay.compare("$", recorded, &live) {
        replay.fail(line, why);
    }
    track_download(replay, conn, line, &live);
}

/// Collect a download and, at `aes_key`, decrypt and verify it.
fn track_download(replay: &Replay, conn: &mut Conn, line: &Line, live: &Value) {
    match live["action"].as_str() {
        Some("transfer_file") if live["data"]["chunk_size"].is_u64() => {
            conn.download = Some((live["data"].clone(), Vec::new(), Vec::new()));
        }
        Some("file_chunk") => {
            let Some((_, chunks, iv)) = conn.download.as_mut() else {
                replay.fail(line, "file_chunk without a download header".into());
            };
            let data = &live["data"];
            if let Some(text) = data["iv"].as_str() {
                *iv = B64.decode(text).unwrap_or_default();
            }
            let bytes = B64.decode(data["chunk"].as_str().unwrap_or_default());
            let bytes = bytes.unwrap_or_else(|e| replay.fail(line, format!("chunk base64: {e}")));
            chunks.push((bytes, data["hash"].as_str().unwrap_or_default().to_owned()));
        }
        Some("aes_key") => {
            let Some((header, chunks, iv)) = conn.download.take() else {
                replay.fail(line, "aes_key without a download".into());
            };
            let key = B64.decode(live["data"]["key"].as_str().unwrap_or_default());
            let key = key.unwrap_or_else(|e| replay.fail(line, format!("key base64: {e}")));
            let decryptor = match cfb8::Decryptor::<Aes256>::new_from_slices(&key, &iv) {
                Ok(d) => d,
                Err(e) => replay.fail(
                    line,
                    format!("key {} / iv {} bytes: {e}", key.len(), iv.len()),
                ),
            };
            // One CFB8 stream across all chunks.
            let mut plain: Vec<u8> = chunks.iter().flat_map(|(c, _)| c.iter().copied()).collect();
            decryptor.decrypt(&mut plain);
            let mut start = 0;
            for (i, (cipher, hash)) in chunks.iter().enumerate() {
                let piece = &plain[start..start + cipher.len()];
                if hex(&Sha256::digest(piece)) != *hash {
                    replay.fail(line, format!("chunk {i} does not decrypt to its hash"));
                }
                start += cipher.len();
            }
            if header["sha256"] != json!(hex(&Sha256::digest(&plain))) {
                replay.fail(
                    line,
                    "download does not decrypt to the announced SHA-256".into(),
                );
            }
        }
        _ => {}
    }
}

async fn note(replay: &Replay, conn: &mut Conn, line: &Line) {
    if line.note.contains("ConnectionClosedOK: received 1000") {
        let received = conn.client.recv().await;
        if received != Received::Close(Some(1000)) {
            replay.fail(line, format!("expected close 1000, got {received:?}"));
        }
    } else if line.note.contains("nothing sent after 'ready'")
        && let Some(extra) = conn.client.recv_within(Duration::from_millis(300)).await
    {
        replay.fail(line, format!("expected silence, got {extra:?}"));
    }
}

#[tokio::test]
async fn replay_cfms_v3() {
    run("cfms-v3.jsonl").await;
}

#[tokio::test]
async fn replay_cfms_v3_edge() {
    run("cfms-v3-edge.jsonl").await;
}

#[tokio::test]
async fn replay_cfms_p5() {
    run("cfms-p5.jsonl").await;
}

#[tokio::test]
async fn replay_cfms_p5_2fa() {
    run("cfms-p5-2fa.jsonl").await;
}

#[test]
fn every_recorded_transcript_has_a_replay() {
    let replayed = [
        "cfms-v3.jsonl",
        "cfms-v3-edge.jsonl",
        "cfms-p5.jsonl",
        "cfms-p5-2fa.jsonl",
    ];
    // Protocol 13 (binary framing, negotiation) is the emulator's next
    // protocol, tracked by its own issue; until it is spoken these three are
    // named here so that any other new transcript still fails this test.
    let awaiting_protocol_13 = [
        "cfms-p13.jsonl",
        "cfms-p13-concurrency.jsonl",
        "cfms-detect.jsonl",
    ];
    let dir = std::fs::read_dir(transcripts()).expect("transcripts directory");
    for entry in dir.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with("cfms-") && name.ends_with(".jsonl") {
            assert!(
                replayed.contains(&name.as_str()) || awaiting_protocol_13.contains(&name.as_str()),
                "{name} is not replayed"
            );
        }
    }
}

#[test]
fn comparison_flags_wrong_values_keys_and_inconsistent_ids() {
    let mut replay = Replay {
        name: "unit",
        ids: HashMap::new(),
    };
    let rec = json!({"code": 200, "data": {"id": "r1", "size": 5, "t": 1.5}, "message": "ok"});
    let live = json!({"code": 200, "data": {"id": "l1", "size": 5, "t": 9.25}, "message": "ok"});
    assert_eq!(replay.compare("$", &rec, &live), Ok(()));
    let wrong_code =
        json!({"code": 400, "data": {"id": "l1", "size": 5, "t": 1.0}, "message": "ok"});
    assert!(replay.compare("$", &rec, &wrong_code).is_err());
    let other_id = json!({"code": 200, "data": {"id": "l2", "size": 5, "t": 1.0}, "message": "ok"});
    assert!(
        replay.compare("$", &rec, &other_id).is_err(),
        "r1 was learnt as l1"
    );
    let extra_key =
        json!({"code": 200, "data": {"id": "l1", "size": 5, "t": 1.0, "x": 1}, "message": "ok"});
    assert!(replay.compare("$", &rec, &extra_key).is_err());
    let wrong_size =
        json!({"code": 200, "data": {"id": "l1", "size": 6, "t": 1.0}, "message": "ok"});
    assert!(replay.compare("$", &rec, &wrong_size).is_err());
    assert!(
        replay
            .compare("$", &json!({"message": "a"}), &json!({"message": "b"}))
            .is_err()
    );
}
