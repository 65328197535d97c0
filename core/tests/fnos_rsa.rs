//! RSAES-PKCS1-v1_5 against an independent implementation (the `rsa` crate,
//! dev-only), for both key sizes a server may use.

use naslink_core::fnos::rsa::RsaPublicKey;
use naslink_core::random;
use rsa::pkcs8::{DecodePrivateKey, EncodePublicKey, LineEnding};

/// A throwaway 4096-bit key generated once with `openssl genrsa 4096` for
/// this test only.
const KEY_4096: &str = include_str!("fixtures/fnos_rsa4096_test_key.pem");
const VECTORS: &str = include_str!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../shared/vectors/fnos.json"
));

fn counter_entropy() -> impl random::Entropy {
    let mut state = 0x9e37_79b9_u32;
    random::from_fn(move |buf: &mut [u8]| {
        for b in buf {
            state = state.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            *b = (state >> 24) as u8;
        }
    })
}

fn round_trip(private_pem: &str, bits: usize) {
    let private = rsa::RsaPrivateKey::from_pkcs8_pem(private_pem).unwrap();
    let public_pem = private
        .to_public_key()
        .to_public_key_pem(LineEnding::LF)
        .unwrap();
    let key = RsaPublicKey::from_pem(&public_pem).unwrap();
    assert_eq!(key.bits(), bits);
    assert_eq!(key.size(), bits / 8);

    let message = b"Fn0sTestAesKey0123456789abcdefXY";
    let mut out = [0u8; 512];
    let n = key
        .encrypt_pkcs1v15(message, &mut counter_entropy(), &mut out)
        .unwrap();
    assert_eq!(n, bits / 8, "ciphertext length equals modulus length");
    let plain = private.decrypt(rsa::Pkcs1v15Encrypt, &out[..n]).unwrap();
    assert_eq!(plain, message);
}

#[test]
fn pkcs1_v15_ciphertext_of_a_4096_bit_key_decrypts_with_the_private_key() {
    round_trip(KEY_4096, 4096);
}

#[test]
fn pkcs1_v15_ciphertext_of_a_2048_bit_key_decrypts_with_the_private_key() {
    let v: serde_json::Value = serde_json::from_str(VECTORS).unwrap();
    round_trip(
        v["rsa_test_key"]["private_pem_pkcs8"].as_str().unwrap(),
        2048,
    );
}

#[test]
fn message_longer_than_modulus_minus_eleven_is_refused() {
    let private = rsa::RsaPrivateKey::from_pkcs8_pem(KEY_4096).unwrap();
    let public_pem = private
        .to_public_key()
        .to_public_key_pem(LineEnding::LF)
        .unwrap();
    let key = RsaPublicKey::from_pem(&public_pem).unwrap();
    let mut out = [0u8; 512];
    let too_long = [1u8; 512 - 10];
    assert_eq!(
        key.encrypt_pkcs1v15(&too_long, &mut counter_entropy(), &mut out),
        Err(naslink_core::fnos::rsa::RsaError::MessageTooLong)
    );
    let mut short = [0u8; 511];
    assert_eq!(
        key.encrypt_pkcs1v15(b"k", &mut counter_entropy(), &mut short),
        Err(naslink_core::fnos::rsa::RsaError::BufferTooSmall { required: 512 })
    );
}
