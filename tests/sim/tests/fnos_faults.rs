//! Deliberate faults: slow answers, dropped connections, garbage frames.

mod fnos_support;

use std::time::{Duration, Instant};

use fnos_support::{Client, start};
use futures_util::StreamExt;
use naslink_sim::fnos::{Config, Faults};
use tokio_tungstenite::tungstenite::Message;

fn with(faults: Faults) -> Config {
    Config {
        faults,
        ..Config::default()
    }
}

#[tokio::test]
async fn answer_delay_holds_every_answer_back() {
    let server = start(with(Faults {
        answer_delay: Duration::from_millis(200),
        ..Faults::default()
    }))
    .await;
    let mut client = Client::connect(&server.url()).await;
    let sent = Instant::now();
    client.send(r#"{"req":"ping"}"#).await;
    client.recv().await;
    assert!(sent.elapsed() >= Duration::from_millis(200));
    server.shutdown().await;
}

#[tokio::test]
async fn drop_after_frames_cuts_the_connection_without_a_close_frame() {
    let server = start(with(Faults {
        drop_after_frames: Some(2),
        ..Faults::default()
    }))
    .await;
    let mut client = Client::connect(&server.url()).await; // frame 1: getRSAPub
    client.send(r#"{"req":"ping"}"#).await;
    assert_eq!(client.recv_text().await, r#"{"res":"pong"}"#); // frame 2
    let next = tokio::time::timeout(Duration::from_secs(5), client.ws.next())
        .await
        .expect("ends in time");
    assert!(
        matches!(next, None | Some(Err(_))),
        "the TCP connection ends without a close frame: {next:?}"
    );
    server.shutdown().await;
}

#[tokio::test]
async fn garbage_after_frames_sends_one_non_json_frame() {
    let server = start(with(Faults {
        garbage_after_frames: Some(1),
        ..Faults::default()
    }))
    .await;
    let mut client = Client::connect(&server.url()).await;
    let garbage = client.recv_text().await;
    assert!(
        serde_json::from_str::<serde_json::Value>(&garbage).is_err(),
        "{garbage}"
    );
    client.send(r#"{"req":"ping"}"#).await;
    match client.ws.next().await {
        Some(Ok(Message::Text(text))) => assert_eq!(text.as_str(), r#"{"res":"pong"}"#),
        other => panic!("expected pong, got {other:?}"),
    }
    server.shutdown().await;
}
