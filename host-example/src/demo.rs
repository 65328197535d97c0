//! `naslink demo`: the front-panel flow against the fnOS emulator on
//! loopback, no NAS and no arguments needed.
//!
//! Steps: start the emulator, log in (RSA/AES key exchange, signed
//! requests), identity, a status snapshot with four requests in flight,
//! a folder listing, mkdir, an upload and download over HTTP, rm, a
//! server push, then a dropped connection
//! that the client survives by logging in again with its stored token.
//! Then the same against the CFMS emulator over `wss://` with its
//! self-signed certificate pinned: server_info, login, status, mkdir, ls,
//! rm and a lockdown push.

use std::time::Duration;

use futures_util::StreamExt;
use naslink_sim::fnos::{Config, KeySource, Push, Server};
use naslink_tokio::fnos::{FnosClient, FnosEvent, FnosOptions, Overwrite};
use serde_json::{Value, json};

use crate::Failure;
use crate::fnos_cmd::{info, ls, status, status_table};

/// Upload a small file into `folder` and download it again; the bytes
/// must come back unchanged. Returns their count.
async fn transfer(nas: &FnosClient, folder: &str) -> Result<u64, Failure> {
    let dir = std::env::temp_dir().join(format!("naslink-demo-{}", std::process::id()));
    let local_io = |e: std::io::Error| Failure::Connection(format!("demo files: {e}"));
    std::fs::create_dir_all(&dir).map_err(local_io)?;
    let outcome = async {
        let content = "hello from naslink, over fnOS's HTTP endpoints\n".repeat(100);
        let up = dir.join("hello.txt");
        std::fs::write(&up, &content).map_err(local_io)?;
        let remote = format!("{folder}/hello.txt");
        nas.upload(&up, &remote, Overwrite::Replace, |_, _| {})
            .await?;
        let down = dir.join("back.txt");
        let size = nas.download(&remote, &down, |_, _| {}).await?;
        let back = std::fs::read(&down).map_err(local_io)?;
        if back != content.as_bytes() {
            return Err(Failure::Connection(
                "the downloaded file differs from the uploaded one".into(),
            ));
        }
        Ok(size)
    }
    .await;
    let _ = std::fs::remove_dir_all(&dir);
    outcome
}

/// Run the demo; with `json`, one summary document on stdout.
pub async fn run(json: bool) -> Result<(), Failure> {
    let step = |text: &str| {
        if !json {
            println!("== {}", crate::output::term(text));
        }
    };
    step("starting the fnOS emulator on loopback");
    let sim = Server::start(Config {
        key: KeySource::Fixture,
        ..Config::default()
    })
    .await
    .map_err(|e| Failure::Connection(format!("cannot start the fnOS emulator: {e:#}")))?;
    let url = sim.url();
    step(&format!("logging in to {url} as admin"));
    let mut options = FnosOptions::new(&url, "admin", "admin");
    options.request_timeout = Duration::from_secs(10);
    let nas = FnosClient::connect(options).await?;
    let mut events = Box::pin(nas.events());

    let identity = info(&nas).await?;
    step(&format!(
        "server: {} (fnOS {})",
        identity["host"].as_str().unwrap_or("?"),
        identity["version"].as_str().unwrap_or("?")
    ));

    let snapshot = status(&nas).await?;
    step("front panel");
    if !json {
        print!("{}", status_table(&snapshot));
    }

    let home = ls(&nas, None).await?;
    step(&format!("home view: {} entries", home.len()));
    let folder = home
        .iter()
        .find(|e| e["dir"] == true)
        .and_then(|e| e["path"].as_str())
        .map(str::to_owned);
    let made = match &folder {
        Some(folder) => {
            let path = format!("{folder}/naslink-demo");
            nas.request("file.mkdir", Some(&json!({ "path": path })))
                .await?;
            let listed = ls(&nas, Some(folder)).await?;
            let seen = listed.iter().any(|e| e["name"] == "naslink-demo");
            let moved = transfer(&nas, &path).await?;
            step(&format!(
                "uploaded {moved} bytes to {path}/hello.txt over HTTP and downloaded them back intact"
            ));
            nas.request(
                "file.rm",
                Some(&json!({ "files": [path], "moveToTrashbin": false })),
            )
            .await?;
            step(&format!("created, listed and removed {path}"));
            seen
        }
        None => false,
    };

    sim.push(Push::StorageChanged);
    let push = wait_for(&mut events, |e| matches!(e, FnosEvent::Push(_))).await?;
    step(&format!("push received: {}", event_text(&push)));

    step("dropping the connection on the server side");
    sim.drop_connections();
    let relogin = wait_for(&mut events, |e| matches!(e, FnosEvent::LoggedIn { .. })).await?;
    let again = info(&nas).await?;
    step(&format!(
        "reconnected ({}) and asked again: {}",
        event_text(&relogin),
        again["host"].as_str().unwrap_or("?")
    ));
    sim.shutdown().await;
    let cfms = cfms_part(&step).await?;
    if json {
        println!(
            "{}",
            json!({
                "fnos": {
                    "info": identity,
                    "status": snapshot,
                    "home_entries": home.len(),
                    "mkdir_listed": made,
                    "push": event_text(&push),
                    "relogin": event_text(&relogin),
                },
                "cfms": cfms,
            })
        );
    } else {
        println!("== demo finished");
    }
    Ok(())
}

async fn cfms_part(step: &impl Fn(&str)) -> Result<Value, Failure> {
    use naslink_sim::cfms;
    use naslink_tokio::Trust;
    use naslink_tokio::cfms::{CfmsClient, CfmsEvent, CfmsOptions};

    step("starting the CFMS emulator on loopback (TLS, self-signed certificate)");
    let sim = cfms::Server::start(cfms::Config {
        tls: true,
        ..cfms::Config::default()
    })
    .await
    .map_err(|e| Failure::Connection(format!("cannot start the CFMS emulator: {e:#}")))?;
    let pin = sim
        .cert_sha256()
        .ok_or_else(|| Failure::Connection("the CFMS emulator has no certificate".into()))?;
    step(&format!(
        "logging in to {} as admin, certificate pinned by SHA-256 {}",
        sim.url(),
        naslink_tokio::tls::hex(&pin)
    ));
    let mut options = CfmsOptions::new(&sim.url(), "admin", "admin");
    options.link.trust = Trust::PinSha256(pin);
    options.request_timeout = Duration::from_secs(10);
    let nas = CfmsClient::connect(options).await?;
    let identity = crate::cfms_cmd::info(&nas);
    step(&format!(
        "server: {} {} (protocol {})",
        identity["host"].as_str().unwrap_or("?"),
        identity["version"].as_str().unwrap_or("?"),
        identity["protocol_version"]
    ));
    let made = nas
        .request(
            "create_directory",
            &json!({ "parent_id": null, "name": "naslink-demo" }),
        )
        .await?;
    let root = crate::cfms_cmd::ls(&nas, None).await?;
    let seen = root.iter().any(|e| e["name"] == "naslink-demo");
    if let Some(id) = made["data"]["id"].as_str() {
        nas.request("delete_directory", &json!({ "folder_id": id }))
            .await?;
    }
    step(&format!(
        "root: {} entries; created, listed and removed naslink-demo",
        root.len()
    ));
    let mut events = Box::pin(nas.events());
    sim.set_lockdown(true);
    let lockdown = tokio::time::timeout(Duration::from_secs(10), async {
        while let Some(event) = events.next().await {
            if let CfmsEvent::Lockdown { on } = event {
                return Some(on);
            }
        }
        None
    })
    .await
    .ok()
    .flatten()
    .ok_or_else(|| Failure::Connection("the lockdown push did not arrive".into()))?;
    step(&format!("lockdown push received: on = {lockdown}"));
    sim.shutdown().await;
    Ok(json!({
        "info": identity,
        "root_entries": root.len(),
        "mkdir_listed": seen,
        "lockdown_push": lockdown,
    }))
}

fn event_text(event: &FnosEvent) -> String {
    match event {
        FnosEvent::Push(p) => p.to_string(),
        FnosEvent::LoggedIn { method } => format!("login by {method:?}"),
        other => format!("{other:?}"),
    }
}

async fn wait_for(
    events: &mut (impl futures_util::Stream<Item = FnosEvent> + Unpin),
    want: impl Fn(&FnosEvent) -> bool,
) -> Result<FnosEvent, Failure> {
    let found = tokio::time::timeout(Duration::from_secs(10), async {
        while let Some(event) = events.next().await {
            if want(&event) {
                return Some(event);
            }
        }
        None
    })
    .await;
    match found {
        Ok(Some(event)) => Ok(event),
        _ => Err(Failure::Connection(
            "the expected event did not arrive".into(),
        )),
    }
}
