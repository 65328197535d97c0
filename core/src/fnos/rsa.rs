//! RSAES-PKCS1-v1_5 encryption without an allocator.
//!
//! The login sends the AES key encrypted to the server's RSA key (SPKI PEM,
//! 2048 bits on real servers). Encryption is one modular exponentiation with
//! the public exponent on fixed-width integers in Montgomery form, so any
//! modulus from [`MIN_MODULUS_BITS`] to [`MAX_MODULUS_BITS`] bits works and
//! the ciphertext always has exactly the modulus' length.
//!
//! Keys of up to 2048 bits run on 2048-bit integers, larger ones on 4096-bit
//! integers, and the exponentiation is plain square-and-multiply (the public
//! exponent is short), so no table of powers sits on the stack: a whole
//! password-login `poll_transmit` with a 2048-bit key runs in a 16 KB thread
//! stack in a release build (measured on x86-64; debug builds need several
//! times more, 4096-bit keys about twice as much).
//!
//! The padding string PS is drawn from the caller's [`Entropy`]: all of it in
//! one call, then one more byte for each zero byte in it. A test that feeds
//! recorded non-zero PS bytes therefore reproduces a recorded ciphertext.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use crypto_bigint::modular::{FixedMontyForm, FixedMontyParams};
use crypto_bigint::{Limb, Odd, U2048, U4096, Uint};
use der::Decode as _;
use zeroize::Zeroize;

use crate::random::Entropy;

/// Largest modulus supported, in bits.
pub const MAX_MODULUS_BITS: usize = 4096;
/// Smallest modulus accepted, in bits (smaller keys are broken).
pub const MIN_MODULUS_BITS: usize = 1024;
/// Largest modulus (and ciphertext) in bytes.
pub const MAX_MODULUS_BYTES: usize = MAX_MODULUS_BITS / 8;
/// Largest PEM text accepted: a 4096-bit SPKI key is about 800 characters.
pub const MAX_PEM_LEN: usize = 1024;
/// Largest DER key accepted: a 4096-bit SPKI key is 550 bytes.
const MAX_DER_LEN: usize = 640;

/// Why a public key could not be read or used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RsaError {
    /// No `-----BEGIN PUBLIC KEY-----` / `RSA PUBLIC KEY` block, or its
    /// base64 body is malformed or too long.
    InvalidPem,
    /// The DER structure is not a valid SPKI or PKCS#1 public key.
    InvalidDer,
    /// The SPKI algorithm is not `rsaEncryption`.
    NotRsa,
    /// The modulus is even or outside the supported sizes.
    UnsupportedModulus {
        /// Modulus size in bits.
        bits: usize,
    },
    /// The public exponent is even, below 3, or wider than 64 bits.
    UnsupportedExponent,
    /// The message is longer than modulus length − 11 bytes.
    MessageTooLong,
    /// The output buffer is shorter than the modulus.
    BufferTooSmall {
        /// Bytes needed.
        required: usize,
    },
}

/// An RSA public key of up to [`MAX_MODULUS_BITS`] bits.
#[derive(Clone, PartialEq, Eq)]
pub struct RsaPublicKey {
    /// Big-endian, right-aligned in [`MAX_MODULUS_BYTES`].
    modulus: [u8; MAX_MODULUS_BYTES],
    exponent: u64,
    modulus_len: usize,
}

impl core::fmt::Debug for RsaPublicKey {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "RsaPublicKey({} bits, e={})", self.bits(), self.exponent)
    }
}

impl RsaPublicKey {
    /// A key from its big-endian modulus and exponent bytes.
    pub fn from_components(modulus: &[u8], exponent: &[u8]) -> Result<Self, RsaError> {
        let first = modulus
            .iter()
            .position(|&b| b != 0)
            .unwrap_or(modulus.len());
        let n = &modulus[first..];
        let bits = n
            .first()
            .map_or(0, |b| n.len() * 8 - b.leading_zeros() as usize);
        if !(MIN_MODULUS_BITS..=MAX_MODULUS_BITS).contains(&bits) {
            return Err(RsaError::UnsupportedModulus { bits });
        }
        if n.last().is_none_or(|b| b % 2 == 0) {
            return Err(RsaError::UnsupportedModulus { bits });
        }
        let mut modulus = [0u8; MAX_MODULUS_BYTES];
        modulus[MAX_MODULUS_BYTES - n.len()..].copy_from_slice(n);
        let first = exponent
            .iter()
            .position(|&b| b != 0)
            .unwrap_or(exponent.len());
        let e = &exponent[first..];
        if e.len() > 8 {
            return Err(RsaError::UnsupportedExponent);
        }
        let exponent = e.iter().fold(0u64, |acc, &b| (acc << 8) | u64::from(b));
        if exponent < 3 || exponent.is_multiple_of(2) {
            return Err(RsaError::UnsupportedExponent);
        }
        Ok(RsaPublicKey {
            modulus,
            exponent,
            modulus_len: n.len(),
        })
    }

    /// A key from a DER `SubjectPublicKeyInfo`.
    pub fn from_spki_der(der: &[u8]) -> Result<Self, RsaError> {
        let spki =
            spki::SubjectPublicKeyInfoRef::from_der(der).map_err(|_| RsaError::InvalidDer)?;
        if spki.algorithm.oid != pkcs1::ALGORITHM_OID {
            return Err(RsaError::NotRsa);
        }
        let inner = spki
            .subject_public_key
            .as_bytes()
            .ok_or(RsaError::InvalidDer)?;
        Self::from_pkcs1_der(inner)
    }

    /// A key from a DER PKCS#1 `RSAPublicKey`.
    pub fn from_pkcs1_der(der: &[u8]) -> Result<Self, RsaError> {
        let key = pkcs1::RsaPublicKeyRef::from_der(der).map_err(|_| RsaError::InvalidDer)?;
        Self::from_components(key.modulus.as_bytes(), key.public_exponent.as_bytes())
    }

    /// A key from PEM text: `PUBLIC KEY` (SPKI, what fnOS sends) or
    /// `RSA PUBLIC KEY` (PKCS#1).
    pub fn from_pem(pem: &str) -> Result<Self, RsaError> {
        let (label, body) = pem_body(pem).ok_or(RsaError::InvalidPem)?;
        let mut text = [0u8; MAX_PEM_LEN];
        let mut len = 0;
        for b in body.bytes().filter(|b| !b.is_ascii_whitespace()) {
            *text.get_mut(len).ok_or(RsaError::InvalidPem)? = b;
            len += 1;
        }
        let mut der = [0u8; MAX_DER_LEN];
        let der_len = STANDARD
            .decode_slice(&text[..len], &mut der)
            .map_err(|_| RsaError::InvalidPem)?;
        match label {
            PemLabel::Spki => Self::from_spki_der(&der[..der_len]),
            PemLabel::Pkcs1 => Self::from_pkcs1_der(&der[..der_len]),
        }
    }

    /// Modulus size in bits.
    pub fn bits(&self) -> usize {
        let n = &self.modulus[MAX_MODULUS_BYTES - self.modulus_len..];
        n.first()
            .map_or(0, |b| n.len() * 8 - b.leading_zeros() as usize)
    }

    /// Modulus size in bytes: the length of every ciphertext.
    pub fn size(&self) -> usize {
        self.modulus_len
    }

    /// The public exponent.
    pub fn exponent(&self) -> u64 {
        self.exponent
    }

    /// RSAES-PKCS1-v1_5-encrypt `message` into `out[..self.size()]`, drawing
    /// the padding from `rng`. Returns the ciphertext length.
    pub fn encrypt_pkcs1v15(
        &self,
        message: &[u8],
        rng: &mut impl Entropy,
        out: &mut [u8],
    ) -> Result<usize, RsaError> {
        let k = self.modulus_len;
        if message.len() + 11 > k {
            return Err(RsaError::MessageTooLong);
        }
        let out = out
            .get_mut(..k)
            .ok_or(RsaError::BufferTooSmall { required: k })?;
        // EM = 00 || 02 || PS || 00 || M, right-aligned in the 4096-bit block.
        let mut em = [0u8; MAX_MODULUS_BYTES];
        let start = MAX_MODULUS_BYTES - k;
        let ps_end = MAX_MODULUS_BYTES - message.len() - 1;
        em[start + 1] = 2;
        fill_nonzero(&mut em[start + 2..ps_end], rng);
        em[MAX_MODULUS_BYTES - message.len()..].copy_from_slice(message);
        // Keys of up to 2048 bits (what servers use) run on 2048-bit
        // integers: half the stack and a quarter of the work of 4096 bits.
        let done = if k <= U2048::BYTES {
            modexp::<{ U2048::LIMBS }>(&self.modulus, &em, self.exponent, out)
        } else {
            modexp::<{ U4096::LIMBS }>(&self.modulus, &em, self.exponent, out)
        };
        em.zeroize();
        done.then_some(())
            .ok_or(RsaError::UnsupportedModulus { bits: self.bits() })?;
        Ok(k)
    }
}

/// `out = em^e mod n` on `L`-limb integers; `n` and `em` are right-aligned
/// in [`MAX_MODULUS_BYTES`] and must fit `L` limbs. `false` if they do not
/// or `n` is even. Never inlined, so only the width in use takes stack.
#[inline(never)]
fn modexp<const L: usize>(
    n: &[u8; MAX_MODULUS_BYTES],
    em: &[u8; MAX_MODULUS_BYTES],
    e: u64,
    out: &mut [u8],
) -> bool {
    let width = L * Limb::BYTES;
    let Some(skip) = MAX_MODULUS_BYTES.checked_sub(width) else {
        return false;
    };
    if n[..skip].iter().chain(&em[..skip]).any(|&b| b != 0) {
        return false;
    }
    let Some(modulus) = Odd::new(Uint::<L>::from_be_slice(&n[skip..])).into_option() else {
        return false;
    };
    let params = FixedMontyParams::new_vartime(modulus);
    let mut m = Uint::<L>::from_be_slice(&em[skip..]);
    let mut m_form = FixedMontyForm::new(&m, &params);
    m.zeroize();
    let mut c = pow_public(&m_form, e).retrieve();
    m_form.zeroize();
    let encoded = c.to_be_bytes();
    c.zeroize();
    let bytes = encoded.as_ref();
    match bytes.get(bytes.len().saturating_sub(out.len())..) {
        Some(tail) if tail.len() == out.len() => {
            out.copy_from_slice(tail);
            true
        }
        _ => false,
    }
}

/// `base^e` by left-to-right square-and-multiply. The exponent is public
/// (65537 in practice: 16 squarings and one multiplication), so variable
/// time is fine, and unlike a windowed exponentiation this keeps no table
/// of sixteen 4096-bit powers on the stack.
fn pow_public<const L: usize>(base: &FixedMontyForm<L>, e: u64) -> FixedMontyForm<L> {
    let mut acc = *base;
    let top = 63 - e.leading_zeros();
    for bit in (0..top).rev() {
        acc = acc.square();
        if (e >> bit) & 1 == 1 {
            acc = acc.mul(base);
        }
    }
    acc
}

enum PemLabel {
    Spki,
    Pkcs1,
}

fn pem_body(pem: &str) -> Option<(PemLabel, &str)> {
    for (label, name) in [
        (PemLabel::Spki, "PUBLIC KEY"),
        (PemLabel::Pkcs1, "RSA PUBLIC KEY"),
    ] {
        let mut begin = heapless::String::<32>::new();
        let mut end = heapless::String::<32>::new();
        core::fmt::write(&mut begin, format_args!("-----BEGIN {name}-----")).ok()?;
        core::fmt::write(&mut end, format_args!("-----END {name}-----")).ok()?;
        if let Some(at) = pem.find(begin.as_str()) {
            let rest = &pem[at + begin.len()..];
            let stop = rest.find(end.as_str())?;
            return Some((label, &rest[..stop]));
        }
    }
    None
}

/// Fill `ps` with non-zero random bytes, replacing each zero drawn by a fresh
/// draw so the distribution stays uniform over 1..=255.
fn fill_nonzero(ps: &mut [u8], rng: &mut impl Entropy) {
    rng.fill_bytes(ps);
    for b in ps.iter_mut() {
        while *b == 0 {
            let mut one = [0u8; 1];
            rng.fill_bytes(&mut one);
            *b = one[0];
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_padding_bytes_are_redrawn() {
        let mut feed = [0u8, 5, 0, 0, 9].into_iter();
        let mut rng = crate::random::from_fn(|buf: &mut [u8]| {
            for b in buf {
                *b = feed.next().unwrap_or(1);
            }
        });
        let mut ps = [0u8; 3];
        fill_nonzero(&mut ps, &mut rng);
        // The first draw gives 0,5,0; the zeros are replaced by later draws.
        assert_eq!(ps, [9, 5, 1]);
    }

    #[test]
    fn zero_or_empty_modulus_is_refused_without_panicking() {
        for n in [&[][..], &[0u8; 4][..]] {
            assert_eq!(
                RsaPublicKey::from_components(n, &[1, 0, 1]),
                Err(RsaError::UnsupportedModulus { bits: 0 })
            );
        }
    }

    #[test]
    fn small_and_even_moduli_are_refused() {
        let small = [0xffu8; 64];
        assert_eq!(
            RsaPublicKey::from_components(&small, &[1, 0, 1]),
            Err(RsaError::UnsupportedModulus { bits: 512 })
        );
        let mut even = [0xffu8; 256];
        even[255] = 0xfe;
        assert_eq!(
            RsaPublicKey::from_components(&even, &[1, 0, 1]),
            Err(RsaError::UnsupportedModulus { bits: 2048 })
        );
        let odd = [0xffu8; 256];
        assert_eq!(
            RsaPublicKey::from_components(&odd, &[2]),
            Err(RsaError::UnsupportedExponent)
        );
    }
}
