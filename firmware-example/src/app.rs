//! The connection loop both builds run.
//!
//! ```text
//! ┌─► Connecting: DNS + TCP + WebSocket ──fail──► Offline(backoff) ──┐
//! │        │ open                                                   │
//! │        ▼                                                        │
//! │   LoggingIn ──LoggedIn──► Online: every POLL_SECS ask host name, │
//! │        │ refused             uptime, resmon.gen, calcSpace       │
//! │        ▼                        │ error / close / dead heartbeat │
//! │   LoginFailed ──────────────────┴──────────────► Offline ────────┘
//! ```
//!
//! The backoff doubles from 1 s to 30 s and resets once a connection gets
//! online. The session survives reconnects, so the next login uses the
//! token the last one earned.

use core::cell::RefCell;

use embassy_net::Stack;
use embassy_time::{Duration, Timer};
use embedded_io_async::{Read, Write};
use naslink_core::fnos::request::RESMON_GEN_ITEMS;
use naslink_core::fnos::session::TRANSMIT_CAPACITY;
use naslink_core::fnos::{self, Config, Event, Reply, Reqid, Request, Session};
use naslink_core::random::Entropy;
use naslink_core::time::Duration as CoreDuration;
use naslink_core::ws::Url;
use naslink_embassy::fnos::{Buffers, Connection, Error};
use naslink_embassy::net::open_tcp;
use naslink_embassy::time::now;

use crate::panel::{Line, Link, ROWS, Snapshot, render};
use crate::settings;

/// Requests in flight: the four status queries plus room for a slow reply
/// from the previous round.
pub const PENDING: usize = 8;
/// WebSocket receive buffer: the largest reply asked for (the RSA key answer
/// and the login answer are about 600 bytes) with room to spare.
pub const WS_RX: usize = 2048;
/// WebSocket transmit buffer: one login envelope and its frame header.
pub const WS_TX: usize = TRANSMIT_CAPACITY + 16;
/// Each TCP socket buffer: a reply or a login envelope in at most two
/// segments; smaller than the WebSocket buffers because TCP drains into them.
pub const TCP_BUFFER: usize = 1536;

const BACKOFF_MIN: Duration = Duration::from_secs(1);
const BACKOFF_MAX: Duration = Duration::from_secs(30);
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
    pub(crate) ws: Buffers<WS_RX, WS_TX>,
    tcp_rx: [u8; TCP_BUFFER],
    tcp_tx: [u8; TCP_BUFFER],
    #[cfg(feature = "tls")]
    pub(crate) tls: crate::tls::Buffers,
}

impl Resources {
    /// Zeroed buffers.
    pub const fn new() -> Self {
        Resources {
            ws: Buffers::new(),
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

/// A status query in flight.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Query {
    HostName,
    Uptime,
    Resmon,
    Space,
}

/// What a connection ended with.
pub(crate) enum Ended {
    /// It got online before failing: retry soon.
    WasOnline,
    /// It never got online.
    Failed,
}

/// Run the panel forever on `stack`, with `rng` (a CSPRNG) for the login.
pub async fn run<R: Entropy>(
    stack: Stack<'_>,
    rng: R,
    res: &mut Resources,
    panel: &mut impl Panel,
) -> ! {
    let mut snap = Snapshot::default();
    let Ok(url) = Url::parse(settings::URL) else {
        loop {
            panel.note("NASLINK_URL is not a ws:// or wss:// URL");
            Timer::after_secs(60).await;
        }
    };
    let mut config = Config::new(settings::USER, settings::PASSWORD);
    config.device.device_name = "naslink-panel";
    config.request_timeout = CoreDuration::from_secs(10);
    let mut session: Session<'static, PENDING> = Session::new(config);
    let rng = RefCell::new(rng);
    let mut backoff = BACKOFF_MIN;
    loop {
        stack.wait_config_up().await;
        snap.link = Some(Link::Connecting);
        panel.show(&render(&snap));
        match connect(stack, &url, &mut session, &rng, res, &mut snap, panel).await {
            Ended::WasOnline => backoff = BACKOFF_MIN,
            Ended::Failed => {}
        }
        if snap.link != Some(Link::LoginFailed) {
            snap.link = Some(Link::Offline {
                retry_in_s: backoff.as_secs() as u32,
            });
        }
        panel.show(&render(&snap));
        Timer::after(backoff).await;
        backoff = (backoff * 2).min(BACKOFF_MAX);
    }
}

async fn connect<R: Entropy>(
    stack: Stack<'_>,
    url: &Url<'_>,
    session: &mut Session<'static, PENDING>,
    rng: &RefCell<R>,
    res: &mut Resources,
    snap: &mut Snapshot,
    panel: &mut impl Panel,
) -> Ended {
    let mut socket = match open_tcp(
        stack,
        url.host,
        url.port,
        &mut res.tcp_rx,
        &mut res.tcp_tx,
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
        crate::tls::serve(
            &mut socket,
            url,
            session,
            rng,
            &mut res.ws,
            &mut res.tls,
            snap,
            panel,
        )
        .await
    } else {
        serve(&mut socket, url, session, rng, &mut res.ws, snap, panel).await
    };
    #[cfg(not(feature = "tls"))]
    let ended = if url.secure {
        panel.note("wss:// needs the `tls` feature");
        Ended::Failed
    } else {
        serve(&mut socket, url, session, rng, &mut res.ws, snap, panel).await
    };
    // Close before dropping, or the peer waits for a retransmit timeout.
    socket.close();
    let _ = embassy_time::with_timeout(Duration::from_secs(1), socket.flush()).await;
    socket.abort();
    ended
}

/// One WebSocket connection over `io`, until it fails.
pub(crate) async fn serve<T: Read + Write, R: Entropy>(
    io: T,
    url: &Url<'_>,
    session: &mut Session<'static, PENDING>,
    rng: &RefCell<R>,
    buffers: &mut Buffers<WS_RX, WS_TX>,
    snap: &mut Snapshot,
    panel: &mut impl Panel,
) -> Ended {
    let mut conn = match Connection::open(io, url, session, rng, buffers).await {
        Ok(conn) => conn,
        Err(_) => {
            panel.note("websocket handshake failed");
            return Ended::Failed;
        }
    };
    snap.connections = snap.connections.saturating_add(1);
    snap.link = Some(Link::LoggingIn);
    panel.show(&render(snap));
    let mut queries: [Option<(Reqid, Query)>; 4] = [None; 4];
    let mut was_online = false;
    let mut next_poll = now();
    loop {
        if conn.session().state() == fnos::State::Ready && now() >= next_poll {
            next_poll = now() + CoreDuration::from_secs(settings::POLL_SECS);
            if let Err(e) = ask_status(&mut conn, &mut queries).await {
                panel.note(why(&e));
                break;
            }
        }
        let until = (conn.session().state() == fnos::State::Ready).then_some(next_poll);
        let step = conn
            .next_event_until(until, |event| on_event(event, &mut queries, snap))
            .await;
        match step {
            Ok(Some(Step::Redraw)) => panel.show(&render(snap)),
            Ok(Some(Step::LoggedIn)) => {
                was_online = true;
                panel.note("logged in");
                panel.show(&render(snap));
            }
            Ok(Some(Step::GiveUp)) => {
                panel.note("login failed");
                snap.link = Some(Link::LoginFailed);
                break;
            }
            Ok(Some(Step::Nothing) | None) => {}
            Err(e) => {
                panel.note(why(&e));
                break;
            }
        }
    }
    conn.close().await;
    if was_online {
        Ended::WasOnline
    } else {
        Ended::Failed
    }
}

fn why<E>(e: &Error<E>) -> &'static str {
    match e {
        Error::Closed(_) => "connection closed",
        Error::ConnectionDead { .. } => "heartbeat lost",
        Error::Io(_) | Error::WriteZero => "transport failed",
        _ => "connection failed",
    }
}

/// Send the four status queries (skipping any whose last one is unanswered).
async fn ask_status<T: Read + Write, R: Entropy>(
    conn: &mut Connection<'_, 'static, T, R, PENDING>,
    queries: &mut [Option<(Reqid, Query)>; 4],
) -> Result<(), Error<T::Error>> {
    let wanted = [
        (Query::HostName, Request::get_host_name()),
        (Query::Uptime, Request::get_uptime()),
        (Query::Resmon, Request::resmon_gen(&RESMON_GEN_ITEMS)),
        (Query::Space, Request::calc_space()),
    ];
    for (slot, (query, request)) in queries.iter_mut().zip(wanted) {
        if slot.is_none() {
            let reqid = conn.send(&request).await?;
            *slot = Some((reqid, query));
        }
    }
    Ok(())
}

enum Step {
    Redraw,
    LoggedIn,
    GiveUp,
    Nothing,
}

fn on_event(
    event: Event<'_>,
    queries: &mut [Option<(Reqid, Query)>; 4],
    snap: &mut Snapshot,
) -> Step {
    match event {
        Event::LoggedIn { .. } => {
            snap.link = Some(Link::Online);
            Step::LoggedIn
        }
        // A panel has no keypad for a two-factor code.
        Event::LoginFailed(_) | Event::TwoFactorRequired | Event::TwoFactorRejected(_) => {
            Step::GiveUp
        }
        Event::Reply(reply) => match take_query(queries, reply.reqid()) {
            Some(query) => {
                read_reply(query, &reply, snap);
                Step::Redraw
            }
            None => Step::Nothing,
        },
        Event::RequestTimedOut(reqid) | Event::RequestAborted(reqid) => {
            take_query(queries, Some(reqid));
            Step::Nothing
        }
        _ => Step::Nothing,
    }
}

fn take_query(queries: &mut [Option<(Reqid, Query)>; 4], reqid: Option<Reqid>) -> Option<Query> {
    let reqid = reqid?;
    let slot = queries
        .iter_mut()
        .find(|slot| slot.is_some_and(|(r, _)| r == reqid))?;
    slot.take().map(|(_, query)| query)
}

/// Copy the figures of one reply into the snapshot; missing or malformed
/// fields leave the old value (shown as `--` until a first one arrives).
fn read_reply(query: Query, reply: &Reply<'_>, snap: &mut Snapshot) {
    if reply.status() != fnos::Status::Success {
        return;
    }
    let data = reply.data();
    let field = |name: &str| data.and_then(|d| d.get(name));
    match query {
        Query::HostName => {
            if let Some(Ok(name)) = field("hostName")
                .and_then(|v| v.as_str())
                .map(|s| s.decode_to_string())
            {
                snap.host_name = name;
            }
        }
        Query::Uptime => {
            if let Some(up) = field("uptime").and_then(|v| v.as_u64()) {
                snap.uptime_s = Some(up);
            }
        }
        Query::Resmon => {
            let item = field("item");
            let get = |name: &str| item.and_then(|i| i.get(name));
            snap.cpu_percent = get("cpuBusy").and_then(|v| v.as_u64()).or(snap.cpu_percent);
            snap.mem_percent = get("memPercent")
                .and_then(|v| v.as_u64())
                .or(snap.mem_percent);
            let net = get("netSpeed");
            let rate = |name: &str| net.and_then(|n| n.get(name)).and_then(|v| v.as_u64());
            if let (Some(rx), Some(tx)) = (rate("receive"), rate("transmit")) {
                snap.net = Some((rx, tx));
            }
        }
        Query::Space => {
            let number = |name: &str| reply.get(name).and_then(|v| v.as_u64());
            if let (Some(used), Some(total)) = (number("used"), number("total")) {
                snap.storage = Some((used, total));
            }
        }
    }
}
