//! Robustness of the one JSON view both protocols read with: documents
//! from another serializer read back identically, and any bytes, whole or
//! cut at any points, answer with a value or a named error, never a panic;
//! the streaming reader reads them the same whole or cut anywhere.

mod json_support;

use json_support::{json_value, jsonish, same, walk};
use naslink_core::json::Value;
use naslink_core::json::stream::{Reader, StreamError, Visit};
use naslink_core::json::write::JsonWriter;
use proptest::prelude::*;

const WORDS: &[&[u8]] = &[b"\"reqid\":", b"\"data\":", b"\"code\":", b"\"\\u00e9\""];

/// Cut `text` at the (sorted, deduplicated) points; always at least one piece.
fn pieces<'t>(text: &'t [u8], cuts: &[usize]) -> Vec<&'t [u8]> {
    let mut points: Vec<usize> = cuts.iter().map(|c| c % (text.len() + 1)).collect();
    points.sort_unstable();
    points.dedup();
    let mut out = Vec::new();
    let mut start = 0;
    for p in points {
        out.push(&text[start..p]);
        start = p;
    }
    out.push(&text[start..]);
    out
}

proptest! {
    #[test]
    fn documents_from_another_serializer_read_back_identically(doc in json_value()) {
        let compact = serde_json::to_string(&doc).unwrap();
        prop_assert!(same(Value::parse(compact.as_bytes()).unwrap(), &doc));
        let pretty = serde_json::to_string_pretty(&doc).unwrap();
        prop_assert!(same(Value::parse(pretty.as_bytes()).unwrap(), &doc));
    }

    #[test]
    fn arbitrary_text_never_panics_the_json_view(text in jsonish(WORDS)) {
        if let Ok(v) = Value::parse(&text) {
            walk(v, 0);
        }
    }

    #[test]
    fn random_bytes_cut_at_random_points_never_panic_the_view(
        bytes in prop::collection::vec(any::<u8>(), 0..256),
        cuts in prop::collection::vec(any::<usize>(), 0..8),
    ) {
        for piece in pieces(&bytes, &cuts) {
            match Value::parse(piece) {
                Ok(v) => walk(v, 0),
                Err(e) => prop_assert!(e.offset <= piece.len(), "{e:?}"),
            }
        }
    }

    #[test]
    fn strings_written_by_the_writer_read_back_unchanged(key in ".*", text in ".*", n in any::<u64>()) {
        let mut buf = vec![0u8; 64 + 6 * (key.len() + text.len())];
        let mut w = JsonWriter::new(&mut buf, 0);
        w.begin_object().field_str(&key, &text).field_u64("n", n).end_object();
        let len = w.finish().unwrap();
        let v = Value::parse(&buf[..len]).unwrap();
        let (k, s) = v.entries().next().unwrap();
        prop_assert!(k.eq_str(&key));
        prop_assert!(s.as_str().unwrap().eq_str(&text));
        if key != "n" {
            prop_assert_eq!(v.get("n").and_then(|n| n.as_u64()), Some(n));
        }
    }
}

/// What the streaming reader reported, string values whole.
#[derive(Debug, Default, PartialEq)]
struct Trace {
    events: Vec<String>,
    text: Vec<u8>,
}

impl Visit for Trace {
    type Error = ();
    fn member(&mut self, depth: u8, name: Option<&[u8]>) -> Result<(), ()> {
        self.events.push(format!("k{depth}{name:?}"));
        Ok(())
    }
    fn open(&mut self, depth: u8, object: bool) -> Result<(), ()> {
        self.events.push(format!("o{depth}{object}"));
        Ok(())
    }
    fn close(&mut self, depth: u8) -> Result<(), ()> {
        self.events.push(format!("c{depth}"));
        Ok(())
    }
    fn string_part(&mut self, bytes: &[u8]) -> Result<(), ()> {
        self.text.extend_from_slice(bytes);
        Ok(())
    }
    fn string_end(&mut self) -> Result<(), ()> {
        let text = std::mem::take(&mut self.text);
        self.events.push(format!("s{text:?}"));
        Ok(())
    }
    fn scalar(&mut self, text: &str) -> Result<(), ()> {
        self.events.push(format!("n{text}"));
        Ok(())
    }
}

/// Feed `text` to a streaming reader in the given pieces.
fn stream(parts: &[&[u8]]) -> (Result<(), StreamError<()>>, Trace) {
    let mut reader = Reader::new();
    let mut trace = Trace::default();
    for part in parts {
        if let Err(e) = reader.feed(part, &mut trace) {
            return (Err(e), trace);
        }
    }
    (reader.finish(&mut trace), trace)
}

proptest! {
    #[test]
    fn random_bytes_cut_at_random_points_read_as_when_whole(
        bytes in prop::collection::vec(any::<u8>(), 0..256),
        cuts in prop::collection::vec(any::<usize>(), 0..8),
    ) {
        // No panic, and every piece is taken in: the outcome and every
        // report up to it do not depend on where the document was cut.
        let whole = stream(&[&bytes]);
        prop_assert_eq!(stream(&pieces(&bytes, &cuts)), whole);
    }

    #[test]
    fn json_like_text_cut_anywhere_reads_as_when_whole(
        text in jsonish(WORDS),
        cuts in prop::collection::vec(any::<usize>(), 0..8),
    ) {
        let whole = stream(&[&text]);
        if Value::parse(&text).is_ok() && !matches!(whole.0, Err(StreamError::ScalarTooLong)) {
            // What the view accepts, the streaming reader accepts.
            prop_assert!(whole.0.is_ok(), "{:?}", whole);
        }
        prop_assert_eq!(stream(&pieces(&text, &cuts)), whole);
    }

    #[test]
    fn documents_from_another_serializer_stream_whole_and_cut(
        doc in json_value(),
        cuts in prop::collection::vec(any::<usize>(), 0..8),
    ) {
        let text = serde_json::to_string_pretty(&doc).unwrap();
        let whole = stream(&[text.as_bytes()]);
        prop_assert!(whole.0.is_ok(), "{:?}", whole);
        prop_assert_eq!(stream(&pieces(text.as_bytes(), &cuts)), whole);
    }
}

proptest! {
    #[test]
    fn the_compact_float_reader_agrees_with_the_float_parser(x in any::<f64>()) {
        let text = serde_json::to_string(&x).unwrap();
        if let Ok(v) = Value::parse(text.as_bytes())
            && let Some(compact) = v.as_f64_compact()
        {
            prop_assert_eq!(compact, v.as_f64().unwrap(), "{}", text);
        }
    }

    #[test]
    fn timestamps_read_compactly_as_the_float_parser_reads_them(
        secs in 0u64..5_000_000_000,
        frac in 0u64..10_000_000,
        digits in 0usize..8,
    ) {
        let frac = format!("{frac:07}");
        let text = format!("{secs}.{}", &frac[..digits.max(1)]);
        let v = Value::parse(text.as_bytes()).unwrap();
        prop_assert_eq!(v.as_f64_compact(), v.as_f64(), "{}", text);
    }
}
