//! Robustness of the CFMS receive path: whatever the server sends, cut at
//! whatever points, the JSON view, the envelope, `ready N`, the streamed
//! download reader and the session as a whole answer with a value or a
//! named error, never a panic, and every call consumes its whole input.

mod cfms_support;
mod json_support;

use cfms_support::Harness;
use json_support::walk;
use naslink_core::cfms::{Event, Incoming, MessageKind, Response, UploadSource};
use proptest::prelude::*;
use serde_json::json;

/// JSON-ish text with CFMS words.
fn jsonish() -> impl Strategy<Value = Vec<u8>> {
    json_support::jsonish(&[
        b"\"action\":",
        b"\"code\":",
        b"\"data\":",
        b"\"file_chunk\"",
        b"\"aes_key\"",
        b"\"transfer_file\"",
        b"\"index\":",
        b"\"hash\":",
        b"\"chunk\":",
        b"\"key\":",
        b"\"iv\":",
        b"QUJD",
    ])
}

/// Feed one message in pieces, drain transmit and events; returns the events.
fn feed(h: &mut Harness, kind: MessageKind, msg: &[u8], cuts: &[usize]) -> Vec<Event> {
    let before = h.events.len();
    let mut bounds: Vec<usize> = cuts.iter().map(|c| c % (msg.len() + 1)).collect();
    bounds.sort_unstable();
    h.offer(kind, msg, &bounds);
    // Whatever the session wants to send ends (through the connection's path).
    h.transmit();
    h.events[before..].to_vec()
}

/// A real `file_chunk` message for a 100-byte file of one chunk.
fn chunk_message() -> String {
    format!(
        r#"{{"action": "file_chunk", "data": {{"index": 0, "hash": "{}", "iv": "AAAAAAAAAAAAAAAAAAAAAA==", "chunk": "{}"}}}}"#,
        "ab".repeat(32),
        "QUJD".repeat(33) + "QQ=="
    )
}

/// A logged-in session in `state`: 0 idle, 1 request pending, 2 download
/// receiving, 3 upload awaiting `ready`.
fn session_in(state: u8) -> Harness {
    let mut h = Harness::logged_in(4);
    match state {
        1 => {
            h.req(|s, n, b| s.list_directory(n, None, b));
        }
        2 => {
            h.req(|s, n, b| s.download_file(n, "t", b));
            h.recv_json(
                json!({"action": "transfer_file", "data": {"sha256": "ab".repeat(32),
                "file_size": 100, "chunk_size": 100, "total_chunks": 1}}),
            );
            h.transmit();
        }
        3 => {
            let source = UploadSource {
                size: 5,
                sha256: None,
            };
            h.req(|s, n, b| s.upload_file(n, "t", source, b));
            h.recv_json(json!({"action": "transfer_file", "data": {}}));
            h.transmit();
        }
        _ => {}
    }
    h
}

/// Messages a broken or hostile server might send.
fn server_message() -> impl Strategy<Value = (MessageKind, Vec<u8>)> {
    let mutated_chunk = (
        prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..4),
        any::<prop::sample::Index>(),
    )
        .prop_map(|(edits, cut)| {
            let mut m = chunk_message().into_bytes();
            for (at, b) in edits {
                let i = at.index(m.len());
                m[i] = b;
            }
            let keep = cut.index(m.len() + 1).max(m.len() / 2);
            m.truncate(keep);
            m
        });
    prop_oneof![
        3 => jsonish().prop_map(|m| (MessageKind::Text, m)),
        2 => mutated_chunk.prop_map(|m| (MessageKind::Text, m)),
        1 => "ready( [0-9]{0,12}| .{0,8})?|stop".prop_map(|m| (MessageKind::Text, m.into_bytes())),
        1 => prop::collection::vec(any::<u8>(), 0..64).prop_map(|m| (MessageKind::Binary, m)),
        1 => Just((MessageKind::Text, br#"{"code": 200, "data": {}, "message": "ok"}"#.to_vec())),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn arbitrary_messages_never_panic_the_envelope(text in jsonish(), bytes in prop::collection::vec(any::<u8>(), 0..64)) {
        for kind in [MessageKind::Text, MessageKind::Binary] {
            for m in [&text, &bytes] {
                if let Ok(Incoming::Response(r)) = Incoming::parse(kind, m) {
                    let _ = (r.status(), r.message(), r.timestamp(), r.protocol_version(), r.validator());
                    walk(r.data(), 0);
                }
            }
        }
        let _ = Response::parse(&text);
    }

    #[test]
    fn ready_n_reads_exactly_a_u32_and_nothing_else(tail in "[0-9]{0,12}|[ -~]{0,12}") {
        let text = format!("ready {tail}");
        let parsed = Incoming::parse(MessageKind::Text, text.as_bytes());
        let ok = match tail.parse::<u32>() {
            Ok(n) => matches!(parsed, Ok(Incoming::Ready { threshold: Some(t) }) if t == n),
            Err(_) => !matches!(parsed, Ok(Incoming::Ready { .. })),
        };
        prop_assert!(ok, "{:?}", parsed);
    }

    /// The session survives any sequence of messages in any state, cut
    /// anywhere, and after a disconnect it starts over with `server_info`.
    #[test]
    fn arbitrary_messages_cut_anywhere_never_panic_the_session(
        state in 0u8..4,
        msgs in prop::collection::vec((server_message(), prop::collection::vec(any::<usize>(), 0..6)), 0..6),
    ) {
        let mut h = session_in(state);
        for ((kind, m), cuts) in &msgs {
            feed(&mut h, *kind, m, cuts);
        }
        h.session.handle_disconnect(h.now);
        h.drain();
        let mut buf = [0u8; 256];
        prop_assert!(h.session.server_info(h.now, &mut buf).is_ok());
    }

    /// The streamed download reader reaches the same verdict however a
    /// (possibly corrupted) chunk message is cut.
    #[test]
    fn a_chunk_message_cut_anywhere_gives_the_same_events_as_whole(
        (_, m) in server_message(),
        cuts in prop::collection::vec(any::<usize>(), 1..8),
    ) {
        let mut whole = session_in(2);
        let expected = feed(&mut whole, MessageKind::Text, &m, &[]);
        let mut split = session_in(2);
        let got = feed(&mut split, MessageKind::Text, &m, &cuts);
        prop_assert_eq!(got, expected);
    }
}

/// The corrupted messages above start from a chunk the reader accepts.
#[test]
fn the_unmutated_chunk_message_is_accepted() {
    let mut h = session_in(2);
    let e = feed(
        &mut h,
        MessageKind::Text,
        chunk_message().as_bytes(),
        &[7, 90],
    );
    assert!(
        matches!(
            e[..],
            [Event::DownloadChunk {
                index: 0,
                len: 100,
                ..
            }]
        ),
        "{e:?}"
    );
    assert_eq!(h.ciphertext.len(), 100);
}
