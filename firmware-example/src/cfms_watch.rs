//! The CFMS panel: on every connection the session itself sends
//! `server_info` (name, version, lockdown), `login`, then
//! `register_listener` so lockdown changes arrive as pushes; the panel asks
//! `server_info` again every [`POLL_SECS`](settings::POLL_SECS).
//!
//! Unconfigured (no `NASLINK_CFMS_PROTOCOL`), the first connection opens
//! with the protocol-13 probe: a 13 server answers it (no
//! `register_listener` there; every connection gets the
//! `{"event":"lockdown"}` pushes), a 3–5 server closes it and the panel
//! reconnects at once speaking text with the same session.

use embedded_io_async::{Read, Write};
use heapless::String;
use naslink_core::cfms::p13::Negotiated;
use naslink_core::cfms::session;
use naslink_core::cfms::{
    ConnectionEvent as Event, Credentials, JsonStr, MAX_PASSWORD, MAX_USERNAME, Seq, State, ops,
};
use naslink_core::random::Entropy;
use naslink_core::time::Duration as CoreDuration;
use naslink_core::ws::Url;
use naslink_embassy::cfms::{Buffers, Connection};
use naslink_embassy::time::now;

use crate::app::{Ended, PENDING, Panel, why};
use crate::panel::{Link, Server, Snapshot, render};
use crate::settings;

/// WebSocket receive buffer: `server_info` and login answers are a few
/// hundred bytes.
pub const WS_RX: usize = 2048;
/// WebSocket transmit buffer: requests are written straight into it; the
/// largest (login) and its header.
pub const WS_TX: usize = 1024;
/// The session's own copy of an answer that arrived in pieces.
pub const SESSION_RX: usize = 2048;

/// The connection's buffers.
pub type WsBuffers = Buffers<WS_RX, WS_TX>;
/// The session, kept across connections.
pub type Session = session::Session<'static, PENDING>;

// The account is compiled in: refuse to build one the session cannot keep.
const _: () = assert!(settings::USER.len() <= MAX_USERNAME);
const _: () = assert!(settings::PASSWORD.len() <= MAX_PASSWORD);

/// What the session borrows from [`Resources`](crate::app::Resources).
pub struct SessionMemory {
    rx: [u8; SESSION_RX],
    /// No downloads: one hash slot satisfies the session.
    hashes: [[u8; 32]; 1],
}

impl SessionMemory {
    /// Zeroed memory.
    pub const fn new() -> Self {
        SessionMemory {
            rx: [0; SESSION_RX],
            hashes: [[0; 32]; 1],
        }
    }
}

impl Default for SessionMemory {
    fn default() -> Self {
        Self::new()
    }
}

/// A session over `memory`.
pub fn session(memory: &'static mut SessionMemory) -> Session {
    let SessionMemory { rx, hashes } = memory;
    let config = session::Config {
        request_timeout: CoreDuration::from_secs(10),
        // Both lengths are checked at compile time above.
        login: Credentials::new(settings::USER, settings::PASSWORD).ok(),
        listener: true,
        // Unconfigured: probe with protocol 13; a 3–5 server closes the
        // probe and the next connection speaks text (`serve`).
        protocol_version: settings::CFMS_PROTOCOL,
        negotiate: settings::CFMS_PROTOCOL.is_none(),
        ..session::Config::default()
    };
    Session::new(
        config,
        session::Buffers {
            rx,
            chunk_hashes: hashes,
        },
    )
}

/// The panel kind this module fills in.
pub const SERVER: Server = Server::Cfms;

/// Copy what fits of a JSON string (escaped text is skipped: server names
/// and versions have none).
fn copy<const N: usize>(from: Option<JsonStr<'_>>, to: &mut String<N>) {
    if let Some(text) = from.and_then(|s| s.as_unescaped()) {
        to.clear();
        for c in text.chars() {
            if to.push(c).is_err() {
                break;
            }
        }
    }
}

/// What an event asks of the panel.
enum Step {
    /// Show the snapshot again.
    Show,
    /// The server pushed a lockdown change: say so and show it.
    Pushed(bool),
    /// The login cannot succeed on this connection (refused, a second
    /// factor the panel has no keypad for, another protocol).
    LoginFailed,
    /// Nothing.
    Nothing,
}

/// Take what `event` says into the snapshot. `info` is the panel's own
/// `server_info` in flight.
fn on_event(event: Event<'_>, snap: &mut Snapshot, info: &mut Option<Seq>) -> Step {
    match event {
        Event::ServerInfo {
            seq,
            protocol_version,
            lockdown,
            response,
        } => {
            // `seq` is `None` for the session's own opening `server_info`.
            if seq.is_some() && seq == *info {
                *info = None;
            }
            snap.lockdown = Some(lockdown);
            snap.protocol = Some(protocol_version);
            let server = ops::ServerInfo::new(&response);
            copy(server.server_name(), &mut snap.host_name);
            copy(server.version(), &mut snap.version);
            Step::Show
        }
        Event::LoggedIn { .. } | Event::ListenerRegistered { .. } => Step::Show,
        // The 3–5 binary push and the 13 `{"event":"lockdown"}` alike.
        Event::Lockdown { on } => {
            snap.lockdown = Some(on);
            Step::Pushed(on)
        }
        Event::LoginFailed(_)
        | Event::TwoFactorRequired { .. }
        | Event::ProtocolUnsupported { .. } => Step::LoginFailed,
        Event::RequestFailed { seq, .. } => {
            if *info == Some(seq) {
                *info = None;
            }
            Step::Nothing
        }
        _ => Step::Nothing,
    }
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
    // Whether this connection opens with the protocol-13 probe.
    let probing = session.negotiated().is_none() && settings::CFMS_PROTOCOL.is_none();
    let ended = run(io, url, session, rng, buffers, snap, panel).await;
    // The server closed the probe unanswered: a 3–5 server. The session now
    // speaks text; reconnect at once (this happens once per session).
    if probing && session.negotiated() == Some(Negotiated::Text) {
        panel.note("protocol 3-5 server: reconnecting speaking text");
        return Ended::Probed;
    }
    ended
}

async fn run<T: Read + Write, R: Entropy>(
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
    let mut info: Option<Seq> = None;
    let mut was_online = false;
    let mut next_poll = now() + CoreDuration::from_secs(settings::POLL_SECS);
    loop {
        if info.is_none() && now() >= next_poll {
            next_poll = now() + CoreDuration::from_secs(settings::POLL_SECS);
            if conn.session().state() == State::Ready {
                match conn.request(|s, t, buf| s.server_info(t, buf)).await {
                    Ok(seq) => info = Some(seq),
                    Err(e) => {
                        panel.note(why(&e));
                        break;
                    }
                }
            }
        }
        let step = conn
            .next_event_until(next_poll, |e| on_event(e, snap, &mut info))
            .await;
        // Online once the opening sequence is through: after a login, or
        // with the token kept from the last connection (no login then).
        if snap.link != Some(Link::Online) && conn.session().state() == State::Ready {
            was_online = true;
            snap.link = Some(Link::Online);
            panel.note("logged in");
            panel.show(&render(snap));
        }
        match step {
            Ok(Some(Step::Show)) => panel.show(&render(snap)),
            Ok(Some(Step::Pushed(on))) => {
                panel.note(if on {
                    "lockdown pushed: ON"
                } else {
                    "lockdown pushed: OFF"
                });
                panel.show(&render(snap));
            }
            Ok(Some(Step::LoginFailed)) => {
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
