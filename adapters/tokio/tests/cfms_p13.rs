//! `CfmsClient` against the CFMS emulator at protocols 3, 5 and 13 with no
//! configuration: the protocol-13 probe (answered at 13, closed at 3–5 and
//! followed by one reconnect speaking text), a pinned version that skips
//! it, versions the client refuses by name, and at 13: listing, mkdir,
//! uploads, downloads byte for byte and a corrupted chunk named, the
//! lockdown event, an unanswered request failing by its deadline, and
//! out-of-order answers with several requests in flight.

use std::time::{Duration, Instant};

use futures_util::StreamExt;
use naslink_sim::cfms::{Config, Handle, Server};
use naslink_tokio::cfms::{CfmsClient, CfmsError, CfmsEvent, CfmsOptions};
use naslink_tokio::fnos::Backoff;
use serde_json::json;

async fn emulator(protocol_version: u32) -> Handle {
    Server::start(Config {
        protocol_version,
        bad_password_delay: Duration::from_millis(50),
        ..Config::default()
    })
    .await
    .expect("emulator starts")
}

fn plain(sim: &Handle) -> CfmsOptions {
    let mut options = CfmsOptions::new(&sim.url(), "admin", "admin");
    options.request_timeout = Duration::from_secs(5);
    // A backoff long enough to tell the probe's immediate reconnect from a
    // failure's retry.
    options.backoff = Backoff {
        initial: Duration::from_secs(3),
        max: Duration::from_secs(3),
    };
    options
}

async fn bounded<T>(f: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(20), f)
        .await
        .expect("test finished in time")
}

fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 7 + i / 251) as u8).collect()
}

#[tokio::test]
async fn without_configuration_the_client_speaks_3_5_and_13() {
    bounded(async {
        for version in [3, 5, 13] {
            let sim = emulator(version).await;
            let began = Instant::now();
            let nas = CfmsClient::connect(plain(&sim)).await.unwrap();
            // At 3 and 5 the probe's close is followed by an immediate
            // reconnect, not by the 3 s backoff.
            assert!(began.elapsed() < Duration::from_secs(2), "at {version}");
            assert_eq!(nas.protocol_version(), version);
            assert_eq!(nas.server().server_name, "CFMS WebSocket Server");
            let asked = nas.ask_server().await.unwrap();
            assert_eq!(asked.protocol_version, version);
            // Later connections speak what the first one found.
            let mut events = Box::pin(nas.events());
            sim.drop_connections();
            loop {
                if let CfmsEvent::Ready { .. } = events.next().await.unwrap() {
                    break;
                }
            }
            let asked = nas.ask_server().await.unwrap();
            assert_eq!(asked.protocol_version, version, "after the reconnect");
            sim.shutdown().await;
        }
    })
    .await;
}

/// A relay that takes exactly one connection to `upstream`: a client that
/// needs a second one (the probe's reconnect) cannot get it.
async fn one_connection(upstream: std::net::SocketAddr) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let (mut client, _) = listener.accept().await.unwrap();
        drop(listener);
        let mut server = tokio::net::TcpStream::connect(upstream).await.unwrap();
        let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
    });
    format!("ws://{addr}/")
}

#[tokio::test]
async fn a_pinned_version_skips_the_probe() {
    bounded(async {
        for version in [3, 13] {
            let sim = emulator(version).await;
            let mut options = plain(&sim);
            options.url = one_connection(sim.addr()).await;
            options.protocol_version = Some(version);
            let nas = CfmsClient::connect(options).await.unwrap();
            assert_eq!(nas.protocol_version(), version);
            nas.request("list_directory", &json!({"folder_id": null}))
                .await
                .unwrap();
            sim.shutdown().await;
        }
        // Unpinned, a text server needs the second connection.
        let sim = emulator(3).await;
        let mut options = plain(&sim);
        options.url = one_connection(sim.addr()).await;
        options.first_attempts = 1;
        assert!(CfmsClient::connect(options).await.is_err());
        sim.shutdown().await;
        // Pinned 13 against a text server: its close is a failure, not a
        // cue to speak text (so the client does not silently drop the pin).
        let sim = emulator(3).await;
        let mut options = plain(&sim);
        options.protocol_version = Some(13);
        options.first_attempts = 1;
        assert!(CfmsClient::connect(options).await.is_err());
        sim.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn versions_the_client_does_not_speak_are_refused_by_name() {
    bounded(async {
        // 12 speaks text and reports 12; 14 speaks frames and reports 14.
        for version in [12, 14] {
            let sim = emulator(version).await;
            let failed = CfmsClient::connect(plain(&sim)).await.unwrap_err();
            assert!(
                matches!(failed, CfmsError::ProtocolUnsupported(Some(v)) if v == version),
                "{failed:?}"
            );
            assert!(
                failed.to_string().contains(&version.to_string()),
                "{failed}"
            );
            sim.shutdown().await;
        }
        // A pinned version the client does not speak never connects.
        let sim = emulator(13).await;
        let mut options = plain(&sim);
        options.protocol_version = Some(7);
        let failed = CfmsClient::connect(options).await.unwrap_err();
        assert!(
            matches!(failed, CfmsError::ProtocolUnsupported(Some(7))),
            "{failed:?}"
        );
        sim.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn at_13_list_mkdir_and_uploads_of_0_1_and_65537_bytes() {
    bounded(async {
        let sim = emulator(13).await;
        let nas = CfmsClient::connect(plain(&sim)).await.unwrap();
        let root = nas
            .request("list_directory", &json!({"folder_id": "/"}))
            .await
            .unwrap();
        assert_eq!(root["code"], 200, "{root}");
        let made = nas
            .request(
                "create_directory",
                &json!({"name": "docs", "parent_id": "/"}),
            )
            .await
            .unwrap();
        let folder = made["data"]["id"].as_str().unwrap().to_owned();
        let dir = tempfile::tempdir().unwrap();
        for len in [0, 1, 65537] {
            let name = format!("f{len}.bin");
            let content = pattern(len);
            let source = dir.path().join(&name);
            std::fs::write(&source, &content).unwrap();
            let mut last = (u64::MAX, 0);
            let id = nas
                .upload(&source, Some(&folder), &name, |done, total| {
                    last = (done, total)
                })
                .await
                .unwrap();
            assert_eq!(sim.document_content(&id).unwrap(), content, "{name}");
            if len > 0 {
                assert_eq!(last, (len as u64, len as u64));
            }
        }
        let listed = nas
            .request("list_directory", &json!({"folder_id": folder}))
            .await
            .unwrap();
        assert_eq!(listed["data"]["documents"].as_array().unwrap().len(), 3);
        sim.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn at_13_the_lockdown_event_arrives_typed() {
    bounded(async {
        let sim = emulator(13).await;
        let nas = CfmsClient::connect(plain(&sim)).await.unwrap();
        let mut events = Box::pin(nas.events());
        nas.request("list_directory", &json!({"folder_id": "/"}))
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
async fn at_13_an_unanswered_request_fails_by_its_deadline_others_go_on() {
    bounded(async {
        let sim = emulator(13).await;
        let mut options = plain(&sim);
        options.request_timeout = Duration::from_millis(800);
        let nas = CfmsClient::connect(options).await.unwrap();
        sim.set_unanswered("get_document_info", true);
        let began = Instant::now();
        let (doc, root) = (json!({"document_id": "x"}), json!({"folder_id": "/"}));
        let silent = nas.request("get_document_info", &doc);
        let listed = nas.request("list_directory", &root);
        let (silent, listed) = tokio::join!(silent, listed);
        assert!(matches!(silent, Err(CfmsError::TimedOut)), "{silent:?}");
        assert!(began.elapsed() < Duration::from_secs(3));
        assert_eq!(listed.unwrap()["code"], 200);
        sim.set_unanswered("get_document_info", false);
        nas.request("list_directory", &json!({"folder_id": "/"}))
            .await
            .unwrap();
        sim.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn at_13_answers_out_of_order_reach_their_callers() {
    bounded(async {
        let sim = emulator(13).await;
        let nas = CfmsClient::connect(plain(&sim)).await.unwrap();
        sim.set_action_delay("list_directory", Some(Duration::from_millis(400)));
        let root = json!({"folder_id": "/"});
        let began = Instant::now();
        // The slow listing first, then three more, all in flight at once;
        // each records when its own answer reached it.
        let slow = async {
            let answer = nas.request("list_directory", &root).await;
            (answer, Instant::now())
        };
        let fast = futures_util::future::join_all(["a", "b", "c"].map(|name| {
            let data = json!({"name": name, "parent_id": "/"});
            let nas = nas.clone();
            async move {
                let answer = nas.request("create_directory", &data).await;
                (name, answer, Instant::now())
            }
        }));
        let ((slow, slow_done), made) = tokio::join!(slow, fast);
        assert_eq!(slow.unwrap()["code"], 200);
        for (name, answer, at) in made {
            let answer = answer.unwrap();
            assert_eq!(answer["data"]["name"], name, "{answer}");
            assert!(at < slow_done, "{name} was answered after the slow listing");
        }
        assert!(slow_done - began >= Duration::from_millis(400));
        sim.shutdown().await;
    })
    .await;
}

async fn chunked_emulator() -> Handle {
    Server::start(Config {
        protocol_version: 13,
        chunk_size: 64 * 1024,
        ..Config::default()
    })
    .await
    .expect("emulator starts")
}

#[tokio::test]
async fn at_13_downloads_come_back_byte_for_byte() {
    bounded(async {
        let sim = chunked_emulator().await;
        let nas = CfmsClient::connect(plain(&sim)).await.unwrap();
        let dir = tempfile::tempdir().unwrap();
        for len in [0, 1, 65536, 65537, 300_000] {
            let content = pattern(len);
            let id = sim.put_document(None, &format!("d{len}.bin"), content.clone());
            let target = dir.path().join(format!("d{len}.bin"));
            let mut last = (0, 0);
            let size = nas
                .download(&id, &target, |done, total| last = (done, total))
                .await
                .unwrap();
            assert_eq!(size, len as u64);
            assert_eq!(std::fs::read(&target).unwrap(), content, "{len} B");
            if len > 0 {
                assert_eq!(last, (len as u64, len as u64));
            }
        }
        // Nothing left beside the targets.
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 5);
        sim.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn at_13_a_corrupted_chunk_is_named_and_leaves_no_file() {
    bounded(async {
        let sim = chunked_emulator().await;
        let id = sim.put_document(None, "x.bin", pattern(200_000));
        let nas = CfmsClient::connect(plain(&sim)).await.unwrap();
        sim.set_download_fault(Some(naslink_sim::cfms::DownloadFault::FlipCiphertext {
            index: 1,
        }));
        let dir = tempfile::tempdir().unwrap();
        let failed = nas
            .download(&id, &dir.path().join("x.bin"), |_, _| {})
            .await
            .unwrap_err();
        assert!(
            failed.to_string().contains("chunk 1 failed AES-GCM"),
            "{failed}"
        );
        assert!(std::fs::read_dir(dir.path()).unwrap().next().is_none());
        // The connection still serves requests.
        nas.request("list_directory", &json!({"folder_id": "/"}))
            .await
            .unwrap();
        sim.shutdown().await;
    })
    .await;
}

/// The real 6b5aa0f server, on the first empty upload of a month, sends
/// `stop` and then a framed CONCLUSION `{"code":500,"data":{"log_id":…},
/// "message":"Internal server error",…}` on the upload's stream. The
/// refusal names the server's message and keeps the whole body (the frame
/// header is not part of it).
#[tokio::test]
async fn at_13_a_refused_transfer_keeps_the_servers_message() {
    bounded(async {
        let sim = emulator(13).await;
        let nas = CfmsClient::connect(plain(&sim)).await.unwrap();
        let dir = tempfile::tempdir().unwrap();
        let source = dir.path().join("empty.bin");
        std::fs::write(&source, b"").unwrap();
        sim.arm_empty_upload_bug();
        let failed = nas
            .upload(&source, None, "empty.bin", |_, _| {})
            .await
            .unwrap_err();
        match &failed {
            CfmsError::Server {
                code,
                message,
                body,
            } => {
                assert_eq!(*code, 500);
                assert_eq!(message, "Internal server error");
                assert!(body["data"]["log_id"].is_string(), "{body}");
            }
            other => panic!("expected the server's refusal, got {other:?}"),
        }
        assert_eq!(
            failed.to_string(),
            "the server refused: Internal server error (code 500)"
        );
        sim.shutdown().await;
    })
    .await;
}
