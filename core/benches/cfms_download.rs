//! CFMS download decoding cost per MiB: the whole pipeline (streaming JSON
//! and base64 into a ciphertext store, then AES-256-CFB8 decryption with
//! per-chunk and whole-file SHA-256) beside its three primitives alone.
//!
//! Run: `cargo bench -p naslink-core --bench cfms_download`. Besides
//! criterion's report it prints MB/s of each and the ratio of the pipeline
//! to the sum of the primitives (1.0 = no overhead beyond the primitives).

use std::hint::black_box;
use std::time::Instant as StdInstant;

use aes::Aes256;
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use cfb8::cipher::KeyIvInit;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use naslink_core::cfms::{Buffers, Config, ConnectionEvent, DownloadKey, FileDecryptor, Session};
use naslink_core::connection::{self, Message};
use naslink_core::time::Instant;
use naslink_core::{random, ws};
use sha2::{Digest, Sha256};

const MIB: usize = 1 << 20;
const CHUNK: usize = 2 * MIB;
/// Bytes of plaintext per run.
const SIZE: usize = 4 * MIB;
/// Pieces the WebSocket layer hands over.
const PIECE: usize = 16 * 1024;

fn hex(d: &[u8]) -> String {
    d.iter().map(|b| format!("{b:02x}")).collect()
}

fn b64(data: &[u8]) -> Vec<u8> {
    let mut out = vec![0u8; data.len().div_ceil(3) * 4];
    let n = B64.encode_slice(data, &mut out).unwrap();
    out.truncate(n);
    out
}

struct Fixture {
    plain: Vec<u8>,
    ciphertext: Vec<u8>,
    text: Vec<u8>,
    messages: Vec<Vec<u8>>,
    header: Vec<u8>,
    key: [u8; 32],
    iv: [u8; 16],
}

fn fixture() -> Fixture {
    let plain: Vec<u8> = (0..SIZE as u32)
        .map(|i| (i.wrapping_mul(2654435761) >> 24) as u8)
        .collect();
    let (key, iv) = ([0x11; 32], [0x22; 16]);
    let mut ciphertext = plain.clone();
    cfb8::Encryptor::<Aes256>::new(&key.into(), &iv.into()).encrypt(&mut ciphertext);
    let total = SIZE.div_ceil(CHUNK);
    let header = format!(
        "{{\"action\": \"transfer_file\", \"data\": {{\"sha256\": \"{}\", \"file_size\": {SIZE}, \"chunk_size\": {CHUNK}, \"total_chunks\": {total}}}}}",
        hex(&Sha256::digest(&plain))
    )
    .into_bytes();
    let mut messages: Vec<Vec<u8>> = (0..total)
        .map(|i| {
            let r = i * CHUNK..((i + 1) * CHUNK).min(SIZE);
            let iv_field = if i == 0 { String::from_utf8(b64(&iv)).unwrap() } else { String::new() };
            let mut m = format!(
                "{{\"action\": \"file_chunk\", \"data\": {{\"index\": {i}, \"hash\": \"{}\", \"iv\": \"{iv_field}\", \"chunk\": \"",
                hex(&Sha256::digest(&plain[r.clone()]))
            )
            .into_bytes();
            m.extend_from_slice(&b64(&ciphertext[r]));
            m.extend_from_slice(b"\"}}");
            m
        })
        .collect();
    messages.push(
        format!(
            "{{\"action\": \"aes_key\", \"data\": {{\"key\": \"{}\"}}}}",
            String::from_utf8(b64(&key)).unwrap()
        )
        .into_bytes(),
    );
    let text = b64(&ciphertext);
    Fixture {
        plain,
        ciphertext,
        text,
        messages,
        header,
        key,
        iv,
    }
}

/// One received message (or piece of one) through the session as a
/// `Connection` hands it over; download data goes to `store`.
fn take(
    session: &mut Session<'_, 4>,
    store: &mut Vec<u8>,
    key: &mut Option<DownloadKey>,
    message: Message<'_>,
) {
    let now = Instant::ZERO;
    connection::Session::handle_message(session, now, message);
    while let Some(e) = connection::Session::poll_event(session, Some(message)) {
        match e {
            ConnectionEvent::DownloadData { data, .. } => store.extend_from_slice(data),
            ConnectionEvent::DownloadFinished { key: k, .. } => *key = Some(k),
            ConnectionEvent::BadMessage(e) => panic!("refused: {e:?}"),
            _ => {}
        }
    }
}

/// The whole download path; returns the plaintext digest.
fn pipeline(f: &Fixture, store: &mut Vec<u8>, rx: &mut [u8], hashes: &mut [[u8; 32]]) -> [u8; 32] {
    store.clear();
    let mut session: Session<'_, 4> = Session::new(
        Config::default(),
        Buffers {
            rx,
            chunk_hashes: hashes,
        },
    );
    let now = Instant::ZERO;
    let mut buf = [0u8; 512];
    let mut rng = random::from_fn(|b: &mut [u8]| b.fill(7));
    let mut key = None;
    let whole = |data| Message {
        kind: ws::MessageKind::Text,
        data,
        first: true,
        last: true,
    };
    connection::Session::handle_connect(&mut session, now);
    connection::Session::poll_transmit(&mut session, now, &mut rng, &mut buf).unwrap();
    let info = br#"{"code": 200, "data": {"server_name": "b", "version": "b", "protocol_version": 3, "lockdown": false}, "message": "ok"}"#;
    take(&mut session, store, &mut key, whole(info));
    session.download_file(now, "task", &mut buf).unwrap();
    take(&mut session, store, &mut key, whole(&f.header));
    connection::Session::poll_transmit(&mut session, now, &mut rng, &mut buf).unwrap();
    for m in &f.messages {
        let pieces = m.len().div_ceil(PIECE);
        for (i, p) in m.chunks(PIECE).enumerate() {
            let piece = Message {
                kind: ws::MessageKind::Text,
                data: p,
                first: i == 0,
                last: i + 1 == pieces,
            };
            take(&mut session, store, &mut key, piece);
        }
    }
    let key = key.expect("download finished");
    let mut d = FileDecryptor::new(&key, session.chunk_hashes()).unwrap();
    for p in store.chunks_mut(64 * 1024) {
        d.decrypt(p).unwrap();
    }
    d.finish().unwrap()
}

fn base64_alone(f: &Fixture, out: &mut [u8]) -> usize {
    B64.decode_slice(&f.text, out).unwrap()
}

fn cfb8_alone(f: &Fixture, buf: &mut Vec<u8>) {
    buf.clear();
    buf.extend_from_slice(&f.ciphertext);
    cfb8::Decryptor::<Aes256>::new(&f.key.into(), &f.iv.into()).decrypt(buf);
}

fn sha256_alone(f: &Fixture) -> [u8; 32] {
    Sha256::digest(&f.plain).into()
}

fn mb_per_s(bytes: usize, secs: f64) -> f64 {
    bytes as f64 / secs / 1e6
}

fn time(mut f: impl FnMut()) -> f64 {
    f();
    let runs = 3;
    let start = StdInstant::now();
    for _ in 0..runs {
        f();
    }
    start.elapsed().as_secs_f64() / runs as f64
}

fn bench(c: &mut Criterion) {
    let f = fixture();
    let mut store = Vec::with_capacity(SIZE);
    // Holds one piece's ciphertext (3/4 of it), as inside a Connection.
    let mut rx = vec![0u8; PIECE];
    let mut hashes = vec![[0u8; 32]; 4];
    let mut out = vec![0u8; SIZE + 3];
    let mut buf = Vec::with_capacity(SIZE);
    assert_eq!(
        pipeline(&f, &mut store, &mut rx, &mut hashes),
        sha256_alone(&f)
    );
    assert_eq!(store, f.plain);

    let mut g = c.benchmark_group("cfms_download");
    g.throughput(Throughput::Bytes(SIZE as u64));
    g.sample_size(10);
    g.bench_function("pipeline", |b| {
        b.iter(|| black_box(pipeline(&f, &mut store, &mut rx, &mut hashes)))
    });
    g.bench_function("base64_alone", |b| {
        b.iter(|| black_box(base64_alone(&f, &mut out)))
    });
    g.bench_function("cfb8_alone", |b| {
        b.iter(|| cfb8_alone(&f, black_box(&mut buf)))
    });
    g.bench_function("sha256_alone", |b| b.iter(|| black_box(sha256_alone(&f))));
    g.finish();

    // One summary in MB/s of plaintext, and the pipeline's overhead.
    let t_pipe = time(|| {
        black_box(pipeline(&f, &mut store, &mut rx, &mut hashes));
    });
    let t_b64 = time(|| {
        black_box(base64_alone(&f, &mut out));
    });
    let t_cfb8 = time(|| cfb8_alone(&f, black_box(&mut buf)));
    let t_sha = time(|| {
        black_box(sha256_alone(&f));
    });
    // The pipeline hashes the plaintext twice (per chunk and whole file).
    let t_sum = t_b64 + t_cfb8 + 2.0 * t_sha;
    println!(
        "cfms_download per MiB: pipeline {:.1} MB/s ({:.2} ms/MiB); base64 {:.1} MB/s; cfb8 {:.1} MB/s; sha256 {:.1} MB/s; \
         pipeline / (base64 + cfb8 + 2 x sha256) = {:.2}",
        mb_per_s(SIZE, t_pipe),
        t_pipe * 1e3 / (SIZE / MIB) as f64,
        mb_per_s(SIZE, t_b64),
        mb_per_s(SIZE, t_cfb8),
        mb_per_s(SIZE, t_sha),
        t_pipe / t_sum
    );
}

criterion_group!(benches, bench);
criterion_main!(benches);
