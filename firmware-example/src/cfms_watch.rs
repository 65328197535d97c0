//! The CFMS panel: on every connection `server_info` (name, version,
//! lockdown), `login`, then `register_listener` so lockdown changes arrive
//! as pushes; `server_info` again every [`POLL_SECS`](settings::POLL_SECS).

use core::cell::RefCell;

use embedded_io_async::{Read, Write};
use heapless::String;
use naslink_core::cfms::session::{self, Event};
use naslink_core::cfms::{JsonStr, Seq};
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
/// WebSocket transmit buffer: the largest request (login) and its header.
pub const WS_TX: usize = 1024;
/// Where the session writes each request.
pub const MESSAGE: usize = 1024;
/// The session's own copy of each answer (it parses answers in place).
pub const SESSION_RX: usize = 2048;

/// The connection's buffers.
pub type WsBuffers = Buffers<WS_RX, WS_TX, MESSAGE>;
/// The session, kept across connections.
pub type Session = session::Session<'static, PENDING>;

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
    if let Some(text) = from.and_then(|s| s.as_str()) {
        to.clear();
        for c in text.chars() {
            if to.push(c).is_err() {
                break;
            }
        }
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
    // The CFMS driver still shares its generator through a cell.
    let rng = RefCell::new(rng);
    let mut conn = match Connection::open(io, url, session, &rng, buffers).await {
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
    let mut login_sent = false;
    let mut was_online = false;
    let mut next_poll = now();
    loop {
        if info.is_none() && now() >= next_poll {
            next_poll = now() + CoreDuration::from_secs(settings::POLL_SECS);
            match conn.request(|s, t, buf| s.server_info(t, buf)).await {
                Ok(seq) => info = Some(seq),
                Err(e) => {
                    panel.note(why(&e));
                    break;
                }
            }
        }
        let event = match conn.next_event_until(next_poll).await {
            Ok(Some(event)) => event,
            Ok(None) => continue,
            Err(e) => {
                panel.note(why(&e));
                break;
            }
        };
        let sent = match event {
            Event::ServerInfo { seq, lockdown, .. } => {
                if seq.is_some() && seq == info {
                    info = None;
                }
                snap.lockdown = Some(lockdown);
                if let Some(answer) = conn.session().response() {
                    let data = answer.data();
                    copy(
                        data.get("server_name").and_then(|v| v.as_str()),
                        &mut snap.host_name,
                    );
                    copy(
                        data.get("version").and_then(|v| v.as_str()),
                        &mut snap.version,
                    );
                }
                panel.show(&render(snap));
                if login_sent {
                    Ok(())
                } else {
                    login_sent = true;
                    conn.request(|s, t, buf| s.login(t, settings::USER, settings::PASSWORD, buf))
                        .await
                        .map(drop)
                }
            }
            Event::LoggedIn { .. } => {
                was_online = true;
                snap.link = Some(Link::Online);
                panel.note("logged in");
                panel.show(&render(snap));
                conn.request(|s, t, buf| s.register_listener(t, buf))
                    .await
                    .map(drop)
            }
            Event::Lockdown { on } => {
                snap.lockdown = Some(on);
                panel.show(&render(snap));
                Ok(())
            }
            // A panel has no keypad for a two-factor code.
            Event::LoginFailed(_)
            | Event::TwoFactorRequired { .. }
            | Event::ProtocolUnsupported { .. } => {
                panel.note("login failed");
                snap.link = Some(Link::LoginFailed);
                break;
            }
            Event::RequestFailed { seq, .. } => {
                if info == Some(seq) {
                    info = None;
                }
                Ok(())
            }
            _ => Ok(()),
        };
        if let Err(e) = sent {
            panel.note(why(&e));
            break;
        }
    }
    conn.close().await;
    if was_online {
        Ended::WasOnline
    } else {
        Ended::Failed
    }
}
