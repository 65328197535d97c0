//! The shared fnOS test vectors (`shared/vectors/fnos.json`), byte for byte.

use naslink_core::fnos::envelope::{LoginKey, write_envelope};
use naslink_core::fnos::reqid::{BackId, Reqid};
use naslink_core::fnos::rsa::RsaPublicKey;
use naslink_core::fnos::sign::{SIGNATURE_LEN, Secret, Signer};
use naslink_core::json::Value;
use naslink_core::random;

const VECTORS: &str = include_str!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../shared/vectors/fnos.json"
));

fn vectors() -> serde_json::Value {
    serde_json::from_str(VECTORS).expect("vector file is JSON")
}

fn text<'a>(v: &'a serde_json::Value, path: &[&str]) -> &'a str {
    let mut at = v;
    for p in path {
        at = &at[*p];
    }
    at.as_str()
        .unwrap_or_else(|| panic!("vector {path:?} is a string"))
}

fn hex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

/// Entropy that replays recorded bytes and fails the test if asked for more.
fn replay(bytes: Vec<u8>) -> impl random::Entropy {
    let mut feed = bytes.into_iter();
    random::from_fn(move |buf: &mut [u8]| {
        for b in buf {
            *b = feed
                .next()
                .expect("test drew more random bytes than recorded");
        }
    })
}

#[test]
fn reqid_is_hex_seconds_back_id_and_counter() {
    let v = vectors();
    for case in v["reqid"]["cases"].as_array().unwrap() {
        let secs = case["unix_seconds"].as_u64().unwrap() as u32;
        let back_id = BackId::parse(case["backId"].as_str().unwrap()).unwrap();
        let counter = case["counter"].as_u64().unwrap() as u16;
        assert_eq!(
            Reqid::new(secs, &back_id, counter).as_str(),
            case["reqid"].as_str().unwrap()
        );
    }
}

#[test]
fn signature_is_base64_hmac_of_the_exact_bytes_prepended() {
    let v = vectors();
    let key = hex(text(&v, &["signing", "hmac_key_hex"]));
    let signer = Signer::new(&Secret::new(&key).unwrap());
    for case in v["signing"]["cases"].as_array().unwrap() {
        let json = case["json_text"].as_str().unwrap();
        let sig = signer.signature(json.as_bytes());
        assert_eq!(&sig[..], case["signature_b64"].as_str().unwrap().as_bytes());

        let mut buf = vec![0u8; SIGNATURE_LEN + json.len()];
        buf[SIGNATURE_LEN..].copy_from_slice(json.as_bytes());
        let n = signer.sign_in_place(&mut buf, SIGNATURE_LEN + json.len());
        assert_eq!(&buf[..n], case["wire_text"].as_str().unwrap().as_bytes());
    }
}

#[test]
fn rsa_public_key_is_read_from_the_escaped_pem_in_get_rsa_pub() {
    let v = vectors();
    let frame = text(&v, &["frames", "getRSAPub_response_example"]);
    let msg = Value::parse(frame.as_bytes()).unwrap();
    let pem = msg.get("pub").unwrap().as_str().unwrap();
    let mut buf = [0u8; 1024];
    let pem = pem.decode_into(&mut buf).unwrap();
    assert_eq!(pem, text(&v, &["rsa_test_key", "public_pem_spki"]));
    let key = RsaPublicKey::from_pem(pem).unwrap();
    assert_eq!(key.bits(), 2048);
    assert_eq!(key.size(), 256);
    assert_eq!(key.exponent(), 65537);
    let n = hex(text(&v, &["rsa_test_key", "n_hex"]));
    assert_eq!(key, RsaPublicKey::from_components(&n, &[1, 0, 1]).unwrap());
}

#[test]
fn login_envelope_matches_the_web_ui_byte_for_byte() {
    let v = vectors();
    let login = &v["login_web_style"];
    let key: [u8; 32] = text(login, &["aes_key_ascii"])
        .as_bytes()
        .try_into()
        .unwrap();
    let iv: [u8; 16] = hex(text(login, &["iv_hex"])).try_into().unwrap();
    let login_key = LoginKey::new(key, iv);
    let rsa = RsaPublicKey::from_pem(text(&v, &["rsa_test_key", "public_pem_spki"])).unwrap();
    let mut rng = replay(hex(text(login, &["rsa_pkcs1v15_ps_hex"])));

    let plain = text(login, &["login_plaintext_json"]).as_bytes();
    let mut plaintext = vec![0u8; plain.len() + 16];
    plaintext[..plain.len()].copy_from_slice(plain);
    let mut out = vec![0u8; 2048];
    let n = write_envelope(
        &login_key,
        &rsa,
        &mut plaintext,
        plain.len(),
        &mut rng,
        &mut out,
    )
    .unwrap();
    assert_eq!(
        std::str::from_utf8(&out[..n]).unwrap(),
        text(login, &["encrypted_envelope_wire_text"])
    );
    let aes = hex(text(login, &["aes_ciphertext_hex"]));
    assert_eq!(
        &plaintext[..aes.len()],
        &aes[..],
        "plaintext is encrypted in place"
    );
}

#[test]
fn rsa_encryption_output_is_the_recorded_ciphertext() {
    let v = vectors();
    let login = &v["login_web_style"];
    let rsa = RsaPublicKey::from_pem(text(&v, &["rsa_test_key", "public_pem_spki"])).unwrap();
    let mut rng = replay(hex(text(login, &["rsa_pkcs1v15_ps_hex"])));
    let mut out = [0u8; 512];
    let n = rsa
        .encrypt_pkcs1v15(
            text(login, &["aes_key_ascii"]).as_bytes(),
            &mut rng,
            &mut out,
        )
        .unwrap();
    use base64::Engine as _;
    let mut expected = [0u8; 512];
    let len = base64::engine::general_purpose::STANDARD
        .decode_slice(text(login, &["rsa_ciphertext_b64"]), &mut expected)
        .unwrap();
    assert_eq!(&out[..n], &expected[..len]);
}

#[test]
fn secret_is_decrypted_with_the_login_key_and_iv() {
    let v = vectors();
    let s = &v["secret"]["for_login_web_style"];
    let key: [u8; 32] = text(s, &["aes_key_ascii"]).as_bytes().try_into().unwrap();
    let iv: [u8; 16] = hex(text(s, &["iv_hex"])).try_into().unwrap();
    let secret = LoginKey::new(key, iv)
        .decrypt_secret(text(s, &["secret_field"]).as_bytes())
        .unwrap();
    assert_eq!(
        secret.as_bytes(),
        &hex(text(s, &["decrypted_hmac_key_hex"]))[..]
    );
}

#[test]
fn secret_with_a_wrong_key_is_rejected_not_accepted_as_garbage() {
    let v = vectors();
    let s = &v["secret"]["for_login_web_style"];
    let wrong = LoginKey::new([b'x'; 32], [0; 16]);
    assert!(
        wrong
            .decrypt_secret(text(s, &["secret_field"]).as_bytes())
            .is_err()
    );
}
