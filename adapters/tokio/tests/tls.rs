//! `wss://` trust decisions against a TLS relay in front of the fnOS
//! emulator, serving a fresh self-signed certificate (as a NAS does): a
//! matching SHA-256 pin, the certificate as a CA file and the insecure
//! switch connect; a wrong pin and the default web roots are refused
//! during the TLS handshake.

use std::sync::Arc;
use std::time::Duration;

use naslink_sim::fnos::{Config, Handle, KeySource, Server};
use naslink_tokio::fnos::{FnosClient, FnosError, FnosOptions};
use naslink_tokio::link::ConnectError;
use naslink_tokio::tls::Trust;
use sha2::{Digest, Sha256};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::ServerConfig;
use tokio_rustls::rustls::crypto::ring;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

struct TlsRelay {
    url: String,
    cert_pem: String,
    cert_sha256: [u8; 32],
    _sim: Handle,
}

async fn tls_relay() -> TlsRelay {
    let sim = Server::start(Config {
        key: KeySource::Fixture,
        ..Config::default()
    })
    .await
    .unwrap();
    let upstream = sim.addr();
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let cert = rcgen::CertificateParams::new(vec!["localhost".to_owned()])
        .unwrap()
        .self_signed(&key)
        .unwrap();
    let der = cert.der().to_vec();
    let config = ServerConfig::builder_with_provider(Arc::new(ring::default_provider()))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(
            vec![CertificateDer::from(der.clone())],
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
        )
        .unwrap();
    let acceptor = TlsAcceptor::from(Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                // A refused handshake just ends this connection.
                let Ok(mut tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let mut server = tokio::net::TcpStream::connect(upstream).await.unwrap();
                let _ = tokio::io::copy_bidirectional(&mut tls, &mut server).await;
            });
        }
    });
    TlsRelay {
        url: format!("wss://localhost:{port}/websocket?type=main"),
        cert_pem: cert.pem(),
        cert_sha256: Sha256::digest(&der).into(),
        _sim: sim,
    }
}

async fn connect(relay: &TlsRelay, trust: Trust) -> Result<FnosClient, FnosError> {
    let mut options = FnosOptions::new(&relay.url, "admin", "admin");
    options.link.trust = trust;
    tokio::time::timeout(Duration::from_secs(20), FnosClient::connect(options))
        .await
        .expect("connect finished in time")
}

async fn host_name(nas: &FnosClient) -> String {
    let reply = nas
        .request("appcgi.sysinfo.getHostName", None)
        .await
        .unwrap();
    reply.get("hostName").unwrap().as_str().unwrap().to_owned()
}

#[tokio::test]
async fn a_matching_sha256_pin_is_trusted() {
    let relay = tls_relay().await;
    let nas = connect(&relay, Trust::PinSha256(relay.cert_sha256))
        .await
        .unwrap();
    assert_eq!(host_name(&nas).await, "fnos-sim");
}

#[tokio::test]
async fn a_wrong_pin_is_refused_in_the_tls_handshake() {
    let relay = tls_relay().await;
    let mut wrong = relay.cert_sha256;
    wrong[0] ^= 1;
    let refused = connect(&relay, Trust::PinSha256(wrong)).await;
    match refused {
        Err(FnosError::Connect(ConnectError::Tls(e))) => {
            assert!(e.to_string().contains("does not match the pinned"), "{e}");
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn the_self_signed_certificate_as_a_ca_file_is_trusted() {
    let relay = tls_relay().await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nas.pem");
    std::fs::write(&path, &relay.cert_pem).unwrap();
    let nas = connect(&relay, Trust::CaFile(path)).await.unwrap();
    assert_eq!(host_name(&nas).await, "fnos-sim");
}

#[tokio::test]
async fn web_roots_refuse_a_self_signed_certificate() {
    let relay = tls_relay().await;
    let refused = connect(&relay, Trust::WebRoots).await;
    assert!(
        matches!(refused, Err(FnosError::Connect(ConnectError::Tls(_)))),
        "{refused:?}"
    );
}

#[tokio::test]
async fn the_insecure_switch_accepts_any_certificate() {
    let relay = tls_relay().await;
    let nas = connect(&relay, Trust::InsecureSkipVerification)
        .await
        .unwrap();
    assert_eq!(host_name(&nas).await, "fnos-sim");
}
