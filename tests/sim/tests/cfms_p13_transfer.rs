//! Protocol-13 transfers against the emulator (`cfms-13.md` §9, §10): round
//! trips byte for byte, the upload framing rules, AES-256-GCM chunks, offset
//! errors, and a download cut mid-file and resumed on another connection.

mod cfms13_support;

use std::time::Duration;

use cfms13_support::{Client, PROCESS, QUIET, decrypt_all, pattern, start13};
use naslink_sim::cfms::DownloadFault;
use serde_json::json;

const MIB: usize = 1 << 20;

#[tokio::test]
async fn uploads_and_downloads_round_trip_byte_for_byte() {
    let server = start13().await;
    let mut c = Client::connect(&server).await;
    c.login("admin", "admin").await;
    for size in [0, 1, 65536, 65537, 5 * MIB] {
        let data = pattern(size);
        let doc = c.put(&format!("f{size}.bin"), &data).await;
        assert_eq!(
            server.document_content(&doc).as_deref(),
            Some(&data[..]),
            "stored {size}"
        );
        let back = c.get(&doc).await;
        assert!(back == data, "downloaded {size} bytes differ");
    }
}

#[tokio::test]
async fn an_empty_upload_ends_with_stop_and_no_conclusion() {
    let server = start13().await;
    let mut c = Client::connect(&server).await;
    c.login("admin", "admin").await;
    let created = c
        .call("create_document", json!({"title": "empty.bin"}))
        .await;
    let task = created["data"]["task_data"]["task_id"]
        .as_str()
        .expect("task")
        .to_owned();
    let id = c.start("upload_file", json!({"task_id": task})).await;
    c.process_json(id).await;
    let header = json!({"action": "transfer_file", "data": {"file_size": 0, "sha256": null}});
    c.send_json(id, &header).await;
    assert_eq!(c.frame_on(id).await, (PROCESS, b"stop".to_vec()));
    assert!(c.quiet_on(id, QUIET).await, "no verdict after stop");
    let listing = c.call("list_directory", json!({"folder_id": null})).await;
    let docs = listing["data"]["documents"]
        .as_array()
        .expect("documents")
        .clone();
    let empty = docs
        .iter()
        .find(|d| d["title"] == "empty.bin")
        .expect("listed");
    assert_eq!(
        (empty["size"].clone(), empty["sha256"].clone()),
        (json!(0), json!(null))
    );
}

#[tokio::test]
async fn upload_chunk_size_rules() {
    let server = start13().await;
    let mut c = Client::connect(&server).await;
    c.login("admin", "admin").await;
    let created = c
        .call("create_document", json!({"title": "rules.bin"}))
        .await;
    let task = created["data"]["task_data"]["task_id"]
        .as_str()
        .expect("task")
        .to_owned();
    // max_chunk_size below 512 is refused.
    let id = c.start("upload_file", json!({"task_id": task})).await;
    c.process_json(id).await;
    c.send_json(
        id,
        &json!({"action": "transfer_file", "data": {"file_size": 10, "max_chunk_size": 100}}),
    )
    .await;
    assert_eq!(
        c.conclusion(id).await["message"],
        "Invalid request for file transfer"
    );
    // 1 MiB asked, 65536 granted; an 8192-byte frame ends the upload early.
    let id = c.start("upload_file", json!({"task_id": task})).await;
    c.process_json(id).await;
    c.send_json(
        id,
        &json!({"action": "transfer_file", "data": {"file_size": 20000, "max_chunk_size": MIB}}),
    )
    .await;
    assert_eq!(c.frame_on(id).await, (PROCESS, b"ready 65536".to_vec()));
    c.send(id, PROCESS, &[7; 8192]).await;
    assert_eq!(
        c.conclusion(id).await["message"],
        "File size mismatch: expected 20000, got 8192"
    );
    // A wrong SHA-256 leaves the task usable.
    let verdict = {
        let id = c.start("upload_file", json!({"task_id": task})).await;
        c.process_json(id).await;
        let header = json!({"action": "transfer_file", "data": {"file_size": 10, "sha256": "00".repeat(32)}});
        c.send_json(id, &header).await;
        assert_eq!(c.frame_on(id).await, (PROCESS, b"ready 65536".to_vec()));
        c.send(id, PROCESS, b"0123456789").await;
        c.conclusion(id).await
    };
    assert!(
        verdict["message"]
            .as_str()
            .expect("message")
            .starts_with("SHA256 mismatch: expected 0000")
    );
    let ok = c
        .upload(&task, b"0123456789", Some(512))
        .await
        .expect("verdict");
    assert_eq!(ok["message"], "File received successfully");
    // A finished task cannot be used again.
    let again = c.call("upload_file", json!({"task_id": task})).await;
    assert_eq!(again["message"], "Task is not in a valid state for upload");
    let missing = c.call("upload_file", json!({"task_id": "nope"})).await;
    assert_eq!(missing["code"], 404);
}

#[tokio::test]
async fn download_chunks_are_aes_gcm_and_a_finished_task_is_spent() {
    let server = start13().await;
    let mut c = Client::connect(&server).await;
    c.login("admin", "admin").await;
    let data = pattern(5 * MIB);
    let doc = server.put_document(None, "big.bin", data.clone());
    let task = c.download_task(&doc).await;
    let (id, header) = c.download_start(&task, None).await;
    assert_eq!(
        header,
        json!({"file_size": 5 * MIB, "chunk_size": 2 * MIB, "total_chunks": 3})
    );
    let (chunks, key) = c.download_rest(id).await;
    let key = key.expect("key");
    assert_eq!(
        chunks.iter().map(|c| c.cipher.len()).collect::<Vec<_>>(),
        [2 * MIB, 2 * MIB, MIB]
    );
    assert!(decrypt_all(&chunks, &key) == data);
    // The id stays bound: a request on it is swallowed.
    c.send_json(id, &json!({"action": "server_info", "data": {}}))
        .await;
    assert!(c.quiet_on(id, QUIET).await);
    let again = c.call("download_file", json!({"task_id": task})).await;
    assert_eq!(
        again["message"],
        "Task is not in a valid state for download"
    );
}

#[tokio::test]
async fn download_offset_and_readiness_errors() {
    let server = start13().await;
    let mut c = Client::connect(&server).await;
    c.login("admin", "admin").await;
    let doc = server.put_document(None, "big.bin", pattern(5 * MIB));
    let task = c.download_task(&doc).await;
    for (offset, message) in [
        (
            1000,
            "Invalid offset: must be a multiple of chunk_size or zero",
        ),
        (6 * MIB as u64, "Invalid offset: exceeds file size"),
    ] {
        let (id, _) = c.download_start(&task, Some(offset)).await;
        assert_eq!(c.conclusion(id).await["message"], message);
    }
    let id = c.start("download_file", json!({"task_id": task})).await;
    c.process_json(id).await;
    c.send(id, PROCESS, b"go").await;
    assert_eq!(
        c.conclusion(id).await["message"],
        "Client not ready for file transfer"
    );
    // At the very end of a file whose size is a multiple of the chunk size:
    // no chunk, only the key.
    let whole = server.put_document(None, "four.bin", pattern(4 * MIB));
    let task = c.download_task(&whole).await;
    let (id, _) = c.download_start(&task, Some(4 * MIB as u64)).await;
    let (chunks, key) = c.download_rest(id).await;
    assert!(chunks.is_empty() && key.is_some());
}

#[tokio::test]
async fn a_download_cut_mid_file_resumes_from_the_offset_on_another_connection() {
    let server = start13().await;
    let data = pattern(5 * MIB);
    let doc = server.put_document(None, "big.bin", data.clone());
    let mut c = Client::connect(&server).await;
    c.login("admin", "admin").await;
    let task = c.download_task(&doc).await;
    // The stream freezes after chunk 0: the client's deadline runs out, it
    // drops the connection and keeps the complete chunks.
    server.set_download_freeze(Some(1));
    let (id, _) = c.download_start(&task, None).await;
    let first = c.process_json(id).await;
    assert_eq!(first["data"]["index"], 0);
    assert!(c.quiet_on(id, Duration::from_millis(500)).await, "frozen");
    c.drop_connection();
    server.set_download_freeze(None);

    let mut resumed = Client::connect(&server).await;
    let (id, header) = resumed.download_start(&task, Some(2 * MIB as u64)).await;
    assert_eq!(header["total_chunks"], 3, "counts the whole file");
    let (rest, key) = resumed.download_rest(id).await;
    let key = key.expect("same task, same key");
    let mut chunks = vec![cfms13_support::Chunk::from(&first["data"])];
    chunks.extend(rest);
    assert!(
        decrypt_all(&chunks, &key) == data,
        "old and new chunks decrypt with the final key"
    );
}

#[tokio::test]
async fn a_forged_tag_does_not_verify() {
    let server = start13().await;
    let doc = server.put_document(None, "f.bin", pattern(70000));
    server.set_download_fault(Some(DownloadFault::FlipHash { index: 0 }));
    let mut c = Client::connect(&server).await;
    c.login("admin", "admin").await;
    let task = c.download_task(&doc).await;
    let (id, _) = c.download_start(&task, None).await;
    let (chunks, key) = c.download_rest(id).await;
    let key = key.expect("key");
    assert!(
        chunks[0].decrypt(&key).is_none(),
        "the flipped tag is refused"
    );
}
