//! The `naslink` binary end to end against the CFMS emulator (in-process,
//! `wss://` with its self-signed certificate pinned): info, status, ls,
//! mkdir, rm, raw, watch with a lockdown push, a wrong pin (exit 3) and a
//! wrong password (exit 1).

use std::io::{BufRead, BufReader};
use std::process::{Command as StdCommand, Stdio};
use std::time::Duration;

use assert_cmd::Command;
use naslink_sim::cfms::{Config, Server};

mod support;
use serde_json::Value;
use support::CfmsSim as Sim;

fn start() -> Sim {
    Sim::start(Config {
        bad_password_delay: Duration::from_millis(50),
        ..Config::default()
    })
}

fn naslink(sim: &Sim) -> Command {
    naslink_pinned(sim, &sim.pin)
}

fn naslink_pinned(sim: &Sim, pin: &str) -> Command {
    sim.naslink(pin, "10")
}

fn json_out(cmd: &mut Command) -> Value {
    let out = cmd.assert().success().get_output().stdout.clone();
    serde_json::from_slice(&out).unwrap_or_else(|e| {
        panic!(
            "not one JSON document ({e}): {}",
            String::from_utf8_lossy(&out)
        )
    })
}

#[test]
fn a_url_without_the_websocket_path_speaks_cfms() {
    let sim = start();
    let info = json_out(naslink(&sim).args(["--json", "info"]));
    assert_eq!(info["protocol"], "cfms");
    assert_eq!(info["host"], "CFMS WebSocket Server");
    assert_eq!(info["protocol_version"], 3);
}

#[test]
fn status_reports_server_version_lockdown_and_user() {
    let sim = start();
    let status = json_out(naslink(&sim).args(["--json", "status"]));
    assert_eq!(status["host"], "CFMS WebSocket Server");
    assert!(status["version"].is_string());
    assert_eq!(status["lockdown"], false);
    assert_eq!(status["user"], "admin");
}

#[test]
fn mkdir_ls_rm_by_path() {
    let sim = start();
    naslink(&sim).args(["mkdir", "projects"]).assert().success();
    naslink(&sim)
        .args(["mkdir", "projects/2026"])
        .assert()
        .success();
    let root = json_out(naslink(&sim).args(["--json", "ls"]));
    let projects = root
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["name"] == "projects")
        .expect("projects listed")
        .clone();
    assert_eq!(projects["dir"], true);
    for e in root.as_array().unwrap() {
        assert!(e.get("size").is_some() && e.get("mtime").is_some());
    }
    let inside = json_out(naslink(&sim).args(["--json", "ls", "projects"]));
    assert_eq!(inside[0]["name"], "2026");
    // A folder id works as well as a path.
    let by_id = json_out(naslink(&sim).args(["--json", "ls", projects["id"].as_str().unwrap()]));
    assert_eq!(by_id, inside);
    naslink(&sim)
        .args(["rm", "projects/2026"])
        .assert()
        .success();
    let inside = json_out(naslink(&sim).args(["--json", "ls", "projects"]));
    assert_eq!(inside, Value::Array(vec![]));
    naslink(&sim)
        .args(["rm", "projects/nothing-here"])
        .assert()
        .code(1)
        .stderr(predicates::str::contains("no such folder or document"));
}

#[test]
fn raw_prints_the_answer_and_a_refusal_exits_1_with_its_code() {
    let sim = start();
    let answer = json_out(naslink(&sim).args(["raw", "list_directory", r#"{"folder_id":null}"#]));
    assert_eq!(answer["code"], 200);
    naslink(&sim)
        .args(["raw", "no_such_action"])
        .assert()
        .code(1)
        .stderr(predicates::str::contains("code 400"));
}

#[test]
fn a_wrong_pin_exits_3_and_a_wrong_password_exits_1() {
    let sim = start();
    naslink_pinned(&sim, &"00".repeat(32))
        .arg("info")
        .assert()
        .code(3)
        .stderr(predicates::str::contains("TLS handshake failed"));
    naslink(&sim)
        .env("NASLINK_PASSWORD", "wrong")
        .arg("info")
        .assert()
        .code(1)
        .stderr(predicates::str::contains("login refused"));
}

#[test]
fn watch_prints_lockdown_pushes() {
    let sim = start();
    let exe = assert_cmd::cargo::cargo_bin("naslink");
    let mut child = StdCommand::new(exe)
        .env("NASLINK_NO_CACHE", "1")
        .env("NASLINK_PASSWORD", "admin")
        .args(["--url", &sim.handle.url(), "--pin-sha256", &sim.pin])
        .args(["--json", "watch", "--every", "0.2", "--count", "6"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut seen = Vec::new();
    while let Some(Ok(line)) = lines.next() {
        let doc: Value = serde_json::from_str(&line).unwrap();
        if doc.get("status").is_some() && seen.iter().all(|d: &Value| d.get("status").is_none()) {
            sim.handle.set_lockdown(true);
        }
        seen.push(doc);
    }
    assert!(child.wait().unwrap().success());
    assert!(
        seen.iter()
            .any(|d| d["event"] == "lockdown" && d["detail"] == "true"),
        "{seen:?}"
    );
}

#[test]
fn put_then_get_round_trips_a_file() {
    let sim = start();
    let dir = tempfile::tempdir().unwrap();
    let source = dir.path().join("report.bin");
    let content: Vec<u8> = (0..300_000u32).map(|i| (i % 253) as u8).collect();
    std::fs::write(&source, &content).unwrap();
    naslink(&sim).args(["mkdir", "inbox"]).assert().success();
    let put = json_out(
        naslink(&sim)
            .args(["--json", "put"])
            .arg(&source)
            .arg("inbox/"),
    );
    assert_eq!(put["title"], "report.bin");
    let listed = json_out(naslink(&sim).args(["--json", "ls", "inbox"]));
    assert_eq!(listed[0]["name"], "report.bin");
    assert_eq!(listed[0]["size"], content.len());
    let target = dir.path().join("copy.bin");
    let got = json_out(
        naslink(&sim)
            .args(["--json", "get", "inbox/report.bin"])
            .arg(&target),
    );
    assert_eq!(got["bytes"], content.len());
    assert_eq!(std::fs::read(&target).unwrap(), content);
    naslink(&sim)
        .args(["get", "inbox/missing.bin"])
        .arg(dir.path().join("x"))
        .assert()
        .code(1);
}

#[test]
fn a_server_dying_mid_download_exits_3_and_leaves_no_file() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let sim = runtime
        .block_on(Server::start(Config {
            chunk_size: 64 * 1024,
            ..Config::default()
        }))
        .unwrap();
    let content: Vec<u8> = (0..2_000_000u32).map(|i| (i % 251) as u8).collect();
    let id = sim.put_document(None, "big.bin", content);
    // A relay that lets 600 KiB of the server's bytes through, then dies.
    let upstream = sim.addr();
    let listener = runtime
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let url = format!("ws://{}/", listener.local_addr().unwrap());
    runtime.spawn(async move {
        let (client, _) = listener.accept().await.unwrap();
        let server = tokio::net::TcpStream::connect(upstream).await.unwrap();
        let (mut client_rx, mut client_tx) = client.into_split();
        let (mut server_rx, mut server_tx) = server.into_split();
        let up = tokio::spawn(async move {
            let _ = tokio::io::copy(&mut client_rx, &mut server_tx).await;
        });
        let (mut passed, limit) = (0, 600 * 1024);
        let mut buf = vec![0u8; 16 * 1024];
        while passed < limit {
            let n = match server_rx.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => n.min(limit - passed),
            };
            if client_tx.write_all(&buf[..n]).await.is_err() {
                break;
            }
            passed += n;
        }
        up.abort();
    });
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("big.bin");
    Command::cargo_bin("naslink")
        .unwrap()
        .env("NASLINK_PASSWORD", "admin")
        // The relay takes one connection: no protocol-13 probe before it.
        .args(["--url", &url, "--timeout", "10", "--protocol-version", "3"])
        .args(["get", &id])
        .arg(&target)
        .timeout(Duration::from_secs(30))
        .assert()
        .code(3)
        .stderr(predicates::str::contains("connection dropped"));
    let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
    assert!(left.is_empty(), "{left:?}");
}
