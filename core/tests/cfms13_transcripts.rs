//! The recorded protocol-13 exchanges (`cfms-p13.jsonl`,
//! `cfms-p13-concurrency.jsonl`, `cfms-detect.jsonl`) read by the
//! protocol-13 wire: every server frame parses, lands on the stream the
//! client opened for it (or is an event), and the probe outcomes match.

use naslink_core::cfms::p13::frame::{Frame, FrameType};
use naslink_core::cfms::p13::negotiate::{self, Negotiated};
use naslink_core::cfms::p13::streams::QUIET_END;
use naslink_core::cfms::p13::{Replay, Route, ServerEvent, StreamId, Streams, TransferMessage};
use naslink_core::cfms::{Response, Status};
use naslink_core::time::{Duration, Instant};
use std::collections::BTreeMap;

fn lines(name: &str) -> Vec<serde_json::Value> {
    let path = format!(
        "{}/../../shared/transcripts/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    text.lines()
        .map(|l| serde_json::from_str(l).expect("transcript line is JSON"))
        .collect()
}

/// The bytes of a recorded frame, when the recording kept them whole.
fn frame_bytes(line: &serde_json::Value) -> Option<Vec<u8>> {
    let frame = line.get("frame")?;
    let id = u32::try_from(frame.get("id")?.as_u64()?).ok()?;
    let kind = match frame["type"].as_str()? {
        "process" => 0u8,
        "conclusion" => 1,
        _ => return None,
    };
    let payload = if let Some(json) = line.get("json") {
        serde_json::to_vec(json).unwrap()
    } else {
        line.get("text")?.as_str()?.as_bytes().to_vec()
    };
    let mut v = id.to_be_bytes().to_vec();
    v.push(kind);
    v.extend(payload);
    Some(v)
}

#[test]
fn every_recorded_server_frame_parses_and_finds_its_stream() {
    let (mut answers, mut events) = (0, 0);
    for name in ["cfms-p13.jsonl", "cfms-p13-concurrency.jsonl"] {
        let mut conns: BTreeMap<String, Streams<128>> = BTreeMap::new();
        let mut next: BTreeMap<String, u32> = BTreeMap::new();
        for line in lines(name) {
            let conn = line["conn"].as_str().unwrap().to_string();
            let streams = conns
                .entry(conn.clone())
                .or_insert_with(|| Streams::new(Duration::from_secs(3600)));
            let now = Instant::from_millis((line["t"].as_f64().unwrap() * 1000.0) as u64);
            let id = line["frame"]["id"].as_u64().map(|i| i as u32);
            match (line["dir"].as_str().unwrap(), id) {
                (">>", Some(id)) if id % 2 == 1 && id >= *next.get(&conn).unwrap_or(&1) => {
                    // The client opens ids in order; skipped ids are opened
                    // and closed, frames on open or reused ids open nothing.
                    loop {
                        let opened = streams.open(now).unwrap();
                        if opened.0 == id {
                            break;
                        }
                        streams.finish(opened);
                    }
                    next.insert(conn.clone(), id + 2);
                }
                ("<<", Some(_)) => {
                    let bytes = frame_bytes(&line).unwrap();
                    let frame = Frame::parse(&bytes).unwrap();
                    let note = line["note"].as_str().unwrap_or_default();
                    let route = streams.route(now, frame.header);
                    // Two requests the recording sent against the rules (a
                    // text message, an even id): their answers belong to no
                    // stream this client would open.
                    if note.starts_with("TEXT message") || note.contains("even stream id") {
                        assert!(!matches!(route, Route::Answer { .. }), "{note}");
                        assert!(ServerEvent::parse(frame.payload).is_err(), "{note}");
                        continue;
                    }
                    match route {
                        Route::Event { stream } => {
                            events += 1;
                            assert!(stream.is_server());
                            let want = line["json"]["data"]["status"].as_bool().unwrap();
                            assert_eq!(
                                ServerEvent::parse(frame.payload),
                                Ok(ServerEvent::Lockdown { on: want }),
                                "{name} {conn}: {note}"
                            );
                        }
                        Route::Answer { stream, last } => {
                            answers += 1;
                            assert_eq!(last, frame.header.kind == FrameType::Conclusion);
                            check_payload(frame.payload, &line);
                            // Streams that end without a CONCLUSION.
                            let action = line["json"]["action"].as_str();
                            if action == Some("aes_key") {
                                streams.finish(stream);
                            }
                            if line["text"] == "stop" {
                                streams.end_quietly(now, stream, QUIET_END);
                            }
                        }
                        Route::Stray { stream } => {
                            panic!(
                                "{name} {conn}: frame on stream {} nobody opened: {note}",
                                stream.0
                            )
                        }
                    }
                }
                _ => {}
            }
        }
    }
    assert!(
        answers > 150 && events >= 4,
        "{answers} answers, {events} events"
    );
}

/// A CONCLUSION is a response; its 1001 says which replay check refused.
/// A PROCESS frame is a transfer message.
fn check_payload(payload: &[u8], line: &serde_json::Value) {
    let Some(code) = line["json"]["code"].as_i64() else {
        let m = TransferMessage::parse(payload).unwrap_or_else(|e| panic!("{e}: {}", line["note"]));
        if let TransferMessage::Chunk(c) = m {
            assert_eq!(
                u64::from(c.index),
                line["json"]["data"]["index"].as_u64().unwrap()
            );
        }
        return;
    };
    let r = Response::parse(payload).unwrap();
    assert_eq!(r.code(), code);
    if r.status() == Status::Replay {
        let note = line["note"].as_str().unwrap();
        let message = line["json"]["message"].as_str().unwrap();
        let want = if message.starts_with("Duplicate nonce") {
            Replay::DuplicateNonce
        } else {
            Replay::StaleTimestamp
        };
        assert_eq!(Replay::of(&r), Some(want), "{note}");
    }
}

#[test]
fn replay_refusals_are_recorded_and_typed() {
    let mut kinds = Vec::new();
    for line in lines("cfms-p13.jsonl") {
        if line["dir"] == "<<" && line["json"]["code"] == 1001 {
            let bytes = frame_bytes(&line).unwrap();
            let r = Response::parse(Frame::parse(&bytes).unwrap().payload).unwrap();
            kinds.push(Replay::of(&r).unwrap());
        }
    }
    assert!(kinds.contains(&Replay::DuplicateNonce));
    assert!(kinds.contains(&Replay::StaleTimestamp));
}

#[test]
fn detection_binary_probe_tells_13_from_3_and_5() {
    let mut probe = [0u8; 64];
    let n = negotiate::probe(&mut probe).unwrap();
    let mut seen = BTreeMap::new();
    for line in lines("cfms-detect.jsonl") {
        let conn = line["conn"].as_str().unwrap();
        if !conn.ends_with("/probe-binary") {
            continue;
        }
        let server = conn.split('/').next().unwrap().to_string();
        match line["dir"].as_str().unwrap() {
            ">>" => {
                // What was recorded is what the probe writes.
                assert_eq!(frame_bytes(&line).unwrap(), probe[..n].to_vec());
            }
            "<<" if line.get("close").is_some() => {
                seen.insert(server, negotiate::closed_before_answer());
            }
            "<<" => {
                let bytes = frame_bytes(&line).unwrap();
                assert_eq!(Frame::parse(&bytes).unwrap().header.stream, StreamId::PROBE);
                seen.insert(server, negotiate::read_answer(&bytes).unwrap().unwrap());
            }
            _ => {}
        }
    }
    assert_eq!(seen["p3"], Negotiated::Text);
    assert_eq!(seen["p5"], Negotiated::Text);
    assert_eq!(
        seen["p13"],
        Negotiated::Framed {
            protocol_version: 13,
            lockdown: false
        }
    );
}
