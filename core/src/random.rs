//! Randomness supplied by the caller.
//!
//! The core needs random bytes for WebSocket masks and keys and for fnOS
//! session keys, but it must not force a `rand_core` version on anyone: the
//! embedded TLS stack pins an old one and HALs implement others. So it asks
//! for this one-method trait, which any RNG can implement in three lines.
#![deny(clippy::indexing_slicing)]

/// A source of random bytes supplied by the application.
///
/// Masks only need unpredictability against proxies; fnOS login keys need a
/// cryptographically secure source, so implement this over a CSPRNG or a
/// hardware RNG.
pub trait Entropy {
    /// Fill `dest` entirely with random bytes.
    fn fill_bytes(&mut self, dest: &mut [u8]);
}

impl<E: Entropy + ?Sized> Entropy for &mut E {
    fn fill_bytes(&mut self, dest: &mut [u8]) {
        (**self).fill_bytes(dest)
    }
}

/// An entropy source made from a closure, for tests and quick glue:
/// `from_fn(|buf| hw_rng.fill(buf))`.
pub fn from_fn<F: FnMut(&mut [u8])>(f: F) -> FromFn<F> {
    FromFn(f)
}

/// The [`Entropy`] returned by [`from_fn`].
#[derive(Debug, Clone)]
pub struct FromFn<F>(F);

impl<F: FnMut(&mut [u8])> Entropy for FromFn<F> {
    fn fill_bytes(&mut self, dest: &mut [u8]) {
        (self.0)(dest)
    }
}
