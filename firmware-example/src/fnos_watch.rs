//! The fnOS panel: log in, then every [`POLL_SECS`](settings::POLL_SECS)
//! ask for the host name, uptime, `appcgi.resmon.gen` (CPU, memory,
//! network) and `stor.calcSpace`, and copy the answers into the snapshot.

use embedded_io_async::{Read, Write};
use naslink_core::fnos::request::RESMON_GEN_ITEMS;
use naslink_core::fnos::session::TRANSMIT_CAPACITY;
use naslink_core::fnos::{self, Config, DeviceToken, Event, LoginFailure, Reply, Reqid, Request};
use naslink_core::random::Entropy;
use naslink_core::time::Duration as CoreDuration;
use naslink_core::ws::Url;
use naslink_embassy::fnos::{Buffers, Connection, Error};
use naslink_embassy::time::now;

use crate::app::{Ended, PENDING, Panel, why};
use crate::panel::{Link, Server, Snapshot, render};
use crate::settings;

/// WebSocket receive buffer: the largest reply asked for (the RSA key answer
/// and the login answer are about 600 bytes) with room to spare.
pub const WS_RX: usize = 2048;
/// WebSocket transmit buffer: one login envelope and its frame header.
pub const WS_TX: usize = TRANSMIT_CAPACITY + 16;

/// The connection's buffers.
pub type WsBuffers = Buffers<WS_RX, WS_TX>;
/// The session, kept across connections (its tokens log in again).
pub type Session = fnos::Session<'static, PENDING>;
/// Room for the device token: one slot when the build has a token, none
/// (no RAM) when it has a password.
const TOKEN_SLOTS: usize = if settings::TOKEN.is_some() { 1 } else { 0 };

/// What the session borrows from [`Resources`](crate::app::Resources): the
/// device token its user name and `did` come from, when the build has one.
pub struct SessionMemory {
    token: [Option<DeviceToken>; TOKEN_SLOTS],
}

impl SessionMemory {
    /// No token read yet.
    pub const fn new() -> Self {
        SessionMemory {
            token: [const { None }; TOKEN_SLOTS],
        }
    }
}

impl Default for SessionMemory {
    fn default() -> Self {
        Self::new()
    }
}

/// A session for the build-time user, or for the build's device token
/// (then no password is ever sent; see [`settings::TOKEN`]).
pub fn session(memory: &'static mut SessionMemory) -> Session {
    let slot = memory.token.first_mut();
    let token = settings::TOKEN
        .zip(slot)
        .map(|(text, slot)| match DeviceToken::parse(text) {
            Ok(token) => &*slot.insert(token),
            // A build setting, not network input: stop at start-up, saying why.
            Err(e) => panic!("NASLINK_TOKEN: {}", e),
        });
    let mut config = match token {
        Some(token) => Config::from_device_token(token),
        None => Config::new(settings::USER, settings::PASSWORD),
    };
    config.device.device_name = "naslink-panel";
    config.request_timeout = CoreDuration::from_secs(10);
    match token {
        Some(token) => Session::from_device_token(config, token),
        None => Session::new(config),
    }
}

/// The panel kind this module fills in.
pub const SERVER: Server = Server::Fnos;

/// A status query in flight.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Query {
    HostName,
    Uptime,
    Resmon,
    Space,
}

/// One WebSocket connection over `io`, until it fails.
pub(crate) async fn serve<T: Read + Write, R: Entropy>(
    io: T,
    url: &Url<'_>,
    session: &mut Session,
    rng: &mut R,
    buffers: &mut WsBuffers,
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
            Ok(Some(Step::TokenRefused)) => {
                panel.note("the NAS refused the device token (revoked or expired)");
                snap.link = Some(Link::TokenRefused);
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
    TokenRefused,
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
        // A refused token is wiped, so later connections have none left.
        Event::LoginFailed(
            LoginFailure::DeviceTokenRefused { .. } | LoginFailure::NoCredentials,
        ) if settings::TOKEN.is_some() => Step::TokenRefused,
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
