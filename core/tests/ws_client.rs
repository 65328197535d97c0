//! RFC 6455 client rules, one test each, driven through the public API.

mod ws_support;

use naslink_core::time::{Duration, Instant};
use naslink_core::ws::frame::Opcode;
use naslink_core::ws::handshake::{HandshakeError, Url};
use naslink_core::ws::{
    Client, CloseCode, Closed, Config, ConnectError, Error, Event, MessageKind, ProtocolError,
    SendError, State,
};
use ws_support::*;

const BIG: usize = 4096;

fn buffers() -> (Vec<u8>, Vec<u8>) {
    (vec![0; BIG], vec![0; BIG])
}

fn failed(e: ProtocolError) -> Ev {
    Ev::Closed(Closed::Failed(Error::Protocol(e)))
}

// ------------------------------------------------------------- handshake

#[test]
fn request_is_an_http11_upgrade_for_the_url() {
    let (mut rx, mut tx) = buffers();
    let url = Url::parse(URL).unwrap();
    let mut c = Client::connect(
        Instant::ZERO,
        &url,
        &[("Cookie", "trim=1")],
        Config::default(),
        Counter(0),
        &mut rx,
        &mut tx,
    )
    .unwrap();
    let request = String::from_utf8(drain_tx(&mut c)).unwrap();
    assert!(request.starts_with("GET /websocket?type=main HTTP/1.1\r\nHost: nas.local:5666\r\n"));
    assert!(request.contains("\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"));
    assert!(request.contains("\r\nSec-WebSocket-Version: 13\r\n"));
    assert!(request.ends_with("Cookie: trim=1\r\n\r\n"));
    // Counter entropy: the nonce is bytes 1..=16.
    let key = naslink_core::ws::handshake::key_from_nonce(core::array::from_fn(|i| i as u8 + 1));
    assert!(request.contains(&format!(
        "Sec-WebSocket-Key: {}\r\n",
        std::str::from_utf8(&key).unwrap()
    )));
    assert_eq!(c.state(), State::Handshaking);
}

#[test]
fn connect_refuses_a_transmit_buffer_too_small_for_the_request() {
    let mut rx = vec![0; BIG];
    let mut tx = vec![0; 40];
    let url = Url::parse(URL).unwrap();
    let err = Client::connect(
        Instant::ZERO,
        &url,
        &[],
        Config::default(),
        Counter(0),
        &mut rx,
        &mut tx,
    )
    .unwrap_err();
    assert!(matches!(err, ConnectError::Request(_)));
}

#[test]
fn bytes_after_the_101_belong_to_the_first_frame() {
    let (mut rx, mut tx) = buffers();
    let mut c = connect(Config::default(), &mut rx, &mut tx);
    let mut wire = switching_protocols(&drain_tx(&mut c));
    wire.extend(text("first"));
    let (mut events, mut sent) = (Vec::new(), Vec::new());
    feed(&mut c, &wire, &mut events, &mut sent);
    assert_eq!(events, [Ev::Connected, Ev::Text("first".into())]);
}

#[test]
fn response_split_at_every_position_is_partial_then_accepted() {
    for cut in 0..=200 {
        let (mut rx, mut tx) = buffers();
        let mut c = connect(Config::default(), &mut rx, &mut tx);
        let mut wire = switching_protocols(&drain_tx(&mut c));
        wire.extend(text("hi"));
        let cut = cut.min(wire.len());
        let (mut events, mut sent) = (Vec::new(), Vec::new());
        feed(&mut c, &wire[..cut], &mut events, &mut sent);
        feed(&mut c, &wire[cut..], &mut events, &mut sent);
        assert_eq!(
            events,
            [Ev::Connected, Ev::Text("hi".into())],
            "cut at {cut}"
        );
    }
}

fn answer(c: &mut Client<&mut [u8], Counter>, response: &str) -> Vec<Ev> {
    let (mut events, mut sent) = (Vec::new(), Vec::new());
    feed(c, response.as_bytes(), &mut events, &mut sent);
    events.extend(drain_events(c));
    events
}

#[test]
fn wrong_accept_fails_the_handshake() {
    let (mut rx, mut tx) = buffers();
    let mut c = connect(Config::default(), &mut rx, &mut tx);
    drain_tx(&mut c);
    let events = answer(
        &mut c,
        "HTTP/1.1 101 OK\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n",
    );
    assert_eq!(
        events,
        [Ev::Closed(Closed::Failed(Error::Handshake(
            HandshakeError::WrongAccept
        )))]
    );
    assert_eq!(c.state(), State::Closed);
}

fn with_header(c: &mut Client<&mut [u8], Counter>, extra: &str) -> Vec<Ev> {
    let request = drain_tx(c);
    let ok = String::from_utf8(switching_protocols(&request)).unwrap();
    let response = ok.replacen("\r\n\r\n", &format!("\r\n{extra}\r\n\r\n"), 1);
    answer(c, &response)
}

#[test]
fn unoffered_extension_or_subprotocol_fails_the_handshake() {
    let (mut rx, mut tx) = buffers();
    let mut c = connect(Config::default(), &mut rx, &mut tx);
    assert_eq!(
        with_header(&mut c, "Sec-WebSocket-Extensions: permessage-deflate"),
        [Ev::Closed(Closed::Failed(Error::Handshake(
            HandshakeError::UnofferedExtension
        )))]
    );
    let (mut rx, mut tx) = buffers();
    let mut c = connect(Config::default(), &mut rx, &mut tx);
    assert_eq!(
        with_header(&mut c, "Sec-WebSocket-Protocol: chat"),
        [Ev::Closed(Closed::Failed(Error::Handshake(
            HandshakeError::UnofferedSubprotocol
        )))]
    );
}

#[test]
fn missing_upgrade_or_connection_fails_the_handshake() {
    let (mut rx, mut tx) = buffers();
    let mut c = connect(Config::default(), &mut rx, &mut tx);
    drain_tx(&mut c);
    let events = answer(&mut c, "HTTP/1.1 101 OK\r\nConnection: Upgrade\r\n\r\n");
    assert_eq!(
        events,
        [Ev::Closed(Closed::Failed(Error::Handshake(
            HandshakeError::MissingUpgrade
        )))]
    );
    let (mut rx, mut tx) = buffers();
    let mut c = connect(Config::default(), &mut rx, &mut tx);
    drain_tx(&mut c);
    let events = answer(&mut c, "HTTP/1.1 101 OK\r\nUpgrade: WebSocket\r\n\r\n");
    assert_eq!(
        events,
        [Ev::Closed(Closed::Failed(Error::Handshake(
            HandshakeError::MissingConnectionUpgrade
        )))]
    );
}

#[test]
fn redirect_is_reported_with_its_location() {
    let (mut rx, mut tx) = buffers();
    let mut c = connect(Config::default(), &mut rx, &mut tx);
    drain_tx(&mut c);
    let n = c.handle_input(
        Instant::ZERO,
        b"HTTP/1.1 302 Found\r\nLocation: wss://nas.local/ws\r\n\r\n",
    );
    assert!(n > 0);
    match c.poll_event() {
        Some(Event::Rejected(r)) => {
            assert!(r.is_redirect());
            assert_eq!(r.location(), Some("wss://nas.local/ws"));
        }
        other => panic!("expected a rejection, got {other:?}"),
    }
    assert!(matches!(
        c.poll_event(),
        Some(Event::Closed(Closed::Failed(Error::Handshake(
            HandshakeError::Rejected(302)
        ))))
    ));
    assert_eq!(c.poll_event(), None);
}

#[test]
fn unauthorized_exposes_the_access_code_challenge_header() {
    let (mut rx, mut tx) = buffers();
    let mut c = connect(Config::default(), &mut rx, &mut tx);
    drain_tx(&mut c);
    c.handle_input(
        Instant::ZERO,
        b"HTTP/1.1 401 Unauthorized\r\nServer: nginx\r\nX-Trim-Safe-Code-Challenge: abc123\r\nContent-Length: 0\r\n\r\n",
    );
    match c.poll_event() {
        Some(Event::Rejected(r)) => {
            assert_eq!(r.status(), 401);
            assert_eq!(r.header("x-trim-safe-code-challenge"), Some(&b"abc123"[..]));
            assert_eq!(r.headers().count(), 3);
        }
        other => panic!("expected a rejection, got {other:?}"),
    }
}

#[test]
fn handshake_times_out() {
    let (mut rx, mut tx) = buffers();
    let config = Config {
        handshake_timeout: Duration::from_secs(3),
        ..Config::default()
    };
    let mut c = connect(config, &mut rx, &mut tx);
    assert_eq!(c.poll_timeout(), Some(Instant::from_secs(3)));
    c.handle_timeout(Instant::from_millis(2999));
    assert_eq!(c.state(), State::Handshaking);
    c.handle_timeout(Instant::from_secs(3));
    assert_eq!(drain_events(&mut c), [Ev::Closed(Closed::TimedOut)]);
}

// ---------------------------------------------------------------- receive

fn run(c: &mut Client<&mut [u8], Counter>, wire: &[u8]) -> (Vec<Ev>, Vec<u8>) {
    let (mut events, mut sent) = (Vec::new(), Vec::new());
    feed(c, wire, &mut events, &mut sent);
    events.extend(drain_events(c));
    sent.extend(drain_tx(c));
    (events, sent)
}

#[test]
fn fragmented_message_is_reassembled_with_interleaved_ping() {
    let (mut rx, mut tx) = buffers();
    let mut c = open(Config::default(), &mut rx, &mut tx);
    let mut wire = server_frame(false, 0, 1, b"Hel");
    wire.extend(server_frame(true, 0, 9, b"p"));
    wire.extend(server_frame(false, 0, 0, b"lo "));
    wire.extend(server_frame(true, 0, 0, "wörld".as_bytes()));
    let (events, sent) = run(&mut c, &wire);
    assert_eq!(
        events,
        [Ev::Ping(b"p".to_vec()), Ev::Text("Hello wörld".into())]
    );
    let frames = decode_client(&sent);
    assert_eq!(frames.len(), 1);
    assert_eq!(
        (frames[0].opcode, &frames[0].payload[..]),
        (Opcode::Pong, &b"p"[..])
    );
}

#[test]
fn every_split_position_gives_the_same_events() {
    let mut wire = server_frame(false, 0, 2, &[1, 2, 3]);
    wire.extend(server_frame(true, 0, 10, b"pong"));
    wire.extend(server_frame(true, 0, 0, &[4; 300]));
    wire.extend(text("ok"));
    let expected = {
        let (mut rx, mut tx) = buffers();
        let mut c = open(Config::default(), &mut rx, &mut tx);
        run(&mut c, &wire).0
    };
    assert_eq!(expected.len(), 3);
    for cut in 0..wire.len() {
        let (mut rx, mut tx) = buffers();
        let mut c = open(Config::default(), &mut rx, &mut tx);
        let (mut events, _) = run(&mut c, &wire[..cut]);
        events.extend(run(&mut c, &wire[cut..]).0);
        assert_eq!(events, expected, "cut at {cut}");
    }
}

#[test]
fn frame_split_inside_its_extended_length_header() {
    let (mut rx, mut tx) = buffers();
    let mut c = open(Config::default(), &mut rx, &mut tx);
    let wire = server_frame(true, 0, 2, &[7; 70_000][..1000]);
    let mut events = Vec::new();
    for byte in wire.chunks(1) {
        events.extend(run(&mut c, byte).0);
    }
    assert_eq!(events, [Ev::Binary(vec![7; 1000])]);
}

#[test]
fn zero_byte_final_continuation_ends_the_message() {
    let (mut rx, mut tx) = buffers();
    let mut c = open(Config::default(), &mut rx, &mut tx);
    let mut wire = server_frame(false, 0, 1, b"abc");
    wire.extend(server_frame(true, 0, 0, b""));
    assert_eq!(run(&mut c, &wire).0, [Ev::Text("abc".into())]);
}

#[test]
fn flood_of_empty_continuations_makes_progress_and_ends() {
    let (mut rx, mut tx) = buffers();
    let mut c = open(Config::default(), &mut rx, &mut tx);
    let mut wire = server_frame(false, 0, 2, b"");
    for _ in 0..10_000 {
        wire.extend(server_frame(false, 0, 0, b""));
    }
    wire.extend(server_frame(true, 0, 0, b"!"));
    assert_eq!(run(&mut c, &wire).0, [Ev::Binary(b"!".to_vec())]);
}

#[test]
fn empty_text_message_is_delivered() {
    let (mut rx, mut tx) = buffers();
    let mut c = open(Config::default(), &mut rx, &mut tx);
    assert_eq!(run(&mut c, &text("")).0, [Ev::Text(String::new())]);
}

fn rejected_with(wire: &[u8], error: ProtocolError, code: u16) {
    let (mut rx, mut tx) = buffers();
    let mut c = open(Config::default(), &mut rx, &mut tx);
    let (events, sent) = run(&mut c, wire);
    assert_eq!(events.last(), Some(&failed(error)), "{wire:x?}");
    assert_eq!(sent_close_code(&sent), Some(code), "{wire:x?}");
    assert_eq!(c.state(), State::Closed);
}

#[test]
fn masked_server_frame_is_a_protocol_error() {
    let mut wire = text("abcd");
    wire[1] |= 0x80;
    wire.splice(2..2, [0, 0, 0, 0]);
    rejected_with(&wire, ProtocolError::MaskedFrame, 1002);
}

#[test]
fn rsv_bits_without_extension_are_a_protocol_error() {
    for rsv in 1..8 {
        rejected_with(
            &server_frame(true, rsv, 1, b"x"),
            ProtocolError::ReservedBits(rsv),
            1002,
        );
    }
}

#[test]
fn reserved_opcodes_are_a_protocol_error() {
    for op in [3, 4, 5, 6, 7, 11, 12, 13, 14, 15] {
        rejected_with(
            &server_frame(true, 0, op, b""),
            ProtocolError::ReservedOpcode(op),
            1002,
        );
    }
}

#[test]
fn fragmented_control_frame_is_a_protocol_error() {
    rejected_with(
        &server_frame(false, 0, 9, b"x"),
        ProtocolError::FragmentedControlFrame,
        1002,
    );
}

#[test]
fn control_frame_over_125_bytes_is_a_protocol_error() {
    rejected_with(
        &server_frame(true, 0, 9, &[0; 126]),
        ProtocolError::ControlFrameTooLong(126),
        1002,
    );
}

#[test]
fn continuation_without_a_message_is_a_protocol_error() {
    rejected_with(
        &server_frame(true, 0, 0, b"x"),
        ProtocolError::UnexpectedContinuation,
        1002,
    );
}

#[test]
fn new_message_inside_a_fragmented_one_is_a_protocol_error() {
    let mut wire = server_frame(false, 0, 1, b"a");
    wire.extend(text("b"));
    rejected_with(&wire, ProtocolError::UnfinishedMessage, 1002);
}

#[test]
fn invalid_utf8_text_closes_with_1007() {
    rejected_with(
        &server_frame(true, 0, 1, b"\xce\xba\xed\xa0\x80"),
        ProtocolError::InvalidUtf8,
        1007,
    );
    // A text message ending inside a character is invalid too.
    rejected_with(
        &server_frame(true, 0, 1, b"ok\xe2\x82"),
        ProtocolError::InvalidUtf8,
        1007,
    );
}

#[test]
fn invalid_utf8_fails_before_the_frame_completes() {
    let (mut rx, mut tx) = buffers();
    let mut c = open(Config::default(), &mut rx, &mut tx);
    let wire = server_frame(true, 0, 1, b"valid\xf4\x90 and the rest never arrives");
    let (events, sent) = run(&mut c, &wire[..2 + 7]);
    assert_eq!(events, [failed(ProtocolError::InvalidUtf8)]);
    assert_eq!(sent_close_code(&sent), Some(1007));
}

#[test]
fn close_with_one_byte_payload_is_a_protocol_error() {
    rejected_with(
        &server_frame(true, 0, 8, &[3]),
        ProtocolError::CloseFrameTooShort,
        1002,
    );
}

#[test]
fn close_with_invalid_code_is_a_protocol_error() {
    for code in [0, 999, 1004, 1005, 1006, 1015, 1016, 2999, 5000] {
        rejected_with(
            &close_frame(code, b""),
            ProtocolError::InvalidCloseCode(code),
            1002,
        );
    }
}

#[test]
fn close_with_invalid_utf8_reason_closes_with_1007() {
    rejected_with(
        &close_frame(1000, b"\xff"),
        ProtocolError::InvalidUtf8,
        1007,
    );
}

#[test]
fn message_larger_than_the_buffer_closes_with_1009() {
    let (mut rx, mut tx) = (vec![0; 256], vec![0; BIG]);
    let mut c = open(Config::default(), &mut rx, &mut tx);
    let (events, sent) = run(&mut c, &server_frame(true, 0, 2, &[0; 257]));
    assert_eq!(
        events,
        [failed(ProtocolError::MessageTooBig { capacity: 256 })]
    );
    assert_eq!(sent_close_code(&sent), Some(1009));
}

#[test]
fn streaming_mode_delivers_whole_characters_in_chunks() {
    let (mut rx, mut tx) = (vec![0; 256], vec![0; BIG]);
    let config = Config {
        streaming: true,
        ..Config::default()
    };
    let mut c = open(config, &mut rx, &mut tx);
    // 255 ASCII bytes, then a 4-byte character across the buffer's end.
    let message = format!("{}𝄞{}", "a".repeat(255), "b".repeat(300));
    let mut wire = server_frame(false, 0, 1, &message.as_bytes()[..100]);
    wire.extend(server_frame(true, 0, 0, &message.as_bytes()[100..]));
    let events = run(&mut c, &wire).0;
    let mut joined = String::new();
    for (i, e) in events.iter().enumerate() {
        let Ev::TextChunk(data, first, last) = e else {
            panic!("not a chunk: {e:?}")
        };
        assert_eq!(*first, i == 0);
        assert_eq!(*last, i == events.len() - 1);
        joined.push_str(data);
    }
    assert_eq!(joined, message);
    assert_eq!(events[0], Ev::TextChunk("a".repeat(255), true, false));
}

#[test]
fn streaming_mode_delivers_small_messages_whole() {
    let (mut rx, mut tx) = (vec![0; 256], vec![0; BIG]);
    let config = Config {
        streaming: true,
        ..Config::default()
    };
    let mut c = open(config, &mut rx, &mut tx);
    assert_eq!(
        run(&mut c, &server_frame(true, 0, 2, &[5; 256])).0,
        [Ev::Binary(vec![5; 256])]
    );
}

// ------------------------------------------------------------------- send

#[test]
fn client_frames_are_masked_with_fresh_entropy() {
    let (mut rx, mut tx) = buffers();
    let mut c = open(Config::default(), &mut rx, &mut tx);
    c.send_text("hello").unwrap();
    c.send_binary(&[1, 2, 3]).unwrap();
    let sent = drain_tx(&mut c);
    let frames = decode_client(&sent);
    assert_eq!(
        frames[0],
        Sent {
            fin: true,
            opcode: Opcode::Text,
            payload: b"hello".to_vec()
        }
    );
    assert_eq!(
        frames[1],
        Sent {
            fin: true,
            opcode: Opcode::Binary,
            payload: vec![1, 2, 3]
        }
    );
    let first_mask = &sent[2..6];
    let second_mask = &sent[11 + 2..11 + 6];
    assert_ne!(first_mask, second_mask);
}

#[test]
fn send_before_open_is_refused() {
    let (mut rx, mut tx) = buffers();
    let mut c = connect(Config::default(), &mut rx, &mut tx);
    assert_eq!(c.send_text("x"), Err(SendError::NotOpen));
}

#[test]
fn fragmented_send_uses_continuation_frames() {
    let (mut rx, mut tx) = buffers();
    let mut c = open(Config::default(), &mut rx, &mut tx);
    c.send_fragment(MessageKind::Text, b"ab", false).unwrap();
    assert_eq!(c.send_text("x"), Err(SendError::MessageInProgress));
    c.send_fragment(MessageKind::Text, b"cd", false).unwrap();
    c.send_fragment(MessageKind::Text, b"e", true).unwrap();
    let frames = decode_client(&drain_tx(&mut c));
    let shape: Vec<_> = frames.iter().map(|f| (f.fin, f.opcode)).collect();
    assert_eq!(
        shape,
        [
            (false, Opcode::Text),
            (false, Opcode::Continuation),
            (true, Opcode::Continuation)
        ]
    );
}

#[test]
fn pong_goes_out_between_fragments_of_a_send() {
    let (mut rx, mut tx) = buffers();
    let mut c = open(Config::default(), &mut rx, &mut tx);
    c.send_fragment(MessageKind::Binary, &[1; 100], false)
        .unwrap();
    c.send_fragment(MessageKind::Binary, &[2; 100], true)
        .unwrap();
    // Part of the first fragment is already on the wire.
    let head = c.poll_transmit().unwrap()[..10].to_vec();
    c.advance_transmit(10);
    let (events, _) = {
        let mut events = Vec::new();
        let n = c.handle_input(Instant::ZERO, &server_frame(true, 0, 9, b"hb"));
        assert_eq!(n, 4);
        events.extend(drain_events(&mut c));
        (events, ())
    };
    assert_eq!(events, [Ev::Ping(b"hb".to_vec())]);
    let mut sent = head;
    sent.extend(drain_tx(&mut c));
    let order: Vec<_> = decode_client(&sent).iter().map(|f| f.opcode).collect();
    assert_eq!(order, [Opcode::Binary, Opcode::Pong, Opcode::Continuation]);
}

#[test]
fn streamed_binary_is_one_frame_masked_on_the_fly() {
    let (mut rx, mut tx) = (vec![0; 256], vec![0; 300]);
    let mut c = open(Config::default(), &mut rx, &mut tx);
    let payload: Vec<u8> = (0..5000u32).map(|i| (i * 31) as u8).collect();
    c.begin_binary(payload.len() as u64).unwrap();
    let mut sent = Vec::new();
    let mut rest = &payload[..];
    while !rest.is_empty() {
        let n = c.send_binary_part(&rest[..rest.len().min(77)]).unwrap();
        rest = &rest[n..];
        if n == 0 {
            sent.extend(drain_tx(&mut c));
        }
    }
    assert_eq!(c.binary_remaining(), 0);
    assert_eq!(
        c.send_binary_part(b"x"),
        Err(SendError::NoMessageInProgress)
    );
    sent.extend(drain_tx(&mut c));
    assert_eq!(
        decode_client(&sent),
        [Sent {
            fin: true,
            opcode: Opcode::Binary,
            payload
        }]
    );
}

#[test]
fn message_too_large_for_the_transmit_buffer_says_how_much_it_needs() {
    let (mut rx, mut tx) = (vec![0; 256], vec![0; 300]);
    let mut c = open(Config::default(), &mut rx, &mut tx);
    assert!(matches!(
        c.send_binary(&[0; 400]),
        Err(SendError::InsufficientSize(s)) if s.required == 408
    ));
}

#[test]
fn application_ping_is_sent_and_pong_reported() {
    let (mut rx, mut tx) = buffers();
    let mut c = open(Config::default(), &mut rx, &mut tx);
    c.send_ping(b"t1").unwrap();
    assert_eq!(c.send_ping(b"t2"), Err(SendError::PingPending));
    assert_eq!(
        c.send_ping(&[0; 126]),
        Err(SendError::ControlPayloadTooLong)
    );
    let frames = decode_client(&drain_tx(&mut c));
    assert_eq!(
        (frames[0].opcode, &frames[0].payload[..]),
        (Opcode::Ping, &b"t1"[..])
    );
    assert_eq!(
        run(&mut c, &server_frame(true, 0, 10, b"t1")).0,
        [Ev::Pong(b"t1".to_vec())]
    );
}

#[test]
fn second_ping_waits_until_the_first_pong_is_written() {
    let (mut rx, mut tx) = buffers();
    let mut c = open(Config::default(), &mut rx, &mut tx);
    let mut wire = server_frame(true, 0, 9, b"1");
    wire.extend(server_frame(true, 0, 9, b"2"));
    let n = c.handle_input(Instant::ZERO, &wire);
    assert_eq!(n, 3);
    assert_eq!(drain_events(&mut c), [Ev::Ping(b"1".to_vec())]);
    // The second header is taken into the header buffer, then input stops
    // while pong 1 is still queued.
    assert_eq!(c.handle_input(Instant::ZERO, &wire[3..]), 2);
    assert_eq!(
        c.handle_input(Instant::ZERO, &wire[5..]),
        0,
        "pong 1 is still queued"
    );
    assert_eq!(c.poll_event(), None);
    let sent = drain_tx(&mut c);
    assert_eq!(c.handle_input(Instant::ZERO, &wire[5..]), 1);
    assert_eq!(drain_events(&mut c), [Ev::Ping(b"2".to_vec())]);
    let mut all = sent;
    all.extend(drain_tx(&mut c));
    let pongs: Vec<_> = decode_client(&all).into_iter().map(|f| f.payload).collect();
    assert_eq!(pongs, [b"1".to_vec(), b"2".to_vec()]);
}

// ------------------------------------------------------------------ close

#[test]
fn server_close_is_echoed_then_closed_cleanly() {
    let (mut rx, mut tx) = buffers();
    let mut c = open(Config::default(), &mut rx, &mut tx);
    let (events, sent) = run(&mut c, &close_frame(1001, b"bye"));
    assert_eq!(
        events,
        [
            Ev::CloseReceived(Some(1001), "bye".into()),
            Ev::Closed(Closed::Clean {
                code: Some(CloseCode::GOING_AWAY)
            })
        ]
    );
    assert_eq!(sent_close_code(&sent), Some(1001));
    assert_eq!(c.state(), State::Closed);
}

#[test]
fn empty_server_close_is_answered_with_an_empty_close() {
    let (mut rx, mut tx) = buffers();
    let mut c = open(Config::default(), &mut rx, &mut tx);
    let (events, sent) = run(&mut c, &server_frame(true, 0, 8, b""));
    assert_eq!(events[0], Ev::CloseReceived(None, String::new()));
    let frames = decode_client(&sent);
    assert_eq!(
        (frames[0].opcode, frames[0].payload.len()),
        (Opcode::Close, 0)
    );
}

#[test]
fn queued_data_goes_out_before_the_close_echo() {
    let (mut rx, mut tx) = buffers();
    let mut c = open(Config::default(), &mut rx, &mut tx);
    c.send_text("last words").unwrap();
    let (_, sent) = run(&mut c, &close_frame(1000, b""));
    let order: Vec<_> = decode_client(&sent).iter().map(|f| f.opcode).collect();
    assert_eq!(order, [Opcode::Text, Opcode::Close]);
    assert_eq!(c.send_text("more"), Err(SendError::Closing));
}

#[test]
fn client_close_waits_for_the_server_close() {
    let (mut rx, mut tx) = buffers();
    let mut c = open(Config::default(), &mut rx, &mut tx);
    c.close(Instant::ZERO, CloseCode::NORMAL, "done").unwrap();
    assert_eq!(c.state(), State::Closing);
    assert_eq!(c.send_text("x"), Err(SendError::Closing));
    let frames = decode_client(&drain_tx(&mut c));
    assert_eq!(frames[0].payload, b"\x03\xe8done");
    // Data sent before the server saw our Close is still delivered.
    let (events, sent) = run(&mut c, &[text("late"), close_frame(1000, b"")].concat());
    assert!(sent.is_empty(), "no second Close");
    assert_eq!(
        events,
        [
            Ev::Text("late".into()),
            Ev::CloseReceived(Some(1000), String::new()),
            Ev::Closed(Closed::Clean {
                code: Some(CloseCode::NORMAL)
            })
        ]
    );
}

#[test]
fn client_close_times_out_without_a_server_close() {
    let (mut rx, mut tx) = buffers();
    let config = Config {
        close_timeout: Duration::from_secs(2),
        ..Config::default()
    };
    let mut c = open(config, &mut rx, &mut tx);
    c.close(Instant::from_secs(10), CloseCode::NORMAL, "")
        .unwrap();
    drain_tx(&mut c);
    assert_eq!(c.poll_timeout(), Some(Instant::from_secs(12)));
    c.handle_timeout(Instant::from_secs(12));
    assert_eq!(drain_events(&mut c), [Ev::Closed(Closed::TimedOut)]);
}

#[test]
fn close_refuses_codes_that_may_not_be_sent() {
    let (mut rx, mut tx) = buffers();
    let mut c = open(Config::default(), &mut rx, &mut tx);
    assert_eq!(
        c.close(Instant::ZERO, CloseCode::new(1005), ""),
        Err(SendError::InvalidCloseCode)
    );
    assert_eq!(
        c.close(Instant::ZERO, CloseCode::NORMAL, &"x".repeat(124)),
        Err(SendError::ControlPayloadTooLong)
    );
}

#[test]
fn eof_before_close_is_abnormal() {
    let (mut rx, mut tx) = buffers();
    let mut c = open(Config::default(), &mut rx, &mut tx);
    c.handle_eof(Instant::ZERO);
    assert_eq!(drain_events(&mut c), [Ev::Closed(Closed::Abnormal)]);
    assert_eq!(c.poll_transmit(), None);
}

#[test]
fn input_after_close_is_ignored() {
    let (mut rx, mut tx) = buffers();
    let mut c = open(Config::default(), &mut rx, &mut tx);
    let wire = [close_frame(1000, b""), text("ghost")].concat();
    let (events, _) = run(&mut c, &wire);
    assert!(!events.contains(&Ev::Text("ghost".into())));
    assert_eq!(c.handle_input(Instant::ZERO, b"junk"), 4);
}

#[test]
fn client_can_own_its_buffers_and_give_them_back() {
    let url = Url::parse(URL).unwrap();
    let mut c = Client::connect(
        Instant::ZERO,
        &url,
        &[],
        Config::default(),
        Counter(0),
        vec![0; 512],
        vec![0; 512],
    )
    .unwrap();
    assert!(c.poll_transmit().is_some());
    let (rx, tx) = c.into_buffers();
    assert_eq!((rx.len(), tx.len()), (512, 512));
}
