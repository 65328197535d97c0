//! The `naslink` binary against the CFMS emulator at protocols 3, 5 and 13
//! with no configuration (`info` against 13 used to hang), `--protocol-version`
//! pinning, versions refused by name, and at 13: mkdir, put of 0 B, 1 B and
//! 65537 B, ls, get (and a corrupted chunk named), unanswered requests.

use std::time::{Duration, Instant};

use assert_cmd::Command;
use naslink_sim::cfms::Config;

mod support;
use serde_json::Value;
use support::CfmsSim as Sim;

fn start(protocol_version: u32) -> Sim {
    Sim::start(Config {
        protocol_version,
        bad_password_delay: Duration::from_millis(50),
        ..Config::default()
    })
}

fn naslink(sim: &Sim) -> Command {
    naslink_within(sim, "10")
}

fn naslink_within(sim: &Sim, timeout: &str) -> Command {
    sim.naslink(&sim.pin, timeout)
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
fn info_works_against_3_5_and_13_without_configuration() {
    for version in [3, 5, 13] {
        let sim = start(version);
        let began = Instant::now();
        let info = json_out(naslink(&sim).args(["--json", "info"]));
        assert_eq!(info["protocol"], "cfms");
        assert_eq!(info["protocol_version"], version, "{info}");
        // Well within the 10 s deadline: no step waited for a timeout.
        assert!(began.elapsed() < Duration::from_secs(5), "at {version}");
    }
}

#[test]
fn protocol_version_pins_the_version() {
    let sim = start(13);
    let info = json_out(naslink(&sim).args(["--json", "--protocol-version", "13", "info"]));
    assert_eq!(info["protocol_version"], 13);
    let sim = start(3);
    let info = json_out(naslink(&sim).args(["--json", "--protocol-version", "3", "info"]));
    assert_eq!(info["protocol_version"], 3);
    // Pinned 13 against a text server: no probe, so no fallback to text,
    // but the error says what the close means.
    naslink(&sim)
        .args(["--protocol-version", "13", "info"])
        .assert()
        .failure()
        .stderr(predicates::str::contains(
            "a CFMS 3-5 server closes a protocol-13 message this way",
        ));
    naslink(&sim)
        .args(["--protocol-version", "7", "info"])
        .assert()
        .code(2)
        .stderr(predicates::str::contains("not protocol 7"));
}

#[test]
fn versions_naslink_does_not_speak_are_named() {
    for version in [12, 14] {
        let sim = start(version);
        naslink(&sim)
            .arg("info")
            .assert()
            .failure()
            .stderr(predicates::str::contains(format!("protocol {version}")));
    }
}

#[test]
fn at_13_mkdir_put_and_ls() {
    let sim = start(13);
    let dir = tempfile::tempdir().unwrap();
    naslink(&sim).args(["mkdir", "inbox"]).assert().success();
    for len in [0usize, 1, 65537] {
        let source = dir.path().join(format!("f{len}.bin"));
        let content: Vec<u8> = (0..len).map(|i| (i % 253) as u8).collect();
        std::fs::write(&source, &content).unwrap();
        let put = json_out(
            naslink(&sim)
                .args(["--json", "put"])
                .arg(&source)
                .arg("inbox/"),
        );
        assert_eq!(put["title"], format!("f{len}.bin"));
        let id = put["document_id"].as_str().expect("document id").to_owned();
        assert_eq!(sim.handle.document_content(&id).unwrap(), content);
    }
    let listed = json_out(naslink(&sim).args(["--json", "ls", "inbox"]));
    let mut names: Vec<_> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["name"].as_str().unwrap().to_owned())
        .collect();
    names.sort();
    assert_eq!(names, ["f0.bin", "f1.bin", "f65537.bin"]);
    let root = json_out(naslink(&sim).args(["--json", "ls"]));
    assert!(
        root.as_array()
            .unwrap()
            .iter()
            .any(|e| e["name"] == "inbox")
    );
}

#[test]
fn at_13_get_round_trips_and_a_corrupted_chunk_is_named() {
    let sim = start(13);
    let content: Vec<u8> = (0..300_000u32).map(|i| (i % 253) as u8).collect();
    sim.handle.put_document(None, "x.bin", content.clone());
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("x.bin");
    let got = json_out(naslink(&sim).args(["--json", "get", "x.bin"]).arg(&target));
    assert_eq!(got["bytes"], content.len());
    assert_eq!(std::fs::read(&target).unwrap(), content);
    sim.handle
        .set_download_fault(Some(naslink_sim::cfms::DownloadFault::FlipCiphertext {
            index: 0,
        }));
    let other = dir.path().join("y.bin");
    naslink(&sim)
        .args(["get", "x.bin"])
        .arg(&other)
        .assert()
        .failure()
        .stderr(predicates::str::contains("chunk 0 failed AES-GCM"));
    assert!(!other.exists());
}

#[test]
fn at_13_an_unanswered_request_fails_by_its_deadline() {
    let sim = start(13);
    sim.handle.set_unanswered("list_directory", true);
    let began = Instant::now();
    naslink_within(&sim, "2")
        .arg("ls")
        .assert()
        .failure()
        .stderr(predicates::str::contains("no answer"));
    assert!(began.elapsed() < Duration::from_secs(5));
    // The opening sequence too: a server_info nobody answers is named.
    sim.handle.set_unanswered("server_info", true);
    let began = Instant::now();
    naslink_within(&sim, "3")
        .arg("info")
        .assert()
        .failure()
        .stderr(predicates::str::contains("server information"));
    assert!(began.elapsed() < Duration::from_secs(8));
}

#[test]
fn a_duplicate_nonce_exits_1_naming_it() {
    let sim = start(13);
    // The first authenticated request is `ls`'s listing (server_info and
    // login carry no nonce).
    sim.handle.reject_next_nonce();
    naslink(&sim)
        .args(["ls"])
        .assert()
        .code(1)
        .stderr(predicates::str::contains("nonce"))
        .stderr(predicates::str::contains("1001"));
    assert_eq!(sim.handle.replay_refusals(), 1);
}

#[test]
fn a_blocked_ip_exits_1_naming_it_after_one_connection() {
    let sim = start(13);
    sim.handle.set_ip_blocked(true);
    naslink(&sim)
        .arg("info")
        .assert()
        .code(1)
        .stderr(predicates::str::contains("blocked this IP"));
    assert_eq!(sim.handle.connections_accepted(), 1);
}
