//! The hostile server seen from a plain tungstenite client: the faithful
//! relay works, and each after-upgrade mode breaks the WebSocket rule it
//! names.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use naslink_sim::hostile::{Config, Handle, Mode, Server, Upstream};
use serde_json::{Value, json};
use tokio_tungstenite::connect_async;
use tokio_tungstenite::tungstenite::{Error, Message};

async fn start(mode: Mode, upstream: Upstream) -> Handle {
    Server::start(Config::new(mode, upstream)).await.unwrap()
}

/// The first thing the client reads after the upgrade.
async fn first_read(server: &Handle) -> Option<Result<Message, Error>> {
    let (mut ws, _) = connect_async(server.url()).await.unwrap();
    tokio::time::timeout(Duration::from_secs(5), ws.next())
        .await
        .expect("the proxy sent something within 5 s")
}

#[tokio::test]
async fn the_throttled_relay_answers_cfms_requests_and_counts_client_bytes() {
    let server = start(Mode::Throttle, Upstream::Cfms).await;
    let (mut ws, _) = connect_async(server.url()).await.unwrap();
    let request = json!({"action": "server_info", "data": {}}).to_string();
    ws.send(Message::Text(request.into())).await.unwrap();
    let Some(Ok(Message::Text(answer))) = ws.next().await else {
        panic!("no answer");
    };
    let answer: Value = serde_json::from_str(&answer).unwrap();
    assert_eq!(answer["code"], 200);
    assert!(server.client_bytes() > 0);
    assert_eq!(server.connections(), 1);
    server.shutdown().await;
}

#[tokio::test]
async fn a_masked_server_frame_is_what_the_masked_mode_sends() {
    let server = start(Mode::MaskedFrame, Upstream::Fnos).await;
    let read = first_read(&server).await;
    assert!(
        matches!(read, Some(Err(Error::Protocol(_)))),
        "tungstenite refuses a masked server frame: {read:?}"
    );
    server.shutdown().await;
}

#[tokio::test]
async fn the_bad_utf8_mode_sends_a_text_frame_that_is_not_utf8() {
    let server = start(Mode::BadUtf8, Upstream::Cfms).await;
    let read = first_read(&server).await;
    assert!(matches!(read, Some(Err(Error::Utf8(_)))), "{read:?}");
    server.shutdown().await;
}

#[tokio::test]
async fn garbage_after_the_101_is_a_protocol_error() {
    let server = start(Mode::GarbageAfterUpgrade, Upstream::Fnos).await;
    let read = first_read(&server).await;
    assert!(matches!(read, Some(Err(Error::Protocol(_)))), "{read:?}");
    server.shutdown().await;
}

#[tokio::test]
async fn a_2_62_length_exceeds_any_message_limit() {
    let server = start(Mode::Length62, Upstream::Fnos).await;
    let read = first_read(&server).await;
    assert!(matches!(read, Some(Err(Error::Capacity(_)))), "{read:?}");
    server.shutdown().await;
}

#[tokio::test]
async fn the_connection_breaks_right_after_the_upgrade() {
    let server = start(Mode::BreakAfterUpgrade, Upstream::Cfms).await;
    let read = first_read(&server).await;
    assert!(
        !matches!(read, Some(Ok(Message::Text(_) | Message::Binary(_)))),
        "{read:?}"
    );
    server.shutdown().await;
}

#[tokio::test]
async fn a_mode_for_the_other_emulator_is_refused() {
    let err = Server::start(Config::new(Mode::HugeReady, Upstream::Fnos))
        .await
        .err()
        .unwrap();
    assert!(err.to_string().contains("Cfms"), "{err}");
}

#[test]
fn the_hostile_subcommand_prints_its_url_and_serves_it() {
    use std::io::{BufRead, BufReader};
    use std::process::{Command, Stdio};
    let mut child = Command::new(env!("CARGO_BIN_EXE_naslink-sim"))
        .args(["hostile", "--mode", "silence", "--listen", "127.0.0.1:0"])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stderr.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let url = line
        .split_whitespace()
        .find(|w| w.starts_with("ws://"))
        .map(str::to_owned);
    let reachable = url.as_deref().map(|u| {
        let addr = u
            .trim_start_matches("ws://")
            .split('/')
            .next()
            .unwrap_or("");
        std::net::TcpStream::connect(addr).is_ok()
    });
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(line.contains("Silence in front of Fnos"), "{line}");
    assert_eq!(reachable, Some(true), "{line}");
}

#[tokio::test]
async fn a_download_without_length_ends_short_of_the_file() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let server = start(Mode::DownloadNoLength, Upstream::Fnos).await;
    let mut http = tokio::net::TcpStream::connect(server.addr()).await.unwrap();
    http.write_all(b"GET /multiple-download?token=t HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let mut answer = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), http.read_to_end(&mut answer))
        .await
        .unwrap()
        .unwrap();
    let end = answer.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
    let head = String::from_utf8_lossy(&answer[..end]).to_ascii_lowercase();
    assert!(head.starts_with("http/1.1 200"), "{head}");
    assert!(
        !head.contains("content-length") && !head.contains("chunked"),
        "{head}"
    );
    assert!(answer.len() - end < naslink_sim::hostile::SAMPLE_SIZE);
    server.shutdown().await;
}

#[tokio::test]
async fn under_the_ping_flood_the_relay_still_answers() {
    answers_among_pings(Mode::PingFlood).await;
}

#[tokio::test]
async fn after_the_ping_burst_the_relay_still_answers() {
    answers_among_pings(Mode::PingBurst).await;
}

async fn answers_among_pings(mode: Mode) {
    let server = start(mode, Upstream::Cfms).await;
    let (mut ws, _) = connect_async(server.url()).await.unwrap();
    let request = json!({"action": "server_info", "data": {}}).to_string();
    ws.send(Message::Text(request.into())).await.unwrap();
    let answer = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            match ws.next().await {
                Some(Ok(Message::Ping(_))) => {}
                Some(Ok(Message::Text(text))) => return text.to_string(),
                other => panic!("{other:?}"),
            }
        }
    })
    .await
    .expect("an answer within 10 s");
    let answer: Value = serde_json::from_str(&answer).unwrap();
    assert_eq!(answer["code"], 200);
    server.shutdown().await;
}
