//! What the emulator answers before the upgrade: HTTPS redirect and the
//! access-code gate.

mod fnos_support;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use fnos_support::{Client, start};
use naslink_sim::fnos::{Config, Redirect};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::{Error, http};

async fn rejected(request: http::Request<()>) -> http::Response<Option<Vec<u8>>> {
    match tokio_tungstenite::connect_async(request).await {
        Err(Error::Http(response)) => *response,
        Err(other) => panic!("expected an HTTP rejection, got {other}"),
        Ok(_) => panic!("expected an HTTP rejection, the upgrade succeeded"),
    }
}

/// A plain HTTP GET; returns the whole response text.
async fn get(addr: std::net::SocketAddr, path: &str, headers: &[(&str, &str)]) -> String {
    let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let mut request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\n");
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    stream.write_all(request.as_bytes()).await.expect("write");
    let mut response = String::new();
    stream.read_to_string(&mut response).await.expect("read");
    response
}

#[tokio::test]
async fn https_mode_redirects_the_upgrade_to_port_5667() {
    let server = start(Config {
        https_redirect: Some(Redirect::default()),
        ..Config::default()
    })
    .await;
    let response = rejected(server.url().into_client_request().expect("request")).await;
    assert_eq!(response.status(), 301);
    assert_eq!(
        response.headers()["location"],
        "https://127.0.0.1:5667/websocket?type=main",
    );
    server.shutdown().await;
}

#[tokio::test]
async fn redirect_status_is_configurable() {
    let redirect = Redirect {
        status: 308,
        https_port: 8443,
    };
    let server = start(Config {
        https_redirect: Some(redirect),
        ..Config::default()
    })
    .await;
    let response = rejected(server.url().into_client_request().expect("request")).await;
    assert_eq!(response.status(), 308);
    assert_eq!(
        response.headers()["location"],
        "https://127.0.0.1:8443/websocket?type=main"
    );
    server.shutdown().await;
}

#[tokio::test]
async fn access_code_gate_challenges_then_admits_with_the_cookie() {
    let server = start(Config {
        access_code: Some("s3cret码".into()),
        ..Config::default()
    })
    .await;
    let response = rejected(server.url().into_client_request().expect("request")).await;
    assert_eq!(response.status(), 401);
    assert_eq!(response.headers()["x-trim-safe-code-challenge"], "1");

    let wrong = get(
        server.addr(),
        "/access_code_verify",
        &[
            ("x-access-code", &B64.encode("nope")),
            ("x-access-source", "web"),
        ],
    )
    .await;
    assert!(wrong.starts_with("HTTP/1.1 401"), "{wrong}");

    let code = B64.encode("s3cret码".as_bytes());
    let verified = get(
        server.addr(),
        "/access_code_verify",
        &[("x-access-code", &code), ("x-access-source", "web")],
    )
    .await;
    assert!(verified.starts_with("HTTP/1.1 200"), "{verified}");
    let cookie = verified
        .lines()
        .find_map(|l| l.strip_prefix("Set-Cookie: "))
        .and_then(|c| c.split(';').next())
        .expect("a cookie")
        .to_owned();

    let mut request = server.url().into_client_request().expect("request");
    request
        .headers_mut()
        .insert("cookie", cookie.parse().expect("header value"));
    let (mut ws, _) = tokio_tungstenite::connect_async(request)
        .await
        .expect("admitted with the cookie");
    futures_util::SinkExt::send(&mut ws, r#"{"req":"ping"}"#.into())
        .await
        .expect("send");
    server.shutdown().await;
}

#[tokio::test]
async fn access_code_verify_needs_the_web_source_header() {
    let server = start(Config {
        access_code: Some("1234".into()),
        ..Config::default()
    })
    .await;
    let answer = get(
        server.addr(),
        "/access_code_verify",
        &[("x-access-code", &B64.encode("1234"))],
    )
    .await;
    assert!(answer.starts_with("HTTP/1.1 401"), "{answer}");
    server.shutdown().await;
}

#[tokio::test]
async fn other_paths_are_not_found() {
    let server = start(Config::default()).await;
    let answer = get(server.addr(), "/nothing", &[]).await;
    assert!(answer.starts_with("HTTP/1.1 404"), "{answer}");
    // The ordinary upgrade still works.
    Client::connect(&server.url()).await;
    server.shutdown().await;
}
