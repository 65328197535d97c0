//! `tls::open` against a real TLS 1.3 server (rustls, ring) over loopback
//! TCP: the pinned certificate is accepted with ECDSA P-256 and RSA keys,
//! for each RSA-PSS hash the server may pick; a wrong pin, or the pinned
//! certificate served with another key, is refused.

use std::net::SocketAddr;
use std::sync::Arc;

use embedded_tls::{Aes128GcmSha256, TlsConfig, TlsConnection};
use naslink_embassy::tls::{self, CertificatePin, OpenError, Refusal, Trust};
use rsa::pkcs8::{EncodePrivateKey as _, LineEnding};
use sha2::{Digest as _, Sha256};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::crypto::ring;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio_rustls::rustls::sign::{CertifiedKey, SigningKey, SingleCertAndKey};
use tokio_rustls::rustls::{self, ServerConfig, SignatureAlgorithm, SignatureScheme};

/// A throwaway 4096-bit key from the core's RSA tests.
const KEY_4096: &str = include_str!("../../../core/tests/fixtures/fnos_rsa4096_test_key.pem");

/// A tokio TCP stream as an embedded-io-async transport.
mod io_support;
use io_support::IoError;

struct Tcp(TcpStream);

impl embedded_io_async::ErrorType for Tcp {
    type Error = IoError;
}

impl embedded_io_async::Read for Tcp {
    async fn read(&mut self, buf: &mut [u8]) -> Result<usize, IoError> {
        self.0.read(buf).await.map_err(|_| IoError)
    }
}

impl embedded_io_async::Write for Tcp {
    async fn write(&mut self, buf: &[u8]) -> Result<usize, IoError> {
        self.0.write(buf).await.map_err(|_| IoError)
    }

    async fn flush(&mut self) -> Result<(), IoError> {
        self.0.flush().await.map_err(|_| IoError)
    }
}

/// A certificate and the key the server signs its handshakes with.
struct Identity {
    cert: Vec<u8>,
    key: PrivatePkcs8KeyDer<'static>,
}

impl Identity {
    fn p256() -> Identity {
        Self::from_rcgen(rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap())
    }

    fn rsa(pkcs8_pem: &str) -> Identity {
        Self::from_rcgen(
            rcgen::KeyPair::from_pkcs8_pem_and_sign_algo(pkcs8_pem, &rcgen::PKCS_RSA_SHA256)
                .unwrap(),
        )
    }

    fn rsa_2048() -> Identity {
        let key = rsa::RsaPrivateKey::new(&mut rand::rngs::OsRng, 2048).unwrap();
        Self::rsa(&key.to_pkcs8_pem(LineEnding::LF).unwrap())
    }

    fn from_rcgen(key: rcgen::KeyPair) -> Identity {
        let params = rcgen::CertificateParams::new(vec!["nas.lan".into()]).unwrap();
        Identity {
            cert: params.self_signed(&key).unwrap().der().to_vec(),
            key: PrivatePkcs8KeyDer::from(key.serialize_der()),
        }
    }

    fn pin(&self) -> CertificatePin {
        CertificatePin(Sha256::digest(&self.cert).into())
    }
}

/// The server's key, restricted to one signature scheme (rustls would
/// otherwise always pick the same RSA-PSS hash).
#[derive(Debug)]
struct OnlyScheme {
    key: Arc<dyn SigningKey>,
    scheme: Option<SignatureScheme>,
}

impl SigningKey for OnlyScheme {
    fn choose_scheme(&self, offered: &[SignatureScheme]) -> Option<Box<dyn rustls::sign::Signer>> {
        match self.scheme {
            Some(s) if offered.contains(&s) => self.key.choose_scheme(&[s]),
            Some(_) => None,
            None => self.key.choose_scheme(offered),
        }
    }

    fn algorithm(&self) -> SignatureAlgorithm {
        self.key.algorithm()
    }
}

/// A TLS 1.3 server presenting `cert` and signing with `key`, answering
/// one connection by echoing what it reads. Returns its address.
async fn server(cert: &[u8], key: &Identity, scheme: Option<SignatureScheme>) -> SocketAddr {
    let signing =
        ring::sign::any_supported_type(&PrivateKeyDer::Pkcs8(key.key.clone_key())).unwrap();
    let certified = CertifiedKey::new(
        vec![CertificateDer::from(cert.to_vec())],
        Arc::new(OnlyScheme {
            key: signing,
            scheme,
        }),
    );
    let config = ServerConfig::builder_with_provider(Arc::new(ring::default_provider()))
        .with_protocol_versions(&[&rustls::version::TLS13])
        .unwrap()
        .with_no_client_auth()
        .with_cert_resolver(Arc::new(SingleCertAndKey::from(certified)));
    let acceptor = TlsAcceptor::from(Arc::new(config));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        let Ok(mut tls) = acceptor.accept(tcp).await else {
            return;
        };
        let mut buf = [0u8; 64];
        if let Ok(n) = tls.read(&mut buf).await {
            let _ = tls.write_all(&buf[..n]).await;
            let _ = tls.flush().await;
        }
    });
    addr
}

/// Connect with `pin`, send `ping`, and return the echo.
async fn client(addr: SocketAddr, pin: CertificatePin, rsa: bool) -> Result<Vec<u8>, OpenError> {
    client_trusting(addr, Trust::Pinned(pin), rsa).await
}

async fn client_trusting(addr: SocketAddr, trust: Trust, rsa: bool) -> Result<Vec<u8>, OpenError> {
    let tcp = TcpStream::connect(addr).await.unwrap();
    let (mut read, mut write) = (vec![0u8; 16_640], vec![0u8; 4096]);
    let mut conn: TlsConnection<'_, _, Aes128GcmSha256> =
        TlsConnection::new(Tcp(tcp), &mut read, &mut write);
    let mut config = TlsConfig::new().with_server_name("nas.lan");
    if rsa {
        config = config.enable_rsa_signatures();
    }
    tls::open(&mut conn, &config, trust, rand::rngs::OsRng).await?;
    conn.write(b"ping").await.map_err(OpenError::Tls)?;
    conn.flush().await.map_err(OpenError::Tls)?;
    let mut echo = [0u8; 4];
    let n = conn.read(&mut echo).await.map_err(OpenError::Tls)?;
    Ok(echo[..n].to_vec())
}

#[tokio::test]
async fn pinned_ecdsa_p256_server_is_accepted() {
    let nas = Identity::p256();
    let addr = server(&nas.cert, &nas, None).await;
    assert_eq!(client(addr, nas.pin(), true).await.unwrap(), b"ping");
}

#[tokio::test]
async fn pinned_rsa_2048_server_is_accepted_with_each_pss_hash() {
    let nas = Identity::rsa_2048();
    for scheme in [
        SignatureScheme::RSA_PSS_SHA256,
        SignatureScheme::RSA_PSS_SHA384,
        SignatureScheme::RSA_PSS_SHA512,
        // rustls's own choice among everything offered
    ]
    .map(Some)
    .into_iter()
    .chain([None])
    {
        let addr = server(&nas.cert, &nas, scheme).await;
        assert_eq!(
            client(addr, nas.pin(), true).await.unwrap(),
            b"ping",
            "{scheme:?}"
        );
    }
}

#[tokio::test]
async fn pinned_rsa_4096_server_is_accepted() {
    let nas = Identity::rsa(KEY_4096);
    let addr = server(&nas.cert, &nas, None).await;
    assert_eq!(client(addr, nas.pin(), true).await.unwrap(), b"ping");
}

#[tokio::test]
async fn server_with_another_certificate_is_refused_naming_its_fingerprint() {
    let nas = Identity::p256();
    let other = Identity::p256();
    let addr = server(&other.cert, &other, None).await;
    match client(addr, nas.pin(), true).await {
        Err(OpenError::Refused(Refusal::PinMismatch { sha256 })) => {
            assert_eq!(sha256, other.pin().0)
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn pinned_certificate_served_with_another_key_is_refused() {
    // An impostor replays the NAS's public certificate; it can only sign
    // with its own key.
    for (nas, impostor) in [
        (Identity::p256(), Identity::p256()),
        (Identity::rsa_2048(), Identity::rsa(KEY_4096)),
    ] {
        let addr = server(&nas.cert, &impostor, None).await;
        match client(addr, nas.pin(), true).await {
            Err(OpenError::Refused(Refusal::BadSignature)) => {}
            other => panic!("{other:?}"),
        }
    }
}

#[tokio::test]
async fn rsa_server_needs_the_client_to_offer_rsa_pss() {
    // embedded-tls offers RSA schemes only on request; without them an
    // RSA server has nothing to sign with and aborts the handshake.
    let nas = Identity::rsa_2048();
    let addr = server(&nas.cert, &nas, None).await;
    match client(addr, nas.pin(), false).await {
        Err(OpenError::Tls(_)) => {}
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn insecure_trust_takes_any_certificate() {
    let lab = Identity::rsa_2048();
    let addr = server(&lab.cert, &lab, None).await;
    assert_eq!(
        client_trusting(addr, Trust::InsecureAnyCertificate, true)
            .await
            .unwrap(),
        b"ping"
    );
}
