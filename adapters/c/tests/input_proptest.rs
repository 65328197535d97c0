//! Hostile input through `naslink_handle_input`: random bytes, split at
//! random points, in the handshake and after it (raw bytes and text frames
//! of random JSON-ish text, binary protocol-13 frames), into fnOS and CFMS
//! connections (CFMS negotiating, pinned to text and to 13). No panic (a
//! panic here would abort the test process), and progress: after draining
//! events and output, the library takes more bytes, until the connection
//! has closed.

mod support;

use std::ffi::c_void;
use std::ptr::{null, null_mut};

use naslink_capi::*;
use naslink_core::ws::handshake::{accept_for_key, key_from_nonce};
use proptest::prelude::*;
use support::{FnosConfig, Memory, naslink_event_none, ok};

/// A constant "random" source, so the handshake's accept key is known.
unsafe extern "C" fn sevens(_ctx: *mut c_void, buf: *mut u8, len: usize) {
    // SAFETY: the library passes `len` writable bytes.
    unsafe { buf.write_bytes(7, len) };
}

fn upgrade_answer() -> Vec<u8> {
    let accept = accept_for_key(&key_from_nonce([7; 16]));
    let mut head = b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\
        Connection: Upgrade\r\nSec-WebSocket-Accept: "
        .to_vec();
    head.extend_from_slice(&accept);
    head.extend_from_slice(b"\r\n\r\n");
    head
}

/// An unmasked server text frame.
fn text_frame(payload: &[u8]) -> Vec<u8> {
    ws_frame(0x81, payload)
}

/// An unmasked server frame with first byte `head` (FIN and opcode).
fn ws_frame(head: u8, payload: &[u8]) -> Vec<u8> {
    let mut f = vec![head];
    match payload.len() {
        n if n < 126 => f.push(n as u8),
        n => {
            f.push(126);
            f.extend_from_slice(&(n as u16).to_be_bytes());
        }
    }
    f.extend_from_slice(payload);
    f
}

/// Drain events and output; returns whether the connection closed.
fn drain(conn: *mut naslink_conn) -> bool {
    let mut closed = false;
    loop {
        let mut event = naslink_event_none();
        // SAFETY: conn from init.
        ok(unsafe { naslink_poll_event(conn, &mut event) });
        match event.kind {
            naslink_event_kind::NASLINK_EVENT_NONE => break,
            naslink_event_kind::NASLINK_EVENT_CLOSED => closed = true,
            _ => {}
        }
    }
    loop {
        let (mut ptr, mut len) = (null(), 0usize);
        // SAFETY: conn from init.
        ok(unsafe { naslink_poll_transmit(conn, 0, &mut ptr, &mut len) });
        if len == 0 {
            return closed;
        }
        // SAFETY: conn from init.
        ok(unsafe { naslink_advance_transmit(conn, len) });
    }
}

/// Which session the bytes are fed to.
#[derive(Debug, Clone, Copy)]
enum Proto {
    Fnos,
    /// With this `protocol_version` in the config (0 negotiates).
    Cfms(u32),
}

/// fnOS, and CFMS negotiating, pinned to text, pinned to 13.
fn any_proto() -> impl Strategy<Value = Proto> {
    prop_oneof![
        Just(Proto::Fnos),
        Just(Proto::Cfms(0)),
        Just(Proto::Cfms(3)),
        Just(Proto::Cfms(13)),
    ]
}

/// A connection of `proto` in fresh memory, with the constant RNG.
fn open(proto: Proto) -> (Memory, *mut naslink_conn) {
    let mut conn = null_mut();
    let mem = match proto {
        Proto::Fnos => {
            let mem = Memory::fnos();
            let config =
                FnosConfig::new("ws://127.0.0.1:5666/websocket?type=main", "admin", "admin");
            // SAFETY: memory of the right size and alignment.
            ok(unsafe {
                naslink_fnos_init(
                    mem.ptr.cast(),
                    mem.len(),
                    &config.raw(0),
                    Some(sevens),
                    null_mut(),
                    &mut conn,
                )
            });
            mem
        }
        Proto::Cfms(protocol_version) => {
            let mem = Memory::new(naslink_cfms_size(), naslink_cfms_align());
            let config = naslink_cfms_config {
                url: c"ws://127.0.0.1:5104/".as_ptr(),
                user: c"admin".as_ptr(),
                password: c"admin".as_ptr(),
                now_ms: 0,
                unix_time_s: 0,
                request_timeout_ms: 0,
                listener: true,
                protocol_version,
            };
            // SAFETY: memory of the right size and alignment.
            ok(unsafe {
                naslink_cfms_init(
                    mem.ptr.cast(),
                    mem.len(),
                    &config,
                    Some(sevens),
                    null_mut(),
                    &mut conn,
                )
            });
            mem
        }
    };
    (mem, conn)
}

fn feed(proto: Proto, stream: &[u8], cuts: &[usize]) -> Result<(), TestCaseError> {
    let (_mem, conn) = open(proto);
    let mut closed = drain(conn);
    let mut pieces = Vec::new();
    let mut at = 0;
    for &cut in cuts {
        let end = (at + cut).min(stream.len());
        pieces.push(&stream[at..end]);
        at = end;
    }
    pieces.push(&stream[at..]);
    for (i, mut piece) in pieces.into_iter().enumerate() {
        let mut stalled = 0;
        while !piece.is_empty() && !closed {
            let mut consumed = 0;
            // SAFETY: conn from init; the piece is readable.
            ok(unsafe {
                naslink_handle_input(conn, i as u64, piece.as_ptr(), piece.len(), &mut consumed)
            });
            prop_assert!(consumed <= piece.len());
            piece = &piece[consumed..];
            closed |= drain(conn);
            stalled = if consumed == 0 { stalled + 1 } else { 0 };
            prop_assert!(stalled < 2, "no progress after draining");
        }
        // SAFETY: conn from init.
        ok(unsafe { naslink_handle_timeout(conn, i as u64 * 1000) });
        closed |= drain(conn);
    }
    // SAFETY: conn from init.
    ok(unsafe { naslink_deinit(conn) });
    Ok(())
}

/// The canned upgrade answer really opens the connection, so the
/// after-upgrade cases reach the frame parser and the fnOS session.
#[test]
fn the_canned_upgrade_answer_opens_the_connection() {
    let mem = Memory::fnos();
    let config = FnosConfig::new("ws://127.0.0.1:5666/websocket?type=main", "admin", "admin");
    let mut conn = null_mut();
    // SAFETY: memory of the right size and alignment.
    ok(unsafe {
        naslink_fnos_init(
            mem.ptr.cast(),
            mem.len(),
            &config.raw(0),
            Some(sevens),
            null_mut(),
            &mut conn,
        )
    });
    drain(conn);
    let answer = upgrade_answer();
    let mut consumed = 0;
    // SAFETY: conn from init; the answer is readable.
    ok(unsafe { naslink_handle_input(conn, 1, answer.as_ptr(), answer.len(), &mut consumed) });
    assert_eq!(consumed, answer.len());
    let mut event = naslink_event_none();
    // SAFETY: conn from init.
    ok(unsafe { naslink_poll_event(conn, &mut event) });
    assert_eq!(event.kind, naslink_event_kind::NASLINK_EVENT_CONNECTED);
}

fn json_ish() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        "[{}\\[\\]\":,a-z0-9 .-]{0,300}".prop_map(String::into_bytes),
        Just(br#"{"reqid":"x","result":"succ"}"#.to_vec()),
        Just(br#"{"sysNotify":"storageChanged"}"#.to_vec()),
        Just(br#"{"res":"pong"}"#.to_vec()),
        "[a-z]{0,20}"
            .prop_map(|k| format!(r#"{{"pub":"{k}","si":"{k}","reqid":"{k}"}}"#).into_bytes()),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn random_bytes_during_the_handshake(
        proto in any_proto(),
        bytes in proptest::collection::vec(any::<u8>(), 0..2048),
        cuts in proptest::collection::vec(0usize..300, 0..8),
    ) {
        feed(proto, &bytes, &cuts)?;
    }

    #[test]
    fn random_bytes_after_the_upgrade(
        proto in any_proto(),
        bytes in proptest::collection::vec(any::<u8>(), 0..2048),
        cuts in proptest::collection::vec(0usize..300, 0..8),
    ) {
        let mut stream = upgrade_answer();
        stream.extend_from_slice(&bytes);
        feed(proto, &stream, &cuts)?;
    }

    #[test]
    fn random_json_ish_text_frames_after_the_upgrade(
        proto in any_proto(),
        messages in proptest::collection::vec(json_ish(), 0..12),
        cuts in proptest::collection::vec(0usize..300, 0..8),
    ) {
        let mut stream = upgrade_answer();
        for m in &messages {
            stream.extend_from_slice(&text_frame(m));
        }
        feed(proto, &stream, &cuts)?;
    }

    /// Protocol-13 messages: a 5-byte header (a few stream ids of both
    /// sides, any frame type) and a JSON-ish payload, in binary frames.
    #[test]
    fn random_protocol_13_frames_after_the_upgrade(
        protocol_version in prop_oneof![Just(0u32), Just(13)],
        frames in proptest::collection::vec(
            (prop_oneof![Just(0u32), Just(1), Just(2), Just(3), any::<u32>()], any::<u8>(), json_ish()),
            0..12,
        ),
        cuts in proptest::collection::vec(0usize..300, 0..8),
    ) {
        let mut stream = upgrade_answer();
        for (id, kind, payload) in &frames {
            let mut m = id.to_be_bytes().to_vec();
            m.push(*kind);
            m.extend_from_slice(payload);
            stream.extend_from_slice(&ws_frame(0x82, &m));
        }
        feed(Proto::Cfms(protocol_version), &stream, &cuts)?;
    }
}
