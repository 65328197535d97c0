//! Upload framing and verdicts.

mod cfms_support;

use cfms_support::Harness;
use naslink_core::cfms::upload::UNANNOUNCED_FRAME_LIMIT;
use naslink_core::cfms::{
    Config, Desync, Error, Event, MessageKind, Status, UploadError, UploadSource, UploadWriteError,
    sha256_of,
};
use serde_json::json;

fn hex(d: &[u8]) -> String {
    d.iter().map(|b| format!("{b:02x}")).collect()
}

/// Run an upload of `data` fed in `piece`-byte reads; return the binary
/// messages the session framed.
fn upload(h: &mut Harness, data: &[u8], piece: usize, expect_threshold: u32) -> Vec<Vec<u8>> {
    let source = UploadSource {
        size: data.len() as u64,
        sha256: Some(sha256_of(data)),
    };
    let (sent, _) = h.req(|s, n, b| s.upload_file(n, "task", source, b));
    h.recv_json(
        json!({"action": "transfer_file", "data": {}, "message": "waiting for file transfer"}),
    );
    let header = h.transmit_json();
    assert_eq!(header[0]["data"]["file_size"], data.len());
    let ready = if h.session.protocol_version() == Some(3) {
        "ready".to_string()
    } else {
        format!("ready {expect_threshold}")
    };
    let e = h.recv(MessageKind::Text, ready.as_bytes());
    assert_eq!(
        e,
        vec![Event::UploadReady {
            seq: sent.seq,
            frame_size: expect_threshold
        }]
    );
    let mut messages: Vec<Vec<u8>> = Vec::new();
    let mut open = false;
    let mut rest = data;
    loop {
        let input = &rest[..rest.len().min(piece)];
        let w = h.session.upload_write(h.now, input).unwrap();
        if w.message_start {
            assert!(!open, "a message starts inside another");
            messages.push(Vec::new());
            open = true;
        }
        if w.accepted > 0 || w.message_start {
            assert!(open);
            messages
                .last_mut()
                .unwrap()
                .extend_from_slice(&input[..w.accepted]);
        }
        if w.message_end {
            open = false;
        }
        rest = &rest[w.accepted..];
        if rest.is_empty() && w.accepted == 0 && !w.message_start {
            break;
        }
    }
    assert!(!open);
    messages
}

fn lens(m: &[Vec<u8>]) -> Vec<usize> {
    m.iter().map(Vec::len).collect()
}

#[test]
fn every_frame_but_the_last_is_8192_bytes_and_multiples_end_with_an_empty_frame() {
    for (size, expected) in [
        (1usize, vec![1usize]),
        (8191, vec![8191]),
        (8192, vec![8192, 0]),
        (8193, vec![8192, 1]),
        (16384, vec![8192, 8192, 0]),
        (10800, vec![8192, 2608]),
    ] {
        for piece in [1000, 8192, 5000, 65536] {
            let data: Vec<u8> = (0..size).map(|i| (i % 251) as u8).collect();
            let mut h = Harness::logged_in(3);
            let frames = upload(&mut h, &data, piece, 8192);
            assert_eq!(lens(&frames), expected, "size {size} piece {piece}");
            assert_eq!(frames.concat(), data);
            let e = h.recv_json(
                json!({"code": 200, "data": {}, "message": "File received successfully"}),
            );
            assert!(matches!(e[..], [Event::UploadFinished { size: s, .. }] if s == size as u64));
        }
    }
}

#[test]
fn ready_n_sets_the_frame_threshold_at_protocol_4_and_later() {
    let mut h = Harness::logged_in(5);
    let data: Vec<u8> = (0..16384).map(|i| (i % 256) as u8).collect();
    let frames = upload(&mut h, &data, 3000, 4096);
    assert_eq!(lens(&frames), vec![4096, 4096, 4096, 4096, 0]);
}

#[test]
fn max_chunk_size_is_announced_only_at_protocol_4_and_later() {
    for (protocol, has_max) in [(3, false), (4, true), (5, true)] {
        let mut h = Harness::logged_in(protocol);
        let data = b"hello";
        let source = UploadSource {
            size: 5,
            sha256: Some(sha256_of(data)),
        };
        h.req(|s, n, b| s.upload_file(n, "t", source, b));
        h.recv_json(
            json!({"action": "transfer_file", "data": {}, "message": "waiting for file transfer"}),
        );
        let header = &h.transmit_json()[0];
        let mut expect = json!({"action": "transfer_file", "data": {"sha256": hex(&sha256_of(data)), "file_size": 5}});
        if has_max {
            expect["data"]["max_chunk_size"] = json!(8192);
        }
        assert_eq!(header, &expect);
    }
}

#[test]
fn empty_file_gets_stop_and_a_fence_tells_silence_from_a_late_verdict() {
    // Silence after `stop` (the file was stored): the fence's answer comes first.
    let mut h = Harness::logged_in(3);
    let source = UploadSource {
        size: 0,
        sha256: None,
    };
    let (sent, _) = h.req(|s, n, b| s.upload_file(n, "t", source, b));
    h.recv_json(
        json!({"action": "transfer_file", "data": {}, "message": "waiting for file transfer"}),
    );
    assert_eq!(
        h.transmit_json(),
        vec![json!({"action": "transfer_file", "data": {"sha256": null, "file_size": 0}})]
    );
    assert!(h.recv(MessageKind::Text, b"stop").is_empty());
    assert_eq!(
        h.transmit_json(),
        vec![json!({"action": "server_info", "data": {}, "username": "", "token": ""})]
    );
    let e =
        h.ok(json!({"server_name": "s", "version": "v", "protocol_version": 3, "lockdown": false}));
    assert_eq!(
        e,
        vec![Event::UploadFinished {
            seq: sent.seq,
            size: 0
        }]
    );
    // The connection is free again.
    let (next, _) = h.req(|s, n, b| s.list_directory(n, None, b));
    assert_eq!(
        h.ok(json!({})),
        vec![Event::Reply {
            seq: next.seq,
            status: Status::Ok
        }]
    );

    // A 500 after `stop` (protocol 3 could not store it) is the verdict.
    let mut h = Harness::logged_in(3);
    let (sent, _) = h.req(|s, n, b| s.upload_file(n, "t", source, b));
    h.recv_json(
        json!({"action": "transfer_file", "data": {}, "message": "waiting for file transfer"}),
    );
    h.transmit();
    h.recv(MessageKind::Text, b"stop");
    h.transmit();
    let e = h.recv_json(
        json!({"code": 500, "data": {}, "message": "[Errno 2] No such file or directory"}),
    );
    assert_eq!(
        e,
        vec![Event::UploadFailed {
            seq: sent.seq,
            error: UploadError::Server(Status::ServerError)
        }]
    );
    let e =
        h.ok(json!({"server_name": "s", "version": "v", "protocol_version": 3, "lockdown": false}));
    assert!(
        e.is_empty(),
        "the fence's answer is consumed quietly: {e:?}"
    );
}

#[test]
fn the_server_verdict_on_a_sha_mismatch_is_reported() {
    let mut h = Harness::logged_in(3);
    let data = b"hello";
    let frames = upload(&mut h, data, 10, 8192);
    assert_eq!(lens(&frames), vec![5]);
    let e = h.recv_json(
        json!({"code": 400, "data": {}, "message": "SHA256 mismatch: expected 00, got 2c"}),
    );
    assert!(matches!(
        e[..],
        [Event::UploadFailed {
            error: UploadError::Server(Status::BadRequest),
            ..
        }]
    ));
}

#[test]
fn bytes_that_differ_from_the_announced_hash_are_reported_as_a_changed_source() {
    let mut h = Harness::logged_in(3);
    let announced = sha256_of(b"hellO");
    let source = UploadSource {
        size: 5,
        sha256: Some(announced),
    };
    h.req(|s, n, b| s.upload_file(n, "t", source, b));
    h.recv_json(
        json!({"action": "transfer_file", "data": {}, "message": "waiting for file transfer"}),
    );
    h.transmit();
    h.recv(MessageKind::Text, b"ready");
    h.session.upload_write(h.now, b"hello").unwrap();
    let e = h.recv_json(json!({"code": 400, "data": {}, "message": "SHA256 mismatch"}));
    let sent = sha256_of(b"hello");
    assert!(
        matches!(e[..], [Event::UploadFailed { error: UploadError::SourceChanged { announced: a, sent: s }, .. }] if a == announced && s == sent)
    );
}

#[test]
fn an_error_instead_of_the_handshake_fails_the_upload() {
    let mut h = Harness::logged_in(3);
    let source = UploadSource {
        size: 5,
        sha256: None,
    };
    let (sent, _) = h.req(|s, n, b| s.upload_file(n, "t", source, b));
    let e = h.recv_json(
        json!({"code": 400, "data": {}, "message": "Task is not in a valid state for upload"}),
    );
    assert_eq!(
        e,
        vec![Event::UploadFailed {
            seq: sent.seq,
            error: UploadError::Server(Status::BadRequest)
        }]
    );
}

#[test]
fn no_request_may_be_pipelined_behind_a_transfer() {
    let mut h = Harness::logged_in(3);
    let source = UploadSource {
        size: 5,
        sha256: None,
    };
    h.req(|s, n, b| s.upload_file(n, "t", source, b));
    let mut buf = [0u8; 512];
    assert_eq!(
        h.session.list_directory(h.now, None, &mut buf),
        Err(naslink_core::cfms::Error::TransferActive)
    );
    assert_eq!(
        h.session.download_file(h.now, "x", &mut buf),
        Err(naslink_core::cfms::Error::TransferActive)
    );
}

#[test]
fn writing_more_than_announced_is_refused() {
    let mut h = Harness::logged_in(3);
    let data = vec![7u8; 8192];
    let source = UploadSource {
        size: 8192,
        sha256: Some(sha256_of(&data)),
    };
    h.req(|s, n, b| s.upload_file(n, "t", source, b));
    h.recv_json(
        json!({"action": "transfer_file", "data": {}, "message": "waiting for file transfer"}),
    );
    h.transmit();
    h.recv(MessageKind::Text, b"ready");
    assert_eq!(h.session.upload_write(h.now, &data).unwrap().accepted, 8192);
    assert_eq!(
        h.session.upload_write(h.now, b"x"),
        Err(naslink_core::cfms::Error::Upload(
            naslink_core::cfms::UploadWriteError::BeyondAnnouncedSize
        ))
    );
}

/// Start an upload of five bytes and bring it to the point where the
/// server answers `ready …`.
fn await_ready(h: &mut Harness) -> naslink_core::cfms::Seq {
    let source = UploadSource {
        size: 5,
        sha256: Some(sha256_of(b"hello")),
    };
    let (sent, _) = h.req(|s, n, b| s.upload_file(n, "t", source, b));
    h.recv_json(
        json!({"action": "transfer_file", "data": {}, "message": "waiting for file transfer"}),
    );
    assert_eq!(h.transmit_json().len(), 1, "the header");
    sent.seq
}

fn assert_refused(h: &mut Harness, seq: naslink_core::cfms::Seq, ready: &str, want: UploadError) {
    let e = h.recv(MessageKind::Text, ready.as_bytes());
    assert_eq!(
        e,
        vec![
            Event::UploadFailed { seq, error: want },
            Event::Desynchronized(Desync::Transfer)
        ]
    );
    // Nothing is framed: the session never asks for a frame above the limit.
    assert_eq!(
        h.session.upload_write(h.now, b"hello"),
        Err(Error::Upload(UploadWriteError::NotSending))
    );
}

#[test]
fn ready_n_above_the_announced_max_chunk_size_is_refused() {
    let config = Config {
        upload_frame: 4096,
        ..Config::default()
    };
    let mut h = Harness::logged_in_with(config, 5);
    let seq = await_ready(&mut h);
    let want = UploadError::ThresholdAboveAnnounced {
        announced: 4096,
        got: 4294967295,
    };
    assert_refused(&mut h, seq, "ready 4294967295", want);
}

#[test]
fn ready_n_equal_to_the_announced_max_chunk_size_is_accepted() {
    let config = Config {
        upload_frame: 4096,
        ..Config::default()
    };
    let mut h = Harness::logged_in_with(config, 4);
    let seq = await_ready(&mut h);
    let e = h.recv(MessageKind::Text, b"ready 4096");
    assert_eq!(
        e,
        vec![Event::UploadReady {
            seq,
            frame_size: 4096
        }]
    );
}

#[test]
fn ready_n_without_an_announcement_is_capped_at_the_protocol_3_frame() {
    let mut h = Harness::logged_in(3);
    let seq = await_ready(&mut h);
    let want = UploadError::ThresholdAboveAnnounced {
        announced: UNANNOUNCED_FRAME_LIMIT,
        got: UNANNOUNCED_FRAME_LIMIT + 1,
    };
    let ready = format!("ready {}", UNANNOUNCED_FRAME_LIMIT + 1);
    assert_refused(&mut h, seq, &ready, want);
}

#[test]
fn a_frame_size_above_the_announced_one_names_both_in_words() {
    let e = UploadError::ThresholdAboveAnnounced {
        announced: 8192,
        got: u32::MAX,
    };
    assert_eq!(
        e.to_string(),
        "the server asked for frames of 4294967295 bytes, above the 8192 this client announced"
    );
}
