//! A whole `Connection<cfms::Session>` against scripted server bytes: the
//! upgrade, then the session's own opening sequence (server_info → login →
//! two-factor → register_listener), then application requests whose
//! answers carry their bodies, and a download streamed in pieces.

mod ws_support;

use naslink_core::cfms::{
    self, Buffers, Config, ConnectionEvent as Ev, Credentials, LoginError, State, TwoFactorMethod,
};
use naslink_core::connection::{Connection, Event};
use naslink_core::time::Instant;
use naslink_core::ws::{self, Url};
use serde_json::{Value, json};
use ws_support::{Counter, decode_client, switching_protocols, text};

use aes::Aes256;
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use cfb8::cipher::KeyIvInit;
use sha2::{Digest, Sha256};

/// Standard base64 (the core's `base64` has no allocator, so no `encode`).
fn b64(data: impl AsRef<[u8]>) -> String {
    let data = data.as_ref();
    let mut out = vec![0u8; data.len().div_ceil(3) * 4];
    let n = B64.encode_slice(data, &mut out).unwrap();
    out.truncate(n);
    String::from_utf8(out).unwrap()
}

fn hex(d: &[u8]) -> String {
    d.iter().map(|b| format!("{b:02x}")).collect()
}

type Conn = Connection<cfms::Session<'static, 4>, Vec<u8>, Counter>;

fn session(config: Config, rx: usize) -> cfms::Session<'static, 4> {
    let rx = Box::leak(vec![0u8; rx].into_boxed_slice());
    let chunk_hashes = Box::leak(vec![[0u8; 32]; 8].into_boxed_slice());
    cfms::Session::new(config, Buffers { rx, chunk_hashes })
}

fn config(listener: bool) -> Config {
    Config {
        login: Some(Credentials::new("admin", "pw").unwrap()),
        listener,
        ..Config::default()
    }
}

fn connect(config: Config, ws_config: ws::Config, rx: usize) -> Conn {
    connect_tx(config, ws_config, rx, 8192)
}

fn connect_tx(config: Config, ws_config: ws::Config, rx: usize, tx: usize) -> Conn {
    let url = Url::parse("ws://nas.local:5104/").unwrap();
    let ws = ws::Client::connect(
        Instant::ZERO,
        &url,
        &[],
        ws_config,
        Counter(0),
        vec![0u8; rx],
        vec![0u8; tx],
    )
    .unwrap();
    Connection::new(ws, session(config, 16 * 1024))
}

fn drain_tx(c: &mut Conn) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(b) = c.poll_transmit(Instant::ZERO) {
        out.extend_from_slice(b);
        let n = b.len();
        c.advance_transmit(n);
    }
    out
}

/// An event's debug text, a reply's body, and download data.
type Owned = (String, Option<Value>, Vec<u8>);

/// An owned summary of an event.
fn own(e: Event<'_, cfms::Session<'static, 4>>) -> Owned {
    let (body, data) = match &e {
        Event::Session(
            Ev::Reply { response, .. }
            | Ev::LoggedIn { response, .. }
            | Ev::ServerInfo { response, .. },
        ) => (
            Some(serde_json::from_slice(response.data().raw()).unwrap()),
            vec![],
        ),
        Event::Session(Ev::DownloadData { data, .. }) => (None, data.to_vec()),
        _ => (None, vec![]),
    };
    let name = match &e {
        Event::Session(s) => format!("{s:?}"),
        other => format!("{other:?}"),
    };
    (name, body, data)
}

/// Feed server bytes the way an adapter does; returns the events and the
/// text messages the client sent meanwhile, as JSON.
fn exchange(c: &mut Conn, bytes: &[u8]) -> (Vec<Owned>, Vec<Value>) {
    let (mut events, mut sent) = (Vec::new(), Vec::new());
    let mut rest = bytes;
    loop {
        let n = c.handle_input(Instant::from_secs(1), rest);
        rest = &rest[n..];
        sent.extend(drain_tx(c));
        let before = events.len();
        while let Some(e) = c.poll_event() {
            events.push(own(e));
        }
        sent.extend(drain_tx(c));
        if rest.is_empty() {
            break;
        }
        assert!(n > 0 || events.len() > before, "no progress");
    }
    let sent = decode_client(&sent)
        .into_iter()
        .map(|f| {
            serde_json::from_slice(&f.payload)
                .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&f.payload).into_owned()))
        })
        .collect();
    (events, sent)
}

fn ok(data: Value) -> Vec<u8> {
    text(
        &json!({"code": 200, "data": data, "message": "ok", "timestamp": 1795304844.44})
            .to_string(),
    )
}

fn server_info_answer() -> Vec<u8> {
    ok(
        json!({"server_name": "CFMS WebSocket Server", "version": "0.1.0", "protocol_version": 4, "lockdown": false}),
    )
}

fn login_answer() -> Vec<u8> {
    text(&json!({"code": 200, "data": {"token": "tok.en.1", "exp": 1795308447.0, "nickname": "管理员",
        "permissions": [], "groups": []}, "message": "Login successful", "timestamp": 1795304847.0}).to_string())
}

/// Upgrade the connection; returns what the session sent at once.
fn open(c: &mut Conn) -> Vec<Value> {
    let request = drain_tx(c);
    let (events, sent) = exchange(c, &switching_protocols(&request));
    assert_eq!(events[0].0, "Connected");
    sent
}

#[test]
fn the_session_opens_with_server_info_then_logs_in_then_registers_its_listener() {
    let mut c = connect(config(true), ws::Config::default(), 8192);
    assert_eq!(
        c.request(Instant::ZERO, "list_directory", b"{}"),
        Err(cfms::Error::Busy)
    );
    let sent = open(&mut c);
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0]["action"], "server_info");
    assert_eq!(c.session().state(), State::ServerInfo);

    let (events, sent) = exchange(&mut c, &server_info_answer());
    assert!(
        events[0]
            .0
            .starts_with("ServerInfo { seq: None, protocol_version: 4")
    );
    assert_eq!(
        events[0].1.as_ref().unwrap()["server_name"],
        "CFMS WebSocket Server"
    );
    assert_eq!(sent[0]["action"], "login");
    assert_eq!(
        sent[0]["data"],
        json!({"username": "admin", "password": "pw"})
    );

    let (events, sent) = exchange(&mut c, &login_answer());
    assert!(events[0].0.starts_with("LoggedIn"));
    assert_eq!(events[0].1.as_ref().unwrap()["nickname"], "管理员");
    assert_eq!(sent[0]["action"], "register_listener");
    assert_eq!(sent[0]["token"], "tok.en.1");
    assert!(!c.can_send(), "requests wait for the listener");

    let (events, _) = exchange(&mut c, &ok(json!({})));
    assert_eq!(events[0].0, "ListenerRegistered { status: Ok }");
    assert_eq!(c.session().state(), State::Ready);
    assert!(c.can_send());
}

#[test]
fn a_reply_carries_its_body_and_the_request_went_straight_to_the_wire() {
    let mut c = connect(config(false), ws::Config::default(), 8192);
    open(&mut c);
    exchange(&mut c, &server_info_answer());
    exchange(&mut c, &login_answer());
    assert_eq!(c.session().state(), State::Ready);

    let seq = c
        .command(Instant::from_secs(2), |s, now, buf| {
            s.list_directory(now, None, buf)
        })
        .unwrap();
    let sent = decode_client(&drain_tx(&mut c));
    let request: Value = serde_json::from_slice(&sent[0].payload).unwrap();
    assert_eq!(request["action"], "list_directory");
    assert_eq!(request["token"], "tok.en.1");

    let (events, _) = exchange(
        &mut c,
        &ok(json!({"folders": [], "documents": [], "parent_id": null})),
    );
    assert_eq!(events.len(), 1);
    assert_eq!(
        events[0].0.split(", response").next().unwrap(),
        format!("Reply {{ seq: {seq:?}, status: Ok")
    );
    assert_eq!(events[0].1.as_ref().unwrap()["folders"], json!([]));
}

#[test]
fn a_two_factor_challenge_is_answered_by_the_application() {
    let mut c = connect(config(false), ws::Config::default(), 8192);
    open(&mut c);
    exchange(&mut c, &server_info_answer());
    let challenge = text(r#"{"code": 202, "data": {"method": "totp"}, "message": "2FA required"}"#);
    let (events, _) = exchange(&mut c, &challenge);
    assert_eq!(
        events[0].0,
        format!(
            "{:?}",
            Ev::TwoFactorRequired {
                method: TwoFactorMethod::Totp
            }
        )
    );
    assert_eq!(c.session().state(), State::TwoFactor);
    assert!(!c.can_send());

    c.submit_two_factor(Instant::from_secs(2), "123456")
        .unwrap();
    let sent = decode_client(&drain_tx(&mut c));
    let login: Value = serde_json::from_slice(&sent[0].payload).unwrap();
    assert_eq!(login["data"]["2fa_token"], "123456");
    assert_eq!(c.session().state(), State::LoggingIn);

    let (events, _) = exchange(&mut c, &login_answer());
    assert!(events[0].0.starts_with("LoggedIn"));
    assert_eq!(c.session().state(), State::Ready);
}

#[test]
fn a_refused_login_ends_the_sequence() {
    let mut c = connect(config(true), ws::Config::default(), 8192);
    open(&mut c);
    exchange(&mut c, &server_info_answer());
    let refusal = text(r#"{"code": 401, "data": {}, "message": "Invalid credentials"}"#);
    let (events, sent) = exchange(&mut c, &refusal);
    assert_eq!(
        events[0].0,
        format!("{:?}", Ev::LoginFailed(LoginError::InvalidCredentials))
    );
    assert!(sent.is_empty(), "no listener after a refused login");
    assert_eq!(c.session().state(), State::LoginFailed);
}

#[test]
fn without_credentials_the_session_stays_anonymous_after_server_info() {
    let mut c = connect(Config::default(), ws::Config::default(), 8192);
    open(&mut c);
    let (_, sent) = exchange(&mut c, &server_info_answer());
    assert!(sent.is_empty());
    assert_eq!(c.session().state(), State::Ready);
}

#[test]
fn an_unsolicited_message_is_a_named_error_not_a_panic() {
    let mut c = connect(Config::default(), ws::Config::default(), 8192);
    open(&mut c);
    exchange(&mut c, &server_info_answer());
    let (events, _) = exchange(&mut c, &ok(json!({})));
    assert_eq!(
        events[0].0,
        format!("{:?}", Ev::BadMessage(cfms::Error::Unsolicited))
    );
    assert_eq!(c.session().state(), State::Broken);
    assert!(!c.can_send());
}

#[test]
fn download_ciphertext_comes_out_as_data_events_when_the_chunk_streams_in_pieces() {
    // A streaming WebSocket with a small receive buffer: the file_chunk
    // arrives in pieces and is decoded into the session's buffer.
    let streaming = ws::Config {
        streaming: true,
        ..ws::Config::default()
    };
    let mut c = connect(Config::default(), streaming, 1024);
    open(&mut c);
    exchange(&mut c, &server_info_answer());

    let seq = c.download_file(Instant::from_secs(2), "task-1").unwrap();
    drain_tx(&mut c);
    let plain: Vec<u8> = (0..3000u32).map(|i| (i * 7) as u8).collect();
    let (key, iv) = ([3u8; 32], [4u8; 16]);
    let mut ciphertext = plain.clone();
    cfb8::Encryptor::<Aes256>::new(&key.into(), &iv.into()).encrypt(&mut ciphertext);
    let sha = |d: &[u8]| hex(&Sha256::digest(d));
    let header = json!({"action": "transfer_file", "data": {"sha256": sha(&plain),
        "file_size": 3000, "chunk_size": 2048, "total_chunks": 2}});
    let (events, sent) = exchange(&mut c, &text(&header.to_string()));
    assert!(events[0].0.starts_with("DownloadStarted"));
    assert_eq!(sent[0], Value::String("ready".into()));

    let mut received = Vec::new();
    for (i, r) in [(0, 0..2048), (1, 2048..3000)] {
        let iv_field = if i == 0 { b64(iv) } else { String::new() };
        let chunk = json!({"action": "file_chunk", "data": {"index": i,
            "hash": sha(&plain[r.clone()]), "iv": iv_field, "chunk": b64(&ciphertext[r])}});
        let (events, _) = exchange(&mut c, &text(&chunk.to_string()));
        assert!(
            events
                .iter()
                .filter(|e| e.0.starts_with("DownloadData"))
                .count()
                > 1
        );
        received.extend(events.iter().flat_map(|e| e.2.clone()));
        assert!(
            events
                .last()
                .unwrap()
                .0
                .starts_with(&format!("DownloadChunk {{ seq: {seq:?}, index: {i}"))
        );
    }
    assert_eq!(received, ciphertext);

    let key_msg = json!({"action": "aes_key", "data": {"key": b64(key)}});
    let (events, _) = exchange(&mut c, &text(&key_msg.to_string()));
    assert!(events[0].0.starts_with("DownloadFinished"));
    assert_eq!(c.session().chunk_hashes().len(), 2);
}

#[test]
fn an_upload_streams_its_frames_through_a_transmit_buffer_smaller_than_one_frame() {
    use naslink_core::cfms::{UploadSource, sha256_of};
    let mut c = connect_tx(config(false), ws::Config::default(), 8192, 1024);
    open(&mut c);
    exchange(&mut c, &server_info_answer());
    exchange(&mut c, &login_answer());
    let data: Vec<u8> = (0..20_000u32).map(|i| (i * 13 + i / 7) as u8).collect();
    let source = UploadSource {
        size: data.len() as u64,
        sha256: Some(sha256_of(&data)),
    };
    let seq = c
        .upload_file(Instant::from_secs(2), "task", source)
        .unwrap();
    drain_tx(&mut c);
    let waiting =
        json!({"action": "transfer_file", "data": {}, "message": "waiting for file transfer"});
    let (_, sent) = exchange(&mut c, &text(&waiting.to_string()));
    assert_eq!(sent[0]["data"]["file_size"], 20_000);
    let (events, _) = exchange(&mut c, &text("ready 4096"));
    assert_eq!(
        events[0].0,
        format!("UploadReady {{ seq: {seq:?}, frame_size: 4096 }}")
    );

    // Feed the file in 3000-byte reads; the 1 KiB buffer takes part of
    // each, and a frame spans many calls.
    let (mut offset, mut wire) = (0, Vec::new());
    while offset < data.len() {
        let end = (offset + 3000).min(data.len());
        offset += c
            .upload_write(Instant::from_secs(3), &data[offset..end])
            .unwrap();
        wire.extend(drain_tx(&mut c));
    }
    c.upload_write(Instant::from_secs(3), &[]).unwrap();
    wire.extend(drain_tx(&mut c));
    let frames = decode_client(&wire);
    let lens: Vec<usize> = frames.iter().map(|f| f.payload.len()).collect();
    assert_eq!(lens, [4096, 4096, 4096, 4096, 3616]);
    let sent: Vec<u8> = frames.into_iter().flat_map(|f| f.payload).collect();
    assert!(sent == data, "the frames carry the file in order");

    let (events, _) = exchange(&mut c, &ok(json!({})));
    assert_eq!(
        events[0].0,
        format!("UploadFinished {{ seq: {seq:?}, size: 20000 }}")
    );
}

#[test]
fn a_rejected_token_is_replaced_by_the_session_before_requests_go_on() {
    let mut c = connect(config(false), ws::Config::default(), 8192);
    open(&mut c);
    exchange(&mut c, &server_info_answer());
    exchange(&mut c, &login_answer());
    c.request(
        Instant::from_secs(2),
        "list_directory",
        br#"{"folder_id": null}"#,
    )
    .unwrap();
    drain_tx(&mut c);
    let rejected = text(r#"{"code": 401, "data": {}, "message": "Invalid user or token"}"#);
    let (events, sent) = exchange(&mut c, &rejected);
    assert!(events[0].0.starts_with("Reply"));
    assert_eq!(events[1].0, "TokenRejected { relogin: true }");
    assert_eq!(sent[0]["action"], "login");
    assert!(!c.can_send(), "requests wait for the new token");
    assert_eq!(
        c.request(Instant::from_secs(2), "list_directory", b"{}"),
        Err(cfms::Error::Busy)
    );
    let (events, _) = exchange(&mut c, &login_answer());
    assert!(events[0].0.starts_with("LoggedIn"));
    assert!(c.can_send());
}

#[test]
fn a_refused_opening_server_info_ends_the_sequence() {
    let mut c = connect(config(true), ws::Config::default(), 8192);
    open(&mut c);
    let refusal = text(r#"{"code": 500, "data": {}, "message": "Internal error"}"#);
    let (events, sent) = exchange(&mut c, &refusal);
    assert!(
        events[0]
            .0
            .starts_with("Reply { seq: Seq(0), status: ServerError")
    );
    assert!(sent.is_empty(), "no login without a protocol version");
    assert_eq!(c.session().state(), State::Refused);
    assert!(!c.can_send());
}

#[test]
fn credentials_never_show_in_debug() {
    let c = Credentials::new("admin", "hunter2-secret").unwrap();
    let shown = format!("{c:?} {:?}", config(true));
    assert!(!shown.contains("hunter2"), "{shown}");
    assert!(!shown.contains("admin"), "{shown}");
    assert!(Credentials::new("admin", &"x".repeat(200)).is_err());
}

/// Server messages made of CFMS words and structure, or raw bytes.
fn server_message() -> impl proptest::strategy::Strategy<Value = Vec<u8>> {
    use proptest::prelude::*;
    let atoms = prop_oneof![
        Just(&b"{"[..]),
        Just(&b"}"[..]),
        Just(&b"\""[..]),
        Just(&b":"[..]),
        Just(&b","[..]),
        Just(&b"\"code\": 200"[..]),
        Just(&b"\"code\": 202"[..]),
        Just(&b"\"data\":"[..]),
        Just(&b"\"action\": \"file_chunk\""[..]),
        Just(&b"\"action\": \"transfer_file\""[..]),
        Just(&b"\"chunk\": \"QUJD\""[..]),
        Just(&b"\"token\": \"t\""[..]),
        Just(&b"\"protocol_version\": 4"[..]),
        Just(&b"\\u00"[..]),
        Just(&b"ready"[..]),
    ];
    prop_oneof![
        prop::collection::vec(atoms, 0..24).prop_map(|a| a.concat()),
        prop::collection::vec(any::<u8>(), 0..64),
    ]
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(128))]

    /// Whatever the server sends after the upgrade, cut at whatever points,
    /// the connection answers with events or a named error, never a panic,
    /// and every input call makes progress.
    #[test]
    fn arbitrary_server_messages_cut_anywhere_never_panic_the_connection(
        messages in proptest::collection::vec(server_message(), 1..6),
        cut in 1usize..64,
        download in proptest::bool::ANY,
    ) {
        let streaming = ws::Config { streaming: true, ..ws::Config::default() };
        let mut c = connect(config(true), streaming, 1024);
        open(&mut c);
        exchange(&mut c, &server_info_answer());
        exchange(&mut c, &login_answer());
        exchange(&mut c, &ok(json!({})));
        if download {
            c.download_file(Instant::from_secs(2), "task").unwrap();
            drain_tx(&mut c);
        }
        let mut bytes = Vec::new();
        for m in &messages {
            match std::str::from_utf8(m) {
                Ok(t) => bytes.extend(text(t)),
                Err(_) => bytes.extend(ws_support::server_frame(true, 0, 2, m)),
            }
        }
        for piece in bytes.chunks(cut) {
            exchange(&mut c, piece);
        }
    }
}
