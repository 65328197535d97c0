//! The public frame layer against an independent implementation
//! (tungstenite) and against itself, for random payloads and masks.

use std::io::Cursor;

use naslink_core::ws::frame::{self, FrameHeader, Opcode, Status};
use proptest::prelude::*;
use tungstenite::protocol::frame::coding::{Data, OpCode};
use tungstenite::protocol::frame::{Frame, FrameHeader as TungHeader};

fn payload_len() -> impl Strategy<Value = usize> {
    // Around every length-encoding boundary, plus anything small.
    prop_oneof![0usize..300, 65_500usize..65_600, Just(70_000usize)]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn encode_masked_is_read_back_by_tungstenite(
        len in payload_len(),
        seed in any::<u8>(),
        mask in any::<[u8; 4]>(),
        fin in any::<bool>(),
    ) {
        let payload: Vec<u8> = (0..len).map(|i| (i as u8) ^ seed).collect();
        let mut out = vec![0u8; len + frame::MAX_HEADER_LEN];
        let n = frame::encode_masked(Opcode::Binary, fin, mask, &payload, &mut out).unwrap();
        let mut cursor = Cursor::new(&out[..n]);
        let (header, length) = TungHeader::parse(&mut cursor).unwrap().unwrap();
        prop_assert_eq!(header.mask, Some(mask));
        prop_assert_eq!(header.is_final, fin);
        prop_assert_eq!(length, len as u64);
        let start = cursor.position() as usize;
        prop_assert_eq!(n, start + len);
        let unmasked: Vec<u8> =
            out[start..n].iter().enumerate().map(|(i, b)| b ^ mask[i % 4]).collect();
        prop_assert_eq!(unmasked, payload);
    }

    #[test]
    fn tungstenite_frames_decode_in_place_and_into(
        len in payload_len(),
        mask in any::<[u8; 4]>(),
    ) {
        let payload: Vec<u8> = (0..len).map(|i| (i * 7) as u8).collect();
        let mut frame = Frame::message(payload.clone(), OpCode::Data(Data::Text), true);
        frame.header_mut().mask = Some(mask);
        let mut wire = Vec::new();
        frame.format(&mut wire).unwrap();

        let mut out = vec![0u8; len];
        let Ok(Status::Complete(into)) = frame::decode_into(&wire, &mut out) else {
            panic!("decode_into did not complete");
        };
        prop_assert_eq!(into.frame_len, wire.len());
        prop_assert_eq!(&out[..into.payload_len], &payload[..]);

        let Ok(Status::Complete(d)) = frame::decode_in_place(&mut wire) else {
            panic!("decode_in_place did not complete");
        };
        prop_assert_eq!(d.header.opcode, Opcode::Text);
        prop_assert_eq!(&wire[d.payload.clone()], &payload[..]);
    }

    #[test]
    fn header_emit_parse_round_trip(
        len in 0u64..(1 << 63),
        mask in any::<Option<[u8; 4]>>(),
        fin in any::<bool>(),
        rsv in 0u8..8,
        op in prop::sample::select(vec![Opcode::Continuation, Opcode::Text, Opcode::Binary, Opcode::Close, Opcode::Ping, Opcode::Pong]),
    ) {
        let header = FrameHeader { fin, rsv, opcode: op, mask, payload_len: len };
        let mut out = [0u8; frame::MAX_HEADER_LEN];
        let n = header.emit(&mut out).unwrap();
        prop_assert_eq!(n, header.buffer_len());
        prop_assert_eq!(FrameHeader::parse_prefix(&out[..n]), Ok(Status::Complete((header, n))));
        for cut in 0..n {
            prop_assert_eq!(FrameHeader::parse_prefix(&out[..cut]), Ok(Status::Partial));
        }
    }
}
