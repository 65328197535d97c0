//! Which server certificates a `wss://` connection accepts.
//!
//! The default is the machine's own trust store ([`Trust::SystemRoots`],
//! read with rustls-native-certs: the platform store on Windows and macOS,
//! the OpenSSL CA files on Linux, `SSL_CERT_FILE`/`SSL_CERT_DIR` honoured).
//! When that store is empty or cannot be read, the public web roots
//! compiled in from webpki-roots stand in, and a warning is logged. A NAS
//! usually shows a self-signed certificate, which neither accepts: trust it
//! through a CA file (PEM) or pin the SHA-256 of its certificate. [`Trust::InsecureSkipVerification`] accepts
//! any certificate and says so in its name.

use std::path::PathBuf;
use std::sync::Arc;

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, ServerName, UnixTime};
use sha2::{Digest, Sha256};
use tokio_rustls::rustls::client::danger::{
    HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier,
};
use tokio_rustls::rustls::crypto::{
    WebPkiSupportedAlgorithms, ring, verify_tls12_signature, verify_tls13_signature,
};
use tokio_rustls::rustls::{self, ClientConfig, DigitallySignedStruct, RootCertStore};

/// How to decide whether the server's certificate is acceptable.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Trust {
    /// The machine's trust store (rustls-native-certs); when it is empty
    /// or unreadable, the public web roots of [`Trust::WebRoots`] instead.
    #[default]
    SystemRoots,
    /// The public web roots (Mozilla's list, compiled in from webpki-roots).
    WebRoots,
    /// The CA certificates in this PEM file (a self-signed NAS certificate
    /// can be its own CA).
    CaFile(PathBuf),
    /// Accept exactly the end-entity certificate whose DER encoding has
    /// this SHA-256; names and dates are not checked (a pin is stronger).
    PinSha256([u8; 32]),
    /// Accept any certificate. Anyone on the path can read and change the
    /// traffic; for lab use only.
    InsecureSkipVerification,
}

/// Why a [`Trust`] could not be turned into a TLS configuration.
#[derive(Debug)]
pub enum TrustError {
    /// The CA file could not be read or holds no certificate.
    CaFile {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },
    /// A pin is not 64 hexadecimal digits.
    InvalidPin,
}

impl std::fmt::Display for TrustError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TrustError::CaFile { path, reason } => {
                write!(f, "CA file {}: {reason}", path.display())
            }
            TrustError::InvalidPin => {
                f.write_str("a SHA-256 pin is 64 hexadecimal digits (colons allowed)")
            }
        }
    }
}

impl std::error::Error for TrustError {}

impl Trust {
    /// Parse a fingerprint as printed by `openssl x509 -fingerprint -sha256`
    /// (colons and case are ignored).
    pub fn pin_from_hex(hex: &str) -> Result<Trust, TrustError> {
        let digits: Vec<u8> = hex.bytes().filter(|b| *b != b':').collect();
        if digits.len() != 64 {
            return Err(TrustError::InvalidPin);
        }
        let mut pin = [0u8; 32];
        for (i, pair) in digits.chunks(2).enumerate() {
            let text = std::str::from_utf8(pair).map_err(|_| TrustError::InvalidPin)?;
            pin[i] = u8::from_str_radix(text, 16).map_err(|_| TrustError::InvalidPin)?;
        }
        Ok(Trust::PinSha256(pin))
    }

    /// The rustls client configuration (ring provider, TLS 1.2 and 1.3).
    pub fn client_config(&self) -> Result<Arc<ClientConfig>, TrustError> {
        let provider = Arc::new(ring::default_provider());
        let builder = ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| TrustError::CaFile {
                path: PathBuf::new(),
                reason: e.to_string(),
            })?;
        let config = match self {
            Trust::SystemRoots => builder
                .with_root_certificates(system_roots())
                .with_no_client_auth(),
            Trust::WebRoots => builder
                .with_root_certificates(web_roots())
                .with_no_client_auth(),
            Trust::CaFile(path) => {
                let fail = |reason: String| TrustError::CaFile {
                    path: path.clone(),
                    reason,
                };
                let mut roots = RootCertStore::empty();
                for cert in CertificateDer::pem_file_iter(path).map_err(|e| fail(e.to_string()))? {
                    let cert = cert.map_err(|e| fail(e.to_string()))?;
                    roots.add(cert).map_err(|e| fail(e.to_string()))?;
                }
                if roots.is_empty() {
                    return Err(fail("no certificate in the file".into()));
                }
                builder.with_root_certificates(roots).with_no_client_auth()
            }
            Trust::PinSha256(pin) => builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(PinnedCertificate {
                    pin: Some(*pin),
                    algorithms: provider.signature_verification_algorithms,
                }))
                .with_no_client_auth(),
            Trust::InsecureSkipVerification => builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(PinnedCertificate {
                    pin: None,
                    algorithms: provider.signature_verification_algorithms,
                }))
                .with_no_client_auth(),
        };
        Ok(Arc::new(config))
    }
}

/// Mozilla's list as compiled into webpki-roots.
fn web_roots() -> RootCertStore {
    RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    }
}

/// The machine's trust store, or the web roots when it yields no usable
/// certificate. Certificates the store holds but rustls cannot parse are
/// skipped (stores often carry a few), as are files that cannot be read.
fn system_roots() -> RootCertStore {
    let found = rustls_native_certs::load_native_certs();
    for error in &found.errors {
        tracing::warn!(%error, "system trust store: part could not be read");
    }
    let mut roots = RootCertStore::empty();
    let (added, ignored) = roots.add_parsable_certificates(found.certs);
    if ignored > 0 {
        tracing::debug!(
            ignored,
            "system trust store: certificates rustls cannot use"
        );
    }
    if added == 0 {
        tracing::warn!("system trust store is empty or unreadable: using the webpki-roots list");
        return web_roots();
    }
    roots
}

/// Accepts the certificate whose SHA-256 is `pin` (any when `None`), and
/// still checks that the server holds its private key (handshake
/// signatures), so a pin cannot be replayed with a copied certificate.
#[derive(Debug)]
struct PinnedCertificate {
    pin: Option<[u8; 32]>,
    algorithms: WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for PinnedCertificate {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        match self.pin {
            None => Ok(ServerCertVerified::assertion()),
            Some(pin) => {
                let seen: [u8; 32] = Sha256::digest(end_entity.as_ref()).into();
                if seen == pin {
                    Ok(ServerCertVerified::assertion())
                } else {
                    Err(rustls::Error::General(format!(
                        "certificate SHA-256 {} does not match the pinned {}",
                        hex(&seen),
                        hex(&pin)
                    )))
                }
            }
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

/// Lower-case hexadecimal, as fingerprints are printed.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Drive a client handshake against a server holding a fresh
    /// self-signed certificate for `localhost`, entirely in memory, and
    /// return the client's verdict.
    fn handshake_with_self_signed(client: Arc<ClientConfig>) -> Result<(), rustls::Error> {
        let key = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
        let cert = CertificateDer::from(key.cert.der().to_vec());
        let private =
            rustls_pki_types::PrivateKeyDer::try_from(key.signing_key.serialize_der()).unwrap();
        let server =
            rustls::ServerConfig::builder_with_provider(Arc::new(ring::default_provider()))
                .with_safe_default_protocol_versions()
                .unwrap()
                .with_no_client_auth()
                .with_single_cert(vec![cert], private)
                .unwrap();
        let mut server = rustls::ServerConnection::new(Arc::new(server)).unwrap();
        let mut client =
            rustls::ClientConnection::new(client, ServerName::try_from("localhost").unwrap())
                .unwrap();
        for _ in 0..16 {
            let mut wire = Vec::new();
            while client.wants_write() {
                client.write_tls(&mut wire).unwrap();
            }
            let mut slice = wire.as_slice();
            while !slice.is_empty() {
                server.read_tls(&mut slice).unwrap();
            }
            server.process_new_packets().unwrap();
            let mut wire = Vec::new();
            while server.wants_write() {
                server.write_tls(&mut wire).unwrap();
            }
            let mut slice = wire.as_slice();
            while !slice.is_empty() {
                client.read_tls(&mut slice).unwrap();
            }
            client.process_new_packets()?;
            if !client.is_handshaking() {
                return Ok(());
            }
        }
        panic!("handshake neither finished nor failed");
    }

    #[test]
    fn default_trust_is_the_system_store_and_refuses_a_self_signed_certificate() {
        assert_eq!(Trust::default(), Trust::SystemRoots);
        let verdict = handshake_with_self_signed(Trust::default().client_config().unwrap());
        assert!(
            matches!(
                verdict,
                Err(rustls::Error::InvalidCertificate(
                    rustls::CertificateError::UnknownIssuer
                ))
            ),
            "{verdict:?}"
        );
    }

    #[test]
    fn web_roots_refuse_a_self_signed_certificate() {
        let verdict = handshake_with_self_signed(Trust::WebRoots.client_config().unwrap());
        assert!(
            matches!(
                verdict,
                Err(rustls::Error::InvalidCertificate(
                    rustls::CertificateError::UnknownIssuer
                ))
            ),
            "{verdict:?}"
        );
    }

    #[test]
    fn skipping_verification_completes_the_same_handshake() {
        // The control for the two refusals above: the same in-memory
        // handshake succeeds when the certificate is trusted.
        let insecure = Trust::InsecureSkipVerification.client_config().unwrap();
        assert_eq!(handshake_with_self_signed(insecure), Ok(()));
    }

    #[test]
    fn pin_accepts_openssl_colon_format_and_rejects_short() {
        let colon = ["ab"; 32].join(":");
        assert_eq!(
            Trust::pin_from_hex(&colon).unwrap(),
            Trust::PinSha256([0xab; 32])
        );
        assert!(matches!(
            Trust::pin_from_hex("abcd"),
            Err(TrustError::InvalidPin)
        ));
        assert!(matches!(
            Trust::pin_from_hex(&"zz".repeat(32)),
            Err(TrustError::InvalidPin)
        ));
    }
}
