//! `naslink get` at CFMS protocol 13 resumes an interrupted download: a
//! run killed mid-file (the emulator's stream frozen) leaves only the
//! partial beside the target, the next run fetches only the remaining
//! chunks (the emulator freezes after that many) and removes it;
//! `--no-resume` discards it and starts over.

use std::time::Duration;

use assert_cmd::Command;
use naslink_sim::cfms::Config;

mod support;
use support::CfmsSim as Sim;

const CHUNK: usize = 16 * 1024;
const LEN: usize = 10 * CHUNK + 1000;
const CHUNKS: usize = 11;
const FROZEN_AFTER: usize = 4;

fn start() -> Sim {
    Sim::start(Config {
        protocol_version: 13,
        chunk_size: CHUNK,
        ..Config::default()
    })
}

fn naslink(sim: &Sim, timeout: Duration) -> Command {
    let mut cmd = sim.naslink(&sim.pin, "10");
    cmd.timeout(timeout);
    cmd
}

fn names(dir: &std::path::Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 7 + i / 251) as u8).collect()
}

/// A run killed while the stream is frozen after `FROZEN_AFTER` chunks.
fn killed_mid_file(sim: &Sim, target: &std::path::Path) {
    sim.handle.set_download_freeze(Some(FROZEN_AFTER));
    naslink(sim, Duration::from_secs(3))
        .args(["get", "x.bin"])
        .arg(target)
        .assert()
        .failure();
    assert_eq!(
        names(target.parent().unwrap()),
        [".x.bin.naslink-partial", ".x.bin.naslink-partial-seals"]
    );
    let kept = std::fs::metadata(target.with_file_name(".x.bin.naslink-partial")).unwrap();
    assert_eq!(kept.len(), (FROZEN_AFTER * CHUNK) as u64);
}

#[test]
fn get_resumes_a_killed_download_with_only_the_remaining_chunks() {
    let sim = start();
    let content = pattern(LEN);
    sim.handle.put_document(None, "x.bin", content.clone());
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("x.bin");
    killed_mid_file(&sim, &target);
    // From the start, a stream frozen after the 7 chunks left could not end.
    sim.handle.set_download_freeze(Some(CHUNKS - FROZEN_AFTER));
    naslink(&sim, Duration::from_secs(30))
        .args(["get", "x.bin"])
        .arg(&target)
        .assert()
        .success()
        .stderr(predicates::str::contains(format!(
            "resuming the partial download at byte {}",
            FROZEN_AFTER * CHUNK
        )));
    assert!(std::fs::read(&target).unwrap() == content);
    assert_eq!(names(dir.path()), ["x.bin"]);
}

#[test]
fn get_no_resume_discards_the_partial() {
    let sim = start();
    let content = pattern(LEN);
    sim.handle.put_document(None, "x.bin", content.clone());
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("x.bin");
    killed_mid_file(&sim, &target);
    sim.handle.set_download_freeze(None);
    naslink(&sim, Duration::from_secs(30))
        .args(["get", "--no-resume", "x.bin"])
        .arg(&target)
        .assert()
        .success()
        .stderr(predicates::str::contains(
            "--no-resume: the partial download was removed",
        ));
    assert!(std::fs::read(&target).unwrap() == content);
    assert_eq!(names(dir.path()), ["x.bin"]);
}
