//! `CfmsClient` against the CFMS emulator on loopback: server_info and
//! login, answers matched FIFO with many tasks, a refused login, TLS with
//! the emulator's self-signed certificate pinned, lockdown pushes, and a
//! dropped connection followed by a reconnect that keeps the token.

use std::time::Duration;

use futures_util::StreamExt;
use naslink_core::cfms::LoginError;
use naslink_sim::cfms::{Config, Handle, Server};
use naslink_tokio::cfms::{CfmsClient, CfmsError, CfmsEvent, CfmsOptions};
use naslink_tokio::fnos::Backoff;
use naslink_tokio::tls::Trust;
use serde_json::json;

async fn emulator(tls: bool) -> Handle {
    Server::start(Config {
        tls,
        bad_password_delay: Duration::from_millis(50),
        ..Config::default()
    })
    .await
    .expect("emulator starts")
}

fn options(sim: &Handle, password: &str) -> CfmsOptions {
    let mut options = CfmsOptions::new(&sim.url(), "admin", password);
    options.request_timeout = Duration::from_secs(5);
    options.backoff = Backoff {
        initial: Duration::from_millis(20),
        max: Duration::from_millis(200),
    };
    if let Some(pin) = sim.cert_sha256() {
        options.link.trust = Trust::PinSha256(pin);
    }
    options
}

async fn bounded<T>(f: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(20), f)
        .await
        .expect("test finished in time")
}

#[tokio::test]
async fn login_after_the_opening_exchange_then_listing_the_root() {
    bounded(async {
        let sim = emulator(false).await;
        let nas = CfmsClient::connect(options(&sim, "admin")).await.unwrap();
        assert_eq!(nas.server().protocol_version, 3);
        assert_eq!(nas.server().server_name, "CFMS WebSocket Server");
        let asked = nas.ask_server().await.unwrap();
        assert_eq!(asked.protocol_version, 3);
        assert!(!asked.lockdown);
        let root = nas
            .request("list_directory", &json!({"folder_id": null}))
            .await
            .unwrap();
        assert_eq!(root["code"], 200);
        assert!(root["data"].is_object(), "{root}");
        sim.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn answers_are_matched_first_in_first_out_across_many_tasks() {
    bounded(async {
        let sim = emulator(false).await;
        let nas = CfmsClient::connect(options(&sim, "admin")).await.unwrap();
        let mut tasks = Vec::new();
        for i in 0..32 {
            let nas = nas.clone();
            tasks.push(tokio::spawn(async move {
                let name = format!("dir-{i}");
                let made = nas
                    .request(
                        "create_directory",
                        &json!({"parent_id": null, "name": name}),
                    )
                    .await
                    .unwrap();
                let id = made["data"]["id"].as_str().unwrap().to_owned();
                let info = nas
                    .request("get_directory_info", &json!({"directory_id": id}))
                    .await
                    .unwrap();
                assert_eq!(info["data"]["name"], name, "{info}");
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
        sim.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn a_refusal_carries_the_code_and_message() {
    bounded(async {
        let sim = emulator(false).await;
        let nas = CfmsClient::connect(options(&sim, "admin")).await.unwrap();
        let refused = nas
            .request("delete_directory", &json!({"folder_id": "no-such-folder"}))
            .await;
        match refused {
            Err(CfmsError::Server { code, .. }) => assert_eq!(code, 404),
            other => panic!("{other:?}"),
        }
        // The FIFO is still aligned afterwards.
        nas.request("list_directory", &json!({"folder_id": null}))
            .await
            .unwrap();
        sim.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn a_wrong_password_is_refused_as_invalid_credentials() {
    bounded(async {
        let sim = emulator(false).await;
        match CfmsClient::connect(options(&sim, "wrong")).await {
            Err(CfmsError::LoginRefused(LoginError::InvalidCredentials)) => {}
            other => panic!("{other:?}"),
        }
        sim.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn tls_with_the_pinned_self_signed_certificate_and_a_wrong_pin_refused() {
    bounded(async {
        let sim = emulator(true).await;
        let nas = CfmsClient::connect(options(&sim, "admin")).await.unwrap();
        nas.request("list_directory", &json!({"folder_id": null}))
            .await
            .unwrap();
        let mut wrong = options(&sim, "admin");
        wrong.link.trust = Trust::PinSha256([0; 32]);
        assert!(matches!(
            CfmsClient::connect(wrong).await,
            Err(CfmsError::Connect(naslink_tokio::ConnectError::Tls(_)))
        ));
        sim.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn lockdown_changes_are_pushed_as_events() {
    bounded(async {
        let sim = emulator(false).await;
        let nas = CfmsClient::connect(options(&sim, "admin")).await.unwrap();
        let mut events = Box::pin(nas.events());
        // A round trip makes sure register_listener went out first.
        nas.request("list_directory", &json!({"folder_id": null}))
            .await
            .unwrap();
        sim.set_lockdown(true);
        loop {
            if let CfmsEvent::Lockdown { on } = events.next().await.unwrap() {
                assert!(on);
                break;
            }
        }
        sim.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn after_a_dropped_connection_the_client_reconnects_with_its_token() {
    bounded(async {
        let sim = emulator(false).await;
        let nas = CfmsClient::connect(options(&sim, "admin")).await.unwrap();
        let mut events = Box::pin(nas.events());
        sim.drop_connections();
        let mut saw_disconnect = false;
        loop {
            match events.next().await.unwrap() {
                CfmsEvent::Disconnected { .. } => saw_disconnect = true,
                CfmsEvent::Ready { .. } => break,
                _ => {}
            }
        }
        assert!(saw_disconnect);
        nas.request("list_directory", &json!({"folder_id": null}))
            .await
            .unwrap();
        sim.shutdown().await;
    })
    .await;
}

async fn transfer_emulator() -> Handle {
    Server::start(Config {
        chunk_size: 64 * 1024,
        ..Config::default()
    })
    .await
    .expect("emulator starts")
}

fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 7 + i / 251) as u8).collect()
}

fn leftovers(dir: &std::path::Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect()
}

#[tokio::test]
async fn a_download_streams_to_disk_decrypts_verifies_and_renames_into_place() {
    bounded(async {
        let sim = transfer_emulator().await;
        let content = pattern(1024 * 1024 + 123);
        let id = sim.put_document(None, "big.bin", content.clone());
        let nas = CfmsClient::connect(options(&sim, "admin")).await.unwrap();
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("big.bin");
        let mut seen = Vec::new();
        let size = nas
            .download(&id, &target, |done, total| seen.push((done, total)))
            .await
            .unwrap();
        assert_eq!(size, content.len() as u64);
        assert_eq!(std::fs::read(&target).unwrap(), content);
        assert_eq!(seen.last(), Some(&(size, size)));
        assert!(seen.len() > 10, "one progress report per chunk: {seen:?}");
        assert_eq!(leftovers(dir.path()), vec!["big.bin".to_owned()]);
        // The connection is usable after the transfer.
        nas.request("list_directory", &json!({"folder_id": null}))
            .await
            .unwrap();
        sim.shutdown().await;
    })
    .await;
}

/// A relay that passes `limit` bytes from the server, then drops both
/// sides: a server dying mid-transfer, at a known point.
async fn dying_relay(upstream: std::net::SocketAddr, limit: usize) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let (client, _) = listener.accept().await.unwrap();
        let server = tokio::net::TcpStream::connect(upstream).await.unwrap();
        let (mut client_rx, mut client_tx) = client.into_split();
        let (mut server_rx, mut server_tx) = server.into_split();
        let up = tokio::spawn(async move {
            let _ = tokio::io::copy(&mut client_rx, &mut server_tx).await;
        });
        let mut passed = 0;
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
    format!("ws://{addr}/")
}

#[tokio::test]
async fn a_server_dying_mid_download_leaves_no_file_under_the_target_name() {
    bounded(async {
        let sim = transfer_emulator().await;
        let id = sim.put_document(None, "big.bin", pattern(2 * 1024 * 1024));
        let mut options = options(&sim, "admin");
        options.url = dying_relay(sim.addr(), 600 * 1024).await;
        // The relay takes one connection: no protocol-13 probe before it.
        options.protocol_version = Some(3);
        let nas = CfmsClient::connect(options).await.unwrap();
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("big.bin");
        let mut progressed = 0;
        let failed = nas
            .download(&id, &target, |done, _| progressed = done)
            .await;
        assert!(
            matches!(failed, Err(CfmsError::ConnectionLost)),
            "{failed:?}"
        );
        assert!(progressed > 0, "some chunks arrived before the cut");
        assert!(
            leftovers(dir.path()).is_empty(),
            "{:?}",
            leftovers(dir.path())
        );
        sim.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn a_corrupted_chunk_fails_its_hash_check_and_leaves_no_file() {
    bounded(async {
        let sim = transfer_emulator().await;
        let id = sim.put_document(None, "big.bin", pattern(300 * 1024));
        sim.set_download_fault(Some(naslink_sim::cfms::DownloadFault::FlipCiphertext {
            index: 2,
        }));
        let nas = CfmsClient::connect(options(&sim, "admin")).await.unwrap();
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("big.bin");
        let failed = nas.download(&id, &target, |_, _| {}).await;
        match failed {
            Err(CfmsError::Transfer(why)) => assert!(why.contains("chunk 2"), "{why}"),
            other => panic!("{other:?}"),
        }
        assert!(leftovers(dir.path()).is_empty());
        sim.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn an_upload_streams_the_file_in_frames_and_the_server_stores_it() {
    bounded(async {
        let sim = transfer_emulator().await;
        let nas = CfmsClient::connect(options(&sim, "admin")).await.unwrap();
        let dir = tempfile::tempdir().unwrap();
        // Uneven size, and an exact multiple of the 8192-byte frame (which
        // needs the empty final message).
        for (name, len) in [
            ("odd.bin", 200 * 1024 + 5),
            ("even.bin", 4 * 8192),
            ("big.bin", 1024 * 1024 + 1),
        ] {
            let content = pattern(len);
            let source = dir.path().join(name);
            std::fs::write(&source, &content).unwrap();
            let mut last = (0, 0);
            let id = nas
                .upload(&source, None, name, |done, total| last = (done, total))
                .await
                .unwrap();
            assert_eq!(sim.document_content(&id).unwrap(), content, "{name}");
            assert_eq!(last, (len as u64, len as u64));
        }
        // And the answer stream is still aligned.
        nas.request("list_directory", &json!({"folder_id": null}))
            .await
            .unwrap();
        sim.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn two_factor_login_takes_a_backup_code_from_the_source() {
    use naslink_sim::cfms::UserSpec;
    use naslink_tokio::TwoFactor;
    bounded(async {
        let sim = Server::start(Config {
            protocol_version: 5,
            bad_password_delay: Duration::from_millis(50),
            users: vec![UserSpec {
                totp_secret: Some("GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ".into()),
                backup_codes: vec!["backup-0001".into(), "backup-0002".into()],
                ..UserSpec::user("erin", "erin-pass")
            }],
            ..Config::default()
        })
        .await
        .unwrap();
        let with = |source: Option<TwoFactor>| {
            let mut o = options(&sim, "erin-pass");
            o.user = "erin".into();
            o.two_factor = source;
            o
        };

        let none = CfmsClient::connect(with(None)).await;
        assert!(
            matches!(none, Err(CfmsError::TwoFactorRequired)),
            "{none:?}"
        );

        let wrong = CfmsClient::connect(with(Some(TwoFactor::fixed("backup-9999")))).await;
        assert!(
            matches!(
                wrong,
                Err(CfmsError::LoginRefused(LoginError::InvalidTwoFactorCode))
            ),
            "{wrong:?}"
        );

        let asked = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let log = asked.clone();
        let source = TwoFactor::from_fn(move |attempt| {
            log.lock().unwrap().push(attempt);
            async move { Some(if attempt == 1 { "nope" } else { "backup-0002" }.to_owned()) }
        });
        let nas = CfmsClient::connect(with(Some(source))).await.unwrap();
        assert_eq!(*asked.lock().unwrap(), [1, 2]);
        nas.request("list_directory", &json!({ "folder_id": null }))
            .await
            .unwrap();
        sim.shutdown().await;
    })
    .await;
}

/// A relay whose server-to-client direction can be muted (answers are
/// swallowed, so requests stay in flight) and whose connections can be
/// cut; connections made after a cut pass everything.
struct MuteRelay {
    url: String,
    muted: std::sync::Arc<std::sync::atomic::AtomicBool>,
    tasks: std::sync::Arc<std::sync::Mutex<Vec<tokio::task::AbortHandle>>>,
}

impl MuteRelay {
    async fn start(upstream: std::net::SocketAddr) -> MuteRelay {
        use std::sync::atomic::Ordering;
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("ws://{}/", listener.local_addr().unwrap());
        let muted = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let tasks = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let (m, t) = (muted.clone(), tasks.clone());
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let server = tokio::net::TcpStream::connect(upstream).await.unwrap();
                let (mut client_rx, mut client_tx) = client.into_split();
                let (mut server_rx, mut server_tx) = server.into_split();
                let up = tokio::spawn(async move {
                    let _ = tokio::io::copy(&mut client_rx, &mut server_tx).await;
                });
                let muted = m.clone();
                let down = tokio::spawn(async move {
                    let mut buf = vec![0u8; 16 * 1024];
                    loop {
                        let n = match server_rx.read(&mut buf).await {
                            Ok(0) | Err(_) => break,
                            Ok(n) => n,
                        };
                        if !muted.load(Ordering::SeqCst)
                            && client_tx.write_all(&buf[..n]).await.is_err()
                        {
                            break;
                        }
                    }
                });
                let mut tasks = t.lock().unwrap();
                tasks.push(up.abort_handle());
                tasks.push(down.abort_handle());
            }
        });
        MuteRelay { url, muted, tasks }
    }

    fn mute(&self, on: bool) {
        self.muted.store(on, std::sync::atomic::Ordering::SeqCst);
    }

    fn cut(&self) {
        for task in self.tasks.lock().unwrap().drain(..) {
            task.abort();
        }
    }
}

#[tokio::test]
async fn an_idempotent_request_is_sent_again_after_the_reconnect_others_fail() {
    bounded(async {
        let sim = emulator(false).await;
        let relay = MuteRelay::start(sim.addr()).await;
        let mut opts = options(&sim, "admin");
        opts.url = relay.url.clone();
        let nas = CfmsClient::connect(opts).await.unwrap();
        relay.mute(true);
        let listing = json!({ "folder_id": null });
        let read = {
            let (nas, data) = (nas.clone(), listing.clone());
            tokio::spawn(async move { nas.request_idempotent("list_directory", &data).await })
        };
        let plain = {
            let (nas, data) = (nas.clone(), listing.clone());
            tokio::spawn(async move { nas.request("list_directory", &data).await })
        };
        // The answers are swallowed, so waiting longer only makes sure both
        // requests were written before the cut.
        tokio::time::sleep(Duration::from_millis(500)).await;
        relay.mute(false);
        relay.cut();
        let plain = plain.await.unwrap();
        assert!(matches!(plain, Err(CfmsError::ConnectionLost)), "{plain:?}");
        let read = read.await.unwrap().expect("answered on the new connection");
        assert_eq!(read["code"], 200, "{read}");
        sim.shutdown().await;
    })
    .await;
}
