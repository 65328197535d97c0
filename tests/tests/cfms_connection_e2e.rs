//! End to end through `Connection<cfms::Session>`, the shape every adapter
//! drives: the session's own opening sequence (server_info, login from
//! `Config::login`, two-factor answered by the application,
//! register_listener), replies carrying their bodies, and an upload then a
//! download written straight into and read straight out of the WebSocket
//! buffers, against the CFMS emulator of `naslink-sim`. The direct session
//! API is covered scenario by scenario in `cfms_e2e.rs`.

mod cfms_support;
mod support;

use std::sync::Arc;

use cfms_support::conn::{CfmsConn, Got};
use cfms_support::totp;
use naslink_core::cfms::{Config, Credentials, State, UploadSource, sha256_of};
use naslink_sim::cfms::{Config as SimConfig, Handle, Server, UserSpec};
use support::{os_entropy, unix_secs};

async fn emulator(config: SimConfig) -> Arc<Handle> {
    Arc::new(Server::start(config).await.expect("emulator starts"))
}

/// Run blocking client code beside the emulator's runtime.
async fn client<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    tokio::task::spawn_blocking(f).await.expect("client thread")
}

fn account(user: &str, password: &str, listener: bool) -> Config {
    Config {
        login: Some(Credentials::new(user, password).unwrap()),
        listener,
        ..Config::default()
    }
}

fn body(got: Got) -> serde_json::Value {
    match got {
        Got::Event { body: Some(b), .. } => b,
        other => panic!("no body: {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_session_logs_in_and_registers_its_listener_by_itself_and_replies_carry_their_bodies() {
    let sim = emulator(SimConfig::default()).await;
    let url = sim.url();
    client(move || {
        let mut nas = CfmsConn::connect(&url, account("admin", "admin", true), os_entropy());
        let info = body(nas.wait_event("ServerInfo"));
        assert_eq!(info["data"]["server_name"], "CFMS WebSocket Server");
        let login = body(nas.wait_event("LoggedIn"));
        assert!(login["data"]["token"].is_string());
        nas.wait_event("ListenerRegistered { status: Ok }");
        assert_eq!(nas.link.conn.session().state(), State::Ready);

        let seq = nas
            .link
            .conn
            .command(nas.clock.now(), |s, now, buf| {
                s.list_directory(now, None, buf)
            })
            .unwrap();
        let reply = body(nas.wait_event(&format!("Reply {{ seq: {seq:?}, status: Ok")));
        assert!(reply["data"]["documents"].is_array(), "{reply}");
    })
    .await;
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_two_factor_challenge_is_answered_with_submit_two_factor() {
    const SECRET: &str = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP";
    let sim = emulator(SimConfig {
        protocol_version: 5,
        users: vec![UserSpec {
            totp_secret: Some(SECRET.into()),
            ..UserSpec::user("carol", "carol-pass")
        }],
        ..SimConfig::default()
    })
    .await;
    let url = sim.url();
    client(move || {
        let config = account("carol", "carol-pass", false);
        let mut nas = CfmsConn::connect(&url, config, os_entropy());
        nas.wait_event("TwoFactorRequired { method: Totp }");
        assert_eq!(nas.link.conn.session().state(), State::TwoFactor);
        assert!(!nas.link.conn.can_send());
        nas.link
            .conn
            .submit_two_factor(nas.clock.now(), &totp(SECRET, unix_secs()))
            .unwrap();
        nas.wait_event("LoggedIn");
        assert_eq!(nas.link.conn.session().state(), State::Ready);
    })
    .await;
    sim.shutdown().await;
}

/// `create_document` + `upload_file` + the bytes; returns the document id.
fn upload(
    nas: &mut CfmsConn<impl naslink_core::random::Entropy>,
    title: &str,
    data: &[u8],
) -> String {
    let seq = nas
        .link
        .conn
        .command(nas.clock.now(), |s, now, buf| {
            s.create_document(now, None, title, buf)
        })
        .unwrap();
    let created = body(nas.wait_event(&format!("Reply {{ seq: {seq:?}, status: Ok")));
    let task = created["data"]["task_data"]["task_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let source = UploadSource {
        size: data.len() as u64,
        sha256: Some(sha256_of(data)),
    };
    let seq = nas
        .link
        .conn
        .upload_file(nas.clock.now(), &task, source)
        .unwrap();
    nas.wait_event(&format!("UploadReady {{ seq: {seq:?}"));
    nas.upload_bytes(data);
    nas.wait_event(&format!(
        "UploadFinished {{ seq: {seq:?}, size: {}",
        data.len()
    ));
    let seq = nas
        .link
        .conn
        .command(nas.clock.now(), |s, now, buf| {
            s.list_directory(now, None, buf)
        })
        .unwrap();
    let listing = body(nas.wait_event(&format!("Reply {{ seq: {seq:?}")));
    let docs = listing["data"]["documents"].as_array().unwrap();
    let doc = docs.iter().find(|d| d["title"] == title).unwrap();
    doc["id"].as_str().unwrap().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upload_then_download_through_the_connection_is_byte_identical() {
    const CHUNK: usize = 64 * 1024;
    let sim = emulator(SimConfig {
        chunk_size: CHUNK,
        ..SimConfig::default()
    })
    .await;
    let (url, peer) = (sim.url(), sim.clone());
    client(move || {
        let mut nas = CfmsConn::connect(&url, account("admin", "admin", false), os_entropy());
        nas.wait_event("LoggedIn");
        for size in [1usize, 8192, 8193, 200_000] {
            let data: Vec<u8> = (0..size)
                .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
                .collect();
            let title = format!("file-{size}.bin");
            let id = upload(&mut nas, &title, &data);
            assert!(
                peer.document_content(&id).as_deref() == Some(&data[..]),
                "{size} B stored"
            );

            let seq = nas
                .link
                .conn
                .command(nas.clock.now(), |s, now, buf| s.get_document(now, &id, buf))
                .unwrap();
            let doc = body(nas.wait_event(&format!("Reply {{ seq: {seq:?}, status: Ok")));
            let task = doc["data"]["task_data"]["task_id"]
                .as_str()
                .unwrap()
                .to_owned();
            nas.ciphertext.clear();
            let seq = nas.link.conn.download_file(nas.clock.now(), &task).unwrap();
            nas.wait_event(&format!("DownloadFinished {{ seq: {seq:?}"));
            assert_eq!(nas.ciphertext.len(), size);
            let plain = nas.decrypt().unwrap_or_else(|e| panic!("{size} B: {e}"));
            assert!(plain == data, "{size} B differ after the round trip");
        }
    })
    .await;
    sim.shutdown().await;
}
