//! Sessions across connections, heartbeat and pushes.

mod fnos_support;

use std::time::Duration;

use fnos_support::{Client, sign, start, start_default};
use naslink_sim::fnos::{Config, Push};
use serde_json::json;

#[tokio::test]
async fn auth_token_on_a_new_connection_uses_the_logins_secret() {
    let server = start_default().await;
    let mut first = Client::connect(&server.url()).await;
    let credentials = first.login("admin", "admin").await;

    let mut second = Client::connect(&server.url()).await;
    second.secret = Some(credentials.secret.clone());
    let answer = second
        .call(
            "user.authToken",
            json!({"token": credentials.token, "si": second.si, "main": true}),
        )
        .await;
    assert_eq!(answer["result"], "succ", "{answer}");
    assert_eq!(answer["uid"], 1000);
    assert_eq!(answer["backId"], credentials.back_id.as_str());
    assert_eq!(second.call("user.isAdmin", json!({})).await["admin"], true);
    server.shutdown().await;
}

#[tokio::test]
async fn auth_token_signed_with_another_secret_answers_errno_65534() {
    let server = start_default().await;
    let mut first = Client::connect(&server.url()).await;
    let credentials = first.login("admin", "admin").await;
    let mut second = Client::connect(&server.url()).await;
    second.secret = Some(b"0123456789abcdef".to_vec());
    let answer = second
        .call(
            "user.authToken",
            json!({"token": credentials.token, "si": second.si, "main": true}),
        )
        .await;
    assert_eq!(answer["errno"], 65534);
    server.shutdown().await;
}

#[tokio::test]
async fn unknown_token_answers_errno_135168() {
    let server = start_default().await;
    let mut client = Client::connect(&server.url()).await;
    client.secret = Some(vec![7; 16]);
    let answer = client
        .call(
            "user.authToken",
            json!({"token": "bogus", "si": client.si, "main": true}),
        )
        .await;
    assert_eq!(answer["errno"], 135168);
    server.shutdown().await;
}

#[tokio::test]
async fn token_login_with_long_token_after_token_expired() {
    let server = start_default().await;
    let mut first = Client::connect(&server.url()).await;
    let credentials = first.login("admin", "admin").await;
    server.push(Push::TokenExpired);
    assert_eq!(first.recv().await, json!({"sysNotify": "tokenExpired"}));

    let mut second = Client::connect(&server.url()).await;
    second.secret = Some(credentials.secret.clone());
    let expired = second
        .call(
            "user.authToken",
            json!({"token": credentials.token, "si": second.si, "main": true}),
        )
        .await;
    assert_eq!(expired["errno"], 135168, "short token revoked");
    let long_token = credentials
        .long_token
        .clone()
        .expect("stay:true gave a long token");
    let answer = second
        .call(
            "user.tokenLogin",
            json!({"token": long_token, "deviceType": "Browser",
                                        "deviceName": "t", "did": "d", "si": second.si}),
        )
        .await;
    assert_eq!(answer["result"], "succ", "{answer}");
    let new_token = answer["token"].as_str().expect("a fresh token").to_owned();
    assert_ne!(new_token, credentials.token);
    assert!(
        answer.get("secret").is_none(),
        "S stays that of the original login"
    );
    assert_eq!(second.call("user.info", json!({})).await["result"], "succ");

    let mut third = Client::connect(&server.url()).await;
    third.secret = Some(credentials.secret);
    let again = third
        .call(
            "user.authToken",
            json!({"token": new_token, "si": third.si, "main": true}),
        )
        .await;
    assert_eq!(again["result"], "succ");
    server.shutdown().await;
}

/// `user.tokenLogin` with `long_token` on a fresh connection signed with `secret`.
async fn token_login(
    server: &naslink_sim::fnos::Handle,
    secret: &[u8],
    long_token: &str,
) -> serde_json::Value {
    let mut client = Client::connect(&server.url()).await;
    client.secret = Some(secret.to_vec());
    client
        .call(
            "user.tokenLogin",
            json!({"token": long_token, "deviceType": "Browser",
                   "deviceName": "panel", "si": client.si}),
        )
        .await
}

#[tokio::test]
async fn revoked_long_tokens_answer_errno_135168() {
    let server = start_default().await;
    let mut first = Client::connect(&server.url()).await;
    let credentials = first.login("admin", "admin").await;
    let long_token = credentials
        .long_token
        .clone()
        .expect("stay gives a long token");
    assert_eq!(
        token_login(&server, &credentials.secret, &long_token).await["result"],
        "succ"
    );
    assert_eq!(server.revoke_long_tokens(), 1);
    assert_eq!(
        token_login(&server, &credentials.secret, &long_token).await["errno"],
        135168
    );
    let mut other = Client::connect(&server.url()).await;
    other.secret = Some(credentials.secret.clone());
    let short = other
        .call(
            "user.authToken",
            json!({"token": credentials.token, "si": other.si, "main": true}),
        )
        .await;
    assert_eq!(short["errno"], 135168, "the login's short token goes too");
    server.shutdown().await;
}

#[tokio::test]
async fn logout_revokes_the_long_token() {
    let server = start_default().await;
    let mut client = Client::connect(&server.url()).await;
    let credentials = client.login("admin", "admin").await;
    let long_token = credentials
        .long_token
        .clone()
        .expect("stay gives a long token");
    assert_eq!(
        client.call("user.logout", json!({})).await["result"],
        "succ"
    );
    assert_eq!(
        token_login(&server, &credentials.secret, &long_token).await["errno"],
        135168
    );
    server.shutdown().await;
}

#[tokio::test]
async fn long_tokens_expire_after_their_lifetime() {
    let server = start(Config {
        long_token_lifetime: Some(Duration::from_millis(300)),
        ..Config::default()
    })
    .await;
    let mut client = Client::connect(&server.url()).await;
    let credentials = client.login("admin", "admin").await;
    let long_token = credentials
        .long_token
        .clone()
        .expect("stay gives a long token");
    assert_eq!(
        token_login(&server, &credentials.secret, &long_token).await["result"],
        "succ"
    );
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(
        token_login(&server, &credentials.secret, &long_token).await["errno"],
        135168
    );
    server.shutdown().await;
}

#[tokio::test]
async fn logout_ends_the_login() {
    let server = start_default().await;
    let mut client = Client::connect(&server.url()).await;
    let credentials = client.login("admin", "admin").await;
    assert_eq!(
        client.call("user.logout", json!({})).await["result"],
        "succ"
    );
    assert_eq!(client.call("user.info", json!({})).await["errno"], 135168);
    let mut other = Client::connect(&server.url()).await;
    other.secret = Some(credentials.secret);
    let answer = other
        .call(
            "user.authToken",
            json!({"token": credentials.token, "si": other.si}),
        )
        .await;
    assert_eq!(answer["errno"], 135168);
    server.shutdown().await;
}

#[tokio::test]
async fn ping_is_answered_with_pong() {
    let server = start_default().await;
    let mut client = Client::connect(&server.url()).await;
    client.send(r#"{"req":"ping"}"#).await;
    assert_eq!(client.recv_text().await, r#"{"res":"pong"}"#);
    server.shutdown().await;
}

#[tokio::test]
async fn pong_can_be_switched_off() {
    let server = start(Config {
        pong: false,
        ..Config::default()
    })
    .await;
    let mut client = Client::connect(&server.url()).await;
    client.send(r#"{"req":"ping"}"#).await;
    assert!(client.silent_for(Duration::from_millis(300)).await);
    server.shutdown().await;
}

#[tokio::test]
async fn pushes_reach_signed_in_connections_only() {
    let server = start_default().await;
    let mut anonymous = Client::connect(&server.url()).await;
    let mut client = Client::connect(&server.url()).await;
    client.login("admin", "admin").await;
    server.push(Push::StorageChanged);
    assert_eq!(client.recv().await, json!({"sysNotify": "storageChanged"}));
    server.push(Push::PrivilegeChanged("1".into()));
    assert_eq!(
        client.recv().await,
        json!({"sysNotify": "privilegeChanged", "privilege": "1"})
    );
    assert!(anonymous.silent_for(Duration::from_millis(200)).await);
    server.shutdown().await;
}

#[tokio::test]
async fn kicked_ends_every_login() {
    let server = start_default().await;
    let mut client = Client::connect(&server.url()).await;
    let credentials = client.login("admin", "admin").await;
    server.push(Push::Kicked);
    assert_eq!(client.recv().await, json!({"sysNotify": "kicked"}));
    let text = r#"{"reqid":"r9","req":"user.info"}"#;
    client.send(&sign(&credentials.secret, text)).await;
    assert_eq!(client.recv().await["errno"], 135168);
    server.shutdown().await;
}

#[tokio::test]
async fn periodic_push_every() {
    let config = Config {
        push_every: Some(Duration::from_millis(100)),
        ..Config::default()
    };
    let server = start(config).await;
    let mut client = Client::connect(&server.url()).await;
    client.login("admin", "admin").await;
    assert_eq!(client.recv().await, json!({"sysNotify": "storageChanged"}));
    assert_eq!(client.recv().await, json!({"sysNotify": "storageChanged"}));
    server.shutdown().await;
}

#[tokio::test]
async fn drop_connections_closes_the_tcp_connection() {
    let server = start_default().await;
    let mut client = Client::connect(&server.url()).await;
    server.drop_connections();
    let next = tokio::time::timeout(
        Duration::from_secs(5),
        futures_util::StreamExt::next(&mut client.ws),
    )
    .await
    .expect("closed before the deadline");
    assert!(!matches!(
        next,
        Some(Ok(tokio_tungstenite::tungstenite::Message::Text(_)))
    ));
    // The server still accepts new connections.
    Client::connect(&server.url()).await;
    server.shutdown().await;
}
