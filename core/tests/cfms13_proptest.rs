//! Robustness of the CFMS protocol-13 receive path: whatever bytes arrive,
//! cut at whatever points, the frame parser and reader, the stream table
//! and the event and response readers answer with a value or a named
//! error, never a panic, and every piece is consumed.

use naslink_core::cfms::p13::frame::{Frame, FrameError, Piece, Reader};
use naslink_core::cfms::p13::negotiate;
use naslink_core::cfms::p13::{Route, ServerEvent, Streams, TransferMessage};
use naslink_core::time::{Duration, Instant};
use proptest::prelude::*;

/// Bytes that are often a header: a small id, a type byte near 0/1.
fn framish() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..64),
        (
            0u32..12,
            0u8..4,
            proptest::collection::vec(any::<u8>(), 0..40)
        )
            .prop_map(|(id, t, rest)| {
                let mut v = id.to_be_bytes().to_vec();
                v.push(t);
                v.extend(rest);
                v
            }),
    ]
}

/// Cut `msg` at `cuts` (taken modulo its length), in order.
fn pieces<'a>(msg: &'a [u8], cuts: &[usize]) -> Vec<&'a [u8]> {
    let mut bounds: Vec<usize> = cuts.iter().map(|c| c % (msg.len() + 1)).collect();
    bounds.push(0);
    bounds.push(msg.len());
    bounds.sort_unstable();
    bounds.dedup();
    let mut out: Vec<&[u8]> = bounds.windows(2).map(|w| &msg[w[0]..w[1]]).collect();
    if out.is_empty() {
        out.push(&msg[..0]);
    }
    out
}

proptest! {
    /// The whole-message parser and the piecewise reader agree on every
    /// input, and the reader hands back every payload byte exactly once.
    #[test]
    fn reader_agrees_with_parse_at_any_cut(msg in framish(), cuts in proptest::collection::vec(any::<usize>(), 0..6)) {
        let whole = Frame::parse(&msg);
        let parts = pieces(&msg, &cuts);
        let mut r = Reader::new();
        let mut payload = Vec::new();
        let mut result: Result<Option<_>, FrameError> = Ok(None);
        for (i, p) in parts.iter().enumerate() {
            let (first, last) = (i == 0, i + 1 == parts.len());
            match r.feed(p, first, last) {
                Ok(Piece::NeedMore) => prop_assert!(!last),
                Ok(Piece::Payload { header, data, .. }) => {
                    payload.extend_from_slice(data);
                    result = Ok(Some(header));
                }
                Err(e) => {
                    result = Err(e);
                    break;
                }
            }
        }
        match (whole, result) {
            (Ok(f), Ok(Some(h))) => {
                prop_assert_eq!(f.header, h);
                prop_assert_eq!(f.payload, &payload[..]);
            }
            (Err(a), Err(b)) => prop_assert_eq!(a, b),
            (a, b) => prop_assert!(false, "parse {:?} vs reader {:?}", a, b),
        }
    }

    /// Any frame routed through the table lands somewhere named, and the
    /// table never holds more than its capacity.
    #[test]
    fn any_frame_sequence_routes_without_panic(
        msgs in proptest::collection::vec(framish(), 0..24),
        opens in proptest::collection::vec(any::<bool>(), 0..24),
    ) {
        let mut s: Streams<4> = Streams::new(Duration::from_secs(30));
        for (i, msg) in msgs.iter().enumerate() {
            let now = Instant::from_millis(i as u64 * 1000);
            if opens.get(i).copied().unwrap_or(false) {
                let _ = s.open(now);
            }
            if let Ok(f) = Frame::parse(msg) {
                match s.route(now, f.header) {
                    Route::Event { stream } => prop_assert!(stream.is_server()),
                    Route::Answer { stream, .. } | Route::Stray { stream } => {
                        prop_assert!(stream.is_client())
                    }
                }
            }
            while s.take_ended(now).is_some() {}
            prop_assert!(s.in_flight() <= 4);
        }
    }

    /// Event payloads and probe answers: a value or a named error.
    #[test]
    fn event_and_probe_readers_never_panic(msg in framish(), json in eventish()) {
        let _ = ServerEvent::parse(&msg);
        let _ = ServerEvent::parse(&json);
        let _ = negotiate::read_answer(&msg);
        let mut framed = vec![0, 0, 0, 1, 1];
        framed.extend_from_slice(&json);
        let _ = negotiate::read_answer(&framed);
    }

    /// Transfer messages: a value or a named error; a chunk's ciphertext
    /// decodes into a buffer of any size without a panic.
    #[test]
    fn transfer_messages_never_panic(msg in framish(), json in eventish(), cap in 0usize..64) {
        for payload in [&msg[..], &json[..]] {
            if let Ok(TransferMessage::Chunk(c)) = TransferMessage::parse(payload) {
                let mut out = vec![0u8; cap];
                let _ = c.ciphertext_into(&mut out);
            }
        }
    }
}

/// JSON-ish bytes with the words events and probe answers use.
fn eventish() -> impl Strategy<Value = Vec<u8>> {
    proptest::collection::vec(
        prop_oneof![
            Just(&b"{"[..]),
            Just(&b"}"[..]),
            Just(&b"\"event\":"[..]),
            Just(&b"\"lockdown\""[..]),
            Just(&b"\"data\":"[..]),
            Just(&b"\"status\":"[..]),
            Just(&b"\"code\":200,"[..]),
            Just(&b"\"protocol_version\":"[..]),
            Just(&b"13"[..]),
            Just(&b"\"action\":\"file_chunk\","[..]),
            Just(&b"\"action\":\"aes_key\","[..]),
            Just(&b"\"action\":\"transfer_file\","[..]),
            Just(&b"\"index\":1,\"chunk\":\"QUJD\",\"tag\":\"sVKjSQ2/S9DOwRwhqVmvWQ==\",\"prefix\":\"uOXcstBwWQw=\""[..]),
            Just(&b"\"key\":null"[..]),
            Just(&b"\"file_size\":5,\"chunk_size\":2,\"total_chunks\":3"[..]),
            Just(&b"true"[..]),
            Just(&b","[..]),
            Just(&b"\xff"[..]),
        ],
        0..16,
    )
    .prop_map(|parts| parts.concat())
}
