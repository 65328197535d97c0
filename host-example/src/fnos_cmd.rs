//! The commands against an fnOS NAS.

use std::time::Duration;

use futures_util::StreamExt;
use naslink_tokio::core::fnos::device_token;
use naslink_tokio::fnos::{FnosClient, FnosError, FnosEvent, FnosOptions, FnosReply, Overwrite};
use serde_json::{Value, json};
use zeroize::Zeroizing;

use crate::output::{Progress, done, human, term, text};
use crate::{CheckArgs, Cli, Command, Failure};
use naslink_tokio::core::fnos::health::{Level, Thresholds};
use naslink_tokio::core::fnos::panel::{PoolState, SmartVerdict};
use naslink_tokio::fnos::{Part, Snapshot};

/// Connect, log in, run the command.
pub async fn run(cli: &Cli, options: FnosOptions) -> Result<(), Failure> {
    let nas = FnosClient::connect(options).await?;
    match &cli.command {
        Command::Info => {
            let info = info(&nas).await?;
            if cli.json {
                println!("{info}");
            } else {
                println!("{} (fnOS {})", text(&info["host"]), text(&info["version"]));
            }
        }
        Command::Status => {
            let status = status(&nas).await?;
            if cli.json {
                println!("{status}");
            } else {
                print!("{}", status_table(&status));
            }
        }
        Command::Ls { path } => {
            let entries = ls(&nas, path.as_deref()).await?;
            if cli.json {
                println!("{}", Value::Array(entries));
            } else {
                print!("{}", ls_table(&entries));
            }
        }
        Command::Mkdir { path } => {
            nas.request("file.mkdir", Some(&json!({ "path": path })))
                .await?;
            done(cli.json, "created", path);
        }
        Command::Rm { path } => {
            let params = json!({ "files": [path], "moveToTrashbin": false });
            nas.request("file.rm", Some(&params)).await?;
            done(cli.json, "removed", path);
        }
        Command::Raw { req, params } => raw(&nas, req, params.as_deref()).await?,
        Command::Watch { every, count } => watch(cli.json, &nas, *every, *count).await?,
        Command::Get { remote, local, .. } => {
            let mut bar = Progress::new(cli.json, "downloading");
            let size = nas
                .download(remote, local, |done, total| bar.update(done, total))
                .await?;
            bar.finish();
            if cli.json {
                println!(
                    "{}",
                    json!({"ok": true, "remote": remote, "path": local, "bytes": size})
                );
            } else {
                println!(
                    "downloaded {} to {} ({size} bytes)",
                    term(remote),
                    term(&local.display().to_string())
                );
            }
        }
        Command::Put {
            local,
            remote,
            replace,
        } => {
            let remote = put_target(local, remote)?;
            if !local.is_file() {
                return Err(Failure::Usage(format!(
                    "{} is not a readable file",
                    local.display()
                )));
            }
            let overwrite = if *replace {
                Overwrite::Replace
            } else {
                Overwrite::KeepBoth
            };
            let mut bar = Progress::new(cli.json, "uploading");
            let stored = nas
                .upload(local, &remote, overwrite, |done, total| {
                    bar.update(done, total)
                })
                .await?;
            bar.finish();
            if cli.json {
                println!("{}", json!({"ok": true, "remote": stored}));
            } else {
                println!(
                    "uploaded {} to {}",
                    term(&local.display().to_string()),
                    term(&stored)
                );
            }
        }
        Command::Login { device_token } => login(cli.json, &nas, *device_token).await?,
        Command::Demo | Command::Sim(_) | Command::Check(_) | Command::Exporter { .. } => {
            unreachable!("handled before connecting")
        }
    }
    Ok(())
}

/// `naslink login`: the login succeeded; with `device_token`, print the
/// device token alone on standard output (the JSON form wraps it).
async fn login(json: bool, nas: &FnosClient, device_token: bool) -> Result<(), Failure> {
    if !device_token {
        if json {
            println!("{}", json!({"logged_in": true}));
        } else {
            println!("logged in");
        }
        return Ok(());
    }
    let token = nas.device_token().await?;
    let mut text = Zeroizing::new(vec![0u8; device_token::MAX_TEXT_LEN]);
    let n = token
        .encode(&mut text)
        .map_err(|e| Failure::Connection(format!("cannot write the device token: {e}")))?;
    let text = std::str::from_utf8(text.get(..n).unwrap_or_default())
        .map_err(|_| Failure::Connection("the device token is not text".into()))?;
    if json {
        println!("{}", json!({"device_token": text, "user": token.user()}));
    } else {
        println!("{text}");
    }
    eprintln!(
        "naslink: this token logs in as {} without the password: keep it secret. \
         It stops working when the NAS revokes it (see the README: device tokens).",
        term(token.user())
    );
    Ok(())
}

/// The plugin's name on its status line.
const PLUGIN: &str = "NASLINK";

/// Any failure of `check` before its verdict: UNKNOWN (exit 3), said on
/// standard output as monitoring plugins do.
pub fn unknown(failure: Failure) -> Failure {
    if let Failure::Check(_) = failure {
        return failure;
    }
    println!("{PLUGIN} UNKNOWN - {}", failure.message_for_plugin());
    Failure::Check(3)
}

/// The thresholds of `check`'s flags.
fn thresholds(args: &CheckArgs) -> Thresholds {
    Thresholds {
        volume_warning_percent: args.volume_warning,
        volume_critical_percent: args.volume_critical,
        disk_warning_celsius: args.disk_temp_warning,
        disk_critical_celsius: args.disk_temp_critical,
        cpu_warning_celsius: args.cpu_temp_warning,
        cpu_critical_celsius: args.cpu_temp_critical,
        ups_critical_percent: args.ups_critical,
    }
}

/// A performance-data label: quoted, its quotes doubled.
fn label(name: &str) -> String {
    format!("'{}'", name.replace('\'', "''"))
}

/// `naslink check`: connect, take a snapshot, print one status line with
/// performance data, and return the exit code as a [`Failure::Check`].
pub async fn check(args: &CheckArgs, options: FnosOptions) -> Failure {
    let nas = match FnosClient::connect(options).await {
        Ok(nas) => nas,
        Err(e) => return unknown(e.into()),
    };
    let snapshot = match nas.snapshot().await {
        Ok(s) => s,
        Err(e) => return unknown(e.into()),
    };
    let t = thresholds(args);
    let report = snapshot.health(&t);
    let mut summary: Vec<String> = report.reasons.iter().map(|r| term(&r.text)).collect();
    if report.omitted > 0 {
        summary.push(format!("{} more", report.omitted));
    }
    if summary.is_empty() {
        summary.push("no problems".into());
    }
    if !report.needs_admin.is_empty() {
        summary.push(format!("needs admin: {}", report.needs_admin.join(" ")));
    }
    if !report.refused.is_empty() {
        summary.push(format!("refused: {}", report.refused.join(" ")));
    }
    let mut perf = Vec::new();
    for p in snapshot.pools.known().into_iter().flatten() {
        if let Some(used) = p.used_percent() {
            perf.push(format!(
                "{}={used}%;{};{};0;100",
                label(&format!("{} used", term(&p.name))),
                t.volume_warning_percent,
                t.volume_critical_percent
            ));
        }
    }
    for d in snapshot.disks.known().into_iter().flatten() {
        if let Some(c) = d.temperature {
            perf.push(format!(
                "{}={c};{};{}",
                label(&format!("{} temperature", term(&d.name))),
                t.disk_warning_celsius,
                t.disk_critical_celsius
            ));
        }
    }
    if let Some(c) = snapshot.cpu.known().and_then(|c| c.temperature) {
        perf.push(format!(
            "{}={c};{};{}",
            label("cpu temperature"),
            t.cpu_warning_celsius,
            t.cpu_critical_celsius
        ));
    }
    if let Some(p) = snapshot.ups.known().and_then(|u| u.battery_percent) {
        perf.push(format!(
            "{}={p}%;;{}:;0;100",
            label("ups battery"),
            u16::from(t.ups_critical_percent) + 1
        ));
    }
    if let Some(n) = snapshot.unread_warnings.known().copied().flatten() {
        perf.push(format!("{}={n};1;;0", label("unread warnings")));
    }
    println!(
        "{PLUGIN} {} - {} | {}",
        report.level,
        summary.join(", "),
        perf.join(" ")
    );
    Failure::Check(match report.level {
        Level::Ok => 0,
        Level::Warning => 1,
        Level::Critical => 2,
    })
}

/// The remote path of `put`: `folder/name` as given, or `folder/` with
/// the local file's name.
fn put_target(local: &std::path::Path, remote: &str) -> Result<String, Failure> {
    let Some(folder) = remote.strip_suffix('/') else {
        if remote.contains('/') {
            return Ok(remote.to_owned());
        }
        return Err(Failure::Usage(format!(
            "fnOS needs a full remote path (vol1/1000/Documents/ or vol1/1000/Documents/name), not `{remote}`"
        )));
    };
    let name = local
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .ok_or_else(|| Failure::Usage(format!("{} is not a file", local.display())))?;
    Ok(format!("{folder}/{name}"))
}

/// Host name and version.
pub async fn info(nas: &FnosClient) -> Result<Value, FnosError> {
    let reply = nas
        .request_idempotent("appcgi.sysinfo.getHostName", None)
        .await?;
    Ok(json!({
        "protocol": "fnos",
        "host": reply.get("hostName").cloned().unwrap_or(Value::Null),
        "version": reply.get("trimVersion").cloned().unwrap_or(Value::Null),
    }))
}

/// The front-panel snapshot; its four requests are in flight together.
pub async fn status(nas: &FnosClient) -> Result<Value, FnosError> {
    let gen_params = json!({ "item": ["storeSpeed", "netSpeed", "cpuBusy", "memPercent"] });
    let (host, uptime, resmon, storage, snapshot) = tokio::join!(
        nas.request_idempotent("appcgi.sysinfo.getHostName", None),
        nas.request_idempotent("appcgi.sysinfo.getUptime", None),
        nas.request_idempotent("appcgi.resmon.gen", Some(&gen_params)),
        nas.request_idempotent("stor.getUserStorage", None),
        nas.snapshot(),
    );
    let snapshot = snapshot?;
    let host = host?;
    let uptime = uptime?;
    let storage = storage?;
    // Resource figures are for administrators only; a user still gets the rest.
    let item = match resmon {
        Ok(r) => r.get("item").cloned().unwrap_or(Value::Null),
        Err(FnosError::Server { .. }) => Value::Null,
        Err(e) => return Err(e),
    };
    let volumes: Vec<Value> = storage
        .merged("stor")
        .iter()
        .map(|v| {
            let name = v
                .get("comment")
                .and_then(Value::as_str)
                .filter(|c| !c.is_empty())
                .map(str::to_owned)
                .unwrap_or_else(|| format!("vol{}", text(&v["id"])));
            json!({
                "name": name,
                "total_bytes": v.get("fssize").cloned().unwrap_or(Value::Null),
                "free_bytes": v.get("frsize").cloned().unwrap_or(Value::Null),
            })
        })
        .collect();
    let mut status = json!({
        "protocol": "fnos",
        "host": host.get("hostName").cloned().unwrap_or(Value::Null),
        "version": host.get("trimVersion").cloned().unwrap_or(Value::Null),
        "uptime_s": uptime.get("uptime").cloned().unwrap_or(Value::Null),
        "cpu_percent": item.get("cpuBusy").cloned().unwrap_or(Value::Null),
        "mem_percent": item.get("memPercent").cloned().unwrap_or(Value::Null),
        "volumes": volumes,
        "net": {
            "receive_bytes_per_s": item.pointer("/netSpeed/receive").cloned().unwrap_or(Value::Null),
            "transmit_bytes_per_s": item.pointer("/netSpeed/transmit").cloned().unwrap_or(Value::Null),
        },
        "disk": {
            "read_bytes_per_s": item.pointer("/storeSpeed/read").cloned().unwrap_or(Value::Null),
            "write_bytes_per_s": item.pointer("/storeSpeed/write").cloned().unwrap_or(Value::Null),
        },
    });
    if let (Value::Object(map), Value::Object(panel)) = (&mut status, panel_json(&snapshot)) {
        map.extend(panel);
    }
    Ok(status)
}

/// A part as JSON: its figures, or `"needs admin"`.
fn part<T>(part: &Part<T>, f: impl FnOnce(&T) -> Value) -> Value {
    match part {
        Part::Known(t) => f(t),
        Part::NeedsAdmin => json!("needs admin"),
        Part::Refused(why) => json!({ "refused": why }),
    }
}

fn pool_state(state: PoolState) -> (&'static str, Option<u8>) {
    match state {
        PoolState::Normal => ("normal", None),
        PoolState::Degraded => ("degraded", None),
        PoolState::Rebuilding(p) => ("rebuilding", p.map(|p| p.percent())),
        PoolState::Checking(p) => ("checking", p.map(|p| p.percent())),
        PoolState::Unknown => ("unknown", None),
    }
}

fn smart(v: SmartVerdict) -> &'static str {
    match v {
        SmartVerdict::Passed => "passed",
        SmartVerdict::Failing => "failing",
        SmartVerdict::Unknown => "unknown",
    }
}

/// The health panel of `status --json`: the verdict with its reasons, then
/// CPU, disks, pools, containers, UPS (base units: bytes, seconds, °C).
fn panel_json(s: &Snapshot) -> Value {
    let report = s.health(&Thresholds::default());
    json!({
        "health": {
            "level": report.level.as_str(),
            "reasons": report.reasons.iter().map(|r| json!({
                "level": r.level.as_str(),
                "text": r.text,
            })).collect::<Vec<_>>(),
            "omitted": report.omitted,
            "needs_admin": report.needs_admin,
            "refused": report.refused,
        },
        "cpu": part(&s.cpu, |c| json!({
            "name": c.name,
            "temperature_celsius": c.temperature,
            "busy_percent": c.busy_percent,
            "load_average": c.load_average,
        })),
        "disks": part(&s.disks, |d| Value::Array(d.iter().map(|d| json!({
            "name": d.name,
            "model": d.model,
            "size_bytes": d.size,
            "kind": format!("{:?}", d.kind).to_lowercase(),
            "temperature_celsius": d.temperature,
            "smart": smart(d.smart),
            "power_on_hours": d.power_on_hours,
            "standby": d.standby,
        })).collect())),
        "pools": part(&s.pools, |p| Value::Array(p.iter().map(|p| {
            let (state, percent) = pool_state(p.state);
            json!({
                "name": p.name,
                "level": p.level,
                "state": state,
                "progress_percent": percent,
                "size_bytes": p.size,
                "free_bytes": p.free,
                "used_percent": p.used_percent(),
            })
        }).collect())),
        "containers": part(&s.containers, |c| Value::Array(c.iter().map(|c| json!({
            "name": c.name,
            "image": c.image,
            "state": format!("{:?}", c.state).to_lowercase(),
            "status": c.status,
        })).collect())),
        "ups": part(&s.ups, |u| json!({
            "enabled": u.enabled,
            "connected": u.connected,
            "model": u.model,
            "on_battery": u.on_battery,
            "battery_percent": u.battery_percent,
            "runtime_seconds": u.runtime_secs,
        })),
        "unread_warnings": part(&s.unread_warnings, |n| json!(n)),
    })
}

/// The health rows of the readable status: verdict and reasons first
/// (`head`), the panel sections after the rest (`tail`).
fn panel_rows(s: &Value) -> (String, String) {
    let h = &s["health"];
    let mut head = format!("health    {}\n", text(&h["level"]));
    for r in h["reasons"].as_array().into_iter().flatten() {
        head.push_str(&format!(
            "  {:<8} {}\n",
            text(&r["level"]),
            text(&r["text"])
        ));
    }
    if let Some(n) = h["omitted"].as_u64().filter(|n| *n > 0) {
        head.push_str(&format!("  ({n} more)\n"));
    }
    for part in h["needs_admin"].as_array().into_iter().flatten() {
        head.push_str(&format!("  {:<8} needs admin\n", text(part)));
    }
    for part in h["refused"].as_array().into_iter().flatten() {
        head.push_str(&format!("  {:<8} refused by the server\n", text(part)));
    }
    let celsius = |v: &Value| v.as_i64().map_or("?".into(), |c| format!("{c} C"));
    let mut tail = String::new();
    if s["cpu"].is_object() {
        tail.push_str(&format!(
            "cpu temp  {}\n",
            celsius(&s["cpu"]["temperature_celsius"])
        ));
    }
    for d in s["disks"].as_array().into_iter().flatten() {
        tail.push_str(&format!(
            "disk      {:<10} {:<6} {:>10} {:>6} SMART {}\n",
            text(&d["name"]),
            text(&d["kind"]),
            human(d["size_bytes"].as_u64()),
            celsius(&d["temperature_celsius"]),
            text(&d["smart"]),
        ));
    }
    for p in s["pools"].as_array().into_iter().flatten() {
        let progress = p["progress_percent"]
            .as_u64()
            .map_or(String::new(), |n| format!(" {n}%"));
        tail.push_str(&format!(
            "pool      {:<10} {:<6} {}{}\n",
            text(&p["name"]),
            text(&p["level"]),
            text(&p["state"]),
            progress
        ));
    }
    for c in s["containers"].as_array().into_iter().flatten() {
        tail.push_str(&format!(
            "container {:<10} {}\n",
            text(&c["name"]),
            text(&c["state"])
        ));
    }
    let ups = &s["ups"];
    if ups.is_object() {
        let line = match (ups["on_battery"].as_bool(), ups["battery_percent"].as_u64()) {
            (Some(true), Some(p)) => format!("on battery, {p} %"),
            (Some(true), None) => "on battery".into(),
            (Some(false), Some(p)) => format!("on mains, {p} %"),
            _ => "none".into(),
        };
        tail.push_str(&format!("ups       {line}\n"));
    }
    (head, tail)
}

fn uptime(secs: Option<u64>) -> String {
    match secs {
        Some(s) => format!("{}d {:02}h {:02}m", s / 86_400, s / 3600 % 24, s / 60 % 60),
        None => "?".into(),
    }
}

/// The readable form of [`status`].
pub fn status_table(s: &Value) -> String {
    let percent = |v: &Value| v.as_f64().map_or("?".into(), |p| format!("{p:.0} %"));
    let rate = |v: &Value| format!("{}/s", human(v.as_u64()));
    let (head, tail) = panel_rows(s);
    let mut out = head;
    out += &format!(
        "host      {} (fnOS {})\nuptime    {}\ncpu       {}\nmemory    {}\nnetwork   down {}  up {}\n",
        text(&s["host"]),
        text(&s["version"]),
        uptime(s["uptime_s"].as_u64()),
        percent(&s["cpu_percent"]),
        percent(&s["mem_percent"]),
        rate(&s["net"]["receive_bytes_per_s"]),
        rate(&s["net"]["transmit_bytes_per_s"]),
    );
    for v in s["volumes"].as_array().into_iter().flatten() {
        let total = v["total_bytes"].as_u64();
        let free = v["free_bytes"].as_u64();
        let used = total.zip(free).map(|(t, f)| t.saturating_sub(f));
        out.push_str(&format!(
            "volume    {:<10} {} used of {}\n",
            text(&v["name"]),
            human(used),
            human(total)
        ));
    }
    out + &tail
}

/// A folder's entries as `{name, dir, size, mtime}`.
pub async fn ls(nas: &FnosClient, path: Option<&str>) -> Result<Vec<Value>, FnosError> {
    let params = path.map(|p| json!({ "path": p }));
    let reply: FnosReply = nas.request_idempotent("file.ls", params.as_ref()).await?;
    Ok(reply
        .merged("files")
        .iter()
        .map(|e| {
            let dir = e.get("dir").is_some_and(|d| d.as_u64() == Some(1) || d == true);
            let name = e.get("name").and_then(Value::as_str).unwrap_or("");
            // Home-view entries carry their volume and owner: the full path
            // is `vol{v}/{uid}/{name}`.
            let full = match (path, e.get("v"), e.get("uid")) {
                (Some(p), _, _) => format!("{}/{name}", p.trim_end_matches('/')),
                (None, Some(v), Some(uid)) => format!("vol{v}/{uid}/{name}"),
                (None, _, _) => name.to_owned(),
            };
            json!({
                "name": e.get("name").cloned().unwrap_or(Value::Null),
                "path": full,
                "dir": dir,
                "size": if dir { Value::Null } else { e.get("size").cloned().unwrap_or(Value::Null) },
                "mtime": e.get("mtim").cloned().unwrap_or(Value::Null),
            })
        })
        .collect())
}

fn ls_table(entries: &[Value]) -> String {
    let mut out = String::new();
    for e in entries {
        let size = if e["dir"] == true {
            "<dir>".to_owned()
        } else {
            human(e["size"].as_u64())
        };
        out.push_str(&format!(
            "{:>12}  {:>12}  {}\n",
            size,
            text(&e["mtime"]),
            text(&e["name"])
        ));
    }
    if entries.is_empty() {
        out.push_str("(empty)\n");
    }
    out
}

async fn raw(nas: &FnosClient, req: &str, params: Option<&str>) -> Result<(), Failure> {
    let params: Option<Value> = match params {
        Some(text) => match serde_json::from_str(text) {
            Ok(v @ Value::Object(_)) => Some(v),
            _ => {
                return Err(Failure::Usage(format!(
                    "parameters must be a JSON object: {text}"
                )));
            }
        },
        None => None,
    };
    match nas.request(req, params.as_ref()).await {
        Ok(reply) => {
            let doc = if reply.frames().len() == 1 {
                reply.last().clone()
            } else {
                Value::Array(reply.into_frames())
            };
            println!("{doc}");
            Ok(())
        }
        Err(FnosError::Server {
            errno,
            message,
            body,
        }) => {
            println!("{body}");
            let text = FnosError::Server {
                errno,
                message,
                body: Value::Null,
            }
            .to_string();
            Err(Failure::Refused(text))
        }
        Err(e) => Err(e.into()),
    }
}

async fn watch(
    json: bool,
    nas: &FnosClient,
    every: f64,
    count: Option<u64>,
) -> Result<(), Failure> {
    if !(every.is_finite() && every > 0.0) {
        return Err(Failure::Usage(
            "--every wants a positive number of seconds".into(),
        ));
    }
    let mut events = Box::pin(nas.events());
    let mut ticker = tokio::time::interval(Duration::from_secs_f64(every));
    let mut shown = 0u64;
    loop {
        tokio::select! {
            _ = ticker.tick() => {
                match status(nas).await {
                    Ok(s) => {
                        if json {
                            println!("{}", json!({"status": s}));
                        } else {
                            println!("{}", status_table(&s));
                        }
                        shown += 1;
                        if count.is_some_and(|c| shown >= c) {
                            return Ok(());
                        }
                    }
                    // The client reconnects by itself; the next tick retries.
                    Err(e @ (FnosError::ConnectionLost | FnosError::TimedOut)) => {
                        eprintln!("naslink: {}", term(&e.to_string()));
                    }
                    Err(e) => return Err(e.into()),
                }
            }
            event = events.next() => match event {
                Some(event) => print_event(json, &event),
                None => return Err(Failure::Connection("the client stopped".into())),
            },
        }
    }
}

fn print_event(json: bool, event: &FnosEvent) {
    let (kind, detail) = match event {
        FnosEvent::LoggedIn { method } => ("logged_in", format!("{method:?}")),
        FnosEvent::Push(p) => ("push", p.to_string()),
        FnosEvent::Disconnected { reason } => ("disconnected", reason.clone()),
        FnosEvent::Reconnecting { attempt, delay } => (
            "reconnecting",
            format!("attempt {attempt} in {} ms", delay.as_millis()),
        ),
        FnosEvent::LoginFailed(why) => ("login_failed", why.clone()),
        FnosEvent::TwoFactorRequired { attempt } => {
            ("two_factor_required", format!("code {attempt}"))
        }
    };
    if json {
        println!("{}", json!({ "event": kind, "detail": detail }));
    } else {
        println!("* {kind}: {}", term(&detail));
    }
}
