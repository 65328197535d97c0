//! Typed, owned health-panel figures over a [`FnosClient`]: the core's
//! [`panel`](naslink_core::fnos::panel) requests and views, copied out of
//! the received text into owned structs, and the core's
//! [`health`](naslink_core::fnos::health) verdict over them.
//!
//! Every helper sends its requests with
//! [`request_idempotent`](FnosClient::request_idempotent) (they only
//! read). [`FnosClient::snapshot`] sends all of a panel's requests at once
//! and waits for them together; a part the account may not see (errno
//! 4352, administrators only) is [`Part::NeedsAdmin`], and a part the
//! server refuses otherwise (a command this firmware lacks, an app not
//! installed) is [`Part::Refused`]: neither fails the snapshot.

use naslink_core::fnos::health::{self, Level, Thresholds};
use naslink_core::fnos::panel::{
    self, ContainerState, Containers, Cpu, DiskHealthList, DiskKind, DiskList, PoolState, Pools,
    ResmonDisks, SmartVerdict, SysWarn,
};
use naslink_core::fnos::response::{Message, Reply};
use naslink_core::fnos::{Errno, Request};
use naslink_core::json::JsonStr;

use super::{FnosClient, FnosError, FnosReply};

/// A part of the panel: its figures, or a marker that the account is not
/// an administrator and the server refused it (errno 4352).
#[derive(Debug, Clone, PartialEq)]
pub enum Part<T> {
    /// The figures.
    Known(T),
    /// Administrators only.
    NeedsAdmin,
    /// The server refused this part for another reason (its message).
    Refused(String),
}

impl<T> Part<T> {
    /// `None` when known, `Some(true)` when it needs admin, `Some(false)`
    /// when refused otherwise.
    fn kind(&self) -> Option<bool> {
        match self {
            Part::Known(_) => None,
            Part::NeedsAdmin => Some(true),
            Part::Refused(_) => Some(false),
        }
    }

    /// The figures, if known.
    pub fn known(&self) -> Option<&T> {
        match self {
            Part::Known(t) => Some(t),
            Part::NeedsAdmin | Part::Refused(_) => None,
        }
    }
}

/// The CPU (`appcgi.resmon.cpu`).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct CpuStatus {
    /// Model name.
    pub name: Option<String>,
    /// Physical cores.
    pub cores: Option<u64>,
    /// Hardware threads.
    pub threads: Option<u64>,
    /// The package temperature, °C.
    pub temperature: Option<i32>,
    /// Busy percent over all cores.
    pub busy_percent: Option<u8>,
    /// 1, 5 and 15 minute load averages.
    pub load_average: [Option<f64>; 3],
}

/// One disk: inventory (`stor.listDisk`), live temperature
/// (`appcgi.resmon.disk`) and SMART verdict (`stor.diskHealth`).
#[derive(Debug, Clone, PartialEq)]
pub struct DiskStatus {
    /// Kernel name (`sda`, `nvme0n1`).
    pub name: String,
    /// Model.
    pub model: Option<String>,
    /// Size, bytes.
    pub size: Option<u64>,
    /// HDD, SSD or unknown.
    pub kind: DiskKind,
    /// Temperature, °C: the live figure, else SMART's.
    pub temperature: Option<i32>,
    /// SMART's overall verdict.
    pub smart: SmartVerdict,
    /// Power-on hours.
    pub power_on_hours: Option<u64>,
    /// Spun down.
    pub standby: Option<bool>,
}

/// One storage pool and its volume (`stor.general`).
#[derive(Debug, Clone, PartialEq)]
pub struct PoolStatus {
    /// The volume's name (mount point without `/`, else the pool's name).
    pub name: String,
    /// Mount point.
    pub mountpoint: Option<String>,
    /// RAID level (`raid1`...).
    pub level: &'static str,
    /// State at a glance.
    pub state: PoolState,
    /// Size, bytes.
    pub size: Option<u64>,
    /// Free, bytes.
    pub free: Option<u64>,
}

impl PoolStatus {
    /// Percent used, when size and free are known.
    pub fn used_percent(&self) -> Option<u8> {
        panel::used_percent(self.size?, self.free?)
    }
}

/// One Docker container (`appcgi.dockermgr.containerList`).
#[derive(Debug, Clone, PartialEq)]
pub struct ContainerStatus {
    /// Name without the leading `/`.
    pub name: String,
    /// Image.
    pub image: Option<String>,
    /// Docker's state.
    pub state: ContainerState,
    /// Docker's status line (`Up 3 hours`).
    pub status: Option<String>,
}

/// The UPS (`appcgi.sac.ups.v1.status`).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct UpsStatus {
    /// UPS support switched on.
    pub enabled: Option<bool>,
    /// A UPS answers.
    pub connected: Option<bool>,
    /// Model.
    pub model: Option<String>,
    /// Running on battery.
    pub on_battery: Option<bool>,
    /// Charge, percent.
    pub battery_percent: Option<u8>,
    /// Runtime left on battery, seconds.
    pub runtime_secs: Option<u64>,
}

/// A whole panel, gathered with every request in flight together.
#[derive(Debug, Clone, PartialEq)]
pub struct Snapshot {
    /// The CPU.
    pub cpu: Part<CpuStatus>,
    /// The disks.
    pub disks: Part<Vec<DiskStatus>>,
    /// Pools and volumes.
    pub pools: Part<Vec<PoolStatus>>,
    /// Docker containers (all, running or not).
    pub containers: Part<Vec<ContainerStatus>>,
    /// The UPS.
    pub ups: Part<UpsStatus>,
    /// Unread system warnings (`appcgi.resmon.sysWarn`).
    pub unread_warnings: Part<Option<u64>>,
}

/// One reason of a [`HealthReport`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HealthReason {
    /// Warning or critical.
    pub level: Level,
    /// In words (`pool vol1 degraded`).
    pub text: String,
}

/// The core's verdict over a [`Snapshot`], owned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HealthReport {
    /// The worst level.
    pub level: Level,
    /// Reasons, worst first.
    pub reasons: Vec<HealthReason>,
    /// Reasons beyond what the verdict keeps.
    pub omitted: usize,
    /// Parts left out because the account is not an administrator.
    pub needs_admin: Vec<&'static str>,
    /// Parts the server refused for another reason.
    pub refused: Vec<&'static str>,
}

impl Snapshot {
    /// The core's verdict ([`health::verdict`]); parts marked
    /// [`Part::NeedsAdmin`] count as unknown and are listed.
    pub fn health(&self, thresholds: &Thresholds) -> HealthReport {
        let pools = self.pools.known().map(Vec::as_slice).unwrap_or_default();
        let disks = self.disks.known().map(Vec::as_slice).unwrap_or_default();
        let volumes: Vec<health::Volume<'_>> = pools
            .iter()
            .filter_map(|p| {
                Some(health::Volume {
                    name: &p.name,
                    size: p.size?,
                    free: p.free?,
                })
            })
            .collect();
        let pool_states: Vec<health::Pool<'_>> = pools
            .iter()
            .map(|p| health::Pool {
                name: &p.name,
                state: p.state,
            })
            .collect();
        let disk_figures: Vec<health::Disk<'_>> = disks
            .iter()
            .map(|d| health::Disk {
                name: &d.name,
                temperature: d.temperature,
                smart: d.smart,
            })
            .collect();
        let ups = self.ups.known().and_then(|u| {
            Some(health::Ups {
                on_battery: u.on_battery?,
                battery_percent: u.battery_percent,
            })
        });
        let snapshot = health::Snapshot {
            volumes: &volumes,
            pools: &pool_states,
            disks: &disk_figures,
            cpu_temperature: self.cpu.known().and_then(|c| c.temperature),
            ups,
            unread_warnings: self.unread_warnings.known().copied().flatten(),
        };
        let verdict = health::verdict(&snapshot, thresholds);
        let mut needs_admin = Vec::new();
        let mut refused = Vec::new();
        for (name, state) in [
            ("cpu", self.cpu.kind()),
            ("disks", self.disks.kind()),
            ("pools", self.pools.kind()),
            ("containers", self.containers.kind()),
            ("ups", self.ups.kind()),
            ("warnings", self.unread_warnings.kind()),
        ] {
            match state {
                Some(true) => needs_admin.push(name),
                Some(false) => refused.push(name),
                None => {}
            }
        }
        HealthReport {
            level: verdict.level(),
            reasons: verdict
                .findings()
                .iter()
                .map(|f| HealthReason {
                    level: f.level,
                    text: f.reason.to_string(),
                })
                .collect(),
            omitted: verdict.omitted(),
            needs_admin,
            refused,
        }
    }
}

/// The core request as a command name and a parameter object.
fn split(request: &Request<'_>) -> Result<(String, Option<serde_json::Value>), FnosError> {
    let mut buf = vec![0u8; 4096];
    let end = request
        .write(None, &mut buf, 0)
        .map_err(|e| FnosError::Request(format!("{e:?}")))?;
    let mut object: serde_json::Value = buf
        .get(..end)
        .and_then(|b| serde_json::from_slice(b).ok())
        .ok_or_else(|| FnosError::Request("the request did not serialize".into()))?;
    if let Some(map) = object.as_object_mut() {
        map.remove("req");
        if map.is_empty() {
            return Ok((request.command().to_owned(), None));
        }
    }
    Ok((request.command().to_owned(), Some(object)))
}

/// Read `text` (one frame) through `f`; a frame that is not a reply reads
/// as `T::default()` (unknown), as the views read other shapes.
fn read<T: Default>(text: &str, f: impl FnOnce(&Reply<'_>) -> T) -> T {
    match Message::parse(text.as_bytes()) {
        Ok(Message::Reply(reply)) => f(&reply),
        _ => T::default(),
    }
}

fn last_text(reply: &FnosReply) -> &str {
    reply.texts().last().map_or("", String::as_str)
}

fn owned(s: Option<JsonStr<'_>>) -> Option<String> {
    s.map(|s| s.chars().collect())
}

/// Map errno 4352 to [`Part::NeedsAdmin`] and other refusals to
/// [`Part::Refused`]; connection-level failures stay errors.
fn part<T>(result: Result<T, FnosError>) -> Result<Part<T>, FnosError> {
    match result {
        Ok(t) => Ok(Part::Known(t)),
        Err(FnosError::Server {
            errno: Some(Errno::PermissionDenied),
            ..
        }) => Ok(Part::NeedsAdmin),
        Err(e @ FnosError::Server { .. }) => Ok(Part::Refused(e.to_string())),
        Err(e) => Err(e),
    }
}

impl FnosClient {
    /// Send a core [`Request`] (idempotent: a read) and wait for its answer.
    pub async fn panel_request(&self, request: &Request<'_>) -> Result<FnosReply, FnosError> {
        let (command, params) = split(request)?;
        self.request_idempotent(&command, params.as_ref()).await
    }

    /// The CPU's figures.
    pub async fn cpu(&self) -> Result<CpuStatus, FnosError> {
        let reply = self.panel_request(&Request::resmon_cpu()).await?;
        Ok(read(last_text(&reply), |r| {
            let cpu = Cpu::from_reply(r);
            let load = cpu.load_average();
            CpuStatus {
                name: owned(cpu.name()),
                cores: cpu.cores(),
                threads: cpu.threads(),
                temperature: cpu.temperature(),
                busy_percent: cpu.busy_percent(),
                load_average: [load.one, load.five, load.fifteen],
            }
        }))
    }

    /// Every disk: the inventory, live temperatures and SMART verdicts
    /// (three requests in flight together).
    pub async fn disks(&self) -> Result<Vec<DiskStatus>, FnosError> {
        let (list, resmon) = (Request::list_disk(true), Request::resmon_disk());
        let (inventory, live) =
            tokio::join!(self.panel_request(&list), self.panel_request(&resmon));
        let (inventory, live) = (inventory?, live?);
        let mut disks: Vec<DiskStatus> = Vec::new();
        for text in inventory.texts() {
            let found: Vec<DiskStatus> = read(text, |r| {
                DiskList::from_reply(r)
                    .iter()
                    .filter_map(|d| {
                        Some(DiskStatus {
                            name: owned(d.name())?,
                            model: owned(d.model()),
                            size: d.size(),
                            kind: d.kind(),
                            temperature: None,
                            smart: SmartVerdict::Unknown,
                            power_on_hours: None,
                            standby: None,
                        })
                    })
                    .collect()
            });
            for disk in found {
                if !disks.iter().any(|d| d.name == disk.name) {
                    disks.push(disk);
                }
            }
        }
        let live: Vec<(String, Option<i32>, Option<bool>)> = read(last_text(&live), |r| {
            ResmonDisks::from_reply(r)
                .iter()
                .filter_map(|d| Some((owned(d.name())?, d.temperature(), d.standby())))
                .collect()
        });
        for (name, temperature, standby) in &live {
            match disks.iter_mut().find(|d| d.name == *name) {
                Some(d) => {
                    d.temperature = *temperature;
                    d.standby = *standby;
                }
                None => disks.push(DiskStatus {
                    name: name.clone(),
                    model: None,
                    size: None,
                    kind: DiskKind::Unknown,
                    temperature: *temperature,
                    smart: SmartVerdict::Unknown,
                    power_on_hours: None,
                    standby: *standby,
                }),
            }
        }
        if disks.is_empty() {
            return Ok(disks);
        }
        let names: Vec<&str> = disks.iter().map(|d| d.name.as_str()).collect();
        let health = self
            .panel_request(&Request::disk_health(&names, false))
            .await?;
        let health: Vec<(String, SmartVerdict, Option<i32>, Option<u64>)> =
            read(last_text(&health), |r| {
                DiskHealthList::from_reply(r)
                    .iter()
                    .filter_map(|h| {
                        Some((
                            owned(h.disk())?,
                            h.verdict(),
                            h.temperature(),
                            h.power_on_hours(),
                        ))
                    })
                    .collect()
            });
        for (name, smart, temperature, hours) in health {
            if let Some(d) = disks.iter_mut().find(|d| d.name == name) {
                d.smart = smart;
                d.temperature = d.temperature.or(temperature);
                d.power_on_hours = hours;
            }
        }
        Ok(disks)
    }

    /// Pools and their volumes.
    pub async fn pools(&self) -> Result<Vec<PoolStatus>, FnosError> {
        let reply = self.panel_request(&Request::stor_general()).await?;
        Ok(read(last_text(&reply), |r| {
            Pools::from_reply(r)
                .iter()
                .map(|p| {
                    let mountpoint = owned(p.mountpoint());
                    let name = mountpoint
                        .as_deref()
                        .map(|m| m.trim_start_matches('/').to_owned())
                        .filter(|m| !m.is_empty())
                        .or_else(|| owned(p.name()))
                        .unwrap_or_default();
                    PoolStatus {
                        name,
                        mountpoint,
                        level: p.level().as_str(),
                        state: p.state(),
                        size: p.size(),
                        free: p.free(),
                    }
                })
                .collect()
        }))
    }

    /// Docker containers, running or not.
    pub async fn containers(&self) -> Result<Vec<ContainerStatus>, FnosError> {
        let reply = self.panel_request(&Request::container_list(true)).await?;
        Ok(read(last_text(&reply), |r| {
            Containers::from_reply(r)
                .iter()
                .map(|c| ContainerStatus {
                    name: c.name().unwrap_or_default().to_owned(),
                    image: owned(c.image()),
                    state: c.state(),
                    status: owned(c.status()),
                })
                .collect()
        }))
    }

    /// The UPS.
    pub async fn ups(&self) -> Result<UpsStatus, FnosError> {
        let reply = self.panel_request(&Request::ups_status()).await?;
        Ok(read(last_text(&reply), |r| {
            let ups = panel::Ups::from_reply(r);
            UpsStatus {
                enabled: ups.enabled(),
                connected: ups.connected(),
                model: owned(ups.model()),
                on_battery: ups.on_battery(),
                battery_percent: ups.battery_percent(),
                runtime_secs: ups.runtime_secs(),
            }
        }))
    }

    /// Unread system warnings.
    pub async fn unread_warnings(&self) -> Result<Option<u64>, FnosError> {
        let reply = self.panel_request(&Request::sys_warn()).await?;
        Ok(read(last_text(&reply), |r| SysWarn::from_reply(r).count()))
    }

    /// The whole panel, every request in flight together; parts refused
    /// with errno 4352 are [`Part::NeedsAdmin`], other refusals
    /// [`Part::Refused`]. Fails when the connection fails (timeout, lost,
    /// closed).
    pub async fn snapshot(&self) -> Result<Snapshot, FnosError> {
        let (cpu, disks, pools, containers, ups, unread) = tokio::join!(
            self.cpu(),
            self.disks(),
            self.pools(),
            self.containers(),
            self.ups(),
            self.unread_warnings()
        );
        Ok(Snapshot {
            cpu: part(cpu)?,
            disks: part(disks)?,
            pools: part(pools)?,
            containers: part(containers)?,
            ups: part(ups)?,
            unread_warnings: part(unread)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_core_request_splits_into_command_and_parameters() {
        let (command, params) = split(&Request::disk_smart("sda")).unwrap();
        assert_eq!(command, Request::disk_smart("sda").command());
        let params = params.expect("parameters");
        assert!(params.get("req").is_none());
        assert!(params.to_string().contains("sda"), "{params}");
        let (_, none) = split(&Request::new("appcgi.resmon.cpu")).unwrap();
        assert_eq!(none, None);
    }

    #[test]
    fn refusals_become_parts_and_connection_failures_stay_errors() {
        let server = |errno| FnosError::Server {
            errno: Some(errno),
            message: "no".into(),
            body: serde_json::Value::Null,
        };
        assert_eq!(
            part::<()>(Err(server(Errno::PermissionDenied))).unwrap(),
            Part::NeedsAdmin
        );
        assert!(matches!(
            part::<()>(Err(server(Errno::BadParameter))).unwrap(),
            Part::Refused(m) if m.contains("no")
        ));
        assert!(matches!(
            part::<()>(Err(FnosError::TimedOut)),
            Err(FnosError::TimedOut)
        ));
        let snapshot = Snapshot {
            cpu: Part::Refused("x".into()),
            disks: Part::NeedsAdmin,
            pools: Part::Known(Vec::new()),
            containers: Part::Known(Vec::new()),
            ups: Part::Known(UpsStatus::default()),
            unread_warnings: Part::Known(None),
        };
        let report = snapshot.health(&Thresholds::default());
        assert_eq!(report.level, Level::Ok);
        assert_eq!(report.needs_admin, ["disks"]);
        assert_eq!(report.refused, ["cpu"]);
    }
}
