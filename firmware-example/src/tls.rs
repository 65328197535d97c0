//! `wss://` through embedded-tls (TLS 1.3, TLS_AES_128_GCM_SHA256).
//!
//! The server's certificate is **not verified** (embedded-tls's
//! `UnsecureProvider`): the link is encrypted, but an active attacker on
//! the network could impersonate the NAS. Pin the certificate with a
//! verifying provider before trusting a hostile network.

use core::cell::RefCell;

use embassy_net::tcp::TcpSocket;
use embedded_tls::{Aes128GcmSha256, TlsConfig, TlsConnection, TlsContext, UnsecureProvider};
use naslink_core::random::Entropy;
use naslink_core::ws::Url;

use crate::app::{Ended, Panel};
#[cfg(feature = "cfms")]
use crate::cfms_watch::{Session, WsBuffers, serve as serve_ws};
#[cfg(not(feature = "cfms"))]
use crate::fnos_watch::{Session, WsBuffers, serve as serve_ws};
use crate::panel::Snapshot;

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
struct TlsRng<'r, R>(&'r RefCell<R>);

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
        self.0.borrow_mut().fill_bytes(dest);
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
    rng: &RefCell<R>,
    ws: &mut WsBuffers,
    buffers: &mut Buffers,
    snap: &mut Snapshot,
    panel: &mut impl Panel,
) -> Ended {
    let mut tls: TlsConnection<'_, _, Aes128GcmSha256> =
        TlsConnection::new(socket, &mut buffers.read, &mut buffers.write);
    let config = TlsConfig::new().with_server_name(url.host);
    let provider = UnsecureProvider::new::<Aes128GcmSha256>(TlsRng(rng));
    if tls.open(TlsContext::new(&config, provider)).await.is_err() {
        panel.note("tls handshake failed");
        return Ended::Failed;
    }
    serve_ws(&mut tls, url, session, rng, ws, snap, panel).await
}
