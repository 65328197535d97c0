//! The commands against a CFMS server.
//!
//! CFMS names folders and documents by id; a PATH (`a/b/c`) is resolved
//! from the root by folder names and document titles. `ls` also takes a
//! folder id directly.

use std::time::Duration;

use futures_util::StreamExt;
use naslink_tokio::cfms::{CfmsClient, CfmsError, CfmsEvent, CfmsOptions};
use serde_json::{Value, json};

use crate::output::{Progress, done, human, term, text};
use crate::protocol_cache::{ProtocolCache, dir, server_key};
use crate::{Cli, Command, Failure};

impl From<CfmsError> for Failure {
    fn from(e: CfmsError) -> Self {
        let text = e.to_string();
        match e {
            CfmsError::LoginRefused(_)
            | CfmsError::Server { .. }
            | CfmsError::Replay { .. }
            | CfmsError::IpBlocked => Failure::Refused(text),
            CfmsError::TwoFactorRequired => Failure::Refused(format!(
                "{text}: pass it with --2fa-code or NASLINK_2FA_CODE"
            )),
            CfmsError::Request(_) => Failure::Usage(text),
            CfmsError::Connect(naslink_tokio::ConnectError::Url(_)) => Failure::Usage(text),
            _ => Failure::Connection(text),
        }
    }
}

/// Connect, log in, run the command.
pub async fn run(cli: &Cli, options: CfmsOptions) -> Result<(), Failure> {
    let user = options.user.clone();
    let nas = connect(cli, options).await?;
    match &cli.command {
        Command::Info => {
            let info = info(&nas);
            if cli.json {
                println!("{info}");
            } else {
                println!(
                    "{} {} (CFMS protocol {})",
                    text(&info["host"]),
                    text(&info["version"]),
                    text(&info["protocol_version"])
                );
            }
        }
        Command::Status => {
            let status = status(&nas, &user).await?;
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
            mkdir(&nas, path).await?;
            done(cli.json, "created", path);
        }
        Command::Rm { path } => {
            rm(&nas, path).await?;
            done(cli.json, "removed", path);
        }
        Command::Raw { req, params } => {
            let data = match params.as_deref() {
                None => json!({}),
                Some(text) => match serde_json::from_str(text) {
                    Ok(v @ Value::Object(_)) => v,
                    _ => {
                        return Err(Failure::Usage(format!(
                            "data must be a JSON object: {text}"
                        )));
                    }
                },
            };
            match nas.request(req, &data).await {
                Ok(answer) => println!("{answer}"),
                Err(CfmsError::Server {
                    code,
                    message,
                    body,
                }) => {
                    println!("{body}");
                    return Err(Failure::Refused(format!(
                        "the server refused: {message} (code {code})"
                    )));
                }
                Err(e) => return Err(e.into()),
            }
        }
        Command::Watch { every, count } => watch(cli.json, &nas, &user, *every, *count).await?,
        Command::Get {
            remote,
            local,
            no_resume,
        } => {
            let id = match resolve(&nas, remote).await {
                Ok(Target::Document(id)) => id,
                Ok(Target::Folder(_)) => {
                    return Err(Failure::Usage(format!(
                        "{remote} is a folder, not a document"
                    )));
                }
                // Not a path: perhaps a document id.
                Err(_) if !remote.contains('/') => remote.clone(),
                Err(e) => return Err(e),
            };
            let mut bar = Progress::new(cli.json, "downloading");
            let size = nas
                .download_resumable(
                    &id,
                    local,
                    !no_resume,
                    |note| eprintln!("naslink: {}", term(note)),
                    |done, total| bar.update(done, total),
                )
                .await?;
            bar.finish();
            if cli.json {
                println!(
                    "{}",
                    json!({"ok": true, "document_id": id, "path": local, "bytes": size})
                );
            } else {
                println!(
                    "downloaded {} to {} ({size} bytes)",
                    term(remote),
                    term(&local.display().to_string())
                );
            }
        }
        Command::Put { local, remote, .. } => {
            let file_name = local
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .ok_or_else(|| Failure::Usage(format!("{} is not a file", local.display())))?;
            let (folder, title) = match remote.rsplit_once('/') {
                Some((folder, title)) => (folder, title),
                None => ("", remote.as_str()),
            };
            let title = if title.is_empty() {
                file_name.as_str()
            } else {
                title
            };
            let folder_id = match resolve(&nas, folder).await? {
                Target::Folder(id) => id,
                Target::Document(_) => {
                    return Err(Failure::Usage(format!(
                        "{folder} is a document, not a folder"
                    )));
                }
            };
            if !local.is_file() {
                return Err(Failure::Usage(format!(
                    "{} is not a readable file",
                    local.display()
                )));
            }
            let mut bar = Progress::new(cli.json, "uploading");
            let id = nas
                .upload(local, folder_id.as_deref(), title, |done, total| {
                    bar.update(done, total)
                })
                .await?;
            bar.finish();
            if cli.json {
                println!("{}", json!({"ok": true, "document_id": id, "title": title}));
            } else {
                println!(
                    "uploaded {} as {} (document {})",
                    term(&local.display().to_string()),
                    term(title),
                    term(&id)
                );
            }
        }
        Command::Demo | Command::Sim(_) => unreachable!("handled before connecting"),
        Command::Check(_) | Command::Exporter { .. } | Command::Login { .. } => {
            return Err(Failure::Usage(
                "check, exporter and login speak fnOS only".into(),
            ));
        }
    }
    Ok(())
}

/// Connect with the protocol version remembered for this server (unless
/// pinned, or `--no-cache`), and remember what the server answered.
async fn connect(cli: &Cli, mut options: CfmsOptions) -> Result<CfmsClient, Failure> {
    let remembered = match (cli.no_cache || options.protocol_version.is_some(), dir()) {
        (false, Some(dir)) => server_key(&options.url).map(|key| (key, ProtocolCache::open(&dir))),
        _ => None,
    };
    if let Some((key, cache)) = &remembered {
        options.remembered_protocol_version = cache.get(key);
    }
    let outcome = CfmsClient::connect(options).await;
    if let Some((key, mut cache)) = remembered {
        match &outcome {
            Ok(nas) => cache.remember(&key, nas.protocol_version()),
            // A version naslink does not speak is not worth remembering;
            // whatever was remembered is wrong.
            Err(CfmsError::ProtocolUnsupported(_)) => cache.forget(&key),
            Err(_) => {}
        }
    }
    Ok(outcome?)
}

/// What the server said about itself when the first connection opened.
pub fn info(nas: &CfmsClient) -> Value {
    let server = nas.server();
    json!({
        "protocol": "cfms",
        "host": server.server_name,
        "version": server.version,
        "protocol_version": server.protocol_version,
        "lockdown": server.lockdown,
    })
}

/// Server, version, lockdown (asked again now) and user.
pub async fn status(nas: &CfmsClient, user: &str) -> Result<Value, CfmsError> {
    let server = nas.ask_server().await?;
    Ok(json!({
        "protocol": "cfms",
        "host": server.server_name,
        "version": server.version,
        "protocol_version": server.protocol_version,
        "lockdown": server.lockdown,
        "user": user,
    }))
}

/// The readable form of [`status`].
pub fn status_table(s: &Value) -> String {
    format!(
        "server    {}\nversion   {} (protocol {})\nlockdown  {}\nuser      {}\n",
        text(&s["host"]),
        text(&s["version"]),
        text(&s["protocol_version"]),
        if s["lockdown"] == true { "on" } else { "off" },
        text(&s["user"]),
    )
}

async fn list(nas: &CfmsClient, folder: Option<&str>) -> Result<Value, CfmsError> {
    let answer = nas
        .request("list_directory", &json!({ "folder_id": folder }))
        .await?;
    Ok(answer["data"].clone())
}

/// What a path names.
enum Target {
    Folder(Option<String>),
    Document(String),
}

/// Walk `path` from the root by folder names (the last part may be a
/// document title).
async fn resolve(nas: &CfmsClient, path: &str) -> Result<Target, Failure> {
    let parts: Vec<&str> = path.split('/').filter(|p| !p.is_empty()).collect();
    let mut folder: Option<String> = None;
    for (i, part) in parts.iter().enumerate() {
        let listing = list(nas, folder.as_deref()).await?;
        let found = listing["folders"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|f| f["name"] == *part)
            .and_then(|f| f["id"].as_str());
        if let Some(id) = found {
            folder = Some(id.to_owned());
            continue;
        }
        let document = listing["documents"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|d| d["title"] == *part)
            .and_then(|d| d["id"].as_str());
        return match document {
            Some(id) if i + 1 == parts.len() => Ok(Target::Document(id.to_owned())),
            _ => Err(Failure::Refused(format!(
                "{path}: no such folder or document"
            ))),
        };
    }
    Ok(Target::Folder(folder))
}

/// Entries as `{name, dir, size, mtime}` (plus `id`).
pub async fn ls(nas: &CfmsClient, path: Option<&str>) -> Result<Vec<Value>, Failure> {
    let folder = match path {
        None => None,
        Some(p) => match resolve(nas, p).await {
            Ok(Target::Folder(id)) => id,
            Ok(Target::Document(_)) => {
                return Err(Failure::Usage(format!("{p} is a document, not a folder")));
            }
            // Not a path from the root: perhaps a folder id.
            Err(not_found) if !p.contains('/') => match list(nas, Some(p)).await {
                Ok(_) => Some(p.to_owned()),
                Err(_) => return Err(not_found),
            },
            Err(e) => return Err(e),
        },
    };
    let listing = list(nas, folder.as_deref()).await?;
    let mut out = Vec::new();
    for f in listing["folders"].as_array().into_iter().flatten() {
        out.push(json!({"name": f["name"], "dir": true, "size": null,
                        "mtime": f["created_time"], "id": f["id"]}));
    }
    for d in listing["documents"].as_array().into_iter().flatten() {
        out.push(json!({"name": d["title"], "dir": false, "size": d["size"],
                        "mtime": d["last_modified"], "id": d["id"]}));
    }
    Ok(out)
}

fn ls_table(entries: &[Value]) -> String {
    let mut out = String::new();
    for e in entries {
        let size = if e["dir"] == true {
            "<dir>".to_owned()
        } else {
            human(e["size"].as_u64())
        };
        let mtime = e["mtime"]
            .as_f64()
            .map_or("?".into(), |t| format!("{t:.0}"));
        out.push_str(&format!(
            "{size:>12}  {mtime:>12}  {}  ({})\n",
            text(&e["name"]),
            text(&e["id"])
        ));
    }
    if entries.is_empty() {
        out.push_str("(empty)\n");
    }
    out
}

async fn mkdir(nas: &CfmsClient, path: &str) -> Result<(), Failure> {
    let trimmed = path.trim_matches('/');
    let (parent, name) = match trimmed.rsplit_once('/') {
        Some((parent, name)) => (Some(parent), name),
        None => (None, trimmed),
    };
    if name.is_empty() {
        return Err(Failure::Usage("mkdir needs a folder name".into()));
    }
    let parent_id = match parent {
        None => None,
        Some(p) => match resolve(nas, p).await? {
            Target::Folder(id) => id,
            Target::Document(_) => return Err(Failure::Usage(format!("{p} is a document"))),
        },
    };
    nas.request(
        "create_directory",
        &json!({ "parent_id": parent_id, "name": name }),
    )
    .await?;
    Ok(())
}

async fn rm(nas: &CfmsClient, path: &str) -> Result<(), Failure> {
    match resolve(nas, path).await? {
        Target::Folder(None) => Err(Failure::Usage("refusing to remove the root".into())),
        Target::Folder(Some(id)) => {
            nas.request("delete_directory", &json!({ "folder_id": id }))
                .await?;
            Ok(())
        }
        Target::Document(id) => {
            nas.request("delete_document", &json!({ "document_id": id }))
                .await?;
            Ok(())
        }
    }
}

async fn watch(
    json: bool,
    nas: &CfmsClient,
    user: &str,
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
            _ = ticker.tick() => match status(nas, user).await {
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
                Err(e @ (CfmsError::ConnectionLost | CfmsError::TimedOut)) => eprintln!("naslink: {}", term(&e.to_string())),
                Err(e) => return Err(e.into()),
            },
            event = events.next() => match event {
                Some(event) => {
                    let (kind, detail) = match &event {
                        CfmsEvent::Ready { lockdown } => ("ready", format!("lockdown {lockdown}")),
                        CfmsEvent::Lockdown { on } => ("lockdown", on.to_string()),
                        CfmsEvent::Disconnected { reason } => ("disconnected", reason.clone()),
                        CfmsEvent::Reconnecting { attempt, delay } => (
                            "reconnecting",
                            format!("attempt {attempt} in {} ms", delay.as_millis()),
                        ),
                        CfmsEvent::TwoFactorRequired { attempt } => {
                            ("two_factor_required", format!("code {attempt}"))
                        }
                    };
                    if json {
                        println!("{}", json!({ "event": kind, "detail": detail }));
                    } else {
                        println!("* {kind}: {}", term(&detail));
                    }
                }
                None => return Err(Failure::Connection("the client stopped".into())),
            },
        }
    }
}
