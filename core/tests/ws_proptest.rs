//! Robustness: arbitrary input never panics and every call makes progress;
//! valid frame sequences give the same events however the input is split.

mod ws_support;

use naslink_core::time::Instant;
use naslink_core::ws::{Config, State};
use proptest::prelude::*;
use ws_support::*;

/// Feed `wire` cut at `cuts`, with the progress check of `feed`.
fn feed_split(config: Config, rx_len: usize, wire: &[u8], cuts: &[usize]) -> (Vec<Ev>, State) {
    let (mut rx, mut tx) = (vec![0; rx_len], vec![0; 4096]);
    let mut c = open(config, &mut rx, &mut tx);
    let (mut events, mut sent) = (Vec::new(), Vec::new());
    let mut cuts: Vec<usize> = cuts.iter().map(|&c| c % (wire.len() + 1)).collect();
    cuts.sort_unstable();
    let mut at = 0;
    for cut in cuts.into_iter().chain([wire.len()]) {
        feed(&mut c, &wire[at..cut], &mut events, &mut sent);
        at = cut;
    }
    events.extend(drain_events(&mut c));
    (events, c.state())
}

#[derive(Debug, Clone)]
enum Msg {
    Text(String, Vec<usize>),
    Binary(Vec<u8>, Vec<usize>),
    Ping(Vec<u8>),
}

fn msg() -> impl Strategy<Value = Msg> {
    let cuts = prop::collection::vec(0usize..600, 0..4);
    prop_oneof![
        (".{0,200}", cuts.clone()).prop_map(|(s, c)| Msg::Text(s, c)),
        (prop::collection::vec(any::<u8>(), 0..600), cuts).prop_map(|(b, c)| Msg::Binary(b, c)),
        prop::collection::vec(any::<u8>(), 0..=125).prop_map(Msg::Ping),
    ]
}

/// Server frames for `msgs`, data messages fragmented at their cuts (which
/// may split UTF-8 characters, as servers may).
fn encode(msgs: &[Msg]) -> (Vec<u8>, Vec<Ev>) {
    let mut wire = Vec::new();
    let mut expected = Vec::new();
    for m in msgs {
        let (opcode, bytes, cuts) = match m {
            Msg::Ping(p) => {
                wire.extend(server_frame(true, 0, 9, p));
                expected.push(Ev::Ping(p.clone()));
                continue;
            }
            Msg::Text(s, cuts) => {
                expected.push(Ev::Text(s.clone()));
                (1, s.as_bytes(), cuts)
            }
            Msg::Binary(b, cuts) => {
                expected.push(Ev::Binary(b.clone()));
                (2, &b[..], cuts)
            }
        };
        let mut cuts: Vec<usize> = cuts.iter().map(|&c| c % (bytes.len() + 1)).collect();
        cuts.sort_unstable();
        cuts.push(bytes.len());
        let mut at = 0;
        for (i, &cut) in cuts.iter().enumerate() {
            let op = if i == 0 { opcode } else { 0 };
            wire.extend(server_frame(i == cuts.len() - 1, 0, op, &bytes[at..cut]));
            at = cut;
        }
    }
    (wire, expected)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn random_bytes_never_panic_and_always_progress(
        bytes in prop::collection::vec(any::<u8>(), 0..2048),
        cuts in prop::collection::vec(any::<usize>(), 0..8),
        streaming in any::<bool>(),
    ) {
        let config = Config { streaming, ..Config::default() };
        let (events, _) = feed_split(config, 256, &bytes, &cuts);
        // At most one Closed, and nothing after it.
        let closed = events.iter().position(|e| matches!(e, Ev::Closed(_)));
        if let Some(i) = closed {
            prop_assert_eq!(i, events.len() - 1);
        }
    }

    #[test]
    fn random_handshake_responses_never_panic(
        bytes in prop::collection::vec(any::<u8>(), 0..600),
        cut in any::<usize>(),
    ) {
        let (mut rx, mut tx) = (vec![0; 256], vec![0; 1024]);
        let mut c = connect(Config::default(), &mut rx, &mut tx);
        drain_tx(&mut c);
        let (mut events, mut sent) = (Vec::new(), Vec::new());
        let cut = cut % (bytes.len() + 1);
        feed(&mut c, &bytes[..cut], &mut events, &mut sent);
        feed(&mut c, &bytes[cut..], &mut events, &mut sent);
    }

    #[test]
    fn valid_frame_sequences_survive_any_split(
        msgs in prop::collection::vec(msg(), 0..8),
        cuts in prop::collection::vec(any::<usize>(), 0..10),
    ) {
        let (wire, expected) = encode(&msgs);
        let (events, state) = feed_split(Config::default(), 1024, &wire, &cuts);
        prop_assert_eq!(events, expected);
        prop_assert_eq!(state, State::Open);
    }

    #[test]
    fn streaming_reassembles_to_the_same_bytes(
        msgs in prop::collection::vec(msg(), 0..6),
        cuts in prop::collection::vec(any::<usize>(), 0..10),
    ) {
        let (wire, expected) = encode(&msgs);
        let config = Config { streaming: true, ..Config::default() };
        let (events, _) = feed_split(config, 160, &wire, &cuts);
        // Join chunks back into whole messages.
        let mut joined: Vec<Ev> = Vec::new();
        let mut text = String::new();
        let mut binary = Vec::new();
        for e in events {
            match e {
                Ev::TextChunk(s, first, last) => {
                    if first { text.clear(); }
                    text.push_str(&s);
                    if last { joined.push(Ev::Text(std::mem::take(&mut text))); }
                }
                Ev::BinaryChunk(b, first, last) => {
                    if first { binary.clear(); }
                    binary.extend(b);
                    if last { joined.push(Ev::Binary(std::mem::take(&mut binary))); }
                }
                other => joined.push(other),
            }
        }
        prop_assert_eq!(joined, expected);
    }
}

#[test]
fn handle_input_with_nothing_consumes_nothing() {
    let (mut rx, mut tx) = (vec![0; 256], vec![0; 1024]);
    let mut c = open(Config::default(), &mut rx, &mut tx);
    assert_eq!(c.handle_input(Instant::ZERO, &[]), 0);
    assert_eq!(c.poll_event(), None);
}
