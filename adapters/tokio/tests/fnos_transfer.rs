//! `FnosClient::upload` and `FnosClient::download` against the fnOS
//! emulator's HTTP endpoints on loopback: contents compared byte for byte
//! on the server side and after the round trip, the overwrite modes, the
//! server's refusals with their errno, non-ASCII names, the access-code
//! gate, and a download cut mid-body that must leave no file behind.

use std::time::Duration;

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

/// A relay in front of the emulator that answers `POST /upload` itself:
/// a 403 at once, before the body, then it stops reading (as a server
/// that refuses and closes), so the client's writes stall.
async fn refusing_relay(upstream: std::net::SocketAddr) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!(
        "ws://{}/websocket?type=main",
        listener.local_addr().unwrap()
    );
    tokio::spawn(async move {
        while let Ok((mut client, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut first = vec![0u8; 12];
                if client.read_exact(&mut first).await.is_err() {
                    return;
                }
                if first == b"POST /upload" {
                    let body = r#"{"result":"fail","errno":65534}"#;
                    let answer = format!(
                        "HTTP/1.1 403 Forbidden\r\nContent-Type: application/json\r\n\
                         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
                        body.len()
                    );
                    let _ = client.write_all(answer.as_bytes()).await;
                    let _ = client.shutdown().await;
                    tokio::time::sleep(Duration::from_secs(20)).await;
                    return;
                }
                let mut server = tokio::net::TcpStream::connect(upstream).await.unwrap();
                if server.write_all(&first).await.is_ok() {
                    let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                }
            });
        }
    });
    url
}

#[tokio::test]
async fn an_upload_refused_before_its_body_is_through_reports_the_refusal() {
    bounded(async {
        let sim = emulator(Config::default()).await;
        let mut opts = options(&refusing_relay(sim.addr()).await);
        opts.request_timeout = Duration::from_secs(1);
        let nas = FnosClient::connect(opts).await.unwrap();
        let dir = tempfile::tempdir().unwrap();
        let local = dir.path().join("big.bin");
        // Larger than what loopback socket buffers take in, so the
        // client's writes stall once the relay stops reading.
        std::fs::write(&local, pattern(48 * 1024 * 1024, 5)).unwrap();
        let started = std::time::Instant::now();
        let refused = nas
            .upload(
                &local,
                &format!("{DOCS}/big.bin"),
                Overwrite::KeepBoth,
                |_, _| {},
            )
            .await;
        assert_eq!(errno_of(refused), Some(Errno::SignatureCheckFailed));
        assert!(started.elapsed() < Duration::from_secs(10));
        sim.shutdown().await;
    })
    .await;
}

/// A relay in front of the emulator that passes everything through, but
/// forwards only the first `after` bytes of a `GET /multiple-download`
/// answer and then holds the connection open, sending nothing more: a
/// download that is surely in progress when the test drops it.
async fn stalling_relay(upstream: std::net::SocketAddr, after: usize) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!(
        "ws://{}/websocket?type=main",
        listener.local_addr().unwrap()
    );
    tokio::spawn(async move {
        while let Ok((mut client, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut first = vec![0u8; 22];
                if client.read_exact(&mut first).await.is_err() {
                    return;
                }
                let mut server = tokio::net::TcpStream::connect(upstream).await.unwrap();
                if server.write_all(&first).await.is_err() {
                    return;
                }
                if first != b"GET /multiple-download" {
                    let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                    return;
                }
                // The rest of the request goes on; the answer is held back.
                let (mut client_rx, mut client_tx) = client.into_split();
                let (mut server_rx, mut server_tx) = server.into_split();
                tokio::spawn(async move {
                    let _ = tokio::io::copy(&mut client_rx, &mut server_tx).await;
                });
                let mut piece = vec![0u8; after];
                let mut sent = 0;
                while sent < after {
                    match server_rx.read(&mut piece[..after - sent]).await {
                        Ok(n) if n > 0 => {
                            if client_tx.write_all(&piece[..n]).await.is_err() {
                                return;
                            }
                            sent += n;
                        }
                        _ => return,
                    }
                }
                // Hold both ends open until the test is over.
                tokio::time::sleep(Duration::from_secs(60)).await;
            });
        }
    });
    url
}

#[tokio::test]
async fn a_dropped_download_leaves_no_temporary_file_and_the_old_target() {
    bounded(async {
        let sim = emulator(Config::default()).await;
        let remote = format!("{DOCS}/big.bin");
        sim.put_file(&remote, pattern(1024 * 1024, 9)).unwrap();
        let nas = FnosClient::connect(options(&stalling_relay(sim.addr(), 200_000).await))
            .await
            .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("big.bin");
        std::fs::write(&target, b"the old content").unwrap();

        let started = std::sync::Arc::new(tokio::sync::Notify::new());
        let signal = started.clone();
        let download = nas.download(&remote, &target, move |received, _| {
            if received > 0 {
                signal.notify_one();
            }
        });
        tokio::select! {
            done = download => panic!("the stalled download ended: {done:?}"),
            () = started.notified() => {}
        }
        // The future is dropped: nothing beside the target, which is as it was.
        assert_eq!(only_files(dir.path()), ["big.bin"]);
        assert_eq!(std::fs::read(&target).unwrap(), b"the old content");
        sim.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn two_downloads_to_one_target_do_not_collide() {
    bounded(async {
        let sim = emulator(Config::default()).await;
        let (a, b) = (pattern(2 * 1024 * 1024, 21), pattern(2 * 1024 * 1024, 22));
        sim.put_file(&format!("{DOCS}/a.bin"), a.clone()).unwrap();
        sim.put_file(&format!("{DOCS}/b.bin"), b.clone()).unwrap();
        let nas = FnosClient::connect(options(&sim.url())).await.unwrap();
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("same.bin");

        let (remote_a, remote_b) = (format!("{DOCS}/a.bin"), format!("{DOCS}/b.bin"));
        let (first, second) = tokio::join!(
            nas.download(&remote_a, &target, |_, _| {}),
            nas.download(&remote_b, &target, |_, _| {}),
        );
        assert_eq!(first.unwrap(), a.len() as u64);
        assert_eq!(second.unwrap(), b.len() as u64);
        let content = std::fs::read(&target).unwrap();
        assert!(
            content == a || content == b,
            "the target mixes both downloads"
        );
        assert_eq!(only_files(dir.path()), ["same.bin"]);
        sim.shutdown().await;
    })
    .await;
}

/// A relay in front of the emulator that answers `GET /multiple-download`
/// itself with `head`, then 64 KiB pieces (chunked when `chunked`) until
/// the client goes away; everything else is relayed.
async fn lying_relay(upstream: std::net::SocketAddr, head: &'static str, chunked: bool) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!(
        "ws://{}/websocket?type=main",
        listener.local_addr().unwrap()
    );
    tokio::spawn(async move {
        while let Ok((mut client, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut first = vec![0u8; 22];
                if client.read_exact(&mut first).await.is_err() {
                    return;
                }
                if first != b"GET /multiple-download" {
                    let mut server = tokio::net::TcpStream::connect(upstream).await.unwrap();
                    if server.write_all(&first).await.is_ok() {
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                    }
                    return;
                }
                if client.write_all(head.as_bytes()).await.is_err() {
                    return;
                }
                let piece = vec![7u8; 64 * 1024];
                loop {
                    let sent = if chunked {
                        let mut framed = format!("{:x}\r\n", piece.len()).into_bytes();
                        framed.extend_from_slice(&piece);
                        framed.extend_from_slice(b"\r\n");
                        client.write_all(&framed).await
                    } else {
                        client.write_all(&piece).await
                    };
                    if sent.is_err() {
                        return;
                    }
                    tokio::task::yield_now().await;
                }
            });
        }
    });
    url
}

#[tokio::test]
async fn downloads_larger_than_the_listing_says_fail_and_leave_nothing() {
    bounded(async {
        let sim = emulator(Config::default()).await;
        let remote = format!("{DOCS}/big.bin");
        sim.put_file(&remote, pattern(1024 * 1024, 4)).unwrap();
        let lies = [
            (
                "HTTP/1.1 200 OK\r\nContent-Length: 1099511627776\r\n\r\n",
                false,
                "announces 1099511627776 bytes",
            ),
            (
                "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
                true,
                "sends more than the 1048576 bytes",
            ),
        ];
        for (head, chunked, named) in lies {
            let url = lying_relay(sim.addr(), head, chunked).await;
            let nas = FnosClient::connect(options(&url)).await.unwrap();
            let dir = tempfile::tempdir().unwrap();
            let target = dir.path().join("big.bin");
            std::fs::write(&target, b"the old content").unwrap();
            match nas.download(&remote, &target, |_, _| {}).await {
                Err(FnosError::Transfer(why)) => assert!(why.contains(named), "{why}"),
                other => panic!("{other:?}"),
            }
            assert_eq!(only_files(dir.path()), ["big.bin"]);
            assert_eq!(std::fs::read(&target).unwrap(), b"the old content");
        }
        sim.shutdown().await;
    })
    .await;
}
