//! Answers to the commands of a signed-in connection, and the three reply
//! shapes: core (`user.*`, `file.*`, `stor.*`: fields at the top level plus
//! `result` and `reqid`), `appcgi.*` (`data`, `reqid`, `result`, `rev`,
//! `req`) and failure (`errno`, `result: "fail"`, `reqid`).

use serde_json::{Map, Value, json};

use super::crypto::random_url_token;
use super::figures::Figures;
use super::files::{FileError, Overwrite, normalize};
use super::state::{DownloadTicket, Login, PendingUpload, Shared, unix_now};
use super::{
    ERRNO_BAD_PARAMETER, ERRNO_EXISTS, ERRNO_NO_PERMISSION, ERRNO_NO_SPACE, ERRNO_NOT_FOUND,
    ERRNO_UNKNOWN_METHOD, Health,
};

/// A request as received: the flat JSON object.
pub type Request = Map<String, Value>;

fn with_reqid(mut frame: Map<String, Value>, reqid: Option<&Value>) -> Value {
    if let Some(reqid) = reqid {
        frame.insert("reqid".into(), reqid.clone());
    }
    Value::Object(frame)
}

/// A core-handler success: `fields` plus `result: "succ"` and `reqid`.
pub fn succ(reqid: Option<&Value>, fields: Value) -> Value {
    let mut frame = match fields {
        Value::Object(map) => map,
        _ => Map::new(),
    };
    frame.insert("result".into(), json!("succ"));
    with_reqid(frame, reqid)
}

/// A failure: `{"errno":N,"result":"fail","reqid":...}`.
pub fn fail(reqid: Option<&Value>, errno: u64) -> Value {
    let mut frame = Map::new();
    frame.insert("errno".into(), json!(errno));
    frame.insert("result".into(), json!("fail"));
    with_reqid(frame, reqid)
}

/// A failure with an `errmsg` explaining which rule the request broke.
pub fn fail_msg(reqid: Option<&Value>, errno: u64, errmsg: &str) -> Value {
    let mut frame = fail(reqid, errno);
    if let Value::Object(map) = &mut frame {
        map.insert("errmsg".into(), json!(errmsg));
    }
    frame
}

/// An `appcgi.*` success.
pub fn appcgi(req: &str, reqid: Option<&Value>, data: Value) -> Value {
    let mut frame = Map::new();
    frame.insert("data".into(), data);
    frame.insert("result".into(), json!("succ"));
    frame.insert("rev".into(), json!("0.1"));
    frame.insert("req".into(), json!(req));
    with_reqid(frame, reqid)
}

/// Partial frames of a multi-frame answer (no `result`), then the final one.
pub fn multi_frame(reqid: Option<&Value>, parts: Vec<Value>) -> Vec<Value> {
    let mut frames: Vec<Value> = parts
        .into_iter()
        .map(|part| match part {
            Value::Object(map) => with_reqid(map, reqid),
            other => other,
        })
        .collect();
    frames.push(succ(reqid, json!({})));
    frames
}

/// `appcgi.sysinfo.getHostName`'s answer (served before login too).
pub fn host_name(shared: &Shared, reqid: Option<&Value>) -> Value {
    let c = &shared.config;
    appcgi(
        "appcgi.sysinfo.getHostName",
        reqid,
        json!({"hostName": c.host_name, "trimVersion": c.trim_version, "hasUsers": true}),
    )
}

fn file_error(reqid: Option<&Value>, e: &FileError) -> Value {
    let errno = match e {
        FileError::Forbidden(_) => ERRNO_NO_PERMISSION,
        _ => ERRNO_BAD_PARAMETER,
    };
    fail_msg(reqid, errno, &e.to_string())
}

/// The errno of a failed upload or download, on the WebSocket and HTTP
/// sides alike. (The other `file.*` commands answer 8192 for a missing
/// path, as they always have here.)
pub fn transfer_errno(e: &FileError) -> u64 {
    match e {
        FileError::NotFound(_) => ERRNO_NOT_FOUND,
        FileError::Exists(_) => ERRNO_EXISTS,
        FileError::Forbidden(_) => ERRNO_NO_PERMISSION,
        FileError::BadPath(_) | FileError::IsFolder(_) => ERRNO_BAD_PARAMETER,
    }
}

fn transfer_error(reqid: Option<&Value>, e: &FileError) -> Value {
    fail_msg(reqid, transfer_errno(e), &e.to_string())
}

fn str_list(value: Option<&Value>) -> Option<Vec<&str>> {
    value?.as_array()?.iter().map(Value::as_str).collect()
}

/// Commands only administrators may run.
fn admin_only(req: &str) -> bool {
    req.starts_with("appcgi.resmon.")
        || matches!(req, "stor.calcSpace" | "stor.listDisk" | "stor.listStor")
        || super::panel::admin_only(req)
}

/// Volume sizes in bytes: (id, fssize, bytes used by things outside the home).
const VOLUMES: [(u32, u64, u64); 2] = [
    (1, 3_936_686_837_760, 1_204_118_016_000),
    (2, 983_349_346_304, 61_203_120_128),
];

/// The volumes `uid` has a home on; [`Health::volume_used_percent`]
/// overrides vol1's free space.
pub fn volumes(shared: &Shared, uid: u32, health: &Health) -> Vec<Value> {
    let mut reg = shared.registry();
    let tree = reg.tree(uid);
    VOLUMES
        .iter()
        .filter(|(id, _, _)| tree.volume_ids().contains(id))
        .map(|&(id, fssize, base)| {
            let used = match health.volume_used_percent {
                Some(p) if id == 1 => (fssize * u64::from(p.min(100))).div_ceil(100),
                _ => (base + tree.used_bytes(id)).min(fssize),
            };
            let (fstype, disk_type, level) = if id == 1 {
                ("btrfs", "HDD", "raid1")
            } else {
                ("ext4", "SSD", "basic")
            };
            json!({"id": id, "comment": if id == 1 { "Storage" } else { "Fast" },
                   "fssize": fssize, "frsize": fssize - used, "fstype": fstype,
                   "diskType": disk_type, "level": level,
                   "quotaCurr": used, "quotaMax": 0})
        })
        .collect()
}

/// Answer `req` for a signed-in `login`. Multi-frame commands return several frames.
pub fn dispatch(shared: &Shared, login: &Login, req: &str, request: &Request) -> Vec<Value> {
    let reqid = request.get("reqid");
    if admin_only(req) && !login.admin {
        return vec![fail(reqid, ERRNO_NO_PERMISSION)];
    }
    if let Some(frames) = super::panel::dispatch(shared, login, req, request) {
        return frames;
    }
    let health = shared.health();
    let config = &shared.config;
    let elapsed = shared.started.elapsed().as_secs_f64();
    let figures = || Figures::at(elapsed);
    let one = |frame: Value| vec![frame];
    match req {
        "appcgi.sysinfo.getHostName" => one(host_name(shared, reqid)),
        "appcgi.sysinfo.getUptime" => {
            // A NAS that has been up a while: 3 days plus the emulator's own uptime.
            one(appcgi(
                req,
                reqid,
                json!({"uptime": 259_200 + elapsed as u64}),
            ))
        }
        "appcgi.sysinfo.getTrimVersion" => one(appcgi(
            req,
            reqid,
            json!({"trimVersion": config.trim_version}),
        )),
        "appcgi.sysinfo.getMachineId" => {
            one(appcgi(req, reqid, json!({"machineId": config.machine_id})))
        }
        "appcgi.resmon.gen" => {
            let wanted = str_list(request.get("item")).unwrap_or_default();
            one(appcgi(req, reqid, figures().gen_items(&wanted)))
        }
        "appcgi.resmon.mem" => one(appcgi(req, reqid, figures().mem())),
        "appcgi.resmon.net" => one(appcgi(req, reqid, figures().net())),
        "stor.getUserStorage" => one(succ(
            reqid,
            json!({"stor": volumes(shared, login.uid, &health), "uid": login.uid}),
        )),
        "stor.calcSpace" => {
            let vols = volumes(shared, login.uid, &health);
            let total: u64 = vols.iter().filter_map(|v| v["fssize"].as_u64()).sum();
            let free: u64 = vols.iter().filter_map(|v| v["frsize"].as_u64()).sum();
            one(succ(
                reqid,
                json!({"total": total, "used": total - free, "free": free}),
            ))
        }
        "file.ls" => file_ls(shared, login, request),
        "file.rm" if config.task_frames => {
            let answer = file_change(shared, login, req, request);
            if answer["result"] != "succ" {
                return one(answer);
            }
            let mut frames = super::panel::task_frames(reqid);
            frames.push(answer);
            frames
        }
        "file.mkdir" | "file.rm" | "file.mv" | "file.rename" => {
            one(file_change(shared, login, req, request))
        }
        "file.checkUpload" => one(file_check_upload(shared, login, request)),
        "file.download" => one(file_download(shared, login, request)),
        "user.info" => one(succ(
            reqid,
            json!({"userInfo": {"user": login.user, "uid": login.uid, "admin": login.admin,
                                "groups": if login.admin { vec!["Administrators", "Users"] } else { vec!["Users"] },
                                "comment": ""}}),
        )),
        "user.isAdmin" => one(succ(reqid, json!({"admin": login.admin}))),
        _ => one(fail(reqid, ERRNO_UNKNOWN_METHOD)),
    }
}

fn file_ls(shared: &Shared, login: &Login, request: &Request) -> Vec<Value> {
    let reqid = request.get("reqid");
    let path = match request.get("path") {
        None | Some(Value::Null) => None,
        Some(Value::String(p)) => Some(p.as_str()),
        Some(_) => {
            return vec![fail_msg(
                reqid,
                ERRNO_BAD_PARAMETER,
                "`path` must be a string",
            )];
        }
    };
    let mut reg = shared.registry();
    let tree = reg.tree(login.uid);
    let entries = match tree.list(path) {
        Ok(entries) => entries,
        Err(e) => return vec![file_error(reqid, &e)],
    };
    let uver = tree.uver();
    let per_frame = shared.config.entries_per_frame.max(1);
    let mut parts: Vec<Value> = entries
        .chunks(per_frame)
        .map(|chunk| json!({"files": chunk, "uver": uver}))
        .collect();
    if parts.is_empty() {
        parts.push(json!({"files": [], "uver": uver}));
    }
    multi_frame(reqid, parts)
}

fn file_change(shared: &Shared, login: &Login, req: &str, request: &Request) -> Value {
    let reqid = request.get("reqid");
    let text = |name: &str| request.get(name).and_then(Value::as_str);
    let mut reg = shared.registry();
    let tree = reg.tree(login.uid);
    let outcome = match req {
        "file.mkdir" => match text("path") {
            Some(path) => tree.mkdir(path, unix_now()),
            None => return fail_msg(reqid, ERRNO_BAD_PARAMETER, "`path` missing"),
        },
        "file.rm" => match str_list(request.get("files")) {
            Some(files) => tree.remove(&files),
            None => {
                return fail_msg(
                    reqid,
                    ERRNO_BAD_PARAMETER,
                    "`files` must be a list of paths",
                );
            }
        },
        "file.mv" => match (str_list(request.get("files")), text("destination")) {
            (Some(files), Some(dest)) => tree.move_into(&files, dest),
            _ => {
                return fail_msg(
                    reqid,
                    ERRNO_BAD_PARAMETER,
                    "`files` and `destination` needed",
                );
            }
        },
        _ => match (text("path"), text("newName")) {
            (Some(path), Some(new_name)) => tree.rename(path, new_name),
            _ => return fail_msg(reqid, ERRNO_BAD_PARAMETER, "`path` and `newName` needed"),
        },
    };
    match outcome {
        Ok(()) => succ(reqid, json!({})),
        Err(e) => file_error(reqid, &e),
    }
}

/// `file.checkUpload {path, size, overwrite}`: decide the name the upload
/// goes under and remember it for `POST /upload`.
fn file_check_upload(shared: &Shared, login: &Login, request: &Request) -> Value {
    let reqid = request.get("reqid");
    let Some(path) = request.get("path").and_then(Value::as_str) else {
        return fail_msg(reqid, ERRNO_BAD_PARAMETER, "`path` missing");
    };
    let Some(size) = request.get("size").and_then(Value::as_u64) else {
        return fail_msg(reqid, ERRNO_BAD_PARAMETER, "`size` must be a byte count");
    };
    let overwrite = match request.get("overwrite") {
        None | Some(Value::Null) => Some(Overwrite::KeepBoth),
        Some(code) => code.as_u64().and_then(Overwrite::from_code),
    };
    let Some(overwrite) = overwrite else {
        return fail_msg(reqid, ERRNO_BAD_PARAMETER, "`overwrite` must be 0, 1 or 2");
    };
    let mut reg = shared.registry();
    let name = match reg.tree(login.uid).upload_name(path, overwrite) {
        Ok(name) => name,
        Err(e) => return transfer_error(reqid, &e),
    };
    if size > shared.config.free_space {
        return fail_msg(reqid, ERRNO_NO_SPACE, "not enough free space");
    }
    // `upload_name` accepted the path, so it has a folder part.
    let normalized = normalize(path);
    let folder = normalized.rsplit_once('/').map_or("", |(folder, _)| folder);
    let pending = PendingUpload { size, overwrite };
    reg.pending_uploads
        .insert((login.uid, format!("{folder}/{name}")), pending);
    succ(reqid, json!({"uploadName": name}))
}

/// `file.download {files:[PATH]}`: a one-time URL for one regular file.
fn file_download(shared: &Shared, login: &Login, request: &Request) -> Value {
    let reqid = request.get("reqid");
    let Some(files) = str_list(request.get("files")) else {
        return fail_msg(
            reqid,
            ERRNO_BAD_PARAMETER,
            "`files` must be a list of paths",
        );
    };
    let [path] = files.as_slice() else {
        return fail_msg(
            reqid,
            ERRNO_BAD_PARAMETER,
            "exactly one file: several are zipped by a real NAS, which is not emulated",
        );
    };
    let mut reg = shared.registry();
    match reg.tree(login.uid).content(path) {
        Ok(_) => {}
        Err(FileError::IsFolder(_)) => {
            return fail_msg(
                reqid,
                ERRNO_BAD_PARAMETER,
                "a folder is zipped by a real NAS, which is not emulated",
            );
        }
        Err(e) => return transfer_error(reqid, &e),
    }
    let token = random_url_token(24);
    let ticket = DownloadTicket {
        uid: login.uid,
        path: normalize(path),
    };
    reg.downloads.insert(token.clone(), ticket);
    succ(
        reqid,
        json!({"url": format!("/multiple-download?token={token}")}),
    )
}
