//! Which server certificates a `wss://` connection accepts.
//!
//! The default is the public web roots (webpki-roots). A NAS usually shows
//! a self-signed certificate: trust it through a CA file (PEM) or pin the
//! SHA-256 of its certificate. [`Trust::InsecureSkipVerification`] accepts
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
    /// The public web roots (Mozilla's list, from webpki-roots).
    #[default]
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
            Trust::WebRoots => {
                let roots = RootCertStore {
                    roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
                };
                builder.with_root_certificates(roots).with_no_client_auth()
            }
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
