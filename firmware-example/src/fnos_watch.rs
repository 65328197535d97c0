//! The fnOS panel: log in, then every [`POLL_SECS`](settings::POLL_SECS)
//! ask for the host name, `appcgi.resmon.gen` (CPU, memory),
//! `stor.calcSpace`, and what the health verdict needs:
//! `appcgi.resmon.cpu` (temperature), `appcgi.resmon.disk` (disks and
//! their temperatures), `stor.diskHealth` (SMART, for the disks last
//! seen), `stor.listStor` (pools, one frame each), the UPS and
//! `notify.unreadTotal`; copy the answers into the snapshot.
//!
//! Every answer must fit [`WS_RX`]; a part refused (errno 4352 for a
//! non-administrator) or failed becomes unknown and the rest goes on.
//! A `kicked` push ends the connection for good: the panel says so and
//! [`app::run`](crate::app::run) stops reconnecting.

use embedded_io_async::{Read, Write};
use heapless::Vec;
use naslink_core::fnos::panel::{self as views, DiskHealthList, Pools, ResmonDisks};
use naslink_core::fnos::request::RESMON_GEN_ITEMS;
use naslink_core::fnos::session::TRANSMIT_CAPACITY;
use naslink_core::fnos::{
    self, Config, DeviceToken, Event, LoginFailure, Reply, Reqid, Request, health,
};
use naslink_core::json::JsonStr;
use naslink_core::random::Entropy;
use naslink_core::time::Duration as CoreDuration;
use naslink_core::ws::Url;
use naslink_embassy::fnos::{Buffers, Connection, Error};
use naslink_embassy::time::now;

use crate::app::{Ended, PENDING, Panel, why};
use crate::panel::{
    DiskFigures, Link, MAX_DISKS, MAX_POOLS, Name, PoolFigures, Server, Snapshot, render,
};
use crate::settings;

/// WebSocket receive buffer: the largest reply asked for (the RSA key answer
/// and the login answer are about 600 bytes, a `stor.listStor` frame with
/// one pool about 700, `appcgi.resmon.cpu` and the UPS about 500) with
/// room to spare.
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
    Resmon,
    Space,
    Cpu,
    Disks,
    DiskHealth,
    Pools,
    Ups,
    Unread,
}

/// Queries per round.
const QUERIES: usize = 9;

/// The queries in flight.
type Queries = [Option<(Reqid, Query)>; QUERIES];

/// Pools gathered from the frames of `stor.listStor` until its last one.
type PoolFrames = Vec<PoolFigures, MAX_POOLS>;

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
    let mut count = heapless::String::<24>::new();
    let _ = core::fmt::write(&mut count, format_args!("connection {}", snap.connections));
    panel.note(&count);
    snap.link = Some(Link::LoggingIn);
    panel.show(&render(snap));
    let mut queries: Queries = [None; QUERIES];
    let mut pool_frames = PoolFrames::new();
    let mut was_online = false;
    let mut next_poll = now();
    loop {
        if conn.session().state() == fnos::State::Ready && now() >= next_poll {
            next_poll = now() + CoreDuration::from_secs(settings::POLL_SECS);
            if let Err(e) = ask_status(&mut conn, &mut queries, &mut pool_frames, snap).await {
                panel.note(why(&e));
                break;
            }
        }
        let until = (conn.session().state() == fnos::State::Ready).then_some(next_poll);
        let step = conn
            .next_event_until(until, |event| {
                on_event(event, &mut queries, &mut pool_frames, snap)
            })
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
            Ok(Some(Step::Kicked)) => panel.note("kicked: another login took this session over"),
            Ok(Some(Step::Nothing) | None) => {}
            Err(Error::Kicked) => {
                snap.link = Some(Link::Kicked);
                break;
            }
            Err(e) => {
                panel.note(why(&e));
                break;
            }
        }
    }
    conn.close().await;
    if snap.link == Some(Link::Kicked) {
        Ended::Kicked
    } else if was_online {
        Ended::WasOnline
    } else {
        Ended::Failed
    }
}

/// Send the status queries (skipping any whose last one is unanswered).
async fn ask_status<T: Read + Write, R: Entropy>(
    conn: &mut Connection<'_, 'static, T, R, PENDING>,
    queries: &mut Queries,
    pool_frames: &mut PoolFrames,
    snap: &Snapshot,
) -> Result<(), Error<T::Error>> {
    // SMART for the disks the last `appcgi.resmon.disk` named.
    let mut names: Vec<&str, MAX_DISKS> = Vec::new();
    for d in snap.disks.iter().flatten() {
        let _ = names.push(&d.name);
    }
    let wanted = [
        (Query::HostName, Request::get_host_name()),
        (Query::Resmon, Request::resmon_gen(&RESMON_GEN_ITEMS)),
        (Query::Space, Request::calc_space()),
        (Query::Cpu, Request::resmon_cpu()),
        (Query::Disks, Request::resmon_disk()),
        (Query::DiskHealth, Request::disk_health(&names, false)),
        (Query::Pools, Request::list_stor()),
        (Query::Ups, Request::ups_status()),
        (Query::Unread, Request::unread_total()),
    ];
    for (slot, (query, request)) in queries.iter_mut().zip(wanted) {
        if slot.is_none() && !(query == Query::DiskHealth && names.is_empty()) {
            let reqid = conn.send(&request).await?;
            *slot = Some((reqid, query));
            if query == Query::Pools {
                pool_frames.clear();
            }
        }
    }
    Ok(())
}

enum Step {
    Redraw,
    LoggedIn,
    GiveUp,
    TokenRefused,
    Kicked,
    Nothing,
}

fn on_event(
    event: Event<'_>,
    queries: &mut Queries,
    pool_frames: &mut PoolFrames,
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
        Event::Reply(reply) => match take_query(queries, reply.reqid(), reply.is_final()) {
            Some(query) => {
                read_reply(query, &reply, pool_frames, snap);
                if reply.is_final() {
                    round_done(queries, snap);
                    Step::Redraw
                } else {
                    Step::Nothing
                }
            }
            None => Step::Nothing,
        },
        Event::RequestTimedOut(reqid) | Event::RequestAborted(reqid) => {
            take_query(queries, Some(reqid), true);
            round_done(queries, snap);
            Step::Nothing
        }
        Event::Push(fnos::Push::Kicked) => Step::Kicked,
        _ => Step::Nothing,
    }
}

/// Once no query is in flight, every health part has answered (or failed)
/// at least once: the verdict may show.
fn round_done(queries: &Queries, snap: &mut Snapshot) {
    if queries.iter().all(Option::is_none) {
        snap.health_ready = true;
    }
}

/// The query `reqid` answers; its slot is freed by the final frame.
fn take_query(queries: &mut Queries, reqid: Option<Reqid>, last: bool) -> Option<Query> {
    let reqid = reqid?;
    let slot = queries
        .iter_mut()
        .find(|slot| slot.is_some_and(|(r, _)| r == reqid))?;
    let (_, query) = (*slot)?;
    if last {
        *slot = None;
    }
    Some(query)
}

/// A name cut to [`Name`]'s capacity.
fn name(s: &str) -> Name {
    let mut n = Name::new();
    for c in s.chars() {
        if n.push(c).is_err() {
            break;
        }
    }
    n
}

/// A JSON string as a [`Name`] (escapes decoded, cut to fit).
fn json_name(s: JsonStr<'_>) -> Name {
    let mut n = Name::new();
    for c in s.chars() {
        if n.push(c).is_err() {
            break;
        }
    }
    n
}

/// Copy the figures of one reply into the snapshot; missing or malformed
/// fields leave the old value (shown as `--` until a first one arrives).
/// A refused health part (errno 4352, or any failure) becomes unknown.
fn read_reply(query: Query, reply: &Reply<'_>, pool_frames: &mut PoolFrames, snap: &mut Snapshot) {
    if query == Query::Pools {
        read_pools(reply, pool_frames, snap);
        return;
    }
    if reply.status() != fnos::Status::Success {
        match query {
            Query::Cpu => snap.cpu_temperature = None,
            Query::Disks => snap.disks = None,
            Query::Ups => snap.ups = None,
            Query::Unread => snap.unread_warnings = None,
            _ => {}
        }
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
        Query::Resmon => {
            let item = field("item");
            let get = |name: &str| item.and_then(|i| i.get(name));
            snap.cpu_percent = get("cpuBusy").and_then(|v| v.as_u64()).or(snap.cpu_percent);
            snap.mem_percent = get("memPercent")
                .and_then(|v| v.as_u64())
                .or(snap.mem_percent);
        }
        Query::Space => {
            let number = |name: &str| reply.get(name).and_then(|v| v.as_u64());
            if let (Some(used), Some(total)) = (number("used"), number("total")) {
                snap.storage = Some((used, total));
            }
        }
        Query::Cpu => snap.cpu_temperature = views::Cpu::from_reply(reply).temperature(),
        Query::Disks => {
            let mut disks = Vec::new();
            for d in ResmonDisks::from_reply(reply).iter() {
                let Some(n) = d.name().map(json_name) else {
                    continue;
                };
                // SMART comes from `stor.diskHealth`: keep the last verdict.
                let smart = snap
                    .disks
                    .iter()
                    .flatten()
                    .find(|old| old.name == n)
                    .map_or(views::SmartVerdict::Unknown, |old| old.smart);
                let disk = DiskFigures {
                    name: n,
                    temperature: d.temperature(),
                    smart,
                };
                if disks.push(disk).is_err() {
                    break;
                }
            }
            snap.disks = Some(disks);
        }
        Query::DiskHealth => {
            let Some(disks) = snap.disks.as_mut() else {
                return;
            };
            for h in DiskHealthList::from_reply(reply).iter() {
                let Some(n) = h.disk() else { continue };
                if let Some(d) = disks.iter_mut().find(|d| n.eq_str(&d.name)) {
                    d.smart = h.verdict();
                    d.temperature = d.temperature.or(h.temperature());
                }
            }
        }
        Query::Ups => {
            let ups = views::Ups::from_reply(reply);
            snap.ups = ups.on_battery().map(|on_battery| health::Ups {
                on_battery,
                battery_percent: ups.battery_percent(),
            });
        }
        Query::Unread => snap.unread_warnings = views::unread_total(reply),
        Query::Pools => {}
    }
}

/// One frame of `stor.listStor`: its pools join the round's; the last
/// frame publishes them (or, refused, makes the pools unknown).
fn read_pools(reply: &Reply<'_>, frames: &mut PoolFrames, snap: &mut Snapshot) {
    if let fnos::Status::Failure(_) = reply.status() {
        snap.pools = None;
        return;
    }
    for p in Pools::from_reply(reply).iter() {
        let mut n = p
            .mountpoint()
            .and_then(|m| m.as_unescaped())
            .map(|m| name(m.trim_start_matches('/')))
            .unwrap_or_default();
        if n.is_empty() {
            n = p.name().map(json_name).unwrap_or_default();
        }
        let pool = PoolFigures {
            name: n,
            state: p.state(),
            size: p.size(),
            free: p.free(),
        };
        // A pool listed in two frames counts once.
        if frames.iter().all(|f| f.name != pool.name) && frames.push(pool).is_err() {
            break;
        }
    }
    if reply.is_final() {
        snap.pools = Some(core::mem::take(frames));
    }
}
