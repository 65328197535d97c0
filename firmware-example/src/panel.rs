//! What the front panel shows: a pure function from a [`Snapshot`] to
//! [`ROWS`] lines of at most [`COLUMNS`] characters (a 128×64 OLED with a
//! 6×8 font, or a 20×4 character LCD showing the first rows).
//!
//! Unknown figures show as `--`, so a panel never shows stale zeros as if
//! they were real.

use core::fmt::{self, Write};

use heapless::String;

/// Characters per line.
pub const COLUMNS: usize = 21;
/// Lines on the panel.
pub const ROWS: usize = 6;
/// Longest host name kept (fnOS allows 15 characters; longer names are
/// cut at the panel width anyway).
pub const HOST_NAME_CAPACITY: usize = 32;

/// One panel line.
pub type Line = String<COLUMNS>;

/// Where the connection to the NAS is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Link {
    /// Looking up the host, opening TCP and the WebSocket.
    Connecting,
    /// Connected; key exchange and login under way.
    LoggingIn,
    /// Logged in; figures are live.
    Online,
    /// The login was refused; retrying later.
    LoginFailed,
    /// The NAS refused the build's device token (revoked or expired): the
    /// panel needs a new one.
    TokenRefused,
    /// Disconnected; the next attempt is in `retry_in_s` seconds.
    Offline {
        /// Seconds until the next attempt.
        retry_in_s: u32,
    },
}

/// Which server the panel watches.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Server {
    /// An fnOS NAS: system figures.
    #[default]
    Fnos,
    /// A CFMS server: name, version, lockdown.
    Cfms,
}

/// Longest CFMS version string kept.
pub const VERSION_CAPACITY: usize = 16;

/// Everything the panel shows, as last received.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Snapshot {
    /// Which kind of server this is.
    pub server: Server,
    /// Connection state.
    pub link: Option<Link>,
    /// Connections made since start (the first one included).
    pub connections: u32,
    /// fnOS `hostName`, or CFMS `server_name`.
    pub host_name: String<HOST_NAME_CAPACITY>,
    /// CFMS `version`.
    pub version: String<VERSION_CAPACITY>,
    /// CFMS lockdown.
    pub lockdown: Option<bool>,
    /// Uptime in seconds.
    pub uptime_s: Option<u64>,
    /// CPU busy, percent.
    pub cpu_percent: Option<u64>,
    /// Memory in use, percent.
    pub mem_percent: Option<u64>,
    /// Storage used and total, bytes.
    pub storage: Option<(u64, u64)>,
    /// Network receive and transmit rates, bytes per second.
    pub net: Option<(u64, u64)>,
}

/// A writer that keeps what fits in a line and drops the rest: a long host
/// name must not push the state off the panel, nor fail the render.
struct Clip<'l>(&'l mut Line);

impl Write for Clip<'_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        for c in s.chars() {
            if self.0.push(c).is_err() {
                break;
            }
        }
        Ok(())
    }
}

fn line(args: fmt::Arguments<'_>) -> Line {
    let mut l = Line::new();
    // Clip never fails; Display impls used here do not either.
    let _ = Clip(&mut l).write_fmt(args);
    l
}

/// A byte count with a binary prefix and one decimal below 10: `512B`,
/// `1.5K`, `23M`, `3.6T`.
struct Bytes(u64);

impl fmt::Display for Bytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const UNITS: [char; 6] = ['B', 'K', 'M', 'G', 'T', 'P'];
        let mut value = self.0;
        let mut tenths = 0;
        let mut unit = 0;
        while value >= 1024 && unit + 1 < UNITS.len() {
            tenths = (value % 1024) * 10 / 1024;
            value /= 1024;
            unit += 1;
        }
        if unit > 0 && value < 10 {
            write!(f, "{value}.{tenths}{}", UNITS[unit])
        } else {
            write!(f, "{value}{}", UNITS[unit])
        }
    }
}

/// A figure or `--`.
struct Maybe<T>(Option<T>);

impl<T: fmt::Display> fmt::Display for Maybe<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            Some(v) => v.fmt(f),
            None => f.write_str("--"),
        }
    }
}

/// Uptime as `3d 04:12` (days, hours, minutes).
struct Uptime(u64);

impl fmt::Display for Uptime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let minutes = self.0 / 60;
        let (d, h, m) = (minutes / 1440, minutes / 60 % 24, minutes % 60);
        write!(f, "{d}d {h:02}:{m:02}")
    }
}

fn link_text(link: Option<Link>) -> Line {
    match link {
        None | Some(Link::Connecting) => line(format_args!("connecting")),
        Some(Link::LoggingIn) => line(format_args!("logging in")),
        Some(Link::Online) => line(format_args!("online")),
        Some(Link::LoginFailed) => line(format_args!("login failed")),
        Some(Link::TokenRefused) => line(format_args!("token refused")),
        Some(Link::Offline { retry_in_s }) => line(format_args!("offline {retry_in_s}s")),
    }
}

/// The panel's lines for `s`. An fnOS NAS:
///
/// ```text
/// fnos-sim       online
/// up 3d 04:12
/// cpu 23%  mem 36%
/// disk 1.2T/4.5T
/// rx 8.6M/s tx 2.9M/s
/// connections 2
/// ```
///
/// A CFMS server:
///
/// ```text
/// CFMS WebSocket online
/// version 1.4.2
/// lockdown OFF
///
///
/// connections 1
/// ```
pub fn render(s: &Snapshot) -> [Line; ROWS] {
    let title = title(s);
    let live = s.link == Some(Link::Online);
    match s.server {
        Server::Fnos => fnos_lines(s, title, live),
        Server::Cfms => [
            title,
            match (live, s.version.is_empty()) {
                (true, false) => line(format_args!("version {}", s.version)),
                _ => line(format_args!("version --")),
            },
            match s.lockdown.filter(|_| live) {
                Some(true) => line(format_args!("lockdown ON")),
                Some(false) => line(format_args!("lockdown OFF")),
                None => line(format_args!("lockdown --")),
            },
            Line::new(),
            Line::new(),
            line(format_args!("connections {}", s.connections)),
        ],
    }
}

/// Name left, state right, on one line.
fn title(s: &Snapshot) -> Line {
    let state = link_text(s.link);
    let placeholder = match s.server {
        Server::Fnos => "NAS",
        Server::Cfms => "CFMS",
    };
    let name = if s.host_name.is_empty() {
        placeholder
    } else {
        &s.host_name
    };
    // The state is right-aligned; the name gets what is left.
    let room = COLUMNS.saturating_sub(state.len() + 1);
    let name = match name.char_indices().nth(room) {
        Some((cut, _)) => &name[..cut],
        None => name,
    };
    let pad = COLUMNS - name.chars().count() - state.len();
    line(format_args!("{name}{:pad$}{state}", ""))
}

fn fnos_lines(s: &Snapshot, title: Line, live: bool) -> [Line; ROWS] {
    let (up, cpu, mem) = if live {
        (s.uptime_s, s.cpu_percent, s.mem_percent)
    } else {
        (None, None, None)
    };
    [
        title,
        line(format_args!("up {}", Maybe(up.map(Uptime)))),
        line(format_args!("cpu {}%  mem {}%", Maybe(cpu), Maybe(mem))),
        match s.storage.filter(|_| live) {
            Some((used, total)) => line(format_args!("disk {}/{}", Bytes(used), Bytes(total))),
            None => line(format_args!("disk --")),
        },
        match s.net.filter(|_| live) {
            Some((rx, tx)) => line(format_args!("rx {}/s tx {}/s", Bytes(rx), Bytes(tx))),
            None => line(format_args!("rx -- tx --")),
        },
        line(format_args!("connections {}", s.connections)),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn online() -> Snapshot {
        Snapshot {
            server: Server::Fnos,
            version: String::new(),
            lockdown: None,
            link: Some(Link::Online),
            connections: 1,
            host_name: String::try_from("fnos-sim").unwrap(),
            uptime_s: Some(3 * 86_400 + 4 * 3600 + 12 * 60 + 59),
            cpu_percent: Some(23),
            mem_percent: Some(36),
            storage: Some((1_320_000_000_000, 4_920_036_184_064)),
            net: Some((9_000_000, 3_000_000)),
        }
    }

    fn texts(lines: &[Line; ROWS]) -> [&str; ROWS] {
        lines.each_ref().map(|l| l.as_str())
    }

    #[test]
    fn online_panel_shows_every_figure() {
        assert_eq!(
            texts(&render(&online())),
            [
                "fnos-sim       online",
                "up 3d 04:12",
                "cpu 23%  mem 36%",
                "disk 1.2T/4.4T",
                "rx 8.5M/s tx 2.8M/s",
                "connections 1",
            ]
        );
    }

    #[test]
    fn figures_are_hidden_while_not_online() {
        let mut s = online();
        s.link = Some(Link::Offline { retry_in_s: 4 });
        let lines = render(&s);
        assert_eq!(lines[0].as_str(), "fnos-sim   offline 4s");
        assert_eq!(
            texts(&lines)[1..5],
            ["up --", "cpu --%  mem --%", "disk --", "rx -- tx --"]
        );
    }

    #[test]
    fn long_host_name_is_cut_before_the_state() {
        let mut s = online();
        s.host_name = String::try_from("a-very-long-nas-name-indeed").unwrap();
        assert_eq!(render(&s)[0].as_str(), "a-very-long-na online");
    }

    #[test]
    fn no_line_is_wider_than_the_panel() {
        let mut s = online();
        s.uptime_s = Some(u64::MAX);
        s.storage = Some((u64::MAX, u64::MAX));
        s.net = Some((u64::MAX, u64::MAX));
        s.connections = u32::MAX;
        for l in render(&s) {
            assert!(l.chars().count() <= COLUMNS, "{l:?}");
        }
    }

    #[test]
    fn before_first_connection_the_name_is_a_placeholder() {
        let lines = render(&Snapshot::default());
        assert_eq!(lines[0].as_str(), "NAS        connecting");
        assert_eq!(lines[5].as_str(), "connections 0");
    }

    fn cfms(lockdown: Option<bool>) -> Snapshot {
        Snapshot {
            server: Server::Cfms,
            link: Some(Link::Online),
            connections: 1,
            host_name: String::try_from("CFMS WebSocket Server").unwrap(),
            version: String::try_from("1.4.2").unwrap(),
            lockdown,
            ..Snapshot::default()
        }
    }

    #[test]
    fn cfms_panel_shows_name_version_and_lockdown() {
        assert_eq!(
            texts(&render(&cfms(Some(true)))),
            [
                "CFMS WebSocket online",
                "version 1.4.2",
                "lockdown ON",
                "",
                "",
                "connections 1",
            ]
        );
        assert_eq!(render(&cfms(Some(false)))[2].as_str(), "lockdown OFF");
        assert_eq!(render(&cfms(None))[2].as_str(), "lockdown --");
    }

    #[test]
    fn cfms_details_are_hidden_while_not_online() {
        let mut s = cfms(Some(true));
        s.link = Some(Link::Connecting);
        assert_eq!(texts(&render(&s))[1..3], ["version --", "lockdown --"]);
        assert_eq!(
            render(&Snapshot {
                server: Server::Cfms,
                ..Snapshot::default()
            })[0]
                .as_str(),
            "CFMS       connecting"
        );
    }

    #[test]
    fn byte_counts_use_binary_prefixes() {
        let text = |n| line(format_args!("{}", Bytes(n)));
        assert_eq!(text(512), "512B");
        assert_eq!(text(1536), "1.5K");
        assert_eq!(text(23 * 1024 * 1024), "23M");
        assert_eq!(text(1024 * 1024 * 1024), "1.0G");
    }
}
