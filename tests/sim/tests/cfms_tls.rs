//! `wss://` with the emulator's self-signed ECDSA P-256 certificate.

mod cfms_support;

use cfms_support::{Client, hex, start};
use naslink_sim::cfms::Config;
use serde_json::json;
use sha2::{Digest, Sha256};

fn tls() -> Config {
    Config {
        tls: true,
        ..Config::default()
    }
}

#[tokio::test]
async fn client_trusting_the_generated_certificate_talks_wss() {
    let server = start(tls()).await;
    assert!(server.url().starts_with("wss://localhost:"));
    let der = server
        .cert_der()
        .expect("TLS server has a certificate")
        .to_vec();
    let mut c = Client::connect_tls(&server, &der)
        .await
        .expect("TLS handshake");
    c.login("admin", "admin").await;
    let id = server.put_document(None, "t", vec![7; 3000]);
    assert_eq!(c.download(&id).await, Ok(vec![7; 3000]));
    assert_eq!(c.call("server_info", json!({})).await["code"], 200);
}

#[tokio::test]
async fn certificate_fingerprint_is_sha256_of_der_and_pem_wraps_it() {
    let server = start(tls()).await;
    let der = server.cert_der().expect("certificate");
    assert_eq!(
        server.cert_sha256(),
        Some(<[u8; 32]>::from(Sha256::digest(der)))
    );
    let pem = server.cert_pem().expect("pem");
    assert!(pem.starts_with("-----BEGIN CERTIFICATE-----"));
    assert_eq!(hex(&server.cert_sha256().unwrap_or_default()).len(), 64);
}

#[tokio::test]
async fn client_trusting_another_certificate_is_refused() {
    let server = start(tls()).await;
    let other = start(tls()).await;
    let wrong = other.cert_der().expect("certificate").to_vec();
    assert!(Client::connect_tls(&server, &wrong).await.is_err());
}

#[tokio::test]
async fn plain_server_has_no_certificate() {
    let server = start(Config::default()).await;
    assert!(server.url().starts_with("ws://127.0.0.1:"));
    assert_eq!(server.cert_der(), None);
    assert_eq!(server.cert_sha256(), None);
}
