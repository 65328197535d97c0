//! What the front panel shows: a pure function from a [`Snapshot`] to
//! [`ROWS`] lines of at most [`COLUMNS`] characters (a 128×64 OLED with a
//! 6×8 font, or a 20×4 character LCD showing the first rows).
//!
//! Unknown figures show as `--`, so a panel never shows stale zeros as if
//! they were real.
//!
//! The health verdict is the core's ([`naslink_core::fnos::health`]), made
//! here from the figures the snapshot holds, so the panel and every host
//! apply the same rules; parts the account may not read (errno 4352) or
//! that failed are unknown and raise nothing.

use core::fmt::{self, Write};

use heapless::{String, Vec};
use naslink_core::fnos::health::{self, Level, Thresholds};
use naslink_core::fnos::panel::{PoolState, SmartVerdict};

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
    /// The server ended the session because another login took it over
    /// (`{"sysNotify":"kicked"}`): the panel stops and does not reconnect.
    Kicked,
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

/// Most disks kept for the verdict and the hottest-disk figure.
pub const MAX_DISKS: usize = 8;
/// Most pools kept.
pub const MAX_POOLS: usize = 4;
/// Longest disk or pool name kept (`nvme0n1`, `vol1`).
pub const NAME_CAPACITY: usize = 12;

/// A disk or pool name.
pub type Name = String<NAME_CAPACITY>;

/// One disk's health figures.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiskFigures {
    /// Kernel name (`sda`).
    pub name: Name,
    /// Temperature, °C, if known.
    pub temperature: Option<i32>,
    /// SMART's verdict.
    pub smart: SmartVerdict,
}

/// One pool (volume) and its space.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PoolFigures {
    /// Volume name (`vol1`).
    pub name: Name,
    /// State at a glance.
    pub state: PoolState,
    /// Size, bytes.
    pub size: Option<u64>,
    /// Free, bytes.
    pub free: Option<u64>,
}

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
    /// CFMS `protocol_version` the server announced.
    pub protocol: Option<u32>,
    /// CPU busy, percent.
    pub cpu_percent: Option<u64>,
    /// Memory in use, percent.
    pub mem_percent: Option<u64>,
    /// Storage used and total, bytes.
    pub storage: Option<(u64, u64)>,
    /// The hottest CPU reading, °C.
    pub cpu_temperature: Option<i32>,
    /// Disks; `None` while unknown (not read yet, refused, failed).
    pub disks: Option<Vec<DiskFigures, MAX_DISKS>>,
    /// Pools; `None` while unknown.
    pub pools: Option<Vec<PoolFigures, MAX_POOLS>>,
    /// The UPS, when one answers.
    pub ups: Option<health::Ups>,
    /// Unread system warnings.
    pub unread_warnings: Option<u64>,
    /// Every health query has answered (or failed) once: until then a
    /// missing part is only late, and no verdict is shown.
    pub health_ready: bool,
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

fn link_text(link: Option<Link>) -> Line {
    match link {
        None | Some(Link::Connecting) => line(format_args!("connecting")),
        Some(Link::LoggingIn) => line(format_args!("logging in")),
        Some(Link::Online) => line(format_args!("online")),
        Some(Link::LoginFailed) => line(format_args!("login failed")),
        Some(Link::TokenRefused) => line(format_args!("token refused")),
        Some(Link::Offline { retry_in_s }) => line(format_args!("offline {retry_in_s}s")),
        Some(Link::Kicked) => line(format_args!("kicked")),
    }
}

/// `left` then `right` flush right, a space at least between them
/// (`left` is clipped when both do not fit).
fn split_line(left: &str, right: &str) -> Line {
    let pad = COLUMNS.saturating_sub(left.chars().count() + right.chars().count());
    if pad == 0 {
        return line(format_args!("{left}"));
    }
    line(format_args!("{left}{:pad$}{right}", ""))
}

/// The verdict's level and first reason, from the core's rules.
fn health_of(s: &Snapshot) -> (Level, Line) {
    let mut volumes: Vec<health::Volume<'_>, MAX_POOLS> = Vec::new();
    let mut pools: Vec<health::Pool<'_>, MAX_POOLS> = Vec::new();
    for p in s.pools.iter().flatten() {
        if let (Some(size), Some(free)) = (p.size, p.free) {
            let _ = volumes.push(health::Volume {
                name: &p.name,
                size,
                free,
            });
        }
        let _ = pools.push(health::Pool {
            name: &p.name,
            state: p.state,
        });
    }
    let mut disks: Vec<health::Disk<'_>, MAX_DISKS> = Vec::new();
    for d in s.disks.iter().flatten() {
        let _ = disks.push(health::Disk {
            name: &d.name,
            temperature: d.temperature,
            smart: d.smart,
        });
    }
    let snapshot = health::Snapshot {
        volumes: &volumes,
        pools: &pools,
        disks: &disks,
        cpu_temperature: s.cpu_temperature,
        ups: s.ups,
        unread_warnings: s.unread_warnings,
    };
    // The panel shows one reason: keep only the worst.
    let verdict: health::Verdict<'_, 1> = health::verdict_with(&snapshot, &Thresholds::default());
    let reason = match verdict.first() {
        Some(f) => line(format_args!("{}", f.reason)),
        None => line(format_args!("no alerts")),
    };
    (verdict.level(), reason)
}

/// The verdict line and the reason line.
fn verdict_lines(s: &Snapshot, live: bool) -> (Line, Line) {
    if s.link == Some(Link::Kicked) {
        return (
            line(format_args!("kicked: not retrying")),
            line(format_args!("another login took it")),
        );
    }
    // Disks and pools carry most rules: with neither, there is no verdict
    // worth the name (a non-administrator may read neither).
    let known = s.disks.is_some() || s.pools.is_some();
    if !live || !known || !s.health_ready {
        return (line(format_args!("health --")), Line::new());
    }
    let (level, reason) = health_of(s);
    // Disks and pools carry most rules: without them an OK is only partial.
    let partial = if s.disks.is_none() || s.pools.is_none() {
        " (partial)"
    } else {
        ""
    };
    (line(format_args!("{level}{partial}")), reason)
}

/// The worst pool state: degraded, rebuilding, checking, normal.
fn worst_pool(pools: &[PoolFigures]) -> PoolState {
    let rank = |state: &PoolState| match state {
        PoolState::Unknown => 0,
        PoolState::Normal => 1,
        PoolState::Checking(_) => 2,
        PoolState::Rebuilding(_) => 3,
        PoolState::Degraded => 4,
    };
    pools
        .iter()
        .map(|p| p.state)
        .max_by_key(rank)
        .unwrap_or(PoolState::Unknown)
}

/// A pool state in a few characters.
struct PoolWord(PoolState);

impl fmt::Display for PoolWord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            PoolState::Normal => f.write_str("pool ok"),
            PoolState::Degraded => f.write_str("degraded"),
            PoolState::Rebuilding(Some(p)) => write!(f, "rebuild {}%", p.percent()),
            PoolState::Rebuilding(None) => f.write_str("rebuild"),
            PoolState::Checking(Some(p)) => write!(f, "scrub {}%", p.percent()),
            PoolState::Checking(None) => f.write_str("scrub"),
            PoolState::Unknown => f.write_str("pool --"),
        }
    }
}

/// The hottest disk (first of equals) and the worst pool state.
fn disk_pool_line(s: &Snapshot, live: bool) -> Line {
    let hottest = s
        .disks
        .iter()
        .flatten()
        .filter(|_| live)
        .filter_map(|d| Some((d.temperature?, d)))
        .fold(
            None,
            |best: Option<(i32, &DiskFigures)>, (t, d)| match best {
                Some((bt, _)) if bt >= t => best,
                _ => Some((t, d)),
            },
        );
    let pool = match &s.pools {
        Some(pools) if live => worst_pool(pools),
        _ => PoolState::Unknown,
    };
    let pool = line(format_args!("{}", PoolWord(pool)));
    // The pool word stays whole; a long disk name is cut before it.
    let room = COLUMNS.saturating_sub(pool.len() + 1);
    let left = match hottest {
        Some((t, d)) => {
            let temp = line(format_args!(" {t}C"));
            let keep = room.saturating_sub(temp.len());
            let name = match d.name.char_indices().nth(keep) {
                Some((cut, _)) => &d.name[..cut],
                None => &d.name,
            };
            line(format_args!("{name}{temp}"))
        }
        None => line(format_args!("temp --")),
    };
    split_line(&left, &pool)
}

/// The panel's lines for `s`. An fnOS NAS: name and link, the health
/// verdict and its first reason, CPU (busy, temperature) and memory, the
/// hottest disk and the worst pool state, and space used:
///
/// ```text
/// fnos-sim       online
/// CRITICAL
/// pool vol1 degraded
/// cpu 23% 45C  mem 36%
/// sda 41C      degraded
/// disk 1.2T/4.4T
/// ```
///
/// A CFMS server:
///
/// ```text
/// CFMS WebSocket online
/// version 1.4.2
/// lockdown OFF
/// protocol 13
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
            match s.protocol.filter(|_| live) {
                Some(v) => line(format_args!("protocol {v}")),
                None => Line::new(),
            },
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
    let (cpu, cpu_temp, mem) = if live {
        (s.cpu_percent, s.cpu_temperature, s.mem_percent)
    } else {
        (None, None, None)
    };
    let (verdict, reason) = verdict_lines(s, live);
    [
        title,
        verdict,
        reason,
        line(format_args!(
            "cpu {}% {}C  mem {}%",
            Maybe(cpu),
            Maybe(cpu_temp),
            Maybe(mem)
        )),
        disk_pool_line(s, live),
        match s.storage.filter(|_| live) {
            Some((used, total)) => line(format_args!("disk {}/{}", Bytes(used), Bytes(total))),
            None => line(format_args!("disk --")),
        },
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    use naslink_core::fnos::panel::Progress;

    fn name(s: &str) -> Name {
        Name::try_from(s).unwrap()
    }

    fn disk(n: &str, temperature: Option<i32>, smart: SmartVerdict) -> DiskFigures {
        DiskFigures {
            name: name(n),
            temperature,
            smart,
        }
    }

    fn pool(n: &str, state: PoolState) -> PoolFigures {
        PoolFigures {
            name: name(n),
            state,
            size: Some(4_000_000_000_000),
            free: Some(3_000_000_000_000),
        }
    }

    fn online() -> Snapshot {
        let mut disks = Vec::new();
        disks
            .push(disk("nvme0n1", Some(42), SmartVerdict::Passed))
            .unwrap();
        disks
            .push(disk("sda", Some(38), SmartVerdict::Passed))
            .unwrap();
        disks
            .push(disk("sdb", None, SmartVerdict::Unknown))
            .unwrap();
        let mut pools = Vec::new();
        pools.push(pool("vol1", PoolState::Normal)).unwrap();
        pools.push(pool("vol2", PoolState::Normal)).unwrap();
        Snapshot {
            server: Server::Fnos,
            version: String::new(),
            lockdown: None,
            protocol: None,
            link: Some(Link::Online),
            connections: 1,
            host_name: String::try_from("fnos-sim").unwrap(),
            cpu_percent: Some(23),
            mem_percent: Some(36),
            storage: Some((1_320_000_000_000, 4_920_036_184_064)),
            cpu_temperature: Some(45),
            disks: Some(disks),
            pools: Some(pools),
            ups: None,
            unread_warnings: Some(0),
            health_ready: true,
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
                "OK",
                "no alerts",
                "cpu 23% 45C  mem 36%",
                "nvme0n1 42C   pool ok",
                "disk 1.2T/4.4T",
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
            texts(&lines)[1..],
            [
                "health --",
                "",
                "cpu --% --C  mem --%",
                "temp --       pool --",
                "disk --"
            ]
        );
    }

    #[test]
    fn verdict_line_shows_the_level_and_the_worst_reason() {
        let mut s = online();
        let pools = s.pools.as_mut().unwrap();
        pools[1].state = PoolState::Degraded;
        s.unread_warnings = Some(2);
        let lines = render(&s);
        assert_eq!(lines[1].as_str(), "CRITICAL");
        assert_eq!(lines[2].as_str(), "pool vol2 degraded");
        let mut s = online();
        s.unread_warnings = Some(1);
        assert_eq!(
            texts(&render(&s))[1..3],
            ["WARNING", "1 unread system warni"]
        );
    }

    #[test]
    fn verdict_line_says_partial_when_disks_or_pools_are_unknown() {
        let mut s = online();
        s.pools = None;
        assert_eq!(render(&s)[1].as_str(), "OK (partial)");
        s.cpu_temperature = Some(96);
        let lines = render(&s);
        assert_eq!(lines[1].as_str(), "CRITICAL (partial)");
        assert_eq!(lines[2].as_str(), "CPU 96 C");
        // Neither disks nor pools: no verdict, whatever else is known.
        s.disks = None;
        assert_eq!(texts(&render(&s))[1..3], ["health --", ""]);
    }

    #[test]
    fn verdict_line_is_unknown_when_nothing_is_known() {
        let mut s = online();
        s.disks = None;
        s.pools = None;
        s.cpu_temperature = None;
        s.unread_warnings = None;
        assert_eq!(texts(&render(&s))[1..3], ["health --", ""]);
    }

    #[test]
    fn verdict_line_waits_for_the_first_round_of_answers() {
        let mut s = online();
        s.pools = None;
        s.health_ready = false;
        assert_eq!(texts(&render(&s))[1..3], ["health --", ""]);
        s.health_ready = true;
        assert_eq!(render(&s)[1].as_str(), "OK (partial)");
    }

    #[test]
    fn hottest_disk_line_picks_the_hottest_and_unknown_shows_dashes() {
        let mut s = online();
        s.disks.as_mut().unwrap()[1].temperature = Some(61);
        let lines = render(&s);
        assert_eq!(lines[4].as_str(), "sda 61C       pool ok");
        assert_eq!(lines[1].as_str(), "CRITICAL");
        assert_eq!(lines[2].as_str(), "disk sda 61 C");
        for d in s.disks.as_mut().unwrap() {
            d.temperature = None;
        }
        assert_eq!(render(&s)[4].as_str(), "temp --       pool ok");
        s.disks = None;
        assert_eq!(render(&s)[4].as_str(), "temp --       pool ok");
    }

    #[test]
    fn pool_state_shows_the_worst_pool() {
        let with = |state| {
            let mut s = online();
            s.pools.as_mut().unwrap()[1].state = state;
            render(&s)[4].clone()
        };
        let progress = Progress {
            done: 42,
            total: 100,
        };
        assert_eq!(with(PoolState::Degraded).as_str(), "nvme0n1 42C  degraded");
        assert_eq!(
            with(PoolState::Rebuilding(Some(progress))).as_str(),
            // The name gives way to the state.
            "nvme0 42C rebuild 42%"
        );
        assert_eq!(
            with(PoolState::Rebuilding(None)).as_str(),
            "nvme0n1 42C   rebuild"
        );
        assert_eq!(
            with(PoolState::Checking(Some(progress))).as_str(),
            "nvme0n1 42C scrub 42%"
        );
        assert_eq!(with(PoolState::Unknown).as_str(), "nvme0n1 42C   pool ok");
        let mut s = online();
        s.pools = None;
        assert_eq!(render(&s)[4].as_str(), "nvme0n1 42C   pool --");
    }

    #[test]
    fn a_long_disk_name_is_cut_before_the_pool_state() {
        let mut s = online();
        s.disks.as_mut().unwrap()[0].name = name("nvme12n1p9xy");
        s.pools.as_mut().unwrap()[0].state = PoolState::Rebuilding(Some(Progress {
            done: 100,
            total: 100,
        }));
        let l = render(&s)[4].clone();
        assert_eq!(l.as_str(), "nvme 42C rebuild 100%");
    }

    #[test]
    fn kicked_panel_says_why_and_that_it_stopped() {
        let mut s = online();
        s.link = Some(Link::Kicked);
        let lines = render(&s);
        assert_eq!(lines[0].as_str(), "fnos-sim       kicked");
        assert_eq!(
            texts(&lines)[1..3],
            ["kicked: not retrying", "another login took it"]
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
        s.storage = Some((u64::MAX, u64::MAX));
        s.cpu_percent = Some(u64::MAX);
        s.cpu_temperature = Some(i32::MIN);
        s.disks.as_mut().unwrap()[0].temperature = Some(i32::MAX);
        s.disks.as_mut().unwrap()[0].name = name("abcdefghijkl");
        s.connections = u32::MAX;
        s.unread_warnings = Some(u64::MAX);
        for l in render(&s) {
            assert!(l.chars().count() <= COLUMNS, "{l:?}");
        }
    }

    #[test]
    fn before_first_connection_the_name_is_a_placeholder() {
        let lines = render(&Snapshot::default());
        assert_eq!(lines[0].as_str(), "NAS        connecting");
        assert_eq!(lines[1].as_str(), "health --");
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
    fn cfms_panel_shows_the_protocol_version_when_known() {
        let mut s = cfms(Some(false));
        s.protocol = Some(13);
        assert_eq!(render(&s)[3].as_str(), "protocol 13");
        s.link = Some(Link::Connecting);
        assert_eq!(render(&s)[3].as_str(), "");
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
