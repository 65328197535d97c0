//! Request signing: `base64(HMAC-SHA256(S, json)) + json` over the raw bytes.

mod fnos_support;

use fnos_support::{Client, sign, start_default};
use serde_json::json;

#[tokio::test]
async fn signed_request_is_answered() {
    let server = start_default().await;
    let mut client = Client::connect(&server.url()).await;
    client.login("admin", "admin").await;
    let answer = client.call("user.info", json!({})).await;
    assert_eq!(answer["result"], "succ");
    assert_eq!(answer["userInfo"]["user"], "admin");
    assert_eq!(answer["userInfo"]["uid"], 1000);
    server.shutdown().await;
}

#[tokio::test]
async fn signature_is_checked_over_the_bytes_as_sent() {
    // Key order and whitespace differ from any canonical form; the
    // signature covers exactly these bytes, so the server must accept it.
    let server = start_default().await;
    let mut client = Client::connect(&server.url()).await;
    let credentials = client.login("admin", "admin").await;
    let text = r#"{ "req" : "user.isAdmin",   "reqid":"odd\/escape" }"#;
    client.send(&sign(&credentials.secret, text)).await;
    let answer = client.recv().await;
    assert_eq!(answer["result"], "succ", "{answer}");
    assert_eq!(answer["reqid"], "odd/escape");
    server.shutdown().await;
}

#[tokio::test]
async fn wrong_signature_answers_errno_65534() {
    let server = start_default().await;
    let mut client = Client::connect(&server.url()).await;
    client.login("admin", "admin").await;
    let wire = sign(b"not the secret S", r#"{"reqid":"r1","req":"user.info"}"#);
    client.send(&wire).await;
    assert_eq!(
        client.recv().await,
        json!({"errno": 65534, "result": "fail", "reqid": "r1"})
    );
    server.shutdown().await;
}

#[tokio::test]
async fn signature_over_other_bytes_answers_errno_65534() {
    let server = start_default().await;
    let mut client = Client::connect(&server.url()).await;
    let credentials = client.login("admin", "admin").await;
    let signed = sign(&credentials.secret, r#"{"reqid":"r1","req":"user.info"}"#);
    let tampered = signed.replace("user.info", "user.isAdmin");
    client.send(&tampered).await;
    assert_eq!(client.recv().await["errno"], 65534);
    server.shutdown().await;
}

#[tokio::test]
async fn missing_signature_after_login_answers_errno_65534() {
    let server = start_default().await;
    let mut client = Client::connect(&server.url()).await;
    client.login("admin", "admin").await;
    client.send(r#"{"reqid":"r1","req":"user.info"}"#).await;
    assert_eq!(client.recv().await["errno"], 65534);
    server.shutdown().await;
}

#[tokio::test]
async fn ping_get_rsa_pub_and_get_si_stay_unsigned_after_login() {
    let server = start_default().await;
    let mut client = Client::connect(&server.url()).await;
    client.login("admin", "admin").await;
    client.send(r#"{"req":"ping"}"#).await;
    assert_eq!(client.recv().await, json!({"res": "pong"}));
    client.send(r#"{"reqid":"r2","req":"util.getSI"}"#).await;
    assert_eq!(client.recv().await["si"], client.si.as_str());
    client
        .send(r#"{"reqid":"r3","req":"util.crypto.getRSAPub"}"#)
        .await;
    assert!(client.recv().await["pub"].is_string());
    server.shutdown().await;
}

#[tokio::test]
async fn host_name_works_unsigned_before_login() {
    let server = start_default().await;
    let mut client = Client::connect(&server.url()).await;
    client
        .send(r#"{"reqid":"r1","req":"appcgi.sysinfo.getHostName"}"#)
        .await;
    let answer = client.recv().await;
    assert_eq!(answer["result"], "succ");
    assert_eq!(answer["req"], "appcgi.sysinfo.getHostName");
    assert_eq!(answer["rev"], "0.1");
    assert_eq!(answer["data"]["hostName"], "fnos-sim");
    assert!(answer["data"]["trimVersion"].is_string());
    assert_eq!(answer["data"]["hasUsers"], true);
    server.shutdown().await;
}

#[tokio::test]
async fn commands_needing_login_answer_errno_135168_before_login() {
    let server = start_default().await;
    let mut client = Client::connect(&server.url()).await;
    client.send(r#"{"reqid":"r1","req":"file.ls"}"#).await;
    assert_eq!(client.recv().await["errno"], 135168);
    server.shutdown().await;
}

#[tokio::test]
async fn non_json_frame_answers_errno_8192() {
    let server = start_default().await;
    let mut client = Client::connect(&server.url()).await;
    client.send("hello").await;
    assert_eq!(client.recv().await["errno"], 8192);
    server.shutdown().await;
}
