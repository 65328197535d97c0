//! # Hostile server
//!
//! A proxy in front of the real in-process emulators ([`crate::fnos`], or
//! [`crate::cfms`] over plain `ws://`) that misbehaves on purpose, one way
//! per [`Mode`], so that a client's handling of a broken or malicious server
//! can be tested end to end: logins go through the emulator unchanged, and
//! the proxy injects its bytes right after the upgrade or when it sees a
//! given request or answer.
//!
//! The proxy relays the HTTP upgrade byte for byte, then reads WebSocket
//! frames in both directions with its own small frame reader (the sim
//! stays independent of `naslink-core`) and forwards them verbatim unless
//! the mode rewrites one. Requests that are not upgrades (fnOS `POST
//! /upload`, `GET /multiple-download`) are relayed as plain bytes, except
//! the download modes that answer `GET /multiple-download` themselves.
//!
//! Every hostile loop is bounded: a connection lives at most
//! [`CONNECTION_LIMIT`], a held-open connection [`HOLD`], floods stop after
//! a fixed count. The proxy listens where [`Config::listen`] says
//! (loopback by default).
//!
//! ```no_run
//! use naslink_sim::hostile::{Config, Mode, Server, Upstream};
//! # async fn demo() -> anyhow::Result<()> {
//! let server = Server::start(Config::new(Mode::MaskedFrame, Upstream::Fnos)).await?;
//! println!("{}", server.url()); // ws://127.0.0.1:PORT/websocket?type=main
//! server.shutdown().await;
//! # Ok(()) }
//! ```

mod cli;
mod frame;
mod http;
mod inject;
mod relay;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::task::{JoinHandle, JoinSet};

pub use cli::{Args, run_cli};

/// The longest any proxied connection lives, whatever the mode.
pub const CONNECTION_LIMIT: Duration = Duration::from_secs(60);
/// How long a connection is held open (reading and discarding what the
/// client sends) after the hostile bytes went out, and how long the
/// floods and endless answers last at most.
pub const HOLD: Duration = Duration::from_secs(30);

/// The file every emulator behind the proxy holds for download tests:
/// fnOS path (in the home of `admin`, uid 1000).
pub const FNOS_SAMPLE_PATH: &str = "vol1/1000/hostile.bin";
/// The CFMS document title (in the root folder) of the sample file.
pub const CFMS_SAMPLE_TITLE: &str = "hostile.bin";
/// Size of the sample file: 1 MiB, which the CFMS emulator behind the
/// proxy sends in four chunks of 256 KiB (so a rewritten first chunk is
/// not also the last).
pub const SAMPLE_SIZE: usize = 1 << 20;

/// Byte `i` of the sample file.
pub fn sample_byte(i: usize) -> u8 {
    (i.wrapping_mul(31) % 251) as u8
}

/// The whole sample file.
pub fn sample() -> Vec<u8> {
    (0..SAMPLE_SIZE).map(sample_byte).collect()
}

/// Which emulator sits behind the proxy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Upstream {
    /// The fnOS emulator (fixture RSA key, admin/admin).
    Fnos,
    /// The CFMS emulator over plain `ws://` (admin/admin).
    Cfms,
}

/// How the proxy misbehaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Mode {
    /// Relay faithfully, at most [`Config::throttle`] bytes per second each
    /// way (slow transfers, for interruption tests).
    Throttle,
    /// After the upgrade: a binary frame announcing 2^62 payload bytes.
    Length62,
    /// After the upgrade: a frame announcing 2^63 bytes (the most
    /// significant bit of a 64-bit length must be 0, RFC 6455 5.2).
    Length63,
    /// After the upgrade: a masked text frame (a server must not mask, 5.1).
    MaskedFrame,
    /// After the upgrade: a text frame without FIN, then continuation
    /// frames up to 10 MB in all, never finished.
    ContinuationFlood,
    /// After the upgrade: a text frame that is not UTF-8 (8.1).
    BadUtf8,
    /// Right after the 101 response, bytes that are not a frame.
    GarbageAfterUpgrade,
    /// The 101 response trickles one byte per 200 ms; then a faithful relay.
    SlowHandshake,
    /// A faithful relay while PINGs of 125 bytes flood the client (at most
    /// 200 000, or [`HOLD`]); the client's PONGs are swallowed.
    PingFlood,
    /// 100 PINGs right after the 101 (they may share its TCP segment),
    /// then a faithful relay: a client must answer them and go on.
    PingBurst,
    /// After the upgrade, nothing: not one frame is relayed.
    Silence,
    /// Every connection is closed (TCP FIN) right after its 101 response.
    BreakAfterUpgrade,
    /// fnOS: `file.ls` is answered by partial frames (64 KiB each) that
    /// never end (until [`HOLD`]).
    EndlessAnswer,
    /// fnOS: `GET /multiple-download` announces `Content-Length` 1 TiB and
    /// sends 64 KiB every 10 ms.
    DownloadLyingLength,
    /// fnOS: `GET /multiple-download` sends chunked data (64 KiB every
    /// 10 ms) without a last chunk.
    DownloadEndless,
    /// fnOS: `GET /multiple-download` has neither length nor chunking and
    /// closes after 100 KiB, short of the file's size.
    DownloadNoLength,
    /// CFMS: the upload's `ready` is rewritten to `ready 4294967295`.
    HugeReady,
    /// CFMS: the first `file_chunk` carries an `index` of 200 digits.
    ChunkIndexDigits,
    /// CFMS: the `aes_key` message carries a `key` that is a 200-digit number.
    AesKeyDigits,
    /// CFMS: the first `file_chunk` starts with an unknown key of 27 bytes
    /// as sent (22 decoded) with an escape in it.
    LongKeyEscape,
    /// CFMS: the first `file_chunk` has a 100-byte `hash` ending in an escape.
    LongHashEscape,
}

impl Mode {
    /// The upstream this mode needs, when only one makes sense.
    pub fn needs(self) -> Option<Upstream> {
        use Mode::*;
        match self {
            EndlessAnswer | DownloadLyingLength | DownloadEndless | DownloadNoLength => {
                Some(Upstream::Fnos)
            }
            HugeReady | ChunkIndexDigits | AesKeyDigits | LongKeyEscape | LongHashEscape => {
                Some(Upstream::Cfms)
            }
            _ => None,
        }
    }

    fn answers_downloads(self) -> bool {
        matches!(
            self,
            Mode::DownloadLyingLength | Mode::DownloadEndless | Mode::DownloadNoLength
        )
    }
}

/// What a hostile [`Server`] is started with.
#[derive(Debug, Clone)]
pub struct Config {
    /// How to misbehave.
    pub mode: Mode,
    /// The emulator behind the proxy.
    pub upstream: Upstream,
    /// Where the proxy listens (port 0 picks a free one).
    pub listen: SocketAddr,
    /// `server_info.protocol_version` of the CFMS emulator (3 to 5).
    pub cfms_protocol: u32,
    /// Bytes per second each way in [`Mode::Throttle`].
    pub throttle: u64,
}

impl Config {
    /// `mode` in front of `upstream` on `127.0.0.1:0`, CFMS protocol 3,
    /// throttled to 256 KiB/s.
    pub fn new(mode: Mode, upstream: Upstream) -> Self {
        Self {
            mode,
            upstream,
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            cfms_protocol: 3,
            throttle: 256 * 1024,
        }
    }
}

/// The hostile server; see the [module documentation](self).
#[derive(Debug)]
pub struct Server;

/// What the proxy has seen, for tests that act mid-transfer.
#[derive(Debug, Default)]
pub(crate) struct Stats {
    connections: AtomicU64,
    client_bytes: AtomicU64,
}

/// A running hostile server and the emulator behind it.
#[derive(Debug)]
pub struct Handle {
    addr: SocketAddr,
    upstream: Upstream,
    fnos: Option<crate::fnos::Handle>,
    cfms: Option<crate::cfms::Handle>,
    stats: Arc<Stats>,
    task: JoinHandle<()>,
}

impl Server {
    /// Start the emulator (with the sample file) and the proxy on the
    /// current tokio runtime.
    pub async fn start(config: Config) -> anyhow::Result<Handle> {
        if let Some(needed) = config.mode.needs().filter(|&u| u != config.upstream) {
            anyhow::bail!("mode {:?} works only in front of {needed:?}", config.mode);
        }
        let (fnos, cfms, upstream_addr) = start_upstream(&config).await?;
        let listener = TcpListener::bind(config.listen).await?;
        let addr = listener.local_addr()?;
        let stats = Arc::new(Stats::default());
        let context = Arc::new(relay::Context {
            mode: config.mode,
            upstream: upstream_addr,
            throttle: (config.mode == Mode::Throttle).then_some(config.throttle.max(1)),
            stats: stats.clone(),
        });
        let task = tokio::spawn(accept_loop(listener, context));
        Ok(Handle {
            addr,
            upstream: config.upstream,
            fnos,
            cfms,
            stats,
            task,
        })
    }
}

type Upstreams = (
    Option<crate::fnos::Handle>,
    Option<crate::cfms::Handle>,
    SocketAddr,
);

async fn start_upstream(config: &Config) -> anyhow::Result<Upstreams> {
    match config.upstream {
        Upstream::Fnos => {
            let handle = crate::fnos::Server::start(crate::fnos::Config {
                key: crate::fnos::KeySource::Fixture,
                ..crate::fnos::Config::default()
            })
            .await?;
            handle
                .put_file(FNOS_SAMPLE_PATH, sample())
                .map_err(|e| anyhow::anyhow!("seeding the sample file: {e}"))?;
            let addr = handle.addr();
            Ok((Some(handle), None, addr))
        }
        Upstream::Cfms => {
            let handle = crate::cfms::Server::start(crate::cfms::Config {
                protocol_version: config.cfms_protocol,
                bad_password_delay: Duration::from_millis(50),
                // Several chunks, so a rewritten first chunk is not the last.
                chunk_size: 256 * 1024,
                ..crate::cfms::Config::default()
            })
            .await?;
            handle.put_document(None, CFMS_SAMPLE_TITLE, sample());
            let addr = handle.addr();
            Ok((None, Some(handle), addr))
        }
    }
}

async fn accept_loop(listener: TcpListener, context: Arc<relay::Context>) {
    // Dropped with this task: aborting it ends every connection.
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let Ok((stream, _)) = accepted else { continue };
                context.stats.connections.fetch_add(1, Ordering::Relaxed);
                connections.spawn(relay::serve(stream, context.clone()));
            }
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
}

impl Handle {
    /// The proxy's address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The URL a client connects to: `ws://ADDR/websocket?type=main`
    /// (fnOS) or `ws://ADDR/` (CFMS).
    pub fn url(&self) -> String {
        match self.upstream {
            Upstream::Fnos => format!("ws://{}/websocket?type=main", self.addr),
            Upstream::Cfms => format!("ws://{}/", self.addr),
        }
    }

    /// The fnOS emulator behind the proxy, if it is one.
    pub fn fnos(&self) -> Option<&crate::fnos::Handle> {
        self.fnos.as_ref()
    }

    /// The CFMS emulator behind the proxy, if it is one.
    pub fn cfms(&self) -> Option<&crate::cfms::Handle> {
        self.cfms.as_ref()
    }

    /// Connections accepted so far.
    pub fn connections(&self) -> u64 {
        self.stats.connections.load(Ordering::Relaxed)
    }

    /// Bytes relayed from clients to the emulator so far (frames and
    /// plain HTTP alike), to act once a transfer is under way.
    pub fn client_bytes(&self) -> u64 {
        self.stats.client_bytes.load(Ordering::Relaxed)
    }

    /// Stop the proxy (every connection ends) and the emulator.
    pub async fn shutdown(self) {
        self.task.abort();
        let _ = self.task.await;
        if let Some(fnos) = &self.fnos {
            fnos.shutdown().await;
        }
        if let Some(cfms) = &self.cfms {
            cfms.shutdown().await;
        }
    }
}
