//! Download: streaming decode of `file_chunk` messages split anywhere, the
//! key last, then CFB8 decryption with per-chunk and whole-file SHA-256.

mod cfms_support;

use aes::Aes256;
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use cfb8::cipher::KeyIvInit;
use cfms_support::Harness;
use naslink_core::cfms::{
    Config, DecryptError, Desync, DownloadError, DownloadKey, Error, Event, FileDecryptor,
    MessageKind, Status, TransferField,
};
use serde_json::json;
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

struct Served {
    header: String,
    chunks: Vec<String>,
    key_msg: String,
    ciphertext: Vec<u8>,
}

/// What a CFMS server sends for `plain` (one CFB8 stream over all chunks).
fn serve(plain: &[u8], chunk_size: usize, key: [u8; 32], iv: [u8; 16]) -> Served {
    let mut ciphertext = plain.to_vec();
    cfb8::Encryptor::<Aes256>::new(&key.into(), &iv.into()).encrypt(&mut ciphertext);
    let total = plain.len().div_ceil(chunk_size);
    let sha = if plain.is_empty() {
        json!(null)
    } else {
        json!(hex(&Sha256::digest(plain)))
    };
    let header = json!({"action": "transfer_file", "data": {"sha256": sha, "file_size": plain.len(), "chunk_size": chunk_size, "total_chunks": total}}).to_string();
    let chunks = (0..total)
        .map(|i| {
            let r = i * chunk_size..((i + 1) * chunk_size).min(plain.len());
            let iv_field = if i == 0 { b64(iv) } else { String::new() };
            // Python's json.dumps layout: `", "` and `": "` separators.
            format!(
                "{{\"action\": \"file_chunk\", \"data\": {{\"index\": {i}, \"hash\": \"{}\", \"iv\": \"{iv_field}\", \"chunk\": \"{}\"}}}}",
                hex(&Sha256::digest(&plain[r.clone()])),
                b64(&ciphertext[r])
            )
        })
        .collect();
    let key_msg = json!({"action": "aes_key", "data": {"key": b64(key)}}).to_string();
    Served {
        header,
        chunks,
        key_msg,
        ciphertext,
    }
}

fn start(h: &mut Harness, served: &Served) -> naslink_core::cfms::Seq {
    let (sent, req) = h.req(|s, n, b| s.download_file(n, "task", b));
    assert_eq!(req["action"], "download_file");
    let e = h.recv(MessageKind::Text, served.header.as_bytes());
    assert!(matches!(e[..], [Event::DownloadStarted { .. }]), "{e:?}");
    assert_eq!(h.transmit(), vec![(MessageKind::Text, b"ready".to_vec())]);
    sent.seq
}

/// Deliver `msg` in pieces cut at `cuts`.
fn deliver(h: &mut Harness, msg: &[u8], cuts: &[usize]) {
    h.recv_pieces(MessageKind::Text, msg, cuts);
}

fn decrypt(
    key: &DownloadKey,
    hashes: &[[u8; 32]],
    ciphertext: &[u8],
    piece: usize,
) -> Result<Vec<u8>, DecryptError> {
    let mut d = FileDecryptor::new(key, hashes)?;
    let mut out = ciphertext.to_vec();
    for p in out.chunks_mut(piece) {
        d.decrypt(p)?;
    }
    d.finish()?;
    Ok(out)
}

fn finished_key(h: &Harness) -> DownloadKey {
    match h.events.last() {
        Some(Event::DownloadFinished { key, .. }) => *key,
        other => panic!("not finished: {other:?}"),
    }
}

#[test]
fn chunk_messages_split_at_every_boundary_decode_to_the_same_ciphertext() {
    let plain: Vec<u8> = (0..300u32).map(|i| (i * 7 % 256) as u8).collect();
    let served = serve(&plain, 64, [0x42; 32], [0x24; 16]);
    // Two-piece splits at every offset of the first chunk message, then
    // regular small pieces for the others (quanta, escapes and tokens split).
    let first = served.chunks[0].as_bytes().to_vec();
    for cut in 0..=first.len() {
        let mut h = Harness::logged_in(3);
        start(&mut h, &served);
        deliver(&mut h, &first, &[cut]);
        for (i, msg) in served.chunks.iter().enumerate().skip(1) {
            let cuts: Vec<usize> = (1..msg.len()).step_by(1 + (cut + i) % 13).collect();
            deliver(&mut h, msg.as_bytes(), &cuts);
        }
        deliver(&mut h, served.key_msg.as_bytes(), &[cut % 20]);
        assert_eq!(h.ciphertext, served.ciphertext, "cut at {cut}");
        let key = finished_key(&h);
        assert_eq!(key.total_chunks, 5);
        let hashes = h.session.chunk_hashes().to_vec();
        assert_eq!(hashes.len(), 5);
        assert_eq!(
            decrypt(&key, &hashes, &h.ciphertext, 1 + cut % 50).unwrap(),
            plain
        );
    }
}

#[test]
fn two_mebibyte_chunks_stream_without_holding_the_message() {
    let plain: Vec<u8> = (0..(2 * 2097152 + 12345u32))
        .map(|i| (i.wrapping_mul(2654435761) >> 24) as u8)
        .collect();
    let served = serve(&plain, 2097152, [9; 32], [3; 16]);
    // A receive buffer far smaller than one chunk message (it holds the
    // ciphertext of one piece, as a Connection's receive buffer bounds it).
    let mut h = Harness::with_buffers(Config::default(), 4096, 4);
    h.handshake(3);
    h.req(|s, n, b| s.login(n, "u", "p", b));
    h.ok(json!({"token": "t", "exp": 1795308447.0}));
    let seq = start(&mut h, &served);
    for msg in &served.chunks {
        let cuts: Vec<usize> = (1..msg.len()).step_by(4093).collect();
        deliver(&mut h, msg.as_bytes(), &cuts);
    }
    assert!(h.events.contains(&Event::DownloadChunk {
        seq,
        index: 2,
        len: 12345
    }));
    deliver(&mut h, served.key_msg.as_bytes(), &[]);
    let key = finished_key(&h);
    let hashes = h.session.chunk_hashes().to_vec();
    assert_eq!(decrypt(&key, &hashes, &h.ciphertext, 65536).unwrap(), plain);
}

#[test]
fn a_corrupted_chunk_is_reported_with_its_index() {
    let plain = vec![0x5au8; 500];
    let served = serve(&plain, 100, [1; 32], [2; 16]);
    let mut h = Harness::logged_in(3);
    start(&mut h, &served);
    for msg in &served.chunks {
        deliver(&mut h, msg.as_bytes(), &[]);
    }
    deliver(&mut h, served.key_msg.as_bytes(), &[]);
    let key = finished_key(&h);
    let hashes = h.session.chunk_hashes().to_vec();
    let mut bad = h.ciphertext.clone();
    bad[250] ^= 1;
    assert_eq!(
        decrypt(&key, &hashes, &bad, 7),
        Err(DecryptError::ChunkHashMismatch { index: 2 })
    );
    let mut wrong = hashes.clone();
    wrong[4][0] ^= 1;
    assert_eq!(
        decrypt(&key, &wrong, &h.ciphertext, 500),
        Err(DecryptError::ChunkHashMismatch { index: 4 })
    );
    assert_eq!(
        decrypt(&key, &hashes, &h.ciphertext[..499], 100),
        Err(DecryptError::SizeMismatch {
            expected: 500,
            got: 499
        })
    );
}

#[test]
fn escaped_slashes_in_the_base64_are_decoded() {
    let plain: Vec<u8> = (0..=255u8).collect();
    let served = serve(&plain, 2097152, [7; 32], [8; 16]);
    let escaped = served.chunks[0].replace('/', "\\/");
    assert_ne!(escaped, served.chunks[0]);
    let mut h = Harness::logged_in(3);
    start(&mut h, &served);
    let cuts: Vec<usize> = (1..escaped.len()).step_by(3).collect();
    deliver(&mut h, escaped.as_bytes(), &cuts);
    deliver(&mut h, served.key_msg.as_bytes(), &[]);
    assert_eq!(h.ciphertext, served.ciphertext);
}

#[test]
fn the_recorded_real_server_download_decrypts_to_hello() {
    // cfms-v3-edge.jsonl, connection F: a 5-byte document.
    let mut h = Harness::logged_in(3);
    h.req(|s, n, b| {
        s.download_file(
            n,
            "afc726740d65d5574dc3d8a8eb509997feb8caaa8d80767c7da4ca39e915c23b",
            b,
        )
    });
    h.recv(MessageKind::Text, br#"{"action": "transfer_file", "data": {"sha256": "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824", "file_size": 5, "chunk_size": 2097152, "total_chunks": 1}}"#);
    assert_eq!(h.transmit(), vec![(MessageKind::Text, b"ready".to_vec())]);
    h.recv(MessageKind::Text, br#"{"action": "file_chunk", "data": {"index": 0, "hash": "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824", "iv": "GNzVTg5ERTPLluv1uEG+jQ==", "chunk": "d2KFPRk="}}"#);
    h.recv(MessageKind::Text, br#"{"action": "aes_key", "data": {"key": "tEB9PX4+ls19l0fIFcaDDjMt5MmwKZNejv+XhmyB0mQ="}}"#);
    let key = finished_key(&h);
    let hashes = h.session.chunk_hashes().to_vec();
    assert_eq!(decrypt(&key, &hashes, &h.ciphertext, 5).unwrap(), b"hello");
}

#[test]
fn an_empty_file_finishes_right_after_ready() {
    let mut h = Harness::logged_in(3);
    let (sent, _) = h.req(|s, n, b| s.download_file(n, "t", b));
    h.recv(MessageKind::Text, br#"{"action": "transfer_file", "data": {"sha256": null, "file_size": 0, "chunk_size": 2097152, "total_chunks": 0}}"#);
    assert_eq!(h.transmit(), vec![(MessageKind::Text, b"ready".to_vec())]);
    let key = finished_key(&h);
    assert_eq!((key.file_size, key.total_chunks), (0, 0));
    assert!(
        matches!(h.events.last(), Some(Event::DownloadFinished { seq, .. }) if *seq == sent.seq)
    );
    let d = FileDecryptor::new(&key, &[]).unwrap();
    assert_eq!(d.finish().unwrap().to_vec(), Sha256::digest(b"").to_vec());
}

#[test]
fn more_chunks_than_hash_storage_are_refused_before_ready() {
    let mut h = Harness::with_buffers(Config::default(), 4096, 2);
    h.handshake(3);
    h.req(|s, n, b| s.login(n, "u", "p", b));
    h.ok(json!({"token": "t", "exp": 1795308447.0}));
    let (sent, _) = h.req(|s, n, b| s.download_file(n, "t", b));
    h.recv(MessageKind::Text, br#"{"action": "transfer_file", "data": {"sha256": "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824", "file_size": 6291456, "chunk_size": 2097152, "total_chunks": 3}}"#);
    assert_eq!(h.transmit(), vec![(MessageKind::Text, b"cancel".to_vec())]);
    let e = h.recv_json(
        json!({"code": 400, "data": {}, "message": "Client not ready for file transfer"}),
    );
    assert_eq!(
        e,
        vec![Event::DownloadFailed {
            seq: sent.seq,
            error: DownloadError::TooManyChunks {
                total: 3,
                capacity: 2
            }
        }]
    );
}

#[test]
fn a_bogus_task_fails_the_download_with_the_server_status() {
    let mut h = Harness::logged_in(3);
    let (sent, _) = h.req(|s, n, b| s.download_file(n, "does-not-exist", b));
    let e = h.recv_json(json!({"code": 404, "data": {}, "message": "Task not found"}));
    assert_eq!(
        e,
        vec![Event::DownloadFailed {
            seq: sent.seq,
            error: DownloadError::Server(Status::NotFound)
        }]
    );
    let mut buf = [0u8; 256];
    assert!(h.session.list_directory(h.now, None, &mut buf).is_ok());
}

#[test]
fn a_chunk_out_of_order_fails_the_download_and_the_connection() {
    let plain = vec![1u8; 200];
    let served = serve(&plain, 100, [1; 32], [2; 16]);
    let mut h = Harness::logged_in(3);
    let seq = start(&mut h, &served);
    deliver(&mut h, served.chunks[1].as_bytes(), &[]);
    assert!(h.events.contains(&Event::DownloadFailed {
        seq,
        error: DownloadError::ChunkOutOfOrder {
            expected: 0,
            got: 1
        }
    }));
    let mut buf = [0u8; 256];
    assert_eq!(
        h.session.list_directory(h.now, None, &mut buf),
        Err(Error::Broken)
    );
}

#[test]
fn a_server_error_mid_stream_fails_the_download() {
    let plain = vec![1u8; 200];
    let served = serve(&plain, 100, [1; 32], [2; 16]);
    let mut h = Harness::logged_in(3);
    let seq = start(&mut h, &served);
    deliver(&mut h, served.chunks[0].as_bytes(), &[]);
    deliver(
        &mut h,
        br#"{"code": 500, "data": {}, "message": "Error sending file: disk"}"#,
        &[9],
    );
    assert_eq!(
        h.events.last(),
        Some(&Event::DownloadFailed {
            seq,
            error: DownloadError::Server(Status::ServerError)
        })
    );
}

#[test]
fn a_key_without_a_chunk_size_is_refused_instead_of_looping() {
    let key = DownloadKey {
        key: [0; 32],
        iv: [0; 16],
        sha256: None,
        file_size: 5,
        chunk_size: 0,
        total_chunks: 1,
    };
    assert!(matches!(
        FileDecryptor::new(&key, &[[0; 32]]),
        Err(DecryptError::ZeroChunkSize)
    ));
}

// ----- hostile transfer messages: overlong fields -------------------------

/// A logged-in session whose download of a two-chunk file has started.
fn hostile_start() -> (Harness, Served, naslink_core::cfms::Seq) {
    let served = serve(&[7u8; 200], 100, [1; 32], [2; 16]);
    let mut h = Harness::logged_in(3);
    let seq = start(&mut h, &served);
    (h, served, seq)
}

/// Cut points for `len` bytes: every single cut, then runs of small pieces.
fn cut_patterns(len: usize) -> Vec<Vec<usize>> {
    let mut all: Vec<Vec<usize>> = (0..=len).map(|c| vec![c]).collect();
    for step in 1..8 {
        all.push((0..len).step_by(step).collect());
    }
    all
}

/// After a failed download the connection is given up; the session is used
/// again on the next connection: `server_info`, then a request answered.
fn assert_usable_after_reconnect(h: &mut Harness) {
    assert!(h.events.contains(&Event::Desynchronized(Desync::Transfer)));
    h.session.handle_disconnect(h.now);
    h.drain();
    h.handshake(3);
    let (sent, _) = h.req(|s, n, b| s.list_directory(n, None, b));
    let e = h.ok(json!({"list": []}));
    assert!(
        e.contains(&Event::Reply {
            seq: sent.seq,
            status: Status::Ok
        }),
        "{e:?}"
    );
}

/// Feed `msg` (in every cut pattern) to a fresh download; it must fail with `want`.
fn assert_fails_with(msg: &str, chunks_first: usize, want: DownloadError) {
    for cuts in cut_patterns(msg.len()) {
        let (mut h, served, seq) = hostile_start();
        for c in served.chunks.iter().take(chunks_first) {
            deliver(&mut h, c.as_bytes(), &[]);
        }
        deliver(&mut h, msg.as_bytes(), &cuts);
        let failed = Event::DownloadFailed { seq, error: want };
        assert!(h.events.contains(&failed), "cuts {cuts:?}: {:?}", h.events);
        assert_usable_after_reconnect(&mut h);
    }
}

#[test]
fn a_chunk_index_of_a_hundred_digits_names_the_field_and_the_chunk() {
    let digits = "9".repeat(100);
    let msg = format!(
        r#"{{"action": "file_chunk", "data": {{"index": {digits}, "hash": "", "chunk": ""}}}}"#
    );
    let want = DownloadError::FieldTooLong {
        field: TransferField::Index,
        chunk: 0,
    };
    assert_fails_with(&msg, 0, want);
}

#[test]
fn a_long_number_in_an_unread_member_of_aes_key_names_the_chunk_after_the_last() {
    let digits = "1".repeat(120);
    let msg = format!(r#"{{"action": "aes_key", "data": {{"key": "", "size": {digits}}}}}"#);
    let want = DownloadError::FieldTooLong {
        field: TransferField::Other,
        chunk: 2,
    };
    assert_fails_with(&msg, 2, want);
}

#[test]
fn a_hash_longer_than_its_buffer_followed_by_an_escape_names_the_hash() {
    let long = "a".repeat(100);
    let msg = format!(
        r#"{{"action": "file_chunk", "data": {{"index": 0, "hash": "{long}\n", "chunk": ""}}}}"#
    );
    let want = DownloadError::FieldTooLong {
        field: TransferField::Hash,
        chunk: 0,
    };
    assert_fails_with(&msg, 0, want);
}

#[test]
fn an_action_longer_than_its_buffer_followed_by_an_escape_names_the_action() {
    let long = "x".repeat(97);
    let msg = format!(r#"{{"action": "{long}\u0041", "data": {{}}}}"#);
    let want = DownloadError::FieldTooLong {
        field: TransferField::Action,
        chunk: 0,
    };
    assert_fails_with(&msg, 0, want);
}

#[test]
fn a_member_name_longer_than_sixteen_bytes_with_an_escape_is_skipped() {
    let (_, served, _) = hostile_start();
    // An unknown member with a long, escaped name: valid JSON the reader ignores.
    let extra = r#""an_unknown_member_\u0041_\"quoted\"": [1, {"x": "y"}], "#;
    let first = served.chunks[0].replacen("\"index\"", &format!("{extra}\"index\""), 1);
    for cuts in cut_patterns(first.len()) {
        let (mut h, served, _) = hostile_start();
        deliver(&mut h, first.as_bytes(), &cuts);
        deliver(&mut h, served.chunks[1].as_bytes(), &[]);
        deliver(&mut h, served.key_msg.as_bytes(), &[]);
        assert_eq!(h.ciphertext, served.ciphertext, "cuts {cuts:?}");
        assert_eq!(finished_key(&h).total_chunks, 2);
    }
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(64))]

    /// Overlong numbers, hashes and keys cut at random points never panic
    /// and always fail the download with the field named.
    #[test]
    fn overlong_fields_cut_anywhere_fail_the_download_by_name(
        len in 97usize..400,
        which in 0usize..3,
        cuts in proptest::collection::vec(0usize..600, 0..12),
    ) {
        let (field, msg) = match which {
            0 => (TransferField::Index, format!(r#"{{"action": "file_chunk", "data": {{"index": {}}}}}"#, "5".repeat(len))),
            1 => (TransferField::Hash, format!(r#"{{"action": "file_chunk", "data": {{"hash": "{}\/"}}}}"#, "f".repeat(len))),
            _ => (TransferField::Key, format!(r#"{{"action": "aes_key", "data": {{"key": "{}\/="}}}}"#, "Q".repeat(len))),
        };
        let mut cuts = cuts;
        cuts.sort_unstable();
        let (mut h, _, seq) = hostile_start();
        deliver(&mut h, msg.as_bytes(), &cuts);
        let want = Event::DownloadFailed { seq, error: DownloadError::FieldTooLong { field, chunk: 0 } };
        proptest::prop_assert!(h.events.contains(&want), "{:?}", h.events);
    }
}

#[test]
fn debug_of_a_download_key_hides_the_key_and_iv() {
    let key = naslink_core::cfms::DownloadKey {
        key: [0xAB; 32],
        iv: [0xCD; 16],
        sha256: None,
        file_size: 10,
        chunk_size: 2,
        total_chunks: 5,
    };
    let shown = format!("{key:?}");
    assert!(!shown.contains("171") && !shown.contains("205"), "{shown}");
    assert!(shown.contains("file_size: 10"), "{shown}");
}

#[test]
fn an_oversized_field_names_the_member_and_the_chunk_in_words() {
    let e = DownloadError::FieldTooLong {
        field: TransferField::Key,
        chunk: 4,
    };
    assert_eq!(
        e.to_string(),
        "data.key in the message for chunk 4 is too long to be valid"
    );
}
