//! The connection loop both builds run.
//!
//! ```text
//! ┌─► Connecting: DNS + TCP + WebSocket ──fail──► Offline(backoff) ──┐
//! │        │ open                                                   │
//! │        ▼                                                        │
//! │   LoggingIn ──LoggedIn──► Online: every POLL_SECS ask host name, │
//! │        │ refused             resmon.gen, calcSpace, health parts │
//! │        ▼                        │ error / close / dead heartbeat │
//! │   LoginFailed ──────────────────┴──────────────► Offline ────────┘
//! │                                 │ kicked push
//! │                                 ▼
//! │                              Kicked: shown, never reconnects
//! ```
//!
//! The backoff (the core's rule: doubling from 1 s to 30 s, with jitter)
//! resets once a connection gets online. The session survives reconnects, so the next login uses the
//! token the last one earned.

use embassy_net::Stack;
use embassy_time::{Duration, Timer};
use naslink_core::backoff::{Attempts, Backoff};
use naslink_core::random::Entropy;
use naslink_core::time::Duration as CoreDuration;
use naslink_core::ws::Url;
use naslink_embassy::Error;
use naslink_embassy::net::open_tcp;

#[cfg(feature = "cfms")]
use crate::cfms_watch as watch;
#[cfg(not(feature = "cfms"))]
use crate::fnos_watch as watch;
use crate::panel::{Line, Link, ROWS, Snapshot, render};
use crate::settings;

/// Requests in flight: the status queries (nine for fnOS) plus room for a
/// slow reply from the previous round.
pub const PENDING: usize = 12;
/// Each TCP socket buffer: a reply or a login envelope in at most two
/// segments; smaller than the WebSocket buffers because TCP drains into them.
pub const TCP_BUFFER: usize = 1536;

/// Reconnect delays: 1 s doubling to 30 s, with the core's jitter.
const BACKOFF: Backoff = Backoff::new(CoreDuration::from_secs(1), CoreDuration::from_secs(30));
const TCP_TIMEOUT: Duration = Duration::from_secs(15);

/// Where the panel lines go (a display driver, RTT, stdout).
pub trait Panel {
    /// Show the lines; called after every change.
    fn show(&mut self, lines: &[Line; ROWS]);
    /// A one-line diagnostic (connection events).
    fn note(&mut self, text: &str);
}

/// Memory the loop needs, in one place so a board can put it in a `static`.
pub struct Resources {
    pub(crate) ws: watch::WsBuffers,
    session: watch::SessionMemory,
    tcp_rx: [u8; TCP_BUFFER],
    tcp_tx: [u8; TCP_BUFFER],
    #[cfg(feature = "tls")]
    pub(crate) tls: crate::tls::Buffers,
}

impl Resources {
    /// Zeroed buffers.
    pub const fn new() -> Self {
        Resources {
            ws: watch::WsBuffers::new(),
            session: watch::SessionMemory::new(),
            tcp_rx: [0; TCP_BUFFER],
            tcp_tx: [0; TCP_BUFFER],
            #[cfg(feature = "tls")]
            tls: crate::tls::Buffers::new(),
        }
    }
}

impl Default for Resources {
    fn default() -> Self {
        Self::new()
    }
}

/// What a connection ended with.
pub(crate) enum Ended {
    /// It got online before failing: retry soon.
    WasOnline,
    /// It never got online.
    Failed,
    /// The server kicked the session (another login took it over): do
    /// not reconnect, which would kick the other login back.
    #[cfg_attr(feature = "cfms", allow(dead_code))]
    Kicked,
    /// The server closed the CFMS protocol-13 probe (a 3–5 server): the
    /// session now speaks text; reconnect at once, no backoff.
    #[cfg_attr(not(feature = "cfms"), allow(dead_code))]
    Probed,
}

/// Run the panel forever on `stack`, with `rng` (a CSPRNG) for the login.
pub async fn run<R: Entropy>(
    stack: Stack<'_>,
    rng: R,
    res: &'static mut Resources,
    panel: &mut impl Panel,
) -> ! {
    let mut snap = Snapshot {
        server: watch::SERVER,
        ..Snapshot::default()
    };
    let Ok(url) = Url::parse(settings::URL) else {
        loop {
            panel.note("NASLINK_URL is not a ws:// or wss:// URL");
            Timer::after_secs(60).await;
        }
    };
    if url.secure
        && let Err(why) = check_tls(panel)
    {
        loop {
            panel.note(why);
            Timer::after_secs(60).await;
        }
    }
    let Resources {
        ws,
        session,
        tcp_rx,
        tcp_tx,
        #[cfg(feature = "tls")]
        tls,
    } = res;
    let mut session = watch::session(session);
    let mut net = Net {
        ws,
        tcp_rx,
        tcp_tx,
        #[cfg(feature = "tls")]
        tls,
    };
    let mut rng = rng;
    let mut attempts = Attempts::new();
    loop {
        stack.wait_config_up().await;
        snap.link = Some(Link::Connecting);
        panel.show(&render(&snap));
        match connect(
            stack,
            &url,
            &mut session,
            &mut rng,
            &mut net,
            &mut snap,
            panel,
        )
        .await
        {
            Ended::WasOnline => attempts.logged_in(),
            Ended::Probed => continue,
            Ended::Failed => {}
            Ended::Kicked => loop {
                panel.show(&render(&snap));
                panel.note("kicked: not reconnecting");
                Timer::after_secs(3600).await;
            },
        }
        let wait = BACKOFF.delay(attempts.failed() - 1, &mut rng);
        if !matches!(snap.link, Some(Link::LoginFailed | Link::TokenRefused)) {
            snap.link = Some(Link::Offline {
                retry_in_s: (wait.total_millis() / 1000) as u32,
            });
        }
        panel.show(&render(&snap));
        Timer::after(Duration::from_millis(wait.total_millis())).await;
    }
}

/// The connection's share of [`Resources`].
struct Net {
    ws: &'static mut watch::WsBuffers,
    tcp_rx: &'static mut [u8; TCP_BUFFER],
    tcp_tx: &'static mut [u8; TCP_BUFFER],
    #[cfg(feature = "tls")]
    tls: &'static mut crate::tls::Buffers,
}

async fn connect<R: Entropy>(
    stack: Stack<'_>,
    url: &Url<'_>,
    session: &mut watch::Session,
    rng: &mut R,
    res: &mut Net,
    snap: &mut Snapshot,
    panel: &mut impl Panel,
) -> Ended {
    let mut socket = match open_tcp(
        stack,
        url.host,
        url.port,
        &mut res.tcp_rx[..],
        &mut res.tcp_tx[..],
        TCP_TIMEOUT,
    )
    .await
    {
        Ok(socket) => socket,
        Err(_) => {
            panel.note("tcp connect failed");
            return Ended::Failed;
        }
    };
    #[cfg(feature = "tls")]
    let ended = if url.secure {
        crate::tls::serve(&mut socket, url, session, rng, res.ws, res.tls, snap, panel).await
    } else {
        watch::serve(&mut socket, url, session, rng, res.ws, snap, panel).await
    };
    // `run` refused wss:// at startup.
    #[cfg(not(feature = "tls"))]
    let ended = watch::serve(&mut socket, url, session, rng, res.ws, snap, panel).await;
    // Close before dropping, or the peer waits for a retransmit timeout.
    socket.close();
    let _ = embassy_time::with_timeout(Duration::from_secs(1), socket.flush()).await;
    socket.abort();
    ended
}

/// Whether this build can open the `wss://` URL safely (said once, at
/// startup; a refusal is repeated every minute).
fn check_tls(panel: &mut impl Panel) -> Result<(), &'static str> {
    #[cfg(feature = "tls")]
    return crate::tls::check(panel);
    #[cfg(not(feature = "tls"))]
    {
        let _ = panel;
        Err("wss:// needs the `tls` feature")
    }
}

pub(crate) fn why<E>(e: &Error<E>) -> &'static str {
    match e {
        Error::Closed(_) => "connection closed",
        Error::ConnectionDead { .. } => "heartbeat lost",
        Error::Io(_) | Error::WriteZero => "transport failed",
        _ => "connection failed",
    }
}
