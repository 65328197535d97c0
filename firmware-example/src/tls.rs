//! `wss://` through embedded-tls (TLS 1.3, TLS_AES_128_GCM_SHA256).
//!
//! The server is trusted as [`settings::TLS_TRUST`] says:
//!
//! - `Some(Trust::Pinned(..))` (`NASLINK_TLS_PIN_SHA256`): only the
//!   certificate with that SHA-256, and only from a server that signs the
//!   handshake with its key (`naslink_embassy::tls`: ECDSA P-256 or
//!   RSA-PSS).
//! - `Some(Trust::InsecureAnyCertificate)` (`NASLINK_TLS_INSECURE=1`): any
//!   certificate: encrypted, but an active attacker could impersonate the
//!   NAS. Said at startup.
//! - `None`: [`check`] refuses `wss://` at startup.

use embassy_net::tcp::TcpSocket;
use embedded_tls::{Aes128GcmSha256, TlsConfig, TlsConnection};
use naslink_core::random::Entropy;
use naslink_core::ws::Url;
use naslink_embassy::tls::{self as pinning, OpenError, Refusal, Trust};

use crate::app::{Ended, Panel};
#[cfg(feature = "cfms")]
use crate::cfms_watch::{Session, WsBuffers, serve as serve_ws};
#[cfg(not(feature = "cfms"))]
use crate::fnos_watch::{Session, WsBuffers, serve as serve_ws};
use crate::panel::Snapshot;
use crate::settings;

/// At startup, for a `wss://` URL: `Err` with the reason if the build
/// cannot connect safely; otherwise say how the server will be checked
/// (loudly when it will not be).
pub(crate) fn check(panel: &mut impl Panel) -> Result<(), &'static str> {
    match settings::TLS_TRUST {
        Some(Trust::Pinned(pin)) => {
            let mut digits = [0u8; 64];
            panel.note(concat_note(
                &mut [0u8; 128],
                "tls: certificate pinned, sha256 ",
                hex(&pin.0, &mut digits),
            ));
            Ok(())
        }
        Some(Trust::InsecureAnyCertificate) => {
            panel.note("WARNING: tls server certificate NOT verified (NASLINK_TLS_INSECURE=1)");
            Ok(())
        }
        None => {
            Err("wss:// needs NASLINK_TLS_PIN_SHA256 (or NASLINK_TLS_INSECURE=1) at build time")
        }
    }
}

/// A whole TLS record (16 KiB plaintext plus overhead): servers may send
/// records this large, and embedded-tls must hold one to decrypt it.
pub const READ_RECORD: usize = 16_640;
/// Outgoing records: a login envelope (about 2 KiB) fits in one.
pub const WRITE_RECORD: usize = 4096;

/// TLS record buffers.
pub struct Buffers {
    read: [u8; READ_RECORD],
    write: [u8; WRITE_RECORD],
}

impl Buffers {
    /// Zeroed buffers.
    pub const fn new() -> Self {
        Buffers {
            read: [0; READ_RECORD],
            write: [0; WRITE_RECORD],
        }
    }
}

impl Default for Buffers {
    fn default() -> Self {
        Self::new()
    }
}

/// The application's CSPRNG as the `rand_core` 0.6 generator embedded-tls asks for.
struct TlsRng<'r, R>(&'r mut R);

impl<R: Entropy> rand_core::RngCore for TlsRng<'_, R> {
    fn next_u32(&mut self) -> u32 {
        let mut b = [0; 4];
        self.fill_bytes(&mut b);
        u32::from_le_bytes(b)
    }
    fn next_u64(&mut self) -> u64 {
        let mut b = [0; 8];
        self.fill_bytes(&mut b);
        u64::from_le_bytes(b)
    }
    fn fill_bytes(&mut self, dest: &mut [u8]) {
        self.0.fill_bytes(dest);
    }
    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), rand_core::Error> {
        self.fill_bytes(dest);
        Ok(())
    }
}

impl<R: Entropy> rand_core::CryptoRng for TlsRng<'_, R> {}

/// Run TLS on `socket`, then the WebSocket connection inside it.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn serve<R: Entropy>(
    socket: &mut TcpSocket<'_>,
    url: &Url<'_>,
    session: &mut Session,
    rng: &mut R,
    ws: &mut WsBuffers,
    buffers: &mut Buffers,
    snap: &mut Snapshot,
    panel: &mut impl Panel,
) -> Ended {
    // `check` refused to start without a setting.
    let Some(trust) = settings::TLS_TRUST else {
        return Ended::Failed;
    };
    let mut tls: TlsConnection<'_, _, Aes128GcmSha256> =
        TlsConnection::new(socket, &mut buffers.read, &mut buffers.write);
    // RSA-PSS is offered only on request; NAS certificates are often RSA.
    let mut config = TlsConfig::new().enable_rsa_signatures();
    // Server names only: an address in SNI is not allowed (RFC 6066 §3).
    if !is_address(url.host) {
        config = config.with_server_name(url.host);
    }
    // Both settings go through the same provider type: embedded-tls's
    // handshake is generic over it, and a second type (its own
    // `UnsecureProvider`) would put a second copy of it in flash.
    if let Err(e) = pinning::open(&mut tls, &config, trust, TlsRng(&mut *rng)).await {
        note_refusal(&e, panel);
        return Ended::Failed;
    }
    serve_ws(&mut tls, url, session, rng, ws, snap, panel).await
}

/// Say why the handshake failed, in the operator's terms.
fn note_refusal(e: &OpenError, panel: &mut impl Panel) {
    let text = match e {
        OpenError::Refused(Refusal::PinMismatch { sha256 }) => {
            let mut digits = [0u8; 64];
            panel.note(concat_note(
                &mut [0u8; 128],
                "tls: server certificate is not the pinned one, sha256 ",
                hex(sha256, &mut digits),
            ));
            return;
        }
        OpenError::Refused(Refusal::BadSignature) => {
            "tls: server does not hold its certificate's key"
        }
        OpenError::Refused(
            Refusal::UnsupportedKey | Refusal::WeakKey { .. } | Refusal::UnsupportedScheme(_),
        ) => "tls: server key type not supported (ECDSA P-256, RSA 2048-4096)",
        OpenError::Refused(_) => "tls: server did not prove its certificate",
        OpenError::Tls(_) => "tls handshake failed",
    };
    panel.note(text);
}

/// An IPv4 or IPv6 address rather than a name.
fn is_address(host: &str) -> bool {
    host.contains(':') || host.bytes().all(|b| b.is_ascii_digit() || b == b'.')
}

/// Lower-case hex of `bytes` in `out` (twice as long).
fn hex<'a>(bytes: &[u8], out: &'a mut [u8]) -> &'a str {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    for (pair, b) in out.chunks_exact_mut(2).zip(bytes) {
        pair[0] = DIGITS[usize::from(b >> 4)];
        pair[1] = DIGITS[usize::from(b & 0xf)];
    }
    let len = (bytes.len() * 2).min(out.len());
    core::str::from_utf8(&out[..len]).unwrap_or("")
}

/// `a` then `b` in `buf`, cut to fit.
fn concat_note<'a>(buf: &'a mut [u8], a: &str, b: &str) -> &'a str {
    let mut len = 0;
    for part in [a, b] {
        let n = part.len().min(buf.len() - len);
        buf[len..len + n].copy_from_slice(&part.as_bytes()[..n]);
        len += n;
    }
    // Both parts are ASCII, so a cut never splits a character.
    core::str::from_utf8(&buf[..len]).unwrap_or("")
}
