//! A whole `Connection<cfms::Session>` speaking CFMS protocol 13 against
//! scripted server frames: the probe and its two outcomes, a pinned
//! version, login, signed requests answered out of order, the lockdown
//! event, per-request deadlines, 1001 and 2FA, the way `cfms-13.md` and
//! the recordings describe them.

mod ws_support;

use naslink_core::cfms::p13::{Negotiated, Replay, Wire};
use naslink_core::cfms::{
    self, Buffers, Config, ConnectionEvent as Ev, Credentials, RequestError, State, Status,
};
use naslink_core::connection::{Connection, Event};
use naslink_core::time::{Duration, Instant};
use naslink_core::ws::{self, Url, frame::Opcode};
use serde_json::{Value, json};
use ws_support::{Counter, close_frame, decode_client, server_frame, switching_protocols};

type Session = cfms::Session<'static, 4>;
type Conn = Connection<Session, Vec<u8>, Counter>;

const T0: f64 = 1796324169.141;

fn session(config: Config) -> Session {
    let rx = Box::leak(vec![0u8; 16 * 1024].into_boxed_slice());
    let chunk_hashes = Box::leak(vec![[0u8; 32]; 8].into_boxed_slice());
    cfms::Session::new(config, Buffers { rx, chunk_hashes })
}

fn config(pinned: Option<u32>) -> Config {
    Config {
        login: Some(Credentials::new("admin", "Admin-Pass-123").unwrap()),
        // Ignored at 13: every connection gets events.
        listener: true,
        protocol_version: pinned,
        negotiate: pinned.is_none(),
        request_timeout: Duration::from_secs(10),
        // The protocol-13 server's own largest frame.
        upload_frame: 65536,
        ..Config::default()
    }
}

fn connect(session: Session) -> Conn {
    let url = Url::parse("ws://nas.local:5104/").unwrap();
    let ws = ws::Client::connect(
        Instant::ZERO,
        &url,
        &[],
        ws::Config::default(),
        Counter(0),
        vec![0u8; 65536],
        vec![0u8; 8192],
    )
    .unwrap();
    Connection::new(ws, session)
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

/// A frame the client sent: its WebSocket opcode, stream id, type, JSON.
#[derive(Debug)]
struct Out {
    opcode: Opcode,
    stream: u32,
    kind: u8,
    json: Value,
}

/// An event's debug text and a reply's whole response.
type Owned = (String, Option<Value>);

fn own(e: Event<'_, Session>) -> Owned {
    let body = match &e {
        Event::Session(
            Ev::Reply { response, .. }
            | Ev::LoggedIn { response, .. }
            | Ev::ServerInfo { response, .. },
        ) => Some(serde_json::from_slice(response.root().raw()).unwrap()),
        _ => None,
    };
    let name = match &e {
        Event::Session(s) => format!("{s:?}"),
        other => format!("{other:?}"),
    };
    (name, body)
}

/// Feed server bytes at `now`; returns the events and the frames sent.
fn exchange(c: &mut Conn, now: Instant, bytes: &[u8]) -> (Vec<Owned>, Vec<Out>) {
    let (mut events, mut sent) = (Vec::new(), Vec::new());
    let mut rest = bytes;
    loop {
        let n = c.handle_input(now, rest);
        rest = &rest[n..];
        sent.extend(drain_tx(c, now));
        while let Some(e) = c.poll_event() {
            events.push(own(e));
        }
        sent.extend(drain_tx(c, now));
        if rest.is_empty() {
            break;
        }
    }
    (events, decode(&sent))
}

fn decode(sent: &[u8]) -> Vec<Out> {
    decode_client(sent)
        .into_iter()
        .filter(|f| matches!(f.opcode, Opcode::Text | Opcode::Binary))
        .map(|f| match f.opcode {
            Opcode::Binary => Out {
                opcode: f.opcode,
                stream: u32::from_be_bytes(f.payload[..4].try_into().unwrap()),
                kind: f.payload[4],
                json: serde_json::from_slice(&f.payload[5..]).unwrap(),
            },
            _ => Out {
                opcode: f.opcode,
                stream: 0,
                kind: 0,
                json: serde_json::from_slice(&f.payload).unwrap(),
            },
        })
        .collect()
}

/// A binary frame from the server.
fn frame(stream: u32, conclusion: bool, json: Value) -> Vec<u8> {
    let mut p = stream.to_be_bytes().to_vec();
    p.push(conclusion as u8);
    p.extend(json.to_string().into_bytes());
    server_frame(true, 0, 2, &p)
}

fn answer(stream: u32, code: i64, data: Value, message: &str, ts: f64) -> Vec<u8> {
    frame(
        stream,
        true,
        json!({"code": code, "data": data, "message": message, "timestamp": ts}),
    )
}

fn server_info(stream: u32, version: u32) -> Vec<u8> {
    answer(
        stream,
        200,
        json!({"server_name": "CFMS WebSocket Server", "version": "0.3.0.260519_alpha", "protocol_version": version, "lockdown": false}),
        "Server information retrieved successfully",
        T0,
    )
}

fn login_ok(stream: u32) -> Vec<u8> {
    answer(
        stream,
        200,
        json!({"token": "eyJ.tok.en", "exp": T0 + 3600.0, "nickname": "管理员", "avatar_id": null, "permissions": [], "groups": []}),
        "Login successful",
        T0 + 0.3,
    )
}

/// Upgrade; returns the frames the session sent at once.
fn open(c: &mut Conn) -> Vec<Out> {
    let request = drain_tx(c, Instant::ZERO);
    let (events, sent) = exchange(c, Instant::ZERO, &switching_protocols(&request));
    assert_eq!(events[0].0, "Connected");
    sent
}

/// A session logged in over protocol 13 (negotiated), at 1 s.
fn logged_in() -> Conn {
    let mut c = connect(session(config(None)));
    let sent = open(&mut c);
    assert_eq!(sent.len(), 1);
    let (_, sent) = exchange(&mut c, Instant::from_secs(1), &server_info(1, 13));
    assert_eq!(sent[0].stream, 3);
    let (events, _) = exchange(&mut c, Instant::from_secs(1), &login_ok(3));
    assert!(events[0].0.starts_with("LoggedIn"), "{events:?}");
    assert_eq!(c.session().state(), State::Ready);
    c
}

fn list_root(c: &mut Conn, now: Instant) -> cfms::Seq {
    c.command(now, |s, now, buf| {
        s.list_directory(now, Some(cfms::p13::ROOT_FOLDER), buf)
    })
    .unwrap()
}

#[test]
fn the_probe_is_a_binary_server_info_on_stream_1_and_a_binary_answer_means_13() {
    let mut c = connect(session(config(None)));
    let sent = open(&mut c);
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].opcode, Opcode::Binary);
    assert_eq!((sent[0].stream, sent[0].kind), (1, 0));
    assert_eq!(sent[0].json, json!({"action": "server_info", "data": {}}));

    let (events, sent) = exchange(&mut c, Instant::from_secs(1), &server_info(1, 13));
    assert!(
        events[0]
            .0
            .starts_with("ServerInfo { seq: None, protocol_version: 13")
    );
    assert_eq!(
        c.session().negotiated(),
        Some(Negotiated::Framed {
            protocol_version: 13,
            lockdown: false
        })
    );
    assert_eq!(c.session().protocol_version(), Some(13));
    // Login: odd id 3, PROCESS, unsigned (a stale token would fail it).
    assert_eq!(
        (sent[0].opcode, sent[0].stream, sent[0].kind),
        (Opcode::Binary, 3, 0)
    );
    assert_eq!(
        sent[0].json,
        json!({"action": "login", "data": {"username": "admin", "password": "Admin-Pass-123"}})
    );
    let (_, sent) = exchange(&mut c, Instant::from_secs(1), &login_ok(3));
    // No register_listener at 13.
    assert!(sent.is_empty());
    assert_eq!(c.session().state(), State::Ready);
}

#[test]
fn a_close_at_the_probe_means_3_to_5_and_the_same_session_reconnects_speaking_text() {
    let mut c = connect(session(config(None)));
    open(&mut c);
    let (events, _) = exchange(&mut c, Instant::from_secs(1), &close_frame(1000, b""));
    assert!(
        events.iter().any(|e| e.0.starts_with("Closed")),
        "{events:?}"
    );
    let (session, _, _) = c.into_parts();
    assert_eq!(session.negotiated(), Some(Negotiated::Text));
    assert_eq!(session.wire(), Wire::Text);
    let mut c = connect(session);
    let sent = open(&mut c);
    assert_eq!(sent[0].opcode, Opcode::Text);
    assert_eq!(sent[0].json["action"], "server_info");
}

#[test]
fn a_close_of_our_own_after_a_silent_probe_does_not_mean_3_to_5() {
    // A protocol-13 server that never answers the probe: the client gives
    // up (the probe's deadline), closes, and the server echoes the Close.
    let mut c = connect(session(config(None)));
    open(&mut c);
    let late = Instant::from_secs(11);
    c.handle_timeout(late);
    let mut events = Vec::new();
    while let Some(e) = c.poll_event() {
        events.push(own(e));
    }
    assert!(
        events.iter().any(|e| e.0.starts_with("Desynchronized")),
        "{events:?}"
    );
    c.ws_mut().close(late, ws::CloseCode::NORMAL, "").unwrap();
    drain_tx(&mut c, late);
    let (events, _) = exchange(&mut c, late, &close_frame(1000, b""));
    assert!(
        events.iter().any(|e| e.0.starts_with("Closed")),
        "{events:?}"
    );
    let (session, _, _) = c.into_parts();
    // Nothing learned: the next connection probes again.
    assert_eq!(session.negotiated(), None);
    assert_eq!(session.wire(), Wire::Framed);
    let mut c = connect(session);
    let sent = open(&mut c);
    assert_eq!(sent[0].opcode, Opcode::Binary);
    assert_eq!((sent[0].stream, sent[0].kind), (1, 0));
}

#[test]
fn the_transport_ending_at_the_probe_also_means_3_to_5() {
    let mut c = connect(session(config(None)));
    open(&mut c);
    c.handle_eof(Instant::from_secs(1));
    while c.poll_event().is_some() {}
    let (session, _, _) = c.into_parts();
    assert_eq!(session.negotiated(), Some(Negotiated::Text));
}

#[test]
fn a_pinned_13_skips_the_probe_and_other_pins_are_refused_by_name() {
    let mut c = connect(session(config(Some(13))));
    let sent = open(&mut c);
    assert_eq!((sent[0].opcode, sent[0].stream), (Opcode::Binary, 1));
    exchange(&mut c, Instant::from_secs(1), &server_info(1, 13));
    assert_eq!(c.session().negotiated(), None);
    assert_eq!(c.session().protocol_version(), Some(13));

    for v in [6, 12, 14] {
        let s = session(config(Some(v)));
        assert_eq!(s.state(), State::Refused);
        let e = cfms::Error::ProtocolUnsupported { version: Some(v) };
        assert!(e.to_string().contains(&format!("protocol {v}")));
    }
}

#[test]
fn a_remembered_13_contradicted_by_a_close_is_forgotten_and_the_next_connection_probes() {
    // A version remembered from an earlier run is a pin to the session; a
    // 3-5 server closes at the first frame. The adapter forgets it.
    let mut c = connect(session(Config {
        negotiate: true,
        ..config(Some(13))
    }));
    open(&mut c);
    exchange(&mut c, Instant::from_secs(1), &close_frame(1000, b""));
    let (mut session, _, _) = c.into_parts();
    // A pin learns nothing from the close by itself.
    assert_eq!(session.negotiated(), None);
    session.forget_protocol();
    assert_eq!(session.wire(), Wire::Framed);
    let mut c = connect(session);
    let sent = open(&mut c);
    assert_eq!((sent[0].opcode, sent[0].stream), (Opcode::Binary, 1));
    // This time the close is the probe's answer: speak text.
    exchange(&mut c, Instant::from_secs(2), &close_frame(1000, b""));
    let (session, _, _) = c.into_parts();
    assert_eq!(session.negotiated(), Some(Negotiated::Text));
    assert_eq!(session.wire(), Wire::Text);
}

#[test]
fn a_remembered_text_version_forgotten_probes_with_a_frame() {
    let mut s = session(Config {
        negotiate: true,
        ..config(Some(3))
    });
    assert_eq!(s.wire(), Wire::Text);
    s.forget_protocol();
    let mut c = connect(s);
    let sent = open(&mut c);
    assert_eq!((sent[0].opcode, sent[0].stream), (Opcode::Binary, 1));
    exchange(&mut c, Instant::from_secs(1), &server_info(1, 13));
    assert_eq!(c.session().protocol_version(), Some(13));
    assert!(matches!(
        c.session().negotiated(),
        Some(Negotiated::Framed { .. })
    ));
}

#[test]
fn a_framed_server_announcing_another_version_is_refused() {
    let mut c = connect(session(config(None)));
    open(&mut c);
    let (events, _) = exchange(&mut c, Instant::from_secs(1), &server_info(1, 12));
    assert!(
        events[0]
            .0
            .contains("ProtocolUnsupported { version: Some(12) }"),
        "{events:?}"
    );
    assert_eq!(c.session().state(), State::Refused);
}

#[test]
fn signed_requests_carry_a_fresh_nonce_and_the_server_clock_and_answers_match_by_stream() {
    let mut c = logged_in();
    let now = Instant::from_secs(3);
    let a = list_root(&mut c, now);
    let b = c
        .request(now, "get_document_info", br#"{"document_id":"x"}"#)
        .unwrap();
    let sent = decode(&drain_tx(&mut c, now));
    assert_eq!(sent.iter().map(|s| s.stream).collect::<Vec<_>>(), [5, 7]);
    for s in &sent {
        assert_eq!((s.opcode, s.kind), (Opcode::Binary, 0));
        assert_eq!(s.json["username"], "admin");
        assert_eq!(s.json["token"], "eyJ.tok.en");
        let nonce = s.json["nonce"].as_str().unwrap();
        assert_eq!(nonce.len(), 32);
        assert!(nonce.bytes().all(|b| b.is_ascii_hexdigit()));
        // The login answer said T0 + 0.3 at 1 s; 2 s later:
        let ts = s.json["timestamp"].as_f64().unwrap();
        assert!((ts - (T0 + 2.3)).abs() < 0.002, "{ts}");
    }
    assert_ne!(sent[0].json["nonce"], sent[1].json["nonce"]);
    assert_eq!(sent[0].json["data"], json!({"folder_id": "/"}));

    // Answered in the other order.
    let mut bytes = answer(7, 404, json!({}), "Document not found", T0 + 2.4);
    bytes.extend(answer(
        5,
        200,
        json!({"parent_id": null, "documents": [], "folders": []}),
        "ok",
        T0 + 2.5,
    ));
    let (events, _) = exchange(&mut c, now, &bytes);
    assert_eq!(events.len(), 2, "{events:?}");
    assert!(
        events[0]
            .0
            .starts_with(&format!("Reply {{ seq: {b:?}, status: NotFound"))
    );
    assert!(
        events[1]
            .0
            .starts_with(&format!("Reply {{ seq: {a:?}, status: Ok"))
    );
    assert_eq!(events[1].1.as_ref().unwrap()["data"]["folders"], json!([]));
}

#[test]
fn the_lockdown_event_on_an_even_stream_is_the_same_event_3_to_5_give() {
    let mut c = logged_in();
    let e = frame(
        2,
        true,
        json!({"event": "lockdown", "data": {"status": true}}),
    );
    let (events, _) = exchange(&mut c, Instant::from_secs(2), &e);
    assert_eq!(events[0].0, "Lockdown { on: true }");
    assert_eq!(c.session().lockdown(), Some(true));
    // Unknown events are ignored.
    let e = frame(4, true, json!({"event": "quota", "data": {}}));
    let (events, _) = exchange(&mut c, Instant::from_secs(2), &e);
    assert!(events.is_empty());
}

#[test]
fn an_unanswered_request_fails_alone_and_its_id_is_never_reused() {
    let mut c = logged_in();
    let lost = list_root(&mut c, Instant::from_secs(2));
    drain_tx(&mut c, Instant::from_secs(2));
    assert_eq!(c.poll_timeout(), Some(Instant::from_secs(12)));
    c.handle_timeout(Instant::from_secs(12));
    let mut events = Vec::new();
    while let Some(e) = c.poll_event() {
        events.push(own(e).0);
    }
    assert_eq!(
        events,
        [format!(
            "RequestFailed {{ seq: {lost:?}, error: {:?} }}",
            RequestError::Timeout
        )]
    );
    assert!(c.can_send(), "a lost answer does not break the connection");
    // The late answer belongs to nobody.
    let (events, _) = exchange(
        &mut c,
        Instant::from_secs(13),
        &answer(5, 200, json!({}), "", T0),
    );
    assert!(events.is_empty(), "{events:?}");
    list_root(&mut c, Instant::from_secs(13));
    let sent = decode(&drain_tx(&mut c, Instant::from_secs(13)));
    assert_eq!(sent[0].stream, 7);
}

#[test]
fn code_1001_is_typed_and_says_which_replay_check_refused() {
    let mut c = logged_in();
    list_root(&mut c, Instant::from_secs(2));
    drain_tx(&mut c, Instant::from_secs(2));
    let refusal = answer(
        5,
        1001,
        json!({}),
        "Duplicate nonce detected: possible replay attack",
        T0 + 1.0,
    );
    let mut kinds = Vec::new();
    let mut rest = &refusal[..];
    while !rest.is_empty() {
        let n = c.handle_input(Instant::from_secs(2), rest);
        rest = &rest[n..];
        while let Some(e) = c.poll_event() {
            if let Event::Session(Ev::Reply {
                status, response, ..
            }) = e
            {
                assert_eq!(status, Status::Replay);
                kinds.push(Replay::of(&response));
            }
        }
    }
    assert_eq!(kinds, [Some(Replay::DuplicateNonce)]);
}

#[test]
fn two_factor_202_then_the_code_on_a_new_stream() {
    let mut c = connect(session(config(Some(13))));
    open(&mut c);
    exchange(&mut c, Instant::from_secs(1), &server_info(1, 13));
    let (events, _) = exchange(
        &mut c,
        Instant::from_secs(1),
        &answer(
            3,
            202,
            json!({"method": "totp"}),
            "Two-factor authentication required",
            T0,
        ),
    );
    assert!(events[0].0.starts_with("TwoFactorRequired"), "{events:?}");
    c.submit_two_factor(Instant::from_secs(2), "123456")
        .unwrap();
    let sent = decode(&drain_tx(&mut c, Instant::from_secs(2)));
    assert_eq!(sent[0].stream, 5);
    assert_eq!(sent[0].json["data"]["2fa_token"], "123456");
    assert!(sent[0].json.get("nonce").is_none());
}

/// All frames the client sent, raw: (stream, type, payload).
fn raw_frames(sent: &[u8]) -> Vec<(u32, u8, Vec<u8>)> {
    decode_client(sent)
        .into_iter()
        .filter(|f| f.opcode == Opcode::Binary)
        .map(|f| {
            (
                u32::from_be_bytes(f.payload[..4].try_into().unwrap()),
                f.payload[4],
                f.payload[5..].to_vec(),
            )
        })
        .collect()
}

/// Start an upload of `data` on stream 5 up to `ready`; returns the
/// upload's seq and what the server was told.
fn start_upload(c: &mut Conn, data: &[u8], ready: Option<u32>) -> (cfms::Seq, Value) {
    let source = cfms::UploadSource {
        size: data.len() as u64,
        sha256: Some(cfms::sha256_of(data)),
    };
    let seq = c
        .upload_file(Instant::from_secs(2), "task-1", source)
        .unwrap();
    let sent = raw_frames(&drain_tx(c, Instant::from_secs(2)));
    assert_eq!(sent[0].0, 5);
    let waiting = frame(
        5,
        false,
        json!({"action": "transfer_file", "data": {}, "message": "waiting for file transfer"}),
    );
    let (_, sent) = exchange(c, Instant::from_secs(2), &waiting);
    assert_eq!(
        (sent[0].opcode, sent[0].stream, sent[0].kind),
        (Opcode::Binary, 5, 0)
    );
    let header = sent[0].json.clone();
    if let Some(chunk) = ready {
        let mut p = 5u32.to_be_bytes().to_vec();
        p.push(0);
        p.extend(format!("ready {chunk}").into_bytes());
        let (events, _) = exchange(c, Instant::from_secs(2), &server_frame(true, 0, 2, &p));
        assert!(events[0].0.starts_with("UploadReady"), "{events:?}");
    }
    (seq, header)
}

/// Feed the whole file; returns the data frames sent, as (stream, type, len).
fn send_file(c: &mut Conn, data: &[u8]) -> Vec<(u32, u8, usize)> {
    let mut out = Vec::new();
    let mut rest = data;
    loop {
        let n = c.upload_write(Instant::from_secs(3), rest).unwrap();
        rest = &rest[n..];
        out.extend(drain_tx(c, Instant::from_secs(3)));
        if rest.is_empty() && n == 0 {
            // One more call ends a file that fills its last frame.
            let n = c.upload_write(Instant::from_secs(3), rest).unwrap();
            out.extend(drain_tx(c, Instant::from_secs(3)));
            assert_eq!(n, 0);
            break;
        }
    }
    raw_frames(&out)
        .into_iter()
        .map(|(s, t, p)| (s, t, p.len()))
        .collect()
}

fn verdict(stream: u32) -> Vec<u8> {
    answer(
        stream,
        200,
        json!({}),
        "File received successfully",
        T0 + 3.0,
    )
}

#[test]
fn an_upload_sends_frames_of_exactly_the_ready_size_on_its_stream() {
    let mut c = logged_in();
    let data: Vec<u8> = (0..70000u32).map(|i| i as u8).collect();
    let (seq, header) = start_upload(&mut c, &data, Some(65536));
    assert_eq!(header["action"], "transfer_file");
    assert_eq!(header["data"]["file_size"], 70000);
    assert!(header["data"]["max_chunk_size"].as_u64().unwrap() >= 512);
    assert_eq!(send_file(&mut c, &data), [(5, 0, 65536), (5, 0, 4464)]);
    let (events, _) = exchange(&mut c, Instant::from_secs(3), &verdict(5));
    assert_eq!(
        events[0].0,
        format!("UploadFinished {{ seq: {seq:?}, size: 70000 }}")
    );
    assert!(c.can_send());
}

#[test]
fn an_upload_that_fills_its_last_frame_ends_with_an_empty_frame() {
    let mut c = logged_in();
    let data = vec![7u8; 65536];
    start_upload(&mut c, &data, Some(65536));
    assert_eq!(send_file(&mut c, &data), [(5, 0, 65536), (5, 0, 0)]);
    let (events, _) = exchange(&mut c, Instant::from_secs(3), &verdict(5));
    assert!(events[0].0.starts_with("UploadFinished"), "{events:?}");
}

#[test]
fn an_empty_upload_is_stored_when_stop_is_followed_by_silence() {
    let mut c = logged_in();
    let (seq, _) = start_upload(&mut c, b"", None);
    let mut p = 5u32.to_be_bytes().to_vec();
    p.push(0);
    p.extend(b"stop");
    let (events, sent) = exchange(&mut c, Instant::from_secs(2), &server_frame(true, 0, 2, &p));
    assert!(events.is_empty() && sent.is_empty(), "{events:?}");
    assert_eq!(c.poll_timeout(), Some(Instant::from_secs(4)));
    c.handle_timeout(Instant::from_secs(4));
    let e = own(c.poll_event().unwrap()).0;
    assert_eq!(e, format!("UploadFinished {{ seq: {seq:?}, size: 0 }}"));
    assert!(c.can_send());
}

#[test]
fn an_empty_upload_fails_when_a_conclusion_follows_stop() {
    let mut c = logged_in();
    start_upload(&mut c, b"", None);
    let mut p = 5u32.to_be_bytes().to_vec();
    p.push(0);
    p.extend(b"stop");
    exchange(&mut c, Instant::from_secs(2), &server_frame(true, 0, 2, &p));
    let fault = answer(
        5,
        500,
        json!({"log_id": "46b4"}),
        "Internal server error",
        T0,
    );
    let (events, _) = exchange(&mut c, Instant::from_secs(3), &fault);
    assert!(events[0].0.starts_with("UploadFailed"), "{events:?}");
    assert!(events[0].0.contains("ServerError"), "{events:?}");
}

#[test]
fn an_answer_larger_than_the_receive_buffer_fails_only_its_request() {
    let rx = Box::leak(vec![0u8; 512].into_boxed_slice());
    let chunk_hashes = Box::leak(vec![[0u8; 32]; 1].into_boxed_slice());
    let s = cfms::Session::new(config(Some(13)), Buffers { rx, chunk_hashes });
    // A streaming WebSocket hands the session messages in pieces.
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
        vec![0u8; 1024],
        vec![0u8; 8192],
    )
    .unwrap();
    let mut c: Conn = Connection::new(ws, s);
    open(&mut c);
    exchange(&mut c, Instant::from_secs(1), &server_info(1, 13));
    exchange(&mut c, Instant::from_secs(1), &login_ok(3));
    let big = list_root(&mut c, Instant::from_secs(2));
    let small = list_root(&mut c, Instant::from_secs(2));
    drain_tx(&mut c, Instant::from_secs(2));
    let names: Vec<Value> = (0..200)
        .map(|i| json!({"id": format!("{i:032}"), "name": "x"}))
        .collect();
    let mut bytes = answer(5, 200, json!({"folders": names, "documents": []}), "ok", T0);
    bytes.extend(answer(
        7,
        200,
        json!({"folders": [], "documents": []}),
        "ok",
        T0,
    ));
    let (events, _) = exchange(&mut c, Instant::from_secs(2), &bytes);
    let names: Vec<&str> = events.iter().map(|e| e.0.as_str()).collect();
    assert!(
        names[0].starts_with(&format!(
            "RequestFailed {{ seq: {big:?}, error: ResponseTooLarge"
        )),
        "{names:?}"
    );
    assert!(
        names[1].starts_with(&format!("Reply {{ seq: {small:?}, status: Ok")),
        "{names:?}"
    );
    assert!(c.can_send());
}
