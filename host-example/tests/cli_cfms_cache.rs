//! The CFMS protocol version `naslink` remembers per server across runs:
//! the first run probes and writes the cache, the next one speaks the
//! version at once (one connection instead of two against a 3–5 server), a
//! server that changed version is still served and the cache corrected, a
//! corrupt cache file is a note, and `--protocol-version` / `--no-cache`
//! leave the cache alone.

use std::path::Path;
use std::time::{Duration, Instant};

use assert_cmd::Command;
use naslink_sim::cfms::Config;
use serde_json::{Value, json};

mod support;
use support::CfmsSim as Sim;

const FILE: &str = "cfms-protocol-versions.json";

fn start(protocol_version: u32) -> Sim {
    Sim::start(Config {
        protocol_version,
        bad_password_delay: Duration::from_millis(50),
        ..Config::default()
    })
}

/// `naslink` with its cache in `cache`.
fn naslink(sim: &Sim, cache: &Path) -> Command {
    let mut cmd = sim.naslink(&sim.pin, "10");
    cmd.env_remove("NASLINK_NO_CACHE")
        .env("NASLINK_CACHE_DIR", cache);
    cmd
}

fn key(sim: &Sim) -> String {
    // The emulator's URL is `wss://localhost:PORT/`.
    sim.handle.url()
}

fn cached(cache: &Path, sim: &Sim) -> Option<u64> {
    let text = std::fs::read(cache.join(FILE)).ok()?;
    let root: Value = serde_json::from_slice(&text).expect("the cache file is JSON");
    root["servers"][key(sim)]["protocol_version"].as_u64()
}

fn remember(cache: &Path, sim: &Sim, version: u32) {
    let body =
        json!({"format": 1, "servers": {key(sim): {"protocol_version": version, "learnt": 1}}});
    std::fs::write(cache.join(FILE), body.to_string()).unwrap();
}

fn info(cmd: &mut Command) -> Value {
    let out = cmd.args(["--json", "info"]).assert().success();
    serde_json::from_slice(&out.get_output().stdout).expect("one JSON document")
}

#[test]
fn the_first_run_probes_and_remembers_and_the_second_opens_one_connection() {
    let cache = tempfile::tempdir().unwrap();
    let sim = start(3);
    assert_eq!(
        info(&mut naslink(&sim, cache.path()))["protocol_version"],
        3
    );
    // The probe (closed by the text server), then the text connection.
    assert_eq!(sim.handle.connections_accepted(), 2);
    assert_eq!(cached(cache.path(), &sim), Some(3));
    assert_eq!(
        info(&mut naslink(&sim, cache.path()))["protocol_version"],
        3
    );
    assert_eq!(sim.handle.connections_accepted(), 3, "no probe this time");

    let sim = start(13);
    assert_eq!(
        info(&mut naslink(&sim, cache.path()))["protocol_version"],
        13
    );
    assert_eq!(
        info(&mut naslink(&sim, cache.path()))["protocol_version"],
        13
    );
    assert_eq!(sim.handle.connections_accepted(), 2);
    assert_eq!(cached(cache.path(), &sim), Some(13));
}

#[test]
fn a_remembered_13_met_by_a_text_server_is_dropped_and_negotiated_afresh() {
    let cache = tempfile::tempdir().unwrap();
    let sim = start(3);
    remember(cache.path(), &sim, 13);
    let began = Instant::now();
    let mut cmd = naslink(&sim, cache.path());
    assert_eq!(info(&mut cmd)["protocol_version"], 3);
    // The server's close answers at once: no deadline was waited for.
    assert!(began.elapsed() < Duration::from_secs(5));
    assert_eq!(cached(cache.path(), &sim), Some(3));
    // The remembered 13 (closed), the probe (closed), text.
    assert_eq!(sim.handle.connections_accepted(), 3);
}

#[test]
fn a_remembered_3_met_by_a_protocol_13_server_is_dropped_after_its_short_wait() {
    let cache = tempfile::tempdir().unwrap();
    let sim = start(13);
    remember(cache.path(), &sim, 3);
    let began = Instant::now();
    assert_eq!(
        info(&mut naslink(&sim, cache.path()))["protocol_version"],
        13
    );
    // The text server_info goes unanswered for 3 s, not the 10 s timeout.
    let took = began.elapsed();
    assert!(took < Duration::from_secs(8), "{took:?}");
    assert_eq!(cached(cache.path(), &sim), Some(13));
    assert_eq!(sim.handle.connections_accepted(), 2);
}

#[test]
fn a_corrupt_cache_file_is_a_note_and_is_replaced() {
    let cache = tempfile::tempdir().unwrap();
    let sim = start(3);
    std::fs::write(
        cache.path().join(FILE),
        b"{\"format\": 1, \"servers\": [\x00",
    )
    .unwrap();
    let out = naslink(&sim, cache.path())
        .args(["--json", "info"])
        .assert()
        .success();
    let stderr = String::from_utf8_lossy(&out.get_output().stderr).into_owned();
    assert!(stderr.contains("ignoring the protocol cache"), "{stderr}");
    assert_eq!(cached(cache.path(), &sim), Some(3));
}

#[test]
fn a_version_naslink_does_not_speak_is_forgotten() {
    let cache = tempfile::tempdir().unwrap();
    // A text server announcing 12.
    let sim = start(12);
    remember(cache.path(), &sim, 13);
    naslink(&sim, cache.path())
        .arg("info")
        .assert()
        .code(3)
        .stderr(predicates::str::contains("protocol 12"));
    assert_eq!(cached(cache.path(), &sim), None);
    assert!(cache.path().join(FILE).exists());
}

#[test]
fn protocol_version_and_no_cache_leave_the_cache_alone() {
    let cache = tempfile::tempdir().unwrap();
    let sim = start(3);
    remember(cache.path(), &sim, 13);
    let mut pinned = naslink(&sim, cache.path());
    pinned.args(["--protocol-version", "3"]);
    assert_eq!(info(&mut pinned)["protocol_version"], 3);
    assert_eq!(sim.handle.connections_accepted(), 1);
    assert_eq!(
        cached(cache.path(), &sim),
        Some(13),
        "a pin neither reads nor writes"
    );

    let fresh = tempfile::tempdir().unwrap();
    let mut bypass = naslink(&sim, fresh.path());
    bypass.arg("--no-cache");
    assert_eq!(info(&mut bypass)["protocol_version"], 3);
    let mut bypass = naslink(&sim, fresh.path());
    bypass.env("NASLINK_NO_CACHE", "1");
    assert_eq!(info(&mut bypass)["protocol_version"], 3);
    assert!(!fresh.path().join(FILE).exists());
}
