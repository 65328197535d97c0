//! What the `naslink` binary owes its user whatever the server says:
//! refusals of transfers exit 1 with the server's code and message, an
//! out-of-range `--timeout` is a usage error, a password sent over plain
//! `ws://` off this machine is warned about, and server text cannot drive
//! the terminal.

use std::time::Duration;

use assert_cmd::Command;
use predicates::prelude::*;

fn naslink(url: &str) -> Command {
    let mut cmd = Command::cargo_bin("naslink").unwrap();
    cmd.env_remove("NASLINK_URL")
        .env_remove("NASLINK_USER")
        .env("NASLINK_PASSWORD", "admin")
        .args(["--url", url])
        .timeout(Duration::from_secs(30));
    cmd
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap()
}

#[test]
fn an_out_of_range_timeout_is_a_usage_error() {
    for bad in ["1e30", "-1", "NaN", "0", "inf", "soon"] {
        naslink("ws://127.0.0.1:1/")
            .arg(format!("--timeout={bad}"))
            .arg("info")
            .assert()
            .code(2)
            .stderr(predicate::str::contains("--timeout"));
    }
}

#[test]
fn a_password_over_plain_ws_to_another_host_is_warned_about() {
    // TEST-NET-1: never answers, the connection fails after --timeout.
    naslink("ws://192.0.2.1:5104/")
        .args(["--timeout", "1", "info"])
        .assert()
        .code(3)
        .stderr(predicate::str::contains(
            "warning: logging in over plain ws://",
        ));
}

#[test]
fn loopback_over_plain_ws_is_not_warned_about() {
    naslink("ws://127.0.0.1:1/")
        .args(["--timeout", "1", "info"])
        .assert()
        .code(3)
        .stderr(predicate::str::contains("plain ws://").not());
}

#[test]
fn a_cfms_download_refused_by_the_server_exits_1_with_its_code_and_message() {
    let rt = runtime();
    // Below protocol 5 the seeded document (id `hello`) has no revision.
    let sim = rt
        .block_on(naslink_sim::cfms::Server::start(
            naslink_sim::cfms::Config::default(),
        ))
        .unwrap();
    let id = "hello";
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("hello.txt");
    let out = naslink(&sim.url())
        .args(["--timeout", "10", "get", id])
        .arg(&target)
        .assert()
        .code(1)
        .get_output()
        .clone();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("the server refused"), "{stderr}");
    assert!(stderr.contains("(code "), "{stderr}");
    assert!(!stderr.contains("ServerError"), "no Debug text: {stderr}");
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    rt.block_on(sim.shutdown());
}

#[test]
fn an_fnos_upload_refused_by_the_server_exits_1_with_its_errno() {
    let rt = runtime();
    let sim = rt
        .block_on(naslink_sim::fnos::Server::start(
            naslink_sim::fnos::Config {
                key: naslink_sim::fnos::KeySource::Fixture,
                free_space: 10,
                ..naslink_sim::fnos::Config::default()
            },
        ))
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let local = dir.path().join("big.txt");
    std::fs::write(&local, [b'x'; 100]).unwrap();
    naslink(&sim.url())
        .args(["--timeout", "10", "put"])
        .arg(&local)
        .arg("vol1/1000/")
        .assert()
        .code(1)
        .stderr(predicate::str::contains("errno 4386"));
    assert_eq!(sim.file_content("vol1/1000/big.txt"), None);
    rt.block_on(sim.shutdown());
}

#[test]
fn control_characters_from_the_server_are_escaped_on_the_terminal() {
    let rt = runtime();
    let sim = rt
        .block_on(naslink_sim::fnos::Server::start(
            naslink_sim::fnos::Config {
                key: naslink_sim::fnos::KeySource::Fixture,
                host_name: "nas\u{1b}]0;owned\u{7}\nfake line\u{202e}".into(),
                ..naslink_sim::fnos::Config::default()
            },
        ))
        .unwrap();
    let out = naslink(&sim.url())
        .args(["--timeout", "10", "info"])
        .assert()
        .success()
        .get_output()
        .clone();
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(
        !stdout.contains(['\u{1b}', '\u{7}', '\u{202e}']),
        "{stdout:?}"
    );
    assert_eq!(stdout.lines().count(), 1, "{stdout:?}");
    assert!(
        stdout.contains("nas\\u{1b}]0;owned\\u{7}\\nfake line\\u{202e}"),
        "{stdout:?}"
    );
    // --json keeps the exact text (JSON escapes it by itself).
    let json = naslink(&sim.url())
        .args(["--timeout", "10", "--json", "info"])
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let value: serde_json::Value = serde_json::from_slice(&json).unwrap();
    assert_eq!(value["host"], "nas\u{1b}]0;owned\u{7}\nfake line\u{202e}");
    rt.block_on(sim.shutdown());
}
