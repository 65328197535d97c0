//! Generators and checks shared by every test of the one JSON view
//! (`naslink_core::json`): the view tests themselves and the fnOS and CFMS
//! receive-path proptests that feed it protocol-shaped text.
#![allow(dead_code)] // each test binary uses its own subset

use naslink_core::json::{Kind, MAX_DEPTH, Value};
use proptest::prelude::*;

/// Walk every value reachable from `v`, decoding every string and number.
pub fn walk(v: Value<'_>, depth: usize) {
    assert!(depth <= MAX_DEPTH + 1);
    match v.kind() {
        Kind::String => {
            let s = v.as_str().unwrap();
            let mut buf = vec![0u8; s.decoded_len()];
            let text = s.decode_into(&mut buf).unwrap();
            assert!(s.eq_str(text));
            assert!(s.starts_with(text));
        }
        Kind::Object => {
            for (k, item) in v.as_object().unwrap() {
                let _ = k.decoded_len();
                let _ = v.get(&k.chars().collect::<String>());
                walk(item, depth + 1);
            }
        }
        Kind::Array => v.items().for_each(|item| walk(item, depth + 1)),
        _ => {
            let _ = (v.as_u64(), v.as_i64(), v.as_f64(), v.as_bool());
        }
    }
}

/// Bytes that shape JSON, and the escapes and numbers the view decodes.
const STRUCTURE: &[&[u8]] = &[
    b"{",
    b"}",
    b"[",
    b"]",
    b"\"",
    b":",
    b",",
    br"\u",
    br"\ud83d",
    br"\ude00",
    br"\/",
    b"-0.5e+3",
    b"200",
    b"99999999999999999999999999",
    b"null",
    b"true",
];

/// JSON-ish text: mostly structure, escapes, quotes and long numbers, so
/// broken and deep structures come often, with the protocol's own `words`
/// mixed in.
pub fn jsonish(words: &'static [&'static [u8]]) -> impl Strategy<Value = Vec<u8>> {
    let atoms = prop_oneof![
        prop::sample::select(STRUCTURE).prop_map(<[u8]>::to_vec),
        prop::sample::select(words).prop_map(<[u8]>::to_vec),
        prop::collection::vec(any::<u8>(), 0..4),
    ];
    prop::collection::vec(atoms, 0..40).prop_map(|parts| parts.concat())
}

/// Any JSON document serde_json can produce.
pub fn json_value() -> impl Strategy<Value = serde_json::Value> {
    let leaf = prop_oneof![
        Just(serde_json::Value::Null),
        any::<bool>().prop_map(serde_json::Value::from),
        any::<i64>().prop_map(serde_json::Value::from),
        any::<u64>().prop_map(serde_json::Value::from),
        any::<f64>().prop_map(serde_json::Value::from),
        any::<String>().prop_map(serde_json::Value::from),
    ];
    leaf.prop_recursive(4, 32, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(serde_json::Value::from),
            prop::collection::btree_map(any::<String>(), inner, 0..6)
                .prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
        ]
    })
}

/// `ours` reads as the same document as `theirs`.
pub fn same(ours: Value<'_>, theirs: &serde_json::Value) -> bool {
    use serde_json::Value as J;
    match theirs {
        J::Null => ours.is_null(),
        J::Bool(b) => ours.as_bool() == Some(*b),
        J::Number(n) => match (n.as_u64(), n.as_i64(), n.as_f64()) {
            (Some(u), _, _) => ours.as_u64() == Some(u),
            (None, Some(i), _) => ours.as_i64() == Some(i),
            (None, None, f) => ours.as_f64() == f,
        },
        J::String(s) => ours.as_str().is_some_and(|o| o.eq_str(s)),
        J::Array(items) => ours.as_array().is_some_and(|a| {
            a.iter().count() == items.len() && a.iter().zip(items).all(|(o, t)| same(o, t))
        }),
        J::Object(map) => ours.as_object().is_some_and(|o| {
            o.iter().count() == map.len()
                && map
                    .iter()
                    .all(|(k, t)| o.get(k).is_some_and(|v| same(v, t)))
        }),
    }
}
