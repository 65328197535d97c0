//! Robustness of the fnOS receive path: whatever the server sends, parsing
//! and the session answer with a value or a typed error, never a panic, and
//! strings written by the request writer read back unchanged.

mod json_support;

use base64::Engine as _;
use naslink_core::fnos::response::Message;
use naslink_core::fnos::rsa::RsaPublicKey;
use naslink_core::fnos::{Config, Param, Request, Session};
use naslink_core::json::Value;
use naslink_core::time::Instant;
use proptest::prelude::*;
use sha2::Digest as _;

/// JSON-ish text with fnOS words.
fn jsonish() -> impl Strategy<Value = Vec<u8>> {
    json_support::jsonish(&[b"\"reqid\"", b"\"sysNotify\"", b"\"result\""])
}

proptest! {
    #[test]
    fn arbitrary_text_never_panics_the_message_parser(text in jsonish()) {
        let _ = Message::parse(&text);
    }

    #[test]
    fn arbitrary_messages_never_panic_the_session(msgs in prop::collection::vec(jsonish(), 0..8)) {
        let mut s: Session<'_, 2> = Session::new(Config::new("u", "p"));
        s.handle_connect(Instant::ZERO);
        for m in &msgs {
            let _ = s.handle_text(Instant::ZERO, m);
        }
        while s.poll_event().is_some() {}
    }

    #[test]
    fn strings_written_in_requests_read_back_unchanged(text in any::<String>()) {
        let mut buf = vec![0u8; 64 + text.len() * 6];
        let n = Request::new("x").param("p", Param::Str(&text)).write(None, &mut buf, 0).unwrap();
        let v = Value::parse(&buf[..n]).unwrap();
        let p = v.get("p").unwrap().as_str().unwrap();
        prop_assert!(p.eq_str(&text));
        let raw = std::str::from_utf8(p.raw()).unwrap();
        // `/` and non-ASCII text pass through unescaped.
        prop_assert_eq!(raw.matches('/').count(), text.matches('/').count());
        prop_assert_eq!(raw.chars().filter(|c| !c.is_ascii()).count(), text.chars().filter(|c| !c.is_ascii()).count());
    }

    #[test]
    fn arbitrary_pem_text_never_panics_the_key_parser(text in "[-A-Za-z0-9+/= \n]{0,600}") {
        let pem = format!("-----BEGIN PUBLIC KEY-----\n{text}\n-----END PUBLIC KEY-----\n");
        let _ = RsaPublicKey::from_pem(&pem);
        let _ = RsaPublicKey::from_spki_der(text.as_bytes());
    }
}

// ----- RSA keys from arbitrary and corrupted DER / PEM ---------------------

/// The 4096-bit test key's public half as SPKI DER and PKCS#1 DER.
fn test_key_der() -> &'static (Vec<u8>, Vec<u8>) {
    use rsa::pkcs1::EncodeRsaPublicKey;
    use rsa::pkcs8::{DecodePrivateKey, EncodePublicKey};
    static DER: std::sync::OnceLock<(Vec<u8>, Vec<u8>)> = std::sync::OnceLock::new();
    DER.get_or_init(|| {
        let pem = include_str!("fixtures/fnos_rsa4096_test_key.pem");
        let public = rsa::RsaPrivateKey::from_pkcs8_pem(pem)
            .unwrap()
            .to_public_key();
        let spki = public.to_public_key_der().unwrap().as_bytes().to_vec();
        let pkcs1 = public.to_pkcs1_der().unwrap().as_bytes().to_vec();
        (spki, pkcs1)
    })
}

/// `der` with a few bytes replaced and maybe cut short.
fn corrupted(
    der: &[u8],
    edits: &[(prop::sample::Index, u8)],
    cut: Option<prop::sample::Index>,
) -> Vec<u8> {
    let mut d = der.to_vec();
    for (at, b) in edits {
        let i = at.index(d.len());
        d[i] = *b;
    }
    if let Some(cut) = cut {
        d.truncate(cut.index(d.len() + 1));
    }
    d
}

/// A key that parsed, from whatever bytes, can be used without a panic.
fn use_key(key: &RsaPublicKey, signature: &[u8]) {
    let _ = (key.bits(), key.size(), key.exponent());
    let mut state = 1u8;
    let mut rng = naslink_core::random::from_fn(move |buf: &mut [u8]| {
        for b in buf {
            state = state.wrapping_add(7);
            *b = state;
        }
    });
    let mut out = [0u8; 512];
    let _ = key.encrypt_pkcs1v15(b"0123456789abcdef0123456789abcdef", &mut rng, &mut out);
    let hash: [u8; 32] = sha2::Sha256::digest(b"transcript").into();
    let _ = key.verify_pss::<sha2::Sha256>(&hash, signature);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn arbitrary_bytes_never_panic_the_key_parsers(
        der in prop::collection::vec(any::<u8>(), 0..700),
        exponent in prop::collection::vec(any::<u8>(), 0..12),
    ) {
        for key in [
            RsaPublicKey::from_spki_der(&der),
            RsaPublicKey::from_pkcs1_der(&der),
            RsaPublicKey::from_components(&der, &exponent),
        ].into_iter().flatten() {
            use_key(&key, &der);
        }
    }

    #[test]
    fn corrupted_keys_are_refused_or_usable_never_a_panic(
        edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..4),
        cut in prop::option::of(any::<prop::sample::Index>()),
        signature in prop::collection::vec(any::<u8>(), 510..514),
    ) {
        let (spki, pkcs1) = test_key_der();
        let spki = corrupted(spki, &edits, cut);
        let pkcs1 = corrupted(pkcs1, &edits, cut);
        for key in [RsaPublicKey::from_spki_der(&spki), RsaPublicKey::from_pkcs1_der(&pkcs1)].into_iter().flatten() {
            use_key(&key, &signature);
        }
        let mut b64 = vec![0u8; spki.len().div_ceil(3) * 4];
        let n = base64::engine::general_purpose::STANDARD.encode_slice(&spki, &mut b64).unwrap();
        let body = std::str::from_utf8(&b64[..n]).unwrap();
        let pem = format!("-----BEGIN PUBLIC KEY-----\n{body}\n-----END PUBLIC KEY-----\n");
        if let Ok(key) = RsaPublicKey::from_pem(&pem) {
            use_key(&key, &signature);
        }
    }

    #[test]
    fn arbitrary_text_never_panics_the_pem_reader(text in any::<String>(), label in 0usize..3) {
        let begin = ["-----BEGIN PUBLIC KEY-----", "-----BEGIN RSA PUBLIC KEY-----", ""][label];
        let end = ["-----END PUBLIC KEY-----", "-----END RSA PUBLIC KEY-----", ""][label];
        let _ = RsaPublicKey::from_pem(&text);
        let _ = RsaPublicKey::from_pem(&format!("{begin}{text}{end}"));
        let _ = RsaPublicKey::from_pem(&format!("{end}{text}{begin}"));
    }
}

/// The corrupted keys above start from one that parses.
#[test]
fn the_uncorrupted_test_key_parses_from_both_ders() {
    let (spki, pkcs1) = test_key_der();
    assert_eq!(RsaPublicKey::from_spki_der(spki).unwrap().bits(), 4096);
    assert_eq!(RsaPublicKey::from_pkcs1_der(pkcs1).unwrap().bits(), 4096);
}
