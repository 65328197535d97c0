//! The self-signed certificate a fresh server makes (ECDSA P-256, named after
//! the configured host) and the TLS 1.3 acceptor serving it.

use std::sync::Arc;

use anyhow::Context;
use sha2::{Digest, Sha256};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio_rustls::rustls::{ServerConfig, crypto::ring, version::TLS13};

/// A certificate, its key, and the acceptor built from them.
#[derive(Clone)]
pub(crate) struct Identity {
    pub acceptor: TlsAcceptor,
    pub cert_der: Vec<u8>,
    pub cert_pem: String,
    pub cert_sha256: [u8; 32],
}

impl std::fmt::Debug for Identity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Identity")
            .field("cert_sha256", &super::store::hex(&self.cert_sha256))
            .finish_non_exhaustive()
    }
}

impl Identity {
    /// Make a certificate for `host` (rcgen makes an IP address SAN when
    /// `host` parses as one, else a DNS name) and a TLS 1.3 acceptor for it.
    pub fn generate(host: &str) -> anyhow::Result<Self> {
        let params = rcgen::CertificateParams::new(vec![host.to_owned()])
            .with_context(|| format!("certificate name {host:?}"))?;
        let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)?;
        let cert = params.self_signed(&key)?;
        let cert_der = cert.der().to_vec();
        let key_der = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
        let config = ServerConfig::builder_with_provider(Arc::new(ring::default_provider()))
            .with_protocol_versions(&[&TLS13])?
            .with_no_client_auth()
            .with_single_cert(vec![CertificateDer::from(cert_der.clone())], key_der)?;
        Ok(Self {
            acceptor: TlsAcceptor::from(Arc::new(config)),
            cert_sha256: Sha256::digest(&cert_der).into(),
            cert_pem: cert.pem(),
            cert_der,
        })
    }
}
