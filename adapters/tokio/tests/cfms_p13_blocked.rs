//! `CfmsClient` against a protocol-13 emulator that has blocked the
//! client's IP (`cfms-13.md` §1 and §3 step 1): the first connect fails at
//! once as `CfmsError::IpBlocked` without a second attempt; a connected
//! client's request gets the server's 403, the server closes with 1008,
//! and the client then knocks again only after its longest backoff delay.

use std::time::{Duration, Instant};

use futures_util::StreamExt;
use naslink_sim::cfms::{Config, Handle, Server};
use naslink_tokio::cfms::{CfmsClient, CfmsError, CfmsEvent, CfmsOptions};
use naslink_tokio::fnos::Backoff;
use serde_json::json;

async fn emulator() -> Handle {
    Server::start(Config {
        protocol_version: 13,
        bad_password_delay: Duration::from_millis(50),
        ..Config::default()
    })
    .await
    .expect("emulator starts")
}

fn options(sim: &Handle) -> CfmsOptions {
    let mut options = CfmsOptions::new(&sim.url(), "admin", "admin");
    options.request_timeout = Duration::from_secs(5);
    options.backoff = Backoff {
        initial: Duration::from_millis(100),
        max: Duration::from_secs(10),
    };
    options
}

async fn bounded<T>(f: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(20), f)
        .await
        .expect("test finished in time")
}

#[tokio::test]
async fn a_blocked_ip_fails_the_first_connect_by_name_without_retrying() {
    bounded(async {
        let sim = emulator().await;
        sim.set_ip_blocked(true);
        let began = Instant::now();
        let error = CfmsClient::connect(options(&sim)).await.unwrap_err();
        assert!(matches!(error, CfmsError::IpBlocked), "{error:?}");
        assert!(error.to_string().contains("blocked this IP"), "{error}");
        assert!(began.elapsed() < Duration::from_secs(2));
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert_eq!(sim.connections_accepted(), 1, "one attempt only");
        sim.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn a_connected_client_blocked_gets_403_and_waits_the_longest_backoff() {
    bounded(async {
        let sim = emulator().await;
        let nas = CfmsClient::connect(options(&sim)).await.unwrap();
        let mut events = Box::pin(nas.events());
        sim.set_ip_blocked(true);
        let error = nas
            .request("list_directory", &json!({ "folder_id": null }))
            .await
            .unwrap_err();
        match &error {
            CfmsError::Server { code, message, .. } => {
                assert_eq!(*code, 403);
                assert!(message.contains("blocked"), "{message}");
            }
            other => panic!("{other:?}"),
        }
        // The close (1008), one reconnect after the first backoff step that
        // meets HTTP 403, then the longest delay.
        let mut delays = Vec::new();
        let mut reasons = Vec::new();
        while delays.len() < 2 {
            match events.next().await.unwrap() {
                CfmsEvent::Reconnecting { delay, .. } => delays.push(delay),
                CfmsEvent::Disconnected { reason } => reasons.push(reason),
                _ => {}
            }
        }
        assert!(reasons[0].contains("1008"), "{reasons:?}");
        assert!(delays[0] < Duration::from_secs(1), "{delays:?}");
        assert_eq!(delays[1], Duration::from_secs(10), "{delays:?}");
        tokio::time::sleep(Duration::from_secs(1)).await;
        assert_eq!(sim.connections_accepted(), 2, "no knocking in a loop");
        sim.shutdown().await;
    })
    .await;
}
