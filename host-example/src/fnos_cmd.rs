//! The commands against an fnOS NAS.

use std::time::Duration;

use futures_util::StreamExt;
use naslink_tokio::fnos::{FnosClient, FnosError, FnosEvent, FnosOptions, FnosReply, Overwrite};
use serde_json::{Value, json};

use crate::output::{Progress, done, human, term, text};
use crate::{Cli, Command, Failure};

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
        Command::Get { remote, local } => {
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
        Command::Demo | Command::Sim(_) => unreachable!("handled before connecting"),
    }
    Ok(())
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
    let (host, uptime, resmon, storage) = tokio::join!(
        nas.request_idempotent("appcgi.sysinfo.getHostName", None),
        nas.request_idempotent("appcgi.sysinfo.getUptime", None),
        nas.request_idempotent("appcgi.resmon.gen", Some(&gen_params)),
        nas.request_idempotent("stor.getUserStorage", None),
    );
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
    Ok(json!({
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
    }))
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
    let mut out = format!(
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
    out
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
