//! `FnosClient::upload` and `FnosClient::download` against the fnOS
//! emulator's HTTP endpoints on loopback: contents compared byte for byte
//! on the server side and after the round trip, the overwrite modes, the
//! server's refusals with their errno, non-ASCII names, the access-code
//! gate, and a download cut mid-body that must leave no file behind.

use naslink_core::fnos::Errno;
use naslink_sim::fnos::{Config, Faults};
use naslink_tokio::fnos::{FnosClient, FnosError, Overwrite};

mod fnos_support;
use fnos_support::emulator;

const DOCS: &str = "vol1/1000/Documents";

fn options(url: &str) -> naslink_tokio::fnos::FnosOptions {
    fnos_support::options(url, "admin")
}

/// Bound every test so a hang fails instead of blocking the suite.
async fn bounded<T>(f: impl std::future::Future<Output = T>) -> T {
    fnos_support::bounded(60, f).await
}

/// Bytes that differ at every position, so a shifted or repeated piece shows.
fn pattern(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

fn errno_of(result: Result<impl std::fmt::Debug, FnosError>) -> Option<Errno> {
    match result {
        Err(FnosError::Server { errno, .. }) => errno,
        other => panic!("expected the server's refusal, got {other:?}"),
    }
}

/// No `.NAME.naslink-part` (or anything else) left in `dir` but `keep`.
fn only_files(dir: &std::path::Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[tokio::test]
async fn upload_then_download_is_byte_identical_at_several_sizes() {
    bounded(async {
        let sim = emulator(Config::default()).await;
        let nas = FnosClient::connect(options(&sim.url())).await.unwrap();
        let dir = tempfile::tempdir().unwrap();
        for (i, size) in [0usize, 1, 65_536, 65_543, 3 * 1024 * 1024 + 5]
            .into_iter()
            .enumerate()
        {
            let content = pattern(size, i as u64 + 7);
            let local = dir.path().join(format!("in-{size}.bin"));
            std::fs::write(&local, &content).unwrap();
            let remote = format!("{DOCS}/up-{size}.bin");

            let mut last = None;
            let stored = nas
                .upload(&local, &remote, Overwrite::Replace, |done, total| {
                    last = Some((done, total))
                })
                .await
                .unwrap();
            assert_eq!(stored, remote);
            assert_eq!(last, Some((size as u64, size as u64)));
            assert_eq!(
                sim.file_content(&remote).as_deref(),
                Some(&content[..]),
                "stored bytes of {size}"
            );

            // The listing shows it with its size.
            let listing = nas
                .request("file.ls", Some(&serde_json::json!({ "path": DOCS })))
                .await
                .unwrap();
            let entry = listing
                .merged("files")
                .into_iter()
                .find(|f| f["name"] == format!("up-{size}.bin"))
                .expect("listed");
            assert_eq!(entry["size"].as_u64().unwrap_or(0), size as u64);

            let back = dir.path().join(format!("out-{size}.bin"));
            let mut seen = 0;
            let got = nas
                .download(&remote, &back, |done, _| seen = done)
                .await
                .unwrap();
            assert_eq!(got, size as u64);
            assert_eq!(seen, size as u64);
            assert_eq!(std::fs::read(&back).unwrap(), content, "downloaded {size}");
        }
        assert!(
            !only_files(dir.path())
                .iter()
                .any(|n| n.contains("naslink-part")),
            "no temporary file left"
        );
        sim.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn overwrite_modes_keep_both_replace_or_refuse() {
    bounded(async {
        let sim = emulator(Config::default()).await;
        let nas = FnosClient::connect(options(&sim.url())).await.unwrap();
        let dir = tempfile::tempdir().unwrap();
        let remote = format!("{DOCS}/same.txt");
        sim.put_file(&remote, b"first".to_vec()).unwrap();

        let local = dir.path().join("same.txt");
        std::fs::write(&local, b"second").unwrap();
        let kept = nas
            .upload(&local, &remote, Overwrite::KeepBoth, |_, _| {})
            .await
            .unwrap();
        assert_ne!(kept, remote, "keep-both uploads under a new name");
        assert!(kept.starts_with(&format!("{DOCS}/")), "{kept}");
        assert_eq!(sim.file_content(&remote).unwrap(), b"first");
        assert_eq!(sim.file_content(&kept).unwrap(), b"second");

        let skipped = nas
            .upload(&local, &remote, Overwrite::Skip, |_, _| {})
            .await;
        assert_eq!(errno_of(skipped), Some(Errno::from_code(4102)));
        assert_eq!(sim.file_content(&remote).unwrap(), b"first");

        let replaced = nas
            .upload(&local, &remote, Overwrite::Replace, |_, _| {})
            .await
            .unwrap();
        assert_eq!(replaced, remote);
        assert_eq!(sim.file_content(&remote).unwrap(), b"second");
        sim.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn refusals_carry_the_servers_errno_and_leave_nothing_behind() {
    bounded(async {
        let sim = emulator(Config::default()).await;
        let nas = FnosClient::connect(options(&sim.url())).await.unwrap();
        let dir = tempfile::tempdir().unwrap();
        let local = dir.path().join("a.txt");
        std::fs::write(&local, b"abc").unwrap();

        let missing_folder = nas
            .upload(&local, &format!("{DOCS}/no-such-folder/a.txt"), Overwrite::KeepBoth, |_, _| {})
            .await;
        assert_eq!(errno_of(missing_folder), Some(Errno::from_code(4100)));

        let not_a_path = nas
            .upload(&local, "a.txt", Overwrite::KeepBoth, |_, _| {})
            .await;
        assert!(
            matches!(&not_a_path, Err(FnosError::Transfer(why)) if why.contains("full remote path")),
            "{not_a_path:?}"
        );

        let target = dir.path().join("never.bin");
        let missing_file = nas
            .download(&format!("{DOCS}/no-such-file.bin"), &target, |_, _| {})
            .await;
        assert_eq!(errno_of(missing_file), Some(Errno::from_code(4100)));
        assert_eq!(only_files(dir.path()), ["a.txt"]);

        let no_local = nas
            .upload(&dir.path().join("absent"), &format!("{DOCS}/x"), Overwrite::KeepBoth, |_, _| {})
            .await;
        assert!(
            matches!(&no_local, Err(FnosError::Transfer(why)) if why.contains("cannot open")),
            "{no_local:?}"
        );
        sim.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn a_download_cut_mid_body_fails_and_keeps_the_old_target() {
    bounded(async {
        let sim = emulator(Config {
            faults: Faults {
                cut_download_after: Some(100_000),
                ..Faults::default()
            },
            ..Config::default()
        })
        .await;
        let remote = format!("{DOCS}/big.bin");
        sim.put_file(&remote, pattern(1024 * 1024, 3)).unwrap();
        let nas = FnosClient::connect(options(&sim.url())).await.unwrap();
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("big.bin");
        std::fs::write(&target, b"the old content").unwrap();

        let cut = nas.download(&remote, &target, |_, _| {}).await;
        assert!(
            matches!(&cut, Err(FnosError::Transfer(why)) if why.contains("middle of the response body")),
            "{cut:?}"
        );
        assert_eq!(std::fs::read(&target).unwrap(), b"the old content");
        assert_eq!(only_files(dir.path()), ["big.bin"]);
        // The WebSocket session is unaffected.
        nas.request("appcgi.sysinfo.getHostName", None)
            .await
            .unwrap();
        sim.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn non_ascii_names_and_the_access_code_gate() {
    bounded(async {
        let sim = emulator(Config {
            access_code: Some("2468".into()),
            ..Config::default()
        })
        .await;
        let mut gated = options(&sim.url());
        gated.link.access_code = Some("2468".into());
        let nas = FnosClient::connect(gated).await.unwrap();
        let dir = tempfile::tempdir().unwrap();
        let local = dir.path().join("报告 2025.txt");
        let content = "年度报告 — naslink\n".repeat(1000).into_bytes();
        std::fs::write(&local, &content).unwrap();

        let stored = nas
            .upload(&local, &format!("{DOCS}/"), Overwrite::KeepBoth, |_, _| {})
            .await;
        // A folder is not a file name: the path must name the file.
        assert!(stored.is_err(), "{stored:?}");

        let remote = format!("{DOCS}/报告 2025.txt");
        let stored = nas
            .upload(&local, &remote, Overwrite::KeepBoth, |_, _| {})
            .await
            .unwrap();
        assert_eq!(stored, remote);
        assert_eq!(sim.file_content(&remote).unwrap(), content);
        let back = dir.path().join("back.txt");
        nas.download(&remote, &back, |_, _| {}).await.unwrap();
        assert_eq!(std::fs::read(&back).unwrap(), content);
        sim.shutdown().await;
    })
    .await;
}
