//! The front panel's commands: typed requests and borrowed views of their
//! answers (`shared/protocol/fnos-panel.md`).
//!
//! Every view reads a received [`Reply`] in place through the
//! [`json`](crate::json) view: nothing is copied and nothing allocates. The
//! answers come in four envelopes, and each view knows its own:
//!
//! | Command | Envelope | View |
//! |---|---|---|
//! | `appcgi.resmon.cpu` | `data.cpu` | [`Cpu`] |
//! | `appcgi.resmon.gpu` | `data.gpu[]` | [`Gpus`] |
//! | `appcgi.resmon.disk` | `data.disk[]` | [`ResmonDisks`] |
//! | `stor.listDisk` (several frames) | top-level `disk[]` | [`DiskList`], merged by [`DiskInventory`] |
//! | `stor.diskHealth` | top-level `diskHealth[]` | [`DiskHealthList`] |
//! | `stor.diskSmart` | top-level `smart` (smartctl JSON) | [`Smart`] |
//! | `stor.general`, `stor.listStor`, `stor.state` | top-level `array[]` / `state[]` (+ `block[]`) | [`Pools`] |
//! | `appcgi.dockermgr.containerList` | `rsp[]` | [`Containers`] |
//! | `appcgi.dockermgr.stats` | `rsp{id: …}` | [`DockerStats`] |
//! | `appcgi.sac.ups.v1.status` | `data` | [`Ups`] |
//! | `notify.unreadTotal` | top-level `unreadTotal` | [`unread_total`] |
//! | `appcgi.resmon.sysWarn` | `data` (shape not captured) | [`SysWarn`] |
//! | `appcgi.sysinfo.getHardwareInfo` | `data` | [`HardwareInfo`] |
//! | long operations | `result:"doing"` frames, `sysNotify` task pushes | [`DoingFrame`], [`TaskFrame`] |
//!
//! **Unknown is not an error.** A panel shows what it got: every accessor
//! returns an `Option` (or an `Unknown` variant) and a missing field, a
//! field of another type or a whole answer of another shape reads as
//! unknown, never as a failure of the panel. Numbers are accepted as JSON
//! integers, floats or digit strings, since firmware versions differ.
#![deny(clippy::indexing_slicing)]

use core::cmp::Ordering;

use super::request::{Param, Request};
use super::response::{Push, Reply, Status};
use crate::json::{ArrayIter, JsonStr, ObjectIter, Value};

// ----- requests --------------------------------------------------------------

impl<'a> Request<'a> {
    /// `appcgi.resmon.gpu` → [`Gpus`].
    pub fn resmon_gpu() -> Self {
        Request::new("appcgi.resmon.gpu")
    }

    /// `stor.listDisk {noHotSpare}` → [`DiskList`] frames (admin only).
    pub fn list_disk(no_hot_spare: bool) -> Self {
        Request::new("stor.listDisk").param("noHotSpare", Param::Bool(no_hot_spare))
    }

    /// `stor.diskHealth {disks, wakeup}` → [`DiskHealthList`] (admin only).
    /// `wakeup: false` leaves sleeping disks alone.
    pub fn disk_health(disks: &'a [&'a str], wakeup: bool) -> Self {
        Request::new("stor.diskHealth")
            .param("disks", Param::StrList(disks))
            .param("wakeup", Param::Bool(wakeup))
    }

    /// `stor.diskSmart {disk}` → [`Smart`] (admin only).
    pub fn disk_smart(disk: &'a str) -> Self {
        Request::new("stor.diskSmart").param("disk", Param::Str(disk))
    }

    /// `stor.general` → [`Pools`] (admin only).
    pub fn stor_general() -> Self {
        Request::new("stor.general")
    }

    /// `stor.listStor` → [`Pools`], possibly in several frames (admin only).
    pub fn list_stor() -> Self {
        Request::new("stor.listStor")
    }

    /// `stor.state {name, uuid}` → [`Pools`] for the named volumes
    /// (`dm-1`, `trim_…-0`; admin only).
    pub fn stor_state(names: &'a [&'a str], uuids: &'a [&'a str]) -> Self {
        Request::new("stor.state")
            .param("name", Param::StrList(names))
            .param("uuid", Param::StrList(uuids))
    }

    /// `appcgi.dockermgr.containerList {all}` → [`Containers`]; without
    /// `all` only running containers (admin only).
    pub fn container_list(all: bool) -> Self {
        Request::new("appcgi.dockermgr.containerList").param("all", Param::Bool(all))
    }

    /// `appcgi.dockermgr.stats` → [`DockerStats`] (admin only).
    pub fn docker_stats() -> Self {
        Request::new("appcgi.dockermgr.stats")
    }

    /// `appcgi.sac.ups.v1.status` → [`Ups`].
    pub fn ups_status() -> Self {
        Request::new("appcgi.sac.ups.v1.status")
    }

    /// `notify.unreadTotal` → [`unread_total`].
    pub fn unread_total() -> Self {
        Request::new("notify.unreadTotal")
    }

    /// `appcgi.resmon.sysWarn` → [`SysWarn`].
    pub fn sys_warn() -> Self {
        Request::new("appcgi.resmon.sysWarn")
    }

    /// `appcgi.sysinfo.getHardwareInfo` → [`HardwareInfo`] (works before
    /// login on some firmware).
    pub fn hardware_info() -> Self {
        Request::new("appcgi.sysinfo.getHardwareInfo")
    }
}

// ----- reading helpers -------------------------------------------------------

/// `v.key1.key2…`; `None` at the first missing step.
fn at<'a>(v: Option<Value<'a>>, path: &[&str]) -> Option<Value<'a>> {
    path.iter().try_fold(v?, |v, key| v.get(key))
}

/// A JSON number or a string of one, as text.
fn number_text<'a>(v: Value<'a>) -> Option<&'a str> {
    v.as_number_text()
        .or_else(|| v.as_str()?.as_unescaped().map(str::trim_ascii))
}

/// A decimal number's text (`[+-]digits[.digits][(e|E)[+-]digits]`, the
/// forms `f64::from_str` takes for finite numbers) read without floating
/// point: a firmware that only wants whole degrees and percents then does
/// not link a float parser and its tables (about 17 KiB of flash).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Decimal {
    /// A minus sign (also on zero).
    negative: bool,
    /// The whole part; `None` beyond `u64`.
    whole: Option<u64>,
    /// The first digit after the point.
    tenth: u8,
    /// Some later digit is not zero.
    rest: bool,
}

impl Decimal {
    /// `None` for anything else; a magnitude beyond `u64` has no
    /// `whole`.
    fn parse(text: &str) -> Option<Self> {
        let (negative, unsigned) = match text.as_bytes().first() {
            Some(b'-') => (true, text.get(1..)?),
            Some(b'+') => (false, text.get(1..)?),
            _ => (false, text),
        };
        let (mantissa, exp) = unsigned.split_once(['e', 'E']).unwrap_or((unsigned, "0"));
        let exp_digits = exp.strip_prefix(['+', '-']).unwrap_or(exp);
        if exp_digits.is_empty() {
            return None;
        }
        let mut e: i64 = 0;
        for b in exp_digits.bytes() {
            if !b.is_ascii_digit() {
                return None;
            }
            // Saturate: 10^±99999 is as out of range as anything larger.
            e = (e * 10 + i64::from(b - b'0')).min(99_999);
        }
        if exp.starts_with('-') {
            e = -e;
        }
        let (int, frac) = mantissa.split_once('.').unwrap_or((mantissa, ""));
        if int.is_empty() && frac.is_empty() {
            return None;
        }
        // The digits of `int` and `frac` in a row; the point after `point` of them.
        let point = int.len() as i64 + e;
        let mut d = Decimal {
            negative,
            whole: Some(0),
            tenth: 0,
            rest: false,
        };
        let mut i = 0i64;
        for b in int.bytes().chain(frac.bytes()) {
            let digit = b.wrapping_sub(b'0');
            if digit > 9 {
                return None;
            }
            match i.cmp(&point) {
                Ordering::Less => {
                    d.whole = d
                        .whole
                        .and_then(|w| w.checked_mul(10)?.checked_add(digit.into()));
                }
                Ordering::Equal => d.tenth = digit,
                Ordering::Greater => d.rest |= digit != 0,
            }
            i += 1;
        }
        // Zeros up to the point (a non-zero whole overflows within 20).
        for _ in i..point.min(i + 20) {
            d.whole = d.whole.and_then(|w| w.checked_mul(10));
        }
        Some(d)
    }

    /// Zero, whatever its sign.
    fn is_zero(&self) -> bool {
        self.whole == Some(0) && self.tenth == 0 && !self.rest
    }

    /// `|x| <= limit`.
    fn within(&self, limit: u64) -> bool {
        match self.whole {
            Some(w) => w < limit || (w == limit && self.tenth == 0 && !self.rest),
            None => false,
        }
    }
}

/// A count or size: an integer, a non-negative float (truncated) or a
/// string of either.
fn count(v: Option<Value<'_>>) -> Option<u64> {
    let v = v?;
    if let Some(n) = v.as_u64() {
        return Some(n);
    }
    let d = Decimal::parse(number_text(v)?)?;
    if d.negative && !d.is_zero() {
        return None;
    }
    // Below 1.8e19, as the float reading had it.
    d.whole.filter(|&w| w < 18_000_000_000_000_000_000)
}

/// A float from a number or a string of one.
fn float(v: Option<Value<'_>>) -> Option<f64> {
    let f: f64 = number_text(v?)?.parse().ok()?;
    f.is_finite().then_some(f)
}

/// A temperature in whole °C: integers, floats (rounded half away from
/// zero) or strings; values outside −100…300 are sensor junk and read as
/// unknown.
fn celsius(v: Option<Value<'_>>) -> Option<i32> {
    let d = Decimal::parse(number_text(v?)?)?;
    if !d.within(if d.negative { 100 } else { 300 }) {
        return None;
    }
    let magnitude = i32::try_from(d.whole?).ok()? + i32::from(d.tenth >= 5);
    Some(if d.negative { -magnitude } else { magnitude })
}

/// A percentage 0–100 (clamped, truncated), from any number form.
fn percent(v: Option<Value<'_>>) -> Option<u8> {
    let d = Decimal::parse(number_text(v?)?)?;
    if d.negative {
        return Some(0);
    }
    Some(d.whole.map_or(100, |w| w.min(100) as u8))
}

/// A flag: `true`/`false`, `0`/`1`, or those as strings.
fn flag(v: Option<Value<'_>>) -> Option<bool> {
    let v = v?;
    if let Some(b) = v.as_bool() {
        return Some(b);
    }
    match count(Some(v))? {
        0 => Some(false),
        1 => Some(true),
        _ => None,
    }
}

fn text(v: Option<Value<'_>>) -> Option<JsonStr<'_>> {
    v?.as_str()
}

/// Items of an array value; none for anything else.
fn items(v: Option<Value<'_>>) -> ArrayIter<'_> {
    v.unwrap_or(Value::EMPTY_OBJECT).items()
}

/// The payload of an `appcgi.*` answer (`data`, or `rsp` for dockermgr).
fn payload<'a>(reply: &Reply<'a>) -> Option<Value<'a>> {
    reply.data()
}

/// The top level of a core handler's answer.
fn top<'a>(reply: &Reply<'a>) -> Option<Value<'a>> {
    Some(reply.body().as_value())
}

/// Whether an answer's text says "not known" (`""`, `"Unknown"`, `"none"`).
fn is_placeholder(s: JsonStr<'_>) -> bool {
    s.eq_str("") || s.eq_str("Unknown") || s.eq_str("unknown") || s.eq_str("none")
}

/// A text field, or `None` when absent or a placeholder.
fn known_text(v: Option<Value<'_>>) -> Option<JsonStr<'_>> {
    text(v).filter(|s| !is_placeholder(*s))
}

// ----- appcgi.resmon.cpu ------------------------------------------------------

/// `appcgi.resmon.cpu`: `data.cpu{name, core, thread, maxFreq, temp[],
/// busy{all,…}, loadavg{avg1min,…}}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cpu<'a> {
    cpu: Option<Value<'a>>,
}

/// The 1, 5 and 15 minute load averages.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct LoadAverage {
    /// Over one minute.
    pub one: Option<f64>,
    /// Over five minutes.
    pub five: Option<f64>,
    /// Over fifteen minutes.
    pub fifteen: Option<f64>,
}

impl<'a> Cpu<'a> {
    /// The view of an answer.
    pub fn from_reply(reply: &Reply<'a>) -> Self {
        Cpu {
            cpu: at(payload(reply), &["cpu"]),
        }
    }

    /// The model name.
    pub fn name(&self) -> Option<JsonStr<'a>> {
        known_text(at(self.cpu, &["name"]))
    }

    /// Physical cores.
    pub fn cores(&self) -> Option<u64> {
        count(at(self.cpu, &["core"]))
    }

    /// Hardware threads.
    pub fn threads(&self) -> Option<u64> {
        count(at(self.cpu, &["thread"]))
    }

    /// Maximum clock in MHz.
    pub fn max_freq_mhz(&self) -> Option<f64> {
        float(at(self.cpu, &["maxFreq"]))
    }

    /// Every temperature reading in °C (`temp` is an array, one entry per
    /// package or sensor; a single number is taken as one reading).
    pub fn temperatures(&self) -> impl Iterator<Item = i32> + 'a {
        let temp = at(self.cpu, &["temp"]);
        let single = temp.filter(|t| t.as_array().is_none());
        items(temp).chain(single).filter_map(|t| celsius(Some(t)))
    }

    /// The hottest reading in °C.
    pub fn temperature(&self) -> Option<i32> {
        self.temperatures().max()
    }

    /// Busy percentage over all cores (`busy.all`).
    pub fn busy_percent(&self) -> Option<u8> {
        percent(at(self.cpu, &["busy", "all"]))
    }

    /// `loadavg`.
    pub fn load_average(&self) -> LoadAverage {
        let load = at(self.cpu, &["loadavg"]);
        LoadAverage {
            one: float(at(load, &["avg1min"])),
            five: float(at(load, &["avg5min"])),
            fifteen: float(at(load, &["avg15min"])),
        }
    }

    /// Fan speed in RPM, where the hardware reports one (`fan.fanSpeed`).
    pub fn fan_rpm(&self) -> Option<u64> {
        count(at(self.cpu, &["fan", "fanSpeed"]))
    }
}

// ----- appcgi.resmon.gpu ------------------------------------------------------

/// `appcgi.resmon.gpu`: `data.gpu[]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Gpus<'a> {
    list: Option<Value<'a>>,
}

/// One GPU of [`Gpus`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Gpu<'a> {
    v: Value<'a>,
}

impl<'a> Gpus<'a> {
    /// The view of an answer.
    pub fn from_reply(reply: &Reply<'a>) -> Self {
        Gpus {
            list: at(payload(reply), &["gpu"]),
        }
    }

    /// The GPUs in order; entries that are not objects are skipped.
    pub fn iter(&self) -> impl Iterator<Item = Gpu<'a>> + 'a {
        items(self.list)
            .filter(|v| v.as_object().is_some())
            .map(|v| Gpu { v })
    }
}

impl<'a> Gpu<'a> {
    /// `index`.
    pub fn index(&self) -> Option<u64> {
        count(self.v.get("index"))
    }
    /// `vendor`.
    pub fn vendor(&self) -> Option<JsonStr<'a>> {
        known_text(self.v.get("vendor"))
    }
    /// `device` (the model).
    pub fn device(&self) -> Option<JsonStr<'a>> {
        known_text(self.v.get("device"))
    }
    /// Busy percentage.
    pub fn busy_percent(&self) -> Option<u8> {
        percent(self.v.get("busy"))
    }
    /// Temperature in °C.
    pub fn temperature(&self) -> Option<i32> {
        celsius(self.v.get("temp"))
    }
    /// Video memory in bytes.
    pub fn ram_total(&self) -> Option<u64> {
        count(at(Some(self.v), &["ram", "total"]))
    }
    /// Video memory in use, bytes.
    pub fn ram_used(&self) -> Option<u64> {
        count(at(Some(self.v), &["ram", "used"]))
    }
    /// Video encoder busy percentage.
    pub fn encoder_percent(&self) -> Option<u8> {
        percent(at(Some(self.v), &["engine", "encoder"]))
    }
}

// ----- appcgi.resmon.disk -----------------------------------------------------

/// `appcgi.resmon.disk`: `data{num, disk[]}`, live figures per disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResmonDisks<'a> {
    data: Option<Value<'a>>,
}

/// One disk of [`ResmonDisks`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResmonDisk<'a> {
    v: Value<'a>,
}

impl<'a> ResmonDisks<'a> {
    /// The view of an answer.
    pub fn from_reply(reply: &Reply<'a>) -> Self {
        ResmonDisks {
            data: payload(reply),
        }
    }

    /// `num`, the disk count the server states.
    pub fn count(&self) -> Option<u64> {
        count(at(self.data, &["num"]))
    }

    /// The disks in order.
    pub fn iter(&self) -> impl Iterator<Item = ResmonDisk<'a>> + 'a {
        items(at(self.data, &["disk"]))
            .filter(|v| v.as_object().is_some())
            .map(|v| ResmonDisk { v })
    }
}

impl<'a> ResmonDisk<'a> {
    /// Kernel name (`sda`, `nvme0n1`): the id for `stor.diskSmart`.
    pub fn name(&self) -> Option<JsonStr<'a>> {
        known_text(self.v.get("name"))
    }
    /// Temperature in °C; `0` means the server does not know (ask
    /// `stor.diskSmart`, see [`Smart::temperature`]).
    pub fn temperature(&self) -> Option<i32> {
        celsius(self.v.get("temp")).filter(|&t| t != 0)
    }
    /// Spun down.
    pub fn standby(&self) -> Option<bool> {
        flag(self.v.get("standby"))
    }
    /// Busy percentage.
    pub fn busy_percent(&self) -> Option<u8> {
        percent(self.v.get("busy"))
    }
    /// Read rate, bytes/s.
    pub fn read_rate(&self) -> Option<u64> {
        count(self.v.get("read"))
    }
    /// Write rate, bytes/s.
    pub fn write_rate(&self) -> Option<u64> {
        count(self.v.get("write"))
    }
}

// ----- stor.listDisk ----------------------------------------------------------

/// Disk medium as the server classifies it (`type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DiskKind {
    /// Spinning disk.
    Hdd,
    /// Solid state.
    Ssd,
    /// Anything else or absent.
    Unknown,
}

impl DiskKind {
    fn read(v: Option<Value<'_>>) -> Self {
        match text(v) {
            Some(s) if s.eq_str("HDD") => DiskKind::Hdd,
            Some(s) if s.eq_str("SSD") => DiskKind::Ssd,
            _ => DiskKind::Unknown,
        }
    }
}

/// One frame of `stor.listDisk`: top-level `disk[]`. The answer comes in
/// frames without `result` followed by a final one; merge them with
/// [`DiskInventory`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DiskList<'a> {
    list: Option<Value<'a>>,
}

/// One disk of [`DiskList`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DiskInfo<'a> {
    v: Value<'a>,
}

impl<'a> DiskList<'a> {
    /// The view of one frame.
    pub fn from_reply(reply: &Reply<'a>) -> Self {
        DiskList {
            list: at(top(reply), &["disk"]),
        }
    }

    /// The disks of this frame.
    pub fn iter(&self) -> impl Iterator<Item = DiskInfo<'a>> + 'a {
        items(self.list)
            .filter(|v| v.as_object().is_some())
            .map(|v| DiskInfo { v })
    }
}

impl<'a> DiskInfo<'a> {
    /// Kernel name (`sda`): the id for `stor.diskHealth` and `stor.diskSmart`.
    pub fn name(&self) -> Option<JsonStr<'a>> {
        known_text(self.v.get("name"))
    }
    /// Capacity in bytes.
    pub fn size(&self) -> Option<u64> {
        count(self.v.get("size"))
    }
    /// Model (`modelName`).
    pub fn model(&self) -> Option<JsonStr<'a>> {
        known_text(self.v.get("modelName"))
    }
    /// Serial number (masked in captures).
    pub fn serial(&self) -> Option<JsonStr<'a>> {
        known_text(self.v.get("serialNumber"))
    }
    /// Vendor (SAS disks).
    pub fn vendor(&self) -> Option<JsonStr<'a>> {
        known_text(self.v.get("vendor"))
    }
    /// HDD or SSD.
    pub fn kind(&self) -> DiskKind {
        DiskKind::read(self.v.get("type"))
    }
    /// `protocol`: `SATA`, `NVMe`, `SCSI`, `USB`…
    pub fn protocol(&self) -> Option<JsonStr<'a>> {
        known_text(self.v.get("protocol"))
    }
    /// Spindle speed in RPM (HDDs).
    pub fn rotation_rate(&self) -> Option<u64> {
        count(self.v.get("rotationRate"))
    }
    /// The system disk (`sys: 1`).
    pub fn is_system(&self) -> bool {
        flag(self.v.get("sys")).unwrap_or(false)
    }
    /// An external (USB) disk (`external: 1`).
    pub fn is_external(&self) -> bool {
        flag(self.v.get("external")).unwrap_or(false)
    }
    /// RAID level of the first pool the disk belongs to (`storage[0].level`).
    pub fn pool_level(&self) -> Option<RaidLevel> {
        let first = items(self.v.get("storage")).next();
        at(first, &["level"]).map(|v| RaidLevel::read(Some(v)))
    }
    /// Member state in that pool (`storage[0].arrState`).
    pub fn member_state(&self) -> Option<MemberState> {
        let first = items(self.v.get("storage")).next();
        at(first, &["arrState"]).map(|v| MemberState::read(Some(v)))
    }
}

/// Longest disk name [`DiskInventory`] keeps (`nvme10n1p1` is 10).
pub const DISK_NAME_CAPACITY: usize = 16;

/// What [`DiskInventory`] keeps of a disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiskSummary {
    /// Kernel name.
    pub name: heapless::String<DISK_NAME_CAPACITY>,
    /// Capacity in bytes.
    pub size: Option<u64>,
    /// HDD or SSD.
    pub kind: DiskKind,
    /// The system disk.
    pub system: bool,
    /// An external disk.
    pub external: bool,
}

/// Where a multi-frame answer stands after a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Merge {
    /// More frames follow.
    More,
    /// The final frame arrived, with its outcome.
    Done(Status),
}

/// `stor.listDisk`'s frames merged: disks deduplicated by name until the
/// frame carrying `result`, up to `N` disks (more are counted in
/// [`dropped`](Self::dropped), not an error).
#[derive(Debug, Clone, Default)]
pub struct DiskInventory<const N: usize> {
    disks: heapless::Vec<DiskSummary, N>,
    dropped: usize,
}

impl<const N: usize> DiskInventory<N> {
    /// Nothing received yet.
    pub fn new() -> Self {
        DiskInventory {
            disks: heapless::Vec::new(),
            dropped: 0,
        }
    }

    /// Take one frame of the answer (the caller routes frames by reqid).
    pub fn absorb(&mut self, reply: &Reply<'_>) -> Merge {
        for disk in DiskList::from_reply(reply).iter() {
            let Some(name) = disk.name().and_then(|n| n.decode_to_string().ok()) else {
                continue;
            };
            let summary = DiskSummary {
                name,
                size: disk.size(),
                kind: disk.kind(),
                system: disk.is_system(),
                external: disk.is_external(),
            };
            match self.disks.iter_mut().find(|d| d.name == summary.name) {
                Some(known) => *known = summary,
                None => {
                    if self.disks.push(summary).is_err() {
                        self.dropped += 1;
                    }
                }
            }
        }
        match reply.status() {
            Status::Partial => Merge::More,
            done => Merge::Done(done),
        }
    }

    /// The disks so far, in the order first seen.
    pub fn disks(&self) -> &[DiskSummary] {
        &self.disks
    }

    /// Disks that did not fit.
    pub fn dropped(&self) -> usize {
        self.dropped
    }
}

// ----- stor.diskHealth --------------------------------------------------------

/// SMART's overall verdict for a disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SmartVerdict {
    /// The self-assessment passed and no NVMe critical warning is set.
    Passed,
    /// The self-assessment failed, or an NVMe critical warning is set.
    Failing,
    /// Not reported (no SMART, disk asleep, unknown shape).
    Unknown,
}

fn verdict(passed: Option<bool>, nvme_warning: Option<u64>) -> SmartVerdict {
    match (passed, nvme_warning) {
        (Some(false), _) | (_, Some(1..)) => SmartVerdict::Failing,
        (Some(true), _) => SmartVerdict::Passed,
        (None, Some(0)) => SmartVerdict::Passed,
        (None, _) => SmartVerdict::Unknown,
    }
}

/// `stor.diskHealth`: top-level `diskHealth[]`, the cheapest per-disk
/// health source.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DiskHealthList<'a> {
    list: Option<Value<'a>>,
}

/// One disk of [`DiskHealthList`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DiskHealth<'a> {
    v: Value<'a>,
}

impl<'a> DiskHealthList<'a> {
    /// The view of an answer.
    pub fn from_reply(reply: &Reply<'a>) -> Self {
        DiskHealthList {
            list: at(top(reply), &["diskHealth"]),
        }
    }

    /// The disks in order.
    pub fn iter(&self) -> impl Iterator<Item = DiskHealth<'a>> + 'a {
        items(self.list)
            .filter(|v| v.as_object().is_some())
            .map(|v| DiskHealth { v })
    }
}

impl<'a> DiskHealth<'a> {
    /// Kernel name (`disk`).
    pub fn disk(&self) -> Option<JsonStr<'a>> {
        known_text(self.v.get("disk"))
    }
    /// SMART available on the device.
    pub fn smart_available(&self) -> Option<bool> {
        flag(at(Some(self.v), &["smartSupport", "available"]))
    }
    /// SMART enabled.
    pub fn smart_enabled(&self) -> Option<bool> {
        flag(at(Some(self.v), &["smartSupport", "enabled"]))
    }
    /// `smartStatus.passed`.
    pub fn passed(&self) -> Option<bool> {
        flag(at(Some(self.v), &["smartStatus", "passed"]))
    }
    /// The NVMe critical-warning bitmask (`smartStatus.nvme.value`; 0 = OK).
    pub fn nvme_critical_warning(&self) -> Option<u64> {
        count(at(Some(self.v), &["smartStatus", "nvme", "value"]))
    }
    /// Passed, failing or unknown.
    pub fn verdict(&self) -> SmartVerdict {
        verdict(self.passed(), self.nvme_critical_warning())
    }
    /// Hours powered on.
    pub fn power_on_hours(&self) -> Option<u64> {
        count(self.v.get("powerOnTime"))
    }
    /// Power cycles.
    pub fn power_cycles(&self) -> Option<u64> {
        count(self.v.get("powerCycleCount"))
    }
    /// Temperature in °C (`0` reads as unknown).
    pub fn temperature(&self) -> Option<i32> {
        celsius(self.v.get("temperature")).filter(|&t| t != 0)
    }
}

// ----- stor.diskSmart ---------------------------------------------------------

/// `stor.diskSmart`: top-level `smart`, which is `smartctl -a --json`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Smart<'a> {
    body: Option<Value<'a>>,
    smart: Option<Value<'a>>,
}

impl<'a> Smart<'a> {
    /// The view of an answer.
    pub fn from_reply(reply: &Reply<'a>) -> Self {
        let body = top(reply);
        Smart {
            body,
            smart: at(body, &["smart"]),
        }
    }

    /// The disk was asleep and the server did not wake it (a `diskStandby`
    /// marker; its exact shape is not captured, so any member of that name
    /// counts unless it is `false` or `0`).
    pub fn standby(&self) -> bool {
        let marker = at(self.body, &["diskStandby"]).or(at(self.smart, &["diskStandby"]));
        marker.is_some_and(|m| flag(Some(m)) != Some(false))
    }

    /// `device.protocol`: `ATA`, `NVMe`, `SCSI`.
    pub fn protocol(&self) -> Option<JsonStr<'a>> {
        known_text(at(self.smart, &["device", "protocol"]))
    }

    /// `model_name`.
    pub fn model(&self) -> Option<JsonStr<'a>> {
        known_text(at(self.smart, &["model_name"]))
    }

    /// `smart_status.passed`.
    pub fn passed(&self) -> Option<bool> {
        flag(at(self.smart, &["smart_status", "passed"]))
    }

    /// The NVMe critical-warning bitmask (`smart_status.nvme.value`, else
    /// the health log's `critical_warning`).
    pub fn nvme_critical_warning(&self) -> Option<u64> {
        count(at(self.smart, &["smart_status", "nvme", "value"])).or_else(|| {
            count(at(
                self.smart,
                &["nvme_smart_health_information_log", "critical_warning"],
            ))
        })
    }

    /// Passed, failing or unknown.
    pub fn verdict(&self) -> SmartVerdict {
        verdict(self.passed(), self.nvme_critical_warning())
    }

    /// Temperature in °C: `temperature.current`, else the NVMe health
    /// log's `temperature`, else ATA attribute 194 (or 190)'s raw value.
    /// Zero reads as unknown at each step.
    pub fn temperature(&self) -> Option<i32> {
        let nonzero = |t: Option<i32>| t.filter(|&t| t != 0);
        nonzero(celsius(at(self.smart, &["temperature", "current"])))
            .or_else(|| {
                nonzero(celsius(at(
                    self.smart,
                    &["nvme_smart_health_information_log", "temperature"],
                )))
            })
            .or_else(|| nonzero(self.ata_raw(194).or_else(|| self.ata_raw(190))))
    }

    /// The raw value of ATA attribute `id`, as a temperature (the low
    /// byte: the other bytes hold min/max on many drives).
    fn ata_raw(&self, id: u64) -> Option<i32> {
        let table = at(self.smart, &["ata_smart_attributes", "table"]);
        let row = items(table).find(|row| count(row.get("id")) == Some(id))?;
        let raw = count(at(Some(row), &["raw", "value"]))?;
        celsius_from_count(raw & 0xff)
    }

    /// Hours powered on.
    pub fn power_on_hours(&self) -> Option<u64> {
        count(at(self.smart, &["power_on_time", "hours"]))
    }

    /// Power cycles.
    pub fn power_cycles(&self) -> Option<u64> {
        count(at(self.smart, &["power_cycle_count"]))
    }

    /// NVMe wear, percent of rated endurance used.
    pub fn percentage_used(&self) -> Option<u64> {
        count(at(
            self.smart,
            &["nvme_smart_health_information_log", "percentage_used"],
        ))
    }

    /// NVMe media errors.
    pub fn media_errors(&self) -> Option<u64> {
        count(at(
            self.smart,
            &["nvme_smart_health_information_log", "media_errors"],
        ))
    }
}

fn celsius_from_count(n: u64) -> Option<i32> {
    i32::try_from(n).ok().filter(|t| (1..=300).contains(t))
}

/// A disk's temperature by the recommended order: the live figure
/// (`appcgi.resmon.disk`), else SMART's (see [`Smart::temperature`]).
pub fn disk_temperature(live: Option<i32>, smart: Option<&Smart<'_>>) -> Option<i32> {
    live.filter(|&t| t != 0)
        .or_else(|| smart.and_then(Smart::temperature))
}

// ----- stor.general / stor.listStor / stor.state --------------------------------

/// A pool's RAID level (`basic`, `raid0` … `raid10`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RaidLevel {
    /// One disk, no redundancy.
    Basic,
    /// Striping.
    Raid0,
    /// Mirroring.
    Raid1,
    /// Dedicated parity.
    Raid4,
    /// Distributed parity.
    Raid5,
    /// Double parity.
    Raid6,
    /// Striped mirrors.
    Raid10,
    /// Another or absent level.
    Unknown,
}

impl RaidLevel {
    fn read(v: Option<Value<'_>>) -> Self {
        let Some(s) = text(v) else {
            return RaidLevel::Unknown;
        };
        const LEVELS: [(&str, RaidLevel); 8] = [
            ("basic", RaidLevel::Basic),
            ("raid0", RaidLevel::Raid0),
            ("raid1", RaidLevel::Raid1),
            ("raid4", RaidLevel::Raid4),
            ("raid5", RaidLevel::Raid5),
            ("raid6", RaidLevel::Raid6),
            ("raid10", RaidLevel::Raid10),
            ("linear", RaidLevel::Basic),
        ];
        LEVELS
            .iter()
            .find(|(name, _)| s.eq_str(name))
            .map_or(RaidLevel::Unknown, |&(_, level)| level)
    }

    /// The level as fnOS writes it (`"?"` when unknown).
    pub fn as_str(self) -> &'static str {
        match self {
            RaidLevel::Basic => "basic",
            RaidLevel::Raid0 => "raid0",
            RaidLevel::Raid1 => "raid1",
            RaidLevel::Raid4 => "raid4",
            RaidLevel::Raid5 => "raid5",
            RaidLevel::Raid6 => "raid6",
            RaidLevel::Raid10 => "raid10",
            RaidLevel::Unknown => "?",
        }
    }
}

/// What an md array is doing (`syncAction`, as in Linux md's `sync_action`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyncAction {
    /// Nothing.
    Idle,
    /// Making a new array consistent.
    Resync,
    /// Rebuilding onto a replacement disk.
    Recover,
    /// Scrubbing (read-only check).
    Check,
    /// Scrubbing and fixing.
    Repair,
    /// Changing shape (level, disk count).
    Reshape,
    /// Sync paused.
    Frozen,
    /// Another or absent value.
    Unknown,
}

impl SyncAction {
    fn read(v: Option<Value<'_>>) -> Self {
        let Some(s) = text(v) else {
            return SyncAction::Unknown;
        };
        const ACTIONS: [(&str, SyncAction); 7] = [
            ("idle", SyncAction::Idle),
            ("resync", SyncAction::Resync),
            ("recover", SyncAction::Recover),
            ("check", SyncAction::Check),
            ("repair", SyncAction::Repair),
            ("reshape", SyncAction::Reshape),
            ("frozen", SyncAction::Frozen),
        ];
        ACTIONS
            .iter()
            .find(|(name, _)| s.eq_str(name))
            .map_or(SyncAction::Unknown, |&(_, action)| action)
    }

    /// Rebuilding data (resync, recover, reshape) rather than checking it.
    pub fn is_rebuild(self) -> bool {
        matches!(
            self,
            SyncAction::Resync | SyncAction::Recover | SyncAction::Reshape
        )
    }
}

/// Progress of a sync: `syncCompleted` = `"done / total"` (sectors).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Progress {
    /// Units done.
    pub done: u64,
    /// Units in all (never 0).
    pub total: u64,
}

impl Progress {
    /// Whole percent done, 0–100.
    pub fn percent(&self) -> u8 {
        let total = self.total.max(1);
        let done = self.done.min(total);
        // In u64 (a u128 division costs a firmware about 600 bytes): when
        // `done * 100` overflows, `total` is above 10^17 and the scaled-down
        // division loses nothing a whole percent shows.
        let p = match done.checked_mul(100) {
            Some(d) => d / total,
            None => done / (total / 100),
        };
        p.min(100) as u8
    }

    /// Parse `"123 / 456"` or `"12.5%"`; `"none"` and anything else is
    /// `None`.
    fn read(v: Option<Value<'_>>) -> Option<Self> {
        let s = text(v)?.as_unescaped()?.trim_ascii();
        if let Some(p) = s.strip_suffix('%') {
            let d = Decimal::parse(p.trim_ascii())?;
            let in_range = d.is_zero() || (!d.negative && d.within(100));
            // Only in range is `whole` at most 100: `then`, not the eager
            // `then_some`, so an out-of-range whole is never multiplied.
            return in_range.then(|| Progress {
                done: d.whole.unwrap_or(0) * 10 + u64::from(d.tenth),
                total: 1000,
            });
        }
        let (done, total) = s.split_once('/')?;
        let done = done.trim_ascii().parse().ok()?;
        let total: u64 = total.trim_ascii().parse().ok()?;
        (total > 0).then_some(Progress { done, total })
    }
}

/// A member disk's state in an md array (`arrState`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MemberState {
    /// Active and current.
    InSync,
    /// Marked faulty.
    Faulty,
    /// Being rebuilt onto.
    Rebuilding,
    /// A hot spare.
    Spare,
    /// Another or absent value.
    Unknown,
}

impl MemberState {
    fn read(v: Option<Value<'_>>) -> Self {
        match text(v) {
            Some(s) if s.eq_str("in_sync") => MemberState::InSync,
            Some(s) if s.eq_str("faulty") => MemberState::Faulty,
            Some(s) if s.eq_str("spare") => MemberState::Spare,
            Some(s) if s.eq_str("rebuilding") || s.eq_str("recovering") => MemberState::Rebuilding,
            _ => MemberState::Unknown,
        }
    }
}

/// A pool's state at a glance.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PoolState {
    /// All members in sync, nothing running.
    Normal,
    /// Members missing or faulty and no rebuild running.
    Degraded,
    /// A rebuild (resync, recover, reshape) is running.
    Rebuilding(Option<Progress>),
    /// A scrub (check, repair) is running.
    Checking(Option<Progress>),
    /// Not enough known to say.
    Unknown,
}

/// `stor.general` / `stor.listStor` (`array[]`, plus `block[]` in
/// `stor.general`) or `stor.state` (`state[]`): storage pools (volumes) and
/// their md arrays.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pools<'a> {
    list: Option<Value<'a>>,
    blocks: Option<Value<'a>>,
}

/// One pool of [`Pools`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pool<'a> {
    v: Value<'a>,
    blocks: Option<Value<'a>>,
}

/// One md array of a [`Pool`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MdArray<'a> {
    v: Value<'a>,
    blocks: Option<Value<'a>>,
}

/// One member disk of an [`MdArray`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Member<'a> {
    v: Value<'a>,
}

impl<'a> Pools<'a> {
    /// The view of an answer (or of one frame of `stor.listStor`).
    pub fn from_reply(reply: &Reply<'a>) -> Self {
        let body = top(reply);
        Pools {
            list: at(body, &["array"]).or(at(body, &["state"])),
            blocks: at(body, &["block"]),
        }
    }

    /// The pools in order.
    pub fn iter(&self) -> impl Iterator<Item = Pool<'a>> + 'a {
        let blocks = self.blocks;
        items(self.list)
            .filter(|v| v.as_object().is_some())
            .map(move |v| Pool { v, blocks })
    }
}

impl<'a> Pool<'a> {
    /// Device-mapper name (`dm-1`).
    pub fn name(&self) -> Option<JsonStr<'a>> {
        known_text(self.v.get("name"))
    }
    /// `uuid` (`trim_…-0`), for `stor.state`.
    pub fn uuid(&self) -> Option<JsonStr<'a>> {
        known_text(self.v.get("uuid"))
    }
    /// Mount point (`/vol1`).
    pub fn mountpoint(&self) -> Option<JsonStr<'a>> {
        known_text(self.v.get("mountpoint"))
    }
    /// `storId`, the N of `volN`.
    pub fn stor_id(&self) -> Option<u64> {
        count(self.v.get("storId"))
    }
    /// The user's comment.
    pub fn comment(&self) -> Option<JsonStr<'a>> {
        known_text(self.v.get("comment"))
    }
    /// RAID level of the pool.
    pub fn level(&self) -> RaidLevel {
        RaidLevel::read(self.v.get("level"))
    }
    /// Size in bytes (`fssize`).
    pub fn size(&self) -> Option<u64> {
        count(self.v.get("fssize"))
    }
    /// Free bytes (`frsize`).
    pub fn free(&self) -> Option<u64> {
        count(self.v.get("frsize"))
    }
    /// Percent used, 0–100.
    pub fn used_percent(&self) -> Option<u8> {
        used_percent(self.size()?, self.free()?)
    }
    /// The md arrays under the pool.
    pub fn arrays(&self) -> impl Iterator<Item = MdArray<'a>> + 'a {
        let blocks = self.blocks;
        items(self.v.get("md"))
            .filter(|v| v.as_object().is_some())
            .map(move |v| MdArray { v, blocks })
    }
    /// Disks a repair needs (`fixNeedDisks`, some firmware).
    pub fn fix_need_disks(&self) -> Option<u64> {
        count(self.v.get("fixNeedDisks"))
    }
    /// Degraded: the pool's own `degraded` field where the firmware sends
    /// one, else whether any md array is.
    pub fn degraded(&self) -> Option<bool> {
        if let Some(d) = flag(self.v.get("degraded")) {
            return Some(d);
        }
        let mut any = false;
        let mut unknown = false;
        for md in self.arrays() {
            match md.degraded() {
                Some(true) => any = true,
                Some(false) => {}
                None => unknown = true,
            }
        }
        if any {
            Some(true)
        } else if unknown {
            None
        } else {
            Some(false)
        }
    }
    /// The pool's state at a glance: a running sync first (with progress),
    /// then degraded, then normal.
    pub fn state(&self) -> PoolState {
        for md in self.arrays() {
            match md.sync_action() {
                a if a.is_rebuild() => return PoolState::Rebuilding(md.progress()),
                SyncAction::Check | SyncAction::Repair => {
                    return PoolState::Checking(md.progress());
                }
                _ => {}
            }
        }
        match self.degraded() {
            Some(true) => PoolState::Degraded,
            Some(false) => PoolState::Normal,
            None => PoolState::Unknown,
        }
    }
}

/// Percent used of `size` bytes with `free` left.
pub fn used_percent(size: u64, free: u64) -> Option<u8> {
    if size == 0 {
        return None;
    }
    let used = u128::from(size.saturating_sub(free));
    Some((used * 100 / u128::from(size)) as u8)
}

impl<'a> MdArray<'a> {
    /// md name (`md1`).
    pub fn name(&self) -> Option<JsonStr<'a>> {
        known_text(self.v.get("name"))
    }
    /// Member slots of the array (`raidDisks`).
    pub fn raid_disks(&self) -> Option<u64> {
        count(self.v.get("raidDisks"))
    }
    /// RAID level.
    pub fn level(&self) -> RaidLevel {
        RaidLevel::read(self.v.get("level"))
    }
    /// `arrayState` as sent (`clean`, `active`, `readonly`, …).
    pub fn array_state(&self) -> Option<JsonStr<'a>> {
        known_text(self.v.get("arrayState"))
    }
    /// `syncAction`.
    pub fn sync_action(&self) -> SyncAction {
        SyncAction::read(self.v.get("syncAction"))
    }
    /// Progress of the running sync (`syncCompleted`).
    pub fn progress(&self) -> Option<Progress> {
        Progress::read(self.v.get("syncCompleted"))
    }
    /// The member disks: the array's own `disk[]` or `arr-devices[]`, else
    /// the `arr-devices` of `stor.general`'s `block[]` entry of the same name.
    pub fn members(&self) -> impl Iterator<Item = Member<'a>> + 'a {
        let own = self.v.get("disk").or(self.v.get("arr-devices"));
        let list = own.or_else(|| {
            let name = self.name()?;
            let block = items(self.blocks).find(|b| {
                text(b.get("name")).is_some_and(|n| n == name || n.raw() == name.raw())
            })?;
            block.get("arr-devices")
        });
        items(list)
            .filter(|v| v.as_object().is_some())
            .map(|v| Member { v })
    }
    /// Degraded: its own `degraded` flag, else fewer members in sync than
    /// `raidDisks` or a faulty member; unknown without a member list.
    pub fn degraded(&self) -> Option<bool> {
        if let Some(d) = flag(self.v.get("degraded")) {
            return Some(d);
        }
        let (mut listed, mut in_sync, mut faulty) = (0u64, 0u64, false);
        for m in self.members() {
            listed += 1;
            match m.state() {
                MemberState::InSync => in_sync += 1,
                MemberState::Faulty | MemberState::Rebuilding => faulty = true,
                _ => {}
            }
        }
        if faulty {
            return Some(true);
        }
        match self.raid_disks() {
            Some(slots) if listed > 0 => Some(in_sync < slots),
            _ => None,
        }
    }
}

impl<'a> Member<'a> {
    /// Partition or disk name.
    pub fn name(&self) -> Option<JsonStr<'a>> {
        known_text(self.v.get("name"))
    }
    /// `arrSlot` (a string in captures).
    pub fn slot(&self) -> Option<u64> {
        count(self.v.get("arrSlot"))
    }
    /// `arrState`.
    pub fn state(&self) -> MemberState {
        MemberState::read(self.v.get("arrState"))
    }
}

// ----- appcgi.dockermgr.* -----------------------------------------------------

/// `State` of a container (Docker's words).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ContainerState {
    /// Running.
    Running,
    /// Stopped cleanly.
    Exited,
    /// Exited non-zero (fnOS's word; `Status` holds the code).
    Error,
    /// Paused.
    Paused,
    /// Restarting.
    Restarting,
    /// Created, never started.
    Created,
    /// Dead.
    Dead,
    /// Another or absent value.
    Unknown,
}

impl ContainerState {
    fn read(v: Option<Value<'_>>) -> Self {
        let Some(s) = text(v) else {
            return ContainerState::Unknown;
        };
        const STATES: [(&str, ContainerState); 7] = [
            ("running", ContainerState::Running),
            ("exited", ContainerState::Exited),
            ("error", ContainerState::Error),
            ("paused", ContainerState::Paused),
            ("restarting", ContainerState::Restarting),
            ("created", ContainerState::Created),
            ("dead", ContainerState::Dead),
        ];
        STATES
            .iter()
            .find(|(name, _)| s.eq_str(name))
            .map_or(ContainerState::Unknown, |&(_, state)| state)
    }
}

/// `appcgi.dockermgr.containerList`: `rsp[]`, Docker-API-like objects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Containers<'a> {
    list: Option<Value<'a>>,
}

/// One container of [`Containers`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Container<'a> {
    v: Value<'a>,
}

impl<'a> Containers<'a> {
    /// The view of an answer.
    pub fn from_reply(reply: &Reply<'a>) -> Self {
        Containers {
            list: payload(reply),
        }
    }

    /// The containers in order.
    pub fn iter(&self) -> impl Iterator<Item = Container<'a>> + 'a {
        items(self.list)
            .filter(|v| v.as_object().is_some())
            .map(|v| Container { v })
    }
}

impl<'a> Container<'a> {
    /// Full `Id`.
    pub fn id(&self) -> Option<JsonStr<'a>> {
        known_text(self.v.get("Id"))
    }
    /// `Names[0]` as sent (with Docker's leading `/`).
    pub fn raw_name(&self) -> Option<JsonStr<'a>> {
        text(items(self.v.get("Names")).next())
    }
    /// The name without the leading `/` (names with JSON escapes, which
    /// Docker names cannot contain, read as unknown).
    pub fn name(&self) -> Option<&'a str> {
        let name = self.raw_name()?.as_unescaped()?;
        Some(name.strip_prefix('/').unwrap_or(name))
    }
    /// `Image`.
    pub fn image(&self) -> Option<JsonStr<'a>> {
        known_text(self.v.get("Image"))
    }
    /// `State`.
    pub fn state(&self) -> ContainerState {
        ContainerState::read(self.v.get("State"))
    }
    /// `Status` (`Up 5 days (healthy)`, or the exit code for `error`).
    pub fn status(&self) -> Option<JsonStr<'a>> {
        known_text(self.v.get("Status"))
    }
    /// Compose project.
    pub fn project(&self) -> Option<JsonStr<'a>> {
        known_text(self.v.get("Project"))
    }
    /// Creation time, unix seconds.
    pub fn created(&self) -> Option<u64> {
        count(self.v.get("Created"))
    }
}

/// `appcgi.dockermgr.stats`: `rsp{<Id>:{cpuUsage, usedMem, networkRx,
/// networkTx}}`, running containers only.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DockerStats<'a> {
    map: Option<Value<'a>>,
}

/// One container's figures of [`DockerStats`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ContainerStats<'a> {
    id: JsonStr<'a>,
    v: Value<'a>,
}

impl<'a> DockerStats<'a> {
    /// The view of an answer.
    pub fn from_reply(reply: &Reply<'a>) -> Self {
        DockerStats {
            map: payload(reply),
        }
    }

    /// Every container's figures.
    pub fn iter(&self) -> impl Iterator<Item = ContainerStats<'a>> + 'a {
        let entries: ObjectIter<'a> = self.map.unwrap_or(Value::EMPTY_OBJECT).entries();
        entries
            .filter(|(_, v)| v.as_object().is_some())
            .map(|(id, v)| ContainerStats { id, v })
    }

    /// The figures of the container with this `Id`.
    pub fn get(&self, id: &str) -> Option<ContainerStats<'a>> {
        self.iter().find(|s| s.id.eq_str(id))
    }
}

impl<'a> ContainerStats<'a> {
    /// The container's `Id`.
    pub fn id(&self) -> JsonStr<'a> {
        self.id
    }
    /// `cpuUsage` as sent (scale unverified; most likely a 0–1 fraction).
    pub fn cpu_usage(&self) -> Option<f64> {
        float(self.v.get("cpuUsage"))
    }
    /// Memory in use, bytes.
    pub fn memory(&self) -> Option<u64> {
        count(self.v.get("usedMem"))
    }
    /// `networkRx` (bytes; rate or counter unverified).
    pub fn network_rx(&self) -> Option<u64> {
        count(self.v.get("networkRx"))
    }
    /// `networkTx`.
    pub fn network_tx(&self) -> Option<u64> {
        count(self.v.get("networkTx"))
    }
}

// ----- appcgi.sac.ups.v1.status -----------------------------------------------

/// `appcgi.sac.ups.v1.status`: `data{upsEnabled, upsTypeName,
/// currentUps{name, status, batteryCharge, runtime, powerSupplyType, …}}`.
/// Battery values are strings (NUT style).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ups<'a> {
    data: Option<Value<'a>>,
}

impl<'a> Ups<'a> {
    /// The view of an answer.
    pub fn from_reply(reply: &Reply<'a>) -> Self {
        Ups {
            data: payload(reply),
        }
    }

    fn current(&self, key: &str) -> Option<Value<'a>> {
        at(self.data, &["currentUps", key])
    }

    /// UPS support switched on.
    pub fn enabled(&self) -> Option<bool> {
        flag(at(self.data, &["upsEnabled"]))
    }
    /// Connection type (`upsTypeName`: USB, network…).
    pub fn type_name(&self) -> Option<JsonStr<'a>> {
        known_text(at(self.data, &["upsTypeName"]))
    }
    /// A UPS is attached and answering (`currentUps.status`).
    pub fn connected(&self) -> Option<bool> {
        flag(self.current("status"))
    }
    /// UPS model (`currentUps.product`, else `name`).
    pub fn model(&self) -> Option<JsonStr<'a>> {
        known_text(self.current("product")).or_else(|| known_text(self.current("name")))
    }
    /// Battery charge, percent.
    pub fn battery_percent(&self) -> Option<u8> {
        percent(self.current("batteryCharge"))
    }
    /// Runtime left on battery, seconds.
    pub fn runtime_secs(&self) -> Option<u64> {
        count(self.current("runtime"))
    }
    /// `powerSupplyType` as sent.
    pub fn power_supply(&self) -> Option<JsonStr<'a>> {
        known_text(self.current("powerSupplyType"))
    }
    /// Running on battery. The values of `powerSupplyType` are not
    /// captured; NUT's status words are read: `OB`/`battery` (on
    /// battery), `OL`/`ac`/`line`/`mains`/`utility` (on line). Unknown
    /// without an attached UPS.
    pub fn on_battery(&self) -> Option<bool> {
        if self.enabled() == Some(false) || self.connected() == Some(false) {
            return None;
        }
        let supply = self.power_supply()?;
        let word = |w: &str| supply.eq_str(w) || supply.starts_with(w);
        if ["OB", "battery", "Battery", "BATTERY"]
            .iter()
            .any(|w| word(w))
        {
            Some(true)
        } else if ["OL", "ac", "AC", "line", "mains", "utility", "Utility"]
            .iter()
            .any(|w| word(w))
        {
            Some(false)
        } else {
            None
        }
    }
}

// ----- notify.unreadTotal -----------------------------------------------------

/// `notify.unreadTotal`: the count of unread notifications.
pub fn unread_total(reply: &Reply<'_>) -> Option<u64> {
    count(reply.get("unreadTotal"))
}

// ----- appcgi.resmon.sysWarn --------------------------------------------------

/// `appcgi.resmon.sysWarn`: system warnings. No answer of this command has
/// been captured, so the view reads the likely shapes: `data` as a list,
/// or an object with a list (`list`, `warn`, `warnings`, `items`) and/or a
/// count (`total`, `count`, `num`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SysWarn<'a> {
    data: Option<Value<'a>>,
}

/// One warning of [`SysWarn`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Warning<'a> {
    v: Value<'a>,
}

const WARN_LISTS: [&str; 4] = ["list", "warn", "warnings", "items"];

impl<'a> SysWarn<'a> {
    /// The view of an answer.
    pub fn from_reply(reply: &Reply<'a>) -> Self {
        SysWarn {
            data: payload(reply),
        }
    }

    fn list(&self) -> Option<Value<'a>> {
        let data = self.data?;
        if data.as_array().is_some() {
            return Some(data);
        }
        WARN_LISTS
            .iter()
            .find_map(|k| data.get(k).filter(|v| v.as_array().is_some()))
    }

    /// How many warnings: a stated count, else the list's length.
    pub fn count(&self) -> Option<u64> {
        ["total", "count", "num"]
            .iter()
            .find_map(|k| count(at(self.data, &[k])))
            .or_else(|| self.list().map(|l| l.items().count() as u64))
    }

    /// The warnings listed.
    pub fn iter(&self) -> impl Iterator<Item = Warning<'a>> + 'a {
        items(self.list()).map(|v| Warning { v })
    }
}

impl<'a> Warning<'a> {
    /// The warning's text (`msg`, `content`, `title` or `reason`), or the
    /// element itself when it is a string.
    pub fn text(&self) -> Option<JsonStr<'a>> {
        self.v.as_str().or_else(|| {
            ["msg", "content", "title", "reason"]
                .iter()
                .find_map(|k| known_text(self.v.get(k)))
        })
    }
    /// `level`, where sent.
    pub fn level(&self) -> Option<u64> {
        count(self.v.get("level"))
    }
}

// ----- appcgi.sysinfo.getHardwareInfo -----------------------------------------

/// `appcgi.sysinfo.getHardwareInfo`: `data{cpu, mem, gpu[], bios{…},
/// sysdisk}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HardwareInfo<'a> {
    data: Option<Value<'a>>,
}

impl<'a> HardwareInfo<'a> {
    /// The view of an answer.
    pub fn from_reply(reply: &Reply<'a>) -> Self {
        HardwareInfo {
            data: payload(reply),
        }
    }

    /// CPU model.
    pub fn cpu_name(&self) -> Option<JsonStr<'a>> {
        known_text(at(self.data, &["cpu", "name"]))
    }
    /// CPU cores.
    pub fn cpu_cores(&self) -> Option<u64> {
        count(at(self.data, &["cpu", "core"]))
    }
    /// CPU threads.
    pub fn cpu_threads(&self) -> Option<u64> {
        count(at(self.data, &["cpu", "thread"]))
    }
    /// Memory in bytes.
    pub fn memory(&self) -> Option<u64> {
        count(at(self.data, &["mem", "total"]))
    }
    /// Memory type (`DDR4`).
    pub fn memory_type(&self) -> Option<JsonStr<'a>> {
        known_text(at(self.data, &["mem", "type"]))
    }
    /// Memory clock, MHz.
    pub fn memory_mhz(&self) -> Option<u64> {
        count(at(self.data, &["mem", "frequency"]))
    }
    /// GPU models (`gpu[].device`).
    pub fn gpus(&self) -> impl Iterator<Item = JsonStr<'a>> + 'a {
        items(at(self.data, &["gpu"])).filter_map(|g| known_text(g.get("device")))
    }
    /// Machine model (`bios.system.productName`, else the baseboard's).
    pub fn product(&self) -> Option<JsonStr<'a>> {
        known_text(at(self.data, &["bios", "system", "productName"]))
            .or_else(|| known_text(at(self.data, &["bios", "baseboard", "productName"])))
    }
    /// BIOS vendor.
    pub fn bios_vendor(&self) -> Option<JsonStr<'a>> {
        known_text(at(self.data, &["bios", "vendor"]))
    }
    /// BIOS version.
    pub fn bios_version(&self) -> Option<JsonStr<'a>> {
        known_text(at(self.data, &["bios", "version"]))
    }
    /// System disk model.
    pub fn system_disk(&self) -> Option<JsonStr<'a>> {
        known_text(at(self.data, &["sysdisk", "model"]))
    }
}

// ----- long operations --------------------------------------------------------

/// An intermediate `result:"doing"` frame of a long command
/// (`appcgi.finder.fileSearch`, log copies): the request is still running.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DoingFrame<'a> {
    reply: Reply<'a>,
}

impl<'a> DoingFrame<'a> {
    /// The frame, if `reply` is one (`result` is `"doing"`).
    pub fn from_reply(reply: &Reply<'a>) -> Option<Self> {
        let doing = text(reply.get("result")).is_some_and(|r| r.eq_str("doing"));
        doing.then_some(DoingFrame { reply: *reply })
    }

    /// Percent done, where the frame says (`percent` or `progress`, at the
    /// top level or in `data`).
    pub fn percent(&self) -> Option<u8> {
        let data = self.reply.data();
        ["percent", "progress"]
            .iter()
            .find_map(|k| percent(self.reply.get(k)).or_else(|| percent(at(data, &[k]))))
    }

    /// The payload carried so far (`data`), if any.
    pub fn data(&self) -> Option<Value<'a>> {
        self.reply.data()
    }
}

/// How a long command's final frame ended (`result`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TaskOutcome {
    /// `succ`.
    Succeeded,
    /// `fail`, or any `errno`.
    Failed,
    /// `cancel`.
    Cancelled,
    /// Not final yet (no `result`, or `doing`).
    Running,
}

/// The outcome of a reply frame of a long command.
pub fn task_outcome(reply: &Reply<'_>) -> TaskOutcome {
    if text(reply.get("result")).is_some_and(|r| r.eq_str("cancel")) {
        return TaskOutcome::Cancelled;
    }
    match reply.status() {
        Status::Partial => TaskOutcome::Running,
        Status::Success => TaskOutcome::Succeeded,
        Status::Failure(_) => TaskOutcome::Failed,
    }
}

/// A `sysNotify` task frame: `taskId` (the command became a task) or
/// `taskInfo` (its progress: `percent`, `size`, `sizeTotal`, `speed`,
/// `time`, read at the top level or inside a `taskInfo` object, whose
/// exact nesting is not captured).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TaskFrame<'a> {
    body: Value<'a>,
    info: bool,
}

impl<'a> TaskFrame<'a> {
    /// The frame, if `push` is one.
    pub fn from_push(push: &Push<'a>) -> Option<Self> {
        match push {
            Push::TaskId { body, .. } => Some(TaskFrame {
                body: body.as_value(),
                info: false,
            }),
            Push::TaskInfo { body, .. } => Some(TaskFrame {
                body: body.as_value(),
                info: true,
            }),
            _ => None,
        }
    }

    /// A progress frame (`taskInfo`) rather than the first (`taskId`).
    pub fn is_progress(&self) -> bool {
        self.info
    }

    fn field(&self, key: &str) -> Option<Value<'a>> {
        self.body
            .get(key)
            .or_else(|| at(Some(self.body), &["taskInfo", key]))
    }

    /// The task id as sent (a string or a number).
    pub fn task_id(&self) -> Option<Value<'a>> {
        self.field("taskId")
    }
    /// The reqid of the command that started the task.
    pub fn reqid(&self) -> Option<JsonStr<'a>> {
        text(self.body.get("reqid"))
    }
    /// Percent done.
    pub fn percent(&self) -> Option<u8> {
        percent(self.field("percent"))
    }
    /// Bytes done.
    pub fn size(&self) -> Option<u64> {
        count(self.field("size"))
    }
    /// Bytes in all.
    pub fn size_total(&self) -> Option<u64> {
        count(self.field("sizeTotal"))
    }
    /// Speed as sent (bytes/s presumably).
    pub fn speed(&self) -> Option<u64> {
        count(self.field("speed"))
    }
    /// `time` as sent.
    pub fn time(&self) -> Option<u64> {
        count(self.field("time"))
    }
}

#[cfg(test)]
mod decimal_tests {
    extern crate std;
    use super::*;
    use proptest::prelude::*;

    /// The float readings these replace, as references.
    fn celsius_f(text: &str) -> Option<i32> {
        let f: f64 = text.parse().ok().filter(|f: &f64| f.is_finite())?;
        let rounded = if f < 0.0 { f - 0.5 } else { f + 0.5 };
        (-100.0..=300.0).contains(&f).then_some(rounded as i32)
    }

    fn percent_f(text: &str) -> Option<u8> {
        let f: f64 = text.parse().ok().filter(|f: &f64| f.is_finite())?;
        Some(if f < 0.0 { 0.0 } else { f.min(100.0) } as u8)
    }

    fn count_f(text: &str) -> Option<u64> {
        let f: f64 = text.parse().ok()?;
        (0.0..1.8e19).contains(&f).then_some(f as u64)
    }

    fn value(text: &str) -> heapless::String<64> {
        let mut s = heapless::String::new();
        core::fmt::write(&mut s, format_args!("\"{text}\"")).unwrap();
        s
    }

    fn read<T>(text: &str, f: fn(Option<Value<'_>>) -> T) -> T {
        let json = value(text);
        let v = crate::json::Value::parse(json.as_bytes()).ok();
        f(v)
    }

    #[test]
    fn decimal_reads_the_float_forms() {
        let d = |t| Decimal::parse(t);
        assert_eq!(
            d("-12.56"),
            Some(Decimal {
                negative: true,
                whole: Some(12),
                tenth: 5,
                rest: true
            })
        );
        assert_eq!(d("1.5e2").unwrap().whole, Some(150));
        assert_eq!(d("15e-1").unwrap().whole, Some(1));
        assert_eq!(d("15e-1").unwrap().tenth, 5);
        assert_eq!(d(".5").unwrap().tenth, 5);
        assert_eq!(d("7.").unwrap().whole, Some(7));
        assert_eq!(d("1e400").unwrap().whole, None);
        assert!(d("0e400").unwrap().is_zero());
        assert_eq!(d("99999999999999999999").unwrap().whole, None);
        for bad in [
            "", ".", "-", "e5", "1e", "1e+", "1.2.3", "0x10", "inf", "NaN", " 1",
        ] {
            assert_eq!(d(bad), None, "{bad:?}");
        }
        assert_eq!(read("36.6", celsius), Some(37));
        assert_eq!(read("-0.5", celsius), Some(-1));
        assert_eq!(read("300.1", celsius), None);
        assert_eq!(read("42.9", percent), Some(42));
        assert_eq!(read("-3", percent), Some(0));
        assert_eq!(read("1e3", percent), Some(100));
        assert_eq!(read("12.9", count), Some(12));
        assert_eq!(read("-0.1", count), None);
    }

    proptest! {
        /// Numbers of up to 15 significant digits (exact in an f64) read
        /// as the float parser read them.
        #[test]
        fn decimal_agrees_with_the_float_reading(
            negative in any::<bool>(),
            int in "[0-9]{0,8}",
            frac in "[0-9]{0,6}",
            exp in proptest::option::of(-12i32..12),
        ) {
            prop_assume!(!(int.is_empty() && frac.is_empty()));
            let mut text = std::string::String::new();
            if negative { text.push('-'); }
            text.push_str(&int);
            if !frac.is_empty() { text.push('.'); text.push_str(&frac); }
            if let Some(e) = exp { text.push_str(&std::format!("e{e}")); }
            prop_assert_eq!(read(&text, celsius), celsius_f(&text), "{}", text);
            prop_assert_eq!(read(&text, percent), percent_f(&text), "{}", text);
            // Beyond 2^53 the float reading itself is off by rounding.
            let f: f64 = text.parse().unwrap();
            if f.abs() < 9e15 {
                prop_assert_eq!(read(&text, count), count_f(&text), "{}", text);
            }
        }

        /// Any text: no panic.
        #[test]
        fn decimal_never_panics(text in "\\PC{0,24}") {
            let _ = Decimal::parse(&text);
        }
    }
}
