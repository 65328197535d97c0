//! WebSocket framing speed: naslink-core beside tungstenite and a plain
//! memcpy of the payload, in the same run.
//!
//! - `encode`: one masked client frame from a payload (what sending costs).
//!   naslink through its frame layer and through the full `Client`
//!   (`send_binary` + `poll_transmit`, mask drawn from entropy); tungstenite
//!   through its `WebSocket` in the client role (the only public way it
//!   masks), writing into a reused `Vec`.
//! - `decode`: one frame to a delivered message. naslink unmasks a masked
//!   frame in place (frame layer) and receives an unmasked server frame
//!   through `Client::handle_input` + `poll_event`; tungstenite reads the
//!   same unmasked frame through its client-role `WebSocket`.
//!
//! Two memcpy baselines: between aligned buffers, and to or from the
//! payload's place inside a frame (after a 2–14 byte header), which is the
//! floor for any encoder or decoder.
//!
//! Run: `cargo bench -p naslink-core --bench ws`. The README reports the
//! ratios; criterion prints the times.

use std::hint::black_box;
use std::io::{self, Cursor, Read, Write};

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use naslink_core::random;
use naslink_core::time::Instant;
use naslink_core::ws::frame::{self, Opcode};
use naslink_core::ws::{Client, Config, Event, Url};
use tungstenite::protocol::{Role, WebSocket};
use tungstenite::{Bytes, Message};

const SIZES: [usize; 3] = [16, 1024, 64 * 1024];
const MASK: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];

/// A cheap, deterministic entropy source (xorshift64, eight bytes a step),
/// so the client pays for drawing a mask about what a buffered userspace RNG
/// costs (tungstenite draws from `rand`'s thread RNG) without the benchmark
/// measuring an OS RNG.
fn xorshift() -> impl FnMut(&mut [u8]) {
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    move |buf: &mut [u8]| {
        for chunk in buf.chunks_mut(8) {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            chunk.copy_from_slice(&state.to_le_bytes()[..chunk.len()]);
        }
    }
}

fn payload(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 31 % 251) as u8).collect()
}

/// An unmasked server frame carrying `payload`, as a client receives it.
fn server_frame(payload: &[u8]) -> Vec<u8> {
    let header = frame::FrameHeader {
        fin: true,
        rsv: 0,
        opcode: Opcode::Binary,
        mask: None,
        payload_len: payload.len() as u64,
    };
    let mut out = vec![0u8; header.buffer_len() + payload.len()];
    let n = header.emit(&mut out).expect("header fits");
    out[n..].copy_from_slice(payload);
    out
}

/// A naslink client past its handshake, with buffers sized for `max`.
fn open_client<'a>(
    rx: &'a mut [u8],
    tx: &'a mut [u8],
) -> Client<&'a mut [u8], random::FromFn<impl FnMut(&mut [u8])>> {
    let url = Url::parse("ws://127.0.0.1:9/bench").expect("valid url");
    let mut client = Client::connect(
        Instant::ZERO,
        &url,
        &[],
        Config::default(),
        random::from_fn(xorshift()),
        rx,
        tx,
    )
    .expect("client");
    let request =
        String::from_utf8(client.poll_transmit().expect("request").to_vec()).expect("ascii");
    let n = request.len();
    client.advance_transmit(n);
    let key = request
        .lines()
        .find_map(|l| l.strip_prefix("Sec-WebSocket-Key: "))
        .expect("key header");
    let accept = naslink_core::ws::handshake::accept_for_key(key.as_bytes());
    let response = format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {}\r\n\r\n",
        std::str::from_utf8(&accept).expect("base64")
    );
    assert_eq!(
        client.handle_input(Instant::ZERO, response.as_bytes()),
        response.len()
    );
    assert_eq!(client.poll_event(), Some(Event::Connected));
    client
}

/// A duplex in-memory stream for tungstenite: reads replay `input`, writes
/// land in `output`.
struct Memory {
    input: Cursor<Vec<u8>>,
    output: Vec<u8>,
}

impl Read for Memory {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.input.read(buf)?;
        if n == 0 {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        Ok(n)
    }
}

impl Write for Memory {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.output.extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

fn tungstenite_client(input: Vec<u8>) -> WebSocket<Memory> {
    WebSocket::from_raw_socket(
        Memory {
            input: Cursor::new(input),
            output: Vec::with_capacity(128 * 1024),
        },
        Role::Client,
        None,
    )
}

fn encode(c: &mut Criterion) {
    let mut group = c.benchmark_group("encode+mask");
    for len in SIZES {
        let data = payload(len);
        group.throughput(Throughput::Bytes(len as u64));

        let mut out = vec![0u8; len + 14];
        group.bench_function(BenchmarkId::new("memcpy", len), |b| {
            b.iter(|| {
                out[..len].copy_from_slice(black_box(&data));
                black_box(&out);
            })
        });
        // The payload's place in a masked client frame starts after the
        // header; a copy to there is the floor for any encoder.
        let at = server_frame(&data).len() - len + 4; // header + mask key
        group.bench_function(BenchmarkId::new("memcpy-in-frame", len), |b| {
            b.iter(|| {
                out[at..at + len].copy_from_slice(black_box(&data));
                black_box(&out);
            })
        });
        group.bench_function(BenchmarkId::new("naslink-frame", len), |b| {
            b.iter(|| {
                let n =
                    frame::encode_masked(Opcode::Binary, true, MASK, black_box(&data), &mut out)
                        .expect("fits");
                black_box(&out[..n]);
            })
        });

        let (mut rx, mut tx) = (vec![0u8; 4096], vec![0u8; len + 4096]);
        let mut client = open_client(&mut rx, &mut tx);
        group.bench_function(BenchmarkId::new("naslink-client", len), |b| {
            b.iter(|| {
                client.send_binary(black_box(&data)).expect("send");
                let n = black_box(client.poll_transmit().expect("frame")).len();
                client.advance_transmit(n);
            })
        });

        let mut ws = tungstenite_client(Vec::new());
        group.bench_function(BenchmarkId::new("tungstenite", len), |b| {
            b.iter(|| {
                ws.get_mut().output.clear();
                ws.send(Message::Binary(Bytes::copy_from_slice(black_box(&data))))
                    .expect("send");
                black_box(&ws.get_ref().output);
            })
        });
    }
    group.finish();
}

fn decode(c: &mut Criterion) {
    let mut group = c.benchmark_group("decode+unmask");
    for len in SIZES {
        let data = payload(len);
        group.throughput(Throughput::Bytes(len as u64));

        let mut out = vec![0u8; len];
        group.bench_function(BenchmarkId::new("memcpy", len), |b| {
            b.iter(|| {
                out.copy_from_slice(black_box(&data));
                black_box(&out);
            })
        });
        // The payload as it arrives: inside the frame, after its header.
        let wire = server_frame(&data);
        let at = wire.len() - len;
        group.bench_function(BenchmarkId::new("memcpy-in-frame", len), |b| {
            b.iter(|| {
                out.copy_from_slice(black_box(&wire[at..]));
                black_box(&out);
            })
        });

        // Unmasking toggles the payload; every pass costs the same.
        let mut masked = vec![0u8; len + 14];
        let n = frame::encode_masked(Opcode::Binary, true, MASK, &data, &mut masked).expect("fits");
        masked.truncate(n);
        group.bench_function(BenchmarkId::new("naslink-frame", len), |b| {
            b.iter(|| match frame::decode_in_place(black_box(&mut masked)) {
                Ok(frame::Status::Complete(d)) => black_box(d.payload.len()),
                other => panic!("frame did not decode: {other:?}"),
            })
        });

        let (mut rx, mut tx) = (vec![0u8; len + 4096], vec![0u8; 4096]);
        let mut client = open_client(&mut rx, &mut tx);
        group.bench_function(BenchmarkId::new("naslink-client", len), |b| {
            b.iter(|| {
                let used = client.handle_input(Instant::ZERO, black_box(&wire));
                debug_assert_eq!(used, wire.len());
                match client.poll_event() {
                    Some(Event::Binary(m)) => black_box(m.len()),
                    other => panic!("no message: {other:?}"),
                }
            })
        });

        let mut ws = tungstenite_client(wire.clone());
        group.bench_function(BenchmarkId::new("tungstenite", len), |b| {
            b.iter(|| {
                ws.get_mut().input.set_position(0);
                match ws.read() {
                    Ok(Message::Binary(m)) => black_box(m.len()),
                    other => panic!("no message: {other:?}"),
                }
            })
        });
    }
    group.finish();
}

criterion_group!(benches, encode, decode);
criterion_main!(benches);
