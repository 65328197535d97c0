//! Uploads and downloads through the CFMS emulator, decrypted with an
//! independent CFB8 in the test client.

mod cfms_support;

use cfms_support::{Client, hex, start};
use naslink_sim::cfms::{Config, DownloadFault};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 7 + i / 251) as u8).collect()
}

async fn signed_in(config: Config) -> (naslink_sim::cfms::Handle, Client) {
    let server = start(config).await;
    let mut c = Client::connect(&server).await;
    c.login("admin", "admin").await;
    (server, c)
}

async fn round_trip(len: usize) {
    let (server, mut c) = signed_in(Config::default()).await;
    let content = pattern(len);
    let verdict = c.upload("f.bin", Value::Null, &content).await;
    assert_eq!(
        verdict["message"], "File received successfully",
        "{len} bytes"
    );
    let id = server
        .find_documents("f.bin")
        .pop()
        .expect("document stored");
    assert_eq!(server.document_content(&id).as_deref(), Some(&content[..]));
    let back = c.download(&id).await.expect("download verifies");
    assert_eq!(back, content, "{len} bytes");
}

#[tokio::test]
async fn round_trip_1_byte() {
    round_trip(1).await;
}

#[tokio::test]
async fn round_trip_8192_bytes_ends_with_an_empty_frame() {
    round_trip(8192).await;
}

#[tokio::test]
async fn round_trip_8193_bytes() {
    round_trip(8193).await;
}

#[tokio::test]
async fn round_trip_5_mib_spans_three_chunks_of_one_cfb8_stream() {
    round_trip(5 << 20).await;
}

#[tokio::test]
async fn empty_upload_answers_stop_and_nothing_else() {
    let (server, mut c) = signed_in(Config::default()).await;
    let verdict = c.upload("empty", Value::Null, &[]).await;
    assert_eq!(verdict, json!("stop"));
    assert_eq!(
        c.recv_within(std::time::Duration::from_millis(300)).await,
        None
    );
    let id = server.find_documents("empty").pop().expect("stored");
    // Download of an empty file: the header, then nothing after `ready`.
    assert_eq!(c.download(&id).await, Ok(Vec::new()));
    assert_eq!(
        c.recv_within(std::time::Duration::from_millis(300)).await,
        None
    );
}

#[tokio::test]
async fn download_header_announces_chunk_size_and_total_chunks() {
    let config = Config {
        chunk_size: 1000,
        ..Config::default()
    };
    let (server, mut c) = signed_in(config).await;
    let id = server.put_document(None, "x", pattern(2500));
    let got = c.call("get_document", json!({"document_id": id})).await;
    let task = got["data"]["task_data"]["task_id"].clone();
    c.send_action("download_file", json!({"task_id": task}))
        .await;
    let header = c.recv_json().await;
    let sha = hex(&Sha256::digest(pattern(2500)));
    assert_eq!(
        header,
        json!({"action": "transfer_file", "data": {"sha256": sha, "file_size": 2500,
               "chunk_size": 1000, "total_chunks": 3}})
    );
}

#[tokio::test]
async fn small_chunks_decrypt_as_one_stream() {
    let config = Config {
        chunk_size: 1000,
        ..Config::default()
    };
    let (server, mut c) = signed_in(config).await;
    let id = server.put_document(None, "x", pattern(4321));
    assert_eq!(c.download(&id).await, Ok(pattern(4321)));
}

#[tokio::test]
async fn flipped_ciphertext_fault_is_caught_by_the_chunk_hash() {
    let (server, mut c) = signed_in(Config {
        chunk_size: 1000,
        ..Config::default()
    })
    .await;
    let id = server.put_document(None, "x", pattern(3000));
    server.set_download_fault(Some(DownloadFault::FlipCiphertext { index: 1 }));
    assert_eq!(c.download(&id).await, Err("chunk 1 hash mismatch".into()));
    server.set_download_fault(None);
    assert_eq!(c.download(&id).await, Ok(pattern(3000)));
}

#[tokio::test]
async fn flipped_hash_fault_is_caught_by_the_chunk_hash() {
    let (server, mut c) = signed_in(Config::default()).await;
    let id = server.put_document(None, "x", pattern(10));
    server.set_download_fault(Some(DownloadFault::FlipHash { index: 0 }));
    assert_eq!(c.download(&id).await, Err("chunk 0 hash mismatch".into()));
}

#[tokio::test]
async fn download_task_is_single_use_and_unknown_task_is_404() {
    let (server, mut c) = signed_in(Config::default()).await;
    let id = server.put_document(None, "x", b"hello".to_vec());
    let got = c.call("get_document", json!({"document_id": id})).await;
    let task = got["data"]["task_data"]["task_id"].clone();
    c.send_action("download_file", json!({"task_id": task}))
        .await;
    assert_eq!(c.recv_json().await["action"], "transfer_file");
    c.send_text("not-ready").await;
    let refused = c.recv_json().await;
    assert_eq!(refused["message"], "Client not ready for file transfer");
    let reuse = c.call("download_file", json!({"task_id": task})).await;
    assert_eq!(
        reuse["message"],
        "Task is not in a valid state for download"
    );
    let bogus = c
        .call("download_file", json!({"task_id": "does-not-exist"}))
        .await;
    assert_eq!(
        (bogus["code"].clone(), bogus["message"].clone()),
        (json!(404), json!("Task not found"))
    );
}

#[tokio::test]
async fn upload_verdicts_name_size_and_sha256_mismatches() {
    let (_server, mut c) = signed_in(Config::default()).await;
    let created = c.call("create_document", json!({"title": "a"})).await;
    let task = created["data"]["task_data"]["task_id"].clone();
    c.send_action("upload_file", json!({"task_id": task})).await;
    assert_eq!(c.recv_json().await["message"], "waiting for file transfer");
    let zeros = "0".repeat(64);
    c.send_json(&json!({"action": "transfer_file", "data": {"sha256": zeros, "file_size": 5}}))
        .await;
    assert_eq!(c.recv_text().await, "ready");
    c.send_binary(b"hello").await;
    let verdict = c.recv_json().await;
    assert_eq!(
        verdict["message"],
        format!(
            "SHA256 mismatch: expected {zeros}, got {}",
            hex(&Sha256::digest(b"hello"))
        )
    );

    let created = c.call("create_document", json!({"title": "b"})).await;
    let task = created["data"]["task_data"]["task_id"].clone();
    c.send_action("upload_file", json!({"task_id": task.clone()}))
        .await;
    c.recv_json().await;
    c.send_json(&json!({"action": "transfer_file", "data": {"size": 5}}))
        .await;
    assert_eq!(
        c.recv_json().await["message"],
        "Invalid request for file transfer"
    );
    // An invalid header leaves the task usable, as recorded.
    c.send_action("upload_file", json!({"task_id": task})).await;
    c.recv_json().await;
    let sha = hex(&Sha256::digest(b"hello!"));
    c.send_json(&json!({"action": "transfer_file", "data": {"sha256": sha, "file_size": 6}}))
        .await;
    assert_eq!(c.recv_text().await, "ready");
    c.send_binary(b"hello").await;
    let verdict = c.recv_json().await;
    assert_eq!(verdict["code"], 400);
    assert_eq!(verdict["message"], "File size mismatch: expected 6, got 5");
}

#[tokio::test]
async fn protocol_5_upload_honours_max_chunk_size() {
    let (server, mut c) = signed_in(Config {
        protocol_version: 5,
        ..Config::default()
    })
    .await;
    let created = c.call("create_document", json!({"title": "p5"})).await;
    assert!(created["data"]["document_id"].is_string());
    let task = created["data"]["task_data"]["task_id"].clone();
    c.send_action("upload_file", json!({"task_id": task})).await;
    c.recv_json().await;
    let content = pattern(10_000);
    let sha = hex(&Sha256::digest(&content));
    let info = json!({"action": "transfer_file",
                      "data": {"sha256": sha, "file_size": 10_000, "max_chunk_size": 4096}});
    c.send_json(&info).await;
    assert_eq!(c.recv_text().await, "ready 4096");
    for frame in content.chunks(4096) {
        c.send_binary(frame).await;
    }
    assert_eq!(c.recv_json().await["message"], "File received successfully");
    let id = server.find_documents("p5").pop().expect("stored");
    assert_eq!(server.document_content(&id), Some(content));
}

#[tokio::test]
async fn text_that_is_not_a_header_is_refused_and_the_connection_goes_on() {
    let (_server, mut c) = signed_in(Config::default()).await;
    let created = c.call("create_document", json!({"title": "a"})).await;
    let task = created["data"]["task_data"]["task_id"].clone();
    c.send_action("upload_file", json!({"task_id": task})).await;
    c.recv_json().await;
    c.send_text("garbage").await;
    let refused = c.recv_json().await;
    assert_eq!(refused["message"], "Invalid request for file transfer");
    assert_eq!(c.call("server_info", json!({})).await["code"], 200);
}
