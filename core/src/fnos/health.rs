//! "Is my NAS healthy?": one verdict from a snapshot of the panel's
//! figures, computed here so that the firmware and every host apply the
//! same rules.
//!
//! The caller fills a [`Snapshot`] from the [`panel`](super::panel) views
//! (what it could not read stays `None` or empty: unknown figures raise
//! nothing) and [`verdict`] applies the rules with [`Thresholds`]:
//!
//! | Rule | Warning | Critical |
//! |---|---|---|
//! | volume full | ≥ 80 % used | ≥ 90 % used |
//! | pool degraded | | degraded, no rebuild running |
//! | pool rebuilding | rebuild running (with its progress) | |
//! | disk SMART failing | | failing |
//! | disk temperature | ≥ 50 °C | ≥ 60 °C |
//! | CPU temperature | ≥ 85 °C | ≥ 95 °C |
//! | UPS on battery | on battery | on battery, charge ≤ 30 % |
//! | unread system warnings | one or more | |
//!
//! The verdict is the worst level found, with its reasons worst first (a
//! small display shows the first).
#![deny(clippy::indexing_slicing)]

use core::fmt;

use super::panel::{PoolState, SmartVerdict, used_percent};

/// How bad.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Level {
    /// Nothing to report.
    Ok,
    /// Look at it soon.
    Warning,
    /// Act now.
    Critical,
}

impl Level {
    /// `OK`, `WARNING` or `CRITICAL` (the monitoring-plugin words).
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Ok => "OK",
            Level::Warning => "WARNING",
            Level::Critical => "CRITICAL",
        }
    }
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where the rules draw their lines. `Default` gives the table in the
/// module docs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Thresholds {
    /// A volume this many percent used or more is a warning.
    pub volume_warning_percent: u8,
    /// A volume this many percent used or more is critical.
    pub volume_critical_percent: u8,
    /// A disk this hot (°C) or hotter is a warning.
    pub disk_warning_celsius: i32,
    /// A disk this hot (°C) or hotter is critical.
    pub disk_critical_celsius: i32,
    /// A CPU this hot (°C) or hotter is a warning.
    pub cpu_warning_celsius: i32,
    /// A CPU this hot (°C) or hotter is critical.
    pub cpu_critical_celsius: i32,
    /// On battery with this much charge (percent) or less is critical.
    pub ups_critical_percent: u8,
}

impl Default for Thresholds {
    fn default() -> Self {
        Thresholds {
            volume_warning_percent: 80,
            volume_critical_percent: 90,
            disk_warning_celsius: 50,
            disk_critical_celsius: 60,
            cpu_warning_celsius: 85,
            cpu_critical_celsius: 95,
            ups_critical_percent: 30,
        }
    }
}

/// A volume's space.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Volume<'s> {
    /// How the panel names it (`vol1`, a comment).
    pub name: &'s str,
    /// Size in bytes.
    pub size: u64,
    /// Free bytes.
    pub free: u64,
}

/// A pool's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pool<'s> {
    /// How the panel names it.
    pub name: &'s str,
    /// [`Pool::state`](super::panel::Pool::state).
    pub state: PoolState,
}

/// A disk's health figures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Disk<'s> {
    /// Kernel name (`sda`).
    pub name: &'s str,
    /// Temperature in °C, if known.
    pub temperature: Option<i32>,
    /// SMART's verdict.
    pub smart: SmartVerdict,
}

/// The UPS, when one is attached.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ups {
    /// Running on battery.
    pub on_battery: bool,
    /// Battery charge, percent.
    pub battery_percent: Option<u8>,
}

/// The figures a verdict is made from; what is unknown stays empty.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Snapshot<'s> {
    /// Volumes with their space.
    pub volumes: &'s [Volume<'s>],
    /// Pools with their state.
    pub pools: &'s [Pool<'s>],
    /// Disks with temperature and SMART verdict.
    pub disks: &'s [Disk<'s>],
    /// The hottest CPU reading, °C.
    pub cpu_temperature: Option<i32>,
    /// The UPS, if one is attached and answering.
    pub ups: Option<Ups>,
    /// Unread system warnings (`appcgi.resmon.sysWarn`, else
    /// `notify.unreadTotal`).
    pub unread_warnings: Option<u64>,
}

/// Why the verdict is not OK.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason<'s> {
    /// A volume is this full.
    VolumeFull {
        /// The volume.
        volume: &'s str,
        /// Percent used.
        percent: u8,
    },
    /// A pool lost redundancy and no rebuild runs.
    PoolDegraded {
        /// The pool.
        pool: &'s str,
    },
    /// A pool is rebuilding.
    PoolRebuilding {
        /// The pool.
        pool: &'s str,
        /// Percent done, if the server says.
        percent: Option<u8>,
    },
    /// A disk's SMART self-assessment fails.
    DiskFailing {
        /// The disk.
        disk: &'s str,
    },
    /// A disk is too hot.
    DiskHot {
        /// The disk.
        disk: &'s str,
        /// Its temperature, °C.
        celsius: i32,
    },
    /// The CPU is too hot.
    CpuHot {
        /// °C.
        celsius: i32,
    },
    /// The UPS runs on battery.
    UpsOnBattery {
        /// Charge left, percent.
        battery_percent: Option<u8>,
    },
    /// System warnings wait unread.
    UnreadWarnings {
        /// How many.
        count: u64,
    },
}

impl fmt::Display for Reason<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Reason::VolumeFull { volume, percent } => write!(f, "{volume} {percent}% full"),
            Reason::PoolDegraded { pool } => write!(f, "pool {pool} degraded"),
            Reason::PoolRebuilding {
                pool,
                percent: Some(p),
            } => write!(f, "pool {pool} rebuilding {p}%"),
            Reason::PoolRebuilding {
                pool,
                percent: None,
            } => {
                write!(f, "pool {pool} rebuilding")
            }
            Reason::DiskFailing { disk } => write!(f, "disk {disk} SMART failing"),
            Reason::DiskHot { disk, celsius } => write!(f, "disk {disk} {celsius} C"),
            Reason::CpuHot { celsius } => write!(f, "CPU {celsius} C"),
            Reason::UpsOnBattery {
                battery_percent: Some(p),
            } => write!(f, "UPS on battery {p}%"),
            Reason::UpsOnBattery {
                battery_percent: None,
            } => f.write_str("UPS on battery"),
            Reason::UnreadWarnings { count: 1 } => f.write_str("1 unread system warning"),
            Reason::UnreadWarnings { count } => write!(f, "{count} unread system warnings"),
        }
    }
}

/// A reason and how bad it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Finding<'s> {
    /// Warning or critical.
    pub level: Level,
    /// What.
    pub reason: Reason<'s>,
}

/// Reasons a [`Verdict`] keeps by default; more are counted, not kept.
pub const DEFAULT_REASONS: usize = 8;

/// The outcome: the worst level and up to `N` reasons, worst first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict<'s, const N: usize = DEFAULT_REASONS> {
    findings: heapless::Vec<Finding<'s>, N>,
    level: Level,
    omitted: usize,
}

impl<'s, const N: usize> Verdict<'s, N> {
    /// OK, no reasons.
    fn new() -> Self {
        Verdict {
            findings: heapless::Vec::new(),
            level: Level::Ok,
            omitted: 0,
        }
    }

    /// The worst level found.
    pub fn level(&self) -> Level {
        self.level
    }

    /// The reasons, worst first (in rule order within a level).
    pub fn findings(&self) -> &[Finding<'s>] {
        &self.findings
    }

    /// The first (worst) reason.
    pub fn first(&self) -> Option<&Finding<'s>> {
        self.findings.first()
    }

    /// Reasons beyond the capacity `N` (the least severe are dropped).
    pub fn omitted(&self) -> usize {
        self.omitted
    }

    fn add(&mut self, level: Level, reason: Reason<'s>) {
        self.level = self.level.max(level);
        let finding = Finding { level, reason };
        // Keep the list ordered worst first: after the last finding at
        // least as bad.
        let at = self
            .findings
            .iter()
            .position(|f| f.level < level)
            .unwrap_or(self.findings.len());
        if self.findings.is_full() {
            self.omitted += 1;
            if at >= self.findings.len() {
                return;
            }
            self.findings.pop();
        }
        // Room was made above, and `at` is within the length.
        let _ = self.findings.insert(at, finding);
    }
}

/// Apply every rule to `snapshot`, with up to [`DEFAULT_REASONS`] reasons.
pub fn verdict<'s>(snapshot: &Snapshot<'s>, thresholds: &Thresholds) -> Verdict<'s> {
    verdict_with(snapshot, thresholds)
}

/// [`verdict`] keeping up to `N` reasons.
pub fn verdict_with<'s, const N: usize>(snapshot: &Snapshot<'s>, t: &Thresholds) -> Verdict<'s, N> {
    let mut v = Verdict::new();
    for vol in snapshot.volumes {
        let Some(percent) = used_percent(vol.size, vol.free) else {
            continue;
        };
        let level = over(percent, t.volume_warning_percent, t.volume_critical_percent);
        if level != Level::Ok {
            let volume = vol.name;
            v.add(level, Reason::VolumeFull { volume, percent });
        }
    }
    for pool in snapshot.pools {
        match pool.state {
            PoolState::Degraded => v.add(Level::Critical, Reason::PoolDegraded { pool: pool.name }),
            PoolState::Rebuilding(progress) => v.add(
                Level::Warning,
                Reason::PoolRebuilding {
                    pool: pool.name,
                    percent: progress.map(|p| p.percent()),
                },
            ),
            _ => {}
        }
    }
    for disk in snapshot.disks {
        if disk.smart == SmartVerdict::Failing {
            v.add(Level::Critical, Reason::DiskFailing { disk: disk.name });
        }
    }
    for disk in snapshot.disks {
        let Some(celsius) = disk.temperature else {
            continue;
        };
        let level = over(celsius, t.disk_warning_celsius, t.disk_critical_celsius);
        if level != Level::Ok {
            v.add(
                level,
                Reason::DiskHot {
                    disk: disk.name,
                    celsius,
                },
            );
        }
    }
    if let Some(celsius) = snapshot.cpu_temperature {
        let level = over(celsius, t.cpu_warning_celsius, t.cpu_critical_celsius);
        if level != Level::Ok {
            v.add(level, Reason::CpuHot { celsius });
        }
    }
    if let Some(ups) = snapshot.ups.filter(|u| u.on_battery) {
        let low = ups
            .battery_percent
            .is_some_and(|p| p <= t.ups_critical_percent);
        let level = if low { Level::Critical } else { Level::Warning };
        let battery_percent = ups.battery_percent;
        v.add(level, Reason::UpsOnBattery { battery_percent });
    }
    if let Some(count) = snapshot.unread_warnings.filter(|&n| n > 0) {
        v.add(Level::Warning, Reason::UnreadWarnings { count });
    }
    v
}

/// The level of `value` against a warning and a critical line.
fn over<T: PartialOrd>(value: T, warning: T, critical: T) -> Level {
    if value >= critical {
        Level::Critical
    } else if value >= warning {
        Level::Warning
    } else {
        Level::Ok
    }
}

#[cfg(test)]
// Tests index fixtures they built themselves.
#[allow(clippy::indexing_slicing)]
mod tests {
    use super::*;
    use crate::fnos::panel::Progress;

    const GIB: u64 = 1 << 30;

    fn check(snapshot: Snapshot<'_>) -> Verdict<'_> {
        verdict(&snapshot, &Thresholds::default())
    }

    fn text(reason: &Reason<'_>) -> heapless::String<64> {
        let mut s = heapless::String::new();
        core::fmt::Write::write_fmt(&mut s, format_args!("{reason}")).unwrap();
        s
    }

    fn only<'s>(v: &Verdict<'s>) -> (Level, Reason<'s>) {
        assert_eq!(v.findings().len(), 1, "{v:?}");
        (v.findings()[0].level, v.findings()[0].reason)
    }

    #[test]
    fn an_empty_snapshot_is_ok() {
        let v = check(Snapshot::default());
        assert_eq!(v.level(), Level::Ok);
        assert!(v.findings().is_empty());
    }

    #[test]
    fn volume_80_percent_full_is_a_warning_and_90_critical() {
        let vols = [Volume {
            name: "vol1",
            size: 100 * GIB,
            free: 21 * GIB,
        }];
        assert_eq!(
            check(Snapshot {
                volumes: &vols,
                ..Default::default()
            })
            .level(),
            Level::Ok
        );
        let vols = [Volume {
            name: "vol1",
            size: 100 * GIB,
            free: 20 * GIB,
        }];
        let v = check(Snapshot {
            volumes: &vols,
            ..Default::default()
        });
        assert_eq!(
            only(&v),
            (
                Level::Warning,
                Reason::VolumeFull {
                    volume: "vol1",
                    percent: 80
                }
            )
        );
        let vols = [Volume {
            name: "vol1",
            size: 100 * GIB,
            free: 10 * GIB,
        }];
        let v = check(Snapshot {
            volumes: &vols,
            ..Default::default()
        });
        assert_eq!(
            only(&v),
            (
                Level::Critical,
                Reason::VolumeFull {
                    volume: "vol1",
                    percent: 90
                }
            )
        );
        assert_eq!(text(&v.findings()[0].reason), "vol1 90% full");
    }

    #[test]
    fn pool_degraded_is_critical() {
        let pools = [Pool {
            name: "md1",
            state: PoolState::Degraded,
        }];
        let v = check(Snapshot {
            pools: &pools,
            ..Default::default()
        });
        assert_eq!(
            only(&v),
            (Level::Critical, Reason::PoolDegraded { pool: "md1" })
        );
        assert_eq!(text(&v.findings()[0].reason), "pool md1 degraded");
    }

    #[test]
    fn pool_rebuilding_is_a_warning_with_its_progress() {
        let progress = Progress {
            done: 45,
            total: 100,
        };
        let pools = [Pool {
            name: "md1",
            state: PoolState::Rebuilding(Some(progress)),
        }];
        let v = check(Snapshot {
            pools: &pools,
            ..Default::default()
        });
        assert_eq!(
            only(&v),
            (
                Level::Warning,
                Reason::PoolRebuilding {
                    pool: "md1",
                    percent: Some(45)
                }
            )
        );
        assert_eq!(text(&v.findings()[0].reason), "pool md1 rebuilding 45%");
        let pools = [Pool {
            name: "md1",
            state: PoolState::Checking(None),
        }];
        assert_eq!(
            check(Snapshot {
                pools: &pools,
                ..Default::default()
            })
            .level(),
            Level::Ok
        );
    }

    #[test]
    fn disk_smart_failing_is_critical() {
        let disks = [
            Disk {
                name: "sda",
                temperature: None,
                smart: SmartVerdict::Failing,
            },
            Disk {
                name: "sdb",
                temperature: None,
                smart: SmartVerdict::Unknown,
            },
        ];
        let v = check(Snapshot {
            disks: &disks,
            ..Default::default()
        });
        assert_eq!(
            only(&v),
            (Level::Critical, Reason::DiskFailing { disk: "sda" })
        );
        assert_eq!(text(&v.findings()[0].reason), "disk sda SMART failing");
    }

    #[test]
    fn disk_temperature_over_thresholds_warns_then_is_critical() {
        let disk = |t| {
            [Disk {
                name: "sda",
                temperature: Some(t),
                smart: SmartVerdict::Passed,
            }]
        };
        let cool = disk(49);
        assert_eq!(
            check(Snapshot {
                disks: &cool,
                ..Default::default()
            })
            .level(),
            Level::Ok
        );
        let warm = disk(50);
        let v = check(Snapshot {
            disks: &warm,
            ..Default::default()
        });
        assert_eq!(
            only(&v),
            (
                Level::Warning,
                Reason::DiskHot {
                    disk: "sda",
                    celsius: 50
                }
            )
        );
        let hot = disk(61);
        let v = check(Snapshot {
            disks: &hot,
            ..Default::default()
        });
        assert_eq!(
            only(&v),
            (
                Level::Critical,
                Reason::DiskHot {
                    disk: "sda",
                    celsius: 61
                }
            )
        );
    }

    #[test]
    fn cpu_temperature_over_thresholds_warns_then_is_critical() {
        let v = check(Snapshot {
            cpu_temperature: Some(84),
            ..Default::default()
        });
        assert_eq!(v.level(), Level::Ok);
        let v = check(Snapshot {
            cpu_temperature: Some(85),
            ..Default::default()
        });
        assert_eq!(only(&v), (Level::Warning, Reason::CpuHot { celsius: 85 }));
        let v = check(Snapshot {
            cpu_temperature: Some(99),
            ..Default::default()
        });
        assert_eq!(only(&v), (Level::Critical, Reason::CpuHot { celsius: 99 }));
    }

    #[test]
    fn ups_on_battery_warns_and_is_critical_when_low() {
        let ups = |on_battery, battery_percent| Snapshot {
            ups: Some(Ups {
                on_battery,
                battery_percent,
            }),
            ..Default::default()
        };
        assert_eq!(check(ups(false, Some(100))).level(), Level::Ok);
        let v = check(ups(true, Some(80)));
        assert_eq!(
            only(&v),
            (
                Level::Warning,
                Reason::UpsOnBattery {
                    battery_percent: Some(80)
                }
            )
        );
        let v = check(ups(true, Some(30)));
        assert_eq!(
            only(&v),
            (
                Level::Critical,
                Reason::UpsOnBattery {
                    battery_percent: Some(30)
                }
            )
        );
    }

    #[test]
    fn unread_system_warnings_are_a_warning() {
        assert_eq!(
            check(Snapshot {
                unread_warnings: Some(0),
                ..Default::default()
            })
            .level(),
            Level::Ok
        );
        let v = check(Snapshot {
            unread_warnings: Some(3),
            ..Default::default()
        });
        assert_eq!(
            only(&v),
            (Level::Warning, Reason::UnreadWarnings { count: 3 })
        );
        assert_eq!(text(&v.findings()[0].reason), "3 unread system warnings");
    }

    #[test]
    fn thresholds_are_configurable() {
        let t = Thresholds {
            cpu_warning_celsius: 60,
            cpu_critical_celsius: 70,
            ..Default::default()
        };
        let s = Snapshot {
            cpu_temperature: Some(65),
            ..Default::default()
        };
        assert_eq!(verdict(&s, &t).level(), Level::Warning);
        assert_eq!(verdict(&s, &Thresholds::default()).level(), Level::Ok);
    }

    #[test]
    fn reasons_come_worst_first_and_overflow_drops_the_least_severe() {
        let disks = [
            Disk {
                name: "a",
                temperature: Some(55),
                smart: SmartVerdict::Passed,
            },
            Disk {
                name: "b",
                temperature: Some(55),
                smart: SmartVerdict::Passed,
            },
            Disk {
                name: "c",
                temperature: Some(70),
                smart: SmartVerdict::Passed,
            },
        ];
        let s = Snapshot {
            disks: &disks,
            ..Default::default()
        };
        let v: Verdict<'_, 2> = verdict_with(&s, &Thresholds::default());
        assert_eq!(v.level(), Level::Critical);
        assert_eq!(
            v.findings()[0].reason,
            Reason::DiskHot {
                disk: "c",
                celsius: 70
            }
        );
        assert_eq!(
            v.findings()[1].reason,
            Reason::DiskHot {
                disk: "a",
                celsius: 55
            }
        );
        assert_eq!(v.omitted(), 1);
    }
}
