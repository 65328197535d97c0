//! Protocol-13 downloads through a whole `Connection<cfms::Session>`
//! (`cfms-13.md` §10): the recorded exchanges of `cfms-p13.jsonl` (a
//! download, an empty one, one interrupted and resumed on a new
//! connection), and synthetic ones (a forged tag, a frozen stream, a chunk
//! out of order, too few and too many bytes), and the two-pass opener
//! ([`ChunkOpener`]) against `open_chunk` on the same chunks. The WebSocket streams, so a
//! `file_chunk` frame reaches the session in pieces far smaller than it.

mod ws_support;

use naslink_core::cfms::p13::ChunkOpener;
use naslink_core::cfms::p13::transfer::{TransferError, open_chunk};
use naslink_core::cfms::{
    self, Buffers, Config, ConnectionEvent as Ev, Credentials, DownloadError, DownloadKey, State,
};
use naslink_core::connection::{Connection, Event};
use naslink_core::time::{Duration, Instant};
use naslink_core::ws::{self, Url, frame::Opcode};
use serde_json::{Value, json};
use ws_support::{Counter, decode_client, server_frame, switching_protocols};

type Session = cfms::Session<'static, 4>;
type Conn = Connection<Session, Vec<u8>, Counter>;

/// A frame the client sent: stream, type, payload.
type Sent = (u32, u8, Vec<u8>);

const T0: f64 = 1796324169.141;
/// The WebSocket's receive buffer: every piece of a message is at most this.
const WS_RX: usize = 8192;

fn transcript() -> Vec<Value> {
    let path = format!(
        "{}/../../shared/transcripts/cfms-p13.jsonl",
        env!("CARGO_MANIFEST_DIR")
    );
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    text.lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn config(login: bool) -> Config {
    Config {
        login: login.then(|| Credentials::new("admin", "Admin-Pass-123").unwrap()),
        protocol_version: Some(13),
        request_timeout: Duration::from_secs(10),
        transfer_timeout: Duration::from_secs(30),
        ..Config::default()
    }
}

/// A connection whose session keeps `seals` chunk slots (pre-filled, as
/// a caller resuming on a new connection does).
fn connect(login: bool, seals: Vec<[u8; 32]>) -> Conn {
    // 3/4 of the WebSocket's receive buffer + 2: one piece's ciphertext.
    let rx = Box::leak(vec![0u8; WS_RX * 3 / 4 + 2].into_boxed_slice());
    let chunk_hashes = Box::leak(seals.into_boxed_slice());
    let s = cfms::Session::new(config(login), Buffers { rx, chunk_hashes });
    let url = Url::parse("ws://nas.local:5104/").unwrap();
    let ws_config = ws::Config {
        streaming: true,
        ..ws::Config::default()
    };
    let ws = ws::Client::connect(
        Instant::ZERO,
        &url,
        &[],
        ws_config,
        Counter(0),
        vec![0u8; WS_RX],
        vec![0u8; 8192],
    )
    .unwrap();
    let mut c = Connection::new(ws, s);
    let request = drain_tx(&mut c, Instant::ZERO);
    let (events, _) = exchange(&mut c, Instant::ZERO, &switching_protocols(&request));
    assert_eq!(events[0], "Connected");
    c
}

fn drain_tx(c: &mut Conn, now: Instant) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(b) = c.poll_transmit(now) {
        out.extend_from_slice(b);
        let n = b.len();
        c.advance_transmit(n);
    }
    out
}

/// What a test keeps of the events: their names, and the ciphertext.
#[derive(Default)]
struct Got {
    events: Vec<String>,
    data: Vec<u8>,
    key: Option<DownloadKey>,
}

fn collect(c: &mut Conn, got: &mut Got) {
    while let Some(e) = c.poll_event() {
        match &e {
            Event::Session(Ev::DownloadData { data, .. }) => {
                got.data.extend_from_slice(data);
                continue;
            }
            Event::Session(Ev::DownloadFinished { key, .. }) => got.key = Some(*key),
            _ => {}
        }
        got.events.push(match e {
            Event::Session(s) => format!("{s:?}"),
            other => format!("{other:?}"),
        });
    }
}

/// Feed server bytes; returns the events (without data) and the frames sent.
fn feed(c: &mut Conn, now: Instant, bytes: &[u8], got: &mut Got) -> Vec<Sent> {
    let mut sent = Vec::new();
    let mut rest = bytes;
    loop {
        let n = c.handle_input(now, rest);
        rest = &rest[n..];
        // Drain until quiet: what is sent may raise events and back.
        loop {
            let out = drain_tx(c, now);
            let before = got.events.len() + got.data.len();
            collect(c, got);
            if out.is_empty() && before == got.events.len() + got.data.len() {
                break;
            }
            sent.extend(out);
        }
        if rest.is_empty() {
            break;
        }
    }
    raw_frames(&sent)
}

fn exchange(c: &mut Conn, now: Instant, bytes: &[u8]) -> (Vec<String>, Vec<Sent>) {
    let mut got = Got::default();
    let sent = feed(c, now, bytes, &mut got);
    (got.events, sent)
}

fn raw_frames(sent: &[u8]) -> Vec<Sent> {
    decode_client(sent)
        .into_iter()
        .filter(|f| matches!(f.opcode, Opcode::Binary | Opcode::Text))
        .map(|f| {
            assert_eq!(f.opcode, Opcode::Binary);
            (
                u32::from_be_bytes(f.payload[..4].try_into().unwrap()),
                f.payload[4],
                f.payload[5..].to_vec(),
            )
        })
        .collect()
}

/// A binary frame from the server, with a raw payload.
fn frame_raw(stream: u32, conclusion: bool, payload: &[u8]) -> Vec<u8> {
    let mut p = stream.to_be_bytes().to_vec();
    p.push(conclusion as u8);
    p.extend_from_slice(payload);
    server_frame(true, 0, 2, &p)
}

fn frame(stream: u32, conclusion: bool, json: &Value) -> Vec<u8> {
    frame_raw(stream, conclusion, json.to_string().as_bytes())
}

fn server_info(stream: u32) -> Vec<u8> {
    frame(
        stream,
        true,
        &json!({"code": 200, "data": {"server_name": "CFMS WebSocket Server", "protocol_version": 13, "lockdown": false}, "message": "ok", "timestamp": T0}),
    )
}

/// A session past the opening sequence (logged in or not), at 1 s.
fn ready(login: bool, seals: Vec<[u8; 32]>) -> Conn {
    let mut c = connect(login, seals);
    exchange(&mut c, Instant::from_secs(1), &server_info(1));
    if login {
        let ok = frame(
            3,
            true,
            &json!({"code": 200, "data": {"token": "eyJ.tok.en", "exp": T0 + 3600.0, "nickname": "a", "avatar_id": null, "permissions": [], "groups": []}, "message": "Login successful", "timestamp": T0 + 0.3}),
        );
        exchange(&mut c, Instant::from_secs(1), &ok);
    }
    assert_eq!(c.session().state(), State::Ready);
    c
}

fn b64(bytes: &[u8]) -> String {
    use base64::Engine;
    let mut out = vec![0u8; bytes.len().div_ceil(3) * 4];
    let n = base64::engine::general_purpose::STANDARD
        .encode_slice(bytes, &mut out)
        .unwrap();
    out.truncate(n);
    String::from_utf8(out).unwrap()
}

fn unb64(s: &str) -> Vec<u8> {
    use base64::Engine;
    let mut out = vec![0u8; s.len() / 4 * 3 + 3];
    let n = base64::engine::general_purpose::STANDARD
        .decode_slice(s, &mut out)
        .unwrap();
    out.truncate(n);
    out
}

/// The recorded server frames of the transcript lines whose note starts
/// with `note` on connection `conn`: a `file_chunk` whose ciphertext the
/// recording truncated gets its recorded length (the recorded start, then
/// the byte pattern `i as u8`), the rest as recorded.
fn recorded(lines: &[Value], conn: &str, note: &str) -> Vec<(u32, bool, Value)> {
    lines
        .iter()
        .filter(|l| l["conn"] == conn && l["dir"] == "<<")
        .filter(|l| l["note"].as_str().unwrap().starts_with(note))
        .map(|l| {
            let mut json = l["json"].clone();
            if json["action"] == "file_chunk" {
                let chunk = json["data"]["chunk"].as_str().unwrap();
                let len: usize = chunk
                    .split("= ")
                    .nth(1)
                    .and_then(|s| s.split(' ').next())
                    .unwrap()
                    .parse()
                    .unwrap();
                let bytes: Vec<u8> = (0..len).map(|i| i as u8).collect();
                json["data"]["chunk"] = Value::String(b64(&bytes));
            }
            (
                l["frame"]["id"].as_u64().unwrap() as u32,
                l["frame"]["type"] == "conclusion",
                json,
            )
        })
        .collect()
}

#[test]
fn the_recorded_70000_byte_download_streams_in_pieces_and_ends_at_aes_key() {
    let lines = transcript();
    let frames = recorded(&lines, "A", "download 70000 B");
    let mut c = ready(true, vec![[0u8; 32]; 4]);
    let seq = c.download_file(Instant::from_secs(2), "task").unwrap();
    let sent = raw_frames(&drain_tx(&mut c, Instant::from_secs(2)));
    let asked: Value = serde_json::from_slice(&sent[0].2).unwrap();
    assert_eq!(asked["action"], "download_file");
    assert_eq!(asked["data"]["offset"], 0);
    let stream = sent[0].0;
    let mut got = Got::default();
    let mut key_b64 = String::new();
    let mut seal = None;
    for (_, conclusion, json) in &frames {
        if json["action"] == "aes_key" {
            key_b64 = json["data"]["key"].as_str().unwrap().to_string();
        }
        if json["action"] == "file_chunk" {
            let mut s = unb64(json["data"]["tag"].as_str().unwrap());
            s.extend(unb64(json["data"]["prefix"].as_str().unwrap()));
            s.resize(32, 0);
            seal = Some(s);
        }
        let sent = feed(
            &mut c,
            Instant::from_secs(3),
            &frame(stream, *conclusion, json),
            &mut got,
        );
        if json["action"] == "transfer_file" {
            assert_eq!(sent, [(stream, 0, b"ready".to_vec())]);
        } else {
            assert!(sent.is_empty());
        }
    }
    assert_eq!(
        got.events,
        [
            format!("DownloadStarted {{ seq: {seq:?}, file_size: 70000, total_chunks: 1 }}"),
            format!("DownloadChunk {{ seq: {seq:?}, index: 0, len: 70000 }}"),
            format!(
                "DownloadFinished {{ seq: {seq:?}, key: {:?} }}",
                got.key.unwrap()
            ),
        ]
    );
    assert_eq!(got.data, (0..70000).map(|i| i as u8).collect::<Vec<_>>());
    assert_eq!(got.key.unwrap().key.to_vec(), unb64(&key_b64));
    let seal: [u8; 32] = seal.unwrap().try_into().unwrap();
    assert_eq!(c.session().chunk_hashes(), &[seal]);
    // No CONCLUSION follows: the stream is over, the next request opens a new one.
    assert!(c.can_send());
    assert!(c.poll_timeout().is_none_or(|t| t > Instant::from_secs(3)));
    c.download_file(Instant::from_secs(4), "task-2").unwrap();
    let sent = raw_frames(&drain_tx(&mut c, Instant::from_secs(4)));
    assert!(sent[0].0 > stream);
}

#[test]
fn the_recorded_empty_download_ends_at_ready() {
    let lines = transcript();
    let frames = recorded(&lines, "A", "download 0 B");
    let mut c = ready(true, vec![[0u8; 32]; 1]);
    let seq = c.download_file(Instant::from_secs(2), "empty").unwrap();
    let stream = raw_frames(&drain_tx(&mut c, Instant::from_secs(2)))[0].0;
    assert_eq!(frames.len(), 1);
    let (events, sent) = exchange(
        &mut c,
        Instant::from_secs(2),
        &frame(stream, false, &frames[0].2),
    );
    assert_eq!(sent, [(stream, 0, b"ready".to_vec())]);
    assert_eq!(
        events[0],
        format!("DownloadStarted {{ seq: {seq:?}, file_size: 0, total_chunks: 0 }}")
    );
    assert!(
        events[1].starts_with(&format!("DownloadFinished {{ seq: {seq:?}")),
        "{events:?}"
    );
    assert!(c.can_send());
}

#[test]
fn the_recorded_refusals_of_a_bad_offset_fail_the_download_by_status() {
    let lines = transcript();
    for note in ["download_file offset 1000", "download_file offset beyond"] {
        let frames = recorded(&lines, "A", note);
        let mut c = ready(true, vec![[0u8; 32]; 4]);
        c.download_file_at(Instant::from_secs(2), "t", 1000)
            .unwrap();
        let stream = raw_frames(&drain_tx(&mut c, Instant::from_secs(2)))[0].0;
        let mut got = Got::default();
        for (_, conclusion, json) in &frames {
            feed(
                &mut c,
                Instant::from_secs(2),
                &frame(stream, *conclusion, json),
                &mut got,
            );
        }
        assert!(
            got.events[1].starts_with("DownloadFailed"),
            "{:?}",
            got.events
        );
        assert!(
            got.events[1].contains("Server(BadRequest)"),
            "{:?}",
            got.events
        );
        assert!(c.can_send());
    }
}

#[test]
fn the_recorded_interrupted_download_resumes_on_a_new_connection_at_the_held_chunks() {
    let lines = transcript();
    // Connection D: chunk 0 arrives, then the connection drops.
    let first = recorded(&lines, "D", "interrupted download");
    let mut c = ready(false, vec![[0u8; 32]; 3]);
    let seq = c.download_file(Instant::from_secs(2), "72ff").unwrap();
    let stream = raw_frames(&drain_tx(&mut c, Instant::from_secs(2)))[0].0;
    let mut got = Got::default();
    for (_, conclusion, json) in &first {
        feed(
            &mut c,
            Instant::from_secs(2),
            &frame(stream, *conclusion, json),
            &mut got,
        );
    }
    c.handle_eof(Instant::from_secs(3));
    collect(&mut c, &mut got);
    assert_eq!(
        got.events[1],
        format!("DownloadChunk {{ seq: {seq:?}, index: 0, len: 2097152 }}")
    );
    assert!(
        got.events[2].starts_with("DownloadFailed"),
        "{:?}",
        got.events
    );
    // The caller holds the ciphertext up to the last DownloadChunk and
    // the seals the session kept.
    let held = got.data.len() as u64;
    assert_eq!(held, 2097152);
    let seals = c.session().chunk_hashes().to_vec();
    assert_eq!(seals.len(), 1);
    // Connection E: the same task, at the offset of the chunks held.
    let resumed = recorded(&lines, "E", "resume on a new connection");
    let mut slots = vec![[0u8; 32]; 3];
    slots[0] = seals[0];
    let mut e = ready(false, slots);
    let seq = e
        .download_file_at(Instant::from_secs(5), "72ff", held)
        .unwrap();
    let sent = raw_frames(&drain_tx(&mut e, Instant::from_secs(5)));
    let asked: Value = serde_json::from_slice(&sent[0].2).unwrap();
    assert_eq!(asked["data"]["offset"], 2097152);
    let stream = sent[0].0;
    let mut got2 = Got::default();
    for (_, conclusion, json) in &resumed {
        feed(
            &mut e,
            Instant::from_secs(5),
            &frame(stream, *conclusion, json),
            &mut got2,
        );
    }
    assert_eq!(
        &got2.events[1..3],
        [
            format!("DownloadChunk {{ seq: {seq:?}, index: 1, len: 2097152 }}"),
            format!("DownloadChunk {{ seq: {seq:?}, index: 2, len: 1048576 }}"),
        ]
    );
    assert!(
        got2.events[3].starts_with("DownloadFinished"),
        "{:?}",
        got2.events
    );
    assert_eq!(got2.data.len(), 3145728);
    let all = e.session().chunk_hashes();
    assert_eq!(all.len(), 3);
    assert_eq!(all[0], seals[0]);
}

// ----- synthetic: real AES-256-GCM ------------------------------------------

/// From Python `cryptography`'s AESGCM: key 00..1f, nonce a0..a7 ‖
/// 00000003: chunk 3 of a 132-byte file in 33-byte chunks.
const PLAIN: &[u8] = b"CFMS protocol 13 chunk, index 3!!";
const CIPHER: &str = "4e54ededd79c2bf80f1d47048e44a9e11a9a6afc76489ea6374a6e44f398d64202";
const TAG: &str = "7e6742815d1af3e5d0731e2456dd299a";
const PREFIX: [u8; 8] = [0xa0, 0xa1, 0xa2, 0xa3, 0xa4, 0xa5, 0xa6, 0xa7];

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len() / 2)
        .map(|i| u8::from_str_radix(&s[2 * i..2 * i + 2], 16).unwrap())
        .collect()
}

fn header(size: u64, chunk: u64) -> Value {
    json!({"action": "transfer_file", "data": {"file_size": size, "chunk_size": chunk, "total_chunks": size.div_ceil(chunk)}})
}

fn chunk(index: u32, cipher: &[u8], tag: &[u8]) -> Value {
    json!({"action": "file_chunk", "data": {"index": index, "chunk": b64(cipher), "tag": b64(tag), "prefix": b64(&PREFIX)}})
}

fn key() -> Value {
    json!({"action": "aes_key", "data": {"key": b64(&(0..32).collect::<Vec<u8>>())}})
}

/// Feed one PROCESS frame carrying `json` on `stream`, at t = 2 s.
fn process(c: &mut Conn, stream: u32, json: &Value, got: &mut Got) -> Vec<Sent> {
    feed(c, Instant::from_secs(2), &frame(stream, false, json), got)
}

/// Resume at chunk 3 of the 132-byte file; returns the events and data.
fn last_chunk(tag: &[u8]) -> (Conn, Got) {
    let mut c = ready(false, vec![[0u8; 32]; 4]);
    c.download_file_at(Instant::from_secs(2), "t", 99).unwrap();
    let stream = raw_frames(&drain_tx(&mut c, Instant::from_secs(2)))[0].0;
    let mut got = Got::default();
    for m in [header(132, 33), chunk(3, &unhex(CIPHER), tag), key()] {
        process(&mut c, stream, &m, &mut got);
    }
    (c, got)
}

#[test]
fn a_chunk_opens_to_plaintext_only_with_its_tag() {
    let (c, got) = last_chunk(&unhex(TAG));
    assert!(
        got.events[2].starts_with("DownloadFinished"),
        "{:?}",
        got.events
    );
    let seal = c.session().chunk_hashes()[3];
    let mut buf = got.data.clone();
    open_chunk(&got.key.unwrap(), 3, &seal, &mut buf).unwrap();
    assert_eq!(buf, PLAIN);
}

#[test]
fn a_forged_tag_is_named_and_leaves_the_ciphertext() {
    let mut tag = unhex(TAG);
    tag[15] ^= 0x80;
    let (c, got) = last_chunk(&tag);
    // The session cannot tell before the key: the caller's opening does.
    assert!(
        got.events[2].starts_with("DownloadFinished"),
        "{:?}",
        got.events
    );
    let seal = c.session().chunk_hashes()[3];
    let mut buf = got.data.clone();
    assert_eq!(
        open_chunk(&got.key.unwrap(), 3, &seal, &mut buf),
        Err(TransferError::ForgedTag { index: 3 })
    );
    assert_eq!(buf, unhex(CIPHER));
}

/// A download of `size` bytes in `chunk`-byte chunks on a fresh session,
/// up to `ready`; returns the connection, its stream, and the events.
fn started(size: u64, chunk_size: u64) -> (Conn, u32, Got) {
    let mut c = ready(true, vec![[0u8; 32]; 4]);
    c.download_file(Instant::from_secs(2), "t").unwrap();
    let stream = raw_frames(&drain_tx(&mut c, Instant::from_secs(2)))[0].0;
    let mut got = Got::default();
    process(&mut c, stream, &header(size, chunk_size), &mut got);
    (c, stream, got)
}

#[test]
fn a_chunk_out_of_order_fails_only_the_download() {
    let (mut c, stream, mut got) = started(66, 33);
    process(&mut c, stream, &chunk(1, &[0; 33], &[0; 16]), &mut got);
    assert!(
        got.events[1].contains("ChunkOutOfOrder { expected: 0, got: 1 }"),
        "{:?}",
        got.events
    );
    assert!(c.can_send());
}

#[test]
fn too_few_or_too_many_bytes_are_named() {
    let (mut c, stream, mut got) = started(66, 33);
    process(&mut c, stream, &chunk(0, &[0; 32], &[0; 16]), &mut got);
    assert!(
        got.events[1].contains("ChunkLength { index: 0, expected: 33, got: 32 }"),
        "{:?}",
        got.events
    );
    let (mut c, stream, mut got) = started(66, 33);
    process(&mut c, stream, &chunk(0, &[0; 34], &[0; 16]), &mut got);
    assert!(
        got.events[1].contains("ChunkLength { index: 0, expected: 33, got: 34 }"),
        "{:?}",
        got.events
    );
    // The key before the last chunk: the download is short.
    let (mut c, stream, mut got) = started(66, 33);
    process(&mut c, stream, &chunk(0, &[0; 33], &[0; 16]), &mut got);
    process(&mut c, stream, &key(), &mut got);
    assert!(got.events[2].contains("BadKey"), "{:?}", got.events);
    // A chunk past the last one: the download is long.
    let (mut c, stream, mut got) = started(33, 33);
    for i in 0..2 {
        process(&mut c, stream, &chunk(i, &[0; 33], &[0; 16]), &mut got);
    }
    assert!(
        got.events[2].contains("ChunkOutOfOrder { expected: 1, got: 1 }"),
        "{:?}",
        got.events
    );
    // A null key: another attempt finished the task.
    let (_, _, got) = started(0, 33);
    assert!(
        got.events[1].starts_with("DownloadFinished"),
        "{:?}",
        got.events
    );
    let (mut c, stream, mut got) = started(33, 33);
    process(&mut c, stream, &chunk(0, &[0; 33], &[0; 16]), &mut got);
    let null = json!({"action": "aes_key", "data": {"key": null}});
    process(&mut c, stream, &null, &mut got);
    assert!(got.events[2].contains("KeyTaken"), "{:?}", got.events);
}

#[test]
fn a_frozen_stream_fails_the_download_at_its_deadline_and_not_the_connection() {
    let (mut c, stream, mut got) = started(70000, 2097152);
    // Half a chunk, then nothing.
    let m = chunk(0, &vec![0u8; 70000], &[0; 16]).to_string();
    let whole = frame_raw(stream, false, m.as_bytes());
    let cut = whole.len() / 2;
    // A WebSocket frame cut in the middle: the session sees the first pieces.
    c.handle_input(Instant::from_secs(3), &whole[..cut]);
    collect(&mut c, &mut got);
    assert!(!got.data.is_empty());
    let deadline = c.poll_timeout().unwrap();
    assert_eq!(deadline, Instant::from_secs(33));
    c.handle_timeout(Instant::from_secs(32));
    collect(&mut c, &mut got);
    assert!(!got.events.iter().any(|e| e.starts_with("DownloadFailed")));
    c.handle_timeout(deadline);
    collect(&mut c, &mut got);
    let failed: Vec<_> = got
        .events
        .iter()
        .filter(|e| e.starts_with("DownloadFailed"))
        .collect();
    assert_eq!(failed.len(), 1, "{:?}", got.events);
    assert!(failed[0].contains("Timeout"), "{failed:?}");
}

#[test]
fn an_event_between_chunks_is_read_and_the_download_goes_on() {
    let (mut c, stream, mut got) = started(66, 33);
    process(&mut c, stream, &chunk(0, &[1; 33], &[0; 16]), &mut got);
    let lockdown = frame(
        2,
        false,
        &json!({"action": "lockdown", "data": {"status": true}}),
    );
    feed(&mut c, Instant::from_secs(2), &lockdown, &mut got);
    process(&mut c, stream, &chunk(1, &[2; 33], &[0; 16]), &mut got);
    process(&mut c, stream, &key(), &mut got);
    assert!(
        got.events.last().unwrap().starts_with("DownloadFinished"),
        "{:?}",
        got.events
    );
    assert_eq!(got.data, [[1u8; 33], [2u8; 33]].concat());
    let _ = DownloadError::Timeout;
}

// ----- any bytes on the download's stream -----------------------------------

/// `msg` with some bytes replaced and maybe cut short.
fn mutate(mut msg: Vec<u8>, edits: &[(usize, u8)], cut: Option<usize>) -> Vec<u8> {
    for &(at, b) in edits {
        let n = msg.len().max(1);
        if let Some(x) = msg.get_mut(at % n) {
            *x = b;
        }
    }
    if let Some(c) = cut {
        msg.truncate(c % (msg.len() + 1));
    }
    msg
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(64))]
    /// Whatever a server sends on a receiving download's stream (chunk,
    /// key or error messages with bytes changed or cut, or random bytes),
    /// delivered in whatever pieces the network cuts, the session
    /// consumes every byte, never panics, and the download either goes on
    /// or ends with one named outcome.
    #[test]
    fn any_message_on_the_download_stream_in_any_pieces(
        which in 0usize..4,
        edits in proptest::collection::vec((proptest::prelude::any::<usize>(), proptest::prelude::any::<u8>()), 0..6),
        cut in proptest::option::of(proptest::prelude::any::<usize>()),
        random in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..200),
        conclusion in proptest::prelude::any::<bool>(),
        cuts in proptest::collection::vec(proptest::prelude::any::<usize>(), 0..8),
    ) {
        let (mut c, stream, mut got) = started(66, 33);
        let base = match which {
            0 => chunk(0, &[9; 33], &[1; 16]).to_string().into_bytes(),
            1 => key().to_string().into_bytes(),
            2 => br#"{"code": 400, "data": {}, "message": "Invalid offset"}"#.to_vec(),
            _ => random,
        };
        let base_copy = base.clone();
        let wire = frame_raw(stream, conclusion, &mutate(base, &edits, cut));
        let mut bounds: Vec<usize> = cuts.iter().map(|x| x % (wire.len() + 1)).collect();
        bounds.extend([0, wire.len()]);
        bounds.sort_unstable();
        bounds.dedup();
        for w in bounds.windows(2) {
            let mut rest = &wire[w[0]..w[1]];
            let mut rounds = 0;
            while !rest.is_empty() {
                let n = c.handle_input(Instant::from_secs(3), rest);
                rest = &rest[n..];
                collect(&mut c, &mut got);
                drain_tx(&mut c, Instant::from_secs(3));
                rounds += 1;
                proptest::prop_assert!(rounds < 1000, "no progress");
            }
        }
        let ends = got
            .events
            .iter()
            .filter(|e| e.starts_with("DownloadFinished") || e.starts_with("DownloadFailed"))
            .count();
        proptest::prop_assert!(ends <= 1, "{:?}", got.events);
        // The same frame handed straight to a session in the pieces cut
        // (an adapter with its own WebSocket may cut anywhere, even inside
        // the 5-byte frame header).
        let direct_wire = frame_raw(3, conclusion, &mutate(base_copy, &edits, cut));
        let framed = &direct_wire[ws_head_len(&direct_wire)..];
        let mut bounds: Vec<usize> = cuts.iter().map(|x| x % (framed.len() + 1)).collect();
        bounds.extend([0, framed.len()]);
        bounds.sort_unstable();
        bounds.dedup();
        let parts: Vec<&[u8]> = bounds.windows(2).map(|w| &framed[w[0]..w[1]]).collect();
        let info = server_info(1);
        let info = &info[ws_head_len(&info)..];
        let mut head = 3u32.to_be_bytes().to_vec();
        head.push(0);
        head.extend(header(66, 33).to_string().into_bytes());
        let got = direct(&[&[info], &[&head], &parts]);
        let ends = got
            .events
            .iter()
            .filter(|e| e.starts_with("DownloadFinished") || e.starts_with("DownloadFailed"))
            .count();
        proptest::prop_assert!(ends <= 1, "{:?}", got.events);
    }
}

/// The length of a server WebSocket frame's own header (no mask).
fn ws_head_len(frame: &[u8]) -> usize {
    match frame[1] & 0x7f {
        126 => 4,
        127 => 10,
        _ => 2,
    }
}

#[test]
fn more_chunks_than_seal_slots_are_refused_with_a_framed_cancel() {
    let mut c = ready(true, vec![[0u8; 32]; 2]);
    let seq = c.download_file(Instant::from_secs(2), "big").unwrap();
    let stream = raw_frames(&drain_tx(&mut c, Instant::from_secs(2)))[0].0;
    let mut got = Got::default();
    let sent = process(&mut c, stream, &header(5242880, 2097152 / 2), &mut got);
    // Anything but `ready` makes the server answer 400 and stop (§10.4).
    assert_eq!(sent, [(stream, 0, b"cancel".to_vec())]);
    let refused = frame(
        stream,
        true,
        &json!({"code": 400, "data": {}, "message": "Client not ready for file transfer", "timestamp": T0}),
    );
    feed(&mut c, Instant::from_secs(2), &refused, &mut got);
    assert_eq!(
        got.events[1],
        format!(
            "DownloadFailed {{ seq: {seq:?}, error: TooManyChunks {{ total: 5, capacity: 2 }} }}"
        )
    );
    assert!(c.can_send());
}

/// A session driven directly (as an adapter with its own WebSocket does),
/// handed each message in the pieces given.
fn direct(pieces: &[&[&[u8]]]) -> Got {
    use naslink_core::connection::{Message, Session as _};
    use naslink_core::random;
    use naslink_core::ws::MessageKind;
    let rx = Box::leak(vec![0u8; 100].into_boxed_slice());
    let chunk_hashes = Box::leak(vec![[0u8; 32]; 2].into_boxed_slice());
    let mut s: Session = cfms::Session::new(config(false), Buffers { rx, chunk_hashes });
    let now = Instant::from_secs(1);
    let mut tx = [0u8; 256];
    let mut rng = random::from_fn(|b: &mut [u8]| b.fill(7));
    s.handle_connect(now);
    s.poll_transmit(now, &mut rng, &mut tx).unwrap();
    let mut got = Got::default();
    for (i, message) in pieces.iter().enumerate() {
        for (j, piece) in message.iter().enumerate() {
            let m = Message {
                kind: MessageKind::Binary,
                data: piece,
                first: j == 0,
                last: j + 1 == message.len(),
            };
            s.handle_message(now, m);
            while let Some(e) = s.poll_event(Some(m)) {
                match e {
                    Ev::DownloadData { data, .. } => got.data.extend_from_slice(data),
                    other => got.events.push(format!("{other:?}")),
                }
            }
        }
        if i == 0 {
            s.download_file(now, "t", &mut tx).unwrap();
        }
        while let Ok(Some(_)) = s.poll_transmit(now, &mut rng, &mut tx) {}
    }
    got
}

#[test]
fn a_message_whose_first_piece_is_shorter_than_the_frame_header_is_told_by_its_header() {
    let info = server_info(1);
    // The WebSocket frame's own header is not the session's.
    let info = &info[ws_head_len(&info)..];
    let body = |stream: u32, json: &Value| {
        let mut p = stream.to_be_bytes().to_vec();
        p.push(0);
        p.extend(json.to_string().into_bytes());
        p
    };
    let header = body(3, &header(66, 33));
    // Larger than the 100-byte receive buffer: only streaming takes them.
    let c0 = body(3, &chunk(0, &[1; 33], &[0; 16]));
    assert!(c0.len() > 100);
    let c1 = body(3, &chunk(1, &[2; 33], &[0; 16]));
    let lockdown = {
        let mut p = 2u32.to_be_bytes().to_vec();
        p.push(1);
        p.extend(br#"{"event":"lockdown","data":{"status":true}}"#);
        p
    };
    let k = body(3, &key());
    for cut in 1..5 {
        let got = direct(&[
            &[info],
            &[&header],
            &[&c0[..cut], &c0[cut..cut + 1], &c0[cut + 1..]],
            &[&lockdown[..cut], &lockdown[cut..]],
            &[&c1[..cut], &c1[cut..]],
            &[&k[..cut], &k[cut..]],
        ]);
        assert!(
            got.events.iter().any(|e| e == "Lockdown { on: true }"),
            "{cut}: {:?}",
            got.events
        );
        assert!(
            got.events.last().unwrap().starts_with("DownloadFinished"),
            "{cut}: {:?}",
            got.events
        );
        assert_eq!(got.data, [[1u8; 33], [2u8; 33]].concat());
    }
}

#[test]
fn the_recorded_refusal_of_a_spent_task_fails_the_download_before_any_header() {
    let lines = transcript();
    let frames = recorded(&lines, "A", "download the same task again");
    assert_eq!(frames.len(), 1);
    let mut c = ready(true, vec![[0u8; 32]; 4]);
    let seq = c.download_file(Instant::from_secs(2), "387a").unwrap();
    let stream = raw_frames(&drain_tx(&mut c, Instant::from_secs(2)))[0].0;
    let (events, sent) = exchange(
        &mut c,
        Instant::from_secs(2),
        &frame(stream, true, &frames[0].2),
    );
    assert!(sent.is_empty());
    assert_eq!(
        events,
        [format!(
            "DownloadFailed {{ seq: {seq:?}, error: Server(BadRequest) }}"
        )]
    );
    assert!(c.can_send());
    assert!(c.poll_timeout().is_none_or(|t| t > Instant::from_secs(11)));
}

// ----- the two-pass opener against `open_chunk` ------------------------------

/// Open `cipher` with [`ChunkOpener`], hashing then decrypting it in
/// pieces of `piece` bytes; the buffer as left and the result.
fn open_in_pieces(
    key: &DownloadKey,
    index: u32,
    seal: &[u8; 32],
    cipher: &[u8],
    piece: usize,
) -> (Vec<u8>, Result<(), TransferError>) {
    let mut buf = cipher.to_vec();
    let mut opener = ChunkOpener::from_seal(key, index, seal);
    for p in buf.chunks(piece) {
        opener.update(p);
    }
    let result = opener.verify().and_then(|mut chunk| {
        buf.chunks_mut(piece).try_for_each(|p| chunk.decrypt(p))?;
        assert_eq!(chunk.remaining(), 0);
        Ok(())
    });
    (buf, result)
}

/// Both openers on one chunk, in several piece sizes: the same bytes and
/// the same answer.
fn both_agree(
    key: &DownloadKey,
    index: u32,
    seal: &[u8; 32],
    cipher: &[u8],
) -> Result<(), TransferError> {
    let mut whole = cipher.to_vec();
    let expected = open_chunk(key, index, seal, &mut whole);
    for piece in [1, 15, 16, 512, 4096, cipher.len().max(1)] {
        let (buf, result) = open_in_pieces(key, index, seal, cipher, piece);
        assert_eq!(result, expected, "chunk {index} in {piece}-byte pieces");
        assert_eq!(buf, whole, "chunk {index} in {piece}-byte pieces");
    }
    expected
}

#[test]
fn the_two_pass_opener_answers_as_open_chunk_on_the_recorded_and_synthetic_chunks() {
    // The recorded chunks (their ciphertext shortened by the recording,
    // so refused by both, by index, nothing decrypted) under the key of
    // their connection.
    let lines = transcript();
    let mut opened = 0;
    for (conn, note) in [
        ("A", "download 70000 B"),
        ("E", "resume on a new connection"),
    ] {
        let frames = recorded(&lines, conn, note);
        let key_b64 = frames
            .iter()
            .find(|(_, _, j)| j["action"] == "aes_key")
            .map(|(_, _, j)| j["data"]["key"].as_str().unwrap())
            .unwrap();
        let key = DownloadKey {
            key: unb64(key_b64).try_into().unwrap(),
            iv: [0; 16],
            sha256: None,
            file_size: 0,
            chunk_size: 0,
            total_chunks: 0,
        };
        for (_, _, j) in frames
            .iter()
            .filter(|(_, _, j)| j["action"] == "file_chunk")
        {
            let d = &j["data"];
            let index = d["index"].as_u64().unwrap() as u32;
            let mut seal = unb64(d["tag"].as_str().unwrap());
            seal.extend(unb64(d["prefix"].as_str().unwrap()));
            seal.resize(32, 0);
            let cipher = unb64(d["chunk"].as_str().unwrap());
            assert_eq!(
                both_agree(&key, index, &seal.try_into().unwrap(), &cipher),
                Err(TransferError::ForgedTag { index })
            );
            opened += 1;
        }
    }
    assert_eq!(opened, 3);
    // The real AES-256-GCM chunk, through the session, and forged.
    let (c, got) = last_chunk(&unhex(TAG));
    let seal = c.session().chunk_hashes()[3];
    assert_eq!(both_agree(&got.key.unwrap(), 3, &seal, &got.data), Ok(()));
    let (plain, opened) = open_in_pieces(&got.key.unwrap(), 3, &seal, &got.data, 7);
    assert_eq!((&plain[..], opened), (PLAIN, Ok(())));
    let mut tag = unhex(TAG);
    tag[15] ^= 0x80;
    let (c, got) = last_chunk(&tag);
    let seal = c.session().chunk_hashes()[3];
    assert_eq!(
        both_agree(&got.key.unwrap(), 3, &seal, &got.data),
        Err(TransferError::ForgedTag { index: 3 })
    );
}
