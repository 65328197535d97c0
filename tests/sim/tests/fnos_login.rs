//! Key exchange and password login against the fnOS emulator.

mod fnos_support;

use fnos_support::{Client, start, start_default};
use naslink_sim::fnos::{Config, KeySource, Server};
use rsa::pkcs8::DecodePublicKey;
use rsa::traits::PublicKeyParts;
use serde_json::{Value, json};

#[tokio::test]
async fn get_rsa_pub_gives_2048_bit_spki_and_si_as_string() {
    let server = start_default().await;
    let client = Client::connect(&server.url()).await;
    let key = rsa::RsaPublicKey::from_public_key_pem(&client.public_pem).expect("SPKI PEM");
    assert_eq!(key.size() * 8, 2048);
    assert!(
        client
            .public_pem
            .starts_with("-----BEGIN PUBLIC KEY-----\n")
    );
    assert!((17..=18).contains(&client.si.len()), "si {}", client.si);
    assert!(client.si.bytes().all(|b| b.is_ascii_digit()));
    server.shutdown().await;
}

#[tokio::test]
async fn util_get_si_returns_the_connections_si() {
    let server = start_default().await;
    let mut client = Client::connect(&server.url()).await;
    client.send(r#"{"reqid":"x1","req":"util.getSI"}"#).await;
    let answer = client.recv().await;
    assert_eq!(
        answer,
        json!({"si": client.si, "result": "succ", "reqid": "x1"})
    );
    server.shutdown().await;
}

#[tokio::test]
async fn every_connection_gets_its_own_si() {
    let server = start_default().await;
    let a = Client::connect(&server.url()).await;
    let b = Client::connect(&server.url()).await;
    assert_ne!(a.si, b.si);
    server.shutdown().await;
}

#[tokio::test]
async fn encrypted_login_returns_16_byte_secret_sealed_with_client_key_and_iv() {
    let server = start_default().await;
    let mut client = Client::connect(&server.url()).await;
    let si = Value::String(client.si.clone());
    let inner = client.login_json("admin", "admin", &si);
    let inner_reqid = serde_json::from_str::<Value>(&inner).expect("json")["reqid"].clone();
    let (key, iv) = client.send_encrypted(&inner).await;
    let answer = client.recv().await;
    assert_eq!(answer["result"], "succ");
    assert_eq!(answer["reqid"], inner_reqid, "the reqid is the inner one");
    assert_eq!(answer["uid"], 1000);
    assert_eq!(answer["admin"], true);
    assert!(
        answer["longToken"].is_string(),
        "stay:true asks for a long token"
    );
    let back_id = answer["backId"].as_str().expect("backId");
    assert_eq!(back_id.len(), 16);
    assert!(back_id.bytes().all(|b| b.is_ascii_hexdigit()));
    let credentials = client.take_credentials(&answer, &key, &iv);
    assert_eq!(credentials.secret.len(), 16);
    assert_eq!(
        answer["secret"].as_str().map(str::len),
        Some(44),
        "32-byte ciphertext in base64"
    );
    server.shutdown().await;
}

#[tokio::test]
async fn web_ui_style_ascii_key_logs_in() {
    // The web UI draws the AES key as 32 ASCII characters of [0-9A-Za-z].
    use aes::Aes256;
    use base64::Engine;
    use base64::engine::general_purpose::STANDARD as B64;
    use cbc::cipher::{BlockEncryptMut, KeyIvInit, block_padding::Pkcs7};
    let server = start_default().await;
    let mut client = Client::connect(&server.url()).await;
    let key = *b"Fn0sTestAesKey0123456789abcdefXY";
    let iv: [u8; 16] = core::array::from_fn(|i| i as u8);
    let si = Value::String(client.si.clone());
    let inner = client.login_json("admin", "admin", &si);
    let public = rsa::RsaPublicKey::from_public_key_pem(&client.public_pem).expect("pem");
    let wrapped = public
        .encrypt(&mut rand::thread_rng(), rsa::Pkcs1v15Encrypt, &key)
        .expect("rsa");
    let sealed = cbc::Encryptor::<Aes256>::new(&key.into(), &iv.into())
        .encrypt_padded_vec_mut::<Pkcs7>(inner.as_bytes());
    let envelope = format!(
        r#"{{"req":"encrypted","iv":"{}","rsa":"{}","aes":"{}"}}"#,
        B64.encode(iv),
        B64.encode(wrapped),
        B64.encode(sealed)
    );
    client.send(&envelope).await;
    let answer = client.recv().await;
    let credentials = client.take_credentials(&answer, &key, &iv);
    assert_eq!(credentials.secret.len(), 16);
    server.shutdown().await;
}

#[tokio::test]
async fn wrong_password_answers_errno_131072() {
    let server = start_default().await;
    let mut client = Client::connect(&server.url()).await;
    let si = Value::String(client.si.clone());
    let inner = client.login_json("admin", "not-the-password", &si);
    client.send_encrypted(&inner).await;
    let answer = client.recv().await;
    assert_eq!(answer["errno"], 131072);
    assert_eq!(answer["result"], "fail");
    assert!(answer.get("secret").is_none());
    server.shutdown().await;
}

#[tokio::test]
async fn numeric_si_answers_errno_8192() {
    let server = start_default().await;
    let mut client = Client::connect(&server.url()).await;
    let si: u64 = client.si.parse().expect("digits");
    let inner = client.login_json("admin", "admin", &json!(si));
    client.send_encrypted(&inner).await;
    let answer = client.recv().await;
    assert_eq!(answer["errno"], 8192, "{answer}");
    server.shutdown().await;
}

#[tokio::test]
async fn another_connections_si_answers_errno_8192() {
    let server = start_default().await;
    let other = Client::connect(&server.url()).await;
    let mut client = Client::connect(&server.url()).await;
    let inner = client.login_json("admin", "admin", &json!(other.si));
    client.send_encrypted(&inner).await;
    assert_eq!(client.recv().await["errno"], 8192);
    server.shutdown().await;
}

#[tokio::test]
async fn garbled_envelope_answers_errno_8192() {
    let server = start_default().await;
    let mut client = Client::connect(&server.url()).await;
    client
        .send(r#"{"req":"encrypted","iv":"AAAA","rsa":"not base64!","aes":""}"#)
        .await;
    let answer = client.recv().await;
    assert_eq!(answer["errno"], 8192);
    assert!(
        answer["errmsg"].as_str().is_some_and(|m| m.contains("rsa")),
        "{answer}"
    );
    server.shutdown().await;
}

#[tokio::test]
async fn two_factor_login_needs_the_code() {
    let server = start(Config {
        two_factor_code: Some("123456".into()),
        ..Config::default()
    })
    .await;
    let mut client = Client::connect(&server.url()).await;
    let si = Value::String(client.si.clone());
    let inner = client.login_json("admin", "admin", &si);
    client.send_encrypted(&inner).await;
    let challenge = client.recv().await;
    assert_eq!(challenge["result"], "succ");
    assert_eq!(challenge["isBindTwofaSecret"], true);
    assert_eq!(challenge["isTrustedDevice"], false);
    assert!(challenge.get("token").is_none() && challenge.get("secret").is_none());
    let access_token = challenge["accessToken"]
        .as_str()
        .expect("accessToken")
        .to_owned();

    let verify = |code: &str, reqid: &str| {
        json!({"reqid": reqid, "code": code, "isTrustedDevice": false, "accessToken": access_token,
               "stay": 1, "deviceName": "t", "deviceType": "Browser", "did": "d",
               "req": "user.2fa.loginVerify", "si": si})
        .to_string()
    };
    client.send_encrypted(&verify("654321", "r2")).await;
    let wrong = client.recv().await;
    assert_eq!(wrong["errno"], 102570104);
    assert_eq!(wrong["reqid"], "r2");

    let (key, iv) = client.send_encrypted(&verify("123456", "r3")).await;
    let answer = client.recv().await;
    assert_eq!(answer["reqid"], "r3");
    let credentials = client.take_credentials(&answer, &key, &iv);
    assert_eq!(credentials.secret.len(), 16);
    assert_eq!(client.call("user.isAdmin", json!({})).await["admin"], true);

    client.send_encrypted(&verify("123456", "r4")).await;
    assert_eq!(
        client.recv().await["errno"],
        102570109,
        "an access token works once"
    );
    server.shutdown().await;
}

#[tokio::test]
async fn generated_key_is_a_fresh_2048_bit_key() {
    let server = Server::start(Config {
        key: KeySource::Generate,
        ..Config::default()
    })
    .await
    .expect("start");
    let client = Client::connect(&server.url()).await;
    let key = rsa::RsaPublicKey::from_public_key_pem(&client.public_pem).expect("pem");
    assert_eq!(key.size() * 8, 2048);
    assert!(!naslink_sim::fnos::FIXTURE_KEY_PEM.is_empty());
    let fixture = Server::start(Config {
        key: KeySource::Fixture,
        ..Config::default()
    })
    .await
    .expect("start");
    let fixed = Client::connect(&fixture.url()).await;
    assert_ne!(fixed.public_pem, client.public_pem);
    server.shutdown().await;
    fixture.shutdown().await;
}
