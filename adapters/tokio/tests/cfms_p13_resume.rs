//! `CfmsClient::download_resumable` at protocol 13 against the emulator: a
//! download frozen mid-file and dropped (Ctrl-C) leaves its partial beside
//! the target, and a new client resumes it, fetching only the remaining
//! chunks; `resume = false` discards it; a forged chunk kept in the
//! partial is named after the resume and leaves nothing; a damaged
//! partial is discarded and a refused task starts over; a second download
//! to the same target is refused while the first runs; 5 MiB round trip.

use std::time::Duration;

use naslink_sim::cfms::{Config, DownloadFault, Handle, Server};
use naslink_tokio::cfms::{CfmsClient, CfmsOptions};

const CHUNK: usize = 16 * 1024;
/// 11 chunks, the last one short.
const LEN: usize = 10 * CHUNK + 1000;
const CHUNKS: usize = 11;
/// Chunks the first, interrupted run gets.
const FROZEN_AFTER: usize = 4;

async fn emulator() -> Handle {
    Server::start(Config {
        protocol_version: 13,
        chunk_size: CHUNK,
        ..Config::default()
    })
    .await
    .expect("emulator starts")
}

async fn client(sim: &Handle) -> CfmsClient {
    let mut options = CfmsOptions::new(&sim.url(), "admin", "admin");
    options.request_timeout = Duration::from_secs(5);
    CfmsClient::connect(options).await.unwrap()
}

async fn bounded<T>(f: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(30), f)
        .await
        .expect("test finished in time")
}

fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 7 + i / 251) as u8).collect()
}

fn names(dir: &std::path::Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// A first run that gets `FROZEN_AFTER` chunks, then is dropped (as by
/// Ctrl-C) with the stream frozen: the partial stays beside the target.
async fn interrupted(sim: &Handle, id: &str, target: &std::path::Path) {
    sim.set_download_freeze(Some(FROZEN_AFTER));
    let nas = client(sim).await;
    let mut seen = 0;
    let run = nas.download_resumable(id, target, true, |_| {}, |done, _| seen = done);
    assert!(
        tokio::time::timeout(Duration::from_secs(1), run)
            .await
            .is_err(),
        "the frozen download did not end"
    );
    assert_eq!(seen, (FROZEN_AFTER * CHUNK) as u64);
    drop(nas);
    // The writer thread finishes what it was handed.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let dir = target.parent().unwrap();
    assert_eq!(
        names(dir),
        [".x.bin.naslink-partial", ".x.bin.naslink-partial-seals"],
        "only the partial, under names that say so"
    );
    sim.set_download_freeze(None);
}

#[tokio::test]
async fn an_interrupted_download_resumes_with_only_the_remaining_chunks() {
    bounded(async {
        let sim = emulator().await;
        let content = pattern(LEN);
        let id = sim.put_document(None, "x.bin", content.clone());
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("x.bin");
        interrupted(&sim, &id, &target).await;
        // Resumed from chunk 4, the stream must deliver only the 7 chunks
        // left: frozen after 7, a download from the start could not end.
        sim.set_download_freeze(Some(CHUNKS - FROZEN_AFTER));
        let nas = client(&sim).await;
        let mut notes = Vec::new();
        let mut first = None;
        let size = nas
            .download_resumable(
                &id,
                &target,
                true,
                |n| notes.push(n.to_owned()),
                |done, _| {
                    first.get_or_insert(done);
                },
            )
            .await
            .unwrap();
        assert_eq!(size, LEN as u64);
        assert_eq!(std::fs::read(&target).unwrap(), content);
        assert_eq!(first, Some((FROZEN_AFTER * CHUNK) as u64));
        assert_eq!(
            notes,
            [format!(
                "resuming the partial download at byte {}",
                FROZEN_AFTER * CHUNK
            )]
        );
        assert_eq!(names(dir.path()), ["x.bin"], "the partial is removed");
        sim.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn no_resume_removes_the_partial_and_starts_over() {
    bounded(async {
        let sim = emulator().await;
        let content = pattern(LEN);
        let id = sim.put_document(None, "x.bin", content.clone());
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("x.bin");
        interrupted(&sim, &id, &target).await;
        let nas = client(&sim).await;
        let mut notes = Vec::new();
        let mut first = None;
        nas.download_resumable(
            &id,
            &target,
            false,
            |n| notes.push(n.to_owned()),
            |done, _| {
                first.get_or_insert(done);
            },
        )
        .await
        .unwrap();
        assert_eq!(first, Some(0), "from the start");
        assert_eq!(std::fs::read(&target).unwrap(), content);
        assert_eq!(
            notes,
            ["--no-resume: the partial download was removed; starting over"]
        );
        assert_eq!(names(dir.path()), ["x.bin"]);
        sim.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn a_forged_chunk_kept_in_the_partial_is_named_after_the_resume() {
    bounded(async {
        let sim = emulator().await;
        let id = sim.put_document(None, "x.bin", pattern(LEN));
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("x.bin");
        // Chunk 1 arrives forged in the first run and is kept.
        sim.set_download_fault(Some(DownloadFault::FlipCiphertext { index: 1 }));
        interrupted(&sim, &id, &target).await;
        let nas = client(&sim).await;
        let failed = nas
            .download_resumable(&id, &target, true, |_| {}, |_, _| {})
            .await
            .unwrap_err();
        assert!(
            failed.to_string().contains("chunk 1 failed AES-GCM"),
            "{failed}"
        );
        assert!(names(dir.path()).is_empty(), "no target, no partial");
        sim.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn a_damaged_partial_is_discarded_and_a_refused_task_starts_over() {
    bounded(async {
        let sim = emulator().await;
        let content = pattern(LEN);
        let id = sim.put_document(None, "x.bin", content.clone());
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("x.bin");
        let seals = dir.path().join(".x.bin.naslink-partial-seals");

        // Damaged: not a partial at all.
        std::fs::write(dir.path().join(".x.bin.naslink-partial"), b"junk").unwrap();
        std::fs::write(&seals, b"junk").unwrap();
        let nas = client(&sim).await;
        let mut notes = Vec::new();
        nas.download_resumable(&id, &target, true, |n| notes.push(n.to_owned()), |_, _| {})
            .await
            .unwrap();
        assert_eq!(
            notes,
            ["the partial download was discarded: it is not a naslink partial download"]
        );
        assert_eq!(std::fs::read(&target).unwrap(), content);
        drop(nas);

        // A task the server does not know (spent or expired): the header's
        // task id is replaced by one of the same length.
        std::fs::remove_file(&target).unwrap();
        interrupted(&sim, &id, &target).await;
        let mut bytes = std::fs::read(&seals).unwrap();
        let text = String::from_utf8_lossy(&bytes).into_owned();
        let task_line = text.find("\ntask ").unwrap() + 1;
        let value_at = task_line + text[task_line..].find('\n').unwrap() + 1;
        let value_end = value_at + text[value_at..].find('\n').unwrap();
        for b in &mut bytes[value_at..value_end] {
            *b = b'0';
        }
        std::fs::write(&seals, &bytes).unwrap();
        let nas = client(&sim).await;
        let mut notes = Vec::new();
        nas.download_resumable(&id, &target, true, |n| notes.push(n.to_owned()), |_, _| {})
            .await
            .unwrap();
        assert_eq!(notes.len(), 2, "{notes:?}");
        assert!(notes[1].contains("task was refused"), "{notes:?}");
        assert!(notes[1].ends_with("starting over"), "{notes:?}");
        assert_eq!(std::fs::read(&target).unwrap(), content);
        assert_eq!(names(dir.path()), ["x.bin"]);
        sim.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn five_mib_round_trip() {
    bounded(async {
        let sim = Server::start(Config {
            protocol_version: 13,
            chunk_size: 256 * 1024,
            ..Config::default()
        })
        .await
        .unwrap();
        let content = pattern(5 * 1024 * 1024);
        let id = sim.put_document(None, "big.bin", content.clone());
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("big.bin");
        let nas = client(&sim).await;
        let size = nas
            .download_resumable(&id, &target, true, |_| {}, |_, _| {})
            .await
            .unwrap();
        assert_eq!(size, content.len() as u64);
        assert!(std::fs::read(&target).unwrap() == content);
        assert_eq!(names(dir.path()), ["big.bin"]);
        sim.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn a_second_download_to_the_same_target_is_refused_while_the_first_runs() {
    bounded(async {
        let sim = emulator().await;
        let id = sim.put_document(None, "x.bin", pattern(LEN));
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("x.bin");
        sim.set_download_freeze(Some(FROZEN_AFTER));
        let first = client(&sim).await;
        let second = client(&sim).await;
        let mut running = Box::pin(first.download_resumable(&id, &target, true, |_| {}, |_, _| {}));
        assert!(
            tokio::time::timeout(Duration::from_millis(500), &mut running)
                .await
                .is_err()
        );
        for resume in [true, false] {
            let refused = second
                .download_resumable(&id, &target, resume, |_| {}, |_, _| {})
                .await
                .unwrap_err();
            assert!(
                refused.to_string().contains("another download"),
                "{refused}"
            );
        }
        assert_eq!(
            names(dir.path()),
            [".x.bin.naslink-partial", ".x.bin.naslink-partial-seals"],
            "the first run's partial is untouched"
        );
        sim.shutdown().await;
    })
    .await;
}
