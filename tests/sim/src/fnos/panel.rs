//! The front panel's commands (`shared/protocol/fnos-panel.md`), answered in
//! the captured shapes, and the [`Health`] knobs that make the emulated NAS
//! unhealthy.
//!
//! The machine: vol1 is `dm-0`, a RAID1 (`md0`) of the HDDs `sda` and
//! `sdb`; vol2 is `dm-1`, a basic volume (`md1`) on the NVMe SSD
//! `nvme0n1`. Two containers run (`jellyfin`, `nextcloud`).
//!
//! Shapes not captured from a real NAS are this emulator's guesses, named
//! here so a test does not take them for facts: a degraded or rebuilding
//! pool (Linux md words: `syncAction:"recover"`, `syncCompleted:"done /
//! total"`, the new disk `arrState:"spare"` while it is rebuilt, a missing
//! disk simply absent), a UPS on battery (`powerSupplyType:"battery"`, else
//! `"ac"`; NUT-style strings for charge and runtime), and
//! `appcgi.resmon.sysWarn` (`data{total, warn[{level, type, msg}]}`).
//! `appcgi.finder.fileSearch` streams `result:"doing"` frames with
//! `percent` before its final answer; with [`Config::task_frames`](super::Config::task_frames)
//! `file.rm` sends `sysNotify` `taskId` and `taskInfo` frames first.

use serde_json::{Value, json};

use super::figures::Figures;
use super::handlers::{Request, appcgi, fail_msg, multi_frame, succ, volumes};
use super::state::{Login, Shared};
use super::{ERRNO_BAD_PARAMETER, Health, PoolCondition, UpsCondition};

/// Sectors of md0, for `syncCompleted` while it rebuilds.
const MD0_SECTORS: u64 = 7_813_771_264;

/// The disks: (name, model, serial, size, type, protocol, pool).
const DISKS: [(&str, &str, &str, u64, &str, &str, &str); 3] = [
    (
        "nvme0n1",
        "Samsung SSD 980 1TB",
        "S64ANS0T5*****",
        1_000_204_886_016,
        "SSD",
        "NVMe",
        "dm-1",
    ),
    (
        "sda",
        "WDC WD40EFPX-68C6CN0",
        "WD-WX12D*****",
        4_000_787_030_016,
        "HDD",
        "SATA",
        "dm-0",
    ),
    (
        "sdb",
        "WDC WD40EFPX-68C6CN0",
        "WD-WX22D*****",
        4_000_787_030_016,
        "HDD",
        "SATA",
        "dm-0",
    ),
];

/// Commands this module answers (all admin-only but `notify.unreadTotal`,
/// `appcgi.sac.ups.v1.status` and `appcgi.sysinfo.getHardwareInfo`).
pub fn admin_only(req: &str) -> bool {
    req.starts_with("appcgi.dockermgr.")
        || matches!(
            req,
            "stor.general"
                | "stor.listStor"
                | "stor.state"
                | "stor.diskHealth"
                | "stor.diskSmart"
                | "appcgi.resmon.sysWarn"
        )
}

/// The answer to `req`, if it is a panel command.
pub fn dispatch(
    shared: &Shared,
    login: &Login,
    req: &str,
    request: &Request,
) -> Option<Vec<Value>> {
    let reqid = request.get("reqid");
    let health = shared.health();
    let figures = Figures::at(shared.started.elapsed().as_secs_f64());
    let one = |frame| Some(vec![frame]);
    match req {
        "appcgi.resmon.cpu" => one(appcgi(req, reqid, cpu(&figures, &health))),
        "appcgi.resmon.gpu" => one(appcgi(req, reqid, gpu(&figures))),
        "appcgi.resmon.disk" => one(appcgi(req, reqid, resmon_disk(&figures, &health))),
        "appcgi.resmon.sysWarn" => one(appcgi(req, reqid, sys_warn(&health))),
        "appcgi.sysinfo.getHardwareInfo" => one(appcgi(req, reqid, hardware())),
        "stor.listDisk" => {
            let frames = DISKS
                .iter()
                .map(|d| json!({"disk": [list_disk_entry(d)]}))
                .collect();
            Some(multi_frame(reqid, frames))
        }
        "stor.diskHealth" => one(succ(
            reqid,
            json!({"diskHealth": disk_health(&figures, &health, request)}),
        )),
        "stor.diskSmart" => one(disk_smart(&figures, &health, request)),
        "stor.general" => {
            let (mut array, block) = pools(shared, login, &health);
            // Here the members are in `block[]` only, as captured.
            for pool in &mut array {
                for md in pool["md"].as_array_mut().into_iter().flatten() {
                    if let Some(md) = md.as_object_mut() {
                        md.remove("disk");
                    }
                }
            }
            one(succ(reqid, json!({"array": array, "block": block})))
        }
        "stor.listStor" => {
            let (array, _) = pools(shared, login, &health);
            let frames = array.into_iter().map(|a| json!({"array": [a]})).collect();
            Some(multi_frame(reqid, frames))
        }
        "stor.state" => {
            let (array, _) = pools(shared, login, &health);
            let wanted: Vec<&str> = request
                .get("name")
                .and_then(Value::as_array)
                .map(|names| names.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            let state: Vec<Value> = array
                .into_iter()
                .filter(|a| wanted.is_empty() || wanted.iter().any(|w| a["name"] == *w))
                .collect();
            one(succ(reqid, json!({"state": state})))
        }
        "appcgi.dockermgr.containerList" => {
            let all = request.get("all").and_then(Value::as_bool).unwrap_or(false);
            one(dockermgr(reqid, containers(&health, all)))
        }
        "appcgi.dockermgr.stats" => one(dockermgr(reqid, docker_stats(&figures, &health))),
        "appcgi.sac.ups.v1.status" => {
            // `appcgi.sac.*.v1.*` answers carry no `rev`/`req`.
            one(succ(reqid, json!({"data": ups(&health)})))
        }
        "notify.unreadTotal" => one(succ(reqid, json!({"unreadTotal": health.unread_warnings}))),
        "appcgi.finder.fileSearch" => Some(file_search(reqid, request)),
        _ => None,
    }
}

fn dockermgr(reqid: Option<&Value>, rsp: Value) -> Value {
    succ(reqid, json!({ "rsp": rsp }))
}

fn cpu(f: &Figures, health: &Health) -> Value {
    let busy = f.cpu_busy;
    let temp = health.cpu_temperature.unwrap_or(f.disk_temp + 8);
    let load = f64::from(busy) / 25.0;
    json!({"cpu": {
        "name": "Intel(R) Celeron(R) N5105 @ 2.00GHz",
        "num": 1, "core": 4, "thread": 4, "maxFreq": 2900.0,
        "temp": [temp],
        "busy": {"all": busy, "user": busy * 2 / 3, "system": busy / 3, "iowait": 1, "other": 0},
        "loadavg": {"avg1min": load, "avg5min": load * 0.8, "avg15min": load * 0.6},
    }})
}

fn gpu(f: &Figures) -> Value {
    let total: u64 = 2 << 30;
    let used: u64 = 17_502_208;
    json!({"num": 1, "gpu": [{
        "index": 1, "vendor": "Intel Corporation", "vendorId": 32902,
        "device": "JasperLake [UHD Graphics]", "deviceId": 19937, "subDeviceId": 0,
        "busy": f.cpu_busy / 10,
        "ram": {"total": total, "used": used, "free": total - used},
        "temp": f.disk_temp + 6, "engine": {"encoder": 0},
    }]})
}

/// The temperature of `disk` now: the hot-disk knob heats `sda`.
fn disk_temp(f: &Figures, health: &Health, disk: &str) -> u32 {
    match disk {
        "nvme0n1" => f.disk_temp + 4,
        "sda" => health.hot_disk.unwrap_or(f.disk_temp),
        _ => f.disk_temp - 2,
    }
}

fn resmon_disk(f: &Figures, health: &Health) -> Value {
    let disks: Vec<Value> = DISKS
        .iter()
        .map(|&(name, ..)| {
            let (busy, read, write) = match name {
                "nvme0n1" => (f.cpu_busy / 4, f.store_read, f.store_write),
                "sda" => (f.cpu_busy / 8, f.store_read / 3, f.store_write / 2),
                _ => (0, 0, 0),
            };
            json!({"name": name, "temp": disk_temp(f, health, name), "standby": false,
                   "busy": busy, "read": read, "write": write})
        })
        .collect();
    json!({"num": disks.len(), "disk": disks})
}

fn list_disk_entry(
    &(name, model, serial, size, kind, protocol, pool): &(&str, &str, &str, u64, &str, &str, &str),
) -> Value {
    let level = if pool == "dm-0" { "raid1" } else { "basic" };
    let stor_id = if pool == "dm-0" { 1 } else { 2 };
    let mut disk = json!({
        "name": name, "size": size, "modelName": model, "serialNumber": serial,
        "type": kind, "protocol": protocol, "logicalBlockSize": 4096,
        "diskGroup": kind, "diskGroupEx": kind,
        "storage": [{"arrState": "in_sync", "storUuid": format!("trim_sim{stor_id}-0"),
                     "storId": stor_id, "storName": pool, "level": level}],
    });
    if kind == "HDD" {
        disk["rotationRate"] = json!(5400);
    }
    disk
}

fn failing(health: &Health, disk: &str) -> bool {
    health.failing_disk && disk == "sdb"
}

fn disk_health(f: &Figures, health: &Health, request: &Request) -> Vec<Value> {
    let wanted: Vec<&str> = request
        .get("disks")
        .and_then(Value::as_array)
        .map(|d| d.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    DISKS
        .iter()
        .filter(|(name, ..)| wanted.is_empty() || wanted.contains(name))
        .map(|&(name, ..)| {
            let mut status = json!({"passed": !failing(health, name)});
            if name.starts_with("nvme") {
                status["nvme"] = json!({"value": 0});
            }
            json!({"disk": name, "smartSupport": {"available": true, "enabled": true},
                   "smartStatus": status, "powerOnTime": 8904, "powerCycleCount": 154,
                   "temperature": disk_temp(f, health, name)})
        })
        .collect()
}

fn disk_smart(f: &Figures, health: &Health, request: &Request) -> Value {
    let reqid = request.get("reqid");
    let Some(name) = request.get("disk").and_then(Value::as_str) else {
        return fail_msg(reqid, ERRNO_BAD_PARAMETER, "`disk` missing");
    };
    let Some(&(_, model, serial, size, ..)) = DISKS.iter().find(|d| d.0 == name) else {
        return fail_msg(reqid, ERRNO_BAD_PARAMETER, "no such disk");
    };
    let temp = disk_temp(f, health, name);
    let passed = !failing(health, name);
    let argv = json!([
        "smartctl",
        "-a",
        "--json",
        format!("/dev/{name}"),
        "--nocheck=standby"
    ]);
    let smart = if name.starts_with("nvme") {
        json!({
            "smartctl": {"version": [7, 3], "argv": argv, "exit_status": 0},
            "device": {"name": format!("/dev/{name}"), "type": "nvme", "protocol": "NVMe"},
            "model_name": model, "serial_number": serial, "nvme_total_capacity": size,
            "smart_status": {"passed": passed, "nvme": {"value": 0}},
            "nvme_smart_health_information_log": {
                "critical_warning": 0, "temperature": temp, "available_spare": 100,
                "available_spare_threshold": 10, "percentage_used": 3, "power_on_hours": 2772,
                "unsafe_shutdowns": 12, "media_errors": 0, "num_err_log_entries": 0,
            },
            "temperature": {"current": temp},
            "power_on_time": {"hours": 2772}, "power_cycle_count": 62,
        })
    } else {
        let reallocated: u64 = if passed { 0 } else { 1904 };
        let exit_status = if passed { 0 } else { 8 };
        json!({
            "smartctl": {"version": [7, 3], "argv": argv, "exit_status": exit_status},
            "device": {"name": format!("/dev/{name}"), "type": "sat", "protocol": "ATA"},
            "model_family": "Western Digital Red Plus", "model_name": model,
            "serial_number": serial, "user_capacity": {"blocks": size / 512, "bytes": size},
            "rotation_rate": 5400,
            "smart_status": {"passed": passed},
            "ata_smart_attributes": {"revision": 16, "table": [
                {"id": 5, "name": "Reallocated_Sector_Ct", "value": if passed { 200 } else { 3 },
                 "worst": if passed { 200 } else { 3 }, "thresh": 140,
                 "when_failed": if passed { "" } else { "now" },
                 "raw": {"value": reallocated, "string": reallocated.to_string()}},
                {"id": 194, "name": "Temperature_Celsius", "value": 114, "worst": 100, "thresh": 0,
                 "when_failed": "", "raw": {"value": temp, "string": format!("{temp}")}},
            ]},
            "temperature": {"current": temp},
            "power_on_time": {"hours": 8642}, "power_cycle_count": 446,
        })
    };
    succ(reqid, json!({ "smart": smart }))
}

/// `array[]` and `block[]` as `stor.general` has them; `stor.listStor`
/// and `stor.state` carry the members in each md's `disk[]` too.
fn pools(shared: &Shared, login: &Login, health: &Health) -> (Vec<Value>, Vec<Value>) {
    let vols = volumes(shared, login.uid, health);
    let space = |id: u64| {
        vols.iter()
            .find(|v| v["id"] == id)
            .map(|v| (v["fssize"].clone(), v["frsize"].clone()))
            .unwrap_or((json!(0), json!(0)))
    };
    let (sync_action, sync_completed, members) = match health.pool {
        PoolCondition::Healthy => (
            "idle",
            "none".to_owned(),
            vec![("sda", "0", "in_sync"), ("sdb", "1", "in_sync")],
        ),
        PoolCondition::Degraded => ("idle", "none".to_owned(), vec![("sda", "0", "in_sync")]),
        PoolCondition::Rebuilding { percent } => {
            let done = (MD0_SECTORS * u64::from(percent.min(100))).div_ceil(100);
            (
                "recover",
                format!("{done} / {MD0_SECTORS}"),
                vec![("sda", "0", "in_sync"), ("sdb", "1", "spare")],
            )
        }
    };
    let array_state = if health.pool == PoolCondition::Healthy {
        "clean"
    } else {
        "active"
    };
    let member_json = |list: &[(&str, &str, &str)]| -> Vec<Value> {
        list.iter()
            .map(|(name, slot, state)| {
                json!({"name": format!("{name}1"), "arrSlot": slot, "arrState": state})
            })
            .collect()
    };
    let md0 = json!({"name": "md0", "uuid": "5d7e2f0a-sim0", "raidDisks": 2, "level": "raid1",
                     "arrayState": array_state, "syncAction": sync_action,
                     "syncCompleted": sync_completed, "disk": member_json(&members)});
    let md1 = json!({"name": "md1", "uuid": "8c1b9e44-sim1", "raidDisks": 1, "level": "raid1",
                     "arrayState": "clean", "syncAction": "idle", "syncCompleted": "none",
                     "disk": member_json(&[("nvme0n1p", "0", "in_sync")])});
    let (fs0, fr0) = space(1);
    let (fs1, fr1) = space(2);
    let array = vec![
        json!({"name": "dm-0", "uuid": "trim_sim1-0", "mountpoint": "/vol1",
               "frsize": fr0, "fssize": fs0, "md": [md0.clone()], "level": "raid1",
               "storId": 1, "comment": "Storage"}),
        json!({"name": "dm-1", "uuid": "trim_sim2-0", "mountpoint": "/vol2",
               "frsize": fr1, "fssize": fs1, "md": [md1.clone()], "level": "basic",
               "storId": 2, "comment": "Fast"}),
    ];
    let mut block: Vec<Value> = [(&md0, "dm-0"), (&md1, "dm-1")]
        .iter()
        .map(|(md, holder)| {
            let mut entry = (*md).clone();
            if let Some(map) = entry.as_object_mut() {
                let devices = map.remove("disk").unwrap_or(json!([]));
                map.insert("arr-devices".into(), devices);
                map.insert("holders".into(), json!([holder]));
            }
            entry
        })
        .collect();
    block.extend(
        DISKS
            .iter()
            .map(|&(name, model, _, size, kind, protocol, _)| {
                json!({"name": name, "modelName": model, "type": kind, "protocol": protocol,
               "size": size, "partitions": [{"no": 1, "name": format!("{name}1")}]})
            }),
    );
    (array, block)
}

fn containers(health: &Health, all: bool) -> Value {
    let nextcloud_running = !health.stopped_container;
    let mut list = vec![json!({
        "Id": "8345185c1f0b7d2e9a4c6b1e3f5a7d9c0b2e4f6a8c1d3e5f7a9b0c2d4e6f8a1b",
        "Names": ["/jellyfin"], "Image": "jellyfin/jellyfin:10.10",
        "State": "running", "Status": "Up 5 days (healthy)", "Created": 1_768_044_861u64,
        "Project": "media", "Icon": "", "HostConfig": {"NetworkMode": "media_default"},
        "Ports": [{"PublicPort": 8096, "PrivatePort": 8096, "Type": "tcp", "IP": "0.0.0.0"}],
    })];
    let nextcloud = if nextcloud_running {
        json!({"State": "running", "Status": "Up 2 hours"})
    } else {
        json!({"State": "exited", "Status": "Exited (137) 2 minutes ago"})
    };
    let mut entry = json!({
        "Id": "73408a9b2c4d6e8f0a1b3c5d7e9f1a2b4c6d8e0f2a4b6c8d0e2f4a6b8c0d2e4f",
        "Names": ["/nextcloud"], "Image": "nextcloud:30-apache", "Created": 1_768_100_000u64,
        "Project": "cloud", "Icon": "", "HostConfig": {"NetworkMode": "cloud_default"}, "Ports": [],
    });
    if let (Some(map), Some(state)) = (entry.as_object_mut(), nextcloud.as_object()) {
        map.extend(state.clone());
    }
    if all || nextcloud_running {
        list.push(entry);
    }
    Value::Array(list)
}

fn docker_stats(f: &Figures, health: &Health) -> Value {
    let mut rsp = serde_json::Map::new();
    rsp.insert(
        "8345185c1f0b7d2e9a4c6b1e3f5a7d9c0b2e4f6a8c1d3e5f7a9b0c2d4e6f8a1b".into(),
        json!({"cpuUsage": f64::from(f.cpu_busy) / 400.0, "usedMem": 259_833_856u64,
               "networkRx": 0, "networkTx": 0}),
    );
    if !health.stopped_container {
        rsp.insert(
            "73408a9b2c4d6e8f0a1b3c5d7e9f1a2b4c6d8e0f2a4b6c8d0e2f4a6b8c0d2e4f".into(),
            json!({"cpuUsage": 0.002, "usedMem": 412_000_256u64, "networkRx": 0, "networkTx": 0}),
        );
    }
    Value::Object(rsp)
}

fn ups(health: &Health) -> Value {
    let (enabled, charge, supply, runtime) = match health.ups {
        UpsCondition::Absent => {
            return json!({"upsEnabled": false, "upsType": "", "upsTypeName": "",
                "shutdownUpsEnabled": false,
                "currentUps": {"name": "", "vendor": "", "product": "", "vendorId": "",
                    "productId": "", "status": false, "batteryCharge": "", "powerSupplyType": "",
                    "runtime": "", "shutdownPolicyType": "", "shutdownPolicyOnBattValue": 0,
                    "shutdownPolicyLowBattValue": 0, "shutdownPolicyUnit": "", "batteryCapacity": ""}});
        }
        UpsCondition::Online { charge } => (true, charge, "ac", 2400u32),
        UpsCondition::OnBattery { charge } => (true, charge, "battery", 24 * u32::from(charge)),
    };
    json!({"upsEnabled": enabled, "upsType": "usb", "upsTypeName": "USB",
        "shutdownUpsEnabled": true,
        "currentUps": {"name": "ups", "vendor": "American Power Conversion", "product": "Back-UPS ES 700G",
            "vendorId": "051d", "productId": "0002", "status": true,
            "batteryCharge": charge.to_string(), "powerSupplyType": supply,
            "runtime": runtime.to_string(), "shutdownPolicyType": "lowBattery",
            "shutdownPolicyOnBattValue": 0, "shutdownPolicyLowBattValue": 20,
            "shutdownPolicyUnit": "%", "batteryCapacity": "100"}})
}

fn sys_warn(health: &Health) -> Value {
    let warn: Vec<Value> = (0..health.unread_warnings)
        .map(|i| {
            json!({"level": 2, "type": "sim", "msg": format!("emulated system warning {}", i + 1)})
        })
        .collect();
    json!({"total": warn.len(), "warn": warn})
}

fn hardware() -> Value {
    json!({
        "cpu": {"name": "Intel(R) Celeron(R) N5105 @ 2.00GHz", "num": 1, "core": 4, "thread": 4},
        "mem": {"num": 1, "total": super::figures::MEM_TOTAL, "frequency": 2933, "type": "DDR4",
                "vendor": "Unknown"},
        "gpu": [{"vendor": "Intel Corporation", "vendorId": 32902, "device": "JasperLake [UHD Graphics]"}],
        "vm": {"available": 1, "iommu": 1, "sriov": 0},
        "bios": {"vendor": "American Megatrends International, LLC.", "version": "5.19",
                 "baseboard": {"vendor": "naslink", "productName": "SIM-N5105", "version": "1.0",
                               "serialNumber": "Unknown"},
                 "system": {"vendor": "naslink", "productName": "fnOS emulator", "version": "1.0",
                            "serialNumber": "Unknown", "sku": "", "uuid": "", "family": ""}},
        "sysdisk": {"size": 1_000_204_886_016u64, "model": "Samsung SSD 980 1TB",
                    "protocol": "NVMe", "serialNumber": "S64ANS0T5*****"},
    })
}

/// `appcgi.finder.fileSearch {keyword}`: three `result:"doing"` frames
/// with `percent`, then the final answer.
fn file_search(reqid: Option<&Value>, request: &Request) -> Vec<Value> {
    let keyword = request
        .get("keyword")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    let mut frames: Vec<Value> = [25, 50, 75]
        .iter()
        .map(|p| {
            let mut frame =
                json!({"result": "doing", "percent": p, "req": "appcgi.finder.fileSearch"});
            if let Some(reqid) = reqid {
                frame["reqid"] = reqid.clone();
            }
            frame
        })
        .collect();
    frames.push(appcgi(
        "appcgi.finder.fileSearch",
        reqid,
        json!({"keyword": keyword, "files": []}),
    ));
    frames
}

/// The `sysNotify` frames a long file command sends before its final
/// answer ([`Config::task_frames`](super::Config::task_frames)): the
/// captured `taskId` frame, then `taskInfo` progress (field names from a
/// public client; their nesting is not captured, top level is assumed).
pub fn task_frames(reqid: Option<&Value>) -> Vec<Value> {
    let task_id = super::crypto::random_token(22) + "==";
    let total: u64 = 4096;
    let mut frames = vec![json!({"sysNotify": "taskId", "taskId": task_id})];
    for percent in [50u64, 100] {
        frames.push(
            json!({"sysNotify": "taskInfo", "taskId": task_id, "percent": percent,
                           "time": 1, "size": total * percent / 100, "sizeTotal": total,
                           "speed": total / 2}),
        );
    }
    for frame in &mut frames {
        if let Some(reqid) = reqid {
            frame["reqid"] = reqid.clone();
        }
    }
    frames
}
