//! Certificate pinning for [`embedded_tls`] (TLS 1.3), feature `embedded-tls`.
//!
//! A NAS usually shows a self-signed certificate that no CA vouches for, so
//! a device is built with the SHA-256 of that certificate instead: the hex
//! fingerprint `openssl x509 -noout -fingerprint -sha256` prints and the
//! host CLI's `--pin-sha256` takes (SHA-256 over the end-entity
//! certificate's DER). [`open`] completes a handshake only if
//!
//! 1. the server's end-entity certificate hashes to the pin, and
//! 2. the server's CertificateVerify is a valid signature by that
//!    certificate's key over the handshake transcript (RFC 8446 §4.4.3).
//!    A certificate is public: without this check anyone could replay it.
//!
//! Names and validity dates are not checked: the pin names one certificate.
//! [`Trust::InsecureAnyCertificate`] skips step 1 for a lab without a pin:
//! the link is then encrypted but not authenticated.
//!
//! Keys: ECDSA P-256 (`ecdsa_secp256r1_sha256`) and RSA of 2048 to 4096
//! bits (`rsa_pss_rsae_sha256`, `_sha384`, `_sha512`; a server picks one of
//! these only if the client offers them, so build the [`TlsConfig`] with
//! [`TlsConfig::enable_rsa_signatures`]). Other keys and schemes are
//! refused, naming the reason ([`Refusal`]).
//!
//! ```text
//! AwaitingCertificate ──Certificate: pin matches, key usable──► CertificateMatched
//!        │                                                            │
//!        │ anything else               CertificateVerify valid ◄──────┤
//!        ▼                                     │                      │ anything else
//!   Refused(reason) ◄──────────────────────────┼──────────────────────┘
//!                                              ▼
//!                                          Verified
//! ```
//!
//! embedded-tls finishes a handshake even when the server sends neither
//! Certificate nor CertificateVerify (its verifier is only called for the
//! messages that arrive), so [`open`] also requires `Verified` once the
//! handshake is over. Use it instead of `TlsConnection::open`.
//!
//! ```no_run
//! use embedded_io_async::{Read, Write};
//! use embedded_tls::{Aes128GcmSha256, CryptoRngCore, TlsConfig, TlsConnection};
//! use naslink_embassy::tls::{self, CertificatePin, Trust};
//!
//! const PIN: CertificatePin = match CertificatePin::from_hex(
//!     "3e:1f:65:4c:9a:02:b4:7e:d0:5c:11:8a:26:f3:99:e0:41:7d:c2:58:6b:0f:a3:94:e7:12:5d:c8:30:b6:4f:a1",
//! ) {
//!     Ok(pin) => pin,
//!     Err(_) => panic!("not a SHA-256 fingerprint"),
//! };
//!
//! async fn connect(socket: impl Read + Write, rng: impl CryptoRngCore) -> bool {
//!     let (mut read, mut write) = ([0; 16_640], [0; 4096]);
//!     let mut tls: TlsConnection<'_, _, Aes128GcmSha256> =
//!         TlsConnection::new(socket, &mut read, &mut write);
//!     let config = TlsConfig::new().with_server_name("nas.lan").enable_rsa_signatures();
//!     tls::open(&mut tls, &config, Trust::Pinned(PIN), rng).await.is_ok()
//! }
//! ```
#![deny(clippy::indexing_slicing)]

use core::marker::PhantomData;

use der::asn1::{AnyRef, ObjectIdentifier};
use der::{Decode as _, Reader as _, SliceReader, Tag, Tagged as _};
use embedded_io_async::{Read, Write};
use embedded_tls::{
    CertificateEntryRef, CertificateRef, CertificateVerifyRef, CryptoProvider, CryptoRngCore,
    SignatureScheme, TlsCipherSuite, TlsConfig, TlsConnection, TlsContext, TlsError, TlsVerifier,
};
use naslink_core::fnos::rsa::RsaPublicKey;
use p256::ecdsa::signature::hazmat::PrehashVerifier as _;
use sha2::{Digest as _, Sha256, Sha384, Sha512};

use crate::fmt::{debug, warning};

/// Smallest RSA key accepted, in bits: smaller keys are within reach of
/// factoring, and no current certificate uses one.
pub const MIN_RSA_BITS: usize = 2048;

/// What the server signs in TLS 1.3 (RFC 8446 §4.4.3): 64 spaces, this
/// context string with its terminating zero, then the transcript hash.
const SERVER_CONTEXT: &[u8] = b"TLS 1.3, server CertificateVerify\0";

/// `rsaEncryption` (RFC 8017 appendix C).
const RSA_ENCRYPTION: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.1");
/// `id-ecPublicKey` (RFC 5480 §2.1.1).
const EC_PUBLIC_KEY: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.2.1");
/// `secp256r1` (RFC 5480 §2.1.1.1).
const SECP256R1: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.3.1.7");

/// The SHA-256 of the server's certificate (DER).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CertificatePin(pub [u8; 32]);

/// A pin that is not 64 hexadecimal digits (colons between them allowed).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InvalidPin;

/// Which server certificate [`open`] accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trust {
    /// Only the certificate with this SHA-256.
    Pinned(CertificatePin),
    /// Any certificate. The server must still sign the handshake with the
    /// key of the certificate it shows, which proves nothing about who it
    /// is: anyone on the path can read and change the traffic. For a lab.
    InsecureAnyCertificate,
}

impl CertificatePin {
    /// Parse a fingerprint as `openssl x509 -fingerprint -sha256` prints it
    /// or as hex without colons; case is ignored (the rules of the host
    /// CLI's `--pin-sha256`). A `const fn`, so a build-time setting can be
    /// checked at compile time.
    // Indexes, as a `const fn` cannot call `get`: `i < text.len()` is the
    // loop's guard and `digits < 64` is checked before `pin[digits / 2]`.
    #[allow(clippy::indexing_slicing)]
    pub const fn from_hex(text: &str) -> Result<Self, InvalidPin> {
        let text = text.as_bytes();
        let mut pin = [0u8; 32];
        let (mut i, mut digits) = (0, 0);
        while i < text.len() {
            let value = match text[i] {
                b':' => {
                    i += 1;
                    continue;
                }
                c @ b'0'..=b'9' => c - b'0',
                c @ b'a'..=b'f' => c - b'a' + 10,
                c @ b'A'..=b'F' => c - b'A' + 10,
                _ => return Err(InvalidPin),
            };
            if digits == 64 {
                return Err(InvalidPin);
            }
            pin[digits / 2] |= if digits % 2 == 0 { value << 4 } else { value };
            digits += 1;
            i += 1;
        }
        if digits == 64 {
            Ok(CertificatePin(pin))
        } else {
            Err(InvalidPin)
        }
    }
}

/// Why the server was not accepted.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Refusal {
    /// The server sent no certificate (or an empty list).
    NoCertificate,
    /// The certificate is not the pinned one.
    PinMismatch {
        /// The SHA-256 of the certificate the server sent, to compare
        /// with the emulator's or `openssl`'s output.
        sha256: [u8; 32],
    },
    /// The certificate matches the pin but its public key cannot be read.
    UnreadableCertificate,
    /// The key is neither ECDSA P-256 nor RSA of up to 4096 bits.
    UnsupportedKey,
    /// An RSA key shorter than [`MIN_RSA_BITS`].
    WeakKey {
        /// Its size in bits.
        bits: usize,
    },
    /// The server signed with a scheme this key type does not use here.
    UnsupportedScheme(SignatureScheme),
    /// The CertificateVerify signature does not verify with the
    /// certificate's key: the server does not hold the private key.
    BadSignature,
    /// Certificate or CertificateVerify arrived out of order (a second
    /// certificate, or a signature before any certificate).
    OutOfOrder,
    /// The handshake finished without a CertificateVerify.
    MissingCertificateVerify,
}

/// Why [`open`] failed.
#[derive(Debug, Clone, Copy)]
pub enum OpenError {
    /// The server's certificate or signature was refused.
    Refused(Refusal),
    /// The handshake failed for another reason (transport, protocol, alert).
    Tls(TlsError),
}

/// The server's public key, kept from Certificate until CertificateVerify.
/// An RSA modulus is inline (no allocator), so the variants differ in size;
/// there is one per handshake.
#[derive(Clone)]
#[allow(clippy::large_enum_variant)]
enum ServerKey {
    P256(p256::ecdsa::VerifyingKey),
    Rsa(RsaPublicKey),
}

#[derive(Clone)]
#[allow(clippy::large_enum_variant)]
enum State {
    AwaitingCertificate,
    CertificateMatched {
        key: ServerKey,
        /// The transcript hash up to and including Certificate (at most
        /// SHA-384's 48 bytes).
        transcript: [u8; 48],
        transcript_len: usize,
    },
    Verified,
    Refused(Refusal),
}

/// The [`TlsVerifier`] that accepts only the pinned certificate (or any,
/// as [`Trust`] says), signed for by its key. One per handshake.
#[derive(Clone)]
pub struct PinnedCertificate {
    trust: Trust,
    state: State,
}

impl PinnedCertificate {
    /// A verifier waiting for the server's certificate.
    pub fn new(trust: Trust) -> Self {
        PinnedCertificate {
            trust,
            state: State::AwaitingCertificate,
        }
    }

    /// `Ok` once the certificate matched and its CertificateVerify was
    /// valid; otherwise why not (so far).
    pub fn verdict(&self) -> Result<(), Refusal> {
        match &self.state {
            State::Verified => Ok(()),
            State::Refused(refusal) => Err(*refusal),
            State::AwaitingCertificate => Err(Refusal::NoCertificate),
            State::CertificateMatched { .. } => Err(Refusal::MissingCertificateVerify),
        }
    }

    /// Why the server was refused, if it was (not merely unfinished).
    pub fn refusal(&self) -> Option<Refusal> {
        match self.state {
            State::Refused(refusal) => Some(refusal),
            _ => None,
        }
    }

    fn refuse(&mut self, refusal: Refusal) {
        warning!("tls: server refused");
        self.state = State::Refused(refusal);
    }

    fn check_certificate(&self, cert: &CertificateRef<'_>) -> Result<ServerKey, Refusal> {
        let der = match cert.entries.first() {
            Some(CertificateEntryRef::X509(der)) => *der,
            _ => return Err(Refusal::NoCertificate),
        };
        if let Trust::Pinned(pin) = self.trust {
            let sha256: [u8; 32] = Sha256::digest(der).into();
            if sha256 != pin.0 {
                return Err(Refusal::PinMismatch { sha256 });
            }
        }
        server_key(der)
    }

    fn check_signature(
        key: &ServerKey,
        transcript: &[u8],
        verify: &CertificateVerifyRef<'_>,
    ) -> Result<(), Refusal> {
        let scheme = verify.signature_scheme;
        let valid = match (key, scheme) {
            (ServerKey::P256(key), SignatureScheme::EcdsaSecp256r1Sha256) => {
                p256::ecdsa::Signature::from_der(verify.signature).is_ok_and(|signature| {
                    key.verify_prehash(&signed_content::<Sha256>(transcript), &signature)
                        .is_ok()
                })
            }
            (ServerKey::Rsa(key), SignatureScheme::RsaPssRsaeSha256) => key
                .verify_pss::<Sha256>(&signed_content::<Sha256>(transcript), verify.signature)
                .is_ok(),
            (ServerKey::Rsa(key), SignatureScheme::RsaPssRsaeSha384) => key
                .verify_pss::<Sha384>(&signed_content::<Sha384>(transcript), verify.signature)
                .is_ok(),
            (ServerKey::Rsa(key), SignatureScheme::RsaPssRsaeSha512) => key
                .verify_pss::<Sha512>(&signed_content::<Sha512>(transcript), verify.signature)
                .is_ok(),
            _ => return Err(Refusal::UnsupportedScheme(scheme)),
        };
        if valid {
            Ok(())
        } else {
            Err(Refusal::BadSignature)
        }
    }
}

impl<CipherSuite: TlsCipherSuite> TlsVerifier<CipherSuite> for PinnedCertificate {
    /// Names are not checked: the pin names one certificate.
    fn set_hostname_verification(&mut self, _hostname: &str) -> Result<(), TlsError> {
        Ok(())
    }

    fn verify_certificate(
        &mut self,
        transcript: &CipherSuite::Hash,
        cert: CertificateRef<'_>,
    ) -> Result<(), TlsError> {
        if !matches!(self.state, State::AwaitingCertificate) {
            self.refuse(Refusal::OutOfOrder);
            return Err(TlsError::InvalidCertificate);
        }
        let key = match self.check_certificate(&cert) {
            Ok(key) => key,
            Err(refusal) => {
                self.refuse(refusal);
                return Err(TlsError::InvalidCertificate);
            }
        };
        // The transcript so far includes this Certificate message: it is
        // what CertificateVerify signs.
        let hash = digest::Digest::finalize(transcript.clone());
        let mut stored = [0u8; 48];
        let Some(slot) = stored.get_mut(..hash.len()) else {
            self.refuse(Refusal::UnreadableCertificate);
            return Err(TlsError::InvalidCertificate);
        };
        slot.copy_from_slice(&hash);
        debug!("tls: certificate accepted");
        self.state = State::CertificateMatched {
            key,
            transcript: stored,
            transcript_len: hash.len(),
        };
        Ok(())
    }

    fn verify_signature(&mut self, verify: CertificateVerifyRef<'_>) -> Result<(), TlsError> {
        let checked = match &self.state {
            State::CertificateMatched {
                key,
                transcript,
                transcript_len,
            } => match transcript.get(..*transcript_len) {
                Some(transcript) => Self::check_signature(key, transcript, &verify),
                None => Err(Refusal::UnreadableCertificate),
            },
            _ => Err(Refusal::OutOfOrder),
        };
        match checked {
            Ok(()) => {
                debug!("tls: server proved its key");
                self.state = State::Verified;
                Ok(())
            }
            Err(refusal) => {
                self.refuse(refusal);
                Err(TlsError::InvalidSignature)
            }
        }
    }
}

/// An embedded-tls [`CryptoProvider`] with a [`PinnedCertificate`] verifier
/// and the caller's random generator (no client certificate).
pub struct PinnedProvider<CipherSuite, Rng> {
    rng: Rng,
    verifier: PinnedCertificate,
    suite: PhantomData<CipherSuite>,
}

impl<CipherSuite, Rng> PinnedProvider<CipherSuite, Rng> {
    /// A provider for one handshake.
    pub fn new(trust: Trust, rng: Rng) -> Self {
        PinnedProvider {
            rng,
            verifier: PinnedCertificate::new(trust),
            suite: PhantomData,
        }
    }

    /// The verifier, to read its [`verdict`](PinnedCertificate::verdict).
    pub fn verifier(&self) -> &PinnedCertificate {
        &self.verifier
    }
}

impl<CipherSuite: TlsCipherSuite, Rng: CryptoRngCore> CryptoProvider
    for PinnedProvider<CipherSuite, Rng>
{
    type CipherSuite = CipherSuite;
    type Signature = &'static [u8];

    fn rng(&mut self) -> impl CryptoRngCore {
        &mut self.rng
    }

    fn verifier(&mut self) -> Result<&mut impl TlsVerifier<CipherSuite>, TlsError> {
        Ok(&mut self.verifier)
    }
}

/// Run the handshake on `tls`, accepting only the pinned certificate (as
/// `trust` says) and a server that proves it holds its key. On an error
/// the connection is unusable (embedded-tls's rule): make a new one to
/// retry.
pub async fn open<Socket, CipherSuite, Rng>(
    tls: &mut TlsConnection<'_, Socket, CipherSuite>,
    config: &TlsConfig<'_>,
    trust: Trust,
    rng: Rng,
) -> Result<(), OpenError>
where
    Socket: Read + Write,
    CipherSuite: TlsCipherSuite + 'static,
    Rng: CryptoRngCore,
{
    let mut provider = PinnedProvider::<CipherSuite, Rng>::new(trust, rng);
    let opened = tls.open(TlsContext::new(config, &mut provider)).await;
    let verifier = provider.verifier();
    match (opened, verifier.refusal()) {
        (_, Some(refusal)) => Err(OpenError::Refused(refusal)),
        (Err(e), None) => Err(OpenError::Tls(e)),
        (Ok(()), None) => verifier.verdict().map_err(|refusal| {
            warning!("tls: handshake finished without the server proving its key");
            OpenError::Refused(refusal)
        }),
    }
}

/// `D(64 spaces ‖ context ‖ transcript hash)`: the digest the server signs.
fn signed_content<D: sha2::Digest>(transcript: &[u8]) -> sha2::digest::Output<D> {
    D::new()
        .chain_update([0x20; 64])
        .chain_update(SERVER_CONTEXT)
        .chain_update(transcript)
        .finalize()
}

/// The public key of an X.509 certificate (DER), if it is one we verify.
fn server_key(certificate: &[u8]) -> Result<ServerKey, Refusal> {
    let spki = subject_public_key_info(certificate).ok_or(Refusal::UnreadableCertificate)?;
    let info = spki::SubjectPublicKeyInfoRef::from_der(spki)
        .map_err(|_| Refusal::UnreadableCertificate)?;
    if info.algorithm.oid == RSA_ENCRYPTION {
        let key = RsaPublicKey::from_spki_der(spki).map_err(|_| Refusal::UnsupportedKey)?;
        if key.bits() < MIN_RSA_BITS {
            return Err(Refusal::WeakKey { bits: key.bits() });
        }
        return Ok(ServerKey::Rsa(key));
    }
    let curve = info
        .algorithm
        .parameters
        .and_then(|p| p.decode_as::<ObjectIdentifier>().ok());
    if info.algorithm.oid != EC_PUBLIC_KEY || curve != Some(SECP256R1) {
        return Err(Refusal::UnsupportedKey);
    }
    let point = info
        .subject_public_key
        .as_bytes()
        .ok_or(Refusal::UnreadableCertificate)?;
    p256::ecdsa::VerifyingKey::from_sec1_bytes(point)
        .map(ServerKey::P256)
        .map_err(|_| Refusal::UnreadableCertificate)
}

/// The DER bytes of the `subjectPublicKeyInfo` in a certificate (RFC 5280
/// §4.1): the seventh field of `tbsCertificate`, or the sixth when the
/// optional `[0] version` is absent. Nothing else in the certificate is read.
fn subject_public_key_info(certificate: &[u8]) -> Option<&[u8]> {
    let certificate = AnyRef::from_der(certificate).ok()?;
    if certificate.tag() != Tag::Sequence {
        return None;
    }
    let mut fields = SliceReader::new(certificate.value()).ok()?;
    let tbs: AnyRef<'_> = fields.decode().ok()?;
    if tbs.tag() != Tag::Sequence {
        return None;
    }
    let mut tbs = SliceReader::new(tbs.value()).ok()?;
    // [0] EXPLICIT version: context-specific, constructed, tag number 0.
    if tbs.peek_byte() == Some(0xa0) {
        tbs.decode::<AnyRef<'_>>().ok()?;
    }
    // serialNumber, signature, issuer, validity, subject
    for _ in 0..5 {
        tbs.decode::<AnyRef<'_>>().ok()?;
    }
    tbs.tlv_bytes().ok()
}

#[cfg(test)]
// Tests index fixtures they built themselves.
#[allow(clippy::indexing_slicing)]
mod tests {
    //! The verifier driven directly, as embedded-tls drives it: the
    //! transcript (with the Certificate message in it) to
    //! `verify_certificate`, then the server's CertificateVerify. Keys and
    //! certificates are made by rcgen, RSA-PSS signatures by the `rsa` crate.
    extern crate std;

    use std::sync::OnceLock;
    use std::vec::Vec;

    use digest::Digest as _;
    use embedded_tls::Aes128GcmSha256;
    use rsa::pkcs8::{EncodePrivateKey as _, LineEnding};
    use rsa::signature::{RandomizedSigner as _, SignatureEncoding as _};

    use super::*;

    type Suite = Aes128GcmSha256;

    /// What a server holds: its certificate and a way to sign with a key
    /// (normally the certificate's).
    struct Server {
        cert: Vec<u8>,
        scheme: SignatureScheme,
        sign: fn(&Keys, SignatureScheme, &[u8]) -> Vec<u8>,
        keys: &'static Keys,
    }

    /// One key of each kind per test run (RSA key generation is slow).
    struct Keys {
        p256: rcgen::KeyPair,
        rsa: rsa::RsaPrivateKey,
        rsa_rcgen: rcgen::KeyPair,
    }

    fn keys(slot: &'static OnceLock<Keys>) -> &'static Keys {
        slot.get_or_init(|| {
            let rsa = rsa::RsaPrivateKey::new(&mut rand::rngs::OsRng, 2048).unwrap();
            let pem = rsa.to_pkcs8_pem(LineEnding::LF).unwrap();
            Keys {
                p256: rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap(),
                rsa_rcgen: rcgen::KeyPair::from_pkcs8_pem_and_sign_algo(
                    &pem,
                    &rcgen::PKCS_RSA_SHA256,
                )
                .unwrap(),
                rsa,
            }
        })
    }

    static NAS: OnceLock<Keys> = OnceLock::new();
    static IMPOSTOR: OnceLock<Keys> = OnceLock::new();

    fn certificate(key: &rcgen::KeyPair) -> Vec<u8> {
        let params = rcgen::CertificateParams::new(std::vec!["nas.lan".into()]).unwrap();
        params.self_signed(key).unwrap().der().to_vec()
    }

    fn sign_with(keys: &Keys, scheme: SignatureScheme, content: &[u8]) -> Vec<u8> {
        let rng = &mut rand::rngs::OsRng;
        match scheme {
            SignatureScheme::EcdsaSecp256r1Sha256 => {
                rcgen::SigningKey::sign(&keys.p256, content).unwrap()
            }
            SignatureScheme::RsaPssRsaeSha256 => {
                rsa::pss::BlindedSigningKey::<rsa::sha2::Sha256>::new(keys.rsa.clone())
                    .sign_with_rng(rng, content)
                    .to_vec()
            }
            SignatureScheme::RsaPssRsaeSha384 => {
                rsa::pss::BlindedSigningKey::<rsa::sha2::Sha384>::new(keys.rsa.clone())
                    .sign_with_rng(rng, content)
                    .to_vec()
            }
            SignatureScheme::RsaPssRsaeSha512 => {
                rsa::pss::BlindedSigningKey::<rsa::sha2::Sha512>::new(keys.rsa.clone())
                    .sign_with_rng(rng, content)
                    .to_vec()
            }
            SignatureScheme::RsaPkcs1Sha256 => {
                rsa::pkcs1v15::SigningKey::<rsa::sha2::Sha256>::new(keys.rsa.clone())
                    .sign_with_rng(rng, content)
                    .to_vec()
            }
            other => panic!("no signer for {other:?}"),
        }
    }

    fn ecdsa_server() -> Server {
        let keys = keys(&NAS);
        Server {
            cert: certificate(&keys.p256),
            scheme: SignatureScheme::EcdsaSecp256r1Sha256,
            sign: sign_with,
            keys,
        }
    }

    fn rsa_server(scheme: SignatureScheme) -> Server {
        let keys = keys(&NAS);
        Server {
            cert: certificate(&keys.rsa_rcgen),
            scheme,
            sign: sign_with,
            keys,
        }
    }

    fn pin_of(cert: &[u8]) -> CertificatePin {
        CertificatePin(Sha256::digest(cert).into())
    }

    fn pinned(cert: &[u8]) -> Trust {
        Trust::Pinned(pin_of(cert))
    }

    /// What the server signs for the transcript hash `hash`.
    fn content(hash: &[u8]) -> Vec<u8> {
        let mut c = std::vec![0x20; 64];
        c.extend_from_slice(SERVER_CONTEXT);
        c.extend_from_slice(hash);
        c
    }

    /// The client's side of ClientHello … Certificate, then
    /// CertificateVerify. `server_transcript` changes what the server signs
    /// (an attacker's view of the handshake differs from the client's).
    fn handshake(
        trust: Trust,
        server: &Server,
        server_transcript: impl FnOnce(&mut Vec<u8>),
    ) -> Result<(), Refusal> {
        let mut verifier = PinnedCertificate::new(trust);
        let mut messages = b"ClientHello ServerHello EncryptedExtensions".to_vec();
        messages.extend_from_slice(&server.cert);
        let mut transcript = <Suite as TlsCipherSuite>::Hash::new();
        transcript.update(&messages);
        let mut entries = CertificateRef::with_context(&[]);
        entries
            .add(CertificateEntryRef::X509(&server.cert))
            .unwrap();
        let step = TlsVerifier::<Suite>::verify_certificate(&mut verifier, &transcript, entries);
        assert_eq!(step.is_ok(), verifier.refusal().is_none());
        if step.is_err() {
            return verifier.verdict();
        }
        server_transcript(&mut messages);
        let signed = content(&Sha256::digest(&messages));
        let signature = (server.sign)(server.keys, server.scheme, &signed);
        let verify = CertificateVerifyRef {
            signature_scheme: server.scheme,
            signature: &signature,
        };
        let step = TlsVerifier::<Suite>::verify_signature(&mut verifier, verify);
        assert_eq!(step.is_ok(), verifier.verdict().is_ok());
        verifier.verdict()
    }

    fn honest(_: &mut Vec<u8>) {}

    #[test]
    fn ecdsa_p256_pinned_certificate_with_its_signature_is_accepted() {
        let server = ecdsa_server();
        assert_eq!(handshake(pinned(&server.cert), &server, honest), Ok(()));
    }

    #[test]
    fn rsa_pss_pinned_certificate_with_its_signature_is_accepted() {
        for scheme in [
            SignatureScheme::RsaPssRsaeSha256,
            SignatureScheme::RsaPssRsaeSha384,
            SignatureScheme::RsaPssRsaeSha512,
        ] {
            let server = rsa_server(scheme);
            assert_eq!(
                handshake(pinned(&server.cert), &server, honest),
                Ok(()),
                "{scheme:?}"
            );
        }
    }

    #[test]
    fn another_certificate_than_the_pinned_one_is_refused() {
        for server in [
            ecdsa_server(),
            rsa_server(SignatureScheme::RsaPssRsaeSha256),
        ] {
            let mut pin = pin_of(&server.cert);
            pin.0[31] ^= 1;
            assert_eq!(
                handshake(Trust::Pinned(pin), &server, honest),
                Err(Refusal::PinMismatch {
                    sha256: pin_of(&server.cert).0
                })
            );
        }
    }

    #[test]
    fn pinned_certificate_signed_for_by_another_key_is_refused() {
        // The impostor replays the NAS's public certificate but holds only
        // its own keys.
        for mut server in [
            ecdsa_server(),
            rsa_server(SignatureScheme::RsaPssRsaeSha256),
        ] {
            server.keys = keys(&IMPOSTOR);
            assert_eq!(
                handshake(pinned(&server.cert), &server, honest),
                Err(Refusal::BadSignature),
                "{:?}",
                server.scheme
            );
        }
    }

    #[test]
    fn signature_over_another_transcript_is_refused() {
        // A valid signature by the right key, but over a handshake the
        // client did not see (one transcript byte differs).
        for server in [
            ecdsa_server(),
            rsa_server(SignatureScheme::RsaPssRsaeSha512),
        ] {
            let tamper = |m: &mut Vec<u8>| m[0] ^= 0x20;
            assert_eq!(
                handshake(pinned(&server.cert), &server, tamper),
                Err(Refusal::BadSignature),
                "{:?}",
                server.scheme
            );
        }
    }

    #[test]
    fn insecure_trust_takes_any_certificate_but_still_its_signature() {
        let server = ecdsa_server();
        assert_eq!(
            handshake(Trust::InsecureAnyCertificate, &server, honest),
            Ok(())
        );
        let mut replayed = rsa_server(SignatureScheme::RsaPssRsaeSha256);
        replayed.keys = keys(&IMPOSTOR);
        assert_eq!(
            handshake(Trust::InsecureAnyCertificate, &replayed, honest),
            Err(Refusal::BadSignature)
        );
    }

    #[test]
    fn rsa_pkcs1_and_mismatched_schemes_are_refused() {
        // TLS 1.3 signs with RSA-PSS only; an RSA key cannot sign ECDSA.
        let server = rsa_server(SignatureScheme::RsaPkcs1Sha256);
        assert_eq!(
            handshake(pinned(&server.cert), &server, honest),
            Err(Refusal::UnsupportedScheme(SignatureScheme::RsaPkcs1Sha256))
        );
        let mut server = ecdsa_server();
        server.scheme = SignatureScheme::RsaPssRsaeSha256;
        server.sign =
            |keys, _, content| sign_with(keys, SignatureScheme::RsaPssRsaeSha256, content);
        assert_eq!(
            handshake(pinned(&server.cert), &server, honest),
            Err(Refusal::UnsupportedScheme(
                SignatureScheme::RsaPssRsaeSha256
            ))
        );
    }

    #[test]
    fn p384_and_short_rsa_keys_are_refused_at_the_certificate() {
        let p384 = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P384_SHA384).unwrap();
        let cert = certificate(&p384);
        let mut verifier = PinnedCertificate::new(Trust::Pinned(pin_of(&cert)));
        let mut entries = CertificateRef::with_context(&[]);
        entries.add(CertificateEntryRef::X509(&cert)).unwrap();
        let transcript = <Suite as TlsCipherSuite>::Hash::new();
        assert!(
            TlsVerifier::<Suite>::verify_certificate(&mut verifier, &transcript, entries).is_err()
        );
        assert_eq!(verifier.verdict(), Err(Refusal::UnsupportedKey));

        // ring will not sign with a 1024-bit key: the P-256 key issues a
        // certificate for it instead.
        struct RsaPublic(Vec<u8>);
        impl rcgen::PublicKeyData for RsaPublic {
            fn der_bytes(&self) -> &[u8] {
                &self.0
            }
            fn algorithm(&self) -> &'static rcgen::SignatureAlgorithm {
                &rcgen::PKCS_RSA_SHA256
            }
        }
        let short = rsa::RsaPrivateKey::new(&mut rand::rngs::OsRng, 1024).unwrap();
        let pkcs1 = rsa::pkcs1::EncodeRsaPublicKey::to_pkcs1_der(&short.to_public_key()).unwrap();
        let params = rcgen::CertificateParams::new(std::vec!["nas.lan".into()]).unwrap();
        let issuer = rcgen::Issuer::from_params(&params, &keys(&NAS).p256);
        let cert = params
            .signed_by(&RsaPublic(pkcs1.as_bytes().to_vec()), &issuer)
            .unwrap()
            .der()
            .to_vec();
        assert_eq!(
            server_key(&cert).err(),
            Some(Refusal::WeakKey { bits: 1024 })
        );
    }

    #[test]
    fn signature_without_a_certificate_is_refused_and_so_is_a_missing_one() {
        let mut verifier = PinnedCertificate::new(Trust::Pinned(CertificatePin([0; 32])));
        assert_eq!(verifier.verdict(), Err(Refusal::NoCertificate));
        let verify = CertificateVerifyRef {
            signature_scheme: SignatureScheme::EcdsaSecp256r1Sha256,
            signature: &[0x30, 0x00],
        };
        assert!(TlsVerifier::<Suite>::verify_signature(&mut verifier, verify).is_err());
        assert_eq!(verifier.verdict(), Err(Refusal::OutOfOrder));

        let mut verifier = PinnedCertificate::new(Trust::InsecureAnyCertificate);
        let empty = CertificateRef::with_context(&[]);
        let transcript = <Suite as TlsCipherSuite>::Hash::new();
        assert!(
            TlsVerifier::<Suite>::verify_certificate(&mut verifier, &transcript, empty).is_err()
        );
        assert_eq!(verifier.refusal(), Some(Refusal::NoCertificate));
    }

    #[test]
    fn certificate_without_certificate_verify_is_not_verified() {
        let server = ecdsa_server();
        let mut verifier = PinnedCertificate::new(Trust::Pinned(pin_of(&server.cert)));
        let mut entries = CertificateRef::with_context(&[]);
        entries
            .add(CertificateEntryRef::X509(&server.cert))
            .unwrap();
        let transcript = <Suite as TlsCipherSuite>::Hash::new();
        TlsVerifier::<Suite>::verify_certificate(&mut verifier, &transcript, entries).unwrap();
        assert_eq!(verifier.verdict(), Err(Refusal::MissingCertificateVerify));
        assert_eq!(verifier.refusal(), None);
    }

    #[test]
    fn subject_public_key_info_is_found_and_a_truncated_certificate_refused() {
        let keys = keys(&NAS);
        let cert = certificate(&keys.p256);
        let spki = subject_public_key_info(&cert).unwrap();
        assert_eq!(
            spki,
            rcgen::PublicKeyData::subject_public_key_info(&keys.p256)
        );
        assert!(subject_public_key_info(&cert[..cert.len() - 1]).is_none());
        assert!(subject_public_key_info(b"").is_none());
    }

    #[test]
    fn pin_parses_like_the_host_cli() {
        let hex = "AB".repeat(32);
        assert_eq!(
            CertificatePin::from_hex(&hex),
            Ok(CertificatePin([0xab; 32]))
        );
        let colons = ["0f"; 32].join(":");
        assert_eq!(
            CertificatePin::from_hex(&colons),
            Ok(CertificatePin([0x0f; 32]))
        );
        for bad in [
            &"ab".repeat(31)[..],
            &"ab".repeat(33)[..],
            &"zz".repeat(32)[..],
            &[&"ab".repeat(31)[..], "a"].concat()[..],
            "",
        ] {
            assert_eq!(CertificatePin::from_hex(bad), Err(InvalidPin), "{bad}");
        }
    }

    // ----- certificates from arbitrary and corrupted bytes -----------------

    use proptest::prelude::*;

    /// `der` with a few bytes replaced and maybe cut short.
    fn corrupted(der: &[u8], edits: &[(prop::sample::Index, u8)], cut: Option<usize>) -> Vec<u8> {
        let mut d = der.to_vec();
        for (at, b) in edits {
            let i = at.index(d.len());
            d[i] = *b;
        }
        d.truncate(cut.unwrap_or(d.len()));
        d
    }

    /// The verifier, with any certificate trusted, given `cert` and then a
    /// CertificateVerify of `scheme` with `signature`: a verdict, never a panic.
    fn verify_any(cert: &[u8], scheme: SignatureScheme, signature: &[u8]) -> Result<(), Refusal> {
        let mut verifier = PinnedCertificate::new(Trust::InsecureAnyCertificate);
        let mut transcript = <Suite as TlsCipherSuite>::Hash::new();
        transcript.update(cert);
        let mut entries = CertificateRef::with_context(&[]);
        entries.add(CertificateEntryRef::X509(cert)).unwrap();
        if TlsVerifier::<Suite>::verify_certificate(&mut verifier, &transcript, entries).is_ok() {
            let verify = CertificateVerifyRef {
                signature_scheme: scheme,
                signature,
            };
            let _ = TlsVerifier::<Suite>::verify_signature(&mut verifier, verify);
        }
        verifier.verdict()
    }

    fn scheme() -> impl Strategy<Value = SignatureScheme> {
        prop_oneof![
            Just(SignatureScheme::EcdsaSecp256r1Sha256),
            Just(SignatureScheme::RsaPssRsaeSha256),
            Just(SignatureScheme::RsaPssRsaeSha512),
            Just(SignatureScheme::RsaPkcs1Sha256),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        #[test]
        fn arbitrary_bytes_are_refused_as_a_certificate_never_a_panic(
            der in prop::collection::vec(any::<u8>(), 0..600),
            scheme in scheme(),
        ) {
            let _ = subject_public_key_info(&der);
            prop_assert!(server_key(&der).is_err());
            prop_assert!(verify_any(&der, scheme, &der).is_err());
        }

        /// Real certificates with bytes replaced or cut short: refused or
        /// read, and a garbage signature never verifies.
        #[test]
        fn corrupted_certificates_never_panic_and_garbage_never_verifies(
            rsa in any::<bool>(),
            edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..4),
            cut in prop::option::of(0usize..1200),
            scheme in scheme(),
            signature in prop::collection::vec(any::<u8>(), 0..300),
        ) {
            let keys = keys(&NAS);
            let cert = certificate(if rsa { &keys.rsa_rcgen } else { &keys.p256 });
            let cert = corrupted(&cert, &edits, cut);
            let _ = server_key(&cert);
            prop_assert!(verify_any(&cert, scheme, &signature).is_err());
        }

        #[test]
        fn arbitrary_pins_never_panic(text in "[0-9a-fA-F:]{0,100}|\\PC{0,70}") {
            let _ = CertificatePin::from_hex(&text);
        }
    }
}
