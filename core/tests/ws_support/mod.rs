//! A scripted server for driving `ws::Client` in tests: it answers the
//! handshake, builds server frames and decodes what the client sent.
#![allow(dead_code)]

use naslink_core::random::Entropy;
use naslink_core::time::Instant;
use naslink_core::ws::frame::{self, FrameHeader, Opcode, Status};
use naslink_core::ws::handshake::{self, Url};
use naslink_core::ws::{Client, CloseCode, Closed, Config, Event};

/// Any buffer the client accepts.
pub trait Buf: AsRef<[u8]> + AsMut<[u8]> {}
impl<T: AsRef<[u8]> + AsMut<[u8]>> Buf for T {}

/// Counts up: masks and keys are predictable, which tests want.
pub struct Counter(pub u8);

impl Entropy for Counter {
    fn fill_bytes(&mut self, dest: &mut [u8]) {
        for b in dest {
            self.0 = self.0.wrapping_add(1);
            *b = self.0;
        }
    }
}

/// An owned copy of an event, so tests can collect them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ev {
    Connected,
    Rejected(u16),
    Text(String),
    Binary(Vec<u8>),
    TextChunk(String, bool, bool),
    BinaryChunk(Vec<u8>, bool, bool),
    Ping(Vec<u8>),
    Pong(Vec<u8>),
    CloseReceived(Option<u16>, String),
    Closed(Closed),
}

pub fn own(e: Event<'_>) -> Ev {
    match e {
        Event::Connected => Ev::Connected,
        Event::Rejected(r) => Ev::Rejected(r.status()),
        Event::Text(t) => Ev::Text(t.into()),
        Event::Binary(b) => Ev::Binary(b.into()),
        Event::TextChunk { data, first, last } => Ev::TextChunk(data.into(), first, last),
        Event::BinaryChunk { data, first, last } => Ev::BinaryChunk(data.into(), first, last),
        Event::Ping(p) => Ev::Ping(p.into()),
        Event::Pong(p) => Ev::Pong(p.into()),
        Event::CloseReceived { code, reason } => {
            Ev::CloseReceived(code.map(CloseCode::as_u16), reason.into())
        }
        Event::Closed(c) => Ev::Closed(c),
    }
}

pub const URL: &str = "ws://nas.local:5666/websocket?type=main";

pub fn connect<'a>(
    config: Config,
    rx: &'a mut [u8],
    tx: &'a mut [u8],
) -> Client<&'a mut [u8], Counter> {
    let url = Url::parse(URL).unwrap();
    Client::connect(Instant::ZERO, &url, &[], config, Counter(0), rx, tx).unwrap()
}

/// Everything the client wants to send, as one byte vector.
pub fn drain_tx<B: Buf, E: Entropy>(c: &mut Client<B, E>) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(b) = c.poll_transmit() {
        out.extend_from_slice(b);
        let n = b.len();
        c.advance_transmit(n);
    }
    out
}

pub fn drain_events<B: Buf, E: Entropy>(c: &mut Client<B, E>) -> Vec<Ev> {
    let mut out = Vec::new();
    while let Some(e) = c.poll_event() {
        out.push(own(e));
    }
    out
}

/// Feed `data` the way an adapter does: re-feed the unconsumed rest after
/// draining events (not the transmit side, unless `drain_transmit`).
/// Panics if a call makes no progress while nothing is pending.
pub fn feed<B: Buf, E: Entropy>(
    c: &mut Client<B, E>,
    data: &[u8],
    events: &mut Vec<Ev>,
    sent: &mut Vec<u8>,
) {
    let mut rest = data;
    while !rest.is_empty() {
        let n = c.handle_input(Instant::ZERO, rest);
        rest = &rest[n..];
        let before = events.len();
        events.extend(drain_events(c));
        let out = drain_tx(c);
        let progressed = n > 0 || events.len() > before || !out.is_empty();
        sent.extend(out);
        assert!(
            progressed,
            "handle_input made no progress and asked for nothing"
        );
    }
}

/// The 101 answer to the request in `request`.
pub fn switching_protocols(request: &[u8]) -> Vec<u8> {
    let text = std::str::from_utf8(request).unwrap();
    let key = text
        .lines()
        .find_map(|l| l.strip_prefix("Sec-WebSocket-Key: "))
        .expect("request has a key");
    let accept = handshake::accept_for_key(key.as_bytes());
    format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Accept: {}\r\n\r\n",
        std::str::from_utf8(&accept).unwrap()
    )
    .into_bytes()
}

/// A client past the handshake.
pub fn open<'a>(
    config: Config,
    rx: &'a mut [u8],
    tx: &'a mut [u8],
) -> Client<&'a mut [u8], Counter> {
    let mut c = connect(config, rx, tx);
    let request = drain_tx(&mut c);
    let answer = switching_protocols(&request);
    let (mut events, mut sent) = (Vec::new(), Vec::new());
    feed(&mut c, &answer, &mut events, &mut sent);
    assert_eq!(events, [Ev::Connected]);
    c
}

/// A server frame: unmasked, with raw first byte bits.
pub fn server_frame(fin: bool, rsv: u8, opcode: u8, payload: &[u8]) -> Vec<u8> {
    let mut out = vec![0u8; 14 + payload.len()];
    let header = FrameHeader {
        fin,
        rsv,
        opcode: Opcode::Binary,
        mask: None,
        payload_len: payload.len() as u64,
    };
    let n = header.emit(&mut out).unwrap();
    out[0] = (out[0] & 0xF0) | opcode;
    out.truncate(n);
    out.extend_from_slice(payload);
    out
}

pub fn text(s: &str) -> Vec<u8> {
    server_frame(true, 0, 1, s.as_bytes())
}

pub fn close_frame(code: u16, reason: &[u8]) -> Vec<u8> {
    let mut p = code.to_be_bytes().to_vec();
    p.extend_from_slice(reason);
    server_frame(true, 0, 8, &p)
}

/// A frame the client sent, unmasked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sent {
    pub fin: bool,
    pub opcode: Opcode,
    pub payload: Vec<u8>,
}

/// Decode client frames, checking each is masked.
pub fn decode_client(mut bytes: &[u8]) -> Vec<Sent> {
    let mut out = Vec::new();
    while !bytes.is_empty() {
        let mut copy = bytes.to_vec();
        let d = match frame::decode_in_place(&mut copy).unwrap() {
            Status::Complete(d) => d,
            Status::Partial => panic!("client sent a truncated frame"),
        };
        assert!(d.header.mask.is_some(), "client frames must be masked");
        out.push(Sent {
            fin: d.header.fin,
            opcode: d.header.opcode,
            payload: copy[d.payload.clone()].to_vec(),
        });
        bytes = &bytes[d.frame_len()..];
    }
    out
}

/// The status code of the one Close frame in `sent`.
pub fn sent_close_code(sent: &[u8]) -> Option<u16> {
    let frames = decode_client(sent);
    let close = frames.iter().find(|f| f.opcode == Opcode::Close)?;
    Some(u16::from_be_bytes([close.payload[0], close.payload[1]]))
}
