//! `naslink-bench`'s handwritten baseline client (an fnOS client written by
//! hand with tokio-tungstenite and RustCrypto, not naslink-core) still
//! logs in to the emulator and gets signed answers, so the benchmark's
//! baseline cannot rot unnoticed.

#[path = "../src/bin/naslink-bench/handwritten.rs"]
mod handwritten;

use naslink_sim::fnos::{Config, KeySource, Server};

/// The password login (RSA + AES envelope, the secret S) succeeds, and a
/// request signed with S gets the host name: after login the emulator
/// answers unsigned or badly signed requests with errno 65534.
#[tokio::test]
async fn handwritten_client_logs_in_and_gets_the_host_name() {
    let sim = Server::start(Config {
        key: KeySource::Fixture,
        ..Config::default()
    })
    .await
    .unwrap();
    let client = handwritten::Client::connect(&sim.url(), "admin", "admin")
        .await
        .unwrap();
    for _ in 0..3 {
        let reply = client.request("appcgi.sysinfo.getHostName").await.unwrap();
        assert_eq!(reply["data"]["hostName"], "fnos-sim");
    }
    sim.shutdown().await;
}

/// A wrong password is refused, not mistaken for a login.
#[tokio::test]
async fn handwritten_client_reports_a_refused_login() {
    let sim = Server::start(Config {
        key: KeySource::Fixture,
        ..Config::default()
    })
    .await
    .unwrap();
    let refused = handwritten::Client::connect(&sim.url(), "admin", "wrong").await;
    assert!(refused.is_err());
    sim.shutdown().await;
}
